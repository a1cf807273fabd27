/* Scores the triage classifier — the same library the service runs, with the same
 * rule book and model files — on labelled tickets: per-domain precision, recall and
 * F1, the confusion matrix, and the majority-class baseline beside them. The last line
 * is one JSON object {"macro_f1":…,"accuracy":…,"n":…}. Macro-F1 averages the domains
 * present in the reference labels; a prediction of any other domain counts against
 * the recall of the true one. With --floor, exits 1 when macro-F1 is below it. */
#include "classify.h"
#include "dataset.h"
#include "extract.h"

#include "sb/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: triage_eval --data CSV --label-column NAME [--map JSON]\n"
               "                   [--text-column text] [--rules FILE|none] [--model FILE|none]\n"
               "                   [--floor MACRO_F1] [--errors N]\n"
               "Scores domain classification on labelled tickets (see docs/triage.md).\n");
}

struct scores {
    double macro_f1, accuracy;
    double p[SB_DOMAIN_COUNT], r[SB_DOMAIN_COUNT], f1[SB_DOMAIN_COUNT];
    int present[SB_DOMAIN_COUNT];
};

static void compute(const long cm[SB_DOMAIN_COUNT][SB_DOMAIN_COUNT], size_t n, struct scores *s)
{
    long correct = 0;
    int classes = 0;

    memset(s, 0, sizeof(*s));
    for (int t = 0; t < SB_DOMAIN_COUNT; t++) {
        long tp = cm[t][t], gold = 0, pred = 0;
        for (int k = 0; k < SB_DOMAIN_COUNT; k++) {
            gold += cm[t][k];
            pred += cm[k][t];
        }
        correct += tp;
        s->p[t] = pred ? (double)tp / (double)pred : 0;
        s->r[t] = gold ? (double)tp / (double)gold : 0;
        s->f1[t] = s->p[t] + s->r[t] > 0 ? 2 * s->p[t] * s->r[t] / (s->p[t] + s->r[t]) : 0;
        s->present[t] = gold > 0;
        if (gold > 0) {
            s->macro_f1 += s->f1[t];
            classes++;
        }
    }
    s->macro_f1 = classes ? s->macro_f1 / classes : 0;
    s->accuracy = n ? (double)correct / (double)n : 0;
}

