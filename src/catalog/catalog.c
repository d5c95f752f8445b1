/*
 * catalog.c - the local repository record and local plugins in the store.
 *
 * Keys in STORE_CF_PLUGINS: "<prefix>\0<domain_id>\0<id>" -> record, the
 *   prefix from the resource's description ("L" plugins, "D" dashboard
 *   templates).
 * Keys in STORE_CF_INDEX: the plugins' secondary indexes (index.h).
 * Keys in STORE_CF_META: "local_repository_id" -> id;
 *   "plugin_index_version" (index.h).
 * Keys in STORE_CF_REPOS: "<repository_id>" -> RepositoryInfo record.
 *
 * Every write queues the record and (plugins) its index changes in one
 * batch, under the write lock, so the index always describes the stored
 * records.
 *
 * The catalog also owns one read model per resource of the local documents'
 * views (readmodel.h), built at open from the stored records and updated under the
 * same write lock right after each successful store write, so a read after
 * an acknowledged write sees it.  When the model cannot take a document
 * (memory), the document is dropped from it and readers fall back to the
 * store.
 */
#include "catalog.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index.h"
#include "log.h"
#include "plugin.h"
#include "query.h"
#include "readmodel.h"
#include "resource.h"
#include "util.h"

#define KEY_MAX 1024

/* The resources the catalog keeps local documents of. */
static const resource_desc *const resources[] = {&resource_plugin, &resource_dashboard};
#define NRES (sizeof(resources) / sizeof(resources[0]))

/* The read model of one resource's local documents. */
typedef struct {
    readmodel *rm;
    atomic_int whole; /* the model holds every stored local document */
} res_model;

struct catalog {
    store *st;
    pthread_mutex_t write_lock;
    char local_id[32];
    json_t *local_record;   /* full RepositoryInfo */
    json_t *local_info;     /* {repository_id, name, repository_type} */
    res_model models[NRES]; /* in the order of resources[] */
};

/* The model slot of res (a resource of resources[]; the plugins' else). */
static res_model *model_of(catalog *cat, const resource_desc *res)
{
    size_t i = 0;
    while (i + 1 < NRES && resources[i] != res)
        i++;
    return resources[i] == res ? &cat->models[i] : &cat->models[0];
}

/* Puts the view of record (borrowed) into res's read model; on failure the
 * document is left out, so that readers use the store.  Under the write
 * lock. */
static void model_put(catalog *cat, const resource_desc *res, const json_t *record)
{
    res_model *m = model_of(cat, res);
    const char *domain_id = json_string_value(json_object_get(record, res->domain_field));
    const char *id = json_string_value(json_object_get(record, res->id_field));
    json_t *view = res->view(record, cat->local_info);
    rd_error err = {0};
    if (domain_id == NULL || id == NULL)
        goto done;
    if (view == NULL || readmodel_put(m->rm, domain_id, id, view, &err) != RD_OK) {
        LOG_ERROR("catalog: read model could not take %s %s/%s: out of memory", res->name,
                  domain_id, id);
        atomic_store(&m->whole, 0); /* lists read the store from now on */
        readmodel_delete(m->rm, domain_id, id);
    }
done:
    json_decref(view);
}

static rd_status model_build(catalog *cat, const resource_desc *res, rd_error *err);

static const char META_LOCAL_ID[] = "local_repository_id";

static size_t plugin_key(char *buf, const char *domain_id, const char *plugin_id)
{
    return pindex_record_key(buf, KEY_MAX, domain_id, plugin_id);
}

/* The key of res's record (domain_id, id) into buf (KEY_MAX bytes); 0 when
 * it does not fit.  id "" gives the prefix of the domain's records. */
static size_t record_key(const resource_desc *res, char *buf, const char *domain_id, const char *id)
{
    if (res->store_indexed)
        return plugin_key(buf, domain_id, id); /* the one spelling of the plugins' layout */
    return store_key(buf, KEY_MAX, res->store_prefix, domain_id, id, NULL);
}

