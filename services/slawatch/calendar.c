/* Business calendars: opening hours, days off, compensatory working days and the
 * arithmetic over them; see calendar.h for the semantics. */
#include "calendar.h"

#include "sb/err.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

/* Instants accepted by the arithmetic: the tz range less a day on each side. */
#define CAL_MIN_MS ((SB_TZ_MIN_S + 86400) * 1000)
#define CAL_MAX_MS ((SB_TZ_MAX_S - 86400) * 1000)
#define CAL_MAX_SPAN_DAYS (366 * 100)

struct cal_span {
    int32_t opens, closes;
};

struct cal_day {
    int64_t day; /* local date */
    bool working;
    int as_weekday;
};

struct sb_cal {
    char id[SB_CAL_ID_MAX];
    struct sb_tz *tz;
    struct cal_span spans[8][SB_CAL_MAX_SPANS]; /* [ISO weekday][i], merged, ascending */
    int n_spans[8];
    int comp_weekday;     /* hours of a compensatory day whose weekday has none (0: none) */
    struct cal_day *days; /* sorted by day */
    size_t n_days;
};

static void set_err(char *errstr, size_t errstr_size, const char *id, const char *what)
{
    if (errstr != NULL && errstr_size > 0)
        sb_fmt(errstr, errstr_size, "calendar %s: %s", id, what);
}

static int cmp_span(const void *a, const void *b)
{
    const struct cal_span *x = a, *y = b;
    return x->opens < y->opens ? -1 : x->opens > y->opens;
}

static int cmp_day(const void *a, const void *b)
{
    const struct cal_day *x = a, *y = b;
    return x->day < y->day ? -1 : x->day > y->day;
}

static bool date_valid(int y, int m, int d)
{
    int64_t yy;
    int mm, dd;
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    sb_tz_civil_from_days(sb_tz_days_from_civil(y, m, d), &yy, &mm, &dd);
    return yy == y && mm == m && dd == d;
}

struct sb_cal *sb_cal_new(const struct sb_cal_conf *conf, struct sb_tz *tz, char *errstr,
                          size_t errstr_size)
{
    struct sb_cal *cal = NULL;
    struct cal_span raw[SB_CAL_MAX_SPANS * 4];
    const char *id = conf != NULL && conf->id != NULL ? conf->id : "(unnamed)";
    size_t i;

    if (tz == NULL || conf == NULL) {
        set_err(errstr, errstr_size, id, "no time zone");
        goto fail;
    }
    if (strlen(id) >= SB_CAL_ID_MAX) {
        set_err(errstr, errstr_size, "(id)", "id too long");
        goto fail;
    }
    if (conf->n_holidays > SB_CAL_MAX_HOLIDAYS || conf->n_hours > 7 * SB_CAL_MAX_SPANS * 4 ||
        (conf->n_hours > 0 && conf->hours == NULL) ||
        (conf->n_holidays > 0 && conf->holidays == NULL)) {
        set_err(errstr, errstr_size, id, "too many rows");
        goto fail;
    }
    cal = sb_calloc(1, sizeof(*cal));
    sb_strlcpy(cal->id, id, sizeof(cal->id));
    cal->tz = tz;
    tz = NULL; /* now owned by cal */

    for (int wd = 1; wd <= 7; wd++) {
        int n = 0;
        for (i = 0; i < conf->n_hours; i++) {
            const struct sb_cal_hours *h = &conf->hours[i];
            if (h->weekday < 1 || h->weekday > 7 || h->opens_s < 0 || h->closes_s > 86400 ||
                h->opens_s >= h->closes_s) {
                set_err(errstr, errstr_size, id, "opening hours out of range or empty");
                goto fail;
            }
            if (h->weekday != wd)
                continue;
            if (n == (int)(sizeof(raw) / sizeof(raw[0]))) {
                set_err(errstr, errstr_size, id, "too many intervals on one weekday");
                goto fail;
            }
            raw[n].opens = h->opens_s;
            raw[n++].closes = h->closes_s;
        }
        qsort(raw, (size_t)n, sizeof(raw[0]), cmp_span);
        for (int k = 0; k < n; k++) {
            int m = cal->n_spans[wd];
            if (m > 0 && raw[k].opens <= cal->spans[wd][m - 1].closes) {
                if (raw[k].closes > cal->spans[wd][m - 1].closes)
                    cal->spans[wd][m - 1].closes = raw[k].closes;
                continue;
            }
            if (m == SB_CAL_MAX_SPANS) {
                set_err(errstr, errstr_size, id, "too many intervals on one weekday");
                goto fail;
            }
            cal->spans[wd][m] = raw[k];
            cal->n_spans[wd]++;
        }
        if (cal->comp_weekday == 0 && cal->n_spans[wd] > 0)
            cal->comp_weekday = wd;
    }

    cal->days = sb_calloc(conf->n_holidays + 1, sizeof(*cal->days));
    for (i = 0; i < conf->n_holidays; i++) {
        const struct sb_cal_holiday *h = &conf->holidays[i];
        if (!date_valid(h->year, h->month, h->day) || h->as_weekday < 0 || h->as_weekday > 7) {
            set_err(errstr, errstr_size, id, "invalid holiday date or weekday");
            goto fail;
        }
        cal->days[i].day = sb_tz_days_from_civil(h->year, h->month, h->day);
        cal->days[i].working = h->working_day;
        cal->days[i].as_weekday = h->working_day ? h->as_weekday : 0;
    }
    cal->n_days = conf->n_holidays;
    qsort(cal->days, cal->n_days, sizeof(*cal->days), cmp_day);
    for (i = 1; i < cal->n_days; i++) {
        if (cal->days[i].day == cal->days[i - 1].day) {
            set_err(errstr, errstr_size, id, "a date is listed twice");
            goto fail;
        }
    }
    return cal;
fail:
    sb_tz_destroy(tz);
    sb_cal_destroy(cal);
    return NULL;
}

