/*
 * readmodel.c - the read model's documents and indexed state: creating and
 * releasing documents, inserting and removing one document in every index
 * (postings, trigrams, kept orders), and the public write / lookup entry
 * points with their locking.  Queries are in rm_query.c.
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

/* ---- layout and shared values ------------------------------------------- */

static size_t key_index(const rm_layout *lay, const char *key)
{
    for (size_t i = 0; i < lay->nkeys; i++)
        if (strcmp(lay->keys[i], key) == 0)
            return i;
    return SIZE_MAX;
}

/* Adds the kept key (the first component of a dotted field) when new;
 * its index in *at (may be NULL). */
static int layout_add(rm_layout *lay, const char *field, size_t *at)
{
    size_t i;
    if (field == NULL)
        return 0;
    if (strchr(field, '.') != NULL) { /* never indexed; kept for matching */
        if (at != NULL)
            *at = SIZE_MAX;
        return 0;
    }
    i = key_index(lay, field);
    if (i == SIZE_MAX) {
        i = lay->nkeys++;
        lay->keys[i] = field;
    }
    if (at != NULL)
        *at = i;
    return 0;
}

void rm_layout_free(rm_layout *lay)
{
    free(lay->keys);
    free(lay->shared);
    free(lay->eq);
    free(lay->sort);
    free(lay->dflt);
    free(lay->kw);
    memset(lay, 0, sizeof(*lay));
}

int rm_layout_init(rm_layout *lay, const resource_desc *res)
{
    const char *const *lists[] = {res->eq_fields,     res->sort_keys,    res->keyword_fields,
                                  res->default_order, res->match_fields, res->shared_fields};
    size_t max = 2, neq = list_len(res->eq_fields), nsort = list_len(res->sort_keys),
           ndflt = list_len(res->default_order), nkw = list_len(res->keyword_fields);
    memset(lay, 0, sizeof(*lay));
    for (size_t l = 0; l < sizeof(lists) / sizeof(*lists); l++)
        max += list_len(lists[l]);
    lay->keys = calloc(max, sizeof(*lay->keys));
    lay->shared = calloc(max, 1);
    lay->eq = calloc(neq + 1, sizeof(size_t));
    lay->sort = calloc(nsort + 1, sizeof(size_t));
    lay->dflt = calloc(ndflt + 1, sizeof(size_t));
    lay->kw = calloc(nkw + 1, sizeof(size_t));
    if (lay->keys == NULL || lay->shared == NULL || lay->eq == NULL || lay->sort == NULL ||
        lay->dflt == NULL || lay->kw == NULL) {
        rm_layout_free(lay);
        return -1;
    }
    lay->id = lay->domain = SIZE_MAX;
    layout_add(lay, res->id_field, &lay->id);
    layout_add(lay, res->domain_field, &lay->domain);
    for (size_t i = 0; i < neq; i++)
        layout_add(lay, res->eq_fields[i], &lay->eq[i]);
    for (size_t i = 0; i < nsort; i++)
        layout_add(lay, res->sort_keys[i], &lay->sort[i]);
    for (size_t i = 0; i < ndflt; i++)
        layout_add(lay, res->default_order[i], &lay->dflt[i]);
    for (size_t i = 0; i < nkw; i++)
        layout_add(lay, res->keyword_fields[i], &lay->kw[i]);
    for (size_t i = 0; res->match_fields != NULL && res->match_fields[i] != NULL; i++)
        layout_add(lay, res->match_fields[i], NULL);
    for (size_t i = 0; res->shared_fields != NULL && res->shared_fields[i] != NULL; i++) {
        size_t k = key_index(lay, res->shared_fields[i]);
        if (k != SIZE_MAX)
            lay->shared[k] = 1;
    }
    return 0;
}

