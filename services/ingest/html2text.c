/* HTML to text (see html2text.h). A single pass over the input with a small state
 * machine; output is bounded, so hostile input costs linear time and bounded memory. */
#include "html2text.h"

#include "sb/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct out {
    char *p;
    size_t len, max;
    int newlines; /* trailing newlines already written */
    int space;    /* a pending space */
};

static void put_bytes(struct out *o, const char *s, size_t n)
{
    if (o->len + n > o->max)
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_char(struct out *o, char c)
{
    if (c == '\n') {
        o->space = 0;
        if (o->newlines >= 2 || o->len == 0)
            return;
        o->newlines++;
        put_bytes(o, "\n", 1);
        return;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
        if (o->newlines == 0 && o->len > 0)
            o->space = 1;
        return;
    }
    if (o->space) {
        put_bytes(o, " ", 1);
        o->space = 0;
    }
    o->newlines = 0;
    put_bytes(o, &c, 1);
}

static void put_utf8(struct out *o, uint32_t cp)
{
    char b[4];
    size_t n;

    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp == 0xA0) {
        put_char(o, ' ');
        return;
    }
    if (cp < 0x80) {
        put_char(o, (char)cp);
        return;
    }
    if (cp < 0x800) {
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
    if (o->space) {
        put_bytes(o, " ", 1);
        o->space = 0;
    }
    o->newlines = 0;
    put_bytes(o, b, n);
}

/* Decodes an entity starting at s[0] == '&'. Returns bytes consumed (0: not one). */
static size_t entity(const char *s, size_t len, struct out *o)
{
    static const struct {
        const char *name;
        uint32_t cp;
    } named[] = {{"amp", '&'},       {"lt", '<'},       {"gt", '>'},       {"quot", '"'},
                 {"apos", '\''},     {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},
                 {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013}, {"laquo", 0xAB},
                 {"raquo", 0xBB},    {"yen", 0xA5},     {"euro", 0x20AC},  {"middot", 0xB7}};
    /* Latin-1 letters; an initial capital gives the capital letter (code - 0x20). */
    static const struct {
        const char *name;
        uint32_t cp;
    } letters[] = {{"agrave", 0xE0}, {"aacute", 0xE1}, {"acirc", 0xE2},  {"atilde", 0xE3},
                   {"auml", 0xE4},   {"aring", 0xE5},  {"aelig", 0xE6},  {"ccedil", 0xE7},
                   {"egrave", 0xE8}, {"eacute", 0xE9}, {"ecirc", 0xEA},  {"euml", 0xEB},
                   {"igrave", 0xEC}, {"iacute", 0xED}, {"icirc", 0xEE},  {"iuml", 0xEF},
                   {"ntilde", 0xF1}, {"ograve", 0xF2}, {"oacute", 0xF3}, {"ocirc", 0xF4},
                   {"otilde", 0xF5}, {"ouml", 0xF6},   {"oslash", 0xF8}, {"ugrave", 0xF9},
                   {"uacute", 0xFA}, {"ucirc", 0xFB},  {"uuml", 0xFC},   {"yacute", 0xFD}};
    size_t i = 1;
    uint32_t cp = 0;

    if (len > 1 && s[1] == '#') {
        int hex = len > 2 && (s[2] == 'x' || s[2] == 'X');
        int digits = 0;
        for (i = hex ? 3 : 2; i < len && digits < 8; i++, digits++) {
            char c = s[i];
            if (c >= '0' && c <= '9')
                cp = cp * (hex ? 16 : 10) + (uint32_t)(c - '0');
            else if (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                cp = cp * 16 + (uint32_t)((c | 0x20) - 'a' + 10);
            else
                break;
        }
        if (digits == 0)
            return 0;
        if (i < len && s[i] == ';')
            i++;
        put_utf8(o, cp);
        return i;
    }
    for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
        size_t n = strlen(named[k].name);
        if (len > n && strncmp(s + 1, named[k].name, n) == 0) {
            put_utf8(o, named[k].cp);
            return 1 + n + (len > n + 1 && s[n + 1] == ';' ? 1 : 0);
        }
    }
    for (size_t k = 0; k < sizeof(letters) / sizeof(letters[0]); k++) {
        size_t n = strlen(letters[k].name);
        int upper = len > 1 && s[1] == letters[k].name[0] - 32;
        if (n >= 2 && len > n && (s[1] == letters[k].name[0] || upper) &&
            memcmp(s + 2, letters[k].name + 1, n - 1) == 0) {
            put_utf8(o, upper ? letters[k].cp - 0x20 : letters[k].cp);
            return 1 + n + (len > n + 1 && s[n + 1] == ';' ? 1 : 0);
        }
    }
    if (len > 6 && strncmp(s + 1, "szlig", 5) == 0) {
        put_utf8(o, 0xDF);
        return s[6] == ';' ? 7 : 6;
    }
    return 0;
}

/* Tags whose end (or presence) starts a new line. */
static int is_block(const char *name)
{
    static const char *const blocks[] = {
        "br",  "p",     "div",     "li",      "tr",     "h1",    "h2",         "h3",
        "h4",  "h5",    "h6",      "ul",      "ol",     "table", "blockquote", "hr",
        "pre", "title", "section", "article", "header", "footer"};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        if (strcasecmp(name, blocks[i]) == 0)
            return 1;
    }
    return 0;
}

