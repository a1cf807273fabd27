/* sb-slawatch: inputs → engine calls, events → sb.sla.v1, snapshots → PostgreSQL
 * (docs/slawatch.md). */
#include "slawatch.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/stage.h"
#include "sb/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const topic_names[SW_NTOPICS] = {SB_TOPIC_TICKETS, SB_TOPIC_ROUTING,
                                                    SB_TOPIC_ACTIVITY};

/* ------------------------------------------------------------------ ticket facts */

struct sw_facts {
    struct sw_facts *next;
    char ticket[SB_SLA_TICKET_MAX];
    char customer_key[72];
    char channel[16];
    char nature[16]; /* "complaint" for complaints, otherwise triage's nature */
    char agent_id[64];
    char team[SB_SLA_ID_MAX]; /* "" until routing makes it known */
    uint8_t band;
    bool dirty;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct sw_facts *facts_get(struct sw_part *p, const char *ticket)
{
    if (p->nbuckets == 0)
        return NULL;
    for (struct sw_facts *f = p->buckets[hash_str(ticket) % p->nbuckets]; f; f = f->next)
        if (strcmp(f->ticket, ticket) == 0)
            return f;
    return NULL;
}

static struct sw_facts *facts_add(struct sw_part *p, const char *ticket)
{
    struct sw_facts *f = facts_get(p, ticket);
    if (f != NULL)
        return f;
    if (p->nfacts + 1 > p->nbuckets) {
        size_t nb = p->nbuckets ? p->nbuckets * 2 : 256;
        struct sw_facts **b = sb_calloc(nb, sizeof(*b));
        for (size_t i = 0; i < p->nbuckets; i++) {
            for (struct sw_facts *x = p->buckets[i], *nx; x; x = nx) {
                nx = x->next;
                size_t h = hash_str(x->ticket) % nb;
                x->next = b[h];
                b[h] = x;
            }
        }
        free(p->buckets);
        p->buckets = b;
        p->nbuckets = nb;
    }
    f = sb_calloc(1, sizeof(*f));
    sb_strlcpy(f->ticket, ticket, sizeof(f->ticket));
    size_t h = hash_str(ticket) % p->nbuckets;
    f->next = p->buckets[h];
    p->buckets[h] = f;
    p->nfacts++;
    return f;
}

static void facts_remove(struct sw_part *p, const char *ticket)
{
    if (p->nbuckets == 0)
        return;
    for (struct sw_facts **pp = &p->buckets[hash_str(ticket) % p->nbuckets]; *pp;
         pp = &(*pp)->next) {
        if (strcmp((*pp)->ticket, ticket) == 0) {
            struct sw_facts *f = *pp;
            *pp = f->next;
            free(f);
            p->nfacts--;
            return;
        }
    }
}

/* Marks a ticket's rows (clocks and facts) for the next flush. */
static void mark_dirty(struct sw_part *p, const char *ticket)
{
    for (size_t i = p->ndirty; i > 0 && i + 8 > p->ndirty; i--)
        if (strcmp(p->dirty[i - 1], ticket) == 0)
            return; /* the common case: the same ticket again */
    if (p->ndirty == p->capdirty) {
        p->capdirty = p->capdirty ? p->capdirty * 2 : 64;
        p->dirty = sb_realloc(p->dirty, p->capdirty * sizeof(*p->dirty));
    }
    sb_strlcpy(p->dirty[p->ndirty++], ticket, SB_SLA_TICKET_MAX);
}

/* Keeps an input read before its ticket's triage (written at the next flush). */
static void deferred_add(struct sw_part *p, int topic, const rd_kafka_message_t *rkm,
                         const struct sb_event *ev)
{
    struct sw_deferred *d;
    if (p->ndeferred == p->capdeferred) {
        p->capdeferred = p->capdeferred ? p->capdeferred * 2 : 16;
        p->deferred = sb_realloc(p->deferred, p->capdeferred * sizeof(*p->deferred));
    }
    d = &p->deferred[p->ndeferred++];
    memset(d, 0, sizeof(*d));
    sb_strlcpy(d->ticket, ev->ticket_id, sizeof(d->ticket));
    d->topic = topic;
    d->offset = rkm->offset;
    d->occurred_ms = ev->occurred_ms;
    d->envelope = sb_malloc(rkm->len + 1);
    memcpy(d->envelope, rkm->payload, rkm->len);
    d->envelope[rkm->len] = '\0';
    d->len = rkm->len;
    d->kept_mono = sb_mono_ms();
}

/* Forgets deferred input i (applied or dropped); its row is deleted at the next flush. */
static void deferred_forget(struct sw_part *p, size_t i)
{
    struct sw_deferred *d = &p->deferred[i];
    if (d->written) {
        if (p->ngone == p->capgone) {
            p->capgone = p->capgone ? p->capgone * 2 : 16;
            p->gone = sb_realloc(p->gone, p->capgone * sizeof(*p->gone));
        }
        p->gone[p->ngone].topic = d->topic;
        p->gone[p->ngone++].offset = d->offset;
    }
    free(d->envelope);
    memmove(d, d + 1, (p->ndeferred - i - 1) * sizeof(*d));
    p->ndeferred--;
}

/* Drops the deferred inputs that waited wait_ms or longer for their ticket's triage
 * (all of them with 0): they belong to no ticket triaged in this group. */
static void deferred_expire(struct sw_part *p, int64_t wait_ms)
{
    int64_t mono = sb_mono_ms();
    size_t dropped = 0;

    for (size_t i = p->ndeferred; i > 0; i--) {
        if (wait_ms > 0 && mono - p->deferred[i - 1].kept_mono < wait_ms)
            continue;
        deferred_forget(p, i - 1);
        dropped++;
    }
    if (dropped > 0) {
        char part[16], n[24];
        sb_fmt(part, sizeof(part), "%d", (int)p->id);
        sb_fmt(n, sizeof(n), "%zu", dropped);
        sb_log_kv(SB_LOG_INFO, "inputs of tickets never triaged in this group dropped", "partition",
                  part, "inputs", n, NULL);
    }
}

/* ------------------------------------------------------------------ PostgreSQL */

static struct sb_pg *pg(struct slawatch *s)
{
    return sb_pg_lazy(&s->pg, sb_config_str(s->cfg, "pg.dsn"), &s->pg_retry_ms, NULL);
}

static PGresult *query(struct slawatch *s, const char *sql, int n, const char *const *params)
{
    char err[512];
    int e = 0;
    struct sb_pg *c = pg(s);
    PGresult *res;

    if (c == NULL)
        return NULL;
    res = sb_pg_query(c, sql, n, params, &e, err, sizeof(err));
    if (res == NULL)
        sb_log_kv(SB_LOG_WARN, "PostgreSQL statement failed", "detail", err, NULL);
    return res;
}

/* ------------------------------------------------------------------ engines */

static struct sb_cal *cal_build(const struct sw_calendar *c, char *err, size_t errsz)
{
    struct sb_tz *tz = sb_tz_load(c->tz, getenv("TZDIR"), err, errsz);
    struct sb_cal_conf conf = {c->id, c->hours, c->nhours, c->holidays, c->nholidays};
    if (tz == NULL)
        return NULL;
    return sb_cal_new(&conf, tz, err, errsz);
}

static struct sb_sla_engine *engine_new(struct slawatch *s)
{
    struct sb_sla_engine_opts o;
    char err[256];
    struct sb_sla_engine *e;

