/*
 * federation.c - reads that involve remote repositories.
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
 * repository's read model (remote_models.h); the verdicts use the store's
 * timestamps.
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

/* ---- plugin documents ------------------------------------------------------ */

json_t *federation_plugin_view(const json_t *cached, const json_t *repo_record)
{
    return remote_plugin_view(cached, repo_record);
}

/* ---- cache verdicts ------------------------------------------------------- */

static verdict judge(app *a, const json_t *rec, int have, int64_t fetched_at, int *refresh)
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

/* After a failed fetch: serve what is cached if it is still within
 * stale_if_error_s. */
static int stale_usable(app *a, const json_t *rec, int have, int64_t fetched_at)
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

static void refresh_in_background(app *a, fetch_kind kind, const char *repository_id,
                                  const char *plugin_id)
{
    federation_refresh(a, &resource_plugin, kind, repository_id, plugin_id);
}

/* Worst cache outcome so far for X-Cache: HIT < MISS < STALE. */
static void note_cache(api_call *call, const char *what)
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

verdict federation_judge(app *a, const json_t *rec, int have, int64_t fetched_at, int *refresh)
{
    return judge(a, rec, have, fetched_at, refresh);
}

int federation_stale_usable(app *a, const json_t *rec, int have, int64_t fetched_at)
{
    return stale_usable(a, rec, have, fetched_at);
}

