/* The triage rule book: keywords, phrases and regular expressions with weights, read
 * from a JSON file (deploy/config/triage-rules.json) and compiled with Hyperscan into
 * one database, so that thousands of rules cost one pass over the text. Every rule
 * that fires is reported by id, so each decision can be explained.
 *
 * A rule's effects: a business domain with a weight, a nature, a journey stage, an
 * urgency (1–3), flags (legal_pr, public_negative, self_service, spam), a score delta,
 * and whether it is a symptom term that forms an incident signature. A rule set is
 * immutable once built; the service swaps whole sets on reload. */
#ifndef SB_TRIAGE_RULES_H
#define SB_TRIAGE_RULES_H

#include <jansson.h>
#include <stddef.h>

/* The six business domains of SPEC.md §2, in the order of the event schema's enum. */
enum sb_domain {
    SB_DOMAIN_PRODUCT = 0,
    SB_DOMAIN_ORDER_PAYMENT,
    SB_DOMAIN_LOGISTICS,
    SB_DOMAIN_ACCOUNT,
    SB_DOMAIN_COMPLAINT,
    SB_DOMAIN_INQUIRY,
    SB_DOMAIN_COUNT,
    SB_DOMAIN_NONE = -1,
};

enum sb_nature { SB_NATURE_NONE = -1, SB_NATURE_FAULT = 0, SB_NATURE_INQUIRY, SB_NATURE_DEMAND };

enum sb_journey {
    SB_JOURNEY_NONE = -1,
    SB_JOURNEY_PRE_SALE = 0,
    SB_JOURNEY_IN_SALE,
    SB_JOURNEY_AFTER_SALE,
    SB_JOURNEY_COMPLAINT,
};

enum sb_flag {
    SB_FLAG_LEGAL_PR = 1 << 0,
    SB_FLAG_PUBLIC_NEGATIVE = 1 << 1,
    SB_FLAG_SELF_SERVICE = 1 << 2,
    SB_FLAG_SPAM = 1 << 3,
};

/* Schema names ("product_function", …, "in_sale", …) and back; -1 when unknown.
 * sb_domain_parse also accepts the short names of the datasets' maps ("product",
 * "logistics", "complaint", "inquiry"). */
const char *sb_domain_name(int d);
int sb_domain_parse(const char *s);
const char *sb_nature_name(int n);
int sb_nature_parse(const char *s);
const char *sb_stage_name(int s);
int sb_stage_parse(const char *s);

struct sb_rule {
    char *id;
    int domain; /* enum sb_domain or SB_DOMAIN_NONE */
    double weight;
    int nature;  /* enum sb_nature or SB_NATURE_NONE */
    int stage;   /* enum sb_journey or SB_JOURNEY_NONE */
    int urgency; /* 0 (no opinion) or 1–3 */
    unsigned flags;
    int score_delta;
    int signature; /* a symptom term: part of the incident signature */
    char *article; /* knowledge-base article id (self-service), or NULL */
    unsigned sla;  /* special SLA clocks the rule starts (bits of sb_sla_kind_name) */
};

/* Special SLA clock kinds (SPEC.md §4) a rule can start, as bits 0..n-1: */
const char *sb_sla_kind_name(int bit); /* NULL past the last */

struct sb_ruleset;

/* Builds a rule set from the rules file's JSON (see docs/triage.md for the format)
 * plus optional extra rules in the same format (the knowledge-base articles).
 * Returns NULL with errstr naming the rule and field, or the pattern Hyperscan
 * refused. */
struct sb_ruleset *sb_ruleset_build(const json_t *rules, const json_t *extra, char *errstr,
                                    size_t errstr_size);
/* Reads and builds a rules file. */
struct sb_ruleset *sb_ruleset_load(const char *path, const json_t *extra, char *errstr,
                                   size_t errstr_size);
void sb_ruleset_destroy(struct sb_ruleset *rs);

size_t sb_ruleset_count(const struct sb_ruleset *rs);
size_t sb_ruleset_patterns(const struct sb_ruleset *rs);
const struct sb_rule *sb_ruleset_rule(const struct sb_ruleset *rs, size_t i);
/* A rule's confidence above which the rules decide the domain over the model
 * ("explicit_weight" in the file, default 1.0). */
double sb_ruleset_explicit_weight(const struct sb_ruleset *rs);
/* Default journey stage of a domain when no rule says ("stage_by_domain"). */
int sb_ruleset_default_stage(const struct sb_ruleset *rs, int domain);

/* Per-thread scanning state (Hyperscan scratch). Valid for the set it was made for. */
struct sb_rulescan;
struct sb_rulescan *sb_rulescan_new(const struct sb_ruleset *rs);
void sb_rulescan_destroy(struct sb_rulescan *sc);

/* Scans text and writes the indexes of the rules that fired, in rule order, into
 * fired (capacity cap). Returns how many fired (at most cap), or -1 on a Hyperscan
 * error. */
int sb_rules_scan(const struct sb_ruleset *rs, struct sb_rulescan *sc, const char *text, size_t len,
                  int *fired, int cap);

#endif
