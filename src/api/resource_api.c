/*
 * resource_api.c - the handlers every resource shares, parameterised by the
 * route's resource description (call->res, include/resource.h): register,
 * update, deregister, enable, disable, and the local tier's get, list and
 * stat; plus the tenancy helpers the plugin handlers build on.
 *
 * Tenancy: a caller reads the local documents of its own (effective)
 * domain and of the domains listed in auth.public_domains; it writes only
 * those of its own domain.  A document the caller cannot read answers
 * exactly like a missing one.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "catalog.h"
#include "federation.h"
#include "merged_read.h"
#include "query.h"
#include "remote.h"
#include "remote_records.h"
#include "util.h"

size_t api_readable_domains(const api_call *call, const char **out, size_t max)
{
    const repod_conf *conf = call->app->conf;
    size_t n = 0;
    if (call->domain_id[0] != '\0' && n < max)
        out[n++] = call->domain_id;
    for (size_t i = 0; i < conf->public_domains_count && n < max; i++)
        if (strcmp(conf->public_domains[i], call->domain_id) != 0)
            out[n++] = conf->public_domains[i];
    return n;
}

rd_status api_resource_find_readable(api_call *call, const resource_desc *res, const char *id,
                                     json_t **out, rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    for (size_t i = 0; i < n; i++) {
        rd_status rc = catalog_get(call->app->cat, res, domains[i], id, out, err);
        if (rc != RD_ERR_NOT_FOUND)
            return rc;
    }
    return RD_ERR_NOT_FOUND;
}

json_t *api_resource_view(api_call *call, const resource_desc *res, const json_t *record)
{
    return res->view(record, catalog_local_info(call->app->cat));
}

rd_status api_resource_find_view(api_call *call, const resource_desc *res, const char *id,
                                 json_t **out, readmodel_doc **ready, rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    for (size_t i = 0; i < n; i++) {
        readmodel_doc *d = catalog_view(call->app->cat, res, domains[i], id);
        json_t *record = NULL;
        rd_status rc;
        if (d != NULL && ready != NULL) {
            *ready = d;
            return RD_OK;
        }
        if (d != NULL) {
            *out = readmodel_doc_decode(d);
            readmodel_doc_release(d);
            return *out != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        }
        if (catalog_res_whole(call->app->cat, res))
            continue; /* the model holds every local record: not in this domain */
        rc = catalog_get(call->app->cat, res, domains[i], id, &record, err);
        if (rc == RD_OK) {
            *out = api_resource_view(call, res, record);
            json_decref(record);
            return *out != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        }
        if (rc != RD_ERR_NOT_FOUND)
            return rc;
    }
    return RD_ERR_NOT_FOUND;
}

rd_status api_resource_write_missing(api_call *call, const resource_desc *res, const char *id,
                                     api_remote_owner_fn remote, rd_error *err)
{
    json_t *other = NULL;
    rd_status rc = api_resource_find_readable(call, res, id, &other, err);
    json_decref(other);
    if (rc == RD_OK)
        return rd_fail(err, RD_ERR_PERMISSION_DENIED,
                       "Permission denied. (%s = %s, reason = owned by another domain)",
                       res->id_field, id);
    if (rc == RD_ERR_NOT_FOUND && remote != NULL)
        rc = remote(call, id, err);
    if (rc != RD_ERR_NOT_FOUND)
        return rc;
    return rd_fail(err, RD_ERR_NOT_FOUND, "Value not found. (%s = %s)", res->id_field, id);
}

rd_status api_resource_insert(api_call *call, const json_t *record, json_t **out, rd_error *err)
{
    rd_status rc = catalog_insert(call->app->cat, call->res, record, err);
    if (rc == RD_OK)
        *out = api_resource_view(call, call->res, record);
    return rc;
}

rd_status api_resource_build(api_call *call, json_t **record, rd_error *err)
{
    char now[32];
    resource_ctx ctx;
    util_now_iso8601(now, sizeof(now));
    ctx.domain_id = call->domain_id;
    ctx.now = now;
    ctx.default_urls = call->app->conf->registry_default_urls;
    return call->res->build_record(call->body, &ctx, record, err);
}

rd_status api_resource_register(api_call *call, json_t **out, rd_error *err)
{
    json_t *record = NULL;
    rd_status rc = api_resource_build(call, &record, err);
    if (rc == RD_OK)
        rc = api_resource_insert(call, record, out, err);
    json_decref(record);
    return rc;
}

rd_status api_modify_update(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    api_modify_args *m = ud;
    return m->call->res->apply_update(current, m->req, m->now, updated, err);
}

