/*
 * remote_catalog.c - a remote repository's mirrored catalog in the store:
 * its generations, a new catalog staged page by page and swapped in with
 * one small write, and the removal of generations nobody reads any more.
 *
 * Keys (STORE_CF_CACHE; <C>, <M>, <G> are the resource's kinds, e.g. "C",
 * "DC"):
 *   "<M>\0<repo>"                  -> {"fetched_at", "count", "gen"}
 *   "<C>\0<repo>#<gen>\0<id>"      -> a record of generation gen (16 hex)
 *   "<C>\0<repo>\0<id>"            -> a record of generation 0: a catalog
 *                                     stamped without "gen" (written before
 *                                     generations), or records fetched on
 *                                     their own before any sync
 *   "<G>\0<repo>"                  -> {"gen": g}: generation g may be
 *                                     staged; the repository may hold
 *                                     generations other than its stamp's
 * Readers follow the stamp's gen, so a generation being staged is never
 * seen; the stamp moves in one synced write (with the negative answers of
 * ids the new catalog holds) and the old generation is then deleted in
 * bounded batches.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "remote.h"
#include "remote_catalog.h"

#define KEY_MAX     1024
#define DELETE_EACH 1000 /* deletes per write when a generation is dropped */

const char *remote_kind(const resource_desc *res, char letter, char *buf, size_t size)
{
    snprintf(buf, size, "%s%c", res->cache_prefix != NULL ? res->cache_prefix : "", letter);
    return buf;
}

/* The repository part of generation gen's keys: "<repo>" for 0, else
 * "<repo>#<gen>". */
static const char *gen_owner(const char *repository_id, uint64_t gen, char *buf, size_t size)
{
    if (gen == 0)
        snprintf(buf, size, "%s", repository_id);
    else
        snprintf(buf, size, "%s#%016llx", repository_id, (unsigned long long)gen);
    return buf;
}

/* The key of record id in generation gen (0 when it does not fit). */
static size_t gen_key(const resource_desc *res, const char *repository_id, uint64_t gen,
                      const char *id, char *key)
{
    char kind[8], owner[KEY_MAX / 4];
    return store_key(key, KEY_MAX, remote_kind(res, 'C', kind, sizeof(kind)),
                     gen_owner(repository_id, gen, owner, sizeof(owner)), id, NULL);
}

/* The prefix of every key of generation gen ("<C>\0<owner>\0"). */
static size_t gen_prefix(const resource_desc *res, const char *repository_id, uint64_t gen,
                         char *key)
{
    return gen_key(res, repository_id, gen, "", key);
}

static uint64_t gen_of(const json_t *v)
{
    json_int_t g = json_integer_value(json_object_get(v, "gen"));
    return g > 0 ? (uint64_t)g : 0;
}

/* Reads the stamp: *gen (0 when none or without gen), *fetched_at_ms.
 * RD_ERR_NOT_FOUND when never synced. */
static rd_status stamp_read(const resource_desc *res, store *st, const char *repository_id,
                            uint64_t *gen, int64_t *fetched_at_ms, rd_error *err)
{
    char key[KEY_MAX], kind[8];
    json_t *v = NULL;
    size_t klen =
        store_key(key, KEY_MAX, remote_kind(res, 'M', kind, sizeof(kind)), repository_id, NULL);
    rd_status rc =
        klen == 0 ? RD_ERR_NOT_FOUND : store_get_json(st, STORE_CF_CACHE, key, klen, &v, err);
    *gen = 0;
    if (rc == RD_OK) {
        *gen = gen_of(v);
        if (fetched_at_ms != NULL)
            *fetched_at_ms = (int64_t)json_integer_value(json_object_get(v, "fetched_at"));
    }
    json_decref(v);
    return rc;
}

/* The generation readers follow (0 when never synced or on a store error,
 * which the read that follows reports). */
static uint64_t current_gen(const resource_desc *res, store *st, const char *repository_id)
{
    uint64_t gen = 0;
    rd_error e;
    stamp_read(res, st, repository_id, &gen, NULL, &e);
    return gen;
}

