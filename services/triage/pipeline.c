/* The triage batch: each consumed message is classified, extracted and masked on
 * arrival (CPU only); the batch flush then does the round trips once for all of it —
 * customer tiers (Redis cache, PostgreSQL on a miss), the incident windows (one Lua
 * call), the remembered ticket scores — produces every event, waits for Kafka's
 * acknowledgement, and only then records the new ticket scores in Redis. Produced
 * event ids derive from the consumed ones, so a batch handled twice produces the same
 * events and consumers drop the copies.
 *
 * Redis keys:
 *   sb:tier:<hash>            "<tier>,<enterprise>" of a customer (TTL cache.tier_ttl_s)
 *   sb:triage:t:<ticket>      hash u,i,t,d,s,b,inc,ov,dom: a ticket's last scores
 *   sb:inc:w:<sig hash>       sorted set of the tickets of a signature (score: ms)
 *   sb:inc:i:<sig hash>       hash id, creator: the open incident of a signature */
#include "triage.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/normalize.h"
#include "sb/stage.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

/* KEYS: pairs (window, incident) per item. ARGV: window_ms, threshold, then triples
 * (ticket, proposed id, contact time ms) per item. The window slides on the contacts'
 * own times, so a replay of old contacts finds what it found the first time. Returns
 * per item {id or "", count, members or {}}: members are listed for the item that
 * opened the incident (also when it is handled again), so that every member gets
 * linked. */
static const char incident_lua[] =
    "local win, thr = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local out = {}\n"
    "for k = 1, #KEYS / 2 do\n"
    "  local w, inc = KEYS[2 * k - 1], KEYS[2 * k]\n"
    "  local ticket, proposed = ARGV[3 * k], ARGV[3 * k + 1]\n"
    "  local at = tonumber(ARGV[3 * k + 2])\n"
    "  redis.call('ZADD', w, 'NX', at, ticket)\n"
    "  redis.call('PEXPIRE', w, win)\n"
    "  local n = redis.call('ZCOUNT', w, at - win, at + win)\n"
    "  local id = redis.call('HGET', inc, 'id')\n"
    "  local last = tonumber(redis.call('HGET', inc, 'last') or '0') or 0\n"
    "  local members = {}\n"
    "  if id and last >= at - win then\n"
    "    if at > last then\n"
    "      redis.call('HSET', inc, 'last', at)\n"
    "    end\n"
    "    redis.call('PEXPIRE', inc, win)\n"
    "    if redis.call('HGET', inc, 'creator') == ticket then\n"
    "      members = redis.call('ZRANGEBYSCORE', w, at - win, at + win)\n"
    "    end\n"
    "  elseif n >= thr then\n"
    "    id = proposed\n"
    "    redis.call('DEL', inc)\n"
    "    redis.call('HSET', inc, 'id', id, 'creator', ticket, 'last', at)\n"
    "    redis.call('PEXPIRE', inc, win)\n"
    "    members = redis.call('ZRANGEBYSCORE', w, at - win, at + win)\n"
    "  else\n"
    "    id = ''\n"
    "  end\n"
    "  redis.call('ZREMRANGEBYSCORE', w, '-inf', at - 2 * win)\n"
    "  out[k] = {id, n, members}\n"
    "end\n"
    "return out\n";

void triage_register_scripts(struct triage *t)
{
    t->incident_script = sb_redis_script_add(t->redis, incident_lua);
}

/* ---------- handling one message (no I/O) ---------- */

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Masks src into a new JSON string. The input comes from a decoded event (valid UTF-8)
 * and masking only replaces ASCII digits and letters with '*', never cutting a
 * character, so the result needs no second validation. */
static json_t *masked_string(const char *src, size_t len)
{
    size_t cap = len * 2 + 16;
    char *buf = sb_malloc(cap);
    json_t *s;
    sb_mask_text(src, len, buf, cap);
    s = json_stringn_nocheck(buf, strlen(buf));
    free(buf);
    return s;
}

static void set_masked(json_t *o, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0')
        json_object_set_new(o, key, masked_string(value, strlen(value)));
}

/* Cuts s to at most max bytes at a UTF-8 character boundary. */
static void utf8_cut(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

/* The core need: the subject, else the first sentence of the body (masked). */
static void core_need(const char *subject, const char *body, char *out, size_t outsz)
{
    const char *src = subject != NULL && subject[0] != '\0' ? subject : body;
    size_t n = 0, len = strlen(src);
    char *tmp;

    while (n < len) {
        unsigned char c = (unsigned char)src[n];
        if (c == '\n' || c == '.' || c == '!' || c == '?')
            break;
        /* 。！？ */
        if (c == 0xE3 && n + 2 < len && (unsigned char)src[n + 1] == 0x80 &&
            (unsigned char)src[n + 2] == 0x82)
            break;
        if (c == 0xEF && n + 2 < len && (unsigned char)src[n + 1] == 0xBC &&
            ((unsigned char)src[n + 2] == 0x81 || (unsigned char)src[n + 2] == 0x9F))
            break;
        n++;
    }
    tmp = sb_malloc(n * 2 + 16);
    sb_mask_text(src, n, tmp, n * 2 + 16);
    utf8_cut(tmp, outsz > 1 ? outsz - 1 : 0);
    sb_strlcpy(out, tmp, outsz);
    free(tmp);
}

static int has_cjk(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0xE3 && (unsigned char)*s <= 0xE9)
            return 1;
    return 0;
}

