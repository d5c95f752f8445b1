/*
 * registry.c - the registry client: one lookup = one small state machine on
 * the httpc's loop (see registry.h for the protocol).
 *
 *   start --(ECR keys, no cached credential)--> ECR GetAuthorizationToken
 *     |                                              |
 *     v                                              v
 *   tags page <---------- retry with credential ------+
 *     | 200 + Link rel=next -> next page (same credential)
 *     | 401 Bearer -> token realm -> retry      401 Basic -> retry
 *     | 200, no next -> sort, callback
 *
 * Invariant: a pending lookup has exactly one httpc request in flight
 * (arguments refused at once are reported through a request that httpc
 * fails asynchronously, so the callback still comes "later"), unless it is
 * parked by gate.c waiting for its registry origin's probe.  That is what
 * makes registry_client_free simple: it calls back and detaches every
 * pending lookup; each detached lookup is freed when its request's callback
 * arrives (httpc_free delivers those too), a parked one at once.
 *
 * Credentials (the cache, the Bearer token flow, Basic credentials, ECR)
 * are in auth.c, the per-origin gate in gate.c, the allow-list in allow.c;
 * registry-internal.h holds what they share.
 */
#include "registry-internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "log.h"
#include "obs.h"
#include "util.h"

/* ---- small helpers --------------------------------------------------------------- */

void registry_secret_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Reads a secret file: the first line, trailing white space removed.  NULL
 * when unreadable or empty. */
static char *secret_read(const char *path)
{
    size_t len = 0;
    char *data = util_read_file(path, &len);
    if (data == NULL)
        return NULL;
    data[strcspn(data, "\r\n")] = '\0';
    len = strlen(data);
    while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\t'))
        data[--len] = '\0';
    if (len == 0) {
        free(data);
        return NULL;
    }
    return data;
}

/* Scheme, host (lower-case, as in the URL) and effective port of url; 0 or -1. */
int registry_url_origin(const char *url, char *scheme, size_t ssize, char *host, size_t hsize,
                        int *port)
{
    struct evhttp_uri *uri = evhttp_uri_parse(url);
    const char *s, *h;
    int rc = -1;
    if (uri == NULL)
        return -1;
    s = evhttp_uri_get_scheme(uri);
    h = evhttp_uri_get_host(uri);
    if (s == NULL || h == NULL || h[0] == '\0')
        goto done;
    snprintf(scheme, ssize, "%s", s);
    snprintf(host, hsize, "%s", h);
    *port = evhttp_uri_get_port(uri);
    if (*port == -1)
        *port = strcasecmp(s, "https") == 0 ? 443 : 80;
    rc = 0;
done:
    evhttp_uri_free(uri);
    return rc;
}

static int same_origin(const char *a, const char *b)
{
    char sa[16], sb[16], ha[256], hb[256];
    int pa, pb;
    if (registry_url_origin(a, sa, sizeof(sa), ha, sizeof(ha), &pa) != 0 ||
        registry_url_origin(b, sb, sizeof(sb), hb, sizeof(hb), &pb) != 0)
        return 0;
    return strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 && pa == pb;
}

/* The part of url from its path on ("/v2/...?..."). */
static const char *url_path_part(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return url;
    p += 3;
    return p + strcspn(p, "/?#");
}

/* ---- metrics ---------------------------------------------------------------------- */

static atomic_ullong g_outcomes[REGISTRY_OUTCOME_COUNT];

static const char *const outcome_names[REGISTRY_OUTCOME_COUNT] = {
    "ok", "not_found", "unavailable", "timeout", "bad_response", "refused"};

const char *registry_outcome_name(registry_outcome o)
{
    return o < REGISTRY_OUTCOME_COUNT ? outcome_names[o] : "?";
}

unsigned long long registry_outcome_count(registry_outcome o)
{
    return o < REGISTRY_OUTCOME_COUNT ? atomic_load(&g_outcomes[o]) : 0;
}

