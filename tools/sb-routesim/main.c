/* sb-routesim: runs the routing core (services/router) in a deterministic discrete-event
 * simulation and compares it with queueing theory. The M/M/c case prints simulated and
 * Erlang C figures with 95 % confidence intervals, then, as its last line, one JSON
 * object {"p_wait","asa_s","sl","occupancy","answered"}; the scenarios (two-skills, vip,
 * overflow) print each variant against its baseline, then one JSON line. */
#include "sim.h"

#include "erlang.h"

#include "sb/err.h"
#include "sb/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out, "Usage: sb-routesim --arrival-rate PER_SECOND --aht SECONDS --agents C\n"
                 "                   [--duration SECONDS] [--seed N] [--sl-threshold SECONDS]\n"
                 "                   [--warmup SECONDS] [--batches N] [--policy NAME]\n"
                 "       sb-routesim --scenario two-skills|vip|overflow [--duration SECONDS]\n"
                 "                   [--seed N] [--sl-threshold SECONDS] [--warmup SECONDS]\n"
                 "\n"
                 "Simulates a contact center whose routing decisions are made by the routing\n"
                 "core of sb-router on a virtual clock (deterministic for a given seed).\n"
                 "\n"
                 "M/M/c (Poisson arrivals, exponential handle times, one skill, C agents taking\n"
                 "one call each, first come first served): prints the simulated probability of\n"
                 "waiting, average speed of answer, service level and occupancy beside Erlang C,\n"
                 "with 95%% confidence intervals from batch means, then as its last line:\n"
                 "  {\"p_wait\":…,\"asa_s\":…,\"sl\":…,\"occupancy\":…,\"answered\":…}\n"
                 "\n"
                 "Options:\n"
                 "  --arrival-rate X    arrivals per second (M/M/c)\n"
                 "  --aht X             average handle time in seconds (M/M/c)\n"
                 "  --agents C          agents (M/M/c)\n"
                 "  --duration X        seconds of arrivals (default 100000; scenarios 400000);\n"
                 "                      the run then continues until everybody is answered\n"
                 "  --seed N            random seed (default 1)\n"
                 "  --sl-threshold X    service level: answered within X seconds (default 20)\n"
                 "  --warmup X          customers arriving earlier are not measured (default\n"
                 "                      10%% of the duration)\n"
                 "  --batches N         batches for the confidence intervals (default 20)\n"
                 "  --policy NAME       least_occupied, longest_idle (default), highest_skill\n"
                 "  --scenario NAME     two-skills: a pool shared by two skills vs the same\n"
                 "                      agents split; vip: P1 VIPs among P3 customers vs first\n"
                 "                      come first served; overflow: a loaded team overflowing to\n"
                 "                      another after 60 s vs never\n"
                 "  -h, --help          this text\n"
                 "\n"
                 "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(*out)) {
        fprintf(stderr, "sb-routesim: %s: \"%s\" is not a number\n", opt, s);
        return SB_E_INVAL;
    }
    return 0;
}

static int parse_int(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (sb_parse_int64(s, out) != 0 || *out < min || *out > max) {
        fprintf(stderr, "sb-routesim: %s: \"%s\" is not an integer in %lld..%lld\n", opt, s,
                (long long)min, (long long)max);
        return SB_E_INVAL;
    }
    return 0;
}

static double rel(double sim, double theory)
{
    return theory != 0 ? 100.0 * (sim - theory) / theory : 0.0;
}

static void row(const char *name, double sim, struct sb_sim_ci ci, double theory)
{
    printf("  %-14s %10.4f  [%9.4f, %9.4f]  %10.4f  %+7.2f%%\n", name, sim, ci.mean - ci.half,
           ci.mean + ci.half, theory, rel(sim, theory));
}

static void json_base(const struct sb_sim_result *res)
{
    printf("\"p_wait\":%.6f,\"asa_s\":%.6f,\"sl\":%.6f,\"occupancy\":%.6f,\"answered\":%llu",
           res->all.p_wait, res->all.asa_s, res->all.sl, res->occupancy,
           (unsigned long long)res->all.answered);
}

