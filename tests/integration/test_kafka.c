/* Integration tests of the Kafka clients against the local broker:
 *  - produce → consume round trip with acknowledged delivery;
 *  - at-least-once: a consumer killed (SIGKILL) after storing the offsets of the
 *    first K messages but before storing the rest: a new member of the group gets
 *    exactly the unstored ones again, and none of the stored ones;
 *  - the DLQ helper: entry with reason and origin, key kept, no clear key in payload;
 *  - an unreachable broker and a bad property fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kafkautil.h"
#include "sb/err.h"
#include "sb/event.h"
#include "sb/kafka.h"
#include "sb/util.h"
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_MSGS 200
#define N_STORED 80
#define N_SEEN_BY_VICTIM 150

static const char *const consumer_keys[] = {"session.timeout.ms", "fetch.wait.max.ms"};
static const char *const consumer_vals[] = {"6000", "50"};

static void consumer_opts(struct sb_kafka_opts *o)
{
    ku_opts(o, "itest-consumer");
    o->keys = consumer_keys;
    o->values = consumer_vals;
    o->nprops = 2;
}

static void produce_events(const char *topic, int n)
{
    char err[256];
    struct sb_kafka_opts o;
    struct sb_producer *p;

    ku_opts(&o, "itest-producer");
    p = sb_producer_new(&o, err, sizeof(err));
    assert_non_null(p);
    for (int i = 0; i < n; i++) {
        struct sb_event ev;
        char key[32], *buf;
        size_t len;
        snprintf(key, sizeof(key), "T-%d", i % 7);
        assert_int_equal(sb_event_init(&ev, "ticket.note_added", "itest", key, NULL,
                                       json_pack("{s:i}", "seq", i)),
                         0);
        buf = sb_event_encode(&ev, &len);
        assert_int_equal(sb_producer_send(p, topic, key, strlen(key), buf, len, NULL, NULL), 0);
        free(buf);
        sb_event_clear(&ev);
    }
    assert_int_equal(sb_producer_wait_all(p, 30000), 0);
    assert_int_equal(sb_producer_destroy(p, 5000), 0);
}

/* The victim: run as a separate process (exec of this binary), consumes, stores the
 * first N_STORED offsets, commits, reads on without storing, then dies by SIGKILL. */
static int victim_main(const char *topic, const char *group)
{
    char err[256];
    struct sb_kafka_opts o;
    struct sb_consumer *c;
    const char *topics[] = {topic};
    int seen = 0;
    int64_t deadline = sb_mono_ms();

    consumer_opts(&o);
    c = sb_consumer_new(&o, group, topics, 1, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "victim: %s\n", err);
        return 3;
    }
    while (seen < N_SEEN_BY_VICTIM && sb_mono_ms() - deadline < 60000) {
        rd_kafka_message_t *rkm = sb_consumer_poll(c, 100);
        if (rkm == NULL)
            continue;
        if (rkm->offset < N_STORED && sb_consumer_store(c, rkm) != 0) {
            fprintf(stderr, "victim: store failed\n");
            return 4;
        }
        seen++;
        if (seen == N_STORED && sb_consumer_commit(c) != 0) {
            fprintf(stderr, "victim: commit failed\n");
            return 5;
        }
        rd_kafka_message_destroy(rkm);
    }
    /* Effects of messages N_STORED..seen-1 were "in progress": crash now. */
    kill(getpid(), SIGKILL);
    return 6;
}

