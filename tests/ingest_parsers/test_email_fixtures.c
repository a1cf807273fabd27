/* Unit tests of the email channel on real-format messages: charsets (GBK, GB2312,
 * Big5, ISO-8859-1, UTF-8), encoded words, RFC 2231 file names, text preferred over
 * HTML, HTML-only reduced to text, attachments as metadata, quoted history trimmed,
 * threading headers, Reply-To over From, and broken input refused without a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "email.h"
#include "fixture.h"
#include "sb/err.h"

#include <string.h>

static json_t *parse(const char *name)
{
    size_t len;
    char *raw = fixture(name, &len);
    char err[256] = "";
    json_t *c = NULL;
    if (sb_email_parse(raw, len, &c, err, sizeof(err)) != 0)
        fail_msg("%s refused: %s", name, err);
    free(raw);
    return c;
}

static const char *str(json_t *o, const char *path)
{
    char key[64];
    const char *dot = strchr(path, '.');
    if (dot == NULL)
        return json_string_value(json_object_get(o, path));
    snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
    return str(json_object_get(o, key), dot + 1);
}

static void test_gbk_multipart(void **state)
{
    json_t *c = parse("email/gbk_multipart_attachment_reply.eml");
    json_t *att = json_object_get(c, "attachments");
    json_t *refs = json_object_get(c, "references");
    (void)state;
    assert_string_equal(str(c, "channel"), "email");
    assert_string_equal(str(c, "external_id"), "20240520140000.gbk.1@mail.example.com.cn");
    assert_string_equal(str(c, "customer.email"), "li.na@example.com.cn");
    assert_string_equal(str(c, "customer.name"), "李娜");
    assert_string_equal(str(c, "subject"), "订单退款问题");
    /* text/plain chosen over the HTML alternative; the quoted reply is gone. */
    assert_string_equal(str(c, "body"),
                        "您好，我的订单 202405201234 申请退款已经三天了，还没有到账。\n"
                        "金额 1299 元，请尽快处理。");
    assert_string_equal(str(c, "sent_at"), "2024-05-20T06:00:00.000Z");
    assert_int_equal(json_array_size(att), 1);
    assert_string_equal(str(json_array_get(att, 0), "name"), "退款凭证.pdf");
    assert_string_equal(str(json_array_get(att, 0), "type"), "application/pdf");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 0), "size")), 2057);
    assert_string_equal(str(c, "in_reply_to"), "reply-2024051910@shop.cn");
    assert_int_equal(json_array_size(refs), 2);
    assert_string_equal(json_string_value(json_array_get(refs, 0)), "first-2024051809@shop.cn");
    assert_string_equal(json_string_value(json_array_get(refs, 1)), "reply-2024051910@shop.cn");
    assert_string_equal(str(c, "metadata.charset"), "gbk");
    assert_true(json_is_false(json_object_get(json_object_get(c, "metadata"), "html_only")));
    json_decref(c);
}

static void test_big5(void **state)
{
    json_t *c = parse("email/big5.eml");
    (void)state;
    assert_string_equal(str(c, "subject"), "會員積分");
    assert_string_equal(str(c, "body"), "請問會員積分如何兌換？謝謝。");
    assert_string_equal(str(c, "customer.email"), "mei.chen@example.tw");
    assert_string_equal(str(c, "customer.name"), "Chen Mei");
    assert_null(json_object_get(c, "attachments"));
    assert_null(json_object_get(c, "in_reply_to")); /* absent stays absent */
    json_decref(c);
}

static void test_html_only(void **state)
{
    json_t *c = parse("email/html_only.eml");
    const char *body;
    (void)state;
    body = str(c, "body");
    assert_non_null(strstr(body, "My order #A-77 arrived damaged & the box was open."));
    assert_non_null(strstr(body, "Café <mug> broken — please send a replacement."));
    assert_non_null(strstr(body, "Renée"));
    assert_null(strstr(body, "alert"));
    assert_null(strstr(body, "color"));
    assert_null(strstr(body, "&amp;"));
    assert_null(strstr(body, "&nbsp;"));
    assert_true(json_is_true(json_object_get(json_object_get(c, "metadata"), "html_only")));
    json_decref(c);
}

