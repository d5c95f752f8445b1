/*
 * federation_item.c - one mirrored record of a resource other than plugins
 * (dashboard templates): the get of federation.h's federation_find_item,
 * with the cache verdicts of federation.c.
 *
 * The repositories are searched by precedence.  In each, the record comes
 * from the repository's read model when the catalog (or the record's own
 * fetch, when more recent) is fresh, or stale and servable; else the
 * upstream's <route>/get is asked (MISS), falling back to the cached copy
 * within stale_if_error_s.  A fresh catalog without the record is
 * authoritative; so is a fresh negative answer.
 */
#include <stdlib.h>
#include <string.h>

#include "federation-internal.h"
#include "federation.h"
#include "remote.h"
#include "remote_records.h"
#include "remote_models.h"
#include "util.h"

typedef struct {
    api_call *call;
    const resource_desc *res;
    federation_item_fn done;
    void *ud;
    char id[256];
    json_t *recs;  /* remote records to search, in order */
    size_t idx;    /* the one being searched */
    json_t *stale; /* a stale copy kept while the upstream is asked */
    rd_status err_rc;
    rd_error err; /* the last upstream failure, reported when nothing is found */
} item_state;

static void item_step(item_state *s);

static void item_end(item_state *s, json_t *value, rd_status rc, const rd_error *err)
{
    s->done(s->call, s->ud, value, rc, err);
    json_decref(value);
    json_decref(s->recs);
    json_decref(s->stale);
    free(s);
}

static const json_t *current_rec(const item_state *s)
{
    return json_array_get(s->recs, s->idx);
}

static const char *current_id(const item_state *s)
{
    return json_string_value(json_object_get(current_rec(s), "repository_id"));
}

static void item_fetched(const fetch_result *res, void *arg)
{
    item_state *s = arg;
    json_t *stale = s->stale;
    s->stale = NULL;
    if (res->rc == RD_OK && res->value != NULL) {
        federation_note_cache(s->call, "MISS");
        json_decref(stale);
        item_end(s, remote_item_view(s->res, res->value, current_rec(s)), RD_OK, NULL);
        return;
    }
    if (res->rc != RD_ERR_NOT_FOUND) {
        s->err_rc = res->rc;
        s->err = res->err;
        if (stale != NULL) { /* serve the stale copy rather than nothing */
            federation_note_cache(s->call, "STALE");
            item_end(s, stale, RD_OK, NULL);
            return;
        }
    }
    json_decref(stale);
    s->idx++;
    item_step(s);
}

static void fetch_item(item_state *s, int64_t seen_at_ms)
{
    fetch_job job;
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = seen_at_ms;
    job.kind = FETCH_PLUGIN;
    job.res = s->res;
    job.repository_id = current_id(s);
    job.plugin_id = s->id;
    fetcher_submit(s->call->app->fetcher, &job, s->call->edge.base, item_fetched, s);
}

/* The cached view of s->id in repository rec from tier (may be NULL), else
 * from the store; NULL when not cached. */
static json_t *cached_view(item_state *s, const json_t *rec, remote_tier *tier)
{
    json_t *cached = NULL, *view = NULL;
    rd_error e2;
    readmodel_doc *d = tier != NULL ? readmodel_get(remote_tier_model(tier), "", s->id) : NULL;
    if (d != NULL) {
        view = readmodel_doc_decode(d);
        readmodel_doc_release(d);
        return view;
    }
    if (remote_item_get(s->res, s->call->app->st, current_id(s), s->id, &cached, &e2) == RD_OK)
        view = remote_item_view(s->res, cached, rec);
    json_decref(cached);
    return view;
}

/* What to do with a cached copy (view, owned) in repository s->idx: 1 when
 * the state went on (answered or fetching), 0 to search the next one. */
static int use_cached(item_state *s, json_t *view, int have_cat, int64_t cat_at, int64_t seen_at)
{
    app *a = s->call->app;
    const json_t *rec = current_rec(s);
    const char *id = current_id(s);
    int64_t own_at = 0;
    int refresh = 0;
    rd_error e2;
    verdict v = federation_judge(a, rec, have_cat, cat_at, &refresh);
    fetch_kind refresh_kind = FETCH_CATALOG;

    /* fetched on its own more recently than the catalog: that age counts */
    if (remote_item_fetched_at(s->res, a->st, id, s->id, &own_at, &e2) == RD_OK &&
        (!have_cat || own_at > cat_at)) {
        cat_at = own_at;
        v = federation_judge(a, rec, 1, own_at, &refresh);
        refresh_kind = FETCH_PLUGIN;
    }
    if (v == USE_FRESH || v == USE_STALE) {
        federation_note_cache(s->call, v == USE_FRESH ? "HIT" : "STALE");
        if (refresh)
            federation_refresh(a, s->res, refresh_kind, id,
                               refresh_kind == FETCH_PLUGIN ? s->id : NULL);
        item_end(s, view, RD_OK, NULL);
        return 1;
    }
    if (v == MUST_FETCH) {
        if (federation_stale_usable(a, rec, 1, cat_at))
            s->stale = view;
        else
            json_decref(view);
        fetch_item(s, seen_at);
        return 1;
    }
    json_decref(view); /* expired and offline */
    s->err_rc = rd_fail(&s->err, RD_ERR_UPSTREAM_UNAVAILABLE,
                        "Upstream unavailable. (repository_id = %s, reason = offline and the "
                        "cached copy is too old)",
                        id);
    return 0;
}

