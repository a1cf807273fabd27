/* Allocation policy, bounded string helpers, clocks and randomness. */
#include "sb/util.h"

#include "sb/err.h"
#include "sb/log.h"

#include <errno.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sb_strerror(int err)
{
    switch (err) {
    case SB_OK:
        return "success";
    case SB_E_INVAL:
        return "invalid argument";
    case SB_E_NOENT:
        return "not found";
    case SB_E_IO:
        return "I/O or connection failure";
    case SB_E_TIMEOUT:
        return "timed out";
    case SB_E_FATAL:
        return "fatal error";
    case SB_E_TOOBIG:
        return "too large";
    case SB_E_STATE:
        return "invalid state";
    case SB_E_CONFLICT:
        return "conflict";
    case SB_E_UNAVAIL:
        return "dependency unavailable";
    case SB_E_PARSE:
        return "not parseable";
    default:
        return "unknown error";
    }
}

static void oom(size_t n)
{
    /* Out of memory is not recoverable in a service: say so once and abort. */
    fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
    abort();
}

void *sb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *sb_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *sb_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *sb_strdup(const char *s)
{
    return sb_strndup(s, strlen(s));
}

char *sb_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = sb_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

size_t sb_strlcpy(char *dst, const char *src, size_t dstsz)
{
    size_t len = strlen(src);
    if (dstsz > 0) {
        size_t n = len < dstsz - 1 ? len : dstsz - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

int sb_fmt(char *dst, size_t dstsz, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(dst, dstsz, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (dstsz > 0)
            dst[0] = '\0';
        return SB_E_INVAL;
    }
    return (size_t)n >= dstsz ? SB_E_TOOBIG : 0;
}

int sb_parse_int64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (s == NULL || *s == '\0')
        return SB_E_INVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return SB_E_INVAL;
    *out = (int64_t)v;
    return 0;
}

int64_t sb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sb_mono_ms(void)
{
    return sb_mono_us() / 1000;
}

int64_t sb_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sb_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void sb_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

int sb_random_bytes(void *buf, size_t len)
{
    if (len > (size_t)0x7fffffff)
        return SB_E_INVAL;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : SB_E_IO;
}

void sb_sha256_join_hex(const char *a, char sep, const char *b, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    size_t la = strlen(a), lb = strlen(b);
    char *buf = sb_malloc(la + lb + 1);

    memcpy(buf, a, la);
    buf[la] = sep;
    memcpy(buf + la + 1, b, lb);
    SHA256((const unsigned char *)buf, la + lb + 1, d);
    free(buf);
    sb_hex(d, sizeof(d), out);
}
