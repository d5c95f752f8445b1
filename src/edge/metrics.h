/*
 * metrics.h - the Prometheus text of /metrics (edge-internal; used by
 * server.c).  Reads the counters the other layers keep (app, fetcher,
 * registry client, store, obs.h); owns only the HTTP latency histogram.
 *
 * Split by source: metrics.c (HTTP, connections, cache answers, the
 * helpers), metrics_remote.c (upstreams, registries, store),
 * metrics_process.c (/proc/self).
 */
#ifndef REPOD_EDGE_METRICS_H
#define REPOD_EDGE_METRICS_H

#include <event2/buffer.h>
#include <stdint.h>

#include "app.h"
#include "obs.h"

/* Route labels of repod_http_request_duration_seconds: the API routes
 * follow EDGE_ROUTE_API in the order of the route table (api.h). */
enum { EDGE_ROUTE_UNKNOWN = 0, EDGE_ROUTE_OPERATIONAL, EDGE_ROUTE_CONSOLE, EDGE_ROUTE_API };

/* The route label of an API path: EDGE_ROUTE_API + its row, or
 * EDGE_ROUTE_UNKNOWN. */
int edge_metrics_api_route(const char *path);

/* One answer with status on route took us microseconds (any thread). */
void edge_metrics_observe(int route, int status, int64_t us);

/* Appends every metric family to out (text format 0.0.4).  Returns 0, or
 * -1 when out of memory (out then holds a prefix). */
int edge_metrics_render(app *a, struct evbuffer *out);

/* ---- shared by the metrics_*.c files ---- */

/* "# HELP name help\n# TYPE name type\n"; 0 or -1. */
int metrics_head(struct evbuffer *out, const char *name, const char *type, const char *help);

/* value escaped as a label value (\\, \", \n) into buf; returns buf. */
const char *metrics_escape(const char *value, char *buf, size_t size);

/* The _bucket, _sum and _count samples of name with labels (already
 * escaped, "k=\"v\",..."; "" for none); 0 or -1. */
int metrics_hist(struct evbuffer *out, const char *name, const char *labels,
                 const obs_hist_snap *h);

int metrics_render_remote(app *a, struct evbuffer *out);
int metrics_render_process(struct evbuffer *out);

#endif
