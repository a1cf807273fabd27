/* sb-reporter: keeps PostgreSQL true to every topic (DESIGN.md): each event appended
 * once to ticket_events and applied to the current-state tables in the same
 * transaction, a batch at a time, offsets stored after the commit. The scheduled
 * reports build on these tables (docs/reporter.md), and the read API and dashboard
 * (api.c, docs/api.md) serve them on their own threads and connections. */
#include "api.h"
#include "reporter.h"

#include "sb/err.h"
#include "sb/http.h"
#include "sb/log.h"
#include "sb/service.h"
#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct sb_config_def reporter_defs[] = {
    {"http.bind", "SB_HTTP_BIND", SB_CFG_STRING, "127.0.0.1", 0, -1, 0,
     "address of the read API and the dashboard"},
    {"http.port", "SB_HTTP_PORT", SB_CFG_INT, "8081", 0, 65535, 0,
     "port of the read API and the dashboard"},
    {"http.threads", "SB_HTTP_THREADS", SB_CFG_INT, "8", 1, 256, 0,
     "HTTP worker threads, each with its own PostgreSQL connection"},
    {"http.max_connections", "SB_HTTP_MAX_CONNECTIONS", SB_CFG_INT, "1024", 1, 100000, 0,
     "concurrent connections"},
    {"http.timeout_s", "SB_HTTP_TIMEOUT_S", SB_CFG_INT, "30", 1, 3600, 0,
     "idle or slow client timeout"},
    {"api.cache_ms", "SB_API_CACHE_MS", SB_CFG_INT, "1000", 0, 60000, 0,
     "how long the day's summary, the live queues and ticket searches are shared between readers "
     "(0: off)"},
    {"api.sla_due_soon_s", "SB_API_SLA_DUE_SOON_S", SB_CFG_INT, "900", 1, 86400, 0,
     "the SLA risks list clocks and slips due within this many seconds (besides those warned "
     "or breached)"},
    {"auth.admin_token", "SB_ADMIN_TOKEN", SB_CFG_STRING, "dev-admin-token", 0, -1, 0,
     "bearer token with the admin role besides the tokens of api_tokens (empty: none)"},
    {"admin.port", "SB_ADMIN_PORT", SB_CFG_INT, "9105", 0, 65535, 0,
     "port of /healthz /readyz /metrics"},
    {"kafka.group", "SB_KAFKA_GROUP", SB_CFG_STRING, "sb-reporter", 0, -1, 0,
     "consumer group: instances of one group share the partitions"},
    {"topics", "SB_TOPICS", SB_CFG_STRING,
     SB_TOPIC_CONTACTS "," SB_TOPIC_TICKETS "," SB_TOPIC_ROUTING "," SB_TOPIC_ACTIVITY
                       "," SB_TOPIC_PRESENCE "," SB_TOPIC_SLA "," SB_TOPIC_DLQ,
     0, -1, 0, "comma-separated topics projected into PostgreSQL"},
    {"batch.max", "SB_BATCH_MAX", SB_CFG_INT, "1000", 1, 20000, 0, "events per transaction"},
    {"batch.ms", "SB_BATCH_MS", SB_CFG_INT, "100", 1, 10000, 0, "longest wait for a batch to fill"},
    {"reports.enabled", "SB_REPORTS_ENABLED", SB_CFG_BOOL, "true", 0, -1, 0,
     "generate the daily, weekly and monthly reports and the QA sample on schedule"},
    {"reports.tz_offset_min", "SB_REPORTS_TZ_OFFSET_MIN", SB_CFG_INT, "480", -720, 840, 0,
     "the center's time zone (minutes east of UTC) for report days"},
    {"reports.hour", "SB_REPORTS_HOUR", SB_CFG_INT, "8", 0, 23, 0,
     "local hour from which the weekly (Friday) and monthly (1st) reports are made"},
    {"qa.share", "SB_QA_SHARE", SB_CFG_DOUBLE, "0.2", 0, 1, 0,
     "share of each day's conversations drawn for QA review"},
    {"qa.seed", "SB_QA_SEED", SB_CFG_INT, "1", 0, 2147483647, 0,
     "seed of the QA draw (the same day and seed give the same sample)"},
    {"targets.first_contact_resolution", "SB_TARGET_FIRST_CONTACT_RESOLUTION", SB_CFG_DOUBLE,
     "0.85", 0, 1, 0, "first-contact resolution target shown against the actual"},
    {"targets.first_response_presale_s", "SB_TARGET_FIRST_RESPONSE_PRESALE_S", SB_CFG_INT, "30", 0,
     86400, 0, "pre-sale first response target (seconds)"},
    {"targets.first_response_aftersale_s", "SB_TARGET_FIRST_RESPONSE_AFTERSALE_S", SB_CFG_INT,
     "3600", 0, 604800, 0, "after-sale first response target (seconds)"},
    {"targets.attitude_negative_share_max", "SB_TARGET_ATTITUDE_NEGATIVE_SHARE_MAX", SB_CFG_DOUBLE,
     "0.05", 0, 1, 0, "highest share of negative feedback about agent attitude"},
    {"targets.answer_accuracy", "SB_TARGET_ANSWER_ACCURACY", SB_CFG_DOUBLE, "0.98", 0, 1, 0,
     "answer accuracy target"},
    {"targets.followup_rate", "SB_TARGET_FOLLOWUP_RATE", SB_CFG_DOUBLE, "0.8", 0, 1, 0,
     "complaint callback follow-up rate target"},
    {"staffing.service_level", "SB_STAFFING_SERVICE_LEVEL", SB_CFG_DOUBLE, "0.8", 0, 1, 0,
     "share of contacts the staffing recommendation answers within staffing.answer_within_s "
     "(above 0, below 1)"},
    {"staffing.answer_within_s", "SB_STAFFING_ANSWER_WITHIN_S", SB_CFG_INT, "20", 0, 86400, 0,
     "answer time of the staffing service level (seconds)"},
    {"staffing.reserve_low", "SB_STAFFING_RESERVE_LOW", SB_CFG_DOUBLE, "0.10", 0, 1, 0,
     "smallest reserve for peaks added to the Erlang C headcount"},
    {"staffing.reserve_high", "SB_STAFFING_RESERVE_HIGH", SB_CFG_DOUBLE, "0.15", 0, 1, 0,
     "recommended reserve for peaks (at least staffing.reserve_low)"},
};

