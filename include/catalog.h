/*
 * catalog.h - the repositories and the documents they hold, on top of the
 * store.
 *
 * The catalog owns the record of the one local repository (created at first
 * start) and the local documents of each resource (plugins, dashboard
 * templates), keyed by (resource, domain_id, id).  It enforces
 * uniqueness and makes every change one synced batch.  It knows nothing about
 * callers or roles: the API layer decides who may see or change what.
 *
 * Thread safety: all functions may be called from any worker thread; writes
 * that must check-then-change are serialised inside the catalog.
 */
#ifndef REPOD_CATALOG_H
#define REPOD_CATALOG_H

#include <jansson.h>

#include "readmodel.h"
#include "status.h"
#include "store.h"

typedef struct catalog catalog;

/* Opens the catalog over st (borrowed; must outlive the catalog) and makes
 * sure the local repository exists, named local_name at creation.  A data
 * dir written before the plugin indexes existed (or with an older index
 * version) gets its indexes rebuilt here, before the catalog is returned;
 * this reads every local plugin once. */
rd_status catalog_open(store *st, const char *local_name, catalog **out, rd_error *err);
void catalog_close(catalog *cat);

/* The local repository's id ("repo-" + 12 hex), stable across restarts. */
const char *catalog_local_id(const catalog *cat);

/* {repository_id, name, repository_type} of the local repository (borrowed,
 * valid for the catalog's life). */
const json_t *catalog_local_info(const catalog *cat);

/* The full RepositoryInfo record of the local repository (new reference). */
json_t *catalog_local_record(const catalog *cat);

/* ---- any resource ---------------------------------------------------------
 *
 * Every local document is keyed by (resource, domain, id): res is one of
 * the static descriptions of include/resource.h (resource_plugin,
 * resource_dashboard); its id_field and domain_field name the record's key
 * fields, its store_prefix the first part of the store key.  The plugin
 * functions further down are these with res = &resource_plugin. */

/* Stores a new local record of res (borrowed).  A record with the same id
 * in the same domain -> RD_ERR_SAVE_UNIQUE_VALUES "(key = <id_field>, value
 * = <id>)", nothing stored; an incomplete record -> RD_ERR_INTERNAL. */
rd_status catalog_insert(catalog *cat, const resource_desc *res, const json_t *record,
                         rd_error *err);

/* Reads the record (domain_id, id) of res: *out new reference;
 * RD_ERR_NOT_FOUND when absent (err untouched). */
rd_status catalog_get(catalog *cat, const resource_desc *res, const char *domain_id, const char *id,
                      json_t **out, rd_error *err);

/* The read model of res's local documents (borrowed; the catalog's). */
readmodel *catalog_model(catalog *cat, const resource_desc *res);

/* As catalog_plugin_view, for res. */
readmodel_doc *catalog_view(catalog *cat, const resource_desc *res, const char *domain_id,
                            const char *id);

/* Change callback for catalog_modify: given the current record
 * (borrowed) returns a new record in *updated, or fails. */
typedef rd_status (*catalog_modify_fn)(void *ud, const json_t *current, json_t **updated,
                                       rd_error *err);

/* As catalog_plugin_modify, for res (the new record must keep its id and
 * domain fields). */
rd_status catalog_modify(catalog *cat, const resource_desc *res, const char *domain_id,
                         const char *id, catalog_modify_fn fn, void *ud, json_t **out,
                         rd_error *err);

/* Deletes (domain_id, id) of res; RD_ERR_NOT_FOUND when absent. */
rd_status catalog_delete(catalog *cat, const resource_desc *res, const char *domain_id,
                         const char *id, rd_error *err);

/* Appends every local record of res in domain_id, in id order, to arr. */
rd_status catalog_collect(catalog *cat, const resource_desc *res, const char *domain_id,
                          json_t *arr, rd_error *err);

struct query;

/* As catalog_collect_views / catalog_collect_store_views /
 * catalog_query_views / catalog_model_whole, for res: the views in res's
 * default order; from res's read model when it is whole. */
rd_status catalog_res_collect_views(catalog *cat, const resource_desc *res,
                                    const char *const *domains, size_t n, const struct query *q,
                                    json_t **out, size_t *decoded, rd_error *err);
