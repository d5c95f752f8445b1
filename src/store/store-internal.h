/*
 * store-internal.h - private pieces of the store shared by its files
 * (src/store/ only): opening a bounded iterator and checking its status.
 */
#ifndef REPOD_STORE_INTERNAL_H
#define REPOD_STORE_INTERNAL_H

#include <rocksdb/c.h>

#include "store.h"

/* Read options and an iterator over the keys of cf starting with prefix
 * (plen 0 = whole family), positioned at the first, blocks not added to
 * the cache; *upper is the bound the options point to.  Destroy the
 * iterator, then the options, then free *upper.  -1 when memory runs out
 * (nothing to free then). */
int store_iter_open(store *st, store_cf cf, const void *prefix, size_t plen,
                    rocksdb_readoptions_t **ro, rocksdb_iterator_t **it, char **upper);

/* The iterator's error status: RD_OK, or RD_ERR_INTERNAL (logged). */
rd_status store_iter_status(rocksdb_iterator_t *it, rd_error *err);

#endif
