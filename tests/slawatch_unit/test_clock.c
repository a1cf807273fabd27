/* Unit tests of the SLA clock state machine through the engine (services/slawatch/
 * clock.c, engine.c): warnings in order, breach and the escalation ladder (P1 straight
 * to supervisor, again while untouched, a touch postpones it, a pause stops it),
 * pause/resume in calendar and business time, re-targeting up and down, met and late
 * met, restart on reopen, working-day targets, follow-ups, replays that change
 * nothing, and the deterministic event identity. Every expected event is written out:
 * type, the instant it belongs to, the deadline, and its fraction or level. */
#include "slatest.h"

#include "clock.h"
#include "engine.h"
#include "policy.h"

#include "sb/err.h"

#include <stdlib.h>

/* Monday 2024-05-20 06:00 UTC. */
#define T0 1716184800000LL
#define ANY INT64_MIN

struct want {
    enum sb_sla_event_type type;
    int64_t due, target_at;
    int extra; /* WARNING: fraction in bp; ESCALATED: level reached (+10 when again) */
};

static const char *type_name(enum sb_sla_event_type t)
{
    static const char *const n[] = {"STARTED",  "PAUSED",    "RESUMED", "WARNING",
                                    "BREACHED", "ESCALATED", "FOLLOWUP"};
    return n[t];
}

static int extra_of(const struct sb_sla_event *e)
{
    if (e->type == SB_SLA_EV_WARNING)
        return e->fraction_bp;
    if (e->type == SB_SLA_EV_ESCALATED)
        return (int)e->level + (e->again ? 10 : 0);
    return 0;
}

static void describe(const char *who, size_t i, enum sb_sla_event_type type, int64_t due,
                     int64_t target_at, int extra)
{
    char d[64], t[64];
    fmt_ms(due, d, sizeof(d));
    if (target_at == ANY)
        snprintf(t, sizeof(t), "(any)");
    else
        fmt_ms(target_at, t, sizeof(t));
    print_error("  %s[%zu] %-9s due %s target %s extra %d\n", who, i, type_name(type), d, t, extra);
}

static void check_events(const struct sb_sla_events *ev, const struct want *w, size_t n)
{
    bool ok = ev->n == n;
    for (size_t i = 0; ok && i < n; i++) {
        const struct sb_sla_event *e = &ev->v[i];
        ok = e->type == w[i].type && e->due_ms == w[i].due &&
             (w[i].target_at == ANY || e->target_at_ms == w[i].target_at) &&
             extra_of(e) == w[i].extra;
    }
    if (ok)
        return;
    print_error("events differ:\n");
    for (size_t i = 0; i < ev->n; i++)
        describe("got ", i, ev->v[i].type, ev->v[i].due_ms, ev->v[i].target_at_ms,
                 extra_of(&ev->v[i]));
    for (size_t i = 0; i < n; i++)
        describe("want", i, w[i].type, w[i].due, w[i].target_at, w[i].extra);
    fail();
}

#define CHECK(ev, ...)                                                                             \
    do {                                                                                           \
        const struct want w_[] = {__VA_ARGS__};                                                    \
        check_events((ev), w_, sizeof(w_) / sizeof(w_[0]));                                        \
        sb_sla_events_clear(ev);                                                                   \
    } while (0)
#define CHECK_NONE(ev)                                                                             \
    do {                                                                                           \
        check_events((ev), NULL, 0);                                                               \
        sb_sla_events_clear(ev);                                                                   \
    } while (0)

static struct sb_sla_target target(int64_t ms, bool business, uint16_t w1, uint16_t w2)
{
    struct sb_sla_target t = {0};
    t.target_ms = ms;
    t.business_time = business;
    t.n_warn = 2;
    t.warn_bp[0] = w1;
    t.warn_bp[1] = w2;
    return t;
}

static struct sb_sla_start start_of(const char *ticket, enum sb_sla_kind kind,
                                    enum sb_sla_band band, struct sb_sla_target t, int64_t at)
{
    struct sb_sla_start s = {ticket, kind, band, t, 0, at};
    return s;
}

struct fixture {
    struct sb_sla_engine *e;
    struct sb_sla_events ev;
    uint16_t shanghai;
};

