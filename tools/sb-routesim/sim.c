/* Discrete-event simulation over the routing core (see sim.h).
 *
 * The event list is a binary heap of arrivals and departures; the core's own timers
 * (overflow stages, continuity waits) are interleaved by asking it for its next
 * deadline. Each class draws from its own two random streams (inter-arrival times, and
 * the handle time drawn at arrival), so two variants of a scenario with the same seed
 * see exactly the same customers: their difference is the routing alone. */
#include "sim.h"

#include "sb/err.h"
#include "sb/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_S 1e6
#define EV_ARRIVAL 0x80000000U

/* ---------------------------------------------------------------- random numbers */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sb_sim_rng_seed(struct sb_sim_rng *g, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sb_sim_rng_next(struct sb_sim_rng *g)
{
    uint64_t *s = g->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sb_sim_rng_uniform(struct sb_sim_rng *g)
{
    return (double)(sb_sim_rng_next(g) >> 11) * 0x1.0p-53;
}

double sb_sim_rng_exp(struct sb_sim_rng *g, double mean)
{
    /* 1 − U lies in (0, 1]: the logarithm is finite. */
    return -mean * log1p(-sb_sim_rng_uniform(g));
}

/* ---------------------------------------------------------------- statistics */

double sb_sim_t975(int df)
{
    static const double t[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365,
                               2.306, 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                               2.120, 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
                               2.064, 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
    if (df < 1)
        return INFINITY;
    if (df <= 30)
        return t[df];
    /* Cornish–Fisher expansion around the normal quantile; within 1e-3 beyond 30. */
    double z = 1.959964, d = (double)df;
    return z + (z * z * z + z) / (4 * d) + (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * d * d);
}

static struct sb_sim_ci ci_of(const double *x, int n)
{
    struct sb_sim_ci ci = {0, 0};
    double sum = 0, ss = 0;
    if (n == 0)
        return ci;
    for (int i = 0; i < n; i++)
        sum += x[i];
    ci.mean = sum / n;
    if (n < 2)
        return ci;
    for (int i = 0; i < n; i++)
        ss += (x[i] - ci.mean) * (x[i] - ci.mean);
    ci.half = sb_sim_t975(n - 1) * sqrt(ss / (n - 1) / n);
    return ci;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- the run */

struct ev {
    int64_t t;
    uint64_t seq;
    uint32_t what; /* EV_ARRIVAL | class, or a customer slot (its departure) */
};

struct cust {
    int64_t arrived_us;
    double handle_s;
    uint32_t cls;
    uint32_t agent;
    uint8_t measured, overflowed;
};

struct bstat {
    uint64_t n, waited, within, overflowed;
    double sum_s;
};

struct waits {
    double *v;
    size_t n, cap;
};

struct sim {
    const struct sb_sim_model *m;
    struct sb_router *r;
    struct sb_sim_rng arr_rng[SB_SIM_MAX_CLASSES], svc_rng[SB_SIM_MAX_CLASSES];
    double next_arrival_s[SB_SIM_MAX_CLASSES];

    struct ev *ev;
    size_t nev, evcap;
    uint64_t evseq;

    struct cust *cu;
    uint32_t ncu, cucap;
    uint32_t *freecu;
    uint32_t nfree;

    uint32_t nagents;
    int *load;
    uint8_t *agent_grp;
    int busy;
    int grp_busy[SB_SIM_MAX_GROUPS];

    int64_t w_us, d_us, sl_us, last_t;
    double batch_us;
    struct bstat *bs; /* [batch][class] */
    double *busy_b;   /* busy agent-µs per batch */
    double grp_busy_us[SB_SIM_MAX_GROUPS];
    double max_s[SB_SIM_MAX_CLASSES];
    struct waits w[SB_SIM_MAX_CLASSES];
    struct sb_sim_result *res;
};

static int ev_before(const struct ev *a, const struct ev *b)
{
    return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void ev_push(struct sim *s, int64_t t, uint32_t what)
{
    size_t i;
    struct ev e = {t, s->evseq++, what};
    if (s->nev == s->evcap) {
        s->evcap = s->evcap ? s->evcap * 2 : 256;
        s->ev = sb_realloc(s->ev, s->evcap * sizeof(*s->ev));
    }
    i = s->nev++;
    while (i > 0 && ev_before(&e, &s->ev[(i - 1) / 2])) {
        s->ev[i] = s->ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->ev[i] = e;
}

static struct ev ev_pop(struct sim *s)
{
    struct ev top = s->ev[0], last = s->ev[--s->nev];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nev)
            break;
        if (c + 1 < s->nev && ev_before(&s->ev[c + 1], &s->ev[c]))
            c++;
        if (!ev_before(&s->ev[c], &last))
            break;
        s->ev[i] = s->ev[c];
        i = c;
    }
    if (s->nev > 0)
        s->ev[i] = last;
    return top;
}

/* "<prefix><n>" into buf (at least 16 bytes): ids for the core without printf's cost. */
static void make_id(char *buf, char prefix, uint32_t n)
{
    char tmp[12];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    *buf++ = prefix;
    while (k > 0)
        *buf++ = tmp[--k];
    *buf = '\0';
}

static int64_t to_us(double sec)
{
    return llround(sec * US_PER_S);
}

/* Start of batch k of the measured window; batch k covers [bound(k), bound(k + 1)). */
static int64_t bound(const struct sim *s, int k)
{
    if (k >= s->m->batches)
        return s->d_us;
    return s->w_us + (int64_t)ceil(k * s->batch_us);
}

/* Adds the busy agent time since the last event to the batches it falls in. */
static void integrate(struct sim *s, int64_t t)
{
    int64_t a = s->last_t > s->w_us ? s->last_t : s->w_us;
    int64_t b = t < s->d_us ? t : s->d_us;
    int k;

    if (t <= s->last_t)
        return;
    s->last_t = t;
    if (b <= a)
        return;
    for (size_t g = 0; g < s->m->ngrp; g++)
        s->grp_busy_us[g] += (double)s->grp_busy[g] * (double)(b - a);
    k = (int)((double)(a - s->w_us) / s->batch_us);
    if (k >= s->m->batches)
        k = s->m->batches - 1;
    while (k > 0 && bound(s, k) > a)
        k--;
    while (k + 1 < s->m->batches && bound(s, k + 1) <= a)
        k++;
    while (b > a) {
        int64_t end = bound(s, k + 1) < b ? bound(s, k + 1) : b;
        s->busy_b[k] += (double)s->busy * (double)(end - a);
        a = end;
        k++;
    }
}

static void waits_push(struct waits *w, double x)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 4096;
        w->v = sb_realloc(w->v, w->cap * sizeof(*w->v));
    }
    w->v[w->n++] = x;
}

static void answered(struct sim *s, const struct sb_route_decision *d)
{
    uint32_t slot = (uint32_t)d->ticket_tag, agent = (uint32_t)d->agent_tag;
    struct cust *c = &s->cu[slot];
    double wait_s = (double)d->waited_us / US_PER_S;

    c->agent = agent;
    s->load[agent]++;
    if (s->load[agent] > 1)
        s->res->over_capacity++;
    s->busy++;
    s->grp_busy[s->agent_grp[agent]]++;
    ev_push(s, d->at_us + to_us(c->handle_s), slot);
    if (!c->measured)
        return;
    int k = (int)((double)(c->arrived_us - s->w_us) / s->batch_us);
    if (k >= s->m->batches)
        k = s->m->batches - 1;
    struct bstat *b = &s->bs[(size_t)k * SB_SIM_MAX_CLASSES + c->cls];
    b->n++;
    b->waited += d->waited_us > 0;
    b->within += d->waited_us <= s->sl_us;
    b->overflowed += c->overflowed;
    b->sum_s += wait_s;
    if (wait_s > s->max_s[c->cls])
        s->max_s[c->cls] = wait_s;
    if (s->m->percentiles)
        waits_push(&s->w[c->cls], wait_s);
}

static void drain(struct sim *s)
{
    struct sb_route_decision d[32];
    for (;;) {
        size_t n = sb_route_poll(s->r, d, 32);
        if (n == 0)
            return;
        s->res->decisions += n;
        for (size_t i = 0; i < n; i++) {
            if (d[i].kind == SB_ROUTE_ASSIGNED)
                answered(s, &d[i]);
            else if (d[i].kind == SB_ROUTE_OVERFLOWED)
                s->cu[d[i].ticket_tag].overflowed = 1;
        }
    }
}

static uint32_t cust_new(struct sim *s)
{
    if (s->nfree > 0)
        return s->freecu[--s->nfree];
    if (s->ncu == s->cucap) {
        s->cucap = s->cucap ? s->cucap * 2 : 1024;
        s->cu = sb_realloc(s->cu, (size_t)s->cucap * sizeof(*s->cu));
        s->freecu = sb_realloc(s->freecu, (size_t)s->cucap * sizeof(*s->freecu));
    }
    return s->ncu++;
}

static void schedule_arrival(struct sim *s, uint32_t c)
{
    const struct sb_sim_class *k = &s->m->cls[c];
    if (k->rate_per_s <= 0)
        return;
    s->next_arrival_s[c] += sb_sim_rng_exp(&s->arr_rng[c], 1.0 / k->rate_per_s);
    if (s->next_arrival_s[c] < s->m->duration_s)
        ev_push(s, to_us(s->next_arrival_s[c]), EV_ARRIVAL | c);
}

static int arrive(struct sim *s, uint32_t c, int64_t now, char *errstr, size_t errstr_size)
{
    const struct sb_sim_class *k = &s->m->cls[c];
    struct sb_route_ticket_spec spec;
    char id[24];
    uint32_t slot = cust_new(s);
    struct cust *cu = &s->cu[slot];

    cu->arrived_us = now;
    cu->handle_s = sb_sim_rng_exp(&s->svc_rng[c], k->aht_s);
    cu->cls = c;
    cu->agent = UINT32_MAX;
    cu->measured = now >= s->w_us && now < s->d_us;
    cu->overflowed = 0;
    make_id(id, 't', slot);
    memset(&spec, 0, sizeof(spec));
    spec.id = id;
    spec.channel = SB_ROUTE_CH_VOICE;
    spec.band = k->band;
    spec.team = k->team;
    for (size_t i = 0; i < k->nskills; i++)
        spec.skills[i] = k->skills[i];
    spec.nskills = k->nskills;
    spec.relax_mask = k->relax_mask;
    spec.arrived_us = now;
    spec.tag = slot;
    schedule_arrival(s, c);
    return sb_route_ticket_add(s->r, &spec, now, errstr, errstr_size);
}

static int depart(struct sim *s, uint32_t slot, int64_t now)
{
    char id[24];
    uint32_t agent = s->cu[slot].agent;

    s->load[agent]--;
    s->busy--;
    s->grp_busy[s->agent_grp[agent]]--;
    s->freecu[s->nfree++] = slot;
    make_id(id, 't', slot);
    return sb_route_ticket_done(s->r, id, now);
}

static int model_check(const struct sb_sim_model *m, char *errstr, size_t errstr_size)
{
    uint64_t agents = 0;
    if (m->ncls < 1 || m->ncls > SB_SIM_MAX_CLASSES || m->ngrp < 1 || m->ngrp > SB_SIM_MAX_GROUPS) {
        sb_fmt(errstr, errstr_size, "a model needs 1..%d classes and 1..%d groups",
               SB_SIM_MAX_CLASSES, SB_SIM_MAX_GROUPS);
        return SB_E_INVAL;
    }
    for (size_t c = 0; c < m->ncls; c++) {
        const struct sb_sim_class *k = &m->cls[c];
        if (!(k->rate_per_s >= 0) || !(k->rate_per_s < 1e6) || !(k->aht_s > 0) ||
            !(k->aht_s < 1e7) || k->band < 1 || k->band > SB_ROUTE_BANDS ||
            k->nskills > SB_ROUTE_MAX_REQ) {
            sb_fmt(errstr, errstr_size,
                   "class %zu: rate must lie in [0, 1e6), AHT in (0, 1e7) s, band in 1..4", c);
            return SB_E_INVAL;
        }
    }
    for (size_t g = 0; g < m->ngrp; g++) {
        if (m->grp[g].agents < 0 || m->grp[g].nskills > SB_SIM_MAX_GROUP_SKILLS) {
            sb_fmt(errstr, errstr_size, "group %zu: agents must not be negative", g);
            return SB_E_INVAL;
        }
        agents += (uint64_t)m->grp[g].agents;
    }
    if (agents < 1 || agents > 1000000) {
        sb_fmt(errstr, errstr_size, "a model needs 1..1000000 agents");
        return SB_E_INVAL;
    }
    if (!(m->duration_s > 0) || !(m->duration_s <= 1e10) || !(m->warmup_s >= 0) ||
        !(m->warmup_s < m->duration_s) || !(m->sl_threshold_s >= 0) || !(m->sl_threshold_s < 1e9)) {
        sb_fmt(errstr, errstr_size,
               "duration must lie in (0, 1e10] s, warm-up in [0, duration), SL threshold "
               "in [0, 1e9) s");
        return SB_E_INVAL;
    }
    if (m->batches < 2 || m->batches > SB_SIM_MAX_BATCHES) {
        sb_fmt(errstr, errstr_size, "batches must lie in 2..%d", SB_SIM_MAX_BATCHES);
        return SB_E_INVAL;
    }
    return 0;
}

/* Builds the stats of one class (cls < ncls) or of all together (cls == ncls). */
static void stats_of(struct sim *s, size_t cls, struct sb_sim_stats *st)
{
    const struct sb_sim_model *m = s->m;
    double pw[SB_SIM_MAX_BATCHES], asa[SB_SIM_MAX_BATCHES], sl[SB_SIM_MAX_BATCHES];
    struct bstat tot = {0, 0, 0, 0, 0};
    int nb = 0;

    memset(st, 0, sizeof(*st));
    for (int k = 0; k < m->batches; k++) {
        struct bstat b = {0, 0, 0, 0, 0};
        for (size_t c = 0; c < m->ncls; c++) {
            const struct bstat *x = &s->bs[(size_t)k * SB_SIM_MAX_CLASSES + c];
            if (cls < m->ncls && c != cls)
                continue;
            b.n += x->n;
            b.waited += x->waited;
            b.within += x->within;
            b.overflowed += x->overflowed;
            b.sum_s += x->sum_s;
        }
        tot.n += b.n;
        tot.waited += b.waited;
        tot.within += b.within;
        tot.overflowed += b.overflowed;
        tot.sum_s += b.sum_s;
        if (b.n == 0)
            continue;
        pw[nb] = (double)b.waited / (double)b.n;
        asa[nb] = b.sum_s / (double)b.n;
        sl[nb] = (double)b.within / (double)b.n;
        nb++;
    }
    st->answered = tot.n;
    st->overflowed = tot.overflowed;
    if (tot.n > 0) {
        st->p_wait = (double)tot.waited / (double)tot.n;
        st->asa_s = tot.sum_s / (double)tot.n;
        st->sl = (double)tot.within / (double)tot.n;
    }
    st->ci_p_wait = ci_of(pw, nb);
    st->ci_asa = ci_of(asa, nb);
    st->ci_sl = ci_of(sl, nb);
    for (size_t c = 0; c < m->ncls; c++) {
        if ((cls == m->ncls || c == cls) && s->max_s[c] > st->max_s)
            st->max_s = s->max_s[c];
    }
    if (m->percentiles) {
        struct waits all = {NULL, 0, 0};
        const struct waits *w = &s->w[cls < m->ncls ? cls : 0];
        if (cls == m->ncls) {
            for (size_t c = 0; c < m->ncls; c++) {
                for (size_t i = 0; i < s->w[c].n; i++)
                    waits_push(&all, s->w[c].v[i]);
            }
            w = &all;
        }
        if (w->n > 0) {
            double *v = sb_malloc(w->n * sizeof(*v));
            memcpy(v, w->v, w->n * sizeof(*v));
            qsort(v, w->n, sizeof(*v), cmp_double);
            st->p90_s = v[(size_t)ceil(0.90 * (double)w->n) - 1];
            st->p99_s = v[(size_t)ceil(0.99 * (double)w->n) - 1];
            free(v);
        }
        free(all.v);
    }
}

static int setup(struct sim *s, char *errstr, size_t errstr_size)
{
    const struct sb_sim_model *m = s->m;
    uint32_t a = 0;
    int rc;

    s->r = sb_route_new(&m->cfg, errstr, errstr_size);
    if (s->r == NULL)
        return SB_E_INVAL;
    for (size_t g = 0; g < m->ngrp; g++)
        s->nagents += (uint32_t)m->grp[g].agents;
    s->load = sb_calloc(s->nagents, sizeof(*s->load));
    s->agent_grp = sb_calloc(s->nagents, sizeof(*s->agent_grp));
    for (size_t g = 0; g < m->ngrp; g++) {
        for (int i = 0; i < m->grp[g].agents; i++, a++) {
            struct sb_route_agent_spec spec;
            char id[24];
            memset(&spec, 0, sizeof(spec));
            make_id(id, 'a', a);
            spec.id = id;
            spec.team = m->grp[g].team;
            spec.skills = m->grp[g].skills;
            spec.nskills = m->grp[g].nskills;
            spec.capacity[SB_ROUTE_CH_VOICE] = 1;
            spec.tag = a;
            s->agent_grp[a] = (uint8_t)g;
            rc = sb_route_agent_set(s->r, &spec, 0, errstr, errstr_size);
            if (rc == 0)
                rc = sb_route_agent_presence(s->r, id, SB_ROUTE_AVAILABLE, 0);
            if (rc != 0)
                return rc;
        }
    }
    for (size_t c = 0; c < m->ncls; c++) {
        /* Independent streams per class and purpose, derived from the seed. */
        sb_sim_rng_seed(&s->arr_rng[c], m->seed * 0x100000001b3ULL + 2 * c + 1);
        sb_sim_rng_seed(&s->svc_rng[c], m->seed * 0x100000001b3ULL + 2 * c + 2);
        s->next_arrival_s[c] = 0;
        schedule_arrival(s, (uint32_t)c);
    }
    return 0;
}

int sb_sim_run(const struct sb_sim_model *m, struct sb_sim_result *res, char *errstr,
               size_t errstr_size)
{
    struct sim s;
    int rc;

    memset(res, 0, sizeof(*res));
    rc = model_check(m, errstr, errstr_size);
    if (rc != 0)
        return rc;
    memset(&s, 0, sizeof(s));
    s.m = m;
    s.res = res;
    s.w_us = to_us(m->warmup_s);
    s.d_us = to_us(m->duration_s);
    s.sl_us = to_us(m->sl_threshold_s);
    s.batch_us = (double)(s.d_us - s.w_us) / m->batches;
    s.bs = sb_calloc((size_t)m->batches * SB_SIM_MAX_CLASSES, sizeof(*s.bs));
    s.busy_b = sb_calloc((size_t)m->batches, sizeof(*s.busy_b));
    rc = setup(&s, errstr, errstr_size);
    if (rc != 0)
        goto out;

    for (;;) {
        int64_t dl;
        int has_dl = sb_route_next_deadline(s.r, &dl) == 0;
        struct ev e;

        if (s.nev == 0 && !has_dl)
            break;
        res->events++;
        if (has_dl && (s.nev == 0 || dl <= s.ev[0].t)) {
            integrate(&s, dl);
            rc = sb_route_tick(s.r, dl);
            if (rc != 0)
                goto out;
            drain(&s);
            continue;
        }
        e = ev_pop(&s);
        integrate(&s, e.t);
        if (e.what & EV_ARRIVAL)
            rc = arrive(&s, e.what & ~EV_ARRIVAL, e.t, errstr, errstr_size);
        else
            rc = depart(&s, e.what, e.t);
        if (rc != 0)
            goto out;
        drain(&s);
    }
    if (sb_route_waiting(s.r) != 0) {
        sb_fmt(errstr, errstr_size, "%llu customers were never answered",
               (unsigned long long)sb_route_waiting(s.r));
        rc = SB_E_STATE;
        goto out;
    }

    {
        double servers = (double)s.nagents, occ[SB_SIM_MAX_BATCHES], busy = 0;
        double window = (double)(s.d_us - s.w_us);
        for (int k = 0; k < m->batches; k++) {
            occ[k] = s.busy_b[k] / (servers * (double)(bound(&s, k + 1) - bound(&s, k)));
            busy += s.busy_b[k];
        }
        res->occupancy = busy / (servers * window);
        res->ci_occ = ci_of(occ, m->batches);
        for (size_t g = 0; g < m->ngrp; g++) {
            if (m->grp[g].agents > 0)
                res->grp_occ[g] = s.grp_busy_us[g] / ((double)m->grp[g].agents * window);
        }
        for (size_t c = 0; c < m->ncls; c++)
            stats_of(&s, c, &res->cls[c]);
        stats_of(&s, m->ncls, &res->all);
    }

out:
    sb_route_destroy(s.r);
    for (size_t c = 0; c < SB_SIM_MAX_CLASSES; c++)
        free(s.w[c].v);
    free(s.ev);
    free(s.cu);
    free(s.freecu);
    free(s.load);
    free(s.agent_grp);
    free(s.bs);
    free(s.busy_b);
    return rc;
}

/* ---------------------------------------------------------------- models */

void sb_sim_model_default(struct sb_sim_model *m)
{
    memset(m, 0, sizeof(*m));
    sb_route_cfg_default(&m->cfg);
    m->duration_s = 100000;
    m->warmup_s = 10000;
    m->sl_threshold_s = 20;
    m->seed = 1;
    m->batches = 20;
}

static void no_overflow(struct sb_route_cfg *cfg)
{
    for (int b = 0; b < SB_ROUTE_BANDS; b++)
        cfg->overflow_us[b][0] = cfg->overflow_us[b][1] = -1;
}

static void set_class(struct sb_sim_class *k, const char *name, double rate, double aht, int band,
                      const char *team, const char *skill)
{
    memset(k, 0, sizeof(*k));
    k->name = name;
    k->rate_per_s = rate;
    k->aht_s = aht;
    k->band = band;
    k->team = team;
    k->skills[0] = skill;
    k->nskills = 1;
}

static void set_group(struct sb_sim_group *g, const char *name, int agents, const char *team,
                      const char *skill1, const char *skill2)
{
    memset(g, 0, sizeof(*g));
    g->name = name;
    g->agents = agents;
    g->team = team;
    g->skills[0].name = skill1;
    g->skills[0].level = 5;
    g->nskills = 1;
    if (skill2 != NULL) {
        g->skills[1].name = skill2;
        g->skills[1].level = 5;
        g->nskills = 2;
    }
}

void sb_sim_model_mmc(struct sb_sim_model *m, double rate_per_s, double aht_s, int agents)
{
    /* First come first served in one queue: the policy picks among idle agents only,
     * which M/M/c does not see; overflow has nowhere wider to go. */
    no_overflow(&m->cfg);
    set_class(&m->cls[0], "calls", rate_per_s, aht_s, 3, NULL, "skill:s");
    m->ncls = 1;
    set_group(&m->grp[0], "agents", agents, NULL, "skill:s", NULL);
    m->ngrp = 1;
}

int sb_sim_scenario(const char *name, int variant, struct sb_sim_model *m)
{
    no_overflow(&m->cfg);
    m->cfg.policy = SB_ROUTE_LONGEST_IDLE;
    if (strcmp(name, "two-skills") == 0) {
        /* 18 + 12 Erlangs on 32 agents (occupancy 0.94); 6 agents take both skills, or,
         * as the baseline, the same 32 agents are split 19 / 13. */
        set_class(&m->cls[0], "skill-a", 0.3, 60, 3, NULL, "skill:a");
        set_class(&m->cls[1], "skill-b", 0.2, 60, 3, NULL, "skill:b");
        m->ncls = 2;
        if (variant == 0) {
            set_group(&m->grp[0], "a-only", 16, NULL, "skill:a", NULL);
            set_group(&m->grp[1], "b-only", 10, NULL, "skill:b", NULL);
            set_group(&m->grp[2], "shared", 6, NULL, "skill:a", "skill:b");
            m->ngrp = 3;
        } else {
            set_group(&m->grp[0], "a-only", 19, NULL, "skill:a", NULL);
            set_group(&m->grp[1], "b-only", 13, NULL, "skill:b", NULL);
            m->ngrp = 2;
        }
        return 0;
    }
    if (strcmp(name, "vip") == 0) {
        /* 18 Erlangs on 20 agents (0.9); a fifth of the customers are VIPs, scored P1
         * against everybody else's P3, or P3 too as the baseline. */
        set_class(&m->cls[0], "vip", 0.03, 120, variant == 0 ? 1 : 3, NULL, "skill:s");
        set_class(&m->cls[1], "regular", 0.12, 120, 3, NULL, "skill:s");
        m->ncls = 2;
        set_group(&m->grp[0], "pool", 20, NULL, "skill:s", NULL);
        m->ngrp = 1;
        return 0;
    }
    if (strcmp(name, "overflow") == 0) {
        /* Team north carries 9.5 Erlangs on 10 agents (0.95), team south 5 on 10. A P3
         * ticket for north that has waited 60 s may go to south; the baseline never. */
        set_class(&m->cls[0], "north", 0.095, 100, 3, "north", "skill:s");
        set_class(&m->cls[1], "south", 0.05, 100, 3, "south", "skill:s");
        m->ncls = 2;
        set_group(&m->grp[0], "north", 10, "north", "skill:s", NULL);
        set_group(&m->grp[1], "south", 10, "south", "skill:s", NULL);
        m->ngrp = 2;
        if (variant == 0)
            m->cfg.overflow_us[2][1] = 60 * 1000000LL;
        return 0;
    }
    return SB_E_INVAL;
}
