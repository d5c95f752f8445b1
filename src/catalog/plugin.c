/*
 * plugin.c - the plugin resource (SPEC 3): validation of register, update and
 * "one plugin" requests, building of stored records, and response views.
 *
 * Every check reports the first problem found, in the fixed order documented
 * in plugin.h, with a message naming the offending key.  Request objects are
 * only read; records and views are new objects that share nothing with the
 * request (values are deep-copied in).  Values quoted in messages pass through
 * fields_printable(), so a message is always short printable ASCII.
 */
#include "plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"

#define DOCKER_HUB_URL     "registry.hub.docker.com"
#define GITHUB_URL         "ghcr.io"
#define REGISTRY_URL_MAX   255
#define NEST_DEPTH_MAX     32
#define SCHEMA_REASON_SIZE 256

/* clang-format off */
/* Keys of a register request, in the order their types are checked. */
static const fields_rule register_keys[] = {
    {"name",            KT_STRING},
    {"resource_type",   KT_STRING},
    {"service_type",    KT_STRING},
    {"image",           KT_STRING},
    {"provider",        KT_STRING},
    {"registry_type",   KT_STRING},
    {"registry_url",    KT_STRING},
    {"registry_config", KT_OBJECT},
    {"capability",      KT_OBJECT},
    {"template",        KT_OBJECT},
    {"labels",          KT_STRING_ARRAY},
    {"tags",            KT_OBJECT},
    {"docs",            KT_OBJECT},
    {"plugin_id",       KT_STRING},
    {"domain_id",       KT_IGNORED},
    {"project_id",      KT_IGNORED},
    {NULL,              KT_IGNORED},
};

/* Keys of an update request, in the order their types are checked. */
static const fields_rule update_keys[] = {
    {"plugin_id",     KT_STRING},
    {"name",          KT_STRING},
    {"resource_type", KT_STRING},
    {"service_type",  KT_STRING},
    {"capability",    KT_OBJECT},
    {"template",      KT_OBJECT},
    {"labels",        KT_STRING_ARRAY},
    {"tags",          KT_OBJECT},
    {"docs",          KT_OBJECT},
    {"domain_id",     KT_IGNORED},
    {"project_id",    KT_IGNORED},
    {NULL,            KT_IGNORED},
};

/* Record fields that update never changes: named with a reason when sent. */
static const char *const update_immutable[] = {
    "image", "provider", "registry_type", "registry_url", "registry_config",
    "state", "created_at", "updated_at", "repository_info", NULL,
};

/* clang-format on */

static const char *const registry_types[] = {"DOCKER_HUB", "AWS_PRIVATE_ECR", "HARBOR",
                                             "GITHUB",     "GCP_PRIVATE_GCR", NULL};

static const char *const schema_types[] = {
    "object", "array", "string", "number", "integer", "boolean", "null", NULL,
};

/* Credential-looking registry_config keys.  A key is compared lowercased with
 * '_' and '-' removed, so "Secret-Access-Key", "secretAccessKey" and
 * "secret_access_key" all match. */
static const char *const credential_substrings[] = {
    "password",   "passwd",     "passphrase", "secret",    "token",
    "credential", "privatekey", "apikey",     "accesskey", NULL,
};
static const char *const credential_exact[] = {
    "pwd", "pass", "auth", "authorization", "username", NULL,
};

/* ---- small helpers ----------------------------------------------------- */

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* Lowercase of c for ASCII letters. */
static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ---- image ------------------------------------------------------------- */

/* Returns why image (non-empty, length already checked) is malformed, or
 * NULL when it is well formed. */
