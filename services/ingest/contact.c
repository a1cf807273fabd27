/* Validation and normalization of contacts (see contact.h). Everything that comes
 * from a client is checked here once, so that every channel produces the same,
 * schema-valid contact.received payload. */
#include "contact.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/normalize.h"
#include "sb/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 200
#define NAME_MAX_BYTES 200

static const char *const channels[] = {"chat", "email", "phone", "wechat", "social", "web", "api"};

int sb_contact_channel_index(const char *channel)
{
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        if (strcmp(channel, channels[i]) == 0)
            return (int)i;
    }
    return -1;
}

const char *sb_contact_channel_name(int i)
{
    return i >= 0 && (size_t)i < sizeof(channels) / sizeof(channels[0]) ? channels[i] : NULL;
}

int sb_contact_channel_valid(const char *channel)
{
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        if (strcmp(channel, channels[i]) == 0)
            return 1;
    }
    return 0;
}

int sb_json_depth_ok(const char *buf, size_t len, int max_depth)
{
    int depth = 0, in_string = 0;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character */
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return SB_E_TOOBIG;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

struct check {
    char *field;
    size_t fieldsz;
    char *errstr;
    size_t errstr_size;
};

static int fail(struct check *c, const char *field, const char *msg)
{
    sb_strlcpy(c->field, field, c->fieldsz);
    sb_fmt(c->errstr, c->errstr_size, "%s: %s", field, msg);
    return SB_E_INVAL;
}

/* Copies an optional string member (max bytes, non-empty when present) to out. */
static int opt_string(struct check *c, json_t *obj, const char *key, const char *field, size_t max,
                      json_t *out, const char *out_key)
{
    json_t *j = json_object_get(obj, key);

    if (j == NULL || json_is_null(j))
        return 0;
    if (!json_is_string(j))
        return fail(c, field, "must be a string");
    if (json_string_length(j) > max)
        return fail(c, field, "too long");
    if (memchr(json_string_value(j), '\0', json_string_length(j)) != NULL)
        return fail(c, field, "must not contain NUL characters");
    if (json_string_length(j) == 0)
        return 0;
    json_object_set(out, out_key, j);
    return 0;
}

static int check_keys(struct check *c, json_t *obj, const char *const *known, size_t n,
                      const char *prefix)
{
    const char *k;
    json_t *v;
    char field[128];

    json_object_foreach(obj, k, v)
    {
        size_t i;
        for (i = 0; i < n; i++) {
            if (strcmp(k, known[i]) == 0)
                break;
        }
        if (i == n) {
            sb_fmt(field, sizeof(field), "%s%.64s", prefix, k);
            return fail(c, field, "unknown field");
        }
    }
    return 0;
}

static int customer(struct check *c, json_t *in, json_t *out)
{
    static const char *const known[] = {"customer_no",   "phone",     "email",
                                        "wechat_openid", "social_id", "name"};
    json_t *cust = json_object_get(in, "customer");
    json_t *o;
    char buf[300];
    json_t *j;

    if (!json_is_object(cust))
        return fail(c, "customer", "required object with at least one identity");
    if (check_keys(c, cust, known, 6, "customer.") != 0)
        return SB_E_INVAL;
    o = json_object();
    json_object_set_new(out, "customer", o);
    if (opt_string(c, cust, "customer_no", "customer.customer_no", ID_MAX, o, "customer_no") ||
        opt_string(c, cust, "wechat_openid", "customer.wechat_openid", ID_MAX, o,
                   "wechat_openid") ||
        opt_string(c, cust, "social_id", "customer.social_id", ID_MAX, o, "social_id") ||
        opt_string(c, cust, "name", "customer.name", NAME_MAX_BYTES, o, "name"))
        return SB_E_INVAL;
    j = json_object_get(cust, "phone");
    if (j != NULL && !json_is_null(j)) {
        if (!json_is_string(j) || sb_phone_normalize(json_string_value(j), buf, sizeof(buf)) != 0)
            return fail(c, "customer.phone", "not a phone number");
        json_object_set_new(o, "phone", json_string(buf));
    }
    j = json_object_get(cust, "email");
    if (j != NULL && !json_is_null(j)) {
        if (!json_is_string(j) || sb_email_normalize(json_string_value(j), buf, sizeof(buf)) != 0)
            return fail(c, "customer.email", "not an email address");
        json_object_set_new(o, "email", json_string(buf));
    }
    if (json_object_get(o, "customer_no") == NULL && json_object_get(o, "phone") == NULL &&
        json_object_get(o, "email") == NULL && json_object_get(o, "wechat_openid") == NULL &&
        json_object_get(o, "social_id") == NULL)
        return fail(c, "customer",
                    "at least one identity is required (customer_no, phone, "
                    "email, wechat_openid, social_id)");
    return 0;
}

static int attachments(struct check *c, json_t *in, json_t *out, size_t max)
{
    json_t *a = json_object_get(in, "attachments");
    json_t *arr, *item;
    size_t i;

    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return fail(c, "attachments", "must be an array");
    if (json_array_size(a) > max)
        return fail(c, "attachments", "too many entries");
    arr = json_array();
    json_object_set_new(out, "attachments", arr);
    json_array_foreach(a, i, item)
    {
        static const char *const known[] = {"name", "type", "size", "url"};
        json_t *o, *size;
        if (!json_is_object(item))
            return fail(c, "attachments[]", "must be objects");
        if (check_keys(c, item, known, 4, "attachments[].") != 0)
            return SB_E_INVAL;
        o = json_object();
        json_array_append_new(arr, o);
        if (opt_string(c, item, "name", "attachments[].name", 255, o, "name") ||
            opt_string(c, item, "type", "attachments[].type", 127, o, "type") ||
            opt_string(c, item, "url", "attachments[].url", 2048, o, "url"))
            return SB_E_INVAL;
        if (json_object_get(o, "name") == NULL) /* events always name an attachment */
            json_object_set_new(o, "name", json_string("attachment"));
        size = json_object_get(item, "size");
        if (size != NULL && (!json_is_integer(size) || json_integer_value(size) < 0))
            return fail(c, "attachments[].size", "must be a non-negative integer");
        json_object_set_new(o, "size", json_integer(size ? json_integer_value(size) : 0));
    }
    return 0;
}

static int references(struct check *c, json_t *in, json_t *out)
{
    json_t *r = json_object_get(in, "references");
    json_t *arr, *item;
    size_t i;

    if (r == NULL || json_is_null(r))
        return 0;
    if (!json_is_array(r) || json_array_size(r) > 100)
        return fail(c, "references", "must be an array of at most 100 message ids");
    arr = json_array();
    json_object_set_new(out, "references", arr);
    json_array_foreach(r, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) == 0 ||
            json_string_length(item) > 998)
            return fail(c, "references[]", "must be non-empty strings");
        json_array_append(arr, item);
    }
    return 0;
}

