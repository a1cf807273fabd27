/* sb-routebench: decision latency of the routing core with many agents and a long
 * backlog (issue: 10 000 agents, 100 000 queued tickets, p99 ≤ 50 µs a decision).
 *
 * Agents in 20 teams with two of six domains, one or two languages, a product line and
 * capacities of 1 call, 3 chats and 10 emails; tickets of every channel and band, some
 * for a VIP team or a core product line's team. Tickets arrive until the backlog is
 * reached; then each step resolves a random assigned ticket (its agent takes the next
 * ticket: the decision measured) and adds a new one (routed or queued), on a virtual
 * clock that moves 2 ms a step so overflow timers fire as they would. Prints the latency
 * percentiles of both calls, then one JSON line. */
#include "core.h"
#include "sim.h"

#include "sb/err.h"
#include "sb/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEAMS 20
#define STEP_US 2000

static const char *const DOMAINS[] = {"product_function", "order_payment",     "logistics",
                                      "account_security", "service_complaint", "suggestion"};
static const char *const LINES[] = {"cloud", "retail", "mobile", "devices", "services"};

struct bench {
    struct sb_router *r;
    struct sb_sim_rng g;
    uint64_t next_id;
    uint64_t *assigned; /* tags of assigned tickets */
    size_t nassigned, cap;
    uint64_t assignments;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t pick(struct bench *b, uint32_t n)
{
    return (uint32_t)(sb_sim_rng_uniform(&b->g) * n);
}

static void ticket_id(char *buf, size_t size, uint64_t tag)
{
    sb_fmt(buf, size, "bt-%llu", (unsigned long long)tag);
}

static void drain(struct bench *b)
{
    struct sb_route_decision d[64];
    for (;;) {
        size_t n = sb_route_poll(b->r, d, 64);
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            if (d[i].kind != SB_ROUTE_ASSIGNED)
                continue;
            b->assignments++;
            if (b->nassigned == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 1024;
                b->assigned = sb_realloc(b->assigned, b->cap * sizeof(*b->assigned));
            }
            b->assigned[b->nassigned++] = d[i].ticket_tag;
        }
    }
}

