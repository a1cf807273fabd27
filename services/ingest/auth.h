/* Request authentication for ingest: signed channel webhooks (DESIGN.md "HTTP
 * conventions": X-SB-Signature t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>,
 * 300 s window) and bearer-token hashing. Pure logic: no I/O. */
#ifndef SB_INGEST_AUTH_H
#define SB_INGEST_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define SB_SIG_HEX_LEN 64

/* Why a signature was refused (for the 401 message and metrics). */
enum sb_sig_result {
    SB_SIG_OK = 0,
    SB_SIG_MISSING,   /* no header */
    SB_SIG_MALFORMED, /* not t=…,v1=… */
    SB_SIG_STALE,     /* outside the window */
    SB_SIG_MISMATCH,  /* wrong secret or altered body */
};

/* Computes the v1 signature of body at time t into out (65 bytes). */
void sb_sig_compute(const char *secret, int64_t t, const char *body, size_t len,
                    char out[SB_SIG_HEX_LEN + 1]);

/* Checks header against secret and body at now (unix seconds), accepting
 * |now - t| <= window_s. Several v1= values are allowed (secret rotation).
 * The comparison is constant-time. */
enum sb_sig_result sb_sig_verify(const char *secret, const char *header, const char *body,
                                 size_t len, int64_t now, int64_t window_s);

/* A short text for a result ("missing signature", …). */
const char *sb_sig_result_str(enum sb_sig_result r);

/* SHA-256 hex of a bearer token, as stored in api_tokens.token_sha256. */
void sb_token_hash(const char *token, char out[SB_SIG_HEX_LEN + 1]);

/* Extracts the token of an "Authorization: Bearer <token>" header value into out.
 * Returns 0 or SB_E_INVAL. */
int sb_bearer_parse(const char *header, char *out, size_t outsz);

#endif
