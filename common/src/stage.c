/* The at-least-once consume loop shared by every stage (see sb/stage.h). */
#include "sb/stage.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/metrics.h"
#include "sb/service.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

/* Offsets whose effects are buffered until the next successful flush. */
struct pending {
    rd_kafka_message_t **msgs;
    size_t n, cap;
    int64_t first_ms;
};

struct sb_stage {
    struct sb_stage_opts opts;
    struct sb_consumer *consumer;
    struct sb_producer *producer;
    struct pending pending;
    long handled;
    struct sb_metric *m_consumed, *m_dlq, *m_retries, *m_batch_seconds, *m_assigned;
    int64_t assigned_next_ms;
};

struct sb_stage *sb_stage_new(const struct sb_kafka_opts *kopts, const struct sb_stage_opts *opts,
                              struct sb_producer *producer, struct sb_metrics *metrics,
                              char *errstr, size_t errstr_size)
{
    struct sb_stage *s = sb_calloc(1, sizeof(*s));
    char labels[128];

    s->opts = *opts;
    if (s->opts.batch_max <= 0)
        s->opts.batch_max = 500;
    if (s->opts.batch_ms <= 0)
        s->opts.batch_ms = 50;
    if (s->opts.poll_ms <= 0)
        s->opts.poll_ms = 100;
    if (s->opts.retry_max_ms <= 0)
        s->opts.retry_max_ms = 5000;
    s->producer = producer;
    s->consumer =
        sb_consumer_new(kopts, opts->group, opts->topics, opts->ntopics, errstr, errstr_size);
    if (s->consumer == NULL) {
        free(s);
        return NULL;
    }
    if (metrics != NULL) {
        sb_fmt(labels, sizeof(labels), "stage=%s", opts->name);
        s->m_consumed = sb_metrics_counter(metrics, "sb_stage_messages_total",
                                           "Messages handled by the stage", labels);
        s->m_dlq = sb_metrics_counter(metrics, "sb_stage_dlq_total",
                                      "Messages sent to the dead-letter topic", labels);
        s->m_retries = sb_metrics_counter(metrics, "sb_stage_retries_total",
                                          "Transient failures retried", labels);
        s->m_assigned = sb_metrics_gauge(metrics, "sb_stage_assigned_partitions",
                                         "Partitions assigned to this instance", labels);
        s->m_batch_seconds = sb_metrics_histogram(metrics, "sb_stage_flush_seconds",
                                                  "Time to make a batch durable", labels, NULL, 0);
    }
    return s;
}

static void count(struct sb_metric *m)
{
    if (m != NULL)
        sb_metric_inc(m);
}

/* Waits with exponential backoff; returns 0, or SB_E_STATE when a stop was asked. */
static int backoff(struct sb_stage *s, int *delay_ms)
{
    if (sb_stop_requested())
        return SB_E_STATE;
    count(s->m_retries);
    sb_sleep_ms(*delay_ms);
    *delay_ms = *delay_ms * 2 > s->opts.retry_max_ms ? s->opts.retry_max_ms : *delay_ms * 2;
    return sb_stop_requested() ? SB_E_STATE : 0;
}

static void store(struct sb_stage *s, const rd_kafka_message_t *rkm)
{
    int rc = sb_consumer_store(s->consumer, rkm);
    if (rc == SB_E_STATE)
        sb_log_kv(SB_LOG_INFO, "offset not stored: partition revoked, will be redelivered", NULL);
    else if (rc != 0)
        sb_log_kv(SB_LOG_WARN, "offset store failed", NULL);
}

static void pending_drop(struct sb_stage *s)
{
    for (size_t i = 0; i < s->pending.n; i++)
        rd_kafka_message_destroy(s->pending.msgs[i]);
    s->pending.n = 0;
}

/* Flushes buffered effects, retrying transient failures; stores their offsets. */
static int flush_pending(struct sb_stage *s)
{
    int delay = 50;
    int64_t t0 = sb_mono_us();

    if (s->pending.n == 0)
        return 0;
    while (s->opts.flush(s->opts.ctx) != 0) {
        if (sb_producer_fatal(s->producer) || backoff(s, &delay) != 0) {
            /* Not durable: offsets stay unstored, the messages come back. */
            pending_drop(s);
            return SB_E_STATE;
        }
    }
    if (s->m_batch_seconds != NULL)
        sb_metric_observe(s->m_batch_seconds, (double)(sb_mono_us() - t0) / 1e6);
    for (size_t i = 0; i < s->pending.n; i++) {
        store(s, s->pending.msgs[i]);
        count(s->m_consumed);
    }
    s->handled += (long)s->pending.n;
    pending_drop(s);
    return 0;
}

