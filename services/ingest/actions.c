/* Agent and supervisor actions: authenticated with bearer tokens (roles agent, lead,
 * supervisor, admin), validated, authorized against the ticket's owner and team, checked
 * against the ticket's life cycle (lifecycle.c) under the row lock of its workflow record
 * (table ticket_workflow, docs/lifecycle.md), then produced to sb.activity.v1 (keyed by
 * ticket) or sb.presence.v1 (keyed by agent) and answered 202 once Kafka acknowledged
 * them; the record's new state is committed after the acknowledgement.
 *   agent: only tickets assigned to them (or unassigned ones for claim/decline);
 *   lead: tickets of their team; supervisor and admin: every ticket. */
#include "auth.h"
#include "ingest.h"
#include "lifecycle.h"

#include "sb/err.h"
#include "sb/event.h"
#include "sb/log.h"
#include "sb/strbuf.h"
#include "sb/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ROLE_MAX 16
#define AGENT_MAX 64

static const char *const sql_token =
    "SELECT t.role, coalesce(t.agent_id, ''), coalesce(a.team_id, '') FROM api_tokens t "
    "LEFT JOIN agents a ON a.id = t.agent_id "
    "WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL";
/* The workflow record is made on a ticket's first action from what the projection
 * knows (routing's statuses fold into the life cycle's: queued is new, assigned is
 * claimed), then read under its row lock for the rest of the transaction. */
static const char *const sql_wf_seed =
    "INSERT INTO ticket_workflow (ticket_id, state, owner_agent_id, csat, resolved_at) "
    "SELECT t.id, CASE WHEN t.status IN ('new', 'queued') THEN 'new' "
    "WHEN t.status = 'assigned' THEN 'claimed' "
    "WHEN t.status IN ('offered', 'claimed', 'in_progress', 'pending_customer', 'resolved', "
    "'in_review', 'sent_back', 'awaiting_archive', 'archived', 'reopened') THEN t.status "
    "ELSE 'new' END, t.owner_agent_id, t.csat, t.resolved_at FROM tickets t WHERE t.id = $1 "
    "ON CONFLICT (ticket_id) DO NOTHING";
static const char *const sql_wf_lock =
    "SELECT w.state, coalesce(w.owner_agent_id, ''), coalesce(a.team_id, ''), "
    "coalesce(w.csat, 0), coalesce(w.category, ''), coalesce(w.handling_minutes, -1), "
    "coalesce(w.escalation_level, ''), "
    "coalesce(floor(extract(epoch FROM now() - w.resolved_at))::bigint, -1), "
    "coalesce(floor(extract(epoch FROM now() - w.disputed_at))::bigint, -1) "
    "FROM ticket_workflow w LEFT JOIN agents a ON a.id = w.owner_agent_id "
    "WHERE w.ticket_id = $1 FOR UPDATE OF w";
/* $3 owner: NULL keeps it, '' clears it; $8 dispute: open, close or NULL (kept). */
static const char *const sql_wf_update =
    "UPDATE ticket_workflow SET state = $2, "
    "owner_agent_id = CASE WHEN $3::text IS NULL THEN owner_agent_id ELSE nullif($3, '') END, "
    "csat = coalesce($4::smallint, csat), category = coalesce($5, category), "
    "handling_minutes = coalesce($6::integer, handling_minutes), "
    "escalation_level = coalesce($7, escalation_level), "
    "resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE resolved_at END, "
    "archived_at = CASE WHEN $2 = 'archived' THEN now() ELSE archived_at END, "
    "disputed_at = CASE $8::text WHEN 'open' THEN now() WHEN 'close' THEN NULL "
    "ELSE disputed_at END, version = version + 1, updated_at = now() WHERE ticket_id = $1";
static const char *const sql_known_agents =
    "SELECT coalesce(jsonb_agg(id ORDER BY id), '[]')::text FROM agents WHERE id = ANY($1)";

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
    static const char *const states[] = {"in_progress", "pending_customer", "resolved", "in_review",
                                         "reopened",    "awaiting_archive", "archived"};
    json_t *hm = json_object_get(b, "handling_minutes");
    int archive;

    if (one_of(b, "status", states, 7, 1, f, fs, e, es) ||
        opt_text(b, "reason", 2000, f, fs, e, es))
        return SB_E_INVAL;
    /* What archiving records (SPEC §5): the category, the handling time, a closing note. */
    archive = strcmp(json_string_value(json_object_get(b, "status")), "archived") == 0;
    if (!archive && (json_object_get(b, "category") || hm || json_object_get(b, "note")))
        return fail(f, fs, e, es,
                    json_object_get(b, "category") ? "category"
                    : hm                           ? "handling_minutes"
                                                   : "note",
                    "only with status archived");
    if (hm != NULL && !json_is_null(hm) &&
        (!json_is_integer(hm) || json_integer_value(hm) < 1 || json_integer_value(hm) > 525600))
        return fail(f, fs, e, es, "handling_minutes", "must be an integer 1..525600");
    return opt_text(b, "category", 64, f, fs, e, es) || opt_text(b, "note", 2000, f, fs, e, es);
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

/* Attachments are metadata only (the file lives where url says): name, type, size. */
static int check_attachments(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    json_t *list = json_object_get(b, "attachments");
    size_t i;
    json_t *a;

    if (list == NULL)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > 20)
        return fail(f, fs, e, es, "attachments", "must be an array of at most 20 objects");
    json_array_foreach(list, i, a)
    {
        json_t *size = json_object_get(a, "size");
        if (!json_is_object(a) || known_keys(a, "name content_type size url", f, fs, e, es) != 0 ||
            need_text(a, "name", 255, f, fs, e, es) != 0 ||
            opt_text(a, "content_type", 127, f, fs, e, es) != 0 ||
            opt_text(a, "url", 2000, f, fs, e, es) != 0 ||
            (size != NULL && (!json_is_integer(size) || json_integer_value(size) < 0)))
            return fail(f, fs, e, es, "attachments",
                        "each: name (required), content_type, size (integer >= 0), url");
    }
    return 0;
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
           opt_text(b, "milestone", 200, f, fs, e, es) || check_attachments(b, f, fs, e, es);
}

/* The task card (SPEC §5): the customer's own words, contact, what was tried, urgency,
 * category, due time and the departments in copy. At least one field. */
