/* Unit tests of the routing core (services/router/core.c): matching on skills, team,
 * channel and language; the three policies; ordering by band and wait; aging; continuity;
 * overflow in two stages; declines and suggested colleagues; rescoring, claims,
 * restores and presence; and randomized runs checking that no decision ever exceeds an
 * agent's capacity and that no ticket waits while an agent who could take it is free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) ((int64_t)((x)*1000000.0))

/* ---------------------------------------------------------------- helpers */

static struct sb_router *mk(const struct sb_route_cfg *cfg)
{
    char err[256] = "";
    struct sb_router *r = sb_route_new(cfg, err, sizeof(err));
    if (r == NULL)
        fail_msg("sb_route_new: %s", err);
    return r;
}

/* Splits s at commas into parts (pointing into buf). Returns how many. */
static int split(const char *s, char *buf, size_t bufsz, char **parts, int max)
{
    int n = 0;
    char *p = buf;

    sb_strlcpy(buf, s, bufsz);
    while (*p != '\0' && n < max) {
        char *comma = strchr(p, ',');
        parts[n++] = p;
        if (comma == NULL)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/* Adds an available agent. skills: "name=level,name=level"; caps: voice, chat, email. */
static void agent(struct sb_router *r, const char *id, const char *team, const char *skills,
                  int voice, int chat, int email, int64_t now)
{
    struct sb_route_agent_spec a;
    struct sb_route_skill sk[SB_ROUTE_MAX_SKILLS];
    char buf[512], err[256] = "";
    char *parts[SB_ROUTE_MAX_SKILLS];
    int n, rc;

    memset(&a, 0, sizeof(a));
    n = split(skills, buf, sizeof(buf), parts, SB_ROUTE_MAX_SKILLS);
    for (int i = 0; i < n; i++) {
        char *eq = strchr(parts[i], '=');
        assert_non_null(eq);
        *eq = '\0';
        sk[a.nskills].name = parts[i];
        sk[a.nskills].level = (int)strtol(eq + 1, NULL, 10);
        a.nskills++;
    }
    a.id = id;
    a.team = team;
    a.skills = sk;
    a.capacity[SB_ROUTE_CH_VOICE] = voice;
    a.capacity[SB_ROUTE_CH_CHAT] = chat;
    a.capacity[SB_ROUTE_CH_EMAIL] = email;
    rc = sb_route_agent_set(r, &a, now, err, sizeof(err));
    if (rc != 0)
        fail_msg("agent %s: %s", id, err);
    assert_int_equal(sb_route_agent_presence(r, id, SB_ROUTE_AVAILABLE, now), 0);
}

static int ticket_full(struct sb_router *r, const char *id, int ch, int band, const char *team,
                       const char *skills, unsigned relax, const char *pref, int64_t arrived,
                       int64_t now)
{
    struct sb_route_ticket_spec t;
    char buf[512], err[256] = "";
    char *parts[SB_ROUTE_MAX_REQ];
    int n, rc;

    memset(&t, 0, sizeof(t));
    n = split(skills, buf, sizeof(buf), parts, SB_ROUTE_MAX_REQ);
    for (int i = 0; i < n; i++)
        t.skills[t.nskills++] = parts[i];
    t.id = id;
    t.channel = ch;
    t.band = band;
    t.team = team;
    t.relax_mask = relax;
    t.preferred_agent = pref;
    t.arrived_us = arrived;
    rc = sb_route_ticket_add(r, &t, now, err, sizeof(err));
    if (rc != 0 && rc != SB_E_CONFLICT)
        fail_msg("ticket %s: %s", id, err);
    return rc;
}

static int ticket(struct sb_router *r, const char *id, int ch, int band, const char *skills,
                  int64_t now)
{
    return ticket_full(r, id, ch, band, NULL, skills, 0, NULL, now, now);
}

static void expect_assign(struct sb_router *r, const char *tid, const char *aid)
{
    struct sb_route_decision d;
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_int_equal(d.kind, SB_ROUTE_ASSIGNED);
    assert_string_equal(d.ticket_id, tid);
    assert_string_equal(d.agent_id, aid);
}

static void expect_overflow(struct sb_router *r, const char *tid, int stage)
{
    struct sb_route_decision d;
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_int_equal(d.kind, SB_ROUTE_OVERFLOWED);
    assert_string_equal(d.ticket_id, tid);
    assert_int_equal(d.stage, stage);
}

static void expect_none(struct sb_router *r)
{
    struct sb_route_decision d;
    size_t n = sb_route_poll(r, &d, 1);
    if (n != 0)
        fail_msg("unexpected decision %d: ticket %s agent %s", d.kind, d.ticket_id, d.agent_id);
}

static int state_of(struct sb_router *r, const char *tid)
{
    struct sb_route_ticket_info ti;
    assert_int_equal(sb_route_ticket_get(r, tid, &ti), 0);
    return ti.state;
}

static void cfg_quiet(struct sb_route_cfg *cfg)
{
    sb_route_cfg_default(cfg);
    for (int b = 0; b < SB_ROUTE_BANDS; b++)
        cfg->overflow_us[b][0] = cfg->overflow_us[b][1] = -1;
}

/* ---------------------------------------------------------------- configuration */

static void test_cfg_is_validated(void **state)
{
    struct sb_route_cfg cfg;
    char err[256];
    (void)state;

    sb_route_cfg_default(&cfg);
    cfg.policy = 7;
    assert_null(sb_route_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "policy 7"));
    sb_route_cfg_default(&cfg);
    cfg.primary_level = 0;
    assert_null(sb_route_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "primary_level"));
    sb_route_cfg_default(&cfg);
    cfg.overflow_us[1][0] = S(60);
    cfg.overflow_us[1][1] = S(30);
    assert_null(sb_route_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "P2"));
    sb_route_cfg_default(&cfg);
    cfg.exclusion_search = 0;
    assert_null(sb_route_new(&cfg, err, sizeof(err)));
    sb_route_cfg_default(&cfg);
    cfg.continuity_wait_us = -1;
    assert_null(sb_route_new(&cfg, err, sizeof(err)));
    sb_route_destroy(NULL);
}

