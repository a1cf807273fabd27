/* The roster of the SLA watcher: teams and agents sorted by id; see roster.h. */
#include "roster.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

struct sb_sla_roster {
    struct sb_sla_team_row *teams; /* sorted by id */
    size_t nteams;
    struct sb_sla_agent_row *agents; /* sorted by id */
    size_t nagents;
};

static int cmp_team(const void *a, const void *b)
{
    return strcmp(((const struct sb_sla_team_row *)a)->id, ((const struct sb_sla_team_row *)b)->id);
}

static int cmp_agent(const void *a, const void *b)
{
    return strcmp(((const struct sb_sla_agent_row *)a)->id,
                  ((const struct sb_sla_agent_row *)b)->id);
}

struct sb_sla_roster *sb_sla_roster_empty(void)
{
    return sb_calloc(1, sizeof(struct sb_sla_roster));
}

struct sb_sla_roster *sb_sla_roster_new(const struct sb_sla_team_row *teams, size_t nteams,
                                        const struct sb_sla_agent_row *agents, size_t nagents,
                                        char *errstr, size_t errstr_size)
{
    struct sb_sla_roster *r;

    if (nteams > SB_SLA_ROSTER_MAX || nagents > SB_SLA_ROSTER_MAX) {
        sb_fmt(errstr, errstr_size, "roster: more than %d teams or agents", SB_SLA_ROSTER_MAX);
        return NULL;
    }
    r = sb_sla_roster_empty();
    r->teams = sb_calloc(nteams + 1, sizeof(*r->teams));
    r->agents = sb_calloc(nagents + 1, sizeof(*r->agents));
    if (nteams > 0)
        memcpy(r->teams, teams, nteams * sizeof(*teams));
    if (nagents > 0)
        memcpy(r->agents, agents, nagents * sizeof(*agents));
    r->nteams = nteams;
    r->nagents = nagents;
    /* Rows come from outside: every string is made terminated before it is compared. */
    for (size_t i = 0; i < nteams; i++) {
        struct sb_sla_team_row *t = &r->teams[i];
        t->id[sizeof(t->id) - 1] = t->lead[sizeof(t->lead) - 1] = '\0';
        t->supervisor[sizeof(t->supervisor) - 1] = t->calendar[sizeof(t->calendar) - 1] = '\0';
    }
    for (size_t i = 0; i < nagents; i++) {
        struct sb_sla_agent_row *a = &r->agents[i];
        a->id[sizeof(a->id) - 1] = a->team[sizeof(a->team) - 1] = '\0';
    }
    qsort(r->teams, nteams, sizeof(*r->teams), cmp_team);
    qsort(r->agents, nagents, sizeof(*r->agents), cmp_agent);
    for (size_t i = 0; i < nteams; i++) {
        if (r->teams[i].id[0] == '\0' ||
            (i > 0 && strcmp(r->teams[i].id, r->teams[i - 1].id) == 0)) {
            sb_fmt(errstr, errstr_size, "roster: team id \"%s\" empty or repeated", r->teams[i].id);
            sb_sla_roster_destroy(r);
            return NULL;
        }
    }
    for (size_t i = 0; i < nagents; i++) {
        if (r->agents[i].id[0] == '\0' ||
            (i > 0 && strcmp(r->agents[i].id, r->agents[i - 1].id) == 0)) {
            sb_fmt(errstr, errstr_size, "roster: agent id \"%s\" empty or repeated",
                   r->agents[i].id);
            sb_sla_roster_destroy(r);
            return NULL;
        }
    }
    return r;
}

void sb_sla_roster_destroy(struct sb_sla_roster *r)
{
    if (r == NULL)
        return;
    free(r->teams);
    free(r->agents);
    free(r);
}

size_t sb_sla_roster_teams(const struct sb_sla_roster *r)
{
    return r->nteams;
}

size_t sb_sla_roster_agents(const struct sb_sla_roster *r)
{
    return r->nagents;
}

const struct sb_sla_team_row *sb_sla_roster_team(const struct sb_sla_roster *r, const char *id)
{
    struct sb_sla_team_row key;
    /* bsearch takes no NULL array, even an empty one (an empty roster has none). */
    if (r == NULL || r->nteams == 0 || id == NULL || id[0] == '\0' || strlen(id) >= sizeof(key.id))
        return NULL;
    sb_strlcpy(key.id, id, sizeof(key.id));
    return bsearch(&key, r->teams, r->nteams, sizeof(*r->teams), cmp_team);
}

static const struct sb_sla_agent_row *agent_row(const struct sb_sla_roster *r, const char *id)
{
    struct sb_sla_agent_row key;
    if (r == NULL || r->nagents == 0 || id == NULL || id[0] == '\0' || strlen(id) >= sizeof(key.id))
        return NULL;
    sb_strlcpy(key.id, id, sizeof(key.id));
    return bsearch(&key, r->agents, r->nagents, sizeof(*r->agents), cmp_agent);
}

bool sb_sla_roster_has_agent(const struct sb_sla_roster *r, const char *agent_id)
{
    return agent_row(r, agent_id) != NULL;
}

const char *sb_sla_roster_agent_team(const struct sb_sla_roster *r, const char *agent_id)
{
    const struct sb_sla_agent_row *a = agent_row(r, agent_id);
    return a != NULL && a->team[0] != '\0' ? a->team : NULL;
}

int sb_sla_queue_team(const char *queue, char *out, size_t out_size)
{
    const char *slash = queue != NULL ? strchr(queue, '/') : NULL;
    size_t n;

    if (slash == NULL || slash == queue)
        return SB_E_NOENT;
    n = (size_t)(slash - queue);
    if (n >= out_size)
        return SB_E_TOOBIG;
    memcpy(out, queue, n);
    out[n] = '\0';
    return strcmp(out, "any") == 0 ? SB_E_NOENT : 0;
}

const char *sb_sla_roster_resolve(const struct sb_sla_roster *r, const char *team,
                                  const char *agent, const char *queue)
{
    const struct sb_sla_team_row *t = sb_sla_roster_team(r, team);
    char qt[SB_SLA_ID_MAX];

    if (t != NULL)
        return t->id;
    t = sb_sla_roster_team(r, sb_sla_roster_agent_team(r, agent));
    if (t != NULL)
        return t->id;
    if (sb_sla_queue_team(queue, qt, sizeof(qt)) == 0) {
        t = sb_sla_roster_team(r, qt);
        if (t != NULL)
            return t->id;
    }
    return NULL;
}

const char *sb_sla_roster_escalation_to(const struct sb_sla_roster *r, const char *team_id,
                                        enum sb_sla_level level)
{
    const struct sb_sla_team_row *t = sb_sla_roster_team(r, team_id);
    const char *who;

    if (t == NULL)
        return NULL;
    if (level == SB_LEVEL_LEAD)
        who = t->lead;
    else if (level == SB_LEVEL_SUPERVISOR)
        who = t->supervisor;
    else
        return NULL;
    /* The event's agent_id is narrower than the roster's ids (no ':'). */
    return sb_sla_ticket_id_valid(who) ? who : NULL;
}
