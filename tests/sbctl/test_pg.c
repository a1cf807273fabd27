/* Integration test of the PostgreSQL client against the local server: after the
 * server ends our session (pg_terminate_backend, as a restart does), the next call
 * reports a transient failure or succeeds, the connection comes back by itself, and
 * the prepared statement works again; SQL-injection text round-trips unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/err.h"
#include "sb/pg.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static const char *dsn(void)
{
    return tu_env("SB_PG_DSN", "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard");
}

static void test_reconnect_and_reprepare(void **state)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(dsn(), err, sizeof(err));
    struct sb_pg *admin = sb_pg_new(dsn(), err, sizeof(err));
    const char *params[1] = {"41"};
    const char *kill[1];
    char pid[32];
    PGresult *res;
    int e = 0;
    (void)state;
    assert_non_null(pg);
    assert_non_null(admin);
    assert_int_equal(sb_pg_prepare(pg, "plus_one", "SELECT $1::int + 1", 1, err, sizeof(err)), 0);
    res = sb_pg_query(pg, "SELECT pg_backend_pid()", 0, NULL, &e, err, sizeof(err));
    assert_non_null(res);
    snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    kill[0] = pid;
    res = sb_pg_query(admin, "SELECT pg_terminate_backend($1::int)", 1, kill, &e, err,
                      sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "t");
    PQclear(res);

    res = sb_pg_query_prepared(pg, "plus_one", 1, params, &e, err, sizeof(err));
    if (res == NULL) {
        assert_int_equal(e, SB_E_IO);
        assert_int_equal(sb_pg_ensure(pg, 5000), 0);
        res = sb_pg_query_prepared(pg, "plus_one", 1, params, &e, err, sizeof(err));
    }
    if (res == NULL)
        fail_msg("after reconnect: %s", err);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    assert_int_equal(sb_pg_reconnects(pg), 1);
    sb_pg_destroy(admin);
    sb_pg_destroy(pg);
}

static void test_injection_round_trip(void **state)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(dsn(), err, sizeof(err));
    const char *evil = "Robert'); DROP TABLE customers;-- \"\\ 王";
    const char *params[1] = {evil};
    PGresult *res;
    int e = 0;
    (void)state;
    assert_non_null(pg);
    res = sb_pg_query(pg, "SELECT $1::text", 1, params, &e, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), evil);
    PQclear(res);
    res = sb_pg_query(pg, "SELECT to_regclass('customers') IS NOT NULL", 0, NULL, &e, err,
                      sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    sb_pg_destroy(pg);
}

static void test_unreachable(void **state)
{
    char err[256] = "";
    (void)state;
    assert_null(sb_pg_new("postgresql://x@127.0.0.1:1/x?connect_timeout=2", err, sizeof(err)));
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reconnect_and_reprepare),
        cmocka_unit_test(test_injection_round_trip),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
