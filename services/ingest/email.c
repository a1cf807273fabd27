/* Email parsing with GMime (see email.h). GMime does the MIME work: transfer decoding,
 * RFC 2047/2231 header decoding, charset conversion through iconv. This file walks the
 * MIME tree with a depth cap, picks the body part and describes the attachments. */
#include "email.h"

#include "html2text.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/normalize.h"
#include "sb/util.h"

#include <gmime/gmime.h>
#include <string.h>

#define MAX_DEPTH 16
#define MAX_ATTACHMENTS 100
#define MAX_PARTS 500

struct walk {
    GMimePart *plain; /* first text/plain body candidate */
    GMimePart *html;  /* first text/html body candidate */
    json_t *attachments;
    int parts;
    int too_deep;
};

void sb_email_global_init(void)
{
    static int done;
    if (!done) {
        g_mime_init();
        done = 1;
    }
}

static int is_attachment(GMimeObject *obj)
{
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
    return d != NULL && g_mime_content_disposition_is_attachment(d);
}

/* Decoded size of a part's content (transfer encoding removed). */
static gint64 decoded_size(GMimePart *part)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    GMimeStream *null;
    gint64 n;

    if (content == NULL)
        return 0;
    null = g_mime_stream_null_new();
    n = g_mime_data_wrapper_write_to_stream(content, null);
    g_object_unref(null);
    return n < 0 ? 0 : n;
}

static void add_attachment(struct walk *w, GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *name = GMIME_IS_PART(obj) ? g_mime_part_get_filename(GMIME_PART(obj)) : NULL;
    char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    json_t *a;

    if (json_array_size(w->attachments) >= MAX_ATTACHMENTS) {
        g_free(mime);
        return;
    }
    a = json_object();
    json_object_set_new(
        a, "name",
        json_string(name && g_utf8_validate(name, -1, NULL)
                        ? name
                        : (GMIME_IS_MESSAGE_PART(obj) ? "forwarded-message.eml" : "attachment")));
    if (mime != NULL)
        json_object_set_new(a, "type", json_string(mime));
    json_object_set_new(
        a, "size",
        json_integer(GMIME_IS_PART(obj) ? (json_int_t)decoded_size(GMIME_PART(obj)) : 0));
    json_array_append_new(w->attachments, a);
    g_free(mime);
}

static void walk(struct walk *w, GMimeObject *obj, int depth)
{
    if (obj == NULL || ++w->parts > MAX_PARTS)
        return;
    if (depth > MAX_DEPTH) {
        w->too_deep = 1;
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
        for (int i = 0; i < n; i++)
            walk(w, g_mime_multipart_get_part(GMIME_MULTIPART(obj), i), depth + 1);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        add_attachment(w, obj); /* a forwarded message is kept as an attachment */
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    if (!is_attachment(obj)) {
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (g_mime_content_type_is_type(ct, "text", "plain") && w->plain == NULL) {
            w->plain = GMIME_PART(obj);
            return;
        }
        if (g_mime_content_type_is_type(ct, "text", "html") && w->html == NULL) {
            w->html = GMIME_PART(obj);
            return;
        }
        if (g_mime_content_type_is_type(ct, "text", "*") && w->plain != NULL)
            return; /* an alternative rendering of the body (e.g. text/enriched) */
    }
    add_attachment(w, obj);
}

/* The part's text as valid UTF-8 (new string). */
static char *part_text(GMimePart *part, const char **charset_out)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    GMimeStream *mem, *filtered;
    GByteArray *bytes;
    char *text;

    *charset_out = charset;
    if (content == NULL)
        return sb_strdup("");
    mem = g_mime_stream_mem_new();
    filtered = g_mime_stream_filter_new(mem);
    if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
        g_ascii_strcasecmp(charset, "us-ascii") != 0) {
        GMimeFilter *f = g_mime_filter_charset_new(charset, "UTF-8");
        if (f != NULL) { /* NULL: unknown charset, kept as bytes and repaired below */
            g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
            g_object_unref(f);
        }
    }
    g_mime_data_wrapper_write_to_stream(content, filtered);
    g_mime_stream_flush(filtered);
    bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    /* Invalid sequences (a lying charset label, stray bytes) become U+FFFD. */
    if (bytes == NULL || bytes->len == 0) {
        text = sb_strdup(""); /* e.g. a base64 part that decodes to nothing */
    } else {
        gchar *valid = g_utf8_make_valid((const gchar *)bytes->data, (gssize)bytes->len);
        text = sb_strdup(valid != NULL ? valid : "");
        g_free(valid);
    }
    g_object_unref(filtered);
    g_object_unref(mem);
    return text;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Is the line at p (length n, no newline) the start of quoted history? */
