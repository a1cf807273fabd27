/* Names, targets and event identity of the SLA core; see sla.h. */
#include "sla.h"

#include "sb/err.h"
#include "sb/util.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const KINDS[SB_SLA_KINDS] = {
    "first_response",
    "resolution",
    "claim",
    "first_touch",
    "order_anomaly_contact",
    "return_review",
    "complex_complaint",
    "after_sale_first_response",
    "public_negative",
    "incident_report",
    "callback",
    "csat_survey",
};
static const char *const BANDS[] = {NULL, "P1", "P2", "P3", "P4"};
static const char *const CHANNELS[] = {NULL,     "chat",   "email", "phone",
                                       "wechat", "social", "web",   "api"};
static const char *const PERIODS[] = {NULL, "promotion_peak", "outage"};
static const char *const LEVELS[] = {"agent", "lead", "supervisor"};
static const char *const REASONS[] = {"breached",      "p1_immediate", "complaint",
                                      "claim_timeout", "legal_pr",     "public_negative"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *name_of(const char *const *names, int n, int v)
{
    return v >= 0 && v < n ? names[v] : NULL;
}

static int parse_in(const char *const *names, int from, int n, const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = from; i < n; i++)
        if (names[i] != NULL && strcmp(names[i], s) == 0)
            return i;
    return -1;
}

const char *sb_sla_kind_name(int kind)
{
    return name_of(KINDS, COUNT(KINDS), kind);
}

int sb_sla_kind_parse(const char *s)
{
    return parse_in(KINDS, 0, SB_SLA_CLOCK_KINDS, s);
}

const char *sb_sla_band_name(int band)
{
    return name_of(BANDS, COUNT(BANDS), band);
}

int sb_sla_band_parse(const char *s)
{
    return parse_in(BANDS, 1, COUNT(BANDS), s);
}

const char *sb_sla_channel_name(int ch)
{
    return name_of(CHANNELS, COUNT(CHANNELS), ch);
}

int sb_sla_channel_parse(const char *s)
{
    return parse_in(CHANNELS, 1, COUNT(CHANNELS), s);
}

const char *sb_sla_period_name(int period)
{
    return name_of(PERIODS, COUNT(PERIODS), period);
}

int sb_sla_period_parse(const char *s)
{
    return parse_in(PERIODS, 1, COUNT(PERIODS), s);
}

const char *sb_sla_level_name(int level)
{
    return name_of(LEVELS, COUNT(LEVELS), level);
}

int sb_sla_level_parse(const char *s)
{
    return parse_in(LEVELS, 0, COUNT(LEVELS), s);
}

const char *sb_sla_reason_name(int reason)
{
    return name_of(REASONS, COUNT(REASONS), reason);
}

bool sb_sla_ticket_id_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n + 1 >= SB_SLA_TICKET_MAX)
            return false;
    }
    return n > 0;
}

/* Targets are capped at 400 days (the policy loader's limit). */
#define TARGET_MAX_MS (400LL * 86400 * 1000)

int sb_sla_target_check(const struct sb_sla_target *t)
{
    if (t == NULL || (t->target_ms > 0) == (t->working_days > 0) || t->target_ms < 0 ||
        t->target_ms > TARGET_MAX_MS || t->working_days < 0 || t->working_days > 366 ||
        t->n_warn < 0 || t->n_warn > SB_SLA_MAX_WARN || t->notify_at_start < SB_LEVEL_AGENT ||
        t->notify_at_start > SB_LEVEL_SUPERVISOR || t->period < SB_PERIOD_NONE ||
        t->period > SB_PERIOD_OUTAGE)
        return SB_E_INVAL;
    for (int i = 0; i < t->n_warn; i++) {
        if (t->warn_bp[i] < 1 || t->warn_bp[i] > 9999 ||
            (i > 0 && t->warn_bp[i] <= t->warn_bp[i - 1]))
            return SB_E_INVAL;
    }
    return 0;
}

struct sb_sla_event *sb_sla_events_push(struct sb_sla_events *ev)
{
    if (ev->n == ev->cap) {
        ev->cap = ev->cap != 0 ? ev->cap * 2 : 64;
        ev->v = sb_realloc(ev->v, ev->cap * sizeof(*ev->v));
    }
    memset(&ev->v[ev->n], 0, sizeof(ev->v[0]));
    return &ev->v[ev->n++];
}

void sb_sla_events_clear(struct sb_sla_events *ev)
{
    ev->n = 0;
}

void sb_sla_events_free(struct sb_sla_events *ev)
{
    free(ev->v);
    ev->v = NULL;
    ev->n = ev->cap = 0;
}

const char *sb_sla_event_type_name(enum sb_sla_event_type type)
{
    switch (type) {
    case SB_SLA_EV_STARTED:
        return "sla.started";
    case SB_SLA_EV_PAUSED:
    case SB_SLA_EV_RESUMED:
        return "sla.paused";
    case SB_SLA_EV_WARNING:
        return "sla.warning";
    case SB_SLA_EV_BREACHED:
        return "sla.breached";
    case SB_SLA_EV_ESCALATED:
        return "sla.escalated";
    case SB_SLA_EV_FOLLOWUP:
        return "followup.due";
    }
    return "unknown";
}

int sb_sla_event_id_input(const struct sb_sla_event *ev, char *out, size_t out_size)
{
    char tag[32];
    const char *kind = sb_sla_kind_name(ev->kind);

    switch (ev->type) {
    case SB_SLA_EV_STARTED:
        sb_strlcpy(tag,
                   ev->restart    ? "restarted"
                   : ev->retarget ? "retargeted"
                                  : "started",
                   sizeof(tag));
        break;
    case SB_SLA_EV_PAUSED:
        sb_strlcpy(tag, "paused", sizeof(tag));
        break;
    case SB_SLA_EV_RESUMED:
        sb_strlcpy(tag, "resumed", sizeof(tag));
        break;
    case SB_SLA_EV_WARNING:
        sb_fmt(tag, sizeof(tag), "warning-%u", (unsigned)ev->fraction_bp);
        break;
    case SB_SLA_EV_BREACHED:
        sb_strlcpy(tag, "breached", sizeof(tag));
        break;
    case SB_SLA_EV_ESCALATED:
        sb_fmt(tag, sizeof(tag), "escalated-%s", sb_sla_level_name(ev->level));
        break;
    case SB_SLA_EV_FOLLOWUP:
        sb_strlcpy(tag, "followup", sizeof(tag));
        break;
    default:
        sb_strlcpy(tag, "unknown", sizeof(tag));
        break;
    }
    return sb_fmt(out, out_size, "%s:%s/%s/%" PRId64 "/%" PRId64, ev->ticket_id,
                  kind != NULL ? kind : "unknown", tag, ev->due_ms, ev->target_at_ms);
}

void sb_sla_event_uuid(const struct sb_sla_event *ev, char out[37])
{
    char input[SB_SLA_ID_INPUT_MAX], hex[65];
    unsigned char b[16];
    uint64_t ms = ev->due_ms < 0 ? 0 : (uint64_t)ev->due_ms & 0xffffffffffffULL;

    /* 63 + 1 + 25 + 1 + 20 + 1 + 20 + 1 + 20 bytes at most: it always fits. */
    int rc = sb_sla_event_id_input(ev, input, sizeof(input));
    assert(rc == 0);
    (void)rc;
    sb_sha256_join_hex("sb.sla.v1", '|', input, hex);
    for (int i = 0; i < 16; i++) {
        int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    static const char X[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = X[b[i] >> 4];
        *p++ = X[b[i] & 15];
    }
    *p = '\0';
}
