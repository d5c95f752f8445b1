/*
 * repository_api.c - handlers of /repository[/v1]/repository/<verb>.
 *
 * One local repository exists (created at first start); remote ones are
 * registered here.  Registering a remote asks the upstream for its local
 * repository and adopts that repository_id, so a marketplace has the same
 * id on every mirror.  The upstream token is stored but never answered.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fetcher.h"
#include "log.h"
#include "mirror.h"
#include "query.h"
#include "remote.h"
#include "remote_models.h"
#include "util.h"

/* ---- register ------------------------------------------------------------- */

typedef struct {
    json_t *record; /* everything but repository_id */
} register_state;

static void register_probed(const fetch_result *res, void *arg);

static const char *const register_keys[] = {"name",     "repository_type", "endpoint", "priority",
                                            "upstream", "cache",           NULL};

rd_status api_repository_register(api_call *call, json_t **out, rd_error *err)
{
    app *a = call->app;
    const char *type = NULL, *name = NULL, *endpoint = NULL;
    json_t *up, *cache;
    json_int_t priority = 100;
    register_state *rs;
    fetch_job job;
    rd_status rc = api_check_keys(call->body, register_keys, err);
    (void)out;
    if (rc == RD_OK)
        rc = api_req_string(call->body, "name", &name, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_type", &type, err);
    if (rc != RD_OK)
        return rc;
    if (strcmp(type, "local") == 0)
        return rd_fail(err, RD_ERR_EXIST_RESOURCE,
                       "A local repository already exists. (repository_id = %s)",
                       catalog_local_id(a->cat));
    if (strcmp(type, "remote") != 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = repository_type, value = %s)", type);
    up = json_object_get(call->body, "upstream");
    cache = json_object_get(call->body, "cache");
    rc = api_req_string(call->body, "endpoint", &endpoint, err);
    if (rc == RD_OK)
        rc = remote_check_endpoint(endpoint, err);
    if (rc == RD_OK)
        rc = remote_check_priority(call->body, &priority, err);
    if (rc == RD_OK)
        rc = remote_check_upstream(json_is_null(up) ? NULL : up, err);
    if (rc == RD_OK)
        rc = remote_check_cache(json_is_null(cache) ? NULL : cache, err);
    if (rc != RD_OK)
        return rc;
    if (mirror_name_taken(a, name, NULL))
        return rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES, "Duplicated value. (key = name, value = %s)",
                       name);
    rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    rs->record = remote_new_record(name, endpoint, priority, json_is_object(up) ? up : NULL,
                                   json_is_object(cache) ? cache : NULL);
    if (rs->record == NULL) {
        free(rs);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    memset(&job, 0, sizeof(job));
    job.kind = FETCH_PROBE;
    job.endpoint = endpoint;
    job.token = json_string_value(json_object_get(up, "token"));
    job.ca_file = json_string_value(json_object_get(up, "ca_file"));
    job.verify = !json_is_false(json_object_get(up, "verify"));
    job.timeout_ms = json_integer_value(json_object_get(cache, "timeout_ms"));
    /* the call waits for the upstream's answer on this loop */
    call->pending_ctx = rs;
    fetcher_submit(a->fetcher, &job, call->edge.base, register_probed, call);
    return RD_PENDING;
}

static void register_probed(const fetch_result *res, void *arg)
{
    api_call *call = arg;
    register_state *rs = call->pending_ctx;
    json_t *rec = rs->record, *view = NULL;
    rd_error err = {RD_OK, ""};
    rd_status rc = res->rc;

    call->pending_ctx = NULL;
    free(rs);
    if (rc == RD_OK)
        rc = mirror_adopt(call->app, rec, res->value, &err);
    else if (rc == RD_ERR_NOT_FOUND || rc == RD_ERR_INTERNAL)
        rc = rd_fail(&err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                     "Bad upstream response. (reason = no local repository)");
    else
        err = res->err;
    if (rc == RD_OK)
        view = remote_view(rec, NULL);
    json_decref(rec);
    api_call_finish(call, rc, view, &err);
}

/* ---- lookups --------------------------------------------------------------- */

/* What an anonymous caller sees of a remote repository: who it is and its
 * state, never where it lives (endpoint "") or why it failed (new
 * reference). */
static json_t *anonymous_doc(const json_t *doc)
{
    static const char *const keys[] = {"repository_id", "name",       "repository_type",
                                       "priority",      "created_at", NULL};
    json_t *out = json_object();
    json_t *state = json_object_get(json_object_get(doc, "upstream"), "state");
    for (size_t i = 0; out != NULL && keys[i] != NULL; i++) {
        json_t *v = json_object_get(doc, keys[i]);
        if (v != NULL)
            json_object_set(out, keys[i], v);
    }
    if (out != NULL && state != NULL)
        json_object_set_new(out, "upstream", json_pack("{s:O}", "state", state));
    if (out != NULL) /* the published RepositoryInfo requires the key */
        json_object_set_new(out, "endpoint", json_string(""));
    return out;
}

/* The local repository's document: its record with endpoint "" (it is
 * this server), as every RepositoryInfo carries an endpoint (new
 * reference). */
static json_t *local_doc(const api_call *call)
{
    json_t *doc = catalog_local_record(call->app->cat);
    if (doc != NULL && !json_is_string(json_object_get(doc, "endpoint")))
        json_object_set_new(doc, "endpoint", json_string(""));
    return doc;
}

/* A remote repository's document as answered to call's caller: the view
 * with its upstream status; the connection settings (server file paths)
 * only for system callers; for anonymous callers only names, ids, type,
 * priority and state (new reference). */
static json_t *repository_doc(const api_call *call, const json_t *rec)
{
    json_t *status = NULL, *doc;
    rd_error e;
    const char *id = json_string_value(json_object_get(rec, "repository_id"));
    remote_status_get(call->app->st, id, &status, &e);
    doc = remote_view(rec, status);
    json_decref(status);
    if (doc != NULL && call->who.role == AUTH_ROLE_ANONYMOUS) {
        json_t *anon = anonymous_doc(doc);
        json_decref(doc);
        doc = anon;
    } else if (doc != NULL && call->who.role != AUTH_ROLE_SYSTEM) {
        json_object_del(doc, "upstream_settings");
    }
    return doc;
}

/* Finds the repository a write names: RD_OK with *remote_rec the stored
 * record of a remote one (new reference), or NULL for the local one;
 * RD_ERR_NOT_FOUND when neither. */
static rd_status find_target(api_call *call, const char *repository_id, json_t **remote_rec,
                             rd_error *err)
{
    rd_status rc;
    *remote_rec = NULL;
    if (strcmp(repository_id, catalog_local_id(call->app->cat)) == 0)
        return RD_OK;
    rc = remote_get(call->app->st, repository_id, remote_rec, err);
    if (rc == RD_ERR_NOT_FOUND)
        return rd_fail(err, RD_ERR_NOT_FOUND, "Value not found. (repository_id = %s)",
                       repository_id);
    return rc;
}

/* Finds repository_id: *out gets its answer document (new reference). */
static rd_status find_repository(api_call *call, const char *repository_id, json_t **out,
                                 rd_error *err)
{
    json_t *rec = NULL;
    rd_status rc = find_target(call, repository_id, &rec, err);
    if (rc != RD_OK)
        return rc;
    *out = rec != NULL ? repository_doc(call, rec) : local_doc(call);
    json_decref(rec);
    return RD_OK;
}

static const char *const id_keys[] = {"repository_id", "only", NULL};

/* 409 for a remote repository that the config file's "remotes" manage. */
static rd_status refuse_config_managed(const json_t *rec, const char *repository_id, rd_error *err)
{
    if (rec == NULL || !mirror_config_managed(rec))
        return RD_OK;
    return rd_fail(err, RD_ERR_EXIST_RESOURCE,
                   "Resource is managed by the configuration file. (repository_id = %s, reason = "
                   "edit its entry in remotes and reload the server)",
                   repository_id);
}

/* ---- update / deregister / sync ------------------------------------------- */

rd_status api_repository_update(api_call *call, json_t **out, rd_error *err)
{
    static const char *const update_keys[] = {"repository_id", "name",     "priority",
                                              "cache",         "upstream", NULL};
    const char *repository_id = NULL, *name = NULL;
    json_t *rec = NULL, *v;
    json_int_t priority = 0;
    rd_status rc = api_check_keys(call->body, update_keys, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "name", &name, err);
    if (rc == RD_OK)
        rc = remote_check_priority(call->body, &priority, err);
    if (rc == RD_OK && !json_is_null(v = json_object_get(call->body, "upstream")))
        rc = remote_check_upstream(v, err);
    if (rc == RD_OK && !json_is_null(v = json_object_get(call->body, "cache")))
        rc = remote_check_cache(v, err);
    if (rc == RD_OK)
        rc = find_target(call, repository_id, &rec, err);
    if (rc == RD_OK)
        rc = refuse_config_managed(rec, repository_id, err);
    if (rc != RD_OK) {
        json_decref(rec);
        return rc;
    }
    if (rec == NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (repository_id = %s, reason = the local repository is "
                       "configured by local_repository.name)",
                       repository_id);
    if (name != NULL && name[0] != '\0') {
        if (mirror_name_taken(call->app, name, repository_id)) {
            json_decref(rec);
            return rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES,
                           "Duplicated value. (key = name, value = %s)", name);
        }
        json_object_set_new(rec, "name", json_string(name));
    }
    if (priority > 0)
        json_object_set_new(rec, "priority", json_integer(priority));
    if (json_is_object(v = json_object_get(call->body, "cache")))
        json_object_update(json_object_get(rec, "cache"), v);
    if (json_is_object(v = json_object_get(call->body, "upstream")))
        json_object_update(json_object_get(rec, "upstream_config"), v);
    rc = remote_put(call->app->st, rec, err);
    if (rc == RD_OK)
        *out = repository_doc(call, rec);
    json_decref(rec);
    return rc;
}

rd_status api_repository_deregister(api_call *call, json_t **out, rd_error *err)
{
    const char *repository_id = NULL;
    json_t *rec = NULL;
    size_t count = 0;
    rd_status rc = api_check_keys(call->body, id_keys, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = find_target(call, repository_id, &rec, err);
    if (rc == RD_OK)
        rc = refuse_config_managed(rec, repository_id, err);
    if (rc != RD_OK) {
        json_decref(rec);
        return rc;
    }
    if (rec != NULL) {
        json_decref(rec);
        rc = remote_delete(call->app->st, repository_id, err);
        if (rc == RD_OK) {
            remote_models_drop(call->app->models, repository_id); /* its memory goes now */
            LOG_INFO("deregistered remote repository %s and dropped its cache", repository_id);
            *out = json_object();
        }
        return rc;
    }
    rc = catalog_plugin_count_all(call->app->cat, &count, err);
    if (rc != RD_OK)
        return rc;
    if (count > 0)
        return rd_fail(err, RD_ERR_EXIST_RESOURCE,
                       "Resource is in use. (repository_id = %s, reason = it holds plugins)",
                       repository_id);
    return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                   "Invalid parameter. (repository_id = %s, reason = the local repository cannot "
                   "be deregistered)",
                   repository_id);
}

/* What a sync is about: {repository_id, plugin_id?}. */
static void sync_done(const fetch_result *res, void *arg)
{
    api_call *call = arg;
    json_t *what = call->pending_ctx, *answer = NULL;
    const char *plugin_id = json_string_value(json_object_get(what, "plugin_id"));
    rd_status rc = res->rc;
    rd_error err = res->err;
    if (rc == RD_OK && plugin_id == NULL && json_object_get(what, "plugins") == NULL) {
        /* the plugins are in: then the dashboard templates */
        fetch_job job;
        json_object_set(what, "plugins", json_object_get(res->value, "plugins"));
        memset(&job, 0, sizeof(job));
        job.kind = FETCH_CATALOG;
        job.res = &resource_dashboard;
        job.repository_id = json_string_value(json_object_get(what, "repository_id"));
        job.force = 1;
        fetcher_submit(call->app->fetcher, &job, call->edge.base, sync_done, call);
        return;
    }
    if (rc == RD_OK && plugin_id == NULL)
        answer =
            json_pack("{s:O, s:O, s:O}", "repository_id", json_object_get(what, "repository_id"),
                      "plugins", json_object_get(what, "plugins"), "dashboard_templates",
                      json_object_get(res->value, "dashboard_templates"));
    else if (rc == RD_OK)
        answer =
            json_pack("{s:O, s:s, s:I}", "repository_id", json_object_get(what, "repository_id"),
                      "plugin_id", plugin_id, "versions", (json_int_t)json_array_size(res->value));
    else if (rc == RD_ERR_NOT_FOUND)
        rc = rd_fail(&err, RD_ERR_NO_PLUGIN, "Plugin not found. (plugin_id = %s)", plugin_id);
    json_decref(what);
    call->pending_ctx = NULL;
    api_call_finish(call, rc, answer, &err);
}

/* repository sync {repository_id}: the catalogs now (plugins, then
 * dashboard templates: {repository_id, plugins, dashboard_templates}); with plugin_id: that
 * plugin's version list now.  Both go to the upstream even when the
 * repository is offline or the cached copy is fresh. */
rd_status api_repository_sync(api_call *call, json_t **out, rd_error *err)
{
    static const char *const sync_keys[] = {"repository_id", "plugin_id", NULL};
    const char *repository_id = NULL, *plugin_id = NULL;
    json_t *rec = NULL;
    fetch_job job;
    rd_status rc = api_check_keys(call->body, sync_keys, err);
    (void)out;
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "plugin_id", &plugin_id, err);
    if (rc == RD_OK && plugin_id != NULL && plugin_id[0] == '\0')
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = plugin_id)");
    if (rc == RD_OK)
        rc = find_target(call, repository_id, &rec, err);
    if (rc != RD_OK)
        return rc;
    if (rec == NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (repository_id = %s, reason = only remote "
                       "repositories are synced)",
                       repository_id);
    json_decref(rec);
    call->pending_ctx =
        json_pack("{s:s, s:s?}", "repository_id", repository_id, "plugin_id", plugin_id);
    if (call->pending_ctx == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    memset(&job, 0, sizeof(job));
    job.kind = plugin_id != NULL ? FETCH_VERSIONS : FETCH_CATALOG;
    job.repository_id = repository_id;
    job.plugin_id = plugin_id;
    job.force = 1; /* an operator asked: try even when the breaker is open */
    fetcher_submit(call->app->fetcher, &job, call->edge.base, sync_done, call);
    return RD_PENDING;
}

/* ---- get / list / stat ----------------------------------------------------- */

/* Every repository as a document for the query engine: local first, then the
 * remotes by priority (new array). */
static rd_status all_repositories(api_call *call, json_t **out, rd_error *err)
{
    json_t *docs = json_array(), *recs = NULL, *rec;
    size_t i;
    rd_status rc = remote_list(call->app->st, &recs, err);
    if (rc != RD_OK) {
        json_decref(docs);
        return rc;
    }
    json_array_append_new(docs, local_doc(call));
    json_array_foreach(recs, i, rec)
    {
        json_array_append_new(docs, repository_doc(call, rec));
    }
    json_decref(recs);
    *out = docs;
    return RD_OK;
}

rd_status api_repository_get(api_call *call, json_t **out, rd_error *err)
{
    const char *repository_id = NULL;
    rd_status rc = api_check_keys(call->body, id_keys, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = find_repository(call, repository_id, out, err);
    if (rc == RD_OK) {
        rc = api_project_only(json_object_get(call->body, "only"), &query_schema_repository, out,
                              err);
        if (rc != RD_OK) {
            json_decref(*out);
            *out = NULL;
        }
    }
    return rc;
}

rd_status api_repository_list(api_call *call, json_t **out, rd_error *err)
{
    static const char *const keys[] = {"query", "repository_id", "name", "repository_type", NULL};
    json_t *eq = json_object(), *docs = NULL;
    query *q = NULL;
    rd_status rc = api_check_keys(call->body, keys, err);
    if (rc == RD_OK)
        rc = api_eq_filters(call->body, keys + 1, eq, err); /* all but "query" */
    if (rc == RD_OK)
        rc = query_compile(json_object_get(call->body, "query"), eq, &query_schema_repository, &q,
                           err);
    if (rc == RD_OK)
        rc = all_repositories(call, &docs, err);
    if (rc == RD_OK)
        rc = query_run(q, docs, out, err);
    query_free(q);
    json_decref(eq);
    json_decref(docs);
    return rc;
}

rd_status api_repository_stat(api_call *call, json_t **out, rd_error *err)
{
    static const char *const keys[] = {"query", NULL};
    json_t *docs = NULL, *qv;
    rd_status rc = api_check_keys(call->body, keys, err);
    if (rc != RD_OK)
        return rc;
    qv = json_object_get(call->body, "query");
    if (qv == NULL || json_is_null(qv))
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = query)");
    if (!json_is_object(qv))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query, type = object)");
    rc = all_repositories(call, &docs, err);
    if (rc == RD_OK)
        rc = query_stat(qv, &query_schema_repository, docs, out, err);
    json_decref(docs);
    return rc;
}