static rd_status modify_state(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    api_modify_args *m = ud;
    json_t *next = json_deep_copy(current);
    if (next == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    json_object_set_new(next, "state", json_string(m->state));
    json_object_set_new(next, "updated_at", json_string(m->now));
    *updated = next;
    return RD_OK;
}

rd_status api_resource_modify(api_call *call, catalog_modify_fn fn, const char *state, json_t **out,
                              rd_error *err)
{
    char now[32];
    const resource_desc *res = call->res;
    const char *id = NULL;
    json_t *record = NULL;
    api_modify_args m;
    rd_status rc;

    if (fn == NULL) { /* enable / disable: an id-only request */
        fn = modify_state;
        rc = catalog_check_id_request(res, call->body, 0, err);
        if (rc != RD_OK)
            return rc;
    }
    rc = api_req_string(call->body, res->id_field, &id, err);
    if (rc != RD_OK)
        return rc;
    util_now_iso8601(now, sizeof(now));
    m.call = call;
    m.req = call->body;
    m.now = now;
    m.state = state;
    rc = catalog_modify(call->app->cat, res, call->domain_id, id, fn, &m, &record, err);
    if (rc == RD_ERR_NOT_FOUND)
        return api_resource_write_missing(call, res, id, call->remote_owner, err);
    if (rc == RD_OK)
        *out = api_resource_view(call, res, record);
    json_decref(record);
    return rc;
}

rd_status api_resource_delete(api_call *call, rd_error *err)
{
    const resource_desc *res = call->res;
    const char *id = NULL;
    rd_status rc = catalog_check_id_request(res, call->body, 0, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, res->id_field, &id, err);
    if (rc == RD_OK)
        rc = catalog_delete(call->app->cat, res, call->domain_id, id, err);
    if (rc == RD_ERR_NOT_FOUND)
        return api_resource_write_missing(call, res, id, call->remote_owner, err);
    return rc;
}

rd_status api_resource_update(api_call *call, json_t **out, rd_error *err)
{
    return api_resource_modify(call, api_modify_update, NULL, out, err);
}

rd_status api_resource_enable(api_call *call, json_t **out, rd_error *err)
{
    return api_resource_modify(call, NULL, "ENABLED", out, err);
}

rd_status api_resource_disable(api_call *call, json_t **out, rd_error *err)
{
    return api_resource_modify(call, NULL, "DISABLED", out, err);
}

rd_status api_resource_deregister(api_call *call, json_t **out, rd_error *err)
{
    rd_status rc = api_resource_delete(call, err);
    if (rc == RD_OK)
        *out = json_object();
    return rc;
}

/* 1 when repository_id (NULL = none) names a repository other than the
 * local one: the local tier holds nothing of it. */
static int names_other_repository(api_call *call, const char *repository_id)
{
    return repository_id != NULL && strcmp(repository_id, catalog_local_id(call->app->cat)) != 0;
}

static int no_remotes(api_call *call);

/* The end of a get answered by a remote tier (federation_find_item). */
static void remote_item_done(api_call *call, void *ud, federation_found *found, rd_status rc,
                             const rd_error *err)
{
    (void)ud;
    federation_get_finish(call, call->res, found, rc, err);
}

rd_status api_resource_remote_owner(api_call *call, const char *id, rd_error *err)
{
    json_t *other = NULL;
    rd_status rc = federation_find_cached_item(call->app, call->res, id, &other, err);
    if (rc == RD_OK) {
        rc = rd_fail(err, RD_ERR_NOT_LOCAL_PLUGIN,
                     "%s is not local. (%s = %s, repository_id = %s, repository = %s)",
                     call->res->name, call->res->id_field, id,
                     json_string_value(json_object_get(other, "repository_id")),
                     json_string_value(json_object_get(other, "name")));
        json_decref(other);
    }
    return rc;
}

rd_status api_resource_get(api_call *call, json_t **out, rd_error *err)
{
    const resource_desc *res = call->res;
    query_schema schema = resource_query_schema(res);
    const char *id = NULL, *repository_id = NULL;
    const json_t *only = json_object_get(call->body, "only");
    int as_is = only == NULL || json_is_null(only);
    json_t *doc = NULL;
    rd_status rc = catalog_check_id_request(res, call->body, 1, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, res->id_field, &id, err);
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "repository_id", &repository_id, err);
    if (rc != RD_OK)
        return rc;
    /* without a projection the model's ready bytes are the answer */
    rc = names_other_repository(call, repository_id)
             ? RD_ERR_NOT_FOUND
             : api_resource_find_view(call, res, id, &doc, as_is ? &call->ready : NULL, err);
    if (rc == RD_ERR_NOT_FOUND && (names_other_repository(call, repository_id) ||
                                   (repository_id == NULL && !no_remotes(call))))
        /* then the remote tiers, by precedence */
        return federation_find_item(call, res, id, repository_id, remote_item_done, NULL, err);
    if (rc == RD_ERR_NOT_FOUND)
        return rd_fail(err, RD_ERR_NOT_FOUND, "Value not found. (%s = %s)", res->id_field, id);
    if (rc != RD_OK || call->ready != NULL)
        return rc; /* with ready, *out stays NULL: api_call_finish sends the bytes */
    rc = api_project_only(only, &schema, &doc, err);
    if (rc == RD_OK)
        *out = doc;
    else
        json_decref(doc);
    return rc;
}

