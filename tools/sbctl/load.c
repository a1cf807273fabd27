/* sbctl load agents|customers|policies FILE: reference data from JSON (an array of
 * objects) or CSV (a header row). Every row is validated first; any error is reported
 * with the file, line and field, and then nothing is written. Valid files are written
 * in one transaction with upserts, so loading the same file twice changes nothing. */
#include "csv.h"
#include "sbctl.h"

#include "sb/err.h"
#include "sb/normalize.h"
#include "sb/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILE_MAX (64 * 1024 * 1024)
#define MAX_ERRORS 20

struct row {
    json_t *obj; /* field name → value (strings for CSV) */
    int line;
};

struct rows {
    struct row *v;
    size_t n, cap;
};

struct ctx {
    const char *file;
    int errors;
};

static void row_error(struct ctx *c, int line, const char *field, const char *msg)
{
    if (c->errors++ < MAX_ERRORS)
        fprintf(stderr, "%s:%d: field \"%s\": %s\n", c->file, line, field, msg);
}

static void rows_add(struct rows *r, json_t *obj, int line)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = sb_realloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n].obj = obj;
    r->v[r->n].line = line;
    r->n++;
}

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->v[i].obj);
    free(r->v);
}

/* The line on which each top-level element of a JSON array starts. */
static void element_lines(const char *buf, size_t len, int *lines, size_t max)
{
    int depth = 0, in_str = 0, line = 1;
    size_t k = 0;

    for (size_t i = 0; i < len && k < max; i++) {
        char ch = buf[i];
        if (ch == '\n')
            line++;
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (ch == '"') {
            in_str = 1;
            if (depth == 1)
                lines[k++] = line;
        } else if (ch == '{' || ch == '[') {
            if (depth == 1)
                lines[k++] = line;
            depth++;
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (depth == 1 && ch != ',' && ch != ' ' && ch != '\n' && ch != '\r' &&
                   ch != '\t' && (i == 0 || strchr(",[ \n\r\t", buf[i - 1]) != NULL)) {
            lines[k++] = line;
        }
    }
}

static int read_json(struct ctx *c, const char *buf, size_t len, struct rows *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *item;
    int *lines;
    size_t i;

    if (root == NULL) {
        fprintf(stderr, "%s:%d: invalid JSON: %s\n", c->file, jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_array(root)) {
        fprintf(stderr, "%s:1: expected a JSON array of objects\n", c->file);
        json_decref(root);
        return -1;
    }
    lines = sb_calloc(json_array_size(root) + 1, sizeof(int));
    element_lines(buf, len, lines, json_array_size(root));
    json_array_foreach(root, i, item)
    {
        if (!json_is_object(item)) {
            fprintf(stderr, "%s:%d: expected an object\n", c->file, lines[i]);
            c->errors++;
            continue;
        }
        rows_add(out, json_incref(item), lines[i]);
    }
    free(lines);
    json_decref(root);
    return c->errors ? -1 : 0;
}

static int read_csv(struct ctx *c, const char *buf, size_t len, struct rows *out)
{
    struct sb_csv csv;
    struct sb_csv_row header, row;
    char err[256];
    int rc;

    sb_csv_init(&csv, buf, len);
    rc = sb_csv_next(&csv, &header, err, sizeof(err));
    if (rc <= 0) {
        fprintf(stderr, "%s: %s\n", c->file, rc == 0 ? "empty file" : err);
        return -1;
    }
    while ((rc = sb_csv_next(&csv, &row, err, sizeof(err))) == 1) {
        json_t *obj = json_object();
        if (row.nfields != header.nfields) {
            fprintf(stderr, "%s:%d: %d fields, the header has %d\n", c->file, row.line,
                    row.nfields, header.nfields);
            c->errors++;
        }
        for (int i = 0; i < row.nfields && i < header.nfields; i++) {
            if (row.fields[i][0] == '\0')
                continue;
            json_t *s = json_string(row.fields[i]);
            if (s == NULL) {
                row_error(c, row.line, header.fields[i], "not valid UTF-8");
                continue;
            }
            json_object_set_new(obj, header.fields[i], s);
        }
        rows_add(out, obj, row.line);
        sb_csv_row_clear(&row);
    }
    sb_csv_row_clear(&header);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", c->file, err);
        return -1;
    }
    return c->errors ? -1 : 0;
}

/* Text of a field (strings as they are, numbers and booleans printed); NULL when
 * absent. The returned pointer lives in buf or in the row. */
static const char *text(json_t *obj, const char *key, char *buf, size_t bufsz)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_length(v) ? json_string_value(v) : NULL;
    if (json_is_integer(v)) {
        sb_fmt(buf, bufsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        sb_fmt(buf, bufsz, "%.2f", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

static int need(struct ctx *c, const struct row *r, const char *key, const char **out, char *buf,
                size_t bufsz)
{
    *out = text(r->obj, key, buf, bufsz);
    if (*out == NULL) {
        row_error(c, r->line, key, "required");
        return -1;
    }
    return 0;
}

static int int_field(struct ctx *c, const struct row *r, const char *key, int64_t def,
                     int64_t min, int64_t max, int64_t *out)
{
    char buf[64];
    const char *t = text(r->obj, key, buf, sizeof(buf));

    *out = def;
    if (t == NULL)
        return 0;
    if (sb_parse_int64(t, out) != 0) {
        row_error(c, r->line, key, "not an integer");
        return -1;
    }
    if (*out < min || *out > max) {
        row_error(c, r->line, key, "out of range");
        return -1;
    }
    return 0;
}

static int bool_field(struct ctx *c, const struct row *r, const char *key, const char **out)
{
    char buf[16];
    const char *t = text(r->obj, key, buf, sizeof(buf));

    *out = "false";
    if (t == NULL)
        return 0;
    if (strcasecmp(t, "true") == 0 || strcmp(t, "1") == 0 || strcasecmp(t, "yes") == 0)
        *out = "true";
    else if (!(strcasecmp(t, "false") == 0 || strcmp(t, "0") == 0 || strcasecmp(t, "no") == 0)) {
        row_error(c, r->line, key, "not a boolean");
        return -1;
    }
    return 0;
}

/* A list field: a JSON array of strings or "a;b;c". Writes a PostgreSQL array literal
 * with every element quoted. */
static int list_field(struct ctx *c, const struct row *r, const char *key, const char *def,
                      char *out, size_t outsz)
{
    json_t *v = json_object_get(r->obj, key);
    json_t *items = NULL, *item;
    size_t i, len = 0;

    if (v == NULL || json_is_null(v)) {
        sb_strlcpy(out, def, outsz);
        return 0;
    }
    if (json_is_array(v)) {
        items = json_incref(v);
    } else if (json_is_string(v)) {
        const char *p = json_string_value(v);
        items = json_array();
        while (*p) {
            const char *end = strchr(p, ';');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n > 0)
                json_array_append_new(items, json_stringn(p, n));
            p += n;
            if (*p == ';')
                p++;
        }
    } else {
        row_error(c, r->line, key, "expected a list (array or a;b;c)");
        return -1;
    }
    out[len++] = '{';
    json_array_foreach(items, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL || len + 2 * strlen(s) + 4 >= outsz) {
            row_error(c, r->line, key, "entries must be short strings");
            json_decref(items);
            return -1;
        }
        if (i > 0)
            out[len++] = ',';
        out[len++] = '"';
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                out[len++] = '\\';
            out[len++] = *s;
        }
        out[len++] = '"';
    }
    out[len++] = '}';
    out[len] = '\0';
    json_decref(items);
    return 0;
}

static int exec(struct sb_pg *pg, const char *sql, int n, const char *const *params, char *err,
                size_t errsz)
{
    int e = 0;
    PGresult *res = sb_pg_query(pg, sql, n, params, &e, err, errsz);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++) {
        if (strcmp(v, *allowed) == 0)
            return 1;
    }
    return 0;
}

