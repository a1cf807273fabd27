/* Unit tests of 5W1H extraction (services/triage/extract.c): one cmocka test per
 * customer message, each asserting every field exactly. The reference time of all
 * cases is 2024-05-21 10:00 at UTC+8 (a Tuesday). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "extract.h"

#include <stdio.h>
#include <string.h>

#define REF_MS 1716256800000LL /* 2024-05-21T02:00:00Z */
#define TZ 480

/* One message and everything that must come out of it; NULL strings mean "". */
struct xcase {
    const char *name;
    const char *text;
    int nfound;
    const char *order_no;
    double amount; /* < 0: no amount */
    const char *currency;
    const char *when;
    const char *when_words;
    const char *page;
    const char *os;
    const char *device;
    enum sb_outcome outcome;
    const char *error_text;
};

static const struct xcase CASES[] = {
    {"en_order_amount_time_refund",
     "Hi, my order #A20240518X7731 was charged $1,299.00 twice yesterday at 14:30. I want a "
     "refund.",
     4, "A20240518X7731", 1299.00, "USD", "2024-05-20T14", "yesterday at 14:30", NULL, NULL, NULL,
     SB_OUTCOME_REFUND, NULL},
    {"zh_order_amount_time_page_error_refund",
     "订单号：202405201234567，昨天下午2点在支付页面付款1299元，一直显示“支付失败，请稍后重试”"
     "，要求退款",
     6, "202405201234567", 1299, "CNY", "2024-05-20T14", "昨天下午2点", "支付页面", NULL, NULL,
     SB_OUTCOME_REFUND, "支付失败，请稍后重试"},
    {"en_page_device_os_quote",
     "Tried to pay on the checkout page from my iPhone 15 Pro on iOS 17.2 and it says 'account "
     "abnormal'",
     4, NULL, -1, NULL, NULL, NULL, "checkout page", "iOS 17.2", "iPhone 15 Pro", SB_OUTCOME_NONE,
     "account abnormal"},
    {"zh_device_os_code_guidance", "华为P60 鸿蒙4.0，登录页报错E1023，怎么办？", 5, NULL, -1, NULL,
     NULL, NULL, "登录页", "鸿蒙4.0", "华为P60", SB_OUTCOME_GUIDANCE, "E1023"},
    {"en_error_404_today_9am",
     "Samsung Galaxy S23, Android 14: error 404 on the login screen today 9am", 5, NULL, -1, NULL,
     "2024-05-21T09", "today 9am", "login screen", "Android 14", "Samsung Galaxy S23",
     SB_OUTCOME_NONE, "404"},
    {"zh_wan_yuan_apology", "前天买的小米14，花了3万元，给个说法", 4, NULL, 30000, "CNY",
     "2024-05-19", "前天", NULL, NULL, "小米14", SB_OUTCOME_APOLOGY, NULL},
    {"en_full_date_code_compensation",
     "On May 20, 2024 2:00 PM the app crashed with code 500. Please compensate me.", 3, NULL, -1,
     NULL, "2024-05-20T14", "May 20, 2024 2:00 PM", NULL, NULL, NULL, SB_OUTCOME_COMPENSATION,
     "500"},
    {"en_day_month_year_largest_amount", "20 May 2024 I was charged £12.5 and then €30", 2, NULL,
     30, "EUR", "2024-05-20", "20 May 2024", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"iso_utc_to_local", "2024-05-20T06:00:00Z payment failed", 1, NULL, -1, NULL, "2024-05-20T14",
     "2024-05-20T06:00:00Z", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"iso_space_range", "2024-05-20 14:00-15:00 一直登录不上", 1, NULL, -1, NULL, "2024-05-20T14",
     "2024-05-20 14:00", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"slash_date_bare_long_order", "2024/5/20 下的订单 1234567890123 还没发货", 2, "1234567890123",
     -1, NULL, "2024-05-20", "2024/5/20", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_full_date_clock_corner_quote", "2024年5月20日14:00 在购物车页面提示「库存不足」", 3, NULL,
     -1, NULL, "2024-05-20T14", "2024年5月20日14:00", "购物车页面", NULL, NULL, SB_OUTCOME_NONE,
     "库存不足"},
    {"zh_month_day_afternoon", "5月20日下午3点 个人中心打不开", 2, NULL, -1, NULL, "2024-05-20T15",
     "5月20日下午3点", "个人中心", NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_today_morning_error_code", "今天上午10点在订单详情页看不到物流信息，错误码 ERR_503", 3,
     NULL, -1, NULL, "2024-05-21T10", "今天上午10点", "订单详情页", NULL, NULL, SB_OUTCOME_NONE,
     "ERR_503"},
    {"en_this_morning_windows_pc", "This morning the client froze on my Windows 11 PC", 3, NULL, -1,
     NULL, "2024-05-21", "This morning", NULL, "Windows 11", "PC", SB_OUTCOME_NONE, NULL},
    {"en_last_night_rmb", "Last night around 11 I was charged RMB 300 and CNY 45.", 2, NULL, 300,
     "CNY", "2024-05-20T23", "Last night around 11", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_quote_popped_up_guidance",
     "Yesterday 2pm on my MacBook Pro (macOS 14.4) a \"Network error\" popped up, how do I fix it?",
     5, NULL, -1, NULL, "2024-05-20T14", "Yesterday 2pm", NULL, "macOS 14.4", "MacBook Pro",
     SB_OUTCOME_GUIDANCE, "Network error"},
    {"en_clock_before_day", "At 2pm yesterday I paid USD 45 for order 98765432", 3, "98765432", 45,
     "USD", "2024-05-20T14", "2pm yesterday", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_days_ago_exchange", "I ordered 3 days ago, can I exchange it for a bigger size?", 2, NULL,
     -1, NULL, "2024-05-18", "3 days ago", NULL, NULL, NULL, SB_OUTCOME_EXCHANGE, NULL},
    {"zh_numeral_days_ago_kuai", "三天前下单的，200块，想换货", 3, NULL, 200, "CNY", "2024-05-18",
     "三天前", NULL, NULL, NULL, SB_OUTCOME_EXCHANGE, NULL},
    {"zh_waybill_is_not_order", "快递单号SF1234567890123查不到，订单号是T20240519008", 1,
     "T20240519008", -1, NULL, NULL, NULL, NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_rhetorical_how_is_no_guidance", "昨晚8点下的单，单号 SO2024052001，怎么还没发货", 2,
     "SO2024052001", -1, NULL, "2024-05-20T20", "昨晚8点", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_phone_without_cue_is_no_order",
     "Please call me back at 13812345678 about the missing parcel", 0, NULL, -1, NULL, NULL, NULL,
     NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_bare_numbers_are_no_amount", "I bought 2 items for 45 and 3 more for 60", 0, NULL, -1,
     NULL, NULL, NULL, NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_verification_code_is_no_error", "The verification code 583920 never arrives on my Pixel 8",
     1, NULL, -1, NULL, NULL, NULL, NULL, NULL, "Pixel 8", SB_OUTCOME_NONE, NULL},
    {"en_code_before_error", "Got a 502 error twice on the payment page, Win10 + Chrome", 3, NULL,
     -1, NULL, NULL, NULL, "payment page", "Win10", NULL, SB_OUTCOME_NONE, "502"},
    {"zh_wan_duo_yuan", "付款时显示\"余额不足\"，但卡里明明有1万多元", 2, NULL, 10000, "CNY", NULL,
     NULL, NULL, NULL, NULL, SB_OUTCOME_NONE, "余额不足"},
    {"zh_early_morning_compensation", "昨天凌晨2点被扣了99元，要求赔偿", 3, NULL, 99, "CNY",
     "2024-05-20T02", "昨天凌晨2点", NULL, NULL, NULL, SB_OUTCOME_COMPENSATION, NULL},
    {"zh_midnight_is_next_day", "前天晚上12点下的单", 1, NULL, -1, NULL, "2024-05-20T00",
     "前天晚上12点", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_last_night_after_midnight", "Last night at 1am I got locked out of my account", 1, NULL,
     -1, NULL, "2024-05-21T01", "Last night at 1am", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_numeral_date_page_quote", "五月二十日晚上九点，会员中心页面显示“系统繁忙”", 3, NULL, -1,
     NULL, "2024-05-20T21", "五月二十日晚上九点", "会员中心页面", NULL, NULL, SB_OUTCOME_NONE,
     "系统繁忙"},
    {"zh_month_day_last_year", "12月25日买的耳机坏了", 1, NULL, -1, NULL, "2023-12-25", "12月25日",
     NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_outcome_priority", "不要道歉也不用换货，直接退款并赔偿", 1, NULL, -1, NULL, NULL, NULL,
     NULL, NULL, NULL, SB_OUTCOME_REFUND, NULL},
    {"en_outcome_priority", "Please replace it, and I expect an apology.", 1, NULL, -1, NULL, NULL,
     NULL, NULL, NULL, NULL, SB_OUTCOME_EXCHANGE, NULL},
    {"en_order_number_and_month_day", "Order number: 7730012345. Bought on May 3, still nothing.",
     2, "7730012345", -1, NULL, "2024-05-03", "May 3", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_decimal_yuan_and_yen_sign", "麻烦退款1,299.50元，不是￥88", 2, NULL, 1299.5, "CNY", NULL,
     NULL, NULL, NULL, NULL, SB_OUTCOME_REFUND, NULL},
    {"en_dollars_word", "200 dollars were taken from my card and nobody answers", 1, NULL, 200,
     "USD", NULL, NULL, NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_harmonyos_mate", "HarmonyOS 4 on a Huawei Mate 60 Pro keeps logging me out", 2, NULL, -1,
     NULL, NULL, NULL, NULL, "HarmonyOS 4", "Huawei Mate 60 Pro", SB_OUTCOME_NONE, NULL},
    {"zh_generic_phone_is_no_device", "手机一直闪退，安卓14", 1, NULL, -1, NULL, NULL, NULL, NULL,
     "安卓14", NULL, SB_OUTCOME_NONE, NULL},
    {"zh_dashed_order_this_morning", "订单号ORD-2024-05-0098，今早9点下的单，金额￥88", 3,
     "ORD-2024-05-0098", 88, "CNY", "2024-05-21T09", "今早9点", NULL, NULL, NULL, SB_OUTCOME_NONE,
     NULL},
    {"en_order_date_is_no_order", "I placed an order on 2024-05-02 and got charged twice", 1, NULL,
     -1, NULL, "2024-05-02", "2024-05-02", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"zh_cart_laptop_book_quote", "用联想笔记本电脑在购物车里结算，弹出『订单已失效』", 3, NULL, -1,
     NULL, NULL, NULL, "购物车", NULL, "联想", SB_OUTCOME_NONE, "订单已失效"},
    {"en_us_month_day_after_on", "On 5/20 I was billed twice, $19.99 each", 2, NULL, 19.99, "USD",
     "2024-05-20", "5/20", NULL, NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_24_7_is_no_date", "Your 24/7 support never picks up", 0, NULL, -1, NULL, NULL, NULL, NULL,
     NULL, NULL, SB_OUTCOME_NONE, NULL},
    {"en_slashed_date_with_year_and_clock", "Charged again 3/14/2024 at 9pm, need my money back", 2,
     NULL, -1, NULL, "2024-03-14T21", "3/14/2024 at 9pm", NULL, NULL, NULL, SB_OUTCOME_REFUND,
     NULL},
    {"en_apostrophes_are_no_quotes",
     "Bought it at MACY 'S with my store card, now the app says 'Payment declined' again", 1, NULL,
     -1, NULL, NULL, NULL, NULL, NULL, NULL, SB_OUTCOME_NONE, "Payment declined"},
    {"en_dashed_order_id", "Order ID: 112-3456789-1234567 arrived damaged, I'd like a replacement",
     2, "112-3456789-1234567", -1, NULL, NULL, NULL, NULL, NULL, NULL, SB_OUTCOME_EXCHANGE, NULL},
};

