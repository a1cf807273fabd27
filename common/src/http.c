/* HTTP server on libmicrohttpd: collects each request body under a hard cap, calls
 * the handler once the body is complete, and sends its response. Also the admin
 * server (/healthz, /readyz, /metrics) every service runs. */
#include "sb/http.h"

#include "sb/err.h"
#include "sb/log.h"
#include "sb/metrics.h"
#include "sb/util.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#if MHD_VERSION < 0x00097000
#error "libmicrohttpd 0.9.70 or newer is required"
#endif

struct sb_http_server {
    struct MHD_Daemon *daemon;
    sb_http_handler_fn handler;
    void *ctx;
    size_t max_body;
    int port;
};

/* Per-request state kept by MHD between calls of the access handler. */
struct request {
    char *body;
    size_t len, cap;
    int too_big;
    struct MHD_Connection *conn;
    pthread_mutex_t lock;
    int async_state; /* ASYNC_NONE, ASYNC_WAITING, ASYNC_READY */
    struct sb_http_resp async_resp;
};

enum { ASYNC_NONE, ASYNC_WAITING, ASYNC_READY };

static void resp_reset_body(struct sb_http_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

void sb_http_resp_text(struct sb_http_resp *resp, int status, const char *content_type,
                       const char *text, size_t len)
{
    resp_reset_body(resp);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = sb_malloc(len + 1);
    memcpy(resp->body, text, len);
    resp->body[len] = '\0';
    resp->body_len = len;
}

void sb_http_resp_json(struct sb_http_resp *resp, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);

    json_decref(body);
    resp_reset_body(resp);
    resp->status = status;
    resp->content_type = "application/json";
    if (s == NULL) {
        resp->status = 500;
        s = sb_strdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode response\"}}");
    }
    resp->body = s;
    resp->body_len = strlen(s);
}

void sb_http_resp_error(struct sb_http_resp *resp, int status, const char *code,
                        const char *message, const char *field)
{
    json_t *err = json_object();

    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(message));
    if (field != NULL)
        json_object_set_new(err, "field", json_string(field));
    sb_http_resp_json(resp, status, json_pack("{s:o}", "error", err));
}

void sb_http_resp_header(struct sb_http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders >= SB_HTTP_MAX_HEADERS)
        return;
    resp->header_names[resp->nheaders] = name;
    resp->header_values[resp->nheaders] = sb_strdup(value);
    resp->nheaders++;
}

const char *sb_http_req_header(const struct sb_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sb_http_req_query(const struct sb_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct sb_http_resp *r)
{
    struct MHD_Response *mr;
    enum MHD_Result ret;

    if (r->body == NULL)
        r->body = sb_strdup("");
    mr = MHD_create_response_from_buffer_with_free_callback(r->body_len, r->body, free);
    r->body = NULL; /* now owned by the response */
    if (mr == NULL)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : "application/json");
    for (int i = 0; i < r->nheaders; i++) {
        MHD_add_response_header(mr, r->header_names[i], r->header_values[i]);
        free(r->header_values[i]);
        r->header_values[i] = NULL;
    }
    r->nheaders = 0;
    ret = MHD_queue_response(conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void remote_ip(struct MHD_Connection *conn, char *out, size_t outsz)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    sb_strlcpy(out, "unknown", outsz);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
                  (socklen_t)outsz);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
                  (socklen_t)outsz);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct sb_http_server *s = cls;
    struct request *rq = *con_cls;
    struct sb_http_resp resp;
    struct sb_http_req req;
    char ip[INET6_ADDRSTRLEN];
    enum MHD_Result ret;

    (void)version;
    if (rq == NULL) {
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t n;
        rq = sb_calloc(1, sizeof(*rq));
        rq->conn = conn;
        pthread_mutex_init(&rq->lock, NULL);
        *con_cls = rq;
        if (cl != NULL && sb_parse_int64(cl, &n) == 0 && (n < 0 || (uint64_t)n > s->max_body))
            rq->too_big = 1;
        if (!rq->too_big)
            return MHD_YES;
        /* Refuse before reading a byte of an announced oversize body. */
        memset(&resp, 0, sizeof(resp));
        sb_http_resp_error(&resp, 413, "too_large", "request body exceeds the limit", "body");
        return send_resp(conn, &resp);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big || rq->len + n > s->max_body) {
            rq->too_big = 1; /* keep reading and dropping: answer once the body ends */
            return MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            rq->cap = (rq->len + n + 1) * 2;
            if (rq->cap > s->max_body + 1)
                rq->cap = s->max_body + 1;
            rq->body = sb_realloc(rq->body, rq->cap);
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        return MHD_YES;
    }
    if (rq->async_state != ASYNC_NONE) {
        int ready;
        pthread_mutex_lock(&rq->lock);
        ready = rq->async_state == ASYNC_READY;
        pthread_mutex_unlock(&rq->lock);
        if (!ready)
            return MHD_YES;
        rq->async_state = ASYNC_NONE;
        ret = send_resp(conn, &rq->async_resp);
        for (int i = 0; i < rq->async_resp.nheaders; i++)
            free(rq->async_resp.header_values[i]);
        free(rq->async_resp.body);
        memset(&rq->async_resp, 0, sizeof(rq->async_resp));
        return ret;
    }
    memset(&resp, 0, sizeof(resp));
    resp.status = 500;
    if (rq->too_big) {
        sb_http_resp_error(&resp, 413, "too_large", "request body exceeds the limit", "body");
        return send_resp(conn, &resp);
    }
    if (rq->body == NULL)
        rq->body = sb_calloc(1, 1);
    rq->body[rq->len] = '\0';
    remote_ip(conn, ip, sizeof(ip));
    req.method = method;
    req.path = url;
    req.body = rq->body;
    req.body_len = rq->len;
    req.remote_ip = ip;
    req.conn = conn;
    req.rq = rq;
    if (s->handler(s->ctx, &req, &resp) == SB_HTTP_SUSPENDED) {
        free(resp.body);
        return MHD_YES;
    }
    ret = send_resp(conn, &resp);
    for (int i = 0; i < resp.nheaders; i++)
        free(resp.header_values[i]);
    free(resp.body);
    return ret;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *rq = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (rq != NULL) {
        free(rq->body);
        free(rq->async_resp.body);
        for (int i = 0; i < rq->async_resp.nheaders; i++)
            free(rq->async_resp.header_values[i]);
        pthread_mutex_destroy(&rq->lock);
        free(rq);
        *con_cls = NULL;
    }
}

