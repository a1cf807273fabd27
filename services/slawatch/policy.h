/* SLA policies (table sla_policies) and declared periods (table declared_periods):
 * which target a clock gets for a band, channel, team and declared period.
 *
 * A row applies to a situation (its kind); band, channel, team and period narrow it,
 * empty meaning any. Among the rows that match and carry the target the clock needs,
 * the most specific wins, ranked period > team > channel > band: a row for the
 * declared period in force replaces the rows without one (docs/database.md). Which
 * target field starts which clock:
 *   band rows:            first_response_s → first_response, resolution_s or
 *                         resolution_business_days → resolution
 *   complex_complaint:    resolution_s or resolution_business_days
 *   every other kind:     first_response_s → the clock of the same name
 * The service fills plain rows from PostgreSQL; sb_sla_policies_new checks and
 * compiles them into an immutable table (safe to share between threads; swap whole
 * tables on reload). sb_sla_policies_default gives the defaults of SPEC §1–§4, the
 * same as deploy/config/policies.json. Pure logic. */
#ifndef SB_SLAWATCH_POLICY_H
#define SB_SLAWATCH_POLICY_H

#include "sla.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_SLA_MAX_POLICIES 100000

/* One row of sla_policies, strings as stored ("" for NULL). */
struct sb_sla_policy_row {
    int64_t id;
    char kind[64];                /* band, first_touch, claim, order_anomaly_contact, … */
    char band[4];                 /* "", P1–P4 (required for kind band) */
    char channel[16];             /* "", chat, email, phone, wechat, social, web, api */
    char team_id[64];             /* "" or a team id */
    char period_kind[16];         /* "", promotion_peak, outage */
    int64_t first_response_s;     /* 0: unset */
    int64_t resolution_s;         /* 0: unset */
    int resolution_business_days; /* 0: unset */
    bool business_time;
    int n_warn;                             /* 0: no warnings */
    double warn_fractions[SB_SLA_MAX_WARN]; /* ascending, in (0, 1) */
    char notify_at_start[16];               /* "", lead, supervisor */
};

struct sb_sla_policies;

/* Checks and compiles rows (copied). Returns a new table, or NULL with the first
 * problem in errstr ("policy 12: unknown kind \"bands\""): unknown kind, band, channel,
 * period or level, a band row without band, a target out of range (1 s–400 days,
 * 1–366 working days, not resolution_s together with days), no target, fractions not
 * ascending within (0, 1), more than SB_SLA_MAX_POLICIES rows, a repeated key. */
struct sb_sla_policies *sb_sla_policies_new(const struct sb_sla_policy_row *rows, size_t n,
                                            char *errstr, size_t errstr_size);

/* The built-in defaults (SPEC §1–§4). Never NULL. */
struct sb_sla_policies *sb_sla_policies_default(void);

/* The rows of the built-in defaults (for loaders and tests); *n receives the count. */
const struct sb_sla_policy_row *sb_sla_policies_default_rows(size_t *n);

void sb_sla_policies_destroy(struct sb_sla_policies *p);

size_t sb_sla_policies_count(const struct sb_sla_policies *p);

/* The situation of a clock. team_id NULL or "" matches only rows for any team. */
struct sb_sla_situation {
    enum sb_sla_band band;
    enum sb_sla_channel channel;
    const char *team_id;
    enum sb_sla_period period; /* the declared period in force, NONE outside */
};

/* The target for clock kind in situation s. Returns 0 with *out filled, SB_E_NOENT when
 * no row applies (that clock does not run: e.g. first touch on email), SB_E_INVAL for a
 * kind that is not a clock. */
int sb_sla_policies_choose(const struct sb_sla_policies *p, enum sb_sla_kind kind,
                           const struct sb_sla_situation *s, struct sb_sla_target *out);

/* One row of declared_periods. */
struct sb_sla_period_row {
    int64_t id;
    enum sb_sla_period kind;
    int64_t starts_ms, ends_ms; /* [starts, ends) */
    const char *notice;         /* canned customer notice, borrowed (may be NULL) */
};

/* The period in force at at_ms: an outage before a promotion peak, then the latest
 * start, then the highest id. Returns its index in v, or -1 when none. */
int sb_sla_period_active(const struct sb_sla_period_row *v, size_t n, int64_t at_ms);

#endif
