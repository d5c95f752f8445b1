/*
 * remote.c - remote repository records and their mirrored data in the store.
 */
#include "remote.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plugin.h"
#include "remote_catalog.h"
#include "remote_records.h"
#include "resource.h"

#define KEY_MAX 1024

/* ---- records ------------------------------------------------------------ */

static int is_remote(const json_t *rec)
{
    const char *type = json_string_value(json_object_get(rec, "repository_type"));
    return type != NULL && strcmp(type, "remote") == 0;
}

static int collect_remote(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    json_t *rec = json_loadb(val, vlen, 0, NULL);
    (void)key;
    (void)klen;
    if (rec != NULL && is_remote(rec))
        json_array_append(ud, rec);
    json_decref(rec);
    return 0;
}

static int cmp_priority(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t px = json_integer_value(json_object_get(x, "priority"));
    json_int_t py = json_integer_value(json_object_get(y, "priority"));
    const char *nx, *ny;
    if (px != py)
        return px < py ? -1 : 1;
    nx = json_string_value(json_object_get(x, "name"));
    ny = json_string_value(json_object_get(y, "name"));
    return strcmp(nx ? nx : "", ny ? ny : "");
}

rd_status remote_list(store *st, json_t **out, rd_error *err)
{
    json_t *all = json_array(), *sorted = NULL;
    json_t **items = NULL;
    size_t n;
    rd_status rc = store_scan(st, STORE_CF_REPOS, NULL, 0, collect_remote, all, err);
    if (rc != RD_OK)
        goto done;
    n = json_array_size(all);
    items = calloc(n ? n : 1, sizeof(*items));
    sorted = json_array();
    if (items == NULL || sorted == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(all, i);
    qsort(items, n, sizeof(*items), cmp_priority);
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, items[i]);
    *out = sorted;
    sorted = NULL;
done:
    free(items);
    json_decref(all);
    json_decref(sorted);
    return rc;
}

rd_status remote_get(store *st, const char *repository_id, json_t **out, rd_error *err)
{
    json_t *rec = NULL;
    rd_status rc =
        store_get_json(st, STORE_CF_REPOS, repository_id, strlen(repository_id), &rec, err);
    if (rc != RD_OK)
        return rc;
    if (!is_remote(rec)) {
        json_decref(rec);
        return RD_ERR_NOT_FOUND;
    }
    *out = rec;
    return RD_OK;
}

rd_status remote_put(store *st, const json_t *record, rd_error *err)
{
    const char *id = json_string_value(json_object_get(record, "repository_id"));
    rd_status rc;
    if (id == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = incomplete record)");
    rc = store_put_json(st, STORE_CF_REPOS, id, strlen(id), record, err);
    remote_records_changed(st); /* the in-memory snapshot follows */
    return rc;
}

typedef struct {
    store_batch *b;
} delete_state;

static int queue_delete(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    delete_state *ds = ud;
    (void)val;
    (void)vlen;
    store_batch_delete(ds->b, STORE_CF_CACHE, key, klen);
    return 0;
}

/* Queues deletes of every cache key "<kind>\0<repo>\0..." and "<kind>\0<repo>". */
static rd_status queue_cache_deletes(store *st, store_batch *b, const char *kind,
                                     const char *repository_id, rd_error *err)
{
    char prefix[KEY_MAX];
    delete_state ds = {b};
    size_t plen = store_key(prefix, KEY_MAX, kind, repository_id, "", NULL);
    if (plen == 0)
        return RD_OK;
    return store_scan(st, STORE_CF_CACHE, prefix, plen, queue_delete, &ds, err);
}

/* Queues deletes of every catalog generation "<kind>\0<repo>#..." of kind
 * ("C", "DC": remote_catalog.c). */
static rd_status queue_gen_deletes(store *st, store_batch *b, const char *kind,
                                   const char *repository_id, rd_error *err)
{
    char prefix[KEY_MAX];
    delete_state ds = {b};
    size_t plen = store_key(prefix, KEY_MAX, kind, repository_id, NULL);
    if (plen == 0 || plen + 1 >= KEY_MAX)
        return RD_OK;
    prefix[plen++] = '#';
    return store_scan(st, STORE_CF_CACHE, prefix, plen, queue_delete, &ds, err);
}

