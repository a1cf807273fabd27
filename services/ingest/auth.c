/* Webhook signatures and bearer tokens (see auth.h). */
#include "auth.h"

#include "sb/err.h"
#include "sb/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sb_sig_compute(const char *secret, int64_t t, const char *body, size_t len,
                    char out[SB_SIG_HEX_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char prefix[32];
    size_t plen;
    unsigned char *msg;

    /* The signed text is "<t>.<raw body>". */
    sb_fmt(prefix, sizeof(prefix), "%lld.", (long long)t);
    plen = strlen(prefix);
    msg = sb_malloc(plen + len);
    memcpy(msg, prefix, plen);
    memcpy(msg + plen, body, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, plen + len, mac, &maclen);
    free(msg);
    sb_hex(mac, maclen, out);
}

const char *sb_sig_result_str(enum sb_sig_result r)
{
    switch (r) {
    case SB_SIG_OK:
        return "valid signature";
    case SB_SIG_MISSING:
        return "missing X-SB-Signature header";
    case SB_SIG_MALFORMED:
        return "malformed X-SB-Signature header (expected t=<unix>,v1=<hex>)";
    case SB_SIG_STALE:
        return "signature timestamp outside the allowed window";
    case SB_SIG_MISMATCH:
        return "signature does not match";
    }
    return "invalid signature";
}

/* Yields the next comma-separated part of a header value with leading spaces skipped:
 * sets *part and *n and advances *cursor. Returns 0 at the end. */
static int next_part(const char **cursor, const char **part, size_t *n)
{
    const char *p = *cursor, *end;

    if (*p == '\0')
        return 0;
    end = strchr(p, ',');
    *n = end ? (size_t)(end - p) : strlen(p);
    *cursor = p + *n + (end ? 1 : 0);
    while (*n > 0 && *p == ' ') {
        p++;
        (*n)--;
    }
    *part = p;
    return 1;
}

enum sb_sig_result sb_sig_verify(const char *secret, const char *header, const char *body,
                                 size_t len, int64_t now, int64_t window_s)
{
    char expected[SB_SIG_HEX_LEN + 1];
    const char *cursor, *p;
    size_t n;
    int64_t t = 0;
    int have_t = 0, have_v1 = 0, match = 0;

    if (header == NULL || header[0] == '\0')
        return SB_SIG_MISSING;
    if (strlen(header) > 1024)
        return SB_SIG_MALFORMED;
    /* First pass: the timestamp. */
    for (cursor = header; next_part(&cursor, &p, &n);) {
        if (n > 2 && strncmp(p, "t=", 2) == 0) {
            char num[24];
            if (n - 2 >= sizeof(num))
                return SB_SIG_MALFORMED;
            memcpy(num, p + 2, n - 2);
            num[n - 2] = '\0';
            if (sb_parse_int64(num, &t) != 0)
                return SB_SIG_MALFORMED;
            have_t = 1;
        }
    }
    if (!have_t)
        return SB_SIG_MALFORMED;
    sb_sig_compute(secret, t, body, len, expected);
    /* Second pass: every v1 value, compared in constant time. */
    for (cursor = header; next_part(&cursor, &p, &n);) {
        if (n > 3 && strncmp(p, "v1=", 3) == 0) {
            have_v1 = 1;
            if (n - 3 == SB_SIG_HEX_LEN && CRYPTO_memcmp(p + 3, expected, SB_SIG_HEX_LEN) == 0)
                match = 1;
        }
    }
    if (!have_v1)
        return SB_SIG_MALFORMED;
    if (t < now - window_s || t > now + window_s)
        return SB_SIG_STALE;
    return match ? SB_SIG_OK : SB_SIG_MISMATCH;
}

void sb_token_hash(const char *token, char out[SB_SIG_HEX_LEN + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)token, strlen(token), digest);
    sb_hex(digest, sizeof(digest), out);
}

int sb_bearer_parse(const char *header, char *out, size_t outsz)
{
    const char *p;
    size_t n;

    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return SB_E_INVAL;
    p = header + 7;
    while (*p == ' ')
        p++;
    n = strlen(p);
    while (n > 0 && p[n - 1] == ' ')
        n--;
    if (n == 0 || n >= outsz || n > 256)
        return SB_E_INVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}
