/* Unit tests of the WeChat official-account channel (services/ingest/wechat.c), data
 * driven: every push of tests/data/wechat/<name>.xml against its exact expected result
 * <name>.json, every refused push of tests/data/wechat/bad/ (fuzzer finds included)
 * against bad/expected.json, every signature vector of signatures.json (computed with
 * Python's hashlib, see make_signatures.py), then the limits at their edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "contact.h"
#include "sb/err.h"
#include "wechat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_DIR "wechat"
#include "fixtures.h"

/* Names of the files of tests/data/wechat/<dir> ending with suffix, sorted. */
static json_t *list_dir(const char *dir, const char *suffix)
{
    const char *root = getenv("SB_REPO_ROOT");
    char path[1024];
    json_t *names = json_array();
    struct dirent *e;
    DIR *dh;

    snprintf(path, sizeof(path), "%s/tests/data/wechat/%s", root ? root : ".", dir);
    dh = opendir(path);
    if (dh == NULL)
        fail_msg("cannot list %s", path);
    for (e = readdir(dh); e != NULL; e = readdir(dh)) {
        if (e->d_name[0] != '.' && ends_with(e->d_name, suffix))
            json_array_append_new(names, json_string(e->d_name));
    }
    closedir(dh);
    return names;
}

/* Parses a push held in a string. */
static int parse_str(const char *xml, enum sb_wechat_kind *kind, json_t **contact, char *err,
                     size_t errsz)
{
    return sb_wechat_parse(xml, strlen(xml), kind, contact, err, errsz);
}

static void test_fixtures(void **state)
{
    static const char *const required[] = {"text.xml",
                                           "voice.xml",
                                           "voice_norecog.xml",
                                           "image.xml",
                                           "event_subscribe.xml",
                                           "event_click.xml",
                                           "event_unsubscribe.xml"};
    json_t *names = list_dir("", ".xml"), *name;
    size_t i, contacts = 0;

    (void)state;
    for (size_t r = 0; r < sizeof(required) / sizeof(required[0]); r++) {
        int found = 0;
        json_array_foreach(names, i, name)
        {
            found |= strcmp(json_string_value(name), required[r]) == 0;
        }
        if (!found)
            fail_msg("fixture %s is missing", required[r]);
    }
    json_array_foreach(names, i, name)
    {
        const char *xml_name = json_string_value(name);
        char want_name[256], err[256] = "", field[64] = "";
        size_t len;
        char *xml = load(xml_name, &len);
        enum sb_wechat_kind kind;
        json_t *contact = NULL, *want, *normalized = NULL;
        int rc;

        snprintf(want_name, sizeof(want_name), "%.*s.json", (int)(strlen(xml_name) - 4), xml_name);
        want = load_json(want_name);
        rc = sb_wechat_parse(xml, len, &kind, &contact, err, sizeof(err));
        if (rc != 0)
            fail_msg("%s refused (%d): %s", xml_name, rc, err);
        if (strcmp(json_string_value(json_object_get(want, "kind")), "ignore") == 0) {
            if (kind != SB_WECHAT_IGNORE)
                fail_msg("%s: expected SB_WECHAT_IGNORE, got %d", xml_name, (int)kind);
            assert_null(contact);
        } else {
            if (kind != SB_WECHAT_CONTACT)
                fail_msg("%s: expected SB_WECHAT_CONTACT, got %d", xml_name, (int)kind);
            assert_json_equal(xml_name, contact, json_object_get(want, "contact"));
            /* The generic contact of POST /v1/contacts accepts it as it is. */
            if (sb_contact_normalize(contact, &lim, &normalized, field, sizeof(field), err,
                                     sizeof(err)) != 0)
                fail_msg("%s: refused by sb_contact_normalize: %s (%s)", xml_name, err, field);
            contacts++;
        }
        json_decref(normalized);
        json_decref(contact);
        json_decref(want);
        free(xml);
    }
    assert_true(contacts >= 15);
    assert_true(json_array_size(names) >= 19);
    json_decref(names);
}

static const char *rc_name(int rc)
{
    return rc == SB_E_INVAL ? "SB_E_INVAL" : rc == SB_E_TOOBIG ? "SB_E_TOOBIG" : "other";
}