static int quote_header(const char *p, size_t n, const char *next)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return 0;
    if (starts_with(p, "On ") && ends_with(p, n, "wrote:"))
        return 1;
    if (starts_with(p, "在") && (ends_with(p, n, "写道：") || ends_with(p, n, "写道:") ||
                                 ends_with(p, n, "寫道：") || ends_with(p, n, "寫道:")))
        return 1;
    if (starts_with(p, "-----Original Message-----") || starts_with(p, "-----原始邮件-----") ||
        starts_with(p, "----- Original Message -----") || starts_with(p, "-----原始郵件-----"))
        return 1;
    if (starts_with(p, "发件人:") || starts_with(p, "发件人：") || starts_with(p, "寄件者:") ||
        starts_with(p, "寄件者："))
        return 1;
    /* Outlook: "From: …" directly followed by "Sent: …". */
    if (starts_with(p, "From:") && next != NULL && starts_with(next, "Sent:"))
        return 1;
    return 0;
}

void sb_email_trim_quoted(char *text)
{
    char *line = text, *out = text;

    while (*line) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *next = nl ? nl + 1 : NULL;
        if (quote_header(line, n, next))
            break;
        if (line[0] != '>') {
            memmove(out, line, n);
            out += n;
            if (nl)
                *out++ = '\n';
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    *out = '\0';
    while (out > text && (out[-1] == '\n' || out[-1] == ' ' || out[-1] == '\r' || out[-1] == '\t'))
        *--out = '\0';
}

/* Normalizes CRLF to LF in place. */
static void unix_newlines(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n')
            continue;
        *o++ = *p;
    }
    *o = '\0';
}

static void cut_utf8(char *s, size_t max, json_t *meta)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
    json_object_set_new(meta, "truncated", json_true());
}

static const char *mailbox_addr(InternetAddressList *list, const char **name)
{
    for (int i = 0; list != NULL && i < internet_address_list_length(list); i++) {
        InternetAddress *a = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
            *name = internet_address_get_name(a);
            return internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
        }
    }
    return NULL;
}

