/*
 * federation_versions.c - the version lists of plugin get-versions
 * (federation.h): of a mirrored plugin, from the repository that holds it
 * (found by federation_find_item) and its cached version list; of a local
 * plugin, from its image's tags in its registry, cached alike.
 */
#include <stdlib.h>
#include <string.h>

#include "federation-internal.h"
#include "federation.h"
#include "remote.h"
#include "util.h"

static json_t *versions_answer(json_t *list)
{
    return json_pack("{s:O, s:I, s:O}", "version", list, "total_count",
                     (json_int_t)json_array_size(list), "results", list);
}

/* One version list being read (of a mirrored or a local plugin). */
typedef struct {
    api_call *call;
    federation_versions_fn done;
    void *ud;
    char plugin_id[256];
    json_t *rec;   /* mirrored: the repository record that holds the plugin */
    json_t *stale; /* a cached list still within stale_if_error_s */
} versions_state;

static versions_state *versions_new(api_call *call, federation_versions_fn done, void *ud,
                                    const char *plugin_id)
{
    versions_state *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->call = call;
    v->done = done;
    v->ud = ud;
    snprintf(v->plugin_id, sizeof(v->plugin_id), "%s", plugin_id);
    return v;
}

/* Calls back with value (taken) or the error, and frees v. */
static void versions_end(versions_state *v, json_t *value, rd_status rc, const rd_error *err)
{
    v->done(v->call, v->ud, value, rc, err);
    json_decref(value);
    json_decref(v->rec);
    json_decref(v->stale);
    free(v);
}

/* ---- versions of a mirrored plugin ------------------------------------------ */

static void versions_not_found(versions_state *v)
{
    rd_error err;
    rd_fail(&err, RD_ERR_NO_PLUGIN, "Plugin not found. (plugin_id = %s)", v->plugin_id);
    versions_end(v, NULL, RD_ERR_NO_PLUGIN, &err);
}

static void versions_fetched(const fetch_result *res, void *arg)
{
    versions_state *v = arg;
    if (res->rc == RD_OK && res->value != NULL) {
        federation_note_cache(v->call, "MISS");
        versions_end(v, versions_answer(res->value), RD_OK, NULL);
    } else if (v->stale != NULL) {
        federation_note_cache(v->call, "STALE");
        versions_end(v, versions_answer(v->stale), RD_OK, NULL);
    } else if (res->rc == RD_ERR_NOT_FOUND) {
        versions_not_found(v);
    } else {
        versions_end(v, NULL, res->rc, &res->err);
    }
}

/* The plugin is in repository v->rec: its version list there. */
static void versions_step(versions_state *v)
{
    app *a = v->call->app;
    const char *id = json_string_value(json_object_get(v->rec, "repository_id"));
    json_t *list = NULL;
    int64_t at = 0;
    int refresh = 0;
    rd_error e2;
    int64_t seen_at = util_now_ms();
    int have = remote_versions_get(a->st, id, v->plugin_id, &list, &at, &e2) == RD_OK;
    verdict vd = federation_judge(a, v->rec, have, at, &refresh);
    fetch_job job;

    if (vd == USE_FRESH || vd == USE_STALE) {
        federation_note_cache(v->call, vd == USE_FRESH ? "HIT" : "STALE");
        if (refresh)
            federation_refresh(a, &resource_plugin, FETCH_VERSIONS, id, v->plugin_id);
        versions_end(v, versions_answer(list), RD_OK, NULL);
        json_decref(list);
        return;
    }
    if (vd == UNAVAILABLE) {
        rd_error err;
        json_decref(list);
        rd_fail(&err, RD_ERR_UPSTREAM_UNAVAILABLE,
                "Upstream unavailable. (repository_id = %s, reason = offline and the versions "
                "are not cached)",
                id);
        versions_end(v, NULL, err.code, &err);
        return;
    }
    v->stale = have && federation_stale_usable(a, v->rec, 1, at) ? list : NULL;
    if (v->stale == NULL)
        json_decref(list);
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = seen_at;
    job.kind = FETCH_VERSIONS;
    job.repository_id = id;
    job.plugin_id = v->plugin_id;
    fetcher_submit(a->fetcher, &job, v->call->edge.base, versions_fetched, v);
}

