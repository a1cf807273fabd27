/* The routing core of sb-router (SPEC.md §3, docs/router-core.md): agents with teams,
 * skill levels and a capacity per channel; one queue per distinct requirement, ordered
 * by band and waiting time with aging; matching by a configurable policy, continuity
 * (a returning customer waits a while for their last agent) and overflow (secondary
 * skills, then other teams, after a per-band wait).
 *
 * Pure logic: every call takes the current time (microseconds of any clock that never
 * goes back, real or virtual), no I/O, no global state, no threads. A router belongs to
 * one thread at a time. Decisions (assignments, overflows) are queued inside the
 * router and read with sb_route_poll(). The core never puts more work on an agent
 * than its capacity on that channel. */
#ifndef SB_ROUTER_CORE_H
#define SB_ROUTER_CORE_H

#include <stddef.h>
#include <stdint.h>

#define SB_ROUTE_ID_MAX 64     /* longest agent, ticket, team or skill name, in bytes */
#define SB_ROUTE_MAX_SKILLS 32 /* skills of one agent */
#define SB_ROUTE_MAX_REQ 4     /* skills one ticket requires */
#define SB_ROUTE_MAX_EXCLUDE 4 /* agents a ticket avoids after declines and timeouts */
#define SB_ROUTE_BANDS 4       /* P1..P4 */
#define SB_ROUTE_STAGES 3      /* 0 primary skills, 1 secondary skills, 2 other teams */
#define SB_ROUTE_LEVEL_MAX 100 /* skill levels are 1..SB_ROUTE_LEVEL_MAX */
#define SB_ROUTE_CAP_MAX 1000  /* capacity of one agent on one channel */

enum sb_route_channel {
    SB_ROUTE_CH_VOICE,
    SB_ROUTE_CH_CHAT,
    SB_ROUTE_CH_EMAIL,
    SB_ROUTE_CH_SOCIAL,
    SB_ROUTE_CH_FORM,
    SB_ROUTE_CH_TASK, /* collaboration tasks */
    SB_ROUTE_CH_COUNT
};

enum sb_route_presence {
    SB_ROUTE_AVAILABLE, /* takes new work up to capacity */
    SB_ROUTE_BUSY,      /* logged in, keeps its work, takes nothing new */
    SB_ROUTE_AWAY,      /* as busy; customers waiting for this agent stop waiting */
    SB_ROUTE_OFFLINE    /* as away */
};

/* Which eligible agent with free capacity gets a ticket. Ties fall to the next key,
 * then to the agent added first, so the choice is deterministic. */
enum sb_route_policy {
    SB_ROUTE_LEAST_OCCUPIED, /* lowest load/capacity summed over channels, then idle */
    SB_ROUTE_LONGEST_IDLE,   /* agents with no work first, then oldest last change */
    SB_ROUTE_HIGHEST_SKILL   /* highest sum of levels of the required skills, then least
                                occupied */
};

struct sb_route_cfg {
    int policy; /* enum sb_route_policy (SB_ROUTE_LONGEST_IDLE) */
    /* Lowest level at which a skill counts as primary (3): stage 0 of a queue takes only
     * agents whose every required skill is at least this; stage 1 takes any level. */
    int primary_level;
    /* Aging: tickets are served in order of arrival + band_delay_us[band - 1], earliest
     * first, so P1 goes first among equal waits and a P3 ticket that has waited
     * band_delay_us[2] - band_delay_us[0] overtakes a new P1 (nothing starves).
     * Defaults: the first-response targets of SPEC.md §2, 10 min, 1 h, 4 h, 24 h. */
    int64_t band_delay_us[SB_ROUTE_BANDS];
    /* Overflow: after overflow_us[band - 1][0] of waiting a ticket also goes to agents
     * with the skills at a secondary level; after [1] to other teams, without the skills
     * the ticket marked relaxable. Negative: never. Defaults P1 30 s / 2 min, P2 2 min /
     * 10 min, P3 10 min / 30 min, P4 30 min / 2 h. */
    int64_t overflow_us[SB_ROUTE_BANDS][2];
    /* Continuity: how long a returning customer waits for their last agent when that
     * agent is logged in but full (60 s). 0: only when the agent is free right now. */
    int64_t continuity_wait_us;
    /* Heap entries examined when the best candidate is an agent the ticket avoids
     * (32, 1..64). */
    int exclusion_search;
    uint32_t max_queues; /* distinct requirements (65536) */
    uint32_t max_names;  /* distinct skill and team names (65536) */
};

/* Fills cfg with the defaults above. */
void sb_route_cfg_default(struct sb_route_cfg *cfg);

struct sb_route_skill {
    const char *name; /* e.g. "domain:logistics", "lang:zh", "product:cloud" */
    int level;        /* 1..SB_ROUTE_LEVEL_MAX */
};

/* An agent as the roster describes it. Languages and product lines are skills too. */
struct sb_route_agent_spec {
    const char *id;
    const char *team; /* NULL or "": in no team */
    const struct sb_route_skill *skills;
    size_t nskills;
    int capacity[SB_ROUTE_CH_COUNT]; /* 0: does not take that channel */
    uint64_t tag;                    /* the caller's data, returned in decisions */
};

