/* Helpers shared by the SLA core tests: instants from civil dates, assertions that
 * print instants readably, and calendars used by several tests. */
#ifndef SB_SLATEST_H
#define SB_SLATEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "calendar.h"
#include "tz.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ms since the epoch of a UTC civil time. */
static inline int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    return (sb_tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (3600 * 1000LL)

static inline void fmt_ms(int64_t ms, char *buf, size_t n)
{
    int64_t y;
    int mo, d;
    int64_t s = sb_tz_floor_div(ms, 1000), day = sb_tz_floor_div(s, 86400), sod = s - day * 86400;
    sb_tz_civil_from_days(day, &y, &mo, &d);
    snprintf(buf, n, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ (%" PRId64 ")", y, mo, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)(ms - s * 1000), ms);
}

/* Fails with both instants written out when they differ. */
#define assert_ms_equal(actual, expected)                                                          \
    do {                                                                                           \
        int64_t a_ = (actual), e_ = (expected);                                                    \
        if (a_ != e_) {                                                                            \
            char ab_[64], eb_[64];                                                                 \
            fmt_ms(a_, ab_, sizeof(ab_));                                                          \
            fmt_ms(e_, eb_, sizeof(eb_));                                                          \
            fail_msg("%s = %s, expected %s", #actual, ab_, eb_);                                   \
        }                                                                                          \
    } while (0)

static inline struct sb_tz *load_tz(const char *name)
{
    char err[256];
    struct sb_tz *tz = sb_tz_load(name, NULL, err, sizeof(err));
    if (tz == NULL)
        fail_msg("%s", err);
    return tz;
}

/* Shanghai, Monday–Friday 09:00–12:00 and 13:00–18:00 (8 h a day), with the 2024
 * National Day holidays (1–7 October) and their compensatory working days (Sunday
 * 29 September, Saturday 12 October). */
static inline struct sb_cal *shanghai_cal(void)
{
    static struct sb_cal_hours hours[10];
    static const struct sb_cal_holiday hol[] = {
        {2024, 9, 29, true, 0},  {2024, 10, 1, false, 0}, {2024, 10, 2, false, 0},
        {2024, 10, 3, false, 0}, {2024, 10, 4, false, 0}, {2024, 10, 5, false, 0},
        {2024, 10, 6, false, 0}, {2024, 10, 7, false, 0}, {2024, 10, 12, true, 0},
    };
    char err[256];
    for (int wd = 1; wd <= 5; wd++) {
        hours[2 * (wd - 1)] = (struct sb_cal_hours){wd, 9 * 3600, 12 * 3600};
        hours[2 * (wd - 1) + 1] = (struct sb_cal_hours){wd, 13 * 3600, 18 * 3600};
    }
    struct sb_cal_conf conf = {"cn-aftersale", hours, 10, hol, sizeof(hol) / sizeof(hol[0])};
    struct sb_cal *cal = sb_cal_new(&conf, load_tz("Asia/Shanghai"), err, sizeof(err));
    if (cal == NULL)
        fail_msg("%s", err);
    return cal;
}

#endif
