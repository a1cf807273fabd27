/* sb-router's service logic (docs/router.md): events in, the routing core in the
 * middle, Redis for what every instance shares (presence, load, reservations, ticket
 * records), events out on sb.routing.v1. */
#include "router.h"

#include "erlang.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ Lua scripts */

/* ARGV: prefix, agent, status, caps JSON or "", skills JSON or "", ms. A presence older
 * than the stored one changes nothing. */
static const char lua_presence[] =
    "local k = ARGV[1]..'agent:'..ARGV[2]\n"
    "local old = tonumber(redis.call('HGET', k, 'ms') or '-1')\n"
    "if tonumber(ARGV[6]) < old then return 0 end\n"
    "redis.call('HSET', k, 'status', ARGV[3], 'ms', ARGV[6])\n"
    "if ARGV[4] ~= '' then redis.call('HSET', k, 'caps', ARGV[4]) end\n"
    "if ARGV[5] ~= '' then redis.call('HSET', k, 'skills', ARGV[5]) end\n"
    "redis.call('SADD', ARGV[1]..'agents', ARGV[2])\n"
    "return 1\n";

/* ARGV: prefix, ticket, agent, channel, offer_id, offer_ms, expires_ms, check_status,
 * state. Returns {1, agent, offer_id, state, offer_ms, expires_ms} when reserved now,
 * {0, …} with the existing reservation of the ticket, {-1, status} when the agent is not
 * available, {-2, used, capacity} when the agent is full. */
static const char lua_reserve[] =
    "local p = ARGV[1]\n"
    "local rk = p..'resv:'..ARGV[2]\n"
    "local cur = redis.call('HMGET', rk, 'agent', 'offer_id', 'state', 'offer_ms', "
    "'expires_ms')\n"
    "if cur[1] then return {0, cur[1], cur[2], cur[3], cur[4], cur[5]} end\n"
    "if redis.call('EXISTS', p..'live') == 0 or redis.call('EXISTS', p..'restoring') == 1 "
    "then return {-3, 'restoring'} end\n"
    "local a = redis.call('HMGET', p..'agent:'..ARGV[3], 'status', 'caps', 'rcaps')\n"
    "if ARGV[8] == '1' and a[1] ~= 'available' then return {-1, a[1] or 'unknown'} end\n"
    "local caps = a[2] or a[3]\n"
    "local cap = 0\n"
    "if caps then cap = tonumber(cjson.decode(caps)[ARGV[4]] or 0) end\n"
    "local lk = p..'load:'..ARGV[3]\n"
    "local used = tonumber(redis.call('HGET', lk, ARGV[4]) or '0')\n"
    "if used >= cap then return {-2, tostring(used), tostring(cap)} end\n"
    "redis.call('HINCRBY', lk, ARGV[4], 1)\n"
    "redis.call('HSET', rk, 'agent', ARGV[3], 'channel', ARGV[4], 'offer_id', ARGV[5], "
    "'state', ARGV[9], 'offer_ms', ARGV[6], 'expires_ms', ARGV[7])\n"
    "return {1, ARGV[3], ARGV[5], ARGV[9], ARGV[6], ARGV[7]}\n";

/* ARGV: prefix, ticket, expected agent or "", expected offer or "". 1 released, 0 none,
 * -1 held by another agent or offer. */
static const char lua_release[] =
    "local rk = ARGV[1]..'resv:'..ARGV[2]\n"
    "local cur = redis.call('HMGET', rk, 'agent', 'channel', 'offer_id')\n"
    "if not cur[1] then return 0 end\n"
    "if ARGV[3] ~= '' and cur[1] ~= ARGV[3] then return -1 end\n"
    "if ARGV[4] ~= '' and cur[3] ~= ARGV[4] then return -1 end\n"
    "local lk = ARGV[1]..'load:'..cur[1]\n"
    "if redis.call('HINCRBY', lk, cur[2], -1) < 0 then redis.call('HSET', lk, cur[2], 0) end\n"
    "redis.call('DEL', rk)\n"
    "return 1\n";

/* ARGV: prefix, ticket, agent, ms. 1 accepted (or already), 0 not offered to agent, -3
 * Redis lost the router's state and it is not restored yet. */
static const char lua_accept[] = "local rk = ARGV[1]..'resv:'..ARGV[2]\n"
                                 "if redis.call('EXISTS', ARGV[1]..'live') == 0 or "
                                 "redis.call('EXISTS', ARGV[1]..'restoring') == 1 then "
                                 "return -3 end\n"
                                 "if redis.call('HGET', rk, 'agent') ~= ARGV[3] then return 0 end\n"
                                 "redis.call('HSET', rk, 'state', 'accepted', 'accepted_ms', "
                                 "ARGV[4])\n"
                                 "return 1\n";

/* ARGV: prefix, ticket, agent, channel, offer_id, state, offer_ms, expires_ms. Writes back
 * a reservation this instance holds after Redis lost it (no capacity check: it exists
 * already, the agent holds the ticket). 1 restored, 0 present. */
static const char lua_restore[] =
    "local p = ARGV[1]\n"
    "local rk = p..'resv:'..ARGV[2]\n"
    "if redis.call('EXISTS', rk) == 1 then return 0 end\n"
    "redis.call('HINCRBY', p..'load:'..ARGV[3], ARGV[4], 1)\n"
    "redis.call('HSET', rk, 'agent', ARGV[3], 'channel', ARGV[4], 'offer_id', ARGV[5], "
    "'state', ARGV[6], 'offer_ms', ARGV[7], 'expires_ms', ARGV[8])\n"
    "return 1\n";

/* ------------------------------------------------------------------ small helpers */

static const char *const intake_channels[] = {"phone",  "chat", "wechat", "email",
                                              "social", "web",  "api"};
static const int intake_map[] = {SB_ROUTE_CH_VOICE, SB_ROUTE_CH_CHAT,   SB_ROUTE_CH_CHAT,
                                 SB_ROUTE_CH_EMAIL, SB_ROUTE_CH_SOCIAL, SB_ROUTE_CH_FORM,
                                 SB_ROUTE_CH_FORM};
#define N_INTAKE (sizeof(intake_channels) / sizeof(intake_channels[0]))

/* The core channel of an intake channel ("phone", "wechat", …) or of a core name. */
static int channel_of(const char *s)
{
    if (s == NULL)
        return SB_E_INVAL;
    for (size_t i = 0; i < N_INTAKE; i++)
        if (strcmp(s, intake_channels[i]) == 0)
            return intake_map[i];
    return sb_route_channel_parse(s);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static int64_t now_us(void)
{
    return sb_now_ms() * 1000;
}

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int reply_int(const redisReply *rep, size_t i, long long *out)
{
    const redisReply *e;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements)
        return -1;
    e = rep->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        *out = e->integer;
    else if (e->type == REDIS_REPLY_STRING)
        *out = strtoll(e->str, NULL, 10);
    else
        return -1;
    return 0;
}

static const char *reply_str(const redisReply *rep, size_t i)
{
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements ||
        rep->element[i]->type != REDIS_REPLY_STRING)
        return NULL;
    return rep->element[i]->str;
}

/* ------------------------------------------------------------------ tables */

static struct rt_ticket *ticket_find(struct router *r, const char *id)
{
    if (r->tcap == 0)
        return NULL;
    for (struct rt_ticket *t = r->tb[str_hash(id) & (r->tcap - 1)]; t != NULL; t = t->next)
        if (strcmp(t->id, id) == 0)
            return t;
    return NULL;
}

static void ticket_insert(struct router *r, struct rt_ticket *t)
{
    if (r->tn + 1 > r->tcap) {
        size_t ncap = r->tcap ? r->tcap * 2 : 1024;
        struct rt_ticket **nb = sb_calloc(ncap, sizeof(*nb));
        for (size_t i = 0; i < r->tcap; i++)
            for (struct rt_ticket *x = r->tb[i], *nx; x != NULL; x = nx) {
                nx = x->next;
                x->next = nb[str_hash(x->id) & (ncap - 1)];
                nb[str_hash(x->id) & (ncap - 1)] = x;
            }
        free(r->tb);
        r->tb = nb;
        r->tcap = ncap;
    }
    t->next = r->tb[str_hash(t->id) & (r->tcap - 1)];
    r->tb[str_hash(t->id) & (r->tcap - 1)] = t;
    r->tn++;
}

static void ticket_remove(struct router *r, struct rt_ticket *t)
{
    struct rt_ticket **pp = &r->tb[str_hash(t->id) & (r->tcap - 1)];
    for (; *pp != NULL; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            r->tn--;
            free(t);
            return;
        }
}

static struct rt_agent *agent_find(struct router *r, const char *id)
{
    if (r->acap == 0)
        return NULL;
    for (struct rt_agent *a = r->ab[str_hash(id) & (r->acap - 1)]; a != NULL; a = a->next)
        if (strcmp(a->id, id) == 0)
            return a;
    return NULL;
}

static struct rt_agent *agent_get(struct router *r, const char *id)
{
    struct rt_agent *a = agent_find(r, id);
    if (a != NULL)
        return a;
    if (strlen(id) > SB_ROUTE_ID_MAX)
        return NULL;
    if (r->an + 1 > r->acap) {
        size_t ncap = r->acap ? r->acap * 2 : 256;
        struct rt_agent **nb = sb_calloc(ncap, sizeof(*nb));
        for (size_t i = 0; i < r->acap; i++)
            for (struct rt_agent *x = r->ab[i], *nx; x != NULL; x = nx) {
                nx = x->next;
                x->next = nb[str_hash(x->id) & (ncap - 1)];
                nb[str_hash(x->id) & (ncap - 1)] = x;
            }
        free(r->ab);
        r->ab = nb;
        r->acap = ncap;
    }
    a = sb_calloc(1, sizeof(*a));
    sb_strlcpy(a->id, id, sizeof(a->id));
    a->status = SB_ROUTE_OFFLINE;
    a->core_status = -1;
    a->next = r->ab[str_hash(id) & (r->acap - 1)];
    r->ab[str_hash(id) & (r->acap - 1)] = a;
    r->an++;
    return a;
}

#define FOR_TICKETS(r, t)                                                                          \
    for (size_t i_ = 0; i_ < (r)->tcap; i_++)                                                      \
        for (struct rt_ticket *t = (r)->tb[i_], *n_ = t ? t->next : NULL; t != NULL;               \
             t = n_, n_ = t ? t->next : NULL)
#define FOR_AGENTS(r, a)                                                                           \
    for (size_t j_ = 0; j_ < (r)->acap; j_++)                                                      \
        for (struct rt_agent *a = (r)->ab[j_]; a != NULL; a = a->next)

/* ------------------------------------------------------------------ output */

static void emit(struct router *r, struct rt_ticket *t, const char *type, int64_t ms,
                 const char *name, json_t *payload)
{
    struct sb_event ev;
    char *buf;
    size_t len;

    if (sb_event_init(&ev, type, r->producer_name, t->id, t->trace_id[0] ? t->trace_id : NULL,
                      payload) != 0) {
        sb_log_kv(SB_LOG_ERROR, "event not made", "type", type, NULL);
        return;
    }
    sb_uuid7_derive(ms, name, ev.event_id);
    sb_time_format_ms(ms, ev.occurred_at);
    ev.occurred_ms = ms;
    buf = sb_event_encode(&ev, &len);
    sb_event_clear(&ev);
    if (r->nout == r->capout) {
        r->capout = r->capout ? r->capout * 2 : 64;
        r->out = sb_realloc(r->out, r->capout * sizeof(*r->out));
    }
    r->out[r->nout].key = sb_strdup(t->id);
    r->out[r->nout].value = buf;
    r->out[r->nout].len = len;
    r->nout++;
}

/* The ticket's record is written (or deleted when forgotten) at the next flush. */
static void mark_dirty(struct router *r, const char *id, int32_t part)
{
    for (size_t i = 0; i < r->nwr; i++)
        if (strcmp(r->wr_id[i], id) == 0)
            return;
    if (r->nwr == r->capwr) {
        r->capwr = r->capwr ? r->capwr * 2 : 64;
        r->wr_id = sb_realloc(r->wr_id, r->capwr * sizeof(*r->wr_id));
        r->wr_part = sb_realloc(r->wr_part, r->capwr * sizeof(*r->wr_part));
    }
    r->wr_id[r->nwr] = sb_strdup(id);
    r->wr_part[r->nwr++] = part;
}

