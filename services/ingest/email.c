/* Email parsing with GMime (see email.h). GMime does the MIME work: transfer decoding,
 * RFC 2047/2231 header decoding, address parsing. This file bounds what GMime is given
 * (a pre-scan of the raw bytes for nesting, part and header counts), walks the MIME
 * tree with a depth cap, picks the body part, converts it to UTF-8 through iconv,
 * trims quoted history and describes the attachments. Every GMime object lives for one
 * call, so parses run in parallel after sb_email_global_init(). */
#include "email.h"

#include "html2text.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/normalize.h"
#include "sb/util.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <string.h>

/* Output caps matching the generic contact's limits (contact.c), so that no email is
 * refused downstream for one long header. */
#define MAX_NAME_BYTES 200     /* customer.name */
#define MAX_SUBJECT_BYTES 998  /* subject: one RFC 5322 line */
#define MAX_ID_BYTES 200       /* external_id; a longer Message-ID is left out */
#define MAX_REF_BYTES 998      /* in_reply_to and each of references */
#define MAX_REFS 100           /* the newest references are kept */
#define MAX_FILENAME_BYTES 255 /* attachments[].name */
#define MAX_TYPE_BYTES 127     /* attachments[].type */
#define MAX_CHARSET_BYTES 64   /* metadata.charset */
/* Only the tail of a long References header is parsed: the newest ids come last. */
#define REFS_TAIL_BYTES (64 * 1024)
/* Decoded bytes of the body part read at most: enough for the body cap after quote
 * trimming, and for HTML, after markup and styles are gone. Past them the body is
 * flagged truncated. */
#define TEXT_SOURCE_MAX (4 * SB_EMAIL_MAX_BODY)
#define HTML_SOURCE_MAX (16 * SB_EMAIL_MAX_BODY)
#define HTML_TEXT_MAX (4 * SB_EMAIL_MAX_BODY)

/* Fallback charsets for 8-bit text that declares no usable charset, tried in order by
 * g_mime_utils_decode_8bit (the first that converts without error wins). GB18030 is
 * tried before Windows-1252 because this center's undeclared mail is mostly Chinese;
 * Latin-1 text only decodes as GB18030 when every high byte pairs up, which is rare. */
static const char *const fallback_charsets[] = {"utf-8", "gb18030", "windows-1252", NULL};

static GOnce init_once = G_ONCE_INIT;

static gpointer init_gmime(gpointer unused)
{
    (void)unused;
    g_mime_init();
    return NULL;
}

void sb_email_global_init(void)
{
    g_once(&init_once, init_gmime, NULL);
}

/* ---- Pre-scan: limits checked on the raw bytes before GMime builds anything ---- */

/* The pre-scan follows GMime's parser (gmime-parser.c, 3.2): header blocks end at an
 * empty line, the last Content-Type of a block decides what follows (parsed by GMime's
 * own g_mime_content_type_parse, so boundaries compare alike), a line that is a
 * delimiter of any open multipart closes the inner ones, parts of a multipart/digest
 * default to message/rfc822. Where it cannot be sure it counts more, never less. */
struct scan {
    char *bound[SB_EMAIL_MAX_DEPTH]; /* open multiparts' boundaries (g_free) */
    size_t blen[SB_EMAIL_MAX_DEPTH];
    int digest[SB_EMAIL_MAX_DEPTH]; /* that multipart is a multipart/digest */
    int depth;
    int parts;           /* delimiters seen */
    int fields;          /* header fields seen */
    size_t header_bytes; /* bytes in header blocks */
    const char *ct;      /* raw value of the block's last Content-Type field */
    const char *ct_end;
    int in_ct; /* the field being read is that Content-Type (for its folded lines) */
};

static int is_lwsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Is the line p (n bytes, no line end) a field named name (ASCII case ignored; blanks
 * allowed before the ':', as GMime allows)? Sets *value to the byte after the ':'. */
static int field_named(const char *p, size_t n, const char *name, const char **value)
{
    size_t m = strlen(name), i = m;

    if (n < m + 1 || g_ascii_strncasecmp(p, name, m) != 0)
        return 0;
    while (i < n && is_lwsp(p[i]))
        i++;
    if (i == n || p[i] != ':')
        return 0;
    *value = p + i + 1;
    return 1;
}

/* Is the line p (n bytes) a delimiter of an open multipart, as GMime's parser decides
 * ("--", the boundary, optional "--", then only blanks)? Returns the stack index of the
 * innermost match or -1; *closing is set for a close delimiter. */