static void count_outcome(rd_status code)
{
    registry_outcome o;
    switch (code) {
    case RD_OK:
        o = REGISTRY_OUTCOME_OK;
        break;
    case RD_ERR_NO_IMAGE_IN_REGISTRY:
        o = REGISTRY_OUTCOME_NOT_FOUND;
        break;
    case RD_ERR_REGISTRY_UNAVAILABLE:
        o = REGISTRY_OUTCOME_UNAVAILABLE;
        break;
    case RD_ERR_REGISTRY_TIMEOUT:
        o = REGISTRY_OUTCOME_TIMEOUT;
        break;
    case RD_ERR_REGISTRY_BAD_RESPONSE:
        o = REGISTRY_OUTCOME_BAD_RESPONSE;
        break;
    default:
        o = REGISTRY_OUTCOME_REFUSED;
        break;
    }
    atomic_fetch_add(&g_outcomes[o], 1);
}

/* Counts a finished lookup under its host when the allow-list admits it,
 * else under "other", so the label set stays bounded (obs.h). */
static void count_host(const lookup *lk, rd_status code)
{
    char host[OBS_LABEL_MAX];
    const char *label = NULL;
    if (lk->t.host != NULL && lk->rc != NULL &&
        registry_host_rule_of(lk->rc->conf, lk->t.host) != REGISTRY_HOST_REFUSED &&
        registry_host_normalize(lk->t.host, host, sizeof(host)) == 0)
        label = host;
    obs_registry_count(label, obs_reg_result_of(code));
}

/* ---- lookups: life cycle --------------------------------------------------------- */

void registry_settings_clear(link_settings *s)
{
    free(s->ca_file);
    memset(s, 0, sizeof(*s));
}

static void lookup_free(lookup *lk)
{
    if (lk == NULL)
        return;
    free(lk->image);
    registry_target_clear(&lk->t);
    registry_settings_clear(&lk->reg);
    registry_settings_clear(&lk->ecr);
    registry_settings_clear(&lk->realm);
    registry_settings_clear(&lk->gcp);
    registry_gcp_key_clear(&lk->gcp_key);
    free(lk->username);
    registry_secret_free(lk->password);
    free(lk->aws_key_id);
    registry_secret_free(lk->aws_secret);
    free(lk->ecr_host);
    free(lk->ecr_path);
    free(lk->ecr_query);
    free(lk->url);
    registry_secret_free(lk->auth);
    free(lk->scope);
    free(lk->token_scope);
    free(lk->realm_host);
    json_decref(lk->tags);
    json_decref(lk->seen);
    free(lk);
}

static void lookup_unlink(lookup *lk)
{
    registry_client *rc = lk->rc;
    if (rc == NULL)
        return;
    if (lk->prev != NULL)
        lk->prev->next = lk->next;
    else
        rc->lookups = lk->next;
    if (lk->next != NULL)
        lk->next->prev = lk->prev;
    lk->prev = lk->next = NULL;
    rc->pending--;
    lk->rc = NULL;
}

/* Reports the outcome and frees lk.  Must be the last thing a handler does. */
static void lookup_finish(lookup *lk, rd_status code, const rd_error *err)
{
    registry_tags_cb cb = lk->cb;
    void *arg = lk->arg;
    count_outcome(code);
    count_host(lk, code);
    registry_gate_leave(lk);
    lookup_unlink(lk);
    lk->cb = NULL;
    if (cb != NULL) {
        if (code == RD_OK) {
            registry_sort_versions(lk->tags);
            cb(RD_OK, NULL, lk->tags, arg);
        } else {
            cb(code, err, NULL, arg);
        }
    }
    lookup_free(lk);
}

void registry_lookup_fail(lookup *lk, rd_status code, const char *fmt, ...)
{
    rd_error err;
    va_list ap;
    err.code = code;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof(err.message), fmt, ap);
    va_end(ap);
    LOG_DEBUG("registry: %s: %s", rd_status_name(code), err.message);
    lookup_finish(lk, code, &err);
}

/* ---- requests --------------------------------------------------------------------- */

static void on_http(const httpc_response *resp, void *arg);

/* Sends one request for lk; the answer comes to on_http.  When httpc
 * refuses it at once the callback still comes (httpc's contract). */