/* federation_find_item's answer: where the plugin is, or why not. */
static void plugin_found(api_call *call, void *ud, federation_found *found, rd_status rc,
                         const rd_error *err)
{
    versions_state *v = ud;
    (void)call;
    if (rc == RD_ERR_NOT_FOUND)
        versions_not_found(v);
    else if (rc != RD_OK)
        versions_end(v, NULL, rc, err);
    else {
        v->rec = json_incref((json_t *)found->record); /* shared read-only */
        versions_step(v);
    }
}

rd_status federation_remote_versions(api_call *call, const char *plugin_id,
                                     const char *repository_id, federation_versions_fn done,
                                     void *ud, rd_error *err)
{
    versions_state *v = versions_new(call, done, ud, plugin_id);
    rd_status rc;
    if (v == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    rc = federation_find_item(call, &resource_plugin, plugin_id, repository_id, plugin_found, v,
                              err);
    if (rc != RD_PENDING) /* plugin_found was not called */
        free(v);
    return rc;
}

/* ---- versions of a local plugin (its registry) ------------------------------ */

static void tags_fetched(const fetch_result *res, void *arg)
{
    versions_state *v = arg;
    if (res->rc == RD_OK && res->value != NULL) {
        federation_note_cache(v->call, "MISS");
        versions_end(v, versions_answer(res->value), RD_OK, NULL);
    } else if (v->stale != NULL && res->rc != RD_ERR_NO_IMAGE_IN_REGISTRY) {
        federation_note_cache(v->call, "STALE");
        versions_end(v, versions_answer(v->stale), RD_OK, NULL);
    } else {
        versions_end(v, NULL, res->rc, &res->err);
    }
}

/* Reads the tags of the local plugin record (borrowed) from its registry;
 * v NULL: in the background. */
static void fetch_tags(app *a, const json_t *record, int64_t seen_at_ms, versions_state *v)
{
    fetch_job job;
    memset(&job, 0, sizeof(job));
    job.seen_at_ms = seen_at_ms;
    job.kind = FETCH_TAGS;
    job.domain_id = json_string_value(json_object_get(record, "domain_id"));
    job.plugin_id = json_string_value(json_object_get(record, "plugin_id"));
    job.plugin = record;
    if (v != NULL)
        fetcher_submit(a->fetcher, &job, v->call->edge.base, tags_fetched, v);
    else
        fetcher_submit(a->fetcher, &job, NULL, NULL, NULL);
}

rd_status federation_local_versions(api_call *call, const json_t *record,
                                    federation_versions_fn done, void *ud, rd_error *err)
{
    app *a = call->app;
    const conf_cache *cs = &a->conf->remote_defaults;
    json_t *list = NULL;
    int64_t at = 0;
    rd_error e2;
    versions_state *v;
    remote_freshness fr = REMOTE_EXPIRED;
    int64_t seen_at = util_now_ms();

    if (remote_tags_get(a->st, json_string_value(json_object_get(record, "domain_id")),
                        json_string_value(json_object_get(record, "plugin_id")), &list, &at,
                        &e2) == RD_OK)
        fr = remote_freshness_of(cs, at, util_now_ms());
    if (fr == REMOTE_FRESH || (fr == REMOTE_STALE && cs->stale_while_revalidate)) {
        json_t *answer = versions_answer(list);
        federation_note_cache(call, fr == REMOTE_FRESH ? "HIT" : "STALE");
        if (fr == REMOTE_STALE)
            fetch_tags(a, record, 0, NULL);
        done(call, ud, answer, RD_OK, NULL);
        json_decref(answer);
        json_decref(list);
        return RD_PENDING;
    }
    v = versions_new(call, done, ud, "");
    if (v == NULL) {
        json_decref(list);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    v->stale = fr == REMOTE_STALE ? list : NULL;
    if (v->stale == NULL)
        json_decref(list);
    fetch_tags(a, record, seen_at, v);
    return RD_PENDING;
}
