/*
 * readmodel.h - the in-memory read model of one tier of documents (the
 * local domains' plugins, or one remote repository's cached catalog).
 *
 * A model keeps, for every document of its resource (include/resource.h):
 * the view clients see as ready bytes, a compact copy of the top-level keys
 * the resource names (values repeated across documents shared), and
 * indexes: postings per string value of each eq field and per domain, a
 * trigram index over the keyword fields, a kept order per sort key and the
 * default order.  A list query is answered from those indexes and
 * query_match on the candidates only, with results exactly those of
 * query_run over the same documents in default order; a stat that groups
 * by kept keys (or paths under a kept object) and counts is counted without
 * reading views.
 *
 * Documents are keyed by (domain, id); the remote tier uses domain "".
 *
 * Thread safety: every function may be called from several threads at
 * once; writers are serialised by an internal lock and a reader never sees
 * half a write.  Documents handed out (readmodel_doc) are immutable and
 * reference-counted, so they stay valid after a later write replaces them.
 */
#ifndef REPOD_READMODEL_H
#define REPOD_READMODEL_H

#include <jansson.h>
#include <stddef.h>

#include "query.h"
#include "resource.h"
#include "status.h"

typedef struct readmodel readmodel;
typedef struct readmodel_doc readmodel_doc;

/* A new empty model of resource res (borrowed; use a static description).
 * RD_ERR_INTERNAL when memory runs out. */
rd_status readmodel_create(const resource_desc *res, readmodel **out, rd_error *err);
void readmodel_destroy(readmodel *rm);

/* Inserts or replaces the document (domain, id) with a copy of view (a JSON
 * object, borrowed).  RD_ERR_INTERNAL when memory runs out (the document
 * is then absent: an old version of it is gone). */
rd_status readmodel_put(readmodel *rm, const char *domain, const char *id, const json_t *view,
                        rd_error *err);

/* Removes (domain, id); 1 when it was there, 0 when not. */
int readmodel_delete(readmodel *rm, const char *domain, const char *id);

/* Replaces the whole content by views (a JSON array of objects, borrowed),
 * each keyed by its resource domain_field and id_field (a missing or
 * non-string value counts as ""; a later duplicate replaces an earlier
 * one).  The new content is built aside and swapped in at once. */
rd_status readmodel_build(readmodel *rm, const json_t *views, rd_error *err);

/* The same, one document at a time: begin, add each view (borrowed, keyed
 * as above), then finish (swaps the new content in) or abort (drops it; the
 * model keeps its content); both free the builder.  RD_ERR_INTERNAL when
 * memory runs out: after a failed add, abort; a failed finish has freed
 * the builder and left the model's content as it was. */
typedef struct readmodel_builder readmodel_builder;
rd_status readmodel_build_begin(readmodel *rm, readmodel_builder **out, rd_error *err);
/* Several threads may add to one builder at once (each makes its documents
 * on its own thread); begin, finish and abort are the caller's alone. */
rd_status readmodel_build_add(readmodel_builder *b, const json_t *view, rd_error *err);
/* The same, taking view (a new reference, released by the builder even on
 * failure).  The builder works on two threads: begin starts a worker that
 * makes the documents of views handed over here and indexes every document
 * while the caller reads the next record; finish waits for it.  A view
 * handed over must not be used by the caller any more (a value it shares
 * with others is only read and reference-counted). */
rd_status readmodel_build_add_new(readmodel_builder *b, json_t *view, rd_error *err);
rd_status readmodel_build_finish(readmodel_builder *b, rd_error *err);
void readmodel_build_abort(readmodel_builder *b);

/* The number of documents. */
size_t readmodel_count(readmodel *rm);

/* A new reference to the document (domain, id), or NULL when absent. */
readmodel_doc *readmodel_get(readmodel *rm, const char *domain, const char *id);

/* A document keeps its view as ready bytes (its compact JSON serialisation,
 * see readmodel_doc_parts below) and, for queries, a compact copy of
 * the top-level keys its resource names; the full view is decoded from the
 * bytes on demand.
 *
 * readmodel_doc_decode: a new view decoded from the bytes (the caller owns
 * it); NULL when memory runs out.  Prefer it when the view is used once.
 * readmodel_doc_view: the same view, decoded on the first call and then
 * kept with the document until it is released (borrowed, immutable: never
 * modify it); NULL when memory runs out.  It costs the tree's memory for
 * as long as the document lives. */
json_t *readmodel_doc_decode(const readmodel_doc *d);
/* The view decoded from the bytes with only the top-level keys that are
 * also keys of the object keys (borrowed, a set: its values are not read),
 * in the view's order: a new object the caller owns, NULL when memory runs
 * out.  For callers that read a few keys of many documents at once (a
 * stat over views): the rest of each tree is freed before the next. */
json_t *readmodel_doc_decode_keys(const readmodel_doc *d, const json_t *keys);
const json_t *readmodel_doc_view(const readmodel_doc *d);

