/* Unit tests of the email channel (services/ingest/email.c), data driven: every message
 * tests/data/email/<name>.eml against its exact expected contact <name>.json (written
 * by hand from make_fixtures.py's inputs), every broken message of tests/data/email/bad
 * against bad/expected.json (inputs found by fuzzing are replayed too: parsed or
 * refused, never a crash), each output through the generic contact's validation; then
 * charsets, MIME structure, identity, threading headers, quote trimming and every limit
 * at its edge, on messages built here; then parses on several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "contact.h"
#include "email.h"
#include "sb/strbuf.h"
#include "sb/err.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIXTURE_DIR "email"
#include "fixtures.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names of the .eml files of tests/data/email/<dir> (sorted, *n of them; free each). */
static char **list_eml(const char *dir, size_t *n)
{
    const char *root = getenv("SB_REPO_ROOT");
    char path[1024];
    char **names = NULL;
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "%s/tests/data/email/%s", root ? root : ".", dir);
    d = opendir(path);
    if (d == NULL)
        fail_msg("cannot list %s", path);
    *n = 0;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".eml"))
            continue;
        names = realloc(names, (*n + 1) * sizeof(*names));
        assert_non_null(names);
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n > 0)
        qsort(names, *n, sizeof(*names), cmp_str);
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The contact passes the generic contact's validation, as the API will run it: the
 * API supplies a hash for a missing external_id, and a body of its choosing for a
 * message without text (which the parser flags and leaves out). */
static void assert_valid_contact(const char *what, json_t *c)
{
    json_t *copy = json_deep_copy(c), *out = NULL;
    char field[96] = "", err[256] = "";

    if (json_object_get(copy, "external_id") == NULL)
        json_object_set_new(copy, "external_id", json_string("sha256-of-the-raw-message"));
    if (json_object_get(copy, "body") == NULL) {
        if (!json_is_true(json_object_get(json_object_get(c, "metadata"), "empty_body")))
            fail_msg("%s: no body and no metadata.empty_body", what);
        json_object_set_new(copy, "body", json_string("(no text)"));
    }
    if (sb_contact_normalize(copy, &lim, &out, field, sizeof(field), err, sizeof(err)) != 0)
        fail_msg("%s: refused by the contact contract: %s: %s", what, field, err);
    json_decref(out);
    json_decref(copy);
}

/* Parses raw (len bytes) expecting success; returns the contact. */
static json_t *parse_ok(const char *raw, size_t len)
{
    char err[256] = "";
    json_t *c = NULL;
    int rc = sb_email_parse(raw, len, &c, err, sizeof(err));

    if (rc != 0)
        fail_msg("refused (%d): %s", rc, err);
    assert_non_null(c);
    return c;
}

static json_t *parse_str(const char *raw)
{
    return parse_ok(raw, strlen(raw));
}

