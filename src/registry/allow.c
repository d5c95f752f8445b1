/*
 * allow.c - the outbound allow-list of the registry client (SPEC 9,
 * docs/registries.md): which registry hosts repod may connect to, which of
 * them the operator named exactly (those may resolve to loopback and other
 * special addresses), where a Bearer token realm may live, and the shape of
 * ECR account ids and regions.
 *
 * A host is compared as "name[:port]", lower-cased, ":443" dropped (the
 * https default), so "Harbor.Example.com:443" and "harbor.example.com" are
 * the same host and "harbor.example.com:5000" is another one.
 */
#include "registry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DOCKER_HUB_HOST    "registry.hub.docker.com"
#define DOCKER_HUB_API     "registry-1.docker.io"
#define DOCKER_HUB_REALM   "auth.docker.io"
#define GITHUB_HOST        "ghcr.io"
#define GOOGLE_TOKEN_HOST  "oauth2.googleapis.com"
#define HOST_NORMAL_MAX    300
#define ECR_ACCOUNT_DIGITS 12

/* Writes host[:port] of s (a URL or host[:port][/path]) lower-cased, with
 * ":443" dropped, into out.  0, or -1 when it does not fit or is empty. */
int registry_host_normalize(const char *s, char *out, size_t size)
{
    const char *p = s != NULL ? strstr(s, "://") : NULL;
    size_t n, i;
    if (s == NULL)
        return -1;
    p = p != NULL ? p + 3 : s;
    n = strcspn(p, "/?#");
    if (n == 0 || n >= size)
        return -1;
    for (i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    if (n > 4 && strcmp(out + n - 4, ":443") == 0 && out[0] != '[')
        out[n - 4] = '\0';
    else if (n > 5 && strcmp(out + n - 5, "]:443") == 0)
        out[n - 4] = '\0';
    return 0;
}

/* 1 when a and b (hosts or URLs) name the same host[:port]. */
static int same_host(const char *a, const char *b)
{
    char na[HOST_NORMAL_MAX], nb[HOST_NORMAL_MAX];
    return registry_host_normalize(a, na, sizeof(na)) == 0 &&
           registry_host_normalize(b, nb, sizeof(nb)) == 0 && strcmp(na, nb) == 0;
}

static int label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int registry_host_pattern_match(const char *pattern, const char *host)
{
    char np[HOST_NORMAL_MAX], nh[HOST_NORMAL_MAX];
    const char *p = np, *h = nh;
    if (registry_host_normalize(pattern, np, sizeof(np)) != 0 ||
        registry_host_normalize(host, nh, sizeof(nh)) != 0)
        return 0;
    while (*p != '\0') {
        if (p[0] == '*' && (p[1] == '.' || p[1] == ':' || p[1] == '\0')) {
            /* one whole DNS label: at least one character, no '.' or ':' */
            if (!label_char(*h))
                return 0;
            while (label_char(*h))
                h++;
            p++;
            continue;
        }
        if (*p != *h)
            return 0;
        p++;
        h++;
    }
    return *h == '\0';
}

/* 1 when host is a key of conf's `registries`, compared as hosts. */
static int registries_key(const repod_conf *conf, const char *host)
{
    const char *key;
    json_t *entry;
    if (conf == NULL || !json_is_object(conf->registries))
        return 0;
    json_object_foreach(conf->registries, key, entry)
    {
        if (same_host(key, host))
            return 1;
    }
    return 0;
}

registry_host_rule registry_host_rule_of(const repod_conf *conf, const char *host)
{
    const char *url, *type;
    json_t *v;
    size_t i;
    registry_host_rule rule = REGISTRY_HOST_REFUSED;

    if (host == NULL || host[0] == '\0')
        return REGISTRY_HOST_REFUSED;
    if (registries_key(conf, host))
        return REGISTRY_HOST_NAMED;
    if (conf != NULL && json_is_object(conf->registries)) {
        const char *key;
        json_t *entry;
        json_object_foreach(conf->registries, key, entry)
        {
            url = json_string_value(json_object_get(entry, "api_url"));
            if (url != NULL && same_host(url, host))
                return REGISTRY_HOST_NAMED;
        }
    }
    if (conf != NULL && json_is_object(conf->registry_default_urls)) {
        json_object_foreach(conf->registry_default_urls, type, v)
        {
            url = json_string_value(v);
            if (url != NULL && same_host(url, host))
                return REGISTRY_HOST_NAMED;
        }
    }
    for (i = 0; conf != NULL && i < conf->registry_allowed_hosts_count; i++) {
        const char *pat = conf->registry_allowed_hosts[i];
        if (strchr(pat, '*') == NULL && same_host(pat, host))
            return REGISTRY_HOST_NAMED;
        if (strchr(pat, '*') != NULL && registry_host_pattern_match(pat, host))
            rule = REGISTRY_HOST_ALLOWED;
    }
    if (rule == REGISTRY_HOST_REFUSED &&
        (same_host(host, DOCKER_HUB_HOST) || same_host(host, DOCKER_HUB_API) ||
         same_host(host, GITHUB_HOST) || registry_google_host(host)))
        rule = REGISTRY_HOST_ALLOWED;
    return rule;
}

int registry_google_host(const char *host)
{
    char n[HOST_NORMAL_MAX];
    const char *dot;
    size_t len;
    if (registry_host_normalize(host, n, sizeof(n)) != 0 || strchr(n, ':') != NULL)
        return 0; /* port 443 only */
    if (strcmp(n, "gcr.io") == 0)
        return 1;
    dot = strchr(n, '.');
    if (dot == NULL || dot == n)
        return 0;
    for (const char *p = n; p < dot; p++)
        if (!label_char(*p))
            return 0;
    if (strcmp(dot, ".gcr.io") == 0)
        return 1;
    /* "<location>-docker.pkg.dev": the first label ends in "-docker" */
    len = (size_t)(dot - n);
    return strcmp(dot, ".pkg.dev") == 0 && len > strlen("-docker") &&
           strncmp(dot - strlen("-docker"), "-docker", strlen("-docker")) == 0 && n[0] != '-';
}

registry_host_rule registry_token_uri_rule_of(const repod_conf *conf, const char *registry_host,
                                              const char *token_uri)
{
    const json_t *entry = NULL, *v;
    const char *key;
    json_t *e;
    size_t i;

    if (token_uri == NULL || strncasecmp(token_uri, "https://", 8) != 0)
        return REGISTRY_HOST_REFUSED;
    if (conf != NULL && json_is_object(conf->registries)) {
        json_object_foreach(conf->registries, key, e)
        {
            if (same_host(key, registry_host))
                entry = e;
        }
    }
    json_array_foreach(json_object_get(entry, "token_realm_hosts"), i, v)
    {
        if (json_is_string(v) && same_host(json_string_value(v), token_uri))
            return REGISTRY_HOST_NAMED;
    }
    return same_host(token_uri, GOOGLE_TOKEN_HOST) ? REGISTRY_HOST_ALLOWED : REGISTRY_HOST_REFUSED;
}

registry_host_rule registry_realm_rule_of(const repod_conf *conf, const char *registry_host,
                                          const char *api_url, const char *realm_host)
{
    const json_t *entry = NULL, *list, *v;
    const char *key;
    json_t *e;
    size_t i;

    if (conf != NULL && json_is_object(conf->registries)) {
        json_object_foreach(conf->registries, key, e)
        {
            if (same_host(key, registry_host))
                entry = e;
        }
    }
    if (same_host(realm_host, api_url) || same_host(realm_host, registry_host))
        return registry_host_rule_of(conf, registry_host) == REGISTRY_HOST_NAMED
                   ? REGISTRY_HOST_NAMED
                   : REGISTRY_HOST_ALLOWED;
    list = json_object_get(entry, "token_realm_hosts");
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && same_host(json_string_value(v), realm_host))
            return REGISTRY_HOST_NAMED;
    }
    if (list == NULL && same_host(registry_host, DOCKER_HUB_HOST) &&
        same_host(realm_host, DOCKER_HUB_REALM))
        return REGISTRY_HOST_ALLOWED;
    return REGISTRY_HOST_REFUSED;
}

int registry_ecr_account_valid(const char *s)
{
    size_t i;
    if (s == NULL || strlen(s) != ECR_ACCOUNT_DIGITS)
        return 0;
    for (i = 0; i < ECR_ACCOUNT_DIGITS; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int registry_ecr_region_valid(const char *s)
{
    /* two letters, one or more "-word" parts, then "-<digits>":
     * us-east-1, ap-northeast-2, us-gov-west-1, cn-north-1 */
    const char *p = s;
    int words = 0;
    if (s == NULL || strlen(s) > 32 || !islower((unsigned char)p[0]) ||
        !islower((unsigned char)p[1]) || p[2] != '-')
        return 0;
    p += 3;
    for (;;) {
        if (islower((unsigned char)*p)) {
            while (islower((unsigned char)*p))
                p++;
            if (*p != '-')
                return 0;
            p++;
            words++;
        } else if (isdigit((unsigned char)*p)) {
            while (isdigit((unsigned char)*p))
                p++;
            return *p == '\0' && words > 0;
        } else {
            return 0;
        }
    }
}
