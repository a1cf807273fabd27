/* What the load is made of: customer texts (the real queries of ../shared/data's train
 * files, plus Chinese templates with order numbers, amounts and error codes), customers
 * (CRM customers of PostgreSQL for the known share, fresh phone numbers for the rest),
 * the channel mix and the arrival process: Poisson at the target rate, optionally shaped
 * by a real day's hourly arrivals from the bank call-center log, a promotion peak and an
 * incident burst (many near-identical contacts at once). */
#include "loadgen.h"

#include "sb/csv.h"
#include "sb/event.h"
#include "sb/pg.h"
#include "sb/util.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TEXTS 20000
#define MAX_CUSTOMERS 20000
#define DATA_MAX (16 * 1024 * 1024)

const char *const lg_channel_names[LG_CHANNELS] = {"chat", "email", "phone", "social", "web"};

/* Chinese contacts: %1$s an order number, %2$d an amount, %3$d an error code. */
static const char *const zh_templates[] = {
    "订单 %1$s 付款一直失败，提示错误 E%3$d，请尽快处理",
    "我的快递三天没有更新了，订单号 %1$s，什么时候能到？",
    "订单 %1$s 重复扣款 %2$d 元，要求退款",
    "收到的商品有破损，订单 %1$s，想换货",
    "账号登录不了，提示验证码错误 %3$d，担心被盗号",
    "申请退货一周了没人处理，订单 %1$s，太失望了，要投诉",
    "请问这款产品支持七天无理由退货吗？",
    "优惠券用不了，结算时提示 E%3$d，订单金额 %2$d 元",
    "客服态度很差，问题一直没解决，我要投诉你们",
    "App 打开就闪退，安卓 13，版本 5.2.%3$d",
    "发票什么时候开？订单 %1$s 金额 %2$d 元",
    "想咨询一下企业采购，大概 %2$d 台，有优惠吗",
    "物流显示已签收但我没收到，订单 %1$s",
    "银行卡被扣了 %2$d 元但订单显示未支付",
    "建议你们增加夜间客服，晚上找不到人",
};
/* The incident burst: the same fault reported by many customers at once. */
static const char *const incident_text = "支付页面报错 E5001，所有订单都无法付款，订单 %1$s 也一样";

struct lg_traffic {
    const struct lg_opts *o;
    unsigned rng;
    char **texts;
    size_t ntexts;
    char **customers;
    size_t ncustomers;
    double profile[LG_MAX_PROFILE]; /* hourly rate factors, mean 1 */
    double max_factor;
    int incident_left;
    int in_incident; /* the next contact belongs to the burst */
    char run[16];
};

static void add_text(struct lg_traffic *t, const char *s)
{
    if (t->ntexts < MAX_TEXTS && s[0] != '\0')
        t->texts[t->ntexts++] = sb_strdup(s);
}

/* The text column (first) of a train.csv; a missing file is skipped. */
static void load_texts(struct lg_traffic *t, const char *path)
{
    char err[256];
    size_t len = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    struct sb_csv *c;
    struct sb_csv_row row = {0};
    int first = 1;

    if (f == NULL)
        return;
    buf = sb_malloc(DATA_MAX);
    len = fread(buf, 1, DATA_MAX, f);
    fclose(f);
    c = sb_csv_new(buf, len);
    while (t->ntexts < MAX_TEXTS && sb_csv_next(c, &row, err, sizeof(err)) == 1) {
        if (!first && row.nfields > 0)
            add_text(t, row.fields[0]);
        first = 0;
        sb_csv_row_clear(&row);
    }
    sb_csv_row_clear(&row);
    sb_csv_destroy(c);
    free(buf);
}

/* CRM customer numbers, when PostgreSQL answers. */
static void load_customers(struct lg_traffic *t)
{
    char err[256];
    int e = 0;
    struct sb_pg *pg = t->o->pg_dsn ? sb_pg_new(t->o->pg_dsn, err, sizeof(err)) : NULL;
    PGresult *res;

    if (pg == NULL)
        return;
    res = sb_pg_query(pg,
                      "SELECT customer_no FROM customers WHERE NOT provisional "
                      "ORDER BY customer_no LIMIT 20000",
                      0, NULL, &e, err, sizeof(err));
    if (res != NULL) {
        int n = PQntuples(res);
        t->customers = sb_calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; i < n && i < MAX_CUSTOMERS; i++)
            t->customers[t->ncustomers++] = sb_strdup(PQgetvalue(res, i, 0));
        PQclear(res);
    }
    sb_pg_destroy(pg);
}

