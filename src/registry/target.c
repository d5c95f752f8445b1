/*
 * target.c - where an image's tags are read from: registry_type,
 * registry_url and registry_config of a plugin, plus the server config's
 * `registries` entries, resolved into an API base URL, a repository name and
 * (ECR) the region and GetAuthorizationToken endpoint.  See registry.h.
 */
#include "registry.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DOCKER_HUB_HOST    "registry.hub.docker.com"
#define DOCKER_HUB_API_URL "https://registry-1.docker.io"
#define GITHUB_HOST        "ghcr.io"
#define REPOSITORY_MAX     255

static const char *const docker_hub_aliases[] = {DOCKER_HUB_HOST,   "docker.io",
                                                 "index.docker.io", "registry-1.docker.io",
                                                 "hub.docker.com",  NULL};

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* 1 when s is a repository path: components of [a-z0-9]+ joined by '.',
 * '_', '__' or runs of '-', separated by single '/'. */
static int repository_valid(const char *s)
{
    const char *p = s;
    if (s == NULL || s[0] == '\0' || strlen(s) > REPOSITORY_MAX)
        return 0;
    for (;;) {
        if (!is_lower_alnum(*p))
            return 0;
        while (is_lower_alnum(*p))
            p++;
        if (*p == '\0')
            return 1;
        if (*p == '/') {
            p++;
        } else if (*p == '.') {
            p++;
        } else if (*p == '_') {
            p += p[1] == '_' ? 2 : 1;
        } else if (*p == '-') {
            while (*p == '-')
                p++;
        } else {
            return 0;
        }
    }
}

/* 1 when host is a plausible host[:port] (letters, digits, '.', '-', ':',
 * and brackets for IPv6 literals). */
static int host_valid(const char *host)
{
    const char *p;
    if (host == NULL || host[0] == '\0' || strlen(host) > 255)
        return 0;
    for (p = host; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return 0;
    }
    return 1;
}

static int region_valid(const char *r)
{
    return registry_ecr_region_valid(r);
}

static int is_docker_hub(const char *host)
{
    size_t i;
    for (i = 0; docker_hub_aliases[i] != NULL; i++) {
        if (strcasecmp(host, docker_hub_aliases[i]) == 0)
            return 1;
    }
    return 0;
}

