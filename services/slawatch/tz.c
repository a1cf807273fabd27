/* IANA time zones from TZif files (RFC 8536) and POSIX TZ rules; see tz.h. */
#include "tz.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_NAME_MAX 255
#define TZ_MAX_TIMES 100000
#define TZ_MAX_TYPES 256
#define TZ_MAX_CHARS 65536
#define TZ_MAX_FOOTER 255
/* Times of a POSIX rule may reach 167 h (RFC 8536 §3.3.1). */
#define TZ_MAX_RULE_TIME (167 * 3600)

/* A POSIX rule date: Jn (1–365, February 29 never counted), n (0–365) or Mm.w.d. */
struct tz_rdate {
    char form; /* 'J', 'D' (plain day of year) or 'M' */
    int n;     /* J and D: the day */
    int m, w, d;
    int32_t time; /* local time of the change, seconds (may be negative or > 24 h) */
};

struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct tz_rdate start, end; /* DST starts (in standard time), ends (in DST) */
};

struct sb_tz {
    char name[TZ_NAME_MAX + 1];
    int64_t *times; /* transitions, strictly ascending */
    uint8_t *idx;   /* type after each transition */
    int32_t *offs;  /* offset of each type */
    size_t n_times, n_types;
    bool has_rule;
    struct tz_rule rule;
};

int64_t sb_tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t sb_tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sb_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (mm <= 2);
    *m = mm;
    *d = dd;
}

int sb_tz_iso_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday (ISO 4). */
    int64_t r = ((days % 7) + 7) % 7;
    return (int)((r + 3) % 7) + 1;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

/* --- POSIX TZ strings ------------------------------------------------------------ */

static const char *parse_tzname(const char *p)
{
    const char *s = p;
    if (*p == '<') {
        p++;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p - s - 1 < 3)
            return NULL;
        return p + 1;
    }
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh ≤ max_h; the value in seconds, sign applied. */
static const char *parse_hms(const char *p, int max_h, int32_t *out)
{
    int sign = 1, part[3] = {0, 0, 0}, i;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    for (i = 0; i < 3; i++) {
        int digits = 0, v = 0;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            v = v * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || (i > 0 && (digits != 2 || v > 59)) || (i == 0 && v > max_h))
            return NULL;
        part[i] = v;
        if (*p != ':' || i == 2)
            break;
        p++;
    }
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return p;
}

static const char *parse_int(const char *p, int lo, int hi, int *out)
{
    int v = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || v < lo || v > hi)
        return NULL;
    *out = v;
    return p;
}

static const char *parse_rdate(const char *p, struct tz_rdate *r)
{
    if (*p == 'J') {
        r->form = 'J';
        p = parse_int(p + 1, 1, 365, &r->n);
    } else if (*p == 'M') {
        r->form = 'M';
        p = parse_int(p + 1, 1, 12, &r->m);
        if (p == NULL || *p != '.')
            return NULL;
        p = parse_int(p + 1, 1, 5, &r->w);
        if (p == NULL || *p != '.')
            return NULL;
        p = parse_int(p + 1, 0, 6, &r->d);
    } else {
        r->form = 'D';
        p = parse_int(p, 0, 365, &r->n);
    }
    if (p == NULL)
        return NULL;
    r->time = 2 * 3600;
    if (*p == '/')
        p = parse_hms(p + 1, TZ_MAX_RULE_TIME / 3600, &r->time);
    return p;
}

/* Parses a whole POSIX TZ string. Returns 0 or SB_E_PARSE. */
static int parse_posix(const char *s, struct tz_rule *r)
{
    const char *p = parse_tzname(s);
    int32_t off;

    memset(r, 0, sizeof(*r));
    if (p == NULL)
        return SB_E_PARSE;
    p = parse_hms(p, 24, &off);
    if (p == NULL)
        return SB_E_PARSE;
    r->std_off = -off; /* POSIX offsets count west of Greenwich */
    if (*p == '\0')
        return 0;
    p = parse_tzname(p);
    if (p == NULL)
        return SB_E_PARSE;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        p = parse_hms(p, 24, &off);
        if (p == NULL)
            return SB_E_PARSE;
        r->dst_off = -off;
    }
    if (*p == '\0') {
        /* No rule: the US rules, as glibc and the tz code assume. */
        r->start = (struct tz_rdate){'M', 0, 3, 2, 0, 2 * 3600};
        r->end = (struct tz_rdate){'M', 0, 11, 1, 0, 2 * 3600};
        return 0;
    }
    if (*p != ',')
        return SB_E_PARSE;
    p = parse_rdate(p + 1, &r->start);
    if (p == NULL || *p != ',')
        return SB_E_PARSE;
    p = parse_rdate(p + 1, &r->end);
    if (p == NULL || *p != '\0')
        return SB_E_PARSE;
    return 0;
}