/* Hourly arrival counts of one day (YYMMDD) of the call-center log, as factors. */
static int load_day(struct lg_traffic *t, const char *day, char *err, size_t errsz)
{
    char path[1024], err2[256];
    size_t len;
    char *buf;
    FILE *f;
    struct sb_csv *c;
    struct sb_csv_row row = {0};
    double counts[LG_MAX_PROFILE] = {0}, total = 0;

    if (strlen(day) != 6) {
        sb_fmt(err, errsz, "--day %s: YYMMDD expected", day);
        return -1;
    }
    sb_fmt(path, sizeof(path), "%s/anonymous_bank_callcenter/anonymous_bank_19%.2s_%.2s.tsv",
           t->o->data_dir, day, day + 2);
    f = fopen(path, "rb");
    if (f == NULL) {
        sb_fmt(err, errsz, "%s: cannot open (the call-center log gives the day's shape)", path);
        return -1;
    }
    buf = sb_malloc(DATA_MAX);
    len = fread(buf, 1, DATA_MAX, f);
    fclose(f);
    /* Tab-separated: turn tabs into commas (no field holds a comma). */
    for (size_t i = 0; i < len; i++)
        buf[i] = buf[i] == '\t' ? ',' : buf[i];
    c = sb_csv_new(buf, len);
    while (sb_csv_next(c, &row, err2, sizeof(err2)) == 1) {
        if (row.nfields > 6 && strcmp(row.fields[5], day) == 0) {
            int h = atoi(row.fields[6]);
            if (h >= 0 && h < LG_MAX_PROFILE) {
                counts[h]++;
                total++;
            }
        }
        sb_csv_row_clear(&row);
    }
    sb_csv_row_clear(&row);
    sb_csv_destroy(c);
    free(buf);
    if (total == 0) {
        sb_fmt(err, errsz, "%s: no calls on %s", path, day);
        return -1;
    }
    for (int h = 0; h < LG_MAX_PROFILE; h++)
        t->profile[h] = counts[h] * LG_MAX_PROFILE / total;
    return 0;
}

struct lg_traffic *lg_traffic_new(const struct lg_opts *o, char *err, size_t errsz)
{
    struct lg_traffic *t = sb_calloc(1, sizeof(*t));
    char path[1024];

    t->o = o;
    t->rng = o->seed * 2654435761u + 1;
    t->texts = sb_calloc(MAX_TEXTS, sizeof(char *));
    sb_fmt(path, sizeof(path), "%s/banking77/train.csv", o->data_dir);
    load_texts(t, path);
    sb_fmt(path, sizeof(path), "%s/bitext_customer_support/train.csv", o->data_dir);
    load_texts(t, path);
    for (int h = 0; h < LG_MAX_PROFILE; h++)
        t->profile[h] = 1.0;
    if (o->day != NULL && load_day(t, o->day, err, errsz) != 0) {
        lg_traffic_destroy(t);
        return NULL;
    }
    t->max_factor = 0;
    for (int h = 0; h < LG_MAX_PROFILE; h++)
        t->max_factor = t->profile[h] > t->max_factor ? t->profile[h] : t->max_factor;
    if (o->peak_factor > 1)
        t->max_factor *= o->peak_factor;
    load_customers(t);
    t->incident_left = o->incident_size;
    sb_fmt(t->run, sizeof(t->run), "%08x",
           (unsigned)(sb_now_ms() / 1000) ^ o->seed ^ ((unsigned)getpid() << 16));
    return t;
}

void lg_traffic_destroy(struct lg_traffic *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ntexts; i++)
        free(t->texts[i]);
    for (size_t i = 0; i < t->ncustomers; i++)
        free(t->customers[i]);
    free(t->texts);
    free(t->customers);
    free(t);
}

size_t lg_traffic_texts(const struct lg_traffic *t)
{
    return t->ntexts;
}

const char *lg_traffic_run(const struct lg_traffic *t)
{
    return t->run;
}

size_t lg_traffic_customers(const struct lg_traffic *t)
{
    return t->ncustomers;
}

