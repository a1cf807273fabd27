/* Indexed 4-ary min-heap of timers; see timers.h. */
#include "timers.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NOPOS UINT32_MAX
#define ARITY 4

struct entry {
    int64_t due;
    uint32_t id;
};

struct sb_sla_timers {
    struct entry *heap;
    size_t n, cap;
    uint32_t *pos; /* heap index of each id, NOPOS when disarmed */
    size_t pos_cap;
};

struct sb_sla_timers *sb_sla_timers_new(size_t capacity_hint)
{
    struct sb_sla_timers *t = sb_calloc(1, sizeof(*t));
    t->cap = capacity_hint > 0 ? capacity_hint : 64;
    t->heap = sb_malloc(t->cap * sizeof(*t->heap));
    t->pos_cap = t->cap;
    t->pos = sb_malloc(t->pos_cap * sizeof(*t->pos));
    memset(t->pos, 0xff, t->pos_cap * sizeof(*t->pos));
    return t;
}

void sb_sla_timers_destroy(struct sb_sla_timers *t)
{
    if (t == NULL)
        return;
    free(t->heap);
    free(t->pos);
    free(t);
}

static bool before(const struct entry *a, const struct entry *b)
{
    return a->due < b->due || (a->due == b->due && a->id < b->id);
}

static void place(struct sb_sla_timers *t, size_t i, struct entry e)
{
    t->heap[i] = e;
    t->pos[e.id] = (uint32_t)i;
}

static void sift_up(struct sb_sla_timers *t, size_t i)
{
    struct entry e = t->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (!before(&e, &t->heap[parent]))
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, e);
}

static void sift_down(struct sb_sla_timers *t, size_t i)
{
    struct entry e = t->heap[i];
    for (;;) {
        size_t first = i * ARITY + 1, best, end;
        if (first >= t->n)
            break;
        end = first + ARITY < t->n ? first + ARITY : t->n;
        best = first;
        for (size_t c = first + 1; c < end; c++)
            if (before(&t->heap[c], &t->heap[best]))
                best = c;
        if (!before(&t->heap[best], &e))
            break;
        place(t, i, t->heap[best]);
        i = best;
    }
    place(t, i, e);
}

int sb_sla_timers_set(struct sb_sla_timers *t, uint32_t id, int64_t due)
{
    if (id >= SB_SLA_TIMERS_MAX_ID)
        return SB_E_INVAL;
    if (id >= t->pos_cap) {
        size_t ncap = t->pos_cap * 2;
        while (ncap <= id)
            ncap *= 2;
        t->pos = sb_realloc(t->pos, ncap * sizeof(*t->pos));
        memset(t->pos + t->pos_cap, 0xff, (ncap - t->pos_cap) * sizeof(*t->pos));
        t->pos_cap = ncap;
    }
    uint32_t p = t->pos[id];
    if (p != NOPOS) {
        int64_t old = t->heap[p].due;
        t->heap[p].due = due;
        if (due < old)
            sift_up(t, p);
        else if (due > old)
            sift_down(t, p);
        return 0;
    }
    if (t->n == t->cap) {
        t->cap *= 2;
        t->heap = sb_realloc(t->heap, t->cap * sizeof(*t->heap));
    }
    t->heap[t->n] = (struct entry){due, id};
    t->n++;
    sift_up(t, t->n - 1);
    return 0;
}

bool sb_sla_timers_cancel(struct sb_sla_timers *t, uint32_t id)
{
    if (id >= t->pos_cap || t->pos[id] == NOPOS)
        return false;
    size_t p = t->pos[id];
    t->pos[id] = NOPOS;
    t->n--;
    if (p < t->n) {
        struct entry last = t->heap[t->n];
        place(t, p, last);
        if (p > 0 && before(&last, &t->heap[(p - 1) / ARITY]))
            sift_up(t, p);
        else
            sift_down(t, p);
    }
    return true;
}

bool sb_sla_timers_armed(const struct sb_sla_timers *t, uint32_t id, int64_t *due)
{
    if (id >= t->pos_cap || t->pos[id] == NOPOS)
        return false;
    if (due != NULL)
        *due = t->heap[t->pos[id]].due;
    return true;
}

bool sb_sla_timers_peek(const struct sb_sla_timers *t, uint32_t *id, int64_t *due)
{
    if (t->n == 0)
        return false;
    *id = t->heap[0].id;
    *due = t->heap[0].due;
    return true;
}

bool sb_sla_timers_pop(struct sb_sla_timers *t, int64_t now, uint32_t *id, int64_t *due)
{
    if (t->n == 0 || t->heap[0].due > now)
        return false;
    *id = t->heap[0].id;
    *due = t->heap[0].due;
    sb_sla_timers_cancel(t, *id);
    return true;
}

size_t sb_sla_timers_count(const struct sb_sla_timers *t)
{
    return t->n;
}

size_t sb_sla_timers_bytes(const struct sb_sla_timers *t)
{
    return sizeof(*t) + t->cap * sizeof(*t->heap) + t->pos_cap * sizeof(*t->pos);
}
