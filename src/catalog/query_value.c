/*
 * query_value.c - JSON document access for the query engine: dotted paths
 * (qpath_*) and their MongoDB-like traversal, query_lookup (aggregation
 * field paths), the total order / equality / hash over JSON values
 * (qjson_*), and a small open-addressing hash index (qhash_*).  Used by the
 * list query files and by stat.c; nothing here keeps state between calls.
 */
#include "query-internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- paths -------------------------------------------------------------- */

rd_status qpath_init(qpath *p, const char *dotted, const char *where, rd_error *err)
{
    size_t len, n = 1;
    memset(p, 0, sizeof(*p));
    len = dotted != NULL ? strlen(dotted) : 0;
    if (len == 0)
        return rd_fail(err, RD_ERR_DB_QUERY, "Invalid key. (key = %s, value = \"\")", where);
    if (dotted[0] == '.' || dotted[len - 1] == '.' || strstr(dotted, "..") != NULL)
        return rd_fail(err, RD_ERR_DB_QUERY, "Invalid key. (key = %s, value = %s)", where, dotted);
    for (size_t i = 0; i < len; i++)
        n += dotted[i] == '.';
    p->text = strdup(dotted);
    p->buf = strdup(dotted);
    p->parts = calloc(n, sizeof(*p->parts));
    p->index = calloc(n, sizeof(*p->index));
    if (p->text == NULL || p->buf == NULL || p->parts == NULL || p->index == NULL) {
        qpath_free(p);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    p->nparts = n;
    char *c = p->buf;
    for (size_t i = 0; i < n; i++) {
        char *dot = strchr(c, '.');
        size_t clen;
        if (dot != NULL)
            *dot = '\0';
        p->parts[i] = c;
        clen = strlen(c);
        p->index[i] = -1;
        if (clen > 0 && clen <= 9 && strspn(c, "0123456789") == clen)
            p->index[i] = strtol(c, NULL, 10);
        c += clen + 1;
    }
    return RD_OK;
}

void qpath_free(qpath *p)
{
    free(p->text);
    free(p->buf);
    free(p->parts);
    free(p->index);
    memset(p, 0, sizeof(*p));
}

static int visit_rec(const json_t *v, const qpath *p, size_t i, qvisit_fn cb, void *ctx)
{
    int r;
    if (i == p->nparts) {
        size_t k;
        const json_t *e;
        r = cb(v, QV_LEAF, ctx);
        if (r != 0 || !json_is_array(v))
            return r;
        json_array_foreach(v, k, e)
        {
            r = cb(e, QV_ELEMENT, ctx);
            if (r != 0)
                return r;
        }
        return 0;
    }
    if (json_is_object(v)) {
        const json_t *child = json_object_get(v, p->parts[i]);
        if (child == NULL)
            return cb(NULL, QV_MISSING, ctx);
        return visit_rec(child, p, i + 1, cb, ctx);
    }
    if (json_is_array(v)) {
        int reached = 0;
        size_t k;
        const json_t *e;
        if (p->index[i] >= 0) {
            e = json_array_get(v, (size_t)p->index[i]);
            if (e != NULL) {
                reached = 1;
                r = visit_rec(e, p, i + 1, cb, ctx);
                if (r != 0)
                    return r;
            }
        }
        json_array_foreach(v, k, e)
        {
            if (!json_is_object(e))
                continue;
            reached = 1;
            r = visit_rec(e, p, i, cb, ctx);
            if (r != 0)
                return r;
        }
        return reached ? 0 : cb(NULL, QV_MISSING, ctx);
    }
    return cb(NULL, QV_MISSING, ctx);
}

int qpath_visit(const qpath *p, const json_t *doc, qvisit_fn cb, void *ctx)
{
    if (!json_is_object(doc))
        return cb(NULL, QV_MISSING, ctx);
    return visit_rec(doc, p, 0, cb, ctx);
}

static json_t *lookup_rec(const json_t *v, const char *seg, int *is_new)
{
    *is_new = 0;
    if (seg == NULL)
        return (json_t *)v;
    size_t len = strcspn(seg, ".");
    const char *rest = seg[len] == '.' ? seg + len + 1 : NULL;
    if (json_is_object(v)) {
        json_t *child = json_object_getn(v, seg, len);
        return child == NULL ? NULL : lookup_rec(child, rest, is_new);
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        const json_t *e;
        if (out == NULL)
            return NULL;
        json_array_foreach(v, i, e)
        {
            int nested_new;
            json_t *r;
            if (!json_is_object(e) && !json_is_array(e))
                continue;
            r = lookup_rec(e, seg, &nested_new);
            if (r == NULL)
                continue;
            if (nested_new)
                json_array_append_new(out, r);
            else
                json_array_append(out, r);
        }
        *is_new = 1;
        return out;
    }
    return NULL;
}

json_t *query_lookup(const json_t *doc, const char *dotted_key, json_t **owned)
{
    int is_new = 0;
    json_t *r;
    if (owned != NULL)
        *owned = NULL;
    if (doc == NULL || dotted_key == NULL || dotted_key[0] == '\0')
        return NULL;
    r = lookup_rec(doc, dotted_key, &is_new);
    if (is_new) {
        if (owned != NULL) {
            *owned = r;
        } else {
            /* Cannot hand out a new value without an owner. */
            json_decref(r);
            r = NULL;
        }
    }
    return r;
}

/* ---- JSON order / equality / hash --------------------------------------- */

static int type_rank(const json_t *v)
{
    if (v == NULL)
        return 1;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return 1;
    case JSON_INTEGER:
    case JSON_REAL:
        return 2;
    case JSON_STRING:
        return 3;
    case JSON_OBJECT:
        return 4;
    case JSON_ARRAY:
        return 5;
    case JSON_TRUE:
    case JSON_FALSE:
        return 6;
    }
    return 7;
}

