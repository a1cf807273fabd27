/* 5W1H extraction from a customer's own words (SPEC.md §1, "Registration uses 5W1H"):
 * the order number, the largest amount quoted, when the problem happened, where (app
 * page, OS, device), the outcome wanted and the error text shown.
 *
 * One left-to-right pass over the UTF-8 bytes. A small keyword lexicon, chained on a
 * hash of its first two bytes, says which handler to try at each character start;
 * numbers, dates, clocks and quotes have hand-written scanners. No regex and no heap:
 * a 1 KB message costs a few microseconds. What is not said stays empty. Pure logic. */
#include "extract.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "sb/util.h"

/* ---- bytes ------------------------------------------------------------------------ */

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_upper(int c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_alpha(int c)
{
    return is_upper(c) || (c >= 'a' && c <= 'z');
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int lower(int c)
{
    return is_upper(c) ? c + ('a' - 'A') : c;
}

/* ---- the lexicon ------------------------------------------------------------------ */

enum kind {
    K_ORDER,   /* order-number cue */
    K_OUTCOME, /* arg: enum sb_outcome */
    K_PAGE,    /* app page or screen */
    K_OS,      /* arg 1: Windows, whose versions are checked */
    K_DEVICE,  /* brand or model word */
    K_QCUE,    /* a quoted error text may follow: "error", "提示", "says" */
    K_CCUE,    /* an error code may follow: arg 1 "error"/"错误" (also "404 error"), 2 "code" */
    K_RELDAY,  /* arg: days before the reference | period << 4 */
    K_PERIOD,  /* part of the day; arg: enum period */
    K_MONTH,   /* English month name; arg: 1-12 */
};

#define F_CASE 1  /* compared case-sensitively ("May", not the verb) */
#define F_STEM 2  /* more letters may follow ("refunded", "apologize") */
#define F_NEED 4  /* page: needs "page"/"页面"; OS: a version; device: a model */
#define F_SHIP 8  /* not after 快递/运/物流: that is a waybill number */
#define F_RHET 16 /* not in a complaint: "怎么还没到" asks why, not how */

enum period { P_NONE, P_AM, P_PM, P_NIGHT, P_EARLY, P_NOON };

struct lex {
    const char *w; /* lowercase unless F_CASE */
    unsigned char kind, arg, flags;
};

#define REL(days, period) (unsigned char)((days) | ((period) << 4))

static const struct lex LEX[] = {
    /* order-number cues; "number", "no.", "#", "：" and the like are skipped after them */
    {"order", K_ORDER, 0, 0},
    {"purchase", K_ORDER, 0, 0},
    {"订单号", K_ORDER, 0, 0},
    {"订单编号", K_ORDER, 0, 0},
    {"订单", K_ORDER, 0, 0},
    {"单号", K_ORDER, 0, F_SHIP},
    /* outcomes */
    {"refund", K_OUTCOME, SB_OUTCOME_REFUND, F_STEM},
    {"money back", K_OUTCOME, SB_OUTCOME_REFUND, 0},
    {"reimburse", K_OUTCOME, SB_OUTCOME_REFUND, F_STEM},
    {"退款", K_OUTCOME, SB_OUTCOME_REFUND, 0},
    {"退钱", K_OUTCOME, SB_OUTCOME_REFUND, 0},
    {"退费", K_OUTCOME, SB_OUTCOME_REFUND, 0},
    {"exchange", K_OUTCOME, SB_OUTCOME_EXCHANGE, F_STEM},
    {"replace", K_OUTCOME, SB_OUTCOME_EXCHANGE, F_STEM},
    {"换货", K_OUTCOME, SB_OUTCOME_EXCHANGE, 0},
    {"调换", K_OUTCOME, SB_OUTCOME_EXCHANGE, 0},
    {"换一个", K_OUTCOME, SB_OUTCOME_EXCHANGE, 0},
    {"换个新的", K_OUTCOME, SB_OUTCOME_EXCHANGE, 0},
    {"换新", K_OUTCOME, SB_OUTCOME_EXCHANGE, 0},
    {"compensat", K_OUTCOME, SB_OUTCOME_COMPENSATION, F_STEM},
    {"赔偿", K_OUTCOME, SB_OUTCOME_COMPENSATION, 0},
    {"补偿", K_OUTCOME, SB_OUTCOME_COMPENSATION, 0},
    {"赔付", K_OUTCOME, SB_OUTCOME_COMPENSATION, 0},
    {"apolog", K_OUTCOME, SB_OUTCOME_APOLOGY, F_STEM},
    {"道歉", K_OUTCOME, SB_OUTCOME_APOLOGY, 0},
    {"赔礼", K_OUTCOME, SB_OUTCOME_APOLOGY, 0},
    {"个说法", K_OUTCOME, SB_OUTCOME_APOLOGY, 0},
    {"how do i", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"how can i", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"how should i", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"how to", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"guide", K_OUTCOME, SB_OUTCOME_GUIDANCE, F_STEM},
    {"instruction", K_OUTCOME, SB_OUTCOME_GUIDANCE, F_STEM},
    {"tutorial", K_OUTCOME, SB_OUTCOME_GUIDANCE, F_STEM},
    {"怎么", K_OUTCOME, SB_OUTCOME_GUIDANCE, F_RHET},
    {"如何", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"教我", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"教一下", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    {"指导", K_OUTCOME, SB_OUTCOME_GUIDANCE, 0},
    /* pages: heads that need a "page"/"页面" after them, then whole names */
    {"checkout", K_PAGE, 0, F_NEED},
    {"check-out", K_PAGE, 0, F_NEED},
    {"login", K_PAGE, 0, F_NEED},
    {"log-in", K_PAGE, 0, F_NEED},
    {"log in", K_PAGE, 0, F_NEED},
    {"sign-in", K_PAGE, 0, F_NEED},
    {"sign in", K_PAGE, 0, F_NEED},
    {"signin", K_PAGE, 0, F_NEED},
    {"sign-up", K_PAGE, 0, F_NEED},
    {"sign up", K_PAGE, 0, F_NEED},
    {"signup", K_PAGE, 0, F_NEED},
    {"registration", K_PAGE, 0, F_NEED},
    {"payment", K_PAGE, 0, F_NEED},
    {"pay", K_PAGE, 0, F_NEED},
    {"cart", K_PAGE, 0, F_NEED},
    {"order", K_PAGE, 0, F_NEED},
    {"orders", K_PAGE, 0, F_NEED},
    {"order details", K_PAGE, 0, F_NEED},
    {"order detail", K_PAGE, 0, F_NEED},
    {"order history", K_PAGE, 0, F_NEED},
    {"order confirmation", K_PAGE, 0, F_NEED},
    {"product", K_PAGE, 0, F_NEED},
    {"product details", K_PAGE, 0, F_NEED},
    {"home", K_PAGE, 0, F_NEED},
    {"settings", K_PAGE, 0, F_NEED},
    {"profile", K_PAGE, 0, F_NEED},
    {"account", K_PAGE, 0, F_NEED},
    {"search", K_PAGE, 0, F_NEED},
    {"refund", K_PAGE, 0, F_NEED},
    {"returns", K_PAGE, 0, F_NEED},
    {"billing", K_PAGE, 0, F_NEED},
    {"shipping", K_PAGE, 0, F_NEED},
    {"tracking", K_PAGE, 0, F_NEED},
    {"coupon", K_PAGE, 0, F_NEED},
    {"wallet", K_PAGE, 0, F_NEED},
    {"address", K_PAGE, 0, F_NEED},
    {"subscription", K_PAGE, 0, F_NEED},
    {"membership", K_PAGE, 0, F_NEED},
    {"password reset", K_PAGE, 0, F_NEED},
    {"reset password", K_PAGE, 0, F_NEED},
    {"verification", K_PAGE, 0, F_NEED},
    {"shopping cart", K_PAGE, 0, 0},
    {"homepage", K_PAGE, 0, 0},
    {"支付", K_PAGE, 0, F_NEED},
    {"付款", K_PAGE, 0, F_NEED},
    {"登录", K_PAGE, 0, F_NEED},
    {"登陆", K_PAGE, 0, F_NEED},
    {"注册", K_PAGE, 0, F_NEED},
    {"结算", K_PAGE, 0, F_NEED},
    {"订单", K_PAGE, 0, F_NEED},
    {"订单详情", K_PAGE, 0, F_NEED},
    {"商品", K_PAGE, 0, F_NEED},
    {"商品详情", K_PAGE, 0, F_NEED},
    {"详情", K_PAGE, 0, F_NEED},
    {"设置", K_PAGE, 0, F_NEED},
    {"退款", K_PAGE, 0, F_NEED},
    {"售后", K_PAGE, 0, F_NEED},
    {"地址", K_PAGE, 0, F_NEED},
    {"收货地址", K_PAGE, 0, F_NEED},
    {"优惠券", K_PAGE, 0, F_NEED},
    {"会员", K_PAGE, 0, F_NEED},
    {"钱包", K_PAGE, 0, F_NEED},
    {"搜索", K_PAGE, 0, F_NEED},
    {"充值", K_PAGE, 0, F_NEED},
    {"提现", K_PAGE, 0, F_NEED},
    {"确认订单", K_PAGE, 0, F_NEED},
    {"个人信息", K_PAGE, 0, F_NEED},
    {"物流", K_PAGE, 0, F_NEED},
    {"活动", K_PAGE, 0, F_NEED},
    {"购物车", K_PAGE, 0, 0},
    {"个人中心", K_PAGE, 0, 0},
    {"会员中心", K_PAGE, 0, 0},
    {"我的订单", K_PAGE, 0, 0},
    {"订单列表", K_PAGE, 0, 0},
    {"收银台", K_PAGE, 0, 0},
    {"首页", K_PAGE, 0, 0},
    {"主页", K_PAGE, 0, 0},
    /* operating systems */
    {"ios", K_OS, 0, 0},
    {"ipados", K_OS, 0, 0},
    {"android", K_OS, 0, 0},
    {"安卓", K_OS, 0, 0},
    {"windows", K_OS, 1, 0},
    {"win", K_OS, 1, F_NEED},
    {"macos", K_OS, 0, 0},
    {"mac os", K_OS, 0, 0},
    {"harmonyos", K_OS, 0, 0},
    {"harmony os", K_OS, 0, 0},
    {"鸿蒙", K_OS, 0, 0},
    {"linux", K_OS, 0, 0},
    {"chromeos", K_OS, 0, 0},
    /* devices: brands and product lines, never the generic 手机 */
    {"iphone", K_DEVICE, 0, 0},
    {"ipad", K_DEVICE, 0, 0},
    {"macbook", K_DEVICE, 0, 0},
    {"imac", K_DEVICE, 0, 0},
    {"airpods", K_DEVICE, 0, 0},
    {"apple watch", K_DEVICE, 0, 0},
    {"huawei", K_DEVICE, 0, 0},
    {"华为", K_DEVICE, 0, 0},
    {"honor", K_DEVICE, 0, F_NEED},
    {"荣耀", K_DEVICE, 0, 0},
    {"xiaomi", K_DEVICE, 0, 0},
    {"小米", K_DEVICE, 0, 0},
    {"redmi", K_DEVICE, 0, 0},
    {"红米", K_DEVICE, 0, 0},
    {"oppo", K_DEVICE, 0, 0},
    {"vivo", K_DEVICE, 0, 0},
    {"oneplus", K_DEVICE, 0, 0},
    {"一加", K_DEVICE, 0, F_NEED},
    {"realme", K_DEVICE, 0, 0},
    {"samsung", K_DEVICE, 0, 0},
    {"三星", K_DEVICE, 0, 0},
    {"galaxy", K_DEVICE, 0, F_NEED},
    {"google pixel", K_DEVICE, 0, 0},
    {"pixel", K_DEVICE, 0, F_NEED},
    {"lenovo", K_DEVICE, 0, 0},
    {"联想", K_DEVICE, 0, 0},
    {"thinkpad", K_DEVICE, 0, 0},
    {"dell", K_DEVICE, 0, 0},
    {"surface", K_DEVICE, 0, F_NEED},
    {"pc", K_DEVICE, 0, 0},
    {"laptop", K_DEVICE, 0, 0},
    {"电脑", K_DEVICE, 0, 0},
    {"笔记本电脑", K_DEVICE, 0, 0},
    {"平板电脑", K_DEVICE, 0, 0},
    /* error cues */
    {"error", K_QCUE, 0, F_STEM},
    {"错误", K_QCUE, 0, 0},
    {"提示", K_QCUE, 0, 0},
    {"显示", K_QCUE, 0, 0},
    {"报错", K_QCUE, 0, 0},
    {"弹出", K_QCUE, 0, 0},
    {"弹窗", K_QCUE, 0, 0},
    {"写着", K_QCUE, 0, 0},
    {"警告", K_QCUE, 0, 0},
    {"says", K_QCUE, 0, 0},
    {"message", K_QCUE, 0, F_STEM},
    {"shows", K_QCUE, 0, 0},
    {"showed", K_QCUE, 0, 0},
    {"showing", K_QCUE, 0, 0},
    {"popped up", K_QCUE, 0, 0},
    {"pops up", K_QCUE, 0, 0},
    {"pop-up", K_QCUE, 0, 0},
    {"popup", K_QCUE, 0, 0},
    {"alert", K_QCUE, 0, 0},
    {"warning", K_QCUE, 0, 0},
    {"error", K_CCUE, 1, 0},
    {"error code", K_CCUE, 0, 0},
    {"code", K_CCUE, 2, 0},
    {"http", K_CCUE, 0, 0},
    {"status", K_CCUE, 0, 0},
    {"错误", K_CCUE, 1, 0},
    {"错误码", K_CCUE, 0, 0},
    {"错误代码", K_CCUE, 0, 0},
    {"报错", K_CCUE, 0, 0},
    {"状态码", K_CCUE, 0, 0},
    {"故障码", K_CCUE, 0, 0},
    /* days relative to the reference time */
    {"今天", K_RELDAY, REL(0, P_NONE), 0},
    {"今日", K_RELDAY, REL(0, P_NONE), 0},
    {"今早", K_RELDAY, REL(0, P_AM), 0},
    {"今晨", K_RELDAY, REL(0, P_AM), 0},
    {"今晚", K_RELDAY, REL(0, P_NIGHT), 0},
    {"昨天", K_RELDAY, REL(1, P_NONE), 0},
    {"昨日", K_RELDAY, REL(1, P_NONE), 0},
    {"昨晚", K_RELDAY, REL(1, P_NIGHT), 0},
    {"昨夜", K_RELDAY, REL(1, P_NIGHT), 0},
    {"前天", K_RELDAY, REL(2, P_NONE), 0},
    {"前晚", K_RELDAY, REL(2, P_NIGHT), 0},
    {"大前天", K_RELDAY, REL(3, P_NONE), 0},
    {"today", K_RELDAY, REL(0, P_NONE), 0},
    {"tonight", K_RELDAY, REL(0, P_NIGHT), 0},
    {"this morning", K_RELDAY, REL(0, P_AM), 0},
    {"this afternoon", K_RELDAY, REL(0, P_PM), 0},
    {"this evening", K_RELDAY, REL(0, P_PM), 0},
    {"yesterday", K_RELDAY, REL(1, P_NONE), 0},
    {"last night", K_RELDAY, REL(1, P_NIGHT), 0},
    {"day before yesterday", K_RELDAY, REL(2, P_NONE), 0},
    {"the day before yesterday", K_RELDAY, REL(2, P_NONE), 0},
    /* parts of the day */
    {"凌晨", K_PERIOD, P_EARLY, 0},
    {"早上", K_PERIOD, P_AM, 0},
    {"早晨", K_PERIOD, P_AM, 0},
    {"清晨", K_PERIOD, P_AM, 0},
    {"上午", K_PERIOD, P_AM, 0},
    {"中午", K_PERIOD, P_NOON, 0},
    {"下午", K_PERIOD, P_PM, 0},
    {"傍晚", K_PERIOD, P_PM, 0},
    {"晚上", K_PERIOD, P_NIGHT, 0},
    {"夜里", K_PERIOD, P_NIGHT, 0},
    {"半夜", K_PERIOD, P_NIGHT, 0},
    {"深夜", K_PERIOD, P_NIGHT, 0},
    {"morning", K_PERIOD, P_AM, 0},
    {"in the morning", K_PERIOD, P_AM, 0},
    {"afternoon", K_PERIOD, P_PM, 0},
    {"in the afternoon", K_PERIOD, P_PM, 0},
    {"evening", K_PERIOD, P_PM, 0},
    {"in the evening", K_PERIOD, P_PM, 0},
    {"night", K_PERIOD, P_NIGHT, 0},
    {"at night", K_PERIOD, P_NIGHT, 0},
    /* English months */
    {"january", K_MONTH, 1, 0},
    {"jan", K_MONTH, 1, 0},
    {"february", K_MONTH, 2, 0},
    {"feb", K_MONTH, 2, 0},
    {"march", K_MONTH, 3, 0},
    {"mar", K_MONTH, 3, 0},
    {"april", K_MONTH, 4, 0},
    {"apr", K_MONTH, 4, 0},
    {"May", K_MONTH, 5, F_CASE},
    {"june", K_MONTH, 6, 0},
    {"jun", K_MONTH, 6, 0},
    {"july", K_MONTH, 7, 0},
    {"jul", K_MONTH, 7, 0},
    {"august", K_MONTH, 8, 0},
    {"aug", K_MONTH, 8, 0},
    {"september", K_MONTH, 9, 0},
    {"sept", K_MONTH, 9, 0},
    {"sep", K_MONTH, 9, 0},
    {"october", K_MONTH, 10, 0},
    {"oct", K_MONTH, 10, 0},
    {"november", K_MONTH, 11, 0},
    {"nov", K_MONTH, 11, 0},
    {"december", K_MONTH, 12, 0},
    {"dec", K_MONTH, 12, 0},
};

#define NLEX (sizeof(LEX) / sizeof(LEX[0]))
#define NBUCKET_BITS 12
#define NBUCKET (1u << NBUCKET_BITS)
#define MAXHITS 8

/* ---- the scan --------------------------------------------------------------------- */

struct scan {
    const unsigned char *s;
    size_t n;
    struct sb_extract *out;
    int64_t ref_days; /* local calendar day of the reference time */
    int ref_y, ref_m, ref_d;
    int tz_min;
    size_t ord_b, ord_e; /* spans whose digits are no amount, time or error code */
    size_t dev_b, dev_e;
    size_t os_b, os_e;
    size_t last_qcue; /* end of the last error cue seen, 0: none */
    size_t qskip;     /* quotes before this offset were already paired */
    int errcue_seen;
    int err_kind; /* 0: none, 1: a code, 2: quoted text (wins) */
    unsigned outcomes;
};

static int at(const struct scan *sc, size_t p)
{
    return p < sc->n ? sc->s[p] : -1;
}

static int prev_byte(const struct scan *sc, size_t p)
{
    return p > 0 && p <= sc->n ? sc->s[p - 1] : -1;
}

static int in_span(size_t p, size_t b, size_t e)
{
    return p >= b && p < e;
}

static unsigned char lc[256]; /* ASCII lowercase of each byte, built with the index */

/* The bucket of a word starting at s (3 bytes readable): its first three letters, or
 * its first CJK character whole (CJK characters share their first two bytes by 64s). */
static unsigned bucket(const unsigned char *s)
{
    /* Fibonacci hashing of the three bytes (Knuth, TAOCP vol. 3, 6.4) */
    uint32_t k = (uint32_t)lc[s[0]] | (uint32_t)lc[s[1]] << 8 | (uint32_t)lc[s[2]] << 16;
    return (unsigned)((k * 2654435761u) >> (32 - NBUCKET_BITS));
}

/* Up to 4 bytes at s (n available), ASCII lowercased, packed little end first. */
static uint32_t key4(const unsigned char *s, size_t n)
{
    uint32_t k = 0;

    if (n >= 4)
        return (uint32_t)lc[s[0]] | (uint32_t)lc[s[1]] << 8 | (uint32_t)lc[s[2]] << 16 |
               (uint32_t)lc[s[3]] << 24;
    for (size_t i = 0; i < n; i++)
        k |= (uint32_t)lc[s[i]] << (8 * i);
    return k;
}

/* The lexicon's hash chains, built once: 1 + index of an entry, 0 ends a chain. Each
 * entry's first 4 bytes (and the mask of those it has) reject most chain entries in
 * one comparison. */
static uint16_t lex_head[NBUCKET];
static uint16_t lex_short; /* words of 2 bytes ("pc") have a chain of their own */
static uint16_t lex_next[NLEX];
static uint32_t lex_key[NLEX];
static uint32_t lex_kmask[NLEX];
static pthread_once_t lex_once = PTHREAD_ONCE_INIT;

/* Byte classes for the main loop. */
#define B_ALPHA 1
#define B_DIGIT 2
#define B_START 4    /* may start something: letter, digit, quote, multi-byte lead */
#define B_CURRENCY 8 /* first byte of a currency written after an amount */
#define B_CURLAST 16 /* last byte of a currency written before an amount */
static unsigned char byte_class[256];

static void mark_currency_bytes(void);

static void lex_build(void)
{
    for (int c = 0; c < 256; c++) {
        lc[c] = (unsigned char)lower(c);
        byte_class[c] = (unsigned char)((is_alpha(c) ? B_ALPHA | B_START : 0) |
                                        (is_digit(c) ? B_DIGIT | B_START : 0) |
                                        (c == '"' || c == '\'' || c >= 0xC0 ? B_START : 0));
    }
    mark_currency_bytes();
    for (size_t i = NLEX; i-- > 0;) {
        const unsigned char *w = (const unsigned char *)LEX[i].w;
        size_t n = strlen(LEX[i].w);
        uint16_t *head = n < 3 ? &lex_short : &lex_head[bucket(w)];
        lex_next[i] = *head;
        *head = (uint16_t)(i + 1);
        lex_key[i] = key4(w, n);
        lex_kmask[i] = n >= 4 ? 0xFFFFFFFFu : (1u << (8 * n)) - 1;
    }
}

/* Length of e matched at p (case-insensitively for ASCII, on word boundaries), or 0. */
static size_t lex_match(const struct scan *sc, size_t p, const struct lex *e)
{
    const unsigned char *w = (const unsigned char *)e->w;
    size_t k;

    for (k = 0; w[k] != '\0'; k++) {
        int c = at(sc, p + k);
        if (c < 0 || ((e->flags & F_CASE) ? c : lower(c)) != w[k])
            return 0;
    }
    if (is_alpha(w[0]) && is_alnum(prev_byte(sc, p)))
        return 0;
    if (is_alpha(w[k - 1]) && !(e->flags & F_STEM) && is_alpha(at(sc, p + k)))
        return 0;
    return k;
}

/* The first entry of the chain to try at p, or 0: words start with a letter on a word
 * boundary or with a CJK character, and most positions have an empty bucket. */
static unsigned lex_first(const struct scan *sc, size_t p)
{
    const unsigned char *s = sc->s + p;
    size_t left = p < sc->n ? sc->n - p : 0;
    unsigned i;

    if (left == 0)
        return 0;
    if (s[0] < 0x80) {
        if (!(byte_class[s[0]] & B_ALPHA) || left < 2 ||
            (p > 0 && (byte_class[s[-1]] & (B_ALPHA | B_DIGIT))))
            return 0;
        i = left >= 3 ? lex_head[bucket(s)] : 0;
        if (i == 0 && (left == 2 || !(byte_class[s[2]] & B_ALPHA)))
            i = lex_short; /* the chain of two-letter words ("pc") for a two-letter word */
        return i;
    }
    return s[0] >= 0xE0 && left >= 3 ? lex_head[bucket(s)] : 0;
}

/* Collects the longest match of each kind at p, walking the chain from i (and, for a
 * two-letter word, the short chain); returns the number of hits. */
static int lex_walk(const struct scan *sc, size_t p, unsigned i, const struct lex **hit,
                    size_t *hlen)
{
    uint32_t tkey = key4(sc->s + p, sc->n - p);
    int nh = 0, short_word = i != lex_short && sc->s[p] < 0x80 && !is_alpha(at(sc, p + 2));

    for (int pass = 0; pass < 2; pass++) {
        for (; i != 0; i = lex_next[i - 1]) {
            const struct lex *e = &LEX[i - 1];
            size_t k;
            int j;
            if ((tkey & lex_kmask[i - 1]) != lex_key[i - 1] || (k = lex_match(sc, p, e)) == 0)
                continue;
            for (j = 0; j < nh && hit[j]->kind != e->kind; j++)
                ;
            if (j < nh) {
                if (k > hlen[j]) {
                    hit[j] = e;
                    hlen[j] = k;
                }
            } else if (nh < MAXHITS) {
                hit[nh] = e;
                hlen[nh++] = k;
            }
        }
        if (!short_word || lex_short == 0)
            break;
        i = lex_short;
        short_word = 0;
    }
    return nh;
}

static int lex_hits(const struct scan *sc, size_t p, const struct lex **hit, size_t *hlen)
{
    unsigned i = lex_first(sc, p);
    return i != 0 ? lex_walk(sc, p, i, hit, hlen) : 0;
}

/* Length of the longest entry of kind at p (its arg in *arg), or 0. */
static size_t lex_find(const struct scan *sc, size_t p, int kind, unsigned char *arg)
{
    const struct lex *hit[MAXHITS];
    size_t hlen[MAXHITS];
    int nh = lex_hits(sc, p, hit, hlen);

    for (int j = 0; j < nh; j++) {
        if (hit[j]->kind == kind) {
            if (arg != NULL)
                *arg = hit[j]->arg;
            return hlen[j];
        }
    }
    return 0;
}

/* Byte-exact match of a UTF-8 literal at p: its length, or 0. */
static size_t starts(const struct scan *sc, size_t p, const char *w)
{
    size_t k;

    if (p >= sc->n || sc->s[p] != (unsigned char)w[0])
        return 0;
    k = strlen(w);
    return sc->n - p >= k && memcmp(sc->s + p, w, k) == 0 ? k : 0;
}

/* An ASCII word at p, case-insensitively, not followed by a letter: its length, or 0. */
static size_t word(const struct scan *sc, size_t p, const char *w)
{
    size_t k;
    for (k = 0; w[k] != '\0'; k++)
        if (lower(at(sc, p + k)) != w[k])
            return 0;
    return is_alpha(at(sc, p + k)) ? 0 : k;
}

/* Skips spaces, tabs, no-break and ideographic spaces (not line breaks). */
static size_t skip_ws(const struct scan *sc, size_t p)
{
    for (;;) {
        int c = at(sc, p);
        if (c == ' ' || c == '\t')
            p++;
        else if (c == 0xC2 && at(sc, p + 1) == 0xA0)
            p += 2;
        else if (c == 0xE3 && at(sc, p + 1) == 0x80 && at(sc, p + 2) == 0x80)
            p += 3;
        else
            return p;
    }
}

/* Copies len bytes of src into a field, cut before an incomplete UTF-8 sequence. */
static void put_field(char *dst, size_t dstsz, const unsigned char *src, size_t len)
{
    if (len >= dstsz) {
        len = dstsz - 1;
        while (len > 0 && (src[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---- numbers ---------------------------------------------------------------------- */

/* A Chinese numeral character at p: 0-9, 10 for 十, or -1. */
static int cn_digit(const struct scan *sc, size_t p)
{
    if (p + 3 > sc->n || sc->s[p] < 0xE3)
        return -1;
    switch (((unsigned)sc->s[p] << 16) | ((unsigned)sc->s[p + 1] << 8) | sc->s[p + 2]) {
    case 0xE99BB6: /* 零 */
    case 0xE38087: /* 〇 */
        return 0;
    case 0xE4B880: /* 一 */
        return 1;
    case 0xE4BA8C: /* 二 */
    case 0xE4B8A4: /* 两 */
        return 2;
    case 0xE4B889: /* 三 */
        return 3;
    case 0xE59B9B: /* 四 */
        return 4;
    case 0xE4BA94: /* 五 */
        return 5;
    case 0xE585AD: /* 六 */
        return 6;
    case 0xE4B883: /* 七 */
        return 7;
    case 0xE585AB: /* 八 */
        return 8;
    case 0xE4B99D: /* 九 */
        return 9;
    case 0xE58D81: /* 十 */
        return 10;
    default:
        return -1;
    }
}

/* A number below 100 at p, in 1-2 ASCII digits or Chinese numerals ("二十三"). Returns
 * its end (value in *v), or 0. */
static size_t read_small(const struct scan *sc, size_t p, int *v)
{
    int a, b;

    if (is_digit(at(sc, p))) {
        if (is_digit(at(sc, p + 1))) {
            if (is_digit(at(sc, p + 2)))
                return 0;
            *v = (at(sc, p) - '0') * 10 + at(sc, p + 1) - '0';
            return p + 2;
        }
        *v = at(sc, p) - '0';
        return p + 1;
    }
    a = cn_digit(sc, p);
    if (a < 0)
        return 0;
    p += 3;
    if (a == 10) {
        b = cn_digit(sc, p);
        *v = 10 + (b >= 1 && b <= 9 ? b : 0);
        return b >= 1 && b <= 9 ? p + 3 : p;
    }
    if (cn_digit(sc, p) == 10) {
        p += 3;
        b = cn_digit(sc, p);
        *v = a * 10 + (b >= 1 && b <= 9 ? b : 0);
        return b >= 1 && b <= 9 ? p + 3 : p;
    }
    *v = a;
    return p;
}

/* Exactly n ASCII digits at p, not followed by another: their value, or -1. */
static int read_fixed(const struct scan *sc, size_t p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(at(sc, p + (size_t)i)))
            return -1;
        v = v * 10 + at(sc, p + (size_t)i) - '0';
    }
    return is_digit(at(sc, p + (size_t)n)) ? -1 : v;
}

/* 1-2 ASCII digits at p, not followed by another: end, value in *v; or 0. */
static size_t read_1or2(const struct scan *sc, size_t p, int *v)
{
    if (!is_digit(at(sc, p)))
        return 0;
    if (is_digit(at(sc, p + 1))) {
        if (is_digit(at(sc, p + 2)))
            return 0;
        *v = (at(sc, p) - '0') * 10 + at(sc, p + 1) - '0';
        return p + 2;
    }
    *v = at(sc, p) - '0';
    return p + 1;
}

static size_t digit_run(const struct scan *sc, size_t p)
{
    size_t k = 0;
    while (is_digit(at(sc, p + k)))
        k++;
    return k;
}

static int is_mobile_run(const struct scan *sc, size_t p, size_t run)
{
    return run == 11 && at(sc, p) == '1' && at(sc, p + 1) >= '3' && at(sc, p + 1) <= '9';
}

/* ---- order number ----------------------------------------------------------------- */

/* "快递单号", "运单号", "物流单号" are waybills, not orders. */
static int after_shipping_word(const struct scan *sc, size_t p)
{
    static const char *const w[] = {"运", "快递", "物流"};
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        size_t k = strlen(w[i]);
        if (p >= k && memcmp(sc->s + p - k, w[i], k) == 0)
            return 1;
    }
    return 0;
}

/* Skips what customers put between a cue and its value: "number", "no.", "#", "：",
 * "is", "是"… */
static size_t skip_fillers(const struct scan *sc, size_t q)
{
    static const char *const ascii[] = {"number", "num", "no", "id", "is", "was", "code"};
    static const char *const utf8[] = {"：", "＃", "是", "为", "号", "码"};

    for (int i = 0; i < 5; i++) {
        size_t r = skip_ws(sc, q), k = 0;
        if (at(sc, r) == ':' || at(sc, r) == '#' || at(sc, r) == '=') {
            q = r + 1;
            continue;
        }
        for (size_t j = 0; k == 0 && j < sizeof(utf8) / sizeof(utf8[0]); j++)
            k = starts(sc, r, utf8[j]);
        for (size_t j = 0; k == 0 && j < sizeof(ascii) / sizeof(ascii[0]); j++)
            k = word(sc, r, ascii[j]);
        if (k == 0)
            return r;
        q = r + k;
        if (at(sc, q) == '.')
            q++;
    }
    return skip_ws(sc, q);
}

/* "2024-05-20" after "order on" is a date, not an order number. */
static int date_like(const struct scan *sc, size_t t, size_t k)
{
    int y = read_fixed(sc, t, 4);
    return (k >= 8 && k <= 10 && y >= 1900 && y <= 2099 &&
            (at(sc, t + 4) == '-' || at(sc, t + 4) == '/'));
}

static void on_order_cue(struct scan *sc, size_t p, size_t len, const struct lex *e)
{
    size_t t, k = 0;
    int digits = 0;

    if (sc->out->order_no[0] != '\0' || ((e->flags & F_SHIP) && after_shipping_word(sc, p)))
        return;
    t = skip_fillers(sc, p + len);
    for (;;) {
        int c = at(sc, t + k);
        if (is_alnum(c)) {
            digits += is_digit(c);
            k++;
        } else if ((c == '-' || c == '_') && k > 0 && is_alnum(at(sc, t + k + 1))) {
            k++;
        } else {
            break;
        }
        if (k >= sizeof(sc->out->order_no))
            return;
    }
    if (at(sc, t + k) == '@' || (at(sc, t + k) == '.' && is_digit(at(sc, t + k + 1))))
        return;
    if (!((k >= 6 && k <= 32 && digits >= 5) || ((size_t)digits == k && k >= 10)))
        return;
    if (date_like(sc, t, k))
        return;
    put_field(sc->out->order_no, sizeof(sc->out->order_no), sc->s + t, k);
    sc->ord_b = t;
    sc->ord_e = t + k;
}

/* ---- amounts ---------------------------------------------------------------------- */

struct cur {
    const char *w;
    size_t len;
    const char *iso;
};

#define CUR(w, iso)                                                                                \
    {                                                                                              \
        w, sizeof(w) - 1, iso                                                                      \
    }

/* Before the number; "US$" and "HK$" before "$". */
static const struct cur CUR_BEFORE[] = {
    CUR("us$", "USD"), CUR("hk$", "HKD"), CUR("$", "USD"),      CUR("¥", "CNY"),
    CUR("￥", "CNY"),  CUR("€", "EUR"),   CUR("£", "GBP"),      CUR("rmb", "CNY"),
    CUR("cny", "CNY"), CUR("usd", "USD"), CUR("eur", "EUR"),    CUR("gbp", "GBP"),
    CUR("hkd", "HKD"), CUR("jpy", "JPY"), CUR("人民币", "CNY"),
};

/* After the number. */
static const struct cur CUR_AFTER[] = {
    CUR("块钱", "CNY"),   CUR("块", "CNY"),    CUR("元", "CNY"),     CUR("人民币", "CNY"),
    CUR("美元", "USD"),   CUR("美金", "USD"),  CUR("欧元", "EUR"),   CUR("英镑", "GBP"),
    CUR("港币", "HKD"),   CUR("港元", "HKD"),  CUR("日元", "JPY"),   CUR("dollars", "USD"),
    CUR("dollar", "USD"), CUR("bucks", "USD"), CUR("usd", "USD"),    CUR("rmb", "CNY"),
    CUR("cny", "CNY"),    CUR("yuan", "CNY"),  CUR("eur", "EUR"),    CUR("euros", "EUR"),
    CUR("euro", "EUR"),   CUR("gbp", "GBP"),   CUR("pounds", "GBP"), CUR("pound", "GBP"),
    CUR("quid", "GBP"),   CUR("hkd", "HKD"),   CUR("jpy", "JPY"),    CUR("yen", "JPY"),
    CUR("¥", "CNY"),      CUR("￥", "CNY"),    CUR("$", "USD"),      CUR("€", "EUR"),
    CUR("£", "GBP"),
};

/* The currency written just before p ("¥1299", "RMB 300"), or NULL. */
static const char *currency_before(const struct scan *sc, size_t p)
{
    size_t r = p;

    for (int i = 0; i < 2 && r > 0 && sc->s[r - 1] == ' '; i++)
        r--;
    if (r == 0 || !(byte_class[sc->s[r - 1]] & B_CURLAST))
        return NULL;
    for (size_t i = 0; i < sizeof(CUR_BEFORE) / sizeof(CUR_BEFORE[0]); i++) {
        const char *w = CUR_BEFORE[i].w;
        size_t k = CUR_BEFORE[i].len, j;
        if (r < k || lower(sc->s[r - 1]) != (unsigned char)w[k - 1])
            continue;
        for (j = 0; j < k && lower(sc->s[r - k + j]) == (unsigned char)w[j]; j++)
            ;
        if (j < k || (is_alpha((unsigned char)w[0]) && is_alpha(prev_byte(sc, r - k))))
            continue;
        return CUR_BEFORE[i].iso;
    }
    return NULL;
}

static void mark_currency_bytes(void)
{
    for (size_t i = 0; i < sizeof(CUR_AFTER) / sizeof(CUR_AFTER[0]); i++) {
        unsigned char c = (unsigned char)CUR_AFTER[i].w[0];
        byte_class[c] |= B_CURRENCY;
        byte_class[is_alpha(c) ? c - ('a' - 'A') : c] |= B_CURRENCY;
    }
    for (size_t i = 0; i < sizeof(CUR_BEFORE) / sizeof(CUR_BEFORE[0]); i++) {
        unsigned char c = (unsigned char)CUR_BEFORE[i].w[CUR_BEFORE[i].len - 1];
        byte_class[c] |= B_CURLAST;
        byte_class[is_alpha(c) ? c - ('a' - 'A') : c] |= B_CURLAST;
    }
}

/* The currency written at p ("元", " dollars"), or NULL. */
static const char *currency_after(const struct scan *sc, size_t p)
{
    int c, c1;

    p = skip_ws(sc, p);
    c = lower(at(sc, p));
    if (c < 0 || !(byte_class[c] & B_CURRENCY))
        return NULL; /* most digits are followed by no currency at all */
    c1 = lower(at(sc, p + 1));
    for (size_t i = 0; i < sizeof(CUR_AFTER) / sizeof(CUR_AFTER[0]); i++) {
        const struct cur *cu = &CUR_AFTER[i];
        if ((unsigned char)cu->w[0] != c || (cu->len > 1 && (unsigned char)cu->w[1] != c1))
            continue;
        if (is_alpha(c) ? word(sc, p, cu->w) == cu->len
                        : sc->n - p >= cu->len && memcmp(sc->s + p, cu->w, cu->len) == 0)
            return cu->iso;
    }
    return NULL;
}

static void try_amount(struct scan *sc, size_t p)
{
    size_t q = p, run = digit_run(sc, p);
    const char *iso;
    double v = 0, mult = 1;

    if (run > 12 || is_mobile_run(sc, p, run) || in_span(p, sc->ord_b, sc->ord_e))
        return;
    for (; is_digit(at(sc, q)); q++)
        v = v * 10 + (at(sc, q) - '0');
    /* thousands separators: "1,299", "12,000,000" */
    while (run <= 3 && at(sc, q) == ',' && read_fixed(sc, q + 1, 3) >= 0) {
        v = v * 1000 + read_fixed(sc, q + 1, 3);
        q += 4;
    }
    if (at(sc, q) == '.' && is_digit(at(sc, q + 1))) {
        double f = 0.1;
        for (q++; is_digit(at(sc, q)); q++, f /= 10)
            v += (at(sc, q) - '0') * f;
    }
    if (starts(sc, q, "多") || starts(sc, q, "余"))
        q += 3; /* "1000多元" */
    if (starts(sc, q, "万")) {
        mult = 1e4;
        q += 3;
    } else if (starts(sc, q, "千")) {
        mult = 1e3;
        q += 3;
    } else if ((at(sc, q) == 'k' || at(sc, q) == 'K') && !is_alpha(at(sc, q + 1))) {
        mult = 1e3;
        q++;
    }
    if (mult > 1 && (starts(sc, q, "多") || starts(sc, q, "余")))
        q += 3; /* "1万多元" */
    iso = currency_before(sc, p);
    if (iso == NULL && is_alpha(prev_byte(sc, p)))
        return; /* "E1023", "P60" */
    if (iso == NULL)
        iso = currency_after(sc, q);
    if (iso == NULL)
        return; /* a bare number is no amount */
    v *= mult;
    if (!sc->out->has_amount || v > sc->out->amount) {
        sc->out->has_amount = 1;
        sc->out->amount = v;
        sb_strlcpy(sc->out->currency, iso, sizeof(sc->out->currency));
    }
}

/* ---- times ------------------------------------------------------------------------ */

struct when {
    int y, m, d; /* a calendar date; y = 0 when the year was not said */
    int is_rel;  /* relative: rel days before the reference day */
    int rel;
    int period; /* from a word: 下午, "last night" */
    int h, min; /* h = -1: no hour */
    int ampm;   /* an explicit am/pm */
    int has_tz; /* a zone was written ("Z", "+08:00"): tz_min east of UTC */
    int tz_min;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-compatible
 * low-level date algorithms"). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* "am", "pm", "a.m.", "p.m." at p, after at most one space. */
static size_t read_ampm(const struct scan *sc, size_t p, int *ampm)
{
    size_t q = at(sc, p) == ' ' ? p + 1 : p, k;
    int c = lower(at(sc, q));

    if (c != 'a' && c != 'p')
        return 0;
    if ((k = word(sc, q + 1, "m")) > 0)
        k = q + 1 + k;
    else if (at(sc, q + 1) == '.' && lower(at(sc, q + 2)) == 'm' && at(sc, q + 3) == '.')
        k = q + 4;
    else
        return 0;
    *ampm = c == 'a' ? P_AM : P_PM;
    return k;
}

/* A time zone after an ISO clock: "Z", "+08:00", "+0800", "-05:00". */
static size_t read_zone(const struct scan *sc, size_t p, int *tz)
{
    int sign, hh, mm;
    size_t q;

    if (at(sc, p) == 'Z' && !is_alnum(at(sc, p + 1))) {
        *tz = 0;
        return p + 1;
    }
    if (at(sc, p) != '+' && at(sc, p) != '-')
        return 0;
    sign = at(sc, p) == '-' ? -1 : 1;
    if (!is_digit(at(sc, p + 1)) || !is_digit(at(sc, p + 2)))
        return 0;
    hh = (at(sc, p + 1) - '0') * 10 + at(sc, p + 2) - '0';
    q = p + 3 + (at(sc, p + 3) == ':');
    mm = read_fixed(sc, q, 2);
    if (mm < 0 || hh > 14 || mm > 59)
        return 0;
    *tz = sign * (hh * 60 + mm);
    return q + 2;
}

/* A clock at p: "14:30", "2pm", "2:30 PM", "3点", "三点半", "10 o'clock", "noon".
 * *bare is set for a lone number ("at 3") that only a part of the day makes an hour. */
static size_t read_clock(const struct scan *sc, size_t p, struct when *w, int *bare, int zone)
{
    int h, mn = 0, ampm = 0, v, colon;
    size_t q, k, r;

    *bare = 0;
    if ((k = word(sc, p, "noon")) > 0 || (k = word(sc, p, "midnight")) > 0) {
        w->h = k == 4 ? 12 : 0;
        w->min = 0;
        w->ampm = P_NONE;
        return p + k;
    }
    q = read_small(sc, p, &h);
    if (q == 0)
        return 0;
    colon = at(sc, q) == ':' ? 1 : starts(sc, q, "：") ? 3 : 0;
    if (is_digit(at(sc, p)) && colon && (mn = read_fixed(sc, q + (size_t)colon, 2)) >= 0) {
        q += (size_t)colon + 2;
        if (mn > 59 || h > 24)
            return 0;
        if (at(sc, q) == ':' && read_fixed(sc, q + 1, 2) >= 0)
            q += 3;
        if (zone) {
            if (at(sc, q) == '.' && is_digit(at(sc, q + 1)))
                for (q++; is_digit(at(sc, q));)
                    q++;
            if ((r = read_zone(sc, q, &w->tz_min)) > 0) {
                w->has_tz = 1;
                q = r;
            }
        }
        if ((r = read_ampm(sc, q, &ampm)) > 0)
            q = r;
    } else if ((k = starts(sc, q, "点")) || (k = starts(sc, q, "點")) ||
               (k = starts(sc, q, "时")) || (k = starts(sc, q, "時"))) {
        q += k;
        if ((k = starts(sc, q, "半")) > 0) {
            mn = 30;
            q += k;
        } else if ((k = starts(sc, q, "整")) > 0) {
            q += k;
        } else if ((r = read_small(sc, q, &v)) > 0 && v < 60) {
            mn = v;
            q = r;
            if ((k = starts(sc, q, "分")) > 0)
                q += k;
        }
        if ((k = starts(sc, q, "多")) > 0 || (k = starts(sc, q, "左右")) > 0)
            q += k;
        if (h > 24)
            return 0;
    } else if (!is_digit(at(sc, p))) {
        return 0;
    } else if ((r = read_ampm(sc, q, &ampm)) > 0) {
        q = r;
    } else if ((k = word(sc, skip_ws(sc, q), "o'clock")) > 0) {
        q = skip_ws(sc, q) + k;
    } else {
        *bare = 1;
    }
    if (ampm != P_NONE && (h < 1 || h > 12))
        ampm = P_NONE; /* "14:00 PM" */
    if (*bare && (h < 1 || h > 12))
        return 0;
    w->h = h == 24 ? 0 : h;
    w->min = mn;
    w->ampm = ampm;
    return q;
}

/* The time of day after a date: "下午3点", " at 14:30", " afternoon at 3", ", 2:00 PM".
 * Returns the end of what was consumed (p when nothing was). */
static size_t read_tod(const struct scan *sc, size_t p, struct when *w)
{
    size_t q = p, end = p, r, k;
    int conn = 0, bare;
    unsigned char arg;
    struct when t = *w;

    for (int i = 0; i < 4; i++) {
        r = skip_ws(sc, q);
        if (at(sc, r) == ',')
            r = skip_ws(sc, r + 1);
        if ((k = lex_find(sc, r, K_PERIOD, &arg)) > 0) {
            w->period = arg;
            q = end = r + k;
            continue;
        }
        if ((k = word(sc, r, "at")) || (k = word(sc, r, "around")) || (k = word(sc, r, "about")) ||
            (k = word(sc, r, "approx")) || (k = (at(sc, r) == '@'))) {
            conn = 1;
            q = r + k;
            continue;
        }
        break;
    }
    r = skip_ws(sc, q);
    if (at(sc, r) == ',')
        r = skip_ws(sc, r + 1);
    t.period = w->period;
    k = read_clock(sc, r, &t, &bare, 0);
    if (k > 0 && (!bare || (conn && w->period != P_NONE))) {
        *w = t;
        end = k;
    }
    return end;
}

/* "May 20", "May 20th, 2024", after the month name (end e). */
static size_t date_month_first(const struct scan *sc, size_t e, int month, struct when *w)
{
    size_t q = e + (at(sc, e) == '.'), r;
    int d, y;

    if (at(sc, q) != ' ')
        return 0;
    q = skip_ws(sc, q);
    r = read_1or2(sc, q, &d);
    if (r == 0 || d < 1 || d > 31 || at(sc, r) == ':' || at(sc, r) == '.')
        return 0;
    if (word(sc, r, "st") || word(sc, r, "nd") || word(sc, r, "rd") || word(sc, r, "th"))
        r += 2;
    else if (is_alpha(at(sc, r)))
        return 0;
    w->m = month;
    w->d = d;
    q = at(sc, r) == ',' ? r + 1 : r;
    q = skip_ws(sc, q);
    y = read_fixed(sc, q, 4);
    if (y >= 1970 && y <= 2099 && at(sc, q + 4) != ':') {
        w->y = y;
        return q + 4;
    }
    return r;
}

/* Numeric dates starting with a 4-digit year: "2024-05-20", "2024/5/20",
 * "2024-05-20T14:00Z", "2024年5月20日". */
static size_t date_ymd(const struct scan *sc, size_t p, struct when *w)
{
    int y = read_fixed(sc, p, 4), m, d, sep = at(sc, p + 4), bare;
    size_t q = p + 4, k, r;

    if (y < 1970 || y > 2099)
        return 0;
    if (sep == '-' || sep == '/' || sep == '.') {
        q = read_1or2(sc, q + 1, &m);
        if (q == 0 || at(sc, q) != sep)
            return 0;
        q = read_1or2(sc, q + 1, &d);
        if (q == 0 || m < 1 || m > 12 || d < 1 || d > 31 ||
            (is_alnum(at(sc, q)) && !(at(sc, q) == 'T' && is_digit(at(sc, q + 1)))) ||
            (at(sc, q) == sep && is_digit(at(sc, q + 1))))
            return 0;
        w->y = y;
        w->m = m;
        w->d = d;
        if (at(sc, q) == 'T' && is_digit(at(sc, q + 1))) {
            struct when t = *w;
            r = read_clock(sc, q + 1, &t, &bare, 1);
            if (r > 0 && !bare) {
                *w = t;
                return r;
            }
        }
        return q;
    }
    if ((k = starts(sc, q, "年")) == 0)
        return 0;
    q = read_small(sc, q + k, &m);
    if (q == 0 || (k = starts(sc, q, "月")) == 0 || m < 1 || m > 12)
        return 0;
    q = read_small(sc, q + k, &d);
    if (q == 0 || d < 1 || d > 31)
        return 0;
    if ((k = starts(sc, q, "日")) || (k = starts(sc, q, "号")) || (k = starts(sc, q, "號")))
        q += k;
    w->y = y;
    w->m = m;
    w->d = d;
    return q;
}

/* "on", "since", "from"… right before p: a slashed date without a year may follow. */
static int date_word_before(const struct scan *sc, size_t p)
{
    static const char *const w[] = {"on",   "since", "from",   "until",
                                    "till", "by",    "before", "after"};
    size_t e = p, b;

    while (e > 0 && sc->s[e - 1] == ' ')
        e--;
    for (b = e; b > 0 && is_alpha(sc->s[b - 1]); b--)
        ;
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        if (strlen(w[i]) == e - b && word(sc, b, w[i]) == e - b)
            return 1;
    return 0;
}

/* A date at p, without its time of day. Returns its end, or 0. */
static size_t read_date(const struct scan *sc, size_t p, struct when *w)
{
    size_t q, r, k;
    unsigned char arg;
    int v, d;

    if (is_digit(at(sc, p))) {
        size_t run = digit_run(sc, p);
        if (is_alnum(prev_byte(sc, p)) || run > 4 || run == 3)
            return 0;
        if (run == 4)
            return date_ymd(sc, p, w);
    } else if ((k = lex_find(sc, p, K_RELDAY, &arg)) > 0) {
        w->is_rel = 1;
        w->rel = arg & 15;
        w->period = arg >> 4;
        return p + k;
    } else if ((k = lex_find(sc, p, K_MONTH, &arg)) > 0) {
        return date_month_first(sc, p + k, arg, w);
    }
    q = read_small(sc, p, &v);
    if (q == 0)
        return 0;
    /* "5月20日", "五月二十号" */
    if ((k = starts(sc, q, "月")) > 0) {
        r = read_small(sc, q + k, &d);
        if (v < 1 || v > 12 || r == 0 || d < 1 || d > 31)
            return 0;
        if ((k = starts(sc, r, "日")) || (k = starts(sc, r, "号")) || (k = starts(sc, r, "號")))
            r += k;
        w->m = v;
        w->d = d;
        return r;
    }
    /* "5/20", "20/5/2024": only when month and day cannot be swapped, and with a year or
     * after "on", "since"… ("24/7 support" is no date) */
    if (is_digit(at(sc, p)) && at(sc, q) == '/' && (r = read_1or2(sc, q + 1, &d)) > 0) {
        int y = 0;
        if (at(sc, r) == '/') {
            y = read_fixed(sc, r + 1, 4);
            if (y < 1970 || y > 2099)
                return 0;
            r += 5;
        } else if (is_alnum(at(sc, r)) || (y == 0 && !date_word_before(sc, p))) {
            return 0;
        }
        if (v >= 1 && v <= 12 && d > 12 && d <= 31) {
            w->m = v;
            w->d = d;
        } else if (d >= 1 && d <= 12 && v > 12 && v <= 31) {
            w->m = d;
            w->d = v;
        } else {
            return 0;
        }
        w->y = y;
        return r;
    }
    /* "3天前", "3 days ago" */
    if ((k = starts(sc, q, "天前")) || (k = starts(sc, q, "天之前"))) {
        if (v < 1 || v > 60)
            return 0;
        w->is_rel = 1;
        w->rel = v;
        return q + k;
    }
    if (!is_digit(at(sc, p)))
        return 0;
    r = skip_ws(sc, q);
    if (r > q && ((k = word(sc, r, "days")) > 0 || (k = word(sc, r, "day")) > 0) &&
        at(sc, r + k) == ' ' && word(sc, r + k + 1, "ago") > 0) {
        if (v < 1 || v > 60)
            return 0;
        w->is_rel = 1;
        w->rel = v;
        return r + k + 4;
    }
    /* "20 May 2024", "3rd June" */
    r = q;
    if (word(sc, r, "st") || word(sc, r, "nd") || word(sc, r, "rd") || word(sc, r, "th"))
        r += 2;
    if (at(sc, r) != ' ' || v < 1 || v > 31)
        return 0;
    r = skip_ws(sc, r);
    if ((k = lex_find(sc, r, K_MONTH, &arg)) == 0)
        return 0;
    w->m = arg;
    w->d = v;
    r += k;
    if (at(sc, r) == '.')
        r++;
    q = at(sc, r) == ',' ? r + 1 : r;
    q = skip_ws(sc, q);
    d = read_fixed(sc, q, 4);
    if (q > r && d >= 1970 && d <= 2099 && at(sc, q + 4) != ':') {
        w->y = d;
        return q + 4;
    }
    return r;
}

/* "2024-05-20" or, with an hour, "2024-05-20T14" (printf costs more than the rest of
 * the time parsing). */
static void put_date(char *dst, size_t dstsz, int y, int m, int d, int h)
{
    char *q = dst;

    assert(dstsz >= sizeof("YYYY-MM-DDTHH"));
    if (y < 0 || y > 9999) {
        sb_fmt(dst, dstsz, "%d-%02d-%02d", y, m, d);
        return;
    }
    *q++ = (char)('0' + y / 1000);
    *q++ = (char)('0' + y / 100 % 10);
    *q++ = (char)('0' + y / 10 % 10);
    *q++ = (char)('0' + y % 10);
    *q++ = '-';
    *q++ = (char)('0' + m / 10);
    *q++ = (char)('0' + m % 10);
    *q++ = '-';
    *q++ = (char)('0' + d / 10);
    *q++ = (char)('0' + d % 10);
    if (h >= 0) {
        *q++ = 'T';
        *q++ = (char)('0' + h / 10);
        *q++ = (char)('0' + h % 10);
    }
    *q = '\0';
}

/* Resolves w against the reference day and writes when and when_words. */
static int store_when(struct scan *sc, const struct when *w, size_t b, size_t e)
{
    int64_t days;
    int y, m, d, h = w->h;

    if (w->is_rel) {
        days = sc->ref_days - w->rel;
    } else {
        y = w->y;
        if (y == 0) {
            /* no year: the most recent such date, never one in the future */
            y = sc->ref_y;
            if (w->m > sc->ref_m || (w->m == sc->ref_m && w->d > sc->ref_d))
                y--;
        }
        if (w->m < 1 || w->m > 12 || w->d < 1 || w->d > days_in_month(y, w->m))
            return 0;
        days = days_from_civil(y, w->m, w->d);
    }
    if (h >= 0) {
        int per = w->ampm != P_NONE ? w->ampm : w->period;
        switch (per) {
        case P_AM:
        case P_EARLY:
            h = h == 12 ? 0 : h;
            break;
        case P_PM:
            h = h >= 1 && h <= 11 ? h + 12 : h;
            break;
        case P_NOON:
            h = h >= 1 && h <= 5 ? h + 12 : h;
            break;
        case P_NIGHT:
            h = h >= 5 && h <= 11 ? h + 12 : h == 12 ? 0 : h;
            break;
        default:
            break;
        }
        /* "昨晚12点", "last night at 1am": past midnight, the next calendar day */
        if (w->period == P_NIGHT && h < 5)
            days++;
        if (w->has_tz) {
            int64_t mins = days * 1440 + h * 60 + w->min - w->tz_min + sc->tz_min;
            days = floor_div(mins, 1440);
            h = (int)((mins - days * 1440) / 60);
        }
    }
    civil_from_days(days, &y, &m, &d);
    put_date(sc->out->when, sizeof(sc->out->when), y, m, d, h);
    while (e > b && (sc->s[e - 1] == ' ' || sc->s[e - 1] == ','))
        e--;
    put_field(sc->out->when_words, sizeof(sc->out->when_words), sc->s + b, e - b);
    return 1;
}

/* A time expression starting at p: a date then its time of day, or a clock then its
 * date ("2pm yesterday", "at 3pm on May 20"). */
static void try_time(struct scan *sc, size_t p)
{
    struct when w, d;
    size_t e, r, q;
    int bare;

    if (in_span(p, sc->ord_b, sc->ord_e))
        return;
    memset(&w, 0, sizeof(w));
    w.h = -1;
    e = read_date(sc, p, &w);
    if (e > 0) {
        if (w.h < 0)
            e = read_tod(sc, e, &w);
    } else if (is_digit(at(sc, p))) {
        r = read_clock(sc, p, &w, &bare, 0);
        if (r == 0 || bare)
            return;
        q = skip_ws(sc, r);
        if (at(sc, q) == ',')
            q = skip_ws(sc, q + 1);
        if (word(sc, q, "on"))
            q = skip_ws(sc, q + 2);
        memset(&d, 0, sizeof(d));
        d.h = -1;
        e = read_date(sc, q, &d);
        if (e == 0 || d.h >= 0)
            return;
        d.h = w.h;
        d.min = w.min;
        d.ampm = w.ampm;
        w = d;
    } else {
        return;
    }
    store_when(sc, &w, p, e);
}

/* ---- where ------------------------------------------------------------------------ */

/* "page", " screen", "-page", "页面", "界面", "页" at p: the end, or 0. */
static size_t page_suffix(const struct scan *sc, size_t p)
{
    static const char *const en[] = {"page", "screen", "tab"};
    static const char *const zh[] = {"页面", "界面", "页"};
    size_t q = (at(sc, p) == ' ' || at(sc, p) == '-') ? p + 1 : p, k;

    for (size_t i = 0; i < sizeof(en) / sizeof(en[0]); i++)
        if ((k = word(sc, q, en[i])) > 0)
            return q + k;
    for (size_t i = 0; i < sizeof(zh) / sizeof(zh[0]); i++)
        if ((k = starts(sc, q, zh[i])) > 0)
            return q + k;
    return 0;
}

static void on_page(struct scan *sc, size_t p, size_t len, const struct lex *e)
{
    size_t end = page_suffix(sc, p + len);

    if (sc->out->page[0] != '\0')
        return;
    if (end == 0) {
        if (e->flags & F_NEED)
            return;
        end = p + len;
    }
    put_field(sc->out->page, sizeof(sc->out->page), sc->s + p, end - p);
}

static void on_os(struct scan *sc, size_t p, size_t len, const struct lex *e)
{
    size_t end = p + len, q = end + (at(sc, end) == ' '), r = q;

    if (sc->out->os[0] != '\0')
        return;
    if (is_digit(at(sc, q))) {
        while (is_digit(at(sc, r)) || (at(sc, r) == '.' && is_digit(at(sc, r + 1))))
            r++;
        if (e->arg == 1) {
            /* Windows 7, 8, 8.1, 10, 11: "win 5 dollars" is no OS */
            static const char *const ver[] = {"7", "8", "8.1", "10", "11"};
            size_t i;
            for (i = 0; i < sizeof(ver) / sizeof(ver[0]); i++)
                if (strlen(ver[i]) == r - q && memcmp(sc->s + q, ver[i], r - q) == 0)
                    break;
            if (i == sizeof(ver) / sizeof(ver[0]))
                r = q;
        }
        if (r > q && !is_alpha(at(sc, r)))
            end = r;
    }
    if (end == p + len && (e->flags & F_NEED))
        return;
    put_field(sc->out->os, sizeof(sc->out->os), sc->s + p, end - p);
    sc->os_b = p;
    sc->os_e = end;
}

/* Words that continue a model name: "iPhone 15 Pro Max", "Huawei Mate 60 Pro". */
static int model_word(const struct scan *sc, size_t p, size_t k, int *ndigitwords)
{
    static const char *const w[] = {"pro",  "max",    "plus", "ultra", "mini", "air",
                                    "se",   "lite",   "note", "mate",  "nova", "find",
                                    "reno", "galaxy", "fold", "flip",  "fe",   "edge",
                                    "neo",  "turbo",  "x",    "xr",    "xs",   "z"};
    int digits = 0;

    for (size_t i = 0; i < k; i++)
        digits += is_digit(at(sc, p + i));
    if (digits == (int)k)
        return k <= 3 && (*ndigitwords)++ == 0; /* "15", not "15 3" nor "2024" */
    if (digits > 0) {
        int l1 = lower(at(sc, p + k - 2)), l2 = lower(at(sc, p + k - 1));
        return k <= 8 && !((l1 == 'g' || l1 == 't') && l2 == 'b'); /* "P60", not "256GB" */
    }
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        if (strlen(w[i]) == k && word(sc, p, w[i]) == k)
            return 1;
    return 0;
}

static void on_device(struct scan *sc, size_t p, size_t len, const struct lex *e)
{
    size_t end = p + len, q = end;
    int nmodel = 0, ndigitwords = 0;

    if (sc->out->device[0] != '\0')
        return;
    for (int i = 0; i < 4; i++) {
        size_t r = at(sc, q) == ' ' ? q + 1 : q, k = 0;
        while (is_alnum(at(sc, r + k)))
            k++;
        if (k == 0 || (r == q && is_alnum(prev_byte(sc, r)) && !is_digit(at(sc, r))))
            break;
        if (!model_word(sc, r, k, &ndigitwords))
            break;
        if (at(sc, r + k) == '+')
            k++;
        q = end = r + k;
        nmodel++;
    }
    if (nmodel == 0 && (e->flags & F_NEED))
        return;
    put_field(sc->out->device, sizeof(sc->out->device), sc->s + p, end - p);
    sc->dev_b = p;
    sc->dev_e = end;
}

/* ---- error text ------------------------------------------------------------------- */

/* An error code at p: "E1023", "ERR_503", "404" (letters optional unless need_letter). */
static size_t code_token(const struct scan *sc, size_t p, int need_letter)
{
    size_t r = p;
    int nl = 0, nd = 0;

    while (is_upper(at(sc, r)) && nl <= 5) {
        r++;
        nl++;
    }
    if (nl > 5 || (need_letter && nl == 0))
        return 0;
    if (nl > 0 && (at(sc, r) == '_' || at(sc, r) == '-'))
        r++;
    while (is_digit(at(sc, r))) {
        r++;
        nd++;
    }
    if (nd < 3 || nd > 6 || is_alpha(at(sc, r)) || at(sc, r) == '_')
        return 0;
    /* not a decimal, a clock or a date */
    if ((at(sc, r) == '.' || at(sc, r) == ':' || at(sc, r) == '-' || at(sc, r) == '/' ||
         at(sc, r) == ',') &&
        is_digit(at(sc, r + 1)))
        return 0;
    return r - p;
}

static void set_code(struct scan *sc, size_t p, size_t k)
{
    if (sc->err_kind != 0 || in_span(p, sc->ord_b, sc->ord_e) || in_span(p, sc->dev_b, sc->dev_e) ||
        in_span(p, sc->os_b, sc->os_e))
        return;
    put_field(sc->out->error_text, sizeof(sc->out->error_text), sc->s + p, k);
    sc->err_kind = 1;
}

/* "verification code 583920" is no error code. */
static int code_is_not_error(const struct scan *sc, size_t p)
{
    static const char *const w[] = {
        "verification", "sms",    "promo",    "promotion",  "coupon",
        "discount",     "zip",    "postal",   "post",       "gift",
        "otp",          "redeem", "invite",   "invitation", "referral",
        "security",     "access", "pin",      "activation", "confirmation",
        "voucher",      "qr",     "tracking", "login",      "one-time"};
    size_t e = p, b;

    while (e > 0 && sc->s[e - 1] == ' ')
        e--;
    for (b = e; b > 0 && (is_alpha(sc->s[b - 1]) || sc->s[b - 1] == '-'); b--)
        ;
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        size_t k = strlen(w[i]), j;
        if (k != e - b)
            continue;
        for (j = 0; j < k && lower(sc->s[b + j]) == w[i][j]; j++)
            ;
        if (j == k)
            return 1;
    }
    return 0;
}

static void on_code_cue(struct scan *sc, size_t p, size_t len, const struct lex *e)
{
    size_t q, k;

    sc->errcue_seen = 1;
    if (sc->err_kind != 0 || (e->arg == 2 && code_is_not_error(sc, p)))
        return;
    q = skip_fillers(sc, p + len);
    k = code_token(sc, q, 0);
    if (k > 0 && !is_digit(prev_byte(sc, q)) &&
        !(is_digit(at(sc, q)) && currency_after(sc, q + k) != NULL)) {
        set_code(sc, q, k);
        return;
    }
    if (e->arg == 1) {
        /* "a 404 error", "500错误" */
        size_t b = p;
        if (b > 0 && sc->s[b - 1] == ' ')
            b--;
        if (b >= 3 && read_fixed(sc, b - 3, 3) >= 0 && !is_alnum(prev_byte(sc, b - 3)) &&
            prev_byte(sc, b - 3) != '.' && prev_byte(sc, b - 3) != ',')
            set_code(sc, b - 3, 3);
    }
}

/* The closing mark of a quote opening at p (its length in *olen), or NULL. */
static const char *quote_close(const struct scan *sc, size_t p, size_t *olen)
{
    static const char *const pairs[][2] = {
        {"\"", "\""}, {"“", "”"}, {"‘", "’"}, {"「", "」"}, {"『", "』"},
    };
    int c = at(sc, p);

    if (c == '\'') {
        /* an apostrophe ("can't", "Macy 's", "'' ") is no quote */
        int n1 = at(sc, p + 1);
        if (is_alnum(prev_byte(sc, p)) || n1 == ' ' || n1 == '\'' || n1 < 0 ||
            (is_alpha(n1) && !is_alnum(at(sc, p + 2))) ||
            (is_alpha(n1) && is_alpha(at(sc, p + 2)) && !is_alnum(at(sc, p + 3)) &&
             (lower(n1) == 'l' || lower(n1) == 'v' || lower(n1) == 'r')))
            return NULL;
        *olen = 1;
        return "'";
    }
    if (c != '"' && !(c >= 0xE2 && c <= 0xE3 && at(sc, p + 1) == 0x80))
        return NULL; /* “ ‘ are E2 80 xx, 「 『 are E3 80 xx */
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if ((*olen = starts(sc, p, pairs[i][0])) > 0)
            return pairs[i][1];
    return NULL;
}

/* Words that make quoted text an error message by themselves. */
static int errorish(const unsigned char *s, size_t n)
{
    static const char *const w[] = {
        "error",      "fail",      "unable",   "cannot",       "can't",    "could not", "couldn't",
        "invalid",    "denied",    "busy",     "expired",      "timeout",  "timed out", "not found",
        "went wrong", "try again", "declined", "insufficient", "abnormal", "blocked",   "locked",
        "oops",       "失败",      "错误",     "异常",         "无法",     "不能",      "繁忙",
        "过期",       "超时",      "稍后",     "重试",         "不足",     "拒绝",      "冻结",
        "限制",       "不存在",    "出错"};

    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        size_t k = strlen(w[i]);
        for (size_t j = 0; j + k <= n; j++) {
            size_t m;
            for (m = 0; m < k && lower(s[j + m]) == (unsigned char)w[i][m]; m++)
                ;
            if (m == k)
                return 1;
        }
    }
    return 0;
}

/* A sentence ends between a and b: the cue before a quote belongs elsewhere. */
static int sentence_break(const struct scan *sc, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++) {
        int c = sc->s[i];
        if (c == '.' || c == '!' || c == '?' || c == '\n' || c == ';' || starts(sc, i, "。") ||
            starts(sc, i, "！") || starts(sc, i, "？") || starts(sc, i, "；"))
            return 1;
    }
    return 0;
}

#define QUOTE_MAX 240   /* bytes searched for the closing mark */
#define ERRORISH_MAX 90 /* longer quotes are citations unless a cue says otherwise */

static void on_quote(struct scan *sc, size_t p, size_t olen, const char *close)
{
    size_t clen = strlen(close), o = p + olen, c, b, e, r, k;
    int ok = 0;

    for (c = o; c < sc->n && c - o < QUOTE_MAX && sc->s[c] != '\n'; c++) {
        if (close[0] == '"' && starts(sc, c, "''")) {
            clen = 2; /* typewriter style: "Paid '' */
            break;
        }
        if (starts(sc, c, close) &&
            !(close[0] == '\'' && (is_alnum(at(sc, c + 1)) || prev_byte(sc, c) == ' ')))
            break;
    }
    if (c >= sc->n || c - o >= QUOTE_MAX || sc->s[c] == '\n') {
        sc->qskip = p + olen;
        return;
    }
    sc->qskip = c + clen; /* the closing mark opens nothing */
    if (sc->err_kind == 2)
        return;
    for (b = o; b < c && (sc->s[b] == ' ' || sc->s[b] == '\t'); b++)
        ;
    for (e = c; e > b && (sc->s[e - 1] == ' ' || sc->s[e - 1] == '\t'); e--)
        ;
    if (e == b)
        return;
    /* a cue shortly before ("提示：", "it says"), shortly after ("… error", "…的提示") or
     * words of failure inside make it an error message */
    if (sc->last_qcue > 0 && sc->last_qcue <= p && p - sc->last_qcue <= 40 &&
        !sentence_break(sc, sc->last_qcue, p))
        ok = 1;
    if (!ok) {
        r = skip_ws(sc, c + clen);
        if ((k = starts(sc, r, "的")) > 0)
            r = skip_ws(sc, r + k);
        ok = lex_find(sc, r, K_QCUE, NULL) > 0;
    }
    if (!ok && e - b <= ERRORISH_MAX)
        ok = errorish(sc->s + b, e - b);
    if (!ok)
        return;
    put_field(sc->out->error_text, sizeof(sc->out->error_text), sc->s + b, e - b);
    sc->err_kind = 2;
}

/* "怎么还没到", "怎么又坏了", "怎么回事": the customer asks why, not for guidance. */
static int rhetorical(const struct scan *sc, size_t p)
{
    static const char *const w[] = {"还", "又", "回事", "这么", "那么", "没",     "不",   "会",
                                    "老", "总", "一直", "都",   "就",   "能这样", "搞的", "搞得"};
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        if (starts(sc, p, w[i]))
            return 1;
    return 0;
}

/* ---- the pass --------------------------------------------------------------------- */

static void dispatch(struct scan *sc, size_t p, const struct lex *e, size_t len)
{
    switch (e->kind) {
    case K_ORDER:
        on_order_cue(sc, p, len, e);
        break;
    case K_OUTCOME:
        if (!((e->flags & F_RHET) && rhetorical(sc, p + len)))
            sc->outcomes |= 1u << e->arg;
        break;
    case K_PAGE:
        on_page(sc, p, len, e);
        break;
    case K_OS:
        on_os(sc, p, len, e);
        break;
    case K_DEVICE:
        on_device(sc, p, len, e);
        break;
    case K_QCUE:
        sc->last_qcue = p + len;
        sc->errcue_seen = 1;
        break;
    case K_CCUE:
        on_code_cue(sc, p, len, e);
        break;
    case K_RELDAY:
    case K_MONTH:
        if (sc->out->when[0] == '\0')
            try_time(sc, p);
        break;
    default:
        break;
    }
}

static void scan_at(struct scan *sc, size_t p)
{
    const struct lex *hit[MAXHITS];
    size_t hlen[MAXHITS], olen;
    const char *close;
    int c = sc->s[p], prev = prev_byte(sc, p), nh;

    if ((c == '"' || c == '\'' || c == 0xE2 || c == 0xE3) && p >= sc->qskip &&
        (close = quote_close(sc, p, &olen)) != NULL)
        on_quote(sc, p, olen, close);
    nh = lex_hits(sc, p, hit, hlen);
    for (int j = 0; j < nh; j++)
        dispatch(sc, p, hit[j], hlen[j]);
    if (is_digit(c)) {
        if (is_digit(prev))
            return;
        if (sc->out->when[0] == '\0')
            try_time(sc, p);
        if (!((prev == ',' || prev == '.') && is_digit(prev_byte(sc, p - 1))))
            try_amount(sc, p);
    } else if (c >= 0xE3 && sc->out->when[0] == '\0' && cn_digit(sc, p) >= 0) {
        try_time(sc, p);
    } else if (is_upper(c) && sc->err_kind == 0 && !is_alnum(prev) && prev != '_' && prev != '-') {
        size_t k = code_token(sc, p, 1);
        if (k > 0 && (c == 'E' || sc->errcue_seen))
            set_code(sc, p, k);
    }
}

static const enum sb_outcome PRIORITY[] = {SB_OUTCOME_REFUND, SB_OUTCOME_COMPENSATION,
                                           SB_OUTCOME_EXCHANGE, SB_OUTCOME_APOLOGY,
                                           SB_OUTCOME_GUIDANCE};

int sb_extract_text(const char *text, size_t len, int64_t ref_ms, int tz_offset_min,
                    struct sb_extract *out)
{
    struct scan sc;
    const unsigned char *s = (const unsigned char *)text;
    int64_t local_s;
    int found = 0;

    memset(out, 0, sizeof(*out));
    memset(&sc, 0, sizeof(sc));
    if (pthread_once(&lex_once, lex_build) != 0)
        return 0;
    if (text == NULL)
        len = 0;
    sc.s = (const unsigned char *)text;
    sc.n = len;
    sc.out = out;
    sc.tz_min = tz_offset_min;
    local_s = floor_div(ref_ms, 1000) + (int64_t)tz_offset_min * 60;
    sc.ref_days = floor_div(local_s, 86400);
    civil_from_days(sc.ref_days, &sc.ref_y, &sc.ref_m, &sc.ref_d);

    /* Something starts only at a digit, a quote, a multi-byte character (CJK, “, ¥) or
     * a letter beginning a word: the other bytes are passed over. */
    for (size_t p = 0; p < len;) {
        unsigned cl = byte_class[s[p]];
        if (cl & B_START)
            scan_at(&sc, p);
        p++;
        if (cl & B_ALPHA) /* the rest of a word starts nothing */
            while (p < len && (byte_class[s[p]] & B_ALPHA))
                p++;
    }

    for (size_t i = 0; i < sizeof(PRIORITY) / sizeof(PRIORITY[0]); i++) {
        if (sc.outcomes & (1u << PRIORITY[i])) {
            out->outcome = PRIORITY[i];
            break;
        }
    }
    found += out->order_no[0] != '\0';
    found += out->has_amount;
    found += out->when[0] != '\0';
    found += out->page[0] != '\0';
    found += out->os[0] != '\0';
    found += out->device[0] != '\0';
    found += out->outcome != SB_OUTCOME_NONE;
    found += out->error_text[0] != '\0';
    return found;
}

const char *sb_outcome_name(enum sb_outcome o)
{
    switch (o) {
    case SB_OUTCOME_REFUND:
        return "refund";
    case SB_OUTCOME_EXCHANGE:
        return "exchange";
    case SB_OUTCOME_GUIDANCE:
        return "guidance";
    case SB_OUTCOME_APOLOGY:
        return "apology";
    case SB_OUTCOME_COMPENSATION:
        return "compensation";
    default:
        return "";
    }
}
