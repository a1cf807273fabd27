/* sbctl offsets: moves a consumer group's committed offsets to the start or the end of
 * its topics, or to the first message at or after a time. This is how a stage replays
 * (its group to a time, or to the start to rebuild a projection) or skips what is
 * already there (a new group to the end, before its first consumer starts).
 *
 * The offsets are looked up with one ListOffsets request per broker
 * (rd_kafka_offsets_for_times: timestamp -2 is the start, -1 the end) and committed for
 * the group without joining it. Kafka refuses such a commit while the group has live
 * members; the command then says to stop them first. */
#include "sbctl.h"

#include "sb/event.h"
#include "sb/log.h"
#include "sb/util.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFFSETS_TIMEOUT_MS 15000
#define RETRY_FOR_MS 60000
#define MAX_TOPICS 64
#define TS_START (-2) /* ListOffsets: the earliest offset */
#define TS_END (-1)   /* ListOffsets: the next offset to be written */

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl offsets GROUP --to start|end|TIME [--topic TOPIC]...\n"
                 "\n"
                 "Commits, for consumer group GROUP, the offset of every partition of the\n"
                 "topics (default: every sb.* topic of the cluster) at the start, at the end,\n"
                 "or at the first message written at or after TIME (RFC 3339, e.g.\n"
                 "2026-11-23T08:00:00Z). The group's consumers must be stopped. Prints one\n"
                 "line per topic: NAME PARTITIONS MESSAGES-AHEAD.\n"
                 "\n"
                 "Brokers: --brokers or SB_KAFKA_BROKERS.\n");
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    sb_log_kv(SB_LOG_DEBUG, "kafka error", "error", rd_kafka_err2name(err), "detail", reason, NULL);
}

static rd_kafka_t *group_client(const struct sbctl *ctl, const char *group)
{
    static const char *const props[][2] = {
        {"client.id", "sbctl"},
        {"enable.auto.commit", "false"},
        {"socket.connection.setup.timeout.ms", "10000"},
        {"log_level", "3"},
    };
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", ctl->brokers, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) != RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)) != RD_KAFKA_CONF_OK)
            goto fail;
    }
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL)
        goto fail;
    return rk;
fail:
    fprintf(stderr, "sbctl offsets: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Adds every partition of the named topics (all sb.* topics when none are named) with
 * offset field ts. Returns the number of topics, -1 after one line on stderr. */
static int add_partitions(rd_kafka_t *rk, const struct sbctl *ctl, const char **topics, int ntopics,
                          int64_t ts, rd_kafka_topic_partition_list_t *list)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, OFFSETS_TIMEOUT_MS);
    int found = 0;

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl offsets: Kafka brokers %s unreachable: %s\n", ctl->brokers,
                rd_kafka_err2str(e));
        return -1;
    }
    for (int i = 0; i < ntopics; i++) {
        int known = 0;
        for (int t = 0; t < md->topic_cnt; t++)
            known |= strcmp(md->topics[t].topic, topics[i]) == 0;
        if (!known) {
            fprintf(stderr, "sbctl offsets: no topic %s in the cluster\n", topics[i]);
            rd_kafka_metadata_destroy(md);
            return -1;
        }
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        int wanted = ntopics == 0 && strncmp(mt->topic, "sb.", 3) == 0;
        for (int i = 0; i < ntopics && !wanted; i++)
            wanted = strcmp(mt->topic, topics[i]) == 0;
        if (!wanted)
            continue;
        found++;
        for (int p = 0; p < mt->partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, mt->topic, mt->partitions[p].id)->offset = ts;
    }
    rd_kafka_metadata_destroy(md);
    return found;
}

/* Sums, per topic, the messages from the new offset to the end and prints the lines. */
static void print_summary(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *list)
{
    const char *topic = NULL;
    int parts = 0;
    long long ahead = 0;

    for (int i = 0; i <= list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = i < list->cnt ? &list->elems[i] : NULL;
        if (topic != NULL && (tp == NULL || strcmp(tp->topic, topic) != 0)) {
            printf("%s %d %lld\n", topic, parts, ahead);
            parts = 0;
            ahead = 0;
        }
        if (tp == NULL)
            break;
        int64_t lo = 0, hi = 0;
        topic = tp->topic;
        parts++;
        if (rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi,
                                             OFFSETS_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            tp->offset >= 0 && hi > tp->offset)
            ahead += hi - tp->offset;
    }
}

