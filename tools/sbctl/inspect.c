/* sbctl inspect ticket ID: the ticket's current row (tickets) and its event timeline
 * (ticket_events, ordered by occurred_at), printed as one indented JSON document:
 *   {"ticket": {...} or null, "events": [{event_id, type, occurred_at, producer,
 *    topic, partition, offset, payload}, ...]}
 * Exit 1 when neither a row nor an event exists for ID. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 200

static const char sql_ticket[] =
    "SELECT json_build_object("
    "'ticket', (SELECT row_to_json(t) FROM tickets t WHERE t.id = $1), "
    "'events', coalesce((SELECT json_agg(json_build_object('event_id', e.event_id, 'type', "
    "e.type, 'occurred_at', e.occurred_at, 'producer', e.producer, 'trace_id', e.trace_id, "
    "'topic', e.topic, 'partition', e.partition, 'offset', e.\"offset\", 'received_at', "
    "e.received_at, 'payload', e.payload) ORDER BY e.occurred_at, e.event_id) "
    "FROM ticket_events e WHERE e.ticket_id = $1), '[]'::json))";

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl inspect ticket ID\n"
                 "\n"
                 "Prints the ticket's current row and its events (oldest first) as JSON.\n"
                 "Exit status 1 when nothing is known about ID.\n");
}

/* Prints the document indented when it has a ticket or events. Returns 1 when it was
 * printed, 0 when there is nothing to show. */
static int print_doc(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    char *out = NULL;
    int found;

    if (doc == NULL) {
        printf("%s\n", text); /* not expected from json_build_object: show it as it is */
        return 1;
    }
    found = !json_is_null(json_object_get(doc, "ticket")) ||
            json_array_size(json_object_get(doc, "events")) > 0;
    if (found)
        out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (out != NULL)
        printf("%s\n", out);
    free(out);
    json_decref(doc);
    return found;
}

int sbctl_inspect(struct sbctl *ctl, int argc, char **argv)
{
    const char *params[1];
    struct sb_pg *pg;
    PGresult *res;
    char err[512];
    int e = 0, found;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    if (argc != 2 || strcmp(argv[0], "ticket") != 0) {
        fprintf(stderr, "sbctl inspect: expected \"ticket ID\" (see sbctl inspect --help)\n");
        return SBCTL_EXIT_USAGE;
    }
    if (argv[1][0] == '\0' || strlen(argv[1]) > ID_MAX) {
        fprintf(stderr, "sbctl inspect: a ticket id has 1 to %d characters\n", ID_MAX);
        return SBCTL_EXIT_USAGE;
    }
    pg = sbctl_pg(ctl);
    if (pg == NULL)
        return SBCTL_EXIT_FAIL;
    params[0] = argv[1];
    res = sb_pg_query(pg, sql_ticket, 1, params, &e, err, sizeof(err));
    sb_pg_destroy(pg);
    if (res == NULL) {
        fprintf(stderr, "sbctl inspect: %s\n", err);
        return SBCTL_EXIT_FAIL;
    }
    found = print_doc(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!found) {
        fprintf(stderr, "sbctl inspect: no ticket \"%s\"\n", argv[1]);
        return SBCTL_EXIT_FAIL;
    }
    return SBCTL_EXIT_OK;
}
