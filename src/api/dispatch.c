/*
 * dispatch.c - the route table: path -> handler, with who may call it.
 *
 * Order of checks for one request: route (404) -> method (405) -> token
 * (401) -> role (403) -> body (400) -> handler.  Every answer is JSON.
 *
 * Every route answers in two spellings that share this one table: the
 * proto's HTTP binding POST /repository/v1/<resource>/<verb> and the REST
 * gateway's POST /repository/<resource>/<verb>.
 */
#include "api.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define API_PREFIX_V1      "/repository/v1/"
#define API_PREFIX_GATEWAY "/repository/"

typedef struct {
    const char *resource;
    const char *verb;
    api_handler_fn fn;
    auth_role min_role; /* least role a token needs */
    int anonymous;      /* callable without a token when auth.anonymous_read */
    const char *id_key; /* writes: the field naming what changed (audit line); NULL for reads */
    const resource_desc *res;         /* the resource the handler serves (NULL: repository) */
    api_remote_owner_fn remote_owner; /* writes: who else may hold the id (NULL: nobody) */
} api_route;

#define PLUGIN &resource_plugin
#define DASH   &resource_dashboard

static const api_route routes[] = {
    {"plugin", "register", api_plugin_register, AUTH_ROLE_ADMIN, 0, "plugin_id", PLUGIN,
     api_resource_remote_owner},
    {"plugin", "update", api_plugin_update, AUTH_ROLE_ADMIN, 0, "plugin_id", PLUGIN,
     api_resource_remote_owner},
    {"plugin", "deregister", api_plugin_deregister, AUTH_ROLE_ADMIN, 0, "plugin_id", PLUGIN,
     api_resource_remote_owner},
    {"plugin", "enable", api_resource_enable, AUTH_ROLE_ADMIN, 0, "plugin_id", PLUGIN,
     api_resource_remote_owner},
    {"plugin", "disable", api_resource_disable, AUTH_ROLE_ADMIN, 0, "plugin_id", PLUGIN,
     api_resource_remote_owner},
    {"plugin", "get", api_plugin_get, AUTH_ROLE_VIEWER, 1, NULL, PLUGIN, NULL},
    {"plugin", "get-versions", api_plugin_get_versions, AUTH_ROLE_VIEWER, 1, NULL, PLUGIN, NULL},
    {"plugin", "list", api_plugin_list, AUTH_ROLE_VIEWER, 1, NULL, PLUGIN, NULL},
    {"plugin", "stat", api_plugin_stat, AUTH_ROLE_VIEWER, 1, NULL, PLUGIN, NULL},
    {"dashboard-template", "register", api_resource_register, AUTH_ROLE_ADMIN, 0, "template_id",
     DASH, api_resource_remote_owner},
    {"dashboard-template", "update", api_resource_update, AUTH_ROLE_ADMIN, 0, "template_id", DASH,
     api_resource_remote_owner},
    {"dashboard-template", "deregister", api_resource_deregister, AUTH_ROLE_ADMIN, 0, "template_id",
     DASH, api_resource_remote_owner},
    {"dashboard-template", "enable", api_resource_enable, AUTH_ROLE_ADMIN, 0, "template_id", DASH,
     api_resource_remote_owner},
    {"dashboard-template", "disable", api_resource_disable, AUTH_ROLE_ADMIN, 0, "template_id", DASH,
     api_resource_remote_owner},
    {"dashboard-template", "get", api_resource_get, AUTH_ROLE_VIEWER, 1, NULL, DASH, NULL},
    {"dashboard-template", "list", api_resource_list, AUTH_ROLE_VIEWER, 1, NULL, DASH, NULL},
    {"dashboard-template", "stat", api_resource_stat, AUTH_ROLE_VIEWER, 1, NULL, DASH, NULL},
    {"repository", "register", api_repository_register, AUTH_ROLE_SYSTEM, 0, "repository_id", NULL,
     NULL},
    {"repository", "update", api_repository_update, AUTH_ROLE_SYSTEM, 0, "repository_id", NULL,
     NULL},
    {"repository", "deregister", api_repository_deregister, AUTH_ROLE_SYSTEM, 0, "repository_id",
     NULL, NULL},
    {"repository", "get", api_repository_get, AUTH_ROLE_VIEWER, 1, NULL, NULL, NULL},
    {"repository", "list", api_repository_list, AUTH_ROLE_VIEWER, 1, NULL, NULL, NULL},
    {"repository", "stat", api_repository_stat, AUTH_ROLE_VIEWER, 1, NULL, NULL, NULL},
    {"repository", "sync", api_repository_sync, AUTH_ROLE_SYSTEM, 0, "repository_id", NULL, NULL},
};

/* Finds the route of path; NULL when the path is not an API route.  Both
 * spellings (API_PREFIX_V1, API_PREFIX_GATEWAY) lead to the same row. */
