/*
 * api.h - the API layer: the route table, caller identity and tenancy rules,
 * request body parsing, and the handlers of each resource.
 *
 * The HTTP edge hands every POST /repository[/v1]/<resource>/<verb> to
 * api_dispatch() as an api_call; the API layer answers through
 * api_call_finish(), which hands the result back to the edge.  The API layer
 * never touches libevent.
 */
#ifndef REPOD_API_H
#define REPOD_API_H

#include <jansson.h>

#include "app.h"
#include "auth.h"
#include "catalog.h"
#include "query.h"
#include "readmodel.h"
#include "status.h"

typedef struct api_call api_call;

/* Tells whether id belongs to a remote tier: an error naming it, or
 * RD_ERR_NOT_FOUND when it does not. */
typedef rd_status (*api_remote_owner_fn)(api_call *call, const char *id, rd_error *err);

/* The edge's side of a call: how to send the answer.  reply() receives the
 * HTTP status, a body (new reference, stolen) and extra headers (borrowed
 * NULL-terminated name/value pairs, may be NULL).  reply_bytes() (NULL when
 * the edge has none) sends a body already serialised as compact JSON, the
 * same way: body (len bytes) followed by tail (tlen bytes; NULL/0 for
 * none), both borrowed, so a read model document's two parts go out
 * without being joined first. */
struct event_base;

typedef struct {
    void (*reply)(void *edge_ctx, int http_status, json_t *body, const char *const *headers);
    void *edge_ctx;
    struct event_base *base; /* the worker's event loop, for handlers that wait */
    void (*reply_bytes)(void *edge_ctx, int http_status, const char *body, size_t len,
                        const char *tail, size_t tlen, const char *const *headers);
} api_edge;

struct api_call {
    app *app; /* borrowed */
    api_edge edge;
    auth_identity who;                /* the caller */
    char domain_id[AUTH_NAME_MAX];    /* effective domain ("" when anonymous) */
    json_t *body;                     /* the request object (owned by the call) */
    const char *x_cache;              /* "HIT" | "MISS" | "STALE" | NULL: sent as X-Cache */
    char *x_partial;                  /* repository ids left out of a merged read, comma-separated
                                       * (owned; NULL = none): sent as X-Partial */
    void *pending_ctx;                /* a waiting handler's own state (it frees it) */
    const char *resource;             /* "plugin" | "repository" | ... (static) */
    const resource_desc *res;         /* the route's resource description (static;
                                       * NULL for repository routes) */
    api_remote_owner_fn remote_owner; /* the route's remote-tier owner check of a
                                       * write's id (NULL: the resource has no
                                       * remote tier yet) */
    const char *verb;                 /* "register", ... (static) */
    const char *id_key;               /* a write's id field ("plugin_id", ...); NULL for reads */
    readmodel_doc *ready;             /* a handler's answer as a read model document (owned;
                                       * NULL = the result json): its ready bytes are sent */
    char *ready_body;                 /* a handler's answer already serialised as compact JSON
                                       * (owned, malloc'd; NULL = none): sent as it is */
    size_t ready_len;
};

/* The route table for metrics labels: how many rows, the row of path (-1
 * when path is not an API route; both spellings give the same row), and the
 * resource and verb of row i (static strings). */
size_t api_route_count(void);
int api_route_index(const char *path);
void api_route_names(size_t i, const char **resource, const char **verb);

/* Handles one API request.  path is the URL path (no query string);
 * authorization the Authorization header value (NULL if absent); body/len
 * the raw request body.  Always ends in exactly one edge.reply() call (maybe
 * before returning).  Returns the effective domain for the access log via
 * domain_out (a copy, at least AUTH_NAME_MAX bytes). */
void api_dispatch(app *a, const api_edge *edge, const char *method, const char *path,
                  const char *authorization, const char *body, size_t len, char *domain_out);