rd_status remote_delete(store *st, const char *repository_id, rd_error *err)
{
    static const char *const kinds[] = {"C", "V", "N", "P", "DC", "DN", "DP"};
    char key[KEY_MAX];
    store_batch *b = store_batch_new(st);
    rd_status rc = RD_OK;
    size_t klen;
    if (b == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && rc == RD_OK; i++)
        rc = queue_cache_deletes(st, b, kinds[i], repository_id, err);
    if (rc == RD_OK)
        rc = queue_gen_deletes(st, b, "C", repository_id, err);
    if (rc == RD_OK)
        rc = queue_gen_deletes(st, b, "DC", repository_id, err);
    if (rc == RD_OK) {
        klen = store_key(key, KEY_MAX, "G", repository_id, NULL);
        store_batch_delete(b, STORE_CF_CACHE, key, klen);
        klen = store_key(key, KEY_MAX, "DG", repository_id, NULL);
        store_batch_delete(b, STORE_CF_CACHE, key, klen);
        klen = store_key(key, KEY_MAX, "M", repository_id, NULL);
        store_batch_delete(b, STORE_CF_CACHE, key, klen);
        klen = store_key(key, KEY_MAX, "DM", repository_id, NULL);
        store_batch_delete(b, STORE_CF_CACHE, key, klen);
        klen = store_key(key, KEY_MAX, "S", repository_id, NULL);
        store_batch_delete(b, STORE_CF_CACHE, key, klen);
        store_batch_delete(b, STORE_CF_REPOS, repository_id, strlen(repository_id));
        rc = store_write(st, b, err);
        remote_records_changed(st); /* the in-memory snapshot follows */
    }
    store_batch_free(b);
    return rc;
}

json_t *remote_view(const json_t *record, const json_t *status)
{
    json_t *view = json_deep_copy(record);
    json_t *st = status != NULL ? json_deep_copy(status)
                                : json_pack("{s:s, s:n, s:n, s:i, s:i, s:n}", "state", "ok",
                                            "last_sync_at", "last_error", "cached_plugins", 0,
                                            "skipped_records", 0, "last_skip_reason");
    if (st != NULL) { /* a status recorded before skipped records were counted */
        if (json_object_get(st, "skipped_records") == NULL)
            json_object_set_new(st, "skipped_records", json_integer(0));
        if (json_object_get(st, "last_skip_reason") == NULL)
            json_object_set_new(st, "last_skip_reason", json_null());
        /* mirrored dashboard templates (a status recorded before they were) */
        if (json_object_get(st, "cached_dashboard_templates") == NULL)
            json_object_set_new(st, "cached_dashboard_templates", json_integer(0));
        if (json_object_get(st, "skipped_dashboard_templates") == NULL)
            json_object_set_new(st, "skipped_dashboard_templates", json_integer(0));
        json_object_set_new(view, "upstream", st);
    }
    json_t *cfg = json_object_get(view, "upstream_config");
    if (cfg != NULL) {
        json_t *settings = json_pack(
            "{s:O?, s:O?, s:b}", "ca_file", json_object_get(cfg, "ca_file"), "verify",
            json_object_get(cfg, "verify"), "token_set", json_object_get(cfg, "token") != NULL);
        json_object_del(view, "upstream_config");
        if (settings != NULL)
            json_object_set_new(view, "upstream_settings", settings);
    }
    return view;
}

json_t *remote_info(const json_t *record)
{
    return json_pack("{s:O, s:O, s:s}", "repository_id", json_object_get(record, "repository_id"),
                     "name", json_object_get(record, "name"), "repository_type", "remote");
}

json_t *remote_item_view(const resource_desc *res, const json_t *cached, const json_t *record)
{
    json_t *doc = json_deep_copy(cached);
    json_t *info = remote_info(record);
    if (doc == NULL || info == NULL || !json_is_object(doc)) {
        json_decref(doc);
        json_decref(info);
        return NULL;
    }
    res->view_in_place(doc, info);
    json_decref(info);
    return doc;
}