/* Loads the local repository, creating it on first start. */
static rd_status ensure_local(catalog *cat, const char *local_name, rd_error *err)
{
    char *id = NULL;
    size_t idlen = 0;
    json_t *rec = NULL;
    store_batch *b = NULL;
    rd_status rc =
        store_get(cat->st, STORE_CF_META, META_LOCAL_ID, strlen(META_LOCAL_ID), &id, &idlen, err);
    if (rc == RD_OK) {
        snprintf(cat->local_id, sizeof(cat->local_id), "%s", id);
        rc = store_get_json(cat->st, STORE_CF_REPOS, cat->local_id, strlen(cat->local_id), &rec,
                            err);
        if (rc == RD_ERR_NOT_FOUND)
            rc = rd_fail(err, RD_ERR_INTERNAL, "local repository record is missing");
        if (rc != RD_OK)
            goto done;
    } else if (rc == RD_ERR_NOT_FOUND) {
        char now[32];
        if (util_make_id("repo-", cat->local_id, sizeof(cat->local_id)) != 0) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "cannot make a repository id");
            goto done;
        }
        util_now_iso8601(now, sizeof(now));
        rec = json_pack("{s:s, s:s, s:s, s:i, s:s}", "repository_id", cat->local_id, "name",
                        local_name, "repository_type", "local", "priority", 0, "created_at", now);
        b = store_batch_new(cat->st);
        if (rec == NULL || b == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            goto done;
        }
        store_batch_put(b, STORE_CF_META, META_LOCAL_ID, strlen(META_LOCAL_ID), cat->local_id,
                        strlen(cat->local_id));
        store_batch_put_json(b, STORE_CF_REPOS, cat->local_id, strlen(cat->local_id), rec);
        rc = store_write(cat->st, b, err);
        if (rc != RD_OK)
            goto done;
        LOG_INFO("created local repository %s (%s)", cat->local_id, local_name);
    } else {
        goto done;
    }
    cat->local_record = rec;
    rec = NULL;
    cat->local_info =
        json_pack("{s:s, s:O, s:s}", "repository_id", cat->local_id, "name",
                  json_object_get(cat->local_record, "name"), "repository_type", "local");
    if (cat->local_info == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
done:
    free(id);
    json_decref(rec);
    store_batch_free(b);
    return rc;
}

rd_status catalog_open(store *st, const char *local_name, catalog **out, rd_error *err)
{
    catalog *cat = calloc(1, sizeof(*cat));
    rd_status rc;
    *out = NULL;
    if (cat == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    cat->st = st;
    pthread_mutex_init(&cat->write_lock, NULL);
    rc = ensure_local(cat, local_name, err);
    if (rc == RD_OK)
        rc = pindex_ensure(st, err);
    for (size_t i = 0; i < NRES && rc == RD_OK; i++)
        rc = model_build(cat, resources[i], err);
    if (rc != RD_OK) {
        catalog_close(cat);
        return rc;
    }
    *out = cat;
    return RD_OK;
}

void catalog_close(catalog *cat)
{
    if (cat == NULL)
        return;
    json_decref(cat->local_record);
    json_decref(cat->local_info);
    for (size_t i = 0; i < NRES; i++)
        readmodel_destroy(cat->models[i].rm);
    pthread_mutex_destroy(&cat->write_lock);
    free(cat);
}

const char *catalog_local_id(const catalog *cat)
{
    return cat->local_id;
}

const json_t *catalog_local_info(const catalog *cat)
{
    return cat->local_info;
}

json_t *catalog_local_record(const catalog *cat)
{
    return json_deep_copy(cat->local_record);
}

/* RD_OK when no record is stored under key; RD_ERR_SAVE_UNIQUE_VALUES
 * naming id_field = id when one is.  Called under the write lock. */
static rd_status check_absent(catalog *cat, const char *key, size_t klen, const char *id_field,
                              const char *id, rd_error *err)
{
    char *old = NULL;
    rd_status rc = store_get(cat->st, STORE_CF_PLUGINS, key, klen, &old, NULL, err);
    free(old);
    if (rc == RD_OK)
        return rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES, "Duplicated value. (key = %s, value = %s)",
                       id_field, id);
    return rc == RD_ERR_NOT_FOUND ? RD_OK : rc;
}

/* Queues the index changes of res's record going from old_rec to new_rec. */
static void index_changes(const resource_desc *res, store_batch *b, const char *domain_id,
                          const char *id, const json_t *old_rec, const json_t *new_rec)
{
    if (res->store_indexed)
        pindex_put_changes(b, domain_id, id, old_rec, new_rec);
}

