/*
 * query_output.c - shaping the result list of a query: sort specs and the
 * stable sort in MongoDB order (qsort_*, qmerge_sort), page specs
 * (qpage_*), and the only / minimal projection, a trie of dotted keys
 * (qi_proj_*).  stat.c uses the sort and page specs too.
 *
 * Sort order (MongoDB): null = missing < numbers < strings < objects <
 * arrays < booleans; an array field sorts by its smallest element ascending
 * and its largest descending, an empty array before null.  The sort is
 * stable: ties keep the input order.
 */
#include "query-internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- sort ---------------------------------------------------------------- */

static rd_status sort_key_compile(const json_t *item, const char *where, qsort_key *out,
                                  rd_error *err)
{
    const char *k;
    const json_t *v, *key = NULL, *desc = NULL;
    json_object_foreach((json_t *)item, k, v)
    {
        if (strcmp(k, "key") == 0)
            key = v;
        else if (strcmp(k, "desc") == 0)
            desc = v;
        else
            return rd_fail(err, RD_ERR_DB_QUERY, "Unknown sort key. (key = %s.%s)", where, k);
    }
    if (!json_is_string(key))
        return rd_fail(err, RD_ERR_DB_QUERY, "Sort requires a key. (key = %s.key)", where);
    if (desc != NULL && !json_is_null(desc) && !json_is_boolean(desc))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.desc, type = bool)", where);
    out->desc = json_is_true(desc);
    return qpath_init(&out->path, json_string_value(key), where, err);
}

rd_status qsort_spec_compile(const json_t *sort, const char *where, qsort_spec *out, rd_error *err)
{
    rd_status rc = RD_OK;
    const json_t *list = NULL;
    char sub[160];
    memset(out, 0, sizeof(*out));
    if (sort == NULL || json_is_null(sort))
        return RD_OK;
    if (json_is_object(sort)) {
        const json_t *keys = json_object_get(sort, "keys");
        if (keys != NULL && json_object_size(sort) != 1)
            return rd_fail(err, RD_ERR_DB_QUERY, "Invalid sort: use either key or keys. (key = %s)",
                           where);
        if (keys != NULL && !json_is_array(keys))
            return rd_fail(err, RD_ERR_DB_QUERY, "Invalid sort: keys must be a list. (key = %s)",
                           where);
        list = keys;
    } else if (json_is_array(sort)) {
        list = sort;
    } else {
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "Invalid sort: expected {key, desc} or {keys: [...]}. (key = %s)", where);
    }
    if (list == NULL) {
        out->keys = calloc(1, sizeof(*out->keys));
        if (out->keys == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        out->nkeys = 1;
        rc = sort_key_compile(sort, where, &out->keys[0], err);
        goto done;
    }
    if (json_array_size(list) == 0)
        return RD_OK;
    out->keys = calloc(json_array_size(list), sizeof(*out->keys));
    if (out->keys == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; i < json_array_size(list) && rc == RD_OK; i++) {
        const json_t *item = json_array_get(list, i);
        qfmt(sub, sizeof(sub), "%s%s[%zu]", where, list == sort ? "" : ".keys", i);
        out->nkeys++;
        if (!json_is_object(item))
            rc = rd_fail(err, RD_ERR_DB_QUERY, "Invalid sort: expected {key, desc}. (key = %s)",
                         sub);
        else
            rc = sort_key_compile(item, sub, &out->keys[i], err);
    }
done:
    if (rc != RD_OK)
        qsort_spec_free(out);
    return rc;
}

void qsort_spec_free(qsort_spec *s)
{
    for (size_t i = 0; i < s->nkeys; i++)
        qpath_free(&s->keys[i].path);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}

typedef struct {
    const json_t *v; /* NULL = null / missing */
    int empty;       /* an empty array: before null */
} qskey;

typedef struct {
    qskey best;
    int have;
    int desc;
} skey_ctx;

static int skey_cmp(const qskey *a, const qskey *b)
{
    if (a->empty || b->empty)
        return b->empty - a->empty;
    return qjson_cmp(a->v, b->v);
}