static int add_agents(struct bench *b, int n, char *err, size_t errsz)
{
    for (int i = 0; i < n; i++) {
        struct sb_route_agent_spec a;
        struct sb_route_skill sk[6];
        char id[32], team[32], names[6][SB_ROUTE_ID_MAX + 1];
        size_t k = 0;
        uint32_t d1 = pick(b, 6), d2 = (d1 + 1 + pick(b, 5)) % 6;
        int rc;

        memset(&a, 0, sizeof(a));
        sb_fmt(id, sizeof(id), "agent-%lld", (long long)i);
        sb_fmt(team, sizeof(team), "team-%d", i % TEAMS);
        sb_fmt(names[k], sizeof(names[k]), "domain:%s", DOMAINS[d1]);
        sk[k].name = names[k];
        sk[k].level = 1 + (int)pick(b, 5);
        k++;
        sb_fmt(names[k], sizeof(names[k]), "domain:%s", DOMAINS[d2]);
        sk[k].name = names[k];
        sk[k].level = 1 + (int)pick(b, 5);
        k++;
        sb_fmt(names[k], sizeof(names[k]), "lang:zh");
        sk[k].name = names[k];
        sk[k].level = 5;
        k++;
        if (pick(b, 3) == 0) {
            sb_fmt(names[k], sizeof(names[k]), "lang:en");
            sk[k].name = names[k];
            sk[k].level = 3 + (int)pick(b, 3);
            k++;
        }
        sb_fmt(names[k], sizeof(names[k]), "product:%s", LINES[pick(b, 5)]);
        sk[k].name = names[k];
        sk[k].level = 1 + (int)pick(b, 5);
        k++;
        a.id = id;
        a.team = team;
        a.skills = sk;
        a.nskills = k;
        a.capacity[SB_ROUTE_CH_VOICE] = 1;
        a.capacity[SB_ROUTE_CH_CHAT] = 3;
        a.capacity[SB_ROUTE_CH_EMAIL] = 10;
        a.tag = (uint64_t)i;
        rc = sb_route_agent_set(b->r, &a, 0, err, errsz);
        if (rc == 0)
            rc = sb_route_agent_presence(b->r, id, SB_ROUTE_AVAILABLE, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int add_ticket(struct bench *b, int64_t now, char *err, size_t errsz)
{
    static const char *core_lines[] = {"cloud"};
    static const char *core_teams[] = {"team-1"};
    const struct sb_route_rules rules = {"team-0", core_lines, core_teams, 1};
    struct sb_route_ticket_spec t;
    struct sb_route_req req;
    char id[32];
    uint32_t u = pick(b, 100);
    int rc;

    memset(&t, 0, sizeof(t));
    rc = sb_route_spec_fill(&rules, DOMAINS[pick(b, 6)], pick(b, 5) == 0 ? "en" : "zh",
                            LINES[pick(b, 5)], pick(b, 20) == 0, &req, &t);
    if (rc != 0)
        return rc;
    ticket_id(id, sizeof(id), b->next_id);
    t.id = id;
    t.tag = b->next_id++;
    t.channel = u < 30 ? SB_ROUTE_CH_VOICE : u < 70 ? SB_ROUTE_CH_CHAT : SB_ROUTE_CH_EMAIL;
    u = pick(b, 100);
    t.band = u < 5 ? 1 : u < 30 ? 2 : u < 80 ? 3 : 4;
    t.arrived_us = now;
    return sb_route_ticket_add(b->r, &t, now, err, errsz);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *v, size_t n, double p)
{
    size_t i = (size_t)ceil(p * (double)n);
    return n == 0 ? 0 : (double)v[i > 0 ? i - 1 : 0] / 1000.0;
}

static void report(const char *name, int64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_i64);
    printf("  %-22s p50 %7.2f  p90 %7.2f  p99 %7.2f  p99.9 %7.2f  max %8.2f  (µs, %zu calls)\n",
           name, pct(v, n, 0.5), pct(v, n, 0.9), pct(v, n, 0.99), pct(v, n, 0.999),
           n > 0 ? (double)v[n - 1] / 1000.0 : 0.0, n);
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: sb-routebench [--agents N] [--backlog N] [--steps N] [--seed N]\n"
                 "                      [--policy NAME]\n"
                 "Decision latency of the routing core (defaults: 10000 agents, 100000\n"
                 "queued tickets, 200000 steps). Last line: one JSON object.\n");
}

int main(int argc, char **argv)
{
    struct bench b;
    struct sb_route_cfg cfg;
    int64_t agents = 10000, backlog = 100000, steps = 200000, seed = 1, now = 0;
    int64_t *lat_done = NULL, *lat_add = NULL, t0, t1, busy_ns = 0, setup_ns;
    uint64_t assigned_before, memberships = 0;
    int64_t start;
    size_t nadd = 0;
    char err[256];
    int rc = 1;

    memset(&b, 0, sizeof(b));
    sb_route_cfg_default(&cfg);
    for (int i = 1; i < argc; i++) {
        int64_t *target = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--policy") == 0) {
            cfg.policy = sb_route_policy_parse(argv[++i]);
            if (cfg.policy < 0) {
                fprintf(stderr, "sb-routebench: unknown policy %s\n", argv[i]);
                return 2;
            }
            continue;
        }
        if (strcmp(argv[i], "--agents") == 0)
            target = &agents;
        else if (strcmp(argv[i], "--backlog") == 0)
            target = &backlog;
        else if (strcmp(argv[i], "--steps") == 0)
            target = &steps;
        else if (strcmp(argv[i], "--seed") == 0)
            target = &seed;
        if (target == NULL || sb_parse_int64(argv[++i], target) != 0 || *target < 1 ||
            *target > 100000000) {
            fprintf(stderr, "sb-routebench: bad option %s (see --help)\n", argv[i - 1]);
            return 2;
        }
    }

    sb_sim_rng_seed(&b.g, (uint64_t)seed);
    b.r = sb_route_new(&cfg, err, sizeof(err));
    if (b.r == NULL)
        goto fail;
    t0 = now_ns();
    if (add_agents(&b, (int)agents, err, sizeof(err)) != 0)
        goto fail;
    while (sb_route_waiting(b.r) < (uint64_t)backlog) {
        now += STEP_US / 4; /* arrivals spread out, so are their overflow timers */
        if (add_ticket(&b, now, err, sizeof(err)) != 0)
            goto fail;
        drain(&b);
        if (b.next_id > (uint64_t)(backlog + agents * 14) * 4) {
            sb_fmt(err, sizeof(err), "the backlog does not build up");
            goto fail;
        }
    }
    setup_ns = now_ns() - t0;
    for (int64_t i = 0; i < agents; i++) {
        struct sb_route_agent_info info;
        char id[32];
        sb_fmt(id, sizeof(id), "agent-%lld", (long long)i);
        if (sb_route_agent_get(b.r, id, &info) == 0)
            memberships += info.queues;
    }
    printf("sb-routebench: %lld agents (%.1f queues each) in %zu queues, %llu tickets "
           "waiting, %zu assigned (set-up %.2f s, policy %s)\n",
           (long long)agents, (double)memberships / (double)agents, sb_route_queue_count(b.r),
           (unsigned long long)sb_route_waiting(b.r), b.nassigned, (double)setup_ns / 1e9,
           sb_route_policy_name(cfg.policy));
    start = now;

    lat_done = sb_malloc((size_t)steps * sizeof(*lat_done));
    lat_add = sb_malloc((size_t)steps * sizeof(*lat_add));
    assigned_before = b.assignments;
    for (int64_t s = 0; s < steps; s++) {
        char id[32];
        size_t k;
        if (b.nassigned == 0) {
            sb_fmt(err, sizeof(err), "nothing assigned left");
            goto fail;
        }
        now += STEP_US;
        k = pick(&b, (uint32_t)b.nassigned);
        ticket_id(id, sizeof(id), b.assigned[k]);
        b.assigned[k] = b.assigned[--b.nassigned];
        t0 = now_ns();
        rc = sb_route_ticket_done(b.r, id, now);
        t1 = now_ns();
        if (rc != 0) {
            sb_fmt(err, sizeof(err), "done %s: %s", id, sb_strerror(rc));
            goto fail;
        }
        lat_done[s] = t1 - t0;
        busy_ns += t1 - t0;
        drain(&b);
        /* A new ticket whenever the backlog is below its size: it stays put. */
        if (sb_route_waiting(b.r) >= (uint64_t)backlog)
            continue;
        t0 = now_ns();
        rc = add_ticket(&b, now, err, sizeof(err));
        t1 = now_ns();
        if (rc != 0)
            goto fail;
        lat_add[nadd++] = t1 - t0;
        busy_ns += t1 - t0;
        drain(&b);
    }
    printf("  %lld steps over %.0f s of virtual time: %llu assignments, %zu new tickets, %llu "
           "waiting\n",
           (long long)steps, (double)(now - start) / 1e6,
           (unsigned long long)(b.assignments - assigned_before), nadd,
           (unsigned long long)sb_route_waiting(b.r));
    report("resolve + next ticket", lat_done, (size_t)steps);
    report("new ticket", lat_add, nadd);
    {
        double dps = (double)(b.assignments - assigned_before) / ((double)busy_ns / 1e9);
        double p99_done = pct(lat_done, (size_t)steps, 0.99);
        double p99_add = pct(lat_add, nadd, 0.99);
        printf("  %.0f assignment decisions/s of core time\n", dps);
        printf("{\"agents\":%lld,\"queued\":%llu,\"steps\":%lld,\"decisions_per_s\":%.0f,"
               "\"p50_resolve_us\":%.3f,\"p99_resolve_us\":%.3f,\"p50_new_us\":%.3f,"
               "\"p99_new_us\":%.3f,\"max_resolve_us\":%.3f,\"max_new_us\":%.3f}\n",
               (long long)agents, (unsigned long long)sb_route_waiting(b.r), (long long)steps, dps,
               pct(lat_done, (size_t)steps, 0.5), p99_done, pct(lat_add, nadd, 0.5), p99_add,
               (double)lat_done[steps - 1] / 1000.0,
               nadd > 0 ? (double)lat_add[nadd - 1] / 1000.0 : 0.0);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "sb-routebench: %s\n", err);
    rc = 1;
out:
    free(lat_done);
    free(lat_add);
    free(b.assigned);
    sb_route_destroy(b.r);
    return rc;
}
