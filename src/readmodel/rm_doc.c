/*
 * rm_doc.c - the read model's documents: the layout of a resource's kept
 * keys, the model's shared copies of repeated values (strings, lists of
 * strings, the ready bytes' repository_info tail), making a document (one
 * block: struct, kept values, ready bytes) and reading it back (its bytes
 * in parts or whole, its view decoded).  Indexes and entry points are in
 * readmodel.c.
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
    atomic_store(&in->last_tail, NULL);
    rm_map_free(&in->tails, free);
    rm_map_free(&in->arrays, decref_ptr);
    rm_map_free(&in->objects, decref_ptr);
}

/* The shared copy of object o (a new reference), keyed by its compact
 * serialisation, made on first use (repository_info: one per tier). */
static json_t *intern_object(rm_intern *in, const json_t *o)
{
    size_t len = 0;
    char *bytes = rm_dump(o, &len);
    json_t *out = NULL;
    if (bytes == NULL)
        return NULL;
    pthread_mutex_lock(&in->lock);
    out = rm_map_get(&in->objects, bytes, len);
    if (out == NULL) {
        out = json_deep_copy(o);
        if (out != NULL && rm_map_put(&in->objects, bytes, len, out) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    json_incref(out);
    pthread_mutex_unlock(&in->lock);
    free(bytes);
    return out;
}

/* The member of a view that every document of a tier holds alike. */
#define RM_TAIL_KEY "repository_info"

/* When view's last member is RM_TAIL_KEY and bytes (its len ready bytes)
 * end with it, that member's bytes (from its key to the closing brace):
 * the model's shared copy, its length in *tlen (or the tail shared last
 * when the bytes end with that one).  NULL: no tail (another
 * last member, or out of memory: the document keeps all its bytes). */
static const char *split_tail(readmodel *rm, const json_t *view, const char *bytes, size_t len,
                              size_t *tlen)
{
    static const char key[] = "\"" RM_TAIL_KEY "\":";
    void *it = json_object_iter((json_t *)view), *last = NULL;
    char *vb = NULL, *tail = NULL;
    const char *out = NULL;
    size_t vlen = 0, n;
    /* the tail of the document before (every document of a tier has the
     * same): the bytes end with it, so they are those bytes whatever the
     * view's members (the table's tails live as long as the model) */
    out = atomic_load(&rm->intern.last_tail);
    n = out != NULL ? strlen(out) : 0;
    if (out != NULL && n < len && memcmp(bytes + len - n, out, n) == 0)
        goto done;
    out = NULL;
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
    if (out != NULL)
        atomic_store(&rm->intern.last_tail, out);
    pthread_mutex_unlock(&rm->intern.lock);
done:
    if (out != NULL)
        *tlen = n;
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

/* The compact copy of a kept value: strings, objects (and arrays of
 * strings) of a shared key are shared, the elements of other arrays there
 * too, anything else is copied. */
static json_t *keep_value(readmodel *rm, const json_t *v, int shared)
{
    if (!shared)
        return json_deep_copy(v);
    if (json_is_string(v))
        return intern_string(&rm->intern, v);
    if (json_is_array(v))
        return keep_array(rm, v);
    if (json_is_object(v))
        return intern_object(&rm->intern, v);
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
