/* sbctl load agents|customers|policies|calendars FILE: reads FILE (.json: an array of objects;
 * .csv: a header row, then one row per line) into rows, checks every row, and writes
 * a file without errors in one transaction (see load.h). Also the field readers that
 * the kinds share. */
#include "load.h"

#include "sb/csv.h"

#include "sb/err.h"
#include "sb/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILE_MAX (64 * 1024 * 1024)
#define MAX_ROWS 1000000
#define ERRORS_SHOWN 20
#define DEFAULT_VIP_SPEND "10000"
#define DEFAULT_REGULAR_SPEND "1000"

struct rows {
    struct load_row *v;
    size_t n, cap;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sbctl load agents|customers|policies|calendars FILE\n"
            "       sbctl load customers FILE [--vip-spend AMOUNT] [--regular-spend AMOUNT]\n"
            "\n"
            "FILE is .json (an array of objects) or .csv (a header row; list cells are\n"
            "separated by ';'). Every row is checked first: any problem is reported as\n"
            "FILE:LINE: field \"NAME\": ... and then nothing is written. A valid file is\n"
            "written in one transaction with upserts: loading it twice changes nothing.\n"
            "\n"
            "agents:    id, name, team, role (agent|lead|supervisor|admin), languages,\n"
            "           product_lines, skills (skill:level;... levels 1-5), capacity_call,\n"
            "           capacity_chat, capacity_email, capacity_social, [active]\n"
            "customers: customer_no, name, phone, email, wechat_openid, social_id,\n"
            "           annual_spend, is_partner, is_enterprise\n"
            "           tier: 3 from --vip-spend (default %s) or a partner,\n"
            "           2 from --regular-spend (default %s), else 1\n"
            "policies:  kind, band, channel, team, period_kind, first_response_s,\n"
            "           resolution_s, resolution_business_days, business_time,\n"
            "           warn_fractions (0.75;0.9), notify_at_start (lead|supervisor)\n"
            "calendars: id, [name], timezone, hours (mon-fri 09:00-18:00;...), [holidays],\n"
            "           [working_days] (YYYY-MM-DD;...), [teams] (team or team@Zone;...)\n"
            "\n"
            "The formats are described in docs/database.md.\n",
            DEFAULT_VIP_SPEND, DEFAULT_REGULAR_SPEND);
}

void load_error(struct load_ctx *c, int line, const char *field, const char *msg)
{
    if (c->errors < ERRORS_SHOWN)
        fprintf(stderr, "%s:%d: field \"%s\": %s\n", c->file, line, field, msg);
    else if (c->errors == ERRORS_SHOWN)
        fprintf(stderr, "%s: more errors not shown\n", c->file);
    c->errors++;
}

/* A problem with the row as a whole rather than one field. */
static void row_error(struct load_ctx *c, int line, const char *msg)
{
    if (c->errors < ERRORS_SHOWN)
        fprintf(stderr, "%s:%d: %s\n", c->file, line, msg);
    c->errors++;
}

