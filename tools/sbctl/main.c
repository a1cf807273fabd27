/* sbctl entry point: global options (--pg-dsn, --brokers, --verbose, --help,
 * --version, accepted anywhere before "--"), the helpers shared by the subcommands,
 * and dispatch. Environment: SB_PG_DSN, SB_KAFKA_BROKERS, SB_SQL_DIR, SB_REPO_ROOT. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DSN "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard"
#define DEFAULT_BROKERS "127.0.0.1:19092"
#define DEFAULT_REDIS "redis://127.0.0.1:16379/0"
#define MAX_ARGS 256

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sbctl [OPTIONS] COMMAND [ARGS]\n"
            "\n"
            "Administration of a Switchboard installation.\n"
            "\n"
            "Commands:\n"
            "  migrate [--dir DIR]                   apply the pending SQL migrations\n"
            "  topics create [--file FILE]           create the topics of proto/topics.json\n"
            "  topics list                           list the cluster's topics\n"
            "  offsets GROUP --to start|end|TIME     move a consumer group (replay, skip)\n"
            "  replay [--schema NAME] [--since TIME] rebuild the projection into a fresh schema\n"
            "  load agents|customers|policies|calendars FILE\n"
            "                                        load reference data (.json or .csv)\n"
            "  token create --role ROLE [--agent ID] create an API token (printed once)\n"
            "  inspect ticket ID                     print a ticket and its events as JSON\n"
            "  train triage --data CSV …             train the triage model from labelled tickets\n"
            "  report generate|show KIND, report qa  scheduled reports and QA samples on demand\n"
            "  version                               print the version and the schema version\n"
            "\n"
            "Options:\n"
            "  --pg-dsn DSN     PostgreSQL (env SB_PG_DSN)\n"
            "                   default %s\n"
            "  --brokers HOSTS  Kafka bootstrap servers (env SB_KAFKA_BROKERS; default %s)\n"
            "  --redis-url URL  Redis whose caches a load invalidates (env SB_REDIS_URL;\n"
            "                   default %s)\n"
            "  -v, --verbose    debug log lines (JSON on stderr)\n"
            "  -h, --help       this text; \"sbctl COMMAND --help\" for a command\n"
            "  --version        same as \"sbctl version\"\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            DEFAULT_DSN, DEFAULT_BROKERS, DEFAULT_REDIS);
}

int sbctl_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    return 0;
}

char *sbctl_read_file(const char *path, size_t max, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;

    if (f == NULL) {
        sb_fmt(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = sb_malloc(max + 1);
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        sb_fmt(errstr, errstr_size, "%s: read error", path);
        goto fail;
    }
    if (n > max) {
        sb_fmt(errstr, errstr_size, "%s: larger than %zu bytes", path, max);
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
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
    int64_t x;
    PGresult *res = sb_pg_query(pg,
                                "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL "
                                "THEN -1 ELSE (SELECT coalesce(max(version), 0) "
                                "FROM schema_migrations) END",
                                0, NULL, &e, err, sizeof(err));

    if (res != NULL && PQntuples(res) == 1 && sb_parse_int64(PQgetvalue(res, 0, 0), &x) == 0)
        v = (int)x;
    PQclear(res);
    return v;
}

void sbctl_default_path(const struct sbctl *ctl, const char *rel, char *out, size_t outsz)
{
    if (ctl->root[0] == '\0' || sb_fmt(out, outsz, "%s/%s", ctl->root, rel) != 0)
        out[0] = '\0';
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Finds the repository root (see struct sbctl). */
static void find_root(struct sbctl *ctl)
{
    const char *env = getenv("SB_REPO_ROOT");
    char exe[4096], probe[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    ctl->root[0] = '\0';
    if (n > 0) {
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0'; /* the directory of the executable */
            if (sb_fmt(probe, sizeof(probe), "%s/../../deploy/sql", exe) == 0 && is_dir(probe) &&
                sb_fmt(ctl->root, sizeof(ctl->root), "%s/../..", exe) == 0)
                return;
        }
    }
    if (env != NULL && env[0] != '\0' && sb_fmt(probe, sizeof(probe), "%s/deploy/sql", env) == 0 &&
        is_dir(probe)) {
        sb_strlcpy(ctl->root, env, sizeof(ctl->root));
        return;
    }
    if (is_dir("deploy/sql"))
        sb_strlcpy(ctl->root, ".", sizeof(ctl->root));
    else
        ctl->root[0] = '\0';
}

