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
 * Invariant: a pending lookup always has exactly one httpc request in
 * flight (arguments refused at once are reported through a request that
 * httpc fails asynchronously, so the callback still comes "later").  That is
 * what makes registry_client_free simple: it calls back and detaches every
 * pending lookup; each detached lookup is freed when its request's callback
 * arrives (httpc_free delivers those too).
 *
 * Credential cache: a list of (host "|" scope) -> Authorization value with
 * a monotonic expiry, host being the `registries` key (so two entries that
 * share an api_url but not their credentials never share a token); scope ""
 * holds per-registry basic credentials (configured or from ECR).  Values
 * are wiped when dropped.
 */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "log.h"
#include "util.h"

#define REGISTRY_PAGE_SIZE        1000
#define REGISTRY_MAX_PAGES        100
#define REGISTRY_MAX_BYTES        ((size_t)8 * 1024 * 1024)
#define REGISTRY_TIMEOUT_MS       5000
#define REGISTRY_TOKEN_TTL_S      60      /* bearer tokens without expires_in */
#define REGISTRY_BASIC_TTL_MS     300000  /* configured basic credentials */
#define REGISTRY_ECR_TTL_MS       3600000 /* ECR answers without expiresAt */
#define REGISTRY_ECR_MARGIN_MS    60000   /* renew ECR credentials this early */
#define REGISTRY_CACHE_MAX        256
#define REGISTRY_MAX_UNAUTHORIZED 4 /* 401s answered in one lookup */
#define REGISTRY_ECR_TARGET       "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
#define REGISTRY_ECR_CONTENT_TYPE "application/x-amz-json-1.1"
#define REGISTRY_SIGV4_MAX        1024

typedef struct cred_entry {
    struct cred_entry *next;
    char *key;          /* host "|" scope */
    char *header;       /* Authorization value (secret) */
    int64_t expires_ms; /* monotonic */
} cred_entry;

typedef struct lookup lookup;

struct registry_client {
    httpc *http;
    const repod_conf *conf;
    registry_client_options opts;
    lookup *lookups; /* pending, doubly linked */
    size_t pending;
    cred_entry *cache;
    size_t cache_count;
    unsigned long credential_fetches;
};

typedef enum { STEP_DEFERRED, STEP_ECR, STEP_TOKEN, STEP_TAGS } lookup_step;

/* Where and how one kind of request goes. */
typedef struct {
    char *ca_file; /* NULL = system trust store */
    int verify;
    int timeout_ms;
    int plain; /* http:// permitted (configured api_url is http://) */
} link_settings;

struct lookup {
    registry_client *rc; /* NULL once cancelled */
    lookup *prev, *next;
    registry_tags_cb cb;
    void *arg;
    char *image; /* as given, for messages */
    registry_target t;
    link_settings reg;                     /* the registry */
    link_settings ecr;                     /* ECR's API endpoint */
    link_settings realm;                   /* the token service of the current dance */
    char *username, *password;             /* basic credentials (password secret) */
    char *aws_key_id, *aws_secret;         /* ECR keys (secret) */
    char *ecr_host, *ecr_path, *ecr_query; /* Host header, path and query of the ECR API URL */
    lookup_step step;
    char *url;        /* the tags page being read */
    char *auth;       /* Authorization value for tags requests (secret) */
    int auth_cached;  /* auth came from the cache */
    int dance_done;   /* auth was obtained by this lookup */
    int unauthorized; /* 401s seen */
    int pages;
    char *scope;       /* "repository:<name>:pull" */
    char *token_scope; /* scope of the token being fetched */
    char *realm_host;  /* for messages */
    json_t *tags, *seen;
    rd_error deferred; /* STEP_DEFERRED: what to report */
};

/* ---- small helpers --------------------------------------------------------------- */