static int setup(void **state)
{
    char err[256];
    struct fixture *f = calloc(1, sizeof(*f));
    f->e = sb_sla_engine_new(NULL, err, sizeof(err));
    if (f->e == NULL || sb_sla_engine_add_calendar(f->e, shanghai_cal(), &f->shanghai) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sb_sla_engine_destroy(f->e);
    sb_sla_events_free(&f->ev);
    free(f);
    return 0;
}

#define M(n) ((int64_t)(n)*MIN_MS)
#define ST SB_SLA_EV_STARTED
#define PA SB_SLA_EV_PAUSED
#define RE SB_SLA_EV_RESUMED
#define WA SB_SLA_EV_WARNING
#define BR SB_SLA_EV_BREACHED
#define ES SB_SLA_EV_ESCALATED
#define FU SB_SLA_EV_FOLLOWUP

/* P2 first response, 1 h, warnings at 75 % and 90 %: each step at its instant, then
 * the breach with agent → lead, then lead → supervisor after a further hour untouched,
 * then nothing more (the top of the ladder). */
static void test_ladder_in_order(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_start s =
        start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, target(HOUR_MS, false, 7500, 9000), T0);
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), 0);
    CHECK(&f->ev, {ST, T0, T0 + M(60), 0});
    assert_int_equal(sb_sla_engine_next_due(f->e), T0 + M(45));
    assert_int_equal(sb_sla_engine_advance(f->e, T0 + M(45) - 1, 100, &f->ev), 0);
    CHECK_NONE(&f->ev);
    assert_int_equal(sb_sla_engine_advance(f->e, T0 + M(45), 100, &f->ev), 1);
    CHECK(&f->ev, {WA, T0 + M(45), T0 + M(60), 7500});
    sb_sla_engine_advance(f->e, T0 + M(54), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(54), T0 + M(60), 9000});
    sb_sla_engine_advance(f->e, T0 + M(60) - 1, 100, &f->ev);
    CHECK_NONE(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(60), 100, &f->ev);
    CHECK(&f->ev, {BR, T0 + M(60), T0 + M(60), 0}, {ES, T0 + M(60), T0 + M(60), SB_LEVEL_LEAD});
    sb_sla_engine_advance(f->e, T0 + M(120) - 1, 100, &f->ev);
    CHECK_NONE(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(120), 100, &f->ev);
    CHECK(&f->ev, {ES, T0 + M(120), T0 + M(60), 10 + SB_LEVEL_SUPERVISOR});
    sb_sla_engine_advance(f->e, T0 + M(6000), 100, &f->ev);
    CHECK_NONE(&f->ev);
    assert_int_equal(sb_sla_engine_next_due(f->e), SB_SLA_NEVER);

    /* The same clock seen only hours later: every step at once, in order, with the
     * same instants; the breach tells how late it was seen. */
    s.ticket_id = "T-2";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    assert_int_equal(sb_sla_engine_advance(f->e, T0 + M(180), 100, &f->ev), 4);
    CHECK(&f->ev, {WA, T0 + M(45), T0 + M(60), 7500}, {WA, T0 + M(54), T0 + M(60), 9000},
          {BR, T0 + M(60), T0 + M(60), 0}, {ES, T0 + M(60), T0 + M(60), SB_LEVEL_LEAD},
          {ES, T0 + M(120), T0 + M(60), 10 + SB_LEVEL_SUPERVISOR});
    sb_sla_engine_start(f->e, &s, &f->ev);
    s.ticket_id = "T-3";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(180), 2, &f->ev); /* a bounded batch */
    assert_int_equal(f->ev.n, 2);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(180), 100, &f->ev);
    assert_int_equal(f->ev.n, 3);
    assert_int_equal(f->ev.v[0].type, SB_SLA_EV_BREACHED);
    assert_int_equal(f->ev.v[0].late_ms, M(120));
    sb_sla_events_clear(&f->ev);
}

