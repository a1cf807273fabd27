/* Unit tests of UUIDv7 generation: format, embedded time, strict monotonicity
 * within a millisecond, across threads, and when the clock steps back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/event.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N 100000

static void test_format_and_time(void **state)
{
    char id[SB_UUID_STRLEN + 1];
    (void)state;
    sb_uuid7_at(1716213600123LL, id);
    assert_true(sb_uuid7_valid(id));
    assert_int_equal(id[14], '7');
    assert_true(strchr("89ab", id[19]) != NULL);
    assert_int_equal(sb_uuid7_time_ms(id), 1716213600123LL);
    assert_false(sb_uuid7_valid("01890a5d-ac96-474b-bcce-b302099a8057"));
    assert_false(sb_uuid7_valid("01890a5d-ac96-774b-bcce-b302099a805"));
    assert_false(sb_uuid7_valid("01890a5dxac96-774b-bcce-b302099a8057"));
}

static void test_monotonic_same_millisecond(void **state)
{
    char prev[SB_UUID_STRLEN + 1], cur[SB_UUID_STRLEN + 1];
    (void)state;
    /* A burst far larger than the 12-bit counter, all stamped with one ms. */
    sb_uuid7_at(1800000000000LL, prev);
    for (int i = 0; i < N; i++) {
        sb_uuid7_at(1800000000000LL, cur);
        if (strcmp(prev, cur) >= 0)
            fail_msg("not increasing at %d: %s then %s", i, prev, cur);
        memcpy(prev, cur, sizeof(cur));
    }
}

static void test_monotonic_clock_back(void **state)
{
    char a[SB_UUID_STRLEN + 1], b[SB_UUID_STRLEN + 1];
    (void)state;
    sb_uuid7_at(1900000000000LL, a);
    sb_uuid7_at(1899999990000LL, b); /* wall clock stepped back 10 s */
    assert_true(strcmp(a, b) < 0);
}

static char ids[2 * (N / 4)][SB_UUID_STRLEN + 1];

static void *worker(void *arg)
{
    char(*mine)[SB_UUID_STRLEN + 1] = arg;
    for (int i = 0; i < N / 4; i++)
        sb_uuid7_new(mine[i]);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_unique_across_threads(void **state)
{
    pthread_t t[2];
    (void)state;
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, ids + i * (N / 4));
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < 2; k++)
        for (int i = 1; i < N / 4; i++)
            assert_true(strcmp(ids[k * (N / 4) + i - 1], ids[k * (N / 4) + i]) < 0);
    qsort(ids, 2 * (N / 4), sizeof(ids[0]), cmp);
    for (size_t i = 1; i < 2 * (N / 4); i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
}

static void test_trace_id(void **state)
{
    char t[SB_TRACE_ID_STRLEN + 1];
    (void)state;
    sb_trace_id_new(t);
    assert_true(sb_trace_id_valid(t));
    assert_false(sb_trace_id_valid("00000000000000000000000000000000"));
    assert_false(sb_trace_id_valid("4bf92f3577b34da6a3ce929d0e0e473"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_time),
        cmocka_unit_test(test_monotonic_same_millisecond),
        cmocka_unit_test(test_monotonic_clock_back),
        cmocka_unit_test(test_unique_across_threads),
        cmocka_unit_test(test_trace_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
