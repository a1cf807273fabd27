/* Business calendars (tables calendars, calendar_hours and holidays): weekly opening
 * hours per ISO weekday in an IANA time zone, days off and compensatory working days,
 * and the arithmetic SLA clocks and reports need — is it open, add business time,
 * business time between two instants, add N working days.
 *
 * Semantics (docs/slawatch-core.md):
 *  - Opening hours are wall-clock times of the calendar's zone. An interval of a local
 *    date opens and closes at the first instant the wall clock reads that time or later
 *    (sb_tz_local_to_utc): on a spring-forward day 02:00–04:00 in Berlin lasts one hour,
 *    on a fall-back day 00:00–04:00 lasts five.
 *  - A day off (working_day = false) has no hours. A compensatory working day keeps its
 *    own weekday's hours when it has any, otherwise takes those of as_weekday, or of the
 *    first ISO weekday (Monday first) that has hours.
 *  - A working day is a local date with at least one non-empty interval.
 *  - N working days from an instant end at the close of business of the N-th working
 *    day after the local date of that instant (the day itself never counts).
 *
 * Instants are int64 ms since the epoch (UTC). A calendar is immutable once built, so
 * any number of threads may read it. Pure logic. */
#ifndef SB_SLAWATCH_CALENDAR_H
#define SB_SLAWATCH_CALENDAR_H

#include "tz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on configuration (checked by sb_cal_new). */
#define SB_CAL_MAX_SPANS 8 /* opening intervals per weekday */
#define SB_CAL_MAX_HOLIDAYS 20000
#define SB_CAL_ID_MAX 64 /* bytes including the NUL */
/* Searches for the next open time give up after this many days (≈ 10 years). */
#define SB_CAL_HORIZON_DAYS 3700

/* One row of calendar_hours: seconds after local midnight, 0 ≤ opens < closes ≤ 86400
 * (closes = 86400 is "24:00"). Overlapping rows of a weekday are merged. */
struct sb_cal_hours {
    int weekday; /* ISO: 1 = Monday … 7 = Sunday */
    int32_t opens_s;
    int32_t closes_s;
};

/* One row of holidays. */
struct sb_cal_holiday {
    int year, month, day;
    bool working_day; /* true: a compensatory working day */
    int as_weekday;   /* working day only: whose hours apply (0: see above) */
};

struct sb_cal_conf {
    const char *id; /* calendars.id, for messages and events (< SB_CAL_ID_MAX bytes) */
    const struct sb_cal_hours *hours;
    size_t n_hours;
    const struct sb_cal_holiday *holidays;
    size_t n_holidays;
};

struct sb_cal;

/* Builds a calendar from conf (copied) in zone tz. Takes ownership of tz, also on
 * failure. Returns a new calendar, or NULL with the reason in errstr (a weekday out of
 * range, an empty or inverted interval, too many rows, an invalid or repeated date). */
struct sb_cal *sb_cal_new(const struct sb_cal_conf *conf, struct sb_tz *tz, char *errstr,
                          size_t errstr_size);

/* Frees a calendar and its zone; NULL is accepted. */
void sb_cal_destroy(struct sb_cal *cal);

const char *sb_cal_id(const struct sb_cal *cal);
const struct sb_tz *sb_cal_tz(const struct sb_cal *cal);

/* Local date (days since 1970-01-01) of an instant. */
int64_t sb_cal_local_day(const struct sb_cal *cal, int64_t at_ms);

/* The open intervals of local date day as UTC instants [starts[i], ends[i]), ascending,
 * at most SB_CAL_MAX_SPANS. Returns their number (0 on a day off). */
int sb_cal_day_intervals(const struct sb_cal *cal, int64_t day, int64_t *starts, int64_t *ends);

/* True when the local date has business hours. */
bool sb_cal_is_working_day(const struct sb_cal *cal, int64_t day);

/* True when at_ms lies within business hours. */
bool sb_cal_is_open(const struct sb_cal *cal, int64_t at_ms);

/* The first instant ≥ at_ms within business hours. Returns 0, SB_E_NOENT when none
 * within SB_CAL_HORIZON_DAYS, SB_E_INVAL for an instant out of range. */
int sb_cal_next_open(const struct sb_cal *cal, int64_t at_ms, int64_t *out_ms);

/* The instant at which amount_ms of business time has passed since from_ms. A deadline
 * that uses up an interval exactly ends at its close (17:00 + 1 h with a close at 18:00
 * is 18:00, not the next morning). amount_ms = 0 gives from_ms. Returns 0, SB_E_NOENT
 * (no business hours within the horizon) or SB_E_INVAL. */
int sb_cal_add_business(const struct sb_cal *cal, int64_t from_ms, int64_t amount_ms,
                        int64_t *out_ms);

/* Business time between two instants (negative when to_ms < from_ms). Returns 0 or
 * SB_E_INVAL (an instant out of range, or a span over 100 years). */
int sb_cal_business_between(const struct sb_cal *cal, int64_t from_ms, int64_t to_ms,
                            int64_t *out_ms);

/* The close of business of the n-th working day after the local date of from_ms
 * (n ≥ 1). Returns 0, SB_E_NOENT or SB_E_INVAL. */
int sb_cal_add_working_days(const struct sb_cal *cal, int64_t from_ms, int n, int64_t *out_ms);

/* Parsers for the database's text forms: "HH:MM[:SS]" (00:00–24:00) into seconds, and
 * "YYYY-MM-DD" (a real date). Return 0 or SB_E_INVAL. */
int sb_cal_parse_time(const char *s, int32_t *out_s);
int sb_cal_parse_date(const char *s, int *year, int *month, int *day);

#endif
