/*
 * conf_registries.c - the free-form parts of the configuration:
 * "registry.default_urls" (registry type -> URL), "registries" (host ->
 * entry, checked against conf_registry_entry_rows[]) and "remotes" (an
 * array of entries checked against conf_remote_entry_rows[]).  Entries are
 * stored as JSON copies with their paths resolved against the config folder.
 */
#include "conf-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The keys of one "registries" entry (SPEC 9).  Checked only; the entry is
 * stored as a JSON copy with its paths resolved. */
#define ENTRY_ROW(k, t, fl, lo, hi, dt, h)                                                         \
    {                                                                                              \
        .key = (k), .type = (t), .flags = CF_NONEMPTY | (fl), .min = (lo), .max = (hi),            \
        .off = CONF_NONE, .def_text = (dt), .help = (h)                                            \
    }

const conf_row conf_registry_entry_rows[] = {
    ENTRY_ROW("api_url", CONF_STRING, CF_URL, 0, 0, "https://<host>",
              "Distribution API endpoint of this registry"),
    ENTRY_ROW("ca_file", CONF_PATH, CF_READABLE, 0, 0, "(system trust store)",
              "CA bundle that signs the registry's certificate"),
    {.key = "verify",
     .type = CONF_BOOL,
     .def_int = 1,
     .off = CONF_NONE,
     .help = "verify the registry's TLS certificate (false: labs only, warns at start)"},
    ENTRY_ROW("username", CONF_STRING, 0, 0, 0, NULL, "basic-auth user (also for Bearer tokens)"),
    ENTRY_ROW("password_file", CONF_PATH, CF_READABLE, 0, 0, NULL,
              "file holding the basic-auth password"),
    ENTRY_ROW("aws_access_key_id", CONF_STRING, 0, 0, 0, NULL, "ECR: access key id"),
    ENTRY_ROW("aws_secret_access_key_file", CONF_PATH, CF_READABLE, 0, 0, NULL,
              "ECR: file holding the secret access key"),
    ENTRY_ROW("aws_region", CONF_STRING, 0, 0, 0, NULL, "ECR: region, e.g. ap-northeast-2"),
    ENTRY_ROW("service_account_key_file", CONF_PATH, CF_READABLE, 0, 0, NULL,
              "GCP_PRIVATE_GCR: service-account key (JSON) exchanged for an access token"),
    ENTRY_ROW("timeout_ms", CONF_INT, 0, 100, 600000, "remote_defaults.timeout_ms",
              "timeout of one registry call"),
    {.key = "token_realm_hosts",
     .type = CONF_ARRAY,
     .off = CONF_NONE,
     .check = conf_check_realm_hosts,
     .def_text = "[] (Docker Hub: [\"auth.docker.io\"])",
     .help = "hosts (host[:port]) besides its own where its Bearer token realm (GCP: the key's "
             "token_uri) may live"},
};

const size_t conf_registry_entry_row_count =
    sizeof(conf_registry_entry_rows) / sizeof(conf_registry_entry_rows[0]);

/* The keys of one "remotes" entry: the body of `repository register`
 * (SPEC 4).  Bounds of "cache" are those of remote_defaults. */
static const char *const remote_types[] = {"remote", NULL};

const conf_row conf_remote_entry_rows[] = {
    {.key = "name",
     .type = CONF_STRING,
     .flags = CF_REQUIRED | CF_NONEMPTY,
     .off = CONF_NONE,
     .help = "name of the remote repository (unique; how the file refers to it)"},
    {.key = "repository_type",
     .type = CONF_STRING,
     .off = CONF_NONE,
     .choices = remote_types,
     .def_text = "remote",
     .help = "only \"remote\" (may be left out)"},
    {.key = "endpoint",
     .type = CONF_STRING,
     .flags = CF_REQUIRED | CF_ORIGIN,
     .off = CONF_NONE,
     .help = "https://host:port of the upstream"},
    {.key = "priority",
     .type = CONF_INT,
     .min = 1,
     .max = 1000000,
     .def_int = 100,
     .off = CONF_NONE,
     .help = "search order among remote repositories"},
    {.key = "upstream", .type = CONF_SECTION, .off = CONF_NONE, .help = "connection settings"},
    ENTRY_ROW("upstream.token", CONF_STRING, 0, 0, 0, "(none)",
              "bearer token for the upstream (secret; never shown)"),
    ENTRY_ROW("upstream.ca_file", CONF_PATH, CF_READABLE, 0, 0, "(system trust store)",
              "CA bundle that signs the upstream's certificate"),
    {.key = "upstream.verify",
     .type = CONF_BOOL,
     .def_int = 1,
     .off = CONF_NONE,
     .help = "verify the upstream's TLS certificate (false warns at every start)"},
    {.key = "cache", .type = CONF_SECTION, .off = CONF_NONE, .help = "cache settings"},
    ENTRY_ROW("cache.ttl_s", CONF_INT, 0, 0, 31536000, "remote_defaults.*",
              "as remote_defaults.ttl_s"),
    {.key = "cache.stale_while_revalidate",
     .type = CONF_BOOL,
     .off = CONF_NONE,
     .def_text = "remote_defaults.*",
     .help = "as remote_defaults.stale_while_revalidate"},
    ENTRY_ROW("cache.stale_if_error_s", CONF_INT, 0, 0, 31536000, "remote_defaults.*",
              "as remote_defaults.stale_if_error_s"),
    ENTRY_ROW("cache.negative_ttl_s", CONF_INT, 0, 0, 86400, "remote_defaults.*",
              "as remote_defaults.negative_ttl_s"),
    ENTRY_ROW("cache.timeout_ms", CONF_INT, 0, 100, 600000, "remote_defaults.*",
              "as remote_defaults.timeout_ms"),
    ENTRY_ROW("cache.max_response_bytes", CONF_INT, 0, 1024, INT64_C(1) << 30, "remote_defaults.*",
              "as remote_defaults.max_response_bytes"),
    ENTRY_ROW("cache.sync_page_size", CONF_INT, 0, 1, 100000, "remote_defaults.*",
              "as remote_defaults.sync_page_size"),
};

