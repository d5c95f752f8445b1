/*
 * index.h - secondary indexes of the local plugins (private to the catalog).
 *
 * For each indexed field (pindex_fields: name, state, resource_type,
 * provider, registry_type) a local plugin record has at most one entry in
 * STORE_CF_INDEX, all with empty values:
 *
 *   "I\0<field>\0<value>\0<domain_id>\0<plugin_id>"  the field holds the
 *       string <value> (no NUL byte, and the key fits in PINDEX_KEY_MAX);
 *   "U\0<field>\0<domain_id>\0<plugin_id>"           "unindexable": the
 *       field holds an array, or a string that cannot be a key part (a NUL
 *       byte, or too long);
 *   nothing                                          the field is missing or
 *       holds a number, boolean, null or object.
 *
 * A positive string condition (eq / in over strings, see
 * query_index_values) can only match a plugin with an "I" entry for one of
 * its values or with a "U" entry, so scanning those entries yields a superset
 * of the matches.  plugin_id needs no index: it is the primary key, and a
 * constraint on it becomes direct reads.
 *
 * Invariant kept by the catalog: entries change in the same store batch as
 * the record they describe, so the index is never behind the records.  An
 * extra (stale) entry only costs a wasted read; a missing one would lose
 * matches, which is why every write path goes through pindex_put_changes.
 *
 * META "plugin_index_version" holds PINDEX_VERSION once the index is
 * complete; pindex_ensure rebuilds it on open when the key is missing or
 * older (data dirs written before the index existed).
 *
 * Thread safety: the functions keep no state; writers are serialised by the
 * catalog's write lock.
 */
#ifndef REPOD_CATALOG_INDEX_H
#define REPOD_CATALOG_INDEX_H

#include <jansson.h>
#include <stddef.h>

#include "query.h"
#include "status.h"
#include "store.h"

#define PINDEX_VERSION "1"
#define PINDEX_KEY_MAX 2048

/* The indexed fields, NULL-terminated. */
extern const char *const pindex_fields[];

/* The key of a local plugin record in STORE_CF_PLUGINS,
 * "L\0<domain_id>\0<plugin_id>" (the one place that spells the layout):
 * writes at most size bytes into buf and returns the length, 0 when it does
 * not fit.  plugin_id "" gives the prefix of all records of the domain. */
size_t pindex_record_key(char *buf, size_t size, const char *domain_id, const char *plugin_id);

/* Queues into b the index changes for the record of (domain_id, plugin_id)
 * going from old_rec to new_rec (either may be NULL = absent; both
 * borrowed): deletes the entries that no longer hold and puts the new ones;
 * an entry that is the same in both is left alone. */
void pindex_put_changes(store_batch *b, const char *domain_id, const char *plugin_id,
                        const json_t *old_rec, const json_t *new_rec);

/* Makes sure the index is complete: when the META version key is missing or
 * differs from PINDEX_VERSION, deletes every plugin index entry, re-adds the
 * entries of every local plugin (batches of 1000) and then writes the
 * version.  Must run before any writer uses the catalog.  A crash in the
 * middle leaves the version unset, so the next open starts over. */
rd_status pindex_ensure(store *st, rd_error *err);

/* A sorted list of distinct plugin ids (owned strings). */
typedef struct {
    char **ids;
    size_t n;
    size_t cap;
} pindex_ids;

void pindex_ids_free(pindex_ids *l);

/* The plugin ids of domain_id that may match q (borrowed), when some indexed
 * field (or plugin_id) is constrained by q: *used = 1 and *out receives them
 * sorted bytewise (= primary key order); ids named only by a plugin_id
 * constraint are not checked for existence.  When q constrains several
 * fields, the one with the fewest candidates wins (each field's scan stops
 * as soon as it exceeds the best so far; plugin_id's count is its number
 * of values).  *used = 0 (out empty) when no field is constrained or q is
 * NULL.  RD_ERR_INTERNAL on storage or allocation failure. */
rd_status pindex_candidates(store *st, const char *domain_id, const query *q, pindex_ids *out,
                            int *used, rd_error *err);

/* When q (NULL = match all) can be answered from keys alone
 * (query_index_only over pindex_fields and plugin_id) and no constrained
 * field has a "U" entry in domain_id, sets *exact = 1 and *count to the exact
 * number of matching plugins of domain_id, reading no record value;
 * otherwise *exact = 0.  Assumes no stale entries (see above). */
rd_status pindex_count(store *st, const char *domain_id, const query *q, size_t *count, int *exact,
                       rd_error *err);

#endif
