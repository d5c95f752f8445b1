/*
 * remote.h - remote repositories in the store: their records, the mirrored
 * catalogs, version lists and "not found" answers, and how fresh each is.
 *
 * Records live in STORE_CF_REPOS next to the local repository's.  A remote
 * record holds the upstream settings including the token (a secret: only
 * remote_view() output is ever sent to clients).  Mirrored data lives in
 * STORE_CF_CACHE:
 *   "C\0<repo>#<gen>\0<plugin_id>" -> plugin record as the upstream sent it,
 *                              in catalog generation gen (16 hex digits)
 *   "C\0<repo>\0<plugin_id>" -> the same in generation 0 (a catalog stamped
 *                              without gen, or fetched before any sync)
 *   "M\0<repo>"               -> {"fetched_at": ms, "count": n, "gen": g}
 *                              (catalog; readers follow its generation)
 *   "G\0<repo>"               -> {"gen": g} another generation may be
 *                              stored (a sync staging it, or one that failed)
 *   "V\0<repo>\0<plugin_id>" -> {"versions": [...], "fetched_at": ms}
 *   "N\0<repo>\0<plugin_id>" -> {"fetched_at": ms}   (upstream said 404)
 *   "P\0<repo>\0<plugin_id>" -> {"fetched_at": ms}   (plugin fetched on its own)
 *   "S\0<repo>"               -> upstream status
 * Other resources mirrored the same way (resource.h) use the same kinds
 * behind their cache_prefix: dashboard templates "DC", "DM", "DN", "DP"
 * keyed by template_id.  The remote_item_* / remote_res_* functions take the
 * resource; the plugin-named ones are the same for resource_plugin.
 * Everything here is synchronous and thread-safe (it only uses the store).
 */
#ifndef REPOD_REMOTE_H
#define REPOD_REMOTE_H

#include <jansson.h>
#include <stdint.h>

#include "conf.h"
#include "resource.h"
#include "status.h"
#include "store.h"

/* How fresh a cached item is, given the repository's cache settings. */
typedef enum {
    REMOTE_FRESH,  /* younger than ttl_s */
    REMOTE_STALE,  /* older than ttl_s, but usable when the upstream fails
                    * (younger than ttl_s + stale_if_error_s) */
    REMOTE_EXPIRED /* too old to serve even when the upstream is down */
} remote_freshness;

/* Every remote repository record (new array of new references), ordered by
 * priority, then name. */
rd_status remote_list(store *st, json_t **out, rd_error *err);

/* The record of repository_id if it is a remote one; RD_ERR_NOT_FOUND
 * otherwise (err untouched). */
rd_status remote_get(store *st, const char *repository_id, json_t **out, rd_error *err);

/* Stores a record (new or replaced) in one synced write. */
rd_status remote_put(store *st, const json_t *record, rd_error *err);

/* Deletes the record and everything cached for it, in one synced write. */
rd_status remote_delete(store *st, const char *repository_id, rd_error *err);

/* What a client may see of a record: no token, and the upstream status
 * block (status borrowed, may be NULL = never contacted).  New reference. */
json_t *remote_view(const json_t *record, const json_t *status);

/* The upstream status of a repository: {state, last_sync_at, last_error,
 * cached_plugins, skipped_records, last_skip_reason,
 * cached_dashboard_templates, skipped_dashboard_templates} (new reference); RD_ERR_NOT_FOUND when
 * never contacted. Kept apart from the record so status updates never race with edits. */
rd_status remote_status_get(store *st, const char *repository_id, json_t **out, rd_error *err);
rd_status remote_status_put(store *st, const char *repository_id, const json_t *status,
                            rd_error *err);

/* {repository_id, name, repository_type: "remote"} of a record (new). */
json_t *remote_info(const json_t *record);

/* A mirrored plugin (cached, borrowed) as clients see it: a copy with
 * repository_info = remote_info(record) (endpoint ""), resource_type and
 * service_type both set (resource_type wins; service_type when it is the
 * only one) and docs {} when missing.  The same document for lists, stat
 * and get.  New reference; NULL when out of memory. */
json_t *remote_plugin_view(const json_t *cached, const json_t *record);

/* The effective cache settings of a record: its own "cache" object over
 * the config defaults. */
