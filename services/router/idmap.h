/* An open-addressing hash index from a byte-string key to a 32-bit index, private to the
 * routing core. The keys live in the caller's objects and are read back through a
 * callback, so a slot holds only a hash and an index (8 bytes); linear probing with
 * backward-shift deletion, so lookups never walk tombstones. */
#ifndef SB_ROUTER_IDMAP_H
#define SB_ROUTER_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define RT_NONE UINT32_MAX

/* Returns the key of object idx and its length. */
typedef const void *(*rt_key_fn)(const void *ctx, uint32_t idx, size_t *len);

struct rt_idmap {
    uint32_t *hash;
    uint32_t *val; /* index + 1; 0: empty */
    uint32_t cap;  /* a power of two, or 0 */
    uint32_t n;
};

uint32_t rt_hash(const void *key, size_t len);

void rt_idmap_init(struct rt_idmap *m);
void rt_idmap_free(struct rt_idmap *m);

/* The index stored for key (hash h), or RT_NONE. */
uint32_t rt_idmap_get(const struct rt_idmap *m, const void *key, size_t len, uint32_t h,
                      rt_key_fn fn, const void *ctx);

/* Stores idx under hash h; the key must not be present. */
void rt_idmap_put(struct rt_idmap *m, uint32_t h, uint32_t idx);

/* Removes the entry holding idx under hash h, if any. */
void rt_idmap_del(struct rt_idmap *m, uint32_t h, uint32_t idx);

#endif
