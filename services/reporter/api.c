/* The read API of sb-reporter (docs/api.md) and the dashboard's files. Every request is
 * one GET: the bearer token is looked up (api_tokens, or the configured admin token), the
 * parameters are checked here with the offending one named in a 400, and one prepared
 * statement builds the whole JSON answer in PostgreSQL. Each HTTP worker thread has its
 * own PostgreSQL connection (sb_pg is not thread-safe, and the projection's connection
 * belongs to the main thread); a connection that cannot be made answers 503 with
 * Retry-After. Role scope is part of every statement: agent = tickets it owns, lead =
 * tickets of its team, supervisor and admin = everything. */
#include "api.h"

#include "sb/err.h"
#include "sb/http.h"
#include "sb/log.h"
#include "sb/pg.h"
#include "sb/redis.h"
#include "sb/strbuf.h"
#include "sb/util.h"

#include <assert.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ID_MAX 128
#define TOKEN_MAX 256
#define LIST_MAX 16
#define SEARCH_LIMIT_MAX 500
#define SEARCH_LIMIT_DEFAULT 50

/* One worker thread's connections, kept on a list so that shutdown closes them all. */
struct worker {
    struct sb_pg *pg;
    int64_t pg_retry_ms;
    struct sb_redis *redis;
    int64_t redis_retry_ms;
    struct worker *next;
};

/* Answers shared by every reader for api.cache_ms: the center-wide ones (the day's
 * summary, the live queues) that every dashboard polls, and ticket searches, keyed by
 * their parameters and the reader's scope. The key says how to compute the answer again,
 * so a stale answer is refreshed by the refresher thread while readers still get it: no
 * request waits for a recomputation once an answer exists. */
#define CACHE_SLOTS 64
#define CACHE_KEY_MAX 2048 /* holds every search key (parameters are bounded) */
#define KEY_SEP '\x1f'     /* between the fields of a key; never in a validated parameter */
struct cached {
    char key[CACHE_KEY_MAX];
    char *body;
    size_t len;
    int64_t at_ms;
    int busy;    /* being computed (by a request or the refresher) */
    int refresh; /* stale and read: the refresher recomputes it */
};

struct reporter_api {
    const struct sb_config *cfg;
    const char *pg_dsn, *redis_url;
    int redis_timeout_ms;
    char admin_hash[2 * SHA256_DIGEST_LENGTH + 1]; /* "" when no admin token is set */
    struct sb_http_server *http;
    pthread_key_t worker_key;
    pthread_mutex_t workers_lock;
    struct worker *workers;
    struct sb_metric *m_requests[3]; /* 2xx, 4xx, 5xx */
    struct sb_metric *m_seconds;
    struct sb_metric *m_cache[2]; /* hit, miss */
    int64_t cache_ms;
    pthread_mutex_t cache_lock;
    pthread_cond_t cache_cond;
    struct cached cache[CACHE_SLOTS];
    unsigned cache_next;
    pthread_cond_t refresh_cond; /* a slot wants a refresh, or stopping */
    pthread_t refresher;
    int refresher_started, stopping;
    char targets[512];   /* the summary's targets, a JSON object built from targets.* */
    char due_soon_s[24]; /* api.sla_due_soon_s: the at-risk horizon of the SLA risks */
};

/* Who is asking: scope "all" (supervisor, admin), "lead" (team) or "agent" (own). */
struct principal {
    char role[16];
    char scope[8];
    char agent_id[ID_MAX];
    char team[ID_MAX];
};

/* ------------------------------------------------------------------ statements */

static const char sql_token[] =
    "SELECT t.role, coalesce(t.agent_id, ''), coalesce(a.team_id, '') FROM api_tokens t "
    "LEFT JOIN agents a ON a.id = t.agent_id "
    "WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL";

/* The scope condition over tickets t (owner's roster row a): $S scope, $A agent, $T team. */
#define SCOPE(S, A, T)                                                                             \
    "(" S " = 'all' OR (" S " = 'agent' AND t.owner_agent_id = " A ") OR (" S                      \
    " = 'lead' AND (a.team_id = " T " OR t.team_id = " T ")))"

static const char sql_ticket[] =
    "SELECT (to_jsonb(t) - 'id' || jsonb_build_object('ticket_id', t.id, 'owner_team_id', "
    "a.team_id, 'timeline', coalesce((SELECT jsonb_agg(jsonb_build_object('event_id', "
    "e.event_id, 'type', e.type, 'occurred_at', e.occurred_at, 'producer', e.producer, "
    "'trace_id', e.trace_id, 'topic', e.topic, 'payload', e.payload) ORDER BY e.occurred_at, "
    "e.event_id) FROM ticket_events e WHERE e.ticket_id = t.id), '[]'::jsonb)))::text, " SCOPE(
        "$2", "$3", "$4") " FROM tickets t LEFT JOIN agents a ON a.id = t.owner_agent_id "
                          "WHERE t.id = $1";

/* Newest first by (created_at, id); the cursor is "<created_at in epoch µs>:<id>" of the
 * last row of the previous page, so pages never skip or repeat a row. */
static const char sql_search[] =
    "SELECT jsonb_build_object('ticket_id', t.id, 'status', t.status, 'band', t.band, "
    "'channel', t.channel, 'domain', t.domain, 'subject', t.subject, 'queue', t.queue, "
    "'owner_agent_id', t.owner_agent_id, 'team_id', coalesce(t.team_id, a.team_id), "
    "'customer_no', t.customer_no, 'created_at', t.created_at, 'first_response_at', "
    "t.first_response_at, 'resolved_at', t.resolved_at, 'updated_at', t.updated_at, 'csat', "
    "t.csat, 'sla_breaches', t.sla_breaches, 'merged_into', t.merged_into)::text, "
    "((extract(epoch FROM t.created_at) * 1000000)::bigint)::text || ':' || t.id "
    "FROM tickets t LEFT JOIN agents a ON a.id = t.owner_agent_id "
    "WHERE ($1::text[] IS NULL OR t.status = ANY ($1::text[])) "
    "AND ($2::text IS NULL OR t.queue = $2) "
    "AND ($3::text IS NULL OR t.owner_agent_id = $3) "
    "AND ($4::text[] IS NULL OR t.band = ANY ($4::text[])) "
    "AND ($5::timestamptz IS NULL OR t.created_at >= $5::timestamptz) "
    "AND ($6::timestamptz IS NULL OR t.created_at < $6::timestamptz) "
    "AND ($7::bigint IS NULL OR (t.created_at, t.id) < ('epoch'::timestamptz + $7::bigint * "
    "interval '1 microsecond', $8::text)) "
    "AND ($9::text IS NULL OR t.channel = $9) "
    "AND " SCOPE("$10", "$11", "$12") " ORDER BY t.created_at DESC, t.id DESC LIMIT $13";

/* Waiting = not owned by anyone and not yet past the offer (SPEC §6 "queue lengths"). */
static const char sql_queues[] =
    "WITH w AS (SELECT coalesce(t.queue, '') AS queue, coalesce(t.channel, '') AS channel, "
    "coalesce(t.band, '') AS band, coalesce(t.team_id, '') AS team, t.created_at "
    "FROM tickets t WHERE t.status IN ('new', 'queued', 'offered') "
    "AND t.owner_agent_id IS NULL AND t.merged_into IS NULL) "
    "SELECT jsonb_build_object('as_of', now(), 'waiting', (SELECT count(*) FROM w), "
    "'oldest_wait_s', (SELECT round(extract(epoch FROM now() - min(created_at)))::bigint "
    "FROM w), 'queues', coalesce((SELECT jsonb_agg(q ORDER BY q.oldest_wait_s DESC, q.queue, "
    "q.channel, q.band) FROM (SELECT queue, channel, band, team, count(*) AS waiting, "
    "round(extract(epoch FROM now() - min(created_at)))::bigint AS oldest_wait_s, "
    "min(created_at) AS oldest_since FROM w GROUP BY 1, 2, 3, 4) q), '[]'::jsonb), "
    "'channels', coalesce((SELECT jsonb_agg(jsonb_build_object('channel', c.channel, 'waiting', "
    "c.waiting, 'oldest_wait_s', c.oldest_wait_s, 'by_band', (SELECT jsonb_object_agg(z.band, "
    "z.n) FROM (SELECT band, count(*) AS n FROM w WHERE w.channel = c.channel GROUP BY 1) z)) "
    "ORDER BY c.channel) FROM (SELECT channel, count(*) AS waiting, round(extract(epoch FROM "
    "now() - min(created_at))::numeric, 1) AS oldest_wait_s FROM w GROUP BY 1) c), "
    "'[]'::jsonb))::text";

