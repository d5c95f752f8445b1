/*
 * readmodel.c - the read model's indexed state: inserting and removing one
 * document in every index (postings, trigrams, kept orders), sorting the
 * orders after a bulk build, and the public write / lookup entry points
 * with their locking.  Documents are in rm_doc.c, queries in rm_query.c.
 */
#include "rm-internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t list_len(const char *const *l)
{
    size_t n = 0;
    while (l != NULL && l[n] != NULL)
        n++;
    return n;
}

/* ---- orders ---------------------------------------------------------------- */

int rm_cmp_default(const rm_state *st, const readmodel_doc *a, const readmodel_doc *b)
{
    int c;
    for (size_t k = 0; k < st->ndflt; k++)
        if ((c = strcmp(rm_dflt(a, k), rm_dflt(b, k))) != 0)
            return c;
    if ((c = strcmp(a->domain, b->domain)) != 0)
        return c;
    return strcmp(a->id, b->id);
}

int rm_cmp_key(const rm_state *st, size_t k, const readmodel_doc *a, const readmodel_doc *b)
{
    const json_t *x = RM_SORTV(a, k), *y = RM_SORTV(b, k);
    int c = x == y ? 0 : query_value_cmp(x, y);
    return c != 0 ? c : rm_cmp_default(st, a, b);
}

/* k == SIZE_MAX: the default order. */
static size_t order_pos(const rm_state *st, const rm_order *o, size_t k, const readmodel_doc *d)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const readmodel_doc *m = st->slot[o->v[mid]];
        int c = k == SIZE_MAX ? rm_cmp_default(st, m, d) : rm_cmp_key(st, k, m, d);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int order_add(rm_state *st, rm_order *o, size_t k, uint32_t s)
{
    size_t pos = st->bulk ? o->n : order_pos(st, o, k, st->slot[s]);
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 64;
        uint32_t *nv = realloc(o->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        o->v = nv;
        o->cap = ncap;
    }
    memmove(&o->v[pos + 1], &o->v[pos], (o->n - pos) * sizeof(*o->v));
    o->v[pos] = s;
    o->n++;
    return 0;
}

static void order_del(rm_state *st, rm_order *o, size_t k, uint32_t s)
{
    size_t pos = 0;
    if (st->bulk) /* not sorted yet (a duplicate in a bulk build): search */
        while (pos < o->n && o->v[pos] != s)
            pos++;
    else
        pos = order_pos(st, o, k, st->slot[s]);
    if (pos < o->n && o->v[pos] == s) {
        memmove(&o->v[pos], &o->v[pos + 1], (o->n - pos - 1) * sizeof(*o->v));
        o->n--;
    }
}

typedef struct {
    const rm_state *st;
} sort_ctx;

static int cmp_default_slots(const void *a, const void *b, void *arg)
{
    const sort_ctx *c = arg;
    return rm_cmp_default(c->st, c->st->slot[*(const uint32_t *)a],
                          c->st->slot[*(const uint32_t *)b]);
}

/* Sort entries with their keys pulled out of the documents, so that the
 * bulk sorts compare compact arrays rather than chase pointers. */
#define DFLT_MAX 6
typedef struct {
    const char *f[DFLT_MAX]; /* default-order fields, then domain and id */
    uint32_t slot;
} dflt_ent;

typedef struct {
    const json_t *v;
    int trank; /* 1 null / missing, 3 string, 0 anything else */
    uint32_t rank;
    uint32_t slot;
} key_ent;

