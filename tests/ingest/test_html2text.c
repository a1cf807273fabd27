/* Unit tests of the HTML reducer used for HTML-only email (services/ingest/html2text.c):
 * entities, dropped script/style/title content, line breaks from nested blocks,
 * unterminated and malformed markup, invalid UTF-8, the output bound, and hostile
 * inputs that must stay linear. Every output is checked to be valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "html2text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Is s (n bytes) valid UTF-8 (RFC 3629: no overlong forms, surrogates or values past
 * U+10FFFF) without NUL bytes? */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += need + 1;
    }
    return 1;
}

static char *reduce(const char *html, size_t len, size_t max)
{
    char *got = sb_html_to_text(html, len, max);
    assert_non_null(got);
    if (strlen(got) > max)
        fail_msg("output of %zu bytes past the bound %zu", strlen(got), max);
    if (!valid_utf8((const unsigned char *)got, strlen(got)))
        fail_msg("output is not valid UTF-8: \"%s\"", got);
    return got;
}

static void expect(const char *html, const char *want)
{
    char *got = reduce(html, strlen(html), 4096);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\"\ngave \"%s\"\nwant \"%s\"", html, got, want);
    free(got);
}

static void test_entities(void **state)
{
    (void)state;
    expect("&amp; &lt; &gt; &quot; &apos;", "& < > \" '");
    expect("&#65;&#x42;&#X43;&#20013;&#x6587;", "ABC中文");
    expect("a&nbsp;b&nbsp;&nbsp;c", "a b c"); /* a reader sees spaces */
    expect("&copy; 2024 &mdash; &euro;5 &hellip;", "© 2024 — €5 …");
    expect("&Eacute;t&eacute; &ccedil;a &Ouml;l", "Été ça Öl");
    /* Without the ';', as browsers accept. */
    expect("AT&ampT &lt3", "AT&T <3");
    /* Not references: kept as text. */
    expect("R&D &unknown; & &; &#; &#x; &#xZ;", "R&D &unknown; & &; &#; &#x; &#xZ;");
    /* Code points that are no characters: U+FFFD. */
    expect("&#0;|&#xD800;|&#x110000;|&#99999999999999999999;",
           "\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd");
    /* Control characters carry nothing; &#10; is white space in HTML. */
    expect("a&#1;b&#10;c&#9;d", "ab c d");
}

static void test_dropped_content(void **state)
{
    (void)state;
    expect("<style>p{color:red}</style><script>if (a<b && c>d) x();</script>ok", "ok");
    expect("<SCRIPT type=\"text/javascript\">var s = '<p>no</p>';</SCRIPT >after", "after");
    expect("<head><title>Subject line</title></head><body>text</body>", "text");
    /* "</scriptx" does not end a script; "</script" followed by '>' does. */
    expect("<script>a</scriptx>b</script>c", "c");
    /* An unterminated script swallows the rest, as in a browser. */
    expect("before<script>never closed <p>text</p>", "before");
    expect("<!-- a comment <p>hidden</p> -->shown<!--->", "shown");
    expect("<!DOCTYPE html><?xml version=\"1.0\"?>doc", "doc");
}

static void test_blocks(void **state)
{
    (void)state;
    expect("<p>a</p><p>b</p>", "a\n\nb");
    expect("a<br>b<br/>c<BR />d", "a\nb\nc\nd");
    expect("a<br><br><br><br><br>b", "a\n\nb"); /* runs of blank lines collapse */
    expect("<div>a</div><div>b</div>", "a\nb");
    expect("<div><p>one <b>bold</b> word</p><ul><li>x</li><li>y</li></ul></div>end",
           "one bold word\n\nx\ny\n\nend");
    expect("<div><div><div>deep</div></div></div><div>next</div>", "deep\nnext");
    expect("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>", "a b\nc d");
    expect("<blockquote>quoted</blockquote>after", "quoted\n\nafter");
    expect("<h1>Title</h1>text<hr>more", "Title\n\ntext\nmore");
}

static void test_whitespace(void **state)
{
    (void)state;
    expect("  a \n\t b  \r\n c  ", "a b c");
    expect("<p>  lead</p>", "lead");
    expect("\n\n<br><br>x<br><br>\n\n", "x");
    expect("a <b> b </b> c", "a b c");
    expect("", "");
}

static void test_malformed(void **state)
{
    (void)state;
    expect("unterminated <tag", "unterminated");
    expect("<a href=\"x>y\">link</a>", "link");
    expect("<a href='unterminated>text", ""); /* the quote runs to the end */
    expect("<a title=don't>x</a>", "x");      /* a quote not after '=' is no quote */
    expect("1 < 2 > 0", "1 < 2 > 0");
    expect("<3 you", "<3 you");
    expect("a <", "a <");
    expect("a </", "a </");
    expect("<<<>>>", "<<<>>>");
    expect("</>x", "</>x");
    expect("<p", "");
    expect("<averyveryverylongtagnamethatisnotknown>x</averyveryverylongtagnamethatisnotknown>",
           "x");
    expect("&", "&");
    expect("&#", "&#");
    expect("&#x", "&#x");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    /* Stray, overlong, surrogate and truncated sequences: U+FFFD per bad byte. */
    expect("a\xff"
           "b",
           "a\xef\xbf\xbd"
           "b");
    expect("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");
    expect("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    expect("ok\xe4\xb8", "ok\xef\xbf\xbd\xef\xbf\xbd");
    expect("中文 ok", "中文 ok");
    expect("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");
}

static void test_bound(void **state)
{
    char *got;
    (void)state;

    /* A cut never leaves half a character. */
    got = reduce("中中中中", 12, 7);
    assert_string_equal(got, "中中");
    free(got);
    got = reduce("abcdef", 6, 0);
    assert_string_equal(got, "");
    free(got);
    got = reduce("<p>abc</p><p>def</p>", 20, 5);
    assert_string_equal(got, "abc"); /* the break fits, "d" does not: trailing break dropped */
    free(got);
    /* Not NUL-terminated input: len is honoured. */
    got = reduce("abc<b>NOT", 3, 100);
    assert_string_equal(got, "abc");
    free(got);
}

/* Builds n copies of unit (a hostile pattern) and reduces them with a 1 MiB bound;
 * the run must stay far below a quadratic time. */
static void hostile(const char *unit, size_t copies)
{
    size_t u = strlen(unit), n = u * copies;
    char *html = malloc(n);
    clock_t t0;
    double secs;
    char *got;

    assert_non_null(html);
    for (size_t i = 0; i < copies; i++)
        memcpy(html + i * u, unit, u);
    t0 = clock();
    got = reduce(html, n, 1024 * 1024);
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (secs > 2.0)
        fail_msg("\"%s\" x %zu took %.2f s", unit, copies, secs);
    free(got);
    free(html);
}

static void test_overlong_input(void **state)
{
    (void)state;
    hostile("<b>x</b>&amp;", 400000);
    hostile("<", 4000000);
    hostile("<!--", 1000000);
    hostile("<a href=\"", 400000);
    hostile("<script>", 500000);
    hostile("</script", 500000);
    hostile("&#", 2000000);
    hostile("&#x10FFFF", 400000);
    hostile("\xff", 4000000);
    hostile("<p>", 1000000);
    hostile("word ", 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entities),  cmocka_unit_test(test_dropped_content),
        cmocka_unit_test(test_blocks),    cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_bound),     cmocka_unit_test(test_overlong_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