static void test_bad_pushes(void **state)
{
    json_t *expected = load_json("bad/expected.json");
    json_t *files = list_dir("bad", ".xml"), *name, *want;
    const char *key;
    size_t i;

    (void)state;
    /* Every refused input is listed, so that none is replayed without an expectation. */
    json_array_foreach(files, i, name)
    {
        if (json_object_get(expected, json_string_value(name)) == NULL)
            fail_msg("bad/%s has no entry in bad/expected.json", json_string_value(name));
    }
    assert_int_equal(json_array_size(files), json_object_size(expected));
    json_object_foreach(expected, key, want)
    {
        char rel[256], err[256] = "";
        const char *exact = json_string_value(json_object_get(want, "error"));
        const char *prefix = json_string_value(json_object_get(want, "error_prefix"));
        size_t len;
        char *xml;
        enum sb_wechat_kind kind = SB_WECHAT_CONTACT;
        json_t *contact = NULL;
        int rc;

        snprintf(rel, sizeof(rel), "bad/%s", key);
        xml = load(rel, &len);
        rc = sb_wechat_parse(xml, len, &kind, &contact, err, sizeof(err));
        if (strcmp(rc_name(rc), json_string_value(json_object_get(want, "rc"))) != 0)
            fail_msg("%s: returned %s (%d: %s), expected %s", key, rc_name(rc), rc, err,
                     json_string_value(json_object_get(want, "rc")));
        assert_null(contact);
        assert_int_equal(kind, SB_WECHAT_IGNORE);
        if (exact != NULL && strcmp(err, exact) != 0)
            fail_msg("%s:\nerror: %s\nwant:  %s", key, err, exact);
        if (prefix != NULL && strncmp(err, prefix, strlen(prefix)) != 0)
            fail_msg("%s:\nerror: %s\nwant a prefix: %s", key, err, prefix);
        assert_true(exact != NULL || prefix != NULL);
        free(xml);
    }
    json_decref(files);
    json_decref(expected);
}

static void test_signatures(void **state)
{
    json_t *cases = load_json("signatures.json"), *tc;
    size_t i, valid = 0, invalid = 0;
    char out[41];

    (void)state;
    json_array_foreach(cases, i, tc)
    {
        const char *token = json_string_value(json_object_get(tc, "token"));
        const char *ts = json_string_value(json_object_get(tc, "timestamp"));
        const char *nonce = json_string_value(json_object_get(tc, "nonce"));
        const char *sig = json_string_value(json_object_get(tc, "signature"));
        int want = json_is_true(json_object_get(tc, "valid"));
        int got = sb_wechat_signature_ok(token, ts, nonce, sig);

        if (got != want)
            fail_msg("case %zu (%s): got %d, want %d", i,
                     json_string_value(json_object_get(tc, "note")), got, want);
        if (want) {
            sb_wechat_signature(token, ts, nonce, out);
            assert_string_equal(out, sig);
            valid++;
        } else {
            invalid++;
        }
    }
    assert_true(valid >= 4);
    assert_true(invalid >= 10);
    json_decref(cases);

    /* Parameters the check refuses give no signature at all. */
    sb_wechat_signature(NULL, "1716184800", "n", out);
    assert_string_equal(out, "");
    sb_wechat_signature("dev-wechat-token", "", "n", out);
    assert_string_equal(out, "");
    assert_false(sb_wechat_signature_ok(NULL, "1716184800", "n", "0"));
    assert_false(sb_wechat_signature_ok("dev-wechat-token", NULL, "n", "0"));
}

/* A text push around the given Content and extra elements. */
static char *text_push(const char *content, const char *extra)
{
    static const char head[] = "<xml><ToUserName>gh_5f3c2a9e8b71</ToUserName>"
                               "<FromUserName>oLk2X5u9ZQb3Jm8TfR1vYc4WdE7s</FromUserName>"
                               "<CreateTime>1716184800</CreateTime><MsgType>text</MsgType>"
                               "<MsgId>1</MsgId><Content>";
    size_t n = strlen(head) + strlen(content) + strlen(extra) + 32;
    char *s = malloc(n);

    assert_non_null(s);
    snprintf(s, n, "%s%s</Content>%s</xml>", head, content, extra);
    return s;
}