static void test_input_is_validated(void **state)
{
    struct sb_router *r = mk(NULL);
    struct sb_route_ticket_spec t;
    struct sb_route_agent_spec a;
    struct sb_route_skill sk = {"domain:x", 101};
    char err[256], longid[100];
    (void)state;

    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    memset(&t, 0, sizeof(t));
    t.id = "t1";
    t.channel = SB_ROUTE_CH_COUNT;
    t.band = 1;
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), SB_E_INVAL);
    assert_non_null(strstr(err, "channel"));
    t.channel = SB_ROUTE_CH_CHAT;
    t.band = 5;
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), SB_E_INVAL);
    t.band = 2;
    t.id = longid;
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), SB_E_TOOBIG);
    t.id = "";
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), SB_E_INVAL);
    t.id = "t1";
    t.nskills = SB_ROUTE_MAX_REQ + 1;
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), SB_E_TOOBIG);
    t.nskills = 0;
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), 0);
    assert_int_equal(sb_route_ticket_add(r, &t, 0, err, sizeof(err)), SB_E_CONFLICT);

    memset(&a, 0, sizeof(a));
    a.id = "a1";
    a.skills = &sk;
    a.nskills = 1;
    assert_int_equal(sb_route_agent_set(r, &a, 0, err, sizeof(err)), SB_E_INVAL);
    assert_non_null(strstr(err, "level 101"));
    sk.level = 3;
    a.capacity[SB_ROUTE_CH_CHAT] = -1;
    assert_int_equal(sb_route_agent_set(r, &a, 0, err, sizeof(err)), SB_E_INVAL);
    assert_int_equal(sb_route_agent_presence(r, "nobody", SB_ROUTE_AVAILABLE, 0), SB_E_NOENT);
    assert_int_equal(sb_route_ticket_done(r, "nothing", 0), SB_E_NOENT);
    assert_int_equal(sb_route_ticket_requeue(r, "t1", NULL, 0), SB_E_STATE);
    assert_int_equal(sb_route_ticket_rescore(r, "t1", 0, 0), SB_E_INVAL);
    sb_route_destroy(r);
}

/* ---------------------------------------------------------------- matching */

static void test_match_requires_every_skill_channel_and_team(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    cfg_quiet(&cfg);
    r = mk(&cfg);
    agent(r, "zh-logistics", NULL, "domain:logistics=5,lang:zh=5", 1, 3, 10, 0);
    agent(r, "en-logistics", NULL, "domain:logistics=5,lang:en=5", 1, 3, 10, 0);
    agent(r, "en-order-chat", NULL, "domain:order=5,lang:en=5", 0, 3, 0, 0);
    agent(r, "vip-en-order", "vip", "domain:order=5,lang:en=5", 1, 3, 10, 0);

    ticket(r, "t1", SB_ROUTE_CH_VOICE, 3, "domain:logistics,lang:en", S(1));
    expect_assign(r, "t1", "en-logistics");
    /* Calls about orders in English: only the VIP team's agent takes them; the ticket
     * asks for no team, so an agent of any team qualifies. */
    ticket(r, "t2", SB_ROUTE_CH_VOICE, 3, "domain:order,lang:en", S(2));
    expect_assign(r, "t2", "vip-en-order");
    /* A VIP ticket needs the VIP team: the chat-only agent of the same skills is not it. */
    ticket_full(r, "t3", SB_ROUTE_CH_CHAT, 1, "vip", "domain:order,lang:en", 0, NULL, S(3), S(3));
    expect_assign(r, "t3", "vip-en-order");
    /* Nobody speaks French: the ticket waits. */
    ticket(r, "t4", SB_ROUTE_CH_CHAT, 3, "domain:order,lang:fr", S(4));
    expect_none(r);
    assert_int_equal(state_of(r, "t4"), SB_ROUTE_T_QUEUED);
    /* Email for orders in English: the chat-only agent does not take email. */
    ticket(r, "t5", SB_ROUTE_CH_EMAIL, 3, "domain:order,lang:en", S(5));
    expect_assign(r, "t5", "vip-en-order");
    assert_int_equal(sb_route_waiting(r), 1);
    sb_route_destroy(r);
}

static void test_primary_level_gates_stage_zero(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    cfg_quiet(&cfg);
    cfg.primary_level = 3;
    r = mk(&cfg);
    agent(r, "novice", NULL, "domain:x=2", 1, 0, 0, 0);
    ticket(r, "t1", SB_ROUTE_CH_VOICE, 3, "domain:x", S(1));
    expect_none(r);
    agent(r, "expert", NULL, "domain:x=3", 1, 0, 0, S(2));
    expect_assign(r, "t1", "expert");
    sb_route_destroy(r);
}

static void test_policy_longest_idle(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    cfg_quiet(&cfg);
    cfg.policy = SB_ROUTE_LONGEST_IDLE;
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 1, 0, 0, S(0));
    agent(r, "b", NULL, "s=5", 1, 0, 0, S(1));
    agent(r, "c", NULL, "s=5", 1, 0, 0, S(2));
    ticket(r, "t1", SB_ROUTE_CH_VOICE, 3, "s", S(10));
    expect_assign(r, "t1", "a");
    ticket(r, "t2", SB_ROUTE_CH_VOICE, 3, "s", S(11));
    expect_assign(r, "t2", "b");
    assert_int_equal(sb_route_ticket_done(r, "t1", S(12)), 0); /* a idle since 12 */
    ticket(r, "t3", SB_ROUTE_CH_VOICE, 3, "s", S(13));
    expect_assign(r, "t3", "c"); /* idle since 2 */
    ticket(r, "t4", SB_ROUTE_CH_VOICE, 3, "s", S(14));
    expect_assign(r, "t4", "a");
    sb_route_destroy(r);
}

