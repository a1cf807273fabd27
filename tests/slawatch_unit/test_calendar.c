/* Unit tests of time zones and business calendars (services/slawatch/tz.c, calendar.c):
 * civil dates, offsets and both DST transitions (Berlin, New York, Sydney, Dublin) with
 * the footer rule beyond the listed transitions and a cross-check against the C
 * library, damaged TZif files, and calendar arithmetic across lunch breaks, weekends,
 * holidays, compensatory working days, DST days and working-day counts. */
#include "slatest.h"

#include "sb/err.h"

#include <stdlib.h>
#include <time.h>

/* --- civil dates ------------------------------------------------------------------ */

static void test_civil_days(void **state)
{
    (void)state;
    /* Anchors computed independently (Python datetime). */
    assert_int_equal(sb_tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(sb_tz_days_from_civil(2024, 5, 20), 19863);
    assert_int_equal(sb_tz_days_from_civil(2000, 2, 29), 11016);
    assert_int_equal(sb_tz_days_from_civil(1900, 3, 1), -25508);
    assert_int_equal(sb_tz_days_from_civil(1, 1, 1), -719162);
    assert_int_equal(utc_ms(2024, 5, 20, 6, 0, 0), 1716184800000LL);
    for (int64_t day = -800000; day < 3000000; day += 997) {
        int64_t y;
        int m, d;
        sb_tz_civil_from_days(day, &y, &m, &d);
        assert_int_equal(sb_tz_days_from_civil(y, m, d), day);
    }
    assert_int_equal(sb_tz_iso_weekday(0), 4);                                  /* Thursday */
    assert_int_equal(sb_tz_iso_weekday(sb_tz_days_from_civil(2024, 5, 20)), 1); /* Monday */
    assert_int_equal(sb_tz_iso_weekday(sb_tz_days_from_civil(2024, 9, 29)), 7); /* Sunday */
    assert_int_equal(sb_tz_iso_weekday(-1), 3);
    assert_int_equal(sb_tz_floor_div(-1, 86400), -1);
    assert_int_equal(sb_tz_floor_div(86400, 86400), 1);
}

/* --- zones -------------------------------------------------------------------------- */

static int64_t utc_s(int y, int mo, int d, int h, int mi, int s)
{
    return utc_ms(y, mo, d, h, mi, s) / 1000;
}

static int64_t local_s(int y, int mo, int d, int h, int mi, int s)
{
    return utc_s(y, mo, d, h, mi, s); /* the same arithmetic on the wall clock */
}

static void test_tz_berlin(void **state)
{
    struct sb_tz *tz = load_tz("Europe/Berlin");
    (void)state;
    assert_string_equal(sb_tz_name(tz), "Europe/Berlin");
    /* 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00 UTC. */
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2024, 3, 31, 0, 59, 59)), 3600);
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2024, 3, 31, 1, 0, 0)), 7200);
    assert_int_equal(sb_tz_next_transition(tz, utc_s(2024, 1, 1, 0, 0, 0)),
                     utc_s(2024, 3, 31, 1, 0, 0));
    /* 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00 UTC. */
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2024, 10, 27, 0, 59, 59)), 7200);
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2024, 10, 27, 1, 0, 0)), 3600);
    assert_int_equal(sb_tz_next_transition(tz, utc_s(2024, 3, 31, 1, 0, 0)),
                     utc_s(2024, 10, 27, 1, 0, 0));
    /* Wall clock to UTC: the gap maps to the jump, the fold to its first pass. */
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 3, 31, 1, 59, 59)),
                     utc_s(2024, 3, 31, 0, 59, 59));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 3, 31, 2, 0, 0)),
                     utc_s(2024, 3, 31, 1, 0, 0));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 3, 31, 2, 30, 0)),
                     utc_s(2024, 3, 31, 1, 0, 0));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 3, 31, 3, 0, 0)),
                     utc_s(2024, 3, 31, 1, 0, 0));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 3, 31, 3, 0, 1)),
                     utc_s(2024, 3, 31, 1, 0, 1));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 10, 27, 2, 30, 0)),
                     utc_s(2024, 10, 27, 0, 30, 0));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 10, 27, 3, 0, 0)),
                     utc_s(2024, 10, 27, 2, 0, 0));
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2024, 7, 1, 12, 0, 0)),
                     utc_s(2024, 7, 1, 10, 0, 0));
    /* Beyond the file's last transition (2037) the footer rule CET-1CEST,M3.5.0,
     * M10.5.0/3 decides: 2040-03-25 and 2040-10-28 at 01:00 UTC, 2099 as well. */
    assert_int_equal(sb_tz_next_transition(tz, utc_s(2040, 1, 1, 0, 0, 0)),
                     utc_s(2040, 3, 25, 1, 0, 0));
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2040, 3, 25, 0, 59, 59)), 3600);
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2040, 3, 25, 1, 0, 0)), 7200);
    assert_int_equal(sb_tz_next_transition(tz, utc_s(2040, 3, 25, 1, 0, 0)),
                     utc_s(2040, 10, 28, 1, 0, 0));
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2099, 10, 25, 0, 59, 59)), 7200);
    assert_int_equal(sb_tz_offset_at(tz, utc_s(2099, 10, 25, 1, 0, 0)), 3600);
    assert_int_equal(sb_tz_local_to_utc(tz, local_s(2099, 3, 29, 2, 30, 0)),
                     utc_s(2099, 3, 29, 1, 0, 0));
    /* The last listed transition hands over to the rule without a seam. */
    assert_int_equal(sb_tz_next_transition(tz, utc_s(2037, 10, 25, 1, 0, 0)),
                     utc_s(2038, 3, 28, 1, 0, 0));
    sb_tz_destroy(tz);
}

