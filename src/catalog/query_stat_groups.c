/*
 * query_stat_groups.c - statistics answered from group counts: a caller that
 * keeps its own indexes (the read model) recognises a StatisticsQuery whose
 * first aggregate stage groups by one top-level key and only counts, counts
 * the groups itself, and has the rest of the pipeline and the page run here,
 * so the answer is exactly query_stat's (contract in include/query.h).
 */
#include "stat-internal.h"

#include <stdlib.h>
#include <string.h>

struct query_stat_groups {
    stat_plan plan;
};

void query_stat_groups_free(query_stat_groups *g)
{
    if (g == NULL)
        return;
    stat_plan_free(&g->plan);
    free(g);
}

/* 1 when stage s is a group on one top-level key (no date_format) whose
 * fields all count. */
static int group_count_stage(const stage *s)
{
    if (s->kind != ST_GROUP || s->nkeys != 1 || s->keys[0].date_format != NULL ||
        s->keys[0].path.nparts != 1)
        return 0;
    for (size_t f = 0; f < s->nitems; f++)
        if (s->items[f].op != ACC_COUNT)
            return 0;
    return 1;
}

rd_status query_stat_groups_compile(const json_t *stat_query, const query_schema *schema,
                                    query_stat_groups **out, rd_error *err)
{
    query_stat_groups *g = calloc(1, sizeof(*g));
    rd_status rc;
    *out = NULL;
    if (g == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    rc = stat_plan_compile(stat_query, schema, &g->plan, err);
    if (rc == RD_OK && !g->plan.distinct && g->plan.nstages > 0 &&
        group_count_stage(&g->plan.stages[0])) {
        *out = g;
        g = NULL;
    }
    query_stat_groups_free(g);
    return rc;
}

const query *query_stat_groups_filter(const query_stat_groups *g)
{
    return g->plan.filter;
}

const char *query_stat_groups_key(const query_stat_groups *g)
{
    return g->plan.stages[0].keys[0].path.text;
}

rd_status query_stat_groups_finish(const query_stat_groups *g, const json_t *const *values,
                                   const size_t *counts, size_t n, json_t **out, rd_error *err)
{
    const stage *s = &g->plan.stages[0], *last_group = s;
    rowset rows = {0};
    json_t *results = NULL;
    size_t from, to;
    rd_status rc = RD_OK;

    *out = NULL;
    for (size_t i = 0; i < n; i++) { /* the rows the group stage would make */
        json_t *row = json_object();
        if (row == NULL)
            goto oom;
        if (values[i] != NULL)
            json_object_set(row, s->keys[0].name, (json_t *)values[i]);
        for (size_t f = 0; f < s->nitems; f++)
            json_object_set_new(row, s->items[f].name, json_integer((json_int_t)counts[i]));
        if (stat_rows_push(&rows, row) != 0)
            goto oom;
    }
    for (size_t i = 1; i < g->plan.nstages && rc == RD_OK; i++)
        rc = stat_run_stage(&g->plan.stages[i], &last_group, &rows, err);
    if (rc != RD_OK)
        goto done;
    /* as query_stat: page, and copies that share nothing with the input */
    results = json_array();
    if (results == NULL)
        goto oom;
    qpage_slice(&g->plan.page, rows.n, &from, &to);
    for (size_t i = from; i < to; i++)
        if (json_array_append_new(results, json_deep_copy(rows.v[i])) != 0)
            goto oom;
    *out = json_pack("{s:O}", "results", results);
    if (*out == NULL)
        goto oom;
    if (g->plan.page.given &&
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
    return rc;
}
