/* The HTTP API of sb-ingest: routing, the checks every request goes through (method,
 * content type, rate limit, signature, size, nesting, UTF-8), and the mapping of each
 * channel's wire format to the generic contact. */
#include "auth.h"
#include "email.h"
#include "ingest.h"
#include "wechat.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/util.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a channel endpoint needs to know about its own format. */
struct channel_def {
    const char *path;
    const char *channel; /* metrics label and secret name */
    json_t *(*map)(json_t *in, char *field, size_t fieldsz, char *errstr, size_t errstr_size);
};

static json_t *map_generic(json_t *in, char *field, size_t fieldsz, char *errstr,
                           size_t errstr_size);
static json_t *map_chat(json_t *in, char *field, size_t fieldsz, char *errstr, size_t errstr_size);
static json_t *map_social(json_t *in, char *field, size_t fieldsz, char *errstr,
                          size_t errstr_size);
static json_t *map_phone(json_t *in, char *field, size_t fieldsz, char *errstr, size_t errstr_size);

static const struct channel_def json_channels[] = {
    {"/v1/contacts", "api", map_generic},
    {"/v1/channels/chat", "chat", map_chat},
    {"/v1/channels/social", "social", map_social},
    {"/v1/channels/phone", "phone", map_phone},
};

static int is_json(const char *ct)
{
    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* Parses a JSON request body with the depth cap; answers 400 itself on failure. */
static json_t *parse_body(struct ingest *in, const struct sb_http_req *req,
                          struct sb_http_resp *resp, const char *channel)
{
    json_error_t jerr;
    json_t *j;
    char msg[256];

    if (req->body_len == 0) {
        ingest_error(in, resp, channel, 400, "invalid", "empty body", "body");
        return NULL;
    }
    if (sb_json_depth_ok(req->body, req->body_len, in->max_depth) != 0) {
        ingest_error(in, resp, channel, 400, "too_deep", "JSON nesting exceeds the limit", "body");
        return NULL;
    }
    j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        /* jansson validates UTF-8 and reports it as a decoding error. */
        int utf8 = strstr(jerr.text, "UTF-8") != NULL || strstr(jerr.text, "unable to decode") ||
                   strstr(jerr.text, "\\u0000") != NULL;
        sb_fmt(msg, sizeof(msg), "%s at byte %d: %s", utf8 ? "invalid text" : "invalid JSON",
               jerr.position, jerr.text);
        ingest_error(in, resp, channel, 400, utf8 ? "invalid_utf8" : "invalid_json", msg, "body");
        return NULL;
    }
    return j;
}

/* Checks the X-SB-Signature of a channel webhook; answers 401 itself on failure. */
static int signed_ok(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp,
                     const char *channel)
{
    char key[64];
    const char *secret;
    enum sb_sig_result r;

    sb_fmt(key, sizeof(key), "secrets.%s", channel);
    secret = sb_config_str(in->cfg, key);
    r = sb_sig_verify(secret, sb_http_req_header(req, "X-SB-Signature"), req->body, req->body_len,
                      sb_now_ms() / 1000, in->sig_window_s);
    if (r == SB_SIG_OK)
        return 1;
    ingest_error(in, resp, channel, 401, "unauthorized", sb_sig_result_str(r), "X-SB-Signature");
    return 0;
}

static int rate_ok(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp,
                   const char *channel)
{
    char source[80], wait[16];
    int w;

    sb_fmt(source, sizeof(source), "%s|%s", channel, req->remote_ip);
    w = sb_ratelimit_take(in->ratelimit, source, sb_mono_ms());
    if (w == 0)
        return 1;
    sb_fmt(wait, sizeof(wait), "%d", w);
    ingest_error(in, resp, channel, 429, "rate_limited", "too many requests from this source",
                 NULL);
    sb_http_resp_header(resp, "Retry-After", wait);
    return 0;
}