/* Searches repository s->idx and onwards; ends the state when done. */
static void item_step(item_state *s)
{
    app *a = s->call->app;
    for (; s->idx < json_array_size(s->recs); s->idx++) {
        const json_t *rec = current_rec(s);
        const char *id = current_id(s);
        int64_t seen_at = util_now_ms(); /* before the cache is read */
        int64_t cat_at = 0, neg_at = 0;
        remote_tier *tier = NULL;
        json_t *view;
        rd_error e2;
        int refresh = 0, have_cat;
        conf_cache cs;

        if (remote_models_tier(app_models(a, s->res), a->st, rec, &tier, &e2) == RD_OK)
            have_cat = remote_tier_synced(tier, &cat_at);
        else
            have_cat = remote_res_catalog_age(s->res, a->st, id, &cat_at, &e2) == RD_OK;
        view = cached_view(s, rec, tier);
        remote_tier_release(tier);
        if (view != NULL) {
            if (use_cached(s, view, have_cat, cat_at, seen_at))
                return;
            continue;
        }
        if (have_cat && federation_judge(a, rec, 1, cat_at, &refresh) == USE_FRESH)
            continue; /* a fresh catalog is authoritative: not in this repository */
        remote_cache_settings(rec, &a->conf->remote_defaults, &cs);
        if (remote_item_negative_get(s->res, a->st, id, s->id, &neg_at, &e2) == RD_OK &&
            util_now_ms() - neg_at < cs.negative_ttl_s * 1000)
            continue;
        if (fetcher_is_offline(a->fetcher, id)) {
            s->err_rc = rd_fail(&s->err, RD_ERR_UPSTREAM_UNAVAILABLE,
                                "Upstream unavailable. (repository_id = %s, reason = offline)", id);
            continue;
        }
        fetch_item(s, seen_at);
        return;
    }
    if (s->err_rc != RD_OK) {
        rd_error err = s->err;
        item_end(s, NULL, s->err_rc, &err);
    } else {
        rd_error err;
        rd_fail(&err, RD_ERR_NOT_FOUND, "Value not found. (%s = %s)", s->res->id_field, s->id);
        item_end(s, NULL, RD_ERR_NOT_FOUND, &err);
    }
}

/* The remote records to search (new array): all by precedence, or only
 * repository_id. */
static rd_status search_list(app *a, const char *repository_id, json_t **out, rd_error *err)
{
    remote_records *snap = NULL;
    json_t *only = NULL;
    const json_t *rec;
    size_t i;
    rd_status rc = remote_records_get(a->st, &snap, err);
    if (rc != RD_OK)
        goto done;
    only = json_array();
    if (only == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    json_array_foreach(remote_records_array(snap), i, rec)
    {
        if (repository_id == NULL ||
            strcmp(json_string_value(json_object_get(rec, "repository_id")), repository_id) == 0)
            json_array_append(only, (json_t *)rec); /* shared read-only */
    }
done:
    if (snap != NULL)
        remote_records_release(snap);
    *out = only;
    return rc;
}

rd_status federation_find_item(api_call *call, const resource_desc *res, const char *id,
                               const char *repository_id, federation_item_fn done, void *ud,
                               rd_error *err)
{
    item_state *s = NULL;
    json_t *recs = NULL;
    rd_status rc = search_list(call->app, repository_id, &recs, err);
    if (rc != RD_OK)
        goto done;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    s->call = call;
    s->res = res;
    s->done = done;
    s->ud = ud;
    s->recs = recs;
    recs = NULL;
    snprintf(s->id, sizeof(s->id), "%s", id);
    item_step(s);
    rc = RD_PENDING;
done:
    json_decref(recs);
    return rc;
}

rd_status federation_find_cached_item(app *a, const resource_desc *res, const char *id,
                                      json_t **record, rd_error *err)
{
    remote_records *snap = NULL;
    const json_t *rec;
    size_t i;
    rd_status rc = remote_records_get(a->st, &snap, err);
    if (rc != RD_OK)
        return rc;
    rc = RD_ERR_NOT_FOUND;
    json_array_foreach(remote_records_array(snap), i, rec)
    {
        json_t *cached = NULL;
        rd_error e2;
        const char *rid = json_string_value(json_object_get(rec, "repository_id"));
        if (remote_item_get(res, a->st, rid, id, &cached, &e2) == RD_OK) {
            json_decref(cached);
            *record = json_deep_copy(rec); /* the snapshot's records stay shared */
            rc = *record != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            break;
        }
    }
    remote_records_release(snap);
    return rc;
}
