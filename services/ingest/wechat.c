/* WeChat official-account pushes and signatures (see wechat.h).
 *
 * A push is a flat document: <xml> and one level of elements whose text, CDATA or not,
 * is the value. expat reads it as a stream; only the elements this file knows are kept,
 * each with its own size cap, and nothing deeper than the first level is kept at all.
 * The input is checked as UTF-8 before expat sees it, so that a bad byte is reported as
 * such, with the element it sits in. Any DTD stops the parse at "<!DOCTYPE": without a
 * DTD no entity can be declared, so only the five XML built-ins and character
 * references expand, and nothing can grow (billion laughs) or be fetched (XXE). The
 * billion-laughs limits of expat >= 2.4 are then never reached; they are not set
 * because their declarations depend on how the library was built (XML_DTD).
 *
 * Signature scheme and message formats: WeChat Official Accounts Platform
 * documentation, "Access overview" (server verification) and "Receiving standard
 * messages" / "Receiving event pushes". */
#include "wechat.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/util.h"

#include <assert.h>
#include <expat.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most elements in one push: real ones have about ten. */
#define ELEMENTS_MAX 256
/* Bytes of an element name quoted in an error message. */
#define NAME_SHOWN 64
/* Latest CreateTime accepted: 2100-01-01T00:00:00Z. */
#define CREATE_TIME_MAX INT64_C(4102444800)

/* The elements kept; every other one is skipped. */
enum field_id {
    F_TO,
    F_FROM,
    F_CREATE,
    F_TYPE,
    F_MSGID,
    F_CONTENT,
    F_PICURL,
    F_MEDIA,
    F_FORMAT,
    F_RECOGNITION,
    F_THUMB,
    F_LOC_X,
    F_LOC_Y,
    F_SCALE,
    F_LABEL,
    F_TITLE,
    F_DESCRIPTION,
    F_URL,
    F_EVENT,
    F_EVENTKEY,
    F_TICKET,
    F_ENCRYPT,
    F_COUNT
};

/* Element names and caps in bytes. The caps keep every metadata object of a contact
 * well under the default metadata limit of the contact (16 KiB) and every attachment
 * name under its 255 bytes. */
static const struct field_def {
    const char *name;
    size_t max;
} field_defs[F_COUNT] = {
    [F_TO] = {"ToUserName", 128},
    [F_FROM] = {"FromUserName", 128},
    [F_CREATE] = {"CreateTime", 20},
    [F_TYPE] = {"MsgType", 32},
    [F_MSGID] = {"MsgId", 20},
    [F_CONTENT] = {"Content", SB_WECHAT_TEXT_MAX},
    [F_PICURL] = {"PicUrl", 2048},
    [F_MEDIA] = {"MediaId", 255},
    [F_FORMAT] = {"Format", 16},
    [F_RECOGNITION] = {"Recognition", SB_WECHAT_TEXT_MAX},
    [F_THUMB] = {"ThumbMediaId", 255},
    [F_LOC_X] = {"Location_X", 32},
    [F_LOC_Y] = {"Location_Y", 32},
    [F_SCALE] = {"Scale", 16},
    [F_LABEL] = {"Label", 1024},
    [F_TITLE] = {"Title", 1024},
    [F_DESCRIPTION] = {"Description", 2048},
    [F_URL] = {"Url", 2048},
    [F_EVENT] = {"Event", 64},
    [F_EVENTKEY] = {"EventKey", 2048},
    [F_TICKET] = {"Ticket", 255},
    [F_ENCRYPT] = {"Encrypt", SB_WECHAT_TEXT_MAX},
};

/* ---- signature ---------------------------------------------------------------- */

static int param_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && strnlen(s, SB_WECHAT_PARAM_MAX + 1) <= SB_WECHAT_PARAM_MAX;
}