rd_status catalog_insert(catalog *cat, const resource_desc *res, const json_t *record,
                         rd_error *err)
{
    char key[KEY_MAX];
    const char *domain_id = json_string_value(json_object_get(record, res->domain_field));
    const char *id = json_string_value(json_object_get(record, res->id_field));
    store_batch *b = NULL;
    size_t klen;
    rd_status rc;

    if (domain_id == NULL || id == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = incomplete record)");
    klen = record_key(res, key, domain_id, id);
    if (klen == 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = %s)",
                       res->id_field);
    pthread_mutex_lock(&cat->write_lock);
    rc = check_absent(cat, key, klen, res->id_field, id, err);
    if (rc != RD_OK)
        goto done;
    b = store_batch_new(cat->st);
    if (b == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    store_batch_put_json(b, STORE_CF_PLUGINS, key, klen, record);
    index_changes(res, b, domain_id, id, NULL, record);
    rc = store_write(cat->st, b, err);
    if (rc == RD_OK)
        model_put(cat, res, record);
done:
    pthread_mutex_unlock(&cat->write_lock);
    store_batch_free(b);
    return rc;
}

rd_status catalog_plugin_insert(catalog *cat, const json_t *record, rd_error *err)
{
    return catalog_insert(cat, &resource_plugin, record, err);
}

typedef struct {
    const char *domain_id;
    const char *plugin_id;
} plugin_ref;

static int cmp_refs(const void *a, const void *b)
{
    const plugin_ref *x = a, *y = b;
    int c = strcmp(x->domain_id, y->domain_id);
    return c != 0 ? c : strcmp(x->plugin_id, y->plugin_id);
}

rd_status catalog_plugin_insert_many(catalog *cat, const json_t *records, rd_error *err)
{
    char key[KEY_MAX];
    size_t n = json_array_size(records), klen;
    plugin_ref *refs = calloc(n ? n : 1, sizeof(*refs));
    store_batch *b = store_batch_new(cat->st);
    rd_status rc = RD_OK;
    int locked = 0;

    if (refs == NULL || b == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *rec = json_array_get(records, i);
        refs[i].domain_id = json_string_value(json_object_get(rec, "domain_id"));
        refs[i].plugin_id = json_string_value(json_object_get(rec, "plugin_id"));
        if (refs[i].domain_id == NULL || refs[i].plugin_id == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = incomplete record)");
            goto done;
        }
        if (plugin_key(key, refs[i].domain_id, refs[i].plugin_id) == 0) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = plugin_id)");
            goto done;
        }
    }
    qsort(refs, n, sizeof(*refs), cmp_refs);
    for (size_t i = 1; i < n; i++) {
        if (cmp_refs(&refs[i - 1], &refs[i]) == 0) {
            rc = rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES,
                         "Duplicated value. (key = plugin_id, value = %s)", refs[i].plugin_id);
            goto done;
        }
    }
    pthread_mutex_lock(&cat->write_lock);
    locked = 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *rec = json_array_get(records, i);
        const char *domain_id = json_string_value(json_object_get(rec, "domain_id"));
        const char *plugin_id = json_string_value(json_object_get(rec, "plugin_id"));
        klen = plugin_key(key, domain_id, plugin_id);
        rc = check_absent(cat, key, klen, "plugin_id", plugin_id, err);
        if (rc != RD_OK)
            goto done;
        store_batch_put_json(b, STORE_CF_PLUGINS, key, klen, rec);
        pindex_put_changes(b, domain_id, plugin_id, NULL, rec);
    }
    rc = store_write(cat->st, b, err);
    for (size_t i = 0; rc == RD_OK && i < n; i++)
        model_put(cat, &resource_plugin, json_array_get(records, i));
done:
    if (locked)
        pthread_mutex_unlock(&cat->write_lock);
    store_batch_free(b);
    free(refs);
    return rc;
}

readmodel *catalog_model(catalog *cat, const resource_desc *res)
{
    return model_of(cat, res)->rm;
}

readmodel_doc *catalog_view(catalog *cat, const resource_desc *res, const char *domain_id,
                            const char *id)
{
    return readmodel_get(model_of(cat, res)->rm, domain_id, id);
}

readmodel_doc *catalog_plugin_view(catalog *cat, const char *domain_id, const char *plugin_id)
{
    return catalog_view(cat, &resource_plugin, domain_id, plugin_id);
}

