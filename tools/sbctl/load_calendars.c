/* sbctl load calendars: business calendars (tables calendars, calendar_hours, holidays)
 * and the teams that count on them (teams.calendar_id, teams.timezone). One row per
 * calendar: id, name, timezone (IANA), hours ("mon-fri 09:00-18:00;sat 10:00-16:00"),
 * holidays and working_days (dates, YYYY-MM-DD: days off and compensatory working
 * days) and teams ("support" counts on the calendar in its zone, "support-eu@Europe/
 * Berlin" on its hours in a zone of the team's own). The hours and the dated days of a
 * row are the calendar's complete set: others are removed. Teams must exist (load the
 * agents first); teams not listed keep their calendar. sb-slawatch counts a team's
 * business time on its calendar (docs/slawatch.md, "Teams"). */
#include "load.h"

#include "sb/strbuf.h"
#include "sb/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_SPANS 56    /* 8 intervals a weekday (the watcher's limit) */
#define MAX_DATES 20000 /* holidays and working days of a calendar (the watcher's limit) */
#define MAX_TEAMS 1000  /* teams of a calendar */
#define MAX_ZONE 128    /* bytes of a zone name (the watcher's limit) */
#define MAX_CAL_ID 40   /* leaves room for "@<zone>" in the watcher's 64-byte ids */

static const char *const fields[] = {"id",       "name",         "timezone", "hours",
                                     "holidays", "working_days", "teams",    NULL};

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static const char sql_calendar[] =
    "INSERT INTO calendars (id, name, timezone) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE "
    "SET name = excluded.name, timezone = excluded.timezone WHERE (calendars.name, "
    "calendars.timezone) IS DISTINCT FROM (excluded.name, excluded.timezone)";
static const char sql_hours_prune[] =
    "DELETE FROM calendar_hours h WHERE h.calendar_id = $1 AND NOT EXISTS (SELECT 1 FROM "
    "unnest($2::smallint[], $3::time[]) AS x (weekday, opens) WHERE x.weekday = h.weekday AND "
    "x.opens = h.opens)";
static const char sql_hours[] =
    "INSERT INTO calendar_hours (calendar_id, weekday, opens, closes) SELECT $1, x.weekday, "
    "x.opens, x.closes FROM unnest($2::smallint[], $3::time[], $4::time[]) AS x (weekday, "
    "opens, closes) ON CONFLICT (calendar_id, weekday, opens) DO UPDATE SET closes = "
    "excluded.closes WHERE calendar_hours.closes IS DISTINCT FROM excluded.closes";
static const char sql_days_prune[] =
    "DELETE FROM holidays WHERE calendar_id = $1 AND NOT (day = ANY ($2::date[]))";
static const char sql_days[] =
    "INSERT INTO holidays (calendar_id, day, working_day) SELECT $1, x.day, x.working FROM "
    "unnest($2::date[], $3::boolean[]) AS x (day, working) ON CONFLICT (calendar_id, day) DO "
    "UPDATE SET working_day = excluded.working_day WHERE holidays.working_day IS DISTINCT FROM "
    "excluded.working_day";
static const char sql_team_exists[] = "SELECT 1 FROM teams WHERE id = $1";
static const char sql_team[] =
    "UPDATE teams SET calendar_id = $2, timezone = $3 WHERE id = $1 AND (calendar_id, timezone) "
    "IS DISTINCT FROM ($2, $3)";

/* A weekday name (mon…sun) → 1…7, or 0. */
static int weekday_of(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && strncasecmp(s, day_names[i], 3) == 0)
            return i + 1;
    return 0;
}