/* Errors of a cluster that is still starting or moving leaders: worth another try. */
static int retriable(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           e == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
           e == RD_KAFKA_RESP_ERR_NOT_COORDINATOR || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
           e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
           e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
           e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__WAIT_COORD;
}

/* The first retriable error of a call or of one of its partitions, else the call's. */
static rd_kafka_resp_err_t first_error(rd_kafka_resp_err_t e,
                                       const rd_kafka_topic_partition_list_t *list)
{
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return e;
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return list->elems[i].err;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static int parse_to(const char *to, int64_t *ts)
{
    if (strcmp(to, "start") == 0)
        *ts = TS_START;
    else if (strcmp(to, "end") == 0)
        *ts = TS_END;
    else if (sb_time_parse(to, ts) != 0 || *ts < 0)
        return -1;
    return 0;
}

int sbctl_offsets(struct sbctl *ctl, int argc, char **argv)
{
    const char *group = NULL, *to = NULL, *topics[MAX_TOPICS];
    int ntopics = 0, rc = SBCTL_EXIT_FAIL;
    int64_t ts = 0;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t e;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc && ntopics < MAX_TOPICS)
            topics[ntopics++] = argv[++i];
        else if (argv[i][0] != '-' && group == NULL)
            group = argv[i];
        else {
            fprintf(stderr, "sbctl offsets: unexpected argument %s\n", argv[i]);
            usage(stderr);
            return SBCTL_EXIT_USAGE;
        }
    }
    if (group == NULL || to == NULL || parse_to(to, &ts) != 0) {
        if (to != NULL && group != NULL)
            fprintf(stderr, "sbctl offsets: --to %s: start, end or an RFC 3339 time expected\n",
                    to);
        usage(stderr);
        return SBCTL_EXIT_USAGE;
    }
    rk = group_client(ctl, group);
    if (rk == NULL)
        return SBCTL_EXIT_FAIL;
    list = rd_kafka_topic_partition_list_new(64);
    if (add_partitions(rk, ctl, topics, ntopics, ts, list) <= 0) {
        if (list->cnt == 0 && ntopics == 0)
            fprintf(stderr, "sbctl offsets: no sb.* topics in the cluster\n");
        goto done;
    }
    /* A broker just started, or topics just created, answer "not yet" for a while. */
    for (int64_t until = sb_mono_ms() + RETRY_FOR_MS;;) {
        for (int i = 0; i < list->cnt; i++) {
            list->elems[i].offset = ts;
            list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        e = rd_kafka_offsets_for_times(rk, list, OFFSETS_TIMEOUT_MS);
        if (!retriable(first_error(e, list)) || sb_mono_ms() > until)
            break;
        sb_sleep_ms(500);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl offsets: cannot look the offsets up: %s\n", rd_kafka_err2str(e));
        goto done;
    }
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "sbctl offsets: %s [%d]: %s\n", tp->topic, (int)tp->partition,
                    rd_kafka_err2str(tp->err));
            goto done;
        }
        if (tp->offset < 0) { /* no message at or after the time: the end */
            int64_t lo = 0, hi = 0;
            e = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi,
                                                 OFFSETS_TIMEOUT_MS);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "sbctl offsets: %s [%d]: %s\n", tp->topic, (int)tp->partition,
                        rd_kafka_err2str(e));
                goto done;
            }
            tp->offset = hi;
        }
    }
    for (int64_t until = sb_mono_ms() + RETRY_FOR_MS;;) {
        e = rd_kafka_commit(rk, list, 0);
        if (!retriable(first_error(e, list)) || sb_mono_ms() > until)
            break;
        for (int i = 0; i < list->cnt; i++)
            list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        sb_sleep_ms(500);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
            e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
            fprintf(stderr, "sbctl offsets: group %s has running consumers; stop them first\n",
                    group);
        else
            fprintf(stderr, "sbctl offsets: commit for group %s failed: %s\n", group,
                    rd_kafka_err2str(e));
        goto done;
    }
    for (int i = 0; i < list->cnt; i++) {
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "sbctl offsets: %s [%d]: %s\n", list->elems[i].topic,
                    (int)list->elems[i].partition, rd_kafka_err2str(list->elems[i].err));
            goto done;
        }
    }
    print_summary(rk, list);
    rc = SBCTL_EXIT_OK;
done:
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_destroy(rk);
    return rc;
}
