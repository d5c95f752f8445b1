/*
 * remote_models.h - one in-memory read model (readmodel.h) per remote
 * repository: its mirrored catalog as clients see it (remote_plugin_view of
 * every cached plugin, domain "" for every document), so that lists, stat
 * and get of mirrored plugins never decode the store.
 *
 * Ownership: the app owns one remote_models (app.h), created at start and
 * filled from the store before the workers and the fetcher run.  A tier
 * (remote_tier) is an immutable snapshot of one repository's catalog: a
 * catalog sync builds a new tier aside and swaps it in whole, so a reader
 * holding a tier sees the old catalog or the new one, never a mix.  Single
 * plugins fetched on their own are put into the current tier, with when
 * they were fetched.  RocksDB stays the durable truth: a tier whose catalog
 * stamp or repository name no longer matches the store is rebuilt from the
 * store when next read, and a tier of a repository that is gone is dropped.
 * The catalog stamp is read from the store only when the repository
 * records changed since the tier was last checked (remote_records.h
 * generation; every catalog commit of this process goes through
 * remote_models_commit), so a read of a current tier touches no store.
 *
 * Thread safety: every function may be called from any thread.  Writers
 * (commit, put, rebuilds) are serialised by one lock; readers take a short
 * lock only to find and reference a tier.
 */
#ifndef REPOD_REMOTE_MODELS_H
#define REPOD_REMOTE_MODELS_H

#include <jansson.h>
#include <stdint.h>

#include "readmodel.h"
#include "remote.h"
#include "resource.h"
#include "status.h"
#include "store.h"

typedef struct remote_models remote_models;
typedef struct remote_tier remote_tier;

/* A new empty set of models of resource res (borrowed, static; the models
 * key every document by domain "").  RD_ERR_INTERNAL when out of memory. */
rd_status remote_models_create(const resource_desc *res, remote_models **out, rd_error *err);
void remote_models_destroy(remote_models *m);

/* Builds the tier of every remote repository from the store (at start),
 * after removing what an unfinished sync left (remote_res_catalog_sweep).
 * Logs one info line per repository: "remote: read model of <id> holds N
 * plugins" (the resource's plural). */
rd_status remote_models_load_all(remote_models *m, store *st, rd_error *err);

/* Commits the catalog sync t (remote_catalog_commit) of the repository
 * whose record is record (borrowed) and swaps in a tier built from the
 * store just written, so the next read sees the new catalog.  m NULL: the
 * commit alone.  When the tier cannot be built (out of memory) the commit
 * still happens and the tier is rebuilt from the store by the next read. */
rd_status remote_models_commit(remote_models *m, remote_catalog_txn *t, const json_t *record,
                               int64_t now_ms, rd_error *err);

/* A tier built while a sync's pages arrive, one record at a time, so that
 * a sync never holds its whole catalog as JSON: begin (record borrowed:
 * its repository_id and name are copied), add each record as it is queued
 * in the sync's txn (cached borrowed; its view is handed to the model's
 * builder), then remote_models_commit_built (takes tb) or
 * remote_models_build_abort.  A failed add (out of memory) makes the
 * commit drop the tier; the next read rebuilds it from the store. */
typedef struct remote_tier_builder remote_tier_builder;
rd_status remote_models_build_begin(remote_models *m, const json_t *record,
                                    remote_tier_builder **out, rd_error *err);
void remote_models_build_add(remote_tier_builder *tb, const json_t *cached);
void remote_models_build_abort(remote_tier_builder *tb);
/* remote_models_commit with the tier tb built (tb NULL: remote_models_commit).
 * A tier whose repository was renamed since begin is dropped (the next read
 * rebuilds it). */
rd_status remote_models_commit_built(remote_models *m, remote_catalog_txn *t,
                                     remote_tier_builder *tb, const json_t *record, int64_t now_ms,
                                     rd_error *err);

/* Puts one plugin fetched on its own (cached, borrowed; already written to
 * the store by remote_plugin_put at fetched_at_ms) into the tier of record,
 * and notes when it was fetched (remote_tier_own_fetched_at).  m NULL:
 * no-op.  remote_models_put: fetched now. */
void remote_models_put_at(remote_models *m, const json_t *record, const json_t *cached,
                          int64_t fetched_at_ms);
void remote_models_put(remote_models *m, const json_t *record, const json_t *cached);

/* Drops the tier of repository_id (the repository was deleted). */
void remote_models_drop(remote_models *m, const char *repository_id);

/* Drops the tiers of repositories not in records (remote_list's array). */
void remote_models_retain(remote_models *m, const json_t *records);

/* The current tier of the repository whose record is record (borrowed): a
 * new reference (remote_tier_release).  Rebuilt from the store first when
 * missing, when the store's catalog stamp differs from the tier's, or when
 * the record's name differs from the one in the tier's repository_info
 * (the stamp is read only when the store's records generation moved since
 * the tier was last checked, or st is not attached).
 * RD_ERR_INTERNAL (or a store error) when it cannot be built. */
rd_status remote_models_tier(remote_models *m, store *st, const json_t *record, remote_tier **out,
                             rd_error *err);

/* The tier's model (borrowed, valid while the tier is held). */
readmodel *remote_tier_model(const remote_tier *t);
/* 1 and *fetched_at_ms when the tier holds a synced catalog, 0 when the
 * repository was never synced (the tier then holds only plugins fetched on
 * their own, if any). */
int remote_tier_synced(const remote_tier *t, int64_t *fetched_at_ms);
/* 1 and *fetched_at_ms when plugin_id was fetched on its own after the
 * tier's catalog (any time when never synced): the same stamp as
 * remote_plugin_fetched_at, without reading the store; 0 otherwise. */
int remote_tier_own_fetched_at(remote_tier *t, const char *plugin_id, int64_t *fetched_at_ms);
/* The repository id of the tier (borrowed). */
const char *remote_tier_id(const remote_tier *t);
remote_tier *remote_tier_ref(remote_tier *t);
void remote_tier_release(remote_tier *t);

#endif