/* $1 scope, $2 agent, $3 team, $4 the UTC day of "today". */
static const char sql_agents[] =
    "WITH ids AS (SELECT id AS agent_id FROM agents WHERE active "
    "UNION SELECT agent_id FROM agent_presence), "
    "open AS (SELECT owner_agent_id AS agent_id, coalesce(channel, '') AS channel, count(*) AS n "
    "FROM tickets WHERE owner_agent_id IS NOT NULL AND merged_into IS NULL "
    "AND status NOT IN ('resolved', 'awaiting_archive', 'archived') GROUP BY 1, 2), "
    "load AS (SELECT agent_id, sum(n)::integer AS open_tickets, jsonb_object_agg(channel, n) AS "
    "by_channel FROM open GROUP BY 1), "
    "done AS (SELECT owner_agent_id AS agent_id, count(*) AS resolved, round(avg(csat), 2) AS "
    "csat_avg FROM tickets WHERE resolved_at >= $4::date::timestamp AT TIME ZONE 'UTC' "
    "AND resolved_at < ($4::date + 1)::timestamp AT TIME ZONE 'UTC' "
    "AND owner_agent_id IS NOT NULL GROUP BY 1), "
    "rep AS (SELECT payload -> 'actor' ->> 'agent_id' AS agent_id, count(*) AS replies, "
    "count(DISTINCT ticket_id) AS tickets FROM ticket_events WHERE type = 'agent.replied' "
    "AND occurred_at >= $4::date::timestamp AT TIME ZONE 'UTC' "
    "AND occurred_at < ($4::date + 1)::timestamp AT TIME ZONE 'UTC' GROUP BY 1) "
    "SELECT jsonb_build_object('as_of', now(), 'day', $4::date, 'agents', "
    "coalesce(jsonb_agg(jsonb_build_object('agent_id', i.agent_id, 'name', a.name, 'team_id', "
    "a.team_id, 'role', a.role, 'status', coalesce(p.status, 'offline'), 'since', p.since, "
    "'capacities', coalesce(p.capacities, CASE WHEN a.id IS NOT NULL THEN "
    "jsonb_build_object('call', a.capacity_call, 'chat', a.capacity_chat, 'email', "
    "a.capacity_email, 'social', a.capacity_social) END), "
    "'open_tickets', coalesce(l.open_tickets, 0), 'load', coalesce(l.by_channel, '{}'::jsonb), "
    "'resolved_today', coalesce(d.resolved, 0), 'csat_today', d.csat_avg, "
    "'replies_today', coalesce(r.replies, 0), 'tickets_replied_today', coalesce(r.tickets, 0)) "
    "ORDER BY i.agent_id), '[]'::jsonb))::text "
    "FROM ids i LEFT JOIN agents a ON a.id = i.agent_id "
    "LEFT JOIN agent_presence p ON p.agent_id = i.agent_id "
    "LEFT JOIN load l ON l.agent_id = i.agent_id LEFT JOIN done d ON d.agent_id = i.agent_id "
    "LEFT JOIN rep r ON r.agent_id = i.agent_id "
    "WHERE $1 = 'all' OR ($1 = 'agent' AND i.agent_id = $2) OR ($1 = 'lead' AND a.team_id = $3)";

/* SLA clocks of open tickets that breached, were warned, or are due within $5 seconds
 * (api.sla_due_soon_s); a first-response clock ends with the first response. With them
 * the consultation and complaint slips still unanswered (sb-ingest's ticket_slips) past
 * or within $5 seconds of their due time, as clocks "slip:<id>" of kind
 * consultation_slip or complaint_slip: a department's late answer shows where an SLA
 * would. $1..$3 the scope, $4 the limit. */
static const char sql_sla[] =
    "WITH c AS (SELECT DISTINCT ON (payload ->> 'clock_id') ticket_id, payload ->> 'clock_id' AS "
    "clock_id, payload ->> 'kind' AS kind, payload ->> 'band' AS band, "
    "(payload ->> 'target_at')::timestamptz AS target_at FROM ticket_events "
    "WHERE type IN ('sla.started', 'sla.warning', 'sla.breached') "
    "AND occurred_at > now() - interval '30 days' AND payload ->> 'clock_id' IS NOT NULL "
    "ORDER BY payload ->> 'clock_id', occurred_at DESC), "
    "s AS (SELECT payload ->> 'clock_id' AS clock_id, bool_or(type = 'sla.breached') AS "
    "breached, bool_or(type = 'sla.warning') AS warned FROM ticket_events "
    "WHERE type IN ('sla.warning', 'sla.breached') AND occurred_at > now() - interval '30 days' "
    "GROUP BY 1), "
    "u AS (SELECT c.*, coalesce(s.breached, false) AS breached, coalesce(s.warned, false) AS "
    "warned FROM c LEFT JOIN s ON s.clock_id = c.clock_id "
    "WHERE s.breached OR s.warned OR c.target_at < now() + $5::int * interval '1 second' "
    "UNION ALL SELECT ticket_id, 'slip:' || id, kind || '_slip', NULL, due_at, due_at <= now(), "
    "false FROM ticket_slips WHERE state = 'open' AND due_at < now() + $5::int * interval '1 "
    "second'), "
    "r AS (SELECT u.ticket_id, u.clock_id, u.kind, coalesce(u.band, t.band) AS band, "
    "u.target_at, u.breached, u.warned, t.status, t.owner_agent_id, t.queue, t.channel FROM u "
    "JOIN tickets t ON t.id = u.ticket_id LEFT JOIN agents a ON a.id = t.owner_agent_id "
    "WHERE t.status NOT IN ('resolved', 'awaiting_archive', 'archived') "
    "AND t.merged_into IS NULL AND NOT (u.kind = 'first_response' AND t.first_response_at IS "
    "NOT NULL) AND " SCOPE(
        "$1", "$2",
        "$3") ") "
              "SELECT jsonb_build_object('as_of', now(), "
              "'breached', (SELECT count(*) FROM r WHERE breached), "
              "'at_risk', (SELECT count(*) FROM r WHERE NOT breached), "
              "'items', coalesce((SELECT jsonb_agg(jsonb_build_object('ticket_id', ticket_id, "
              "'clock_id', clock_id, 'kind', kind, 'band', band, 'target_at', target_at, "
              "'remaining_s', round(extract(epoch FROM target_at - now())::numeric, 0), 'state', "
              "CASE WHEN breached THEN 'breached' WHEN warned THEN 'warning' ELSE 'due_soon' END, "
              "'status', status, 'owner_agent_id', owner_agent_id, 'queue', queue, 'channel', "
              "channel) "
              "ORDER BY breached DESC, target_at) FROM (SELECT * FROM r ORDER BY breached DESC, "
              "target_at LIMIT $4) x), '[]'::jsonb))::text";

static const char sql_reports[] =
    "SELECT jsonb_build_object('reports', coalesce(jsonb_agg(jsonb_build_object('id', "
    "r.id::text, 'kind', r.kind, 'period_start', r.period_start, 'period_end', r.period_end, "
    "'generated_at', r.generated_at, 'formats', CASE WHEN r.csv IS NOT NULL AND r.html IS NOT "
    "NULL THEN '[\"csv\",\"html\"]'::jsonb ELSE '[]'::jsonb END, 'csv_url', "
    "format('/api/v1/reports/%s/%s.csv', r.kind, r.period_start), 'html_url', "
    "format('/api/v1/reports/%s/%s.html', r.kind, r.period_start), 'summary', "
    "r.content -> 'summary') ORDER BY r.period_start DESC, r.kind), '[]'::jsonb))::text "
    "FROM (SELECT * FROM reports WHERE ($1::text IS NULL OR kind = $1) "
    "AND ($2::date IS NULL OR $2::date BETWEEN period_start AND period_end) "
    "ORDER BY period_start DESC, kind LIMIT $3) r";