void registry_lookup_send(lookup *lk, const char *method, const char *url,
                          const char *const *headers, const char *body, const link_settings *s)
{
    httpc_request_opts o;
    httpc_request_init(&o);
    o.method = method;
    o.url = url;
    o.headers = headers;
    o.body = body;
    o.body_len = body != NULL ? strlen(body) : 0;
    o.timeout_ms = s->timeout_ms;
    o.max_response_bytes = lk->rc->opts.max_response_bytes;
    o.ca_file = s->ca_file;
    o.verify = s->verify;
    o.allow_plain = s->plain;
    o.refuse_special_addresses = s->restricted;
    if (httpc_request(lk->rc->http, &o, on_http, lk) != 0)
        LOG_DEBUG("registry: request to %s refused at once", lk->t.host);
}

void registry_send_tags(lookup *lk)
{
    const char *headers[5] = {"Accept", "application/json", NULL, NULL, NULL};
    if (lk->auth != NULL) {
        headers[2] = "Authorization";
        headers[3] = lk->auth;
    }
    lk->step = STEP_TAGS;
    registry_lookup_send(lk, "GET", lk->url, headers, NULL, &lk->reg);
}

/* ---- answers ---------------------------------------------------------------------- */

/* Maps a transport failure of a request to who (a host) into lk's result. */
void registry_fail_transport(lookup *lk, const httpc_response *resp, const char *who)
{
    const char *why = resp->error != NULL ? resp->error : "";
    if (resp->result != HTTPC_ERR_INTERNAL || strcmp(why, "cancelled") != 0)
        LOG_WARN("registry: %s (image %s): %s", who, lk->image, why);
    switch (resp->result) {
    case HTTPC_ERR_TIMEOUT:
        registry_lookup_fail(lk, RD_ERR_REGISTRY_TIMEOUT,
                             "Registry timed out. (image = %s, registry = %s, timeout_ms = %d)",
                             lk->image, who, lk->reg.timeout_ms);
        break;
    case HTTPC_ERR_TOO_LARGE:
        registry_lookup_fail(
            lk, RD_ERR_REGISTRY_BAD_RESPONSE,
            "Registry answer too large. (image = %s, registry = %s, limit = %zu bytes)", lk->image,
            who, lk->rc->opts.max_response_bytes);
        break;
    case HTTPC_ERR_PROTOCOL:
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry sent a malformed HTTP answer. (image = %s, registry = %s)",
                             lk->image, who);
        break;
    case HTTPC_ERR_TLS:
        registry_lookup_fail(
            lk, RD_ERR_REGISTRY_UNAVAILABLE,
            "Registry unavailable. (image = %s, registry = %s, reason = TLS handshake or "
            "certificate verification failed)",
            lk->image, who);
        break;
    case HTTPC_ERR_REFUSED:
        registry_lookup_fail(lk, RD_ERR_INVALID_PARAMETER,
                             "Invalid parameter. (registry_url = %s: %s resolves to a loopback, "
                             "link-local, unspecified or multicast address; name the host in the "
                             "config to allow it)",
                             lk->t.host, who);
        break;
    case HTTPC_ERR_CONNECT:
        registry_lookup_fail(
            lk, RD_ERR_REGISTRY_UNAVAILABLE,
            "Registry unavailable. (image = %s, registry = %s, reason = cannot connect)", lk->image,
            who);
        break;
    default:
        registry_lookup_fail(lk, RD_ERR_REGISTRY_UNAVAILABLE,
                             "Registry unavailable. (image = %s, registry = %s, reason = %s)",
                             lk->image, who,
                             strcmp(why, "cancelled") == 0 ? "cancelled" : "request failed");
        break;
    }
}

/* Maps an unexpected HTTP status. */
void registry_fail_status(lookup *lk, int status, const char *who)
{
    if (status == 502 || status == 503 || status == 429)
        registry_lookup_fail(lk, RD_ERR_REGISTRY_UNAVAILABLE,
                             "Registry unavailable. (image = %s, registry = %s, status = %d)",
                             lk->image, who, status);
    else if (status == 504)
        registry_lookup_fail(lk, RD_ERR_REGISTRY_TIMEOUT,
                             "Registry timed out. (image = %s, registry = %s, status = 504)",
                             lk->image, who);
    else
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry answered an unexpected status. (image = %s, registry = %s, "
                             "status = %d)",
                             lk->image, who, status);
}

