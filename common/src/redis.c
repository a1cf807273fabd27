/* Redis client over hiredis 0.14 with reconnection and script management.
 * hiredis marks a context dead after any I/O error (including timeouts), so every
 * call first revives a dead context with redisReconnect, backing off between
 * failed attempts so that a down Redis costs callers microseconds, not seconds. */
#include "sb/redis.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/util.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#define MAX_SCRIPTS 32
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct script {
    char *lua;
    char sha[41];
};

struct sb_redis {
    redisContext *ctx;
    char host[256];
    int port;
    int db;
    int timeout_ms;
    int64_t next_try_ms; /* monotonic: earliest next reconnect attempt */
    int backoff_ms;
    unsigned reconnects;
    struct script scripts[MAX_SCRIPTS];
    int nscripts;
};

static int parse_url(struct sb_redis *r, const char *url, char *errstr, size_t errstr_size)
{
    const char *p = url;
    const char *colon, *slash;
    int64_t v;
    char num[16];

    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    slash = strchr(p, '/');
    colon = memchr(p, ':', slash ? (size_t)(slash - p) : strlen(p));
    r->port = 6379;
    r->db = 0;
    if (colon != NULL) {
        size_t n = (size_t)((slash ? slash : p + strlen(p)) - colon - 1);
        if (n == 0 || n >= sizeof(num))
            goto bad;
        memcpy(num, colon + 1, n);
        num[n] = '\0';
        if (sb_parse_int64(num, &v) != 0 || v < 1 || v > 65535)
            goto bad;
        r->port = (int)v;
    }
    {
        size_t n = (size_t)((colon ? colon : slash ? slash : p + strlen(p)) - p);
        if (n == 0 || n >= sizeof(r->host))
            goto bad;
        memcpy(r->host, p, n);
        r->host[n] = '\0';
    }
    if (slash != NULL && slash[1] != '\0') {
        if (sb_parse_int64(slash + 1, &v) != 0 || v < 0 || v > 15)
            goto bad;
        r->db = (int)v;
    }
    return 0;
bad:
    sb_fmt(errstr, errstr_size, "redis url \"%s\": expected redis://host:port/db", url);
    return SB_E_INVAL;
}

static int select_db(struct sb_redis *r)
{
    redisReply *rep;
    int ok;

    if (r->db == 0)
        return 0;
    rep = redisCommand(r->ctx, "SELECT %d", r->db);
    ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? 0 : SB_E_IO;
}

static int connect_now(struct sb_redis *r, char *errstr, size_t errstr_size)
{
    struct timeval tv = {.tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000};

    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
    r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    if (r->ctx == NULL || r->ctx->err) {
        sb_fmt(errstr, errstr_size, "redis %s:%d: %s", r->host, r->port,
               r->ctx ? r->ctx->errstr : "cannot allocate context");
        return SB_E_IO;
    }
    redisSetTimeout(r->ctx, tv);
    if (select_db(r) != 0) {
        sb_fmt(errstr, errstr_size, "redis %s:%d: SELECT %d failed", r->host, r->port, r->db);
        return SB_E_IO;
    }
    return 0;
}

struct sb_redis *sb_redis_new(const char *url, int timeout_ms, char *errstr, size_t errstr_size)
{
    struct sb_redis *r = sb_calloc(1, sizeof(*r));

    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    if (url == NULL || parse_url(r, url, errstr, errstr_size) != 0 ||
        connect_now(r, errstr, errstr_size) != 0) {
        sb_redis_destroy(r);
        return NULL;
    }
    return r;
}

void sb_redis_destroy(struct sb_redis *r)
{
    if (r == NULL)
        return;
    if (r->ctx != NULL)
        redisFree(r->ctx);
    for (int i = 0; i < r->nscripts; i++)
        free(r->scripts[i].lua);
    free(r);
}