static int match_boundary(const struct scan *s, const char *p, size_t n, int *closing)
{
    if (n < 2 || p[0] != '-' || p[1] != '-')
        return -1;
    p += 2;
    n -= 2;
    for (int k = s->depth - 1; k >= 0; k--) {
        size_t b = s->blen[k], i;
        if (n < b || memcmp(p, s->bound[k], b) != 0)
            continue;
        i = b;
        *closing = n - i >= 2 && p[i] == '-' && p[i + 1] == '-';
        if (*closing)
            i += 2;
        while (i < n && is_lwsp(p[i]))
            i++;
        if (i == n)
            return k;
    }
    return -1;
}

static void pop_to(struct scan *s, int depth)
{
    while (s->depth > depth) {
        s->depth--;
        g_free(s->bound[s->depth]);
        s->bound[s->depth] = NULL;
    }
}

/* A header block ended: decides from its Content-Type whether headers follow (an
 * embedded message) and opens a multipart. Returns 0 or SB_E_INVAL (too deep). */
static int end_of_headers(struct scan *s, GMimeParserOptions *opts, int *in_headers)
{
    GMimeContentType *ct;
    char *value;
    int rc = 0;

    *in_headers = 0;
    if (s->ct == NULL) {
        /* GMime: text/plain, or message/rfc822 inside a multipart/digest */
        *in_headers = s->depth > 0 && s->digest[s->depth - 1];
        return 0;
    }
    value = g_strndup(s->ct, (gsize)(s->ct_end - s->ct));
    ct = g_mime_content_type_parse(opts, value);
    g_free(value);
    s->ct = NULL;
    s->in_ct = 0;
    if (g_mime_content_type_is_type(ct, "multipart", "*")) {
        const char *b = g_mime_content_type_get_parameter(ct, "boundary");
        if (b != NULL && s->depth == SB_EMAIL_MAX_DEPTH) {
            rc = SB_E_INVAL;
        } else if (b != NULL) {
            s->bound[s->depth] = g_strdup(b);
            s->blen[s->depth] = strlen(b);
            s->digest[s->depth] = g_mime_content_type_is_type(ct, "multipart", "digest");
            s->depth++;
        }
    } else if (g_mime_content_type_is_type(ct, "message", "*")) {
        const char *sub = g_mime_content_type_get_media_subtype(ct);
        /* the subtypes GMime opens (is_rfc822 in gmime-parser.c) */
        *in_headers =
            g_ascii_strcasecmp(sub, "rfc822") == 0 || g_ascii_strcasecmp(sub, "rfc2822") == 0 ||
            g_ascii_strcasecmp(sub, "global") == 0 || g_ascii_strcasecmp(sub, "news") == 0;
    } else if (g_mime_content_type_is_type(ct, "application", "octet-stream")) {
        /* also what an unparsable value gives: GMime's parser then defaults as above */
        *in_headers = s->depth > 0 && s->digest[s->depth - 1];
    }
    g_object_unref(ct);
    return rc;
}

/* Walks the raw message line by line as GMime's parser will, and refuses what would
 * make GMime's work or memory explode: nesting deeper than SB_EMAIL_MAX_DEPTH (GMime
 * checks every line against every open boundary), more than SB_EMAIL_MAX_PARTS parts,
 * SB_EMAIL_MAX_HEADER_FIELDS fields or SB_EMAIL_MAX_HEADER_BYTES of headers (GMime
 * makes an object of each). */
