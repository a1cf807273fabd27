/* The agent simulator: agents lg-a-0001… in PostgreSQL (every domain skill at a drawn
 * level, Chinese and English, the usual capacities), each with its own bearer token,
 * logged in through sb-ingest's presence endpoint. It reads sb.routing.v1 from its end
 * and, for the offers made to its agents, accepts (or sometimes declines) after a drawn
 * delay, replies, puts some tickets on pending customer, resolves after a drawn handle
 * time and gives a CSAT score, all through sb-ingest's agent API as the agent itself.
 * Tokens made for the run are revoked at the end. */
#include "loadgen.h"

#include "sb/pg.h"
#include "sb/util.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTING_TOPIC "sb.routing.v1"
#define TOKEN_BYTES 24
#define MAX_TRIES 8
#define RETRY_S 1.0
#define TRACK_SLOTS (1 << 18)

static const char *const domains[] = {"product_function",   "order_payment",
                                      "logistics_delivery", "account_security",
                                      "service_complaint",  "suggestion_inquiry"};

enum step {
    ST_PRESENCE,
    ST_CLAIM,
    ST_DECLINE,
    ST_REPLY,
    ST_PENDING,
    ST_RESOLVE,
    ST_CSAT,
    ST_LOGOUT
};

struct agent {
    char id[16];
    char token[2 * TOKEN_BYTES + 1];
    long open;
};

struct job {
    double due;
    enum step step;
    int agent;
    int tries;
    char ticket[80];
};

struct tracked {
    char ticket[80];
    double sent_at;
};

struct lg_agents {
    const struct lg_opts *o;
    struct lg_http *http;
    struct lg_stats *st;
    struct agent *agents;
    int n;
    struct job *heap;
    size_t njobs, capjobs;
    struct tracked *track; /* open addressing, TRACK_SLOTS */
    rd_kafka_t *rk;
    unsigned rng;
    long open;
};

/* --- jobs: a binary min-heap on due time -------------------------------------------- */

static void push(struct lg_agents *a, struct job j)
{
    size_t i;
    if (a->njobs == a->capjobs) {
        a->capjobs = a->capjobs ? 2 * a->capjobs : 256;
        a->heap = sb_realloc(a->heap, a->capjobs * sizeof(*a->heap));
    }
    i = a->njobs++;
    while (i > 0 && a->heap[(i - 1) / 2].due > j.due) {
        a->heap[i] = a->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    a->heap[i] = j;
}

static struct job pop(struct lg_agents *a)
{
    struct job top = a->heap[0], last = a->heap[--a->njobs];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= a->njobs)
            break;
        if (c + 1 < a->njobs && a->heap[c + 1].due < a->heap[c].due)
            c++;
        if (a->heap[c].due >= last.due)
            break;
        a->heap[i] = a->heap[c];
        i = c;
    }
    if (a->njobs > 0)
        a->heap[i] = last;
    return top;
}

static void schedule(struct lg_agents *a, double due, enum step step, int agent, const char *tid,
                     int tries)
{
    struct job j = {.due = due, .step = step, .agent = agent, .tries = tries};
    sb_strlcpy(j.ticket, tid, sizeof(j.ticket));
    push(a, j);
}

/* --- ticket send times, for the assignment latency ---------------------------------- */

static size_t slot_of(const char *tid)
{
    size_t h = 1469598103934665603ull;
    for (; *tid; tid++)
        h = (h ^ (unsigned char)*tid) * 1099511628211ull;
    return h & (TRACK_SLOTS - 1);
}

void lg_agents_track(struct lg_agents *a, const char *ticket_id, double sent_at_s)
{
    size_t i = slot_of(ticket_id);
    for (int probe = 0; probe < 64; probe++, i = (i + 1) & (TRACK_SLOTS - 1)) {
        if (a->track[i].ticket[0] == '\0' || strcmp(a->track[i].ticket, ticket_id) == 0) {
            sb_strlcpy(a->track[i].ticket, ticket_id, sizeof(a->track[i].ticket));
            a->track[i].sent_at = sent_at_s;
            return;
        }
    }
}

static double sent_at(const struct lg_agents *a, const char *ticket_id)
{
    size_t i = slot_of(ticket_id);
    for (int probe = 0; probe < 64; probe++, i = (i + 1) & (TRACK_SLOTS - 1)) {
        if (a->track[i].ticket[0] == '\0')
            return -1;
        if (strcmp(a->track[i].ticket, ticket_id) == 0)
            return a->track[i].sent_at;
    }
    return -1;
}