static int json_channel(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp,
                        const struct channel_def *def)
{
    char field[96] = "", errstr[256] = "";
    json_t *raw, *mapped, *contact = NULL;
    const char *idem = sb_http_req_header(req, "Idempotency-Key");
    int rc;

    if (!is_json(sb_http_req_header(req, "Content-Type"))) {
        ingest_error(in, resp, def->channel, 415, "unsupported_media_type",
                     "Content-Type must be application/json", "Content-Type");
        return 0;
    }
    if (!rate_ok(in, req, resp, def->channel) || !signed_ok(in, req, resp, def->channel))
        return 0;
    raw = parse_body(in, req, resp, def->channel);
    if (raw == NULL)
        return 0;
    mapped = def->map(raw, field, sizeof(field), errstr, sizeof(errstr));
    json_decref(raw);
    if (mapped == NULL) {
        ingest_error(in, resp, def->channel, 400, "invalid", errstr, field);
        return 0;
    }
    rc = sb_contact_normalize(mapped, &in->limits, &contact, field, sizeof(field), errstr,
                              sizeof(errstr));
    json_decref(mapped);
    if (rc != 0) {
        ingest_error(in, resp, def->channel, rc == SB_E_TOOBIG ? 413 : 400,
                     rc == SB_E_TOOBIG ? "too_large" : "invalid", errstr, field);
        return 0;
    }
    if (idem != NULL && (strlen(idem) == 0 || strlen(idem) > 200)) {
        json_decref(contact);
        ingest_error(in, resp, def->channel, 400, "invalid", "Idempotency-Key: 1..200 bytes",
                     "Idempotency-Key");
        return 0;
    }
    return ingest_contact(in, req, resp, contact, idem, 0);
}

/* The generic contact is already in the normalized shape. */
static json_t *map_generic(json_t *in, char *field, size_t fieldsz, char *errstr,
                           size_t errstr_size)
{
    (void)field;
    (void)fieldsz;
    (void)errstr;
    (void)errstr_size;
    return json_incref(in);
}

static int need_string(json_t *in, const char *key, const char **out, char *field, size_t fieldsz,
                       char *errstr, size_t errstr_size)
{
    json_t *j = json_object_get(in, key);
    if (!json_is_string(j) || json_string_length(j) == 0) {
        sb_strlcpy(field, key, fieldsz);
        sb_fmt(errstr, errstr_size, "%s: required non-empty string", key);
        return SB_E_INVAL;
    }
    *out = json_string_value(j);
    return 0;
}

static void copy_if(json_t *from, const char *key, json_t *to, const char *to_key)
{
    json_t *j = json_object_get(from, key);
    if (j != NULL && !json_is_null(j))
        json_object_set(to, to_key, j);
}

/* Chat widget: {"session_id","message_id","visitor":{…identities},"text","sent_at",
 * "page_url","language","attachments"}. */
static json_t *map_chat(json_t *in, char *field, size_t fieldsz, char *errstr, size_t errstr_size)
{
    const char *session, *msg;
    json_t *out, *meta;

    if (need_string(in, "session_id", &session, field, fieldsz, errstr, errstr_size) ||
        need_string(in, "message_id", &msg, field, fieldsz, errstr, errstr_size))
        return NULL;
    out = json_pack("{s:s,s:s}", "channel", "chat", "external_id", msg);
    meta = json_pack("{s:s}", "session_id", session);
    copy_if(in, "visitor", out, "customer");
    copy_if(in, "text", out, "body");
    copy_if(in, "sent_at", out, "sent_at");
    copy_if(in, "language", out, "language");
    copy_if(in, "attachments", out, "attachments");
    copy_if(in, "page_url", meta, "page_url");
    copy_if(in, "user_agent", meta, "user_agent");
    json_object_set_new(out, "metadata", meta);
    return out;
}

/* Social comment or mention: {"platform","post_id","comment_id","kind","author":
 * {"social_id","name"},"text","public","sentiment","url","sent_at"}. A public post
 * declared negative is marked for the 2-hour intervention rule (SPEC §4). */
