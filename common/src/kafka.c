/* Kafka producer and at-least-once consumer on librdkafka 2.0.2, following the
 * rules in RELIABILITY.md: idempotent producer with acks=all whose fatal errors
 * stop the service, consumer offsets stored only after the effect is durable,
 * explicit rebalance handling with a synchronous commit on revoke. */
#include "sb/kafka.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/util.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sb_producer {
    rd_kafka_t *rk;
    pthread_t poller;
    int poller_started;
    atomic_int stop;
    atomic_int fatal;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long inflight; /* under lock */
    long failed;   /* under lock: failures since the last sb_producer_wait_all */
};

struct delivery {
    struct sb_producer *p;
    sb_delivery_fn cb;
    void *opaque;
};

struct waiter {
    struct sb_producer *p;
    int done;
    int abandoned; /* the caller timed out: the delivery callback frees the waiter */
    rd_kafka_resp_err_t err;
};

struct sb_consumer {
    rd_kafka_t *rk;
    atomic_int assigned;
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
    enum sb_log_level l = level <= 3   ? SB_LOG_ERROR
                          : level == 4 ? SB_LOG_WARN
                          : level <= 6 ? SB_LOG_INFO
                                       : SB_LOG_DEBUG;
    sb_log_kv(l, "librdkafka", "facility", fac, "detail", buf, "client", rd_kafka_name(rk), NULL);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct sb_producer *p = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        atomic_store(&p->fatal, 1);
        sb_log_kv(SB_LOG_ERROR, "kafka producer fatal error", "detail", fatal, NULL);
        return;
    }
    sb_log_kv(SB_LOG_DEBUG, "kafka producer error", "error", rd_kafka_err2name(err), "detail",
              reason, NULL);
}

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    sb_log_kv(SB_LOG_DEBUG, "kafka consumer error", "error", rd_kafka_err2name(err), "detail",
              reason, NULL);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct delivery *d = rkm->_private;
    struct sb_producer *p = opaque;

    (void)rk;
    if (d != NULL && d->cb != NULL)
        d->cb(d->opaque, rkm->err);
    pthread_mutex_lock(&p->lock);
    p->inflight--;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        p->failed++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    free(d);
}