static void test_tz_new_york_and_south(void **state)
{
    struct sb_tz *ny = load_tz("America/New_York");
    struct sb_tz *syd = load_tz("Australia/Sydney");
    struct sb_tz *sh = load_tz("Asia/Shanghai");
    (void)state;
    /* 2024-03-10 02:00 EST → 03:00 EDT (07:00 UTC); 2024-11-03 02:00 EDT → 01:00 EST. */
    assert_int_equal(sb_tz_offset_at(ny, utc_s(2024, 3, 10, 6, 59, 59)), -5 * 3600);
    assert_int_equal(sb_tz_offset_at(ny, utc_s(2024, 3, 10, 7, 0, 0)), -4 * 3600);
    assert_int_equal(sb_tz_offset_at(ny, utc_s(2024, 11, 3, 5, 59, 59)), -4 * 3600);
    assert_int_equal(sb_tz_offset_at(ny, utc_s(2024, 11, 3, 6, 0, 0)), -5 * 3600);
    assert_int_equal(sb_tz_local_to_utc(ny, local_s(2024, 3, 10, 2, 30, 0)),
                     utc_s(2024, 3, 10, 7, 0, 0));
    assert_int_equal(sb_tz_local_to_utc(ny, local_s(2024, 11, 3, 1, 30, 0)),
                     utc_s(2024, 11, 3, 5, 30, 0));
    /* Sydney: DST ends 2024-04-07 03:00 AEDT (16:00 UTC the day before), starts
     * 2024-10-06 02:00 AEST (16:00 UTC the day before). */
    assert_int_equal(sb_tz_offset_at(syd, utc_s(2024, 4, 6, 15, 59, 59)), 11 * 3600);
    assert_int_equal(sb_tz_offset_at(syd, utc_s(2024, 4, 6, 16, 0, 0)), 10 * 3600);
    assert_int_equal(sb_tz_offset_at(syd, utc_s(2024, 10, 5, 15, 59, 59)), 10 * 3600);
    assert_int_equal(sb_tz_offset_at(syd, utc_s(2024, 10, 5, 16, 0, 0)), 11 * 3600);
    /* Shanghai: +08:00 without DST since 1991. */
    assert_int_equal(sb_tz_offset_at(sh, utc_s(2024, 7, 1, 0, 0, 0)), 8 * 3600);
    assert_int_equal(sb_tz_offset_at(sh, utc_s(2090, 1, 1, 0, 0, 0)), 8 * 3600);
    assert_int_equal(sb_tz_next_transition(sh, utc_s(2024, 7, 1, 0, 0, 0)), INT64_MAX);
    sb_tz_destroy(ny);
    sb_tz_destroy(syd);
    sb_tz_destroy(sh);
}

/* Offsets from the C library (localtime_r with TZ set; the test is single-threaded). */
static int32_t libc_offset(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (localtime_r(&tt, &tm) == NULL)
        fail_msg("localtime_r failed for %" PRId64, t);
    int64_t wall = sb_tz_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
                   tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    return (int32_t)(wall - t);
}

