/* sb-loadgen: sends contacts to sb-ingest at a target rate (Poisson, or a real day's
 * arrival shape with a peak and an incident burst) and, with --agents, simulates the
 * agents who take them. Bounded by --count and --duration; loopback only unless
 * --allow-remote. Prints live figures on a terminal and a JSON summary at the end. */
#include "loadgen.h"

#include "sb/log.h"
#include "sb/util.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SB_VERSION
#define SB_VERSION "0.0.0"
#endif

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sb-loadgen [OPTIONS]\n"
            "\n"
            "Sends contacts to sb-ingest's POST /v1/contacts and, with --agents, simulates the\n"
            "agents who take the offers of sb-router through sb-ingest's agent API.\n"
            "\n"
            "Load:\n"
            "  --rate R            mean contacts per second (default 50)\n"
            "  --count N           contacts to send (default 1000)\n"
            "  --duration S        hard bound of the run in seconds (default 60)\n"
            "  --mix C,E,P,S,W     channel weights chat,email,phone,social,web\n"
            "                      (default 40,25,15,10,10)\n"
            "  --day YYMMDD        shape the rate by that day's hourly arrivals in the bank\n"
            "                      call-center log (the day compressed into --duration)\n"
            "  --peak AT,LEN,X     multiply the rate by X from AT for LEN seconds (a promotion)\n"
            "  --incident AT,N     N near-identical contacts at once from AT seconds\n"
            "  --known SHARE       share of contacts from CRM customers (default 0.6)\n"
            "  --zh SHARE          share of Chinese template texts, the rest real queries of\n"
            "                      the data's train files (default 0.25)\n"
            "  --connections N     HTTP requests in flight at most (default 32)\n"
            "  --seed N            random seed (default 1)\n"
            "Agents:\n"
            "  --agents N          simulate N agents lg-a-0001… (default 0: none)\n"
            "  --accept-s S        mean delay before accepting an offer or replying (default 2)\n"
            "  --handle-s S        mean handle time (default 20)\n"
            "  --pending SHARE     share of tickets put on pending customer (default 0.2)\n"
            "  --decline SHARE     share of offers declined (default 0.05)\n"
            "  --drain S           after the last contact, time for agents to finish (default 30)\n"
            "Where:\n"
            "  --ingest URL        sb-ingest (env SB_INGEST_URL, default http://127.0.0.1:8080)\n"
            "  --brokers HOSTS     Kafka (env SB_KAFKA_BROKERS, default 127.0.0.1:19092)\n"
            "  --pg-dsn DSN        PostgreSQL (env SB_PG_DSN)\n"
            "  --data DIR          real data for texts and day shapes (env SB_DATA_DIR;\n"
            "                      default ../shared/data beside the repository)\n"
            "  --secret S          signing secret of /v1/contacts (env SB_SECRET_API,\n"
            "                      default dev-secret-api)\n"
            "  --allow-remote      allow an ingest URL that is not on loopback\n"
            "Output:\n"
            "  --summary FILE      also write the JSON summary to FILE\n"
            "  --quiet             no live line on stderr\n"
            "  -h, --help, --version\n");
}

/* ../shared/data beside the repository of this executable (build/bin/sb-loadgen). */
static const char *default_data_dir(void)
{
    static char dir[4096];
    char exe[4096];
    ssize_t n;

    if (getenv("SB_DATA_DIR") != NULL)
        return getenv("SB_DATA_DIR");
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return "../shared/data";
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (slash == NULL)
            return "../shared/data";
        *slash = '\0';
    }
    sb_fmt(dir, sizeof(dir), "%s/../shared/data", exe);
    return dir;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

static int parse_list(const char *s, double *out, int n)
{
    char *end;
    for (int i = 0; i < n; i++) {
        out[i] = strtod(s, &end);
        if (end == s || out[i] < 0 || (i < n - 1 && *end != ','))
            return -1;
        s = end + (i < n - 1);
    }
    return *end == '\0' ? 0 : -1;
}

static int loopback(const char *url)
{
    return strncmp(url, "http://127.", 11) == 0 || strncmp(url, "http://localhost", 16) == 0 ||
           strncmp(url, "http://[::1]", 12) == 0;
}