static void test_pause_resume_calendar(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_start s =
        start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, target(HOUR_MS, false, 7500, 9000), T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    assert_int_equal(sb_sla_engine_pause(f->e, "T-1", SB_SLA_FIRST_RESPONSE, T0 + M(10), &f->ev),
                     0);
    CHECK(&f->ev, {PA, T0 + M(10), T0 + M(60), 0});
    sb_sla_engine_advance(f->e, T0 + M(39), 100, &f->ev);
    CHECK_NONE(&f->ev);
    /* Paused 30 min: the deadline moves to 90 min, 45 min counted at 75 min. */
    assert_int_equal(sb_sla_engine_resume(f->e, "T-1", SB_SLA_FIRST_RESPONSE, T0 + M(40), &f->ev),
                     0);
    assert_int_equal(f->ev.v[0].paused_ms, M(30));
    CHECK(&f->ev, {RE, T0 + M(40), T0 + M(90), 0});
    sb_sla_engine_advance(f->e, T0 + M(90), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(75), T0 + M(90), 7500}, {WA, T0 + M(84), T0 + M(90), 9000},
          {BR, T0 + M(90), T0 + M(90), 0}, {ES, T0 + M(90), T0 + M(90), SB_LEVEL_LEAD});
    const struct sb_sla_clock *c = sb_sla_engine_get(f->e, "T-1", SB_SLA_FIRST_RESPONSE);
    struct sb_sla_env env = {NULL, HOUR_MS};
    assert_non_null(c);
    assert_int_equal(c->paused_ms, M(30));
    /* Counted: 10 min before the pause, 50 since the resume. */
    assert_int_equal(sb_sla_clock_elapsed(c, &env, T0 + M(90), false), M(60));
    assert_int_equal(sb_sla_clock_elapsed(c, &env, T0 + M(100), true), M(70));
    /* Replays and wrong states change nothing. */
    assert_int_equal(sb_sla_engine_resume(f->e, "T-1", SB_SLA_FIRST_RESPONSE, T0 + M(91), &f->ev),
                     SB_E_STATE);
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_CONFLICT);
    assert_int_equal(sb_sla_engine_pause(f->e, "T-9", SB_SLA_FIRST_RESPONSE, T0, &f->ev),
                     SB_E_NOENT);
    assert_int_equal(sb_sla_engine_pause(f->e, "bad id!", SB_SLA_FIRST_RESPONSE, T0, &f->ev),
                     SB_E_INVAL);
    CHECK_NONE(&f->ev);
}

/* Shanghai business hours (09–12, 13–18): a 4 h business resolution target started
 * Monday 23 September 16:00 CST, paused at 17:00 (1 h counted), resumed Tuesday
 * 10:00: 3 h left run 10–12 and 13–14. The 75 % warning (3 h) falls at 12:00, the
 * 90 % one (3 h 36 min) at 13:36. */
static void test_pause_resume_business(void **state)
{
    struct fixture *f = *state;
    int64_t mon16 = utc_ms(2024, 9, 23, 8, 0, 0), hour = HOUR_MS;
    struct sb_sla_start s =
        start_of("T-7", SB_SLA_RESOLUTION, SB_BAND_P3, target(4 * hour, true, 7500, 9000), mon16);
    s.cal = f->shanghai;
    sb_sla_engine_start(f->e, &s, &f->ev);
    /* Without the pause: Monday 16–18 and Tuesday 09–11. */
    CHECK(&f->ev, {ST, mon16, mon16 + 19 * hour, 0});
    sb_sla_engine_pause(f->e, "T-7", SB_SLA_ALL, mon16 + hour, &f->ev);
    CHECK(&f->ev, {PA, mon16 + hour, mon16 + 19 * hour, 0});
    sb_sla_engine_resume(f->e, "T-7", SB_SLA_ALL, mon16 + 18 * hour, &f->ev);
    CHECK(&f->ev, {RE, mon16 + 18 * hour, mon16 + 22 * hour, 0});
    sb_sla_engine_advance(f->e, mon16 + 22 * hour, 100, &f->ev);
    CHECK(&f->ev, {WA, mon16 + 20 * hour, mon16 + 22 * hour, 7500},
          {WA, mon16 + 21 * hour + M(36), mon16 + 22 * hour, 9000},
          {BR, mon16 + 22 * hour, mon16 + 22 * hour, 0},
          {ES, mon16 + 22 * hour, mon16 + 22 * hour, SB_LEVEL_LEAD});
    const struct sb_sla_clock *c = sb_sla_engine_get(f->e, "T-7", SB_SLA_RESOLUTION);
    assert_int_equal(c->paused_ms, 17 * hour);
    /* The further interval is business time too: lead → supervisor after one more
     * business hour, Tuesday 14:00 + 1 h = 15:00. */
    sb_sla_engine_advance(f->e, mon16 + 40 * hour, 100, &f->ev);
    CHECK(&f->ev, {ES, mon16 + 23 * hour, mon16 + 22 * hour, 10 + SB_LEVEL_SUPERVISOR});
}

