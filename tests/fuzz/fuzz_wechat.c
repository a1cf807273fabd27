/* libFuzzer target: WeChat official-account XML pushes through the channel parser. */
#include "wechat.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    enum sb_wechat_kind kind;
    json_t *c = NULL;

    if (sb_wechat_parse((const char *)data, size, &kind, &c, err, sizeof(err)) == 0 && c != NULL) {
        char *s = json_dumps(c, JSON_COMPACT);
        if (s == NULL)
            __builtin_trap();
        free(s);
        json_decref(c);
    }
    return 0;
}