struct sb_http_server *sb_http_server_new(const struct sb_http_opts *opts,
                                          sb_http_handler_fn handler, void *ctx, char *errstr,
                                          size_t errstr_size)
{
    struct sb_http_server *s = sb_calloc(1, sizeof(*s));
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opts->port);
    if (inet_pton(AF_INET, opts->bind ? opts->bind : "127.0.0.1", &addr.sin_addr) != 1) {
        sb_fmt(errstr, errstr_size, "http: bind address \"%s\" is not an IPv4 address", opts->bind);
        goto fail;
    }
    s->handler = handler;
    s->ctx = ctx;
    s->max_body = opts->max_body ? opts->max_body : 1024 * 1024;
    /* One worker: the internal polling thread itself (no pool option at all, which MHD
     * would warn about on stderr); more: a pool of them. */
    struct MHD_OptionItem pool[] = {
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)opts->threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (opts->threads <= 1)
        pool[0].option = MHD_OPTION_END;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, access_cb, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_ARRAY, pool, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(opts->conn_timeout_s > 0 ? opts->conn_timeout_s : 30),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(opts->max_conns ? opts->max_conns : 1024),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
        completed_cb, s, MHD_OPTION_END);
    if (s->daemon == NULL) {
        sb_fmt(errstr, errstr_size, "http: cannot listen on %s:%d (in use or not permitted)",
               opts->bind ? opts->bind : "127.0.0.1", opts->port);
        goto fail;
    }
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : opts->port;
    return s;
fail:
    free(s);
    return NULL;
}

struct sb_http_async *sb_http_req_suspend(const struct sb_http_req *req)
{
    struct request *rq = req->rq;

    rq->async_state = ASYNC_WAITING;
    MHD_suspend_connection(rq->conn);
    return (struct sb_http_async *)rq;
}

void sb_http_async_complete(struct sb_http_async *a, struct sb_http_resp *resp)
{
    struct request *rq = (struct request *)a;

    pthread_mutex_lock(&rq->lock);
    rq->async_resp = *resp;
    memset(resp, 0, sizeof(*resp));
    rq->async_state = ASYNC_READY;
    pthread_mutex_unlock(&rq->lock);
    MHD_resume_connection(rq->conn);
}

void sb_http_server_quiesce(struct sb_http_server *s)
{
    if (s != NULL && s->daemon != NULL)
        MHD_quiesce_daemon(s->daemon);
}

void sb_http_server_destroy(struct sb_http_server *s)
{
    if (s == NULL)
        return;
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    free(s);
}

int sb_http_server_port(const struct sb_http_server *s)
{
    return s->port;
}

struct sb_admin {
    struct sb_http_server *http;
    struct sb_metrics *metrics;
    sb_ready_fn ready;
    void *ctx;
};

static int admin_handler(void *ctx, const struct sb_http_req *req, struct sb_http_resp *resp)
{
    struct sb_admin *a = ctx;
    char why[512] = "";

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        sb_http_resp_error(resp, 405, "method_not_allowed", "only GET is served here", NULL);
        return 0;
    }
    if (strcmp(req->path, "/healthz") == 0) {
        sb_http_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(req->path, "/readyz") == 0) {
        if (a->ready == NULL || a->ready(a->ctx, why, sizeof(why)))
            sb_http_resp_json(resp, 200, json_pack("{s:s}", "status", "ready"));
        else {
            sb_http_resp_json(resp, 503,
                              json_pack("{s:s,s:s}", "status", "not ready", "reason", why));
            sb_http_resp_header(resp, "Retry-After", "1");
        }
    } else if (strcmp(req->path, "/metrics") == 0) {
        size_t len;
        char *text = sb_metrics_render(a->metrics, &len);
        sb_http_resp_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        free(text);
    } else {
        sb_http_resp_error(resp, 404, "not_found", "no such endpoint", "path");
    }
    return 0;
}

struct sb_admin *sb_admin_new(const char *bind, int port, struct sb_metrics *metrics,
                              sb_ready_fn ready, void *ctx, char *errstr, size_t errstr_size)
{
    struct sb_admin *a = sb_calloc(1, sizeof(*a));
    struct sb_http_opts opts = {.bind = bind,
                                .port = port,
                                .max_body = 4096,
                                .threads = 1,
                                .conn_timeout_s = 10,
                                .max_conns = 64};

    a->metrics = metrics;
    a->ready = ready;
    a->ctx = ctx;
    a->http = sb_http_server_new(&opts, admin_handler, a, errstr, errstr_size);
    if (a->http == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void sb_admin_destroy(struct sb_admin *a)
{
    if (a == NULL)
        return;
    sb_http_server_destroy(a->http);
    free(a);
}

int sb_admin_port(const struct sb_admin *a)
{
    return sb_http_server_port(a->http);
}
