/*
 * federation_item.c - the get of one mirrored record of any resource
 * (plugins, dashboard templates): federation.h's federation_find_item, with
 * the cache verdicts of federation.c.
 *
 * The repositories are searched by precedence, from the in-memory records
 * (remote_records.h; repository_id narrows the same snapshot).  In each, the
 * record comes from the repository's read model (remote_models.h) when the
 * catalog, or the record's own fetch when more recent (the model keeps those
 * times), is fresh, or stale and servable: the model's document is handed
 * over undecoded, and nothing is read from the store.  Otherwise the
 * negative cache is read and the upstream's <route>/get is asked (MISS),
 * falling back to the cached copy within stale_if_error_s.  A fresh catalog
 * without the record is authoritative; so is a fresh negative answer.
 */
#include <stdlib.h>
#include <string.h>

#include "federation-internal.h"
#include "federation.h"
#include "remote.h"
#include "remote_models.h"
#include "remote_records.h"
#include "util.h"

/* One cached or fetched copy of the record: the model's document, or a
 * view (from the store or the upstream); both owned. */
typedef struct {
    readmodel_doc *ready;
    json_t *view;
} item_copy;

/* What the cache of one repository holds for the record. */
typedef struct {
    int have_cat; /* a synced catalog, of cat_at */
    int64_t cat_at;
    int own; /* fetched on its own at own_at */
    int64_t own_at;
} item_times;

typedef struct {
    api_call *call;
    const resource_desc *res;
    federation_item_fn done;
    void *ud;
    char id[256];
    char *only_repo;      /* NULL = every repository */
    remote_records *snap; /* the records, held for the search */
    const json_t *recs;   /* remote records to search, in order (snap's) */
    size_t idx;           /* the one being searched */
    item_copy found;      /* the answer */
    item_copy stale;      /* a stale copy kept while the upstream is asked */
    int64_t seen_at_ms;   /* when the current repository's cache was read */
    rd_status err_rc;
    rd_error err; /* the last upstream failure, reported when nothing is found */
} item_state;

static void item_step(item_state *s);

static void copy_drop(item_copy *c)
{
    if (c->ready != NULL)
        readmodel_doc_release(c->ready);
    json_decref(c->view);
    c->ready = NULL;
    c->view = NULL;
}

static int copy_held(const item_copy *c)
{
    return c->ready != NULL || c->view != NULL;
}

static const json_t *current_rec(const item_state *s)
{
    return json_array_get(s->recs, s->idx);
}

static const char *current_id(const item_state *s)
{
    return json_string_value(json_object_get(current_rec(s), "repository_id"));
}

/* Calls back with s->found (rc RD_OK) or the error, and frees s. */
static void item_end(item_state *s, rd_status rc, const rd_error *err)
{
    federation_found f = {current_rec(s), s->found.ready, s->found.view};
    rd_error e = {RD_OK, ""};
    if (err != NULL)
        e = *err;
    s->done(s->call, s->ud, rc == RD_OK ? &f : NULL, rc, &e);
    s->found.ready = f.ready; /* what the callback did not take */
    s->found.view = f.value;
    copy_drop(&s->found);
    copy_drop(&s->stale);
    remote_records_release(s->snap);
    free(s->only_repo);
    free(s);
}

static void item_fetched(const fetch_result *res, void *arg)
{
    item_state *s = arg;
    rd_error e;
    if (res->rc == RD_OK && res->value != NULL) {
        federation_note_cache(s->call, "MISS");
        copy_drop(&s->stale);
        s->found.view = remote_item_view(s->res, res->value, current_rec(s));
        if (s->found.view == NULL)
            item_end(s, rd_fail(&e, RD_ERR_INTERNAL, "out of memory"), &e);
        else
            item_end(s, RD_OK, NULL);
        return;
    }
    if (res->rc != RD_ERR_NOT_FOUND) {
        s->err_rc = res->rc;
        s->err = res->err;
        if (copy_held(&s->stale)) { /* the stale copy rather than nothing */
            federation_note_cache(s->call, "STALE");
            s->found = s->stale;
            memset(&s->stale, 0, sizeof(s->stale));
            item_end(s, RD_OK, NULL);
            return;
        }
    }
    copy_drop(&s->stale);
    s->idx++;
    item_step(s);
}