static void on_tags(lookup *lk, const httpc_response *resp)
{
    char *next = NULL, *rebased;

    if (resp->result != HTTPC_OK) {
        registry_fail_transport(lk, resp, lk->t.host);
        return;
    }
    switch (resp->status) {
    case 200:
        break;
    case 401:
        registry_on_unauthorized(lk, resp);
        return;
    case 404:
        registry_lookup_fail(lk, RD_ERR_NO_IMAGE_IN_REGISTRY,
                             "Image not found in registry. (image = %s, registry = %s)", lk->image,
                             lk->t.host);
        return;
    case 403:
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry denied access to the image. (image = %s, registry = %s)",
                             lk->image, lk->t.host);
        return;
    default:
        registry_fail_status(lk, resp->status, lk->t.host);
        return;
    }
    if (registry_tags_page_collect(resp->body, resp->body_len, lk->seen, lk->tags) != 0) {
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry sent an invalid tag list. (image = %s, registry = %s)",
                             lk->image, lk->t.host);
        return;
    }
    lk->pages++;
    if (registry_link_next(httpc_response_header(resp, "Link"), lk->url, &next) != 0) {
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry sent an invalid Link header. (image = %s, registry = %s)",
                             lk->image, lk->t.host);
        return;
    }
    if (next == NULL) {
        lookup_finish(lk, RD_OK, NULL);
        return;
    }
    if (!same_origin(next, lk->url)) {
        /* Credentials never go to another host: a registry behind a proxy
         * that advertises its own name is read through the proxy. */
        rebased = util_strdup_printf("%s%s", lk->t.api_url, url_path_part(next));
        free(next);
        next = rebased;
    }
    if (next == NULL) {
        registry_lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        return;
    }
    if (strcmp(next, lk->url) == 0 || lk->pages >= lk->rc->opts.max_pages) {
        free(next);
        registry_lookup_fail(
            lk, RD_ERR_REGISTRY_BAD_RESPONSE,
            "Registry pagination does not end. (image = %s, registry = %s, pages = %d)", lk->image,
            lk->t.host, lk->pages);
        return;
    }
    free(lk->url);
    lk->url = next;
    registry_send_tags(lk);
}

static void on_http(const httpc_response *resp, void *arg)
{
    lookup *lk = arg;
    if (lk->rc == NULL) { /* cancelled by registry_client_free */
        lookup_free(lk);
        return;
    }
    switch (lk->step) {
    case STEP_DEFERRED:
        lookup_finish(lk, lk->deferred.code, &lk->deferred);
        break;
    case STEP_ECR:
        registry_on_ecr(lk, resp);
        break;
    case STEP_GCP:
        registry_on_gcp(lk, resp);
        break;
    case STEP_TOKEN:
        registry_on_token(lk, resp);
        break;
    case STEP_TAGS:
        registry_gate_answer(lk, resp);
        on_tags(lk, resp);
        break;
    }
}

/* ---- start ------------------------------------------------------------------------ */

/* Connection settings from a `registries` entry (NULL = defaults). */
static int settings_from_entry(const registry_client *rc, const json_t *entry, const char *url,
                               link_settings *s)
{
    const json_t *t = json_object_get(entry, "timeout_ms");
    const char *ca = json_string_value(json_object_get(entry, "ca_file"));
    s->verify = !json_is_false(json_object_get(entry, "verify"));
    s->timeout_ms = REGISTRY_TIMEOUT_MS;
    if (rc->conf != NULL && rc->conf->remote_defaults.timeout_ms > 0 &&
        rc->conf->remote_defaults.timeout_ms <= 600000)
        s->timeout_ms = (int)rc->conf->remote_defaults.timeout_ms;
    if (json_is_integer(t) && json_integer_value(t) > 0 && json_integer_value(t) <= 600000)
        s->timeout_ms = (int)json_integer_value(t);
    s->plain = strncasecmp(url, "http://", 7) == 0;
    if (ca != NULL && ca[0] != '\0' && (s->ca_file = strdup(ca)) == NULL)
        return -1;
    return 0;
}

