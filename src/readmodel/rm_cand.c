/*
 * rm_cand.c - the candidates of a list query over a read model: sorted
 * slot sets from the indexes (eq postings, the trigram index for keyword
 * words and for contain / regex on keyword fields), intersected smallest
 * first, then restricted to the readable domains by their postings.  Only
 * compact arrays are read, never a document.  The set over-approximates
 * the matches; query_match (rm_query.c) decides the rest.
 */
#include "rm-internal.h"

#include <stdlib.h>
#include <string.h>

static const rm_ids no_ids = {0};

/* ---- sorted set operations ------------------------------------------------- */

int rm_ids_push(rm_ids *s, uint32_t id)
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

static int ids_reserve(rm_ids *s, size_t n)
{
    uint32_t *nv;
    if (s->cap >= n)
        return 0;
    nv = realloc(s->v, (n ? n : 1) * sizeof(*nv));
    if (nv == NULL)
        return -1;
    s->v = nv;
    s->cap = n ? n : 1;
    return 0;
}

/* The first index >= lo of v[0..n) whose value is >= x (v sorted). */
static size_t gallop(const uint32_t *v, size_t lo, size_t n, uint32_t x)
{
    size_t step = 1, prev, a, b;
    if (lo >= n || v[lo] >= x)
        return lo;
    prev = lo; /* v[prev] < x */
    while (prev + step < n && v[prev + step] < x) {
        prev += step;
        step *= 2;
    }
    a = prev + 1;
    b = prev + step < n ? prev + step : n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (v[mid] < x)
            a = mid + 1;
        else
            b = mid;
    }
    return a;
}

int rm_ids_inter(const rm_ids *a, const rm_ids *b, rm_ids *out)
{
    const rm_ids *small = a->n <= b->n ? a : b, *large = a->n <= b->n ? b : a;
    size_t i = 0, j = 0;
    out->n = 0;
    if (ids_reserve(out, small->n) != 0)
        return -1;
    if (small->n * 8 < large->n) { /* few against many: gallop in the large one */
        for (i = 0; i < small->n && j < large->n; i++) {
            j = gallop(large->v, j, large->n, small->v[i]);
            if (j < large->n && large->v[j] == small->v[i])
                out->v[out->n++] = small->v[i];
        }
        return 0;
    }
    while (i < small->n && j < large->n) {
        if (small->v[i] < large->v[j])
            i++;
        else if (small->v[i] > large->v[j])
            j++;
        else {
            out->v[out->n++] = small->v[i];
            i++;
            j++;
        }
    }
    return 0;
}

int rm_ids_union(const rm_ids *a, const rm_ids *b, rm_ids *out)
{
    size_t i = 0, j = 0;
    out->n = 0;
    if (ids_reserve(out, a->n + b->n) != 0)
        return -1;
    while (i < a->n || j < b->n) {
        uint32_t v;
        if (j == b->n || (i < a->n && a->v[i] < b->v[j]))
            v = a->v[i++];
        else if (i == a->n || b->v[j] < a->v[i])
            v = b->v[j++];
        else {
            v = a->v[i++];
            j++;
        }
        out->v[out->n++] = v;
    }
    return 0;
}

/* *acc = *acc OP src, through the scratch set *tmp (swapped in). */
static int ids_fold(rm_ids *acc, const rm_ids *src, rm_ids *tmp, int unite)
{
    rm_ids t;
    if ((unite ? rm_ids_union(acc, src, tmp) : rm_ids_inter(acc, src, tmp)) != 0)
        return -1;
    t = *acc;
    *acc = *tmp;
    *tmp = t;
    return 0;
}

static int ids_copy(rm_ids *dst, const rm_ids *src)
{
    dst->n = 0;
    if (ids_reserve(dst, src->n) != 0)
        return -1;
    if (src->n > 0)
        memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    dst->n = src->n;
    return 0;
}

/* ---- a conjunction of sets, intersected smallest first ---------------------- */

typedef struct {
    const rm_ids *set; /* borrowed from the model, or own */
    rm_ids *own;       /* allocated for this query, or NULL */
} setref;