const size_t conf_remote_entry_row_count =
    sizeof(conf_remote_entry_rows) / sizeof(conf_remote_entry_rows[0]);

static const char *const registry_types[] = {"DOCKER_HUB", "AWS_PRIVATE_ECR", "HARBOR",
                                             "GITHUB",     "GCP_PRIVATE_GCR", NULL};

/* ---------------------------------------------------------------------------
 * One entry
 * ------------------------------------------------------------------------- */

/* A new string: value resolved against the config folder; with absolute,
 * made absolute with the working directory (for paths that are stored).
 * NULL when out of memory. */
static char *entry_path(conf_ctx *ctx, const char *value, bool absolute)
{
    char cwd[PATH_MAX];
    char *joined = conf_path_join(ctx->base, value), *out = NULL;
    if (joined == NULL || !absolute || joined[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
        return joined;
    out = conf_path_join(cwd, joined);
    free(joined);
    return out;
}

/* Checks the object obj, named key in messages (e.g. "remotes[0]"), against
 * rows[0..n) whose names are dotted below it ("upstream.ca_file"); prefix
 * is the dotted name of obj inside the entry ("" at its top).  Unknown keys,
 * bad values and missing required keys are problems; every path is
 * resolved and written back (absolute when absolute is set) and, with
 * ctx->check_files, must name a readable file.  Goes on after problems. */
static void entry_walk(conf_ctx *ctx, const char *key, const char *prefix, json_t *obj,
                       const conf_row *rows, size_t n, bool absolute)
{
    const char *name;
    json_t *value;
    char sub[KEY_MAX], full[2 * KEY_MAX + 2], reason[REASON_MAX];
    char *resolved = NULL;

    json_object_foreach(obj, name, value)
    {
        const conf_row *row = NULL;
        snprintf(sub, sizeof(sub), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        snprintf(full, sizeof(full), "%s.%s", key, sub);
        if (strchr(name, '.') == NULL && name[0] != '\0')
            row = conf_row_find(rows, n, sub);
        if (row == NULL) {
            conf_fail(ctx, full, "unknown key");
            continue;
        }
        if (row->type == CONF_SECTION) {
            if (!json_is_object(value))
                conf_fail(ctx, full, "expected an object");
            else
                entry_walk(ctx, key, sub, value, rows, n, absolute);
            continue;
        }
        if (conf_value_check(row, value, reason, sizeof(reason)) != 0) {
            conf_fail(ctx, full, "%s", reason);
            continue;
        }
        if (row->check != NULL) {
            conf_row named = *row; /* messages name the whole key */
            named.key = full;
            row->check(ctx, &named, value);
            continue;
        }
        if (row->type != CONF_PATH)
            continue;
        resolved = entry_path(ctx, json_string_value(value), absolute);
        if (resolved == NULL) {
            conf_oom(ctx);
            continue;
        }
        if (ctx->check_files && (row->flags & CF_READABLE) && conf_file_readable(resolved) != 0)
            conf_fail(ctx, full, "cannot read %s: %s", json_string_value(value), strerror(errno));
        if (json_object_set_new(obj, name, json_string(resolved)) != 0)
            conf_oom(ctx);
        free(resolved);
        resolved = NULL;
    }
    for (size_t i = 0; prefix[0] == '\0' && i < n; i++) {
        if ((rows[i].flags & CF_REQUIRED) && json_object_get(obj, rows[i].key) == NULL) {
            snprintf(full, sizeof(full), "%s.%s", key, rows[i].key);
            conf_fail(ctx, full, "required");
        }
    }
}

/* ---------------------------------------------------------------------------
 * Checks of the free-form parts
 * ------------------------------------------------------------------------- */

/* registry.default_urls: keys are registry types, values non-empty strings. */
rd_status conf_check_default_urls(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    const char *type;
    json_t *url;
    char key[KEY_MAX], list[128];
    rd_status rc = RD_OK;

    json_object_foreach(copy, type, url)
    {
        snprintf(key, sizeof(key), "%s.%s", row->key, type);
        if (!conf_choice_valid(registry_types, type)) {
            conf_choices_format(registry_types, list, sizeof(list));
            rc = conf_fail(ctx, key, "unknown registry type (expected one of %s)", list);
        } else if (!json_is_string(url) || json_string_value(url)[0] == '\0') {
            rc = conf_fail(ctx, key, "expected a non-empty string");
        }
    }
    return rc;
}

/* registry.allowed_hosts: each entry is "host" or "host:port" (letters,
 * digits, '-', '.'; an IP literal; "[v6]"), where '*' may stand for whole
 * DNS labels but not for the last one ("*.example.com", not "*" or
 * "example.*"); the port is 1..65535. */
rd_status conf_check_allowed_hosts(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    size_t i;
    json_t *v;
    char key[KEY_MAX];
    rd_status rc = RD_OK;

    json_array_foreach(copy, i, v)
    {
        const char *s = json_string_value(v), *p, *colon, *label;
        snprintf(key, sizeof(key), "%s[%zu]", row->key, i);
        if (s == NULL || s[0] == '\0' || strlen(s) > 255) {
            rc = conf_fail(ctx, key, "expected a host name or pattern");
            goto done;
        }
        colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
        if (colon != NULL && s[0] == '[')
            colon++;
        if (colon != NULL) {
            char *end = NULL;
            long port = strtol(colon + 1, &end, 10);
            if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
                rc = conf_fail(ctx, key, "bad port (expected host or host:port, no scheme)");
                goto done;
            }
        }
        label = s;
        for (p = s; p != (colon != NULL ? colon : s + strlen(s)); p++) {
            if (*p == '.') {
                label = p + 1;
                continue;
            }
            if (*p == '*' && (p != label || (p[1] != '.' && p + 1 != colon && p[1] != '\0'))) {
                rc = conf_fail(ctx, key, "'*' must be a whole DNS label");
                goto done;
            }
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '*' || *p == '[' || *p == ']' ||
                  (*p == ':' && s[0] == '['))) {
                rc = conf_fail(ctx, key, "expected host or host:port (no scheme or path)");
                goto done;
            }
        }
        if (label[0] == '*' || label[0] == '\0' ||
            label == s + (colon != NULL ? (size_t)(colon - s) : strlen(s))) {
            rc = conf_fail(ctx, key, "the last DNS label must not be '*' or empty");
            goto done;
        }
    }
done:
    return rc;
}

