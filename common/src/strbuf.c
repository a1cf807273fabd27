/* Growable string (see sb/strbuf.h). */
#include "sb/strbuf.h"

#include "sb/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sb_strbuf_printf(struct sb_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->cap == 0) {
        b->cap = 256;
        b->p = sb_malloc(b->cap);
        b->p[0] = '\0';
        b->len = 0;
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return; /* an encoding error: nothing appended */
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = sb_realloc(b->p, b->cap);
    }
}

void sb_strbuf_append(struct sb_strbuf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        b->cap = (b->len + len + 1) * 2;
        b->p = sb_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void sb_strbuf_reset(struct sb_strbuf *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}
