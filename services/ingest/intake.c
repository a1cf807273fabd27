/* Intake of a normalized contact, shared by every channel:
 *   idempotency (the channel's message id or Idempotency-Key, remembered 24 h) →
 *   customer recognition → threading onto the open ticket → contact.received produced
 *   with acks=all → 202 only once Kafka acknowledged it (DESIGN.md "Delivery").
 * The HTTP worker thread is released while Kafka works: the request is suspended and
 * finished by the completion thread, which also records the outcome in Redis with one
 * pipeline per batch. Redis being down makes intake fail open (no deduplication or
 * threading), never refuse a contact. */
#include "identity.h"
#include "ingest.h"
#include "lifecycle.h"
#include "wechat.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/util.h"

#include <assert.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 96
#define TICKET_MAX 48
/* A reservation outlives the produce timeout by this much before it expires. */
#define PENDING_GRACE_S 60
#define BATCH_MAX 256

/* One accepted contact waiting for its Kafka acknowledgement. */
struct pending {
    struct pending *next;
    struct ingest *in;
    struct sb_http_async *async;
    char channel[16];
    char idem_key[KEY_MAX];   /* "" when deduplication was unavailable */
    char open_key[KEY_MAX];   /* "" when threading was unavailable */
    char thread_key[KEY_MAX]; /* this email's Message-ID, "" otherwise */
    char ticket_id[TICKET_MAX];
    int new_ticket;
    int wechat_reply; /* answer as WeChat expects: 200 "success" */
    char *response;   /* 202 body */
    int64_t t0_us;
    rd_kafka_resp_err_t err;
};

struct sb_completer {
    struct ingest *in;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pending *head, **tail;
    int stop;
    struct sb_redis *redis;
};

static void pending_free(struct pending *p)
{
    free(p->response);
    free(p);
}

/* Redis keys of a pending contact's outcome, written in one pipeline. */
static size_t outcome_commands(struct ingest *in, struct pending *p, const char *argv[][6],
                               int *argc, char *bufs[][2])
{
    size_t n = 0;
    char ttl[24];

    if (p->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (p->idem_key[0]) {
            json_t *v = json_pack("{s:s,s:s}", "s", "done", "r", p->response);
            bufs[n][0] = json_dumps(v, JSON_COMPACT);
            json_decref(v);
            sb_fmt(ttl, sizeof(ttl), "%lld", (long long)in->idem_ttl_s);
            bufs[n][1] = sb_strdup(ttl);
            argv[n][0] = "SET";
            argv[n][1] = p->idem_key;
            argv[n][2] = bufs[n][0];
            argv[n][3] = "EX";
            argv[n][4] = bufs[n][1];
            argc[n++] = 5;
        }
        if (p->open_key[0]) {
            sb_fmt(ttl, sizeof(ttl), "%lld", (long long)in->open_window_s);
            bufs[n][0] = NULL;
            bufs[n][1] = sb_strdup(ttl);
            argv[n][0] = "SET";
            argv[n][1] = p->open_key;
            argv[n][2] = p->ticket_id;
            argv[n][3] = "EX";
            argv[n][4] = bufs[n][1];
            argc[n++] = 5;
        }
        if (p->thread_key[0]) {
            sb_fmt(ttl, sizeof(ttl), "%lld", (long long)in->thread_ttl_s);
            bufs[n][0] = NULL;
            bufs[n][1] = sb_strdup(ttl);
            argv[n][0] = "SET";
            argv[n][1] = p->thread_key;
            argv[n][2] = p->ticket_id;
            argv[n][3] = "EX";
            argv[n][4] = bufs[n][1];
            argc[n++] = 5;
        }
    } else {
        /* Nothing was kept: undo the reservation so that the client's retry is
         * processed, and forget a ticket that never came to exist. */
        if (p->idem_key[0]) {
            bufs[n][0] = bufs[n][1] = NULL;
            argv[n][0] = "DEL";
            argv[n][1] = p->idem_key;
            argc[n++] = 2;
        }
        if (p->new_ticket && p->open_key[0]) {
            bufs[n][0] = bufs[n][1] = NULL;
            argv[n][0] = "EVAL";
            argv[n][1] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                         "return redis.call('DEL', KEYS[1]) end return 0";
            argv[n][2] = "1";
            argv[n][3] = p->open_key;
            argv[n][4] = p->ticket_id;
            argc[n++] = 5;
        }
    }
    return n;
}

static void finish(struct ingest *in, struct pending *p)
{
    struct sb_http_resp resp;

    memset(&resp, 0, sizeof(resp));
    if (p->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (p->wechat_reply)
            sb_http_resp_text(&resp, 200, "text/plain", SB_WECHAT_REPLY, strlen(SB_WECHAT_REPLY));
        else
            sb_http_resp_text(&resp, 202, "application/json", p->response, strlen(p->response));
        ingest_count_accepted(in, p->channel, 0);
        sb_metric_observe(in->m_produce_seconds, (double)(sb_mono_us() - p->t0_us) / 1e6);
    } else {
        ingest_error(in, &resp, p->channel, 503, "unavailable",
                     "the contact could not be stored durably; retry later", NULL);
        sb_http_resp_header(&resp, "Retry-After", "5");
        sb_log_kv(SB_LOG_WARN, "contact not acknowledged by Kafka", "channel", p->channel, "error",
                  rd_kafka_err2name(p->err), NULL);
    }
    sb_metric_add(in->m_inflight, -1);
    sb_http_async_complete(p->async, &resp);
}

