/* Hash index of the routing core (see idmap.h). */
#include "idmap.h"

#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

uint32_t rt_hash(const void *key, size_t len)
{
    /* Eight bytes a step, each folded in by a multiply; the finalizer mixes the high
     * bits down into the low ones, which pick the slot. */
    const unsigned char *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
    while (len >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, p, len);
    h = (h ^ mix64(w ^ 0xa0761d6478bd642fULL)) * 0x9e3779b97f4a7c15ULL;
    return (uint32_t)mix64(h);
}

void rt_idmap_init(struct rt_idmap *m)
{
    memset(m, 0, sizeof(*m));
}

void rt_idmap_free(struct rt_idmap *m)
{
    free(m->hash);
    free(m->val);
    memset(m, 0, sizeof(*m));
}

static void idmap_insert(struct rt_idmap *m, uint32_t h, uint32_t v)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = h & mask;
    while (m->val[i] != 0)
        i = (i + 1) & mask;
    m->hash[i] = h;
    m->val[i] = v;
}

static void idmap_grow(struct rt_idmap *m)
{
    uint32_t *oh = m->hash, *ov = m->val, ocap = m->cap;
    m->cap = ocap ? ocap * 2 : 64;
    m->hash = sb_calloc(m->cap, sizeof(*m->hash));
    m->val = sb_calloc(m->cap, sizeof(*m->val));
    for (uint32_t i = 0; i < ocap; i++) {
        if (ov[i] != 0)
            idmap_insert(m, oh[i], ov[i]);
    }
    free(oh);
    free(ov);
}

uint32_t rt_idmap_get(const struct rt_idmap *m, const void *key, size_t len, uint32_t h,
                      rt_key_fn fn, const void *ctx)
{
    uint32_t mask, i;
    if (m->cap == 0)
        return RT_NONE;
    mask = m->cap - 1;
    for (i = h & mask; m->val[i] != 0; i = (i + 1) & mask) {
        size_t klen;
        const void *k;
        if (m->hash[i] != h)
            continue;
        k = fn(ctx, m->val[i] - 1, &klen);
        if (klen == len && memcmp(k, key, len) == 0)
            return m->val[i] - 1;
    }
    return RT_NONE;
}

void rt_idmap_put(struct rt_idmap *m, uint32_t h, uint32_t idx)
{
    /* At most 5/8 full: probes stay short. */
    if ((uint64_t)(m->n + 1) * 8 > (uint64_t)m->cap * 5)
        idmap_grow(m);
    idmap_insert(m, h, idx + 1);
    m->n++;
}

void rt_idmap_del(struct rt_idmap *m, uint32_t h, uint32_t idx)
{
    uint32_t mask, i, j;
    if (m->cap == 0)
        return;
    mask = m->cap - 1;
    for (i = h & mask; m->val[i] != idx + 1; i = (i + 1) & mask) {
        if (m->val[i] == 0)
            return;
    }
    /* Backward shift: pull later entries of the run into the hole when their home slot
     * does not lie cyclically in (hole, their slot]. */
    for (j = (i + 1) & mask; m->val[j] != 0; j = (j + 1) & mask) {
        uint32_t home = m->hash[j] & mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->hash[i] = m->hash[j];
        m->val[i] = m->val[j];
        i = j;
    }
    m->val[i] = 0;
    m->n--;
}