static void secret_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static int64_t now_ms(void)
{
    return util_monotonic_us() / 1000;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
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

/* Percent-encodes a query parameter value (unreserved characters kept). */
static char *query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Scheme, host (lower-case, as in the URL) and effective port of url; 0 or -1. */
static int url_origin(const char *url, char *scheme, size_t ssize, char *host, size_t hsize,
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
    if (url_origin(a, sa, sizeof(sa), ha, sizeof(ha), &pa) != 0 ||
        url_origin(b, sb, sizeof(sb), hb, sizeof(hb), &pb) != 0)
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

/* ---- the credential cache -------------------------------------------------------- */

static void cred_free(cred_entry *e)
{
    free(e->key);
    secret_free(e->header);
    free(e);
}

static char *cred_key(const char *host, const char *scope)
{
    return util_strdup_printf("%s|%s", host, scope != NULL ? scope : "");
}

/* The cached value for (host, scope), or NULL; drops expired entries. */
static const char *cache_find(registry_client *rc, const char *host, const char *scope)
{
    cred_entry **pp = &rc->cache, *e;
    char *key = cred_key(host, scope);
    const char *found = NULL;
    int64_t now = now_ms();
    if (key == NULL)
        return NULL;
    while ((e = *pp) != NULL) {
        if (e->expires_ms <= now) {
            *pp = e->next;
            cred_free(e);
            rc->cache_count--;
            continue;
        }
        if (found == NULL && strcmp(e->key, key) == 0)
            found = e->header;
        pp = &e->next;
    }
    free(key);
    return found;
}

static void cache_put(registry_client *rc, const char *host, const char *scope, const char *header,
                      int64_t ttl_ms)
{
    cred_entry **pp, *e, **oldest;
    char *key;
    if (ttl_ms <= 0 || (key = cred_key(host, scope)) == NULL)
        return;
    for (pp = &rc->cache; (e = *pp) != NULL; pp = &e->next) {
        if (strcmp(e->key, key) == 0) {
            *pp = e->next;
            cred_free(e);
            rc->cache_count--;
            break;
        }
    }
    while (rc->cache_count >= REGISTRY_CACHE_MAX) {
        oldest = &rc->cache;
        for (pp = &rc->cache; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->expires_ms < (*oldest)->expires_ms)
                oldest = pp;
        }
        e = *oldest;
        *oldest = e->next;
        cred_free(e);
        rc->cache_count--;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->header = strdup(header)) == NULL) {
        free(e);
        free(key);
        return;
    }
    e->key = key;
    e->expires_ms = now_ms() + ttl_ms;
    e->next = rc->cache;
    rc->cache = e;
    rc->cache_count++;
}

/* Drops every entry whose value is header (it was just refused). */
static void cache_drop_header(registry_client *rc, const char *header)
{
    cred_entry **pp = &rc->cache, *e;
    while ((e = *pp) != NULL) {
        if (strcmp(e->header, header) == 0) {
            *pp = e->next;
            cred_free(e);
            rc->cache_count--;
        } else {
            pp = &e->next;
        }
    }
}

/* ---- lookups: life cycle --------------------------------------------------------- */

static void settings_clear(link_settings *s)
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
    settings_clear(&lk->reg);
    settings_clear(&lk->ecr);
    settings_clear(&lk->realm);
    free(lk->username);
    secret_free(lk->password);
    free(lk->aws_key_id);
    secret_free(lk->aws_secret);
    free(lk->ecr_host);
    free(lk->ecr_path);
    free(lk->ecr_query);
    free(lk->url);
    secret_free(lk->auth);
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

static void lookup_fail(lookup *lk, rd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lookup_fail(lookup *lk, rd_status code, const char *fmt, ...)
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
static void lookup_send(lookup *lk, const char *method, const char *url, const char *const *headers,
                        const char *body, const link_settings *s)
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
    if (httpc_request(lk->rc->http, &o, on_http, lk) != 0)
        LOG_DEBUG("registry: request to %s refused at once", lk->t.host);
}

static void send_tags(lookup *lk)
{
    const char *headers[5] = {"Accept", "application/json", NULL, NULL, NULL};
    if (lk->auth != NULL) {
        headers[2] = "Authorization";
        headers[3] = lk->auth;
    }
    lk->step = STEP_TAGS;
    lookup_send(lk, "GET", lk->url, headers, NULL, &lk->reg);
}

/* Settings of the token realm: the registry's own when the realm is on the
 * registry's host, else those of a `registries` entry for the realm's
 * host[:port], else verified HTTPS with the system store. */
