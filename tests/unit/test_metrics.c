/* Unit tests of the Prometheus text rendering (common/src/metrics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void expect_line(const char *text, const char *line)
{
    const char *p = text;
    size_t n = strlen(line);
    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
        p++;
    }
    fail_msg("line \"%s\" not found in:\n%s", line, text);
}

static void test_counter_gauge(void **state)
{
    struct sb_metrics *m = sb_metrics_new();
    struct sb_metric *a =
        sb_metrics_counter(m, "sb_accepted_total", "Accepted contacts", "channel=chat");
    struct sb_metric *b =
        sb_metrics_counter(m, "sb_accepted_total", "Accepted contacts", "channel=email");
    struct sb_metric *g = sb_metrics_gauge(m, "sb_inflight", "In flight\nnow", NULL);
    char *text;
    (void)state;
    assert_ptr_equal(a, sb_metrics_counter(m, "sb_accepted_total", "x", "channel=chat"));
    sb_metric_inc(a);
    sb_metric_add(a, 2);
    sb_metric_inc(b);
    sb_metric_set(g, 2.5);
    text = sb_metrics_render(m, NULL);
    expect_line(text, "# HELP sb_accepted_total Accepted contacts");
    expect_line(text, "# TYPE sb_accepted_total counter");
    expect_line(text, "sb_accepted_total{channel=\"chat\"} 3");
    expect_line(text, "sb_accepted_total{channel=\"email\"} 1");
    expect_line(text, "# HELP sb_inflight In flight\\nnow");
    expect_line(text, "# TYPE sb_inflight gauge");
    expect_line(text, "sb_inflight 2.5");
    /* The HELP/TYPE of a family come once, before its series. */
    assert_null(strstr(strstr(text, "# TYPE sb_accepted_total") + 1, "# TYPE sb_accepted_total"));
    free(text);
    sb_metrics_destroy(m);
}

static void test_histogram(void **state)
{
    const double bounds[] = {0.01, 0.1, 1};
    struct sb_metrics *m = sb_metrics_new();
    struct sb_metric *h =
        sb_metrics_histogram(m, "sb_latency_seconds", "Latency", "stage=ingest", bounds, 3);
    char *text;
    (void)state;
    sb_metric_observe(h, 0.005);
    sb_metric_observe(h, 0.01); /* le is inclusive */
    sb_metric_observe(h, 0.5);
    sb_metric_observe(h, 7);
    text = sb_metrics_render(m, NULL);
    expect_line(text, "# TYPE sb_latency_seconds histogram");
    expect_line(text, "sb_latency_seconds_bucket{stage=\"ingest\",le=\"0.01\"} 2");
    expect_line(text, "sb_latency_seconds_bucket{stage=\"ingest\",le=\"0.1\"} 2");
    expect_line(text, "sb_latency_seconds_bucket{stage=\"ingest\",le=\"1\"} 3");
    expect_line(text, "sb_latency_seconds_bucket{stage=\"ingest\",le=\"+Inf\"} 4");
    expect_line(text, "sb_latency_seconds_sum{stage=\"ingest\"} 7.515");
    expect_line(text, "sb_latency_seconds_count{stage=\"ingest\"} 4");
    free(text);
    sb_metrics_destroy(m);
}

static void test_label_escaping(void **state)
{
    struct sb_metrics *m = sb_metrics_new();
    char *text;
    (void)state;
    sb_metric_inc(sb_metrics_counter(m, "sb_rejected_total", "r", "reason=bad \"q\"\\x"));
    text = sb_metrics_render(m, NULL);
    expect_line(text, "sb_rejected_total{reason=\"bad \\\"q\\\"\\\\x\"} 1");
    free(text);
    sb_metrics_destroy(m);
}

static struct sb_metric *shared;

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++)
        sb_metric_inc(shared);
    return NULL;
}

static void test_concurrent_increments(void **state)
{
    struct sb_metrics *m = sb_metrics_new();
    pthread_t t[4];
    (void)state;
    shared = sb_metrics_counter(m, "sb_c_total", "c", NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(sb_metric_value(shared) == 400000.0);
    sb_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_concurrent_increments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
