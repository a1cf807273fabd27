/* The routing core (see core.h; the model and the costs are in docs/router-core.md).
 *
 * Invariant that keeps every decision local: an available agent with free capacity on a
 * channel is in the free-agent heap of every queue of that channel it is eligible for,
 * and then none of those queues holds a ticket it could take (barring tickets that avoid
 * it). So a new ticket only looks at the top of its own queue's agent heap, and an agent
 * with freed capacity only at the tops of its own queues' ticket heaps. */
#include "core.h"

#include "route_int.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_S 1000000LL
#define RT_TIME_MAX (1LL << 61) /* far beyond any clock; keeps rank sums from overflowing */
#define RT_DELAY_MAX (1LL << 55)
#define RT_NO_DEADLINE INT64_MAX
#define RT_LIMIT_MAX (1U << 24) /* queues and names: membership codes keep 29 bits */

static const char *const CHANNELS[SB_ROUTE_CH_COUNT] = {"voice",  "chat", "email",
                                                        "social", "form", "task"};
static const char *const PRESENCES[] = {"available", "busy", "away", "offline"};
static const char *const POLICIES[] = {"least_occupied", "longest_idle", "highest_skill"};

/* ---------------------------------------------------------------- configuration */

void sb_route_cfg_default(struct sb_route_cfg *cfg)
{
    static const int64_t delay_s[SB_ROUTE_BANDS] = {600, 3600, 4 * 3600, 24 * 3600};
    static const int64_t overflow_s[SB_ROUTE_BANDS][2] = {
        {30, 120}, {120, 600}, {600, 1800}, {1800, 7200}};

    memset(cfg, 0, sizeof(*cfg));
    cfg->policy = SB_ROUTE_LONGEST_IDLE;
    cfg->primary_level = 3;
    for (int b = 0; b < SB_ROUTE_BANDS; b++) {
        cfg->band_delay_us[b] = delay_s[b] * US_PER_S;
        cfg->overflow_us[b][0] = overflow_s[b][0] * US_PER_S;
        cfg->overflow_us[b][1] = overflow_s[b][1] * US_PER_S;
    }
    cfg->continuity_wait_us = 60 * US_PER_S;
    cfg->exclusion_search = 32;
    cfg->max_queues = 65536;
    cfg->max_names = 65536;
}

static int cfg_check(const struct sb_route_cfg *cfg, char *errstr, size_t errstr_size)
{
    if (cfg->policy < SB_ROUTE_LEAST_OCCUPIED || cfg->policy > SB_ROUTE_HIGHEST_SKILL) {
        sb_fmt(errstr, errstr_size, "policy %d is not a routing policy", cfg->policy);
        return SB_E_INVAL;
    }
    if (cfg->primary_level < 1 || cfg->primary_level > SB_ROUTE_LEVEL_MAX) {
        sb_fmt(errstr, errstr_size, "primary_level %d is outside 1..%d", cfg->primary_level,
               SB_ROUTE_LEVEL_MAX);
        return SB_E_INVAL;
    }
    for (int b = 0; b < SB_ROUTE_BANDS; b++) {
        const int64_t *o = cfg->overflow_us[b];
        if (cfg->band_delay_us[b] < -RT_DELAY_MAX || cfg->band_delay_us[b] > RT_DELAY_MAX) {
            sb_fmt(errstr, errstr_size, "band_delay_us of P%d is out of range", b + 1);
            return SB_E_INVAL;
        }
        if (o[0] > RT_DELAY_MAX || o[1] > RT_DELAY_MAX || (o[0] >= 0 && o[1] >= 0 && o[1] < o[0])) {
            sb_fmt(errstr, errstr_size,
                   "overflow_us of P%d: the wait before other teams must not be shorter "
                   "than the wait before secondary skills",
                   b + 1);
            return SB_E_INVAL;
        }
    }
    if (cfg->continuity_wait_us < 0 || cfg->continuity_wait_us > RT_DELAY_MAX) {
        sb_fmt(errstr, errstr_size, "continuity_wait_us is out of range");
        return SB_E_INVAL;
    }
    if (cfg->exclusion_search < 1 || cfg->exclusion_search > 64) {
        sb_fmt(errstr, errstr_size, "exclusion_search %d is outside 1..64", cfg->exclusion_search);
        return SB_E_INVAL;
    }
    if (cfg->max_queues < 1 || cfg->max_queues > RT_LIMIT_MAX || cfg->max_names < 1 ||
        cfg->max_names > RT_LIMIT_MAX) {
        sb_fmt(errstr, errstr_size, "max_queues and max_names must lie in 1..%u", RT_LIMIT_MAX);
        return SB_E_INVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- keys and names */

static const void *agent_key(const void *ctx, uint32_t idx, size_t *len)
{
    const struct sb_router *r = ctx;
    *len = strlen(r->agents[idx].id);
    return r->agents[idx].id;
}

static const void *ticket_key(const void *ctx, uint32_t idx, size_t *len)
{
    const struct sb_router *r = ctx;
    *len = strlen(r->tickets[idx].id);
    return r->tickets[idx].id;
}

static const void *queue_key(const void *ctx, uint32_t idx, size_t *len)
{
    const struct sb_router *r = ctx;
    *len = sizeof(struct rt_qkey);
    return &r->queues[idx].key;
}

static const void *name_key(const void *ctx, uint32_t idx, size_t *len)
{
    const struct rt_names *n = ctx;
    *len = strlen(n->name[idx]);
    return n->name[idx];
}

/* A name is 1..SB_ROUTE_ID_MAX bytes. Returns its length, or a negative code. */
static int name_check(const char *s, const char *what, char *errstr, size_t errstr_size)
{
    size_t len;
    if (s == NULL || s[0] == '\0') {
        sb_fmt(errstr, errstr_size, "%s is missing", what);
        return SB_E_INVAL;
    }
    len = strnlen(s, SB_ROUTE_ID_MAX + 1);
    if (len > SB_ROUTE_ID_MAX) {
        sb_fmt(errstr, errstr_size, "%s is longer than %d bytes", what, SB_ROUTE_ID_MAX);
        return SB_E_TOOBIG;
    }
    return (int)len;
}

static uint32_t agent_find(const struct sb_router *r, const char *id)
{
    size_t len;
    if (id == NULL)
        return RT_NONE;
    len = strnlen(id, SB_ROUTE_ID_MAX + 1);
    if (len == 0 || len > SB_ROUTE_ID_MAX)
        return RT_NONE;
    return rt_idmap_get(&r->agent_map, id, len, rt_hash(id, len), agent_key, r);
}

static uint32_t ticket_find(const struct sb_router *r, const char *id)
{
    size_t len;
    if (id == NULL)
        return RT_NONE;
    len = strnlen(id, SB_ROUTE_ID_MAX + 1);
    if (len == 0 || len > SB_ROUTE_ID_MAX)
        return RT_NONE;
    return rt_idmap_get(&r->ticket_map, id, len, rt_hash(id, len), ticket_key, r);
}

/* The index of a name, added when new. Returns 0, or SB_E_TOOBIG when the table is
 * full. The name has been checked. */
static int names_intern(struct sb_router *r, struct rt_names *n, const char *s, uint32_t *out)
{
    size_t len = strlen(s);
    uint32_t h = rt_hash(s, len);
    uint32_t i = rt_idmap_get(&n->map, s, len, h, name_key, n);

    if (i != RT_NONE) {
        *out = i;
        return 0;
    }
    if (n->n >= r->cfg.max_names)
        return SB_E_TOOBIG;
    if (n->n == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 64;
        n->name = sb_realloc(n->name, (size_t)n->cap * sizeof(*n->name));
    }
    memcpy(n->name[n->n], s, len + 1);
    rt_idmap_put(&n->map, h, n->n);
    *out = n->n++;
    return 0;
}

static void names_free(struct rt_names *n)
{
    free(n->name);
    rt_idmap_free(&n->map);
}

/* ---------------------------------------------------------------- lifecycle */

struct sb_router *sb_route_new(const struct sb_route_cfg *cfg, char *errstr, size_t errstr_size)
{
    struct sb_router *r;
    struct sb_route_cfg def;

    if (cfg == NULL) {
        sb_route_cfg_default(&def);
        cfg = &def;
    }
    if (cfg_check(cfg, errstr, errstr_size) != 0)
        return NULL;
    r = sb_calloc(1, sizeof(*r));
    r->cfg = *cfg;
    rt_idmap_init(&r->agent_map);
    rt_idmap_init(&r->ticket_map);
    rt_idmap_init(&r->queue_map);
    rt_idmap_init(&r->skills.map);
    rt_idmap_init(&r->teams.map);
    return r;
}

void sb_route_destroy(struct sb_router *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->nagents; i++) {
        for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
            free(r->agents[i].mem[ch].v);
            rt_theap_free(&r->agents[i].personal[ch]);
        }
    }
    for (uint32_t i = 0; i < r->nqueues; i++) {
        rt_theap_free(&r->queues[i].tickets);
        rt_aheap_free(&r->queues[i].agents);
    }
    free(r->agents);
    free(r->tickets);
    free(r->free_tickets);
    free(r->queues);
    free(r->out);
    rt_theap_free(&r->timers);
    rt_idmap_free(&r->agent_map);
    rt_idmap_free(&r->ticket_map);
    rt_idmap_free(&r->queue_map);
    names_free(&r->skills);
    names_free(&r->teams);
    free(r);
}

