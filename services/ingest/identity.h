/* Customer recognition for ingest: any identity (customer number, phone, email,
 * WeChat open id, social id) resolves to the customer, through a Redis cache over the
 * CRM tables in PostgreSQL. An unknown customer gets a provisional record whose number
 * is derived from the identity, so that concurrent first contacts agree on it and a
 * PostgreSQL outage still yields the same customer key. Redis keys hold hashes of
 * identities, never the clear values. */
#ifndef SB_INGEST_IDENTITY_H
#define SB_INGEST_IDENTITY_H

#include "sb/normalize.h"

#include <jansson.h>
#include <stddef.h>

struct ingest;

/* How the customer was found. */
enum sb_identity_source {
    SB_IDENTITY_CACHE,       /* Redis */
    SB_IDENTITY_CRM,         /* PostgreSQL */
    SB_IDENTITY_PROVISIONAL, /* new provisional record written */
    SB_IDENTITY_DEFERRED,    /* PostgreSQL unreachable: derived key, record not written */
};

/* Derives the provisional customer number of an identity: "P-" + 24 hex of
 * SHA-256("<kind>:<value>"). Pure. */
void sb_identity_provisional_no(const char *kind, const char *value, char *out, size_t outsz);

/* The identity kinds, strongest first (customer_no, phone, email, wechat_openid,
 * social_id). */
#define SB_IDENTITY_KINDS 5
extern const char *const sb_identity_kinds[SB_IDENTITY_KINDS];

/* Resolves the customer of a normalized "customer" object (borrowed) into out
 * (customer number). cached[i] is what the Redis cache held for the identity of kind
 * sb_identity_kinds[i] (NULL: absent or not looked up); the caller fetched them in one
 * pipeline. Returns 0 (with *source set) or SB_E_INVAL when it has no identity. Runs on
 * an HTTP worker thread. */
int ingest_identity_resolve(struct ingest *in, json_t *customer,
                            const char *const cached[SB_IDENTITY_KINDS], char *out, size_t outsz,
                            enum sb_identity_source *source);

/* Text of a source for the event payload ("cache", "crm", "provisional", "deferred"). */
const char *sb_identity_source_str(enum sb_identity_source s);

#endif