int sb_contact_normalize(json_t *in, const struct sb_contact_limits *lim, json_t **out, char *field,
                         size_t fieldsz, char *errstr, size_t errstr_size)
{
    static const char *const known[] = {"channel",     "external_id", "customer",    "subject",
                                        "body",        "sent_at",     "attachments", "metadata",
                                        "in_reply_to", "references",  "language"};
    struct check c = {field, fieldsz, errstr, errstr_size};
    json_t *o = json_object();
    json_t *j;
    int64_t ms;
    char *meta;
    int rc = SB_E_INVAL;

    *out = NULL;
    if (!json_is_object(in)) {
        fail(&c, "body", "must be a JSON object");
        goto out;
    }
    if (check_keys(&c, in, known, sizeof(known) / sizeof(known[0]), "") != 0)
        goto out;
    j = json_object_get(in, "channel");
    if (!json_is_string(j) || !sb_contact_channel_valid(json_string_value(j))) {
        fail(&c, "channel", "required: one of chat, email, phone, wechat, social, web, api");
        goto out;
    }
    json_object_set(o, "channel", j);
    j = json_object_get(in, "external_id");
    if (!json_is_string(j) || json_string_length(j) == 0 || json_string_length(j) > ID_MAX) {
        fail(&c, "external_id", "required string of 1..200 bytes");
        goto out;
    }
    json_object_set(o, "external_id", j);
    if (customer(&c, in, o) != 0)
        goto out;
    if (opt_string(&c, in, "subject", "subject", lim->max_subject, o, "subject") != 0)
        goto out;
    j = json_object_get(in, "body");
    if (!json_is_string(j) || json_string_length(j) == 0) {
        fail(&c, "body", "required non-empty string");
        goto out;
    }
    if (opt_string(&c, in, "body", "body", lim->max_body, o, "body") != 0)
        goto out;
    j = json_object_get(in, "sent_at");
    if (j != NULL && !json_is_null(j)) {
        char norm[SB_TIME_STRLEN + 1];
        if (!json_is_string(j) || sb_time_parse(json_string_value(j), &ms) != 0) {
            fail(&c, "sent_at", "must be an RFC 3339 time");
            goto out;
        }
        sb_time_format_ms(ms, norm);
        json_object_set_new(o, "sent_at", json_string(norm));
    }
    if (attachments(&c, in, o, lim->max_attachments) != 0 || references(&c, in, o) != 0 ||
        opt_string(&c, in, "in_reply_to", "in_reply_to", 998, o, "in_reply_to") != 0 ||
        opt_string(&c, in, "language", "language", 16, o, "language") != 0)
        goto out;
    j = json_object_get(in, "metadata");
    if (j != NULL && !json_is_null(j)) {
        if (!json_is_object(j)) {
            fail(&c, "metadata", "must be an object");
            goto out;
        }
        meta = json_dumps(j, JSON_COMPACT);
        if (meta == NULL || strlen(meta) > lim->max_metadata) {
            free(meta);
            fail(&c, "metadata", "too large");
            rc = SB_E_TOOBIG;
            goto out;
        }
        free(meta);
        json_object_set(o, "metadata", j);
    } else {
        json_object_set_new(o, "metadata", json_object());
    }
    *out = o;
    o = NULL;
    rc = 0;
out:
    json_decref(o);
    return rc;
}