static char *ticket_json(const struct rt_ticket *t)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:i}", "id", t->id,
                          "cust", t->cust, "trace", t->trace_id, "ch", t->channel, "band", t->band,
                          "domain", t->domain, "lang", t->language, "product", t->product, "team",
                          t->team, "preferred", t->preferred, "vip", t->vip, "arrived_ms",
                          (json_int_t)t->arrived_ms, "part", (int)t->part);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int lookups_resolve(struct router *r);

int router_flush(void *ctx)
{
    struct router *r = ctx;
    char key[256], key2[256];
    int rc;

    if (lookups_resolve(r) != 0)
        return SB_E_IO;
    if (r->nwr > 0) {
        size_t n = r->nwr * 2;
        int *argcs = sb_calloc(n, sizeof(int));
        const char ***argvs = sb_calloc(n, sizeof(*argvs));
        const char **store = sb_calloc(n * 8, sizeof(char *));
        char **owned = sb_calloc(n * 2, sizeof(char *));
        redisReply **rep = sb_calloc(n, sizeof(*rep));
        for (size_t i = 0; i < r->nwr; i++) {
            struct rt_ticket *t = ticket_find(r, r->wr_id[i]);
            const char **a = store + i * 16, **b = store + i * 16 + 8;
            sb_fmt(key, sizeof(key), "%st:%s", r->prefix, r->wr_id[i]);
            sb_fmt(key2, sizeof(key2), "%spart:%d", r->prefix, (int)r->wr_part[i]);
            owned[i * 4] = sb_strdup(key);
            owned[i * 4 + 1] = sb_strdup(key2);
            if (t != NULL) {
                owned[i * 4 + 2] = ticket_json(t);
                a[0] = "SET", a[1] = owned[i * 4], a[2] = owned[i * 4 + 2];
                argcs[i * 2] = 3;
                b[0] = "SADD";
            } else {
                /* Forgotten (resolved, merged): a done record, so that its input read
                 * again after a restart or a rewind routes nothing. */
                sb_fmt(key, sizeof(key), "%lld", r->done_remember_s);
                owned[i * 4 + 2] = sb_strdup(key);
                owned[i * 4 + 3] = sb_strdup(RT_DONE_RECORD);
                a[0] = "SET", a[1] = owned[i * 4], a[2] = owned[i * 4 + 3], a[3] = "EX";
                a[4] = owned[i * 4 + 2];
                argcs[i * 2] = 5;
                b[0] = "SREM";
            }
            b[1] = owned[i * 4 + 1], b[2] = r->wr_id[i];
            argcs[i * 2 + 1] = 3;
            argvs[i * 2] = a;
            argvs[i * 2 + 1] = b;
        }
        rc = sb_redis_pipeline(r->redis, n, argcs, argvs, NULL, rep);
        for (size_t i = 0; i < n; i++) {
            if (rep[i] != NULL && rep[i]->type == REDIS_REPLY_ERROR)
                rc = SB_E_IO;
            if (rep[i] != NULL)
                freeReplyObject(rep[i]);
        }
        for (size_t i = 0; i < n * 2; i++)
            free(owned[i]);
        free(owned);
        free(rep);
        free(store);
        free(argvs);
        free(argcs);
        if (rc != 0) {
            sb_metric_inc(r->m_redis_down);
            return SB_E_IO;
        }
        for (size_t i = 0; i < r->nwr; i++)
            free(r->wr_id[i]);
        r->nwr = 0;
    }
    if (r->nout > 0) {
        for (size_t i = 0; i < r->nout; i++) {
            rc = sb_producer_send(r->producer, r->t_routing, r->out[i].key, strlen(r->out[i].key),
                                  r->out[i].value, r->out[i].len, NULL, NULL);
            if (rc != 0) {
                sb_producer_wait_all(r->producer, r->produce_timeout_ms);
                return rc;
            }
        }
        /* Not all acknowledged: the whole batch is sent again (event ids dedupe). */
        if (sb_producer_wait_all(r->producer, r->produce_timeout_ms) != 0)
            return SB_E_IO;
        for (size_t i = 0; i < r->nout; i++) {
            free(r->out[i].key);
            free(r->out[i].value);
        }
        r->nout = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------ agents */

/* Canonical skill name of a tag of the roster or of a presence event. */
static void canon_tag(struct router *r, const char *tag, char *out, size_t outsz)
{
    size_t n = strlen(tag);
    if (strchr(tag, ':') != NULL) {
        sb_strlcpy(out, tag, outsz);
        return;
    }
    for (size_t i = 0; i < r->nproducts; i++)
        if (strcmp(r->product_lines[i], tag) == 0) {
            sb_fmt(out, outsz, "product:%s", tag);
            return;
        }
    if (n == 2 || (n == 3 && tag[2] != '_') || (n > 3 && tag[2] == '-')) {
        sb_fmt(out, outsz, "lang:%.2s", tag);
        return;
    }
    sb_fmt(out, outsz, "domain:%s", tag);
}

/* Level 1–5 of the roster and presence → 20–100 of the core. */
static int canon_level(json_int_t level)
{
    if (level < 1)
        level = 1;
    if (level > 5)
        level = 5;
    return (int)level * 20;
}

/* Skills as the canonical JSON text, from tags with levels plus languages and product
 * lines (each at the top level). */
static char *canon_skills(struct router *r, json_t *tags, json_t *langs, json_t *products)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    size_t i;
    char name[SB_ROUTE_ID_MAX + 1];
    char *s;

    json_object_foreach(tags, k, v)
    {
        canon_tag(r, k, name, sizeof(name));
        json_object_set_new(o, name, json_integer(canon_level(json_integer_value(v))));
    }
    json_array_foreach(langs, i, v)
    {
        if (json_is_string(v)) {
            sb_fmt(name, sizeof(name), "lang:%.2s", json_string_value(v));
            json_object_set_new(o, name, json_integer(100));
        }
    }
    json_array_foreach(products, i, v)
    {
        if (json_is_string(v)) {
            sb_fmt(name, sizeof(name), "product:%s", json_string_value(v));
            json_object_set_new(o, name, json_integer(100));
        }
    }
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* Capacities as canonical JSON ({"voice":1,"chat":3,…}) from intake channel names. */
static char *canon_caps(struct router *r, json_t *caps)
{
    int cap[SB_ROUTE_CH_COUNT] = {0};
    const char *k;
    json_t *v, *o = json_object();
    char *s;

    json_object_foreach(caps, k, v)
    {
        int ch = channel_of(k);
        if (ch >= 0 && json_integer_value(v) > cap[ch])
            cap[ch] = (int)json_integer_value(v);
    }
    if (cap[SB_ROUTE_CH_TASK] == 0)
        cap[SB_ROUTE_CH_TASK] = r->task_capacity;
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++)
        json_object_set_new(o, sb_route_channel_name(ch), json_integer(cap[ch]));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static void caps_parse(const char *text, int cap[SB_ROUTE_CH_COUNT])
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++)
        cap[ch] = (int)json_integer_value(json_object_get(o, sb_route_channel_name(ch)));
    json_decref(o);
}

static void fail_closed(struct router *r);

/* Tells the core what it must know of the agent: team, skills, a capacity per channel
 * that leaves room only for what Redis says is free (minus[ch] units fewer), presence. */
static void agent_sync(struct router *r, struct rt_agent *a, const int *minus)
{
    struct sb_route_agent_info info;
    int cc[SB_ROUTE_CH_COUNT], changed = 0;
    int known = sb_route_agent_get(r->core, a->id, &info) == 0;

    if (a->skills_json == NULL)
        return;
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        int core_load = known ? info.load[ch] : 0;
        int free_global = a->cap[ch] - a->load[ch];
        cc[ch] = core_load + (free_global > 0 ? free_global : 0) - (minus ? minus[ch] : 0);
        if (cc[ch] < 0)
            cc[ch] = 0;
        if (cc[ch] > SB_ROUTE_CAP_MAX)
            cc[ch] = SB_ROUTE_CAP_MAX;
        if (!known || cc[ch] != a->core_cap[ch])
            changed = 1;
    }
    if (a->core_skills == NULL || strcmp(a->core_skills, a->skills_json) != 0 ||
        strcmp(a->core_team, a->team) != 0)
        changed = 1;
    if (changed) {
        struct sb_route_skill sk[SB_ROUTE_MAX_SKILLS];
        struct sb_route_agent_spec spec = {.id = a->id, .team = a->team, .skills = sk};
        json_t *o = json_loads(a->skills_json, 0, NULL);
        const char *k;
        json_t *v;
        char err[256];
        json_object_foreach(o, k, v)
        {
            if (spec.nskills == SB_ROUTE_MAX_SKILLS || strlen(k) > SB_ROUTE_ID_MAX)
                continue;
            sk[spec.nskills].name = k;
            sk[spec.nskills++].level = (int)json_integer_value(v);
        }
        memcpy(spec.capacity, cc, sizeof(cc));
        if (sb_route_agent_set(r->core, &spec, now_us(), err, sizeof(err)) == 0) {
            memcpy(a->core_cap, cc, sizeof(cc));
            free(a->core_skills);
            a->core_skills = sb_strdup(a->skills_json);
            sb_strlcpy(a->core_team, a->team, sizeof(a->core_team));
        } else {
            sb_log_kv(SB_LOG_WARN, "agent refused by the routing core", "agent", a->id, "detail",
                      err, NULL);
        }
        json_decref(o);
    }
    {
        /* While Redis is restored after a loss, nobody takes new work. */
        int want = r->restoring && a->status == SB_ROUTE_AVAILABLE ? SB_ROUTE_BUSY : a->status;
        if (a->core_status != want && r->redis_ok &&
            sb_route_agent_presence(r->core, a->id, want, now_us()) == 0)
            a->core_status = want;
    }
}

/* ------------------------------------------------------------------ tickets */

static void queue_name(const struct rt_ticket *t, int stage, char *out, size_t outsz)
{
    const char *d = t->domain[0] ? t->domain : "general";
    if (stage >= 2)
        sb_fmt(out, outsz, "any/%s~wide", d);
    else
        sb_fmt(out, outsz, "%s/%s%s", t->team[0] ? t->team : "any", d,
               stage == 1 ? "~secondary" : "");
}

static struct sb_metric *queue_metric(struct router *r, const char *name, const char *queue)
{
    char labels[200];
    sb_fmt(labels, sizeof(labels), "queue=%s", queue);
    if (strcmp(name, "sb_router_assignments_total") == 0)
        return sb_metrics_counter(r->metrics, "sb_router_assignments_total",
                                  "Tickets assigned to an agent (offers reserved)", labels);
    if (strcmp(name, "sb_router_overflows_total") == 0)
        return sb_metrics_counter(r->metrics, "sb_router_overflows_total",
                                  "Tickets moved to an overflow queue", labels);
    if (strcmp(name, "sb_router_wait_seconds") == 0)
        return sb_metrics_histogram(r->metrics, "sb_router_wait_seconds",
                                    "From arrival in the queue to the offer", labels, NULL, 0);
    if (strcmp(name, "sb_router_queue_length") == 0)
        return sb_metrics_gauge(r->metrics, "sb_router_queue_length",
                                "Tickets waiting in each queue (this instance)", labels);
    if (strcmp(name, "sb_router_queue_oldest_wait_seconds") == 0)
        return sb_metrics_gauge(r->metrics, "sb_router_queue_oldest_wait_seconds",
                                "Wait of the longest-waiting ticket of each queue", labels);
    return sb_metrics_gauge(r->metrics, "sb_router_agents_available",
                            "Agents available with free capacity for each queue", labels);
}

static void process_decisions(struct router *r, int64_t t0_us);