/* $1 kind, $2 a day inside the period (or $3 the id). */
static const char sql_report_file[] =
    "SELECT coalesce(csv, ''), coalesce(html, ''), content::text, kind, period_start::text "
    "FROM reports WHERE ($3::bigint IS NULL AND kind = $1 AND $2::date BETWEEN period_start "
    "AND period_end) OR id = $3::bigint ORDER BY period_start DESC LIMIT 1";

/* The day's figures from the bi views (docs/metrics.md), the backlog now, the day's
 * arrivals per hour, the seven days up to it; $2 the targets (configuration, SPEC §6). */
static const char sql_summary[] =
    "WITH d AS (SELECT * FROM bi.daily_service WHERE day = $1::date), "
    "c AS (SELECT * FROM bi.csat_daily WHERE day = $1::date), "
    "f AS (SELECT * FROM bi.followup_daily WHERE day = $1::date), "
    "n AS (SELECT * FROM bi.feedback_daily WHERE day = $1::date), "
    "s AS (SELECT * FROM bi.sla_attainment WHERE day = $1::date), "
    "b AS (SELECT coalesce(band, 'none') AS band, sum(open_tickets)::integer AS n, "
    "min(oldest_created_at) AS oldest FROM bi.backlog GROUP BY 1) "
    "SELECT jsonb_build_object('at', now(), 'date', $1::date, "
    "'kpi', jsonb_build_object("
    "'arrivals', coalesce((SELECT arrivals FROM d), 0), "
    "'first_response_avg_s', (SELECT round(first_response_avg_s::numeric, 1) FROM d), "
    "'first_response_p50_s', (SELECT round(first_response_p50_s::numeric, 1) FROM d), "
    "'first_response_p90_s', (SELECT round(first_response_p90_s::numeric, 1) FROM d), "
    "'first_resolution_avg_s', (SELECT round(first_resolution_avg_s::numeric, 1) FROM d), "
    "'response_rate', (SELECT round(response_rate, 4) FROM d), "
    "'resolution_rate', (SELECT round(resolution_rate, 4) FROM d), "
    "'first_contact_resolution', (SELECT round(fcr_rate, 4) FROM d), "
    "'csat_avg', (SELECT round(csat_avg, 2) FROM c), "
    "'csat_top2_share', (SELECT round(top2_share, 4) FROM c), "
    "'csat_answers', coalesce((SELECT answers FROM c), 0), "
    "'csat_response_rate', (SELECT round(response_rate, 4) FROM c), "
    "'sla_due', coalesce((SELECT sum(due) FROM s), 0), "
    "'sla_attainment', (SELECT round(sum(met)::numeric / nullif(sum(due), 0), 4) FROM s), "
    "'breached_tickets', coalesce((SELECT breached_tickets FROM d), 0), "
    "'backlog', coalesce((SELECT sum(n) FROM b), 0), "
    "'followup_due', coalesce((SELECT callbacks_due FROM f), 0), "
    "'followup_rate', (SELECT round(followup_rate, 4) FROM f), "
    "'negative_feedback', coalesce((SELECT negative FROM n), 0), "
    "'attitude_share', (SELECT round(attitude_share, 4) FROM n)), "
    "'daily', (SELECT to_jsonb(d) FROM d), "
    "'followup', (SELECT to_jsonb(f) FROM f), "
    "'feedback', (SELECT to_jsonb(n) FROM n), "
    "'csat', (SELECT to_jsonb(c) FROM c), "
    "'sla', coalesce((SELECT jsonb_agg(to_jsonb(s) ORDER BY s.kind, s.band) FROM s), "
    "'[]'::jsonb), "
    "'sla_by_band', coalesce((SELECT jsonb_object_agg(band, jsonb_build_object('due', due, "
    "'met', met, 'attainment', round(met::numeric / nullif(due, 0), 4))) FROM (SELECT "
    "coalesce(band, 'none') AS band, sum(due) AS due, sum(met) AS met FROM s GROUP BY 1) x), "
    "'{}'::jsonb), "
    "'backlog_by_band', coalesce((SELECT jsonb_object_agg(band, n) FROM b), '{}'::jsonb), "
    "'backlog_oldest_s', (SELECT round(extract(epoch FROM now() - min(oldest))::numeric, 0) "
    "FROM b), "
    "'arrivals_hourly', coalesce((SELECT jsonb_agg(jsonb_build_object('hour', hour, "
    "'arrivals', n, 'by_channel', ch) ORDER BY hour) FROM (SELECT hour, sum(arrivals)::integer "
    "AS n, jsonb_object_agg(coalesce(channel, ''), arrivals) AS ch FROM (SELECT hour, channel, "
    "sum(arrivals)::integer AS arrivals FROM bi.arrivals_hourly WHERE hour >= "
    "$1::date::timestamp AT TIME ZONE 'UTC' AND hour < ($1::date + 1)::timestamp AT TIME ZONE "
    "'UTC' GROUP BY 1, 2) y GROUP BY 1) h), '[]'::jsonb), "
    "'trend', coalesce((SELECT jsonb_agg(jsonb_build_object('day', day, 'arrivals', arrivals, "
    "'first_response_avg_s', round(first_response_avg_s::numeric, 1), 'resolution_rate', "
    "round(resolution_rate, 4), 'first_contact_resolution', round(fcr_rate, 4), 'csat_avg', "
    "round(csat_avg, 2), 'breached_tickets', breached_tickets) ORDER BY day) "
    "FROM bi.daily_service WHERE day > $1::date - 7 AND day <= $1::date), '[]'::jsonb), "
    "'targets', $2::jsonb)::text";

struct statement {
    const char *name, *sql;
    int nparams;
};

static const struct statement statements[] = {
    {"api_token", sql_token, 1},     {"api_ticket", sql_ticket, 4},
    {"api_search", sql_search, 13},  {"api_queues", sql_queues, 0},
    {"api_agents", sql_agents, 4},   {"api_sla", sql_sla, 5},
    {"api_reports", sql_reports, 3}, {"api_report_file", sql_report_file, 3},
    {"api_summary", sql_summary, 2},
};

/* ------------------------------------------------------------------ connections */

static struct worker *worker_get(struct reporter_api *api)
{
    struct worker *w = pthread_getspecific(api->worker_key);

    if (w != NULL)
        return w;
    w = sb_calloc(1, sizeof(*w));
    pthread_setspecific(api->worker_key, w);
    pthread_mutex_lock(&api->workers_lock);
    w->next = api->workers;
    api->workers = w;
    pthread_mutex_unlock(&api->workers_lock);
    return w;
}

/* This thread's PostgreSQL connection with the API's statements, or NULL while
 * PostgreSQL is unreachable (the caller answers 503). */
static struct sb_pg *api_pg(struct reporter_api *api)
{
    struct worker *w = worker_get(api);
    char err[256];
    int fresh = 0;
    struct sb_pg *pg = sb_pg_lazy(&w->pg, api->pg_dsn, &w->pg_retry_ms, &fresh);

    if (pg == NULL || !fresh)
        return pg;
    /* One core per query: on a small machine a recomputed summary must not take every
     * core from the requests answered meanwhile. */
    if (sb_pg_exec(pg, "SET max_parallel_workers_per_gather = 0", err, sizeof(err)) != 0)
        sb_log_kv(SB_LOG_WARN, "cannot limit the read API's parallel workers", "detail", err, NULL);
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
        if (sb_pg_prepare(pg, statements[i].name, statements[i].sql, statements[i].nparams, err,
                          sizeof(err)) != 0) {
            sb_log_kv(SB_LOG_ERROR, "cannot prepare a read API statement (is the schema migrated?)",
                      "statement", statements[i].name, "detail", err, NULL);
            sb_pg_destroy(w->pg);
            w->pg = NULL;
            w->pg_retry_ms = sb_mono_ms() + 5000;
            return NULL;
        }
    }
    return pg;
}

/* This thread's Redis connection, or NULL (the live views then go without estimates). */
static struct sb_redis *api_redis(struct reporter_api *api)
{
    struct worker *w = worker_get(api);
    char err[256];

    if (w->redis == NULL && sb_mono_ms() >= w->redis_retry_ms) {
        w->redis = sb_redis_new(api->redis_url, api->redis_timeout_ms, err, sizeof(err));
        if (w->redis == NULL) {
            w->redis_retry_ms = sb_mono_ms() + 5000;
            sb_log_kv(SB_LOG_WARN, "redis unreachable: queue estimates left out", "detail", err,
                      NULL);
        }
    }
    return w->redis;
}