static void rows_add(struct rows *r, json_t *obj, int line)
{
    if (r->n == r->cap) {
        r->cap = r->cap != 0 ? r->cap * 2 : 64;
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

static int known_field(const struct load_kind *k, const char *name)
{
    for (const char *const *f = k->fields; *f != NULL; f++) {
        if (strcmp(*f, name) == 0)
            return 1;
    }
    return 0;
}

/* The line on which each element of the top-level JSON array starts (for messages;
 * jansson does not keep positions). lines[i] stays 0 when not found. */
static void element_lines(const char *buf, size_t len, int *lines, size_t max)
{
    int depth = 0, in_str = 0, expect = 0, line = 1;
    size_t k = 0;

    for (size_t i = 0; i < len && k < max; i++) {
        char ch = buf[i];

        if (ch == '\n')
            line++;
        if (in_str) {
            if (ch == '\\')
                i++; /* an escaped character never ends the string (nor is a newline) */
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (depth == 1 && expect && !isspace((unsigned char)ch) && ch != ']') {
            lines[k++] = line;
            expect = 0;
        }
        if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
            if (depth == 1)
                expect = 1;
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (ch == ',' && depth == 1) {
            expect = 1;
        }
    }
}

static int read_json(struct load_ctx *c, const struct load_kind *k, const char *buf, size_t len,
                     struct rows *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *item, *v;
    const char *key;
    int *lines;
    size_t i;

    if (root == NULL) {
        fprintf(stderr, "%s:%d: invalid JSON: %s\n", c->file, jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_array(root) || json_array_size(root) > MAX_ROWS) {
        fprintf(stderr, "%s:1: expected a JSON array of at most %d objects\n", c->file, MAX_ROWS);
        json_decref(root);
        return -1;
    }
    lines = sb_calloc(json_array_size(root) + 1, sizeof(int));
    element_lines(buf, len, lines, json_array_size(root));
    json_array_foreach(root, i, item)
    {
        if (!json_is_object(item)) {
            row_error(c, lines[i], "expected an object");
            continue;
        }
        json_object_foreach(item, key, v)
        {
            if (!known_field(k, key))
                load_error(c, lines[i], key, "unknown field (see sbctl load --help)");
        }
        rows_add(out, json_incref(item), lines[i]);
    }
    free(lines);
    json_decref(root);
    return c->errors != 0 ? -1 : 0;
}

/* Header names, trimmed, known and distinct. */
static int check_header(struct load_ctx *c, const struct load_kind *k, struct sb_csv_row *h)
{
    for (int i = 0; i < h->nfields; i++) {
        char *f = h->fields[i];
        size_t n = strlen(f);

        while (n > 0 && isspace((unsigned char)f[n - 1]))
            f[--n] = '\0';
        while (isspace((unsigned char)*f))
            memmove(f, f + 1, n--);
        if (!known_field(k, f))
            load_error(c, h->line, f, "unknown column (see sbctl load --help)");
        for (int j = 0; j < i; j++) {
            if (strcmp(h->fields[j], f) == 0)
                load_error(c, h->line, f, "column given twice");
        }
    }
    return c->errors != 0 ? -1 : 0;
}

static json_t *csv_object(struct load_ctx *c, const struct sb_csv_row *h,
                          const struct sb_csv_row *row)
{
    json_t *obj = json_object();

    if (row->nfields != h->nfields) {
        char msg[96];
        sb_fmt(msg, sizeof(msg), "%d fields, the header has %d", row->nfields, h->nfields);
        row_error(c, row->line, msg);
    }
    for (int i = 0; i < row->nfields && i < h->nfields; i++) {
        json_t *s;

        if (row->fields[i][0] == '\0')
            continue; /* an empty cell is an absent field */
        s = json_string(row->fields[i]);
        if (s == NULL) {
            load_error(c, row->line, h->fields[i], "not valid UTF-8");
            continue;
        }
        json_object_set_new(obj, h->fields[i], s);
    }
    return obj;
}

static int read_csv(struct load_ctx *c, const struct load_kind *k, const char *buf, size_t len,
                    struct rows *out)
{
    struct sb_csv *csv = sb_csv_new(buf, len);
    struct sb_csv_row header = {0}, row = {0};
    char err[256];
    int rc = sb_csv_next(csv, &header, err, sizeof(err));

    if (rc <= 0) {
        fprintf(stderr, "%s: %s\n", c->file, rc == 0 ? "empty file (a header row is needed)" : err);
        goto out;
    }
    if (check_header(c, k, &header) != 0)
        goto out;
    while ((rc = sb_csv_next(csv, &row, err, sizeof(err))) == 1) {
        if (out->n >= MAX_ROWS) {
            fprintf(stderr, "%s: more than %d rows\n", c->file, MAX_ROWS);
            rc = SB_E_TOOBIG;
            break;
        }
        rows_add(out, csv_object(c, &header, &row), row.line);
        sb_csv_row_clear(&row);
    }
    if (rc < 0 && rc != SB_E_TOOBIG) {
        /* The reader says "line N: what"; the loader says "FILE:N: what". */
        const char *what = strstr(err, ": ");
        row_error(c, row.line, what != NULL ? what + 2 : err);
    }
out:
    sb_csv_row_clear(&header);
    sb_csv_row_clear(&row);
    sb_csv_destroy(csv);
    return rc < 0 || c->errors != 0 ? -1 : 0;
}

/* Field readers ------------------------------------------------------------------- */

int load_string(struct load_ctx *c, const struct load_row *r, const char *key, size_t max,
                char *out, size_t outsz)
{
    json_t *v = json_object_get(r->obj, key);
    const char *s, *end;
    char num[64];
    size_t n;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        sb_fmt(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        sb_fmt(num, sizeof(num), "%.15g", json_real_value(v));
        s = num;
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
    } else {
        load_error(c, r->line, key, "expected a single value");
        return -1;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    n = (size_t)(end - s);
    if (n == 0)
        return 0;
    if (n > max || n >= outsz) {
        char msg[64];
        sb_fmt(msg, sizeof(msg), "longer than %zu bytes", max < outsz ? max : outsz - 1);
        load_error(c, r->line, key, msg);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            load_error(c, r->line, key, "contains a control character");
            return -1;
        }
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 1;
}

int load_required(struct load_ctx *c, const struct load_row *r, const char *key, size_t max,
                  char *out, size_t outsz)
{
    int rc = load_string(c, r, key, max, out, outsz);

    if (rc == 0) {
        load_error(c, r->line, key, "required");
        return -1;
    }
    return rc;
}

int load_id(struct load_ctx *c, const struct load_row *r, const char *key, int required, size_t max,
            char *out, size_t outsz)
{
    int rc = required ? load_required(c, r, key, max, out, outsz)
                      : load_string(c, r, key, max, out, outsz);

    if (rc != 1)
        return rc;
    for (const char *p = out; *p != '\0'; p++) {
        if (!(isalnum((unsigned char)*p) || (p != out && strchr("._-:", *p) != NULL))) {
            load_error(c, r->line, key,
                       "letters, digits and . _ - : only, starting with a letter or digit");
            return -1;
        }
    }
    return 1;
}

int load_enum(struct load_ctx *c, const struct load_row *r, const char *key,
              const char *const *allowed, char *out, size_t outsz)
{
    char msg[256];
    size_t n = 0;
    int rc = load_string(c, r, key, 64, out, outsz);

    if (rc != 1)
        return rc;
    for (const char *const *a = allowed; *a != NULL; a++) {
        if (strcmp(out, *a) == 0)
            return 1;
    }
    n = sb_strlcpy(msg, "one of ", sizeof(msg));
    for (const char *const *a = allowed; *a != NULL && n < sizeof(msg); a++)
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s%s", a == allowed ? "" : ", ", *a);
    load_error(c, r->line, key, msg);
    return -1;
}

int load_int(struct load_ctx *c, const struct load_row *r, const char *key, int required,
             int64_t min, int64_t max, int64_t *out)
{
    char buf[32], msg[96];
    int rc = required ? load_required(c, r, key, 30, buf, sizeof(buf))
                      : load_string(c, r, key, 30, buf, sizeof(buf));

    if (rc != 1)
        return rc;
    if (sb_parse_int64(buf, out) != 0) {
        load_error(c, r->line, key, "not an integer");
        return -1;
    }
    if (*out < min || *out > max) {
        sb_fmt(msg, sizeof(msg), "out of range %lld..%lld", (long long)min, (long long)max);
        load_error(c, r->line, key, msg);
        return -1;
    }
    return 1;
}

int load_bool(struct load_ctx *c, const struct load_row *r, const char *key, int *out)
{
    char buf[16];
    int rc = load_string(c, r, key, 8, buf, sizeof(buf));

    if (rc != 1)
        return rc;
    if (strcasecmp(buf, "true") == 0 || strcmp(buf, "1") == 0 || strcasecmp(buf, "yes") == 0) {
        *out = 1;
    } else if (strcasecmp(buf, "false") == 0 || strcmp(buf, "0") == 0 ||
               strcasecmp(buf, "no") == 0) {
        *out = 0;
    } else {
        load_error(c, r->line, key, "not a boolean (true/false)");
        return -1;
    }
    return 1;
}

/* Splits "a;b;c" into a new array of trimmed, non-empty strings. */
static json_t *split_list(const char *s)
{
    json_t *items = json_array();

    while (*s != '\0') {
        const char *end = strchr(s, ';');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        const char *a = s, *b = s + n;

        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a)
            json_array_append_new(items, json_stringn(a, (size_t)(b - a)));
        s += n;
        if (*s == ';')
            s++;
    }
    return items;
}

int load_list(struct load_ctx *c, const struct load_row *r, const char *key,
              int (*valid)(const char *item), const char *what, json_t **items)
{
    json_t *v = json_object_get(r->obj, key), *item, *out;
    size_t i;

    *items = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        out = split_list(json_string_value(v));
    } else if (json_is_array(v)) {
        out = json_array();
        json_array_foreach(v, i, item)
        {
            /* Numbers become text like CSV cells; anything else fails the check below. */
            if (json_is_integer(item))
                json_array_append_new(
                    out, json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(item)));
            else if (json_is_real(item))
                json_array_append_new(out, json_sprintf("%.15g", json_real_value(item)));
            else
                json_array_append(out, item);
        }
    } else {
        load_error(c, r->line, key, "expected a list (an array, or a;b;c)");
        return -1;
    }
    json_array_foreach(out, i, item)
    {
        if (!json_is_string(item) || !valid(json_string_value(item))) {
            char msg[160];
            sb_fmt(msg, sizeof(msg), "item %zu is not %s", i + 1, what);
            load_error(c, r->line, key, msg);
            json_decref(out);
            return -1;
        }
    }
    *items = out;
    return 1;
}

int load_pg_array(const json_t *items, char *out, size_t outsz)
{
    size_t len = 0, i;
    json_t *item;

    if (outsz < 3)
        return -1;
    out[len++] = '{';
    json_array_foreach(items, i, item)
    {
        const char *s = json_string_value(item);

        if (s == NULL || len + 2 * strlen(s) + 4 >= outsz)
            return -1;
        if (i > 0)
            out[len++] = ',';
        out[len++] = '"';
        for (; *s != '\0'; s++) {
            if (*s == '"' || *s == '\\')
                out[len++] = '\\';
            out[len++] = *s;
        }
        out[len++] = '"';
    }
    out[len++] = '}';
    out[len] = '\0';
    return 0;
}

int load_array(struct load_ctx *c, const struct load_row *r, const char *key, int required,
               int (*valid)(const char *item), const char *what, char *out, size_t outsz)
{
    json_t *items = NULL;
    int rc = load_list(c, r, key, valid, what, &items);

    if (rc == 1 && json_array_size(items) == 0)
        rc = 0; /* an empty list is an absent one */
    if (rc == 0 && required) {
        load_error(c, r->line, key, "required");
        rc = -1;
    } else if (rc == 0) {
        sb_strlcpy(out, "{}", outsz);
    } else if (rc == 1 && load_pg_array(items, out, outsz) != 0) {
        load_error(c, r->line, key, "too many or too long items");
        rc = -1;
    }
    json_decref(items);
    return rc;
}

int load_unique(struct load_ctx *c, const struct load_row *r, const char *field, const char *key)
{
    json_t *first = json_object_get(c->seen, key);

    if (first != NULL) {
        char msg[64];
        sb_fmt(msg, sizeof(msg), "duplicate of line %" JSON_INTEGER_FORMAT,
               json_integer_value(first));
        load_error(c, r->line, field, msg);
        return -1;
    }
    json_object_set_new(c->seen, key, json_integer(r->line));
    return 0;
}

int load_exec(struct sb_pg *pg, const char *sql, int nparams, const char *const *params, char *err,
              size_t errsz)
{
    int e = 0;
    PGresult *res = sb_pg_query(pg, sql, nparams, params, &e, err, errsz);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int load_valid_name(const char *item)
{
    size_t n = strlen(item);

    if (n == 0 || n > 63 || !islower((unsigned char)item[0]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(islower((unsigned char)item[i]) || isdigit((unsigned char)item[i]) || item[i] == '_'))
            return 0;
    }
    return 1;
}

int load_valid_language(const char *item)
{
    size_t n = strlen(item), i = 0;

    while (i < n && islower((unsigned char)item[i]))
        i++;
    if (i < 2 || i > 3)
        return 0;
    if (i == n)
        return 1;
    if (item[i] != '-' || n - i - 1 < 2 || n - i - 1 > 8)
        return 0;
    for (i++; i < n; i++) {
        if (!isalnum((unsigned char)item[i]))
            return 0;
    }
    return 1;
}

/* Driver ---------------------------------------------------------------------------- */

int load_valid_amount(const char *s)
{
    size_t i = 0, d = 0;

    while (isdigit((unsigned char)s[i]))
        i++;
    if (i == 0 || i > 12)
        return 0;
    if (s[i] == '.') {
        while (isdigit((unsigned char)s[i + 1 + d]))
            d++;
        if (d == 0 || d > 2)
            return 0;
        i += 1 + d;
    }
    return s[i] == '\0';
}

static int parse_args(struct load_ctx *c, const struct load_kind **kind, int argc, char **argv)
{
    static const struct load_kind *const kinds[] = {&load_agents, &load_customers, &load_policies,
                                                    &load_calendars};

    *kind = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (argc >= 1 && strcmp(argv[0], kinds[i]->name) == 0)
            *kind = kinds[i];
    }
    if (*kind == NULL) {
        fprintf(stderr,
                "sbctl load: expected agents, customers, policies or calendars (see --help)\n");
        return SBCTL_EXIT_USAGE;
    }
    if (argc < 2) {
        fprintf(stderr, "sbctl load %s: FILE missing (see --help)\n", argv[0]);
        return SBCTL_EXIT_USAGE;
    }
    c->file = argv[1];
    for (int i = 2; i < argc; i++) {
        int vip = strcmp(argv[i], "--vip-spend") == 0;
        if (*kind != &load_customers || (!vip && strcmp(argv[i], "--regular-spend") != 0) ||
            i + 1 >= argc || !load_valid_amount(argv[i + 1])) {
            fprintf(stderr, "sbctl load: unexpected argument \"%s\" (see --help)\n", argv[i]);
            return SBCTL_EXIT_USAGE;
        }
        if (vip)
            c->vip_spend = argv[++i];
        else
            c->regular_spend = argv[++i];
    }
    if (strtod(c->regular_spend, NULL) > strtod(c->vip_spend, NULL)) {
        fprintf(stderr, "sbctl load: --regular-spend must not exceed --vip-spend\n");
        return SBCTL_EXIT_USAGE;
    }
    return 0;
}

static int read_rows(struct load_ctx *c, const struct load_kind *k, struct rows *rows)
{
    char err[512];
    size_t len, n = strlen(c->file);
    char *buf;
    int rc;

    if (!(n > 4 && (strcasecmp(c->file + n - 4, ".csv") == 0)) &&
        !(n > 5 && strcasecmp(c->file + n - 5, ".json") == 0)) {
        fprintf(stderr, "sbctl load: %s: the name must end in .json or .csv\n", c->file);
        return -1;
    }
    buf = sbctl_read_file(c->file, FILE_MAX, &len, err, sizeof(err));
    if (buf == NULL) {
        fprintf(stderr, "sbctl load: %s\n", err);
        return -1;
    }
    if (strcasecmp(c->file + n - 4, ".csv") == 0)
        rc = read_csv(c, k, buf, len, rows);
    else
        rc = read_json(c, k, buf, len, rows);
    free(buf);
    return rc;
}

/* Writes every row in one transaction. Returns the exit code. */
static int write_rows(const struct sbctl *ctl, struct load_ctx *c, const struct load_kind *k,
                      const struct rows *rows)
{
    char err[1024];
    struct sb_pg *pg = sbctl_pg(ctl);
    int rc = SBCTL_EXIT_FAIL;

    if (pg == NULL)
        return SBCTL_EXIT_FAIL;
    if (sb_pg_exec(pg, "BEGIN", err, sizeof(err)) != 0) {
        fprintf(stderr, "sbctl load: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < rows->n; i++) {
        if (k->write(c, pg, &rows->v[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "%s:%d: %s; nothing was written\n", c->file, rows->v[i].line, err);
            sb_pg_exec(pg, "ROLLBACK", err, sizeof(err));
            goto out;
        }
    }
    if (sb_pg_exec(pg, "COMMIT", err, sizeof(err)) != 0) {
        fprintf(stderr, "sbctl load: commit failed (loading again is safe): %s\n", err);
        goto out;
    }
    if (k->committed != NULL && k->committed(ctl, c, err, sizeof(err)) != 0) {
        fprintf(stderr, "sbctl load: loaded, but %s\n", err);
        goto out;
    }
    printf("loaded %zu %s from %s\n", rows->n, k->name, c->file);
    rc = SBCTL_EXIT_OK;
out:
    sb_pg_destroy(pg);
    return rc;
}

int sbctl_load(struct sbctl *ctl, int argc, char **argv)
{
    struct load_ctx c = {0};
    struct rows rows = {0};
    const struct load_kind *k;
    int rc;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    c.vip_spend = DEFAULT_VIP_SPEND;
    c.regular_spend = DEFAULT_REGULAR_SPEND;
    rc = parse_args(&c, &k, argc, argv);
    if (rc != 0)
        return rc;
    c.seen = json_object();
    c.changed = json_array();
    rc = SBCTL_EXIT_FAIL;
    if (read_rows(&c, k, &rows) != 0 && c.errors == 0)
        goto out; /* the file could not be read at all: already said why */
    for (size_t i = 0; i < rows.n; i++)
        k->check(&c, &rows.v[i]);
    if (c.errors > 0) {
        fprintf(stderr, "sbctl load: %d error(s) in %s; nothing was written\n", c.errors, c.file);
        goto out;
    }
    json_object_clear(c.seen); /* write() records its keys again */
    rc = write_rows(ctl, &c, k, &rows);
out:
    rows_free(&rows);
    json_decref(c.seen);
    json_decref(c.changed);
    return rc;
}