#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

static void expect_str(const char *field, const char *got, const char *want)
{
    if (strcmp(got, want != NULL ? want : "") != 0)
        print_error("field %s\n", field);
    assert_string_equal(got, want != NULL ? want : "");
}

static void test_case(void **state)
{
    const struct xcase *c = *state;
    struct sb_extract x;
    int n = sb_extract_text(c->text, strlen(c->text), REF_MS, TZ, &x);

    expect_str("order_no", x.order_no, c->order_no);
    if (c->amount < 0) {
        assert_int_equal(x.has_amount, 0);
        expect_str("currency", x.currency, NULL);
    } else {
        assert_int_equal(x.has_amount, 1);
        assert_true(x.amount > c->amount - 0.001 && x.amount < c->amount + 0.001);
        expect_str("currency", x.currency, c->currency);
    }
    expect_str("when", x.when, c->when);
    expect_str("when_words", x.when_words, c->when_words);
    expect_str("page", x.page, c->page);
    expect_str("os", x.os, c->os);
    expect_str("device", x.device, c->device);
    expect_str("outcome", sb_outcome_name(x.outcome), sb_outcome_name(c->outcome));
    expect_str("error_text", x.error_text, c->error_text);
    assert_int_equal(n, c->nfound);
}

static void test_empty_and_null(void **state)
{
    struct sb_extract x;
    (void)state;
    memset(&x, 0x55, sizeof(x));
    assert_int_equal(sb_extract_text("", 0, REF_MS, TZ, &x), 0);
    assert_string_equal(x.order_no, "");
    assert_int_equal(x.has_amount, 0);
    assert_string_equal(x.when, "");
    assert_int_equal(x.outcome, SB_OUTCOME_NONE);
    assert_int_equal(sb_extract_text(NULL, 0, REF_MS, TZ, &x), 0);
}