/* ------------------------------------------------------------------ answers */

static void unavailable(struct sb_http_resp *resp, const char *what)
{
    sb_http_resp_error(resp, 503, "unavailable", what, NULL);
    sb_http_resp_header(resp, "Retry-After", "2");
}

/* Runs a prepared statement on this thread's connection. Returns its result, or NULL
 * with *e SB_E_IO (PostgreSQL unreachable or the connection dropped) or another code
 * (the statement failed, logged here). */
static PGresult *run(struct reporter_api *api, const char *name, int nparams,
                     const char *const *params, int *e)
{
    struct sb_pg *pg = api_pg(api);
    char err[512];
    PGresult *res;

    *e = 0;
    if (pg == NULL) {
        *e = SB_E_IO;
        return NULL;
    }
    res = sb_pg_query_prepared(pg, name, nparams, params, e, err, sizeof(err));
    if (res != NULL)
        return res;
    if (*e != SB_E_IO) {
        sb_log_kv(SB_LOG_ERROR, "read API statement failed", "statement", name, "detail", err,
                  NULL);
        if (*e == 0)
            *e = SB_E_FATAL;
    }
    return NULL;
}

/* The answer to a failed run(). */
static void failed(struct sb_http_resp *resp, int e)
{
    if (e == SB_E_IO)
        unavailable(resp, "PostgreSQL is unreachable or the connection was lost");
    else
        sb_http_resp_error(resp, 500, "internal", "the query failed", NULL);
}

/* Runs a prepared statement. Returns its result, or NULL after answering 503 (database
 * unreachable or the connection dropped) or 500 (the statement failed). */
static PGresult *query(struct reporter_api *api, struct sb_http_resp *resp, const char *name,
                       int nparams, const char *const *params)
{
    int e;
    PGresult *res = run(api, name, nparams, params, &e);

    if (res == NULL)
        failed(resp, e);
    return res;
}

/* Answers with the first column of a one-row JSON result. */
static void json_result(struct sb_http_resp *resp, PGresult *res)
{
    sb_http_resp_text(resp, 200, "application/json", PQgetvalue(res, 0, 0),
                      (size_t)PQgetlength(res, 0, 0));
    PQclear(res);
}

static void bad(struct sb_http_resp *resp, const char *field, const char *message)
{
    sb_http_resp_error(resp, 400, "invalid", message, field);
}

/* ------------------------------------------------------------------ parameters */

/* An identifier (ticket, agent, queue): 1..max bytes of printable ASCII without spaces,
 * quotes or backslashes. */
static int valid_id(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '\\' || c == ',')
            return 0;
    }
    return 1;
}

/* A comma-separated list of 1..LIST_MAX words, each accepted by ok(); written as a
 * PostgreSQL array literal into out. Returns 0 or -1. */
static int list_param(const char *s, int (*ok)(const char *word, size_t n), char *out, size_t outsz)
{
    struct sb_strbuf b = {0};
    const char *p = s;
    int count = 0, rc = -1;

    sb_strbuf_append(&b, "{", 1);
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || !ok(p, n) || ++count > LIST_MAX)
            goto out;
        if (count > 1)
            sb_strbuf_append(&b, ",", 1);
        sb_strbuf_append(&b, p, n);
        if (end == NULL)
            break;
        p = end + 1;
    }
    sb_strbuf_append(&b, "}", 1);
    if (b.len < outsz) {
        memcpy(out, b.p, b.len + 1);
        rc = 0;
    }
out:
    free(b.p);
    return rc;
}

static int status_word(const char *w, size_t n)
{
    if (n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)w[i]) || w[i] == '_'))
            return 0;
    }
    return 1;
}

static int band_word(const char *w, size_t n)
{
    return n == 2 && w[0] == 'P' && w[1] >= '1' && w[1] <= '4';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
 * Low-Level Date Algorithms", days_from_civil); timegm() is not POSIX. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses YYYY-MM-DD, or an RFC 3339 time (YYYY-MM-DDTHH:MM[:SS[.frac]](Z|±HH:MM)), into
 * seconds since the epoch (UTC) and microseconds. *date_only tells which. Refuses days
 * that do not exist. Returns 0 or -1. */
static int parse_time(const char *s, int64_t *secs, int *usec, int *date_only)
{
    struct tm back;
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0, frac = 0, scale = 100000;
    size_t n = strlen(s), i = 10;
    time_t t;

    if (n < 10 || n > 40 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) ||
        digits(s + 5, 2, &mo) || digits(s + 8, 2, &d))
        return -1;
    *date_only = n == 10;
    if (!*date_only) {
        if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || n < 17 || s[13] != ':' ||
            digits(s + 11, 2, &h) || digits(s + 14, 2, &mi))
            return -1;
        i = 16;
        if (s[i] == ':') {
            if (i + 3 > n || digits(s + i + 1, 2, &sec))
                return -1;
            i += 3;
            if (s[i] == '.') {
                for (i++; isdigit((unsigned char)s[i]); i++) {
                    frac += scale * (s[i] - '0');
                    scale /= 10;
                }
            }
        }
        if (s[i] == 'Z' || s[i] == 'z') {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int oh, om;
            if (i + 6 != n || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) ||
                digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
            i += 6;
        } else {
            return -1; /* a time without its offset is ambiguous */
        }
        if (i != n || h > 23 || mi > 59 || sec > 59)
            return -1;
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    t = (time_t)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec);
    if (gmtime_r(&t, &back) == NULL || back.tm_mday != d || back.tm_mon != mo - 1)
        return -1; /* e.g. February 30th */
    *secs = (int64_t)t - (int64_t)off * 60;
    *usec = frac;
    return 0;
}

/* A time parameter written for PostgreSQL (RFC 3339 UTC); a bare date means its start,
 * or with end_of_day the start of the next day. Returns 1 when present and valid, 0 when
 * absent, -1 after answering 400. */
static int time_param(const struct sb_http_req *req, struct sb_http_resp *resp, const char *name,
                      int end_of_day, char *out, size_t outsz)
{
    const char *v = sb_http_req_query(req, name);
    int64_t secs;
    int usec, date_only;
    time_t t;
    struct tm tm;
    char buf[32];

    if (v == NULL || v[0] == '\0')
        return 0;
    if (parse_time(v, &secs, &usec, &date_only) != 0) {
        bad(resp, name, "expected a date (YYYY-MM-DD) or an RFC 3339 time with its offset");
        return -1;
    }
    if (date_only && end_of_day)
        secs += 86400;
    t = (time_t)secs;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    sb_fmt(out, outsz, "%s.%06dZ", buf, usec);
    return 1;
}

/* A date parameter (YYYY-MM-DD) into out; def_today: today (UTC) when absent. Returns 1,
 * 0 (absent) or -1 after answering 400. */
static int date_param(const struct sb_http_req *req, struct sb_http_resp *resp, const char *name,
                      int def_today, char *out, size_t outsz)
{
    const char *v = sb_http_req_query(req, name);
    int64_t secs;
    int usec, date_only = 0;

    if (v == NULL || v[0] == '\0') {
        if (!def_today)
            return 0;
        time_t t = (time_t)(sb_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, outsz, "%Y-%m-%d", &tm);
        return 1;
    }
    if (parse_time(v, &secs, &usec, &date_only) != 0 || !date_only) {
        bad(resp, name, "expected a date: YYYY-MM-DD");
        return -1;
    }
    sb_strlcpy(out, v, outsz);
    return 1;
}

/* An integer parameter in [min, max], def when absent. Returns 0 or -1 after 400. */
static int int_param(const struct sb_http_req *req, struct sb_http_resp *resp, const char *name,
                     int64_t min, int64_t max, int64_t def, int64_t *out)
{
    const char *v = sb_http_req_query(req, name);
    char msg[96];

    *out = def;
    if (v == NULL || v[0] == '\0')
        return 0;
    if (sb_parse_int64(v, out) != 0 || *out < min || *out > max) {
        sb_fmt(msg, sizeof(msg), "expected an integer from %lld to %lld", (long long)min,
               (long long)max);
        bad(resp, name, msg);
        return -1;
    }
    return 0;
}