rd_status catalog_get(catalog *cat, const resource_desc *res, const char *domain_id, const char *id,
                      json_t **out, rd_error *err)
{
    char key[KEY_MAX];
    size_t klen = record_key(res, key, domain_id, id);
    if (klen == 0)
        return RD_ERR_NOT_FOUND;
    return store_get_json(cat->st, STORE_CF_PLUGINS, key, klen, out, err);
}

rd_status catalog_plugin_get(catalog *cat, const char *domain_id, const char *plugin_id,
                             json_t **out, rd_error *err)
{
    return catalog_get(cat, &resource_plugin, domain_id, plugin_id, out, err);
}

/* 1 when rec's field is absent or the string s: a record keeps the identity
 * of its key (the plugin_id index path reads records by key). */
static int same_string(const json_t *rec, const char *field, const char *s)
{
    const json_t *v = json_object_get(rec, field);
    return v == NULL || (json_is_string(v) && strcmp(json_string_value(v), s) == 0);
}

rd_status catalog_modify(catalog *cat, const resource_desc *res, const char *domain_id,
                         const char *id, catalog_modify_fn fn, void *ud, json_t **out,
                         rd_error *err)
{
    char key[KEY_MAX];
    json_t *cur = NULL, *next = NULL;
    store_batch *b = NULL;
    size_t klen = record_key(res, key, domain_id, id);
    rd_status rc;

    if (klen == 0)
        return RD_ERR_NOT_FOUND;
    pthread_mutex_lock(&cat->write_lock);
    rc = store_get_json(cat->st, STORE_CF_PLUGINS, key, klen, &cur, err);
    if (rc != RD_OK)
        goto done;
    rc = fn(ud, cur, &next, err);
    if (rc != RD_OK)
        goto done;
    if (!same_string(next, res->domain_field, domain_id) || !same_string(next, res->id_field, id)) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = record identity changed)");
        goto done;
    }
    b = store_batch_new(cat->st);
    if (b == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    store_batch_put_json(b, STORE_CF_PLUGINS, key, klen, next);
    index_changes(res, b, domain_id, id, cur, next);
    rc = store_write(cat->st, b, err);
    if (rc == RD_OK)
        model_put(cat, res, next);
    if (rc == RD_OK && out != NULL) {
        *out = next;
        next = NULL;
    }
done:
    pthread_mutex_unlock(&cat->write_lock);
    json_decref(cur);
    json_decref(next);
    store_batch_free(b);
    return rc;
}

rd_status catalog_plugin_modify(catalog *cat, const char *domain_id, const char *plugin_id,
                                catalog_modify_fn fn, void *ud, json_t **out, rd_error *err)
{
    return catalog_modify(cat, &resource_plugin, domain_id, plugin_id, fn, ud, out, err);
}

rd_status catalog_delete(catalog *cat, const resource_desc *res, const char *domain_id,
                         const char *id, rd_error *err)
{
    char key[KEY_MAX];
    char *old = NULL;
    size_t oldlen = 0;
    json_t *rec = NULL;
    json_error_t jerr;
    store_batch *b = NULL;
    size_t klen = record_key(res, key, domain_id, id);
    rd_status rc;

    if (klen == 0)
        return RD_ERR_NOT_FOUND;
    pthread_mutex_lock(&cat->write_lock);
    rc = store_get(cat->st, STORE_CF_PLUGINS, key, klen, &old, &oldlen, err);
    if (rc != RD_OK)
        goto done;
    b = store_batch_new(cat->st);
    if (b == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    rec = json_loadb(old, oldlen, 0, &jerr);
    if (rec == NULL) /* its entries stay behind: they only cost a wasted read */
        LOG_WARN("catalog: deleting corrupt %s record %s/%s: %s", res->name, domain_id, id,
                 jerr.text);
    store_batch_delete(b, STORE_CF_PLUGINS, key, klen);
    index_changes(res, b, domain_id, id, rec, NULL);
    rc = store_write(cat->st, b, err);
    if (rc == RD_OK)
        readmodel_delete(model_of(cat, res)->rm, domain_id, id);
done:
    pthread_mutex_unlock(&cat->write_lock);
    json_decref(rec);
    free(old);
    store_batch_free(b);
    return rc;
}

rd_status catalog_plugin_delete(catalog *cat, const char *domain_id, const char *plugin_id,
                                rd_error *err)
{
    return catalog_delete(cat, &resource_plugin, domain_id, plugin_id, err);
}

typedef struct {
    json_t *arr;
    int failed;
    /* model_build: each record is viewed in place and handed to the
     * builder instead of being appended to arr */
    readmodel_builder *b;
    json_t *info; /* the views' repository_info, shared */
    rd_status rc;
    rd_error *err;
    const resource_desc *res;
} collect_state;

static int collect_one(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    collect_state *cs = ud;
    json_error_t jerr;
    json_t *rec = json_loadb(val, vlen, 0, &jerr);
    (void)key;
    (void)klen;
    if (rec == NULL) {
        LOG_ERROR("catalog: skipping corrupt %s record: %s", cs->res->name, jerr.text);
        cs->failed = 1;
        return 0;
    }
    if (cs->b == NULL) {
        json_array_append_new(cs->arr, rec);
        return 0;
    }
    /* the view without a deep copy: the record is ours */
    if (!json_is_object(rec)) {
        cs->rc =
            rd_fail(cs->err, RD_ERR_INTERNAL, "a stored %s record is not an object", cs->res->name);
    } else {
        cs->res->view_in_place(rec, cs->info);
        /* the document is made here (the record's tree is allocated and
         * freed by this thread alone); the builder's worker indexes it */
        cs->rc = readmodel_build_add(cs->b, rec, cs->err);
    }
    json_decref(rec);
    return cs->rc != RD_OK; /* stops the scan */
}

/* How many threads decode the records of a model build: one per online
 * processor, 2 to MODEL_SCAN_THREADS_MAX. */
#define MODEL_SCAN_THREADS_MAX 4
static size_t model_scan_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 2 ? 2 : n > MODEL_SCAN_THREADS_MAX ? MODEL_SCAN_THREADS_MAX : (size_t)n;
}

