/* sbctl report: the scheduled reports and QA sampling on demand (the same SQL functions
 * sb-reporter runs on schedule, migration 0006):
 *   sbctl report generate daily|weekly|monthly [--date YYYY-MM-DD]
 *   sbctl report show daily|weekly|monthly [--date YYYY-MM-DD] [--format json|csv|html]
 *   sbctl report qa [--date YYYY-MM-DD] [--share 0.2] [--seed 1]
 * The date picks the period that holds it (default: today). */
#include "sbctl.h"

#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl report generate KIND [--date YYYY-MM-DD]\n"
                 "       sbctl report show KIND [--date YYYY-MM-DD] [--format json|csv|html]\n"
                 "       sbctl report qa [--date YYYY-MM-DD] [--share 0.2] [--seed 1]\n"
                 "\n"
                 "KIND is daily, weekly (Friday to Thursday) or monthly; the date picks the\n"
                 "period that holds it (default today). Regenerating a period gives the same\n"
                 "content. qa draws the day's QA sample (a share of the conversations, every\n"
                 "agent covered each week); the same day and seed give the same sample.\n");
}

/* Runs one query and prints its single value. Returns the exit code. */
static int run_value(const struct sbctl *ctl, const char *sql, int nparams, const char **params,
                     const char *what)
{
    struct sb_pg *pg = sbctl_pg(ctl);
    PGresult *res;
    char err[512];
    int perr = 0, rc = SBCTL_EXIT_OK;

    if (pg == NULL)
        return SBCTL_EXIT_FAIL;
    res = sb_pg_query(pg, sql, nparams, params, &perr, err, sizeof(err));
    if (res == NULL) {
        fprintf(stderr, "sbctl report: %s\n", err);
        rc = SBCTL_EXIT_FAIL;
    } else if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        fprintf(stderr, "sbctl report: no %s\n", what);
        rc = SBCTL_EXIT_FAIL;
    } else {
        printf("%s\n", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    sb_pg_destroy(pg);
    return rc;
}

int sbctl_report(struct sbctl *ctl, int argc, char **argv)
{
    const char *date = NULL, *format = "json", *share = "0.2", *seed = "1", *kind = NULL;
    int i = 1;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    if (argc < 1) {
        usage(stderr);
        return SBCTL_EXIT_USAGE;
    }
    if (strcmp(argv[0], "qa") != 0) {
        if (argc < 2 || (strcmp(argv[1], "daily") != 0 && strcmp(argv[1], "weekly") != 0 &&
                         strcmp(argv[1], "monthly") != 0)) {
            fprintf(stderr, "sbctl report: KIND must be daily, weekly or monthly\n");
            return SBCTL_EXIT_USAGE;
        }
        kind = argv[1];
        i = 2;
    }
    for (; i < argc; i++) {
        const char **dst = strcmp(argv[i], "--date") == 0     ? &date
                           : strcmp(argv[i], "--format") == 0 ? &format
                           : strcmp(argv[i], "--share") == 0  ? &share
                           : strcmp(argv[i], "--seed") == 0   ? &seed
                                                              : NULL;
        if (dst == NULL || i + 1 >= argc) {
            fprintf(stderr, "sbctl report: unexpected \"%s\" (see sbctl report --help)\n", argv[i]);
            return SBCTL_EXIT_USAGE;
        }
        *dst = argv[++i];
    }
    if (strcmp(format, "json") != 0 && strcmp(format, "csv") != 0 && strcmp(format, "html") != 0) {
        fprintf(stderr, "sbctl report: --format must be json, csv or html\n");
        return SBCTL_EXIT_USAGE;
    }
    if (strcmp(argv[0], "generate") == 0) {
        const char *p[] = {kind, date};
        return run_value(ctl,
                         "SELECT format('report %s: %s %s to %s', "
                         "sb_report_generate($1, coalesce($2::date, current_date)), $1, "
                         "p.period_start, p.period_end) "
                         "FROM sb_report_period($1, coalesce($2::date, current_date)) p",
                         2, p, "report");
    }
    if (strcmp(argv[0], "show") == 0) {
        const char *p[] = {kind, date, format};
        return run_value(ctl,
                         "SELECT CASE $3 WHEN 'csv' THEN r.csv WHEN 'html' THEN r.html "
                         "ELSE jsonb_pretty(r.content) END FROM reports r, "
                         "sb_report_period($1, coalesce($2::date, current_date)) p "
                         "WHERE r.kind = $1 AND r.period_start = p.period_start",
                         3, p, "such report (generate it first)");
    }
    if (strcmp(argv[0], "qa") == 0) {
        const char *p[] = {date, share, seed};
        return run_value(ctl,
                         "SELECT format('%s conversations sampled for QA', "
                         "sb_qa_sample(coalesce($1::date, current_date), $2::numeric, "
                         "$3::bigint))",
                         3, p, "sample");
    }
    usage(stderr);
    return SBCTL_EXIT_USAGE;
}