/* An identifier parameter: 1 present, 0 absent, -1 after 400. */
static int id_param(const struct sb_http_req *req, struct sb_http_resp *resp, const char *name,
                    const char **out)
{
    const char *v = sb_http_req_query(req, name);

    *out = NULL;
    if (v == NULL || v[0] == '\0')
        return 0;
    if (!valid_id(v, ID_MAX)) {
        bad(resp, name, "expected an identifier (1-128 printable characters, no spaces)");
        return -1;
    }
    *out = v;
    return 1;
}

static int valid_kind(const char *k)
{
    static const char *const kinds[] = {"daily", "weekly", "monthly", "collaboration_monthly",
                                        "qa_weekly"};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(k, kinds[i]) == 0)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ authentication */

static void hash_token(const char *token, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)token, strlen(token), digest);
    sb_hex(digest, sizeof(digest), out);
}

/* The token of "Authorization: Bearer <token>". Returns 0 or -1. */
static int bearer(const char *header, char *out, size_t outsz)
{
    const char *p;
    size_t n;

    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return -1;
    for (p = header + 7; *p == ' ';)
        p++;
    n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0 || n >= outsz || n > TOKEN_MAX)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static void set_scope(struct principal *who)
{
    if (strcmp(who->role, "agent") == 0)
        sb_strlcpy(who->scope, "agent", sizeof(who->scope));
    else if (strcmp(who->role, "lead") == 0)
        sb_strlcpy(who->scope, "lead", sizeof(who->scope));
    else
        sb_strlcpy(who->scope, "all", sizeof(who->scope));
}

/* Identifies the caller. Returns 1, or 0 after answering 401 or 503. */
static int authenticate(struct reporter_api *api, const struct sb_http_req *req,
                        struct sb_http_resp *resp, struct principal *who)
{
    char token[TOKEN_MAX + 1], hash[2 * SHA256_DIGEST_LENGTH + 1];
    const char *params[1] = {hash};
    PGresult *res;
    int found = 0;

    memset(who, 0, sizeof(*who));
    if (bearer(sb_http_req_header(req, "Authorization"), token, sizeof(token)) != 0) {
        sb_http_resp_error(resp, 401, "unauthorized", "missing bearer token", "Authorization");
        sb_http_resp_header(resp, "WWW-Authenticate", "Bearer");
        return 0;
    }
    hash_token(token, hash);
    OPENSSL_cleanse(token, sizeof(token));
    if (api->admin_hash[0] != '\0' && CRYPTO_memcmp(hash, api->admin_hash, sizeof(hash)) == 0) {
        sb_strlcpy(who->role, "admin", sizeof(who->role));
        set_scope(who);
        return 1;
    }
    res = query(api, resp, "api_token", 1, params);
    if (res == NULL)
        return 0;
    if (PQntuples(res) == 1) {
        sb_strlcpy(who->role, PQgetvalue(res, 0, 0), sizeof(who->role));
        sb_strlcpy(who->agent_id, PQgetvalue(res, 0, 1), sizeof(who->agent_id));
        sb_strlcpy(who->team, PQgetvalue(res, 0, 2), sizeof(who->team));
        set_scope(who);
        found = 1;
    }
    PQclear(res);
    if (!found) {
        sb_http_resp_error(resp, 401, "unauthorized", "unknown or revoked bearer token",
                           "Authorization");
        sb_http_resp_header(resp, "WWW-Authenticate", "Bearer");
    }
    return found;
}

/* ------------------------------------------------------------------ endpoints */

static void get_ticket(struct reporter_api *api, const struct principal *who, const char *id,
                       struct sb_http_resp *resp)
{
    const char *params[4] = {id, who->scope, who->agent_id, who->team};
    PGresult *res;

    if (!valid_id(id, ID_MAX)) {
        bad(resp, "id", "expected a ticket id (1-128 printable characters, no spaces)");
        return;
    }
    res = query(api, resp, "api_ticket", 4, params);
    if (res == NULL)
        return;
    if (PQntuples(res) == 0) {
        PQclear(res);
        sb_http_resp_error(resp, 404, "not_found", "no such ticket", "id");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        PQclear(res);
        sb_http_resp_error(resp, 403, "forbidden",
                           strcmp(who->scope, "agent") == 0
                               ? "an agent reads only the tickets it owns"
                               : "a lead reads only the tickets of its team",
                           "id");
        return;
    }
    json_result(resp, res);
}

/* Splits a cursor "<µs>:<id>" into its two parameters. Returns 0 or -1. */
static int parse_cursor(const char *c, char *us, size_t ussz, const char **id)
{
    const char *colon = strchr(c, ':');
    int64_t v;

    if (colon == NULL || colon == c || (size_t)(colon - c) >= ussz || strlen(c) > 200)
        return -1;
    memcpy(us, c, (size_t)(colon - c));
    us[colon - c] = '\0';
    if (sb_parse_int64(us, &v) != 0 || !valid_id(colon + 1, ID_MAX))
        return -1;
    *id = colon + 1;
    return 0;
}

/* The search's statement parameters, in the order of sql_search, as one cache key:
 * "search" then each parameter after KEY_SEP, "-" for NULL and "=" before a value.
 * Returns 0, or -1 when the key would not fit (then the answer is not cached). */
static int search_key(const char *const params[13], char *key, size_t keysz)
{
    size_t len;

    if (sb_fmt(key, keysz, "search") != 0)
        return -1;
    for (int i = 0; i < 13; i++) {
        len = strlen(key);
        if (sb_fmt(key + len, keysz - len, "%c%s%s", KEY_SEP, params[i] ? "=" : "-",
                   params[i] ? params[i] : "") != 0)
            return -1;
    }
    return 0;
}

/* Runs the search whose parameters key holds (search_key) and writes its page. Returns
 * 0 with *body (new, *len bytes), or the error of run(). */