static void test_limits(void **state)
{
    enum sb_wechat_kind kind;
    json_t *c = NULL;
    char err[256];
    char *big, *s;
    size_t n;

    (void)state;
    /* Body: SB_WECHAT_MAX_BYTES passes (padding after the root), one more byte does not. */
    s = text_push("hi", "");
    n = strlen(s);
    big = malloc(SB_WECHAT_MAX_BYTES + 1);
    assert_non_null(big);
    memcpy(big, s, n);
    memset(big + n, ' ', SB_WECHAT_MAX_BYTES + 1 - n);
    assert_int_equal(sb_wechat_parse(big, SB_WECHAT_MAX_BYTES, &kind, &c, err, sizeof(err)), 0);
    assert_int_equal(kind, SB_WECHAT_CONTACT);
    json_decref(c);
    c = NULL;
    assert_int_equal(sb_wechat_parse(big, SB_WECHAT_MAX_BYTES + 1, &kind, &c, err, sizeof(err)),
                     SB_E_TOOBIG);
    assert_string_equal(err, "field \"body\": larger than 65536 bytes");
    assert_null(c);
    free(s);

    /* Element text: SB_WECHAT_TEXT_MAX passes, one more byte does not. */
    memset(big, 'x', SB_WECHAT_TEXT_MAX + 1);
    big[SB_WECHAT_TEXT_MAX] = '\0';
    s = text_push(big, "");
    assert_int_equal(parse_str(s, &kind, &c, err, sizeof(err)), 0);
    assert_int_equal(json_string_length(json_object_get(c, "body")), SB_WECHAT_TEXT_MAX);
    json_decref(c);
    c = NULL;
    free(s);
    big[SB_WECHAT_TEXT_MAX] = 'x';
    big[SB_WECHAT_TEXT_MAX + 1] = '\0';
    s = text_push(big, "");
    assert_int_equal(parse_str(s, &kind, &c, err, sizeof(err)), SB_E_TOOBIG);
    assert_string_equal(err, "field \"Content\": longer than 16384 bytes");
    free(s);
    free(big);

    /* Depth: 8 levels pass (<xml> is 1), 9 do not. */
    s = text_push("hi", "<A><b><c><d><e><f><g>x</g></f></e></d></c></b></A>");
    assert_int_equal(parse_str(s, &kind, &c, err, sizeof(err)), 0);
    json_decref(c);
    c = NULL;
    free(s);
    s = text_push("hi", "<A><b><c><d><e><f><g><h>x</h></g></f></e></d></c></b></A>");
    assert_int_equal(parse_str(s, &kind, &c, err, sizeof(err)), SB_E_INVAL);
    assert_string_equal(err, "field \"A\": nested deeper than 8 elements");
    free(s);

    /* Element count. */
    big = malloc(300 * 8 + 1);
    assert_non_null(big);
    for (int i = 0; i < 300; i++)
        memcpy(big + i * 8, "<e></e> ", 8);
    big[300 * 8] = '\0';
    s = text_push("hi", big);
    assert_int_equal(parse_str(s, &kind, &c, err, sizeof(err)), SB_E_TOOBIG);
    assert_string_equal(err, "field \"body\": more than 256 elements");
    free(s);
    free(big);
}

