/* sb-ingest: HTTP intake for every channel and for agent actions (DESIGN.md).
 * config → signals → clients → HTTP servers → wait → shutdown:
 * stop intake, finish suspended requests, flush the producer, close clients. */
#include "email.h"
#include "ingest.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/service.h"
#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sb_config_def ingest_defs[] = {
    {"http.bind", "SB_HTTP_BIND", SB_CFG_STRING, "127.0.0.1", 0, -1, 0,
     "address of the public API"},
    {"http.port", "SB_HTTP_PORT", SB_CFG_INT, "8080", 0, 65535, 0, "port of the public API"},
    {"http.threads", "SB_HTTP_THREADS", SB_CFG_INT, "16", 1, 256, 0,
     "HTTP worker threads (they wait on Redis round trips, so more than cores)"},
    {"http.max_body", "SB_HTTP_MAX_BODY", SB_CFG_INT, "1048576", 1024, 64 * 1024 * 1024, 0,
     "largest request body in bytes (larger: 413)"},
    {"http.max_depth", "SB_HTTP_MAX_DEPTH", SB_CFG_INT, "32", 2, 1024, 0,
     "deepest JSON nesting accepted"},
    {"http.max_connections", "SB_HTTP_MAX_CONNECTIONS", SB_CFG_INT, "4096", 1, 100000, 0,
     "concurrent connections"},
    {"http.timeout_s", "SB_HTTP_TIMEOUT_S", SB_CFG_INT, "30", 1, 3600, 0,
     "idle or slow client timeout"},
    {"http.noop_endpoint", "SB_HTTP_NOOP_ENDPOINT", SB_CFG_BOOL, "false", 0, -1, 0,
     "serve POST /v1/noop (answers 202 after reading the body; the benchmark baseline)"},
    {"admin.port", "SB_ADMIN_PORT", SB_CFG_INT, "9101", 0, 65535, 0,
     "port of /healthz /readyz /metrics"},
    {"kafka.produce_timeout_ms", "SB_KAFKA_PRODUCE_TIMEOUT_MS", SB_CFG_INT, "5000", 500, 60000, 0,
     "time Kafka has to acknowledge a contact before the caller gets 503"},
    {"secrets.api", "SB_SECRET_API", SB_CFG_STRING, "dev-secret-api", 0, -1, 1,
     "HMAC secret of POST /v1/contacts and /csat from systems"},
    {"secrets.email", "SB_SECRET_EMAIL", SB_CFG_STRING, "dev-secret-email", 0, -1, 1,
     "HMAC secret of the email channel"},
    {"secrets.chat", "SB_SECRET_CHAT", SB_CFG_STRING, "dev-secret-chat", 0, -1, 1,
     "HMAC secret of the chat channel"},
    {"secrets.social", "SB_SECRET_SOCIAL", SB_CFG_STRING, "dev-secret-social", 0, -1, 1,
     "HMAC secret of the social channel"},
    {"secrets.phone", "SB_SECRET_PHONE", SB_CFG_STRING, "dev-secret-phone", 0, -1, 1,
     "HMAC secret of the phone (CTI) channel"},
    {"secrets.wechat_token", "SB_WECHAT_TOKEN", SB_CFG_STRING, "dev-wechat-token", 0, -1, 1,
     "WeChat official-account server token"},
    {"signature.window_s", "SB_SIGNATURE_WINDOW_S", SB_CFG_INT, "300", 1, 86400, 0,
     "accepted clock difference of signed requests"},
    {"idempotency.ttl_s", "SB_IDEMPOTENCY_TTL_S", SB_CFG_INT, "86400", 60, 30 * 86400, 0,
     "how long a message id is remembered"},
    {"threading.open_window_s", "SB_OPEN_WINDOW_S", SB_CFG_INT, "259200", 60, 90 * 86400, 0,
     "a contact joins the customer's open ticket within this time of the last contact"},
    {"lifecycle.reopen_window_s", "SB_REOPEN_WINDOW_S", SB_CFG_INT, "604800", 0, 365 * 86400, 0,
     "a customer follow-up reopens a resolved or archived ticket within this many seconds"},
    {"lifecycle.dispute_review_s", "SB_DISPUTE_REVIEW_S", SB_CFG_INT, "120", 1, 86400, 0,
     "a supervisor answers a priority dispute within this review time"},
    {"lifecycle.consultation_due_s", "SB_CONSULTATION_DUE_S", SB_CFG_INT, "86400", 60, 90 * 86400,
     0, "a consultation slip is due back from its department after this many seconds"},
    {"lifecycle.complaint_due_s", "SB_COMPLAINT_DUE_S", SB_CFG_INT, "86400", 60, 90 * 86400, 0,
     "a complaint slip is due back from its department after this many seconds"},
    {"threading.email_ttl_s", "SB_EMAIL_THREAD_TTL_S", SB_CFG_INT, "2592000", 60, 365 * 86400, 0,
     "how long an email Message-ID threads replies onto its ticket"},
    {"queue.eta_max_age_s", "SB_ETA_MAX_AGE_S", SB_CFG_INT, "120", 1, 3600, 0,
     "oldest router estimate still shown to the customer"},
    {"limits.subject", "SB_LIMIT_SUBJECT", SB_CFG_INT, "998", 1, 65536, 0,
     "longest subject in bytes"},
    {"limits.body", "SB_LIMIT_BODY", SB_CFG_INT, "262144", 1, 16 * 1024 * 1024, 0,
     "longest contact text in bytes"},
    {"limits.attachments", "SB_LIMIT_ATTACHMENTS", SB_CFG_INT, "100", 0, 10000, 0,
     "most attachments per contact"},
    {"limits.metadata", "SB_LIMIT_METADATA", SB_CFG_INT, "16384", 2, 1024 * 1024, 0,
     "largest metadata object in bytes"},
    {"ratelimit.rate", "SB_RATELIMIT_RATE", SB_CFG_DOUBLE, "2000", 0.01, 1e9, 0,
     "requests per second allowed per source and channel (per instance)"},
    {"ratelimit.burst", "SB_RATELIMIT_BURST", SB_CFG_DOUBLE, "4000", 1, 1e9, 0,
     "burst allowed per source and channel"},
};

