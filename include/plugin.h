/*
 * plugin.h - the plugin resource: request validation and record building
 * (SPEC section 3).
 *
 * A stored plugin record holds: plugin_id, name, state, resource_type, image,
 * provider, registry_type, registry_url, registry_config, capability,
 * template, labels, tags, docs, domain_id, created_at, updated_at.  Responses
 * are made from a record by plugin_view(), which adds service_type
 * (= resource_type) and repository_info, and fills in docs ({}) for records
 * stored before docs existed.
 */
#ifndef REPOD_PLUGIN_H
#define REPOD_PLUGIN_H

#include <jansson.h>

#include "resource.h"
#include "status.h"

#define PLUGIN_IMAGE_MAX 40

/* domain_id: owner of the new plugin; now: ISO-8601 timestamp to use for
 * created_at/updated_at; default_urls: object registry_type -> default
 * registry_url (may be NULL). */
typedef resource_ctx plugin_ctx;

/* Validates a register request (a JSON object, borrowed) and builds a new
 * stored record into *record (a new reference owned by the caller; NULL on
 * failure).  Errors (first one found, message naming the key):
 * RD_ERR_REQUIRED_PARAMETER, RD_ERR_INVALID_PARAMETER (unknown key),
 * RD_ERR_INVALID_PARAMETER_TYPE, RD_ERR_INVALID_IMAGE_LENGTH,
 * RD_ERR_INVALID_IMAGE_FORMAT, RD_ERR_INVALID_REGISTRY_TYPE,
 * RD_ERR_INVALID_TEMPLATE_SCHEMA; RD_ERR_INTERNAL when ctx is incomplete or
 * memory runs out.
 *
 * Checking order (so the reported error is stable):
 *   1. unknown keys, in request order -> INVALID_PARAMETER "(key = foo)".
 *      Known: name, resource_type, service_type, image, provider,
 *      registry_type, registry_url, registry_config, capability, template,
 *      labels, tags, docs, plugin_id, and the ignored legacy domain_id,
 *      project_id (the domain comes from ctx).  state, created_at,
 *      repository_info ... are unknown here.
 *   2. types, in the order of that list -> INVALID_PARAMETER_TYPE
 *      "(key = labels, type = array)"; a labels element that is not a string
 *      gives "type = array of strings".  A JSON null counts as absent
 *      (proto3 JSON mapping), so it gets the default.
 *   3. service_type and resource_type both given and different ->
 *      INVALID_PARAMETER (key = service_type).
 *   4. required, in order name, resource_type (or service_type), image:
 *      absent, null or "" -> REQUIRED_PARAMETER.
 *   5. image: length, then format (plugin_check_image); then plugin_id,
 *      when given and not "", must pass plugin_check_id (else
 *      INVALID_PARAMETER naming plugin_id); absent or "", it is derived
 *      from image (plugin_id_from_image).
 *   6. registry_type (default DOCKER_HUB): exactly DOCKER_HUB,
 *      AWS_PRIVATE_ECR, HARBOR, GITHUB or GCP_PRIVATE_GCR, else
 *      INVALID_REGISTRY_TYPE.
 *   7. registry_url ("" counts as absent):
 *      - DOCKER_HUB: always registry.hub.docker.com; a given registry_url is
 *        accepted only when it is exactly that, else INVALID_PARAMETER.
 *      - other types: the given one, else ctx->default_urls[registry_type],
 *        else (GITHUB) ghcr.io, else REQUIRED_PARAMETER (key = registry_url).  A given one must be
 *        host[:port][/path] (DNS name or [IPv6], port 1-65535, path segments
 *        of [A-Za-z0-9._~-] other than "." and ".."), at most 255 chars, with
 *        no scheme and no whitespace, else INVALID_PARAMETER.
 *   8. registry_config: no credential-looking key at any depth ->
 *      INVALID_PARAMETER naming registry_config.<path>.  A key is compared
 *      lowercased with '_' and '-' removed; it is a credential when it
 *      contains password, passwd, secret, token, credential, privatekey,
 *      apikey or accesskey, or equals pwd, pass, auth, authorization or
 *      username (credentials live in the server config, SPEC 9).
 *   9. template (plugin_check_template).
 *
 * The record holds exactly: plugin_id, name, state ("ENABLED"),
 * resource_type, image, provider (default ""), registry_type, registry_url,
 * registry_config ({}), capability ({}), template ({}), labels ([]),
 * tags ({}), docs ({}), domain_id (ctx), created_at = updated_at = ctx->now.  Object
 * and array values are deep copies of the request's. */
rd_status plugin_build_record(const json_t *req, const plugin_ctx *ctx, json_t **record,
                              rd_error *err);