/* ---------------------------------------------------------------- decisions */

static void emit(struct sb_router *r, int kind, const struct rt_ticket *t, uint32_t a,
                 int continuity)
{
    struct sb_route_decision *d;

    if (r->out_head + r->out_n == r->out_cap) {
        if (r->out_head > 0) {
            memmove(r->out, r->out + r->out_head, r->out_n * sizeof(*r->out));
            r->out_head = 0;
        }
        if (r->out_n == r->out_cap) {
            r->out_cap = r->out_cap ? r->out_cap * 2 : 64;
            r->out = sb_realloc(r->out, r->out_cap * sizeof(*r->out));
        }
    }
    d = &r->out[r->out_head + r->out_n++];
    d->kind = kind;
    memcpy(d->ticket_id, t->id, sizeof(d->ticket_id));
    if (a != RT_NONE) {
        memcpy(d->agent_id, r->agents[a].id, sizeof(d->agent_id));
        d->agent_tag = r->agents[a].tag;
    } else {
        d->agent_id[0] = '\0';
        d->agent_tag = 0;
    }
    d->ticket_tag = t->tag;
    d->channel = t->channel;
    d->band = t->band;
    d->stage = t->stage;
    d->continuity = continuity;
    d->at_us = r->now_us;
    d->waited_us = r->now_us - t->arrived_us;
}

size_t sb_route_poll(struct sb_router *r, struct sb_route_decision *out, size_t max)
{
    size_t n = r->out_n < max ? r->out_n : max;
    if (n == 0)
        return 0;
    memcpy(out, r->out + r->out_head, n * sizeof(*out));
    r->out_head += n;
    r->out_n -= n;
    if (r->out_n == 0)
        r->out_head = 0;
    return n;
}

size_t sb_route_pending(const struct sb_router *r)
{
    return r->out_n;
}

/* ---------------------------------------------------------------- agents */

static int agent_free_on(const struct rt_agent *a, int ch)
{
    return a->presence == SB_ROUTE_AVAILABLE && a->load[ch] < a->cap[ch];
}

static void agent_load_changed(struct sb_router *r, struct rt_agent *a)
{
    uint64_t occ = 0;
    uint32_t busy = 0;
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        if (a->cap[ch] > 0)
            occ += ((uint64_t)a->load[ch] << 16) / (uint64_t)a->cap[ch];
        busy += (uint32_t)a->load[ch];
    }
    a->occ = occ > UINT32_MAX ? UINT32_MAX : (uint32_t)occ;
    a->busy = busy;
    a->since_us = r->now_us;
}

/* Puts the agent in, out of, or back in order in every free-agent heap it belongs to,
 * after a change of its load, presence or idle time: O(memberships × log agents). */
static void agent_refresh(struct sb_router *r, uint32_t ai)
{
    struct rt_agent *a = &r->agents[ai];

    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        int want = agent_free_on(a, ch);
        for (uint32_t i = 0; i < a->mem[ch].n; i++) {
            struct rt_mem *m = &a->mem[ch].v[i];
            struct rt_queue *q = &r->queues[m->queue];
            if (want && m->pos < 0) {
                struct rt_aent e = {ai, (i << 3) | (uint32_t)ch, m->score};
                rt_aheap_push(r, &q->agents, e);
            } else if (want) {
                rt_aheap_fix(r, &q->agents, m->pos);
            } else if (m->pos >= 0) {
                rt_aheap_remove(r, &q->agents, m->pos);
            }
        }
    }
}

