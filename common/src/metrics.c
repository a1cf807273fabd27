/* Prometheus text exposition (format 0.0.4). Families keep registration order;
 * a series is one label set of a family. Values are doubles updated with a CAS
 * loop on their bit pattern, so hot paths never take a lock. */
#include "sb/metrics.h"

#include "sb/strbuf.h"
#include "sb/util.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

#define MAX_BUCKETS 32

static const double default_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

struct family;

struct sb_metric {
    struct sb_metric *next;
    const struct family *fam; /* immutable after registration */
    char *labels;             /* rendered "k=\"v\",…" without braces, "" when none */
    _Atomic uint64_t value;   /* double bits: counter/gauge value, histogram sum */
    _Atomic uint64_t count;   /* histogram observation count */
    _Atomic uint64_t buckets[MAX_BUCKETS];
};

struct family {
    struct family *next;
    char *name;
    char *help;
    enum metric_kind kind;
    double bounds[MAX_BUCKETS];
    size_t nbounds;
    struct sb_metric *series;
};

struct sb_metrics {
    pthread_mutex_t lock;
    struct family *families;
    struct family **tail;
};

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load(a);
    while (!atomic_compare_exchange_weak(a, &old, double_to_bits(bits_to_double(old) + v)))
        ;
}

struct sb_metrics *sb_metrics_new(void)
{
    struct sb_metrics *m = sb_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->families;
    return m;
}

void sb_metrics_destroy(struct sb_metrics *m)
{
    struct family *f, *fn;
    struct sb_metric *s, *sn;

    if (m == NULL)
        return;
    for (f = m->families; f != NULL; f = fn) {
        fn = f->next;
        for (s = f->series; s != NULL; s = sn) {
            sn = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

__attribute__((unused)) static int valid_name(const char *n)
{
    if (n == NULL || *n == '\0' || (*n >= '0' && *n <= '9'))
        return 0;
    for (; *n; n++) {
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') ||
              *n == '_' || *n == ':'))
            return 0;
    }
    return 1;
}

/* Renders "k1=v1,k2=v2" as k1="v1",k2="v2" with Prometheus escaping. */
static char *render_labels(const char *labels)
{
    size_t cap, len = 0;
    char *out;

    if (labels == NULL || *labels == '\0')
        return sb_strdup("");
    cap = strlen(labels) * 2 + 16;
    out = sb_malloc(cap);
    for (const char *p = labels; *p;) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        assert(eq != NULL && eq < end && "labels must be k=v,k=v");
        if (len > 0)
            out[len++] = ',';
        memcpy(out + len, p, (size_t)(eq - p));
        len += (size_t)(eq - p);
        out[len++] = '=';
        out[len++] = '"';
        for (const char *v = eq + 1; v < end; v++) {
            if (*v == '\\' || *v == '"') {
                out[len++] = '\\';
                out[len++] = *v;
            } else if (*v == '\n') {
                out[len++] = '\\';
                out[len++] = 'n';
            } else {
                out[len++] = *v;
            }
        }
        out[len++] = '"';
        p = *end ? end + 1 : end;
    }
    out[len] = '\0';
    return out;
}

static struct sb_metric *series_get(struct sb_metrics *m, const char *name, const char *help,
                                    enum metric_kind kind, const char *labels, const double *bounds,
                                    size_t nbounds)
{
    struct family *f;
    struct sb_metric *s;
    char *rendered;

    assert(valid_name(name) && "invalid metric name");
    rendered = render_labels(labels);
    pthread_mutex_lock(&m->lock);
    for (f = m->families; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            break;
    }
    if (f == NULL) {
        f = sb_calloc(1, sizeof(*f));
        f->name = sb_strdup(name);
        f->help = sb_strdup(help ? help : "");
        f->kind = kind;
        if (kind == KIND_HISTOGRAM) {
            if (bounds == NULL) {
                bounds = default_bounds;
                nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
            }
            assert(nbounds <= MAX_BUCKETS);
            memcpy(f->bounds, bounds, nbounds * sizeof(double));
            f->nbounds = nbounds;
        }
        *m->tail = f;
        m->tail = &f->next;
    }
    assert(f->kind == kind && "metric registered twice with different kinds");
    for (s = f->series; s != NULL; s = s->next) {
        if (strcmp(s->labels, rendered) == 0)
            break;
    }
    if (s == NULL) {
        s = sb_calloc(1, sizeof(*s));
        s->labels = rendered;
        s->fam = f;
        rendered = NULL;
        atomic_store(&s->value, double_to_bits(0.0));
        s->next = f->series;
        f->series = s;
    }
    pthread_mutex_unlock(&m->lock);
    free(rendered);
    return s;
}

