/* Unit tests of the HTML reducer used for HTML-only emails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "html2text.h"

#include <stdlib.h>
#include <string.h>

static void expect(const char *html, const char *want)
{
    char *got = sb_html_to_text(html, strlen(html), 1000);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\" gave \"%s\", want \"%s\"", html, got, want);
    free(got);
}

static void test_reduce(void **state)
{
    (void)state;
    expect("<p>a</p><p>b</p>", "a\n\nb");
    expect("a<br>b<br/>c", "a\nb\nc");
    expect("<style>p{}</style><script>if (a<b) x()</script>ok", "ok");
    expect("&lt;&gt;&amp;&quot;&#39;&#x4e2d;&nbsp;x", "<>&\"'中 x");
    expect("&Eacute;t&eacute; &unknown; &#0; &#xD800;", "Été &unknown; \xef\xbf\xbd \xef\xbf\xbd");
    expect("<a href=\"x>y\">link</a>", "link");
    expect("<!-- c --><b>bold</b>  and   space", "bold and space");
    expect("unterminated <tag", "unterminated");
    expect("1 < 2", "1 < 2");
    expect("<table><tr><td>a</td><td>b</td></tr></table>", "a b");
}

static void test_bounded_output(void **state)
{
    /* A cut never leaves half a UTF-8 character. */
    char *got = sb_html_to_text("中中中中", 12, 7);
    (void)state;
    assert_string_equal(got, "中中");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_bounded_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
