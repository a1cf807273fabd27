/* The projection batch: each consumed event is appended as it came (its bytes are valid
 * JSON: the stage decoded it) with its origin to one JSON array; the flush hands the
 * array to sb_project() (deploy/sql/0004, set-based since 0015) in one statement — one
 * transaction, one round trip per batch. Offsets are stored by the stage only after it
 * committed. */
#include "reporter.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/projection.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

enum sb_stage_result reporter_handle(void *ctx, const struct sb_event *ev,
                                     const rd_kafka_message_t *rkm, char *reason, size_t rsz)
{
    struct reporter *r = ctx;
    (void)reason;
    (void)rsz;

    if (sb_projection_append(&r->batch, r->nbatch, rd_kafka_topic_name(rkm->rkt),
                             (int)rkm->partition, rkm->offset, ev, rkm->payload, rkm->len) != 0)
        return SB_STAGE_RETRY; /* out of memory only */
    r->nbatch++;
    return SB_STAGE_PENDING;
}

void reporter_batch_clear(struct reporter *r)
{
    sb_strbuf_reset(&r->batch);
    r->nbatch = 0;
}

int reporter_flush(void *ctx)
{
    struct reporter *r = ctx;
    struct sb_pg *pg;
    PGresult *res;
    const char *params[1];
    char err[512];
    int perr = 0, fresh;
    int64_t t0 = sb_mono_us();

    if (r->nbatch == 0)
        return 0;
    pg = reporter_pg(r);
    if (pg == NULL)
        return SB_E_IO;
    /* Close the array for the call, then reopen it for a retry. */
    sb_strbuf_append(&r->batch, "]", 1);
    params[0] = r->batch.p;
    res = sb_pg_query_prepared(pg, "project", 1, params, &perr, err, sizeof(err));
    r->batch.len--;
    r->batch.p[r->batch.len] = '\0';
    if (res == NULL) {
        sb_log_kv(SB_LOG_WARN, "projection batch not committed; retrying", "detail", err, NULL);
        return perr != 0 ? perr : SB_E_IO;
    }
    fresh = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    sb_metric_add(r->m_new, fresh);
    sb_metric_add(r->m_duplicates, (double)r->nbatch - fresh);
    sb_metric_observe(r->m_batch_seconds, (double)(sb_mono_us() - t0) / 1e6);
    reporter_batch_clear(r);
    return 0;
}