static void test_policy_least_occupied(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    cfg_quiet(&cfg);
    cfg.policy = SB_ROUTE_LEAST_OCCUPIED;
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 0, 3, 0, 0);
    agent(r, "b", NULL, "s=5", 0, 3, 0, 0);
    /* Chats spread one by one: a, b, a, b, a, b; then both are full. */
    for (int i = 0; i < 6; i++) {
        char id[8];
        sb_fmt(id, sizeof(id), "t%d", i);
        ticket(r, id, SB_ROUTE_CH_CHAT, 3, "s", S(1 + i));
        expect_assign(r, id, i % 2 == 0 ? "a" : "b");
    }
    ticket(r, "t6", SB_ROUTE_CH_CHAT, 3, "s", S(10));
    expect_none(r);
    /* b frees one chat: it takes the waiting ticket at once. */
    assert_int_equal(sb_route_ticket_done(r, "t1", S(11)), 0);
    expect_assign(r, "t6", "b");
    sb_route_destroy(r);
}

static void test_policy_highest_skill(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    cfg_quiet(&cfg);
    cfg.policy = SB_ROUTE_HIGHEST_SKILL;
    r = mk(&cfg);
    agent(r, "good", NULL, "s=4,lang:zh=5", 1, 0, 0, 0);
    agent(r, "best", NULL, "s=5,lang:zh=5", 1, 0, 0, S(1));
    agent(r, "fine", NULL, "s=3,lang:zh=5", 1, 0, 0, S(2));
    ticket(r, "t1", SB_ROUTE_CH_VOICE, 3, "s,lang:zh", S(10));
    expect_assign(r, "t1", "best");
    ticket(r, "t2", SB_ROUTE_CH_VOICE, 3, "s,lang:zh", S(11));
    expect_assign(r, "t2", "good");
    sb_route_destroy(r);
}

/* ---------------------------------------------------------------- ordering and aging */

static void test_order_band_then_wait(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_ticket_info ti;
    static const char *const want[] = {"p1-early", "p1-late", "p2", "p3-oldest", "p4"};
    (void)state;

    cfg_quiet(&cfg);
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 1, 0, 0, 0);
    ticket(r, "first", SB_ROUTE_CH_VOICE, 3, "s", S(1));
    expect_assign(r, "first", "a");
    ticket(r, "p3-oldest", SB_ROUTE_CH_VOICE, 3, "s", S(2));
    ticket(r, "p4", SB_ROUTE_CH_VOICE, 4, "s", S(3));
    ticket(r, "p2", SB_ROUTE_CH_VOICE, 2, "s", S(4));
    ticket(r, "p1-early", SB_ROUTE_CH_VOICE, 1, "s", S(5));
    ticket(r, "p1-late", SB_ROUTE_CH_VOICE, 1, "s", S(6));
    expect_none(r);
    assert_int_equal(sb_route_ticket_get(r, "p3-oldest", &ti), 0);
    assert_int_equal(ti.position, 3);
    assert_int_equal(sb_route_ticket_get(r, "p1-early", &ti), 0);
    assert_int_equal(ti.position, 0);
    assert_int_equal(sb_route_ticket_get(r, "p4", &ti), 0);
    assert_int_equal(ti.position, 4);
    assert_int_equal(sb_route_ticket_done(r, "first", S(7)), 0);
    for (int i = 0; i < 5; i++) {
        char prev[16];
        expect_assign(r, want[i], "a");
        sb_strlcpy(prev, want[i], sizeof(prev));
        assert_int_equal(sb_route_ticket_done(r, prev, S(8 + i)), 0);
    }
    expect_none(r);
    sb_route_destroy(r);
}

static void test_aging_lets_lower_bands_overtake(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    /* Defaults: P1 ranks 10 min after arrival, P3 4 h: a P3 ticket that has waited
     * more than 3 h 50 min goes before a new P1, and not a second less. */
    cfg_quiet(&cfg);
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 1, 0, 0, 0);
    ticket(r, "busy", SB_ROUTE_CH_VOICE, 3, "s", 0);
    expect_assign(r, "busy", "a");
    ticket(r, "old-p3", SB_ROUTE_CH_VOICE, 3, "s", S(1));
    ticket(r, "new-p1", SB_ROUTE_CH_VOICE, 1, "s", S(1 + 3 * 3600 + 50 * 60 + 1));
    ticket(r, "newer-p1", SB_ROUTE_CH_VOICE, 1, "s", S(1 + 3 * 3600 + 50 * 60 - 1));
    assert_int_equal(sb_route_ticket_done(r, "busy", S(5 * 3600)), 0);
    expect_assign(r, "newer-p1", "a");
    assert_int_equal(sb_route_ticket_done(r, "newer-p1", S(5 * 3600 + 1)), 0);
    expect_assign(r, "old-p3", "a");
    assert_int_equal(sb_route_ticket_done(r, "old-p3", S(5 * 3600 + 2)), 0);
    expect_assign(r, "new-p1", "a");
    sb_route_destroy(r);
}

