/* One SLA clock per (ticket, kind): a state machine that starts with a target, pauses
 * while the ticket waits on the customer, warns at fractions of the target, breaches,
 * escalates agent → lead → supervisor (P1 straight to supervisor) and again while
 * left untouched, stops when met, restarts on reopen and keeps its elapsed time when
 * re-targeted. It also carries the one-shot follow-up timers (callback, CSAT survey).
 *
 * Time is passed in; nothing here reads a clock. A clock only changes through these
 * functions; every change that the outside must know about is appended to an event
 * list, and next_due says when the clock next needs sb_sla_clock_fire. The struct is a
 * plain value so that a service can snapshot it (all fields) and an engine can store a
 * million of them in one array; restore one through sb_sla_clock_check first.
 * The transition table is in docs/slawatch-core.md. Pure logic. */
#ifndef SB_SLAWATCH_CLOCK_H
#define SB_SLAWATCH_CLOCK_H

#include "calendar.h"
#include "sla.h"

#include <stdbool.h>
#include <stdint.h>

enum sb_sla_state {
    SB_SLA_FREE = 0,  /* unused storage */
    SB_SLA_RUNNING,   /* counting */
    SB_SLA_PAUSED,    /* waiting on the customer */
    SB_SLA_MET,       /* stopped by what it measured (reply, resolve, claim) */
    SB_SLA_CANCELLED, /* stopped without being met (ticket merged, closed, kind dropped) */
    SB_SLA_DONE,      /* a follow-up that fired */
};

#define SB_SLA_F_BUSINESS 0x01 /* the target counts business time */
#define SB_SLA_F_BREACHED 0x02 /* breached during this cycle (sticky until a restart) */

/* 160 bytes. Instants in ms since the epoch; durations in ms. */
struct sb_sla_clock {
    int64_t target_ms;  /* in the time base (business ms when SB_SLA_F_BUSINESS) */
    int64_t el_cal_ms;  /* calendar time counted before run_since */
    int64_t el_bus_ms;  /* business time counted before run_since (= el_cal_ms without a
                           calendar) */
    int64_t run_since;  /* RUNNING: last start/resume/re-target; PAUSED: the pause; MET,
                           CANCELLED: the stop */
    int64_t deadline;   /* RUNNING: target_at; otherwise as last known; followups: due */
    int64_t started_at; /* start of this cycle */
    int64_t paused_ms;  /* calendar time paused this cycle */
    int64_t esc_base;   /* the untouched interval counts from here (breach, escalation,
                           touch, resume, whichever is last) */
    int64_t next_due;   /* when sb_sla_clock_fire has work, or SB_SLA_NEVER */
    uint16_t warn_bp[SB_SLA_MAX_WARN];
    uint16_t last_warn_bp; /* highest fraction warned (10000 once breached) */
    uint16_t cal;          /* calendar index of the owner (0: none, calendar time only) */
    uint8_t kind;          /* enum sb_sla_kind */
    uint8_t band;          /* enum sb_sla_band */
    uint8_t state;         /* enum sb_sla_state */
    uint8_t level;         /* enum sb_sla_level reached so far */
    uint8_t n_warn;
    uint8_t flags; /* SB_SLA_F_* */
    uint8_t cycle; /* restarts so far (wraps) */
    uint8_t reserved;
    char ticket_id[SB_SLA_TICKET_MAX];
};

/* What the clock functions need besides the clock: its calendar (NULL: calendar time
 * only; business targets then count calendar time) and the cap of the further interval
 * after which an untouched breached clock escalates again: min(target, this), counted
 * in the clock's time base. */
struct sb_sla_env {
    const struct sb_cal *cal;
    int64_t reescalate_max_ms;
};

/* A clock to start: who, what, with which target, on which calendar, from when. */
struct sb_sla_start {
    const char *ticket_id;
    enum sb_sla_kind kind; /* a clock kind (not a follow-up) */
    enum sb_sla_band band; /* NONE allowed */
    struct sb_sla_target target;
    uint16_t cal;  /* calendar index, kept in the clock (the env gives the calendar) */
    int64_t at_ms; /* the origin of the measure (first contact, task created, …) */
};

