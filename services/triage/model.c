/* Multinomial logistic regression over hashed text features (see model.h).
 *
 * Features: ASCII words are lowercased and lightly stemmed (plural, -ing, -ed), digit
 * runs become one "number" token, and both words and adjacent word pairs count; CJK
 * characters count alone and in adjacent pairs. A feature is the 64-bit FNV-1a hash of
 * its text, so prediction never builds strings. Presence, not frequency, is used.
 *
 * File format (UTF-8 text, one record per line, tab-separated):
 *   switchboard-triage-model	1
 *   classes	<six domain names>
 *   bias	<six weights>
 *   <16 hex digits of the feature hash>	<six weights>
 */
#include "model.h"

#include "sb/err.h"
#include "sb/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NC SB_DOMAIN_COUNT
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
#define MAX_WORD 32

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t pair_hash(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
    h ^= h >> 31;
    return h * 0xBF58476D1CE4E5B9ULL;
}

static void stem(char *w, size_t *n)
{
    size_t len = *n;
    if (len > 4 && memcmp(w + len - 3, "ies", 3) == 0) {
        w[len - 3] = 'y';
        len -= 2;
    } else if (len > 5 && memcmp(w + len - 3, "ing", 3) == 0) {
        len -= 3;
    } else if (len > 4 && memcmp(w + len - 2, "ed", 2) == 0) {
        len -= 2;
    } else if (len > 3 && w[len - 1] == 's' && w[len - 2] != 's' && w[len - 2] != 'u') {
        len -= 1;
    }
    *n = len;
}

struct featurizer {
    uint64_t *out;
    size_t n, cap;
    uint64_t prev_word; /* 0: none */
    uint64_t prev_cjk;
};

static void emit(struct featurizer *f, uint64_t h)
{
    if (f->n < f->cap)
        f->out[f->n++] = h;
}

static void word_done(struct featurizer *f, char *w, size_t n, int digits)
{
    uint64_t h;
    if (n == 0)
        return;
    if (digits == (int)n)
        h = fnv(FNV_OFFSET, "w#", 2);
    else {
        stem(w, &n);
        h = fnv(fnv(FNV_OFFSET, "w", 1), w, n);
    }
    emit(f, h);
    if (f->prev_word != 0)
        emit(f, pair_hash(f->prev_word, h));
    f->prev_word = h;
}

size_t sb_model_features(const char *text, size_t len, uint64_t *out, size_t cap)
{
    struct featurizer f = {out, 0, cap, 0, 0};
    char w[MAX_WORD];
    size_t wn = 0;
    int digits = 0;

    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            if (wn < MAX_WORD) {
                w[wn++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
                digits += c >= '0' && c <= '9';
            }
            i++;
            continue;
        }
        if (c == '\'' && wn > 0) { /* "don't" → "dont" */
            i++;
            continue;
        }
        word_done(&f, w, wn, digits);
        wn = 0;
        digits = 0;
        if (c >= 0xE3 && c <= 0xE9 && i + 2 < len) { /* CJK (3-byte UTF-8) */
            uint64_t h = fnv(fnv(FNV_OFFSET, "c", 1), text + i, 3);
            emit(&f, h);
            if (f.prev_cjk != 0)
                emit(&f, pair_hash(f.prev_cjk, h));
            f.prev_cjk = h;
            f.prev_word = 0;
            i += 3;
            continue;
        }
        f.prev_cjk = 0;
        if (c == '.' || c == '!' || c == '?' || c == ';' || c == '\n')
            f.prev_word = 0;
        i += c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    }
    word_done(&f, w, wn, digits);
    return f.n;
}

/* Open-addressing map from feature hash to row. */
struct fmap {
    uint64_t *keys; /* 0: empty */
    uint32_t *vals;
    size_t cap, n;
};

static void fmap_init(struct fmap *m, size_t expected)
{
    m->cap = 64;
    while (m->cap < expected * 2)
        m->cap <<= 1;
    m->keys = sb_calloc(m->cap, sizeof(*m->keys));
    m->vals = sb_calloc(m->cap, sizeof(*m->vals));
    m->n = 0;
}

static void fmap_free(struct fmap *m)
{
    free(m->keys);
    free(m->vals);
}

static uint64_t key_of(uint64_t h)
{
    return h == 0 ? 1 : h;
}

