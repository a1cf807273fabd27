/* libFuzzer target: raw RFC 5322 messages through the email channel parser (GMime
 * walking, charset conversion, HTML reduction, quoted-history trimming). */
#include "email.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char err[256];
    json_t *c = NULL;

    if (!ready) {
        sb_email_global_init();
        ready = 1;
    }
    if (sb_email_parse((const char *)data, size, &c, err, sizeof(err)) == 0) {
        /* Every accepted message yields a contact that encodes (valid UTF-8). */
        char *s = json_dumps(c, JSON_COMPACT);
        if (s == NULL)
            __builtin_trap();
        free(s);
        json_decref(c);
    }
    return 0;
}
