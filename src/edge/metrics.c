/*
 * metrics.c - the Prometheus text of /metrics: HTTP answers by status
 * class and their latency by route, connections, upstream requests, cache
 * answers, registry lookups by outcome, readiness; the helpers the other
 * metrics_*.c files share.
 */
#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "fetcher.h"
#include "registry.h"

#define ROUTES_MAX (EDGE_ROUTE_API + 64)
#define CLASSES    4 /* 2xx .. 5xx */
#define SHARDS     4 /* threads spread over these, so workers rarely share a line */

/* [shard][route][class - 2]; zero-initialised atomics (static storage),
 * summed over the shards when rendered. */
static obs_hist g_http[SHARDS][ROUTES_MAX][CLASSES];
static atomic_uint g_next_shard;
static _Thread_local int t_shard = -1;

int edge_metrics_api_route(const char *path)
{
    int i = api_route_index(path);
    return i >= 0 && EDGE_ROUTE_API + i < ROUTES_MAX ? EDGE_ROUTE_API + i : EDGE_ROUTE_UNKNOWN;
}

void edge_metrics_observe(int route, int status, int64_t us)
{
    int cls = status / 100;
    if (route < 0 || route >= ROUTES_MAX || cls < 2 || cls > 5)
        return;
    if (t_shard < 0)
        t_shard = (int)(atomic_fetch_add(&g_next_shard, 1) % SHARDS);
    obs_hist_observe(&g_http[t_shard][route][cls - 2], us);
}

/* ---- helpers -------------------------------------------------------------- */

int metrics_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0 ? -1
                                                                                                : 0;
}

const char *metrics_escape(const char *value, char *buf, size_t size)
{
    size_t o = 0;
    for (const char *p = value; *p != '\0' && o + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return buf;
}

int metrics_hist(struct evbuffer *out, const char *name, const char *labels, const obs_hist_snap *h)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    int rc = 0;
    for (size_t i = 0; rc >= 0 && i < OBS_BUCKETS; i++)
        rc = evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                 obs_bucket_le[i], h->cum[i]);
    if (rc >= 0)
        rc = evbuffer_add_printf(out,
                                 "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum{%s} %.6f\n"
                                 "%s_count{%s} %llu\n",
                                 name, labels, sep, h->cum[OBS_BUCKETS], name, labels, h->sum_s,
                                 name, labels, h->count);
    return rc < 0 ? -1 : 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

static void route_label(int route, char *buf, size_t size)
{
    const char *resource, *verb;
    if (route == EDGE_ROUTE_OPERATIONAL) {
        snprintf(buf, size, "operational");
    } else if (route == EDGE_ROUTE_CONSOLE) {
        snprintf(buf, size, "console");
    } else if (route >= EDGE_ROUTE_API && (size_t)(route - EDGE_ROUTE_API) < api_route_count()) {
        api_route_names((size_t)(route - EDGE_ROUTE_API), &resource, &verb);
        snprintf(buf, size, "%s/%s", resource, verb);
    } else {
        snprintf(buf, size, "unknown");
    }
}

/* Series that saw no request are left out. */
static int render_http(struct evbuffer *out)
{
    static const char name[] = "repod_http_request_duration_seconds";
    int rc = metrics_head(out, name, "histogram",
                          "Time from a request's arrival to its answer, by route and status "
                          "class.");
    for (int r = 0; rc == 0 && r < ROUTES_MAX; r++) {
        for (int c = 0; rc == 0 && c < CLASSES; c++) {
            obs_hist_snap h, part;
            char route[80], labels[128];
            memset(&h, 0, sizeof(h));
            for (int sh = 0; sh < SHARDS; sh++) {
                obs_hist_snapshot(&g_http[sh][r][c], &part);
                obs_hist_add(&h, &part);
            }
            if (h.count == 0)
                continue;
            route_label(r, route, sizeof(route));
            snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%dxx\"", route, c + 2);
            rc = metrics_hist(out, name, labels, &h);
        }
    }
    return rc;
}

int edge_metrics_render(app *a, struct evbuffer *out)
{
    int rc = evbuffer_add_printf(
        out,
        "# HELP repod_http_requests_total HTTP requests answered, by status class.\n"
        "# TYPE repod_http_requests_total counter\n"
        "repod_http_requests_total{class=\"2xx\"} %llu\n"
        "repod_http_requests_total{class=\"4xx\"} %llu\n"
        "repod_http_requests_total{class=\"5xx\"} %llu\n"
        "# HELP repod_connections_total TLS connections accepted.\n"
        "# TYPE repod_connections_total counter\n"
        "repod_connections_total %llu\n"
        "# HELP repod_connections_open TLS connections open now.\n"
        "# TYPE repod_connections_open gauge\n"
        "repod_connections_open %lld\n"
        "# HELP repod_upstream_requests_total Requests sent to upstream repositories.\n"
        "# TYPE repod_upstream_requests_total counter\n"
        "repod_upstream_requests_total %llu\n"
        "# HELP repod_cache_answers_total Answers that involved a remote tier or a registry, "
        "by X-Cache.\n"
        "# TYPE repod_cache_answers_total counter\n"
        "repod_cache_answers_total{result=\"HIT\"} %llu\n"
        "repod_cache_answers_total{result=\"MISS\"} %llu\n"
        "repod_cache_answers_total{result=\"STALE\"} %llu\n"
        "# HELP repod_ready 1 while the server is serving.\n"
        "# TYPE repod_ready gauge\n"
        "repod_ready %d\n"
        "# HELP repod_registry_requests_total Container-registry lookups "
        "(versions of local plugins), by outcome.\n"
        "# TYPE repod_registry_requests_total counter\n",
        (unsigned long long)atomic_load(&a->requests_by_class[2]),
        (unsigned long long)atomic_load(&a->requests_by_class[4]),
        (unsigned long long)atomic_load(&a->requests_by_class[5]),
        (unsigned long long)atomic_load(&a->connections_total),
        (long long)atomic_load(&a->connections_open),
        a->fetcher != NULL ? fetcher_requests_sent(a->fetcher) : 0ULL,
        (unsigned long long)atomic_load(&a->cache_answers[0]),
        (unsigned long long)atomic_load(&a->cache_answers[1]),
        (unsigned long long)atomic_load(&a->cache_answers[2]), atomic_load(&a->ready));
    for (int o = 0; rc >= 0 && o < REGISTRY_OUTCOME_COUNT; o++)
        rc = evbuffer_add_printf(out, "repod_registry_requests_total{outcome=\"%s\"} %llu\n",
                                 registry_outcome_name((registry_outcome)o),
                                 registry_outcome_count((registry_outcome)o));
    if (rc >= 0)
        rc = render_http(out);
    if (rc >= 0)
        rc = metrics_render_remote(a, out);
    if (rc >= 0)
        rc = metrics_render_process(out);
    return rc < 0 ? -1 : 0;
}
