/* Table-driven configuration: defaults, then a JSON file, then SB_* environment
 * variables, each value checked against its type and bounds at the moment it is
 * set, so that a bad value is reported with the key and the source that gave it. */
#include "sb/config.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest dotted key accepted from a file. */
#define CFG_KEY_MAX 256
/* Largest configuration file read. */
#define CFG_FILE_MAX (1024 * 1024)

struct cfg_value {
    int set;
    char *str;
    int64_t i;
    double d;
    int b;
    size_t nmap;
    char **map_keys;
    char **map_values;
};

struct sb_config {
    const struct sb_config_def *defs;
    size_t n;
    struct cfg_value *values;
};

static const char *const type_names[] = {"string", "integer", "boolean", "number", "object"};

static long find_def(const struct sb_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->defs[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

static void map_clear(struct cfg_value *v)
{
    for (size_t i = 0; i < v->nmap; i++) {
        free(v->map_keys[i]);
        free(v->map_values[i]);
    }
    free(v->map_keys);
    free(v->map_values);
    v->map_keys = NULL;
    v->map_values = NULL;
    v->nmap = 0;
}

static void map_put(struct cfg_value *v, const char *k, size_t klen, const char *val, size_t vlen)
{
    for (size_t i = 0; i < v->nmap; i++) {
        if (strlen(v->map_keys[i]) == klen && memcmp(v->map_keys[i], k, klen) == 0) {
            free(v->map_values[i]);
            v->map_values[i] = sb_strndup(val, vlen);
            return;
        }
    }
    v->map_keys = sb_realloc(v->map_keys, (v->nmap + 1) * sizeof(char *));
    v->map_values = sb_realloc(v->map_values, (v->nmap + 1) * sizeof(char *));
    v->map_keys[v->nmap] = sb_strndup(k, klen);
    v->map_values[v->nmap] = sb_strndup(val, vlen);
    v->nmap++;
}

static int check_bounds(const struct sb_config_def *def, double x, char *errstr, size_t errstr_size)
{
    if (def->min <= def->max && (x < def->min || x > def->max)) {
        sb_fmt(errstr, errstr_size, "config key \"%s\": %g is outside [%g, %g]", def->name, x,
               def->min, def->max);
        return SB_E_INVAL;
    }
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0) {
        *out = 1;
        return 0;
    }
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0) {
        *out = 0;
        return 0;
    }
    return SB_E_INVAL;
}

/* Parses "k=v,k=v" into a map value. */
static int parse_map_text(struct cfg_value *v, const char *name, const char *text, char *errstr,
                          size_t errstr_size)
{
    const char *p = text;

    map_clear(v);
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        const char *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);

        eq = memchr(p, '=', len);
        if (eq == NULL || eq == p) {
            sb_fmt(errstr, errstr_size, "config key \"%s\": expected k=v[,k=v…]", name);
            return SB_E_INVAL;
        }
        map_put(v, p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1);
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int sb_config_set(struct sb_config *cfg, const char *name, const char *value, char *errstr,
                  size_t errstr_size)
{
    long idx = find_def(cfg, name);
    const struct sb_config_def *def;
    struct cfg_value *v;
    int64_t i;
    double d;
    char *end = NULL;
    int b;

    if (idx < 0) {
        sb_fmt(errstr, errstr_size, "unknown config key \"%s\"", name);
        return SB_E_INVAL;
    }
    def = &cfg->defs[idx];
    v = &cfg->values[idx];
    switch (def->type) {
    case SB_CFG_STRING:
        free(v->str);
        v->str = sb_strdup(value);
        break;
    case SB_CFG_INT:
        if (sb_parse_int64(value, &i) != 0) {
            sb_fmt(errstr, errstr_size, "config key \"%s\": \"%s\" is not an integer", name, value);
            return SB_E_INVAL;
        }
        if (check_bounds(def, (double)i, errstr, errstr_size) != 0)
            return SB_E_INVAL;
        v->i = i;
        break;
    case SB_CFG_DOUBLE:
        errno = 0;
        d = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(d)) {
            sb_fmt(errstr, errstr_size, "config key \"%s\": \"%s\" is not a number", name, value);
            return SB_E_INVAL;
        }
        if (check_bounds(def, d, errstr, errstr_size) != 0)
            return SB_E_INVAL;
        v->d = d;
        break;
    case SB_CFG_BOOL:
        if (parse_bool(value, &b) != 0) {
            sb_fmt(errstr, errstr_size, "config key \"%s\": \"%s\" is not a boolean", name, value);
            return SB_E_INVAL;
        }
        v->b = b;
        break;
    case SB_CFG_MAP:
        if (parse_map_text(v, name, value, errstr, errstr_size) != 0)
            return SB_E_INVAL;
        break;
    }
    v->set = 1;
    return 0;
}