static const char *image_format_reason(const char *image)
{
    size_t count = 0;
    const char *p = image;

    if (strchr(image, '@') != NULL)
        return "a digest is not allowed";
    if (strchr(image, ':') != NULL)
        return "a tag or port is not allowed";
    for (const char *c = image; *c != '\0'; c++) {
        if (*c >= 'A' && *c <= 'Z')
            return "uppercase letters are not allowed";
        if (!is_lower_alnum(*c) && *c != '.' && *c != '_' && *c != '-' && *c != '/')
            return "invalid character";
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        const char *reason = fields_component_reason(p, n);

        if (reason != NULL)
            return reason;
        if (++count > 3)
            return "at most 3 path components";
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    if (count > 1) {
        size_t n = strcspn(image, "/");
        if (memchr(image, '.', n) != NULL || (n == 9 && strncmp(image, "localhost", 9) == 0))
            return "a registry host is not allowed (it belongs in registry_url)";
    }
    return NULL;
}

rd_status plugin_check_image(const char *image, rd_error *err)
{
    char buf[FIELDS_PRINTABLE_MAX + 4];
    const char *reason;
    size_t len;

    if (image == NULL || image[0] == '\0')
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = image)");
    len = strlen(image);
    if (len > PLUGIN_IMAGE_MAX)
        return rd_fail(err, RD_ERR_INVALID_IMAGE_LENGTH,
                       "Invalid image length. (key = image, length = %zu, max = %d)", len,
                       PLUGIN_IMAGE_MAX);
    reason = image_format_reason(image);
    if (reason != NULL)
        return rd_fail(err, RD_ERR_INVALID_IMAGE_FORMAT,
                       "Invalid image format. (key = image, image = %s, reason = %s)",
                       fields_printable(image, buf, sizeof(buf)), reason);
    return RD_OK;
}

rd_status plugin_check_id(const char *plugin_id, rd_error *err)
{
    return fields_check_id("plugin_id", plugin_id, err);
}

void plugin_id_from_image(const char *image, char *out, size_t size)
{
    const char *last;

    if (out == NULL || size == 0)
        return;
    out[0] = '\0';
    if (image == NULL)
        return;
    last = strrchr(image, '/');
    snprintf(out, size, "%s", last != NULL ? last + 1 : image);
}

/* ---- registry ---------------------------------------------------------- */

/* Returns why url is not host[:port][/path], or NULL. */
static const char *registry_url_reason(const char *url)
{
    const char *p = url;
    size_t len = strlen(url);

    if (len > REGISTRY_URL_MAX)
        return "longer than 255 characters";
    if (strstr(url, "://") != NULL)
        return "a scheme is not allowed";
    if (strpbrk(url, " \t\r\n\v\f") != NULL)
        return "whitespace is not allowed";

    /* host: [IPv6] or dot-separated labels of letters, digits and inner '-' */
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end == NULL || end == p + 1)
            return "invalid host";
        for (const char *c = p + 1; c < end; c++) {
            int hex =
                (*c >= '0' && *c <= '9') || (ascii_lower(*c) >= 'a' && ascii_lower(*c) <= 'f');
            if (!hex && *c != ':' && *c != '.')
                return "invalid host";
        }
        p = end + 1;
    } else {
        for (;;) {
            size_t n = 0;
            while (is_alnum(p[n]) || p[n] == '-')
                n++;
            if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
                return "invalid host";
            p += n;
            if (*p != '.')
                break;
            p++;
        }
    }

    if (*p == ':') {
        long port = 0;
        size_t n = 0;
        for (p++; p[0] >= '0' && p[0] <= '9' && n < 6; p++, n++)
            port = port * 10 + (p[0] - '0');
        if (n == 0 || n > 5 || port < 1 || port > 65535)
            return "invalid port";
    }

    while (*p == '/') {
        size_t n = 0;
        p++;
        while (is_alnum(p[n]) || p[n] == '.' || p[n] == '_' || p[n] == '-' || p[n] == '~')
            n++;
        if (n == 0)
            return "empty path segment";
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return "'.' and '..' path segments are not allowed";
        p += n;
    }
    if (*p != '\0')
        return "expected host[:port][/path]";
    return NULL;
}

/* Resolves the record's registry_url for type from the request value url
 * (NULL or "" = not given) and ctx->default_urls; see plugin.h. */
