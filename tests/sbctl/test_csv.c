/* Unit tests of the CSV reader used by sbctl load (tools/sbctl/csv.c): quoted fields,
 * doubled quotes, CRLF and lone CR, empty fields, line breaks inside quotes, the byte
 * order mark, blank lines, and every error with the line it names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/csv.h"
#include "sb/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads all of in; returns the records' fields joined as "a|b|c\n" per record, with
 * "@N:" giving each record's line, e.g. "@1:a|b\n@2:c|d\n". */
static char *dump(const char *in, size_t len, int *rc_out, char *err, size_t errsz)
{
    struct sb_csv *c = sb_csv_new(in, len);
    struct sb_csv_row r;
    size_t cap = 4 * len + 64, n = 0;
    char *out = calloc(1, cap);
    int rc;

    assert_non_null(out);
    while ((rc = sb_csv_next(c, &r, err, errsz)) == 1) {
        n += (size_t)snprintf(out + n, cap - n, "@%d:", r.line);
        for (int i = 0; i < r.nfields; i++)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "|" : "", r.fields[i]);
        n += (size_t)snprintf(out + n, cap - n, "\n");
        sb_csv_row_clear(&r);
    }
    sb_csv_destroy(c);
    *rc_out = rc;
    return out;
}

static void expect_records(const char *in, const char *want)
{
    char err[128] = "";
    int rc;
    char *got = dump(in, strlen(in), &rc, err, sizeof(err));

    if (rc != 0)
        fail_msg("input %s: error %d \"%s\"", in, rc, err);
    assert_string_equal(got, want);
    free(got);
}

static void expect_error(const char *in, size_t len, int code, const char *needle)
{
    char err[128] = "";
    int rc;
    char *got = dump(in, len, &rc, err, sizeof(err));

    free(got);
    if (rc != code)
        fail_msg("expected code %d, got %d (\"%s\")", code, rc, err);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" should contain \"%s\"", err, needle);
}

static void test_plain_and_line_ends(void **state)
{
    (void)state;
    expect_records("a,b\n1,2\n", "@1:a|b\n@2:1|2\n");
    expect_records("a,b\r\n1,2\r\n", "@1:a|b\n@2:1|2\n");
    expect_records("a,b\r1,2\r", "@1:a|b\n@2:1|2\n");
    expect_records("a,b\n1,2", "@1:a|b\n@2:1|2\n"); /* no final line end */
    expect_records("", "");
    expect_records("\n\r\n\n", "");
}

static void test_quotes(void **state)
{
    (void)state;
    expect_records("\"Wang, Fang\",x\n", "@1:Wang, Fang|x\n");
    expect_records("\"said \"\"hi\"\"\",\"\"\"\"\n", "@1:said \"hi\"|\"\n");
    expect_records("\"\",x\n", "@1:|x\n");
    expect_records("a,\"two\nlines\",b\nc\n", "@1:a|two\nlines|b\n@3:c\n");
    expect_records("a,\"crlf\r\ninside\"\r\nz\r\n", "@1:a|crlf\r\ninside\n@3:z\n");
    expect_records("\"王芳\",\"李娜\"\n", "@1:王芳|李娜\n");
}

static void test_empty_fields_and_blank_lines(void **state)
{
    (void)state;
    expect_records("a,,c\n,,\n", "@1:a||c\n@2:||\n");
    expect_records("a,b,\n", "@1:a|b|\n");
    expect_records("h\n\n\nx\r\n\r\ny\n", "@1:h\n@4:x\n@6:y\n");
}

static void test_bom(void **state)
{
    (void)state;
    expect_records("\xef\xbb\xbfid,name\n1,x\n", "@1:id|name\n@2:1|x\n");
}

static void test_malformed(void **state)
{
    (void)state;
    expect_error("a,b\n1,\"open\n", 12, SB_E_INVAL, "line 2: unterminated quoted field");
    expect_error("a,b\n1,x\"y\n", 10, SB_E_INVAL, "line 2: stray quote");
    expect_error("a,b\n1,\"x\"y\n", 11, SB_E_INVAL, "line 2: text after a closing quote");
    expect_error("a,b\n1,\"x\" \n", 11, SB_E_INVAL, "line 2: text after a closing quote");
    expect_error("a,b\n1,x\0y\n", 10, SB_E_INVAL, "line 2: NUL byte");
    /* A quoted field spanning lines 2-3: the error names the line the record starts. */
    expect_error("h\n\"x\ny\"z\n", 9, SB_E_INVAL, "line 2: text after");
}

static void test_limits(void **state)
{
    static char big[SB_CSV_MAX_FIELD + 16];
    static char max[SB_CSV_MAX_FIELD + 4];
    static char many[3 * SB_CSV_MAX_FIELDS + 8];
    char err[128];
    size_t n = 0;
    int rc;
    char *got;
    (void)state;

    memset(big, 'x', SB_CSV_MAX_FIELD + 1); /* one byte too long */
    expect_error(big, strlen(big), SB_E_TOOBIG, "line 1: field longer than 4096 bytes");
    memset(big, 'x', SB_CSV_MAX_FIELD + 2); /* the limit applies inside quotes too */
    big[0] = '"';
    big[SB_CSV_MAX_FIELD + 2] = '"';
    expect_error(big, strlen(big), SB_E_TOOBIG, "line 1: field longer");

    memset(max, 'y', SB_CSV_MAX_FIELD); /* exactly at the limit is fine */
    got = dump(max, strlen(max), &rc, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(got), SB_CSV_MAX_FIELD + 4); /* "@1:" + field + "\n" */
    free(got);

    for (int i = 0; i <= SB_CSV_MAX_FIELDS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%s1", i ? "," : "");
    expect_error(many, n, SB_E_TOOBIG, "line 1: more than 64 fields");
}

static void test_sticky_error(void **state)
{
    const char *in = "a\n\"x\" y\nb\n";
    struct sb_csv *c = sb_csv_new(in, strlen(in));
    struct sb_csv_row r;
    char err[128];
    (void)state;

    assert_int_equal(sb_csv_next(c, &r, err, sizeof(err)), 1);
    sb_csv_row_clear(&r);
    assert_int_equal(sb_csv_next(c, &r, err, sizeof(err)), SB_E_INVAL);
    assert_int_equal(r.nfields, 0);
    assert_int_equal(r.line, 2);
    assert_int_equal(sb_csv_next(c, &r, err, sizeof(err)), SB_E_INVAL);
    assert_int_equal(r.nfields, 0);
    sb_csv_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_line_ends),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_empty_fields_and_blank_lines),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_sticky_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