struct sb_config *sb_config_new(const struct sb_config_def *defs, size_t n, char *errstr,
                                size_t errstr_size)
{
    struct sb_config *cfg = sb_calloc(1, sizeof(*cfg));

    cfg->defs = defs;
    cfg->n = n;
    cfg->values = sb_calloc(n ? n : 1, sizeof(struct cfg_value));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(defs[i].name, defs[j].name) == 0) {
                sb_fmt(errstr, errstr_size, "config key \"%s\" is defined twice", defs[i].name);
                goto fail;
            }
        }
        if (defs[i].def != NULL &&
            sb_config_set(cfg, defs[i].name, defs[i].def, errstr, errstr_size) != 0)
            goto fail;
    }
    return cfg;
fail:
    sb_config_destroy(cfg);
    return NULL;
}

void sb_config_destroy(struct sb_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->values[i].str);
        map_clear(&cfg->values[i]);
    }
    free(cfg->values);
    free(cfg);
}

/* Converts a JSON scalar to text for a MAP entry. Returns a new string or NULL. */
static char *scalar_text(json_t *j)
{
    char buf[64];

    if (json_is_string(j))
        return sb_strndup(json_string_value(j), json_string_length(j));
    if (json_is_integer(j)) {
        sb_fmt(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return sb_strdup(buf);
    }
    if (json_is_real(j)) {
        sb_fmt(buf, sizeof(buf), "%.17g", json_real_value(j));
        return sb_strdup(buf);
    }
    if (json_is_boolean(j))
        return sb_strdup(json_is_true(j) ? "true" : "false");
    return NULL;
}

static int set_json_value(struct sb_config *cfg, long idx, json_t *j, char *errstr,
                          size_t errstr_size)
{
    const struct sb_config_def *def = &cfg->defs[idx];
    struct cfg_value *v = &cfg->values[idx];
    const char *k;
    json_t *item;
    char buf[64];
    int ok;

    switch (def->type) {
    case SB_CFG_STRING:
        ok = json_is_string(j);
        break;
    case SB_CFG_INT:
        ok = json_is_integer(j);
        break;
    case SB_CFG_DOUBLE:
        ok = json_is_number(j);
        break;
    case SB_CFG_BOOL:
        ok = json_is_boolean(j);
        break;
    case SB_CFG_MAP:
        ok = json_is_object(j);
        break;
    default:
        ok = 0;
    }
    if (!ok) {
        sb_fmt(errstr, errstr_size, "config key \"%s\": expected %s", def->name,
               type_names[def->type]);
        return SB_E_INVAL;
    }
    switch (def->type) {
    case SB_CFG_STRING:
        return sb_config_set(cfg, def->name, json_string_value(j), errstr, errstr_size);
    case SB_CFG_INT:
        sb_fmt(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return sb_config_set(cfg, def->name, buf, errstr, errstr_size);
    case SB_CFG_DOUBLE:
        sb_fmt(buf, sizeof(buf), "%.17g", json_number_value(j));
        return sb_config_set(cfg, def->name, buf, errstr, errstr_size);
    case SB_CFG_BOOL:
        return sb_config_set(cfg, def->name, json_is_true(j) ? "true" : "false", errstr,
                             errstr_size);
    case SB_CFG_MAP:
        map_clear(v);
        json_object_foreach(j, k, item)
        {
            char *text = scalar_text(item);
            if (text == NULL) {
                sb_fmt(errstr, errstr_size, "config key \"%s.%s\": expected a scalar", def->name,
                       k);
                return SB_E_INVAL;
            }
            map_put(v, k, strlen(k), text, strlen(text));
            free(text);
        }
        v->set = 1;
        return 0;
    }
    return SB_E_INVAL;
}

static int load_object(struct sb_config *cfg, const char *prefix, json_t *obj, char *errstr,
                       size_t errstr_size)
{
    const char *k;
    json_t *item;

    json_object_foreach(obj, k, item)
    {
        char key[CFG_KEY_MAX];
        long idx;

        if (sb_fmt(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k) != 0) {
            sb_fmt(errstr, errstr_size, "config key \"%.64s…\" is too long", key);
            return SB_E_INVAL;
        }
        idx = find_def(cfg, key);
        if (idx >= 0) {
            if (set_json_value(cfg, idx, item, errstr, errstr_size) != 0)
                return SB_E_INVAL;
        } else if (json_is_object(item)) {
            if (load_object(cfg, key, item, errstr, errstr_size) != 0)
                return SB_E_INVAL;
        } else {
            sb_fmt(errstr, errstr_size, "unknown config key \"%s\"", key);
            return SB_E_INVAL;
        }
    }
    return 0;
}

int sb_config_load_json(struct sb_config *cfg, const char *text, size_t len, char *errstr,
                        size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    if (root == NULL) {
        sb_fmt(errstr, errstr_size, "config: invalid JSON at line %d column %d: %s", jerr.line,
               jerr.column, jerr.text);
        return SB_E_INVAL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        sb_fmt(errstr, errstr_size, "config: the top level must be a JSON object");
        return SB_E_INVAL;
    }
    rc = load_object(cfg, "", root, errstr, errstr_size);
    json_decref(root);
    return rc;
}

int sb_config_load_file(struct sb_config *cfg, const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len;
    int rc = SB_E_INVAL;
    char sub[512];

    f = fopen(path, "rb");
    if (f == NULL) {
        sb_fmt(errstr, errstr_size, "config file %s: %s", path, strerror(errno));
        goto out;
    }
    buf = sb_malloc(CFG_FILE_MAX + 1);
    len = fread(buf, 1, CFG_FILE_MAX + 1, f);
    if (len > CFG_FILE_MAX) {
        sb_fmt(errstr, errstr_size, "config file %s: larger than %d bytes", path, CFG_FILE_MAX);
        goto out;
    }
    rc = sb_config_load_json(cfg, buf, len, sub, sizeof(sub));
    if (rc != 0)
        sb_fmt(errstr, errstr_size, "%s: %s", path, sub);
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}

int sb_config_load_env(struct sb_config *cfg, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const char *env = cfg->defs[i].env;
        const char *val = env ? getenv(env) : NULL;
        char sub[512];

        if (val == NULL)
            continue;
        if (sb_config_set(cfg, cfg->defs[i].name, val, sub, sizeof(sub)) != 0) {
            sb_fmt(errstr, errstr_size, "environment %s: %s", env, sub);
            return SB_E_INVAL;
        }
    }
    return 0;
}

int sb_config_validate(const struct sb_config *cfg, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const struct sb_config_def *def = &cfg->defs[i];
        const struct cfg_value *v = &cfg->values[i];
        if (def->required && (!v->set || (def->type == SB_CFG_STRING && v->str[0] == '\0'))) {
            sb_fmt(errstr, errstr_size, "config key \"%s\" is required (or set %s)", def->name,
                   def->env ? def->env : "it in the file");
            return SB_E_INVAL;
        }
    }
    return 0;
}