json_t *remote_plugin_view(const json_t *cached, const json_t *record)
{
    return remote_item_view(&resource_plugin, cached, record);
}

void remote_cache_settings(const json_t *record, const conf_cache *defaults, conf_cache *out)
{
    json_t *c = json_object_get(record, "cache");
    json_t *v;
    *out = *defaults;
    if (!json_is_object(c))
        return;
    if (json_is_integer(v = json_object_get(c, "ttl_s")))
        out->ttl_s = json_integer_value(v);
    if (json_is_boolean(v = json_object_get(c, "stale_while_revalidate")))
        out->stale_while_revalidate = json_is_true(v);
    if (json_is_integer(v = json_object_get(c, "stale_if_error_s")))
        out->stale_if_error_s = json_integer_value(v);
    if (json_is_integer(v = json_object_get(c, "negative_ttl_s")))
        out->negative_ttl_s = json_integer_value(v);
    if (json_is_integer(v = json_object_get(c, "timeout_ms")))
        out->timeout_ms = json_integer_value(v);
    if (json_is_integer(v = json_object_get(c, "max_response_bytes")))
        out->max_response_bytes = json_integer_value(v);
    if (json_is_integer(v = json_object_get(c, "sync_page_size")))
        out->sync_page_size = json_integer_value(v);
}

remote_freshness remote_freshness_of(const conf_cache *cs, int64_t fetched_at_ms, int64_t now_ms)
{
    int64_t age = now_ms - fetched_at_ms;
    if (age < cs->ttl_s * 1000)
        return REMOTE_FRESH;
    if (age < (cs->ttl_s + cs->stale_if_error_s) * 1000)
        return REMOTE_STALE;
    return REMOTE_EXPIRED;
}

/* ---- mirrored catalog ----------------------------------------------------- */

static int64_t fetched_at_of(const json_t *meta)
{
    return (int64_t)json_integer_value(json_object_get(meta, "fetched_at"));
}

/* Reads the fetched_at of a "<kind>\0<repo>\0<plugin>" stamp ("<kind>\0<repo>"
 * when plugin_id is NULL). */
static rd_status stamp_get(store *st, const char *kind, const char *repository_id,
                           const char *plugin_id, int64_t *fetched_at_ms, rd_error *err)
{
    char key[KEY_MAX];
    json_t *v = NULL;
    size_t klen = store_key(key, KEY_MAX, kind, repository_id, plugin_id, NULL);
    rd_status rc;
    if (klen == 0)
        return RD_ERR_NOT_FOUND;
    rc = store_get_json(st, STORE_CF_CACHE, key, klen, &v, err);
    if (rc == RD_OK)
        *fetched_at_ms = fetched_at_of(v);
    json_decref(v);
    return rc;
}

rd_status remote_res_catalog_age(const resource_desc *res, store *st, const char *repository_id,
                                 int64_t *fetched_at_ms, rd_error *err)
{
    char kind[8];
    return stamp_get(st, remote_kind(res, 'M', kind, sizeof(kind)), repository_id, NULL,
                     fetched_at_ms, err); /* "M\0<repo>" */
}

rd_status remote_catalog_age(store *st, const char *repository_id, int64_t *fetched_at_ms,
                             rd_error *err)
{
    return remote_res_catalog_age(&resource_plugin, st, repository_id, fetched_at_ms, err);
}

rd_status remote_item_fetched_at(const resource_desc *res, store *st, const char *repository_id,
                                 const char *id, int64_t *fetched_at_ms, rd_error *err)
{
    char kind[8];
    return stamp_get(st, remote_kind(res, 'P', kind, sizeof(kind)), repository_id, id,
                     fetched_at_ms, err);
}

rd_status remote_plugin_fetched_at(store *st, const char *repository_id, const char *plugin_id,
                                   int64_t *fetched_at_ms, rd_error *err)
{
    return remote_item_fetched_at(&resource_plugin, st, repository_id, plugin_id, fetched_at_ms,
                                  err);
}

rd_status remote_item_negative_get(const resource_desc *res, store *st, const char *repository_id,
                                   const char *id, int64_t *fetched_at_ms, rd_error *err)
{
    char kind[8];
    return stamp_get(st, remote_kind(res, 'N', kind, sizeof(kind)), repository_id, id,
                     fetched_at_ms, err);
}