static const char *const dev_secrets[] = {"secrets.api",   "secrets.email",
                                          "secrets.chat",  "secrets.social",
                                          "secrets.phone", "secrets.wechat_token"};

static int is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strcmp(addr, "localhost") == 0;
}

/* DESIGN.md: a service refuses to start with a dev default secret when it listens
 * beyond loopback. */
static int secrets_ok(const struct sb_config *cfg)
{
    if (is_loopback(sb_config_str(cfg, "http.bind")))
        return 1;
    for (size_t i = 0; i < sizeof(dev_secrets) / sizeof(dev_secrets[0]); i++) {
        if (strncmp(sb_config_str(cfg, dev_secrets[i]), "dev-", 4) == 0) {
            fprintf(stderr,
                    "%s: config key \"%s\" still has its development default while "
                    "http.bind is not loopback\n",
                    SB_INGEST_PROGRAM, dev_secrets[i]);
            return 0;
        }
    }
    return 1;
}

static void worker_free(void *arg)
{
    (void)arg; /* connections are closed by ingest_workers_close at shutdown */
}

struct worker *ingest_worker(struct ingest *in)
{
    struct worker *w = pthread_getspecific(in->worker_key);

    if (w != NULL)
        return w;
    w = sb_calloc(1, sizeof(*w));
    pthread_setspecific(in->worker_key, w);
    pthread_mutex_lock(&in->workers_lock);
    w->next = in->workers;
    in->workers = w;
    pthread_mutex_unlock(&in->workers_lock);
    return w;
}

struct sb_redis *ingest_redis(struct ingest *in)
{
    struct worker *w = ingest_worker(in);
    char err[256];

    if (w->redis == NULL && sb_mono_ms() >= w->redis_retry_ms) {
        w->redis = sb_redis_new(in->redis_url, in->redis_timeout_ms, err, sizeof(err));
        if (w->redis == NULL) {
            w->redis_retry_ms = sb_mono_ms() + 1000;
            sb_log_kv(SB_LOG_WARN, "redis unreachable", "detail", err, NULL);
        } else {
            ingest_redis_scripts(w->redis);
        }
    }
    return w->redis;
}

struct sb_pg *ingest_pg(struct ingest *in)
{
    struct worker *w = ingest_worker(in);
    return sb_pg_lazy(&w->pg, in->pg_dsn, &w->pg_retry_ms, NULL);
}

void ingest_workers_close(struct ingest *in)
{
    pthread_mutex_lock(&in->workers_lock);
    while (in->workers != NULL) {
        struct worker *w = in->workers;
        in->workers = w->next;
        sb_redis_destroy(w->redis);
        sb_pg_destroy(w->pg);
        free(w);
    }
    pthread_mutex_unlock(&in->workers_lock);
}

void ingest_count_rejected(struct ingest *in, const char *channel, const char *reason)
{
    char labels[128];
    sb_fmt(labels, sizeof(labels), "channel=%s,reason=%s", channel, reason);
    sb_metric_inc(sb_metrics_counter(in->metrics, "sb_ingest_rejected_total",
                                     "Requests refused, by channel and reason", labels));
}

