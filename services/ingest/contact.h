/* The normalized contact: validation and normalization of the generic contact of
 * POST /v1/contacts (and of what every channel parser produces) into the payload of
 * contact.received. Pure logic: no I/O. */
#ifndef SB_INGEST_CONTACT_H
#define SB_INGEST_CONTACT_H

#include <jansson.h>
#include <stddef.h>

struct sb_contact_limits {
    size_t max_subject;     /* bytes of UTF-8 */
    size_t max_body;        /* bytes of UTF-8 */
    size_t max_attachments; /* entries */
    size_t max_metadata;    /* bytes of the encoded metadata object */
};

/* Checks the nesting depth of a JSON text without parsing it (jansson's own limit is
 * fixed at 2048). Returns 0, or SB_E_TOOBIG when deeper than max_depth. */
int sb_json_depth_ok(const char *buf, size_t len, int max_depth);

/* Index of a channel in the fixed list (0..6), or -1. */
int sb_contact_channel_index(const char *channel);
/* Name of channel index i, or NULL past the end. */
const char *sb_contact_channel_name(int i);
/* 1 when channel is one of chat, email, phone, wechat, social, web, api. */
int sb_contact_channel_valid(const char *channel);

/* Validates in (borrowed) and builds the normalized contact (*out, new reference):
 * channel, external_id, customer identities (at least one of customer_no, phone,
 * email, wechat_openid, social_id), subject, body, sent_at (RFC 3339), attachments
 * [{name,type,size}], metadata (object), in_reply_to, references, language.
 * Unknown top-level keys are refused. On failure returns SB_E_INVAL (or SB_E_TOOBIG)
 * and names the offending field in field (e.g. "customer.phone") and the problem in
 * errstr. */
int sb_contact_normalize(json_t *in, const struct sb_contact_limits *lim, json_t **out, char *field,
                         size_t fieldsz, char *errstr, size_t errstr_size);

#endif
