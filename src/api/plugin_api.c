/*
 * plugin_api.c - handlers of /repository[/v1]/plugin/<verb>.
 *
 * Tenancy: a caller reads the local plugins of its own (effective) domain and
 * of the domains listed in auth.public_domains; it writes only those of its
 * own domain.  A plugin that the caller cannot read answers exactly like a
 * missing one, so no domain learns of another's plugins.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "plugin.h"
#include "federation.h"
#include "log.h"
#include "merged_read.h"
#include "fetcher.h"
#include "query.h"
#include "registry.h"
#include "remote.h"
#include "util.h"

static rd_status find_readable(api_call *call, const char *plugin_id, json_t **out, rd_error *err)
{
    return api_resource_find_readable(call, &resource_plugin, plugin_id, out, err);
}

static json_t *view(api_call *call, const json_t *record)
{
    return api_resource_view(call, &resource_plugin, record);
}

/* The outbound allow-list (SPEC 9): a record whose registry host (from
 * registry_url, or ECR's account_id and region) repod may not connect to,
 * or whose ECR account_id / region is malformed, is refused with 400
 * ERROR_INVALID_PARAMETER naming the key; nothing is connected. */
static rd_status check_outbound(const api_call *call, const json_t *record, rd_error *err)
{
    registry_target t;
    rd_status rc = registry_resolve_target(
        call->app->conf, json_string_value(json_object_get(record, "registry_type")),
        json_string_value(json_object_get(record, "registry_url")),
        json_object_get(record, "registry_config"),
        json_string_value(json_object_get(record, "image")), &t, err);
    registry_target_clear(&t);
    return rc == RD_ERR_INVALID_PARAMETER ? rc : RD_OK;
}

/* registry.verify_on_register: the image's tags have been read. */
static void register_verified(const fetch_result *res, void *arg)
{
    api_call *call = arg;
    json_t *record = call->pending_ctx, *out = NULL;
    rd_error err = res->err;
    rd_status rc = res->rc;
    call->pending_ctx = NULL;
    if (rc == RD_OK && json_array_size(res->value) == 0)
        rc = rd_fail(&err, RD_ERR_NO_IMAGE_IN_REGISTRY,
                     "No image in the registry. (image = %s, reason = it has no tags)",
                     json_string_value(json_object_get(record, "image")));
    if (rc == RD_OK)
        rc = api_resource_insert(call, record, &out, &err);
    json_decref(record);
    api_call_finish(call, rc, out, &err);
}

rd_status api_plugin_register(api_call *call, json_t **out, rd_error *err)
{
    json_t *record = NULL, *existing = NULL;
    rd_status rc = api_resource_build(call, &record, err);
    if (rc == RD_OK)
        rc = check_outbound(call, record, err);
    if (rc == RD_OK && call->app->conf->verify_on_register) {
        /* Refuse a duplicate before asking the registry; the insert below
         * checks again, atomically. */
        const char *pid = json_string_value(json_object_get(record, "plugin_id"));
        if (catalog_plugin_get(call->app->cat, call->domain_id, pid, &existing, err) == RD_OK) {
            rc = rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES,
                         "Duplicated value. (key = plugin_id, value = %s)", pid);
            json_decref(existing);
            json_decref(record); /* pid points into record */
            return rc;
        }
        fetch_job job;
        memset(&job, 0, sizeof(job));
        job.kind = FETCH_TAGS;
        job.domain_id = call->domain_id;
        job.plugin_id = pid;
        job.plugin = record;
        call->pending_ctx = record;
        fetcher_submit(call->app->fetcher, &job, call->edge.base, register_verified, call);
        return RD_PENDING;
    }
    if (rc == RD_OK)
        rc = api_resource_insert(call, record, out, err);
    json_decref(record);
    return rc;
}

/* update: the plugin's own checks, then the outbound allow-list when a
 * registry field was named. */
static rd_status modify_update(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    api_modify_args *m = ud;
    rd_status rc = api_modify_update(ud, current, updated, err);
    if (rc == RD_OK && (json_object_get(m->req, "registry_url") != NULL ||
                        json_object_get(m->req, "registry_type") != NULL ||
                        json_object_get(m->req, "registry_config") != NULL ||
                        json_object_get(m->req, "image") != NULL)) {
        rc = check_outbound(m->call, *updated, err);
        if (rc != RD_OK) {
            json_decref(*updated);
            *updated = NULL;
        }
    }
    return rc;
}

rd_status api_plugin_update(api_call *call, json_t **out, rd_error *err)
{
    return api_resource_modify(call, modify_update, NULL, out, err);
}

rd_status api_plugin_deregister(api_call *call, json_t **out, rd_error *err)
{
    const char *plugin_id = json_string_value(json_object_get(call->body, "plugin_id"));
    rd_status rc = api_resource_delete(call, err);
    if (rc != RD_OK)
        return rc;
    /* a plugin registered later under this id may point at another image */
    if (remote_tags_forget(call->app->st, call->domain_id, plugin_id, err) != RD_OK)
        LOG_WARN("deregister %s: cannot drop its cached versions: %s", plugin_id, err->message);
    *out = json_object();
    return RD_OK;
}