static int parse_args(int argc, char **argv, struct lg_opts *o)
{
    int remote = 0;
    double v[3];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("sb-loadgen %s\n", SB_VERSION);
            exit(0);
        } else if (strcmp(a, "--allow-remote") == 0) {
            remote = 1;
            used = 0;
        } else if (strcmp(a, "--quiet") == 0) {
            o->progress = 0;
            used = 0;
        } else if (val == NULL) {
            fprintf(stderr, "sb-loadgen: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--rate") == 0) {
            o->rate = atof(val);
        } else if (strcmp(a, "--count") == 0) {
            o->count = atol(val);
        } else if (strcmp(a, "--duration") == 0) {
            o->duration_s = atof(val);
        } else if (strcmp(a, "--drain") == 0) {
            o->drain_s = atof(val);
        } else if (strcmp(a, "--connections") == 0) {
            o->connections = atoi(val);
        } else if (strcmp(a, "--seed") == 0) {
            o->seed = (unsigned)strtoul(val, NULL, 10);
        } else if (strcmp(a, "--known") == 0) {
            o->known_share = atof(val);
        } else if (strcmp(a, "--zh") == 0) {
            o->zh_share = atof(val);
        } else if (strcmp(a, "--mix") == 0) {
            if (parse_list(val, o->mix, LG_CHANNELS) != 0) {
                fprintf(stderr, "sb-loadgen: --mix %s: five weights expected\n", val);
                return -1;
            }
        } else if (strcmp(a, "--day") == 0) {
            o->day = val;
        } else if (strcmp(a, "--peak") == 0) {
            if (parse_list(val, v, 3) != 0) {
                fprintf(stderr, "sb-loadgen: --peak %s: AT,LEN,FACTOR expected\n", val);
                return -1;
            }
            o->peak_at_s = v[0];
            o->peak_len_s = v[1];
            o->peak_factor = v[2];
        } else if (strcmp(a, "--incident") == 0) {
            if (parse_list(val, v, 2) != 0) {
                fprintf(stderr, "sb-loadgen: --incident %s: AT,N expected\n", val);
                return -1;
            }
            o->incident_at_s = v[0];
            o->incident_size = (int)v[1];
        } else if (strcmp(a, "--agents") == 0) {
            o->agents = atoi(val);
        } else if (strcmp(a, "--accept-s") == 0) {
            o->accept_mean_s = atof(val);
        } else if (strcmp(a, "--handle-s") == 0) {
            o->handle_mean_s = atof(val);
        } else if (strcmp(a, "--pending") == 0) {
            o->pending_share = atof(val);
        } else if (strcmp(a, "--decline") == 0) {
            o->decline_share = atof(val);
        } else if (strcmp(a, "--ingest") == 0) {
            o->ingest = val;
        } else if (strcmp(a, "--brokers") == 0) {
            o->brokers = val;
        } else if (strcmp(a, "--pg-dsn") == 0) {
            o->pg_dsn = val;
        } else if (strcmp(a, "--data") == 0) {
            o->data_dir = val;
        } else if (strcmp(a, "--secret") == 0) {
            o->api_secret = val;
        } else if (strcmp(a, "--summary") == 0) {
            o->summary_path = val;
        } else {
            fprintf(stderr, "sb-loadgen: unknown option %s\n", a);
            return -1;
        }
        i += used;
    }
    if (!(o->rate > 0) || o->count < 0 || !(o->duration_s > 0) || o->connections < 1 ||
        o->agents < 0 || o->agents > 9999 || o->known_share < 0 || o->known_share > 1 ||
        o->zh_share < 0 || o->zh_share > 1) {
        fprintf(stderr, "sb-loadgen: --rate, --duration and --connections must be positive, "
                        "--agents 0-9999, --known and --zh 0-1\n");
        return -1;
    }
    if (!remote && !loopback(o->ingest)) {
        fprintf(stderr, "sb-loadgen: %s is not on loopback (--allow-remote to insist)\n",
                o->ingest);
        return -1;
    }
    return 0;
}

struct run {
    struct lg_opts o;
    struct lg_stats st;
    struct lg_http *http;
    struct lg_traffic *traffic;
    struct lg_agents *agents;
    struct sb_strbuf body;
};

struct sent {
    struct run *r;
    double at;
};

