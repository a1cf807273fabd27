/* sbctl topics: creates the topics of proto/topics.json with the Kafka Admin API
 * (partitions, replication capped at the number of brokers, retention, cleanup policy
 * and per-topic configs); an existing topic counts as success. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOPICS 64
#define TIMEOUT_MS 30000

static rd_kafka_t *admin_client(const struct sbctl *ctl)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", ctl->brokers, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "sbctl topics: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set(conf, "client.id", "sbctl", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "sbctl topics: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Number of brokers, or -1 when the cluster does not answer. */
static int broker_count(rd_kafka_t *rk, const struct rd_kafka_metadata **md_out)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    *md_out = md;
    return md->broker_cnt;
}

static int set_config(rd_kafka_NewTopic_t *nt, const char *k, const char *v)
{
    return rd_kafka_NewTopic_set_config(nt, k, v) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static char *scalar(json_t *v)
{
    char buf[64];
    if (json_is_string(v))
        return sb_strdup(json_string_value(v));
    if (json_is_integer(v)) {
        sb_fmt(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return sb_strdup(buf);
    }
    return NULL;
}

static int add_configs(rd_kafka_NewTopic_t *nt, json_t *obj, int rf)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v)
    {
        char *s = scalar(v);
        int rc;
        if (s == NULL)
            return -1;
        /* min.insync.replicas cannot exceed the replication actually used. */
        int64_t want = 0;
        if (strcmp(k, "min.insync.replicas") == 0 && sb_parse_int64(s, &want) == 0 && want >= rf)
            rc = set_config(nt, k, rf <= 2 ? "1" : "2");
        else
            rc = set_config(nt, k, s);
        free(s);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int create(const struct sbctl *ctl, const char *file)
{
    char err[512], num[32];
    json_error_t jerr;
    json_t *root = NULL, *topics, *t, *defaults;
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nts[MAX_TOPICS];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_topic_result_t **res;
    size_t n = 0, nres, i;
    int brokers, rc = 1;

    root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fprintf(stderr, "sbctl topics: %s:%d: %s\n", file, jerr.line, jerr.text);
        return 1;
    }
    topics = json_object_get(root, "topics");
    defaults = json_object_get(root, "defaults");
    if (!json_is_array(topics) || json_array_size(topics) > MAX_TOPICS) {
        fprintf(stderr, "sbctl topics: %s: \"topics\" must be an array\n", file);
        goto out;
    }
    rk = admin_client(ctl);
    if (rk == NULL)
        goto out;
    brokers = broker_count(rk, &md);
    if (brokers < 1) {
        fprintf(stderr, "sbctl topics: kafka brokers %s unreachable\n", ctl->brokers);
        goto out;
    }
    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *p = json_object_get(t, "partitions");
        json_t *r = json_object_get(t, "replication_factor");
        int rf = json_is_integer(r) ? (int)json_integer_value(r) : 1;
        if (name == NULL || !json_is_integer(p) || json_integer_value(p) < 1) {
            fprintf(stderr, "sbctl topics: %s: topic %zu needs a name and partitions\n", file,
                    i + 1);
            goto out;
        }
        if (rf > brokers)
            rf = brokers;
        nts[n] = rd_kafka_NewTopic_new(name, (int)json_integer_value(p), rf, err, sizeof(err));
        if (nts[n] == NULL) {
            fprintf(stderr, "sbctl topics: %s: %s\n", name, err);
            goto out;
        }
        n++;
        if (json_is_integer(json_object_get(t, "retention_ms"))) {
            sb_fmt(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                   json_integer_value(json_object_get(t, "retention_ms")));
            set_config(nts[n - 1], "retention.ms", num);
        }
        if (json_is_string(json_object_get(t, "cleanup_policy")))
            set_config(nts[n - 1], "cleanup.policy",
                       json_string_value(json_object_get(t, "cleanup_policy")));
        if (add_configs(nts[n - 1], json_object_get(defaults, "config"), rf) != 0 ||
            add_configs(nts[n - 1], json_object_get(t, "config"), rf) != 0) {
            fprintf(stderr, "sbctl topics: %s: invalid config entry\n", name);
            goto out;
        }
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nts, n, NULL, q);
    ev = rd_kafka_queue_poll(q, TIMEOUT_MS);
    if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl topics: create failed: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        goto out;
    }
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);
    rc = 0;
    for (i = 0; i < nres; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%s: created\n", rd_kafka_topic_result_name(res[i]));
        } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            printf("%s: exists\n", rd_kafka_topic_result_name(res[i]));
        } else {
            fprintf(stderr, "%s: %s\n", rd_kafka_topic_result_name(res[i]),
                    rd_kafka_topic_result_error_string(res[i]));
            rc = 1;
        }
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    for (i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nts[i]);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    json_decref(root);
    return rc;
}

static int list(const struct sbctl *ctl)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = admin_client(ctl);

    if (rk == NULL)
        return 1;
    if (broker_count(rk, &md) < 1) {
        fprintf(stderr, "sbctl topics: kafka brokers %s unreachable\n", ctl->brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strncmp(md->topics[i].topic, "sb.", 3) == 0)
            printf("%s\t%d partitions\n", md->topics[i].topic, md->topics[i].partition_cnt);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

int sbctl_topics(struct sbctl *ctl, int argc, char **argv)
{
    char file[4200] = "proto/topics.json";

    if (argc < 1 || sbctl_wants_help(argc, argv)) {
        printf("Usage: sbctl topics create [--file FILE] | sbctl topics list\n\n"
               "create: creates every topic of FILE (default proto/topics.json); existing "
               "topics are left as they are.\nlist: the cluster's sb.* topics.\n");
        return argc < 1 ? 2 : 0;
    }
    if (ctl->root[0] != '\0')
        sb_fmt(file, sizeof(file), "%s/proto/topics.json", ctl->root);
    if (strcmp(argv[0], "list") == 0)
        return list(ctl);
    if (strcmp(argv[0], "create") != 0) {
        fprintf(stderr, "sbctl topics: unknown subcommand \"%s\"\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            sb_strlcpy(file, argv[++i], sizeof(file));
        } else {
            fprintf(stderr, "sbctl topics: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    return create(ctl, file);
}