static json_t *references(GMimeObject *msg, const char *header)
{
    const char *raw = g_mime_object_get_header(msg, header);
    GMimeReferences *refs;
    json_t *arr;

    if (raw == NULL)
        return NULL;
    refs = g_mime_references_parse(NULL, raw);
    if (refs == NULL)
        return NULL;
    arr = json_array();
    for (int i = 0; i < g_mime_references_length(refs) && i < 100; i++) {
        const char *id = g_mime_references_get_message_id(refs, i);
        if (id != NULL && id[0] != '\0' && g_utf8_validate(id, -1, NULL) && strlen(id) < 998)
            json_array_append_new(arr, json_string(id));
    }
    g_mime_references_free(refs);
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static void set_text(json_t *o, const char *key, const char *v)
{
    if (v != NULL && v[0] != '\0' && g_utf8_validate(v, -1, NULL))
        json_object_set_new(o, key, json_string(v));
}

int sb_email_parse(const char *raw, size_t len, json_t **contact, char *errstr, size_t errstr_size)
{
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *msg = NULL;
    struct walk w = {NULL, NULL, NULL, 0, 0};
    json_t *c = NULL, *meta, *cust, *refs;
    const char *from_name = NULL, *reply_name = NULL, *from, *reply, *charset = NULL;
    char email[320];
    GDateTime *date;
    char *body = NULL;
    int used_reply = 0;
    int rc = SB_E_INVAL;

    *contact = NULL;
    if (len > SB_EMAIL_MAX_BYTES) {
        sb_fmt(errstr, errstr_size, "message larger than %d bytes", SB_EMAIL_MAX_BYTES);
        return SB_E_TOOBIG;
    }
    if (len == 0) {
        sb_fmt(errstr, errstr_size, "empty message");
        return SB_E_INVAL;
    }
    stream = g_mime_stream_mem_new_with_buffer(raw, len);
    parser = g_mime_parser_new_with_stream(stream);
    msg = g_mime_parser_construct_message(parser, NULL);
    if (msg == NULL) {
        sb_fmt(errstr, errstr_size, "not an RFC 5322 message");
        goto out;
    }
    from = mailbox_addr(g_mime_message_get_from(msg), &from_name);
    reply = mailbox_addr(g_mime_message_get_reply_to(msg), &reply_name);
    if (reply != NULL && sb_email_normalize(reply, email, sizeof(email)) == 0) {
        used_reply = 1;
        from_name = reply_name && reply_name[0] ? reply_name : from_name;
    } else if (from == NULL || sb_email_normalize(from, email, sizeof(email)) != 0) {
        sb_fmt(errstr, errstr_size, "field \"from\": missing or not an address");
        goto out;
    }
    w.attachments = json_array();
    walk(&w, g_mime_message_get_mime_part(msg), 0);
    if (w.too_deep) {
        sb_fmt(errstr, errstr_size, "MIME nesting deeper than %d", MAX_DEPTH);
        goto out;
    }
    c = json_object();
    meta = json_object();
    json_object_set_new(c, "channel", json_string("email"));
    set_text(c, "external_id", g_mime_message_get_message_id(msg));
    cust = json_object();
    json_object_set_new(cust, "email", json_string(email));
    set_text(cust, "name", from_name);
    json_object_set_new(c, "customer", cust);
    set_text(c, "subject", g_mime_message_get_subject(msg));
    if (w.plain != NULL) {
        body = part_text(w.plain, &charset);
        unix_newlines(body);
        json_object_set_new(meta, "html_only", json_false());
    } else if (w.html != NULL) {
        char *html = part_text(w.html, &charset);
        body = sb_html_to_text(html, strlen(html), SB_EMAIL_MAX_BODY * 2);
        free(html);
        json_object_set_new(meta, "html_only", json_true());
    } else {
        body = sb_strdup("");
    }
    sb_email_trim_quoted(body);
    cut_utf8(body, SB_EMAIL_MAX_BODY, meta);
    if (body[0] == '\0') {
        /* An empty body (attachment only): say so rather than invent text. */
        free(body);
        body = sb_strdup(json_array_size(w.attachments) ? "[attachment only]" : "[empty message]");
        json_object_set_new(meta, "empty_body", json_true());
    }
    json_object_set_new(c, "body", json_string(body));
    date = g_mime_message_get_date(msg);
    if (date != NULL) {
        char ts[SB_TIME_STRLEN + 1];
        sb_time_format_ms((int64_t)g_date_time_to_unix(date) * 1000, ts);
        json_object_set_new(c, "sent_at", json_string(ts));
    }
    if (json_array_size(w.attachments) > 0)
        json_object_set(c, "attachments", w.attachments);
    refs = references(GMIME_OBJECT(msg), "In-Reply-To");
    if (refs != NULL) {
        json_object_set(c, "in_reply_to", json_array_get(refs, 0));
        json_decref(refs);
    }
    refs = references(GMIME_OBJECT(msg), "References");
    if (refs != NULL)
        json_object_set_new(c, "references", refs);
    json_object_set_new(meta, "from", json_string(email));
    if (from != NULL && used_reply) {
        char addr[320];
        if (sb_email_normalize(from, addr, sizeof(addr)) == 0)
            json_object_set_new(meta, "from", json_string(addr));
        json_object_set_new(meta, "reply_to", json_string(email));
    }
    set_text(meta, "charset", charset);
    json_object_set_new(c, "metadata", meta);
    *contact = c;
    c = NULL;
    rc = 0;
out:
    free(body);
    json_decref(c);
    json_decref(w.attachments);
    if (msg != NULL)
        g_object_unref(msg);
    if (parser != NULL)
        g_object_unref(parser);
    if (stream != NULL)
        g_object_unref(stream);
    return rc;
}
