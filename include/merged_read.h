/*
 * merged_read.h - list and stat of one resource over several tiers: the
 * local tier (the caller's readable domains) and the read models of the
 * remote repositories (remote_models.h), in tier order: local first, then
 * the remotes by precedence (priority, then name), each in its default
 * order.
 *
 * A paged list asks each tier only for its first start+limit-1 matches in
 * the requested order (readmodel_query with page {start: 1, limit:
 * start+limit-1}), concatenates them in tier order, sorts the
 * concatenation stably with the query's sort (query_sort) and cuts the
 * page; total_count is the sum of the tiers' counts.  Since each tier's
 * list is already in the requested order with ties in default order, this
 * is exactly query_run over the concatenation of every tier's documents.
 * A stat that groups by plain keys and counts (query_stat_groups_compile)
 * is counted by each tier's read model (the local one through
 * local_tally, each remote tier's with readmodel_stat_tally) into one
 * tally in tier order, so no document is decoded; the group counts of equal
 * keys are summed and the rest of the pipeline runs on the merged groups
 * (query_stat_groups_finish).  When some tier cannot count it, or any other
 * stat, the stat concatenates every tier's matches and runs query_stat.
 * Both give the same answer (src/api/merged_stat.c).
 *
 * Cache semantics (X-Cache, X-Partial, background refresh, breakers) are
 * federation_gather's (federation.h).
 */
#ifndef REPOD_MERGED_READ_H
#define REPOD_MERGED_READ_H

#include <jansson.h>

#include "api.h"
#include "federation.h"
#include "query.h"
#include "resource.h"

/* What a resource plugs in.  The local callbacks answer over the caller's
 * readable local documents only (tenancy is theirs). */
typedef struct {
    const resource_desc *res;
    /* the local repository's id (borrowed) */
    const char *(*local_id)(api_call *call);
    /* list query q over the local tier, in query_run's shape (*out new) */
    rd_status (*local_list)(api_call *call, const query *q, json_t **out, rd_error *err);
    /* the same answer serialised (compact JSON; *body new, malloc'd); NULL =
     * none: local_list's answer is serialised by the edge */
    rd_status (*local_list_bytes)(api_call *call, const query *q, char **body, size_t *len,
                                  rd_error *err);
    /* the local matches of q (NULL = all) in default order: *out a new array
     * whose documents may be shared (never modify them) */
    rd_status (*local_matches)(api_call *call, const query *q, json_t **out, rd_error *err);
    /* stat_q over the local tier alone (the read model answers group
     * counts from its postings when it can) */
    rd_status (*local_stat)(api_call *call, const json_t *stat_q, json_t **out, rd_error *err);
    /* the local matches of plan counted into tally (readmodel_stat_tally's
     * contract: *counted 0 when the local tier cannot count it) */
    rd_status (*local_tally)(api_call *call, const query_stat_groups *plan, query_stat_tally *tally,
                             int *counted, rd_error *err);
    /* 1 when no remote repository is registered (the local tier alone) */
    int (*no_remotes)(api_call *call);
    /* the remote tiers of res (federation_gather); NULL = the resource has
     * none */
    rd_status (*gather)(api_call *call, const resource_desc *res, const char *repository_id,
                        federation_gather_fn done, void *ud, rd_error *err);
} merged_source;

/* The tiers of res (resource_api.c): the caller's local tier and the
 * remote repositories (federation_gather).  Static data. */
const merged_source *api_resource_source(const resource_desc *res);

/* A list: query_obj (the request's "query", borrowed, NULL = all) and eq (an
 * object of top-level eq filters, borrowed, may be NULL) over the tiers
 * repository_id names (NULL = every tier).  RD_OK with *out, RD_PENDING
 * (the call is then ended later), or an error. */
rd_status merged_list(api_call *call, const merged_source *src, const json_t *query_obj,
                      const json_t *eq, const char *repository_id, json_t **out, rd_error *err);

/* A stat: stat_q (a StatisticsQuery object, borrowed from the call's body
 * for the call's life) over the tiers repository_id names. */
rd_status merged_stat(api_call *call, const merged_source *src, const json_t *stat_q,
                      const char *repository_id, json_t **out, rd_error *err);

/* ---- the pieces, for tests ---- */

/* The query each tier answers for list query q compiled from query_obj and
 * eq: the same filters, keyword, sort and count_only, no projection, page
 * {start: 1, limit: start+limit-1} of q's page (no page when q has none).
 * *out new. */
rd_status merged_tier_query(const json_t *query_obj, const json_t *eq, const query_schema *schema,
                            const query *q, query **out, rd_error *err);

/* One tier's answer to the tier query: its first documents in q's order
 * (borrowed) and its number of matches. */
typedef struct {
    const json_t *const *docs;
    size_t n;
    size_t total;
} merged_part;

/* Combines the tiers' answers (in tier order) into q's answer, query_run's
 * shape: {"results": [projected copies], "total_count": sum}.  *out new. */
rd_status merged_combine(const query *q, const merged_part *parts, size_t n, json_t **out,
                         rd_error *err);

#endif