/* The shared copy of string s (a new reference), made on first use. */
static json_t *intern_string(rm_intern *in, const json_t *s)
{
    const char *v = json_string_value(s);
    size_t len = json_string_length(s);
    json_t *out;
    pthread_mutex_lock(&in->lock);
    out = rm_map_get(&in->map, v, len);
    if (out == NULL) {
        out = json_stringn_nocheck(v, len);
        if (out != NULL && rm_map_put(&in->map, v, len, out) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    json_incref(out);
    pthread_mutex_unlock(&in->lock);
    return out;
}

static void decref_ptr(void *p)
{
    json_decref(p);
}

void rm_intern_free(rm_intern *in)
{
    rm_map_free(&in->map, decref_ptr);
    rm_map_free(&in->tails, free);
    rm_map_free(&in->arrays, decref_ptr);
}

/* The member of a view that every document of a tier holds alike. */
#define RM_TAIL_KEY "repository_info"

/* When view's last member is RM_TAIL_KEY and bytes (its len ready bytes)
 * end with it, that member's bytes (from its key to the closing brace):
 * the model's shared copy, its length in *tlen.  NULL: no tail (another
 * last member, or out of memory: the document keeps all its bytes). */
static const char *split_tail(readmodel *rm, const json_t *view, const char *bytes, size_t len,
                              size_t *tlen)
{
    static const char key[] = "\"" RM_TAIL_KEY "\":";
    void *it = json_object_iter((json_t *)view), *last = NULL;
    char *vb = NULL, *tail = NULL;
    const char *out = NULL;
    size_t vlen = 0, n;
    for (; it != NULL; it = json_object_iter_next((json_t *)view, it))
        last = it;
    if (last == NULL || strcmp(json_object_iter_key(last), RM_TAIL_KEY) != 0)
        goto done;
    if ((vb = rm_dump(json_object_iter_value(last), &vlen)) == NULL)
        goto done;
    n = sizeof(key) - 1 + vlen + 1;
    if (n >= len || (tail = malloc(n + 1)) == NULL)
        goto done;
    memcpy(tail, key, sizeof(key) - 1);
    memcpy(tail + sizeof(key) - 1, vb, vlen);
    memcpy(tail + n - 1, "}", 2);
    if (memcmp(bytes + len - n, tail, n) != 0)
        goto done;
    pthread_mutex_lock(&rm->intern.lock);
    out = rm_map_get(&rm->intern.tails, tail, n);
    if (out == NULL && rm_map_put(&rm->intern.tails, tail, n, tail) == 0) {
        out = tail;
        tail = NULL; /* held by the table */
    }
    pthread_mutex_unlock(&rm->intern.lock);
    if (out != NULL)
        *tlen = n;
done:
    free(vb);
    free(tail);
    return out;
}

static json_t *keep_value(readmodel *rm, const json_t *v, int shared);

/* The key of an array of strings in the intern table's arrays: each
 * element as its 4-byte length then its bytes (malloc'd, *len bytes); NULL
 * when some element is not a string or memory runs out. */
static char *array_key(const json_t *v, size_t *len)
{
    size_t n = 0, i;
    const json_t *e;
    char *key, *at;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) > UINT32_MAX)
            return NULL;
        n += 4 + json_string_length(e);
    }
    if ((key = malloc(n ? n : 1)) == NULL)
        return NULL;
    at = key;
    json_array_foreach(v, i, e)
    {
        uint32_t l = (uint32_t)json_string_length(e);
        memcpy(at, &l, 4);
        memcpy(at + 4, json_string_value(e), l);
        at += 4 + l;
    }
    *len = n;
    return key;
}

/* The shared copy of an array of a shared key: one per distinct list of
 * strings (labels repeat), else a copy with shared elements. */
