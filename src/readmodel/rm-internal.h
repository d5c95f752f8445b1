/*
 * rm-internal.h - private pieces of the read model (src/readmodel/ only):
 * a byte-string hash map, sorted id sets, the document and the indexed
 * state that a model swaps as a whole on a bulk build.
 */
#ifndef REPOD_RM_INTERNAL_H
#define REPOD_RM_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "readmodel.h"

/* ---- byte-string hash map (open addressing, backward-shift delete) ---- */

typedef struct {
    char *key; /* owned copy, NULL = empty slot */
    size_t len;
    uint64_t hash;
    void *val;
} rm_mapent;

typedef struct {
    rm_mapent *e;
    size_t cap; /* power of two or 0 */
    size_t count;
} rm_map;

void *rm_map_get(const rm_map *m, const char *key, size_t len);
/* Adds a new key (must be absent); -1 when memory runs out. */
int rm_map_put(rm_map *m, const char *key, size_t len, void *val);
/* Removes key and returns its value (NULL when absent). */
void *rm_map_del(rm_map *m, const char *key, size_t len);
void rm_map_free(rm_map *m, void (*free_val)(void *));

/* ---- sorted sets of slot ids ------------------------------------------- */

typedef struct {
    uint32_t *v;
    size_t n;
    size_t cap;
} rm_ids;

int rm_ids_add(rm_ids *s, uint32_t id); /* no-op when present; -1 on OOM */
void rm_ids_del(rm_ids *s, uint32_t id);
int rm_ids_has(const rm_ids *s, uint32_t id);
void rm_ids_free_ptr(void *p); /* frees an allocated rm_ids and its array */
/* Gives back the array's unused room (after a bulk build); the map's
 * values are rm_ids. */
void rm_ids_fit(rm_ids *s);
void rm_map_fit_ids(rm_map *m);

/* Appends id (unsorted use); -1 on OOM. */
int rm_ids_push(rm_ids *s, uint32_t id);
/* *out (its array reused) = a AND b / a OR b, both sorted; -1 on OOM. */
int rm_ids_inter(const rm_ids *a, const rm_ids *b, rm_ids *out);
int rm_ids_union(const rm_ids *a, const rm_ids *b, rm_ids *out);

/* A sorted set of slot ids that may stand for "every document". */
typedef struct {
    rm_ids s;
    int all;
} cset_t;

/* Postings: value bytes -> allocated rm_ids. */
int rm_post_add(rm_map *m, const char *key, size_t len, uint32_t id);
void rm_post_del(rm_map *m, const char *key, size_t len, uint32_t id);

/* The distinct lower-cased (ASCII) trigrams of s, appended to *out (packed
 * as 24-bit numbers, unsorted, may repeat); -1 on OOM. */
int rm_trigrams(const char *s, size_t len, rm_ids *out);

/* ---- documents and state ----------------------------------------------- */

/* Where a resource's kept keys live in a document's compact form: the kept
 * (top-level) keys, and the index among them of every field the indexes and
 * orders read.  Computed once per model. */
typedef struct {
    const char **keys; /* nkeys kept keys (borrowed from the description) */
    unsigned char *shared;
    size_t nkeys;
    size_t id, domain;             /* the id and domain fields' key index */
    size_t *eq, *sort, *dflt, *kw; /* per eq field / sort key / ...: key index */
} rm_layout;

/* A document: its key, its view as ready bytes (JSON_COMPACT), and the
 * values of the kept keys (shared, immutable), which is what filters,
 * orders and indexes read; the whole view is decoded from the bytes when a
 * caller needs it.  One allocation holds the struct, then vals (nvals
 * pointers), then the bytes (rm_doc_new); freeing the document frees all
 * three. */
struct readmodel_doc {
    atomic_long refs;
    const char *domain; /* owned, or borrowed from the kept value */
    const char *id;
    char *bytes;
    size_t len;
    json_t **vals; /* per kept key: a reference, NULL = missing */
    size_t nvals;
    _Atomic(json_t *) view;  /* readmodel_doc_view's decoded view, or NULL */
    const rm_layout *layout; /* borrowed from the model */
    unsigned char eq_array;  /* some eq field holds an array */
    unsigned char own_domain, own_id;
    /* the ready bytes are bytes[0..len) then tail[0..tlen): the view's last
     * member when it is repository_info (the same for every document of a
     * tier), shared through the model's intern table; tail NULL = none */
    const char *tail;
    size_t tlen;
    _Atomic(char *) joined; /* readmodel_doc_bytes' whole copy, or NULL */
};

/* The value of sort key k / default-order field k of d. */
static inline const json_t *rm_val(const readmodel_doc *d, size_t i)
{
    return i < d->nvals ? d->vals[i] : NULL;
}
#define RM_SORTV(d, k) rm_val((d), (d)->layout->sort[k])
const char *rm_dflt(const readmodel_doc *d, size_t k);

int rm_layout_init(rm_layout *lay, const resource_desc *res); /* -1 on OOM */
void rm_layout_free(rm_layout *lay);

