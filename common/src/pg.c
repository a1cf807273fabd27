/* PostgreSQL client that survives server restarts (see sb/pg.h).
 *
 * libpq never reconnects by itself (RELIABILITY.md): once a call fails because the
 * server went away, every later call fails too until PQreset(). So each call first
 * makes sure the connection is usable; a broken one is reset, at most once per
 * backoff step (50 ms doubling to 2 s, with jitter, so that a fleet of services does
 * not hammer a restarting server in step), and every registered statement is prepared
 * again on the new connection.
 *
 * A call that fails because the connection dropped (PQstatus() is CONNECTION_BAD
 * afterwards) returns SB_E_IO: the server rolled back any open transaction, so the
 * caller must retry its whole transaction. To make that hard to get wrong, a
 * connection that lost an open transaction refuses every statement except BEGIN and
 * ROLLBACK until the caller has started over; otherwise the rest of the transaction
 * would silently run in autocommit mode on the new connection. */
#include "sb/pg.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PREPARED 128
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
/* Defaults a DSN may override: fail a connection attempt after 10 s instead of never,
 * and notice a silently dead server within about a minute instead of two hours. */
#define DEFAULT_CONNECT_TIMEOUT_S "10"
#define DEFAULT_KEEPALIVES_IDLE_S "30"
#define DEFAULT_KEEPALIVES_INTERVAL_S "10"
#define DEFAULT_KEEPALIVES_COUNT "3"

struct prepared {
    char *name;
    char *sql;
    int nparams;
    int ready;   /* prepared on the current connection */
    int refused; /* the server refused it after a reconnect (logged once) */
};

struct sb_pg {
    PGconn *conn;
    struct prepared stmts[MAX_PREPARED];
    int nstmts;
    unsigned reconnects;
    int backoff_ms;        /* current backoff step, 0 after a success */
    int64_t next_try_ms;   /* no reset attempt before this monotonic time */
    int64_t down_since_ms; /* when the broken connection was noticed, 0 while fine */
    unsigned attempts;     /* failed reset attempts since the connection broke */
    int tx_lost;           /* an open transaction died with the connection */
    uint32_t rng;          /* jitter state */
};

/* Copies libpq's message for res (or for the connection) into errstr as one line. */
static void copy_error(PGconn *conn, const PGresult *res, char *errstr, size_t errstr_size)
{
    const char *msg = res != NULL ? PQresultErrorMessage(res) : NULL;
    size_t n;

    if (errstr == NULL || errstr_size == 0)
        return;
    if (msg == NULL || msg[0] == '\0')
        msg = conn != NULL ? PQerrorMessage(conn) : "";
    if (msg[0] == '\0')
        msg = "unknown PostgreSQL error";
    /* One line: every run of blanks and line breaks becomes one space. */
    n = 0;
    for (const char *p = msg; *p != '\0' && n + 1 < errstr_size; p++) {
        int blank = *p == '\n' || *p == '\r' || *p == '\t' || *p == ' ';
        if (blank && (n == 0 || errstr[n - 1] == ' '))
            continue;
        errstr[n++] = blank ? ' ' : *p;
    }
    while (n > 0 && errstr[n - 1] == ' ')
        n--;
    errstr[n] = '\0';
}

/* Server notices ("relation already exists, skipping"…) are not errors: they go to
 * the debug log instead of libpq's default of printing them on stderr. */
static void notice(void *arg, const char *message)
{
    (void)arg;
    sb_log_kv(SB_LOG_DEBUG, "postgresql notice", "detail", message, NULL);
}

struct sb_pg *sb_pg_new(const char *dsn, char *errstr, size_t errstr_size)
{
    /* Entries before "dbname" are defaults: the expanded DSN overrides them. */
    static const char *const keys[] = {"connect_timeout",  "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", "dbname",          NULL};
    const char *values[] = {DEFAULT_CONNECT_TIMEOUT_S,     DEFAULT_KEEPALIVES_IDLE_S,
                            DEFAULT_KEEPALIVES_INTERVAL_S, DEFAULT_KEEPALIVES_COUNT,
                            dsn != NULL ? dsn : "",        NULL};
    struct sb_pg *pg = sb_calloc(1, sizeof(*pg));

