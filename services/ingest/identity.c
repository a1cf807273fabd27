/* Customer recognition (see identity.h). Order of identities: the CRM customer
 * number is authoritative; then phone, email, WeChat open id, social id. */
#include "identity.h"

#include "ingest.h"

#include "sb/err.h"
#include "sb/normalize.h"
#include "sb/log.h"
#include "sb/util.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define NKINDS SB_IDENTITY_KINDS
#define CACHE_TTL_S "86400"

const char *const sb_identity_kinds[SB_IDENTITY_KINDS] = {"customer_no", "phone", "email",
                                                          "wechat_openid", "social_id"};
#define kinds sb_identity_kinds

static const char *const sql_lookup =
    "SELECT customer_no FROM customer_identities WHERE kind = $1 AND value = $2";
static const char *const sql_customer =
    "INSERT INTO customers (customer_no, name, provisional) VALUES ($1, $2, true) "
    "ON CONFLICT (customer_no) DO NOTHING";
static const char *const sql_identity =
    "INSERT INTO customer_identities (kind, value, customer_no) VALUES ($1, $2, $3) "
    "ON CONFLICT (kind, value) DO NOTHING";

const char *sb_identity_source_str(enum sb_identity_source s)
{
    switch (s) {
    case SB_IDENTITY_CACHE:
        return "cache";
    case SB_IDENTITY_CRM:
        return "crm";
    case SB_IDENTITY_PROVISIONAL:
        return "provisional";
    case SB_IDENTITY_DEFERRED:
        return "deferred";
    }
    return "unknown";
}

void sb_identity_provisional_no(const char *kind, const char *value, char *out, size_t outsz)
{
    char hex[65];
    sb_sha256_join_hex(kind, ':', value, hex);
    sb_fmt(out, outsz, "P-%.24s", hex);
}

static void cache_put(struct sb_redis *r, const char *kind, const char *value,
                      const char *customer_no)
{
    char key[128];
    redisReply *rep;

    if (r == NULL)
        return;
    sb_identity_cache_key(kind, value, key, sizeof(key));
    rep = sb_redis_cmdf(r, "SET %s %s EX %s", key, customer_no, CACHE_TTL_S);
    if (rep != NULL)
        freeReplyObject(rep);
}

/* Looks one identity up in the CRM. Returns 1 found, 0 not found, -1 unavailable. */
static int crm_lookup(struct sb_pg *pg, const char *kind, const char *value, char *out,
                      size_t outsz)
{
    const char *params[2] = {kind, value};
    char err[256];
    int e = 0, rc = -1;
    PGresult *res = sb_pg_query(pg, sql_lookup, 2, params, &e, err, sizeof(err));

    if (res == NULL)
        return -1;
    if (PQntuples(res) > 0) {
        sb_strlcpy(out, PQgetvalue(res, 0, 0), outsz);
        rc = 1;
    } else {
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* Writes a provisional customer and links every identity of the contact to
 * customer_no (existing links are kept). Returns 0 or -1. */
static int crm_link(struct sb_pg *pg, json_t *customer, const char *customer_no)
{
    const char *name = json_string_value(json_object_get(customer, "name"));
    const char *p1[2] = {customer_no, name};
    char err[256];
    int e = 0;
    PGresult *res = sb_pg_query(pg, sql_customer, 2, p1, &e, err, sizeof(err));

    if (res == NULL) {
        sb_log_kv(SB_LOG_WARN, "provisional customer not written", "detail", err, NULL);
        return -1;
    }
    PQclear(res);
    for (int i = 0; i < NKINDS; i++) {
        const char *v = json_string_value(json_object_get(customer, kinds[i]));
        const char *p2[3] = {kinds[i], v, customer_no};
        if (v == NULL)
            continue;
        res = sb_pg_query(pg, sql_identity, 3, p2, &e, err, sizeof(err));
        if (res == NULL)
            return -1;
        PQclear(res);
    }
    return 0;
}

int ingest_identity_resolve(struct ingest *in, json_t *customer,
                            const char *const cached[SB_IDENTITY_KINDS], char *out, size_t outsz,
                            enum sb_identity_source *source)
{
    struct sb_redis *r = ingest_redis(in);
    struct sb_pg *pg = NULL;
    const char *first_kind = NULL, *first_value = NULL;
    const char *given_no = json_string_value(json_object_get(customer, "customer_no"));

    for (int i = 0; i < NKINDS; i++) {
        const char *v = json_string_value(json_object_get(customer, kinds[i]));
        if (v == NULL)
            continue;
        if (first_kind == NULL) {
            first_kind = kinds[i];
            first_value = v;
        }
        if (cached != NULL && cached[i] != NULL && strlen(cached[i]) < outsz) {
            sb_strlcpy(out, cached[i], outsz);
            *source = SB_IDENTITY_CACHE;
            return 0;
        }
    }
    if (first_kind == NULL)
        return SB_E_INVAL;
    pg = ingest_pg(in);
    if (pg != NULL) {
        for (int i = 0; i < NKINDS; i++) {
            const char *v = json_string_value(json_object_get(customer, kinds[i]));
            int found;
            if (v == NULL)
                continue;
            found = crm_lookup(pg, kinds[i], v, out, outsz);
            if (found < 0)
                break;
            if (found > 0) {
                cache_put(r, first_kind, first_value, out);
                *source = SB_IDENTITY_CRM;
                return 0;
            }
        }
    }
    /* Unknown: a CRM number given by the channel is kept as it is; otherwise the
     * provisional number is derived from the strongest identity. */
    if (given_no != NULL)
        sb_strlcpy(out, given_no, outsz);
    else
        sb_identity_provisional_no(first_kind, first_value, out, outsz);
    if (pg != NULL && crm_link(pg, customer, out) == 0) {
        cache_put(r, first_kind, first_value, out);
        *source = SB_IDENTITY_PROVISIONAL;
    } else {
        sb_metric_inc(in->m_pg_unavailable);
        *source = SB_IDENTITY_DEFERRED;
    }
    return 0;
}
