/* sb-router: queues, agent presence and capacity, assignment, ETA (DESIGN.md, SPEC.md
 * §3). Consumes sb.tickets.v1, sb.presence.v1, sb.activity.v1 and sb.sla.v1; produces
 * sb.routing.v1. The decisions are the routing core's (docs/router-core.md); the
 * service around it is described in docs/router.md. */
#include "router.h"

#include "sb/err.h"
#include "sb/http.h"
#include "sb/log.h"
#include "sb/service.h"
#include "sb/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sb_config_def router_defs[] = {
    {"admin.port", "SB_ADMIN_PORT", SB_CFG_INT, "9103", 0, 65535, 0,
     "port of /healthz /readyz /metrics"},
    {"topics.tickets", "SB_TOPICS_TICKETS", SB_CFG_STRING, SB_TOPIC_TICKETS, 0, -1, 0,
     "topic of ticket.triaged, ticket.rescored and ticket.merged"},
    {"topics.presence", "SB_TOPICS_PRESENCE", SB_CFG_STRING, SB_TOPIC_PRESENCE, 0, -1, 0,
     "topic of agent.presence"},
    {"topics.activity", "SB_TOPICS_ACTIVITY", SB_CFG_STRING, SB_TOPIC_ACTIVITY, 0, -1, 0,
     "topic of the agents' actions on tickets"},
    {"topics.sla", "SB_TOPICS_SLA", SB_CFG_STRING, SB_TOPIC_SLA, 0, -1, 0,
     "topic of the SLA watcher's escalations"},
    {"topics.routing", "SB_TOPICS_ROUTING", SB_CFG_STRING, SB_TOPIC_ROUTING, 0, -1, 0,
     "topic the routing events are produced to"},
    {"kafka.group", "SB_KAFKA_GROUP", SB_CFG_STRING, "sb-router", 0, -1, 0,
     "consumer group: instances of one group share the partitions"},
    {"kafka.produce_timeout_ms", "SB_KAFKA_PRODUCE_TIMEOUT_MS", SB_CFG_INT, "10000", 100, 600000, 0,
     "longest wait for the acknowledgement of a batch of routing events"},
    {"batch.max", "SB_BATCH_MAX", SB_CFG_INT, "500", 1, 20000, 0, "messages per flush"},
    {"batch.ms", "SB_BATCH_MS", SB_CFG_INT, "20", 1, 10000, 0, "longest wait for a batch to fill"},
    {"policy", "SB_ROUTER_POLICY", SB_CFG_STRING, "longest_idle", 0, -1, 0,
     "who gets a ticket among eligible agents: longest_idle, least_occupied, highest_skill"},
    {"continuity.wait_s", "SB_ROUTER_CONTINUITY_WAIT_S", SB_CFG_INT, "60", 0, 86400, 0,
     "how long a returning customer waits for their last agent when that agent is full"},
    {"continuity.remember_s", "SB_ROUTER_CONTINUITY_REMEMBER_S", SB_CFG_INT, "2592000", 0, 31536000,
     0, "how long a customer's last agent is remembered (0: continuity off)"},
    {"offer.timeout_s.voice", "SB_ROUTER_OFFER_TIMEOUT_VOICE_S", SB_CFG_INT, "30", 1, 86400, 0,
     "an offer of a call not accepted within this goes to the next agent"},
    {"offer.timeout_s.chat", "SB_ROUTER_OFFER_TIMEOUT_CHAT_S", SB_CFG_INT, "30", 1, 86400, 0,
     "…of a chat (chat, WeChat)"},
    {"offer.timeout_s.email", "SB_ROUTER_OFFER_TIMEOUT_EMAIL_S", SB_CFG_INT, "600", 1, 86400, 0,
     "…of an email"},
    {"offer.timeout_s.social", "SB_ROUTER_OFFER_TIMEOUT_SOCIAL_S", SB_CFG_INT, "300", 1, 86400, 0,
     "…of a social media message"},
    {"offer.timeout_s.form", "SB_ROUTER_OFFER_TIMEOUT_FORM_S", SB_CFG_INT, "600", 1, 86400, 0,
     "…of a web form or API ticket"},
    {"offer.timeout_s.task", "SB_ROUTER_OFFER_TIMEOUT_TASK_S", SB_CFG_INT, "7200", 1, 604800, 0,
     "…of a collaboration task (claim or decline with a reason within 2 h)"},
    {"capacity.task", "SB_ROUTER_CAPACITY_TASK", SB_CFG_INT, "5", 0, 1000, 0,
     "collaboration tasks an agent holds at once (the roster has no column for it)"},
    {"roster.refresh_s", "SB_ROUTER_ROSTER_REFRESH_S", SB_CFG_INT, "60", 1, 86400, 0,
     "how often the roster (agents, teams, skills) is read again from PostgreSQL"},
    {"agents.refresh_ms", "SB_ROUTER_AGENTS_REFRESH_MS", SB_CFG_INT, "500", 50, 60000, 0,
     "how often the shared presence and load of every agent is read from Redis"},
    {"redis.prefix", "SB_ROUTER_REDIS_PREFIX", SB_CFG_STRING, "sb:rt:", 0, -1, 0,
     "prefix of the router's Redis keys (agents, load, reservations, ticket records)"},
    {"eta.prefix", "SB_ROUTER_ETA_PREFIX", SB_CFG_STRING, "sb:eta:", 0, -1, 0,
     "prefix of the wait estimates per intake channel that ingest reads"},
    {"eta.aht_s", "SB_ROUTER_ETA_AHT_S", SB_CFG_DOUBLE, "300", 1, 86400, 0,
     "initial average handle time (seconds) of the Erlang C estimates; then learnt"},
    {"tickets.done_remember_s", "SB_ROUTER_DONE_REMEMBER_S", SB_CFG_INT, "604800", 60, 31536000, 0,
     "how long a resolved or merged ticket is remembered in Redis, so that its ticket.triaged "
     "read again (a restart, a group moved back) does not route it a second time"},
    {"ticket_prefix", "SB_ROUTER_TICKET_PREFIX", SB_CFG_STRING, "", 0, -1, 0,
     "route only tickets whose id starts with this (\"\": all)"},
    {"agent_prefix", "SB_ROUTER_AGENT_PREFIX", SB_CFG_STRING, "", 0, -1, 0,
     "consider only agents whose id starts with this (\"\": all)"},
};