    pg->rng = (uint32_t)sb_mono_us() ^ (uint32_t)(uintptr_t)pg;
    if (pg->rng == 0)
        pg->rng = 1;
    pg->conn = PQconnectdbParams(keys, values, 1);
    if (pg->conn == NULL) {
        sb_fmt(errstr, errstr_size, "cannot allocate a PostgreSQL connection");
        goto fail;
    }
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        copy_error(pg->conn, NULL, errstr, errstr_size);
        goto fail;
    }
    PQsetNoticeProcessor(pg->conn, notice, NULL); /* kept across PQreset() */
    return pg;
fail:
    sb_pg_destroy(pg);
    return NULL;
}

void sb_pg_destroy(struct sb_pg *pg)
{
    if (pg == NULL)
        return;
    if (pg->conn != NULL)
        PQfinish(pg->conn);
    for (int i = 0; i < pg->nstmts; i++) {
        free(pg->stmts[i].name);
        free(pg->stmts[i].sql);
    }
    free(pg);
}

/* Prepares one registered statement on the current connection. Returns 0, SB_E_IO
 * (connection lost) or SB_E_INVAL (the server refused the statement). */
static int prepare_one(struct sb_pg *pg, struct prepared *p, char *errstr, size_t errstr_size)
{
    PGresult *res = PQprepare(pg->conn, p->name, p->sql, p->nparams, NULL);
    int rc = 0;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        copy_error(pg->conn, res, errstr, errstr_size);
        rc = PQstatus(pg->conn) == CONNECTION_OK ? SB_E_INVAL : SB_E_IO;
    } else {
        p->ready = 1;
        p->refused = 0;
    }
    PQclear(res);
    return rc;
}

/* Prepares every registered statement not yet prepared on this connection. A statement
 * the server refuses (a table dropped meanwhile…) is logged once and left unprepared:
 * calls to it then fail with SB_E_INVAL while the others keep working. Returns 0, or
 * SB_E_IO when the connection dropped again. */
static int prepare_all(struct sb_pg *pg)
{
    char err[512];

    for (int i = 0; i < pg->nstmts; i++) {
        struct prepared *p = &pg->stmts[i];
        int rc;

        if (p->ready)
            continue;
        rc = prepare_one(pg, p, err, sizeof(err));
        if (rc == SB_E_IO)
            return SB_E_IO;
        if (rc != 0 && !p->refused) {
            p->refused = 1;
            sb_log_kv(SB_LOG_ERROR, "postgresql: statement refused after reconnect", "statement",
                      p->name, "detail", err, NULL);
        }
    }
    return 0;
}

/* Next backoff step: doubled, capped, then +/-25 % of jitter (xorshift32). */
static void schedule_retry(struct sb_pg *pg, int64_t now)
{
    int step, jitter;

    pg->backoff_ms = pg->backoff_ms == 0 ? BACKOFF_MIN_MS : pg->backoff_ms * 2;
    if (pg->backoff_ms > BACKOFF_MAX_MS)
        pg->backoff_ms = BACKOFF_MAX_MS;
    pg->rng ^= pg->rng << 13;
    pg->rng ^= pg->rng >> 17;
    pg->rng ^= pg->rng << 5;
    jitter = pg->backoff_ms / 2;
    step = pg->backoff_ms - jitter / 2 + (int)(pg->rng % (uint32_t)(jitter + 1));
    pg->next_try_ms = now + step;
}

/* One reset attempt unless still backing off. Returns 0 when usable again. */
static int try_reset(struct sb_pg *pg)
{
    char attempts[16], down_ms[24];
    int64_t now = sb_mono_ms();

    if (now < pg->next_try_ms)
        return SB_E_IO;
    if (pg->down_since_ms == 0)
        pg->down_since_ms = now;
    PQreset(pg->conn);
    for (int i = 0; i < pg->nstmts; i++)
        pg->stmts[i].ready = 0; /* a new connection has no prepared statements */
    if (PQstatus(pg->conn) != CONNECTION_OK || prepare_all(pg) != 0) {
        pg->attempts++;
        schedule_retry(pg, sb_mono_ms());
        return SB_E_IO;
    }
    sb_fmt(attempts, sizeof(attempts), "%u", pg->attempts + 1);
    sb_fmt(down_ms, sizeof(down_ms), "%lld", (long long)(sb_mono_ms() - pg->down_since_ms));
    sb_log_kv(SB_LOG_WARN, "postgresql reconnected", "attempts", attempts, "down_ms", down_ms,
              NULL);
    pg->reconnects++;
    pg->backoff_ms = 0;
    pg->next_try_ms = 0;
    pg->attempts = 0;
    pg->down_since_ms = 0;
    return 0;
}

