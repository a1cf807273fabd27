/* The ticket life cycle as one table of (state, move, next state) rows, SPEC §5:
 * new → offered → claimed → in_progress ⇄ pending_customer → resolved → in_review →
 * (sent_back → in_progress) → awaiting_archive → archived, and reopened from resolved,
 * in_review, awaiting_archive or archived. new and offered are routing's states (the
 * router offers); every other move is an agent action checked here. A row whose next
 * state is NULL keeps the state (a note, a reply, a decline…). */
#include "lifecycle.h"

#include "sb/util.h"

#include <string.h>

struct row {
    const char *from;
    const char *move;
    const char *to; /* NULL: unchanged */
};

/* Moves that any open, unresolved ticket allows, the state unchanged: besides the
 * owner's own work, the collaboration with other departments (a cross-department request
 * and its decision, consultation and complaint slips, their answers and the reply made
 * from an answer). A transfer hands the ticket back to routing. */
#define WORKING(S)                                                                                 \
    {S, "replies", NULL}, {S, "notes", NULL}, {S, "card", NULL}, {S, "priority", NULL},            \
        {S, "dispute", NULL}, {S, "escalate", NULL}, {S, "transfer", "new"}, {S, "request", NULL}, \
        {S, "decision", NULL}, {S, "slip", NULL}, {S, "slip_answer", NULL},                        \
    {                                                                                              \
        S, "slip_reply", NULL                                                                      \
    }

static const struct row rows[] = {
    /* unclaimed: offered or waiting; an offered agent accepts by claiming or starting */
    {"new", "claim", "claimed"},
    {"new", "decline", NULL},
    {"new", "status:in_progress", "in_progress"},
    WORKING("new"),
    {"offered", "claim", "claimed"},
    {"offered", "decline", NULL},
    {"offered", "status:in_progress", "in_progress"},
    WORKING("offered"),
    {"claimed", "status:in_progress", "in_progress"},
    {"claimed", "status:pending_customer", "pending_customer"},
    {"claimed", "status:resolved", "resolved"},
    WORKING("claimed"),
    {"in_progress", "status:pending_customer", "pending_customer"},
    {"in_progress", "status:resolved", "resolved"},
    WORKING("in_progress"),
    {"pending_customer", "status:in_progress", "in_progress"},
    {"pending_customer", "status:resolved", "resolved"},
    WORKING("pending_customer"),
    {"reopened", "status:in_progress", "in_progress"},
    {"reopened", "status:pending_customer", "pending_customer"},
    {"reopened", "status:resolved", "resolved"},
    WORKING("reopened"),
    {"sent_back", "status:in_progress", "in_progress"},
    {"sent_back", "status:resolved", "resolved"},
    WORKING("sent_back"),
    /* resolved: the CSAT survey is out; submitted to review, or reopened */
    {"resolved", "status:in_review", "in_review"},
    {"resolved", "status:reopened", "reopened"},
    {"resolved", "csat", NULL},
    {"resolved", "notes", NULL},
    {"resolved", "replies", NULL},
    {"resolved", "card", NULL},
    /* a department's answer may come after the resolution; the owner still passes it on */
    {"resolved", "slip_answer", NULL},
    {"resolved", "slip_reply", NULL},
    {"in_review", "review:approved", "awaiting_archive"},
    {"in_review", "review:sent_back", "sent_back"},
    {"in_review", "status:reopened", "reopened"},
    {"in_review", "csat", NULL},
    {"in_review", "notes", NULL},
    {"in_review", "slip_answer", NULL},
    {"awaiting_archive", "status:archived", "archived"},
    {"awaiting_archive", "status:reopened", "reopened"},
    {"awaiting_archive", "csat", NULL},
    {"awaiting_archive", "notes", NULL},
    {"awaiting_archive", "card", NULL},
    {"awaiting_archive", "slip_answer", NULL},
    {"archived", "status:reopened", "reopened"},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

int sb_lifecycle_state_valid(const char *state)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (strcmp(rows[i].from, state) == 0)
            return 1;
    }
    return 0;
}

const char *sb_lifecycle_next(const char *state, const char *move)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (strcmp(rows[i].from, state) == 0 && strcmp(rows[i].move, move) == 0)
            return rows[i].to != NULL ? rows[i].to : rows[i].from;
    }
    return NULL;
}

size_t sb_lifecycle_allowed(const char *state, char *out, size_t outsz)
{
    size_t n = 0;

    if (outsz == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < NROWS; i++) {
        size_t len = strlen(out);
        if (strcmp(rows[i].from, state) != 0)
            continue;
        (void)sb_fmt(out + len, outsz - len, "%s%s", n ? " " : "", rows[i].move);
        n++;
    }
    return n;
}

enum sb_followup sb_lifecycle_followup(const char *state, int64_t since_resolved_s,
                                       int64_t window_s)
{
    if (strcmp(state, "pending_customer") == 0)
        return SB_FOLLOWUP_RESUME;
    if (strcmp(state, "resolved") != 0 && strcmp(state, "in_review") != 0 &&
        strcmp(state, "awaiting_archive") != 0 && strcmp(state, "archived") != 0)
        return SB_FOLLOWUP_NONE;
    /* Closed: the same window as an agent's reopen (sb_lifecycle_next allows
     * status:reopened from each of these states). */
    if (since_resolved_s >= 0 && since_resolved_s <= window_s)
        return SB_FOLLOWUP_REOPEN;
    return SB_FOLLOWUP_NEW_TICKET;
}

const char *sb_lifecycle_followup_move(enum sb_followup f)
{
    switch (f) {
    case SB_FOLLOWUP_RESUME:
        return "status:in_progress";
    case SB_FOLLOWUP_REOPEN:
        return "status:reopened";
    case SB_FOLLOWUP_NONE:
    case SB_FOLLOWUP_NEW_TICKET:
        break;
    }
    return NULL;
}
