/* Unit tests of the life-cycle table (services/ingest/lifecycle.c): the collaboration
 * moves (cross-department requests and their decisions, consultation and complaint slips,
 * their answers and replies) and what a customer's follow-up does in each state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lifecycle.h"

#include <string.h>

static const char *const open_states[] = {
    "new", "offered", "claimed", "in_progress", "pending_customer", "reopened", "sent_back"};
static const char *const closed_states[] = {"resolved", "in_review", "awaiting_archive",
                                            "archived"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_collaboration_keeps_open_states(void **state)
{
    static const char *const moves[] = {"request", "decision", "slip", "slip_answer", "slip_reply"};
    (void)state;
    for (size_t i = 0; i < N(open_states); i++) {
        for (size_t m = 0; m < N(moves); m++) {
            const char *next = sb_lifecycle_next(open_states[i], moves[m]);
            if (next == NULL)
                fail_msg("%s refused while %s", moves[m], open_states[i]);
            assert_string_equal(next, open_states[i]);
        }
        /* the hand-over a supervisor approves is a transfer back to routing */
        assert_string_equal(sb_lifecycle_next(open_states[i], "transfer"), "new");
    }
}

static void test_collaboration_after_resolution(void **state)
{
    (void)state;
    /* No new request or slip on a resolved ticket, but a late answer is still taken
     * and passed on to the customer while the ticket is resolved. */
    for (size_t i = 0; i < N(closed_states); i++) {
        assert_null(sb_lifecycle_next(closed_states[i], "request"));
        assert_null(sb_lifecycle_next(closed_states[i], "decision"));
        assert_null(sb_lifecycle_next(closed_states[i], "slip"));
        assert_null(sb_lifecycle_next(closed_states[i], "transfer"));
    }
    assert_string_equal(sb_lifecycle_next("resolved", "slip_answer"), "resolved");
    assert_string_equal(sb_lifecycle_next("resolved", "slip_reply"), "resolved");
    assert_string_equal(sb_lifecycle_next("in_review", "slip_answer"), "in_review");
    assert_string_equal(sb_lifecycle_next("awaiting_archive", "slip_answer"), "awaiting_archive");
    assert_null(sb_lifecycle_next("in_review", "slip_reply"));
    assert_null(sb_lifecycle_next("archived", "slip_answer"));
}

static void test_allowed_lists_collaboration(void **state)
{
    char out[1024];
    (void)state;
    assert_int_equal(sb_lifecycle_allowed("sent_back", out, sizeof(out)), 14);
    assert_string_equal(out, "status:in_progress status:resolved replies notes card priority "
                             "dispute escalate transfer request decision slip slip_answer "
                             "slip_reply");
    assert_int_equal(sb_lifecycle_allowed("archived", out, sizeof(out)), 1);
    assert_string_equal(out, "status:reopened");
}

static void test_followup_resumes_a_pending_ticket(void **state)
{
    (void)state;
    assert_int_equal(sb_lifecycle_followup("pending_customer", -1, 604800), SB_FOLLOWUP_RESUME);
    assert_string_equal(sb_lifecycle_followup_move(SB_FOLLOWUP_RESUME), "status:in_progress");
    assert_string_equal(sb_lifecycle_next("pending_customer", "status:in_progress"), "in_progress");
}

static void test_followup_leaves_worked_tickets(void **state)
{
    static const char *const worked[] = {"new",         "offered",  "claimed",
                                         "in_progress", "reopened", "sent_back"};
    (void)state;
    for (size_t i = 0; i < N(worked); i++)
        assert_int_equal(sb_lifecycle_followup(worked[i], 10, 604800), SB_FOLLOWUP_NONE);
    assert_null(sb_lifecycle_followup_move(SB_FOLLOWUP_NONE));
    assert_null(sb_lifecycle_followup_move(SB_FOLLOWUP_NEW_TICKET));
}

static void test_followup_reopens_within_the_window(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(closed_states); i++) {
        assert_int_equal(sb_lifecycle_followup(closed_states[i], 0, 604800), SB_FOLLOWUP_REOPEN);
        assert_int_equal(sb_lifecycle_followup(closed_states[i], 604800, 604800),
                         SB_FOLLOWUP_REOPEN);
        assert_int_equal(sb_lifecycle_followup(closed_states[i], 604801, 604800),
                         SB_FOLLOWUP_NEW_TICKET);
        /* never resolved (cannot happen for these states): no reopen */
        assert_int_equal(sb_lifecycle_followup(closed_states[i], -1, 604800),
                         SB_FOLLOWUP_NEW_TICKET);
        /* the move is one the table allows from each closed state */
        assert_string_equal(
            sb_lifecycle_next(closed_states[i], sb_lifecycle_followup_move(SB_FOLLOWUP_REOPEN)),
            "reopened");
    }
    /* a window of 0 s reopens nothing once a second has passed */
    assert_int_equal(sb_lifecycle_followup("resolved", 1, 0), SB_FOLLOWUP_NEW_TICKET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collaboration_keeps_open_states),
        cmocka_unit_test(test_collaboration_after_resolution),
        cmocka_unit_test(test_allowed_lists_collaboration),
        cmocka_unit_test(test_followup_resumes_a_pending_ticket),
        cmocka_unit_test(test_followup_leaves_worked_tickets),
        cmocka_unit_test(test_followup_reopens_within_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
