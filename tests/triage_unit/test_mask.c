/* Unit tests of personal-data masking (services/triage/mask.c): exact outputs and counts
 * on customer-style messages, output limits and invalid UTF-8, and the Luhn check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "extract.h"

#include <string.h>

struct mcase {
    const char *name;
    const char *in;
    const char *want;
    int count;
};

static const struct mcase CASES[] = {
    {"mobile_next_to_cjk", "手机13812345678请回电", "手机138****5678请回电", 1},
    {"mobile_plus86_spaced", "我的号码 +86 138 1234 5678，白天打",
     "我的号码 +86 138****5678，白天打", 1},
    {"mobile_86_dashed", "联系人电话86-139-8765-4321", "联系人电话86-139****4321", 1},
    {"mobile_plus86_joined", "call +8613612345678 after 6pm", "call +86136****5678 after 6pm", 1},
    {"mobile_dashed", "Reach me on 138-1234-5678 anytime", "Reach me on 138****5678 anytime", 1},
    {"mobile_0086", "tel:008613912345678", "tel:0086139****5678", 1},
    {"email_dotted", "Write to wang.lei@example.com please", "Write to w***@example.com please", 1},
    {"email_digits_local", "我的QQ邮箱123456789@qq.com收不到", "我的QQ邮箱1***@qq.com收不到", 1},
    {"email_trailing_dot", "Mail me: li_ming@163.com.", "Mail me: l***@163.com.", 1},
    {"not_an_email", "ping me at a@b or root@localhost", "ping me at a@b or root@localhost", 0},
    {"id_with_x", "身份证号11010519900307123X。", "身份证号110105********123X。", 1},
    {"id_lowercase_x", "ID 44030620010101002x ok", "ID 440306********002x ok", 1},
    {"id_implausible_date_stays", "编号110105199013071234", "编号110105199013071234", 0},
    {"card_spaced", "card 4111 1111 1111 1111 was charged", "card **** **** **** 1111 was charged",
     1},
    {"card_dashed", "卡号：4111-1111-1111-1111", "卡号：****-****-****-1111", 1},
    {"card_amex_joined", "Amex 378282246310005 declined", "Amex ***********0005 declined", 1},
    {"card_unionpay_19", "银行卡6222021234567890128扣款失败", "银行卡***************0128扣款失败",
     1},
    {"luhn_invalid_16_digit_order_stays", "订单号 4111111111111112 未发货",
     "订单号 4111111111111112 未发货", 0},
    {"luhn_valid_order_without_card_prefix_stays", "订单号2024052012345673",
     "订单号2024052012345673", 0},
    {"landline_area_code", "电话：010-12345678", "电话：***-****5678", 1},
    {"landline_mixed_separators", "座机 0755-8765 4321", "座机 ****-**** 4321", 1},
    {"landline_after_tel", "tel 87654321, or call me at 020 8888 6666",
     "tel ****4321, or call me at *** **** 6666", 2},
    {"area_code_without_cue", "打不通0755-87654321吗", "打不通****-****4321吗", 1},
    {"order_numbers_without_cue_stay", "order 12345678 and ref 87654321",
     "order 12345678 and ref 87654321", 0},
    {"hotline_stays", "我打了400-820-8820没人接", "我打了400-820-8820没人接", 0},
    {"international", "US +1 415-555-0100, UK +44 20 7946 0958",
     "US +1 ***-***-0100, UK +44 ** **** 0958", 2},
    {"longer_digit_runs_stay", "流水号213812345678与13812345678138",
     "流水号213812345678与13812345678138", 0},
    {"not_a_mobile_prefix", "code 12812345678", "code 12812345678", 0},
    {"dates_and_amounts_stay", "2024-05-20 14:00 付了1,299.50元", "2024-05-20 14:00 付了1,299.50元",
     0},
    {"many_values",
     "王先生 手机13812345678，邮箱wang@corp.cn，卡号6212 3456 7890 1232，身份证11010519900307123X，"
     "订单号20240520001",
     "王先生 手机138****5678，邮箱w***@corp.cn，卡号**** **** **** 1232，身份证110105********123X，"
     "订单号20240520001",
     4},
    {"email_after_masked_digits", "13812345678 abc@x.io", "138****5678 a***@x.io", 2},
    {"split_order_number_stays", "Order ID: 112-3456789-1234567 arrived damaged",
     "Order ID: 112-3456789-1234567 arrived damaged", 0},
    {"parenthesised_area_code", "please call me: (021) 5555 6666 or tel (415) 555-0100",
     "please call me: (***) **** 6666 or tel (***) ***-0100", 2},
    {"parenthesised_count_stays", "我有(12)个问题，编号(0755)", "我有(12)个问题，编号(0755)", 0},
    {"empty", "", "", 0},
};

#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

static void test_case(void **state)
{
    const struct mcase *c = *state;
    char out[512];
    int n;

    memset(out, 'Z', sizeof(out));
    n = sb_mask_text(c->in, strlen(c->in), out, sizeof(out));
    assert_string_equal(out, c->want);
    assert_int_equal(n, c->count);
}

/* The output is cut before a character that does not fit, and always NUL-terminated. */
static void test_truncated_on_character(void **state)
{
    const char *in = "abc中文def";
    char out[16];
    (void)state;
    memset(out, 'Z', sizeof(out));
    assert_int_equal(sb_mask_text(in, strlen(in), out, 6), 0);
    assert_string_equal(out, "abc"); /* "中" needs bytes 4-6 of 5 */
    assert_int_equal(sb_mask_text(in, strlen(in), out, 7), 0);
    assert_string_equal(out, "abc中");
    assert_int_equal(sb_mask_text(in, strlen(in), out, 1), 0);
    assert_string_equal(out, "");
}

