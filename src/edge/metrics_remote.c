/*
 * metrics_remote.c - the /metrics families of what lies behind the API:
 * upstream requests and the health of each remote repository, registry
 * lookups by host, the store's size and write-ahead-log syncs.
 *
 * Runs on the scraping worker: it reads the store (records and upstream
 * status of the remotes, RocksDB properties) and snapshots of the obs.h
 * counters; no lock is held while doing so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "remote.h"
#include "util.h"

/* The upstream request histogram and the errors counter (results other
 * than ok and not_found) by repository and result. */
static int render_upstream_requests(struct evbuffer *out)
{
    static const char hist[] = "repod_upstream_request_duration_seconds";
    obs_upstream_row *rows = calloc(OBS_ROWS_MAX + 1, sizeof(*rows));
    size_t n = rows != NULL ? obs_upstream_snapshot(rows, OBS_ROWS_MAX + 1) : 0;
    char repo[2 * OBS_LABEL_MAX], labels[3 * OBS_LABEL_MAX];
    int rc = rows != NULL ? 0 : -1;

    if (rc == 0)
        rc = metrics_head(out, hist, "histogram",
                          "Requests to upstream repositories (one per page), by repository and "
                          "result.");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        metrics_escape(rows[i].label, repo, sizeof(repo));
        for (int r = 0; rc == 0 && r < OBS_UP_RESULT_COUNT; r++) {
            if (rows[i].h[r].count == 0)
                continue;
            snprintf(labels, sizeof(labels), "repository=\"%s\",result=\"%s\"", repo,
                     obs_up_result_name((obs_up_result)r));
            rc = metrics_hist(out, hist, labels, &rows[i].h[r]);
        }
    }
    if (rc == 0)
        rc = metrics_head(out, "repod_upstream_errors_total", "counter",
                          "Upstream requests that failed (timeout, unavailable, bad_response, "
                          "error), by repository and result.");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        metrics_escape(rows[i].label, repo, sizeof(repo));
        for (int r = OBS_UP_TIMEOUT; rc == 0 && r < OBS_UP_RESULT_COUNT; r++)
            rc = evbuffer_add_printf(out,
                                     "repod_upstream_errors_total{repository=\"%s\",result=\"%s\"}"
                                     " %llu\n",
                                     repo, obs_up_result_name((obs_up_result)r),
                                     rows[i].h[r].count) < 0
                     ? -1
                     : 0;
    }
    free(rows);
    return rc;
}

/* 0 closed (ok or never contacted), 1 degraded (failing, still asked),
 * 2 open (offline: asked only by timed probes). */
static int breaker_value(const json_t *status)
{
    const char *state = json_string_value(json_object_get(status, "state"));
    if (state != NULL && strcmp(state, "offline") == 0)
        return 2;
    if (state != NULL && strcmp(state, "degraded") == 0)
        return 1;
    return 0;
}

typedef struct {
    const char *id; /* borrowed from the record list */
    int breaker;
    int synced;
    int64_t synced_ms;
    long long cached;
} repo_health;

/* The health of each remote repository, read once per scrape. */
static repo_health *read_health(app *a, const json_t *list, size_t *n)
{
    repo_health *rows = calloc(json_array_size(list) + 1, sizeof(*rows));
    rd_error err;
    size_t i;
    json_t *rec;
    *n = 0;
    if (rows == NULL)
        return NULL;
    json_array_foreach(list, i, rec)
    {
        repo_health *h = &rows[*n];
        json_t *status = NULL;
        h->id = json_string_value(json_object_get(rec, "repository_id"));
        if (h->id == NULL)
            continue;
        if (remote_status_get(a->st, h->id, &status, &err) != RD_OK)
            status = NULL;
        h->breaker = breaker_value(status);
        h->cached = (long long)json_integer_value(json_object_get(status, "cached_plugins"));
        h->synced = remote_catalog_age(a->st, h->id, &h->synced_ms, &err) == RD_OK;
        json_decref(status);
        (*n)++;
    }
    return rows;
}

