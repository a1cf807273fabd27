/* Labelled tickets for training and evaluation: a CSV file with a header, a text
 * column and a label column, and a JSON map from each label to one of the six
 * domains (without a map the labels must be domain names). */
#ifndef SB_TRIAGE_DATASET_H
#define SB_TRIAGE_DATASET_H

#include <stddef.h>

struct sb_dataset {
    char **texts;
    int *labels; /* enum sb_domain */
    size_t n;
};

/* Returns 0, or a negative code with errstr naming the file, line or label. */
int sb_dataset_load(const char *csv_path, const char *text_column, const char *label_column,
                    const char *map_path, struct sb_dataset *out, char *errstr, size_t errstr_size);
void sb_dataset_free(struct sb_dataset *d);

#endif