static int skey_visit(const json_t *v, qv_kind kind, void *vctx)
{
    skey_ctx *c = vctx;
    qskey k = {NULL, 0};
    if (kind == QV_LEAF && json_is_array(v)) {
        if (json_array_size(v) > 0)
            return 0; /* its elements follow */
        k.empty = 1;
    } else if (kind != QV_MISSING) {
        k.v = v;
    }
    if (!c->have) {
        c->best = k;
        c->have = 1;
    } else {
        int r = skey_cmp(&k, &c->best);
        if (c->desc ? r > 0 : r < 0)
            c->best = k;
    }
    return 0;
}

typedef struct {
    const qsort_spec *spec;
    const qskey *keys;
} sort_ctx;

static int sort_idx_cmp(size_t a, size_t b, const void *vctx)
{
    const sort_ctx *c = vctx;
    size_t nk = c->spec->nkeys;
    for (size_t k = 0; k < nk; k++) {
        int r = skey_cmp(&c->keys[a * nk + k], &c->keys[b * nk + k]);
        if (r != 0)
            return c->spec->keys[k].desc ? -r : r;
    }
    return 0;
}

void qmerge_sort(size_t *idx, size_t *tmp, size_t n, qidx_cmp_fn cmp, const void *ctx)
{
    const size_t run = 8;
    size_t *src = idx, *dst = tmp;
    /* Insertion-sort short runs, then merge them bottom-up; both stable. */
    for (size_t lo = 0; lo < n; lo += run) {
        size_t hi = lo + run < n ? lo + run : n;
        for (size_t i = lo + 1; i < hi; i++) {
            size_t x = idx[i], j = i;
            while (j > lo && cmp(x, idx[j - 1], ctx) < 0) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
    }
    for (size_t width = run; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                dst[o++] = cmp(src[j], src[i], ctx) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx && n > 0)
        memcpy(idx, src, n * sizeof(*idx));
}

rd_status qsort_order(const qsort_spec *spec, const json_t *const *docs, size_t *order, size_t n,
                      rd_error *err)
{
    rd_status rc = RD_OK;
    qskey *keys = NULL;
    size_t *tmp = NULL;
    size_t nk = spec->nkeys;
    if (nk == 0 || n < 2)
        return RD_OK;
    keys = calloc(n * nk, sizeof(*keys));
    tmp = malloc(n * sizeof(*tmp));
    if (keys == NULL || tmp == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < nk; k++) {
            skey_ctx c = {{NULL, 0}, 0, spec->keys[k].desc};
            qpath_visit(&spec->keys[k].path, docs[i], skey_visit, &c);
            keys[i * nk + k] = c.best;
        }
    }
    sort_ctx ctx = {spec, keys};
    qmerge_sort(order, tmp, n, sort_idx_cmp, &ctx);
done:
    free(keys);
    free(tmp);
    return rc;
}

/* ---- page ---------------------------------------------------------------- */

static rd_status page_int(const json_t *v, const char *where, const char *name, size_t *out,
                          rd_error *err)
{
    if (json_is_null(v)) {
        *out = 0;
        return RD_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.%s, type = non-negative integer)", where,
                       name);
#if JSON_INTEGER_IS_LONG_LONG
    if ((unsigned long long)json_integer_value(v) > SIZE_MAX)
        *out = SIZE_MAX;
    else
#endif
        *out = (size_t)json_integer_value(v);
    return RD_OK;
}

rd_status qpage_compile(const json_t *page, const char *where, qpage *out, rd_error *err)
{
    const char *k;
    const json_t *v;
    memset(out, 0, sizeof(*out));
    if (page == NULL || json_is_null(page))
        return RD_OK;
    if (!json_is_object(page))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s, type = object)", where);
    out->given = 1;
    json_object_foreach((json_t *)page, k, v)
    {
        rd_status rc;
        size_t n = 0;
        if (strcmp(k, "start") == 0) {
            rc = page_int(v, where, k, &n, err);
            out->offset = n > 0 ? n - 1 : 0;
        } else if (strcmp(k, "limit") == 0) {
            rc = page_int(v, where, k, &n, err);
            out->limit = n;
        } else {
            rc = rd_fail(err, RD_ERR_DB_QUERY, "Unknown page key. (key = %s.%s)", where, k);
        }
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;
}

