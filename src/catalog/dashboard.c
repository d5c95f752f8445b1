/*
 * dashboard.c - the dashboard template resource (SPEC 14): validation of
 * register and update requests, stored records and response views.  The
 * order of checks is documented in dashboard.h; the checks themselves are
 * the shared ones of fields.h.
 */
#include "dashboard.h"

#include <stdio.h>
#include <string.h>

#include "fields.h"
#include "util.h"

#define ID_PREFIX "template-"

/* clang-format off */
/* Keys of a register request, in the order their types are checked. */
static const fields_rule register_keys[] = {
    {"template_id",   KT_STRING},
    {"name",          KT_STRING},
    {"template_type", KT_STRING},
    {"dashboards",    KT_ARRAY},
    {"labels",        KT_STRING_ARRAY},
    {"tags",          KT_OBJECT},
    {"domain_id",     KT_IGNORED},
    {"project_id",    KT_IGNORED},
    {NULL,            KT_IGNORED},
};
/* clang-format on */

/* Record fields that update never changes: named with a reason when sent. */
static const char *const update_immutable[] = {"state", "created_at", "updated_at",
                                               "repository_info", NULL};

static const char *const template_types[] = {"MULTI", "SINGLE", NULL};

/* template_type, when given (not NULL), must be one of template_types. */
static rd_status check_type(const char *type, rd_error *err)
{
    char buf[FIELDS_PRINTABLE_MAX + 4];
    if (type == NULL || fields_in_list(type, template_types))
        return RD_OK;
    return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                   "Invalid parameter. (key = template_type, value = %s, allowed = MULTI | SINGLE)",
                   fields_printable(type, buf, sizeof(buf)));
}

rd_status dashboard_build_record(const json_t *req, const resource_ctx *ctx, json_t **record,
                                 rd_error *err)
{
    char template_id[FIELDS_ID_MAX + 1];
    const char *name, *type, *chosen;
    json_t *rec = NULL;
    rd_status rc;

    if (record != NULL)
        *record = NULL;
    if (record == NULL || ctx == NULL || ctx->domain_id == NULL || ctx->now == NULL) {
        rc = fields_internal(err);
        goto done;
    }
    if ((rc = fields_check_body(req, register_keys, NULL, err)) != RD_OK)
        goto done;
    name = fields_str(req, "name");
    if ((rc = fields_check_required(name, "name", err)) != RD_OK)
        goto done;
    chosen = fields_str(req, "template_id");
    if (chosen != NULL && chosen[0] != '\0') {
        if ((rc = fields_check_id("template_id", chosen, err)) != RD_OK)
            goto done;
        snprintf(template_id, sizeof(template_id), "%s", chosen);
    } else if (util_make_id(ID_PREFIX, template_id, sizeof(template_id)) != 0) {
        rc = fields_internal(err);
        goto done;
    }
    type = fields_str(req, "template_type");
    if ((rc = check_type(type, err)) != RD_OK)
        goto done;
    rec = json_object();
    if (rec == NULL || fields_set_string(rec, "template_id", template_id) != 0 ||
        fields_set_string(rec, "name", name) != 0 ||
        fields_set_string(rec, "state", "ENABLED") != 0 ||
        fields_set_string(rec, "template_type", type != NULL ? type : "MULTI") != 0 ||
        fields_set_copy(rec, "dashboards", req, json_array()) != 0 ||
        fields_set_copy(rec, "labels", req, json_array()) != 0 ||
        fields_set_copy(rec, "tags", req, json_object()) != 0 ||
        fields_set_string(rec, "domain_id", ctx->domain_id) != 0 ||
        fields_set_string(rec, "created_at", ctx->now) != 0 ||
        fields_set_string(rec, "updated_at", ctx->now) != 0) {
        rc = fields_internal(err);
        goto done;
    }
    *record = rec;
    rec = NULL;
done:
    json_decref(rec);
    return rc;
}

