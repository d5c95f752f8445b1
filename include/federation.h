/*
 * federation.h - API reads that involve remote repositories: the cache
 * decision (fresh / stale / fetch), waiting on the upstream through the
 * fetcher, and the documents that result (SPEC sections 5 and 6).
 *
 * Every entry point that can wait returns RD_PENDING and later calls its
 * callback on the call's own event loop; the callback then ends the call.
 * The X-Cache header is kept in call->x_cache (STALE > MISS > HIT).
 */
#ifndef REPOD_FEDERATION_H
#define REPOD_FEDERATION_H

#include <jansson.h>

#include "api.h"
#include "readmodel.h"
#include "remote_models.h"

/* tiers[0..n): the read models of every usable remote repository that holds
 * a synced catalog, in precedence order (priority, then name); borrowed for
 * the callback (remote_tier_ref to keep one).  NULL / 0 on failure. */
typedef void (*federation_gather_fn)(api_call *call, void *ud, remote_tier *const *tiers, size_t n,
                                     rd_status rc, const rd_error *err);

/* Collects the remote catalogs of res (plugins, dashboard templates; all
 * repositories, or only repository_id).  Repositories that are unavailable
 * are left out of a merged read, but fail a read restricted to them.
 * Returns RD_PENDING (done is always called) or an error (done is not
 * called). (src/api/federation.c) */
rd_status federation_gather(api_call *call, const resource_desc *res, const char *repository_id,
                            federation_gather_fn done, void *ud, rd_error *err);

/* What federation_find_item found, borrowed for the callback:
 *   record  the remote repository record that holds it;
 *   ready   its read model document when it was served from the model
 *           (nothing decoded: its bytes are the answer), else NULL;
 *   value   its view otherwise (from the upstream, or the store when the
 *           repository has no model), else NULL.
 * The callback may take ready or value (then set the field to NULL). */
typedef struct {
    const json_t *record;
    readmodel_doc *ready;
    json_t *value;
} federation_found;

/* found: NULL unless rc is RD_OK. */
typedef void (*federation_item_fn)(api_call *call, void *ud, federation_found *found, rd_status rc,
                                   const rd_error *err);

/* Finds the record id of res (any mirrored resource) in the remote
 * repositories (all by precedence, or only repository_id).  In each, the
 * cache decides from the in-memory records, the repository's read model,
 * its catalog time and the record's own fetch time (no store read on a
 * hit): fresh -> HIT, stale and servable -> STALE (with a background
 * refresh), else the negative cache and the upstream's <route>/get (MISS),
 * falling back to the cached copy within stale_if_error_s.  A fresh catalog
 * without the record, or a fresh negative answer, moves on to the next
 * repository.  Not found anywhere -> RD_ERR_NOT_FOUND "Value not found.
 * (<id_field> = id)", unless an upstream failed, whose error is reported
 * instead.  Returns RD_PENDING (done is always called) or an error (done is
 * not called).  (src/api/federation_item.c) */
rd_status federation_find_item(api_call *call, const resource_desc *res, const char *id,
                               const char *repository_id, federation_item_fn done, void *ud,
                               rd_error *err);

/* Ends a get of res with what federation_find_item gave (found may be NULL
 * on an error): without `only` in the request, a document found in a read
 * model is answered as its ready bytes (call->ready); otherwise the view,
 * projected by `only`. */
void federation_get_finish(api_call *call, const resource_desc *res, federation_found *found,
                           rd_status rc, const rd_error *err);

/* Looks for id of res in the mirrored catalogs only (no upstream): *record
 * receives the repository record that holds it (new reference).
 * RD_ERR_NOT_FOUND if none. */
rd_status federation_find_cached_item(app *a, const resource_desc *res, const char *id,
                                      json_t **record, rd_error *err);

/* value: the VersionsInfo answer (borrowed; NULL on failure). */
typedef void (*federation_versions_fn)(api_call *call, void *ud, json_t *value, rd_status rc,
                                       const rd_error *err);

/* The VersionsInfo of a mirrored plugin: the repository that holds it is
 * found as federation_find_item finds the plugin (its X-Cache outcome
 * counts), then that repository's cached version list decides: fresh ->
 * HIT; stale -> STALE with a background refresh; otherwise the upstream's
 * get-versions (MISS), falling back to a copy within stale_if_error_s.  Not
 * found -> RD_ERR_NO_PLUGIN.  Returns RD_PENDING (done is always called) or
 * an error (done is not called).  (src/api/federation_versions.c) */
rd_status federation_remote_versions(api_call *call, const char *plugin_id,
                                     const char *repository_id, federation_versions_fn done,
                                     void *ud, rd_error *err);

/* The VersionsInfo of a local plugin (record borrowed): its image's tags
 * from its registry, cached like a remote version list (remote_defaults):
 * fresh -> HIT; stale -> STALE with a background refresh; otherwise read now
 * (MISS), falling back to a copy within stale_if_error_s.  Returns
 * RD_PENDING (done is always called) or an error (done is not called). */
rd_status federation_local_versions(api_call *call, const json_t *record,
                                    federation_versions_fn done, void *ud, rd_error *err);

#endif