static void join_where(struct item *it, const struct sb_extract *ex)
{
    const char *parts[] = {it->channel, ex->page, ex->os, ex->device};
    size_t n = 0;
    it->where[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (parts[i][0] == '\0')
            continue;
        sb_fmt(it->where + n, sizeof(it->where) - n, "%s%s", n ? ", " : "", parts[i]);
        n = strlen(it->where);
    }
}

static void make_who(struct item *it, const json_t *customer)
{
    const char *name = str_of(customer, "name"), *phone = str_of(customer, "phone");
    const char *email = str_of(customer, "email");
    char contact[160] = "";

    if (phone != NULL && phone[0] != '\0')
        sb_phone_mask(phone, contact, sizeof(contact));
    else if (email != NULL && email[0] != '\0')
        sb_mask_text(email, strlen(email), contact, sizeof(contact));
    sb_fmt(it->who, sizeof(it->who), "%s%s%s", name != NULL ? name : "",
           name != NULL && name[0] != '\0' && contact[0] != '\0' ? " " : "", contact);
    utf8_cut(it->who, 200);
}

static json_t *fivew1h(const struct item *it, const struct sb_extract *ex, const char *what)
{
    json_t *f = json_object();
    set_masked(f, "what", what);
    if (ex->when[0] != '\0')
        json_object_set_new(f, "when", json_string(ex->when));
    else
        set_masked(f, "when", ex->when_words);
    set_masked(f, "where", it->where);
    if (ex->outcome != SB_OUTCOME_NONE)
        json_object_set_new(f, "why", json_string(sb_outcome_name(ex->outcome)));
    set_masked(f, "how", ex->error_text);
    set_masked(f, "error_text", ex->error_text);
    set_masked(f, "order_no", ex->order_no);
    if (ex->has_amount) {
        json_object_set_new(f, "amount", json_real(ex->amount));
        if (ex->currency[0] != '\0')
            json_object_set_new(f, "currency", json_string(ex->currency));
    }
    return f;
}

static json_t *rules_fired(const struct sb_ruleset *rs, const struct sb_classification *cl)
{
    json_t *a = json_array();
    for (int i = 0; i < cl->nfired; i++) {
        const struct sb_rule *r = sb_ruleset_rule(rs, (size_t)cl->fired[i]);
        json_t *o = json_pack("{s:s}", "rule", r->id);
        if (r->domain >= 0) {
            json_object_set_new(o, "weight", json_real(r->weight));
            json_object_set_new(o, "field", json_string("domain"));
        } else if (r->urgency > 0) {
            json_object_set_new(o, "field", json_string("urgency"));
        } else if (r->flags != 0) {
            json_object_set_new(o, "field", json_string("flags"));
        }
        json_array_append_new(a, o);
    }
    if (!cl->by_rule)
        json_array_append_new(a, json_pack("{s:s, s:f, s:s}", "rule", "model", "weight",
                                           cl->confidence, "field", "domain"));
    return a;
}

static json_t *flags_json(unsigned flags)
{
    return json_pack("{s:b, s:b, s:b, s:b}", "legal_pr", (flags & SB_FLAG_LEGAL_PR) != 0,
                     "public_negative", (flags & SB_FLAG_PUBLIC_NEGATIVE) != 0, "self_service",
                     (flags & SB_FLAG_SELF_SERVICE) != 0, "spam", (flags & SB_FLAG_SPAM) != 0);
}

static struct item *item_new(struct triage *t, enum item_kind kind, const struct sb_event *ev)
{
    struct item *it;
    if (t->nitems == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->items = sb_realloc(t->items, t->cap * sizeof(*t->items));
    }
    it = &t->items[t->nitems++];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    sb_strlcpy(it->src_id, ev->event_id, sizeof(it->src_id));
    it->src_ms = sb_uuid7_time_ms(ev->event_id);
    if (it->src_ms < 0)
        it->src_ms = ev->occurred_ms;
    sb_strlcpy(it->ticket_id, ev->ticket_id, sizeof(it->ticket_id));
    sb_strlcpy(it->trace_id, ev->trace_id, sizeof(it->trace_id));
    return it;
}

