/* sbctl replay: rebuilds the reporter's projection from the topics into a fresh schema.
 *
 * The projection tables (tickets, ticket_events, incidents, agent_presence, dlq_entries,
 * projection_errors) are created empty in SCHEMA with the shape of the live ones; every
 * topic the reporter reads is read from the start (or from --since) up to the end it
 * has when the command starts, and each batch goes through the same sb_project() as the
 * live projection, on a connection whose search_path puts SCHEMA first. The result
 * can be compared with the live tables, or swapped in for them (docs/operations.md). */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/kafka.h"
#include "sb/log.h"
#include "sb/projection.h"
#include "sb/strbuf.h"
#include "sb/util.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_TIMEOUT_MS 15000
#define REPLAY_BATCH 1000
#define REPLAY_IDLE_MS 30000
#define REPLAY_MAX_TOPICS 32

static const char *const default_topics[] = {SB_TOPIC_CONTACTS, SB_TOPIC_TICKETS,  SB_TOPIC_ROUTING,
                                             SB_TOPIC_ACTIVITY, SB_TOPIC_PRESENCE, SB_TOPIC_SLA,
                                             SB_TOPIC_DLQ};
static const char *const tables[] = {"tickets",        "ticket_events", "incidents",
                                     "agent_presence", "dlq_entries",   "projection_errors"};

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl replay [--schema NAME] [--since TIME] [--topic TOPIC]...\n"
                 "\n"
                 "Rebuilds the reporter's projection (tickets, ticket_events, incidents,\n"
                 "agent_presence, dlq_entries, projection_errors) in schema NAME (default\n"
                 "replay; dropped and created afresh) from every topic, read from the start or\n"
                 "from the first message at or after TIME (RFC 3339) up to the end the topics\n"
                 "have when the command starts (--topic: these topics instead of the seven the\n"
                 "reporter reads). Prints the messages read and the rows of each table. The\n"
                 "live projection is not touched.\n");
}

static int valid_schema(const char *s)
{
    if (s[0] == '\0' || strlen(s) > 48 || strcmp(s, "public") == 0 || strcmp(s, "bi") == 0 ||
        strncmp(s, "pg_", 3) == 0 || isdigit((unsigned char)s[0]))
        return 0;
    for (const char *p = s; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return 0;
    }
    return 1;
}