/* The ready bytes are held in two parts: the document's own bytes, then a
 * tail shared by the documents of the model (the view's last member when
 * it is repository_info, the same for every document of a tier; an empty
 * tail otherwise).  readmodel_doc_parts gives both (borrowed, valid while
 * d is held; *tail is "" with *tlen 0 when there is none) and returns the
 * whole length: send head then tail, nothing to decode or serialise.
 * readmodel_doc_bytes_copy: the whole bytes in a new NUL-terminated buffer
 * (the caller frees it; len may be NULL), NULL when memory runs out.
 * readmodel_doc_bytes: the whole bytes (borrowed, NUL-terminated, *len
 * bytes; len may be NULL), as before the split: for a document with a tail
 * they are joined on the first call and the copy is kept with the document
 * until it is released (NULL when memory runs out); prefer the two above. */
size_t readmodel_doc_parts(const readmodel_doc *d, const char **head, size_t *hlen,
                           const char **tail, size_t *tlen);
char *readmodel_doc_bytes_copy(const readmodel_doc *d, size_t *len);
const char *readmodel_doc_bytes(const readmodel_doc *d, size_t *len);
void readmodel_doc_release(readmodel_doc *d);

/* The answer of readmodel_query: the page of matching documents in order
 * (new references), the number of matches before paging, and how many
 * documents had to be tested (what the indexes could not decide). */
typedef struct {
    readmodel_doc **docs;
    size_t n;
    size_t total_count;
    size_t tested; /* candidates the indexes left to test with query_match */
} readmodel_result;

/* Runs list query q (compiled with resource_query_schema of the model's
 * resource) over the documents of the given domains (domains[0..ndomains);
 * domains NULL = every document).  Fills *out (free with
 * readmodel_result_free); count_only gives no documents.  RD_ERR_INTERNAL
 * when memory runs out. */
rd_status readmodel_query(readmodel *rm, const query *q, const char *const *domains,
                          size_t ndomains, readmodel_result *out, rd_error *err);
void readmodel_result_free(readmodel_result *r);

/* How readmodel_query puts many matches in order: AUTO picks, by their
 * number, sorting them or walking the kept order until the page is full;
 * SORT and WALK force one (both give the same answer; tests compare
 * them).  Set before the model is shared. */
enum { READMODEL_PLAN_AUTO = 0, READMODEL_PLAN_SORT = 1, READMODEL_PLAN_WALK = 2 };
void readmodel_set_plan(readmodel *rm, int plan);

/* Every document of the given domains (domains NULL = all) that matches q
 * (borrowed; NULL = every document), in default order, unpaged: the local
 * half of a merged read.  Fills *out as readmodel_query (total_count = n).
 * RD_ERR_INTERNAL when memory runs out. */
rd_status readmodel_matches(readmodel *rm, const query *q, const char *const *domains,
                            size_t ndomains, readmodel_result *out, rd_error *err);

/* readmodel_query, answered in query_run's shape: a new object
 * {"results": [...], "total_count": N} with projected copies. */
rd_status readmodel_query_json(readmodel *rm, const query *q, const char *const *domains,
                               size_t ndomains, json_t **out, rd_error *err);

/* The same answer serialised: exactly json_dumps(readmodel_query_json's
 * object, JSON_COMPACT); without a projection the page's ready bytes are
 * joined as they are, nothing is decoded.  *body new (malloc'd,
 * NUL-terminated, *len bytes). */
rd_status readmodel_query_bytes(readmodel *rm, const query *q, const char *const *domains,
                                size_t ndomains, char **body, size_t *len, rd_error *err);

/* Answers a StatisticsQuery (borrowed) over the documents of the given
 * domains (as readmodel_query) when it has the shape the model counts
 * itself: filter / filter_or / keyword, then an aggregate (v1, or the v2
 * group_by form) whose first stage groups by up to 16 keys, each a key the
 * model keeps or a path under one (repository_info.name), with only count
 * fields, where every matching value is a string, null or missing; any
 * later stages and the page run as in query_stat.  *out then gets
 * query_stat's answer over those documents in default order (new).
 * Anything else: RD_OK with *out NULL (not applicable: the caller runs
 * query_stat).  Errors: query_stat's for a bad query; RD_ERR_INTERNAL when
 * memory runs out. */
rd_status readmodel_stat(readmodel *rm, const json_t *stat_query, const char *const *domains,
                         size_t ndomains, json_t **out, rd_error *err);

/* The counting half of readmodel_stat, for a stat over several tiers: the
 * matches of plan (borrowed) over the given domains, counted per group and
 * added to tally in order of first appearance in default order; *counted
 * 1.  When the model cannot count this plan (a key it does not keep, a
 * value it cannot group) *counted is 0 and tally is left as it was.
 * RD_ERR_INTERNAL when memory runs out (tally may then hold part). */
rd_status readmodel_stat_tally(readmodel *rm, const query_stat_groups *plan,
                               const char *const *domains, size_t ndomains, query_stat_tally *tally,
                               int *counted, rd_error *err);

#endif