/* Whether agent a may serve queue key k, and the sum of its levels in k's skills. */
static int eligible(const struct rt_agent *a, const struct rt_qkey *k, int32_t *score)
{
    int32_t sum = 0;

    if (a->cap[k->channel] <= 0)
        return 0;
    if (k->team >= 0 && a->team != k->team)
        return 0;
    for (unsigned i = 0; i < k->nskills; i++) {
        unsigned j = 0;
        while (j < a->nskills && a->skill[j] != k->skill[i])
            j++;
        if (j == a->nskills || a->level[j] < k->min_level)
            return 0;
        sum += a->level[j];
    }
    *score = sum;
    return 1;
}

static void mem_add(struct sb_router *r, uint32_t ai, uint32_t qi, int32_t score)
{
    struct rt_agent *a = &r->agents[ai];
    struct rt_queue *q = &r->queues[qi];
    int ch = q->key.channel;
    struct rt_memv *mv = &a->mem[ch];
    uint32_t i;

    if (mv->n == mv->cap) {
        mv->cap = mv->cap ? mv->cap * 2 : 4;
        mv->v = sb_realloc(mv->v, (size_t)mv->cap * sizeof(*mv->v));
    }
    i = mv->n++;
    mv->v[i].queue = qi;
    mv->v[i].pos = -1;
    mv->v[i].score = score;
    q->members++;
    if (a->presence == SB_ROUTE_AVAILABLE)
        q->available++;
    if (agent_free_on(a, ch)) {
        struct rt_aent e = {ai, (i << 3) | (uint32_t)ch, score};
        rt_aheap_push(r, &q->agents, e);
    }
}

static void mem_clear(struct sb_router *r, uint32_t ai)
{
    struct rt_agent *a = &r->agents[ai];

    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        for (uint32_t i = 0; i < a->mem[ch].n; i++) {
            struct rt_mem *m = &a->mem[ch].v[i];
            struct rt_queue *q = &r->queues[m->queue];
            if (m->pos >= 0)
                rt_aheap_remove(r, &q->agents, m->pos);
            q->members--;
            if (a->presence == SB_ROUTE_AVAILABLE)
                q->available--;
        }
        a->mem[ch].n = 0;
    }
}

/* ---------------------------------------------------------------- queues */

/* The queue for key k, created (with its members, one pass over the agents) when new;
 * RT_NONE when the table is full. */
static uint32_t queue_get(struct sb_router *r, const struct rt_qkey *k)
{
    uint32_t h = rt_hash(k, sizeof(*k));
    uint32_t qi = rt_idmap_get(&r->queue_map, k, sizeof(*k), h, queue_key, r);
    struct rt_queue *q;

    if (qi != RT_NONE)
        return qi;
    if (r->nqueues >= r->cfg.max_queues)
        return RT_NONE;
    if (r->nqueues == r->queues_cap) {
        r->queues_cap = r->queues_cap ? r->queues_cap * 2 : 16;
        r->queues = sb_realloc(r->queues, (size_t)r->queues_cap * sizeof(*r->queues));
    }
    qi = r->nqueues++;
    q = &r->queues[qi];
    memset(q, 0, sizeof(*q));
    q->key = *k;
    rt_idmap_put(&r->queue_map, h, qi);
    for (uint32_t ai = 0; ai < r->nagents; ai++) {
        int32_t score;
        if (eligible(&r->agents[ai], k, &score))
            mem_add(r, ai, qi, score);
    }
    return qi;
}

/* ---------------------------------------------------------------- tickets */

static int64_t ticket_rank(const struct sb_router *r, const struct rt_ticket *t)
{
    return t->arrived_us + r->cfg.band_delay_us[t->band - 1];
}

/* The heap a waiting ticket sits in. */
static struct rt_theap *ticket_heap(struct sb_router *r, const struct rt_ticket *t)
{
    if (t->state == SB_ROUTE_T_WAITING_AGENT)
        return &r->agents[t->agent].personal[t->channel];
    return &r->queues[t->queue[t->stage]].tickets;
}

static void timer_set(struct sb_router *r, uint32_t ti, int64_t deadline)
{
    struct rt_ticket *t = &r->tickets[ti];
    if (t->pos[RT_POS_TIMER] >= 0)
        rt_theap_remove(r, &r->timers, RT_POS_TIMER, t->pos[RT_POS_TIMER]);
    t->deadline_us = deadline;
    if (deadline != RT_NO_DEADLINE)
        rt_theap_push(r, &r->timers, RT_POS_TIMER, ti, deadline);
}

/* Takes a waiting ticket out of its heap and the timers; it stays waiting. */
static void ticket_detach(struct sb_router *r, uint32_t ti)
{
    struct rt_ticket *t = &r->tickets[ti];
    if (t->pos[RT_POS_QUEUE] >= 0)
        rt_theap_remove(r, ticket_heap(r, t), RT_POS_QUEUE, t->pos[RT_POS_QUEUE]);
    timer_set(r, ti, RT_NO_DEADLINE);
}

static int stage_for_wait(const struct sb_router *r, const struct rt_ticket *t)
{
    int64_t waited = r->now_us - t->arrived_us;
    int s = t->stage;
    for (int k = 1; k < SB_ROUTE_STAGES; k++) {
        int64_t thr = r->cfg.overflow_us[t->band - 1][k - 1];
        if (thr >= 0 && waited >= thr && k > s)
            s = k;
    }
    return s;
}

static int64_t next_stage_deadline(const struct sb_router *r, const struct rt_ticket *t)
{
    for (int k = t->stage + 1; k < SB_ROUTE_STAGES; k++) {
        int64_t thr = r->cfg.overflow_us[t->band - 1][k - 1];
        if (thr >= 0)
            return t->arrived_us + thr;
    }
    return RT_NO_DEADLINE;
}

