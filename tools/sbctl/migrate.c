/* sbctl migrate: applies the numbered SQL files of deploy/sql (NNNN_name.sql) that are
 * not yet recorded in schema_migrations, each in one transaction with its record, under
 * an advisory lock so that concurrent runs (several instances starting) are safe. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MIGRATIONS 1000
#define MIGRATION_MAX_BYTES (4 * 1024 * 1024)
/* Arbitrary constant identifying the migration lock. */
#define MIGRATION_LOCK "7349121"

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_migration(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
    }
    return n > 9 && name[4] == '_' && strcmp(name + n - 4, ".sql") == 0;
}

static int applied(struct sb_pg *pg, int version)
{
    char v[16], err[256];
    const char *params[1] = {v};
    int e = 0, found;
    PGresult *res;

    sb_fmt(v, sizeof(v), "%d", version);
    res = sb_pg_query(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, &e,
                      err, sizeof(err));
    found = res != NULL && PQntuples(res) == 1;
    PQclear(res);
    return found;
}

static int apply(struct sb_pg *pg, const char *dir, const char *name, int version)
{
    char path[4200], err[1024], v[16];
    const char *params[2] = {v, name};
    char *sql = NULL;
    PGresult *res = NULL;
    int e = 0, rc = 1;

    sb_fmt(path, sizeof(path), "%s/%s", dir, name);
    sb_fmt(v, sizeof(v), "%d", version);
    sql = sbctl_read_file(path, MIGRATION_MAX_BYTES, NULL, err, sizeof(err));
    if (sql == NULL) {
        fprintf(stderr, "sbctl migrate: %s\n", err);
        return 1;
    }
    if (sb_pg_exec(pg, "BEGIN", err, sizeof(err)) != 0)
        goto fail;
    if (sb_pg_exec(pg, sql, err, sizeof(err)) != 0)
        goto fail;
    res = sb_pg_query(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                      params, &e, err, sizeof(err));
    if (res == NULL)
        goto fail;
    if (sb_pg_exec(pg, "COMMIT", err, sizeof(err)) != 0)
        goto fail;
    printf("applied %s\n", name);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "sbctl migrate: %s: %s\n", name, err);
    sb_pg_exec(pg, "ROLLBACK", err, sizeof(err));
out:
    PQclear(res);
    free(sql);
    return rc;
}

int sbctl_migrate(struct sbctl *ctl, int argc, char **argv)
{
    char dir[4200] = "", err[512];
    char *names[MAX_MIGRATIONS];
    size_t n = 0, count = 0;
    struct sb_pg *pg = NULL;
    struct dirent *de;
    DIR *d = NULL;
    int rc = 1;

    if (sbctl_wants_help(argc, argv)) {
        printf("Usage: sbctl migrate [--dir DIR]\n\nApplies the pending migrations of DIR "
               "(default deploy/sql, or SB_SQL_DIR) and prints the schema version.\n");
        return 0;
    }
    if (getenv("SB_SQL_DIR") != NULL)
        sb_strlcpy(dir, getenv("SB_SQL_DIR"), sizeof(dir));
    else if (ctl->root[0] != '\0')
        sb_fmt(dir, sizeof(dir), "%s/deploy/sql", ctl->root);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            sb_strlcpy(dir, argv[++i], sizeof(dir));
        } else {
            fprintf(stderr, "sbctl migrate: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    d = dir[0] ? opendir(dir) : NULL;
    if (d == NULL) {
        fprintf(stderr, "sbctl migrate: cannot open the migrations directory \"%s\"\n", dir);
        return 1;
    }
    while ((de = readdir(d)) != NULL && n < MAX_MIGRATIONS) {
        if (is_migration(de->d_name))
            names[n++] = sb_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_names);
    pg = sbctl_pg(ctl);
    if (pg == NULL)
        goto out;
    if (sb_pg_exec(pg,
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                   "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                   err, sizeof(err)) != 0 ||
        sb_pg_exec(pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", err, sizeof(err)) != 0) {
        fprintf(stderr, "sbctl migrate: %s\n", err);
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int version = (names[i][0] - '0') * 1000 + (names[i][1] - '0') * 100 +
                      (names[i][2] - '0') * 10 + (names[i][3] - '0');
        if (applied(pg, version))
            continue;
        rc = apply(pg, dir, names[i], version);
        if (rc == 0)
            count++;
    }
    sb_pg_exec(pg, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", err, sizeof(err));
    printf("schema at version %d (applied %zu)\n", sbctl_schema_version(pg), count);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    sb_pg_destroy(pg);
    return rc;
}