static void complete_batch(struct sb_completer *c, struct pending *batch)
{
    const char *argv[BATCH_MAX * 3][6];
    int argc[BATCH_MAX * 3];
    char *bufs[BATCH_MAX * 3][2];
    const char **argvs[BATCH_MAX * 3];
    redisReply *replies[BATCH_MAX * 3];
    size_t n = 0;
    char err[256];

    for (struct pending *p = batch; p != NULL; p = p->next)
        n += outcome_commands(c->in, p, &argv[n], &argc[n], &bufs[n]);
    if (n > 0) {
        if (c->redis == NULL)
            c->redis = sb_redis_new(c->in->redis_url, c->in->redis_timeout_ms, err, sizeof(err));
        for (size_t i = 0; i < n; i++)
            argvs[i] = argv[i];
        if (c->redis == NULL || sb_redis_pipeline(c->redis, n, argc, argvs, NULL, replies) != 0) {
            /* Reservations expire by themselves (PENDING_GRACE_S). */
            sb_metric_inc(c->in->m_redis_unavailable);
        } else {
            for (size_t i = 0; i < n; i++)
                freeReplyObject(replies[i]);
        }
        for (size_t i = 0; i < n; i++) {
            free(bufs[i][0]);
            free(bufs[i][1]);
        }
    }
    while (batch != NULL) {
        struct pending *next = batch->next;
        finish(c->in, batch);
        pending_free(batch);
        batch = next;
    }
}

static void *completer_main(void *arg)
{
    struct sb_completer *c = arg;

    for (;;) {
        struct pending *batch, *last;
        int n = 0;

        pthread_mutex_lock(&c->lock);
        while (c->head == NULL && !c->stop)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->head == NULL && c->stop) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        batch = last = c->head;
        for (n = 1; last->next != NULL && n < BATCH_MAX; n++)
            last = last->next;
        c->head = last->next;
        if (c->head == NULL)
            c->tail = &c->head;
        last->next = NULL;
        pthread_mutex_unlock(&c->lock);
        complete_batch(c, batch);
    }
    return NULL;
}

struct sb_completer *sb_completer_new(struct ingest *in, char *errstr, size_t errstr_size)
{
    struct sb_completer *c = sb_calloc(1, sizeof(*c));

    c->in = in;
    c->tail = &c->head;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, completer_main, c) != 0) {
        sb_fmt(errstr, errstr_size, "cannot start the completion thread");
        free(c);
        return NULL;
    }
    return c;
}