void sb_wechat_signature(const char *token, const char *timestamp, const char *nonce, char out[41])
{
    const char *parts[3] = {token, timestamp, nonce};
    char joined[3 * SB_WECHAT_PARAM_MAX];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    size_t n = 0;

    out[0] = '\0';
    if (!param_ok(token) || !param_ok(timestamp) || !param_ok(nonce))
        return;
    /* Insertion sort of three, bytewise like WeChat's sort(SORT_STRING). */
    for (int i = 1; i < 3; i++) {
        for (int j = i; j > 0 && strcmp(parts[j - 1], parts[j]) > 0; j--) {
            const char *t = parts[j];
            parts[j] = parts[j - 1];
            parts[j - 1] = t;
        }
    }
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        memcpy(joined + n, parts[i], l);
        n += l;
    }
    if (EVP_Digest(joined, n, digest, &digest_len, EVP_sha1(), NULL) != 1 || digest_len != 20)
        return;
    sb_hex(digest, digest_len, out);
}

int sb_wechat_signature_ok(const char *token, const char *timestamp, const char *nonce,
                           const char *signature)
{
    char expected[41];

    if (!param_ok(token) || !param_ok(timestamp) || !param_ok(nonce) || signature == NULL ||
        strnlen(signature, 41) != 40)
        return 0;
    /* The shape of signature is no secret: refuse anything but lowercase hex early. */
    for (int i = 0; i < 40; i++) {
        char ch = signature[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return 0;
    }
    sb_wechat_signature(token, timestamp, nonce, expected);
    if (expected[0] == '\0')
        return 0;
    return CRYPTO_memcmp(expected, signature, 40) == 0;
}

/* ---- parsing ------------------------------------------------------------------ */

struct doc {
    XML_Parser parser;
    int parsing;           /* inside XML_Parse: errors also stop the parser */
    int depth;             /* of the current element; <xml> is 1 */
    int elements;          /* start tags seen */
    int field;             /* field_id of the open first-level element, or -1 */
    size_t open_len;       /* text bytes under the open first-level element */
    char open[NAME_SHOWN]; /* its name (cut), for errors; "" when none is open */
    char *text[F_COUNT];   /* collected text, NUL-terminated, or NULL */
    size_t len[F_COUNT];   /* bytes in text */
    size_t cap[F_COUNT];   /* bytes allocated for text */
    unsigned char seen[F_COUNT];
    int rc; /* 0, or the first error */
    char *errstr;
    size_t errstr_size;
};

/* Copies the UTF-8 name into dst (dstsz bytes), cut at a character boundary. */
static void cut_name(char *dst, size_t dstsz, const char *name)
{
    size_t n = strnlen(name, dstsz);

    if (n >= dstsz) {
        n = dstsz - 1;
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, name, n);
    dst[n] = '\0';
}

/* Records the first error (`field "<field>": <message>`) and stops a running parse.
 * Returns rc so that callers can return it. */
static int set_error(struct doc *d, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_error(struct doc *d, int rc, const char *field, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    assert(rc < 0);
    if (d->rc != 0)
        return d->rc;
    d->rc = rc;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->errstr != NULL && d->errstr_size > 0)
        sb_fmt(d->errstr, d->errstr_size, "field \"%s\": %s", field, msg);
    if (d->parsing)
        XML_StopParser(d->parser, XML_FALSE);
    return rc;
}

/* The field an error inside the document is about: the open element, or "body". */
static const char *where(const struct doc *d)
{
    return d->depth >= 2 && d->open[0] != '\0' ? d->open : "body";
}

static int lookup(const char *name)
{
    for (int i = 0; i < F_COUNT; i++) {
        if (strcmp(field_defs[i].name, name) == 0)
            return i;
    }
    return -1;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct doc *d = ud;
    char shown[NAME_SHOWN];

    (void)attrs;
    if (d->rc != 0)
        return;
    d->depth++;
    if (++d->elements > ELEMENTS_MAX) {
        set_error(d, SB_E_TOOBIG, "body", "more than %d elements", ELEMENTS_MAX);
        return;
    }
    if (d->depth == 1) {
        if (strcmp(name, "xml") != 0) {
            cut_name(shown, sizeof(shown), name);
            set_error(d, SB_E_INVAL, "body", "the root element must be <xml>, not <%s>", shown);
        }
        return;
    }
    if (d->depth == 2) {
        d->field = lookup(name);
        d->open_len = 0;
        cut_name(d->open, sizeof(d->open), name);
        if (d->field >= 0 && d->seen[d->field])
            set_error(d, SB_E_INVAL, d->open, "appears more than once");
        else if (d->field >= 0)
            d->seen[d->field] = 1;
        return;
    }
    if (d->field >= 0)
        set_error(d, SB_E_INVAL, d->open, "must be text, not elements");
    else if (d->depth > SB_WECHAT_DEPTH_MAX)
        set_error(d, SB_E_INVAL, d->open, "nested deeper than %d elements", SB_WECHAT_DEPTH_MAX);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct doc *d = ud;

    (void)name;
    if (d->rc != 0)
        return;
    if (d->depth == 2) {
        d->field = -1;
        d->open[0] = '\0';
    }
    d->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct doc *d = ud;
    size_t n = (size_t)len, max;
    int f = d->field;

    if (d->rc != 0 || d->depth < 2 || len <= 0)
        return;
    d->open_len += n;
    max = f >= 0 ? field_defs[f].max : SB_WECHAT_TEXT_MAX;
    if (d->open_len > max) {
        set_error(d, SB_E_TOOBIG, d->open, "longer than %zu bytes", max);
        return;
    }
    if (f < 0)
        return;
    /* A known field has no child elements (on_start), so this is its own text. */
    if (d->len[f] + n + 1 > d->cap[f]) {
        size_t cap = d->cap[f] ? d->cap[f] : 64;
        while (cap < d->len[f] + n + 1)
            cap *= 2;
        d->text[f] = sb_realloc(d->text[f], cap);
        d->cap[f] = cap;
    }
    memcpy(d->text[f] + d->len[f], s, n);
    d->len[f] += n;
    d->text[f][d->len[f]] = '\0';
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    set_error(ud, SB_E_INVAL, "body", "a DTD (<!DOCTYPE>) is not accepted");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_len;
    (void)base;
    (void)sysid;
    (void)pubid;
    (void)notation;
    set_error(ud, SB_E_INVAL, "body", "entity declarations are not accepted");
}

/* Length of the longest prefix of s that is well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF); n when all of it is. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i], lo = 0x80, hi = 0xBF;
        size_t k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return i;
        }
        if (n - i - 1 < k || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t j = 2; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return i;
        }
        i += k + 1;
    }
    return n;
}

/* The text of field f, or NULL when it is absent or empty. */
static const char *val(const struct doc *d, enum field_id f)
{
    return d->len[f] > 0 ? d->text[f] : NULL;
}

static int require(struct doc *d, enum field_id f)
{
    if (val(d, f) == NULL)
        return set_error(d, SB_E_INVAL, field_defs[f].name, "missing");
    return 0;
}

/* 1 when s is made of ASCII letters, digits and the characters of extra only. */
static int all_of(const char *s, const char *extra)
{
    for (; *s != '\0'; s++) {
        char ch = *s;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (extra[0] != '\0' && strchr(extra, ch) != NULL)))
            return 0;
    }
    return 1;
}

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    return 1;
}

