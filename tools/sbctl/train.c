/* sbctl train triage: trains the triage model (services/triage/model.h) from labelled
 * tickets and writes the model file the service and the evaluation load. Each --data
 * file takes the --label-column, --text-column and --map given after it. Training
 * files only: test files are for measurement. */
#include "sbctl.h"

#include "dataset.h"
#include "model.h"

#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 8

struct train_set {
    const char *path, *label, *text, *map;
};

static void train_usage(FILE *f)
{
    fprintf(f, "Usage: sbctl train triage --data CSV --label-column NAME [--text-column text]\n"
               "                          [--map JSON] [--data CSV …] [--out FILE]\n"
               "                          [--epochs 20] [--min-count 2] [--seed 1]\n"
               "\n"
               "Trains the triage domain model from labelled tickets and writes it to FILE\n"
               "(default deploy/config/triage-model.tsv). Each --data takes the --label-column,\n"
               "--text-column and --map that follow it; the map sends each label to a domain.\n"
               "The same files and seed always give the same model.\n");
}

static int arg_value(int argc, char **argv, int *i, const char **out)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "sbctl train: %s needs a value\n", argv[*i]);
        return -1;
    }
    *out = argv[++*i];
    return 0;
}

int sbctl_train(struct sbctl *ctl, int argc, char **argv)
{
    struct train_set sets[MAX_SETS];
    struct sb_train_opts o = {20, 2, 1e-5, 0.5, 0.01, 1};
    const char *out = NULL, *v;
    char def_out[4096], err[512];
    int nsets = 0;

    if (sbctl_wants_help(argc, argv)) {
        train_usage(stdout);
        return SBCTL_EXIT_OK;
    }
    if (argc < 1 || strcmp(argv[0], "triage") != 0) {
        train_usage(stderr);
        return SBCTL_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (arg_value(argc, argv, &i, &v) != 0)
            return SBCTL_EXIT_USAGE;
        if (strcmp(a, "--data") == 0) {
            if (nsets == MAX_SETS) {
                fprintf(stderr, "sbctl train: at most %d --data files\n", MAX_SETS);
                return SBCTL_EXIT_USAGE;
            }
            sets[nsets++] = (struct train_set){v, NULL, "text", NULL};
        } else if (strcmp(a, "--out") == 0) {
            out = v;
        } else if (strcmp(a, "--epochs") == 0) {
            o.epochs = atoi(v);
        } else if (strcmp(a, "--min-count") == 0) {
            o.min_count = atoi(v);
        } else if (strcmp(a, "--seed") == 0) {
            o.seed = strtoull(v, NULL, 10);
        } else if (nsets > 0 && strcmp(a, "--label-column") == 0) {
            sets[nsets - 1].label = v;
        } else if (nsets > 0 && strcmp(a, "--text-column") == 0) {
            sets[nsets - 1].text = v;
        } else if (nsets > 0 && strcmp(a, "--map") == 0) {
            sets[nsets - 1].map = v;
        } else {
            fprintf(stderr, "sbctl train: unexpected \"%s\" (see sbctl train --help)\n", a);
            return SBCTL_EXIT_USAGE;
        }
    }
    if (nsets == 0 || o.epochs < 1 || o.epochs > 1000 || o.min_count < 1) {
        fprintf(stderr, "sbctl train: give at least one --data file, --epochs 1-1000 and "
                        "--min-count >= 1\n");
        return SBCTL_EXIT_USAGE;
    }
    if (out == NULL) {
        sbctl_default_path(ctl, "deploy/config/triage-model.tsv", def_out, sizeof(def_out));
        out = def_out;
    }

    struct sb_trainset *t = sb_trainset_new();
    for (int s = 0; s < nsets; s++) {
        struct sb_dataset ds;
        if (sets[s].label == NULL) {
            fprintf(stderr, "sbctl train: --data %s has no --label-column\n", sets[s].path);
            sb_trainset_destroy(t);
            return SBCTL_EXIT_USAGE;
        }
        if (sb_dataset_load(sets[s].path, sets[s].text, sets[s].label, sets[s].map, &ds, err,
                            sizeof(err)) != 0) {
            fprintf(stderr, "sbctl train: %s\n", err);
            sb_trainset_destroy(t);
            return SBCTL_EXIT_FAIL;
        }
        for (size_t i = 0; i < ds.n; i++)
            sb_trainset_add(t, ds.texts[i], ds.labels[i]);
        printf("%s: %zu tickets\n", sets[s].path, ds.n);
        sb_dataset_free(&ds);
    }

    size_t kept = 0;
    int64_t t0 = sb_mono_ms();
    int rc = sb_model_train(t, &o, out, &kept, err, sizeof(err));
    size_t n = sb_trainset_size(t);
    sb_trainset_destroy(t);
    if (rc != 0) {
        fprintf(stderr, "sbctl train: %s\n", err);
        return SBCTL_EXIT_FAIL;
    }
    printf("trained on %zu tickets in %lld ms: %zu features written to %s\n", n,
           (long long)(sb_mono_ms() - t0), kept, out);
    return SBCTL_EXIT_OK;
}
