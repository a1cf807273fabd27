/* Projection batch entries (sb/projection.h). */
#include "sb/projection.h"

#include "sb/kafka.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int sb_projection_append(struct sb_strbuf *b, size_t before, const char *topic, int partition,
                         int64_t offset, const struct sb_event *ev, const char *raw, size_t len)
{
    char *text = NULL;

    if (strcmp(topic, SB_TOPIC_DLQ) == 0) {
        struct sb_event copy = *ev;
        copy.payload = json_deep_copy(ev->payload);
        json_object_del(copy.payload, "raw_text");
        json_object_del(copy.payload, "raw_base64");
        text = sb_event_encode(&copy, &len);
        json_decref(copy.payload);
        if (text == NULL)
            return -1;
        raw = text;
    }
    sb_strbuf_printf(b, "%s{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"event\":",
                     before ? "," : "[", topic, partition, (long long)offset);
    sb_strbuf_append(b, raw, len);
    sb_strbuf_append(b, "}", 1);
    free(text);
    return 0;
}