/* Starts c (any previous content is overwritten; restart = true keeps the cycle count
 * and marks the event as a restart). Appends sla.started, and sla.escalated when the
 * target tells a level at start. Returns 0 or SB_E_INVAL (bad ticket id, kind, band or
 * target). A working-days target is turned into business time on the calendar here. */
int sb_sla_clock_start(struct sb_sla_clock *c, const struct sb_sla_env *env,
                       const struct sb_sla_start *s, bool restart, struct sb_sla_events *out);

/* Pauses a running clock at at_ms (waiting on the customer); appends sla.paused.
 * Returns 0 or SB_E_STATE when it is not running. Instants before the clock's last
 * change are taken as that change (events may arrive out of order). */
int sb_sla_clock_pause(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms,
                       struct sb_sla_events *out);

/* Resumes a paused clock: the deadline moves by the paused time, in the clock's time
 * base. Appends sla.paused (state resumed) with the new target. 0 or SB_E_STATE. */
int sb_sla_clock_resume(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms,
                        struct sb_sla_events *out);

/* Gives a running or paused clock a new band and target, keeping the time it already
 * counted (in both time bases, so a change of base is exact). Warnings already passed
 * under the new target fire at once unless given before; a breach stays recorded.
 * Appends sla.started (retarget) unless nothing changes. 0, SB_E_STATE or SB_E_INVAL. */
int sb_sla_clock_retarget(struct sb_sla_clock *c, const struct sb_sla_env *env,
                          enum sb_sla_band band, const struct sb_sla_target *t, int64_t at_ms,
                          struct sb_sla_events *out);

/* The same, moving the clock to calendar index cal whose calendar new_env gives (the
 * team of the ticket became known): the time counted up to at_ms is counted on the
 * calendar of env, what follows on the new one; a working-days target is turned into
 * business time on the new calendar. Nothing changes (and nothing is appended) when
 * band, calendar and target are the ones the clock has. */
int sb_sla_clock_retarget_cal(struct sb_sla_clock *c, const struct sb_sla_env *env,
                              const struct sb_sla_env *new_env, uint16_t cal, enum sb_sla_band band,
                              const struct sb_sla_target *t, int64_t at_ms,
                              struct sb_sla_events *out);

/* An agent acted on the ticket: the untouched interval restarts from at_ms. */
void sb_sla_clock_touch(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms);

/* Stops a running or paused clock: met (reply, resolve, claim) or cancelled. No event.
 * Returns 0 or SB_E_STATE. */
int sb_sla_clock_stop(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms,
                      bool met);

/* Makes c a one-shot follow-up (kind SB_SLA_FOLLOWUP_CALLBACK or _CSAT) due at due_ms.
 * Returns 0 or SB_E_INVAL. */
int sb_sla_clock_followup(struct sb_sla_clock *c, const char *ticket_id, enum sb_sla_kind kind,
                          int64_t due_ms);

/* Performs the earliest pending step when it is due (next_due ≤ now_ms): one warning,
 * or the breach with its escalation, or one further escalation, or the follow-up.
 * Steps due at the same instant come in that order. Returns 1 when a step was taken,
 * 0 when nothing was due. */
int sb_sla_clock_fire(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t now_ms,
                      struct sb_sla_events *out);

/* Takes every step due by now_ms, in order. Returns the number taken. */
int sb_sla_clock_fire_until(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t now_ms,
                            struct sb_sla_events *out);

/* Recomputes deadline and next_due from the state (after a restore or a change of the
 * calendar's content). */
void sb_sla_clock_replan(struct sb_sla_clock *c, const struct sb_sla_env *env);

/* Time counted so far as of now_ms, in calendar or business time. */
int64_t sb_sla_clock_elapsed(const struct sb_sla_clock *c, const struct sb_sla_env *env,
                             int64_t now_ms, bool business);

/* Checks a clock that comes from outside (a snapshot): every field in range. Returns
 * 0 or SB_E_INVAL. */
int sb_sla_clock_check(const struct sb_sla_clock *c);

#endif