/* A ticket to route. */
struct sb_route_ticket_spec {
    const char *id;
    int channel;      /* enum sb_route_channel */
    int band;         /* 1 (P1) .. 4 (P4) */
    const char *team; /* dedicated team (VIP, core product line) or NULL */
    const char *skills[SB_ROUTE_MAX_REQ];
    size_t nskills;
    unsigned relax_mask;         /* bit i: skills[i] is dropped at stage 2 */
    const char *preferred_agent; /* continuity: this customer's last agent, or NULL */
    int64_t arrived_us;          /* when the customer began to wait (≤ now) */
    uint64_t tag;                /* the caller's data, returned in decisions */
};

enum sb_route_decision_kind {
    SB_ROUTE_ASSIGNED = 1,  /* the ticket now holds one unit of the agent's capacity */
    SB_ROUTE_OVERFLOWED = 2 /* the ticket moved to a wider queue (stage 1 or 2) */
};

struct sb_route_decision {
    int kind;
    char ticket_id[SB_ROUTE_ID_MAX + 1];
    char agent_id[SB_ROUTE_ID_MAX + 1]; /* ASSIGNED; "" otherwise */
    uint64_t ticket_tag, agent_tag;
    int channel, band;
    int stage;      /* the stage the ticket was in when assigned, or the new stage */
    int continuity; /* ASSIGNED to the preferred (or suggested) agent */
    int64_t at_us;
    int64_t waited_us; /* at_us - arrived_us */
};

enum sb_route_ticket_state {
    SB_ROUTE_T_WAITING_AGENT = 1, /* waiting for its preferred agent (continuity) */
    SB_ROUTE_T_QUEUED = 2,
    SB_ROUTE_T_ASSIGNED = 3
};

struct sb_route_ticket_info {
    int state; /* enum sb_route_ticket_state */
    int channel, band, stage;
    char agent_id[SB_ROUTE_ID_MAX + 1]; /* ASSIGNED, or the agent it waits for */
    uint32_t queue;                     /* QUEUED: index for sb_route_queue_get() */
    uint64_t position;                  /* QUEUED: tickets ahead in that queue */
    int64_t arrived_us;
};

struct sb_route_queue_info {
    int channel;
    int min_level;
    char team[SB_ROUTE_ID_MAX + 1]; /* "" when any team */
    size_t nskills;
    char skills[SB_ROUTE_MAX_REQ][SB_ROUTE_ID_MAX + 1];
    uint64_t waiting;        /* tickets in the queue */
    int64_t oldest_us;       /* arrival of the longest-waiting ticket, when waiting > 0 */
    uint32_t members;        /* agents eligible for it */
    uint32_t available;      /* …of which available */
    uint32_t free;           /* …of which with free capacity on its channel */
    uint64_t assigned_total; /* assignments made from it */
};

struct sb_route_agent_info {
    int presence;
    int capacity[SB_ROUTE_CH_COUNT];
    int load[SB_ROUTE_CH_COUNT];
    int64_t since_us; /* last change of load or presence */
    uint32_t queues;  /* queues the agent is eligible for */
    uint64_t waiting; /* tickets waiting for this agent (continuity) */
};

struct sb_router;

/* Creates an empty router (new; free with sb_route_destroy). cfg is copied. Returns
 * NULL with errstr set when cfg is invalid. */
struct sb_router *sb_route_new(const struct sb_route_cfg *cfg, char *errstr, size_t errstr_size);

/* Frees the router and everything in it. Accepts NULL. */
void sb_route_destroy(struct sb_router *r);

/* Adds an agent or replaces its team, skills, capacities and tag (load and presence are
 * kept; a new agent starts offline). Costs one pass over the queues. A capacity lowered
 * below the current load takes nothing new until the load falls under it. Returns 0,
 * SB_E_INVAL or SB_E_TOOBIG with errstr set. */
int sb_route_agent_set(struct sb_router *r, const struct sb_route_agent_spec *spec, int64_t now_us,
                       char *errstr, size_t errstr_size);

/* Sets an agent's presence (enum sb_route_presence); becoming available routes waiting
 * tickets to it. Returns 0, SB_E_NOENT (unknown agent) or SB_E_INVAL. */
int sb_route_agent_presence(struct sb_router *r, const char *agent_id, int presence,
                            int64_t now_us);

/* Routes a new ticket: to its preferred agent when free, else to the best free eligible
 * agent of its queue, else it waits (for its preferred agent up to the continuity
 * wait, then in its queue). Returns 0, SB_E_CONFLICT (id already known), SB_E_INVAL or
 * SB_E_TOOBIG with errstr set. */
int sb_route_ticket_add(struct sb_router *r, const struct sb_route_ticket_spec *spec,
                        int64_t now_us, char *errstr, size_t errstr_size);

/* Records a ticket that is already assigned (rebuilding state after a restart): it
 * takes one unit of the agent's capacity and makes no decision. Returns 0,
 * SB_E_CONFLICT (id known, or the agent has no free capacity on that channel),
 * SB_E_NOENT (unknown agent), SB_E_INVAL or SB_E_TOOBIG with errstr set. */