static void test_retarget_up(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_target p3 = target(4 * HOUR_MS, false, 7500, 9000);
    struct sb_sla_target p2 = target(HOUR_MS, false, 7500, 9000);
    struct sb_sla_start s = start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P3, p3, T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    /* 50 min counted; the new 1 h target's 75 % is already past: it fires at once. */
    assert_int_equal(sb_sla_engine_retarget(f->e, "T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, &p2,
                                            T0 + M(50), &f->ev),
                     0);
    assert_true(f->ev.v[0].retarget);
    assert_int_equal(f->ev.v[0].band, SB_BAND_P2);
    CHECK(&f->ev, {ST, T0 + M(50), T0 + M(60), 0}, {WA, T0 + M(50), T0 + M(60), 7500});
    sb_sla_engine_advance(f->e, T0 + M(60), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(54), T0 + M(60), 9000}, {BR, T0 + M(60), T0 + M(60), 0},
          {ES, T0 + M(60), T0 + M(60), SB_LEVEL_LEAD});
    /* The same re-target again is a replay: nothing. */
    assert_int_equal(sb_sla_engine_retarget(f->e, "T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, &p2,
                                            T0 + M(61), &f->ev),
                     0);
    CHECK_NONE(&f->ev);

    /* Raised when already past the new target: everything at the re-target instant. */
    s.ticket_id = "T-2";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_retarget(f->e, "T-2", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, &p2, T0 + M(70), &f->ev);
    CHECK(&f->ev, {ST, T0 + M(70), T0 + M(70), 0}, {WA, T0 + M(70), T0 + M(70), 7500},
          {WA, T0 + M(70), T0 + M(70), 9000}, {BR, T0 + M(70), T0 + M(70), 0},
          {ES, T0 + M(70), T0 + M(70), SB_LEVEL_LEAD});
}

static void test_retarget_down_and_paused(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_target p3 = target(4 * HOUR_MS, false, 7500, 9000);
    struct sb_sla_target p2 = target(HOUR_MS, false, 7500, 9000);
    struct sb_sla_start s = start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, p2, T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_engine_advance(f->e, T0 + M(55), 100, &f->ev);
    sb_sla_events_clear(&f->ev);
    /* Lowered at 55 min (both warnings given): 23 % of 4 h, so both are armed again. */
    sb_sla_engine_retarget(f->e, "T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P3, &p3, T0 + M(55), &f->ev);
    CHECK(&f->ev, {ST, T0 + M(55), T0 + M(240), 0});
    sb_sla_engine_advance(f->e, T0 + M(240), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(180), T0 + M(240), 7500}, {WA, T0 + M(216), T0 + M(240), 9000},
          {BR, T0 + M(240), T0 + M(240), 0}, {ES, T0 + M(240), T0 + M(240), SB_LEVEL_LEAD});

    /* Re-targeted while paused: the event tells the deadline were it resumed then. */
    s.ticket_id = "T-2";
    s.target = p3;
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_engine_pause(f->e, "T-2", SB_SLA_FIRST_RESPONSE, T0 + M(20), &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_retarget(f->e, "T-2", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, &p2, T0 + M(100),
                           &f->ev);
    CHECK(&f->ev, {ST, T0 + M(100), T0 + M(140), 0});
    /* Only T-1's escalation to supervisor, an hour after its breach: T-2 is paused. */
    sb_sla_engine_advance(f->e, T0 + M(1000), 100, &f->ev);
    CHECK(&f->ev, {ES, T0 + M(300), T0 + M(240), 10 + SB_LEVEL_SUPERVISOR});
    sb_sla_engine_resume(f->e, "T-2", SB_SLA_FIRST_RESPONSE, T0 + M(200), &f->ev);
    CHECK(&f->ev, {RE, T0 + M(200), T0 + M(240), 0});
    sb_sla_engine_advance(f->e, T0 + M(240), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(225), T0 + M(240), 7500}, {WA, T0 + M(234), T0 + M(240), 9000},
          {BR, T0 + M(240), T0 + M(240), 0}, {ES, T0 + M(240), T0 + M(240), SB_LEVEL_LEAD});
}

