/*
 * remote_models.c - the read models of the remote repositories' mirrored
 * catalogs (include/remote_models.h): one immutable tier per repository,
 * swapped whole by a catalog sync, checked against the store's catalog
 * stamp and repository name when read.
 */
#include "remote_models.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "remote_records.h"
#include "util.h"

struct remote_tier {
    atomic_int refs;
    char *id;
    char *name; /* the repository name its views carry */
    int synced;
    int64_t fetched_at;
    readmodel *rm;
    /* the records generation (remote_records.h) at which the tier was last
     * known to match the store; 0 = never */
    _Atomic uint64_t checked_gen;
    pthread_mutex_t own_lock; /* guards own */
    json_t *own;              /* plugin_id -> fetched_at of plugins fetched on their own
                               * after the catalog (or all of them when never synced) */
};

struct remote_models {
    resource_desc res;     /* the resource, with no domain field */
    pthread_mutex_t lock;  /* guards tiers (short) */
    pthread_mutex_t write; /* serialises commits, puts and rebuilds */
    remote_tier **tiers;
    size_t n, cap;
};

/* ---- tiers ---------------------------------------------------------------- */

remote_tier *remote_tier_ref(remote_tier *t)
{
    if (t != NULL)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void remote_tier_release(remote_tier *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    readmodel_destroy(t->rm);
    json_decref(t->own);
    pthread_mutex_destroy(&t->own_lock);
    free(t->id);
    free(t->name);
    free(t);
}

readmodel *remote_tier_model(const remote_tier *t)
{
    return t->rm;
}

int remote_tier_synced(const remote_tier *t, int64_t *fetched_at_ms)
{
    if (t->synced && fetched_at_ms != NULL)
        *fetched_at_ms = t->fetched_at;
    return t->synced;
}

const char *remote_tier_id(const remote_tier *t)
{
    return t->id;
}

int remote_tier_own_fetched_at(remote_tier *t, const char *plugin_id, int64_t *fetched_at_ms)
{
    json_t *v;
    int found;
    pthread_mutex_lock(&t->own_lock);
    v = json_object_get(t->own, plugin_id);
    found = json_is_integer(v);
    if (found)
        *fetched_at_ms = (int64_t)json_integer_value(v);
    pthread_mutex_unlock(&t->own_lock);
    return found;
}

/* Notes that plugin_id was fetched on its own at fetched_at_ms. */
static void own_note(remote_tier *t, const char *plugin_id, int64_t fetched_at_ms)
{
    pthread_mutex_lock(&t->own_lock);
    if (json_object_set_new(t->own, plugin_id, json_integer((json_int_t)fetched_at_ms)) != 0)
        LOG_WARN("remote: read model of %s could not note when %s was fetched", t->id, plugin_id);
    pthread_mutex_unlock(&t->own_lock);
}

static const char *record_id(const json_t *record)
{
    const char *id = json_string_value(json_object_get(record, "repository_id"));
    return id != NULL ? id : "";
}

static const char *record_name(const json_t *record)
{
    const char *name = json_string_value(json_object_get(record, "name"));
    return name != NULL ? name : "";
}

/* A new tier of record with an empty model (NULL when out of memory). */
static remote_tier *tier_new(remote_models *m, const json_t *record, int synced, int64_t fetched_at)
{
    remote_tier *t = calloc(1, sizeof(*t));
    rd_error e;
    if (t == NULL)
        return NULL;
    atomic_init(&t->refs, 1);
    atomic_init(&t->checked_gen, 0);
    pthread_mutex_init(&t->own_lock, NULL);
    t->own = json_object();
    t->id = strdup(record_id(record));
    t->name = strdup(record_name(record));
    t->synced = synced;
    t->fetched_at = fetched_at;
    if (t->id == NULL || t->name == NULL || t->own == NULL ||
        readmodel_create(&m->res, &t->rm, &e) != RD_OK) {
        remote_tier_release(t);
        return NULL;
    }
    return t;
}

/* A new tier of record holding the views of plugins (an array of cached
 * plugin records, borrowed).  NULL when out of memory. */
static remote_tier *tier_build(remote_models *m, const json_t *record, const json_t *plugins,
                               int synced, int64_t fetched_at, rd_error *err)
{
    remote_tier *t = tier_new(m, record, synced, fetched_at);
    readmodel_builder *b = NULL;
    rd_status rc = RD_ERR_INTERNAL;
    size_t i;
    json_t *p;

    if (t == NULL || readmodel_build_begin(t->rm, &b, err) != RD_OK)
        goto done;
    json_array_foreach(plugins, i, p)
    {
        rc = readmodel_build_add_new(b, remote_item_view(&m->res, p, record), err);
        if (rc != RD_OK) {
            readmodel_build_abort(b);
            goto done;
        }
    }
    rc = readmodel_build_finish(b, err);
done:
    if (rc != RD_OK) {
        remote_tier_release(t);
        rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = out of memory)");
        return NULL;
    }
    return t;
}