/* registries.<host>.token_realm_hosts: host names ("host" or "host:port"),
 * no scheme, path, user or pattern. */
rd_status conf_check_realm_hosts(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    size_t i;
    json_t *h;
    json_array_foreach(copy, i, h)
    {
        const char *t = json_string_value(h);
        if (t == NULL || t[0] == '\0' || strpbrk(t, "/?#*@ ") != NULL)
            return conf_fail(ctx, row->key, "expected host names (\"host\" or \"host:port\")");
    }
    return RD_OK;
}

/* registries: host -> entry; each entry's keys are checked against
 * conf_registry_entry_rows[] and its paths resolved against the config folder. */
rd_status conf_check_registries(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    const char *host;
    json_t *entry;
    char key[KEY_MAX];
    rd_status before = ctx->rc;

    json_object_foreach(copy, host, entry)
    {
        snprintf(key, sizeof(key), "%s.%s", row->key, host);
        if (host[0] == '\0')
            conf_fail(ctx, row->key, "host names must not be empty");
        else if (!json_is_object(entry))
            conf_fail(ctx, key, "expected an object");
        else
            entry_walk(ctx, key, "", entry, conf_registry_entry_rows, conf_registry_entry_row_count,
                       false);
    }
    return before == RD_OK ? ctx->rc : before;
}

/* remotes: an array of entries shaped like the body of `repository
 * register`, with unique names; upstream.ca_file is made absolute (it is
 * stored in the repository's record). */
rd_status conf_check_remotes(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    size_t i;
    json_t *remote;
    char key[KEY_MAX];
    rd_status before = ctx->rc;

    json_array_foreach(copy, i, remote)
    {
        const char *name = json_string_value(json_object_get(remote, "name"));
        snprintf(key, sizeof(key), "%s[%zu]", row->key, i);
        if (!json_is_object(remote)) {
            conf_fail(ctx, key, "expected an object");
            continue;
        }
        entry_walk(ctx, key, "", remote, conf_remote_entry_rows, conf_remote_entry_row_count, true);
        for (size_t k = 0; name != NULL && k < i; k++) {
            const char *other = json_string_value(json_object_get(json_array_get(copy, k), "name"));
            if (other != NULL && strcmp(other, name) == 0) {
                snprintf(key, sizeof(key), "%s[%zu].name", row->key, i);
                conf_fail(ctx, key, "\"%s\" is also the name of remotes[%zu]", name, k);
                break;
            }
        }
    }
    return before == RD_OK ? ctx->rc : before;
}