static int realm_settings(lookup *lk, const char *realm)
{
    char rs[16], rh[256], as[16], ah[256], key[300];
    int rp, ap;
    const json_t *entry = NULL;
    const char *ca;

    settings_clear(&lk->realm);
    if (url_origin(realm, rs, sizeof(rs), rh, sizeof(rh), &rp) != 0 ||
        url_origin(lk->t.api_url, as, sizeof(as), ah, sizeof(ah), &ap) != 0)
        return -1;
    if (strcasecmp(rs, "https") != 0 && !(strcasecmp(rs, "http") == 0 && lk->reg.plain))
        return -1; /* never send credentials in clear to a TLS registry's realm */
    free(lk->realm_host);
    lk->realm_host = strdup(rh);
    if (strcasecmp(rh, ah) == 0) {
        lk->realm.ca_file = dup_or_null(lk->reg.ca_file);
        lk->realm.verify = lk->reg.verify;
        lk->realm.timeout_ms = lk->reg.timeout_ms;
        lk->realm.plain = lk->reg.plain;
        return 0;
    }
    if (lk->rc->conf != NULL && json_is_object(lk->rc->conf->registries)) {
        snprintf(key, sizeof(key), "%s:%d", rh, rp);
        entry = json_object_get(lk->rc->conf->registries, key);
        if (entry == NULL)
            entry = json_object_get(lk->rc->conf->registries, rh);
    }
    ca = json_string_value(json_object_get(entry, "ca_file"));
    lk->realm.ca_file = dup_or_null(ca);
    lk->realm.verify = !json_is_false(json_object_get(entry, "verify"));
    lk->realm.timeout_ms = lk->reg.timeout_ms;
    lk->realm.plain = lk->reg.plain;
    return 0;
}

/* Basic credentials of lk as an Authorization value, or NULL. */
static char *basic_header(const lookup *lk)
{
    char *pair, *b64, *out;
    if (lk->username == NULL || lk->password == NULL)
        return NULL;
    pair = util_strdup_printf("%s:%s", lk->username, lk->password);
    if (pair == NULL)
        return NULL;
    b64 = registry_base64_encode(pair, strlen(pair));
    secret_free(pair);
    if (b64 == NULL)
        return NULL;
    out = util_strdup_printf("Basic %s", b64);
    secret_free(b64);
    return out;
}

/* GET realm?service=..&scope=.. (one scope= per space-separated scope). */
static void send_token(lookup *lk, const registry_challenge *ch, const char *scope)
{
    const char *headers[5] = {"Accept", "application/json", NULL, NULL, NULL};
    char *url = NULL, *svc = NULL, *basic = NULL, *grown, *copy = NULL, *tok, *save = NULL;

    if (realm_settings(lk, ch->realm) != 0) {
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry sent an unusable token realm. (image = %s, registry = %s)", lk->image,
                    lk->t.host);
        return;
    }
    free(lk->token_scope);
    lk->token_scope = strdup(scope);
    url = strdup(ch->realm);
    if (url != NULL && ch->service != NULL && (svc = query_escape(ch->service)) != NULL) {
        grown =
            util_strdup_printf("%s%cservice=%s", url, strchr(url, '?') != NULL ? '&' : '?', svc);
        free(url);
        url = grown;
    }
    copy = strdup(scope);
    for (tok = copy != NULL ? strtok_r(copy, " ", &save) : NULL; url != NULL && tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        char *esc = query_escape(tok);
        grown = esc != NULL ? util_strdup_printf("%s%cscope=%s", url,
                                                 strchr(url, '?') != NULL ? '&' : '?', esc)
                            : NULL;
        free(esc);
        free(url);
        url = grown;
    }
    if (url == NULL || lk->token_scope == NULL || copy == NULL) {
        lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    if ((basic = basic_header(lk)) != NULL) {
        headers[2] = "Authorization";
        headers[3] = basic;
    }
    lk->step = STEP_TOKEN;
    lk->rc->credential_fetches++;
    lookup_send(lk, "GET", url, headers, NULL, &lk->realm);
done:
    free(url);
    free(svc);
    free(copy);
    secret_free(basic);
}

