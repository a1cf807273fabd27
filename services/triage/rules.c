/* Rule book loading and Hyperscan compilation (see rules.h). Each rule may carry
 * several patterns; every pattern becomes one Hyperscan expression whose id maps back
 * to its rule, and a per-scan bitmap reports each rule once. */
#include "rules.h"

#include "sb/err.h"
#include "sb/util.h"

#include <hs/hs.h>
#include <stdlib.h>
#include <string.h>

static const char *const domain_names[SB_DOMAIN_COUNT] = {
    "product_function", "order_payment",     "logistics_delivery",
    "account_security", "service_complaint", "suggestion_inquiry",
};
/* The datasets' maps use these short names for the same domains. */
static const char *const domain_short[SB_DOMAIN_COUNT] = {
    "product", "order_payment", "logistics", "account_security", "complaint", "inquiry",
};
static const char *const nature_names[] = {"fault", "inquiry", "demand"};
static const char *const stage_names[] = {"pre_sale", "in_sale", "after_sale", "complaint"};
static const char *const flag_names[] = {"legal_pr", "public_negative", "self_service", "spam"};
static const char *const sla_names[] = {"order_anomaly_contact", "return_review",
                                        "complex_complaint", "after_sale_first_response",
                                        "public_negative"};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int find_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; s != NULL && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

const char *sb_domain_name(int d)
{
    return d >= 0 && d < SB_DOMAIN_COUNT ? domain_names[d] : "";
}

int sb_domain_parse(const char *s)
{
    int d = find_name(domain_names, SB_DOMAIN_COUNT, s);
    return d >= 0 ? d : find_name(domain_short, SB_DOMAIN_COUNT, s);
}

const char *sb_sla_kind_name(int bit)
{
    return bit >= 0 && bit < N_OF(sla_names) ? sla_names[bit] : NULL;
}

const char *sb_nature_name(int n)
{
    return n >= 0 && n < N_OF(nature_names) ? nature_names[n] : "";
}

int sb_nature_parse(const char *s)
{
    return find_name(nature_names, N_OF(nature_names), s);
}

const char *sb_stage_name(int s)
{
    return s >= 0 && s < N_OF(stage_names) ? stage_names[s] : "";
}

int sb_stage_parse(const char *s)
{
    return find_name(stage_names, N_OF(stage_names), s);
}

struct sb_ruleset {
    struct sb_rule *rules;
    size_t nrules;
    size_t npatterns;
    unsigned *pattern_rule; /* Hyperscan expression id → rule index */
    hs_database_t *db;      /* NULL when there are no patterns */
    double explicit_weight;
    int stage_by_domain[SB_DOMAIN_COUNT];
};

struct sb_rulescan {
    hs_scratch_t *scratch;
    unsigned char *seen; /* one byte per rule */
    size_t nrules;
};

/* Growable arrays of the expressions handed to hs_compile_multi. */
struct patterns {
    char **expr;
    unsigned *flags;
    unsigned *ids;
    size_t n, cap;
};

static void patterns_add(struct patterns *p, char *expr, unsigned flags, unsigned rule)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->expr = sb_realloc(p->expr, p->cap * sizeof(*p->expr));
        p->flags = sb_realloc(p->flags, p->cap * sizeof(*p->flags));
        p->ids = sb_realloc(p->ids, p->cap * sizeof(*p->ids));
    }
    p->expr[p->n] = expr;
    p->flags[p->n] = flags;
    p->ids[p->n] = rule;
    p->n++;
}

static void patterns_free(struct patterns *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->expr[i]);
    free(p->expr);
    free(p->flags);
    free(p->ids);
}

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A literal term as a regular expression: metacharacters escaped, spaces matching any
 * run of white space, and \b on a side that ends in an ASCII word character (so that
 * "refund" does not fire inside "refunded…" only when written "refund\b"; CJK terms
 * have no word boundaries). */
static char *literal_expr(const char *term)
{
    size_t n = strlen(term);
    char *out = sb_malloc(n * 4 + 8), *o = out;

    if (n > 0 && is_word_byte((unsigned char)term[0])) {
        *o++ = '\\';
        *o++ = 'b';
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)term[i];
        if (c == ' ') {
            while (i + 1 < n && term[i + 1] == ' ')
                i++;
            memcpy(o, "\\s+", 3);
            o += 3;
            continue;
        }
        if (strchr("\\^$.|?*+()[]{}/-", c) != NULL && c != 0)
            *o++ = '\\';
        *o++ = (char)c;
    }
    if (n > 0 && is_word_byte((unsigned char)term[n - 1])) {
        *o++ = '\\';
        *o++ = 'b';
    }
    *o = '\0';
    return out;
}