static int check_card(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const urgencies[] = {"low", "medium", "high", "urgent"};
    json_t *due = json_object_get(b, "due_at");
    json_t *copies = json_object_get(b, "department_copies");
    int64_t ms;
    size_t i;
    json_t *c;

    if (json_object_size(b) == 0)
        return fail(f, fs, e, es, "body", "at least one card field is required");
    if (opt_text(b, "customer_words", 8000, f, fs, e, es) ||
        opt_text(b, "contact", 200, f, fs, e, es) || opt_text(b, "tried", 4000, f, fs, e, es) ||
        opt_text(b, "category", 64, f, fs, e, es) ||
        one_of(b, "urgency", urgencies, 4, 0, f, fs, e, es))
        return SB_E_INVAL;
    if (due != NULL && (!json_is_string(due) || sb_time_parse(json_string_value(due), &ms) != 0))
        return fail(f, fs, e, es, "due_at", "must be an RFC 3339 time");
    if (copies == NULL)
        return 0;
    if (!json_is_array(copies) || json_array_size(copies) > 10)
        return fail(f, fs, e, es, "department_copies", "must be an array of at most 10 teams");
    json_array_foreach(copies, i, c)
    {
        if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) >= AGENT_MAX)
            return fail(f, fs, e, es, "department_copies", "each a team id (1..63 bytes)");
    }
    return 0;
}