/* Returns the slot of h (found or the empty slot where it belongs). */
static size_t fmap_slot(const struct fmap *m, uint64_t h)
{
    size_t i = (size_t)(h ^ (h >> 29)) & (m->cap - 1);
    while (m->keys[i] != 0 && m->keys[i] != h)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static long fmap_get(const struct fmap *m, uint64_t h)
{
    size_t i = fmap_slot(m, key_of(h));
    return m->keys[i] == 0 ? -1 : (long)m->vals[i];
}

static void fmap_grow(struct fmap *m);

/* Returns the value slot for h, inserting val when absent. */
static uint32_t *fmap_put(struct fmap *m, uint64_t h, uint32_t val)
{
    size_t i;
    h = key_of(h);
    if ((m->n + 1) * 2 > m->cap)
        fmap_grow(m);
    i = fmap_slot(m, h);
    if (m->keys[i] == 0) {
        m->keys[i] = h;
        m->vals[i] = val;
        m->n++;
    }
    return &m->vals[i];
}

static void fmap_grow(struct fmap *m)
{
    struct fmap old = *m;
    m->cap *= 2;
    m->keys = sb_calloc(m->cap, sizeof(*m->keys));
    m->vals = sb_calloc(m->cap, sizeof(*m->vals));
    for (size_t i = 0; i < old.cap; i++) {
        if (old.keys[i] != 0) {
            size_t slot = fmap_slot(m, old.keys[i]);
            m->keys[slot] = old.keys[i];
            m->vals[slot] = old.vals[i];
        }
    }
    fmap_free(&old);
}

#define FILTER_BITS (1u << 17)
#define FILTER_BIT(k) ((uint32_t)((k) >> 45) & (FILTER_BITS - 1))

/* A feature and its weights in one 32-byte slot: a lookup touches one cache line. */
struct mrow {
    uint64_t key; /* 0: empty */
    float w[NC];
};

struct sb_model {
    struct fmap map; /* while loading */
    float *w;        /* rows × NC, while loading */
    size_t rows;
    double bias[NC];
    struct mrow *table; /* open addressing, power-of-two size */
    size_t mask;
    /* One bit per hash value (16 KB, stays in L1): most features of a text are not in
     * the model, and this rejects them without touching the table. */
    uint64_t filter[FILTER_BITS / 64];
};

void sb_model_destroy(struct sb_model *m)
{
    if (m == NULL)
        return;
    fmap_free(&m->map);
    free(m->w);
    free(m->table);
    free(m);
}

size_t sb_model_size(const struct sb_model *m)
{
    return m->rows;
}

static int parse_weights(char *s, double *w)
{
    for (int c = 0; c < NC; c++) {
        char *end;
        errno = 0;
        w[c] = strtod(s, &end);
        if (end == s || errno != 0 || !isfinite(w[c]))
            return -1;
        s = end;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '\0' ? 0 : -1;
}

struct sb_model *sb_model_load(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    struct sb_model *m;
    char line[512];
    int lineno = 0;
    size_t cap = 1024;

    if (f == NULL) {
        sb_fmt(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    m = sb_calloc(1, sizeof(*m));
    fmap_init(&m->map, cap);
    m->w = sb_malloc(cap * NC * sizeof(float));
    while (fgets(line, sizeof(line), f) != NULL) {
        double w[NC];
        char *tab = strchr(line, '\t');
        lineno++;
        if (tab == NULL) {
            sb_fmt(err, errsz, "%s:%d: a tab-separated record is expected", path, lineno);
            goto fail;
        }
        *tab++ = '\0';
        if (lineno == 1) {
            if (strcmp(line, "switchboard-triage-model") != 0 || atoi(tab) != 1) {
                sb_fmt(err, errsz, "%s:1: not a version 1 switchboard triage model", path);
                goto fail;
            }
            continue;
        }
        if (strcmp(line, "classes") == 0) {
            char *save = NULL, *tok = strtok_r(tab, "\t\r\n", &save);
            for (int c = 0; c < NC; c++, tok = strtok_r(NULL, "\t\r\n", &save)) {
                if (tok == NULL || sb_domain_parse(tok) != c) {
                    sb_fmt(err, errsz, "%s:%d: classes must be the six domains in order", path,
                           lineno);
                    goto fail;
                }
            }
            continue;
        }
        if (parse_weights(tab, w) != 0) {
            sb_fmt(err, errsz, "%s:%d: six numbers expected", path, lineno);
            goto fail;
        }
        if (strcmp(line, "bias") == 0) {
            memcpy(m->bias, w, sizeof(w));
            continue;
        }
        char *end;
        uint64_t h = strtoull(line, &end, 16);
        if (strlen(line) != 16 || *end != '\0') {
            sb_fmt(err, errsz, "%s:%d: a 16-digit hex feature is expected", path, lineno);
            goto fail;
        }
        if (m->rows == cap) {
            cap *= 2;
            m->w = sb_realloc(m->w, cap * NC * sizeof(float));
        }
        if (*fmap_put(&m->map, h, (uint32_t)m->rows) != m->rows) {
            sb_fmt(err, errsz, "%s:%d: feature listed twice", path, lineno);
            goto fail;
        }
        for (int c = 0; c < NC; c++)
            m->w[m->rows * NC + c] = (float)w[c];
        m->rows++;
    }
    fclose(f);
    size_t slots = 64;
    while (slots < m->rows * 2)
        slots <<= 1;
    m->table = sb_calloc(slots, sizeof(*m->table));
    m->mask = slots - 1;
    for (size_t i = 0; i < m->map.cap; i++) {
        uint64_t k = m->map.keys[i];
        size_t slot;
        if (k == 0)
            continue;
        slot = (size_t)(k ^ (k >> 29)) & m->mask;
        while (m->table[slot].key != 0)
            slot = (slot + 1) & m->mask;
        m->table[slot].key = k;
        m->filter[FILTER_BIT(k) / 64] |= 1ULL << (FILTER_BIT(k) % 64);
        memcpy(m->table[slot].w, &m->w[(size_t)m->map.vals[i] * NC], sizeof(m->table[slot].w));
    }
    fmap_free(&m->map);
    memset(&m->map, 0, sizeof(m->map));
    free(m->w);
    m->w = NULL;
    return m;
fail:
    fclose(f);
    sb_model_destroy(m);
    return NULL;
}

static void softmax(double *z)
{
    double max = z[0], sum = 0;
    for (int c = 1; c < NC; c++)
        if (z[c] > max)
            max = z[c];
    for (int c = 0; c < NC; c++)
        sum += z[c] = exp(z[c] - max);
    for (int c = 0; c < NC; c++)
        z[c] /= sum;
}

#define MAX_FEATURES 4096

void sb_model_predict(const struct sb_model *m, const char *text, size_t len, double prob[NC])
{
    uint64_t feats[MAX_FEATURES];
    size_t n = sb_model_features(text, len, feats, MAX_FEATURES);

    memcpy(prob, m->bias, sizeof(m->bias));
    for (size_t i = 0; i < n; i++) {
        uint64_t k = key_of(feats[i]);
        size_t slot;
        if (!(m->filter[FILTER_BIT(k) / 64] & (1ULL << (FILTER_BIT(k) % 64))))
            continue;
        slot = (size_t)(k ^ (k >> 29)) & m->mask;
        while (m->table[slot].key != 0 && m->table[slot].key != k)
            slot = (slot + 1) & m->mask;
        if (m->table[slot].key == 0)
            continue;
        for (int c = 0; c < NC; c++)
            prob[c] += m->table[slot].w[c];
    }
    softmax(prob);
}

/* ---- training ---- */

struct example {
    uint32_t *f; /* feature rows, unique */
    uint32_t n;
    int label;
};

struct sb_trainset {
    char **texts;
    int *labels;
    size_t n, cap;
};

struct sb_trainset *sb_trainset_new(void)
{
    return sb_calloc(1, sizeof(struct sb_trainset));
}

void sb_trainset_add(struct sb_trainset *t, const char *text, int domain)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->texts = sb_realloc(t->texts, t->cap * sizeof(*t->texts));
        t->labels = sb_realloc(t->labels, t->cap * sizeof(*t->labels));
    }
    t->texts[t->n] = sb_strdup(text);
    t->labels[t->n++] = domain;
}

size_t sb_trainset_size(const struct sb_trainset *t)
{
    return t->n;
}

void sb_trainset_destroy(struct sb_trainset *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->texts[i]);
    free(t->texts);
    free(t->labels);
    free(t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Unique features of each text, counted across texts. */
static size_t unique_features(const char *text, uint64_t *buf)
{
    size_t n = sb_model_features(text, strlen(text), buf, MAX_FEATURES), u = 0;
    qsort(buf, n, sizeof(*buf), cmp_u64);
    for (size_t i = 0; i < n; i++)
        if (u == 0 || buf[u - 1] != buf[i])
            buf[u++] = buf[i];
    return u;
}

int sb_model_train(const struct sb_trainset *t, const struct sb_train_opts *o, const char *path,
                   size_t *nfeatures, char *err, size_t errsz)
{
    struct fmap counts, vocab;
    uint64_t *buf = sb_malloc(MAX_FEATURES * sizeof(*buf)), *hashes;
    struct example *ex = sb_calloc(t->n ? t->n : 1, sizeof(*ex));
    size_t *order = sb_malloc((t->n ? t->n : 1) * sizeof(*order));
    double *w, *g, bias[NC] = {0}, gbias[NC] = {0};
    size_t rows = 0, kept = 0;
    int rc = 0;
    uint64_t seed = o->seed ? o->seed : 88172645463325252ULL;
    FILE *f;

    fmap_init(&counts, 65536);
    for (size_t i = 0; i < t->n; i++) {
        size_t u = unique_features(t->texts[i], buf);
        for (size_t k = 0; k < u; k++)
            (*fmap_put(&counts, buf[k], 0))++;
    }
    fmap_init(&vocab, counts.n);
    hashes = sb_malloc((counts.n ? counts.n : 1) * sizeof(*hashes));
    for (size_t i = 0; i < counts.cap; i++)
        if (counts.keys[i] != 0 && counts.vals[i] >= (uint32_t)o->min_count) {
            hashes[rows] = counts.keys[i];
            *fmap_put(&vocab, counts.keys[i], (uint32_t)rows) = (uint32_t)rows;
            rows++;
        }
    for (size_t i = 0; i < t->n; i++) {
        size_t u = unique_features(t->texts[i], buf);
        ex[i].f = sb_malloc((u ? u : 1) * sizeof(uint32_t));
        for (size_t k = 0; k < u; k++) {
            long r = fmap_get(&vocab, buf[k]);
            if (r >= 0)
                ex[i].f[ex[i].n++] = (uint32_t)r;
        }
        ex[i].label = t->labels[i];
        order[i] = i;
    }
    w = sb_calloc(rows * NC + 1, sizeof(*w));
    g = sb_calloc(rows * NC + 1, sizeof(*g));
    for (int epoch = 0; epoch < o->epochs; epoch++) {
        for (size_t i = t->n; i > 1; i--) { /* Fisher–Yates with a fixed seed */
            size_t j = (size_t)(xorshift(&seed) % i), tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
        for (size_t k = 0; k < t->n; k++) {
            const struct example *e = &ex[order[k]];
            double z[NC];
            memcpy(z, bias, sizeof(z));
            for (uint32_t a = 0; a < e->n; a++)
                for (int c = 0; c < NC; c++)
                    z[c] += w[(size_t)e->f[a] * NC + c];
            softmax(z);
            for (int c = 0; c < NC; c++) {
                double grad = z[c] - (c == e->label ? 1.0 : 0.0);
                gbias[c] += grad * grad;
                bias[c] -= o->rate * grad / sqrt(gbias[c] + 1e-8);
                for (uint32_t a = 0; a < e->n; a++) {
                    size_t idx = (size_t)e->f[a] * NC + c;
                    double gi = grad + o->l2 * w[idx];
                    g[idx] += gi * gi;
                    w[idx] -= o->rate * gi / sqrt(g[idx] + 1e-8);
                }
            }
        }
    }
    f = fopen(path, "w");
    if (f == NULL) {
        sb_fmt(err, errsz, "%s: %s", path, strerror(errno));
        rc = SB_E_IO;
    } else {
        fprintf(f, "switchboard-triage-model\t1\nclasses");
        for (int c = 0; c < NC; c++)
            fprintf(f, "\t%s", sb_domain_name(c));
        fprintf(f, "\nbias");
        for (int c = 0; c < NC; c++)
            fprintf(f, "\t%.4f", bias[c]);
        fputc('\n', f);
        for (size_t r = 0; r < rows; r++) {
            double max = 0;
            for (int c = 0; c < NC; c++)
                max = fmax(max, fabs(w[r * NC + c]));
            if (max < o->prune)
                continue;
            fprintf(f, "%016llx", (unsigned long long)hashes[r]);
            for (int c = 0; c < NC; c++)
                fprintf(f, "\t%.3f", w[r * NC + c]);
            fputc('\n', f);
            kept++;
        }
        if (fclose(f) != 0) {
            sb_fmt(err, errsz, "%s: %s", path, strerror(errno));
            rc = SB_E_IO;
        }
    }
    for (size_t i = 0; i < t->n; i++)
        free(ex[i].f);
    free(ex);
    free(order);
    free(w);
    free(g);
    free(buf);
    free(hashes);
    fmap_free(&counts);
    fmap_free(&vocab);
    *nfeatures = kept;
    return rc;
}