static void test_roundtrip_and_redelivery(void **state)
{
    char topic[128], group[160], err[256];
    struct sb_kafka_opts o;
    struct sb_consumer *c;
    const char *topics[1];
    char *self = *state;
    int status, got = 0, first = -1;
    int seen[N_MSGS] = {0};
    pid_t pid;
    int64_t t0;

    ku_unique_topic("itest.redelivery", topic, sizeof(topic));
    snprintf(group, sizeof(group), "g.%s", topic);
    assert_int_equal(ku_create_topic(tu_env("SB_KAFKA_BROKERS", "127.0.0.1:19092"), topic, 1), 0);
    produce_events(topic, N_MSGS);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(self, self, "--victim", topic, group, (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        fail_msg("victim did not die by SIGKILL (status %d)", status);

    topics[0] = topic;
    consumer_opts(&o);
    c = sb_consumer_new(&o, group, topics, 1, err, sizeof(err));
    assert_non_null(c);
    t0 = sb_mono_ms();
    while (got < N_MSGS - N_STORED && sb_mono_ms() - t0 < 60000) {
        rd_kafka_message_t *rkm = sb_consumer_poll(c, 100);
        struct sb_event ev;
        if (rkm == NULL)
            continue;
        if (first < 0)
            first = (int)rkm->offset;
        assert_true(rkm->offset >= 0 && rkm->offset < N_MSGS);
        seen[rkm->offset]++;
        assert_int_equal(sb_event_decode(rkm->payload, rkm->len, &ev, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(ev.payload, "seq")), rkm->offset);
        sb_event_clear(&ev);
        assert_int_equal(sb_consumer_store(c, rkm), 0);
        rd_kafka_message_destroy(rkm);
        got++;
    }
    assert_int_equal(first, N_STORED);
    assert_int_equal(got, N_MSGS - N_STORED);
    for (int i = 0; i < N_MSGS; i++) {
        if (seen[i] != (i >= N_STORED ? 1 : 0))
            fail_msg("offset %d delivered %d times to the successor", i, seen[i]);
    }
    assert_int_equal(sb_consumer_commit(c), 0);
    sb_consumer_destroy(c);
}

static void test_dlq_entry(void **state)
{
    const char *brokers = tu_env("SB_KAFKA_BROKERS", "127.0.0.1:19092");
    char topic[128], err[512];
    struct sb_kafka_opts o;
    struct sb_producer *p;
    rd_kafka_message_t fake;
    rd_kafka_topic_t *rkt;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    const struct rd_kafka_metadata *md;
    int found = 0;
    int64_t t0;
    (void)state;

    ku_unique_topic("itest.origin", topic, sizeof(topic));
    assert_int_equal(ku_create_topic(brokers, topic, 1), 0);
    assert_int_equal(ku_create_topic(brokers, SB_TOPIC_DLQ, 6), 0);

    /* A reader positioned at the end of every DLQ partition. */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", topic, err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    {
        rd_kafka_topic_t *dlq = rd_kafka_topic_new(rk, SB_TOPIC_DLQ, NULL);
        assert_int_equal(rd_kafka_metadata(rk, 0, dlq, &md, 10000), 0);
        rd_kafka_topic_destroy(dlq);
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, SB_TOPIC_DLQ, i)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    assert_int_equal(rd_kafka_assign(rk, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    sb_sleep_ms(1000); /* let the END offsets resolve before producing */

    ku_opts(&o, "itest-dlq");
    p = sb_producer_new(&o, err, sizeof(err));
    assert_non_null(p);
    rkt = rd_kafka_topic_new(sb_producer_rk(p), topic, NULL);
    memset(&fake, 0, sizeof(fake));
    fake.rkt = rkt;
    fake.partition = 0;
    fake.offset = 42;
    fake.key = "13812345678";
    fake.key_len = 11;
    fake.payload = "{not json \xff";
    fake.len = 12;
    assert_int_equal(
        sb_dlq_send(p, "sb-itest/0.1.0", &fake, SB_DLQ_NOT_JSON, "invalid JSON at byte 1", 10000),
        0);

    t0 = sb_mono_ms();
    while (!found && sb_mono_ms() - t0 < 20000) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        struct sb_event ev;
        json_t *origin;
        if (rkm == NULL)
            continue;
        if (rkm->err == 0 && sb_event_decode(rkm->payload, rkm->len, &ev, err, sizeof(err)) == 0) {
            origin = json_object_get(ev.payload, "origin");
            if (strcmp(json_string_value(json_object_get(origin, "topic")), topic) == 0) {
                found = 1;
                assert_string_equal(ev.type, "dlq.entry");
                assert_int_equal(json_integer_value(json_object_get(origin, "offset")), 42);
                assert_string_equal(json_string_value(json_object_get(ev.payload, "reason")),
                                    "not_json");
                assert_string_equal(json_string_value(json_object_get(ev.payload, "detail")),
                                    "invalid JSON at byte 1");
                assert_string_equal(json_string_value(json_object_get(ev.payload, "stage")),
                                    "sb-itest");
                {
                    /* The entry itself satisfies proto/events/dlq.entry.schema.json. */
                    char *text = sb_event_encode(&ev, NULL);
                    char cmd[512];
                    FILE *f;
                    snprintf(cmd, sizeof(cmd),
                             "/usr/bin/python3 %s/tests/contract/validate_event.py %s/proto/events "
                             "- >/dev/null",
                             tu_env("SB_REPO_ROOT", "."), tu_env("SB_REPO_ROOT", "."));
                    f = popen(cmd, "w");
                    assert_non_null(f);
                    fprintf(f, "%s\n", text);
                    assert_int_equal(pclose(f), 0);
                    free(text);
                }
                assert_non_null(json_object_get(ev.payload, "raw_base64"));
                assert_int_equal(rkm->key_len, 11);
                assert_null(strstr(rkm->payload, "13812345678"));
            }
            sb_event_clear(&ev);
        }
        rd_kafka_message_destroy(rkm);
    }
    assert_true(found);
    rd_kafka_topic_destroy(rkt);
    sb_producer_destroy(p, 5000);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void test_unreachable_and_bad_property(void **state)
{
    static const char *const bad_keys[] = {"linger.mss"};
    static const char *const bad_vals[] = {"5"};
    struct sb_kafka_opts o = {"127.0.0.1:1", "itest", NULL, NULL, 0};
    char err[256] = "";
    struct sb_producer *p;
    (void)state;

    p = sb_producer_new(&o, err, sizeof(err));
    assert_non_null(p);
    assert_int_not_equal(sb_producer_ping(p, 500), 0);
    assert_int_equal(sb_producer_send_wait(p, "t", NULL, 0, "x", 1, 1000), SB_E_TIMEOUT);
    sb_producer_destroy(p, 100);

    o.keys = bad_keys;
    o.values = bad_vals;
    o.nprops = 1;
    assert_null(sb_producer_new(&o, err, sizeof(err)));
    if (strstr(err, "linger.mss") == NULL)
        fail_msg("error \"%s\" should name the property", err);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_roundtrip_and_redelivery, argv[0]),
        cmocka_unit_test(test_dlq_entry),
        cmocka_unit_test(test_unreachable_and_bad_property),
    };
    if (argc == 4 && strcmp(argv[1], "--victim") == 0)
        return victim_main(argv[2], argv[3]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
