/* The SLA engine: every active clock of one instance, keyed by (ticket, kind), with
 * their calendars and one timer each — what sb-slawatch drives from its consumer loop.
 *
 * The service turns events into calls (ticket.triaged → start, ticket.status_changed
 * to pending_customer → pause, … see docs/slawatch-core.md) passing the event's own
 * time, and calls sb_sla_engine_advance with the current time after each batch; every
 * call appends the events to produce. Each call first takes the clock's own steps due
 * by the call's instant, so a breach is never lost behind a late pause or reply. On a
 * restart it restores the clocks (sb_sla_engine_restore) and the first advance fires
 * what fell due while it was down, once, in deadline order.
 *
 * Memory: about 190 bytes per clock (160 of clock state, 16 of heap entry, 4 of heap
 * position, 8–16 of hash index). One owner thread; no I/O. */
#ifndef SB_SLAWATCH_ENGINE_H
#define SB_SLAWATCH_ENGINE_H

#include "calendar.h"
#include "clock.h"
#include "sla.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* For the ticket operations: every clock (and follow-up) of the ticket. */
#define SB_SLA_ALL (-1)
#define SB_SLA_MAX_CALENDARS 4096

struct sb_sla_engine_opts {
    size_t expected_clocks;    /* storage reserved up front (0: grows from 1024) */
    size_t max_clocks;         /* starts beyond are refused with SB_E_TOOBIG (16 M) */
    int64_t reescalate_max_ms; /* further interval of an untouched breach: min(target,
                                  this) in the clock's time base (3 600 000) */
};

void sb_sla_engine_opts_default(struct sb_sla_engine_opts *o);

struct sb_sla_engine;

/* A new engine (o NULL: defaults). Returns NULL with errstr for invalid options. */
struct sb_sla_engine *sb_sla_engine_new(const struct sb_sla_engine_opts *o, char *errstr,
                                        size_t errstr_size);

/* Frees the engine, its clocks and its calendars; NULL is accepted. */
void sb_sla_engine_destroy(struct sb_sla_engine *e);

/* Adds a calendar (takes ownership, also on failure); its index (1…) in *index.
 * Returns 0 or SB_E_TOOBIG. */
int sb_sla_engine_add_calendar(struct sb_sla_engine *e, struct sb_cal *cal, uint16_t *index);

/* Replaces the calendar at index (takes ownership, also on failure) and replans every
 * running clock that uses it. Returns 0 or SB_E_NOENT. */
int sb_sla_engine_replace_calendar(struct sb_sla_engine *e, uint16_t index, struct sb_cal *cal);

/* The calendar at index (borrowed) or NULL; the index of a calendar id (0 or
 * SB_E_NOENT). */
const struct sb_cal *sb_sla_engine_calendar(const struct sb_sla_engine *e, uint16_t index);
int sb_sla_engine_find_calendar(const struct sb_sla_engine *e, const char *id, uint16_t *index);

/* Starts a clock. Returns 0, SB_E_CONFLICT when the clock exists (a replayed start:
 * nothing changes; use restart after a reopen), SB_E_NOENT for an unknown calendar,
 * SB_E_INVAL, SB_E_TOOBIG. */
int sb_sla_engine_start(struct sb_sla_engine *e, const struct sb_sla_start *s,
                        struct sb_sla_events *out);

/* Restarts a clock for a new cycle (ticket reopened), or starts it when unknown.
 * Returns 0, SB_E_NOENT, SB_E_INVAL, SB_E_TOOBIG. */
int sb_sla_engine_restart(struct sb_sla_engine *e, const struct sb_sla_start *s,
                          struct sb_sla_events *out);

/* Operations on clock kind of a ticket, or on all its clocks with kind SB_SLA_ALL
 * (clocks in another state are skipped then). Return 0, SB_E_NOENT (no such clock),
 * SB_E_STATE (not in a state that allows it; a replay), SB_E_INVAL. */
int sb_sla_engine_pause(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                        struct sb_sla_events *out);
int sb_sla_engine_resume(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                         struct sb_sla_events *out);
int sb_sla_engine_touch(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                        struct sb_sla_events *out);
/* met: stopped by what it measures; otherwise cancelled. */
int sb_sla_engine_stop(struct sb_sla_engine *e, const char *ticket_id, int kind, int64_t at_ms,
                       bool met, struct sb_sla_events *out);
/* A new band and target for one clock (band change, declared period). */
int sb_sla_engine_retarget(struct sb_sla_engine *e, const char *ticket_id, int kind,
                           enum sb_sla_band band, const struct sb_sla_target *t, int64_t at_ms,
                           struct sb_sla_events *out);
/* The same, moving the clock onto calendar index cal (0: none): the team of the ticket
 * became known and brings its own policy rows and calendar. The time counted so far is
 * kept (counted on the previous calendar up to at_ms). Returns as above, SB_E_NOENT also
 * for an unknown calendar. */
int sb_sla_engine_retarget_cal(struct sb_sla_engine *e, const char *ticket_id, int kind,
                               enum sb_sla_band band, const struct sb_sla_target *t, uint16_t cal,
                               int64_t at_ms, struct sb_sla_events *out);

/* Schedules a follow-up (SB_SLA_FOLLOWUP_CALLBACK or _CSAT) due at due_ms. Returns 0,
 * SB_E_CONFLICT when scheduled already, SB_E_INVAL, SB_E_TOOBIG. */
int sb_sla_engine_followup(struct sb_sla_engine *e, const char *ticket_id, int kind,
                           int64_t due_ms);

/* Forgets a clock (kind or SB_SLA_ALL) — after the ticket is archived, say. Returns 0
 * or SB_E_NOENT. */
int sb_sla_engine_remove(struct sb_sla_engine *e, const char *ticket_id, int kind);

/* Takes the steps due by now_ms across all clocks in deadline order (equal instants by
 * slot), at most max_steps of them (each step appends one to three events). Returns
 * the number of steps taken. */
size_t sb_sla_engine_advance(struct sb_sla_engine *e, int64_t now_ms, size_t max_steps,
                             struct sb_sla_events *out);

/* The earliest pending step, SB_SLA_NEVER when none (the service's poll timeout). */
int64_t sb_sla_engine_next_due(const struct sb_sla_engine *e);

/* The clock of (ticket, kind), borrowed until the next call that changes the engine;
 * NULL when unknown. */
const struct sb_sla_clock *sb_sla_engine_get(const struct sb_sla_engine *e, const char *ticket_id,
                                             int kind);

/* Puts back a clock from a snapshot (copied, checked, replanned on its calendar,
 * replacing a clock of the same key). Returns 0, SB_E_INVAL, SB_E_NOENT (unknown
 * calendar) or SB_E_TOOBIG. */
int sb_sla_engine_restore(struct sb_sla_engine *e, const struct sb_sla_clock *snap);

/* Calls fn for every clock, in slot order (for snapshots). fn must not change the
 * engine. */
void sb_sla_engine_foreach(const struct sb_sla_engine *e,
                           void (*fn)(const struct sb_sla_clock *c, void *arg), void *arg);

struct sb_sla_engine_stats {
    size_t clocks;                    /* stored, in any state */
    size_t by_state[SB_SLA_DONE + 1]; /* index: enum sb_sla_state */
    size_t armed;                     /* timers pending */
    size_t bytes;                     /* memory held by clocks, index and timers */
};

void sb_sla_engine_stats(const struct sb_sla_engine *e, struct sb_sla_engine_stats *st);

#endif