static const api_route *route_find(const char *path)
{
    const char *rest, *slash;
    size_t rlen;
    if (strncmp(path, API_PREFIX_V1, strlen(API_PREFIX_V1)) == 0)
        rest = path + strlen(API_PREFIX_V1);
    else if (strncmp(path, API_PREFIX_GATEWAY, strlen(API_PREFIX_GATEWAY)) == 0)
        rest = path + strlen(API_PREFIX_GATEWAY);
    else
        return NULL;
    slash = strchr(rest, '/');
    if (slash == NULL)
        return NULL;
    rlen = (size_t)(slash - rest);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strlen(routes[i].resource) == rlen && strncmp(routes[i].resource, rest, rlen) == 0 &&
            strcmp(routes[i].verb, slash + 1) == 0)
            return &routes[i];
    }
    return NULL;
}

size_t api_route_count(void)
{
    return sizeof(routes) / sizeof(routes[0]);
}

int api_route_index(const char *path)
{
    const api_route *r = route_find(path);
    return r != NULL ? (int)(r - routes) : -1;
}

void api_route_names(size_t i, const char **resource, const char **verb)
{
    *resource = i < api_route_count() ? routes[i].resource : "unknown";
    *verb = i < api_route_count() ? routes[i].verb : "unknown";
}

json_t *api_error_body(rd_status code, const char *message)
{
    json_t *body = json_pack("{s:{s:s, s:s}}", "detail", "code", rd_status_name(code), "message",
                             message != NULL ? message : "");
    if (body == NULL && message != NULL) {
        /* not valid UTF-8: keep the ASCII of it rather than lose the answer */
        char safe[RD_ERROR_MESSAGE_MAX];
        size_t i;
        for (i = 0; message[i] != '\0' && i < sizeof(safe) - 1; i++)
            safe[i] = (unsigned char)message[i] < 0x80 ? message[i] : '?';
        safe[i] = '\0';
        body = json_pack("{s:{s:s, s:s}}", "detail", "code", rd_status_name(code), "message", safe);
    }
    return body;
}

static void reply_error(const api_edge *edge, rd_status code, const char *message,
                        const char *const *headers)
{
    edge->reply(edge->edge_ctx, rd_status_http(code), api_error_body(code, message), headers);
}

/* Copies s into buf[0..n) with every byte outside printable ASCII, and
 * spaces, replaced by '?', so a value from a request cannot forge a field
 * or a line of the log; "-" when s is NULL or "". */
static void audit_text(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    if (s == NULL || s[0] == '\0')
        s = "-";
    for (; s[i] != '\0' && i + 1 < n; i++)
        buf[i] = (s[i] > ' ' && s[i] < 0x7f) ? s[i] : '?';
    buf[i] = '\0';
}

/* One audit line per write (SPEC 12): the verb, the id it names (from the
 * request, else from the answer: register makes it; "-" for a call refused
 * before its body was read), the domain, the token's name and role, and how
 * it ended.  Never the token itself. */
static void audit_write(const api_call *call, rd_status rc, const json_t *result)
{
    char id[256], domain[AUTH_NAME_MAX];
    const char *raw = json_string_value(json_object_get(call->body, call->id_key));
    if (raw == NULL && rc == RD_OK)
        raw = json_string_value(json_object_get(result, call->id_key));
    audit_text(raw, id, sizeof(id));
    audit_text(call->domain_id, domain, sizeof(domain));
    LOG_AUDIT("%s.%s id=%s domain=%s token=%s role=%s status=%d code=%s", call->resource,
              call->verb, id, domain, call->who.name[0] != '\0' ? call->who.name : "-",
              auth_role_name(call->who.role), rc == RD_OK ? 200 : rd_status_http(rc),
              rc == RD_OK ? "OK" : rd_status_name(rc));
}