static const struct cfg_value *get(const struct sb_config *cfg, const char *name,
                                   enum sb_cfg_type type)
{
    long idx = find_def(cfg, name);
    assert(idx >= 0 && "config key not in the table");
    assert(cfg->defs[idx].type == type && "config key read with the wrong type");
    return &cfg->values[idx];
}

const char *sb_config_str(const struct sb_config *cfg, const char *name)
{
    const struct cfg_value *v = get(cfg, name, SB_CFG_STRING);
    return v->set ? v->str : NULL;
}

int64_t sb_config_int(const struct sb_config *cfg, const char *name)
{
    return get(cfg, name, SB_CFG_INT)->i;
}

int sb_config_bool(const struct sb_config *cfg, const char *name)
{
    return get(cfg, name, SB_CFG_BOOL)->b;
}

double sb_config_double(const struct sb_config *cfg, const char *name)
{
    return get(cfg, name, SB_CFG_DOUBLE)->d;
}

size_t sb_config_map(const struct sb_config *cfg, const char *name, const char *const **keys,
                     const char *const **values)
{
    const struct cfg_value *v = get(cfg, name, SB_CFG_MAP);
    *keys = (const char *const *)v->map_keys;
    *values = (const char *const *)v->map_values;
    return v->nmap;
}

void sb_config_print_help(const struct sb_config_def *defs, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const struct sb_config_def *d = &defs[i];
        fprintf(out, "  %-28s %-8s env %s\n", d->name, type_names[d->type], d->env ? d->env : "-");
        fprintf(out, "      %s", d->help);
        if (d->def != NULL && d->def[0] != '\0')
            fprintf(out, " (default: %s)", d->def);
        if (d->min <= d->max && (d->type == SB_CFG_INT || d->type == SB_CFG_DOUBLE))
            fprintf(out, " [%g..%g]", d->min, d->max);
        if (d->required)
            fprintf(out, " (required)");
        fputc('\n', out);
    }
}