/* Resolves lk's target, settings and secrets; RD_OK or an error in err. */
static rd_status lookup_prepare(lookup *lk, const char *type, const char *url, const json_t *config,
                                const char *image, rd_error *err)
{
    const repod_conf *conf = lk->rc->conf;
    const json_t *entry = NULL, *api_entry = NULL;
    const char *user, *pw_file, *key_id, *key_file, *sa_file;
    rd_status rc;

    rc = registry_resolve_target(conf, type, url, config, image, &lk->t, err);
    if (rc != RD_OK)
        return rc;
    if (conf != NULL && json_is_object(conf->registries)) {
        entry = json_object_get(conf->registries, lk->t.host);
        if (lk->t.ecr)
            api_entry = json_object_get(conf->registries, lk->t.ecr_api_host);
    }
    if (settings_from_entry(lk->rc, entry, lk->t.api_url, &lk->reg) != 0 ||
        (lk->t.ecr && settings_from_entry(lk->rc, api_entry, lk->t.ecr_api_url, &lk->ecr) != 0))
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    lk->reg.restricted = !lk->t.named;
    lk->ecr.restricted = api_entry == NULL;
    user = json_string_value(json_object_get(entry, "username"));
    pw_file = json_string_value(json_object_get(entry, "password_file"));
    key_id = json_string_value(json_object_get(entry, "aws_access_key_id"));
    key_file = json_string_value(json_object_get(entry, "aws_secret_access_key_file"));
    if (pw_file != NULL && (lk->password = secret_read(pw_file)) == NULL) {
        LOG_ERROR("registry: cannot read password_file of registry %s", lk->t.host);
        return rd_fail(err, RD_ERR_INTERNAL,
                       "Internal error. (the credentials of registry %s cannot be read)",
                       lk->t.host);
    }
    if (user != NULL && user[0] != '\0')
        lk->username = strdup(user);
    else if (lk->t.ecr && lk->password != NULL)
        lk->username = strdup("AWS");
    if (lk->t.ecr && key_id != NULL && key_file != NULL) {
        if (strlen(key_id) > 128 || strpbrk(key_id, "/, \r\n") != NULL)
            return rd_fail(err, RD_ERR_INTERNAL,
                           "Internal error. (the AWS access key id of registry %s is invalid)",
                           lk->t.host);
        if (registry_ecr_url_parts(lk) != 0)
            return rd_fail(err, RD_ERR_INTERNAL,
                           "Internal error. (the ECR API URL of registry %s is invalid)",
                           lk->t.host);
        lk->aws_key_id = strdup(key_id);
        if ((lk->aws_secret = secret_read(key_file)) == NULL) {
            LOG_ERROR("registry: cannot read aws_secret_access_key_file of registry %s",
                      lk->t.host);
            return rd_fail(err, RD_ERR_INTERNAL,
                           "Internal error. (the credentials of registry %s cannot be read)",
                           lk->t.host);
        }
    }
    sa_file = json_string_value(json_object_get(entry, "service_account_key_file"));
    if (lk->t.gcp && sa_file != NULL && (rc = registry_gcp_prepare(lk, sa_file, err)) != RD_OK)
        return rc;
    lk->scope = util_strdup_printf("repository:%s:pull", lk->t.repository);
    lk->url = util_strdup_printf("%s/v2/%s/tags/list?n=%d", lk->t.api_url, lk->t.repository,
                                 lk->rc->opts.page_size);
    lk->tags = json_array();
    lk->seen = json_object();
    if (lk->scope == NULL || lk->url == NULL || lk->tags == NULL || lk->seen == NULL ||
        (user != NULL && user[0] != '\0' && lk->username == NULL) ||
        (lk->aws_secret != NULL && lk->aws_key_id == NULL))
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    return RD_OK;
}

void registry_list_tags(registry_client *rc, const char *registry_type, const char *registry_url,
                        const json_t *registry_config, const char *image, registry_tags_cb cb,
                        void *arg)
{
    lookup *lk;
    rd_error err;

    if (rc == NULL || cb == NULL)
        return;
    lk = calloc(1, sizeof(*lk));
    if (lk == NULL) {
        rd_fail(&err, RD_ERR_INTERNAL, "Out of memory.");
        cb(RD_ERR_INTERNAL, &err, NULL, arg);
        return;
    }
    lk->rc = rc;
    lk->cb = cb;
    lk->arg = arg;
    lk->next = rc->lookups;
    if (rc->lookups != NULL)
        rc->lookups->prev = lk;
    rc->lookups = lk;
    rc->pending++;
    lk->image = strdup(image != NULL ? image : "");
    rd_error_clear(&err);
    if (lk->image == NULL)
        rd_fail(&err, RD_ERR_INTERNAL, "Out of memory.");
    else
        lookup_prepare(lk, registry_type, registry_url, registry_config, image, &err);
    if (err.code != RD_OK) {
        registry_lookup_defer(lk, &err);
        return;
    }
    registry_lookup_begin(lk);
}

