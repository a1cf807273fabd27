/* Redis client on hiredis 0.14 that survives server restarts: a context is dead
 * after any error until redisReconnect() (RELIABILITY.md), timeouts look like I/O
 * errors, and after a restart EVALSHA answers NOSCRIPT. This wrapper reconnects with
 * bounded backoff on the next call and reloads scripts transparently.
 * Not thread-safe: one per thread. */
#ifndef SB_REDIS_H
#define SB_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

struct sb_redis;

/* Parses "redis://host:port/db" (or host:port) and connects with timeout_ms for
 * connect and for every command. Returns NULL with errstr when unreachable. */
struct sb_redis *sb_redis_new(const char *url, int timeout_ms, char *errstr, size_t errstr_size);
void sb_redis_destroy(struct sb_redis *r);

/* Runs one command given as argv (binary-safe). Returns a reply (freeReplyObject()),
 * or NULL when Redis is unreachable (the next call reconnects). A Redis error reply
 * is returned as a reply of type REDIS_REPLY_ERROR. */
redisReply *sb_redis_cmd(struct sb_redis *r, int argc, const char **argv, const size_t *argvlen);
/* printf-like convenience for fixed commands (hiredis format, binary-safe %b). */
redisReply *sb_redis_cmdf(struct sb_redis *r, const char *fmt, ...);

/* Pipelines n commands and returns their n replies in replies[] (each to be freed).
 * Returns 0, or SB_E_IO when the connection failed (replies then all NULL). */
int sb_redis_pipeline(struct sb_redis *r, size_t n, const int *argcs, const char ***argvs,
                      const size_t **argvlens, redisReply **replies);

/* Registers a Lua script; returns its index (>= 0) for sb_redis_eval. */
int sb_redis_script_add(struct sb_redis *r, const char *lua);
/* Runs registered script idx with keys and args via EVALSHA, loading it again on
 * NOSCRIPT. Returns a reply or NULL like sb_redis_cmd. */
redisReply *sb_redis_eval(struct sb_redis *r, int idx, int nkeys, const char **keys, int nargs,
                          const char **args);

/* 0 when PING answers PONG. */
int sb_redis_ping(struct sb_redis *r);
/* Number of successful reconnects so far. */
unsigned sb_redis_reconnects(const struct sb_redis *r);

#endif
