/*
 * conf_registries.c - the free-form parts of the configuration:
 * "registry.default_urls" (registry type -> URL), "registries" (host ->
 * entry, checked against conf_registry_entry_rows[] with its paths
 * resolved) and "remotes" (an array of objects).
 */
#include "conf-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys of one "registries" entry (SPEC 9).  Checked only; the entry is
 * stored as a JSON copy with its paths resolved. */
#define ENTRY_ROW(k, t, lo, hi, dt, h)                                                             \
    {                                                                                              \
        .key = (k), .type = (t), .flags = CF_NONEMPTY, .min = (lo), .max = (hi), .off = CONF_NONE, \
        .def_text = (dt), .help = (h)                                                              \
    }

const conf_row conf_registry_entry_rows[] = {
    {.key = "api_url",
     .type = CONF_STRING,
     .flags = CF_NONEMPTY | CF_URL,
     .off = CONF_NONE,
     .def_text = "https://<host>",
     .help = "Distribution API endpoint of this registry"},
    ENTRY_ROW("ca_file", CONF_PATH, 0, 0, "(system trust store)",
              "CA bundle that signs the registry's certificate"),
    {.key = "verify",
     .type = CONF_BOOL,
     .def_int = 1,
     .off = CONF_NONE,
     .help = "verify the registry's TLS certificate (false: labs only, warns at start)"},
    ENTRY_ROW("username", CONF_STRING, 0, 0, NULL, "basic-auth user (also for Bearer tokens)"),
    ENTRY_ROW("password_file", CONF_PATH, 0, 0, NULL, "file holding the basic-auth password"),
    ENTRY_ROW("aws_access_key_id", CONF_STRING, 0, 0, NULL, "ECR: access key id"),
    ENTRY_ROW("aws_secret_access_key_file", CONF_PATH, 0, 0, NULL,
              "ECR: file holding the secret access key"),
    ENTRY_ROW("aws_region", CONF_STRING, 0, 0, NULL, "ECR: region, e.g. ap-northeast-2"),
    ENTRY_ROW("timeout_ms", CONF_INT, 100, 600000, "remote_defaults.timeout_ms",
              "timeout of one registry call"),
    {.key = "token_realm_hosts",
     .type = CONF_ARRAY,
     .off = CONF_NONE,
     .def_text = "[] (Docker Hub: [\"auth.docker.io\"])",
     .help = "hosts (host[:port]) besides its own where its Bearer token realm may live"},
};

#define REGISTRY_ENTRY_ROW_COUNT                                                                   \
    (sizeof(conf_registry_entry_rows) / sizeof(conf_registry_entry_rows[0]))

const size_t conf_registry_entry_row_count = REGISTRY_ENTRY_ROW_COUNT;

static const char *const registry_types[] = {"DOCKER_HUB", "AWS_PRIVATE_ECR", "HARBOR", NULL};

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
            goto done;
        }
        if (!json_is_string(url) || json_string_value(url)[0] == '\0') {
            rc = conf_fail(ctx, key, "expected a non-empty string");
            goto done;
        }
    }
done:
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

/* registries: host -> entry; each entry's keys are checked against
 * conf_registry_entry_rows[] and its paths resolved against the config folder. */
rd_status conf_check_registries(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    const char *host, *name;
    json_t *entry, *value;
    char key[KEY_MAX], reason[REASON_MAX];
    char *resolved = NULL;
    rd_status rc = RD_OK;

    json_object_foreach(copy, host, entry)
    {
        snprintf(key, sizeof(key), "%s.%s", row->key, host);
        if (host[0] == '\0') {
            rc = conf_fail(ctx, row->key, "host names must not be empty");
            goto done;
        }
        if (!json_is_object(entry)) {
            rc = conf_fail(ctx, key, "expected an object");
            goto done;
        }
        json_object_foreach(entry, name, value)
        {
            const conf_row *sub =
                conf_row_find(conf_registry_entry_rows, REGISTRY_ENTRY_ROW_COUNT, name);
            snprintf(key, sizeof(key), "%s.%s.%s", row->key, host, name);
            if (sub == NULL) {
                rc = conf_fail(ctx, key, "unknown key");
                goto done;
            }
            if (conf_value_check(sub, value, reason, sizeof(reason)) != 0) {
                rc = conf_fail(ctx, key, "%s", reason);
                goto done;
            }
            if (strcmp(name, "token_realm_hosts") == 0) {
                size_t i;
                json_t *h;
                json_array_foreach(value, i, h)
                {
                    const char *t = json_string_value(h);
                    if (t == NULL || t[0] == '\0' || strpbrk(t, "/?#*@ ") != NULL) {
                        rc = conf_fail(ctx, key, "expected host names (\"host\" or \"host:port\")");
                        goto done;
                    }
                }
            }
            if (sub->type != CONF_PATH)
                continue;
            resolved = conf_path_join(ctx->base, json_string_value(value));
            if (resolved == NULL || json_object_set_new(entry, name, json_string(resolved)) != 0) {
                rc = conf_oom(ctx);
                goto done;
            }
            free(resolved);
            resolved = NULL;
        }
    }
done:
    free(resolved);
    return rc;
}

/* remotes: an array of objects (their keys belong to the repository module). */
rd_status conf_check_remotes(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    size_t i;
    json_t *remote;
    char key[KEY_MAX];
    rd_status rc = RD_OK;

    json_array_foreach(copy, i, remote)
    {
        if (!json_is_object(remote)) {
            snprintf(key, sizeof(key), "%s[%zu]", row->key, i);
            rc = conf_fail(ctx, key, "expected an object");
            goto done;
        }
    }
done:
    return rc;
}