static int prescan(const char *raw, size_t len, GMimeParserOptions *opts, char *errstr,
                   size_t errstr_size)
{
    struct scan s;
    const char *p = raw, *end = raw + len;
    int in_headers = 1, rc = 0;

    memset(&s, 0, sizeof(s));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl != NULL ? nl + 1 : end;
        size_t n = (size_t)((nl != NULL ? nl : end) - p);
        const char *value;
        int closing = 0, k;

        if (n > 0 && p[n - 1] == '\r')
            n--;
        k = match_boundary(&s, p, n, &closing);
        if (k >= 0) {
            pop_to(&s, closing ? k : k + 1);
            in_headers = !closing;
            s.ct = NULL;
            s.in_ct = 0;
            if (!closing && ++s.parts > SB_EMAIL_MAX_PARTS) {
                sb_fmt(errstr, errstr_size, "more than %d MIME parts", SB_EMAIL_MAX_PARTS);
                rc = SB_E_TOOBIG;
                goto out;
            }
        } else if (in_headers) {
            s.header_bytes += (size_t)(next - p);
            if (s.header_bytes > SB_EMAIL_MAX_HEADER_BYTES) {
                sb_fmt(errstr, errstr_size, "headers larger than %d bytes",
                       SB_EMAIL_MAX_HEADER_BYTES);
                rc = SB_E_TOOBIG;
                goto out;
            }
            if (n == 0) {
                rc = end_of_headers(&s, opts, &in_headers);
                if (rc != 0) {
                    sb_fmt(errstr, errstr_size, "MIME nesting deeper than %d", SB_EMAIL_MAX_DEPTH);
                    goto out;
                }
            } else if (is_lwsp(p[0])) {
                if (s.in_ct)
                    s.ct_end = p + n; /* a folded line of the Content-Type */
            } else if (++s.fields > SB_EMAIL_MAX_HEADER_FIELDS) {
                sb_fmt(errstr, errstr_size, "more than %d header fields",
                       SB_EMAIL_MAX_HEADER_FIELDS);
                rc = SB_E_TOOBIG;
                goto out;
            } else {
                s.in_ct = field_named(p, n, "Content-Type", &value);
                if (s.in_ct) {
                    s.ct = value;
                    s.ct_end = p + n;
                }
            }
        }
        p = next;
    }
out:
    pop_to(&s, 0);
    return rc;
}

/* ---- Charsets ---- */

static int is_utf8_label(const char *label)
{
    return g_ascii_strcasecmp(label, "utf-8") == 0 || g_ascii_strcasecmp(label, "utf8") == 0;
}

/* The charset to decode a declared label with. Mail labelled with a legacy charset is
 * usually written in its Windows superset (GB2312 mail holds GBK characters, Latin-1
 * mail Windows-1252 punctuation; WHATWG Encoding maps these labels the same way);
 * decoding with the superset loses nothing. Other labels go to GMime's alias table. */
static const char *decoder_for(const char *label)
{
    static const struct {
        const char *label, *charset;
    } supersets[] = {
        {"gb2312", "GB18030"},         {"gbk", "GB18030"},           {"x-gbk", "GB18030"},
        {"cp936", "GB18030"},          {"windows-936", "GB18030"},   {"euc-cn", "GB18030"},
        {"csgb2312", "GB18030"},       {"gb_2312-80", "GB18030"},    {"iso-8859-1", "WINDOWS-1252"},
        {"iso8859-1", "WINDOWS-1252"}, {"latin1", "WINDOWS-1252"},   {"ks_c_5601-1987", "CP949"},
        {"euc-kr", "CP949"},           {"shift_jis", "WINDOWS-31J"}, {"x-sjis", "WINDOWS-31J"},
    };
    for (size_t i = 0; i < sizeof(supersets) / sizeof(supersets[0]); i++) {
        if (g_ascii_strcasecmp(label, supersets[i].label) == 0)
            return supersets[i].charset;
    }
    return label;
}

static void append_replacement(GByteArray *out)
{
    static const guint8 fffd[] = {0xEF, 0xBF, 0xBD};
    g_byte_array_append(out, fffd, sizeof(fffd));
}

/* Converts n bytes through cd into UTF-8 appended to out; an invalid or truncated
 * sequence becomes U+FFFD and conversion resumes at the next byte. */
