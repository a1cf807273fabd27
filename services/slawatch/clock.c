/* The SLA clock state machine; see clock.h and the table in docs/slawatch-core.md. */
#include "clock.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <string.h>

/* Instants a clock accepts: years 1971–9000, far inside the calendar's range. */
#define CLOCK_MIN_MS (365LL * 86400 * 1000)
#define CLOCK_MAX_MS (220000000000000LL)
/* At most this many steps per clock and call of fire_until: warnings, the breach and
 * two escalations fit many times over. */
#define CLOCK_MAX_STEPS 32

_Static_assert(sizeof(struct sb_sla_clock) == 160, "a clock is 160 bytes (docs/slawatch-core.md)");

static bool business(const struct sb_sla_clock *c)
{
    return (c->flags & SB_SLA_F_BUSINESS) != 0;
}

static bool breached(const struct sb_sla_clock *c)
{
    return (c->flags & SB_SLA_F_BREACHED) != 0;
}

static bool is_followup(const struct sb_sla_clock *c)
{
    return c->kind >= SB_SLA_CLOCK_KINDS;
}

/* from + amount in a time base. Without business hours within the horizon a business
 * clock falls back to calendar time: a deadline must never become "never". */
static int64_t tb_add(const struct sb_sla_env *env, bool bus, int64_t from, int64_t amount)
{
    int64_t out;
    if (amount <= 0)
        return from;
    if (bus && env->cal != NULL && sb_cal_add_business(env->cal, from, amount, &out) == 0)
        return out;
    return from + amount;
}

static int64_t span_bus(const struct sb_sla_env *env, int64_t a, int64_t b)
{
    int64_t out;
    if (b <= a)
        return 0;
    if (env->cal != NULL && sb_cal_business_between(env->cal, a, b, &out) == 0)
        return out;
    return b - a;
}

static int64_t own_elapsed(const struct sb_sla_clock *c)
{
    return business(c) ? c->el_bus_ms : c->el_cal_ms;
}

/* Counts the running time up to at into both bases and moves run_since there. */
static void checkpoint(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at)
{
    if (at <= c->run_since)
        return;
    c->el_cal_ms += at - c->run_since;
    c->el_bus_ms += span_bus(env, c->run_since, at);
    c->run_since = at;
}

/* The instant at which the clock, running from run_since, will have counted amount. */
static int64_t step_at(const struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t from,
                       int64_t amount)
{
    return tb_add(env, business(c), from, amount - own_elapsed(c));
}

static int next_warn(const struct sb_sla_clock *c)
{
    for (int i = 0; i < c->n_warn; i++)
        if (c->warn_bp[i] > c->last_warn_bp)
            return i;
    return -1;
}

static int64_t warn_threshold(const struct sb_sla_clock *c, int i)
{
    return c->target_ms * c->warn_bp[i] / 10000;
}

static int64_t reesc_due(const struct sb_sla_clock *c, const struct sb_sla_env *env)
{
    int64_t interval = c->target_ms;
    if (env->reescalate_max_ms > 0 && env->reescalate_max_ms < interval)
        interval = env->reescalate_max_ms;
    return tb_add(env, business(c), c->esc_base, interval > 0 ? interval : 1);
}

void sb_sla_clock_replan(struct sb_sla_clock *c, const struct sb_sla_env *env)
{
    c->next_due = SB_SLA_NEVER;
    if (c->state != SB_SLA_RUNNING)
        return;
    if (is_followup(c)) {
        c->next_due = c->deadline;
        return;
    }
    c->deadline = step_at(c, env, c->run_since, c->target_ms);
    if (!breached(c)) {
        int w = next_warn(c);
        int64_t due = c->deadline;
        if (w >= 0) {
            int64_t wd = step_at(c, env, c->run_since, warn_threshold(c, w));
            if (wd < due)
                due = wd;
        }
        c->next_due = due;
    } else if (c->level < SB_LEVEL_SUPERVISOR) {
        c->next_due = reesc_due(c, env);
    }
}

