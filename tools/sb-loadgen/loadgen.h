/* sb-loadgen: contacts at a target rate into sb-ingest, and an agent simulator that
 * takes the offers sb-router makes and works the tickets through sb-ingest's agent API.
 * One thread: arrivals, HTTP transfers (libcurl multi), the routing topic and the
 * simulated agents' next steps are all driven from main()'s loop. */
#ifndef SB_LOADGEN_H
#define SB_LOADGEN_H

#include "sb/strbuf.h"

#include <stddef.h>
#include <stdint.h>

#define LG_CHANNELS 5
#define LG_MAX_PROFILE 24

/* Options of one run (main.c fills them from the command line). */
struct lg_opts {
    const char *ingest;       /* base URL of sb-ingest */
    const char *brokers;      /* Kafka, for the routing topic (agent simulator) */
    const char *pg_dsn;       /* PostgreSQL, for customers and agent provisioning */
    const char *data_dir;     /* ../shared/data, texts and the call-center day */
    const char *api_secret;   /* signing secret of /v1/contacts */
    const char *summary_path; /* JSON summary file, NULL = stdout only */
    double rate;              /* mean contacts per second */
    long count;               /* contacts to send */
    double duration_s;        /* hard bound of the run */
    double drain_s;           /* after the last contact: time to let agents finish */
    int connections;          /* HTTP transfers in flight at most */
    unsigned seed;
    double mix[LG_CHANNELS]; /* channel weights: chat, email, phone, social, web */
    double known_share;      /* share of contacts from CRM customers */
    double zh_share;         /* share of Chinese template texts (the rest: real queries) */
    /* Arrival shape: Poisson at rate, or a real day's hourly profile (YYMMDD of the
     * call-center log) compressed into the run, plus a peak and an incident burst. */
    const char *day;
    double peak_at_s, peak_len_s, peak_factor;
    double incident_at_s;
    int incident_size;
    /* Agents. */
    int agents;
    double accept_mean_s, handle_mean_s, pending_share, decline_share;
    int progress; /* live line on stderr */
};

/* Traffic: texts, customers, arrivals (traffic.c). */
struct lg_traffic;
struct lg_traffic *lg_traffic_new(const struct lg_opts *o, char *err, size_t errsz);
void lg_traffic_destroy(struct lg_traffic *t);
/* Seconds from the start of the run to the next arrival after `at` (rate shape). */
double lg_traffic_next_arrival(struct lg_traffic *t, double at);
/* The JSON body of contact number n sent at run time `at`; its channel index in *ch. */
void lg_traffic_contact(struct lg_traffic *t, long n, double at, struct sb_strbuf *out, int *ch);
size_t lg_traffic_texts(const struct lg_traffic *t);
/* The run's id: contacts carry external ids lg-<run>-<n>. */
const char *lg_traffic_run(const struct lg_traffic *t);
size_t lg_traffic_customers(const struct lg_traffic *t);
extern const char *const lg_channel_names[LG_CHANNELS];

/* HTTP client over libcurl's multi interface (client.c). */
struct lg_http;
typedef void (*lg_http_done)(void *arg, long status, const char *body, size_t len, double seconds);
struct lg_http *lg_http_new(int max_inflight);
void lg_http_destroy(struct lg_http *h);
/* Starts a POST; headers is a NULL-terminated list. Returns 0, or -1 when the in-flight
 * limit is reached (try again after lg_http_poll). */
int lg_http_post(struct lg_http *h, const char *url, const char *body, size_t len,
                 const char *const *headers, lg_http_done done, void *arg);
/* Drives the transfers for at most timeout_ms; completion callbacks run inside. */
void lg_http_poll(struct lg_http *h, int timeout_ms);
int lg_http_inflight(const struct lg_http *h);

/* Latency samples (seconds) and their percentiles. */
struct lg_lat {
    double *v;
    size_t n, cap;
};
void lg_lat_add(struct lg_lat *l, double s);
double lg_lat_pct(struct lg_lat *l, double p);
void lg_lat_free(struct lg_lat *l);

/* Figures of the run. */
struct lg_stats {
    long sent, accepted, refused, failed;
    long per_channel[LG_CHANNELS];
    long offered, claimed, declined, assigned, replied, pending, resolved, csat, action_errors;
    struct lg_lat accept_lat; /* HTTP 202 round trip */
    struct lg_lat assign_lat; /* contact sent → ticket.assigned seen */
};

/* Agent simulator (agents.c). */
struct lg_agents;
struct lg_agents *lg_agents_new(const struct lg_opts *o, struct lg_http *http, struct lg_stats *st,
                                char *err, size_t errsz);
void lg_agents_destroy(struct lg_agents *a);
/* Notes when a ticket's contact was sent (for the assignment latency). */
void lg_agents_track(struct lg_agents *a, const char *ticket_id, double sent_at_s);
/* Reads the routing topic and performs the agents' due steps. */
void lg_agents_poll(struct lg_agents *a, double now_s);
/* Sets every simulated agent offline (their remaining steps are dropped); the requests
 * go out from lg_agents_poll, lg_agents_pending says how many are still to start. */
void lg_agents_logout(struct lg_agents *a);
long lg_agents_pending(const struct lg_agents *a);
/* Tickets an agent still holds (claimed, not yet resolved). */
long lg_agents_open(const struct lg_agents *a);

/* Time since the run started, seconds. */
double lg_now(void);
/* Signature header "X-SB-Signature: t=…,v1=…" of body with secret. */
void lg_sign(const char *secret, const char *body, size_t len, char *out, size_t outsz);
/* Uniform in [0,1) and exponential with the given mean, from the run's seeded state. */
double lg_uniform(unsigned *state);
double lg_exp(unsigned *state, double mean);

#endif