/* ---- a tier built while a sync's pages arrive ------------------------------ */

struct remote_tier_builder {
    remote_models *m;
    json_t *record; /* a copy: the views' repository_info */
    remote_tier *t;
    readmodel_builder *b;
    int failed;
};

rd_status remote_models_build_begin(remote_models *m, const json_t *record,
                                    remote_tier_builder **out, rd_error *err)
{
    remote_tier_builder *tb = calloc(1, sizeof(*tb));
    *out = NULL;
    if (tb == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = out of memory)");
    tb->m = m;
    tb->record =
        json_pack("{s:s, s:s}", "repository_id", record_id(record), "name", record_name(record));
    tb->t = tb->record != NULL ? tier_new(m, record, 1, 0) : NULL;
    if (tb->t == NULL || readmodel_build_begin(tb->t->rm, &tb->b, err) != RD_OK) {
        remote_models_build_abort(tb);
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = out of memory)");
    }
    *out = tb;
    return RD_OK;
}

void remote_models_build_add(remote_tier_builder *tb, const json_t *cached)
{
    rd_error e;
    if (tb == NULL || tb->failed)
        return;
    if (readmodel_build_add_new(tb->b, remote_item_view(&tb->m->res, cached, tb->record), &e) !=
        RD_OK) {
        tb->failed = 1; /* the commit drops the tier: the next read rebuilds it */
        readmodel_build_abort(tb->b);
        tb->b = NULL;
    }
}

void remote_models_build_abort(remote_tier_builder *tb)
{
    if (tb == NULL)
        return;
    readmodel_build_abort(tb->b);
    remote_tier_release(tb->t);
    json_decref(tb->record);
    free(tb);
}

/* The tier tb built (a new reference; NULL when it could not be built);
 * frees tb. */
static remote_tier *build_finish(remote_tier_builder *tb, int64_t fetched_at, rd_error *err)
{
    remote_tier *t = NULL;
    if (!tb->failed && readmodel_build_finish(tb->b, err) == RD_OK) {
        t = tb->t;
        t->fetched_at = fetched_at;
        tb->t = NULL;
    } else if (!tb->failed) {
        tb->failed = 1;
    }
    tb->b = NULL; /* finish freed it */
    if (tb->failed)
        rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = out of memory)");
    remote_models_build_abort(tb);
    return t;
}

/* ---- the set ----------------------------------------------------------------- */

rd_status remote_models_create(const resource_desc *res, remote_models **out, rd_error *err)
{
    remote_models *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    m->res = *res;
    m->res.domain_field = NULL; /* one tier is one repository: domain "" */
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->write, NULL);
    *out = m;
    return RD_OK;
}

void remote_models_destroy(remote_models *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        remote_tier_release(m->tiers[i]);
    free(m->tiers);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->write);
    free(m);
}

/* Index of the tier of id, or m->n; call with m->lock held. */
static size_t find_locked(const remote_models *m, const char *id)
{
    size_t i;
    for (i = 0; i < m->n; i++)
        if (strcmp(m->tiers[i]->id, id) == 0)
            break;
    return i;
}

/* A new reference to the current tier of id, or NULL. */
static remote_tier *current(remote_models *m, const char *id)
{
    remote_tier *t = NULL;
    size_t i;
    pthread_mutex_lock(&m->lock);
    i = find_locked(m, id);
    if (i < m->n)
        t = remote_tier_ref(m->tiers[i]);
    pthread_mutex_unlock(&m->lock);
    return t;
}

/* Makes t (reference stolen) the current tier of its repository; NULL t
 * with id drops the repository's tier. */