static void test_aging_nothing_starves(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_decision d;
    int64_t now = 0, p4_wait = -1;
    char cur[16] = "busy";
    (void)state;

    /* One agent, a P4 ticket, and a P1 ticket every second that takes a second to
     * handle: with P1 ranked 0 and P4 60 s after arrival, the P4 ticket is answered after
     * 60 s, however long the P1 stream goes on. */
    cfg_quiet(&cfg);
    cfg.band_delay_us[0] = 0;
    cfg.band_delay_us[3] = S(60);
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 1, 0, 0, 0);
    ticket(r, "busy", SB_ROUTE_CH_VOICE, 1, "s", 0);
    expect_assign(r, "busy", "a");
    ticket(r, "p4", SB_ROUTE_CH_VOICE, 4, "s", 0);
    for (int i = 0; i < 200; i++) {
        char id[16];
        now += S(1);
        sb_fmt(id, sizeof(id), "p1-%d", i);
        ticket(r, id, SB_ROUTE_CH_VOICE, 1, "s", now - 1);
        assert_int_equal(sb_route_ticket_done(r, cur, now), 0);
        assert_int_equal(sb_route_poll(r, &d, 1), 1);
        assert_int_equal(d.kind, SB_ROUTE_ASSIGNED);
        sb_strlcpy(cur, d.ticket_id, sizeof(cur));
        if (strcmp(d.ticket_id, "p4") == 0)
            p4_wait = d.waited_us;
    }
    assert_int_equal(p4_wait, S(61));
    sb_route_destroy(r);
}

static void test_rescore_reorders(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_ticket_info ti;
    (void)state;

    cfg_quiet(&cfg);
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 1, 0, 0, 0);
    ticket(r, "busy", SB_ROUTE_CH_VOICE, 3, "s", 0);
    expect_assign(r, "busy", "a");
    ticket(r, "x", SB_ROUTE_CH_VOICE, 3, "s", S(1));
    ticket(r, "y", SB_ROUTE_CH_VOICE, 3, "s", S(2));
    assert_int_equal(sb_route_ticket_get(r, "y", &ti), 0);
    assert_int_equal(ti.position, 1);
    assert_int_equal(sb_route_ticket_rescore(r, "y", 1, S(3)), 0);
    assert_int_equal(sb_route_ticket_get(r, "y", &ti), 0);
    assert_int_equal(ti.position, 0);
    assert_int_equal(ti.band, 1);
    assert_int_equal(sb_route_ticket_done(r, "busy", S(4)), 0);
    expect_assign(r, "y", "a");
    sb_route_destroy(r);
}

/* ---------------------------------------------------------------- continuity */

static void test_continuity(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_decision d;
    (void)state;

    cfg_quiet(&cfg);
    cfg.continuity_wait_us = S(60);
    r = mk(&cfg);
    agent(r, "last", NULL, "s=5", 1, 0, 0, 0);
    agent(r, "other", NULL, "s=5", 1, 0, 0, S(100)); /* "last" is idle longer */

    /* Free: the returning customer goes to their last agent. */
    ticket_full(r, "c1", SB_ROUTE_CH_VOICE, 3, NULL, "s", 0, "other", S(200), S(200));
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_string_equal(d.agent_id, "other");
    assert_int_equal(d.continuity, 1);

    /* Busy: the customer waits for them although "last" is free… */
    ticket_full(r, "c2", SB_ROUTE_CH_VOICE, 3, NULL, "s", 0, "other", S(201), S(201));
    expect_none(r);
    assert_int_equal(state_of(r, "c2"), SB_ROUTE_T_WAITING_AGENT);
    /* …and gets them when they free up within the wait. */
    assert_int_equal(sb_route_ticket_done(r, "c1", S(230)), 0);
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_string_equal(d.ticket_id, "c2");
    assert_string_equal(d.agent_id, "other");
    assert_int_equal(d.continuity, 1);
    assert_int_equal(d.waited_us, S(29));

    /* Busy past the wait: at exactly 60 s the customer goes to whoever is free. */
    ticket_full(r, "c3", SB_ROUTE_CH_VOICE, 3, NULL, "s", 0, "other", S(300), S(300));
    expect_none(r);
    assert_int_equal(sb_route_tick(r, S(359)), 0);
    expect_none(r);
    int64_t dl;
    assert_int_equal(sb_route_next_deadline(r, &dl), 0);
    assert_int_equal(dl, S(360));
    assert_int_equal(sb_route_tick(r, S(360)), 0);
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_string_equal(d.ticket_id, "c3");
    assert_string_equal(d.agent_id, "last");
    assert_int_equal(d.continuity, 0);
    assert_int_equal(d.waited_us, S(60));

    /* Offline: no wait at all. */
    assert_int_equal(sb_route_ticket_done(r, "c3", S(400)), 0);
    assert_int_equal(sb_route_agent_presence(r, "other", SB_ROUTE_OFFLINE, S(401)), 0);
    ticket_full(r, "c4", SB_ROUTE_CH_VOICE, 3, NULL, "s", 0, "other", S(402), S(402));
    expect_assign(r, "c4", "last");

    /* Away while a customer waits for them: the customer stops waiting at once. */
    assert_int_equal(sb_route_ticket_done(r, "c2", S(403)), 0);
    assert_int_equal(sb_route_agent_presence(r, "other", SB_ROUTE_AVAILABLE, S(403)), 0);
    ticket(r, "c5", SB_ROUTE_CH_VOICE, 3, "s", S(404));
    expect_assign(r, "c5", "other");
    ticket_full(r, "c6", SB_ROUTE_CH_VOICE, 3, NULL, "s", 0, "other", S(405), S(405));
    expect_none(r);
    assert_int_equal(sb_route_ticket_done(r, "c4", S(406)), 0); /* "last" free, c6 waits */
    expect_none(r);
    assert_int_equal(sb_route_agent_presence(r, "other", SB_ROUTE_AWAY, S(407)), 0);
    expect_assign(r, "c6", "last");
    sb_route_destroy(r);
}

