/*
 * merged_read.c - a list over the local tier and the remote tiers' read
 * models (include/merged_read.h); the stat is merged_stat.c.
 */
#include "merged_read.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "readmodel.h"
#include "remote_models.h"

/* ---- the pieces ------------------------------------------------------------ */

rd_status merged_tier_query(const json_t *query_obj, const json_t *eq, const query_schema *schema,
                            const query *q, query **out, rd_error *err)
{
    json_t *tq = json_object();
    size_t from = 0, to = 0;
    rd_status rc;
    if (tq == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (json_is_object(query_obj)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)query_obj, k, v)
        {
            if (strcmp(k, "page") != 0 && strcmp(k, "only") != 0 && strcmp(k, "minimal") != 0)
                json_object_set(tq, k, v);
        }
    }
    query_page_window(q, SIZE_MAX, &from, &to);
    if (to < SIZE_MAX && to <= (size_t)INT64_MAX)
        json_object_set_new(
            tq, "page",
            json_pack("{s:i, s:I}", "start", 1, "limit", (json_int_t)(to > 0 ? to : 1)));
    rc = query_compile(tq, eq, schema, out, err);
    json_decref(tq);
    return rc;
}

rd_status merged_combine(const query *q, const merged_part *parts, size_t n, json_t **out,
                         rd_error *err)
{
    const json_t **all = NULL;
    size_t *order = NULL;
    size_t total = 0, count = 0, from = 0, to = 0, k = 0;
    json_t *results = json_array();
    rd_status rc = RD_OK;
    const char *key;
    int desc;

    for (size_t i = 0; i < n; i++) {
        total += parts[i].total;
        count += parts[i].n;
    }
    if (results == NULL)
        goto oom;
    if (query_is_count_only(q) || count == 0)
        goto answer;
    all = malloc(count * sizeof(*all));
    order = malloc(count * sizeof(*order));
    if (all == NULL || order == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < parts[i].n; j++)
            all[k++] = parts[i].docs[j];
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    /* each tier is sorted already: a stable sort of the concatenation */
    if (n > 1 && query_sort_key(q, 0, &key, &desc)) {
        rc = query_sort(q, (const json_t *const *)all, order, count, err);
        if (rc != RD_OK)
            goto done;
    }
    query_page_window(q, total, &from, &to);
    if (to > count)
        to = count;
    for (size_t i = from; i < to; i++)
        if (json_array_append_new(results, query_project(q, all[order[i]])) != 0)
            goto oom;
answer:
    *out = json_pack("{s:O, s:I}", "results", results, "total_count", (json_int_t)total);
    if (*out == NULL)
        goto oom;
    goto done;
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
done:
    json_decref(results);
    free(all);
    free(order);
    return rc;
}

/* ---- a read in flight -------------------------------------------------------- */

typedef struct {
    const merged_source *src;
    query_schema schema; /* resource_query_schema(src->res) */
    query *q;            /* list */
    query *tq;           /* list: what each tier answers */
    api_call *call;      /* list: the call (one remote tier alone sets its ready_body) */
    json_t *local;       /* list: the local tier's answer to tq */
} merged_state;

static void state_free(merged_state *m)
{
    query_free(m->q);
    query_free(m->tq);
    json_decref(m->local);
    free(m);
}

/* The list over the local answer and the tiers (one remote tier alone:
 * its serialised answer becomes m->call->ready_body, *out stays NULL). */