int sb_route_ticket_restore(struct sb_router *r, const struct sb_route_ticket_spec *spec,
                            const char *agent_id, int64_t now_us, char *errstr, size_t errstr_size);

/* Forgets a ticket (resolved, transferred, merged, withdrawn): a queued ticket leaves its
 * queue; an assigned one gives its capacity back and the agent takes the next ticket.
 * Returns 0 or SB_E_NOENT. */
int sb_route_ticket_done(struct sb_router *r, const char *ticket_id, int64_t now_us);

/* An offer that was declined or expired: the agent's capacity comes back, the ticket
 * avoids that agent from now on (the last SB_ROUTE_MAX_EXCLUDE of them) and is routed
 * again with its original arrival, so it keeps its place; suggested_agent (or NULL), a
 * colleague the decliner named, gets it first when free. Returns 0, SB_E_NOENT or
 * SB_E_STATE (the ticket is not assigned). */
int sb_route_ticket_requeue(struct sb_router *r, const char *ticket_id, const char *suggested_agent,
                            int64_t now_us);

/* Changes the band of a ticket (rescoring, supervisor override); a waiting ticket is
 * reordered. Returns 0, SB_E_NOENT or SB_E_INVAL. */
int sb_route_ticket_rescore(struct sb_router *r, const char *ticket_id, int band, int64_t now_us);

/* An agent takes a waiting ticket themselves. Returns 0, SB_E_NOENT, SB_E_STATE (already
 * assigned) or SB_E_CONFLICT (no free capacity on that channel). */
int sb_route_ticket_claim(struct sb_router *r, const char *ticket_id, const char *agent_id,
                          int64_t now_us);

/* Applies every timer due by now_us (continuity waits ending, overflow stages), each at
 * its own deadline. Every other call does this first, so the decisions of the timers
 * come before the call's own (a ticket may overflow and be assigned just before the
 * call meant for it while it waited): call it on every poll so that what the caller
 * knows of its tickets stays current. Returns 0. */
int sb_route_tick(struct sb_router *r, int64_t now_us);

/* The earliest pending timer in *deadline_us: returns 0, or SB_E_NOENT when none. */
int sb_route_next_deadline(const struct sb_router *r, int64_t *deadline_us);

/* Moves up to max pending decisions, oldest first, into out; returns how many. */
size_t sb_route_poll(struct sb_router *r, struct sb_route_decision *out, size_t max);

/* Pending decisions not yet polled. */
size_t sb_route_pending(const struct sb_router *r);

/* Describes a ticket; the position costs the number of tickets ahead of it. Returns 0
 * or SB_E_NOENT. */
int sb_route_ticket_get(const struct sb_router *r, const char *ticket_id,
                        struct sb_route_ticket_info *out);

/* Describes an agent. Returns 0 or SB_E_NOENT. */
int sb_route_agent_get(const struct sb_router *r, const char *agent_id,
                       struct sb_route_agent_info *out);

/* Queues are created on demand, one per distinct (channel, team, level, skills). */
size_t sb_route_queue_count(const struct sb_router *r);
int sb_route_queue_get(const struct sb_router *r, size_t i, struct sb_route_queue_info *out);
/* Agents of queue i available now (0 when no such queue); constant time, unlike
 * sb_route_queue_get, which finds the oldest arrival. */
uint32_t sb_route_queue_available(const struct sb_router *r, size_t i);

/* Tickets currently waiting (queued or for their preferred agent). */
uint64_t sb_route_waiting(const struct sb_router *r);

/* Channel names ("voice", "chat", "email", "social", "form", "task") and back; returns
 * the channel or SB_E_INVAL. */
const char *sb_route_channel_name(int channel);
int sb_route_channel_parse(const char *name);
const char *sb_route_presence_name(int presence);
int sb_route_presence_parse(const char *name);
const char *sb_route_policy_name(int policy);
int sb_route_policy_parse(const char *name);

/* How triaged fields become a ticket's requirements: a VIP goes to vip_team, a core
 * product line to its dedicated team; the skills are "domain:<domain>", "lang:<lang>"
 * and "product:<line>", the product line being relaxable at stage 2 (another team knows
 * the domain, not necessarily the product). */
struct sb_route_rules {
    const char *vip_team;    /* NULL: VIPs have no dedicated team */
    const char **core_lines; /* product lines with a dedicated team… */
    const char **core_teams; /* …and that team */
    size_t ncore;
};

/* Storage for the strings of a spec filled by sb_route_spec_fill. */
struct sb_route_req {
    char skill[SB_ROUTE_MAX_REQ][SB_ROUTE_ID_MAX + 1];
};

/* Fills spec->skills, nskills, relax_mask and team from the triaged fields (each may be
 * NULL or ""); the strings point into req and rules, which must outlive spec. Leaves the
 * other fields alone. Returns 0 or SB_E_TOOBIG (a name too long). */
int sb_route_spec_fill(const struct sb_route_rules *rules, const char *domain, const char *language,
                       const char *product_line, int vip, struct sb_route_req *req,
                       struct sb_route_ticket_spec *spec);

#endif