static int run_mmc(struct sb_sim_model *m, double rate, double aht, int agents)
{
    struct sb_sim_result res;
    char err[256];
    double a = sb_erlang_traffic(rate, aht), wall;
    int64_t t0 = sb_mono_us();
    int rc;

    sb_sim_model_mmc(m, rate, aht, agents);
    rc = sb_sim_run(m, &res, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sb-routesim: %s\n", err);
        return rc == SB_E_INVAL ? EXIT_USAGE : 1;
    }
    wall = (double)(sb_mono_us() - t0) / 1e6;
    printf("M/M/c on the routing core: arrival rate %.6g/s, AHT %.6g s, c = %d agents\n", rate, aht,
           agents);
    printf("  traffic %.4f Erlangs, offered occupancy %.4f, policy %s\n", a,
           sb_erlang_occupancy(rate, aht, agents), sb_route_policy_name(m->cfg.policy));
    printf("  arrivals for %.0f s, measured after %.0f s, seed %llu, %d batches, SL within "
           "%.6g s\n",
           m->duration_s, m->warmup_s, (unsigned long long)m->seed, m->batches, m->sl_threshold_s);
    printf("  %llu customers measured, %llu events in %.2f s (%.2f M events/s), %llu "
           "assignments beyond capacity\n\n",
           (unsigned long long)res.all.answered, (unsigned long long)res.events, wall,
           wall > 0 ? (double)res.events / wall / 1e6 : 0.0, (unsigned long long)res.over_capacity);
    printf("  %-14s %10s  %-22s  %10s  %8s\n", "measure", "simulated", "95% CI (batch means)",
           "Erlang C", "diff");
    if (a >= agents) {
        printf("  (unstable: traffic %.4f >= %d agents; Erlang C has no steady state)\n", a,
               agents);
    } else {
        char sl_name[32];
        row("P(wait)", res.all.p_wait, res.all.ci_p_wait, sb_erlang_c(a, agents));
        row("ASA (s)", res.all.asa_s, res.all.ci_asa, sb_erlang_asa(rate, aht, agents));
        sb_fmt(sl_name, sizeof(sl_name), "SL (<= %gs)", m->sl_threshold_s);
        row(sl_name, res.all.sl, res.all.ci_sl, sb_erlang_sl(rate, aht, agents, m->sl_threshold_s));
        row("occupancy", res.occupancy, res.ci_occ, sb_erlang_occupancy(rate, aht, agents));
    }
    printf("{");
    json_base(&res);
    printf("}\n");
    return res.over_capacity == 0 ? 0 : 1;
}

static void print_variant(const char *title, const struct sb_sim_model *m,
                          const struct sb_sim_result *res)
{
    printf("%s (occupancy %.4f", title, res->occupancy);
    for (size_t g = 0; g < m->ngrp; g++)
        printf(", %s x%d: %.3f", m->grp[g].name, m->grp[g].agents, res->grp_occ[g]);
    printf(")\n");
    printf("  %-10s %9s %8s %20s %8s %9s %9s %9s %10s\n", "class", "answered", "P(wait)",
           "ASA s (95% CI)", "SL", "p90 s", "p99 s", "max s", "overflowed");
    for (size_t c = 0; c <= m->ncls; c++) {
        const struct sb_sim_stats *st = c < m->ncls ? &res->cls[c] : &res->all;
        printf("  %-10s %9llu %8.4f %9.2f +- %7.2f %8.4f %9.1f %9.1f %9.1f %10llu\n",
               c < m->ncls ? m->cls[c].name : "all", (unsigned long long)st->answered, st->p_wait,
               st->asa_s, st->ci_asa.half, st->sl, st->p90_s, st->p99_s, st->max_s,
               (unsigned long long)st->overflowed);
    }
}

static void json_classes(const char *prefix, const struct sb_sim_model *m,
                         const struct sb_sim_result *res)
{
    for (size_t c = 0; c < m->ncls; c++) {
        const struct sb_sim_stats *st = &res->cls[c];
        const char *n = m->cls[c].name;
        printf(",\"%s%s_p_wait\":%.6f,\"%s%s_asa_s\":%.6f,\"%s%s_sl\":%.6f,\"%s%s_p99_s\":%.6f,"
               "\"%s%s_max_s\":%.6f,\"%s%s_overflowed\":%llu",
               prefix, n, st->p_wait, prefix, n, st->asa_s, prefix, n, st->sl, prefix, n, st->p99_s,
               prefix, n, st->max_s, prefix, n, (unsigned long long)st->overflowed);
    }
    printf(",\"%sall_asa_s\":%.6f,\"%sall_p99_s\":%.6f", prefix, res->all.asa_s, prefix,
           res->all.p99_s);
}

