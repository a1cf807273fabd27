/* sbctl load policies: SLA targets (table sla_policies). One row per situation: kind
 * (band, or a special clock kind of SPEC §3-§4), and optionally band, channel, team
 * and period_kind to narrow it (absent = any); then the targets first_response_s,
 * resolution_s or resolution_business_days (at least one), business_time,
 * warn_fractions ("0.75;0.9", ascending, each in (0, 1)) and notify_at_start.
 * A row is identified by (kind, band, channel, team, period_kind): loading it again
 * updates its targets. */
#include "load.h"

#include "sb/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGET_S (400LL * 86400)
#define MAX_BUSINESS_DAYS 366

static const char *const fields[] = {"kind",
                                     "band",
                                     "channel",
                                     "team",
                                     "period_kind",
                                     "first_response_s",
                                     "resolution_s",
                                     "resolution_business_days",
                                     "business_time",
                                     "warn_fractions",
                                     "notify_at_start",
                                     NULL};

/* "band" carries the per-band first-response and resolution targets; the others are
 * the clock kinds of proto/events (defs.schema.json "clock_kind"). */
static const char *const kinds[] = {"band",
                                    "first_touch",
                                    "claim",
                                    "order_anomaly_contact",
                                    "return_review",
                                    "complex_complaint",
                                    "after_sale_first_response",
                                    "public_negative",
                                    "incident_report",
                                    NULL};
static const char *const bands[] = {"P1", "P2", "P3", "P4", NULL};
static const char *const channels[] = {"chat",   "email", "phone", "wechat",
                                       "social", "web",   "api",   NULL};
static const char *const periods[] = {"promotion_peak", "outage", NULL};
static const char *const levels[] = {"lead", "supervisor", NULL};

struct policy {
    char kind[64], band[8], channel[16], team[64], period[32], notify[16];
    char first_response[24], resolution[24], business_days[8];
    int business_time;
    char warn[LOAD_ARRAY_MAX]; /* "" when absent: the table's default applies */
};

#define SQL_UPSERT_TAIL                                                                            \
    "ON CONFLICT ON CONSTRAINT sla_policies_key DO UPDATE SET first_response_s = "                 \
    "excluded.first_response_s, resolution_s = excluded.resolution_s, "                            \
    "resolution_business_days = excluded.resolution_business_days, business_time = "               \
    "excluded.business_time, warn_fractions = excluded.warn_fractions, notify_at_start = "         \
    "excluded.notify_at_start, updated_at = now() WHERE (sla_policies.first_response_s, "          \
    "sla_policies.resolution_s, sla_policies.resolution_business_days, "                           \
    "sla_policies.business_time, sla_policies.warn_fractions, sla_policies.notify_at_start) IS "   \
    "DISTINCT FROM (excluded.first_response_s, excluded.resolution_s, "                            \
    "excluded.resolution_business_days, excluded.business_time, excluded.warn_fractions, "         \
    "excluded.notify_at_start)"

/* Without warn_fractions the column default is inserted (and, on conflict, excluded
 * carries that default), so the default lives in one place: the schema. */
static const char sql_policy[] =
    "INSERT INTO sla_policies (kind, band, channel, team_id, period_kind, first_response_s, "
    "resolution_s, resolution_business_days, business_time, notify_at_start) VALUES ($1, $2, "
    "$3, $4, $5, $6, $7, $8, $9, $10) " SQL_UPSERT_TAIL;
static const char sql_policy_warn[] =
    "INSERT INTO sla_policies (kind, band, channel, team_id, period_kind, first_response_s, "
    "resolution_s, resolution_business_days, business_time, notify_at_start, warn_fractions) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::numeric[]) " SQL_UPSERT_TAIL;
static const char sql_team_exists[] = "SELECT 1 FROM teams WHERE id = $1";

/* A fraction strictly between 0 and 1 with at most 4 decimals: "0.75", ".9". */
static int valid_fraction(const char *s)
{
    size_t d = 0;

    if (s[0] == '0')
        s++;
    if (s[0] != '.')
        return 0;
    for (s++; isdigit((unsigned char)s[d]); d++)
        ;
    return d >= 1 && d <= 4 && s[d] == '\0' && strspn(s, "0") < d;
}

static int parse_warn(struct load_ctx *c, const struct load_row *r, struct policy *p)
{
    json_t *items = NULL, *item;
    double prev = 0;
    size_t i;
    int rc = load_list(c, r, "warn_fractions", valid_fraction, "a fraction such as 0.75", &items);

    if (rc != 1)
        return rc;
    json_array_foreach(items, i, item)
    {
        double f = strtod(json_string_value(item), NULL);
        if (f <= prev) {
            load_error(c, r->line, "warn_fractions", "fractions must be ascending");
            rc = -1;
            break;
        }
        prev = f;
    }
    if (rc == 1 &&
        (json_array_size(items) == 0 || load_pg_array(items, p->warn, sizeof(p->warn)) != 0)) {
        load_error(c, r->line, "warn_fractions", "one to a few fractions expected");
        rc = -1;
    }
    json_decref(items);
    return rc;
}