    sb_sla_engine_opts_default(&o);
    o.reescalate_max_ms = s->reescalate_max_ms;
    e = sb_sla_engine_new(&o, err, sizeof(err));
    if (e == NULL) {
        sb_log_kv(SB_LOG_ERROR, "cannot create an SLA engine", "detail", err, NULL);
        abort();
    }
    for (size_t i = 0; i < s->ncals; i++) {
        uint16_t idx;
        struct sb_cal *cal = cal_build(&s->cals[i], err, sizeof(err));
        /* Loaded calendars were checked already: this only fails on memory. */
        if (cal == NULL || sb_sla_engine_add_calendar(e, cal, &idx) != 0 || idx != i + 1) {
            sb_log_kv(SB_LOG_ERROR, "cannot add a calendar", "calendar", s->cals[i].id, NULL);
            abort();
        }
    }
    return e;
}

static int kind_index(const char *name)
{
    if (strcmp(name, "callback") == 0)
        return SB_SLA_FOLLOWUP_CALLBACK;
    if (strcmp(name, "csat_survey") == 0)
        return SB_SLA_FOLLOWUP_CSAT;
    return sb_sla_kind_parse(name);
}

static int parse_state(const char *text, struct sb_sla_clock *c)
{
    long long v[22];
    int n = 0;
    const char *p = text;

    if (strncmp(p, "v1 ", 3) != 0)
        return SB_E_INVAL;
    p += 3;
    while (*p && n < 22) {
        char *end;
        v[n++] = strtoll(p, &end, 10);
        if (end == p)
            return SB_E_INVAL;
        p = end;
        while (*p == ' ')
            p++;
    }
    if (n != 22 || *p)
        return SB_E_INVAL;
    c->target_ms = v[0];
    c->el_cal_ms = v[1];
    c->el_bus_ms = v[2];
    c->run_since = v[3];
    c->deadline = v[4];
    c->started_at = v[5];
    c->paused_ms = v[6];
    c->esc_base = v[7];
    c->next_due = v[8];
    for (int i = 0; i < SB_SLA_MAX_WARN; i++) {
        if (v[9 + i] < 0 || v[9 + i] > 10000)
            return SB_E_INVAL;
        c->warn_bp[i] = (uint16_t)v[9 + i];
    }
    if (v[13] < 0 || v[13] > 10000)
        return SB_E_INVAL;
    c->last_warn_bp = (uint16_t)v[13];
    for (int i = 14; i < 22; i++)
        if (v[i] < 0 || v[i] > 255)
            return SB_E_INVAL;
    c->kind = (uint8_t)v[14];
    c->band = (uint8_t)v[15];
    c->state = (uint8_t)v[16];
    c->level = (uint8_t)v[17];
    c->n_warn = (uint8_t)v[18];
    c->flags = (uint8_t)v[19];
    c->cycle = (uint8_t)v[20];
    c->reserved = (uint8_t)v[21];
    return 0;
}

static void format_state(const struct sb_sla_clock *c, char *out, size_t size)
{
    sb_fmt(out, size,
           "v1 %lld %lld %lld %lld %lld %lld %lld %lld %lld %u %u %u %u %u %u %u %u %u %u %u %u %u",
           (long long)c->target_ms, (long long)c->el_cal_ms, (long long)c->el_bus_ms,
           (long long)c->run_since, (long long)c->deadline, (long long)c->started_at,
           (long long)c->paused_ms, (long long)c->esc_base, (long long)c->next_due, c->warn_bp[0],
           c->warn_bp[1], c->warn_bp[2], c->warn_bp[3], c->last_warn_bp, c->kind, c->band, c->state,
           c->level, c->n_warn, c->flags, c->cycle, c->reserved);
}

static uint16_t cal_index(const struct slawatch *s, const char *id)
{
    for (size_t i = 0; i < s->ncals; i++)
        if (strcmp(s->cals[i].id, id) == 0)
            return (uint16_t)(i + 1);
    return 0;
}

/* After a take-over the partition's timers follow its input time until the backlog
 * of each topic is read, so that a reply or a pause waiting there counts before a
 * deadline is judged (issue 6: deadlines that passed while down fire once, and only
 * when due). The backlog ends at the log end offset queried now. A topic is read when
 * the partition's next offset reaches it; where the snapshot has no offset of the
 * topic (a group's first start) the reading position is unknown, and the topic counts
 * as read after a loop turn that brought none of its messages (3 s after the take-over
 * at the earliest, so that fetching has begun). */
/* Starts the catch-up of a partition: the end of each topic's log is asked (waiting at
 * most timeout_ms; after one failure, *ask is cleared and the others are not asked but
 * asked again in the turns that follow). */
static void catchup_begin(struct slawatch *s, struct sw_part *p, int timeout_ms, bool *ask)
{
    rd_kafka_t *rk = s->producer != NULL ? sb_producer_rk(s->producer) : NULL;

    p->catching_up = false;
    p->turns = 0;
    p->restored_at = sb_mono_ms();
    p->catchup_until = p->restored_at + s->catchup_max_ms;
    for (int t = 0; t < SW_NTOPICS; t++) {
        int64_t lo = 0, hi = 0;
        p->reached[t] = true;
        p->seen[t] = false;
        p->topic_ms[t] = 0;
        p->end_offset[t] = p->next_offset[t];
        /* Where the snapshot knows no position (the group never read the partition), the
         * topic also counts as read after a turn without its messages. */
        p->by_offset[t] = p->pos_known[t];
        p->end_unknown[t] = false;
        if (rk == NULL || s->catchup_max_ms <= 0)
            continue;
        if (!*ask || rd_kafka_query_watermark_offsets(rk, topic_names[t], p->id, &lo, &hi,
                                                      timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            *ask = false;
            p->reached[t] = false;
            /* Where the reading position is known, the end is asked again each turn
             * (a broker just back may not lead the partition yet); where it is not, only
             * a turn without its messages says the topic is read. */
            if (p->pos_known[t])
                p->end_unknown[t] = true;
            else
                p->end_offset[t] = INT64_MAX;
        } else if (hi > lo && hi > p->next_offset[t]) {
            p->end_offset[t] = hi;
            p->reached[t] = false;
        }
        if (!p->reached[t])
            p->catching_up = true;
    }
}

/* Restores a partition's clocks, facts and offsets from the snapshot tables. */
static int part_load(struct slawatch *s, struct sw_part *p)
{
    char part[16];
    const char *params[2] = {s->group, part};
    PGresult *res;
    size_t restored = 0;

    sb_fmt(part, sizeof(part), "%d", (int)p->id);
    res = query(s,
                "SELECT topic, next_offset FROM sla_consumer_offsets WHERE consumer_group = $1 "
                "AND part = $2::int",
                2, params);
    if (res == NULL)
        return SB_E_IO;
    for (int i = 0; i < PQntuples(res); i++)
        for (int t = 0; t < SW_NTOPICS; t++)
            if (strcmp(PQgetvalue(res, i, 0), topic_names[t]) == 0) {
                p->next_offset[t] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
                p->pos_known[t] = true;
            }
    PQclear(res);
    res =
        query(s,
              "SELECT ticket_id, customer_key, channel, coalesce(band, ''), coalesce(nature, ''), "
              "coalesce(agent_id, ''), coalesce(team_id, '') FROM sla_ticket_facts WHERE "
              "consumer_group = $1 AND part = $2::int",
              2, params);
    if (res == NULL)
        return SB_E_IO;
    for (int i = 0; i < PQntuples(res); i++) {
        struct sw_facts *f = facts_add(p, PQgetvalue(res, i, 0));
        sb_strlcpy(f->customer_key, PQgetvalue(res, i, 1), sizeof(f->customer_key));
        sb_strlcpy(f->channel, PQgetvalue(res, i, 2), sizeof(f->channel));
        int b = sb_sla_band_parse(PQgetvalue(res, i, 3));
        f->band = (uint8_t)(b > 0 ? b : 0);
        sb_strlcpy(f->nature, PQgetvalue(res, i, 4), sizeof(f->nature));
        sb_strlcpy(f->agent_id, PQgetvalue(res, i, 5), sizeof(f->agent_id));
        sb_strlcpy(f->team, PQgetvalue(res, i, 6), sizeof(f->team));
    }
    PQclear(res);
    res = query(s,
                "SELECT ticket_id, kind, coalesce(calendar_id, ''), state FROM sla_clock_snapshots "
                "WHERE consumer_group = $1 AND part = $2::int",
                2, params);
    if (res == NULL)
        return SB_E_IO;
    for (int i = 0; i < PQntuples(res); i++) {
        struct sb_sla_clock c;
        memset(&c, 0, sizeof(c));
        sb_strlcpy(c.ticket_id, PQgetvalue(res, i, 0), sizeof(c.ticket_id));
        const char *cal = PQgetvalue(res, i, 2);
        int rc = parse_state(PQgetvalue(res, i, 3), &c);
        if (rc == 0 && kind_index(PQgetvalue(res, i, 1)) != c.kind)
            rc = SB_E_INVAL;
        c.cal = cal[0] ? cal_index(s, cal) : 0;
        if (rc == 0)
            rc = sb_sla_engine_restore(p->engine, &c);
        if (rc != 0)
            sb_log_kv(SB_LOG_ERROR, "snapshot row not restored", "ticket_id", c.ticket_id, "kind",
                      PQgetvalue(res, i, 1), "calendar", cal, NULL);
        else
            restored++;
    }
    PQclear(res);
    res = query(s,
                "SELECT topic, input_offset, ticket_id, (extract(epoch FROM occurred_at) * "
                "1000)::bigint, envelope FROM sla_deferred_inputs WHERE consumer_group = $1 AND "
                "part = $2::int ORDER BY input_offset",
                2, params);
    if (res == NULL)
        return SB_E_IO;
    for (int i = 0; i < PQntuples(res); i++) {
        for (int t = 0; t < SW_NTOPICS; t++) {
            if (strcmp(PQgetvalue(res, i, 0), topic_names[t]) != 0)
                continue;
            if (p->ndeferred == p->capdeferred) {
                p->capdeferred = p->capdeferred ? p->capdeferred * 2 : 16;
                p->deferred = sb_realloc(p->deferred, p->capdeferred * sizeof(*p->deferred));
            }
            struct sw_deferred *d = &p->deferred[p->ndeferred++];
            memset(d, 0, sizeof(*d));
            d->topic = t;
            d->offset = strtoll(PQgetvalue(res, i, 1), NULL, 10);
            sb_strlcpy(d->ticket, PQgetvalue(res, i, 2), sizeof(d->ticket));
            d->occurred_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
            d->envelope = sb_strdup(PQgetvalue(res, i, 4));
            d->len = strlen(d->envelope);
            d->written = true;
            d->kept_mono = sb_mono_ms();
        }
    }
    PQclear(res);
    if (s->m_restored != NULL)
        sb_metric_add(s->m_restored, (double)restored);
    {
        bool ask = true;
        catchup_begin(s, p, 5000, &ask);
    }
    if (!p->catching_up)
        deferred_expire(p, s->defer_wait_ms);
    {
        char n[24], b[96];
        size_t len = 0;
        b[0] = '\0';
        for (int t = 0; t < SW_NTOPICS; t++) {
            char one[32];
            if (p->reached[t])
                sb_fmt(one, sizeof(one), "0");
            else if (p->by_offset[t] && !p->end_unknown[t])
                sb_fmt(one, sizeof(one), "%lld", (long long)(p->end_offset[t] - p->next_offset[t]));
            else
                sb_fmt(one, sizeof(one), "?");
            len += (size_t)snprintf(b + len, sizeof(b) - len, "%s%s", t ? " " : "", one);
            if (len >= sizeof(b))
                break;
        }
        sb_fmt(n, sizeof(n), "%zu", restored);
        sb_log_kv(SB_LOG_INFO, "partition taken over", "partition", part, "clocks", n, "backlog", b,
                  NULL);
    }
    return 0;
}

static void part_free(struct sw_part *p)
{
    if (p == NULL)
        return;
    sb_sla_engine_destroy(p->engine);
    for (size_t i = 0; i < p->nbuckets; i++)
        for (struct sw_facts *f = p->buckets[i], *n; f; f = n) {
            n = f->next;
            free(f);
        }
    free(p->buckets);
    free(p->dirty);
    for (size_t i = 0; i < p->ndeferred; i++)
        free(p->deferred[i].envelope);
    free(p->deferred);
    free(p->gone);
    free(p);
}

/* The partition's state, taken over (restored) on first use. NULL while PostgreSQL
 * is unreachable. */
static struct sw_part *part_get(struct slawatch *s, int32_t id)
{
    struct sw_part *p;

    if (id < 0 || id >= SW_MAX_PARTS)
        return NULL;
    if (s->parts[id] != NULL)
        return s->parts[id];
    p = sb_calloc(1, sizeof(*p));
    p->id = id;
    p->engine = engine_new(s);
    if (part_load(s, p) != 0) {
        part_free(p);
        return NULL;
    }
    s->parts[id] = p;
    if (s->m_partitions != NULL) {
        int n = 0;
        for (int i = 0; i < SW_MAX_PARTS; i++)
            n += s->parts[i] != NULL;
        sb_metric_set(s->m_partitions, n);
    }
    return p;
}

/* Forgets the pending events of a partition handed over. */
static void drop_events(struct slawatch *s, int32_t id)
{
    size_t k = 0;
    for (size_t i = 0; i < s->events.n; i++) {
        if (s->ev_part[i] == id)
            continue;
        s->events.v[k] = s->events.v[i];
        s->ev_part[k++] = s->ev_part[i];
    }
    s->events.n = k;
}

/* Records the partition of the events appended since from. */
static void tag_events(struct slawatch *s, size_t from, int32_t id)
{
    if (s->events.n > s->ev_part_cap) {
        s->ev_part_cap = s->events.cap > s->events.n ? s->events.cap : s->events.n;
        s->ev_part = sb_realloc(s->ev_part, s->ev_part_cap * sizeof(*s->ev_part));
    }
    for (size_t i = from; i < s->events.n; i++)
        s->ev_part[i] = id;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int sw_sync(struct slawatch *s, bool restore)
{
    static int32_t owned[SW_MAX_PARTS];
    int k = 0, rc = 0, n, held = 0;

    if (s->stage == NULL)
        return 0;
    n = sb_stage_partitions(s->stage, SB_TOPIC_TICKETS, owned, SW_MAX_PARTS);
    if (n == 0 && sb_stage_assigned(s->stage) != 0)
        return 0; /* assignment not readable just now: keep what is held */
    qsort(owned, (size_t)n, sizeof(owned[0]), cmp_i32);
    for (int32_t id = 0; id < SW_MAX_PARTS; id++) {
        bool own = k < n && owned[k] == id;
        if (own)
            k++;
        if (own && restore && s->parts[id] == NULL && part_get(s, id) == NULL)
            rc = SB_E_IO;
        if (!own && s->parts[id] != NULL) {
            /* Revoked. Whatever was not written yet is not written by this instance any
             * more (the next owner may have restored the partition already): its inputs
             * come again to the next owner, whose timers take the same steps. */
            char part[16], dirty[24];
            sb_fmt(part, sizeof(part), "%d", (int)id);
            sb_fmt(dirty, sizeof(dirty), "%zu", s->parts[id]->ndirty);
            sb_log_kv(SB_LOG_INFO, "partition handed over", "partition", part, "unwritten", dirty,
                      NULL);
            drop_events(s, id);
            part_free(s->parts[id]);
            s->parts[id] = NULL;
        }
        held += s->parts[id] != NULL;
    }
    if (s->m_partitions != NULL)
        sb_metric_set(s->m_partitions, held);
    return rc;
}

void sw_catchup_all(struct slawatch *s)
{
    bool ask = true;
    for (int i = 0; i < SW_MAX_PARTS; i++) {
        struct sw_part *p = s->parts[i];
        char part[16];
        if (p == NULL)
            continue;
        catchup_begin(s, p, 500, &ask);
        sb_fmt(part, sizeof(part), "%d", (int)p->id);
        sb_log_kv(SB_LOG_INFO,
                  p->catching_up ? "partition catching up: timers follow the inputs' time"
                                 : "partition caught up: timers follow the wall clock",
                  "partition", part, NULL);
    }
}

void sw_catchup_turn(struct slawatch *s)
{
    rd_kafka_t *rk = s->producer != NULL ? sb_producer_rk(s->producer) : NULL;
    int64_t mono = sb_mono_ms();
    bool ask = rk != NULL; /* one failed question a turn: the others would fail too */

    for (int i = 0; i < SW_MAX_PARTS; i++) {
        struct sw_part *p = s->parts[i];
        bool done = true;
        if (p != NULL && !p->catching_up && p->ndeferred > 0)
            deferred_expire(p, s->defer_wait_ms);
        if (p == NULL || !p->catching_up)
            continue;
        for (int t = 0; t < SW_NTOPICS; t++) {
            int64_t lo = 0, hi = 0;
            if (!p->reached[t] && p->end_unknown[t] && ask) {
                if (rd_kafka_query_watermark_offsets(rk, topic_names[t], p->id, &lo, &hi, 200) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR) {
                    p->end_unknown[t] = false;
                    p->end_offset[t] = hi > lo && hi > p->end_offset[t] ? hi : p->end_offset[t];
                } else {
                    ask = false;
                }
            }
            if (!p->reached[t] && !p->end_unknown[t] && p->next_offset[t] >= p->end_offset[t])
                p->reached[t] = true;
            if (!p->reached[t] && !p->by_offset[t] && !p->seen[t] && p->turns > 0 &&
                mono - p->restored_at >= 3000)
                p->reached[t] = true;
            p->seen[t] = false;
            done = done && p->reached[t];
        }
        p->turns++;
        if (done || mono >= p->catchup_until) {
            char part[16];
            p->catching_up = false;
            /* What waits still for its triage waits no longer than it would live. */
            deferred_expire(p, s->defer_wait_ms);
            sb_fmt(part, sizeof(part), "%d", (int)p->id);
            sb_log_kv(SB_LOG_INFO,
                      done ? "partition caught up: timers follow the wall clock"
                           : "partition catch-up time over: timers follow the wall clock",
                      "partition", part, NULL);
        }
    }
}

/* ------------------------------------------------------------------ policies */

static int parse_fractions(const char *text, struct sb_sla_policy_row *r)
{
    const char *p = text;
    r->n_warn = 0;
    while (*p && r->n_warn < SB_SLA_MAX_WARN) {
        char *end;
        double f = strtod(p, &end);
        if (end == p)
            return SB_E_INVAL;
        r->warn_fractions[r->n_warn++] = f;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return *p ? SB_E_INVAL : 0;
}

static struct sb_sla_policies *policies_from_pg(struct slawatch *s, char *err, size_t errsz)
{
    PGresult *res = query(
        s,
        "SELECT id, kind, coalesce(band, ''), coalesce(channel, ''), coalesce(team_id, ''), "
        "coalesce(period_kind, ''), coalesce(first_response_s, 0), coalesce(resolution_s, 0), "
        "coalesce(resolution_business_days, 0), business_time, "
        "array_to_string(warn_fractions, ','), coalesce(notify_at_start, '') FROM sla_policies "
        "ORDER BY id",
        0, NULL);
    struct sb_sla_policy_row *rows;
    struct sb_sla_policies *pol;
    int n;

    if (res == NULL) {
        sb_fmt(err, errsz, "PostgreSQL unreachable");
        return NULL;
    }
    n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        sb_log_kv(SB_LOG_WARN, "sla_policies is empty: using the built-in defaults", NULL);
        return sb_sla_policies_default();
    }
    rows = sb_calloc((size_t)n, sizeof(*rows));
    for (int i = 0; i < n; i++) {
        struct sb_sla_policy_row *r = &rows[i];
        r->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        sb_strlcpy(r->kind, PQgetvalue(res, i, 1), sizeof(r->kind));
        sb_strlcpy(r->band, PQgetvalue(res, i, 2), sizeof(r->band));
        sb_strlcpy(r->channel, PQgetvalue(res, i, 3), sizeof(r->channel));
        sb_strlcpy(r->team_id, PQgetvalue(res, i, 4), sizeof(r->team_id));
        sb_strlcpy(r->period_kind, PQgetvalue(res, i, 5), sizeof(r->period_kind));
        r->first_response_s = strtoll(PQgetvalue(res, i, 6), NULL, 10);
        r->resolution_s = strtoll(PQgetvalue(res, i, 7), NULL, 10);
        r->resolution_business_days = atoi(PQgetvalue(res, i, 8));
        r->business_time = PQgetvalue(res, i, 9)[0] == 't';
        parse_fractions(PQgetvalue(res, i, 10), r);
        sb_strlcpy(r->notify_at_start, PQgetvalue(res, i, 11), sizeof(r->notify_at_start));
    }
    PQclear(res);
    pol = sb_sla_policies_new(rows, (size_t)n, err, errsz);
    free(rows);
    return pol;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* The policies file: the format of deploy/config/policies.json. */
static struct sb_sla_policies *policies_from_file(const char *path, char *err, size_t errsz)
{
    json_error_t je;
    json_t *a = json_load_file(path, 0, &je), *o;
    struct sb_sla_policy_row *rows;
    struct sb_sla_policies *pol;
    size_t i;

    if (!json_is_array(a)) {
        sb_fmt(err, errsz, "%s: %s", path, a ? "not a JSON array" : je.text);
        json_decref(a);
        return NULL;
    }
    rows = sb_calloc(json_array_size(a) + 1, sizeof(*rows));
    json_array_foreach(a, i, o)
    {
        struct sb_sla_policy_row *r = &rows[i];
        json_t *w = json_object_get(o, "warn_fractions"), *x;
        size_t j;
        r->id = (int64_t)i + 1;
        sb_strlcpy(r->kind, jstr(o, "kind"), sizeof(r->kind));
        sb_strlcpy(r->band, jstr(o, "band"), sizeof(r->band));
        sb_strlcpy(r->channel, jstr(o, "channel"), sizeof(r->channel));
        sb_strlcpy(r->team_id, jstr(o, "team_id"), sizeof(r->team_id));
        sb_strlcpy(r->period_kind, jstr(o, "period_kind"), sizeof(r->period_kind));
        r->first_response_s = json_integer_value(json_object_get(o, "first_response_s"));
        r->resolution_s = json_integer_value(json_object_get(o, "resolution_s"));
        r->resolution_business_days =
            (int)json_integer_value(json_object_get(o, "resolution_business_days"));
        r->business_time = json_is_true(json_object_get(o, "business_time"));
        sb_strlcpy(r->notify_at_start, jstr(o, "notify_at_start"), sizeof(r->notify_at_start));
        if (w == NULL) {
            r->n_warn = 2;
            r->warn_fractions[0] = 0.75;
            r->warn_fractions[1] = 0.9;
        }
        json_array_foreach(w, j, x) if (r->n_warn < SB_SLA_MAX_WARN)
            r->warn_fractions[r->n_warn++] = json_number_value(x);
    }
    pol = sb_sla_policies_new(rows, json_array_size(a), err, errsz);
    free(rows);
    json_decref(a);
    return pol;
}

static void cals_free(struct sw_calendar *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].hours);
        free(c[i].holidays);
    }
    free(c);
}

/* A team with a time zone of its own (teams.timezone, not the calendar's) counts on a
 * copy of its calendar in that zone, id "<calendar>@<zone>" (the roster's key of the
 * team's calendar). A copy whose id is too long or whose zone is unknown is left out
 * (logged): the team then counts on the calendar of slawatch.calendar. */
static void cals_team_zones(struct slawatch *s, struct sw_calendar **cals, size_t *n)
{
    PGresult *res = query(s,
                          "SELECT DISTINCT t.calendar_id, t.timezone FROM teams t JOIN calendars c "
                          "ON c.id = t.calendar_id WHERE t.timezone IS NOT NULL AND t.timezone "
                          "<> c.timezone ORDER BY 1, 2",
                          0, NULL);
    char err[256];
    if (res == NULL)
        return;
    *cals = sb_realloc(*cals, (*n + (size_t)PQntuples(res) + 1) * sizeof(**cals));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *base = PQgetvalue(res, i, 0), *zone = PQgetvalue(res, i, 1);
        struct sw_calendar *b = NULL, *c = &(*cals)[*n];
        struct sb_tz *tz;
        for (size_t j = 0; j < *n && b == NULL; j++)
            if (strcmp((*cals)[j].id, base) == 0)
                b = &(*cals)[j];
        memset(c, 0, sizeof(*c));
        if (b == NULL || sb_fmt(c->id, sizeof(c->id), "%s@%s", base, zone) != 0 ||
            strlen(zone) >= sizeof(c->tz)) {
            sb_log_kv(SB_LOG_WARN, "team time zone left out: calendar id too long", "calendar",
                      base, "timezone", zone, NULL);
            continue;
        }
        tz = sb_tz_load(zone, getenv("TZDIR"), err, sizeof(err));
        if (tz == NULL) {
            sb_log_kv(SB_LOG_WARN, "team time zone left out", "calendar", base, "timezone", zone,
                      "detail", err, NULL);
            continue;
        }
        sb_tz_destroy(tz);
        sb_strlcpy(c->tz, zone, sizeof(c->tz));
        c->hours = sb_calloc(b->nhours + 1, sizeof(*c->hours));
        c->holidays = sb_calloc(b->nholidays + 1, sizeof(*c->holidays));
        if (b->nhours > 0)
            memcpy(c->hours, b->hours, b->nhours * sizeof(*c->hours));
        if (b->nholidays > 0)
            memcpy(c->holidays, b->holidays, b->nholidays * sizeof(*c->holidays));
        c->nhours = b->nhours;
        c->nholidays = b->nholidays;
        (*n)++;
    }
    PQclear(res);
}