/* Every agent busy in the core until the restore of Redis is over (agents_refresh). */
static void pause_for_restore(struct router *r)
{
    r->restoring = 1;
    FOR_AGENTS(r, a)
    {
        agent_sync(r, a, NULL);
    }
}

/* Puts the ticket into the core (new, re-added after a move, or after a restart). */
static int core_add(struct router *r, struct rt_ticket *t)
{
    struct sb_route_rules rules = {
        .vip_team = r->vip_team[0] ? r->vip_team : NULL,
        .core_lines = (const char **)r->core_lines,
        .core_teams = (const char **)r->core_teams,
        .ncore = r->ncore,
    };
    struct sb_route_req req;
    struct sb_route_ticket_spec spec;
    char err[256];
    int rc;

    memset(&spec, 0, sizeof(spec));
    if (sb_route_spec_fill(&rules, t->domain, t->language, t->product, t->vip, &req, &spec) != 0)
        return SB_E_TOOBIG;
    if (t->team[0])
        spec.team = t->team;
    else if (spec.team != NULL)
        sb_strlcpy(t->team, spec.team, sizeof(t->team));
    spec.id = t->id;
    spec.channel = t->channel;
    spec.band = t->band;
    spec.preferred_agent = t->preferred[0] ? t->preferred : NULL;
    spec.arrived_us = t->arrived_ms * 1000;
    rc = sb_route_ticket_add(r->core, &spec, now_us(), err, sizeof(err));
    if (rc == 0) {
        t->in_core = 1;
        t->state = RT_WAITING;
        t->stage = 0;
    } else if (rc != SB_E_CONFLICT) {
        sb_log_kv(SB_LOG_WARN, "ticket refused by the routing core", "ticket_id", t->id, "detail",
                  err, NULL);
    }
    return rc;
}

/* Restores an existing reservation into the core (making room when needed). */
static void core_restore(struct router *r, struct rt_ticket *t)
{
    struct rt_agent *a = agent_find(r, t->agent);
    struct sb_route_agent_info info;
    struct sb_route_req req;
    struct sb_route_ticket_spec spec;
    char err[256];

    t->in_core = 0;
    if (a == NULL || a->core_skills == NULL || sb_route_agent_get(r->core, t->agent, &info) != 0)
        return;
    memset(&spec, 0, sizeof(spec));
    if (sb_route_spec_fill(NULL, t->domain, t->language, t->product, t->vip, &req, &spec) != 0)
        return;
    spec.id = t->id;
    spec.channel = t->channel;
    spec.band = t->band;
    spec.team = t->team[0] ? t->team : NULL;
    spec.arrived_us = t->arrived_ms * 1000;
    if (info.load[t->channel] >= info.capacity[t->channel]) {
        int minus[SB_ROUTE_CH_COUNT] = {0};
        minus[t->channel] = -1; /* one more than Redis leaves: the reservation is ours */
        a->core_cap[t->channel] = -1;
        agent_sync(r, a, minus);
    }
    if (sb_route_ticket_restore(r->core, &spec, t->agent, now_us(), err, sizeof(err)) == 0)
        t->in_core = 1;
}

/* Takes the ticket out of the core (its capacity there comes back). */
static void core_forget(struct router *r, struct rt_ticket *t)
{
    if (t->in_core)
        sb_route_ticket_done(r->core, t->id, now_us());
    t->in_core = 0;
}

static redisReply *eval(struct router *r, int script, int nargs, const char **args)
{
    redisReply *rep = sb_redis_eval(r->redis, script, 0, NULL, nargs, args);
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        if (rep != NULL) {
            sb_log_kv(SB_LOG_ERROR, "redis script failed", "detail", rep->str, NULL);
            freeReplyObject(rep);
        }
        fail_closed(r);
        return NULL;
    }
    return rep;
}

/* Releases the ticket's reservation (expected agent/offer or ""): 1, 0 none, -1 another
 * agent's, SB_E_IO when Redis is down. */
static int release(struct router *r, const char *ticket, const char *agent, const char *offer)
{
    const char *args[] = {r->prefix, ticket, agent ? agent : "", offer ? offer : ""};
    redisReply *rep = eval(r, r->script_release, 4, args);
    long long v;
    if (rep == NULL)
        return SB_E_IO;
    v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
    freeReplyObject(rep);
    if (v == 1) {
        struct rt_agent *a = agent && agent[0] ? agent_find(r, agent) : NULL;
        struct rt_ticket *t = ticket_find(r, ticket);
        if (a != NULL && t != NULL && a->load[t->channel] > 0)
            a->load[t->channel]--;
    }
    return (int)v;
}

static void emit_offered(struct router *r, struct rt_ticket *t)
{
    char q[160], name[128], exp[SB_TIME_STRLEN + 1];
    const char *reason = t->continuity                                   ? "continuity"
                         : t->stage > 0                                  ? "overflow"
                         : t->team[0]                                    ? "dedicated_team"
                         : r->core_cfg.policy == SB_ROUTE_LEAST_OCCUPIED ? "least_loaded"
                         : r->core_cfg.policy == SB_ROUTE_HIGHEST_SKILL  ? "skills"
                                                                         : "longest_idle";
    queue_name(t, t->stage, q, sizeof(q));
    sb_time_format_ms(t->expires_ms, exp);
    sb_fmt(name, sizeof(name), "offered:%s", t->offer_id);
    emit(r, t, "ticket.offered", t->offer_ms, name,
         json_pack("{s:s,s:s,s:s,s:s,s:s}", "agent_id", t->agent, "queue", q, "offer_id",
                   t->offer_id, "expires_at", exp, "reason", reason));
}

static void emit_assigned(struct router *r, struct rt_ticket *t, int64_t ms)
{
    char q[160], name[128];
    queue_name(t, t->stage, q, sizeof(q));
    sb_fmt(name, sizeof(name), "assigned:%s", t->offer_id);
    emit(r, t, "ticket.assigned", ms, name,
         json_pack("{s:s,s:s,s:s,s:I,s:b}", "agent_id", t->agent, "queue", q, "offer_id",
                   t->offer_id, "wait_ms",
                   (json_int_t)(t->offer_ms > t->arrived_ms ? t->offer_ms - t->arrived_ms : 0),
                   "continuity", t->continuity));
}

static void emit_requeued(struct router *r, struct rt_ticket *t, const char *reason,
                          const char *prev_agent, const char *offer, int64_t ms, const char *name)
{
    char q[160];
    json_t *p;
    queue_name(t, t->stage, q, sizeof(q));
    p = json_pack("{s:s,s:s}", "reason", reason, "queue", q);
    if (prev_agent != NULL && prev_agent[0])
        json_object_set_new(p, "previous_agent_id", json_string(prev_agent));
    if (offer != NULL && offer[0])
        json_object_set_new(p, "offer_id", json_string(offer));
    emit(r, t, "ticket.requeued", ms, name, p);
}

/* Reserves the agent the core chose, in Redis; on refusal the core learns why and the
 * ticket goes back to routing. */
static void reserve(struct router *r, struct rt_ticket *t, const struct sb_route_decision *d,
                    int64_t t0_us)
{
    char offer_id[64], uuid[SB_UUID_STRLEN + 1], ms[24], exp[24], force[2] = "1";
    int64_t now = sb_now_ms();
    const char *chname = sb_route_channel_name(t->channel);
    struct rt_agent *a = agent_find(r, d->agent_id);
    redisReply *rep;
    long long code = -9;

    sb_uuid7_new(uuid);
    sb_fmt(offer_id, sizeof(offer_id), "o-%s", uuid);
    sb_fmt(ms, sizeof(ms), "%lld", (long long)now);
    sb_fmt(exp, sizeof(exp), "%lld", (long long)(now + r->offer_timeout_ms[t->channel]));
    {
        const char *args[] = {r->prefix, t->id, d->agent_id, chname,   offer_id,
                              ms,        exp,   force,       "offered"};
        rep = eval(r, r->script_reserve, 9, args);
    }
    if (rep == NULL) {
        /* Redis down: routing fails closed, the ticket waits in its queue. */
        core_forget(r, t);
        core_add(r, t);
        return;
    }
    reply_int(rep, 0, &code);
    if (code == -3) {
        /* Redis lost the router's state: the ticket waits until it is restored. */
        freeReplyObject(rep);
        core_forget(r, t);
        pause_for_restore(r);
        core_add(r, t);
        return;
    }
    if (code == 1 || code == 0) {
        const char *agent = reply_str(rep, 1), *state = reply_str(rep, 3);
        long long om = 0, em = 0;
        reply_int(rep, 4, &om);
        reply_int(rep, 5, &em);
        sb_strlcpy(t->agent, agent ? agent : d->agent_id, sizeof(t->agent));
        sb_strlcpy(t->offer_id, reply_str(rep, 2) ? reply_str(rep, 2) : offer_id,
                   sizeof(t->offer_id));
        t->offer_ms = om;
        t->expires_ms = em;
        t->continuity = d->continuity;
        t->stage = d->stage;
        t->state = state != NULL && strcmp(state, "accepted") == 0 ? RT_ACCEPTED : RT_OFFERED;
        if (code == 1 && a != NULL)
            a->load[t->channel]++;
        if (strcmp(t->agent, d->agent_id) != 0) {
            /* Reserved earlier (another instance, before a restart): that holds. */
            core_forget(r, t);
            core_restore(r, t);
            if (!t->in_core)
                t->state = RT_EXTERNAL;
        }
        emit_offered(r, t);
        if (code == 1) {
            char q[160];
            queue_name(t, t->stage, q, sizeof(q));
            sb_metric_inc(r->m_offers);
            sb_metric_inc(queue_metric(r, "sb_router_assignments_total", q));
            sb_metric_observe(queue_metric(r, "sb_router_wait_seconds", q),
                              (double)d->waited_us / 1e6);
            sb_metric_observe(r->m_decision_seconds, (double)(sb_mono_us() - t0_us) / 1e6);
        }
        mark_dirty(r, t->id, t->part);
    } else {
        /* Refused: the agent is full or not available for every instance's view. */
        int minus[SB_ROUTE_CH_COUNT] = {0};
        sb_metric_inc(r->m_refused);
        if (a != NULL) {
            if (code == -2) {
                long long used = 0, cap = 0;
                reply_int(rep, 1, &used);
                reply_int(rep, 2, &cap);
                a->load[t->channel] = (int)used;
                a->cap[t->channel] = (int)cap;
                minus[t->channel] = 1;
                agent_sync(r, a, minus);
            } else {
                const char *st = reply_str(rep, 1);
                int p = st ? sb_route_presence_parse(st) : SB_E_INVAL;
                a->status = p >= 0 ? p : SB_ROUTE_OFFLINE;
            }
        }
        core_forget(r, t);
        if (a != NULL && code != -2)
            agent_sync(r, a, NULL);
        core_add(r, t);
    }
    freeReplyObject(rep);
}

static void emit_overflowed(struct router *r, struct rt_ticket *t,
                            const struct sb_route_decision *d)
{
    char from[160], to[160], name[160];
    queue_name(t, t->stage, from, sizeof(from));
    queue_name(t, d->stage, to, sizeof(to));
    sb_fmt(name, sizeof(name), "overflowed:%s:%d", t->id, d->stage);
    emit(r, t, "ticket.overflowed", d->at_us / 1000, name,
         json_pack("{s:s,s:s,s:s,s:I}", "from_queue", from, "to_queue", to, "level",
                   d->stage >= 2 ? "other_team" : "secondary_skills", "waited_ms",
                   (json_int_t)(d->waited_us / 1000)));
    sb_metric_inc(queue_metric(r, "sb_router_overflows_total", to));
    t->stage = d->stage;
}

static void process_decisions(struct router *r, int64_t t0_us)
{
    struct sb_route_decision d[32];
    size_t n;
    long guard = 0;

    while ((n = sb_route_poll(r->core, d, 32)) > 0 && guard++ < 100000) {
        for (size_t i = 0; i < n; i++) {
            struct rt_ticket *t = ticket_find(r, d[i].ticket_id);
            if (t == NULL)
                continue;
            if (d[i].kind == SB_ROUTE_OVERFLOWED)
                emit_overflowed(r, t, &d[i]);
            else if (d[i].kind == SB_ROUTE_ASSIGNED)
                reserve(r, t, &d[i], t0_us);
        }
    }
}