/* The string value of entry[key] when it is a non-empty string, else NULL. */
static const char *entry_string(const json_t *entry, const char *key)
{
    const char *s = json_string_value(json_object_get(entry, key));
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static const json_t *conf_entry(const repod_conf *conf, const char *host)
{
    if (conf == NULL || !json_is_object(conf->registries))
        return NULL;
    return json_object_get(conf->registries, host);
}

/* A new copy of url without a trailing '/'. */
static char *strip_slash_dup(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    return strndup(url, n);
}

/* The region of an ECR registry host "<acct>.dkr.ecr.<region>.amazonaws.com". */
static char *ecr_region_from_host(const char *host)
{
    const char *p = strstr(host, ".dkr.ecr."), *e;
    if (p == NULL)
        return NULL;
    p += strlen(".dkr.ecr.");
    e = strchr(p, '.');
    if (e == NULL || e == p)
        return NULL;
    return strndup(p, (size_t)(e - p));
}

void registry_target_clear(registry_target *t)
{
    if (t == NULL)
        return;
    free(t->host);
    free(t->api_url);
    free(t->repository);
    free(t->ecr_region);
    free(t->ecr_api_url);
    free(t->ecr_api_host);
    memset(t, 0, sizeof(*t));
}

/* ECR: region and GetAuthorizationToken endpoint.  Fills out; RD_OK or error. */
static rd_status resolve_ecr(const repod_conf *conf, const json_t *entry,
                             const json_t *registry_config, registry_target *out, rd_error *err)
{
    const char *region = entry_string(entry, "aws_region"), *api;
    const json_t *api_entry;
    int china;

    if (region == NULL)
        region = entry_string(registry_config, "region");
    out->ecr_region = region != NULL ? strdup(region) : ecr_region_from_host(out->host);
    if (out->ecr_region == NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (registry_config.region = (none): the ECR region is "
                       "unknown for registry %s)",
                       out->host);
    if (!region_valid(out->ecr_region))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (registry_config.region = %.64s)", out->ecr_region);
    china = strlen(out->host) > strlen(".amazonaws.com.cn") &&
            strcasecmp(out->host + strlen(out->host) - strlen(".amazonaws.com.cn"),
                       ".amazonaws.com.cn") == 0;
    out->ecr_api_host =
        util_strdup_printf("api.ecr.%s.amazonaws.com%s", out->ecr_region, china ? ".cn" : "");
    if (out->ecr_api_host == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    api_entry = conf_entry(conf, out->ecr_api_host);
    api = entry_string(api_entry, "api_url");
    out->ecr_api_url =
        api != NULL ? strip_slash_dup(api) : util_strdup_printf("https://%s", out->ecr_api_host);
    if (out->ecr_api_url == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    return RD_OK;
}

rd_status registry_resolve_target(const repod_conf *conf, const char *registry_type,
                                  const char *registry_url, const json_t *registry_config,
                                  const char *image, registry_target *out, rd_error *err)
{
    const char *type =
        registry_type != NULL && registry_type[0] != '\0' ? registry_type : "DOCKER_HUB";
    const char *url = registry_url, *slash, *api;
    const json_t *entry;
    char *prefix = NULL, *repo = NULL;
    int hub_type, ecr, github, gcp, hub, from_config = 0;
    registry_host_rule rule;
    rd_status rc = RD_OK;

    if (out == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error.");
    memset(out, 0, sizeof(*out));
    hub_type = strcmp(type, "DOCKER_HUB") == 0;
    ecr = strcmp(type, "AWS_PRIVATE_ECR") == 0;
    github = strcmp(type, "GITHUB") == 0;
    gcp = strcmp(type, "GCP_PRIVATE_GCR") == 0;
    if (!hub_type && !ecr && !github && !gcp && strcmp(type, "HARBOR") != 0) {
        rc = rd_fail(err, RD_ERR_INVALID_REGISTRY_TYPE,
                     "Invalid registry type. (registry_type = %.64s)", type);
        goto done;
    }
    if (image == NULL || image[0] == '\0') {
        rc = rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = image)");
        goto done;
    }
    if (ecr) {
        /* checked before any host name is built from them */
        const char *account = entry_string(registry_config, "account_id");
        const char *region = entry_string(registry_config, "region");
        if (account != NULL && !registry_ecr_account_valid(account)) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_config.account_id = %.64s: expected 12 "
                         "digits)",
                         account);
            goto done;
        }
        if (region != NULL && !region_valid(region)) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_config.region = %.64s: expected an AWS "
                         "region such as us-east-1)",
                         region);
            goto done;
        }
    }
    if (url == NULL || url[0] == '\0') {
        url = NULL;
        if (conf != NULL && json_is_object(conf->registry_default_urls))
            url = entry_string(conf->registry_default_urls, type);
    }

    /* host[:port][/prefix], tolerating a scheme and trailing slashes */
    if (url != NULL) {
        const char *s = strstr(url, "://");
        size_t n;
        if (s != NULL)
            url = s + 3;
        slash = strchr(url, '/');
        out->host = slash != NULL ? strndup(url, (size_t)(slash - url)) : strdup(url);
        if (slash != NULL) {
            n = strlen(slash + 1);
            while (n > 0 && slash[1 + n - 1] == '/')
                n--;
            if (n > 0 && (prefix = strndup(slash + 1, n)) == NULL) {
                rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
                goto done;
            }
        }
    } else if (hub_type) {
        out->host = strdup(DOCKER_HUB_HOST);
    } else if (github) {
        out->host = strdup(GITHUB_HOST);
    } else if (ecr) {
        const char *account = entry_string(registry_config, "account_id");
        const char *region = entry_string(registry_config, "region");
        if (account == NULL || region == NULL) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_url = (none): AWS_PRIVATE_ECR needs "
                         "registry_url or registry_config.account_id and registry_config.region)");
            goto done;
        }
        if (!registry_ecr_account_valid(account)) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_config.account_id = %.64s: expected 12 "
                         "digits)",
                         account);
            goto done;
        }
        if (!region_valid(region)) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_config.region = %.64s)", region);
            goto done;
        }
        out->host = util_strdup_printf("%s.dkr.ecr.%s.amazonaws.com", account, region);
        from_config = 1;
    } else {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                     "Invalid parameter. (registry_url = (none): %s needs a registry_url)", type);
        goto done;
    }
    if (out->host == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    if (!host_valid(out->host)) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (registry_url = %.128s)",
                     registry_url != NULL && registry_url[0] != '\0' ? registry_url : out->host);
        goto done;
    }
    /* GITHUB and GCP_PRIVATE_GCR name their registry hosts; other hosts
     * belong to HARBOR (a `registries` api_url may point elsewhere). */
    if (github) {
        char norm[300];
        if (registry_host_normalize(out->host, norm, sizeof(norm)) != 0 ||
            strcmp(norm, GITHUB_HOST) != 0) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_url = %.128s: GITHUB reads from " GITHUB_HOST
                         ")",
                         url != NULL ? url : out->host);
            goto done;
        }
    }
    if (gcp && !registry_google_host(out->host)) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                     "Invalid parameter. (registry_url = %.128s: GCP_PRIVATE_GCR reads from "
                     "gcr.io, <region>.gcr.io or <location>-docker.pkg.dev)",
                     url != NULL ? url : out->host);
        goto done;
    }
    out->gcp = gcp;
    if (prefix != NULL && !repository_valid(prefix)) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (registry_url = %.128s)",
                     registry_url != NULL ? registry_url : url);
        goto done;
    }
    if (!repository_valid(image)) {
        rc = rd_fail(err, RD_ERR_INVALID_IMAGE_FORMAT, "Invalid image format. (image = %.128s)",
                     image);
        goto done;
    }

    /* Docker Hub: one entry for all its names, and the library/ namespace. */
    hub = is_docker_hub(out->host);
    entry = conf_entry(conf, out->host);
    if (hub && entry == NULL && strcasecmp(out->host, DOCKER_HUB_HOST) != 0) {
        free(out->host);
        if ((out->host = strdup(DOCKER_HUB_HOST)) == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
            goto done;
        }
        entry = conf_entry(conf, out->host);
    }
    if (prefix != NULL)
        repo = util_strdup_printf("%s/%s", prefix, image);
    else if (hub && strchr(image, '/') == NULL)
        repo = util_strdup_printf("library/%s", image);
    else
        repo = strdup(image);
    if (repo == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    if (strlen(repo) > REPOSITORY_MAX) {
        rc = rd_fail(err, RD_ERR_INVALID_IMAGE_FORMAT, "Invalid image format. (image = %.128s)",
                     image);
        goto done;
    }
    /* The outbound allow-list: nothing outside it is ever connected. */
    rule = registry_host_rule_of(conf, out->host);
    if (rule == REGISTRY_HOST_REFUSED) {
        if (from_config)
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_config.account_id = %.64s: registry host "
                         "%.128s is not in the outbound allow-list)",
                         entry_string(registry_config, "account_id"), out->host);
        else
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                         "Invalid parameter. (registry_url = %.128s: host %.128s is not in the "
                         "outbound allow-list)",
                         url, out->host);
        goto done;
    }
    out->named = rule == REGISTRY_HOST_NAMED;
    out->repository = repo;
    repo = NULL;
    api = entry_string(entry, "api_url");
    if (api != NULL)
        out->api_url = strip_slash_dup(api);
    else if (hub)
        out->api_url = strdup(DOCKER_HUB_API_URL);
    else
        out->api_url = util_strdup_printf("https://%s", out->host);
    if (out->api_url == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    if (ecr) {
        out->ecr = 1;
        rc = resolve_ecr(conf, entry, registry_config, out, err);
    }
done:
    free(prefix);
    free(repo);
    if (rc != RD_OK)
        registry_target_clear(out);
    return rc;
}
