/* Unit tests of the triage rule book (Hyperscan), the model, their combination and
 * the priority model (services/triage: rules.c, model.c, classify.c, score.c), on the
 * committed rule book and model and on small rule sets written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "classify.h"
#include "score.h"

#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char rules_path[4096], model_path[4096];

static struct sb_ruleset *build(const char *json, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    struct sb_ruleset *rs;
    assert_non_null(j);
    rs = sb_ruleset_build(j, NULL, err, errsz);
    json_decref(j);
    return rs;
}

static int fired(const struct sb_ruleset *rs, const struct sb_classification *cl, const char *id)
{
    for (int i = 0; i < cl->nfired; i++)
        if (strcmp(sb_ruleset_rule(rs, (size_t)cl->fired[i])->id, id) == 0)
            return 1;
    return 0;
}

static void classify(const struct sb_ruleset *rs, const struct sb_model *m, const char *text,
                     struct sb_classification *cl)
{
    struct sb_rulescan *sc = sb_rulescan_new(rs);
    struct sb_extract ex;
    sb_extract_text(text, strlen(text), 1716184800000LL, 480, &ex);
    assert_int_equal(sb_classify(rs, sc, m, text, strlen(text), &ex, cl), 0);
    sb_rulescan_destroy(sc);
}

static void test_rule_book_errors_name_the_rule(void **state)
{
    char err[512];
    (void)state;
    assert_null(build("{\"version\":1,\"rules\":[{\"id\":\"r1\",\"regex\":[\"(open\"]}]}", err,
                      sizeof(err)));
    assert_non_null(strstr(err, "rule \"r1\""));
    assert_null(build("{\"version\":1,\"rules\":[{\"id\":\"r2\",\"terms\":[\"x\"],"
                      "\"domain\":\"nowhere\"}]}",
                      err, sizeof(err)));
    assert_non_null(strstr(err, "r2"));
    assert_non_null(strstr(err, "domain"));
    assert_null(build("{\"version\":1,\"rules\":[{\"id\":\"r3\",\"terms\":[\"x\"],"
                      "\"urgency\":4}]}",
                      err, sizeof(err)));
    assert_non_null(strstr(err, "urgency"));
    assert_null(build("{\"version\":1,\"rules\":[{\"id\":\"r4\",\"terms\":[\"x\"],"
                      "\"colour\":\"red\"}]}",
                      err, sizeof(err)));
    assert_non_null(strstr(err, "colour"));
    assert_null(build("{\"version\":1,\"rules\":[{\"id\":\"d\",\"terms\":[\"x\"]},"
                      "{\"id\":\"d\",\"terms\":[\"y\"]}]}",
                      err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    assert_null(build("{\"version\":1,\"rules\":[{\"id\":\"empty\"}]}", err, sizeof(err)));
    assert_null(build("{\"version\":2,\"rules\":[]}", err, sizeof(err)));
}

static void test_terms_are_literal_with_word_boundaries(void **state)
{
    char err[512];
    struct sb_classification cl;
    struct sb_ruleset *rs = build(
        "{\"version\":1,\"rules\":["
        "{\"id\":\"refund\",\"terms\":[\"refund\"],\"domain\":\"order_payment\",\"weight\":2},"
        "{\"id\":\"dot\",\"terms\":[\"a.b (c)\"],\"domain\":\"logistics\",\"weight\":2},"
        "{\"id\":\"zh\",\"terms\":[\"退款\"],\"domain\":\"order_payment\",\"weight\":2,"
        "\"urgency\":2,\"nature\":\"demand\"},"
        "{\"id\":\"space\",\"terms\":[\"log in\"],\"domain\":\"account_security\",\"weight\":2}]}",
        err, sizeof(err));
    (void)state;
    assert_non_null(rs);
    classify(rs, NULL, "I want a REFUND now", &cl);
    assert_true(fired(rs, &cl, "refund"));
    assert_int_equal(cl.domain, SB_DOMAIN_ORDER_PAYMENT);
    assert_int_equal(cl.by_rule, 1);
    classify(rs, NULL, "the refunds were fine", &cl); /* no word boundary after "refund" */
    assert_false(fired(rs, &cl, "refund"));
    classify(rs, NULL, "see a.b (c) please", &cl); /* metacharacters are literal */
    assert_true(fired(rs, &cl, "dot"));
    classify(rs, NULL, "see aXb (c) please", &cl);
    assert_false(fired(rs, &cl, "dot"));
    classify(rs, NULL, "我要申请退款谢谢", &cl); /* CJK: no word boundaries needed */
    assert_true(fired(rs, &cl, "zh"));
    assert_int_equal(cl.nature, SB_NATURE_DEMAND);
    assert_int_equal(cl.urgency, 2);
    classify(rs, NULL, "cannot log   in today", &cl); /* any run of spaces */
    assert_true(fired(rs, &cl, "space"));
    classify(rs, NULL, "", &cl);
    assert_int_equal(cl.nfired, 0);
    assert_int_equal(cl.domain, SB_DOMAIN_INQUIRY); /* nothing said: a plain inquiry */
    sb_ruleset_destroy(rs);
}