static void convert(iconv_t cd, const char *in, size_t n, GByteArray *out)
{
    char buf[4096];
    char *inp = (char *)in, *outp;
    size_t inleft = n, outleft;

    iconv(cd, NULL, NULL, NULL, NULL); /* initial shift state */
    while (inleft > 0) {
        size_t rc;
        outp = buf;
        outleft = sizeof(buf);
        rc = iconv(cd, &inp, &inleft, &outp, &outleft);
        g_byte_array_append(out, (const guint8 *)buf, (guint)(sizeof(buf) - outleft));
        if (rc != (size_t)-1 || errno == E2BIG)
            continue;
        append_replacement(out);
        if (errno == EINVAL)
            break; /* a sequence cut by the end of the input */
        inp++;
        inleft--;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    outp = buf;
    outleft = sizeof(buf);
    iconv(cd, NULL, NULL, &outp, &outleft);
    g_byte_array_append(out, (const guint8 *)buf, (guint)(sizeof(buf) - outleft));
}

static void drop_nul(GByteArray *a)
{
    guint o = 0;
    for (guint i = 0; i < a->len; i++) {
        if (a->data[i] != 0)
            a->data[o++] = a->data[i];
    }
    g_byte_array_set_size(a, o);
}

/* Is the 8-bit text s (n bytes, no NUL) UTF-8 with stray bytes rather than text in
 * another charset? Legacy charsets rarely form valid UTF-8 multibyte sequences (a
 * fraction of GBK pairs do, most do not), so at least as many valid sequences as
 * invalid bytes means UTF-8. */
static int mostly_utf8(const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    size_t valid = 0, invalid = 0;

    while (p < end) {
        gunichar ch = g_utf8_get_char_validated(p, end - p);
        if (ch == (gunichar)-1 || ch == (gunichar)-2) {
            invalid++;
            p++;
        } else {
            valid += ch >= 0x80;
            p = g_utf8_next_char(p);
        }
    }
    return valid >= invalid;
}

/* The n bytes of a text part in the declared charset label (NULL: none) as valid
 * UTF-8 without NUL bytes (new string, g_free). A label iconv cannot open, an absent
 * one or us-ascii on 8-bit bytes: the text is UTF-8 when it mostly validates,
 * otherwise the fallback charsets are tried. */
static char *to_utf8(const char *in, size_t n, const char *label, GMimeParserOptions *opts)
{
    GByteArray *out = g_byte_array_sized_new((guint)n + 16);
    iconv_t cd = (iconv_t)-1;
    char *text;

    if (label != NULL && !is_utf8_label(label) && g_ascii_strcasecmp(label, "us-ascii") != 0)
        cd = g_mime_iconv_open("UTF-8", decoder_for(label));
    if (cd != (iconv_t)-1) {
        convert(cd, in, n, out);
        g_mime_iconv_close(cd);
        drop_nul(out);
    } else {
        g_byte_array_append(out, (const guint8 *)in, (guint)n);
        drop_nul(out);
        if ((label == NULL || !is_utf8_label(label)) &&
            !g_utf8_validate((const char *)out->data, (gssize)out->len, NULL) &&
            !mostly_utf8((const char *)out->data, out->len)) {
            char *guess = g_mime_utils_decode_8bit(opts, (const char *)out->data, out->len);
            g_byte_array_set_size(out, 0);
            g_byte_array_append(out, (const guint8 *)guess, (guint)strlen(guess));
            g_free(guess);
        }
    }
    /* Declared UTF-8 with stray bytes, or a converter's odd output: U+FFFD. */
    text = g_utf8_make_valid((const char *)out->data, (gssize)out->len);
    g_byte_array_free(out, TRUE);
    return text;
}

/* ---- Content ---- */

/* Reads the content of part with its transfer encoding removed: up to cap bytes into
 * keep (when not NULL). Returns the decoded size counted up to cap; *cut is set when
 * there was more. */
static gint64 read_content(GMimePart *part, GByteArray *keep, gint64 cap, int *cut)
{
    GMimeDataWrapper *content = g_mime_part_get_content(part);
    GMimeStream *src, *filtered;
    GMimeContentEncoding enc;
    gint64 total = 0;
    char buf[8192];

    *cut = 0;
    if (content == NULL || (src = g_mime_data_wrapper_get_stream(content)) == NULL)
        return 0;
    enc = g_mime_data_wrapper_get_encoding(content);
    g_mime_stream_reset(src);
    filtered = g_mime_stream_filter_new(src);
    if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
        enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GMimeFilter *f = g_mime_filter_basic_new(enc, FALSE);
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
        g_object_unref(f);
    }
    for (;;) {
        ssize_t n = g_mime_stream_read(filtered, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (total + n > cap) {
            n = (ssize_t)(cap - total);
            *cut = 1;
        }
        if (keep != NULL)
            g_byte_array_append(keep, (const guint8 *)buf, (guint)n);
        total += n;
        if (*cut)
            break;
    }
    g_object_unref(filtered);
    g_mime_stream_reset(src);
    return total;
}

/* The text of a body part as valid UTF-8 (new string, g_free), at most cap decoded
 * bytes of it (*cut when more); *charset is the declared label (borrowed) or NULL. */
static char *part_text(GMimePart *part, GMimeParserOptions *opts, gint64 cap, int *cut,
                       const char **charset)
{
    GByteArray *bytes = g_byte_array_new();
    char *text;

    *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
    if (*charset != NULL && (*charset)[0] == '\0')
        *charset = NULL;
    read_content(part, bytes, cap, cut);
    text = to_utf8((const char *)bytes->data, bytes->len, *charset, opts);
    g_byte_array_free(bytes, TRUE);
    return text;
}

/* Length of the longest prefix of the UTF-8 string s within max bytes that ends on a
 * character boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Sets key to v (any bytes) made valid UTF-8, cut to max bytes on a character
 * boundary; nothing when v is NULL or empty. */
static void set_text(json_t *o, const char *key, const char *v, size_t max)
{
    char *valid;
    size_t n;

    if (v == NULL || v[0] == '\0')
        return;
    valid = g_utf8_make_valid(v, -1);
    n = utf8_cut(valid, max);
    if (n > 0)
        json_object_set_new(o, key, json_stringn(valid, n));
    g_free(valid);
}

/* ---- The MIME tree ---- */

struct walk {
    GMimePart *plain; /* first text/plain body candidate */
    GMimePart *html;  /* first text/html body candidate */
    json_t *attachments;
    int omitted; /* attachments past SB_EMAIL_MAX_ATTACHMENTS */
    int parts;
    int too_deep;
};

static int is_attachment(GMimeObject *obj)
{
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
    return d != NULL && g_mime_content_disposition_is_attachment(d);
}

static void add_attachment(struct walk *w, GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *mime = NULL;
    gint64 size = 0;
    json_t *a;
    int cut;

    if (json_array_size(w->attachments) >= SB_EMAIL_MAX_ATTACHMENTS) {
        w->omitted++;
        return;
    }
    a = json_object();
    if (GMIME_IS_PART(obj)) {
        set_text(a, "name", g_mime_part_get_filename(GMIME_PART(obj)), MAX_FILENAME_BYTES);
        size = read_content(GMIME_PART(obj), NULL, SB_EMAIL_MAX_BYTES, &cut);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (m != NULL) {
            GMimeStream *null = g_mime_stream_null_new();
            ssize_t n = g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, null);
            size = n > 0 ? n : 0;
            g_object_unref(null);
        }
    }
    if (ct != NULL && (mime = g_mime_content_type_get_mime_type(ct)) != NULL) {
        char *lower = g_ascii_strdown(mime, -1);
        set_text(a, "type", lower, MAX_TYPE_BYTES);
        g_free(lower);
        g_free(mime);
    }
    json_object_set_new(a, "size", json_integer((json_int_t)size));
    json_array_append_new(w->attachments, a);
}

