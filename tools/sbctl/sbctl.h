/* sbctl: administration of a Switchboard installation (migrations, topics, reference
 * data, tokens, inspection). main.c parses the global options and dispatches to one
 * module per subcommand. Every subcommand returns the process exit code: 0 success,
 * 1 runtime failure (one line on stderr), 2 usage error. */
#ifndef SB_SBCTL_H
#define SB_SBCTL_H

#include "sb/pg.h"

#include <stddef.h>

#define SBCTL_EXIT_OK 0
#define SBCTL_EXIT_FAIL 1
#define SBCTL_EXIT_USAGE 2

/* Global settings, filled by main() from options, then the environment, then defaults.
 * Strings are borrowed from argv or the environment. */
struct sbctl {
    const char *dsn;       /* --pg-dsn, SB_PG_DSN */
    const char *brokers;   /* --brokers, SB_KAFKA_BROKERS */
    const char *redis_url; /* --redis-url, SB_REDIS_URL (caches to invalidate) */
    /* Repository root for default file locations ("" when unknown): two levels above
     * the executable (build/bin/sbctl), else SB_REPO_ROOT, else the working directory
     * when it holds deploy/sql. */
    char root[4096];
};

/* Connects to PostgreSQL; on failure prints "sbctl: cannot connect to PostgreSQL: …"
 * (one line) and returns NULL. The caller owns the handle. */
struct sb_pg *sbctl_pg(const struct sbctl *ctl);

/* Reads a whole file of at most max bytes into a new NUL-terminated buffer (free()).
 * Returns NULL with errstr naming the file. */
char *sbctl_read_file(const char *path, size_t max, size_t *len, char *errstr, size_t errstr_size);

/* Builds root-relative path rel into out (e.g. "deploy/sql"); "" when no root is known. */
void sbctl_default_path(const struct sbctl *ctl, const char *rel, char *out, size_t outsz);

/* 1 when argv[0..argc) holds --help or -h. */
int sbctl_wants_help(int argc, char **argv);

/* The highest applied migration, 0 when none, or -1 when schema_migrations cannot be
 * read (not migrated yet, or the query failed). */
int sbctl_schema_version(struct sb_pg *pg);

/* Subcommands: argv[0] is the first argument after the subcommand name. */
int sbctl_migrate(struct sbctl *ctl, int argc, char **argv);
int sbctl_topics(struct sbctl *ctl, int argc, char **argv);
int sbctl_offsets(struct sbctl *ctl, int argc, char **argv);
int sbctl_replay(struct sbctl *ctl, int argc, char **argv);
int sbctl_load(struct sbctl *ctl, int argc, char **argv);
int sbctl_token(struct sbctl *ctl, int argc, char **argv);
int sbctl_inspect(struct sbctl *ctl, int argc, char **argv);
int sbctl_train(struct sbctl *ctl, int argc, char **argv);
int sbctl_report(struct sbctl *ctl, int argc, char **argv);

#endif
