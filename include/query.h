/*
 * query.h - the query and statistics engine (SPEC section 8).
 *
 * One engine that runs over any set of JSON documents (local plugins, mirrored
 * remote catalogs, repositories, or the merged set).  Callers compile a query
 * once, then either test single documents (query_match) or run the whole
 * list pipeline (query_run: filter, keyword, sort, page, projection).
 *
 * Ownership: compiled queries own copies of what they need from the request;
 * documents passed in are borrowed and never modified.
 */
#ifndef REPOD_QUERY_H
#define REPOD_QUERY_H

#include <jansson.h>
#include <stdint.h>

#include "status.h"

/* What differs between resources: which fields `keyword` searches and which
 * fields `minimal` returns.  Both lists are NULL-terminated and borrowed for
 * the life of the compiled query (use static arrays). */
typedef struct {
    const char *const *keyword_fields;
    const char *const *minimal_fields;
} query_schema;

extern const query_schema query_schema_plugin;     /* plugin_id, name, provider, labels */
extern const query_schema query_schema_repository; /* repository_id, name */

typedef struct query query;

/* Compiles a list query.  query_obj is the request's "query" value (NULL or
 * JSON null = match all); eq_filters is an object of extra top-level `eq`
 * conditions ANDed with the query (NULL = none; a JSON null value in it is
 * skipped).  Errors: RD_ERR_DB_QUERY, RD_ERR_OPERATOR_*,
 * RD_ERR_INVALID_PARAMETER_TYPE, with a message naming the condition.
 * schema NULL means query_schema_plugin.  timediff values are evaluated
 * here, once.  On success *out is a new compiled query (free with
 * query_free); on failure *out is NULL.  A compiled query is immutable and
 * may be used from several threads at once.  Semantics: docs/query.md. */
rd_status query_compile(const json_t *query_obj, const json_t *eq_filters,
                        const query_schema *schema, query **out, rd_error *err);

void query_free(query *q);

/* 1 if doc (borrowed) satisfies filter, filter_or, keyword and eq_filters. */
int query_match(const query *q, const json_t *doc);

/* Runs the whole list pipeline over docs (a JSON array, borrowed; its order is
 * the default order and ties in an explicit sort keep it).  *out receives a
 * new object {"results": [...], "total_count": N}; total_count counts matches
 * before paging; count_only gives empty results.  Result documents are
 * copies (or projections): they share nothing with docs. */
rd_status query_run(const query *q, const json_t *docs, json_t **out, rd_error *err);

/* Runs a statistics query (StatisticsQuery object: filter, filter_or,
 * keyword, then distinct or aggregate, and page) over docs (borrowed).
 * *out receives a new object {"results": [...]} plus "total_count" when page
 * is given.  Neither aggregate nor distinct -> RD_ERR_REQUIRED_PARAMETER
 * (key = aggregate); both -> RD_ERR_DB_QUERY.  The whole query is checked
 * before any document is read: on failure *out is NULL.  The results share
 * nothing with docs. */
rd_status query_stat(const json_t *stat_query, const query_schema *schema, const json_t *docs,
                     json_t **out, rd_error *err);

/* The filters of a statistics query (its filter, filter_or and keyword,
 * compiled as a list query, as query_stat applies them).  *out is a new
 * query (query_free), or NULL when stat_query is not an object; errors are
 * query_compile's (callers that only narrow what they read may ignore them
 * and leave the error to query_stat). */
rd_status query_stat_filter(const json_t *stat_query, const query_schema *schema, query **out,
                            rd_error *err);

/* Statistics from group counts, for callers that keep their own indexes.
 * query_stat_groups_compile compiles stat_query as query_stat does (same
 * errors); when it is filter / filter_or / keyword, then an aggregate whose
 * first stage is a group on one or more keys (no date_format) with only
 * count fields (the v2 group_by form included), *out gets a new plan (free
 * with query_stat_groups_free), else *out is NULL.  The plan gives the
 * filter (a compiled list query, borrowed) and the keys (dotted paths, as
 * the group stage reads them with query_lookup).  The caller counts the
 * matching documents per tuple of key values - values compared as the
 * group stage does (qjson_equal; missing and null differ) - and adds the
 * groups to a tally in order of first appearance in the input order; the
 * tallies of several inputs (tiers) may be added one after the other into
 * one tally, which then stands for their concatenation (counts of equal
 * tuples summed, first appearance kept).  query_stat_groups_finish runs the
 * remaining stages and the page and gives exactly query_stat's answer over
 * those documents (*out new). */
typedef struct query_stat_groups query_stat_groups;
typedef struct query_stat_tally query_stat_tally;
rd_status query_stat_groups_compile(const json_t *stat_query, const query_schema *schema,
                                    query_stat_groups **out, rd_error *err);
const query *query_stat_groups_filter(const query_stat_groups *g);
size_t query_stat_groups_nkeys(const query_stat_groups *g);
/* The dotted path of group key i (borrowed). */
const char *query_stat_groups_key(const query_stat_groups *g, size_t i);
void query_stat_groups_free(query_stat_groups *g);
/* A new empty tally for plan g (query_stat_tally_free); NULL on OOM. */
query_stat_tally *query_stat_tally_new(const query_stat_groups *g);
/* count more documents whose key values are values[0..nkeys) (borrowed;
 * NULL = the key is missing; copied when a new group is made); -1 on OOM. */
int query_stat_tally_add(query_stat_tally *t, const json_t *const *values, size_t count);
/* The number of distinct groups so far. */
size_t query_stat_tally_groups(const query_stat_tally *t);
void query_stat_tally_free(query_stat_tally *t);
rd_status query_stat_groups_finish(const query_stat_groups *g, const query_stat_tally *t,
                                   json_t **out, rd_error *err);

