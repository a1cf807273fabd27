/* sbctl token create: a new API bearer token for a role. The token is 32 random bytes
 * from OpenSSL (RAND_bytes through sb_random_bytes), written as "sbt_" and 64 hex
 * digits; it is printed once, and only its SHA-256 (hex of the whole "sbt_…" string)
 * is stored in api_tokens.token_sha256, which is what ingest compares. */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TOKEN_BYTES 32

static const char sql_agent[] = "SELECT active FROM agents WHERE id = $1";
static const char sql_insert[] =
    "INSERT INTO api_tokens (token_sha256, role, agent_id) VALUES ($1, $2, $3) RETURNING id";

static void usage(FILE *out)
{
    fprintf(out, "Usage: sbctl token create --role agent|lead|supervisor|admin [--agent ID]\n"
                 "\n"
                 "Creates an API bearer token and prints it once (sbt_ and 64 hex digits);\n"
                 "only its SHA-256 is stored. --agent ties the token to an agent of the roster\n"
                 "(required for roles agent and lead). Revoke a token with:\n"
                 "  UPDATE api_tokens SET revoked_at = now() WHERE id = ...\n");
}

static int valid_role(const char *role)
{
    static const char *const roles[] = {"agent", "lead", "supervisor", "admin", NULL};

    for (const char *const *r = roles; *r != NULL; r++) {
        if (strcmp(role, *r) == 0)
            return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, const char **role, const char **agent)
{
    if (argc < 1 || strcmp(argv[0], "create") != 0) {
        fprintf(stderr, "sbctl token: expected \"create\" (see sbctl token --help)\n");
        return SBCTL_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            *role = argv[++i];
        } else if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
            *agent = argv[++i];
        } else {
            fprintf(stderr, "sbctl token: unexpected argument \"%s\" (see --help)\n", argv[i]);
            return SBCTL_EXIT_USAGE;
        }
    }
    if (*role == NULL || !valid_role(*role)) {
        fprintf(stderr, "sbctl token: --role must be agent, lead, supervisor or admin\n");
        return SBCTL_EXIT_USAGE;
    }
    /* A lead acts on their team's tickets: the team comes from the agent record. */
    if ((strcmp(*role, "agent") == 0 || strcmp(*role, "lead") == 0) && *agent == NULL) {
        fprintf(stderr, "sbctl token: role %s needs --agent ID\n", *role);
        return SBCTL_EXIT_USAGE;
    }
    return 0;
}

/* The agent must exist and be active. Returns 0 or 1 after one line. */
static int check_agent(struct sb_pg *pg, const char *agent)
{
    const char *params[1] = {agent};
    char err[512];
    int e = 0, rc = SBCTL_EXIT_FAIL;
    PGresult *res = sb_pg_query(pg, sql_agent, 1, params, &e, err, sizeof(err));

    if (res == NULL)
        fprintf(stderr, "sbctl token: %s\n", err);
    else if (PQntuples(res) == 0)
        fprintf(stderr, "sbctl token: no agent \"%s\"\n", agent);
    else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
        fprintf(stderr, "sbctl token: agent \"%s\" is not active\n", agent);
    else
        rc = 0;
    PQclear(res);
    return rc;
}

/* Makes a token and its hash (both hex, NUL-terminated). Returns 0 or -1. */
static int make_token(char *token, size_t tokensz, char hash[2 * SHA256_DIGEST_LENGTH + 1])
{
    unsigned char raw[TOKEN_BYTES], digest[SHA256_DIGEST_LENGTH];
    char hex[2 * TOKEN_BYTES + 1];

    if (sb_random_bytes(raw, sizeof(raw)) != 0)
        return -1;
    sb_hex(raw, sizeof(raw), hex);
    OPENSSL_cleanse(raw, sizeof(raw));
    if (sb_fmt(token, tokensz, "sbt_%s", hex) != 0)
        return -1;
    OPENSSL_cleanse(hex, sizeof(hex));
    SHA256((const unsigned char *)token, strlen(token), digest);
    sb_hex(digest, sizeof(digest), hash);
    return 0;
}

int sbctl_token(struct sbctl *ctl, int argc, char **argv)
{
    const char *role = NULL, *agent = NULL;
    char token[8 + 2 * TOKEN_BYTES], hash[2 * SHA256_DIGEST_LENGTH + 1], err[512];
    const char *params[3] = {hash, NULL, NULL};
    struct sb_pg *pg = NULL;
    PGresult *res = NULL;
    int e = 0, rc;

    if (sbctl_wants_help(argc, argv)) {
        usage(stdout);
        return SBCTL_EXIT_OK;
    }
    rc = parse_args(argc, argv, &role, &agent);
    if (rc != 0)
        return rc;
    rc = SBCTL_EXIT_FAIL;
    if (make_token(token, sizeof(token), hash) != 0) {
        fprintf(stderr, "sbctl token: no secure randomness available\n");
        return SBCTL_EXIT_FAIL;
    }
    pg = sbctl_pg(ctl);
    if (pg == NULL || (agent != NULL && check_agent(pg, agent) != 0))
        goto out;
    params[1] = role;
    params[2] = agent;
    res = sb_pg_query(pg, sql_insert, 3, params, &e, err, sizeof(err));
    if (res == NULL) {
        fprintf(stderr, "sbctl token: %s\n", err);
        goto out;
    }
    printf("%s\n", token);
    if (isatty(STDOUT_FILENO))
        fprintf(stderr, "token id %s: keep it now, it cannot be shown again\n",
                PQgetvalue(res, 0, 0));
    rc = SBCTL_EXIT_OK;
out:
    OPENSSL_cleanse(token, sizeof(token));
    PQclear(res);
    sb_pg_destroy(pg);
    return rc;
}