/* len bounds the text: nothing past it is read (the rest here would change the order). */
static void test_length_bounds_text(void **state)
{
    const char *text = "order 9876543210 and more";
    struct sb_extract x;
    (void)state;
    assert_int_equal(sb_extract_text(text, strlen("order 9876543"), REF_MS, TZ, &x), 1);
    assert_string_equal(x.order_no, "9876543");
}

/* A quoted error longer than the field is cut before a character, never inside. */
static void test_long_error_cut_on_character(void **state)
{
    char text[512], want[128];
    struct sb_extract x;
    size_t n = 0;
    (void)state;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "提示“");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "错");
    snprintf(text + n, sizeof(text) - n, "”");
    want[0] = '\0';
    for (int i = 0; i < 42; i++) /* 42 × 3 bytes = 126 ≤ 127 */
        strcat(want, "错");
    sb_extract_text(text, strlen(text), REF_MS, TZ, &x);
    assert_int_equal(strlen(x.error_text), 126);
    assert_string_equal(x.error_text, want);
}

/* Invalid UTF-8 does not derail the scan or split a character. */
static void test_invalid_utf8(void **state)
{
    const char *text = "\xff\xfe订单号 123456789\x80 要求退款 \xe4\xb8";
    struct sb_extract x;
    (void)state;
    assert_int_equal(sb_extract_text(text, strlen(text), REF_MS, TZ, &x), 2);
    assert_string_equal(x.order_no, "123456789");
    assert_int_equal(x.outcome, SB_OUTCOME_REFUND);
}

