/* Combines rules and model (see classify.h). */
#include "classify.h"

#include "sb/util.h"

#include <ctype.h>
#include <string.h>

static void decide_domain(const struct sb_ruleset *rs, const struct sb_model *model,
                          const char *text, size_t len, const double *rule_score,
                          struct sb_classification *out)
{
    double best = 0, p[SB_DOMAIN_COUNT];
    int arg = -1;

    for (int d = 0; d < SB_DOMAIN_COUNT; d++)
        if (rule_score[d] > best) {
            best = rule_score[d];
            arg = d;
        }
    if (arg >= 0 && (best >= sb_ruleset_explicit_weight(rs) || model == NULL)) {
        out->domain = arg;
        out->confidence = 1.0;
        out->by_rule = 1;
        return;
    }
    if (model == NULL) {
        out->domain = SB_DOMAIN_INQUIRY; /* nothing said: a plain inquiry */
        out->confidence = 0;
        return;
    }
    sb_model_predict(model, text, len, p);
    arg = 0;
    for (int d = 1; d < SB_DOMAIN_COUNT; d++)
        if (p[d] + rule_score[d] > p[arg] + rule_score[arg])
            arg = d;
    out->domain = arg;
    out->confidence = p[arg];
}

/* The strongest rule opinion of each kind wins (ties: the first rule). */
static void collect_effects(const struct sb_ruleset *rs, struct sb_classification *out,
                            double *rule_score)
{
    double nature_w = -1, stage_w = -1;

    for (int i = 0; i < out->nfired; i++) {
        const struct sb_rule *r = sb_ruleset_rule(rs, (size_t)out->fired[i]);
        if (r->domain >= 0)
            rule_score[r->domain] += r->weight;
        if (r->nature >= 0 && r->weight > nature_w) {
            out->nature = r->nature;
            nature_w = r->weight;
        }
        if (r->stage >= 0 && r->weight > stage_w) {
            out->stage = r->stage;
            stage_w = r->weight;
        }
        if (r->urgency > out->urgency)
            out->urgency = r->urgency;
        out->flags |= r->flags;
        out->sla |= r->sla;
        out->score_delta += r->score_delta;
        if (r->article != NULL && out->article == NULL)
            out->article = r->article;
    }
}

static void make_signature(const struct sb_ruleset *rs, const struct sb_extract *ex,
                           struct sb_classification *out)
{
    size_t n, cap = sizeof(out->signature);
    int any = 0;

    out->signature[0] = '\0';
    sb_fmt(out->signature, cap, "%s:", sb_domain_name(out->domain));
    n = strlen(out->signature);
    for (int i = 0; i < out->nfired && n < cap; i++) {
        const struct sb_rule *r = sb_ruleset_rule(rs, (size_t)out->fired[i]);
        if (!r->signature)
            continue;
        sb_fmt(out->signature + n, cap - n, "%s%s", any ? "," : "", r->id);
        n += strlen(out->signature + n);
        any = 1;
    }
    if (ex != NULL && ex->error_text[0] != '\0' && n < cap) {
        /* The error text joins the signature in a normalized form: alphanumerics only,
         * lowercased, so "E1023" and "e1023." group together. */
        char code[48];
        size_t k = 0;
        for (const char *s = ex->error_text; *s != '\0' && k + 1 < sizeof(code); s++)
            if (isalnum((unsigned char)*s))
                code[k++] = (char)tolower((unsigned char)*s);
        code[k] = '\0';
        if (k > 0) {
            sb_fmt(out->signature + n, cap - n, ":%s", code);
            any = 1;
        }
    }
    if (!any)
        out->signature[0] = '\0'; /* too vague to group */
}

int sb_classify(const struct sb_ruleset *rs, struct sb_rulescan *sc, const struct sb_model *model,
                const char *text, size_t len, const struct sb_extract *ex,
                struct sb_classification *out)
{
    double rule_score[SB_DOMAIN_COUNT] = {0};
    int n;

    memset(out, 0, sizeof(*out));
    out->nature = SB_NATURE_NONE;
    out->stage = SB_JOURNEY_NONE;
    n = sb_rules_scan(rs, sc, text, len, out->fired, SB_MAX_FIRED);
    if (n < 0)
        return -1;
    out->nfired = n;
    collect_effects(rs, out, rule_score);
    decide_domain(rs, model, text, len, rule_score, out);
    if (out->nature < 0) {
        enum sb_outcome o = ex != NULL ? ex->outcome : SB_OUTCOME_NONE;
        if (o == SB_OUTCOME_REFUND || o == SB_OUTCOME_COMPENSATION || o == SB_OUTCOME_EXCHANGE)
            out->nature = SB_NATURE_DEMAND;
        else if (out->urgency >= 2 || (ex != NULL && ex->error_text[0] != '\0'))
            out->nature = SB_NATURE_FAULT;
        else
            out->nature = SB_NATURE_INQUIRY;
    }
    if (out->urgency == 0)
        out->urgency = out->nature == SB_NATURE_FAULT ? 2 : 1;
    if (out->stage < 0)
        out->stage = out->domain == SB_DOMAIN_COMPLAINT || (out->flags & SB_FLAG_LEGAL_PR)
                         ? SB_JOURNEY_COMPLAINT
                         : sb_ruleset_default_stage(rs, out->domain);
    make_signature(rs, ex, out);
    return 0;
}
