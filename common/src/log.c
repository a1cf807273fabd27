/* JSON-lines logger on stderr. One line per call, written with a single write(2)
 * so lines from several threads never interleave. Personal-data fields are
 * redacted by name before anything is formatted. */
#include "sb/log.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/util.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *log_program = "switchboard";
static volatile int log_level = SB_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

/* Field names that carry personal data. Matching is by substring so that
 * "customer_phone" or "reply_email" are caught too. */
static const char *const pii_words[] = {"phone",  "email",    "mail",    "name",  "body", "text",
                                        "id_no",  "idcard",   "id_card", "card",  "bank", "address",
                                        "openid", "password", "token",   "secret"};

void sb_log_init(const char *program, enum sb_log_level level)
{
    log_program = program;
    log_level = level;
}

void sb_log_set_level(enum sb_log_level level)
{
    log_level = level;
}

int sb_log_enabled(enum sb_log_level level)
{
    return (int)level >= log_level && level < SB_LOG_OFF;
}

int sb_log_level_parse(const char *s, enum sb_log_level *out)
{
    for (int i = 0; i <= SB_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum sb_log_level)i;
            return 0;
        }
    }
    return SB_E_INVAL;
}

int sb_log_field_is_pii(const char *key)
{
    char lower[128];
    size_t n = 0;

    for (; key[n] != '\0' && n < sizeof(lower) - 1; n++)
        lower[n] = (char)((key[n] >= 'A' && key[n] <= 'Z') ? key[n] + 32 : key[n]);
    lower[n] = '\0';
    for (size_t i = 0; i < sizeof(pii_words) / sizeof(pii_words[0]); i++) {
        if (strstr(lower, pii_words[i]) != NULL)
            return 1;
    }
    return 0;
}

/* A JSON string for text that may not be valid UTF-8 (it is never dropped). */
static json_t *text_value(const char *v)
{
    json_t *j = json_stringn(v, strlen(v));
    return j != NULL ? j : json_string("[invalid utf-8]");
}

static void emit(enum sb_log_level level, const char *msg, va_list *fields)
{
    char ts[SB_TIME_STRLEN + 1];
    json_t *o = json_object();
    char *line;

    sb_time_format_ms(sb_now_ms(), ts);
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "program", json_string(log_program));
    json_object_set_new(o, "msg", text_value(msg));
    if (fields != NULL) {
        const char *k;
        while ((k = va_arg(*fields, const char *)) != NULL) {
            const char *v = va_arg(*fields, const char *);
            if (sb_log_field_is_pii(k))
                v = "[redacted]";
            json_object_set_new(o, k, v ? text_value(v) : json_null());
        }
    }
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (line != NULL) {
        size_t len = strlen(line);
        line[len] = '\n'; /* replaces the terminator: written with its length below */
        if (write(STDERR_FILENO, line, len + 1) < 0) {
            /* Nothing sensible to do when stderr is gone. */
        }
        free(line);
    }
}

void sb_log_kv(enum sb_log_level level, const char *msg, ...)
{
    va_list ap;

    if (!sb_log_enabled(level))
        return;
    va_start(ap, msg);
    emit(level, msg, &ap);
    va_end(ap);
}

void sb_logf(enum sb_log_level level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    if (!sb_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    emit(level, buf, NULL);
}
