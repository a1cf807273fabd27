/* The SLA engine: clock storage, the (ticket, kind) index, calendars and timers; see
 * engine.h. Clocks live in one array of slots (free slots chained through next_due);
 * the index is open addressing with linear probing and backward-shift deletion, so it
 * needs no tombstones; the timers are keyed by slot. */
#include "engine.h"

#include "timers.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define MIN_CLOCKS 1024

struct sb_sla_engine {
    struct sb_sla_engine_opts opts;
    struct sb_sla_clock *clocks;
    size_t cap, used, n; /* slots allocated, slots ever used, clocks stored */
    uint32_t free_head;
    uint32_t *index;  /* slot + 1; 0 = empty */
    size_t index_cap; /* power of two, kept at least twice n */
    struct sb_sla_timers *timers;
    struct sb_cal *cals[SB_SLA_MAX_CALENDARS]; /* [0] stays NULL: no calendar */
    size_t n_cals;                             /* highest index in use + 1 */
};

void sb_sla_engine_opts_default(struct sb_sla_engine_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_clocks = 16u << 20;
    o->reescalate_max_ms = 3600000;
}

struct sb_sla_engine *sb_sla_engine_new(const struct sb_sla_engine_opts *o, char *errstr,
                                        size_t errstr_size)
{
    struct sb_sla_engine_opts def;
    struct sb_sla_engine *e;

    if (o == NULL) {
        sb_sla_engine_opts_default(&def);
        o = &def;
    }
    if (o->max_clocks == 0 || o->max_clocks >= SB_SLA_TIMERS_MAX_ID ||
        o->expected_clocks > o->max_clocks || o->reescalate_max_ms < 0) {
        sb_fmt(errstr, errstr_size, "slawatch engine: invalid options");
        return NULL;
    }
    e = sb_calloc(1, sizeof(*e));
    e->opts = *o;
    e->cap = o->expected_clocks > MIN_CLOCKS ? o->expected_clocks : MIN_CLOCKS;
    e->clocks = sb_malloc(e->cap * sizeof(*e->clocks));
    e->free_head = NONE;
    e->index_cap = 1;
    while (e->index_cap < 2 * e->cap)
        e->index_cap *= 2;
    e->index = sb_calloc(e->index_cap, sizeof(*e->index));
    e->timers = sb_sla_timers_new(e->cap);
    e->n_cals = 1;
    return e;
}

void sb_sla_engine_destroy(struct sb_sla_engine *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n_cals; i++)
        sb_cal_destroy(e->cals[i]);
    sb_sla_timers_destroy(e->timers);
    free(e->index);
    free(e->clocks);
    free(e);
}

int sb_sla_engine_add_calendar(struct sb_sla_engine *e, struct sb_cal *cal, uint16_t *index)
{
    if (cal == NULL)
        return SB_E_INVAL;
    if (e->n_cals >= SB_SLA_MAX_CALENDARS) {
        sb_cal_destroy(cal);
        return SB_E_TOOBIG;
    }
    e->cals[e->n_cals] = cal;
    *index = (uint16_t)e->n_cals++;
    return 0;
}

const struct sb_cal *sb_sla_engine_calendar(const struct sb_sla_engine *e, uint16_t index)
{
    return index < e->n_cals ? e->cals[index] : NULL;
}

int sb_sla_engine_find_calendar(const struct sb_sla_engine *e, const char *id, uint16_t *index)
{
    for (size_t i = 1; i < e->n_cals; i++) {
        if (strcmp(sb_cal_id(e->cals[i]), id) == 0) {
            *index = (uint16_t)i;
            return 0;
        }
    }
    return SB_E_NOENT;
}

static bool cal_ok(const struct sb_sla_engine *e, uint16_t index)
{
    return index == 0 || (index < e->n_cals && e->cals[index] != NULL);
}

static struct sb_sla_env env_of(const struct sb_sla_engine *e, const struct sb_sla_clock *c)
{
    struct sb_sla_env env = {c->cal < e->n_cals ? e->cals[c->cal] : NULL,
                             e->opts.reescalate_max_ms};
    return env;
}