/* Without a year, a date still to come this year is last year's. */
static void test_relative_to_reference_day(void **state)
{
    struct sb_extract x;
    (void)state;
    /* 2024-03-01 00:30 at UTC+8 is still 2024-02-29 in UTC */
    sb_extract_text("昨天", strlen("昨天"), 1709224200000LL, 480, &x);
    assert_string_equal(x.when, "2024-02-29");
    sb_extract_text("昨天", strlen("昨天"), 1709224200000LL, 0, &x);
    assert_string_equal(x.when, "2024-02-28");
    sb_extract_text("2月29日", strlen("2月29日"), REF_MS, TZ, &x);
    assert_string_equal(x.when, "2024-02-29");
    sb_extract_text("2月30日", strlen("2月30日"), REF_MS, TZ, &x);
    assert_string_equal(x.when, ""); /* no such day: nothing invented */
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(sb_outcome_name(SB_OUTCOME_NONE), "");
    assert_string_equal(sb_outcome_name(SB_OUTCOME_REFUND), "refund");
    assert_string_equal(sb_outcome_name(SB_OUTCOME_EXCHANGE), "exchange");
    assert_string_equal(sb_outcome_name(SB_OUTCOME_GUIDANCE), "guidance");
    assert_string_equal(sb_outcome_name(SB_OUTCOME_APOLOGY), "apology");
    assert_string_equal(sb_outcome_name(SB_OUTCOME_COMPENSATION), "compensation");
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
            cmocka_unit_test(test_empty_and_null),
            cmocka_unit_test(test_length_bounds_text),
            cmocka_unit_test(test_long_error_cut_on_character),
            cmocka_unit_test(test_invalid_utf8),
            cmocka_unit_test(test_relative_to_reference_day),
            cmocka_unit_test(test_outcome_names),
        };
        memcpy(tests + n, fixed, sizeof(fixed));
    }
    return cmocka_run_group_tests_name("triage_extract", tests, NULL, NULL);
}
