/* The event envelope: UUIDv7 ids (RFC 9562, method 1: a 12-bit counter in rand_a
 * keeps ids strictly increasing within a process), RFC 3339 timestamps, encoding
 * and validating decoding. */
#include "sb/event.h"

#include "sb/err.h"
#include "sb/util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uuid_last_ms = -1;
static unsigned uuid_counter;

void sb_uuid7_at(int64_t now_ms, char out[SB_UUID_STRLEN + 1])
{
    unsigned char b[16];
    unsigned char rnd[10];
    char hex[33];
    int64_t ms;
    unsigned ctr;

    if (sb_random_bytes(rnd, sizeof(rnd)) != 0)
        memset(rnd, 0x5a, sizeof(rnd)); /* never reached with a working RNG */
    pthread_mutex_lock(&uuid_lock);
    if (now_ms > uuid_last_ms) {
        uuid_last_ms = now_ms;
        /* Start low in the counter space so that a burst fits in the same ms. */
        uuid_counter = ((unsigned)rnd[0] << 8 | rnd[1]) & 0x1ff;
    } else if (++uuid_counter > 0xfff) {
        /* Counter exhausted (or the clock went back): borrow the next millisecond. */
        uuid_last_ms++;
        uuid_counter = 0;
    }
    ms = uuid_last_ms;
    ctr = uuid_counter;
    pthread_mutex_unlock(&uuid_lock);

    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((ctr >> 8) & 0x0f));
    b[7] = (unsigned char)(ctr & 0xff);
    b[8] = (unsigned char)(0x80 | (rnd[2] & 0x3f));
    memcpy(b + 9, rnd + 3, 7);
    sb_hex(b, 16, hex);
    sb_fmt(out, SB_UUID_STRLEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
           hex + 20);
}

static int hex_val(char c);

void sb_uuid7_derive(int64_t ms, const char *name, char out[SB_UUID_STRLEN + 1])
{
    unsigned char b[16];
    char digest[65], hex[33];

    sb_sha256_join_hex("uuid7", ':', name, digest);
    for (int i = 0; i < 16; i++)
        b[i] = (unsigned char)(hex_val(digest[2 * i]) << 4 | hex_val(digest[2 * i + 1]));
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    sb_hex(b, 16, hex);
    sb_fmt(out, SB_UUID_STRLEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
           hex + 20);
}

void sb_uuid7_new(char out[SB_UUID_STRLEN + 1])
{
    sb_uuid7_at(sb_now_ms(), out);
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

int sb_uuid7_valid(const char *s)
{
    if (s == NULL || strlen(s) != SB_UUID_STRLEN)
        return 0;
    for (int i = 0; i < SB_UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_hex(s[i])) {
            return 0;
        }
    }
    /* Version nibble 7, variant 10xx. */
    return s[14] == '7' && (hex_val(s[19]) & 0xc) == 0x8;
}

int64_t sb_uuid7_time_ms(const char *s)
{
    int64_t ms = 0;

    if (!sb_uuid7_valid(s))
        return -1;
    for (int i = 0; i < 13; i++) {
        if (s[i] == '-')
            continue;
        ms = (ms << 4) | hex_val(s[i]);
    }
    return ms;
}

void sb_trace_id_new(char out[SB_TRACE_ID_STRLEN + 1])
{
    unsigned char b[16];

    if (sb_random_bytes(b, sizeof(b)) != 0)
        memset(b, 0x11, sizeof(b));
    sb_hex(b, sizeof(b), out);
}

