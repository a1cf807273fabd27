/* sbctl: administration of a Switchboard installation (migrations, topics, reference
 * data, tokens, inspection). One module per subcommand; each returns the process exit
 * code: 0 success, 1 runtime failure, 2 usage error. */
#ifndef SB_SBCTL_H
#define SB_SBCTL_H

#include "sb/pg.h"

#include <stddef.h>

struct sbctl {
    const char *dsn;     /* --pg-dsn or SB_PG_DSN */
    const char *brokers; /* --brokers or SB_KAFKA_BROKERS */
    char root[4096];     /* repository root (defaults for files), "" when unknown */
};

/* Connects to PostgreSQL or prints one line and returns NULL. */
struct sb_pg *sbctl_pg(const struct sbctl *ctl);
/* Reads a whole file (cap max bytes) into a new NUL-terminated buffer. */
char *sbctl_read_file(const char *path, size_t max, size_t *len, char *errstr,
                      size_t errstr_size);
/* 1 when argv has --help or -h. */
int sbctl_wants_help(int argc, char **argv);

int sbctl_migrate(struct sbctl *ctl, int argc, char **argv);
int sbctl_topics(struct sbctl *ctl, int argc, char **argv);
int sbctl_load(struct sbctl *ctl, int argc, char **argv);
int sbctl_token(struct sbctl *ctl, int argc, char **argv);
int sbctl_inspect(struct sbctl *ctl, int argc, char **argv);
/* The current schema version, or -1 when unreachable. */
int sbctl_schema_version(struct sb_pg *pg);

#endif
