/* SLA policy rows, their checks, the built-in defaults and the choice of a target;
 * see policy.h. */
#include "policy.h"

#include "sb/err.h"
#include "sb/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGET_S (400LL * 86400)

/* Row kinds: "band", then the clock kinds that have rows of their own. */
enum pkind {
    PK_BAND = 0,
    PK_FIRST_TOUCH,
    PK_CLAIM,
    PK_ORDER_ANOMALY_CONTACT,
    PK_RETURN_REVIEW,
    PK_COMPLEX_COMPLAINT,
    PK_AFTER_SALE_FIRST_RESPONSE,
    PK_PUBLIC_NEGATIVE,
    PK_INCIDENT_REPORT,
    PK_COUNT
};

static const char *const PKIND_NAMES[PK_COUNT] = {
    "band",
    "first_touch",
    "claim",
    "order_anomaly_contact",
    "return_review",
    "complex_complaint",
    "after_sale_first_response",
    "public_negative",
    "incident_report",
};

struct prow {
    int64_t id;
    uint8_t pkind, band, channel, period, notify, n_warn;
    bool business;
    uint16_t warn_bp[SB_SLA_MAX_WARN];
    int64_t fr_ms, res_ms;
    int res_days;
    char team[64];
};

struct sb_sla_policies {
    struct prow *rows;
    size_t n;
};

/* The defaults of SPEC §1–§4 (deploy/config/policies.json). P1 has no resolution
 * target in SPEC: P2's 4 h, so that P1 is never looser. */
#define W(a, b)                                                                                    \
    2,                                                                                             \
    {                                                                                              \
        a, b                                                                                       \
    }
static const struct sb_sla_policy_row DEFAULT_ROWS[] = {
    {0, "band", "P1", "", "", "", 600, 14400, 0, false, W(0.5, 0.8), "supervisor"},
    {0, "band", "P2", "", "", "", 3600, 14400, 0, false, W(0.75, 0.9), ""},
    {0, "band", "P3", "", "", "", 14400, 86400, 0, false, W(0.75, 0.9), ""},
    {0, "band", "P4", "", "", "", 86400, 259200, 0, false, W(0.75, 0.9), ""},
    {0, "first_touch", "", "chat", "", "", 30, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "web", "", "", 30, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "wechat", "", "", 30, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "social", "", "", 30, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "chat", "", "promotion_peak", 60, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "web", "", "promotion_peak", 60, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "wechat", "", "promotion_peak", 60, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "social", "", "promotion_peak", 60, 0, 0, false, W(0.5, 0.8), ""},
    {0, "first_touch", "", "phone", "", "", 15, 0, 0, false, W(0.6, 0.8), ""},
    {0, "claim", "", "", "", "", 7200, 0, 0, false, W(0.75, 0.9), ""},
    {0, "order_anomaly_contact", "", "", "", "", 3600, 0, 0, false, W(0.75, 0.9), ""},
    {0, "return_review", "", "", "", "", 86400, 0, 0, false, W(0.75, 0.9), ""},
    {0, "complex_complaint", "", "", "", "", 0, 0, 1, false, W(0.75, 0.9), ""},
    {0, "after_sale_first_response", "", "", "", "", 3600, 0, 0, false, W(0.75, 0.9), ""},
    {0, "public_negative", "", "", "", "", 7200, 0, 0, false, W(0.5, 0.75), ""},
    {0, "incident_report", "", "", "", "", 3600, 0, 0, false, W(0.5, 0.75), ""},
};
#undef W

static int parse_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static bool team_ok(const char *s)
{
    size_t n = strnlen(s, 64);
    if (n == 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':'))
            return false;
    }
    return true;
}