static void on_contact(void *arg, long status, const char *body, size_t len, double seconds)
{
    struct sent *s = arg;
    struct run *r = s->r;

    if (status == 202 || status == 200) {
        r->st.accepted++;
        lg_lat_add(&r->st.accept_lat, seconds);
        if (r->agents != NULL) {
            /* {"ticket_id":"…",…}: the ticket to follow to its assignment. */
            json_t *j = json_loadb(body, len, 0, NULL);
            const char *tid = json_string_value(json_object_get(j, "ticket_id"));
            if (tid != NULL)
                lg_agents_track(r->agents, tid, s->at);
            json_decref(j);
        }
    } else if (status >= 400) {
        r->st.refused++;
        if (r->st.refused <= 3)
            sb_log_kv(SB_LOG_WARN, "contact refused", "status",
                      status == 429   ? "429"
                      : status >= 500 ? "5xx"
                                      : "4xx",
                      "body", len > 300 ? "(long)" : body, NULL);
    } else {
        r->st.failed++;
    }
    free(s);
}

static void progress(const struct run *r, double now, int final)
{
    double done = r->o.count > 0 ? (double)r->st.sent / (double)r->o.count : 1;
    int bar = (int)(done * 30);
    fprintf(stderr,
            "\r[%.*s%*s] %5.1fs sent %ld accepted %ld offered %ld assigned %ld resolved %ld "
            "open %ld%s",
            bar, "##############################", 30 - bar, "", now, r->st.sent, r->st.accepted,
            r->st.offered, r->st.assigned, r->st.resolved,
            r->agents ? lg_agents_open(r->agents) : 0, final ? "\n" : "   ");
}

/* A percentile in milliseconds, 0 when there are no samples (JSON has no NaN). */
static double pct_ms(struct lg_lat *l, double p)
{
    return l->n > 0 ? lg_lat_pct(l, p) * 1e3 : 0;
}

static void print_summary(struct run *r, double elapsed, FILE *out)
{
    struct lg_stats *st = &r->st;
    fprintf(out,
            "{\"contacts\":{\"sent\":%ld,\"accepted\":%ld,\"refused\":%ld,\"failed\":%ld,"
            "\"rate_target\":%.1f,\"rate_achieved\":%.1f,\"by_channel\":{",
            st->sent, st->accepted, st->refused, st->failed, r->o.rate,
            elapsed > 0 ? (double)st->accepted / elapsed : 0);
    for (int i = 0; i < LG_CHANNELS; i++)
        fprintf(out, "%s\"%s\":%ld", i ? "," : "", lg_channel_names[i], st->per_channel[i]);
    fprintf(out,
            "},\"accept_ms\":{\"p50\":%.2f,\"p99\":%.2f}},\"agents\":{\"count\":%d,"
            "\"offered\":%ld,\"claimed\":%ld,\"declined\":%ld,\"assigned\":%ld,\"replied\":%ld,"
            "\"pending\":%ld,\"resolved\":%ld,\"csat\":%ld,\"action_errors\":%ld,"
            "\"assign_ms\":{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f}},\"elapsed_s\":%.2f,"
            "\"seed\":%u,\"run\":\"%s\"}\n",
            pct_ms(&st->accept_lat, 50), pct_ms(&st->accept_lat, 99), r->o.agents, st->offered,
            st->claimed, st->declined, st->assigned, st->replied, st->pending, st->resolved,
            st->csat, st->action_errors, st->assign_lat.n, pct_ms(&st->assign_lat, 50),
            pct_ms(&st->assign_lat, 99), elapsed, r->o.seed, lg_traffic_run(r->traffic));
}