static int search_compute(struct reporter_api *api, const char *key, char **body, size_t *len)
{
    char buf[CACHE_KEY_MAX], *p, *field[13];
    const char *params[13];
    struct sb_strbuf out = {0};
    long long n;
    PGresult *res;
    int rows, e, nf = 0;

    sb_strlcpy(buf, key, sizeof(buf));
    p = strchr(buf, KEY_SEP);
    while (p != NULL && nf < 13) {
        *p++ = '\0';
        field[nf++] = p;
        p = strchr(p, KEY_SEP);
    }
    assert(nf == 13);
    for (int i = 0; i < 13; i++)
        params[i] = field[i][0] == '=' ? field[i] + 1 : NULL;
    n = strtoll(params[12], NULL, 10) - 1; /* the statement reads one more row */
    res = run(api, "api_search", 13, params, &e);
    if (res == NULL)
        return e;
    rows = PQntuples(res);
    sb_strbuf_append(&out, "{\"items\":[", 10);
    for (int i = 0; i < rows && i < n; i++) {
        if (i > 0)
            sb_strbuf_append(&out, ",", 1);
        sb_strbuf_append(&out, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    }
    sb_strbuf_append(&out, "],\"next_cursor\":", 16);
    if (rows > n) {
        /* The cursor is digits, ':' and an id of printable ASCII without quotes or
         * backslashes (valid_id holds for stored ids of the search's own pages). */
        json_t *c = json_string(PQgetvalue(res, (int)n - 1, 1));
        char *s = json_dumps(c, JSON_ENCODE_ANY);
        sb_strbuf_append(&out, s, strlen(s));
        free(s);
        json_decref(c);
    } else {
        sb_strbuf_append(&out, "null", 4);
    }
    sb_strbuf_printf(&out, ",\"limit\":%lld}", n);
    PQclear(res);
    *body = out.p;
    *len = out.len;
    return 0;
}

typedef int (*compute_fn)(struct reporter_api *api, const char *key, char **body, size_t *len);

/* The cached answer of key (copied into *out) when there is one: fresh (younger than
 * api.cache_ms), or stale but not older than CACHE_STALE_MAX times that while the
 * refresher recomputes it. Returns 1. Otherwise returns 0 with the slot reserved for the
 * caller to fill (cache_put) or release (cache_put with NULL); readers of a key being
 * computed with no answer yet wait for it. */
#define CACHE_STALE_MAX 5
static int cache_get(struct reporter_api *api, const char *key, char **out, size_t *len)
{
    struct cached *c = NULL;
    int64_t age;

    if (api->cache_ms <= 0 || key[0] == '\0')
        return 0;
    pthread_mutex_lock(&api->cache_lock);
    for (;;) {
        c = NULL;
        for (int i = 0; i < CACHE_SLOTS && c == NULL; i++)
            if (strcmp(api->cache[i].key, key) == 0)
                c = &api->cache[i];
        if (c == NULL || !c->busy || c->body != NULL)
            break;
        pthread_cond_wait(&api->cache_cond, &api->cache_lock);
    }
    age = c != NULL ? sb_mono_ms() - c->at_ms : 0;
    if (c != NULL && c->body != NULL && (c->busy || age < api->cache_ms * CACHE_STALE_MAX)) {
        if (!c->busy && age >= api->cache_ms && !c->refresh) {
            c->refresh = 1;
            pthread_cond_signal(&api->refresh_cond);
        }
        *out = sb_malloc(c->len + 1);
        memcpy(*out, c->body, c->len + 1);
        *len = c->len;
        pthread_mutex_unlock(&api->cache_lock);
        sb_metric_inc(api->m_cache[0]);
        return 1;
    }
    if (c == NULL) {
        for (int i = 0; i < CACHE_SLOTS && c == NULL; i++)
            if (api->cache[i].key[0] == '\0')
                c = &api->cache[i];
        /* All taken: reuse the slots in turn, never one being computed. */
        for (int i = 0; i < CACHE_SLOTS && c == NULL; i++) {
            struct cached *o = &api->cache[api->cache_next++ % CACHE_SLOTS];
            if (!o->busy)
                c = o;
        }
        if (c != NULL) {
            free(c->body);
            c->body = NULL;
            c->len = 0;
            c->refresh = 0;
            sb_strlcpy(c->key, key, sizeof(c->key));
        }
    }
    if (c != NULL)
        c->busy = 1;
    pthread_mutex_unlock(&api->cache_lock);
    sb_metric_inc(api->m_cache[1]);
    return 0;
}

/* Ends what cache_get (or the refresher) reserved: stores body (len bytes) as key's
 * answer, or keeps the old one when body is NULL (the query failed), and wakes the
 * waiting readers. */
static void cache_put(struct reporter_api *api, const char *key, const char *body, size_t len)
{
    if (api->cache_ms <= 0 || key[0] == '\0')
        return;
    pthread_mutex_lock(&api->cache_lock);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct cached *c = &api->cache[i];
        if (strcmp(c->key, key) != 0 || !c->busy)
            continue;
        c->busy = 0;
        c->refresh = 0;
        if (body != NULL) {
            free(c->body);
            c->body = sb_malloc(len + 1);
            memcpy(c->body, body, len);
            c->body[len] = '\0';
            c->len = len;
            c->at_ms = sb_mono_ms();
        }
    }
    pthread_cond_broadcast(&api->cache_cond);
    pthread_mutex_unlock(&api->cache_lock);
}

/* Answers with key's shared answer, computing it with fn when there is none (key "":
 * never shared). */
static void cached(struct reporter_api *api, const char *key, compute_fn fn,
                   struct sb_http_resp *resp)
{
    char *body = NULL;
    size_t len = 0;
    int e;

    if (!cache_get(api, key, &body, &len)) {
        e = fn(api, key, &body, &len);
        cache_put(api, key, e == 0 ? body : NULL, len);
        if (e != 0) {
            failed(resp, e);
            return;
        }
    }
    sb_http_resp_text(resp, 200, "application/json", body, len);
    free(body);
}

/* Adds the router's estimate of each channel (sb:eta:<channel>) to the queue view when
 * Redis has it; the view stands without it. Takes ownership of body. */
static json_t *add_estimates(struct reporter_api *api, json_t *body)
{
    json_t *channels = json_object_get(body, "channels"), *ch;
    struct sb_redis *r;
    size_t i;

    if (json_array_size(channels) == 0)
        return body;
    r = api_redis(api);
    json_array_foreach(channels, i, ch)
    {
        const char *name = json_string_value(json_object_get(ch, "channel"));
        redisReply *rep;
        json_t *eta = json_null();

        if (r != NULL && name != NULL && name[0] != '\0') {
            rep = sb_redis_cmdf(r, "HMGET sb:eta:%s position eta_seconds updated_ms", name);
            if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                rep->element[0]->type == REDIS_REPLY_STRING &&
                rep->element[1]->type == REDIS_REPLY_STRING &&
                rep->element[2]->type == REDIS_REPLY_STRING) {
                int64_t pos, secs, at;
                if (sb_parse_int64(rep->element[0]->str, &pos) == 0 &&
                    sb_parse_int64(rep->element[1]->str, &secs) == 0 &&
                    sb_parse_int64(rep->element[2]->str, &at) == 0) {
                    json_decref(eta);
                    eta = json_pack("{s:I,s:I,s:f}", "position", (json_int_t)pos, "eta_seconds",
                                    (json_int_t)secs, "age_s", (double)(sb_now_ms() - at) / 1000.0);
                }
            }
            if (rep != NULL)
                freeReplyObject(rep);
        }
        json_object_set_new(ch, "router_estimate", eta);
    }
    return body;
}

/* The live queues (key "queues") with the router's estimates. */
static int queues_compute(struct reporter_api *api, const char *key, char **body, size_t *len)
{
    PGresult *res;
    json_t *view;
    json_error_t jerr;
    int e;

    (void)key;
    res = run(api, "api_queues", 0, NULL, &e);
    if (res == NULL)
        return e;
    view = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, &jerr);
    PQclear(res);
    if (view == NULL) {
        sb_log_kv(SB_LOG_ERROR, "cannot read the queue view", "detail", jerr.text, NULL);
        return SB_E_PARSE;
    }
    *body = json_dumps(add_estimates(api, view), JSON_COMPACT);
    json_decref(view);
    if (*body == NULL)
        return SB_E_FATAL;
    *len = strlen(*body);
    return 0;
}

static void queues(struct reporter_api *api, struct sb_http_resp *resp)
{
    cached(api, "queues", queues_compute, resp);
}

/* The day's summary (key "summary" KEY_SEP date). */
static int summary_compute(struct reporter_api *api, const char *key, char **body, size_t *len)
{
    const char *params[2] = {strchr(key, KEY_SEP) + 1, api->targets};
    PGresult *res;
    int e;

    res = run(api, "api_summary", 2, params, &e);
    if (res == NULL)
        return e;
    *len = (size_t)PQgetlength(res, 0, 0);
    *body = sb_malloc(*len + 1);
    memcpy(*body, PQgetvalue(res, 0, 0), *len + 1);
    PQclear(res);
    return 0;
}

/* What computes the answer of key (the refresher's side of the keys above). */
static compute_fn compute_of(const char *key)
{
    if (strncmp(key, "search", 6) == 0)
        return search_compute;
    if (strncmp(key, "summary", 7) == 0)
        return summary_compute;
    return queues_compute;
}

/* The refresher thread: recomputes the stale answers readers asked for, on its own
 * connection, while they are still served the previous one. */
static void *refresher(void *arg)
{
    struct reporter_api *api = arg;
    char key[CACHE_KEY_MAX];

    pthread_mutex_lock(&api->cache_lock);
    while (!api->stopping) {
        struct cached *c = NULL;
        char *body = NULL;
        size_t len = 0;
        int e;

        for (int i = 0; i < CACHE_SLOTS && c == NULL; i++)
            if (api->cache[i].refresh && !api->cache[i].busy)
                c = &api->cache[i];
        if (c == NULL) {
            pthread_cond_wait(&api->refresh_cond, &api->cache_lock);
            continue;
        }
        c->busy = 1;
        sb_strlcpy(key, c->key, sizeof(key));
        pthread_mutex_unlock(&api->cache_lock);
        e = compute_of(key)(api, key, &body, &len);
        cache_put(api, key, e == 0 ? body : NULL, len);
        free(body);
        if (e == SB_E_IO)
            sb_sleep_ms(100); /* PostgreSQL away: readers keep the stale answer meanwhile */
        pthread_mutex_lock(&api->cache_lock);
    }
    pthread_mutex_unlock(&api->cache_lock);
    return NULL;
}

