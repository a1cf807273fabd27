/* Agent and supervisor actions: authenticated with bearer tokens (roles agent, lead,
 * supervisor, admin), authorized against the ticket's owner and team, validated, then
 * produced to sb.activity.v1 (keyed by ticket) or sb.presence.v1 (keyed by agent) and
 * answered 202 once Kafka acknowledged them.
 *   agent: only tickets assigned to them (or unassigned ones for claim/decline);
 *   lead: tickets of their team; supervisor and admin: every ticket. */
#include "auth.h"
#include "ingest.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ROLE_MAX 16
#define AGENT_MAX 64

static const char *const sql_token =
    "SELECT t.role, coalesce(t.agent_id, ''), coalesce(a.team_id, '') FROM api_tokens t "
    "LEFT JOIN agents a ON a.id = t.agent_id "
    "WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL";
static const char *const sql_ticket =
    "SELECT coalesce(t.owner_agent_id, ''), coalesce(a.team_id, '') FROM tickets t "
    "LEFT JOIN agents a ON a.id = t.owner_agent_id WHERE t.id = $1";

struct principal {
    char role[ROLE_MAX];
    char agent_id[AGENT_MAX];
    char team[AGENT_MAX];
};

enum role_rank { RANK_AGENT = 1, RANK_LEAD, RANK_SUPERVISOR, RANK_ADMIN };

static int rank(const char *role)
{
    if (strcmp(role, "agent") == 0)
        return RANK_AGENT;
    if (strcmp(role, "lead") == 0)
        return RANK_LEAD;
    if (strcmp(role, "supervisor") == 0)
        return RANK_SUPERVISOR;
    if (strcmp(role, "admin") == 0)
        return RANK_ADMIN;
    return 0;
}

/* One action: its path suffix, event type, minimum role, and body check. */
struct action {
    const char *name;
    const char *type;
    int min_rank;
    int unassigned_ok; /* an agent may act on a ticket nobody owns yet */
    int (*check)(json_t *body, char *field, size_t fieldsz, char *errstr, size_t errstr_size);
    const char *keys; /* the body's allowed keys, space-separated */
};

/* Refuses a key not in the space-separated list: unknown fields would otherwise travel
 * into the event and break its schema. */
static int known_keys(json_t *body, const char *keys, char *field, size_t fieldsz, char *errstr,
                      size_t errstr_size)
{
    const char *k;
    json_t *v;

    json_object_foreach(body, k, v)
    {
        const char *p = keys;
        size_t n = strlen(k);
        int found = 0;
        while (*p && !found) {
            size_t m = strcspn(p, " ");
            found = m == n && strncmp(p, k, n) == 0;
            p += m;
            while (*p == ' ')
                p++;
        }
        if (!found) {
            sb_fmt(field, fieldsz, "%.64s", k);
            sb_fmt(errstr, errstr_size, "%.64s: unknown field", k);
            return SB_E_INVAL;
        }
    }
    return 0;
}

static int fail(char *field, size_t fieldsz, char *errstr, size_t errstr_size, const char *f,
                const char *msg)
{
    sb_strlcpy(field, f, fieldsz);
    sb_fmt(errstr, errstr_size, "%s: %s", f, msg);
    return SB_E_INVAL;
}

static int need_text(json_t *body, const char *key, size_t max, char *field, size_t fieldsz,
                     char *errstr, size_t errstr_size)
{
    json_t *j = json_object_get(body, key);
    if (!json_is_string(j) || json_string_length(j) == 0)
        return fail(field, fieldsz, errstr, errstr_size, key, "required non-empty string");
    if (json_string_length(j) > max)
        return fail(field, fieldsz, errstr, errstr_size, key, "too long");
    return 0;
}

static int opt_text(json_t *body, const char *key, size_t max, char *field, size_t fieldsz,
                    char *errstr, size_t errstr_size)
{
    json_t *j = json_object_get(body, key);
    if (j == NULL || json_is_null(j))
        return 0;
    return need_text(body, key, max, field, fieldsz, errstr, errstr_size);
}

static int one_of(json_t *body, const char *key, const char *const *values, size_t n, int required,
                  char *field, size_t fieldsz, char *errstr, size_t errstr_size)
{
    json_t *j = json_object_get(body, key);
    if (j == NULL && !required)
        return 0;
    if (json_is_string(j)) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(json_string_value(j), values[i]) == 0)
                return 0;
        }
    }
    return fail(field, fieldsz, errstr, errstr_size, key, "not an allowed value");
}

static int check_reply(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    json_t *pub = json_object_get(b, "public");
    if (pub != NULL && !json_is_boolean(pub))
        return fail(f, fs, e, es, "public", "must be a boolean");
    return need_text(b, "body", 64 * 1024, f, fs, e, es);
}