/* The fields of a row are fixed arrays filled from outside: they must hold a NUL. */
static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static int compile_row(const struct sb_sla_policy_row *r, struct prow *o, char *err, size_t esz)
{
    int v;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        char what_[160];                                                                           \
        sb_fmt(what_, sizeof(what_), __VA_ARGS__);                                                 \
        sb_fmt(err, esz, "policy %lld: %s", (long long)r->id, what_);                              \
        return SB_E_INVAL;                                                                         \
    } while (0)

    memset(o, 0, sizeof(*o));
    o->id = r->id;
    if (!terminated(r->kind, sizeof(r->kind)) || !terminated(r->band, sizeof(r->band)) ||
        !terminated(r->channel, sizeof(r->channel)) ||
        !terminated(r->team_id, sizeof(r->team_id)) ||
        !terminated(r->period_kind, sizeof(r->period_kind)) ||
        !terminated(r->notify_at_start, sizeof(r->notify_at_start)))
        FAIL("a text field is not terminated");
    v = parse_name(PKIND_NAMES, PK_COUNT, r->kind);
    if (v < 0)
        FAIL("unknown kind \"%s\"", r->kind);
    o->pkind = (uint8_t)v;
    if (r->band[0] != '\0') {
        v = sb_sla_band_parse(r->band);
        if (v < 0)
            FAIL("unknown band \"%s\"", r->band);
        o->band = (uint8_t)v;
    } else if (o->pkind == PK_BAND) {
        FAIL("kind band needs a band");
    }
    if (r->channel[0] != '\0') {
        v = sb_sla_channel_parse(r->channel);
        if (v < 0)
            FAIL("unknown channel \"%s\"", r->channel);
        o->channel = (uint8_t)v;
    }
    if (!team_ok(r->team_id))
        FAIL("invalid team id");
    sb_strlcpy(o->team, r->team_id, sizeof(o->team));
    if (r->period_kind[0] != '\0') {
        v = sb_sla_period_parse(r->period_kind);
        if (v < 0)
            FAIL("unknown period_kind \"%s\"", r->period_kind);
        o->period = (uint8_t)v;
    }
    if (r->notify_at_start[0] != '\0') {
        v = sb_sla_level_parse(r->notify_at_start);
        if (v <= SB_LEVEL_AGENT)
            FAIL("notify_at_start must be lead or supervisor");
        o->notify = (uint8_t)v;
    }
    if (r->first_response_s < 0 || r->first_response_s > MAX_TARGET_S || r->resolution_s < 0 ||
        r->resolution_s > MAX_TARGET_S)
        FAIL("target out of range (1 s to 400 days)");
    if (r->resolution_business_days < 0 || r->resolution_business_days > 366)
        FAIL("resolution_business_days out of range (1 to 366)");
    if (r->resolution_s > 0 && r->resolution_business_days > 0)
        FAIL("resolution_s and resolution_business_days are exclusive");
    if (r->first_response_s == 0 && r->resolution_s == 0 && r->resolution_business_days == 0)
        FAIL("no target");
    o->fr_ms = r->first_response_s * 1000;
    o->res_ms = r->resolution_s * 1000;
    o->res_days = r->resolution_business_days;
    o->business = r->business_time;
    if (r->n_warn < 0 || r->n_warn > SB_SLA_MAX_WARN)
        FAIL("at most %d warning fractions", SB_SLA_MAX_WARN);
    for (int i = 0; i < r->n_warn; i++) {
        double f = r->warn_fractions[i];
        long bp = isfinite(f) ? lround(f * 10000.0) : -1;
        if (!(f > 0.0 && f < 1.0) || bp < 1 || bp > 9999 || (i > 0 && bp <= o->warn_bp[i - 1]))
            FAIL("warning fractions must ascend within (0, 1)");
        o->warn_bp[i] = (uint16_t)bp;
    }
    o->n_warn = (uint8_t)r->n_warn;
    return 0;
#undef FAIL
}

static bool same_key(const struct prow *a, const struct prow *b)
{
    return a->pkind == b->pkind && a->band == b->band && a->channel == b->channel &&
           a->period == b->period && strcmp(a->team, b->team) == 0;
}

struct sb_sla_policies *sb_sla_policies_new(const struct sb_sla_policy_row *rows, size_t n,
                                            char *errstr, size_t errstr_size)
{
    struct sb_sla_policies *p = NULL;
    char err[256];

    if (n > SB_SLA_MAX_POLICIES || (n > 0 && rows == NULL)) {
        sb_fmt(errstr, errstr_size, "too many policies (at most %d)", SB_SLA_MAX_POLICIES);
        return NULL;
    }
    p = sb_calloc(1, sizeof(*p));
    p->rows = sb_calloc(n + 1, sizeof(*p->rows));
    for (size_t i = 0; i < n; i++) {
        if (compile_row(&rows[i], &p->rows[i], err, sizeof(err)) != 0) {
            sb_strlcpy(errstr, err, errstr_size);
            goto fail;
        }
        /* Quadratic, but only over rows of the same kind and only at load. */
        for (size_t j = 0; j < i; j++) {
            if (same_key(&p->rows[i], &p->rows[j])) {
                sb_fmt(errstr, errstr_size, "policy %lld: same key as policy %lld",
                       (long long)rows[i].id, (long long)rows[j].id);
                goto fail;
            }
        }
        p->n++;
    }
    return p;
fail:
    sb_sla_policies_destroy(p);
    return NULL;
}

const struct sb_sla_policy_row *sb_sla_policies_default_rows(size_t *n)
{
    *n = sizeof(DEFAULT_ROWS) / sizeof(DEFAULT_ROWS[0]);
    return DEFAULT_ROWS;
}