static struct sb_sla_event *emit(struct sb_sla_events *out, const struct sb_sla_clock *c,
                                 enum sb_sla_event_type type, int64_t due, int64_t now)
{
    struct sb_sla_event *ev = sb_sla_events_push(out);
    ev->type = type;
    ev->kind = (enum sb_sla_kind)c->kind;
    ev->band = (enum sb_sla_band)c->band;
    memcpy(ev->ticket_id, c->ticket_id, sizeof(ev->ticket_id));
    ev->due_ms = due;
    ev->fired_ms = now;
    ev->target_at_ms = c->deadline;
    ev->target_ms = c->target_ms;
    ev->business_time = business(c);
    ev->cal = c->cal;
    return ev;
}

static void escalate(struct sb_sla_clock *c, enum sb_sla_level to, enum sb_sla_reason reason,
                     bool again, int64_t due, int64_t now, struct sb_sla_events *out)
{
    struct sb_sla_event *ev = emit(out, c, SB_SLA_EV_ESCALATED, due, now);
    ev->from_level = (enum sb_sla_level)c->level;
    ev->level = to;
    ev->reason = reason;
    ev->again = again;
    c->level = (uint8_t)to;
}

/* The reason of an escalation at start (sla.escalated's enum has no neutral value). */
static enum sb_sla_reason start_reason(const struct sb_sla_clock *c)
{
    if (c->band == SB_BAND_P1)
        return SB_REASON_P1_IMMEDIATE;
    if (c->kind == SB_SLA_PUBLIC_NEGATIVE)
        return SB_REASON_PUBLIC_NEGATIVE;
    return SB_REASON_COMPLAINT;
}

/* Fills the target fields of c from t; working days become business time counted from
 * the start of the cycle. */
static void apply_target(struct sb_sla_clock *c, const struct sb_sla_env *env,
                         const struct sb_sla_target *t)
{
    c->flags &= (uint8_t)~SB_SLA_F_BUSINESS;
    if (t->working_days > 0) {
        int64_t end, ms;
        if (env->cal != NULL &&
            sb_cal_add_working_days(env->cal, c->started_at, t->working_days, &end) == 0 &&
            sb_cal_business_between(env->cal, c->started_at, end, &ms) == 0 && ms > 0) {
            c->target_ms = ms;
            c->flags |= SB_SLA_F_BUSINESS;
        } else {
            c->target_ms = (int64_t)t->working_days * 86400000;
        }
    } else {
        c->target_ms = t->target_ms;
        if (t->business_time)
            c->flags |= SB_SLA_F_BUSINESS;
    }
    c->n_warn = (uint8_t)t->n_warn;
    memset(c->warn_bp, 0, sizeof(c->warn_bp));
    memcpy(c->warn_bp, t->warn_bp, sizeof(t->warn_bp[0]) * (size_t)t->n_warn);
}

static bool instant_ok(int64_t t)
{
    return t >= CLOCK_MIN_MS && t <= CLOCK_MAX_MS;
}

int sb_sla_clock_start(struct sb_sla_clock *c, const struct sb_sla_env *env,
                       const struct sb_sla_start *s, bool restart, struct sb_sla_events *out)
{
    uint8_t cycle = restart ? (uint8_t)(c->cycle + 1) : 0;
    struct sb_sla_event *ev;

    if (!sb_sla_ticket_id_valid(s->ticket_id) || s->kind < 0 || s->kind >= SB_SLA_CLOCK_KINDS ||
        s->band < SB_BAND_NONE || s->band > SB_BAND_P4 || sb_sla_target_check(&s->target) != 0 ||
        !instant_ok(s->at_ms))
        return SB_E_INVAL;
    memset(c, 0, sizeof(*c));
    sb_strlcpy(c->ticket_id, s->ticket_id, sizeof(c->ticket_id));
    c->kind = (uint8_t)s->kind;
    c->band = (uint8_t)s->band;
    c->cal = s->cal;
    c->cycle = cycle;
    c->state = SB_SLA_RUNNING;
    c->level = SB_LEVEL_AGENT;
    c->started_at = c->run_since = c->esc_base = s->at_ms;
    apply_target(c, env, &s->target);
    sb_sla_clock_replan(c, env);

    ev = emit(out, c, SB_SLA_EV_STARTED, s->at_ms, s->at_ms);
    ev->restart = restart;
    ev->policy_id = s->target.policy_id;
    ev->period = s->target.period;
    if (s->target.notify_at_start > SB_LEVEL_AGENT)
        escalate(c, s->target.notify_at_start, start_reason(c), false, s->at_ms, s->at_ms, out);
    return 0;
}