static void test_edges(void **state)
{
    enum sb_wechat_kind kind;
    json_t *c = NULL;
    char err[256], *s;

    (void)state;
    /* The input need not be NUL-terminated: only len bytes are read. */
    s = text_push("hi", "");
    {
        size_t n = strlen(s);
        char *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, s, n);
        assert_int_equal(sb_wechat_parse(copy, n, &kind, &c, err, sizeof(err)), 0);
        assert_string_equal(json_string_value(json_object_get(c, "body")), "hi");
        json_decref(c);
        c = NULL;
        /* One byte short: the document is cut. */
        assert_int_equal(sb_wechat_parse(copy, n - 1, &kind, &c, err, sizeof(err)), SB_E_INVAL);
        free(copy);
    }
    free(s);

    /* No error buffer at all is fine. */
    assert_int_equal(sb_wechat_parse("<xml/>", 6, &kind, &c, NULL, 0), SB_E_INVAL);
    assert_int_equal(sb_wechat_parse(NULL, 0, &kind, &c, err, sizeof(err)), SB_E_INVAL);

    /* A message type newer than the parser is still a contact. */
    assert_int_equal(parse_str("<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
                               "<CreateTime>1716184800</CreateTime><MsgType>miniprogrampage"
                               "</MsgType><MsgId>7</MsgId></xml>",
                               &kind, &c, err, sizeof(err)),
                     0);
    assert_int_equal(kind, SB_WECHAT_CONTACT);
    assert_string_equal(json_string_value(json_object_get(c, "body")), "[miniprogrampage]");
    assert_null(json_object_get(c, "attachments"));
    json_decref(c);
    c = NULL;

    /* CLICK without a key, location without a label, link without a title. */
    assert_int_equal(parse_str("<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
                               "<CreateTime>1716184800</CreateTime><MsgType>event</MsgType>"
                               "<Event>CLICK</Event></xml>",
                               &kind, &c, err, sizeof(err)),
                     0);
    assert_string_equal(json_string_value(json_object_get(c, "body")), "[click]");
    assert_string_equal(json_string_value(json_object_get(c, "external_id")),
                        "o1:1716184800:CLICK");
    json_decref(c);
    c = NULL;
    assert_int_equal(parse_str("<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
                               "<CreateTime>1716184800</CreateTime><MsgType>location</MsgType>"
                               "<Location_X>-23.5</Location_X><Location_Y>0</Location_Y>"
                               "<MsgId>8</MsgId></xml>",
                               &kind, &c, err, sizeof(err)),
                     0);
    assert_string_equal(json_string_value(json_object_get(c, "body")), "[location] (-23.5,0)");
    json_decref(c);
    c = NULL;
    assert_int_equal(parse_str("<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
                               "<CreateTime>1716184800</CreateTime><MsgType>link</MsgType>"
                               "<Url>https://e.example/x</Url><MsgId>9</MsgId></xml>",
                               &kind, &c, err, sizeof(err)),
                     0);
    assert_string_equal(json_string_value(json_object_get(c, "body")),
                        "[link] https://e.example/x");
    json_decref(c);
    c = NULL;

    /* An ignored event is still checked: a malformed one is refused, not ignored. */
    assert_int_equal(parse_str("<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName>"
                               "<CreateTime>soon</CreateTime><MsgType>event</MsgType>"
                               "<Event>VIEW</Event></xml>",
                               &kind, &c, err, sizeof(err)),
                     SB_E_INVAL);
    assert_string_equal(err, "field \"CreateTime\": not a unix time in seconds");

    /* A long non-ASCII element name is cut at a character boundary in the error. */
    {
        static const char head[] = "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1"
                                   "</FromUserName><CreateTime>1</CreateTime><MsgType>text"
                                   "</MsgType><MsgId>1</MsgId><Content>a</Content><";
        static const char tail[] = "><a><b><c><d><e><f><g>x</g></f></e></d></c></b></a></xml>";
        static const char name[] = "名"; /* 3 bytes: 40 of them cross the 64-byte cut */
        char xml[512];
        size_t n = 0;
        json_t *j;

        memcpy(xml, head, sizeof(head) - 1);
        n += sizeof(head) - 1;
        for (int i = 0; i < 40; i++) {
            memcpy(xml + n, name, sizeof(name) - 1);
            n += sizeof(name) - 1;
        }
        memcpy(xml + n, tail, sizeof(tail));
        assert_int_equal(parse_str(xml, &kind, &c, err, sizeof(err)), SB_E_INVAL);
        j = json_string(err); /* NULL if the message were not valid UTF-8 */
        assert_non_null(j);
        json_decref(j);
        assert_non_null(strstr(err, "nested deeper than 8 elements"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),   cmocka_unit_test(test_bad_pushes),
        cmocka_unit_test(test_signatures), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
