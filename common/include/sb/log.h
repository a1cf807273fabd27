/* One logger for every program: JSON lines on stderr with level, time, program
 * and message, plus optional key/value fields. Fields whose names denote personal
 * data (phone, email, name, body, id numbers, cards…) are always written as
 * "[redacted]", so a careless call cannot leak PII into the logs. */
#ifndef SB_LOG_H
#define SB_LOG_H

enum sb_log_level { SB_LOG_DEBUG = 0, SB_LOG_INFO, SB_LOG_WARN, SB_LOG_ERROR, SB_LOG_OFF };

/* Sets the program name written with every line and the minimum level. */
void sb_log_init(const char *program, enum sb_log_level level);
/* Parses "debug", "info", "warn", "error", "off". Returns 0 or SB_E_INVAL. */
int sb_log_level_parse(const char *s, enum sb_log_level *out);
void sb_log_set_level(enum sb_log_level level);
int sb_log_enabled(enum sb_log_level level);

/* Logs msg with NULL-terminated key/value string pairs:
 *   sb_log_kv(SB_LOG_INFO, "consumer started", "group", g, "topics", t, NULL);
 * Any thread may call it. */
void sb_log_kv(enum sb_log_level level, const char *msg, ...);

/* printf-style message with no fields. */
void sb_logf(enum sb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when a field name is treated as personal data (exposed for tests). */
int sb_log_field_is_pii(const char *key);

#define SB_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if (sb_log_enabled(level))                                                                 \
            sb_logf(level, __VA_ARGS__);                                                           \
    } while (0)
#define SB_DEBUG(...) SB_LOG(SB_LOG_DEBUG, __VA_ARGS__)
#define SB_INFO(...) SB_LOG(SB_LOG_INFO, __VA_ARGS__)
#define SB_WARN(...) SB_LOG(SB_LOG_WARN, __VA_ARGS__)
#define SB_ERROR(...) SB_LOG(SB_LOG_ERROR, __VA_ARGS__)

#endif