void qpage_slice(const qpage *p, size_t total, size_t *from, size_t *to)
{
    *from = p->offset < total ? p->offset : total;
    *to = total;
    if (p->limit > 0 && p->limit < total - *from)
        *to = *from + p->limit;
}

/* ---- projection ---------------------------------------------------------- */

static void proj_clear(qproj *p)
{
    for (size_t i = 0; i < p->nchild; i++)
        proj_clear(&p->child[i]);
    free(p->child);
    free(p->name);
    memset(p, 0, sizeof(*p));
}

void qi_proj_free(qproj *p)
{
    if (p != NULL) {
        proj_clear(p);
        free(p);
    }
}

static const qproj *proj_find(const qproj *node, const char *name)
{
    for (size_t i = 0; i < node->nchild; i++)
        if (strcmp(node->child[i].name, name) == 0)
            return &node->child[i];
    return NULL;
}

/* Adds a dotted key to the trie; -1 on allocation failure. */
static int proj_add(qproj *root, const qpath *path)
{
    qproj *n = root;
    for (size_t i = 0; i < path->nparts; i++) {
        qproj *next = (qproj *)proj_find(n, path->parts[i]);
        if (n->whole)
            return 0; /* an ancestor is kept whole already */
        if (next == NULL) {
            if (n->nchild == n->cap) {
                size_t cap = n->cap ? n->cap * 2 : 4;
                qproj *grown = realloc(n->child, cap * sizeof(*grown));
                if (grown == NULL)
                    return -1;
                n->child = grown;
                n->cap = cap;
            }
            next = &n->child[n->nchild];
            memset(next, 0, sizeof(*next));
            next->name = strdup(path->parts[i]);
            if (next->name == NULL)
                return -1;
            n->nchild++;
        }
        n = next;
    }
    for (size_t i = 0; i < n->nchild; i++)
        proj_clear(&n->child[i]);
    n->nchild = 0;
    n->whole = 1;
    return 0;
}

/* Projects v under node; NULL = leave the field out. */
static json_t *proj_value(const json_t *v, const qproj *node)
{
    if (node->whole)
        return json_deep_copy(v);
    if (json_is_object(v))
        return qi_proj_object(v, node);
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        const json_t *e;
        if (out == NULL)
            return NULL;
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e))
                json_array_append_new(out, qi_proj_object(e, node));
        }
        return out;
    }
    return NULL;
}

json_t *qi_proj_object(const json_t *obj, const qproj *node)
{
    json_t *out = json_object();
    const char *k;
    const json_t *v;
    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)obj, k, v)
    {
        const qproj *child = proj_find(node, k);
        if (child != NULL) {
            json_t *r = proj_value(v, child);
            if (r != NULL)
                json_object_set_new(out, k, r);
        }
    }
    return out;
}

rd_status qi_proj_compile(query *q, const json_t *only, int minimal, const query_schema *schema,
                          rd_error *err)
{
    char where[64];
    size_t n = json_array_size(only);
    if (n == 0 && !minimal)
        return RD_OK;
    q->proj = calloc(1, sizeof(*q->proj));
    if (q->proj == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; n > 0 ? i < n : schema->minimal_fields[i] != NULL; i++) {
        const json_t *item = n > 0 ? json_array_get(only, i) : NULL;
        const char *key = n > 0 ? json_string_value(item) : schema->minimal_fields[i];
        qpath path;
        rd_status rc;
        int bad;
        qfmt(where, sizeof(where), "query.only[%zu]", i);
        if (key == NULL)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = %s, type = string)", where);
        rc = qpath_init(&path, key, where, err);
        if (rc != RD_OK)
            return rc;
        bad = proj_add(q->proj, &path);
        qpath_free(&path);
        if (bad)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    return RD_OK;
}