static size_t marker_key(const resource_desc *res, const char *repository_id, char *key)
{
    char kind[8];
    return store_key(key, KEY_MAX, remote_kind(res, 'G', kind, sizeof(kind)), repository_id, NULL);
}

/* ---- reads ----------------------------------------------------------------- */

rd_status remote_item_get(const resource_desc *res, store *st, const char *repository_id,
                          const char *id, json_t **out, rd_error *err)
{
    char key[KEY_MAX];
    uint64_t gen = current_gen(res, st, repository_id), again;
    size_t klen = gen_key(res, repository_id, gen, id, key);
    rd_status rc;
    if (klen == 0)
        return RD_ERR_NOT_FOUND;
    rc = store_get_json(st, STORE_CF_CACHE, key, klen, out, err);
    /* a sync swapped generations between the two reads: read the new one */
    if (rc == RD_ERR_NOT_FOUND && (again = current_gen(res, st, repository_id)) != gen &&
        (klen = gen_key(res, repository_id, again, id, key)) != 0)
        rc = store_get_json(st, STORE_CF_CACHE, key, klen, out, err);
    return rc;
}

rd_status remote_plugin_get(store *st, const char *repository_id, const char *plugin_id,
                            json_t **out, rd_error *err)
{
    return remote_item_get(&resource_plugin, st, repository_id, plugin_id, out, err);
}

typedef struct {
    json_t *arr;
    size_t plen;
} load_state;

static int load_one(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    load_state *ls = ud;
    json_t *rec;
    (void)key;
    (void)klen;
    rec = json_loadb(val, vlen, 0, NULL);
    if (rec != NULL)
        json_array_append_new(ls->arr, rec);
    else
        LOG_WARN("remote: skipping a corrupt cached plugin");
    return 0;
}

rd_status remote_res_catalog_load(const resource_desc *res, store *st, const char *repository_id,
                                  json_t *arr, int64_t *fetched_at_ms, rd_error *err)
{
    char prefix[KEY_MAX];
    load_state ls = {arr, 0};
    uint64_t gen = 0;
    int64_t at = 0;
    rd_status rc = stamp_read(res, st, repository_id, &gen, &at, err);
    if (rc != RD_OK)
        return rc;
    ls.plen = gen_prefix(res, repository_id, gen, prefix);
    rc = store_scan(st, STORE_CF_CACHE, prefix, ls.plen, load_one, &ls, err);
    if (rc == RD_OK && fetched_at_ms != NULL)
        *fetched_at_ms = at;
    return rc;
}

rd_status remote_catalog_load(store *st, const char *repository_id, json_t *arr,
                              int64_t *fetched_at_ms, rd_error *err)
{
    return remote_res_catalog_load(&resource_plugin, st, repository_id, arr, fetched_at_ms, err);
}

/* ---- one record fetched on its own ------------------------------------------ */

rd_status remote_plugin_put(store *st, const char *repository_id, const json_t *plugin,
                            int64_t now_ms, rd_error *err)
{
    return remote_item_put(&resource_plugin, st, repository_id, plugin, now_ms, err);
}

rd_status remote_item_put(const resource_desc *res, store *st, const char *repository_id,
                          const json_t *plugin, int64_t now_ms, rd_error *err)
{
    char key[KEY_MAX], kind[8];
    const char *pid = json_string_value(json_object_get(plugin, res->id_field));
    store_batch *b;
    json_t *stamp;
    size_t klen;
    rd_status rc;
    if (pid == NULL ||
        (klen = gen_key(res, repository_id, current_gen(res, st, repository_id), pid, key)) == 0)
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE, "Bad upstream response.");
    b = store_batch_new(st);
    if (b == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    store_batch_put_json(b, STORE_CF_CACHE, key, klen, plugin);
    klen = store_key(key, KEY_MAX, remote_kind(res, 'N', kind, sizeof(kind)), repository_id, pid,
                     NULL);
    store_batch_delete(b, STORE_CF_CACHE, key, klen);
    stamp = json_pack("{s:I}", "fetched_at", (json_int_t)now_ms);
    klen = store_key(key, KEY_MAX, remote_kind(res, 'P', kind, sizeof(kind)), repository_id, pid,
                     NULL);
    store_batch_put_json(b, STORE_CF_CACHE, key, klen, stamp);
    json_decref(stamp);
    rc = store_write(st, b, err);
    store_batch_free(b);
    return rc;
}

