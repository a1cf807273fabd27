/* Allocation policy, bounded string helpers and clocks used everywhere.
 * Out-of-memory aborts with a log line: no caller handles a NULL from these. */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *sb_malloc(size_t n);
void *sb_calloc(size_t count, size_t size);
void *sb_realloc(void *p, size_t n);
char *sb_strdup(const char *s);
char *sb_strndup(const char *s, size_t n);

/* Copies src into dst (size dstsz), always NUL-terminated; returns strlen(src). */
size_t sb_strlcpy(char *dst, const char *src, size_t dstsz);

/* Formats into dst like snprintf; always NUL-terminated even on truncation.
 * Returns 0, or SB_E_TOOBIG when the output was truncated. */
int sb_fmt(char *dst, size_t dstsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses a base-10 signed integer covering the whole string. Returns 0 or SB_E_INVAL. */
int sb_parse_int64(const char *s, int64_t *out);

/* Wall clock in milliseconds since the epoch. */
int64_t sb_now_ms(void);
/* Monotonic clock in milliseconds (for timeouts and latencies). */
int64_t sb_mono_ms(void);
/* Monotonic clock in microseconds. */
int64_t sb_mono_us(void);
/* Sleeps for ms milliseconds (restarts on EINTR unless a stop was requested). */
void sb_sleep_ms(int64_t ms);

/* Writes the lowercase hex of len bytes of in into out (size >= 2*len+1). */
void sb_hex(const unsigned char *in, size_t len, char *out);

/* Writes the lowercase hex SHA-256 of "<a><sep><b>" into out (65 bytes): the key
 * derivation used for ids and cache keys that must not carry the clear value. */
void sb_sha256_join_hex(const char *a, char sep, const char *b, char out[65]);

/* Fills buf with cryptographically random bytes. Returns 0 or SB_E_IO. */
int sb_random_bytes(void *buf, size_t len);

#endif