void remote_cache_settings(const json_t *record, const conf_cache *defaults, conf_cache *out);

/* Classifies an item fetched at fetched_at_ms. */
remote_freshness remote_freshness_of(const conf_cache *cs, int64_t fetched_at_ms, int64_t now_ms);

/* The mirrored catalog: appends its plugin records to arr (new references)
 * and sets *fetched_at_ms.  RD_ERR_NOT_FOUND when never synced. */
rd_status remote_catalog_load(store *st, const char *repository_id, json_t *arr,
                              int64_t *fetched_at_ms, rd_error *err);

/* Only the time of the last catalog sync; RD_ERR_NOT_FOUND when never. */
rd_status remote_catalog_age(store *st, const char *repository_id, int64_t *fetched_at_ms,
                             rd_error *err);

/* A new mirrored catalog, built page by page and swapped in whole:
 * remote_catalog_begin() starts one (NULL when out of memory; first it
 * removes what an earlier unfinished sync left, remote_res_catalog_sweep),
 * each remote_catalog_add() queues the stored bytes of one valid plugin
 * record (t keeps no reference to it; a later record with the same
 * plugin_id replaces an earlier one; returns 1 when the id is new, 0 when
 * it was seen, -1 when out of memory), remote_catalog_flush() writes what
 * was queued under a new generation readers do not see (one synced write
 * a page; t holds at most one page's bytes), and remote_catalog_commit()
 * flushes, then makes the new generation the catalog in one small synced
 * write (plugins that disappeared upstream go with the old generation,
 * negative answers for ids that now exist go), so readers see the old
 * catalog or the new one, never a mix; the old generation is then deleted
 * in bounded writes.  remote_catalog_free() drops a catalog that was not
 * committed and deletes what it wrote (the mirrored one stays as it was);
 * NULL is a no-op. */
typedef struct remote_catalog_txn remote_catalog_txn;
remote_catalog_txn *remote_catalog_begin(store *st, const char *repository_id);
int remote_catalog_add(remote_catalog_txn *t, const json_t *plugin);
rd_status remote_catalog_flush(remote_catalog_txn *t, rd_error *err);
size_t remote_catalog_size(const remote_catalog_txn *t);
/* The store t writes to (borrowed). */
store *remote_catalog_store(const remote_catalog_txn *t);
/* The ids t queued so far: plugin_id -> true (borrowed object, valid until
 * t is freed). */
json_t *remote_catalog_records(remote_catalog_txn *t);
rd_status remote_catalog_commit(remote_catalog_txn *t, int64_t now_ms, rd_error *err);
void remote_catalog_free(remote_catalog_txn *t);

/* One mirrored plugin record; RD_ERR_NOT_FOUND when not cached. */
rd_status remote_plugin_get(store *st, const char *repository_id, const char *plugin_id,
                            json_t **out, rd_error *err);

/* Caches one plugin fetched on its own at now_ms (and clears its negative
 * entry); it is then fresh for ttl_s from now_ms, whatever the catalog's age. */
rd_status remote_plugin_put(store *st, const char *repository_id, const json_t *plugin,
                            int64_t now_ms, rd_error *err);

/* When plugin_id was last fetched on its own; RD_ERR_NOT_FOUND if never. */
rd_status remote_plugin_fetched_at(store *st, const char *repository_id, const char *plugin_id,
                                   int64_t *fetched_at_ms, rd_error *err);

/* Adds to out (an object) id -> fetched_at (integer, ms) for every record
 * of resource res in repository_id fetched on its own after after_ms. */
rd_status remote_item_stamps(const resource_desc *res, store *st, const char *repository_id,
                             int64_t after_ms, json_t *out, rd_error *err);

/* The time of a cached "not found"; RD_ERR_NOT_FOUND when none. */
rd_status remote_negative_get(store *st, const char *repository_id, const char *plugin_id,
                              int64_t *fetched_at_ms, rd_error *err);
rd_status remote_negative_put(store *st, const char *repository_id, const char *plugin_id,
                              int64_t now_ms, rd_error *err);

/* A cached version list: *versions new array; RD_ERR_NOT_FOUND when none. */
rd_status remote_versions_get(store *st, const char *repository_id, const char *plugin_id,
                              json_t **versions, int64_t *fetched_at_ms, rd_error *err);