/* P1 from the default policies: the first response clock tells the supervisor at
 * start; its breach cannot go higher. The resolution clock escalates straight from
 * agent to supervisor. */
static void test_p1_ladder(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_policies *p = sb_sla_policies_default();
    struct sb_sla_situation sit = {SB_BAND_P1, SB_CHANNEL_CHAT, NULL, SB_PERIOD_NONE};
    struct sb_sla_start fr = {"T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P1, {0}, 0, T0};
    struct sb_sla_start res = {"T-1", SB_SLA_RESOLUTION, SB_BAND_P1, {0}, 0, T0};
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &sit, &fr.target), 0);
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_RESOLUTION, &sit, &res.target), 0);
    sb_sla_policies_destroy(p);

    sb_sla_engine_start(f->e, &fr, &f->ev);
    assert_int_equal(f->ev.v[1].reason, SB_REASON_P1_IMMEDIATE);
    assert_int_equal(f->ev.v[1].from_level, SB_LEVEL_AGENT);
    CHECK(&f->ev, {ST, T0, T0 + M(10), 0}, {ES, T0, T0 + M(10), SB_LEVEL_SUPERVISOR});
    sb_sla_engine_start(f->e, &res, &f->ev);
    CHECK(&f->ev, {ST, T0, T0 + M(240), 0});
    sb_sla_engine_advance(f->e, T0 + M(10), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(5), T0 + M(10), 5000}, {WA, T0 + M(8), T0 + M(10), 8000},
          {BR, T0 + M(10), T0 + M(10), 0});
    sb_sla_engine_advance(f->e, T0 + M(240), 100, &f->ev);
    assert_int_equal(f->ev.v[3].reason, SB_REASON_BREACHED);
    assert_int_equal(f->ev.v[3].from_level, SB_LEVEL_AGENT);
    CHECK(&f->ev, {WA, T0 + M(120), T0 + M(240), 5000}, {WA, T0 + M(192), T0 + M(240), 8000},
          {BR, T0 + M(240), T0 + M(240), 0}, {ES, T0 + M(240), T0 + M(240), SB_LEVEL_SUPERVISOR});
    sb_sla_engine_advance(f->e, T0 + M(10000), 100, &f->ev);
    CHECK_NONE(&f->ev);
}