/* Local day number of a rule date in year y. */
static int64_t rdate_day(const struct tz_rdate *r, int64_t y)
{
    int64_t jan1 = sb_tz_days_from_civil(y, 1, 1);
    if (r->form == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
    if (r->form == 'D')
        return jan1 + r->n;
    int64_t first = sb_tz_days_from_civil(y, r->m, 1);
    int wd = sb_tz_iso_weekday(first) % 7; /* 0 = Sunday, as in the rule */
    int day = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
    while (day > month_days(y, r->m))
        day -= 7;
    return first + day - 1;
}

/* Offset at t under the rule, and the next change after t. */
static void rule_find(const struct tz_rule *r, int64_t t, int32_t *off, int64_t *next)
{
    struct {
        int64_t at;
        int32_t off;
    } ev[6], tmp;
    int n = 0, i, j, last = -1;
    int64_t d, y;
    int mm, dd;

    if (!r->has_dst) {
        *off = r->std_off;
        *next = INT64_MAX;
        return;
    }
    sb_tz_civil_from_days(sb_tz_floor_div(t + r->std_off, 86400), &y, &mm, &dd);
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        d = rdate_day(&r->start, yy);
        ev[n].at = d * 86400 + r->start.time - r->std_off;
        ev[n++].off = r->dst_off;
        d = rdate_day(&r->end, yy);
        ev[n].at = d * 86400 + r->end.time - r->dst_off;
        ev[n++].off = r->std_off;
    }
    for (i = 1; i < n; i++) {
        tmp = ev[i];
        for (j = i; j > 0 && ev[j - 1].at > tmp.at; j--)
            ev[j] = ev[j - 1];
        ev[j] = tmp;
    }
    for (i = 0; i < n; i++)
        if (ev[i].at <= t)
            last = i;
    /* Before the first change of the window: the state the first change leaves. */
    *off = last >= 0 ? ev[last].off : (ev[0].off == r->dst_off ? r->std_off : r->dst_off);
    *next = INT64_MAX;
    for (i = last + 1; i < n; i++) {
        if (ev[i].off != *off) {
            *next = ev[i].at;
            break;
        }
    }
}

/* --- Lookups --------------------------------------------------------------------- */

static int64_t clamp_s(int64_t t)
{
    return t < SB_TZ_MIN_S ? SB_TZ_MIN_S : t > SB_TZ_MAX_S ? SB_TZ_MAX_S : t;
}

/* The offset in force at t and the first instant after t with another offset. */
static void tz_find(const struct sb_tz *tz, int64_t t, int32_t *off, int64_t *next)
{
    size_t lo, hi, i;

    if (tz->n_times == 0 || t < tz->times[0]) {
        if (tz->n_times == 0 && tz->has_rule) {
            rule_find(&tz->rule, t, off, next);
            return;
        }
        /* Before the first transition: time type 0 (RFC 8536 §3.2). */
        *off = tz->offs[0];
        *next = tz->n_times > 0 ? tz->times[0] : INT64_MAX;
        for (i = 0; i < tz->n_times && tz->offs[tz->idx[i]] == *off; i++)
            *next = i + 1 < tz->n_times ? tz->times[i + 1] : INT64_MAX;
        return;
    }
    lo = 0;
    hi = tz->n_times; /* times[lo] <= t < times[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (lo + 1 == tz->n_times && tz->has_rule) {
        rule_find(&tz->rule, t, off, next);
        return;
    }
    *off = tz->offs[tz->idx[lo]];
    /* Transitions that change only the abbreviation or the DST flag are not changes. */
    for (i = lo + 1; i < tz->n_times && tz->offs[tz->idx[i]] == *off; i++)
        ;
    if (i < tz->n_times) {
        *next = tz->times[i];
    } else if (tz->has_rule) {
        int32_t roff;
        int64_t rnext;
        rule_find(&tz->rule, tz->times[tz->n_times - 1], &roff, &rnext);
        /* From the last transition on, the footer rule decides (see above). */
        *next = roff != *off ? tz->times[tz->n_times - 1] : rnext;
        assert(*next > t);
    } else {
        *next = INT64_MAX;
    }
}

int32_t sb_tz_offset_at(const struct sb_tz *tz, int64_t utc_s)
{
    int32_t off;
    int64_t next;
    tz_find(tz, clamp_s(utc_s), &off, &next);
    return off;
}