/* 1 for a plain decimal such as "-113.358803". */
static int is_decimal(const char *s)
{
    const char *p = s;

    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* Parses CreateTime: unix seconds, digits only, 1 .. CREATE_TIME_MAX. */
static int parse_unix_time(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (!all_digits(s))
        return -1;
    for (; *s != '\0'; s++) {
        v = v * 10 + (*s - '0');
        if (v > CREATE_TIME_MAX)
            return -1;
    }
    if (v < 1)
        return -1;
    *out = v;
    return 0;
}

/* Returns a new string: the concatenation of the strings up to the NULL. */
static char *cat(const char *first, ...) __attribute__((sentinel));

static char *cat(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    char *out, *p;

    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
        n += strlen(s);
    va_end(ap);
    out = p = sb_malloc(n + 1);
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *)) {
        size_t l = strlen(s);
        memcpy(p, s, l);
        p += l;
    }
    va_end(ap);
    *p = '\0';
    return out;
}

/* Sets o[key] to s; returns -1 when jansson refuses the text (it is never expected to:
 * the input is valid UTF-8 and XML excludes NUL). */
static int put(json_t *o, const char *key, const char *s)
{
    json_t *j = json_string(s);

    if (j == NULL)
        return -1;
    return json_object_set_new(o, key, j);
}