rd_status catalog_res_store_views(catalog *cat, const resource_desc *res,
                                  const char *const *domains, size_t n, const struct query *q,
                                  json_t **out, size_t *decoded, rd_error *err);
rd_status catalog_res_query_views(catalog *cat, const resource_desc *res,
                                  const char *const *domains, size_t n, const struct query *q,
                                  json_t **out, rd_error *err);
int catalog_res_whole(catalog *cat, const resource_desc *res);
/* catalog_res_query_views' answer serialised (json_dumps, JSON_COMPACT):
 * from the read model's ready bytes when it is whole.  *body new
 * (malloc'd, NUL-terminated, *len bytes). */
rd_status catalog_res_query_bytes(catalog *cat, const resource_desc *res,
                                  const char *const *domains, size_t n, const struct query *q,
                                  char **body, size_t *len, rd_error *err);

/* Validates a request that names one document of res by its id_field (get,
 * enable, disable, deregister): the id (required string) and, when
 * allow_repo is set, repository_id (string) and only (array of strings);
 * legacy domain_id / project_id accepted.  Unknown keys ->
 * RD_ERR_INVALID_PARAMETER; types -> RD_ERR_INVALID_PARAMETER_TYPE; the id
 * absent, null or "" -> RD_ERR_REQUIRED_PARAMETER. */
rd_status catalog_check_id_request(const resource_desc *res, const json_t *req, int allow_repo,
                                   rd_error *err);

/* ---- plugins ------------------------------------------------------------- */

/* Stores a new local plugin record (borrowed).  A plugin with the same
 * plugin_id in the same domain -> RD_ERR_SAVE_UNIQUE_VALUES, nothing stored. */
rd_status catalog_plugin_insert(catalog *cat, const json_t *record, rd_error *err);

/* Bulk loader for tools and benchmarks (not for request handling: it holds
 * the write lock while it checks and writes the whole array).  Stores every
 * record of records (a JSON array of records, borrowed) as a new local
 * plugin, with its index entries, in one atomic batch.  A plugin_id that is
 * already stored in its domain, or that appears twice in the array for the
 * same domain -> RD_ERR_SAVE_UNIQUE_VALUES; an incomplete record ->
 * RD_ERR_INTERNAL; on any failure nothing is stored.  Keep arrays to about
 * a thousand records. */
rd_status catalog_plugin_insert_many(catalog *cat, const json_t *records, rd_error *err);

/* Reads the record of (domain_id, plugin_id): *out new reference.
 * RD_ERR_NOT_FOUND when absent (err untouched). */
rd_status catalog_plugin_get(catalog *cat, const char *domain_id, const char *plugin_id,
                             json_t **out, rd_error *err);

/* The served view of the local plugin (domain_id, plugin_id) from the
 * catalog's read model (built at open, updated with every write): a new
 * reference (readmodel_doc_release), or NULL when the model does not hold
 * it - then read the store with catalog_plugin_get (the model leaves out a
 * document it had no memory for). */
readmodel_doc *catalog_plugin_view(catalog *cat, const char *domain_id, const char *plugin_id);

/* Reads, changes and writes one record atomically with respect to other
 * writers.  *out (optional) receives the stored new record (new reference).
 * RD_ERR_NOT_FOUND when absent.  The new record must keep domain_id and
 * plugin_id (RD_ERR_INTERNAL otherwise, nothing written). */
rd_status catalog_plugin_modify(catalog *cat, const char *domain_id, const char *plugin_id,
                                catalog_modify_fn fn, void *ud, json_t **out, rd_error *err);

/* Deletes (domain_id, plugin_id); RD_ERR_NOT_FOUND when absent. */
rd_status catalog_plugin_delete(catalog *cat, const char *domain_id, const char *plugin_id,
                                rd_error *err);

/* Appends every local plugin record of domain_id, in plugin_id order, to arr
 * (new references). */
rd_status catalog_plugin_collect(catalog *cat, const char *domain_id, json_t *arr, rd_error *err);

/* Like catalog_plugin_collect, but may use secondary indexes to skip
 * records that cannot match q (borrowed; NULL = no hint): what it appends is
 * a superset of the matches of q in the domain, in plugin_id order.  When
 * decoded is not NULL it is increased by the number of records decoded.
 *
 * q is matched against records here, while the API matches plugin_view()s
 * of them; the hints only use fields the view copies unchanged (plugin_id,
 * name, state, resource_type, provider, registry_type).  The index is used
 * when q's AND part confines one of them to a set of strings
 * (query_index_values); among several, the field with the fewest index
 * entries for its values wins.  Otherwise every record is decoded. */
