/* Kafka clients on librdkafka with the delivery rules of DESIGN.md:
 *  - a producer that is idempotent with acks=all, reports every delivery, can wait
 *    for all outstanding deliveries of a batch, and flushes on shutdown;
 *  - an at-least-once consumer: enable.auto.offset.store=false, so an offset is
 *    stored (and later auto-committed) only when the caller says the effect of the
 *    message is durable (RELIABILITY.md, "librdkafka consumer offsets");
 *  - a DLQ helper that sends an unprocessable message to sb.dlq.v1 with the reason
 *    and its origin.
 * Handles are opaque; constructors take errstr (librdkafka's convention). */
#ifndef SB_KAFKA_H
#define SB_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#define SB_TOPIC_CONTACTS "sb.contacts.v1"
#define SB_TOPIC_TICKETS "sb.tickets.v1"
#define SB_TOPIC_ROUTING "sb.routing.v1"
#define SB_TOPIC_ACTIVITY "sb.activity.v1"
#define SB_TOPIC_PRESENCE "sb.presence.v1"
#define SB_TOPIC_SLA "sb.sla.v1"
#define SB_TOPIC_DLQ "sb.dlq.v1"

/* Connection options shared by producers and consumers. Strings are borrowed. */
struct sb_kafka_opts {
    const char *brokers;   /* bootstrap.servers */
    const char *client_id; /* client.id, e.g. "sb-triage" */
    /* Extra librdkafka properties passed through verbatim; each is checked. */
    const char *const *keys;
    const char *const *values;
    size_t nprops;
};

/* Called once per message when its delivery is final (err 0: acknowledged by all
 * in-sync replicas). Runs on the producer's poll thread: keep it short. */
typedef void (*sb_delivery_fn)(void *opaque, rd_kafka_resp_err_t err);

struct sb_producer;

/* Creates an idempotent producer (acks=all, enable.idempotence=true) and starts
 * its poll thread. Returns NULL with errstr on a bad property. */
struct sb_producer *sb_producer_new(const struct sb_kafka_opts *opts, char *errstr,
                                    size_t errstr_size);
/* Flushes for at most timeout_ms, stops the poll thread, destroys. Accepts NULL.
 * Returns the number of messages that were still undelivered. */
int sb_producer_destroy(struct sb_producer *p, int timeout_ms);

/* Enqueues one message (copied). cb may be NULL. Returns 0, SB_E_FATAL when the
 * producer has hit a fatal error, SB_E_UNAVAIL when the local queue is full after
 * waiting up to 100 ms, or SB_E_INVAL. */
int sb_producer_send(struct sb_producer *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, sb_delivery_fn cb, void *opaque);

/* Enqueues one message and waits up to timeout_ms for its acknowledgement.
 * Returns 0 when durable, SB_E_TIMEOUT, SB_E_UNAVAIL or SB_E_FATAL. Any thread. */
int sb_producer_send_wait(struct sb_producer *p, const char *topic, const void *key, size_t keylen,
                          const void *value, size_t len, int timeout_ms);

/* Waits until every message sent so far is delivered or failed, up to timeout_ms.
 * Returns 0 when all succeeded, the negative count of failures since the last call
 * otherwise (also counting those still outstanding at the timeout). */
int sb_producer_wait_all(struct sb_producer *p, int timeout_ms);

/* 1 after librdkafka reported a fatal error: stop taking work, flush, exit non-zero. */
int sb_producer_fatal(const struct sb_producer *p);
/* Checks that the cluster answers a metadata request within timeout_ms (0 = yes). */
int sb_producer_ping(struct sb_producer *p, int timeout_ms);
/* Borrowed librdkafka handle (for admin calls). */
rd_kafka_t *sb_producer_rk(struct sb_producer *p);

struct sb_consumer;

/* Creates an at-least-once consumer in group and subscribes to topics.
 * auto.offset.reset=earliest; offsets committed in the background from what
 * sb_consumer_store() stored, and synchronously on revoke and close. */
struct sb_consumer *sb_consumer_new(const struct sb_kafka_opts *opts, const char *group,
                                    const char *const *topics, size_t ntopics, char *errstr,
                                    size_t errstr_size);
/* Commits stored offsets, leaves the group and destroys. Accepts NULL. */
void sb_consumer_destroy(struct sb_consumer *c);

/* Returns the next message or NULL (timeout, or a transient error that was logged
 * and counted). The caller owns the message: rd_kafka_message_destroy(). Partition
 * EOF and errors never reach the caller. */
rd_kafka_message_t *sb_consumer_poll(struct sb_consumer *c, int timeout_ms);

/* Marks the message's effect as durable: stores offset+1 for its partition.
 * Returns 0, or SB_E_STATE when the partition was revoked meanwhile (drop the work;
 * it will be redelivered to the new owner). */
int sb_consumer_store(struct sb_consumer *c, const rd_kafka_message_t *rkm);

/* Commits stored offsets now (synchronously). */
int sb_consumer_commit(struct sb_consumer *c);

/* Number of partitions currently assigned (for /readyz and tests). */
int sb_consumer_assigned(struct sb_consumer *c);
/* The partitions of topic currently assigned, up to max of them in out; returns how
 * many (for a stage whose state follows its partitions). */
int sb_consumer_partitions(struct sb_consumer *c, const char *topic, int32_t *out, int max);

/* Why a message went to the DLQ (proto/events/dlq.entry.schema.json). */
#define SB_DLQ_NOT_JSON "not_json"
#define SB_DLQ_INVALID_ENVELOPE "invalid_envelope"
#define SB_DLQ_UNKNOWN_TYPE "unknown_type"
#define SB_DLQ_INVALID_PAYLOAD "invalid_payload"
#define SB_DLQ_UNSUPPORTED_SCHEMA "unsupported_schema"
#define SB_DLQ_TOO_LARGE "too_large"
#define SB_DLQ_PROCESSING_FAILED "processing_failed"
/* The most of the original message kept in a DLQ entry. */
#define SB_DLQ_RAW_MAX (512 * 1024)

/* Sends rkm's raw bytes (up to SB_DLQ_RAW_MAX) to sb.dlq.v1 as a dlq.entry event with
 * the reason (one of SB_DLQ_*), the detail (the error, naming the field), the stage and
 * the origin topic/partition/offset, keyed by the original key, and waits for the ack.
 * Headers of the original are not copied; the payload holds only a hash of the key.
 * Returns 0 when durable. */
int sb_dlq_send(struct sb_producer *p, const char *stage, const rd_kafka_message_t *rkm,
                const char *reason, const char *detail, int timeout_ms);

#endif
