/* sb-triage internals: the service context shared by main.c (configuration, wiring,
 * reload) and pipeline.c (the consume → classify → score → produce batch). */
#ifndef SB_TRIAGE_H
#define SB_TRIAGE_H

#include "classify.h"
#include "score.h"

#include "sb/config.h"
#include "sb/kafka.h"
#include "sb/metrics.h"
#include "sb/pg.h"
#include "sb/redis.h"
#include "sb/stage.h"

#include <jansson.h>

#define SB_TRIAGE_PROGRAM "sb-triage"

enum item_kind { ITEM_CONTACT, ITEM_OVERRIDE };

/* One consumed message waiting for the batch flush. */
struct item {
    enum item_kind kind;
    char src_id[40]; /* the consumed event's id: produced ids derive from it */
    int64_t src_ms;  /* its UUIDv7 time */
    char ticket_id[64];
    char trace_id[40];
    /* contact */
    char contact_id[48];
    char channel[16];
    char customer_key[208];
    int new_ticket;
    char who[256]; /* name and masked contact, without the tier */
    char where[200];
    int has_amount;
    double amount;
    struct sb_classification cl; /* rule indexes valid for the rule set of the batch */
    json_t *payload;             /* ticket.triaged payload without the customer and score fields */
    /* supervisor override */
    char band[4];
    json_t *actor;
    char reason[512];
    /* filled during the flush */
    int tier, enterprise;
    char incident[128];
    json_t *members; /* tickets to link when this item opened the incident */
    int incident_count;
};

/* What triage remembers of a ticket (Redis hash, see pipeline.c). */
struct tstate {
    char ticket_id[64];
    int known;
    int urgency, impact, tier, delta, score;
    char band[4];
    char incident[128];
    char override_band[4];
    char domain[32];
    int dirty;
};

struct triage {
    struct sb_config *cfg;
    char producer_name[64];
    const char *topic_tickets;
    const char *topic_activity;
    struct sb_producer *producer;
    struct sb_redis *redis;
    struct sb_pg *pg;
    const char *pg_dsn;
    int64_t pg_retry_ms;
    struct sb_metrics *metrics;

    struct sb_ruleset *rules;
    struct sb_rulescan *scan;
    struct sb_model *model;
    json_t *articles; /* article id → {"title", "answer"} */

    struct sb_score_opts score;
    int tz_offset_min;
    int incident_threshold;
    int64_t incident_window_ms;
    int tier_ttl_s;
    int state_ttl_s;
    int produce_timeout_ms;
    int incident_script;

    struct item *items;
    size_t nitems, cap;
    struct tstate *states;
    size_t nstates, scap;

    struct sb_metric *m_classify_seconds, *m_incidents, *m_incident_errors, *m_crm_unavailable,
        *m_rules;
};

/* pipeline.c */
void triage_register_scripts(struct triage *t);
enum sb_stage_result triage_handle(void *ctx, const struct sb_event *ev,
                                   const rd_kafka_message_t *rkm, char *reason, size_t reason_size);
int triage_flush(void *ctx);
/* Drops a batch that will not be flushed (its messages come back). */
void triage_batch_clear(struct triage *t);

/* main.c */
struct sb_pg *triage_pg(struct triage *t);

#endif
