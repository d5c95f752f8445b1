/*
 * federation.c - the cache verdicts of reads that involve remote
 * repositories, and the gathering of remote catalogs for lists and stat.
 *
 * For every remote repository a read needs, the cache decides first:
 *   fresh (younger than ttl_s)              -> served (X-Cache: HIT)
 *   stale and stale_while_revalidate, or
 *   stale and the upstream is offline       -> served (STALE), and a
 *                                              background refresh is queued
 *   absent, or stale without revalidation   -> the call waits for the
 *                                              upstream (MISS); if that fails,
 *                                              a copy younger than
 *                                              ttl_s + stale_if_error_s is
 *                                              served (STALE), else the
 *                                              repository is unavailable
 * Calls wait only through the fetcher (bounded by timeout_ms and the circuit
 * breaker), on the worker's own event loop.  What is served comes from each
 * repository's read model (remote_models.h).  The get of one record is
 * federation_item.c, version lists federation_versions.c.
 */
#include "federation.h"
#include "federation-internal.h"

#include <stdlib.h>
#include <string.h>

#include "fetcher.h"
#include "log.h"
#include "remote.h"
#include "remote_models.h"
#include "remote_records.h"
#include "util.h"

/* ---- cache verdicts ------------------------------------------------------- */

verdict federation_judge(app *a, const json_t *rec, int have, int64_t fetched_at, int *refresh)
{
    const char *id = json_string_value(json_object_get(rec, "repository_id"));
    conf_cache cs;
    remote_freshness fr;
    int offline = fetcher_is_offline(a->fetcher, id);
    *refresh = 0;
    remote_cache_settings(rec, &a->conf->remote_defaults, &cs);
    if (!have)
        return offline ? UNAVAILABLE : MUST_FETCH;
    fr = remote_freshness_of(&cs, fetched_at, util_now_ms());
    if (fr == REMOTE_FRESH)
        return USE_FRESH;
    if (offline)
        return fr == REMOTE_STALE ? USE_STALE : UNAVAILABLE;
    if (cs.stale_while_revalidate && fr == REMOTE_STALE) {
        *refresh = 1;
        return USE_STALE;
    }
    return MUST_FETCH;
}

int federation_stale_usable(app *a, const json_t *rec, int have, int64_t fetched_at)
{
    conf_cache cs;
    if (!have)
        return 0;
    remote_cache_settings(rec, &a->conf->remote_defaults, &cs);
    return remote_freshness_of(&cs, fetched_at, util_now_ms()) != REMOTE_EXPIRED;
}

void federation_refresh(app *a, const resource_desc *res, fetch_kind kind,
                        const char *repository_id, const char *id)
{
    fetch_job job;
    memset(&job, 0, sizeof(job));
    job.kind = kind;
    job.res = res;
    job.repository_id = repository_id;
    job.plugin_id = id;
    fetcher_submit(a->fetcher, &job, NULL, NULL, NULL);
}

void federation_note_cache(api_call *call, const char *what)
{
    static const char *const order[] = {"HIT", "MISS", "STALE"};
    int cur = -1, next = 0;
    for (int i = 0; i < 3; i++) {
        if (call->x_cache != NULL && strcmp(call->x_cache, order[i]) == 0)
            cur = i;
        if (strcmp(what, order[i]) == 0)
            next = i;
    }
    if (next > cur)
        call->x_cache = order[next];
}

/* Adds repository_id to the X-Partial list of a merged read. */
static void note_partial(api_call *call, const char *repository_id)
{
    size_t old = call->x_partial != NULL ? strlen(call->x_partial) : 0;
    char *grown = realloc(call->x_partial, old + strlen(repository_id) + 2);
    if (grown == NULL)
        return;
    snprintf(grown + old, strlen(repository_id) + 2, "%s%s", old > 0 ? "," : "", repository_id);
    call->x_partial = grown;
}

/* ---- gathering remote catalogs (list, stat) -------------------------------- */

typedef struct {
    json_t *rec;
    verdict v;
    int have;
    int64_t fetched_at;
    rd_status fetch_rc;
    rd_error fetch_err;
} gather_repo;

typedef struct {
    api_call *call;
    const resource_desc *res;
    federation_gather_fn done;
    void *ud;
    gather_repo *repos;
    size_t n;
    size_t pending;
    int restricted; /* one repository was asked for */
    int64_t seen_at_ms;
} gather_state;