int sb_sla_clock_pause(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms,
                       struct sb_sla_events *out)
{
    struct sb_sla_event *ev;

    if (c->state != SB_SLA_RUNNING || is_followup(c))
        return SB_E_STATE;
    if (at_ms < c->run_since)
        at_ms = c->run_since;
    checkpoint(c, env, at_ms);
    c->state = SB_SLA_PAUSED;
    c->next_due = SB_SLA_NEVER;
    ev = emit(out, c, SB_SLA_EV_PAUSED, at_ms, at_ms);
    ev->paused_ms = c->paused_ms;
    return 0;
}

int sb_sla_clock_resume(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms,
                        struct sb_sla_events *out)
{
    struct sb_sla_event *ev;

    if (c->state != SB_SLA_PAUSED)
        return SB_E_STATE;
    if (at_ms < c->run_since)
        at_ms = c->run_since;
    c->paused_ms += at_ms - c->run_since;
    c->run_since = at_ms;
    if (c->esc_base < at_ms)
        c->esc_base = at_ms;
    c->state = SB_SLA_RUNNING;
    sb_sla_clock_replan(c, env);
    ev = emit(out, c, SB_SLA_EV_RESUMED, at_ms, at_ms);
    ev->paused_ms = c->paused_ms;
    return 0;
}

int sb_sla_clock_retarget(struct sb_sla_clock *c, const struct sb_sla_env *env,
                          enum sb_sla_band band, const struct sb_sla_target *t, int64_t at_ms,
                          struct sb_sla_events *out)
{
    return sb_sla_clock_retarget_cal(c, env, env, c->cal, band, t, at_ms, out);
}

int sb_sla_clock_retarget_cal(struct sb_sla_clock *c, const struct sb_sla_env *env,
                              const struct sb_sla_env *new_env, uint16_t cal, enum sb_sla_band band,
                              const struct sb_sla_target *t, int64_t at_ms,
                              struct sb_sla_events *out)
{
    struct sb_sla_clock old = *c;
    struct sb_sla_event *ev;

    if (c->state != SB_SLA_RUNNING && c->state != SB_SLA_PAUSED)
        return SB_E_STATE;
    if (is_followup(c) || band < SB_BAND_NONE || band > SB_BAND_P4 || sb_sla_target_check(t) != 0)
        return SB_E_INVAL;
    if (at_ms < c->run_since)
        at_ms = c->run_since;
    /* The time counted so far is counted on the calendar it ran on; from at_ms on, the
     * new calendar counts. */
    if (c->state == SB_SLA_RUNNING)
        checkpoint(c, env, at_ms);
    env = new_env;
    c->cal = cal;
    c->band = (uint8_t)band;
    apply_target(c, env, t);
    if (c->band == old.band && c->cal == old.cal && c->target_ms == old.target_ms &&
        c->flags == old.flags && c->n_warn == old.n_warn &&
        memcmp(c->warn_bp, old.warn_bp, sizeof(c->warn_bp)) == 0 &&
        t->notify_at_start <= (enum sb_sla_level)c->level) {
        *c = old; /* nothing changes: a replayed re-target */
        return 0;
    }
    /* Warnings: keep those given that the new target has also passed; re-arm the rest. */
    int64_t el = own_elapsed(c);
    int64_t progress = el >= c->target_ms ? 10000 : el * 10000 / c->target_ms;
    if (!breached(c) && c->last_warn_bp > progress)
        c->last_warn_bp = (uint16_t)progress;
    sb_sla_clock_replan(c, env);