static rd_status list_tiers(merged_state *m, remote_tier *const *tiers, size_t n, json_t **out,
                            rd_error *err)
{
    merged_part *parts = calloc(n + 1, sizeof(*parts));
    readmodel_result *res = calloc(n + 1, sizeof(*res));
    json_t **views = NULL; /* the remote tiers' documents, decoded (ours) */
    size_t nparts = 0, nviews = 0, used = 0;
    rd_status rc = RD_OK;

    if (parts == NULL || res == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    if (m->local == NULL && n == 1) {
        /* one remote tier alone: the model answers the whole list, as the
         * bytes api_call_finish sends */
        free(m->call->ready_body);
        m->call->ready_body = NULL;
        rc = readmodel_query_bytes(remote_tier_model(tiers[0]), m->q, NULL, 0, &m->call->ready_body,
                                   &m->call->ready_len, err);
        goto done;
    }
    for (size_t i = 0; i < n && rc == RD_OK; i++) {
        rc = readmodel_query(remote_tier_model(tiers[i]), m->tq, NULL, 0, &res[i], err);
        nviews += res[i].n;
    }
    if (rc != RD_OK)
        goto done;
    views = calloc(nviews ? nviews : 1, sizeof(*views));
    if (views == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    if (m->local != NULL) {
        json_t *results = json_object_get(m->local, "results");
        size_t ln = json_array_size(results);
        const json_t **lv = malloc((ln ? ln : 1) * sizeof(*lv));
        if (lv == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            goto done;
        }
        for (size_t j = 0; j < ln; j++)
            lv[j] = json_array_get(results, j);
        parts[nparts].docs = lv;
        parts[nparts].n = ln;
        parts[nparts].total = (size_t)json_integer_value(json_object_get(m->local, "total_count"));
        nparts++;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < res[i].n && rc == RD_OK; j++)
            if ((views[used + j] = readmodel_doc_decode(res[i].docs[j])) == NULL)
                rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        parts[nparts].docs = (const json_t *const *)(views + used);
        parts[nparts].n = res[i].n;
        parts[nparts].total = res[i].total_count;
        used += res[i].n;
        nparts++;
    }
    if (rc == RD_OK)
        rc = merged_combine(m->q, parts, nparts, out, err);
done:
    for (size_t i = 0; views != NULL && i < used; i++)
        json_decref(views[i]);
    if (parts != NULL && m->local != NULL)
        free((void *)parts[0].docs);
    for (size_t i = 0; res != NULL && i < n; i++)
        readmodel_result_free(&res[i]);
    free(res);
    free(parts);
    free(views);
    return rc;
}

static void tiers_done(api_call *call, void *ud, remote_tier *const *tiers, size_t n, rd_status rc,
                       const rd_error *err)
{
    merged_state *m = ud;
    json_t *out = NULL;
    rd_error e = {RD_OK, ""};
    if (rc == RD_OK) {
        rc = list_tiers(m, tiers, n, &out, &e);
        err = &e;
    }
    state_free(m);
    api_call_finish(call, rc, out, err);
}

/* Runs m (owned) over the remote tiers repository_id names, after the local
 * part (m->local; NULL when a remote repository was named). */
static rd_status start_remote(api_call *call, merged_state *m, const char *repository_id,
                              rd_error *err)
{
    rd_status rc;
    if (m->src->gather == NULL) {
        json_t *out = NULL;
        rd_error e = {RD_OK, ""};
        rc = list_tiers(m, NULL, 0, &out, &e);
        state_free(m);
        if (rc != RD_OK)
            return rd_fail(err, rc, "%s", e.message);
        api_call_finish(call, RD_OK, out, NULL);
        return RD_PENDING;
    }
    rc = m->src->gather(call, m->src->res, repository_id, tiers_done, m, err);
    if (rc != RD_PENDING)
        state_free(m);
    return rc;
}

rd_status merged_list(api_call *call, const merged_source *src, const json_t *query_obj,
                      const json_t *eq, const char *repository_id, json_t **out, rd_error *err)
{
    int local_named = repository_id != NULL && strcmp(repository_id, src->local_id(call)) == 0;
    query_schema schema = resource_query_schema(src->res);
    merged_state *m = NULL;
    query *q = NULL;
    rd_status rc = query_compile(query_obj, eq, &schema, &q, err);
    if (rc != RD_OK)
        return rc;
    if (local_named || (repository_id == NULL && (src->gather == NULL || src->no_remotes(call)))) {
        /* the local tier alone answers the whole list; its bytes, when it
         * has them, are the body (api_call_finish sends call->ready_body) */
        if (src->local_list_bytes != NULL) {
            free(call->ready_body);
            call->ready_body = NULL;
            rc = src->local_list_bytes(call, q, &call->ready_body, &call->ready_len, err);
        } else
            rc = src->local_list(call, q, out, err);
        query_free(q);
        return rc;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        query_free(q);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    m->src = src;
    m->schema = schema;
    m->q = q;
    m->call = call;
    rc = merged_tier_query(query_obj, eq, &schema, q, &m->tq, err);
    if (rc == RD_OK && repository_id == NULL)
        rc = src->local_list(call, m->tq, &m->local, err);
    if (rc != RD_OK) {
        state_free(m);
        return rc;
    }
    return start_remote(call, m, repository_id, err);
}