/* Sets o[key] to field f when it is present. */
static int put_field(json_t *o, const char *key, const struct doc *d, enum field_id f)
{
    return val(d, f) != NULL ? put(o, key, val(d, f)) : 0;
}

/* The events worth a contact: subscribe is a first contact (often followed by a
 * question, and a scene such as qrscene_<store> says where from), CLICK is a menu
 * request ("talk to an agent"), SCAN a QR code scanned by a follower. unsubscribe, VIEW
 * (a menu link opened), LOCATION (the periodic location report), TEMPLATESENDJOBFINISH
 * and anything unknown carry nothing to answer: acknowledged and dropped. */
static int event_is_contact(const char *event)
{
    return strcmp(event, "subscribe") == 0 || strcmp(event, "SCAN") == 0 ||
           strcmp(event, "CLICK") == 0;
}

/* Builds the body of an event and fills meta. Returns the new body, or NULL. */
static char *event_body(struct doc *d, const char *event, json_t *meta)
{
    const char *key = val(d, F_EVENTKEY);

    if (put(meta, "event", event) != 0 || put_field(meta, "event_key", d, F_EVENTKEY) != 0 ||
        put_field(meta, "ticket", d, F_TICKET) != 0) {
        set_error(d, SB_E_INVAL, "Event", "not valid UTF-8 text");
        return NULL;
    }
    if (strcmp(event, "subscribe") == 0)
        return sb_strdup("[subscribe]");
    if (strcmp(event, "SCAN") == 0)
        return key != NULL ? cat("[scan] ", key, NULL) : sb_strdup("[scan]");
    return key != NULL ? cat("[click] ", key, NULL) : sb_strdup("[click]");
}

/* Builds the body of a message of type type, fills meta and, for media, *attachment.
 * Returns the new body, or NULL with the error set. */
static char *message_body(struct doc *d, const char *type, json_t *meta, json_t **attachment)
{
    const char *media = val(d, F_MEDIA);
    char *body = NULL, *media_type = NULL;
    int bad = 0;

    if (strcmp(type, "text") == 0) {
        if (require(d, F_CONTENT) != 0)
            return NULL;
        body = sb_strdup(val(d, F_CONTENT));
    } else if (strcmp(type, "image") == 0) {
        bad |= put_field(meta, "pic_url", d, F_PICURL);
        media_type = sb_strdup("image");
        body = sb_strdup("[image]");
    } else if (strcmp(type, "voice") == 0) {
        const char *format = val(d, F_FORMAT), *rec = val(d, F_RECOGNITION);
        if (format != NULL && !all_of(format, "")) {
            set_error(d, SB_E_INVAL, "Format", "not an audio format name");
            return NULL;
        }
        bad |= put_field(meta, "format", d, F_FORMAT);
        bad |= json_object_set_new(meta, "voice_recognized", json_boolean(rec != NULL));
        media_type = format != NULL ? cat("voice/", format, NULL) : sb_strdup("voice");
        body = rec != NULL ? sb_strdup(rec) : sb_strdup("[voice]");
    } else if (strcmp(type, "video") == 0 || strcmp(type, "shortvideo") == 0) {
        bad |= put_field(meta, "thumb_media_id", d, F_THUMB);
        media_type = sb_strdup("video");
        body = sb_strdup("[video]");
    } else if (strcmp(type, "location") == 0) {
        const char *x = val(d, F_LOC_X), *y = val(d, F_LOC_Y), *label = val(d, F_LABEL);
        const char *scale = val(d, F_SCALE);
        if (require(d, F_LOC_X) != 0 || require(d, F_LOC_Y) != 0)
            return NULL;
        if (!is_decimal(x) || !is_decimal(y)) {
            set_error(d, SB_E_INVAL, is_decimal(x) ? "Location_Y" : "Location_X",
                      "not a decimal coordinate");
            return NULL;
        }
        if (scale != NULL && !all_digits(scale)) {
            set_error(d, SB_E_INVAL, "Scale", "not an integer");
            return NULL;
        }
        bad |= put(meta, "location_x", x) | put(meta, "location_y", y);
        bad |= put_field(meta, "scale", d, F_SCALE) | put_field(meta, "label", d, F_LABEL);
        body = label != NULL ? cat("[location] ", label, " (", x, ",", y, ")", NULL)
                             : cat("[location] (", x, ",", y, ")", NULL);
    } else if (strcmp(type, "link") == 0) {
        const char *title = val(d, F_TITLE), *url = val(d, F_URL);
        bad |=
            put_field(meta, "title", d, F_TITLE) | put_field(meta, "description", d, F_DESCRIPTION);
        bad |= put_field(meta, "url", d, F_URL);
        body = cat("[link]", title ? " " : "", title ? title : "", url ? " " : "", url ? url : "",
                   NULL);
    } else {
        /* A message type newer than this file: still a customer contact. */
        body = cat("[", type, "]", NULL);
    }
    if (media != NULL && media_type != NULL) {
        bad |= put(meta, "media_id", media);
        *attachment = json_object();
        bad |= put(*attachment, "name", media) | put(*attachment, "type", media_type);
        bad |= json_object_set_new(*attachment, "size", json_integer(0));
    }
    free(media_type);
    if (bad != 0) {
        free(body);
        set_error(d, SB_E_INVAL, "body", "text is not valid UTF-8");
        return NULL;
    }
    return body;
}