int64_t sb_tz_next_transition(const struct sb_tz *tz, int64_t utc_s)
{
    int32_t off;
    int64_t next;
    tz_find(tz, clamp_s(utc_s), &off, &next);
    return next;
}

int64_t sb_tz_local_to_utc(const struct sb_tz *tz, int64_t local_s)
{
    /* Walk the segments of constant offset around local_s: every instant whose wall
     * clock can read local_s lies within the largest offset of it. The first segment
     * that either shows local_s or starts later than it gives the answer. */
    int64_t t = clamp_s(local_s - SB_TZ_MAX_OFFSET_S - 1);
    int64_t end = clamp_s(local_s + SB_TZ_MAX_OFFSET_S + 1);

    for (int guard = 0; guard < 64; guard++) {
        int32_t off;
        int64_t next;
        tz_find(tz, t, &off, &next);
        if (t + off >= local_s)
            return t; /* the jump of a gap, or the segment already reads later */
        if (next == INT64_MAX || local_s < next + off)
            return local_s - off;
        if (next > end)
            break;
        t = next;
    }
    return local_s - sb_tz_offset_at(tz, local_s);
}

/* --- Construction ---------------------------------------------------------------- */

static void set_err(char *errstr, size_t errstr_size, const char *name, const char *what)
{
    if (errstr != NULL && errstr_size > 0)
        sb_fmt(errstr, errstr_size, "time zone %s: %s", name, what);
}

void sb_tz_destroy(struct sb_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->times);
    free(tz->idx);
    free(tz->offs);
    free(tz);
}

const char *sb_tz_name(const struct sb_tz *tz)
{
    return tz->name;
}

struct sb_tz *sb_tz_new_posix(const char *spec, char *errstr, size_t errstr_size)
{
    struct sb_tz *tz = NULL;
    struct tz_rule r;