static void test_continuity_zero_wait(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    cfg_quiet(&cfg);
    cfg.continuity_wait_us = 0;
    r = mk(&cfg);
    agent(r, "last", NULL, "s=5", 1, 0, 0, 0);
    agent(r, "other", NULL, "s=5", 1, 0, 0, 0);
    ticket(r, "t0", SB_ROUTE_CH_VOICE, 3, "s", S(1));
    expect_assign(r, "t0", "last");
    ticket_full(r, "t1", SB_ROUTE_CH_VOICE, 3, NULL, "s", 0, "last", S(2), S(2));
    expect_assign(r, "t1", "other");
    sb_route_destroy(r);
}

/* ---------------------------------------------------------------- overflow */

static void test_overflow_secondary_then_other_teams(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_decision d;
    (void)state;

    cfg_quiet(&cfg);
    cfg.primary_level = 3;
    cfg.overflow_us[2][0] = S(30);
    cfg.overflow_us[2][1] = S(90);
    r = mk(&cfg);
    agent(r, "north-expert", "north", "domain:x=5,lang:zh=5,product:cloud=5", 1, 0, 0, 0);
    agent(r, "north-junior", "north", "domain:x=1,lang:zh=5,product:cloud=2", 1, 0, 0, 0);
    agent(r, "south-expert", "south", "domain:x=5,lang:zh=5", 1, 0, 0, 0);
    agent(r, "south-en", "south", "domain:x=5,lang:en=5,product:cloud=5", 1, 0, 0, 0);

    ticket_full(r, "busy", SB_ROUTE_CH_VOICE, 3, "north", "domain:x,lang:zh,product:cloud", 4, NULL,
                0, 0);
    expect_assign(r, "busy", "north-expert");
    ticket_full(r, "t1", SB_ROUTE_CH_VOICE, 3, "north", "domain:x,lang:zh,product:cloud", 4, NULL,
                S(1), S(1));
    ticket_full(r, "t2", SB_ROUTE_CH_VOICE, 3, "north", "domain:x,lang:zh,product:cloud", 4, NULL,
                S(2), S(2));
    expect_none(r);

    /* 30 s: stage 1, secondary skills in the same team. */
    assert_int_equal(sb_route_tick(r, S(31)), 0);
    expect_overflow(r, "t1", 1);
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_int_equal(d.kind, SB_ROUTE_ASSIGNED);
    assert_string_equal(d.agent_id, "north-junior");
    assert_int_equal(d.stage, 1);
    assert_int_equal(d.waited_us, S(30));
    assert_int_equal(sb_route_tick(r, S(32)), 0);
    expect_overflow(r, "t2", 1);
    expect_none(r);

    /* 90 s: stage 2, other teams, product line dropped, language kept. */
    assert_int_equal(sb_route_tick(r, S(91)), 0);
    expect_none(r);
    assert_int_equal(sb_route_tick(r, S(92)), 0);
    expect_overflow(r, "t2", 2);
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_string_equal(d.ticket_id, "t2");
    assert_string_equal(d.agent_id, "south-expert");
    assert_int_equal(d.stage, 2);
    sb_route_destroy(r);
}

static void test_overflowed_ticket_keeps_its_place(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    (void)state;

    /* South's own new ticket and north's ticket that overflowed into the wider queue
     * compete by rank: the older one goes first. */
    cfg_quiet(&cfg);
    cfg.overflow_us[2][1] = S(60);
    r = mk(&cfg);
    agent(r, "n", "north", "s=5", 1, 0, 0, 0);
    agent(r, "s", "south", "s=5", 1, 0, 0, 0);
    ticket_full(r, "nb", SB_ROUTE_CH_VOICE, 3, "north", "s", 0, NULL, 0, 0);
    expect_assign(r, "nb", "n");
    ticket_full(r, "sb", SB_ROUTE_CH_VOICE, 3, "south", "s", 0, NULL, 0, 0);
    expect_assign(r, "sb", "s");
    ticket_full(r, "north-old", SB_ROUTE_CH_VOICE, 3, "north", "s", 0, NULL, S(1), S(1));
    assert_int_equal(sb_route_tick(r, S(100)), 0);
    expect_overflow(r, "north-old", 2);
    ticket_full(r, "south-new", SB_ROUTE_CH_VOICE, 3, "south", "s", 0, NULL, S(101), S(101));
    assert_int_equal(sb_route_ticket_done(r, "sb", S(102)), 0);
    expect_assign(r, "north-old", "s");
    assert_int_equal(sb_route_ticket_done(r, "north-old", S(103)), 0);
    expect_assign(r, "south-new", "s");
    sb_route_destroy(r);
}

/* ---------------------------------------------------------------- offers and claims */

static void test_requeue_avoids_the_decliner(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_decision d;
    (void)state;

    cfg_quiet(&cfg);
    cfg.policy = SB_ROUTE_HIGHEST_SKILL;
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 1, 0, 0, 0);
    agent(r, "b", NULL, "s=4", 1, 0, 0, 0);
    agent(r, "c", NULL, "s=3", 1, 0, 0, 0);
    ticket(r, "t1", SB_ROUTE_CH_VOICE, 3, "s", S(10));
    expect_assign(r, "t1", "a");
    /* a lets the offer expire: a is still the best agent, yet b gets the ticket. */
    assert_int_equal(sb_route_ticket_requeue(r, "t1", NULL, S(40)), 0);
    expect_assign(r, "t1", "b");
    /* b declines and names c. */
    assert_int_equal(sb_route_ticket_requeue(r, "t1", "c", S(50)), 0);
    assert_int_equal(sb_route_poll(r, &d, 1), 1);
    assert_string_equal(d.agent_id, "c");
    assert_int_equal(d.continuity, 1);
    assert_int_equal(d.waited_us, S(40)); /* it kept its arrival */
    /* c declines too: a and b are avoided, so the ticket waits even though both are free. */
    assert_int_equal(sb_route_ticket_requeue(r, "t1", NULL, S(60)), 0);
    expect_none(r);
    assert_int_equal(state_of(r, "t1"), SB_ROUTE_T_QUEUED);
    /* Another ticket is not held back by t1's avoidance. */
    ticket(r, "t2", SB_ROUTE_CH_VOICE, 3, "s", S(61));
    expect_assign(r, "t2", "a");
    /* A new agent takes t1. */
    agent(r, "d", NULL, "s=3", 1, 0, 0, S(62));
    expect_assign(r, "t1", "d");
    sb_route_destroy(r);
}

