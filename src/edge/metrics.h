/*
 * metrics.h - the Prometheus text of /metrics (edge-internal; used by
 * server.c).  Reads the counters the other layers keep (app, fetcher,
 * registry client); owns none of them.
 */
#ifndef REPOD_EDGE_METRICS_H
#define REPOD_EDGE_METRICS_H

#include <event2/buffer.h>

#include "app.h"

/* Appends every metric family to out (text format 0.0.4).  Returns 0, or
 * -1 when out of memory (out then holds a prefix). */
int edge_metrics_render(app *a, struct evbuffer *out);

#endif