void sb_completer_destroy(struct sb_completer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    sb_redis_destroy(c->redis);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* Kafka delivery report (producer poll thread): hand over to the completer. */
static void delivered(void *opaque, rd_kafka_resp_err_t err)
{
    struct pending *p = opaque;
    struct sb_completer *c = p->in->completer;

    p->err = err;
    pthread_mutex_lock(&c->lock);
    *c->tail = p;
    c->tail = &p->next;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Answers from an earlier outcome of the same contact (the idempotency record):
 * a finished one is replayed (same 202 body), one still in progress gets 409. */
static void replay(struct ingest *in, const char *value, size_t len, const char *channel,
                   int wechat_reply, struct sb_http_resp *resp)
{
    json_t *v = json_loadb(value, len, 0, NULL);
    const char *state = json_string_value(json_object_get(v, "s"));
    const char *body = json_string_value(json_object_get(v, "r"));

    if (state != NULL && strcmp(state, "done") == 0 && body != NULL) {
        if (wechat_reply) /* WeChat resends a push it got no answer to: same answer */
            sb_http_resp_text(resp, 200, "text/plain", SB_WECHAT_REPLY, strlen(SB_WECHAT_REPLY));
        else
            sb_http_resp_text(resp, 202, "application/json", body, strlen(body));
        ingest_count_accepted(in, channel, 1);
    } else {
        ingest_error(in, resp, channel, 409, "in_progress",
                     "the same contact is being accepted right now; retry shortly", "external_id");
        sb_http_resp_header(resp, "Retry-After", "1");
    }
    json_decref(v);
}

/* Reservation, atomically: if the contact is already known, return its record;
 * otherwise take the ticket (the replied-to one, else the customer's open ticket, else
 * a new one claimed for the customer) and record the contact as pending with its
 * answer. KEYS: idempotency key, open-ticket key. ARGV: new ticket id, open-ticket TTL,
 * pending TTL, replied-to ticket or "", answer prefix, answer suffix. */
static const char *const reserve_lua =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then return {0, cur} end\n"
    "local t = ARGV[4]\n"
    "local new = 0\n"
    "if t == '' then\n"
    "  t = redis.call('GET', KEYS[2])\n"
    "  if not t then\n"
    "    redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])\n"
    "    t = ARGV[1]\n"
    "    new = 1\n"
    "  end\n"
    "end\n"
    "local body = ARGV[5] .. t .. ARGV[6]\n"
    "redis.call('SET', KEYS[1], cjson.encode({s = 'pending', r = body}), 'EX', ARGV[3])\n"
    "return {1, t, new, body}\n";

/* The common path in one round trip: the idempotency record, the identity cache (the
 * first hit in order of strength), the replied-to ticket, the channel's queue estimate,
 * then the reservation as above. When no identity is cached it returns {2} and changes
 * nothing: the caller resolves the customer (CRM) and runs reserve_lua.
 * ARGV: idempotency key, n, n identity cache keys, m, m thread keys, estimate key,
 * estimate max age (ms), new ticket id, open-ticket TTL, pending TTL, contact id. */
static const char *const intake_lua =
    "local i = 1\n"
    "local idem = ARGV[i]; i = i + 1\n"
    "local cur = redis.call('GET', idem)\n"
    "if cur then return {0, cur} end\n"
    "local customer = false\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  if not customer then customer = redis.call('GET', ARGV[i]) end\n"
    "  i = i + 1\n"
    "end\n"
    "local thread = false\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  if not thread then thread = redis.call('GET', ARGV[i]) end\n"
    "  i = i + 1\n"
    "end\n"
    "if not customer then return {2} end\n"
    "local eta_key, max_age = ARGV[i], tonumber(ARGV[i + 1])\n"
    "local newt, open_ttl, pending_ttl, cid = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]\n"
    "local queue = 'null'\n"
    "local e = redis.call('HMGET', eta_key, 'position', 'eta_seconds', 'updated_ms')\n"
    "local p, s, u = tonumber(e[1]), tonumber(e[2]), tonumber(e[3])\n"
    "if p and s and u then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  if now - u <= max_age then\n"
    "    queue = string.format('{\"position\":%d,\"eta_seconds\":%d}', p, s)\n"
    "  end\n"
    "end\n"
    "local open_key = 'sb:open:' .. redis.sha1hex('customer\\n' .. customer)\n"
    "local t = thread\n"
    "local new = 0\n"
    "if not t then\n"
    "  t = redis.call('GET', open_key)\n"
    "  if not t then\n"
    "    redis.call('SET', open_key, newt, 'EX', open_ttl)\n"
    "    t = newt\n"
    "    new = 1\n"
    "  end\n"
    "end\n"
    "local body = '{\"ticket_id\":\"' .. t .. '\",\"contact_id\":\"' .. cid .. "
    "'\",\"queue\":' .. queue .. '}'\n"
    "redis.call('SET', idem, cjson.encode({s = 'pending', r = body}), 'EX', pending_ttl)\n"
    "return {1, t, new, body, customer}\n";

/* Swaps the customer's open-ticket key from a closed ticket to a new one, unless another
 * contact did it first. KEYS: open-ticket key. ARGV: closed ticket, new ticket, TTL.
 * Returns the ticket the key names now. */
static const char *const swap_lua = "local cur = redis.call('GET', KEYS[1])\n"
                                    "if not cur or cur == ARGV[1] then\n"
                                    "  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])\n"
                                    "  return ARGV[2]\n"
                                    "end\n"
                                    "return cur\n";

#define SCRIPT_RESERVE 0
#define SCRIPT_INTAKE 1
#define SCRIPT_SWAP 2

void ingest_redis_scripts(struct sb_redis *r)
{
    int idx = sb_redis_script_add(r, reserve_lua);
    (void)idx;
    assert(idx == SCRIPT_RESERVE);
    idx = sb_redis_script_add(r, intake_lua);
    assert(idx == SCRIPT_INTAKE);
    idx = sb_redis_script_add(r, swap_lua);
    assert(idx == SCRIPT_SWAP);
}

/* The open-ticket key of a customer: "sb:open:" + SHA-1 hex of "customer\n<number>"
 * (SHA-1 because the intake script computes the same key with redis.sha1hex). */
static void open_key_of(const char *customer_no, char *out, size_t outsz)
{
    unsigned char d[SHA_DIGEST_LENGTH];
    char hex[2 * SHA_DIGEST_LENGTH + 1];
    size_t n = strlen(customer_no);
    char *buf = sb_malloc(n + 10);

    memcpy(buf, "customer\n", 9);
    memcpy(buf + 9, customer_no, n);
    SHA1((const unsigned char *)buf, n + 9, d);
    free(buf);
    sb_hex(d, sizeof(d), hex);
    sb_fmt(out, outsz, "sb:open:%s", hex);
}

/* What one pipeline of reads tells about a contact. */
struct lookup {
    redisReply *replies[2 + SB_IDENTITY_KINDS + 12];
    size_t n;
    redisReply *idem;                      /* GET of the idempotency key */
    const char *cached[SB_IDENTITY_KINDS]; /* identity cache hits */
    const char *thread_ticket;             /* ticket of a replied-to message */
    redisReply *eta;                       /* HMGET of the channel's estimate */
};

static void lookup_free(struct lookup *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->replies[i] != NULL)
            freeReplyObject(l->replies[i]);
    }
    memset(l, 0, sizeof(*l));
}

/* Reads everything intake needs from Redis in one round trip. Returns 0 or SB_E_IO. */
static int lookup(struct sb_redis *r, json_t *contact, const char *idem_key, const char *channel,
                  struct lookup *l)
{
    enum { MAXC = 2 + SB_IDENTITY_KINDS + 12 };
    char keys[MAXC][128];
    const char *argvs_store[MAXC][5];
    const char **argvs[MAXC];
    int argcs[MAXC];
    int ident_at[SB_IDENTITY_KINDS], thread_from = -1, nthread = 0, eta_at;
    json_t *cust = json_object_get(contact, "customer");
    size_t n = 0;

