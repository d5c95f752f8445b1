/*
 * dashboard.h - the dashboard template resource: request validation, record
 * building and response views (SPEC 14, DashboardTemplateInfo).
 *
 * A stored record holds exactly: template_id, name, state, template_type,
 * dashboards, labels, tags, domain_id, created_at, updated_at.  Responses
 * add repository_info (with endpoint, "" for the local repository).
 *
 * The generic checks (unknown keys, types, required strings, ids) are the
 * plugin validator's (src/catalog/fields.h), so messages read alike.
 */
#ifndef REPOD_DASHBOARD_H
#define REPOD_DASHBOARD_H

#include <jansson.h>

#include "resource.h"
#include "status.h"

/* Validates a register request (borrowed) and builds a new record into
 * *record (new reference; NULL on failure).  Order of checks:
 *   1. unknown keys, in request order -> INVALID_PARAMETER "(key = foo)".
 *      Known: template_id, name, template_type, dashboards, labels, tags,
 *      and the ignored legacy domain_id, project_id.
 *   2. types in that order -> INVALID_PARAMETER_TYPE (template_id, name,
 *      template_type: string; dashboards: array; labels: array of strings;
 *      tags: object); null counts as absent.
 *   3. name absent, null or "" -> REQUIRED_PARAMETER.
 *   4. template_id, when given and not "", must pass the client-chosen id
 *      rules of a plugin_id (one image path component of at most 40 bytes)
 *      -> INVALID_PARAMETER naming template_id; absent or "", it is
 *      "template-" + 12 random hex digits.
 *   5. template_type (default MULTI): MULTI or SINGLE, else
 *      INVALID_PARAMETER naming template_type.
 * The record gets state ENABLED, dashboards [] / labels [] / tags {} when
 * absent, domain_id from ctx and created_at = updated_at = ctx->now.
 * RD_ERR_INTERNAL when ctx is incomplete or memory runs out. */
rd_status dashboard_build_record(const json_t *req, const resource_ctx *ctx, json_t **record,
                                 rd_error *err);

/* Validates an update request (borrowed) against record (borrowed) and
 * returns a new record in *updated (the old one is not modified).  Order:
 *   1. keys in request order: the register keys are known; state,
 *      created_at, updated_at and repository_info -> INVALID_PARAMETER
 *      "(key = state, reason = update cannot change it)"; any other key ->
 *      INVALID_PARAMETER "(key = foo)".
 *   2. types as for register.
 *   3. template_id required; must equal the record's, else
 *      INVALID_PARAMETER.
 *   4. name, when given, not "" (REQUIRED_PARAMETER); template_type, when
 *      given, MULTI or SINGLE.
 * name, template_type, dashboards, labels and tags are replaced whole by
 * deep copies; updated_at = now. */
rd_status dashboard_apply_update(const json_t *record, const json_t *req, const char *now,
                                 json_t **updated, rd_error *err);

/* A new response view: a deep copy of record plus repository_info (deep
 * copied; NULL gives {}) with endpoint ("" when absent).  NULL when record
 * is not an object or memory runs out. */
json_t *dashboard_view(const json_t *record, const json_t *repository_info);

/* The same in place on a record owned by the caller: repository_info is
 * shared by reference (one private copy per answer). */
void dashboard_view_in_place(json_t *record, json_t *repository_info);

/* Validates a dashboard template received from an upstream (borrowed):
 * template_id follows the id rules, name, state and template_type are
 * non-empty strings, dashboards and labels lists and tags an object when
 * present.  Other fields are kept as received.  RD_ERR_UPSTREAM_BAD_RESPONSE
 * naming the problem (and the template_id when there is one). */
rd_status dashboard_check_upstream(const json_t *record, rd_error *err);

#endif