static void test_two_thousand_rules_one_pass(void **state)
{
    char err[512];
    json_t *rules = json_array(), *doc;
    struct sb_classification cl;
    struct sb_ruleset *rs;
    (void)state;
    for (int i = 0; i < 2000; i++) {
        char id[32], term[32];
        sb_fmt(id, sizeof(id), "gen.%d", i);
        sb_fmt(term, sizeof(term), "term%dx", i);
        json_array_append_new(rules,
                              json_pack("{s:s, s:[s], s:s, s:f}", "id", id, "terms", term, "domain",
                                        i % 2 ? "logistics" : "product", "weight", 0.5));
    }
    doc = json_pack("{s:i, s:o}", "version", 1, "rules", rules);
    rs = sb_ruleset_build(doc, NULL, err, sizeof(err));
    json_decref(doc);
    assert_non_null(rs);
    assert_int_equal(sb_ruleset_count(rs), 2000);
    classify(rs, NULL, "we saw term7x and term1999x and term4x", &cl);
    assert_int_equal(cl.nfired, 3);
    assert_true(fired(rs, &cl, "gen.4"));
    assert_true(fired(rs, &cl, "gen.7"));
    assert_true(fired(rs, &cl, "gen.1999"));
    /* weights add up per domain: 2 x logistics beat 1 x product */
    assert_int_equal(cl.domain, SB_DOMAIN_LOGISTICS);
    assert_int_equal(cl.by_rule, 1); /* 1.0 reaches the explicit weight */
    sb_ruleset_destroy(rs);
}

static void test_committed_rule_book(void **state)
{
    char err[512];
    struct sb_classification cl;
    struct sb_ruleset *rs = sb_ruleset_load(rules_path, NULL, err, sizeof(err));
    struct sb_model *m = sb_model_load(model_path, err, sizeof(err));
    (void)state;
    assert_non_null(rs);
    assert_non_null(m);

    classify(rs, m, "支付失败，提示错误 E1023，请尽快处理", &cl);
    assert_int_equal(cl.domain, SB_DOMAIN_ORDER_PAYMENT);
    assert_int_equal(cl.urgency, 3);
    assert_int_equal(cl.nature, SB_NATURE_FAULT);
    assert_int_equal(cl.stage, SB_JOURNEY_IN_SALE);
    assert_true(fired(rs, &cl, "payment.fail.zh"));
    assert_string_equal(cl.signature, "order_payment:payment.fail.zh:e1023");

    classify(rs, m, "我的账号被盗了，有异地登录", &cl);
    assert_int_equal(cl.domain, SB_DOMAIN_ACCOUNT);
    assert_int_equal(cl.urgency, 3);

    classify(rs, m, "快递三天了还没收到货，物流也不更新", &cl);
    assert_int_equal(cl.domain, SB_DOMAIN_LOGISTICS);

    classify(rs, m, "客服态度恶劣，我要投诉", &cl);
    assert_int_equal(cl.domain, SB_DOMAIN_COMPLAINT);
    assert_int_equal(cl.stage, SB_JOURNEY_COMPLAINT);

    classify(rs, m, "If this is not fixed I will take legal action and contact the media", &cl);
    assert_true(cl.flags & SB_FLAG_LEGAL_PR);
    assert_int_equal(cl.domain, SB_DOMAIN_COMPLAINT);
    assert_int_equal(cl.score_delta, 1);

    classify(rs, m, "兼职日结，加微信领取红包", &cl);
    assert_true(cl.flags & SB_FLAG_SPAM);
    assert_true(cl.score_delta < 0);

    classify(rs, m, "建议增加夜间模式", &cl);
    assert_int_equal(cl.domain, SB_DOMAIN_INQUIRY);
    assert_int_equal(cl.urgency, 1);

    /* English without an explicit rule: the model decides. */
    classify(rs, m, "My card still has not arrived after two weeks", &cl);
    assert_int_equal(cl.by_rule, 0);
    assert_int_equal(cl.domain, SB_DOMAIN_LOGISTICS);
    assert_true(cl.confidence > 0.5);
    classify(rs, m, "Why was I charged a fee for my transfer?", &cl);
    assert_int_equal(cl.domain, SB_DOMAIN_ORDER_PAYMENT);
    assert_string_equal(cl.signature, ""); /* no symptom term: never grouped */

    sb_ruleset_destroy(rs);
    sb_model_destroy(m);
}