static enum sb_stage_result handle_contact(struct triage *t, const struct sb_event *ev,
                                           char *reason, size_t rsz)
{
    const json_t *p = ev->payload;
    const char *contact_id = str_of(p, "contact_id"), *channel = str_of(p, "channel");
    const char *body = str_of(p, "body"), *subject = str_of(p, "subject");
    const char *customer_key = str_of(p, "customer_key"), *lang = str_of(p, "language");
    const json_t *customer = json_object_get(p, "customer"), *meta = json_object_get(p, "metadata");
    const char *received = str_of(p, "received_at");
    json_t *new_ticket = json_object_get(p, "new_ticket");
    int64_t ref_ms = ev->occurred_ms;
    struct sb_extract ex;
    struct item *it;
    char *text, what[256];
    size_t len;
    int64_t t0 = sb_mono_us();

    if (ev->ticket_id[0] == '\0') {
        sb_fmt(reason, rsz, "contact.received without ticket_id");
        return SB_STAGE_INVALID;
    }
    if (contact_id == NULL || strlen(contact_id) > 40) {
        sb_fmt(reason, rsz, "payload.contact_id: a string is required");
        return SB_STAGE_INVALID;
    }
    if (channel == NULL || strlen(channel) > 15) {
        sb_fmt(reason, rsz, "payload.channel: a channel name is required");
        return SB_STAGE_INVALID;
    }
    if (body == NULL) {
        sb_fmt(reason, rsz, "payload.body: a string is required");
        return SB_STAGE_INVALID;
    }
    if (customer_key == NULL || customer_key[0] == '\0' || strlen(customer_key) > 200) {
        sb_fmt(reason, rsz, "payload.customer_key: a string of 1-200 bytes is required");
        return SB_STAGE_INVALID;
    }
    if (!json_is_boolean(new_ticket)) {
        sb_fmt(reason, rsz, "payload.new_ticket: true or false is required");
        return SB_STAGE_INVALID;
    }
    if (received != NULL)
        sb_time_parse(received, &ref_ms);

    it = item_new(t, ITEM_CONTACT, ev);
    sb_strlcpy(it->contact_id, contact_id, sizeof(it->contact_id));
    sb_strlcpy(it->channel, channel, sizeof(it->channel));
    sb_strlcpy(it->customer_key, customer_key, sizeof(it->customer_key));
    it->new_ticket = json_is_true(new_ticket);

    /* One text for rules, model and extraction: the subject, then the body. */
    len = (subject ? strlen(subject) + 1 : 0) + strlen(body);
    text = sb_malloc(len + 1);
    sb_fmt(text, len + 1, "%s%s%s", subject ? subject : "", subject ? "\n" : "", body);
    sb_extract_text(text, len, ref_ms, t->tz_offset_min, &ex);
    if (sb_classify(t->rules, t->scan, t->model, text, len, &ex, &it->cl) != 0) {
        free(text);
        t->nitems--;
        return SB_STAGE_RETRY; /* Hyperscan failed on a valid text: not the message's fault */
    }
    free(text);
    /* Intake already knows some things: a public post with negative sentiment. */
    if (json_is_true(json_object_get(meta, "public_negative")))
        it->cl.flags |= SB_FLAG_PUBLIC_NEGATIVE;
    it->has_amount = ex.has_amount;
    it->amount = ex.amount;
    make_who(it, customer);
    join_where(it, &ex);
    core_need(subject, body, what, sizeof(what));

    json_t *pl = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "contact_id", contact_id,
                           "customer_key", customer_key, "channel", channel, "domain",
                           sb_domain_name(it->cl.domain), "nature", sb_nature_name(it->cl.nature),
                           "stage", sb_stage_name(it->cl.stage), "urgency", it->cl.urgency);
    json_object_set_new(pl, "fivew1h", fivew1h(it, &ex, what));
    json_object_set_new(pl, "rules_fired", rules_fired(t->rules, &it->cl));
    json_object_set_new(pl, "masked_body", masked_string(body, strlen(body)));
    if (subject != NULL && subject[0] != '\0')
        json_object_set_new(pl, "masked_subject", masked_string(subject, strlen(subject)));
    json_object_set_new(pl, "flags", flags_json(it->cl.flags));
    json_object_set_new(pl, "language",
                        json_string(lang != NULL && lang[0] != '\0' && strlen(lang) <= 16 ? lang
                                    : has_cjk(body)                                       ? "zh"
                                                                                          : "en"));
    if (json_is_string(json_object_get(meta, "product_line")) &&
        strlen(str_of(meta, "product_line")) <= 63)
        json_object_set(pl, "product_line", json_object_get(meta, "product_line"));
    if (it->cl.article != NULL) {
        json_t *a = json_object_get(t->articles, it->cl.article);
        if (a != NULL)
            json_object_set_new(pl, "suggestion",
                                json_pack("{s:s, s:O, s:O}", "article_id", it->cl.article, "title",
                                          json_object_get(a, "title"), "answer",
                                          json_object_get(a, "answer")));
    }
    it->payload = pl;
    sb_metric_observe(t->m_classify_seconds, (double)(sb_mono_us() - t0) / 1e6);
    return SB_STAGE_PENDING;
}

static enum sb_stage_result handle_override(struct triage *t, const struct sb_event *ev,
                                            char *reason, size_t rsz)
{
    const json_t *p = ev->payload;
    const char *band = str_of(p, "band"), *why = str_of(p, "reason");
    const char *ticket = str_of(p, "ticket_id");
    json_t *actor = json_object_get(p, "actor");
    struct item *it;

    if (band == NULL || strlen(band) != 2 || band[0] != 'P' || band[1] < '1' || band[1] > '4') {
        sb_fmt(reason, rsz, "payload.band: P1, P2, P3 or P4 is required");
        return SB_STAGE_INVALID;
    }
    if (!json_is_object(actor) || !json_is_string(json_object_get(actor, "role"))) {
        sb_fmt(reason, rsz, "payload.actor: an object with a role is required");
        return SB_STAGE_INVALID;
    }
    if (why == NULL || why[0] == '\0') {
        sb_fmt(reason, rsz, "payload.reason: why the priority changed is required");
        return SB_STAGE_INVALID;
    }
    if (ticket == NULL)
        ticket = ev->ticket_id;
    if (ticket[0] == '\0' || strlen(ticket) > 63) {
        sb_fmt(reason, rsz, "payload.ticket_id: a ticket id is required");
        return SB_STAGE_INVALID;
    }
    it = item_new(t, ITEM_OVERRIDE, ev);
    sb_strlcpy(it->ticket_id, ticket, sizeof(it->ticket_id));
    sb_strlcpy(it->band, band, sizeof(it->band));
    sb_strlcpy(it->reason, why, sizeof(it->reason));
    it->actor = json_deep_copy(actor);
    return SB_STAGE_PENDING;
}

