/*
 * rm_stat.c - statistics over a read model without decoding documents: a
 * StatisticsQuery that groups by plain keys and counts
 * (query_stat_groups_compile), each key a kept key or a path under one (a
 * shared object such as repository_info), is answered from the matches
 * (postings, trigrams, compact values) by counting each tuple of values in
 * default order; the rest of the pipeline runs in the engine
 * (query_stat_groups_finish).
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

/* The group of v: *at its index + 1; 1 done, 0 a value this cannot group
 * (numbers, arrays, ...: the caller falls back), -1 on OOM. */
static int group_id(groups *g, const json_t *v, size_t *at)
{
    size_t h = ((uintptr_t)v >> 4) & 63;
    *at = 0;
    if (v == NULL || json_is_null(v)) {
        size_t *slot = v == NULL ? &g->missing : &g->null;
        if (*slot == 0 && group_new(g, v, slot) != 0)
            return -1;
        *at = *slot;
    } else if (v == g->seen[h]) {
        *at = g->seen_at[h];
    } else if (json_is_string(v)) {
        void *p = rm_map_get(&g->strings, json_string_value(v), json_string_length(v));
        *at = (size_t)(uintptr_t)p;
        if (*at == 0 && (group_new(g, v, at) != 0 ||
                         rm_map_put(&g->strings, json_string_value(v), json_string_length(v),
                                    (void *)(uintptr_t)*at) != 0))
            return -1;
        g->seen[h] = v;
        g->seen_at[h] = *at;
    } else {
        return 0;
    }
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

/* ---- several keys, and keys under a kept object ------------------------- */

/* One group key as the model reads it: kept key k, and the path under its
 * value (NULL = the value itself). */
typedef struct {
    size_t k;
    const char *rest;
    groups g;
    const json_t *last_obj, *last_val; /* rest: the last object looked up */
} key_reader;

/* The value of key r in d, as query_lookup finds it in the view: 1 and *v
 * (NULL = missing), or 0 when the lookup would make a new value (a path
 * through an array): the caller declines. */
static int key_value(key_reader *r, const readmodel_doc *d, const json_t **v)
{
    const json_t *kv = rm_val(d, r->k);
    json_t *owned = NULL;
    *v = kv;
    if (r->rest == NULL)
        return 1;
    if (json_is_array(kv))
        return 0;
    if (!json_is_object(kv)) { /* missing, or a scalar: nothing under it */
        *v = NULL;
        return 1;
    }
    if (kv != r->last_obj) { /* shared objects repeat as the same pointer */
        r->last_val = query_lookup(kv, r->rest, &owned);
        if (owned != NULL) {
            json_decref(owned);
            return 0;
        }
        r->last_obj = kv;
    }
    *v = r->last_val;
    return 1;
}

/* The tuples of group ids seen, in order of first appearance. */
typedef struct {
    rm_map index; /* ids bytes -> tuple + 1 */
    uint32_t *ids;
    size_t *counts;
    size_t n, cap, nkeys;
} tuples;

static void tuples_free(tuples *t)
{
    rm_map_free(&t->index, NULL);
    free(t->ids);
    free(t->counts);
}

/* The count of the tuple of key groups ids (made at 0 when new); NULL on
 * OOM.  Valid until the next call. */
static size_t *tuple_count(tuples *t, const uint32_t *ids)
{
    size_t len = t->nkeys * sizeof(*ids);
    size_t at = (size_t)(uintptr_t)rm_map_get(&t->index, (const char *)ids, len);
    if (at == 0) {
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 16;
            uint32_t *ni = realloc(t->ids, ncap * t->nkeys * sizeof(*ni));
            size_t *nc;
            if (ni == NULL)
                return NULL;
            t->ids = ni;
            nc = realloc(t->counts, ncap * sizeof(*nc));
            if (nc == NULL)
                return NULL;
            t->counts = nc;
            t->cap = ncap;
        }
        memcpy(t->ids + t->n * t->nkeys, ids, len);
        t->counts[t->n] = 0;
        at = ++t->n;
        if (rm_map_put(&t->index, (const char *)ids, len, (void *)(uintptr_t)at) != 0)
            return NULL;
    }
    return &t->counts[at - 1];
}

/* Counts the ordered matches per tuple of key values: 1 done, 0 some value
 * cannot be grouped here, -1 on OOM. */
static int count_tuples(const rm_state *st, const rm_ids *ordered, key_reader *keys, size_t nkeys,
                        tuples *t)
{
    uint32_t ids[16];
    const json_t *prev[16] = {0}; /* the kept values of the last document counted */
    size_t *last = NULL;          /* where it was counted */
    for (size_t i = 0; i < ordered->n; i++) {
        const readmodel_doc *d = st->slot[ordered->v[i]];
        int same = last != NULL;
        for (size_t k = 0; k < nkeys; k++) {
            const json_t *p = rm_val(d, keys[k].k);
            same &= p == prev[k];
            prev[k] = p;
        }
        if (same) { /* the same kept values (shared): the same group */
            (*last)++;
            continue;
        }
        for (size_t k = 0; k < nkeys; k++) {
            const json_t *v;
            size_t at;
            int r = key_value(&keys[k], d, &v);
            if (r > 0)
                r = group_id(&keys[k].g, v, &at);
            if (r <= 0)
                return r;
            ids[k] = (uint32_t)at;
        }
        if (nkeys == 1)
            last = &keys[0].g.counts[ids[0] - 1];
        else if ((last = tuple_count(t, ids)) == NULL)
            return -1;
        (*last)++;
    }
    return 1;
}