/* POST ECR GetAuthorizationToken, SigV4-signed. */
static void send_ecr(lookup *lk)
{
    char amz_date[17], authz[REGISTRY_SIGV4_MAX];
    registry_sigv4_request sr;
    const char *signed_headers[] = {"Content-Type", REGISTRY_ECR_CONTENT_TYPE, "X-Amz-Target",
                                    REGISTRY_ECR_TARGET, NULL};
    const char *headers[] = {"Accept",
                             "application/json",
                             "Content-Type",
                             REGISTRY_ECR_CONTENT_TYPE,
                             "X-Amz-Target",
                             REGISTRY_ECR_TARGET,
                             "X-Amz-Date",
                             amz_date,
                             "Authorization",
                             authz,
                             NULL};

    registry_sigv4_timestamp(util_now_ms(), amz_date);
    memset(&sr, 0, sizeof(sr));
    sr.method = "POST";
    sr.host = lk->ecr_host;
    sr.path = lk->ecr_path;
    sr.query = lk->ecr_query;
    sr.headers = signed_headers;
    sr.body = "{}";
    sr.body_len = 2;
    sr.access_key_id = lk->aws_key_id;
    sr.secret_access_key = lk->aws_secret;
    sr.region = lk->t.ecr_region;
    sr.service = "ecr";
    sr.amz_date = amz_date;
    if (registry_sigv4_authorization(&sr, authz, sizeof(authz)) != 0) {
        lookup_fail(lk, RD_ERR_INTERNAL,
                    "Internal error. (cannot sign the ECR request for registry %s)", lk->t.host);
        return;
    }
    lk->step = STEP_ECR;
    lk->rc->credential_fetches++;
    lookup_send(lk, "POST", lk->t.ecr_api_url, headers, "{}", &lk->ecr);
    OPENSSL_cleanse(authz, sizeof(authz));
}

/* Splits the ECR API URL into what SigV4 signs: the Host header as httpc
 * sends it (port only when not the scheme's default), path and query. */
static int ecr_url_parts(lookup *lk)
{
    struct evhttp_uri *uri = evhttp_uri_parse(lk->t.ecr_api_url);
    const char *h, *scheme, *path, *query;
    int port, def, rc = -1;

    if (uri == NULL || (h = evhttp_uri_get_host(uri)) == NULL || h[0] == '\0' ||
        (scheme = evhttp_uri_get_scheme(uri)) == NULL)
        goto done;
    port = evhttp_uri_get_port(uri);
    def = strcasecmp(scheme, "http") == 0 ? 80 : 443;
    lk->ecr_host = port == -1 || port == def ? strdup(h) : util_strdup_printf("%s:%d", h, port);
    path = evhttp_uri_get_path(uri);
    lk->ecr_path = strdup(path != NULL && path[0] != '\0' ? path : "/");
    query = evhttp_uri_get_query(uri);
    lk->ecr_query = query != NULL ? strdup(query) : NULL;
    if (lk->ecr_host != NULL && lk->ecr_path != NULL && (query == NULL || lk->ecr_query != NULL))
        rc = 0;
done:
    if (uri != NULL)
        evhttp_uri_free(uri);
    return rc;
}

/* ---- answers ---------------------------------------------------------------------- */

/* Maps a transport failure of a request to who (a host) into lk's result. */
static void fail_transport(lookup *lk, const httpc_response *resp, const char *who)
{
    const char *why = resp->error != NULL ? resp->error : "";
    if (resp->result != HTTPC_ERR_INTERNAL || strcmp(why, "cancelled") != 0)
        LOG_WARN("registry: %s (image %s): %s", who, lk->image, why);
    switch (resp->result) {
    case HTTPC_ERR_TIMEOUT:
        lookup_fail(lk, RD_ERR_REGISTRY_TIMEOUT,
                    "Registry timed out. (image = %s, registry = %s, timeout_ms = %d)", lk->image,
                    who, lk->reg.timeout_ms);
        break;
    case HTTPC_ERR_TOO_LARGE:
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry answer too large. (image = %s, registry = %s, limit = %zu bytes)",
                    lk->image, who, lk->rc->opts.max_response_bytes);
        break;
    case HTTPC_ERR_PROTOCOL:
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry sent a malformed HTTP answer. (image = %s, registry = %s)", lk->image,
                    who);
        break;
    case HTTPC_ERR_TLS:
        lookup_fail(lk, RD_ERR_REGISTRY_UNAVAILABLE,
                    "Registry unavailable. (image = %s, registry = %s, reason = TLS handshake or "
                    "certificate verification failed)",
                    lk->image, who);
        break;
    case HTTPC_ERR_CONNECT:
        lookup_fail(lk, RD_ERR_REGISTRY_UNAVAILABLE,
                    "Registry unavailable. (image = %s, registry = %s, reason = cannot connect)",
                    lk->image, who);
        break;
    default:
        lookup_fail(lk, RD_ERR_REGISTRY_UNAVAILABLE,
                    "Registry unavailable. (image = %s, registry = %s, reason = %s)", lk->image,
                    who, strcmp(why, "cancelled") == 0 ? "cancelled" : "request failed");
        break;
    }
}