void registry_lookup_defer(lookup *lk, const rd_error *err)
{
    httpc_request_opts o;
    lk->deferred = *err;
    lk->step = STEP_DEFERRED;
    httpc_request_init(&o);
    o.url = "registry-deferred:";
    httpc_request(lk->rc->http, &o, on_http, lk);
}

void registry_lookup_begin(lookup *lk)
{
    if (!registry_gate_admit(lk))
        return;
    if (lk->gcp_key.private_key != NULL && !registry_gcp_use_cached(lk)) {
        registry_send_gcp(lk); /* the access token first */
        return;
    }
    registry_lookup_tags_start(lk);
}

void registry_lookup_tags_start(lookup *lk)
{
    registry_client *rc = lk->rc;
    const char *cached;

    if (lk->t.ecr && lk->aws_key_id != NULL) {
        cached = registry_cache_find(rc, lk->t.host, "");
        if (cached == NULL) {
            registry_send_ecr(lk);
            return;
        }
        lk->auth = strdup(cached);
    } else {
        cached = registry_cache_find(rc, lk->t.host, lk->scope);
        if (cached == NULL)
            cached = registry_cache_find(rc, lk->t.host, "");
        if (cached != NULL)
            lk->auth = strdup(cached);
    }
    lk->auth_cached = lk->auth != NULL;
    registry_send_tags(lk);
}

/* ---- the client ------------------------------------------------------------------- */

void registry_client_options_init(registry_client_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->page_size = REGISTRY_PAGE_SIZE;
    opts->max_pages = REGISTRY_MAX_PAGES;
    opts->max_response_bytes = REGISTRY_MAX_BYTES;
}

registry_client *registry_client_new_with(httpc *http, const repod_conf *conf,
                                          const registry_client_options *opts)
{
    registry_client *rc;
    if (http == NULL)
        return NULL;
    rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    rc->http = http;
    rc->conf = conf;
    registry_client_options_init(&rc->opts);
    if (opts != NULL) {
        if (opts->page_size > 0)
            rc->opts.page_size = opts->page_size;
        if (opts->max_pages > 0)
            rc->opts.max_pages = opts->max_pages;
        if (opts->max_response_bytes > 0)
            rc->opts.max_response_bytes = opts->max_response_bytes;
    }
    return rc;
}

registry_client *registry_client_new(httpc *http, const repod_conf *conf)
{
    return registry_client_new_with(http, conf, NULL);
}

void registry_client_free(registry_client *rc)
{
    lookup *lk;
    cred_entry *e;
    rd_error err;
    registry_tags_cb cb;

    if (rc == NULL)
        return;
    for (lk = rc->lookups; lk != NULL; lk = lk->next)
        lk->gate = NULL;
    registry_gate_free_all(rc);
    while ((lk = rc->lookups) != NULL) {
        int parked = lk->parked;
        lookup_unlink(lk); /* lk stays alive until its request's callback */
        cb = lk->cb;
        lk->cb = NULL;
        rd_fail(&err, RD_ERR_REGISTRY_UNAVAILABLE,
                "Registry unavailable. (image = %s, registry = %s, reason = cancelled)",
                lk->image != NULL ? lk->image : "", lk->t.host != NULL ? lk->t.host : "(unknown)");
        if (cb != NULL)
            cb(RD_ERR_REGISTRY_UNAVAILABLE, &err, NULL, lk->arg);
        if (parked) /* no request in flight: nothing else frees it */
            lookup_free(lk);
    }
    while ((e = rc->cache) != NULL) {
        rc->cache = e->next;
        registry_cred_free(e);
    }
    free(rc);
}

size_t registry_client_pending(const registry_client *rc)
{
    return rc != NULL ? rc->pending : 0;
}

unsigned long registry_client_credential_fetches(const registry_client *rc)
{
    return rc != NULL ? rc->credential_fetches : 0;
}
