/* Integration tests of the PostgreSQL client (common/src/pg.c) against the local server:
 *  - the server ends our backend (pg_terminate_backend, as a restart does): the next
 *    call fails with SB_E_IO or succeeds, the connection comes back, the prepared
 *    statements work again, and exactly one reconnect is counted;
 *  - an outage, simulated by a TCP proxy between the client and the server that drops
 *    and refuses connections: bounded waits, bounded attempts (backoff), recovery;
 *  - a transaction open when the connection died is never half-continued;
 *  - statements the server refuses are SB_E_INVAL and leave the connection usable;
 *  - SQL-injection text round-trips byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/err.h"
#include "sb/log.h"
#include "sb/pg.h"
#include "sb/util.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 16

static const char *dsn(void)
{
    return tu_env("SB_PG_DSN", "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard");
}

/* Runs sql and returns the first value as a new string (NULL on failure, *e set). */
static char *value(struct sb_pg *pg, const char *sql, int n, const char *const *params, int *e)
{
    char err[256];
    PGresult *res = sb_pg_query(pg, sql, n, params, e, err, sizeof(err));
    char *v;

    if (res == NULL)
        return NULL;
    v = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return v;
}

/* Ends the server backend of pg from a second connection. */
static void terminate_backend(struct sb_pg *pg)
{
    char err[256];
    struct sb_pg *admin = sb_pg_new(dsn(), err, sizeof(err));
    const char *params[1];
    char *pid, *ok;
    int e = 0;

    assert_non_null(admin);
    pid = value(pg, "SELECT pg_backend_pid()", 0, NULL, &e);
    assert_non_null(pid);
    params[0] = pid;
    /* With a timeout, pg_terminate_backend returns once the backend is really gone. */
    ok = value(admin, "SELECT pg_terminate_backend($1::int, 5000)", 1, params, &e);
    assert_non_null(ok);
    assert_string_equal(ok, "t");
    free(ok);
    free(pid);
    sb_pg_destroy(admin);
}

static void test_terminate_backend(void **state)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(dsn(), err, sizeof(err));
    const char *params[1] = {"41"};
    PGresult *res;
    int e = 0;
    (void)state;

    assert_non_null(pg);
    assert_int_equal(sb_pg_prepare(pg, "plus_one", "SELECT $1::int + 1", 1, err, sizeof(err)), 0);
    assert_int_equal(sb_pg_reconnects(pg), 0);
    terminate_backend(pg);

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

    /* Again: every registered statement is prepared on each new connection. */
    assert_int_equal(sb_pg_prepare(pg, "twice", "SELECT $1::int * 2", 1, err, sizeof(err)), 0);
    terminate_backend(pg);
    res = sb_pg_query_prepared(pg, "twice", 1, params, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_IO);
    res = sb_pg_query_prepared(pg, "twice", 1, params, &e, err, sizeof(err));
    if (res == NULL)
        fail_msg("after the second reconnect: %s", err);
    assert_string_equal(PQgetvalue(res, 0, 0), "82");
    PQclear(res);
    res = sb_pg_query_prepared(pg, "plus_one", 1, params, &e, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    assert_int_equal(sb_pg_reconnects(pg), 2);
    sb_pg_destroy(pg);
}