    memset(l, 0, sizeof(*l));
    argvs_store[n][0] = "GET";
    argvs_store[n][1] = idem_key;
    argcs[n++] = 2;
    for (int i = 0; i < SB_IDENTITY_KINDS; i++) {
        const char *v = json_string_value(json_object_get(cust, sb_identity_kinds[i]));
        ident_at[i] = -1;
        if (v == NULL)
            continue;
        sb_identity_cache_key(sb_identity_kinds[i], v, keys[n], sizeof(keys[n]));
        argvs_store[n][0] = "GET";
        argvs_store[n][1] = keys[n];
        argcs[n] = 2;
        ident_at[i] = (int)n++;
    }
    if (strcmp(channel, "email") == 0) {
        /* In-Reply-To first, then References from the newest. */
        json_t *refs = json_object_get(contact, "references");
        const char *irt = json_string_value(json_object_get(contact, "in_reply_to"));
        char hash[65];
        thread_from = (int)n;
        for (size_t i = json_array_size(refs) + 1; i-- > 0 && nthread < 10;) {
            const char *ref =
                i == json_array_size(refs) ? irt : json_string_value(json_array_get(refs, i));
            if (ref == NULL)
                continue;
            sb_sha256_join_hex("msgid", '\n', ref, hash);
            sb_fmt(keys[n], sizeof(keys[n]), "sb:thread:%s", hash);
            argvs_store[n][0] = "GET";
            argvs_store[n][1] = keys[n];
            argcs[n++] = 2;
            nthread++;
        }
    }
    sb_fmt(keys[n], sizeof(keys[n]), "sb:eta:%s", channel);
    argvs_store[n][0] = "HMGET";
    argvs_store[n][1] = keys[n];
    argvs_store[n][2] = "position";
    argvs_store[n][3] = "eta_seconds";
    argvs_store[n][4] = "updated_ms";
    argcs[n] = 5;
    eta_at = (int)n++;
    for (size_t i = 0; i < n; i++)
        argvs[i] = argvs_store[i];
    if (sb_redis_pipeline(r, n, argcs, argvs, NULL, l->replies) != 0)
        return SB_E_IO;
    l->n = n;
    l->idem = l->replies[0]->type == REDIS_REPLY_STRING ? l->replies[0] : NULL;
    for (int i = 0; i < SB_IDENTITY_KINDS; i++) {
        redisReply *rep = ident_at[i] >= 0 ? l->replies[ident_at[i]] : NULL;
        if (rep != NULL && rep->type == REDIS_REPLY_STRING)
            l->cached[i] = rep->str;
    }
    for (int i = 0; i < nthread; i++) {
        redisReply *rep = l->replies[thread_from + i];
        if (rep->type == REDIS_REPLY_STRING && rep->len < TICKET_MAX) {
            l->thread_ticket = rep->str;
            break;
        }
    }
    l->eta = l->replies[eta_at];
    return 0;
}

/* The queue position and wait the router last published for the channel, or NULL. */
static json_t *queue_estimate(struct ingest *in, const redisReply *rep)
{
    int64_t pos, eta, at;

    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING &&
        rep->element[2]->type == REDIS_REPLY_STRING &&
        sb_parse_int64(rep->element[0]->str, &pos) == 0 &&
        sb_parse_int64(rep->element[1]->str, &eta) == 0 &&
        sb_parse_int64(rep->element[2]->str, &at) == 0 &&
        sb_now_ms() - at <= in->eta_max_age_s * 1000)
        return json_pack("{s:I,s:I}", "position", (json_int_t)pos, "eta_seconds", (json_int_t)eta);
    return NULL;
}

/* Runs the reservation script. Returns 1 reserved (ticket, new_ticket and response
 * set in p), 0 already known (*known: the record, to free), -1 Redis unavailable. */
static int reserve(struct ingest *in, struct sb_redis *r, struct pending *p,
                   const char *thread_ticket, const char *suffix, redisReply **known)
{
    char open_ttl[24], pending_ttl[24];
    const char *keys[2] = {p->idem_key, p->open_key};
    const char *args[6] = {p->ticket_id,        open_ttl,
                           pending_ttl,         thread_ticket ? thread_ticket : "",
                           "{\"ticket_id\":\"", suffix};
    redisReply *rep;
    int rc = -1;

    *known = NULL;
    sb_fmt(open_ttl, sizeof(open_ttl), "%lld", (long long)in->open_window_s);
    sb_fmt(
        pending_ttl, sizeof(pending_ttl), "%lld",
        (long long)(sb_config_int(in->cfg, "kafka.produce_timeout_ms") / 1000 + PENDING_GRACE_S));
    rep = sb_redis_eval(r, SCRIPT_RESERVE, 2, keys, 6, args);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
            sb_log_kv(SB_LOG_WARN, "reservation script failed", "detail", rep->str, NULL);
        goto out;
    }
    if (rep->element[0]->integer == 0) {
        *known = rep;
        return 0;
    }
    if (rep->elements == 4 && rep->element[1]->type == REDIS_REPLY_STRING &&
        rep->element[1]->len < TICKET_MAX && rep->element[3]->type == REDIS_REPLY_STRING) {
        sb_strlcpy(p->ticket_id, rep->element[1]->str, sizeof(p->ticket_id));
        p->new_ticket = rep->element[2]->integer == 1;
        free(p->response);
        p->response = sb_strndup(rep->element[3]->str, rep->element[3]->len);
        rc = 1;
    }