static int calendars_from_pg(struct slawatch *s, struct sw_calendar **out, size_t *nout)
{
    PGresult *cr = query(s, "SELECT id, timezone FROM calendars ORDER BY id", 0, NULL), *hr, *dr;
    struct sw_calendar *cals = NULL;
    size_t n = 0;

    if (cr == NULL)
        return SB_E_IO;
    hr = query(s,
               "SELECT calendar_id, weekday, opens::text, closes::text FROM calendar_hours "
               "ORDER BY calendar_id, weekday, opens",
               0, NULL);
    dr =
        query(s, "SELECT calendar_id, day::text, working_day FROM holidays ORDER BY 1, 2", 0, NULL);
    if (hr == NULL || dr == NULL) {
        PQclear(cr);
        PQclear(hr);
        PQclear(dr);
        return SB_E_IO;
    }
    n = (size_t)PQntuples(cr);
    cals = sb_calloc(n + 1, sizeof(*cals));
    for (size_t i = 0; i < n; i++) {
        struct sw_calendar *c = &cals[i];
        sb_strlcpy(c->id, PQgetvalue(cr, (int)i, 0), sizeof(c->id));
        sb_strlcpy(c->tz, PQgetvalue(cr, (int)i, 1), sizeof(c->tz));
        c->hours = sb_calloc((size_t)PQntuples(hr) + 1, sizeof(*c->hours));
        c->holidays = sb_calloc((size_t)PQntuples(dr) + 1, sizeof(*c->holidays));
        for (int j = 0; j < PQntuples(hr); j++) {
            struct sb_cal_hours *h = &c->hours[c->nhours];
            if (strcmp(PQgetvalue(hr, j, 0), c->id) != 0)
                continue;
            h->weekday = atoi(PQgetvalue(hr, j, 1));
            if (sb_cal_parse_time(PQgetvalue(hr, j, 2), &h->opens_s) == 0 &&
                sb_cal_parse_time(PQgetvalue(hr, j, 3), &h->closes_s) == 0)
                c->nhours++;
        }
        for (int j = 0; j < PQntuples(dr); j++) {
            struct sb_cal_holiday *h = &c->holidays[c->nholidays];
            if (strcmp(PQgetvalue(dr, j, 0), c->id) != 0)
                continue;
            if (sb_cal_parse_date(PQgetvalue(dr, j, 1), &h->year, &h->month, &h->day) == 0) {
                h->working_day = PQgetvalue(dr, j, 2)[0] == 't';
                c->nholidays++;
            }
        }
    }
    PQclear(cr);
    PQclear(hr);
    PQclear(dr);
    cals_team_zones(s, &cals, &n);
    *out = cals;
    *nout = n;
    return 0;
}