int sb_trace_id_valid(const char *s)
{
    int nonzero = 0;

    if (s == NULL || strlen(s) != SB_TRACE_ID_STRLEN)
        return 0;
    for (int i = 0; i < SB_TRACE_ID_STRLEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
        nonzero |= s[i] != '0';
    }
    return nonzero; /* the all-zero id is invalid in W3C trace context */
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sb_time_format_ms(int64_t ms, char out[SB_TIME_STRLEN + 1])
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    sb_fmt(out, SB_TIME_STRLEN + 1, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int sb_time_parse(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, frac = 0, oh, om;
    const char *p;
    int64_t total, offset = 0;

    if (s == NULL || strlen(s) < 20)
        return SB_E_INVAL;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return SB_E_INVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return SB_E_INVAL;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return SB_E_INVAL;
    p = s + 19;
    if (*p == '.') {
        int n = 0, scale = 1;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (n < 3) {
                frac = frac * 10 + (*p - '0');
                n++;
            }
            p++;
        }
        if (n == 0)
            return SB_E_INVAL;
        for (int i = n; i < 3; i++)
            scale *= 10;
        frac *= scale;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return SB_E_INVAL;
        offset = (int64_t)(oh * 60 + om) * 60000 * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return SB_E_INVAL;
    }
    if (*p != '\0')
        return SB_E_INVAL;
    total = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec > 59 ? 59 : sec);
    *ms = total * 1000 + frac - offset;
    return 0;
}

static int valid_type(const char *t)
{
    /* ^[a-z]+(\.[a-z_]+)+$ */
    int dots = 0;
    size_t n = strlen(t);

    if (n == 0 || n >= SB_EVENT_TYPE_MAX || t[0] < 'a' || t[0] > 'z')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '.') {
            if (i + 1 == n || t[i + 1] == '.')
                return 0;
            dots++;
        } else if (!((c >= 'a' && c <= 'z') || (c == '_' && dots > 0))) {
            return 0;
        }
    }
    return dots > 0;
}

int sb_event_init(struct sb_event *ev, const char *type, const char *producer,
                  const char *ticket_id, const char *trace_id, json_t *payload)
{
    int64_t now = sb_now_ms();

    memset(ev, 0, sizeof(*ev));
    if (payload == NULL)
        payload = json_object();
    ev->payload = payload;
    if (!valid_type(type) || producer == NULL || producer[0] == '\0' ||
        strlen(producer) >= SB_EVENT_PRODUCER_MAX ||
        (ticket_id != NULL && strlen(ticket_id) >= SB_TICKET_ID_MAX) ||
        (trace_id != NULL && !sb_trace_id_valid(trace_id)) || !json_is_object(payload))
        return SB_E_INVAL;
    sb_uuid7_at(now, ev->event_id);
    sb_strlcpy(ev->type, type, sizeof(ev->type));
    ev->occurred_ms = now;
    sb_time_format_ms(now, ev->occurred_at);
    sb_strlcpy(ev->producer, producer, sizeof(ev->producer));
    ev->schema = 1;
    if (ticket_id != NULL)
        sb_strlcpy(ev->ticket_id, ticket_id, sizeof(ev->ticket_id));
    if (trace_id != NULL)
        sb_strlcpy(ev->trace_id, trace_id, sizeof(ev->trace_id));
    else
        sb_trace_id_new(ev->trace_id);
    return 0;
}

void sb_event_clear(struct sb_event *ev)
{
    json_decref(ev->payload);
    ev->payload = NULL;
}

json_t *sb_event_to_json(const struct sb_event *ev)
{
    json_t *o = json_object();

    json_object_set_new(o, "event_id", json_string(ev->event_id));
    json_object_set_new(o, "type", json_string(ev->type));
    json_object_set_new(o, "occurred_at", json_string(ev->occurred_at));
    json_object_set_new(o, "producer", json_string(ev->producer));
    json_object_set_new(o, "schema", json_integer(ev->schema));
    if (ev->ticket_id[0] != '\0')
        json_object_set_new(o, "ticket_id", json_string(ev->ticket_id));
    json_object_set_new(o, "trace_id", json_string(ev->trace_id));
    json_object_set(o, "payload", ev->payload ? ev->payload : json_object());
    return o;
}

char *sb_event_encode(const struct sb_event *ev, size_t *len)
{
    json_t *o = sb_event_to_json(ev);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(o);
    if (s == NULL) /* only on out-of-memory or invalid UTF-8 smuggled in with _nocheck */
        return NULL;
    if (len != NULL)
        *len = strlen(s);
    return s;
}