static void install(remote_models *m, const char *id, remote_tier *t)
{
    remote_tier *old = NULL;
    size_t i;
    pthread_mutex_lock(&m->lock);
    i = find_locked(m, id);
    if (i < m->n) {
        old = m->tiers[i];
        if (t != NULL)
            m->tiers[i] = t;
        else
            m->tiers[i] = m->tiers[--m->n];
    } else if (t != NULL) {
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 8;
            remote_tier **grown = realloc(m->tiers, cap * sizeof(*grown));
            if (grown == NULL) {
                old = t; /* no room: the next read rebuilds it */
                t = NULL;
            } else {
                m->tiers = grown;
                m->cap = cap;
            }
        }
        if (t != NULL)
            m->tiers[m->n++] = t;
    }
    pthread_mutex_unlock(&m->lock);
    remote_tier_release(old);
}

/* Builds the tier of record from the store, as of records generation gen
 * (read before the store); call with m->write held. */
static rd_status reload_locked(remote_models *m, store *st, const json_t *record, uint64_t gen,
                               rd_error *err)
{
    const char *id = record_id(record);
    json_t *cached = json_array();
    int64_t at = 0;
    remote_tier *t = NULL;
    rd_status rc;

    if (cached == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    rc = remote_res_catalog_load(&m->res, st, id, cached, &at, err);
    if (rc == RD_OK || rc == RD_ERR_NOT_FOUND) {
        int synced = rc == RD_OK;
        t = tier_build(m, record, cached, synced, at, err);
        rc = t != NULL ? RD_OK : RD_ERR_INTERNAL;
        if (rc == RD_OK) /* only stamps younger than the catalog count */
            rc = remote_item_stamps(&m->res, st, id, synced ? at : -1, t->own, err);
        if (rc == RD_OK)
            atomic_store(&t->checked_gen, gen);
        else if (t != NULL) {
            remote_tier_release(t);
            t = NULL;
        }
    }
    json_decref(cached);
    if (rc == RD_OK) {
        LOG_INFO("remote: read model of %s holds %zu %s", id, readmodel_count(t->rm),
                 m->res.plural);
        install(m, id, t);
    }
    return rc;
}

rd_status remote_models_load_all(remote_models *m, store *st, rd_error *err)
{
    json_t *recs = NULL, *rec;
    size_t i;
    uint64_t gen = remote_records_generation(st);
    rd_status rc = remote_list(st, &recs, err);
    if (rc != RD_OK)
        return rc;
    pthread_mutex_lock(&m->write);
    json_array_foreach(recs, i, rec)
    {
        rd_error e;
        /* what a sync cut short by a stop left behind */
        if (remote_res_catalog_sweep(&m->res, st, record_id(rec), &e) != RD_OK)
            LOG_WARN("remote: catalog of %s: %s", record_id(rec), e.message);
        rc = reload_locked(m, st, rec, gen, err);
        if (rc != RD_OK)
            break;
    }
    pthread_mutex_unlock(&m->write);
    json_decref(recs);
    return rc;
}

rd_status remote_models_commit_built(remote_models *m, remote_catalog_txn *t,
                                     remote_tier_builder *tb, const json_t *record, int64_t now_ms,
                                     rd_error *err)
{
    remote_tier *next = NULL;
    rd_error e;
    rd_status rc;
    if (m == NULL || record == NULL || tb == NULL) {
        remote_models_build_abort(tb);
        return remote_models_commit(m, t, record, now_ms, err);
    }
    /* finished before the write, so readers wait only for the write */
    next = build_finish(tb, now_ms, &e);
    if (next == NULL)
        LOG_ERROR("remote: read model of %s: %s; it is rebuilt from the store when next read",
                  record_id(record), e.message);
    else if (strcmp(next->name, record_name(record)) != 0) {
        remote_tier_release(next); /* renamed during the sync: the next read rebuilds it */
        next = NULL;
    }
    pthread_mutex_lock(&m->write);
    if (next != NULL) /* it matches the store as of now */
        atomic_store(&next->checked_gen, remote_records_generation(remote_catalog_store(t)));
    rc = remote_catalog_commit(t, now_ms, err);
    if (rc == RD_OK)
        install(m, record_id(record), next); /* NULL drops the old one */
    else
        remote_tier_release(next);
    pthread_mutex_unlock(&m->write);
    return rc;
}

rd_status remote_models_commit(remote_models *m, remote_catalog_txn *t, const json_t *record,
                               int64_t now_ms, rd_error *err)
{
    rd_error e;
    rd_status rc;
    if (m == NULL || record == NULL)
        return remote_catalog_commit(t, now_ms, err);
    pthread_mutex_lock(&m->write);
    rc = remote_catalog_commit(t, now_ms, err);
    /* the tier is built from the store the commit wrote */
    if (rc == RD_OK &&
        reload_locked(m, remote_catalog_store(t), record,
                      remote_records_generation(remote_catalog_store(t)), &e) != RD_OK) {
        LOG_ERROR("remote: read model of %s: %s; it is rebuilt from the store when next read",
                  record_id(record), e.message);
        install(m, record_id(record), NULL);
    }
    pthread_mutex_unlock(&m->write);
    return rc;
}

void remote_models_put(remote_models *m, const json_t *record, const json_t *cached)
{
    remote_models_put_at(m, record, cached, util_now_ms());
}

void remote_models_put_at(remote_models *m, const json_t *record, const json_t *cached,
                          int64_t fetched_at_ms)
{
    const char *pid = json_string_value(json_object_get(cached, m != NULL ? m->res.id_field : ""));
    remote_tier *t;
    json_t *view;
    rd_error e;
    if (m == NULL || pid == NULL)
        return;
    pthread_mutex_lock(&m->write);
    t = current(m, record_id(record));
    if (t != NULL && strcmp(t->name, record_name(record)) == 0) {
        view = remote_item_view(&m->res, cached, record);
        if (view == NULL || readmodel_put(t->rm, "", pid, view, &e) != RD_OK) {
            /* the tier lacks it now: rebuilt from the store when next read */
            LOG_ERROR("remote: read model of %s could not take plugin %s: out of memory", t->id,
                      pid);
            install(m, t->id, NULL);
        } else {
            own_note(t, pid, fetched_at_ms);
        }
        json_decref(view);
    }
    pthread_mutex_unlock(&m->write);
    remote_tier_release(t);
}

void remote_models_drop(remote_models *m, const char *repository_id)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->write);
    install(m, repository_id, NULL);
    pthread_mutex_unlock(&m->write);
}