static rd_status resolve_registry_url(const char *type, const char *url, const plugin_ctx *ctx,
                                      const char **out, rd_error *err)
{
    const char *reason;
    char buf[FIELDS_PRINTABLE_MAX + 4];

    if (url != NULL && url[0] == '\0')
        url = NULL;
    if (strcmp(type, "DOCKER_HUB") == 0) {
        if (url != NULL && strcmp(url, DOCKER_HUB_URL) != 0)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                           "Invalid parameter. (key = registry_url, value = %s, reason = "
                           "DOCKER_HUB always uses " DOCKER_HUB_URL ")",
                           fields_printable(url, buf, sizeof(buf)));
        *out = DOCKER_HUB_URL;
        return RD_OK;
    }
    if (url == NULL) {
        const char *def = NULL;
        if (ctx->default_urls != NULL)
            def = json_string_value(json_object_get(ctx->default_urls, type));
        if ((def == NULL || def[0] == '\0') && strcmp(type, "GITHUB") == 0)
            def = GITHUB_URL; /* GitHub's container registry */
        if (def == NULL || def[0] == '\0')
            return rd_fail(err, RD_ERR_REQUIRED_PARAMETER,
                           "Required parameter. (key = registry_url, registry_type = %s)", type);
        *out = def;
        return RD_OK;
    }
    reason = registry_url_reason(url);
    if (reason != NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = registry_url, value = %s, reason = %s)",
                       fields_printable(url, buf, sizeof(buf)), reason);
    *out = url;
    return RD_OK;
}

/* Does key, read lowercased with '_' and '-' skipped, start with word at
 * key[0]?  When exact is set it must also end there. */
static int normalized_match(const char *key, const char *word, int exact)
{
    for (;;) {
        while (*key == '_' || *key == '-')
            key++;
        if (*word == '\0')
            return !exact || *key == '\0';
        if (ascii_lower(*key) != *word)
            return 0;
        key++;
        word++;
    }
}

/* A credential-looking key: see credential_substrings / credential_exact. */
static int is_credential_key(const char *key)
{
    for (size_t i = 0; credential_exact[i] != NULL; i++) {
        if (normalized_match(key, credential_exact[i], 1))
            return 1;
    }
    for (const char *start = key; *start != '\0'; start++) {
        for (size_t i = 0; credential_substrings[i] != NULL; i++) {
            if (normalized_match(start, credential_substrings[i], 0))
                return 1;
        }
    }
    return 0;
}

/* Rejects credential-looking keys anywhere inside v (objects, and objects in
 * arrays), naming the dotted path from prefix. */
static rd_status check_no_credentials(const json_t *v, const char *prefix, int depth, rd_error *err)
{
    char path[256];
    char buf[FIELDS_PRINTABLE_MAX + 4];
    rd_status rc;

    if (!json_is_object(v) && !json_is_array(v))
        return RD_OK;
    if (depth > NEST_DEPTH_MAX)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = %s, reason = nested too deeply)", prefix);
    if (json_is_object(v)) {
        json_t *obj = (json_t *)v; /* read-only iteration */
        const char *key;
        json_t *child;
        json_object_foreach(obj, key, child)
        {
            snprintf(path, sizeof(path), "%s.%s", prefix, fields_printable(key, buf, sizeof(buf)));
            if (is_credential_key(key))
                return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                               "Invalid parameter. (key = %s, reason = registry credentials "
                               "belong in the server config, not in plugin records)",
                               path);
            if ((rc = check_no_credentials(child, path, depth + 1, err)) != RD_OK)
                return rc;
        }
        return RD_OK;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        snprintf(path, sizeof(path), "%s.%zu", prefix, i);
        if ((rc = check_no_credentials(json_array_get(v, i), path, depth + 1, err)) != RD_OK)
            return rc;
    }
    return RD_OK;
}

/* ---- template ---------------------------------------------------------- */

static int is_schema_type(const json_t *t)
{
    const char *s = json_string_value(t);
    return s != NULL && fields_in_list(s, schema_types);
}

/* Checks one JSON-Schema object.  path is its location below the template
 * entry's schema ("" for the schema itself, else e.g. "properties.x").  On
 * failure writes the reason, which names the location, and returns -1. */