out:
    if (rep != NULL)
        freeReplyObject(rep);
    return rc;
}

/* Runs the intake script (the common path, one round trip). Returns 1 reserved (ticket,
 * new_ticket, response and customer_no set), 0 already known (*known: the record, to
 * free), 2 no cached identity (nothing changed), -1 Redis unavailable. */
static int fast_path(struct ingest *in, struct sb_redis *r, json_t *contact, const char *channel,
                     const char *contact_id, struct pending *p, char *customer_no,
                     size_t customer_no_size, redisReply **known)
{
    enum { MAXA = 2 + SB_IDENTITY_KINDS + 1 + 10 + 6 };
    char keys[SB_IDENTITY_KINDS + 10][128], nident[8], nthread[8], eta_key[64], max_age[24];
    char open_ttl[24], pending_ttl[24];
    const char *args[MAXA];
    json_t *cust = json_object_get(contact, "customer");
    int nargs = 0, ni = 0, nt = 0, nk = 0, rc = -1;
    redisReply *rep;

    *known = NULL;
    args[nargs++] = p->idem_key;
    args[nargs++] = nident;
    for (int i = 0; i < SB_IDENTITY_KINDS; i++) {
        const char *v = json_string_value(json_object_get(cust, sb_identity_kinds[i]));
        if (v == NULL)
            continue;
        sb_identity_cache_key(sb_identity_kinds[i], v, keys[nk], sizeof(keys[nk]));
        args[nargs++] = keys[nk++];
        ni++;
    }
    args[nargs++] = nthread;
    if (strcmp(channel, "email") == 0) {
        /* In-Reply-To first, then References from the newest. */
        json_t *refs = json_object_get(contact, "references");
        const char *irt = json_string_value(json_object_get(contact, "in_reply_to"));
        char hash[65];
        for (size_t i = json_array_size(refs) + 1; i-- > 0 && nt < 10;) {
            const char *ref =
                i == json_array_size(refs) ? irt : json_string_value(json_array_get(refs, i));
            if (ref == NULL)
                continue;
            sb_sha256_join_hex("msgid", '\n', ref, hash);
            sb_fmt(keys[nk], sizeof(keys[nk]), "sb:thread:%s", hash);
            args[nargs++] = keys[nk++];
            nt++;
        }
    }
    sb_fmt(nident, sizeof(nident), "%d", ni);
    sb_fmt(nthread, sizeof(nthread), "%d", nt);
    sb_fmt(eta_key, sizeof(eta_key), "sb:eta:%s", channel);
    sb_fmt(max_age, sizeof(max_age), "%lld", (long long)in->eta_max_age_s * 1000);
    sb_fmt(open_ttl, sizeof(open_ttl), "%lld", (long long)in->open_window_s);
    sb_fmt(
        pending_ttl, sizeof(pending_ttl), "%lld",
        (long long)(sb_config_int(in->cfg, "kafka.produce_timeout_ms") / 1000 + PENDING_GRACE_S));
    args[nargs++] = eta_key;
    args[nargs++] = max_age;
    args[nargs++] = p->ticket_id;
    args[nargs++] = open_ttl;
    args[nargs++] = pending_ttl;
    args[nargs++] = contact_id;
    rep = sb_redis_eval(r, SCRIPT_INTAKE, 0, NULL, nargs, args);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER) {
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
            sb_log_kv(SB_LOG_WARN, "intake script failed", "detail", rep->str, NULL);
        goto out;
    }
    switch (rep->element[0]->integer) {
    case 0:
        if (rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING) {
            *known = rep;
            return 0;
        }
        break;
    case 1:
        if (rep->elements == 5 && rep->element[1]->type == REDIS_REPLY_STRING &&
            rep->element[1]->len < TICKET_MAX && rep->element[3]->type == REDIS_REPLY_STRING &&
            rep->element[4]->type == REDIS_REPLY_STRING &&
            rep->element[4]->len < customer_no_size) {
            sb_strlcpy(p->ticket_id, rep->element[1]->str, sizeof(p->ticket_id));
            p->new_ticket = rep->element[2]->integer == 1;
            free(p->response);
            p->response = sb_strndup(rep->element[3]->str, rep->element[3]->len);
            sb_strlcpy(customer_no, rep->element[4]->str, customer_no_size);
            rc = 1;
        }
        break;
    case 2:
        rc = 2;
        break;
    }
out:
    if (rep != NULL)
        freeReplyObject(rep);
    return rc;
}

/* ---- Customer follow-ups (docs/lifecycle.md) --------------------------------------
 * A contact threaded onto an existing ticket (new_ticket false) is the customer's
 * follow-up. Only these pay a PostgreSQL read (the ticket's workflow record, by primary
 * key): a ticket waiting on the customer goes back to in_progress, a resolved or
 * archived one reopens within lifecycle.reopen_window_s of its resolution, and past the
 * window the contact starts a new ticket. The move is made like an agent's action: under
 * the record's row lock, produced as ticket.status_changed with the customer as actor,
 * committed after Kafka acknowledged it, before the contact itself is produced. */
