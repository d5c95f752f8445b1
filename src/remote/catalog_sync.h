/*
 * catalog_sync.h - one catalog sync of a remote repository, page by page
 * (internal to src/remote; the fetcher drives it).
 *
 * The upstream is asked for `<resource> list` (plugins, dashboard templates:
 * resource.h) of its local repository with
 * query.page {start, limit} (start 1-based), one page after another, each
 * answer within max_response_bytes.  Each page is checked: an answer that
 * is not of the expected shape fails the sync; a record that fails
 * validation is skipped and counted; every valid record is written, as the
 * page arrives, under a catalog generation readers do not see, and handed
 * to the new read model's builder (catalog_sync_use_models); the page's
 * JSON is not kept.  The new generation replaces the mirrored catalog in
 * one small write only when every page arrived (remote_catalog_commit), so
 * a sync holds about one page of records at a time, whatever the catalog's
 * size (plus the new read model, which is the tier's memory anyway).
 */
#ifndef REPOD_CATALOG_SYNC_H
#define REPOD_CATALOG_SYNC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "resource.h"
#include "status.h"
#include "store.h"

typedef struct catalog_sync catalog_sync;

/* A new sync of repository_id asking page_size records a page (NULL when
 * out of memory).  Free with catalog_sync_free (which drops anything not
 * committed). */
catalog_sync *catalog_sync_new(store *st, const char *repository_id, int64_t page_size);
void catalog_sync_free(catalog_sync *s);
/* The same for the resource res (records checked by res->check_upstream and
 * keyed by res->id_field); catalog_sync_new is this for resource_plugin. */
catalog_sync *catalog_sync_new_res(const resource_desc *res, store *st, const char *repository_id,
                                   int64_t page_size);
const resource_desc *catalog_sync_resource(const catalog_sync *s);

/* Builds the new read model of the repository whose record is record
 * (borrowed) from the pages as they arrive, for catalog_sync_commit_models
 * with the same models.  RD_OK and nothing when models or record is NULL;
 * RD_ERR_INTERNAL when out of memory. */
struct remote_models;
rd_status catalog_sync_use_models(catalog_sync *s, struct remote_models *models,
                                  const json_t *record, rd_error *err);

/* The request body of the next page: {repository_id, query: {page}} (new
 * reference; NULL when out of memory). */
json_t *catalog_sync_next_request(const catalog_sync *s);

/* Takes one page answer (a JSON object, borrowed).  RD_OK with *more = 1
 * when another page must be asked for, 0 when the catalog is complete: a
 * page shorter than the limit, total_count reached, or a page longer than
 * the limit (an upstream that does not page sent everything at once).
 * RD_ERR_UPSTREAM_BAD_RESPONSE when results is not a list, when a page
 * holding records has no valid one, or when a full page brings no new
 * plugin_id (paging that does not advance). */
rd_status catalog_sync_page(catalog_sync *s, const json_t *body, int *more, rd_error *err);

/* Swaps the new catalog in (one synced write). */
rd_status catalog_sync_commit(catalog_sync *s, int64_t now_ms, rd_error *err);

/* The same, and swaps a read model of the new catalog into models (NULL =
 * none) for the repository whose record is record: the one built from the
 * pages (catalog_sync_use_models), else one built from the store
 * (remote_models_commit). */
rd_status catalog_sync_commit_models(catalog_sync *s, struct remote_models *models,
                                     const json_t *record, int64_t now_ms, rd_error *err);

size_t catalog_sync_count(const catalog_sync *s);   /* distinct valid plugins */
size_t catalog_sync_skipped(const catalog_sync *s); /* records skipped */
/* Why the first / the last skipped record was skipped ("" when none). */
const char *catalog_sync_first_skip(const catalog_sync *s);
const char *catalog_sync_last_skip(const catalog_sync *s);
unsigned catalog_sync_pages(const catalog_sync *s); /* pages taken so far */

#endif