/* ------------------------------------------------------------------ Redis down */

static void fail_closed(struct router *r)
{
    if (!r->redis_ok)
        return;
    r->redis_ok = 0;
    sb_metric_inc(r->m_redis_down);
    sb_log_kv(SB_LOG_ERROR, "redis unavailable: routing stops until it answers", NULL);
    FOR_AGENTS(r, a)
    {
        if (a->core_status == SB_ROUTE_AVAILABLE &&
            sb_route_agent_presence(r->core, a->id, SB_ROUTE_BUSY, now_us()) == 0)
            a->core_status = SB_ROUTE_BUSY;
    }
}

/* ------------------------------------------------------------------ partitions */

static void drop_partition(struct router *r, int32_t p)
{
    FOR_TICKETS(r, t)
    {
        if (t->part == p) {
            core_forget(r, t);
            ticket_remove(r, t);
        }
    }
    r->owned[p] = 0;
}

static struct rt_ticket *ticket_from_json(const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    struct rt_ticket *t;
    if (!json_is_object(o) || strlen(jstr(o, "id")) == 0 ||
        strlen(jstr(o, "id")) > SB_ROUTE_ID_MAX) {
        json_decref(o);
        return NULL;
    }
    t = sb_calloc(1, sizeof(*t));
    sb_strlcpy(t->id, jstr(o, "id"), sizeof(t->id));
    sb_strlcpy(t->trace_id, jstr(o, "trace"), sizeof(t->trace_id));
    sb_strlcpy(t->cust, jstr(o, "cust"), sizeof(t->cust));
    t->channel = (int)json_integer_value(json_object_get(o, "ch"));
    t->band = (int)json_integer_value(json_object_get(o, "band"));
    sb_strlcpy(t->domain, jstr(o, "domain"), sizeof(t->domain));
    sb_strlcpy(t->language, jstr(o, "lang"), sizeof(t->language));
    sb_strlcpy(t->product, jstr(o, "product"), sizeof(t->product));
    sb_strlcpy(t->team, jstr(o, "team"), sizeof(t->team));
    sb_strlcpy(t->preferred, jstr(o, "preferred"), sizeof(t->preferred));
    t->vip = json_is_true(json_object_get(o, "vip"));
    t->arrived_ms = json_integer_value(json_object_get(o, "arrived_ms"));
    t->part = (int32_t)json_integer_value(json_object_get(o, "part"));
    json_decref(o);
    if (t->channel < 0 || t->channel >= SB_ROUTE_CH_COUNT || t->band < 1 || t->band > 4) {
        free(t);
        return NULL;
    }
    return t;
}

/* Loads the tickets of partition p from Redis (a restart, or a partition moving here).
 * Returns 0 or SB_E_IO. */
static int load_partition(struct router *r, int32_t p)
{
    char key[128];
    redisReply *ids;
    size_t loaded = 0;

    sb_fmt(key, sizeof(key), "%spart:%d", r->prefix, (int)p);
    ids = sb_redis_cmdf(r->redis, "SMEMBERS %s", key);
    if (ids == NULL || ids->type != REDIS_REPLY_ARRAY) {
        if (ids != NULL)
            freeReplyObject(ids);
        fail_closed(r);
        return SB_E_IO;
    }
    for (size_t i = 0; i < ids->elements; i++) {
        const char *id = ids->element[i]->str;
        redisReply *rec, *resv;
        struct rt_ticket *t;
        if (id == NULL || ticket_find(r, id) != NULL)
            continue;
        rec = sb_redis_cmdf(r->redis, "GET %st:%s", r->prefix, id);
        resv = sb_redis_cmdf(r->redis, "HMGET %sresv:%s agent offer_id state offer_ms expires_ms",
                             r->prefix, id);
        if (rec == NULL || resv == NULL) {
            if (rec)
                freeReplyObject(rec);
            if (resv)
                freeReplyObject(resv);
            freeReplyObject(ids);
            fail_closed(r);
            return SB_E_IO;
        }
        t = rec->type == REDIS_REPLY_STRING ? ticket_from_json(rec->str) : NULL;
        if (t != NULL) {
            ticket_insert(r, t);
            loaded++;
            if (reply_str(resv, 0) != NULL) {
                long long v = 0;
                sb_strlcpy(t->agent, reply_str(resv, 0), sizeof(t->agent));
                sb_strlcpy(t->offer_id, reply_str(resv, 1) ? reply_str(resv, 1) : "",
                           sizeof(t->offer_id));
                t->state = reply_str(resv, 2) && strcmp(reply_str(resv, 2), "accepted") == 0
                               ? RT_ACCEPTED
                               : RT_OFFERED;
                reply_int(resv, 3, &v);
                t->offer_ms = v;
                v = 0;
                reply_int(resv, 4, &v);
                t->expires_ms = v;
                core_restore(r, t);
                if (!t->in_core && t->state == RT_OFFERED)
                    t->state = RT_EXTERNAL;
            } else {
                core_add(r, t);
            }
        }
        freeReplyObject(rec);
        freeReplyObject(resv);
    }
    freeReplyObject(ids);
    r->owned[p] = 1;
    if (loaded > 0) {
        char n[24], ps[16];
        sb_fmt(n, sizeof(n), "%zu", loaded);
        sb_fmt(ps, sizeof(ps), "%d", (int)p);
        sb_log_kv(SB_LOG_INFO, "tickets restored from redis", "partition", ps, "count", n, NULL);
    }
    process_decisions(r, sb_mono_us());
    return 0;
}

static void check_partitions(struct router *r)
{
    int32_t parts[RT_MAX_PARTS];
    unsigned char now[RT_MAX_PARTS] = {0};
    int n = sb_stage_partitions(r->stage, r->t_tickets, parts, RT_MAX_PARTS);

    for (int i = 0; i < n; i++)
        if (parts[i] >= 0 && parts[i] < RT_MAX_PARTS)
            now[parts[i]] = 1;
    for (int p = 0; p < RT_MAX_PARTS; p++) {
        if (r->owned[p] && !now[p])
            drop_partition(r, p);
        else if (!r->owned[p] && now[p] && r->redis_ok)
            load_partition(r, p);
    }
}

/* ------------------------------------------------------------------ roster, agents */

static void roster_load(struct router *r)
{
    char err[256];
    int perr = 0;
    struct sb_pg *pg = sb_pg_lazy(&r->pg, sb_config_str(r->cfg, "pg.dsn"), &r->pg_retry_ms, NULL);
    PGresult *teams, *agents;

    if (pg == NULL)
        return;
    teams =
        sb_pg_query(pg,
                    "SELECT id, coalesce(lead_agent_id, ''), coalesce(supervisor_agent_id, ''), "
                    "array_to_json(dedicated_to)::text FROM teams ORDER BY id",
                    0, NULL, &perr, err, sizeof(err));
    agents = teams == NULL
                 ? NULL
                 : sb_pg_query(pg,
                               "SELECT a.id, coalesce(a.team_id, ''), a.capacity_call, "
                               "a.capacity_chat, a.capacity_email, a.capacity_social, "
                               "(SELECT coalesce(json_object_agg(s.skill, s.level), "
                               "'{}') FROM agent_skills s WHERE s.agent_id = a.id)::text, "
                               "array_to_json(a.languages)::text, "
                               "array_to_json(a.product_lines)::text, a.active "
                               "FROM agents a ORDER BY a.id",
                               0, NULL, &perr, err, sizeof(err));
    if (agents == NULL) {
        sb_log_kv(SB_LOG_WARN, "roster not loaded", "detail", err, NULL);
        if (teams)
            PQclear(teams);
        return;
    }
    /* Teams: leads, supervisors, dedicated teams (VIP, core product lines). */
    for (size_t i = 0; i < r->ncore; i++) {
        free(r->core_lines[i]);
        free(r->core_teams[i]);
    }
    r->ncore = 0;
    r->vip_team[0] = '\0';
    free(r->teams);
    r->nteams = (size_t)PQntuples(teams);
    r->teams = sb_calloc(r->nteams + 1, sizeof(*r->teams));
    for (size_t i = 0; i < r->nteams; i++) {
        json_t *ded = json_loads(PQgetvalue(teams, (int)i, 3), 0, NULL);
        size_t k;
        json_t *v;
        sb_strlcpy(r->teams[i].id, PQgetvalue(teams, (int)i, 0), sizeof(r->teams[i].id));
        sb_strlcpy(r->teams[i].lead, PQgetvalue(teams, (int)i, 1), sizeof(r->teams[i].lead));
        sb_strlcpy(r->teams[i].supervisor, PQgetvalue(teams, (int)i, 2),
                   sizeof(r->teams[i].supervisor));
        json_array_foreach(ded, k, v)
        {
            const char *s = json_string_value(v);
            if (s == NULL)
                continue;
            if (strcmp(s, "vip") == 0) {
                sb_strlcpy(r->vip_team, r->teams[i].id, sizeof(r->vip_team));
            } else {
                r->core_lines = sb_realloc(r->core_lines, (r->ncore + 1) * sizeof(char *));
                r->core_teams = sb_realloc(r->core_teams, (r->ncore + 1) * sizeof(char *));
                r->core_lines[r->ncore] = sb_strdup(s);
                r->core_teams[r->ncore++] = sb_strdup(r->teams[i].id);
            }
        }
        json_decref(ded);
    }
    /* Product lines first: presence skills are read against them. */
    for (size_t i = 0; i < r->nproducts; i++)
        free(r->product_lines[i]);
    r->nproducts = 0;
    for (int i = 0; i < PQntuples(agents); i++) {
        json_t *pl = json_loads(PQgetvalue(agents, i, 8), 0, NULL);
        size_t k;
        json_t *v;
        json_array_foreach(pl, k, v)
        {
            int seen = 0;
            for (size_t j = 0; j < r->nproducts && !seen; j++)
                seen = strcmp(r->product_lines[j], json_string_value(v)) == 0;
            if (!seen && json_is_string(v)) {
                r->product_lines =
                    sb_realloc(r->product_lines, (r->nproducts + 1) * sizeof(char *));
                r->product_lines[r->nproducts++] = sb_strdup(json_string_value(v));
            }
        }
        json_decref(pl);
    }
    {
        size_t pn = (size_t)PQntuples(agents);
        int *argcs = sb_calloc(pn * 2 + 1, sizeof(int));
        const char ***argvs = sb_calloc(pn * 2 + 1, sizeof(*argvs));
        const char **store = sb_calloc(pn * 8 + 1, sizeof(char *));
        char **owned = sb_calloc(pn * 3 + 1, sizeof(char *));
        redisReply **rep = sb_calloc(pn * 2 + 1, sizeof(*rep));
        size_t m = 0, no = 0;
        for (int i = 0; i < PQntuples(agents); i++) {
            const char *id = PQgetvalue(agents, i, 0);
            struct rt_agent *a;
            json_t *caps, *tags, *langs, *prods;
            char *cj, key[160];
            int active = strcmp(PQgetvalue(agents, i, 9), "t") == 0;
            if (strncmp(id, r->agent_prefix, strlen(r->agent_prefix)) != 0 ||
                (a = agent_get(r, id)) == NULL)
                continue;
            sb_strlcpy(a->team, PQgetvalue(agents, i, 1), sizeof(a->team));
            a->in_roster = active;
            caps = json_pack("{s:i,s:i,s:i,s:i,s:i}", "phone",
                             active ? atoi(PQgetvalue(agents, i, 2)) : 0, "chat",
                             active ? atoi(PQgetvalue(agents, i, 3)) : 0, "email",
                             active ? atoi(PQgetvalue(agents, i, 4)) : 0, "social",
                             active ? atoi(PQgetvalue(agents, i, 5)) : 0, "web",
                             active ? atoi(PQgetvalue(agents, i, 4)) : 0);
            cj = canon_caps(r, caps);
            json_decref(caps);
            tags = json_loads(PQgetvalue(agents, i, 6), 0, NULL);
            langs = json_loads(PQgetvalue(agents, i, 7), 0, NULL);
            prods = json_loads(PQgetvalue(agents, i, 8), 0, NULL);
            owned[no++] = canon_skills(r, tags, langs, prods);
            json_decref(tags);
            json_decref(langs);
            json_decref(prods);
            sb_fmt(key, sizeof(key), "%sagent:%s", r->prefix, id);
            owned[no] = sb_strdup(key);
            store[m * 4] = "HSET", store[m * 4 + 1] = owned[no], store[m * 4 + 2] = "rcaps",
                      store[m * 4 + 3] = cj;
            argvs[m] = store + m * 4, argcs[m++] = 4;
            no++;
            /* rskills: the roster's skills, used while no presence event named any */
            store[m * 4] = "HSET", store[m * 4 + 1] = owned[no - 1], store[m * 4 + 2] = "rskills",
                      store[m * 4 + 3] = owned[no - 2];
            argvs[m] = store + m * 4, argcs[m++] = 4;
            owned[no++] = cj;
        }
        if (m > 0 && sb_redis_pipeline(r->redis, m, argcs, argvs, NULL, rep) == 0) {
            for (size_t i = 0; i < m; i++)
                if (rep[i])
                    freeReplyObject(rep[i]);
            {
                /* Every roster agent is known to every instance. */
                for (int i = 0; i < PQntuples(agents); i++) {
                    const char *id = PQgetvalue(agents, i, 0);
                    if (strncmp(id, r->agent_prefix, strlen(r->agent_prefix)) != 0)
                        continue;
                    redisReply *x = sb_redis_cmdf(r->redis, "SADD %sagents %s", r->prefix, id);
                    if (x)
                        freeReplyObject(x);
                }
            }
        }
        for (size_t i = 0; i < no; i++)
            free(owned[i]);
        free(owned);
        free(rep);
        free(store);
        free(argvs);
        free(argcs);
    }
    PQclear(teams);
    PQclear(agents);
}

