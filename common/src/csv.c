/* RFC 4180 CSV reader (see csv.h): a four-state machine over a memory buffer.
 * Errors name the line on which the record starts, which is the line a person looks
 * for in the file (a quoted field may span several lines). */
#include "sb/csv.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

enum state {
    FIELD_START, /* nothing read in this field yet */
    UNQUOTED,    /* inside a field without quotes */
    QUOTED,      /* inside "…" */
    AFTER_QUOTE, /* after the closing quote: only a separator or a line end may follow */
};

struct sb_csv {
    const char *buf;
    size_t len, pos;
    int next_line; /* line number of buf[pos] */
    int failed;    /* sticky error code, 0 while reading is possible */
    size_t n;      /* bytes in field */
    char field[SB_CSV_MAX_FIELD + 1];
};

struct sb_csv *sb_csv_new(const char *buf, size_t len)
{
    struct sb_csv *c = sb_calloc(1, sizeof(*c));

    c->buf = buf;
    c->len = len;
    c->next_line = 1;
    /* A UTF-8 byte order mark (spreadsheet exports) is not part of the first field. */
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
        c->pos = 3;
    return c;
}

void sb_csv_destroy(struct sb_csv *c)
{
    free(c);
}

void sb_csv_row_clear(struct sb_csv_row *row)
{
    for (int i = 0; i < row->nfields; i++)
        free(row->fields[i]);
    row->nfields = 0;
}

/* Consumes a line end whose first byte (ch) was just read: CRLF, LF or a lone CR. */
static void end_line(struct sb_csv *c, char ch)
{
    if (ch == '\r' && c->pos < c->len && c->buf[c->pos] == '\n')
        c->pos++;
    c->next_line++;
}

static void skip_blank_lines(struct sb_csv *c)
{
    while (c->pos < c->len && (c->buf[c->pos] == '\r' || c->buf[c->pos] == '\n')) {
        char ch = c->buf[c->pos++];
        end_line(c, ch);
    }
}

static int fail(struct sb_csv *c, struct sb_csv_row *row, int code, char *errstr,
                size_t errstr_size, const char *what)
{
    sb_fmt(errstr, errstr_size, "line %d: %s", row->line, what);
    sb_csv_row_clear(row);
    c->failed = code;
    return code;
}

static int append(struct sb_csv *c, char ch)
{
    if (c->n >= SB_CSV_MAX_FIELD)
        return SB_E_TOOBIG;
    c->field[c->n++] = ch;
    return 0;
}

static int finish_field(struct sb_csv *c, struct sb_csv_row *row)
{
    if (row->nfields >= SB_CSV_MAX_FIELDS)
        return SB_E_TOOBIG;
    row->fields[row->nfields++] = sb_strndup(c->field, c->n);
    c->n = 0;
    return 0;
}

int sb_csv_next(struct sb_csv *c, struct sb_csv_row *row, char *errstr, size_t errstr_size)
{
    char too_long[64], too_many[64];
    enum state st = FIELD_START;

    memset(row, 0, sizeof(*row));
    row->line = c->next_line;
    if (c->failed != 0)
        return fail(c, row, c->failed, errstr, errstr_size, "reading stopped at an earlier error");
    skip_blank_lines(c);
    if (c->pos >= c->len)
        return 0;
    row->line = c->next_line;
    c->n = 0;
    sb_fmt(too_long, sizeof(too_long), "field longer than %d bytes", SB_CSV_MAX_FIELD);
    sb_fmt(too_many, sizeof(too_many), "more than %d fields", SB_CSV_MAX_FIELDS);
    for (;;) {
        char ch;

        if (c->pos >= c->len) {
            if (st == QUOTED)
                return fail(c, row, SB_E_INVAL, errstr, errstr_size, "unterminated quoted field");
            if (finish_field(c, row) != 0)
                return fail(c, row, SB_E_TOOBIG, errstr, errstr_size, too_many);
            return 1;
        }
        ch = c->buf[c->pos++];
        if (ch == '\0')
            return fail(c, row, SB_E_INVAL, errstr, errstr_size, "NUL byte");
        if (st == QUOTED) {
            if (ch == '"' && c->pos < c->len && c->buf[c->pos] == '"') {
                c->pos++; /* "" is one quote */
            } else if (ch == '"') {
                st = AFTER_QUOTE;
                continue;
            } else if (ch == '\n' || (ch == '\r' && (c->pos >= c->len || c->buf[c->pos] != '\n'))) {
                c->next_line++;
            }
            if (append(c, ch) != 0)
                return fail(c, row, SB_E_TOOBIG, errstr, errstr_size, too_long);
            continue;
        }
        if (ch == ',' || ch == '\r' || ch == '\n') {
            if (finish_field(c, row) != 0)
                return fail(c, row, SB_E_TOOBIG, errstr, errstr_size, too_many);
            if (ch != ',') {
                end_line(c, ch);
                return 1;
            }
            st = FIELD_START;
            continue;
        }
        if (st == AFTER_QUOTE)
            return fail(c, row, SB_E_INVAL, errstr, errstr_size, "text after a closing quote");
        if (ch == '"') {
            if (st != FIELD_START)
                return fail(c, row, SB_E_INVAL, errstr, errstr_size,
                            "stray quote inside an unquoted field");
            st = QUOTED;
            continue;
        }
        st = UNQUOTED;
        if (append(c, ch) != 0)
            return fail(c, row, SB_E_TOOBIG, errstr, errstr_size, too_long);
    }
}
