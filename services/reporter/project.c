/* The projection batch: each consumed event is appended as it came (its bytes are valid
 * JSON: the stage decoded it) with its origin to one JSON array; the flush hands the
 * array to sb_project() (deploy/sql/0004) in one statement — one transaction, one round
 * trip per batch. Offsets are stored by the stage only after it committed. */
#include "reporter.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

static void append_origin(struct reporter *r, const rd_kafka_message_t *rkm)
{
    sb_strbuf_printf(&r->batch, "%s{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"event\":",
                     r->nbatch ? "," : "[", rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                     (long long)rkm->offset);
}

enum sb_stage_result reporter_handle(void *ctx, const struct sb_event *ev,
                                     const rd_kafka_message_t *rkm, char *reason, size_t rsz)
{
    struct reporter *r = ctx;
    (void)reason;
    (void)rsz;

    if (strcmp(rd_kafka_topic_name(rkm->rkt), SB_TOPIC_DLQ) == 0) {
        /* A dead letter is stored without the original bytes (they may hold anything,
         * U+0000 included) and is never sent to the DLQ again. */
        struct sb_event copy = *ev;
        size_t len;
        char *text;
        copy.payload = json_deep_copy(ev->payload);
        json_object_del(copy.payload, "raw_text");
        json_object_del(copy.payload, "raw_base64");
        text = sb_event_encode(&copy, &len);
        json_decref(copy.payload);
        if (text == NULL)
            return SB_STAGE_RETRY; /* out of memory only */
        append_origin(r, rkm);
        sb_strbuf_append(&r->batch, text, len);
        free(text);
    } else {
        /* The bytes as they came: the stage's decoder accepted them, so they are one JSON
         * object without U+0000 (which jsonb could not hold either). */
        append_origin(r, rkm);
        sb_strbuf_append(&r->batch, rkm->payload, rkm->len);
    }
    sb_strbuf_append(&r->batch, "}", 1);
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
