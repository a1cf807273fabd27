/* The read API and the dashboard of sb-reporter (docs/api.md): an HTTP server whose
 * worker threads each keep their own PostgreSQL connection (never the projection's)
 * and, when Redis answers, their own Redis connection for the router's estimates. */
#ifndef SB_REPORTER_API_H
#define SB_REPORTER_API_H

#include "sb/config.h"
#include "sb/metrics.h"

#include <stddef.h>

struct reporter_api;

/* Starts the HTTP server on http.bind:http.port. cfg and metrics are borrowed and must
 * outlive the server. Returns NULL with errstr (address in use, bad settings). Call from
 * the main thread. */
struct reporter_api *reporter_api_new(const struct sb_config *cfg, struct sb_metrics *metrics,
                                      char *errstr, size_t errstr_size);
/* Stops accepting, waits for running requests, closes every worker connection. Accepts
 * NULL. */
void reporter_api_destroy(struct reporter_api *api);
/* The bound port (useful with http.port 0). */
int reporter_api_port(const struct reporter_api *api);

/* One file of the dashboard, embedded at build time (dashboard_assets.c, generated from
 * services/reporter/dashboard/). */
struct reporter_asset {
    const char *path; /* "index.html", "app.js"… */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

/* The asset named path, or NULL. */
const struct reporter_asset *reporter_asset_find(const char *path);

#endif