typedef struct {
    setref *v;
    size_t n, cap;
    int empty; /* some set is known empty: the conjunction is */
} conj;

static void conj_free(conj *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].own != NULL)
            rm_ids_free_ptr(c->v[i].own);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* Adds set s (borrowed; NULL = empty) or own (taken, allocated). */
static int conj_add(conj *c, const rm_ids *s, rm_ids *own)
{
    if (own != NULL)
        s = own;
    if (s == NULL || s->n == 0)
        c->empty = 1;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 8;
        setref *nv = realloc(c->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            rm_ids_free_ptr(own);
            return -1;
        }
        c->v = nv;
        c->cap = ncap;
    }
    c->v[c->n].set = s != NULL ? s : &no_ids;
    c->v[c->n++].own = own;
    return 0;
}

static int cmp_setref(const void *a, const void *b)
{
    size_t x = ((const setref *)a)->set->n, y = ((const setref *)b)->set->n;
    return (x > y) - (x < y);
}

/* *out = the intersection (c->n > 0). */
static int conj_eval(conj *c, rm_ids *out)
{
    rm_ids tmp = {0};
    int rc = -1;
    out->n = 0;
    if (c->empty)
        return 0;
    qsort(c->v, c->n, sizeof(*c->v), cmp_setref);
    if (ids_copy(out, c->v[0].set) != 0)
        goto done;
    for (size_t i = 1; i < c->n && out->n > 0; i++)
        if (ids_fold(out, c->v[i].set, &tmp, 0) != 0)
            goto done;
    rc = 0;
done:
    free(tmp.v);
    return rc;
}

/* Adds the postings of trigrams tris (some may repeat) to c. */
static int conj_add_trigrams(const rm_state *st, conj *c, const rm_ids *tris)
{
    for (size_t t = 0; t < tris->n; t++) {
        char key[3] = {(char)(tris->v[t] >> 16), (char)(tris->v[t] >> 8), (char)tris->v[t]};
        if (conj_add(c, rm_map_get(&st->tri, key, 3), NULL) != 0)
            return -1;
    }
    return 0;
}

/* *out (allocated) = the documents holding every trigram of text[0..len),
 * or NULL (with 0) when the text has none: it does not narrow. */
static int text_set(const rm_state *st, const char *text, size_t len, rm_ids **out)
{
    rm_ids tris = {0};
    conj c = {0};
    int rc = -1;
    *out = NULL;
    if (rm_trigrams(text, len, &tris) != 0)
        goto done;
    if (tris.n == 0) {
        rc = 0;
        goto done;
    }
    if (conj_add_trigrams(st, &c, &tris) != 0 || (*out = calloc(1, sizeof(**out))) == NULL ||
        conj_eval(&c, *out) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0) {
        rm_ids_free_ptr(*out);
        *out = NULL;
    }
    conj_free(&c);
    free(tris.v);
    return rc;
}

/* ---- what a pattern requires ------------------------------------------------ */

/* A byte that stands for itself in an extended regular expression (ASCII
 * only: the matching is ASCII case-insensitive in the C locale). */
static int regex_literal(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr(" -_/:@,=#%!~'\"<>;&", ch) != NULL);
}

/* A scan of an extended regular expression giving, as a set of documents,
 * what every match requires: a literal run requires its trigrams, a
 * sequence the intersection of its parts, an alternation the union of its
 * branches.  Anything unusual sets bad: the pattern then narrows nothing. */
typedef struct {
    const rm_state *st;
    const char *p;
    size_t i;
    int depth;
    int bad;
} rx_scan;

#define RX_MAX_DEPTH 16

/* The quantifiers at p[*i...]: 0 none, 1 only '+' (the atom still occurs),
 * 2 some quantifier lets the atom be absent ('?', '*', an interval); *i
 * moves past them.  A malformed interval sets bad. */