/* Agents: id, name, team, role, languages, product_lines, skills ("domain:level;…" or
 * an object), capacity_call, capacity_chat, capacity_email, capacity_social. */
static int agent_row(struct ctx *c, struct sb_pg *pg, const struct row *r, char *err, size_t es)
{
    static const char *const roles[] = {"agent", "lead", "supervisor", "admin", NULL};
    char b1[64], b2[64], b3[64], b4[64], langs[1024], lines[1024];
    char cap[4][16];
    const char *id, *name, *team, *role;
    int64_t caps[4];
    static const char *const capnames[4] = {"capacity_call", "capacity_chat", "capacity_email",
                                            "capacity_social"};
    static const int64_t capdef[4] = {1, 3, 10, 5}, capmax[4] = {10, 50, 200, 100};
    json_t *skills;
    int bad = 0;

    bad |= need(c, r, "id", &id, b1, sizeof(b1));
    bad |= need(c, r, "name", &name, b2, sizeof(b2));
    bad |= need(c, r, "team", &team, b3, sizeof(b3));
    role = text(r->obj, "role", b4, sizeof(b4));
    if (role == NULL)
        role = "agent";
    else if (!one_of(role, roles)) {
        row_error(c, r->line, "role", "one of agent, lead, supervisor, admin");
        bad = -1;
    }
    bad |= list_field(c, r, "languages", "{zh}", langs, sizeof(langs));
    bad |= list_field(c, r, "product_lines", "{}", lines, sizeof(lines));
    for (int i = 0; i < 4; i++) {
        bad |= int_field(c, r, capnames[i], capdef[i], 0, capmax[i], &caps[i]);
        sb_fmt(cap[i], sizeof(cap[i]), "%lld", (long long)caps[i]);
    }
    /* Skills: validated here, written below. */
    skills = json_object();
    {
        json_t *s = json_object_get(r->obj, "skills");
        if (json_is_object(s)) {
            const char *k;
            json_t *v;
            json_object_foreach(s, k, v)
            {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 5) {
                    row_error(c, r->line, "skills", "levels must be integers 1..5");
                    bad = -1;
                } else
                    json_object_set(skills, k, v);
            }
        } else if (json_is_string(s)) {
            const char *p = json_string_value(s);
            while (*p) {
                const char *end = strchr(p, ';');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                const char *colon = memchr(p, ':', n);
                char lvl[8];
                int64_t l;
                if (colon == NULL || colon == p || (size_t)(p + n - colon - 1) >= sizeof(lvl)) {
                    row_error(c, r->line, "skills", "expected skill:level;skill:level");
                    bad = -1;
                    break;
                }
                memcpy(lvl, colon + 1, (size_t)(p + n - colon - 1));
                lvl[p + n - colon - 1] = '\0';
                if (sb_parse_int64(lvl, &l) != 0 || l < 1 || l > 5) {
                    row_error(c, r->line, "skills", "levels must be integers 1..5");
                    bad = -1;
                    break;
                }
                {
                    char name_buf[128];
                    sb_fmt(name_buf, sizeof(name_buf), "%.*s", (int)(colon - p), p);
                    json_object_set_new(skills, name_buf, json_integer(l));
                }
                p += n;
                if (*p == ';')
                    p++;
            }
        } else if (s != NULL && !json_is_null(s)) {
            row_error(c, r->line, "skills", "expected an object or skill:level;…");
            bad = -1;
        }
    }
    if (bad || pg == NULL) {
        json_decref(skills);
        return bad ? -1 : 0;
    }
    {
        const char *pt[1] = {team};
        const char *pa[10] = {id,    name,    team,    role,    langs,
                              lines, cap[0], cap[1], cap[2], cap[3]};
        const char *pd[1] = {id};
        const char *k;
        json_t *v;
        if (exec(pg, "INSERT INTO teams (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", 1,
                 pt, err, es) ||
            exec(pg,
                 "INSERT INTO agents (id, name, team_id, role, languages, product_lines, "
                 "capacity_call, capacity_chat, capacity_email, capacity_social) VALUES ($1, $2, "
                 "$3, $4, $5::text[], $6::text[], $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE "
                 "SET name = excluded.name, team_id = excluded.team_id, role = excluded.role, "
                 "languages = excluded.languages, product_lines = excluded.product_lines, "
                 "capacity_call = excluded.capacity_call, capacity_chat = "
                 "excluded.capacity_chat, capacity_email = excluded.capacity_email, "
                 "capacity_social = excluded.capacity_social, active = true, updated_at = now()",
                 10, pa, err, es) ||
            exec(pg, "DELETE FROM agent_skills WHERE agent_id = $1", 1, pd, err, es)) {
            json_decref(skills);
            return -1;
        }
        json_object_foreach(skills, k, v)
        {
            char lvl[8];
            const char *ps[3] = {id, k, lvl};
            sb_fmt(lvl, sizeof(lvl), "%lld", (long long)json_integer_value(v));
            if (exec(pg, "INSERT INTO agent_skills (agent_id, skill, level) VALUES ($1, $2, $3)",
                     3, ps, err, es)) {
                json_decref(skills);
                return -1;
            }
        }
        json_decref(skills);
        if (strcmp(role, "lead") == 0 || strcmp(role, "supervisor") == 0) {
            const char *pl[2] = {id, team};
            if (exec(pg,
                     strcmp(role, "lead") == 0
                         ? "UPDATE teams SET lead_agent_id = $1 WHERE id = $2"
                         : "UPDATE teams SET supervisor_agent_id = $1 WHERE id = $2",
                     2, pl, err, es))
                return -1;
        }
    }
    return 0;
}