static void test_tz_against_libc(void **state)
{
    static const char *const zones[] = {
        "Europe/Berlin", "America/New_York",  "Asia/Shanghai",     "Australia/Sydney",
        "Europe/Dublin", "America/Sao_Paulo", "Africa/Casablanca", "Asia/Kolkata",
        "Pacific/Apia",  "America/Santiago",  "Asia/Tehran",       "Europe/London",
    };
    uint64_t rnd = 42;
    char *old = getenv("TZ") != NULL ? strdup(getenv("TZ")) : NULL;
    (void)state;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct sb_tz *tz = load_tz(zones[z]);
        char env[128];
        snprintf(env, sizeof(env), ":%s", zones[z]);
        setenv("TZ", env, 1);
        tzset();
        int64_t lo = utc_s(1975, 1, 1, 0, 0, 0), hi = utc_s(2150, 1, 1, 0, 0, 0);
        for (int i = 0; i < 20000; i++) {
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t t = lo + (int64_t)((rnd >> 11) % (uint64_t)(hi - lo));
            int32_t want = libc_offset(t), got = sb_tz_offset_at(tz, t);
            if (want != got)
                fail_msg("%s at %" PRId64 ": offset %d, C library says %d", zones[z], t, got, want);
        }
        /* Every transition found by walking matches the library on both sides, and the
         * wall clock maps back to the first instant that shows it. */
        for (int64_t t = lo; t < hi;) {
            int64_t next = sb_tz_next_transition(tz, t);
            if (next >= hi)
                break;
            assert_int_equal(sb_tz_offset_at(tz, next - 1), libc_offset(next - 1));
            assert_int_equal(sb_tz_offset_at(tz, next), libc_offset(next));
            assert_true(sb_tz_offset_at(tz, next - 1) != sb_tz_offset_at(tz, next));
            int64_t wall = next + sb_tz_offset_at(tz, next);
            assert_true(sb_tz_local_to_utc(tz, wall) <= next);
            t = next;
        }
        sb_tz_destroy(tz);
    }
    if (old != NULL) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void test_tz_posix_rules(void **state)
{
    char err[256];
    struct sb_tz *rule = sb_tz_new_posix("AEST-10AEDT,M10.1.0,M4.1.0/3", err, sizeof(err));
    struct sb_tz *file = load_tz("Australia/Sydney");
    struct sb_tz *dub = sb_tz_new_posix("IST-1GMT0,M10.5.0,M3.5.0/1", err, sizeof(err));
    struct sb_tz *fixed = sb_tz_new_posix("<+0330>-3:30", err, sizeof(err));
    (void)state;
    assert_non_null(rule);
    assert_non_null(dub);
    assert_non_null(fixed);
    for (int64_t t = utc_s(2008, 1, 1, 0, 0, 0); t < utc_s(2060, 1, 1, 0, 0, 0); t += 3571)
        assert_int_equal(sb_tz_offset_at(rule, t), sb_tz_offset_at(file, t));
    /* Dublin's "negative DST": GMT in winter, IST (+1) in summer. */
    assert_int_equal(sb_tz_offset_at(dub, utc_s(2024, 1, 15, 12, 0, 0)), 0);
    assert_int_equal(sb_tz_offset_at(dub, utc_s(2024, 7, 15, 12, 0, 0)), 3600);
    assert_int_equal(sb_tz_offset_at(fixed, utc_s(2024, 7, 15, 12, 0, 0)), 12600);
    static const char *const bad[] = {"",
                                      "X",
                                      "CET",
                                      "CET-1CEST,M3.5",
                                      "CET-1CEST,M13.1.0,M10.5.0",
                                      "CET-25",
                                      "<+03",
                                      "CET-1CEST,J0,J365",
                                      "CET-1 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        struct sb_tz *tz = sb_tz_new_posix(bad[i], err, sizeof(err));
        if (tz != NULL)
            fail_msg("accepted bad TZ string \"%s\"", bad[i]);
        assert_true(err[0] != '\0');
    }
    sb_tz_destroy(rule);
    sb_tz_destroy(file);
    sb_tz_destroy(dub);
    sb_tz_destroy(fixed);
}

