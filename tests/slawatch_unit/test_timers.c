/* Unit tests of the timer heap and the engine's storage (services/slawatch/timers.c,
 * engine.c): random arming, moving, cancelling and popping checked step by step
 * against a plain array; the (ticket, kind) index under random starts and removals;
 * and a restart — clocks snapshotted mid-run and restored into a new engine fire what
 * fell due while it was down at once, exactly once, in deadline order, with the same
 * identities as an engine that never stopped. */
#include "slatest.h"

#include "engine.h"
#include "timers.h"

#include "sb/err.h"

#include <stdlib.h>

static uint64_t rnd_state = 12345;

static uint64_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rnd_state >> 17;
}

#define NONE INT64_MIN

/* The reference: one instant per id, NONE when disarmed; the earliest by scanning. */
static bool ref_min(const int64_t *ref, uint32_t n, uint32_t *id, int64_t *due)
{
    bool any = false;
    for (uint32_t i = 0; i < n; i++) {
        if (ref[i] == NONE)
            continue;
        if (!any || ref[i] < *due) {
            *id = i;
            *due = ref[i];
            any = true;
        }
    }
    return any;
}

static void test_timers_against_reference(void **state)
{
    enum { IDS = 700, OPS = 120000 };
    int64_t ref[IDS];
    struct sb_sla_timers *t = sb_sla_timers_new(4); /* grows many times */
    size_t count = 0;
    (void)state;
    for (int i = 0; i < IDS; i++)
        ref[i] = NONE;
    for (int op = 0; op < OPS; op++) {
        uint32_t id = (uint32_t)(rnd() % IDS), got_id = 0, want_id = 0;
        int64_t due = (int64_t)(rnd() % 5000), got_due = 0, want_due = 0; /* many ties */
        switch (rnd() % 6) {
        case 0:
        case 1:
        case 2:
            assert_int_equal(sb_sla_timers_set(t, id, due), 0);
            count += ref[id] == NONE;
            ref[id] = due;
            break;
        case 3:
            assert_int_equal(sb_sla_timers_cancel(t, id), ref[id] != NONE);
            count -= ref[id] != NONE;
            ref[id] = NONE;
            break;
        case 4: {
            bool want = ref_min(ref, IDS, &want_id, &want_due) && want_due <= due;
            bool got = sb_sla_timers_pop(t, due, &got_id, &got_due);
            assert_int_equal(got, want);
            if (got) {
                assert_int_equal(got_id, want_id);
                assert_int_equal(got_due, want_due);
                ref[got_id] = NONE;
                count--;
            }
            break;
        }
        default: {
            int64_t armed_due = 0;
            assert_int_equal(sb_sla_timers_armed(t, id, &armed_due), ref[id] != NONE);
            if (ref[id] != NONE)
                assert_int_equal(armed_due, ref[id]);
            break;
        }
        }
        assert_int_equal(sb_sla_timers_count(t), count);
        bool want = ref_min(ref, IDS, &want_id, &want_due);
        bool got = sb_sla_timers_peek(t, &got_id, &got_due);
        assert_int_equal(got, want);
        if (want) {
            assert_int_equal(got_id, want_id);
            assert_int_equal(got_due, want_due);
        }
    }
    /* Draining returns everything in (due, id) order. */
    uint32_t id, prev_id = 0;
    int64_t due, prev_due = INT64_MIN;
    size_t drained = 0;
    while (sb_sla_timers_pop(t, INT64_MAX, &id, &due)) {
        assert_true(due > prev_due || (due == prev_due && id > prev_id));
        assert_int_equal(ref[id], due);
        prev_due = due;
        prev_id = id;
        drained++;
    }
    assert_int_equal(drained, count);
    assert_int_equal(sb_sla_timers_set(t, SB_SLA_TIMERS_MAX_ID, 1), SB_E_INVAL);
    assert_false(sb_sla_timers_cancel(t, 99999999));
    sb_sla_timers_destroy(t);
}