/* Index hints: what the AND part of q (top-level eq_filters and `filter`)
 * says about the top-level key `field` (a dotted field gives 0; keys compare
 * as text: "provider" is not "provider.0").  A condition counts when it is a positive `eq` or `in`
 * (never `not` / `not_in`) on exactly that key and every operand is a string
 * without a NUL byte; several such conditions intersect.  Conditions in
 * filter_or, keyword words and any other operator are ignored (they only
 * narrow the matches further).
 *
 * Returns 1 and sets *values to a new array of the distinct allowed strings,
 * sorted bytewise (possibly empty: nothing can match), when at least one
 * condition counts; the guarantee is then that every document matching q
 * whose value at field is a string holds one of those strings.  (A document
 * whose value is an array may still match through an element; numbers,
 * booleans, null, objects and missing values cannot.)  Returns 0 with
 * *values NULL when no condition counts, -1 with *values NULL when memory
 * runs out. */
int query_index_values(const query *q, const char *field, json_t **values);

/* 1 when matching q depends on nothing but the keys in fields (a
 * NULL-terminated list) through the sets query_index_values reports: no
 * filter_or, no keyword, and every AND condition counts in the sense above
 * for one of the fields.  Then a document matches exactly when, for every
 * field with a set, its value there (or an element of it, if an array) is
 * one of the set's strings.  0 otherwise. */
int query_index_only(const query *q, const char *const *fields);

/* 1 when q asks only for total_count (query.count_only). */
int query_is_count_only(const query *q);

/* 1 when q projects its results (only / minimal): query_project then gives
 * less than the document. */
int query_projects(const query *q);

/* Plan accessors for callers that keep their own indexes (the read model).
 * query_sort_key: 1 and the i-th sort key (dotted text, borrowed from q)
 * and its direction when q has one, else 0.  query_page_window: the
 * [*from, *to) slice of total sorted matches that q's page selects.
 * query_keyword_words: the number of keyword words and, in *words, the
 * words themselves (borrowed from q).  query_value_cmp: the total order
 * over JSON values that sort uses (NULL = missing sorts as null).
 * query_project: a new copy of doc (borrowed) as query_run would return it
 * (the only / minimal projection applied); NULL when memory runs out. */
int query_sort_key(const query *q, size_t i, const char **key, int *desc);
void query_page_window(const query *q, size_t total, size_t *from, size_t *to);
size_t query_keyword_words(const query *q, const char *const **words);
int query_value_cmp(const json_t *a, const json_t *b);
json_t *query_project(const query *q, const json_t *doc);

/* The distinct top-level keys that query_match(q, ...) reads: the first
 * component of every filter, filter_or and eq_filters key and, when q has
 * keyword words, of every keyword field.  *keys gets a new array (free() it)
 * of strings borrowed from q.  Returns their number, (size_t)-1 when memory
 * runs out (*keys NULL).  A document matches q exactly when a copy of it
 * holding only those keys does. */
size_t query_match_keys(const query *q, const char ***keys);

/* Text hints for a trigram index: for AND condition i of q (filter and
 * eq_filters, never filter_or), 1 when it is a positive contain, contain_in,
 * regex or regex_in on a top-level key; then *field is that key, *is_regex
 * says which, and *operand is the operand as given (a string, or an array of
 * strings for the _in forms), all borrowed from q.  Both match ASCII
 * case-insensitively.  0 for any other condition; -1 when i is past the
 * last one. */
int query_text_cond(const query *q, size_t i, const char **field, int *is_regex,
                    const json_t **operand);

/* Sorts order[0..n) - indexes into docs (borrowed) - stably by q's sort,
 * exactly as query_run does.  RD_ERR_INTERNAL on allocation failure. */
rd_status query_sort(const query *q, const json_t *const *docs, size_t *order, size_t n,
                     rd_error *err);

/* Looks up a dotted key ("tags.description", "labels") in doc; returns a
 * borrowed value or NULL when missing.  Through arrays of objects the key
 * reaches every element: the result is then a new array owned by the caller
 * via *owned (set to NULL when the returned value is borrowed).  This is
 * MongoDB's aggregation field-path rule ("$a.b" over an array of objects
 * gives the array of their "b"s, nested arrays stay nested); with owned NULL
 * such a lookup returns NULL. */
json_t *query_lookup(const json_t *doc, const char *dotted_key, json_t **owned);

/* Parses an ISO-8601 date or date-time into ms since the epoch (UTC):
 * "2022-01-01", "2022-01-01T08:02", "2022-01-01T08:02:38Z",
 * "2022-01-01T08:02:38.094Z", "2022-01-01 08:02:38+09:00" ("+0900", "+09"
 * too); no zone means UTC; fractions beyond ms are truncated.  Returns 0 on
 * success, -1 when s is not such a date (fields out of range included). */
int query_parse_datetime(const char *s, int64_t *epoch_ms);

/* Evaluates a `timediff` value against now_ms: "now" followed by any number
 * of steps applied left to right, each "+N<u>" / "-N<u>" (add / subtract) or
 * "/<u>" (round down to the start of the unit, UTC; weeks start on Monday),
 * with units s m h d w: "now-1d", "now+2h", "now/d", "now-1w/d".  Returns 0
 * and sets *epoch_ms on success, -1 on a malformed value. */
int query_parse_timediff(const char *s, int64_t now_ms, int64_t *epoch_ms);

#endif
