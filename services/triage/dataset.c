/* Labelled CSV loading (see dataset.h). */
#include "dataset.h"
#include "rules.h"

#include "sb/csv.h"
#include "sb/err.h"
#include "sb/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path, size_t *len, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        sb_fmt(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            buf = sb_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int column(const struct sb_csv_row *hdr, const char *name)
{
    for (int i = 0; i < hdr->nfields; i++)
        if (strcmp(hdr->fields[i], name) == 0)
            return i;
    return -1;
}

int sb_dataset_load(const char *path, const char *text_col, const char *label_col,
                    const char *map_path, struct sb_dataset *out, char *err, size_t errsz)
{
    struct sb_csv_row row = {0};
    struct sb_csv *csv = NULL;
    json_t *map = NULL;
    json_error_t jerr;
    size_t len, cap = 0;
    char *buf, inner[256];
    int ti, li, rc = 0;

    memset(out, 0, sizeof(*out));
    if (map_path != NULL &&
        (map = json_load_file(map_path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        sb_fmt(err, errsz, "%s:%d: %s", map_path, jerr.line, jerr.text);
        return SB_E_INVAL;
    }
    buf = read_all(path, &len, err, errsz);
    if (buf == NULL) {
        json_decref(map);
        return SB_E_IO;
    }
    csv = sb_csv_new(buf, len);
    if (sb_csv_next(csv, &row, inner, sizeof(inner)) != 1) {
        sb_fmt(err, errsz, "%s: no header line", path);
        rc = SB_E_INVAL;
        goto out;
    }
    ti = column(&row, text_col);
    li = column(&row, label_col);
    if (ti < 0 || li < 0) {
        sb_fmt(err, errsz, "%s: no column \"%s\"", path, ti < 0 ? text_col : label_col);
        rc = SB_E_INVAL;
        goto out;
    }
    for (;;) {
        const char *label;
        int d;
        sb_csv_row_clear(&row);
        rc = sb_csv_next(csv, &row, inner, sizeof(inner));
        if (rc <= 0) {
            if (rc < 0)
                sb_fmt(err, errsz, "%s: %s", path, inner);
            break;
        }
        if (row.nfields <= ti || row.nfields <= li) {
            sb_fmt(err, errsz, "%s:%d: too few fields", path, row.line);
            rc = SB_E_INVAL;
            break;
        }
        label = row.fields[li];
        if (map != NULL)
            label = json_string_value(json_object_get(map, label));
        d = sb_domain_parse(label);
        if (d < 0) {
            sb_fmt(err, errsz, "%s:%d: label \"%s\" maps to no domain", path, row.line,
                   row.fields[li]);
            rc = SB_E_INVAL;
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 1024;
            out->texts = sb_realloc(out->texts, cap * sizeof(*out->texts));
            out->labels = sb_realloc(out->labels, cap * sizeof(*out->labels));
        }
        out->texts[out->n] = sb_strdup(row.fields[ti]);
        out->labels[out->n++] = d;
    }
out:
    sb_csv_row_clear(&row);
    sb_csv_destroy(csv);
    free(buf);
    json_decref(map);
    if (rc < 0)
        sb_dataset_free(out);
    return rc < 0 ? rc : 0;
}

void sb_dataset_free(struct sb_dataset *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->texts[i]);
    free(d->texts);
    free(d->labels);
    memset(d, 0, sizeof(*d));
}
