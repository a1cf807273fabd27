/* Unit tests of SLA policy lookup (services/slawatch/policy.c): the built-in defaults
 * of SPEC §1–§4 and their equality with deploy/config/policies.json, the most specific
 * row winning (period > team > channel > band) with fall-back when a row lacks the
 * target, every validation error, and the declared period in force. */
#include "slatest.h"

#include "policy.h"

#include "sb/err.h"

#include <jansson.h>
#include <stdlib.h>

struct expect {
    enum sb_sla_kind kind;
    enum sb_sla_band band;
    enum sb_sla_channel channel;
    enum sb_sla_period period;
    int rc;
    int64_t target_ms;
    int working_days;
    uint16_t w1, w2;
    enum sb_sla_level notify;
    enum sb_sla_period chosen_period;
};

static const struct expect DEFAULTS[] = {
    {SB_SLA_FIRST_RESPONSE, SB_BAND_P1, SB_CHANNEL_CHAT, 0, 0, 600000, 0, 5000, 8000,
     SB_LEVEL_SUPERVISOR, 0},
    {SB_SLA_RESOLUTION, SB_BAND_P1, SB_CHANNEL_CHAT, 0, 0, 14400000, 0, 5000, 8000, SB_LEVEL_AGENT,
     0},
    {SB_SLA_FIRST_RESPONSE, SB_BAND_P2, SB_CHANNEL_EMAIL, 0, 0, 3600000, 0, 7500, 9000, 0, 0},
    {SB_SLA_RESOLUTION, SB_BAND_P2, SB_CHANNEL_EMAIL, 0, 0, 14400000, 0, 7500, 9000, 0, 0},
    {SB_SLA_FIRST_RESPONSE, SB_BAND_P3, SB_CHANNEL_WEB, 0, 0, 14400000, 0, 7500, 9000, 0, 0},
    {SB_SLA_RESOLUTION, SB_BAND_P3, SB_CHANNEL_WEB, 0, 0, 86400000, 0, 7500, 9000, 0, 0},
    {SB_SLA_FIRST_RESPONSE, SB_BAND_P4, SB_CHANNEL_API, 0, 0, 86400000, 0, 7500, 9000, 0, 0},
    {SB_SLA_RESOLUTION, SB_BAND_P4, SB_CHANNEL_API, 0, 0, 259200000, 0, 7500, 9000, 0, 0},
    {SB_SLA_FIRST_RESPONSE, SB_BAND_NONE, SB_CHANNEL_CHAT, 0, SB_E_NOENT, 0, 0, 0, 0, 0, 0},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P3, SB_CHANNEL_CHAT, 0, 0, 30000, 0, 5000, 8000, 0, 0},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P3, SB_CHANNEL_CHAT, SB_PERIOD_PROMOTION_PEAK, 0, 60000, 0, 5000,
     8000, 0, SB_PERIOD_PROMOTION_PEAK},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P3, SB_CHANNEL_WECHAT, SB_PERIOD_PROMOTION_PEAK, 0, 60000, 0, 5000,
     8000, 0, SB_PERIOD_PROMOTION_PEAK},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P3, SB_CHANNEL_CHAT, SB_PERIOD_OUTAGE, 0, 30000, 0, 5000, 8000, 0,
     0},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P1, SB_CHANNEL_PHONE, 0, 0, 15000, 0, 6000, 8000, 0, 0},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P1, SB_CHANNEL_PHONE, SB_PERIOD_PROMOTION_PEAK, 0, 15000, 0, 6000,
     8000, 0, 0},
    {SB_SLA_FIRST_TOUCH, SB_BAND_P2, SB_CHANNEL_EMAIL, 0, SB_E_NOENT, 0, 0, 0, 0, 0, 0},
    {SB_SLA_CLAIM, SB_BAND_P2, SB_CHANNEL_EMAIL, 0, 0, 7200000, 0, 7500, 9000, 0, 0},
    {SB_SLA_ORDER_ANOMALY_CONTACT, SB_BAND_P2, 0, 0, 0, 3600000, 0, 7500, 9000, 0, 0},
    {SB_SLA_RETURN_REVIEW, SB_BAND_P3, 0, 0, 0, 86400000, 0, 7500, 9000, 0, 0},
    {SB_SLA_COMPLEX_COMPLAINT, SB_BAND_P2, 0, 0, 0, 0, 1, 7500, 9000, 0, 0},
    {SB_SLA_AFTER_SALE_FIRST_RESPONSE, SB_BAND_P3, 0, 0, 0, 3600000, 0, 7500, 9000, 0, 0},
    {SB_SLA_PUBLIC_NEGATIVE, SB_BAND_P2, SB_CHANNEL_SOCIAL, 0, 0, 7200000, 0, 5000, 7500, 0, 0},
    {SB_SLA_INCIDENT_REPORT, SB_BAND_P1, 0, 0, 0, 3600000, 0, 5000, 7500, 0, 0},
    {SB_SLA_FOLLOWUP_CALLBACK, SB_BAND_P1, 0, 0, SB_E_INVAL, 0, 0, 0, 0, 0, 0},
};