/* Maps an unexpected HTTP status. */
static void fail_status(lookup *lk, int status, const char *who)
{
    if (status == 502 || status == 503 || status == 429)
        lookup_fail(lk, RD_ERR_REGISTRY_UNAVAILABLE,
                    "Registry unavailable. (image = %s, registry = %s, status = %d)", lk->image,
                    who, status);
    else if (status == 504)
        lookup_fail(lk, RD_ERR_REGISTRY_TIMEOUT,
                    "Registry timed out. (image = %s, registry = %s, status = 504)", lk->image,
                    who);
    else
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry answered an unexpected status. (image = %s, registry = %s, "
                    "status = %d)",
                    lk->image, who, status);
}

static void fail_refused(lookup *lk, const char *who)
{
    if (lk->username != NULL) {
        /* the user name is for the operator's log, not for API clients */
        LOG_WARN("registry: %s refused the credentials of user %s (registry %s)", who, lk->username,
                 lk->t.host);
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry authentication was refused. (image = %s, registry = %s)", lk->image,
                    who);
    } else {
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry authentication was refused: the registry requires credentials and "
                    "none are configured. (image = %s, registry = %s)",
                    lk->image, who);
    }
}

/* A 401 from the registry: find or fetch a credential, or give up. */
static void on_unauthorized(lookup *lk, const httpc_response *resp)
{
    registry_challenge ch;
    const char *scope, *cached;
    char *basic;

    memset(&ch, 0, sizeof(ch));
    if (++lk->unauthorized > REGISTRY_MAX_UNAUTHORIZED || lk->dance_done) {
        if (lk->dance_done && lk->username == NULL && lk->aws_key_id == NULL &&
            lk->password == NULL)
            /* anonymous token, still refused: Docker Hub's answer for an
             * image that does not exist (or is private) */
            lookup_fail(lk, RD_ERR_NO_IMAGE_IN_REGISTRY,
                        "Image not found in registry (or not readable anonymously). (image = %s, "
                        "registry = %s)",
                        lk->image, lk->t.host);
        else
            fail_refused(lk, lk->t.host);
        return;
    }
    if (lk->auth != NULL) {
        if (lk->auth_cached)
            cache_drop_header(lk->rc, lk->auth);
        secret_free(lk->auth);
        lk->auth = NULL;
        lk->auth_cached = 0;
    }
    if (registry_parse_www_authenticate(httpc_response_header(resp, "WWW-Authenticate"), &ch) !=
        0) {
        fail_refused(lk, lk->t.host);
        goto done;
    }
    if (ch.scheme == REGISTRY_AUTH_BEARER) {
        if (ch.realm == NULL) {
            lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                        "Registry sent a Bearer challenge without realm. (image = %s, registry = "
                        "%s)",
                        lk->image, lk->t.host);
            goto done;
        }
        scope = ch.scope != NULL ? ch.scope : lk->scope;
        cached = cache_find(lk->rc, lk->t.host, scope);
        if (cached != NULL && (lk->auth = strdup(cached)) != NULL) {
            lk->auth_cached = 1;
            send_tags(lk);
            goto done;
        }
        send_token(lk, &ch, scope);
    } else if (ch.scheme == REGISTRY_AUTH_BASIC) {
        if (lk->aws_key_id != NULL && lk->aws_secret != NULL) {
            send_ecr(lk);
            goto done;
        }
        if ((basic = basic_header(lk)) == NULL) {
            fail_refused(lk, lk->t.host);
            goto done;
        }
        lk->auth = basic;
        lk->dance_done = 1;
        cache_put(lk->rc, lk->t.host, "", basic, REGISTRY_BASIC_TTL_MS);
        send_tags(lk);
    } else {
        fail_refused(lk, lk->t.host);
    }