static int check_escalate(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const levels[] = {"lead", "supervisor"};
    return one_of(b, "level", levels, 2, 1, f, fs, e, es) ||
           need_text(b, "reason", 2000, f, fs, e, es);
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

/* A cross-department request (SPEC §5): help from another department while the owner
 * keeps the ticket (assist: the department in copy), or the ticket handed over to the
 * department's queue, which states the reason to the customer first (SPEC §3). */
static int check_request(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const kinds[] = {"assist", "handover"};
    if (one_of(b, "kind", kinds, 2, 1, f, fs, e, es) ||
        need_text(b, "department", AGENT_MAX - 1, f, fs, e, es) ||
        need_text(b, "reason", 2000, f, fs, e, es) || need_text(b, "needed", 4000, f, fs, e, es) ||
        opt_text(b, "customer_message", 4000, f, fs, e, es))
        return SB_E_INVAL;
    if (strcmp(json_string_value(json_object_get(b, "kind")), "handover") == 0 &&
        !json_is_string(json_object_get(b, "customer_message")))
        return fail(f, fs, e, es, "customer_message", "required for a handover");
    return 0;
}

static int check_decision(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const outcomes[] = {"approved", "rejected"};
    if (one_of(b, "outcome", outcomes, 2, 1, f, fs, e, es))
        return SB_E_INVAL;
    if (strcmp(json_string_value(json_object_get(b, "outcome")), "rejected") == 0)
        return need_text(b, "reason", 2000, f, fs, e, es);
    return opt_text(b, "reason", 2000, f, fs, e, es);
}

/* A consultation or complaint slip to a department; without due_at it is due after the
 * configured time of its kind (lifecycle.consultation_due_s, lifecycle.complaint_due_s). */
static int check_slip(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    static const char *const kinds[] = {"consultation", "complaint"};
    json_t *due = json_object_get(b, "due_at");
    int64_t ms;

    if (one_of(b, "kind", kinds, 2, 1, f, fs, e, es) ||
        need_text(b, "department", AGENT_MAX - 1, f, fs, e, es) ||
        need_text(b, "question", 8000, f, fs, e, es))
        return SB_E_INVAL;
    if (due != NULL && (!json_is_string(due) || sb_time_parse(json_string_value(due), &ms) != 0))
        return fail(f, fs, e, es, "due_at", "must be an RFC 3339 time");
    if (due != NULL && ms <= sb_now_ms())
        return fail(f, fs, e, es, "due_at", "must be in the future");
    return 0;
}

static int check_slip_answer(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    return need_text(b, "answer", 8000, f, fs, e, es);
}

static int check_slip_reply(json_t *b, char *f, size_t fs, char *e, size_t es)
{
    return need_text(b, "body", 64 * 1024, f, fs, e, es);
}

static const struct action ticket_actions[] = {
    {"replies", "agent.replied", RANK_AGENT, 0, check_reply, "body public"},
    {"status", "ticket.status_changed", RANK_AGENT, 0, check_status,
     "status reason category handling_minutes note"},
    {"transfer", "ticket.transferred", RANK_AGENT, 0, check_transfer,
     "to_agent to_team reason customer_message"},
    {"notes", "ticket.note_added", RANK_AGENT, 0, check_note,
     "text kind percent milestone attachments"},
    {"claim", "ticket.claimed", RANK_AGENT, 1, check_claim, ""},
    {"decline", "ticket.declined", RANK_AGENT, 1, check_decline, "reason suggested_agent"},
    {"review", "ticket.reviewed", RANK_LEAD, 0, check_review, "outcome reason"},
    {"csat", "csat.received", RANK_AGENT, 0, check_csat, "score comment"},
    {"priority", "ticket.priority_overridden", RANK_SUPERVISOR, 0, check_priority, "band reason"},
    {"dispute", "ticket.priority_disputed", RANK_AGENT, 0, check_priority, "band reason"},
    {"card", "ticket.card_updated", RANK_AGENT, 0, check_card,
     "customer_words contact tried urgency category due_at department_copies"},
    {"escalate", "ticket.escalated", RANK_AGENT, 0, check_escalate, "level reason"},
    /* collaboration (docs/lifecycle.md): every step a ticket.note_added of its kind */
    {"requests", "ticket.note_added", RANK_AGENT, 0, check_request,
     "kind department reason needed customer_message"},
    {"requests/decision", "ticket.note_added", RANK_SUPERVISOR, 0, check_decision,
     "outcome reason"},
    {"slips", "ticket.note_added", RANK_AGENT, 0, check_slip, "kind department question due_at"},
    {"slips/answer", "ticket.note_added", RANK_AGENT, 0, check_slip_answer, "answer"},
    {"slips/reply", "agent.replied", RANK_AGENT, 0, check_slip_reply, "body"},
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

/* Produces one event and waits for its acknowledgement; answers 202 with its id, else
 * 400 or 503 itself. payload is stolen. Returns 0 when acknowledged. */
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
        return SB_E_INVAL;
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
        return rc;
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
    (void)produce(in, resp, SB_TOPIC_PRESENCE, agent_id, "agent.presence", NULL, body, "agent");
    return 0;
}

/* A ticket's workflow record as read under its row lock. */
struct workflow {
    char state[SB_LIFECYCLE_NAME_MAX];
    char owner[AGENT_MAX];
    char team[AGENT_MAX];
    int csat; /* 0: none yet */
    char category[72];
    int64_t handling_minutes; /* -1: none yet */
    char escalation[16];      /* "", lead, supervisor */
    int64_t since_resolved_s; /* -1: never resolved */
    int64_t since_disputed_s; /* -1: no open priority dispute */
};

/* What an accepted action changes in the record besides its state (NULL: kept). */
struct wf_change {
    const char *owner; /* "" clears */
    const char *csat;
    const char *category;
    const char *handling;
    const char *escalation;
    const char *dispute; /* open, close */
    /* a collaboration record written in the same transaction (NULL: none) */
    const char *extra_sql;
    int extra_n;
    const char *const *extra_params;
};

static void rollback(struct sb_pg *pg)
{
    char err[256];
    (void)sb_pg_exec(pg, "ROLLBACK", err, sizeof(err));
}

static int64_t col_int(PGresult *res, int col)
{
    int64_t v = -1;
    if (sb_parse_int64(PQgetvalue(res, 0, col), &v) != 0)
        v = -1;
    return v;
}

/* Opens the transaction, makes the ticket's record if it has none, then locks and reads
 * it: two actions on one ticket are serialized here, the second sees the first's
 * state. Returns 200 (the transaction stays open), 404 or 503 (closed). */
static int wf_lock(struct sb_pg *pg, const char *id, struct workflow *wf)
{
    const char *params[1] = {id};
    char err[256];
    PGresult *res = NULL;
    int e = 0, status = 503;

    if (sb_pg_exec(pg, "BEGIN", err, sizeof(err)) != 0)
        return 503;
    res = sb_pg_query(pg, sql_wf_seed, 1, params, &e, err, sizeof(err));
    if (res == NULL)
        goto out;
    PQclear(res);
    res = sb_pg_query(pg, sql_wf_lock, 1, params, &e, err, sizeof(err));
    if (res == NULL)
        goto out;
    if (PQntuples(res) == 0) {
        status = 404;
        goto out;
    }
    sb_strlcpy(wf->state, PQgetvalue(res, 0, 0), sizeof(wf->state));
    sb_strlcpy(wf->owner, PQgetvalue(res, 0, 1), sizeof(wf->owner));
    sb_strlcpy(wf->team, PQgetvalue(res, 0, 2), sizeof(wf->team));
    wf->csat = (int)col_int(res, 3);
    sb_strlcpy(wf->category, PQgetvalue(res, 0, 4), sizeof(wf->category));
    wf->handling_minutes = col_int(res, 5);
    sb_strlcpy(wf->escalation, PQgetvalue(res, 0, 6), sizeof(wf->escalation));
    wf->since_resolved_s = col_int(res, 7);
    wf->since_disputed_s = col_int(res, 8);
    status = sb_lifecycle_state_valid(wf->state) ? 200 : 503;
out:
    if (res != NULL)
        PQclear(res);
    if (status != 200) {
        if (status == 503)
            sb_log_kv(SB_LOG_WARN, "workflow record not readable", "detail", err, NULL);
        rollback(pg);
    }
    return status;
}

/* Writes the record's new state and commits. The event is already acknowledged: a
 * failure here leaves the record one action behind (counted, docs/lifecycle.md). */
static void wf_commit(struct ingest *in, struct sb_pg *pg, const char *id, const char *next,
                      const struct wf_change *ch)
{
    const char *params[8] = {id,           next,         ch->owner,      ch->csat,
                             ch->category, ch->handling, ch->escalation, ch->dispute};
    char err[256];
    PGresult *res;
    int e = 0;

    if (ch->extra_sql != NULL) {
        res = sb_pg_query(pg, ch->extra_sql, ch->extra_n, ch->extra_params, &e, err, sizeof(err));
        if (res == NULL)
            goto failed;
        PQclear(res);
    }
    res = sb_pg_query(pg, sql_wf_update, 8, params, &e, err, sizeof(err));
    if (res != NULL) {
        PQclear(res);
        if (sb_pg_exec(pg, "COMMIT", err, sizeof(err)) == 0)
            return;
    }
failed:
    rollback(pg);
    sb_log_kv(SB_LOG_ERROR, "action produced but its workflow state not recorded", "ticket_id", id,
              "state", next, "detail", err, NULL);
    sb_metric_inc(sb_metrics_counter(
        in->metrics, "sb_ingest_workflow_unrecorded_total",
        "Actions acknowledged by Kafka whose workflow state could not be committed", NULL));
}

/* Answers 409 with the ticket's state and the moves it allows. extra (stolen, may be
 * NULL) adds members to the error object. */
static void conflict(struct ingest *in, struct sb_http_resp *resp, const char *state,
                     const char *code, const char *message, const char *field, json_t *extra)
{
    char allowed[1024];
    json_t *list = json_array(), *err;
    const char *p = allowed;

    sb_lifecycle_allowed(state, allowed, sizeof(allowed));
    while (*p) {
        size_t n = strcspn(p, " ");
        json_array_append_new(list, json_stringn(p, n));
        p += n;
        while (*p == ' ')
            p++;
    }
    err = json_pack("{s:s,s:s,s:s,s:o}", "code", code, "message", message, "state", state,
                    "allowed", list);
    json_object_set_new(err, "field", field ? json_string(field) : json_null());
    if (extra != NULL) {
        json_object_update(err, extra);
        json_decref(extra);
    }
    ingest_count_rejected(in, "agent", code);
    sb_http_resp_json(resp, 409, json_pack("{s:o}", "error", err));
}

static int authorized(const struct principal *who, const struct workflow *wf,
                      const struct action *a)
{
    int r = rank(who->role);

    if (r >= RANK_SUPERVISOR)
        return 1;
    if (r == RANK_LEAD)
        return who->team[0] && strcmp(wf->team, who->team) == 0;
    if (wf->owner[0] == '\0')
        return a->unassigned_ok;
    return strcmp(wf->owner, who->agent_id) == 0;
}

/* The agents a note @mentions (known agents only, at most 20, sorted) as a new JSON
 * array, or NULL when it names none or they cannot be looked up. */
static json_t *mentions(struct sb_pg *pg, const char *text)
{
    char list[20 * (AGENT_MAX + 1) + 3], err[256];
    const char *params[1] = {list};
    size_t len = 1, n = 0;
    const char *p = text;
    PGresult *res;
    json_t *out = NULL;
    int e = 0;

    list[0] = '{';
    while ((p = strchr(p, '@')) != NULL && n < 20) {
        const char *q = ++p;
        int word_start =
            q - 1 == text || strchr(" \t\r\n,;:(", q[-2]) != NULL || (unsigned char)q[-2] >= 0x80;
        size_t k = 0;
        while ((q[k] >= 'a' && q[k] <= 'z') || (q[k] >= 'A' && q[k] <= 'Z') ||
               (q[k] >= '0' && q[k] <= '9') || q[k] == '-' || q[k] == '_' || q[k] == '.')
            k++;
        while (k > 0 && q[k - 1] == '.')
            k--;
        if (!word_start || k == 0 || k >= AGENT_MAX)
            continue;
        if (n > 0)
            list[len++] = ',';
        memcpy(list + len, q, k);
        len += k;
        n++;
        p = q + k;
    }
    if (n == 0)
        return NULL;
    list[len++] = '}';
    list[len] = '\0';
    res = sb_pg_query(pg, sql_known_agents, 1, params, &e, err, sizeof(err));
    if (res == NULL)
        return NULL;
    out = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (out != NULL && json_array_size(out) == 0) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

/* The move an action makes in the life cycle ("status:resolved", "claim"…). */
static void move_of(const struct action *a, json_t *body, char *move, size_t movesz)
{
    if (strcmp(a->name, "status") == 0)
        sb_fmt(move, movesz, "status:%s", json_string_value(json_object_get(body, "status")));
    else if (strcmp(a->name, "review") == 0)
        sb_fmt(move, movesz, "review:%s", json_string_value(json_object_get(body, "outcome")));
    else if (strcmp(a->name, "requests") == 0)
        sb_strlcpy(move, "request", movesz);
    else if (strcmp(a->name, "requests/decision") == 0)
        sb_strlcpy(move, "decision", movesz);
    else if (strcmp(a->name, "slips") == 0)
        sb_strlcpy(move, "slip", movesz);
    else if (strcmp(a->name, "slips/answer") == 0)
        sb_strlcpy(move, "slip_answer", movesz);
    else if (strcmp(a->name, "slips/reply") == 0)
        sb_strlcpy(move, "slip_reply", movesz);
    else
        sb_strlcpy(move, a->name, movesz);
}

/* Decides an action on a locked record: the next state, what else changes, and what the
 * event carries besides the body. Returns 0, or answers (403/409) and returns -1. bufs
 * holds the strings ch points to: the body goes to the event before the record is
 * written, so ch never points into it. */
static int decide(struct ingest *in, struct sb_http_resp *resp, struct sb_pg *pg,
                  const struct principal *who, const struct action *a, const struct workflow *wf,
                  json_t *body, const char **next, struct wf_change *ch, char bufs[5][80])
{
    char move[64];
    const char *status = json_string_value(json_object_get(body, "status"));

    move_of(a, body, move, sizeof(move));
    *next = sb_lifecycle_next(wf->state, move);
    if (*next == NULL) {
        char msg[200];
        sb_fmt(msg, sizeof(msg), "%s is not allowed while the ticket is %s", move, wf->state);
        conflict(in, resp, wf->state, "illegal_transition", msg,
                 status                           ? "status"
                 : strcmp(a->name, "review") == 0 ? "outcome"
                                                  : NULL,
                 NULL);
        return -1;
    }
    if (strcmp(move, "status:reopened") == 0) {
        int64_t window = sb_config_int(in->cfg, "lifecycle.reopen_window_s");
        if (wf->since_resolved_s < 0 || wf->since_resolved_s > window) {
            char msg[200];
            sb_fmt(msg, sizeof(msg), "a ticket reopens within %lld s of its resolution",
                   (long long)window);
            conflict(in, resp, wf->state, "reopen_window_closed", msg, "status", NULL);
            return -1;
        }
    }
    if (strcmp(move, "status:archived") == 0) {
        json_t *missing = json_array(), *cat = json_object_get(body, "category");
        json_t *hm = json_object_get(body, "handling_minutes");
        if (wf->csat == 0)
            json_array_append_new(missing, json_string("csat"));
        if (!json_is_string(cat) && wf->category[0] == '\0')
            json_array_append_new(missing, json_string("category"));
        if (!json_is_integer(hm) && wf->handling_minutes < 0)
            json_array_append_new(missing, json_string("handling_minutes"));
        if (json_array_size(missing) > 0) {
            char msg[200] = "archiving needs";
            size_t i;
            json_t *m;
            json_array_foreach(missing, i, m)
            {
                size_t len = strlen(msg);
                sb_fmt(msg + len, sizeof(msg) - len, "%s %s", i ? "," : ":", json_string_value(m));
            }
            conflict(in, resp, wf->state, "archive_incomplete", msg,
                     json_string_value(json_array_get(missing, 0)),
                     json_pack("{s:o}", "missing", missing));
            return -1;
        }
        json_decref(missing);
        if (!json_is_string(cat))
            json_object_set_new(body, "category", json_string(wf->category));
        if (!json_is_integer(hm))
            json_object_set_new(body, "handling_minutes", json_integer(wf->handling_minutes));
        sb_strlcpy(bufs[0], json_string_value(json_object_get(body, "category")), 80);
        sb_fmt(bufs[1], 80, "%lld",
               (long long)json_integer_value(json_object_get(body, "handling_minutes")));
        ch->category = bufs[0];
        ch->handling = bufs[1];
    }
    if (status != NULL)
        json_object_set_new(body, "from", json_string(wf->state));
    if (strcmp(a->name, "claim") == 0 && who->agent_id[0])
        ch->owner = who->agent_id;
    if (strcmp(a->name, "transfer") == 0) {
        json_t *to = json_object_get(body, "to_agent");
        sb_strlcpy(bufs[3], json_is_string(to) ? json_string_value(to) : "", 80);
        ch->owner = bufs[3];
        if (wf->owner[0] != '\0')
            json_object_set_new(body, "from_agent", json_string(wf->owner));
    }
    if (strcmp(a->name, "csat") == 0) {
        sb_fmt(bufs[2], 80, "%lld", (long long)json_integer_value(json_object_get(body, "score")));
        ch->csat = bufs[2];
    }
    if (strcmp(a->name, "card") == 0 && json_is_string(json_object_get(body, "category"))) {
        sb_strlcpy(bufs[0], json_string_value(json_object_get(body, "category")), 80);
        ch->category = bufs[0];
    }
    if (strcmp(a->name, "notes") == 0) {
        json_t *m = mentions(pg, json_string_value(json_object_get(body, "text")));
        if (m != NULL)
            json_object_set_new(body, "mentions", m);
    }
    if (strcmp(a->name, "escalate") == 0) {
        /* Three levels (SPEC §3): the agent escalates to the lead, the lead to the
         * supervisor; a level is never skipped. */
        const char *level = json_string_value(json_object_get(body, "level"));
        int to_sup = strcmp(level, "supervisor") == 0;
        if (to_sup && rank(who->role) < RANK_LEAD) {
            ingest_error(in, resp, "agent", 403, "forbidden",
                         "the lead escalates to the supervisor", "level");
            return -1;
        }
        if (strcmp(wf->escalation, to_sup ? "lead" : "") != 0) {
            conflict(
                in, resp, wf->state, "escalation_order",
                wf->escalation[0] == '\0' ? "the first escalation goes to the lead"
                                          : "already escalated to this level or above",
                "level",
                json_pack("{s:s?}", "escalation_level", wf->escalation[0] ? wf->escalation : NULL));
            return -1;
        }
        json_object_set_new(body, "from_level",
                            json_string(wf->escalation[0] ? wf->escalation : "agent"));
        sb_strlcpy(bufs[4], level, 80);
        ch->escalation = bufs[4];
    }
    if (strcmp(a->name, "dispute") == 0)
        ch->dispute = "open";
    if (strcmp(a->name, "priority") == 0 && wf->since_disputed_s >= 0) {
        /* A supervisor's override answering an agent's dispute: its review time. */
        int64_t window = sb_config_int(in->cfg, "lifecycle.dispute_review_s");
        json_object_set_new(body, "dispute",
                            json_pack("{s:I,s:b}", "review_s", (json_int_t)wf->since_disputed_s,
                                      "within_review", wf->since_disputed_s <= window));
        ch->dispute = "close";
    }
    return 0;
}

/* ---- Collaboration across departments (docs/lifecycle.md) ------------------------
 * A request or a slip is a sub-resource of its ticket (/v1/tickets/{id}/requests/{rid}/
 * decision, /slips/{sid}/answer, /slips/{sid}/reply). Its row is read under its own lock
 * inside the ticket's transaction, so a decision or an answer given twice at the same
 * moment is decided once; the row is written in that transaction after Kafka
 * acknowledged the events. */

#define SUB_MAX 48

static const char *const sql_team_exists = "SELECT 1 FROM teams WHERE id = $1";
static const char *const sql_request_lock =
    "SELECT (to_jsonb(r) - 'requested_at' - 'decided_at')::text FROM ticket_requests r "
    "WHERE r.id = $1 AND r.ticket_id = $2 FOR UPDATE OF r";
static const char *const sql_slip_lock =
    "SELECT (to_jsonb(s) - 'sent_at' - 'answered_at' - 'replied_at' - 'due_at' || "
    "jsonb_build_object('due_ms', floor(extract(epoch FROM s.due_at) * 1000)::bigint, "
    "'past_due_s', floor(extract(epoch FROM now() - s.due_at))::bigint))::text "
    "FROM ticket_slips s WHERE s.id = $1 AND s.ticket_id = $2 FOR UPDATE OF s";
static const char *const sql_request_insert =
    "INSERT INTO ticket_requests (id, ticket_id, kind, department, reason, needed, "
    "customer_message, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
static const char *const sql_request_decide =
    "UPDATE ticket_requests SET state = $2, decided_by = $3, decided_at = now(), "
    "decision_reason = $4 WHERE id = $1 AND state = 'pending'";
static const char *const sql_slip_insert =
    "INSERT INTO ticket_slips (id, ticket_id, kind, department, question, sent_by, due_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz)";
static const char *const sql_slip_answer =
    "UPDATE ticket_slips SET state = 'answered', answer = $2, answered_by = $3, "
    "answered_at = now() WHERE id = $1 AND state = 'open'";
static const char *const sql_slip_reply =
    "UPDATE ticket_slips SET state = 'replied', reply = $2, replied_by = $3, "
    "replied_at = now() WHERE id = $1 AND state = 'answered'";
/* What GET /v1/tickets/{id}/collaboration shows: every request and slip of the ticket,
 * oldest first; an open slip past its due time is overdue (by overdue_s seconds), an
 * answer given after it is late. */
static const char *const sql_collaboration =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM tickets WHERE id = $1) OR "
    "EXISTS (SELECT 1 FROM ticket_workflow WHERE ticket_id = $1) THEN jsonb_build_object("
    "'ticket_id', $1::text, "
    "'requests', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(to_jsonb(r) - 'ticket_id') "
    "ORDER BY r.requested_at, r.id) FROM ticket_requests r WHERE r.ticket_id = $1), '[]'), "
    "'slips', coalesce((SELECT jsonb_agg(jsonb_strip_nulls(to_jsonb(s) - 'ticket_id' || "
    "jsonb_build_object('overdue', s.state = 'open' AND now() > s.due_at, "
    "'overdue_s', CASE WHEN s.state = 'open' AND now() > s.due_at "
    "THEN floor(extract(epoch FROM now() - s.due_at))::bigint END, "
    "'late', s.answered_at > s.due_at)) ORDER BY s.sent_at, s.id) "
    "FROM ticket_slips s WHERE s.ticket_id = $1), '[]'))::text END";

/* What a collaboration action decided: the events to produce (in order) and the row to
 * write. The strings params point to live in ids, in the request body or in rec. */
struct collab {
    json_t *rec; /* the locked request or slip row (sub-resource actions) */
    json_t *events;
    char sub[SUB_MAX];
    char new_id[SUB_MAX];
    char due[SB_TIME_STRLEN + 1];
    const char *params[8];
};

/* Splits an action path tail: "notes" stays as it is; "requests/R-…/decision" gives the
 * action "requests/decision" and the sub-resource id. Returns 0, or SB_E_INVAL. */
static int split_tail(const char *tail, char *name, size_t namesz, char *sub, size_t subsz)
{
    const char *s1 = strchr(tail, '/'), *s2;
    size_t n;

    sub[0] = '\0';
    if (s1 == NULL) {
        sb_strlcpy(name, tail, namesz);
        return strlen(tail) < namesz ? 0 : SB_E_INVAL;
    }
    s2 = strchr(s1 + 1, '/');
    if (s2 == NULL || strchr(s2 + 1, '/') != NULL)
        return SB_E_INVAL;
    n = (size_t)(s2 - s1 - 1);
    if (n == 0 || n >= subsz)
        return SB_E_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = s1[1 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return SB_E_INVAL;
    }
    memcpy(sub, s1 + 1, n);
    sub[n] = '\0';
    if (sb_fmt(name, namesz, "%.*s/%s", (int)(s1 - tail), tail, s2 + 1) != 0)
        return SB_E_INVAL;
    return 0;
}

static int is_sub_action(const struct action *a)
{
    return strchr(a->name, '/') != NULL;
}

/* Requests and slips (their own records, events built by collab_decide). */
static int is_collab(const struct action *a)
{
    return strncmp(a->name, "requests", 8) == 0 || strncmp(a->name, "slips", 5) == 0;
}

/* Reads and locks the request or slip the action names (the ticket's transaction is
 * open). Returns 200, 404 (not this ticket's) or 503. */
static int collab_lock(struct sb_pg *pg, const struct action *a, const char *ticket,
                       struct collab *c)
{
    const char *params[2] = {c->sub, ticket};
    const char *sql = strncmp(a->name, "requests/", 9) == 0 ? sql_request_lock : sql_slip_lock;
    char err[256];
    PGresult *res;
    int e = 0, status = 503;

    res = sb_pg_query(pg, sql, 2, params, &e, err, sizeof(err));
    if (res == NULL)
        return 503;
    if (PQntuples(res) == 0) {
        status = 404;
    } else {
        c->rec = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        status = json_is_object(c->rec) ? 200 : 503;
    }
    PQclear(res);
    return status;
}

static const char *rec_str(const struct collab *c, const char *key)
{
    const char *v = json_string_value(json_object_get(c->rec, key));
    return v != NULL ? v : "";
}

/* Whether who may answer the slip: the department it was sent to (its agents and its
 * lead), or a supervisor. */
static int may_answer(const struct principal *who, const struct collab *c)
{
    return rank(who->role) >= RANK_SUPERVISOR ||
           (who->team[0] != '\0' && strcmp(who->team, rec_str(c, "department")) == 0);
}

static void add_event(struct collab *c, const char *type, json_t *payload)
{
    json_array_append_new(c->events, json_pack("{s:s,s:o}", "type", type, "payload", payload));
}

/* The note recording one step of a request or a slip. */
static json_t *collab_note(const char *ticket, const struct principal *who, const char *kind,
                           const char *text, const char *member, json_t *detail)
{
    return json_pack("{s:s,s:{s:s,s:s},s:s,s:s,s:o}", "ticket_id", ticket, "actor", "role",
                     who->role, "agent_id", who->agent_id, "kind", kind, "text", text, member,
                     detail);
}

/* Decides a collaboration action on the locked ticket and its locked request or slip:
 * refuses what the request's or slip's own state does not allow (409), a department
 * that does not exist (400), then fills c->events and ch (the row to write). next may
 * change (a hand-over sends the ticket back to routing). Returns 0, or answers and
 * returns -1. */
static int collab_decide(struct ingest *in, struct sb_http_resp *resp, struct sb_pg *pg,
                         const struct principal *who, const struct action *a,
                         const struct workflow *wf, const char *ticket, json_t *body,
                         const char **next, struct wf_change *ch, struct collab *c)
{
    const char *by = who->agent_id[0] ? who->agent_id : who->role;
    const char *dept = json_string_value(json_object_get(body, "department"));
    char id[SB_UUID_STRLEN + 1], err[256];

    c->events = json_array();
    if (dept != NULL) {
        const char *params[1] = {dept};
        int e = 0;
        PGresult *res = sb_pg_query(pg, sql_team_exists, 1, params, &e, err, sizeof(err));
        int found = res != NULL && PQntuples(res) == 1;
        if (res != NULL)
            PQclear(res);
        if (res == NULL) {
            ingest_error(in, resp, "agent", 503, "unavailable", "cannot check the department now",
                         NULL);
            sb_http_resp_header(resp, "Retry-After", "5");
            return -1;
        }
        if (!found) {
            ingest_error(in, resp, "agent", 400, "invalid", "department: no such team",
                         "department");
            return -1;
        }
    }
    if (strcmp(a->name, "requests") == 0) {
        const char *kind = json_string_value(json_object_get(body, "kind"));
        sb_uuid7_new(id);
        sb_fmt(c->new_id, sizeof(c->new_id), "R-%s", id);
        add_event(c, "ticket.note_added",
                  collab_note(ticket, who, "department_request",
                              json_string_value(json_object_get(body, "reason")), "request",
                              json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", c->new_id, "stage",
                                        "requested", "type", kind, "department", dept, "needed",
                                        json_string_value(json_object_get(body, "needed")))));
        c->params[0] = c->new_id;
        c->params[1] = ticket;
        c->params[2] = kind;
        c->params[3] = dept;
        c->params[4] = json_string_value(json_object_get(body, "reason"));
        c->params[5] = json_string_value(json_object_get(body, "needed"));
        c->params[6] = json_string_value(json_object_get(body, "customer_message"));
        c->params[7] = by;
        ch->extra_sql = sql_request_insert;
        ch->extra_n = 8;
    } else if (strcmp(a->name, "requests/decision") == 0) {
        const char *outcome = json_string_value(json_object_get(body, "outcome"));
        const char *reason = json_string_value(json_object_get(body, "reason"));
        const char *kind = rec_str(c, "kind"), *rdept = rec_str(c, "department");
        int approve = strcmp(outcome, "approved") == 0;
        int handover = strcmp(kind, "handover") == 0;
        json_t *detail;

        if (strcmp(rec_str(c, "state"), "pending") != 0) {
            char msg[160];
            sb_fmt(msg, sizeof(msg), "request %s is already %s", c->sub, rec_str(c, "state"));
            conflict(in, resp, wf->state, "request_decided", msg, "outcome",
                     json_pack("{s:s,s:s,s:s}", "request_id", c->sub, "request_state",
                               rec_str(c, "state"), "decided_by", rec_str(c, "decided_by")));
            return -1;
        }
        if (approve && handover) {
            /* The department takes the ticket over: back to routing, to its queue. */
            const char *to = sb_lifecycle_next(wf->state, "transfer");
            if (to == NULL) {
                char msg[160];
                sb_fmt(msg, sizeof(msg), "a hand-over is not allowed while the ticket is %s",
                       wf->state);
                conflict(in, resp, wf->state, "illegal_transition", msg, "outcome", NULL);
                return -1;
            }
            *next = to;
            ch->owner = "";
        }
        detail = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", c->sub, "stage", outcome, "type", kind,
                           "department", rdept, "needed", rec_str(c, "needed"));
        if (reason != NULL)
            json_object_set_new(detail, "decision_reason", json_string(reason));
        add_event(c, "ticket.note_added",
                  collab_note(ticket, who, "department_request",
                              reason    ? reason
                              : approve ? (handover ? "hand-over to the department approved"
                                                    : "the department's help approved")
                                        : "request rejected",
                              "request", detail));
        if (approve && handover) {
            json_t *tr =
                json_pack("{s:s,s:{s:s,s:s},s:s,s:s,s:s}", "ticket_id", ticket, "actor", "role",
                          who->role, "agent_id", who->agent_id, "to_team", rdept, "reason",
                          rec_str(c, "reason"), "customer_message", rec_str(c, "customer_message"));
            if (wf->owner[0] != '\0')
                json_object_set_new(tr, "from_agent", json_string(wf->owner));
            add_event(c, "ticket.transferred", tr);
        } else if (approve) {
            /* Assistance: the owner keeps the ticket, the department is in copy. */
            add_event(c, "ticket.card_updated",
                      json_pack("{s:s,s:{s:s,s:s},s:[s]}", "ticket_id", ticket, "actor", "role",
                                who->role, "agent_id", who->agent_id, "department_copies", rdept));
        }
        c->params[0] = c->sub;
        c->params[1] = outcome;
        c->params[2] = by;
        c->params[3] = reason;
        ch->extra_sql = sql_request_decide;
        ch->extra_n = 4;
    } else if (strcmp(a->name, "slips") == 0) {
        const char *kind = json_string_value(json_object_get(body, "kind"));
        json_t *due = json_object_get(body, "due_at");
        char note_kind[32];
        int64_t due_ms;

        if (json_is_string(due)) {
            (void)sb_time_parse(json_string_value(due), &due_ms); /* checked before */
        } else {
            char key[64];
            sb_fmt(key, sizeof(key), "lifecycle.%s_due_s", kind);
            due_ms = sb_now_ms() + sb_config_int(in->cfg, key) * 1000;
        }
        sb_time_format_ms(due_ms, c->due);
        sb_uuid7_new(id);
        sb_fmt(c->new_id, sizeof(c->new_id), "S-%s", id);
        sb_fmt(note_kind, sizeof(note_kind), "%s_slip", kind);
        add_event(c, "ticket.note_added",
                  collab_note(ticket, who, note_kind,
                              json_string_value(json_object_get(body, "question")), "slip",
                              json_pack("{s:s,s:s,s:s,s:s}", "id", c->new_id, "stage", "sent",
                                        "department", dept, "due_at", c->due)));
        c->params[0] = c->new_id;
        c->params[1] = ticket;
        c->params[2] = kind;
        c->params[3] = dept;
        c->params[4] = json_string_value(json_object_get(body, "question"));
        c->params[5] = by;
        c->params[6] = c->due;
        ch->extra_sql = sql_slip_insert;
        ch->extra_n = 7;
    } else {
        /* slips/answer, slips/reply */
        int answer = strcmp(a->name, "slips/answer") == 0;
        const char *st = rec_str(c, "state");
        const char *text = json_string_value(json_object_get(body, answer ? "answer" : "body"));
        json_int_t past = json_integer_value(json_object_get(c->rec, "past_due_s"));
        char note_kind[32];
        json_t *detail;

        if (strcmp(st, answer ? "open" : "answered") != 0) {
            char msg[160];
            const char *code = answer                    ? "slip_answered"
                               : strcmp(st, "open") == 0 ? "slip_unanswered"
                                                         : "slip_replied";
            sb_fmt(msg, sizeof(msg), "slip %s is %s", c->sub, st);
            conflict(in, resp, wf->state, code, msg, answer ? "answer" : "body",
                     json_pack("{s:s,s:s}", "slip_id", c->sub, "slip_state", st));
            return -1;
        }
        sb_time_format_ms((int64_t)json_integer_value(json_object_get(c->rec, "due_ms")), c->due);
        sb_fmt(note_kind, sizeof(note_kind), "%s_slip", rec_str(c, "kind"));
        detail =
            json_pack("{s:s,s:s,s:s,s:s}", "id", c->sub, "stage", answer ? "answered" : "replied",
                      "department", rec_str(c, "department"), "due_at", c->due);
        if (answer) {
            json_object_set_new(detail, "late", json_boolean(past > 0));
            if (past > 0)
                json_object_set_new(detail, "late_s", json_integer(past));
        } else {
            /* The customer hears the department's answer from the owner. */
            add_event(c, "agent.replied",
                      json_pack("{s:s,s:{s:s,s:s},s:s,s:b}", "ticket_id", ticket, "actor", "role",
                                who->role, "agent_id", who->agent_id, "body", text, "public", 1));
        }
        add_event(c, "ticket.note_added",
                  collab_note(ticket, who, note_kind, text, "slip", detail));
        c->params[0] = c->sub;
        c->params[1] = text;
        c->params[2] = by;
        ch->extra_sql = answer ? sql_slip_answer : sql_slip_reply;
        ch->extra_n = 3;
    }
    ch->extra_params = c->params;
    return 0;
}

