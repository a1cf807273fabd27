/* sbctl inspect ticket ID: the ticket's current row and its event timeline as JSON. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdio.h>
#include <string.h>

int sbctl_inspect(struct sbctl *ctl, int argc, char **argv)
{
    const char *sql =
        "SELECT json_build_object('ticket', (SELECT row_to_json(t) FROM tickets t WHERE t.id = "
        "$1), 'events', coalesce((SELECT json_agg(json_build_object('event_id', e.event_id, "
        "'type', e.type, 'occurred_at', e.occurred_at, 'producer', e.producer, 'payload', "
        "e.payload) ORDER BY e.occurred_at, e.event_id) FROM ticket_events e WHERE e.ticket_id "
        "= $1), '[]'::json))";
    const char *params[1];
    struct sb_pg *pg;
    PGresult *res;
    char err[512];
    int e = 0, found;

    if (argc != 2 || sbctl_wants_help(argc, argv) || strcmp(argv[0], "ticket") != 0) {
        printf("Usage: sbctl inspect ticket ID\n\nPrints the ticket and its events as JSON.\n");
        return sbctl_wants_help(argc, argv) ? 0 : 2;
    }
    pg = sbctl_pg(ctl);
    if (pg == NULL)
        return 1;
    params[0] = argv[1];
    res = sb_pg_query(pg, sql, 1, params, &e, err, sizeof(err));
    sb_pg_destroy(pg);
    if (res == NULL) {
        fprintf(stderr, "sbctl inspect: %s\n", err);
        return 1;
    }
    printf("%s\n", PQgetvalue(res, 0, 0));
    found = strstr(PQgetvalue(res, 0, 0), "\"ticket\" : null") == NULL;
    PQclear(res);
    if (!found)
        fprintf(stderr, "sbctl inspect: no ticket %s\n", argv[1]);
    return found ? 0 : 1;
}
