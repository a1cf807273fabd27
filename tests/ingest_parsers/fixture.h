/* Reads a fixture of tests/data/channels into memory (tests only). */
#ifndef SB_TEST_FIXTURE_H
#define SB_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

/* Returns a malloc'd buffer with the file's bytes (NUL-terminated), or aborts. */
static char *fixture(const char *rel, size_t *len)
{
    const char *root = getenv("SB_REPO_ROOT");
    char path[1024];
    FILE *f;
    char *buf = malloc(4 << 20);
    snprintf(path, sizeof(path), "%s/tests/data/channels/%s", root ? root : ".", rel);
    f = fopen(path, "rb");
    if (f == NULL || buf == NULL) {
        fprintf(stderr, "cannot read fixture %s\n", path);
        abort();
    }
    *len = fread(buf, 1, (4 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

#endif