/* Visits obj at nesting depth depth. Inside multipart/alternative only the text/plain
 * and text/html renderings count; other renderings are neither body nor attachment. */
static void walk(struct walk *w, GMimeObject *obj, int depth, int in_alternative)
{
    GMimeContentType *ct;

    /* The pre-scan let at most SB_EMAIL_MAX_PARTS parts through, each in at most one
     * multipart: a walk past twice that is a pre-scan miss, cut short. */
    if (obj == NULL || w->too_deep || ++w->parts > 2 * SB_EMAIL_MAX_PARTS + 1)
        return;
    if (depth > SB_EMAIL_MAX_DEPTH) {
        w->too_deep = 1;
        return;
    }
    ct = g_mime_object_get_content_type(obj);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int alt = ct != NULL && g_mime_content_type_is_type(ct, "multipart", "alternative");
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            walk(w, g_mime_multipart_get_part(mp, i), depth + 1, alt);
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        add_attachment(w, obj); /* a forwarded message is described, not opened */
        return;
    }
    if (!GMIME_IS_PART(obj))
        return;
    if (!is_attachment(obj) && ct != NULL) {
        if (g_mime_content_type_is_type(ct, "text", "plain")) {
            if (w->plain == NULL)
                w->plain = GMIME_PART(obj);
            return;
        }
        if (g_mime_content_type_is_type(ct, "text", "html")) {
            if (w->html == NULL)
                w->html = GMIME_PART(obj);
            return;
        }
    }
    if (in_alternative && !is_attachment(obj))
        return;
    add_attachment(w, obj);
}

/* ---- Quoted history ---- */

static int has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t m = strlen(prefix);
    return n >= m && memcmp(s, prefix, m) == 0;
}

static int has_suffix(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Length of the line at s without its newline and trailing white space. */
static size_t line_len(const char *s)
{
    size_t n = strcspn(s, "\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return n;
}

static int ends_wrote(const char *s, size_t n)
{
    static const char *const ends[] = {"wrote:", "写道：", "写道:", "寫道：", "寫道:"};
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        if (has_suffix(s, n, ends[i]))
            return 1;
    }
    return 0;
}

/* A separator line: dashes (at least 3), an optional title, dashes; the title one of
 * those mail clients put above a quoted message. */
static int separator_line(const char *s, size_t n)
{
    static const char *const titles[] = {"Original Message", "原始邮件", "原始郵件"};
    size_t a = 0, b = n;

    while (a < n && (s[a] == '-' || s[a] == ' '))
        a++;
    if (a < 3)
        return 0;
    while (b > a && (s[b - 1] == '-' || s[b - 1] == ' '))
        b--;
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++) {
        if (b - a == strlen(titles[i]) && g_ascii_strncasecmp(s + a, titles[i], b - a) == 0)
            return 1;
    }
    return 0;
}