/* int vs real without losing precision beyond 2^53. */
static int int_real_cmp(json_int_t i, double d)
{
    if (d != d)
        return 1; /* NaN cannot come from JSON; order it first anyway */
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double di = (double)i;
    if (di < d)
        return -1;
    if (di > d)
        return 1;
    json_int_t t = (json_int_t)d;
    return (i > t) - (i < t);
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_integer(a))
        return int_real_cmp(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -int_real_cmp(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return (x > y) - (x < y);
}

static int str_cmp(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int r = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
    if (r != 0)
        return r < 0 ? -1 : 1;
    return (la > lb) - (la < lb);
}

static int cstr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char **sorted_keys(const json_t *o)
{
    size_t n = json_object_size(o), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    const char *k;
    const json_t *v;
    if (keys == NULL)
        return NULL;
    json_object_foreach((json_t *)o, k, v)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), cstr_cmp);
    return keys;
}

static int obj_cmp(const json_t *a, const json_t *b)
{
    size_t na = json_object_size(a), nb = json_object_size(b);
    const char **ka = sorted_keys(a), **kb = sorted_keys(b);
    int r = 0;
    if (ka != NULL && kb != NULL) {
        for (size_t i = 0; i < na && i < nb && r == 0; i++) {
            r = strcmp(ka[i], kb[i]);
            if (r == 0)
                r = qjson_cmp(json_object_get(a, ka[i]), json_object_get(b, kb[i]));
            else
                r = r < 0 ? -1 : 1;
        }
    }
    if (r == 0)
        r = (na > nb) - (na < nb);
    free(ka);
    free(kb);
    return r;
}

int qjson_cmp(const json_t *a, const json_t *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 2:
        return num_cmp(a, b);
    case 3:
        return str_cmp(a, b);
    case 4:
        return obj_cmp(a, b);
    case 5: {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            int r = qjson_cmp(json_array_get(a, i), json_array_get(b, i));
            if (r != 0)
                return r;
        }
        return (na > nb) - (na < nb);
    }
    case 6:
        return json_is_true(a) - json_is_true(b);
    default:
        return 0;
    }
}

int qjson_equal(const json_t *a, const json_t *b)
{
    int ra, rb;
    if (a == b)
        return 1;
    ra = type_rank(a);
    rb = type_rank(b);
    if (ra != rb)
        return 0;
    switch (ra) {
    case 2:
        return num_cmp(a, b) == 0;
    case 3:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case 4: {
        const char *k;
        const json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, k, v)
        {
            const json_t *w = json_object_get(b, k);
            if (w == NULL || !qjson_equal(v, w))
                return 0;
        }
        return 1;
    }
    case 5: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!qjson_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    case 6:
        return json_typeof(a) == json_typeof(b);
    default:
        return 1;
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

uint64_t qjson_hash(const json_t *v)
{
    switch (type_rank(v)) {
    case 1:
        return 0x6e756c6cULL;
    case 2: {
        double d = json_number_value(v);
        uint64_t bits;
        if (d == 0)
            d = 0; /* -0.0 == 0.0 */
        memcpy(&bits, &d, sizeof(bits));
        return mix64(bits ^ 0x2545f4914f6cdd1dULL);
    }
    case 3:
        return bytes_hash(json_string_value(v), json_string_length(v));
    case 4: {
        uint64_t h = 0x6f626a65ULL;
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            h += mix64(bytes_hash(k, strlen(k)) * 31 + qjson_hash(e));
        }
        return mix64(h);
    }
    case 5: {
        uint64_t h = 0x61727261ULL;
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            h = mix64(h * 31 + qjson_hash(e));
        }
        return h;
    }
    default:
        return json_is_true(v) ? 0x74727565ULL : 0x66616c73ULL;
    }
}

/* ---- hash index ---------------------------------------------------------- */

size_t qhash_find(const qhash *h, uint64_t hash, qhash_eq_fn eq, const void *ctx)
{
    size_t mask, i;
    if (h->cap == 0)
        return SIZE_MAX;
    mask = h->cap - 1;
    for (i = (size_t)hash & mask; h->slot[i] != 0; i = (i + 1) & mask)
        if (h->hash[i] == hash && eq(h->slot[i] - 1, ctx))
            return h->slot[i] - 1;
    return SIZE_MAX;
}

static void qhash_place(size_t *slot, uint64_t *hashes, size_t cap, uint64_t hash, size_t idx1)
{
    size_t i = (size_t)hash & (cap - 1);
    while (slot[i] != 0)
        i = (i + 1) & (cap - 1);
    slot[i] = idx1;
    hashes[i] = hash;
}

int qhash_insert(qhash *h, uint64_t hash, size_t idx)
{
    if ((h->count + 1) * 4 > h->cap * 3) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        size_t *slot = calloc(cap, sizeof(*slot));
        uint64_t *hashes = calloc(cap, sizeof(*hashes));
        if (slot == NULL || hashes == NULL) {
            free(slot);
            free(hashes);
            return -1;
        }
        for (size_t i = 0; i < h->cap; i++)
            if (h->slot[i] != 0)
                qhash_place(slot, hashes, cap, h->hash[i], h->slot[i]);
        free(h->slot);
        free(h->hash);
        h->slot = slot;
        h->hash = hashes;
        h->cap = cap;
    }
    qhash_place(h->slot, h->hash, h->cap, hash, idx + 1);
    h->count++;
    return 0;
}

void qhash_free(qhash *h)
{
    free(h->slot);
    free(h->hash);
    memset(h, 0, sizeof(*h));
}