static void test_claim_restore_presence(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_ticket_spec t;
    struct sb_route_agent_info ai;
    char err[256];
    (void)state;

    cfg_quiet(&cfg);
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 0, 2, 0, 0);
    assert_int_equal(sb_route_agent_presence(r, "a", SB_ROUTE_BUSY, S(1)), 0);
    ticket(r, "t1", SB_ROUTE_CH_CHAT, 3, "s", S(2));
    ticket(r, "t2", SB_ROUTE_CH_CHAT, 3, "s", S(3));
    ticket(r, "t3", SB_ROUTE_CH_CHAT, 3, "s", S(4));
    expect_none(r);
    /* A busy agent may still claim a ticket themselves. */
    assert_int_equal(sb_route_ticket_claim(r, "t3", "a", S(5)), 0);
    expect_assign(r, "t3", "a");
    assert_int_equal(sb_route_ticket_claim(r, "t3", "a", S(5)), SB_E_STATE);
    /* Available again: takes t1 up to its capacity of 2, t2 waits. */
    assert_int_equal(sb_route_agent_presence(r, "a", SB_ROUTE_AVAILABLE, S(6)), 0);
    expect_assign(r, "t1", "a");
    expect_none(r);
    assert_int_equal(sb_route_ticket_claim(r, "t2", "a", S(7)), SB_E_CONFLICT);
    assert_int_equal(sb_route_agent_get(r, "a", &ai), 0);
    assert_int_equal(ai.load[SB_ROUTE_CH_CHAT], 2);

    /* Restoring an assignment takes capacity, and is refused at capacity. */
    agent(r, "b", NULL, "s=5", 0, 1, 0, S(8));
    expect_assign(r, "t2", "b");
    memset(&t, 0, sizeof(t));
    t.id = "old";
    t.channel = SB_ROUTE_CH_CHAT;
    t.band = 3;
    t.skills[0] = "s";
    t.nskills = 1;
    assert_int_equal(sb_route_ticket_restore(r, &t, "b", S(9), err, sizeof(err)), SB_E_CONFLICT);
    assert_int_equal(sb_route_ticket_done(r, "t2", S(10)), 0);
    assert_int_equal(sb_route_ticket_restore(r, &t, "b", S(11), err, sizeof(err)), 0);
    expect_none(r);
    assert_int_equal(state_of(r, "old"), SB_ROUTE_T_ASSIGNED);
    assert_int_equal(sb_route_ticket_restore(r, &t, "b", S(11), err, sizeof(err)), SB_E_CONFLICT);
    sb_route_destroy(r);
}

static void test_agent_update_and_capacity_change(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_queue_info qi;
    (void)state;

    cfg_quiet(&cfg);
    r = mk(&cfg);
    agent(r, "a", NULL, "s=5", 0, 2, 0, 0);
    ticket(r, "t1", SB_ROUTE_CH_CHAT, 3, "s", S(1));
    ticket(r, "t2", SB_ROUTE_CH_CHAT, 3, "s", S(2));
    ticket(r, "t3", SB_ROUTE_CH_CHAT, 3, "t", S(3));
    expect_assign(r, "t1", "a");
    expect_assign(r, "t2", "a");
    /* Two queues a skill: levels 3+ (stage 0) and 1+ (stages 1 and 2, no team asked). */
    assert_int_equal(sb_route_queue_count(r), 4);
    /* Capacity lowered to 1 under a load of 2: nothing is taken back, nothing new. */
    agent(r, "a", NULL, "s=5,t=5", 0, 1, 0, S(4));
    expect_none(r);
    assert_int_equal(sb_route_ticket_done(r, "t1", S(5)), 0);
    expect_none(r);
    assert_int_equal(sb_route_ticket_done(r, "t2", S(6)), 0);
    expect_assign(r, "t3", "a"); /* the new skill t */
    assert_int_equal(sb_route_queue_get(r, 2, &qi), 0);
    assert_int_equal(qi.members, 1);
    assert_string_equal(qi.skills[0], "t");
    assert_string_equal(sb_route_channel_name(qi.channel), "chat");
    sb_route_destroy(r);
}

static void test_spec_fill(void **state)
{
    static const char *lines[] = {"cloud"};
    static const char *teams[] = {"cloud-team"};
    const struct sb_route_rules rules = {"vip-team", lines, teams, 1};
    struct sb_route_ticket_spec t;
    struct sb_route_req req;
    (void)state;

    memset(&t, 0, sizeof(t));
    assert_int_equal(sb_route_spec_fill(&rules, "logistics", "zh", "cloud", 0, &req, &t), 0);
    assert_int_equal(t.nskills, 3);
    assert_string_equal(t.skills[0], "domain:logistics");
    assert_string_equal(t.skills[1], "lang:zh");
    assert_string_equal(t.skills[2], "product:cloud");
    assert_int_equal(t.relax_mask, 4);
    assert_string_equal(t.team, "cloud-team");
    assert_int_equal(sb_route_spec_fill(&rules, "logistics", "zh", "cloud", 1, &req, &t), 0);
    assert_string_equal(t.team, "vip-team");
    assert_int_equal(sb_route_spec_fill(&rules, "order", NULL, "retail", 0, &req, &t), 0);
    assert_null(t.team);
    assert_int_equal(t.nskills, 2);
    assert_int_equal(t.relax_mask, 2);
    assert_int_equal(sb_route_channel_parse("email"), SB_ROUTE_CH_EMAIL);
    assert_int_equal(sb_route_channel_parse("fax"), SB_E_INVAL);
    assert_int_equal(sb_route_policy_parse("highest_skill"), SB_ROUTE_HIGHEST_SKILL);
    assert_int_equal(sb_route_presence_parse("away"), SB_ROUTE_AWAY);
}