static void gather_finish(gather_state *g)
{
    app *a = g->call->app;
    remote_tier **tiers = calloc(g->n ? g->n : 1, sizeof(*tiers));
    size_t ntiers = 0;
    rd_error err = {RD_OK, ""};
    rd_status rc = tiers != NULL ? RD_OK : rd_fail(&err, RD_ERR_INTERNAL, "out of memory");

    for (size_t i = 0; i < g->n && rc == RD_OK; i++) {
        gather_repo *r = &g->repos[i];
        const char *id = json_string_value(json_object_get(r->rec, "repository_id"));
        remote_tier *t = NULL;
        if (r->v == MUST_FETCH) {
            if (r->fetch_rc == RD_OK) {
                federation_note_cache(g->call, "MISS");
                r->v = USE_FRESH;
            } else if (federation_stale_usable(a, r->rec, r->have, r->fetched_at)) {
                federation_note_cache(g->call, "STALE");
                r->v = USE_STALE;
            } else {
                r->v = UNAVAILABLE;
            }
        } else if (r->v == USE_FRESH) {
            federation_note_cache(g->call, "HIT");
        } else if (r->v == USE_STALE) {
            federation_note_cache(g->call, "STALE");
        }
        if (r->v == UNAVAILABLE) {
            if (g->restricted) {
                if (r->fetch_rc != RD_OK && r->fetch_rc != RD_ERR_NOT_FOUND)
                    rc = rd_fail(&err, r->fetch_rc, "%s", r->fetch_err.message);
                else
                    rc = rd_fail(&err, RD_ERR_UPSTREAM_UNAVAILABLE,
                                 "Upstream unavailable. (repository_id = %s, reason = offline "
                                 "and nothing cached)",
                                 id);
            } else {
                LOG_WARN("list: repository %s is unavailable and left out", id);
                federation_note_cache(g->call, "MISS");
                note_partial(g->call, id);
            }
            continue;
        }
        rc = remote_models_tier(app_models(a, g->res), a->st, r->rec, &t, &err);
        if (rc == RD_OK && !remote_tier_synced(t, NULL))
            remote_tier_release(t); /* never synced: nothing to list */
        else if (rc == RD_OK)
            tiers[ntiers++] = t;
    }
    g->done(g->call, g->ud, rc == RD_OK ? tiers : NULL, rc == RD_OK ? ntiers : 0, rc, &err);
    for (size_t i = 0; i < ntiers; i++)
        remote_tier_release(tiers[i]);
    free(tiers);
    for (size_t i = 0; i < g->n; i++)
        json_decref(g->repos[i].rec);
    free(g->repos);
    free(g);
}

typedef struct {
    gather_state *g;
    size_t index;
} gather_ticket;

static void gather_ticket_done(const fetch_result *res, void *arg)
{
    gather_ticket *t = arg;
    gather_state *g = t->g;
    gather_repo *r = &g->repos[t->index];
    free(t);
    r->fetch_rc = res->rc;
    r->fetch_err = res->err;
    if (--g->pending == 0)
        gather_finish(g);
}

rd_status federation_gather(api_call *call, const resource_desc *res, const char *repository_id,
                            federation_gather_fn done, void *ud, rd_error *err)
{
    app *a = call->app;
    remote_records *snap = NULL;
    const json_t *recs;
    gather_state *g = NULL;
    size_t i, n;
    json_t *rec;
    rd_status rc = remote_records_get(a->st, &snap, err);

    if (rc != RD_OK)
        return rc;
    recs = remote_records_array(snap);
    remote_models_retain(app_models(a, res), recs); /* a deleted repository's tier goes */
    g = calloc(1, sizeof(*g));
    n = json_array_size(recs);
    if (g == NULL || (g->repos = calloc(n ? n : 1, sizeof(*g->repos))) == NULL) {
        free(g);
        remote_records_release(snap);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    g->call = call;
    g->res = res;
    g->seen_at_ms = util_now_ms();
    g->done = done;
    g->ud = ud;
    g->restricted = repository_id != NULL;
    json_array_foreach(recs, i, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "repository_id"));
        gather_repo *r;
        int refresh = 0;
        rd_error e2;
        if (repository_id != NULL && strcmp(repository_id, id) != 0)
            continue;
        r = &g->repos[g->n++];
        r->rec = json_incref(rec);
        r->have = remote_res_catalog_age(res, a->st, id, &r->fetched_at, &e2) == RD_OK;
        r->v = federation_judge(a, rec, r->have, r->fetched_at, &refresh);
        if (refresh)
            federation_refresh(a, res, FETCH_CATALOG, id, NULL);
    }
    remote_records_release(snap);
    /* One extra count held here, so the answer is built exactly once, after
     * the loop, even if no fetch is needed. */
    g->pending = 1;
    for (i = 0; i < g->n; i++) {
        gather_ticket *t;
        fetch_job job;
        if (g->repos[i].v != MUST_FETCH)
            continue;
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
            g->repos[i].fetch_rc =
                rd_fail(&g->repos[i].fetch_err, RD_ERR_INTERNAL, "out of memory");
            continue;
        }
        t->g = g;
        t->index = i;
        g->pending++;
        memset(&job, 0, sizeof(job));
        job.kind = FETCH_CATALOG;
        job.res = res;
        job.seen_at_ms = g->seen_at_ms;
        job.repository_id = json_string_value(json_object_get(g->repos[i].rec, "repository_id"));
        fetcher_submit(a->fetcher, &job, call->edge.base, gather_ticket_done, t);
    }
    if (--g->pending == 0)
        gather_finish(g);
    return RD_PENDING;
}
