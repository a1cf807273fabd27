/* Unit tests of Erlang C (services/router/erlang.c) against values computed by hand
 * from the closed forms in exact rational arithmetic (docs/router-core.md), including
 * the classic staffing example of 100 calls in 30 minutes with a 3-minute handle time
 * (10 Erlangs) and a target of 80 % answered within 20 s, and queues of 1000 agents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "erlang.h"

#include "sb/err.h"

#include <math.h>
#include <stdio.h>

/* Within half a unit of the fourth decimal of the reference. */
static void near4(double got, double want, const char *what)
{
    if (!(fabs(got - want) <= 5e-5))
        fail_msg("%s: got %.6f, want %.6f", what, got, want);
}

static void test_classic_example(void **state)
{
    const double lambda = 100.0 / 1800.0, aht = 180;
    (void)state;

    near4(sb_erlang_traffic(lambda, aht), 10.0, "traffic");
    /* 11 agents: 68.21 % wait, ASA 122.78 s, 38.96 % within 20 s. */
    near4(sb_erlang_c(10, 11), 0.682118, "P(wait) c=11");
    near4(sb_erlang_asa(lambda, aht, 11), 122.781277, "ASA c=11");
    near4(sb_erlang_sl(lambda, aht, 11, 20), 0.389614, "SL c=11");
    near4(sb_erlang_occupancy(lambda, aht, 11), 0.909091, "occupancy c=11");
    /* 13 agents miss the 80 % target (79.56 %), 14 reach it (88.84 %). */
    near4(sb_erlang_c(10, 13), 0.285270, "P(wait) c=13");
    near4(sb_erlang_sl(lambda, aht, 13, 20), 0.795595, "SL c=13");
    near4(sb_erlang_c(10, 14), 0.174132, "P(wait) c=14");
    near4(sb_erlang_asa(lambda, aht, 14), 7.835937, "ASA c=14");
    near4(sb_erlang_sl(lambda, aht, 14, 20), 0.888350, "SL c=14");
    assert_int_equal(sb_erlang_agents(lambda, aht, 20, 0.80, 0), 14);
    assert_int_equal(sb_erlang_agents(lambda, aht, 20, 0.90, 0), 15);
    /* SPEC.md §6: a 15 % reserve for peaks, rounded up: 14 × 1.15 = 16.1 → 17. */
    assert_int_equal(sb_erlang_agents(lambda, aht, 20, 0.80, 0.15), 17);
    assert_int_equal(sb_erlang_agents(lambda, aht, 20, 0.80, 0.10), 16);
    near4(sb_erlang_b(10, 11), 0.163232, "Erlang B c=11");
}

static void test_single_server_and_simulator_cases(void **state)
{
    (void)state;
    /* M/M/1: P(wait) = ρ, ASA = ρ·AHT/(1 − ρ). */
    near4(sb_erlang_c(0.85, 1), 0.85, "M/M/1 P(wait)");
    near4(sb_erlang_asa(0.0425, 20, 1), 0.85 * 20 / 0.15, "M/M/1 ASA");
    near4(sb_erlang_sl(0.0425, 20, 1, 20), 1 - 0.85 * exp(-0.15), "M/M/1 SL");
    /* Cases of the simulator's validation table. */
    near4(sb_erlang_c(7, 10), 0.221731, "P(wait) a=7 c=10");
    near4(sb_erlang_asa(0.1, 70, 10), 5.173728, "ASA a=7 c=10");
    near4(sb_erlang_sl(0.1, 70, 10, 20), 0.905903, "SL a=7 c=10");
    near4(sb_erlang_c(380, 400), 0.220314, "P(wait) a=380 c=400");
    near4(sb_erlang_asa(2, 190, 400), 2.092987, "ASA a=380 c=400");
}

static void test_large_queues_are_stable(void **state)
{
    (void)state;
    /* Exact values from the closed form with 1000! computed in integers. */
    near4(sb_erlang_c(950, 1000), 0.06825342, "P(wait) a=950 c=1000");
    near4(sb_erlang_c(990, 1000), 0.65908042, "P(wait) a=990 c=1000");
    near4(sb_erlang_b(950, 1000), 0.00364929, "Erlang B a=950 c=1000");
    near4(sb_erlang_c(100, 101), 0.88331450, "P(wait) a=100 c=101");
    /* Far beyond what factorials or powers survive in doubles. */
    for (int c = 2000; c <= 200000; c *= 10) {
        double pw = sb_erlang_c(0.97 * c, c);
        assert_true(isfinite(pw) && pw > 0 && pw < 1);
    }
    /* 900 Erlangs: the answer is the first c whose service level reaches the target. */
    int c = sb_erlang_agents(5, 180, 20, 0.8, 0);
    assert_true(c > 900);
    assert_true(sb_erlang_sl(5, 180, c, 20) >= 0.8);
    assert_true(sb_erlang_sl(5, 180, c - 1, 20) < 0.8);
}

static void test_edges(void **state)
{
    (void)state;
    assert_true(sb_erlang_c(10, 10) == 1.0);
    assert_true(sb_erlang_c(12, 10) == 1.0);
    assert_true(isinf(sb_erlang_asa(1, 10, 10)));
    assert_true(sb_erlang_sl(1, 10, 10, 20) == 0.0);
    assert_true(sb_erlang_occupancy(2, 10, 10) == 1.0);
    assert_true(sb_erlang_c(0, 3) == 0.0);
    assert_true(sb_erlang_b(5, 0) == 1.0);
    assert_true(isnan(sb_erlang_b(-1, 3)));
    assert_true(isnan(sb_erlang_asa(1, 0, 3)));
    assert_true(isnan(sb_erlang_sl(1, 1, 3, -1)));
    assert_int_equal(sb_erlang_agents(1, 10, 20, 1.0, 0), SB_E_INVAL);
    assert_int_equal(sb_erlang_agents(1, 10, 20, 0.8, -0.1), SB_E_INVAL);
    assert_int_equal(sb_erlang_agents(-1, 10, 20, 0.8, 0), SB_E_INVAL);
    assert_int_equal(sb_erlang_agents(0, 10, 20, 0.8, 0), 1);
    near4(sb_erlang_eta(4, 300, 10), 150, "ETA 4 ahead");
    near4(sb_erlang_eta(0, 300, 10), 30, "ETA none ahead");
    assert_true(isinf(sb_erlang_eta(3, 300, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classic_example),
        cmocka_unit_test(test_single_server_and_simulator_cases),
        cmocka_unit_test(test_large_queues_are_stable),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
