/*
 * stat.c - the statistics engine (SPEC section 8, StatisticsQuery):
 * filter / filter_or / keyword select documents (through query.c), then
 * either `distinct` or an `aggregate` pipeline of group, count, sort, limit,
 * skip, unwind and project stages runs over them, then `page` slices the
 * final rows.
 *
 * Each stage behaves as its MongoDB counterpart ($group, $count, $sort,
 * $limit, $skip, $unwind, $project) would on the same documents, with these
 * deliberate, documented differences (also in docs/query.md):
 *  - group rows come out in order of first appearance of their key in the
 *    input (MongoDB leaves it unspecified); add_to_set keeps first-appearance
 *    order too;
 *  - sort is stable (ties keep the incoming row order);
 *  - group keys become top-level fields of the row (MongoDB keeps them in
 *    _id; the platform flattens them the same way); a key whose path is
 *    missing is left out of the row, and missing and null are different
 *    groups, as in MongoDB;
 *  - `date_format` parses the key's value as an ISO-8601 string
 *    (query_parse_datetime) and formats it in UTC with MongoDB
 *    $dateToString specifiers (%Y %m %d %H %M %S %L %j %w %u %U %V %G %z
 *    %Z %%); a value that is not such a string gives null;
 *  - project without exclude_keys keeps the key fields of the last group
 *    stage (where MongoDB would keep _id), with exclude_keys it does not.
 * Every error is found while compiling, before any document is looked at,
 * so a bad query never returns partial results.
 *
 * Files: stat.c (entry point, distinct, row lists), stat_compile.c (the
 * query -> stat_plan step), stat_group.c (group and its accumulators),
 * stat_stages.c (the other stages and dispatch), stat_date.c (date_format);
 * shared declarations in stat-internal.h.
 */
#include "stat-internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- rows ---------------------------------------------------------------- */

/* Appends row (stolen, even on failure); -1 on allocation failure. */
int stat_rows_push(rowset *r, json_t *row)
{
    if (row == NULL)
        return -1;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        json_t **grown = realloc(r->v, cap * sizeof(*grown));
        if (grown == NULL) {
            json_decref(row);
            return -1;
        }
        r->v = grown;
        r->cap = cap;
    }
    r->v[r->n++] = row;
    return 0;
}

void stat_rows_clear(rowset *r)
{
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Replaces *r with next (taking it over). */
void stat_rows_replace(rowset *r, rowset *next)
{
    stat_rows_clear(r);
    *r = *next;
    memset(next, 0, sizeof(*next));
}
/* ---- distinct ------------------------------------------------------------ */

typedef struct {
    const json_t **v;
    size_t n;
    size_t cap;
    int failed;
} value_list;

static int distinct_visit(const json_t *v, qv_kind kind, void *vctx)
{
    value_list *l = vctx;
    if (kind == QV_MISSING || (kind == QV_LEAF && json_is_array(v)))
        return 0; /* arrays are unwound: their elements follow */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        const json_t **grown = realloc(l->v, cap * sizeof(*grown));
        if (grown == NULL) {
            l->failed = 1;
            return 1;
        }
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

static int value_idx_cmp(size_t a, size_t b, const void *vctx)
{
    const value_list *l = vctx;
    return qjson_cmp(l->v[a], l->v[b]);
}

/* Distinct values of p over the matching docs, sorted, into rows. */
static rd_status run_distinct(const stat_plan *p, const json_t *docs, rowset *rows, rd_error *err)
{
    rd_status rc = RD_OK;
    value_list l = {0};
    size_t *order = NULL, *tmp = NULL, i;
    const json_t *d;

    json_array_foreach(docs, i, d)
    {
        if (query_match(p->filter, d))
            qpath_visit(&p->distinct_path, d, distinct_visit, &l);
        if (l.failed)
            goto oom;
    }
    order = malloc((l.n ? l.n : 1) * sizeof(*order));
    tmp = malloc((l.n ? l.n : 1) * sizeof(*tmp));
    if (order == NULL || tmp == NULL)
        goto oom;
    for (i = 0; i < l.n; i++)
        order[i] = i;
    qmerge_sort(order, tmp, l.n, value_idx_cmp, &l);
    for (i = 0; i < l.n; i++) {
        const json_t *v = l.v[order[i]];
        if (i > 0 && qjson_equal(v, l.v[order[i - 1]]))
            continue;
        if (stat_rows_push(rows, json_incref((json_t *)v)) != 0)
            goto oom;
    }
    goto done;
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    free(l.v);
    free(order);
    free(tmp);
    return rc;
}

/* ---- entry point --------------------------------------------------------- */

rd_status query_stat(const json_t *stat_query, const query_schema *schema, const json_t *docs,
                     json_t **out, rd_error *err)
{
    rd_status rc;
    stat_plan plan = {0};
    rowset rows = {0};
    json_t *results = NULL;
    const stage *last_group = NULL;
    size_t from, to, i;
    const json_t *d;

    *out = NULL;
    rc = stat_plan_compile(stat_query, schema, &plan, err);
    if (rc != RD_OK)
        goto done;
    if (!json_is_array(docs)) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Internal error.");
        goto done;
    }
    if (plan.distinct) {
        rc = run_distinct(&plan, docs, &rows, err);
    } else {
        json_array_foreach(docs, i, d)
        {
            if (query_match(plan.filter, d) &&
                stat_rows_push(&rows, json_incref((json_t *)d)) != 0) {
                rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
                break;
            }
        }
        for (i = 0; i < plan.nstages && rc == RD_OK; i++)
            rc = stat_run_stage(&plan.stages[i], &last_group, &rows, err);
    }
    if (rc != RD_OK)
        goto done;
    /* Results never share structure with the (borrowed) input documents. */
    results = json_array();
    if (results == NULL)
        goto oom;
    qpage_slice(&plan.page, rows.n, &from, &to);
    for (i = from; i < to; i++)
        if (json_array_append_new(results, json_deep_copy(rows.v[i])) != 0)
            goto oom;
    *out = json_pack("{s:O}", "results", results);
    if (*out == NULL)
        goto oom;
    if (plan.page.given &&
        json_object_set_new(*out, "total_count", json_integer((json_int_t)rows.n)))
        goto oom;
    goto done;
oom:
    json_decref(*out);
    *out = NULL;
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    json_decref(results);
    stat_rows_clear(&rows);
    stat_plan_free(&plan);
    return rc;
}
