/*
 * query-internal.h - pieces of the query engine shared by the list query
 * files (query.c, query_match.c, query_index.c, query_value.c,
 * query_time.c, query_output.c) and stat.c (statistics): dotted paths and
 * their MongoDB-like traversal, the total order / equality / hash over JSON
 * values, sort specs, page specs, a stable index sort, a small hash index,
 * and calendar helpers; last, the compiled list query itself (conditions,
 * projection, struct query), which only the query*.c files use.
 *
 * Not part of the public API: only src/catalog/query*.c and stat.c include
 * it.  Everything here is reentrant; nothing keeps state
 * between calls.
 */
#ifndef REPOD_QUERY_INTERNAL_H
#define REPOD_QUERY_INTERNAL_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "query.h"
#include "status.h"

/* ---- dotted paths ------------------------------------------------------ */

/* A dotted key split into its components.  index[i] is the component as an
 * array index when it is all digits (at most 9), else -1. */
typedef struct {
    char *text;   /* the whole dotted key (owned) */
    char *buf;    /* components, NUL-separated (owned) */
    char **parts; /* nparts pointers into buf (owned array) */
    long *index;
    size_t nparts;
} qpath;

/* Splits dotted into p.  An empty key or an empty component ("a..b", ".a")
 * fails with RD_ERR_DB_QUERY naming `where` and the key; allocation failure
 * gives RD_ERR_INTERNAL.  On failure p is left empty (qpath_free is safe). */
rd_status qpath_init(qpath *p, const char *dotted, const char *where, rd_error *err);
void qpath_free(qpath *p);

/* What qpath_visit reports: the value at the end of the path (QV_LEAF), each
 * element of a leaf that is an array (QV_ELEMENT, after its QV_LEAF), or a
 * branch where the path does not resolve (QV_MISSING, value NULL). */
typedef enum { QV_MISSING, QV_LEAF, QV_ELEMENT } qv_kind;
typedef int (*qvisit_fn)(const json_t *value, qv_kind kind, void *ctx);

/* Walks p through doc with MongoDB query semantics: objects by field name;
 * an array met before the end of the path is entered element by element
 * (object elements continue with the same component; an all-digit component
 * also indexes the array).  Calls cb for every reached value; a nonzero
 * return from cb stops the walk and is returned. */
int qpath_visit(const qpath *p, const json_t *doc, qvisit_fn cb, void *ctx);

/* ---- JSON values: order, equality, hash -------------------------------- */

/* Total order over JSON values modelled on MongoDB's BSON comparison order:
 * null (and NULL = missing) < numbers < strings < objects < arrays < booleans.
 * Numbers compare numerically across integer/real; strings bytewise; arrays
 * element by element then by length; objects field by field in sorted key
 * order then by size (field order does not matter); false < true. */
int qjson_cmp(const json_t *a, const json_t *b);

/* qjson_cmp(a, b) == 0, faster.  1 == 1.0; {"a":1,"b":2} == {"b":2,"a":1}. */
int qjson_equal(const json_t *a, const json_t *b);

/* A hash consistent with qjson_equal (equal values hash equally). */
uint64_t qjson_hash(const json_t *v);

/* ---- sort -------------------------------------------------------------- */

typedef struct {
    qpath path;
    int desc;
} qsort_key;

typedef struct {
    qsort_key *keys;
    size_t nkeys;
} qsort_spec;

/* Compiles a sort value: {key, desc?}, {keys: [{key, desc?}, ...]} or a list
 * of {key, desc?}.  `where` names it in messages ("query.sort").  JSON null
 * gives an empty spec.  Errors: RD_ERR_DB_QUERY (shape, unknown keys, bad
 * key), RD_ERR_INVALID_PARAMETER_TYPE (desc not a boolean). */
rd_status qsort_spec_compile(const json_t *sort, const char *where, qsort_spec *out, rd_error *err);
void qsort_spec_free(qsort_spec *s);

/* Sorts order[0..n) - indexes into docs - stably by spec with MongoDB sort
 * semantics (an array sorts by its smallest element ascending, its largest
 * descending; an empty array sorts before null; missing sorts as null).
 * RD_ERR_INTERNAL on allocation failure (order then unchanged). */
rd_status qsort_order(const qsort_spec *spec, const json_t *const *docs, size_t *order, size_t n,
                      rd_error *err);

/* Stable merge sort of idx[0..n) with cmp; tmp has room for n indexes. */
typedef int (*qidx_cmp_fn)(size_t a, size_t b, const void *ctx);
void qmerge_sort(size_t *idx, size_t *tmp, size_t n, qidx_cmp_fn cmp, const void *ctx);

/* ---- page -------------------------------------------------------------- */

typedef struct {
    size_t offset; /* start - 1 */
    size_t limit;  /* 0 = all */
    int given;
} qpage;

