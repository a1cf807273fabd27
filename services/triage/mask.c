/* Masking of personal data in customer text (SPEC.md §2: personal data is masked in
 * everything downstream of intake). One pass over the bytes finds emails, mainland
 * mobiles (plain, 3-4-4 grouped, +86/86/0086 prefixed), 18-character ID numbers with a
 * plausible birth date, Luhn-valid card numbers with a card-network prefix,
 * "+"-prefixed international numbers and landlines written after a cue ("电话", "call
 * me at"). Everything else, invalid UTF-8 included, is copied unchanged; the output is
 * cut only between characters. Order numbers stay: ops need them. Pure logic. */
#include "extract.h"

#include <stdint.h>
#include <string.h>

/* ---- bytes ------------------------------------------------------------------------ */

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Characters of an email's local part (RFC 5322 "atext", the usual subset). */
static int is_local(int c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

struct text {
    const unsigned char *s;
    size_t n;
};

static int at(const struct text *t, size_t p)
{
    return p < t->n ? t->s[p] : -1;
}

/* Length of the UTF-8 character at p, 1 for a byte that starts none. */
static size_t u8len(const struct text *t, size_t p)
{
    int c = t->s[p];
    size_t k;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4;
    else
        return 1;
    if (t->n - p < k)
        return 1;
    for (size_t i = 1; i < k; i++)
        if ((t->s[p + i] & 0xC0) != 0x80)
            return 1;
    return k;
}

/* ---- output ----------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t cap; /* bytes available before the NUL */
    size_t n;
    int full; /* something did not fit: nothing more is written */
};

/* Appends k bytes as a unit: all of them or, once the output is full, none. */
static void put(struct out *o, const void *s, size_t k)
{
    if (o->full)
        return;
    if (k > o->cap - o->n) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->n, s, k);
    o->n += k;
}

/* Copies input bytes [b, e) (e on a character boundary); when they do not all fit, as
 * many whole characters as do. */
static void copy_text(struct out *o, const struct text *t, size_t b, size_t e)
{
    if (o->full || b >= e)
        return;
    if (e - b <= o->cap - o->n) {
        memcpy(o->buf + o->n, t->s + b, e - b);
        o->n += e - b;
        return;
    }
    while (b < e && !o->full) {
        size_t k = u8len(t, b);
        put(o, t->s + b, k);
        b += k;
    }
}

static void put_ch(struct out *o, char c)
{
    put(o, &c, 1);
}

/* Writes s[b, e) with every digit but the last keep ones starred, separators kept. */
static void put_starred(struct out *o, const struct text *t, size_t b, size_t e, int keep)
{
    int digits = 0;

    for (size_t i = b; i < e; i++)
        digits += is_digit(t->s[i]);
    for (size_t i = b; i < e; i++) {
        if (is_digit(t->s[i]) && digits-- > keep)
            put_ch(o, '*');
        else
            put_ch(o, (char)t->s[i]);
    }
}

/* "138****5678" from the 11 digits of a mobile. */
static void put_mobile(struct out *o, const char d[11])
{
    put(o, d, 3);
    put(o, "****", 4);
    put(o, d + 7, 4);
}

/* ---- digit groups ----------------------------------------------------------------- */

/* Digits at p split by single spaces or dashes: "4111 1111 1111 1111", "0755-8765 4321". */
struct groups {
    int ng;
    size_t end[8]; /* end of each group */
    size_t tot[8]; /* digits up to the end of each group */
    size_t len[8]; /* digits in each group */
    char digits[24];
};

/* Reads groups at p while the digit total stays within max. Returns the number of
 * groups; 0 when the first group alone is longer than max. */
static int read_groups(const struct text *t, size_t p, size_t max, struct groups *g)
{
    size_t q = p, total = 0;

    g->ng = 0;
    while (g->ng < 8) {
        size_t k = 0;
        while (is_digit(at(t, q + k)))
            k++;
        if (total + k > max)
            break;
        memcpy(g->digits + total, t->s + q, k);
        total += k;
        g->len[g->ng] = k;
        g->end[g->ng] = q + k;
        g->tot[g->ng] = total;
        g->ng++;
        q += k;
        if ((at(t, q) != ' ' && at(t, q) != '-') || !is_digit(at(t, q + 1)))
            break;
        q++;
    }
    return g->ng;
}

/* ---- what is personal ------------------------------------------------------------- */

static int mobile_digits(const char *d)
{
    return d[0] == '1' && d[1] >= '3' && d[1] <= '9';
}

/* A mainland mobile at p: 11 digits, or 3-4-4 split by spaces or dashes, not part of a
 * longer digit run (the caller checks the byte before p). Its digits go to d; returns
 * its end, or 0. */