/* The staffing target and reserve must make a headcount: a service level strictly
 * between 0 and 1 (1 needs endless agents), a reserve range in order. */
static int staffing_ok(const struct sb_config *cfg)
{
    double sl = sb_config_double(cfg, "staffing.service_level");

    if (!(sl > 0 && sl < 1)) {
        fprintf(stderr,
                "%s: config key \"staffing.service_level\" must be above 0 and below 1 (got %g)\n",
                SB_REPORTER_PROGRAM, sl);
        return 0;
    }
    if (sb_config_double(cfg, "staffing.reserve_high") <
        sb_config_double(cfg, "staffing.reserve_low")) {
        fprintf(stderr,
                "%s: config key \"staffing.reserve_high\" must be at least "
                "\"staffing.reserve_low\"\n",
                SB_REPORTER_PROGRAM);
        return 0;
    }
    return 1;
}

/* Publishes staffing.* to staffing_settings (migration 0017), which bi.staffing_hourly
 * reads; a row already equal is left alone. */
static void staffing_publish(struct reporter *r)
{
    struct sb_pg *pg = reporter_pg(r);
    char sl[32], within[24], low[32], high[32], err[256];
    const char *params[4] = {sl, within, low, high};
    PGresult *res;
    int perr = 0;

    if (pg == NULL)
        return;
    sb_fmt(sl, sizeof(sl), "%.17g", sb_config_double(r->cfg, "staffing.service_level"));
    sb_fmt(within, sizeof(within), "%lld",
           (long long)sb_config_int(r->cfg, "staffing.answer_within_s"));
    sb_fmt(low, sizeof(low), "%.17g", sb_config_double(r->cfg, "staffing.reserve_low"));
    sb_fmt(high, sizeof(high), "%.17g", sb_config_double(r->cfg, "staffing.reserve_high"));
    res = sb_pg_query(
        pg,
        "INSERT INTO staffing_settings (service_level, answer_within_s, reserve_low, "
        "reserve_high) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET "
        "service_level = excluded.service_level, answer_within_s = excluded.answer_within_s, "
        "reserve_low = excluded.reserve_low, reserve_high = excluded.reserve_high, "
        "updated_at = now() WHERE (staffing_settings.service_level, "
        "staffing_settings.answer_within_s, staffing_settings.reserve_low, "
        "staffing_settings.reserve_high) IS DISTINCT FROM (excluded.service_level, "
        "excluded.answer_within_s, excluded.reserve_low, excluded.reserve_high)",
        4, params, &perr, err, sizeof(err));
    if (res == NULL) {
        sb_log_kv(SB_LOG_WARN, "staffing settings not published", "detail", err, NULL);
        return;
    }
    PQclear(res);
}