static int check_schema(const json_t *schema, const char *path, int depth, char *reason,
                        size_t size)
{
    const char *dot = path[0] != '\0' ? "." : "";
    const json_t *type, *props, *req, *items;
    char sub[SCHEMA_REASON_SIZE];
    char buf[FIELDS_PRINTABLE_MAX + 4];

    if (!json_is_object(schema)) {
        snprintf(reason, size, "%s must be an object", path[0] != '\0' ? path : "schema");
        return -1;
    }
    if (depth > NEST_DEPTH_MAX) {
        snprintf(reason, size, "%s is nested too deeply", path);
        return -1;
    }

    type = json_object_get(schema, "type");
    if (type != NULL) {
        int ok = is_schema_type(type);
        if (json_is_array(type)) {
            size_t n = json_array_size(type);
            ok = n > 0;
            for (size_t i = 0; ok && i < n; i++) {
                ok = is_schema_type(json_array_get(type, i));
                for (size_t j = 0; ok && j < i; j++)
                    ok = !json_equal(json_array_get(type, i), json_array_get(type, j));
            }
        }
        if (!ok) {
            snprintf(reason, size,
                     "%s%stype must be a JSON Schema type name or an array of unique ones", path,
                     dot);
            return -1;
        }
    }

    props = json_object_get(schema, "properties");
    if (props != NULL) {
        json_t *obj = (json_t *)props; /* read-only iteration */
        const char *key;
        json_t *child;
        if (!json_is_object(props)) {
            snprintf(reason, size, "%s%sproperties must be an object", path, dot);
            return -1;
        }
        json_object_foreach(obj, key, child)
        {
            snprintf(sub, sizeof(sub), "%s%sproperties.%s", path, dot,
                     fields_printable(key, buf, sizeof(buf)));
            if (check_schema(child, sub, depth + 1, reason, size) != 0)
                return -1;
        }
    }

    req = json_object_get(schema, "required");
    if (req != NULL) {
        int ok = json_is_array(req);
        for (size_t i = 0; ok && i < json_array_size(req); i++)
            ok = json_is_string(json_array_get(req, i));
        if (!ok) {
            snprintf(reason, size, "%s%srequired must be an array of strings", path, dot);
            return -1;
        }
    }

    items = json_object_get(schema, "items");
    if (items != NULL) {
        if (json_is_object(items)) {
            snprintf(sub, sizeof(sub), "%s%sitems", path, dot);
            if (check_schema(items, sub, depth + 1, reason, size) != 0)
                return -1;
        } else if (json_is_array(items)) {
            for (size_t i = 0; i < json_array_size(items); i++) {
                snprintf(sub, sizeof(sub), "%s%sitems.%zu", path, dot, i);
                if (check_schema(json_array_get(items, i), sub, depth + 1, reason, size) != 0)
                    return -1;
            }
        } else {
            snprintf(reason, size, "%s%sitems must be a schema or an array of schemas", path, dot);
            return -1;
        }
    }
    return 0;
}

rd_status plugin_check_template(const json_t *tmpl, rd_error *err)
{
    json_t *obj = (json_t *)tmpl; /* read-only iteration */
    const char *key;
    json_t *entry;
    char reason[SCHEMA_REASON_SIZE];
    char buf[FIELDS_PRINTABLE_MAX + 4];

    if (tmpl == NULL || json_is_null(tmpl))
        return RD_OK;
    if (!json_is_object(tmpl))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = template, type = object)");
    json_object_foreach(obj, key, entry)
    {
        const json_t *schema;

        if (!json_is_object(entry))
            return rd_fail(err, RD_ERR_INVALID_TEMPLATE_SCHEMA,
                           "Invalid template schema. (key = template.%s, reason = must be an "
                           "object)",
                           fields_printable(key, buf, sizeof(buf)));
        schema = json_object_get(entry, "schema");
        if (schema == NULL)
            continue;
        if (check_schema(schema, "", 0, reason, sizeof(reason)) != 0)
            return rd_fail(err, RD_ERR_INVALID_TEMPLATE_SCHEMA,
                           "Invalid template schema. (key = template.%s, reason = %s)",
                           fields_printable(key, buf, sizeof(buf)), reason);
    }
    return RD_OK;
}

/* ---- register ---------------------------------------------------------- */

/* Steps 3-4: the resource_type of a register request (the service_type alias
 * included) into *out (borrowed from req). */
static rd_status resolve_resource_type(const json_t *req, const char **out, rd_error *err)
{
    const char *rt = fields_str(req, "resource_type");
    const char *st = fields_str(req, "service_type");

    if (rt != NULL && st != NULL && strcmp(rt, st) != 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = service_type, reason = differs from "
                       "resource_type)");
    *out = rt != NULL ? rt : st;
    return RD_OK;
}