/* Customers: customer_no, name, phone, email, wechat_openid, annual_spend, is_partner,
 * is_enterprise. Identities are stored normalized. The loaded rows are authoritative:
 * they replace provisional records and re-point identities. */
static int customer_row(struct ctx *c, struct sb_pg *pg, const struct row *r, char *err,
                        size_t es)
{
    char b1[128], b2[256], b3[64], b4[320], b5[128], spend_buf[64];
    char phone[64] = "", email[300] = "";
    const char *no, *name, *spend, *partner, *enterprise, *p, *e, *wx;
    char *end = NULL;
    int bad = 0;

    bad |= need(c, r, "customer_no", &no, b1, sizeof(b1));
    name = text(r->obj, "name", b2, sizeof(b2));
    spend = text(r->obj, "annual_spend", spend_buf, sizeof(spend_buf));
    if (spend == NULL)
        spend = "0";
    else {
        double d = strtod(spend, &end);
        if (end == spend || *end != '\0' || d < 0 || d > 1e12) {
            row_error(c, r->line, "annual_spend", "not a non-negative amount");
            bad = -1;
        }
    }
    bad |= bool_field(c, r, "is_partner", &partner);
    bad |= bool_field(c, r, "is_enterprise", &enterprise);
    p = text(r->obj, "phone", b3, sizeof(b3));
    if (p != NULL && sb_phone_normalize(p, phone, sizeof(phone)) != 0) {
        row_error(c, r->line, "phone", "not a phone number");
        bad = -1;
    }
    e = text(r->obj, "email", b4, sizeof(b4));
    if (e != NULL && sb_email_normalize(e, email, sizeof(email)) != 0) {
        row_error(c, r->line, "email", "not an email address");
        bad = -1;
    }
    wx = text(r->obj, "wechat_openid", b5, sizeof(b5));
    if (bad || pg == NULL)
        return bad ? -1 : 0;
    {
        const char *pc[5] = {no, name, spend, partner, enterprise};
        const char *kinds[4] = {"customer_no", "phone", "email", "wechat_openid"};
        const char *vals[4] = {no, phone[0] ? phone : NULL, email[0] ? email : NULL, wx};
        if (exec(pg,
                 "INSERT INTO customers (customer_no, name, annual_spend, is_partner, "
                 "is_enterprise, provisional) VALUES ($1, $2, $3, $4, $5, false) ON CONFLICT "
                 "(customer_no) DO UPDATE SET name = excluded.name, annual_spend = "
                 "excluded.annual_spend, is_partner = excluded.is_partner, is_enterprise = "
                 "excluded.is_enterprise, provisional = false, updated_at = now()",
                 5, pc, err, es))
            return -1;
        for (int i = 0; i < 4; i++) {
            const char *pi[3] = {kinds[i], vals[i], no};
            if (vals[i] == NULL)
                continue;
            if (exec(pg,
                     "INSERT INTO customer_identities (kind, value, customer_no) VALUES ($1, $2, "
                     "$3) ON CONFLICT (kind, value) DO UPDATE SET customer_no = "
                     "excluded.customer_no",
                     3, pi, err, es))
                return -1;
        }
    }
    return 0;
}