/* Runs the report schedule (sb_reports_run, migration 0006) with the local time. */
static void reports_tick(struct reporter *r)
{
    struct sb_pg *pg = reporter_pg(r);
    char local[40], hour[8], share[32], seed[24], err[256];
    const char *params[4] = {local, hour, share, seed};
    time_t t = (time_t)(sb_now_ms() / 1000 + sb_config_int(r->cfg, "reports.tz_offset_min") * 60);
    struct tm tm;
    PGresult *res;
    int perr = 0;

    if (pg == NULL)
        return;
    gmtime_r(&t, &tm);
    strftime(local, sizeof(local), "%Y-%m-%d %H:%M:%S", &tm);
    sb_fmt(hour, sizeof(hour), "%lld", (long long)sb_config_int(r->cfg, "reports.hour"));
    sb_fmt(share, sizeof(share), "%g", sb_config_double(r->cfg, "qa.share"));
    sb_fmt(seed, sizeof(seed), "%lld", (long long)sb_config_int(r->cfg, "qa.seed"));
    res = sb_pg_query(pg, "SELECT sb_reports_run($1::timestamp, $2::int, $3::numeric, $4::bigint)",
                      4, params, &perr, err, sizeof(err));
    if (res == NULL) {
        sb_log_kv(SB_LOG_WARN, "report schedule not run", "detail", err, NULL);
        return;
    }
    if (atoi(PQgetvalue(res, 0, 0)) > 0)
        sb_log_kv(SB_LOG_INFO, "reports generated", "count", PQgetvalue(res, 0, 0), "local_time",
                  local, NULL);
    PQclear(res);
}

#define MAX_TOPICS 16

static int is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strcmp(addr, "localhost") == 0;
}

/* DESIGN.md: a service refuses to start with a dev default secret when it listens
 * beyond loopback. */
static int secrets_ok(const struct sb_config *cfg)
{
    if (is_loopback(sb_config_str(cfg, "http.bind")) ||
        strncmp(sb_config_str(cfg, "auth.admin_token"), "dev-", 4) != 0)
        return 1;
    fprintf(stderr,
            "%s: config key \"auth.admin_token\" still has its development default while "
            "http.bind is not loopback\n",
            SB_REPORTER_PROGRAM);
    return 0;
}

struct sb_pg *reporter_pg(struct reporter *r)
{
    char err[256];
    int fresh;
    struct sb_pg *pg = sb_pg_lazy(&r->pg, r->pg_dsn, &r->pg_retry_ms, &fresh);

    /* Registered once per connection object: sb_pg prepares it again after reconnects. */
    if (pg != NULL && fresh &&
        sb_pg_prepare(pg, "project", "SELECT sb_project($1::jsonb)", 1, err, sizeof(err)) != 0) {
        sb_log_kv(SB_LOG_ERROR, "cannot prepare the projection (is the schema migrated?)", "detail",
                  err, NULL);
        sb_pg_destroy(r->pg);
        r->pg = NULL;
        r->pg_retry_ms = sb_mono_ms() + 5000;
        return NULL;
    }
    return pg;
}

static int ready(void *ctx, char *why, size_t why_size)
{
    struct reporter *r = ctx;
    (void)r;
    (void)why;
    (void)why_size;
    return 1;
}

