/* sbctl token create: a random API token for a role, printed once; only its SHA-256
 * is stored (api_tokens.token_sha256). */
#include "sbctl.h"

#include "sb/err.h"
#include "sb/util.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

int sbctl_token(struct sbctl *ctl, int argc, char **argv)
{
    const char *role = NULL, *agent = NULL;
    unsigned char raw[32], digest[SHA256_DIGEST_LENGTH];
    char token[80], hex[65], hash[65], err[512];
    const char *params[3];
    struct sb_pg *pg;
    PGresult *res;
    int e = 0;

    if (argc < 1 || sbctl_wants_help(argc, argv) || strcmp(argv[0], "create") != 0) {
        printf("Usage: sbctl token create --role agent|lead|supervisor|admin [--agent ID]\n\n"
               "Creates an API token; it is printed once and stored only as a hash.\n");
        return sbctl_wants_help(argc, argv) ? 0 : 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc)
            agent = argv[++i];
        else {
            fprintf(stderr, "sbctl token: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (role == NULL || (strcmp(role, "agent") != 0 && strcmp(role, "lead") != 0 &&
                         strcmp(role, "supervisor") != 0 && strcmp(role, "admin") != 0)) {
        fprintf(stderr, "sbctl token: --role must be agent, lead, supervisor or admin\n");
        return 2;
    }
    if (strcmp(role, "admin") != 0 && agent == NULL) {
        fprintf(stderr, "sbctl token: --agent is required for role %s\n", role);
        return 2;
    }
    if (sb_random_bytes(raw, sizeof(raw)) != 0) {
        fprintf(stderr, "sbctl token: no randomness available\n");
        return 1;
    }
    sb_hex(raw, sizeof(raw), hex);
    sb_fmt(token, sizeof(token), "sbt_%s", hex);
    SHA256((const unsigned char *)token, strlen(token), digest);
    sb_hex(digest, sizeof(digest), hash);
    pg = sbctl_pg(ctl);
    if (pg == NULL)
        return 1;
    params[0] = hash;
    params[1] = role;
    params[2] = agent;
    res = sb_pg_query(pg,
                      "INSERT INTO api_tokens (token_sha256, role, agent_id) VALUES ($1, $2, $3)",
                      3, params, &e, err, sizeof(err));
    sb_pg_destroy(pg);
    if (res == NULL) {
        fprintf(stderr, "sbctl token: %s\n", err);
        return 1;
    }
    PQclear(res);
    printf("%s\n", token);
    return 0;
}