static void test_tz_bad_names_and_files(void **state)
{
    static const char *const names[] = {"../etc/passwd",      "/etc/localtime",
                                        "Europe/../../etc/x", "Europe//Berlin",
                                        "Europe/Nowhere",     "",
                                        "Europe/Berlin\n",    "Etc/"};
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        err[0] = '\0';
        struct sb_tz *tz = sb_tz_load(names[i], NULL, err, sizeof(err));
        if (tz != NULL)
            fail_msg("loaded \"%s\"", names[i]);
        assert_true(err[0] != '\0');
    }
    /* Every truncation and many single-byte corruptions of a real file: refused or
     * parsed, never read out of bounds (AddressSanitizer watches). */
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
    assert_non_null(f);
    unsigned char buf[8192];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(len > 100 && len < sizeof(buf));
    struct sb_tz *whole = sb_tz_parse_tzif("Berlin", buf, len, err, sizeof(err));
    assert_non_null(whole);
    sb_tz_destroy(whole);
    for (size_t n = 0; n < len; n++) {
        unsigned char *copy = malloc(n + 1);
        memcpy(copy, buf, n);
        struct sb_tz *tz = sb_tz_parse_tzif("cut", copy, n, err, sizeof(err));
        if (tz != NULL)
            assert_int_equal(sb_tz_offset_at(tz, utc_s(2024, 7, 1, 0, 0, 0)), 7200);
        sb_tz_destroy(tz);
        free(copy);
    }
    uint64_t rnd = 7;
    for (int i = 0; i < 4000; i++) {
        unsigned char copy[8192];
        memcpy(copy, buf, len);
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        copy[(rnd >> 33) % len] = (unsigned char)(rnd >> 8);
        struct sb_tz *tz = sb_tz_parse_tzif("flip", copy, len, err, sizeof(err));
        if (tz != NULL) {
            for (int64_t t = utc_s(1900, 1, 1, 0, 0, 0); t < utc_s(2100, 1, 1, 0, 0, 0);
                 t += 86400 * 97) {
                int32_t off = sb_tz_offset_at(tz, t);
                assert_true(off >= -SB_TZ_MAX_OFFSET_S && off <= SB_TZ_MAX_OFFSET_S);
                int64_t back = sb_tz_local_to_utc(tz, t + off);
                assert_true(back <= t);
            }
        }
        sb_tz_destroy(tz);
    }
}

/* --- calendars ---------------------------------------------------------------------- */

/* Shanghai wall clock (UTC+8) to UTC ms. */
static int64_t cst(int y, int mo, int d, int h, int mi)
{
    return utc_ms(y, mo, d, h, mi, 0) - 8 * HOUR_MS;
}