static void fetch_item(item_state *s)
{
    fetch_job job;
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = s->seen_at_ms;
    job.kind = FETCH_PLUGIN;
    job.res = s->res;
    job.repository_id = current_id(s);
    job.plugin_id = s->id;
    fetcher_submit(s->call->app->fetcher, &job, s->call->edge.base, item_fetched, s);
}

/* What repository rec (s->idx) holds of s->id: 1 with *c its copy (the read
 * model's document; from the store only when the repository has no model
 * or the model lacks it) and *t its times; 0 when not cached (*t still
 * tells the catalog). */
static int read_cache(item_state *s, const json_t *rec, item_copy *c, item_times *t)
{
    app *a = s->call->app;
    const char *id = current_id(s);
    remote_tier *tier = NULL;
    json_t *cached = NULL;
    rd_error e2;

    memset(c, 0, sizeof(*c));
    memset(t, 0, sizeof(*t));
    /* the model is current with the records and the catalog stamp */
    if (remote_models_tier(app_models(a, s->res), a->st, rec, &tier, &e2) == RD_OK) {
        t->have_cat = remote_tier_synced(tier, &t->cat_at);
        c->ready = readmodel_get(remote_tier_model(tier), "", s->id);
        if (c->ready != NULL)
            t->own = remote_tier_own_fetched_at(tier, s->id, &t->own_at);
    } else {
        t->have_cat = remote_res_catalog_age(s->res, a->st, id, &t->cat_at, &e2) == RD_OK;
    }
    remote_tier_release(tier);
    if (c->ready != NULL)
        return 1;
    if (remote_item_get(s->res, a->st, id, s->id, &cached, &e2) != RD_OK)
        return 0;
    c->view = remote_item_view(s->res, cached, rec);
    json_decref(cached);
    if (c->view == NULL)
        return 0;
    t->own = remote_item_fetched_at(s->res, a->st, id, s->id, &t->own_at, &e2) == RD_OK;
    return 1;
}

/* A cached copy c (taken) in repository rec: 1 when the state went on
 * (answered, or asking the upstream), 0 to search the next repository. */
static int use_cached(item_state *s, const json_t *rec, item_copy *c, const item_times *t)
{
    app *a = s->call->app;
    const char *id = current_id(s);
    int64_t at = t->cat_at;
    int refresh = 0;
    verdict v = federation_judge(a, rec, t->have_cat, at, &refresh);
    fetch_kind refresh_kind = FETCH_CATALOG;

    /* fetched on its own more recently than the catalog: that age counts */
    if (t->own && (!t->have_cat || t->own_at > t->cat_at)) {
        at = t->own_at;
        v = federation_judge(a, rec, 1, at, &refresh);
        refresh_kind = FETCH_PLUGIN;
    }
    if (v == USE_FRESH || v == USE_STALE) {
        federation_note_cache(s->call, v == USE_FRESH ? "HIT" : "STALE");
        if (refresh)
            federation_refresh(a, s->res, refresh_kind, id,
                               refresh_kind == FETCH_PLUGIN ? s->id : NULL);
        s->found = *c;
        item_end(s, RD_OK, NULL);
        return 1;
    }
    if (v == MUST_FETCH) {
        if (federation_stale_usable(a, rec, 1, at))
            s->stale = *c;
        else
            copy_drop(c);
        fetch_item(s);
        return 1;
    }
    copy_drop(c); /* expired and offline */
    s->err_rc = rd_fail(&s->err, RD_ERR_UPSTREAM_UNAVAILABLE,
                        "Upstream unavailable. (repository_id = %s, reason = offline and the "
                        "cached copy is too old)",
                        id);
    return 0;
}

