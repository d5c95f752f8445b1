/*
 * rm_query.c - list queries over a read model: candidates from postings
 * (domains, eq / in over the eq fields) and the keyword trigram index,
 * query_match on the candidates unless the postings alone are exact, then
 * the requested order from a kept order (one kept sort key, or none) or
 * the query engine's own sort, and the page.  The answer equals query_run
 * over the same documents in default order.
 */
#include "rm-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ids_push(rm_ids *s, uint32_t id)
{
    return rm_ids_push(s, id);
}

/* Is d (NULL = a free slot) in one of the domains? */
static int in_domains(const readmodel_doc *d, const char *const *domains, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++)
        if (strcmp(d->domain, domains[i]) == 0)
            return 1;
    return 0;
}

/* ---- matching on the compact form ----------------------------------------- */

/* Tests documents against q on their kept values when every key q reads is
 * kept (a scratch object holding just those keys), else on the view decoded
 * from the bytes. */
typedef struct {
    const query *q;
    const char **keys; /* the keys q reads (borrowed from q) */
    size_t *idx;       /* their kept-key indexes */
    size_t n;
    int decode;
    json_t *scratch;
} rm_matcher;

static void matcher_free(rm_matcher *m)
{
    free(m->keys);
    free(m->idx);
    json_decref(m->scratch);
    memset(m, 0, sizeof(*m));
}

static size_t kept_index(const rm_state *st, const char *key, size_t len)
{
    for (size_t k = 0; k < st->lay->nkeys; k++)
        if (strncmp(st->lay->keys[k], key, len) == 0 && st->lay->keys[k][len] == '\0')
            return k;
    return SIZE_MAX;
}

static int matcher_init(rm_matcher *m, const rm_state *st, const query *q)
{
    memset(m, 0, sizeof(*m));
    m->q = q;
    m->n = query_match_keys(q, &m->keys);
    if (m->n == (size_t)-1) {
        m->n = 0;
        return -1;
    }
    m->idx = calloc(m->n ? m->n : 1, sizeof(*m->idx));
    m->scratch = json_object();
    if (m->idx == NULL || m->scratch == NULL) {
        matcher_free(m);
        return -1;
    }
    for (size_t i = 0; i < m->n; i++)
        if ((m->idx[i] = kept_index(st, m->keys[i], strlen(m->keys[i]))) == SIZE_MAX)
            m->decode = 1;
    return 0;
}

/* 1 / 0: d matches or not; -1 when memory runs out. */
static int matcher_test(rm_matcher *m, const readmodel_doc *d)
{
    int r;
    if (m->decode) {
        json_t *v = readmodel_doc_decode(d);
        if (v == NULL)
            return -1;
        r = query_match(m->q, v);
        json_decref(v);
        return r;
    }
    for (size_t i = 0; i < m->n; i++) {
        json_t *v = d->vals[m->idx[i]];
        if (v != NULL ? json_object_set_new_nocheck(m->scratch, m->keys[i], json_incref(v)) != 0
                      : (json_object_del(m->scratch, m->keys[i]), 0))
            return -1;
    }
    return query_match(m->q, m->scratch);
}

/* A new object standing for d in the engine's sort by q: its sort keys' kept
 * values, or the decoded view when a sort key is not kept.  NULL on OOM. */