static int run(struct sb_config *cfg)
{
    struct reporter r;
    struct sb_kafka_opts kopts;
    struct sb_producer *producer = NULL;
    struct sb_stage *stage = NULL;
    struct sb_admin *admin = NULL;
    struct reporter_api *api = NULL;
    const char *topics[MAX_TOPICS];
    char *list = sb_strdup(sb_config_str(cfg, "topics")), *save = NULL, err[512];
    size_t ntopics = 0;
    int rc = 1;

    memset(&r, 0, sizeof(r));
    r.cfg = cfg;
    r.pg_dsn = sb_config_str(cfg, "pg.dsn");
    for (char *tok = strtok_r(list, ",", &save); tok != NULL && ntopics < MAX_TOPICS;
         tok = strtok_r(NULL, ",", &save))
        topics[ntopics++] = tok;
    if (ntopics == 0) {
        fprintf(stderr, "%s: config key \"topics\": at least one topic is needed\n",
                SB_REPORTER_PROGRAM);
        free(list);
        return 2;
    }
    if (!secrets_ok(cfg) || !staffing_ok(cfg)) {
        free(list);
        return 2;
    }
    r.metrics = sb_metrics_new();
    r.m_new = sb_metrics_counter(r.metrics, "sb_reporter_events_total",
                                 "Events stored and applied (new event ids)", NULL);
    r.m_duplicates =
        sb_metrics_counter(r.metrics, "sb_reporter_events_skipped_total",
                           "Events not applied: already stored (replays) or refused by the "
                           "tables (see projection_errors)",
                           NULL);
    r.m_batch_seconds = sb_metrics_histogram(r.metrics, "sb_reporter_batch_seconds",
                                             "Time of one projection transaction", NULL, NULL, 0);

    if (reporter_pg(&r) == NULL) {
        fprintf(stderr, "%s: PostgreSQL unreachable or not migrated (see the log)\n",
                SB_REPORTER_PROGRAM);
        goto out;
    }
    sb_service_kafka_opts(cfg, SB_REPORTER_PROGRAM, &kopts);
    producer = sb_producer_new(&kopts, err, sizeof(err)); /* for the DLQ */
    if (producer == NULL) {
        fprintf(stderr, "%s: %s\n", SB_REPORTER_PROGRAM, err);
        goto out;
    }
    {
        struct sb_stage_opts so = {
            .name = SB_REPORTER_PROGRAM,
            .group = sb_config_str(cfg, "kafka.group"),
            .topics = topics,
            .ntopics = ntopics,
            .handle = reporter_handle,
            .flush = reporter_flush,
            .ctx = &r,
            .batch_max = (int)sb_config_int(cfg, "batch.max"),
            .batch_ms = (int)sb_config_int(cfg, "batch.ms"),
        };
        stage = sb_stage_new(&kopts, &so, producer, r.metrics, err, sizeof(err));
        if (stage == NULL) {
            fprintf(stderr, "%s: %s\n", SB_REPORTER_PROGRAM, err);
            goto out;
        }
    }
    admin = sb_admin_new(sb_config_str(cfg, "admin.bind"), (int)sb_config_int(cfg, "admin.port"),
                         r.metrics, ready, &r, err, sizeof(err));
    if (admin == NULL) {
        fprintf(stderr, "%s: admin server: %s\n", SB_REPORTER_PROGRAM, err);
        goto out;
    }
    api = reporter_api_new(cfg, r.metrics, err, sizeof(err));
    if (api == NULL) {
        fprintf(stderr, "%s: read API: %s\n", SB_REPORTER_PROGRAM, err);
        goto out;
    }
    {
        char port[16];
        sb_fmt(port, sizeof(port), "%d", reporter_api_port(api));
        sb_log_kv(SB_LOG_INFO, "read API and dashboard listening", "bind",
                  sb_config_str(cfg, "http.bind"), "port", port, NULL);
    }
    sb_log_kv(SB_LOG_INFO, "projecting", "topics", sb_config_str(cfg, "topics"), NULL);
    rc = 0;
    int64_t reports_next = 0;
    while (!sb_stop_requested()) {
        if (sb_mono_ms() >= reports_next) {
            staffing_publish(&r);
            if (sb_config_bool(cfg, "reports.enabled"))
                reports_tick(&r);
            reports_next = sb_mono_ms() + 60000;
        }
        if (sb_stage_run(stage, 0, 1000) != 0) {
            rc = 1;
            break;
        }
        reporter_batch_clear(&r); /* a batch that could not commit comes back */
    }
    sb_log_kv(SB_LOG_INFO, rc ? "stopping after a fatal Kafka error" : "stopping", NULL);
out:
    reporter_api_destroy(api); /* stop answering first: its connections are its own */
    sb_stage_destroy(stage);
    sb_admin_destroy(admin);
    sb_producer_destroy(producer, (int)sb_config_int(cfg, "shutdown.timeout_ms"));
    sb_pg_destroy(r.pg);
    free(r.batch.p);
    sb_metrics_destroy(r.metrics);
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    struct sb_config *cfg = NULL;
    int rc = sb_service_configure(
        argc, argv, SB_REPORTER_PROGRAM,
        "Projections in PostgreSQL: every event of every topic stored "
        "once in ticket_events and applied to the current-state "
        "tables (tickets, incidents, agent presence, DLQ entries); the read API "
        "and the live dashboard on http.bind:http.port.",
        reporter_defs, sizeof(reporter_defs) / sizeof(reporter_defs[0]), &cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sb_signals_install();
    rc = run(cfg);
    sb_config_destroy(cfg);
    return rc;
}