void federation_note_cache(api_call *call, const char *what)
{
    note_cache(call, what);
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
                note_cache(g->call, "MISS");
                r->v = USE_FRESH;
            } else if (stale_usable(a, r->rec, r->have, r->fetched_at)) {
                note_cache(g->call, "STALE");
                r->v = USE_STALE;
            } else {
                r->v = UNAVAILABLE;
            }
        } else if (r->v == USE_FRESH) {
            note_cache(g->call, "HIT");
        } else if (r->v == USE_STALE) {
            note_cache(g->call, "STALE");
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
                note_cache(g->call, "MISS");
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
        r->v = judge(a, rec, r->have, r->fetched_at, &refresh);
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

/* ---- one plugin (get, get-versions) ---------------------------------------- */

typedef struct {
    api_call *call;
    federation_plugin_fn done;
    void *ud;
    char plugin_id[256];
    char *only_repo; /* NULL = every repository */
    int want_versions;
    remote_records *snap;       /* the records, held for the search */
    const json_t *recs;         /* remote records to search, in order (snap's) */
    size_t idx;                 /* the one being searched */
    json_t *doc;                /* the plugin found (view), when not from a model */
    json_t *stale;              /* a stale copy kept while its refresh is tried */
    readmodel_doc *doc_ready;   /* the plugin found, from a read model (no view) */
    readmodel_doc *stale_ready; /* stale's, from a read model */
    int64_t seen_at_ms;         /* when the current repository's cache was read */
    rd_status err_rc;
    rd_error err; /* the last upstream failure, reported when nothing is found */
} plugin_state;

static void plugin_step(plugin_state *p);
static void versions_step(plugin_state *p);

static void plugin_end(plugin_state *p, json_t *value, rd_status rc, const rd_error *err)
{
    p->done(p->call, p->ud, value, rc, err);
    json_decref(value);
    remote_records_release(p->snap);
    free(p->only_repo);
    json_decref(p->doc);
    json_decref(p->stale);
    if (p->doc_ready != NULL)
        readmodel_doc_release(p->doc_ready);
    if (p->stale_ready != NULL)
        readmodel_doc_release(p->stale_ready);
    free(p);
}

/* Drops the stale copy kept while a refresh was tried. */
static void drop_stale(plugin_state *p)
{
    json_decref(p->stale);
    p->stale = NULL;
    if (p->stale_ready != NULL)
        readmodel_doc_release(p->stale_ready);
    p->stale_ready = NULL;
}

static const json_t *current_rec(plugin_state *p)
{
    return json_array_get(p->recs, p->idx);
}

static const char *current_id(plugin_state *p)
{
    return json_string_value(json_object_get(current_rec(p), "repository_id"));
}

static void remember_failure(plugin_state *p, const fetch_result *res)
{
    p->err_rc = res->rc;
    p->err = res->err;
}

/* The plugin is p->doc or p->doc_ready, found in repository p->idx. */
static void plugin_found(plugin_state *p)
{
    if (p->want_versions) {
        versions_step(p);
        return;
    }
    json_t *doc = p->doc;
    p->doc = NULL;
    if (p->doc_ready != NULL) { /* the ready bytes are the answer: no view */
        p->call->ready = p->doc_ready;
        p->doc_ready = NULL;
    }
    plugin_end(p, doc, RD_OK, NULL);
}

static void plugin_fetched(const fetch_result *res, void *arg)
{
    plugin_state *p = arg;
    if (res->rc == RD_OK && res->value != NULL) {
        note_cache(p->call, "MISS");
        drop_stale(p);
        p->doc = federation_plugin_view(res->value, current_rec(p));
        plugin_found(p);
        return;
    }
    if (res->rc != RD_ERR_NOT_FOUND) {
        remember_failure(p, res);
        if (p->stale != NULL || p->stale_ready != NULL) { /* the stale copy rather than nothing */
            note_cache(p->call, "STALE");
            p->doc = p->stale;
            p->doc_ready = p->stale_ready;
            p->stale = NULL;
            p->stale_ready = NULL;
            plugin_found(p);
            return;
        }
    }
    drop_stale(p);
    p->idx++;
    plugin_step(p);
}

static void fetch_plugin(plugin_state *p)
{
    fetch_job job;
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = p->seen_at_ms;
    job.kind = FETCH_PLUGIN;
    job.repository_id = current_id(p);
    job.plugin_id = p->plugin_id;
    fetcher_submit(p->call->app->fetcher, &job, p->call->edge.base, plugin_fetched, p);
}

/* The cached copy of p->plugin_id in repository rec (tier: its read model,
 * NULL when it has none): from the model, *ready its document (new
 * reference, never decoded here: its bytes are the answer); otherwise
 * *view a new reference read from the store.  0 when not cached. */
static int cached_view(plugin_state *p, const json_t *rec, remote_tier *tier, json_t **view,
                       readmodel_doc **ready)
{
    json_t *cached = NULL;
    rd_error e2;
    readmodel_doc *d =
        tier != NULL ? readmodel_get(remote_tier_model(tier), "", p->plugin_id) : NULL;
    *ready = d;
    *view = NULL;
    if (d != NULL)
        return 1;
    if (remote_plugin_get(p->call->app->st, current_id(p), p->plugin_id, &cached, &e2) != RD_OK)
        return 0;
    *view = federation_plugin_view(cached, rec);
    json_decref(cached);
    return *view != NULL;
}

/* Searches repository p->idx and onwards; ends the state when done. */
static void plugin_step(plugin_state *p)
{
    app *a = p->call->app;
    for (; p->idx < json_array_size(p->recs); p->idx++) {
        const json_t *rec = current_rec(p);
        const char *id = current_id(p);
        json_t *view = NULL;
        readmodel_doc *ready = NULL;
        remote_tier *tier = NULL;
        int64_t cat_at = 0, neg_at = 0, own_at = 0;
        rd_error e2;
        int refresh = 0, have_cat, found, own = 0;
        verdict v;
        conf_cache cs;

        if (p->only_repo != NULL && strcmp(id, p->only_repo) != 0)
            continue;
        p->seen_at_ms = util_now_ms(); /* before the cache is read */
        /* the model is current with the catalog stamp (remote_models_tier) */
        if (remote_models_tier(a->models, a->st, rec, &tier, &e2) == RD_OK)
            have_cat = remote_tier_synced(tier, &cat_at);
        else
            have_cat = remote_catalog_age(a->st, id, &cat_at, &e2) == RD_OK;
        found = cached_view(p, rec, tier, &view, &ready);
        if (found && ready != NULL)
            own = remote_tier_own_fetched_at(tier, p->plugin_id, &own_at);
        else if (found)
            own = remote_plugin_fetched_at(a->st, id, p->plugin_id, &own_at, &e2) == RD_OK;
        remote_tier_release(tier);
        v = judge(a, rec, have_cat, cat_at, &refresh);
        if (found) {
            /* fetched on its own more recently than the catalog: that age counts */
            if (own && (!have_cat || own_at > cat_at)) {
                cat_at = own_at;
                v = judge(a, rec, 1, own_at, &refresh);
                if (refresh) {
                    refresh = 0;
                    refresh_in_background(a, FETCH_PLUGIN, id, p->plugin_id);
                }
            }
            if (v == USE_FRESH || v == USE_STALE) {
                note_cache(p->call, v == USE_FRESH ? "HIT" : "STALE");
                if (refresh)
                    refresh_in_background(a, FETCH_CATALOG, id, NULL);
                p->doc = view;
                p->doc_ready = ready;
                plugin_found(p);
                return;
            }
            if (v == MUST_FETCH && stale_usable(a, rec, 1, cat_at)) {
                p->stale = view;
                p->stale_ready = ready;
                fetch_plugin(p);
                return;
            }
            json_decref(view);
            if (ready != NULL)
                readmodel_doc_release(ready);
            if (v == MUST_FETCH) {
                fetch_plugin(p);
                return;
            }
            /* expired and offline */
            p->err_rc = rd_fail(&p->err, RD_ERR_UPSTREAM_UNAVAILABLE,
                                "Upstream unavailable. (repository_id = %s, reason = offline and "
                                "the cached copy is too old)",
                                id);
            continue;
        }
        if (have_cat && v == USE_FRESH)
            continue; /* a fresh catalog is authoritative: not in this repository */
        remote_cache_settings(rec, &a->conf->remote_defaults, &cs);
        if (remote_negative_get(a->st, id, p->plugin_id, &neg_at, &e2) == RD_OK &&
            util_now_ms() - neg_at < cs.negative_ttl_s * 1000)
            continue;
        if (fetcher_is_offline(a->fetcher, id)) {
            p->err_rc = rd_fail(&p->err, RD_ERR_UPSTREAM_UNAVAILABLE,
                                "Upstream unavailable. (repository_id = %s, reason = offline)", id);
            continue;
        }
        fetch_plugin(p);
        return;
    }
    if (p->err_rc != RD_OK) {
        rd_error err = p->err;
        plugin_end(p, NULL, p->err_rc, &err);
    } else {
        rd_error err;
        rd_fail(&err, RD_ERR_NO_PLUGIN, "Plugin not found. (plugin_id = %s)", p->plugin_id);
        plugin_end(p, NULL, RD_ERR_NO_PLUGIN, &err);
    }
}

/* ---- versions of a remote plugin ------------------------------------------- */

static json_t *versions_answer(json_t *list)
{
    return json_pack("{s:O, s:I, s:O}", "version", list, "total_count",
                     (json_int_t)json_array_size(list), "results", list);
}

static void versions_fetched(const fetch_result *res, void *arg)
{
    plugin_state *p = arg;
    if (res->rc == RD_OK && res->value != NULL) {
        note_cache(p->call, "MISS");
        json_decref(p->stale);
        p->stale = NULL;
        plugin_end(p, versions_answer(res->value), RD_OK, NULL);
        return;
    }
    if (p->stale != NULL) {
        json_t *list = p->stale;
        p->stale = NULL;
        note_cache(p->call, "STALE");
        plugin_end(p, versions_answer(list), RD_OK, NULL);
        json_decref(list);
        return;
    }
    if (res->rc == RD_ERR_NOT_FOUND) {
        rd_error err;
        rd_fail(&err, RD_ERR_NO_PLUGIN, "Plugin not found. (plugin_id = %s)", p->plugin_id);
        plugin_end(p, NULL, RD_ERR_NO_PLUGIN, &err);
        return;
    }
    plugin_end(p, NULL, res->rc, &res->err);
}

static void versions_step(plugin_state *p)
{
    app *a = p->call->app;
    const json_t *rec = current_rec(p);
    const char *id = current_id(p);
    json_t *list = NULL;
    int64_t at = 0;
    int refresh = 0;
    rd_error e2;
    int64_t seen_at = util_now_ms();
    int have = remote_versions_get(a->st, id, p->plugin_id, &list, &at, &e2) == RD_OK;
    verdict v = judge(a, rec, have, at, &refresh);
    fetch_job job;

    if (v == USE_FRESH || v == USE_STALE) {
        note_cache(p->call, v == USE_FRESH ? "HIT" : "STALE");
        if (refresh)
            refresh_in_background(a, FETCH_VERSIONS, id, p->plugin_id);
        plugin_end(p, versions_answer(list), RD_OK, NULL);
        json_decref(list);
        return;
    }
    if (v == UNAVAILABLE) {
        rd_error err;
        json_decref(list);
        rd_fail(&err, RD_ERR_UPSTREAM_UNAVAILABLE,
                "Upstream unavailable. (repository_id = %s, reason = offline and the versions "
                "are not cached)",
                id);
        plugin_end(p, NULL, err.code, &err);
        return;
    }
    json_decref(p->stale);
    p->stale = have && stale_usable(a, rec, 1, at) ? list : NULL;
    if (p->stale == NULL)
        json_decref(list);
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = seen_at;
    job.kind = FETCH_VERSIONS;
    job.repository_id = id;
    job.plugin_id = p->plugin_id;
    fetcher_submit(a->fetcher, &job, p->call->edge.base, versions_fetched, p);
}

rd_status federation_find_plugin(api_call *call, const char *plugin_id, const char *repository_id,
                                 int want_versions, federation_plugin_fn done, void *ud,
                                 rd_error *err)
{
    plugin_state *p = calloc(1, sizeof(*p));
    rd_status rc = p != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (rc == RD_OK && repository_id != NULL && (p->only_repo = strdup(repository_id)) == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (rc == RD_OK) /* the in-memory records: no store read */
        rc = remote_records_get(call->app->st, &p->snap, err);
    if (rc != RD_OK) {
        if (p != NULL)
            free(p->only_repo);
        free(p);
        return rc;
    }
    p->call = call;
    p->done = done;
    p->ud = ud;
    p->want_versions = want_versions;
    p->recs = remote_records_array(p->snap);
    snprintf(p->plugin_id, sizeof(p->plugin_id), "%s", plugin_id);
    plugin_step(p);
    return RD_PENDING;
}

rd_status federation_find_cached(app *a, const char *plugin_id, json_t **record, rd_error *err)
{
    return federation_find_cached_item(a, &resource_plugin, plugin_id, record, err);
}

/* ---- versions of a local plugin (its registry) ------------------------------ */

typedef struct {
    api_call *call;
    federation_plugin_fn done;
    void *ud;
    json_t *stale; /* a cached list still within stale_if_error_s */
} tags_state;

static void tags_end(tags_state *t, json_t *value, rd_status rc, const rd_error *err)
{
    t->done(t->call, t->ud, value, rc, err);
    json_decref(value);
    json_decref(t->stale);
    free(t);
}

static void tags_fetched(const fetch_result *res, void *arg)
{
    tags_state *t = arg;
    if (res->rc == RD_OK && res->value != NULL) {
        note_cache(t->call, "MISS");
        tags_end(t, versions_answer(res->value), RD_OK, NULL);
    } else if (t->stale != NULL && res->rc != RD_ERR_NO_IMAGE_IN_REGISTRY) {
        note_cache(t->call, "STALE");
        tags_end(t, versions_answer(t->stale), RD_OK, NULL);
    } else {
        tags_end(t, NULL, res->rc, &res->err);
    }
}

rd_status federation_local_versions(api_call *call, const json_t *record, federation_plugin_fn done,
                                    void *ud, rd_error *err)
{
    app *a = call->app;
    const char *domain_id = json_string_value(json_object_get(record, "domain_id"));
    const char *plugin_id = json_string_value(json_object_get(record, "plugin_id"));
    const conf_cache *cs = &a->conf->remote_defaults;
    json_t *list = NULL;
    int64_t at = 0;
    rd_error e2;
    tags_state *t;
    fetch_job job;
    remote_freshness fr = REMOTE_EXPIRED;

    int64_t seen_at = util_now_ms();
    if (remote_tags_get(a->st, domain_id, plugin_id, &list, &at, &e2) == RD_OK)
        fr = remote_freshness_of(cs, at, util_now_ms());
    if (fr == REMOTE_FRESH || (fr == REMOTE_STALE && cs->stale_while_revalidate)) {
        json_t *answer = versions_answer(list);
        note_cache(call, fr == REMOTE_FRESH ? "HIT" : "STALE");
        if (fr == REMOTE_STALE) {
            memset(&job, 0, sizeof(job));
            job.kind = FETCH_TAGS;
            job.domain_id = domain_id;
            job.plugin_id = plugin_id;
            job.plugin = record;
            fetcher_submit(a->fetcher, &job, NULL, NULL, NULL);
        }
        done(call, ud, answer, RD_OK, NULL);
        json_decref(answer);
        json_decref(list);
        return RD_PENDING;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        json_decref(list);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    t->call = call;
    t->done = done;
    t->ud = ud;
    t->stale = fr == REMOTE_STALE ? list : NULL;
    if (t->stale == NULL)
        json_decref(list);
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = seen_at;
    job.kind = FETCH_TAGS;
    job.domain_id = domain_id;
    job.plugin_id = plugin_id;
    job.plugin = record;
    fetcher_submit(a->fetcher, &job, call->edge.base, tags_fetched, t);
    return RD_PENDING;
}
