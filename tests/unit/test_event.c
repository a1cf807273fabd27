/* Unit tests of the event envelope: encode/decode round trip, validation of every
 * required field, RFC 3339 parsing and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *good =
    "{\"event_id\":\"01890a5d-ac96-774b-bcce-b302099a8057\",\"type\":\"contact.received\","
    "\"occurred_at\":\"2024-05-20T14:00:00.123Z\",\"producer\":\"sb-ingest/0.1.0\",\"schema\":1,"
    "\"ticket_id\":\"T-1\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
    "\"payload\":{\"channel\":\"chat\"}}";

static void test_round_trip(void **state)
{
    struct sb_event ev, back;
    char err[256];
    char *buf;
    size_t len;
    (void)state;
    assert_int_equal(sb_event_init(&ev, "ticket.triaged", "sb-triage/0.1.0", "T-42", NULL,
                                   json_pack("{s:s,s:i}", "band", "P2", "score", 6)),
                     0);
    buf = sb_event_encode(&ev, &len);
    assert_non_null(buf);
    assert_int_equal(sb_event_decode(buf, len, &back, err, sizeof(err)), 0);
    assert_string_equal(back.event_id, ev.event_id);
    assert_string_equal(back.type, "ticket.triaged");
    assert_string_equal(back.ticket_id, "T-42");
    assert_string_equal(back.trace_id, ev.trace_id);
    assert_int_equal(back.occurred_ms, ev.occurred_ms);
    assert_int_equal(back.schema, 1);
    assert_string_equal(json_string_value(json_object_get(back.payload, "band")), "P2");
    free(buf);
    sb_event_clear(&ev);
    sb_event_clear(&back);
}

static void test_decode_good(void **state)
{
    struct sb_event ev;
    char err[256];
    (void)state;
    assert_int_equal(sb_event_decode(good, strlen(good), &ev, err, sizeof(err)), 0);
    assert_int_equal(ev.occurred_ms, 1716213600123LL);
    assert_int_equal(sb_uuid7_time_ms(ev.event_id), 0x01890a5dac96LL);
    sb_event_clear(&ev);
}

/* Replaces the first occurrence of from by to in the good event and expects a
 * decode error that names field. */
static void expect_bad(const char *from, const char *to, const char *field)
{
    char buf[1024], err[256] = "";
    const char *p = strstr(good, from);
    struct sb_event ev;
    size_t pre;
    assert_non_null(p);
    pre = (size_t)(p - good);
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, good, to, p + strlen(from));
    assert_int_not_equal(sb_event_decode(buf, strlen(buf), &ev, err, sizeof(err)), 0);
    if (strstr(err, field) == NULL)
        fail_msg("error \"%s\" should name \"%s\"", err, field);
    sb_event_clear(&ev);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    expect_bad("\"event_id\":\"01890a5d-ac96-774b", "\"event_id\":\"01890a5d-ac96-474b",
               "event_id");
    expect_bad("\"event_id\":\"01890a5d-ac96-774b-bcce", "\"event_id\":\"01890a5d-ac96-774b-7cce",
               "event_id");
    expect_bad("\"event_id\":", "\"evnt_id\":", "evnt_id");
    expect_bad("\"type\":\"contact.received\"", "\"type\":\"Contact\"", "type");
    expect_bad("2024-05-20T14:00:00.123Z", "2024-05-20 14:00", "occurred_at");
    expect_bad("2024-05-20T14:00:00.123Z", "2023-02-29T14:00:00Z", "occurred_at");
    expect_bad("\"schema\":1", "\"schema\":\"1\"", "schema");
    expect_bad("\"schema\":1", "\"schema\":0", "schema");
    expect_bad("4bf92f3577b34da6a3ce929d0e0e4736", "4BF92F3577B34DA6A3CE929D0E0E4736", "trace_id");
    expect_bad("\"payload\":{\"channel\":\"chat\"}", "\"payload\":[1]", "payload");
    expect_bad("\"producer\":\"sb-ingest/0.1.0\",", "", "producer");
    expect_bad("\"schema\":1,", "\"schema\":1,\"extra\":true,", "extra");
    expect_bad("\"schema\":1,", "\"schema\":1,\"schema\":2,", "JSON");
    expect_bad("{\"event_id\"", "[{\"event_id\"", "JSON");
}

static void test_time_parse_and_format(void **state)
{
    int64_t ms;
    char out[SB_TIME_STRLEN + 1];
    (void)state;
    assert_int_equal(sb_time_parse("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(sb_time_parse("2024-05-20T22:00:00.5+08:00", &ms), 0);
    assert_int_equal(ms, 1716213600500LL);
    assert_int_equal(sb_time_parse("2024-02-29T23:59:59.999-01:30", &ms), 0);
    sb_time_format_ms(ms, out);
    assert_string_equal(out, "2024-03-01T01:29:59.999Z");
    assert_int_not_equal(sb_time_parse("2024-13-01T00:00:00Z", &ms), 0);
    assert_int_not_equal(sb_time_parse("2024-05-20T14:00:00", &ms), 0);
    assert_int_not_equal(sb_time_parse("2024-05-20T14:00:00Zjunk", &ms), 0);
    sb_time_format_ms(1716213600123LL, out);
    assert_string_equal(out, "2024-05-20T14:00:00.123Z");
}

static void test_init_rejects_bad_arguments(void **state)
{
    struct sb_event ev;
    (void)state;
    assert_int_not_equal(sb_event_init(&ev, "nodot", "p", NULL, NULL, NULL), 0);
    sb_event_clear(&ev);
    assert_int_not_equal(sb_event_init(&ev, "a.b", "p", NULL, "xyz", NULL), 0);
    sb_event_clear(&ev);
    assert_int_not_equal(sb_event_init(&ev, "a.b", "", NULL, NULL, NULL), 0);
    sb_event_clear(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_good),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_time_parse_and_format),
        cmocka_unit_test(test_init_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