rd_status dashboard_apply_update(const json_t *record, const json_t *req, const char *now,
                                 json_t **updated, rd_error *err)
{
    static const char *const changeable[] = {"name",   "template_type", "dashboards",
                                             "labels", "tags",          NULL};
    const char *id, *stored, *name;
    json_t *out = NULL;
    rd_status rc;

    if (updated != NULL)
        *updated = NULL;
    if (updated == NULL || now == NULL || !json_is_object(record)) {
        rc = fields_internal(err);
        goto done;
    }
    if ((rc = fields_check_body(req, register_keys, update_immutable, err)) != RD_OK)
        goto done;
    id = fields_str(req, "template_id");
    if ((rc = fields_check_required(id, "template_id", err)) != RD_OK)
        goto done;
    stored = fields_str(record, "template_id");
    if (stored == NULL || strcmp(id, stored) != 0) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                     "Invalid parameter. (key = template_id, reason = does not match the "
                     "template)");
        goto done;
    }
    name = fields_str(req, "name");
    if ((name != NULL && (rc = fields_check_required(name, "name", err)) != RD_OK) ||
        (rc = check_type(fields_str(req, "template_type"), err)) != RD_OK)
        goto done;
    out = json_deep_copy(record);
    if (out == NULL || fields_apply_changes(out, req, changeable) != 0 ||
        fields_set_string(out, "updated_at", now) != 0) {
        rc = fields_internal(err);
        goto done;
    }
    *updated = out;
    out = NULL;
done:
    json_decref(out);
    return rc;
}

void dashboard_view_in_place(json_t *record, json_t *repository_info)
{
    json_t *info;
    if (!json_is_object(record))
        return;
    json_object_set(record, "repository_info", repository_info);
    info = json_object_get(record, "repository_info");
    if (json_is_object(info) && !json_is_string(json_object_get(info, "endpoint")))
        json_object_set_new(info, "endpoint", json_string(""));
}

json_t *dashboard_view(const json_t *record, const json_t *repository_info)
{
    json_t *view = json_is_object(record) ? json_deep_copy(record) : NULL;
    json_t *info = repository_info != NULL ? json_deep_copy(repository_info) : json_object();
    if (view != NULL && info != NULL)
        dashboard_view_in_place(view, info);
    json_decref(info);
    if (info == NULL) {
        json_decref(view);
        view = NULL;
    }
    return view;
}

rd_status dashboard_check_upstream(const json_t *record, rd_error *err)
{
    static const char *const strings[] = {"name", "state", "template_type", NULL};
    static const char *const lists[] = {"dashboards", "labels", NULL};
    const json_t *idv = json_object_get(record, "template_id");
    const char *id = json_string_value(idv);
    char who[96] = "";
    rd_error sub;
    rd_status rc = RD_OK;

    if (!json_is_object(record)) {
        rc = rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                     "Bad upstream response. (reason = a dashboard template is not an object)");
        goto done;
    }
    if (id == NULL || json_string_length(idv) != strlen(id) ||
        fields_check_id("template_id", id, &sub) != RD_OK) {
        rc = rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                     "Bad upstream response. (reason = dashboard template without a valid "
                     "template_id)");
        goto done;
    }
    snprintf(who, sizeof(who), ", template_id = %s", id);
    for (size_t i = 0; strings[i] != NULL && rc == RD_OK; i++) {
        const json_t *v = json_object_get(record, strings[i]);
        if (!json_is_string(v) || json_string_length(v) == 0)
            rc = rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                         "Bad upstream response. (reason = dashboard template without %s%s)",
                         strings[i], who);
    }
    for (size_t i = 0; lists[i] != NULL && rc == RD_OK; i++) {
        const json_t *v = json_object_get(record, lists[i]);
        if (v != NULL && !json_is_null(v) && !json_is_array(v))
            rc = rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                         "Bad upstream response. (reason = dashboard template %s is not a list%s)",
                         lists[i], who);
    }
    if (rc == RD_OK && json_object_get(record, "tags") != NULL &&
        !json_is_null(json_object_get(record, "tags")) &&
        !json_is_object(json_object_get(record, "tags")))
        rc = rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                     "Bad upstream response. (reason = dashboard template tags is not an "
                     "object%s)",
                     who);
done:
    return rc;
}
