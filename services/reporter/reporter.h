/* sb-reporter internals: the projection batch (project.c) and the service (main.c). */
#ifndef SB_REPORTER_H
#define SB_REPORTER_H

#include "sb/config.h"
#include "sb/kafka.h"
#include "sb/metrics.h"
#include "sb/pg.h"
#include "sb/stage.h"
#include "sb/strbuf.h"

#define SB_REPORTER_PROGRAM "sb-reporter"

struct reporter {
    struct sb_config *cfg;
    const char *pg_dsn;
    struct sb_pg *pg;
    int64_t pg_retry_ms;
    struct sb_metrics *metrics;
    struct sb_strbuf batch; /* the JSON array handed to sb_project() */
    size_t nbatch;
    struct sb_metric *m_new, *m_duplicates, *m_errors, *m_batch_seconds;
};

enum sb_stage_result reporter_handle(void *ctx, const struct sb_event *ev,
                                     const rd_kafka_message_t *rkm, char *reason,
                                     size_t reason_size);
int reporter_flush(void *ctx);
void reporter_batch_clear(struct reporter *r);
struct sb_pg *reporter_pg(struct reporter *r);

#endif