/* ---- dropping generations ------------------------------------------------ */

typedef struct {
    store *st;
    store_batch *b;
    size_t queued;
    size_t dropped; /* keys deleted in all */
    size_t plen;
    const char *keep; /* keys whose rest starts with keep are kept (NULL: none) */
    size_t keep_len;
    rd_status rc;
    rd_error *err;
} drop_state;

/* Writes the deletes queued so far; 0, or -1 (ds->rc) on failure. */
static int drop_flush(drop_state *ds)
{
    if (ds->queued == 0)
        return 0;
    ds->rc = store_write(ds->st, ds->b, ds->err);
    store_batch_free(ds->b);
    ds->b = store_batch_new(ds->st);
    ds->queued = 0;
    if (ds->rc == RD_OK && ds->b == NULL)
        ds->rc = rd_fail(ds->err, RD_ERR_INTERNAL, "out of memory");
    return ds->rc == RD_OK ? 0 : -1;
}

static int drop_one(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    drop_state *ds = ud;
    (void)val;
    (void)vlen;
    if (ds->keep != NULL && klen >= ds->plen + ds->keep_len &&
        memcmp(key + ds->plen, ds->keep, ds->keep_len) == 0)
        return 0;
    store_batch_delete(ds->b, STORE_CF_CACHE, key, klen);
    ds->dropped++;
    if (++ds->queued >= DELETE_EACH)
        return drop_flush(ds);
    return 0;
}

/* Deletes every key with prefix[0..plen) except those whose rest starts
 * with keep (NULL: none), DELETE_EACH a write; adds their number to
 * *dropped (may be NULL). */