/* Policies: kind, band, channel, team, period_kind, target_s, business_time,
 * warn_fractions ("0.75;0.9"), escalate_to. */
static int policy_row(struct ctx *c, struct sb_pg *pg, const struct row *r, char *err, size_t es)
{
    static const char *const bands[] = {"P1", "P2", "P3", "P4", NULL};
    static const char *const periods[] = {"promotion_peak", "outage", NULL};
    static const char *const escalations[] = {"lead", "supervisor", NULL};
    char b1[64], b2[16], b3[32], b4[64], b5[32], b6[32], tgt[24], warn[256];
    const char *kind, *band, *channel, *team, *period, *business, *esc;
    int64_t target;
    int bad = 0;

    bad |= need(c, r, "kind", &kind, b1, sizeof(b1));
    band = text(r->obj, "band", b2, sizeof(b2));
    if (band != NULL && !one_of(band, bands)) {
        row_error(c, r->line, "band", "one of P1, P2, P3, P4");
        bad = -1;
    }
    channel = text(r->obj, "channel", b3, sizeof(b3));
    team = text(r->obj, "team", b4, sizeof(b4));
    period = text(r->obj, "period_kind", b5, sizeof(b5));
    if (period != NULL && !one_of(period, periods)) {
        row_error(c, r->line, "period_kind", "one of promotion_peak, outage");
        bad = -1;
    }
    esc = text(r->obj, "escalate_to", b6, sizeof(b6));
    if (esc != NULL && !one_of(esc, escalations)) {
        row_error(c, r->line, "escalate_to", "one of lead, supervisor");
        bad = -1;
    }
    if (json_object_get(r->obj, "target_s") == NULL) {
        row_error(c, r->line, "target_s", "required");
        bad = -1;
    } else {
        bad |= int_field(c, r, "target_s", 0, 1, 400LL * 86400, &target);
    }
    bad |= bool_field(c, r, "business_time", &business);
    bad |= list_field(c, r, "warn_fractions", "{0.75,0.9}", warn, sizeof(warn));
    if (bad || pg == NULL)
        return bad ? -1 : 0;
    sb_fmt(tgt, sizeof(tgt), "%lld", (long long)target);
    {
        const char *pp[9] = {kind, band, channel, team, period, tgt, business, warn, esc};
        if (team != NULL) {
            const char *pt[1] = {team};
            if (exec(pg, "INSERT INTO teams (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
                     1, pt, err, es))
                return -1;
        }
        return exec(pg,
                    "INSERT INTO sla_policies (kind, band, channel, team_id, period_kind, "
                    "target_s, business_time, warn_fractions, escalate_to) VALUES ($1, $2, $3, "
                    "$4, $5, $6, $7, $8::numeric[], $9) ON CONFLICT (kind, coalesce(band, ''), "
                    "coalesce(channel, ''), coalesce(team_id, ''), coalesce(period_kind, '')) DO "
                    "UPDATE SET target_s = excluded.target_s, business_time = "
                    "excluded.business_time, warn_fractions = excluded.warn_fractions, "
                    "escalate_to = excluded.escalate_to, updated_at = now()",
                    9, pp, err, es);
    }
}