static uint32_t ticket_alloc(struct sb_router *r)
{
    uint32_t ti;
    if (r->nfree > 0) {
        ti = r->free_tickets[--r->nfree];
    } else {
        if (r->ntickets == r->tickets_cap) {
            r->tickets_cap = r->tickets_cap ? r->tickets_cap * 2 : 64;
            r->tickets = sb_realloc(r->tickets, (size_t)r->tickets_cap * sizeof(*r->tickets));
            r->free_tickets =
                sb_realloc(r->free_tickets, (size_t)r->tickets_cap * sizeof(*r->free_tickets));
        }
        ti = r->ntickets++;
    }
    memset(&r->tickets[ti], 0, sizeof(r->tickets[ti]));
    r->tickets[ti].pos[RT_POS_QUEUE] = -1;
    r->tickets[ti].pos[RT_POS_TIMER] = -1;
    r->tickets[ti].agent = RT_NONE;
    r->tickets[ti].prefer = RT_NONE;
    r->tickets[ti].deadline_us = RT_NO_DEADLINE;
    r->tickets[ti].seq = r->seq++;
    return ti;
}

static void ticket_free(struct sb_router *r, uint32_t ti)
{
    struct rt_ticket *t = &r->tickets[ti];
    size_t len = strlen(t->id);
    assert(t->pos[RT_POS_QUEUE] < 0 && t->pos[RT_POS_TIMER] < 0);
    rt_idmap_del(&r->ticket_map, rt_hash(t->id, len), ti);
    r->free_tickets[r->nfree++] = ti;
}

/* Gives ticket ti one unit of agent ai's capacity on its channel. */
static void assign(struct sb_router *r, uint32_t ti, uint32_t ai, int continuity)
{
    struct rt_ticket *t = &r->tickets[ti];
    struct rt_agent *a = &r->agents[ai];

    /* Every decision goes through here: a decision never exceeds a capacity. */
    assert(a->load[t->channel] < a->cap[t->channel]);
    ticket_detach(r, ti);
    if (t->state != SB_ROUTE_T_ASSIGNED)
        r->waiting--;
    if (t->state == SB_ROUTE_T_QUEUED)
        r->queues[t->queue[t->stage]].assigned++;
    t->state = SB_ROUTE_T_ASSIGNED;
    t->agent = ai;
    t->prefer = RT_NONE;
    a->load[t->channel]++;
    agent_load_changed(r, a);
    agent_refresh(r, ai);
    emit(r, SB_ROUTE_ASSIGNED, t, ai, continuity);
}

/* Routes a ticket that is QUEUED but in no heap and without timer: its preferred agent
 * when free, else the best free agent of the queue of its stage (overflowing first when
 * its wait calls for it), else it waits there until its next stage. */
static void route_queued(struct sb_router *r, uint32_t ti)
{
    struct rt_ticket *t = &r->tickets[ti];
    int stage = stage_for_wait(r, t);
    struct rt_queue *q;
    int32_t pos;

    assert(t->state == SB_ROUTE_T_QUEUED && t->pos[RT_POS_QUEUE] < 0);
    if (stage != t->stage) {
        int moved = t->queue[stage] != t->queue[t->stage];
        t->stage = (uint8_t)stage;
        if (moved)
            emit(r, SB_ROUTE_OVERFLOWED, t, RT_NONE, 0);
    }
    if (t->prefer != RT_NONE) {
        uint32_t ai = t->prefer;
        t->prefer = RT_NONE;
        if (agent_free_on(&r->agents[ai], t->channel) && !rt_excluded(t, ai)) {
            assign(r, ti, ai, 1);
            return;
        }
    }
    q = &r->queues[t->queue[t->stage]];
    pos = rt_aheap_best_for(r, &q->agents, ti, r->cfg.exclusion_search);
    if (pos >= 0) {
        assign(r, ti, q->agents.v[pos].agent, 0);
        return;
    }
    rt_theap_push(r, &q->tickets, RT_POS_QUEUE, ti, ticket_rank(r, t));
    timer_set(r, ti, next_stage_deadline(r, t));
}

/* Lets agent ai take work on channel ch while it has free capacity there: first the
 * customers waiting for it, then the best ticket at the heads of its queues. */
static void agent_take(struct sb_router *r, uint32_t ai, int ch)
{
    for (;;) {
        struct rt_agent *a = &r->agents[ai];
        const struct rt_tent *best = NULL;

        if (!agent_free_on(a, ch))
            return;
        if (a->personal[ch].n > 0) {
            assign(r, a->personal[ch].v[0].t, ai, 1);
            continue;
        }
        for (uint32_t i = 0; i < a->mem[ch].n; i++) {
            struct rt_queue *q = &r->queues[a->mem[ch].v[i].queue];
            int32_t pos = rt_theap_best_for(r, &q->tickets, ai, r->cfg.exclusion_search);
            const struct rt_tent *e;
            if (pos < 0)
                continue;
            e = &q->tickets.v[pos];
            if (best == NULL || e->rank < best->rank ||
                (e->rank == best->rank && e->seq < best->seq))
                best = e;
        }
        if (best == NULL)
            return;
        assign(r, best->t, ai, 0);
    }
}

static void agent_take_all(struct sb_router *r, uint32_t ai)
{
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        if (r->agents[ai].cap[ch] > 0)
            agent_take(r, ai, ch);
    }
}

/* Customers waiting for agent ai on channel ch stop waiting and are routed normally. */
static void personal_flush(struct sb_router *r, uint32_t ai, int ch)
{
    while (r->agents[ai].personal[ch].n > 0) {
        uint32_t ti = r->agents[ai].personal[ch].v[0].t;
        ticket_detach(r, ti);
        r->tickets[ti].state = SB_ROUTE_T_QUEUED;
        r->tickets[ti].agent = RT_NONE;
        route_queued(r, ti);
    }
}

static void fire(struct sb_router *r, uint32_t ti)
{
    struct rt_ticket *t = &r->tickets[ti];

    t->deadline_us = RT_NO_DEADLINE;
    if (t->pos[RT_POS_QUEUE] >= 0)
        rt_theap_remove(r, ticket_heap(r, t), RT_POS_QUEUE, t->pos[RT_POS_QUEUE]);
    if (t->state == SB_ROUTE_T_WAITING_AGENT) {
        t->state = SB_ROUTE_T_QUEUED;
        t->agent = RT_NONE;
    }
    route_queued(r, ti);
}

/* Brings the clock to now_us (never backwards), firing every timer due by then in
 * deadline order, each at its own deadline: the decisions carry the time they were
 * due, as if the caller had been there at that moment. */
