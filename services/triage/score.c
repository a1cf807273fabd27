/* Priority scoring (see score.h). */
#include "score.h"

#include <string.h>

void sb_score_opts_default(struct sb_score_opts *o)
{
    o->vip_spend = 10000;
    o->regular_spend = 1000;
    o->amount_impact = 1000;
    o->p1_min = 8;
    o->p2_min = 5;
    o->p3_min = 3;
}

int sb_tier(const struct sb_score_opts *o, double annual_spend, int partner)
{
    if (partner || annual_spend >= o->vip_spend)
        return SB_TIER_VIP;
    return annual_spend >= o->regular_spend ? SB_TIER_REGULAR : SB_TIER_NEW;
}

const char *sb_tier_name(int tier)
{
    return tier == SB_TIER_VIP ? "vip" : tier == SB_TIER_REGULAR ? "regular" : "new";
}

int sb_impact(const struct sb_score_opts *o, int incident, int enterprise_vip, int has_amount,
              double amount)
{
    if (incident || enterprise_vip)
        return 3;
    return has_amount && amount >= o->amount_impact ? 2 : 1;
}

int sb_score(int urgency, int impact, int tier, int delta)
{
    int s = urgency + impact + tier + delta;
    return s < 1 ? 1 : s > 10 ? 10 : s;
}

const char *sb_band(const struct sb_score_opts *o, int score)
{
    if (score >= o->p1_min)
        return "P1";
    if (score >= o->p2_min)
        return "P2";
    return score >= o->p3_min ? "P3" : "P4";
}

int sb_score_for_band(const struct sb_score_opts *o, const char *band, int prev)
{
    if (strcmp(sb_band(o, prev), band) == 0)
        return prev;
    if (strcmp(band, "P1") == 0)
        return o->p1_min;
    if (strcmp(band, "P2") == 0)
        return o->p2_min;
    return strcmp(band, "P3") == 0 ? o->p3_min : 1;
}