/* The rate factor at run time `at`: the day's hour (the day is compressed into the
 * run's duration) times the peak factor inside the peak window. */
static double factor(const struct lg_traffic *t, double at)
{
    const struct lg_opts *o = t->o;
    int h = (int)(at / o->duration_s * LG_MAX_PROFILE);
    double f = t->profile[h < 0 ? 0 : h >= LG_MAX_PROFILE ? LG_MAX_PROFILE - 1 : h];
    if (o->peak_factor > 1 && at >= o->peak_at_s && at < o->peak_at_s + o->peak_len_s)
        f *= o->peak_factor;
    return f;
}

double lg_traffic_next_arrival(struct lg_traffic *t, double at)
{
    const struct lg_opts *o = t->o;
    double max_rate = o->rate * t->max_factor;

    t->in_incident = 0;
    if (t->incident_left > 0 && at >= o->incident_at_s) {
        t->incident_left--;
        t->in_incident = 1;
        return at + 0.01;
    }
    /* Thinning: candidates at the highest rate, each kept with rate(t)/max. */
    for (;;) {
        at += lg_exp(&t->rng, 1.0 / max_rate);
        if (t->incident_left > 0 && at >= o->incident_at_s)
            return lg_traffic_next_arrival(t, o->incident_at_s);
        if (lg_uniform(&t->rng) * max_rate <= o->rate * factor(t, at))
            return at;
    }
}

static int pick_channel(struct lg_traffic *t)
{
    double sum = 0, x;
    for (int i = 0; i < LG_CHANNELS; i++)
        sum += t->o->mix[i];
    x = lg_uniform(&t->rng) * sum;
    for (int i = 0; i < LG_CHANNELS; i++) {
        if (x < t->o->mix[i])
            return i;
        x -= t->o->mix[i];
    }
    return 0;
}

void lg_traffic_contact(struct lg_traffic *t, long n, double at, struct sb_strbuf *out, int *ch)
{
    char order[32], text[1024], ext[64], sent[SB_TIME_STRLEN + 1];
    json_t *body, *cust = json_object();
    int zh = t->in_incident || t->ntexts == 0 || lg_uniform(&t->rng) < t->o->zh_share;
    char *s;

    (void)at;
    *ch = pick_channel(t);
    sb_fmt(order, sizeof(order), "2026%08u", (unsigned)(lg_uniform(&t->rng) * 1e8));
    if (zh) {
        const char *tpl = t->in_incident
                              ? incident_text
                              : zh_templates[(size_t)(lg_uniform(&t->rng) *
                                                      (sizeof(zh_templates) / sizeof(char *)))];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(text, sizeof(text), tpl, order, 50 + (int)(lg_uniform(&t->rng) * 5000),
                 1000 + (int)(lg_uniform(&t->rng) * 9000));
#pragma GCC diagnostic pop
    } else {
        sb_strlcpy(text, t->texts[(size_t)(lg_uniform(&t->rng) * (double)t->ntexts)], sizeof(text));
    }
    if (t->ncustomers > 0 && lg_uniform(&t->rng) < t->o->known_share) {
        json_object_set_new(
            cust, "customer_no",
            json_string(t->customers[(size_t)(lg_uniform(&t->rng) * (double)t->ncustomers)]));
    } else {
        char phone[16];
        sb_fmt(phone, sizeof(phone), "139%08u", (unsigned)(lg_uniform(&t->rng) * 1e8));
        json_object_set_new(cust, "phone", json_string(phone));
    }
    sb_fmt(ext, sizeof(ext), "lg-%s-%ld", t->run, n);
    sb_time_format_ms(sb_now_ms(), sent);
    body =
        json_pack("{s:s,s:s,s:o,s:s,s:s,s:s}", "channel", lg_channel_names[*ch], "external_id", ext,
                  "customer", cust, "body", text, "sent_at", sent, "language", zh ? "zh" : "en");
    if (strcmp(lg_channel_names[*ch], "email") == 0)
        json_object_set_new(body, "subject", json_string(zh ? "客户来信" : "Customer request"));
    s = json_dumps(body, JSON_COMPACT);
    sb_strbuf_reset(out);
    sb_strbuf_append(out, s, strlen(s));
    free(s);
    json_decref(body);
}