/* The per-repository gauges, one block of samples per family. */
static int render_repositories(app *a, struct evbuffer *out)
{
    static const char *const names[4] = {
        "repod_upstream_breaker_state", "repod_upstream_last_sync_timestamp_seconds",
        "repod_upstream_cached_plugins", "repod_upstream_staleness_seconds"};
    static const char *const helps[4] = {
        "Circuit breaker of a remote repository: 0 closed, 1 degraded (failing, still asked), "
        "2 open (offline, asked only by probes).",
        "Unix time of the last successful catalog sync of a remote repository.",
        "Plugins in the mirrored catalog of a remote repository (as of its last sync).",
        "Seconds since the last successful catalog sync of a remote repository (+Inf when "
        "never synced)."};
    json_t *list = NULL;
    repo_health *rows;
    size_t n = 0;
    rd_error err;
    int rc = 0;
    int64_t now = util_now_ms();

    if (remote_list(a->st, &list, &err) != RD_OK)
        list = json_array();
    rows = read_health(a, list, &n);
    if (rows == NULL)
        rc = -1;
    for (int f = 0; rc == 0 && f < 4; f++) {
        rc = metrics_head(out, names[f], "gauge", helps[f]);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const repo_health *h = &rows[i];
            char repo[2 * OBS_LABEL_MAX], value[32];
            if (f == 0)
                snprintf(value, sizeof(value), "%d", h->breaker);
            else if (f == 1 && h->synced)
                snprintf(value, sizeof(value), "%.3f", (double)h->synced_ms / 1000.0);
            else if (f == 2)
                snprintf(value, sizeof(value), "%lld", h->cached);
            else if (f == 3 && h->synced)
                snprintf(value, sizeof(value), "%.3f",
                         (double)(now > h->synced_ms ? now - h->synced_ms : 0) / 1000.0);
            else if (f == 3)
                snprintf(value, sizeof(value), "+Inf");
            else
                value[0] = '\0'; /* never synced: no sample */
            if (value[0] != '\0')
                rc = evbuffer_add_printf(out, "%s{repository=\"%s\"} %s\n", names[f],
                                         metrics_escape(h->id, repo, sizeof(repo)), value) < 0
                         ? -1
                         : 0;
        }
    }
    free(rows);
    json_decref(list);
    return rc;
}

static int render_registries(struct evbuffer *out)
{
    obs_registry_row *rows = calloc(OBS_ROWS_MAX + 1, sizeof(*rows));
    size_t n = rows != NULL ? obs_registry_snapshot(rows, OBS_ROWS_MAX + 1) : 0;
    char host[2 * OBS_LABEL_MAX];
    int rc = rows != NULL ? 0 : -1;
    if (rc == 0)
        rc = metrics_head(out, "repod_registry_lookups_total", "counter",
                          "Container-registry lookups by host (allow-listed hosts; others under "
                          "\"other\") and result.");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        metrics_escape(rows[i].label, host, sizeof(host));
        for (int r = 0; rc == 0 && r < OBS_REG_RESULT_COUNT; r++)
            rc = evbuffer_add_printf(out,
                                     "repod_registry_lookups_total{host=\"%s\",result=\"%s\"} "
                                     "%llu\n",
                                     host, obs_reg_result_name((obs_reg_result)r), rows[i].n[r]) < 0
                     ? -1
                     : 0;
    }
    free(rows);
    return rc;
}

static int render_store(app *a, struct evbuffer *out)
{
    uint64_t live = 0, sst = 0, mem = 0;
    store_size(a->st, &live, &sst, &mem);
    return evbuffer_add_printf(
               out,
               "# HELP repod_store_live_data_bytes Estimated live data in the store (RocksDB "
               "estimate-live-data-size, all column families).\n"
               "# TYPE repod_store_live_data_bytes gauge\n"
               "repod_store_live_data_bytes %llu\n"
               "# HELP repod_store_sst_files_bytes Bytes of the store's SST files (RocksDB "
               "total-sst-files-size, all column families).\n"
               "# TYPE repod_store_sst_files_bytes gauge\n"
               "repod_store_sst_files_bytes %llu\n"
               "# HELP repod_store_memtable_bytes Bytes written to the store and not yet flushed "
               "to SST files (RocksDB cur-size-all-mem-tables).\n"
               "# TYPE repod_store_memtable_bytes gauge\n"
               "repod_store_memtable_bytes %llu\n"
               "# HELP repod_store_wal_syncs_total Synced writes to the store (one write-ahead-log "
               "sync each).\n"
               "# TYPE repod_store_wal_syncs_total counter\n"
               "repod_store_wal_syncs_total %llu\n",
               (unsigned long long)live, (unsigned long long)sst, (unsigned long long)mem,
               store_wal_syncs(a->st)) < 0
               ? -1
               : 0;
}

int metrics_render_remote(app *a, struct evbuffer *out)
{
    int rc = render_upstream_requests(out);
    if (rc == 0)
        rc = render_repositories(a, out);
    if (rc == 0)
        rc = render_registries(out);
    if (rc == 0)
        rc = render_store(a, out);
    return rc;
}