static size_t mobile_at(const struct text *t, size_t p, char d[11])
{
    size_t k = 0;

    while (is_digit(at(t, p + k)))
        k++;
    if (k == 11) {
        memcpy(d, t->s + p, 11);
        return mobile_digits(d) ? p + 11 : 0;
    }
    if (k == 3 && (at(t, p + 3) == ' ' || at(t, p + 3) == '-')) {
        int sep = at(t, p + 3);
        for (size_t i = 4; i < 8; i++)
            if (!is_digit(at(t, p + i)))
                return 0;
        if (at(t, p + 8) != sep)
            return 0;
        for (size_t i = 9; i < 13; i++)
            if (!is_digit(at(t, p + i)))
                return 0;
        if (is_digit(at(t, p + 13)))
            return 0;
        memcpy(d, t->s + p, 3);
        memcpy(d + 3, t->s + p + 4, 4);
        memcpy(d + 7, t->s + p + 9, 4);
        return mobile_digits(d) ? p + 13 : 0;
    }
    return 0;
}

/* An 18-character ID (GB 11643): 17 digits and a digit or X, region code 11-82,
 * birth date YYYYMMDD (19xx/20xx) at positions 7-14. */
static int id_plausible(const unsigned char *s)
{
    int y = (s[6] - '0') * 1000 + (s[7] - '0') * 100 + (s[8] - '0') * 10 + (s[9] - '0');
    int m = (s[10] - '0') * 10 + (s[11] - '0'), d = (s[12] - '0') * 10 + (s[13] - '0');

    return s[0] >= '1' && s[0] <= '8' && y >= 1900 && y <= 2099 && m >= 1 && m <= 12 && d >= 1 &&
           d <= 31;
}

/* Card-network prefixes (ISO/IEC 7812 IINs): 3 Amex/JCB/Diners, 4 Visa, 5 and
 * 2221-2720 Mastercard, 6 UnionPay/Discover, 9 domestic bank cards. Keeps Luhn-valid
 * order numbers starting 1, 2, 7 or 8 readable. */
static int card_prefix(const char *d)
{
    int p4 = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    return (d[0] >= '3' && d[0] <= '6') || d[0] == '9' || (p4 >= 2221 && p4 <= 2720);
}

