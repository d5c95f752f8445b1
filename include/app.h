/*
 * app.h - the process-wide state shared by every worker thread.
 *
 * Built once by main() before the workers start and torn down after they
 * stop; every member is either immutable while serving or thread-safe.
 */
#ifndef REPOD_APP_H
#define REPOD_APP_H

#include <stdatomic.h>

#include "auth.h"
#include "catalog.h"
#include "conf.h"
#include "resource.h"
#include "store.h"

struct fetcher;
struct remote_models;

typedef struct {
    repod_conf *conf;                       /* owned */
    store *st;                              /* owned */
    catalog *cat;                           /* owned */
    auth_store *auth;                       /* owned */
    struct fetcher *fetcher;                /* owned: the upstream engine (fetcher.h) */
    struct remote_models *models;           /* owned: read models of the mirrored catalogs
                                             * (remote_models.h); NULL = the store alone */
    struct remote_models *dashboard_models; /* owned: the same for dashboard templates */
    atomic_int ready;                       /* 1 while serving, 0 while starting or stopping */
    /* counters for /metrics */
    atomic_ullong requests_total;
    atomic_ullong requests_by_class[6]; /* index = status / 100 */
    atomic_ullong connections_total;
    atomic_ullong cache_answers[3]; /* answers with X-Cache HIT, MISS, STALE */
    atomic_llong connections_open;
} app;

/* The read models of res's mirrored catalogs (borrowed; NULL = none). */
static inline struct remote_models *app_models(const app *a, const resource_desc *res)
{
    return res == &resource_dashboard ? a->dashboard_models : a->models;
}

#endif