static int fresh_schema(struct sb_pg *pg, const char *schema)
{
    char sql[512], err[512];

    sb_fmt(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    if (sb_pg_exec(pg, sql, err, sizeof(err)) != 0)
        goto fail;
    sb_fmt(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    if (sb_pg_exec(pg, sql, err, sizeof(err)) != 0)
        goto fail;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        sb_fmt(sql, sizeof(sql),
               "CREATE TABLE %s.%s (LIKE public.%s INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
               "INCLUDING INDEXES INCLUDING GENERATED)",
               schema, tables[i], tables[i]);
        if (sb_pg_exec(pg, sql, err, sizeof(err)) != 0)
            goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "sbctl replay: %s\n", err);
    return -1;
}

/* A connection whose tables resolve in schema first, then public (functions, reference
 * data). The setting is part of the connection string, so it survives reconnects. */
static struct sb_pg *schema_pg(const struct sbctl *ctl, const char *schema)
{
    char dsn[2048], err[512];
    struct sb_pg *pg;

    if (strncmp(ctl->dsn, "postgres", 8) == 0)
        sb_fmt(dsn, sizeof(dsn), "%s%soptions=-csearch_path%%3D%s,public", ctl->dsn,
               strchr(ctl->dsn, '?') ? "&" : "?", schema);
    else
        sb_fmt(dsn, sizeof(dsn), "%s options='-csearch_path=%s,public'", ctl->dsn, schema);
    pg = sb_pg_new(dsn, err, sizeof(err));
    if (pg == NULL)
        fprintf(stderr, "sbctl replay: cannot connect to PostgreSQL: %s\n", err);
    return pg;
}

static rd_kafka_t *reader(const struct sbctl *ctl)
{
    static const char *const props[][2] = {
        {"client.id", "sbctl-replay"},   {"group.id", "sbctl-replay"},
        {"enable.auto.commit", "false"}, {"enable.partition.eof", "true"},
        {"fetch.wait.max.ms", "100"},    {"log_level", "3"},
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
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk != NULL)
        return rk;
fail:
    fprintf(stderr, "sbctl replay: %s\n", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Every partition of the topics with its start (offset) and its end now (stored in the
 * partition's opaque as an integer). Returns the partitions that hold something to read,
 * or NULL after one line on stderr. */
static rd_kafka_topic_partition_list_t *ranges(rd_kafka_t *rk, const struct sbctl *ctl,
                                               const char *const *topics, size_t ntopics,
                                               int64_t since_ms, long long *total)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(96), *wanted;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, REPLAY_TIMEOUT_MS);

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl replay: Kafka brokers %s unreachable: %s\n", ctl->brokers,
                rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(all);
        return NULL;
    }
    for (int t = 0; t < md->topic_cnt; t++) {
        for (size_t i = 0; i < ntopics; i++) {
            if (strcmp(md->topics[t].topic, topics[i]) != 0)
                continue;
            for (int p = 0; p < md->topics[t].partition_cnt; p++)
                rd_kafka_topic_partition_list_add(all, topics[i], md->topics[t].partitions[p].id)
                    ->offset = since_ms > 0 ? since_ms : -2;
        }
    }
    rd_kafka_metadata_destroy(md);
    e = rd_kafka_offsets_for_times(rk, all, REPLAY_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "sbctl replay: cannot look the offsets up: %s\n", rd_kafka_err2str(e));
        rd_kafka_topic_partition_list_destroy(all);
        return NULL;
    }
    wanted = rd_kafka_topic_partition_list_new(all->cnt);
    *total = 0;
    for (int i = 0; i < all->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &all->elems[i];
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi,
                                             REPLAY_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "sbctl replay: %s [%d]: %s\n", tp->topic, (int)tp->partition,
                    rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(all);
            rd_kafka_topic_partition_list_destroy(wanted);
            return NULL;
        }
        if (tp->offset < 0 || tp->offset < lo) /* nothing after the time / compacted away */
            tp->offset = tp->offset < 0 ? hi : lo;
        if (tp->offset < hi) {
            rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_add(wanted, tp->topic, tp->partition);
            t->offset = tp->offset;
            t->opaque = (void *)(intptr_t)hi;
            *total += hi - tp->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(all);
    return wanted;
}

static int project(struct sb_pg *pg, struct sb_strbuf *batch, long long *fresh)
{
    char err[512];
    int e = 0;
    PGresult *res;
    const char *params[1];

    sb_strbuf_append(batch, "]", 1);
    params[0] = batch->p;
    res = sb_pg_query(pg, "SELECT sb_project($1::jsonb)", 1, params, &e, err, sizeof(err));
    sb_strbuf_reset(batch);
    if (res == NULL) {
        fprintf(stderr, "sbctl replay: projection failed: %s\n", err);
        return -1;
    }
    *fresh += atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Reads every range to its end, projecting batch by batch. */
static int replay(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *wanted, struct sb_pg *pg,
                  long long *read, long long *fresh, long long *skipped)
{
    struct sb_strbuf batch = {0};
    size_t n = 0;
    int left = wanted->cnt, rc = 0;
    int64_t idle_since = sb_mono_ms();

    rd_kafka_assign(rk, wanted);
    while (left > 0 && rc == 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            if (n > 0) {
                rc = project(pg, &batch, fresh);
                n = 0;
            }
            if (sb_mono_ms() - idle_since > REPLAY_IDLE_MS) {
                fprintf(stderr, "sbctl replay: no message for %d s; %d partitions unfinished\n",
                        REPLAY_IDLE_MS / 1000, left);
                rc = -1;
            }
            continue;
        }
        idle_since = sb_mono_ms();
        rd_kafka_topic_partition_t *tp =
            m->rkt ? rd_kafka_topic_partition_list_find(wanted, rd_kafka_topic_name(m->rkt),
                                                        m->partition)
                   : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* At the end: done even if the last offsets held no message to read. */
            if (tp != NULL && tp->opaque != NULL && m->offset >= (int64_t)(intptr_t)tp->opaque) {
                tp->opaque = NULL;
                left--;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sb_log_kv(SB_LOG_WARN, "kafka", "detail", rd_kafka_message_errstr(m), NULL);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (tp != NULL && tp->opaque != NULL && m->offset < (int64_t)(intptr_t)tp->opaque) {
            struct sb_event ev;
            char why[256];
            (*read)++;
            /* What the live stage could not decode went to the DLQ topic, which is read too. */
            if (sb_event_decode(m->payload, m->len, &ev, why, sizeof(why)) == 0) {
                if (sb_projection_append(&batch, n, rd_kafka_topic_name(m->rkt), m->partition,
                                         m->offset, &ev, m->payload, m->len) == 0)
                    n++;
                sb_event_clear(&ev);
            } else {
                (*skipped)++;
            }
            if (m->offset + 1 >= (int64_t)(intptr_t)tp->opaque) {
                tp->opaque = NULL; /* this partition is done */
                left--;
            }
        }
        rd_kafka_message_destroy(m);
        if (n >= REPLAY_BATCH || (left == 0 && n > 0)) {
            rc = project(pg, &batch, fresh);
            n = 0;
        }
    }
    free(batch.p);
    return rc;
}

static void print_counts(struct sb_pg *pg, const char *schema)
{
    char sql[256], err[256];
    int e = 0;

    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        PGresult *res;
        sb_fmt(sql, sizeof(sql), "SELECT count(*) FROM %s.%s", schema, tables[i]);
        res = sb_pg_query(pg, sql, 0, NULL, &e, err, sizeof(err));
        if (res != NULL) {
            printf("%s.%s %s\n", schema, tables[i], PQgetvalue(res, 0, 0));
            PQclear(res);
        }
    }
}

int sbctl_replay(struct sbctl *ctl, int argc, char **argv)
{
    const char *schema = "replay", *since = NULL, *topics[REPLAY_MAX_TOPICS];
    size_t ntopics = 0;
    int64_t since_ms = 0;
    long long total = 0, read = 0, fresh = 0, skipped = 0;
    struct sb_pg *admin = NULL, *pg = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *wanted = NULL;
    int rc = SBCTL_EXIT_FAIL;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--schema") == 0 && i + 1 < argc)
            schema = argv[++i];
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since = argv[++i];
        else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc && ntopics < REPLAY_MAX_TOPICS)
            topics[ntopics++] = argv[++i];
        else {
            fprintf(stderr, "sbctl replay: unexpected argument %s\n", argv[i]);
            usage(stderr);
            return SBCTL_EXIT_USAGE;
        }
    }
    if (!valid_schema(schema)) {
        fprintf(stderr,
                "sbctl replay: --schema %s: lower-case letters, digits and _ (not "
                "public, bi or pg_*)\n",
                schema);
        return SBCTL_EXIT_USAGE;
    }
    if (since != NULL && (sb_time_parse(since, &since_ms) != 0 || since_ms <= 0)) {
        fprintf(stderr, "sbctl replay: --since %s: an RFC 3339 time expected\n", since);
        return SBCTL_EXIT_USAGE;
    }
    if ((admin = sbctl_pg(ctl)) == NULL || fresh_schema(admin, schema) != 0 ||
        (pg = schema_pg(ctl, schema)) == NULL || (rk = reader(ctl)) == NULL ||
        (wanted = ranges(rk, ctl, ntopics ? topics : default_topics,
                         ntopics ? ntopics : sizeof(default_topics) / sizeof(default_topics[0]),
                         since_ms, &total)) == NULL)
        goto done;
    if (wanted->cnt > 0 && replay(rk, wanted, pg, &read, &fresh, &skipped) != 0)
        goto done;
    printf("replayed %lld of %lld messages of %d partitions into schema %s: %lld events "
           "projected, %lld duplicates, %lld undecodable (in the DLQ)\n",
           read, total, wanted->cnt, schema, fresh, read - fresh - skipped, skipped);
    print_counts(admin, schema);
    rc = SBCTL_EXIT_OK;
done:
    if (wanted != NULL)
        rd_kafka_topic_partition_list_destroy(wanted);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    sb_pg_destroy(pg);
    sb_pg_destroy(admin);
    return rc;
}
