/* Classification of one contact's text: the rule book fires first (explicit matches
 * decide the domain), the learned model decides the rest; nature, journey stage,
 * urgency, flags, the incident signature and the self-service article come from the
 * rules, with defaults from the extracted desired outcome. Pure logic. */
#ifndef SB_TRIAGE_CLASSIFY_H
#define SB_TRIAGE_CLASSIFY_H

#include "extract.h"
#include "model.h"
#include "rules.h"

#define SB_MAX_FIRED 32

struct sb_classification {
    int domain;        /* enum sb_domain */
    double confidence; /* the model's probability, or 1 for a rule decision */
    int by_rule;       /* 1 when an explicit rule decided the domain */
    int nature;        /* enum sb_nature */
    int stage;         /* enum sb_journey */
    int urgency;       /* 1–3 */
    unsigned flags;    /* enum sb_flag bits */
    unsigned sla;      /* special SLA clocks (bits of sb_sla_kind_name) */
    int score_delta;
    int fired[SB_MAX_FIRED]; /* rule indexes, in rule order */
    int nfired;
    const char *article; /* self-service article id (borrowed from the rule set), or NULL */
    char signature[160]; /* "<domain>:<symptom rule ids>[:<error code>]", "" when none */
};

/* Classifies text. model may be NULL (rules only). ex (may be NULL) supplies the
 * desired outcome and error text. Returns 0, or -1 when the rules could not scan. */
int sb_classify(const struct sb_ruleset *rs, struct sb_rulescan *sc, const struct sb_model *model,
                const char *text, size_t len, const struct sb_extract *ex,
                struct sb_classification *out);

#endif