static int version(struct sbctl *ctl)
{
    char err[512];
    struct sb_pg *pg;
    int v;

    printf("sbctl %s\n", SB_VERSION);
    fflush(stdout);
    pg = sb_pg_new(ctl->dsn, err, sizeof(err));
    if (pg == NULL)
        return SBCTL_EXIT_OK; /* the schema version is shown only when reachable */
    v = sbctl_schema_version(pg);
    if (v >= 0)
        printf("schema version %d\n", v);
    else
        printf("schema not migrated\n");
    sb_pg_destroy(pg);
    return SBCTL_EXIT_OK;
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]. Returns 1 and sets *value
 * (advancing *i past a separate value), 0 when argv[*i] is another argument, -1 when
 * the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

/* Removes the global options from argv (kept in order in rest). Returns 0, or 2 with
 * a message for a missing value. */
static int parse_globals(struct sbctl *ctl, int argc, char **argv, int *verbose, int *nrest,
                         char **rest)
{
    int i, dashdash = 0, m;

    *nrest = 0;
    for (i = 1; i < argc; i++) {
        if (!dashdash && strcmp(argv[i], "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (!dashdash && (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0)) {
            *verbose = 1;
            continue;
        }
        if (!dashdash) {
            m = option_value(argc, argv, &i, "--pg-dsn", &ctl->dsn);
            if (m == 0)
                m = option_value(argc, argv, &i, "--brokers", &ctl->brokers);
            if (m == 0)
                m = option_value(argc, argv, &i, "--redis-url", &ctl->redis_url);
            if (m < 0) {
                fprintf(stderr, "sbctl: option %s needs a value\n", argv[i]);
                return SBCTL_EXIT_USAGE;
            }
            if (m > 0)
                continue;
        }
        if (*nrest >= MAX_ARGS) {
            fprintf(stderr, "sbctl: more than %d arguments\n", MAX_ARGS);
            return SBCTL_EXIT_USAGE;
        }
        rest[(*nrest)++] = argv[i];
    }
    return 0;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}

int main(int argc, char **argv)
{
    static char *rest[MAX_ARGS + 1];
    struct sbctl ctl;
    int verbose = 0, nrest = 0, rc;
    const char *cmd;

    memset(&ctl, 0, sizeof(ctl));
    ctl.dsn = env_or("SB_PG_DSN", DEFAULT_DSN);
    ctl.brokers = env_or("SB_KAFKA_BROKERS", DEFAULT_BROKERS);
    ctl.redis_url = env_or("SB_REDIS_URL", DEFAULT_REDIS);
    rc = parse_globals(&ctl, argc, argv, &verbose, &nrest, rest);
    if (rc != 0)
        return rc;
    sb_log_init("sbctl", verbose ? SB_LOG_DEBUG : SB_LOG_WARN);
    find_root(&ctl);
    if (nrest == 0) {
        usage(stderr);
        return SBCTL_EXIT_USAGE;
    }
    cmd = rest[0];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)
        return version(&ctl);
    if (strcmp(cmd, "migrate") == 0)
        return sbctl_migrate(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "topics") == 0)
        return sbctl_topics(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "replay") == 0)
        return sbctl_replay(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "offsets") == 0)
        return sbctl_offsets(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "load") == 0)
        return sbctl_load(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "token") == 0)
        return sbctl_token(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "inspect") == 0)
        return sbctl_inspect(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "train") == 0)
        return sbctl_train(&ctl, nrest - 1, rest + 1);
    if (strcmp(cmd, "report") == 0)
        return sbctl_report(&ctl, nrest - 1, rest + 1);
    if (cmd[0] == '-')
        fprintf(stderr, "sbctl: unknown option \"%s\" (see sbctl --help)\n", cmd);
    else
        fprintf(stderr, "sbctl: unknown command \"%s\" (see sbctl --help)\n", cmd);
    return SBCTL_EXIT_USAGE;
}