/* ---- the tiers of merged reads (merged_read.h) ------------------------------ */

static const char *local_id(api_call *call)
{
    return catalog_local_id(call->app->cat);
}

/* The local tier's answer to q over the caller's readable domains (own
 * domain, then auth.public_domains). */
static rd_status local_list(api_call *call, const query *q, json_t **out, rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    return catalog_res_query_views(call->app->cat, call->res, domains, n, q, out, err);
}

static rd_status local_list_bytes(api_call *call, const query *q, char **body, size_t *len,
                                  rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    return catalog_res_query_bytes(call->app->cat, call->res, domains, n, q, body, len, err);
}

static rd_status local_matches(api_call *call, const query *q, json_t **out, rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    return catalog_res_collect_views(call->app->cat, call->res, domains, n, q, out, NULL, err);
}

static rd_status local_stat(api_call *call, const json_t *stat_q, json_t **out, rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    return catalog_res_stat_views(call->app->cat, call->res, domains, n, stat_q, out, err);
}

static rd_status local_tally(api_call *call, const query_stat_groups *plan, query_stat_tally *tally,
                             int *counted, rd_error *err)
{
    const char *domains[API_MAX_DOMAINS];
    size_t n = api_readable_domains(call, domains, API_MAX_DOMAINS);
    return catalog_res_stat_tally(call->app->cat, call->res, domains, n, plan, tally, counted, err);
}

/* 1 when no remote repository is registered (a failure to tell counts as
 * "some": the merged path then reports it). */
static int no_remotes(api_call *call)
{
    remote_records *recs = NULL;
    rd_error e;
    int none = remote_records_get(call->app->st, &recs, &e) == RD_OK &&
               json_array_size(remote_records_array(recs)) == 0;
    if (recs != NULL)
        remote_records_release(recs);
    return none;
}

static const merged_source plugin_source = {
    .res = &resource_plugin,
    .local_id = local_id,
    .local_list = local_list,
    .local_list_bytes = local_list_bytes,
    .local_matches = local_matches,
    .local_stat = local_stat,
    .local_tally = local_tally,
    .no_remotes = no_remotes,
    .gather = federation_gather,
};

static const merged_source dashboard_source = {
    .res = &resource_dashboard,
    .local_id = local_id,
    .local_list = local_list,
    .local_list_bytes = local_list_bytes,
    .local_matches = local_matches,
    .local_stat = local_stat,
    .local_tally = local_tally,
    .no_remotes = no_remotes,
    .gather = federation_gather,
};

const merged_source *api_resource_source(const resource_desc *res)
{
    if (res == &resource_plugin)
        return &plugin_source;
    return &dashboard_source;
}

rd_status api_resource_list(api_call *call, json_t **out, rd_error *err)
{
    const resource_desc *res = call->res;
    const char *keys[32];
    const char *repository_id = NULL;
    size_t nkeys = 0;
    json_t *eq = json_object();
    rd_status rc;

    for (size_t i = 0; res->list_eq_keys[i] != NULL && nkeys < 29; i++)
        keys[nkeys++] = res->list_eq_keys[i];
    keys[nkeys++] = "query";
    keys[nkeys++] = "repository_id";
    keys[nkeys] = NULL;
    rc = api_check_keys(call->body, keys, err);
    if (rc == RD_OK)
        rc = api_eq_filters(call->body, res->list_eq_keys, eq, err);
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = merged_list(call, api_resource_source(res), json_object_get(call->body, "query"), eq,
                         repository_id, out, err);
    json_decref(eq);
    return rc;
}

rd_status api_stat_request(const json_t *body, const json_t **stat_query,
                           const char **repository_id, rd_error *err)
{
    static const char *const stat_keys[] = {"query", "repository_id", NULL};
    const json_t *qv = json_object_get(body, "query");
    rd_status rc = api_check_keys(body, stat_keys, err);
    if (rc != RD_OK)
        return rc;
    if (qv == NULL || json_is_null(qv))
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = query)");
    if (!json_is_object(qv))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query, type = object)");
    *stat_query = qv;
    return api_opt_string(body, "repository_id", repository_id, err);
}

rd_status api_resource_stat(api_call *call, json_t **out, rd_error *err)
{
    const char *repository_id = NULL;
    const json_t *qv = NULL;
    rd_status rc = api_stat_request(call->body, &qv, &repository_id, err);
    if (rc != RD_OK)
        return rc;
    return merged_stat(call, api_resource_source(call->res), qv, repository_id, out, err);
}