static const char *const sql_followup_peek =
    "SELECT state, coalesce(floor(extract(epoch FROM now() - resolved_at))::bigint, -1) "
    "FROM ticket_workflow WHERE ticket_id = $1";
static const char *const sql_followup_lock =
    "SELECT state, coalesce(floor(extract(epoch FROM now() - resolved_at))::bigint, -1) "
    "FROM ticket_workflow WHERE ticket_id = $1 FOR UPDATE";
static const char *const sql_followup_update =
    "UPDATE ticket_workflow SET state = $2, version = version + 1, updated_at = now() "
    "WHERE ticket_id = $1";

static void count_followup(struct ingest *in, const char *move)
{
    char labels[48];
    sb_fmt(labels, sizeof(labels), "move=%s", move);
    sb_metric_inc(sb_metrics_counter(in->metrics, "sb_ingest_followups_total",
                                     "Customer follow-ups that moved their ticket (resumed, "
                                     "reopened), started a new one (new_ticket), or could not "
                                     "be checked (unchecked: PostgreSQL unreachable)",
                                     labels));
}

/* Reads the record (locked when lock). Returns 1 found, 0 none, -1 PostgreSQL failed. */
static int followup_read(struct sb_pg *pg, const char *ticket, int lock, char *state,
                         size_t statesz, int64_t *since_resolved_s)
{
    const char *params[1] = {ticket};
    char err[256];
    PGresult *res;
    int e = 0, rc = 0;

    res = sb_pg_query(pg, lock ? sql_followup_lock : sql_followup_peek, 1, params, &e, err,
                      sizeof(err));
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        sb_strlcpy(state, PQgetvalue(res, 0, 0), statesz);
        if (sb_parse_int64(PQgetvalue(res, 0, 1), since_resolved_s) != 0)
            *since_resolved_s = -1;
        rc = 1;
    }
    PQclear(res);
    return rc;
}

static void pg_rollback(struct sb_pg *pg)
{
    char err[256];
    (void)sb_pg_exec(pg, "ROLLBACK", err, sizeof(err));
}

/* Decides the follow-up on ticket and makes its move (resume or reopen). Returns the
 * decision, or -1 when the move could not be made durable (Kafka or PostgreSQL failed
 * midway: the contact is refused with 503, so that its retry makes the move). PostgreSQL
 * unreachable before anything changed: the contact threads as it is (intake fails open). */
static int followup(struct ingest *in, const char *ticket, const char *contact_id)
{
    int64_t window = sb_config_int(in->cfg, "lifecycle.reopen_window_s"), since = -1;
    char state[SB_LIFECYCLE_NAME_MAX], err[256];
    const char *params[2] = {ticket, NULL};
    struct sb_pg *pg = ingest_pg(in);
    enum sb_followup f;
    struct sb_event ev;
    const char *next;
    PGresult *res;
    char *buf = NULL;
    size_t len = 0;
    int rc, e = 0;

    if (pg == NULL)
        goto unchecked;
    rc = followup_read(pg, ticket, 0, state, sizeof(state), &since);
    if (rc < 0)
        goto unchecked;
    if (rc == 0)
        return SB_FOLLOWUP_NONE; /* no agent has acted on it: new, queued or assigned */
    f = sb_lifecycle_followup(state, since, window);
    if (f == SB_FOLLOWUP_NONE || f == SB_FOLLOWUP_NEW_TICKET)
        return (int)f;
    if (sb_pg_exec(pg, "BEGIN", err, sizeof(err)) != 0)
        goto unchecked;
    rc = followup_read(pg, ticket, 1, state, sizeof(state), &since);
    if (rc <= 0) {
        pg_rollback(pg);
        if (rc < 0)
            goto unchecked;
        return SB_FOLLOWUP_NONE;
    }
    /* Decided again under the lock: an agent may have moved it meanwhile. */
    f = sb_lifecycle_followup(state, since, window);
    next = sb_lifecycle_followup_move(f) ? sb_lifecycle_next(state, sb_lifecycle_followup_move(f))
                                         : NULL;
    if (next == NULL) {
        pg_rollback(pg);
        return (int)f;
    }
    rc = sb_event_init(&ev, "ticket.status_changed", in->producer_name, ticket, NULL,
                       json_pack("{s:s,s:{s:s,s:s},s:s,s:s,s:s,s:s}", "ticket_id", ticket, "actor",
                                 "role", "customer", "agent_id", "", "status", next, "from", state,
                                 "reason", "the customer wrote again", "contact_id", contact_id));
    if (rc == 0)
        buf = sb_event_encode(&ev, &len);
    sb_event_clear(&ev);
    rc = buf ? sb_producer_send_wait(in->producer, SB_TOPIC_ACTIVITY, ticket, strlen(ticket), buf,
                                     len,
                                     (int)sb_config_int(in->cfg, "kafka.produce_timeout_ms") + 1000)
             : SB_E_INVAL;
    free(buf);
    if (rc != 0) {
        pg_rollback(pg);
        sb_log_kv(SB_LOG_WARN, "follow-up move not acknowledged by Kafka", "ticket_id", ticket,
                  NULL);
        return -1;
    }
    params[1] = next;
    res = sb_pg_query(pg, sql_followup_update, 2, params, &e, err, sizeof(err));
    if (res != NULL)
        PQclear(res);
    if (res == NULL || sb_pg_exec(pg, "COMMIT", err, sizeof(err)) != 0) {
        /* As for an agent's action (docs/lifecycle.md, consistency window). */
        pg_rollback(pg);
        sb_log_kv(SB_LOG_ERROR, "follow-up produced but its workflow state not recorded",
                  "ticket_id", ticket, "state", next, "detail", err, NULL);
        sb_metric_inc(sb_metrics_counter(
            in->metrics, "sb_ingest_workflow_unrecorded_total",
            "Actions acknowledged by Kafka whose workflow state could not be committed", NULL));
    }
    count_followup(in, f == SB_FOLLOWUP_RESUME ? "resumed" : "reopened");
    return (int)f;
unchecked:
    count_followup(in, "unchecked");
    return SB_FOLLOWUP_NONE;
}