static void test_cal_shanghai_holidays(void **state)
{
    struct sb_cal *cal = shanghai_cal();
    int64_t out = 0;
    (void)state;
    /* Friday 17:00 + 2 h: 1 h on Friday, Saturday off, Sunday 29 is a compensatory
     * working day with Monday's hours: 09:00 + 1 h. */
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 9, 27, 17, 0), 2 * HOUR_MS, &out), 0);
    assert_ms_equal(out, cst(2024, 9, 29, 10, 0));
    /* Monday 30 17:00 + 2 h: the National Day week is off, Tuesday 8 October 10:00. */
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 9, 30, 17, 0), 2 * HOUR_MS, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 8, 10, 0));
    /* Lunch break: 11:30 + 1 h = 13:30. */
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 9, 30, 11, 30), HOUR_MS, &out), 0);
    assert_ms_equal(out, cst(2024, 9, 30, 13, 30));
    /* A deadline that uses up the day ends at the close, not the next morning. */
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 9, 30, 17, 0), HOUR_MS, &out), 0);
    assert_ms_equal(out, cst(2024, 9, 30, 18, 0));
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 9, 30, 17, 0), HOUR_MS + 1, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 8, 9, 0) + 1);
    /* From a closed time: Saturday evening + 30 min = Sunday 29 (working) 09:30. */
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 9, 28, 20, 0), 30 * MIN_MS, &out), 0);
    assert_ms_equal(out, cst(2024, 9, 29, 9, 30));
    /* Saturday 12 October is a working day too (Friday 1 h + Saturday 8 h ends at its
     * close); Sunday 13 is not. */
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 10, 11, 17, 0), 9 * HOUR_MS, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 12, 18, 0));
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 10, 11, 17, 0), 9 * HOUR_MS + MIN_MS, &out),
                     0);
    assert_ms_equal(out, cst(2024, 10, 14, 9, 1));
    assert_int_equal(sb_cal_add_business(cal, cst(2024, 10, 1, 0, 0), 0, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 1, 0, 0));

    /* Business time between: Friday 8 h + Sunday 8 h + Monday 8 h. */
    assert_int_equal(
        sb_cal_business_between(cal, cst(2024, 9, 27, 9, 0), cst(2024, 10, 8, 9, 0), &out), 0);
    assert_int_equal(out, 24 * HOUR_MS);
    assert_int_equal(
        sb_cal_business_between(cal, cst(2024, 10, 8, 9, 0), cst(2024, 9, 27, 9, 0), &out), 0);
    assert_int_equal(out, -24 * HOUR_MS);
    assert_int_equal(
        sb_cal_business_between(cal, cst(2024, 9, 30, 11, 0), cst(2024, 9, 30, 14, 0), &out), 0);
    assert_int_equal(out, 2 * HOUR_MS);
    assert_int_equal(
        sb_cal_business_between(cal, cst(2024, 10, 2, 0, 0), cst(2024, 10, 6, 0, 0), &out), 0);
    assert_int_equal(out, 0);

    /* Open or not. */
    assert_true(sb_cal_is_open(cal, cst(2024, 9, 29, 9, 0)));
    assert_false(sb_cal_is_open(cal, cst(2024, 9, 29, 12, 0)));
    assert_true(sb_cal_is_open(cal, cst(2024, 9, 29, 17, 59)));
    assert_false(sb_cal_is_open(cal, cst(2024, 9, 29, 18, 0)));
    assert_false(sb_cal_is_open(cal, cst(2024, 10, 3, 10, 0)));
    assert_false(sb_cal_is_open(cal, cst(2024, 9, 28, 10, 0)));
    assert_int_equal(sb_cal_next_open(cal, cst(2024, 10, 1, 10, 0), &out), 0);
    assert_ms_equal(out, cst(2024, 10, 8, 9, 0));
    assert_int_equal(sb_cal_next_open(cal, cst(2024, 10, 8, 12, 30), &out), 0);
    assert_ms_equal(out, cst(2024, 10, 8, 13, 0));
    assert_int_equal(sb_cal_next_open(cal, cst(2024, 10, 8, 10, 0), &out), 0);
    assert_ms_equal(out, cst(2024, 10, 8, 10, 0));
    assert_true(sb_cal_is_working_day(cal, sb_tz_days_from_civil(2024, 9, 29)));
    assert_false(sb_cal_is_working_day(cal, sb_tz_days_from_civil(2024, 10, 7)));
    assert_int_equal(sb_cal_local_day(cal, cst(2024, 9, 29, 0, 0)),
                     sb_tz_days_from_civil(2024, 9, 29));
    assert_int_equal(sb_cal_local_day(cal, cst(2024, 9, 29, 0, 0) - 1),
                     sb_tz_days_from_civil(2024, 9, 28));
    sb_cal_destroy(cal);
}

static void test_cal_working_days(void **state)
{
    struct sb_cal *cal = shanghai_cal();
    int64_t out = 0;
    (void)state;
    /* "1 working day" from Monday 30 September: the next working day is 8 October. */
    assert_int_equal(sb_cal_add_working_days(cal, cst(2024, 9, 30, 10, 0), 1, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 8, 18, 0));
    /* "7–15 working days" from Friday 27 September 15:00: 29, 30 Sep, 8, 9, 10, 11,
     * 12 (Saturday, compensatory) → the 7th ends 12 October; then 14–18, 21, 22, 23. */
    assert_int_equal(sb_cal_add_working_days(cal, cst(2024, 9, 27, 15, 0), 7, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 12, 18, 0));
    assert_int_equal(sb_cal_add_working_days(cal, cst(2024, 9, 27, 15, 0), 15, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 23, 18, 0));
    /* The day of the instant never counts, even before opening. */
    assert_int_equal(sb_cal_add_working_days(cal, cst(2024, 10, 8, 7, 0), 1, &out), 0);
    assert_ms_equal(out, cst(2024, 10, 9, 18, 0));
    assert_int_equal(sb_cal_add_working_days(cal, cst(2024, 10, 8, 7, 0), 0, &out), SB_E_INVAL);
    sb_cal_destroy(cal);
}

/* Berlin: Monday–Friday 08:00–17:00 and a Sunday night shift 01:00–04:00. */
static struct sb_cal *berlin_cal(void)
{
    char err[256];
    struct sb_cal_hours hours[6];
    for (int wd = 1; wd <= 5; wd++)
        hours[wd - 1] = (struct sb_cal_hours){wd, 8 * 3600, 17 * 3600};
    hours[5] = (struct sb_cal_hours){7, 1 * 3600, 4 * 3600};
    struct sb_cal_conf conf = {"de-support", hours, 6, NULL, 0};
    struct sb_cal *cal = sb_cal_new(&conf, load_tz("Europe/Berlin"), err, sizeof(err));
    if (cal == NULL)
        fail_msg("%s", err);
    return cal;
}

