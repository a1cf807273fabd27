/* sbctl load agents: the roster. One row per agent: id, name, team, role, languages,
 * product_lines, skills ("skill:level;…" or a JSON object, levels 1-5), the capacity
 * per channel (call, chat, email, social) and optionally active. A team named in the
 * file is created when missing (name = id); an agent with role lead or supervisor
 * becomes their team's lead or supervisor. Skills not in the file are removed, so the
 * file is the agent's complete skill set. */
#include "load.h"

#include "sb/util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SKILLS 64

static const char *const fields[] = {"id",
                                     "name",
                                     "team",
                                     "role",
                                     "languages",
                                     "product_lines",
                                     "skills",
                                     "capacity_call",
                                     "capacity_chat",
                                     "capacity_email",
                                     "capacity_social",
                                     "active",
                                     NULL};

/* Capacity columns, their upper bounds (the table's CHECK constraints). */
static const char *const cap_names[4] = {"capacity_call", "capacity_chat", "capacity_email",
                                         "capacity_social"};
static const int64_t cap_max[4] = {10, 50, 200, 100};

struct agent {
    char id[64], name[201], team[64], role[16];
    char languages[LOAD_ARRAY_MAX], product_lines[LOAD_ARRAY_MAX];
    char caps[4][16];
    int active;
    json_t *skills; /* skill name -> level (integer) */
};

static const char sql_team[] =
    "INSERT INTO teams (id, name) VALUES ($1, $1) ON CONFLICT (id) DO NOTHING";
static const char sql_agent[] =
    "INSERT INTO agents (id, name, team_id, role, languages, product_lines, capacity_call, "
    "capacity_chat, capacity_email, capacity_social, active) VALUES ($1, $2, $3, $4, "
    "$5::text[], $6::text[], $7, $8, $9, $10, $11) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, team_id = excluded.team_id, "
    "role = excluded.role, languages = excluded.languages, product_lines = "
    "excluded.product_lines, capacity_call = excluded.capacity_call, capacity_chat = "
    "excluded.capacity_chat, capacity_email = excluded.capacity_email, capacity_social = "
    "excluded.capacity_social, active = excluded.active, updated_at = now() "
    "WHERE (agents.name, agents.team_id, agents.role, agents.languages, agents.product_lines, "
    "agents.capacity_call, agents.capacity_chat, agents.capacity_email, agents.capacity_social, "
    "agents.active) IS DISTINCT FROM (excluded.name, excluded.team_id, excluded.role, "
    "excluded.languages, excluded.product_lines, excluded.capacity_call, excluded.capacity_chat, "
    "excluded.capacity_email, excluded.capacity_social, excluded.active)";
static const char sql_skills_prune[] =
    "DELETE FROM agent_skills WHERE agent_id = $1 AND NOT (skill = ANY ($2::text[]))";
static const char sql_skills[] =
    "INSERT INTO agent_skills (agent_id, skill, level) SELECT $1, s.skill, s.level "
    "FROM unnest($2::text[], $3::smallint[]) AS s (skill, level) "
    "ON CONFLICT (agent_id, skill) DO UPDATE SET level = excluded.level "
    "WHERE agent_skills.level IS DISTINCT FROM excluded.level";
/* The agent becomes lead or supervisor of their team, and stops being one elsewhere. */
static const char sql_team_roles[] =
    "UPDATE teams SET "
    "lead_agent_id = CASE WHEN id = $2 AND $3 = 'lead' THEN $1 "
    "WHEN lead_agent_id = $1 THEN NULL ELSE lead_agent_id END, "
    "supervisor_agent_id = CASE WHEN id = $2 AND $3 = 'supervisor' THEN $1 "
    "WHEN supervisor_agent_id = $1 THEN NULL ELSE supervisor_agent_id END "
    "WHERE (id = $2 AND $3 IN ('lead', 'supervisor') AND (CASE $3 WHEN 'lead' THEN "
    "lead_agent_id ELSE supervisor_agent_id END) IS DISTINCT FROM $1) "
    "OR (lead_agent_id = $1 AND (id <> $2 OR $3 <> 'lead')) "
    "OR (supervisor_agent_id = $1 AND (id <> $2 OR $3 <> 'supervisor'))";

/* Adds one skill (name, level as text) after checking both. */
static int add_skill(struct load_ctx *c, const struct load_row *r, json_t *skills, const char *name,
                     const char *level)
{
    int64_t l;

    if (!load_valid_name(name)) {
        load_error(c, r->line, "skills", "a skill is a lowercase name (e.g. order_payment)");
        return -1;
    }
    if (sb_parse_int64(level, &l) != 0 || l < 1 || l > 5) {
        load_error(c, r->line, "skills", "levels are integers 1..5");
        return -1;
    }
    if (json_object_get(skills, name) != NULL) {
        load_error(c, r->line, "skills", "a skill is listed twice");
        return -1;
    }
    if (json_object_size(skills) >= MAX_SKILLS) {
        load_error(c, r->line, "skills", "too many skills");
        return -1;
    }
    json_object_set_new(skills, name, json_integer(l));
    return 0;
}

/* "skill:level;skill:level". */
static int parse_skill_list(struct load_ctx *c, const struct load_row *r, const char *s,
                            json_t *skills)
{
    while (*s != '\0') {
        char item[96], *colon;
        size_t n = strcspn(s, ";");

        if (n >= sizeof(item)) {
            load_error(c, r->line, "skills", "an entry is too long");
            return -1;
        }
        memcpy(item, s, n);
        item[n] = '\0';
        s += n + (s[n] == ';');
        if (strspn(item, " ") == n)
            continue;
        colon = strchr(item, ':');
        if (colon == NULL) {
            load_error(c, r->line, "skills", "expected skill:level;skill:level");
            return -1;
        }
        *colon = '\0';
        if (add_skill(c, r, skills, item, colon + 1) != 0)
            return -1;
    }
    return 0;
}