typedef int (*row_fn)(struct ctx *c, struct sb_pg *pg, const struct row *r, char *err,
                      size_t es);

int sbctl_load(struct sbctl *ctl, int argc, char **argv)
{
    struct ctx c = {0};
    struct rows rows = {0};
    struct sb_pg *pg = NULL;
    row_fn fn;
    char err[1024];
    char *buf = NULL;
    size_t len, n;
    int rc = 1;

    if (argc != 2 || sbctl_wants_help(argc, argv)) {
        printf("Usage: sbctl load agents|customers|policies FILE\n\n"
               "FILE is .json (an array of objects) or .csv (a header row).\n"
               "agents:    id, name, team, role, languages, product_lines, skills "
               "(domain:level;…), capacity_call, capacity_chat, capacity_email, "
               "capacity_social\n"
               "customers: customer_no, name, phone, email, wechat_openid, annual_spend, "
               "is_partner, is_enterprise\n"
               "policies:  kind, band, channel, team, period_kind, target_s, business_time, "
               "warn_fractions, escalate_to\n"
               "Every row is checked first; on any error nothing is written.\n");
        return sbctl_wants_help(argc, argv) ? 0 : 2;
    }
    if (strcmp(argv[0], "agents") == 0)
        fn = agent_row;
    else if (strcmp(argv[0], "customers") == 0)
        fn = customer_row;
    else if (strcmp(argv[0], "policies") == 0)
        fn = policy_row;
    else {
        fprintf(stderr, "sbctl load: unknown kind \"%s\" (agents, customers, policies)\n",
                argv[0]);
        return 2;
    }
    c.file = argv[1];
    buf = sbctl_read_file(argv[1], FILE_MAX, &len, err, sizeof(err));
    if (buf == NULL) {
        fprintf(stderr, "sbctl load: %s\n", err);
        return 1;
    }
    n = strlen(argv[1]);
    if (n > 4 && strcasecmp(argv[1] + n - 4, ".csv") == 0) {
        if (read_csv(&c, buf, len, &rows) != 0)
            goto out;
    } else if (read_json(&c, buf, len, &rows) != 0) {
        goto out;
    }
    for (size_t i = 0; i < rows.n; i++)
        fn(&c, NULL, &rows.v[i], err, sizeof(err));
    if (c.errors > 0) {
        fprintf(stderr, "sbctl load: %d error(s) in %s; nothing was written\n", c.errors,
                argv[1]);
        goto out;
    }
    pg = sbctl_pg(ctl);
    if (pg == NULL)
        goto out;
    if (sb_pg_exec(pg, "BEGIN", err, sizeof(err)) != 0)
        goto fail;
    for (size_t i = 0; i < rows.n; i++) {
        if (fn(&c, pg, &rows.v[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "%s:%d: %s\n", c.file, rows.v[i].line, err);
            sb_pg_exec(pg, "ROLLBACK", err, sizeof(err));
            fprintf(stderr, "sbctl load: nothing was written\n");
            goto out;
        }
    }
    if (sb_pg_exec(pg, "COMMIT", err, sizeof(err)) != 0)
        goto fail;
    printf("loaded %zu %s from %s\n", rows.n, argv[0], argv[1]);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "sbctl load: %s\n", err);
out:
    sb_pg_destroy(pg);
    rows_free(&rows);
    free(buf);
    return rc;
}
