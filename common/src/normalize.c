/* Identity normalization (see sb/normalize.h). */
#include "sb/normalize.h"

#include "sb/err.h"
#include "sb/util.h"

#include <ctype.h>
#include <string.h>

int sb_phone_normalize(const char *in, char *out, size_t outsz)
{
    char digits[32];
    size_t n = 0;
    const char *d = digits;

    for (const char *p = in; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (n + 1 >= sizeof(digits))
                return SB_E_INVAL;
            digits[n++] = *p;
        } else if (strchr(" -()+.", *p) == NULL) {
            return SB_E_INVAL;
        }
    }
    digits[n] = '\0';
    if (n == 15 && strncmp(digits, "0086", 4) == 0 && digits[4] == '1')
        d += 4;
    else if (n == 13 && strncmp(digits, "86", 2) == 0 && digits[2] == '1')
        d += 2;
    if (strlen(d) < 5)
        return SB_E_INVAL;
    return sb_strlcpy(out, d, outsz) < outsz ? 0 : SB_E_INVAL;
}

int sb_email_normalize(const char *in, char *out, size_t outsz)
{
    const char *start = in, *end = in + strlen(in);
    const char *at = NULL;
    size_t n;

    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    n = (size_t)(end - start);
    if (n == 0 || n > 254 || n >= outsz)
        return SB_E_INVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)start[i];
        if (c == '@') {
            if (at != NULL)
                return SB_E_INVAL;
            at = start + i;
        } else if (c <= ' ' || c == '<' || c == '>' || c == ',' || c == ';' || c == '"') {
            return SB_E_INVAL;
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[n] = '\0';
    if (at == NULL || at == start || at == end - 1)
        return SB_E_INVAL;
    return 0;
}

void sb_phone_mask(const char *phone, char *out, size_t outsz)
{
    size_t n = strlen(phone);

    if (n < 8) {
        sb_strlcpy(out, "****", outsz);
        return;
    }
    sb_fmt(out, outsz, "%.3s****%s", phone, phone + n - 4);
}

void sb_identity_cache_key(const char *kind, const char *value, char *out, size_t outsz)
{
    char hex[65];
    sb_sha256_join_hex("identity", ':', value, hex);
    sb_fmt(out, outsz, "sb:ident:%s:%s", kind, hex);
}

void sb_tier_cache_key(const char *customer_no, char *out, size_t outsz)
{
    char hex[65];
    sb_sha256_join_hex("customer", ':', customer_no, hex);
    sb_fmt(out, outsz, "sb:tier:%s", hex);
}
