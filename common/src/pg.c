/* PostgreSQL client that survives server restarts (see sb/pg.h). libpq never
 * reconnects by itself: a dead connection is reset with bounded backoff before the
 * next call, and every registered prepared statement is prepared again. */
#include "sb/pg.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PREPARED 64
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct prepared {
    char *name;
    char *sql;
    int nparams;
};

struct sb_pg {
    PGconn *conn;
    struct prepared stmts[MAX_PREPARED];
    int nstmts;
    unsigned reconnects;
    int64_t next_try_ms;
    int backoff_ms;
};

static void copy_error(PGconn *conn, const PGresult *res, char *errstr, size_t errstr_size)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    size_t n;

    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(conn);
    sb_strlcpy(errstr, msg, errstr_size);
    for (char *p = errstr; *p; p++) {
        if (*p == '\n' || *p == '\t')
            *p = ' '; /* one line */
    }
    n = strlen(errstr);
    while (n > 0 && (errstr[n - 1] == '\n' || errstr[n - 1] == ' '))
        errstr[--n] = '\0';
}

static int prepare_one(struct sb_pg *pg, const struct prepared *p, char *errstr,
                       size_t errstr_size)
{
    PGresult *res = PQprepare(pg->conn, p->name, p->sql, p->nparams, NULL);
    int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok)
        copy_error(pg->conn, res, errstr, errstr_size);
    PQclear(res);
    return ok ? 0 : SB_E_INVAL;
}

/* Server notices (e.g. "relation already exists, skipping") are not errors: they go to
 * the debug log instead of libpq's default of printing on stderr. */
static void notice(void *arg, const char *message)
{
    (void)arg;
    sb_log_kv(SB_LOG_DEBUG, "postgresql notice", "detail", message, NULL);
}

struct sb_pg *sb_pg_new(const char *dsn, char *errstr, size_t errstr_size)
{
    struct sb_pg *pg = sb_calloc(1, sizeof(*pg));

    pg->conn = PQconnectdb(dsn);
    if (pg->conn == NULL || PQstatus(pg->conn) != CONNECTION_OK) {
        if (pg->conn != NULL)
            copy_error(pg->conn, NULL, errstr, errstr_size);
        else
            sb_fmt(errstr, errstr_size, "cannot allocate a connection");
        sb_pg_destroy(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg->conn, notice, NULL);
    return pg;
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

/* One reset attempt (if not in backoff). Returns 0 when usable. */
static int try_reset(struct sb_pg *pg)
{
    char err[256];
    int64_t now = sb_mono_ms();

    if (now < pg->next_try_ms)
        return SB_E_IO;
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        pg->backoff_ms = pg->backoff_ms ? pg->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (pg->backoff_ms > BACKOFF_MAX_MS)
            pg->backoff_ms = BACKOFF_MAX_MS;
        pg->next_try_ms = now + pg->backoff_ms;
        return SB_E_IO;
    }
    for (int i = 0; i < pg->nstmts; i++) {
        if (prepare_one(pg, &pg->stmts[i], err, sizeof(err)) != 0) {
            sb_log_kv(SB_LOG_ERROR, "re-prepare failed after reconnect", "statement",
                      pg->stmts[i].name, "detail", err, NULL);
            return SB_E_IO;
        }
    }
    pg->backoff_ms = 0;
    pg->next_try_ms = 0;
    pg->reconnects++;
    sb_log_kv(SB_LOG_INFO, "postgresql reconnected", NULL);
    return 0;
}

int sb_pg_ensure(struct sb_pg *pg, int max_wait_ms)
{
    int64_t deadline = sb_mono_ms() + max_wait_ms;

    if (PQstatus(pg->conn) == CONNECTION_OK)
        return 0;
    for (;;) {
        if (try_reset(pg) == 0)
            return 0;
        if (sb_mono_ms() >= deadline)
            return SB_E_IO;
        sb_sleep_ms(pg->next_try_ms > sb_mono_ms() ? pg->next_try_ms - sb_mono_ms() : 10);
    }
}

int sb_pg_prepare(struct sb_pg *pg, const char *name, const char *sql, int nparams,
                  char *errstr, size_t errstr_size)
{
    struct prepared *p;

    if (pg->nstmts >= MAX_PREPARED) {
        sb_fmt(errstr, errstr_size, "too many prepared statements");
        return SB_E_TOOBIG;
    }
    p = &pg->stmts[pg->nstmts];
    p->name = sb_strdup(name);
    p->sql = sb_strdup(sql);
    p->nparams = nparams;
    pg->nstmts++;
    if (sb_pg_ensure(pg, 0) != 0)
        return 0; /* prepared on reconnect */
    return prepare_one(pg, p, errstr, errstr_size);
}

/* Classifies a failed result: a dead connection is transient, the rest is not. */
static PGresult *check(struct sb_pg *pg, PGresult *res, ExecStatusType want1,
                       ExecStatusType want2, int *err, char *errstr, size_t errstr_size)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st == want1 || st == want2)
        return res;
    copy_error(pg->conn, res, errstr, errstr_size);
    PQclear(res);
    *err = PQstatus(pg->conn) == CONNECTION_OK ? SB_E_INVAL : SB_E_IO;
    return NULL;
}

PGresult *sb_pg_query(struct sb_pg *pg, const char *sql, int nparams, const char *const *params,
                      int *err, char *errstr, size_t errstr_size)
{
    if (sb_pg_ensure(pg, 0) != 0) {
        *err = SB_E_IO;
        sb_fmt(errstr, errstr_size, "postgresql unreachable");
        return NULL;
    }
    return check(pg, PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0),
                 PGRES_TUPLES_OK, PGRES_COMMAND_OK, err, errstr, errstr_size);
}

PGresult *sb_pg_query_prepared(struct sb_pg *pg, const char *name, int nparams,
                               const char *const *params, int *err, char *errstr,
                               size_t errstr_size)
{
    if (sb_pg_ensure(pg, 0) != 0) {
        *err = SB_E_IO;
        sb_fmt(errstr, errstr_size, "postgresql unreachable");
        return NULL;
    }
    return check(pg, PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0),
                 PGRES_TUPLES_OK, PGRES_COMMAND_OK, err, errstr, errstr_size);
}

int sb_pg_exec(struct sb_pg *pg, const char *sql, char *errstr, size_t errstr_size)
{
    int err = 0;
    PGresult *res;

    if (sb_pg_ensure(pg, 0) != 0) {
        sb_fmt(errstr, errstr_size, "postgresql unreachable");
        return SB_E_IO;
    }
    /* Simple-query protocol: DDL files and transaction control only (no parameters). */
    res = check(pg, PQexec(pg->conn, sql), PGRES_COMMAND_OK, PGRES_TUPLES_OK, &err, errstr,
                errstr_size);
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
