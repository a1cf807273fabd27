/* Unit tests of contact validation and normalization (services/ingest/contact.c) and
 * of the identity normalizers it uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "contact.h"
#include "sb/err.h"
#include "sb/normalize.h"

#include <stdio.h>
#include <string.h>

static const struct sb_contact_limits lim = {200, 1000, 3, 256};

static json_t *norm_ok(const char *text)
{
    char field[64] = "", err[256] = "";
    json_t *in = json_loads(text, 0, NULL), *out = NULL;
    assert_non_null(in);
    if (sb_contact_normalize(in, &lim, &out, field, sizeof(field), err, sizeof(err)) != 0)
        fail_msg("refused: %s (%s)", err, field);
    json_decref(in);
    return out;
}

static void norm_bad(const char *text, const char *want_field)
{
    char field[64] = "", err[256] = "";
    json_t *in = json_loads(text, 0, NULL), *out = NULL;
    assert_non_null(in);
    assert_int_not_equal(
        sb_contact_normalize(in, &lim, &out, field, sizeof(field), err, sizeof(err)), 0);
    assert_null(out);
    if (strcmp(field, want_field) != 0)
        fail_msg("field \"%s\" (%s), expected \"%s\"", field, err, want_field);
    json_decref(in);
}

static void test_normalizes(void **state)
{
    json_t *c = norm_ok("{\"channel\":\"chat\",\"external_id\":\"m-1\",\"customer\":{\"phone\":"
                        "\"+86 138-1234-5678\",\"email\":\" A@B.CN \",\"wechat_openid\":null},"
                        "\"body\":\"hi\",\"sent_at\":\"2024-05-20T22:00:00+08:00\"}");
    (void)state;
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "customer"), "phone")),
                        "13812345678");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "customer"), "email")),
                        "a@b.cn");
    assert_null(json_object_get(json_object_get(c, "customer"), "wechat_openid"));
    assert_string_equal(json_string_value(json_object_get(c, "sent_at")),
                        "2024-05-20T14:00:00.000Z");
    assert_true(json_is_object(json_object_get(c, "metadata")));
    assert_null(json_object_get(c, "subject")); /* absent stays absent */
    json_decref(c);
}

static void test_refusals_name_the_field(void **state)
{
    (void)state;
    norm_bad("{\"external_id\":\"m\",\"customer\":{\"phone\":\"13812345678\"},\"body\":\"x\"}",
             "channel");
    norm_bad("{\"channel\":\"fax\",\"external_id\":\"m\",\"customer\":{\"phone\":\"13812345678\"},"
             "\"body\":\"x\"}",
             "channel");
    norm_bad("{\"channel\":\"chat\",\"customer\":{\"phone\":\"13812345678\"},\"body\":\"x\"}",
             "external_id");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"name\":\"x\"},"
             "\"body\":\"x\"}",
             "customer");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"phone\":\"abc\"},"
             "\"body\":\"x\"}",
             "customer.phone");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":\"a@@b\"},"
             "\"body\":\"x\"}",
             "customer.email");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":\"a@b.cn\"}}",
             "body");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":\"a@b.cn\"},"
             "\"body\":\"x\",\"sent_at\":\"yesterday\"}",
             "sent_at");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":\"a@b.cn\"},"
             "\"body\":\"x\",\"attachments\":[{},{},{},{}]}",
             "attachments");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":\"a@b.cn\"},"
             "\"body\":\"x\",\"colour\":1}",
             "colour");
    norm_bad("{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":\"a@b.cn\","
             "\"fax\":\"1\"},\"body\":\"x\"}",
             "customer.fax");
    {
        /* Longer than the limit (1000 bytes here). */
        char big[1200];
        int n = snprintf(big, sizeof(big),
                         "{\"channel\":\"chat\",\"external_id\":\"m\",\"customer\":{\"email\":"
                         "\"a@b.cn\"},\"body\":\"");
        memset(big + n, 'x', 1050);
        snprintf(big + n + 1050, sizeof(big) - (size_t)n - 1050, "\"}");
        norm_bad(big, "body");
    }
}

static void test_depth(void **state)
{
    char deep[200];
    (void)state;
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_int_equal(sb_json_depth_ok(deep, 200, 32), SB_E_TOOBIG);
    assert_int_equal(sb_json_depth_ok(deep + 90, 20, 32), 0);
    /* Brackets inside strings do not count, escaped quotes do not end strings. */
    assert_int_equal(sb_json_depth_ok("{\"a\":\"[[[[\\\"[[[[\"}", 18, 2), 0);
}

static void test_normalizers(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(sb_phone_normalize("008613812345678", out, sizeof(out)), 0);
    assert_string_equal(out, "13812345678");
    assert_int_equal(sb_phone_normalize("(010) 6512-3456", out, sizeof(out)), 0);
    assert_string_equal(out, "01065123456");
    assert_int_not_equal(sb_phone_normalize("12", out, sizeof(out)), 0);
    assert_int_not_equal(sb_phone_normalize("1381234x678", out, sizeof(out)), 0);
    sb_phone_mask("13812345678", out, sizeof(out));
    assert_string_equal(out, "138****5678");
    assert_int_equal(sb_email_normalize("Wang.Fang@Example.CN", out, sizeof(out)), 0);
    assert_string_equal(out, "wang.fang@example.cn");
    assert_int_not_equal(sb_email_normalize("no-at.example.cn", out, sizeof(out)), 0);
    assert_int_not_equal(sb_email_normalize("a b@c.cn", out, sizeof(out)), 0);
    assert_int_not_equal(sb_email_normalize("@c.cn", out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalizes),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_normalizers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