static int periods_from_pg(struct slawatch *s, struct sw_period **out, size_t *nout)
{
    PGresult *res = query(s,
                          "SELECT id, kind, (extract(epoch FROM starts_at) * 1000)::bigint, "
                          "(extract(epoch FROM ends_at) * 1000)::bigint, coalesce(notice, '') "
                          "FROM declared_periods WHERE ends_at > now() - interval '1 day'",
                          0, NULL);
    struct sw_period *v;
    int n;

    if (res == NULL)
        return SB_E_IO;
    n = PQntuples(res);
    v = sb_calloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; i < n; i++) {
        v[i].row.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        int k = sb_sla_period_parse(PQgetvalue(res, i, 1));
        v[i].row.kind = k > 0 ? (enum sb_sla_period)k : SB_PERIOD_NONE;
        v[i].row.starts_ms = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        v[i].row.ends_ms = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        v[i].notice = sb_strdup(PQgetvalue(res, i, 4));
        v[i].row.notice = v[i].notice;
    }
    PQclear(res);
    *out = v;
    *nout = (size_t)n;
    return 0;
}

static void periods_free(struct sw_period *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].notice);
    free(v);
}

/* The roster: teams with lead, supervisor and the key of their calendar (the calendar's
 * id, or "<calendar>@<zone>" for a team in a zone of its own, see cals_team_zones), and
 * every agent's team. */
static struct sb_sla_roster *roster_from_pg(struct slawatch *s, char *err, size_t errsz)
{
    PGresult *tr = query(s,
                         "SELECT t.id, coalesce(t.lead_agent_id, ''), "
                         "coalesce(t.supervisor_agent_id, ''), CASE WHEN t.calendar_id IS NULL "
                         "THEN '' WHEN t.timezone IS NULL OR t.timezone = c.timezone THEN "
                         "t.calendar_id ELSE t.calendar_id || '@' || t.timezone END FROM teams t "
                         "LEFT JOIN calendars c ON c.id = t.calendar_id ORDER BY t.id",
                         0, NULL),
             *ar = NULL;
    struct sb_sla_team_row *teams = NULL;
    struct sb_sla_agent_row *agents = NULL;
    struct sb_sla_roster *r = NULL;
    size_t nt = 0, na = 0;

    if (tr != NULL)
        ar = query(s, "SELECT id, coalesce(team_id, '') FROM agents ORDER BY id", 0, NULL);
    if (tr == NULL || ar == NULL) {
        sb_fmt(err, errsz, "PostgreSQL unreachable");
        goto out;
    }
    teams = sb_calloc((size_t)PQntuples(tr) + 1, sizeof(*teams));
    agents = sb_calloc((size_t)PQntuples(ar) + 1, sizeof(*agents));
    for (int i = 0; i < PQntuples(tr); i++) {
        struct sb_sla_team_row *t = &teams[nt];
        /* Ids longer than the events allow are not teams an input can name. */
        if (strlen(PQgetvalue(tr, i, 0)) >= sizeof(t->id))
            continue;
        sb_strlcpy(t->id, PQgetvalue(tr, i, 0), sizeof(t->id));
        sb_strlcpy(t->lead, PQgetvalue(tr, i, 1), sizeof(t->lead));
        sb_strlcpy(t->supervisor, PQgetvalue(tr, i, 2), sizeof(t->supervisor));
        sb_strlcpy(t->calendar, PQgetvalue(tr, i, 3), sizeof(t->calendar));
        nt++;
    }
    for (int i = 0; i < PQntuples(ar); i++) {
        struct sb_sla_agent_row *a = &agents[na];
        if (strlen(PQgetvalue(ar, i, 0)) >= sizeof(a->id))
            continue;
        sb_strlcpy(a->id, PQgetvalue(ar, i, 0), sizeof(a->id));
        sb_strlcpy(a->team, PQgetvalue(ar, i, 1), sizeof(a->team));
        na++;
    }
    r = sb_sla_roster_new(teams, nt, agents, na, err, errsz);
out:
    PQclear(tr);
    PQclear(ar);
    free(teams);
    free(agents);
    return r;
}

int sw_reload_roster(struct slawatch *s)
{
    char err[256], n1[24], n2[24];
    struct sb_sla_roster *r = roster_from_pg(s, err, sizeof(err));

    if (r == NULL) {
        sb_log_kv(SB_LOG_ERROR, "roster not loaded (previous one kept)", "detail", err, NULL);
        return SB_E_IO;
    }
    sb_sla_roster_destroy(s->roster);
    s->roster = r;
    sb_fmt(n1, sizeof(n1), "%zu", sb_sla_roster_teams(r));
    sb_fmt(n2, sizeof(n2), "%zu", sb_sla_roster_agents(r));
    sb_log_kv(SB_LOG_DEBUG, "roster loaded", "teams", n1, "agents", n2, NULL);
    return 0;
}