static void test_cal_dst_berlin(void **state)
{
    struct sb_cal *cal = berlin_cal();
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS], out = 0;
    (void)state;
    /* Spring forward (Sunday 31 March 2024): 01:00 CET–04:00 CEST lasts 2 h. */
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 3, 31), s, e), 1);
    assert_ms_equal(s[0], utc_ms(2024, 3, 31, 0, 0, 0));
    assert_ms_equal(e[0], utc_ms(2024, 3, 31, 2, 0, 0));
    /* Fall back (Sunday 27 October 2024): 01:00 CEST–04:00 CET lasts 4 h. */
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 10, 27), s, e), 1);
    assert_ms_equal(s[0], utc_ms(2024, 10, 26, 23, 0, 0));
    assert_ms_equal(e[0], utc_ms(2024, 10, 27, 3, 0, 0));
    /* An ordinary Sunday: 3 h. */
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 5, 19), s, e), 1);
    assert_int_equal(e[0] - s[0], 3 * HOUR_MS);
    /* Weeks holding each change: 5 × 9 h plus the Sunday. */
    assert_int_equal(sb_cal_business_between(cal, utc_ms(2024, 3, 24, 22, 0, 0),
                                             utc_ms(2024, 3, 31, 22, 0, 0), &out),
                     0);
    assert_int_equal(out, 47 * HOUR_MS);
    assert_int_equal(sb_cal_business_between(cal, utc_ms(2024, 10, 20, 22, 0, 0),
                                             utc_ms(2024, 10, 27, 23, 0, 0), &out),
                     0);
    assert_int_equal(out, 49 * HOUR_MS);
    /* Inside the repeated hour: 02:30 CEST (00:30 UTC) + 2 h = 02:30 UTC (03:30 CET). */
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 10, 27, 0, 30, 0), 2 * HOUR_MS, &out),
                     0);
    assert_ms_equal(out, utc_ms(2024, 10, 27, 2, 30, 0));
    /* Friday 16:00 CET + 3 h: 1 h Friday, 2 h of the short Sunday, Monday 08:00 CEST. */
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 3, 29, 15, 0, 0), 3 * HOUR_MS, &out), 0);
    assert_ms_equal(out, utc_ms(2024, 3, 31, 2, 0, 0));
    assert_int_equal(
        sb_cal_add_business(cal, utc_ms(2024, 3, 29, 15, 0, 0), 3 * HOUR_MS + 60000, &out), 0);
    assert_ms_equal(out, utc_ms(2024, 4, 1, 6, 1, 0));
    sb_cal_destroy(cal);
}

static void test_cal_dst_24h_and_new_york(void **state)
{
    char err[256];
    struct sb_cal_hours all[7], ny_hours[5];
    int64_t out = 0;
    (void)state;
    for (int wd = 1; wd <= 7; wd++)
        all[wd - 1] = (struct sb_cal_hours){wd, 0, 86400};
    struct sb_cal_conf conf = {"de-24x7", all, 7, NULL, 0};
    struct sb_cal *cal = sb_cal_new(&conf, load_tz("Europe/Berlin"), err, sizeof(err));
    assert_non_null(cal);
    /* Around the clock: a local day lasts 23 h in March, 25 h in October, and business
     * time equals calendar time. */
    assert_int_equal(sb_cal_business_between(cal, utc_ms(2024, 3, 30, 23, 0, 0),
                                             utc_ms(2024, 3, 31, 22, 0, 0), &out),
                     0);
    assert_int_equal(out, 23 * HOUR_MS);
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 10, 26, 22, 0, 0), 25 * HOUR_MS, &out),
                     0);
    assert_ms_equal(out, utc_ms(2024, 10, 27, 23, 0, 0));
    assert_true(sb_cal_is_open(cal, utc_ms(2024, 3, 31, 1, 30, 0)));
    sb_cal_destroy(cal);

    for (int wd = 1; wd <= 5; wd++)
        ny_hours[wd - 1] = (struct sb_cal_hours){wd, 9 * 3600, 17 * 3600};
    struct sb_cal_conf nyc = {"us-east", ny_hours, 5, NULL, 0};
    cal = sb_cal_new(&nyc, load_tz("America/New_York"), err, sizeof(err));
    assert_non_null(cal);
    /* Friday 16:00 EST (21:00 UTC) + 2 h → Monday 10:00 EDT (14:00 UTC). */
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 3, 8, 21, 0, 0), 2 * HOUR_MS, &out), 0);
    assert_ms_equal(out, utc_ms(2024, 3, 11, 14, 0, 0));
    /* Friday 16:00 EDT (20:00 UTC) + 2 h → Monday 10:00 EST (15:00 UTC). */
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 11, 1, 20, 0, 0), 2 * HOUR_MS, &out), 0);
    assert_ms_equal(out, utc_ms(2024, 11, 4, 15, 0, 0));
    assert_int_equal(sb_cal_add_working_days(cal, utc_ms(2024, 11, 1, 20, 0, 0), 1, &out), 0);
    assert_ms_equal(out, utc_ms(2024, 11, 4, 22, 0, 0));
    sb_cal_destroy(cal);
}

