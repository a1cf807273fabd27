/* The roster as the SLA watcher needs it (tables teams and agents): which team an agent
 * belongs to, who leads and supervises a team, and which calendar the team's business
 * time counts on. It answers two questions of the service: which team a routing input
 * makes known for a ticket (the agent it was assigned to, the team it was transferred
 * to, the team part of its queue), and whom an escalation names (sla.escalated
 * to_agent_id: the team lead at level lead, the supervisor at level supervisor).
 *
 * Built from plain rows the service reads from PostgreSQL; immutable once built (swap
 * whole rosters on reload). Lookups are binary searches over sorted copies. Pure logic. */
#ifndef SB_SLAWATCH_ROSTER_H
#define SB_SLAWATCH_ROSTER_H

#include "calendar.h"
#include "sla.h"

#include <stdbool.h>
#include <stddef.h>

#define SB_SLA_ID_MAX 64 /* team and agent ids, NUL included */
#define SB_SLA_ROSTER_MAX 1000000

/* One team. Empty strings: none. calendar is the id of the calendar its business time
 * counts on (the service's key of the team's calendar, see docs/slawatch.md). */
struct sb_sla_team_row {
    char id[SB_SLA_ID_MAX];
    char lead[SB_SLA_ID_MAX];
    char supervisor[SB_SLA_ID_MAX];
    char calendar[SB_CAL_ID_MAX];
};

/* One agent and their team ("": none). */
struct sb_sla_agent_row {
    char id[SB_SLA_ID_MAX];
    char team[SB_SLA_ID_MAX];
};

struct sb_sla_roster;

/* Builds a roster from rows (copied). Returns a new roster, or NULL with the reason in
 * errstr: an empty or repeated id, more than SB_SLA_ROSTER_MAX rows of a kind. */
struct sb_sla_roster *sb_sla_roster_new(const struct sb_sla_team_row *teams, size_t nteams,
                                        const struct sb_sla_agent_row *agents, size_t nagents,
                                        char *errstr, size_t errstr_size);

/* An empty roster (no team is known). Never NULL. */
struct sb_sla_roster *sb_sla_roster_empty(void);

void sb_sla_roster_destroy(struct sb_sla_roster *r);

size_t sb_sla_roster_teams(const struct sb_sla_roster *r);
size_t sb_sla_roster_agents(const struct sb_sla_roster *r);

/* The team of that id (borrowed from the roster) or NULL. */
const struct sb_sla_team_row *sb_sla_roster_team(const struct sb_sla_roster *r, const char *id);

/* The team id of an agent (borrowed), or NULL for an agent unknown or in no team. */
const char *sb_sla_roster_agent_team(const struct sb_sla_roster *r, const char *agent_id);

/* True when the agent is in the roster. */
bool sb_sla_roster_has_agent(const struct sb_sla_roster *r, const char *agent_id);

/* The team a routing input makes known, in this order: team (a transfer's to_team), the
 * team of agent (the agent assigned, or a transfer's to_agent), the team part of queue
 * ("<team>/<domain>", "any" names none). Each only when the roster knows the team; NULL
 * or "" skips an argument. Returns the team id (borrowed from the roster) or NULL. */
const char *sb_sla_roster_resolve(const struct sb_sla_roster *r, const char *team,
                                  const char *agent, const char *queue);

/* Whom an escalation to level names: the team's lead at SB_LEVEL_LEAD, its supervisor at
 * SB_LEVEL_SUPERVISOR. Returns the agent id (borrowed) or NULL when the team or the
 * person is unknown, or the id is not a valid event agent id (^[A-Za-z0-9._-]{1,63}$). */
const char *sb_sla_roster_escalation_to(const struct sb_sla_roster *r, const char *team_id,
                                        enum sb_sla_level level);

/* The team part of a queue name "<team>/<domain>" into out. Returns 0, or SB_E_NOENT for
 * "any", a queue without '/' or an empty team, SB_E_TOOBIG when it does not fit. */
int sb_sla_queue_team(const char *queue, char *out, size_t out_size);

#endif