static int check_status(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const states[] = {"in_progress", "pending_customer", "resolved",
                                         "reopened",    "awaiting_archive", "archived"};
    return one_of(b, "status", states, 6, 1, f, fs, e, es) ||
           opt_text(b, "reason", 2000, f, fs, e, es);
}

static int check_transfer(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    if (json_object_get(b, "to_agent") == NULL && json_object_get(b, "to_team") == NULL)
        return fail(f, fs, e, es, "to_agent", "to_agent or to_team is required");
    /* SPEC §3: the reason is said to the customer before the handover. */
    return opt_text(b, "to_agent", AGENT_MAX - 1, f, fs, e, es) ||
           opt_text(b, "to_team", AGENT_MAX - 1, f, fs, e, es) ||
           need_text(b, "reason", 2000, f, fs, e, es) ||
           need_text(b, "customer_message", 4000, f, fs, e, es);
}

static int check_note(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const kinds[] = {"comment", "progress", "key_decision"};
    json_t *pct = json_object_get(b, "percent");
    if (pct != NULL &&
        (!json_is_integer(pct) || json_integer_value(pct) < 0 || json_integer_value(pct) > 100))
        return fail(f, fs, e, es, "percent", "must be an integer 0..100");
    return need_text(b, "text", 16 * 1024, f, fs, e, es) ||
           one_of(b, "kind", kinds, 3, 0, f, fs, e, es) ||
           opt_text(b, "milestone", 200, f, fs, e, es);
}

static int check_claim(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    (void)b;
    (void)f;
    (void)fs;
    (void)e;
    (void)es;
    return 0;
}

static int check_decline(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    return need_text(b, "reason", 2000, f, fs, e, es) ||
           opt_text(b, "suggested_agent", AGENT_MAX - 1, f, fs, e, es);
}

static int check_review(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const outcomes[] = {"approved", "sent_back"};
    json_t *o = json_object_get(b, "outcome");
    if (one_of(b, "outcome", outcomes, 2, 1, f, fs, e, es))
        return SB_E_INVAL;
    if (strcmp(json_string_value(o), "sent_back") == 0)
        return need_text(b, "reason", 2000, f, fs, e, es);
    return opt_text(b, "reason", 2000, f, fs, e, es);
}

static int check_csat(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    json_t *s = json_object_get(b, "score");
    if (!json_is_integer(s) || json_integer_value(s) < 1 || json_integer_value(s) > 5)
        return fail(f, fs, e, es, "score", "required integer 1..5");
    return opt_text(b, "comment", 4000, f, fs, e, es);
}

static int check_priority(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const bands[] = {"P1", "P2", "P3", "P4"};
    return one_of(b, "band", bands, 4, 1, f, fs, e, es) ||
           need_text(b, "reason", 2000, f, fs, e, es);
}

static const struct action ticket_actions[] = {
    {"replies", "agent.replied", RANK_AGENT, 0, check_reply, "body public"},
    {"status", "ticket.status_changed", RANK_AGENT, 0, check_status, "status reason"},
    {"transfer", "ticket.transferred", RANK_AGENT, 0, check_transfer,
     "to_agent to_team reason customer_message"},
    {"notes", "ticket.note_added", RANK_AGENT, 0, check_note, "text kind percent milestone"},
    {"claim", "ticket.claimed", RANK_AGENT, 1, check_claim, ""},
    {"decline", "ticket.declined", RANK_AGENT, 1, check_decline, "reason suggested_agent"},
    {"review", "ticket.reviewed", RANK_LEAD, 0, check_review, "outcome reason"},
    {"csat", "csat.received", RANK_AGENT, 0, check_csat, "score comment"},
    {"priority", "ticket.priority_overridden", RANK_SUPERVISOR, 0, check_priority, "band reason"},
};

static int check_presence(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const states[] = {"available", "busy", "away", "offline"};
    json_t *caps = json_object_get(b, "capacities");
    const char *k;
    json_t *v;

    if (one_of(b, "status", states, 4, 1, f, fs, e, es))
        return SB_E_INVAL;
    if (caps == NULL)
        return 0;
    if (!json_is_object(caps))
        return fail(f, fs, e, es, "capacities", "must be an object of channel: count");
    json_object_foreach(caps, k, v)
    {
        if (!sb_contact_channel_valid(k))
            return fail(f, fs, e, es, "capacities", "keys must be channel names");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100)
            return fail(f, fs, e, es, "capacities", "counts must be integers 0..100");
    }
    return 0;
}