static void test_cal_gap_joins_and_compensatory_weekday(void **state)
{
    char err[256];
    int64_t s[SB_CAL_MAX_SPANS], e[SB_CAL_MAX_SPANS];
    /* Sunday 00:30–02:00 and 02:30–05:00 in Berlin: on 31 March the gap joins them. */
    struct sb_cal_hours hours[] = {{7, 1800, 7200}, {7, 9000, 18000}, {2, 36000, 39600}};
    struct sb_cal_holiday hol[] = {{2024, 5, 18, true, 2}, {2024, 5, 21, false, 0}};
    struct sb_cal_conf conf = {"odd", hours, 3, hol, 2};
    struct sb_cal *cal = sb_cal_new(&conf, load_tz("Europe/Berlin"), err, sizeof(err));
    (void)state;
    assert_non_null(cal);
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 3, 31), s, e), 1);
    assert_ms_equal(s[0], utc_ms(2024, 3, 30, 23, 30, 0));
    assert_ms_equal(e[0], utc_ms(2024, 3, 31, 3, 0, 0));
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 4, 7), s, e), 2);
    /* Saturday 18 May works with Tuesday's hours (as_weekday 2); Tuesday 21 is off. */
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 5, 18), s, e), 1);
    assert_ms_equal(s[0], utc_ms(2024, 5, 18, 8, 0, 0));
    assert_ms_equal(e[0], utc_ms(2024, 5, 18, 9, 0, 0));
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 5, 21), s, e), 0);
    assert_int_equal(sb_cal_day_intervals(cal, sb_tz_days_from_civil(2024, 5, 28), s, e), 1);
    sb_cal_destroy(cal);
}

static void test_cal_invalid(void **state)
{
    char err[256];
    int64_t out;
    struct sb_cal_hours bad_hours[][1] = {
        {{0, 0, 3600}},    {{8, 0, 3600}},  {{1, 3600, 3600}},
        {{1, 7200, 3600}}, {{1, 0, 86401}}, {{1, -1, 3600}},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad_hours) / sizeof(bad_hours[0]); i++) {
        struct sb_cal_conf conf = {"bad", bad_hours[i], 1, NULL, 0};
        err[0] = '\0';
        assert_null(sb_cal_new(&conf, load_tz("UTC"), err, sizeof(err)));
        assert_true(strstr(err, "calendar bad") != NULL);
    }
    struct sb_cal_hours ok = {1, 0, 3600};
    struct sb_cal_holiday bad_days[][2] = {
        {{2023, 2, 29, false, 0}, {2024, 1, 1, false, 0}},
        {{2024, 1, 1, false, 0}, {2024, 1, 1, true, 0}},
        {{2024, 13, 1, false, 0}, {2024, 1, 2, false, 0}},
        {{2024, 1, 5, true, 9}, {2024, 1, 2, false, 0}},
    };
    for (size_t i = 0; i < sizeof(bad_days) / sizeof(bad_days[0]); i++) {
        struct sb_cal_conf conf = {"bad", &ok, 1, bad_days[i], 2};
        assert_null(sb_cal_new(&conf, load_tz("UTC"), err, sizeof(err)));
    }
    /* A calendar without hours never opens: the searches give up, they do not spin. */
    struct sb_cal_conf none = {"closed", NULL, 0, NULL, 0};
    struct sb_cal *cal = sb_cal_new(&none, load_tz("UTC"), err, sizeof(err));
    assert_non_null(cal);
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 1, 1, 0, 0, 0), 1, &out), SB_E_NOENT);
    assert_int_equal(sb_cal_next_open(cal, utc_ms(2024, 1, 1, 0, 0, 0), &out), SB_E_NOENT);
    assert_int_equal(sb_cal_add_working_days(cal, utc_ms(2024, 1, 1, 0, 0, 0), 1, &out),
                     SB_E_NOENT);
    assert_int_equal(sb_cal_add_business(cal, INT64_MAX - 5, 1, &out), SB_E_INVAL);
    assert_int_equal(sb_cal_add_business(cal, utc_ms(2024, 1, 1, 0, 0, 0), -1, &out), SB_E_INVAL);
    assert_int_equal(sb_cal_business_between(cal, INT64_MIN, 0, &out), SB_E_INVAL);
    sb_cal_destroy(cal);
    /* The time zone is taken over even when the calendar is refused (ASan: no leak). */
    assert_null(sb_cal_new(NULL, load_tz("UTC"), err, sizeof(err)));
}

