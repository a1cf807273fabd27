/* sb-triage: classification, extraction, masking, customer lookup and priority
 * (SPEC.md §2). Consumes sb.contacts.v1 (and supervisor overrides on sb.activity.v1),
 * produces sb.tickets.v1. SIGHUP reloads the rule book, the model and the knowledge
 * base between batches: no message is dropped, and a broken file keeps the old set. */
#include "triage.h"

#include "sb/err.h"
#include "sb/http.h"
#include "sb/log.h"
#include "sb/service.h"
#include "sb/stage.h"
#include "sb/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct sb_config_def triage_defs[] = {
    {"admin.port", "SB_ADMIN_PORT", SB_CFG_INT, "9102", 0, 65535, 0,
     "port of /healthz /readyz /metrics"},
    {"kafka.group", "SB_KAFKA_GROUP", SB_CFG_STRING, "sb-triage", 0, -1, 0,
     "consumer group: instances of one group share the partitions"},
    {"kafka.produce_timeout_ms", "SB_KAFKA_PRODUCE_TIMEOUT_MS", SB_CFG_INT, "10000", 500, 120000, 0,
     "time Kafka has to acknowledge a batch before it is retried"},
    {"topics.contacts", "SB_TOPICS_CONTACTS", SB_CFG_STRING, SB_TOPIC_CONTACTS, 0, -1, 0,
     "topic of the contacts to triage"},
    {"topics.activity", "SB_TOPICS_ACTIVITY", SB_CFG_STRING, SB_TOPIC_ACTIVITY, 0, -1, 0,
     "topic of agent actions (supervisor priority overrides)"},
    {"topics.tickets", "SB_TOPICS_TICKETS", SB_CFG_STRING, SB_TOPIC_TICKETS, 0, -1, 0,
     "topic the tickets are produced to"},
    {"batch.max", "SB_BATCH_MAX", SB_CFG_INT, "500", 1, 10000, 0,
     "contacts handled per batch (one round of Redis, PostgreSQL and Kafka calls)"},
    {"batch.ms", "SB_BATCH_MS", SB_CFG_INT, "20", 1, 10000, 0, "longest wait for a batch to fill"},
    {"triage.rules_file", "SB_TRIAGE_RULES_FILE", SB_CFG_STRING, "deploy/config/triage-rules.json",
     0, -1, 0, "rule book (relative paths: from the working directory, else the install root)"},
    {"triage.model_file", "SB_TRIAGE_MODEL_FILE", SB_CFG_STRING, "deploy/config/triage-model.tsv",
     0, -1, 0, "trained domain model (sbctl train triage); empty: rules only"},
    {"triage.knowledge_base", "SB_TRIAGE_KNOWLEDGE_BASE", SB_CFG_BOOL, "true", 0, -1, 0,
     "match the kb_articles of PostgreSQL for self-service suggestions"},
    {"triage.kb_refresh_s", "SB_TRIAGE_KB_REFRESH_S", SB_CFG_INT, "300", 5, 86400, 0,
     "how often the knowledge base is read again"},
    {"triage.tz_offset_min", "SB_TRIAGE_TZ_OFFSET_MIN", SB_CFG_INT, "480", -720, 840, 0,
     "the customers' time zone, minutes east of UTC, for \"yesterday 2pm\""},
    {"incident.threshold", "SB_INCIDENT_THRESHOLD", SB_CFG_INT, "10", 2, 100000, 0,
     "similar contacts within the window that make an incident"},
    {"incident.window_s", "SB_INCIDENT_WINDOW_S", SB_CFG_INT, "900", 10, 86400, 0,
     "sliding window of incident detection"},
    {"score.vip_spend", "SB_SCORE_VIP_SPEND", SB_CFG_DOUBLE, "10000", 0, 1e12, 0,
     "annual spend from which a customer is VIP (tier 3)"},
    {"score.regular_spend", "SB_SCORE_REGULAR_SPEND", SB_CFG_DOUBLE, "1000", 0, 1e12, 0,
     "annual spend from which a customer is regular (tier 2)"},
    {"score.amount_impact", "SB_SCORE_AMOUNT_IMPACT", SB_CFG_DOUBLE, "1000", 0, 1e12, 0,
     "amount from which one customer's problem has impact 2"},
    {"score.p1_min", "SB_SCORE_P1_MIN", SB_CFG_INT, "8", 1, 10, 0, "lowest score of band P1"},
    {"score.p2_min", "SB_SCORE_P2_MIN", SB_CFG_INT, "5", 1, 10, 0, "lowest score of band P2"},
    {"score.p3_min", "SB_SCORE_P3_MIN", SB_CFG_INT, "3", 1, 10, 0, "lowest score of band P3"},
    {"cache.tier_ttl_s", "SB_CACHE_TIER_TTL_S", SB_CFG_INT, "3600", 1, 30 * 86400, 0,
     "how long a customer's tier is cached in Redis"},
    {"state.ttl_s", "SB_STATE_TTL_S", SB_CFG_INT, "2592000", 60, 365 * 86400, 0,
     "how long a ticket's scores are remembered for re-scoring"},
};