static rd_status drop_prefix(store *st, const char *prefix, size_t plen, const char *keep,
                             size_t *dropped, rd_error *err)
{
    drop_state ds = {st,   store_batch_new(st),     0,     0,  plen,
                     keep, keep ? strlen(keep) : 0, RD_OK, err};
    rd_status rc;
    if (ds.b == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    rc = store_scan(st, STORE_CF_CACHE, prefix, plen, drop_one, &ds, err);
    if (rc == RD_OK)
        rc = ds.rc;
    if (rc == RD_OK && drop_flush(&ds) != 0)
        rc = ds.rc;
    if (dropped != NULL)
        *dropped += ds.dropped;
    store_batch_free(ds.b);
    return rc;
}

/* Deletes generation gen of the repository's records. */
static rd_status drop_gen(const resource_desc *res, store *st, const char *repository_id,
                          uint64_t gen, size_t *dropped, rd_error *err)
{
    char prefix[KEY_MAX];
    size_t plen = gen_prefix(res, repository_id, gen, prefix);
    return plen == 0 ? RD_OK : drop_prefix(st, prefix, plen, NULL, dropped, err);
}

rd_status remote_res_catalog_sweep(const resource_desc *res, store *st, const char *repository_id,
                                   rd_error *err)
{
    char key[KEY_MAX], prefix[KEY_MAX], kind[8], keep[40];
    size_t klen = marker_key(res, repository_id, key), plen;
    uint64_t gen = 0;
    int64_t at;
    char *val = NULL;
    size_t vlen, dropped = 0;
    rd_status rc = store_get(st, STORE_CF_CACHE, key, klen, &val, &vlen, err);
    free(val);
    if (rc == RD_ERR_NOT_FOUND)
        return RD_OK; /* nothing but the stamp's generation */
    if (rc != RD_OK)
        return rc;
    rc = stamp_read(res, st, repository_id, &gen, &at, err);
    if (rc != RD_OK && rc != RD_ERR_NOT_FOUND)
        return rc;
    /* every "<C>\0<repo>#<g>\0" but the stamp's */
    plen =
        store_key(prefix, KEY_MAX, remote_kind(res, 'C', kind, sizeof(kind)), repository_id, NULL);
    if (plen == 0 || plen + 1 >= KEY_MAX)
        return RD_OK;
    prefix[plen++] = '#';
    snprintf(keep, sizeof(keep), "%016llx", (unsigned long long)gen);
    rc = drop_prefix(st, prefix, plen, gen != 0 ? keep : NULL, &dropped, err);
    if (rc == RD_OK && gen != 0) /* and generation 0 when the stamp names another */
        rc = drop_gen(res, st, repository_id, 0, &dropped, err);
    if (rc == RD_OK)
        rc = store_delete(st, STORE_CF_CACHE, key, klen, err);
    if (rc == RD_OK)
        LOG_INFO("remote: removed %zu cached %s of %s that its catalog does not hold "
                 "(left by an unfinished catalog sync)",
                 dropped, res->plural, repository_id);
    return rc;
}

/* ---- a new catalog ------------------------------------------------------- */

struct remote_catalog_txn {
    const resource_desc *res;
    store *st;
    char repository_id[KEY_MAX / 4];
    uint64_t old_gen, gen; /* the stamp's; the one staged */
    int clean;             /* no marker when begun: a failed sync may drop it */
    int staged;            /* some page was written */
    int committed;
    store_batch *b; /* the records queued since the last flush */
    size_t queued;  /* in b */
    json_t *seen;   /* id -> true: every id queued */
};

remote_catalog_txn *remote_res_catalog_begin(const resource_desc *res, store *st,
                                             const char *repository_id)
{
    remote_catalog_txn *t = calloc(1, sizeof(*t));
    char key[KEY_MAX];
    json_t *marker = NULL;
    rd_error e;
    size_t klen;
    if (t == NULL)
        return NULL;
    t->res = res;
    t->st = st;
    snprintf(t->repository_id, sizeof(t->repository_id), "%s", repository_id);
    /* what an earlier sync left behind (it failed, or the process died) */
    if (remote_res_catalog_sweep(res, st, repository_id, &e) != RD_OK)
        LOG_WARN("remote: catalog of %s: cannot remove an older sync's records: %s", repository_id,
                 e.message);
    klen = marker_key(res, repository_id, key);
    t->clean = store_get_json(st, STORE_CF_CACHE, key, klen, &marker, &e) == RD_ERR_NOT_FOUND;
    stamp_read(res, st, repository_id, &t->old_gen, NULL, &e);
    t->gen = (t->old_gen > gen_of(marker) ? t->old_gen : gen_of(marker)) + 1;
    json_decref(marker);
    t->b = store_batch_new(st);
    t->seen = json_object();
    if (t->b == NULL || t->seen == NULL) {
        remote_catalog_free(t);
        return NULL;
    }
    return t;
}

remote_catalog_txn *remote_catalog_begin(store *st, const char *repository_id)
{
    return remote_res_catalog_begin(&resource_plugin, st, repository_id);
}

int remote_catalog_add(remote_catalog_txn *t, const json_t *plugin)
{
    char key[KEY_MAX];
    const char *pid = json_string_value(json_object_get(plugin, t->res->id_field));
    size_t klen = pid != NULL ? gen_key(t->res, t->repository_id, t->gen, pid, key) : 0;
    int fresh;
    if (klen == 0)
        return -1;
    if (store_batch_put_json(t->b, STORE_CF_CACHE, key, klen, plugin) != 0)
        return -1;
    t->queued++;
    fresh = json_object_get(t->seen, pid) == NULL;
    if (fresh && json_object_set_new(t->seen, pid, json_true()) != 0)
        return -1;
    return fresh;
}

rd_status remote_catalog_flush(remote_catalog_txn *t, rd_error *err)
{
    char key[KEY_MAX];
    json_t *marker;
    size_t klen;
    rd_status rc;
    if (t->queued == 0)
        return RD_OK;
    /* with every page: a repository deleted meanwhile loses its marker */
    marker = json_pack("{s:I}", "gen", (json_int_t)t->gen);
    klen = marker_key(t->res, t->repository_id, key);
    if (marker == NULL || store_batch_put_json(t->b, STORE_CF_CACHE, key, klen, marker) != 0) {
        json_decref(marker);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    json_decref(marker);
    rc = store_write(t->st, t->b, err);
    store_batch_free(t->b);
    t->b = store_batch_new(t->st);
    t->queued = 0;
    t->staged = 1;
    if (rc == RD_OK && t->b == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    return rc;
}

store *remote_catalog_store(const remote_catalog_txn *t)
{
    return t->st;
}

size_t remote_catalog_size(const remote_catalog_txn *t)
{
    return json_object_size(t->seen);
}

json_t *remote_catalog_records(remote_catalog_txn *t)
{
    return t->seen;
}

typedef struct {
    remote_catalog_txn *t;
    store_batch *b;
    size_t plen;
} negatives_state;

/* Queues the delete of a negative answer for an id the new catalog holds. */
static int drop_negative(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    negatives_state *ns = ud;
    char id[KEY_MAX];
    size_t n = klen - ns->plen;
    (void)val;
    (void)vlen;
    if (klen <= ns->plen || n >= sizeof(id))
        return 0;
    memcpy(id, key + ns->plen, n);
    id[n] = '\0';
    if (json_object_get(ns->t->seen, id) != NULL)
        store_batch_delete(ns->b, STORE_CF_CACHE, key, klen);
    return 0;
}

rd_status remote_catalog_commit(remote_catalog_txn *t, int64_t now_ms, rd_error *err)
{
    char key[KEY_MAX], kind[8];
    store_batch *b = NULL;
    json_t *meta = NULL;
    negatives_state ns = {t, NULL, 0};
    size_t klen;
    rd_status rc = remote_catalog_flush(t, err);

    if (rc != RD_OK)
        goto done;
    ns.b = b = store_batch_new(t->st);
    if (b == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    ns.plen = store_key(key, KEY_MAX, remote_kind(t->res, 'N', kind, sizeof(kind)),
                        t->repository_id, "", NULL);
    rc = store_scan(t->st, STORE_CF_CACHE, key, ns.plen, drop_negative, &ns, err);
    if (rc != RD_OK)
        goto done;
    meta = json_pack("{s:I, s:I, s:I}", "fetched_at", (json_int_t)now_ms, "count",
                     (json_int_t)json_object_size(t->seen), "gen", (json_int_t)t->gen);
    klen = store_key(key, KEY_MAX, remote_kind(t->res, 'M', kind, sizeof(kind)), t->repository_id,
                     NULL);
    if (meta == NULL || store_batch_put_json(b, STORE_CF_CACHE, key, klen, meta) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    rc = store_write(t->st, b, err); /* the swap: readers follow the new stamp */
    if (rc != RD_OK)
        goto done;
    t->committed = 1; /* remote_catalog_free drops the old generation */
done:
    json_decref(meta);
    store_batch_free(b);
    return rc;
}

/* After a commit: the old generation goes (alone when the sync began
 * clean, else with whatever an earlier sync left).  After a failure: what
 * this sync wrote goes. */
static void cleanup(remote_catalog_txn *t)
{
    char key[KEY_MAX];
    size_t klen = marker_key(t->res, t->repository_id, key);
    rd_error e;
    rd_status rc = RD_OK;
    if (t->committed && !t->clean)
        rc = remote_res_catalog_sweep(t->res, t->st, t->repository_id, &e);
    else if (t->committed || t->staged) {
        rc =
            drop_gen(t->res, t->st, t->repository_id, t->committed ? t->old_gen : t->gen, NULL, &e);
        if (rc == RD_OK && t->clean)
            rc = store_delete(t->st, STORE_CF_CACHE, key, klen, &e);
    }
    if (rc != RD_OK)
        LOG_WARN("remote: catalog of %s: %s records stay until the next sync: %s", t->repository_id,
                 t->committed ? "the old catalog's" : "a failed sync's", e.message);
}

void remote_catalog_free(remote_catalog_txn *t)
{
    if (t == NULL)
        return;
    cleanup(t);
    store_batch_free(t->b);
    json_decref(t->seen);
    free(t);
}
