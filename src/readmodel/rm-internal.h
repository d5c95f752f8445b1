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

/* Postings: value bytes -> allocated rm_ids. */
int rm_post_add(rm_map *m, const char *key, size_t len, uint32_t id);
void rm_post_del(rm_map *m, const char *key, size_t len, uint32_t id);

/* The distinct lower-cased (ASCII) trigrams of s, appended to *out (packed
 * as 24-bit numbers, unsorted, may repeat); -1 on OOM. */
int rm_trigrams(const char *s, size_t len, rm_ids *out);

/* ---- documents and state ----------------------------------------------- */

struct readmodel_doc {
    atomic_long refs;
    char *domain;
    char *id;
    json_t *view;
    char *bytes;
    size_t len;
    const json_t **sortv; /* per resource sort key: borrowed from view */
    const char **dflt;    /* per default-order field: borrowed ("" if none) */
    int eq_array;         /* some eq field holds an array */
};

typedef struct {
    uint32_t *v;
    size_t n;
    size_t cap;
} rm_order;

typedef struct {
    const resource_desc *res;
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
};

rm_state *rm_state_new(const resource_desc *res);
void rm_state_free(rm_state *st);
int rm_state_put(rm_state *st, readmodel_doc *d); /* takes d; -1 on OOM */
int rm_state_del(rm_state *st, const char *domain, const char *id);
readmodel_doc *rm_doc_new(const resource_desc *res, const char *domain, const char *id,
                          const json_t *view);
void rm_doc_ref(readmodel_doc *d);

/* Default order, and the order of sort key k (then default order). */
int rm_cmp_default(const rm_state *st, const readmodel_doc *a, const readmodel_doc *b);
int rm_cmp_key(const rm_state *st, size_t k, const readmodel_doc *a, const readmodel_doc *b);

#endif
