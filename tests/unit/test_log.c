/* Unit tests of the logger: one JSON object per line, levels, PII redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr redirected to a temporary file and returns what was written. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/sb-test-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    char *buf = calloc(1, 65536);
    FILE *f;
    assert_true(fd >= 0);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    f = fdopen(fd, "r");
    rewind(f);
    assert_true(fread(buf, 1, 65535, f) < 65535);
    fclose(f);
    unlink(path);
    return buf;
}

static void emit_pii(void)
{
    sb_log_kv(SB_LOG_INFO, "contact accepted", "channel", "chat", "customer_phone", "13812345678",
              "email", "a@b.cn", "Name", "张三", "ticket_id", "T-1", NULL);
}

static void test_pii_redacted(void **state)
{
    char *out;
    json_t *o;
    (void)state;
    sb_log_init("sb-test", SB_LOG_DEBUG);
    out = capture(emit_pii);
    assert_null(strstr(out, "13812345678"));
    assert_null(strstr(out, "a@b.cn"));
    o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "contact accepted");
    assert_string_equal(json_string_value(json_object_get(o, "program")), "sb-test");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "channel")), "chat");
    assert_string_equal(json_string_value(json_object_get(o, "ticket_id")), "T-1");
    assert_string_equal(json_string_value(json_object_get(o, "customer_phone")), "[redacted]");
    assert_string_equal(json_string_value(json_object_get(o, "Name")), "[redacted]");
    json_decref(o);
    free(out);
}

static void emit_levels(void)
{
    sb_log_set_level(SB_LOG_WARN);
    SB_INFO("hidden %d", 1);
    SB_WARN("shown %d", 2);
    sb_log_kv(SB_LOG_ERROR, "bad bytes", "detail", "\xff\xfe", NULL);
}

static void test_levels_and_lines(void **state)
{
    char *out;
    char *nl;
    json_t *o;
    (void)state;
    out = capture(emit_levels);
    assert_null(strstr(out, "hidden"));
    nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "shown 2");
    json_decref(o);
    o = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(o); /* invalid UTF-8 in a field still yields a valid JSON line */
    assert_string_equal(json_string_value(json_object_get(o, "level")), "error");
    json_decref(o);
    free(out);
}

static void test_pii_names(void **state)
{
    (void)state;
    assert_true(sb_log_field_is_pii("phone"));
    assert_true(sb_log_field_is_pii("wechat_openid"));
    assert_true(sb_log_field_is_pii("BODY"));
    assert_false(sb_log_field_is_pii("channel"));
    assert_false(sb_log_field_is_pii("topic"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pii_redacted),
        cmocka_unit_test(test_levels_and_lines),
        cmocka_unit_test(test_pii_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
