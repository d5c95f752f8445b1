/*
 * obs.c - process-wide counters and latency histograms for /metrics:
 * fixed-bucket histograms, upstream requests by repository and result,
 * registry lookups by host and result (see obs.h).
 */
#include "obs.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const double obs_bucket_le[OBS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1,   0.25,   0.5,   1,    2.5,   10};

void obs_hist_observe(obs_hist *h, int64_t us)
{
    size_t i = 0;
    if (us < 0)
        us = 0;
    while (i < OBS_BUCKETS && (double)us > obs_bucket_le[i] * 1e6)
        i++;
    atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)us, memory_order_relaxed);
}

void obs_hist_snapshot(obs_hist *h, obs_hist_snap *out)
{
    unsigned long long run = 0;
    for (size_t i = 0; i <= OBS_BUCKETS; i++) {
        run += atomic_load_explicit(&h->n[i], memory_order_relaxed);
        out->cum[i] = run;
    }
    out->count = run;
    out->sum_s = (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6;
}

void obs_hist_add(obs_hist_snap *into, const obs_hist_snap *part)
{
    for (size_t i = 0; i <= OBS_BUCKETS; i++)
        into->cum[i] += part->cum[i];
    into->count += part->count;
    into->sum_s += part->sum_s;
}

/* ---- labelled tables --------------------------------------------------- */

typedef struct {
    char label[OBS_LABEL_MAX];
    obs_hist h[OBS_UP_RESULT_COUNT];
} up_row;

typedef struct {
    char label[OBS_LABEL_MAX];
    atomic_ullong n[OBS_REG_RESULT_COUNT];
} reg_row;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static up_row g_up[OBS_ROWS_MAX + 1]; /* the last is "other" */
static size_t g_up_used;
static reg_row g_reg[OBS_ROWS_MAX + 1];
static size_t g_reg_used;

/* The index of label in a table of rows of size stride whose first member
 * is the label, adding it when there is room; else the "other" row. */
static size_t row_of(void *rows, size_t stride, size_t *used, const char *label)
{
    size_t i;
    pthread_mutex_lock(&g_lock);
    for (i = 0; i < *used; i++) {
        if (strcmp((const char *)rows + i * stride, label) == 0)
            goto done;
    }
    if (*used < OBS_ROWS_MAX && strlen(label) < OBS_LABEL_MAX && strcmp(label, "other") != 0) {
        snprintf((char *)rows + i * stride, OBS_LABEL_MAX, "%s", label);
        (*used)++;
        goto done;
    }
    i = OBS_ROWS_MAX;
    snprintf((char *)rows + i * stride, OBS_LABEL_MAX, "other");
done:
    pthread_mutex_unlock(&g_lock);
    return i;
}

static const char *const up_names[OBS_UP_RESULT_COUNT] = {"ok",          "not_found",    "timeout",
                                                          "unavailable", "bad_response", "error"};

const char *obs_up_result_name(obs_up_result r)
{
    return r < OBS_UP_RESULT_COUNT ? up_names[r] : "error";
}

obs_up_result obs_up_result_of(rd_status rc)
{
    switch (rc) {
    case RD_OK:
        return OBS_UP_OK;
    case RD_ERR_NOT_FOUND:
        return OBS_UP_NOT_FOUND;
    case RD_ERR_UPSTREAM_TIMEOUT:
        return OBS_UP_TIMEOUT;
    case RD_ERR_UPSTREAM_UNAVAILABLE:
        return OBS_UP_UNAVAILABLE;
    case RD_ERR_UPSTREAM_BAD_RESPONSE:
        return OBS_UP_BAD_RESPONSE;
    default:
        return OBS_UP_ERROR;
    }
}

void obs_upstream_observe(const char *repository_id, obs_up_result r, int64_t us)
{
    size_t i;
    if (repository_id == NULL || r >= OBS_UP_RESULT_COUNT)
        return;
    i = row_of(g_up, sizeof(g_up[0]), &g_up_used, repository_id);
    obs_hist_observe(&g_up[i].h[r], us);
}

/* How many rows are in use ("other" counts once it was used). */
static size_t rows_in_use(size_t used, const char *other_label)
{
    return used + (other_label[0] != '\0' ? 1 : 0);
}

size_t obs_upstream_snapshot(obs_upstream_row *rows, size_t max)
{
    size_t n = 0, total;
    pthread_mutex_lock(&g_lock); /* no I/O under it: copies only */
    total = rows_in_use(g_up_used, g_up[OBS_ROWS_MAX].label);
    for (size_t k = 0; k < total && n < max; k++) {
        up_row *src = &g_up[k < g_up_used ? k : OBS_ROWS_MAX];
        snprintf(rows[n].label, sizeof(rows[n].label), "%s", src->label);
        for (size_t r = 0; r < OBS_UP_RESULT_COUNT; r++)
            obs_hist_snapshot(&src->h[r], &rows[n].h[r]);
        n++;
    }
    pthread_mutex_unlock(&g_lock);
    return n;
}

static const char *const reg_names[OBS_REG_RESULT_COUNT] = {"ok", "not_found", "error", "refused"};

const char *obs_reg_result_name(obs_reg_result r)
{
    return r < OBS_REG_RESULT_COUNT ? reg_names[r] : "error";
}

obs_reg_result obs_reg_result_of(rd_status rc)
{
    switch (rc) {
    case RD_OK:
        return OBS_REG_OK;
    case RD_ERR_NO_IMAGE_IN_REGISTRY:
        return OBS_REG_NOT_FOUND;
    case RD_ERR_REGISTRY_UNAVAILABLE:
    case RD_ERR_REGISTRY_TIMEOUT:
    case RD_ERR_REGISTRY_BAD_RESPONSE:
    case RD_ERR_INTERNAL:
        return OBS_REG_ERROR;
    default:
        return OBS_REG_REFUSED; /* refused before any connection */
    }
}

void obs_registry_count(const char *host, obs_reg_result r)
{
    size_t i;
    if (r >= OBS_REG_RESULT_COUNT)
        return;
    i = row_of(g_reg, sizeof(g_reg[0]), &g_reg_used, host != NULL ? host : "other");
    atomic_fetch_add_explicit(&g_reg[i].n[r], 1, memory_order_relaxed);
}

size_t obs_registry_snapshot(obs_registry_row *rows, size_t max)
{
    size_t n = 0, total;
    pthread_mutex_lock(&g_lock); /* no I/O under it: copies only */
    total = rows_in_use(g_reg_used, g_reg[OBS_ROWS_MAX].label);
    for (size_t k = 0; k < total && n < max; k++) {
        reg_row *src = &g_reg[k < g_reg_used ? k : OBS_ROWS_MAX];
        snprintf(rows[n].label, sizeof(rows[n].label), "%s", src->label);
        for (size_t r = 0; r < OBS_REG_RESULT_COUNT; r++)
            rows[n].n[r] = atomic_load_explicit(&src->n[r], memory_order_relaxed);
        n++;
    }
    pthread_mutex_unlock(&g_lock);
    return n;
}