done:
    registry_challenge_clear(&ch);
}

/* Adds the tags of one page; 0, or -1 when the page is not a tag list. */
static int page_collect(lookup *lk, const httpc_response *resp)
{
    json_t *root = json_loadb(resp->body, resp->body_len, 0, NULL), *tags, *tag;
    size_t i;
    int rc = -1;

    if (!json_is_object(root))
        goto done;
    tags = json_object_get(root, "tags");
    if (json_is_null(tags)) {
        rc = 0; /* a repository whose tags were all deleted */
        goto done;
    }
    if (!json_is_array(tags))
        goto done;
    json_array_foreach(tags, i, tag)
    {
        const char *s = json_string_value(tag);
        if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(tag))
            goto done;
        if (json_object_get(lk->seen, s) != NULL)
            continue;
        if (json_object_set(lk->seen, s, json_true()) != 0 ||
            json_array_append_new(lk->tags, json_string(s)) != 0)
            goto done;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static void on_tags(lookup *lk, const httpc_response *resp)
{
    char *next = NULL, *rebased;

    if (resp->result != HTTPC_OK) {
        fail_transport(lk, resp, lk->t.host);
        return;
    }
    switch (resp->status) {
    case 200:
        break;
    case 401:
        on_unauthorized(lk, resp);
        return;
    case 404:
        lookup_fail(lk, RD_ERR_NO_IMAGE_IN_REGISTRY,
                    "Image not found in registry. (image = %s, registry = %s)", lk->image,
                    lk->t.host);
        return;
    case 403:
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry denied access to the image. (image = %s, registry = %s)", lk->image,
                    lk->t.host);
        return;
    default:
        fail_status(lk, resp->status, lk->t.host);
        return;
    }
    if (page_collect(lk, resp) != 0) {
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry sent an invalid tag list. (image = %s, registry = %s)", lk->image,
                    lk->t.host);
        return;
    }
    lk->pages++;
    if (registry_link_next(httpc_response_header(resp, "Link"), lk->url, &next) != 0) {
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry sent an invalid Link header. (image = %s, registry = %s)", lk->image,
                    lk->t.host);
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
        lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        return;
    }
    if (strcmp(next, lk->url) == 0 || lk->pages >= lk->rc->opts.max_pages) {
        free(next);
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry pagination does not end. (image = %s, registry = %s, pages = %d)",
                    lk->image, lk->t.host, lk->pages);
        return;
    }
    free(lk->url);
    lk->url = next;
    send_tags(lk);
}

static void on_token(lookup *lk, const httpc_response *resp)
{
    const char *who = lk->realm_host != NULL ? lk->realm_host : lk->t.host;
    json_t *root = NULL, *tok, *exp;
    json_int_t ttl = REGISTRY_TOKEN_TTL_S;
    int64_t ttl_ms;

    if (resp->result != HTTPC_OK) {
        fail_transport(lk, resp, who);
        return;
    }
    if (resp->status == 401 || resp->status == 403) {
        fail_refused(lk, who);
        return;
    }
    if (resp->status != 200) {
        fail_status(lk, resp->status, who);
        return;
    }
    root = json_loadb(resp->body, resp->body_len, 0, NULL);
    tok = json_object_get(root, "token");
    if (!json_is_string(tok) || json_string_length(tok) == 0)
        tok = json_object_get(root, "access_token");
    if (!json_is_string(tok) || json_string_length(tok) == 0 ||
        strpbrk(json_string_value(tok), "\r\n") != NULL) {
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry token service sent no token. (image = %s, registry = %s)", lk->image,
                    who);
        goto done;
    }
    exp = json_object_get(root, "expires_in");
    if (json_is_integer(exp) && json_integer_value(exp) > 0)
        ttl = json_integer_value(exp);
    else if (json_is_real(exp) && json_real_value(exp) >= 1)
        ttl = (json_int_t)json_real_value(exp);
    lk->auth = util_strdup_printf("Bearer %s", json_string_value(tok));
    if (lk->auth == NULL) {
        lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    ttl_ms = (int64_t)ttl * 1000;
    if (ttl_ms >= 20000)
        ttl_ms -= 5000; /* renew a little early */
    cache_put(lk->rc, lk->t.host, lk->token_scope, lk->auth, ttl_ms);
    if (strcmp(lk->token_scope, lk->scope) != 0)
        cache_put(lk->rc, lk->t.host, lk->scope, lk->auth, ttl_ms);
    lk->dance_done = 1;
    send_tags(lk);
done:
    json_decref(root);
}

