/* Unit tests of the WeChat channel on real-format pushes and signature vectors
 * (tests/data/channels/wechat, computed with Python's hashlib). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include "sb/err.h"
#include "wechat.h"

#include <string.h>

static json_t *push(const char *name, enum sb_wechat_kind want)
{
    size_t len;
    char *xml = fixture(name, &len);
    char err[256] = "";
    enum sb_wechat_kind kind;
    json_t *c = NULL;
    if (sb_wechat_parse(xml, len, &kind, &c, err, sizeof(err)) != 0)
        fail_msg("%s refused: %s", name, err);
    assert_int_equal(kind, want);
    free(xml);
    return c;
}

static const char *field(json_t *c, const char *obj, const char *key)
{
    return json_string_value(json_object_get(obj ? json_object_get(c, obj) : c, key));
}

static void test_messages(void **state)
{
    json_t *c;
    (void)state;
    c = push("wechat/text.xml", SB_WECHAT_CONTACT);
    assert_string_equal(field(c, NULL, "channel"), "wechat");
    assert_string_equal(field(c, NULL, "external_id"), "24612345678901234");
    assert_string_equal(field(c, "customer", "wechat_openid"), "oABC123");
    assert_string_equal(field(c, NULL, "body"), "我的快递三天没更新了 <急>");
    assert_string_equal(field(c, NULL, "sent_at"), "2024-05-20T06:00:00.000Z");
    assert_string_equal(field(c, "metadata", "to_user"), "gh_shop");
    json_decref(c);

    c = push("wechat/voice.xml", SB_WECHAT_CONTACT);
    assert_string_equal(field(c, NULL, "body"), "我要退货"); /* the recognition text */
    assert_true(json_is_true(json_object_get(json_object_get(c, "metadata"), "voice_recognized")));
    assert_string_equal(field(json_array_get(json_object_get(c, "attachments"), 0), NULL, "type"),
                        "voice/amr");
    json_decref(c);

    c = push("wechat/voice_norecog.xml", SB_WECHAT_CONTACT);
    assert_string_equal(field(c, NULL, "body"), "[voice]");
    json_decref(c);

    c = push("wechat/image.xml", SB_WECHAT_CONTACT);
    assert_string_equal(field(c, NULL, "body"), "[image]");
    assert_string_equal(field(c, "metadata", "pic_url"), "http://mmbiz.example/p.jpg");
    json_decref(c);

    c = push("wechat/event_subscribe.xml", SB_WECHAT_CONTACT);
    assert_string_equal(field(c, NULL, "external_id"), "oNEW1:1716185100:subscribe");
    assert_string_equal(field(c, "metadata", "event"), "subscribe");
    json_decref(c);

    c = push("wechat/event_click.xml", SB_WECHAT_CONTACT);
    assert_string_equal(field(c, NULL, "body"), "[click] MENU_HUMAN_AGENT");
    json_decref(c);

    c = push("wechat/event_unsubscribe.xml", SB_WECHAT_IGNORE);
    assert_null(c);
}

static void expect_bad(const char *name, const char *needle)
{
    size_t len;
    char *xml = fixture(name, &len);
    char err[256] = "";
    enum sb_wechat_kind kind;
    json_t *c = NULL;
    assert_int_not_equal(sb_wechat_parse(xml, len, &kind, &c, err, sizeof(err)), 0);
    assert_null(c);
    if (strstr(err, needle) == NULL)
        fail_msg("%s: error \"%s\" should mention \"%s\"", name, err, needle);
    free(xml);
}

static void test_bad_pushes(void **state)
{
    static char big[SB_WECHAT_MAX_BYTES + 10];
    enum sb_wechat_kind kind;
    json_t *c = NULL;
    char err[256];
    (void)state;
    expect_bad("wechat/bad_billion_laughs.xml", "DTD");
    expect_bad("wechat/bad_missing_from.xml", "FromUserName");
    expect_bad("wechat/bad_create_time.xml", "CreateTime");
    expect_bad("wechat/bad_malformed.xml", "invalid XML");
    expect_bad("wechat/bad_deep.xml", "deep");
    expect_bad("wechat/bad_invalid_utf8.xml", "invalid XML");
    memset(big, 'x', sizeof(big));
    assert_int_equal(sb_wechat_parse(big, sizeof(big), &kind, &c, err, sizeof(err)), SB_E_TOOBIG);
}

static void test_signatures(void **state)
{
    size_t len;
    char *text = fixture("wechat/signatures.json", &len);
    json_t *cases = json_loads(text, 0, NULL), *tc;
    size_t i, valid = 0;
    (void)state;
    assert_true(json_array_size(cases) >= 8);
    json_array_foreach(cases, i, tc)
    {
        int want = json_is_true(json_object_get(tc, "valid"));
        int got = sb_wechat_signature_ok(field(tc, NULL, "token"), field(tc, NULL, "timestamp"),
                                         field(tc, NULL, "nonce"), field(tc, NULL, "signature"));
        if (got != want)
            fail_msg("case %zu: got %d, want %d", i, got, want);
        valid += (size_t)want;
    }
    assert_true(valid >= 3);
    assert_false(sb_wechat_signature_ok("t", NULL, "n", "x"));
    json_decref(cases);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_bad_pushes),
        cmocka_unit_test(test_signatures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