enum sb_stage_result triage_handle(void *ctx, const struct sb_event *ev,
                                   const rd_kafka_message_t *rkm, char *reason, size_t rsz)
{
    struct triage *t = ctx;
    const char *topic = rd_kafka_topic_name(rkm->rkt);

    if (strcmp(topic, t->topic_activity) == 0) {
        if (strcmp(ev->type, "ticket.priority_overridden") == 0)
            return handle_override(t, ev, reason, rsz);
        return SB_STAGE_DONE; /* other agent actions are not triage's business */
    }
    if (strcmp(ev->type, "contact.received") != 0) {
        sb_fmt(reason, rsz, "unknown event type \"%s\" on %s", ev->type, topic);
        return SB_STAGE_INVALID;
    }
    if (ev->schema != 1) {
        sb_fmt(reason, rsz, "contact.received schema %d is not supported", ev->schema);
        return SB_STAGE_INVALID;
    }
    return handle_contact(t, ev, reason, rsz);
}

/* ---------- the flush ---------- */

void triage_batch_clear(struct triage *t)
{
    for (size_t i = 0; i < t->nitems; i++) {
        json_decref(t->items[i].payload);
        json_decref(t->items[i].actor);
        json_decref(t->items[i].members);
    }
    t->nitems = 0;
    t->nstates = 0;
}

static struct tstate *state_find(struct triage *t, const char *ticket)
{
    for (size_t i = 0; i < t->nstates; i++)
        if (strcmp(t->states[i].ticket_id, ticket) == 0)
            return &t->states[i];
    return NULL;
}

static struct tstate *state_add(struct triage *t, const char *ticket)
{
    struct tstate *s = state_find(t, ticket);
    if (s != NULL)
        return s;
    if (t->nstates == t->scap) {
        t->scap = t->scap ? t->scap * 2 : 256;
        t->states = sb_realloc(t->states, t->scap * sizeof(*t->states));
    }
    s = &t->states[t->nstates++];
    memset(s, 0, sizeof(*s));
    sb_strlcpy(s->ticket_id, ticket, sizeof(s->ticket_id));
    return s;
}

static void state_key(const char *ticket, char *out, size_t outsz)
{
    sb_fmt(out, outsz, "sb:triage:t:%s", ticket);
}

/* Customer tiers for every contact of the batch: Redis first, PostgreSQL for the
 * misses (then cached). PostgreSQL down: the tier falls back to "new" for this
 * batch (counted and logged), so that tickets still flow. */
static int lookup_tiers(struct triage *t)
{
    size_t n = 0;
    int *argcs;
    const char ***argvs;
    redisReply **replies;
    char(*keys)[96];
    size_t *idx;

    for (size_t i = 0; i < t->nitems; i++)
        n += t->items[i].kind == ITEM_CONTACT;
    if (n == 0)
        return 0;
    argcs = sb_calloc(n, sizeof(*argcs));
    argvs = sb_calloc(n, sizeof(*argvs));
    replies = sb_calloc(n, sizeof(*replies));
    keys = sb_calloc(n, sizeof(*keys));
    idx = sb_calloc(n, sizeof(*idx));
    const char **argv = sb_calloc(n * 2, sizeof(*argv));
    size_t k = 0;
    for (size_t i = 0; i < t->nitems; i++) {
        if (t->items[i].kind != ITEM_CONTACT)
            continue;
        sb_tier_cache_key(t->items[i].customer_key, keys[k], sizeof(keys[k]));
        argv[2 * k] = "GET";
        argv[2 * k + 1] = keys[k];
        argvs[k] = &argv[2 * k];
        argcs[k] = 2;
        idx[k++] = i;
    }
    int rc = sb_redis_pipeline(t->redis, n, argcs, argvs, NULL, replies);
    if (rc != 0)
        goto out;

    /* Misses: one query for all of them. */
    json_t *missing = json_array();
    for (k = 0; k < n; k++) {
        struct item *it = &t->items[idx[k]];
        if (replies[k] != NULL && replies[k]->type == REDIS_REPLY_STRING &&
            sscanf(replies[k]->str, "%d,%d", &it->tier, &it->enterprise) == 2 && it->tier >= 1 &&
            it->tier <= 3)
            continue;
        it->tier = 0;
        json_array_append_new(missing, json_string(it->customer_key));
    }
    if (json_array_size(missing) > 0) {
        struct sb_pg *pg = triage_pg(t);
        PGresult *res = NULL;
        char *arr = json_dumps(missing, JSON_COMPACT), err[256];
        int perr = 0;
        /* A JSON array of strings is turned into a text[] by PostgreSQL itself. */
        const char *params[1] = {arr};
        if (pg != NULL)
            res = sb_pg_query(pg,
                              "SELECT customer_no, annual_spend::float8, is_partner, "
                              "is_enterprise FROM customers WHERE customer_no IN "
                              "(SELECT jsonb_array_elements_text($1::jsonb))",
                              1, params, &perr, err, sizeof(err));
        free(arr);
        if (res == NULL) {
            sb_metric_inc(t->m_crm_unavailable);
            sb_log_kv(SB_LOG_WARN, "customer tiers unavailable; scoring as new customers", "detail",
                      pg != NULL ? err : "postgresql unreachable", NULL);
        }
        const char **set_argv = sb_calloc(n * 5, sizeof(*set_argv));
        char(*vals)[16] = sb_calloc(n, sizeof(*vals)), ttl[24];
        int *set_argc = sb_calloc(n, sizeof(*set_argc));
        const char ***set_argvs = sb_calloc(n, sizeof(*set_argvs));
        redisReply **set_rep = sb_calloc(n, sizeof(*set_rep));
        size_t m = 0;
        sb_fmt(ttl, sizeof(ttl), "%d", t->tier_ttl_s);
        for (k = 0; k < n; k++) {
            struct item *it = &t->items[idx[k]];
            if (it->tier != 0)
                continue;
            it->tier = SB_TIER_NEW;
            if (res == NULL)
                continue;
            for (int r = 0; r < PQntuples(res); r++) {
                if (strcmp(PQgetvalue(res, r, 0), it->customer_key) != 0)
                    continue;
                it->tier = sb_tier(&t->score, atof(PQgetvalue(res, r, 1)),
                                   PQgetvalue(res, r, 2)[0] == 't');
                it->enterprise = PQgetvalue(res, r, 3)[0] == 't';
            }
            /* Unknown customers are cached too: `sbctl load customers` invalidates. */
            sb_fmt(vals[m], sizeof(vals[m]), "%d,%d", it->tier, it->enterprise);
            set_argv[5 * m] = "SET";
            set_argv[5 * m + 1] = keys[k];
            set_argv[5 * m + 2] = vals[m];
            set_argv[5 * m + 3] = "EX";
            set_argv[5 * m + 4] = ttl;
            set_argvs[m] = &set_argv[5 * m];
            set_argc[m] = 5;
            m++;
        }
        if (m > 0 && sb_redis_pipeline(t->redis, m, set_argc, set_argvs, NULL, set_rep) == 0)
            for (size_t j = 0; j < m; j++)
                freeReplyObject(set_rep[j]);
        PQclear(res);
        free(set_argv);
        free(vals);
        free(set_argc);
        free(set_argvs);
        free(set_rep);
    }
    json_decref(missing);
out:
    for (k = 0; k < n; k++)
        if (replies[k] != NULL)
            freeReplyObject(replies[k]);
    free(argcs);
    free(argvs);
    free(replies);
    free(keys);
    free(idx);
    free(argv);
    return rc;
}