static void test_cal_parse(void **state)
{
    int32_t secs = -1;
    int y, m, d;
    (void)state;
    assert_int_equal(sb_cal_parse_time("09:00", &secs), 0);
    assert_int_equal(secs, 32400);
    assert_int_equal(sb_cal_parse_time("17:30:15", &secs), 0);
    assert_int_equal(secs, 63015);
    assert_int_equal(sb_cal_parse_time("24:00:00", &secs), 0);
    assert_int_equal(secs, 86400);
    static const char *const bad_t[] = {
        "24:01", "9:00", "09:60", "09:00:", "09:00:00.5", "", "ab:cd"};
    for (size_t i = 0; i < sizeof(bad_t) / sizeof(bad_t[0]); i++)
        assert_int_equal(sb_cal_parse_time(bad_t[i], &secs), SB_E_INVAL);
    assert_int_equal(sb_cal_parse_date("2024-02-29", &y, &m, &d), 0);
    assert_int_equal(y * 10000 + m * 100 + d, 20240229);
    static const char *const bad_d[] = {"2023-02-29",  "2024-2-01",  "2024-13-01",
                                        "2024-01-01x", "0000-01-01", ""};
    for (size_t i = 0; i < sizeof(bad_d) / sizeof(bad_d[0]); i++)
        assert_int_equal(sb_cal_parse_date(bad_d[i], &y, &m, &d), SB_E_INVAL);
}

/* add_business and business_between agree: for random instants and amounts on the
 * Berlin and Shanghai calendars, the time between from and from + amount is amount,
 * and the result is open time or the close of an interval. */
static void test_cal_add_between_agree(void **state)
{
    struct sb_cal *cals[2] = {berlin_cal(), shanghai_cal()};
    uint64_t rnd = 99;
    (void)state;
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 3000; i++) {
            int64_t from, amount, to, back;
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            from = utc_ms(2024, 1, 1, 0, 0, 0) + (int64_t)((rnd >> 20) % (366ULL * 86400000));
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            amount = 1 + (int64_t)((rnd >> 20) % (60ULL * HOUR_MS));
            assert_int_equal(sb_cal_add_business(cals[c], from, amount, &to), 0);
            assert_int_equal(sb_cal_business_between(cals[c], from, to, &back), 0);
            if (back != amount)
                fail_msg("calendar %d: from %" PRId64 " + %" PRId64 " = %" PRId64
                         ", between gives %" PRId64,
                         c, from, amount, to, back);
            assert_true(sb_cal_is_open(cals[c], to - 1));
        }
        sb_cal_destroy(cals[c]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_days),
        cmocka_unit_test(test_tz_berlin),
        cmocka_unit_test(test_tz_new_york_and_south),
        cmocka_unit_test(test_tz_against_libc),
        cmocka_unit_test(test_tz_posix_rules),
        cmocka_unit_test(test_tz_bad_names_and_files),
        cmocka_unit_test(test_cal_shanghai_holidays),
        cmocka_unit_test(test_cal_working_days),
        cmocka_unit_test(test_cal_dst_berlin),
        cmocka_unit_test(test_cal_dst_24h_and_new_york),
        cmocka_unit_test(test_cal_gap_joins_and_compensatory_weekday),
        cmocka_unit_test(test_cal_invalid),
        cmocka_unit_test(test_cal_parse),
        cmocka_unit_test(test_cal_add_between_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