int sb_pg_ensure(struct sb_pg *pg, int max_wait_ms)
{
    int64_t deadline;

    assert(pg != NULL);
    if (PQstatus(pg->conn) == CONNECTION_OK)
        return prepare_all(pg);
    deadline = sb_mono_ms() + (max_wait_ms > 0 ? max_wait_ms : 0);
    for (;;) {
        int64_t now, wait;

        if (try_reset(pg) == 0)
            return 0;
        now = sb_mono_ms();
        if (now >= deadline)
            return SB_E_IO;
        wait = pg->next_try_ms - now;
        if (wait > deadline - now)
            wait = deadline - now;
        sb_sleep_ms(wait > 0 ? wait : 1);
    }
}

static struct prepared *find_prepared(struct sb_pg *pg, const char *name)
{
    for (int i = 0; i < pg->nstmts; i++) {
        if (strcmp(pg->stmts[i].name, name) == 0)
            return &pg->stmts[i];
    }
    return NULL;
}

int sb_pg_prepare(struct sb_pg *pg, const char *name, const char *sql, int nparams, char *errstr,
                  size_t errstr_size)
{
    struct prepared *p = find_prepared(pg, name);
    int rc;

    if (p != NULL) {
        /* Preparing the same statement twice is harmless; reusing a name is a bug. */
        if (strcmp(p->sql, sql) == 0 && p->nparams == nparams)
            return 0;
        sb_fmt(errstr, errstr_size, "statement \"%s\" already prepared with other SQL", name);
        return SB_E_INVAL;
    }
    if (pg->nstmts >= MAX_PREPARED) {
        sb_fmt(errstr, errstr_size, "more than %d prepared statements", MAX_PREPARED);
        return SB_E_TOOBIG;
    }
    if (sb_pg_ensure(pg, 0) != 0) {
        sb_fmt(errstr, errstr_size, "postgresql unreachable");
        return SB_E_IO;
    }
    p = &pg->stmts[pg->nstmts];
    p->name = sb_strdup(name);
    p->sql = sb_strdup(sql);
    p->nparams = nparams;
    p->ready = 0;
    rc = prepare_one(pg, p, errstr, errstr_size);
    if (rc != 0) {
        /* Registered only once the server accepted it: a statement it refused would
         * otherwise fail every reconnect from now on. */
        free(p->name);
        free(p->sql);
        memset(p, 0, sizeof(*p));
        return rc;
    }
    pg->nstmts++;
    return 0;
}

/* 1 when sql (ignoring case and surrounding blanks/semicolons) is exactly word. */
static int is_command(const char *sql, const char *word)
{
    size_t n = strlen(word);
    const char *end;

    while (isspace((unsigned char)*sql))
        sql++;
    if (strncasecmp(sql, word, n) != 0)
        return 0;
    for (end = sql + n; *end != '\0'; end++) {
        if (!isspace((unsigned char)*end) && *end != ';')
            return 0;
    }
    return 1;
}

/* Before a statement: reconnects when needed and enforces the lost-transaction rule.
 * sql is the statement text for sb_pg_exec (NULL otherwise). Returns 0 to proceed,
 * 1 when the statement is already answered (a ROLLBACK of a lost transaction), or
 * SB_E_IO with errstr. */