/* Not cached in repository rec: 1 when the upstream is asked, 0 to search
 * the next repository. */
static int ask_upstream(item_state *s, const json_t *rec, const item_times *t)
{
    app *a = s->call->app;
    const char *id = current_id(s);
    int64_t neg_at = 0;
    int refresh = 0;
    rd_error e2;
    conf_cache cs;

    if (t->have_cat && federation_judge(a, rec, 1, t->cat_at, &refresh) == USE_FRESH)
        return 0; /* a fresh catalog is authoritative: not in this repository */
    remote_cache_settings(rec, &a->conf->remote_defaults, &cs);
    if (remote_item_negative_get(s->res, a->st, id, s->id, &neg_at, &e2) == RD_OK &&
        util_now_ms() - neg_at < cs.negative_ttl_s * 1000)
        return 0;
    if (fetcher_is_offline(a->fetcher, id)) {
        s->err_rc = rd_fail(&s->err, RD_ERR_UPSTREAM_UNAVAILABLE,
                            "Upstream unavailable. (repository_id = %s, reason = offline)", id);
        return 0;
    }
    fetch_item(s);
    return 1;
}

/* Searches repository s->idx and onwards; ends the state when done. */
static void item_step(item_state *s)
{
    rd_error err;
    for (; s->idx < json_array_size(s->recs); s->idx++) {
        const json_t *rec = current_rec(s);
        item_copy c;
        item_times t;
        if (s->only_repo != NULL && strcmp(current_id(s), s->only_repo) != 0)
            continue;
        s->seen_at_ms = util_now_ms(); /* before the cache is read */
        if (read_cache(s, rec, &c, &t) ? use_cached(s, rec, &c, &t) : ask_upstream(s, rec, &t))
            return;
    }
    if (s->err_rc == RD_OK)
        s->err_rc = rd_fail(&s->err, RD_ERR_NOT_FOUND, "Value not found. (%s = %s)",
                            s->res->id_field, s->id);
    err = s->err;
    item_end(s, s->err_rc, &err);
}

rd_status federation_find_item(api_call *call, const resource_desc *res, const char *id,
                               const char *repository_id, federation_item_fn done, void *ud,
                               rd_error *err)
{
    item_state *s = calloc(1, sizeof(*s));
    rd_status rc = s != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (rc == RD_OK && repository_id != NULL && (s->only_repo = strdup(repository_id)) == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (rc == RD_OK) /* the in-memory records: no store read */
        rc = remote_records_get(call->app->st, &s->snap, err);
    if (rc != RD_OK) {
        if (s != NULL)
            free(s->only_repo);
        free(s);
        return rc;
    }
    s->call = call;
    s->res = res;
    s->done = done;
    s->ud = ud;
    s->recs = remote_records_array(s->snap);
    snprintf(s->id, sizeof(s->id), "%s", id);
    item_step(s);
    return RD_PENDING;
}

void federation_get_finish(api_call *call, const resource_desc *res, federation_found *found,
                           rd_status rc, const rd_error *err)
{
    query_schema schema = resource_query_schema(res);
    const json_t *only = json_object_get(call->body, "only");
    json_t *doc = NULL;
    rd_error e = {RD_OK, ""};

    if (rc == RD_OK && found->ready != NULL && (only == NULL || json_is_null(only))) {
        call->ready = found->ready; /* the ready bytes are the answer: nothing decoded */
        found->ready = NULL;
    } else if (rc == RD_OK) { /* a projection, on a tree of its own */
        doc = found->ready != NULL ? readmodel_doc_decode(found->ready) : found->value;
        if (doc == found->value)
            found->value = NULL;
        rc = doc != NULL ? api_project_only(only, &schema, &doc, &e)
                         : rd_fail(&e, RD_ERR_INTERNAL, "out of memory");
        err = &e;
        if (rc != RD_OK) {
            json_decref(doc);
            doc = NULL;
        }
    }
    api_call_finish(call, rc, doc, err);
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
