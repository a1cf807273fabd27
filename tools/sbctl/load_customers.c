/* sbctl load customers: the CRM view. One row per customer: customer_no, name, phone,
 * email, wechat_openid, social_id, annual_spend, is_partner, is_enterprise.
 *
 * The tier (SPEC §2) is computed here from the inputs with the thresholds given on the
 * command line (defaults: VIP from 10 000 or a partner, regular from 1 000). Every
 * identity is stored normalized (phone digits only without the mainland +86 prefix,
 * email lowercased) with sb/normalize.h, the same code intake uses, so that a contact
 * finds its customer. A loaded row is authoritative: it clears the provisional flag
 * of a customer intake created, and an identity known for another customer is moved
 * to this one. Identities are only added, never removed. */
#include "load.h"

#include "sb/log.h"
#include "sb/normalize.h"
#include "sb/redis.h"
#include "sb/util.h"

#include <ctype.h>
#include <string.h>

#define NIDS 5

static const char *const fields[] = {"customer_no",   "name",      "phone",        "email",
                                     "wechat_openid", "social_id", "annual_spend", "is_partner",
                                     "is_enterprise", NULL};

struct customer {
    char no[65], name[201], spend[24];
    int partner, enterprise;
    /* Identities in the order of ids_kinds; "" when absent. */
    char ids[NIDS][260];
};

/* The identity kinds of customer_identities written from a row. */
static const char *const ids_kinds[NIDS] = {"customer_no", "phone", "email", "wechat_openid",
                                            "social_id"};

static const char sql_customer[] =
    "INSERT INTO customers (customer_no, name, annual_spend, is_partner, is_enterprise, "
    "provisional, tier) VALUES ($1, $2, $3::numeric, $4::boolean, $5::boolean, false, "
    "CASE WHEN $4::boolean OR $3::numeric >= $6::numeric THEN 3 "
    "WHEN $3::numeric >= $7::numeric THEN 2 ELSE 1 END) "
    "ON CONFLICT (customer_no) DO UPDATE SET name = coalesce(excluded.name, customers.name), "
    "annual_spend = excluded.annual_spend, is_partner = excluded.is_partner, is_enterprise = "
    "excluded.is_enterprise, provisional = false, tier = excluded.tier, updated_at = now() "
    "WHERE (customers.name, customers.annual_spend, customers.is_partner, "
    "customers.is_enterprise, customers.provisional, customers.tier) IS DISTINCT FROM "
    "(coalesce(excluded.name, customers.name), excluded.annual_spend, excluded.is_partner, "
    "excluded.is_enterprise, false, excluded.tier)";
static const char sql_identities[] =
    "INSERT INTO customer_identities (kind, value, customer_no) SELECT i.kind, i.value, $1 "
    "FROM unnest($2::text[], $3::text[]) AS i (kind, value) "
    "ON CONFLICT (kind, value) DO UPDATE SET customer_no = excluded.customer_no "
    "WHERE customer_identities.customer_no <> excluded.customer_no";

/* WeChat open ids: letters, digits, '-' and '_'. Social ids: printable, no blanks. */
static int valid_openid(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return 0;
    }
    return 1;
}

static int valid_social(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\\')
            return 0;
    }
    return 1;
}

/* Reads identity field i into cu->ids[i], normalized. Returns 0 or -1. */
static int parse_identity(struct load_ctx *c, const struct load_row *r, struct customer *cu, int i)
{
    const char *kind = ids_kinds[i];
    char raw[260], key[300];
    int rc = load_string(c, r, kind, 254, raw, sizeof(raw)), ok = 1;

    if (rc <= 0)
        return rc;
    if (strcmp(kind, "phone") == 0)
        ok = sb_phone_normalize(raw, cu->ids[i], sizeof(cu->ids[i])) == 0;
    else if (strcmp(kind, "email") == 0)
        ok = sb_email_normalize(raw, cu->ids[i], sizeof(cu->ids[i])) == 0;
    else if (strcmp(kind, "wechat_openid") == 0)
        ok = strlen(raw) <= 128 && valid_openid(raw) && sb_strlcpy(cu->ids[i], raw, 129) < 129;
    else
        ok = strlen(raw) <= 128 && valid_social(raw) && sb_strlcpy(cu->ids[i], raw, 129) < 129;
    if (!ok) {
        load_error(c, r->line, kind,
                   strcmp(kind, "phone") == 0   ? "not a phone number"
                   : strcmp(kind, "email") == 0 ? "not an email address"
                                                : "letters, digits, - and _ only, at most 128");
        cu->ids[i][0] = '\0';
        return -1;
    }
    /* Two customers of one file with the same identity would fight over it. */
    sb_fmt(key, sizeof(key), "%s:%s", kind, cu->ids[i]);
    return load_unique(c, r, kind, key);
}

static int parse(struct load_ctx *c, const struct load_row *r, struct customer *cu)
{
    char key[80];
    int bad = 0, rc;

    memset(cu, 0, sizeof(*cu));
    rc = load_id(c, r, "customer_no", 1, 64, cu->no, sizeof(cu->no));
    if (rc == 1) {
        sb_fmt(key, sizeof(key), "no:%s", cu->no);
        bad |= load_unique(c, r, "customer_no", key) != 0;
        sb_strlcpy(cu->ids[0], cu->no, sizeof(cu->ids[0]));
    }
    bad |= rc < 0;
    bad |= load_string(c, r, "name", 200, cu->name, sizeof(cu->name)) < 0;
    for (int i = 1; i < NIDS; i++)
        bad |= parse_identity(c, r, cu, i) < 0;
    rc = load_string(c, r, "annual_spend", 20, cu->spend, sizeof(cu->spend));
    if (rc == 0)
        sb_strlcpy(cu->spend, "0", sizeof(cu->spend));
    if (rc == 1 && !load_valid_amount(cu->spend)) {
        load_error(c, r->line, "annual_spend", "not an amount (e.g. 1500 or 1500.50)");
        rc = -1;
    }
    bad |= rc < 0;
    bad |= load_bool(c, r, "is_partner", &cu->partner) < 0;
    bad |= load_bool(c, r, "is_enterprise", &cu->enterprise) < 0;
    return bad ? -1 : 0;
}