/* --- provisioning -------------------------------------------------------------------- */

static int provision(struct lg_agents *a, char *err, size_t errsz)
{
    static const char *const sql_team =
        "INSERT INTO teams (id, name) VALUES ('lg-pool', 'Load pool') ON CONFLICT DO NOTHING";
    static const char *const sql_agent =
        "INSERT INTO agents (id, name, team_id, languages, capacity_call, capacity_chat, "
        "capacity_email, capacity_social, active) VALUES ($1, $1, 'lg-pool', '{zh,en}', 1, 3, 10, "
        "5, true) ON CONFLICT (id) DO UPDATE SET active = true, team_id = 'lg-pool', "
        "updated_at = now()";
    static const char *const sql_skill =
        "INSERT INTO agent_skills (agent_id, skill, level) VALUES ($1, $2, $3::smallint) "
        "ON CONFLICT (agent_id, skill) DO UPDATE SET level = excluded.level";
    static const char *const sql_token =
        "INSERT INTO api_tokens (token_sha256, role, agent_id) VALUES "
        "(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 'agent', $2)";
    struct sb_pg *pg = sb_pg_new(a->o->pg_dsn, err, errsz);
    int e = 0, rc = -1;
    PGresult *res;

    if (pg == NULL)
        return -1;
    if (sb_pg_exec(pg, "BEGIN", err, errsz) != 0 || sb_pg_exec(pg, sql_team, err, errsz) != 0)
        goto done;
    for (int i = 0; i < a->n; i++) {
        struct agent *ag = &a->agents[i];
        unsigned char raw[TOKEN_BYTES];
        const char *p[3] = {ag->id, NULL, NULL};

        sb_fmt(ag->id, sizeof(ag->id), "lg-a-%04d", i + 1);
        sb_random_bytes(raw, sizeof(raw));
        sb_hex(raw, sizeof(raw), ag->token);
        if ((res = sb_pg_query(pg, sql_agent, 1, p, &e, err, errsz)) == NULL)
            goto done;
        PQclear(res);
        for (size_t d = 0; d < sizeof(domains) / sizeof(domains[0]); d++) {
            char level[4];
            sb_fmt(level, sizeof(level), "%d", 1 + (int)(lg_uniform(&a->rng) * 5));
            p[1] = domains[d];
            p[2] = level;
            if ((res = sb_pg_query(pg, sql_skill, 3, p, &e, err, errsz)) == NULL)
                goto done;
            PQclear(res);
        }
        p[0] = ag->token;
        p[1] = ag->id;
        if ((res = sb_pg_query(pg, sql_token, 2, p, &e, err, errsz)) == NULL)
            goto done;
        PQclear(res);
    }
    rc = sb_pg_exec(pg, "COMMIT", err, errsz);
done:
    sb_pg_destroy(pg);
    return rc;
}

static void revoke(struct lg_agents *a)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(a->o->pg_dsn, err, sizeof(err));
    int e = 0;

    if (pg == NULL)
        return;
    for (int i = 0; i < a->n; i++) {
        const char *p[1] = {a->agents[i].token};
        PGresult *res = sb_pg_query(pg,
                                    "UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 "
                                    "= encode(sha256(convert_to($1, 'UTF8')), 'hex')",
                                    1, p, &e, err, sizeof(err));
        PQclear(res);
    }
    sb_pg_destroy(pg);
}

/* The routing topic from its current end: every partition assigned at the offset its
 * end has now, so no offer made after this call is missed. */
static rd_kafka_t *routing_consumer(const struct lg_opts *o, char *err, size_t errsz)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_t *rk;
    char gid[64];

    sb_fmt(gid, sizeof(gid), "sb-loadgen-%lld", (long long)sb_now_ms());
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, errsz) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", gid, err, errsz) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsz) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", err, errsz) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", err, errsz) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errsz);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sb_fmt(err, errsz, "Kafka %s unreachable", o->brokers);
        rd_kafka_destroy(rk);
        return NULL;
    }
    list = rd_kafka_topic_partition_list_new(16);
    for (int t = 0; t < md->topic_cnt; t++) {
        if (strcmp(md->topics[t].topic, ROUTING_TOPIC) != 0)
            continue;
        for (int p = 0; p < md->topics[t].partition_cnt; p++) {
            int64_t lo = 0, hi = 0;
            rd_kafka_query_watermark_offsets(rk, ROUTING_TOPIC, md->topics[t].partitions[p].id, &lo,
                                             &hi, 10000);
            rd_kafka_topic_partition_list_add(list, ROUTING_TOPIC, md->topics[t].partitions[p].id)
                ->offset = hi;
        }
    }
    rd_kafka_metadata_destroy(md);
    if (list->cnt == 0) {
        sb_fmt(err, errsz, "no topic %s (sbctl topics create)", ROUTING_TOPIC);
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    return rk;
}

