/* Unit tests of what the team of a ticket changes (services/slawatch/roster.c, the
 * calendar move of clock.c and engine.c): the roster's answers (an agent's team, the
 * team a routing input names, whom an escalation names), a clock re-targeted when the
 * team becomes known (the team's policy row, the time counted kept, warnings and breach
 * on the new target), and business time counted on the team's calendar from then on
 * (hours in the team's zone, working days of the team's calendar). */
#include "slatest.h"

#include "clock.h"
#include "engine.h"
#include "policy.h"
#include "roster.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdlib.h>

/* Monday 2024-05-20 06:00 UTC: 08:00 in Berlin (closed), 14:00 in Shanghai (open). */
#define T0 1716184800000LL
#define M(n) ((int64_t)(n)*MIN_MS)

/* ------------------------------------------------------------------ roster */

static struct sb_sla_roster *sample_roster(void)
{
    static const struct sb_sla_team_row teams[] = {
        {"vip", "a-lead", "a-sup", "de"},
        {"aftersale", "", "s:x", ""}, /* no lead; a supervisor id events cannot carry */
    };
    static const struct sb_sla_agent_row agents[] = {
        {"a-2", "aftersale"}, {"a-1", "vip"}, {"a-3", ""}, {"a-lead", "vip"}};
    char err[256];
    struct sb_sla_roster *r = sb_sla_roster_new(teams, 2, agents, 4, err, sizeof(err));
    if (r == NULL)
        fail_msg("%s", err);
    return r;
}

static void test_roster_lookups(void **state)
{
    (void)state;
    struct sb_sla_roster *r = sample_roster();
    assert_int_equal(sb_sla_roster_teams(r), 2);
    assert_int_equal(sb_sla_roster_agents(r), 4);
    assert_string_equal(sb_sla_roster_agent_team(r, "a-1"), "vip");
    assert_string_equal(sb_sla_roster_agent_team(r, "a-2"), "aftersale");
    assert_null(sb_sla_roster_agent_team(r, "a-3")); /* in no team */
    assert_null(sb_sla_roster_agent_team(r, "a-9"));
    assert_null(sb_sla_roster_agent_team(r, NULL));
    assert_true(sb_sla_roster_has_agent(r, "a-3"));
    assert_false(sb_sla_roster_has_agent(r, "a-9"));
    assert_string_equal(sb_sla_roster_team(r, "vip")->calendar, "de");
    assert_null(sb_sla_roster_team(r, "none"));
    assert_null(sb_sla_roster_team(r, ""));

    /* Whom an escalation names. */
    assert_string_equal(sb_sla_roster_escalation_to(r, "vip", SB_LEVEL_LEAD), "a-lead");
    assert_string_equal(sb_sla_roster_escalation_to(r, "vip", SB_LEVEL_SUPERVISOR), "a-sup");
    assert_null(sb_sla_roster_escalation_to(r, "vip", SB_LEVEL_AGENT));
    assert_null(sb_sla_roster_escalation_to(r, "aftersale", SB_LEVEL_LEAD));       /* none */
    assert_null(sb_sla_roster_escalation_to(r, "aftersale", SB_LEVEL_SUPERVISOR)); /* ':' */
    assert_null(sb_sla_roster_escalation_to(r, "none", SB_LEVEL_LEAD));
    assert_null(sb_sla_roster_escalation_to(r, NULL, SB_LEVEL_LEAD));
    sb_sla_roster_destroy(r);

    /* No roster, an empty one: nobody is known. */
    r = sb_sla_roster_empty();
    assert_null(sb_sla_roster_agent_team(r, "a-1"));
    assert_null(sb_sla_roster_resolve(r, "vip", "a-1", "vip/x"));
    sb_sla_roster_destroy(r);
    assert_null(sb_sla_roster_resolve(NULL, "vip", "a-1", "vip/x"));
    assert_null(sb_sla_roster_escalation_to(NULL, "vip", SB_LEVEL_LEAD));
}

static void test_roster_refuses_repeated_ids(void **state)
{
    (void)state;
    static const struct sb_sla_team_row teams[] = {{"t", "", "", ""}, {"t", "", "", ""}};
    static const struct sb_sla_agent_row agents[] = {{"a", "t"}, {"a", ""}};
    char err[256] = "";
    assert_null(sb_sla_roster_new(teams, 2, NULL, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "team id \"t\""));
    assert_null(sb_sla_roster_new(teams, 1, agents, 2, err, sizeof(err)));
    assert_non_null(strstr(err, "agent id \"a\""));
    struct sb_sla_roster *r = sb_sla_roster_new(teams, 1, agents, 1, err, sizeof(err));
    assert_non_null(r);
    sb_sla_roster_destroy(r);
}