/* "HH:MM" (00:00–24:00) → seconds, or -1. */
static int32_t time_of(const char *s, size_t n)
{
    if (n != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return -1;
    return h * 3600 + m * 60;
}

/* "mon-fri 09:00-18:00" or "sat 10:00-16:00": the first and last weekday and the
 * interval. Returns 0 or -1. */
static int parse_span(const char *item, int *from, int *to, int32_t *opens, int32_t *closes)
{
    const char *sp = strchr(item, ' '), *dash, *t;
    if (sp == NULL)
        return -1;
    dash = memchr(item, '-', (size_t)(sp - item));
    *from = weekday_of(item, (size_t)((dash != NULL ? dash : sp) - item));
    *to = dash != NULL ? weekday_of(dash + 1, (size_t)(sp - dash - 1)) : *from;
    t = sp + strspn(sp, " ");
    dash = strchr(t, '-');
    if (*from == 0 || *to < *from || dash == NULL)
        return -1;
    *opens = time_of(t, (size_t)(dash - t));
    *closes = time_of(dash + 1, strlen(dash + 1));
    return *opens >= 0 && *closes > *opens ? 0 : -1;
}

static int valid_span(const char *item)
{
    int a, b;
    int32_t o, c;
    return parse_span(item, &a, &b, &o, &c) == 0;
}

static int valid_date(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return 0;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1971 || y > 9000 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* An IANA zone name of the system's tz database: the watcher reads the same files. */
static int valid_zone(const char *z)
{
    char path[512];
    const char *dir = getenv("TZDIR");
    size_t n = strlen(z);

    if (n == 0 || n >= MAX_ZONE || z[0] == '/' || strstr(z, "..") != NULL ||
        strspn(z, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-/") != n)
        return 0;
    sb_fmt(path, sizeof(path), "%s/%s", dir != NULL && dir[0] ? dir : "/usr/share/zoneinfo", z);
    return access(path, R_OK) == 0;
}

/* "team" or "team@Zone". */
static int valid_team(const char *item)
{
    const char *at = strchr(item, '@');
    size_t n = at != NULL ? (size_t)(at - item) : strlen(item);
    if (n == 0 || n > 63 || !isalnum((unsigned char)item[0]) ||
        strspn(item, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:") < n)
        return 0;
    return at == NULL || valid_zone(at + 1);
}

struct calendar {
    char id[64], name[201], timezone[MAX_ZONE];
    json_t *hours, *holidays, *working, *teams; /* lists of strings, or NULL */
};

static void calendar_clear(struct calendar *k)
{
    json_decref(k->hours);
    json_decref(k->holidays);
    json_decref(k->working);
    json_decref(k->teams);
}

/* A list that repeats an item (an interval's opening, a date, a team) is refused. */
static int check_repeats(struct load_ctx *c, const struct load_row *r, const char *field,
                         json_t *seen, const char *key)
{
    if (json_object_get(seen, key) != NULL) {
        char msg[160];
        sb_fmt(msg, sizeof(msg), "\"%s\" is given twice", key);
        load_error(c, r->line, field, msg);
        return -1;
    }
    json_object_set_new(seen, key, json_true());
    return 0;
}

static int parse(struct load_ctx *c, const struct load_row *r, struct calendar *k)
{
    json_t *seen = json_object(), *item;
    size_t i;
    int bad = 0, rc;

    memset(k, 0, sizeof(*k));
    if (load_id(c, r, "id", 1, MAX_CAL_ID, k->id, sizeof(k->id)) < 0 ||
        load_unique(c, r, "id", k->id) != 0)
        bad = 1;
    rc = load_string(c, r, "name", 200, k->name, sizeof(k->name));
    if (rc == 0)
        sb_strlcpy(k->name, k->id, sizeof(k->name));
    bad |= rc < 0;
    if (load_required(c, r, "timezone", MAX_ZONE - 1, k->timezone, sizeof(k->timezone)) == 1 &&
        !valid_zone(k->timezone)) {
        load_error(c, r->line, "timezone", "not a time zone of the tz database (Asia/Shanghai)");
        bad = 1;
    }
    rc = load_list(c, r, "hours", valid_span, "days and hours such as mon-fri 09:00-18:00",
                   &k->hours);
    if (rc == 0)
        load_error(c, r->line, "hours", "required");
    bad |= rc != 1;
    bad |= load_list(c, r, "holidays", valid_date, "a date YYYY-MM-DD", &k->holidays) < 0;
    bad |= load_list(c, r, "working_days", valid_date, "a date YYYY-MM-DD", &k->working) < 0;
    bad |= load_list(c, r, "teams", valid_team, "a team id, or team@Zone", &k->teams) < 0;
    if (!bad) {
        size_t spans = 0;
        json_array_foreach(k->hours, i, item)
        {
            int a, b;
            int32_t o, cl;
            parse_span(json_string_value(item), &a, &b, &o, &cl);
            for (int d = a; d <= b; d++) {
                char key[32];
                sb_fmt(key, sizeof(key), "%s %02d:%02d", day_names[d - 1], o / 3600, o / 60 % 60);
                bad |= check_repeats(c, r, "hours", seen, key) != 0;
                spans++;
            }
        }
        if (spans > MAX_SPANS) {
            load_error(c, r->line, "hours", "more than 8 intervals a weekday");
            bad = 1;
        }
        if (json_array_size(k->holidays) + json_array_size(k->working) > MAX_DATES) {
            load_error(c, r->line, "holidays", "too many dates");
            bad = 1;
        }
        json_array_foreach(k->holidays, i, item) bad |=
            check_repeats(c, r, "holidays", seen, json_string_value(item)) != 0;
        json_array_foreach(k->working, i, item) bad |=
            check_repeats(c, r, "working_days", seen, json_string_value(item)) != 0;
        if (json_array_size(k->teams) > MAX_TEAMS) {
            load_error(c, r->line, "teams", "too many teams");
            bad = 1;
        }
        json_array_foreach(k->teams, i, item)
        {
            char key[128];
            const char *t = json_string_value(item);
            size_t n = strcspn(t, "@");
            sb_fmt(key, sizeof(key), "team %.*s", (int)n, t);
            /* A team counts on one calendar: listed twice in a file is an error. */
            bad |= load_unique(c, r, "teams", key) != 0;
            /* The watcher names the copy in the team's zone "<id>@<zone>", < 64 bytes. */
            if (t[n] == '@' && strlen(k->id) + strlen(t + n) >= 64) {
                load_error(c, r->line, "teams", "calendar id and team zone too long together");
                bad = 1;
            }
        }
    }
    json_decref(seen);
    return bad ? -1 : 0;
}

static int calendar_check(struct load_ctx *c, const struct load_row *r)
{
    struct calendar k;
    int rc = parse(c, r, &k);
    calendar_clear(&k);
    return rc;
}

/* Appends an element to a PostgreSQL array literal being built in b. */
static void array_add(struct sb_strbuf *b, const char *v)
{
    sb_strbuf_printf(b, "%s\"%s\"", b->len > 1 ? "," : "", v);
}

static int write_hours(struct sb_pg *pg, const struct calendar *k, char *err, size_t errsz)
{
    struct sb_strbuf wd = {0}, op = {0}, cl = {0};
    json_t *item;
    size_t i;
    int rc;

    sb_strbuf_printf(&wd, "{");
    sb_strbuf_printf(&op, "{");
    sb_strbuf_printf(&cl, "{");
    json_array_foreach(k->hours, i, item)
    {
        int a, b;
        int32_t o, c;
        char v[16];
        parse_span(json_string_value(item), &a, &b, &o, &c);
        for (int d = a; d <= b; d++) {
            sb_fmt(v, sizeof(v), "%d", d);
            array_add(&wd, v);
            sb_fmt(v, sizeof(v), "%02d:%02d", o / 3600, o / 60 % 60);
            array_add(&op, v);
            sb_fmt(v, sizeof(v), "%02d:%02d", c / 3600, c / 60 % 60);
            array_add(&cl, v);
        }
    }
    sb_strbuf_printf(&wd, "}");
    sb_strbuf_printf(&op, "}");
    sb_strbuf_printf(&cl, "}");
    {
        const char *params[4] = {k->id, wd.p, op.p, cl.p};
        rc = load_exec(pg, sql_hours_prune, 3, params, err, errsz);
        if (rc == 0)
            rc = load_exec(pg, sql_hours, 4, params, err, errsz);
    }
    free(wd.p);
    free(op.p);
    free(cl.p);
    return rc;
}

static int write_days(struct sb_pg *pg, const struct calendar *k, char *err, size_t errsz)
{
    struct sb_strbuf days = {0}, working = {0};
    json_t *item;
    size_t i;
    int rc;

    sb_strbuf_printf(&days, "{");
    sb_strbuf_printf(&working, "{");
    json_array_foreach(k->holidays, i, item)
    {
        array_add(&days, json_string_value(item));
        array_add(&working, "false");
    }
    json_array_foreach(k->working, i, item)
    {
        array_add(&days, json_string_value(item));
        array_add(&working, "true");
    }
    sb_strbuf_printf(&days, "}");
    sb_strbuf_printf(&working, "}");
    {
        const char *params[3] = {k->id, days.p, working.p};
        rc = load_exec(pg, sql_days_prune, 2, params, err, errsz);
        if (rc == 0)
            rc = load_exec(pg, sql_days, 3, params, err, errsz);
    }
    free(days.p);
    free(working.p);
    return rc;
}

static int write_teams(struct sb_pg *pg, const struct calendar *k, char *err, size_t errsz)
{
    json_t *item;
    size_t i;

    json_array_foreach(k->teams, i, item)
    {
        char team[64];
        const char *t = json_string_value(item), *at = strchr(t, '@');
        const char *params[3] = {team, k->id, at != NULL ? at + 1 : NULL};
        int e = 0, n;
        PGresult *res;

        sb_fmt(team, sizeof(team), "%.*s", (int)strcspn(t, "@"), t);
        res = sb_pg_query(pg, sql_team_exists, 1, params, &e, err, errsz);
        if (res == NULL)
            return -1;
        n = PQntuples(res);
        PQclear(res);
        if (n == 0) {
            sb_fmt(err, errsz, "field \"teams\": no team \"%s\" (load the agents first)", team);
            return -1;
        }
        if (load_exec(pg, sql_team, 3, params, err, errsz) != 0)
            return -1;
    }
    return 0;
}

static int calendar_write(struct load_ctx *c, struct sb_pg *pg, const struct load_row *r, char *err,
                          size_t errsz)
{
    struct calendar k;
    const char *params[3];
    int rc = -1;

    if (parse(c, r, &k) != 0) {
        sb_fmt(err, errsz, "row no longer valid");
        goto out;
    }
    params[0] = k.id;
    params[1] = k.name;
    params[2] = k.timezone;
    if (load_exec(pg, sql_calendar, 3, params, err, errsz) != 0 ||
        write_hours(pg, &k, err, errsz) != 0 || write_days(pg, &k, err, errsz) != 0 ||
        write_teams(pg, &k, err, errsz) != 0)
        goto out;
    rc = 0;
out:
    calendar_clear(&k);
    return rc;
}

const struct load_kind load_calendars = {
    .name = "calendars",
    .fields = fields,
    .check = calendar_check,
    .write = calendar_write,
    .committed = NULL,
};
