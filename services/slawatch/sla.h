/* The vocabulary of the SLA core: clock kinds, bands, channels, declared periods and
 * escalation levels with their schema names (proto/events/defs.schema.json), the
 * target a policy gives a clock, and the events the core produces (sb.sla.v1) with
 * their deterministic identity: the same clock history always yields the same id
 * input, so a replay or a restart creates nothing new downstream. Pure logic. */
#ifndef SB_SLAWATCH_SLA_H
#define SB_SLAWATCH_SLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No instant": a clock without a pending step. */
#define SB_SLA_NEVER INT64_MAX
/* Ticket ids: ^[A-Za-z0-9._-]{1,63}$ (defs.schema.json ticket_id). */
#define SB_SLA_TICKET_MAX 64
/* Warning fractions per target, in basis points (1/10 000) of the target. */
#define SB_SLA_MAX_WARN 4
/* Room for an id input: ticket, kind, tag and two instants. */
#define SB_SLA_ID_INPUT_MAX 160

/* Clock kinds in the order of the schema's clock_kind enum, then the two follow-up
 * timers (followup.due), which share the machinery but are not clocks. */
enum sb_sla_kind {
    SB_SLA_FIRST_RESPONSE = 0,
    SB_SLA_RESOLUTION,
    SB_SLA_CLAIM,
    SB_SLA_FIRST_TOUCH,
    SB_SLA_ORDER_ANOMALY_CONTACT,
    SB_SLA_RETURN_REVIEW,
    SB_SLA_COMPLEX_COMPLAINT,
    SB_SLA_AFTER_SALE_FIRST_RESPONSE,
    SB_SLA_PUBLIC_NEGATIVE,
    SB_SLA_INCIDENT_REPORT,
    SB_SLA_CLOCK_KINDS, /* number of clock kinds */
    SB_SLA_FOLLOWUP_CALLBACK = SB_SLA_CLOCK_KINDS,
    SB_SLA_FOLLOWUP_CSAT,
    SB_SLA_KINDS
};

enum sb_sla_band { SB_BAND_NONE = 0, SB_BAND_P1, SB_BAND_P2, SB_BAND_P3, SB_BAND_P4 };

enum sb_sla_channel {
    SB_CHANNEL_ANY = 0,
    SB_CHANNEL_CHAT,
    SB_CHANNEL_EMAIL,
    SB_CHANNEL_PHONE,
    SB_CHANNEL_WECHAT,
    SB_CHANNEL_SOCIAL,
    SB_CHANNEL_WEB,
    SB_CHANNEL_API,
};

enum sb_sla_period { SB_PERIOD_NONE = 0, SB_PERIOD_PROMOTION_PEAK, SB_PERIOD_OUTAGE };

enum sb_sla_level { SB_LEVEL_AGENT = 0, SB_LEVEL_LEAD, SB_LEVEL_SUPERVISOR };

/* The reason enum of sla.escalated. */
enum sb_sla_reason {
    SB_REASON_BREACHED = 0,
    SB_REASON_P1_IMMEDIATE,
    SB_REASON_COMPLAINT,
    SB_REASON_CLAIM_TIMEOUT,
    SB_REASON_LEGAL_PR,
    SB_REASON_PUBLIC_NEGATIVE,
};

/* Schema names and back. _name returns NULL for a value out of range; _parse returns
 * the value or -1 (band "P1".."P4", channel and period names, "" is not accepted). */
const char *sb_sla_kind_name(int kind); /* followups: "callback", "csat_survey" */
int sb_sla_kind_parse(const char *s);   /* clock kinds only */
const char *sb_sla_band_name(int band);
int sb_sla_band_parse(const char *s);
const char *sb_sla_channel_name(int ch);
int sb_sla_channel_parse(const char *s);
const char *sb_sla_period_name(int period);
int sb_sla_period_parse(const char *s);
const char *sb_sla_level_name(int level);
int sb_sla_level_parse(const char *s);
const char *sb_sla_reason_name(int reason);

/* True for a string that is a valid ticket id. */
bool sb_sla_ticket_id_valid(const char *s);

/* What a clock is asked to meet, as chosen from the policy table (policy.h) or built
 * by hand. Exactly one of target_ms and working_days is set. */