/* Does quoted history start at the line s (n bytes, trimmed)? next is the following
 * line or NULL: "On …" and "在 …" headers are often wrapped onto two lines. */
static int quote_header(const char *s, size_t n, const char *next)
{
    size_t nn = next != NULL ? line_len(next) : 0;

    if (n == 0)
        return 0;
    if (has_prefix(s, n, "On ") || has_prefix(s, n, "在")) {
        if (ends_wrote(s, n) || (next != NULL && ends_wrote(next, nn)))
            return 1;
    }
    if (separator_line(s, n))
        return 1;
    if (has_prefix(s, n, "发件人:") || has_prefix(s, n, "发件人：") ||
        has_prefix(s, n, "寄件者:") || has_prefix(s, n, "寄件者："))
        return 1;
    /* Outlook: "From: …" directly followed by "Sent: …", or the rule above them. */
    if (has_prefix(s, n, "From:") && next != NULL && has_prefix(next, nn, "Sent:"))
        return 1;
    if (n >= 8 && strspn(s, "_") >= n && next != NULL &&
        (has_prefix(next, nn, "From:") || has_prefix(next, nn, "发件人")))
        return 1;
    return 0;
}

/* Removes leading blank lines and the trailing white space of every line, and
 * collapses runs of blank lines into one, in place. */
static void tidy(char *text)
{
    char *o = text;
    const char *p = text;
    int blank = 0, written = 0;

    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            n--;
        if (n == 0) {
            blank = 1;
        } else {
            /* o never passes p: each break written stands for one consumed. */
            if (written) {
                *o++ = '\n';
                if (blank)
                    *o++ = '\n';
            }
            memmove(o, p, n);
            o += n;
            written = 1;
            blank = 0;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    *o = '\0';
}

void sb_email_trim_quoted(char *text)
{
    char *line = text, *out = text;
    char *copy = sb_strdup(text);

    while (*line) {
        char *nl = strchr(line, '\n');
        size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (quote_header(line, line_len(line), nl != NULL ? nl + 1 : NULL))
            break;
        if (line[0] != '>') {
            memmove(out, line, n);
            out += n;
            if (nl != NULL)
                *out++ = '\n';
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    *out = '\0';
    tidy(text);
    if (text[0] == '\0') {
        /* Nothing but quoted text: keep it rather than lose the message. */
        memcpy(text, copy, strlen(copy) + 1);
        tidy(text);
    }
    free(copy);
}

/* CRLF and lone CR to LF, in place. */
static void unix_newlines(char *s)
{
    char *o = s;
    for (const char *p = s; *p; p++) {
        if (p[0] == '\r') {
            if (p[1] != '\n')
                *o++ = '\n';
            continue;
        }
        *o++ = *p;
    }
    *o = '\0';
}

/* ---- Headers ---- */

/* The first mailbox of list (borrowed), looking one level into groups
 * ("Sales: a@b.cn;"), or NULL. */
static InternetAddressMailbox *first_mailbox(InternetAddressList *list, int in_group)
{
    int n = list != NULL ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n; i++) {
        InternetAddress *a = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(a))
            return INTERNET_ADDRESS_MAILBOX(a);
        if (INTERNET_ADDRESS_IS_GROUP(a) && !in_group) {
            InternetAddressMailbox *mb =
                first_mailbox(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), 1);
            if (mb != NULL)
                return mb;
        }
    }
    return NULL;
}

/* Normalized address of mb into out, or -1 when it has none usable. */
static int mailbox_email(InternetAddressMailbox *mb, char *out, size_t outsz)
{
    const char *addr = mb != NULL ? internet_address_mailbox_get_addr(mb) : NULL;
    if (addr == NULL || !g_utf8_validate(addr, -1, NULL))
        return -1;
    return sb_email_normalize(addr, out, outsz) == 0 ? 0 : -1;
}

/* Message ids of header (In-Reply-To or References) in order, without brackets, or
 * NULL when none. Only the last REFS_TAIL_BYTES are parsed, the last MAX_REFS ids kept. */