rd_status remote_versions_put(store *st, const char *repository_id, const char *plugin_id,
                              const json_t *versions, int64_t now_ms, rd_error *err);

/* Version lists of LOCAL plugins read from their registries, cached under
 * "T\0<domain_id>\0<plugin_id>" like the remote ones. */
rd_status remote_tags_get(store *st, const char *domain_id, const char *plugin_id,
                          json_t **versions, int64_t *fetched_at_ms, rd_error *err);
rd_status remote_tags_put(store *st, const char *domain_id, const char *plugin_id,
                          const json_t *versions, int64_t now_ms, rd_error *err);
/* Drops the cached version list of a local plugin (it was deregistered). */
rd_status remote_tags_forget(store *st, const char *domain_id, const char *plugin_id,
                             rd_error *err);

/* Validates a plugin record received from an upstream: the fields a
 * mirror relies on are present with the right types, the image is well
 * formed, and plugin_id follows the rules of an id (the characters of one
 * image component, at most 40): a client-chosen plugin_id need not be the
 * last segment of image.  Fields it does not know are not looked at (they
 * are kept as received).  RD_ERR_UPSTREAM_BAD_RESPONSE naming the problem
 * (and the plugin_id when there is one) otherwise. */
rd_status remote_check_plugin(const json_t *plugin, rd_error *err);

/* Settings checks shared by the API and the config's "remotes":
 * endpoint must be https://host[:port]; cache an object of known keys within
 * bounds; upstream {token, ca_file, verify}; priority an integer >= 1 (*out
 * untouched when absent).  Errors name the key. */
rd_status remote_check_endpoint(const char *endpoint, rd_error *err);
rd_status remote_check_cache(const json_t *cache, rd_error *err);
rd_status remote_check_upstream(const json_t *upstream, rd_error *err);
rd_status remote_check_priority(const json_t *body, json_int_t *out, rd_error *err);

/* A new remote record (without repository_id, which the upstream gives). */
json_t *remote_new_record(const char *name, const char *endpoint, json_int_t priority,
                          const json_t *upstream, const json_t *cache);

/* ---- per resource (res: resource_plugin, resource_dashboard) ---- */

/* A mirrored record as clients see it: a copy, res->view_in_place with
 * repository_info = remote_info(record).  New reference; NULL when out of
 * memory. */
json_t *remote_item_view(const resource_desc *res, const json_t *cached, const json_t *record);
rd_status remote_res_catalog_age(const resource_desc *res, store *st, const char *repository_id,
                                 int64_t *fetched_at_ms, rd_error *err);
rd_status remote_res_catalog_load(const resource_desc *res, store *st, const char *repository_id,
                                  json_t *arr, int64_t *fetched_at_ms, rd_error *err);
/* A catalog transaction of res: records are keyed by res->id_field. */
remote_catalog_txn *remote_res_catalog_begin(const resource_desc *res, store *st,
                                             const char *repository_id);
/* Removes the records of generations other than the catalog's that an
 * unfinished sync left (it failed, or the process stopped during it) when
 * the repository is marked as holding some; RD_OK when there were none.
 * Logs "remote: removed N cached <plural> of <id> that its catalog does
 * not hold (left by an unfinished catalog sync)" (info) when it ran. */
rd_status remote_res_catalog_sweep(const resource_desc *res, store *st, const char *repository_id,
                                   rd_error *err);
rd_status remote_item_get(const resource_desc *res, store *st, const char *repository_id,
                          const char *id, json_t **out, rd_error *err);
rd_status remote_item_put(const resource_desc *res, store *st, const char *repository_id,
                          const json_t *record, int64_t now_ms, rd_error *err);
rd_status remote_item_fetched_at(const resource_desc *res, store *st, const char *repository_id,
                                 const char *id, int64_t *fetched_at_ms, rd_error *err);
rd_status remote_item_negative_get(const resource_desc *res, store *st, const char *repository_id,
                                   const char *id, int64_t *fetched_at_ms, rd_error *err);
rd_status remote_item_negative_put(const resource_desc *res, store *st, const char *repository_id,
                                   const char *id, int64_t now_ms, rd_error *err);

#endif