static void test_defaults(void **state)
{
    struct sb_sla_policies *p = sb_sla_policies_default();
    (void)state;
    assert_int_equal(sb_sla_policies_count(p), 20);
    for (size_t i = 0; i < sizeof(DEFAULTS) / sizeof(DEFAULTS[0]); i++) {
        const struct expect *x = &DEFAULTS[i];
        struct sb_sla_situation s = {x->band, x->channel, NULL, x->period};
        struct sb_sla_target t;
        int rc = sb_sla_policies_choose(p, x->kind, &s, &t);
        if (rc != x->rc)
            fail_msg("case %zu (%s): rc %d, expected %d", i, sb_sla_kind_name(x->kind), rc, x->rc);
        if (rc != 0)
            continue;
        if (t.target_ms != x->target_ms || t.working_days != x->working_days || t.n_warn != 2 ||
            t.warn_bp[0] != x->w1 || t.warn_bp[1] != x->w2 || t.notify_at_start != x->notify ||
            t.period != x->chosen_period)
            fail_msg("case %zu (%s): target %" PRId64 " days %d warn %u/%u notify %d period %d; "
                     "expected %" PRId64 " %d %u/%u %d %d",
                     i, sb_sla_kind_name(x->kind), t.target_ms, t.working_days, t.warn_bp[0],
                     t.warn_bp[1], t.notify_at_start, t.period, x->target_ms, x->working_days,
                     x->w1, x->w2, x->notify, x->chosen_period);
        assert_int_equal(sb_sla_target_check(&t), 0);
        assert_int_equal(t.business_time, x->working_days > 0);
    }
    sb_sla_policies_destroy(p);
}

static const char *repo_root(char *buf, size_t n)
{
    const char *env = getenv("SB_REPO_ROOT");
    if (env != NULL)
        return env;
    snprintf(buf, n, "%s", __FILE__);
    char *cut = strstr(buf, "/tests/slawatch_unit/");
    if (cut != NULL)
        *cut = '\0';
    return buf;
}

static void copy_field(char *dst, size_t n, json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* The built-in defaults are the committed policy file, row for row. */
static void test_defaults_match_file(void **state)
{
    char root[512], path[600], err[256];
    json_error_t jerr;
    size_t n_def, n;
    (void)state;
    snprintf(path, sizeof(path), "%s/deploy/config/policies.json", repo_root(root, sizeof(root)));
    json_t *arr = json_load_file(path, 0, &jerr);
    if (arr == NULL)
        fail_msg("%s: %s", path, jerr.text);
    const struct sb_sla_policy_row *def = sb_sla_policies_default_rows(&n_def);
    n = json_array_size(arr);
    assert_int_equal(n, n_def);
    struct sb_sla_policy_row *rows = calloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(arr, i), *w = json_object_get(r, "warn_fractions");
        rows[i].id = (int64_t)i + 1;
        copy_field(rows[i].kind, sizeof(rows[i].kind), r, "kind");
        copy_field(rows[i].band, sizeof(rows[i].band), r, "band");
        copy_field(rows[i].channel, sizeof(rows[i].channel), r, "channel");
        copy_field(rows[i].team_id, sizeof(rows[i].team_id), r, "team");
        copy_field(rows[i].period_kind, sizeof(rows[i].period_kind), r, "period_kind");
        copy_field(rows[i].notify_at_start, sizeof(rows[i].notify_at_start), r, "notify_at_start");
        rows[i].first_response_s = json_integer_value(json_object_get(r, "first_response_s"));
        rows[i].resolution_s = json_integer_value(json_object_get(r, "resolution_s"));
        rows[i].resolution_business_days =
            (int)json_integer_value(json_object_get(r, "resolution_business_days"));
        rows[i].business_time = json_is_true(json_object_get(r, "business_time"));
        rows[i].n_warn = (int)json_array_size(w);
        for (size_t k = 0; k < json_array_size(w) && k < SB_SLA_MAX_WARN; k++)
            rows[i].warn_fractions[k] = json_number_value(json_array_get(w, k));
    }
    struct sb_sla_policies *file = sb_sla_policies_new(rows, n, err, sizeof(err));
    if (file == NULL)
        fail_msg("%s", err);
    for (size_t i = 0; i < n; i++) {
        const struct sb_sla_policy_row *a = &rows[i], *b = NULL;
        for (size_t k = 0; k < n_def; k++) {
            if (strcmp(def[k].kind, a->kind) == 0 && strcmp(def[k].band, a->band) == 0 &&
                strcmp(def[k].channel, a->channel) == 0 &&
                strcmp(def[k].team_id, a->team_id) == 0 &&
                strcmp(def[k].period_kind, a->period_kind) == 0)
                b = &def[k];
        }
        if (b == NULL)
            fail_msg("row %zu of %s (%s %s %s) is not built in", i, path, a->kind, a->band,
                     a->channel);
        if (a->first_response_s != b->first_response_s || a->resolution_s != b->resolution_s ||
            a->resolution_business_days != b->resolution_business_days ||
            a->business_time != b->business_time || a->n_warn != b->n_warn ||
            strcmp(a->notify_at_start, b->notify_at_start) != 0)
            fail_msg("row %zu of %s (%s %s %s) differs from the built-in one", i, path, a->kind,
                     a->band, a->channel);
        for (int k = 0; k < a->n_warn; k++)
            assert_true(a->warn_fractions[k] == b->warn_fractions[k]);
    }
    sb_sla_policies_destroy(file);
    free(rows);
    json_decref(arr);
}