static void incident_keys(const char *signature, char *w, char *inc, size_t sz)
{
    char hex[65];
    sb_sha256_join_hex("signature", ':', signature, hex);
    sb_fmt(w, sz, "sb:inc:w:%s", hex);
    sb_fmt(inc, sz, "sb:inc:i:%s", hex);
}

/* One Lua call adds every signed contact of the batch to its window. */
static int incidents(struct triage *t)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < t->nitems; i++)
        n += t->items[i].kind == ITEM_CONTACT && t->items[i].cl.signature[0] != '\0';
    if (n == 0)
        return 0;
    char(*kb)[96] = sb_calloc(n * 2, sizeof(*kb));
    char(*ids)[64] = sb_calloc(n, sizeof(*ids)), (*ats)[24] = sb_calloc(n, sizeof(*ats));
    const char **keys = sb_calloc(n * 2, sizeof(*keys)),
               **args = sb_calloc(n * 3 + 2, sizeof(*args));
    size_t *idx = sb_calloc(n, sizeof(*idx));
    char win[24], thr[24];
    int rc = 0;

    sb_fmt(win, sizeof(win), "%lld", (long long)t->incident_window_ms);
    sb_fmt(thr, sizeof(thr), "%d", t->incident_threshold);
    args[0] = win;
    args[1] = thr;
    for (size_t i = 0; i < t->nitems; i++) {
        struct item *it = &t->items[i];
        char day[SB_TIME_STRLEN + 1], hex[65];
        if (it->kind != ITEM_CONTACT || it->cl.signature[0] == '\0')
            continue;
        incident_keys(it->cl.signature, kb[2 * k], kb[2 * k + 1], sizeof(kb[0]));
        sb_time_format_ms(it->src_ms, day);
        sb_sha256_join_hex(it->cl.signature, '|', it->ticket_id, hex);
        sb_fmt(ids[k], sizeof(ids[k]), "INC-%.4s%.2s%.2s-%.10s", day, day + 5, day + 8, hex);
        sb_fmt(ats[k], sizeof(ats[k]), "%lld", (long long)it->src_ms);
        keys[2 * k] = kb[2 * k];
        keys[2 * k + 1] = kb[2 * k + 1];
        args[2 + 3 * k] = it->ticket_id;
        args[3 + 3 * k] = ids[k];
        args[4 + 3 * k] = ats[k];
        idx[k++] = i;
    }
    redisReply *r =
        sb_redis_eval(t->redis, t->incident_script, (int)(2 * n), keys, (int)(3 * n + 2), args);
    if (r == NULL) {
        sb_log_kv(SB_LOG_WARN, "incident window update failed", "detail", "redis unreachable",
                  NULL);
        rc = SB_E_IO; /* retried: Redis comes back */
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        /* Not a connectivity problem: retrying would stall every ticket behind it, so
         * the batch goes on without incident detection (logged and counted). */
        sb_log_kv(SB_LOG_ERROR, "incident window script failed; batch scored without it", "detail",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", NULL);
        sb_metric_inc(t->m_incident_errors);
    } else {
        for (k = 0; k < n; k++) {
            struct item *it = &t->items[idx[k]];
            redisReply *e = r->element[k];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 3)
                continue;
            sb_strlcpy(it->incident, e->element[0]->str ? e->element[0]->str : "",
                       sizeof(it->incident));
            it->incident_count = (int)e->element[1]->integer;
            if (e->element[2]->elements > 0) {
                it->members = json_array();
                for (size_t m = 0; m < e->element[2]->elements; m++)
                    json_array_append_new(it->members, json_string(e->element[2]->element[m]->str));
            }
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    free(kb);
    free(ids);
    free(ats);
    free(keys);
    free(args);
    free(idx);
    return rc;
}

static void parse_state(struct tstate *s, const redisReply *r)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "u") == 0)
            s->urgency = atoi(v);
        else if (strcmp(k, "i") == 0)
            s->impact = atoi(v);
        else if (strcmp(k, "t") == 0)
            s->tier = atoi(v);
        else if (strcmp(k, "d") == 0)
            s->delta = atoi(v);
        else if (strcmp(k, "s") == 0)
            s->score = atoi(v);
        else if (strcmp(k, "b") == 0)
            sb_strlcpy(s->band, v, sizeof(s->band));
        else if (strcmp(k, "inc") == 0)
            sb_strlcpy(s->incident, v, sizeof(s->incident));
        else if (strcmp(k, "ov") == 0)
            sb_strlcpy(s->override_band, v, sizeof(s->override_band));
        else if (strcmp(k, "dom") == 0)
            sb_strlcpy(s->domain, v, sizeof(s->domain));
    }
    s->known = s->score >= 1 && s->urgency >= 1 && s->impact >= 1 && s->tier >= 1;
}

