/*
 * store.h - the persistent key/value store (RocksDB) under everything repod
 * keeps: repositories, local plugins, mirrored catalogs, caches, indexes.
 *
 * Data is split into column families by kind (store_cf).  Every change is a
 * store_batch written atomically with a synced WAL, so an acknowledged write
 * survives kill -9.  A store is safe to use from many threads at once.
 *
 * Errors from RocksDB are logged with their text and reported to callers as
 * RD_ERR_INTERNAL with a generic message (never a path or library message).
 */
#ifndef REPOD_STORE_H
#define REPOD_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef enum {
    STORE_CF_META = 0, /* "default": small singletons (schema version, local repository id) */
    STORE_CF_REPOS,    /* repository_id -> RepositoryInfo record */
    STORE_CF_PLUGINS,  /* store_plugin_key() -> plugin record */
    STORE_CF_INDEX,    /* secondary indexes */
    STORE_CF_CACHE,    /* mirrored remote data and version lists */
    STORE_CF_COUNT
} store_cf;

typedef struct store store;
typedef struct store_batch store_batch;

/* Opens (creating if needed) the database in dir.  *out owns it until
 * store_close().  Fails with RD_ERR_INTERNAL and a start-up message for the
 * operator naming dir (never sent to clients; RocksDB's text goes to the
 * log only). */
rd_status store_open(const char *dir, store **out, rd_error *err);

/* RocksDB's memory (config keys store.block_cache_mb, store.write_buffer_mb):
 * block_cache_mb is one LRU cache shared by every column family, holding
 * data blocks and the tables' index and filter blocks; write_buffer_mb
 * bounds all memtables together (each column family's to half of it). */
#define STORE_BLOCK_CACHE_MB_DEFAULT  32
#define STORE_WRITE_BUFFER_MB_DEFAULT 64
typedef struct {
    int64_t block_cache_mb;  /* 1..65536 */
    int64_t write_buffer_mb; /* 2..65536 */
} store_options;

/* store_open with these sizes (store_open uses the defaults). */
rd_status store_open_with(const char *dir, const store_options *o, store **out, rd_error *err);

/* Flushes and closes; NULL is a no-op. */
void store_close(store *st);

/* Checks, without creating or locking anything, that store_open(dir) can
 * work: dir is a writable folder (or can be created: its nearest existing
 * parent is a writable folder) and no other process holds the database's
 * LOCK file (a running repod).  Returns 0, or -1 with the reason in
 * reason[0..n).  Never call it on the folder of a store this process has
 * open (closing the probe would drop the process's own lock). */
int store_check_dir(const char *dir, char *reason, size_t n);

/* What a folder held before a first store_open, so that a start that fails
 * can take back what it created. */
typedef struct store_undo store_undo;

/* Notes what dir holds now (NULL when out of memory).  The undo is empty
 * (store_undo_apply does nothing) when dir already holds a database. */
store_undo *store_undo_begin(const char *dir);

/* Removes everything created in dir since store_undo_begin (dir itself
 * when it did not exist).  Call after store_close. */
void store_undo_apply(const store_undo *u);

void store_undo_free(store_undo *u);

/* Reads key.  On success *val is a new malloc'd NUL-terminated copy (free
 * with free()), *vlen its length.  Missing key -> RD_ERR_NOT_FOUND (err
 * untouched). */
rd_status store_get(store *st, store_cf cf, const void *key, size_t klen, char **val, size_t *vlen,
                    rd_error *err);

/* Reads key and parses it as JSON: *out is a new reference. */
rd_status store_get_json(store *st, store_cf cf, const void *key, size_t klen, json_t **out,
                         rd_error *err);

/* A new empty batch for st (NULL on allocation failure). */
store_batch *store_batch_new(store *st);
void store_batch_free(store_batch *b);
void store_batch_put(store_batch *b, store_cf cf, const void *key, size_t klen, const void *val,
                     size_t vlen);
/* Serialises val (borrowed) compactly and queues a put; -1 if it cannot be
 * serialised. */
int store_batch_put_json(store_batch *b, store_cf cf, const void *key, size_t klen,
                         const json_t *val);
void store_batch_delete(store_batch *b, store_cf cf, const void *key, size_t klen);

/* Writes the batch atomically with a synced WAL.  The batch stays owned by
 * the caller. */
rd_status store_write(store *st, store_batch *b, rd_error *err);

/* Synced writes (each one fsync of the write-ahead log) since store_open. */
unsigned long long store_wal_syncs(store *st);

/* The size of the database summed over the column families: RocksDB's
 * estimate of live data ("rocksdb.estimate-live-data-size") and the bytes
 * of its SST files ("rocksdb.total-sst-files-size"), and the bytes of its
 * memtables, written but not yet flushed ("rocksdb.cur-size-all-mem-tables");
 * 0 when unknown. */
void store_size(store *st, uint64_t *live_data_bytes, uint64_t *sst_bytes,
                uint64_t *memtable_bytes);

/* One synced write of one key: put val (borrowed, serialised compactly) /
 * delete key.  Shorthands for a batch of one. */
rd_status store_put_json(store *st, store_cf cf, const void *key, size_t klen, const json_t *val,
                         rd_error *err);
rd_status store_delete(store *st, store_cf cf, const void *key, size_t klen, rd_error *err);

/* Called for each key with the prefix in order; return non-zero to stop. */
typedef int (*store_scan_fn)(void *ud, const char *key, size_t klen, const char *val, size_t vlen);

/* Iterates over every key starting with prefix (plen 0 = whole family).
 * Checks the iterator's error status at the end (RD_ERR_INTERNAL). */
rd_status store_scan(store *st, store_cf cf, const void *prefix, size_t plen, store_scan_fn fn,
                     void *ud, rd_error *err);

/* The same records, handled on nthreads (>= 1) threads at once: the
 * calling thread reads them in key order and hands them over in batches of
 * about 64 KB; thread i calls fn(uds[i], ...) on the records of the batches
 * it takes (each record goes to one thread; a thread sees its records in
 * key order, the threads' calls interleave).  A non-zero return stops the
 * scan (batches already taken by other threads are finished).  Returns
 * after every call has returned.  When no thread can be started, fn(uds[0],
 * ...) runs on the calling thread.  RD_ERR_INTERNAL on an iterator error or
 * when memory runs out. */
rd_status store_scan_parallel(store *st, store_cf cf, const void *prefix, size_t plen,
                              size_t nthreads, store_scan_fn fn, void *const *uds, rd_error *err);

/* Counts the keys starting with prefix (plen 0 = whole family) into *count. */
rd_status store_count(store *st, store_cf cf, const void *prefix, size_t plen, size_t *count,
                      rd_error *err);

/* Writes a consistent copy of the whole database into dir, which must not
 * exist (its parent must): a RocksDB checkpoint (SST files hard-linked
 * when dir is on the same file system, else copied).  Holds every write
 * acknowledged before the call; writes may go on meanwhile.
 * RD_ERR_INTERNAL on failure (the reason in the log). */
rd_status store_checkpoint(store *st, const char *dir, rd_error *err);

/* Builds a composite key "part1\0part2\0...": writes at most size bytes into
 * buf and returns the key length (without a trailing NUL), or 0 if it does
 * not fit.  The list of parts ends with NULL. */
size_t store_key(char *buf, size_t size, ...) __attribute__((sentinel));

#endif
