/*
 * repository_api.c - handlers of /repository/v1/repository/<verb>.
 *
 * The local repository is created at first start and cannot be registered a
 * second time nor deregistered while it exists; remote repositories are
 * managed here too once federation is configured.
 */
#include <string.h>

#include "api.h"
#include "query.h"

static const char *const register_keys[] = {"name",     "repository_type", "endpoint", "priority",
                                            "upstream", "cache",           NULL};

rd_status api_repository_register(api_call *call, json_t **out, rd_error *err)
{
    const char *type = NULL, *name = NULL;
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
                       catalog_local_id(call->app->cat));
    if (strcmp(type, "remote") == 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = repository_type, reason = remote repositories "
                       "are not supported by this server)");
    return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                   "Invalid parameter. (key = repository_type, value = %s)", type);
}

/* Finds repository_id among the repositories the server knows: *out gets the
 * record (new reference). */
static rd_status find_repository(api_call *call, const char *repository_id, json_t **out,
                                 rd_error *err)
{
    if (strcmp(repository_id, catalog_local_id(call->app->cat)) == 0) {
        *out = catalog_local_record(call->app->cat);
        return RD_OK;
    }
    return rd_fail(err, RD_ERR_NOT_FOUND, "Value not found. (repository_id = %s)", repository_id);
}

static const char *const id_keys[] = {"repository_id", "only", NULL};

rd_status api_repository_update(api_call *call, json_t **out, rd_error *err)
{
    static const char *const update_keys[] = {"repository_id", "name",     "priority",
                                              "cache",         "upstream", NULL};
    const char *repository_id = NULL;
    json_t *rec = NULL;
    rd_status rc = api_check_keys(call->body, update_keys, err);
    (void)out;
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = find_repository(call, repository_id, &rec, err);
    if (rc != RD_OK)
        return rc;
    json_decref(rec);
    return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                   "Invalid parameter. (repository_id = %s, reason = the local repository is "
                   "configured by local_repository.name)",
                   repository_id);
}

rd_status api_repository_deregister(api_call *call, json_t **out, rd_error *err)
{
    const char *repository_id = NULL;
    json_t *rec = NULL;
    size_t count = 0;
    rd_status rc = api_check_keys(call->body, id_keys, err);
    (void)out;
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = find_repository(call, repository_id, &rec, err);
    if (rc != RD_OK)
        return rc;
    json_decref(rec);
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

/* Every repository as a document for the query engine (new array). */
static json_t *all_repositories(api_call *call)
{
    json_t *docs = json_array();
    json_array_append_new(docs, catalog_local_record(call->app->cat));
    return docs;
}

rd_status api_repository_get(api_call *call, json_t **out, rd_error *err)
{
    const char *repository_id = NULL;
    rd_status rc = api_check_keys(call->body, id_keys, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = find_repository(call, repository_id, out, err);
    return rc;
}

rd_status api_repository_list(api_call *call, json_t **out, rd_error *err)
{
    static const char *const keys[] = {"query", "repository_id", "name", "repository_type", NULL};
    json_t *eq = json_object(), *docs = NULL;
    query *q = NULL;
    rd_status rc = api_check_keys(call->body, keys, err);
    for (size_t i = 1; rc == RD_OK && keys[i] != NULL; i++) {
        const char *v = NULL;
        rc = api_opt_string(call->body, keys[i], &v, err);
        if (rc == RD_OK && v != NULL)
            json_object_set_new(eq, keys[i], json_string(v));
    }
    if (rc == RD_OK)
        rc = query_compile(json_object_get(call->body, "query"), eq, &query_schema_repository, &q,
                           err);
    if (rc == RD_OK) {
        docs = all_repositories(call);
        rc = query_run(q, docs, out, err);
    }
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
    docs = all_repositories(call);
    rc = query_stat(qv, &query_schema_repository, docs, out, err);
    json_decref(docs);
    return rc;
}