static void test_queue_team_and_resolve(void **state)
{
    (void)state;
    char team[SB_SLA_ID_MAX], small[4];
    struct sb_sla_roster *r = sample_roster();

    assert_int_equal(sb_sla_queue_team("vip/order_payment", team, sizeof(team)), 0);
    assert_string_equal(team, "vip");
    assert_int_equal(sb_sla_queue_team("aftersale/logistics~secondary", team, sizeof(team)), 0);
    assert_string_equal(team, "aftersale");
    assert_int_equal(sb_sla_queue_team("any/logistics~wide", team, sizeof(team)), SB_E_NOENT);
    assert_int_equal(sb_sla_queue_team("logistics", team, sizeof(team)), SB_E_NOENT);
    assert_int_equal(sb_sla_queue_team("/logistics", team, sizeof(team)), SB_E_NOENT);
    assert_int_equal(sb_sla_queue_team(NULL, team, sizeof(team)), SB_E_NOENT);
    assert_int_equal(sb_sla_queue_team("aftersale/x", small, sizeof(small)), SB_E_TOOBIG);

    /* A transfer's team first, then the agent's team, then the queue's; only teams the
     * roster knows. */
    assert_string_equal(sb_sla_roster_resolve(r, "aftersale", "a-1", "vip/x"), "aftersale");
    assert_string_equal(sb_sla_roster_resolve(r, "unknown", "a-1", NULL), "vip");
    assert_string_equal(sb_sla_roster_resolve(r, NULL, "a-2", "vip/x"), "aftersale");
    assert_string_equal(sb_sla_roster_resolve(r, "", "a-3", "vip/x"), "vip");
    assert_string_equal(sb_sla_roster_resolve(r, NULL, "a-9", "vip/x~secondary"), "vip");
    assert_null(sb_sla_roster_resolve(r, NULL, NULL, "any/x~wide"));
    assert_null(sb_sla_roster_resolve(r, NULL, NULL, "unknown/x"));
    assert_null(sb_sla_roster_resolve(r, NULL, "a-3", NULL));
    sb_sla_roster_destroy(r);
}

/* ------------------------------------------------------------------ re-target */

static struct sb_sla_policy_row prow(int64_t id, const char *band, const char *team,
                                     int64_t first_s, int64_t resolution_s, bool business)
{
    struct sb_sla_policy_row r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    sb_strlcpy(r.kind, "band", sizeof(r.kind));
    sb_strlcpy(r.band, band, sizeof(r.band));
    sb_strlcpy(r.team_id, team, sizeof(r.team_id));
    r.first_response_s = first_s;
    r.resolution_s = resolution_s;
    r.business_time = business;
    r.n_warn = 2;
    r.warn_fractions[0] = 0.75;
    r.warn_fractions[1] = 0.9;
    return r;
}

/* Berlin, Monday–Friday 09:00–17:00. */
static struct sb_cal *berlin_cal(void)
{
    struct sb_cal_hours hours[5];
    char err[256];
    for (int wd = 1; wd <= 5; wd++)
        hours[wd - 1] = (struct sb_cal_hours){wd, 9 * 3600, 17 * 3600};
    struct sb_cal_conf conf = {"de", hours, 5, NULL, 0};
    struct sb_cal *cal = sb_cal_new(&conf, load_tz("Europe/Berlin"), err, sizeof(err));
    if (cal == NULL)
        fail_msg("%s", err);
    return cal;
}

struct fixture {
    struct sb_sla_engine *e;
    struct sb_sla_events ev;
    uint16_t shanghai, berlin;
};

