/* libFuzzer target: the JSON contact of POST /v1/contacts, through the same steps as
 * ingest (nesting check, strict JSON parse, validation and normalization). */
#include "contact.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sb_contact_limits lim = {998, 262144, 100, 16384};
    char field[96], err[256];
    json_t *in, *out = NULL;

    if (sb_json_depth_ok((const char *)data, size, 32) != 0)
        return 0;
    in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (in == NULL)
        return 0;
    if (sb_contact_normalize(in, &lim, &out, field, sizeof(field), err, sizeof(err)) == 0) {
        char *s = json_dumps(out, JSON_COMPACT);
        /* A normalized contact always encodes (valid UTF-8, no NUL). */
        if (s == NULL)
            __builtin_trap();
        free(s);
    }
    json_decref(out);
    json_decref(in);
    return 0;
}