struct sb_sla_policies *sb_sla_policies_default(void)
{
    char err[256];
    size_t n;
    const struct sb_sla_policy_row *rows = sb_sla_policies_default_rows(&n);
    struct sb_sla_policies *p = sb_sla_policies_new(rows, n, err, sizeof(err));
    if (p == NULL)
        abort(); /* the built-in table is checked by the unit tests */
    return p;
}

void sb_sla_policies_destroy(struct sb_sla_policies *p)
{
    if (p == NULL)
        return;
    free(p->rows);
    free(p);
}

size_t sb_sla_policies_count(const struct sb_sla_policies *p)
{
    return p->n;
}

static int pkind_of(enum sb_sla_kind k)
{
    switch (k) {
    case SB_SLA_FIRST_RESPONSE:
    case SB_SLA_RESOLUTION:
        return PK_BAND;
    case SB_SLA_CLAIM:
        return PK_CLAIM;
    case SB_SLA_FIRST_TOUCH:
        return PK_FIRST_TOUCH;
    case SB_SLA_ORDER_ANOMALY_CONTACT:
        return PK_ORDER_ANOMALY_CONTACT;
    case SB_SLA_RETURN_REVIEW:
        return PK_RETURN_REVIEW;
    case SB_SLA_COMPLEX_COMPLAINT:
        return PK_COMPLEX_COMPLAINT;
    case SB_SLA_AFTER_SALE_FIRST_RESPONSE:
        return PK_AFTER_SALE_FIRST_RESPONSE;
    case SB_SLA_PUBLIC_NEGATIVE:
        return PK_PUBLIC_NEGATIVE;
    case SB_SLA_INCIDENT_REPORT:
        return PK_INCIDENT_REPORT;
    default:
        return -1;
    }
}

int sb_sla_policies_choose(const struct sb_sla_policies *p, enum sb_sla_kind kind,
                           const struct sb_sla_situation *s, struct sb_sla_target *out)
{
    int pk = pkind_of(kind), best_score = -1;
    bool wants_resolution = kind == SB_SLA_RESOLUTION || kind == SB_SLA_COMPLEX_COMPLAINT;
    const char *team = s->team_id != NULL ? s->team_id : "";
    const struct prow *best = NULL;

    if (pk < 0)
        return SB_E_INVAL;
    for (size_t i = 0; i < p->n; i++) {
        const struct prow *r = &p->rows[i];
        if (r->pkind != pk)
            continue;
        if ((r->band != 0 && r->band != s->band) || (r->channel != 0 && r->channel != s->channel) ||
            (r->period != 0 && r->period != s->period) ||
            (r->team[0] != '\0' && strcmp(r->team, team) != 0))
            continue;
        if (wants_resolution ? (r->res_ms == 0 && r->res_days == 0) : r->fr_ms == 0)
            continue;
        int score = (r->period != 0) * 8 + (r->team[0] != '\0') * 4 + (r->channel != 0) * 2 +
                    (r->band != 0);
        if (score > best_score) {
            best_score = score;
            best = r;
        }
    }
    if (best == NULL)
        return SB_E_NOENT;
    memset(out, 0, sizeof(*out));
    if (wants_resolution && best->res_days > 0) {
        out->working_days = best->res_days;
        out->business_time = true;
    } else {
        out->target_ms = wants_resolution ? best->res_ms : best->fr_ms;
        out->business_time = best->business;
    }
    out->n_warn = best->n_warn;
    memcpy(out->warn_bp, best->warn_bp, sizeof(out->warn_bp));
    /* notify_at_start concerns the first clock of the row (P1: work starts within
     * 10 minutes, the supervisor told at once), not its resolution clock. */
    out->notify_at_start =
        wants_resolution && pk == PK_BAND ? SB_LEVEL_AGENT : (enum sb_sla_level)best->notify;
    out->policy_id = best->id;
    out->period = (enum sb_sla_period)best->period;
    return 0;
}

int sb_sla_period_active(const struct sb_sla_period_row *v, size_t n, int64_t at_ms)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const struct sb_sla_period_row *r = &v[i];
        if (at_ms < r->starts_ms || at_ms >= r->ends_ms)
            continue;
        if (best >= 0) {
            const struct sb_sla_period_row *b = &v[best];
            int rk = r->kind == SB_PERIOD_OUTAGE, bk = b->kind == SB_PERIOD_OUTAGE;
            if (rk != bk
                    ? rk < bk
                    : (r->starts_ms != b->starts_ms ? r->starts_ms < b->starts_ms : r->id < b->id))
                continue;
        }
        best = (int)i;
    }
    return best;
}
