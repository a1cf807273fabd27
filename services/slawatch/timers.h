/* Timers for a million clocks: an indexed 4-ary min-heap of (due, id), where id is a
 * small integer chosen by the caller (the engine's clock slot). Each id has at most one
 * timer; its heap position is kept in a side array, so arming, moving and cancelling
 * are O(log4 n) and finding the earliest is O(1). Equal instants come out by ascending
 * id, so the order is a function of the contents alone.
 *
 * Costs: 16 bytes per armed timer plus 4 bytes per id ever used. A 4-ary heap has half
 * the depth of a binary one and its four children share a cache line (D. Knuth, TAOCP
 * vol. 3, 5.2.3; LaMarca and Ladner, "The influence of caches on the performance of
 * heaps", 1996). Not thread-safe: one owner. Pure logic. */
#ifndef SB_SLAWATCH_TIMERS_H
#define SB_SLAWATCH_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ids are below this bound. */
#define SB_SLA_TIMERS_MAX_ID 0xfffffff0u

struct sb_sla_timers;

/* A new, empty structure with room for capacity_hint timers (0: a small default). */
struct sb_sla_timers *sb_sla_timers_new(size_t capacity_hint);

/* Frees it; NULL is accepted. */
void sb_sla_timers_destroy(struct sb_sla_timers *t);

/* Arms id at due, or moves it there when already armed. Returns 0 or SB_E_INVAL for an
 * id out of range. */
int sb_sla_timers_set(struct sb_sla_timers *t, uint32_t id, int64_t due);

/* Disarms id. Returns true when it was armed. */
bool sb_sla_timers_cancel(struct sb_sla_timers *t, uint32_t id);

/* True when id is armed; its instant in *due (may be NULL). */
bool sb_sla_timers_armed(const struct sb_sla_timers *t, uint32_t id, int64_t *due);

/* The earliest timer without removing it. Returns false when there is none. */
bool sb_sla_timers_peek(const struct sb_sla_timers *t, uint32_t *id, int64_t *due);

/* Removes and returns the earliest timer when it is due (≤ now). Returns false when
 * nothing is due. */
bool sb_sla_timers_pop(struct sb_sla_timers *t, int64_t now, uint32_t *id, int64_t *due);

/* Number of armed timers; bytes allocated. */
size_t sb_sla_timers_count(const struct sb_sla_timers *t);
size_t sb_sla_timers_bytes(const struct sb_sla_timers *t);

#endif
