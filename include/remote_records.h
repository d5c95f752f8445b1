/*
 * remote_records.h - an in-memory snapshot of the remote repository records
 * (remote_list: ordered by priority, then name), so that hot reads (plugin
 * get through a mirror) never scan and decode the store.
 *
 * A snapshot is immutable and reference-counted: a reader takes one and
 * sees the same records until it releases it.  The snapshot of a store is
 * kept only once the store is attached (remote_records_attach, at start,
 * before any thread reads); every write of a remote record in this process
 * goes through remote_put / remote_delete, which call
 * remote_records_changed, so the next reader builds a new snapshot from the
 * store.  The store stays the truth: a store that is not attached gets a
 * snapshot built from it on every call.
 *
 * Each change also advances the store's generation (a counter), which
 * caches keyed to the records (remote_models.h) compare to know when to
 * check the store again.
 *
 * Thread safety: every function may be called from any thread; a snapshot
 * is shared read-only (never modify its records).
 */
#ifndef REPOD_REMOTE_RECORDS_H
#define REPOD_REMOTE_RECORDS_H

#include <jansson.h>
#include <stdint.h>

#include "status.h"
#include "store.h"

typedef struct remote_records remote_records;

/* Keeps a snapshot for st from now on (idempotent).  RD_ERR_INTERNAL when
 * out of memory. */
rd_status remote_records_attach(store *st, rd_error *err);

/* Forgets st (before store_close); a no-op when it was not attached. */
void remote_records_detach(store *st);

/* Notes that a remote record of st was written or deleted: the next
 * remote_records_get builds a new snapshot and the generation advances. */
void remote_records_changed(store *st);

/* The current generation of st: 0 when st is not attached (nothing can be
 * trusted: check the store), otherwise a number that changes with every
 * remote_records_changed. */
uint64_t remote_records_generation(store *st);

/* The current snapshot of st: a new reference (remote_records_release).
 * Errors of remote_list. */
rd_status remote_records_get(store *st, remote_records **out, rd_error *err);

/* The records in precedence order (borrowed, read-only, valid while the
 * snapshot is held). */
const json_t *remote_records_array(const remote_records *r);

/* The record of repository_id (borrowed as above), or NULL. */
const json_t *remote_records_find(const remote_records *r, const char *repository_id);

remote_records *remote_records_ref(remote_records *r);
void remote_records_release(remote_records *r);

#endif