int sw_reload(struct slawatch *s)
{
    char err[512];
    const char *file = sb_config_str(s->cfg, "slawatch.policies_file");
    struct sb_sla_policies *pol;
    struct sw_calendar *cals = NULL;
    size_t ncals = 0, nper = 0;
    struct sw_period *per = NULL;
    char n1[16], n2[16], n3[16];

    pol = file[0] ? policies_from_file(file, err, sizeof(err))
                  : policies_from_pg(s, err, sizeof(err));
    if (pol == NULL) {
        sb_log_kv(SB_LOG_ERROR, "SLA policies not loaded (previous ones kept)", "detail", err,
                  NULL);
        return SB_E_INVAL;
    }
    if (calendars_from_pg(s, &cals, &ncals) != 0 || periods_from_pg(s, &per, &nper) != 0 ||
        sw_reload_roster(s) != 0) {
        sb_sla_policies_destroy(pol);
        cals_free(cals, ncals);
        periods_free(per, nper);
        return SB_E_IO;
    }
    /* Every calendar must build; one that does not keeps the old definition. */
    for (size_t i = 0; i < ncals; i++) {
        struct sb_cal *c = cal_build(&cals[i], err, sizeof(err));
        if (c == NULL) {
            sb_log_kv(SB_LOG_ERROR, "calendar refused (reload abandoned)", "calendar", cals[i].id,
                      "detail", err, NULL);
            sb_sla_policies_destroy(pol);
            cals_free(cals, ncals);
            periods_free(per, nper);
            return SB_E_INVAL;
        }
        sb_cal_destroy(c);
    }
    /* Calendars keep their index: known ones are replaced, new ones appended. Calendars
     * deleted from the table stay as they were (clocks may still count on them). */
    size_t total = s->ncals;
    struct sw_calendar *merged = sb_calloc(s->ncals + ncals + 1, sizeof(*merged));
    if (s->ncals > 0)
        memcpy(merged, s->cals, s->ncals * sizeof(*merged));
    for (size_t i = 0; i < ncals; i++) {
        uint16_t idx = cal_index(s, cals[i].id);
        if (idx != 0) {
            free(merged[idx - 1].hours);
            free(merged[idx - 1].holidays);
            merged[idx - 1] = cals[i];
        } else {
            merged[total++] = cals[i];
        }
        for (int p = 0; p < SW_MAX_PARTS; p++) {
            struct sb_cal *c;
            uint16_t got;
            if (s->parts[p] == NULL)
                continue;
            c = cal_build(&cals[i], err, sizeof(err));
            if (idx != 0)
                sb_sla_engine_replace_calendar(s->parts[p]->engine, idx, c);
            else
                sb_sla_engine_add_calendar(s->parts[p]->engine, c, &got);
        }
    }
    free(cals);
    free(s->cals);
    s->cals = merged;
    s->ncals = total;
    sb_sla_policies_destroy(s->policies);
    s->policies = pol;
    periods_free(s->periods, s->nperiods);
    s->periods = per;
    s->nperiods = nper;
    s->default_cal = cal_index(s, sb_config_str(s->cfg, "slawatch.calendar"));
    sb_fmt(n1, sizeof(n1), "%zu", sb_sla_policies_count(pol));
    sb_fmt(n2, sizeof(n2), "%zu", s->ncals);
    sb_fmt(n3, sizeof(n3), "%zu", nper);
    sb_log_kv(SB_LOG_INFO, "SLA policies loaded", "policies", n1, "calendars", n2, "periods", n3,
              "source", file[0] ? file : "sla_policies", NULL);
    return 0;
}

/* ------------------------------------------------------------------ inputs */

static int topic_index(const rd_kafka_message_t *rkm)
{
    const char *t = rd_kafka_topic_name(rkm->rkt);
    for (int i = 0; i < SW_NTOPICS; i++)
        if (strcmp(t, topic_names[i]) == 0)
            return i;
    return -1;
}

static enum sb_sla_channel channel_of(const struct sw_facts *f)
{
    int c = f ? sb_sla_channel_parse(f->channel) : -1;
    return c > 0 ? (enum sb_sla_channel)c : SB_CHANNEL_ANY;
}

/* The target of a clock for the ticket's situation now (band, channel, team, declared
 * period); 0 or SB_E_NOENT. */
static int choose(struct slawatch *s, int kind, enum sb_sla_band band, const struct sw_facts *f,
                  int64_t at, struct sb_sla_target *t)
{
    struct sb_sla_situation sit = {band, channel_of(f), f != NULL ? f->team : NULL, SB_PERIOD_NONE};
    struct sb_sla_period_row rows[64];
    size_t n = 0;
    for (; n < s->nperiods && n < 64; n++)
        rows[n] = s->periods[n].row;
    int ip = sb_sla_period_active(rows, n, at);
    if (ip >= 0)
        sit.period = rows[ip].kind;
    return sb_sla_policies_choose(s->policies, (enum sb_sla_kind)kind, &sit, t);
}

/* The calendar a business-time target of the ticket counts on: its team's (teams.
 * calendar_id, in the team's own zone when it has one) once the team is known and has
 * one, else slawatch.calendar. None for a target in calendar time. */
static uint16_t clock_cal(const struct slawatch *s, const struct sw_facts *f,
                          const struct sb_sla_target *t)
{
    const struct sb_sla_team_row *team;
    uint16_t idx;

    if (!t->business_time && t->working_days <= 0)
        return 0;
    team = f != NULL ? sb_sla_roster_team(s->roster, f->team) : NULL;
    if (team != NULL && team->calendar[0] != '\0') {
        idx = cal_index(s, team->calendar);
        if (idx != 0)
            return idx;
    }
    return s->default_cal;
}

static void start_clock(struct slawatch *s, struct sw_part *p, const char *ticket, int kind,
                        enum sb_sla_band band, const struct sw_facts *f, int64_t at, bool restart)
{
    struct sb_sla_start st;
    int rc;

    memset(&st, 0, sizeof(st));
    if (choose(s, kind, band, f, at, &st.target) != 0)
        return; /* no policy for this clock here (first touch on email, …) */
    st.ticket_id = ticket;
    st.kind = (enum sb_sla_kind)kind;
    st.band = band;
    st.cal = clock_cal(s, f, &st.target);
    st.at_ms = at;
    rc = restart ? sb_sla_engine_restart(p->engine, &st, &s->events)
                 : sb_sla_engine_start(p->engine, &st, &s->events);
    if (rc != 0 && rc != SB_E_CONFLICT)
        sb_log_kv(SB_LOG_WARN, "clock not started", "ticket_id", ticket, "kind",
                  sb_sla_kind_name(kind), NULL);
}

static void on_triaged(struct slawatch *s, struct sw_part *p, const struct sb_event *ev)
{
    json_t *pl = ev->payload, *clocks = json_object_get(pl, "sla_clocks"), *x;
    struct sw_facts *f = facts_add(p, ev->ticket_id);
    const char *band_s = json_string_value(json_object_get(pl, "sla_policy"));
    int band = sb_sla_band_parse(band_s ? band_s : jstr(pl, "band"));
    bool want[SB_SLA_CLOCK_KINDS] = {false};
    size_t i;

    sb_strlcpy(f->customer_key, jstr(pl, "customer_key"), sizeof(f->customer_key));
    sb_strlcpy(f->channel, jstr(pl, "channel"), sizeof(f->channel));
    sb_strlcpy(f->nature, jstr(pl, "nature"), sizeof(f->nature));
    f->band = (uint8_t)(band > 0 ? band : 0);
    want[SB_SLA_FIRST_RESPONSE] = want[SB_SLA_RESOLUTION] = want[SB_SLA_FIRST_TOUCH] = true;
    json_array_foreach(clocks, i, x)
    {
        int k = sb_sla_kind_parse(json_string_value(x) ? json_string_value(x) : "");
        if (k >= 0 && k < SB_SLA_CLOCK_KINDS)
            want[k] = true;
    }
    if (want[SB_SLA_COMPLEX_COMPLAINT] || want[SB_SLA_PUBLIC_NEGATIVE])
        sb_strlcpy(f->nature, "complaint", sizeof(f->nature));
    for (int k = 0; k < SB_SLA_CLOCK_KINDS; k++)
        if (want[k])
            start_clock(s, p, ev->ticket_id, k, (enum sb_sla_band)f->band, f, ev->occurred_ms,
                        false);
}

/* Re-targets a running or paused clock to the ticket's situation now (band, team,
 * declared period) and the calendar that goes with it, keeping the time it counted. A
 * clock for which no row applies any more keeps its target. */
static void retarget_clock(struct slawatch *s, struct sw_part *p, const char *ticket, int kind,
                           enum sb_sla_band band, const struct sw_facts *f, int64_t at)
{
    const struct sb_sla_clock *c = sb_sla_engine_get(p->engine, ticket, kind);
    struct sb_sla_target t;

    if (c == NULL || (c->state != SB_SLA_RUNNING && c->state != SB_SLA_PAUSED) ||
        choose(s, kind, band, f, at, &t) != 0)
        return;
    sb_sla_engine_retarget_cal(p->engine, ticket, kind, band, &t, clock_cal(s, f, &t), at,
                               &s->events);
}

/* Re-targets the band clocks to the new band. */
static void on_band(struct slawatch *s, struct sw_part *p, const char *ticket, int band, int64_t at)
{
    struct sw_facts *f = facts_get(p, ticket);
    static const int kinds[] = {SB_SLA_FIRST_RESPONSE, SB_SLA_RESOLUTION};

    if (band <= 0 || f == NULL)
        return;
    f->band = (uint8_t)band;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        retarget_clock(s, p, ticket, kinds[i], (enum sb_sla_band)band, f, at);
}

/* The team of the ticket became known (or changed): every running or paused clock is
 * re-targeted with the team's policy rows and calendar, keeping the time it counted. */
static void on_team(struct slawatch *s, struct sw_part *p, const char *ticket, const char *team,
                    int64_t at)
{
    struct sw_facts *f = facts_get(p, ticket);

    if (f == NULL || team == NULL || strcmp(f->team, team) == 0)
        return;
    sb_strlcpy(f->team, team, sizeof(f->team));
    for (int k = 0; k < SB_SLA_CLOCK_KINDS; k++) {
        const struct sb_sla_clock *c = sb_sla_engine_get(p->engine, ticket, k);
        if (c != NULL)
            retarget_clock(s, p, ticket, k, (enum sb_sla_band)c->band, f, at);
    }
}

/* The team a routing input names, from the roster. An agent the roster does not know
 * (added since the last load) reloads it, at most every slawatch.roster_miss_s. */
static const char *input_team(struct slawatch *s, const char *team, const char *agent,
                              const char *queue)
{
    if (agent != NULL && agent[0] != '\0' && !sb_sla_roster_has_agent(s->roster, agent) &&
        sb_mono_ms() >= s->roster_miss_next) {
        s->roster_miss_next = sb_mono_ms() + s->roster_miss_ms;
        sw_reload_roster(s);
    }
    return sb_sla_roster_resolve(s->roster, team, agent, queue);
}

static void schedule_followup(struct slawatch *s, struct sw_part *p, const char *ticket, int kind,
                              int64_t due)
{
    const struct sb_sla_clock *c = sb_sla_engine_get(p->engine, ticket, kind);
    if (c != NULL && c->state == SB_SLA_DONE && c->deadline != due)
        sb_sla_engine_remove(p->engine, ticket, kind); /* resolved again after a reopen */
    sb_sla_engine_followup(p->engine, ticket, kind, due);
    (void)s;
}