static void *poller_main(void *arg)
{
    struct sb_producer *p = arg;
    while (!atomic_load(&p->stop))
        rd_kafka_poll(p->rk, 100);
    return NULL;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
                    size_t errstr_size)
{
    char why[256];
    if (rd_kafka_conf_set(conf, k, v, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        sb_fmt(errstr, errstr_size, "kafka property \"%s\": %s", k, why);
        return SB_E_INVAL;
    }
    return 0;
}

/* Builds a configuration: our tunable defaults, then the pass-through properties,
 * then the enforced settings that the delivery rules depend on (these always win). */
static rd_kafka_conf_t *base_conf(const struct sb_kafka_opts *opts, const char *const *fixed,
                                  size_t nfixed, const char *const *enforced, size_t nenforced,
                                  char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (opts->brokers == NULL || opts->brokers[0] == '\0') {
        sb_fmt(errstr, errstr_size, "kafka brokers are not set");
        goto fail;
    }
    if (conf_set(conf, "bootstrap.servers", opts->brokers, errstr, errstr_size) != 0 ||
        conf_set(conf, "client.id", opts->client_id ? opts->client_id : "switchboard", errstr,
                 errstr_size) != 0)
        goto fail;
    for (size_t i = 0; i + 1 < nfixed; i += 2) {
        if (conf_set(conf, fixed[i], fixed[i + 1], errstr, errstr_size) != 0)
            goto fail;
    }
    for (size_t i = 0; i < opts->nprops; i++) {
        if (conf_set(conf, opts->keys[i], opts->values[i], errstr, errstr_size) != 0)
            goto fail;
    }
    for (size_t i = 0; i + 1 < nenforced; i += 2) {
        if (conf_set(conf, enforced[i], enforced[i + 1], errstr, errstr_size) != 0)
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

struct sb_producer *sb_producer_new(const struct sb_kafka_opts *opts, char *errstr,
                                    size_t errstr_size)
{
    static const char *const fixed[] = {
        "linger.ms", "5",
        /* Fail a message after 30 s rather than librdkafka's 5 min default, so that
         * callers waiting for acknowledgement learn about an outage in time. */
        "message.timeout.ms", "30000", "compression.type", "lz4"};
    static const char *const enforced[] = {"enable.idempotence", "true", "acks", "all"};
    struct sb_producer *p = sb_calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = NULL;
    char why[512];

    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    conf = base_conf(opts, fixed, sizeof(fixed) / sizeof(fixed[0]), enforced,
                     sizeof(enforced) / sizeof(enforced[0]), errstr, errstr_size);
    if (conf == NULL)
        goto fail;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (p->rk == NULL) {
        sb_fmt(errstr, errstr_size, "kafka producer: %s", why);
        goto fail;
    }
    conf = NULL; /* now owned by rk */
    if (pthread_create(&p->poller, NULL, poller_main, p) != 0) {
        sb_fmt(errstr, errstr_size, "kafka producer: cannot start poll thread");
        goto fail;
    }
    p->poller_started = 1;
    return p;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    sb_producer_destroy(p, 0);
    return NULL;
}

int sb_producer_destroy(struct sb_producer *p, int timeout_ms)
{
    int left = 0;

    if (p == NULL)
        return 0;
    if (p->rk != NULL) {
        if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
            left = rd_kafka_outq_len(p->rk);
    }
    atomic_store(&p->stop, 1);
    if (p->poller_started)
        pthread_join(p->poller, NULL);
    if (p->rk != NULL) {
        if (left > 0)
            sb_log_kv(SB_LOG_ERROR, "kafka producer closed with undelivered messages", NULL);
        /* Purge so that rd_kafka_destroy does not block; undelivered messages get
         * their delivery report (failed) served by this last poll. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
        rd_kafka_destroy(p->rk);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return left;
}

int sb_producer_send(struct sb_producer *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, sb_delivery_fn cb, void *opaque)
{
    struct delivery *d;
    rd_kafka_resp_err_t err;
    int64_t deadline = sb_mono_ms() + 100;

    if (atomic_load(&p->fatal))
        return SB_E_FATAL;
    if (topic == NULL)
        return SB_E_INVAL;
    d = sb_malloc(sizeof(*d));
    d->p = p;
    d->cb = cb;
    d->opaque = opaque;
    pthread_mutex_lock(&p->lock);
    p->inflight++;
    pthread_mutex_unlock(&p->lock);
    for (;;) {
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key ? keylen : 0),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || sb_mono_ms() >= deadline)
            break;
        sb_sleep_ms(5); /* the poll thread drains delivery reports meanwhile */
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    pthread_mutex_lock(&p->lock);
    p->inflight--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    free(d);
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        return SB_E_FATAL;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return SB_E_UNAVAIL;
    sb_log_kv(SB_LOG_WARN, "kafka produce refused", "topic", topic, "error", rd_kafka_err2name(err),
              NULL);
    return SB_E_INVAL;
}

static void waiter_cb(void *opaque, rd_kafka_resp_err_t err)
{
    struct waiter *w = opaque;
    struct sb_producer *p = w->p;
    int abandoned;

    pthread_mutex_lock(&p->lock);
    w->err = err;
    w->done = 1;
    abandoned = w->abandoned;
    pthread_mutex_unlock(&p->lock);
    if (abandoned)
        free(w);
}

static void deadline_ts(int timeout_ms, struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int sb_producer_send_wait(struct sb_producer *p, const char *topic, const void *key, size_t keylen,
                          const void *value, size_t len, int timeout_ms)
{
    struct waiter *w = sb_calloc(1, sizeof(*w));
    struct timespec ts;
    int rc;

    w->p = p;
    rc = sb_producer_send(p, topic, key, keylen, value, len, waiter_cb, w);
    if (rc != 0) {
        free(w);
        return rc;
    }
    deadline_ts(timeout_ms, &ts);
    pthread_mutex_lock(&p->lock);
    while (!w->done) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    if (!w->done) {
        /* The message may still be delivered later: its callback frees the waiter. */
        w->abandoned = 1;
        pthread_mutex_unlock(&p->lock);
        return atomic_load(&p->fatal) ? SB_E_FATAL : SB_E_TIMEOUT;
    }
    rc = w->err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0
         : w->err == RD_KAFKA_RESP_ERR__FATAL ? SB_E_FATAL
                                              : SB_E_UNAVAIL;
    pthread_mutex_unlock(&p->lock);
    free(w);
    return rc;
}

int sb_producer_wait_all(struct sb_producer *p, int timeout_ms)
{
    struct timespec ts;
    long bad;

    deadline_ts(timeout_ms, &ts);
    pthread_mutex_lock(&p->lock);
    while (p->inflight > 0) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    bad = p->failed + p->inflight;
    p->failed = 0;
    pthread_mutex_unlock(&p->lock);
    return bad > 0 ? (int)-bad : 0;
}

int sb_producer_fatal(const struct sb_producer *p)
{
    return atomic_load(&((struct sb_producer *)p)->fatal);
}

static int metadata_ping(rd_kafka_t *rk, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);

    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : SB_E_UNAVAIL;
}

int sb_producer_ping(struct sb_producer *p, int timeout_ms)
{
    return metadata_ping(p->rk, timeout_ms);
}

rd_kafka_t *sb_producer_rk(struct sb_producer *p)
{
    return p->rk;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct sb_consumer *c = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    char n[16];

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);
            atomic_fetch_add(&c->assigned, parts->cnt);
        } else {
            rd_kafka_assign(rk, parts);
            atomic_store(&c->assigned, parts->cnt);
        }
        sb_fmt(n, sizeof(n), "%d", parts->cnt);
        sb_log_kv(SB_LOG_INFO, "partitions assigned", "count", n, NULL);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Commit what was stored (effects already durable) before giving the
         * partitions away, so the next owner does not repeat them. */
        if (rd_kafka_assignment_lost(rk) == 0)
            rd_kafka_commit(rk, parts, 0);
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);
            atomic_fetch_sub(&c->assigned, parts->cnt);
        } else {
            rd_kafka_assign(rk, NULL);
            atomic_store(&c->assigned, 0);
        }
        sb_fmt(n, sizeof(n), "%d", parts->cnt);
        sb_log_kv(SB_LOG_INFO, "partitions revoked", "count", n, NULL);
    } else {
        sb_log_kv(SB_LOG_ERROR, "rebalance failed", "error", rd_kafka_err2name(err), NULL);
        rd_kafka_assign(rk, NULL);
        atomic_store(&c->assigned, 0);
    }
    if (error != NULL) {
        sb_log_kv(SB_LOG_ERROR, "incremental rebalance failed", "detail",
                  rd_kafka_error_string(error), NULL);
        rd_kafka_error_destroy(error);
    }
}

