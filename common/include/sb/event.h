/* The event envelope carried on every topic (DESIGN.md "Contracts"): UUIDv7 ids,
 * RFC 3339 millisecond timestamps, encode/decode and validation of required fields.
 * Schemas: proto/events/. Pure logic: no I/O. */
#ifndef SB_EVENT_H
#define SB_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SB_UUID_STRLEN 36
#define SB_TRACE_ID_STRLEN 32
#define SB_EVENT_TYPE_MAX 64
#define SB_EVENT_PRODUCER_MAX 64
#define SB_TICKET_ID_MAX 64
#define SB_TIME_STRLEN 30

/* Largest event accepted by sb_event_decode (bytes). */
#define SB_EVENT_MAX_BYTES (1024 * 1024)

struct sb_event {
    char event_id[SB_UUID_STRLEN + 1];
    char type[SB_EVENT_TYPE_MAX];
    char occurred_at[SB_TIME_STRLEN + 1];
    int64_t occurred_ms; /* occurred_at as milliseconds since the epoch */
    char producer[SB_EVENT_PRODUCER_MAX];
    int schema;
    char ticket_id[SB_TICKET_ID_MAX]; /* "" when the event has none */
    char trace_id[SB_TRACE_ID_STRLEN + 1];
    json_t *payload; /* owned; an object */
};

/* Writes a new UUIDv7 (RFC 9562) for the time now_ms into out (37 bytes).
 * Ids made by one process are strictly increasing, also within one millisecond
 * and when the wall clock steps back (a 12-bit counter and the last timestamp
 * carry order). Thread-safe. */
void sb_uuid7_at(int64_t now_ms, char out[SB_UUID_STRLEN + 1]);
void sb_uuid7_new(char out[SB_UUID_STRLEN + 1]);
/* Writes the UUIDv7 that name (any string) always derives to, with time ms: a stage
 * that makes an event from another one derives its id from the source event's id, so
 * that a message handled twice produces the same event id (and consumers drop the
 * copy). */
void sb_uuid7_derive(int64_t ms, const char *name, char out[SB_UUID_STRLEN + 1]);
/* Returns 1 when s is a well-formed UUIDv7 string (lowercase or uppercase hex). */
int sb_uuid7_valid(const char *s);
/* Milliseconds timestamp of a UUIDv7 (its first 48 bits); -1 when invalid. */
int64_t sb_uuid7_time_ms(const char *s);

/* Writes a new random W3C-style trace id (32 lowercase hex) into out. */
void sb_trace_id_new(char out[SB_TRACE_ID_STRLEN + 1]);
int sb_trace_id_valid(const char *s);

/* Formats ms since the epoch as "2024-05-20T14:00:00.123Z" (UTC). */
void sb_time_format_ms(int64_t ms, char out[SB_TIME_STRLEN + 1]);
/* Parses RFC 3339 ("…T…Z" or "…+08:00", optional fraction) into ms since the epoch.
 * Returns 0 or SB_E_INVAL. */
int sb_time_parse(const char *s, int64_t *ms);

/* Initialises ev as a new event: fresh event_id, occurred_at = now, schema 1.
 * ticket_id and trace_id may be NULL (a new trace id is made). Takes ownership
 * of payload (NULL: an empty object). Returns 0 or SB_E_INVAL for bad strings. */
int sb_event_init(struct sb_event *ev, const char *type, const char *producer,
                  const char *ticket_id, const char *trace_id, json_t *payload);
/* Releases the payload; the struct itself belongs to the caller. */
void sb_event_clear(struct sb_event *ev);

/* Encodes ev as compact JSON. Returns a new string (free()) and its length. */
char *sb_event_encode(const struct sb_event *ev, size_t *len);
/* Builds the envelope as a new JSON object (payload is referenced, not copied). */
json_t *sb_event_to_json(const struct sb_event *ev);

/* Decodes and validates an envelope (required fields, formats, payload object,
 * no unknown envelope keys, no duplicate keys, size cap). On success ev owns its
 * payload. Returns 0, SB_E_PARSE (not a JSON object), SB_E_TOOBIG, or SB_E_INVAL (an
 * envelope field missing or malformed) with errstr naming the field. */
int sb_event_decode(const char *buf, size_t len, struct sb_event *ev, char *errstr,
                    size_t errstr_size);

#endif
