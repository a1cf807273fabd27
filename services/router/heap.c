/* Indexed binary heaps of the routing core (see route_int.h): tickets by rank, free
 * agents by policy. Every move writes the entry's new position back into the ticket or
 * the agent's membership, so any entry can be removed or re-keyed in O(log n). */
#include "route_int.h"

#include "sb/util.h"

#include <assert.h>
#include <stdlib.h>

#define RT_SEARCH_MAX 64 /* bound on cfg.exclusion_search (validated in core.c) */

/* ---------------------------------------------------------------- ticket heaps */

static int tent_before(const struct rt_tent *x, const struct rt_tent *y)
{
    if (x->rank != y->rank)
        return x->rank < y->rank;
    return x->seq < y->seq;
}

static void tset(struct sb_router *r, struct rt_theap *h, int which, uint32_t i, struct rt_tent e)
{
    h->v[i] = e;
    r->tickets[e.t].pos[which] = (int32_t)i;
}

static void tsift_up(struct sb_router *r, struct rt_theap *h, int which, uint32_t i)
{
    struct rt_tent e = h->v[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!tent_before(&e, &h->v[p]))
            break;
        tset(r, h, which, i, h->v[p]);
        i = p;
    }
    tset(r, h, which, i, e);
}

static void tsift_down(struct sb_router *r, struct rt_theap *h, int which, uint32_t i)
{
    struct rt_tent e = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && tent_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!tent_before(&h->v[c], &e))
            break;
        tset(r, h, which, i, h->v[c]);
        i = c;
    }
    tset(r, h, which, i, e);
}

void rt_theap_free(struct rt_theap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

void rt_theap_push(struct sb_router *r, struct rt_theap *h, int which, uint32_t t, int64_t rank)
{
    struct rt_tent e = {rank, r->tickets[t].seq, t};
    assert(r->tickets[t].pos[which] < 0);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->v = sb_realloc(h->v, (size_t)h->cap * sizeof(*h->v));
    }
    h->v[h->n++] = e;
    tsift_up(r, h, which, h->n - 1);
}

void rt_theap_remove(struct sb_router *r, struct rt_theap *h, int which, int32_t pos)
{
    uint32_t i = (uint32_t)pos;
    uint32_t t = h->v[i].t;
    assert(pos >= 0 && i < h->n && r->tickets[t].pos[which] == pos);
    r->tickets[t].pos[which] = -1;
    h->n--;
    if (i == h->n)
        return;
    h->v[i] = h->v[h->n];
    /* The entry moved into the hole may belong above or below it. */
    if (i > 0 && tent_before(&h->v[i], &h->v[(i - 1) / 2]))
        tsift_up(r, h, which, i);
    else
        tsift_down(r, h, which, i);
}

int32_t rt_theap_best_for(const struct sb_router *r, const struct rt_theap *h, uint32_t a,
                          int limit)
{
    uint32_t cand[2 * RT_SEARCH_MAX + 2];
    uint32_t ncand = 0;

    if (h->n == 0)
        return -1;
    if (a == RT_NONE || !rt_excluded(&r->tickets[h->v[0].t], a))
        return 0;
    /* Best-first walk from the root: a parent always precedes its children, so the best
     * of the frontier is the best entry not yet looked at. */
    cand[ncand++] = 0;
    for (int step = 0; step < limit && ncand > 0; step++) {
        uint32_t best = 0, i;
        for (uint32_t k = 1; k < ncand; k++) {
            if (tent_before(&h->v[cand[k]], &h->v[cand[best]]))
                best = k;
        }
        i = cand[best];
        cand[best] = cand[--ncand];
        if (!rt_excluded(&r->tickets[h->v[i].t], a))
            return (int32_t)i;
        if (2 * i + 1 < h->n)
            cand[ncand++] = 2 * i + 1;
        if (2 * i + 2 < h->n)
            cand[ncand++] = 2 * i + 2;
    }
    return -1;
}

uint64_t rt_theap_ahead(const struct rt_theap *h, int32_t pos)
{
    /* Depth-first over the entries that precede the target: an entry that does not
     * precede it has no descendant that does, so the walk costs the answer. */
    uint32_t stack[128];
    uint32_t nstack = 0;
    uint64_t ahead = 0;
    const struct rt_tent *target = &h->v[pos];

    if (h->n == 0)
        return 0;
    stack[nstack++] = 0;
    while (nstack > 0) {
        uint32_t i = stack[--nstack];
        if (!tent_before(&h->v[i], target))
            continue;
        ahead++;
        /* A depth-first stack keeps at most one pending sibling per level. */
        if (2 * i + 2 < h->n)
            stack[nstack++] = 2 * i + 2;
        if (2 * i + 1 < h->n)
            stack[nstack++] = 2 * i + 1;
    }
    return ahead;
}

