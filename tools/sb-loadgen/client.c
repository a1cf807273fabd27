/* HTTP POSTs over libcurl's multi interface: many transfers in flight on reused
 * keep-alive connections, completions delivered from lg_http_poll(). Also the small
 * helpers of the run: latency samples, signing, the seeded random source. */
#include "loadgen.h"

#include "sb/util.h"

#include <curl/curl.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lg_req {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    struct sb_strbuf resp;
    lg_http_done done;
    void *arg;
    int64_t t0_us;
};

struct lg_http {
    CURLM *multi;
    int inflight, max;
};

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
    struct lg_req *r = userdata;
    if (r->resp.len < 64 * 1024)
        sb_strbuf_append(&r->resp, p, size * n);
    return size * n;
}

struct lg_http *lg_http_new(int max_inflight)
{
    struct lg_http *h = sb_calloc(1, sizeof(*h));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h->multi = curl_multi_init();
    h->max = max_inflight > 0 ? max_inflight : 1;
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max);
    return h;
}

static void finish(struct lg_http *h, struct lg_req *r, CURLcode rc)
{
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(h->multi, r->easy);
    h->inflight--;
    if (r->done != NULL)
        r->done(r->arg, status, r->resp.p ? r->resp.p : "", r->resp.len,
                (double)(sb_mono_us() - r->t0_us) / 1e6);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->resp.p);
    free(r->body);
    free(r);
}

void lg_http_destroy(struct lg_http *h)
{
    if (h == NULL)
        return;
    /* Let what is in flight finish (bounded), then drop the rest. */
    for (int i = 0; i < 100 && h->inflight > 0; i++)
        lg_http_poll(h, 50);
    curl_multi_cleanup(h->multi);
    curl_global_cleanup();
    free(h);
}

int lg_http_post(struct lg_http *h, const char *url, const char *body, size_t len,
                 const char *const *headers, lg_http_done done, void *arg)
{
    struct lg_req *r;

    if (h->inflight >= h->max)
        return -1;
    r = sb_calloc(1, sizeof(*r));
    r->easy = curl_easy_init();
    r->body = sb_strndup(body, len);
    r->done = done;
    r->arg = arg;
    r->t0_us = sb_mono_us();
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, "Expect:");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        r->headers = curl_slist_append(r->headers, headers[i]);
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_multi_add_handle(h->multi, r->easy);
    h->inflight++;
    return 0;
}

void lg_http_poll(struct lg_http *h, int timeout_ms)
{
    int running = 0, left = 0;
    CURLMsg *m;

    curl_multi_perform(h->multi, &running);
    if (timeout_ms > 0 && running > 0) {
        curl_multi_poll(h->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(h->multi, &running);
    } else if (timeout_ms > 0) {
        sb_sleep_ms(timeout_ms);
    }
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct lg_req *r = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        finish(h, r, m->data.result);
    }
}

int lg_http_inflight(const struct lg_http *h)
{
    return h->inflight;
}

void lg_lat_add(struct lg_lat *l, double s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->v = sb_realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lg_lat_pct(struct lg_lat *l, double p)
{
    if (l->n == 0)
        return NAN;
    qsort(l->v, l->n, sizeof(*l->v), cmp_double);
    size_t i = (size_t)ceil(p / 100.0 * (double)l->n);
    return l->v[i == 0 ? 0 : i - 1];
}

void lg_lat_free(struct lg_lat *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

double lg_now(void)
{
    static int64_t t0;
    if (t0 == 0)
        t0 = sb_mono_us();
    return (double)(sb_mono_us() - t0) / 1e6;
}

void lg_sign(const char *secret, const char *body, size_t len, char *out, size_t outsz)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    char ts[32], hex[2 * EVP_MAX_MD_SIZE + 1];
    struct sb_strbuf msg = {0};

    sb_fmt(ts, sizeof(ts), "%lld", (long long)time(NULL));
    sb_strbuf_printf(&msg, "%s.", ts);
    sb_strbuf_append(&msg, body, len);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg.p, msg.len, mac,
         &maclen);
    sb_hex(mac, maclen, hex);
    sb_fmt(out, outsz, "X-SB-Signature: t=%s,v1=%s", ts, hex);
    free(msg.p);
}

double lg_uniform(unsigned *state)
{
    /* xorshift32: fast, seeded, the same sequence for the same seed. */
    unsigned x = *state ? *state : 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return (double)(x >> 8) / (double)(1u << 24);
}

double lg_exp(unsigned *state, double mean)
{
    return -mean * log(1.0 - lg_uniform(state));
}