static volatile sig_atomic_t reload_requested;

static void on_sighup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

/* A relative path is tried from the working directory, then from the install root
 * (two levels above the executable, as in build/bin/sb-triage), then SB_REPO_ROOT. */
static void resolve_path(const char *path, char *out, size_t outsz)
{
    char exe[4096];
    ssize_t n;
    const char *root = getenv("SB_REPO_ROOT");

    sb_strlcpy(out, path, outsz);
    if (path[0] == '/' || access(path, R_OK) == 0)
        return;
    if (root != NULL && root[0] != '\0' && sb_fmt(exe, sizeof(exe), "%s/%s", root, path) == 0 &&
        access(exe, R_OK) == 0) {
        sb_strlcpy(out, exe, outsz);
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (slash == NULL)
            return;
        *slash = '\0';
    }
    char cand[4096 + 256];
    if (sb_fmt(cand, sizeof(cand), "%s/%s", exe, path) == 0 && access(cand, R_OK) == 0)
        sb_strlcpy(out, cand, outsz);
}

struct sb_pg *triage_pg(struct triage *t)
{
    return sb_pg_lazy(&t->pg, t->pg_dsn, &t->pg_retry_ms, NULL);
}

/* The knowledge base as extra rules plus the articles' texts. Returns 0 or -1 (the
 * caller keeps what it had). */
static int load_articles(struct triage *t, json_t **rules_out, json_t **articles_out)
{
    struct sb_pg *pg = triage_pg(t);
    PGresult *res;
    char err[256];
    int perr = 0;

    *rules_out = json_array();
    *articles_out = json_object();
    if (!sb_config_bool(t->cfg, "triage.knowledge_base"))
        return 0;
    if (pg == NULL)
        return -1;
    res = sb_pg_query(pg,
                      "SELECT id, title, answer, array_to_json(terms)::text FROM kb_articles "
                      "WHERE active ORDER BY id",
                      0, NULL, &perr, err, sizeof(err));
    if (res == NULL) {
        sb_log_kv(SB_LOG_WARN, "knowledge base unavailable", "detail", err, NULL);
        return -1;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0);
        char rid[128];
        json_t *terms = json_loads(PQgetvalue(res, r, 3), 0, NULL);
        sb_fmt(rid, sizeof(rid), "kb.%s", id);
        json_array_append_new(*rules_out, json_pack("{s:s, s:o, s:s, s:f}", "id", rid, "terms",
                                                    terms ? terms : json_array(), "article", id,
                                                    "weight", 0.0));
        json_object_set_new(*articles_out, id,
                            json_pack("{s:s, s:s}", "title", PQgetvalue(res, r, 1), "answer",
                                      PQgetvalue(res, r, 2)));
    }
    PQclear(res);
    return 0;
}

/* Builds the rule set, the model and the knowledge base; on success replaces the
 * current ones. Returns 0, or -1 leaving everything as it was. */
