/* The baseline of the stage benchmarks: a consumer → producer that copies every
 * message of one topic to another with the same delivery rules as a real stage (the
 * common stage loop, batches made durable before their offsets are stored) and no
 * processing. Prints one JSON line: {"messages":…,"seconds":…,"per_second":…}, timed
 * from the first message handled to the last one made durable. */
#include "sb/kafka.h"
#include "sb/service.h"
#include "sb/stage.h"
#include "sb/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pass {
    struct sb_producer *producer;
    const char *out;
    int64_t first_us;
};

static enum sb_stage_result copy(void *ctx, const struct sb_event *ev,
                                 const rd_kafka_message_t *rkm, char *reason, size_t rsz)
{
    struct pass *p = ctx;
    (void)ev;
    (void)reason;
    (void)rsz;
    if (p->first_us == 0)
        p->first_us = sb_mono_us();
    if (sb_producer_send(p->producer, p->out, rkm->key, rkm->key_len, rkm->payload, rkm->len, NULL,
                         NULL) != 0)
        return SB_STAGE_RETRY;
    return SB_STAGE_PENDING;
}

static int flush(void *ctx)
{
    struct pass *p = ctx;
    return sb_producer_wait_all(p->producer, 30000) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("SB_KAFKA_BROKERS"), *in = NULL, *group = "sb-passthrough";
    long count = 0;
    int c;
    struct pass p = {0};
    static const struct option opts[] = {
        {"in", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},
        {"group", required_argument, 0, 'g'},
        {"count", required_argument, 0, 'n'},
        {0, 0, 0, 0},
    };
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'i')
            in = optarg;
        else if (c == 'o')
            p.out = optarg;
        else if (c == 'g')
            group = optarg;
        else if (c == 'n')
            count = atol(optarg);
        else
            return 2;
    }
    if (in == NULL || p.out == NULL || count <= 0) {
        fprintf(stderr, "usage: sb-passthrough --in TOPIC --out TOPIC --count N [--group G]\n");
        return 2;
    }
    struct sb_kafka_opts k = {brokers ? brokers : "127.0.0.1:19092", "sb-passthrough", NULL, NULL,
                              0};
    char err[512];
    sb_signals_install();
    p.producer = sb_producer_new(&k, err, sizeof(err));
    if (p.producer == NULL) {
        fprintf(stderr, "sb-passthrough: %s\n", err);
        return 1;
    }
    const char *topics[] = {in};
    struct sb_stage_opts so = {.name = "sb-passthrough",
                               .group = group,
                               .topics = topics,
                               .ntopics = 1,
                               .handle = copy,
                               .flush = flush,
                               .ctx = &p,
                               .batch_max = 500,
                               .batch_ms = 20};
    struct sb_stage *s = sb_stage_new(&k, &so, p.producer, NULL, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "sb-passthrough: %s\n", err);
        return 1;
    }
    sb_stage_run(s, count, 600000);
    double secs = (double)(sb_mono_us() - p.first_us) / 1e6;
    long n = sb_stage_handled(s);
    printf("{\"messages\":%ld,\"seconds\":%.3f,\"per_second\":%.1f}\n", n, secs,
           secs > 0 ? (double)n / secs : 0);
    sb_stage_destroy(s);
    sb_producer_destroy(p.producer, 10000);
    return n >= count ? 0 : 1;
}
