/* sbctl topics: creates the topics listed in proto/topics.json with the Kafka Admin API
 * (partitions, replication factor, retention, cleanup policy and per-topic configs,
 * each falling back to the file's "defaults"), and lists the cluster's topics.
 *
 * Creation is idempotent: a topic that already exists counts as success and is left
 * as it is (a different partition count is pointed out, never changed). The replication
 * factor is capped at the number of brokers, so the production file also works on the
 * single-broker local stack; min.insync.replicas is capped at the factor used. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOPICS 64
#define MAX_PARTITIONS 10000
#define MAX_REPLICATION 32
#define METADATA_TIMEOUT_MS 10000
#define ADMIN_TIMEOUT_MS 30000
#define TOPICS_FILE_MAX (1024 * 1024)

/* One topic of the file, after defaults are applied. */
struct topic_spec {
    const char *name; /* borrowed from the parsed file */
    int partitions;
    int replication;
    json_t *config; /* new object: every config entry, values as strings */
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl topics create [--file FILE]\n"
                 "       sbctl topics list\n"
                 "\n"
                 "create: creates every topic of FILE (default proto/topics.json of the\n"
                 "        repository) with its partitions, replication factor (capped at the\n"
                 "        number of brokers), retention.ms, cleanup.policy and config entries;\n"
                 "        prints \"NAME: created\" or \"NAME: exists\" per topic. Idempotent.\n"
                 "list:   prints every non-internal topic with its partition count.\n"
                 "\n"
                 "Brokers: --brokers or SB_KAFKA_BROKERS.\n");
}

/* librdkafka's own log lines go to the debug log: the user gets one error line. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)level;
    sb_log_kv(SB_LOG_DEBUG, "librdkafka", "facility", fac, "detail", buf, "client",
              rd_kafka_name(rk), NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    sb_log_kv(SB_LOG_DEBUG, "kafka error", "error", rd_kafka_err2name(err), "detail", reason, NULL);
}

static rd_kafka_t *admin_client(const struct sbctl *ctl)
{
    static const char *const props[][2] = {
        {"client.id", "sbctl"},
        {"socket.connection.setup.timeout.ms", "10000"},
    };
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", ctl->brokers, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK)
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL)
        goto fail;
    return rk; /* conf is now owned by rk */
fail:
    fprintf(stderr, "sbctl topics: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Metadata of every topic. Returns NULL after one line when the cluster does not answer. */
static const struct rd_kafka_metadata *cluster(rd_kafka_t *rk, const struct sbctl *ctl)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, METADATA_TIMEOUT_MS);

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->broker_cnt < 1) {
        fprintf(stderr, "sbctl topics: Kafka brokers %s unreachable: %s\n", ctl->brokers,
                rd_kafka_err2str(e));
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return NULL;
    }
    return md;
}

static int partitions_of(const struct rd_kafka_metadata *md, const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0)
            return md->topics[i].partition_cnt;
    }
    return -1;
}

/* A config value as a string: strings as they are, integers and booleans printed. */
static json_t *config_value(json_t *v)
{
    if (json_is_string(v))
        return json_incref(v);
    if (json_is_integer(v))
        return json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_boolean(v))
        return json_string(json_is_true(v) ? "true" : "false");
    return NULL;
}

/* Copies the entries of obj (may be NULL) into config. Returns 0 or -1. */
static int merge_config(json_t *config, json_t *obj)
{
    const char *k;
    json_t *v;

    if (obj == NULL)
        return 0;
    if (!json_is_object(obj))
        return -1;
    json_object_foreach(obj, k, v)
    {
        json_t *s = config_value(v);
        if (s == NULL)
            return -1;
        json_object_set_new(config, k, s);
    }
    return 0;
}

/* Field of the topic, else of the defaults. */
static json_t *field(json_t *topic, json_t *defaults, const char *key)
{
    json_t *v = json_object_get(topic, key);

    return v != NULL ? v : json_object_get(defaults, key);
}

static int int_in(json_t *v, json_int_t min, json_int_t max, int *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return -1;
    *out = (int)json_integer_value(v);
    return 0;
}