static int load_all(struct triage *t, int first)
{
    char rules_path[4096], model_path[4096], err[512], n1[24], n2[24], n3[24];
    const char *mp = sb_config_str(t->cfg, "triage.model_file");
    json_t *extra = NULL, *articles = NULL;
    struct sb_ruleset *rs;
    struct sb_model *model = NULL;

    if (load_articles(t, &extra, &articles) != 0 && !first) {
        json_decref(extra);
        json_decref(articles);
        return -1; /* keep the knowledge base we have */
    }
    resolve_path(sb_config_str(t->cfg, "triage.rules_file"), rules_path, sizeof(rules_path));
    rs = sb_ruleset_load(rules_path, extra, err, sizeof(err));
    json_decref(extra);
    if (rs == NULL) {
        sb_log_kv(SB_LOG_ERROR, "rule book refused", "detail", err, NULL);
        json_decref(articles);
        return -1;
    }
    if (mp[0] != '\0') {
        resolve_path(mp, model_path, sizeof(model_path));
        model = sb_model_load(model_path, err, sizeof(err));
        if (model == NULL) {
            sb_log_kv(SB_LOG_ERROR, "model refused", "detail", err, NULL);
            sb_ruleset_destroy(rs);
            json_decref(articles);
            return -1;
        }
    }
    sb_rulescan_destroy(t->scan);
    sb_ruleset_destroy(t->rules);
    sb_model_destroy(t->model);
    json_decref(t->articles);
    t->rules = rs;
    t->scan = sb_rulescan_new(rs);
    t->model = model;
    t->articles = articles;
    sb_metric_set(t->m_rules, (double)sb_ruleset_count(rs));
    sb_fmt(n1, sizeof(n1), "%zu", sb_ruleset_count(rs));
    sb_fmt(n2, sizeof(n2), "%zu", model ? sb_model_size(model) : (size_t)0);
    sb_fmt(n3, sizeof(n3), "%zu", json_object_size(articles));
    sb_log_kv(SB_LOG_INFO, first ? "rules loaded" : "rules reloaded", "rules", n1, "model_features",
              n2, "articles", n3, NULL);
    return 0;
}

static int ready(void *ctx, char *why, size_t why_size)
{
    struct triage *t = ctx;
    if (sb_producer_fatal(t->producer)) {
        sb_fmt(why, why_size, "kafka producer hit a fatal error; restarting");
        return 0;
    }
    if (sb_redis_ping(t->redis) != 0) {
        sb_fmt(why, why_size, "redis: no answer");
        return 0;
    }
    return 1;
}