static void test_timers_large_ids_and_order(void **state)
{
    struct sb_sla_timers *t = sb_sla_timers_new(0);
    uint32_t id;
    int64_t due;
    (void)state;
    assert_int_equal(sb_sla_timers_set(t, 5000000, 30), 0);
    assert_int_equal(sb_sla_timers_set(t, 7, 30), 0);
    assert_int_equal(sb_sla_timers_set(t, 9, 10), 0);
    assert_int_equal(sb_sla_timers_set(t, 9, 40), 0); /* moved later */
    assert_false(sb_sla_timers_pop(t, 29, &id, &due));
    assert_true(sb_sla_timers_pop(t, 30, &id, &due));
    assert_int_equal(id, 7);
    assert_true(sb_sla_timers_pop(t, 30, &id, &due));
    assert_int_equal(id, 5000000);
    assert_false(sb_sla_timers_pop(t, 30, &id, &due));
    assert_true(sb_sla_timers_peek(t, &id, &due));
    assert_int_equal(due, 40);
    assert_true(sb_sla_timers_bytes(t) > 5000000 * sizeof(uint32_t));
    sb_sla_timers_destroy(t);
}

/* --- the engine's index ------------------------------------------------------------ */

#define T0 1716184800000LL

static struct sb_sla_start start_for(const char *ticket, int kind, int64_t at, int64_t target)
{
    struct sb_sla_start s = {ticket, (enum sb_sla_kind)kind, SB_BAND_P2, {0}, 0, at};
    s.target.target_ms = target;
    s.target.n_warn = 2;
    s.target.warn_bp[0] = 7500;
    s.target.warn_bp[1] = 9000;
    return s;
}

static void test_index_random(void **state)
{
    enum { TICKETS = 3000, KINDS = 3, OPS = 40000 };
    struct sb_sla_engine_opts o;
    struct sb_sla_events ev = {0};
    static bool present[TICKETS][KINDS];
    char err[128], ticket[32];
    size_t n = 0;
    (void)state;
    sb_sla_engine_opts_default(&o);
    o.max_clocks = 10000;
    struct sb_sla_engine *e = sb_sla_engine_new(&o, err, sizeof(err));
    assert_non_null(e);
    for (int op = 0; op < OPS; op++) {
        int t = (int)(rnd() % TICKETS), k = (int)(rnd() % KINDS);
        snprintf(ticket, sizeof(ticket), "T-%d", t);
        if (rnd() % 3 != 0) {
            struct sb_sla_start s = start_for(ticket, k, T0 + op, 3600000);
            int rc = sb_sla_engine_start(e, &s, &ev);
            assert_int_equal(rc, present[t][k] ? SB_E_CONFLICT : 0);
            n += !present[t][k];
            present[t][k] = true;
        } else {
            int rc = sb_sla_engine_remove(e, ticket, k);
            assert_int_equal(rc, present[t][k] ? 0 : SB_E_NOENT);
            n -= present[t][k];
            present[t][k] = false;
        }
        sb_sla_events_clear(&ev);
        if (op % 1000 == 0) {
            /* Every key answers for itself and only for itself. */
            for (int i = 0; i < TICKETS; i++) {
                snprintf(ticket, sizeof(ticket), "T-%d", i);
                for (int j = 0; j < KINDS; j++) {
                    const struct sb_sla_clock *c = sb_sla_engine_get(e, ticket, j);
                    assert_int_equal(c != NULL, present[i][j]);
                    if (c != NULL) {
                        assert_string_equal(c->ticket_id, ticket);
                        assert_int_equal(c->kind, j);
                    }
                }
            }
        }
    }
    struct sb_sla_engine_stats st;
    sb_sla_engine_stats(e, &st);
    assert_int_equal(st.clocks, n);
    assert_int_equal(st.armed, n);
    /* The limit on clocks holds. */
    for (int i = 0; n < o.max_clocks; i++) {
        snprintf(ticket, sizeof(ticket), "X-%d", i);
        struct sb_sla_start s = start_for(ticket, 0, T0, 3600000);
        assert_int_equal(sb_sla_engine_start(e, &s, &ev), 0);
        n++;
    }
    struct sb_sla_start s = start_for("X-last", 0, T0, 3600000);
    size_t before = ev.n;
    assert_int_equal(sb_sla_engine_start(e, &s, &ev), SB_E_TOOBIG);
    assert_int_equal(ev.n, before);
    sb_sla_events_free(&ev);
    sb_sla_engine_destroy(e);
}

/* --- restart ------------------------------------------------------------------------ */

struct snap {
    struct sb_sla_clock *v;
    size_t n;
};

static void collect(const struct sb_sla_clock *c, void *arg)
{
    struct snap *s = arg;
    s->v[s->n++] = *c;
}

static struct sb_sla_engine *new_engine(void)
{
    char err[128];
    struct sb_sla_engine *e = sb_sla_engine_new(NULL, err, sizeof(err));
    uint16_t idx;
    assert_non_null(e);
    assert_int_equal(sb_sla_engine_add_calendar(e, shanghai_cal(), &idx), 0);
    assert_int_equal(idx, 1);
    return e;
}

