/*
 * stat_group.c - the aggregate group stage: rows are grouped by their key
 * values (hashed, in order of first appearance) and each group folds its
 * rows into the accumulators (count, sum, average, max, min, first, last,
 * push, add_to_set) of the stage's fields.
 */
#include "stat-internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t count; /* count, average */
    int64_t isum;
    double dsum;
    int real; /* sum: the result is a real */
    int seen; /* first */
    json_t *value;
    qhash set; /* add_to_set */
} acc;

typedef struct {
    json_t **keys; /* nkeys values; NULL = missing (owned) */
    acc *accs;
} group;

typedef struct {
    const group *groups;
    json_t *const *probe;
    size_t nkeys;
} group_eq_ctx;

static int group_eq(size_t idx, const void *vctx)
{
    const group_eq_ctx *c = vctx;
    const group *g = &c->groups[idx];
    for (size_t i = 0; i < c->nkeys; i++) {
        const json_t *a = g->keys[i], *b = c->probe[i];
        if ((a == NULL) != (b == NULL))
            return 0;
        if (a != NULL && !qjson_equal(a, b))
            return 0;
    }
    return 1;
}

typedef struct {
    const json_t *arr;
    const json_t *v;
} set_eq_ctx;

static int set_eq(size_t idx, const void *vctx)
{
    const set_eq_ctx *c = vctx;
    return qjson_equal(json_array_get(c->arr, idx), c->v);
}

static void group_free(group *g, const stage *s)
{
    for (size_t i = 0; i < s->nkeys && g->keys != NULL; i++)
        json_decref(g->keys[i]);
    for (size_t i = 0; i < s->nitems && g->accs != NULL; i++) {
        json_decref(g->accs[i].value);
        qhash_free(&g->accs[i].set);
    }
    free(g->keys);
    free(g->accs);
}

/* The group key value of row for key item k: a new reference, NULL = missing. */
static json_t *group_key_value(const json_t *row, const stage_item *k)
{
    json_t *owned, *v = query_lookup(row, k->path.text, &owned);
    int64_t ms;
    if (k->date_format == NULL)
        return owned != NULL ? owned : json_incref(v);
    if (json_is_string(v) && query_parse_datetime(json_string_value(v), &ms) == 0) {
        char buf[DATE_FORMAT_MAX * 6 + 16];
        stat_format_date(ms, k->date_format, buf, sizeof(buf));
        json_decref(owned);
        return json_string(buf);
    }
    json_decref(owned);
    return json_null();
}

static int acc_init(acc *a, acc_op op)
{
    memset(a, 0, sizeof(*a));
    if (op == ACC_PUSH || op == ACC_ADD_TO_SET) {
        a->value = json_array();
        return a->value != NULL ? 0 : -1;
    }
    return 0;
}

/* Folds one row into a; -1 on allocation failure. */
static int acc_update(acc *a, const stage_item *f, const json_t *row)
{
    json_t *owned = NULL, *v = NULL;
    int rc = 0;
    if (f->has_key)
        v = query_lookup(row, f->path.text, &owned);
    switch (f->op) {
    case ACC_COUNT:
        a->count++;
        break;
    case ACC_SUM:
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            int64_t before = a->isum;
            if (__builtin_add_overflow(before, (int64_t)x, &a->isum)) {
                a->dsum += (double)before + (double)x;
                a->isum = 0;
                a->real = 1;
            }
        } else if (json_is_real(v)) {
            a->dsum += json_real_value(v);
            a->real = 1;
        }
        break;
    case ACC_AVG:
        if (json_is_number(v)) {
            a->dsum += json_number_value(v);
            a->count++;
        }
        break;
    case ACC_MAX:
    case ACC_MIN:
        if (v != NULL && !json_is_null(v)) {
            int r = a->value == NULL ? 0 : qjson_cmp(v, a->value);
            if (a->value == NULL || (f->op == ACC_MAX ? r > 0 : r < 0)) {
                json_decref(a->value);
                a->value = json_incref(v);
            }
        }
        break;
    case ACC_FIRST:
    case ACC_LAST:
        if (f->op == ACC_LAST || !a->seen) {
            json_decref(a->value);
            a->value = v != NULL ? json_incref(v) : json_null();
            a->seen = 1;
        }
        break;
    case ACC_PUSH:
        if (v != NULL)
            rc = json_array_append(a->value, v);
        break;
    case ACC_ADD_TO_SET:
        if (v != NULL) {
            uint64_t h = qjson_hash(v);
            set_eq_ctx ctx = {a->value, v};
            if (qhash_find(&a->set, h, set_eq, &ctx) == SIZE_MAX) {
                rc = json_array_append(a->value, v);
                if (rc == 0)
                    rc = qhash_insert(&a->set, h, json_array_size(a->value) - 1);
            }
        }
        break;
    }
    json_decref(owned);
    return rc;
}