static void test_lost_transaction(void **state)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(dsn(), err, sizeof(err));
    PGresult *res;
    int e = 0;
    (void)state;

    assert_non_null(pg);
    assert_int_equal(sb_pg_exec(pg, "BEGIN", err, sizeof(err)), 0);
    res = sb_pg_query(pg, "SELECT 1", 0, NULL, &e, err, sizeof(err));
    assert_non_null(res);
    PQclear(res);
    terminate_backend(pg);

    res = sb_pg_query(pg, "SELECT 2", 0, NULL, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_IO);
    /* The connection comes back, but the rest of the dead transaction must not run in
     * autocommit mode: everything but ROLLBACK/BEGIN is refused. */
    res = sb_pg_query(pg, "SELECT 3", 0, NULL, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_IO);
    if (strstr(err, "transaction was lost") == NULL)
        fail_msg("unexpected message: %s", err);
    assert_int_equal(sb_pg_exec(pg, "COMMIT", err, sizeof(err)), SB_E_IO);
    assert_int_equal(sb_pg_exec(pg, "rollback;", err, sizeof(err)), 0);
    assert_int_equal(sb_pg_exec(pg, "BEGIN", err, sizeof(err)), 0);
    res = sb_pg_query(pg, "SELECT 4", 0, NULL, &e, err, sizeof(err));
    assert_non_null(res);
    PQclear(res);
    assert_int_equal(sb_pg_exec(pg, "COMMIT", err, sizeof(err)), 0);
    assert_int_equal(sb_pg_reconnects(pg), 1);

    /* Starting over with BEGIN (no ROLLBACK) is also accepted. */
    assert_int_equal(sb_pg_exec(pg, "BEGIN", err, sizeof(err)), 0);
    terminate_backend(pg);
    assert_int_equal(sb_pg_exec(pg, "SELECT 5", err, sizeof(err)), SB_E_IO);
    assert_int_equal(sb_pg_exec(pg, "BEGIN", err, sizeof(err)), 0);
    assert_int_equal(sb_pg_exec(pg, "COMMIT", err, sizeof(err)), 0);
    sb_pg_destroy(pg);
}

static void test_refused_statements(void **state)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(dsn(), err, sizeof(err));
    const char *params[1] = {"7"};
    PGresult *res;
    int e = 0;
    (void)state;

    assert_non_null(pg);
    assert_int_equal(sb_pg_prepare(pg, "bad", "SELEKT 1", 0, err, sizeof(err)), SB_E_INVAL);
    assert_non_null(strstr(err, "syntax error"));
    /* Not registered: the name is free and a reconnect does not trip over it. */
    assert_int_equal(sb_pg_prepare(pg, "bad", "SELECT $1::int", 1, err, sizeof(err)), 0);
    assert_int_equal(sb_pg_prepare(pg, "bad", "SELECT $1::int", 1, err, sizeof(err)), 0);
    assert_int_equal(sb_pg_prepare(pg, "bad", "SELECT $1::text", 1, err, sizeof(err)), SB_E_INVAL);
    res = sb_pg_query_prepared(pg, "missing", 0, NULL, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_INVAL);
    res = sb_pg_query(pg, "SELECT 1/0", 0, NULL, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_INVAL);
    assert_null(strchr(err, '\n'));
    assert_int_equal(sb_pg_exec(pg, "-- only a comment", err, sizeof(err)), 0);
    res = sb_pg_query_prepared(pg, "bad", 1, params, &e, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "7");
    PQclear(res);
    terminate_backend(pg);
    assert_int_equal(sb_pg_ensure(pg, 0), 0); /* libpq has not noticed yet */
    res = sb_pg_query_prepared(pg, "bad", 1, params, &e, err, sizeof(err));
    if (res == NULL) {
        assert_int_equal(e, SB_E_IO);
        res = sb_pg_query_prepared(pg, "bad", 1, params, &e, err, sizeof(err));
    }
    assert_non_null(res);
    PQclear(res);
    assert_int_equal(sb_pg_reconnects(pg), 1);
    sb_pg_destroy(pg);
}

static void test_injection_round_trip(void **state)
{
    char err[256];
    struct sb_pg *pg = sb_pg_new(dsn(), err, sizeof(err));
    const char *evil = "Robert'); DROP TABLE customers;-- \"\\ 王 $1 %s";
    const char *params[1] = {evil};
    char *v;
    int e = 0;
    (void)state;

    assert_non_null(pg);
    v = value(pg, "SELECT $1::text", 1, params, &e);
    assert_non_null(v);
    assert_string_equal(v, evil);
    free(v);
    v = value(pg, "SELECT to_regclass('customers') IS NOT NULL", 0, NULL, &e);
    assert_non_null(v);
    assert_string_equal(v, "t");
    free(v);
    sb_pg_destroy(pg);
}