static int rx_quant(rx_scan *x)
{
    int q = 0;
    for (;;) {
        char ch = x->p[x->i];
        if (ch == '+') {
            q = q ? q : 1;
            x->i++;
        } else if (ch == '?' || ch == '*') {
            q = 2;
            x->i++;
        } else if (ch == '{') {
            size_t j = x->i + 1;
            while ((x->p[j] >= '0' && x->p[j] <= '9') || x->p[j] == ',')
                j++;
            if (x->p[j] != '}' || j == x->i + 1) {
                x->bad = 1;
                return 2;
            }
            q = 2; /* {0}, {0,n}: conservatively optional */
            x->i = j + 1;
        } else
            return q;
    }
}

/* Moves past a bracket expression at p[x->i] == '['. */
static void rx_bracket(rx_scan *x)
{
    size_t j = x->i + 1;
    if (x->p[j] == '^')
        j++;
    if (x->p[j] == ']')
        j++;
    for (;;) {
        char ch = x->p[j];
        if (ch == '\0') {
            x->bad = 1;
            x->i = j;
            return;
        }
        if (ch == ']')
            break;
        if (ch == '[' && (x->p[j + 1] == ':' || x->p[j + 1] == '.' || x->p[j + 1] == '=')) {
            char end = x->p[j + 1];
            j += 2;
            while (x->p[j] != '\0' && !(x->p[j] == end && x->p[j + 1] == ']'))
                j++;
            if (x->p[j] == '\0')
                continue; /* reported as bad above */
            j += 2;
            continue;
        }
        j++;
    }
    x->i = j + 1;
}

static int rx_alt(rx_scan *x, cset_t *out);

/* c AND the trigrams of run[0..*n) (none when shorter than 3); empties it. */
static int rx_flush(rx_scan *x, char *run, size_t *n, conj *c)
{
    rm_ids *s = NULL;
    int rc = text_set(x->st, run, *n, &s);
    *n = 0;
    if (rc == 0 && s != NULL)
        rc = conj_add(c, NULL, s);
    return rc;
}

/* One branch: atoms up to '|', ')' or the end. */
static int rx_seq(rx_scan *x, cset_t *out)
{
    char run[128];
    size_t n = 0;
    int atom = 0; /* an atom precedes: a quantifier may follow */
    conj c = {0};
    int rc = -1;
    out->all = 1;
    out->s.n = 0;
    while (!x->bad && x->p[x->i] != '\0' && x->p[x->i] != '|' && x->p[x->i] != ')') {
        unsigned char ch = (unsigned char)x->p[x->i];
        if (regex_literal(ch)) {
            int q;
            x->i++;
            q = rx_quant(x);
            if (q == 2) { /* optional: ends the run without it */
                if (rx_flush(x, run, &n, &c) != 0)
                    goto done;
            } else {
                if (n == sizeof(run) && rx_flush(x, run, &n, &c) != 0)
                    goto done;
                run[n++] = (char)ch;
                if (q == 1 && rx_flush(x, run, &n, &c) != 0)
                    goto done;
            }
            atom = 1;
            continue;
        }
        if (rx_flush(x, run, &n, &c) != 0)
            goto done;
        if (ch == '(') {
            cset_t g = {{0}, 1};
            if (++x->depth > RX_MAX_DEPTH) {
                x->bad = 1;
                break;
            }
            x->i++;
            if (rx_alt(x, &g) != 0)
                goto done;
            x->depth--;
            if (x->p[x->i] != ')')
                x->bad = 1;
            else
                x->i++;
            if (!x->bad && rx_quant(x) != 2 && !g.all) {
                rm_ids *own = calloc(1, sizeof(*own));
                if (own == NULL) {
                    free(g.s.v);
                    goto done;
                }
                *own = g.s;
                g.s.v = NULL;
                if (conj_add(&c, NULL, own) != 0)
                    goto done;
            }
            free(g.s.v);
            atom = 1;
            continue;
        }
        if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
            if (!atom) { /* a quantifier with nothing to repeat */
                x->bad = 1;
                break;
            }
            rx_quant(x);
            continue;
        }
        if (ch == '[')
            rx_bracket(x);
        else if (ch == '\\') {
            if (x->p[x->i + 1] == '\0')
                x->bad = 1;
            x->i += 2; /* an escape: its atom is not read */
        } else
            x->i++; /* '.', '^', '$', another byte */
        atom = ch != '^';
    }
    if (rx_flush(x, run, &n, &c) != 0)
        goto done;
    if (!x->bad && c.n > 0) {
        if (conj_eval(&c, &out->s) != 0)
            goto done;
        out->all = 0;
    }
    rc = 0;
