/*
 * store.c - RocksDB-backed store: column families, synced batches, scans.
 */
#include "store.h"
#include "store-internal.h"

#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const char *const cf_names[STORE_CF_COUNT] = {"default", "repos", "plugins", "index",
                                                     "cache"};

struct store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_cache_t *cache;                     /* shared by every column family */
    rocksdb_block_based_table_options_t *table; /* uses cache */
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_column_family_handle_t *cf[STORE_CF_COUNT];
    atomic_ullong wal_syncs; /* synced writes done (metrics) */
};

struct store_batch {
    store *st;
    rocksdb_writebatch_t *wb;
    int failed;
};

/* Logs a RocksDB error, frees it and reports a generic internal error. */
static rd_status store_error(char **errptr, const char *what, rd_error *err)
{
    LOG_ERROR("store: %s failed: %s", what, *errptr ? *errptr : "unknown error");
    free(*errptr);
    *errptr = NULL;
    return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = storage failure)");
}

/* Sizes RocksDB's memory for a read-mostly server (docs/read-model.md,
 * "Memory of the server"): one LRU block cache for every column family that
 * also holds the tables' index and filter blocks (so table readers do not
 * grow outside it), and memtables bounded per column family and in all. */
static int size_memory(store *st, const store_options *o)
{
    size_t cache = (size_t)o->block_cache_mb << 20, wbuf = (size_t)o->write_buffer_mb << 20;
    st->cache = rocksdb_cache_create_lru(cache);
    st->table = rocksdb_block_based_options_create();
    if (st->cache == NULL || st->table == NULL)
        return -1;
    rocksdb_block_based_options_set_block_cache(st->table, st->cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(st->table, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(st->table, 1);
    rocksdb_options_set_block_based_table_factory(st->opts, st->table);
    /* each column family's memtable up to write_buffer_mb / 2, all of them
     * together up to write_buffer_mb (a flush starts when either is hit) */
    rocksdb_options_set_write_buffer_size(st->opts, wbuf / 2 > 0 ? wbuf / 2 : wbuf);
    rocksdb_options_set_max_write_buffer_number(st->opts, 2);
    rocksdb_options_set_db_write_buffer_size(st->opts, wbuf);
    return 0;
}

rd_status store_open(const char *dir, store **out, rd_error *err)
{
    store_options o = {STORE_BLOCK_CACHE_MB_DEFAULT, STORE_WRITE_BUFFER_MB_DEFAULT};
    return store_open_with(dir, &o, out, err);
}

rd_status store_open_with(const char *dir, const store_options *o, store **out, rd_error *err)
{
    store *st = NULL;
    char *errptr = NULL;
    rocksdb_options_t *cf_opts[STORE_CF_COUNT];
    rd_status rc = RD_OK;

    *out = NULL;
    if (util_mkdir_p(dir) != 0)
        return rd_fail(err, RD_ERR_INTERNAL, "cannot create data directory %s", dir);
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    st->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(st->opts, 1);
    rocksdb_options_set_create_missing_column_families(st->opts, 1);
    rocksdb_options_increase_parallelism(st->opts, 2);
    rocksdb_options_set_keep_log_file_num(st->opts, 4);
    if (size_memory(st, o) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (int i = 0; i < STORE_CF_COUNT; i++)
        cf_opts[i] = st->opts;
    st->db =
        rocksdb_open_column_families(st->opts, dir, STORE_CF_COUNT, cf_names,
                                     (const rocksdb_options_t *const *)cf_opts, st->cf, &errptr);
    if (errptr != NULL) {
        LOG_ERROR("store: open %s: %s", dir, errptr);
        free(errptr);
        rc = rd_fail(err, RD_ERR_INTERNAL, "cannot open the database in %s", dir);
        goto done;
    }
    st->ropts = rocksdb_readoptions_create();
    st->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(st->wopts, 1);
    *out = st;
    st = NULL;
done:
    if (st != NULL) {
        rocksdb_options_destroy(st->opts);
        if (st->table != NULL)
            rocksdb_block_based_options_destroy(st->table);
        if (st->cache != NULL)
            rocksdb_cache_destroy(st->cache);
        free(st);
    }
    return rc;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    if (st->db != NULL) {
        char *errptr = NULL;
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (int i = 0; i < STORE_CF_COUNT; i++) {
            rocksdb_flush_cf(st->db, fo, st->cf[i], &errptr);
            if (errptr != NULL) {
                LOG_WARN("store: flush: %s", errptr);
                free(errptr);
                errptr = NULL;
            }
        }
        rocksdb_flushoptions_destroy(fo);
        for (int i = 0; i < STORE_CF_COUNT; i++)
            rocksdb_column_family_handle_destroy(st->cf[i]);
        rocksdb_close(st->db);
    }
    rocksdb_readoptions_destroy(st->ropts);
    rocksdb_writeoptions_destroy(st->wopts);
    rocksdb_options_destroy(st->opts);
    rocksdb_block_based_options_destroy(st->table);
    rocksdb_cache_destroy(st->cache);
    free(st);
}

rd_status store_get(store *st, store_cf cf, const void *key, size_t klen, char **val, size_t *vlen,
                    rd_error *err)
{
    char *errptr = NULL;
    size_t len = 0;
    char *raw = rocksdb_get_cf(st->db, st->ropts, st->cf[cf], key, klen, &len, &errptr);
    if (errptr != NULL)
        return store_error(&errptr, "get", err);
    if (raw == NULL)
        return RD_ERR_NOT_FOUND;
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        rocksdb_free(raw);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    memcpy(copy, raw, len);
    copy[len] = '\0';
    rocksdb_free(raw);
    *val = copy;
    if (vlen != NULL)
        *vlen = len;
    return RD_OK;
}

rd_status store_get_json(store *st, store_cf cf, const void *key, size_t klen, json_t **out,
                         rd_error *err)
{
    char *val = NULL;
    size_t vlen = 0;
    json_error_t jerr;
    rd_status rc = store_get(st, cf, key, klen, &val, &vlen, err);
    if (rc != RD_OK)
        return rc;
    *out = json_loadb(val, vlen, JSON_DECODE_ANY, &jerr);
    free(val);
    if (*out == NULL) {
        LOG_ERROR("store: corrupt JSON record: %s", jerr.text);
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = corrupt record)");
    }
    return RD_OK;
}

store_batch *store_batch_new(store *st)
{
    store_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->st = st;
    b->wb = rocksdb_writebatch_create();
    return b;
}

void store_batch_free(store_batch *b)
{
    if (b == NULL)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void store_batch_put(store_batch *b, store_cf cf, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    rocksdb_writebatch_put_cf(b->wb, b->st->cf[cf], key, klen, val, vlen);
}

int store_batch_put_json(store_batch *b, store_cf cf, const void *key, size_t klen,
                         const json_t *val)
{
    char *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
    json_free_t jfree = free;
    if (text == NULL) {
        b->failed = 1;
        return -1;
    }
    store_batch_put(b, cf, key, klen, text, strlen(text));
    json_get_alloc_funcs(NULL, &jfree); /* jansson's, which may not be free() */
    jfree(text);
    return 0;
}

void store_batch_delete(store_batch *b, store_cf cf, const void *key, size_t klen)
{
    rocksdb_writebatch_delete_cf(b->wb, b->st->cf[cf], key, klen);
}

rd_status store_write(store *st, store_batch *b, rd_error *err)
{
    char *errptr = NULL;
    if (b->failed)
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = cannot encode record)");
    rocksdb_write(st->db, st->wopts, b->wb, &errptr);
    if (errptr != NULL)
        return store_error(&errptr, "write", err);
    atomic_fetch_add_explicit(&st->wal_syncs, 1, memory_order_relaxed);
    return RD_OK;
}

unsigned long long store_wal_syncs(store *st)
{
    return atomic_load_explicit(&st->wal_syncs, memory_order_relaxed);
}

/* The sum of an integer property over every column family. */
static uint64_t property_sum(store *st, const char *name)
{
    uint64_t sum = 0;
    for (int i = 0; i < STORE_CF_COUNT; i++) {
        char *v = rocksdb_property_value_cf(st->db, st->cf[i], name);
        if (v != NULL)
            sum += strtoull(v, NULL, 10);
        rocksdb_free(v);
    }
    return sum;
}

void store_size(store *st, uint64_t *live_data_bytes, uint64_t *sst_bytes, uint64_t *memtable_bytes)
{
    *live_data_bytes = property_sum(st, "rocksdb.estimate-live-data-size");
    *sst_bytes = property_sum(st, "rocksdb.total-sst-files-size");
    *memtable_bytes = property_sum(st, "rocksdb.cur-size-all-mem-tables");
}

rd_status store_put_json(store *st, store_cf cf, const void *key, size_t klen, const json_t *val,
                         rd_error *err)
{
    store_batch *b = store_batch_new(st);
    rd_status rc;
    if (b == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    store_batch_put_json(b, cf, key, klen, val);
    rc = store_write(st, b, err);
    store_batch_free(b);
    return rc;
}

rd_status store_delete(store *st, store_cf cf, const void *key, size_t klen, rd_error *err)
{
    store_batch *b = store_batch_new(st);
    rd_status rc;
    if (b == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    store_batch_delete(b, cf, key, klen);
    rc = store_write(st, b, err);
    store_batch_free(b);
    return rc;
}

/* store-internal.h: read options and an iterator over the keys starting with prefix (plen 0
 * = whole family), positioned at the first; *upper is the bound the
 * options point to (free it after destroying both).  -1 when memory runs
 * out (nothing to free then). */
int store_iter_open(store *st, store_cf cf, const void *prefix, size_t plen,
                    rocksdb_readoptions_t **ro, rocksdb_iterator_t **it, char **upper)
{
    size_t ulen = 0;
    *it = NULL;
    *upper = NULL;
    if ((*ro = rocksdb_readoptions_create()) == NULL)
        return -1;
    /* Upper bound = prefix with its last non-0xff byte incremented; the
     * buffer must outlive the iterator. */
    if (plen > 0) {
        if ((*upper = malloc(plen)) == NULL) {
            rocksdb_readoptions_destroy(*ro);
            *ro = NULL;
            return -1;
        }
        memcpy(*upper, prefix, plen);
        ulen = plen;
        while (ulen > 0 && (unsigned char)(*upper)[ulen - 1] == 0xff)
            ulen--;
        if (ulen > 0) {
            (*upper)[ulen - 1] = (char)((unsigned char)(*upper)[ulen - 1] + 1);
            rocksdb_readoptions_set_iterate_upper_bound(*ro, *upper, ulen);
        }
    }
    /* a scan reads each block once (the read model's build reads them all):
     * it does not push the point reads' blocks out of the cache */
    rocksdb_readoptions_set_fill_cache(*ro, 0);
    *it = rocksdb_create_iterator_cf(st->db, *ro, st->cf[cf]);
    if (plen > 0)
        rocksdb_iter_seek(*it, prefix, plen);
    else
        rocksdb_iter_seek_to_first(*it);
    return 0;
}

rd_status store_iter_status(rocksdb_iterator_t *it, rd_error *err)
{
    char *errptr = NULL;
    rocksdb_iter_get_error(it, &errptr);
    return errptr != NULL ? store_error(&errptr, "scan", err) : RD_OK;
}

rd_status store_scan(store *st, store_cf cf, const void *prefix, size_t plen, store_scan_fn fn,
                     void *ud, rd_error *err)
{
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    char *upper = NULL;
    rd_status rc = RD_OK;

    if (store_iter_open(st, cf, prefix, plen, &ro, &it, &upper) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (plen > 0 && (klen < plen || memcmp(k, prefix, plen) != 0))
            break;
        if (fn(ud, k, klen, v, vlen) != 0)
            break;
    }
    rc = store_iter_status(it, err);
done:
    if (it != NULL)
        rocksdb_iter_destroy(it);
    if (ro != NULL)
        rocksdb_readoptions_destroy(ro);
    free(upper);
    return rc;
}

static int count_key(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (*(size_t *)ud)++;
    return 0;
}

rd_status store_count(store *st, store_cf cf, const void *prefix, size_t plen, size_t *count,
                      rd_error *err)
{
    *count = 0;
    return store_scan(st, cf, prefix, plen, count_key, count, err);
}

size_t store_key(char *buf, size_t size, ...)
{
    va_list ap;
    size_t n = 0;
    const char *part;
    int first = 1;

    va_start(ap, size);
    while ((part = va_arg(ap, const char *)) != NULL) {
        size_t len = strlen(part);
        if (!first) {
            if (n + 1 > size)
                goto overflow;
            buf[n++] = '\0';
        }
        if (n + len > size)
            goto overflow;
        memcpy(buf + n, part, len);
        n += len;
        first = 0;
    }
    va_end(ap);
    return n;
overflow:
    va_end(ap);
    return 0;
}

rd_status store_checkpoint(store *st, const char *dir, rd_error *err)
{
    char *errptr = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(st->db, &errptr);
    rd_status rc = RD_OK;

    if (errptr != NULL) {
        rc = store_error(&errptr, "checkpoint", err);
        goto done;
    }
    /* log_size_for_flush 0: the memtables are always flushed first, so the
     * checkpoint holds every write acknowledged before this call. */
    rocksdb_checkpoint_create(cp, dir, 0, &errptr);
    if (errptr != NULL)
        rc = store_error(&errptr, "checkpoint", err);
done:
    if (cp != NULL)
        rocksdb_checkpoint_object_destroy(cp);
    return rc;
}