int main(int argc, char **argv)
{
    struct run r = {.o = {.ingest = env_or("SB_INGEST_URL", "http://127.0.0.1:8080"),
                          .brokers = env_or("SB_KAFKA_BROKERS", "127.0.0.1:19092"),
                          .pg_dsn = env_or("SB_PG_DSN", "postgresql://switchboard:switchboard@"
                                                        "127.0.0.1:15432/switchboard"),
                          .data_dir = default_data_dir(),
                          .api_secret = env_or("SB_SECRET_API", "dev-secret-api"),
                          .rate = 50,
                          .count = 1000,
                          .duration_s = 60,
                          .drain_s = 30,
                          .connections = 32,
                          .seed = 1,
                          .mix = {40, 25, 15, 10, 10},
                          .known_share = 0.6,
                          .zh_share = 0.25,
                          .accept_mean_s = 2,
                          .handle_mean_s = 20,
                          .pending_share = 0.2,
                          .decline_share = 0.05,
                          .progress = isatty(2)}};
    char err[512] = "", sig[160];
    const char *headers[] = {sig, NULL};
    double next = 0, now = 0, last_drawn = -1, end_sending = -1;
    int drawn = 0, ch = 0;
    FILE *f;

    sb_log_init("sb-loadgen", SB_LOG_WARN);
    if (parse_args(argc, argv, &r.o) != 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    r.traffic = lg_traffic_new(&r.o, err, sizeof(err));
    if (r.traffic == NULL) {
        fprintf(stderr, "sb-loadgen: %s\n", err);
        return 1;
    }
    if (lg_traffic_texts(r.traffic) == 0)
        fprintf(stderr, "sb-loadgen: no texts under %s (skipped); Chinese templates only\n",
                r.o.data_dir);
    r.http = lg_http_new(r.o.connections);
    if (r.o.agents > 0 &&
        (r.agents = lg_agents_new(&r.o, r.http, &r.st, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sb-loadgen: agents: %s\n", err);
        lg_http_destroy(r.http);
        lg_traffic_destroy(r.traffic);
        return 1;
    }
    lg_now();
    /* Agents log in before the first contact. */
    while (r.agents != NULL && r.st.sent == 0 && lg_now() < 0.01 * r.o.agents + 2) {
        lg_agents_poll(r.agents, lg_now());
        lg_http_poll(r.http, 10);
    }
    double t0 = lg_now();
    next = lg_traffic_next_arrival(r.traffic, 0);
    while (!stop_requested) {
        now = lg_now() - t0;
        if (now >= r.o.duration_s + (r.agents ? r.o.drain_s : 0))
            break;
        while (r.st.sent < r.o.count && now >= next && now < r.o.duration_s) {
            struct sent *s = sb_calloc(1, sizeof(*s));
            char url[512];
            /* A contact drawn but not posted (all connections busy) is posted as drawn on
             * the next turn, so a seed gives the same contacts however fast the target. */
            if (!drawn) {
                lg_traffic_contact(r.traffic, r.st.sent, next, &r.body, &ch);
                drawn = 1;
            }
            lg_sign(r.o.api_secret, r.body.p, r.body.len, sig, sizeof(sig));
            sb_fmt(url, sizeof(url), "%s/v1/contacts", r.o.ingest);
            s->r = &r;
            s->at = lg_now();
            if (lg_http_post(r.http, url, r.body.p, r.body.len, headers, on_contact, s) != 0) {
                free(s); /* all connections busy: this arrival goes out on the next turn */
                break;
            }
            drawn = 0;
            r.st.sent++;
            r.st.per_channel[ch]++;
            next = lg_traffic_next_arrival(r.traffic, next);
        }
        if (end_sending < 0 && (r.st.sent >= r.o.count || now >= r.o.duration_s) &&
            lg_http_inflight(r.http) == 0)
            end_sending = now;
        if (end_sending >= 0 &&
            (r.agents == NULL ||
             (lg_agents_open(r.agents) == 0 && r.st.assigned >= r.st.accepted) ||
             now >= end_sending + r.o.drain_s))
            break;
        if (r.agents != NULL)
            lg_agents_poll(r.agents, lg_now());
        lg_http_poll(r.http, 2);
        if (r.o.progress && floor(now * 4) != last_drawn) {
            last_drawn = floor(now * 4);
            progress(&r, now, 0);
        }
    }
    now = lg_now() - t0;
    if (r.agents != NULL) { /* log the agents out, so nothing is offered to them later */
        lg_agents_logout(r.agents);
        for (int i = 0; i < 2000 && (lg_agents_pending(r.agents) > 0 || lg_http_inflight(r.http));
             i++) {
            lg_agents_poll(r.agents, lg_now());
            lg_http_poll(r.http, 5);
        }
    }
    lg_http_destroy(r.http);
    if (r.o.progress)
        progress(&r, now, 1);
    print_summary(&r, end_sending > 0 ? end_sending : now, stdout);
    if (r.o.summary_path != NULL && (f = fopen(r.o.summary_path, "w")) != NULL) {
        print_summary(&r, end_sending > 0 ? end_sending : now, f);
        fclose(f);
    }
    lg_agents_destroy(r.agents);
    lg_traffic_destroy(r.traffic);
    lg_lat_free(&r.st.accept_lat);
    lg_lat_free(&r.st.assign_lat);
    free(r.body.p);
    return r.st.failed > 0 && r.st.accepted == 0 ? 1 : 0;
}
