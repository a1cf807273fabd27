/* Token buckets per source (see ratelimit.h). Open addressing over a fixed table;
 * a lookup probes a few slots and otherwise reuses the least recently seen one. */
#include "ratelimit.h"

#include "sb/util.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SOURCE_MAX 64
#define PROBES 8

struct bucket {
    char source[SOURCE_MAX];
    double tokens;
    int64_t last_ms;
};

struct sb_ratelimit {
    pthread_mutex_t lock;
    double rate, burst;
    size_t slots;
    struct bucket *table;
};

struct sb_ratelimit *sb_ratelimit_new(double rate, double burst, size_t slots)
{
    struct sb_ratelimit *rl = sb_calloc(1, sizeof(*rl));

    pthread_mutex_init(&rl->lock, NULL);
    rl->rate = rate > 0 ? rate : 1;
    rl->burst = burst >= 1 ? burst : 1;
    rl->slots = slots >= PROBES ? slots : PROBES;
    rl->table = sb_calloc(rl->slots, sizeof(struct bucket));
    return rl;
}

void sb_ratelimit_destroy(struct sb_ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->table);
    free(rl);
}

/* FNV-1a: spreads sources over the table. */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int sb_ratelimit_take(struct sb_ratelimit *rl, const char *source, int64_t now_ms)
{
    char key[SOURCE_MAX];
    struct bucket *b = NULL, *oldest = NULL;
    size_t start;
    int wait = 0;

    sb_strlcpy(key, source, sizeof(key));
    start = (size_t)(hash(key) % rl->slots);
    pthread_mutex_lock(&rl->lock);
    for (size_t i = 0; i < PROBES; i++) {
        struct bucket *c = &rl->table[(start + i) % rl->slots];
        if (strcmp(c->source, key) == 0) {
            b = c;
            break;
        }
        if (oldest == NULL || c->last_ms < oldest->last_ms)
            oldest = c;
    }
    if (b == NULL) {
        b = oldest;
        sb_strlcpy(b->source, key, sizeof(b->source));
        b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000.0;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (int)ceil((1.0 - b->tokens) / rl->rate);
    pthread_mutex_unlock(&rl->lock);
    return wait > 0 ? wait : 0;
}
