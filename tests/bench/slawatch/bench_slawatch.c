/* Benchmark of the SLA core (services/slawatch) on one instance: N active clocks
 * (default 1 000 000) in one engine — memory per clock (resident set before and after,
 * next to the structure sizes), the rate of starts, a burst of B simultaneous
 * deadlines (default 100 000) fired against the real clock with the lateness of each
 * breach, the sustained rate of events as the remaining clocks warn, breach and
 * escalate, the rate of pause/resume and re-target operations, and a restart: every
 * clock snapshotted, restored into a new engine and its overdue steps fired at once.
 * Prints a table and one JSON line.
 *
 * Lateness is measured on the real (monotonic) clock: the burst's deadline D is mapped
 * to a real instant R, the engine is driven like the service's loop — advance(now) with
 * now = D + (real time − R), at most --batch steps per call — and each breach's
 * lateness is the real time at which the call that returned it completed, minus R plus
 * its deadline's offset from D. It covers the core alone, not producing to Kafka. */
#include "calendar.h"
#include "engine.h"
#include "policy.h"

#include "sb/util.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define V0 1716184800000LL /* Monday 2024-05-20 06:00 UTC (14:00 in Shanghai) */
#define HOUR 3600000LL

static uint64_t rnd_state = 20240520;

static uint64_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return rnd_state >> 17;
}

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    return (double)sb_mono_us() / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

struct snapshot {
    struct sb_sla_clock *v;
    size_t n;
};

static void collect(const struct sb_sla_clock *c, void *arg)
{
    struct snapshot *s = arg;
    s->v[s->n++] = *c;
}

static struct sb_cal *shanghai(void)
{
    char err[256];
    struct sb_cal_hours hours[10];
    for (int wd = 1; wd <= 5; wd++) {
        hours[2 * (wd - 1)] = (struct sb_cal_hours){wd, 9 * 3600, 12 * 3600};
        hours[2 * (wd - 1) + 1] = (struct sb_cal_hours){wd, 13 * 3600, 18 * 3600};
    }
    struct sb_cal_conf conf = {"bench", hours, 10, NULL, 0};
    struct sb_tz *tz = sb_tz_load("Asia/Shanghai", NULL, err, sizeof(err));
    struct sb_cal *cal = tz != NULL ? sb_cal_new(&conf, tz, err, sizeof(err)) : NULL;
    if (cal == NULL) {
        fprintf(stderr, "sb-slawatch-bench: %s\n", err);
        exit(2);
    }
    return cal;
}