struct sb_metric *sb_metrics_counter(struct sb_metrics *m, const char *name, const char *help,
                                     const char *labels)
{
    return series_get(m, name, help, KIND_COUNTER, labels, NULL, 0);
}

struct sb_metric *sb_metrics_gauge(struct sb_metrics *m, const char *name, const char *help,
                                   const char *labels)
{
    return series_get(m, name, help, KIND_GAUGE, labels, NULL, 0);
}

struct sb_metric *sb_metrics_histogram(struct sb_metrics *m, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t n)
{
    return series_get(m, name, help, KIND_HISTOGRAM, labels, bounds, n);
}

void sb_metric_inc(struct sb_metric *s)
{
    atomic_add_double(&s->value, 1.0);
}

void sb_metric_add(struct sb_metric *s, double v)
{
    atomic_add_double(&s->value, v);
}

void sb_metric_set(struct sb_metric *s, double v)
{
    atomic_store(&s->value, double_to_bits(v));
}

double sb_metric_value(const struct sb_metric *s)
{
    return bits_to_double(atomic_load(&((struct sb_metric *)s)->value));
}

/* Buckets are stored non-cumulatively (one increment per observation) and
 * accumulated when rendered. The family's bounds never change after registration. */
void sb_metric_observe(struct sb_metric *s, double v)
{
    const struct family *f = s->fam;
    size_t i = 0;

    while (i < f->nbounds && v > f->bounds[i])
        i++;
    atomic_fetch_add(&s->buckets[i], 1);
    atomic_fetch_add(&s->count, 1);
    atomic_add_double(&s->value, v);
}

/* Writes a float the way Prometheus expects (+Inf, integers without exponent). */
static void fmt_value(char *out, size_t outsz, double v)
{
    if (isinf(v))
        sb_fmt(out, outsz, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        sb_fmt(out, outsz, "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        sb_fmt(out, outsz, "%.0f", v);
    else
        sb_fmt(out, outsz, "%.9g", v);
}

static void render_histogram(struct sb_strbuf *b, const struct family *f, const struct sb_metric *s)
{
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cum = 0;
    char le[48], val[48];

    for (size_t i = 0; i <= f->nbounds; i++) {
        cum += atomic_load(&((struct sb_metric *)s)->buckets[i]);
        if (i < f->nbounds)
            fmt_value(le, sizeof(le), f->bounds[i]);
        else
            sb_fmt(le, sizeof(le), "+Inf");
        sb_strbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", f->name, s->labels, sep, le,
                         (unsigned long long)cum);
    }
    fmt_value(val, sizeof(val), sb_metric_value(s));
    if (s->labels[0]) {
        sb_strbuf_printf(b, "%s_sum{%s} %s\n", f->name, s->labels, val);
        sb_strbuf_printf(b, "%s_count{%s} %llu\n", f->name, s->labels,
                         (unsigned long long)atomic_load(&((struct sb_metric *)s)->count));
    } else {
        sb_strbuf_printf(b, "%s_sum %s\n", f->name, val);
        sb_strbuf_printf(b, "%s_count %llu\n", f->name,
                         (unsigned long long)atomic_load(&((struct sb_metric *)s)->count));
    }
}

static void escape_help(struct sb_strbuf *b, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\')
            sb_strbuf_printf(b, "\\\\");
        else if (*help == '\n')
            sb_strbuf_printf(b, "\\n");
        else
            sb_strbuf_printf(b, "%c", *help);
    }
}

char *sb_metrics_render(struct sb_metrics *m, size_t *len)
{
    static const char *const kinds[] = {"counter", "gauge", "histogram"};
    struct sb_strbuf b = {NULL, 0, 0};
    char val[48];

    sb_strbuf_printf(&b, "%s", "");
    pthread_mutex_lock(&m->lock);
    for (const struct family *f = m->families; f != NULL; f = f->next) {
        sb_strbuf_printf(&b, "# HELP %s ", f->name);
        escape_help(&b, f->help);
        sb_strbuf_printf(&b, "\n# TYPE %s %s\n", f->name, kinds[f->kind]);
        for (const struct sb_metric *s = f->series; s != NULL; s = s->next) {
            if (f->kind == KIND_HISTOGRAM) {
                render_histogram(&b, f, s);
                continue;
            }
            fmt_value(val, sizeof(val), sb_metric_value(s));
            if (s->labels[0])
                sb_strbuf_printf(&b, "%s{%s} %s\n", f->name, s->labels, val);
            else
                sb_strbuf_printf(&b, "%s %s\n", f->name, val);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (len != NULL)
        *len = b.len;
    return b.p;
}