static struct sb_metric *accepted_metric(struct sb_metrics *m, const char *channel, int duplicate)
{
    char labels[64];
    sb_fmt(labels, sizeof(labels), "channel=%s", channel);
    return sb_metrics_counter(m,
                              duplicate ? "sb_ingest_duplicates_total" : "sb_ingest_accepted_total",
                              duplicate ? "Replayed contacts answered from the idempotency store"
                                        : "Contacts accepted (durable in Kafka)",
                              labels);
}

void ingest_count_accepted(struct ingest *in, const char *channel, int duplicate)
{
    /* The hot path uses the handles resolved at start (no registry lookup). */
    int idx = sb_contact_channel_index(channel);
    if (idx >= 0 && idx < 8)
        sb_metric_inc(duplicate ? in->m_duplicates[idx] : in->m_accepted[idx]);
    else
        sb_metric_inc(accepted_metric(in->metrics, channel, duplicate));
}

void ingest_error(struct ingest *in, struct sb_http_resp *resp, const char *channel, int status,
                  const char *code, const char *message, const char *field)
{
    ingest_count_rejected(in, channel, code);
    sb_http_resp_error(resp, status, code, message, field);
}

/* /readyz: Kafka must answer; Redis and PostgreSQL degrade intake but do not stop it
 * (fail open), so they are reported in the reason without failing readiness. */
static int ready(void *ctx, char *why, size_t why_size)
{
    struct ingest *in = ctx;

    if (sb_producer_fatal(in->producer)) {
        sb_fmt(why, why_size, "kafka producer hit a fatal error; restarting");
        return 0;
    }
    if (sb_producer_ping(in->producer, 1000) != 0) {
        sb_fmt(why, why_size, "kafka: no broker answers");
        return 0;
    }
    return 1;
}