/* Threads a follow-up: moves its ticket, or gives the contact a new ticket when the one
 * it was threaded onto is closed past the reopen window (the open-ticket key then names
 * the new one; another open ticket of the customer that a concurrent contact made is
 * taken instead, and checked in turn). Returns 0, or -1 to answer 503. */
static int thread_followup(struct ingest *in, struct sb_redis *r, struct pending *p,
                           const char *contact_id)
{
    for (int round = 0; round < 3 && !p->new_ticket; round++) {
        char id[SB_UUID_STRLEN + 1], fresh[TICKET_MAX], ttl[24], *body;
        const char *keys[1] = {p->open_key};
        const char *args[3] = {p->ticket_id, fresh, ttl};
        const char *rest = strstr(p->response, "\",\"contact_id\"");
        redisReply *rep;
        size_t n;
        int f = followup(in, p->ticket_id, contact_id);

        if (f < 0)
            return -1;
        if (f != SB_FOLLOWUP_NEW_TICKET || r == NULL || p->open_key[0] == '\0' || rest == NULL)
            return 0;
        sb_uuid7_new(id);
        sb_fmt(fresh, sizeof(fresh), "T-%s", id);
        sb_fmt(ttl, sizeof(ttl), "%lld", (long long)in->open_window_s);
        rep = sb_redis_eval(r, SCRIPT_SWAP, 1, keys, 3, args);
        if (rep == NULL || rep->type != REDIS_REPLY_STRING || rep->len >= TICKET_MAX) {
            if (rep != NULL)
                freeReplyObject(rep);
            sb_metric_inc(in->m_redis_unavailable);
            return 0; /* threaded onto the closed ticket as before */
        }
        p->new_ticket = strcmp(rep->str, fresh) == 0;
        n = strlen(rep->str) + strlen(rest) + 16;
        body = sb_malloc(n);
        sb_fmt(body, n, "{\"ticket_id\":\"%s%s", rep->str, rest);
        sb_strlcpy(p->ticket_id, rep->str, sizeof(p->ticket_id));
        freeReplyObject(rep);
        free(p->response);
        p->response = body;
        if (p->new_ticket)
            count_followup(in, "new_ticket");
    }
    return 0;
}