static int before(struct sb_pg *pg, const char *sql, char *errstr, size_t errstr_size)
{
    assert(pg != NULL);
    if (sb_pg_ensure(pg, 0) != 0) {
        sb_fmt(errstr, errstr_size, "postgresql unreachable (reconnecting)");
        return SB_E_IO;
    }
    if (!pg->tx_lost)
        return 0;
    if (sql != NULL && (is_command(sql, "ROLLBACK") || is_command(sql, "ABORT"))) {
        pg->tx_lost = 0;
        return 1; /* the server already rolled it back */
    }
    if (sql != NULL && (is_command(sql, "BEGIN") || is_command(sql, "START TRANSACTION"))) {
        pg->tx_lost = 0;
        return 0;
    }
    sb_fmt(errstr, errstr_size,
           "the open transaction was lost with the connection: roll back and retry it");
    return SB_E_IO;
}

/* Classifies the result of a call: a dead connection is transient (SB_E_IO), any other
 * failure means the server refused the statement (SB_E_INVAL). */
static PGresult *check(struct sb_pg *pg, PGresult *res, int in_tx, int *err, char *errstr,
                       size_t errstr_size)
{
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY)
        return res;
    copy_error(pg->conn, res, errstr, errstr_size);
    PQclear(res);
    if (PQstatus(pg->conn) == CONNECTION_OK) {
        *err = SB_E_INVAL;
    } else {
        *err = SB_E_IO;
        pg->tx_lost = in_tx;
        if (pg->down_since_ms == 0)
            pg->down_since_ms = sb_mono_ms();
    }
    return NULL;
}

static int in_transaction(const struct sb_pg *pg)
{
    PGTransactionStatusType ts = PQtransactionStatus(pg->conn);

    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

PGresult *sb_pg_query(struct sb_pg *pg, const char *sql, int nparams, const char *const *params,
                      int *err, char *errstr, size_t errstr_size)
{
    int rc = before(pg, NULL, errstr, errstr_size);
    int in_tx;

    if (rc != 0) {
        *err = rc;
        return NULL;
    }
    in_tx = in_transaction(pg);
    return check(pg, PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0), in_tx, err,
                 errstr, errstr_size);
}

PGresult *sb_pg_query_prepared(struct sb_pg *pg, const char *name, int nparams,
                               const char *const *params, int *err, char *errstr,
                               size_t errstr_size)
{
    int rc = before(pg, NULL, errstr, errstr_size);
    struct prepared *p;
    int in_tx;

    if (rc != 0) {
        *err = rc;
        return NULL;
    }
    p = find_prepared(pg, name);
    if (p == NULL) {
        sb_fmt(errstr, errstr_size, "no prepared statement \"%s\"", name);
        *err = SB_E_INVAL;
        return NULL;
    }
    if (!p->ready) {
        rc = prepare_one(pg, p, errstr, errstr_size);
        if (rc != 0) {
            *err = rc;
            return NULL;
        }
    }
    in_tx = in_transaction(pg);
    return check(pg, PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0), in_tx, err,
                 errstr, errstr_size);
}

int sb_pg_exec(struct sb_pg *pg, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res;
    int err = 0, in_tx;
    int rc = before(pg, sql, errstr, errstr_size);

    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0;
    in_tx = in_transaction(pg);
    /* Simple-query protocol, for what has no parameters: DDL, migration files (several
     * statements) and transaction control. Values always go through sb_pg_query. */
    res = check(pg, PQexec(pg->conn, sql), in_tx, &err, errstr, errstr_size);
    if (res == NULL)
        return err;
    PQclear(res);
    return 0;
}

PGconn *sb_pg_conn(struct sb_pg *pg)
{
    return pg->conn;
}

unsigned sb_pg_reconnects(const struct sb_pg *pg)
{
    return pg->reconnects;
}

struct sb_pg *sb_pg_lazy(struct sb_pg **pg, const char *dsn, int64_t *retry_ms, int *fresh)
{
    char err[256];

    if (fresh != NULL)
        *fresh = 0;
    if (*pg == NULL && sb_mono_ms() >= *retry_ms) {
        *pg = sb_pg_new(dsn, err, sizeof(err));
        if (*pg == NULL) {
            *retry_ms = sb_mono_ms() + 1000;
            sb_log_kv(SB_LOG_WARN, "postgresql unreachable", "detail", err, NULL);
        } else if (fresh != NULL) {
            *fresh = 1;
        }
    }
    if (*pg != NULL && sb_pg_ensure(*pg, 200) != 0)
        return NULL;
    return *pg;
}
