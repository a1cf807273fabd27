/* HTML to text (see html2text.h). One forward pass over the input with a small state
 * machine: every look-ahead (comment end, tag end, end of a <script>) moves the cursor
 * past what it scanned, so hostile input costs linear time, and the output buffer is
 * bounded by max_out. Not an HTML parser: it keeps what a reader of the rendered page
 * would see of a typical email, nothing more. */
#include "html2text.h"

#include "sb/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REPLACEMENT 0xFFFDu
#define TAG_NAME_MAX 16

struct out {
    char *p;
    size_t len, max;
    int newlines; /* line breaks at the end of the output */
    int space;    /* a space is due before the next visible character */
    int full;     /* a character did not fit: nothing more is written */
};

/* Writes one visible character (n bytes of UTF-8), preceded by a due space. */
static void put_visible(struct out *o, const char *s, size_t n)
{
    size_t need = n + (o->space ? 1 : 0);

    if (o->full)
        return;
    if (need > o->max - o->len) {
        o->full = 1;
        return;
    }
    if (o->space)
        o->p[o->len++] = ' ';
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->space = 0;
    o->newlines = 0;
}

/* HTML white space: one space between words, none at a line start. */
static void put_space(struct out *o)
{
    if (o->len > 0 && o->newlines == 0)
        o->space = 1;
}

/* One line break (<br>); never at the start, never more than two in a row, so that
 * runs of blank lines collapse into one. */
static void put_newline(struct out *o)
{
    o->space = 0;
    if (o->full || o->len == 0 || o->newlines >= 2)
        return;
    if (o->len >= o->max) {
        o->full = 1;
        return;
    }
    o->p[o->len++] = '\n';
    o->newlines++;
}

/* Ends a block: what follows starts after at least n (1 or 2) line breaks. */
static void end_block(struct out *o, int n)
{
    while (o->newlines < n && o->len > 0 && !o->full)
        put_newline(o);
}

static void put_codepoint(struct out *o, uint32_t cp)
{
    char b[4];
    size_t n;

    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = REPLACEMENT;
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == 0xA0) {
        put_space(o); /* &nbsp; included: a reader sees a space */
        return;
    }
    if (cp < 0x20 || cp == 0x7F)
        return; /* other control characters carry nothing readable */
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    put_visible(o, b, n);
}

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when invalid
 * (overlong forms, surrogates and values past U+10FFFF included; RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t need;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        need = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        need = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        need = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3Fu);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need;
}

struct named_entity {
    const char *name;
    uint32_t cp;
};

/* The named references seen in mail; a Latin-1 letter's capital is its code - 0x20. */
static const struct named_entity named[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"laquo", 0xAB},   {"raquo", 0xBB},   {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"bull", 0x2022},  {"middot", 0xB7},
    {"euro", 0x20AC},  {"yen", 0xA5},     {"pound", 0xA3},   {"cent", 0xA2},    {"deg", 0xB0},
    {"times", 0xD7},   {"divide", 0xF7},  {"sect", 0xA7},    {"para", 0xB6},    {"iexcl", 0xA1},
    {"iquest", 0xBF},  {"ordf", 0xAA},    {"ordm", 0xBA},    {"szlig", 0xDF},   {"shy", 0xAD},
    {"plusmn", 0xB1},
};
static const struct named_entity letters[] = {
    {"agrave", 0xE0}, {"aacute", 0xE1}, {"acirc", 0xE2},  {"atilde", 0xE3}, {"auml", 0xE4},
    {"aring", 0xE5},  {"aelig", 0xE6},  {"ccedil", 0xE7}, {"egrave", 0xE8}, {"eacute", 0xE9},
    {"ecirc", 0xEA},  {"euml", 0xEB},   {"igrave", 0xEC}, {"iacute", 0xED}, {"icirc", 0xEE},
    {"iuml", 0xEF},   {"eth", 0xF0},    {"ntilde", 0xF1}, {"ograve", 0xF2}, {"oacute", 0xF3},
    {"ocirc", 0xF4},  {"otilde", 0xF5}, {"ouml", 0xF6},   {"oslash", 0xF8}, {"ugrave", 0xF9},
    {"uacute", 0xFA}, {"ucirc", 0xFB},  {"uuml", 0xFC},   {"yacute", 0xFD}, {"thorn", 0xFE}};