typedef struct {
    json_t *out;
    size_t plen;
    int64_t after;
} stamps_state;

static int stamp_one(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    stamps_state *ss = ud;
    char pid[KEY_MAX];
    size_t n = klen - ss->plen;
    json_t *v;
    int64_t at;
    if (klen <= ss->plen || n >= sizeof(pid))
        return 0;
    memcpy(pid, key + ss->plen, n);
    pid[n] = '\0';
    v = json_loadb(val, vlen, 0, NULL);
    at = fetched_at_of(v);
    json_decref(v);
    if (at > ss->after)
        json_object_set_new(ss->out, pid, json_integer((json_int_t)at));
    return 0;
}

rd_status remote_item_stamps(const resource_desc *res, store *st, const char *repository_id,
                             int64_t after_ms, json_t *out, rd_error *err)
{
    char prefix[KEY_MAX], kind[8];
    stamps_state ss = {out, 0, after_ms};
    ss.plen = store_key(prefix, KEY_MAX, remote_kind(res, 'P', kind, sizeof(kind)), repository_id,
                        "", NULL);
    if (ss.plen == 0)
        return RD_OK;
    return store_scan(st, STORE_CF_CACHE, prefix, ss.plen, stamp_one, &ss, err);
}

rd_status remote_negative_get(store *st, const char *repository_id, const char *plugin_id,
                              int64_t *fetched_at_ms, rd_error *err)
{
    return remote_item_negative_get(&resource_plugin, st, repository_id, plugin_id, fetched_at_ms,
                                    err);
}

/* Writes one small JSON value under "<kind>\0<repo>\0<plugin>". */
static rd_status put_small(store *st, const char *kind, const char *repository_id,
                           const char *plugin_id, json_t *val, rd_error *err)
{
    char key[KEY_MAX];
    size_t klen = store_key(key, KEY_MAX, kind, repository_id, plugin_id, NULL);
    rd_status rc;
    if (klen == 0 || val == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = cannot cache)");
    else
        rc = store_put_json(st, STORE_CF_CACHE, key, klen, val, err);
    json_decref(val);
    return rc;
}

rd_status remote_item_negative_put(const resource_desc *res, store *st, const char *repository_id,
                                   const char *id, int64_t now_ms, rd_error *err)
{
    char kind[8];
    return put_small(st, remote_kind(res, 'N', kind, sizeof(kind)), repository_id, id,
                     json_pack("{s:I}", "fetched_at", (json_int_t)now_ms), err);
}

rd_status remote_negative_put(store *st, const char *repository_id, const char *plugin_id,
                              int64_t now_ms, rd_error *err)
{
    return remote_item_negative_put(&resource_plugin, st, repository_id, plugin_id, now_ms, err);
}

/* Reads a {versions, fetched_at} entry of kind ("V" or "T"). */
static rd_status versions_get(store *st, const char *kind, const char *owner, const char *plugin_id,
                              json_t **versions, int64_t *fetched_at_ms, rd_error *err)
{
    char key[KEY_MAX];
    json_t *v = NULL;
    size_t klen = store_key(key, KEY_MAX, kind, owner, plugin_id, NULL);
    rd_status rc;
    if (klen == 0)
        return RD_ERR_NOT_FOUND;
    rc = store_get_json(st, STORE_CF_CACHE, key, klen, &v, err);
    if (rc == RD_OK) {
        *fetched_at_ms = fetched_at_of(v);
        *versions = json_incref(json_object_get(v, "versions"));
        if (*versions == NULL)
            *versions = json_array();
    }
    json_decref(v);
    return rc;
}

/* Writes a {versions, fetched_at} entry of kind ("V" or "T"). */
static rd_status versions_put(store *st, const char *kind, const char *owner, const char *plugin_id,
                              const json_t *versions, int64_t now_ms, rd_error *err)
{
    return put_small(
        st, kind, owner, plugin_id,
        json_pack("{s:O, s:I}", "versions", versions, "fetched_at", (json_int_t)now_ms), err);
}