static void search(struct reporter_api *api, const struct principal *who,
                   const struct sb_http_req *req, struct sb_http_resp *resp)
{
    char status[LIST_MAX * 34 + 4], band[LIST_MAX * 3 + 4], from[40], to[40], limit[24],
        cursor_us[24];
    const char *params[13] = {0}, *v, *queue, *agent, *channel, *cursor_id = NULL;
    char key[CACHE_KEY_MAX];
    int64_t n;

    v = sb_http_req_query(req, "status");
    if (v != NULL && v[0] != '\0') {
        if (list_param(v, status_word, status, sizeof(status)) != 0) {
            bad(resp, "status", "expected status names separated by commas");
            return;
        }
        params[0] = status;
    }
    v = sb_http_req_query(req, "band");
    if (v != NULL && v[0] != '\0') {
        if (list_param(v, band_word, band, sizeof(band)) != 0) {
            bad(resp, "band", "expected bands P1-P4 separated by commas");
            return;
        }
        params[3] = band;
    }
    if (id_param(req, resp, "queue", &queue) < 0 || id_param(req, resp, "agent", &agent) < 0 ||
        id_param(req, resp, "channel", &channel) < 0)
        return;
    switch (time_param(req, resp, "from", 0, from, sizeof(from))) {
    case -1:
        return;
    case 1:
        params[4] = from;
    }
    switch (time_param(req, resp, "to", 1, to, sizeof(to))) {
    case -1:
        return;
    case 1:
        params[5] = to;
    }
    if (int_param(req, resp, "limit", 1, SEARCH_LIMIT_MAX, SEARCH_LIMIT_DEFAULT, &n) != 0)
        return;
    v = sb_http_req_query(req, "cursor");
    if (v != NULL && v[0] != '\0') {
        if (parse_cursor(v, cursor_us, sizeof(cursor_us), &cursor_id) != 0) {
            bad(resp, "cursor", "not a cursor of this API (use next_cursor as given)");
            return;
        }
        params[6] = cursor_us;
        params[7] = cursor_id;
    }
    if (agent != NULL && strcmp(who->scope, "agent") == 0 && strcmp(agent, who->agent_id) != 0) {
        sb_http_resp_error(resp, 403, "forbidden", "an agent reads only the tickets it owns",
                           "agent");
        return;
    }
    params[1] = queue;
    params[2] = agent;
    params[8] = channel;
    params[9] = who->scope;
    params[10] = who->agent_id;
    params[11] = who->team;
    sb_fmt(limit, sizeof(limit), "%lld", (long long)n + 1); /* one more: is there a next page? */
    params[12] = limit;
    if (search_key(params, key, sizeof(key)) != 0) {
        bad(resp, "status", "the search's parameters are too long");
        return;
    }
    cached(api, key, search_compute, resp);
}

static void agents(struct reporter_api *api, const struct principal *who,
                   const struct sb_http_req *req, struct sb_http_resp *resp)
{
    char day[16];
    const char *params[4] = {who->scope, who->agent_id, who->team, day};
    PGresult *res;

    if (date_param(req, resp, "date", 1, day, sizeof(day)) < 0)
        return;
    res = query(api, resp, "api_agents", 4, params);
    if (res != NULL)
        json_result(resp, res);
}

static void sla_risks(struct reporter_api *api, const struct principal *who,
                      const struct sb_http_req *req, struct sb_http_resp *resp)
{
    char limit[24];
    const char *params[5] = {who->scope, who->agent_id, who->team, limit, api->due_soon_s};
    int64_t n;
    PGresult *res;

    if (int_param(req, resp, "limit", 1, 500, 100, &n) != 0)
        return;
    sb_fmt(limit, sizeof(limit), "%lld", (long long)n);
    res = query(api, resp, "api_sla", 5, params);
    if (res != NULL)
        json_result(resp, res);
}

static int center_wide(const struct principal *who, struct sb_http_resp *resp)
{
    if (strcmp(who->scope, "agent") != 0)
        return 1;
    sb_http_resp_error(resp, 403, "forbidden", "reports are for leads, supervisors and admins",
                       NULL);
    return 0;
}

static void reports(struct reporter_api *api, const struct principal *who,
                    const struct sb_http_req *req, struct sb_http_resp *resp)
{
    char day[16], limit[24];
    const char *params[3] = {NULL, NULL, limit}, *kind = sb_http_req_query(req, "kind");
    int64_t n;
    PGresult *res;

    if (!center_wide(who, resp))
        return;
    if (kind != NULL && kind[0] != '\0') {
        if (!valid_kind(kind)) {
            bad(resp, "kind",
                "expected daily, weekly, monthly, collaboration_monthly or qa_weekly");
            return;
        }
        params[0] = kind;
    }
    switch (date_param(req, resp, "date", 0, day, sizeof(day))) {
    case -1:
        return;
    case 1:
        params[1] = day;
    }
    if (int_param(req, resp, "limit", 1, 1000, 100, &n) != 0)
        return;
    sb_fmt(limit, sizeof(limit), "%lld", (long long)n);
    res = query(api, resp, "api_reports", 3, params);
    if (res != NULL)
        json_result(resp, res);
}

/* /reports/{kind}/{date}.{csv|html|json} or /reports/{id}.{csv|html|json}. */
static void report_file(struct reporter_api *api, const struct principal *who, const char *rest,
                        struct sb_http_resp *resp)
{
    char kind[32] = "", name[64], *dot, disp[128];
    const char *params[3] = {NULL, NULL, NULL}, *slash = strchr(rest, '/'), *fmt;
    int64_t id, secs;
    int usec, date_only = 0, col;
    PGresult *res;

    if (!center_wide(who, resp))
        return;
    if (slash != NULL) {
        if ((size_t)(slash - rest) >= sizeof(kind)) {
            bad(resp, "kind", "unknown report kind");
            return;
        }
        memcpy(kind, rest, (size_t)(slash - rest));
        kind[slash - rest] = '\0';
        if (!valid_kind(kind)) {
            bad(resp, "kind",
                "expected daily, weekly, monthly, collaboration_monthly or qa_weekly");
            return;
        }
        rest = slash + 1;
    }
    if (sb_strlcpy(name, rest, sizeof(name)) >= sizeof(name) ||
        (dot = strrchr(name, '.')) == NULL) {
        sb_http_resp_error(resp, 404, "not_found", "expected a .csv, .html or .json file", "path");
        return;
    }
    *dot = '\0';
    fmt = dot + 1;
    if (strcmp(fmt, "csv") == 0)
        col = 0;
    else if (strcmp(fmt, "html") == 0)
        col = 1;
    else if (strcmp(fmt, "json") == 0)
        col = 2;
    else {
        sb_http_resp_error(resp, 404, "not_found", "expected a .csv, .html or .json file", "path");
        return;
    }
    if (kind[0] != '\0') {
        if (parse_time(name, &secs, &usec, &date_only) != 0 || !date_only) {
            bad(resp, "date", "expected a date: YYYY-MM-DD");
            return;
        }
        params[0] = kind;
        params[1] = name;
    } else {
        if (sb_parse_int64(name, &id) != 0 || id <= 0) {
            bad(resp, "id", "expected a report id or {kind}/{date}");
            return;
        }
        params[2] = name;
    }
    res = query(api, resp, "api_report_file", 3, params);
    if (res == NULL)
        return;
    if (PQntuples(res) == 0) {
        PQclear(res);
        sb_http_resp_error(resp, 404, "not_found",
                           "no such report (generated daily, on Fridays and on the 1st; "
                           "sbctl report generate makes one now)",
                           kind[0] ? "date" : "id");
        return;
    }
    sb_http_resp_text(resp, 200,
                      col == 0   ? "text/csv; charset=utf-8"
                      : col == 1 ? "text/html; charset=utf-8"
                                 : "application/json",
                      PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
    if (col == 0) {
        sb_fmt(disp, sizeof(disp), "attachment; filename=\"%s-%s.csv\"", PQgetvalue(res, 0, 3),
               PQgetvalue(res, 0, 4));
        sb_http_resp_header(resp, "Content-Disposition", disp);
    }
    PQclear(res);
}

static void summary(struct reporter_api *api, const struct sb_http_req *req,
                    struct sb_http_resp *resp)
{
    char day[16], key[32];

