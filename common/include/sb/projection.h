/* One entry of a projection batch, the JSON array sb_project() (deploy/sql) takes:
 * {"topic":…,"partition":…,"offset":…,"event":…}. Shared by sb-reporter (the live
 * projection) and `sbctl replay` (the rebuild), so both store exactly the same thing. */
#ifndef SB_PROJECTION_H
#define SB_PROJECTION_H

#include "sb/event.h"
#include "sb/strbuf.h"

#include <stddef.h>
#include <stdint.h>

/* Appends the entry of event ev (decoded from raw[0..len)) consumed at topic/partition/
 * offset to the array in b, which holds `before` entries already (0: opens the array).
 * A dead letter is stored without its original bytes (raw_text, raw_base64: they may hold
 * anything, U+0000 included); any other event as its bytes came (the decoder accepted
 * them, so they are one JSON object without U+0000). Returns 0, or -1 when out of
 * memory. Close the array with "]" before use. */
int sb_projection_append(struct sb_strbuf *b, size_t before, const char *topic, int partition,
                         int64_t offset, const struct sb_event *ev, const char *raw, size_t len);

#endif