/* ---------------------------------------------------------------- randomized */

struct mirror_agent {
    char id[16];
    int cap[SB_ROUTE_CH_COUNT];
    int load[SB_ROUTE_CH_COUNT];
};

static uint64_t rnd_state;

static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rnd_state >> 33) % n);
}

/* Applies decisions to the mirror, failing on any assignment beyond capacity. */
static void mirror_apply(struct sb_router *r, struct mirror_agent *ag, int nag, char (*owner)[16],
                         int *tch)
{
    struct sb_route_decision d;
    while (sb_route_poll(r, &d, 1) == 1) {
        int ti, ai;
        if (d.kind != SB_ROUTE_ASSIGNED)
            continue;
        ti = (int)strtol(d.ticket_id + 1, NULL, 10); /* "t<n>" */
        ai = 0;
        while (ai < nag && strcmp(ag[ai].id, d.agent_id) != 0)
            ai++;
        assert_true(ai < nag);
        if (ag[ai].load[tch[ti]] >= ag[ai].cap[tch[ti]])
            fail_msg("%s assigned to %s with load %d of capacity %d", d.ticket_id, d.agent_id,
                     ag[ai].load[tch[ti]], ag[ai].cap[tch[ti]]);
        ag[ai].load[tch[ti]]++;
        sb_strlcpy(owner[ti], d.agent_id, sizeof(owner[ti]));
    }
}

/* No queue holds a ticket while one of its agents is free (tickets avoiding agents
 * aside: with_requeues). */
static void check_work_conserving(struct sb_router *r)
{
    for (size_t i = 0; i < sb_route_queue_count(r); i++) {
        struct sb_route_queue_info qi;
        assert_int_equal(sb_route_queue_get(r, i, &qi), 0);
        if (qi.waiting > 0 && qi.free > 0)
            fail_msg("queue %zu holds %llu tickets with %u free agents", i,
                     (unsigned long long)qi.waiting, qi.free);
        assert_true(qi.free <= qi.available && qi.available <= qi.members);
        assert_int_equal(sb_route_queue_available(r, i), qi.available);
    }
    assert_int_equal(sb_route_queue_available(r, sb_route_queue_count(r)), 0);
}

static void random_run(int policy, int with_requeues, uint64_t seed)
{
    enum { NAG = 12, NT = 3000 };
    static const char *const skills[] = {"s0", "s1", "s2", "s3"};
    static const char *const teams[] = {"north", "south", NULL};
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct mirror_agent ag[NAG];
    static char owner[NT][16];
    static int tch[NT];
    static int live[NT];
    int64_t now = 0;

    rnd_state = seed;
    sb_route_cfg_default(&cfg);
    cfg.policy = policy;
    cfg.continuity_wait_us = S(20);
    for (int b = 0; b < SB_ROUTE_BANDS; b++) {
        cfg.overflow_us[b][0] = S(10 * (b + 1));
        cfg.overflow_us[b][1] = S(30 * (b + 1));
    }
    r = mk(&cfg);
    memset(ag, 0, sizeof(ag));
    memset(owner, 0, sizeof(owner));
    memset(live, 0, sizeof(live));
    for (int i = 0; i < NAG; i++) {
        char sk[64];
        sb_fmt(ag[i].id, sizeof(ag[i].id), "a%d", i);
        sb_fmt(sk, sizeof(sk), "%s=%u,%s=%u", skills[i % 4], 1 + rnd(5), skills[(i + 1) % 4],
               1 + rnd(5));
        ag[i].cap[SB_ROUTE_CH_VOICE] = (int)rnd(2);
        ag[i].cap[SB_ROUTE_CH_CHAT] = (int)rnd(4);
        ag[i].cap[SB_ROUTE_CH_EMAIL] = (int)rnd(6);
        agent(r, ag[i].id, teams[i % 3], sk, ag[i].cap[0], ag[i].cap[1], ag[i].cap[2], now);
    }
    for (int step = 0; step < NT; step++) {
        uint32_t op = rnd(100);
        now += (int64_t)rnd(3000000);
        /* Timers first, as a service does on every poll: a call applies the timers due
         * before its own effect, so a ticket may be assigned by its overflow just before
         * the call that was meant for it as a waiting ticket. */
        assert_int_equal(sb_route_tick(r, now), 0);
        mirror_apply(r, ag, NAG, owner, tch);
        if (op < 45) {
            char id[16], sk[32];
            int ch = (int)rnd(3);
            const char *pref = rnd(4) == 0 ? ag[rnd(NAG)].id : NULL;
            sb_fmt(id, sizeof(id), "t%d", step);
            sb_fmt(sk, sizeof(sk), "%s", skills[rnd(4)]);
            tch[step] = ch;
            live[step] = 1;
            ticket_full(r, id, ch, 1 + (int)rnd(4), teams[rnd(3)], sk, rnd(2), pref, now, now);
        } else if (op < 80) {
            int ti = (int)rnd((uint32_t)step + 1);
            char id[16];
            sb_fmt(id, sizeof(id), "t%d", ti);
            if (live[ti] && owner[ti][0] != '\0') {
                for (int ai = 0; ai < NAG; ai++) {
                    if (strcmp(ag[ai].id, owner[ti]) == 0)
                        ag[ai].load[tch[ti]]--;
                }
                owner[ti][0] = '\0';
                live[ti] = 0;
                assert_int_equal(sb_route_ticket_done(r, id, now), 0);
            } else if (live[ti]) {
                live[ti] = 0;
                assert_int_equal(sb_route_ticket_done(r, id, now), 0);
            }
        } else if (op < 88 && with_requeues) {
            int ti = (int)rnd((uint32_t)step + 1);
            char id[16];
            sb_fmt(id, sizeof(id), "t%d", ti);
            if (live[ti] && owner[ti][0] != '\0') {
                for (int ai = 0; ai < NAG; ai++) {
                    if (strcmp(ag[ai].id, owner[ti]) == 0)
                        ag[ai].load[tch[ti]]--;
                }
                owner[ti][0] = '\0';
                assert_int_equal(sb_route_ticket_requeue(r, id, ag[rnd(NAG)].id, now), 0);
            }
        } else if (op < 96) {
            int ai = (int)rnd(NAG);
            assert_int_equal(sb_route_agent_presence(r, ag[ai].id, (int)rnd(4), now), 0);
        } else {
            /* New capacities, possibly below the load: nothing new until it falls. */
            int ai = (int)rnd(NAG);
            char sk[64];
            sb_fmt(sk, sizeof(sk), "%s=%u", skills[rnd(4)], 1 + rnd(5));
            for (int ch = 0; ch < 3; ch++)
                ag[ai].cap[ch] = (int)rnd(4);
            agent(r, ag[ai].id, teams[rnd(3)], sk, ag[ai].cap[0], ag[ai].cap[1], ag[ai].cap[2],
                  now);
        }
        mirror_apply(r, ag, NAG, owner, tch);
        for (int ai = 0; ai < NAG; ai++) {
            struct sb_route_agent_info info;
            assert_int_equal(sb_route_agent_get(r, ag[ai].id, &info), 0);
            for (int ch = 0; ch < 3; ch++)
                assert_int_equal(info.load[ch], ag[ai].load[ch]);
        }
        if (!with_requeues)
            check_work_conserving(r);
    }
    sb_route_destroy(r);
}