/* Checks the fields every push has, then builds the contact (or decides to ignore the
 * push). Returns 0 or the error. */
static int map(struct doc *d, enum sb_wechat_kind *kind, json_t **contact)
{
    const char *from, *type, *event = NULL;
    char created_s[24], sent_at[SB_TIME_STRLEN + 1];
    char *external_id = NULL, *body = NULL;
    json_t *c = NULL, *meta = NULL, *attachment = NULL;
    int64_t created;

    if (val(d, F_ENCRYPT) != NULL && val(d, F_FROM) == NULL)
        return set_error(d, SB_E_INVAL, "Encrypt",
                         "encrypted (safe-mode) pushes are not supported: set the account to "
                         "plaintext or compatible mode");
    if (require(d, F_TO) != 0 || require(d, F_FROM) != 0 || require(d, F_CREATE) != 0 ||
        require(d, F_TYPE) != 0)
        return d->rc;
    from = val(d, F_FROM);
    type = val(d, F_TYPE);
    if (!all_of(val(d, F_TO), "_-"))
        return set_error(d, SB_E_INVAL, "ToUserName", "not an account id");
    if (!all_of(from, "_-"))
        return set_error(d, SB_E_INVAL, "FromUserName", "not an OpenID");
    if (parse_unix_time(val(d, F_CREATE), &created) != 0)
        return set_error(d, SB_E_INVAL, "CreateTime", "not a unix time in seconds");
    if (!all_of(type, "_"))
        return set_error(d, SB_E_INVAL, "MsgType", "not a message type");
    if (strcmp(type, "event") == 0) {
        if (require(d, F_EVENT) != 0)
            return d->rc;
        event = val(d, F_EVENT);
        if (!event_is_contact(event)) {
            *kind = SB_WECHAT_IGNORE;
            return 0;
        }
    } else {
        if (require(d, F_MSGID) != 0)
            return d->rc;
        if (!all_digits(val(d, F_MSGID)))
            return set_error(d, SB_E_INVAL, "MsgId", "not an integer");
    }

    meta = json_object();
    if (put(meta, "msg_type", type) != 0 || put(meta, "to_user", val(d, F_TO)) != 0) {
        set_error(d, SB_E_INVAL, "body", "text is not valid UTF-8");
        goto out;
    }
    sb_fmt(created_s, sizeof(created_s), "%" PRId64, created);
    if (event != NULL) {
        /* Events carry no MsgId; WeChat retries a push with the same CreateTime. */
        external_id = cat(from, ":", created_s, ":", event, NULL);
        body = event_body(d, event, meta);
    } else {
        external_id = sb_strdup(val(d, F_MSGID));
        body = message_body(d, type, meta, &attachment);
    }
    if (body == NULL)
        goto out;
    sb_time_format_ms(created * 1000, sent_at);
    c = json_object();
    if (put(c, "channel", "wechat") != 0 || put(c, "external_id", external_id) != 0 ||
        json_object_set_new(c, "customer", json_pack("{s:s}", "wechat_openid", from)) != 0 ||
        put(c, "body", body) != 0 || put(c, "sent_at", sent_at) != 0 ||
        (attachment != NULL &&
         json_object_set_new(c, "attachments", json_pack("[O]", attachment)) != 0) ||
        json_object_set(c, "metadata", meta) != 0) {
        set_error(d, SB_E_INVAL, "body", "text is not valid UTF-8");
        goto out;
    }
    *kind = SB_WECHAT_CONTACT;
    *contact = c;
    c = NULL; /* now the caller's */
out:
    json_decref(c);
    json_decref(meta);
    json_decref(attachment);
    free(external_id);
    free(body);
    return d->rc;
}

