/* A strict RFC 4180 CSV reader for reference-data files: quoted fields, doubled quotes
 * inside quotes, CRLF, LF or CR line ends, line breaks inside quoted fields, an optional
 * UTF-8 byte order mark, and hard limits on the size of a field and the number of
 * fields. Blank lines between records are skipped. Pure: it reads a memory buffer and
 * does no I/O, so the unit tests and fuzzers use it unchanged. */
#ifndef SB_CSV_H
#define SB_CSV_H

#include <stddef.h>

#define SB_CSV_MAX_FIELDS 64  /* fields per record */
#define SB_CSV_MAX_FIELD 4096 /* bytes per field, after unquoting */

struct sb_csv;

/* One record. fields[0..nfields) are NUL-terminated copies owned by the row. */
struct sb_csv_row {
    int nfields;
    int line; /* line on which the record starts (1-based) */
    char *fields[SB_CSV_MAX_FIELDS];
};

/* Creates a reader over buf[0..len). buf is borrowed and must outlive the reader.
 * Never returns NULL (allocation failure aborts, see sb/util.h). */
struct sb_csv *sb_csv_new(const char *buf, size_t len);
/* Destroys the reader. Accepts NULL. */
void sb_csv_destroy(struct sb_csv *c);

/* Reads the next record into row (which it overwrites: clear the previous one first).
 * Returns 1 (a record), 0 (end of input), SB_E_INVAL (malformed: unterminated quote,
 * stray quote, text after a closing quote, NUL byte) or SB_E_TOOBIG (a limit), with
 * errstr naming the line, e.g. "line 7: field longer than 4096 bytes". After an error
 * the reader stays at the error and row holds nothing. */
int sb_csv_next(struct sb_csv *c, struct sb_csv_row *row, char *errstr, size_t errstr_size);

/* Frees the fields of row and empties it. Safe on an empty row. */
void sb_csv_row_clear(struct sb_csv_row *row);

#endif