/* The end of a get answered by a remote tier (federation_find_item). */
static void remote_get_done(api_call *call, void *ud, federation_found *found, rd_status rc,
                            const rd_error *err)
{
    rd_error e;
    (void)ud;
    if (rc == RD_ERR_NOT_FOUND) { /* in no repository: the plugins' own code */
        rc = rd_fail(&e, RD_ERR_NO_PLUGIN, "Plugin not found. (plugin_id = %s)",
                     json_string_value(json_object_get(call->body, "plugin_id")));
        err = &e;
    }
    federation_get_finish(call, &resource_plugin, found, rc, err);
}

static void remote_versions_done(api_call *call, void *ud, json_t *value, rd_status rc,
                                 const rd_error *err)
{
    (void)ud;
    api_call_finish(call, rc, rc == RD_OK ? json_incref(value) : NULL, err);
}

/* Shared by get and get-versions: the local repository first (unless
 * another repository is named), then the remote ones by priority. */
static rd_status find_plugin(api_call *call, int want_versions, json_t **out, rd_error *err)
{
    const char *plugin_id = NULL, *repository_id = NULL;
    json_t *record = NULL, *doc = NULL;
    int search_local, search_remote;
    rd_status rc = plugin_check_id_request(call->body, 1, err);
    if (rc == RD_OK)
        rc = api_req_string(call->body, "plugin_id", &plugin_id, err);
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "repository_id", &repository_id, err);
    if (rc != RD_OK)
        return rc;
    search_local =
        repository_id == NULL || strcmp(repository_id, catalog_local_id(call->app->cat)) == 0;
    search_remote = !search_local || repository_id == NULL;
    if (search_local && !want_versions) {
        /* without a projection the model's ready bytes are the answer */
        const json_t *only = json_object_get(call->body, "only");
        int as_is = only == NULL || json_is_null(only);
        rc = api_resource_find_view(call, &resource_plugin, plugin_id, &doc,
                                    as_is ? &call->ready : NULL, err);
        if (rc == RD_OK && call->ready != NULL)
            return RD_OK; /* *out stays NULL: api_call_finish sends the bytes */
    } else
        rc = search_local ? find_readable(call, plugin_id, &record, err) : RD_ERR_NOT_FOUND;
    if (rc == RD_ERR_NOT_FOUND && search_remote)
        return want_versions ? federation_remote_versions(call, plugin_id, repository_id,
                                                          remote_versions_done, NULL, err)
                             : federation_find_item(call, &resource_plugin, plugin_id,
                                                    repository_id, remote_get_done, NULL, err);
    if (rc == RD_ERR_NOT_FOUND)
        return rd_fail(err, RD_ERR_NO_PLUGIN, "Plugin not found. (plugin_id = %s)", plugin_id);
    if (rc != RD_OK)
        return rc;
    if (want_versions) {
        rc = federation_local_versions(call, record, remote_versions_done, NULL, err);
        json_decref(record);
        return rc;
    }
    if (doc == NULL)
        doc = view(call, record);
    json_decref(record);
    rc = api_project_only(json_object_get(call->body, "only"), &query_schema_plugin, &doc, err);
    if (rc != RD_OK) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return RD_OK;
}

rd_status api_plugin_get(api_call *call, json_t **out, rd_error *err)
{
    return find_plugin(call, 0, out, err);
}

rd_status api_plugin_get_versions(api_call *call, json_t **out, rd_error *err)
{
    return find_plugin(call, 1, out, err);
}

static const char *const list_keys[] = {
    "query",        "plugin_id", "name",          "state",         "resource_type",
    "service_type", "provider",  "registry_type", "repository_id", NULL};

rd_status api_plugin_list(api_call *call, json_t **out, rd_error *err)
{
    static const char *const eq_keys[] = {"plugin_id", "name",          "state", "resource_type",
                                          "provider",  "registry_type", NULL};
    const char *repository_id = NULL, *service_type = NULL;
    json_t *eq = json_object();
    rd_status rc = api_check_keys(call->body, list_keys, err);

    if (rc == RD_OK)
        rc = api_eq_filters(call->body, eq_keys, eq, err);
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "service_type", &service_type, err);
    if (rc == RD_OK && service_type != NULL && json_object_get(eq, "resource_type") == NULL)
        json_object_set_new(eq, "resource_type", json_string(service_type));
    if (rc == RD_OK)
        rc = api_opt_string(call->body, "repository_id", &repository_id, err);
    if (rc == RD_OK)
        rc = merged_list(call, api_resource_source(&resource_plugin),
                         json_object_get(call->body, "query"), eq, repository_id, out, err);
    json_decref(eq);
    return rc;
}

rd_status api_plugin_stat(api_call *call, json_t **out, rd_error *err)
{
    return api_resource_stat(call, out, err);
}