rd_status catalog_plugin_collect_query(catalog *cat, const char *domain_id, const struct query *q,
                                       json_t *arr, size_t *decoded, rd_error *err);

/* Counts the local plugins of domain_id that match q (borrowed; NULL =
 * all) from keys alone, decoding no record, when that is possible: then
 * *exact = 1 and *count is set.  Possible when q has no filter_or and no
 * keyword and each of its conditions is a positive eq / in over strings on
 * plugin_id, name, state, resource_type, provider or registry_type
 * (query_index_only) - e.g. a count_only list with top-level filters only
 * (sort, page and projection do not change a count).  Otherwise *exact = 0
 * and the caller counts the usual way. */
rd_status catalog_plugin_count_query(catalog *cat, const char *domain_id, const struct query *q,
                                     size_t *count, int *exact, rd_error *err);

/* The local plugins of the given domains (n of them) that may match q
 * (NULL = all), as response views (service_type, repository_info) in the
 * default order: name, then plugin_id, then domain_id.  *out is a new array;
 * decoded (optional) is increased by the records decoded.  This is the
 * local half of every plugin list and stat.  Taken from the read model
 * (the matches alone; nothing decoded) when it holds every local plugin,
 * else from the store (catalog_collect_store_views).  The documents may be
 * the model's own views, shared: read them, never modify them (copy first,
 * as query_run and query_stat do for what they return). */
rd_status catalog_collect_views(catalog *cat, const char *const *domains, size_t n,
                                const struct query *q, json_t **out, size_t *decoded,
                                rd_error *err);

/* As catalog_collect_views, but always from the store (records decoded and
 * viewed for this call), never from the read model: the reference the model
 * is tested against, and the path when the model is not whole. */
rd_status catalog_collect_store_views(catalog *cat, const char *const *domains, size_t n,
                                      const struct query *q, json_t **out, size_t *decoded,
                                      rd_error *err);

/* Answers the list query q (borrowed) over the local plugins of the given
 * domains alone, in query_run's shape ({"results": [...], "total_count":
 * N}, *out new): from the read model's indexes (candidates, kept orders,
 * page) when it holds every local plugin, else as query_run over
 * catalog_collect_views. */
rd_status catalog_query_views(catalog *cat, const char *const *domains, size_t n,
                              const struct query *q, json_t **out, rd_error *err);

/* Answers the StatisticsQuery stat_query (borrowed; the "query" of a plugin
 * stat) over the local plugins of the given domains alone, in query_stat's
 * shape (*out new): a group by one kept key with count fields is counted by
 * the read model (readmodel_stat) when it holds every local plugin; any
 * other stat runs query_stat over catalog_collect_views (narrowed by the
 * stat's filters).  Errors: query_stat's; RD_ERR_INTERNAL. */
rd_status catalog_stat_views(catalog *cat, const char *const *domains, size_t n,
                             const json_t *stat_query, json_t **out, rd_error *err);
/* catalog_stat_views over the local records of resource res. */
rd_status catalog_res_stat_views(catalog *cat, const resource_desc *res, const char *const *domains,
                                 size_t n, const json_t *stat_query, json_t **out, rd_error *err);

/* The counting half of catalog_res_stat_views for a stat over several
 * tiers (readmodel_stat_tally over res's read model): the local records of
 * the given domains that match plan, counted per group into tally, *counted
 * 1; *counted 0 (tally untouched) when the model does not hold every local
 * record or cannot count this plan.  RD_ERR_INTERNAL. */
rd_status catalog_res_stat_tally(catalog *cat, const resource_desc *res, const char *const *domains,
                                 size_t n, const query_stat_groups *plan, query_stat_tally *tally,
                                 int *counted, rd_error *err);

/* 1 when the read model holds every stored local plugin (it was built at
 * open and has taken every write since); lists then read it, not the
 * store. */
int catalog_model_whole(catalog *cat);

/* Number of local plugins in all domains (for repository deregister checks). */
rd_status catalog_plugin_count_all(catalog *cat, size_t *count, rd_error *err);

#endif