rd_status remote_versions_get(store *st, const char *repository_id, const char *plugin_id,
                              json_t **versions, int64_t *fetched_at_ms, rd_error *err)
{
    return versions_get(st, "V", repository_id, plugin_id, versions, fetched_at_ms, err);
}

rd_status remote_versions_put(store *st, const char *repository_id, const char *plugin_id,
                              const json_t *versions, int64_t now_ms, rd_error *err)
{
    return versions_put(st, "V", repository_id, plugin_id, versions, now_ms, err);
}

rd_status remote_tags_get(store *st, const char *domain_id, const char *plugin_id,
                          json_t **versions, int64_t *fetched_at_ms, rd_error *err)
{
    return versions_get(st, "T", domain_id, plugin_id, versions, fetched_at_ms, err);
}

rd_status remote_tags_put(store *st, const char *domain_id, const char *plugin_id,
                          const json_t *versions, int64_t now_ms, rd_error *err)
{
    return versions_put(st, "T", domain_id, plugin_id, versions, now_ms, err);
}

/* ---- validation of upstream data ---------------------------------------- */

/* 1 when id follows the rules of a plugin_id: one image component (lower
 * case letters, digits, single '.', '_', '-' separators), at most
 * PLUGIN_IMAGE_MAX characters. */
static int valid_plugin_id(const json_t *v)
{
    rd_error sub;
    const char *id = json_string_value(v);
    return id != NULL && json_string_length(v) == strlen(id) && plugin_check_id(id, &sub) == RD_OK;
}

rd_status remote_check_plugin(const json_t *p, rd_error *err)
{
    static const char *const strings[] = {"name", "image", "state", NULL};
    static const char *const objects[] = {"capability",      "template", "tags",
                                          "registry_config", "docs",     NULL};
    const char *image;
    char who[96] = "";
    rd_error sub;

    if (!json_is_object(p))
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (reason = a plugin is not an object)");
    if (!valid_plugin_id(json_object_get(p, "plugin_id")))
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (reason = plugin without a valid plugin_id)");
    snprintf(who, sizeof(who), ", plugin_id = %s",
             json_string_value(json_object_get(p, "plugin_id")));
    for (size_t i = 0; strings[i] != NULL; i++) {
        json_t *v = json_object_get(p, strings[i]);
        if (!json_is_string(v) || json_string_length(v) == 0)
            return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                           "Bad upstream response. (reason = plugin without %s%s)", strings[i],
                           who);
    }
    for (size_t i = 0; objects[i] != NULL; i++) {
        json_t *v = json_object_get(p, objects[i]);
        if (v != NULL && !json_is_object(v))
            return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                           "Bad upstream response. (reason = plugin %s is not an object%s)",
                           objects[i], who);
    }
    if (json_object_get(p, "labels") != NULL && !json_is_array(json_object_get(p, "labels")))
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (reason = plugin labels is not a list%s)", who);
    if (!json_is_string(json_object_get(p, "resource_type")) &&
        !json_is_string(json_object_get(p, "service_type")))
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (reason = plugin without resource_type%s)", who);
    image = json_string_value(json_object_get(p, "image"));
    if (plugin_check_image(image, &sub) != RD_OK)
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (reason = plugin with an invalid image%s)", who);
    return RD_OK;
}

rd_status remote_status_get(store *st, const char *repository_id, json_t **out, rd_error *err)
{
    char key[KEY_MAX];
    size_t klen = store_key(key, KEY_MAX, "S", repository_id, NULL);
    return store_get_json(st, STORE_CF_CACHE, key, klen, out, err);
}

rd_status remote_status_put(store *st, const char *repository_id, const json_t *status,
                            rd_error *err)
{
    char key[KEY_MAX];
    size_t klen = store_key(key, KEY_MAX, "S", repository_id, NULL);
    return store_put_json(st, STORE_CF_CACHE, key, klen, status, err);
}

rd_status remote_tags_forget(store *st, const char *domain_id, const char *plugin_id, rd_error *err)
{
    char key[KEY_MAX];
    size_t klen = store_key(key, KEY_MAX, "T", domain_id, plugin_id, NULL);
    if (klen == 0)
        return RD_OK;
    return store_delete(st, STORE_CF_CACHE, key, klen, err);
}