static void advance(struct sb_router *r, int64_t now_us)
{
    if (now_us > RT_TIME_MAX)
        now_us = RT_TIME_MAX;
    while (r->timers.n > 0 && r->timers.v[0].rank <= now_us) {
        uint32_t ti = r->timers.v[0].t;
        if (r->timers.v[0].rank > r->now_us)
            r->now_us = r->timers.v[0].rank;
        rt_theap_remove(r, &r->timers, RT_POS_TIMER, 0);
        fire(r, ti);
    }
    if (now_us > r->now_us)
        r->now_us = now_us;
}

int sb_route_tick(struct sb_router *r, int64_t now_us)
{
    advance(r, now_us);
    return 0;
}

int sb_route_next_deadline(const struct sb_router *r, int64_t *deadline_us)
{
    if (r->timers.n == 0)
        return SB_E_NOENT;
    *deadline_us = r->timers.v[0].rank;
    return 0;
}

/* ---------------------------------------------------------------- agent calls */

int sb_route_agent_set(struct sb_router *r, const struct sb_route_agent_spec *spec, int64_t now_us,
                       char *errstr, size_t errstr_size)
{
    uint32_t skill[SB_ROUTE_MAX_SKILLS];
    uint8_t level[SB_ROUTE_MAX_SKILLS];
    uint32_t nskills = 0, ai;
    int32_t team = -1;
    int len, rc;
    struct rt_agent *a;

    advance(r, now_us);
    len = name_check(spec->id, "agent id", errstr, errstr_size);
    if (len < 0)
        return len;
    if (spec->nskills > SB_ROUTE_MAX_SKILLS) {
        sb_fmt(errstr, errstr_size, "agent %s: more than %d skills", spec->id, SB_ROUTE_MAX_SKILLS);
        return SB_E_TOOBIG;
    }
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        if (spec->capacity[ch] < 0 || spec->capacity[ch] > SB_ROUTE_CAP_MAX) {
            sb_fmt(errstr, errstr_size, "agent %s: %s capacity %d is outside 0..%d", spec->id,
                   CHANNELS[ch], spec->capacity[ch], SB_ROUTE_CAP_MAX);
            return SB_E_INVAL;
        }
    }
    for (size_t i = 0; i < spec->nskills; i++) {
        const struct sb_route_skill *s = &spec->skills[i];
        uint32_t id;
        rc = name_check(s->name, "skill name", errstr, errstr_size);
        if (rc < 0)
            return rc;
        if (s->level < 1 || s->level > SB_ROUTE_LEVEL_MAX) {
            sb_fmt(errstr, errstr_size, "agent %s: skill %s level %d is outside 1..%d", spec->id,
                   s->name, s->level, SB_ROUTE_LEVEL_MAX);
            return SB_E_INVAL;
        }
        if (names_intern(r, &r->skills, s->name, &id) != 0) {
            sb_fmt(errstr, errstr_size, "more than %u skill names", r->cfg.max_names);
            return SB_E_TOOBIG;
        }
        /* A skill listed twice keeps its highest level. */
        uint32_t j = 0;
        while (j < nskills && skill[j] != id)
            j++;
        if (j == nskills) {
            skill[nskills] = id;
            level[nskills++] = (uint8_t)s->level;
        } else if (level[j] < s->level) {
            level[j] = (uint8_t)s->level;
        }
    }
    if (spec->team != NULL && spec->team[0] != '\0') {
        uint32_t id;
        rc = name_check(spec->team, "team", errstr, errstr_size);
        if (rc < 0)
            return rc;
        if (names_intern(r, &r->teams, spec->team, &id) != 0) {
            sb_fmt(errstr, errstr_size, "more than %u team names", r->cfg.max_names);
            return SB_E_TOOBIG;
        }
        team = (int32_t)id;
    }

    ai = agent_find(r, spec->id);
    if (ai == RT_NONE) {
        if (r->nagents == r->agents_cap) {
            r->agents_cap = r->agents_cap ? r->agents_cap * 2 : 64;
            r->agents = sb_realloc(r->agents, (size_t)r->agents_cap * sizeof(*r->agents));
        }
        ai = r->nagents++;
        a = &r->agents[ai];
        memset(a, 0, sizeof(*a));
        memcpy(a->id, spec->id, (size_t)len + 1);
        a->presence = SB_ROUTE_OFFLINE;
        a->since_us = r->now_us;
        rt_idmap_put(&r->agent_map, rt_hash(a->id, (size_t)len), ai);
    } else {
        mem_clear(r, ai);
        a = &r->agents[ai];
    }
    a->tag = spec->tag;
    a->team = team;
    a->nskills = nskills;
    memcpy(a->skill, skill, nskills * sizeof(skill[0]));
    memcpy(a->level, level, nskills * sizeof(level[0]));
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++)
        a->cap[ch] = spec->capacity[ch];
    agent_load_changed(r, a);
    a->since_us = r->now_us;
    for (uint32_t qi = 0; qi < r->nqueues; qi++) {
        int32_t score;
        if (eligible(&r->agents[ai], &r->queues[qi].key, &score))
            mem_add(r, ai, qi, score);
    }
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        if (r->agents[ai].cap[ch] == 0)
            personal_flush(r, ai, ch);
    }
    agent_take_all(r, ai);
    return 0;
}

int sb_route_agent_presence(struct sb_router *r, const char *agent_id, int presence, int64_t now_us)
{
    uint32_t ai;
    struct rt_agent *a;
    int was, is;

    advance(r, now_us);
    if (presence < SB_ROUTE_AVAILABLE || presence > SB_ROUTE_OFFLINE)
        return SB_E_INVAL;
    ai = agent_find(r, agent_id);
    if (ai == RT_NONE)
        return SB_E_NOENT;
    a = &r->agents[ai];
    if (a->presence == presence)
        return 0;
    was = a->presence == SB_ROUTE_AVAILABLE;
    is = presence == SB_ROUTE_AVAILABLE;
    if (was != is) {
        for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
            for (uint32_t i = 0; i < a->mem[ch].n; i++) {
                struct rt_queue *q = &r->queues[a->mem[ch].v[i].queue];
                if (is)
                    q->available++;
                else
                    q->available--;
            }
        }
    }
    a->presence = presence;
    a->since_us = r->now_us;
    agent_refresh(r, ai);
    if (presence == SB_ROUTE_AWAY || presence == SB_ROUTE_OFFLINE) {
        for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++)
            personal_flush(r, ai, ch);
    }
    if (is)
        agent_take_all(r, ai);
    return 0;
}