static json_t *map_social(json_t *in, char *field, size_t fieldsz, char *errstr, size_t errstr_size)
{
    const char *platform, *post;
    const char *comment = json_string_value(json_object_get(in, "comment_id"));
    const char *sentiment = json_string_value(json_object_get(in, "sentiment"));
    json_t *pub = json_object_get(in, "public");
    json_t *out, *meta;
    char ext[256];

    if (need_string(in, "platform", &platform, field, fieldsz, errstr, errstr_size) ||
        need_string(in, "post_id", &post, field, fieldsz, errstr, errstr_size))
        return NULL;
    if (pub != NULL && !json_is_boolean(pub)) {
        sb_strlcpy(field, "public", fieldsz);
        sb_fmt(errstr, errstr_size, "public: must be a boolean");
        return NULL;
    }
    if (sentiment != NULL && strcmp(sentiment, "negative") != 0 &&
        strcmp(sentiment, "neutral") != 0 && strcmp(sentiment, "positive") != 0) {
        sb_strlcpy(field, "sentiment", fieldsz);
        sb_fmt(errstr, errstr_size, "sentiment: one of negative, neutral, positive");
        return NULL;
    }
    sb_fmt(ext, sizeof(ext), "%s:%s%s%s", platform, post, comment ? ":" : "",
           comment ? comment : "");
    out = json_pack("{s:s,s:s}", "channel", "social", "external_id", ext);
    copy_if(in, "author", out, "customer");
    copy_if(in, "text", out, "body");
    copy_if(in, "sent_at", out, "sent_at");
    copy_if(in, "language", out, "language");
    meta = json_pack("{s:s,s:s,s:b}", "platform", platform, "post_id", post, "public",
                     json_is_true(pub));
    copy_if(in, "comment_id", meta, "comment_id");
    copy_if(in, "kind", meta, "kind");
    copy_if(in, "url", meta, "url");
    copy_if(in, "sentiment", meta, "sentiment");
    json_object_set_new(
        meta, "public_negative",
        json_boolean(json_is_true(pub) && sentiment != NULL && strcmp(sentiment, "negative") == 0));
    json_object_set_new(out, "metadata", meta);
    return out;
}

/* CTI call event: {"call_id","event":offered|answered|abandoned|ended|voicemail,
 * "caller","customer_no","at","queue","agent_id","wait_seconds","duration_seconds",
 * "transcript","recording_url"}. Every event is kept on the call's timeline; an
 * abandoned call asks for a callback. */
static json_t *map_phone(json_t *in, char *field, size_t fieldsz, char *errstr, size_t errstr_size)
{
    static const char *const events[] = {"offered", "answered", "abandoned", "ended", "voicemail"};
    const char *call, *event, *caller;
    const char *transcript = json_string_value(json_object_get(in, "transcript"));
    const char *agent = json_string_value(json_object_get(in, "agent_id"));
    json_t *wait = json_object_get(in, "wait_seconds");
    json_t *dur = json_object_get(in, "duration_seconds");
    json_t *out, *meta, *cust;
    char ext[256], body[512];
    size_t i;

    if (need_string(in, "call_id", &call, field, fieldsz, errstr, errstr_size) ||
        need_string(in, "event", &event, field, fieldsz, errstr, errstr_size) ||
        need_string(in, "caller", &caller, field, fieldsz, errstr, errstr_size))
        return NULL;
    for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (strcmp(event, events[i]) == 0)
            break;
    }
    if (i == sizeof(events) / sizeof(events[0])) {
        sb_strlcpy(field, "event", fieldsz);
        sb_fmt(errstr, errstr_size, "event: one of offered, answered, abandoned, ended, voicemail");
        return NULL;
    }
    if ((wait != NULL && !json_is_integer(wait)) || (dur != NULL && !json_is_integer(dur))) {
        sb_strlcpy(field,
                   wait != NULL && !json_is_integer(wait) ? "wait_seconds" : "duration_seconds",
                   fieldsz);
        sb_fmt(errstr, errstr_size, "%s: must be an integer", field);
        return NULL;
    }
    if (strcmp(event, "voicemail") == 0 && transcript == NULL) {
        sb_strlcpy(field, "transcript", fieldsz);
        sb_fmt(errstr, errstr_size, "transcript: required for a voicemail");
        return NULL;
    }
    if (strcmp(event, "voicemail") == 0)
        sb_fmt(body, sizeof(body), "%s", "");
    else if (strcmp(event, "abandoned") == 0)
        sb_fmt(body, sizeof(body), "Abandoned call after %lld s in queue: call the customer back",
               wait ? (long long)json_integer_value(wait) : 0LL);
    else if (strcmp(event, "offered") == 0)
        sb_fmt(body, sizeof(body), "Inbound call to the hotline");
    else if (strcmp(event, "answered") == 0)
        sb_fmt(body, sizeof(body), "Call answered%s%s", agent ? " by " : "", agent ? agent : "");
    else
        sb_fmt(body, sizeof(body), "Call ended after %lld s",
               dur ? (long long)json_integer_value(dur) : 0LL);
    sb_fmt(ext, sizeof(ext), "%s:%s", call, event);
    cust = json_pack("{s:s}", "phone", caller);
    copy_if(in, "customer_no", cust, "customer_no");
    out = json_pack("{s:s,s:s,s:o,s:s}", "channel", "phone", "external_id", ext, "customer", cust,
                    "body",
                    transcript != NULL && strcmp(event, "voicemail") == 0 ? transcript : body);
    copy_if(in, "at", out, "sent_at");
    meta = json_pack("{s:s,s:s,s:b}", "call_id", call, "call_event", event, "callback_requested",
                     strcmp(event, "abandoned") == 0);
    copy_if(in, "queue", meta, "queue");
    copy_if(in, "agent_id", meta, "agent_id");
    copy_if(in, "wait_seconds", meta, "wait_seconds");
    copy_if(in, "duration_seconds", meta, "duration_seconds");
    copy_if(in, "recording_url", meta, "recording_url");
    json_object_set_new(out, "metadata", meta);
    return out;
}

