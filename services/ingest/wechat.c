/* WeChat official-account pushes (see wechat.h), parsed with expat. The document is
 * flat: <xml> with one level of elements; their text (CDATA or not) is collected with
 * hard limits, then mapped. No DTD is accepted, so no entity can expand. */
#include "wechat.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/util.h"

#include <expat.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define PARAM_MAX 128
#define MAX_FIELDS 32
#define FIELD_MAX (16 * 1024)
#define NAME_MAX_LEN 64
#define MAX_DEPTH 8

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void sb_wechat_signature(const char *token, const char *timestamp, const char *nonce, char out[41])
{
    const char *parts[3] = {token, timestamp, nonce};
    unsigned char digest[SHA_DIGEST_LENGTH];
    char joined[3 * PARAM_MAX + 1];
    size_t n = 0;

    qsort(parts, 3, sizeof(parts[0]), cmp_str);
    for (int i = 0; i < 3; i++) {
        size_t l = strnlen(parts[i], PARAM_MAX);
        memcpy(joined + n, parts[i], l);
        n += l;
    }
    SHA1((const unsigned char *)joined, n, digest);
    sb_hex(digest, sizeof(digest), out);
}

int sb_wechat_signature_ok(const char *token, const char *timestamp, const char *nonce,
                           const char *signature)
{
    char expected[41];

    if (token == NULL || timestamp == NULL || nonce == NULL || signature == NULL ||
        strlen(token) > PARAM_MAX || strlen(timestamp) > PARAM_MAX || strlen(nonce) > PARAM_MAX ||
        strlen(signature) != 40)
        return 0;
    sb_wechat_signature(token, timestamp, nonce, expected);
    return CRYPTO_memcmp(expected, signature, 40) == 0;
}

struct field {
    char name[NAME_MAX_LEN];
    char *text;
    size_t len;
};

struct doc {
    XML_Parser parser;
    int depth;
    int saw_root;
    struct field fields[MAX_FIELDS];
    int nfields;
    struct field *current;
    char error[160];
};

