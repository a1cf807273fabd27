/* sbctl migrate: applies the numbered SQL files of deploy/sql (NNNN_name.sql) that are
 * not yet recorded in schema_migrations, in version order, each in one transaction
 * together with its schema_migrations row, so that a failed file leaves no trace.
 * Everything runs under a PostgreSQL advisory lock: two runs started together (several
 * instances deploying at once) apply each file exactly once; the second waits, then
 * finds nothing left to do. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MIGRATIONS 1000
#define MIGRATION_MAX_BYTES (8 * 1024 * 1024)
/* Advisory lock key of sbctl migrate ("sbmigrat" read as a 64-bit integer, decimal). */
#define MIGRATION_LOCK_KEY "8314328161553899892"

struct migration {
    int version;
    char *name; /* file name, e.g. "0002_reference_data.sql" */
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl migrate [--dir DIR]\n"
                 "\n"
                 "Applies the migrations of DIR not yet recorded in schema_migrations, each\n"
                 "in its own transaction, under an advisory lock (concurrent runs are safe),\n"
                 "and prints \"schema at version N (applied K)\".\n"
                 "\n"
                 "DIR defaults to SB_SQL_DIR, else deploy/sql of the repository the sbctl\n"
                 "executable was built in (build/bin/../../deploy/sql), else ./deploy/sql.\n"
                 "Files are named NNNN_name.sql (four digits, a lowercase name); an applied\n"
                 "file is never edited: changes go into a new file.\n");
}

/* Parses "NNNN_name.sql" (name: lowercase letters, digits, '_'). Returns the version,
 * or -1 when name is not a migration file. */
static int migration_version(const char *name)
{
    size_t n = strlen(name);
    int v = 0;

    if (n < 10 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
        return -1;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)name[i]))
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    for (size_t i = 5; i < n - 4; i++) {
        char ch = name[i];
        if (!(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '_'))
            return -1;
    }
    return v > 0 ? v : -1;
}

static int cmp_migrations(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

static void free_migrations(struct migration *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].name);
    free(m);
}

/* Lists the migration files of dir, sorted. Returns 0 or 1 with a message. */
static int list_migrations(const char *dir, struct migration **out, size_t *count)
{
    struct migration *m = sb_calloc(MAX_MIGRATIONS, sizeof(*m));
    struct dirent *de;
    size_t n = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        fprintf(stderr, "sbctl migrate: cannot open the migrations directory \"%s\"\n", dir);
        free(m);
        return SBCTL_EXIT_FAIL;
    }
    while ((de = readdir(d)) != NULL) {
        int v = migration_version(de->d_name);
        if (v < 0)
            continue;
        if (n == MAX_MIGRATIONS) {
            fprintf(stderr, "sbctl migrate: more than %d migrations in %s\n", MAX_MIGRATIONS, dir);
            goto fail;
        }
        m[n].version = v;
        m[n].name = sb_strdup(de->d_name);
        n++;
    }
    qsort(m, n, sizeof(*m), cmp_migrations);
    for (size_t i = 1; i < n; i++) {
        if (m[i].version == m[i - 1].version) {
            fprintf(stderr, "sbctl migrate: %s and %s have the same version\n", m[i - 1].name,
                    m[i].name);
            goto fail;
        }
    }
    closedir(d);
    *out = m;
    *count = n;
    return 0;
fail:
    closedir(d);
    free_migrations(m, n);
    return SBCTL_EXIT_FAIL;
}

/* Takes the migration lock, saying so when another run holds it. */
static int lock(struct sb_pg *pg)
{
    const char *params[1] = {MIGRATION_LOCK_KEY};
    char err[512];
    PGresult *res;
    int e = 0, got;

    res =
        sb_pg_query(pg, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &e, err, sizeof(err));
    if (res == NULL)
        goto fail;
    got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got)
        return 0;
    fprintf(stderr, "sbctl migrate: another migration is running; waiting for it\n");
    res = sb_pg_query(pg, "SELECT pg_advisory_lock($1::bigint)", 1, params, &e, err, sizeof(err));
    if (res == NULL)
        goto fail;
    PQclear(res);
    return 0;
fail:
    fprintf(stderr, "sbctl migrate: cannot take the migration lock: %s\n", err);
    return SBCTL_EXIT_FAIL;
}

/* 1 when version is recorded in schema_migrations, 0 when not, -1 on error. */
static int is_applied(struct sb_pg *pg, int version, char *err, size_t errsz)
{
    char v[16];
    const char *params[1] = {v};
    PGresult *res;
    int e = 0, found;

    sb_fmt(v, sizeof(v), "%d", version);
    res = sb_pg_query(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, &e, err,
                      errsz);
    if (res == NULL)
        return -1;
    found = PQntuples(res) == 1;
    PQclear(res);
    return found;
}