static void test_model_train_save_load_predict(void **state)
{
    char path[] = "/tmp/sb-model-XXXXXX", err[256];
    struct sb_trainset *t = sb_trainset_new();
    struct sb_train_opts o = {30, 1, 1e-5, 0.5, 0.0, 7};
    struct sb_model *m;
    double p[SB_DOMAIN_COUNT];
    size_t kept;
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    for (int i = 0; i < 20; i++) {
        sb_trainset_add(t, "where is my parcel delivery", SB_DOMAIN_LOGISTICS);
        sb_trainset_add(t, "refund my payment please", SB_DOMAIN_ORDER_PAYMENT);
        sb_trainset_add(t, "快递还没到", SB_DOMAIN_LOGISTICS);
    }
    assert_int_equal(sb_model_train(t, &o, path, &kept, err, sizeof(err)), 0);
    assert_true(kept > 5);
    m = sb_model_load(path, err, sizeof(err));
    assert_non_null(m);
    sb_model_predict(m, "parcel delivery late", 20, p);
    assert_true(p[SB_DOMAIN_LOGISTICS] > 0.9);
    sb_model_predict(m, "payment refund", 14, p);
    assert_true(p[SB_DOMAIN_ORDER_PAYMENT] > 0.7); /* two of three examples are logistics */
    sb_model_predict(m, "快递", strlen("快递"), p);
    assert_true(p[SB_DOMAIN_LOGISTICS] > 0.8);
    double sum = 0;
    for (int d = 0; d < SB_DOMAIN_COUNT; d++)
        sum += p[d];
    assert_true(sum > 0.999 && sum < 1.001);
    sb_model_destroy(m);

    /* A damaged file is refused with its line. */
    FILE *f = fopen(path, "a");
    fputs("zzzz\t1 2 3\n", f);
    fclose(f);
    assert_null(sb_model_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, ":"));
    close(fd);
    unlink(path);
    sb_trainset_destroy(t);
}

static void test_features_normalize(void **state)
{
    uint64_t a[64], b[64];
    size_t na, nb;
    (void)state;
    /* Case, plurals and digits do not change the features. */
    na = sb_model_features("Cards 1234", 10, a, 64);
    nb = sb_model_features("card 99", 7, b, 64);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(uint64_t));
    /* Word pairs count: "not working" differs from "working not". */
    na = sb_model_features("not working", 11, a, 64);
    nb = sb_model_features("working not", 11, b, 64);
    assert_int_equal(na, 3);
    assert_int_equal(nb, 3);
    assert_true(a[2] != b[2]);
    /* CJK: characters and adjacent pairs. */
    na = sb_model_features("退款", strlen("退款"), a, 64);
    assert_int_equal(na, 3);
    /* The cap is respected. */
    assert_int_equal(sb_model_features("a b c d e f", 11, a, 4), 4);
}

