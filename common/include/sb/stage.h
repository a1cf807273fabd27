/* The consume loop every stage runs, with the delivery rules of DESIGN.md built in:
 * each message is decoded once into an envelope; one that cannot be decoded goes to
 * sb.dlq.v1 with the reason; a valid one goes to the stage's handler; its offset is
 * stored only when the handler's effect is durable (directly, or after the batch's
 * flush succeeded). Transient failures are retried with backoff, never skipped. */
#ifndef SB_STAGE_H
#define SB_STAGE_H

#include "sb/event.h"
#include "sb/kafka.h"

#include <stddef.h>

struct sb_metrics;

/* What a handler did with one message. */
enum sb_stage_result {
    SB_STAGE_DONE = 0,    /* effect durable: store the offset now */
    SB_STAGE_PENDING = 1, /* buffered: durable once flush() returns 0 */
    SB_STAGE_INVALID = 2, /* the message cannot be processed: DLQ with reason */
    SB_STAGE_RETRY = 3,   /* transient failure: call again with the same message later */
};

/* Handles one decoded event. ev is borrowed; set reason (size reason_size) when
 * returning SB_STAGE_INVALID. Runs on the stage thread. */
typedef enum sb_stage_result (*sb_stage_handle_fn)(void *ctx, const struct sb_event *ev,
                                                   const rd_kafka_message_t *rkm, char *reason,
                                                   size_t reason_size);
/* Makes every PENDING effect durable. Returns 0, or a negative code to be retried. */
typedef int (*sb_stage_flush_fn)(void *ctx);

struct sb_stage_opts {
    const char *name;  /* program name, e.g. "sb-triage": DLQ producer and metrics label */
    const char *group; /* consumer group */
    const char *const *topics;
    size_t ntopics;
    sb_stage_handle_fn handle;
    sb_stage_flush_fn flush; /* NULL when the handler never returns PENDING */
    void *ctx;
    int batch_max;    /* flush after this many PENDING messages (default 500) */
    int batch_ms;     /* …or this many ms after the first one (default 50) */
    int poll_ms;      /* poll timeout (default 100) */
    int retry_max_ms; /* cap of the retry backoff (default 5000) */
};

struct sb_stage;

/* Creates the consumer (joining the group). producer (borrowed) is used for the DLQ;
 * metrics (borrowed, may be NULL) get consumed/dlq/retry counters. */
struct sb_stage *sb_stage_new(const struct sb_kafka_opts *kopts, const struct sb_stage_opts *opts,
                              struct sb_producer *producer, struct sb_metrics *metrics,
                              char *errstr, size_t errstr_size);

/* Runs until sb_stop_requested(), until max_messages were handled, or for max_ms
 * (each 0: no limit).
 * On return, pending effects have been flushed (or dropped unflushed, with their
 * offsets not stored) and stored offsets committed. Returns 0, or SB_E_FATAL when
 * the producer failed fatally. */
int sb_stage_run(struct sb_stage *s, long max_messages, long max_ms);

/* Messages handled so far (DONE, flushed or sent to the DLQ). */
long sb_stage_handled(const struct sb_stage *s);
/* Partitions assigned to this instance. */
int sb_stage_assigned(struct sb_stage *s);
/* The partitions of topic assigned to this instance (see sb_consumer_partitions). */
int sb_stage_partitions(struct sb_stage *s, const char *topic, int32_t *out, int max);

/* Leaves the group (committing stored offsets) and frees. Accepts NULL. */
void sb_stage_destroy(struct sb_stage *s);

#endif