/* Makes the context usable, or fails fast while in backoff. */
static int ensure(struct sb_redis *r)
{
    char why[256];
    int64_t now;

    if (r->ctx != NULL && r->ctx->err == 0)
        return 0;
    now = sb_mono_ms();
    if (now < r->next_try_ms)
        return SB_E_IO;
    if (connect_now(r, why, sizeof(why)) != 0) {
        r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (r->backoff_ms > BACKOFF_MAX_MS)
            r->backoff_ms = BACKOFF_MAX_MS;
        r->next_try_ms = now + r->backoff_ms;
        sb_log_kv(SB_LOG_WARN, "redis unreachable", "detail", why, NULL);
        return SB_E_IO;
    }
    r->backoff_ms = 0;
    r->next_try_ms = 0;
    r->reconnects++;
    sb_log_kv(SB_LOG_INFO, "redis reconnected", NULL);
    return 0;
}

/* Retries once on a connection that died since the last call (e.g. CLIENT KILL
 * or a server restart): the first failure is detected only by using it. */
redisReply *sb_redis_cmd(struct sb_redis *r, int argc, const char **argv, const size_t *argvlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *rep;
        if (ensure(r) != 0)
            return NULL;
        rep = redisCommandArgv(r->ctx, argc, argv, argvlen);
        if (rep != NULL)
            return rep;
    }
    return NULL;
}

redisReply *sb_redis_cmdf(struct sb_redis *r, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *rep;
        va_list ap;
        if (ensure(r) != 0)
            return NULL;
        va_start(ap, fmt);
        rep = redisvCommand(r->ctx, fmt, ap);
        va_end(ap);
        if (rep != NULL)
            return rep;
    }
    return NULL;
}

int sb_redis_pipeline(struct sb_redis *r, size_t n, const int *argcs, const char ***argvs,
                      const size_t **argvlens, redisReply **replies)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    if (ensure(r) != 0)
        return SB_E_IO;
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommandArgv(r->ctx, argcs[i], argvs[i], argvlens ? argvlens[i] : NULL) !=
            REDIS_OK)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(r->ctx, &rep) != REDIS_OK)
            goto fail;
        replies[i] = rep;
    }
    return 0;
fail:
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    if (r->ctx != NULL && r->ctx->err == 0)
        r->ctx->err = REDIS_ERR_IO; /* unread replies would desynchronise the stream */
    return SB_E_IO;
}

int sb_redis_script_add(struct sb_redis *r, const char *lua)
{
    unsigned char digest[SHA_DIGEST_LENGTH];

    if (r->nscripts >= MAX_SCRIPTS)
        return SB_E_TOOBIG;
    r->scripts[r->nscripts].lua = sb_strdup(lua);
    SHA1((const unsigned char *)lua, strlen(lua), digest);
    sb_hex(digest, sizeof(digest), r->scripts[r->nscripts].sha);
    return r->nscripts++;
}

static redisReply *eval_with(struct sb_redis *r, const char *cmd, const char *body, int nkeys,
                             const char **keys, int nargs, const char **args)
{
    int argc = 3 + nkeys + nargs;
    const char **argv = sb_malloc((size_t)argc * sizeof(char *));
    char nk[16];
    redisReply *rep;

    sb_fmt(nk, sizeof(nk), "%d", nkeys);
    argv[0] = cmd;
    argv[1] = body;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[3 + nkeys + i] = args[i];
    rep = sb_redis_cmd(r, argc, argv, NULL);
    free(argv);
    return rep;
}

redisReply *sb_redis_eval(struct sb_redis *r, int idx, int nkeys, const char **keys, int nargs,
                          const char **args)
{
    redisReply *rep;

    if (idx < 0 || idx >= r->nscripts)
        return NULL;
    rep = eval_with(r, "EVALSHA", r->scripts[idx].sha, nkeys, keys, nargs, args);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* Redis restarted (or flushed its scripts): EVAL loads and runs it. */
        freeReplyObject(rep);
        rep = eval_with(r, "EVAL", r->scripts[idx].lua, nkeys, keys, nargs, args);
    }
    return rep;
}

int sb_redis_ping(struct sb_redis *r)
{
    redisReply *rep = sb_redis_cmdf(r, "PING");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcasecmp(rep->str, "PONG") == 0;

    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? 0 : SB_E_IO;
}

unsigned sb_redis_reconnects(const struct sb_redis *r)
{
    return r->reconnects;
}
