/* The email channel: a raw RFC 5322 message parsed with GMime into the generic
 * contact (identity from Reply-To or From, subject, Message-ID, threading headers,
 * text preferred over HTML, every charset decoded to UTF-8, attachments as metadata,
 * quoted reply history trimmed). Pure logic: no I/O. */
#ifndef SB_INGEST_EMAIL_H
#define SB_INGEST_EMAIL_H

#include <jansson.h>
#include <stddef.h>

/* Largest raw message accepted. */
#define SB_EMAIL_MAX_BYTES (10 * 1024 * 1024)
/* Longest body kept (bytes of UTF-8); longer ones are cut and flagged truncated. */
#define SB_EMAIL_MAX_BODY (256 * 1024)

/* Initialises GMime; call once before any parse. */
void sb_email_global_init(void);

/* Parses raw into a contact (*contact: new reference) shaped like the body of
 * POST /v1/contacts, with channel "email". Absent headers stay absent. Returns 0, or
 * SB_E_INVAL / SB_E_TOOBIG with errstr naming the problem. Thread-safe after init. */
int sb_email_parse(const char *raw, size_t len, json_t **contact, char *errstr, size_t errstr_size);

/* Cuts quoted reply history from a UTF-8 text in place ("On … wrote:", "在…写道：",
 * "-----Original Message-----", Outlook "From:/Sent:" blocks, "> " lines) and trims
 * trailing whitespace. Exposed for tests. */
void sb_email_trim_quoted(char *text);

#endif