/* Validates an update request (borrowed) against the current record
 * (borrowed) and returns a new updated record in *updated (a new reference;
 * NULL on failure; the old record is not modified).  Only name, capability,
 * template, labels, tags, docs change (each replaced whole by a deep copy);
 * updated_at = now.  Order of checks:
 *   1. keys in request order: image, provider, registry_type, registry_url,
 *      registry_config, state, created_at, updated_at, repository_info ->
 *      INVALID_PARAMETER "(key = image, reason = update cannot change it)";
 *      other unknown keys -> INVALID_PARAMETER "(key = foo)".  Legacy
 *      domain_id / project_id are accepted and ignored.
 *   2. types as for register (plugin_id, name, resource_type, service_type:
 *      strings; capability, template, tags, docs: objects; labels: array of
 *      strings); null counts as absent (no change).
 *   3. plugin_id required; it must equal the record's plugin_id, else
 *      INVALID_PARAMETER.
 *   4. resource_type / service_type: accepted only when equal to the stored
 *      resource_type (no-op), else INVALID_PARAMETER naming the key.
 *   5. name, when given, must not be "" (REQUIRED_PARAMETER).
 *   6. template (plugin_check_template).
 * RD_ERR_INTERNAL when record is not an object, now is NULL or memory runs
 * out. */
rd_status plugin_apply_update(const json_t *record, const json_t *req, const char *now,
                              json_t **updated, rd_error *err);

/* Checks an image path: NULL or "" -> RD_ERR_REQUIRED_PARAMETER; more than
 * PLUGIN_IMAGE_MAX bytes -> RD_ERR_INVALID_IMAGE_LENGTH (message names the
 * length and the max; checked before the format); otherwise the format
 * (RD_ERR_INVALID_IMAGE_FORMAT with a reason): 1-3 '/'-separated components,
 * each of lowercase letters and digits joined by single '.', '_' or '-' (no
 * leading/trailing or doubled separator); no tag (':'), digest ('@') or
 * registry host (with 2+ components, a first component containing '.' or
 * equal to "localhost", as docker would read it). */
rd_status plugin_check_image(const char *image, rd_error *err);

/* Checks a plugin_id chosen by a client (or an upstream): the rules a
 * derived id meets, i.e. one image path component of at most
 * PLUGIN_IMAGE_MAX bytes made of lowercase letters and digits joined by
 * single '.', '_' or '-'.  NULL or "" -> RD_ERR_REQUIRED_PARAMETER; anything
 * else wrong -> RD_ERR_INVALID_PARAMETER "(key = plugin_id, ...)". */
rd_status plugin_check_id(const char *plugin_id, rd_error *err);

/* Writes the plugin_id of image (its last '/'-segment) into out, truncated
 * to size - 1 bytes; "" when image is NULL.  Does nothing when size is 0. */
void plugin_id_from_image(const char *image, char *out, size_t size);

/* Checks a template object (borrowed; NULL or null is fine, another
 * non-object is RD_ERR_INVALID_PARAMETER_TYPE).  Each template.<k> must be
 * an object, and its schema, when present, a structurally valid JSON Schema:
 * an object whose type (if any) is a type name (object, array, string,
 * number, integer, boolean, null) or a non-empty array of unique ones, whose
 * properties (if any) is an object of such schemas, whose required (if any)
 * is an array of strings, and whose items (if any) is a schema or an array
 * of schemas; nested schemas are checked the same way (up to 32 levels).
 * Else RD_ERR_INVALID_TEMPLATE_SCHEMA, e.g. "Invalid template schema.
 * (key = template.options, reason = required must be an array of strings)";
 * the reason names nested locations as properties.<p>.type etc. */
rd_status plugin_check_template(const json_t *tmpl, rd_error *err);

/* Validates a request (borrowed) that names one plugin (get, get-versions,
 * enable, disable, deregister): plugin_id (required string), and when
 * allow_repo is set also repository_id (string) and only (array of strings).
 * Order: unknown keys other than the legacy domain_id/project_id ->
 * RD_ERR_INVALID_PARAMETER; types -> RD_ERR_INVALID_PARAMETER_TYPE; plugin_id
 * absent, null or "" -> RD_ERR_REQUIRED_PARAMETER. */
rd_status plugin_check_id_request(const json_t *req, int allow_repo, rd_error *err);

/* Returns a new response object (caller owns it): a deep copy of record
 * plus service_type (= resource_type) and repository_info (borrowed, deep
 * copied in; NULL gives {}), completed by plugin_view_complete().  NULL when
 * record is not an object or memory runs out. */
json_t *plugin_view(const json_t *record, const json_t *repository_info);

/* Completes a response view in place with what the published PluginInfo
 * requires of every answer: docs ({} when absent or null) and
 * repository_info.endpoint ("" when absent; repository_info is modified in
 * place, so it must not be shared with other threads).  Does nothing when
 * view is not an object. */
void plugin_view_complete(json_t *view);

/* Turns record (owned by the caller and not shared) into its response view
 * in place: adds service_type and repository_info (the given object, shared
 * by reference: use one private copy per request), then
 * plugin_view_complete().  For bulk reads, where
 * plugin_view's deep copy of every record would dominate. */
void plugin_view_in_place(json_t *record, json_t *repository_info);

/* qsort comparator over json_t * plugin documents: the default order of a
 * repository's plugins (name, then plugin_id, then domain_id). */
int plugin_cmp_default_order(const void *a, const void *b);

#endif
