/*
 * merged_stat.c - a stat over the local tier and the remote tiers' read
 * models (include/merged_read.h): counted per tier from the models when the
 * stat only groups and counts, else run by query_stat over every tier's
 * matches.
 */
#include "merged_read.h"

#include <stdlib.h>
#include <string.h>

#include "readmodel.h"
#include "remote_models.h"

typedef struct {
    const merged_source *src;
    query_schema schema;     /* resource_query_schema(src->res) */
    const json_t *stat_q;    /* borrowed from the call's body */
    int with_local;          /* every tier, the local one included */
    query_stat_groups *plan; /* counted: the plan; NULL = decode the matches */
    query_stat_tally *tally; /* counted: the local tier's counts so far */
    query *hint;             /* decoded: the stat's filters, to narrow what is read */
    json_t *local;           /* decoded: the local matches */
} stat_state;

static void state_free(stat_state *m)
{
    query_stat_tally_free(m->tally);
    query_stat_groups_free(m->plan);
    query_free(m->hint);
    json_decref(m->local);
    free(m);
}

/* Leaves the counted path: the stat will decode every tier's matches. */
static rd_status start_decoding(api_call *call, stat_state *m, rd_error *err)
{
    rd_error ignored;
    query_stat_tally_free(m->tally);
    query_stat_groups_free(m->plan);
    m->tally = NULL;
    m->plan = NULL;
    /* The stat's own filters let the indexes narrow what is read; a bad
     * filter is left for query_stat to report. */
    if (query_stat_filter(m->stat_q, &m->schema, &m->hint, &ignored) != RD_OK)
        m->hint = NULL;
    if (m->with_local)
        return m->src->local_matches(call, m->hint, &m->local, err);
    return RD_OK;
}

/* Starts the counted path when the stat has its shape and the local tier
 * (when read) counts it; else the decoded path. */
static rd_status start_local(api_call *call, stat_state *m, rd_error *err)
{
    rd_error ignored;
    int counted = 1;
    rd_status rc;
    /* a bad query gives no plan: query_stat reports it */
    if (m->src->local_tally == NULL ||
        query_stat_groups_compile(m->stat_q, &m->schema, &m->plan, &ignored) != RD_OK ||
        m->plan == NULL || (m->tally = query_stat_tally_new(m->plan)) == NULL)
        return start_decoding(call, m, err);
    if (m->with_local) {
        rc = m->src->local_tally(call, m->plan, m->tally, &counted, err);
        if (rc != RD_OK)
            return rc;
    }
    return counted ? RD_OK : start_decoding(call, m, err);
}

/* The stat over the local matches and every tier's matches. */
static rd_status stat_decoded(stat_state *m, remote_tier *const *tiers, size_t n, json_t **out,
                              rd_error *err)
{
    json_t *docs = m->local != NULL ? json_copy(m->local) : json_array();
    rd_status rc = docs != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n && rc == RD_OK; i++) {
        readmodel_result r;
        memset(&r, 0, sizeof(r));
        rc = readmodel_matches(remote_tier_model(tiers[i]), m->hint, NULL, 0, &r, err);
        for (size_t j = 0; rc == RD_OK && j < r.n; j++)
            /* decoded for this stat only: a view kept with the document
             * would hold its tree for as long as the model holds it */
            if (json_array_append_new(docs, readmodel_doc_decode(r.docs[j])) != 0)
                rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        readmodel_result_free(&r);
    }
    if (rc == RD_OK)
        rc = query_stat(m->stat_q, &m->schema, docs, out, err);
    json_decref(docs);
    return rc;
}

/* The stat over the tiers: each remote tier's counts added after the
 * local ones, in tier order; when a tier cannot count, every tier's
 * matches are decoded instead. */
static rd_status stat_tiers(api_call *call, stat_state *m, remote_tier *const *tiers, size_t n,
                            json_t **out, rd_error *err)
{
    int counted = 1;
    rd_status rc = RD_OK;
    if (m->plan == NULL)
        return stat_decoded(m, tiers, n, out, err);
    for (size_t i = 0; i < n && counted && rc == RD_OK; i++)
        rc = readmodel_stat_tally(remote_tier_model(tiers[i]), m->plan, NULL, 0, m->tally, &counted,
                                  err);
    if (rc == RD_OK && counted)
        return query_stat_groups_finish(m->plan, m->tally, out, err);
    if (rc == RD_OK)
        rc = start_decoding(call, m, err);
    if (rc == RD_OK)
        rc = stat_decoded(m, tiers, n, out, err);
    return rc;
}

static void tiers_done(api_call *call, void *ud, remote_tier *const *tiers, size_t n, rd_status rc,
                       const rd_error *err)
{
    stat_state *m = ud;
    json_t *out = NULL;
    rd_error e = {RD_OK, ""};
    if (rc == RD_OK) {
        rc = stat_tiers(call, m, tiers, n, &out, &e);
        err = &e;
    }
    state_free(m);
    api_call_finish(call, rc, out, err);
}

rd_status merged_stat(api_call *call, const merged_source *src, const json_t *stat_q,
                      const char *repository_id, json_t **out, rd_error *err)
{
    int local_named = repository_id != NULL && strcmp(repository_id, src->local_id(call)) == 0;
    stat_state *m = NULL;
    rd_status rc;

    if (local_named || (repository_id == NULL && (src->gather == NULL || src->no_remotes(call))))
        return src->local_stat(call, stat_q, out, err); /* the local tier alone */
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    m->src = src;
    m->schema = resource_query_schema(src->res);
    m->stat_q = stat_q;
    m->with_local = repository_id == NULL;
    rc = start_local(call, m, err);
    if (rc == RD_OK && src->gather == NULL) { /* a remote tier named, none there */
        rd_error e = {RD_OK, ""};
        json_t *res = NULL;
        rc = stat_tiers(call, m, NULL, 0, &res, &e);
        state_free(m);
        if (rc != RD_OK)
            return rd_fail(err, rc, "%s", e.message);
        api_call_finish(call, RD_OK, res, NULL);
        return RD_PENDING;
    }
    if (rc == RD_OK)
        rc = src->gather(call, src->res, repository_id, tiers_done, m, err);
    if (rc != RD_PENDING)
        state_free(m);
    return rc;
}