struct lg_agents *lg_agents_new(const struct lg_opts *o, struct lg_http *http, struct lg_stats *st,
                                char *err, size_t errsz)
{
    struct lg_agents *a = sb_calloc(1, sizeof(*a));

    a->o = o;
    a->http = http;
    a->st = st;
    a->n = o->agents;
    a->rng = o->seed * 40503u + 7;
    a->agents = sb_calloc((size_t)a->n, sizeof(*a->agents));
    a->track = sb_calloc(TRACK_SLOTS, sizeof(*a->track));
    if (provision(a, err, errsz) != 0 || (a->rk = routing_consumer(o, err, errsz)) == NULL) {
        lg_agents_destroy(a);
        return NULL;
    }
    for (int i = 0; i < a->n; i++)
        schedule(a, lg_now() + 0.01 * i, ST_PRESENCE, i, "", 0);
    return a;
}

void lg_agents_destroy(struct lg_agents *a)
{
    if (a == NULL)
        return;
    if (a->rk != NULL) {
        rd_kafka_consumer_close(a->rk);
        rd_kafka_destroy(a->rk);
        revoke(a);
    }
    free(a->agents);
    free(a->heap);
    free(a->track);
    free(a);
}

void lg_agents_logout(struct lg_agents *a)
{
    a->njobs = 0; /* what was left to do is dropped: the agents go home */
    for (int i = 0; i < a->n; i++)
        schedule(a, 0, ST_LOGOUT, i, "", 0);
}

long lg_agents_pending(const struct lg_agents *a)
{
    return (long)a->njobs;
}

long lg_agents_open(const struct lg_agents *a)
{
    return a->open;
}

/* --- actions ------------------------------------------------------------------------- */

struct pending {
    struct lg_agents *a;
    struct job job;
};

static void next_step(struct lg_agents *a, const struct job *j)
{
    const struct lg_opts *o = a->o;
    double now = lg_now();

    switch (j->step) {
    case ST_PRESENCE:
    case ST_DECLINE:
    case ST_CLAIM: /* the assignment event schedules the reply */
        break;
    case ST_REPLY:
        schedule(a, now + lg_exp(&a->rng, o->handle_mean_s),
                 lg_uniform(&a->rng) < o->pending_share ? ST_PENDING : ST_RESOLVE, j->agent,
                 j->ticket, 0);
        break;
    case ST_PENDING: /* the customer answers after a while */
        schedule(a, now + lg_exp(&a->rng, o->handle_mean_s / 2), ST_RESOLVE, j->agent, j->ticket,
                 0);
        break;
    case ST_RESOLVE:
        a->agents[j->agent].open--;
        a->open--;
        schedule(a, now + lg_exp(&a->rng, 1.0), ST_CSAT, j->agent, j->ticket, 0);
        break;
    case ST_CSAT:
    case ST_LOGOUT:
        break;
    }
}

static void count(struct lg_stats *st, enum step s)
{
    long *c[] = {NULL,         &st->claimed,  &st->declined, &st->replied,
                 &st->pending, &st->resolved, &st->csat};
    if (c[s] != NULL)
        (*c[s])++;
}

static void on_action(void *arg, long status, const char *body, size_t len, double seconds)
{
    struct pending *p = arg;
    struct lg_agents *a = p->a;

    (void)body;
    (void)len;
    (void)seconds;
    if (status >= 200 && status < 300) {
        count(a->st, p->job.step);
        next_step(a, &p->job);
    } else if ((status == 0 || status == 403 || status == 404 || status == 409 || status == 429 ||
                status >= 500) &&
               p->job.tries + 1 < MAX_TRIES) {
        /* The ticket may not be projected yet (404/403), or a dependency is busy. */
        schedule(a, lg_now() + RETRY_S * (p->job.tries + 1), p->job.step, p->job.agent,
                 p->job.ticket, p->job.tries + 1);
    } else {
        a->st->action_errors++;
        if (p->job.step >= ST_REPLY && p->job.step <= ST_RESOLVE) {
            a->agents[p->job.agent].open--;
            a->open--;
        }
    }
    free(p);
}

