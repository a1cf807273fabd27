/* sbctl load: the row model and the field readers shared by the loaders of each kind
 * of reference data (load_agents.c, load_customers.c, load_policies.c, load_calendars.c).
 *
 * A file is read into rows (JSON objects; for CSV, the cells as strings under the
 * header's names, empty cells left out). Every row is validated first and every
 * problem reported as "FILE:LINE: field "NAME": what is wrong"; only a file without
 * a single error is written, in one transaction, with upserts, so loading the same
 * file twice changes nothing. The columns of each kind are documented in
 * docs/database.md. */
#ifndef SB_SBCTL_LOAD_H
#define SB_SBCTL_LOAD_H

#include "sbctl.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define LOAD_ARRAY_MAX 2048 /* bytes of a PostgreSQL array literal built from a list */

struct load_row {
    json_t *obj; /* field name -> value */
    int line;    /* line on which the row starts */
};

struct load_ctx {
    const char *file;          /* as given on the command line, for messages */
    int errors;                /* problems reported so far */
    json_t *seen;              /* uniqueness key -> line of the first row that had it */
    json_t *changed;           /* what a kind wants to tell its after-commit hook */
    const char *vip_spend;     /* customers: tier 3 from this annual spend (decimal) */
    const char *regular_spend; /* customers: tier 2 from this annual spend (decimal) */
};

/* One kind of reference data. */
struct load_kind {
    const char *name;          /* "agents", "customers", "policies" */
    const char *const *fields; /* accepted field names, NULL-terminated */
    /* Validates r, reporting every problem with load_error(). Returns 0 when valid. */
    int (*check)(struct load_ctx *c, const struct load_row *r);
    /* Writes a validated row in the open transaction. Returns 0, or -1 with err. */
    int (*write)(struct load_ctx *c, struct sb_pg *pg, const struct load_row *r, char *err,
                 size_t errsz);
    /* Runs after the commit (may be NULL). Returns 0, or -1 with err. */
    int (*committed)(const struct sbctl *ctl, struct load_ctx *c, char *err, size_t errsz);
};

extern const struct load_kind load_agents;
extern const struct load_kind load_customers;
extern const struct load_kind load_policies;
extern const struct load_kind load_calendars;

/* Hook for the Redis caches filled from the customer tables (ingest's identity cache
 * "sb:ident:<kind>:<hash>" -> customer_no, and the customer records triage caches):
 * called after a customers load commits, with changed = an array of
 * {"customer_no": "...", "identities": {"phone": "...", "email": "...", ...}} (values
 * normalized). Deletes ingest's identity cache entries of every identity and customer
 * number written, so the next contact resolves from the CRM. Redis unreachable: one
 * warning line, the load stays committed, entries expire by their TTL (24 h). */
int load_customers_cache_invalidate(const struct sbctl *ctl, json_t *changed, char *err,
                                    size_t errsz);

/* Reports a problem with a field: "FILE:LINE: field "FIELD": MSG" on stderr (the
 * first few; all are counted in c->errors). */
void load_error(struct load_ctx *c, int line, const char *field, const char *msg);

/* Reads a scalar field as text (strings trimmed of blanks, integers and booleans
 * printed, reals with up to 15 significant digits) into out. Rejects control
 * characters and values longer than max bytes. Returns 1 when present, 0 when absent
 * (missing, null or empty), -1 after reporting a problem. */
int load_string(struct load_ctx *c, const struct load_row *r, const char *key, size_t max,
                char *out, size_t outsz);
/* Same, and absent is a problem ("required"). Returns 1 or -1. */
int load_required(struct load_ctx *c, const struct load_row *r, const char *key, size_t max,
                  char *out, size_t outsz);
/* An identifier: 1..max bytes of letters, digits and . _ - : starting with a letter or
 * a digit. Returns 1, 0 (absent; a problem when required) or -1. */
int load_id(struct load_ctx *c, const struct load_row *r, const char *key, int required, size_t max,
            char *out, size_t outsz);
/* One of allowed (NULL-terminated). Returns 1, 0 (absent) or -1. */
int load_enum(struct load_ctx *c, const struct load_row *r, const char *key,
              const char *const *allowed, char *out, size_t outsz);
/* A base-10 integer in [min, max]. Returns 1, 0 (absent; a problem when required) or -1. */
int load_int(struct load_ctx *c, const struct load_row *r, const char *key, int required,
             int64_t min, int64_t max, int64_t *out);
/* true/false, 1/0, yes/no (any case). Returns 1, 0 (absent) or -1. */
int load_bool(struct load_ctx *c, const struct load_row *r, const char *key, int *out);
/* A list: a JSON array of scalars, or a string "a;b;c". Each item is checked with
 * valid (what names the expectation in the message). *items gets a new array of
 * strings. Returns 1, 0 (absent) or -1. */
int load_list(struct load_ctx *c, const struct load_row *r, const char *key,
              int (*valid)(const char *item), const char *what, json_t **items);
/* Writes items (strings) as a PostgreSQL array literal ({"a","b"}). Returns 0, or -1
 * when it does not fit. */
int load_pg_array(const json_t *items, char *out, size_t outsz);
/* load_list, then load_pg_array into out; absent gives "{}" (or a problem when
 * required). Returns 1, 0 (absent) or -1. */
int load_array(struct load_ctx *c, const struct load_row *r, const char *key, int required,
               int (*valid)(const char *item), const char *what, char *out, size_t outsz);
/* Records key for uniqueness within the file; a repeated key is reported against
 * field as "duplicate of line N". Returns 0 or -1. */
int load_unique(struct load_ctx *c, const struct load_row *r, const char *field, const char *key);
/* Runs one parameterised statement and discards its result. Returns 0, or -1 with err. */
int load_exec(struct sb_pg *pg, const char *sql, int nparams, const char *const *params, char *err,
              size_t errsz);

/* Item checks for load_list: a lowercase identifier ([a-z][a-z0-9_]*, <= 63 bytes) and
 * a language tag ("zh", "en", "zh-Hant"). */
int load_valid_name(const char *item);
int load_valid_language(const char *item);
/* A non-negative amount: up to 12 integer digits and 2 decimals ("1500", "99.5"). */
int load_valid_amount(const char *s);

#endif