static int run(struct sb_config *cfg)
{
    struct triage t;
    struct sb_kafka_opts kopts;
    struct sb_stage *stage = NULL;
    struct sb_admin *admin = NULL;
    const char *topics[] = {sb_config_str(cfg, "topics.contacts"),
                            sb_config_str(cfg, "topics.activity")};
    char err[512];
    int rc = 1;
    struct sigaction sa;

    memset(&t, 0, sizeof(t));
    t.cfg = cfg;
    sb_fmt(t.producer_name, sizeof(t.producer_name), "%s/%s", SB_TRIAGE_PROGRAM, SB_VERSION);
    t.pg_dsn = sb_config_str(cfg, "pg.dsn");
    t.topic_tickets = sb_config_str(cfg, "topics.tickets");
    t.topic_activity = topics[1];
    t.tz_offset_min = (int)sb_config_int(cfg, "triage.tz_offset_min");
    t.incident_threshold = (int)sb_config_int(cfg, "incident.threshold");
    t.incident_window_ms = sb_config_int(cfg, "incident.window_s") * 1000;
    t.tier_ttl_s = (int)sb_config_int(cfg, "cache.tier_ttl_s");
    t.state_ttl_s = (int)sb_config_int(cfg, "state.ttl_s");
    t.produce_timeout_ms = (int)sb_config_int(cfg, "kafka.produce_timeout_ms");
    t.score.vip_spend = sb_config_double(cfg, "score.vip_spend");
    t.score.regular_spend = sb_config_double(cfg, "score.regular_spend");
    t.score.amount_impact = sb_config_double(cfg, "score.amount_impact");
    t.score.p1_min = (int)sb_config_int(cfg, "score.p1_min");
    t.score.p2_min = (int)sb_config_int(cfg, "score.p2_min");
    t.score.p3_min = (int)sb_config_int(cfg, "score.p3_min");
    if (!(t.score.p1_min > t.score.p2_min && t.score.p2_min > t.score.p3_min)) {
        fprintf(stderr, "%s: score.p1_min > score.p2_min > score.p3_min is required\n",
                SB_TRIAGE_PROGRAM);
        return 2;
    }
    t.metrics = sb_metrics_new();
    static const double us_buckets[] = {1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 5e-4, 1e-3};
    t.m_classify_seconds =
        sb_metrics_histogram(t.metrics, "sb_triage_classify_seconds",
                             "Classification, extraction and masking of one contact (CPU)", NULL,
                             us_buckets, sizeof(us_buckets) / sizeof(us_buckets[0]));
    t.m_incidents = sb_metrics_counter(t.metrics, "sb_triage_incidents_total",
                                       "Incidents detected (similar contacts in a window)", NULL);
    t.m_incident_errors =
        sb_metrics_counter(t.metrics, "sb_triage_incident_errors_total",
                           "Batches scored without incident detection (script error)", NULL);
    t.m_crm_unavailable =
        sb_metrics_counter(t.metrics, "sb_triage_crm_unavailable_total",
                           "Batches scored without customer tiers (PostgreSQL down)", NULL);
    t.m_rules =
        sb_metrics_gauge(t.metrics, "sb_triage_rules", "Rules in the loaded rule book", NULL);

    t.redis = sb_redis_new(sb_config_str(cfg, "redis.url"),
                           (int)sb_config_int(cfg, "redis.timeout_ms"), err, sizeof(err));
    if (t.redis == NULL) {
        fprintf(stderr, "%s: redis: %s\n", SB_TRIAGE_PROGRAM, err);
        goto out;
    }
    triage_register_scripts(&t);
    if (load_all(&t, 1) != 0) {
        fprintf(stderr, "%s: cannot load the rule book or the model (see the log)\n",
                SB_TRIAGE_PROGRAM);
        goto out;
    }
    sb_service_kafka_opts(cfg, SB_TRIAGE_PROGRAM, &kopts);
    t.producer = sb_producer_new(&kopts, err, sizeof(err));
    if (t.producer == NULL) {
        fprintf(stderr, "%s: %s\n", SB_TRIAGE_PROGRAM, err);
        goto out;
    }
    {
        struct sb_stage_opts so = {
            .name = SB_TRIAGE_PROGRAM,
            .group = sb_config_str(cfg, "kafka.group"),
            .topics = topics,
            .ntopics = 2,
            .handle = triage_handle,
            .flush = triage_flush,
            .ctx = &t,
            .batch_max = (int)sb_config_int(cfg, "batch.max"),
            .batch_ms = (int)sb_config_int(cfg, "batch.ms"),
        };
        stage = sb_stage_new(&kopts, &so, t.producer, t.metrics, err, sizeof(err));
        if (stage == NULL) {
            fprintf(stderr, "%s: %s\n", SB_TRIAGE_PROGRAM, err);
            goto out;
        }
    }
    admin = sb_admin_new(sb_config_str(cfg, "admin.bind"), (int)sb_config_int(cfg, "admin.port"),
                         t.metrics, ready, &t, err, sizeof(err));
    if (admin == NULL) {
        fprintf(stderr, "%s: admin server: %s\n", SB_TRIAGE_PROGRAM, err);
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sighup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sb_log_kv(SB_LOG_INFO, "consuming", "contacts", topics[0], "activity", topics[1], "tickets",
              t.topic_tickets, NULL);

    int64_t kb_next = sb_mono_ms() + sb_config_int(cfg, "triage.kb_refresh_s") * 1000;
    rc = 0;
    while (!sb_stop_requested()) {
        /* Returns every second with its batch flushed: reloads happen between batches. */
        if (sb_stage_run(stage, 0, 1000) != 0) {
            rc = 1;
            break;
        }
        triage_batch_clear(&t); /* a batch that could not be made durable comes back */
        if (reload_requested || sb_mono_ms() >= kb_next) {
            int manual = reload_requested;
            reload_requested = 0;
            kb_next = sb_mono_ms() + sb_config_int(cfg, "triage.kb_refresh_s") * 1000;
            if (load_all(&t, 0) != 0 && manual)
                sb_log_kv(SB_LOG_ERROR, "reload refused; the previous rules stay in force", NULL);
        }
    }
    sb_log_kv(SB_LOG_INFO, rc ? "stopping after a fatal Kafka error" : "stopping", NULL);
out:
    sb_stage_destroy(stage);
    sb_admin_destroy(admin);
    sb_producer_destroy(t.producer, (int)sb_config_int(cfg, "shutdown.timeout_ms"));
    triage_batch_clear(&t);
    free(t.items);
    free(t.states);
    sb_rulescan_destroy(t.scan);
    sb_ruleset_destroy(t.rules);
    sb_model_destroy(t.model);
    json_decref(t.articles);
    sb_redis_destroy(t.redis);
    sb_pg_destroy(t.pg);
    sb_metrics_destroy(t.metrics);
    return rc;
}

int main(int argc, char **argv)
{
    struct sb_config *cfg = NULL;
    int rc = sb_service_configure(argc, argv, SB_TRIAGE_PROGRAM,
                                  "Classification, 5W1H extraction, masking, customer tier, "
                                  "incidents and priority: consumes sb.contacts.v1 and "
                                  "sb.activity.v1, produces sb.tickets.v1.",
                                  triage_defs, sizeof(triage_defs) / sizeof(triage_defs[0]), &cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sb_signals_install();
    rc = run(cfg);
    sb_config_destroy(cfg);
    return rc;
}