/* Builds res's read model from every stored local record of res, one
 * record at a time. */
static rd_status model_build(catalog *cat, const resource_desc *res, rd_error *err)
{
    char prefix[2] = {res->store_prefix[0], '\0'};
    res_model *m = model_of(cat, res);
    collect_state cs = {NULL, 0, NULL, NULL, RD_OK, err, res};
    collect_state per[MODEL_SCAN_THREADS_MAX];
    rd_error perr[MODEL_SCAN_THREADS_MAX];
    void *uds[MODEL_SCAN_THREADS_MAX];
    size_t nthreads = 0;
    rd_status rc = readmodel_create(res, &m->rm, err);
    memset(perr, 0, sizeof(perr));
    if (rc != RD_OK)
        goto done;
    /* one copy completed once (endpoint), as plugin_view makes per view */
    cs.info = cat->local_info != NULL ? json_deep_copy(cat->local_info) : json_object();
    if (cs.info == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    if (json_is_object(cs.info) && !json_is_string(json_object_get(cs.info, "endpoint")))
        json_object_set_new(cs.info, "endpoint", json_string(""));
    rc = readmodel_build_begin(m->rm, &cs.b, err);
    if (rc != RD_OK)
        goto done;
    /* the records are decoded and made into documents on several threads
     * (each its own state; the builder takes documents from all of them) */
    nthreads = model_scan_threads();
    for (size_t i = 0; i < nthreads; i++) {
        per[i] = cs;
        per[i].err = &perr[i];
        /* each thread its own repository_info: its reference count is
         * then changed by one thread only (the model shares one copy) */
        per[i].info = i == 0 ? json_incref(cs.info) : json_deep_copy(cs.info);
        uds[i] = &per[i];
        if (per[i].info == NULL) { /* fewer threads (never the first) */
            nthreads = i;
            break;
        }
    }
    rc = store_scan_parallel(cat->st, STORE_CF_PLUGINS, prefix, 2, nthreads, collect_one, uds, err);
    for (size_t i = 0; i < nthreads && rc == RD_OK; i++)
        if ((rc = per[i].rc) != RD_OK)
            *err = perr[i];
    if (rc != RD_OK) {
        readmodel_build_abort(cs.b);
        goto done;
    }
    rc = readmodel_build_finish(cs.b, err);
    if (rc == RD_OK)
        atomic_store(&m->whole, 1);
    if (rc == RD_OK)
        LOG_INFO("catalog: read model holds %zu local %s", readmodel_count(m->rm), res->plural);
done:
    for (size_t i = 0; i < nthreads; i++)
        json_decref(per[i].info);
    json_decref(cs.info);
#ifdef __GLIBC__
    /* the decoded records are gone: give their pages back to the system */
    malloc_trim(0);
#endif
    return rc;
}

rd_status catalog_collect(catalog *cat, const resource_desc *res, const char *domain_id,
                          json_t *arr, rd_error *err)
{
    char prefix[KEY_MAX];
    /* "<prefix>\0<domain>\0" : the empty last part yields the trailing separator. */
    size_t plen = record_key(res, prefix, domain_id, "");
    collect_state cs = {arr, 0, NULL, NULL, RD_OK, err, res};
    if (plen == 0)
        return RD_OK;
    return store_scan(cat->st, STORE_CF_PLUGINS, prefix, plen, collect_one, &cs, err);
}

rd_status catalog_plugin_collect(catalog *cat, const char *domain_id, json_t *arr, rd_error *err)
{
    return catalog_collect(cat, &resource_plugin, domain_id, arr, err);
}

rd_status catalog_plugin_count_all(catalog *cat, size_t *count, rd_error *err)
{
    char prefix[2] = {'L', '\0'};
    return store_count(cat->st, STORE_CF_PLUGINS, prefix, 2, count, err);
}

rd_status catalog_plugin_collect_query(catalog *cat, const char *domain_id, const struct query *q,
                                       json_t *arr, size_t *decoded, rd_error *err)
{
    char key[KEY_MAX];
    pindex_ids ids = {0};
    size_t before = json_array_size(arr), n = 0;
    int used = 0;
    rd_status rc = pindex_candidates(cat->st, domain_id, q, &ids, &used, err);

    if (rc != RD_OK)
        goto done;
    if (!used) {
        rc = catalog_plugin_collect(cat, domain_id, arr, err);
        n = json_array_size(arr) - before;
        goto done;
    }
    /* The candidates are sorted, so the records come in plugin_id order. */
    for (size_t i = 0; i < ids.n; i++) {
        char *val = NULL;
        size_t vlen = 0, klen = plugin_key(key, domain_id, ids.ids[i]);
        json_error_t jerr;
        json_t *rec;
        if (klen == 0)
            continue;
        rc = store_get(cat->st, STORE_CF_PLUGINS, key, klen, &val, &vlen, err);
        if (rc == RD_ERR_NOT_FOUND) { /* deleted meanwhile, or a named id */
            rc = RD_OK;
            continue;
        }
        if (rc != RD_OK)
            goto done;
        rec = json_loadb(val, vlen, 0, &jerr);
        free(val);
        n++;
        if (rec == NULL) {
            LOG_ERROR("catalog: skipping corrupt plugin record: %s", jerr.text);
            continue;
        }
        if (json_array_append_new(arr, rec) != 0) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            goto done;
        }
    }
done:
    if (decoded != NULL)
        *decoded += n;
    pindex_ids_free(&ids);
    return rc;
}