void sb_cal_destroy(struct sb_cal *cal)
{
    if (cal == NULL)
        return;
    sb_tz_destroy(cal->tz);
    free(cal->days);
    free(cal);
}

const char *sb_cal_id(const struct sb_cal *cal)
{
    return cal->id;
}

const struct sb_tz *sb_cal_tz(const struct sb_cal *cal)
{
    return cal->tz;
}

int64_t sb_cal_local_day(const struct sb_cal *cal, int64_t at_ms)
{
    int64_t s = sb_tz_floor_div(at_ms, 1000);
    return sb_tz_floor_div(s + sb_tz_offset_at(cal->tz, s), 86400);
}

static const struct cal_day *find_day(const struct sb_cal *cal, int64_t day)
{
    size_t lo = 0, hi = cal->n_days;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < cal->n_days && cal->days[lo].day == day ? &cal->days[lo] : NULL;
}

/* The ISO weekday whose hours apply to a local date, or 0 when the day is off. */
static int hours_weekday(const struct sb_cal *cal, int64_t day)
{
    int wd = sb_tz_iso_weekday(day);
    const struct cal_day *d = find_day(cal, day);

    if (d == NULL)
        return wd;
    if (!d->working)
        return 0;
    if (cal->n_spans[wd] > 0)
        return wd;
    return d->as_weekday != 0 ? d->as_weekday : cal->comp_weekday;
}

int sb_cal_day_intervals(const struct sb_cal *cal, int64_t day, int64_t *starts, int64_t *ends)
{
    int wd = hours_weekday(cal, day), n = 0;
    int64_t midnight = day * 86400;

    if (wd == 0)
        return 0;
    for (int i = 0; i < cal->n_spans[wd]; i++) {
        int64_t s = sb_tz_local_to_utc(cal->tz, midnight + cal->spans[wd][i].opens);
        int64_t e = sb_tz_local_to_utc(cal->tz, midnight + cal->spans[wd][i].closes);
        if (e <= s)
            continue; /* wholly inside a skipped hour */
        if (n > 0 && s <= ends[n - 1] / 1000) {
            ends[n - 1] = e * 1000; /* joined by a skipped hour */
            continue;
        }
        starts[n] = s * 1000;
        ends[n] = e * 1000;
        n++;
    }
    return n;
}

bool sb_cal_is_working_day(const struct sb_cal *cal, int64_t day)
{
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS];
    return sb_cal_day_intervals(cal, day, s, e) > 0;
}

static bool in_range(int64_t ms)
{
    return ms >= CAL_MIN_MS && ms <= CAL_MAX_MS;
}

bool sb_cal_is_open(const struct sb_cal *cal, int64_t at_ms)
{
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS];

    if (!in_range(at_ms))
        return false;
    /* A fold at midnight can put an instant in the previous local date's range. */
    for (int64_t day = sb_cal_local_day(cal, at_ms) - 1, k = 0; k < 3; k++, day++) {
        int n = sb_cal_day_intervals(cal, day, s, e);
        for (int i = 0; i < n; i++)
            if (at_ms >= s[i] && at_ms < e[i])
                return true;
    }
    return false;
}

int sb_cal_next_open(const struct sb_cal *cal, int64_t at_ms, int64_t *out_ms)
{
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS];

    if (!in_range(at_ms))
        return SB_E_INVAL;
    int64_t day = sb_cal_local_day(cal, at_ms) - 1;
    for (int k = 0; k < SB_CAL_HORIZON_DAYS; k++, day++) {
        int n = sb_cal_day_intervals(cal, day, s, e);
        for (int i = 0; i < n; i++) {
            if (e[i] > at_ms) {
                *out_ms = s[i] > at_ms ? s[i] : at_ms;
                return 0;
            }
        }
    }
    return SB_E_NOENT;
}