static void on_ecr(lookup *lk, const httpc_response *resp)
{
    const char *who = lk->t.ecr_api_host;
    char *basic = NULL;
    int64_t expires_at = 0, ttl;
    json_t *root;
    const char *type;

    if (resp->result != HTTPC_OK) {
        fail_transport(lk, resp, who);
        return;
    }
    if (resp->status == 400 || resp->status == 401 || resp->status == 403) {
        root = json_loadb(resp->body, resp->body_len, 0, NULL);
        type = json_string_value(json_object_get(root, "__type"));
        LOG_WARN("registry: ECR refused access key %s for registry %s: %.64s", lk->aws_key_id,
                 lk->t.host, type != NULL ? type : "(no error type)");
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "Registry authentication was refused: ECR did not accept the AWS credentials. "
                    "(image = %s, registry = %s, error = %.64s)",
                    lk->image, lk->t.host, type != NULL ? type : "(none)");
        json_decref(root);
        return;
    }
    if (resp->status != 200) {
        fail_status(lk, resp->status, who);
        return;
    }
    if (registry_ecr_parse_token(resp->body, resp->body_len, &basic, &expires_at) != 0) {
        lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                    "ECR sent no authorization token. (image = %s, registry = %s)", lk->image,
                    lk->t.host);
        return;
    }
    ttl =
        expires_at > 0 ? expires_at - util_now_ms() - REGISTRY_ECR_MARGIN_MS : REGISTRY_ECR_TTL_MS;
    cache_put(lk->rc, lk->t.host, "", basic, ttl);
    secret_free(lk->auth);
    lk->auth = basic;
    lk->auth_cached = 0;
    lk->dance_done = 1;
    send_tags(lk);
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
        on_ecr(lk, resp);
        break;
    case STEP_TOKEN:
        on_token(lk, resp);
        break;
    case STEP_TAGS:
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
    const char *user, *pw_file, *key_id, *key_file;
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
        if (ecr_url_parts(lk) != 0)
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
    const char *cached;
    rd_error err;
    httpc_request_opts o;

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
        /* Reported later: through a request that httpc fails asynchronously. */
        lk->deferred = err;
        lk->step = STEP_DEFERRED;
        httpc_request_init(&o);
        o.url = "registry-deferred:";
        httpc_request(rc->http, &o, on_http, lk);
        return;
    }
    if (lk->t.ecr && lk->aws_key_id != NULL) {
        cached = cache_find(rc, lk->t.host, "");
        if (cached == NULL) {
            send_ecr(lk);
            return;
        }
        lk->auth = strdup(cached);
    } else {
        cached = cache_find(rc, lk->t.host, lk->scope);
        if (cached == NULL)
            cached = cache_find(rc, lk->t.host, "");
        if (cached != NULL)
            lk->auth = strdup(cached);
    }
    lk->auth_cached = lk->auth != NULL;
    send_tags(lk);
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
    while ((lk = rc->lookups) != NULL) {
        lookup_unlink(lk); /* lk stays alive until its request's callback */
        cb = lk->cb;
        lk->cb = NULL;
        rd_fail(&err, RD_ERR_REGISTRY_UNAVAILABLE,
                "Registry unavailable. (image = %s, registry = %s, reason = cancelled)",
                lk->image != NULL ? lk->image : "", lk->t.host != NULL ? lk->t.host : "(unknown)");
        if (cb != NULL)
            cb(RD_ERR_REGISTRY_UNAVAILABLE, &err, NULL, lk->arg);
    }
    while ((e = rc->cache) != NULL) {
        rc->cache = e->next;
        cred_free(e);
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
