/* A small RFC 4180 CSV reader: quoted fields, doubled quotes inside quotes, CRLF or LF
 * line ends, embedded newlines in quoted fields, hard limits on field and row size.
 * Pure: it reads from a memory buffer. */
#ifndef SB_CSV_H
#define SB_CSV_H

#include <stddef.h>

#define SB_CSV_MAX_FIELDS 64
#define SB_CSV_MAX_FIELD 4096

struct sb_csv {
    const char *buf;
    size_t len, pos;
    int line; /* line number where the current record started (1-based) */
    int next_line;
};

struct sb_csv_row {
    int nfields;
    int line;
    char *fields[SB_CSV_MAX_FIELDS]; /* owned by the row */
};

void sb_csv_init(struct sb_csv *c, const char *buf, size_t len);

/* Reads the next record into row. Returns 1 (a record), 0 (end of input), or a negative
 * SB_E_* code with errstr naming the line. Free the row with sb_csv_row_clear. */
int sb_csv_next(struct sb_csv *c, struct sb_csv_row *row, char *errstr, size_t errstr_size);
void sb_csv_row_clear(struct sb_csv_row *row);

#endif