/* Runs one file and records it, all in one transaction. */
static int apply(struct sb_pg *pg, const char *dir, const struct migration *m)
{
    char path[4400], err[1024], v[16];
    const char *params[2] = {v, m->name};
    char *sql = NULL;
    PGresult *res = NULL;
    int e = 0, rc = SBCTL_EXIT_FAIL;

    if (sb_fmt(path, sizeof(path), "%s/%s", dir, m->name) != 0) {
        fprintf(stderr, "sbctl migrate: path too long: %s\n", dir);
        return SBCTL_EXIT_FAIL;
    }
    sb_fmt(v, sizeof(v), "%d", m->version);
    sql = sbctl_read_file(path, MIGRATION_MAX_BYTES, NULL, err, sizeof(err));
    if (sql == NULL) {
        fprintf(stderr, "sbctl migrate: %s\n", err);
        return SBCTL_EXIT_FAIL;
    }
    if (sb_pg_exec(pg, "BEGIN", err, sizeof(err)) != 0 ||
        sb_pg_exec(pg, sql, err, sizeof(err)) != 0)
        goto fail;
    /* A file with its own COMMIT would have ended our transaction: refuse it. */
    if (PQtransactionStatus(sb_pg_conn(pg)) != PQTRANS_INTRANS) {
        sb_fmt(err, sizeof(err), "a migration must not contain BEGIN, COMMIT or ROLLBACK");
        goto fail;
    }
    res = sb_pg_query(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                      params, &e, err, sizeof(err));
    if (res == NULL || sb_pg_exec(pg, "COMMIT", err, sizeof(err)) != 0)
        goto fail;
    printf("applied %s\n", m->name);
    rc = SBCTL_EXIT_OK;
    goto out;
fail:
    fprintf(stderr, "sbctl migrate: %s: %s\n", m->name, err);
    sb_pg_exec(pg, "ROLLBACK", err, sizeof(err)); /* nothing to undo if the link is gone */
out:
    PQclear(res);
    free(sql);
    return rc;
}

/* Applies what is missing. Returns the exit code; *count gets the files applied. */
static int migrate(struct sb_pg *pg, const char *dir, const struct migration *m, size_t n,
                   size_t *count)
{
    char err[512];

    if (sb_pg_exec(pg,
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                   "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                   err, sizeof(err)) != 0) {
        fprintf(stderr, "sbctl migrate: cannot create schema_migrations: %s\n", err);
        return SBCTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        int done = is_applied(pg, m[i].version, err, sizeof(err));
        if (done < 0) {
            fprintf(stderr, "sbctl migrate: cannot read schema_migrations: %s\n", err);
            return SBCTL_EXIT_FAIL;
        }
        if (done)
            continue;
        if (apply(pg, dir, &m[i]) != 0)
            return SBCTL_EXIT_FAIL;
        (*count)++;
    }
    return SBCTL_EXIT_OK;
}

int sbctl_migrate(struct sbctl *ctl, int argc, char **argv)
{
    char dir[4200] = "", err[256];
    struct migration *m = NULL;
    struct sb_pg *pg = NULL;
    size_t n = 0, count = 0;
    int rc;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    if (getenv("SB_SQL_DIR") != NULL && getenv("SB_SQL_DIR")[0] != '\0')
        sb_strlcpy(dir, getenv("SB_SQL_DIR"), sizeof(dir));
    else
        sbctl_default_path(ctl, "deploy/sql", dir, sizeof(dir));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            sb_strlcpy(dir, argv[++i], sizeof(dir));
        } else {
            fprintf(stderr, "sbctl migrate: unexpected argument \"%s\" (see --help)\n", argv[i]);
            return SBCTL_EXIT_USAGE;
        }
    }
    if (dir[0] == '\0') {
        fprintf(stderr, "sbctl migrate: no migrations directory found: use --dir\n");
        return SBCTL_EXIT_USAGE;
    }
    rc = list_migrations(dir, &m, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        fprintf(stderr, "sbctl migrate: no NNNN_name.sql files in \"%s\"\n", dir);
        free_migrations(m, n);
        return SBCTL_EXIT_FAIL;
    }
    pg = sbctl_pg(ctl);
    rc = SBCTL_EXIT_FAIL;
    if (pg == NULL || lock(pg) != 0)
        goto out;
    rc = migrate(pg, dir, m, n, &count);
    if (rc == SBCTL_EXIT_OK) {
        int version = sbctl_schema_version(pg);
        printf("schema at version %d (applied %zu)\n", version, count);
        if (version > m[n - 1].version)
            fprintf(stderr, "sbctl migrate: note: the database has migrations newer than %s\n",
                    m[n - 1].name);
    }
    /* Also released when the connection closes; an error here changes nothing. */
    sb_pg_exec(pg, "SELECT pg_advisory_unlock_all()", err, sizeof(err));
out:
    sb_pg_destroy(pg);
    free_migrations(m, n);
    return rc;
}