/* Applies an agent's shared state read from Redis (status, caps, skills, load). */
static void agent_apply(struct router *r, struct rt_agent *a, const redisReply *h,
                        const redisReply *load)
{
    const char *status = reply_str(h, 0), *caps = reply_str(h, 1), *skills = reply_str(h, 2),
               *rcaps = reply_str(h, 3), *rskills = reply_str(h, 4);
    int p = status ? sb_route_presence_parse(status) : SB_ROUTE_OFFLINE;
    int was = a->status;
    const char *sk = skills ? skills : rskills;

    a->has_presence = status != NULL;
    /* Kept to be written back if Redis loses it. */
    sb_strlcpy(a->p_status, status ? status : "", sizeof(a->p_status));
    if (status != NULL) {
        long long ms = 0;
        reply_int(h, 5, &ms);
        a->p_ms = ms;
        free(a->p_caps);
        free(a->p_skills);
        a->p_caps = caps ? sb_strdup(caps) : NULL;
        a->p_skills = skills ? sb_strdup(skills) : NULL;
    }
    a->status = p >= 0 ? p : SB_ROUTE_OFFLINE;
    caps_parse(caps ? caps : rcaps, a->cap);
    if (sk != NULL && (a->skills_json == NULL || strcmp(a->skills_json, sk) != 0)) {
        free(a->skills_json);
        a->skills_json = sb_strdup(sk);
    }
    if (a->skills_json == NULL)
        a->skills_json = sb_strdup("{}");
    memset(a->load, 0, sizeof(a->load));
    if (load != NULL && load->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < load->elements; i += 2) {
            int ch = sb_route_channel_parse(load->element[i]->str);
            if (ch >= 0)
                a->load[ch] = atoi(load->element[i + 1]->str);
        }
    agent_sync(r, a, NULL);
    /* Gone away or offline: this instance's un-accepted offers to the agent go back. */
    if (was == SB_ROUTE_AVAILABLE || was == SB_ROUTE_BUSY) {
        if (a->status == SB_ROUTE_AWAY || a->status == SB_ROUTE_OFFLINE) {
            FOR_TICKETS(r, t)
            {
                char name[128], prev[SB_ROUTE_ID_MAX + 1], offer[64];
                if ((t->state != RT_OFFERED && t->state != RT_EXTERNAL) ||
                    strcmp(t->agent, a->id) != 0)
                    continue;
                if (release(r, t->id, t->agent, t->offer_id) < 0)
                    continue;
                sb_strlcpy(prev, t->agent, sizeof(prev));
                sb_strlcpy(offer, t->offer_id, sizeof(offer));
                sb_fmt(name, sizeof(name), "offline:%s", t->offer_id);
                if (t->in_core)
                    sb_route_ticket_requeue(r->core, t->id, NULL, now_us());
                else
                    core_add(r, t);
                t->state = RT_WAITING;
                t->agent[0] = '\0';
                emit_requeued(r, t, "agent_offline", prev, offer, sb_now_ms(), name);
            }
        }
    }
}

/* Redis lost the router's state (FLUSHDB, a restart without persistence) while this
 * instance runs: it writes back what it holds — the presence it last read, the roster,
 * its tickets' records and reservations (loads) — and for a while (key "restoring") no
 * instance reserves, so that every instance has written back its own first. Returns 0
 * or SB_E_IO (tried again at the next refresh). */
static int restore_state(struct router *r)
{
    long long window = 2 * sb_config_int(r->cfg, "agents.refresh_ms") + 1000;
    long restored = 0;
    redisReply *rep = sb_redis_cmdf(r->redis, "SET %srestoring 1 PX %lld NX", r->prefix, window);
    char n[24];

    if (rep == NULL)
        return SB_E_IO;
    freeReplyObject(rep);
    r->restoring = 1;
    FOR_AGENTS(r, a)
    {
        char ms[24];
        if (!a->p_status[0])
            continue;
        sb_fmt(ms, sizeof(ms), "%lld", a->p_ms);
        {
            const char *args[] = {r->prefix,
                                  a->id,
                                  a->p_status,
                                  a->p_caps ? a->p_caps : "",
                                  a->p_skills ? a->p_skills : "",
                                  ms};
            rep = eval(r, r->script_presence, 6, args);
        }
        if (rep == NULL)
            return SB_E_IO;
        freeReplyObject(rep);
    }
    roster_load(r);
    FOR_TICKETS(r, t)
    {
        char om[24], em[24];
        mark_dirty(r, t->id, t->part);
        if (!t->agent[0] || t->state == RT_WAITING)
            continue;
        sb_fmt(om, sizeof(om), "%lld", (long long)t->offer_ms);
        sb_fmt(em, sizeof(em), "%lld", (long long)t->expires_ms);
        {
            const char *args[] = {r->prefix,   t->id,
                                  t->agent,    sb_route_channel_name(t->channel),
                                  t->offer_id, t->state == RT_ACCEPTED ? "accepted" : "offered",
                                  om,          em};
            rep = eval(r, r->script_restore, 8, args);
        }
        if (rep == NULL)
            return SB_E_IO;
        restored += rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        freeReplyObject(rep);
    }
    if (router_flush(r) != 0)
        return SB_E_IO;
    rep = sb_redis_cmdf(r->redis, "SET %slive 1", r->prefix);
    if (rep == NULL)
        return SB_E_IO;
    freeReplyObject(rep);
    sb_metric_inc(r->m_restores);
    sb_fmt(n, sizeof(n), "%ld", restored);
    sb_log_kv(SB_LOG_WARN, "redis had lost the routing state: written back", "reservations", n,
              NULL);
    return 0;
}

/* Whether Redis still holds the router's state ("live"), or is being restored; writes it
 * back when lost. Returns 0 or SB_E_IO. */
static int check_live(struct router *r)
{
    redisReply *rep = sb_redis_cmdf(r->redis, "MGET %slive %srestoring", r->prefix, r->prefix);
    int live, restoring;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        if (rep != NULL)
            freeReplyObject(rep);
        return SB_E_IO;
    }
    live = reply_str(rep, 0) != NULL;
    restoring = reply_str(rep, 1) != NULL;
    freeReplyObject(rep);
    if (!live && r->live_seen) {
        if (restore_state(r) != 0)
            return SB_E_IO;
        restoring = 1;
    } else if (!live) {
        /* First start on this Redis: nothing held yet. */
        rep = sb_redis_cmdf(r->redis, "SET %slive 1", r->prefix);
        if (rep == NULL)
            return SB_E_IO;
        freeReplyObject(rep);
    }
    r->live_seen = 1;
    r->restoring = restoring;
    return 0;
}

/* Reads the shared state (presence, capacities, skills, load) of the n agents named and
 * applies it, in one pipelined round trip. Returns 0 or SB_E_IO. */
static int agents_fetch(struct router *r, const char *const *ids, size_t n)
{
    int *argcs = sb_calloc(n * 2, sizeof(int));
    const char ***argvs = sb_calloc(n * 2, sizeof(*argvs));
    const char **store = sb_calloc(n * 16, sizeof(char *));
    char **keys = sb_calloc(n * 2, sizeof(char *));
    redisReply **rep = sb_calloc(n * 2, sizeof(*rep));
    char key[160];
    int rc;

    for (size_t i = 0; i < n; i++) {
        const char **a = store + i * 16, **b = store + i * 16 + 8;
        sb_fmt(key, sizeof(key), "%sagent:%s", r->prefix, ids[i]);
        keys[i * 2] = sb_strdup(key);
        sb_fmt(key, sizeof(key), "%sload:%s", r->prefix, ids[i]);
        keys[i * 2 + 1] = sb_strdup(key);
        a[0] = "HMGET", a[1] = keys[i * 2], a[2] = "status", a[3] = "caps", a[4] = "skills",
        a[5] = "rcaps", a[6] = "rskills", a[7] = "ms";
        b[0] = "HGETALL", b[1] = keys[i * 2 + 1];
        argvs[i * 2] = a, argcs[i * 2] = 8;
        argvs[i * 2 + 1] = b, argcs[i * 2 + 1] = 2;
    }
    rc = sb_redis_pipeline(r->redis, n * 2, argcs, argvs, NULL, rep);
    if (rc == 0) {
        if (!r->redis_ok) {
            r->redis_ok = 1;
            sb_log_kv(SB_LOG_INFO, "redis answers again: routing resumes", NULL);
        }
        for (size_t i = 0; i < n; i++) {
            struct rt_agent *a = agent_get(r, ids[i]);
            if (a != NULL)
                agent_apply(r, a, rep[i * 2], rep[i * 2 + 1]);
        }
    }
    for (size_t i = 0; i < n * 2; i++) {
        if (rep[i])
            freeReplyObject(rep[i]);
        free(keys[i]);
    }
    free(rep);
    free(keys);
    free(store);
    free(argvs);
    free(argcs);
    return rc;
}

/* Reads every agent's shared state from Redis. Returns 0 or SB_E_IO. */
static int agents_refresh(struct router *r)
{
    redisReply *ids;
    const char **names;
    int rc = 0;

    if (check_live(r) != 0)
        return SB_E_IO;
    ids = sb_redis_cmdf(r->redis, "SMEMBERS %sagents", r->prefix);
    if (ids == NULL || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject(ids);
        return SB_E_IO;
    }
    if (ids->elements > 0) {
        names = sb_calloc(ids->elements, sizeof(char *));
        for (size_t i = 0; i < ids->elements; i++)
            names[i] = ids->element[i]->str;
        rc = agents_fetch(r, names, ids->elements);
        free(names);
    } else if (!r->redis_ok) {
        r->redis_ok = 1;
    }
    freeReplyObject(ids);
    return rc;
}

/* ------------------------------------------------------------------ handlers */

static int parse_band(const char *s)
{
    return s[0] == 'P' && s[1] >= '1' && s[1] <= '4' && s[2] == '\0' ? s[1] - '0' : SB_E_INVAL;
}

