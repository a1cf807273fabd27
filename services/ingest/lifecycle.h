/* The ticket life cycle (docs/lifecycle.md): which agent action may move a ticket from
 * which state, and to which state. Pure logic, no I/O: sb-ingest checks every action
 * against it under the ticket's row lock, the unit tests call it directly. */
#ifndef SB_LIFECYCLE_H
#define SB_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

/* Longest state or move name, with its terminating NUL. */
#define SB_LIFECYCLE_NAME_MAX 32

/* Whether state is one of the life cycle's states (new, offered, claimed, in_progress,
 * pending_customer, resolved, in_review, sent_back, awaiting_archive, archived,
 * reopened). */
int sb_lifecycle_state_valid(const char *state);

/* The state a move leads to from state, or NULL when the move is illegal there. A move
 * is an action name ("claim", "notes"…) or, for status and review, the action and its
 * value ("status:resolved", "review:sent_back"). Returns a static string (the same
 * state when the move keeps it). Thread-safe. */
const char *sb_lifecycle_next(const char *state, const char *move);

/* Writes the moves legal from state, space-separated, to out. Returns their number. */
size_t sb_lifecycle_allowed(const char *state, char *out, size_t outsz);

/* What a customer's new contact does to the ticket intake threaded it onto. */
enum sb_followup {
    SB_FOLLOWUP_NONE,      /* nothing: the ticket is being worked on or not yet claimed */
    SB_FOLLOWUP_RESUME,    /* pending_customer: the customer answered, back to in_progress */
    SB_FOLLOWUP_REOPEN,    /* resolved or later, within the reopen window: reopened */
    SB_FOLLOWUP_NEW_TICKET /* resolved or later, past the window: the contact starts a new one */
};

/* Decides a customer follow-up on a ticket in state, resolved since_resolved_s seconds
 * ago (-1: never), with the reopen window window_s (lifecycle.reopen_window_s).
 * Thread-safe. */
enum sb_followup sb_lifecycle_followup(const char *state, int64_t since_resolved_s,
                                       int64_t window_s);

/* The life-cycle move a follow-up makes ("status:in_progress", "status:reopened"), or
 * NULL for none. Static string. */
const char *sb_lifecycle_followup_move(enum sb_followup f);

#endif
