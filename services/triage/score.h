/* The priority model of SPEC.md §2: urgency, impact and tier scored 1–3 each and
 * summed, moved by rules that lower or raise it, and cut into bands P1–P4. Every
 * threshold is configuration. Pure logic. */
#ifndef SB_TRIAGE_SCORE_H
#define SB_TRIAGE_SCORE_H

struct sb_score_opts {
    double vip_spend;           /* annual spend from which a customer is VIP (10 000) */
    double regular_spend;       /* …regular (1 000) */
    double amount_impact;       /* an amount from which one customer's impact is 2 (1 000) */
    int p1_min, p2_min, p3_min; /* lowest score of each band (8, 5, 3); below: P4 */
};

void sb_score_opts_default(struct sb_score_opts *o);

enum sb_tier { SB_TIER_NEW = 1, SB_TIER_REGULAR = 2, SB_TIER_VIP = 3 };

/* Tier of a customer from the CRM: partner or spend ≥ vip_spend → VIP; spend ≥
 * regular_spend → regular; else new. */
int sb_tier(const struct sb_score_opts *o, double annual_spend, int partner);
const char *sb_tier_name(int tier); /* "vip", "regular", "new" */

/* Impact: 3 for an incident or an enterprise VIP, 2 for one customer with an amount
 * ≥ amount_impact, else 1. */
int sb_impact(const struct sb_score_opts *o, int incident, int enterprise_vip, int has_amount,
              double amount);

/* Score (urgency + impact + tier + delta, kept within 1–10) and its band. */
int sb_score(int urgency, int impact, int tier, int delta);
const char *sb_band(const struct sb_score_opts *o, int score); /* "P1".."P4" */
/* The score a band is given when a supervisor sets it: prev when it already lies in
 * the band, else the band's lowest score. */
int sb_score_for_band(const struct sb_score_opts *o, const char *band, int prev);

#endif
