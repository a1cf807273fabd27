/* Erlang C: the M/M/c queue (Poisson arrivals, exponential handle times, c agents, first
 * come first served, nobody abandons) that staffing and wait estimates rest on. Pure
 * functions. Source: A. K. Erlang (1917); the forms used are those of Gans, Koole and
 * Mandelbaum, "Telephone call centers: tutorial, review, and research prospects",
 * M&SOM 5(2), 2003, §4.1, with Erlang B computed by its recursion so that c in the
 * thousands neither overflows nor loses precision (docs/router-core.md). */
#ifndef SB_ROUTER_ERLANG_H
#define SB_ROUTER_ERLANG_H

#define SB_ERLANG_MAX_AGENTS 1000000

/* Offered traffic in Erlangs: arrivals per second × average handle time in seconds. */
double sb_erlang_traffic(double lambda_per_s, double aht_s);

/* Erlang B: probability that all c agents are busy in the loss system, traffic a.
 * Returns 1 for c = 0 and NaN for arguments out of range (a < 0, c < 0). */
double sb_erlang_b(double a, int c);

/* Erlang C: probability that an arrival waits, traffic a, c agents; 1 when a ≥ c. */
double sb_erlang_c(double a, int c);

/* Average speed of answer (mean wait of all arrivals, seconds); INFINITY when the
 * queue is unstable (λ·AHT ≥ c). */
double sb_erlang_asa(double lambda_per_s, double aht_s, int c);

/* Service level: probability that an arrival waits at most t_s seconds; 0 when the
 * queue is unstable. */
double sb_erlang_sl(double lambda_per_s, double aht_s, int c, double t_s);

/* Occupancy: the share of agent time spent handling, λ·AHT / c, at most 1. */
double sb_erlang_occupancy(double lambda_per_s, double aht_s, int c);

/* The smallest number of agents whose service level P(wait ≤ t_s) reaches target
 * (0 < target < 1), then raised by the reserve fraction (SPEC.md §6: 0.10–0.15 for
 * peaks) and rounded up. Returns the agents, or SB_E_INVAL when an argument is out of
 * range or more than SB_ERLANG_MAX_AGENTS would be needed. */
int sb_erlang_agents(double lambda_per_s, double aht_s, double t_s, double target, double reserve);

/* Expected wait (seconds) of a customer with `ahead` customers before it in a first
 * come first served queue served by c busy agents: (ahead + 1) departures at rate
 * c / AHT. 0 when c < 1 is not meaningful: returns INFINITY then. */
double sb_erlang_eta(double ahead, double aht_s, int c);

#endif