static void fail(struct doc *d, const char *msg)
{
    if (d->error[0] == '\0')
        sb_strlcpy(d->error, msg, sizeof(d->error));
    XML_StopParser(d->parser, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct doc *d = ud;

    (void)attrs;
    d->depth++;
    if (d->depth > MAX_DEPTH) {
        fail(d, "XML nested too deeply");
        return;
    }
    if (d->depth == 1) {
        if (strcmp(name, "xml") != 0)
            fail(d, "root element must be <xml>");
        d->saw_root = 1;
        return;
    }
    if (d->depth == 2) {
        if (d->nfields >= MAX_FIELDS) {
            fail(d, "too many elements");
            return;
        }
        d->current = &d->fields[d->nfields++];
        sb_strlcpy(d->current->name, name, sizeof(d->current->name));
        d->current->text = NULL;
        d->current->len = 0;
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct doc *d = ud;

    (void)name;
    if (d->depth == 2)
        d->current = NULL;
    d->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct doc *d = ud;
    struct field *f = d->current;

    if (f == NULL || d->depth != 2 || len <= 0)
        return;
    if (f->len + (size_t)len > FIELD_MAX) {
        fail(d, "element text too long");
        return;
    }
    f->text = sb_realloc(f->text, f->len + (size_t)len + 1);
    memcpy(f->text + f->len, s, (size_t)len);
    f->len += (size_t)len;
    f->text[f->len] = '\0';
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    fail(ud, "DTDs are not accepted");
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
    fail(ud, "entity declarations are not accepted");
}

static const char *get(const struct doc *d, const char *name)
{
    for (int i = 0; i < d->nfields; i++) {
        if (strcmp(d->fields[i].name, name) == 0)
            return d->fields[i].text ? d->fields[i].text : "";
    }
    return NULL;
}

static void free_doc(struct doc *d)
{
    for (int i = 0; i < d->nfields; i++)
        free(d->fields[i].text);
}

static int required(const struct doc *d, const char *name, const char **out, char *errstr,
                    size_t errstr_size)
{
    *out = get(d, name);
    if (*out == NULL || (*out)[0] == '\0') {
        sb_fmt(errstr, errstr_size, "field \"%s\": missing", name);
        return SB_E_INVAL;
    }
    return 0;
}

static void set_if(json_t *o, const char *key, const char *v)
{
    if (v != NULL && v[0] != '\0')
        json_object_set_new(o, key, json_string(v));
}

/* Builds the contact of a parsed push. Returns the kind, or -1 with errstr. */
static int map(const struct doc *d, json_t **contact, char *errstr, size_t errstr_size)
{
    const char *to, *from, *created, *type, *msgid = get(d, "MsgId");
    const char *event = get(d, "Event");
    char body[FIELD_MAX + 256], ext[256], ts[SB_TIME_STRLEN + 1];
    json_t *c, *meta, *attachments = NULL;
    int64_t t;

    if (required(d, "ToUserName", &to, errstr, errstr_size) ||
        required(d, "FromUserName", &from, errstr, errstr_size) ||
        required(d, "CreateTime", &created, errstr, errstr_size) ||
        required(d, "MsgType", &type, errstr, errstr_size))
        return -1;
    if (sb_parse_int64(created, &t) != 0 || t < 0 || t > 4102444800LL) {
        sb_fmt(errstr, errstr_size, "field \"CreateTime\": not a unix time");
        return -1;
    }
    if (strlen(from) > 128) {
        sb_fmt(errstr, errstr_size, "field \"FromUserName\": too long");
        return -1;
    }
    if (strcmp(type, "event") == 0) {
        if (event == NULL || event[0] == '\0') {
            sb_fmt(errstr, errstr_size, "field \"Event\": missing");
            return -1;
        }
        if (strcmp(event, "subscribe") != 0 && strcmp(event, "CLICK") != 0 &&
            strcmp(event, "SCAN") != 0)
            return SB_WECHAT_IGNORE;
        sb_fmt(ext, sizeof(ext), "%s:%s:%s", from, created, event);
    } else {
        if (msgid == NULL || msgid[0] == '\0') {
            sb_fmt(errstr, errstr_size, "field \"MsgId\": missing");
            return -1;
        }
        sb_strlcpy(ext, msgid, sizeof(ext));
    }
    meta = json_object();
    json_object_set_new(meta, "msg_type", json_string(type));
    json_object_set_new(meta, "to_user", json_string(to));
    if (strcmp(type, "text") == 0) {
        const char *content;
        if (required(d, "Content", &content, errstr, errstr_size)) {
            json_decref(meta);
            return -1;
        }
        sb_fmt(body, sizeof(body), "%s", content);
    } else if (strcmp(type, "voice") == 0) {
        const char *rec = get(d, "Recognition");
        int recognized = rec != NULL && rec[0] != '\0';
        sb_fmt(body, sizeof(body), "%s", recognized ? rec : "[voice]");
        json_object_set_new(meta, "voice_recognized", json_boolean(recognized));
        set_if(meta, "format", get(d, "Format"));
    } else if (strcmp(type, "image") == 0) {
        sb_fmt(body, sizeof(body), "[image]");
        set_if(meta, "pic_url", get(d, "PicUrl"));
    } else if (strcmp(type, "video") == 0 || strcmp(type, "shortvideo") == 0) {
        sb_fmt(body, sizeof(body), "[video]");
    } else if (strcmp(type, "location") == 0) {
        const char *label = get(d, "Label");
        sb_fmt(body, sizeof(body), "[location] %s (%s,%s)", label ? label : "",
               get(d, "Location_X") ? get(d, "Location_X") : "?",
               get(d, "Location_Y") ? get(d, "Location_Y") : "?");
    } else if (strcmp(type, "link") == 0) {
        sb_fmt(body, sizeof(body), "[link] %s %s", get(d, "Title") ? get(d, "Title") : "",
               get(d, "Url") ? get(d, "Url") : "");
    } else if (strcmp(type, "event") == 0) {
        const char *key = get(d, "EventKey");
        json_object_set_new(meta, "event", json_string(event));
        set_if(meta, "event_key", key);
        if (strcmp(event, "CLICK") == 0)
            sb_fmt(body, sizeof(body), "[click] %s", key ? key : "");
        else
            sb_fmt(body, sizeof(body), "[%s]", strcmp(event, "SCAN") == 0 ? "scan" : "subscribe");
    } else {
        json_decref(meta);
        return SB_WECHAT_IGNORE;
    }
    {
        const char *media = get(d, "MediaId");
        if (media != NULL && media[0] != '\0') {
            char mtype[64];
            const char *fmt = get(d, "Format");
            set_if(meta, "media_id", media);
            if (strcmp(type, "voice") == 0 && fmt != NULL)
                sb_fmt(mtype, sizeof(mtype), "voice/%s", fmt);
            else
                sb_fmt(mtype, sizeof(mtype), "%s", type);
            attachments = json_pack("[{s:s,s:s,s:i}]", "name", media, "type", mtype, "size", 0);
        }
    }
    sb_time_format_ms(t * 1000, ts);
    c = json_pack("{s:s,s:s,s:{s:s},s:s,s:s,s:o}", "channel", "wechat", "external_id", ext,
                  "customer", "wechat_openid", from, "body", body, "sent_at", ts, "metadata", meta);
    if (attachments != NULL)
        json_object_set_new(c, "attachments", attachments);
    *contact = c;
    return SB_WECHAT_CONTACT;
}

int sb_wechat_parse(const char *xml, size_t len, enum sb_wechat_kind *kind, json_t **contact,
                    char *errstr, size_t errstr_size)
{
    struct doc d;
    int rc = SB_E_INVAL, m;

    *contact = NULL;
    *kind = SB_WECHAT_IGNORE;
    if (len > SB_WECHAT_MAX_BYTES) {
        sb_fmt(errstr, errstr_size, "XML body larger than %d bytes", SB_WECHAT_MAX_BYTES);
        return SB_E_TOOBIG;
    }
    memset(&d, 0, sizeof(d));
    d.parser = XML_ParserCreate("UTF-8");
    if (d.parser == NULL) {
        sb_fmt(errstr, errstr_size, "cannot create an XML parser");
        return SB_E_INVAL;
    }
    XML_SetUserData(d.parser, &d);
    XML_SetElementHandler(d.parser, on_start, on_end);
    XML_SetCharacterDataHandler(d.parser, on_text);
    XML_SetStartDoctypeDeclHandler(d.parser, on_doctype);
    XML_SetEntityDeclHandler(d.parser, on_entity);
    if (XML_Parse(d.parser, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR) {
        if (d.error[0] != '\0')
            sb_fmt(errstr, errstr_size, "field \"body\": %s", d.error);
        else
            sb_fmt(errstr, errstr_size, "field \"body\": invalid XML at line %lu: %s",
                   (unsigned long)XML_GetCurrentLineNumber(d.parser),
                   XML_ErrorString(XML_GetErrorCode(d.parser)));
        goto out;
    }
    if (!d.saw_root) {
        sb_fmt(errstr, errstr_size, "field \"body\": no <xml> element");
        goto out;
    }
    m = map(&d, contact, errstr, errstr_size);
    if (m < 0)
        goto out;
    *kind = (enum sb_wechat_kind)m;
    rc = 0;
out:
    XML_ParserFree(d.parser);
    free_doc(&d);
    return rc;
}
