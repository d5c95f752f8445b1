/*
 * obs.h - counters and latency histograms that lower layers bump and the
 * edge renders on /metrics (src/edge/metrics.c).
 *
 * Everything here is process-wide and thread-safe.  Bumping a counter is a
 * few relaxed atomic adds; finding the row of a labelled series (a
 * repository, a registry host) takes a short mutex held for a string
 * compare over a small table, never across I/O.  Label sets are bounded:
 * a table holds at most OBS_ROWS_MAX rows, later labels share the row
 * "other".
 */
#ifndef REPOD_OBS_H
#define REPOD_OBS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Histogram bucket upper bounds in seconds (le), fixed: 1 ms .. 10 s. */
#define OBS_BUCKETS 12
extern const double obs_bucket_le[OBS_BUCKETS];

typedef struct {
    atomic_ullong n[OBS_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    atomic_ullong sum_us;
} obs_hist;

/* A consistent-looking copy: cum[] cumulative, count == cum[OBS_BUCKETS]. */
typedef struct {
    unsigned long long cum[OBS_BUCKETS + 1];
    unsigned long long count;
    double sum_s;
} obs_hist_snap;

/* Records one duration of us microseconds (negative counts as 0). */
void obs_hist_observe(obs_hist *h, int64_t us);
void obs_hist_snapshot(obs_hist *h, obs_hist_snap *out);

/* Adds the counts and sum of part to into (shards of one series). */
void obs_hist_add(obs_hist_snap *into, const obs_hist_snap *part);

#define OBS_ROWS_MAX  64
#define OBS_LABEL_MAX 128

/* Upstream (remote repository) request outcomes. */
typedef enum {
    OBS_UP_OK = 0,
    OBS_UP_NOT_FOUND,
    OBS_UP_TIMEOUT,
    OBS_UP_UNAVAILABLE,
    OBS_UP_BAD_RESPONSE,
    OBS_UP_ERROR,
    OBS_UP_RESULT_COUNT
} obs_up_result;

const char *obs_up_result_name(obs_up_result r);

/* The result of an upstream request that ended with rc. */
obs_up_result obs_up_result_of(rd_status rc);

/* One upstream HTTP request to repository_id (NULL: not counted) ended
 * with result after us microseconds. */
void obs_upstream_observe(const char *repository_id, obs_up_result r, int64_t us);

typedef struct {
    char label[OBS_LABEL_MAX];
    obs_hist_snap h[OBS_UP_RESULT_COUNT];
} obs_upstream_row;

/* Copies up to max rows into rows (caller's array); returns how many. */
size_t obs_upstream_snapshot(obs_upstream_row *rows, size_t max);

/* Registry lookups by host and result. */
typedef enum {
    OBS_REG_OK = 0,
    OBS_REG_NOT_FOUND,
    OBS_REG_ERROR,
    OBS_REG_REFUSED,
    OBS_REG_RESULT_COUNT
} obs_reg_result;

const char *obs_reg_result_name(obs_reg_result r);

/* One registry lookup ended; host is an allow-listed host[:port], or NULL
 * for a host outside the allow-list (counted under "other"). */
void obs_registry_count(const char *host, obs_reg_result r);

/* The result of a registry lookup that ended with rc. */
obs_reg_result obs_reg_result_of(rd_status rc);

typedef struct {
    char label[OBS_LABEL_MAX];
    unsigned long long n[OBS_REG_RESULT_COUNT];
} obs_registry_row;

size_t obs_registry_snapshot(obs_registry_row *rows, size_t max);

#endif