static void test_unreachable(void **state)
{
    char err[256] = "";
    int64_t t0 = sb_mono_ms();
    (void)state;

    assert_null(sb_pg_new("postgresql://x@127.0.0.1:1/x", err, sizeof(err)));
    assert_true(sb_mono_ms() - t0 < 5000);
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) > 0);
}

/* A TCP proxy to the server that can be switched "down": it then drops every open
 * connection and closes new ones at once, as a server being restarted does. ---- */

struct proxy {
    int lfd, port;
    atomic_int up_port, down, stop, accepted;
    int fds[MAX_PAIRS][2]; /* client, upstream; -1 when free */
    pthread_t thread;
};

static int upstream(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void close_pair(struct proxy *p, int i)
{
    if (p->fds[i][0] >= 0)
        close(p->fds[i][0]);
    if (p->fds[i][1] >= 0)
        close(p->fds[i][1]);
    p->fds[i][0] = p->fds[i][1] = -1;
}

static void proxy_accept(struct proxy *p)
{
    int cfd = accept(p->lfd, NULL, NULL), i;

    if (cfd < 0)
        return;
    atomic_fetch_add(&p->accepted, 1);
    if (atomic_load(&p->down)) {
        close(cfd);
        return;
    }
    for (i = 0; i < MAX_PAIRS && p->fds[i][0] >= 0; i++)
        ;
    if (i == MAX_PAIRS) {
        close(cfd);
        return;
    }
    p->fds[i][0] = cfd;
    p->fds[i][1] = upstream(atomic_load(&p->up_port));
    if (p->fds[i][1] < 0)
        close_pair(p, i);
}

/* Copies what is readable on one side to the other; closes the pair at EOF. */
static void proxy_pump(struct proxy *p, int i, int from)
{
    char buf[16384];
    ssize_t n = read(p->fds[i][from], buf, sizeof(buf));
    ssize_t off = 0;

    if (n <= 0) {
        close_pair(p, i);
        return;
    }
    while (off < n) {
        ssize_t w = write(p->fds[i][1 - from], buf + off, (size_t)(n - off));
        if (w <= 0) {
            close_pair(p, i);
            return;
        }
        off += w;
    }
}

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;

    while (!atomic_load(&p->stop)) {
        struct pollfd pfd[1 + 2 * MAX_PAIRS];
        int who[1 + 2 * MAX_PAIRS][2], n = 1;

        if (atomic_load(&p->down)) {
            for (int i = 0; i < MAX_PAIRS; i++)
                close_pair(p, i);
        }
        pfd[0].fd = p->lfd;
        pfd[0].events = POLLIN;
        for (int i = 0; i < MAX_PAIRS; i++) {
            for (int s = 0; s < 2 && p->fds[i][0] >= 0; s++) {
                pfd[n].fd = p->fds[i][s];
                pfd[n].events = POLLIN;
                who[n][0] = i;
                who[n][1] = s;
                n++;
            }
        }
        if (poll(pfd, (nfds_t)n, 10) <= 0)
            continue;
        if (pfd[0].revents & POLLIN)
            proxy_accept(p);
        for (int k = 1; k < n; k++) {
            if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
                p->fds[who[k][0]][who[k][1]] == pfd[k].fd)
                proxy_pump(p, who[k][0], who[k][1]);
        }
    }
    for (int i = 0; i < MAX_PAIRS; i++)
        close_pair(p, i);
    return NULL;
}

static struct proxy *proxy_start(int up_port)
{
    struct proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    assert_non_null(p);
    memset(p->fds, -1, sizeof(p->fds));
    atomic_store(&p->up_port, up_port);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 16), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
    p->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
    return p;
}