/* Looks the bearer token up. Returns 1 (found), 0 (unknown), -1 (database down). */
static int authenticate(struct ingest *in, const struct sb_http_req *req, struct principal *who)
{
    char token[300], hash[SB_SIG_HEX_LEN + 1], err[256];
    const char *params[1] = {hash};
    struct sb_pg *pg;
    PGresult *res;
    int e = 0, rc = 0;

    if (sb_bearer_parse(sb_http_req_header(req, "Authorization"), token, sizeof(token)) != 0)
        return 0;
    sb_token_hash(token, hash);
    pg = ingest_pg(in);
    if (pg == NULL)
        return -1;
    res = sb_pg_query(pg, sql_token, 1, params, &e, err, sizeof(err));
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        sb_strlcpy(who->role, PQgetvalue(res, 0, 0), sizeof(who->role));
        sb_strlcpy(who->agent_id, PQgetvalue(res, 0, 1), sizeof(who->agent_id));
        sb_strlcpy(who->team, PQgetvalue(res, 0, 2), sizeof(who->team));
        rc = rank(who->role) > 0;
    }
    PQclear(res);
    return rc;
}

/* Decides whether who may act on ticket_id. Returns 200, 403, 404 or 503. */
static int authorize_ticket(struct ingest *in, const struct principal *who, const char *ticket_id,
                            const struct action *a)
{
    const char *params[1] = {ticket_id};
    char err[256];
    struct sb_pg *pg;
    PGresult *res;
    int e = 0, status = 403;

    if (rank(who->role) < a->min_rank)
        return 403;
    if (rank(who->role) >= RANK_SUPERVISOR)
        return 200;
    pg = ingest_pg(in);
    if (pg == NULL)
        return 503;
    res = sb_pg_query(pg, sql_ticket, 1, params, &e, err, sizeof(err));
    if (res == NULL)
        return 503;
    if (PQntuples(res) == 0) {
        status = 404;
    } else {
        const char *owner = PQgetvalue(res, 0, 0);
        const char *team = PQgetvalue(res, 0, 1);
        if (rank(who->role) == RANK_LEAD)
            status = who->team[0] && strcmp(team, who->team) == 0 ? 200 : 403;
        else if (owner[0] == '\0')
            status = a->unassigned_ok ? 200 : 403;
        else
            status = strcmp(owner, who->agent_id) == 0 ? 200 : 403;
    }
    PQclear(res);
    return status;
}

/* Splits "/v1/tickets/{id}/{action}" or "/v1/agents/{id}/presence". */
static int split_path(const char *path, const char *prefix, char *id, size_t idsz,
                      const char **tail)
{
    const char *p = path + strlen(prefix);
    const char *slash = strchr(p, '/');
    size_t n;

    if (slash == NULL)
        return SB_E_INVAL;
    n = (size_t)(slash - p);
    if (n == 0 || n >= idsz)
        return SB_E_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return SB_E_INVAL;
    }
    memcpy(id, p, n);
    id[n] = '\0';
    *tail = slash + 1;
    return 0;
}

static int produce(struct ingest *in, struct sb_http_resp *resp, const char *topic, const char *key,
                   const char *type, const char *ticket_id, json_t *payload, const char *channel)
{
    struct sb_event ev;
    char *buf;
    size_t len;
    int rc;

    if (sb_event_init(&ev, type, in->producer_name, ticket_id, NULL, payload) != 0) {
        sb_event_clear(&ev);
        ingest_error(in, resp, channel, 400, "invalid", "the action cannot be encoded", "body");
        return 0;
    }
    buf = sb_event_encode(&ev, &len);
    rc = buf ? sb_producer_send_wait(in->producer, topic, key, strlen(key), buf, len,
                                     (int)sb_config_int(in->cfg, "kafka.produce_timeout_ms") + 1000)
             : SB_E_INVAL;
    free(buf);
    if (rc != 0) {
        sb_event_clear(&ev);
        ingest_error(in, resp, channel, 503, "unavailable",
                     "the action could not be stored durably; retry later", NULL);
        sb_http_resp_header(resp, "Retry-After", "5");
        return 0;
    }
    sb_http_resp_json(resp, 202, json_pack("{s:s,s:s}", "event_id", ev.event_id, "type", ev.type));
    sb_event_clear(&ev);
    return 0;
}

/* The action's JSON object; an empty body counts as {} when empty_ok (claim). */
static json_t *parse_json(struct ingest *in, const struct sb_http_req *req,
                          struct sb_http_resp *resp, int empty_ok)
{
    const char *ct = sb_http_req_header(req, "Content-Type");
    json_error_t jerr;
    json_t *j;
    char msg[256];