/* The id of event i of a step on an existing request or slip: derived from the step and
 * the event's content, in the time of the request's or slip's own id. A step whose
 * events were produced in part (Kafka failed after the first) is answered 503 and left
 * undone, so the retry makes the same events again: the same ids, which the consumers
 * drop, rather than a second note or a second reply to the customer. A retry that says
 * something else (another outcome, another text) makes other ids. */
static void derive_step_id(const char *sub, const char *action, size_t i, const json_t *payload,
                           char out[SB_UUID_STRLEN + 1])
{
    char *content = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    struct sb_strbuf name = {0};
    char idx[24];
    int64_t ms = sb_uuid7_time_ms(sub + 2); /* R-<uuid7>, S-<uuid7> */

    sb_fmt(idx, sizeof(idx), "/%zu/", i);
    sb_strbuf_append(&name, sub, strlen(sub));
    sb_strbuf_append(&name, "/", 1);
    sb_strbuf_append(&name, action, strlen(action));
    sb_strbuf_append(&name, idx, strlen(idx));
    if (content != NULL)
        sb_strbuf_append(&name, content, strlen(content));
    sb_uuid7_derive(ms >= 0 ? ms : sb_now_ms(), name.p, out);
    free(content);
    free(name.p);
}

/* Produces c->events in order, each awaited; answers 202 with the first event's id and
 * the id of a new request or slip, or 503. Returns 0 when all were acknowledged. */