/* The same random population on an engine: mixed kinds, targets, business time,
 * pauses; returns the number of clocks. */
static size_t populate(struct sb_sla_engine *e, uint64_t seed, struct sb_sla_events *ev)
{
    char ticket[32];
    size_t n = 0;
    rnd_state = seed;
    for (int i = 0; i < 1500; i++) {
        snprintf(ticket, sizeof(ticket), "T-%d", i);
        int kinds = 1 + (int)(rnd() % 3);
        for (int k = 0; k < kinds; k++) {
            int64_t at = T0 + (int64_t)(rnd() % (4 * 3600000ULL));
            struct sb_sla_start s = start_for(ticket, k, at, 60000 * (1 + (int64_t)(rnd() % 480)));
            s.band = (enum sb_sla_band)(1 + rnd() % 4);
            if (rnd() % 4 == 0) {
                s.cal = 1;
                s.target.business_time = true;
            }
            assert_int_equal(sb_sla_engine_start(e, &s, ev), 0);
            n++;
            if (rnd() % 5 == 0) {
                int64_t p = at + (int64_t)(rnd() % 3600000);
                sb_sla_engine_pause(e, ticket, k, p, ev);
                sb_sla_engine_resume(e, ticket, k, p + (int64_t)(rnd() % 7200000), ev);
            }
        }
        if (rnd() % 7 == 0)
            sb_sla_engine_followup(e, ticket, SB_SLA_FOLLOWUP_CSAT,
                                   T0 + (int64_t)(rnd() % (48 * 3600000ULL)));
    }
    return n;
}

static char **ids_of(const struct sb_sla_events *ev, size_t from)
{
    char **v = calloc(ev->n - from + 1, sizeof(char *));
    for (size_t i = from; i < ev->n; i++) {
        v[i - from] = malloc(SB_SLA_ID_INPUT_MAX);
        assert_int_equal(sb_sla_event_id_input(&ev->v[i], v[i - from], SB_SLA_ID_INPUT_MAX), 0);
    }
    return v;
}