struct sb_consumer *sb_consumer_new(const struct sb_kafka_opts *opts, const char *group,
                                    const char *const *topics, size_t ntopics, char *errstr,
                                    size_t errstr_size)
{
    static const char *const fixed[] = {"auto.commit.interval.ms", "1000", "auto.offset.reset",
                                        "earliest"};
    /* RELIABILITY.md: never store an offset at poll time; commit what was stored. */
    const char *enforced[] = {"group.id",           group,  "enable.auto.offset.store", "false",
                              "enable.auto.commit", "true", "enable.partition.eof",     "false"};
    struct sb_consumer *c = sb_calloc(1, sizeof(*c));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t err;
    char why[512];

    if (group == NULL || group[0] == '\0' || ntopics == 0) {
        sb_fmt(errstr, errstr_size, "kafka consumer: a group and at least one topic are needed");
        goto fail;
    }
    conf = base_conf(opts, fixed, sizeof(fixed) / sizeof(fixed[0]), enforced,
                     sizeof(enforced) / sizeof(enforced[0]), errstr, errstr_size);
    if (conf == NULL)
        goto fail;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (c->rk == NULL) {
        sb_fmt(errstr, errstr_size, "kafka consumer: %s", why);
        goto fail;
    }
    conf = NULL; /* now owned by rk */
    rd_kafka_poll_set_consumer(c->rk);
    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sb_fmt(errstr, errstr_size, "kafka subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    return c;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (c->rk != NULL)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

void sb_consumer_destroy(struct sb_consumer *c)
{
    if (c == NULL)
        return;
    rd_kafka_consumer_close(c->rk); /* revokes (committing stored offsets) and leaves */
    rd_kafka_destroy(c->rk);
    free(c);
}

rd_kafka_message_t *sb_consumer_poll(struct sb_consumer *c, int timeout_ms)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);

    if (rkm == NULL)
        return NULL;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            sb_log_kv(SB_LOG_WARN, "kafka consume error", "error", rd_kafka_err2name(rkm->err),
                      "topic", rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-", NULL);
        rd_kafka_message_destroy(rkm);
        return NULL;
    }
    return rkm;
}