static void test_touch_and_pause_after_breach(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_start s =
        start_of("T-1", SB_SLA_CLAIM, SB_BAND_P2, target(HOUR_MS, false, 7500, 9000), T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_engine_advance(f->e, T0 + M(60), 100, &f->ev);
    assert_int_equal(f->ev.v[f->ev.n - 1].reason, SB_REASON_CLAIM_TIMEOUT);
    sb_sla_events_clear(&f->ev);
    /* Touched at 90 min: the next escalation waits for 150 min. */
    assert_int_equal(sb_sla_engine_touch(f->e, "T-1", SB_SLA_ALL, T0 + M(90), &f->ev), 0);
    sb_sla_engine_advance(f->e, T0 + M(150) - 1, 100, &f->ev);
    CHECK_NONE(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(150), 100, &f->ev);
    CHECK(&f->ev, {ES, T0 + M(150), T0 + M(60), 10 + SB_LEVEL_SUPERVISOR});

    /* Waiting on the customer after a breach: no escalation until they answer. */
    s.ticket_id = "T-2";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_engine_advance(f->e, T0 + M(60), 100, &f->ev);
    sb_sla_engine_pause(f->e, "T-2", SB_SLA_CLAIM, T0 + M(70), &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(300), 100, &f->ev);
    CHECK_NONE(&f->ev);
    sb_sla_engine_resume(f->e, "T-2", SB_SLA_CLAIM, T0 + M(300), &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(360) - 1, 100, &f->ev);
    CHECK_NONE(&f->ev);
    sb_sla_engine_advance(f->e, T0 + M(360), 100, &f->ev);
    CHECK(&f->ev, {ES, T0 + M(360), ANY, 10 + SB_LEVEL_SUPERVISOR});
}

static void test_met_late_and_on_time(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_start s =
        start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, target(HOUR_MS, false, 7500, 9000), T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    s.ticket_id = "T-2";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    /* On time: nothing more, ever. */
    assert_int_equal(
        sb_sla_engine_stop(f->e, "T-1", SB_SLA_FIRST_RESPONSE, T0 + M(30), true, &f->ev), 0);
    CHECK_NONE(&f->ev);
    const struct sb_sla_clock *c = sb_sla_engine_get(f->e, "T-1", SB_SLA_FIRST_RESPONSE);
    assert_int_equal(c->state, SB_SLA_MET);
    assert_int_equal(c->el_cal_ms, M(30));
    assert_int_equal(c->flags & SB_SLA_F_BREACHED, 0);
    /* A reply processed after its deadline passed unseen: the breach is still told
     * first, then the clock stops (met late). */
    sb_sla_engine_stop(f->e, "T-2", SB_SLA_FIRST_RESPONSE, T0 + M(65), true, &f->ev);
    assert_int_equal(f->ev.v[2].late_ms, M(5));
    CHECK(&f->ev, {WA, T0 + M(45), T0 + M(60), 7500}, {WA, T0 + M(54), T0 + M(60), 9000},
          {BR, T0 + M(60), T0 + M(60), 0}, {ES, T0 + M(60), T0 + M(60), SB_LEVEL_LEAD});
    c = sb_sla_engine_get(f->e, "T-2", SB_SLA_FIRST_RESPONSE);
    assert_int_equal(c->state, SB_SLA_MET);
    assert_int_equal(c->flags & SB_SLA_F_BREACHED, SB_SLA_F_BREACHED);
    sb_sla_engine_advance(f->e, T0 + M(6000), 100, &f->ev);
    CHECK_NONE(&f->ev);
    assert_int_equal(
        sb_sla_engine_stop(f->e, "T-2", SB_SLA_FIRST_RESPONSE, T0 + M(70), true, &f->ev),
        SB_E_STATE);
}

static void test_restart_on_reopen(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_start s =
        start_of("T-1", SB_SLA_RESOLUTION, SB_BAND_P2, target(4 * HOUR_MS, false, 7500, 9000), T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_engine_advance(f->e, T0 + M(300), 100, &f->ev);
    sb_sla_engine_stop(f->e, "T-1", SB_SLA_RESOLUTION, T0 + M(300), true, &f->ev);
    sb_sla_events_clear(&f->ev);
    /* Reopened at 6 h: a new cycle from zero, at agent level again. */
    s.at_ms = T0 + M(360);
    assert_int_equal(sb_sla_engine_restart(f->e, &s, &f->ev), 0);
    assert_true(f->ev.v[0].restart);
    CHECK(&f->ev, {ST, T0 + M(360), T0 + M(600), 0});
    const struct sb_sla_clock *c = sb_sla_engine_get(f->e, "T-1", SB_SLA_RESOLUTION);
    assert_int_equal(c->cycle, 1);
    assert_int_equal(c->level, SB_LEVEL_AGENT);
    sb_sla_engine_advance(f->e, T0 + M(600), 100, &f->ev);
    CHECK(&f->ev, {WA, T0 + M(540), T0 + M(600), 7500}, {WA, T0 + M(576), T0 + M(600), 9000},
          {BR, T0 + M(600), T0 + M(600), 0}, {ES, T0 + M(600), T0 + M(600), SB_LEVEL_LEAD});
    /* A restart of a clock never seen starts it. */
    s.ticket_id = "T-new";
    assert_int_equal(sb_sla_engine_restart(f->e, &s, &f->ev), 0);
    CHECK(&f->ev, {ST, T0 + M(360), T0 + M(600), 0});
}

/* Complex complaint: "solution within 1 business day" on the Shanghai calendar, from
 * Friday 27 September 15:00: the next working day is the compensatory Sunday 29; its
 * close, 18:00, is the deadline; 3 + 8 business hours. */
static void test_working_days_target(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_policies *p = sb_sla_policies_default();
    struct sb_sla_situation sit = {SB_BAND_P3, SB_CHANNEL_EMAIL, NULL, SB_PERIOD_NONE};
    struct sb_sla_start s = {"T-1",       SB_SLA_COMPLEX_COMPLAINT,    SB_BAND_P3, {0},
                             f->shanghai, utc_ms(2024, 9, 27, 7, 0, 0)};
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_COMPLEX_COMPLAINT, &sit, &s.target), 0);
    sb_sla_policies_destroy(p);
    assert_int_equal(s.target.working_days, 1);
    sb_sla_engine_start(f->e, &s, &f->ev);
    assert_int_equal(f->ev.v[0].target_ms, 11 * HOUR_MS);
    assert_true(f->ev.v[0].business_time);
    CHECK(&f->ev, {ST, s.at_ms, utc_ms(2024, 9, 29, 10, 0, 0), 0});
    /* 75 % of 11 h = 8 h 15 min: Friday 3 h, Sunday 09:00 + 5 h 15 min (lunch) 15:15. */
    sb_sla_engine_advance(f->e, utc_ms(2024, 9, 30, 0, 0, 0), 100, &f->ev);
    CHECK(&f->ev, {WA, utc_ms(2024, 9, 29, 7, 15, 0), ANY, 7500},
          {WA, utc_ms(2024, 9, 29, 8, 54, 0), ANY, 9000},
          {BR, utc_ms(2024, 9, 29, 10, 0, 0), ANY, 0},
          {ES, utc_ms(2024, 9, 29, 10, 0, 0), ANY, SB_LEVEL_LEAD});
}

