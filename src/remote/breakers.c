/*
 * breakers.c - the circuit breakers of the remote repositories: failures
 * in a row, back-off and the time of the next probe, per repository.
 */
#include "breakers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define BREAKER_THRESHOLD 3
#define BACKOFF_FIRST_MS  1000
#define BACKOFF_MAX_MS    60000
#define JITTER_PERCENT    20 /* a delay is shortened by up to this, at random */

typedef struct {
    char repository_id[BREAKERS_ID_MAX];
    int failures;
    int64_t backoff_ms;
    int64_t next_probe_ms;
} breaker;

struct breakers {
    pthread_mutex_t lock;
    breaker *items;
    size_t n, cap;
};

breakers *breakers_new(void)
{
    breakers *bs = calloc(1, sizeof(*bs));
    if (bs != NULL)
        pthread_mutex_init(&bs->lock, NULL);
    return bs;
}

void breakers_free(breakers *bs)
{
    if (bs == NULL)
        return;
    pthread_mutex_destroy(&bs->lock);
    free(bs->items);
    free(bs);
}

/* delay_ms shortened by up to JITTER_PERCENT at random, so mirrors that
 * lost the same upstream do not probe it in step. */
static int64_t jittered(int64_t delay_ms)
{
    uint32_t r = 0;
    if (util_random_bytes(&r, sizeof(r)) != 0)
        return delay_ms;
    return delay_ms - (int64_t)(r % (uint32_t)(delay_ms * JITTER_PERCENT / 100 + 1));
}

/* Under bs->lock. */
static breaker *find(breakers *bs, const char *repository_id, int create)
{
    breaker *b;
    for (size_t i = 0; i < bs->n; i++)
        if (strcmp(bs->items[i].repository_id, repository_id) == 0)
            return &bs->items[i];
    if (!create)
        return NULL;
    if (bs->n == bs->cap) {
        size_t ncap = bs->cap ? bs->cap * 2 : 8;
        breaker *nb = realloc(bs->items, ncap * sizeof(*nb));
        if (nb == NULL)
            return NULL;
        bs->items = nb;
        bs->cap = ncap;
    }
    b = &bs->items[bs->n++];
    memset(b, 0, sizeof(*b));
    snprintf(b->repository_id, sizeof(b->repository_id), "%s", repository_id);
    return b;
}

int breakers_is_offline(breakers *bs, const char *repository_id)
{
    int offline = 0;
    breaker *b;
    pthread_mutex_lock(&bs->lock);
    b = find(bs, repository_id, 0);
    if (b != NULL && b->failures >= BREAKER_THRESHOLD && util_now_ms() < b->next_probe_ms)
        offline = 1;
    pthread_mutex_unlock(&bs->lock);
    return offline;
}

int breakers_admit(breakers *bs, const char *repository_id, int force, int64_t *wait_ms)
{
    int ok = 1;
    int64_t now = util_now_ms();
    breaker *b;
    pthread_mutex_lock(&bs->lock);
    b = find(bs, repository_id, 0);
    if (b != NULL && b->failures >= BREAKER_THRESHOLD) {
        if (now < b->next_probe_ms && !force) {
            ok = 0;
            *wait_ms = b->next_probe_ms - now;
        } else {
            b->next_probe_ms = now + jittered(b->backoff_ms); /* this request is the probe */
        }
    }
    pthread_mutex_unlock(&bs->lock);
    return ok;
}

const char *breakers_record(breakers *bs, const char *repository_id, int success)
{
    const char *state = "ok";
    breaker *b;
    pthread_mutex_lock(&bs->lock);
    b = find(bs, repository_id, 1);
    if (b != NULL) {
        if (success) {
            if (b->failures >= BREAKER_THRESHOLD)
                LOG_INFO("upstream of %s is back", repository_id);
            b->failures = 0;
            b->backoff_ms = 0;
            b->next_probe_ms = 0;
        } else {
            b->failures++;
            if (b->failures == BREAKER_THRESHOLD) {
                b->backoff_ms = BACKOFF_FIRST_MS;
                LOG_WARN("upstream of %s is offline after %d failures", repository_id, b->failures);
            } else if (b->failures > BREAKER_THRESHOLD) {
                b->backoff_ms =
                    b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
            }
            /* the timed probe after this failure */
            b->next_probe_ms =
                util_now_ms() +
                jittered(b->failures >= BREAKER_THRESHOLD ? b->backoff_ms : BACKOFF_FIRST_MS);
            state = b->failures >= BREAKER_THRESHOLD ? "offline" : "degraded";
        }
    }
    pthread_mutex_unlock(&bs->lock);
    return state;
}

void breakers_restore(breakers *bs, const char *repository_id, const char *state)
{
    int offline = strcmp(state, "offline") == 0;
    breaker *b;
    if (!offline && strcmp(state, "degraded") != 0)
        return;
    pthread_mutex_lock(&bs->lock);
    b = find(bs, repository_id, 1);
    if (b != NULL) {
        b->failures = offline ? BREAKER_THRESHOLD : 1;
        b->backoff_ms = offline ? BACKOFF_FIRST_MS : 0;
        b->next_probe_ms = util_now_ms() + jittered(BACKOFF_FIRST_MS);
    }
    pthread_mutex_unlock(&bs->lock);
}

size_t breakers_take_due(breakers *bs, char (*due)[BREAKERS_ID_MAX], size_t max)
{
    int64_t now = util_now_ms();
    size_t n = 0;
    pthread_mutex_lock(&bs->lock);
    for (size_t i = 0; i < bs->n && n < max; i++) {
        breaker *b = &bs->items[i];
        if (b->failures == 0 || now < b->next_probe_ms)
            continue;
        /* until this probe answers (bounded by timeout_ms); a later tick
         * that finds it still in flight joins it */
        b->next_probe_ms = now + (b->backoff_ms > 0 ? b->backoff_ms : BACKOFF_FIRST_MS);
        snprintf(due[n++], BREAKERS_ID_MAX, "%s", b->repository_id);
    }
    pthread_mutex_unlock(&bs->lock);
    return n;
}

void breakers_drop(breakers *bs, const char *repository_id)
{
    breaker *b;
    pthread_mutex_lock(&bs->lock);
    b = find(bs, repository_id, 0);
    if (b != NULL)
        *b = bs->items[--bs->n];
    pthread_mutex_unlock(&bs->lock);
}