done:
    conj_free(&c);
    return rc;
}

/* Branches separated by '|', up to ')' or the end: the union of theirs
 * (every document when one branch narrows nothing). */
static int rx_alt(rx_scan *x, cset_t *out)
{
    rm_ids tmp = {0};
    int first = 1, rc = -1;
    out->all = 0;
    out->s.n = 0;
    for (;;) {
        cset_t b = {{0}, 1};
        if (rx_seq(x, &b) != 0)
            goto done;
        if (b.all)
            out->all = 1;
        else if (!out->all && first) {
            free(out->s.v);
            out->s = b.s;
            b.s.v = NULL;
        } else if (!out->all && ids_fold(&out->s, &b.s, &tmp, 1) != 0) {
            free(b.s.v);
            goto done;
        }
        free(b.s.v);
        first = 0;
        if (x->bad || x->p[x->i] != '|')
            break;
        x->i++;
    }
    if (out->all) {
        free(out->s.v);
        memset(&out->s, 0, sizeof(out->s));
    }
    rc = 0;
done:
    free(tmp.v);
    return rc;
}

int rm_regex_set(const rm_state *st, const char *pattern, cset_t *out)
{
    rx_scan x = {st, pattern, 0, 0, 0};
    int rc;
    memset(out, 0, sizeof(*out));
    rc = rx_alt(&x, out);
    if (rc == 0 && (x.bad || x.p[x.i] != '\0')) { /* a stray ')' or worse */
        free(out->s.v);
        memset(out, 0, sizeof(*out));
        out->all = 1;
    }
    return rc;
}

/* ---- candidates ---------------------------------------------------------------- */

/* Adds to c, for each positive contain / regex (and their _in forms) on a
 * keyword field, the documents that can match: those holding the trigrams
 * of a contain operand of 3 bytes or more, or what a pattern requires; the
 * union over an _in list's operands (an operand that narrows nothing
 * leaves the condition out). */
static int text_prefilter(const rm_state *st, const query *q, conj *c)
{
    const char *field;
    const json_t *operand;
    int is_regex, r;
    rm_ids tmp = {0};
    int rc = -1;
    for (size_t i = 0; (r = query_text_cond(q, i, &field, &is_regex, &operand)) >= 0; i++) {
        size_t nops, o;
        rm_ids *any = NULL;
        if (r == 0 || !st->kw_indexable || !resource_has_key(st->res->keyword_fields, field))
            continue;
        nops = json_is_array(operand) ? json_array_size(operand) : 1;
        for (o = 0; o < nops; o++) { /* the union over the operands */
            const char *text =
                json_string_value(json_is_array(operand) ? json_array_get(operand, o) : operand);
            cset_t one = {{0}, 1};
            if (text == NULL)
                break;
            if (is_regex) {
                if (rm_regex_set(st, text, &one) != 0)
                    goto fail;
            } else {
                rm_ids *s = NULL;
                if (text_set(st, text, strlen(text), &s) != 0)
                    goto fail;
                if (s != NULL) {
                    one.s = *s;
                    one.all = 0;
                    free(s);
                }
            }
            if (one.all) /* this operand does not narrow: nor does the condition */
                break;
            if (any == NULL) {
                if ((any = calloc(1, sizeof(*any))) == NULL) {
                    free(one.s.v);
                    goto fail;
                }
                *any = one.s;
            } else if (ids_fold(any, &one.s, &tmp, 1) != 0) {
                free(one.s.v);
                goto fail;
            } else
                free(one.s.v);
        }
        if (o < nops || nops == 0) {
            rm_ids_free_ptr(any);
            continue;
        }
        if (conj_add(c, NULL, any) != 0)
            goto done;
        continue;
    fail:
        rm_ids_free_ptr(any);
        goto done;
    }
    rc = 0;
done:
    free(tmp.v);
    return rc;
}