static int collab_produce(struct ingest *in, struct sb_http_resp *resp, const char *ticket,
                          const struct action *a, struct collab *c)
{
    json_t *ids = json_array(), *answer;
    size_t i;
    json_t *e;

    json_array_foreach(c->events, i, e)
    {
        struct sb_event ev;
        const char *type = json_string_value(json_object_get(e, "type"));
        char *buf = NULL;
        size_t len = 0;
        int rc = sb_event_init(&ev, type, in->producer_name, ticket, NULL,
                               json_incref(json_object_get(e, "payload")));
        if (rc == 0 && c->sub[0] != '\0')
            derive_step_id(c->sub, a->name, i, ev.payload, ev.event_id);
        if (rc == 0)
            buf = sb_event_encode(&ev, &len);
        rc = buf ? sb_producer_send_wait(
                       in->producer, SB_TOPIC_ACTIVITY, ticket, strlen(ticket), buf, len,
                       (int)sb_config_int(in->cfg, "kafka.produce_timeout_ms") + 1000)
                 : SB_E_INVAL;
        free(buf);
        if (rc == 0)
            json_array_append_new(ids, json_string(ev.event_id));
        sb_event_clear(&ev);
        if (rc != 0) {
            if (i > 0)
                sb_log_kv(SB_LOG_ERROR, "collaboration step produced in part", "ticket_id", ticket,
                          "action", a->name, NULL);
            json_decref(ids);
            ingest_error(in, resp, "agent", 503, "unavailable",
                         "the action could not be stored durably; retry later", NULL);
            sb_http_resp_header(resp, "Retry-After", "5");
            return rc;
        }
    }
    answer = json_pack("{s:O,s:O,s:o}", "event_id", json_array_get(ids, 0), "type",
                       json_object_get(json_array_get(c->events, 0), "type"), "event_ids", ids);
    if (c->new_id[0] != '\0')
        json_object_set_new(answer, strcmp(a->name, "requests") == 0 ? "request_id" : "slip_id",
                            json_string(c->new_id));
    sb_http_resp_json(resp, 202, answer);
    return 0;
}