static const char *const rule_keys[] = {"id",        "terms",   "regex",   "domain", "weight",
                                        "nature",    "stage",   "urgency", "flags",  "score_delta",
                                        "signature", "article", "sla",     "comment"};

static int rule_parse(const json_t *j, size_t idx, struct sb_rule *r, struct patterns *pats,
                      unsigned rule_no, char *err, size_t errsz)
{
    const char *key, *id;
    json_t *v;
    size_t i;

    memset(r, 0, sizeof(*r));
    if (!json_is_object(j)) {
        sb_fmt(err, errsz, "rules[%zu]: not an object", idx);
        return SB_E_INVAL;
    }
    id = json_string_value(json_object_get(j, "id"));
    if (id == NULL || id[0] == '\0' || strlen(id) > 127) {
        sb_fmt(err, errsz, "rules[%zu].id: a string of 1-127 bytes is required", idx);
        return SB_E_INVAL;
    }
    json_object_foreach((json_t *)j, key, v)
    {
        if (find_name(rule_keys, N_OF(rule_keys), key) < 0) {
            sb_fmt(err, errsz, "rule \"%s\": unknown key \"%s\"", id, key);
            return SB_E_INVAL;
        }
    }
    memset(r, 0, sizeof(*r));
    r->id = sb_strdup(id);
    r->domain = SB_DOMAIN_NONE;
    r->nature = SB_NATURE_NONE;
    r->stage = SB_JOURNEY_NONE;
    r->weight = 1.0;

#define FIELD_ERR(field, what)                                                                     \
    do {                                                                                           \
        sb_fmt(err, errsz, "rule \"%s\".%s: %s", id, field, what);                                 \
        return SB_E_INVAL;                                                                         \
    } while (0)

    if ((v = json_object_get(j, "domain")) != NULL &&
        (r->domain = sb_domain_parse(json_string_value(v))) < 0)
        FIELD_ERR("domain", "not one of the six domains");
    if ((v = json_object_get(j, "nature")) != NULL &&
        (r->nature = sb_nature_parse(json_string_value(v))) < 0)
        FIELD_ERR("nature", "must be fault, inquiry or demand");
    if ((v = json_object_get(j, "stage")) != NULL &&
        (r->stage = sb_stage_parse(json_string_value(v))) < 0)
        FIELD_ERR("stage", "must be pre_sale, in_sale, after_sale or complaint");
    if ((v = json_object_get(j, "weight")) != NULL) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100)
            FIELD_ERR("weight", "a number from 0 to 100 is required");
        r->weight = json_number_value(v);
    }
    if ((v = json_object_get(j, "urgency")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3)
            FIELD_ERR("urgency", "an integer from 1 to 3 is required");
        r->urgency = (int)json_integer_value(v);
    }
    if ((v = json_object_get(j, "score_delta")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < -5 || json_integer_value(v) > 5)
            FIELD_ERR("score_delta", "an integer from -5 to 5 is required");
        r->score_delta = (int)json_integer_value(v);
    }
    if ((v = json_object_get(j, "signature")) != NULL) {
        if (!json_is_boolean(v))
            FIELD_ERR("signature", "true or false");
        r->signature = json_is_true(v);
    }
    if ((v = json_object_get(j, "article")) != NULL) {
        if (!json_is_string(v))
            FIELD_ERR("article", "a string is required");
        r->article = sb_strdup(json_string_value(v));
        r->flags |= SB_FLAG_SELF_SERVICE;
    }
    if ((v = json_object_get(j, "flags")) != NULL) {
        json_t *f;
        if (!json_is_array(v))
            FIELD_ERR("flags", "an array of flag names is required");
        json_array_foreach(v, i, f)
        {
            int b = find_name(flag_names, N_OF(flag_names), json_string_value(f));
            if (b < 0)
                FIELD_ERR("flags", "legal_pr, public_negative, self_service or spam");
            r->flags |= 1u << b;
        }
    }

    if ((v = json_object_get(j, "sla")) != NULL) {
        json_t *f;
        if (!json_is_array(v))
            FIELD_ERR("sla", "an array of special SLA clock kinds is required");
        json_array_foreach(v, i, f)
        {
            int b = find_name(sla_names, N_OF(sla_names), json_string_value(f));
            if (b < 0)
                FIELD_ERR("sla", "order_anomaly_contact, return_review, complex_complaint, "
                                 "after_sale_first_response or public_negative");
            r->sla |= 1u << b;
        }
    }

    size_t before = pats->n;
    static const char *const lists[] = {"terms", "regex"};
    for (int l = 0; l < 2; l++) {
        json_t *arr = json_object_get(j, lists[l]), *p;
        if (arr == NULL)
            continue;
        if (!json_is_array(arr))
            FIELD_ERR(lists[l], "an array of strings is required");
        json_array_foreach(arr, i, p)
        {
            const char *s = json_string_value(p);
            if (s == NULL || s[0] == '\0')
                FIELD_ERR(lists[l], "an array of non-empty strings is required");
            patterns_add(pats, l == 0 ? literal_expr(s) : sb_strdup(s),
                         HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH, rule_no);
        }
    }
    if (pats->n == before)
        FIELD_ERR("terms", "a rule needs at least one term or regex");