/* Ends a call with rc/result: RD_OK sends result (stolen) with 200 (or, when
 * call->ready is set, that document's ready bytes, exactly what its view
 * would serialise to); anything
 * else sends the JSON error made from err.  A write (a route with an id_key)
 * also logs one audit line: verb, id, domain, the token's name and role, and
 * the outcome; never the token itself.  Frees the call. */
void api_call_finish(api_call *call, rd_status rc, json_t *result, const rd_error *err);

/* Builds {"detail": {"code": ..., "message": ...}} (new reference). */
json_t *api_error_body(rd_status code, const char *message);

/* Handlers: each validates its body and returns RD_OK with a new result in
 * *out, or an error in err.  A handler that must wait (upstream, registry)
 * returns RD_PENDING instead: it then owns the call and ends it later, on the
 * same event loop, with api_call_finish(). */
typedef rd_status (*api_handler_fn)(api_call *call, json_t **out, rd_error *err);

rd_status api_plugin_register(api_call *call, json_t **out, rd_error *err);
rd_status api_plugin_update(api_call *call, json_t **out, rd_error *err);
rd_status api_plugin_deregister(api_call *call, json_t **out, rd_error *err);
rd_status api_plugin_get(api_call *call, json_t **out, rd_error *err);
rd_status api_plugin_get_versions(api_call *call, json_t **out, rd_error *err);
rd_status api_plugin_list(api_call *call, json_t **out, rd_error *err);
rd_status api_plugin_stat(api_call *call, json_t **out, rd_error *err);

/* The handlers every resource shares (src/api/resource_api.c), for the
 * resource of the route (call->res): register / update / deregister /
 * enable / disable in the caller's domain (SPEC 3 rules: 409
 * ERROR_SAVE_UNIQUE_VALUES on an id clash, 403 on a document of a readable
 * other domain, 404 ERROR_NOT_FOUND "(<id_field> = x)"), and get / list /
 * stat over the LOCAL tier: the readable domains' documents from the
 * catalog's read model of the resource.  A repository_id other than the
 * local repository's gives get 404 ERROR_NOT_FOUND and list / stat an
 * empty set. */