static int email_channel(struct ingest *in, const struct sb_http_req *req,
                         struct sb_http_resp *resp)
{
    const char *ct = sb_http_req_header(req, "Content-Type");
    char field[96] = "", errstr[256] = "", hash[65];
    json_t *parsed = NULL, *contact = NULL;
    int rc;

    if (ct == NULL || strncasecmp(ct, "message/rfc822", 14) != 0) {
        ingest_error(in, resp, "email", 415, "unsupported_media_type",
                     "Content-Type must be message/rfc822", "Content-Type");
        return 0;
    }
    if (!rate_ok(in, req, resp, "email") || !signed_ok(in, req, resp, "email"))
        return 0;
    rc = sb_email_parse(req->body, req->body_len, &parsed, errstr, sizeof(errstr));
    if (rc != 0) {
        ingest_error(in, resp, "email", rc == SB_E_TOOBIG ? 413 : 400,
                     rc == SB_E_TOOBIG ? "too_large" : "invalid", errstr, "body");
        return 0;
    }
    if (json_object_get(parsed, "external_id") == NULL) {
        /* No Message-ID: the raw message identifies itself. */
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)req->body, req->body_len, d);
        sb_hex(d, sizeof(d), hash);
        json_object_set_new(parsed, "external_id", json_string(hash));
    }
    if (json_object_get(parsed, "body") == NULL) {
        /* No text at all (attachments only): the contact is kept, saying so, rather than
         * refused; metadata.empty_body tells it apart from a customer's words. */
        size_t n = json_array_size(json_object_get(parsed, "attachments"));
        char text[64];
        sb_fmt(text, sizeof(text), n ? "[%zu attachment%s]" : "[empty message]", n,
               n == 1 ? "" : "s");
        json_object_set_new(parsed, "body", json_string(text));
    }
    rc = sb_contact_normalize(parsed, &in->limits, &contact, field, sizeof(field), errstr,
                              sizeof(errstr));
    json_decref(parsed);
    if (rc != 0) {
        ingest_error(in, resp, "email", 400, "invalid", errstr, field);
        return 0;
    }
    return ingest_contact(in, req, resp, contact, sb_http_req_header(req, "Idempotency-Key"), 0);
}

static int wechat_channel(struct ingest *in, const struct sb_http_req *req,
                          struct sb_http_resp *resp)
{
    const char *sig = sb_http_req_query(req, "signature");
    const char *ts = sb_http_req_query(req, "timestamp");
    const char *nonce = sb_http_req_query(req, "nonce");
    const char *token = sb_config_str(in->cfg, "secrets.wechat_token");
    enum sb_wechat_kind kind;
    json_t *parsed = NULL, *contact = NULL;
    char field[96] = "", errstr[256] = "";
    int64_t t;
    int rc;