static enum sb_stage_result on_triaged(struct router *r, const struct sb_event *ev, int32_t part,
                                       char *reason, size_t rsz)
{
    json_t *p = ev->payload;
    struct rt_ticket *t;
    int ch = channel_of(jstr(p, "channel")), band = parse_band(jstr(p, "band"));
    const char *lang = jstr(p, "language");
    int64_t t0 = sb_mono_us();

    if (ticket_find(r, ev->ticket_id) != NULL) {
        sb_metric_inc(r->m_replays);
        return SB_STAGE_DONE; /* a replay: already routed */
    }
    if (ch < 0 || band < 0 || strlen(ev->ticket_id) > SB_ROUTE_ID_MAX) {
        sb_fmt(reason, rsz, "ticket.triaged: channel or band missing or invalid");
        return SB_STAGE_INVALID;
    }
    /* Done in this batch (its done record not written yet): a replay. */
    for (size_t i = 0; i < r->nwr; i++)
        if (strcmp(r->wr_id[i], ev->ticket_id) == 0) {
            sb_metric_inc(r->m_replays);
            return SB_STAGE_DONE;
        }
    t = sb_calloc(1, sizeof(*t));
    sb_strlcpy(t->id, ev->ticket_id, sizeof(t->id));
    sb_strlcpy(t->trace_id, ev->trace_id, sizeof(t->trace_id));
    t->channel = ch;
    t->band = band;
    sb_strlcpy(t->domain, jstr(p, "domain"), sizeof(t->domain));
    /* "zh-CN" → "zh": skills name languages by their primary subtag */
    for (size_t i = 0; i < 2 && lang[i] && lang[i] != '-' && lang[i] != '_'; i++)
        t->language[i] = (char)(lang[i] >= 'A' && lang[i] <= 'Z' ? lang[i] + 32 : lang[i]);
    sb_strlcpy(t->product, jstr(p, "product_line"), sizeof(t->product));
    t->vip = strcmp(jstr(p, "customer_tier"), "vip") == 0;
    t->arrived_ms = ev->occurred_ms;
    t->part = part;
    if (jstr(p, "customer_key")[0])
        sb_sha256_join_hex("customer", '\n', jstr(p, "customer_key"), t->cust);
    {
        struct sb_route_req req;
        struct sb_route_ticket_spec spec;
        memset(&spec, 0, sizeof(spec));
        if (sb_route_spec_fill(NULL, t->domain, t->language, t->product, t->vip, &req, &spec) !=
            0) {
            free(t);
            sb_fmt(reason, rsz, "ticket.triaged: not routable (names too long)");
            return SB_STAGE_INVALID;
        }
    }
    /* Routed once its lookup is made, with the batch's others (lookups_resolve). */
    if (r->nlk == r->caplk) {
        r->caplk = r->caplk ? r->caplk * 2 : 64;
        r->lk = sb_realloc(r->lk, r->caplk * sizeof(*r->lk));
    }
    {
        struct rt_lookup *l = &r->lk[r->nlk++];
        memset(l, 0, sizeof(*l));
        l->t = t;
        sb_fmt(l->name, sizeof(l->name), "queued:%s", ev->event_id);
        sb_strlcpy(l->band, jstr(p, "band"), sizeof(l->band));
        sb_strlcpy(l->channel, jstr(p, "channel"), sizeof(l->channel));
        l->occurred_ms = ev->occurred_ms;
        l->t0_us = t0;
    }
    return SB_STAGE_PENDING;
}

/* Routes a new ticket whose lookup said it is not done: into the core, decisions, and
 * its ticket.queued when it waits. */
static void route_new(struct router *r, const struct rt_lookup *l)
{
    struct rt_ticket *t = l->t;

    ticket_insert(r, t);
    if (core_add(r, t) != 0) {
        /* Names were checked when taken: the core is full (max tickets or queues). */
        sb_log_kv(SB_LOG_ERROR, "ticket not routed: the routing core refused it", "ticket_id",
                  t->id, NULL);
        ticket_remove(r, t);
        return;
    }
    process_decisions(r, l->t0_us);
    mark_dirty(r, t->id, t->part);
    if (t->state == RT_WAITING) {
        struct sb_route_ticket_info info;
        char q[160];
        json_t *eta = json_null();
        uint64_t pos = 1;
        json_t *skills = json_array();
        if (sb_route_ticket_get(r->core, t->id, &info) == 0) {
            if (info.state == SB_ROUTE_T_QUEUED) {
                pos = info.position + 1;
                uint32_t available = sb_route_queue_available(r->core, info.queue);
                if (available > 0) {
                    double e =
                        sb_erlang_eta((double)info.position, r->aht_s[t->channel], (int)available);
                    if (isfinite(e))
                        eta = json_integer((json_int_t)llround(e));
                }
            }
        }
        if (t->domain[0])
            json_array_append_new(skills, json_string(t->domain));
        if (t->language[0])
            json_array_append_new(skills, json_string(t->language));
        if (t->product[0])
            json_array_append_new(skills, json_string(t->product));
        queue_name(t, t->stage, q, sizeof(q));
        emit(r, t, "ticket.queued", l->occurred_ms, l->name,
             json_pack("{s:s,s:s,s:I,s:o,s:o,s:s}", "queue", q, "band", l->band, "position",
                       (json_int_t)pos, "eta_seconds", eta, "required_skills", skills, "channel",
                       l->channel));
    }
}

/* Makes the lookups of the new tickets taken since the last call in one pipelined round
 * trip — each ticket's record (a done ticket read again after a restart or a rewind of
 * the group must not be routed a second time) and, for continuity, the customer's last
 * agent (kept by accept, keyed by a hash) — then routes them in the order they came.
 * Called before any other input is applied, before a flush and before the timers, so
 * that the order of the inputs is kept. Returns 0, or SB_E_IO (Redis down: the tickets
 * stay taken, for the next call). */
static int lookups_resolve(struct router *r)
{
    size_t n = r->nlk;
    int *argcs;
    const char ***argvs, **store;
    char **keys;
    redisReply **rep;
    char key[200];
    int rc;

    if (n == 0)
        return 0;
    argcs = sb_calloc(n, sizeof(int));
    argvs = sb_calloc(n, sizeof(*argvs));
    store = sb_calloc(n * 3, sizeof(char *));
    keys = sb_calloc(n * 2, sizeof(char *));
    rep = sb_calloc(n, sizeof(*rep));
    for (size_t i = 0; i < n; i++) {
        const struct rt_ticket *t = r->lk[i].t;
        const char **a = store + i * 3;
        sb_fmt(key, sizeof(key), "%st:%s", r->prefix, t->id);
        keys[i * 2] = sb_strdup(key);
        sb_fmt(key, sizeof(key), "%slast:%s", r->prefix, t->cust[0] ? t->cust : "-");
        keys[i * 2 + 1] = sb_strdup(key);
        a[0] = "MGET", a[1] = keys[i * 2], a[2] = keys[i * 2 + 1];
        argvs[i] = a, argcs[i] = 3;
    }
    rc = sb_redis_pipeline(r->redis, n, argcs, argvs, NULL, rep);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (rep[i] == NULL || rep[i]->type != REDIS_REPLY_ARRAY || rep[i]->elements != 2)
            rc = SB_E_IO;
    if (rc == 0) {
        r->nlk = 0; /* route_new may take no new lookups, but keep the list consistent */
        for (size_t i = 0; i < n; i++) {
            struct rt_lookup *l = &r->lk[i];
            if (reply_str(rep[i], 0) != NULL || ticket_find(r, l->t->id) != NULL) {
                /* Done (or routed by an instance that still holds it, or twice in this
                 * batch): nothing to do. */
                free(l->t);
                sb_metric_inc(r->m_replays);
                continue;
            }
            if (l->t->cust[0] && reply_str(rep[i], 1) != NULL)
                sb_strlcpy(l->t->preferred, reply_str(rep[i], 1), sizeof(l->t->preferred));
            route_new(r, l);
        }
    } else {
        fail_closed(r);
    }
    for (size_t i = 0; i < n; i++) {
        if (rep[i])
            freeReplyObject(rep[i]);
        free(keys[i * 2]);
        free(keys[i * 2 + 1]);
    }
    free(rep);
    free(keys);
    free(store);
    free(argvs);
    free(argcs);
    return rc == 0 ? 0 : SB_E_IO;
}

/* Forgets a ticket for good (resolved, merged). */
static enum sb_stage_result finish(struct router *r, struct rt_ticket *t, int64_t ms)
{
    if (t->agent[0] && release(r, t->id, "", "") == SB_E_IO)
        return SB_STAGE_RETRY;
    if (t->state == RT_ACCEPTED && t->accepted_ms > 0 && ms > t->accepted_ms) {
        double h = (double)(ms - t->accepted_ms) / 1000.0;
        r->aht_s[t->channel] = 0.95 * r->aht_s[t->channel] + 0.05 * h;
    }
    core_forget(r, t);
    mark_dirty(r, t->id, t->part);
    ticket_remove(r, t);
    process_decisions(r, sb_mono_us());
    return SB_STAGE_PENDING;
}

static enum sb_stage_result offer_accept(struct router *r, struct rt_ticket *t, const char *agent,
                                         const struct sb_event *ev)
{
    char ms[24];
    const char *args[] = {r->prefix, t->id, agent, ms};
    redisReply *rep;
    int64_t remember = sb_config_int(r->cfg, "continuity.remember_s");

    sb_fmt(ms, sizeof(ms), "%lld", (long long)ev->occurred_ms);
    rep = eval(r, r->script_accept, 4, args);
    if (rep == NULL)
        return SB_STAGE_RETRY;
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == -3) {
        freeReplyObject(rep);
        pause_for_restore(r);
        return SB_STAGE_RETRY;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
        /* The assignment is announced once: when the offer becomes accepted, and again
         * only for a claim (a replayed claim derives the same event id). A reply or a
         * status change on a ticket already accepted is work on it, not a new
         * assignment: announcing it again made every reply a second ticket.assigned. */
        int first = t->state != RT_ACCEPTED;
        if (first)
            sb_metric_inc(r->m_accepts);
        t->state = RT_ACCEPTED;
        if (first || strcmp(ev->type, "ticket.claimed") == 0) {
            t->accepted_ms = ev->occurred_ms;
            emit_assigned(r, t, ev->occurred_ms);
        }
        if (t->cust[0] && remember > 0) {
            redisReply *x = sb_redis_cmdf(r->redis, "SET %slast:%s %s EX %lld", r->prefix, t->cust,
                                          agent, (long long)remember);
            if (x)
                freeReplyObject(x);
        }
    }
    freeReplyObject(rep);
    return SB_STAGE_PENDING;
}

/* Moves the ticket elsewhere: its reservation goes, it is routed again with the same
 * arrival (to a team, a preferred agent). */
static enum sb_stage_result move(struct router *r, struct rt_ticket *t, const char *reason,
                                 const char *team, const char *agent, const struct sb_event *ev)
{
    char prev[SB_ROUTE_ID_MAX + 1], offer[64], name[128];
    sb_strlcpy(prev, t->agent, sizeof(prev));
    sb_strlcpy(offer, t->offer_id, sizeof(offer));
    if (t->agent[0] && release(r, t->id, "", "") == SB_E_IO)
        return SB_STAGE_RETRY;
    core_forget(r, t);
    t->agent[0] = '\0';
    t->offer_id[0] = '\0';
    t->state = RT_WAITING;
    if (team != NULL && team[0])
        sb_strlcpy(t->team, team, sizeof(t->team));
    if (agent != NULL && agent[0])
        sb_strlcpy(t->preferred, agent, sizeof(t->preferred));
    sb_fmt(name, sizeof(name), "%s:%s", reason, ev->event_id);
    emit_requeued(r, t, reason, prev, offer, ev->occurred_ms, name);
    core_add(r, t);
    mark_dirty(r, t->id, t->part);
    process_decisions(r, sb_mono_us());
    return SB_STAGE_PENDING;
}

static const char *team_of_agent(struct router *r, const char *agent)
{
    struct rt_agent *a = agent && agent[0] ? agent_find(r, agent) : NULL;
    return a != NULL ? a->team : "";
}

static enum sb_stage_result on_activity(struct router *r, const struct sb_event *ev)
{
    json_t *p = ev->payload;
    const char *actor = jstr(json_object_get(p, "actor"), "agent_id");
    struct rt_ticket *t = ticket_find(r, ev->ticket_id);