/* Reads one topic entry into spec. Returns 0, or -1 with errstr. */
static int parse_topic(json_t *t, json_t *defaults, struct topic_spec *spec, char *err,
                       size_t errsz)
{
    json_t *retention = field(t, defaults, "retention_ms");
    json_t *cleanup = field(t, defaults, "cleanup_policy");

    spec->name = json_string_value(json_object_get(t, "name"));
    if (spec->name == NULL || spec->name[0] == '\0' || strlen(spec->name) > 249) {
        sb_fmt(err, errsz, "\"name\" must be a non-empty string");
        return -1;
    }
    if (int_in(field(t, defaults, "partitions"), 1, MAX_PARTITIONS, &spec->partitions) != 0) {
        sb_fmt(err, errsz, "%s: \"partitions\" must be an integer 1..%d", spec->name,
               MAX_PARTITIONS);
        return -1;
    }
    if (int_in(field(t, defaults, "replication_factor"), 1, MAX_REPLICATION, &spec->replication) !=
        0) {
        sb_fmt(err, errsz, "%s: \"replication_factor\" must be an integer 1..%d", spec->name,
               MAX_REPLICATION);
        return -1;
    }
    spec->config = json_object();
    if (merge_config(spec->config, json_object_get(defaults, "config")) != 0 ||
        merge_config(spec->config, json_object_get(t, "config")) != 0) {
        sb_fmt(err, errsz, "%s: \"config\" must map names to strings or integers", spec->name);
        return -1;
    }
    if (retention != NULL) {
        if (!json_is_integer(retention) || json_integer_value(retention) < -1) {
            sb_fmt(err, errsz, "%s: \"retention_ms\" must be an integer >= -1", spec->name);
            return -1;
        }
        json_object_set_new(spec->config, "retention.ms", config_value(retention));
    }
    if (cleanup != NULL) {
        if (!json_is_string(cleanup)) {
            sb_fmt(err, errsz, "%s: \"cleanup_policy\" must be a string", spec->name);
            return -1;
        }
        json_object_set(spec->config, "cleanup.policy", cleanup);
    }
    return 0;
}

static void free_specs(struct topic_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(specs[i].config);
}

/* Parses the whole file: every topic is checked before anything is created. */
static json_t *load_specs(const char *file, struct topic_spec *specs, size_t *n)
{
    char err[512];
    json_error_t jerr;
    json_t *root, *topics, *t, *defaults;
    size_t i, len;
    char *buf = sbctl_read_file(file, TOPICS_FILE_MAX, &len, err, sizeof(err));

    *n = 0;
    if (buf == NULL) {
        fprintf(stderr, "sbctl topics: %s\n", err);
        return NULL;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (root == NULL) {
        fprintf(stderr, "sbctl topics: %s:%d: %s\n", file, jerr.line, jerr.text);
        return NULL;
    }
    topics = json_object_get(root, "topics");
    defaults = json_object_get(root, "defaults");
    if (!json_is_integer(json_object_get(root, "version")) ||
        json_integer_value(json_object_get(root, "version")) != 1 || !json_is_array(topics) ||
        json_array_size(topics) == 0 || json_array_size(topics) > MAX_TOPICS ||
        (defaults != NULL && !json_is_object(defaults))) {
        fprintf(stderr,
                "sbctl topics: %s: expected {\"version\": 1, \"defaults\": {…}, \"topics\": "
                "[1..%d topics]}\n",
                file, MAX_TOPICS);
        goto fail;
    }
    json_array_foreach(topics, i, t)
    {
        memset(&specs[i], 0, sizeof(specs[i]));
        *n = i + 1;
        if (!json_is_object(t) || parse_topic(t, defaults, &specs[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "sbctl topics: %s: topic %zu: %s\n", file, i + 1,
                    json_is_object(t) ? err : "not an object");
            goto fail;
        }
    }
    return root;
fail:
    free_specs(specs, *n);
    *n = 0;
    json_decref(root);
    return NULL;
}

/* The librdkafka request for one topic, or NULL after one line. */
static rd_kafka_NewTopic_t *new_topic(const struct topic_spec *spec, int brokers)
{
    char err[512], cap[16];
    int rf = spec->replication < brokers ? spec->replication : brokers;
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(spec->name, spec->partitions, rf, err, sizeof(err));
    const char *k;
    json_t *v;

    if (nt == NULL) {
        fprintf(stderr, "sbctl topics: %s: %s\n", spec->name, err);
        return NULL;
    }
    sb_fmt(cap, sizeof(cap), "%d", rf);
    json_object_foreach(spec->config, k, v)
    {
        const char *value = json_string_value(v);
        int64_t want = 0;

        if (strcmp(k, "min.insync.replicas") == 0 && sb_parse_int64(value, &want) == 0 && want > rf)
            value = cap; /* more than the replicas would refuse every acks=all write */
        if (rd_kafka_NewTopic_set_config(nt, k, value) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "sbctl topics: %s: invalid config %s=%s\n", spec->name, k, value);
            rd_kafka_NewTopic_destroy(nt);
            return NULL;
        }
    }
    return nt;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk)
{
    char err[512];
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);

    /* The operation timeout makes the broker answer once the topics are really there,
     * so that a metadata request right after sees them. */
    if (rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_TIMEOUT_MS, err, sizeof(err)) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_TIMEOUT_MS, err, sizeof(err)) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl topics: %s\n", err);
        rd_kafka_AdminOptions_destroy(opts);
        return NULL;
    }
    return opts;
}