    if (spec == NULL || strlen(spec) > TZ_MAX_FOOTER || parse_posix(spec, &r) != 0) {
        set_err(errstr, errstr_size, spec != NULL ? spec : "(null)", "not a POSIX TZ string");
        return NULL;
    }
    tz = sb_calloc(1, sizeof(*tz));
    sb_strlcpy(tz->name, spec, sizeof(tz->name));
    tz->rule = r;
    tz->has_rule = true;
    tz->offs = sb_calloc(1, sizeof(int32_t));
    tz->offs[0] = r.std_off;
    tz->n_types = 1;
    return tz;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_hdr {
    int version;
    uint32_t isut, isstd, leap, times, types, chars;
};

/* Reads a header at off; returns the size of the data block after it (0 on error). */
static size_t tzif_header(const unsigned char *buf, size_t len, size_t off, int timesz,
                          struct tzif_hdr *h)
{
    if (len < off || len - off < 44 || memcmp(buf + off, "TZif", 4) != 0)
        return 0;
    h->version = buf[off + 4] == 0 ? 1 : buf[off + 4] - '0';
    h->isut = be32(buf + off + 20);
    h->isstd = be32(buf + off + 24);
    h->leap = be32(buf + off + 28);
    h->times = be32(buf + off + 32);
    h->types = be32(buf + off + 36);
    h->chars = be32(buf + off + 40);
    if (h->version < 1 || h->version > 4 || h->types < 1 || h->types > TZ_MAX_TYPES ||
        h->times > TZ_MAX_TIMES || h->chars > TZ_MAX_CHARS || h->leap > TZ_MAX_TIMES ||
        (h->isut != 0 && h->isut != h->types) || (h->isstd != 0 && h->isstd != h->types))
        return 0;
    size_t n = (size_t)h->times * (size_t)(timesz + 1) + (size_t)h->types * 6 + h->chars +
               (size_t)h->leap * (size_t)(timesz + 4) + h->isstd + h->isut;
    return len - off - 44 >= n ? n : 0;
}

struct sb_tz *sb_tz_parse_tzif(const char *name, const unsigned char *buf, size_t len, char *errstr,
                               size_t errstr_size)
{
    struct sb_tz *tz = NULL;
    struct tzif_hdr h;
    size_t off = 0, block, i;
    int timesz = 4;
    const unsigned char *p;
    char footer[TZ_MAX_FOOTER + 1];

    if (name == NULL)
        name = "(unnamed)";
    if (buf == NULL || len > SB_TZ_MAX_FILE) {
        set_err(errstr, errstr_size, name, "file missing or too large");
        return NULL;
    }
    block = tzif_header(buf, len, 0, 4, &h);
    if (block == 0) {
        set_err(errstr, errstr_size, name, "not a valid TZif file (header)");
        return NULL;
    }
    if (h.version >= 2) {
        /* Skip the 32-bit block: the 64-bit one follows with its own header. */
        off = 44 + block;
        timesz = 8;
        block = tzif_header(buf, len, off, 8, &h);
        if (block == 0) {
            set_err(errstr, errstr_size, name, "not a valid TZif file (second header)");
            return NULL;
        }
    }
    if (h.leap != 0) {
        set_err(errstr, errstr_size, name, "zones with leap seconds are not supported");
        return NULL;
    }
    tz = sb_calloc(1, sizeof(*tz));
    sb_strlcpy(tz->name, name, sizeof(tz->name));
    tz->n_times = h.times;
    tz->n_types = h.types;
    tz->times = sb_calloc(h.times + 1, sizeof(int64_t));
    tz->idx = sb_calloc(h.times + 1, 1);
    tz->offs = sb_calloc(h.types, sizeof(int32_t));
    p = buf + off + 44;
    for (i = 0; i < h.times; i++, p += timesz) {
        tz->times[i] = timesz == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
        if (i > 0 && tz->times[i] <= tz->times[i - 1]) {
            set_err(errstr, errstr_size, name, "transitions out of order");
            goto fail;
        }
    }
    for (i = 0; i < h.times; i++, p++) {
        tz->idx[i] = *p;
        if (*p >= h.types) {
            set_err(errstr, errstr_size, name, "transition type out of range");
            goto fail;
        }
    }
    for (i = 0; i < h.types; i++, p += 6) {
        int32_t utoff = (int32_t)be32(p);
        if (utoff < -SB_TZ_MAX_OFFSET_S || utoff > SB_TZ_MAX_OFFSET_S || p[5] >= h.chars) {
            set_err(errstr, errstr_size, name, "time type out of range");
            goto fail;
        }
        tz->offs[i] = utoff;
    }
    /* Transitions beyond the supported range change nothing we can be asked about. */
    while (tz->n_times > 0 && tz->times[tz->n_times - 1] > SB_TZ_MAX_S)
        tz->n_times--;
    if (h.version >= 2) {
        const unsigned char *f = buf + off + 44 + block, *e = buf + len, *nl;
        if (f >= e || *f != '\n') {
            set_err(errstr, errstr_size, name, "footer missing");
            goto fail;
        }
        nl = memchr(f + 1, '\n', (size_t)(e - f - 1));
        if (nl == NULL || (size_t)(nl - f - 1) > TZ_MAX_FOOTER) {
            set_err(errstr, errstr_size, name, "footer too long or unterminated");
            goto fail;
        }
        memcpy(footer, f + 1, (size_t)(nl - f - 1));
        footer[nl - f - 1] = '\0';
        if (footer[0] != '\0') {
            if (parse_posix(footer, &tz->rule) != 0) {
                set_err(errstr, errstr_size, name, "footer is not a POSIX TZ string");
                goto fail;
            }
            tz->has_rule = true;
        }
    }
    return tz;
fail:
    sb_tz_destroy(tz);
    return NULL;
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    const char *c;

    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[0] == '.')
        return false;
    for (c = name; *c != '\0'; c++) {
        bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '+' || *c == '-' || *c == '.' ||
                  *c == '/';
        if (!ok)
            return false;
        if (*c == '/' && (c[1] == '.' || c[1] == '/' || c[1] == '\0'))
            return false;
    }
    return true;
}

struct sb_tz *sb_tz_load(const char *name, const char *dir, char *errstr, size_t errstr_size)
{
    struct sb_tz *tz = NULL;
    FILE *f = NULL;
    unsigned char *buf = NULL;
    char path[4096];
    size_t len;

    if (name == NULL || !name_ok(name)) {
        set_err(errstr, errstr_size, name != NULL ? name : "(null)", "invalid zone name");
        goto out;
    }
    if (dir == NULL)
        dir = "/usr/share/zoneinfo";
    if (sb_fmt(path, sizeof(path), "%s/%s", dir, name) != 0) {
        set_err(errstr, errstr_size, name, "path too long");
        goto out;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        set_err(errstr, errstr_size, name, strerror(errno));
        goto out;
    }
    buf = sb_malloc(SB_TZ_MAX_FILE + 1);
    len = fread(buf, 1, SB_TZ_MAX_FILE + 1, f);
    if (ferror(f) || len > SB_TZ_MAX_FILE) {
        set_err(errstr, errstr_size, name, "unreadable or too large");
        goto out;
    }
    tz = sb_tz_parse_tzif(name, buf, len, errstr, errstr_size);
out:
    if (f != NULL)
        fclose(f);
    free(buf);
    return tz;
}
