/* sb-ingest: the shape of the service. One struct holds the configuration, the
 * shared clients and the metrics; each HTTP worker thread has its own Redis and
 * PostgreSQL connections (neither library is thread-safe per connection). */
#ifndef SB_INGEST_H
#define SB_INGEST_H

#include "contact.h"
#include "ratelimit.h"

#include "sb/config.h"
#include "sb/http.h"
#include "sb/kafka.h"
#include "sb/metrics.h"
#include "sb/pg.h"
#include "sb/redis.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#define SB_INGEST_PROGRAM "sb-ingest"

struct sb_completer;

/* Per-channel counters. */
struct channel_metrics {
    struct sb_metric *accepted;
    struct sb_metric *duplicates;
};

struct ingest {
    const struct sb_config *cfg;
    struct sb_producer *producer;
    struct sb_metrics *metrics;
    struct sb_ratelimit *ratelimit;
    struct sb_completer *completer;
    char producer_name[64]; /* "sb-ingest/<version>" */

    /* settings read once from the configuration */
    const char *redis_url;
    int redis_timeout_ms;
    const char *pg_dsn;
    int64_t sig_window_s;
    int64_t idem_ttl_s;
    int64_t open_window_s;
    int64_t thread_ttl_s;
    int64_t eta_max_age_s;
    int max_depth;
    int noop_endpoint;
    struct sb_contact_limits limits;

    pthread_key_t worker_key;
    pthread_mutex_t workers_lock;
    struct worker *workers;

    struct sb_metric *m_accepted[8]; /* by channel index (contact.c), resolved at start */
    struct sb_metric *m_duplicates[8];
    struct sb_metric *m_inflight;
    struct sb_metric *m_produce_seconds;
    struct sb_metric *m_redis_unavailable;
    struct sb_metric *m_pg_unavailable;
};

/* A worker thread's own connections, opened lazily and reopened by the wrappers. */
struct worker {
    struct worker *next;
    struct sb_redis *redis; /* NULL while Redis is unreachable */
    struct sb_pg *pg;       /* NULL while PostgreSQL is unreachable */
    int64_t redis_retry_ms;
    int64_t pg_retry_ms;
};

/* The calling thread's worker (created on first use). */
struct worker *ingest_worker(struct ingest *in);
/* The worker's Redis / PostgreSQL connection, or NULL when unavailable (retried at
 * most once a second). */
struct sb_redis *ingest_redis(struct ingest *in);
struct sb_pg *ingest_pg(struct ingest *in);
/* Closes every worker's connections (at shutdown, after the HTTP server stopped). */
void ingest_workers_close(struct ingest *in);

/* Counts a rejected request (metric sb_ingest_rejected_total{channel,reason}). */
void ingest_count_rejected(struct ingest *in, const char *channel, const char *reason);
/* Counts an accepted contact or a replayed duplicate. */
void ingest_count_accepted(struct ingest *in, const char *channel, int duplicate);

/* Answers an error in the DESIGN.md shape and counts it. */
void ingest_error(struct ingest *in, struct sb_http_resp *resp, const char *channel, int status,
                  const char *code, const char *message, const char *field);

/* The HTTP entry point (api.c). */
int ingest_handle(void *ctx, const struct sb_http_req *req, struct sb_http_resp *resp);

/* Intake of one normalized contact (intake.c): idempotency, identity, threading,
 * produce, then 202 (asynchronously). contact is stolen. idem_key may be NULL (the
 * channel and external id are used). Email threading reads the contact's in_reply_to
 * and references. wechat_reply: answer 200 "success" as WeChat expects
 * instead of the 202 JSON body. */
int ingest_contact(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp,
                   json_t *contact, const char *idem_key, int wechat_reply);

/* Registers intake's Lua scripts on a new Redis connection (intake.c). */
void ingest_redis_scripts(struct sb_redis *r);

/* Produces an agent/supervisor action event and waits for its acknowledgement
 * (actions.c). */
int ingest_action(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp);

/* The completion thread that finishes accepted contacts after Kafka acknowledged
 * them (intake.c). */
struct sb_completer *sb_completer_new(struct ingest *in, char *errstr, size_t errstr_size);
/* Waits for queued completions, stops the thread. Accepts NULL. */
void sb_completer_destroy(struct sb_completer *c);

#endif
