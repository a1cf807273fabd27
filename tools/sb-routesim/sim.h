/* A deterministic discrete-event simulation of a contact center whose every routing
 * decision is made by the routing core (services/router/core.h) on a virtual clock:
 * Poisson arrivals per customer class, exponential handle times, agent groups with
 * teams and skills, one voice call per agent. Seeded, so a run is reproducible bit for
 * bit. Estimates come with 95 % confidence intervals from batch means. No I/O. */
#ifndef SB_ROUTESIM_SIM_H
#define SB_ROUTESIM_SIM_H

#include "core.h"

#include <stddef.h>
#include <stdint.h>

#define SB_SIM_MAX_CLASSES 8
#define SB_SIM_MAX_GROUPS 8
#define SB_SIM_MAX_GROUP_SKILLS 8
#define SB_SIM_MAX_BATCHES 200

/* xoshiro256** (Blackman and Vigna, 2018), seeded through splitmix64. */
struct sb_sim_rng {
    uint64_t s[4];
};

void sb_sim_rng_seed(struct sb_sim_rng *g, uint64_t seed);
uint64_t sb_sim_rng_next(struct sb_sim_rng *g);
/* Uniform in [0, 1) with 53 random bits. */
double sb_sim_rng_uniform(struct sb_sim_rng *g);
/* Exponential with the given mean. */
double sb_sim_rng_exp(struct sb_sim_rng *g, double mean);

/* A stream of customers. */
struct sb_sim_class {
    const char *name;
    double rate_per_s;
    double aht_s;
    int band;         /* 1..4 */
    const char *team; /* dedicated team or NULL */
    const char *skills[SB_ROUTE_MAX_REQ];
    size_t nskills;
    unsigned relax_mask;
};

/* Identical agents. */
struct sb_sim_group {
    const char *name;
    int agents;
    const char *team;
    struct sb_route_skill skills[SB_SIM_MAX_GROUP_SKILLS];
    size_t nskills;
};

struct sb_sim_model {
    struct sb_route_cfg cfg;
    struct sb_sim_class cls[SB_SIM_MAX_CLASSES];
    size_t ncls;
    struct sb_sim_group grp[SB_SIM_MAX_GROUPS];
    size_t ngrp;
    double duration_s;     /* arrivals stop then; the run goes on until all are answered */
    double warmup_s;       /* customers arriving earlier are not measured */
    double sl_threshold_s; /* service level: answered within this wait */
    uint64_t seed;
    int batches;     /* batch means over the measured window (2..SB_SIM_MAX_BATCHES) */
    int percentiles; /* keep every wait to report p90, p99 (memory: 8 bytes a customer) */
};

/* A batch-means estimate: mean of the batch values and the half width of its 95 %
 * confidence interval (Student t, batches − 1 degrees of freedom). */
struct sb_sim_ci {
    double mean, half;
};

struct sb_sim_stats {
    uint64_t answered;   /* measured customers (all are answered) */
    uint64_t overflowed; /* …of which moved to a wider queue before being answered */
    double p_wait;       /* share that waited at all */
    double asa_s;        /* mean wait */
    double sl;           /* share answered within sl_threshold_s */
    double p90_s, p99_s, max_s;
    struct sb_sim_ci ci_p_wait, ci_asa, ci_sl;
};

struct sb_sim_result {
    struct sb_sim_stats all;
    struct sb_sim_stats cls[SB_SIM_MAX_CLASSES];
    double occupancy; /* busy agent time / agent time over the measured window */
    struct sb_sim_ci ci_occ;
    double grp_occ[SB_SIM_MAX_GROUPS];
    uint64_t events;        /* arrivals, departures and timers processed */
    uint64_t over_capacity; /* assignments to an agent already on a call (must be 0) */
    uint64_t decisions;     /* decisions read from the core */
};

/* Fills m with the defaults: the core's configuration, 20 batches, warm-up 10 % of the
 * duration, SL threshold 20 s, seed 1, no classes, no groups. */
void sb_sim_model_default(struct sb_sim_model *m);

/* The M/M/c case: one class (rate, AHT), one group of c agents with its one skill. */
void sb_sim_model_mmc(struct sb_sim_model *m, double rate_per_s, double aht_s, int agents);

/* The named scenarios (see docs/router-core.md); variant 0 has the feature, variant 1
 * is the baseline it is compared with:
 *   "two-skills"  two skills, a pool shared between them | the same agents split;
 *   "vip"         VIPs as P1 among P3 customers          | everybody first come first served;
 *   "overflow"    a loaded team overflows to another after 60 s | no overflow.
 * Keeps m's duration, warm-up, threshold, seed and batches. Returns 0 or SB_E_INVAL. */
int sb_sim_scenario(const char *name, int variant, struct sb_sim_model *m);

/* Runs the model. Returns 0, or SB_E_INVAL with errstr set for a model out of range. */
int sb_sim_run(const struct sb_sim_model *m, struct sb_sim_result *res, char *errstr,
               size_t errstr_size);

/* The 97.5 % quantile of Student's t with df degrees of freedom. */
double sb_sim_t975(int df);

#endif