/* The readable documents among c (all: every document of the domains):
 * each domain's posting intersected with c, the results merged (the
 * domains' sets are disjoint). */
static int restrict_domains(const rm_state *st, const char *const *domains, size_t n, cset_t *c)
{
    rm_ids acc = {0}, part = {0}, tmp = {0};
    int rc = -1;
    for (size_t d = 0; d < n; d++) {
        const rm_ids *p = rm_map_get(&st->domains, domains[d], strlen(domains[d]));
        int dup = 0;
        for (size_t e = 0; e < d && !dup; e++)
            dup = strcmp(domains[e], domains[d]) == 0;
        if (p == NULL || p->n == 0 || dup)
            continue;
        if ((c->all ? ids_copy(&part, p) : rm_ids_inter(&c->s, p, &part)) != 0)
            goto done;
        if (acc.v == NULL) {
            acc = part;
            memset(&part, 0, sizeof(part));
        } else if (ids_fold(&acc, &part, &tmp, 1) != 0)
            goto done;
    }
    free(c->s.v);
    c->s = acc;
    memset(&acc, 0, sizeof(acc));
    c->all = 0;
    rc = 0;
done:
    free(acc.v);
    free(part.v);
    free(tmp.v);
    return rc;
}

int rm_candidates(const rm_state *st, const query *q, const char *const *domains, size_t ndomains,
                  cset_t *c)
{
    conj cj = {0};
    json_t *vals = NULL;
    rm_ids tris = {0};
    const char *const *words;
    size_t nwords;
    int rc = -1;

    memset(c, 0, sizeof(*c));
    c->all = 1;
    for (size_t f = 0; q != NULL && f < st->neq; f++) {
        size_t i;
        const json_t *v;
        rm_ids *u = NULL, tmp = {0};
        int r = query_index_values(q, st->res->eq_fields[f], &vals);
        if (r < 0)
            goto done;
        if (r == 0)
            continue;
        if (json_array_size(vals) == 1 && st->eqarr[f].n == 0) { /* one posting, as it is */
            v = json_array_get(vals, 0);
            r = conj_add(&cj, rm_map_get(&st->eq[f], json_string_value(v), json_string_length(v)),
                         NULL);
            json_decref(vals);
            vals = NULL;
            if (r != 0)
                goto done;
            continue;
        }
        /* the union of the allowed values' postings and the field's array
         * holders (an array may match through any element) */
        if ((u = calloc(1, sizeof(*u))) == NULL)
            goto done;
        json_array_foreach(vals, i, v)
        {
            const rm_ids *p = rm_map_get(&st->eq[f], json_string_value(v), json_string_length(v));
            if (p != NULL && ids_fold(u, p, &tmp, 1) != 0)
                break;
        }
        if (i < json_array_size(vals) ||
            (st->eqarr[f].n > 0 && ids_fold(u, &st->eqarr[f], &tmp, 1) != 0)) {
            free(tmp.v);
            rm_ids_free_ptr(u);
            goto done;
        }
        free(tmp.v);
        json_decref(vals);
        vals = NULL;
        if (conj_add(&cj, NULL, u) != 0)
            goto done;
    }
    if (q != NULL && text_prefilter(st, q, &cj) != 0)
        goto done;
    nwords = q != NULL ? query_keyword_words(q, &words) : 0;
    for (size_t w = 0; st->kw_indexable && w < nwords; w++)
        if (rm_trigrams(words[w], strlen(words[w]), &tris) != 0)
            goto done;
    if (conj_add_trigrams(st, &cj, &tris) != 0)
        goto done;
    if (cj.n > 0) {
        if (conj_eval(&cj, &c->s) != 0)
            goto done;
        c->all = 0;
    }
    if (domains != NULL && restrict_domains(st, domains, ndomains, c) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0) {
        free(c->s.v);
        memset(c, 0, sizeof(*c));
    }
    json_decref(vals);
    free(tris.v);
    conj_free(&cj);
    return rc;
}