static void proxy_stop(struct proxy *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    free(p);
}

/* The test DSN, pointed at the proxy. Returns 0, or -1 when the DSN is not TCP. */
static int proxied_dsn(int proxy_port, int *up_port, char *out, size_t outsz)
{
    PQconninfoOption *opts = PQconninfoParse(dsn(), NULL);
    const char *user = "", *password = "", *dbname = "", *host = "", *port = "5432";
    int tcp;

    if (opts == NULL)
        return -1;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "password") == 0)
            password = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
        else if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    *up_port = (int)strtol(port, NULL, 10);
    snprintf(out, outsz,
             "host=127.0.0.1 port=%d user='%s' password='%s' dbname='%s' sslmode=disable "
             "connect_timeout=2",
             proxy_port, user, password, dbname);
    tcp = strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0;
    PQconninfoFree(opts);
    return tcp ? 0 : -1;
}

static void test_outage_backoff_recovery(void **state)
{
    char conninfo[512], err[256];
    const char *params[1] = {"x"};
    struct proxy *p = proxy_start(0);
    struct sb_pg *pg;
    PGresult *res;
    int64_t t0, took;
    int up_port = 0, e = 0, attempts;
    (void)state;

    if (proxied_dsn(p->port, &up_port, conninfo, sizeof(conninfo)) != 0) {
        proxy_stop(p);
        skip(); /* the proxy needs PostgreSQL on loopback TCP */
    }
    atomic_store(&p->up_port, up_port);
    pg = sb_pg_new(conninfo, err, sizeof(err));
    if (pg == NULL)
        fail_msg("through the proxy: %s", err);
    assert_int_equal(sb_pg_prepare(pg, "echo", "SELECT $1::text", 1, err, sizeof(err)), 0);

    atomic_store(&p->down, 1);
    sb_sleep_ms(50);
    res = sb_pg_query_prepared(pg, "echo", 1, params, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_IO);

    /* While the server is away, ensure waits at most about what it was given, and the
     * backoff keeps the number of attempts small. */
    attempts = atomic_load(&p->accepted);
    t0 = sb_mono_ms();
    assert_int_equal(sb_pg_ensure(pg, 400), SB_E_IO);
    took = sb_mono_ms() - t0;
    attempts = atomic_load(&p->accepted) - attempts;
    if (took < 350 || took > 1500)
        fail_msg("sb_pg_ensure(400) took %lld ms", (long long)took);
    if (attempts < 2 || attempts > 8)
        fail_msg("%d connection attempts in 400 ms", attempts);
    print_message("outage: sb_pg_ensure(400) gave up after %lld ms and %d attempts\n",
                  (long long)took, attempts);
    t0 = sb_mono_ms();
    res = sb_pg_query_prepared(pg, "echo", 1, params, &e, err, sizeof(err));
    assert_null(res);
    assert_int_equal(e, SB_E_IO);
    assert_true(sb_mono_ms() - t0 < 1000);
    assert_int_equal(sb_pg_reconnects(pg), 0);

    atomic_store(&p->down, 0);
    assert_int_equal(sb_pg_ensure(pg, 5000), 0);
    assert_int_equal(sb_pg_reconnects(pg), 1);
    res = sb_pg_query_prepared(pg, "echo", 1, params, &e, err, sizeof(err));
    if (res == NULL)
        fail_msg("after the outage: %s", err);
    assert_string_equal(PQgetvalue(res, 0, 0), "x");
    PQclear(res);
    sb_pg_destroy(pg);
    proxy_stop(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminate_backend),  cmocka_unit_test(test_lost_transaction),
        cmocka_unit_test(test_refused_statements), cmocka_unit_test(test_injection_round_trip),
        cmocka_unit_test(test_unreachable),        cmocka_unit_test(test_outage_backoff_recovery),
    };

    sb_log_init("itest_pg_reconnect", SB_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
