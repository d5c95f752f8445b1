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
#include "remote_models.h"

/* A mirrored plugin as clients see it: repository_info rewritten to the
 * mirror's record of the repository, resource_type and service_type both
 * present.  New reference. */
json_t *federation_plugin_view(const json_t *cached, const json_t *repo_record);

/* tiers[0..n): the read models of every usable remote repository that holds
 * a synced catalog, in precedence order (priority, then name); borrowed for
 * the callback (remote_tier_ref to keep one).  NULL / 0 on failure. */
typedef void (*federation_gather_fn)(api_call *call, void *ud, remote_tier *const *tiers, size_t n,
                                     rd_status rc, const rd_error *err);

/* Collects the remote catalogs of res (plugins, dashboard templates; all
 * repositories, or only repository_id).  Repositories that are unavailable
 * are left out of a merged read, but fail a read restricted to them.
 * Returns RD_PENDING (done is always called) or an error (done is not
 * called). */
rd_status federation_gather(api_call *call, const resource_desc *res, const char *repository_id,
                            federation_gather_fn done, void *ud, rd_error *err);

/* value: the record's view (borrowed; NULL on failure). */
typedef void (*federation_item_fn)(api_call *call, void *ud, json_t *value, rd_status rc,
                                   const rd_error *err);

/* Finds the record id of res (a resource other than plugins, whose get is
 * federation_find_plugin) in the remote repositories (all by precedence,
 * or only repository_id): from the repository's read model when the cache
 * allows (HIT / STALE), else from the upstream's <route>/get (MISS).  Not
 * found anywhere -> RD_ERR_NOT_FOUND "Value not found. (<id_field> = id)",
 * unless an upstream failed, whose error is reported instead.  Returns
 * RD_PENDING (done is always called) or an error (done is not called).
 * (src/api/federation_item.c) */
rd_status federation_find_item(api_call *call, const resource_desc *res, const char *id,
                               const char *repository_id, federation_item_fn done, void *ud,
                               rd_error *err);

/* Looks for id of res in the mirrored catalogs only (no upstream): *record
 * receives the repository record that holds it.  RD_ERR_NOT_FOUND if none. */
rd_status federation_find_cached_item(app *a, const resource_desc *res, const char *id,
                                      json_t **record, rd_error *err);

/* value: the plugin view, or with want_versions the VersionsInfo answer
 * (borrowed; NULL on failure). */
typedef void (*federation_plugin_fn)(api_call *call, void *ud, json_t *value, rd_status rc,
                                     const rd_error *err);

/* Finds plugin_id in the remote repositories (all by priority, or only
 * repository_id), asking the upstream where the cache cannot answer.  When
 * the plugin comes from a repository's read model (fresh, or stale and
 * served as such), call->ready is set to that document (owned by the call)
 * and value is NULL (nothing is decoded): a caller that does not project
 * sends the ready bytes; one that projects decodes them
 * (readmodel_doc_decode) and releases call->ready.  Not
 * found anywhere -> RD_ERR_NO_PLUGIN, unless an upstream failed, whose error
 * is reported instead.  Returns RD_PENDING (done is always called) or an
 * error (done is not called). */
rd_status federation_find_plugin(api_call *call, const char *plugin_id, const char *repository_id,
                                 int want_versions, federation_plugin_fn done, void *ud,
                                 rd_error *err);

/* The VersionsInfo of a local plugin (record borrowed): its image's tags
 * from its registry, cached like a remote version list (remote_defaults):
 * fresh -> HIT; stale -> STALE with a background refresh; otherwise read now
 * (MISS), falling back to a copy within stale_if_error_s.  Returns
 * RD_PENDING (done is always called) or an error (done is not called). */
rd_status federation_local_versions(api_call *call, const json_t *record, federation_plugin_fn done,
                                    void *ud, rd_error *err);

/* Looks for plugin_id in the mirrored catalogs only (no upstream): *record
 * receives the repository record that holds it.  RD_ERR_NOT_FOUND if none. */
rd_status federation_find_cached(app *a, const char *plugin_id, json_t **record, rd_error *err);

#endif