    ev = emit(out, c, SB_SLA_EV_STARTED, at_ms, at_ms);
    if (c->state == SB_SLA_PAUSED)
        ev->target_at_ms = step_at(c, env, at_ms, c->target_ms); /* were it resumed now */
    ev->retarget = true;
    ev->policy_id = t->policy_id;
    ev->period = t->period;
    if (t->notify_at_start > (enum sb_sla_level)c->level)
        escalate(c, t->notify_at_start, start_reason(c), false, at_ms, at_ms, out);
    return 0;
}

void sb_sla_clock_touch(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms)
{
    if ((c->state != SB_SLA_RUNNING && c->state != SB_SLA_PAUSED) || is_followup(c))
        return;
    if (at_ms > c->esc_base) {
        c->esc_base = at_ms;
        if (c->state == SB_SLA_RUNNING && breached(c))
            sb_sla_clock_replan(c, env);
    }
}

int sb_sla_clock_stop(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t at_ms, bool met)
{
    if (c->state != SB_SLA_RUNNING && c->state != SB_SLA_PAUSED)
        return SB_E_STATE;
    if (at_ms < c->run_since)
        at_ms = c->run_since;
    if (c->state == SB_SLA_RUNNING) {
        checkpoint(c, env, at_ms);
    } else {
        c->paused_ms += at_ms - c->run_since;
        c->run_since = at_ms;
    }
    c->state = met ? SB_SLA_MET : SB_SLA_CANCELLED;
    c->next_due = SB_SLA_NEVER;
    return 0;
}

int sb_sla_clock_followup(struct sb_sla_clock *c, const char *ticket_id, enum sb_sla_kind kind,
                          int64_t due_ms)
{
    if (!sb_sla_ticket_id_valid(ticket_id) ||
        (kind != SB_SLA_FOLLOWUP_CALLBACK && kind != SB_SLA_FOLLOWUP_CSAT) || !instant_ok(due_ms))
        return SB_E_INVAL;
    memset(c, 0, sizeof(*c));
    sb_strlcpy(c->ticket_id, ticket_id, sizeof(c->ticket_id));
    c->kind = (uint8_t)kind;
    c->state = SB_SLA_RUNNING;
    c->started_at = c->run_since = c->deadline = c->next_due = c->esc_base = due_ms;
    return 0;
}