static int run(struct sb_config *cfg)
{
    /* Co-partitioning: partition p of every ticket-keyed topic comes to one instance. */
    static const char *const extra_keys[] = {"partition.assignment.strategy"};
    static const char *const extra_values[] = {"range"};
    struct router r;
    struct sb_kafka_opts kopts, copts;
    struct sb_admin *admin = NULL;
    const char **keys = NULL, **values = NULL;
    char err[512];
    int rc = 1;

    memset(&r, 0, sizeof(r));
    if (router_init(&r, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", SB_ROUTER_PROGRAM, err);
        goto out;
    }
    const char *topics[] = {r.t_tickets, r.t_presence, r.t_activity, r.t_sla};
    sb_service_kafka_opts(cfg, SB_ROUTER_PROGRAM, &kopts);
    r.producer = sb_producer_new(&kopts, err, sizeof(err));
    if (r.producer == NULL) {
        fprintf(stderr, "%s: %s\n", SB_ROUTER_PROGRAM, err);
        goto out;
    }
    copts = kopts;
    keys = sb_calloc(kopts.nprops + 1, sizeof(char *));
    values = sb_calloc(kopts.nprops + 1, sizeof(char *));
    for (size_t i = 0; i < kopts.nprops; i++)
        keys[i] = kopts.keys[i], values[i] = kopts.values[i];
    keys[kopts.nprops] = extra_keys[0];
    values[kopts.nprops] = extra_values[0];
    copts.keys = keys;
    copts.values = values;
    copts.nprops = kopts.nprops + 1;
    {
        struct sb_stage_opts so = {
            .name = SB_ROUTER_PROGRAM,
            .group = sb_config_str(cfg, "kafka.group"),
            .topics = topics,
            .ntopics = sizeof(topics) / sizeof(topics[0]),
            .handle = router_handle,
            .flush = router_flush,
            .ctx = &r,
            .batch_max = (int)sb_config_int(cfg, "batch.max"),
            .batch_ms = (int)sb_config_int(cfg, "batch.ms"),
            .poll_ms = 50,
        };
        r.stage = sb_stage_new(&copts, &so, r.producer, r.metrics, err, sizeof(err));
        if (r.stage == NULL) {
            fprintf(stderr, "%s: %s\n", SB_ROUTER_PROGRAM, err);
            goto out;
        }
    }
    admin = sb_admin_new(sb_config_str(cfg, "admin.bind"), (int)sb_config_int(cfg, "admin.port"),
                         r.metrics, router_ready, &r, err, sizeof(err));
    if (admin == NULL) {
        fprintf(stderr, "%s: admin server: %s\n", SB_ROUTER_PROGRAM, err);
        goto out;
    }
    sb_log_kv(SB_LOG_INFO, "routing", "group", sb_config_str(cfg, "kafka.group"), "instance",
              r.instance, NULL);
    rc = 0;
    while (!sb_stop_requested()) {
        if (sb_stage_run(r.stage, 0, 200) != 0) {
            rc = 1;
            break;
        }
        router_periodic(&r);
        if ((r.nout > 0 || r.nwr > 0) && router_flush(&r) != 0)
            sb_log_kv(SB_LOG_WARN, "routing events not flushed yet: retrying", NULL);
    }
    /* Whatever timers produced last goes out before leaving. */
    if (rc == 0 && (r.nout > 0 || r.nwr > 0))
        router_flush(&r);
    sb_log_kv(SB_LOG_INFO, rc ? "stopping after a fatal Kafka error" : "stopping", NULL);
out:
    sb_stage_destroy(r.stage);
    sb_admin_destroy(admin);
    if (r.producer != NULL)
        sb_producer_destroy(r.producer, (int)sb_config_int(cfg, "shutdown.timeout_ms"));
    router_free(&r);
    free(keys);
    free(values);
    return rc;
}

int main(int argc, char **argv)
{
    struct sb_config *cfg = NULL;
    int rc = sb_service_configure(
        argc, argv, SB_ROUTER_PROGRAM,
        "Queues, agent presence and capacity, assignment and wait estimates: consumes "
        "sb.tickets.v1, sb.presence.v1, sb.activity.v1 and sb.sla.v1, produces sb.routing.v1.",
        router_defs, sizeof(router_defs) / sizeof(router_defs[0]), &cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sb_signals_install();
    rc = run(cfg);
    sb_config_destroy(cfg);
    return rc;
}