static void test_followups_and_ticket_ops(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_target t = target(HOUR_MS, false, 7500, 9000);
    struct sb_sla_start fr = start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, t, T0);
    struct sb_sla_start res = start_of("T-1", SB_SLA_RESOLUTION, SB_BAND_P2, t, T0);
    sb_sla_engine_start(f->e, &fr, &f->ev);
    sb_sla_engine_start(f->e, &res, &f->ev);
    assert_int_equal(sb_sla_engine_followup(f->e, "T-1", SB_SLA_FOLLOWUP_CALLBACK, T0 + M(30)), 0);
    assert_int_equal(sb_sla_engine_followup(f->e, "T-1", SB_SLA_FOLLOWUP_CALLBACK, T0 + M(30)),
                     SB_E_CONFLICT);
    assert_int_equal(sb_sla_engine_followup(f->e, "T-1", SB_SLA_RESOLUTION, T0), SB_E_INVAL);
    sb_sla_events_clear(&f->ev);
    /* Pausing the ticket pauses both clocks, not the follow-up. */
    assert_int_equal(sb_sla_engine_pause(f->e, "T-1", SB_SLA_ALL, T0 + M(10), &f->ev), 0);
    CHECK(&f->ev, {PA, T0 + M(10), T0 + M(60), 0}, {PA, T0 + M(10), T0 + M(60), 0});
    assert_int_equal(sb_sla_engine_pause(f->e, "T-1", SB_SLA_ALL, T0 + M(11), &f->ev), SB_E_STATE);
    sb_sla_engine_advance(f->e, T0 + M(40), 100, &f->ev);
    assert_int_equal(f->ev.v[0].kind, SB_SLA_FOLLOWUP_CALLBACK);
    CHECK(&f->ev, {FU, T0 + M(30), T0 + M(30), 0});
    sb_sla_engine_advance(f->e, T0 + M(400), 100, &f->ev);
    CHECK_NONE(&f->ev);
    struct sb_sla_engine_stats st;
    sb_sla_engine_stats(f->e, &st);
    assert_int_equal(st.clocks, 3);
    assert_int_equal(st.by_state[SB_SLA_PAUSED], 2);
    assert_int_equal(st.by_state[SB_SLA_DONE], 1);
    assert_int_equal(st.armed, 0);
    assert_int_equal(sb_sla_engine_remove(f->e, "T-1", SB_SLA_ALL), 0);
    assert_int_equal(sb_sla_engine_remove(f->e, "T-1", SB_SLA_ALL), SB_E_NOENT);
    sb_sla_engine_stats(f->e, &st);
    assert_int_equal(st.clocks, 0);
}

