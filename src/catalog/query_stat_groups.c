/*
 * query_stat_groups.c - statistics answered from group counts: a caller that
 * keeps its own indexes (the read model) recognises a StatisticsQuery whose
 * first aggregate stage groups by plain keys and only counts, counts the
 * groups itself into a tally (several tiers may add to one tally), and has
 * the rest of the pipeline and the page run here, so the answer is exactly
 * query_stat's (contract in include/query.h).
 */
#include "stat-internal.h"

#include <stdlib.h>
#include <string.h>

struct query_stat_groups {
    stat_plan plan;
};

struct query_stat_tally {
    size_t nkeys;
    json_t **keys; /* n * nkeys copies, NULL = missing */
    size_t *counts;
    size_t n, cap;
    qhash index;
};

void query_stat_groups_free(query_stat_groups *g)
{
    if (g == NULL)
        return;
    stat_plan_free(&g->plan);
    free(g);
}

/* 1 when stage s is a group on one or more keys (no date_format) whose
 * fields all count. */
static int group_count_stage(const stage *s)
{
    if (s->kind != ST_GROUP || s->nkeys == 0)
        return 0;
    for (size_t k = 0; k < s->nkeys; k++)
        if (s->keys[k].date_format != NULL)
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

size_t query_stat_groups_nkeys(const query_stat_groups *g)
{
    return g->plan.stages[0].nkeys;
}

const char *query_stat_groups_key(const query_stat_groups *g, size_t i)
{
    return g->plan.stages[0].keys[i].path.text;
}

/* ---- the tally ------------------------------------------------------------ */

query_stat_tally *query_stat_tally_new(const query_stat_groups *g)
{
    query_stat_tally *t = calloc(1, sizeof(*t));
    if (t != NULL)
        t->nkeys = query_stat_groups_nkeys(g);
    return t;
}

void query_stat_tally_free(query_stat_tally *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n * t->nkeys; i++)
        json_decref(t->keys[i]);
    free(t->keys);
    free(t->counts);
    qhash_free(&t->index);
    free(t);
}

size_t query_stat_tally_groups(const query_stat_tally *t)
{
    return t->n;
}

typedef struct {
    const query_stat_tally *t;
    const json_t *const *probe;
} tally_eq_ctx;

static int tally_eq(size_t idx, const void *vctx)
{
    const tally_eq_ctx *c = vctx;
    json_t *const *keys = c->t->keys + idx * c->t->nkeys;
    for (size_t i = 0; i < c->t->nkeys; i++) {
        const json_t *a = keys[i], *b = c->probe[i];
        if ((a == NULL) != (b == NULL))
            return 0;
        if (a != NULL && !qjson_equal(a, b))
            return 0;
    }
    return 1;
}

/* As the group stage hashes its keys (stat_group.c). */
static uint64_t tally_hash(const json_t *const *keys, size_t n)
{
    uint64_t h = 0x67726f7570ULL;
    for (size_t i = 0; i < n; i++) {
        h = h * 0x100000001b3ULL + (keys[i] != NULL ? qjson_hash(keys[i]) : 0x6d697373ULL);
        h ^= h >> 29;
    }
    return h;
}

int query_stat_tally_add(query_stat_tally *t, const json_t *const *values, size_t count)
{
    uint64_t h = tally_hash(values, t->nkeys);
    tally_eq_ctx ctx = {t, values};
    size_t gi = qhash_find(&t->index, h, tally_eq, &ctx);
    if (gi != SIZE_MAX) {
        t->counts[gi] += count;
        return 0;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        json_t **nk = realloc(t->keys, ncap * (t->nkeys ? t->nkeys : 1) * sizeof(*nk));
        size_t *nc;
        if (nk == NULL)
            return -1;
        t->keys = nk;
        nc = realloc(t->counts, ncap * sizeof(*nc));
        if (nc == NULL)
            return -1;
        t->counts = nc;
        t->cap = ncap;
    }
    /* copies: the tally shares nothing with the caller's documents */
    for (size_t i = 0; i < t->nkeys; i++) {
        json_t *c = NULL;
        if (values[i] != NULL && (c = json_deep_copy(values[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                json_decref(t->keys[t->n * t->nkeys + j]);
            return -1;
        }
        t->keys[t->n * t->nkeys + i] = c;
    }
    t->counts[t->n] = count;
    if (qhash_insert(&t->index, h, t->n) != 0) {
        for (size_t i = 0; i < t->nkeys; i++)
            json_decref(t->keys[t->n * t->nkeys + i]);
        return -1;
    }
    t->n++;
    return 0;
}

/* ---- the rest of the pipeline ------------------------------------------- */

rd_status query_stat_groups_finish(const query_stat_groups *g, const query_stat_tally *t,
                                   json_t **out, rd_error *err)
{
    const stage *s = &g->plan.stages[0], *last_group = s;
    rowset rows = {0};
    json_t *results = NULL;
    size_t from, to;
    rd_status rc = RD_OK;

    *out = NULL;
    for (size_t i = 0; i < t->n; i++) { /* the rows the group stage would make */
        json_t *row = json_object();
        if (row == NULL)
            goto oom;
        for (size_t k = 0; k < s->nkeys; k++)
            if (t->keys[i * t->nkeys + k] != NULL)
                json_object_set(row, s->keys[k].name, t->keys[i * t->nkeys + k]);
        for (size_t f = 0; f < s->nitems; f++)
            json_object_set_new(row, s->items[f].name, json_integer((json_int_t)t->counts[i]));
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