static void on_status(struct slawatch *s, struct sw_part *p, const struct sb_event *ev)
{
    const char *st = jstr(ev->payload, "status");
    const char *t = ev->ticket_id;
    int64_t at = ev->occurred_ms;
    struct sw_facts *f = facts_get(p, t);

    if (strcmp(st, "pending_customer") == 0) {
        sb_sla_engine_pause(p->engine, t, SB_SLA_ALL, at, &s->events);
    } else if (strcmp(st, "in_progress") == 0) {
        sb_sla_engine_resume(p->engine, t, SB_SLA_ALL, at, &s->events);
        sb_sla_engine_touch(p->engine, t, SB_SLA_ALL, at, &s->events);
    } else if (strcmp(st, "resolved") == 0) {
        sb_sla_engine_stop(p->engine, t, SB_SLA_ALL, at, true, &s->events);
        if (f != NULL) {
            schedule_followup(s, p, t, SB_SLA_FOLLOWUP_CSAT, at + s->csat_delay_ms);
            if (strcmp(f->nature, "complaint") == 0)
                schedule_followup(s, p, t, SB_SLA_FOLLOWUP_CALLBACK, at + s->callback_delay_ms);
        }
    } else if (strcmp(st, "reopened") == 0) {
        if (f != NULL) {
            start_clock(s, p, t, SB_SLA_RESOLUTION, (enum sb_sla_band)f->band, f, at, true);
            start_clock(s, p, t, SB_SLA_FIRST_RESPONSE, (enum sb_sla_band)f->band, f, at, true);
        }
    } else if (strcmp(st, "archived") == 0) {
        sb_sla_engine_remove(p->engine, t, SB_SLA_ALL);
        if (f != NULL)
            f->customer_key[0] = '\0'; /* marks the facts row for deletion */
    }
}

static bool is_agent(json_t *actor)
{
    const char *role = jstr(actor, "role");
    return strcmp(role, "agent") == 0 || strcmp(role, "lead") == 0 ||
           strcmp(role, "supervisor") == 0;
}

/* Applies one input to its partition. */
static void apply(struct slawatch *s, struct sw_part *p, const struct sb_event *ev)
{
    const char *t = ev->ticket_id, *type = ev->type;
    int64_t at = ev->occurred_ms;
    json_t *pl = ev->payload;

    if (strcmp(type, "ticket.triaged") == 0) {
        on_triaged(s, p, ev);
    } else if (strcmp(type, "ticket.rescored") == 0) {
        on_band(s, p, t, sb_sla_band_parse(jstr(pl, "band")), at);
        if (strcmp(jstr(pl, "reason"), "follow_up_contact") == 0)
            sb_sla_engine_resume(p->engine, t, SB_SLA_ALL, at, &s->events);
    } else if (strcmp(type, "ticket.merged") == 0) {
        sb_sla_engine_stop(p->engine, t, SB_SLA_ALL, at, false, &s->events);
    } else if (strcmp(type, "ticket.assigned") == 0) {
        struct sw_facts *f = facts_get(p, t);
        if (f != NULL)
            sb_strlcpy(f->agent_id, jstr(pl, "agent_id"), sizeof(f->agent_id));
        sb_sla_engine_stop(p->engine, t, SB_SLA_FIRST_TOUCH, at, true, &s->events);
        on_team(s, p, t, input_team(s, NULL, jstr(pl, "agent_id"), jstr(pl, "queue")), at);
    } else if (strcmp(type, "ticket.queued") == 0) {
        on_team(s, p, t, input_team(s, NULL, NULL, jstr(pl, "queue")), at);
    } else if (strcmp(type, "ticket.overflowed") == 0) {
        on_team(s, p, t, input_team(s, NULL, NULL, jstr(pl, "to_queue")), at);
    } else if (strcmp(type, "agent.replied") == 0) {
        static const int met[] = {SB_SLA_FIRST_RESPONSE, SB_SLA_FIRST_TOUCH,
                                  SB_SLA_AFTER_SALE_FIRST_RESPONSE, SB_SLA_ORDER_ANOMALY_CONTACT,
                                  SB_SLA_PUBLIC_NEGATIVE};
        json_t *pub = json_object_get(pl, "public");
        if (is_agent(json_object_get(pl, "actor")) && !json_is_false(pub))
            for (size_t i = 0; i < sizeof(met) / sizeof(met[0]); i++)
                sb_sla_engine_stop(p->engine, t, met[i], at, true, &s->events);
        sb_sla_engine_touch(p->engine, t, SB_SLA_ALL, at, &s->events);
    } else if (strcmp(type, "ticket.claimed") == 0) {
        sb_sla_engine_stop(p->engine, t, SB_SLA_CLAIM, at, true, &s->events);
        sb_sla_engine_touch(p->engine, t, SB_SLA_ALL, at, &s->events);
    } else if (strcmp(type, "ticket.status_changed") == 0) {
        on_status(s, p, ev);
    } else if (strcmp(type, "ticket.reviewed") == 0) {
        sb_sla_engine_stop(p->engine, t, SB_SLA_RETURN_REVIEW, at, true, &s->events);
        sb_sla_engine_touch(p->engine, t, SB_SLA_ALL, at, &s->events);
    } else if (strcmp(type, "ticket.transferred") == 0) {
        sb_sla_engine_touch(p->engine, t, SB_SLA_ALL, at, &s->events);
        on_team(s, p, t, input_team(s, jstr(pl, "to_team"), jstr(pl, "to_agent"), NULL), at);
    } else if (strcmp(type, "ticket.note_added") == 0 || strcmp(type, "ticket.declined") == 0) {
        sb_sla_engine_touch(p->engine, t, SB_SLA_ALL, at, &s->events);
    }
}

