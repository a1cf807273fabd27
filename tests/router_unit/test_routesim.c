/* The routing core against queueing theory (tools/sb-routesim/sim.c): M/M/c runs at
 * occupancies 0.70 to 0.95 must give P(wait), ASA and service level within 5 % of Erlang
 * C, with confidence intervals narrow enough for that to mean something, and far from
 * Erlang C for one agent more; the scenarios must show their expected behaviour (VIPs
 * wait less, a shared pool beats split pools, overflow cuts the longest waits); runs are
 * reproducible. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "erlang.h"
#include "sim.h"

#include "sb/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TOLERANCE 0.05

struct mmc_case {
    double rate, aht;
    int agents;
    double customers; /* measured customers wanted: sets the duration */
};

/* Heavier traffic needs longer runs: the relaxation time of the queue grows as the
 * occupancy nears 1. */
static const struct mmc_case CASES[] = {
    {0.1, 70, 10, 1.0e6},    /* occupancy 0.70 */
    {0.04, 100, 5, 1.0e6},   /* 0.80 */
    {0.085, 100, 10, 1.5e6}, /* 0.85 */
    {0.09, 100, 10, 2.0e6},  /* 0.90 */
    {0.475, 10, 5, 5.0e6},   /* 0.95 */
};

static double rel(double got, double want)
{
    return fabs(got - want) / want;
}

static void check(const char *what, double sim, double half, double theory, double theory_c1)
{
    print_message("    %-8s simulated %10.4f +- %8.4f   Erlang C %10.4f   diff %+6.2f%%   "
                  "(c+1: %10.4f)\n",
                  what, sim, half, theory, 100 * (sim - theory) / theory, theory_c1);
    if (rel(sim, theory) > TOLERANCE)
        fail_msg("%s: simulated %.6f, Erlang C %.6f: more than %.0f%% apart", what, sim, theory,
                 100 * TOLERANCE);
    /* Meaningful: the interval is narrower than the tolerance. */
    if (half > TOLERANCE * theory)
        fail_msg("%s: 95%% half width %.6f is wider than %.0f%% of %.6f", what, half,
                 100 * TOLERANCE, theory);
}

static void test_mmc_matches_erlang_c(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        const struct mmc_case *k = &CASES[i];
        struct sb_sim_model m;
        struct sb_sim_result res;
        char err[256];
        double a = k->rate * k->aht;
        int c = k->agents;

        sb_sim_model_default(&m);
        m.duration_s = k->customers / 0.9 / k->rate;
        m.warmup_s = 0.1 * m.duration_s;
        m.sl_threshold_s = 20;
        m.seed = 20 + i;
        sb_sim_model_mmc(&m, k->rate, k->aht, c);
        if (sb_sim_run(&m, &res, err, sizeof(err)) != 0)
            fail_msg("run: %s", err);
        print_message("  lambda %.4g/s, AHT %g s, c %d, occupancy %.2f: %llu measured\n", k->rate,
                      k->aht, c, a / c, (unsigned long long)res.all.answered);
        assert_int_equal(res.over_capacity, 0);
        assert_true(res.all.answered > 0.95 * k->customers);
        check("P(wait)", res.all.p_wait, res.all.ci_p_wait.half, sb_erlang_c(a, c),
              sb_erlang_c(a, c + 1));
        check("ASA s", res.all.asa_s, res.all.ci_asa.half, sb_erlang_asa(k->rate, k->aht, c),
              sb_erlang_asa(k->rate, k->aht, c + 1));
        check("SL 20 s", res.all.sl, res.all.ci_sl.half, sb_erlang_sl(k->rate, k->aht, c, 20),
              sb_erlang_sl(k->rate, k->aht, c + 1, 20));
        check("occupancy", res.occupancy, res.ci_occ.half, a / c, a / (c + 1));
        /* The comparison can tell one agent apart: Erlang C for c + 1 is far off. */
        assert_true(rel(res.all.asa_s, sb_erlang_asa(k->rate, k->aht, c + 1)) > 3 * TOLERANCE);
        assert_true(rel(res.all.p_wait, sb_erlang_c(a, c + 1)) > 2 * TOLERANCE);
    }
}

static void test_runs_are_reproducible(void **state)
{
    struct sb_sim_model m;
    struct sb_sim_result r1, r2, r3;
    char err[256];
    (void)state;

    sb_sim_model_default(&m);
    m.duration_s = 20000;
    m.warmup_s = 1000;
    m.percentiles = 1;
    assert_int_equal(sb_sim_scenario("overflow", 0, &m), 0);
    assert_int_equal(sb_sim_run(&m, &r1, err, sizeof(err)), 0);
    assert_int_equal(sb_sim_run(&m, &r2, err, sizeof(err)), 0);
    assert_memory_equal(&r1, &r2, sizeof(r1));
    m.seed = 2;
    assert_int_equal(sb_sim_run(&m, &r3, err, sizeof(err)), 0);
    assert_true(r3.all.answered != r1.all.answered || r3.all.asa_s != r1.all.asa_s);
    m.batches = 1;
    assert_int_equal(sb_sim_run(&m, &r3, err, sizeof(err)), SB_E_INVAL);
    assert_non_null(strstr(err, "batches"));
    assert_int_equal(sb_sim_scenario("nothing", 0, &m), SB_E_INVAL);
}

