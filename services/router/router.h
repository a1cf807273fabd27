/* sb-router: the service around the routing core (docs/router.md). Tickets live in the
 * instance that owns their partition (the input topics are co-partitioned by ticket
 * id); agents, their presence and their load live in Redis, shared by every instance;
 * a Lua script reserves capacity, so two instances never assign one ticket twice nor
 * exceed an agent's capacity. */
#ifndef SB_ROUTER_H
#define SB_ROUTER_H

#include "core.h"

#include "sb/config.h"
#include "sb/event.h"
#include "sb/kafka.h"
#include "sb/metrics.h"
#include "sb/pg.h"
#include "sb/redis.h"
#include "sb/stage.h"

#include <stdint.h>

#define SB_ROUTER_PROGRAM "sb-router"
#define RT_MAX_PARTS 256
/* New tickets looked up in Redis in one round trip at the most */
#define RT_LOOKUP_MAX 256
/* The value of t:<ticket> once the ticket is done (resolved, merged). */
#define RT_DONE_RECORD "{\"done\":true}"

enum rt_state { RT_WAITING = 0, RT_OFFERED = 1, RT_ACCEPTED = 2, RT_EXTERNAL = 3 };

/* A ticket this instance routes (its partition is assigned here). */
struct rt_ticket {
    struct rt_ticket *next; /* hash chain */
    char id[SB_ROUTE_ID_MAX + 1];
    char trace_id[SB_TRACE_ID_STRLEN + 1];
    int channel; /* enum sb_route_channel */
    int band;    /* 1..4 */
    char domain[64], language[17], product[64], team[SB_ROUTE_ID_MAX + 1];
    char preferred[SB_ROUTE_ID_MAX + 1];
    char cust[65]; /* hash of the customer key (continuity), or "" */
    int vip;
    int64_t arrived_ms;
    int32_t part;
    int in_core;
    int state; /* enum rt_state */
    int stage;
    char agent[SB_ROUTE_ID_MAX + 1]; /* OFFERED, ACCEPTED, EXTERNAL */
    char offer_id[64];
    int64_t offer_ms, expires_ms;
    int continuity;
    int64_t accepted_ms;
};

/* A ticket.triaged taken but not yet routed (see lookups_resolve). */
struct rt_lookup {
    struct rt_ticket *t;
    char name[128]; /* name of its ticket.queued (from the input's event id) */
    char band[8], channel[16];
    int64_t occurred_ms, t0_us;
};

struct rt_agent {
    struct rt_agent *next;
    char id[SB_ROUTE_ID_MAX + 1];
    char team[SB_ROUTE_ID_MAX + 1];
    int in_roster, has_presence;
    int status;                      /* enum sb_route_presence */
    int cap[SB_ROUTE_CH_COUNT];      /* effective capacity (presence, else roster) */
    int load[SB_ROUTE_CH_COUNT];     /* reservations of every instance (Redis) */
    int core_cap[SB_ROUTE_CH_COUNT]; /* what the core was told */
    int core_status;                 /* -1: never told */
    char *skills_json;               /* canonical skills ({"domain:x":100,…}), owned */
    char *core_skills;               /* what the core was told, owned */
    char core_team[SB_ROUTE_ID_MAX + 1];
    /* The presence last read from Redis (agent:<id> status, ms, caps, skills), written
     * back when Redis lost its state. */
    char p_status[16];
    char *p_caps, *p_skills; /* owned, NULL when the presence named none */
    long long p_ms;
};

struct rt_team {
    char id[SB_ROUTE_ID_MAX + 1];
    char lead[SB_ROUTE_ID_MAX + 1], supervisor[SB_ROUTE_ID_MAX + 1];
};

struct rt_out {
    char *key, *value;
    size_t len;
};

struct router {
    struct sb_config *cfg;
    struct sb_router *core;
    struct sb_route_cfg core_cfg;
    struct sb_redis *redis;
    struct sb_pg *pg;
    int64_t pg_retry_ms;
    struct sb_producer *producer;
    struct sb_stage *stage;
    struct sb_metrics *metrics;
    char producer_name[64];
    const char *prefix, *eta_prefix, *ticket_prefix, *agent_prefix;
    const char *t_tickets, *t_presence, *t_activity, *t_sla, *t_routing; /* topic names */
    char instance[40];
    int script_reserve, script_release, script_accept, script_presence, script_restore;
    int64_t offer_timeout_ms[SB_ROUTE_CH_COUNT];
    long long done_remember_s; /* how long a done ticket's record stays in Redis */
    int task_capacity;
    int produce_timeout_ms;
    double aht_s[SB_ROUTE_CH_COUNT];

    /* tickets by id */
    struct rt_ticket **tb;
    size_t tcap, tn;
    /* agents by id */
    struct rt_agent **ab;
    size_t acap, an;
    struct rt_team *teams;
    size_t nteams;
    char vip_team[SB_ROUTE_ID_MAX + 1];
    char **core_lines, **core_teams;
    size_t ncore;
    char **product_lines; /* every product line of the roster (to read presence skills) */
    size_t nproducts;

    /* new tickets of the current batch waiting for their Redis lookup (done record,
     * continuity), made for all of them in one pipelined round trip */
    struct rt_lookup *lk;
    size_t nlk, caplk;

    /* partitions of sb.tickets.v1 whose tickets are loaded here */
    unsigned char owned[RT_MAX_PARTS];

    /* output of the current batch */
    struct rt_out *out;
    size_t nout, capout;
    /* Redis writes of the current batch: ticket records */
    char **wr_id; /* ticket ids to save (or delete when not known any more) */
    int32_t *wr_part;
    size_t nwr, capwr;

    int redis_ok;
    int live_seen; /* Redis held the router's state (key "live") at the last refresh */
    int restoring; /* Redis lost its state: no offers until every instance restored its own */
    int64_t roster_next_ms, agents_next_ms, eta_next_ms, parts_next_ms, metrics_next_ms;

    struct sb_metric *m_offers, *m_accepts, *m_timeouts, *m_declines, *m_refused, *m_redis_down,
        *m_replays, *m_restores, *m_decision_seconds, *m_open, *m_agents_online;
};

/* router.c */
int router_init(struct router *r, struct sb_config *cfg, char *err, size_t errsz);
void router_free(struct router *r);
enum sb_stage_result router_handle(void *ctx, const struct sb_event *ev,
                                   const rd_kafka_message_t *rkm, char *reason, size_t reason_size);
int router_flush(void *ctx);
/* Timers, offers expiring, agent refresh, roster, ETA, partition changes. */
void router_periodic(struct router *r);
int router_ready(void *ctx, char *why, size_t why_size);

#endif
