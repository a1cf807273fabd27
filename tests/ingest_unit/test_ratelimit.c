/* Unit tests of the per-source token buckets (services/ingest/ratelimit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ratelimit.h"

#include <stdio.h>

static void test_burst_then_rate(void **state)
{
    struct sb_ratelimit *rl = sb_ratelimit_new(10, 5, 64);
    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(sb_ratelimit_take(rl, "1.2.3.4", 1000), 0);
    assert_int_equal(sb_ratelimit_take(rl, "1.2.3.4", 1000), 1); /* Retry-After 1 s */
    assert_int_equal(sb_ratelimit_take(rl, "5.6.7.8", 1000), 0); /* others unaffected */
    assert_int_equal(sb_ratelimit_take(rl, "1.2.3.4", 1100), 0); /* 100 ms = one token */
    assert_int_equal(sb_ratelimit_take(rl, "1.2.3.4", 1100), 1);
    sb_ratelimit_destroy(rl);
}

static void test_slow_rate_retry_after(void **state)
{
    struct sb_ratelimit *rl = sb_ratelimit_new(0.1, 1, 64);
    (void)state;
    assert_int_equal(sb_ratelimit_take(rl, "x", 0), 0);
    assert_int_equal(sb_ratelimit_take(rl, "x", 0), 10);
    sb_ratelimit_destroy(rl);
}

static void test_bounded_under_flood(void **state)
{
    struct sb_ratelimit *rl = sb_ratelimit_new(1, 1, 16);
    char src[32];
    (void)state;
    /* Far more sources than slots: memory stays bounded and nobody is wrongly refused
     * on a first request. */
    for (int i = 0; i < 10000; i++) {
        snprintf(src, sizeof(src), "10.0.%d.%d", i / 256, i % 256);
        assert_int_equal(sb_ratelimit_take(rl, src, i), 0);
    }
    sb_ratelimit_destroy(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_slow_rate_retry_after),
        cmocka_unit_test(test_bounded_under_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