/* Loads the remembered scores of every ticket the batch touches. */
static int load_states(struct triage *t)
{
    size_t first = t->nstates;
    for (size_t i = 0; i < t->nitems; i++) {
        struct item *it = &t->items[i];
        if (it->kind == ITEM_OVERRIDE || !it->new_ticket)
            state_add(t, it->ticket_id);
        for (size_t m = 0; m < json_array_size(it->members); m++)
            state_add(t, json_string_value(json_array_get(it->members, m)));
    }
    size_t n = t->nstates - first;
    if (n == 0)
        return 0;
    char(*keys)[96] = sb_calloc(n, sizeof(*keys));
    const char **argv = sb_calloc(n * 2, sizeof(*argv)), ***argvs = sb_calloc(n, sizeof(*argvs));
    int *argcs = sb_calloc(n, sizeof(*argcs));
    redisReply **rep = sb_calloc(n, sizeof(*rep));
    for (size_t k = 0; k < n; k++) {
        state_key(t->states[first + k].ticket_id, keys[k], sizeof(keys[k]));
        argv[2 * k] = "HGETALL";
        argv[2 * k + 1] = keys[k];
        argvs[k] = &argv[2 * k];
        argcs[k] = 2;
    }
    int rc = sb_redis_pipeline(t->redis, n, argcs, argvs, NULL, rep);
    for (size_t k = 0; k < n; k++) {
        if (rep[k] != NULL && rep[k]->type == REDIS_REPLY_ARRAY)
            parse_state(&t->states[first + k], rep[k]);
        if (rep[k] != NULL)
            freeReplyObject(rep[k]);
    }
    free(keys);
    free(argv);
    free(argvs);
    free(argcs);
    free(rep);
    return rc;
}

/* Produces one event with an id derived from (source id, salt). */
static int emit(struct triage *t, const char *type, const char *ticket, const char *trace,
                int64_t id_ms, const char *src_id, const char *salt, const char *key,
                json_t *payload)
{
    struct sb_event ev;
    char name[256];
    size_t len;
    char *buf;
    int rc;

    if (sb_event_init(&ev, type, t->producer_name, ticket, trace[0] ? trace : NULL, payload) != 0) {
        sb_event_clear(&ev);
        return SB_E_INVAL;
    }
    sb_fmt(name, sizeof(name), "%s|%s|%s", src_id, type, salt);
    sb_uuid7_derive(id_ms, name, ev.event_id);
    buf = sb_event_encode(&ev, &len);
    rc = sb_producer_send(t->producer, t->topic_tickets, key, strlen(key), buf, len, NULL, NULL);
    free(buf);
    sb_event_clear(&ev);
    return rc;
}

static const char *urgency_word(int u)
{
    return u >= 3 ? "urgent" : u == 2 ? "medium" : "low";
}

static const char *const domain_words[SB_DOMAIN_COUNT] = {
    "product function",   "order & payment",   "logistics & delivery",
    "account & security", "service complaint", "suggestion & inquiry",
};
static const char *const stage_words[] = {"pre-sale", "in-sale", "after-sale", "complaint"};

static void state_set(struct tstate *s, int u, int i, int tier, int delta, int score,
                      const char *band, const char *incident)
{
    s->known = 1;
    s->urgency = u;
    s->impact = i;
    s->tier = tier;
    s->delta = delta;
    s->score = score;
    sb_strlcpy(s->band, band, sizeof(s->band));
    if (incident != NULL && incident[0] != '\0')
        sb_strlcpy(s->incident, incident, sizeof(s->incident));
    s->dirty = 1;
}

static int emit_rescored(struct triage *t, const struct item *it, const char *ticket,
                         const struct tstate *prev, const struct tstate *now, const char *why,
                         const char *detail, const char *salt)
{
    json_t *p =
        json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:s}", "band", now->band, "score",
                  now->score, "previous_band", prev->band, "previous_score", prev->score, "urgency",
                  now->urgency, "impact", now->impact, "tier", now->tier, "reason", why);
    if (detail != NULL && detail[0] != '\0')
        json_object_set_new(p, "detail", json_string(detail));
    if (it->kind == ITEM_CONTACT && strcmp(ticket, it->ticket_id) == 0)
        json_object_set_new(p, "contact_id", json_string(it->contact_id));
    if (now->incident[0] != '\0')
        json_object_set_new(p, "incident_id", json_string(now->incident));
    if (it->kind == ITEM_OVERRIDE)
        json_object_set(p, "overridden_by", it->actor);
    return emit(t, "ticket.rescored", ticket, it->trace_id, it->src_ms, it->src_id, salt, ticket,
                p);
}

