/* libFuzzer target: a contact's text through triage's CPU work — 5W1H extraction,
 * masking and classification with the committed rule book and model. Valid UTF-8 in
 * must give valid UTF-8 out (every extracted field and the masked text), masking must
 * never grow beyond its buffer, and the decision must be one of the six domains. */
#include "classify.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sb_ruleset *rules;
static struct sb_rulescan *scan;
static struct sb_model *model;

static void load(void)
{
    char err[512];
    rules =
        sb_ruleset_load(SB_SOURCE_DIR "/deploy/config/triage-rules.json", NULL, err, sizeof(err));
    model = sb_model_load(SB_SOURCE_DIR "/deploy/config/triage-model.tsv", err, sizeof(err));
    if (rules == NULL || model == NULL) {
        fprintf(stderr, "fuzz_triage: %s\n", err);
        abort();
    }
    scan = sb_rulescan_new(rules);
}

static int utf8_ok(const char *s)
{
    json_t *j = json_string(s);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char masked[8192];
    struct sb_extract ex;
    struct sb_classification cl;
    const char *text = (const char *)data;
    json_t *valid = json_stringn(text, size); /* NULL: not UTF-8 (or a NUL inside) */
    int n;

    if (rules == NULL)
        load();
    sb_extract_text(text, size, 1716184800000LL, 480, &ex);
    if (sb_classify(rules, scan, model, text, size, &ex, &cl) != 0)
        __builtin_trap();
    if (cl.domain < 0 || cl.domain >= SB_DOMAIN_COUNT || cl.urgency < 1 || cl.urgency > 3)
        __builtin_trap();
    n = sb_mask_text(text, size, masked, sizeof(masked));
    if (n < 0 || strlen(masked) >= sizeof(masked))
        __builtin_trap();
    if (valid != NULL) {
        const char *fields[] = {ex.order_no, ex.when,   ex.when_words, ex.page,
                                ex.os,       ex.device, ex.error_text, masked};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            if (!utf8_ok(fields[i]))
                __builtin_trap();
    }
    json_decref(valid);
    return 0;
}
