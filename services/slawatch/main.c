/* sb-slawatch: SLA clocks of every open ticket (issue 6, SPEC §2 and §4). Consumes
 * sb.tickets.v1, sb.routing.v1 and sb.activity.v1, produces sb.sla.v1: sla.started,
 * sla.paused, sla.warning, sla.breached, sla.escalated and followup.due. The clocks
 * live in the SLA core (docs/slawatch-core.md), one engine per owned partition,
 * snapshotted to PostgreSQL after each batch; SIGHUP and a periodic refresh reload
 * the policies, calendars and the roster (docs/slawatch.md). */
#include "slawatch.h"

#include "sb/err.h"
#include "sb/http.h"
#include "sb/log.h"
#include "sb/service.h"
#include "sb/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sb_config_def slawatch_defs[] = {
    {"admin.port", "SB_ADMIN_PORT", SB_CFG_INT, "9104", 0, 65535, 0,
     "port of /healthz /readyz /metrics"},
    {"kafka.group", "SB_KAFKA_GROUP", SB_CFG_STRING, "sb-slawatch", 0, -1, 0,
     "consumer group: instances of one group share the partitions (range assignor)"},
    {"batch.max", "SB_BATCH_MAX", SB_CFG_INT, "500", 1, 20000, 0, "inputs per flush"},
    {"batch.ms", "SB_BATCH_MS", SB_CFG_INT, "50", 1, 10000, 0, "longest wait for a batch to fill"},
    {"slawatch.policies_file", "SB_SLAWATCH_POLICIES_FILE", SB_CFG_STRING, "", 0, -1, 0,
     "SLA policies from this JSON file (format of deploy/config/policies.json) instead of "
     "table sla_policies"},
    {"slawatch.calendar", "SB_SLAWATCH_CALENDAR", SB_CFG_STRING, "", 0, -1, 0,
     "calendar (calendars.id) of business-time targets; empty: they count calendar time"},
    {"slawatch.refresh_s", "SB_SLAWATCH_REFRESH_S", SB_CFG_INT, "300", 1, 86400, 0,
     "reload policies, declared periods and calendars this often (and on SIGHUP)"},
    {"slawatch.roster_refresh_s", "SB_SLAWATCH_ROSTER_REFRESH_S", SB_CFG_INT, "60", 1, 86400, 0,
     "reload the roster (agents' teams, team leads, supervisors, calendars) this often"},
    {"slawatch.roster_miss_s", "SB_SLAWATCH_ROSTER_MISS_S", SB_CFG_INT, "10", 1, 86400, 0,
     "an agent the roster does not know reloads it, at most this often"},
    {"slawatch.reescalate_max_s", "SB_SLAWATCH_REESCALATE_MAX_S", SB_CFG_INT, "3600", 1, 86400, 0,
     "a breached clock left untouched escalates again after min(target, this)"},
    {"slawatch.callback_delay_s", "SB_SLAWATCH_CALLBACK_DELAY_S", SB_CFG_INT, "86400", 0, 2592000,
     0, "followup.due callback this long after a complaint is resolved"},
    {"slawatch.csat_delay_s", "SB_SLAWATCH_CSAT_DELAY_S", SB_CFG_INT, "3600", 0, 2592000, 0,
     "followup.due CSAT survey this long after a ticket is resolved"},
    {"slawatch.due_soon_s", "SB_SLAWATCH_DUE_SOON_S", SB_CFG_INT, "900", 1, 86400, 0,
     "horizon of the due-soon gauge"},
    {"slawatch.tick_ms", "SB_SLAWATCH_TICK_MS", SB_CFG_INT, "200", 10, 5000, 0,
     "longest time between two timer checks"},
    {"slawatch.catchup_max_s", "SB_SLAWATCH_CATCHUP_MAX_S", SB_CFG_INT, "30", 0, 3600, 0,
     "after a partition is taken over (start, restart, rebalance), its timers follow the "
     "inputs' time until its backlog is read, at most this long"},
    {"slawatch.broker_check_ms", "SB_SLAWATCH_BROKER_CHECK_MS", SB_CFG_INT, "500", 50, 60000, 0,
     "how often the broker is asked whether it answers; while it does not, no deadline "
     "fires (inputs it holds may not have been read), and when it answers again every "
     "partition catches up before the timers follow the wall clock"},
    {"slawatch.defer_wait_s", "SB_SLAWATCH_DEFER_WAIT_S", SB_CFG_INT, "60", 0, 3600, 0,
     "how long an input read before its ticket's triage (an assignment read ahead of it) waits "
     "for the triage before it is dropped (0: dropped at once)"},
};