int sb_sla_clock_fire(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t now_ms,
                      struct sb_sla_events *out)
{
    if (c->next_due > now_ms)
        return 0;
    if (c->state != SB_SLA_RUNNING) {
        c->next_due = SB_SLA_NEVER;
        return 0;
    }
    if (is_followup(c)) {
        emit(out, c, SB_SLA_EV_FOLLOWUP, c->deadline, now_ms);
        c->state = SB_SLA_DONE;
        c->next_due = SB_SLA_NEVER;
        return 1;
    }
    if (!breached(c)) {
        int w = next_warn(c);
        if (w >= 0) {
            int64_t thr = warn_threshold(c, w);
            int64_t wd = step_at(c, env, c->run_since, thr);
            if (wd <= now_ms && wd <= c->deadline) {
                struct sb_sla_event *ev = emit(out, c, SB_SLA_EV_WARNING, wd, now_ms);
                ev->fraction_bp = c->warn_bp[w];
                ev->remaining_ms = c->target_ms - thr;
                c->last_warn_bp = c->warn_bp[w];
                sb_sla_clock_replan(c, env);
                return 1;
            }
        }
        if (c->deadline <= now_ms) {
            struct sb_sla_event *ev = emit(out, c, SB_SLA_EV_BREACHED, c->deadline, now_ms);
            ev->late_ms = now_ms - c->deadline;
            c->flags |= SB_SLA_F_BREACHED;
            c->last_warn_bp = 10000;
            if (c->esc_base < c->deadline)
                c->esc_base = c->deadline;
            if (c->level < SB_LEVEL_SUPERVISOR) {
                enum sb_sla_level to =
                    c->band == SB_BAND_P1 ? SB_LEVEL_SUPERVISOR : (enum sb_sla_level)(c->level + 1);
                escalate(c, to,
                         c->kind == SB_SLA_CLAIM ? SB_REASON_CLAIM_TIMEOUT : SB_REASON_BREACHED,
                         false, c->deadline, now_ms, out);
            }
            sb_sla_clock_replan(c, env);
            return 1;
        }
    } else if (c->level < SB_LEVEL_SUPERVISOR) {
        int64_t due = reesc_due(c, env);
        if (due <= now_ms) {
            escalate(c, (enum sb_sla_level)(c->level + 1),
                     c->kind == SB_SLA_CLAIM ? SB_REASON_CLAIM_TIMEOUT : SB_REASON_BREACHED, true,
                     due, now_ms, out);
            c->esc_base = due;
            sb_sla_clock_replan(c, env);
            return 1;
        }
    }
    sb_sla_clock_replan(c, env);
    return 0;
}

int sb_sla_clock_fire_until(struct sb_sla_clock *c, const struct sb_sla_env *env, int64_t now_ms,
                            struct sb_sla_events *out)
{
    int n = 0;
    while (n < CLOCK_MAX_STEPS && c->next_due <= now_ms && sb_sla_clock_fire(c, env, now_ms, out))
        n++;
    return n;
}

int64_t sb_sla_clock_elapsed(const struct sb_sla_clock *c, const struct sb_sla_env *env,
                             int64_t now_ms, bool bus)
{
    int64_t el = bus ? c->el_bus_ms : c->el_cal_ms;
    if (c->state == SB_SLA_RUNNING && !is_followup(c) && now_ms > c->run_since)
        el += bus ? span_bus(env, c->run_since, now_ms) : now_ms - c->run_since;
    return el;
}

int sb_sla_clock_check(const struct sb_sla_clock *c)
{
    if (!sb_sla_ticket_id_valid(c->ticket_id) || c->kind >= SB_SLA_KINDS || c->band > SB_BAND_P4 ||
        c->state < SB_SLA_RUNNING || c->state > SB_SLA_DONE || c->level > SB_LEVEL_SUPERVISOR ||
        c->n_warn > SB_SLA_MAX_WARN || c->last_warn_bp > 10000 ||
        (c->flags & ~(SB_SLA_F_BUSINESS | SB_SLA_F_BREACHED)) != 0 || !instant_ok(c->started_at) ||
        !instant_ok(c->run_since) || c->run_since < c->started_at || c->el_cal_ms < 0 ||
        c->el_bus_ms < 0 || c->paused_ms < 0 || c->el_cal_ms > CLOCK_MAX_MS ||
        c->el_bus_ms > CLOCK_MAX_MS || c->paused_ms > CLOCK_MAX_MS || !instant_ok(c->esc_base))
        return SB_E_INVAL;
    if (c->kind >= SB_SLA_CLOCK_KINDS) {
        if (!instant_ok(c->deadline) || (c->state != SB_SLA_RUNNING && c->state != SB_SLA_DONE))
            return SB_E_INVAL;
        return 0;
    }
    struct sb_sla_target t = {.target_ms = c->target_ms, .n_warn = c->n_warn};
    memcpy(t.warn_bp, c->warn_bp, sizeof(t.warn_bp));
    if (c->state == SB_SLA_DONE || sb_sla_target_check(&t) != 0)
        return SB_E_INVAL;
    return 0;
}