static struct sb_sla_policy_row row(int64_t id, const char *kind, const char *band,
                                    const char *channel, const char *team, const char *period,
                                    int64_t fr, int64_t res)
{
    struct sb_sla_policy_row r;
    memset(&r, 0, sizeof(r));
    r.id = id;
    snprintf(r.kind, sizeof(r.kind), "%s", kind);
    snprintf(r.band, sizeof(r.band), "%s", band);
    snprintf(r.channel, sizeof(r.channel), "%s", channel);
    snprintf(r.team_id, sizeof(r.team_id), "%s", team);
    snprintf(r.period_kind, sizeof(r.period_kind), "%s", period);
    r.first_response_s = fr;
    r.resolution_s = res;
    r.n_warn = 2;
    r.warn_fractions[0] = 0.75;
    r.warn_fractions[1] = 0.9;
    return r;
}

static void test_most_specific_wins(void **state)
{
    char err[256];
    struct sb_sla_policy_row rows[] = {
        row(1, "band", "P2", "", "", "", 3600, 14400),
        row(2, "band", "P2", "chat", "", "", 900, 0),
        row(3, "band", "P2", "", "vip", "", 1800, 0),
        row(4, "band", "P2", "", "vip", "outage", 7200, 0),
        row(5, "band", "P2", "", "", "promotion_peak", 0, 28800),
    };
    struct sb_sla_target t;
    (void)state;
    rows[2].business_time = true;
    struct sb_sla_policies *p = sb_sla_policies_new(rows, 5, err, sizeof(err));
    assert_non_null(p);
    struct sb_sla_situation s = {SB_BAND_P2, SB_CHANNEL_CHAT, NULL, SB_PERIOD_NONE};
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &s, &t), 0);
    assert_int_equal(t.policy_id, 2); /* channel beats band alone */
    assert_int_equal(t.target_ms, 900000);
    s.team_id = "vip";
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &s, &t), 0);
    assert_int_equal(t.policy_id, 3); /* team beats channel */
    assert_true(t.business_time);
    /* The team row has no resolution target: the next most specific that has one. */
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_RESOLUTION, &s, &t), 0);
    assert_int_equal(t.policy_id, 1);
    assert_int_equal(t.target_ms, 14400000);
    s.period = SB_PERIOD_OUTAGE;
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &s, &t), 0);
    assert_int_equal(t.policy_id, 4); /* the declared period beats the team */
    assert_int_equal(t.period, SB_PERIOD_OUTAGE);
    s.period = SB_PERIOD_PROMOTION_PEAK;
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_RESOLUTION, &s, &t), 0);
    assert_int_equal(t.policy_id, 5);
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &s, &t), 0);
    assert_int_equal(t.policy_id, 3);
    s.team_id = "other";
    s.channel = SB_CHANNEL_EMAIL;
    s.period = SB_PERIOD_NONE;
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &s, &t), 0);
    assert_int_equal(t.policy_id, 1);
    s.band = SB_BAND_P3;
    assert_int_equal(sb_sla_policies_choose(p, SB_SLA_FIRST_RESPONSE, &s, &t), SB_E_NOENT);
    sb_sla_policies_destroy(p);
}