static json_t *message_ids(GMimeObject *msg, GMimeParserOptions *opts, const char *header)
{
    const char *raw = g_mime_object_get_header(msg, header);
    GMimeReferences *refs;
    json_t *arr;
    int n, from;

    if (raw == NULL)
        return NULL;
    if (strlen(raw) > REFS_TAIL_BYTES) {
        const char *tail = raw + strlen(raw) - REFS_TAIL_BYTES;
        const char *lt = strchr(tail, '<');
        raw = lt != NULL ? lt : tail;
    }
    refs = g_mime_references_parse(opts, raw);
    if (refs == NULL)
        return NULL;
    arr = json_array();
    n = g_mime_references_length(refs);
    from = n > MAX_REFS ? n - MAX_REFS : 0;
    for (int i = from; i < n; i++) {
        const char *id = g_mime_references_get_message_id(refs, i);
        if (id != NULL && id[0] != '\0' && strlen(id) <= MAX_REF_BYTES &&
            g_utf8_validate(id, -1, NULL))
            json_array_append_new(arr, json_string(id));
    }
    g_mime_references_free(refs);
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

/* Is the Message-ID id (decoded, without brackets) fit to key the contact? The id
 * keys idempotency downstream: a fragment GMime salvaged from a broken header (no '@',
 * white space, control bytes) could collide with another message's, so only a
 * well-formed id is used; without one the caller derives a key from the content. */
static int usable_message_id(const char *id)
{
    size_t n = 0;
    int at = 0;

    if (id == NULL)
        return 0;
    for (; id[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)id[n];
        if (ch <= ' ' || ch == 0x7F)
            return 0;
        at |= ch == '@';
    }
    return at && n <= MAX_ID_BYTES;
}

static void set_sent_at(json_t *c, GMimeMessage *msg)
{
    GDateTime *date = g_mime_message_get_date(msg);
    char ts[SB_TIME_STRLEN + 1];
    gint64 secs;

    if (date == NULL)
        return;
    secs = g_date_time_to_unix(date);
    if (secs < 0)
        return; /* before 1970: a broken clock, not a send time */
    sb_time_format_ms((int64_t)secs * 1000, ts);
    json_object_set_new(c, "sent_at", json_string(ts));
}

/* ---- The body ---- */

/* Chooses and reduces the body: text/plain preferred, else text/html reduced to text,
 * quoted history trimmed, cut to SB_EMAIL_MAX_BODY. Sets body (when any text) and the
 * body's metadata. */
static void set_body(json_t *c, json_t *meta, const struct walk *w, GMimeParserOptions *opts)
{
    const char *charset = NULL;
    char *text = NULL;
    int cut = 0;
    size_t n;

    if (w->plain != NULL) {
        text = part_text(w->plain, opts, TEXT_SOURCE_MAX, &cut, &charset);
        unix_newlines(text);
    } else if (w->html != NULL) {
        char *html = part_text(w->html, opts, HTML_SOURCE_MAX, &cut, &charset);
        char *reduced = sb_html_to_text(html, strlen(html), HTML_TEXT_MAX);
        /* The reducer stops before a character that does not fit: a text within a
         * few bytes of its bound was cut. */
        if (strlen(reduced) + 8 >= HTML_TEXT_MAX)
            cut = 1;
        text = g_strdup(reduced);
        free(reduced);
        g_free(html);
    }
    json_object_set_new(meta, "html_only", json_boolean(w->plain == NULL && w->html != NULL));
    set_text(meta, "charset", charset, MAX_CHARSET_BYTES);
    if (text != NULL)
        sb_email_trim_quoted(text);
    n = text != NULL ? utf8_cut(text, SB_EMAIL_MAX_BODY) : 0;
    if (cut || (text != NULL && text[n] != '\0'))
        json_object_set_new(meta, "truncated", json_true());
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--; /* a cut may end on white space */
    if (n > 0)
        json_object_set_new(c, "body", json_stringn(text, n));
    else
        json_object_set_new(meta, "empty_body", json_true());
    g_free(text);
}

int sb_email_parse(const char *raw, size_t len, json_t **contact, char *errstr, size_t errstr_size)
{
    GMimeParserOptions *opts = NULL;
    GMimeStream *stream = NULL;
    GMimeParser *parser = NULL;
    GMimeMessage *msg = NULL;
    struct walk w = {NULL, NULL, NULL, 0, 0, 0};
    json_t *c = NULL, *meta = NULL, *cust, *ids;
    InternetAddressMailbox *from_mb, *reply_mb, *who;
    char from[320], reply[320];
    int have_from, have_reply;
    int rc;

    *contact = NULL;
    if (len > SB_EMAIL_MAX_BYTES) {
        sb_fmt(errstr, errstr_size, "message larger than %d bytes", SB_EMAIL_MAX_BYTES);
        return SB_E_TOOBIG;
    }
    if (len == 0) {
        sb_fmt(errstr, errstr_size, "empty message");
        return SB_E_INVAL;
    }
    opts = g_mime_parser_options_new();
    /* GMime copies the list; its prototype merely lacks the inner const. */
    g_mime_parser_options_set_fallback_charsets(opts, (const char **)fallback_charsets);
    rc = prescan(raw, len, opts, errstr, errstr_size);
    if (rc != 0)
        goto out;
    rc = SB_E_INVAL;
    stream = g_mime_stream_mem_new_with_buffer(raw, len);
    parser = g_mime_parser_new_with_stream(stream);
    msg = g_mime_parser_construct_message(parser, opts);
    if (msg == NULL) {
        sb_fmt(errstr, errstr_size, "not an RFC 5322 message");
        goto out;
    }
    from_mb = first_mailbox(g_mime_message_get_from(msg), 0);
    reply_mb = first_mailbox(g_mime_message_get_reply_to(msg), 0);
    have_from = mailbox_email(from_mb, from, sizeof(from)) == 0;
    have_reply = mailbox_email(reply_mb, reply, sizeof(reply)) == 0;
    if (!have_from && !have_reply) {
        sb_fmt(errstr, errstr_size, "field \"from\": %s",
               from_mb == NULL ? "missing" : "not an email address");
        goto out;
    }
    w.attachments = json_array();
    walk(&w, g_mime_message_get_mime_part(msg), 0, 0);
    if (w.too_deep) {
        sb_fmt(errstr, errstr_size, "MIME nesting deeper than %d", SB_EMAIL_MAX_DEPTH);
        goto out;
    }

    c = json_object();
    meta = json_object();
    json_object_set_new(c, "channel", json_string("email"));
    if (usable_message_id(g_mime_message_get_message_id(msg)))
        set_text(c, "external_id", g_mime_message_get_message_id(msg), MAX_ID_BYTES);
    /* The customer is whom a reply goes to; the name only when it belongs to that
     * address (a web form's From name is not the customer's). */
    cust = json_object();
    who = have_reply ? reply_mb : from_mb;
    json_object_set_new(cust, "email", json_string(have_reply ? reply : from));
    {
        const char *name = internet_address_get_name(INTERNET_ADDRESS(who));
        if ((name == NULL || name[0] == '\0') && have_reply && have_from &&
            strcmp(reply, from) == 0)
            name = internet_address_get_name(INTERNET_ADDRESS(from_mb));
        set_text(cust, "name", name, MAX_NAME_BYTES);
    }
    json_object_set_new(c, "customer", cust);
    set_text(c, "subject", g_mime_message_get_subject(msg), MAX_SUBJECT_BYTES);
    set_body(c, meta, &w, opts);
    set_sent_at(c, msg);
    if (json_array_size(w.attachments) > 0)
        json_object_set(c, "attachments", w.attachments);
    if (w.omitted > 0)
        json_object_set_new(meta, "attachments_omitted", json_integer(w.omitted));
    ids = message_ids(GMIME_OBJECT(msg), opts, "In-Reply-To");
    if (ids != NULL) {
        json_object_set(c, "in_reply_to", json_array_get(ids, 0));
        json_decref(ids);
    }
    ids = message_ids(GMIME_OBJECT(msg), opts, "References");
    if (ids != NULL)
        json_object_set_new(c, "references", ids);
    if (have_from)
        json_object_set_new(meta, "from", json_string(from));
    if (have_reply)
        json_object_set_new(meta, "reply_to", json_string(reply));
    json_object_set_new(c, "metadata", meta);
    meta = NULL; /* now owned by c */
    *contact = c;
    c = NULL;
    rc = 0;
out:
    json_decref(meta);
    json_decref(c);
    json_decref(w.attachments);
    if (msg != NULL)
        g_object_unref(msg);
    if (parser != NULL)
        g_object_unref(parser);
    if (stream != NULL)
        g_object_unref(stream);
    /* Last: GMime's headers keep a pointer to the options and decode lazily. */
    if (opts != NULL)
        g_mime_parser_options_free(opts);
    return rc;
}
