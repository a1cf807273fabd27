/* sb-slawatch: the service around the SLA core (docs/slawatch.md). One engine per
 * owned partition number (the three input topics are co-partitioned by ticket id), a
 * snapshot of its clocks in PostgreSQL written with the next offsets of its partitions
 * after each batch's events were acknowledged, and the timers advanced between
 * batches. One thread. */
#ifndef SB_SLAWATCH_H
#define SB_SLAWATCH_H

#include "engine.h"
#include "policy.h"
#include "roster.h"

#include "sb/config.h"
#include "sb/kafka.h"
#include "sb/metrics.h"
#include "sb/pg.h"
#include "sb/stage.h"

#include <stdbool.h>
#include <stdint.h>

#define SB_SLAWATCH_PROGRAM "sb-slawatch"
/* Topics read, in this order (index into the per-partition offsets). */
#define SW_NTOPICS 3
#define SW_MAX_PARTS 1024

struct sw_facts; /* per ticket: customer, channel, band, agent, team (service.c) */

/* An input read, while catching up, before its ticket's ticket.triaged (table
 * sla_deferred_inputs): applied right after the triage. */
struct sw_deferred {
    char ticket[SB_SLA_TICKET_MAX];
    int topic; /* index into the topics read */
    int64_t offset, occurred_ms;
    char *envelope; /* the message as read */
    size_t len;
    bool written;      /* its row is in the snapshot */
    int64_t kept_mono; /* monotonic ms it was read (or restored) */
};

/* A row of sla_deferred_inputs to delete at the next flush. */
struct sw_deferred_key {
    int topic;
    int64_t offset;
};

/* The clocks of one partition number. */
struct sw_part {
    int32_t id;
    struct sb_sla_engine *engine;
    int64_t next_offset[SW_NTOPICS]; /* inputs below are in the snapshot already */
    bool offsets_dirty;
    /* Catching up after a take-over: the backlog of each topic (up to end_offset, the
     * log end when restored) is read before the timers follow the wall clock; until
     * then they follow the input time (topic_ms) of the topics not read yet. */
    bool catching_up;
    bool reached[SW_NTOPICS];     /* backlog of the topic read */
    bool by_offset[SW_NTOPICS];   /* reached when next_offset >= end_offset */
    bool pos_known[SW_NTOPICS];   /* the snapshot has the topic's offset */
    bool end_unknown[SW_NTOPICS]; /* the log end could not be asked yet: asked again */
    bool seen[SW_NTOPICS];        /* a message of the topic came in this loop turn */
    int64_t end_offset[SW_NTOPICS];
    int64_t topic_ms[SW_NTOPICS]; /* newest input time read per topic */
    int64_t restored_at;          /* monotonic */
    int64_t catchup_until;        /* monotonic: the wall clock from then on regardless */
    int turns;                    /* loop turns since the take-over */
    struct sw_deferred *deferred; /* in reading order */
    size_t ndeferred, capdeferred;
    struct sw_deferred_key *gone; /* deferred rows to delete */
    size_t ngone, capgone;
    struct sw_facts **buckets; /* ticket facts, chained */
    size_t nbuckets, nfacts;
    char (*dirty)[SB_SLA_TICKET_MAX]; /* tickets whose rows need writing */
    size_t ndirty, capdirty;
};

/* A calendar as loaded (rebuilt per engine; engines own their copies). */
struct sw_calendar {
    char id[SB_CAL_ID_MAX];
    char tz[128];
    struct sb_cal_hours *hours;
    size_t nhours;
    struct sb_cal_holiday *holidays;
    size_t nholidays;
};

struct sw_period {
    struct sb_sla_period_row row;
    char *notice;
};

struct slawatch {
    struct sb_config *cfg;
    const char *group;
    char producer_name[64];
    struct sb_producer *producer;
    struct sb_pg *pg;
    int64_t pg_retry_ms;

    struct sb_sla_policies *policies;
    struct sw_calendar *cals; /* index i+1 in every engine */
    size_t ncals;
    struct sw_period *periods;
    size_t nperiods;
    uint16_t default_cal; /* 0: none */
    /* Teams (lead, supervisor, calendar) and agents' teams, from PostgreSQL. */
    struct sb_sla_roster *roster;
    int64_t roster_miss_ms;   /* an unknown agent reloads the roster at most this often */
    int64_t roster_miss_next; /* monotonic */

    struct sb_stage *stage; /* its assignment says which partitions are held */
    int64_t catchup_max_ms;
    int64_t defer_wait_ms; /* outside a catch-up, how long an input waits for its triage */
    struct sw_part *parts[SW_MAX_PARTS];
    struct sb_sla_events events; /* produced at the next flush */
    int32_t *ev_part;            /* partition of each pending event */
    size_t ev_part_cap;
    int64_t callback_delay_ms, csat_delay_ms, reescalate_max_ms, due_soon_ms;

    struct sb_metrics *metrics;
    struct sb_metric *m_running[SB_SLA_CLOCK_KINDS], *m_at_risk[SB_SLA_CLOCK_KINDS];
    struct sb_metric *m_warnings[SB_SLA_CLOCK_KINDS], *m_breaches[SB_SLA_CLOCK_KINDS];
    struct sb_metric *m_escalations[3], *m_band_breaches[5], *m_due_soon[5];
    struct sb_metric *m_active, *m_paused, *m_delay, *m_events, *m_followups, *m_restored,
        *m_skipped, *m_partitions, *m_bytes;
};

/* Loads policies, declared periods, calendars (PostgreSQL or the policies file) and the
 * roster; applies them to every engine. Returns 0 or a negative code (previous ones
 * kept). */
int sw_reload(struct slawatch *s);

/* Reloads the roster alone (teams, agents). Returns 0 or a negative code (previous one
 * kept). */
int sw_reload_roster(struct slawatch *s);

/* The stage handler and flush (sb/stage.h). */
enum sb_stage_result sw_handle(void *ctx, const struct sb_event *ev, const rd_kafka_message_t *rkm,
                               char *reason, size_t reason_size);
int sw_flush(void *ctx);

/* Compares the stage's assignment (sb.tickets.v1) with the partitions held: those
 * taken over are restored, those handed over dropped with their unwritten rows and
 * unproduced events (the next owner restores and replays them). With restore false,
 * only drops (inside a flush). Returns 0 or a negative code. */
int sw_sync(struct slawatch *s, bool restore);

/* After each loop turn: ends the catch-up of partitions whose backlog is read (or whose
 * catch-up time is over). */
void sw_catchup_turn(struct slawatch *s);

/* Every partition held catches up again (the broker answers again after it did not:
 * inputs it had taken may not have been read yet). */
void sw_catchup_all(struct slawatch *s);

/* Fires the steps due by now_ms; a partition catching up only those due by the input
 * time of the topics it has not read up to the end yet. Returns the steps taken. */
size_t sw_advance(struct slawatch *s, int64_t now_ms);

/* The earliest pending step over the partitions that follow the wall clock
 * (SB_SLA_NEVER: none). */
int64_t sw_next_due(const struct slawatch *s);

/* Refreshes the gauges (clocks by kind, at risk, due soon by band). */
void sw_gauges(struct slawatch *s, int64_t now_ms);

void sw_destroy(struct slawatch *s);

#endif