/* The readers of plan's keys in rm; 0 when some key is not under a kept
 * key (or there are too many keys). */
static int readers_init(const readmodel *rm, const query_stat_groups *plan, key_reader *keys,
                        size_t nkeys)
{
    if (nkeys > 16)
        return 0;
    for (size_t i = 0; i < nkeys; i++) {
        const char *path = query_stat_groups_key(plan, i);
        size_t len = strcspn(path, ".");
        keys[i].k = SIZE_MAX;
        keys[i].rest = path[len] == '.' ? path + len + 1 : NULL;
        for (size_t k = 0; k < rm->lay.nkeys && keys[i].k == SIZE_MAX; k++)
            if (strncmp(rm->lay.keys[k], path, len) == 0 && rm->lay.keys[k][len] == '\0')
                keys[i].k = k;
        if (keys[i].k == SIZE_MAX)
            return 0;
    }
    return 1;
}

/* Adds what was counted to tally, in order of first appearance; -1 on OOM. */
static int tally_counted(query_stat_tally *tally, const key_reader *keys, size_t nkeys,
                         const tuples *t)
{
    const json_t *vals[16];
    if (nkeys == 1) {
        for (size_t i = 0; i < keys[0].g.n; i++) {
            vals[0] = keys[0].g.values[i];
            if (query_stat_tally_add(tally, vals, keys[0].g.counts[i]) != 0)
                return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < t->n; i++) {
        for (size_t k = 0; k < nkeys; k++)
            vals[k] = keys[k].g.values[t->ids[i * nkeys + k] - 1];
        if (query_stat_tally_add(tally, vals, t->counts[i]) != 0)
            return -1;
    }
    return 0;
}

rd_status readmodel_stat_tally(readmodel *rm, const query_stat_groups *plan,
                               const char *const *domains, size_t ndomains, query_stat_tally *tally,
                               int *counted, rd_error *err)
{
    size_t nkeys = query_stat_groups_nkeys(plan), tested = 0;
    key_reader keys[16];
    tuples t = {0};
    rm_ids ordered = {0};
    int applicable, done_postings = 0;
    rd_status rc = RD_OK;

    *counted = 0;
    memset(keys, 0, sizeof(keys));
    t.nkeys = nkeys;
    if (!readers_init(rm, plan, keys, nkeys))
        goto done; /* not under kept keys */
    /* the matches in default order (the input order query_stat sees),
     * counted under the read lock: no document is referenced or decoded */
    pthread_rwlock_rdlock(&rm->lock);
    for (size_t f = 0; nkeys == 1 && keys[0].rest == NULL && f < rm->st->neq && done_postings == 0;
         f++) {
        if (rm->lay.eq[f] != keys[0].k)
            continue;
        if (rm_match_slots(rm->st, query_stat_groups_filter(plan), domains, ndomains, &ordered,
                           &tested) != 0)
            done_postings = -1;
        else
            done_postings = count_from_postings(rm->st, f, &ordered, &keys[0].g);
        free(ordered.v);
        memset(&ordered, 0, sizeof(ordered));
    }
    if (done_postings != 0)
        applicable = done_postings;
    else if (rm_matches_in_order(rm->st, query_stat_groups_filter(plan), domains, ndomains,
                                 &ordered, &tested) != 0)
        applicable = -1;
    else
        applicable = count_tuples(rm->st, &ordered, keys, nkeys, &t);
    pthread_rwlock_unlock(&rm->lock);
    if (applicable > 0 && tally_counted(tally, keys, nkeys, &t) != 0)
        applicable = -1;
    if (applicable < 0)
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    else
        *counted = applicable;
done:
    free(ordered.v);
    tuples_free(&t);
    for (size_t i = 0; i < nkeys && i < 16; i++)
        groups_free(&keys[i].g);
    return rc;
}

rd_status readmodel_stat(readmodel *rm, const json_t *stat_query, const char *const *domains,
                         size_t ndomains, json_t **out, rd_error *err)
{
    query_schema schema = resource_query_schema(rm->res);
    query_stat_groups *plan = NULL;
    query_stat_tally *tally = NULL;
    int counted = 0;
    rd_status rc;

    *out = NULL;
    rc = query_stat_groups_compile(stat_query, &schema, &plan, err);
    if (rc != RD_OK || plan == NULL)
        goto done;
    tally = query_stat_tally_new(plan);
    if (tally == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    rc = readmodel_stat_tally(rm, plan, domains, ndomains, tally, &counted, err);
    if (rc == RD_OK && counted)
        rc = query_stat_groups_finish(plan, tally, out, err);
done:
    query_stat_tally_free(tally);
    query_stat_groups_free(plan);
    return rc;
}