int sb_cal_add_business(const struct sb_cal *cal, int64_t from_ms, int64_t amount_ms,
                        int64_t *out_ms)
{
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS];
    int64_t left = amount_ms;

    if (!in_range(from_ms) || amount_ms < 0 || amount_ms > CAL_MAX_MS - from_ms)
        return SB_E_INVAL;
    if (amount_ms == 0) {
        *out_ms = from_ms;
        return 0;
    }
    int64_t day = sb_cal_local_day(cal, from_ms) - 1;
    /* The horizon counts days without any business hours, so that long targets on a
     * real calendar never run out while an empty calendar stops; the total is capped
     * like a span of sb_cal_business_between. */
    for (int idle = 0, k = 0; idle < SB_CAL_HORIZON_DAYS && k < CAL_MAX_SPAN_DAYS; day++, k++) {
        int n = sb_cal_day_intervals(cal, day, s, e);
        bool used = false;
        for (int i = 0; i < n; i++) {
            if (e[i] <= from_ms)
                continue;
            int64_t a = s[i] > from_ms ? s[i] : from_ms;
            used = true;
            if (left <= e[i] - a) {
                *out_ms = a + left;
                return 0;
            }
            left -= e[i] - a;
        }
        idle = used ? 0 : idle + 1;
    }
    return SB_E_NOENT;
}

int sb_cal_business_between(const struct sb_cal *cal, int64_t from_ms, int64_t to_ms,
                            int64_t *out_ms)
{
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS], sum = 0;
    int sign = 1;

    if (!in_range(from_ms) || !in_range(to_ms))
        return SB_E_INVAL;
    if (to_ms < from_ms) {
        int64_t t = from_ms;
        from_ms = to_ms;
        to_ms = t;
        sign = -1;
    }
    int64_t d0 = sb_cal_local_day(cal, from_ms) - 1, d1 = sb_cal_local_day(cal, to_ms) + 1;
    if (d1 - d0 > CAL_MAX_SPAN_DAYS)
        return SB_E_INVAL;
    for (int64_t day = d0; day <= d1; day++) {
        int n = sb_cal_day_intervals(cal, day, s, e);
        for (int i = 0; i < n; i++) {
            int64_t a = s[i] > from_ms ? s[i] : from_ms;
            int64_t b = e[i] < to_ms ? e[i] : to_ms;
            if (b > a)
                sum += b - a;
        }
    }
    *out_ms = sign * sum;
    return 0;
}

int sb_cal_add_working_days(const struct sb_cal *cal, int64_t from_ms, int n, int64_t *out_ms)
{
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS];
    int count = 0;

    if (!in_range(from_ms) || n < 1 || n > SB_CAL_HORIZON_DAYS)
        return SB_E_INVAL;
    int64_t day = sb_cal_local_day(cal, from_ms);
    for (int idle = 0; idle < SB_CAL_HORIZON_DAYS;) {
        int k;
        day++;
        k = sb_cal_day_intervals(cal, day, s, e);
        if (k == 0) {
            idle++;
            continue;
        }
        idle = 0;
        if (++count == n) {
            if (!in_range(e[k - 1]))
                return SB_E_INVAL;
            *out_ms = e[k - 1];
            return 0;
        }
    }
    return SB_E_NOENT;
}

static const char *digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, p++) {
        if (*p < '0' || *p > '9')
            return NULL;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return p;
}

int sb_cal_parse_time(const char *s, int32_t *out_s)
{
    int h, m, sec = 0;
    const char *p = s;

    if (s == NULL)
        return SB_E_INVAL;
    p = digits(p, 2, &h);
    if (p == NULL || *p != ':')
        return SB_E_INVAL;
    p = digits(p + 1, 2, &m);
    if (p == NULL)
        return SB_E_INVAL;
    if (*p == ':') {
        p = digits(p + 1, 2, &sec);
        if (p == NULL)
            return SB_E_INVAL;
    }
    if (*p != '\0' || h > 24 || m > 59 || sec > 59 || (h == 24 && (m != 0 || sec != 0)))
        return SB_E_INVAL;
    *out_s = h * 3600 + m * 60 + sec;
    return 0;
}

int sb_cal_parse_date(const char *s, int *year, int *month, int *day)
{
    int y, m, d;
    const char *p = s;

    if (s == NULL)
        return SB_E_INVAL;
    p = digits(p, 4, &y);
    if (p == NULL || *p != '-')
        return SB_E_INVAL;
    p = digits(p + 1, 2, &m);
    if (p == NULL || *p != '-')
        return SB_E_INVAL;
    p = digits(p + 1, 2, &d);
    if (p == NULL || *p != '\0' || !date_valid(y, m, d))
        return SB_E_INVAL;
    *year = y;
    *month = m;
    *day = d;
    return 0;
}
