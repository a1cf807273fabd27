/* HTTP server on libmicrohttpd: JSON in and out, a hard cap on body size, the error
 * shape of DESIGN.md ({"error":{"code","message","field"}}), and the admin endpoints
 * every service exposes (/healthz, /readyz, /metrics). Handlers run on the server's
 * worker threads and may block (e.g. waiting for a Kafka acknowledgement). */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <jansson.h>
#include <stddef.h>

struct sb_metrics;

#define SB_HTTP_MAX_HEADERS 16

struct sb_http_req {
    const char *method; /* "GET", "POST"… */
    const char *path;   /* without the query string */
    const char *body;   /* NUL-terminated copy; body_len bytes (may contain NUL) */
    size_t body_len;
    const char *remote_ip; /* textual peer address */
    void *conn;            /* internal */
    void *rq;              /* internal */
};

struct sb_http_resp {
    int status;
    char *body; /* owned: freed by the server */
    size_t body_len;
    const char *content_type;
    int nheaders;
    const char *header_names[SB_HTTP_MAX_HEADERS];
    char *header_values[SB_HTTP_MAX_HEADERS]; /* owned */
};

/* A request handler: fills resp and returns 0, or suspends the request with
 * sb_http_req_suspend() and returns SB_HTTP_SUSPENDED (resp is then ignored).
 * Borrowed ctx. */
typedef int (*sb_http_handler_fn)(void *ctx, const struct sb_http_req *req,
                                  struct sb_http_resp *resp);

#define SB_HTTP_SUSPENDED 1

/* A request whose answer comes later (e.g. when Kafka acknowledges a write): the
 * worker thread is free meanwhile. */
struct sb_http_async;

/* Suspends req; call only from its handler, which then returns SB_HTTP_SUSPENDED.
 * The handle must be completed exactly once. */
struct sb_http_async *sb_http_req_suspend(const struct sb_http_req *req);
/* Answers a suspended request with resp (its body and headers are moved out).
 * Any thread may call it. */
void sb_http_async_complete(struct sb_http_async *a, struct sb_http_resp *resp);

struct sb_http_opts {
    const char *bind;   /* e.g. "127.0.0.1" */
    int port;           /* 0: any free port (see sb_http_server_port) */
    size_t max_body;    /* larger bodies answer 413 */
    int threads;        /* worker threads (>= 1) */
    int conn_timeout_s; /* idle/slow client timeout */
    unsigned max_conns; /* connection limit */
};

struct sb_http_server;

/* Starts a server. Returns NULL with errstr (e.g. address in use). */
struct sb_http_server *sb_http_server_new(const struct sb_http_opts *opts,
                                          sb_http_handler_fn handler, void *ctx, char *errstr,
                                          size_t errstr_size);
/* Stops accepting new connections (in-flight requests go on). */
void sb_http_server_quiesce(struct sb_http_server *s);
/* Stops accepting, waits for running handlers, frees. Suspended requests must have
 * been completed first. Accepts NULL. */
void sb_http_server_destroy(struct sb_http_server *s);
int sb_http_server_port(const struct sb_http_server *s);

/* Request accessors (borrowed strings, NULL when absent). */
const char *sb_http_req_header(const struct sb_http_req *req, const char *name);
const char *sb_http_req_query(const struct sb_http_req *req, const char *name);

/* Response helpers. Each replaces any previous body. */
void sb_http_resp_json(struct sb_http_resp *resp, int status, json_t *body /* stolen */);
void sb_http_resp_text(struct sb_http_resp *resp, int status, const char *content_type,
                       const char *text, size_t len);
void sb_http_resp_error(struct sb_http_resp *resp, int status, const char *code,
                        const char *message, const char *field);
void sb_http_resp_header(struct sb_http_resp *resp, const char *name, const char *value);

/* Readiness check: returns 1 when ready, else 0 with a reason in why. */
typedef int (*sb_ready_fn)(void *ctx, char *why, size_t why_size);

struct sb_admin;

/* Starts the admin server (/healthz, /readyz, /metrics) on bind:port. */
struct sb_admin *sb_admin_new(const char *bind, int port, struct sb_metrics *metrics,
                              sb_ready_fn ready, void *ctx, char *errstr, size_t errstr_size);
void sb_admin_destroy(struct sb_admin *a);
int sb_admin_port(const struct sb_admin *a);

#endif