int main(int argc, char **argv)
{
    const char *data = NULL, *label_col = NULL, *map = NULL, *text_col = "text";
    const char *rules_path = "deploy/config/triage-rules.json";
    const char *model_path = "deploy/config/triage-model.tsv";
    double floor = -1;
    int show_errors = 0, c;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},  {"label-column", required_argument, 0, 'l'},
        {"map", required_argument, 0, 'm'},   {"text-column", required_argument, 0, 't'},
        {"rules", required_argument, 0, 'r'}, {"model", required_argument, 0, 'M'},
        {"floor", required_argument, 0, 'f'}, {"errors", required_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'l':
            label_col = optarg;
            break;
        case 'm':
            map = optarg;
            break;
        case 't':
            text_col = optarg;
            break;
        case 'r':
            rules_path = optarg;
            break;
        case 'M':
            model_path = optarg;
            break;
        case 'f':
            floor = atof(optarg);
            break;
        case 'e':
            show_errors = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (data == NULL || label_col == NULL) {
        usage(stderr);
        return 2;
    }

    char err[512];
    struct sb_dataset ds;
    struct sb_ruleset *rs;
    struct sb_model *model = NULL;
    json_t *empty = json_pack("{s:i, s:[]}", "version", 1, "rules");

    if (sb_dataset_load(data, text_col, label_col, map, &ds, err, sizeof(err)) != 0) {
        fprintf(stderr, "triage_eval: %s\n", err);
        return 2;
    }
    rs = strcmp(rules_path, "none") == 0 ? sb_ruleset_build(empty, NULL, err, sizeof(err))
                                         : sb_ruleset_load(rules_path, NULL, err, sizeof(err));
    if (rs == NULL) {
        fprintf(stderr, "triage_eval: %s\n", err);
        return 2;
    }
    if (strcmp(model_path, "none") != 0 &&
        (model = sb_model_load(model_path, err, sizeof(err))) == NULL) {
        fprintf(stderr, "triage_eval: %s\n", err);
        return 2;
    }

    struct sb_rulescan *sc = sb_rulescan_new(rs);
    long cm[SB_DOMAIN_COUNT][SB_DOMAIN_COUNT] = {{0}},
         base[SB_DOMAIN_COUNT][SB_DOMAIN_COUNT] = {{0}};
    long gold[SB_DOMAIN_COUNT] = {0}, by_rule = 0;
    int majority = 0;
    int64_t t0 = sb_mono_us();

    for (size_t i = 0; i < ds.n; i++) {
        struct sb_extract ex;
        struct sb_classification cl;
        size_t len = strlen(ds.texts[i]);
        sb_extract_text(ds.texts[i], len, 0, 0, &ex);
        if (sb_classify(rs, sc, model, ds.texts[i], len, &ex, &cl) != 0) {
            fprintf(stderr, "triage_eval: rule scan failed\n");
            return 1;
        }
        cm[ds.labels[i]][cl.domain]++;
        gold[ds.labels[i]]++;
        by_rule += cl.by_rule;
        if (cl.domain != ds.labels[i] && show_errors > 0) {
            show_errors--;
            printf("miss: gold=%s got=%s%s: %s\n", sb_domain_name(ds.labels[i]),
                   sb_domain_name(cl.domain), cl.by_rule ? " (rule)" : "", ds.texts[i]);
        }
    }
    double us = (double)(sb_mono_us() - t0) / (ds.n ? (double)ds.n : 1);
    for (int d = 1; d < SB_DOMAIN_COUNT; d++)
        if (gold[d] > gold[majority])
            majority = d;
    for (int d = 0; d < SB_DOMAIN_COUNT; d++)
        base[d][majority] = gold[d];

    struct scores s, b;
    compute((const long(*)[SB_DOMAIN_COUNT])cm, ds.n, &s);
    compute((const long(*)[SB_DOMAIN_COUNT])base, ds.n, &b);

    printf("data: %s (%zu tickets), rules: %s (%zu rules), model: %s (%zu features)\n", data, ds.n,
           rules_path, sb_ruleset_count(rs), model ? model_path : "none",
           model ? sb_model_size(model) : 0);
    printf("\n%-20s %9s %9s %9s %7s   %s\n", "domain", "precision", "recall", "f1", "n",
           "(majority baseline f1)");
    for (int d = 0; d < SB_DOMAIN_COUNT; d++) {
        if (!s.present[d] && s.p[d] == 0)
            continue;
        printf("%-20s %9.3f %9.3f %9.3f %7ld   %.3f%s\n", sb_domain_name(d), s.p[d], s.r[d],
               s.f1[d], gold[d], b.f1[d], s.present[d] ? "" : "  (not in the reference)");
    }
    printf("\nconfusion matrix (rows: reference, columns: predicted)\n%-20s", "");
    for (int d = 0; d < SB_DOMAIN_COUNT; d++)
        printf(" %8.8s", sb_domain_name(d));
    printf("\n");
    for (int t = 0; t < SB_DOMAIN_COUNT; t++) {
        if (!s.present[t])
            continue;
        printf("%-20s", sb_domain_name(t));
        for (int d = 0; d < SB_DOMAIN_COUNT; d++)
            printf(" %8ld", cm[t][d]);
        printf("\n");
    }
    printf("\n%-28s macro-F1 %.3f  accuracy %.3f\n", "classifier:", s.macro_f1, s.accuracy);
    printf("%-28s macro-F1 %.3f  accuracy %.3f\n", "majority-class baseline:", b.macro_f1,
           b.accuracy);
    printf("decided by an explicit rule: %.1f %%; %.1f us per ticket (rules + model + "
           "extraction)\n",
           ds.n ? 100.0 * (double)by_rule / (double)ds.n : 0, us);
    printf("{\"macro_f1\":%.4f,\"accuracy\":%.4f,\"n\":%zu,\"baseline_macro_f1\":%.4f,"
           "\"baseline_accuracy\":%.4f,\"us_per_ticket\":%.2f}\n",
           s.macro_f1, s.accuracy, ds.n, b.macro_f1, b.accuracy, us);

    int rc = floor >= 0 && s.macro_f1 < floor ? 1 : 0;
    if (rc)
        fprintf(stderr, "triage_eval: macro-F1 %.4f is below the floor %.4f\n", s.macro_f1, floor);
    sb_rulescan_destroy(sc);
    sb_ruleset_destroy(rs);
    sb_model_destroy(model);
    sb_dataset_free(&ds);
    json_decref(empty);
    return rc;
}
