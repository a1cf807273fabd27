/* RFC 4180 CSV reader (see csv.h). */
#include "csv.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

void sb_csv_init(struct sb_csv *c, const char *buf, size_t len)
{
    c->buf = buf;
    c->len = len;
    c->pos = 0;
    c->line = 0;
    c->next_line = 1;
    /* A UTF-8 byte order mark is not part of the first field. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        c->pos = 3;
}

void sb_csv_row_clear(struct sb_csv_row *row)
{
    for (int i = 0; i < row->nfields; i++)
        free(row->fields[i]);
    row->nfields = 0;
}

static int add_field(struct sb_csv_row *row, const char *f, size_t n, int line, char *errstr,
                     size_t errstr_size)
{
    if (row->nfields >= SB_CSV_MAX_FIELDS) {
        sb_fmt(errstr, errstr_size, "line %d: more than %d fields", line, SB_CSV_MAX_FIELDS);
        return SB_E_TOOBIG;
    }
    row->fields[row->nfields++] = sb_strndup(f, n);
    return 0;
}

int sb_csv_next(struct sb_csv *c, struct sb_csv_row *row, char *errstr, size_t errstr_size)
{
    char field[SB_CSV_MAX_FIELD + 1];
    size_t n = 0;
    int quoted = 0, was_quoted = 0, rc;

    memset(row, 0, sizeof(*row));
    /* Skip blank lines between records. */
    while (c->pos < c->len && (c->buf[c->pos] == '\n' || c->buf[c->pos] == '\r')) {
        if (c->buf[c->pos] == '\n')
            c->next_line++;
        c->pos++;
    }
    if (c->pos >= c->len)
        return 0;
    c->line = c->next_line;
    row->line = c->line;
    for (;;) {
        char ch;
        if (c->pos >= c->len) {
            if (quoted) {
                sb_fmt(errstr, errstr_size, "line %d: unterminated quoted field", c->line);
                sb_csv_row_clear(row);
                return SB_E_INVAL;
            }
            return add_field(row, field, n, c->line, errstr, errstr_size) == 0 ? 1 : SB_E_TOOBIG;
        }
        ch = c->buf[c->pos++];
        if (quoted) {
            if (ch == '"') {
                if (c->pos < c->len && c->buf[c->pos] == '"') {
                    c->pos++;
                } else {
                    quoted = 0;
                    continue;
                }
            } else if (ch == '\n') {
                c->next_line++;
            }
        } else if (ch == '"') {
            if (n != 0 || was_quoted) {
                sb_fmt(errstr, errstr_size, "line %d: stray quote inside a field", c->line);
                sb_csv_row_clear(row);
                return SB_E_INVAL;
            }
            quoted = was_quoted = 1;
            continue;
        } else if (ch == ',') {
            rc = add_field(row, field, n, c->line, errstr, errstr_size);
            if (rc != 0) {
                sb_csv_row_clear(row);
                return rc;
            }
            n = 0;
            was_quoted = 0;
            continue;
        } else if (ch == '\r' || ch == '\n') {
            if (ch == '\r' && c->pos < c->len && c->buf[c->pos] == '\n')
                c->pos++;
            c->next_line++;
            rc = add_field(row, field, n, c->line, errstr, errstr_size);
            if (rc != 0) {
                sb_csv_row_clear(row);
                return rc;
            }
            return 1;
        } else if (was_quoted) {
            sb_fmt(errstr, errstr_size, "line %d: text after a closing quote", c->line);
            sb_csv_row_clear(row);
            return SB_E_INVAL;
        }
        if (n >= SB_CSV_MAX_FIELD) {
            sb_fmt(errstr, errstr_size, "line %d: field longer than %d bytes", c->line,
                   SB_CSV_MAX_FIELD);
            sb_csv_row_clear(row);
            return SB_E_TOOBIG;
        }
        field[n++] = ch;
    }
}
