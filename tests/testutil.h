/* Helpers shared by the C tests: environment lookups and a minimal HTTP client for
 * loopback servers (tests only; products use real clients). */
#ifndef SB_TESTUTIL_H
#define SB_TESTUTIL_H

#include <stddef.h>

/* Value of an environment variable or def. */
const char *tu_env(const char *name, const char *def);

/* Sends one HTTP/1.1 request to 127.0.0.1:port and reads the whole response.
 * extra_headers: "Name: value\r\n…" or NULL. Returns the status code (-1 on error)
 * and the body as a new string in *body (may be NULL). */
int tu_http(int port, const char *method, const char *path, const char *extra_headers,
            const char *body, size_t body_len, char **resp_body);

#endif
