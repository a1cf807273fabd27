/* Fixture helpers shared by the channel parser tests: read a file of
 * tests/data/<FIXTURE_DIR>, parse a JSON expectation, compare JSON with both documents
 * shown on failure. Define FIXTURE_DIR before including. Tests only. */
#ifndef SB_TEST_INGEST_FIXTURES_H
#define SB_TEST_INGEST_FIXTURES_H

#include "contact.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The service's default contact limits (services/ingest/main.c). */
static const struct sb_contact_limits lim = {998, 262144, 100, 16384};

/* Reads tests/data/<FIXTURE_DIR>/<rel> into a new buffer (NUL-terminated, *len bytes). */
static char *load(const char *rel, size_t *len)
{
    const char *root = getenv("SB_REPO_ROOT");
    char path[1024];
    char *buf;
    long size;
    FILE *f;

    snprintf(path, sizeof(path), "%s/tests/data/" FIXTURE_DIR "/%s", root ? root : ".", rel);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (is SB_REPO_ROOT set?)", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    *len = fread(buf, 1, (size_t)size, f);
    assert_int_equal(*len, (size_t)size);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static json_t *load_json(const char *rel)
{
    size_t len;
    char *text = load(rel, &len);
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);

    if (j == NULL)
        fail_msg("%s: %s at line %d", rel, jerr.text, jerr.line);
    free(text);
    return j;
}

/* Fails with both documents printed unless got equals want. */
static void assert_json_equal(const char *what, json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
        fail_msg("%s:\ngot:  %s\nwant: %s", what, g ? g : "NULL", w ? w : "NULL");
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

#endif