/* Starts the job's request; 0, or -1 when the HTTP client is full (retry later). */
static int perform(struct lg_agents *a, const struct job *j)
{
    static const char *const paths[] = {"",       "claim",  "decline", "replies",
                                        "status", "status", "csat"};
    struct agent *ag = &a->agents[j->agent];
    char url[512], auth[128];
    const char *headers[] = {auth, NULL};
    json_t *body;
    char *s;
    struct pending *p;
    int rc;

    sb_fmt(auth, sizeof(auth), "Authorization: Bearer %s", ag->token);
    switch (j->step) {
    case ST_PRESENCE:
        sb_fmt(url, sizeof(url), "%s/v1/agents/%s/presence", a->o->ingest, ag->id);
        body = json_pack("{s:s,s:{s:i,s:i,s:i,s:i}}", "status", "available", "capacities", "phone",
                         1, "chat", 3, "email", 10, "social", 5);
        break;
    case ST_DECLINE:
        body = json_pack("{s:s}", "reason", "outside my product line");
        break;
    case ST_REPLY:
        body = json_pack("{s:s,s:b}", "body", "您好，已收到您的问题，正在为您处理。", "public", 1);
        break;
    case ST_PENDING:
        body = json_pack("{s:s,s:s}", "status", "pending_customer", "reason",
                         "waiting for the customer's details");
        break;
    case ST_RESOLVE:
        body = json_pack("{s:s}", "status", "resolved");
        break;
    case ST_CSAT: {
        double u = lg_uniform(&a->rng);
        body = json_pack("{s:i}", "score",
                         u < 0.55   ? 5
                         : u < 0.8  ? 4
                         : u < 0.92 ? 3
                         : u < 0.97 ? 2
                                    : 1);
        break;
    }
    default:
        body = json_object();
        break;
    }
    if (j->step != ST_PRESENCE && j->step != ST_LOGOUT)
        sb_fmt(url, sizeof(url), "%s/v1/tickets/%s/%s", a->o->ingest, j->ticket, paths[j->step]);
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    p = sb_calloc(1, sizeof(*p));
    p->a = a;
    p->job = *j;
    rc = lg_http_post(a->http, url, s, strlen(s), headers, on_action, p);
    free(s);
    if (rc != 0)
        free(p);
    return rc;
}

/* --- the routing topic --------------------------------------------------------------- */

static int agent_index(const struct lg_agents *a, const char *id)
{
    int i;
    if (id == NULL || strncmp(id, "lg-a-", 5) != 0)
        return -1;
    i = atoi(id + 5) - 1;
    return i >= 0 && i < a->n ? i : -1;
}

static void on_routing(struct lg_agents *a, const rd_kafka_message_t *m)
{
    json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *tid = json_string_value(json_object_get(ev, "ticket_id"));
    int ag = agent_index(
        a, json_string_value(json_object_get(json_object_get(ev, "payload"), "agent_id")));
    double now = lg_now();

    if (type == NULL || tid == NULL || ag < 0) {
        json_decref(ev);
        return;
    }
    if (strcmp(type, "ticket.offered") == 0) {
        a->st->offered++;
        schedule(a, now + lg_exp(&a->rng, a->o->accept_mean_s),
                 lg_uniform(&a->rng) < a->o->decline_share ? ST_DECLINE : ST_CLAIM, ag, tid, 0);
    } else if (strcmp(type, "ticket.assigned") == 0) {
        double t0 = sent_at(a, tid);
        a->st->assigned++;
        if (t0 >= 0)
            lg_lat_add(&a->st->assign_lat, now - t0);
        a->agents[ag].open++;
        a->open++;
        schedule(a, now + lg_exp(&a->rng, a->o->accept_mean_s), ST_REPLY, ag, tid, 0);
    }
    json_decref(ev);
}

void lg_agents_poll(struct lg_agents *a, double now_s)
{
    rd_kafka_message_t *m;

    for (int i = 0; i < 1000 && (m = rd_kafka_consumer_poll(a->rk, 0)) != NULL; i++) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            on_routing(a, m);
        rd_kafka_message_destroy(m);
    }
    while (a->njobs > 0 && a->heap[0].due <= now_s) {
        struct job j = pop(a);
        if (perform(a, &j) != 0) {
            push(a, j); /* the HTTP client is full: later */
            break;
        }
    }
}
