/*
 * metrics.c - the Prometheus text of /metrics: HTTP answers by status
 * class, connections, upstream requests, cache answers, registry lookups
 * by outcome, readiness.
 */
#include "metrics.h"

#include <stdatomic.h>

#include "fetcher.h"
#include "registry.h"

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
    return rc < 0 ? -1 : 0;
}