static void test_invalid_rows(void **state)
{
    struct {
        struct sb_sla_policy_row r;
        const char *msg;
    } cases[] = {
        {row(11, "bands", "P2", "", "", "", 60, 0), "unknown kind"},
        {row(12, "band", "", "", "", "", 60, 0), "needs a band"},
        {row(13, "band", "P5", "", "", "", 60, 0), "unknown band"},
        {row(14, "first_touch", "", "fax", "", "", 60, 0), "unknown channel"},
        {row(15, "first_touch", "", "", "", "holiday", 60, 0), "unknown period"},
        {row(16, "first_touch", "", "", "a b", "", 60, 0), "invalid team"},
        {row(17, "claim", "", "", "", "", 0, 0), "no target"},
        {row(18, "claim", "", "", "", "", 400LL * 86400 + 1, 0), "out of range"},
        {row(19, "claim", "", "", "", "", -1, 0), "out of range"},
        {row(20, "complex_complaint", "", "", "", "", 0, 3600), "exclusive"},
        {row(21, "claim", "", "", "", "", 60, 0), "ascend"},
        {row(22, "claim", "", "", "", "", 60, 0), "ascend"},
        {row(23, "claim", "", "", "", "", 60, 0), "lead or supervisor"},
        {row(24, "claim", "", "", "", "", 60, 0), "not terminated"},
        {row(25, "complex_complaint", "", "", "", "", 0, 0), "out of range"},
    };
    char err[256];
    (void)state;
    cases[9].r.resolution_business_days = 1;
    cases[10].r.warn_fractions[1] = 0.5;
    cases[11].r.warn_fractions[1] = 1.0;
    snprintf(cases[12].r.notify_at_start, sizeof(cases[12].r.notify_at_start), "agent");
    memset(cases[13].r.kind, 'a', sizeof(cases[13].r.kind));
    cases[14].r.resolution_business_days = 367;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        struct sb_sla_policies *p = sb_sla_policies_new(&cases[i].r, 1, err, sizeof(err));
        if (p != NULL)
            fail_msg("case %zu accepted", i);
        char want[32];
        snprintf(want, sizeof(want), "policy %lld: ", (long long)cases[i].r.id);
        if (strstr(err, want) == NULL || strstr(err, cases[i].msg) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s%s\"", i, err, want, cases[i].msg);
    }
    struct sb_sla_policy_row dup[] = {row(1, "band", "P2", "chat", "", "", 60, 0),
                                      row(2, "band", "P2", "chat", "", "", 90, 0)};
    assert_null(sb_sla_policies_new(dup, 2, err, sizeof(err)));
    assert_string_equal(err, "policy 2: same key as policy 1");
}

static void test_period_active(void **state)
{
    struct sb_sla_period_row v[] = {
        {1, SB_PERIOD_PROMOTION_PEAK, 10, 100, "busy"},
        {2, SB_PERIOD_OUTAGE, 50, 60, "maintenance"},
        {5, SB_PERIOD_PROMOTION_PEAK, 20, 90, NULL},
        {4, SB_PERIOD_PROMOTION_PEAK, 20, 90, NULL},
    };
    (void)state;
    assert_int_equal(sb_sla_period_active(v, 4, 5), -1);
    assert_int_equal(sb_sla_period_active(v, 4, 10), 0);
    assert_int_equal(sb_sla_period_active(v, 4, 30), 2); /* latest start, then highest id */
    assert_int_equal(sb_sla_period_active(v, 4, 55), 1); /* an outage first */
    assert_int_equal(sb_sla_period_active(v, 4, 60), 2);
    assert_int_equal(sb_sla_period_active(v, 4, 95), 0);
    assert_int_equal(sb_sla_period_active(v, 4, 100), -1);
    assert_int_equal(sb_sla_period_active(v, 0, 30), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_defaults_match_file),
        cmocka_unit_test(test_most_specific_wins), cmocka_unit_test(test_invalid_rows),
        cmocka_unit_test(test_period_active),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
