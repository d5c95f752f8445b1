/*
 * rm_query.c - list queries over a read model: candidates from postings
 * (domains, eq / in over the eq fields) and the keyword trigram index,
 * query_match on the candidates unless the postings alone are exact, then
 * the requested order from a kept order (one kept sort key, or none) or
 * the query engine's own sort, and the page.  The answer equals query_run
 * over the same documents in default order.
 */
#include "rm-internal.h"

#include <stdlib.h>
#include <string.h>

/* A sorted set that may stand for "every document". */
typedef struct {
    rm_ids s;
    int all;
} cset;

static int ids_push(rm_ids *s, uint32_t id)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        uint32_t *nv = realloc(s->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = id;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* *dst = *dst AND src (src sorted); dst->all becomes 0. */
static int cset_and(cset *dst, const rm_ids *src)
{
    rm_ids out = {0};
    if (dst->all) {
        for (size_t i = 0; i < src->n; i++)
            if (ids_push(&out, src->v[i]) != 0)
                goto fail;
    } else {
        size_t i = 0, j = 0;
        while (i < dst->s.n && j < src->n) {
            if (dst->s.v[i] < src->v[j])
                i++;
            else if (dst->s.v[i] > src->v[j])
                j++;
            else {
                if (ids_push(&out, dst->s.v[i]) != 0)
                    goto fail;
                i++;
                j++;
            }
        }
    }
    free(dst->s.v);
    dst->s = out;
    dst->all = 0;
    return 0;
fail:
    free(out.v);
    return -1;
}

/* Sorts and deduplicates u in place. */
static void ids_normalise(rm_ids *u)
{
    size_t w = 0;
    if (u->n > 1)
        qsort(u->v, u->n, sizeof(*u->v), cmp_u32);
    for (size_t i = 0; i < u->n; i++)
        if (w == 0 || u->v[w - 1] != u->v[i])
            u->v[w++] = u->v[i];
    u->n = w;
}

static int ids_append(rm_ids *u, const rm_ids *p)
{
    for (size_t i = 0; p != NULL && i < p->n; i++)
        if (ids_push(u, p->v[i]) != 0)
            return -1;
    return 0;
}

/* Is d (NULL = a free slot) in one of the domains? */
static int in_domains(const readmodel_doc *d, const char *const *domains, size_t n)
{
    for (size_t i = 0; d != NULL && i < n; i++)
        if (strcmp(d->domain, domains[i]) == 0)
            return 1;
    return 0;
}

/* *out (empty) = the union of the domains' postings, sorted: each posting
 * is sorted and the domains' sets are disjoint, so they are merged. */
static int domains_union(const rm_state *st, const char *const *domains, size_t n, rm_ids *out)
{
    rm_ids acc = {0}, next = {0};
    int rc = -1;
    for (size_t d = 0; d < n; d++) {
        const rm_ids *p = rm_map_get(&st->domains, domains[d], strlen(domains[d]));
        size_t i = 0, j = 0;
        int dup = 0;
        for (size_t e = 0; e < d && !dup; e++)
            dup = strcmp(domains[e], domains[d]) == 0;
        if (p == NULL || p->n == 0 || dup)
            continue;
        next.n = 0;
        while (i < acc.n || j < p->n) {
            uint32_t v = (j == p->n || (i < acc.n && acc.v[i] < p->v[j])) ? acc.v[i++] : p->v[j++];
            if (ids_push(&next, v) != 0)
                goto done;
        }
        {
            rm_ids t = acc;
            acc = next;
            next = t;
        }
    }
    *out = acc;
    acc.v = NULL;
    rc = 0;
done:
    free(acc.v);
    free(next.v);
    return rc;
}

/* ---- trigram prefilter for contain / regex -------------------------------- */

/* A byte that stands for itself in an extended regular expression (ASCII
 * only: the matching is ASCII case-insensitive in the C locale). */
static int regex_literal(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr(" -_/:@,=#%!~'\"<>;&", ch) != NULL);
}

