/* libFuzzer target: raw RFC 5322 messages through the email channel parser (pre-scan,
 * GMime walking, charset conversion, HTML reduction, quoted-history trimming), and the
 * same bytes straight through the HTML reducer and the quote trimmer. Any accepted
 * message must give a contact that encodes as JSON (valid UTF-8 everywhere); the
 * reducer's output must keep to its bound. */
#include "email.h"
#include "html2text.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *c = NULL;
    char *text;

    sb_email_global_init(); /* once; later calls return at once */
    if (sb_email_parse((const char *)data, size, &c, err, sizeof(err)) == 0) {
        char *s = json_dumps(c, JSON_COMPACT);
        if (s == NULL || json_object_get(c, "customer") == NULL)
            __builtin_trap();
        free(s);
        json_decref(c);
    } else if (c != NULL || err[0] == '\0') {
        __builtin_trap(); /* a refusal returns no contact and says why */
    }

    text = sb_html_to_text((const char *)data, size, 4096);
    if (strlen(text) > 4096)
        __builtin_trap();
    free(text);

    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    sb_email_trim_quoted(text);
    free(text);
    return 0;
}