int sb_consumer_store(struct sb_consumer *c, const rd_kafka_message_t *rkm)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(rkm->rkt), rkm->partition)->offset =
        rkm->offset + 1;
    err = rd_kafka_offsets_store(c->rk, l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    return err == RD_KAFKA_RESP_ERR__STATE ? SB_E_STATE : SB_E_IO;
}

int sb_consumer_commit(struct sb_consumer *c)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    /* _NO_OFFSET: nothing new was stored since the last commit. */
    return err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET ? 0 : SB_E_IO;
}

int sb_consumer_assigned(struct sb_consumer *c)
{
    return atomic_load(&c->assigned);
}

int sb_consumer_partitions(struct sb_consumer *c, const char *topic, int32_t *out, int max)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int n = 0;

    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return 0;
    for (int i = 0; i < parts->cnt && n < max; i++)
        if (strcmp(parts->elems[i].topic, topic) == 0)
            out[n++] = parts->elems[i].partition;
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

/* Base64 of len bytes (a new string). */
static char *base64(const void *data, size_t len)
{
    char *out = sb_malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int sb_dlq_send(struct sb_producer *p, const char *stage, const rd_kafka_message_t *rkm,
                const char *reason, const char *detail, int timeout_ms)
{
    struct sb_event ev;
    json_t *payload = json_object();
    json_t *origin = json_object();
    json_t *text;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    char stage_id[64];
    char *b64 = NULL, *buf = NULL;
    size_t len, keep = rkm->len <= SB_DLQ_RAW_MAX ? rkm->len : SB_DLQ_RAW_MAX;
    int rc;

    /* The stage name without its version ("sb-triage/0.1.0" → "sb-triage"). */
    sb_fmt(stage_id, sizeof(stage_id), "%.*s", (int)strcspn(stage, "/"), stage);
    json_object_set_new(origin, "topic", json_string(rd_kafka_topic_name(rkm->rkt)));
    json_object_set_new(origin, "partition", json_integer(rkm->partition));
    json_object_set_new(origin, "offset", json_integer(rkm->offset));
    json_object_set_new(payload, "stage", json_string(stage_id));
    json_object_set_new(payload, "reason", json_string(reason));
    text = json_stringn(detail && detail[0] ? detail : reason,
                        strnlen(detail && detail[0] ? detail : reason, 2000));
    json_object_set_new(payload, "detail", text ? text : json_string(reason));
    json_object_set_new(payload, "origin", origin);
    if (rkm->key != NULL) {
        /* The key may identify a person: keep only its hash. */
        SHA256(rkm->key, rkm->key_len, digest);
        sb_hex(digest, sizeof(digest), hex);
        json_object_set_new(payload, "key_sha256", json_string(hex));
    }
    text = json_stringn(rkm->payload, keep);
    if (text != NULL) {
        json_object_set_new(payload, "raw_text", text);
    } else {
        b64 = base64(rkm->payload, keep);
        json_object_set_new(payload, "raw_base64", json_string(b64));
    }
    json_object_set_new(payload, "raw_size", json_integer((json_int_t)rkm->len));
    json_object_set_new(payload, "raw_truncated", json_boolean(keep < rkm->len));
    if (sb_event_init(&ev, "dlq.entry", stage, NULL, NULL, payload) != 0) {
        sb_event_clear(&ev);
        free(b64);
        return SB_E_INVAL;
    }
    buf = sb_event_encode(&ev, &len);
    sb_event_clear(&ev);
    rc = buf ? sb_producer_send_wait(p, SB_TOPIC_DLQ, rkm->key, rkm->key_len, buf, len, timeout_ms)
             : SB_E_INVAL;
    free(buf);
    free(b64);
    return rc;
}