/* skills: a string "a:3;b:5" or an object {"a": 3, "b": 5}. New object in *out. */
static int parse_skills(struct load_ctx *c, const struct load_row *r, json_t **out)
{
    json_t *v = json_object_get(r->obj, "skills"), *level;
    json_t *skills = json_object();
    const char *k;
    int rc = 0;

    *out = skills;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return parse_skill_list(c, r, json_string_value(v), skills);
    if (!json_is_object(v)) {
        load_error(c, r->line, "skills", "expected skill:level;... or an object");
        return -1;
    }
    json_object_foreach(v, k, level)
    {
        char buf[32] = "";
        if (json_is_integer(level))
            sb_fmt(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(level));
        else if (json_is_string(level))
            sb_strlcpy(buf, json_string_value(level), sizeof(buf));
        if (add_skill(c, r, skills, k, buf) != 0)
            rc = -1;
    }
    return rc;
}

static int parse_caps(struct load_ctx *c, const struct load_row *r, struct agent *a)
{
    int bad = 0;

    for (int i = 0; i < 4; i++) {
        int64_t v = 0;
        if (load_int(c, r, cap_names[i], 1, 0, cap_max[i], &v) < 0)
            bad = 1;
        sb_fmt(a->caps[i], sizeof(a->caps[i]), "%lld", (long long)v);
    }
    return bad ? -1 : 0;
}

/* Reads and checks one row; a->skills must be released with json_decref. */
static int parse(struct load_ctx *c, const struct load_row *r, struct agent *a)
{
    static const char *const roles[] = {"agent", "lead", "supervisor", "admin", NULL};
    char key[128];
    int bad = 0, rc;

    memset(a, 0, sizeof(*a));
    a->active = 1;
    if (load_id(c, r, "id", 1, 63, a->id, sizeof(a->id)) < 0 || load_unique(c, r, "id", a->id) != 0)
        bad = 1;
    bad |= load_required(c, r, "name", 200, a->name, sizeof(a->name)) < 0;
    bad |= load_id(c, r, "team", 1, 63, a->team, sizeof(a->team)) < 0;
    rc = load_enum(c, r, "role", roles, a->role, sizeof(a->role));
    if (rc == 0)
        sb_strlcpy(a->role, "agent", sizeof(a->role));
    bad |= rc < 0;
    if (rc == 1 && a->team[0] != '\0' &&
        (strcmp(a->role, "lead") == 0 || strcmp(a->role, "supervisor") == 0)) {
        sb_fmt(key, sizeof(key), "%s of team %s", a->role, a->team);
        bad |= load_unique(c, r, "role", key) != 0;
    }
    bad |= load_array(c, r, "languages", 1, load_valid_language, "a language tag (zh, en)",
                      a->languages, sizeof(a->languages)) < 0;
    bad |= load_array(c, r, "product_lines", 0, load_valid_name, "a lowercase name",
                      a->product_lines, sizeof(a->product_lines)) < 0;
    bad |= parse_caps(c, r, a) != 0;
    bad |= load_bool(c, r, "active", &a->active) < 0;
    bad |= parse_skills(c, r, &a->skills) != 0;
    return bad ? -1 : 0;
}

static int agent_check(struct load_ctx *c, const struct load_row *r)
{
    struct agent a;
    int rc = parse(c, r, &a);

    json_decref(a.skills);
    return rc;
}

static int write_skills(struct sb_pg *pg, const struct agent *a, char *err, size_t errsz)
{
    char names[LOAD_ARRAY_MAX], levels[LOAD_ARRAY_MAX];
    const char *params[3] = {a->id, names, levels};
    json_t *n = json_array(), *l = json_array(), *v;
    const char *k;
    int rc = -1;

    json_object_foreach(a->skills, k, v)
    {
        json_array_append_new(n, json_string(k));
        json_array_append_new(l, json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v)));
    }
    if (load_pg_array(n, names, sizeof(names)) != 0 || load_pg_array(l, levels, sizeof(levels))) {
        sb_fmt(err, errsz, "skills do not fit");
        goto out;
    }
    if (load_exec(pg, sql_skills_prune, 2, params, err, errsz) != 0 ||
        load_exec(pg, sql_skills, 3, params, err, errsz) != 0)
        goto out;
    rc = 0;
out:
    json_decref(n);
    json_decref(l);
    return rc;
}

static int agent_write(struct load_ctx *c, struct sb_pg *pg, const struct load_row *r, char *err,
                       size_t errsz)
{
    struct agent a;
    const char *pa[11], *pt[3];
    int rc = -1;

    if (parse(c, r, &a) != 0) {
        sb_fmt(err, errsz, "row no longer valid");
        goto out;
    }
    pa[0] = a.id, pa[1] = a.name, pa[2] = a.team, pa[3] = a.role, pa[4] = a.languages;
    pa[5] = a.product_lines;
    for (int i = 0; i < 4; i++)
        pa[6 + i] = a.caps[i];
    pa[10] = a.active ? "true" : "false";
    pt[0] = a.id, pt[1] = a.team, pt[2] = a.role;
    if (load_exec(pg, sql_team, 1, &pa[2], err, errsz) != 0 ||
        load_exec(pg, sql_agent, 11, pa, err, errsz) != 0 || write_skills(pg, &a, err, errsz) ||
        load_exec(pg, sql_team_roles, 3, pt, err, errsz) != 0)
        goto out;
    rc = 0;
out:
    json_decref(a.skills);
    return rc;
}

const struct load_kind load_agents = {
    .name = "agents",
    .fields = fields,
    .check = agent_check,
    .write = agent_write,
    .committed = NULL,
};
