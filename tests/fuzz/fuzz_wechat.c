/* libFuzzer target: WeChat official-account XML pushes through the channel parser,
 * checking its contract on every input: a known return code, a contact exactly when
 * SB_WECHAT_CONTACT, a contact that encodes (valid UTF-8) with the fields every
 * contact has, and an error naming a field otherwise. Seeds: tests/fuzz/corpus/wechat
 * (copies of tests/data/wechat); crashes found become tests/data/wechat/bad files. */
#include "wechat.h"

#include "sb/err.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    enum sb_wechat_kind kind;
    json_t *c = NULL;
    json_t *j;
    int rc;

    rc = sb_wechat_parse((const char *)data, size, &kind, &c, err, sizeof(err));
    if (rc != 0) {
        if ((rc != SB_E_INVAL && rc != SB_E_TOOBIG) || c != NULL ||
            strncmp(err, "field \"", 7) != 0)
            __builtin_trap();
        /* The handler returns the message in a JSON error: it must be valid UTF-8. */
        j = json_string(err);
        if (j == NULL)
            __builtin_trap();
        json_decref(j);
        return 0;
    }
    if (kind == SB_WECHAT_IGNORE) {
        if (c != NULL)
            __builtin_trap();
        return 0;
    }
    if (kind != SB_WECHAT_CONTACT || c == NULL ||
        !json_is_string(json_object_get(c, "external_id")) ||
        json_string_length(json_object_get(c, "body")) == 0 ||
        !json_is_string(json_object_get(json_object_get(c, "customer"), "wechat_openid")) ||
        !json_is_object(json_object_get(c, "metadata")))
        __builtin_trap();
    {
        char *s = json_dumps(c, JSON_COMPACT);
        if (s == NULL)
            __builtin_trap();
        free(s);
    }
    json_decref(c);
    return 0;
}