/* Decodes the character reference at s (s[0] == '&', len bytes available) into *cp.
 * Returns the bytes it spans (the ';' is optional, as browsers accept), or 0 when s
 * does not start one and the '&' is plain text. */
static size_t entity(const char *s, size_t len, uint32_t *cp)
{
    size_t i;

    if (len > 2 && s[1] == '#') {
        int hex = s[2] == 'x' || s[2] == 'X';
        int digits = 0;
        uint32_t v = 0;
        for (i = hex ? 3 : 2; i < len; i++) {
            char c = s[i];
            uint32_t d;
            if (c >= '0' && c <= '9')
                d = (uint32_t)(c - '0');
            else if (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                d = (uint32_t)((c | 0x20) - 'a' + 10);
            else
                break;
            /* Saturate instead of overflowing: anything past U+10FFFF is invalid. */
            v = v > 0x10FFFF ? v : v * (hex ? 16u : 10u) + d;
            digits++;
        }
        if (digits == 0)
            return 0;
        if (i < len && s[i] == ';')
            i++;
        *cp = v;
        return i;
    }
    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
        size_t n = strlen(named[k].name);
        if (len > n && memcmp(s + 1, named[k].name, n) == 0) {
            *cp = named[k].cp;
            return 1 + n + (len > n + 1 && s[n + 1] == ';' ? 1 : 0);
        }
    }
    for (size_t k = 0; k < sizeof(letters) / sizeof(letters[0]); k++) {
        size_t n = strlen(letters[k].name);
        int upper;
        if (len <= n)
            continue;
        upper = s[1] == letters[k].name[0] - ('a' - 'A');
        if ((s[1] == letters[k].name[0] || upper) &&
            memcmp(s + 2, letters[k].name + 1, n - 1) == 0) {
            *cp = upper ? letters[k].cp - 0x20 : letters[k].cp;
            return 1 + n + (len > n + 1 && s[n + 1] == ';' ? 1 : 0);
        }
    }
    return 0;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static int name_in(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(name, list[i]) == 0)
            return 1;
    }
    return 0;
}

/* Line breaks a tag (opening or closing) stands for: 2 for paragraph-like blocks,
 * 1 for other blocks, 0 for inline elements. */
static int block_breaks(const char *name)
{
    static const char *const paragraphs[] = {"p",  "h1", "h2",         "h3",  "h4",    "h5", "h6",
                                             "ul", "ol", "blockquote", "pre", "table", "dl"};
    static const char *const lines[] = {"div",     "li",      "tr",         "dt",      "dd",
                                        "hr",      "section", "article",    "header",  "footer",
                                        "nav",     "aside",   "main",       "form",    "fieldset",
                                        "address", "figure",  "figcaption", "caption", "center"};
    if (name_in(name, paragraphs, sizeof(paragraphs) / sizeof(paragraphs[0])))
        return 2;
    if (name_in(name, lines, sizeof(lines) / sizeof(lines[0])))
        return 1;
    return 0;
}

/* Index just past the '>' ending the tag whose name ends at j, or len when the tag is
 * not terminated. Quotes count only where an attribute value starts (after '='), as
 * in a browser, so a stray apostrophe does not swallow the document. */
static size_t tag_end(const char *html, size_t len, size_t j)
{
    char quote = 0;
    int after_eq = 0;

    for (; j < len; j++) {
        char c = html[j];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (c == '>') {
            return j + 1;
        } else if (after_eq && (c == '"' || c == '\'')) {
            quote = c;
            after_eq = 0;
        } else if (c == '=') {
            after_eq = 1;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            after_eq = 0;
        }
    }
    return len;
}