int ingest_contact(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp,
                   json_t *contact, const char *idem_key, int wechat_reply)
{
    struct pending *p = sb_calloc(1, sizeof(*p));
    struct sb_redis *r = ingest_redis(in);
    const char *channel = json_string_value(json_object_get(contact, "channel"));
    const char *external_id = json_string_value(json_object_get(contact, "external_id"));
    const char *traceparent = sb_http_req_header(req, "traceparent");
    char customer_no[128], hash[65], contact_id[40], trace[SB_TRACE_ID_STRLEN + 1] = "";
    char id[SB_UUID_STRLEN + 1], suffix[256];
    enum sb_identity_source source;
    struct lookup l;
    struct sb_event ev;
    json_t *queue = NULL;
    char *buf = NULL, *queue_text;
    size_t len;
    int rc, reserved = -1;

    memset(&l, 0, sizeof(l));
    p->in = in;
    p->wechat_reply = wechat_reply;
    p->t0_us = sb_mono_us();
    sb_strlcpy(p->channel, channel, sizeof(p->channel));
    /* The contact id is derived from the idempotency identity, so that a replay that
     * slips past deduplication (Redis lost) is still recognisable downstream. */
    sb_sha256_join_hex(channel, '\n', idem_key ? idem_key : external_id, hash);
    sb_fmt(contact_id, sizeof(contact_id), "c-%.32s", hash);
    sb_fmt(p->idem_key, sizeof(p->idem_key), "sb:idem:%s", hash);
    if (strcmp(channel, "email") == 0) {
        sb_sha256_join_hex("msgid", '\n', external_id, hash);
        sb_fmt(p->thread_key, sizeof(p->thread_key), "sb:thread:%s", hash);
    }
    sb_uuid7_new(id);
    sb_fmt(p->ticket_id, sizeof(p->ticket_id), "T-%s", id);
    p->new_ticket = 1;
    if (r != NULL) {
        redisReply *known = NULL;
        int fast = fast_path(in, r, contact, channel, contact_id, p, customer_no,
                             sizeof(customer_no), &known);
        if (fast == 0) {
            replay(in, known->element[1]->str, known->element[1]->len, channel, wechat_reply, resp);
            freeReplyObject(known);
            goto answered;
        }
        if (fast == 1) {
            source = SB_IDENTITY_CACHE;
            open_key_of(customer_no, p->open_key, sizeof(p->open_key));
            goto produce;
        }
        if (fast < 0)
            r = NULL;
    }
    /* The slow path: the customer is not in the cache (first contact, or Redis down). */
    if (r != NULL && lookup(r, contact, p->idem_key, channel, &l) != 0)
        r = NULL;
    if (r != NULL && l.idem != NULL) {
        replay(in, l.idem->str, l.idem->len, channel, wechat_reply, resp);
        goto answered;
    }
    if (ingest_identity_resolve(in, json_object_get(contact, "customer"), r ? l.cached : NULL,
                                customer_no, sizeof(customer_no), &source) != 0) {
        ingest_error(in, resp, channel, 400, "invalid", "no customer identity", "customer");
        goto answered;
    }
    open_key_of(customer_no, p->open_key, sizeof(p->open_key));
    queue = r ? queue_estimate(in, l.eta) : NULL;
    queue_text = queue ? json_dumps(queue, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    sb_fmt(suffix, sizeof(suffix), "\",\"contact_id\":\"%s\",\"queue\":%s}", contact_id,
           queue_text ? queue_text : "null");
    free(queue_text);
    json_decref(queue);
    if (r != NULL) {
        redisReply *known = NULL;
        reserved = reserve(in, r, p, l.thread_ticket, suffix, &known);
        if (reserved == 0) {
            replay(in, known->element[1]->str, known->element[1]->len, channel, wechat_reply, resp);
            freeReplyObject(known);
            goto answered;
        }
    }
    if (reserved < 0) {
        /* Redis unavailable: accept without deduplication or threading (fail open). */
        p->idem_key[0] = p->open_key[0] = p->thread_key[0] = '\0';
        p->response = sb_malloc(strlen(p->ticket_id) + strlen(suffix) + 16);
        sb_fmt(p->response, strlen(p->ticket_id) + strlen(suffix) + 16, "{\"ticket_id\":\"%s%s",
               p->ticket_id, suffix);
        sb_metric_inc(in->m_redis_unavailable);
    }
    lookup_free(&l);
produce:
    if (!p->new_ticket && thread_followup(in, r, p, contact_id) != 0) {
        ingest_error(in, resp, channel, 503, "unavailable",
                     "the contact could not be stored durably; retry later", NULL);
        sb_http_resp_header(resp, "Retry-After", "5");
        json_decref(contact);
        goto undo;
    }
    /* W3C traceparent "00-<trace id>-<span id>-<flags>" carries the trace from the
     * caller; otherwise a new trace starts here. */
    if (traceparent != NULL && strlen(traceparent) >= 35 && traceparent[2] == '-') {
        sb_fmt(trace, sizeof(trace), "%.32s", traceparent + 3);
        if (!sb_trace_id_valid(trace))
            trace[0] = '\0';
    }
    json_object_set_new(contact, "contact_id", json_string(contact_id));
    json_object_set_new(contact, "customer_key", json_string(customer_no));
    json_object_set_new(contact, "customer_resolution",
                        json_string(sb_identity_source_str(source)));
    json_object_set_new(contact, "new_ticket", json_boolean(p->new_ticket));
    {
        char now[SB_TIME_STRLEN + 1];
        sb_time_format_ms(sb_now_ms(), now);
        json_object_set_new(contact, "received_at", json_string(now));
    }
    if (idem_key != NULL)
        json_object_set_new(contact, "idempotency_key", json_string(idem_key));
    rc = sb_event_init(&ev, "contact.received", in->producer_name, p->ticket_id,
                       trace[0] ? trace : NULL, contact);
    contact = NULL; /* owned by ev */
    if (rc == 0)
        buf = sb_event_encode(&ev, &len);
    sb_event_clear(&ev);
    if (buf == NULL) {
        ingest_error(in, resp, channel, 400, "invalid", "the contact cannot be encoded", "body");
        p->err = RD_KAFKA_RESP_ERR__BAD_MSG;
        goto undo;
    }
    p->async = sb_http_req_suspend(req);
    sb_metric_add(in->m_inflight, 1);
    rc = sb_producer_send(in->producer, SB_TOPIC_CONTACTS, customer_no, strlen(customer_no), buf,
                          len, delivered, p);
    free(buf);
    if (rc != 0) {
        /* Not enqueued: the delivery callback will not run; answer through the
         * completer so that the reservation is undone the same way. */
        delivered(p, rc == SB_E_FATAL ? RD_KAFKA_RESP_ERR__FATAL : RD_KAFKA_RESP_ERR__QUEUE_FULL);
    }
    return SB_HTTP_SUSPENDED;
undo:
    if (r != NULL && p->idem_key[0]) {
        redisReply *rep = sb_redis_cmdf(r, "DEL %s", p->idem_key);
        if (rep != NULL)
            freeReplyObject(rep);
    }
    if (r != NULL && p->new_ticket && p->open_key[0]) {
        /* forget a ticket that never came to exist (as the completer does) */
        redisReply *rep = sb_redis_cmdf(
            r, "EVAL %s 1 %s %s",
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
            "return 0",
            p->open_key, p->ticket_id);
        if (rep != NULL)
            freeReplyObject(rep);
    }
    pending_free(p);
    return 0;
answered:
    lookup_free(&l);
    json_decref(contact);
    pending_free(p);
    return 0;
}