rd_status plugin_build_record(const json_t *req, const plugin_ctx *ctx, json_t **record,
                              rd_error *err)
{
    rd_status rc;
    json_t *rec = NULL;
    const char *name = NULL, *resource_type = NULL, *image = NULL, *provider = NULL, *type = NULL,
               *url = NULL, *chosen_id = NULL;
    char plugin_id[PLUGIN_IMAGE_MAX + 1];
    char buf[FIELDS_PRINTABLE_MAX + 4];

    if (record != NULL)
        *record = NULL;
    if (record == NULL || ctx == NULL || ctx->domain_id == NULL || ctx->now == NULL) {
        rc = fields_internal(err);
        goto done;
    }
    /* (body,) 1 unknown keys, 2 types */
    if ((rc = fields_check_body(req, register_keys, NULL, err)) != RD_OK)
        goto done;

    /* 3 alias conflict, 4 required */
    if ((rc = resolve_resource_type(req, &resource_type, err)) != RD_OK)
        goto done;
    name = fields_str(req, "name");
    image = fields_str(req, "image");
    if ((rc = fields_check_required(name, "name", err)) != RD_OK ||
        (rc = fields_check_required(resource_type, "resource_type", err)) != RD_OK ||
        (rc = fields_check_required(image, "image", err)) != RD_OK)
        goto done;

    /* 5 image, then a client-chosen plugin_id ("" counts as absent) */
    if ((rc = plugin_check_image(image, err)) != RD_OK)
        goto done;
    chosen_id = fields_str(req, "plugin_id");
    if (chosen_id != NULL && chosen_id[0] != '\0' &&
        (rc = plugin_check_id(chosen_id, err)) != RD_OK)
        goto done;

    /* 6 registry_type, 7 registry_url, 8 registry_config */
    type = fields_str(req, "registry_type");
    if (type == NULL)
        type = "DOCKER_HUB";
    if (!fields_in_list(type, registry_types)) {
        rc = rd_fail(err, RD_ERR_INVALID_REGISTRY_TYPE,
                     "Invalid registry type. (key = registry_type, value = %s, allowed = "
                     "DOCKER_HUB | AWS_PRIVATE_ECR | HARBOR | GITHUB | GCP_PRIVATE_GCR)",
                     fields_printable(type, buf, sizeof(buf)));
        goto done;
    }
    if ((rc = resolve_registry_url(type, fields_str(req, "registry_url"), ctx, &url, err)) != RD_OK)
        goto done;
    if ((rc = check_no_credentials(json_object_get(req, "registry_config"), "registry_config", 0,
                                   err)) != RD_OK)
        goto done;

    /* 9 template */
    if ((rc = plugin_check_template(json_object_get(req, "template"), err)) != RD_OK)
        goto done;

    provider = fields_str(req, "provider");
    if (chosen_id != NULL && chosen_id[0] != '\0')
        snprintf(plugin_id, sizeof(plugin_id), "%s", chosen_id);
    else
        plugin_id_from_image(image, plugin_id, sizeof(plugin_id));
    rec = json_object();
    if (rec == NULL || fields_set_string(rec, "plugin_id", plugin_id) != 0 ||
        fields_set_string(rec, "name", name) != 0 ||
        fields_set_string(rec, "state", "ENABLED") != 0 ||
        fields_set_string(rec, "resource_type", resource_type) != 0 ||
        fields_set_string(rec, "image", image) != 0 ||
        fields_set_string(rec, "provider", provider != NULL ? provider : "") != 0 ||
        fields_set_string(rec, "registry_type", type) != 0 ||
        fields_set_string(rec, "registry_url", url) != 0 ||
        fields_set_copy(rec, "registry_config", req, json_object()) != 0 ||
        fields_set_copy(rec, "capability", req, json_object()) != 0 ||
        fields_set_copy(rec, "template", req, json_object()) != 0 ||
        fields_set_copy(rec, "labels", req, json_array()) != 0 ||
        fields_set_copy(rec, "tags", req, json_object()) != 0 ||
        fields_set_copy(rec, "docs", req, json_object()) != 0 ||
        fields_set_string(rec, "domain_id", ctx->domain_id) != 0 ||
        fields_set_string(rec, "created_at", ctx->now) != 0 ||
        fields_set_string(rec, "updated_at", ctx->now) != 0) {
        rc = fields_internal(err);
        goto done;
    }
    *record = rec;
    rec = NULL;
    rc = RD_OK;

done:
    json_decref(rec);
    return rc;
}

/* ---- update ------------------------------------------------------------ */

