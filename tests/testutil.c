/* Helpers shared by the C tests (see testutil.h). */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *tu_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tu_http(int port, const char *method, const char *path, const char *extra_headers,
            const char *body, size_t body_len, char **resp_body)
{
    struct sockaddr_in addr;
    char head[2048];
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd, status = -1, n;

    if (resp_body != NULL)
        *resp_body = NULL;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        goto out;
    n = snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: "
                 "%zu\r\n\r\n",
                 method, path, extra_headers ? extra_headers : "", body_len);
    if (n < 0 || (size_t)n >= sizeof(head) || write_all(fd, head, (size_t)n) != 0)
        goto out;
    if (body_len > 0 && write_all(fd, body, body_len) != 0) {
        /* The server may answer (e.g. 413) and close before reading it all. */
    }
    for (;;) {
        ssize_t r;
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
        }
        r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    if (buf == NULL)
        goto out;
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    if (resp_body != NULL) {
        char *sep = strstr(buf, "\r\n\r\n");
        *resp_body = strdup(sep ? sep + 4 : "");
    }
out:
    free(buf);
    close(fd);
    return status;
}