/* GET /v1/tickets/{id}/collaboration: the ticket's requests and slips (any role). */
static int collaboration(struct ingest *in, struct sb_http_resp *resp, const char *ticket)
{
    const char *params[1] = {ticket};
    struct sb_pg *pg = ingest_pg(in);
    char err[256];
    PGresult *res = NULL;
    json_t *j = NULL;
    int e = 0;

    if (pg != NULL)
        res = sb_pg_query(pg, sql_collaboration, 1, params, &e, err, sizeof(err));
    if (res == NULL) {
        ingest_error(in, resp, "agent", 503, "unavailable", "cannot read the ticket now", NULL);
        sb_http_resp_header(resp, "Retry-After", "5");
        return 0;
    }
    if (!PQgetisnull(res, 0, 0))
        j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (j == NULL) {
        ingest_error(in, resp, "agent", 404, "not_found", "no such ticket", "ticket_id");
        return 0;
    }
    sb_http_resp_json(resp, 200, j);
    return 0;
}

int ingest_action(struct ingest *in, const struct sb_http_req *req, struct sb_http_resp *resp)
{
    struct principal who;
    struct workflow wf;
    struct wf_change ch = {0};
    struct collab c;
    char id[80], name[48] = "", field[96] = "", errstr[256] = "", bufs[5][80];
    const char *tail = NULL, *next = NULL;
    const struct action *a = NULL;
    struct sb_pg *pg;
    json_t *body;
    int auth, status, is_get = strcmp(req->method, "GET") == 0;

    memset(&c, 0, sizeof(c));
    /* The only read: a ticket's collaboration records. */
    if (is_get && (split_path(req->path, "/v1/tickets/", id, sizeof(id), &tail) != 0 ||
                   strcmp(tail, "collaboration") != 0))
        is_get = -1;
    if ((strcmp(req->method, "POST") != 0 && !is_get) || is_get < 0) {
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
    if (is_get)
        return collaboration(in, resp, id);
    if (strncmp(req->path, "/v1/agents/", 11) == 0) {
        if (split_path(req->path, "/v1/agents/", id, sizeof(id), &tail) != 0 ||
            strcmp(tail, "presence") != 0) {
            ingest_error(in, resp, "agent", 404, "not_found", "no such endpoint", "path");
            return 0;
        }
        return presence(in, req, resp, &who, id);
    }
    if (split_path(req->path, "/v1/tickets/", id, sizeof(id), &tail) == 0 &&
        split_tail(tail, name, sizeof(name), c.sub, sizeof(c.sub)) == 0) {
        for (size_t i = 0; i < sizeof(ticket_actions) / sizeof(ticket_actions[0]); i++) {
            if (strcmp(name, ticket_actions[i].name) == 0)
                a = &ticket_actions[i];
        }
    }
    if (a == NULL || (c.sub[0] != '\0') != is_sub_action(a)) {
        ingest_error(in, resp, "agent", 404, "not_found", "no such endpoint", "path");
        return 0;
    }
    if (rank(who.role) < a->min_rank) {
        ingest_error(in, resp, "agent", 403, "forbidden", "this role may not take this action",
                     NULL);
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
    pg = ingest_pg(in);
    status = pg != NULL ? wf_lock(pg, id, &wf) : 503;
    if (status == 200 && is_sub_action(a)) {
        status = collab_lock(pg, a, id, &c);
        if (status != 200)
            rollback(pg);
    }
    if (status != 200) {
        const char *what = c.sub[0] ? (a->name[0] == 'r' ? "no such request of this ticket"
                                                         : "no such slip of this ticket")
                                    : "no such ticket";
        json_decref(body);
        ingest_error(in, resp, "agent", status, status == 404 ? "not_found" : "unavailable",
                     status == 404 ? what : "cannot check the ticket now",
                     status == 404
                         ? (c.sub[0] ? (a->name[0] == 'r' ? "request_id" : "slip_id") : "ticket_id")
                         : NULL);
        if (status == 503)
            sb_http_resp_header(resp, "Retry-After", "5");
        json_decref(c.rec);
        return 0;
    }
    if (strcmp(a->name, "slips/answer") == 0 ? !may_answer(&who, &c) : !authorized(&who, &wf, a)) {
        rollback(pg);
        json_decref(body);
        json_decref(c.rec);
        ingest_error(in, resp, "agent", 403, "forbidden", "this role may not act on this ticket",
                     NULL);
        return 0;
    }
    if (decide(in, resp, pg, &who, a, &wf, body, &next, &ch, bufs) != 0 ||
        (is_collab(a) &&
         collab_decide(in, resp, pg, &who, a, &wf, id, body, &next, &ch, &c) != 0)) {
        rollback(pg);
        json_decref(body);
        json_decref(c.rec);
        json_decref(c.events);
        return 0;
    }
    if (c.events != NULL) {
        /* The row stays locked until every event is acknowledged (as below). */
        if (collab_produce(in, resp, id, a, &c) != 0)
            rollback(pg);
        else
            wf_commit(in, pg, id, next, &ch);
        json_decref(body);
        json_decref(c.rec);
        json_decref(c.events);
        return 0;
    }
    json_object_set_new(body, "ticket_id", json_string(id));
    json_object_set_new(body, "actor",
                        json_pack("{s:s,s:s}", "role", who.role, "agent_id", who.agent_id));
    /* The row stays locked until the event is acknowledged: a concurrent action on the
     * same ticket waits and then sees this one's state. */
    if (produce(in, resp, SB_TOPIC_ACTIVITY, id, a->type, id, body, "agent") != 0) {
        rollback(pg);
        return 0;
    }
    wf_commit(in, pg, id, next, &ch);
    return 0;
}