/* Index of the "</name" that ends a raw-text element (script, style, title) whose
 * content starts at i, or len. */
static size_t raw_text_end(const char *html, size_t len, size_t i, const char *name)
{
    size_t n = strlen(name);

    for (; i + 2 + n <= len; i++) {
        if (html[i] == '<' && html[i + 1] == '/' && strncasecmp(html + i + 2, name, n) == 0 &&
            (i + 2 + n == len || !is_alnum(html[i + 2 + n])))
            return i;
    }
    return len;
}

/* Handles the markup at html[i] == '<'. Returns the index where text resumes. */
static size_t markup(struct out *o, const char *html, size_t len, size_t i)
{
    static const char *const raw_text[] = {"script", "style", "title"};
    char name[TAG_NAME_MAX];
    size_t j = i + 1, k = 0, end;
    int closing = 0, breaks;

    if (len - i >= 4 && memcmp(html + i, "<!--", 4) == 0) {
        for (j = i + 4; j + 3 <= len; j++) {
            if (memcmp(html + j, "-->", 3) == 0)
                return j + 3;
        }
        return len;
    }
    if (j < len && html[j] == '/') {
        closing = 1;
        j++;
    }
    if (j < len && !closing && (html[j] == '!' || html[j] == '?'))
        return tag_end(html, len, j); /* <!DOCTYPE …>, <?xml …?> */
    if (j >= len || !is_alpha(html[j])) {
        put_visible(o, "<", 1); /* a '<' that opens no tag is text ("1 < 2") */
        return i + 1;
    }
    while (j < len && is_alnum(html[j])) {
        if (k < sizeof(name) - 1)
            name[k++] = html[j];
        else
            k = sizeof(name); /* longer than any name we know */
        j++;
    }
    if (k == sizeof(name))
        k = 0;
    name[k] = '\0';
    end = tag_end(html, len, j);
    if (!closing && name_in(name, raw_text, sizeof(raw_text) / sizeof(raw_text[0])))
        return raw_text_end(html, len, end, name); /* content dropped; end tag next */
    if (strcasecmp(name, "br") == 0) {
        put_newline(o);
        return end;
    }
    if (strcasecmp(name, "td") == 0 || strcasecmp(name, "th") == 0) {
        put_space(o);
        return end;
    }
    breaks = block_breaks(name);
    if (breaks > 0)
        end_block(o, breaks);
    return end;
}

char *sb_html_to_text(const char *html, size_t len, size_t max_out)
{
    struct out o = {NULL, 0, 0, 0, 0, 0};
    size_t i = 0;

    /* Each input byte yields at most 3 bytes (an invalid byte becomes U+FFFD, a
     * reference never yields more than it spans): no need to allocate max_out. */
    o.max = max_out;
    if (len < (SIZE_MAX - 8) / 3 && 3 * len + 4 < o.max)
        o.max = 3 * len + 4;
    o.p = sb_malloc(o.max + 1);
    while (i < len && !o.full) {
        char c = html[i];
        if (c == '<') {
            i = markup(&o, html, len, i);
        } else if (c == '&') {
            uint32_t cp = 0;
            size_t n = entity(html + i, len - i, &cp);
            if (n > 0)
                put_codepoint(&o, cp);
            else
                put_visible(&o, "&", 1);
            i += n > 0 ? n : 1;
        } else {
            size_t n = utf8_len((const unsigned char *)html + i, len - i);
            if (n == 0) {
                put_codepoint(&o, REPLACEMENT);
                i++;
            } else if (n == 1) {
                put_codepoint(&o, (unsigned char)c);
                i++;
            } else {
                put_visible(&o, html + i, n);
                i += n;
            }
        }
    }
    while (o.len > 0 && o.p[o.len - 1] == '\n')
        o.len--;
    o.p[o.len] = '\0';
    return o.p;
}