static void pending_add(struct sb_stage *s, rd_kafka_message_t *rkm)
{
    if (s->pending.n == s->pending.cap) {
        s->pending.cap = s->pending.cap ? s->pending.cap * 2 : 64;
        s->pending.msgs = sb_realloc(s->pending.msgs, s->pending.cap * sizeof(*s->pending.msgs));
    }
    if (s->pending.n == 0)
        s->pending.first_ms = sb_mono_ms();
    s->pending.msgs[s->pending.n++] = rkm;
}

static int to_dlq(struct sb_stage *s, const rd_kafka_message_t *rkm, const char *reason,
                  const char *detail)
{
    int delay = 50;

    while (sb_dlq_send(s->producer, s->opts.name, rkm, reason, detail, 10000) != 0) {
        if (sb_producer_fatal(s->producer) || backoff(s, &delay) != 0)
            return SB_E_STATE;
    }
    count(s->m_dlq);
    sb_log_kv(SB_LOG_WARN, "message sent to the dead-letter topic", "topic",
              rd_kafka_topic_name(rkm->rkt), "reason", reason, "detail", detail, NULL);
    return 0;
}

/* Handles one message. Returns 0, or SB_E_STATE when stopping before it was durable.
 * Takes ownership of rkm. */
static int handle_one(struct sb_stage *s, rd_kafka_message_t *rkm)
{
    struct sb_event ev;
    char reason[512] = "";
    enum sb_stage_result r;
    int delay = 50;
    int rc = 0;

    rc = sb_event_decode(rkm->payload, rkm->len, &ev, reason, sizeof(reason));
    if (rc != 0) {
        sb_event_clear(&ev);
        rc = to_dlq(s, rkm,
                    rc == SB_E_PARSE    ? SB_DLQ_NOT_JSON
                    : rc == SB_E_TOOBIG ? SB_DLQ_TOO_LARGE
                                        : SB_DLQ_INVALID_ENVELOPE,
                    reason);
        goto done;
    }
    for (;;) {
        r = s->opts.handle(s->opts.ctx, &ev, rkm, reason, sizeof(reason));
        if (r != SB_STAGE_RETRY)
            break;
        if (sb_producer_fatal(s->producer) || backoff(s, &delay) != 0) {
            rc = SB_E_STATE;
            break;
        }
    }
    sb_event_clear(&ev);
    if (rc != 0)
        goto out;
    if (r == SB_STAGE_PENDING) {
        pending_add(s, rkm);
        return 0;
    }
    if (r == SB_STAGE_INVALID)
        rc = to_dlq(s, rkm, SB_DLQ_INVALID_PAYLOAD, reason[0] ? reason : "rejected by the stage");
done:
    if (rc == 0) {
        /* Earlier buffered effects must be durable before a later offset is stored. */
        if (s->pending.n > 0 && flush_pending(s) != 0) {
            rc = SB_E_STATE;
            goto out;
        }
        store(s, rkm);
        count(s->m_consumed);
        s->handled++;
    }
out:
    rd_kafka_message_destroy(rkm);
    return rc;
}

int sb_stage_run(struct sb_stage *s, long max_messages, long max_ms)
{
    int64_t t0 = sb_mono_ms();

    while (!sb_stop_requested() && (max_ms <= 0 || sb_mono_ms() - t0 < max_ms)) {
        rd_kafka_message_t *rkm;

        if (sb_producer_fatal(s->producer))
            break;
        if (max_messages > 0 && s->handled + (long)s->pending.n >= max_messages) {
            flush_pending(s);
            if (s->handled >= max_messages)
                break;
        }
        if (s->m_assigned != NULL && sb_mono_ms() >= s->assigned_next_ms) {
            sb_metric_set(s->m_assigned, (double)sb_consumer_assigned(s->consumer));
            s->assigned_next_ms = sb_mono_ms() + 500;
        }
        rkm = sb_consumer_poll(s->consumer, s->pending.n > 0 ? 0 : s->opts.poll_ms);
        if (rkm != NULL && handle_one(s, rkm) != 0)
            break;
        if (s->pending.n > 0 &&
            (rkm == NULL || (int)s->pending.n >= s->opts.batch_max ||
             sb_mono_ms() - s->pending.first_ms >= s->opts.batch_ms) &&
            flush_pending(s) != 0)
            break;
    }
    if (!sb_producer_fatal(s->producer))
        flush_pending(s);
    else
        pending_drop(s);
    sb_consumer_commit(s->consumer);
    return sb_producer_fatal(s->producer) ? SB_E_FATAL : 0;
}

long sb_stage_handled(const struct sb_stage *s)
{
    return s->handled;
}

int sb_stage_assigned(struct sb_stage *s)
{
    return sb_consumer_assigned(s->consumer);
}

int sb_stage_partitions(struct sb_stage *s, const char *topic, int32_t *out, int max)
{
    return sb_consumer_partitions(s->consumer, topic, out, max);
}

void sb_stage_destroy(struct sb_stage *s)
{
    if (s == NULL)
        return;
    pending_drop(s);
    free(s->pending.msgs);
    sb_consumer_destroy(s->consumer);
    free(s);
}
