/* sbctl entry point: global options and subcommand dispatch. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DSN "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard"
#define DEFAULT_BROKERS "127.0.0.1:19092"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sbctl [--pg-dsn DSN] [--brokers HOSTS] COMMAND [ARGS]\n\n"
            "Administration of a Switchboard installation.\n\n"
            "Commands:\n"
            "  migrate [--dir DIR]                 apply pending SQL migrations\n"
            "  topics create [--file FILE]         create the topics of proto/topics.json\n"
            "  topics list                         list the cluster's sb.* topics\n"
            "  load agents|customers|policies FILE load reference data (.json or .csv)\n"
            "  token create --role R [--agent ID]  create an API token (printed once)\n"
            "  inspect ticket ID                   print a ticket and its events as JSON\n"
            "  version                             print versions\n\n"
            "Options:\n"
            "  --pg-dsn DSN    PostgreSQL (env SB_PG_DSN, default the local stack)\n"
            "  --brokers HOSTS Kafka bootstrap servers (env SB_KAFKA_BROKERS)\n"
            "  --help          this text; COMMAND --help for a command\n");
}

int sbctl_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

char *sbctl_read_file(const char *path, size_t max, size_t *len, char *errstr,
                      size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL) {
        sb_fmt(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = sb_malloc(max + 1);
    n = fread(buf, 1, max + 1, f);
    fclose(f);
    if (n > max) {
        free(buf);
        sb_fmt(errstr, errstr_size, "%s: larger than %zu bytes", path, max);
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

struct sb_pg *sbctl_pg(const struct sbctl *ctl)
{
    char err[512];
    struct sb_pg *pg = sb_pg_new(ctl->dsn, err, sizeof(err));

    if (pg == NULL)
        fprintf(stderr, "sbctl: cannot connect to PostgreSQL: %s\n", err);
    return pg;
}

int sbctl_schema_version(struct sb_pg *pg)
{
    char err[256];
    int e = 0, v = -1;
    PGresult *res = sb_pg_query(pg,
                                "SELECT coalesce(max(version), 0) FROM schema_migrations", 0,
                                NULL, &e, err, sizeof(err));
    if (res != NULL) {
        int64_t x;
        if (PQntuples(res) == 1 && sb_parse_int64(PQgetvalue(res, 0, 0), &x) == 0)
            v = (int)x;
        PQclear(res);
    }
    return v;
}

/* The repository root: SB_REPO_ROOT, else two levels above the executable
 * (build/bin/sbctl), else the working directory when it has deploy/sql. */
static void find_root(struct sbctl *ctl)
{
    const char *env = getenv("SB_REPO_ROOT");
    char exe[4096], probe[4200];
    struct stat st;
    ssize_t n;

    ctl->root[0] = '\0';
    if (env != NULL && env[0] != '\0') {
        sb_strlcpy(ctl->root, env, sizeof(ctl->root));
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        sb_fmt(probe, sizeof(probe), "%s/../../deploy/sql", dirname(exe));
        if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode)) {
            sb_fmt(ctl->root, sizeof(ctl->root), "%s/../..", exe);
            return;
        }
    }
    if (stat("deploy/sql", &st) == 0 && S_ISDIR(st.st_mode))
        sb_strlcpy(ctl->root, ".", sizeof(ctl->root));
}

static int version(struct sbctl *ctl)
{
    char err[512];
    struct sb_pg *pg;

    printf("sbctl %s\n", SB_VERSION);
    pg = sb_pg_new(ctl->dsn, err, sizeof(err));
    if (pg != NULL) {
        int v = sbctl_schema_version(pg);
        if (v >= 0)
            printf("schema version %d\n", v);
        sb_pg_destroy(pg);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sbctl ctl;
    int i = 1;

    sb_log_init("sbctl", SB_LOG_WARN);
    memset(&ctl, 0, sizeof(ctl));
    ctl.dsn = getenv("SB_PG_DSN") ? getenv("SB_PG_DSN") : DEFAULT_DSN;
    ctl.brokers = getenv("SB_KAFKA_BROKERS") ? getenv("SB_KAFKA_BROKERS") : DEFAULT_BROKERS;
    find_root(&ctl);
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0)
            return version(&ctl);
        if (strcmp(argv[i], "--pg-dsn") == 0 && i + 1 < argc) {
            ctl.dsn = argv[++i];
        } else if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            ctl.brokers = argv[++i];
        } else {
            fprintf(stderr, "sbctl: unknown option \"%s\" (see sbctl --help)\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[i], "migrate") == 0)
        return sbctl_migrate(&ctl, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "topics") == 0)
        return sbctl_topics(&ctl, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "load") == 0)
        return sbctl_load(&ctl, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "token") == 0)
        return sbctl_token(&ctl, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "inspect") == 0)
        return sbctl_inspect(&ctl, argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "version") == 0)
        return version(&ctl);
    if (strcmp(argv[i], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sbctl: unknown command \"%s\" (see sbctl --help)\n", argv[i]);
    return 2;
}