static json_t *acc_result(const acc *a, acc_op op)
{
    switch (op) {
    case ACC_COUNT:
        return json_integer(a->count);
    case ACC_SUM:
        return a->real ? json_real(a->dsum + (double)a->isum) : json_integer(a->isum);
    case ACC_AVG:
        return a->count > 0 ? json_real(a->dsum / (double)a->count) : json_null();
    default:
        return a->value != NULL ? json_incref(a->value) : json_null();
    }
}

static uint64_t key_hash(json_t *const *keys, size_t n)
{
    uint64_t h = 0x67726f7570ULL;
    for (size_t i = 0; i < n; i++) {
        h = h * 0x100000001b3ULL + (keys[i] != NULL ? qjson_hash(keys[i]) : 0x6d697373ULL);
        h ^= h >> 29;
    }
    return h;
}

rd_status stat_run_group(const stage *s, rowset *rows, rd_error *err)
{
    rd_status rc = RD_OK;
    group *groups = NULL;
    size_t ngroups = 0, cap = 0;
    qhash index = {0};
    json_t **probe = NULL;
    rowset out = {0};

    probe = calloc(s->nkeys + 1, sizeof(*probe));
    if (probe == NULL)
        goto oom;
    for (size_t r = 0; r < rows->n; r++) {
        const json_t *row = rows->v[r];
        uint64_t h;
        size_t gi;
        for (size_t k = 0; k < s->nkeys; k++)
            probe[k] = group_key_value(row, &s->keys[k]);
        h = key_hash(probe, s->nkeys);
        group_eq_ctx ctx = {groups, probe, s->nkeys};
        gi = qhash_find(&index, h, group_eq, &ctx);
        if (gi == SIZE_MAX) {
            group *g;
            if (ngroups == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                group *grown = realloc(groups, ncap * sizeof(*grown));
                if (grown == NULL)
                    goto oom_probe;
                groups = grown;
                cap = ncap;
            }
            g = &groups[ngroups];
            g->keys = calloc(s->nkeys + 1, sizeof(*g->keys));
            g->accs = calloc(s->nitems + 1, sizeof(*g->accs));
            ngroups++;
            if (g->keys == NULL || g->accs == NULL)
                goto oom_probe;
            for (size_t f = 0; f < s->nitems; f++)
                if (acc_init(&g->accs[f], s->items[f].op) != 0)
                    goto oom_probe;
            if (qhash_insert(&index, h, ngroups - 1) != 0)
                goto oom_probe;
            if (s->nkeys > 0) { /* a group by no key has no key buffers */
                memcpy(g->keys, probe, s->nkeys * sizeof(*probe));
                memset(probe, 0, s->nkeys * sizeof(*probe));
            }
            gi = ngroups - 1;
        } else {
            for (size_t k = 0; k < s->nkeys; k++) {
                json_decref(probe[k]);
                probe[k] = NULL;
            }
        }
        for (size_t f = 0; f < s->nitems; f++)
            if (acc_update(&groups[gi].accs[f], &s->items[f], row) != 0)
                goto oom;
    }
    for (size_t gi = 0; gi < ngroups; gi++) {
        json_t *row = json_object();
        if (row == NULL)
            goto oom;
        for (size_t k = 0; k < s->nkeys; k++)
            if (groups[gi].keys[k] != NULL)
                json_object_set(row, s->keys[k].name, groups[gi].keys[k]);
        for (size_t f = 0; f < s->nitems; f++)
            json_object_set_new(row, s->items[f].name,
                                acc_result(&groups[gi].accs[f], s->items[f].op));
        if (stat_rows_push(&out, row) != 0)
            goto oom;
    }
    stat_rows_replace(rows, &out);
    goto done;
oom_probe:
    for (size_t k = 0; k < s->nkeys; k++) {
        json_decref(probe[k]);
        probe[k] = NULL;
    }
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    for (size_t gi = 0; gi < ngroups; gi++)
        group_free(&groups[gi], s);
    free(groups);
    free(probe);
    qhash_free(&index);
    stat_rows_clear(&out);
    return rc;
}