/* Compiles {start?, limit?} (JSON null = not given).  start 0 or 1 = first.
 * Errors: RD_ERR_INVALID_PARAMETER_TYPE (not an object, values not
 * non-negative integers), RD_ERR_DB_QUERY (unknown keys). */
rd_status qpage_compile(const json_t *page, const char *where, qpage *out, rd_error *err);

/* The [*from, *to) slice of total rows that the page selects. */
void qpage_slice(const qpage *p, size_t total, size_t *from, size_t *to);

/* ---- hash index -------------------------------------------------------- */

/* Open-addressing map from a 64-bit hash to caller-side indexes; equality is
 * decided by a callback so that the caller keeps the values. */
typedef struct {
    size_t *slot; /* index + 1, 0 = empty */
    uint64_t *hash;
    size_t cap;
    size_t count;
} qhash;

typedef int (*qhash_eq_fn)(size_t idx, const void *ctx);

/* The stored index with this hash for which eq(index, ctx) holds, or
 * SIZE_MAX. */
size_t qhash_find(const qhash *h, uint64_t hash, qhash_eq_fn eq, const void *ctx);

/* Adds idx under hash (no duplicate check); -1 on allocation failure. */
int qhash_insert(qhash *h, uint64_t hash, size_t idx);
void qhash_free(qhash *h);

/* ---- misc -------------------------------------------------------------- */

/* snprintf for key paths in messages ("query.filter[2]"): truncation is
 * acceptable there, so no caller checks the length. */
void qfmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Formats a failure message that quotes a JSON value (compact, truncated). */
void qdump(const json_t *v, char *buf, size_t size);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t qdays_from_civil(int64_t y, unsigned m, unsigned d);
void qcivil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Floor division / modulo for possibly negative ms values. */
int64_t qfloor_div(int64_t a, int64_t b);

/* ---- compiled list queries (query*.c only) ----------------------------- */

typedef enum { K_EQ, K_CMP, K_EXISTS, K_CONTAIN, K_REGEX, K_TIME } qkind;
typedef enum { C_NONE, C_LT, C_LTE, C_GT, C_GTE } qcmp;

/* One compiled condition. */
typedef struct {
    qpath path;
    qkind kind;
    qcmp cmp;
    int negate;
    json_t *value;       /* owned copy of the operand */
    const json_t **vals; /* K_EQ / K_CMP: operands, borrowed from value */
    size_t nvals;
    int has_null;         /* K_EQ: a null operand (matches missing too) */
    qhash vals_index;     /* K_EQ with many operands: hash of vals */
    const char **needles; /* K_CONTAIN: borrowed from value */
    size_t nneedles;
    regex_t *re; /* K_REGEX */
    size_t nre;
    int exists;   /* K_EXISTS */
    int64_t time; /* K_TIME: operand in ms */
} qcond;

/* `only` / `minimal` projection: a trie of dotted keys. */
typedef struct qproj {
    char *name;
    int whole; /* the whole value is kept */
    struct qproj *child;
    size_t nchild;
    size_t cap;
} qproj;

struct query {
    qcond *and_conds;
    size_t nand;
    qcond *or_conds;
    size_t nor;
    char **words; /* keyword words (owned) */
    size_t nwords;
    qpath *kw_paths; /* schema keyword fields */
    size_t nkw;
    qsort_spec sort;
    qpage page;
    qproj *proj; /* NULL = whole documents */
    int count_only;
};

/* query_match.c: compiles one {k, v, o} condition (cond, borrowed; `where`
 * names it in messages; timediff operands are evaluated against now_ms) into
 * c, which then owns copies of what it needs.  Errors: RD_ERR_DB_QUERY,
 * RD_ERR_OPERATOR_*, RD_ERR_INTERNAL; on failure c is left empty. */
rd_status qi_cond_compile(const json_t *cond, const char *where, int64_t now_ms, qcond *c,
                          rd_error *err);

/* Frees what c owns and leaves it empty (safe on an empty condition). */
void qi_cond_free(qcond *c);

/* 1 when s equals one of c's operands (a K_EQ condition; hashed when long). */
int qi_cond_has_string(const qcond *c, const json_t *s);

/* query_output.c: compiles `only` (a list of dotted keys, borrowed; NULL or
 * empty = none) or, when only is empty and minimal is set, the schema's
 * minimal fields into q->proj.  Errors: RD_ERR_INVALID_PARAMETER_TYPE (an
 * item not a string), RD_ERR_DB_QUERY (bad key), RD_ERR_INTERNAL; q->proj
 * may then be partly built (query_free releases it). */
rd_status qi_proj_compile(query *q, const json_t *only, int minimal, const query_schema *schema,
                          rd_error *err);

/* Frees a projection trie (NULL is fine). */
void qi_proj_free(qproj *p);

/* A new object holding the fields of obj (borrowed) that node keeps; NULL on
 * allocation failure. */
json_t *qi_proj_object(const json_t *obj, const qproj *node);

#endif
