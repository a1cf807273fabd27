/* Table-driven configuration. Each program declares one table of options
 * (name, environment variable, type, default, bounds, help). Values come from the
 * defaults, then a JSON file (--config FILE), then SB_* environment variables.
 * Unknown keys and wrong types are rejected with a message naming the key.
 *
 * Option names are dotted paths ("kafka.brokers"); in the JSON file they may be
 * written nested ({"kafka":{"brokers":"…"}}) or flat ({"kafka.brokers":"…"}).
 * Options of type SB_CFG_MAP (e.g. "rdkafka") take a JSON object of string values
 * that is passed through to a library (e.g. rd_kafka_conf_set); their environment
 * variable holds "k=v,k=v". */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sb_cfg_type { SB_CFG_STRING, SB_CFG_INT, SB_CFG_BOOL, SB_CFG_DOUBLE, SB_CFG_MAP };

struct sb_config_def {
    const char *name; /* dotted key, e.g. "kafka.brokers" */
    const char *env;  /* environment variable, e.g. "SB_KAFKA_BROKERS" */
    enum sb_cfg_type type;
    const char *def; /* default as text (NULL: no default, required if flags say so) */
    double min, max; /* bounds for INT and DOUBLE (ignored when min > max) */
    int required;    /* 1: must be set by default, file or environment */
    const char *help;
};

struct sb_config;

/* Creates a configuration from a table of n definitions with their defaults.
 * The table is borrowed and must outlive the configuration. NULL on failure. */
struct sb_config *sb_config_new(const struct sb_config_def *defs, size_t n, char *errstr,
                                size_t errstr_size);
void sb_config_destroy(struct sb_config *cfg);

/* Loads a JSON file. Returns 0, or SB_E_INVAL with errstr naming the key or position. */
int sb_config_load_file(struct sb_config *cfg, const char *path, char *errstr, size_t errstr_size);
/* Loads a JSON text (same rules as a file). */
int sb_config_load_json(struct sb_config *cfg, const char *text, size_t len, char *errstr,
                        size_t errstr_size);
/* Applies the SB_* environment variables of the table. */
int sb_config_load_env(struct sb_config *cfg, char *errstr, size_t errstr_size);
/* Sets one option from text (used by the loaders and by command-line overrides). */
int sb_config_set(struct sb_config *cfg, const char *name, const char *value, char *errstr,
                  size_t errstr_size);
/* Checks that every required option has a value. */
int sb_config_validate(const struct sb_config *cfg, char *errstr, size_t errstr_size);

/* Getters: the name must exist in the table with that type (asserted). Strings are
 * borrowed from the configuration; NULL when unset. */
const char *sb_config_str(const struct sb_config *cfg, const char *name);
int64_t sb_config_int(const struct sb_config *cfg, const char *name);
int sb_config_bool(const struct sb_config *cfg, const char *name);
double sb_config_double(const struct sb_config *cfg, const char *name);
/* Iterates a MAP option: returns the number of entries and sets keys and values to
 * borrowed arrays. */
size_t sb_config_map(const struct sb_config *cfg, const char *name, const char *const **keys,
                     const char *const **values);

/* Writes the option table as help text (one option per line block). */
void sb_config_print_help(const struct sb_config_def *defs, size_t n, FILE *out);

#endif
