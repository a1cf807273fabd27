/* Per-message cost of triage's CPU work — rules (Hyperscan), model, 5W1H extraction and
 * masking — on texts of about 1 KB, with the committed rule book plus generated rules
 * up to --rules in total, beside the cost of a plain copy of the same text (memcpy +
 * length scan) as a floor. Prints a table and one JSON line. */
#include "classify.h"

#include "sb/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *texts_path = NULL, *rules_path = "deploy/config/triage-rules.json";
    const char *model_path = "deploy/config/triage-model.tsv";
    int total_rules = 2000, rounds = 20, c;
    static const struct option opts[] = {
        {"texts", required_argument, 0, 't'},     {"rules", required_argument, 0, 'r'},
        {"rule-file", required_argument, 0, 'f'}, {"model", required_argument, 0, 'm'},
        {"rounds", required_argument, 0, 'n'},    {0, 0, 0, 0},
    };
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't')
            texts_path = optarg;
        else if (c == 'r')
            total_rules = atoi(optarg);
        else if (c == 'f')
            rules_path = optarg;
        else if (c == 'm')
            model_path = optarg;
        else if (c == 'n')
            rounds = atoi(optarg);
        else
            return 2;
    }
    if (texts_path == NULL) {
        fprintf(stderr, "usage: sb-triage-bench --texts FILE (one text per line) [--rules 2000]\n");
        return 2;
    }

    /* Texts, one per line. */
    FILE *f = fopen(texts_path, "r");
    char **texts = NULL, line[1 << 16];
    size_t n = 0, cap = 0, bytes = 0;
    if (f == NULL) {
        perror(texts_path);
        return 2;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            texts = sb_realloc(texts, cap * sizeof(*texts));
        }
        texts[n++] = sb_strdup(line);
        bytes += strlen(line);
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "no texts\n");
        return 2;
    }

    /* The rule book plus generated rules (distinct phrases in the same vein). */
    char err[512];
    json_error_t jerr;
    json_t *book = json_load_file(rules_path, 0, &jerr), *extra = json_array();
    if (book == NULL) {
        fprintf(stderr, "%s: %s\n", rules_path, jerr.text);
        return 2;
    }
    static const char *const words[] = {
        "refund", "parcel",   "screen", "account", "invoice", "driver", "coupon", "battery",
        "login",  "warranty", "订单",   "物流",    "屏幕",    "账户",   "发票",   "优惠"};
    static const char *const doms[] = {"product",          "order_payment", "logistics",
                                       "account_security", "complaint",     "inquiry"};
    int have = (int)json_array_size(json_object_get(book, "rules"));
    for (int i = 0; have + i < total_rules; i++) {
        char id[32], term[64], re[96];
        sb_fmt(id, sizeof(id), "gen.%d", i);
        sb_fmt(term, sizeof(term), "%s %s %d", words[i % 16], words[(i / 16) % 16], i);
        sb_fmt(re, sizeof(re), "%s\\s+(?:issue|problem)\\s+%d", words[(i * 7) % 16], i);
        json_array_append_new(extra,
                              json_pack("{s:s, s:[s], s:[s], s:s, s:f}", "id", id, "terms", term,
                                        "regex", re, "domain", doms[i % 6], "weight", 0.3));
    }
    struct sb_ruleset *rs = sb_ruleset_build(book, extra, err, sizeof(err));
    if (rs == NULL) {
        fprintf(stderr, "rules: %s\n", err);
        return 2;
    }
    struct sb_model *model = sb_model_load(model_path, err, sizeof(err));
    if (model == NULL) {
        fprintf(stderr, "model: %s\n", err);
        return 2;
    }
    struct sb_rulescan *sc = sb_rulescan_new(rs);
    size_t total = n * (size_t)rounds;
    double *lat = sb_malloc(total * sizeof(double));
    char *masked = sb_malloc(sizeof(line) * 2);
    volatile size_t sink = 0;
    int64_t t0;

    /* Floor: copy and scan the text. */
    t0 = sb_mono_us();
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(texts[i]);
            memcpy(masked, texts[i], len + 1);
            sink += strlen(masked);
        }
    double copy_us = (double)(sb_mono_us() - t0) / (double)total;

    size_t k = 0;
    int64_t start = sb_mono_us();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            struct sb_extract ex;
            struct sb_classification cl;
            size_t len = strlen(texts[i]);
            int64_t a = sb_mono_us();
            sb_extract_text(texts[i], len, 1716184800000LL, 480, &ex);
            sb_classify(rs, sc, model, texts[i], len, &ex, &cl);
            sb_mask_text(texts[i], len, masked, sizeof(line) * 2);
            lat[k++] = (double)(sb_mono_us() - a);
            sink += (size_t)cl.domain;
        }
    }
    double mean = (double)(sb_mono_us() - start) / (double)total;
    qsort(lat, total, sizeof(double), cmp_d);
    double p50 = lat[total / 2], p99 = lat[(size_t)((double)total * 0.99)];

    printf("texts: %zu (mean %.0f bytes), rules: %zu (%zu patterns), model features: %zu\n", n,
           (double)bytes / (double)n, sb_ruleset_count(rs), sb_ruleset_patterns(rs),
           sb_model_size(model));
    printf("classify + extract + mask: mean %.2f us, p50 %.0f us, p99 %.0f us per message "
           "(%.0f messages/s on one core)\n",
           mean, p50, p99, 1e6 / mean);
    printf("copy floor: %.3f us per message\n", copy_us);
    printf("{\"messages\":%zu,\"mean_bytes\":%.0f,\"rules\":%zu,\"mean_us\":%.3f,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"copy_us\":%.3f,\"per_core_per_second\":%.0f}\n",
           total, (double)bytes / (double)n, sb_ruleset_count(rs), mean, p50, p99, copy_us,
           1e6 / mean);
    (void)sink;
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(lat);
    free(masked);
    sb_rulescan_destroy(sc);
    sb_ruleset_destroy(rs);
    sb_model_destroy(model);
    json_decref(book);
    json_decref(extra);
    return 0;
}