rd_status api_resource_register(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_update(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_deregister(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_enable(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_disable(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_get(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_list(api_call *call, json_t **out, rd_error *err);
rd_status api_resource_stat(api_call *call, json_t **out, rd_error *err);

/* Building blocks of those handlers, for resources whose handlers add
 * steps of their own (plugins: registry checks, remote tiers). */

#define API_MAX_DOMAINS 64

/* The domains whose local documents the caller may read, own domain
 * first; returns how many were written to out (borrowed strings). */
size_t api_readable_domains(const api_call *call, const char **out, size_t max);

/* A readable local record of res: *out new reference; RD_ERR_NOT_FOUND. */
rd_status api_resource_find_readable(api_call *call, const resource_desc *res, const char *id,
                                     json_t **out, rd_error *err);

/* The response view of record (new), with the local repository_info. */
json_t *api_resource_view(api_call *call, const resource_desc *res, const json_t *record);

/* The view of a readable local document: from the catalog's read model,
 * else (a document the model left out) from the store.  *out gets a new
 * document; or, when ready is not NULL and the model holds it, *ready gets
 * the model's document (new reference) and *out stays NULL. */
rd_status api_resource_find_view(api_call *call, const resource_desc *res, const char *id,
                                 json_t **out, readmodel_doc **ready, rd_error *err);

/* Answers a write that found no document of the caller's domain: 403 when
 * a readable other domain holds it, else remote's answer (may be NULL),
 * else 404 ERROR_NOT_FOUND "Value not found. (<id_field> = id)". */
rd_status api_resource_write_missing(api_call *call, const resource_desc *res, const char *id,
                                     api_remote_owner_fn remote, rd_error *err);

/* Validates the register request of call->res and builds its record into
 * *record (new reference): the resource's build_record hook with the
 * caller's domain, the time now and the configured default registry URLs. */
rd_status api_resource_build(api_call *call, json_t **record, rd_error *err);

/* Stores record (borrowed) as a new document of call->res: *out its view. */
rd_status api_resource_insert(api_call *call, const json_t *record, json_t **out, rd_error *err);

/* What a catalog_modify_fn of the handlers receives as ud. */
typedef struct {
    const api_call *call;
    const json_t *req;
    const char *now;
    const char *state; /* enable/disable */
} api_modify_args;

/* catalog_modify_fn of update: call->res's apply_update hook. */
rd_status api_modify_update(void *ud, const json_t *current, json_t **updated, rd_error *err);

/* update (fn) or, with fn NULL, enable/disable to state: validates, modifies
 * the caller's document of call->res, *out its view; a missing one is
 * answered by api_resource_write_missing(call->remote_owner). */
rd_status api_resource_modify(api_call *call, catalog_modify_fn fn, const char *state, json_t **out,
                              rd_error *err);

/* deregister: validates and deletes the caller's document of call->res. */
rd_status api_resource_delete(api_call *call, rd_error *err);

/* Checks a stat request (SPEC 3: query required, an object; repository_id
 * optional string; no other keys but the legacy ones): *stat_query and
 * *repository_id (NULL when absent) are borrowed from body. */
rd_status api_stat_request(const json_t *body, const json_t **stat_query,
                           const char **repository_id, rd_error *err);

/* The remote owner check of call->res: an id that only a remote tier
 * holds -> 409 ERROR_NOT_LOCAL_PLUGIN "<Name> is not local. (<id_field> =
 * id, repository_id = ..., repository = ...)" ("Plugin is not local.
 * (plugin_id = ...)" for plugins); RD_ERR_NOT_FOUND when none does. */
rd_status api_resource_remote_owner(api_call *call, const char *id, rd_error *err);

rd_status api_repository_register(api_call *call, json_t **out, rd_error *err);
rd_status api_repository_update(api_call *call, json_t **out, rd_error *err);
rd_status api_repository_deregister(api_call *call, json_t **out, rd_error *err);
rd_status api_repository_get(api_call *call, json_t **out, rd_error *err);
rd_status api_repository_list(api_call *call, json_t **out, rd_error *err);
rd_status api_repository_stat(api_call *call, json_t **out, rd_error *err);
rd_status api_repository_sync(api_call *call, json_t **out, rd_error *err);

/* Request helpers shared by the handlers (src/api/request.c). */

/* Fails with RD_ERR_INVALID_PARAMETER naming the first key of body not in
 * allowed (NULL-terminated); the legacy keys domain_id and project_id are
 * always accepted. */
rd_status api_check_keys(const json_t *body, const char *const *allowed, rd_error *err);

/* Optional string field: *out is borrowed or NULL when absent/null; a
 * non-string -> RD_ERR_INVALID_PARAMETER_TYPE. */
rd_status api_opt_string(const json_t *body, const char *key, const char **out, rd_error *err);

/* Required non-empty string field -> RD_ERR_REQUIRED_PARAMETER / _TYPE. */
rd_status api_req_string(const json_t *body, const char *key, const char **out, rd_error *err);

/* Adds to eq every string field of body named in keys (NULL-terminated)
 * as a top-level eq filter; a non-string -> RD_ERR_INVALID_PARAMETER_TYPE. */
rd_status api_eq_filters(const json_t *body, const char *const *keys, json_t *eq, rd_error *err);

/* Applies a request's `only` (a list of dotted keys; NULL or null = no
 * projection) to *doc, replacing it by the projected document.  A value
 * that is not a list of strings -> RD_ERR_INVALID_PARAMETER_TYPE. */
rd_status api_project_only(const json_t *only, const query_schema *schema, json_t **doc,
                           rd_error *err);

/* 1 if the caller may read local plugins of domain_id: its own domain or a
 * public domain. */
int api_can_read_domain(const api_call *call, const char *domain_id);

#endif