    if (t == NULL)
        return SB_STAGE_DONE;
    if (strcmp(ev->type, "ticket.claimed") == 0 || (strcmp(ev->type, "agent.replied") == 0) ||
        (strcmp(ev->type, "ticket.status_changed") == 0 &&
         strcmp(jstr(p, "status"), "in_progress") == 0)) {
        if ((t->state == RT_OFFERED || t->state == RT_EXTERNAL || t->state == RT_ACCEPTED) &&
            strcmp(t->agent, actor) == 0)
            return offer_accept(r, t, actor, ev);
        if (t->state == RT_WAITING && strcmp(ev->type, "ticket.claimed") == 0 && actor[0] &&
            t->in_core) {
            /* An agent takes a waiting ticket: capacity is reserved the same way. */
            char offer_id[64], uuid[SB_UUID_STRLEN + 1], ms[24];
            const char *args[9];
            redisReply *rep;
            long long code = -9;
            sb_uuid7_derive(ev->occurred_ms, ev->event_id, uuid);
            sb_fmt(offer_id, sizeof(offer_id), "o-%s", uuid);
            sb_fmt(ms, sizeof(ms), "%lld", (long long)ev->occurred_ms);
            args[0] = r->prefix, args[1] = t->id, args[2] = actor;
            args[3] = sb_route_channel_name(t->channel), args[4] = offer_id, args[5] = ms;
            args[6] = ms, args[7] = "0", args[8] = "accepted";
            rep = eval(r, r->script_reserve, 9, args);
            if (rep == NULL)
                return SB_STAGE_RETRY;
            reply_int(rep, 0, &code);
            if (code == -3) {
                freeReplyObject(rep);
                pause_for_restore(r);
                return SB_STAGE_RETRY;
            }
            if (code == 1 ||
                (code == 0 && reply_str(rep, 1) && strcmp(reply_str(rep, 1), actor) == 0)) {
                struct rt_agent *a = agent_find(r, actor);
                if (code == 1 && a != NULL)
                    a->load[t->channel]++;
                if (sb_route_ticket_claim(r->core, t->id, actor, now_us()) != 0) {
                    core_forget(r, t);
                    sb_strlcpy(t->agent, actor, sizeof(t->agent));
                    core_restore(r, t);
                }
                sb_strlcpy(t->agent, actor, sizeof(t->agent));
                sb_strlcpy(t->offer_id, reply_str(rep, 2) ? reply_str(rep, 2) : offer_id,
                           sizeof(t->offer_id));
                t->offer_ms = ev->occurred_ms;
                t->state = RT_ACCEPTED;
                t->accepted_ms = ev->occurred_ms;
                sb_metric_inc(r->m_accepts);
                emit_assigned(r, t, ev->occurred_ms);
                mark_dirty(r, t->id, t->part);
            }
            freeReplyObject(rep);
            process_decisions(r, sb_mono_us());
            return SB_STAGE_PENDING;
        }
        return SB_STAGE_DONE;
    }
    if (strcmp(ev->type, "ticket.declined") == 0) {
        char name[128], prev[SB_ROUTE_ID_MAX + 1], offer[64];
        const char *sugg = jstr(p, "suggested_agent");
        int rel;
        if (t->state != RT_OFFERED && t->state != RT_EXTERNAL && t->state != RT_ACCEPTED)
            return SB_STAGE_DONE;
        if (strcmp(t->agent, actor) != 0)
            return SB_STAGE_DONE;
        rel = release(r, t->id, t->agent, t->offer_id);
        if (rel == SB_E_IO)
            return SB_STAGE_RETRY;
        sb_strlcpy(prev, t->agent, sizeof(prev));
        sb_strlcpy(offer, t->offer_id, sizeof(offer));
        t->agent[0] = '\0';
        t->state = RT_WAITING;
        sb_metric_inc(r->m_declines);
        sb_fmt(name, sizeof(name), "declined:%s", ev->event_id);
        emit_requeued(r, t, "declined", prev, offer, ev->occurred_ms, name);
        if (t->in_core)
            sb_route_ticket_requeue(r->core, t->id, sugg[0] ? sugg : NULL, now_us());
        else
            core_add(r, t);
        mark_dirty(r, t->id, t->part);
        process_decisions(r, sb_mono_us());
        return SB_STAGE_PENDING;
    }
    if (strcmp(ev->type, "ticket.status_changed") == 0) {
        const char *st = jstr(p, "status");
        if (strcmp(st, "resolved") == 0 || strcmp(st, "archived") == 0 ||
            strcmp(st, "awaiting_archive") == 0)
            return finish(r, t, ev->occurred_ms);
        return SB_STAGE_DONE;
    }
    if (strcmp(ev->type, "ticket.transferred") == 0)
        return move(r, t, "transferred", jstr(p, "to_team"), jstr(p, "to_agent"), ev);
    return SB_STAGE_DONE;
}

static enum sb_stage_result on_sla(struct router *r, const struct sb_event *ev)
{
    json_t *p = ev->payload;
    struct rt_ticket *t = ticket_find(r, ev->ticket_id);
    const char *level = jstr(p, "level"), *target = jstr(p, "to_agent_id");
    const char *team;

    if (t == NULL || strcmp(ev->type, "sla.escalated") != 0 || strcmp(level, "agent") == 0)
        return SB_STAGE_DONE;
    team = t->team[0] ? t->team : team_of_agent(r, t->agent);
    if (!target[0])
        for (size_t i = 0; i < r->nteams; i++)
            if (strcmp(r->teams[i].id, team) == 0)
                target = strcmp(level, "lead") == 0 ? r->teams[i].lead : r->teams[i].supervisor;
    if (!target[0] || strcmp(t->agent, target) == 0)
        return SB_STAGE_DONE;
    return move(r, t, "escalated", team_of_agent(r, target), target, ev);
}

static enum sb_stage_result on_presence(struct router *r, const struct sb_event *ev, char *reason,
                                        size_t rsz)
{
    json_t *p = ev->payload;
    const char *agent = jstr(p, "agent_id"), *status = jstr(p, "status");
    json_t *caps = json_object_get(p, "capacities"), *skills = json_object_get(p, "skills");
    char *cj = NULL, *sj = NULL, ms[24];
    redisReply *rep;

    if (strncmp(agent, r->agent_prefix, strlen(r->agent_prefix)) != 0)
        return SB_STAGE_DONE;
    if (!agent[0] || strlen(agent) > SB_ROUTE_ID_MAX || sb_route_presence_parse(status) < 0) {
        sb_fmt(reason, rsz, "agent.presence: agent_id or status missing or invalid");
        return SB_STAGE_INVALID;
    }
    if (json_is_object(caps))
        cj = canon_caps(r, caps);
    if (json_is_object(skills))
        sj = canon_skills(r, skills, NULL, NULL);
    sb_fmt(ms, sizeof(ms), "%lld", (long long)ev->occurred_ms);
    {
        const char *args[] = {r->prefix, agent, status, cj ? cj : "", sj ? sj : "", ms};
        rep = eval(r, r->script_presence, 6, args);
    }
    free(cj);
    free(sj);
    if (rep == NULL)
        return SB_STAGE_RETRY;
    freeReplyObject(rep);
    /* Applied here now (this agent only: a login storm of n agents must not cost n full
     * refreshes); the other instances see it within their refresh. */
    if (agents_fetch(r, &agent, 1) != 0) {
        fail_closed(r);
        return SB_STAGE_RETRY;
    }
    return SB_STAGE_DONE;
}

enum sb_stage_result router_handle(void *ctx, const struct sb_event *ev,
                                   const rd_kafka_message_t *rkm, char *reason, size_t reason_size)
{
    struct router *r = ctx;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int presence = strcmp(topic, r->t_presence) == 0;
    int triaged =
        !presence && strcmp(ev->type, "ticket.triaged") == 0 && strcmp(topic, r->t_tickets) == 0;
    enum sb_stage_result res = SB_STAGE_DONE;

    /* Inputs apply in order: the new tickets taken so far are routed first. */
    if (!triaged && r->nlk > 0 && lookups_resolve(r) != 0)
        return SB_STAGE_RETRY;
    if (presence) {
        res = on_presence(r, ev, reason, reason_size);
        if (res == SB_STAGE_DONE && r->redis_ok) {
            sb_route_tick(r->core, now_us());
            process_decisions(r, sb_mono_us());
        }
        return res == SB_STAGE_DONE && (r->nout || r->nwr) ? SB_STAGE_PENDING : res;
    }
    if (!ev->ticket_id[0] || strncmp(ev->ticket_id, r->ticket_prefix, strlen(r->ticket_prefix)))
        return r->nout || r->nwr ? SB_STAGE_PENDING : SB_STAGE_DONE;
    if (!r->redis_ok || (r->restoring && sb_mono_ms() >= r->agents_next_ms)) {
        /* Redis back, or its state being restored: read again (at most every refresh). */
        r->agents_next_ms = sb_mono_ms() + sb_config_int(r->cfg, "agents.refresh_ms");
        if (agents_refresh(r) != 0)
            return SB_STAGE_RETRY;
    }
    if (rkm->partition >= 0 && rkm->partition < RT_MAX_PARTS && !r->owned[rkm->partition] &&
        load_partition(r, rkm->partition) != 0)
        return SB_STAGE_RETRY;
    sb_route_tick(r->core, now_us());
    process_decisions(r, sb_mono_us());
    if (strcmp(topic, r->t_tickets) == 0) {
        struct rt_ticket *t = ticket_find(r, ev->ticket_id);
        if (triaged) {
            res = on_triaged(r, ev, rkm->partition, reason, reason_size);
            if (res == SB_STAGE_PENDING && r->nlk >= RT_LOOKUP_MAX)
                (void)lookups_resolve(r); /* failed: they stay taken, for the flush */
        } else if (strcmp(ev->type, "ticket.rescored") == 0 && t != NULL) {
            int band = parse_band(jstr(ev->payload, "band"));
            if (band > 0) {
                t->band = band;
                if (t->in_core)
                    sb_route_ticket_rescore(r->core, t->id, band, now_us());
                mark_dirty(r, t->id, t->part);
                res = SB_STAGE_PENDING;
            }
        } else if (strcmp(ev->type, "ticket.merged") == 0 && t != NULL)
            res = finish(r, t, ev->occurred_ms);
    } else if (strcmp(topic, r->t_activity) == 0) {
        res = on_activity(r, ev);
    } else if (strcmp(topic, r->t_sla) == 0) {
        res = on_sla(r, ev);
    }
    if (res == SB_STAGE_DONE && (r->nout || r->nwr))
        res = SB_STAGE_PENDING;
    return res;
}

/* ------------------------------------------------------------------ periodic */

static void expire_offers(struct router *r)
{
    int64_t now = sb_now_ms();
    FOR_TICKETS(r, t)
    {
        char name[128], prev[SB_ROUTE_ID_MAX + 1], offer[64];
        int rel;
        if ((t->state != RT_OFFERED && t->state != RT_EXTERNAL) || t->expires_ms <= 0 ||
            now < t->expires_ms)
            continue;
        rel = release(r, t->id, t->agent, t->offer_id);
        if (rel == SB_E_IO)
            return;
        sb_strlcpy(prev, t->agent, sizeof(prev));
        sb_strlcpy(offer, t->offer_id, sizeof(offer));
        t->agent[0] = '\0';
        t->state = RT_WAITING;
        sb_metric_inc(r->m_timeouts);
        sb_fmt(name, sizeof(name), "expired:%s", offer);
        emit_requeued(r, t, "offer_expired", prev, offer, t->expires_ms, name);
        if (t->in_core)
            sb_route_ticket_requeue(r->core, t->id, NULL, now_us());
        else
            core_add(r, t);
        mark_dirty(r, t->id, t->part);
        process_decisions(r, sb_mono_us());
    }
}

/* Per channel: waiting tickets of every instance, agents available, the Erlang C
 * estimate of a new arrival's wait, for ingest (sb:eta:<intake channel>). */