/* Parses raw expecting the error code and message. */
static void expect_refused(const char *raw, size_t len, int code, const char *errstr)
{
    char err[256] = "";
    json_t *c = NULL;

    assert_int_equal(sb_email_parse(raw, len, &c, err, sizeof(err)), code);
    assert_null(c);
    assert_string_equal(err, errstr);
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *meta(json_t *c)
{
    return json_object_get(c, "metadata");
}

/* ---- Fixtures ---- */

static void test_fixtures(void **state)
{
    size_t n;
    char **names = list_eml(".", &n);
    (void)state;

    assert_true(n >= 5);
    for (size_t i = 0; i < n; i++) {
        char rel[512];
        size_t len;
        char *raw = load(names[i], &len);
        json_t *got = parse_ok(raw, len), *want;

        snprintf(rel, sizeof(rel), "%.*s.json", (int)(strlen(names[i]) - 4), names[i]);
        want = load_json(rel);
        assert_json_equal(names[i], got, want);
        assert_valid_contact(names[i], got);
        json_decref(want);
        json_decref(got);
        free(raw);
    }
    free_list(names, n);
}

static void test_bad_fixtures(void **state)
{
    json_t *expected = load_json("bad/expected.json");
    size_t n, listed = 0;
    char **names = list_eml("bad", &n);
    (void)state;

    for (size_t i = 0; i < n; i++) {
        char rel[512], err[256] = "";
        size_t len;
        char *raw;
        json_t *c = NULL, *want = json_object_get(expected, names[i]);
        int rc;

        snprintf(rel, sizeof(rel), "bad/%s", names[i]);
        raw = load(rel, &len);
        rc = sb_email_parse(raw, len, &c, err, sizeof(err));
        if (rc == 0) {
            /* Whatever was salvaged encodes as JSON: every string is valid UTF-8. */
            char *text = json_dumps(c, 0);
            if (text == NULL)
                fail_msg("%s: contact does not encode", names[i]);
            free(text);
            assert_valid_contact(names[i], c);
        } else {
            assert_null(c);
            assert_true(err[0] != '\0');
        }
        if (want != NULL) {
            listed++;
            if (json_object_get(want, "contact") != NULL) {
                if (rc != 0)
                    fail_msg("%s: refused (%d): %s", names[i], rc, err);
                assert_json_equal(names[i], c, json_object_get(want, "contact"));
            } else {
                assert_string_equal(str(want, "error"), "SB_E_INVAL");
                assert_int_equal(rc, SB_E_INVAL);
                assert_string_equal(err, str(want, "errstr"));
            }
        }
        json_decref(c);
        free(raw);
    }
    /* Every expectation names a file that exists. */
    assert_int_equal(listed, json_object_size(expected));
    free_list(names, n);
    json_decref(expected);
}

/* ---- Charsets ---- */

static void test_charsets(void **state)
{
    json_t *c;
    (void)state;

    /* A GB2312 label on GBK text (镕 is not in GB2312) and a GB18030 four-byte
     * character: decoded with the superset. */
    c = parse_str("From: a@b.cn\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n"
                  "\xd6\xec\xe9\x46\xbb\xf9 \x95\x32\x82\x36\r\n");
    assert_string_equal(str(c, "body"), "朱镕基 𠀀");
    assert_string_equal(str(meta(c), "charset"), "gb2312");
    json_decref(c);
    /* ISO-8859-1 label on Windows-1252 text (0x80 is the euro sign there). */
    c = parse_str("From: a@b.cn\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n"
                  "12 \x80 caf\xe9\r\n");
    assert_string_equal(str(c, "body"), "12 € café");
    json_decref(c);
    c = parse_str("From: a@b.cn\r\nContent-Type: text/plain; charset=windows-1251\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n\xcf\xf0\xe8\xe2\xe5\xf2\r\n");
    assert_string_equal(str(c, "body"), "Привет");
    json_decref(c);
    /* No charset declared: valid UTF-8 stays, 8-bit GBK is recognised. */
    c = parse_str("From: a@b.cn\r\n\r\n你好\r\n");
    assert_string_equal(str(c, "body"), "你好");
    assert_null(json_object_get(meta(c), "charset"));
    json_decref(c);
    c = parse_str("From: a@b.cn\r\nContent-Type: text/plain\r\n\r\n"
                  "\xc4\xe3\xba\xc3\xa3\xac\xcd\xcb\xbf\xee\r\n");
    assert_string_equal(str(c, "body"), "你好，退款");
    json_decref(c);
    /* Declared UTF-8 with a stray byte: U+FFFD, the rest kept. */
    c = parse_str("From: a@b.cn\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                  "ok \xff ok\r\n");
    assert_string_equal(str(c, "body"), "ok \xef\xbf\xbd ok");
    json_decref(c);
    /* Invalid GBK bytes: U+FFFD in place of each, conversion goes on. */
    c = parse_str("From: a@b.cn\r\nContent-Type: text/plain; charset=gbk\r\n\r\n"
                  "\xc4\xe3\xff\xba\xc3\r\n");
    assert_string_equal(str(c, "body"), "你\xef\xbf\xbd好");
    json_decref(c);
    /* UTF-16 text: NUL bytes are part of the encoding, none reaches the output. */
    c = parse_ok("From: a@b.cn\r\nContent-Type: text/plain; charset=utf-16le\r\n\r\n"
                 "h\0i\0",
                 sizeof("From: a@b.cn\r\nContent-Type: text/plain; charset=utf-16le\r\n\r\n"
                        "h\0i\0") -
                     1);
    assert_string_equal(str(c, "body"), "hi");
    json_decref(c);
    /* Undeclared 8-bit headers: UTF-8 when valid, else GBK (Chinese clients). */
    c = parse_str("From: \xe5\xbc\xa0\xe4\xb8\x89 <a@b.cn>\r\nSubject: \xcd\xcb\xbf\xee\r\n\r\n"
                  "x\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "name"), "张三");
    assert_string_equal(str(c, "subject"), "退款");
    json_decref(c);
    /* Encoded words: Q and B, several charsets in one header, adjacent words joined. */
    c = parse_str("From: =?utf-8?Q?Ren=C3=A9e?= <a@b.cn>\r\n"
                  "Subject: =?gb2312?B?zcu/7g==?= =?big5?B?sGi02g==?= and more\r\n\r\nx\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "name"), "Renée");
    assert_string_equal(str(c, "subject"), "退款退款 and more");
    json_decref(c);
}

/* ---- Structure ---- */

static void test_plain_preferred(void **state)
{
    json_t *c;
    (void)state;

    /* HTML first in the alternative: text/plain is still chosen; the HTML rendering
     * and the calendar rendering are neither body nor attachments. */
    c = parse_str("From: a@b.cn\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
                  "--A\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
                  "--A\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n"
                  "--A\r\nContent-Type: text/plain\r\n\r\nplain\r\n--A--\r\n");
    assert_string_equal(str(c, "body"), "plain");
    assert_true(json_is_false(json_object_get(meta(c), "html_only")));
    assert_null(json_object_get(c, "attachments"));
    json_decref(c);
    /* HTML with inline images (multipart/related): reduced to text, the image is an
     * attachment with its decoded size. */
    c = parse_str("From: a@b.cn\r\nContent-Type: multipart/related; boundary=R\r\n\r\n"
                  "--R\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                  "<p>see <img src=\"cid:i1\"> &amp; reply</p>\r\n"
                  "--R\r\nContent-Type: image/PNG\r\nContent-ID: <i1>\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--R--\r\n");
    assert_string_equal(str(c, "body"), "see & reply");
    assert_true(json_is_true(json_object_get(meta(c), "html_only")));
    assert_int_equal(json_array_size(json_object_get(c, "attachments")), 1);
    {
        json_t *a = json_array_get(json_object_get(c, "attachments"), 0);
        assert_string_equal(str(a, "type"), "image/png");
        assert_null(json_object_get(a, "name")); /* none given: none invented */
        assert_int_equal(json_integer_value(json_object_get(a, "size")), 8);
    }
    json_decref(c);
}

static void test_attachments(void **state)
{
    json_t *c, *att;
    (void)state;

    /* A text part marked attachment is not the body; RFC 2231 names (with a
     * continuation) and RFC 2047 names are decoded; a forwarded message is described. */
    c = parse_str(
        "From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
        "--M\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
        "--M\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Disposition: attachment;\r\n filename*0*=UTF-8''%E5%8F%91%E7%A5%A8;\r\n"
        " filename*1*=.txt\r\n\r\nline\r\n"
        "--M\r\nContent-Type: application/vnd.ms-excel; name=\"=?GBK?B?zcu/7g==?=.xls\"\r\n"
        "Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "AAECAw==\r\n"
        "--M\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y.cn\r\nSubject: old\r\n\r\nold\r\n"
        "--M--\r\n");
    assert_string_equal(str(c, "body"), "see attached");
    att = json_object_get(c, "attachments");
    assert_int_equal(json_array_size(att), 3);
    assert_string_equal(str(json_array_get(att, 0), "name"), "发票.txt");
    assert_string_equal(str(json_array_get(att, 0), "type"), "text/plain");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 0), "size")), 4);
    assert_string_equal(str(json_array_get(att, 1), "name"), "退款.xls");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(att, 1), "size")), 4);
    assert_string_equal(str(json_array_get(att, 2), "type"), "message/rfc822");
    assert_null(json_object_get(json_array_get(att, 2), "name"));
    assert_true(json_integer_value(json_object_get(json_array_get(att, 2), "size")) > 0);
    json_decref(c);
    /* Attachments only: no body is invented; the metadata says why. */
    c = parse_str("From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=M\r\n\r\n"
                  "--M\r\nContent-Type: application/pdf; name=a.pdf\r\n\r\n%PDF\r\n--M--\r\n");
    assert_null(json_object_get(c, "body"));
    assert_true(json_is_true(json_object_get(meta(c), "empty_body")));
    assert_int_equal(json_array_size(json_object_get(c, "attachments")), 1);
    json_decref(c);
}