char *sb_html_to_text(const char *html, size_t len, size_t max_out)
{
    struct out o = {sb_malloc(max_out + 1), 0, max_out, 0, 0};
    const char *skip_until = NULL; /* "</script" or "</style" while inside one */
    size_t i = 0;

    while (i < len && o.len < o.max) {
        char c = html[i];
        if (skip_until != NULL) {
            size_t n = strlen(skip_until);
            if (c == '<' && len - i >= n && strncasecmp(html + i, skip_until, n) == 0)
                skip_until = NULL; /* the end tag itself is handled as a tag below */
            else {
                i++;
                continue;
            }
        }
        if (c == '<') {
            char name[16];
            size_t j = i + 1, k = 0;
            int closing = 0;
            if (len - i >= 4 && strncmp(html + i, "<!--", 4) == 0) {
                const char *end = NULL;
                for (size_t m = i + 4; m + 2 < len; m++) {
                    if (html[m] == '-' && html[m + 1] == '-' && html[m + 2] == '>') {
                        end = html + m + 3;
                        break;
                    }
                }
                i = end ? (size_t)(end - html) : len;
                continue;
            }
            if (j < len && html[j] == '/') {
                closing = 1;
                j++;
            }
            while (j < len && k < sizeof(name) - 1 &&
                   ((html[j] >= 'a' && html[j] <= 'z') || (html[j] >= 'A' && html[j] <= 'Z') ||
                    (html[j] >= '0' && html[j] <= '9')))
                name[k++] = html[j++];
            name[k] = '\0';
            if (k == 0 && !closing && (j >= len || html[j] != '!')) {
                put_char(&o, '<'); /* a lone '<' in text */
                i++;
                continue;
            }
            /* Skip to the end of the tag, honouring quoted attribute values. */
            {
                char quote = 0;
                while (j < len) {
                    if (quote) {
                        if (html[j] == quote)
                            quote = 0;
                    } else if (html[j] == '"' || html[j] == '\'') {
                        quote = html[j];
                    } else if (html[j] == '>') {
                        break;
                    }
                    j++;
                }
            }
            i = j < len ? j + 1 : len;
            if (!closing && strcasecmp(name, "script") == 0)
                skip_until = "</script";
            else if (!closing && strcasecmp(name, "style") == 0)
                skip_until = "</style";
            else if (is_block(name))
                put_char(&o, '\n');
            else if (strcasecmp(name, "td") == 0 || strcasecmp(name, "th") == 0)
                put_char(&o, ' ');
            continue;
        }
        if (c == '&') {
            size_t n = entity(html + i, len - i, &o);
            if (n > 0) {
                i += n;
                continue;
            }
        }
        if (c == '\n')
            c = ' '; /* HTML whitespace; lines come from the tags */
        if ((unsigned char)c < 0x80)
            put_char(&o, c);
        else {
            if (o.space) {
                put_bytes(&o, " ", 1);
                o.space = 0;
            }
            o.newlines = 0;
            put_bytes(&o, &c, 1);
        }
        i++;
    }
    /* Never end inside a multi-byte character cut by the size limit. */
    {
        size_t lead = o.len, need = 1;
        while (lead > 0 && o.len - lead < 4 && ((unsigned char)o.p[lead - 1] & 0xC0) == 0x80)
            lead--;
        if (lead > 0) {
            unsigned char b = (unsigned char)o.p[lead - 1];
            need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            if (o.len - (lead - 1) < need)
                o.len = lead - 1;
        }
    }
    while (o.len > 0 && (o.p[o.len - 1] == '\n' || o.p[o.len - 1] == ' '))
        o.len--;
    o.p[o.len] = '\0';
    return o.p;
}