int sb_luhn_valid(const char *digits, size_t len)
{
    int sum = 0;

    if (digits == NULL || len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        int v = digits[len - 1 - i] - '0';
        if (v < 0 || v > 9)
            return 0;
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/* Groups 0..last as printed on cards: 4-4-4-4(-1..4) or Amex 4-6-5. A number split
 * otherwise ("112-3456789-1234567") is no card, nor is any tail of it. */
static int card_layout(const struct groups *g, int last)
{
    if (last == 0)
        return 1;
    if (last == 2 && g->len[0] == 4 && g->len[1] == 6 && g->len[2] == 5)
        return 1;
    for (int i = 0; i < last; i++)
        if (g->len[i] != 4)
            return 0;
    return g->len[last] >= 1 && g->len[last] <= 4;
}

/* A card number at p: 13-19 digits, joined or split as on cards, Luhn-valid, with a
 * network prefix. Returns its end, or 0. */
static size_t card_at(const struct text *t, size_t p)
{
    struct groups g;
    int ng = read_groups(t, p, 19, &g);

    for (int i = ng - 1; i >= 0; i--) {
        size_t n = g.tot[i];
        if (n >= 13 && n <= 19 && card_layout(&g, i) && card_prefix(g.digits) &&
            sb_luhn_valid(g.digits, n))
            return g.end[i];
    }
    return 0;
}

/* Landline or other phone cues, with the words allowed between cue and number. */
static const char *const PHONE_CUES[] = {
    "电话", "手机", "座机",     "联系方式", "联系",      "致电",   "打",
    "传真", "微信", "tel",      "phone",    "telephone", "mobile", "cell",
    "call", "fax",  "whatsapp", "landline", "contact",
};
static const char *const PHONE_FILLERS[] = {
    "号码", "是", "为", "：", ":", "#", "number", "no.", "no", "is", "at", "on", "me", "my", "-",
};

/* Case-insensitive: does s[0, p) end with w (an ASCII word starting on a boundary)? */
static size_t ends_with(const struct text *t, size_t p, const char *w)
{
    size_t k = strlen(w), j;

    if (p < k)
        return 0;
    for (j = 0; j < k && lower(t->s[p - k + j]) == (unsigned char)w[j]; j++)
        ;
    if (j < k)
        return 0;
    if (is_alpha((unsigned char)w[0]) && p > k && is_alpha(t->s[p - k - 1]))
        return 0;
    return k;
}

/* A phone cue right before p, past fillers: "电话：", "call me at", "tel ". */
static int phone_cued(const struct text *t, size_t p)
{
    for (int round = 0; round < 6; round++) {
        size_t k = 0;
        while (p > 0 && (t->s[p - 1] == ' ' || t->s[p - 1] == '(' || t->s[p - 1] == ')'))
            p--;
        for (size_t i = 0; i < sizeof(PHONE_CUES) / sizeof(PHONE_CUES[0]); i++)
            if (ends_with(t, p, PHONE_CUES[i]) > 0)
                return 1;
        for (size_t i = 0; k == 0 && i < sizeof(PHONE_FILLERS) / sizeof(PHONE_FILLERS[0]); i++)
            k = ends_with(t, p, PHONE_FILLERS[i]);
        if (k == 0)
            return 0;
        p -= k;
    }
    return 0;
}

/* "(021) 5555 6666" at p (just after the parenthesis): 8-12 digits after a cue or with
 * an area code starting with 0. Returns its end, or 0. */
static size_t paren_phone_at(const struct text *t, size_t p)
{
    struct groups g;
    size_t k = 0, q;
    int ng;

    if (p == 0 || t->s[p - 1] != '(')
        return 0;
    while (is_digit(at(t, p + k)))
        k++;
    if (k < 2 || k > 4 || at(t, p + k) != ')')
        return 0;
    q = p + k + 1 + (at(t, p + k + 1) == ' ');
    ng = read_groups(t, q, 12 - k, &g);
    if (ng == 0 || k + g.tot[ng - 1] < 8 || is_digit(at(t, g.end[ng - 1])))
        return 0;
    return t->s[p] == '0' || phone_cued(t, p - 1) ? g.end[ng - 1] : 0;
}

/* A landline at p: 8-12 digits, after a cue, or "0xx-xxxxxxxx" with an area code. */
static size_t landline_at(const struct text *t, size_t p)
{
    struct groups g;
    int ng = read_groups(t, p, 12, &g);
    size_t n, e;

    if (ng == 0)
        return 0;
    for (int i = 1; i < ng; i++) {
        if (g.len[i] < 3) { /* "87654321 2 times" */
            ng = i;
            break;
        }
    }
    n = g.tot[ng - 1];
    e = g.end[ng - 1];
    if (n < 8)
        return 0;
    if (phone_cued(t, p))
        return e;
    if (ng == 2 && t->s[p] == '0' && (g.len[0] == 3 || g.len[0] == 4) && t->s[g.end[0]] == '-' &&
        (g.len[1] == 7 || g.len[1] == 8))
        return e;
    return 0;
}

/* ---- the pass --------------------------------------------------------------------- */

/* The next email at or after p ("wang.lei@example.com"), found from its '@': sets
 * m->b (start of the local part), m->lead (its first letter or digit), m->at and m->e
 * (end of the domain); m->b = SIZE_MAX when there is none. */
struct email {
    size_t b, lead, at, e;
};

static void next_email(const struct text *t, size_t p, struct email *m)
{
    const unsigned char *a;

    for (; p < t->n; p = m->at + 1) {
        size_t k, end = 0, last = 0;
        int labels = 0;

        a = memchr(t->s + p, '@', t->n - p);
        if (a == NULL)
            break;
        m->at = (size_t)(a - t->s);
        for (m->b = m->at; m->b > p && is_local(t->s[m->b - 1]) && m->at - m->b < 64;)
            m->b--;
        for (m->lead = m->b; m->lead < m->at && !is_alnum(t->s[m->lead]);)
            m->lead++;
        if (m->lead == m->at)
            continue;
        for (k = m->at + 1;;) {
            size_t b = k;
            while (is_alnum(at(t, k)) || at(t, k) == '-')
                k++;
            if (k == b)
                break;
            labels++;
            last = b;
            end = k;
            if (at(t, k) == '.' && is_alnum(at(t, k + 1)))
                k++;
            else
                break;
        }
        if (labels < 2 || end - last < 2)
            continue;
        for (k = last; k < end && is_alpha(t->s[k]);)
            k++;
        if (k < end) /* the top-level domain is letters */
            continue;
        m->e = end;
        return;
    }
    m->b = SIZE_MAX;
}

/* Personal data in the digit run at p (p starts the run). Writes its masked form and
 * returns its end, or returns 0 having written nothing. */
static size_t digits_at(const struct text *t, size_t p, struct out *o)
{
    size_t run = 0, e;
    char d[11];

    while (is_digit(at(t, p + run)))
        run++;
    /* ID number: 17 digits + digit or X */
    if (run == 18 || (run == 17 && (at(t, p + 17) == 'X' || at(t, p + 17) == 'x'))) {
        if (!is_alnum(at(t, p + 18)) && id_plausible(t->s + p)) {
            put(o, t->s + p, 6);
            put(o, "********", 8);
            put(o, t->s + p + 14, 4);
            return p + 18;
        }
    }
    if ((e = mobile_at(t, p, d)) > 0) {
        put_mobile(o, d);
        return e;
    }
    /* "8613812345678", "008613812345678" */
    if ((run == 13 && memcmp(t->s + p, "86", 2) == 0) ||
        (run == 15 && memcmp(t->s + p, "0086", 4) == 0)) {
        memcpy(d, t->s + p + run - 11, 11);
        if (mobile_digits(d)) {
            put(o, t->s + p, run - 11);
            put_mobile(o, d);
            return p + run;
        }
    }
    if ((e = card_at(t, p)) > 0) {
        put_starred(o, t, p, e, 4);
        return e;
    }
    /* "86 138 1234 5678", "0086-13812345678" */
    if (((run == 2 && memcmp(t->s + p, "86", 2) == 0) ||
         (run == 4 && memcmp(t->s + p, "0086", 4) == 0)) &&
        (at(t, p + run) == ' ' || at(t, p + run) == '-') &&
        (e = mobile_at(t, p + run + 1, d)) > 0) {
        put(o, t->s + p, run + 1);
        put_mobile(o, d);
        return e;
    }
    if ((e = landline_at(t, p)) > 0 || (e = paren_phone_at(t, p)) > 0) {
        put_starred(o, t, p, e, 4);
        return e;
    }
    return 0;
}

/* "+86 138 1234 5678" → "+86 138****5678"; "+1 415-555-0100" → "+1 ***-***-0100". */
static size_t intl_at(const struct text *t, size_t p, struct out *o)
{
    struct groups g;
    size_t q, e;
    char d[11];
    int ng;

    if (at(t, p + 1) == '8' && at(t, p + 2) == '6') {
        q = p + 3;
        if (at(t, q) == ' ' || at(t, q) == '-')
            q++;
        if ((e = mobile_at(t, q, d)) > 0) {
            put(o, t->s + p, q - p);
            put_mobile(o, d);
            return e;
        }
    }
    ng = read_groups(t, p + 1, 15, &g);
    for (int i = 1; i < ng; i++) {
        if (g.len[i] < 2) {
            ng = i;
            break;
        }
    }
    if (ng == 0 || g.tot[ng - 1] < 8 || is_digit(at(t, g.end[ng - 1])))
        return 0;
    e = g.end[ng - 1];
    /* the country code stays when it stands apart */
    q = ng >= 2 && g.len[0] <= 3 ? g.end[0] : p + 1;
    put(o, t->s + p, q - p);
    put_starred(o, t, q, e, 4);
    return e;
}

int sb_mask_text(const char *in, size_t len, char *out, size_t outsz)
{
    struct text t = {(const unsigned char *)in, in != NULL ? len : 0};
    struct out o = {out, outsz > 0 ? outsz - 1 : 0, 0, 0};
    struct email m;
    size_t p = 0, pend = 0, e;
    int count = 0;

    if (out == NULL || outsz == 0)
        return 0;
    next_email(&t, 0, &m);
    /* Plain text accumulates in [pend, p) and is copied in one piece before each
     * masked value; only digits, '+' and the next email stop the scan. */
    while (p < t.n && !o.full) {
        int c = t.s[p];

        if (p > m.b) /* a masked number ran into the local part: look again */
            next_email(&t, p, &m);
        if (p == m.b) {
            /* "wang.lei@example.com" → "w***@example.com" */
            copy_text(&o, &t, pend, p);
            put(&o, t.s + p, m.lead + 1 - p);
            put(&o, "***", 3);
            put(&o, t.s + m.at, m.e - m.at);
            count++;
            pend = p = m.e;
            next_email(&t, p, &m);
            continue;
        }
        if (!is_digit(c) && c != '+') {
            /* the plain stretch up to the next digit, '+' or email */
            size_t stop = m.b < t.n ? m.b : t.n;
            const unsigned char *s = t.s;
            for (p++; p < stop && !is_digit(s[p]) && s[p] != '+';)
                p++;
            continue;
        }
        copy_text(&o, &t, pend, p);
        pend = p;
        if (p > 0 && is_digit(t.s[p - 1])) {
            p++; /* the tail of a run already looked at */
            continue;
        }
        if (c == '+' && is_digit(at(&t, p + 1)) && (e = intl_at(&t, p, &o)) > 0) {
            count++;
            pend = p = e;
            continue;
        }
        if (is_digit(c) && (e = digits_at(&t, p, &o)) > 0) {
            count++;
            pend = p = e;
            continue;
        }
        /* nothing personal: none of the run's tails is tried */
        for (p++; p < t.n && p != m.b && is_digit(t.s[p]);)
            p++;
    }
    copy_text(&o, &t, pend, p);
    out[o.n] = '\0';
    return count;
}
