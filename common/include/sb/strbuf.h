/* A growable string for building text (metrics exposition, test inputs). Allocation
 * follows the library's policy: out of memory aborts. */
#ifndef SB_STRBUF_H
#define SB_STRBUF_H

#include <stddef.h>

struct sb_strbuf {
    char *p;    /* NUL-terminated; owned; free() it */
    size_t len; /* bytes before the NUL */
    size_t cap;
};

/* Appends formatted text, growing the buffer as needed. A zeroed struct is empty. */
void sb_strbuf_printf(struct sb_strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends len bytes (may contain anything but stay NUL-terminated after them). */
void sb_strbuf_append(struct sb_strbuf *b, const void *data, size_t len);
/* Empties the buffer, keeping its memory. */
void sb_strbuf_reset(struct sb_strbuf *b);

#endif