/* The shared copies of repeated values (resource shared_fields). */
typedef struct {
    pthread_mutex_t lock;
    rm_map map;     /* string bytes -> json_t (one reference held) */
    rm_map tails;   /* ready-bytes tails: bytes -> owned NUL-terminated copy */
    rm_map arrays;  /* arrays of strings (lengths and bytes) -> json_t (held) */
    rm_map objects; /* an object's compact bytes -> json_t (one held) */
    /* the tail last shared (one of tails' values, or NULL): a document
     * whose bytes end with it shares it without a lookup */
    _Atomic(const char *) last_tail;
} rm_intern;

void rm_intern_free(rm_intern *in);

typedef struct {
    uint32_t *v;
    size_t n;
    size_t cap;
} rm_order;

typedef struct {
    const resource_desc *res;
    const rm_layout *lay;
    size_t neq, nsort, ndflt, nkw;
    int kw_indexable; /* every keyword field is a top-level key */
    readmodel_doc **slot;
    uint32_t nslots, cap;
    uint32_t *freel;
    size_t nfree;
    size_t count;
    rm_map keys;      /* "domain\0id" -> slot + 1 */
    rm_map domains;   /* domain -> rm_ids */
    rm_map *eq;       /* per eq field: string value -> rm_ids */
    rm_ids *eqarr;    /* per eq field: documents whose value is an array */
    rm_map tri;       /* trigram -> rm_ids */
    rm_order dorder;  /* default order */
    rm_order *orders; /* per sort key */
    size_t *narray;   /* per sort key: documents whose value is an array */
    int bulk;         /* building: orders are appended, sorted at the end */
} rm_state;

struct readmodel {
    const resource_desc *res;
    pthread_rwlock_t lock;
    rm_state *st;
    rm_layout lay;
    rm_intern intern;
    int plan; /* READMODEL_PLAN_*: how a list is put in order */
};

rm_state *rm_state_new(const resource_desc *res, const rm_layout *lay);
void rm_state_free(rm_state *st);
int rm_state_put(rm_state *st, readmodel_doc *d); /* takes d; -1 on OOM */
/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)'s bytes (malloc'd,
 * NUL-terminated, *len bytes), written faster; NULL when memory runs out
 * or v cannot be written. */
char *rm_dump(const json_t *v, size_t *len);
/* The same bytes written after head bytes left for the caller, in one
 * block (malloc'd: the block's start; the bytes at block + head, *len of
 * them, NUL-terminated).  NULL as rm_dump. */
char *rm_dump_after(const json_t *v, size_t head, size_t *len);
/* Ends a bulk build (sorts the appended orders); -1 on OOM. */
int rm_finish_bulk(rm_state *st);
int rm_state_del(rm_state *st, const char *domain, const char *id);
/* A new document (domain, id) of view (borrowed: its kept values are copied
 * or shared through rm->intern).  NULL when memory runs out. */
readmodel_doc *rm_doc_new(readmodel *rm, const char *domain, const char *id, const json_t *view);
void rm_doc_ref(readmodel_doc *d);

/* The candidates of q (NULL = no condition) among the documents of the
 * given domains (NULL = all), into *c (its array new): the intersection of
 * what the indexes allow (eq postings, trigrams of keyword words and of
 * contain / regex operands on keyword fields), smallest set first, then
 * the domains' postings.  A superset of the matches; every slot in it
 * holds a document.  c->all: no index narrowed and no domain was given.
 * Under the read lock; -1 on OOM (rm_cand.c). */
int rm_candidates(const rm_state *st, const query *q, const char *const *domains, size_t ndomains,
                  cset_t *c);
/* The documents every match of the extended regular expression pattern
 * (ASCII case-insensitive) can be among, by the trigrams of the literal
 * runs it requires (a group's alternatives give the union of theirs);
 * out->all when it requires none.  -1 on OOM. */
int rm_regex_set(const rm_state *st, const char *pattern, cset_t *out);

/* The slots (ascending) of the documents of the given domains that match q
 * (NULL = all), appended to *matched; *tested counts the documents
 * query_match had to test.  Under the read lock; -1 on OOM. */
int rm_match_slots(const rm_state *st, const query *q, const char *const *domains, size_t ndomains,
                   rm_ids *matched, size_t *tested);

/* The slots of the documents of the given domains that match q (NULL =
 * all), in default order, into *ordered (empty; free its v); *tested counts
 * the documents query_match had to test.  Under the read lock; -1 on OOM. */
int rm_matches_in_order(const rm_state *st, const query *q, const char *const *domains,
                        size_t ndomains, rm_ids *ordered, size_t *tested);

/* Default order, and the order of sort key k (then default order). */
int rm_cmp_default(const rm_state *st, const readmodel_doc *a, const readmodel_doc *b);
int rm_cmp_key(const rm_state *st, size_t k, const readmodel_doc *a, const readmodel_doc *b);

#endif