static bool relevant(const char *type)
{
    static const char *const types[] = {
        "ticket.triaged",     "ticket.rescored",       "ticket.merged",   "ticket.assigned",
        "agent.replied",      "ticket.claimed",        "ticket.reviewed", "ticket.note_added",
        "ticket.transferred", "ticket.status_changed", "ticket.declined", "ticket.queued",
        "ticket.overflowed"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}

/* Applies the inputs of ticket read before its triage, in the order they occurred. */
static void apply_deferred(struct slawatch *s, struct sw_part *p, const char *ticket)
{
    for (;;) {
        size_t best = p->ndeferred;
        struct sb_event ev;
        char why[256];
        for (size_t i = 0; i < p->ndeferred; i++)
            if (strcmp(p->deferred[i].ticket, ticket) == 0 &&
                (best == p->ndeferred ||
                 p->deferred[i].occurred_ms < p->deferred[best].occurred_ms))
                best = i;
        if (best == p->ndeferred)
            return;
        memset(&ev, 0, sizeof(ev));
        if (sb_event_decode(p->deferred[best].envelope, p->deferred[best].len, &ev, why,
                            sizeof(why)) == 0)
            apply(s, p, &ev);
        sb_event_clear(&ev);
        deferred_forget(p, best);
    }
}

enum sb_stage_result sw_handle(void *ctx, const struct sb_event *ev, const rd_kafka_message_t *rkm,
                               char *reason, size_t reason_size)
{
    struct slawatch *s = ctx;
    int ti = topic_index(rkm);
    struct sw_part *p;
    size_t from;

    if (ti < 0)
        return SB_STAGE_DONE;
    p = part_get(s, rkm->partition);
    if (p == NULL)
        return SB_STAGE_RETRY; /* PostgreSQL unreachable: the partition cannot be restored */
    p->seen[ti] = true;
    if (ev->occurred_ms > p->topic_ms[ti])
        p->topic_ms[ti] = ev->occurred_ms;
    /* Every message, applied or not, is acknowledged only after the flush that writes
     * the partition's offsets: the offsets in PostgreSQL are never behind the group's
     * committed ones, so a restored partition knows where its backlog starts. */
    if (rkm->offset < p->next_offset[ti]) {
        if (relevant(ev->type) && s->m_skipped != NULL)
            sb_metric_inc(s->m_skipped);
        return SB_STAGE_PENDING; /* in the snapshot already (a redelivery after a restart) */
    }
    p->next_offset[ti] = rkm->offset + 1;
    p->offsets_dirty = true;
    if (!relevant(ev->type))
        return SB_STAGE_PENDING;
    if (!sb_sla_ticket_id_valid(ev->ticket_id)) {
        sb_fmt(reason, reason_size, "ticket_id: missing or not a ticket id");
        return SB_STAGE_INVALID;
    }
    if (strcmp(ev->type, "ticket.triaged") == 0 &&
        (!json_is_string(json_object_get(ev->payload, "customer_key")) ||
         sb_sla_band_parse(jstr(ev->payload, "band")) <= 0)) {
        sb_fmt(reason, reason_size, "payload: customer_key or band missing");
        return SB_STAGE_INVALID;
    }
    /* The three topics are read side by side: an input of a ticket whose triage is not
     * read yet (an assignment read ahead of it) waits for it — to the end of a catch-up,
     * and live at most slawatch.defer_wait_s. */
    if ((p->catching_up || s->defer_wait_ms > 0) && strcmp(ev->type, "ticket.triaged") != 0 &&
        facts_get(p, ev->ticket_id) == NULL) {
        deferred_add(p, ti, rkm, ev);
        return SB_STAGE_PENDING;
    }
    from = s->events.n;
    apply(s, p, ev);
    if (p->ndeferred > 0 && strcmp(ev->type, "ticket.triaged") == 0)
        apply_deferred(s, p, ev->ticket_id);
    tag_events(s, from, p->id);
    mark_dirty(p, ev->ticket_id);
    return SB_STAGE_PENDING;
}

/* ------------------------------------------------------------------ timers */

size_t sw_advance(struct slawatch *s, int64_t now_ms)
{
    size_t steps = 0;
    for (int i = 0; i < SW_MAX_PARTS; i++) {
        struct sw_part *p = s->parts[i];
        size_t from = s->events.n;
        int64_t to = now_ms;
        if (p == NULL)
            continue;
        /* Catching up: no further than what every topic not yet read says. */
        for (int t = 0; p->catching_up && t < SW_NTOPICS; t++)
            if (!p->reached[t] && p->topic_ms[t] < to)
                to = p->topic_ms[t];
        if (sb_sla_engine_next_due(p->engine) > to)
            continue;
        steps += sb_sla_engine_advance(p->engine, to, 20000, &s->events);
        tag_events(s, from, p->id);
        for (size_t k = from; k < s->events.n; k++)
            mark_dirty(p, s->events.v[k].ticket_id);
    }
    return steps;
}

int64_t sw_next_due(const struct slawatch *s)
{
    int64_t due = SB_SLA_NEVER;
    for (int i = 0; i < SW_MAX_PARTS; i++) {
        if (s->parts[i] != NULL && !s->parts[i]->catching_up) {
            int64_t d = sb_sla_engine_next_due(s->parts[i]->engine);
            if (d < due)
                due = d;
        }
    }
    return due;
}

struct gauge_acc {
    struct slawatch *s;
    int64_t now;
    size_t running[SB_SLA_CLOCK_KINDS], at_risk[SB_SLA_CLOCK_KINDS], due_soon[5], active, paused;
};

static void gauge_one(const struct sb_sla_clock *c, void *arg)
{
    struct gauge_acc *a = arg;
    if (c->kind >= SB_SLA_CLOCK_KINDS)
        return;
    if (c->state == SB_SLA_PAUSED) {
        a->paused++;
        a->active++;
    }
    if (c->state != SB_SLA_RUNNING)
        return;
    a->active++;
    a->running[c->kind]++;
    if (!(c->flags & SB_SLA_F_BREACHED) && c->last_warn_bp > 0)
        a->at_risk[c->kind]++;
    if (!(c->flags & SB_SLA_F_BREACHED) && c->deadline - a->now <= a->s->due_soon_ms && c->band < 5)
        a->due_soon[c->band]++;
}

void sw_gauges(struct slawatch *s, int64_t now_ms)
{
    struct gauge_acc a;
    size_t bytes = 0;
    memset(&a, 0, sizeof(a));
    a.s = s;
    a.now = now_ms;
    for (int i = 0; i < SW_MAX_PARTS; i++) {
        if (s->parts[i] != NULL) {
            struct sb_sla_engine_stats st;
            sb_sla_engine_foreach(s->parts[i]->engine, gauge_one, &a);
            sb_sla_engine_stats(s->parts[i]->engine, &st);
            bytes += st.bytes;
        }
    }
    for (int k = 0; k < SB_SLA_CLOCK_KINDS; k++) {
        sb_metric_set(s->m_running[k], (double)a.running[k]);
        sb_metric_set(s->m_at_risk[k], (double)a.at_risk[k]);
    }
    for (int b = 1; b < 5; b++)
        sb_metric_set(s->m_due_soon[b], (double)a.due_soon[b]);
    sb_metric_set(s->m_active, (double)a.active);
    sb_metric_set(s->m_paused, (double)a.paused);
    sb_metric_set(s->m_bytes, (double)bytes);
}

/* ------------------------------------------------------------------ output */

static void set_time(json_t *o, const char *key, int64_t ms)
{
    char t[SB_TIME_STRLEN + 1];
    sb_time_format_ms(ms, t);
    json_object_set_new(o, key, json_string(t));
}

static struct sw_facts *facts_of(struct slawatch *s, const char *ticket)
{
    for (int i = 0; i < SW_MAX_PARTS; i++) {
        if (s->parts[i] != NULL) {
            struct sw_facts *f = facts_get(s->parts[i], ticket);
            if (f != NULL)
                return f;
        }
    }
    return NULL;
}

static const char *level_word(int level)
{
    return level == SB_LEVEL_SUPERVISOR ? "supervisor"
           : level == SB_LEVEL_LEAD     ? "team lead"
                                        : "agent";
}

/* The sb.sla.v1 payload of a core event (NULL: nothing to produce). */
static json_t *payload_of(struct slawatch *s, const struct sb_sla_event *e)
{
    json_t *p = json_object();
    const struct sw_facts *f = facts_of(s, e->ticket_id);
    char clock_id[SB_SLA_TICKET_MAX + 40], text[200];
    int64_t target_at = e->target_at_ms == SB_SLA_NEVER ? e->due_ms : e->target_at_ms;

    sb_fmt(clock_id, sizeof(clock_id), "%s:%s", e->ticket_id, sb_sla_kind_name(e->kind));
    if (e->type != SB_SLA_EV_FOLLOWUP) {
        json_object_set_new(p, "clock_id", json_string(clock_id));
        json_object_set_new(p, "kind", json_string(sb_sla_kind_name(e->kind)));
        if (e->band != SB_BAND_NONE)
            json_object_set_new(p, "band", json_string(sb_sla_band_name(e->band)));
    }
    switch (e->type) {
    case SB_SLA_EV_STARTED:
        set_time(p, "target_at", target_at);
        json_object_set_new(p, "target_s",
                            json_integer(e->target_ms / 1000 > 0 ? e->target_ms / 1000 : 1));
        json_object_set_new(p, "business_time", json_boolean(e->business_time));
        if (e->cal > 0 && e->cal <= s->ncals)
            json_object_set_new(p, "calendar", json_string(s->cals[e->cal - 1].id));
        if (e->period != SB_PERIOD_NONE) {
            json_object_set_new(p, "policy", json_string(sb_sla_period_name(e->period)));
            for (size_t i = 0; i < s->nperiods; i++)
                if (s->periods[i].row.kind == e->period && s->periods[i].notice[0] &&
                    s->periods[i].row.starts_ms <= e->due_ms &&
                    e->due_ms < s->periods[i].row.ends_ms)
                    json_object_set_new(p, "notice", json_string(s->periods[i].notice));
        } else if (e->policy_id > 0) {
            sb_fmt(text, sizeof(text), "sla_policies/%lld", (long long)e->policy_id);
            json_object_set_new(p, "policy", json_string(text));
        } else {
            json_object_set_new(p, "policy", json_string("default"));
        }
        if (e->restart)
            json_object_set_new(p, "restart", json_true());
        break;
    case SB_SLA_EV_PAUSED:
    case SB_SLA_EV_RESUMED:
        json_object_set_new(p, "state",
                            json_string(e->type == SB_SLA_EV_PAUSED ? "paused" : "resumed"));
        json_object_set_new(
            p, "reason",
            json_string(e->type == SB_SLA_EV_PAUSED ? "pending_customer" : "customer_replied"));
        if (e->type == SB_SLA_EV_RESUMED)
            set_time(p, "target_at", target_at);
        json_object_set_new(p, "paused_ms", json_integer(e->paused_ms > 0 ? e->paused_ms : 0));
        break;
    case SB_SLA_EV_WARNING:
        json_object_set_new(p, "fraction", json_real(e->fraction_bp / 10000.0));
        set_time(p, "target_at", target_at);
        json_object_set_new(p, "remaining_s",
                            json_integer(e->remaining_ms > 0 ? e->remaining_ms / 1000 : 0));
        if (f != NULL && f->agent_id[0])
            json_object_set_new(p, "agent_id", json_string(f->agent_id));
        break;
    case SB_SLA_EV_BREACHED:
        set_time(p, "target_at", target_at);
        json_object_set_new(p, "late_ms", json_integer(e->late_ms > 0 ? e->late_ms : 0));
        if (f != NULL && f->agent_id[0])
            json_object_set_new(p, "agent_id", json_string(f->agent_id));
        break;
    case SB_SLA_EV_ESCALATED: {
        /* The person of the level: the lead or supervisor of the ticket's team (else of
         * its agent's team) as the roster says now; only the level when none is known.
         * The event id does not depend on it. */
        const char *team = f != NULL && f->team[0] ? f->team
                           : f != NULL ? sb_sla_roster_agent_team(s->roster, f->agent_id)
                                       : NULL;
        const char *to = sb_sla_roster_escalation_to(s->roster, team, e->level);
        json_object_set_new(p, "from_level", json_string(sb_sla_level_name(e->from_level)));
        json_object_set_new(p, "level", json_string(sb_sla_level_name(e->level)));
        if (to != NULL)
            json_object_set_new(p, "to_agent_id", json_string(to));
        json_object_set_new(p, "reason", json_string(sb_sla_reason_name(e->reason)));
        sb_fmt(text, sizeof(text), "%s target %s; the %s is told", sb_sla_kind_name(e->kind),
               e->again ? "still untouched after the further interval" : "passed",
               level_word(e->level));
        if (e->reason != SB_REASON_BREACHED)
            sb_fmt(text, sizeof(text), "told at start: the %s is told", level_word(e->level));
        json_object_set_new(p, "detail", json_string(text));
        break;
    }
    case SB_SLA_EV_FOLLOWUP:
        if (f == NULL || f->customer_key[0] == '\0') {
            json_decref(p);
            return NULL; /* nobody to follow up with (archived, or never triaged here) */
        }
        json_object_set_new(p, "kind", json_string(sb_sla_kind_name(e->kind)));
        set_time(p, "due_at", e->due_ms);
        json_object_set_new(p, "customer_key", json_string(f->customer_key));
        if (sb_sla_channel_parse(f->channel) > 0)
            json_object_set_new(p, "channel", json_string(f->channel));
        json_object_set_new(
            p, "reason",
            json_string(e->kind == SB_SLA_FOLLOWUP_CALLBACK ? "complaint_resolved" : "resolved"));
        if (f->agent_id[0])
            json_object_set_new(p, "agent_id", json_string(f->agent_id));
        break;
    }
    return p;
}

static void count_event(struct slawatch *s, const struct sb_sla_event *e)
{
    sb_metric_inc(s->m_events);
    switch (e->type) {
    case SB_SLA_EV_WARNING:
        sb_metric_inc(s->m_warnings[e->kind]);
        break;
    case SB_SLA_EV_BREACHED:
        sb_metric_inc(s->m_breaches[e->kind]);
        if (e->band < 5)
            sb_metric_inc(s->m_band_breaches[e->band]);
        break;
    case SB_SLA_EV_ESCALATED:
        if (e->level <= SB_LEVEL_SUPERVISOR)
            sb_metric_inc(s->m_escalations[e->level]);
        break;
    case SB_SLA_EV_FOLLOWUP:
        sb_metric_inc(s->m_followups);
        break;
    default:
        return; /* operations, not timers: no lateness */
    }
    double late = (double)(e->fired_ms - e->due_ms) / 1000.0;
    sb_metric_observe(s->m_delay, late > 0 ? late : 0);
}

/* Produces the pending events and waits for their acknowledgements. */
static int produce_events(struct slawatch *s)
{
    int rc;
    if (s->events.n == 0)
        return 0;
    for (size_t i = 0; i < s->events.n; i++) {
        const struct sb_sla_event *e = &s->events.v[i];
        json_t *payload = payload_of(s, e);
        struct sb_event ev;
        char *text;
        size_t len;
        if (payload == NULL)
            continue;
        if (sb_event_init(&ev, sb_sla_event_type_name(e->type), s->producer_name, e->ticket_id,
                          NULL, payload) != 0) {
            sb_event_clear(&ev);
            continue;
        }
        sb_sla_event_uuid(e, ev.event_id);
        sb_time_format_ms(e->fired_ms, ev.occurred_at);
        text = sb_event_encode(&ev, &len);
        rc = sb_producer_send(s->producer, SB_TOPIC_SLA, e->ticket_id, strlen(e->ticket_id), text,
                              len, NULL, NULL);
        free(text);
        sb_event_clear(&ev);
        if (rc != 0)
            return rc;
    }
    rc = sb_producer_wait_all(s->producer, 30000);
    if (rc != 0)
        return SB_E_IO;
    for (size_t i = 0; i < s->events.n; i++)
        count_event(s, &s->events.v[i]);
    sb_sla_events_clear(&s->events);
    return 0;
}

static void clock_json(const struct sb_sla_clock *c, const struct slawatch *s, json_t *a,
                       int32_t part)
{
    char state[400];
    json_t *o = json_object();
    format_state(c, state, sizeof(state));
    json_object_set_new(o, "p", json_integer(part));
    json_object_set_new(o, "t", json_string(c->ticket_id));
    json_object_set_new(o, "k", json_string(sb_sla_kind_name(c->kind)));
    json_object_set_new(o, "c",
                        c->cal > 0 && c->cal <= s->ncals ? json_string(s->cals[c->cal - 1].id)
                                                         : json_null());
    json_object_set_new(o, "s", json_string(state));
    json_object_set_new(o, "d",
                        c->next_due == SB_SLA_NEVER ? json_null() : json_integer(c->next_due));
    json_array_append_new(a, o);
}

static int cmp_ticket(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Writes the rows of every dirty ticket and the offsets, in one transaction. */
static int write_snapshots(struct slawatch *s)
{
    json_t *tickets = json_array(), *clocks = json_array(), *facts = json_array(),
           *offsets = json_array(), *deferred = json_array(), *gone = json_array();
    size_t nwork = 0;
    int rc = SB_E_IO;
    char err[512];

    for (int i = 0; i < SW_MAX_PARTS; i++) {
        struct sw_part *p = s->parts[i];
        if (p == NULL)
            continue;
        /* One row per ticket: an upsert must not meet the same key twice. */
        if (p->ndirty > 1)
            qsort(p->dirty, p->ndirty, sizeof(*p->dirty), cmp_ticket);
        for (size_t d = 0; d < p->ndirty; d++) {
            const char *t = p->dirty[d];
            if (d > 0 && strcmp(t, p->dirty[d - 1]) == 0)
                continue;
            struct sw_facts *f = facts_get(p, t);
            json_array_append_new(tickets, json_string(t));
            for (int k = 0; k < SB_SLA_KINDS; k++) {
                const struct sb_sla_clock *c = sb_sla_engine_get(p->engine, t, k);
                if (c != NULL)
                    clock_json(c, s, clocks, p->id);
            }
            if (f != NULL && f->customer_key[0]) {
                json_t *o =
                    json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "p", (int)p->id, "t", t,
                              "ck", f->customer_key, "ch", f->channel[0] ? f->channel : "-", "b",
                              f->band ? sb_sla_band_name(f->band) : "", "n", f->nature, "a",
                              f->agent_id, "tm", f->team);
                json_array_append_new(facts, o);
            }
            nwork++;
        }
        for (size_t d = 0; d < p->ndeferred; d++) {
            const struct sw_deferred *x = &p->deferred[d];
            if (x->written)
                continue;
            json_array_append_new(
                deferred, json_pack("{s:s, s:i, s:I, s:s, s:I, s:s%}", "tp", topic_names[x->topic],
                                    "p", (int)p->id, "o", (json_int_t)x->offset, "t", x->ticket,
                                    "ms", (json_int_t)x->occurred_ms, "e", x->envelope, x->len));
            nwork++;
        }
        for (size_t d = 0; d < p->ngone; d++) {
            json_array_append_new(gone,
                                  json_pack("{s:s, s:i, s:I}", "tp", topic_names[p->gone[d].topic],
                                            "p", (int)p->id, "o", (json_int_t)p->gone[d].offset));
            nwork++;
        }
        if (p->offsets_dirty) {
            for (int ti = 0; ti < SW_NTOPICS; ti++)
                if (p->next_offset[ti] > 0)
                    json_array_append_new(offsets, json_pack("{s:s, s:i, s:I}", "topic",
                                                             topic_names[ti], "p", (int)p->id, "o",
                                                             (json_int_t)p->next_offset[ti]));
            nwork++;
        }
    }
    if (nwork == 0) {
        rc = 0;
        goto out;
    }
    {
        char *a1 = json_dumps(tickets, JSON_COMPACT), *a2 = json_dumps(clocks, JSON_COMPACT),
             *a3 = json_dumps(facts, JSON_COMPACT), *a4 = json_dumps(offsets, JSON_COMPACT),
             *a5 = json_dumps(deferred, JSON_COMPACT), *a6 = json_dumps(gone, JSON_COMPACT);
        const char *params[7] = {s->group, a1, a2, a3, a4, a5, a6};
        struct sb_pg *c = pg(s);
        PGresult *res = NULL;
        int e = 0;

        if (c != NULL && sb_pg_exec(c, "BEGIN", err, sizeof(err)) == 0) {
            res = sb_pg_query(
                c,
                "WITH gone AS (DELETE FROM sla_clock_snapshots WHERE consumer_group = $1 AND "
                "ticket_id IN (SELECT jsonb_array_elements_text($2::jsonb)) AND (ticket_id, "
                "kind) NOT IN (SELECT x->>'t', x->>'k' FROM jsonb_array_elements($3::jsonb) x)), "
                "gf AS (DELETE FROM sla_ticket_facts WHERE consumer_group = $1 AND ticket_id IN "
                "(SELECT jsonb_array_elements_text($2::jsonb)) AND ticket_id NOT IN (SELECT "
                "x->>'t' FROM jsonb_array_elements($4::jsonb) x)), "
                "ck AS (INSERT INTO sla_clock_snapshots (consumer_group, part, ticket_id, kind, "
                "calendar_id, state, next_due) SELECT $1, (x->>'p')::int, x->>'t', x->>'k', "
                "x->>'c', x->>'s', to_timestamp((x->>'d')::bigint / 1000.0) FROM "
                "jsonb_array_elements($3::jsonb) x ON CONFLICT (consumer_group, ticket_id, kind) "
                "DO UPDATE SET part = excluded.part, calendar_id = excluded.calendar_id, state = "
                "excluded.state, next_due = excluded.next_due, updated_at = now()), "
                "fa AS (INSERT INTO sla_ticket_facts (consumer_group, part, ticket_id, "
                "customer_key, channel, band, nature, agent_id, team_id) SELECT $1, "
                "(x->>'p')::int, x->>'t', x->>'ck', x->>'ch', nullif(x->>'b', ''), "
                "nullif(x->>'n', ''), nullif(x->>'a', ''), nullif(x->>'tm', '') FROM "
                "jsonb_array_elements($4::jsonb) x ON CONFLICT (consumer_group, ticket_id) DO "
                "UPDATE SET part = excluded.part, customer_key = excluded.customer_key, channel = "
                "excluded.channel, band = excluded.band, nature = excluded.nature, agent_id = "
                "excluded.agent_id, team_id = excluded.team_id, updated_at = now()), "
                "di AS (INSERT INTO sla_deferred_inputs (consumer_group, topic, part, "
                "input_offset, ticket_id, occurred_at, envelope) SELECT $1, x->>'tp', "
                "(x->>'p')::int, (x->>'o')::bigint, x->>'t', to_timestamp((x->>'ms')::bigint / "
                "1000.0), x->>'e' FROM jsonb_array_elements($6::jsonb) x ON CONFLICT DO "
                "NOTHING), "
                "dd AS (DELETE FROM sla_deferred_inputs d USING jsonb_array_elements($7::jsonb) x "
                "WHERE d.consumer_group = $1 AND d.topic = x->>'tp' AND d.part = (x->>'p')::int "
                "AND d.input_offset = (x->>'o')::bigint) "
                "INSERT INTO sla_consumer_offsets (consumer_group, topic, part, next_offset) "
                "SELECT $1, x->>'topic', (x->>'p')::int, (x->>'o')::bigint FROM "
                "jsonb_array_elements($5::jsonb) x ON CONFLICT (consumer_group, topic, part) DO "
                "UPDATE SET next_offset = greatest(sla_consumer_offsets.next_offset, "
                "excluded.next_offset), updated_at = now()",
                7, params, &e, err, sizeof(err));
            if (res != NULL && sb_pg_exec(c, "COMMIT", err, sizeof(err)) == 0)
                rc = 0;
            else
                sb_pg_exec(c, "ROLLBACK", err + 256, sizeof(err) - 256);
            PQclear(res);
        }
        /* The CTEs never touch the same row twice: rows of clocks that vanished are
         * deleted, the others upserted. */
        if (rc != 0)
            sb_log_kv(SB_LOG_WARN, "snapshot not written (retried)", "detail", err, NULL);
        free(a1);
        free(a2);
        free(a3);
        free(a4);
        free(a5);
        free(a6);
    }
    if (rc == 0) {
        for (int i = 0; i < SW_MAX_PARTS; i++) {
            struct sw_part *p = s->parts[i];
            if (p == NULL)
                continue;
            for (size_t d = 0; d < p->ndirty; d++) {
                struct sw_facts *f = facts_get(p, p->dirty[d]);
                if (f != NULL && f->customer_key[0] == '\0')
                    facts_remove(p, p->dirty[d]);
            }
            p->ndirty = 0;
            p->offsets_dirty = false;
            for (size_t d = 0; d < p->ndeferred; d++)
                p->deferred[d].written = true;
            p->ngone = 0;
        }
    }
out:
    json_decref(tickets);
    json_decref(clocks);
    json_decref(facts);
    json_decref(offsets);
    json_decref(deferred);
    json_decref(gone);
    return rc;
}

int sw_flush(void *ctx)
{
    struct slawatch *s = ctx;
    int rc;
    /* Nothing of a partition handed over is produced or written any more. */
    sw_sync(s, false);
    rc = produce_events(s);
    if (rc != 0) {
        sb_log_kv(SB_LOG_WARN, "SLA events not acknowledged (retried)", NULL);
        return rc;
    }
    return write_snapshots(s);
}

void sw_destroy(struct slawatch *s)
{
    for (int i = 0; i < SW_MAX_PARTS; i++) {
        part_free(s->parts[i]);
        s->parts[i] = NULL;
    }
    sb_sla_policies_destroy(s->policies);
    sb_sla_roster_destroy(s->roster);
    s->roster = NULL;
    cals_free(s->cals, s->ncals);
    periods_free(s->periods, s->nperiods);
    sb_sla_events_free(&s->events);
    free(s->ev_part);
    s->ev_part = NULL;
    sb_pg_destroy(s->pg);
}
