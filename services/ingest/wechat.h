/* The WeChat official-account channel: the server signature (SHA-1 of the sorted
 * token, timestamp and nonce, WeChat's own scheme) and the plaintext XML push messages
 * (text, image, voice with speech recognition, video, short video, location, link and
 * events), mapped to the generic contact of POST /v1/contacts. Pure logic: no I/O, no
 * shared state; every function may be called from any thread. */
#ifndef SB_INGEST_WECHAT_H
#define SB_INGEST_WECHAT_H

#include <jansson.h>
#include <stddef.h>

/* The plain-text answer WeChat expects to a push that needs no passive reply: anything
 * else (or no answer within 5 s) makes WeChat retry and tell the customer the account
 * is unavailable. The handler sends it for SB_WECHAT_IGNORE pushes too. */
#define SB_WECHAT_REPLY "success"

/* Largest push body accepted (bytes). */
#define SB_WECHAT_MAX_BYTES (64 * 1024)
/* Largest text of one element, CDATA included (bytes, after decoding). */
#define SB_WECHAT_TEXT_MAX (16 * 1024)
/* Deepest element nesting accepted; the <xml> root is level 1. */
#define SB_WECHAT_DEPTH_MAX 8
/* Longest token, timestamp or nonce accepted by the signature check (bytes). */
#define SB_WECHAT_PARAM_MAX 128

enum sb_wechat_kind {
    SB_WECHAT_CONTACT, /* a customer message, or an event worth a ticket */
    SB_WECHAT_IGNORE,  /* acknowledged and dropped: unsubscribe, VIEW, LOCATION reports… */
};

/* Writes into out the lowercase hex SHA-1 (40 characters and a NUL) of the
 * concatenation of token, timestamp and nonce sorted bytewise, as WeChat computes the
 * signature query parameter. Writes an empty string when a parameter is NULL, empty or
 * longer than SB_WECHAT_PARAM_MAX bytes. Used by the check below, by tests and tools. */
void sb_wechat_signature(const char *token, const char *timestamp, const char *nonce, char out[41]);

/* Returns 1 when signature is the signature of token, timestamp and nonce, compared in
 * constant time; 0 otherwise, and also when a parameter is NULL, empty or longer than
 * SB_WECHAT_PARAM_MAX bytes (an unset token never verifies). Only the 40 lowercase hex
 * digits WeChat sends are accepted: uppercase, padded or truncated hex is refused. The
 * freshness of timestamp is the caller's check. */
int sb_wechat_signature_ok(const char *token, const char *timestamp, const char *nonce,
                           const char *signature);

/* Parses one plaintext (or compatible-mode) push of len bytes; xml (borrowed) need not
 * be NUL-terminated. On success returns 0 and sets *kind:
 *  - SB_WECHAT_CONTACT, *contact a new reference: the messages text, image, voice,
 *    video, shortvideo, location, link (and a message type newer than this parser) and
 *    the events subscribe, SCAN and CLICK;
 *  - SB_WECHAT_IGNORE, *contact NULL: the events unsubscribe, VIEW, LOCATION (periodic
 *    location report), TEMPLATESENDJOBFINISH and any other event. A malformed push is
 *    refused, never ignored.
 * The contact has the shape of the generic contact of POST /v1/contacts:
 *    {"channel":"wechat", "external_id": MsgId, or "<FromUserName>:<CreateTime>:<Event>"
 *     for events (they have no MsgId), "customer":{"wechat_openid": FromUserName},
 *     "body", "sent_at": CreateTime as RFC 3339 UTC with milliseconds,
 *     "attachments":[{"name": MediaId, "type": "image" | "voice/<Format>" | "video",
 *     "size": 0}] (media with a MediaId only), "metadata":{"msg_type", "to_user", and
 *     when present "event", "event_key", "ticket", "media_id", "thumb_media_id",
 *     "pic_url", "format", "voice_recognized" (voice only), "location_x", "location_y",
 *     "scale", "label", "title", "description", "url"}}
 * with body: text: Content; voice: Recognition, or "[voice]" without one; image:
 * "[image]"; video and shortvideo: "[video]"; location: "[location] <Label> (<x>,<y>)";
 * link: "[link] <Title> <Url>"; subscribe: "[subscribe]"; SCAN: "[scan] <EventKey>";
 * CLICK: "[click] <EventKey>"; a newer type: "[<MsgType>]".
 * On failure *contact is NULL and returns SB_E_INVAL, or SB_E_TOOBIG for a size limit,
 * with errstr naming the field (`field "FromUserName": missing`, "body" for the
 * document as a whole); a 256-byte errstr holds any message. Refused: more than
 * SB_WECHAT_MAX_BYTES, malformed XML or UTF-8, any DTD (so no entity beyond the XML
 * built-ins), nesting deeper than SB_WECHAT_DEPTH_MAX, element text over
 * SB_WECHAT_TEXT_MAX (or a smaller cap per field), a repeated field, a missing
 * ToUserName, FromUserName, CreateTime (unix seconds), MsgType, or MsgId on a message,
 * and encrypted (safe-mode) pushes. */
int sb_wechat_parse(const char *xml, size_t len, enum sb_wechat_kind *kind, json_t **contact,
                    char *errstr, size_t errstr_size);

#endif