static volatile sig_atomic_t reload_requested;

static void on_sighup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static int ready(void *ctx, char *why, size_t why_size)
{
    struct slawatch *s = ctx;
    if (s->policies == NULL) {
        sb_fmt(why, why_size, "SLA policies not loaded");
        return 0;
    }
    return 1;
}

static void metrics_init(struct slawatch *s)
{
    char l[64];
    struct sb_metrics *m = s->metrics = sb_metrics_new();
    static const double delay_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

    for (int k = 0; k < SB_SLA_CLOCK_KINDS; k++) {
        sb_fmt(l, sizeof(l), "clock=%s", sb_sla_kind_name(k));
        s->m_running[k] = sb_metrics_gauge(m, "sb_slawatch_clocks_running",
                                           "SLA clocks running, by clock kind", l);
        s->m_at_risk[k] =
            sb_metrics_gauge(m, "sb_slawatch_at_risk",
                             "Clocks past their warning threshold and not yet breached", l);
        s->m_warnings[k] =
            sb_metrics_counter(m, "sb_slawatch_warnings_total", "sla.warning events produced", l);
        s->m_breaches[k] =
            sb_metrics_counter(m, "sb_slawatch_breaches_total", "sla.breached events produced", l);
    }
    for (int v = 0; v <= SB_LEVEL_SUPERVISOR; v++) {
        sb_fmt(l, sizeof(l), "level=%s", sb_sla_level_name(v));
        s->m_escalations[v] = sb_metrics_counter(
            m, "sb_slawatch_escalations_total",
            "sla.escalated events produced, by level (agent, lead, supervisor)", l);
    }
    for (int b = 1; b < 5; b++) {
        sb_fmt(l, sizeof(l), "band=%s", sb_sla_band_name(b));
        s->m_band_breaches[b] = sb_metrics_counter(m, "sb_slawatch_band_breaches_total",
                                                   "sla.breached events produced, by band", l);
        s->m_due_soon[b] = sb_metrics_gauge(
            m, "sb_slawatch_due_soon",
            "Running clocks, not breached, due within slawatch.due_soon_s, by band", l);
    }
    s->m_band_breaches[0] = s->m_band_breaches[1];
    s->m_due_soon[0] = s->m_due_soon[1];
    s->m_active = sb_metrics_gauge(m, "sb_slawatch_clocks_active",
                                   "SLA clocks running or paused on this instance", NULL);
    s->m_paused = sb_metrics_gauge(m, "sb_slawatch_clocks_paused",
                                   "SLA clocks paused while waiting on the customer", NULL);
    s->m_bytes = sb_metrics_gauge(m, "sb_slawatch_engine_bytes",
                                  "Memory held by the clocks, index and timers", NULL);
    s->m_delay =
        sb_metrics_histogram(m, "sb_slawatch_timer_delay_seconds",
                             "How late a due clock was handled (due time to event produced)", NULL,
                             delay_bounds, sizeof(delay_bounds) / sizeof(delay_bounds[0]));
    s->m_events = sb_metrics_counter(m, "sb_slawatch_events_total",
                                     "Events produced to sb.sla.v1 (acknowledged)", NULL);
    s->m_followups =
        sb_metrics_counter(m, "sb_slawatch_followups_total", "followup.due events produced", NULL);
    s->m_restored =
        sb_metrics_counter(m, "sb_slawatch_clocks_restored_total",
                           "Clocks restored from snapshots on partition take-over", NULL);
    s->m_skipped = sb_metrics_counter(
        m, "sb_slawatch_inputs_skipped_total",
        "Redelivered inputs skipped: their effect is in the snapshot already", NULL);
    s->m_partitions = sb_metrics_gauge(m, "sb_slawatch_partitions",
                                       "Partition numbers whose clocks this instance holds", NULL);
}

#define MAX_PROPS 64