static json_t *sla_clocks(const struct item *it)
{
    json_t *a = json_pack("[s, s]", "first_response", "resolution");
    unsigned sla = it->cl.sla;
    if (it->cl.stage == SB_JOURNEY_AFTER_SALE)
        sla |= 1u << 3; /* after_sale_first_response */
    if (it->cl.flags & SB_FLAG_PUBLIC_NEGATIVE)
        sla |= 1u << 4;
    for (int b = 0; sb_sla_kind_name(b) != NULL; b++)
        if (sla & (1u << b))
            json_array_append_new(a, json_string(sb_sla_kind_name(b)));
    return a;
}

static int emit_triaged(struct triage *t, struct item *it, int impact, int score, const char *band)
{
    char label[160], who[300];
    json_t *p = json_incref(it->payload), *f = json_object_get(p, "fivew1h");

    sb_fmt(label, sizeof(label), "%s / %s / %s", stage_words[it->cl.stage],
           domain_words[it->cl.domain], urgency_word(it->cl.urgency));
    sb_fmt(who, sizeof(who), "%s%s(%s)", it->who, it->who[0] ? " " : "", sb_tier_name(it->tier));
    json_object_set_new(f, "who", json_string(who));
    json_object_set_new(p, "impact", json_integer(impact));
    json_object_set_new(p, "tier", json_integer(it->tier));
    json_object_set_new(p, "customer_tier", json_string(sb_tier_name(it->tier)));
    json_object_set_new(p, "score", json_integer(score));
    json_object_set_new(p, "band", json_string(band));
    json_object_set_new(p, "label", json_string(label));
    json_object_set_new(p, "sla_policy", json_string(band));
    json_object_set_new(p, "sla_clocks", sla_clocks(it));
    json_object_set_new(p, "incident_id",
                        it->incident[0] ? json_string(it->incident) : json_null());
    return emit(t, "ticket.triaged", it->ticket_id, it->trace_id, it->src_ms, it->src_id, "",
                it->ticket_id, p);
}

/* Links every earlier member of a new incident to it (impact 3). */
static int link_members(struct triage *t, const struct item *it)
{
    int rc = 0;
    for (size_t m = 0; m < json_array_size(it->members) && rc == 0; m++) {
        const char *ticket = json_string_value(json_array_get(it->members, m));
        struct tstate *s = state_find(t, ticket), prev, now;
        if (strcmp(ticket, it->ticket_id) == 0 || s == NULL || !s->known)
            continue;
        prev = *s;
        now = *s;
        now.impact = 3;
        sb_strlcpy(now.incident, it->incident, sizeof(now.incident));
        now.score = sb_score(now.urgency, now.impact, now.tier, now.delta);
        sb_strlcpy(now.band,
                   now.override_band[0] ? now.override_band : sb_band(&t->score, now.score),
                   sizeof(now.band));
        rc = emit_rescored(t, it, ticket, &prev, &now, "incident", it->incident, ticket);
        state_set(s, now.urgency, now.impact, now.tier, now.delta, now.score, now.band,
                  it->incident);
    }
    return rc;
}

static int process_contact(struct triage *t, struct item *it)
{
    int impact = sb_impact(&t->score, it->incident[0] != '\0',
                           it->enterprise && it->tier == SB_TIER_VIP, it->has_amount, it->amount);
    int score = sb_score(it->cl.urgency, impact, it->tier, it->cl.score_delta);
    const char *band = sb_band(&t->score, score);
    struct tstate *s = state_find(t, it->ticket_id);
    int rc;

    if (it->members != NULL) {
        json_t *p =
            json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:s}", "incident_id", it->incident, "domain",
                      sb_domain_name(it->cl.domain), "signature", it->cl.signature, "member_count",
                      it->incident_count, "threshold", t->incident_threshold, "window_s",
                      (int)(t->incident_window_ms / 1000), "first_ticket_id",
                      json_string_value(json_array_get(it->members, 0)));
        if ((rc = emit(t, "incident.detected", json_string_value(json_array_get(it->members, 0)),
                       it->trace_id, it->src_ms, it->incident, "", it->incident, p)) != 0)
            return rc;
        sb_metric_inc(t->m_incidents);
        sb_log_kv(SB_LOG_WARN, "incident detected", "incident_id", it->incident, "signature",
                  it->cl.signature, NULL);
        if ((rc = link_members(t, it)) != 0)
            return rc;
    }
    if (it->new_ticket || s == NULL || !s->known) {
        rc = emit_triaged(t, it, impact, score, band);
        s = state_add(t, it->ticket_id);
        state_set(s, it->cl.urgency, impact, it->tier, it->cl.score_delta, score, band,
                  it->incident);
        sb_strlcpy(s->domain, sb_domain_name(it->cl.domain), sizeof(s->domain));
        return rc;
    }
    /* A follow-up contact: each dimension can only rise; the tier is today's. */
    struct tstate prev = *s, now = *s;
    const char *why = "follow_up_contact";
    char detail[160];
    now.urgency = it->cl.urgency > prev.urgency ? it->cl.urgency : prev.urgency;
    now.impact = impact > prev.impact ? impact : prev.impact;
    now.tier = it->tier;
    if (it->incident[0] != '\0')
        sb_strlcpy(now.incident, it->incident, sizeof(now.incident));
    now.score = sb_score(now.urgency, now.impact, now.tier, now.delta);
    sb_strlcpy(now.band, now.override_band[0] ? now.override_band : sb_band(&t->score, now.score),
               sizeof(now.band));
    if (now.score == prev.score && strcmp(now.band, prev.band) == 0)
        return 0;
    if (now.tier != prev.tier && now.urgency == prev.urgency && now.impact == prev.impact)
        why = "customer_tier_changed";
    else if (now.impact == 3 && prev.impact < 3 && it->incident[0] != '\0')
        why = "incident";
    sb_fmt(detail, sizeof(detail), "urgency %d->%d, impact %d->%d, tier %d->%d", prev.urgency,
           now.urgency, prev.impact, now.impact, prev.tier, now.tier);
    rc = emit_rescored(t, it, it->ticket_id, &prev, &now, why, detail, "");
    state_set(s, now.urgency, now.impact, now.tier, now.delta, now.score, now.band, now.incident);
    return rc;
}