static int cmp_dflt_ent(const void *a, const void *b, void *arg)
{
    const dflt_ent *x = a, *y = b;
    size_t n = *(const size_t *)arg;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(x->f[i], y->f[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

static int cmp_key_ent(const void *a, const void *b)
{
    const key_ent *x = a, *y = b;
    int c;
    if (x->trank == 3 && y->trank == 3) {
        size_t lx = json_string_length(x->v), ly = json_string_length(y->v);
        c = x->v == y->v
                ? 0
                : memcmp(json_string_value(x->v), json_string_value(y->v), lx < ly ? lx : ly);
        if (c == 0)
            c = (lx > ly) - (lx < ly);
    } else if (x->trank == 1 && y->trank == 1)
        c = 0;
    else
        c = query_value_cmp(x->v, y->v);
    return c != 0 ? c : (x->rank > y->rank) - (x->rank < y->rank);
}

static int sort_default(rm_state *st)
{
    size_t n = st->dorder.n, nf = st->ndflt + 2;
    dflt_ent *e;
    if (nf > DFLT_MAX) {
        sort_ctx c = {st};
        qsort_r(st->dorder.v, n, sizeof(*st->dorder.v), cmp_default_slots, &c);
        return 0;
    }
    e = malloc(n * sizeof(*e));
    if (e == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const readmodel_doc *d = st->slot[st->dorder.v[i]];
        for (size_t k = 0; k < st->ndflt; k++)
            e[i].f[k] = rm_dflt(d, k);
        e[i].f[st->ndflt] = d->domain;
        e[i].f[st->ndflt + 1] = d->id;
        e[i].slot = st->dorder.v[i];
    }
    qsort_r(e, n, sizeof(*e), cmp_dflt_ent, &nf);
    for (size_t i = 0; i < n; i++)
        st->dorder.v[i] = e[i].slot;
    free(e);
    return 0;
}

static int sort_key(rm_state *st, size_t k, const uint32_t *rank, key_ent *e)
{
    rm_order *o = &st->orders[k];
    for (size_t i = 0; i < o->n; i++) {
        const json_t *v = RM_SORTV(st->slot[o->v[i]], k);
        e[i].v = v;
        e[i].trank = v == NULL || json_is_null(v) ? 1 : json_is_string(v) ? 3 : 0;
        e[i].rank = rank[o->v[i]];
        e[i].slot = o->v[i];
    }
    qsort(e, o->n, sizeof(*e), cmp_key_ent);
    for (size_t i = 0; i < o->n; i++)
        o->v[i] = e[i].slot;
    return 0;
}

typedef struct {
    rm_state *st;
    const uint32_t *rank;
    key_ent *e;
} sort_half;

/* Sorts the kept orders of the odd sort keys (each order is its own array:
 * the two threads share only read-only documents and ranks). */
static void *sort_odd_keys(void *arg)
{
    sort_half *h = arg;
    for (size_t k = 1; k < h->st->nsort; k += 2)
        sort_key(h->st, k, h->rank, h->e);
    return NULL;
}

static void order_fit(rm_order *o)
{
    uint32_t *v = o->n > 0 ? realloc(o->v, o->n * sizeof(*v)) : NULL;
    if (v != NULL) {
        o->v = v;
        o->cap = o->n;
    }
}

/* Ends a bulk build: sorts the orders that were appended to, the default
 * order first, whose ranks then break the sort keys' ties. */
int rm_finish_bulk(rm_state *st)
{
    uint32_t *rank = NULL;
    key_ent *e = NULL;
    sort_half half = {NULL, NULL, NULL};
    pthread_t thr;
    int started = 0;
    int rc = -1;
    st->bulk = 0;
    /* the postings and orders grew by doubling: give back the room a bulk
     * build left before the sorts take theirs */
    rm_map_fit_ids(&st->domains);
    rm_map_fit_ids(&st->tri);
    for (size_t f = 0; f < st->neq; f++) {
        rm_map_fit_ids(&st->eq[f]);
        rm_ids_fit(&st->eqarr[f]);
    }
    order_fit(&st->dorder);
    for (size_t k = 0; k < st->nsort; k++)
        order_fit(&st->orders[k]);
    if (st->dorder.n < 2) /* qsort wants a non-NULL array */
        return 0;
    /* one sort's entries at a time: the default order's are freed before
     * the sort keys' are taken */
    rank = malloc(st->nslots * sizeof(*rank));
    if (rank == NULL || sort_default(st) != 0 || (e = malloc(st->dorder.n * sizeof(*e))) == NULL)
        goto done;
    for (size_t i = 0; i < st->dorder.n; i++)
        rank[st->dorder.v[i]] = (uint32_t)i;
    if (st->nsort > 1) { /* the odd keys on a second thread */
        half.st = st;
        half.rank = rank;
        half.e = malloc(st->dorder.n * sizeof(*half.e));
        if (half.e != NULL && pthread_create(&thr, NULL, sort_odd_keys, &half) == 0)
            started = 1;
    }
    for (size_t k = 0; k < st->nsort; k++)
        if (!started || k % 2 == 0)
            sort_key(st, k, rank, e);
    if (started)
        pthread_join(thr, NULL);
    rc = 0;
done:
    free(half.e);
    free(rank);
    free(e);
    return rc;
}

/* ---- state ----------------------------------------------------------------- */

rm_state *rm_state_new(const resource_desc *res, const rm_layout *lay)
{
    rm_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->res = res;
    st->lay = lay;
    st->neq = list_len(res->eq_fields);
    st->nsort = list_len(res->sort_keys);
    st->ndflt = list_len(res->default_order);
    st->nkw = list_len(res->keyword_fields);
    st->kw_indexable = 1;
    for (size_t i = 0; i < st->nkw; i++)
        if (strchr(res->keyword_fields[i], '.') != NULL)
            st->kw_indexable = 0;
    st->eq = calloc(st->neq ? st->neq : 1, sizeof(*st->eq));
    st->eqarr = calloc(st->neq ? st->neq : 1, sizeof(*st->eqarr));
    st->orders = calloc(st->nsort ? st->nsort : 1, sizeof(*st->orders));
    st->narray = calloc(st->nsort ? st->nsort : 1, sizeof(*st->narray));
    if (st->eq == NULL || st->eqarr == NULL || st->orders == NULL || st->narray == NULL) {
        rm_state_free(st);
        return NULL;
    }
    return st;
}

void rm_state_free(rm_state *st)
{
    if (st == NULL)
        return;
    for (uint32_t s = 0; s < st->nslots; s++)
        readmodel_doc_release(st->slot[s]);
    free(st->slot);
    free(st->freel);
    rm_map_free(&st->keys, NULL);
    rm_map_free(&st->domains, rm_ids_free_ptr);
    for (size_t i = 0; st->eq != NULL && i < st->neq; i++)
        rm_map_free(&st->eq[i], rm_ids_free_ptr);
    free(st->eq);
    for (size_t i = 0; st->eqarr != NULL && i < st->neq; i++)
        free(st->eqarr[i].v);
    free(st->eqarr);
    rm_map_free(&st->tri, rm_ids_free_ptr);
    free(st->dorder.v);
    for (size_t k = 0; st->orders != NULL && k < st->nsort; k++)
        free(st->orders[k].v);
    free(st->orders);
    free(st->narray);
    free(st);
}

static size_t doc_key(const char *domain, const char *id, char **out)
{
    size_t ld = strlen(domain), li = strlen(id);
    *out = malloc(ld + li + 2);
    if (*out == NULL)
        return 0;
    memcpy(*out, domain, ld + 1);
    memcpy(*out + ld + 1, id, li + 1);
    return ld + li + 1;
}

/* Adds slot s to the postings of eq field f (a string value) or to the
 * field's array holders (del: removes it). */
static int eq_index(rm_state *st, size_t f, uint32_t s, int del)
{
    const json_t *v = rm_val(st->slot[s], st->lay->eq[f]);
    if (json_is_string(v)) {
        if (del)
            rm_post_del(&st->eq[f], json_string_value(v), json_string_length(v), s);
        else
            return rm_post_add(&st->eq[f], json_string_value(v), json_string_length(v), s);
    } else if (json_is_array(v)) {
        st->slot[s]->eq_array = 1;
        if (del)
            rm_ids_del(&st->eqarr[f], s);
        else
            return rm_ids_add(&st->eqarr[f], s);
    }
    return 0;
}

/* The trigrams of the keyword fields of d, appended to *out. */
static int doc_trigrams(const rm_state *st, const readmodel_doc *d, rm_ids *out)
{
    for (size_t f = 0; f < st->nkw; f++) {
        const json_t *v = rm_val(d, st->lay->kw[f]), *e;
        size_t i;
        if (json_is_string(v) && rm_trigrams(json_string_value(v), json_string_length(v), out))
            return -1;
        if (json_is_array(v)) {
            json_array_foreach(v, i, e)
            {
                if (json_is_string(e) &&
                    rm_trigrams(json_string_value(e), json_string_length(e), out) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

static void tri_key(uint32_t t, char key[3])
{
    key[0] = (char)(t >> 16);
    key[1] = (char)(t >> 8);
    key[2] = (char)t;
}

/* Removes slot s from every index and frees it. */
static void unindex(rm_state *st, uint32_t s)
{
    readmodel_doc *d = st->slot[s];
    rm_ids tri = {0};
    char key[3];
    rm_post_del(&st->domains, d->domain, strlen(d->domain), s);
    for (size_t f = 0; f < st->neq; f++)
        eq_index(st, f, s, 1);
    if (st->kw_indexable) {
        doc_trigrams(st, d, &tri); /* on OOM a stale posting only costs a wasted match */
        for (size_t i = 0; i < tri.n; i++) {
            tri_key(tri.v[i], key);
            rm_post_del(&st->tri, key, 3, s);
        }
        free(tri.v);
    }
    order_del(st, &st->dorder, SIZE_MAX, s);
    for (size_t k = 0; k < st->nsort; k++) {
        order_del(st, &st->orders[k], k, s);
        st->narray[k] -= json_is_array(RM_SORTV(d, k));
    }
    readmodel_doc_release(d);
    st->slot[s] = NULL;
    st->freel[st->nfree++] = s;
    st->count--;
}

int rm_state_del(rm_state *st, const char *domain, const char *id)
{
    char *key = NULL;
    size_t len = doc_key(domain, id, &key);
    void *v = key != NULL ? rm_map_del(&st->keys, key, len) : NULL;
    free(key);
    if (v == NULL)
        return 0;
    unindex(st, (uint32_t)((uintptr_t)v - 1));
    return 1;
}

static int alloc_slot(rm_state *st, uint32_t *out)
{
    if (st->nfree > 0) {
        *out = st->freel[--st->nfree];
        return 0;
    }
    if (st->nslots == st->cap) {
        uint32_t ncap = st->cap ? st->cap * 2 : 64;
        readmodel_doc **ns = realloc(st->slot, ncap * sizeof(*ns));
        uint32_t *nf;
        if (ns == NULL)
            return -1;
        st->slot = ns;
        nf = realloc(st->freel, ncap * sizeof(*nf));
        if (nf == NULL)
            return -1;
        st->freel = nf;
        st->cap = ncap;
    }
    st->slot[st->nslots] = NULL;
    *out = st->nslots++;
    return 0;
}

int rm_state_put(rm_state *st, readmodel_doc *d)
{
    char *key = NULL, tk[3];
    size_t len;
    uint32_t s;
    rm_ids tri = {0};
    int rc = -1;

    rm_state_del(st, d->domain, d->id);
    len = doc_key(d->domain, d->id, &key);
    if (key == NULL || alloc_slot(st, &s) != 0) {
        readmodel_doc_release(d);
        goto done;
    }
    if (rm_map_put(&st->keys, key, len, (void *)(uintptr_t)(s + 1)) != 0) {
        readmodel_doc_release(d);
        st->freel[st->nfree++] = s;
        goto done;
    }
    st->slot[s] = d;
    st->count++;
    /* From here a failure leaves a partly indexed document: drop it whole. */
    if (rm_post_add(&st->domains, d->domain, strlen(d->domain), s) != 0)
        goto undo;
    for (size_t f = 0; f < st->neq; f++)
        if (eq_index(st, f, s, 0) != 0)
            goto undo;
    if (st->kw_indexable) {
        if (doc_trigrams(st, d, &tri) != 0)
            goto undo;
        for (size_t i = 0; i < tri.n; i++) {
            tri_key(tri.v[i], tk);
            if (rm_post_add(&st->tri, tk, 3, s) != 0)
                goto undo;
        }
    }
    for (size_t k = 0; k < st->nsort; k++)
        st->narray[k] += json_is_array(RM_SORTV(d, k));
    if (order_add(st, &st->dorder, SIZE_MAX, s) != 0)
        goto undo;
    for (size_t k = 0; k < st->nsort; k++)
        if (order_add(st, &st->orders[k], k, s) != 0)
            goto undo;
    rc = 0;
    goto done;
undo:
    rm_state_del(st, d->domain, d->id);
done:
    free(tri.v);
    free(key);
    return rc;
}

/* ---- public entry points --------------------------------------------------- */

rd_status readmodel_create(const resource_desc *res, readmodel **out, rd_error *err)
{
    readmodel *rm = calloc(1, sizeof(*rm));
    *out = NULL;
    if (rm == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    rm->res = res;
    if (rm_layout_init(&rm->lay, res) != 0 || (rm->st = rm_state_new(res, &rm->lay)) == NULL ||
        pthread_mutex_init(&rm->intern.lock, NULL) != 0) {
        rm_state_free(rm->st);
        rm_layout_free(&rm->lay);
        free(rm);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    if (pthread_rwlock_init(&rm->lock, NULL) != 0) {
        pthread_mutex_destroy(&rm->intern.lock);
        rm_state_free(rm->st);
        rm_layout_free(&rm->lay);
        free(rm);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    *out = rm;
    return RD_OK;
}

void readmodel_destroy(readmodel *rm)
{
    if (rm == NULL)
        return;
    rm_state_free(rm->st);
    pthread_rwlock_destroy(&rm->lock);
    rm_intern_free(&rm->intern);
    pthread_mutex_destroy(&rm->intern.lock);
    rm_layout_free(&rm->lay);
    free(rm);
}

rd_status readmodel_put(readmodel *rm, const char *domain, const char *id, const json_t *view,
                        rd_error *err)
{
    readmodel_doc *d = rm_doc_new(rm, domain, id, view);
    int rc;
    if (d == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    pthread_rwlock_wrlock(&rm->lock);
    rc = rm_state_put(rm->st, d);
    pthread_rwlock_unlock(&rm->lock);
    return rc == 0 ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
}

int readmodel_delete(readmodel *rm, const char *domain, const char *id)
{
    int rc;
    pthread_rwlock_wrlock(&rm->lock);
    rc = rm_state_del(rm->st, domain, id);
    pthread_rwlock_unlock(&rm->lock);
    return rc;
}

size_t readmodel_count(readmodel *rm)
{
    size_t n;
    pthread_rwlock_rdlock(&rm->lock);
    n = rm->st->count;
    pthread_rwlock_unlock(&rm->lock);
    return n;
}

readmodel_doc *readmodel_get(readmodel *rm, const char *domain, const char *id)
{
    char *key = NULL;
    size_t len = doc_key(domain, id, &key);
    readmodel_doc *d = NULL;
    void *v;
    if (key == NULL)
        return NULL;
    pthread_rwlock_rdlock(&rm->lock);
    v = rm_map_get(&rm->st->keys, key, len);
    if (v != NULL) {
        d = rm->st->slot[(uintptr_t)v - 1];
        rm_doc_ref(d);
    }
    pthread_rwlock_unlock(&rm->lock);
    free(key);
    return d;
}
