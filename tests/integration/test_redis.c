/* Integration tests of the Redis wrapper against the local Redis: reconnect after
 * the server kills our connection (CLIENT KILL), scripts reloaded after SCRIPT FLUSH
 * (what a restart does), pipelining, and a clean failure when Redis is unreachable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/err.h"
#include "sb/redis.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static struct sb_redis *open_redis(void)
{
    char err[256];
    struct sb_redis *r =
        sb_redis_new(tu_env("SB_REDIS_URL", "redis://127.0.0.1:16379/0"), 1000, err, sizeof(err));
    if (r == NULL)
        fail_msg("redis: %s", err);
    return r;
}

static void test_reconnect_after_client_kill(void **state)
{
    struct sb_redis *r = open_redis();
    struct sb_redis *admin = open_redis();
    redisReply *rep;
    long long id;
    (void)state;

    rep = sb_redis_cmdf(r, "SET sbtest:reconnect %s", "before");
    assert_non_null(rep);
    freeReplyObject(rep);
    rep = sb_redis_cmdf(r, "CLIENT ID");
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    id = rep->integer;
    freeReplyObject(rep);

    rep = sb_redis_cmdf(admin, "CLIENT KILL ID %lld", id);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);

    /* The next call notices the dead connection, reconnects once and succeeds. */
    rep = sb_redis_cmdf(r, "GET sbtest:reconnect");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "before");
    freeReplyObject(rep);
    assert_int_equal(sb_redis_reconnects(r), 1);
    rep = sb_redis_cmdf(r, "CLIENT ID");
    assert_true(rep->integer != id);
    freeReplyObject(rep);
    sb_redis_destroy(admin);
    sb_redis_destroy(r);
}

static void test_script_reload(void **state)
{
    struct sb_redis *r = open_redis();
    const char *keys[] = {"sbtest:cap"};
    const char *args[] = {"3"};
    redisReply *rep;
    int idx;
    (void)state;

    idx = sb_redis_script_add(r,
                              "local n = redis.call('INCR', KEYS[1]) if n > tonumber(ARGV[1]) then "
                              "redis.call('DECR', KEYS[1]) return 0 end return n");
    assert_true(idx >= 0);
    rep = sb_redis_cmdf(r, "DEL sbtest:cap");
    freeReplyObject(rep);
    for (int i = 1; i <= 4; i++) {
        if (i == 3) {
            rep = sb_redis_cmdf(r, "SCRIPT FLUSH");
            freeReplyObject(rep);
        }
        rep = sb_redis_eval(r, idx, 1, keys, 1, args);
        assert_non_null(rep);
        if (rep->type != REDIS_REPLY_INTEGER)
            fail_msg("eval %d: reply type %d (%s)", i, rep->type,
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "-");
        assert_int_equal(rep->integer, i <= 3 ? i : 0);
        freeReplyObject(rep);
    }
    sb_redis_destroy(r);
}

static void test_pipeline(void **state)
{
    struct sb_redis *r = open_redis();
    const char *set[] = {"SET", "sbtest:p", "1"};
    const char *incr[] = {"INCRBY", "sbtest:p", "41"};
    const char *get[] = {"GET", "sbtest:p"};
    const char **argvs[] = {set, incr, get};
    const int argcs[] = {3, 3, 2};
    redisReply *replies[3];
    (void)state;

    assert_int_equal(sb_redis_pipeline(r, 3, argcs, argvs, NULL, replies), 0);
    assert_int_equal(replies[1]->integer, 42);
    assert_string_equal(replies[2]->str, "42");
    for (int i = 0; i < 3; i++)
        freeReplyObject(replies[i]);
    sb_redis_destroy(r);
}

static void test_unreachable(void **state)
{
    char err[256] = "";
    (void)state;
    assert_null(sb_redis_new("redis://127.0.0.1:1/0", 200, err, sizeof(err)));
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_null(sb_redis_new("http://x", 200, err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconnect_after_client_kill),
        cmocka_unit_test(test_script_reload),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