/* Copies a required string member into dst; reports the field on failure. */
static int take_string(json_t *root, const char *field, char *dst, size_t dstsz, int required,
                       char *errstr, size_t errstr_size)
{
    json_t *j = json_object_get(root, field);

    if (j == NULL || json_is_null(j)) {
        if (!required)
            return 0;
        sb_fmt(errstr, errstr_size, "field \"%s\": missing", field);
        return SB_E_INVAL;
    }
    if (!json_is_string(j) || json_string_length(j) == 0 || json_string_length(j) >= dstsz) {
        sb_fmt(errstr, errstr_size, "field \"%s\": expected a string of 1..%zu bytes", field,
               dstsz - 1);
        return SB_E_INVAL;
    }
    sb_strlcpy(dst, json_string_value(j), dstsz);
    return 0;
}

int sb_event_decode(const char *buf, size_t len, struct sb_event *ev, char *errstr,
                    size_t errstr_size)
{
    static const char *const known[] = {"event_id", "type",      "occurred_at", "producer",
                                        "schema",   "ticket_id", "trace_id",    "payload"};
    json_error_t jerr;
    json_t *root = NULL;
    json_t *j;
    const char *k;
    int rc = SB_E_INVAL;

    memset(ev, 0, sizeof(*ev));
    if (len > SB_EVENT_MAX_BYTES) {
        sb_fmt(errstr, errstr_size, "event larger than %d bytes", SB_EVENT_MAX_BYTES);
        return SB_E_TOOBIG;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        sb_fmt(errstr, errstr_size, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
        rc = SB_E_PARSE;
        goto out;
    }
    if (!json_is_object(root)) {
        sb_fmt(errstr, errstr_size, "event must be a JSON object");
        rc = SB_E_PARSE;
        goto out;
    }
    json_object_foreach(root, k, j)
    {
        size_t i;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strcmp(k, known[i]) == 0)
                break;
        }
        if (i == sizeof(known) / sizeof(known[0])) {
            sb_fmt(errstr, errstr_size, "field \"%.64s\": not part of the envelope", k);
            goto out;
        }
    }
    if (take_string(root, "event_id", ev->event_id, sizeof(ev->event_id), 1, errstr, errstr_size) ||
        take_string(root, "type", ev->type, sizeof(ev->type), 1, errstr, errstr_size) ||
        take_string(root, "occurred_at", ev->occurred_at, sizeof(ev->occurred_at), 1, errstr,
                    errstr_size) ||
        take_string(root, "producer", ev->producer, sizeof(ev->producer), 1, errstr, errstr_size) ||
        take_string(root, "ticket_id", ev->ticket_id, sizeof(ev->ticket_id), 0, errstr,
                    errstr_size) ||
        take_string(root, "trace_id", ev->trace_id, sizeof(ev->trace_id), 1, errstr, errstr_size))
        goto out;
    if (!sb_uuid7_valid(ev->event_id)) {
        sb_fmt(errstr, errstr_size, "field \"event_id\": not a UUIDv7");
        goto out;
    }
    if (!valid_type(ev->type)) {
        sb_fmt(errstr, errstr_size, "field \"type\": not an event type");
        goto out;
    }
    if (sb_time_parse(ev->occurred_at, &ev->occurred_ms) != 0) {
        sb_fmt(errstr, errstr_size, "field \"occurred_at\": not an RFC 3339 time");
        goto out;
    }
    if (!sb_trace_id_valid(ev->trace_id)) {
        sb_fmt(errstr, errstr_size, "field \"trace_id\": not 32 lowercase hex digits");
        goto out;
    }
    j = json_object_get(root, "schema");
    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > 1000) {
        sb_fmt(errstr, errstr_size, "field \"schema\": expected a positive integer");
        goto out;
    }
    ev->schema = (int)json_integer_value(j);
    j = json_object_get(root, "payload");
    if (!json_is_object(j)) {
        sb_fmt(errstr, errstr_size, "field \"payload\": expected an object");
        goto out;
    }
    ev->payload = json_incref(j);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