/* ---------------------------------------------------------------- ticket calls */

static void key_sort(struct rt_qkey *k)
{
    for (unsigned i = 1; i < k->nskills; i++) {
        uint32_t v = k->skill[i];
        unsigned j = i;
        while (j > 0 && k->skill[j - 1] > v) {
            k->skill[j] = k->skill[j - 1];
            j--;
        }
        k->skill[j] = v;
    }
}

/* Checks a ticket spec and finds (creating them when new) the queues of its three
 * stages. */
static int ticket_queues(struct sb_router *r, const struct sb_route_ticket_spec *s,
                         uint32_t queue[SB_ROUTE_STAGES], char *errstr, size_t errstr_size)
{
    struct rt_qkey k[SB_ROUTE_STAGES];
    uint32_t skill[SB_ROUTE_MAX_REQ];
    int relax[SB_ROUTE_MAX_REQ];
    unsigned n = 0;
    int32_t team = -1;
    int rc;

    rc = name_check(s->id, "ticket id", errstr, errstr_size);
    if (rc < 0)
        return rc;
    if (s->channel < 0 || s->channel >= SB_ROUTE_CH_COUNT) {
        sb_fmt(errstr, errstr_size, "ticket %s: channel %d is not a channel", s->id, s->channel);
        return SB_E_INVAL;
    }
    if (s->band < 1 || s->band > SB_ROUTE_BANDS) {
        sb_fmt(errstr, errstr_size, "ticket %s: band %d is outside 1..%d", s->id, s->band,
               SB_ROUTE_BANDS);
        return SB_E_INVAL;
    }
    if (s->nskills > SB_ROUTE_MAX_REQ) {
        sb_fmt(errstr, errstr_size, "ticket %s: more than %d required skills", s->id,
               SB_ROUTE_MAX_REQ);
        return SB_E_TOOBIG;
    }
    if (s->arrived_us < -RT_TIME_MAX) {
        sb_fmt(errstr, errstr_size, "ticket %s: arrival time out of range", s->id);
        return SB_E_INVAL;
    }
    for (size_t i = 0; i < s->nskills; i++) {
        uint32_t id;
        unsigned j;
        rc = name_check(s->skills[i], "required skill", errstr, errstr_size);
        if (rc < 0)
            return rc;
        if (names_intern(r, &r->skills, s->skills[i], &id) != 0) {
            sb_fmt(errstr, errstr_size, "more than %u skill names", r->cfg.max_names);
            return SB_E_TOOBIG;
        }
        j = 0;
        while (j < n && skill[j] != id)
            j++;
        if (j == n) {
            skill[n] = id;
            relax[n++] = (s->relax_mask >> i) & 1U;
        } else if (((s->relax_mask >> i) & 1U) == 0) {
            relax[j] = 0; /* kept at stage 2 when any copy must be kept */
        }
    }
    if (s->team != NULL && s->team[0] != '\0') {
        uint32_t id;
        rc = name_check(s->team, "team", errstr, errstr_size);
        if (rc < 0)
            return rc;
        if (names_intern(r, &r->teams, s->team, &id) != 0) {
            sb_fmt(errstr, errstr_size, "more than %u team names", r->cfg.max_names);
            return SB_E_TOOBIG;
        }
        team = (int32_t)id;
    }

    memset(k, 0, sizeof(k));
    for (int st = 0; st < SB_ROUTE_STAGES; st++) {
        k[st].channel = (uint8_t)s->channel;
        k[st].min_level = (uint8_t)(st == 0 ? r->cfg.primary_level : 1);
        k[st].team = st == 2 ? -1 : team;
        for (unsigned i = 0; i < n; i++) {
            if (st < 2 || !relax[i])
                k[st].skill[k[st].nskills++] = skill[i];
        }
        key_sort(&k[st]);
        queue[st] = queue_get(r, &k[st]);
        if (queue[st] == RT_NONE) {
            sb_fmt(errstr, errstr_size, "more than %u queues", r->cfg.max_queues);
            return SB_E_TOOBIG;
        }
    }
    return 0;
}

/* Creates the ticket record (in no heap). Returns its index or RT_NONE with rc set. */
static uint32_t ticket_create(struct sb_router *r, const struct sb_route_ticket_spec *s, int *rc,
                              char *errstr, size_t errstr_size)
{
    uint32_t queue[SB_ROUTE_STAGES], ti;
    struct rt_ticket *t;
    size_t len;

    *rc = ticket_queues(r, s, queue, errstr, errstr_size);
    if (*rc != 0)
        return RT_NONE;
    if (ticket_find(r, s->id) != RT_NONE) {
        sb_fmt(errstr, errstr_size, "ticket %s is already known", s->id);
        *rc = SB_E_CONFLICT;
        return RT_NONE;
    }
    ti = ticket_alloc(r);
    t = &r->tickets[ti];
    len = strlen(s->id);
    memcpy(t->id, s->id, len + 1);
    t->tag = s->tag;
    t->channel = (uint8_t)s->channel;
    t->band = (uint8_t)s->band;
    t->arrived_us = s->arrived_us > r->now_us ? r->now_us : s->arrived_us;
    memcpy(t->queue, queue, sizeof(queue));
    rt_idmap_put(&r->ticket_map, rt_hash(t->id, len), ti);
    return ti;
}