    if (empty_ok && req->body_len == 0)
        return json_object();
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        ingest_error(in, resp, "agent", 415, "unsupported_media_type",
                     "Content-Type must be application/json", "Content-Type");
        return NULL;
    }
    if (sb_json_depth_ok(req->body, req->body_len, in->max_depth) != 0) {
        ingest_error(in, resp, "agent", 400, "too_deep", "JSON nesting exceeds the limit", "body");
        return NULL;
    }
    j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL || !json_is_object(j)) {
        sb_fmt(msg, sizeof(msg), "invalid JSON object: %s", j ? "not an object" : jerr.text);
        json_decref(j);
        ingest_error(in, resp, "agent", 400, "invalid_json", msg, "body");
        return NULL;
    }
    return j;
}

static int presence(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp,
                    const struct principal *who, const char *agent_id)
{
    char field[96] = "", errstr[256] = "";
    json_t *body;

    if (rank(who->role) == RANK_AGENT && strcmp(who->agent_id, agent_id) != 0) {
        ingest_error(in, resp, "agent", 403, "forbidden", "an agent sets only their own presence",
                     "agent_id");
        return 0;
    }
    body = parse_json(in, req, resp, 0);
    if (body == NULL)
        return 0;
    if (known_keys(body, "status capacities", field, sizeof(field), errstr, sizeof(errstr)) != 0 ||
        check_presence(body, field, sizeof(field), errstr, sizeof(errstr)) != 0) {
        json_decref(body);
        ingest_error(in, resp, "agent", 400, "invalid", errstr, field);
        return 0;
    }
    json_object_set_new(body, "agent_id", json_string(agent_id));
    json_object_set_new(body, "set_by", json_string(who->agent_id[0] ? who->agent_id : who->role));
    return produce(in, resp, SB_TOPIC_PRESENCE, agent_id, "agent.presence", NULL, body, "agent");
}

int ingest_action(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp)
{
    struct principal who;
    char id[80], field[96] = "", errstr[256] = "";
    const char *tail = NULL;
    const struct action *a = NULL;
    json_t *body;
    int auth, status;

    if (strcmp(req->method, "POST") != 0) {
        ingest_error(in, resp, "agent", 405, "method_not_allowed", "use POST", NULL);
        return 0;
    }
    memset(&who, 0, sizeof(who));
    auth = authenticate(in, req, &who);
    if (auth < 0) {
        ingest_error(in, resp, "agent", 503, "unavailable", "cannot check credentials now", NULL);
        sb_http_resp_header(resp, "Retry-After", "5");
        return 0;
    }
    if (auth == 0) {
        ingest_error(in, resp, "agent", 401, "unauthorized", "missing or unknown bearer token",
                     "Authorization");
        return 0;
    }
    if (strncmp(req->path, "/v1/agents/", 11) == 0) {
        if (split_path(req->path, "/v1/agents/", id, sizeof(id), &tail) != 0 ||
            strcmp(tail, "presence") != 0) {
            ingest_error(in, resp, "agent", 404, "not_found", "no such endpoint", "path");
            return 0;
        }
        return presence(in, req, resp, &who, id);
    }
    if (split_path(req->path, "/v1/tickets/", id, sizeof(id), &tail) == 0) {
        for (size_t i = 0; i < sizeof(ticket_actions) / sizeof(ticket_actions[0]); i++) {
            if (strcmp(tail, ticket_actions[i].name) == 0)
                a = &ticket_actions[i];
        }
    }
    if (a == NULL) {
        ingest_error(in, resp, "agent", 404, "not_found", "no such endpoint", "path");
        return 0;
    }
    status = authorize_ticket(in, &who, id, a);
    if (status != 200) {
        ingest_error(in, resp, "agent", status,
                     status == 403   ? "forbidden"
                     : status == 404 ? "not_found"
                                     : "unavailable",
                     status == 403   ? "this role may not act on this ticket"
                     : status == 404 ? "no such ticket"
                                     : "cannot check the ticket now",
                     status == 404 ? "ticket_id" : NULL);
        return 0;
    }
    body = parse_json(in, req, resp, a->check == check_claim);
    if (body == NULL)
        return 0;
    if (known_keys(body, a->keys, field, sizeof(field), errstr, sizeof(errstr)) != 0 ||
        a->check(body, field, sizeof(field), errstr, sizeof(errstr)) != 0) {
        json_decref(body);
        ingest_error(in, resp, "agent", 400, "invalid", errstr, field);
        return 0;
    }
    json_object_set_new(body, "ticket_id", json_string(id));
    json_object_set_new(body, "actor",
                        json_pack("{s:s,s:s}", "role", who.role, "agent_id", who.agent_id));
    return produce(in, resp, SB_TOPIC_ACTIVITY, id, a->type, id, body, "agent");
}
