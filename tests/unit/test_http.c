/* Tests of the HTTP server wrapper and the admin endpoints on a loopback port:
 * routing to the handler, body cap (413), error shape, /healthz /readyz /metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/http.h"
#include "sb/metrics.h"
#include "sb/util.h"
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static void *complete_later(void *arg)
{
    struct sb_http_async *a = arg;
    struct sb_http_resp resp;
    memset(&resp, 0, sizeof(resp));
    sb_sleep_ms(20);
    sb_http_resp_json(&resp, 202, json_pack("{s:s}", "state", "accepted later"));
    sb_http_resp_header(&resp, "X-Async", "1");
    sb_http_async_complete(a, &resp);
    return NULL;
}

static int echo(void *ctx, const struct sb_http_req *req, struct sb_http_resp *resp)
{
    const char *q = sb_http_req_query(req, "q");
    const char *h = sb_http_req_header(req, "X-Test");
    (void)ctx;
    if (strcmp(req->path, "/async") == 0) {
        pthread_t t;
        struct sb_http_async *a = sb_http_req_suspend(req);
        pthread_create(&t, NULL, complete_later, a);
        pthread_detach(t);
        return SB_HTTP_SUSPENDED;
    }
    if (strcmp(req->path, "/echo") != 0) {
        sb_http_resp_error(resp, 404, "not_found", "no such endpoint", "path");
        return 0;
    }
    sb_http_resp_json(resp, 200,
                      json_pack("{s:s,s:s%,s:s?,s:s?}", "method", req->method, "body", req->body,
                                req->body_len, "q", q, "h", h));
    sb_http_resp_header(resp, "X-Served-By", "test");
    return 0;
}

static void test_server_routes_and_limits(void **state)
{
    struct sb_http_opts opts = {"127.0.0.1", 0, 1024, 2, 5, 64};
    char err[256];
    struct sb_http_server *s = sb_http_server_new(&opts, echo, NULL, err, sizeof(err));
    char *body = NULL;
    char big[4096];
    json_t *j;
    int port;
    (void)state;
    assert_non_null(s);
    port = sb_http_server_port(s);
    assert_true(port > 0);

    assert_int_equal(tu_http(port, "POST", "/echo?q=1", "X-Test: yes\r\n", "hello", 5, &body), 200);
    j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "hello");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "1");
    assert_string_equal(json_string_value(json_object_get(j, "h")), "yes");
    json_decref(j);
    free(body);

    memset(big, 'x', sizeof(big));
    assert_int_equal(tu_http(port, "POST", "/echo", NULL, big, sizeof(big), &body), 413);
    j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "too_large");
    json_decref(j);
    free(body);

    for (int i = 0; i < 20; i++) {
        assert_int_equal(tu_http(port, "POST", "/async", NULL, "x", 1, &body), 202);
        assert_non_null(strstr(body, "accepted later"));
        free(body);
    }

    assert_int_equal(tu_http(port, "GET", "/nope", NULL, NULL, 0, &body), 404);
    assert_non_null(strstr(body, "\"field\":\"path\""));
    free(body);
    sb_http_server_destroy(s);
}

static int ready_flag;

static int ready(void *ctx, char *why, size_t why_size)
{
    (void)ctx;
    if (!ready_flag)
        snprintf(why, why_size, "kafka: not connected");
    return ready_flag;
}

static void test_admin(void **state)
{
    struct sb_metrics *m = sb_metrics_new();
    char err[256];
    struct sb_admin *a;
    char *body = NULL;
    int port;
    (void)state;
    sb_metric_inc(sb_metrics_counter(m, "sb_test_total", "t", "k=v"));
    a = sb_admin_new("127.0.0.1", 0, m, ready, NULL, err, sizeof(err));
    assert_non_null(a);
    port = sb_admin_port(a);
    assert_int_equal(tu_http(port, "GET", "/healthz", NULL, NULL, 0, &body), 200);
    free(body);
    ready_flag = 0;
    assert_int_equal(tu_http(port, "GET", "/readyz", NULL, NULL, 0, &body), 503);
    assert_non_null(strstr(body, "kafka: not connected"));
    free(body);
    ready_flag = 1;
    assert_int_equal(tu_http(port, "GET", "/readyz", NULL, NULL, 0, &body), 200);
    free(body);
    assert_int_equal(tu_http(port, "GET", "/metrics", NULL, NULL, 0, &body), 200);
    assert_non_null(strstr(body, "sb_test_total{k=\"v\"} 1\n"));
    free(body);
    assert_int_equal(tu_http(port, "POST", "/metrics", NULL, "x", 1, &body), 405);
    free(body);
    sb_admin_destroy(a);
    sb_metrics_destroy(m);
}

static void test_port_in_use(void **state)
{
    struct sb_http_opts opts = {"127.0.0.1", 0, 1024, 1, 5, 8};
    char err[256] = "";
    struct sb_http_server *a = sb_http_server_new(&opts, echo, NULL, err, sizeof(err));
    struct sb_http_server *b;
    (void)state;
    assert_non_null(a);
    opts.port = sb_http_server_port(a);
    b = sb_http_server_new(&opts, echo, NULL, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "cannot listen"));
    sb_http_server_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_routes_and_limits),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
