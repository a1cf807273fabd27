/* The learned half of domain classification: a multinomial logistic regression over
 * word unigrams and bigrams (English) and character unigrams and bigrams (CJK),
 * trained by `sbctl train triage` from labelled tickets and stored as a text file
 * (deploy/config/triage-model.tsv). The rules win on explicit matches; the model
 * decides the rest. Pure logic plus file reading/writing. */
#ifndef SB_TRIAGE_MODEL_H
#define SB_TRIAGE_MODEL_H

#include "rules.h"

#include <stddef.h>
#include <stdint.h>

struct sb_model;

/* Features of a text: 64-bit hashes of its normalized tokens (see model.c). Writes at
 * most cap hashes and returns how many. */
size_t sb_model_features(const char *text, size_t len, uint64_t *out, size_t cap);

/* Loads a model file. Returns NULL with errstr (file:line: problem). */
struct sb_model *sb_model_load(const char *path, char *errstr, size_t errstr_size);
void sb_model_destroy(struct sb_model *m);
size_t sb_model_size(const struct sb_model *m); /* number of features */

/* Class probabilities of text (SB_DOMAIN_COUNT values summing to 1). */
void sb_model_predict(const struct sb_model *m, const char *text, size_t len,
                      double prob[SB_DOMAIN_COUNT]);

/* Training set: texts with a domain label each. */
struct sb_trainset;
struct sb_trainset *sb_trainset_new(void);
void sb_trainset_add(struct sb_trainset *t, const char *text, int domain);
size_t sb_trainset_size(const struct sb_trainset *t);
void sb_trainset_destroy(struct sb_trainset *t);

struct sb_train_opts {
    int epochs;    /* passes over the data (default 20) */
    int min_count; /* features seen fewer times are dropped (default 2) */
    double l2;     /* L2 penalty per update (default 1e-5) */
    double rate;   /* AdaGrad base rate (default 0.5) */
    double prune;  /* features whose weights all stay below this are dropped (0.01) */
    uint64_t seed; /* shuffling seed: the same data and seed give the same model */
};

/* Trains and writes the model to path. Returns 0 or a negative code with errstr;
 * reports the number of features kept in *nfeatures. */
int sb_model_train(const struct sb_trainset *t, const struct sb_train_opts *opts, const char *path,
                   size_t *nfeatures, char *errstr, size_t errstr_size);

#endif