int sb_route_ticket_add(struct sb_router *r, const struct sb_route_ticket_spec *spec,
                        int64_t now_us, char *errstr, size_t errstr_size)
{
    uint32_t ti, pa;
    struct rt_ticket *t;
    int rc;

    advance(r, now_us);
    ti = ticket_create(r, spec, &rc, errstr, errstr_size);
    if (ti == RT_NONE)
        return rc;
    t = &r->tickets[ti];
    t->state = SB_ROUTE_T_QUEUED;
    r->waiting++;
    pa = agent_find(r, spec->preferred_agent);
    if (pa != RT_NONE) {
        const struct rt_agent *a = &r->agents[pa];
        int logged_in = a->presence == SB_ROUTE_AVAILABLE || a->presence == SB_ROUTE_BUSY;
        if (agent_free_on(a, t->channel)) {
            assign(r, ti, pa, 1);
            return 0;
        }
        /* Wait for the last agent only when it is logged in and takes this channel,
         * counting the wait from the customer's arrival. */
        if (logged_in && a->cap[t->channel] > 0 &&
            r->now_us - t->arrived_us < r->cfg.continuity_wait_us) {
            t->state = SB_ROUTE_T_WAITING_AGENT;
            t->agent = pa;
            rt_theap_push(r, &r->agents[pa].personal[t->channel], RT_POS_QUEUE, ti,
                          ticket_rank(r, t));
            timer_set(r, ti, t->arrived_us + r->cfg.continuity_wait_us);
            return 0;
        }
    }
    route_queued(r, ti);
    return 0;
}

int sb_route_ticket_restore(struct sb_router *r, const struct sb_route_ticket_spec *spec,
                            const char *agent_id, int64_t now_us, char *errstr, size_t errstr_size)
{
    uint32_t ai, ti;
    struct rt_ticket *t;
    struct rt_agent *a;
    int rc;

    advance(r, now_us);
    ai = agent_find(r, agent_id);
    if (ai == RT_NONE) {
        sb_fmt(errstr, errstr_size, "agent %s is not known", agent_id ? agent_id : "(null)");
        return SB_E_NOENT;
    }
    if (spec->channel >= 0 && spec->channel < SB_ROUTE_CH_COUNT &&
        r->agents[ai].load[spec->channel] >= r->agents[ai].cap[spec->channel]) {
        sb_fmt(errstr, errstr_size, "agent %s has no free %s capacity", agent_id,
               CHANNELS[spec->channel]);
        return SB_E_CONFLICT;
    }
    ti = ticket_create(r, spec, &rc, errstr, errstr_size);
    if (ti == RT_NONE)
        return rc;
    t = &r->tickets[ti];
    a = &r->agents[ai];
    t->state = SB_ROUTE_T_ASSIGNED;
    t->agent = ai;
    a->load[t->channel]++;
    agent_load_changed(r, a);
    agent_refresh(r, ai);
    return 0;
}

int sb_route_ticket_done(struct sb_router *r, const char *ticket_id, int64_t now_us)
{
    uint32_t ti, ai;
    struct rt_ticket *t;
    int ch;

    advance(r, now_us);
    ti = ticket_find(r, ticket_id);
    if (ti == RT_NONE)
        return SB_E_NOENT;
    t = &r->tickets[ti];
    if (t->state != SB_ROUTE_T_ASSIGNED) {
        ticket_detach(r, ti);
        r->waiting--;
        ticket_free(r, ti);
        return 0;
    }
    ai = t->agent;
    ch = t->channel;
    ticket_free(r, ti);
    r->agents[ai].load[ch]--;
    agent_load_changed(r, &r->agents[ai]);
    agent_refresh(r, ai);
    agent_take(r, ai, ch);
    return 0;
}

int sb_route_ticket_requeue(struct sb_router *r, const char *ticket_id, const char *suggested_agent,
                            int64_t now_us)
{
    uint32_t ti, ai;
    struct rt_ticket *t;
    int ch;

    advance(r, now_us);
    ti = ticket_find(r, ticket_id);
    if (ti == RT_NONE)
        return SB_E_NOENT;
    t = &r->tickets[ti];
    if (t->state != SB_ROUTE_T_ASSIGNED)
        return SB_E_STATE;
    ai = t->agent;
    ch = t->channel;
    r->agents[ai].load[ch]--;
    agent_load_changed(r, &r->agents[ai]);
    agent_refresh(r, ai);
    if (!rt_excluded(t, ai)) {
        if (t->nexclude == SB_ROUTE_MAX_EXCLUDE) {
            memmove(t->exclude, t->exclude + 1, (SB_ROUTE_MAX_EXCLUDE - 1) * sizeof(t->exclude[0]));
            t->nexclude--;
        }
        t->exclude[t->nexclude++] = ai;
    }
    t->state = SB_ROUTE_T_QUEUED;
    t->agent = RT_NONE;
    t->prefer = agent_find(r, suggested_agent);
    r->waiting++;
    route_queued(r, ti);
    agent_take(r, ai, ch);
    return 0;
}

int sb_route_ticket_rescore(struct sb_router *r, const char *ticket_id, int band, int64_t now_us)
{
    uint32_t ti;
    struct rt_ticket *t;

    advance(r, now_us);
    if (band < 1 || band > SB_ROUTE_BANDS)
        return SB_E_INVAL;
    ti = ticket_find(r, ticket_id);
    if (ti == RT_NONE)
        return SB_E_NOENT;
    t = &r->tickets[ti];
    if (t->band == band)
        return 0;
    if (t->state == SB_ROUTE_T_ASSIGNED) {
        t->band = (uint8_t)band;
        return 0;
    }
    if (t->state == SB_ROUTE_T_WAITING_AGENT) {
        struct rt_theap *h = ticket_heap(r, t);
        rt_theap_remove(r, h, RT_POS_QUEUE, t->pos[RT_POS_QUEUE]);
        t->band = (uint8_t)band;
        rt_theap_push(r, h, RT_POS_QUEUE, ti, ticket_rank(r, t));
        return 0;
    }
    ticket_detach(r, ti);
    t->band = (uint8_t)band;
    route_queued(r, ti);
    return 0;
}

int sb_route_ticket_claim(struct sb_router *r, const char *ticket_id, const char *agent_id,
                          int64_t now_us)
{
    uint32_t ti, ai;
    struct rt_ticket *t;

    advance(r, now_us);
    ti = ticket_find(r, ticket_id);
    ai = agent_find(r, agent_id);
    if (ti == RT_NONE || ai == RT_NONE)
        return SB_E_NOENT;
    t = &r->tickets[ti];
    if (t->state == SB_ROUTE_T_ASSIGNED)
        return SB_E_STATE;
    if (r->agents[ai].load[t->channel] >= r->agents[ai].cap[t->channel])
        return SB_E_CONFLICT;
    assign(r, ti, ai, t->state == SB_ROUTE_T_WAITING_AGENT && t->agent == ai);
    return 0;
}

/* ---------------------------------------------------------------- inspection */