/* Prints one line per topic result. Returns the exit code. */
static int report(rd_kafka_event_t *ev, const struct rd_kafka_metadata *md,
                  const struct topic_spec *specs, size_t n)
{
    size_t nres;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);
    int rc = SBCTL_EXIT_OK;

    for (size_t i = 0; i < nres; i++) {
        const char *name = rd_kafka_topic_result_name(res[i]);
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        int have = partitions_of(md, name), want = 0;

        for (size_t j = 0; j < n; j++) {
            if (strcmp(specs[j].name, name) == 0)
                want = specs[j].partitions;
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%s: created (%d partitions)\n", name, want);
        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && (have < 0 || have == want)) {
            printf("%s: exists\n", name);
        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            printf("%s: exists (with %d partitions; the file says %d, left unchanged)\n", name,
                   have, want);
        } else {
            fprintf(stderr, "sbctl topics: %s: %s\n", name,
                    rd_kafka_topic_result_error_string(res[i]));
            rc = SBCTL_EXIT_FAIL;
        }
    }
    return rc;
}

static int create(const struct sbctl *ctl, const char *file)
{
    struct topic_spec specs[MAX_TOPICS];
    rd_kafka_NewTopic_t *nts[MAX_TOPICS];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_t *rk = NULL;
    json_t *root;
    size_t n = 0, nnt = 0;
    int rc = SBCTL_EXIT_FAIL;

    root = load_specs(file, specs, &n);
    if (root == NULL)
        return SBCTL_EXIT_FAIL;
    rk = admin_client(ctl);
    if (rk == NULL)
        goto out;
    md = cluster(rk, ctl);
    if (md == NULL)
        goto out;
    for (nnt = 0; nnt < n; nnt++) {
        nts[nnt] = new_topic(&specs[nnt], md->broker_cnt);
        if (nts[nnt] == NULL)
            goto out;
    }
    opts = admin_options(rk);
    if (opts == NULL)
        goto out;
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nts, nnt, opts, q);
    ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
    if (ev == NULL || rd_kafka_event_type(ev) != RD_KAFKA_EVENT_CREATETOPICS_RESULT ||
        rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl topics: create failed: %s\n",
                ev != NULL ? rd_kafka_event_error_string(ev) : "timed out");
        goto out;
    }
    rc = report(ev, md, specs, n);
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    for (size_t i = 0; i < nnt; i++)
        rd_kafka_NewTopic_destroy(nts[i]);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    free_specs(specs, n);
    json_decref(root);
    return rc;
}

static int list(const struct sbctl *ctl)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = admin_client(ctl);

    if (rk == NULL)
        return SBCTL_EXIT_FAIL;
    md = cluster(rk, ctl);
    if (md == NULL) {
        rd_kafka_destroy(rk);
        return SBCTL_EXIT_FAIL;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strncmp(md->topics[i].topic, "__", 2) != 0)
            printf("%s\t%d partitions\n", md->topics[i].topic, md->topics[i].partition_cnt);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return SBCTL_EXIT_OK;
}

int sbctl_topics(struct sbctl *ctl, int argc, char **argv)
{
    char file[4200];

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    if (argc < 1) {
        usage(stderr);
        return SBCTL_EXIT_USAGE;
    }
    if (strcmp(argv[0], "list") == 0) {
        if (argc == 1)
            return list(ctl);
        fprintf(stderr, "sbctl topics: unexpected argument \"%s\" (see --help)\n", argv[1]);
        return SBCTL_EXIT_USAGE;
    }
    if (strcmp(argv[0], "create") != 0) {
        fprintf(stderr, "sbctl topics: unknown subcommand \"%s\" (create, list)\n", argv[0]);
        return SBCTL_EXIT_USAGE;
    }
    sbctl_default_path(ctl, "proto/topics.json", file, sizeof(file));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            sb_strlcpy(file, argv[++i], sizeof(file));
        } else {
            fprintf(stderr, "sbctl topics: unexpected argument \"%s\" (see --help)\n", argv[i]);
            return SBCTL_EXIT_USAGE;
        }
    }
    if (file[0] == '\0') {
        fprintf(stderr, "sbctl topics: no proto/topics.json found: use --file\n");
        return SBCTL_EXIT_USAGE;
    }
    return create(ctl, file);
}
