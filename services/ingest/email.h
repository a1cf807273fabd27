/* The email channel: a raw RFC 5322 message parsed with GMime into the generic contact
 * of POST /v1/contacts (identity from Reply-To or From, subject, Message-ID, threading
 * headers, text preferred over HTML, every charset decoded to UTF-8, attachments as
 * metadata, quoted reply history trimmed). Pure logic: no network, no Kafka. */
#ifndef SB_INGEST_EMAIL_H
#define SB_INGEST_EMAIL_H

#include <jansson.h>
#include <stddef.h>

/* Largest raw message accepted (bytes); larger ones are refused with SB_E_TOOBIG. */
#define SB_EMAIL_MAX_BYTES (10 * 1024 * 1024)
/* Longest body kept (bytes of UTF-8); longer ones are cut on a character boundary and
 * flagged metadata.truncated. */
#define SB_EMAIL_MAX_BODY (256 * 1024)
/* Deepest MIME nesting accepted (multiparts around a leaf part). */
#define SB_EMAIL_MAX_DEPTH 16
/* Most attachments described; later ones are counted in metadata.attachments_omitted. */
#define SB_EMAIL_MAX_ATTACHMENTS 100
/* Most MIME parts in one message, and most header fields and header bytes over all
 * header blocks: GMime builds an object per part and per field, so these bound its
 * memory before it runs (SB_E_TOOBIG past them). */
#define SB_EMAIL_MAX_PARTS 1000
#define SB_EMAIL_MAX_HEADER_FIELDS 10000
#define SB_EMAIL_MAX_HEADER_BYTES (1024 * 1024)

/* Initialises GMime (g_mime_init). Call once before the first parse; later calls do
 * nothing. Safe to call from any thread. */
void sb_email_global_init(void);

/* Parses the raw message raw (len bytes, not NUL-terminated, borrowed) into a contact
 * (*contact: new reference, NULL on failure) shaped like the body of POST /v1/contacts:
 *   {"channel":"email", "external_id":<Message-ID without brackets>,
 *    "customer":{"email":<Reply-To, else From, lowercased>, "name":<its display name>},
 *    "subject", "body", "sent_at":<Date in UTC, RFC 3339 with ms>,
 *    "attachments":[{"name","type","size"}], "in_reply_to", "references":[…],
 *    "metadata":{"from", "reply_to", "html_only", "charset", "truncated", …}}
 * Keys whose header or content is absent are omitted, never invented: no Message-ID
 * gives no external_id, a message without any text gives no body (and
 * metadata.empty_body). Every string is valid UTF-8.
 * Returns 0, SB_E_TOOBIG (message, header or part count over a limit) or SB_E_INVAL
 * (no usable sender, nesting too deep, not a message), with errstr naming the problem
 * (e.g. `field "from": missing`). Thread-safe after sb_email_global_init(). */
int sb_email_parse(const char *raw, size_t len, json_t **contact, char *errstr, size_t errstr_size);

/* Cuts quoted reply history from the UTF-8 text text (NUL-terminated, modified in
 * place): everything from the first reply header ("On … wrote:", "在 … 写道：",
 * "-----Original Message-----", "-----原始邮件-----", an Outlook "From:"/"Sent:" block,
 * "发件人:") on, and every line starting with '>'. Runs of blank lines left behind are
 * collapsed, leading blank lines and trailing whitespace removed. When nothing but
 * quoted text remains, the text is kept whole (only trimmed). Thread-safe. */
void sb_email_trim_quoted(char *text);

#endif