static int run_scenario(struct sb_sim_model *m, const char *name)
{
    struct sb_sim_model base = *m;
    struct sb_sim_result res, bres;
    char err[256];
    int rc;

    if (sb_sim_scenario(name, 0, m) != 0 || sb_sim_scenario(name, 1, &base) != 0) {
        fprintf(stderr, "sb-routesim: unknown scenario \"%s\" (two-skills, vip, overflow)\n", name);
        return EXIT_USAGE;
    }
    m->percentiles = base.percentiles = 1;
    rc = sb_sim_run(m, &res, err, sizeof(err));
    if (rc == 0)
        rc = sb_sim_run(&base, &bres, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "sb-routesim: %s\n", err);
        return rc == SB_E_INVAL ? EXIT_USAGE : 1;
    }
    printf("Scenario %s: arrivals for %.0f s, measured after %.0f s, seed %llu, SL within "
           "%.6g s, policy %s\n\n",
           name, m->duration_s, m->warmup_s, (unsigned long long)m->seed, m->sl_threshold_s,
           sb_route_policy_name(m->cfg.policy));
    print_variant(strcmp(name, "two-skills") == 0 ? "shared pool"
                  : strcmp(name, "vip") == 0      ? "VIP as P1"
                                                  : "overflow after 60 s",
                  m, &res);
    print_variant(strcmp(name, "two-skills") == 0 ? "baseline: split pools"
                  : strcmp(name, "vip") == 0      ? "baseline: first come first served"
                                                  : "baseline: no overflow",
                  &base, &bres);
    if (strcmp(name, "two-skills") == 0) {
        printf("Erlang C: one pool of 32 for 30 Erlangs, ASA %.2f s; split 19 / 13, ASA %.2f "
               "s and %.2f s\n",
               sb_erlang_asa(0.5, 60, 32), sb_erlang_asa(0.3, 60, 19), sb_erlang_asa(0.2, 60, 13));
    } else if (strcmp(name, "vip") == 0) {
        printf("Erlang C: 18 Erlangs on 20 agents, ASA %.2f s, SL %.4f (any work-conserving "
               "order keeps the overall mean)\n",
               sb_erlang_asa(0.15, 120, 20), sb_erlang_sl(0.15, 120, 20, m->sl_threshold_s));
    } else {
        printf("Erlang C without overflow: north ASA %.2f s, south ASA %.2f s\n",
               sb_erlang_asa(0.095, 100, 10), sb_erlang_asa(0.05, 100, 10));
    }
    printf("{\"scenario\":\"%s\",", name);
    json_base(&res);
    json_classes("", m, &res);
    json_classes("baseline_", &base, &bres);
    printf("}\n");
    return res.over_capacity == 0 && bres.over_capacity == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct sb_sim_model m;
    double rate = -1, aht = -1, d;
    int64_t agents = -1, v;
    const char *scenario = NULL;
    int have_duration = 0, have_warmup = 0;

    sb_sim_model_default(&m);
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            fprintf(stderr, "sb-routesim: %s: unknown option or missing value (see --help)\n", opt);
            return EXIT_USAGE;
        }
        i++;
        if (strcmp(opt, "--arrival-rate") == 0) {
            if (parse_double(opt, val, &rate) != 0)
                return EXIT_USAGE;
        } else if (strcmp(opt, "--aht") == 0) {
            if (parse_double(opt, val, &aht) != 0)
                return EXIT_USAGE;
        } else if (strcmp(opt, "--agents") == 0) {
            if (parse_int(opt, val, 1, 1000000, &agents) != 0)
                return EXIT_USAGE;
        } else if (strcmp(opt, "--duration") == 0) {
            if (parse_double(opt, val, &m.duration_s) != 0)
                return EXIT_USAGE;
            have_duration = 1;
        } else if (strcmp(opt, "--warmup") == 0) {
            if (parse_double(opt, val, &m.warmup_s) != 0)
                return EXIT_USAGE;
            have_warmup = 1;
        } else if (strcmp(opt, "--sl-threshold") == 0) {
            if (parse_double(opt, val, &m.sl_threshold_s) != 0)
                return EXIT_USAGE;
        } else if (strcmp(opt, "--seed") == 0) {
            if (parse_int(opt, val, 0, INT64_MAX, &v) != 0)
                return EXIT_USAGE;
            m.seed = (uint64_t)v;
        } else if (strcmp(opt, "--batches") == 0) {
            if (parse_int(opt, val, 2, SB_SIM_MAX_BATCHES, &v) != 0)
                return EXIT_USAGE;
            m.batches = (int)v;
        } else if (strcmp(opt, "--policy") == 0) {
            int p = sb_route_policy_parse(val);
            if (p < 0) {
                fprintf(stderr, "sb-routesim: --policy: \"%s\" is not a policy\n", val);
                return EXIT_USAGE;
            }
            m.cfg.policy = p;
        } else if (strcmp(opt, "--scenario") == 0) {
            scenario = val;
        } else {
            fprintf(stderr, "sb-routesim: %s: unknown option (see --help)\n", opt);
            return EXIT_USAGE;
        }
    }
    if (!have_duration)
        m.duration_s = scenario != NULL ? 400000 : 100000;
    if (!have_warmup)
        m.warmup_s = 0.1 * m.duration_s;
    if (scenario != NULL)
        return run_scenario(&m, scenario);
    if (rate < 0 || aht <= 0 || agents < 1) {
        fprintf(stderr, "sb-routesim: --arrival-rate (>= 0), --aht (> 0) and --agents (>= 1) "
                        "are required (see --help)\n");
        return EXIT_USAGE;
    }
    d = sb_erlang_traffic(rate, aht);
    if (d >= (double)agents)
        fprintf(stderr,
                "sb-routesim: warning: traffic %.4f Erlangs on %lld agents is "
                "unstable; the queue grows without bound\n",
                d, (long long)agents);
    return run_mmc(&m, rate, aht, (int)agents);
}