/* ---------------------------------------------------------------- agent heaps */

/* Whether x goes before y under the router's policy; the last key, the agent's index
 * (order of addition), makes the order total and the choice deterministic. */
static int aent_before(const struct sb_router *r, struct rt_aent x, struct rt_aent y)
{
    const struct rt_agent *a = &r->agents[x.agent], *b = &r->agents[y.agent];

    if (r->cfg.policy == SB_ROUTE_HIGHEST_SKILL) {
        if (x.score != y.score)
            return x.score > y.score;
    }
    if (r->cfg.policy == SB_ROUTE_LONGEST_IDLE) {
        if ((a->busy == 0) != (b->busy == 0))
            return a->busy == 0;
        if (a->since_us != b->since_us)
            return a->since_us < b->since_us;
        if (a->occ != b->occ)
            return a->occ < b->occ;
    } else {
        if (a->occ != b->occ)
            return a->occ < b->occ;
        if (a->since_us != b->since_us)
            return a->since_us < b->since_us;
    }
    return x.agent < y.agent;
}

static void aset(struct sb_router *r, struct rt_aheap *h, uint32_t i, struct rt_aent e)
{
    h->v[i] = e;
    rt_mem_of(r, e)->pos = (int32_t)i;
}

static void asift_up(struct sb_router *r, struct rt_aheap *h, uint32_t i)
{
    struct rt_aent e = h->v[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!aent_before(r, e, h->v[p]))
            break;
        aset(r, h, i, h->v[p]);
        i = p;
    }
    aset(r, h, i, e);
}

static void asift_down(struct sb_router *r, struct rt_aheap *h, uint32_t i)
{
    struct rt_aent e = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && aent_before(r, h->v[c + 1], h->v[c]))
            c++;
        if (!aent_before(r, h->v[c], e))
            break;
        aset(r, h, i, h->v[c]);
        i = c;
    }
    aset(r, h, i, e);
}

void rt_aheap_free(struct rt_aheap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

void rt_aheap_push(struct sb_router *r, struct rt_aheap *h, struct rt_aent e)
{
    assert(rt_mem_of(r, e)->pos < 0);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->v = sb_realloc(h->v, (size_t)h->cap * sizeof(*h->v));
    }
    h->v[h->n++] = e;
    asift_up(r, h, h->n - 1);
}

void rt_aheap_fix(struct sb_router *r, struct rt_aheap *h, int32_t pos)
{
    uint32_t i = (uint32_t)pos;
    assert(pos >= 0 && i < h->n);
    if (i > 0 && aent_before(r, h->v[i], h->v[(i - 1) / 2]))
        asift_up(r, h, i);
    else
        asift_down(r, h, i);
}

void rt_aheap_remove(struct sb_router *r, struct rt_aheap *h, int32_t pos)
{
    uint32_t i = (uint32_t)pos;
    assert(pos >= 0 && i < h->n && rt_mem_of(r, h->v[i])->pos == pos);
    rt_mem_of(r, h->v[i])->pos = -1;
    h->n--;
    if (i == h->n)
        return;
    h->v[i] = h->v[h->n];
    rt_aheap_fix(r, h, (int32_t)i);
}

int32_t rt_aheap_best_for(const struct sb_router *r, const struct rt_aheap *h, uint32_t t,
                          int limit)
{
    const struct rt_ticket *tk = &r->tickets[t];
    uint32_t cand[2 * RT_SEARCH_MAX + 2];
    uint32_t ncand = 0;

    if (h->n == 0)
        return -1;
    if (tk->nexclude == 0 || !rt_excluded(tk, h->v[0].agent))
        return 0;
    cand[ncand++] = 0;
    for (int step = 0; step < limit && ncand > 0; step++) {
        uint32_t best = 0, i;
        for (uint32_t k = 1; k < ncand; k++) {
            if (aent_before(r, h->v[cand[k]], h->v[cand[best]]))
                best = k;
        }
        i = cand[best];
        cand[best] = cand[--ncand];
        if (!rt_excluded(tk, h->v[i].agent))
            return (int32_t)i;
        if (2 * i + 1 < h->n)
            cand[ncand++] = 2 * i + 1;
        if (2 * i + 2 < h->n)
            cand[ncand++] = 2 * i + 2;
    }
    return -1;
}