#undef FIELD_ERR
    return 0;
}

static void rules_free(struct sb_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rules[i].id);
        free(rules[i].article);
    }
    free(rules);
}

void sb_ruleset_destroy(struct sb_ruleset *rs)
{
    if (rs == NULL)
        return;
    rules_free(rs->rules, rs->nrules);
    free(rs->pattern_rule);
    hs_free_database(rs->db);
    free(rs);
}

static int parse_settings(struct sb_ruleset *rs, const json_t *rules, char *err, size_t errsz)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)rules, key, v)
    {
        if (strcmp(key, "version") == 0) {
            if (json_integer_value(v) != 1) {
                sb_fmt(err, errsz, "version: only version 1 is known");
                return SB_E_INVAL;
            }
        } else if (strcmp(key, "explicit_weight") == 0) {
            if (!json_is_number(v) || json_number_value(v) <= 0) {
                sb_fmt(err, errsz, "explicit_weight: a positive number is required");
                return SB_E_INVAL;
            }
            rs->explicit_weight = json_number_value(v);
        } else if (strcmp(key, "stage_by_domain") == 0) {
            const char *dk;
            json_t *dv;
            json_object_foreach(v, dk, dv)
            {
                int d = sb_domain_parse(dk), s = sb_stage_parse(json_string_value(dv));
                if (d < 0 || s < 0) {
                    sb_fmt(err, errsz, "stage_by_domain.%s: a domain mapped to a stage", dk);
                    return SB_E_INVAL;
                }
                rs->stage_by_domain[d] = s;
            }
        } else if (strcmp(key, "rules") != 0 && strcmp(key, "comment") != 0) {
            sb_fmt(err, errsz, "unknown key \"%s\"", key);
            return SB_E_INVAL;
        }
    }
    return 0;
}

static int parse_list(const json_t *arr, struct sb_ruleset *rs, struct patterns *pats,
                      const char *what, char *err, size_t errsz)
{
    json_t *r;
    size_t i;

    if (arr == NULL)
        return 0;
    if (!json_is_array(arr)) {
        sb_fmt(err, errsz, "%s: an array of rules is required", what);
        return SB_E_INVAL;
    }
    rs->rules = sb_realloc(rs->rules, (rs->nrules + json_array_size(arr)) * sizeof(*rs->rules));
    json_array_foreach(arr, i, r)
    {
        struct sb_rule *dst = &rs->rules[rs->nrules];
        int rc = rule_parse(r, i, dst, pats, (unsigned)rs->nrules, err, errsz);
        if (rc != 0) {
            free(dst->id);
            free(dst->article);
            return rc;
        }
        for (size_t k = 0; k < rs->nrules; k++) {
            if (strcmp(rs->rules[k].id, dst->id) == 0) {
                sb_fmt(err, errsz, "rule \"%s\": id used twice", dst->id);
                free(dst->id);
                free(dst->article);
                return SB_E_INVAL;
            }
        }
        rs->nrules++;
    }
    return 0;
}

