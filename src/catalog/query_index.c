/*
 * query_index.c - index hints: what the AND part of a compiled list query
 * says about top-level keys, so that the catalog can answer from its key
 * indexes instead of reading every document (query_index_values,
 * query_index_only; the contract is in include/query.h).
 */
#include "query-internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- index hints --------------------------------------------------------- */

/* 1 when c confines the top-level key `field` to its operands: a positive
 * eq / in on exactly that key whose operands are all NUL-free strings. */
static int cond_index_hint(const qcond *c, const char *field)
{
    if (c->kind != K_EQ || c->negate || c->path.nparts != 1 || strcmp(c->path.text, field) != 0)
        return 0;
    for (size_t i = 0; i < c->nvals; i++) {
        const json_t *v = c->vals[i];
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return 0;
    }
    return 1;
}

static int cmp_json_strings(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    size_t lx = json_string_length(x), ly = json_string_length(y);
    int c = memcmp(json_string_value(x), json_string_value(y), lx < ly ? lx : ly);
    return c != 0 ? c : (lx > ly) - (lx < ly);
}

int query_index_values(const query *q, const char *field, json_t **values)
{
    const qcond *first = NULL;
    const json_t **keep = NULL;
    json_t *out = NULL;
    size_t nkeep = 0;
    int rc = 0;

    *values = NULL;
    if (strchr(field, '.') != NULL)
        return 0;
    for (size_t i = 0; i < q->nand && first == NULL; i++)
        if (cond_index_hint(&q->and_conds[i], field))
            first = &q->and_conds[i];
    if (first == NULL)
        return 0;
    keep = malloc((first->nvals ? first->nvals : 1) * sizeof(*keep));
    out = json_array();
    if (keep == NULL || out == NULL) {
        rc = -1;
        goto done;
    }
    /* The first condition's operands that every other counting condition
     * also allows. */
    for (size_t v = 0; v < first->nvals; v++) {
        int ok = 1;
        for (size_t i = 0; i < q->nand && ok; i++) {
            const qcond *c = &q->and_conds[i];
            if (c != first && cond_index_hint(c, field))
                ok = qi_cond_has_string(c, first->vals[v]);
        }
        if (ok)
            keep[nkeep++] = first->vals[v];
    }
    qsort(keep, nkeep, sizeof(*keep), cmp_json_strings);
    for (size_t v = 0; v < nkeep; v++) {
        if (v > 0 && cmp_json_strings(&keep[v - 1], &keep[v]) == 0)
            continue;
        if (json_array_append_new(out, json_deep_copy(keep[v])) != 0) {
            rc = -1;
            goto done;
        }
    }
    *values = out;
    out = NULL;
    rc = 1;
done:
    free(keep);
    json_decref(out);
    return rc;
}

int query_index_only(const query *q, const char *const *fields)
{
    if (q->nor > 0 || q->nwords > 0)
        return 0;
    for (size_t i = 0; i < q->nand; i++) {
        size_t f;
        for (f = 0; fields[f] != NULL; f++)
            if (strchr(fields[f], '.') == NULL && cond_index_hint(&q->and_conds[i], fields[f]))
                break;
        if (fields[f] == NULL)
            return 0;
    }
    return 1;
}

/* ---- plan accessors ------------------------------------------------------ */

int query_sort_key(const query *q, size_t i, const char **key, int *desc)
{
    if (i >= q->sort.nkeys)
        return 0;
    *key = q->sort.keys[i].path.text;
    *desc = q->sort.keys[i].desc;
    return 1;
}

void query_page_window(const query *q, size_t total, size_t *from, size_t *to)
{
    qpage_slice(&q->page, total, from, to);
}

size_t query_keyword_words(const query *q, const char *const **words)
{
    *words = (const char *const *)q->words;
    return q->nwords;
}

int query_value_cmp(const json_t *a, const json_t *b)
{
    return qjson_cmp(a, b);
}

json_t *query_project(const query *q, const json_t *doc)
{
    return q->proj != NULL && json_is_object(doc) ? qi_proj_object(doc, q->proj)
                                                  : json_deep_copy(doc);
}

rd_status query_sort(const query *q, const json_t *const *docs, size_t *order, size_t n,
                     rd_error *err)
{
    return qsort_order(&q->sort, docs, order, n, err);
}

size_t query_match_keys(const query *q, const char ***keys)
{
    size_t cap = q->nand + q->nor + (q->nwords > 0 ? q->nkw : 0), n = 0;
    const char **out = malloc((cap ? cap : 1) * sizeof(*out));
    *keys = NULL;
    if (out == NULL)
        return (size_t)-1;
    for (size_t i = 0; i < cap; i++) {
        const qpath *p = i < q->nand            ? &q->and_conds[i].path
                         : i < q->nand + q->nor ? &q->or_conds[i - q->nand].path
                                                : &q->kw_paths[i - q->nand - q->nor];
        size_t j;
        for (j = 0; j < n && strcmp(out[j], p->parts[0]) != 0; j++)
            ;
        if (j == n)
            out[n++] = p->parts[0];
    }
    *keys = out;
    return n;
}

int query_text_cond(const query *q, size_t i, const char **field, int *is_regex,
                    const json_t **operand)
{
    const qcond *c;
    if (i >= q->nand)
        return -1;
    c = &q->and_conds[i];
    if ((c->kind != K_CONTAIN && c->kind != K_REGEX) || c->negate || c->path.nparts != 1)
        return 0;
    *field = c->path.text;
    *is_regex = c->kind == K_REGEX;
    *operand = c->value;
    return 1;
}