int main(int argc, char **argv)
{
    long n_clocks = 1000000, burst = 100000, batch = 10000;
    double business_share = 0.1;
    int c;
    static const struct option opts[] = {
        {"clocks", required_argument, 0, 'n'},
        {"burst", required_argument, 0, 'b'},
        {"batch", required_argument, 0, 's'},
        {"business-share", required_argument, 0, 'f'},
        {0, 0, 0, 0},
    };
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            n_clocks = strtol(optarg, NULL, 10);
        else if (c == 'b')
            burst = strtol(optarg, NULL, 10);
        else if (c == 's')
            batch = strtol(optarg, NULL, 10);
        else if (c == 'f')
            business_share = strtod(optarg, NULL);
        else
            return 2;
    }
    if (n_clocks < 1 || n_clocks > 20000000 || burst < 1 || burst > n_clocks || batch < 1 ||
        business_share < 0 || business_share > 1) {
        fprintf(stderr, "usage: sb-slawatch-bench [--clocks 1000000] [--burst 100000] "
                        "[--batch 10000] [--business-share 0.1]\n");
        return 2;
    }

    char err[256], ticket[32];
    struct sb_sla_policies *pol = sb_sla_policies_default();
    struct sb_sla_situation sit = {SB_BAND_P2, SB_CHANNEL_CHAT, NULL, SB_PERIOD_NONE};
    struct sb_sla_target p2;
    struct sb_sla_events ev = {0};
    struct sb_sla_engine_opts o;
    uint16_t cal;

    if (sb_sla_policies_choose(pol, SB_SLA_FIRST_RESPONSE, &sit, &p2) != 0)
        return 1;
    sb_sla_policies_destroy(pol);

    /* --- 1. start N clocks, memory ----------------------------------------------- */
    long rss0 = rss_bytes();
    sb_sla_engine_opts_default(&o);
    o.expected_clocks = (size_t)n_clocks;
    struct sb_sla_engine *e = sb_sla_engine_new(&o, err, sizeof(err));
    if (e == NULL || sb_sla_engine_add_calendar(e, shanghai(), &cal) != 0)
        return 1;
    /* Room for the start events, reused: not counted as clock memory. */
    struct sb_sla_events scratch = {0};
    double t0 = wall_s(), c0 = cpu_s();
    long business = 0;
    for (long i = 0; i < n_clocks; i++) {
        struct sb_sla_start s = {ticket, SB_SLA_FIRST_RESPONSE, SB_BAND_P2, p2, 0, V0};
        snprintf(ticket, sizeof(ticket), "T-%08ld", i);
        if (i >= burst) {
            /* The others: resolution targets of 4–72 h, some in business time. */
            s.kind = SB_SLA_RESOLUTION;
            s.band = (enum sb_sla_band)(1 + rnd() % 4);
            s.target.target_ms = 4 * HOUR + (int64_t)(rnd() % (68 * (uint64_t)HOUR));
            if ((double)(rnd() % 1000000) < business_share * 1e6) {
                s.cal = cal;
                s.target.business_time = true;
                business++;
            }
        }
        if (sb_sla_engine_start(e, &s, &scratch) != 0) {
            fprintf(stderr, "sb-slawatch-bench: start %ld failed\n", i);
            return 1;
        }
        sb_sla_events_clear(&scratch);
    }
    double start_wall = wall_s() - t0, start_cpu = cpu_s() - c0;
    sb_sla_events_free(&scratch);
    long rss1 = rss_bytes();
    struct sb_sla_engine_stats st;
    sb_sla_engine_stats(e, &st);
    double rss_per_clock = (double)(rss1 - rss0) / (double)n_clocks;
    double bytes_per_clock = (double)st.bytes / (double)n_clocks;

    /* --- 2. the burst's warnings (45 and 54 min), virtual time ------------------- */
    c0 = cpu_s();
    t0 = wall_s();
    sb_sla_engine_advance(e, V0 + 59 * 60000, SIZE_MAX, &ev);
    double warn_wall = wall_s() - t0;
    size_t warn_events = ev.n;
    sb_sla_events_clear(&ev);

    /* --- 3. the burst: B deadlines at D = V0 + 1 h, on the real clock -------------- */
    const int64_t D = V0 + HOUR;
    double *late = sb_malloc((size_t)burst * sizeof(double));
    size_t n_late = 0, burst_events = 0, calls = 0;
    int64_t r0 = sb_mono_us() + 100000; /* D happens 100 ms from now */
    double burst_cpu0 = cpu_s();
    while (n_late < (size_t)burst) {
        int64_t now_us = sb_mono_us();
        if (now_us < r0) {
            sb_sleep_ms(1);
            continue;
        }
        int64_t now_v = D + (now_us - r0) / 1000;
        sb_sla_engine_advance(e, now_v, (size_t)batch, &ev);
        calls++;
        int64_t done_us = sb_mono_us();
        for (size_t i = 0; i < ev.n; i++) {
            if (ev.v[i].type != SB_SLA_EV_BREACHED || n_late == (size_t)burst)
                continue;
            int64_t due_real_us = r0 + (ev.v[i].due_ms - D) * 1000;
            late[n_late++] = (double)(done_us - due_real_us) / 1000.0;
        }
        burst_events += ev.n;
        sb_sla_events_clear(&ev);
        if (now_v > D + 600000)
            break; /* never: a broken engine would otherwise spin here */
    }
    double burst_cpu = cpu_s() - burst_cpu0;
    double burst_span_ms = n_late > 0 ? late[n_late - 1] : 0;
    qsort(late, n_late, sizeof(double), cmp_d);

    /* --- 4. mixed operations ---------------------------------------------------- */
    long ops = n_clocks / 10 > 0 ? n_clocks / 10 : 1;
    int64_t at = D + 60000;
    c0 = cpu_s();
    for (long k = 0; k < ops; k++) {
        long i = burst + (long)(rnd() % (uint64_t)(n_clocks - burst > 0 ? n_clocks - burst : 1));
        snprintf(ticket, sizeof(ticket), "T-%08ld", i < n_clocks ? i : 0);
        sb_sla_engine_pause(e, ticket, SB_SLA_ALL, at, &ev);
        sb_sla_engine_resume(e, ticket, SB_SLA_ALL, at + 600000, &ev);
        sb_sla_events_clear(&ev);
    }
    double pause_cpu = cpu_s() - c0;
    struct sb_sla_target p3 = p2;
    p3.target_ms = 24 * HOUR;
    c0 = cpu_s();
    for (long k = 0; k < ops; k++) {
        long i = burst + (long)(rnd() % (uint64_t)(n_clocks - burst > 0 ? n_clocks - burst : 1));
        snprintf(ticket, sizeof(ticket), "T-%08ld", i < n_clocks ? i : 0);
        sb_sla_engine_retarget(e, ticket, SB_SLA_RESOLUTION, SB_BAND_P3, &p3, at + 600000, &ev);
        sb_sla_events_clear(&ev);
    }
    double retarget_cpu = cpu_s() - c0;

    /* --- 5. restart: snapshot, restore, fire what fell due while down ------------ */
    struct snapshot snap = {sb_malloc((size_t)n_clocks * sizeof(struct sb_sla_clock)), 0};
    c0 = cpu_s();
    sb_sla_engine_foreach(e, collect, &snap);
    double snap_cpu = cpu_s() - c0;
    sb_sla_engine_destroy(e);
    e = sb_sla_engine_new(&o, err, sizeof(err));
    if (e == NULL || sb_sla_engine_add_calendar(e, shanghai(), &cal) != 0)
        return 1;
    c0 = cpu_s();
    for (size_t i = 0; i < snap.n; i++) {
        if (sb_sla_engine_restore(e, &snap.v[i]) != 0) {
            fprintf(stderr, "sb-slawatch-bench: restore %zu failed\n", i);
            return 1;
        }
    }
    double restore_cpu = cpu_s() - c0;
    free(snap.v);
    /* Down for 24 h: everything due by then fires at once, in deadline order. */
    int64_t back = D + 24 * HOUR;
    size_t catchup_events = 0, catchup_steps = 0, order_errors = 0;
    int64_t last_due = INT64_MIN;
    c0 = cpu_s();
    t0 = wall_s();
    for (;;) {
        size_t steps = sb_sla_engine_advance(e, back, (size_t)batch, &ev);
        for (size_t i = 0; i < ev.n; i++) {
            order_errors += ev.v[i].due_ms < last_due;
            last_due = ev.v[i].due_ms;
        }
        catchup_events += ev.n;
        catchup_steps += steps;
        sb_sla_events_clear(&ev);
        if (steps == 0)
            break;
    }
    double catchup_wall = wall_s() - t0, catchup_cpu = cpu_s() - c0;

    /* --- 6. sustained: the rest of the clocks through to the end -------------------- */
    size_t sustained_events = 0;
    c0 = cpu_s();
    for (int64_t now = back + 60000; now <= V0 + 100 * HOUR; now += 60000) {
        sb_sla_engine_advance(e, now, SIZE_MAX, &ev);
        sustained_events += ev.n;
        sb_sla_events_clear(&ev);
    }
    double sustained_cpu = cpu_s() - c0;
    sb_sla_engine_stats(e, &st);
    size_t left = st.armed;
    sb_sla_engine_destroy(e);
    sb_sla_events_free(&ev);

    double p50 = pct(late, n_late, 0.5), p99 = pct(late, n_late, 0.99), pmax = pct(late, n_late, 1);
    double burst_eps = burst_cpu > 0 ? (double)burst_events / burst_cpu : 0;
    double sustained_eps = sustained_cpu > 0 ? (double)sustained_events / sustained_cpu : 0;
    double catchup_eps = catchup_cpu > 0 ? (double)catchup_events / catchup_cpu : 0;
    double warn_eps = warn_wall > 0 ? (double)warn_events / warn_wall : 0;

    printf("\n%-46s %14s\n", "sb-slawatch core", "");
    printf("%-46s %14ld\n", "active clocks", n_clocks);
    printf("%-46s %14ld\n", "  of which in business time", business);
    printf("%-46s %14zu\n", "sizeof(struct sb_sla_clock), bytes", sizeof(struct sb_sla_clock));
    printf("%-46s %14.1f\n", "engine bytes per clock (allocated)", bytes_per_clock);
    printf("%-46s %14.1f   (target <= 256)\n", "RSS growth per clock, bytes", rss_per_clock);
    printf("%-46s %14.0f\n", "starts/s", (double)n_clocks / start_wall);
    printf("%-46s %14.0f\n", "warning events/s (2 per burst clock, at once)", warn_eps);
    printf("%-46s %14ld\n", "burst: simultaneous deadlines", burst);
    printf("%-46s %14zu\n", "burst: events (breach + escalation)", burst_events);
    printf("%-46s %14.1f\n", "burst: last breach after deadline, ms", burst_span_ms);
    printf("%-46s %14.1f\n", "burst: lateness p50, ms (real clock)", p50);
    printf("%-46s %14.1f   (target <= 1000)\n", "burst: lateness p99, ms (real clock)", p99);
    printf("%-46s %14.1f\n", "burst: lateness max, ms (real clock)", pmax);
    printf("%-46s %14.0f\n", "burst: events/s (CPU)", burst_eps);
    printf("%-46s %14.0f\n", "pause+resume pairs/s", (double)ops / pause_cpu);
    printf("%-46s %14.0f\n", "re-targets/s", (double)ops / retarget_cpu);
    printf("%-46s %14.0f\n", "snapshot clocks/s", (double)n_clocks / snap_cpu);
    printf("%-46s %14.0f\n", "restore clocks/s", (double)n_clocks / restore_cpu);
    printf("%-46s %14zu\n", "catch-up after 24 h down: events", catchup_events);
    printf("%-46s %14.0f\n", "catch-up: events/s (CPU)", catchup_eps);
    printf("%-46s %14.2f\n", "catch-up: seconds", catchup_wall);
    printf("%-46s %14zu\n", "catch-up: events out of deadline order", order_errors);
    printf("%-46s %14.0f\n", "sustained events/s (CPU, 1-min ticks)", sustained_eps);
    printf("%-46s %14zu\n", "timers left armed at the end", left);
    printf("{\"clocks\":%ld,\"business_clocks\":%ld,\"clock_struct_bytes\":%zu,"
           "\"engine_bytes_per_clock\":%.1f,\"rss_bytes_per_clock\":%.1f,\"starts_per_s\":%.0f,"
           "\"warning_events_per_s\":%.0f,\"burst\":{\"deadlines\":%ld,\"events\":%zu,"
           "\"batch_steps\":%ld,\"advance_calls\":%zu,\"span_ms\":%.1f,\"lateness_ms\":{"
           "\"clock\":\"real\",\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},\"events_per_s\":%.0f},"
           "\"pause_resume_per_s\":%.0f,\"retarget_per_s\":%.0f,\"snapshot_per_s\":%.0f,"
           "\"restore_per_s\":%.0f,\"catchup\":{\"events\":%zu,\"steps\":%zu,\"seconds\":%.2f,"
           "\"events_per_s\":%.0f,\"out_of_order\":%zu},\"sustained_events_per_s\":%.0f,"
           "\"targets\":{\"bytes_per_clock\":256,\"lateness_p99_ms\":1000}}\n",
           n_clocks, business, sizeof(struct sb_sla_clock), bytes_per_clock, rss_per_clock,
           (double)n_clocks / start_wall, warn_eps, burst, burst_events, batch, calls,
           burst_span_ms, p50, p99, pmax, burst_eps, (double)ops / pause_cpu,
           (double)ops / retarget_cpu, (double)n_clocks / snap_cpu, (double)n_clocks / restore_cpu,
           catchup_events, catchup_steps, catchup_wall, catchup_eps, order_errors, sustained_eps);
    (void)start_cpu;
    free(late);
    return order_errors == 0 && n_late == (size_t)burst ? 0 : 1;
}
