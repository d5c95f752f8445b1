/*
 * catalog_sync.c - one paged catalog sync of a remote repository: the page
 * requests, the checks of each answer, skipped records, and the swap of the
 * new catalog into the cache once every page arrived.
 */
#include "catalog_sync.h"

#include <stdlib.h>
#include <string.h>

#include "remote.h"
#include "remote_models.h"

#define MAX_PAGES  1000000 /* a bound on one sync, whatever the upstream says */
#define REASON_MAX 256

struct catalog_sync {
    const resource_desc *res;
    char repository_id[128];
    int64_t limit;
    int64_t start; /* 1-based index of the next page's first record */
    unsigned pages;
    size_t skipped;
    char first_skip[REASON_MAX];
    char last_skip[REASON_MAX];
    remote_catalog_txn *txn;
    remote_tier_builder *tb; /* the new read model, or NULL */
};

catalog_sync *catalog_sync_new(store *st, const char *repository_id, int64_t page_size)
{
    return catalog_sync_new_res(&resource_plugin, st, repository_id, page_size);
}

catalog_sync *catalog_sync_new_res(const resource_desc *res, store *st, const char *repository_id,
                                   int64_t page_size)
{
    catalog_sync *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->res = res;
    snprintf(s->repository_id, sizeof(s->repository_id), "%s", repository_id);
    s->limit = page_size > 0 ? page_size : 1000;
    s->start = 1;
    s->txn = remote_res_catalog_begin(res, st, repository_id);
    if (s->txn == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void catalog_sync_free(catalog_sync *s)
{
    if (s == NULL)
        return;
    remote_models_build_abort(s->tb);
    remote_catalog_free(s->txn);
    free(s);
}

rd_status catalog_sync_use_models(catalog_sync *s, remote_models *models, const json_t *record,
                                  rd_error *err)
{
    if (models == NULL || record == NULL || s->tb != NULL)
        return RD_OK;
    return remote_models_build_begin(models, record, &s->tb, err);
}

json_t *catalog_sync_next_request(const catalog_sync *s)
{
    return json_pack("{s:s, s:{s:{s:I, s:I}}}", "repository_id", s->repository_id, "query", "page",
                     "start", (json_int_t)s->start, "limit", (json_int_t)s->limit);
}

static rd_status bad_page(const catalog_sync *s, const char *why, rd_error *err)
{
    return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                   "Bad upstream response. (repository = %s, reason = %s, page start = %lld)",
                   s->repository_id, why, (long long)s->start);
}

/* The "reason = ..." part of a check's message (the whole message if none). */
static void note_skip(catalog_sync *s, const char *message)
{
    const char *r = strstr(message, "(reason = ");
    size_t n;
    if (r != NULL) {
        r += strlen("(reason = ");
        n = strlen(r);
        if (n > 0 && r[n - 1] == ')')
            n--;
    } else {
        r = message;
        n = strlen(r);
    }
    if (n >= REASON_MAX)
        n = REASON_MAX - 1;
    memcpy(s->last_skip, r, n);
    s->last_skip[n] = '\0';
    if (s->skipped == 0)
        memcpy(s->first_skip, s->last_skip, n + 1);
    s->skipped++;
}

rd_status catalog_sync_page(catalog_sync *s, const json_t *body, int *more, rd_error *err)
{
    json_t *results = json_object_get(body, "results");
    json_t *total = json_object_get(body, "total_count");
    size_t i, n, valid = 0, fresh = 0;
    json_t *p;
    rd_status rc;

    *more = 0;
    if (!json_is_array(results))
        return bad_page(s, "no results list", err);
    if (total != NULL && !json_is_null(total) && !json_is_integer(total))
        return bad_page(s, "total_count is not an integer", err);
    n = json_array_size(results);
    json_array_foreach(results, i, p)
    {
        rd_error why;
        int added;
        if (s->res->check_upstream(p, &why) != RD_OK) {
            note_skip(s, why.message);
            continue;
        }
        valid++;
        added = remote_catalog_add(s->txn, p);
        if (added < 0)
            return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        remote_models_build_add(s->tb, p);
        fresh += (size_t)added;
    }
    if (n > 0 && valid == 0)
        return bad_page(s,
                        s->res == &resource_plugin ? "no valid plugin in the page"
                                                   : "no valid record in the page",
                        err);
    /* the page's records, staged where readers do not look: nothing of the
     * page is kept once it is written */
    rc = remote_catalog_flush(s->txn, err);
    if (rc != RD_OK)
        return rc;
    s->pages++;
    if ((int64_t)n < s->limit || (int64_t)n > s->limit)
        return RD_OK; /* the last page, or everything at once */
    if (json_is_integer(total) && s->start - 1 + (int64_t)n >= json_integer_value(total))
        return RD_OK;
    if (fresh == 0)
        return bad_page(s, "paging does not advance", err);
    if (s->pages >= MAX_PAGES)
        return bad_page(s, "too many pages", err);
    s->start += s->limit;
    *more = 1;
    return RD_OK;
}

rd_status catalog_sync_commit(catalog_sync *s, int64_t now_ms, rd_error *err)
{
    return remote_catalog_commit(s->txn, now_ms, err);
}

rd_status catalog_sync_commit_models(catalog_sync *s, remote_models *models, const json_t *record,
                                     int64_t now_ms, rd_error *err)
{
    remote_tier_builder *tb = s->tb;
    s->tb = NULL;
    return remote_models_commit_built(models, s->txn, tb, record, now_ms, err);
}

size_t catalog_sync_count(const catalog_sync *s)
{
    return remote_catalog_size(s->txn);
}

const resource_desc *catalog_sync_resource(const catalog_sync *s)
{
    return s->res;
}

size_t catalog_sync_skipped(const catalog_sync *s)
{
    return s->skipped;
}

const char *catalog_sync_first_skip(const catalog_sync *s)
{
    return s->first_skip;
}

const char *catalog_sync_last_skip(const catalog_sync *s)
{
    return s->last_skip;
}

unsigned catalog_sync_pages(const catalog_sync *s)
{
    return s->pages;
}