static void test_outlook_reply(void **state)
{
    json_t *c = parse("email/latin1_outlook_reply.eml");
    (void)state;
    assert_string_equal(str(c, "customer.name"), "José García");
    assert_string_equal(str(c, "body"), "Hello,\n\nThe invoice for order 5521 shows 120 EUR "
                                        "instead of 102 EUR.\nRegards,\nJosé");
    assert_string_equal(str(c, "in_reply_to"), "support-77@shop.com");
    json_decref(c);
}

static void test_reply_to(void **state)
{
    json_t *c = parse("email/utf8_reply_to.eml");
    (void)state;
    assert_string_equal(str(c, "customer.email"), "wang.wei@example.org");
    assert_string_equal(str(c, "customer.name"), "Wang Wei");
    assert_string_equal(str(c, "metadata.from"), "forms@example.org");
    assert_string_equal(str(c, "metadata.reply_to"), "wang.wei@example.org");
    json_decref(c);
}

static void test_trim_quoted(void **state)
{
    char a[] = "Thanks!\n\nOn Mon, 20 May 2024, Shop <kf@shop.cn> wrote:\n> old\n";
    char b[] = "new line\n> quoted\nafter\n";
    char d[] = "好的\n-----原始邮件-----\n发件人: x\n";
    (void)state;
    sb_email_trim_quoted(a);
    assert_string_equal(a, "Thanks!");
    sb_email_trim_quoted(b);
    assert_string_equal(b, "new line\nafter");
    sb_email_trim_quoted(d);
    assert_string_equal(d, "好的");
}

static void expect_refused(const char *raw, size_t len, int code)
{
    char err[256] = "";
    json_t *c = NULL;
    assert_int_equal(sb_email_parse(raw, len, &c, err, sizeof(err)), code);
    assert_null(c);
    assert_true(err[0] != '\0');
}

/* Inputs that once crashed the parser (found by fuzzing): they must parse or be refused,
 * never crash. */
static void test_regressions(void **state)
{
    static const char *const files[] = {"email/bad/fuzz-empty-decoded-body.eml"};
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len;
        char *raw = fixture(files[i], &len);
        char err[256];
        json_t *c = NULL;
        if (sb_email_parse(raw, len, &c, err, sizeof(err)) == 0) {
            char *text = json_dumps(c, 0);
            assert_non_null(text);
            free(text);
            json_decref(c);
        }
        free(raw);
    }
}

static void test_broken_messages(void **state)
{
    static const char no_from[] = "To: a@b.cn\r\nSubject: x\r\n\r\nbody\r\n";
    static const char nul[] = "From: a@b.cn\r\nSub\0ject: x\r\n\r\nbody\r\n";
    static const char bad_charset[] =
        "From: a@b.cn\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\nbody \xff\r\n";
    static const char truncated[] =
        "From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        "Content-Type: text/plain\r\n\r\nhello";
    char deep[8192];
    size_t n = 0;
    json_t *c = NULL;
    char err[256];
    (void)state;
    expect_refused(no_from, sizeof(no_from) - 1, SB_E_INVAL);
    expect_refused("", 0, SB_E_INVAL);
    /* Best effort but never a crash: a NUL in a header, an unknown charset (bytes
     * repaired to valid UTF-8), a cut-off multipart. */
    if (sb_email_parse(nul, sizeof(nul) - 1, &c, err, sizeof(err)) == 0)
        json_decref(c);
    c = NULL;
    assert_int_equal(sb_email_parse(bad_charset, sizeof(bad_charset) - 1, &c, err, sizeof(err)), 0);
    {
        char *text = json_dumps(c, 0); /* encodes: valid UTF-8 */
        assert_non_null(text);
        free(text);
    }
    json_decref(c);
    c = NULL;
    assert_int_equal(sb_email_parse(truncated, sizeof(truncated) - 1, &c, err, sizeof(err)), 0);
    assert_string_equal(str(c, "body"), "hello");
    json_decref(c);
    /* 20 nested multiparts: refused by the depth limit. */
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "From: a@b.cn\r\n");
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(deep + n, sizeof(deep) - n,
                              "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    n += (size_t)snprintf(deep + n, sizeof(deep) - n, "Content-Type: text/plain\r\n\r\nx\r\n");
    expect_refused(deep, n, SB_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gbk_multipart),   cmocka_unit_test(test_big5),
        cmocka_unit_test(test_html_only),       cmocka_unit_test(test_outlook_reply),
        cmocka_unit_test(test_reply_to),        cmocka_unit_test(test_trim_quoted),
        cmocka_unit_test(test_broken_messages), cmocka_unit_test(test_regressions),
    };
    sb_email_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