static void test_random_capacity_and_work_conservation(void **state)
{
    (void)state;
    for (int p = SB_ROUTE_LEAST_OCCUPIED; p <= SB_ROUTE_HIGHEST_SKILL; p++) {
        random_run(p, 0, 11 + (uint64_t)p);
        random_run(p, 1, 101 + (uint64_t)p);
    }
}

static void test_many_tickets_positions(void **state)
{
    struct sb_route_cfg cfg;
    struct sb_router *r;
    struct sb_route_queue_info qi;
    (void)state;

    /* Enough tickets to grow every table several times; removing every other one keeps
     * the heap positions exact. */
    cfg_quiet(&cfg);
    r = mk(&cfg);
    for (int i = 0; i < 5000; i++) {
        char id[16];
        sb_fmt(id, sizeof(id), "t%d", i);
        ticket(r, id, SB_ROUTE_CH_EMAIL, 1 + i % 4, "s", S(i));
    }
    for (int i = 0; i < 5000; i += 2) {
        char id[16];
        sb_fmt(id, sizeof(id), "t%d", i);
        assert_int_equal(sb_route_ticket_done(r, id, S(6000)), 0);
    }
    assert_int_equal(sb_route_waiting(r), 2500);
    for (int i = 1; i < 5000; i += 2) {
        struct sb_route_ticket_info ti;
        char id[16];
        uint64_t want = 0;
        sb_fmt(id, sizeof(id), "t%d", i);
        assert_int_equal(sb_route_ticket_get(r, id, &ti), 0);
        /* Ahead: odd tickets of a better band, and of the same band that are older
         * (defaults: bands differ by far more than 5000 s). Bands of odd i: 2 and 4. */
        if (i % 4 == 1)
            want = (uint64_t)(i / 4);
        else
            want = 1250 + (uint64_t)(i / 4);
        assert_int_equal(ti.position, want);
    }
    assert_int_equal(sb_route_queue_get(r, 0, &qi), 0);
    assert_int_equal(qi.waiting, 2500);
    assert_int_equal(qi.oldest_us, S(1));
    agent(r, "a", NULL, "s=5", 0, 0, 10, S(7000));
    for (int k = 0; k < 10; k++) {
        char id[16];
        sb_fmt(id, sizeof(id), "t%d", 1 + 4 * k);
        expect_assign(r, id, "a");
    }
    sb_route_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_is_validated),
        cmocka_unit_test(test_input_is_validated),
        cmocka_unit_test(test_match_requires_every_skill_channel_and_team),
        cmocka_unit_test(test_primary_level_gates_stage_zero),
        cmocka_unit_test(test_policy_longest_idle),
        cmocka_unit_test(test_policy_least_occupied),
        cmocka_unit_test(test_policy_highest_skill),
        cmocka_unit_test(test_order_band_then_wait),
        cmocka_unit_test(test_aging_lets_lower_bands_overtake),
        cmocka_unit_test(test_aging_nothing_starves),
        cmocka_unit_test(test_rescore_reorders),
        cmocka_unit_test(test_continuity),
        cmocka_unit_test(test_continuity_zero_wait),
        cmocka_unit_test(test_overflow_secondary_then_other_teams),
        cmocka_unit_test(test_overflowed_ticket_keeps_its_place),
        cmocka_unit_test(test_requeue_avoids_the_decliner),
        cmocka_unit_test(test_claim_restore_presence),
        cmocka_unit_test(test_agent_update_and_capacity_change),
        cmocka_unit_test(test_spec_fill),
        cmocka_unit_test(test_random_capacity_and_work_conservation),
        cmocka_unit_test(test_many_tickets_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