rd_status catalog_plugin_count_query(catalog *cat, const char *domain_id, const struct query *q,
                                     size_t *count, int *exact, rd_error *err)
{
    return pindex_count(cat->st, domain_id, q, count, exact, err);
}

/* catalog_res_collect_views from the read model: the matches' views,
 * decoded from the model's ready bytes; keys (a set, NULL = every key): only
 * those top-level keys of each view. */
static rd_status model_collect_views(catalog *cat, const resource_desc *res,
                                     const char *const *domains, size_t n, const struct query *q,
                                     const json_t *keys, json_t **out, rd_error *err)
{
    readmodel_result r;
    json_t *docs = NULL;
    rd_status rc = readmodel_matches(model_of(cat, res)->rm, q, domains, n, &r, err);
    if (rc != RD_OK)
        return rc;
    docs = json_array();
    if (docs == NULL)
        goto oom;
    for (size_t i = 0; i < r.n; i++)
        if (json_array_append_new(docs, keys != NULL ? readmodel_doc_decode_keys(r.docs[i], keys)
                                                     : readmodel_doc_decode(r.docs[i])) != 0)
            goto oom;
    *out = docs;
    docs = NULL;
    goto done;
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
done:
    json_decref(docs);
    readmodel_result_free(&r);
    return rc;
}

int catalog_res_whole(catalog *cat, const resource_desc *res)
{
    return atomic_load(&model_of(cat, res)->whole);
}

int catalog_model_whole(catalog *cat)
{
    return catalog_res_whole(cat, &resource_plugin);
}

