/* Unit tests of the CSV reader used by sbctl load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "csv.h"
#include "sb/err.h"

#include <string.h>

static void test_quotes_crlf_and_empty(void **state)
{
    const char *in = "\xef\xbb\xbfid,name,note\r\n1,\"Wang, Fang\",\"said \"\"hi\"\"\"\r\n\r\n"
                     "2,,\"two\nlines\"\n3,last,";
    struct sb_csv c;
    struct sb_csv_row r;
    char err[128];
    (void)state;
    sb_csv_init(&c, in, strlen(in));
    assert_int_equal(sb_csv_next(&c, &r, err, sizeof(err)), 1);
    assert_int_equal(r.nfields, 3);
    assert_string_equal(r.fields[0], "id");
    sb_csv_row_clear(&r);
    assert_int_equal(sb_csv_next(&c, &r, err, sizeof(err)), 1);
    assert_int_equal(r.line, 2);
    assert_string_equal(r.fields[1], "Wang, Fang");
    assert_string_equal(r.fields[2], "said \"hi\"");
    sb_csv_row_clear(&r);
    assert_int_equal(sb_csv_next(&c, &r, err, sizeof(err)), 1);
    assert_int_equal(r.line, 4);
    assert_string_equal(r.fields[1], "");
    assert_string_equal(r.fields[2], "two\nlines");
    sb_csv_row_clear(&r);
    assert_int_equal(sb_csv_next(&c, &r, err, sizeof(err)), 1);
    assert_int_equal(r.line, 6);
    assert_int_equal(r.nfields, 3);
    assert_string_equal(r.fields[2], "");
    sb_csv_row_clear(&r);
    assert_int_equal(sb_csv_next(&c, &r, err, sizeof(err)), 0);
}

static void expect_error(const char *in, int code, const char *needle)
{
    struct sb_csv c;
    struct sb_csv_row r;
    char err[128] = "";
    int rc;
    sb_csv_init(&c, in, strlen(in));
    while ((rc = sb_csv_next(&c, &r, err, sizeof(err))) == 1)
        sb_csv_row_clear(&r);
    assert_int_equal(rc, code);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" should contain \"%s\"", err, needle);
}

static void test_errors(void **state)
{
    static char big[SB_CSV_MAX_FIELD + 16];
    (void)state;
    expect_error("a,b\n1,\"open\n", SB_E_INVAL, "line 2: unterminated");
    expect_error("a,b\n1,x\"y\n", SB_E_INVAL, "line 2: stray quote");
    expect_error("a,b\n1,\"x\"y\n", SB_E_INVAL, "line 2: text after");
    memset(big, 'x', sizeof(big) - 1);
    expect_error(big, SB_E_TOOBIG, "line 1: field longer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quotes_crlf_and_empty),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
