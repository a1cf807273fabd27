/* The routing core's own structures, shared by core.c and heap.c only: the router, its
 * agents, tickets and queues, and the indexed binary heaps that order them. Every
 * object is an index into an array of the router, so arrays may grow (move) freely. */
#ifndef SB_ROUTER_ROUTE_INT_H
#define SB_ROUTER_ROUTE_INT_H

#include "core.h"
#include "idmap.h"

#include <stdint.h>

/* A ticket in a heap: the ordering key is copied in so comparisons stay in the heap's
 * own memory. rank is arrival + band delay (queues, personal queues) or a deadline
 * (timers); seq breaks ties in arrival order. */
struct rt_tent {
    int64_t rank;
    uint64_t seq;
    uint32_t t;
};

struct rt_theap {
    struct rt_tent *v;
    uint32_t n, cap;
};

/* Which position field of a ticket a heap maintains. */
enum { RT_POS_QUEUE = 0, RT_POS_TIMER = 1 };

/* An agent in a queue's heap of free agents: the agent, its membership, coded as
 * (index in the agent's list for that channel) << 3 | channel, and the membership's
 * skill score copied in (it only changes with the agent's skills). */
struct rt_aent {
    uint32_t agent;
    uint32_t mem;
    int32_t score;
};

struct rt_aheap {
    struct rt_aent *v;
    uint32_t n, cap;
};

/* One queue an agent is eligible for. */
struct rt_mem {
    uint32_t queue;
    int32_t pos;   /* in the queue's agent heap; -1 when not free there */
    int32_t score; /* sum of the levels of the queue's skills (highest-skill policy) */
};

struct rt_memv {
    struct rt_mem *v;
    uint32_t n, cap;
};

struct rt_agent {
    char id[SB_ROUTE_ID_MAX + 1];
    uint64_t tag;
    int32_t team; /* name index, or -1 */
    uint32_t nskills;
    uint32_t skill[SB_ROUTE_MAX_SKILLS]; /* name indices */
    uint8_t level[SB_ROUTE_MAX_SKILLS];
    int32_t cap[SB_ROUTE_CH_COUNT];
    int32_t load[SB_ROUTE_CH_COUNT];
    int presence;
    int64_t since_us; /* last change of load or presence */
    uint32_t occ;     /* sum over channels of load/cap, 16.16 fixed point */
    uint32_t busy;    /* total load */
    struct rt_memv mem[SB_ROUTE_CH_COUNT];
    struct rt_theap personal[SB_ROUTE_CH_COUNT]; /* tickets waiting for this agent */
};

/* A queue key: compared and hashed as bytes, so unused fields stay zero. */
struct rt_qkey {
    uint8_t channel;
    uint8_t min_level;
    uint8_t nskills;
    uint8_t pad;
    int32_t team;                     /* -1: any team */
    uint32_t skill[SB_ROUTE_MAX_REQ]; /* sorted ascending */
};

struct rt_queue {
    struct rt_qkey key;
    struct rt_theap tickets;
    struct rt_aheap agents; /* eligible, available, with free capacity on the channel */
    uint32_t members, available;
    uint64_t assigned;
};

struct rt_ticket {
    char id[SB_ROUTE_ID_MAX + 1];
    uint8_t state, channel, band, stage, nexclude;
    uint64_t tag, seq;
    int64_t arrived_us;
    int64_t deadline_us;
    uint32_t queue[SB_ROUTE_STAGES];
    uint32_t agent;  /* ASSIGNED: the holder; WAITING_AGENT: the awaited agent */
    uint32_t prefer; /* agent tried first when (re)routed, or RT_NONE */
    uint32_t exclude[SB_ROUTE_MAX_EXCLUDE];
    int32_t pos[2]; /* RT_POS_QUEUE, RT_POS_TIMER; -1: not in such a heap */
};

struct rt_names {
    char (*name)[SB_ROUTE_ID_MAX + 1];
    uint32_t n, cap;
    struct rt_idmap map;
};

struct sb_router {
    struct sb_route_cfg cfg;
    int64_t now_us;
    uint64_t seq;

    struct rt_agent *agents;
    uint32_t nagents, agents_cap;
    struct rt_idmap agent_map;

    struct rt_ticket *tickets;
    uint32_t ntickets, tickets_cap; /* slots used so far (live or free) */
    uint32_t *free_tickets;
    uint32_t nfree;
    uint64_t waiting; /* tickets queued or waiting for an agent */
    struct rt_idmap ticket_map;

    struct rt_queue *queues;
    uint32_t nqueues, queues_cap;
    struct rt_idmap queue_map;

    struct rt_names skills, teams;
    struct rt_theap timers;

    struct sb_route_decision *out;
    size_t out_head, out_n, out_cap;
};

/* Ticket heaps (queues, personal queues, timers): min by (rank, seq). Each keeps
 * r->tickets[t].pos[which] equal to the ticket's position. */
void rt_theap_free(struct rt_theap *h);
void rt_theap_push(struct sb_router *r, struct rt_theap *h, int which, uint32_t t, int64_t rank);
void rt_theap_remove(struct sb_router *r, struct rt_theap *h, int which, int32_t pos);
/* The position of the best ticket that does not avoid agent a (RT_NONE: any ticket),
 * looking at no more than limit entries; -1 when none was found. */
int32_t rt_theap_best_for(const struct sb_router *r, const struct rt_theap *h, uint32_t a,
                          int limit);
/* Tickets strictly ahead of position pos (cost: their number). */
uint64_t rt_theap_ahead(const struct rt_theap *h, int32_t pos);

/* A queue's heap of free agents, ordered by the router's policy. Each keeps the
 * membership's pos equal to the agent's position. */
void rt_aheap_free(struct rt_aheap *h);
void rt_aheap_push(struct sb_router *r, struct rt_aheap *h, struct rt_aent e);
void rt_aheap_remove(struct sb_router *r, struct rt_aheap *h, int32_t pos);
void rt_aheap_fix(struct sb_router *r, struct rt_aheap *h, int32_t pos);
/* The position of the best agent ticket t does not avoid, looking at no more than
 * limit entries; -1 when none was found. */
int32_t rt_aheap_best_for(const struct sb_router *r, const struct rt_aheap *h, uint32_t t,
                          int limit);

/* The membership an agent-heap entry stands for. */
static inline struct rt_mem *rt_mem_of(struct sb_router *r, struct rt_aent e)
{
    return &r->agents[e.agent].mem[e.mem & 7].v[e.mem >> 3];
}

/* Whether ticket t avoids agent a. */
static inline int rt_excluded(const struct rt_ticket *t, uint32_t a)
{
    for (unsigned i = 0; i < t->nexclude; i++) {
        if (t->exclude[i] == a)
            return 1;
    }
    return 0;
}

#endif