static void free_ids(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_restart_exactly_once_in_order(void **state)
{
    struct sb_sla_events ev_a = {0}, ev_b = {0}, ignore = {0};
    struct snap snap = {0};
    int64_t t_snap = T0 + 5 * 3600000LL, t_end = T0 + 60 * 3600000LL;
    (void)state;

    /* A: runs all along, advanced every 10 s like a service. */
    struct sb_sla_engine *a = new_engine();
    size_t n = populate(a, 777, &ignore);
    sb_sla_events_clear(&ignore);
    for (int64_t now = T0; now <= t_snap; now += 10000)
        sb_sla_engine_advance(a, now, SIZE_MAX, &ignore);
    /* The snapshot a service stores after producing what A produced so far. */
    snap.v = calloc(n + 2000, sizeof(*snap.v));
    sb_sla_engine_foreach(a, collect, &snap);
    assert_true(snap.n > n);
    for (int64_t now = t_snap + 10000; now <= t_end; now += 10000)
        sb_sla_engine_advance(a, now, SIZE_MAX, &ev_a);
    assert_true(ev_a.n > 3000);

    /* B: down from t_snap to t_end, then restored and advanced once. */
    struct sb_sla_engine *b = new_engine();
    for (size_t i = 0; i < snap.n; i++)
        assert_int_equal(sb_sla_engine_restore(b, &snap.v[i]), 0);
    assert_int_equal(sb_sla_engine_advance(b, t_end, SIZE_MAX, &ev_b) > 0, 1);
    assert_int_equal(sb_sla_engine_advance(b, t_end, SIZE_MAX, &ev_b), 0);

    /* Deadline order, and late by exactly the outage. */
    for (size_t i = 1; i < ev_b.n; i++)
        assert_true(ev_b.v[i].due_ms >= ev_b.v[i - 1].due_ms);
    for (size_t i = 0; i < ev_b.n; i++)
        if (ev_b.v[i].type == SB_SLA_EV_BREACHED)
            assert_int_equal(ev_b.v[i].late_ms, t_end - ev_b.v[i].target_at_ms);
    /* The same events, with the same identities, as the engine that never stopped,
     * and none twice. */
    char **ia = ids_of(&ev_a, 0), **ib = ids_of(&ev_b, 0);
    assert_int_equal(ev_b.n, ev_a.n);
    qsort(ia, ev_a.n, sizeof(char *), cmp_str);
    qsort(ib, ev_b.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < ev_a.n; i++) {
        assert_string_equal(ib[i], ia[i]);
        if (i > 0)
            assert_string_not_equal(ia[i], ia[i - 1]);
    }
    free_ids(ia, ev_a.n);
    free_ids(ib, ev_b.n);

    /* A snapshot older than the last events produced re-creates them with the same
     * identities (downstream drops them) and nothing else. */
    struct sb_sla_engine *c = new_engine();
    struct sb_sla_events ev_c = {0}, ev_a0 = {0};
    struct sb_sla_engine *a0 = new_engine();
    struct snap old = {calloc(n + 2000, sizeof(*old.v)), 0};
    populate(a0, 777, &ignore);
    for (int64_t now = T0; now <= t_snap - 3600000; now += 10000)
        sb_sla_engine_advance(a0, now, SIZE_MAX, &ignore);
    sb_sla_engine_foreach(a0, collect, &old);
    for (int64_t now = t_snap - 3600000 + 10000; now <= t_snap; now += 10000)
        sb_sla_engine_advance(a0, now, SIZE_MAX, &ev_a0);
    for (size_t i = 0; i < old.n; i++)
        sb_sla_engine_restore(c, &old.v[i]);
    sb_sla_engine_advance(c, t_end, SIZE_MAX, &ev_c);
    assert_int_equal(ev_c.n, ev_a0.n + ev_a.n);
    char **ic = ids_of(&ev_c, 0);
    qsort(ic, ev_c.n, sizeof(char *), cmp_str);
    for (size_t i = 1; i < ev_c.n; i++)
        assert_string_not_equal(ic[i], ic[i - 1]);
    free_ids(ic, ev_c.n);

    free(snap.v);
    free(old.v);
    sb_sla_events_free(&ev_a);
    sb_sla_events_free(&ev_b);
    sb_sla_events_free(&ev_c);
    sb_sla_events_free(&ev_a0);
    sb_sla_events_free(&ignore);
    sb_sla_engine_destroy(a);
    sb_sla_engine_destroy(a0);
    sb_sla_engine_destroy(b);
    sb_sla_engine_destroy(c);
}

/* A calendar replaced at run time (a holiday added) moves the business deadlines of
 * the clocks on it. */
static void test_replace_calendar(void **state)
{
    struct sb_sla_events ev = {0};
    char err[128];
    struct sb_sla_engine *e = new_engine();
    (void)state;
    /* Monday 23 September 17:00 CST + 2 business hours = Tuesday 10:00. */
    struct sb_sla_start s =
        start_for("T-1", SB_SLA_RESOLUTION, utc_ms(2024, 9, 23, 9, 0, 0), 2 * HOUR_MS);
    s.cal = 1;
    s.target.business_time = true;
    assert_int_equal(sb_sla_engine_start(e, &s, &ev), 0);
    assert_ms_equal(ev.v[0].target_at_ms, utc_ms(2024, 9, 24, 2, 0, 0));
    /* Tuesday 24 becomes a day off: Wednesday 10:00. */
    struct sb_cal_hours hours[] = {{1, 32400, 43200}, {1, 46800, 64800}, {2, 32400, 43200},
                                   {2, 46800, 64800}, {3, 32400, 43200}, {3, 46800, 64800}};
    struct sb_cal_holiday hol[] = {{2024, 9, 24, false, 0}};
    struct sb_cal_conf conf = {"cn-aftersale", hours, 6, hol, 1};
    struct sb_cal *cal = sb_cal_new(&conf, load_tz("Asia/Shanghai"), err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(sb_sla_engine_replace_calendar(e, 1, cal), 0);
    assert_ms_equal(sb_sla_engine_get(e, "T-1", SB_SLA_RESOLUTION)->deadline,
                    utc_ms(2024, 9, 25, 2, 0, 0));
    uint16_t idx = 0;
    assert_int_equal(sb_sla_engine_find_calendar(e, "cn-aftersale", &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(sb_sla_engine_find_calendar(e, "nope", &idx), SB_E_NOENT);
    sb_sla_events_free(&ev);
    sb_sla_engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_against_reference),
        cmocka_unit_test(test_timers_large_ids_and_order),
        cmocka_unit_test(test_index_random),
        cmocka_unit_test(test_restart_exactly_once_in_order),
        cmocka_unit_test(test_replace_calendar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