static int process_override(struct triage *t, struct item *it)
{
    struct tstate *s = state_add(t, it->ticket_id), prev, now;
    int rc;

    if (!s->known) {
        /* Triage never scored this ticket (or forgot it): the override stands alone. */
        sb_log_kv(SB_LOG_WARN, "priority override of a ticket triage does not know", "ticket_id",
                  it->ticket_id, NULL);
        s->urgency = s->impact = s->tier = 1;
        s->score = sb_score_for_band(&t->score, it->band, 3);
        sb_strlcpy(s->band, it->band, sizeof(s->band));
    }
    prev = *s;
    now = *s;
    now.score = sb_score_for_band(&t->score, it->band, prev.score);
    sb_strlcpy(now.band, it->band, sizeof(now.band));
    rc = emit_rescored(t, it, it->ticket_id, &prev, &now, "supervisor_override", it->reason, "");
    state_set(s, now.urgency, now.impact, now.tier, now.delta, now.score, now.band, NULL);
    sb_strlcpy(s->override_band, it->band, sizeof(s->override_band));
    return rc;
}

/* Records the scores of every ticket the batch changed (after Kafka acknowledged). */
static int save_states(struct triage *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nstates; i++)
        n += t->states[i].dirty;
    if (n == 0)
        return 0;
    const char **argv = sb_calloc(n * 24, sizeof(*argv));
    const char ***argvs = sb_calloc(2 * n, sizeof(*argvs));
    int *argcs = sb_calloc(2 * n, sizeof(*argcs));
    redisReply **rep = sb_calloc(2 * n, sizeof(*rep));
    char(*keys)[96] = sb_calloc(n, sizeof(*keys)), (*nums)[5][12] = sb_calloc(n, sizeof(*nums));
    char ttl[24];
    size_t k = 0;
    int rc;

    sb_fmt(ttl, sizeof(ttl), "%d", t->state_ttl_s);
    for (size_t i = 0; i < t->nstates; i++) {
        struct tstate *s = &t->states[i];
        const char **a = &argv[24 * k];
        int c = 0;
        if (!s->dirty)
            continue;
        /* HSET the fields, then EXPIRE (no MULTI needed: a lost EXPIRE leaves a key
         * that the next write of the ticket expires). */
        state_key(s->ticket_id, keys[k], sizeof(keys[k]));
        sb_fmt(nums[k][0], 12, "%d", s->urgency);
        sb_fmt(nums[k][1], 12, "%d", s->impact);
        sb_fmt(nums[k][2], 12, "%d", s->tier);
        sb_fmt(nums[k][3], 12, "%d", s->delta);
        sb_fmt(nums[k][4], 12, "%d", s->score);
        a[c++] = "HSET";
        a[c++] = keys[k];
        a[c++] = "u";
        a[c++] = nums[k][0];
        a[c++] = "i";
        a[c++] = nums[k][1];
        a[c++] = "t";
        a[c++] = nums[k][2];
        a[c++] = "d";
        a[c++] = nums[k][3];
        a[c++] = "s";
        a[c++] = nums[k][4];
        a[c++] = "b";
        a[c++] = s->band;
        a[c++] = "inc";
        a[c++] = s->incident;
        a[c++] = "ov";
        a[c++] = s->override_band;
        a[c++] = "dom";
        a[c++] = s->domain;
        argvs[k] = a;
        argcs[k] = c;
        k++;
    }
    /* The EXPIREs ride in the same pipeline, after the HSETs. */
    for (k = 0; k < n; k++) {
        const char **a = &argv[24 * k + 20];
        a[0] = "EXPIRE";
        a[1] = keys[k];
        a[2] = ttl;
        argvs[n + k] = a;
        argcs[n + k] = 3;
    }
    rc = sb_redis_pipeline(t->redis, 2 * n, argcs, argvs, NULL, rep);
    for (k = 0; k < 2 * n; k++)
        if (rep[k] != NULL)
            freeReplyObject(rep[k]);
    free(argv);
    free(argvs);
    free(argcs);
    free(rep);
    free(keys);
    free(nums);
    return rc;
}

int triage_flush(void *ctx)
{
    struct triage *t = ctx;
    int rc;

    t->nstates = 0;
    for (size_t i = 0; i < t->nitems; i++) {
        struct item *it = &t->items[i];
        json_decref(it->members);
        it->members = NULL;
        it->incident[0] = '\0';
    }
    if ((rc = lookup_tiers(t)) != 0 || (rc = incidents(t)) != 0 || (rc = load_states(t)) != 0)
        return rc;
    for (size_t i = 0; i < t->nitems; i++) {
        struct item *it = &t->items[i];
        rc = it->kind == ITEM_CONTACT ? process_contact(t, it) : process_override(t, it);
        if (rc != 0)
            return rc;
    }
    rc = sb_producer_wait_all(t->producer, t->produce_timeout_ms);
    if (rc != 0) {
        sb_log_kv(SB_LOG_WARN, "kafka did not acknowledge the batch; retrying", NULL);
        return SB_E_IO;
    }
    if ((rc = save_states(t)) != 0)
        return rc;
    triage_batch_clear(t);
    return 0;
}