void remote_models_retain(remote_models *m, const json_t *records)
{
    remote_tier *gone = NULL;
    if (m == NULL)
        return;
    do {
        gone = NULL;
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->n && gone == NULL; i++) {
            size_t j;
            json_t *rec;
            int kept = 0;
            json_array_foreach(records, j, rec)
            {
                if (strcmp(record_id(rec), m->tiers[i]->id) == 0)
                    kept = 1;
            }
            if (!kept) {
                gone = m->tiers[i];
                m->tiers[i] = m->tiers[--m->n];
            }
        }
        pthread_mutex_unlock(&m->lock);
        remote_tier_release(gone);
    } while (gone != NULL);
}

/* 1 when t still shows the store's catalog (stamp) and record's name. */
static int tier_current(const remote_tier *t, const json_t *record, int have, int64_t at)
{
    return t != NULL && t->synced == have && (!have || t->fetched_at == at) &&
           strcmp(t->name, record_name(record)) == 0;
}

rd_status remote_models_tier(remote_models *m, store *st, const json_t *record, remote_tier **out,
                             rd_error *err)
{
    const char *id = record_id(record);
    uint64_t gen = remote_records_generation(st);
    int64_t at = 0;
    rd_error e;
    int have;
    remote_tier *t;
    rd_status rc = RD_OK;

    *out = NULL;
    if (m == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = no read models)");
    t = current(m, id);
    /* no record written since the tier was known to match the store: every
     * catalog commit since went through remote_models_commit */
    if (gen != 0 && t != NULL && atomic_load(&t->checked_gen) == gen &&
        strcmp(t->name, record_name(record)) == 0)
        goto done;
    have = remote_res_catalog_age(&m->res, st, id, &at, &e) == RD_OK;
    if (tier_current(t, record, have, at)) {
        atomic_store(&t->checked_gen, gen);
        goto done;
    }
    remote_tier_release(t);
    t = NULL;
    pthread_mutex_lock(&m->write);
    /* a commit may have swapped it in meanwhile */
    have = remote_res_catalog_age(&m->res, st, id, &at, &e) == RD_OK;
    t = current(m, id);
    if (!tier_current(t, record, have, at)) {
        remote_tier_release(t);
        t = NULL;
        rc = reload_locked(m, st, record, gen, err);
        if (rc == RD_OK)
            t = current(m, id);
        if (rc == RD_OK && t == NULL)
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    } else {
        atomic_store(&t->checked_gen, gen);
    }
    pthread_mutex_unlock(&m->write);
done:
    *out = t;
    return rc;
}