rd_status catalog_res_query_views(catalog *cat, const resource_desc *res,
                                  const char *const *domains, size_t n, const struct query *q,
                                  json_t **out, rd_error *err)
{
    json_t *docs = NULL;
    rd_status rc;
    if (catalog_res_whole(cat, res))
        return readmodel_query_json(model_of(cat, res)->rm, q, domains, n, out, err);
    rc = catalog_res_collect_views(cat, res, domains, n, q, &docs, NULL, err);
    if (rc == RD_OK)
        rc = query_run(q, docs, out, err);
    json_decref(docs);
    return rc;
}

rd_status catalog_res_query_bytes(catalog *cat, const resource_desc *res,
                                  const char *const *domains, size_t n, const struct query *q,
                                  char **body, size_t *len, rd_error *err)
{
    json_t *out = NULL;
    rd_status rc;
    *body = NULL;
    *len = 0;
    if (catalog_res_whole(cat, res))
        return readmodel_query_bytes(model_of(cat, res)->rm, q, domains, n, body, len, err);
    rc = catalog_res_query_views(cat, res, domains, n, q, &out, err);
    if (rc == RD_OK && (*body = json_dumps(out, JSON_COMPACT)) == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (*body != NULL)
        *len = strlen(*body);
    json_decref(out);
    return rc;
}

rd_status catalog_query_views(catalog *cat, const char *const *domains, size_t n,
                              const struct query *q, json_t **out, rd_error *err)
{
    return catalog_res_query_views(cat, &resource_plugin, domains, n, q, out, err);
}

rd_status catalog_res_collect_views(catalog *cat, const resource_desc *res,
                                    const char *const *domains, size_t n, const struct query *q,
                                    json_t **out, size_t *decoded, rd_error *err)
{
    if (catalog_res_whole(cat, res))
        return model_collect_views(cat, res, domains, n, q, NULL, out, err);
    return catalog_res_store_views(cat, res, domains, n, q, out, decoded, err);
}

/* Adds every string of v (values and object keys, at any depth) to the set
 * keys, each also cut before each '.' (a dotted path's top-level key). */
static int add_named_keys(json_t *keys, const json_t *v)
{
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        for (size_t j = 0; j <= len; j++)
            if ((j == len || s[j] == '.') && json_object_setn(keys, s, j, json_null()) != 0)
                return -1;
        return 0;
    }
    if (json_is_array(v))
        json_array_foreach(v, i, e) if (add_named_keys(keys, e) != 0) return -1;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, e)
        {
            json_t *name = json_string(k);
            int rc = name == NULL ? -1 : add_named_keys(keys, name);
            json_decref(name);
            if (rc != 0 || add_named_keys(keys, e) != 0)
                return -1;
        }
    return 0;
}

/* The top-level keys of a view that stat_query (without filters) reads (a
 * new set), when its documents never reach the answer whole: a distinct, a
 * v2 group_by or an aggregate whose first stage is a group.  Those read
 * only the keys the query names (group keys, fields, distinct).  NULL: read
 * every key (another shape, or out of memory). */
static json_t *stat_read_keys(const json_t *stat_query)
{
    const json_t *agg = json_object_get(stat_query, "aggregate");
    json_t *keys = NULL;
    if (!json_is_string(json_object_get(stat_query, "distinct")) &&
        json_object_get(stat_query, "group_by") == NULL &&
        json_object_get(json_array_get(agg, 0), "group") == NULL)
        goto done;
    keys = json_object();
    if (keys != NULL && add_named_keys(keys, stat_query) != 0) {
        json_decref(keys);
        keys = NULL;
    }
done:
    return keys;
}