static int setup(void **state)
{
    char err[256];
    struct fixture *f = calloc(1, sizeof(*f));
    f->e = sb_sla_engine_new(NULL, err, sizeof(err));
    if (f->e == NULL || sb_sla_engine_add_calendar(f->e, shanghai_cal(), &f->shanghai) != 0 ||
        sb_sla_engine_add_calendar(f->e, berlin_cal(), &f->berlin) != 0)
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

static void expect_event(const struct sb_sla_events *ev, size_t i, enum sb_sla_event_type type,
                         int64_t due, int64_t target_at)
{
    if (i >= ev->n)
        fail_msg("event %zu missing (%zu events)", i, ev->n);
    assert_int_equal(ev->v[i].type, type);
    assert_ms_equal(ev->v[i].due_ms, due);
    assert_ms_equal(ev->v[i].target_at_ms, target_at);
}

static void test_retarget_on_team_keeps_elapsed(void **state)
{
    struct fixture *f = *state;
    char err[256];
    struct sb_sla_policy_row rows[] = {prow(1, "P3", "", 4 * 3600, 24 * 3600, false),
                                       prow(2, "P3", "vip", 3600, 8 * 3600, false)};
    struct sb_sla_policies *p = sb_sla_policies_new(rows, 2, err, sizeof(err));
    struct sb_sla_situation sit = {SB_BAND_P3, SB_CHANNEL_CHAT, NULL, SB_PERIOD_NONE};
    struct sb_sla_target t;
    struct sb_sla_start s;
    const struct sb_sla_clock *c;

    assert_non_null(p);
    /* Triaged with no team: the band row (4 h). */
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &sit, &t), 0);
    assert_int_equal(t.policy_id, 1);
    memset(&s, 0, sizeof(s));
    s.ticket_id = "T-1";
    s.kind = SB_SLA_FIRST_RESPONSE;
    s.band = SB_BAND_P3;
    s.target = t;
    s.at_ms = T0;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), 0);
    expect_event(&f->ev, 0, SB_SLA_EV_STARTED, T0, T0 + 4 * HOUR_MS);
    sb_sla_events_clear(&f->ev);

    /* Assigned to an agent of team vip after 30 min: its row (1 h), the 30 min kept. */
    sit.team_id = "vip";
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &sit, &t), 0);
    assert_int_equal(t.policy_id, 2);
    assert_int_equal(sb_sla_engine_retarget_cal(f->e, "T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P3, &t,
                                                0, T0 + M(30), &f->ev),
                     0);
    assert_int_equal(f->ev.n, 1);
    expect_event(&f->ev, 0, SB_SLA_EV_STARTED, T0 + M(30), T0 + M(60));
    assert_true(f->ev.v[0].retarget);
    assert_int_equal(f->ev.v[0].policy_id, 2);
    assert_int_equal(f->ev.v[0].target_ms, HOUR_MS);
    c = sb_sla_engine_get(f->e, "T-1", SB_SLA_FIRST_RESPONSE);
    assert_int_equal(c->el_cal_ms, M(30));
    assert_int_equal(c->started_at, T0);
    sb_sla_events_clear(&f->ev);

    /* The same team again (a replayed assignment): nothing. */
    assert_int_equal(sb_sla_engine_retarget_cal(f->e, "T-1", SB_SLA_FIRST_RESPONSE, SB_BAND_P3, &t,
                                                0, T0 + M(31), &f->ev),
                     0);
    assert_int_equal(f->ev.n, 0);

    /* Warnings and the breach on the team's target, counted from the first contact. */
    sb_sla_engine_advance(f->e, T0 + M(60), 100, &f->ev);
    assert_int_equal(f->ev.n, 4);
    expect_event(&f->ev, 0, SB_SLA_EV_WARNING, T0 + M(45), T0 + M(60));
    expect_event(&f->ev, 1, SB_SLA_EV_WARNING, T0 + M(54), T0 + M(60));
    expect_event(&f->ev, 2, SB_SLA_EV_BREACHED, T0 + M(60), T0 + M(60));
    expect_event(&f->ev, 3, SB_SLA_EV_ESCALATED, T0 + M(60), T0 + M(60));
    assert_int_equal(f->ev.v[3].level, SB_LEVEL_LEAD);
    sb_sla_events_clear(&f->ev);

    /* Known only after the team's target passed: breached at the re-target instant. */
    sit.team_id = NULL;
    sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &sit, &s.target);
    s.ticket_id = "T-2";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_retarget_cal(f->e, "T-2", SB_SLA_FIRST_RESPONSE, SB_BAND_P3, &t, 0, T0 + M(90),
                               &f->ev);
    assert_int_equal(f->ev.n, 5);
    expect_event(&f->ev, 3, SB_SLA_EV_BREACHED, T0 + M(90), T0 + M(90));
    sb_sla_events_clear(&f->ev);
    sb_sla_policies_destroy(p);
}