static int customer_check(struct load_ctx *c, const struct load_row *r)
{
    struct customer cu;

    return parse(c, r, &cu);
}

/* Remembers what changed for the after-commit cache hook. */
static void note_change(struct load_ctx *c, const struct customer *cu)
{
    json_t *ids = json_object();

    for (int i = 1; i < NIDS; i++) {
        if (cu->ids[i][0] != '\0')
            json_object_set_new(ids, ids_kinds[i], json_string(cu->ids[i]));
    }
    json_array_append_new(c->changed,
                          json_pack("{s:s, s:o}", "customer_no", cu->no, "identities", ids));
}

static int write_identities(struct sb_pg *pg, const struct customer *cu, char *err, size_t errsz)
{
    char kinds[LOAD_ARRAY_MAX], values[LOAD_ARRAY_MAX];
    const char *params[3] = {cu->no, kinds, values};
    json_t *k = json_array(), *v = json_array();
    int rc = 0;

    for (int i = 0; i < NIDS; i++) {
        if (cu->ids[i][0] == '\0')
            continue;
        json_array_append_new(k, json_string(ids_kinds[i]));
        json_array_append_new(v, json_string(cu->ids[i]));
    }
    if (load_pg_array(k, kinds, sizeof(kinds)) != 0 ||
        load_pg_array(v, values, sizeof(values)) != 0) {
        sb_fmt(err, errsz, "identities do not fit");
        rc = -1;
    } else {
        rc = load_exec(pg, sql_identities, 3, params, err, errsz);
    }
    json_decref(k);
    json_decref(v);
    return rc;
}

static int customer_write(struct load_ctx *c, struct sb_pg *pg, const struct load_row *r, char *err,
                          size_t errsz)
{
    struct customer cu;
    const char *params[7];

    if (parse(c, r, &cu) != 0) {
        sb_fmt(err, errsz, "row no longer valid");
        return -1;
    }
    params[0] = cu.no;
    params[1] = cu.name[0] != '\0' ? cu.name : NULL;
    params[2] = cu.spend;
    params[3] = cu.partner ? "true" : "false";
    params[4] = cu.enterprise ? "true" : "false";
    params[5] = c->vip_spend;
    params[6] = c->regular_spend;
    if (load_exec(pg, sql_customer, 7, params, err, errsz) != 0 ||
        write_identities(pg, &cu, err, errsz) != 0)
        return -1;
    note_change(c, &cu);
    return 0;
}

int load_customers_cache_invalidate(const struct sbctl *ctl, json_t *changed, char *err,
                                    size_t errsz)
{
    char key[160], n[24];
    struct sb_redis *r;
    json_t *cu, *ids, *v;
    const char *kind;
    size_t i, deleted = 0;

    (void)err;
    (void)errsz;
    if (json_array_size(changed) == 0)
        return 0;
    r = sb_redis_new(ctl->redis_url, 2000, key, sizeof(key));
    if (r == NULL) {
        /* The load is committed; stale entries expire by their TTL (24 h). */
        fprintf(stderr, "sbctl load: warning: identity and tier caches not invalidated (%s)\n",
                key);
        return 0;
    }
    json_array_foreach(changed, i, cu)
    {
        const char *no = json_string_value(json_object_get(cu, "customer_no"));
        redisReply *rep;
        char tier_key[160];
        sb_identity_cache_key("customer_no", no, key, sizeof(key));
        sb_tier_cache_key(no, tier_key, sizeof(tier_key));
        /* The identity (ingest) and the tier (triage) of this customer. */
        rep = sb_redis_cmdf(r, "DEL %s %s", key, tier_key);
        deleted += rep != NULL && rep->type == REDIS_REPLY_INTEGER ? (size_t)rep->integer : 0;
        if (rep != NULL)
            freeReplyObject(rep);
        ids = json_object_get(cu, "identities");
        json_object_foreach(ids, kind, v)
        {
            sb_identity_cache_key(kind, json_string_value(v), key, sizeof(key));
            rep = sb_redis_cmdf(r, "DEL %s", key);
            deleted += rep != NULL && rep->type == REDIS_REPLY_INTEGER ? (size_t)rep->integer : 0;
            if (rep != NULL)
                freeReplyObject(rep);
        }
    }
    sb_redis_destroy(r);
    sb_fmt(n, sizeof(n), "%zu", deleted);
    sb_log_kv(SB_LOG_DEBUG, "identity cache entries invalidated", "count", n, NULL);
    return 0;
}

static int customer_committed(const struct sbctl *ctl, struct load_ctx *c, char *err, size_t errsz)
{
    return load_customers_cache_invalidate(ctl, c->changed, err, errsz);
}

const struct load_kind load_customers = {
    .name = "customers",
    .fields = fields,
    .check = customer_check,
    .write = customer_write,
    .committed = customer_committed,
};
