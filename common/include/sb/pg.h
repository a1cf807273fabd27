/* PostgreSQL client on libpq that survives server restarts: libpq never reconnects
 * by itself (RELIABILITY.md), so before each call a broken connection is reset with
 * bounded backoff and every registered prepared statement is prepared again.
 * A statement that fails because the connection dropped returns SB_E_IO: the caller
 * retries its whole (idempotent) transaction. Not thread-safe: one per thread. */
#ifndef SB_PG_H
#define SB_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct sb_pg;

/* Connects to dsn. Returns NULL with errstr when the server is unreachable. */
struct sb_pg *sb_pg_new(const char *dsn, char *errstr, size_t errstr_size);
void sb_pg_destroy(struct sb_pg *pg);

/* Registers and prepares a statement (re-prepared after every reconnect). */
int sb_pg_prepare(struct sb_pg *pg, const char *name, const char *sql, int nparams, char *errstr,
                  size_t errstr_size);

/* Runs a statement without parameters (DDL, BEGIN, COMMIT…). Returns 0 or a
 * negative code with errstr. */
int sb_pg_exec(struct sb_pg *pg, const char *sql, char *errstr, size_t errstr_size);

/* Runs a parameterised statement (text parameters, NULL = SQL NULL) and returns its
 * result (PQclear() it), or NULL with *err set (SB_E_IO: connection lost, retry;
 * SB_E_INVAL: the server refused the statement) and errstr. */
PGresult *sb_pg_query(struct sb_pg *pg, const char *sql, int nparams, const char *const *params,
                      int *err, char *errstr, size_t errstr_size);
/* Same for a registered prepared statement. */
PGresult *sb_pg_query_prepared(struct sb_pg *pg, const char *name, int nparams,
                               const char *const *params, int *err, char *errstr,
                               size_t errstr_size);

/* Makes sure the connection is usable, resetting it (with backoff, at most
 * max_wait_ms) when it is not. Returns 0 or SB_E_IO. */
int sb_pg_ensure(struct sb_pg *pg, int max_wait_ms);
/* The connection a service keeps in *pg, made on first use: connects when *pg is NULL
 * (at most once a second: *retry_ms holds the next attempt; failures are logged), then
 * makes sure it is usable (sb_pg_ensure, up to 200 ms). Returns *pg, or NULL while
 * PostgreSQL is unreachable. Sets *fresh (when not NULL) to 1 when it just connected. */
struct sb_pg *sb_pg_lazy(struct sb_pg **pg, const char *dsn, int64_t *retry_ms, int *fresh);

/* Borrowed libpq connection (COPY and other advanced use). */
PGconn *sb_pg_conn(struct sb_pg *pg);
/* Number of successful reconnects so far (for metrics and tests). */
unsigned sb_pg_reconnects(const struct sb_pg *pg);

#endif
