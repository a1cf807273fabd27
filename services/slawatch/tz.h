/* IANA time zones for business calendars: a TZif file of the system tz database
 * (RFC 8536, versions 1–4) read into an immutable object, with the POSIX TZ rule of its
 * footer for instants after the last listed transition, and the two conversions a
 * calendar needs — the UTC offset at an instant, and the first instant at which the
 * wall clock reads a given local time (gaps and folds of DST made explicit).
 *
 * Reading the file ourselves (instead of setting TZ and calling localtime) keeps the
 * library free of process-global state: several zones can be used at once, from any
 * thread, once loaded. Instants are seconds since the epoch (UTC) unless named _ms.
 * Pure logic apart from sb_tz_load, which reads one file. */
#ifndef SB_SLAWATCH_TZ_H
#define SB_SLAWATCH_TZ_H

#include <stddef.h>
#include <stdint.h>

/* Supported instants: years 1 to 9999 (UTC), in seconds. */
#define SB_TZ_MIN_S (-62135596800LL)
#define SB_TZ_MAX_S (253402300799LL)
/* A UTC offset never exceeds 26 h either way (RFC 8536 §3.2). */
#define SB_TZ_MAX_OFFSET_S (26 * 3600)
/* The largest TZif file accepted. */
#define SB_TZ_MAX_FILE (1 << 20)

struct sb_tz;

/* Loads zone name ("Europe/Berlin", "UTC") from dir (NULL: /usr/share/zoneinfo). The
 * name is checked first (letters, digits, "._+-/", no "..", not absolute, at most 255
 * bytes). Returns a new zone, or NULL with the reason in errstr. Any thread. */
struct sb_tz *sb_tz_load(const char *name, const char *dir, char *errstr, size_t errstr_size);

/* Builds a zone from the bytes of a TZif file (untrusted: every count and index is
 * checked, len is capped at SB_TZ_MAX_FILE). name is copied for messages. Zones with
 * leap seconds ("right/…") are refused. Returns a new zone or NULL with errstr. */
struct sb_tz *sb_tz_parse_tzif(const char *name, const unsigned char *buf, size_t len, char *errstr,
                               size_t errstr_size);

/* Builds a zone from a POSIX TZ string alone ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+08>-8"), as found in a TZif footer. Returns a new zone or NULL with errstr. */
struct sb_tz *sb_tz_new_posix(const char *spec, char *errstr, size_t errstr_size);

/* Frees a zone; NULL is accepted. */
void sb_tz_destroy(struct sb_tz *tz);

/* The name given at load ("Europe/Berlin"); borrowed. */
const char *sb_tz_name(const struct sb_tz *tz);

/* Seconds east of UTC in force at utc_s (clamped into the supported range). */
int32_t sb_tz_offset_at(const struct sb_tz *tz, int64_t utc_s);

/* The first instant after utc_s at which the offset changes, or INT64_MAX. */
int64_t sb_tz_next_transition(const struct sb_tz *tz, int64_t utc_s);

/* The first instant at which the wall clock reads local_s (seconds since 1970-01-01
 * 00:00 local) or later: in a fold (a repeated hour) the first occurrence, in a gap
 * (a skipped hour) the instant of the jump. Monotone in local_s. */
int64_t sb_tz_local_to_utc(const struct sb_tz *tz, int64_t local_s);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant,
 * "chrono-Compatible Low-Level Date Algorithms"). */
int64_t sb_tz_days_from_civil(int64_t y, int m, int d);
void sb_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* ISO weekday (1 = Monday … 7 = Sunday) of a day number. */
int sb_tz_iso_weekday(int64_t days);
/* Floor division, for day numbers of negative instants. */
int64_t sb_tz_floor_div(int64_t a, int64_t b);

#endif
