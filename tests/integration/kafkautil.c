/* Kafka helpers for integration tests (see kafkautil.h). */
#include "kafkautil.h"

#include "sb/event.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

void ku_opts(struct sb_kafka_opts *o, const char *client_id)
{
    static const char *const keys[] = {"fetch.wait.max.ms", "session.timeout.ms"};
    static const char *const vals[] = {"50", "6000"};
    memset(o, 0, sizeof(*o));
    o->brokers = tu_env("SB_KAFKA_BROKERS", "127.0.0.1:19092");
    o->client_id = client_id;
    o->keys = keys;
    o->values = vals;
    o->nprops = 0; /* consumer-only properties are added by tests that need them */
}

void ku_unique_topic(const char *prefix, char *out, size_t outsz)
{
    char id[SB_UUID_STRLEN + 1];
    sb_uuid7_new(id);
    snprintf(out, outsz, "%s.%s", prefix, id);
}

int ku_create_topic(const char *brokers, const char *topic, int partitions)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_topic_result_t **res;
    size_t n;
    int rc = -1;

    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "admin client: %s\n", errstr);
        return -1;
    }
    nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL) {
        fprintf(stderr, "create topic %s: timed out\n", topic);
        goto out;
    }
    res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "create topic %s: %s\n", topic, rd_kafka_event_error_string(ev));
        goto out;
    }
    if (n == 1 && rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_topic_result_error(res[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        fprintf(stderr, "create topic %s: %s\n", topic, rd_kafka_topic_result_error_string(res[0]));
        goto out;
    }
    rc = 0;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc;
}
