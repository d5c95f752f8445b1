/*
 * request.c - request-body helpers shared by the API handlers.
 */
#include <string.h>

#include "api.h"

rd_status api_check_keys(const json_t *body, const char *const *allowed, rd_error *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val)
    {
        int ok = strcmp(key, "domain_id") == 0 || strcmp(key, "project_id") == 0;
        for (size_t i = 0; !ok && allowed[i] != NULL; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = %s)", key);
    }
    return RD_OK;
}

rd_status api_opt_string(const json_t *body, const char *key, const char **out, rd_error *err)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return RD_OK;
    if (!json_is_string(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s, type = string)", key);
    *out = json_string_value(v);
    return RD_OK;
}

rd_status api_req_string(const json_t *body, const char *key, const char **out, rd_error *err)
{
    rd_status rc = api_opt_string(body, key, out, err);
    if (rc != RD_OK)
        return rc;
    if (*out == NULL || **out == '\0')
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = %s)", key);
    return RD_OK;
}

rd_status api_eq_filters(const json_t *body, const char *const *keys, json_t *eq, rd_error *err)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        const char *v = NULL;
        rd_status rc = api_opt_string(body, keys[i], &v, err);
        if (rc != RD_OK)
            return rc;
        if (v != NULL)
            json_object_set_new(eq, keys[i], json_string(v));
    }
    return RD_OK;
}

int api_can_read_domain(const api_call *call, const char *domain_id)
{
    const repod_conf *conf = call->app->conf;
    if (call->domain_id[0] != '\0' && strcmp(call->domain_id, domain_id) == 0)
        return 1;
    for (size_t i = 0; i < conf->public_domains_count; i++)
        if (strcmp(conf->public_domains[i], domain_id) == 0)
            return 1;
    return 0;
}

rd_status api_project_only(const json_t *only, const query_schema *schema, json_t **doc,
                           rd_error *err)
{
    json_t *qobj = NULL, *docs = NULL, *res = NULL, *v;
    query *q = NULL;
    size_t i;
    rd_status rc;

    if (only == NULL || json_is_null(only))
        return RD_OK;
    if (!json_is_array(only))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = only, type = array of strings)");
    json_array_foreach(only, i, v)
    {
        if (!json_is_string(v))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = only, type = array of strings)");
    }
    qobj = json_pack("{s:O}", "only", only);
    docs = json_pack("[O]", *doc);
    rc = query_compile(qobj, NULL, schema, &q, err);
    if (rc == RD_OK)
        rc = query_run(q, docs, &res, err);
    if (rc == RD_OK) {
        json_t *first = json_array_get(json_object_get(res, "results"), 0);
        if (first != NULL) {
            json_decref(*doc);
            *doc = json_incref(first);
        }
    }
    query_free(q);
    json_decref(qobj);
    json_decref(docs);
    json_decref(res);
    return rc;
}