void api_call_finish(api_call *call, rd_status rc, json_t *result, const rd_error *err)
{
    const char *headers[5] = {NULL, NULL, NULL, NULL, NULL};
    if (call->id_key != NULL)
        audit_write(call, rc, result);
    if (call->x_cache != NULL && rc == RD_OK) { /* errors are not cache answers */
        static const char *const kinds[] = {"HIT", "MISS", "STALE"};
        headers[0] = "X-Cache";
        headers[1] = call->x_cache;
        for (int i = 0; i < 3; i++)
            if (strcmp(call->x_cache, kinds[i]) == 0)
                atomic_fetch_add(&call->app->cache_answers[i], 1);
        if (call->x_partial != NULL) {
            headers[2] = "X-Partial";
            headers[3] = call->x_partial;
        }
    }
    if (rc == RD_OK && call->ready_body != NULL && call->edge.reply_bytes != NULL) {
        json_decref(result);
        call->edge.reply_bytes(call->edge.edge_ctx, 200, call->ready_body, call->ready_len, NULL, 0,
                               headers);
    } else if (rc == RD_OK && call->ready_body != NULL) {
        json_decref(result);
        result = json_loadb(call->ready_body, call->ready_len, JSON_ALLOW_NUL, NULL);
        call->edge.reply(call->edge.edge_ctx, 200, result != NULL ? result : json_object(),
                         headers);
    } else if (rc == RD_OK && call->ready != NULL && call->edge.reply_bytes != NULL) {
        const char *head, *tail;
        size_t hlen, tlen;
        readmodel_doc_parts(call->ready, &head, &hlen, &tail, &tlen);
        json_decref(result);
        call->edge.reply_bytes(call->edge.edge_ctx, 200, head, hlen, tail, tlen, headers);
    } else if (rc == RD_OK) {
        if (result == NULL && call->ready != NULL)
            result = readmodel_doc_decode(call->ready);
        call->edge.reply(call->edge.edge_ctx, 200, result != NULL ? result : json_object(),
                         headers);
    } else {
        json_decref(result);
        if (rc == RD_ERR_INTERNAL)
            LOG_ERROR("internal error: %s", err != NULL ? err->message : "");
        reply_error(&call->edge, rc,
                    (err != NULL && err->code == rc) ? err->message : rd_status_name(rc), headers);
    }
    if (call->ready != NULL)
        readmodel_doc_release(call->ready);
    free(call->ready_body);
    json_decref(call->body);
    free(call->x_partial);
    free(call);
}

/* Parses the body: empty means {}; anything but a JSON object is refused. */
static rd_status parse_body(const char *body, size_t len, json_t **out, rd_error *err)
{
    json_error_t jerr;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len) {
        *out = json_object();
        return RD_OK;
    }
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL)
        return rd_fail(err, RD_ERR_INVALID_JSON,
                       "Invalid JSON. (line = %d, column = %d, reason = %s)", jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return rd_fail(err, RD_ERR_INVALID_JSON, "Invalid JSON. (reason = body must be an object)");
    }
    return RD_OK;
}

void api_dispatch(app *a, const api_edge *edge, const char *method, const char *path,
                  const char *authorization, const char *body, size_t len, char *domain_out)
{
    const api_route *route = route_find(path);
    api_call *call = NULL;
    rd_error err = {RD_OK, ""};
    json_t *result = NULL;
    rd_status rc;

    domain_out[0] = '\0';
    if (route == NULL) {
        reply_error(edge, RD_ERR_UNKNOWN_ROUTE, "Unknown route.", NULL);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        static const char *const allow[] = {"Allow", "POST", NULL};
        reply_error(edge, RD_ERR_METHOD_NOT_ALLOWED, "Method not allowed. (allowed = POST)", allow);
        return;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        reply_error(edge, RD_ERR_INTERNAL, "Internal error.", NULL);
        return;
    }
    call->app = a;
    call->edge = *edge;
    call->resource = route->resource;
    call->verb = route->verb;
    call->id_key = route->id_key;
    call->res = route->res;
    call->remote_owner = route->remote_owner;
    rc = auth_authenticate(a->auth, authorization, &call->who, &err);
    if (rc != RD_OK)
        goto done;
    snprintf(call->domain_id, sizeof(call->domain_id), "%s", call->who.domain_id);
    if (call->who.role == AUTH_ROLE_ANONYMOUS) {
        if (!route->anonymous || !a->conf->anonymous_read) {
            rc = rd_fail(&err, RD_ERR_AUTHENTICATE_FAILURE,
                         "Authenticate failure. (reason = a bearer token is required)");
            goto done;
        }
    } else if (call->who.role < route->min_role) {
        rc = rd_fail(&err, RD_ERR_PERMISSION_DENIED, "Permission denied. (required role = %s)",
                     auth_role_name(route->min_role));
        goto done;
    }
    rc = parse_body(body, len, &call->body, &err);
    if (rc != RD_OK)
        goto done;
    if (call->who.role == AUTH_ROLE_SYSTEM) {
        /* Only system callers may act for another domain. */
        json_t *d = json_object_get(call->body, "domain_id");
        if (d != NULL && !json_is_null(d)) {
            if (!json_is_string(d) || json_string_length(d) == 0 ||
                json_string_length(d) >= sizeof(call->domain_id)) {
                rc = rd_fail(&err, RD_ERR_INVALID_PARAMETER_TYPE,
                             "Invalid parameter type. (key = domain_id, type = string)");
                goto done;
            }
            snprintf(call->domain_id, sizeof(call->domain_id), "%s", json_string_value(d));
        }
    }
    snprintf(domain_out, AUTH_NAME_MAX, "%s", call->domain_id);
    rc = route->fn(call, &result, &err);
    if (rc == RD_PENDING)
        return; /* the handler finishes the call later */
done:
    api_call_finish(call, rc, result, &err);
}