int sb_route_ticket_get(const struct sb_router *r, const char *ticket_id,
                        struct sb_route_ticket_info *out)
{
    uint32_t ti = ticket_find(r, ticket_id);
    const struct rt_ticket *t;

    if (ti == RT_NONE)
        return SB_E_NOENT;
    t = &r->tickets[ti];
    memset(out, 0, sizeof(*out));
    out->state = t->state;
    out->channel = t->channel;
    out->band = t->band;
    out->stage = t->stage;
    out->arrived_us = t->arrived_us;
    out->queue = t->queue[t->stage];
    if (t->agent != RT_NONE)
        memcpy(out->agent_id, r->agents[t->agent].id, sizeof(out->agent_id));
    if (t->state == SB_ROUTE_T_QUEUED && t->pos[RT_POS_QUEUE] >= 0)
        out->position = rt_theap_ahead(&r->queues[out->queue].tickets, t->pos[RT_POS_QUEUE]);
    else if (t->state == SB_ROUTE_T_WAITING_AGENT)
        out->position =
            rt_theap_ahead(&r->agents[t->agent].personal[t->channel], t->pos[RT_POS_QUEUE]);
    return 0;
}

int sb_route_agent_get(const struct sb_router *r, const char *agent_id,
                       struct sb_route_agent_info *out)
{
    uint32_t ai = agent_find(r, agent_id);
    const struct rt_agent *a;

    if (ai == RT_NONE)
        return SB_E_NOENT;
    a = &r->agents[ai];
    memset(out, 0, sizeof(*out));
    out->presence = a->presence;
    out->since_us = a->since_us;
    for (int ch = 0; ch < SB_ROUTE_CH_COUNT; ch++) {
        out->capacity[ch] = a->cap[ch];
        out->load[ch] = a->load[ch];
        out->queues += a->mem[ch].n;
        out->waiting += a->personal[ch].n;
    }
    return 0;
}

size_t sb_route_queue_count(const struct sb_router *r)
{
    return r->nqueues;
}

int sb_route_queue_get(const struct sb_router *r, size_t i, struct sb_route_queue_info *out)
{
    const struct rt_queue *q;

    if (i >= r->nqueues)
        return SB_E_NOENT;
    q = &r->queues[i];
    memset(out, 0, sizeof(*out));
    out->channel = q->key.channel;
    out->min_level = q->key.min_level;
    if (q->key.team >= 0)
        memcpy(out->team, r->teams.name[q->key.team], sizeof(out->team));
    out->nskills = q->key.nskills;
    for (unsigned k = 0; k < q->key.nskills; k++)
        memcpy(out->skills[k], r->skills.name[q->key.skill[k]], sizeof(out->skills[k]));
    out->waiting = q->tickets.n;
    if (q->tickets.n > 0) {
        /* The head is the best rank, not always the oldest: the oldest is found among
         * the entries, which costs the queue's length; metrics read it rarely. */
        int64_t oldest = INT64_MAX;
        for (uint32_t k = 0; k < q->tickets.n; k++) {
            int64_t at = r->tickets[q->tickets.v[k].t].arrived_us;
            if (at < oldest)
                oldest = at;
        }
        out->oldest_us = oldest;
    }
    out->members = q->members;
    out->available = q->available;
    out->free = q->agents.n;
    out->assigned_total = q->assigned;
    return 0;
}

uint32_t sb_route_queue_available(const struct sb_router *r, size_t i)
{
    return i < r->nqueues ? r->queues[i].available : 0;
}

uint64_t sb_route_waiting(const struct sb_router *r)
{
    return r->waiting;
}

/* ---------------------------------------------------------------- names */

const char *sb_route_channel_name(int channel)
{
    return channel >= 0 && channel < SB_ROUTE_CH_COUNT ? CHANNELS[channel] : "unknown";
}

static int parse_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; s != NULL && i < n; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
    }
    return SB_E_INVAL;
}

int sb_route_channel_parse(const char *name)
{
    return parse_name(CHANNELS, SB_ROUTE_CH_COUNT, name);
}

const char *sb_route_presence_name(int presence)
{
    return presence >= SB_ROUTE_AVAILABLE && presence <= SB_ROUTE_OFFLINE ? PRESENCES[presence]
                                                                          : "unknown";
}

int sb_route_presence_parse(const char *name)
{
    return parse_name(PRESENCES, SB_ROUTE_OFFLINE + 1, name);
}

const char *sb_route_policy_name(int policy)
{
    return policy >= SB_ROUTE_LEAST_OCCUPIED && policy <= SB_ROUTE_HIGHEST_SKILL ? POLICIES[policy]
                                                                                 : "unknown";
}

int sb_route_policy_parse(const char *name)
{
    return parse_name(POLICIES, SB_ROUTE_HIGHEST_SKILL + 1, name);
}

/* ---------------------------------------------------------------- requirements */

int sb_route_spec_fill(const struct sb_route_rules *rules, const char *domain, const char *language,
                       const char *product_line, int vip, struct sb_route_req *req,
                       struct sb_route_ticket_spec *spec)
{
    size_t n = 0;
    unsigned relax = 0;

    spec->team = NULL;
    if (domain != NULL && domain[0] != '\0') {
        if (sb_fmt(req->skill[n], sizeof(req->skill[n]), "domain:%s", domain) != 0)
            return SB_E_TOOBIG;
        n++;
    }
    if (language != NULL && language[0] != '\0') {
        if (sb_fmt(req->skill[n], sizeof(req->skill[n]), "lang:%s", language) != 0)
            return SB_E_TOOBIG;
        n++;
    }
    if (product_line != NULL && product_line[0] != '\0') {
        if (sb_fmt(req->skill[n], sizeof(req->skill[n]), "product:%s", product_line) != 0)
            return SB_E_TOOBIG;
        relax |= 1U << n;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        spec->skills[i] = req->skill[i];
    spec->nskills = n;
    spec->relax_mask = relax;
    if (rules == NULL)
        return 0;
    if (vip && rules->vip_team != NULL && rules->vip_team[0] != '\0') {
        spec->team = rules->vip_team;
        return 0;
    }
    for (size_t i = 0; product_line != NULL && i < rules->ncore; i++) {
        if (strcmp(rules->core_lines[i], product_line) == 0) {
            spec->team = rules->core_teams[i];
            break;
        }
    }
    return 0;
}
