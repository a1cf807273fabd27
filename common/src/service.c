/* The frame shared by every program: options common to all services, the command
 * line, and signal handling (handlers only set a flag). */
#include "sb/service.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct sb_config_def sb_service_common_defs[] = {
    {"log.level", "SB_LOG_LEVEL", SB_CFG_STRING, "info", 0, -1, 0,
     "minimum log level: debug, info, warn, error, off"},
    {"kafka.brokers", "SB_KAFKA_BROKERS", SB_CFG_STRING, "127.0.0.1:19092", 0, -1, 1,
     "Kafka bootstrap servers (host:port,…)"},
    {"rdkafka", "SB_RDKAFKA", SB_CFG_MAP, NULL, 0, -1, 0,
     "extra librdkafka properties, passed through and checked (object, or k=v,k=v)"},
    {"pg.dsn", "SB_PG_DSN", SB_CFG_STRING,
     "postgresql://switchboard:switchboard@127.0.0.1:15432/switchboard", 0, -1, 1,
     "PostgreSQL connection string"},
    {"redis.url", "SB_REDIS_URL", SB_CFG_STRING, "redis://127.0.0.1:16379/0", 0, -1, 1,
     "Redis URL redis://host:port/db"},
    {"redis.timeout_ms", "SB_REDIS_TIMEOUT_MS", SB_CFG_INT, "500", 10, 60000, 0,
     "Redis connect and command timeout"},
    {"admin.bind", "SB_ADMIN_BIND", SB_CFG_STRING, "127.0.0.1", 0, -1, 0,
     "address of the /healthz /readyz /metrics server"},
    {"shutdown.timeout_ms", "SB_SHUTDOWN_TIMEOUT_MS", SB_CFG_INT, "10000", 100, 600000, 0,
     "time allowed to each shutdown step (drain, flush, commit)"},
};
const size_t sb_service_common_ndefs =
    sizeof(sb_service_common_defs) / sizeof(sb_service_common_defs[0]);

static volatile sig_atomic_t stop_flag;
static struct sb_config_def *merged_defs;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void sb_signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

int sb_stop_requested(void)
{
    return stop_flag != 0;
}

void sb_stop_request(void)
{
    stop_flag = 1;
}

static void usage(FILE *out, const char *program, const char *summary,
                  const struct sb_config_def *defs, size_t n)
{
    fprintf(out, "Usage: %s [--config FILE] [--help] [--version]\n\n%s\n\n", program, summary);
    fprintf(out, "Options (JSON file keys; each also set by its environment variable):\n");
    sb_config_print_help(defs, n, out);
}

int sb_service_configure(int argc, char **argv, const char *program, const char *summary,
                         const struct sb_config_def *defs, size_t ndefs, struct sb_config **out)
{
    const char *config_path = NULL;
    struct sb_config *cfg = NULL;
    char errstr[512];
    size_t n = sb_service_common_ndefs + ndefs;
    enum sb_log_level level;

    *out = NULL;
    free(merged_defs);
    merged_defs = sb_malloc(n * sizeof(*merged_defs));
    memcpy(merged_defs, sb_service_common_defs, sb_service_common_ndefs * sizeof(*merged_defs));
    if (ndefs > 0)
        memcpy(merged_defs + sb_service_common_ndefs, defs, ndefs * sizeof(*merged_defs));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, program, summary, merged_defs, n);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("%s %s\n", program, SB_VERSION);
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            fprintf(stderr, "%s: unknown argument \"%s\" (see --help)\n", program, argv[i]);
            return SB_E_INVAL;
        }
    }
    cfg = sb_config_new(merged_defs, n, errstr, sizeof(errstr));
    if (cfg == NULL)
        goto bad;
    if (config_path != NULL && sb_config_load_file(cfg, config_path, errstr, sizeof(errstr)) != 0)
        goto bad;
    if (sb_config_load_env(cfg, errstr, sizeof(errstr)) != 0 ||
        sb_config_validate(cfg, errstr, sizeof(errstr)) != 0)
        goto bad;
    if (sb_log_level_parse(sb_config_str(cfg, "log.level"), &level) != 0) {
        sb_fmt(errstr, sizeof(errstr), "config key \"log.level\": unknown level \"%s\"",
               sb_config_str(cfg, "log.level"));
        goto bad;
    }
    sb_log_init(program, level);
    *out = cfg;
    return 0;
bad:
    fprintf(stderr, "%s: %s\n", program, errstr);
    sb_config_destroy(cfg);
    return SB_E_INVAL;
}

void sb_service_kafka_opts(const struct sb_config *cfg, const char *client_id,
                           struct sb_kafka_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->brokers = sb_config_str(cfg, "kafka.brokers");
    opts->client_id = client_id;
    opts->nprops = sb_config_map(cfg, "rdkafka", &opts->keys, &opts->values);
}