static json_t *sort_object(const rm_state *st, const query *q, const readmodel_doc *d)
{
    json_t *o = json_object();
    const char *key;
    int desc;
    for (size_t i = 0; o != NULL && query_sort_key(q, i, &key, &desc); i++) {
        size_t len = strcspn(key, "."), k = kept_index(st, key, len);
        if (k == SIZE_MAX) {
            json_decref(o);
            return readmodel_doc_decode(d);
        }
        if (d->vals[k] != NULL && json_object_set(o, st->lay->keys[k], d->vals[k]) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* ---- ordering -------------------------------------------------------------- */

typedef struct {
    const rm_state *st;
    size_t k; /* SIZE_MAX = default order */
    int desc;
} ord_ctx;

static int cmp_slots(const void *a, const void *b, void *arg)
{
    const ord_ctx *o = arg;
    const readmodel_doc *x = o->st->slot[*(const uint32_t *)a];
    const readmodel_doc *y = o->st->slot[*(const uint32_t *)b];
    int c = 0;
    if (o->k != SIZE_MAX) {
        c = query_value_cmp(RM_SORTV(x, o->k), RM_SORTV(y, o->k));
        if (o->desc)
            c = -c;
    }
    return c != 0 ? c : rm_cmp_default(o->st, x, y);
}

/* Puts matched (in slot order) into the query's order: a kept order when
 * the sort is one kept key (or none) without array values, else the query
 * engine's sort over the matches in default order.  On return *order holds
 * at least the first `to` matches in order (possibly all). */
/* Is slot s one of the matches: marked, or (mark NULL: every document of
 * the domains matches) in the domains? */
static int accepted(const rm_state *st, const unsigned char *mark, const char *const *domains,
                    size_t ndomains, uint32_t s)
{
    if (mark != NULL)
        return mark[s];
    return domains == NULL || in_domains(st->slot[s], domains, ndomains);
}

/* matched NULL: every document of the domains matches (the query has no
 * condition); then 1 is returned, doing nothing, when the order is not a
 * kept one. */
/* The start of the group of equal values (sort key k) that ends at
 * kept->v[end - 1]: galloping back from it, then a binary search, so a
 * large group costs a few comparisons. */
static size_t group_start(const rm_state *st, const rm_order *kept, size_t k, size_t end)
{
    const json_t *v = RM_SORTV(st->slot[kept->v[end - 1]], k);
    size_t hi = end - 1, step = 1, lo = 0; /* kept->v[hi] is in the group */
    while (hi >= step) {
        size_t p = hi - step;
        if (query_value_cmp(RM_SORTV(st->slot[kept->v[p]], k), v) != 0) {
            lo = p + 1;
            break;
        }
        hi = p;
        step *= 2;
    }
    while (lo < hi) { /* the first position of the group in [lo, hi] */
        size_t mid = lo + (hi - lo) / 2;
        if (query_value_cmp(RM_SORTV(st->slot[kept->v[mid]], k), v) == 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* 1 when sorting m matches costs less than walking a kept order of n
 * documents until `to` of them are found (the plan may force either). */
static int sort_cheaper(int plan, size_t m, size_t n, size_t to)
{
    size_t lg = 1, walk;
    if (plan != READMODEL_PLAN_AUTO)
        return plan == READMODEL_PLAN_SORT;
    while (lg < 64 && ((size_t)1 << lg) < m)
        lg++;
    /* a comparison reads two documents: about 8 steps of a walk; a walk
     * clears and marks a byte per slot and match, then steps through the
     * order until the page is full (to * n / m positions on average) */
    walk = n / 16 + m + (m > 0 && to < m ? (to * (n / m + 1)) : n);
    return m * lg * 8 < walk;
}

static int order_matches(const rm_state *st, int plan, const query *q, rm_ids *matched,
                         const char *const *domains, size_t ndomains, size_t to, rm_ids *ordered,
                         rd_error *err)
{
    const char *key, *key2;
    int desc = 0, desc2;
    ord_ctx o = {st, SIZE_MAX, 0};
    const rm_order *kept = &st->dorder;
    unsigned char *mark = NULL;
    size_t *idx = NULL;
    json_t **docs = NULL;
    int rc = -1;

    if (query_sort_key(q, 0, &key, &desc)) {
        size_t k;
        for (k = 0; k < st->nsort; k++)
            if (strcmp(st->res->sort_keys[k], key) == 0)
                break;
        if (k == st->nsort || st->narray[k] > 0 || query_sort_key(q, 1, &key2, &desc2)) {
            if (matched == NULL)
                return 1;
            goto general;
        }
        o.k = k;
        o.desc = desc;
        kept = &st->orders[k];
    }
    if (matched != NULL && sort_cheaper(plan, matched->n, st->nslots, to)) { /* sort them */
        qsort_r(matched->v, matched->n, sizeof(*matched->v), cmp_slots, &o);
        *ordered = *matched;
        memset(matched, 0, sizeof(*matched));
        return 0;
    }
    /* many matches: walk the kept order until the page is full */
    if (matched != NULL) {
        mark = calloc(st->nslots ? st->nslots : 1, 1);
        if (mark == NULL)
            goto done;
        for (size_t i = 0; i < matched->n; i++)
            mark[matched->v[i]] = 1;
    }
    if (!o.desc) {
        for (size_t i = 0; i < kept->n && ordered->n < to; i++)
            if (accepted(st, mark, domains, ndomains, kept->v[i]) &&
                ids_push(ordered, kept->v[i]) != 0)
                goto done;
    } else {
        /* descending: groups of equal values from the end, each group in
         * default order (what a stable sort of the default order gives) */
        size_t i = kept->n;
        while (i > 0 && ordered->n < to) {
            size_t j = group_start(st, kept, o.k, i);
            for (size_t g = j; g < i && ordered->n < to; g++)
                if (accepted(st, mark, domains, ndomains, kept->v[g]) &&
                    ids_push(ordered, kept->v[g]) != 0)
                    goto done;
            i = j;
        }
    }
    rc = 0;
    goto done;
general:
    o.k = SIZE_MAX;
    qsort_r(matched->v, matched->n, sizeof(*matched->v), cmp_slots, &o);
    idx = malloc((matched->n ? matched->n : 1) * sizeof(*idx));
    docs = calloc(matched->n ? matched->n : 1, sizeof(*docs));
    if (idx == NULL || docs == NULL)
        goto done;
    for (size_t i = 0; i < matched->n; i++) {
        idx[i] = i;
        if ((docs[i] = sort_object(st, q, st->slot[matched->v[i]])) == NULL)
            goto done;
    }
    if (query_sort(q, (const json_t *const *)docs, idx, matched->n, err) != RD_OK)
        goto done;
    for (size_t i = 0; i < matched->n; i++)
        if (ids_push(ordered, matched->v[idx[i]]) != 0)
            goto done;
    rc = 0;
done:
    free(mark);
    free(idx);
    for (size_t i = 0; docs != NULL && i < matched->n; i++)
        json_decref(docs[i]);
    free(docs);
    return rc;
}

/* ---- entry points ---------------------------------------------------------- */

/* The slots (ascending) of the documents of the given domains that match q
 * (NULL = every document of those domains).  Under the read lock. */
int rm_match_slots(const rm_state *st, const query *q, const char *const *domains, size_t ndomains,
                   rm_ids *matched, size_t *tested)
{
    cset_t c = {{0}, 1};
    rm_matcher m = {0};
    rm_ids arr = {0}, tmp = {0};
    size_t n, a = 0;
    int exact = 1, rc = -1;
    if ((q != NULL && matcher_init(&m, st, q) != 0) ||
        rm_candidates(st, q, domains, ndomains, &c) != 0)
        goto done;
    /* The postings are exact when the query only constrains eq fields, but
     * a document holding an array in an eq field is still matched in full:
     * those are the fields' array holders. */
    if (q != NULL)
        exact = query_index_only(q, st->res->eq_fields);
    for (size_t f = 0; q != NULL && exact && f < st->neq; f++) {
        rm_ids t;
        if (st->eqarr[f].n == 0)
            continue;
        if (rm_ids_union(&arr, &st->eqarr[f], &tmp) != 0)
            goto done;
        t = arr;
        arr = tmp;
        tmp = t;
    }
    if (exact && arr.n == 0 && !c.all) { /* every candidate matches: none is read */
        if (matched->n == 0) {
            free(matched->v);
            *matched = c.s;
            memset(&c.s, 0, sizeof(c.s));
        } else
            for (size_t i = 0; i < c.s.n; i++)
                if (ids_push(matched, c.s.v[i]) != 0)
                    goto done;
        rc = 0;
        goto done;
    }
    n = c.all ? st->nslots : c.s.n;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = c.all ? (uint32_t)i : c.s.v[i];
        const readmodel_doc *d = st->slot[s];
        int r = 1, test = !exact;
        if (d == NULL)
            continue;
        if (exact) {
            while (a < arr.n && arr.v[a] < s)
                a++;
            test = a < arr.n && arr.v[a] == s;
        }
        if (q != NULL && test && ((*tested)++, r = matcher_test(&m, d)) < 0)
            goto done;
        if (r && ids_push(matched, s) != 0)
            goto done;
    }
    rc = 0;
done:
    matcher_free(&m);
    free(c.s.v);
    free(arr.v);
    free(tmp.v);
    return rc;
}

int rm_matches_in_order(const rm_state *st, const query *q, const char *const *domains,
                        size_t ndomains, rm_ids *ordered, size_t *tested)
{
    rm_ids matched = {0};
    ord_ctx o = {st, SIZE_MAX, 0};
    unsigned char *mark = NULL;
    int rc = -1;
    if (rm_match_slots(st, q, domains, ndomains, &matched, tested) != 0)
        goto done;
    if (matched.n * 16 < st->count) { /* few: sort them */
        if (matched.n > 1)
            qsort_r(matched.v, matched.n, sizeof(*matched.v), cmp_slots, &o);
        *ordered = matched;
        memset(&matched, 0, sizeof(matched));
        rc = 0;
        goto done;
    }
    /* many: pick them from the default order */
    mark = calloc(st->nslots ? st->nslots : 1, 1);
    if (mark == NULL)
        goto done;
    for (size_t i = 0; i < matched.n; i++)
        mark[matched.v[i]] = 1;
    for (size_t i = 0, n = 0; i < st->dorder.n && n < matched.n; i++)
        if (mark[st->dorder.v[i]])
            matched.v[n++] = st->dorder.v[i];
    *ordered = matched;
    memset(&matched, 0, sizeof(matched));
    rc = 0;
done:
    free(mark);
    free(matched.v);
    return rc;
}

rd_status readmodel_matches(readmodel *rm, const query *q, const char *const *domains,
                            size_t ndomains, readmodel_result *out, rd_error *err)
{
    rm_ids ordered = {0};
    rd_status rc = RD_OK;

    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&rm->lock);
    if (rm_matches_in_order(rm->st, q, domains, ndomains, &ordered, &out->tested) != 0)
        goto oom;
    out->total_count = ordered.n;
    out->docs = calloc(ordered.n ? ordered.n : 1, sizeof(*out->docs));
    if (out->docs == NULL)
        goto oom;
    for (size_t i = 0; i < ordered.n; i++) {
        out->docs[out->n] = rm->st->slot[ordered.v[i]];
        rm_doc_ref(out->docs[out->n++]);
    }
    goto done;
oom:
    readmodel_result_free(out);
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    pthread_rwlock_unlock(&rm->lock);
    free(ordered.v);
    return rc;
}

/* 1 when q has no condition and no keyword word: it matches everything. */
static int matches_all(const query *q)
{
    const char **keys = NULL;
    const char *const *words;
    size_t n = query_match_keys(q, &keys);
    free(keys);
    return n == 0 && query_keyword_words(q, &words) == 0;
}

/* The number of documents of the domains (NULL = all). */
static size_t domains_count(const rm_state *st, const char *const *domains, size_t n)
{
    size_t total = 0;
    if (domains == NULL)
        return st->count;
    for (size_t d = 0; d < n; d++) {
        const rm_ids *p = rm_map_get(&st->domains, domains[d], strlen(domains[d]));
        int dup = 0;
        for (size_t e = 0; e < d && !dup; e++)
            dup = strcmp(domains[e], domains[d]) == 0;
        if (p != NULL && !dup)
            total += p->n;
    }
    return total;
}

rd_status readmodel_query(readmodel *rm, const query *q, const char *const *domains,
                          size_t ndomains, readmodel_result *out, rd_error *err)
{
    rm_state *st;
    rm_ids matched = {0}, ordered = {0};
    size_t from, to;
    rd_status rc = RD_OK;

    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&rm->lock);
    st = rm->st;
    if (matches_all(q)) { /* every document of the domains: no slot list */
        int r;
        out->total_count = domains_count(st, domains, ndomains);
        if (query_is_count_only(q) || out->total_count == 0)
            goto done;
        query_page_window(q, out->total_count, &from, &to);
        if (from >= to)
            goto done;
        r = order_matches(st, rm->plan, q, NULL, domains, ndomains, to, &ordered, err);
        if (r < 0)
            goto oom;
        if (r == 0)
            goto page;
    }
    if (rm_match_slots(st, q, domains, ndomains, &matched, &out->tested) != 0)
        goto oom;
    out->total_count = matched.n;
    if (query_is_count_only(q) || matched.n == 0)
        goto done;
    query_page_window(q, matched.n, &from, &to);
    if (from >= to)
        goto done;
    if (order_matches(st, rm->plan, q, &matched, domains, ndomains, to, &ordered, err) != 0)
        goto oom;
page:
    out->docs = calloc(to - from, sizeof(*out->docs));
    if (out->docs == NULL)
        goto oom;
    for (size_t i = from; i < to && i < ordered.n; i++) {
        out->docs[out->n] = st->slot[ordered.v[i]];
        rm_doc_ref(out->docs[out->n++]);
    }
    goto done;
oom:
    readmodel_result_free(out);
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    pthread_rwlock_unlock(&rm->lock);
    free(matched.v);
    free(ordered.v);
    return rc;
}

void readmodel_set_plan(readmodel *rm, int plan)
{
    rm->plan = plan;
}

void readmodel_result_free(readmodel_result *r)
{
    for (size_t i = 0; r->docs != NULL && i < r->n; i++)
        readmodel_doc_release(r->docs[i]);
    free(r->docs);
    memset(r, 0, sizeof(*r));
}

rd_status readmodel_query_json(readmodel *rm, const query *q, const char *const *domains,
                               size_t ndomains, json_t **out, rd_error *err)
{
    readmodel_result r;
    json_t *results = NULL;
    rd_status rc = readmodel_query(rm, q, domains, ndomains, &r, err);
    *out = NULL;
    if (rc != RD_OK)
        return rc;
    results = json_array();
    if (results == NULL)
        goto oom;
    for (size_t i = 0; i < r.n; i++) {
        json_t *view = readmodel_doc_decode(r.docs[i]);
        int bad = view == NULL || json_array_append_new(results, query_project(q, view)) != 0;
        json_decref(view);
        if (bad)
            goto oom;
    }
    *out = json_pack("{s:o, s:I}", "results", results, "total_count", (json_int_t)r.total_count);
    results = NULL;
    if (*out == NULL)
        goto oom;
    goto done;
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    json_decref(results);
    readmodel_result_free(&r);
    return rc;
}

rd_status readmodel_query_bytes(readmodel *rm, const query *q, const char *const *domains,
                                size_t ndomains, char **body, size_t *len, rd_error *err)
{
    static const char head[] = "{\"results\":[";
    readmodel_result r;
    char tail[64], *buf = NULL;
    size_t size, at, tlen;
    rd_status rc;

    *body = NULL;
    *len = 0;
    if (query_projects(q)) { /* projected copies: the JSON path */
        json_t *out = NULL;
        rc = readmodel_query_json(rm, q, domains, ndomains, &out, err);
        if (rc == RD_OK && (*body = json_dumps(out, JSON_COMPACT)) == NULL)
            rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        json_decref(out);
        if (*body != NULL)
            *len = strlen(*body);
        return rc;
    }
    rc = readmodel_query(rm, q, domains, ndomains, &r, err);
    if (rc != RD_OK)
        return rc;
    tlen = (size_t)snprintf(tail, sizeof(tail), "],\"total_count\":%zu}", r.total_count);
    size = sizeof(head) - 1 + tlen + 1;
    for (size_t i = 0; i < r.n; i++) {
        const char *h, *t;
        size_t hl, tl;
        size += readmodel_doc_parts(r.docs[i], &h, &hl, &t, &tl) + 1;
    }
    buf = malloc(size);
    if (buf == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    memcpy(buf, head, sizeof(head) - 1);
    at = sizeof(head) - 1;
    for (size_t i = 0; i < r.n; i++) { /* the ready bytes, comma-separated */
        const char *h, *t;
        size_t hl, tl;
        readmodel_doc_parts(r.docs[i], &h, &hl, &t, &tl);
        if (i > 0)
            buf[at++] = ',';
        memcpy(buf + at, h, hl);
        memcpy(buf + at + hl, t, tl);
        at += hl + tl;
    }
    memcpy(buf + at, tail, tlen + 1);
    *body = buf;
    *len = at + tlen;
done:
    readmodel_result_free(&r);
    return rc;
}
