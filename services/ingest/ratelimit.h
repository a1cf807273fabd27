/* Per-source rate limiting: a token bucket per source (client address, or channel +
 * address) in a fixed-size table, per instance. When the table is full the oldest
 * idle bucket is reused, so memory stays bounded under address floods. */
#ifndef SB_INGEST_RATELIMIT_H
#define SB_INGEST_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sb_ratelimit;

/* rate: tokens per second; burst: bucket size; slots: table size. */
struct sb_ratelimit *sb_ratelimit_new(double rate, double burst, size_t slots);
void sb_ratelimit_destroy(struct sb_ratelimit *rl);

/* Takes one token for source at now_ms. Returns 0 when allowed, otherwise the
 * number of seconds to wait (>= 1) for the Retry-After header. Thread-safe. */
int sb_ratelimit_take(struct sb_ratelimit *rl, const char *source, int64_t now_ms);

#endif