static void eta_update(struct router *r)
{
    int64_t now = sb_now_ms();
    long waiting[SB_ROUTE_CH_COUNT] = {0}, avail[SB_ROUTE_CH_COUNT] = {0};
    char key[160], val[64];

    FOR_TICKETS(r, t)
    {
        if (t->state == RT_WAITING)
            waiting[t->channel]++;
    }
    FOR_AGENTS(r, a)
    {
        for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++)
            if (a->status == SB_ROUTE_AVAILABLE && a->cap[ch] > 0)
                avail[ch]++;
    }
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        redisReply *rep;
        long total = 0;
        double e;
        sb_fmt(key, sizeof(key), "%swaiting:%s", r->prefix, sb_route_channel_name(ch));
        sb_fmt(val, sizeof(val), "%ld:%lld", waiting[ch], (long long)now);
        rep = sb_redis_cmdf(r->redis, "HSET %s %s %s", key, r->instance, val);
        if (rep == NULL)
            return;
        freeReplyObject(rep);
        rep = sb_redis_cmdf(r->redis, "HGETALL %s", key);
        if (rep == NULL)
            return;
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
            const char *v = rep->element[i + 1]->str, *c = v ? strchr(v, ':') : NULL;
            if (c != NULL && now - strtoll(c + 1, NULL, 10) < 10000)
                total += strtol(v, NULL, 10);
            else if (c != NULL && now - strtoll(c + 1, NULL, 10) > 600000) {
                redisReply *x = sb_redis_cmdf(r->redis, "HDEL %s %s", key, rep->element[i]->str);
                if (x)
                    freeReplyObject(x);
            }
        }
        freeReplyObject(rep);
        if (avail[ch] == 0)
            continue;
        e = sb_erlang_eta((double)total, r->aht_s[ch], (int)avail[ch]);
        if (!isfinite(e))
            continue;
        for (size_t i = 0; i < N_INTAKE; i++) {
            if (intake_map[i] != ch)
                continue;
            sb_fmt(key, sizeof(key), "%s%s", r->eta_prefix, intake_channels[i]);
            rep = sb_redis_cmdf(r->redis, "HSET %s position %ld eta_seconds %lld updated_ms %lld",
                                key, total + 1, (long long)llround(e), (long long)now);
            if (rep)
                freeReplyObject(rep);
        }
    }
}

static void metrics_update(struct router *r)
{
    size_t nq = sb_route_queue_count(r->core);
    int64_t now = now_us();
    long open = 0, online = 0;

    for (size_t i = 0; i < nq; i++) {
        struct sb_route_queue_info qi;
        char name[160];
        const char *domain = "general";
        if (sb_route_queue_get(r->core, i, &qi) != 0)
            continue;
        for (size_t k = 0; k < qi.nskills; k++)
            if (strncmp(qi.skills[k], "domain:", 7) == 0)
                domain = qi.skills[k] + 7;
        sb_fmt(name, sizeof(name), "%s/%s%s", qi.team[0] ? qi.team : "any", domain,
               qi.min_level < r->core_cfg.primary_level ? "~secondary" : "");
        sb_metric_set(queue_metric(r, "sb_router_queue_length", name), (double)qi.waiting);
        sb_metric_set(queue_metric(r, "sb_router_queue_oldest_wait_seconds", name),
                      qi.waiting > 0 ? (double)(now - qi.oldest_us) / 1e6 : 0);
        sb_metric_set(queue_metric(r, "sb_router_agents_available", name), (double)qi.free);
    }
    FOR_TICKETS(r, t)
    {
        (void)t;
        open++;
    }
    FOR_AGENTS(r, a)
    {
        if (a->status == SB_ROUTE_AVAILABLE || a->status == SB_ROUTE_BUSY)
            online++;
    }
    sb_metric_set(r->m_open, (double)open);
    sb_metric_set(r->m_agents_online, (double)online);
}

void router_periodic(struct router *r)
{
    int64_t now = sb_mono_ms();

    if (r->nlk > 0 && r->redis_ok)
        lookups_resolve(r);
    if (now >= r->roster_next_ms) {
        roster_load(r);
        r->roster_next_ms = now + sb_config_int(r->cfg, "roster.refresh_s") * 1000;
    }
    if (now >= r->agents_next_ms) {
        if (agents_refresh(r) != 0)
            fail_closed(r);
        r->agents_next_ms = now + sb_config_int(r->cfg, "agents.refresh_ms");
    }
    if (r->stage != NULL && now >= r->parts_next_ms) {
        check_partitions(r);
        r->parts_next_ms = now + 500;
    }
    if (r->redis_ok) {
        sb_route_tick(r->core, now_us());
        process_decisions(r, sb_mono_us());
        expire_offers(r);
    }
    if (r->redis_ok && now >= r->eta_next_ms) {
        eta_update(r);
        r->eta_next_ms = now + 1000;
    }
    if (now >= r->metrics_next_ms) {
        metrics_update(r);
        r->metrics_next_ms = now + 1000;
    }
}

int router_ready(void *ctx, char *why, size_t why_size)
{
    struct router *r = ctx;
    if (!r->redis_ok) {
        sb_fmt(why, why_size, "redis unavailable: routing stopped (fails closed)");
        return 0;
    }
    if (sb_producer_fatal(r->producer)) {
        sb_fmt(why, why_size, "kafka producer failed");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ set-up */

int router_init(struct router *r, struct sb_config *cfg, char *err, size_t errsz)
{
    static const char *const to_keys[SB_ROUTE_CH_COUNT] = {
        "offer.timeout_s.voice",  "offer.timeout_s.chat", "offer.timeout_s.email",
        "offer.timeout_s.social", "offer.timeout_s.form", "offer.timeout_s.task"};
    int policy = sb_route_policy_parse(sb_config_str(cfg, "policy"));
    char uuid[SB_UUID_STRLEN + 1];

    r->cfg = cfg;
    r->prefix = sb_config_str(cfg, "redis.prefix");
    r->eta_prefix = sb_config_str(cfg, "eta.prefix");
    r->ticket_prefix = sb_config_str(cfg, "ticket_prefix");
    r->agent_prefix = sb_config_str(cfg, "agent_prefix");
    r->t_tickets = sb_config_str(cfg, "topics.tickets");
    r->t_presence = sb_config_str(cfg, "topics.presence");
    r->t_activity = sb_config_str(cfg, "topics.activity");
    r->t_sla = sb_config_str(cfg, "topics.sla");
    r->t_routing = sb_config_str(cfg, "topics.routing");
    r->task_capacity = (int)sb_config_int(cfg, "capacity.task");
    r->done_remember_s = (long long)sb_config_int(cfg, "tickets.done_remember_s");
    r->produce_timeout_ms = (int)sb_config_int(cfg, "kafka.produce_timeout_ms");
    sb_uuid7_new(uuid);
    sb_fmt(r->instance, sizeof(r->instance), "%s", uuid);
    sb_fmt(r->producer_name, sizeof(r->producer_name), "%s/%s", SB_ROUTER_PROGRAM, SB_VERSION);
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        r->offer_timeout_ms[ch] = sb_config_int(cfg, to_keys[ch]) * 1000;
        r->aht_s[ch] = sb_config_double(cfg, "eta.aht_s");
    }
    if (policy < 0) {
        sb_fmt(err, errsz, "config key \"policy\": least_occupied, longest_idle or highest_skill");
        return SB_E_INVAL;
    }
    sb_route_cfg_default(&r->core_cfg);
    r->core_cfg.policy = policy;
    r->core_cfg.primary_level = 60; /* level 3 of 5 */
    r->core_cfg.continuity_wait_us = sb_config_int(cfg, "continuity.wait_s") * 1000000;
    r->core = sb_route_new(&r->core_cfg, err, errsz);
    if (r->core == NULL)
        return SB_E_INVAL;
    r->redis = sb_redis_new(sb_config_str(cfg, "redis.url"),
                            (int)sb_config_int(cfg, "redis.timeout_ms"), err, errsz);
    if (r->redis == NULL)
        return SB_E_IO;
    r->script_presence = sb_redis_script_add(r->redis, lua_presence);
    r->script_reserve = sb_redis_script_add(r->redis, lua_reserve);
    r->script_release = sb_redis_script_add(r->redis, lua_release);
    r->script_accept = sb_redis_script_add(r->redis, lua_accept);
    r->script_restore = sb_redis_script_add(r->redis, lua_restore);
    r->redis_ok = 1;
    r->metrics = sb_metrics_new();
    r->m_offers = sb_metrics_counter(r->metrics, "sb_router_offers_total",
                                     "Offers made (capacity reserved)", NULL);
    r->m_accepts = sb_metrics_counter(r->metrics, "sb_router_accepts_total",
                                      "Offers accepted or claimed", NULL);
    r->m_timeouts = sb_metrics_counter(r->metrics, "sb_router_offer_timeouts_total",
                                       "Offers that expired and were routed again", NULL);
    r->m_declines =
        sb_metrics_counter(r->metrics, "sb_router_declines_total", "Offers declined", NULL);
    r->m_refused = sb_metrics_counter(r->metrics, "sb_router_reservations_refused_total",
                                      "Reservations the Redis script refused (agent full or "
                                      "not available for another instance)",
                                      NULL);
    r->m_redis_down = sb_metrics_counter(r->metrics, "sb_router_redis_unavailable_total",
                                         "Times routing stopped because Redis was down", NULL);
    r->m_replays = sb_metrics_counter(r->metrics, "sb_router_replays_skipped_total",
                                      "ticket.triaged read again for a ticket already routed or "
                                      "done (a restart, a rewind): nothing routed again",
                                      NULL);
    r->m_restores = sb_metrics_counter(r->metrics, "sb_router_state_restores_total",
                                       "Times Redis had lost the routing state and this "
                                       "instance wrote back what it holds",
                                       NULL);
    r->m_decision_seconds = sb_metrics_histogram(
        r->metrics, "sb_router_decision_seconds",
        "From the input that made a decision to the reserved offer", NULL, NULL, 0);
    r->m_open = sb_metrics_gauge(r->metrics, "sb_router_tickets_open",
                                 "Tickets routed by this instance and not yet resolved", NULL);
    r->m_agents_online = sb_metrics_gauge(r->metrics, "sb_router_agents_online",
                                          "Agents available or busy (every instance)", NULL);
    roster_load(r);
    r->roster_next_ms = sb_mono_ms() + sb_config_int(cfg, "roster.refresh_s") * 1000;
    if (agents_refresh(r) != 0) {
        sb_fmt(err, errsz, "redis: cannot read the agents");
        return SB_E_IO;
    }
    r->agents_next_ms = sb_mono_ms() + sb_config_int(cfg, "agents.refresh_ms");
    return 0;
}

void router_free(struct router *r)
{
    for (size_t i = 0; i < r->nlk; i++)
        free(r->lk[i].t);
    free(r->lk);
    FOR_TICKETS(r, t)
    {
        ticket_remove(r, t);
    }
    free(r->tb);
    for (size_t i = 0; i < r->acap; i++)
        for (struct rt_agent *a = r->ab[i], *n; a != NULL; a = n) {
            n = a->next;
            free(a->skills_json);
            free(a->core_skills);
            free(a->p_caps);
            free(a->p_skills);
            free(a);
        }
    free(r->ab);
    for (size_t i = 0; i < r->nout; i++) {
        free(r->out[i].key);
        free(r->out[i].value);
    }
    free(r->out);
    for (size_t i = 0; i < r->nwr; i++)
        free(r->wr_id[i]);
    free(r->wr_id);
    free(r->wr_part);
    for (size_t i = 0; i < r->ncore; i++) {
        free(r->core_lines[i]);
        free(r->core_teams[i]);
    }
    free(r->core_lines);
    free(r->core_teams);
    for (size_t i = 0; i < r->nproducts; i++)
        free(r->product_lines[i]);
    free(r->product_lines);
    free(r->teams);
    sb_route_destroy(r->core);
    sb_redis_destroy(r->redis);
    sb_pg_destroy(r->pg);
    sb_metrics_destroy(r->metrics);
}