struct sb_sla_target {
    int64_t target_ms;  /* duration; business ms when business_time */
    int working_days;   /* > 0: the close of the N-th working day of the calendar */
    bool business_time; /* count only within the calendar's business hours */
    int n_warn;
    uint16_t warn_bp[SB_SLA_MAX_WARN]; /* ascending, each in 1..9999 */
    enum sb_sla_level notify_at_start; /* AGENT: nobody; LEAD/SUPERVISOR told at start */
    int64_t policy_id;                 /* sla_policies.id (0: built in or by hand) */
    enum sb_sla_period period;         /* the declared period whose row was chosen */
};

/* Checks a target (ranges, fractions ascending). Returns 0 or SB_E_INVAL. */
int sb_sla_target_check(const struct sb_sla_target *t);

enum sb_sla_event_type {
    SB_SLA_EV_STARTED = 0, /* sla.started: start, restart (reopen) or re-target */
    SB_SLA_EV_PAUSED,      /* sla.paused, state "paused" */
    SB_SLA_EV_RESUMED,     /* sla.paused, state "resumed" */
    SB_SLA_EV_WARNING,     /* sla.warning */
    SB_SLA_EV_BREACHED,    /* sla.breached */
    SB_SLA_EV_ESCALATED,   /* sla.escalated */
    SB_SLA_EV_FOLLOWUP,    /* followup.due */
};

/* One produced event. Instants are ms since the epoch. due_ms and target_at_ms are
 * functions of the clock's inputs only (never of when the core ran), so they identify
 * the event; fired_ms is when it was produced. */
struct sb_sla_event {
    enum sb_sla_event_type type;
    enum sb_sla_kind kind;
    enum sb_sla_band band;
    char ticket_id[SB_SLA_TICKET_MAX];
    int64_t due_ms;       /* the instant the event belongs to (see docs/slawatch-core.md) */
    int64_t fired_ms;     /* the "now" of the call that produced it */
    int64_t target_at_ms; /* the clock's deadline (SB_SLA_NEVER when it has none) */
    int64_t target_ms;    /* the target in its time base (business ms when business_time) */
    bool business_time;
    bool restart;                        /* STARTED: a restart after a reopen */
    bool retarget;                       /* STARTED: a re-target of a running clock */
    bool again;                          /* ESCALATED: untouched since the previous escalation */
    uint16_t fraction_bp;                /* WARNING */
    int64_t remaining_ms;                /* WARNING: target left at the warning, in the time base */
    int64_t late_ms;                     /* BREACHED: fired_ms − target_at_ms */
    int64_t paused_ms;                   /* PAUSED/RESUMED: calendar ms paused so far this cycle */
    enum sb_sla_level from_level, level; /* ESCALATED */
    enum sb_sla_reason reason;           /* ESCALATED */
    int64_t policy_id;                   /* STARTED */
    enum sb_sla_period period;           /* STARTED */
    uint16_t cal;                        /* STARTED: calendar index (0: none) */
};

/* A growable list of events; zero-initialise it. */
struct sb_sla_events {
    struct sb_sla_event *v;
    size_t n, cap;
};

/* Appends a zeroed event and returns it (the list grows as needed). */
struct sb_sla_event *sb_sla_events_push(struct sb_sla_events *ev);
/* Empties the list, keeping its memory. */
void sb_sla_events_clear(struct sb_sla_events *ev);
/* Frees the memory of the list (not the struct). */
void sb_sla_events_free(struct sb_sla_events *ev);

/* The deterministic id input of an event, "<ticket>:<kind>/<tag>/<due_ms>/<target_at_ms>"
 * with tag started|restarted|retargeted|paused|resumed|warning-<bp>|breached|
 * escalated-<level>|followup (e.g. "T-1:resolution/warning-7500/1716196801250/
 * 1716200401250"). Returns 0 or SB_E_TOOBIG. */
int sb_sla_event_id_input(const struct sb_sla_event *ev, char *out, size_t out_size);

/* A UUIDv7 derived from the id input: the 48-bit time field is due_ms, the other 74
 * bits come from SHA-256 of the id input. out receives 36 characters and a NUL. */
void sb_sla_event_uuid(const struct sb_sla_event *ev, char out[37]);

/* The schema type of an event ("sla.started", "sla.paused", … "followup.due"). */
const char *sb_sla_event_type_name(enum sb_sla_event_type type);

#endif