static json_t *keep_array(readmodel *rm, const json_t *v)
{
    rm_intern *in = &rm->intern;
    size_t klen = 0, i;
    char *key = array_key(v, &klen);
    json_t *out = NULL, *e, *had;
    if (key != NULL) {
        pthread_mutex_lock(&in->lock);
        out = json_incref(rm_map_get(&in->arrays, key, klen));
        pthread_mutex_unlock(&in->lock);
        if (out != NULL)
            goto done;
    }
    out = json_array();
    json_array_foreach(v, i, e)
    {
        if (out != NULL && json_array_append_new(out, keep_value(rm, e, 1)) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (out == NULL || key == NULL)
        goto done;
    pthread_mutex_lock(&in->lock);
    had = rm_map_get(&in->arrays, key, klen); /* another thread's, meanwhile */
    if (had != NULL) {
        json_decref(out);
        out = json_incref(had);
    } else if (rm_map_put(&in->arrays, key, klen, out) == 0) {
        json_incref(out); /* one reference held by the table */
    }
    pthread_mutex_unlock(&in->lock);
done:
    free(key);
    return out;
}

/* The compact copy of a kept value: strings (and arrays of strings) of a
 * shared key are shared, the elements of other arrays there too, anything
 * else is copied. */
static json_t *keep_value(readmodel *rm, const json_t *v, int shared)
{
    if (!shared)
        return json_deep_copy(v);
    if (json_is_string(v))
        return intern_string(&rm->intern, v);
    if (json_is_array(v))
        return keep_array(rm, v);
    return json_deep_copy(v);
}

/* ---- documents ------------------------------------------------------------ */

/* A kept string of d equal to v (a key before k), to share rather than
 * copy (created_at and updated_at often are). */
static json_t *same_string(const readmodel_doc *d, size_t k, const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    for (size_t i = 0; i < k; i++)
        if (json_is_string(d->vals[i]) && json_equal(d->vals[i], (json_t *)v))
            return json_incref(d->vals[i]);
    return NULL;
}

readmodel_doc *rm_doc_new(readmodel *rm, const char *domain, const char *id, const json_t *view)
{
    const rm_layout *lay = &rm->lay;
    /* one block: the document, its kept values, its ready bytes */
    size_t head = sizeof(readmodel_doc) + lay->nkeys * sizeof(json_t *), len = 0;
    char *block = rm_dump_after(view, head, &len);
    const char *tail = NULL;
    size_t tlen = 0;
    readmodel_doc *d;
    if (block != NULL && (tail = split_tail(rm, view, block + head, len, &tlen)) != NULL) {
        char *fit = realloc(block, head + len - tlen + 1);
        if (fit != NULL)
            block = fit;
        len -= tlen;
        block[head + len] = '\0';
    }
    d = (readmodel_doc *)(void *)block;
    if (d == NULL)
        return NULL;
    memset(d, 0, head);
    d->tail = tail;
    d->tlen = tlen;
    atomic_init(&d->joined, NULL);
    atomic_init(&d->refs, 1);
    atomic_init(&d->view, NULL);
    d->layout = lay;
    d->vals = (json_t **)(void *)(block + sizeof(readmodel_doc));
    d->nvals = lay->nkeys;
    d->bytes = block + head;
    d->len = len;
    for (size_t k = 0; k < lay->nkeys; k++) {
        const json_t *v = json_object_get(view, lay->keys[k]);
        if (v == NULL)
            continue;
        if (!lay->shared[k])
            d->vals[k] = same_string(d, k, v);
        if (d->vals[k] == NULL && (d->vals[k] = keep_value(rm, v, lay->shared[k])) == NULL)
            goto fail;
    }
    /* the key usually equals the kept id and domain values: share them */
    d->domain = json_string_value(rm_val(d, lay->domain));
    if (d->domain == NULL || strcmp(d->domain, domain) != 0) {
        d->domain = strdup(domain);
        d->own_domain = 1;
    }
    d->id = json_string_value(rm_val(d, lay->id));
    if (d->id == NULL || strcmp(d->id, id) != 0) {
        d->id = strdup(id);
        d->own_id = 1;
    }
    if (d->domain == NULL || d->id == NULL)
        goto fail;
    return d;
fail:
    readmodel_doc_release(d);
    return NULL;
}

const char *rm_dflt(const readmodel_doc *d, size_t k)
{
    const char *s = json_string_value(rm_val(d, d->layout->dflt[k]));
    return s != NULL ? s : "";
}

void rm_doc_ref(readmodel_doc *d)
{
    atomic_fetch_add(&d->refs, 1);
}

void readmodel_doc_release(readmodel_doc *d)
{
    if (d == NULL || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    if (d->own_domain)
        free((char *)d->domain);
    if (d->own_id)
        free((char *)d->id);
    for (size_t k = 0; k < d->nvals; k++)
        json_decref(d->vals[k]);
    json_decref(atomic_load(&d->view));
    free(atomic_load(&d->joined));
    free(d); /* with its kept values' array and its bytes */
}

size_t readmodel_doc_parts(const readmodel_doc *d, const char **head, size_t *hlen,
                           const char **tail, size_t *tlen)
{
    *head = d->bytes;
    *hlen = d->len;
    *tail = d->tail != NULL ? d->tail : "";
    *tlen = d->tlen;
    return d->len + d->tlen;
}

char *readmodel_doc_bytes_copy(const readmodel_doc *d, size_t *len)
{
    char *out = malloc(d->len + d->tlen + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, d->bytes, d->len);
    if (d->tlen > 0)
        memcpy(out + d->len, d->tail, d->tlen);
    out[d->len + d->tlen] = '\0';
    if (len != NULL)
        *len = d->len + d->tlen;
    return out;
}

const char *readmodel_doc_bytes(const readmodel_doc *d, size_t *len)
{
    readmodel_doc *w = (readmodel_doc *)d; /* the copy is not part of the value */
    char *j, *expected = NULL;
    if (len != NULL)
        *len = d->len + d->tlen;
    if (d->tail == NULL)
        return d->bytes;
    if ((j = atomic_load(&w->joined)) != NULL)
        return j;
    if ((j = readmodel_doc_bytes_copy(d, NULL)) == NULL)
        return NULL;
    if (!atomic_compare_exchange_strong(&w->joined, &expected, j)) {
        free(j); /* another thread joined them first */
        j = expected;
    }
    return j;
}

typedef struct {
    const readmodel_doc *d;
    size_t at;
} doc_reader;

/* json_load_callback's reader over the two parts of the bytes. */
static size_t read_parts(void *buf, size_t size, void *arg)
{
    doc_reader *r = arg;
    const readmodel_doc *d = r->d;
    size_t n = 0;
    if (r->at < d->len) {
        n = d->len - r->at < size ? d->len - r->at : size;
        memcpy(buf, d->bytes + r->at, n);
    } else if (r->at < d->len + d->tlen) {
        n = d->len + d->tlen - r->at < size ? d->len + d->tlen - r->at : size;
        memcpy(buf, d->tail + (r->at - d->len), n);
    }
    r->at += n;
    return n;
}

json_t *readmodel_doc_decode(const readmodel_doc *d)
{
    doc_reader r = {d, 0};
    if (d->tail == NULL)
        return json_loadb(d->bytes, d->len, JSON_ALLOW_NUL, NULL);
    return json_load_callback(read_parts, &r, JSON_ALLOW_NUL, NULL);
}

json_t *readmodel_doc_decode_keys(const readmodel_doc *d, const json_t *keys)
{
    json_t *full = readmodel_doc_decode(d), *out = NULL, *v;
    const char *k;
    size_t klen;
    if (full == NULL)
        goto done;
    out = json_object();
    json_object_keylen_foreach(full, k, klen, v)
    {
        if (out == NULL || json_object_getn(keys, k, klen) == NULL)
            continue;
        if (json_object_setn(out, k, klen, v) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
done:
    json_decref(full);
    return out;
}

const json_t *readmodel_doc_view(const readmodel_doc *d)
{
    readmodel_doc *w = (readmodel_doc *)d; /* the cache is not part of the value */
    json_t *v = atomic_load(&w->view), *expected = NULL;
    if (v != NULL)
        return v;
    v = readmodel_doc_decode(d);
    if (v == NULL)
        return NULL;
    if (!atomic_compare_exchange_strong(&w->view, &expected, v)) {
        json_decref(v); /* another thread decoded it first */
        v = expected;
    }
    return v;
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