/* Appends the trigrams of run[0..*n) to out and empties the run. */
static int flush_run(char *run, size_t *n, rm_ids *out)
{
    int rc = rm_trigrams(run, *n, out);
    *n = 0;
    return rc;
}

/* Appends to out the trigrams of literal runs that every match of the
 * extended regular expression p contains; conservative: a pattern with
 * alternation gives none, and the scan stops at the first group or
 * bracket expression (what precedes it is still required).  -1 on OOM. */
static int regex_trigrams(const char *p, rm_ids *out)
{
    char run[128];
    size_t n = 0;
    if (strchr(p, '|') != NULL)
        return 0;
    for (size_t i = 0; p[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)p[i], next = (unsigned char)p[i + 1];
        if (regex_literal(ch)) {
            if (next == '?' || next == '*' || next == '{') { /* optional */
                if (flush_run(run, &n, out) != 0)
                    return -1;
                continue;
            }
            if (n == sizeof(run) && flush_run(run, &n, out) != 0)
                return -1;
            run[n++] = (char)ch;
            if (next == '+' && flush_run(run, &n, out) != 0)
                return -1;
            continue;
        }
        if (flush_run(run, &n, out) != 0)
            return -1;
        if (ch == '(' || ch == '[')
            return 0;
        if (ch == '{') /* an interval: its digits are no literal */
            while (p[i + 1] != '\0' && p[i] != '}')
                i++;
        else if (ch == '\\' && next != '\0') /* an escape: skip its atom */
            i++;
    }
    return flush_run(run, &n, out);
}

/* *out = the documents holding every trigram in tris (some may repeat). */
static int tri_all(const rm_state *st, const rm_ids *tris, cset *out)
{
    static const rm_ids none = {0};
    out->all = 1;
    out->s.n = 0;
    for (size_t t = 0; t < tris->n; t++) {
        char key[3] = {(char)(tris->v[t] >> 16), (char)(tris->v[t] >> 8), (char)tris->v[t]};
        const rm_ids *p = rm_map_get(&st->tri, key, 3);
        if (cset_and(out, p != NULL ? p : &none) != 0)
            return -1;
    }
    return 0;
}

/* Narrows c by the trigram index for each positive contain / regex (and
 * their _in forms) on a keyword field: every match holds, in its keyword
 * fields, the (lower-cased) trigrams of a contain operand of 3 bytes or
 * more, or of the literal runs a pattern requires.  Over-approximates;
 * query_match confirms. */
static int text_prefilter(const rm_state *st, const query *q, cset *c)
{
    rm_ids tris = {0};
    cset one = {{0}, 1}, any = {{0}, 0};
    const char *field;
    const json_t *operand;
    int is_regex, r, rc = -1;
    for (size_t i = 0; (r = query_text_cond(q, i, &field, &is_regex, &operand)) >= 0; i++) {
        size_t nops, o;
        if (r == 0 || !st->kw_indexable || !resource_has_key(st->res->keyword_fields, field))
            continue;
        nops = json_is_array(operand) ? json_array_size(operand) : 1;
        any.s.n = 0;
        for (o = 0; o < nops; o++) { /* the union over the operands */
            const char *text =
                json_string_value(json_is_array(operand) ? json_array_get(operand, o) : operand);
            tris.n = 0;
            if (text == NULL)
                break;
            if ((is_regex ? regex_trigrams(text, &tris) : rm_trigrams(text, strlen(text), &tris)) !=
                0)
                goto done;
            if (tris.n == 0) /* this operand does not narrow: nor does the condition */
                break;
            if (tri_all(st, &tris, &one) != 0 || ids_append(&any.s, &one.s) != 0)
                goto done;
        }
        if (o < nops || nops == 0)
            continue;
        ids_normalise(&any.s);
        if (cset_and(c, &any.s) != 0)
            goto done;
    }
    rc = 0;
done:
    free(tris.v);
    free(one.s.v);
    free(any.s.v);
    return rc;
}

