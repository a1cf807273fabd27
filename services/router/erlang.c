/* Erlang C (see erlang.h). Everything derives from Erlang B by its recursion
 *     B(0) = 1,  B(k) = a·B(k−1) / (k + a·B(k−1)),
 * which stays in [0, 1] at every step (no factorials, no powers), and
 *     C(a, c) = c·B(a, c) / (c − a·(1 − B(a, c)))   for a < c. */
#include "erlang.h"

#include "sb/err.h"

#include <math.h>

double sb_erlang_traffic(double lambda_per_s, double aht_s)
{
    return lambda_per_s * aht_s;
}

double sb_erlang_b(double a, int c)
{
    double b = 1.0;
    if (!(a >= 0) || c < 0 || !isfinite(a))
        return NAN;
    for (int k = 1; k <= c; k++)
        b = a * b / ((double)k + a * b);
    return b;
}

static double erlang_c_from_b(double a, int c, double b)
{
    if (a >= (double)c)
        return 1.0;
    return (double)c * b / ((double)c - a * (1.0 - b));
}

double sb_erlang_c(double a, int c)
{
    double b = sb_erlang_b(a, c);
    if (isnan(b))
        return NAN;
    if (c == 0)
        return 1.0;
    return erlang_c_from_b(a, c, b);
}

double sb_erlang_asa(double lambda_per_s, double aht_s, int c)
{
    double a = lambda_per_s * aht_s;
    if (!(aht_s > 0) || c < 1 || isnan(a) || a < 0)
        return NAN;
    if (a >= (double)c)
        return INFINITY;
    return sb_erlang_c(a, c) * aht_s / ((double)c - a);
}

static double sl_of(double a, int c, double pw, double aht_s, double t_s)
{
    return 1.0 - pw * exp(-((double)c - a) * t_s / aht_s);
}

double sb_erlang_sl(double lambda_per_s, double aht_s, int c, double t_s)
{
    double a = lambda_per_s * aht_s;
    if (!(aht_s > 0) || c < 1 || isnan(a) || a < 0 || !(t_s >= 0))
        return NAN;
    if (a >= (double)c)
        return 0.0;
    return sl_of(a, c, sb_erlang_c(a, c), aht_s, t_s);
}

double sb_erlang_occupancy(double lambda_per_s, double aht_s, int c)
{
    double a = lambda_per_s * aht_s;
    if (c < 1 || isnan(a) || a < 0)
        return NAN;
    return a >= (double)c ? 1.0 : a / (double)c;
}

int sb_erlang_agents(double lambda_per_s, double aht_s, double t_s, double target, double reserve)
{
    double a = lambda_per_s * aht_s, b = 1.0, need;

    if (!(lambda_per_s >= 0) || !(aht_s > 0) || !(t_s >= 0) || !(target > 0) || !(target < 1) ||
        !(reserve >= 0) || !isfinite(a) || !isfinite(reserve))
        return SB_E_INVAL;
    for (int c = 1; c <= SB_ERLANG_MAX_AGENTS; c++) {
        b = a * b / ((double)c + a * b);
        if ((double)c <= a)
            continue;
        if (sl_of(a, c, erlang_c_from_b(a, c, b), aht_s, t_s) >= target) {
            need = ceil((double)c * (1.0 + reserve) - 1e-9);
            return need > SB_ERLANG_MAX_AGENTS ? SB_E_INVAL : (int)need;
        }
    }
    return SB_E_INVAL;
}

double sb_erlang_eta(double ahead, double aht_s, int c)
{
    if (c < 1)
        return INFINITY;
    if (ahead < 0)
        ahead = 0;
    return (ahead + 1.0) * aht_s / (double)c;
}