static void rearm(struct sb_sla_engine *e, uint32_t slot)
{
    const struct sb_sla_clock *c = &e->clocks[slot];
    if (c->next_due == SB_SLA_NEVER) {
        sb_sla_timers_cancel(e->timers, slot);
    } else {
        /* Slots stay below max_clocks, itself below the timers' id bound. */
        int rc = sb_sla_timers_set(e->timers, slot, c->next_due);
        assert(rc == 0);
        (void)rc;
    }
}

/* --- Index ----------------------------------------------------------------------- */

static uint64_t key_hash(const char *ticket, int kind)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then the splitmix64 finalizer */
    for (const unsigned char *p = (const unsigned char *)ticket; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= (uint64_t)kind * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* The index position of (ticket, kind), or of the empty place where it would go. */
static size_t index_find(const struct sb_sla_engine *e, const char *ticket, int kind, bool *found)
{
    size_t mask = e->index_cap - 1, i = key_hash(ticket, kind) & mask;
    for (;;) {
        uint32_t v = e->index[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        const struct sb_sla_clock *c = &e->clocks[v - 1];
        if (c->kind == kind && strcmp(c->ticket_id, ticket) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void index_grow(struct sb_sla_engine *e)
{
    size_t ncap = e->index_cap * 2, mask = ncap - 1;
    uint32_t *idx = sb_calloc(ncap, sizeof(*idx));
    for (size_t i = 0; i < e->index_cap; i++) {
        uint32_t v = e->index[i];
        if (v == 0)
            continue;
        const struct sb_sla_clock *c = &e->clocks[v - 1];
        size_t j = key_hash(c->ticket_id, c->kind) & mask;
        while (idx[j] != 0)
            j = (j + 1) & mask;
        idx[j] = v;
    }
    free(e->index);
    e->index = idx;
    e->index_cap = ncap;
}

/* Removes position i, shifting back the entries of its probe run (Knuth 6.4, R). */
static void index_delete(struct sb_sla_engine *e, size_t i)
{
    size_t mask = e->index_cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = e->index[j];
        if (v == 0)
            break;
        const struct sb_sla_clock *c = &e->clocks[v - 1];
        size_t k = key_hash(c->ticket_id, c->kind) & mask;
        /* Entry j may move to i unless its home k lies cyclically within (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            e->index[i] = v;
            i = j;
        }
    }
    e->index[i] = 0;
}

static int find_slot(const struct sb_sla_engine *e, const char *ticket, int kind, uint32_t *slot)
{
    bool found;
    size_t i;
    if (!sb_sla_ticket_id_valid(ticket) || kind < 0 || kind >= SB_SLA_KINDS)
        return SB_E_INVAL;
    i = index_find(e, ticket, kind, &found);
    if (!found)
        return SB_E_NOENT;
    *slot = e->index[i] - 1;
    return 0;
}

/* --- Slots ----------------------------------------------------------------------- */

static int slot_alloc(struct sb_sla_engine *e, uint32_t *slot)
{
    if (e->n >= e->opts.max_clocks)
        return SB_E_TOOBIG;
    if (2 * (e->n + 1) > e->index_cap)
        index_grow(e);
    if (e->free_head != NONE) {
        *slot = e->free_head;
        e->free_head = (uint32_t)e->clocks[*slot].next_due;
    } else {
        if (e->used == e->cap) {
            e->cap *= 2;
            e->clocks = sb_realloc(e->clocks, e->cap * sizeof(*e->clocks));
        }
        *slot = (uint32_t)e->used++;
    }
    memset(&e->clocks[*slot], 0, sizeof(e->clocks[0]));
    e->n++;
    return 0;
}

static void slot_free(struct sb_sla_engine *e, uint32_t slot)
{
    struct sb_sla_clock *c = &e->clocks[slot];
    sb_sla_timers_cancel(e->timers, slot);
    memset(c, 0, sizeof(*c));
    c->state = SB_SLA_FREE;
    c->next_due = e->free_head;
    e->free_head = slot;
    e->n--;
}

/* Stores the clock built in *tmp under its key (which must be new). */
static int insert(struct sb_sla_engine *e, const struct sb_sla_clock *tmp)
{
    uint32_t slot;
    bool found;
    int rc = slot_alloc(e, &slot);
    if (rc != 0)
        return rc;
    e->clocks[slot] = *tmp;
    size_t i = index_find(e, tmp->ticket_id, tmp->kind, &found);
    assert(!found);
    e->index[i] = slot + 1;
    rearm(e, slot);
    return 0;
}

/* --- Operations ------------------------------------------------------------------ */

static int start_or_restart(struct sb_sla_engine *e, const struct sb_sla_start *s, bool restart,
                            struct sb_sla_events *out)
{
    struct sb_sla_clock tmp;
    struct sb_sla_env env = {NULL, e->opts.reescalate_max_ms};
    uint32_t slot;
    int rc;

    if (!cal_ok(e, s->cal))
        return SB_E_NOENT;
    if (s->kind < 0 || s->kind >= SB_SLA_CLOCK_KINDS)
        return SB_E_INVAL;
    env.cal = e->cals[s->cal];
    rc = find_slot(e, s->ticket_id, s->kind, &slot);
    if (rc == SB_E_INVAL)
        return rc;
    if (rc == 0) {
        struct sb_sla_clock *c = &e->clocks[slot];
        size_t mark = out->n;
        if (!restart)
            return SB_E_CONFLICT;
        tmp = *c;
        rc = sb_sla_clock_start(&tmp, &env, s, true, out);
        if (rc != 0) {
            out->n = mark;
            return rc;
        }
        *c = tmp;
        sb_sla_clock_fire_until(c, &env, s->at_ms, out);
        rearm(e, slot);
        return 0;
    }
    size_t mark = out->n;
    memset(&tmp, 0, sizeof(tmp));
    rc = sb_sla_clock_start(&tmp, &env, s, restart, out);
    if (rc == 0)
        sb_sla_clock_fire_until(&tmp, &env, s->at_ms, out);
    if (rc == 0)
        rc = insert(e, &tmp);
    if (rc != 0)
        out->n = mark; /* nothing happened */
    return rc;
}

int sb_sla_engine_start(struct sb_sla_engine *e, const struct sb_sla_start *s,
                        struct sb_sla_events *out)
{
    return start_or_restart(e, s, false, out);
}

int sb_sla_engine_restart(struct sb_sla_engine *e, const struct sb_sla_start *s,
                          struct sb_sla_events *out)
{
    return start_or_restart(e, s, true, out);
}

enum op { OP_PAUSE, OP_RESUME, OP_TOUCH, OP_MET, OP_CANCEL, OP_RETARGET };

struct op_arg {
    enum op op;
    enum sb_sla_band band;
    const struct sb_sla_target *target;
    bool move; /* OP_RETARGET: onto calendar cal */
    uint16_t cal;
};

static int apply(struct sb_sla_engine *e, uint32_t slot, const struct op_arg *a, int64_t at,
                 struct sb_sla_events *out)
{
    struct sb_sla_clock *c = &e->clocks[slot];
    struct sb_sla_env env = env_of(e, c);
    int rc = 0;

    /* Steps that fell due before this change happened first. */
    sb_sla_clock_fire_until(c, &env, at, out);
    switch (a->op) {
    case OP_PAUSE:
        rc = sb_sla_clock_pause(c, &env, at, out);
        break;
    case OP_RESUME:
        rc = sb_sla_clock_resume(c, &env, at, out);
        break;
    case OP_TOUCH:
        if (c->state != SB_SLA_RUNNING && c->state != SB_SLA_PAUSED)
            rc = SB_E_STATE;
        else
            sb_sla_clock_touch(c, &env, at);
        break;
    case OP_MET:
    case OP_CANCEL:
        rc = sb_sla_clock_stop(c, &env, at, a->op == OP_MET);
        break;
    case OP_RETARGET:
        if (a->move) {
            struct sb_sla_env to = {e->cals[a->cal], e->opts.reescalate_max_ms};
            rc = sb_sla_clock_retarget_cal(c, &env, &to, a->cal, a->band, a->target, at, out);
            env = env_of(e, c);
        } else {
            rc = sb_sla_clock_retarget(c, &env, a->band, a->target, at, out);
        }
        break;
    }
    /* A re-target can make a warning or the breach due at once. */
    sb_sla_clock_fire_until(c, &env, at, out);
    rearm(e, slot);
    return rc;
}

static int for_clocks(struct sb_sla_engine *e, const char *ticket, int kind, int64_t at,
                      const struct op_arg *a, struct sb_sla_events *out)
{
    uint32_t slot;
    int rc;

    if (kind != SB_SLA_ALL) {
        rc = find_slot(e, ticket, kind, &slot);
        return rc != 0 ? rc : apply(e, slot, a, at, out);
    }
    int result = SB_E_NOENT;
    for (int k = 0; k < SB_SLA_KINDS; k++) {
        rc = find_slot(e, ticket, k, &slot);
        if (rc == SB_E_INVAL)
            return rc;
        if (rc != 0)
            continue;
        /* Follow-ups are not paused, touched or stopped along with the clocks. */
        if (k >= SB_SLA_CLOCK_KINDS)
            continue;
        if (e->clocks[slot].state != SB_SLA_RUNNING && e->clocks[slot].state != SB_SLA_PAUSED) {
            if (result == SB_E_NOENT)
                result = SB_E_STATE;
            continue;
        }
        rc = apply(e, slot, a, at, out);
        if (rc == 0)
            result = 0;
        else if (result != 0)
            result = rc;
    }
    return result;
}

int sb_sla_engine_pause(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                        struct sb_sla_events *out)
{
    struct op_arg a = {OP_PAUSE, SB_BAND_NONE, NULL, false, 0};
    return for_clocks(e, ticket_id, kind, at_ms, &a, out);
}

int sb_sla_engine_resume(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                         struct sb_sla_events *out)
{
    struct op_arg a = {OP_RESUME, SB_BAND_NONE, NULL, false, 0};
    return for_clocks(e, ticket_id, kind, at_ms, &a, out);
}

int sb_sla_engine_touch(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                        struct sb_sla_events *out)
{
    struct op_arg a = {OP_TOUCH, SB_BAND_NONE, NULL, false, 0};
    return for_clocks(e, ticket_id, kind, at_ms, &a, out);
}

int sb_sla_engine_stop(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                       bool met, struct sb_sla_events *out)
{
    struct op_arg a = {met ? OP_MET : OP_CANCEL, SB_BAND_NONE, NULL, false, 0};
    return for_clocks(e, ticket_id, kind, at_ms, &a, out);
}

int sb_sla_engine_retarget(struct sb_sla_engine *e, const char *ticket_id, int kind,
                           enum sb_sla_band band, const struct sb_sla_target *t, int64_t at_ms,
                           struct sb_sla_events *out)
{
    struct op_arg a = {OP_RETARGET, band, t, false, 0};
    if (kind == SB_SLA_ALL || t == NULL)
        return SB_E_INVAL; /* targets differ per kind */
    return for_clocks(e, ticket_id, kind, at_ms, &a, out);
}

int sb_sla_engine_retarget_cal(struct sb_sla_engine *e, const char *ticket_id, int kind,
                               enum sb_sla_band band, const struct sb_sla_target *t, uint16_t cal,
                               int64_t at_ms, struct sb_sla_events *out)
{
    struct op_arg a = {OP_RETARGET, band, t, true, cal};
    if (kind == SB_SLA_ALL || t == NULL)
        return SB_E_INVAL; /* targets differ per kind */
    if (!cal_ok(e, cal))
        return SB_E_NOENT;
    return for_clocks(e, ticket_id, kind, at_ms, &a, out);
}

int sb_sla_engine_followup(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t due_ms)
{
    struct sb_sla_clock tmp;
    uint32_t slot;
    int rc;

    if (kind != SB_SLA_FOLLOWUP_CALLBACK && kind != SB_SLA_FOLLOWUP_CSAT)
        return SB_E_INVAL;
    rc = find_slot(e, ticket_id, kind, &slot);
    if (rc != SB_E_NOENT)
        return rc == 0 ? SB_E_CONFLICT : rc;
    rc = sb_sla_clock_followup(&tmp, ticket_id, (enum sb_sla_kind)kind, due_ms);
    return rc != 0 ? rc : insert(e, &tmp);
}

static int remove_one(struct sb_sla_engine *e, const char *ticket, int kind)
{
    bool found;
    size_t i;
    if (!sb_sla_ticket_id_valid(ticket) || kind < 0 || kind >= SB_SLA_KINDS)
        return SB_E_INVAL;
    i = index_find(e, ticket, kind, &found);
    if (!found)
        return SB_E_NOENT;
    uint32_t slot = e->index[i] - 1;
    index_delete(e, i); /* before the slot is cleared: the probe rehashes live entries */
    slot_free(e, slot);
    return 0;
}

int sb_sla_engine_remove(struct sb_sla_engine *e, const char *ticket_id, int kind)
{
    if (kind != SB_SLA_ALL)
        return remove_one(e, ticket_id, kind);
    int result = SB_E_NOENT;
    for (int k = 0; k < SB_SLA_KINDS; k++) {
        int rc = remove_one(e, ticket_id, k);
        if (rc == SB_E_INVAL)
            return rc;
        if (rc == 0)
            result = 0;
    }
    return result;
}

size_t sb_sla_engine_advance(struct sb_sla_engine *e, int64_t now_ms, size_t max_steps,
                             struct sb_sla_events *out)
{
    size_t steps = 0;
    uint32_t slot;
    int64_t due;

    while (steps < max_steps && sb_sla_timers_peek(e->timers, &slot, &due) && due <= now_ms) {
        struct sb_sla_clock *c = &e->clocks[slot];
        struct sb_sla_env env = env_of(e, c);
        int fired = sb_sla_clock_fire(c, &env, now_ms, out);
        if (fired == 0 && c->next_due <= now_ms) {
            /* A clock with nothing to do must not come back at once: never spin. */
            assert(!"clock due with nothing to fire");
            c->next_due = now_ms + 1;
        }
        rearm(e, slot);
        steps += (size_t)fired;
    }
    return steps;
}

int64_t sb_sla_engine_next_due(const struct sb_sla_engine *e)
{
    uint32_t slot;
    int64_t due;
    return sb_sla_timers_peek(e->timers, &slot, &due) ? due : SB_SLA_NEVER;
}

const struct sb_sla_clock *sb_sla_engine_get(const struct sb_sla_engine *e, const char *ticket_id,
                                             int kind)
{
    uint32_t slot;
    return find_slot(e, ticket_id, kind, &slot) == 0 ? &e->clocks[slot] : NULL;
}

int sb_sla_engine_restore(struct sb_sla_engine *e, const struct sb_sla_clock *snap)
{
    struct sb_sla_clock tmp;
    uint32_t slot;
    int rc;

    if (sb_sla_clock_check(snap) != 0)
        return SB_E_INVAL;
    if (!cal_ok(e, snap->cal))
        return SB_E_NOENT;
    tmp = *snap;
    struct sb_sla_env env = env_of(e, &tmp);
    sb_sla_clock_replan(&tmp, &env);
    rc = find_slot(e, tmp.ticket_id, tmp.kind, &slot);
    if (rc == 0) {
        e->clocks[slot] = tmp;
        rearm(e, slot);
        return 0;
    }
    return insert(e, &tmp);
}

int sb_sla_engine_replace_calendar(struct sb_sla_engine *e, uint16_t index, struct sb_cal *cal)
{
    if (index == 0 || index >= e->n_cals || cal == NULL) {
        sb_cal_destroy(cal);
        return SB_E_NOENT;
    }
    sb_cal_destroy(e->cals[index]);
    e->cals[index] = cal;
    for (size_t s = 0; s < e->used; s++) {
        struct sb_sla_clock *c = &e->clocks[s];
        if (c->state != SB_SLA_RUNNING || c->cal != index)
            continue;
        struct sb_sla_env env = env_of(e, c);
        sb_sla_clock_replan(c, &env);
        rearm(e, (uint32_t)s);
    }
    return 0;
}

void sb_sla_engine_foreach(const struct sb_sla_engine *e,
                           void (*fn)(const struct sb_sla_clock *c, void *arg), void *arg)
{
    for (size_t s = 0; s < e->used; s++)
        if (e->clocks[s].state != SB_SLA_FREE)
            fn(&e->clocks[s], arg);
}

void sb_sla_engine_stats(const struct sb_sla_engine *e, struct sb_sla_engine_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (size_t s = 0; s < e->used; s++) {
        uint8_t state = e->clocks[s].state;
        if (state != SB_SLA_FREE && state <= SB_SLA_DONE)
            st->by_state[state]++;
    }
    st->clocks = e->n;
    st->armed = sb_sla_timers_count(e->timers);
    st->bytes = sizeof(*e) + e->cap * sizeof(*e->clocks) + e->index_cap * sizeof(*e->index) +
                sb_sla_timers_bytes(e->timers);
}