struct sb_ruleset *sb_ruleset_build(const json_t *rules, const json_t *extra, char *err,
                                    size_t errsz)
{
    struct sb_ruleset *rs = sb_calloc(1, sizeof(*rs));
    struct patterns pats = {0};
    hs_compile_error_t *cerr = NULL;

    rs->explicit_weight = 1.0;
    for (int d = 0; d < SB_DOMAIN_COUNT; d++)
        rs->stage_by_domain[d] = SB_JOURNEY_AFTER_SALE;
    rs->stage_by_domain[SB_DOMAIN_COMPLAINT] = SB_JOURNEY_COMPLAINT;
    rs->stage_by_domain[SB_DOMAIN_INQUIRY] = SB_JOURNEY_PRE_SALE;
    if (!json_is_object(rules)) {
        sb_fmt(err, errsz, "the rules file must hold a JSON object");
        goto fail;
    }
    if (parse_settings(rs, rules, err, errsz) != 0 ||
        parse_list(json_object_get(rules, "rules"), rs, &pats, "rules", err, errsz) != 0 ||
        parse_list(extra, rs, &pats, "articles", err, errsz) != 0)
        goto fail;
    rs->npatterns = pats.n;
    rs->pattern_rule = sb_malloc((pats.n ? pats.n : 1) * sizeof(unsigned));
    for (size_t i = 0; i < pats.n; i++) {
        rs->pattern_rule[i] = pats.ids[i];
        pats.ids[i] = (unsigned)i;
    }
    if (pats.n > 0 &&
        hs_compile_multi((const char *const *)pats.expr, pats.flags, pats.ids, (unsigned)pats.n,
                         HS_MODE_BLOCK, NULL, &rs->db, &cerr) != HS_SUCCESS) {
        if (cerr->expression >= 0)
            sb_fmt(err, errsz, "rule \"%s\": pattern /%s/: %s",
                   rs->rules[rs->pattern_rule[cerr->expression]].id, pats.expr[cerr->expression],
                   cerr->message);
        else
            sb_fmt(err, errsz, "hyperscan: %s", cerr->message);
        hs_free_compile_error(cerr);
        goto fail;
    }
    patterns_free(&pats);
    return rs;
fail:
    patterns_free(&pats);
    sb_ruleset_destroy(rs);
    return NULL;
}

struct sb_ruleset *sb_ruleset_load(const char *path, const json_t *extra, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    struct sb_ruleset *rs;
    char inner[384];

    if (j == NULL) {
        sb_fmt(err, errsz, "%s:%d: %s", path, jerr.line, jerr.text);
        return NULL;
    }
    rs = sb_ruleset_build(j, extra, inner, sizeof(inner));
    if (rs == NULL)
        sb_fmt(err, errsz, "%s: %s", path, inner);
    json_decref(j);
    return rs;
}

size_t sb_ruleset_count(const struct sb_ruleset *rs)
{
    return rs->nrules;
}

size_t sb_ruleset_patterns(const struct sb_ruleset *rs)
{
    return rs->npatterns;
}

const struct sb_rule *sb_ruleset_rule(const struct sb_ruleset *rs, size_t i)
{
    return i < rs->nrules ? &rs->rules[i] : NULL;
}

double sb_ruleset_explicit_weight(const struct sb_ruleset *rs)
{
    return rs->explicit_weight;
}

int sb_ruleset_default_stage(const struct sb_ruleset *rs, int domain)
{
    return domain >= 0 && domain < SB_DOMAIN_COUNT ? rs->stage_by_domain[domain]
                                                   : SB_JOURNEY_AFTER_SALE;
}

struct sb_rulescan *sb_rulescan_new(const struct sb_ruleset *rs)
{
    struct sb_rulescan *sc = sb_calloc(1, sizeof(*sc));

    if (rs->db != NULL && hs_alloc_scratch(rs->db, &sc->scratch) != HS_SUCCESS)
        abort(); /* only on memory exhaustion */
    sc->nrules = rs->nrules;
    sc->seen = sb_calloc(rs->nrules ? rs->nrules : 1, 1);
    return sc;
}

void sb_rulescan_destroy(struct sb_rulescan *sc)
{
    if (sc == NULL)
        return;
    hs_free_scratch(sc->scratch);
    free(sc->seen);
    free(sc);
}

struct scan_ctx {
    const struct sb_ruleset *rs;
    unsigned char *seen;
};

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *arg)
{
    struct scan_ctx *c = arg;
    (void)from;
    (void)to;
    (void)flags;
    c->seen[c->rs->pattern_rule[id]] = 1;
    return 0;
}

int sb_rules_scan(const struct sb_ruleset *rs, struct sb_rulescan *sc, const char *text, size_t len,
                  int *fired, int cap)
{
    struct scan_ctx c = {rs, sc->seen};
    int n = 0;

    if (rs->db == NULL || len == 0)
        return 0;
    if (len > 0xffffffffu)
        len = 0xffffffffu;
    memset(sc->seen, 0, rs->nrules);
    if (hs_scan(rs->db, text, (unsigned)len, 0, sc->scratch, on_match, &c) != HS_SUCCESS)
        return -1;
    for (size_t i = 0; i < rs->nrules && n < cap; i++)
        if (sc->seen[i])
            fired[n++] = (int)i;
    return n;
}