/* The targets: at least one; seconds or business days for the resolution, not both. */
static int parse_targets(struct load_ctx *c, const struct load_row *r, struct policy *p)
{
    int64_t v;
    int fr, res, days;

    fr = load_int(c, r, "first_response_s", 0, 1, MAX_TARGET_S, &v);
    if (fr == 1)
        sb_fmt(p->first_response, sizeof(p->first_response), "%lld", (long long)v);
    res = load_int(c, r, "resolution_s", 0, 1, MAX_TARGET_S, &v);
    if (res == 1)
        sb_fmt(p->resolution, sizeof(p->resolution), "%lld", (long long)v);
    days = load_int(c, r, "resolution_business_days", 0, 1, MAX_BUSINESS_DAYS, &v);
    if (days == 1)
        sb_fmt(p->business_days, sizeof(p->business_days), "%lld", (long long)v);
    if (fr < 0 || res < 0 || days < 0)
        return -1;
    if (fr == 0 && res == 0 && days == 0) {
        load_error(c, r->line, "first_response_s",
                   "a target is required (first_response_s, resolution_s or "
                   "resolution_business_days)");
        return -1;
    }
    if (res == 1 && days == 1) {
        load_error(c, r->line, "resolution_business_days",
                   "give resolution_s or resolution_business_days, not both");
        return -1;
    }
    return 0;
}

static int parse(struct load_ctx *c, const struct load_row *r, struct policy *p)
{
    char key[256];
    int bad = 0, rc;

    memset(p, 0, sizeof(*p));
    rc = load_enum(c, r, "kind", kinds, p->kind, sizeof(p->kind));
    if (rc == 0)
        load_error(c, r->line, "kind", "required");
    bad |= rc != 1;
    rc = load_enum(c, r, "band", bands, p->band, sizeof(p->band));
    if (rc == 0 && strcmp(p->kind, "band") == 0)
        load_error(c, r->line, "band", "required when kind is band");
    bad |= rc < 0 || (rc == 0 && strcmp(p->kind, "band") == 0);
    bad |= load_enum(c, r, "channel", channels, p->channel, sizeof(p->channel)) < 0;
    bad |= load_id(c, r, "team", 0, 63, p->team, sizeof(p->team)) < 0;
    bad |= load_enum(c, r, "period_kind", periods, p->period, sizeof(p->period)) < 0;
    bad |= load_enum(c, r, "notify_at_start", levels, p->notify, sizeof(p->notify)) < 0;
    bad |= parse_targets(c, r, p) != 0;
    bad |= load_bool(c, r, "business_time", &p->business_time) < 0;
    bad |= parse_warn(c, r, p) < 0;
    if (!bad) {
        sb_fmt(key, sizeof(key), "%s|%s|%s|%s|%s", p->kind, p->band, p->channel, p->team,
               p->period);
        bad |= load_unique(c, r, "kind", key) != 0; /* same kind, band, channel, team, period */
    }
    return bad ? -1 : 0;
}

static int policy_check(struct load_ctx *c, const struct load_row *r)
{
    struct policy p;

    return parse(c, r, &p);
}

static const char *or_null(const char *s)
{
    return s[0] != '\0' ? s : NULL;
}

/* A policy for a team needs the team (loaded with the agents). */
static int team_exists(struct sb_pg *pg, const char *team, char *err, size_t errsz)
{
    const char *params[1] = {team};
    int e = 0, n;
    PGresult *res = sb_pg_query(pg, sql_team_exists, 1, params, &e, err, errsz);

    if (res == NULL)
        return -1;
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        sb_fmt(err, errsz, "field \"team\": no team \"%s\" (load the agents first)", team);
        return -1;
    }
    return 0;
}

static int policy_write(struct load_ctx *c, struct sb_pg *pg, const struct load_row *r, char *err,
                        size_t errsz)
{
    struct policy p;
    const char *params[11];

    if (parse(c, r, &p) != 0) {
        sb_fmt(err, errsz, "row no longer valid");
        return -1;
    }
    if (p.team[0] != '\0' && team_exists(pg, p.team, err, errsz) != 0)
        return -1;
    params[0] = p.kind;
    params[1] = or_null(p.band);
    params[2] = or_null(p.channel);
    params[3] = or_null(p.team);
    params[4] = or_null(p.period);
    params[5] = or_null(p.first_response);
    params[6] = or_null(p.resolution);
    params[7] = or_null(p.business_days);
    params[8] = p.business_time ? "true" : "false";
    params[9] = or_null(p.notify);
    params[10] = p.warn;
    if (p.warn[0] != '\0')
        return load_exec(pg, sql_policy_warn, 11, params, err, errsz);
    return load_exec(pg, sql_policy, 10, params, err, errsz);
}

const struct load_kind load_policies = {
    .name = "policies",
    .fields = fields,
    .check = policy_check,
    .write = policy_write,
    .committed = NULL,
};