    if (!rate_ok(in, req, resp, "wechat"))
        return 0;
    if (sig == NULL || ts == NULL || nonce == NULL ||
        !sb_wechat_signature_ok(token, ts, nonce, sig)) {
        ingest_error(in, resp, "wechat", 401, "unauthorized", "invalid WeChat signature",
                     "signature");
        return 0;
    }
    if (sb_parse_int64(ts, &t) != 0 || t < sb_now_ms() / 1000 - in->sig_window_s ||
        t > sb_now_ms() / 1000 + in->sig_window_s) {
        ingest_error(in, resp, "wechat", 401, "unauthorized",
                     "timestamp outside the allowed window", "timestamp");
        return 0;
    }
    if (strcmp(req->method, "GET") == 0) {
        /* Server URL verification: echo echostr back as plain text. */
        const char *echo = sb_http_req_query(req, "echostr");
        if (echo == NULL) {
            ingest_error(in, resp, "wechat", 400, "invalid", "echostr: required", "echostr");
            return 0;
        }
        sb_http_resp_text(resp, 200, "text/plain", echo, strlen(echo));
        return 0;
    }
    rc = sb_wechat_parse(req->body, req->body_len, &kind, &parsed, errstr, sizeof(errstr));
    if (rc != 0) {
        ingest_error(in, resp, "wechat", rc == SB_E_TOOBIG ? 413 : 400,
                     rc == SB_E_TOOBIG ? "too_large" : "invalid", errstr, "body");
        return 0;
    }
    if (kind == SB_WECHAT_IGNORE) {
        sb_http_resp_text(resp, 200, "text/plain", SB_WECHAT_REPLY, strlen(SB_WECHAT_REPLY));
        return 0;
    }
    rc = sb_contact_normalize(parsed, &in->limits, &contact, field, sizeof(field), errstr,
                              sizeof(errstr));
    json_decref(parsed);
    if (rc != 0) {
        ingest_error(in, resp, "wechat", 400, "invalid", errstr, field);
        return 0;
    }
    return ingest_contact(in, req, resp, contact, NULL, 1);
}

int ingest_handle(void *ctx, const struct sb_http_req *req, struct sb_http_resp *resp)
{
    struct ingest *in = ctx;

    if (in->noop_endpoint && strcmp(req->path, "/v1/noop") == 0) {
        /* The benchmark's baseline: the same server and body, no intake work. */
        sb_http_resp_text(resp, 202, "application/json", "{}", 2);
        return 0;
    }
    for (size_t i = 0; i < sizeof(json_channels) / sizeof(json_channels[0]); i++) {
        if (strcmp(req->path, json_channels[i].path) == 0) {
            if (strcmp(req->method, "POST") != 0) {
                ingest_error(in, resp, json_channels[i].channel, 405, "method_not_allowed",
                             "use POST", NULL);
                return 0;
            }
            return json_channel(in, req, resp, &json_channels[i]);
        }
    }
    if (strcmp(req->path, "/v1/channels/email") == 0) {
        if (strcmp(req->method, "POST") != 0) {
            ingest_error(in, resp, "email", 405, "method_not_allowed", "use POST", NULL);
            return 0;
        }
        return email_channel(in, req, resp);
    }
    if (strcmp(req->path, "/v1/channels/wechat") == 0) {
        if (strcmp(req->method, "POST") != 0 && strcmp(req->method, "GET") != 0) {
            ingest_error(in, resp, "wechat", 405, "method_not_allowed", "use GET or POST", NULL);
            return 0;
        }
        return wechat_channel(in, req, resp);
    }
    if (strncmp(req->path, "/v1/tickets/", 12) == 0 || strncmp(req->path, "/v1/agents/", 11) == 0)
        return ingest_action(in, req, resp);
    ingest_error(in, resp, "none", 404, "not_found", "no such endpoint", "path");
    return 0;
}