    if (date_param(req, resp, "date", 1, day, sizeof(day)) < 0)
        return;
    sb_fmt(key, sizeof(key), "summary%c%s", KEY_SEP, day);
    cached(api, key, summary_compute, resp);
}

/* ------------------------------------------------------------------ routing */

static int serve_asset(const char *path, struct sb_http_resp *resp)
{
    const struct reporter_asset *a;

    if (strcmp(path, "/") == 0 || strcmp(path, "/dashboard") == 0 ||
        strcmp(path, "/dashboard/") == 0)
        a = reporter_asset_find("index.html");
    else if (strncmp(path, "/dashboard/", 11) == 0)
        a = reporter_asset_find(path + 11);
    else
        return 0;
    if (a == NULL) {
        sb_http_resp_error(resp, 404, "not_found", "no such file", "path");
        return 1;
    }
    sb_http_resp_text(resp, 200, a->content_type, (const char *)a->data, a->len);
    sb_http_resp_header(resp, "Cache-Control", "no-cache");
    sb_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    sb_http_resp_header(resp, "Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data:; style-src 'self'");
    return 1;
}

static void route(struct reporter_api *api, const struct sb_http_req *req,
                  struct sb_http_resp *resp)
{
    struct principal who;
    const char *rest;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        sb_http_resp_error(resp, 405, "method_not_allowed", "the read API answers GET only", NULL);
        sb_http_resp_header(resp, "Allow", "GET, HEAD");
        return;
    }
    if (serve_asset(req->path, resp))
        return;
    /* /api/v1/… (the dashboard's prefix) and /v1/… (proto/openapi.yaml) are the same. */
    if (strncmp(req->path, "/api/v1/", 8) == 0)
        rest = req->path + 8;
    else if (strncmp(req->path, "/v1/", 4) == 0)
        rest = req->path + 4;
    else {
        sb_http_resp_error(resp, 404, "not_found", "no such endpoint", "path");
        return;
    }
    if (!authenticate(api, req, resp, &who))
        return;
    if (strcmp(rest, "tickets") == 0)
        search(api, &who, req, resp);
    else if (strncmp(rest, "tickets/", 8) == 0)
        get_ticket(api, &who, rest + 8, resp);
    else if (strcmp(rest, "queues") == 0)
        queues(api, resp);
    else if (strcmp(rest, "agents") == 0)
        agents(api, &who, req, resp);
    else if (strcmp(rest, "sla/risks") == 0)
        sla_risks(api, &who, req, resp);
    else if (strcmp(rest, "reports") == 0)
        reports(api, &who, req, resp);
    else if (strncmp(rest, "reports/", 8) == 0)
        report_file(api, &who, rest + 8, resp);
    else if (strcmp(rest, "metrics/summary") == 0)
        summary(api, req, resp);
    else
        sb_http_resp_error(resp, 404, "not_found", "no such endpoint", "path");
}

static int handle(void *ctx, const struct sb_http_req *req, struct sb_http_resp *resp)
{
    struct reporter_api *api = ctx;
    int64_t t0 = sb_mono_us();

    route(api, req, resp);
    sb_metric_inc(api->m_requests[resp->status >= 500 ? 2 : resp->status >= 400 ? 1 : 0]);
    sb_metric_observe(api->m_seconds, (double)(sb_mono_us() - t0) / 1e6);
    return 0;
}

/* ------------------------------------------------------------------ life cycle */

struct reporter_api *reporter_api_new(const struct sb_config *cfg, struct sb_metrics *metrics,
                                      char *errstr, size_t errstr_size)
{
    struct reporter_api *api = sb_calloc(1, sizeof(*api));
    const char *admin = sb_config_str(cfg, "auth.admin_token");
    static const char *const classes[] = {"code=2xx", "code=4xx", "code=5xx"};
    struct sb_http_opts opts = {
        .bind = sb_config_str(cfg, "http.bind"),
        .port = (int)sb_config_int(cfg, "http.port"),
        .max_body = 4096,
        .threads = (int)sb_config_int(cfg, "http.threads"),
        .conn_timeout_s = (int)sb_config_int(cfg, "http.timeout_s"),
        .max_conns = (unsigned)sb_config_int(cfg, "http.max_connections"),
    };

    api->cfg = cfg;
    api->pg_dsn = sb_config_str(cfg, "pg.dsn");
    api->redis_url = sb_config_str(cfg, "redis.url");
    api->redis_timeout_ms = (int)sb_config_int(cfg, "redis.timeout_ms");
    if (admin != NULL && admin[0] != '\0')
        hash_token(admin, api->admin_hash);
    pthread_key_create(&api->worker_key, NULL);
    pthread_mutex_init(&api->workers_lock, NULL);
    pthread_mutex_init(&api->cache_lock, NULL);
    pthread_cond_init(&api->cache_cond, NULL);
    pthread_cond_init(&api->refresh_cond, NULL);
    api->cache_ms = sb_config_int(cfg, "api.cache_ms");
    sb_fmt(api->due_soon_s, sizeof(api->due_soon_s), "%lld",
           (long long)sb_config_int(cfg, "api.sla_due_soon_s"));
    /* The keys are those of docs/api.md; %g keeps a configured share as written. */
    sb_fmt(api->targets, sizeof(api->targets),
           "{\"first_contact_resolution\": %g, \"first_response_presale_s\": %lld, "
           "\"first_response_aftersale_s\": %lld, \"attitude_negative_share_max\": %g, "
           "\"answer_accuracy\": %g, \"followup_rate\": %g}",
           sb_config_double(cfg, "targets.first_contact_resolution"),
           (long long)sb_config_int(cfg, "targets.first_response_presale_s"),
           (long long)sb_config_int(cfg, "targets.first_response_aftersale_s"),
           sb_config_double(cfg, "targets.attitude_negative_share_max"),
           sb_config_double(cfg, "targets.answer_accuracy"),
           sb_config_double(cfg, "targets.followup_rate"));
    for (int i = 0; i < 3; i++)
        api->m_requests[i] = sb_metrics_counter(
            metrics, "sb_reporter_api_requests_total",
            "Read API and dashboard requests answered, by status class", classes[i]);
    api->m_cache[0] = sb_metrics_counter(metrics, "sb_reporter_api_cache_total",
                                         "Summary, queue and search answers, served from the "
                                         "shared cache (hit) or computed (miss)",
                                         "result=hit");
    api->m_cache[1] = sb_metrics_counter(metrics, "sb_reporter_api_cache_total",
                                         "Summary, queue and search answers, served from the "
                                         "shared cache (hit) or computed (miss)",
                                         "result=miss");
    api->m_seconds = sb_metrics_histogram(metrics, "sb_reporter_api_seconds",
                                          "Time to answer one read API request", NULL, NULL, 0);
    if (api->cache_ms > 0) {
        if (pthread_create(&api->refresher, NULL, refresher, api) != 0) {
            sb_fmt(errstr, errstr_size, "cannot start the cache refresher thread");
            reporter_api_destroy(api);
            return NULL;
        }
        api->refresher_started = 1;
    }
    api->http = sb_http_server_new(&opts, handle, api, errstr, errstr_size);
    if (api->http == NULL) {
        reporter_api_destroy(api);
        return NULL;
    }
    return api;
}

void reporter_api_destroy(struct reporter_api *api)
{
    struct worker *w, *next;

    if (api == NULL)
        return;
    sb_http_server_destroy(api->http);
    if (api->refresher_started) {
        pthread_mutex_lock(&api->cache_lock);
        api->stopping = 1;
        pthread_cond_broadcast(&api->refresh_cond);
        pthread_mutex_unlock(&api->cache_lock);
        pthread_join(api->refresher, NULL);
    }
    for (w = api->workers; w != NULL; w = next) {
        next = w->next;
        sb_pg_destroy(w->pg);
        sb_redis_destroy(w->redis);
        free(w);
    }
    pthread_key_delete(api->worker_key);
    pthread_mutex_destroy(&api->workers_lock);
    pthread_mutex_destroy(&api->cache_lock);
    pthread_cond_destroy(&api->cache_cond);
    pthread_cond_destroy(&api->refresh_cond);
    for (int i = 0; i < CACHE_SLOTS; i++)
        free(api->cache[i].body);
    OPENSSL_cleanse(api->admin_hash, sizeof(api->admin_hash));
    free(api);
}

int reporter_api_port(const struct reporter_api *api)
{
    return sb_http_server_port(api->http);
}
