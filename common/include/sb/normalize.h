/* Normalization of customer identities, shared by intake and the loaders so that the
 * same phone or email always resolves to the same customer. Pure logic. */
#ifndef SB_NORMALIZE_H
#define SB_NORMALIZE_H

#include <stddef.h>

/* Phone: digits only, the mainland China country code removed before an 11-digit
 * mobile (+86 / 0086 / 86). Returns 0 or SB_E_INVAL. */
int sb_phone_normalize(const char *in, char *out, size_t outsz);

/* Email: trimmed, ASCII-lowercased, exactly one '@' with both sides non-empty, no
 * spaces or list separators. Returns 0 or SB_E_INVAL. */
int sb_email_normalize(const char *in, char *out, size_t outsz);

/* The Redis key caching which customer an identity belongs to:
 * "sb:ident:<kind>:<SHA-256 hex of "identity:<value>">" (never the clear value). Written
 * by ingest, deleted by `sbctl load customers` when the CRM changes. */
void sb_identity_cache_key(const char *kind, const char *value, char *out, size_t outsz);

/* The Redis key caching a customer's tier for triage: "sb:tier:<SHA-256 hex of
 * "customer:<customer_no>">". Deleted by `sbctl load customers` for every customer it
 * changes. */
void sb_tier_cache_key(const char *customer_no, char *out, size_t outsz);

/* Masks a phone for display: first 3 and last 4 digits kept ("138****5678"). */
void sb_phone_mask(const char *phone, char *out, size_t outsz);

#endif