static int run(struct sb_config *cfg)
{
    struct ingest in;
    struct sb_kafka_opts kopts;
    struct sb_http_server *http = NULL;
    struct sb_admin *admin = NULL;
    const char *extra_keys[64], *extra_values[64];
    const char *const *keys, *const *values;
    char err[512], timeout[24];
    size_t n;
    int rc = 1;

    memset(&in, 0, sizeof(in));
    in.cfg = cfg;
    sb_fmt(in.producer_name, sizeof(in.producer_name), "%s/%s", SB_INGEST_PROGRAM, SB_VERSION);
    in.redis_url = sb_config_str(cfg, "redis.url");
    in.redis_timeout_ms = (int)sb_config_int(cfg, "redis.timeout_ms");
    in.pg_dsn = sb_config_str(cfg, "pg.dsn");
    in.sig_window_s = sb_config_int(cfg, "signature.window_s");
    in.idem_ttl_s = sb_config_int(cfg, "idempotency.ttl_s");
    in.open_window_s = sb_config_int(cfg, "threading.open_window_s");
    in.thread_ttl_s = sb_config_int(cfg, "threading.email_ttl_s");
    in.eta_max_age_s = sb_config_int(cfg, "queue.eta_max_age_s");
    in.max_depth = (int)sb_config_int(cfg, "http.max_depth");
    in.noop_endpoint = sb_config_bool(cfg, "http.noop_endpoint");
    in.limits.max_subject = (size_t)sb_config_int(cfg, "limits.subject");
    in.limits.max_body = (size_t)sb_config_int(cfg, "limits.body");
    in.limits.max_attachments = (size_t)sb_config_int(cfg, "limits.attachments");
    in.limits.max_metadata = (size_t)sb_config_int(cfg, "limits.metadata");
    pthread_key_create(&in.worker_key, worker_free);
    pthread_mutex_init(&in.workers_lock, NULL);
    in.metrics = sb_metrics_new();
    in.m_inflight = sb_metrics_gauge(in.metrics, "sb_ingest_inflight",
                                     "Contacts waiting for their Kafka acknowledgement", NULL);
    in.m_produce_seconds = sb_metrics_histogram(
        in.metrics, "sb_ingest_produce_seconds",
        "From request to Kafka acknowledgement of an accepted contact", NULL, NULL, 0);
    in.m_redis_unavailable = sb_metrics_counter(
        in.metrics, "sb_ingest_redis_unavailable_total",
        "Contacts accepted without deduplication or threading (Redis down)", NULL);
    in.m_pg_unavailable =
        sb_metrics_counter(in.metrics, "sb_ingest_crm_unavailable_total",
                           "Customers resolved without the CRM (PostgreSQL down)", NULL);
    for (int i = 0; sb_contact_channel_name(i) != NULL && i < 8; i++) {
        in.m_accepted[i] = accepted_metric(in.metrics, sb_contact_channel_name(i), 0);
        in.m_duplicates[i] = accepted_metric(in.metrics, sb_contact_channel_name(i), 1);
    }
    in.ratelimit = sb_ratelimit_new(sb_config_double(cfg, "ratelimit.rate"),
                                    sb_config_double(cfg, "ratelimit.burst"), 65536);

    /* The produce timeout bounds how long a caller waits for a 202 or a 503. */
    sb_service_kafka_opts(cfg, SB_INGEST_PROGRAM, &kopts);
    n = sb_config_map(cfg, "rdkafka", &keys, &values);
    if (n > 60)
        n = 60;
    sb_fmt(timeout, sizeof(timeout), "%lld",
           (long long)sb_config_int(cfg, "kafka.produce_timeout_ms"));
    extra_keys[0] = "message.timeout.ms";
    extra_values[0] = timeout;
    for (size_t i = 0; i < n; i++) {
        extra_keys[i + 1] = keys[i];
        extra_values[i + 1] = values[i];
    }
    kopts.keys = extra_keys;
    kopts.values = extra_values;
    kopts.nprops = n + 1;
    in.producer = sb_producer_new(&kopts, err, sizeof(err));
    if (in.producer == NULL) {
        fprintf(stderr, "%s: %s\n", SB_INGEST_PROGRAM, err);
        goto out;
    }
    if (sb_producer_ping(in.producer, 10000) != 0) {
        fprintf(stderr, "%s: kafka brokers %s unreachable\n", SB_INGEST_PROGRAM, kopts.brokers);
        goto out;
    }
    sb_email_global_init();
    in.completer = sb_completer_new(&in, err, sizeof(err));
    if (in.completer == NULL) {
        fprintf(stderr, "%s: %s\n", SB_INGEST_PROGRAM, err);
        goto out;
    }
    admin = sb_admin_new(sb_config_str(cfg, "admin.bind"), (int)sb_config_int(cfg, "admin.port"),
                         in.metrics, ready, &in, err, sizeof(err));
    if (admin == NULL) {
        fprintf(stderr, "%s: admin server: %s\n", SB_INGEST_PROGRAM, err);
        goto out;
    }
    {
        struct sb_http_opts opts = {
            .bind = sb_config_str(cfg, "http.bind"),
            .port = (int)sb_config_int(cfg, "http.port"),
            .max_body = (size_t)sb_config_int(cfg, "http.max_body"),
            .threads = (int)sb_config_int(cfg, "http.threads"),
            .conn_timeout_s = (int)sb_config_int(cfg, "http.timeout_s"),
            .max_conns = (unsigned)sb_config_int(cfg, "http.max_connections"),
        };
        http = sb_http_server_new(&opts, ingest_handle, &in, err, sizeof(err));
        if (http == NULL) {
            fprintf(stderr, "%s: %s\n", SB_INGEST_PROGRAM, err);
            goto out;
        }
        sb_fmt(timeout, sizeof(timeout), "%d", sb_http_server_port(http));
        sb_log_kv(SB_LOG_INFO, "listening", "bind", opts.bind, "port", timeout, NULL);
    }
    while (!sb_stop_requested() && !sb_producer_fatal(in.producer))
        sb_sleep_ms(100);
    rc = sb_producer_fatal(in.producer) ? 1 : 0;
    sb_log_kv(SB_LOG_INFO, rc ? "stopping after a fatal Kafka error" : "stopping", NULL);
out:
    /* Stop intake, let Kafka answer what is in flight, finish those requests. */
    sb_http_server_quiesce(http);
    if (in.producer != NULL)
        sb_producer_wait_all(in.producer, (int)sb_config_int(cfg, "shutdown.timeout_ms"));
    sb_completer_destroy(in.completer); /* drains the completions queued so far */
    if (http != NULL) {
        /* Let the server write the answers just completed before it closes. */
        int64_t deadline = sb_mono_ms() + 1000;
        while (sb_metric_value(in.m_inflight) > 0 && sb_mono_ms() < deadline)
            sb_sleep_ms(10);
        sb_sleep_ms(100);
    }
    sb_http_server_destroy(http);
    sb_admin_destroy(admin);
    sb_producer_destroy(in.producer, (int)sb_config_int(cfg, "shutdown.timeout_ms"));
    ingest_workers_close(&in);
    sb_ratelimit_destroy(in.ratelimit);
    sb_metrics_destroy(in.metrics);
    pthread_key_delete(in.worker_key);
    pthread_mutex_destroy(&in.workers_lock);
    return rc;
}

int main(int argc, char **argv)
{
    struct sb_config *cfg = NULL;
    int rc = sb_service_configure(argc, argv, SB_INGEST_PROGRAM,
                                  "HTTP intake for every channel and for agent actions: "
                                  "produces sb.contacts.v1, sb.activity.v1, sb.presence.v1.",
                                  ingest_defs, sizeof(ingest_defs) / sizeof(ingest_defs[0]), &cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!secrets_ok(cfg)) {
        sb_config_destroy(cfg);
        return 2;
    }
    sb_signals_install();
    rc = run(cfg);
    sb_config_destroy(cfg);
    return rc;
}
