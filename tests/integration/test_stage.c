/* Integration test of the shared consume loop (sb/stage.h) on the local broker:
 * valid events reach the handler once each (batched, flushed, then offsets stored),
 * a transient failure is retried rather than skipped, undecodable messages go to the
 * DLQ, and a second member of the group after a clean stop gets nothing again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kafkautil.h"
#include "sb/event.h"
#include "sb/metrics.h"
#include "sb/stage.h"
#include "sb/util.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define N_VALID 120

struct ctx {
    int seen[N_VALID];
    int buffered;
    int flushes;
    int retried_once;
};

static enum sb_stage_result handle(void *arg, const struct sb_event *ev,
                                   const rd_kafka_message_t *rkm, char *reason, size_t rsz)
{
    struct ctx *c = arg;
    json_t *seq = json_object_get(ev->payload, "seq");
    (void)rkm;
    if (!json_is_integer(seq)) {
        snprintf(reason, rsz, "payload.seq missing");
        return SB_STAGE_INVALID;
    }
    if (json_integer_value(seq) == 17 && !c->retried_once) {
        c->retried_once = 1;
        return SB_STAGE_RETRY;
    }
    c->seen[json_integer_value(seq)]++;
    c->buffered++;
    return SB_STAGE_PENDING;
}

static int flush(void *arg)
{
    struct ctx *c = arg;
    c->flushes++;
    c->buffered = 0;
    return 0;
}

static void test_stage(void **state)
{
    const char *brokers = tu_env("SB_KAFKA_BROKERS", "127.0.0.1:19092");
    char topic[128], group[160], err[256];
    struct sb_kafka_opts o;
    struct sb_producer *p;
    struct sb_metrics *m = sb_metrics_new();
    struct ctx c;
    const char *topics[1];
    struct sb_stage_opts so;
    struct sb_stage *st;
    char *text;
    (void)state;

    memset(&c, 0, sizeof(c));
    ku_unique_topic("itest.stage", topic, sizeof(topic));
    snprintf(group, sizeof(group), "g.%s", topic);
    assert_int_equal(ku_create_topic(brokers, topic, 3), 0);
    assert_int_equal(ku_create_topic(brokers, SB_TOPIC_DLQ, 6), 0);
    ku_opts(&o, "itest-stage");
    p = sb_producer_new(&o, err, sizeof(err));
    assert_non_null(p);
    for (int i = 0; i < N_VALID; i++) {
        struct sb_event ev;
        char key[16], *buf;
        size_t len;
        snprintf(key, sizeof(key), "T-%d", i % 5);
        sb_event_init(&ev, "ticket.note_added", "itest", key, NULL, json_pack("{s:i}", "seq", i));
        buf = sb_event_encode(&ev, &len);
        assert_int_equal(sb_producer_send(p, topic, key, strlen(key), buf, len, NULL, NULL), 0);
        sb_event_clear(&ev);
        free(buf);
    }
    assert_int_equal(sb_producer_send(p, topic, "x", 1, "garbage", 7, NULL, NULL), 0);
    assert_int_equal(sb_producer_send(p, topic, "y", 1, "{\"type\":\"a.b\"}", 14, NULL, NULL), 0);
    assert_int_equal(sb_producer_wait_all(p, 30000), 0);

    topics[0] = topic;
    memset(&so, 0, sizeof(so));
    so.name = "sb-itest";
    so.group = group;
    so.topics = topics;
    so.ntopics = 1;
    so.handle = handle;
    so.flush = flush;
    so.ctx = &c;
    so.batch_max = 25;
    so.retry_max_ms = 100;
    st = sb_stage_new(&o, &so, p, m, err, sizeof(err));
    assert_non_null(st);
    assert_int_equal(sb_stage_run(st, N_VALID + 2, 60000), 0);
    assert_int_equal(sb_stage_handled(st), N_VALID + 2);
    sb_stage_destroy(st);
    for (int i = 0; i < N_VALID; i++) {
        if (c.seen[i] != 1)
            fail_msg("seq %d handled %d times", i, c.seen[i]);
    }
    assert_true(c.retried_once);
    assert_true(c.flushes >= N_VALID / 25);
    text = sb_metrics_render(m, NULL);
    assert_non_null(strstr(text, "sb_stage_dlq_total{stage=\"sb-itest\"} 2\n"));
    assert_non_null(strstr(text, "sb_stage_retries_total{stage=\"sb-itest\"} 1\n"));
    free(text);

    /* Everything was stored and committed: the group has nothing left. */
    memset(&c, 0, sizeof(c));
    st = sb_stage_new(&o, &so, p, NULL, err, sizeof(err));
    assert_non_null(st);
    {
        int64_t t0 = sb_mono_ms();
        while (sb_stage_assigned(st) == 0 && sb_mono_ms() - t0 < 30000)
            assert_int_equal(sb_stage_run(st, 1, 200), 0);
    }
    assert_true(sb_stage_assigned(st) > 0);
    assert_int_equal(sb_stage_run(st, 1, 3000), 0);
    assert_int_equal(sb_stage_handled(st), 0);
    sb_stage_destroy(st);
    sb_producer_destroy(p, 5000);
    sb_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