static int run(struct sb_config *cfg)
{
    static struct slawatch s; /* large (partition table): not on the stack */
    static const char *const topics[SW_NTOPICS] = {SB_TOPIC_TICKETS, SB_TOPIC_ROUTING,
                                                   SB_TOPIC_ACTIVITY};
    struct sb_kafka_opts kopts;
    const char *keys[MAX_PROPS + 1], *values[MAX_PROPS + 1];
    struct sb_stage *stage = NULL;
    struct sb_admin *admin = NULL;
    char err[512];
    int rc = 1;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.group = sb_config_str(cfg, "kafka.group");
    sb_fmt(s.producer_name, sizeof(s.producer_name), "%s/%s", SB_SLAWATCH_PROGRAM, SB_VERSION);
    s.callback_delay_ms = sb_config_int(cfg, "slawatch.callback_delay_s") * 1000;
    s.csat_delay_ms = sb_config_int(cfg, "slawatch.csat_delay_s") * 1000;
    s.reescalate_max_ms = sb_config_int(cfg, "slawatch.reescalate_max_s") * 1000;
    s.due_soon_ms = sb_config_int(cfg, "slawatch.due_soon_s") * 1000;
    s.catchup_max_ms = sb_config_int(cfg, "slawatch.catchup_max_s") * 1000;
    s.defer_wait_ms = sb_config_int(cfg, "slawatch.defer_wait_s") * 1000;
    s.roster_miss_ms = sb_config_int(cfg, "slawatch.roster_miss_s") * 1000;
    metrics_init(&s);

    if (sw_reload(&s) != 0) {
        fprintf(stderr, "%s: SLA policies or calendars not loaded (see the log)\n",
                SB_SLAWATCH_PROGRAM);
        goto out;
    }
    sb_service_kafka_opts(cfg, SB_SLAWATCH_PROGRAM, &kopts);
    s.producer = sb_producer_new(&kopts, err, sizeof(err));
    if (s.producer == NULL) {
        fprintf(stderr, "%s: %s\n", SB_SLAWATCH_PROGRAM, err);
        goto out;
    }
    /* Co-partitioning: the range assignor gives a member the same partition numbers of
     * every topic (same partition counts, same subscription), so one engine holds all the
     * inputs of its tickets. It comes last, so it wins over the pass-through. */
    if (kopts.nprops > MAX_PROPS) {
        fprintf(stderr, "%s: too many rdkafka properties\n", SB_SLAWATCH_PROGRAM);
        goto out;
    }
    for (size_t i = 0; i < kopts.nprops; i++) {
        keys[i] = kopts.keys[i];
        values[i] = kopts.values[i];
    }
    keys[kopts.nprops] = "partition.assignment.strategy";
    values[kopts.nprops] = "range";
    kopts.keys = keys;
    kopts.values = values;
    kopts.nprops++;
    {
        struct sb_stage_opts so = {
            .name = SB_SLAWATCH_PROGRAM,
            .group = s.group,
            .topics = topics,
            .ntopics = SW_NTOPICS,
            .handle = sw_handle,
            .flush = sw_flush,
            .ctx = &s,
            .batch_max = (int)sb_config_int(cfg, "batch.max"),
            .batch_ms = (int)sb_config_int(cfg, "batch.ms"),
            .poll_ms = 50,
        };
        stage = sb_stage_new(&kopts, &so, s.producer, s.metrics, err, sizeof(err));
        if (stage == NULL) {
            fprintf(stderr, "%s: %s\n", SB_SLAWATCH_PROGRAM, err);
            goto out;
        }
        s.stage = stage;
    }
    admin = sb_admin_new(sb_config_str(cfg, "admin.bind"), (int)sb_config_int(cfg, "admin.port"),
                         s.metrics, ready, &s, err, sizeof(err));
    if (admin == NULL) {
        fprintf(stderr, "%s: admin server: %s\n", SB_SLAWATCH_PROGRAM, err);
        goto out;
    }
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sighup;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGHUP, &sa, NULL);
    }
    sb_log_kv(SB_LOG_INFO, "watching SLA clocks", "group", s.group, NULL);
    rc = 0;
    {
        const int64_t tick = sb_config_int(cfg, "slawatch.tick_ms");
        const int64_t refresh = sb_config_int(cfg, "slawatch.refresh_s") * 1000;
        const int64_t roster_refresh = sb_config_int(cfg, "slawatch.roster_refresh_s") * 1000;
        const int64_t check = sb_config_int(cfg, "slawatch.broker_check_ms");
        int64_t reload_next = sb_mono_ms() + refresh, gauges_next = 0;
        int64_t roster_next = sb_mono_ms() + roster_refresh, check_next = 0;
        int64_t answered_ms = sb_now_ms(); /* wall time of the last question answered */
        int64_t answered_mono = sb_mono_ms();
        bool held = false;

        while (!sb_stop_requested()) {
            int64_t now = sb_now_ms(), due = sw_next_due(&s), wait = tick;
            if (due != SB_SLA_NEVER && !held)
                wait = due <= now ? 1 : (due - now < tick ? due - now : tick);
            if (sb_stage_run(stage, 0, wait) != 0) {
                rc = 1;
                break;
            }
            /* Partitions taken over are restored now (their timers run without inputs);
             * those handed over are dropped. */
            sw_sync(&s, true);
            /* A partition taken over follows its inputs' time until its backlog is read,
             * then the wall clock (docs/slawatch.md, "Storage and restart"). */
            sw_catchup_turn(&s);
            if (reload_requested || sb_mono_ms() >= reload_next) {
                reload_requested = 0;
                sw_reload(&s);
                reload_next = sb_mono_ms() + refresh;
                roster_next = sb_mono_ms() + roster_refresh;
            } else if (sb_mono_ms() >= roster_next) {
                /* A new lead or supervisor is named within this interval. */
                sw_reload_roster(&s);
                roster_next = sb_mono_ms() + roster_refresh;
            }
            /* A deadline fires only while the broker answers: an input it took just
             * before it stopped (a reply before the deadline) would otherwise be read
             * after a breach that is not one. Back, it is read first (a catch-up). */
            if (sb_mono_ms() >= check_next) {
                int64_t asked = sb_now_ms(), asked_mono = sb_mono_ms();
                if (sb_producer_ping(s.producer, (int)(check < 1000 ? 1000 : check)) == 0) {
                    /* Back after no answer, or after a turn too long to ask (a flush
                     * waiting for the broker): inputs it took meanwhile are read first. */
                    if (held || asked_mono - answered_mono > check + 2000) {
                        sb_log_kv(SB_LOG_INFO,
                                  held ? "Kafka answers again: partitions catch up"
                                       : "a loop turn outlasted the broker check: partitions "
                                         "catch up",
                                  NULL);
                        held = false;
                        sw_catchup_all(&s);
                    }
                    answered_ms = asked;
                    answered_mono = asked_mono;
                } else if (!held) {
                    held = true;
                    sb_log_kv(SB_LOG_WARN, "Kafka does not answer: SLA deadlines wait for it",
                              NULL);
                }
                check_next = sb_mono_ms() + check;
            }
            sw_advance(&s, held ? answered_ms : sb_now_ms());
            /* Produces what fell due and writes what changed (nothing to do: no work); a
             * failed flush is retried on the next turn with the same event ids. */
            sw_flush(&s);
            if (sb_mono_ms() >= gauges_next) {
                sw_gauges(&s, sb_now_ms());
                gauges_next = sb_mono_ms() + 1000;
            }
        }
        if (s.events.n > 0)
            sw_flush(&s);
    }
    sb_log_kv(SB_LOG_INFO, rc ? "stopping after a fatal Kafka error" : "stopping", NULL);
out:
    s.stage = NULL;
    sb_stage_destroy(stage);
    sb_admin_destroy(admin);
    sb_producer_destroy(s.producer, (int)sb_config_int(cfg, "shutdown.timeout_ms"));
    sw_destroy(&s);
    sb_metrics_destroy(s.metrics);
    return rc;
}

int main(int argc, char **argv)
{
    struct sb_config *cfg = NULL;
    int rc = sb_service_configure(
        argc, argv, SB_SLAWATCH_PROGRAM,
        "SLA clocks of every open ticket: first response, resolution, claim and the special "
        "targets, paused while waiting on the customer, warned, breached and escalated on "
        "time; follow-ups after resolution. Consumes sb.tickets.v1, sb.routing.v1 and "
        "sb.activity.v1; produces sb.sla.v1.",
        slawatch_defs, sizeof(slawatch_defs) / sizeof(slawatch_defs[0]), &cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sb_signals_install();
    rc = run(cfg);
    sb_config_destroy(cfg);
    return rc;
}