int sb_wechat_parse(const char *xml, size_t len, enum sb_wechat_kind *kind, json_t **contact,
                    char *errstr, size_t errstr_size)
{
    /* expat allocates through the common policy: out of memory aborts. */
    static const XML_Memory_Handling_Suite mem = {sb_malloc, sb_realloc, free};
    struct doc d;
    size_t valid;
    enum XML_Status st;

    assert(kind != NULL && contact != NULL && (xml != NULL || len == 0));
    *kind = SB_WECHAT_IGNORE;
    *contact = NULL;
    memset(&d, 0, sizeof(d));
    d.field = -1;
    d.errstr = errstr;
    d.errstr_size = errstr_size;
    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    if (len > SB_WECHAT_MAX_BYTES)
        return set_error(&d, SB_E_TOOBIG, "body", "larger than %d bytes", SB_WECHAT_MAX_BYTES);
    if (xml == NULL)
        xml = "";
    d.parser = XML_ParserCreate_MM("UTF-8", &mem, NULL);
    if (d.parser == NULL)
        return set_error(&d, SB_E_INVAL, "body", "cannot create an XML parser");
    XML_SetUserData(d.parser, &d);
    XML_SetElementHandler(d.parser, on_start, on_end);
    XML_SetCharacterDataHandler(d.parser, on_text);
    XML_SetStartDoctypeDeclHandler(d.parser, on_doctype);
    XML_SetEntityDeclHandler(d.parser, on_entity);
    XML_SetParamEntityParsing(d.parser, XML_PARAM_ENTITY_PARSING_NEVER);

    /* Parse the valid prefix only: errors before a bad byte come first, in document
     * order, and otherwise the element open at the bad byte is known. */
    valid = utf8_valid_prefix((const unsigned char *)xml, len);
    d.parsing = 1;
    st = XML_Parse(d.parser, xml, (int)valid, valid == len ? XML_TRUE : XML_FALSE);
    d.parsing = 0;
    if (d.rc != 0)
        goto out;
    if (st != XML_STATUS_OK) {
        set_error(&d, SB_E_INVAL, where(&d), "invalid XML at line %lu, column %lu: %s",
                  (unsigned long)XML_GetCurrentLineNumber(d.parser),
                  (unsigned long)XML_GetCurrentColumnNumber(d.parser) + 1,
                  XML_ErrorString(XML_GetErrorCode(d.parser)));
        goto out;
    }
    if (valid < len) {
        set_error(&d, SB_E_INVAL, where(&d), "invalid XML: malformed UTF-8 at byte %zu", valid);
        goto out;
    }
    map(&d, kind, contact);
out:
    XML_ParserFree(d.parser);
    for (int i = 0; i < F_COUNT; i++)
        free(d.text[i]);
    return d.rc;
}
