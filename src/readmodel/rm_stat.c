/*
 * rm_stat.c - statistics over a read model without decoding documents: a
 * StatisticsQuery that groups by one kept key and counts
 * (query_stat_groups_compile) is answered from the matches (postings,
 * trigrams, compact values) by counting each value in default order; the
 * rest of the pipeline runs in the engine (query_stat_groups_finish).
 */
#include "rm-internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    json_t **values; /* new references; NULL = missing */
    size_t *counts;
    size_t n, cap;
    rm_map strings; /* string bytes -> group + 1 */
    size_t missing; /* group + 1 of the missing value, 0 = none yet */
    size_t null;    /* group + 1 of null */
    /* strings seen, by address, and their group + 1: shared values repeat
     * as the same pointer */
    const json_t *seen[64];
    size_t seen_at[64];
} groups;

static void groups_free(groups *g)
{
    for (size_t i = 0; i < g->n; i++)
        json_decref(g->values[i]);
    free(g->values);
    free(g->counts);
    rm_map_free(&g->strings, NULL);
}

/* Adds a group for v (borrowed); its index + 1 in *at; -1 on OOM. */
static int group_new(groups *g, const json_t *v, size_t *at)
{
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 16;
        json_t **nv = realloc(g->values, ncap * sizeof(*nv));
        size_t *nc;
        if (nv == NULL)
            return -1;
        g->values = nv;
        nc = realloc(g->counts, ncap * sizeof(*nc));
        if (nc == NULL)
            return -1;
        g->counts = nc;
        g->cap = ncap;
    }
    g->values[g->n] = json_incref((json_t *)v);
    g->counts[g->n] = 0;
    *at = ++g->n;
    return 0;
}

/* Counts v into its group: 1 done, 0 a value this cannot group (numbers,
 * arrays, ...: the caller falls back), -1 on OOM. */
static int group_count(groups *g, const json_t *v)
{
    size_t at = 0, h = ((uintptr_t)v >> 4) & 63;
    if (v == NULL || json_is_null(v)) {
        size_t *slot = v == NULL ? &g->missing : &g->null;
        if (*slot == 0 && group_new(g, v, slot) != 0)
            return -1;
        at = *slot;
    } else if (v == g->seen[h]) {
        at = g->seen_at[h];
    } else if (json_is_string(v)) {
        void *p = rm_map_get(&g->strings, json_string_value(v), json_string_length(v));
        at = (size_t)(uintptr_t)p;
        if (at == 0 && (group_new(g, v, &at) != 0 ||
                        rm_map_put(&g->strings, json_string_value(v), json_string_length(v),
                                   (void *)(uintptr_t)at) != 0))
            return -1;
        g->seen[h] = v;
        g->seen_at[h] = at;
    } else {
        return 0;
    }
    g->counts[at - 1]++;
    return 1;
}

/* Counts the matches (ascending slots) per value of eq field f from its
 * postings, and orders the groups by first appearance from the default
 * order, reading compact arrays only.  0 when some match holds no string
 * there (or the field holds arrays): the caller counts document by
 * document; 1 done; -1 on OOM. */
static int count_from_postings(const rm_state *st, size_t f, const rm_ids *matched, groups *g)
{
    const rm_map *m = &st->eq[f];
    unsigned char *mark = calloc(st->nslots ? st->nslots : 1, 1);
    uint32_t *gid = calloc(st->nslots ? st->nslots : 1, sizeof(*gid));
    const rm_mapent **vals = calloc(m->count ? m->count : 1, sizeof(*vals));
    size_t *cnt = calloc(m->count ? m->count : 1, sizeof(*cnt));
    size_t nvals = 0, total = 0, placed = 0;
    int rc = -1;
    if (mark == NULL || gid == NULL || vals == NULL || cnt == NULL)
        goto done;
    rc = 0;
    if (st->eqarr[f].n > 0)
        goto done;
    for (size_t i = 0; i < matched->n; i++)
        mark[matched->v[i]] = 1;
    for (size_t e = 0; e < m->cap; e++) {
        const rm_ids *p = m->e[e].val;
        if (m->e[e].key == NULL)
            continue;
        for (size_t i = 0; i < p->n; i++)
            if (mark[p->v[i]]) {
                gid[p->v[i]] = (uint32_t)nvals + 1;
                cnt[nvals]++;
            }
        if (cnt[nvals] > 0)
            vals[nvals++] = &m->e[e];
    }
    for (size_t i = 0; i < nvals; i++)
        total += cnt[i];
    if (total != matched->n)
        goto done; /* missing, null or other values: counted one by one */
    rc = -1;
    for (size_t i = 0; i < st->dorder.n && placed < nvals; i++) {
        uint32_t s = st->dorder.v[i], gi = gid[s];
        size_t at;
        json_t *v;
        if (!mark[s] || gi == 0 || vals[gi - 1] == NULL)
            continue;
        v = json_stringn_nocheck(vals[gi - 1]->key, vals[gi - 1]->len);
        if (v == NULL || group_new(g, v, &at) != 0) {
            json_decref(v);
            goto done;
        }
        json_decref(v);
        g->counts[at - 1] = cnt[gi - 1];
        vals[gi - 1] = NULL; /* placed */
        placed++;
    }
    rc = 1;
done:
    free(mark);
    free(gid);
    free(vals);
    free(cnt);
    return rc;
}

rd_status readmodel_stat(readmodel *rm, const json_t *stat_query, const char *const *domains,
                         size_t ndomains, json_t **out, rd_error *err)
{
    query_schema schema = resource_query_schema(rm->res);
    query_stat_groups *plan = NULL;
    rm_ids ordered = {0};
    size_t tested = 0;
    groups g = {0};
    size_t k = SIZE_MAX;
    int applicable = 1, done_postings = 0;
    rd_status rc;

    *out = NULL;
    rc = query_stat_groups_compile(stat_query, &schema, &plan, err);
    if (rc != RD_OK || plan == NULL)
        goto done;
    for (size_t i = 0; i < rm->lay.nkeys && k == SIZE_MAX; i++)
        if (strcmp(rm->lay.keys[i], query_stat_groups_key(plan)) == 0)
            k = i;
    if (k == SIZE_MAX)
        goto done; /* not a kept key */
    /* the matches in default order (the input order query_stat sees),
     * counted under the read lock: no document is referenced or decoded */
    pthread_rwlock_rdlock(&rm->lock);
    for (size_t f = 0; f < rm->st->neq && done_postings == 0; f++) {
        if (rm->lay.eq[f] != k)
            continue;
        if (rm_match_slots(rm->st, query_stat_groups_filter(plan), domains, ndomains, &ordered,
                           &tested) != 0)
            done_postings = -1;
        else
            done_postings = count_from_postings(rm->st, f, &ordered, &g);
        free(ordered.v);
        memset(&ordered, 0, sizeof(ordered));
    }
    if (done_postings < 0)
        applicable = -1;
    else if (done_postings == 0 && rm_matches_in_order(rm->st, query_stat_groups_filter(plan),
                                                       domains, ndomains, &ordered, &tested) != 0)
        applicable = -1;
    for (size_t i = 0; done_postings == 0 && i < ordered.n && applicable > 0; i++)
        applicable = group_count(&g, rm_val(rm->st->slot[ordered.v[i]], k));
    pthread_rwlock_unlock(&rm->lock);
    if (applicable < 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    if (applicable)
        rc = query_stat_groups_finish(plan, (const json_t *const *)g.values, g.counts, g.n, out,
                                      err);
done:
    free(ordered.v);
    groups_free(&g);
    query_stat_groups_free(plan);
    return rc;
}