rd_status plugin_apply_update(const json_t *record, const json_t *req, const char *now,
                              json_t **updated, rd_error *err)
{
    static const char *const changeable[] = {"name", "capability", "template", "labels",
                                             "tags", "docs",       NULL};
    rd_status rc;
    json_t *out = NULL;
    const char *plugin_id, *stored_id, *stored_type, *name;

    if (updated != NULL)
        *updated = NULL;
    if (updated == NULL || now == NULL || !json_is_object(record)) {
        rc = fields_internal(err);
        goto done;
    }
    /* (body,) 1 unknown keys, 2 types */
    if ((rc = fields_check_body(req, update_keys, update_immutable, err)) != RD_OK)
        goto done;

    plugin_id = fields_str(req, "plugin_id");
    if ((rc = fields_check_required(plugin_id, "plugin_id", err)) != RD_OK)
        goto done;
    stored_id = fields_str(record, "plugin_id");
    if (stored_id == NULL || strcmp(plugin_id, stored_id) != 0) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                     "Invalid parameter. (key = plugin_id, reason = does not match the plugin)");
        goto done;
    }

    stored_type = fields_str(record, "resource_type");
    for (size_t i = 0; i < 2; i++) {
        const char *key = i == 0 ? "resource_type" : "service_type";
        const char *v = fields_str(req, key);
        if (v != NULL && (stored_type == NULL || strcmp(v, stored_type) != 0)) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (key = %s, reason = update cannot change it)", key);
            goto done;
        }
    }

    name = fields_str(req, "name");
    if (name != NULL && (rc = fields_check_required(name, "name", err)) != RD_OK)
        goto done;
    if ((rc = plugin_check_template(json_object_get(req, "template"), err)) != RD_OK)
        goto done;

    out = json_deep_copy(record);
    if (out == NULL) {
        rc = fields_internal(err);
        goto done;
    }
    if (fields_apply_changes(out, req, changeable) != 0 ||
        fields_set_string(out, "updated_at", now) != 0) {
        rc = fields_internal(err);
        goto done;
    }
    *updated = out;
    out = NULL;
    rc = RD_OK;

done:
    json_decref(out);
    return rc;
}

/* ---- id requests and views --------------------------------------------- */

rd_status plugin_check_id_request(const json_t *req, int allow_repo, rd_error *err)
{
    return fields_check_id_request(req, "plugin_id", allow_repo, err);
}

void plugin_view_complete(json_t *view)
{
    json_t *docs = json_object_get(view, "docs");
    json_t *info = json_object_get(view, "repository_info");

    if (!json_is_object(view))
        return;
    if (docs == NULL || json_is_null(docs))
        json_object_set_new(view, "docs", json_object());
    if (json_is_object(info) && !json_is_string(json_object_get(info, "endpoint")))
        json_object_set_new(info, "endpoint", json_string(""));
}

json_t *plugin_view(const json_t *record, const json_t *repository_info)
{
    json_t *view = NULL;
    const json_t *rt;

    if (!json_is_object(record))
        goto fail;
    view = json_deep_copy(record);
    if (view == NULL)
        goto fail;
    rt = json_object_get(record, "resource_type");
    if (json_object_set_new(view, "service_type",
                            rt != NULL ? json_deep_copy(rt) : json_string("")) != 0)
        goto fail;
    if (json_object_set_new(view, "repository_info",
                            repository_info != NULL ? json_deep_copy(repository_info)
                                                    : json_object()) != 0)
        goto fail;
    plugin_view_complete(view);
    return view;

fail:
    json_decref(view);
    return NULL;
}

/* Compares the string field key of two documents ("" when absent). */
static int cmp_field(const json_t *x, const json_t *y, const char *key)
{
    const char *a = json_string_value(json_object_get(x, key));
    const char *b = json_string_value(json_object_get(y, key));
    return strcmp(a ? a : "", b ? b : "");
}

int plugin_cmp_default_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = cmp_field(x, y, "name");
    if (c == 0)
        c = cmp_field(x, y, "plugin_id");
    if (c == 0)
        c = cmp_field(x, y, "domain_id");
    return c;
}

void plugin_view_in_place(json_t *record, json_t *repository_info)
{
    json_t *rt = json_object_get(record, "resource_type");
    if (rt == NULL)
        rt = json_object_get(record, "service_type");
    if (rt != NULL) {
        json_object_set(record, "resource_type", rt);
        json_object_set(record, "service_type", rt);
    }
    json_object_set(record, "repository_info", repository_info);
    plugin_view_complete(record);
}