/* A masked value cut by the limit never shows more than its masked form. */
static void test_truncated_inside_masked_value(void **state)
{
    const char *in = "手机13812345678";
    char out[16];
    (void)state;
    sb_mask_text(in, strlen(in), out, 11);
    assert_string_equal(out, "手机138"); /* "****" did not fit */
    sb_mask_text(in, strlen(in), out, 9);
    assert_string_equal(out, "手机"); /* nor did "138" */
}

static void test_zero_size_and_null(void **state)
{
    char out[4] = "xyz";
    (void)state;
    assert_int_equal(sb_mask_text("13812345678", 11, out, 0), 0);
    assert_string_equal(out, "xyz"); /* nothing written */
    assert_int_equal(sb_mask_text(NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* Invalid UTF-8 passes through unchanged, masking still works around it. */
static void test_invalid_utf8_passes(void **state)
{
    const char in[] = "\xff\xfe手机13812345678\x80 \xe4\xb8";
    char out[64];
    (void)state;
    assert_int_equal(sb_mask_text(in, sizeof(in) - 1, out, sizeof(out)), 1);
    assert_string_equal(out, "\xff\xfe手机138****5678\x80 \xe4\xb8");
}

/* len bounds the input: it need not be NUL-terminated. */
static void test_length_bounds_input(void **state)
{
    const char *in = "13812345678 and more";
    char out[64];
    (void)state;
    assert_int_equal(sb_mask_text(in, 11, out, sizeof(out)), 1);
    assert_string_equal(out, "138****5678");
    assert_int_equal(sb_mask_text(in, 10, out, sizeof(out)), 0);
    assert_string_equal(out, "1381234567");
}

static void test_luhn(void **state)
{
    (void)state;
    assert_int_equal(sb_luhn_valid("4111111111111111", 16), 1);
    assert_int_equal(sb_luhn_valid("4111111111111112", 16), 0);
    assert_int_equal(sb_luhn_valid("79927398713", 11), 1);
    assert_int_equal(sb_luhn_valid("6222021234567890128", 19), 1);
    assert_int_equal(sb_luhn_valid("0", 1), 1);
    assert_int_equal(sb_luhn_valid("", 0), 0);
    assert_int_equal(sb_luhn_valid("4111-1111", 9), 0);
    assert_int_equal(sb_luhn_valid(NULL, 0), 0);
}

int main(void)
{
    struct CMUnitTest tests[NCASES + 6];
    size_t n = 0;

    for (size_t i = 0; i < NCASES; i++) {
        struct CMUnitTest t = {CASES[i].name, test_case, NULL, NULL, (void *)&CASES[i]};
        tests[n++] = t;
    }
    {
        const struct CMUnitTest fixed[] = {
            cmocka_unit_test(test_truncated_on_character),
            cmocka_unit_test(test_truncated_inside_masked_value),
            cmocka_unit_test(test_zero_size_and_null),
            cmocka_unit_test(test_invalid_utf8_passes),
            cmocka_unit_test(test_length_bounds_input),
            cmocka_unit_test(test_luhn),
        };
        memcpy(tests + n, fixed, sizeof(fixed));
    }
    return cmocka_run_group_tests_name("triage_mask", tests, NULL, NULL);
}