rd_status catalog_res_stat_views(catalog *cat, const resource_desc *res, const char *const *domains,
                                 size_t n, const json_t *stat_query, json_t **out, rd_error *err)
{
    json_t *docs = NULL, *keys = NULL, *run = NULL;
    query *hint = NULL;
    rd_error ignored;
    query_schema schema = resource_query_schema(res);
    rd_status rc;
    *out = NULL;
    if (catalog_res_whole(cat, res)) {
        rc = readmodel_stat(model_of(cat, res)->rm, stat_query, domains, n, out, err);
        if (rc != RD_OK || *out != NULL)
            return rc;
    }
    /* The stat's own filters narrow what is read; a bad filter is left for
     * query_stat to report. */
    if (query_stat_filter(stat_query, &schema, &hint, &ignored) != RD_OK)
        hint = NULL;
    /* From the model, the matches of the stat's filters are exactly the
     * documents those filters let through, so the stat runs without them,
     * and each view holds only the keys the rest of it reads: the views of
     * many matches are never whole at once. */
    if (catalog_res_whole(cat, res) && hint != NULL && (run = json_copy((json_t *)stat_query))) {
        json_object_del(run, "filter");
        json_object_del(run, "filter_or");
        json_object_del(run, "keyword");
        keys = stat_read_keys(run);
    }
    if (keys != NULL)
        rc = model_collect_views(cat, res, domains, n, hint, keys, &docs, err);
    else
        rc = catalog_res_collect_views(cat, res, domains, n, hint, &docs, NULL, err);
    if (rc == RD_OK)
        rc = query_stat(keys != NULL ? run : stat_query, &schema, docs, out, err);
    json_decref(docs);
    json_decref(keys);
    json_decref(run);
    query_free(hint);
    return rc;
}

rd_status catalog_res_stat_tally(catalog *cat, const resource_desc *res, const char *const *domains,
                                 size_t n, const query_stat_groups *plan, query_stat_tally *tally,
                                 int *counted, rd_error *err)
{
    *counted = 0;
    if (!catalog_res_whole(cat, res))
        return RD_OK;
    return readmodel_stat_tally(model_of(cat, res)->rm, plan, domains, n, tally, counted, err);
}

rd_status catalog_stat_views(catalog *cat, const char *const *domains, size_t n,
                             const json_t *stat_query, json_t **out, rd_error *err)
{
    return catalog_res_stat_views(cat, &resource_plugin, domains, n, stat_query, out, err);
}

rd_status catalog_collect_views(catalog *cat, const char *const *domains, size_t n,
                                const struct query *q, json_t **out, size_t *decoded, rd_error *err)
{
    return catalog_res_collect_views(cat, &resource_plugin, domains, n, q, out, decoded, err);
}

/* qsort_r comparator: res's default order (its default_order fields
 * compared as strings, "" when missing). */
static int cmp_default_order(const void *a, const void *b, void *arg)
{
    const resource_desc *res = arg;
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = 0;
    for (size_t i = 0; c == 0 && res->default_order[i] != NULL; i++) {
        const char *s = json_string_value(json_object_get(x, res->default_order[i]));
        const char *t = json_string_value(json_object_get(y, res->default_order[i]));
        c = strcmp(s != NULL ? s : "", t != NULL ? t : "");
    }
    return c;
}

rd_status catalog_collect_store_views(catalog *cat, const char *const *domains, size_t n,
                                      const struct query *q, json_t **out, size_t *decoded,
                                      rd_error *err)
{
    return catalog_res_store_views(cat, &resource_plugin, domains, n, q, out, decoded, err);
}

rd_status catalog_res_store_views(catalog *cat, const resource_desc *res,
                                  const char *const *domains, size_t n, const struct query *q,
                                  json_t **out, size_t *decoded, rd_error *err)
{
    json_t *records = json_array(), *docs = json_array(), *info = NULL;
    json_t **sorted = NULL;
    size_t count;
    rd_status rc = RD_OK;

    if (records == NULL || docs == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && rc == RD_OK; i++) {
        size_t before = json_array_size(records);
        if (res->store_indexed) {
            rc = catalog_plugin_collect_query(cat, domains[i], q, records, decoded, err);
            continue;
        }
        rc = catalog_collect(cat, res, domains[i], records, err);
        if (decoded != NULL)
            *decoded += json_array_size(records) - before;
    }
    if (rc != RD_OK)
        goto done;
    count = json_array_size(records);
    sorted = calloc(count ? count : 1, sizeof(*sorted));
    info = json_deep_copy(cat->local_info); /* one copy, shared by this answer's documents */
    if (sorted == NULL || info == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        sorted[i] = json_array_get(records, i);
    qsort_r(sorted, count, sizeof(*sorted), cmp_default_order, (void *)res);
    /* the records were decoded for this call alone: view them in place */
    for (size_t i = 0; i < count; i++) {
        res->view_in_place(sorted[i], info);
        json_array_append(docs, sorted[i]);
    }
    *out = docs;
    docs = NULL;
done:
    free(sorted);
    json_decref(info);
    json_decref(records);
    json_decref(docs);
    return rc;
}
