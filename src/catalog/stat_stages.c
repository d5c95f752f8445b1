/*
 * stat_stages.c - the aggregate stages other than group (count, sort,
 * limit, skip, unwind, project) and stat_run_stage, which dispatches one
 * compiled stage (group included) over the current rows.
 */
#include "stat-internal.h"

#include <stdlib.h>
#include <string.h>

/* The value at p walking objects only (as $unwind does); NULL = missing. */
static const json_t *plain_get(const json_t *row, const qpath *p)
{
    const json_t *cur = row;
    for (size_t i = 0; i < p->nparts && cur != NULL; i++)
        cur = json_is_object(cur) ? json_object_get(cur, p->parts[i]) : NULL;
    return cur;
}

/* A copy of obj with p (from component i on) set to val; shares the rest. */
static json_t *copy_set(const json_t *obj, const qpath *p, size_t i, json_t *val)
{
    json_t *o = json_copy((json_t *)obj);
    if (o == NULL)
        return NULL;
    if (i + 1 == p->nparts) {
        if (json_object_set(o, p->parts[i], val) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    json_t *child = copy_set(json_object_get(obj, p->parts[i]), p, i + 1, val);
    if (child == NULL || json_object_set_new(o, p->parts[i], child) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static rd_status run_unwind(const stage *s, rowset *rows, rd_error *err)
{
    rowset out = {0};
    for (size_t r = 0; r < rows->n; r++) {
        const json_t *v = plain_get(rows->v[r], &s->path);
        size_t i;
        json_t *e;
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_array(v)) {
            if (stat_rows_push(&out, json_incref(rows->v[r])) != 0)
                goto oom;
            continue;
        }
        json_array_foreach(v, i, e)
        {
            if (stat_rows_push(&out, copy_set(rows->v[r], &s->path, 0, e)) != 0)
                goto oom;
        }
    }
    stat_rows_replace(rows, &out);
    return RD_OK;
oom:
    stat_rows_clear(&out);
    return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
}

static rd_status run_project(const stage *s, const stage *last_group, rowset *rows, rd_error *err)
{
    for (size_t r = 0; r < rows->n; r++) {
        json_t *row = rows->v[r], *nrow = json_object();
        if (nrow == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        if (!s->exclude_keys && last_group != NULL) {
            for (size_t k = 0; k < last_group->nkeys; k++) {
                json_t *v = json_object_get(row, last_group->keys[k].name);
                if (v != NULL)
                    json_object_set(nrow, last_group->keys[k].name, v);
            }
        }
        for (size_t f = 0; f < s->nitems; f++) {
            json_t *owned, *v = query_lookup(row, s->items[f].path.text, &owned);
            if (v != NULL)
                json_object_set(nrow, s->items[f].name, v);
            json_decref(owned);
        }
        json_decref(row);
        rows->v[r] = nrow;
    }
    return RD_OK;
}

static rd_status run_sort(const stage *s, rowset *rows, rd_error *err)
{
    rd_status rc;
    size_t *order = malloc((rows->n ? rows->n : 1) * sizeof(*order));
    json_t **sorted = malloc((rows->n ? rows->n : 1) * sizeof(*sorted));
    if (order == NULL || sorted == NULL) {
        free(order);
        free(sorted);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    for (size_t i = 0; i < rows->n; i++)
        order[i] = i;
    rc = qsort_order(&s->sort, (const json_t *const *)rows->v, order, rows->n, err);
    if (rc == RD_OK) {
        for (size_t i = 0; i < rows->n; i++)
            sorted[i] = rows->v[order[i]];
        if (rows->n > 0) /* rows->v may be NULL when there are no rows */
            memcpy(rows->v, sorted, rows->n * sizeof(*sorted));
    }
    free(order);
    free(sorted);
    return rc;
}

rd_status stat_run_stage(const stage *s, const stage **last_group, rowset *rows, rd_error *err)
{
    switch (s->kind) {
    case ST_GROUP:
        *last_group = s;
        return stat_run_group(s, rows, err);
    case ST_COUNT: {
        size_t n = rows->n;
        rowset out = {0};
        *last_group = NULL;
        if (n > 0 && stat_rows_push(&out, json_pack("{s:I}", s->name, (json_int_t)n)) != 0)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        stat_rows_replace(rows, &out);
        return RD_OK;
    }
    case ST_SORT:
        return run_sort(s, rows, err);
    case ST_LIMIT:
        while (rows->n > s->n)
            json_decref(rows->v[--rows->n]);
        return RD_OK;
    case ST_SKIP: {
        size_t skip = s->n < rows->n ? s->n : rows->n;
        for (size_t i = 0; i < skip; i++)
            json_decref(rows->v[i]);
        if (skip > 0) /* rows->v may be NULL when there are no rows */
            memmove(rows->v, rows->v + skip, (rows->n - skip) * sizeof(*rows->v));
        rows->n -= skip;
        return RD_OK;
    }
    case ST_UNWIND:
        return run_unwind(s, rows, err);
    case ST_PROJECT:
        return run_project(s, *last_group, rows, err);
    }
    return RD_OK;
}