/* Narrows c by every index the query allows. */
static int candidates(const rm_state *st, const query *q, const char *const *domains,
                      size_t ndomains, cset *c)
{
    rm_ids u = {0};
    json_t *vals = NULL;
    const char *const *words;
    size_t nwords;
    int rc = -1;

    c->all = 1;
    for (size_t f = 0; f < st->neq; f++) {
        size_t i;
        const json_t *v;
        int r = query_index_values(q, st->res->eq_fields[f], &vals);
        if (r < 0)
            goto done;
        if (r == 0)
            continue;
        u.n = 0;
        json_array_foreach(vals, i, v)
        {
            if (ids_append(
                    &u, rm_map_get(&st->eq[f], json_string_value(v), json_string_length(v))) != 0)
                goto done;
        }
        json_decref(vals);
        vals = NULL;
        /* an array value may match through several elements */
        if (ids_append(&u, &st->eqarr[f]) != 0)
            goto done;
        ids_normalise(&u);
        if (cset_and(c, &u) != 0)
            goto done;
    }
    if (text_prefilter(st, q, c) != 0)
        goto done;
    nwords = query_keyword_words(q, &words);
    for (size_t w = 0; st->kw_indexable && w < nwords; w++) {
        u.n = 0;
        if (rm_trigrams(words[w], strlen(words[w]), &u) != 0)
            goto done;
        for (size_t t = 0; t < u.n; t++) {
            static const rm_ids none = {0};
            char key[3] = {(char)(u.v[t] >> 16), (char)(u.v[t] >> 8), (char)u.v[t]};
            const rm_ids *p = rm_map_get(&st->tri, key, 3);
            if (cset_and(c, p != NULL ? p : &none) != 0)
                goto done;
        }
    }
    /* Domains last: few candidates are checked one by one, else the
     * readable domains' postings are merged in. */
    if (domains != NULL && !c->all) {
        size_t w = 0;
        for (size_t i = 0; i < c->s.n; i++)
            if (in_domains(st->slot[c->s.v[i]], domains, ndomains))
                c->s.v[w++] = c->s.v[i];
        c->s.n = w;
    } else if (domains != NULL) {
        if (domains_union(st, domains, ndomains, &c->s) != 0)
            goto done;
        c->all = 0;
    }
    rc = 0;
done:
    json_decref(vals);
    free(u.v);
    return rc;
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
        if (v != NULL ? json_object_set(m->scratch, m->keys[i], v) != 0
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
static int order_matches(const rm_state *st, const query *q, rm_ids *matched,
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
    if (matched != NULL && matched->n * 16 < st->count) { /* few matches: sort them */
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
            size_t j = i - 1;
            const json_t *v = RM_SORTV(st->slot[kept->v[j]], o.k);
            while (j > 0 && query_value_cmp(RM_SORTV(st->slot[kept->v[j - 1]], o.k), v) == 0)
                j--;
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
    cset c = {{0}, 1};
    rm_matcher m = {0};
    size_t n;
    int exact = 0, rc = -1;
    if (q != NULL) {
        if (matcher_init(&m, st, q) != 0 || candidates(st, q, domains, ndomains, &c) != 0)
            goto done;
        /* The postings are exact when the query only constrains eq fields,
         * but a document holding an array there is still matched in full. */
        exact = query_index_only(q, st->res->eq_fields);
    } else if (domains != NULL) {
        if (domains_union(st, domains, ndomains, &c.s) != 0)
            goto done;
        c.all = 0;
    }
    n = c.all ? st->nslots : c.s.n;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = c.all ? (uint32_t)i : c.s.v[i];
        const readmodel_doc *d = st->slot[s];
        int r = 1;
        if (d == NULL)
            continue;
        if (q != NULL && !(exact && !d->eq_array) && ((*tested)++, r = matcher_test(&m, d)) < 0)
            goto done;
        if (r && ids_push(matched, s) != 0)
            goto done;
    }
    rc = 0;
done:
    matcher_free(&m);
    free(c.s.v);
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
        r = order_matches(st, q, NULL, domains, ndomains, to, &ordered, err);
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
    if (order_matches(st, q, &matched, domains, ndomains, to, &ordered, err) != 0)
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