/* ---- Identity and headers ---- */

static void test_identity(void **state)
{
    json_t *c;
    (void)state;

    /* Reply-To without a name, another address: the From name is not borrowed. */
    c = parse_str("From: Web Form <form@x.cn>\r\nReply-To: Buyer@X.CN\r\n\r\nx\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "email"), "buyer@x.cn");
    assert_null(json_object_get(json_object_get(c, "customer"), "name"));
    assert_string_equal(str(meta(c), "from"), "form@x.cn");
    assert_string_equal(str(meta(c), "reply_to"), "buyer@x.cn");
    json_decref(c);
    /* Reply-To the same person: the From name applies. */
    c = parse_str("From: Li Na <li@x.cn>\r\nReply-To: <LI@x.cn>\r\n\r\nx\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "name"), "Li Na");
    json_decref(c);
    /* Reply-To alone is an identity; an unusable Reply-To falls back to From. */
    c = parse_str("Reply-To: r@x.cn\r\n\r\nx\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "email"), "r@x.cn");
    assert_null(json_object_get(meta(c), "from"));
    json_decref(c);
    c = parse_str("From: f@x.cn\r\nReply-To: undisclosed-recipients:;\r\n\r\nx\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "email"), "f@x.cn");
    assert_null(json_object_get(meta(c), "reply_to"));
    json_decref(c);
    /* A group: its first member. */
    c = parse_str("From: Sales: Li Na <li@x.cn>, b@x.cn;\r\n\r\nx\r\n");
    assert_string_equal(str(json_object_get(c, "customer"), "email"), "li@x.cn");
    assert_string_equal(str(json_object_get(c, "customer"), "name"), "Li Na");
    json_decref(c);
    expect_refused("Subject: x\r\n\r\nx\r\n", strlen("Subject: x\r\n\r\nx\r\n"), SB_E_INVAL,
                   "field \"from\": missing");
    expect_refused("From: nobody\r\n\r\nx\r\n", strlen("From: nobody\r\n\r\nx\r\n"), SB_E_INVAL,
                   "field \"from\": not an email address");
}

static void test_headers(void **state)
{
    char raw[16384];
    size_t n = 0;
    json_t *c, *refs;
    (void)state;

    /* No Message-ID, no Date: none invented. */
    c = parse_str("From: a@b.cn\r\nSubject: hi\r\n\r\nx\r\n");
    assert_null(json_object_get(c, "external_id"));
    assert_null(json_object_get(c, "sent_at"));
    assert_null(json_object_get(c, "in_reply_to"));
    assert_null(json_object_get(c, "references"));
    json_decref(c);
    /* A Date that does not parse is left out; a zone is converted to UTC. */
    c = parse_str("From: a@b.cn\r\nDate: someday soon\r\nMessage-ID: no-at-sign\r\n\r\nx\r\n");
    assert_null(json_object_get(c, "sent_at"));
    assert_null(json_object_get(c, "external_id"));
    json_decref(c);
    c = parse_str("From: a@b.cn\r\nDate: Fri, 31 Dec 2027 23:30:00 -0830\r\n\r\nx\r\n");
    assert_string_equal(str(c, "sent_at"), "2028-01-01T08:00:00.000Z");
    json_decref(c);
    /* A Message-ID over the contact's 200 bytes is left out. */
    n += (size_t)snprintf(raw + n, sizeof(raw) - n, "From: a@b.cn\r\nMessage-ID: <");
    memset(raw + n, 'x', 200);
    n += 200;
    n += (size_t)snprintf(raw + n, sizeof(raw) - n, "@b.cn>\r\n\r\nx\r\n");
    c = parse_ok(raw, n);
    assert_null(json_object_get(c, "external_id"));
    json_decref(c);
    /* 150 references: the newest 100 are kept, in order. */
    n = (size_t)snprintf(raw, sizeof(raw), "From: a@b.cn\r\nReferences:");
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(raw + n, sizeof(raw) - n, " <r%d@x.cn>\r\n", i);
    n += (size_t)snprintf(raw + n, sizeof(raw) - n,
                          "In-Reply-To: <r149@x.cn> <zz@x.cn>\r\n\r\nx\r\n");
    c = parse_ok(raw, n);
    refs = json_object_get(c, "references");
    assert_int_equal(json_array_size(refs), 100);
    assert_string_equal(json_string_value(json_array_get(refs, 0)), "r50@x.cn");
    assert_string_equal(json_string_value(json_array_get(refs, 99)), "r149@x.cn");
    assert_string_equal(str(c, "in_reply_to"), "r149@x.cn");
    json_decref(c);
}

/* ---- Quoted history ---- */

static void expect_trim(const char *in, const char *want)
{
    char *buf = strdup(in);
    sb_email_trim_quoted(buf);
    if (strcmp(buf, want) != 0)
        fail_msg("\"%s\" trimmed to \"%s\", want \"%s\"", in, buf, want);
    free(buf);
}

static void test_trim_quoted(void **state)
{
    (void)state;
    expect_trim("Thanks!\n\nOn Mon, 20 May 2024, Shop <kf@shop.cn> wrote:\n> old\n", "Thanks!");
    /* Gmail wraps a long attribution line. */
    expect_trim("Yes.\nOn Mon, May 20, 2024 at 2:00 PM Customer Service <\nkf@shop.cn> wrote:\n"
                "> old\n",
                "Yes.");
    expect_trim("好的\n\n在 2024年5月20日 14:00，客服 <kf@shop.cn> 写道：\n> 旧\n", "好的");
    expect_trim("好的\n在 2024年5月20日周一 下午2:00，客服\n<kf@shop.cn> 寫道：\n舊\n", "好的");
    expect_trim("See below\n-----Original Message-----\nFrom: x\nSent: y\n", "See below");
    expect_trim("收到\n-----原始邮件-----\n发件人: x\n", "收到");
    expect_trim("收到\n------------------ 原始邮件 ------------------\n发件人: x\n", "收到");
    expect_trim("收到\n发件人： 客服 <kf@shop.cn>\n发送时间： 2024年5月20日\n", "收到");
    expect_trim("Fine\n\nFrom: Shop <kf@shop.cn>\nSent: Monday, May 20, 2024 2:00 PM\nTo: me\n",
                "Fine");
    expect_trim("Fine\n________________________________\nFrom: Shop <kf@shop.cn>\n", "Fine");
    /* A From: line alone is text, not a quote header. */
    expect_trim("From: my shop account\nit fails", "From: my shop account\nit fails");
    /* Quoted lines go wherever they are; what the customer wrote stays. */
    expect_trim("> question 1\nanswer 1\n> question 2\nanswer 2\n", "answer 1\nanswer 2");
    expect_trim("new\n\n\n\n> q\n\n\nmore  \n\n", "new\n\nmore");
    expect_trim("\n\n  \nstart\r\nend \t\r\n", "start\nend");
    /* Nothing but quoted text: kept rather than lost. */
    expect_trim("> only quoted\n> text\n", "> only quoted\n> text");
    expect_trim("", "");
}

/* ---- Limits ---- */

static struct sb_strbuf nested(int depth)
{
    struct sb_strbuf b = {NULL, 0, 0};
    sb_strbuf_printf(&b, "From: a@b.cn\r\n");
    for (int i = 0; i < depth; i++)
        sb_strbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i,
                         i);
    sb_strbuf_printf(&b, "Content-Type: text/plain\r\n\r\ninnermost\r\n");
    for (int i = depth - 1; i >= 0; i--)
        sb_strbuf_printf(&b, "--b%d--\r\n", i);
    return b;
}

static void test_limits(void **state)
{
    struct sb_strbuf b;
    json_t *c;
    char *big;
    (void)state;

    /* Size. */
    big = malloc(SB_EMAIL_MAX_BYTES + 1);
    assert_non_null(big);
    memset(big, 'a', SB_EMAIL_MAX_BYTES + 1);
    expect_refused(big, SB_EMAIL_MAX_BYTES + 1, SB_E_TOOBIG, "message larger than 10485760 bytes");
    free(big);
    expect_refused("", 0, SB_E_INVAL, "empty message");
    /* Depth: 16 nested multiparts pass, 17 do not. */
    b = nested(SB_EMAIL_MAX_DEPTH);
    c = parse_ok(b.p, b.len);
    assert_string_equal(str(c, "body"), "innermost");
    json_decref(c);
    free(b.p);
    b = nested(SB_EMAIL_MAX_DEPTH + 1);
    expect_refused(b.p, b.len, SB_E_INVAL, "MIME nesting deeper than 16");
    free(b.p);
    /* Multiparts inside embedded messages count too (GMime parses those). */
    for (int levels = 2; levels <= 17; levels += 15) {
        b = (struct sb_strbuf){NULL, 0, 0};
        sb_strbuf_printf(&b, "From: a@b.cn\r\n");
        for (int i = 0; i < levels; i++)
            sb_strbuf_printf(&b,
                             "Content-Type: multipart/mixed; boundary=\"m%d\"\r\n\r\n--m%d\r\n"
                             "Content-Type: message/rfc822\r\n\r\nFrom: x@y.cn\r\n",
                             i, i);
        sb_strbuf_printf(&b, "\r\nx\r\n");
        if (levels > SB_EMAIL_MAX_DEPTH) {
            expect_refused(b.p, b.len, SB_E_INVAL, "MIME nesting deeper than 16");
        } else {
            c = parse_ok(b.p, b.len); /* the embedded message is described, not opened */
            assert_int_equal(json_array_size(json_object_get(c, "attachments")), 1);
            assert_string_equal(str(json_array_get(json_object_get(c, "attachments"), 0), "type"),
                                "message/rfc822");
            json_decref(c);
        }
        free(b.p);
    }
    /* Parts. */
    b = (struct sb_strbuf){NULL, 0, 0};
    sb_strbuf_printf(&b, "From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n");
    for (int i = 0; i < SB_EMAIL_MAX_PARTS + 1; i++)
        sb_strbuf_printf(&b, "--P\r\n\r\nx\r\n");
    expect_refused(b.p, b.len, SB_E_TOOBIG, "more than 1000 MIME parts");
    free(b.p);
    /* Header fields and header bytes. */
    b = (struct sb_strbuf){NULL, 0, 0};
    sb_strbuf_printf(&b, "From: a@b.cn\r\n");
    for (int i = 0; i < SB_EMAIL_MAX_HEADER_FIELDS; i++)
        sb_strbuf_printf(&b, "X-H: %d\r\n", i);
    sb_strbuf_printf(&b, "\r\nx\r\n");
    expect_refused(b.p, b.len, SB_E_TOOBIG, "more than 10000 header fields");
    free(b.p);
    b = (struct sb_strbuf){NULL, 0, 0};
    sb_strbuf_printf(&b, "From: a@b.cn\r\nTo:");
    for (int i = 0; i < 50000; i++) /* 22 bytes each: 1.1 MB */
        sb_strbuf_printf(&b, " u%06d@example.com,\r\n", i);
    sb_strbuf_printf(&b, "\r\nx\r\n");
    expect_refused(b.p, b.len, SB_E_TOOBIG, "headers larger than 1048576 bytes");
    free(b.p);
    /* Attachments: the first 100 described, the others counted. */
    b = (struct sb_strbuf){NULL, 0, 0};
    sb_strbuf_printf(&b, "From: a@b.cn\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n"
                         "--P\r\n\r\nbody\r\n");
    for (int i = 0; i < SB_EMAIL_MAX_ATTACHMENTS + 5; i++)
        sb_strbuf_printf(&b, "--P\r\nContent-Type: image/jpeg; name=\"p%d.jpg\"\r\n\r\nJFIF\r\n",
                         i);
    sb_strbuf_printf(&b, "--P--\r\n");
    c = parse_ok(b.p, b.len);
    assert_int_equal(json_array_size(json_object_get(c, "attachments")), 100);
    assert_string_equal(str(json_array_get(json_object_get(c, "attachments"), 99), "name"),
                        "p99.jpg");
    assert_int_equal(json_integer_value(json_object_get(meta(c), "attachments_omitted")), 5);
    assert_valid_contact("100 attachments", c);
    json_decref(c);
    free(b.p);
}

/* Nesting written every way GMime accepts it must be caught before GMime runs: 1000
 * levels followed by 2 MB of delimiter-like lines cost GMime seconds (each line is
 * compared with every open boundary), the pre-scan well under a millisecond. */
static void expect_nesting_refused_fast(const char *what, const char *level)
{
    struct sb_strbuf b = {NULL, 0, 0};
    char err[256] = "";
    json_t *c = NULL;
    clock_t t0;
    double secs;
    int rc;

    sb_strbuf_printf(&b, "From: a@b.cn\r\n");
    for (int i = 0; i < 1000; i++) {
        /* the level's text with each '#' replaced by its number */
        for (const char *t = level; *t; t++) {
            if (*t == '#')
                sb_strbuf_printf(&b, "%d", i);
            else
                sb_strbuf_printf(&b, "%c", *t);
        }
    }
    sb_strbuf_printf(&b, "Content-Type: text/plain\r\n\r\n");
    for (int i = 0; i < 400000; i++)
        sb_strbuf_printf(&b, "--x\r\n");
    t0 = clock();
    rc = sb_email_parse(b.p, b.len, &c, err, sizeof(err));
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (rc != SB_E_INVAL || strcmp(err, "MIME nesting deeper than 16") != 0)
        fail_msg("%s: rc %d, \"%s\"", what, rc, err);
    if (secs > 0.25)
        fail_msg("%s: refused only after %.2f s: the pre-scan missed it", what, secs);
    json_decref(c);
    free(b.p);
}

/* 250 characters: longer than any fixed buffer a scanner might compare on. */
#define LONG_PREFIX                                                                                \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"    \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"    \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void test_nesting_disguised(void **state)
{
    (void)state;
    expect_nesting_refused_fast("plain",
                                "Content-Type: multipart/mixed; boundary=\"b#\"\r\n\r\n--b#\r\n");
    expect_nesting_refused_fast("case",
                                "CONTENT-TYPE: Multipart/Mixed; BOUNDARY=b#\r\n\r\n--b#\r\n");
    expect_nesting_refused_fast("comment", "Content-Type: (c) multipart/mixed (d); boundary=b#\r\n"
                                           "\r\n--b#\r\n");
    expect_nesting_refused_fast("blank before colon",
                                "Content-Type : multipart/mixed; boundary=b#\r\n\r\n--b#\r\n");
    expect_nesting_refused_fast("folded", "Content-Type: multipart/mixed;\r\n\tboundary=\r\n"
                                          " \"b#\"\r\n\r\n--b#\r\n");
    expect_nesting_refused_fast("RFC 2231 continuation",
                                "Content-Type: multipart/mixed; boundary*0=\"b\";\r\n"
                                " boundary*1=\"#\"\r\n\r\n--b#\r\n");
    expect_nesting_refused_fast("junk line in the header block",
                                "junk without a colon\r\nContent-Type: text/plain\r\n"
                                "Content-Type: multipart/mixed; boundary=b#\r\n\r\n--b#\r\n");
    expect_nesting_refused_fast("long boundaries with a common prefix",
                                "Content-Type: multipart/mixed; boundary=\"" LONG_PREFIX
                                "#\"\r\n\r\n--" LONG_PREFIX "#\r\n");
    expect_nesting_refused_fast("through embedded messages",
                                "Content-Type: multipart/mixed; boundary=m#\r\n\r\n--m#\r\n"
                                "Content-Type: message/rfc822\r\n\r\n");
    /* Parts of a digest are messages by default: their headers come next. */
    expect_nesting_refused_fast("digest defaults",
                                "Content-Type: multipart/digest; boundary=d#\r\n\r\n--d#\r\n"
                                "\r\n");
}

static void test_body_cap(void **state)
{
    struct sb_strbuf b = {NULL, 0, 0};
    const char *body;
    json_t *c;
    size_t n;
    (void)state;

    /* 100 000 three-byte characters (300 000 bytes): cut at 262 143, on a boundary. */
    sb_strbuf_printf(&b, "From: a@b.cn\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    for (int i = 0; i < 100000; i++)
        sb_strbuf_printf(&b, "中");
    c = parse_ok(b.p, b.len);
    body = str(c, "body");
    n = strlen(body);
    assert_int_equal(n, (SB_EMAIL_MAX_BODY / 3) * 3);
    assert_memory_equal(body + n - 3, "中", 3);
    assert_true(json_is_true(json_object_get(meta(c), "truncated")));
    assert_valid_contact("capped body", c);
    json_decref(c);
    free(b.p);
    /* A short one is not flagged. */
    c = parse_str("From: a@b.cn\r\n\r\nshort\r\n");
    assert_null(json_object_get(meta(c), "truncated"));
    json_decref(c);
    /* HTML source past its bound: the text is cut and flagged. */
    b = (struct sb_strbuf){NULL, 0, 0};
    sb_strbuf_printf(&b, "From: a@b.cn\r\nContent-Type: text/html\r\n\r\n");
    for (int i = 0; i < 200000; i++)
        sb_strbuf_printf(&b, "<p>paragraph %d</p>\r\n", i);
    c = parse_ok(b.p, b.len);
    body = str(c, "body");
    assert_true(strlen(body) <= SB_EMAIL_MAX_BODY && strlen(body) > SB_EMAIL_MAX_BODY - 32);
    assert_memory_equal(body, "paragraph 0\n\nparagraph 1\n\n", 26);
    assert_true(json_is_true(json_object_get(meta(c), "truncated")));
    json_decref(c);
    free(b.p);
}

/* ---- Threads ---- */

static const char *const fixture_names[] = {"gbk_multipart_attachment_reply.eml", "big5.eml",
                                            "html_only.eml", "latin1_outlook_reply.eml",
                                            "utf8_reply_to.eml"};
#define NFIXTURES (sizeof(fixture_names) / sizeof(fixture_names[0]))

struct job {
    char *raw[NFIXTURES];
    size_t len[NFIXTURES];
    json_t *want[NFIXTURES];
};

static void *parse_many(void *arg)
{
    struct job *job = arg;
    int bad = 0;

    for (int round = 0; round < 40; round++) {
        for (size_t i = 0; i < NFIXTURES; i++) {
            char err[256];
            json_t *c = NULL;
            if (sb_email_parse(job->raw[i], job->len[i], &c, err, sizeof(err)) != 0 ||
                !json_equal(c, job->want[i]))
                bad++;
            json_decref(c);
        }
    }
    return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
    struct job job = {{NULL}, {0}, {NULL}};
    pthread_t t[4];
    (void)state;

    for (size_t i = 0; i < NFIXTURES; i++) {
        char rel[256];
        job.raw[i] = load(fixture_names[i], &job.len[i]);
        snprintf(rel, sizeof(rel), "%.*s.json", (int)(strlen(fixture_names[i]) - 4),
                 fixture_names[i]);
        job.want[i] = load_json(rel);
    }
    for (int k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&t[k], NULL, parse_many, &job), 0);
    for (int k = 0; k < 4; k++) {
        void *bad = NULL;
        assert_int_equal(pthread_join(t[k], &bad), 0);
        assert_int_equal((intptr_t)bad, 0);
    }
    for (size_t i = 0; i < NFIXTURES; i++) {
        free(job.raw[i]);
        json_decref(job.want[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),    cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_charsets),    cmocka_unit_test(test_plain_preferred),
        cmocka_unit_test(test_attachments), cmocka_unit_test(test_identity),
        cmocka_unit_test(test_headers),     cmocka_unit_test(test_trim_quoted),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_nesting_disguised),
        cmocka_unit_test(test_body_cap),    cmocka_unit_test(test_threads),
    };
    sb_email_global_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