static void test_priority_model(void **state)
{
    struct sb_score_opts o;
    (void)state;
    sb_score_opts_default(&o);
    assert_int_equal(sb_tier(&o, 10000, 0), SB_TIER_VIP);
    assert_int_equal(sb_tier(&o, 9999.99, 0), SB_TIER_REGULAR);
    assert_int_equal(sb_tier(&o, 0, 1), SB_TIER_VIP); /* strategic partner */
    assert_int_equal(sb_tier(&o, 1000, 0), SB_TIER_REGULAR);
    assert_int_equal(sb_tier(&o, 999, 0), SB_TIER_NEW);
    assert_string_equal(sb_tier_name(SB_TIER_VIP), "vip");

    assert_int_equal(sb_impact(&o, 1, 0, 0, 0), 3);
    assert_int_equal(sb_impact(&o, 0, 1, 0, 0), 3);
    assert_int_equal(sb_impact(&o, 0, 0, 1, 1000), 2);
    assert_int_equal(sb_impact(&o, 0, 0, 1, 999.5), 1);
    assert_int_equal(sb_impact(&o, 0, 0, 0, 5000), 1); /* no amount said */

    assert_int_equal(sb_score(3, 3, 3, 0), 9);
    assert_int_equal(sb_score(3, 3, 3, 1), 10);
    assert_int_equal(sb_score(3, 3, 3, 5), 10);
    assert_int_equal(sb_score(1, 1, 1, -3), 1);
    assert_string_equal(sb_band(&o, 10), "P1");
    assert_string_equal(sb_band(&o, 8), "P1");
    assert_string_equal(sb_band(&o, 7), "P2");
    assert_string_equal(sb_band(&o, 5), "P2");
    assert_string_equal(sb_band(&o, 4), "P3");
    assert_string_equal(sb_band(&o, 3), "P3");
    assert_string_equal(sb_band(&o, 2), "P4");
    assert_int_equal(sb_score_for_band(&o, "P1", 6), 8);
    assert_int_equal(sb_score_for_band(&o, "P2", 6), 6);
    assert_int_equal(sb_score_for_band(&o, "P3", 9), 3);
    assert_int_equal(sb_score_for_band(&o, "P4", 5), 1);
    o.p1_min = 7; /* thresholds are configuration */
    assert_string_equal(sb_band(&o, 7), "P1");
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(sb_domain_parse("product"), SB_DOMAIN_PRODUCT);
    assert_int_equal(sb_domain_parse("product_function"), SB_DOMAIN_PRODUCT);
    assert_int_equal(sb_domain_parse("complaint"), SB_DOMAIN_COMPLAINT);
    assert_int_equal(sb_domain_parse("inquiry"), SB_DOMAIN_INQUIRY);
    assert_int_equal(sb_domain_parse("x"), -1);
    assert_int_equal(sb_domain_parse(NULL), -1);
    assert_string_equal(sb_domain_name(SB_DOMAIN_LOGISTICS), "logistics_delivery");
    assert_string_equal(sb_stage_name(SB_JOURNEY_AFTER_SALE), "after_sale");
    assert_string_equal(sb_nature_name(SB_NATURE_DEMAND), "demand");
    assert_string_equal(sb_sla_kind_name(0), "order_anomaly_contact");
}

int main(void)
{
    const char *root = getenv("SB_REPO_ROOT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_book_errors_name_the_rule),
        cmocka_unit_test(test_terms_are_literal_with_word_boundaries),
        cmocka_unit_test(test_two_thousand_rules_one_pass),
        cmocka_unit_test(test_committed_rule_book),
        cmocka_unit_test(test_model_train_save_load_predict),
        cmocka_unit_test(test_features_normalize),
        cmocka_unit_test(test_priority_model),
        cmocka_unit_test(test_names),
    };
    sb_fmt(rules_path, sizeof(rules_path), "%s/deploy/config/triage-rules.json", root ? root : ".");
    sb_fmt(model_path, sizeof(model_path), "%s/deploy/config/triage-model.tsv", root ? root : ".");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
