/* The WeChat official-account channel: the server signature (SHA-1 of the sorted
 * token, timestamp and nonce) and the XML push messages (text, image, voice with
 * speech recognition, video, location, link, events), mapped to the generic contact.
 * Pure logic: no I/O. */
#ifndef SB_INGEST_WECHAT_H
#define SB_INGEST_WECHAT_H

#include <jansson.h>
#include <stddef.h>

/* What WeChat expects as the answer to a push that needs no passive reply. */
#define SB_WECHAT_REPLY "success"
/* Largest push body accepted. */
#define SB_WECHAT_MAX_BYTES (64 * 1024)

enum sb_wechat_kind {
    SB_WECHAT_CONTACT, /* a customer message or an event worth a ticket */
    SB_WECHAT_IGNORE,  /* unsubscribe, menu VIEW, location reports, job reports… */
};

/* Writes the expected lowercase hex signature (41 bytes with the NUL). */
void sb_wechat_signature(const char *token, const char *timestamp, const char *nonce, char out[41]);
/* 1 when signature (lowercase hex) matches, compared in constant time; 0 otherwise,
 * also for missing or over-long (> 128 bytes) parameters. */
int sb_wechat_signature_ok(const char *token, const char *timestamp, const char *nonce,
                           const char *signature);

/* Parses one push. On SB_WECHAT_CONTACT *contact is a new reference; on
 * SB_WECHAT_IGNORE it is NULL. Returns 0, or SB_E_INVAL / SB_E_TOOBIG with errstr
 * naming the field. DTDs and entity declarations are refused. */
int sb_wechat_parse(const char *xml, size_t len, enum sb_wechat_kind *kind, json_t **contact,
                    char *errstr, size_t errstr_size);

#endif
