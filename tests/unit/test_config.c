/* Unit tests of the table-driven configuration (common/src/config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sb/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sb_config_def defs[] = {
    {"kafka.brokers", "SBT_BROKERS", SB_CFG_STRING, "127.0.0.1:19092", 0, -1, 1, "brokers"},
    {"http.port", "SBT_PORT", SB_CFG_INT, "8080", 1, 65535, 0, "port"},
    {"http.enabled", "SBT_ENABLED", SB_CFG_BOOL, "true", 0, -1, 0, "on/off"},
    {"score.weight", "SBT_WEIGHT", SB_CFG_DOUBLE, "0.5", 0, 1, 0, "weight"},
    {"rdkafka", "SBT_RDKAFKA", SB_CFG_MAP, NULL, 0, -1, 0, "pass-through"},
    {"secret", "SBT_SECRET", SB_CFG_STRING, NULL, 0, -1, 1, "required, no default"},
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static struct sb_config *fresh(void)
{
    char err[256];
    struct sb_config *cfg = sb_config_new(defs, NDEFS, err, sizeof(err));
    assert_non_null(cfg);
    return cfg;
}

static void test_defaults(void **state)
{
    struct sb_config *cfg = fresh();
    (void)state;
    assert_string_equal(sb_config_str(cfg, "kafka.brokers"), "127.0.0.1:19092");
    assert_int_equal(sb_config_int(cfg, "http.port"), 8080);
    assert_true(sb_config_bool(cfg, "http.enabled"));
    assert_true(sb_config_double(cfg, "score.weight") == 0.5);
    assert_null(sb_config_str(cfg, "secret"));
    sb_config_destroy(cfg);
}

static void test_nested_and_flat_json(void **state)
{
    struct sb_config *cfg = fresh();
    char err[256] = "";
    const char *json = "{\"kafka\":{\"brokers\":\"k1:9092,k2:9092\"},\"http.port\":9000,"
                       "\"rdkafka\":{\"linger.ms\":10,\"acks\":\"all\"},\"secret\":\"s\"}";
    const char *const *keys, *const *values;
    (void)state;
    assert_int_equal(sb_config_load_json(cfg, json, strlen(json), err, sizeof(err)), 0);
    assert_string_equal(sb_config_str(cfg, "kafka.brokers"), "k1:9092,k2:9092");
    assert_int_equal(sb_config_int(cfg, "http.port"), 9000);
    assert_int_equal(sb_config_map(cfg, "rdkafka", &keys, &values), 2);
    assert_string_equal(keys[0], "linger.ms");
    assert_string_equal(values[0], "10");
    assert_int_equal(sb_config_validate(cfg, err, sizeof(err)), 0);
    sb_config_destroy(cfg);
}

static void expect_error(const char *json, const char *needle)
{
    struct sb_config *cfg = fresh();
    char err[256] = "";
    assert_int_not_equal(sb_config_load_json(cfg, json, strlen(json), err, sizeof(err)), 0);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    sb_config_destroy(cfg);
}

static void test_rejections_name_the_key(void **state)
{
    (void)state;
    expect_error("{\"kafka\":{\"brokerz\":\"x\"}}", "kafka.brokerz");
    expect_error("{\"http\":{\"port\":\"80\"}}", "http.port");
    expect_error("{\"http\":{\"port\":70000}}", "http.port");
    expect_error("{\"http\":{\"enabled\":1}}", "http.enabled");
    expect_error("{\"score.weight\":2.5}", "score.weight");
    expect_error("{\"rdkafka\":{\"a\":[1]}}", "rdkafka.a");
    expect_error("{\"secret\":\"a\",\"secret\":\"b\"}", "line 1");
    expect_error("[1,2]", "object");
    expect_error("{\"http\":", "invalid JSON");
}

static void test_env_overrides_file(void **state)
{
    struct sb_config *cfg = fresh();
    char err[256] = "";
    const char *const *keys, *const *values;
    (void)state;
    setenv("SBT_PORT", "8181", 1);
    setenv("SBT_RDKAFKA", "a=1,b=x=y", 1);
    setenv("SBT_SECRET", "from-env", 1);
    assert_int_equal(sb_config_load_json(cfg, "{\"http.port\":9000}", 18, err, sizeof(err)), 0);
    assert_int_equal(sb_config_load_env(cfg, err, sizeof(err)), 0);
    assert_int_equal(sb_config_int(cfg, "http.port"), 8181);
    assert_string_equal(sb_config_str(cfg, "secret"), "from-env");
    assert_int_equal(sb_config_map(cfg, "rdkafka", &keys, &values), 2);
    assert_string_equal(keys[1], "b");
    assert_string_equal(values[1], "x=y");
    setenv("SBT_PORT", "eighty", 1);
    assert_int_not_equal(sb_config_load_env(cfg, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "SBT_PORT"));
    unsetenv("SBT_PORT");
    unsetenv("SBT_RDKAFKA");
    unsetenv("SBT_SECRET");
    sb_config_destroy(cfg);
}

static void test_required(void **state)
{
    struct sb_config *cfg = fresh();
    char err[256] = "";
    (void)state;
    assert_int_not_equal(sb_config_validate(cfg, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "\"secret\""));
    sb_config_destroy(cfg);
}

static void test_file_errors(void **state)
{
    struct sb_config *cfg = fresh();
    char err[256] = "";
    (void)state;
    assert_int_not_equal(sb_config_load_file(cfg, "/nonexistent/sb.json", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent/sb.json"));
    sb_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_nested_and_flat_json),
        cmocka_unit_test(test_rejections_name_the_key),
        cmocka_unit_test(test_env_overrides_file),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