static void test_event_identity(void **state)
{
    struct fixture *f = *state;
    char in[SB_SLA_ID_INPUT_MAX], u1[37], u2[37], hex[16];
    struct sb_sla_start s =
        start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, target(HOUR_MS, false, 7500, 9000), T0);
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_engine_advance(f->e, T0 + M(60), 100, &f->ev);
    assert_int_equal(f->ev.n, 5);
    assert_int_equal(sb_sla_event_id_input(&f->ev.v[0], in, sizeof(in)), 0);
    assert_string_equal(in, "T-1:first_response/started/1716184800000/1716188400000");
    sb_sla_event_id_input(&f->ev.v[1], in, sizeof(in));
    assert_string_equal(in, "T-1:first_response/warning-7500/1716187500000/1716188400000");
    sb_sla_event_id_input(&f->ev.v[3], in, sizeof(in));
    assert_string_equal(in, "T-1:first_response/breached/1716188400000/1716188400000");
    sb_sla_event_id_input(&f->ev.v[4], in, sizeof(in));
    assert_string_equal(in, "T-1:first_response/escalated-lead/1716188400000/1716188400000");
    /* UUIDv7: the deadline in the time field, version 7, variant 10, the rest hashed;
     * the same event gives the same id, another event another. */
    sb_sla_event_uuid(&f->ev.v[3], u1);
    sb_sla_event_uuid(&f->ev.v[3], u2);
    assert_string_equal(u1, u2);
    assert_int_equal(strlen(u1), 36);
    snprintf(hex, sizeof(hex), "%012llx", (unsigned long long)f->ev.v[3].due_ms);
    assert_memory_equal(u1, hex, 8);
    assert_memory_equal(u1 + 9, hex + 8, 4);
    assert_int_equal(u1[14], '7');
    assert_non_null(strchr("89ab", u1[19]));
    sb_sla_event_uuid(&f->ev.v[4], u2);
    assert_string_not_equal(u1, u2);
    f->ev.v[3].fired_ms += 12345; /* when it ran does not enter the identity */
    sb_sla_event_uuid(&f->ev.v[3], u2);
    assert_string_equal(u1, u2);
    assert_string_equal(sb_sla_event_type_name(SB_SLA_EV_RESUMED), "sla.paused");
    assert_string_equal(sb_sla_kind_name(SB_SLA_AFTER_SALE_FIRST_RESPONSE),
                        "after_sale_first_response");
    assert_int_equal(sb_sla_kind_parse("incident_report"), SB_SLA_INCIDENT_REPORT);
    assert_int_equal(sb_sla_kind_parse("callback"), -1);
    assert_string_equal(sb_sla_reason_name(SB_REASON_CLAIM_TIMEOUT), "claim_timeout");
    sb_sla_events_clear(&f->ev);
}

static void test_invalid_inputs(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_target t = target(HOUR_MS, false, 7500, 9000);
    struct sb_sla_start s = start_of("T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P2, t, T0);
    s.target.warn_bp[1] = 7000; /* not ascending */
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_INVAL);
    s.target = t;
    s.target.working_days = 2; /* both kinds of target */
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_INVAL);
    s.target = t;
    s.kind = SB_SLA_FOLLOWUP_CSAT;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_INVAL);
    s.kind = SB_SLA_FIRST_RESPONSE;
    s.cal = 77;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_NOENT);
    s.cal = 0;
    s.ticket_id = "T-1234567890123456789012345678901234567890123456789012345678901234";
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_INVAL);
    s.ticket_id = "T-1";
    s.at_ms = -5;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), SB_E_INVAL);
    CHECK_NONE(&f->ev);
    /* A snapshot with a field out of range is refused. */
    struct sb_sla_clock c;
    s.at_ms = T0;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), 0);
    c = *sb_sla_engine_get(f->e, "T-1", SB_SLA_FIRST_RESPONSE);
    assert_int_equal(sb_sla_clock_check(&c), 0);
    c.level = 3;
    assert_int_equal(sb_sla_engine_restore(f->e, &c), SB_E_INVAL);
    c.level = 0;
    memset(c.ticket_id, 'x', sizeof(c.ticket_id)); /* not terminated */
    assert_int_equal(sb_sla_engine_restore(f->e, &c), SB_E_INVAL);
    sb_sla_events_clear(&f->ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ladder_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_calendar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_business, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retarget_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retarget_down_and_paused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_p1_ladder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_and_pause_after_breach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_met_late_and_on_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_on_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_working_days_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_followups_and_ticket_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_inputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