static void test_team_calendar_counts_business_time(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_target t = {0};
    struct sb_sla_start s;
    const struct sb_sla_clock *c;

    /* 8 business hours, started on the default calendar (Shanghai, open 13:00–18:00 at
     * T0): Monday 14:00–18:00 and Tuesday 09:00–12:00, 13:00–14:00 → Tuesday 06:00 UTC. */
    t.target_ms = 8 * HOUR_MS;
    t.business_time = true;
    t.n_warn = 1;
    t.warn_bp[0] = 5000;
    memset(&s, 0, sizeof(s));
    s.ticket_id = "T-1";
    s.kind = SB_SLA_RESOLUTION;
    s.band = SB_BAND_P3;
    s.target = t;
    s.cal = f->shanghai;
    s.at_ms = T0;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), 0);
    expect_event(&f->ev, 0, SB_SLA_EV_STARTED, T0, T0 + 24 * HOUR_MS);
    sb_sla_events_clear(&f->ev);

    /* The team (Berlin, 09:00–17:00) known at 08:00 UTC (10:00 in Berlin): 2 h counted
     * in Shanghai are kept, the 6 h left count in Berlin's hours: Monday 16:00 Berlin,
     * 14:00 UTC. The 50 % warning (4 h) falls at 12:00 Berlin. */
    assert_int_equal(sb_sla_engine_retarget_cal(f->e, "T-1", SB_SLA_RESOLUTION, SB_BAND_P3, &t,
                                                f->berlin, T0 + 2 * HOUR_MS, &f->ev),
                     0);
    assert_int_equal(f->ev.n, 1);
    expect_event(&f->ev, 0, SB_SLA_EV_STARTED, T0 + 2 * HOUR_MS, T0 + 8 * HOUR_MS);
    assert_int_equal(f->ev.v[0].cal, f->berlin);
    assert_true(f->ev.v[0].business_time);
    c = sb_sla_engine_get(f->e, "T-1", SB_SLA_RESOLUTION);
    assert_int_equal(c->cal, f->berlin);
    assert_int_equal(c->el_bus_ms, 2 * HOUR_MS);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_advance(f->e, T0 + 8 * HOUR_MS, 100, &f->ev);
    assert_int_equal(f->ev.n, 3);
    expect_event(&f->ev, 0, SB_SLA_EV_WARNING, T0 + 4 * HOUR_MS, T0 + 8 * HOUR_MS);
    expect_event(&f->ev, 1, SB_SLA_EV_BREACHED, T0 + 8 * HOUR_MS, T0 + 8 * HOUR_MS);
    sb_sla_events_clear(&f->ev);
    /* The further interval (min(target, 1 h)) counts in Berlin's hours too: 16:00 + 1 h
     * crosses the close at 17:00 exactly: 17:00 Berlin, 15:00 UTC. */
    sb_sla_engine_advance(f->e, T0 + 30 * HOUR_MS, 100, &f->ev);
    assert_int_equal(f->ev.n, 1);
    expect_event(&f->ev, 0, SB_SLA_EV_ESCALATED, T0 + 9 * HOUR_MS, T0 + 8 * HOUR_MS);
    sb_sla_events_clear(&f->ev);

    /* Only the calendar changes (same target): still a re-target. */
    s.ticket_id = "T-2";
    sb_sla_engine_start(f->e, &s, &f->ev);
    sb_sla_events_clear(&f->ev);
    sb_sla_engine_retarget_cal(f->e, "T-2", SB_SLA_RESOLUTION, SB_BAND_P3, &t, f->shanghai,
                               T0 + HOUR_MS, &f->ev);
    assert_int_equal(f->ev.n, 0); /* the calendar it has: nothing */
    assert_int_equal(sb_sla_engine_retarget_cal(f->e, "T-2", SB_SLA_RESOLUTION, SB_BAND_P3, &t, 99,
                                                T0 + HOUR_MS, &f->ev),
                     SB_E_NOENT);
}

static void test_team_calendar_working_days(void **state)
{
    struct fixture *f = *state;
    struct sb_sla_target t = {0};
    struct sb_sla_start s;

    /* One working day, started on the default calendar: Shanghai's Monday 14:00 to
     * Tuesday's close (18:00), 12 business hours. */
    t.working_days = 1;
    memset(&s, 0, sizeof(s));
    s.ticket_id = "T-1";
    s.kind = SB_SLA_COMPLEX_COMPLAINT;
    s.band = SB_BAND_P3;
    s.target = t;
    s.cal = f->shanghai;
    s.at_ms = T0;
    assert_int_equal(sb_sla_engine_start(f->e, &s, &f->ev), 0);
    expect_event(&f->ev, 0, SB_SLA_EV_STARTED, T0, T0 + 28 * HOUR_MS);
    assert_int_equal(f->ev.v[0].target_ms, 12 * HOUR_MS);
    sb_sla_events_clear(&f->ev);
    /* The team's calendar after 2 h: one working day of Berlin from the start (Monday
     * 08:00 Berlin) to Tuesday's close is 16 business hours; 2 h counted, 14 h left from
     * Monday 10:00 Berlin: Tuesday 16:00 Berlin, 14:00 UTC. */
    sb_sla_engine_retarget_cal(f->e, "T-1", SB_SLA_COMPLEX_COMPLAINT, SB_BAND_P3, &t, f->berlin,
                               T0 + 2 * HOUR_MS, &f->ev);
    assert_int_equal(f->ev.n, 1);
    expect_event(&f->ev, 0, SB_SLA_EV_STARTED, T0 + 2 * HOUR_MS, T0 + 32 * HOUR_MS);
    assert_int_equal(f->ev.v[0].target_ms, 16 * HOUR_MS);
    sb_sla_events_clear(&f->ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roster_lookups),
        cmocka_unit_test(test_roster_refuses_repeated_ids),
        cmocka_unit_test(test_queue_team_and_resolve),
        cmocka_unit_test_setup_teardown(test_retarget_on_team_keeps_elapsed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_team_calendar_counts_business_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_team_calendar_working_days, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