/* Theory lies within three half widths of the simulated estimate. */
static void consistent(const char *what, struct sb_sim_ci ci, double theory)
{
    print_message("  %s: simulated %.3f +- %.3f, theory %.3f\n", what, ci.mean, ci.half, theory);
    if (fabs(ci.mean - theory) > 3 * ci.half)
        fail_msg("%s: simulated %.4f +- %.4f, theory %.4f", what, ci.mean, ci.half, theory);
}

static void run_pair(const char *name, double duration, struct sb_sim_model *m,
                     struct sb_sim_result *res, struct sb_sim_model *base,
                     struct sb_sim_result *bres)
{
    char err[256];
    sb_sim_model_default(m);
    m->duration_s = duration;
    m->warmup_s = 0.1 * duration;
    m->percentiles = 1;
    *base = *m;
    assert_int_equal(sb_sim_scenario(name, 0, m), 0);
    assert_int_equal(sb_sim_scenario(name, 1, base), 0);
    if (sb_sim_run(m, res, err, sizeof(err)) != 0 || sb_sim_run(base, bres, err, sizeof(err)) != 0)
        fail_msg("%s: %s", name, err);
    assert_int_equal(res->over_capacity, 0);
    assert_int_equal(bres->over_capacity, 0);
    for (int v = 0; v < 2; v++) {
        const struct sb_sim_model *mm = v == 0 ? m : base;
        const struct sb_sim_result *rr = v == 0 ? res : bres;
        for (size_t c = 0; c < mm->ncls; c++)
            print_message("  %s %-8s %-8s ASA %8.2f s  SL %.4f  p99 %8.1f s  max %8.1f s\n", name,
                          v == 0 ? "variant" : "baseline", mm->cls[c].name, rr->cls[c].asa_s,
                          rr->cls[c].sl, rr->cls[c].p99_s, rr->cls[c].max_s);
    }
}

static void test_vip_waits_less(void **state)
{
    struct sb_sim_model m, base;
    struct sb_sim_result res, bres;
    (void)state;

    run_pair("vip", 1.0e6, &m, &res, &base, &bres);
    /* Class 0 is the VIPs, class 1 everybody else. */
    assert_true(res.cls[0].asa_s < 0.5 * res.cls[1].asa_s);
    assert_true(res.cls[0].sl > res.cls[1].sl);
    assert_true(res.cls[0].asa_s < bres.cls[0].asa_s);
    assert_true(res.cls[0].p99_s < bres.cls[0].p99_s);
    /* Priority moves waiting around, it does not remove it: the overall mean stays
     * that of first come first served, which is Erlang C's. */
    assert_true(rel(res.all.asa_s, bres.all.asa_s) < 0.1);
    consistent("vip baseline ASA", bres.all.ci_asa, sb_erlang_asa(0.15, 120, 20));
}

static void test_shared_pool_beats_split_pools(void **state)
{
    struct sb_sim_model m, base;
    struct sb_sim_result res, bres;
    (void)state;

    run_pair("two-skills", 1.0e6, &m, &res, &base, &bres);
    assert_true(res.all.asa_s < 0.8 * bres.all.asa_s);
    assert_true(res.all.sl > bres.all.sl);
    /* The split baseline is two independent M/M/c queues: Erlang C applies to each. */
    consistent("split skill-a ASA", bres.cls[0].ci_asa, sb_erlang_asa(0.3, 60, 19));
    consistent("split skill-b ASA", bres.cls[1].ci_asa, sb_erlang_asa(0.2, 60, 13));
    /* One pool of all 32 agents is the bound a partly shared pool cannot beat. */
    assert_true(res.all.asa_s > 0.9 * sb_erlang_asa(0.5, 60, 32));
}

static void test_overflow_cuts_the_longest_waits(void **state)
{
    struct sb_sim_model m, base;
    struct sb_sim_result res, bres;
    (void)state;

    run_pair("overflow", 1.0e6, &m, &res, &base, &bres);
    /* Class 0 is the loaded team (north). */
    assert_true(res.cls[0].overflowed > 0);
    assert_int_equal(bres.cls[0].overflowed, 0);
    assert_true(res.cls[0].p99_s < 0.5 * bres.cls[0].p99_s);
    assert_true(res.cls[0].max_s < bres.cls[0].max_s);
    assert_true(res.cls[0].asa_s < bres.cls[0].asa_s);
    assert_true(res.all.p99_s < bres.all.p99_s);
    /* …at some cost to the team that lends its agents, whose waits stay short. */
    assert_true(res.cls[1].asa_s >= bres.cls[1].asa_s);
    /* Without overflow, north is an M/M/10 queue of its own. */
    consistent("north without overflow ASA", bres.cls[0].ci_asa, sb_erlang_asa(0.095, 100, 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mmc_matches_erlang_c),
        cmocka_unit_test(test_runs_are_reproducible),
        cmocka_unit_test(test_vip_waits_less),
        cmocka_unit_test(test_shared_pool_beats_split_pools),
        cmocka_unit_test(test_overflow_cuts_the_longest_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
