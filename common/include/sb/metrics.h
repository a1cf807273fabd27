/* Prometheus metrics: counters, gauges and histograms with up to four fixed labels,
 * rendered in the text exposition format (version 0.0.4) for GET /metrics.
 * Updates are lock-free atomics; registration and rendering take a mutex. */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct sb_metrics;
struct sb_metric; /* one time series (name + label values) */

struct sb_metrics *sb_metrics_new(void);
void sb_metrics_destroy(struct sb_metrics *m);

/* Registers (or finds) a series. labels is "k1=v1,k2=v2" or NULL. Returns a handle
 * that stays valid until sb_metrics_destroy. help is used for the family's HELP line.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; invalid names are asserted. */
struct sb_metric *sb_metrics_counter(struct sb_metrics *m, const char *name, const char *help,
                                     const char *labels);
struct sb_metric *sb_metrics_gauge(struct sb_metrics *m, const char *name, const char *help,
                                   const char *labels);
/* bounds: n ascending upper bounds (the +Inf bucket is implicit). NULL: default
 * latency buckets in seconds from 0.5 ms to 10 s. */
struct sb_metric *sb_metrics_histogram(struct sb_metrics *m, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t n);

void sb_metric_inc(struct sb_metric *s);
void sb_metric_add(struct sb_metric *s, double v);
void sb_metric_set(struct sb_metric *s, double v);
void sb_metric_observe(struct sb_metric *s, double v);
double sb_metric_value(const struct sb_metric *s);

/* Renders every family as Prometheus text. Returns a new string (free()). */
char *sb_metrics_render(struct sb_metrics *m, size_t *len);

#endif
