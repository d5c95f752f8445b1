/*
 * auth.c - credentials for the registry client (see registry.c for the
 * state machine): the credential cache, the answer to a 401 (Bearer token
 * flow with the token realm's connection settings, Basic credentials), the
 * token service's answer, and ECR GetAuthorizationToken (SigV4-signed)
 * with its answer.
 *
 * Credential cache: a list of (host "|" scope) -> Authorization value with
 * a monotonic expiry, host being the `registries` key (so two entries that
 * share an api_url but not their credentials never share a token); scope ""
 * holds per-registry basic credentials (configured or from ECR).  Values
 * are wiped when dropped.
 */
#include "registry-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "log.h"
#include "util.h"

/* ---- small helpers --------------------------------------------------------------- */

static int64_t now_ms(void)
{
    return util_monotonic_us() / 1000;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
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

/* ---- the credential cache -------------------------------------------------------- */

void registry_cred_free(cred_entry *e)
{
    free(e->key);
    registry_secret_free(e->header);
    free(e);
}

static char *cred_key(const char *host, const char *scope)
{
    return util_strdup_printf("%s|%s", host, scope != NULL ? scope : "");
}

/* The cached value for (host, scope), or NULL; drops expired entries. */
const char *registry_cache_find(registry_client *rc, const char *host, const char *scope)
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
            registry_cred_free(e);
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

void registry_cache_put(registry_client *rc, const char *host, const char *scope,
                        const char *header, int64_t ttl_ms)
{
    cred_entry **pp, *e, **oldest;
    char *key;
    if (ttl_ms <= 0 || (key = cred_key(host, scope)) == NULL)
        return;
    for (pp = &rc->cache; (e = *pp) != NULL; pp = &e->next) {
        if (strcmp(e->key, key) == 0) {
            *pp = e->next;
            registry_cred_free(e);
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
        registry_cred_free(e);
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
            registry_cred_free(e);
            rc->cache_count--;
        } else {
            pp = &e->next;
        }
    }
}

/* ---- requests --------------------------------------------------------------------- */

/* Settings of the token realm: the registry's own when the realm is on the
 * registry's host, else those of a `registries` entry for the realm's
 * host[:port], else verified HTTPS with the system store.  The realm must
 * be https and on the registry's own host or one of its token_realm_hosts
 * (registry_realm_rule_of): -1 (unusable) or -2 (not allowed, nothing is
 * sent there; lk->realm_host names it). */
static int realm_settings(lookup *lk, const char *realm)
{
    char rs[16], rh[256], as[16], ah[256], key[300], hp[300];
    int rp, ap;
    const json_t *entry = NULL;
    const char *ca;
    registry_host_rule rule;

    registry_settings_clear(&lk->realm);
    if (registry_url_origin(realm, rs, sizeof(rs), rh, sizeof(rh), &rp) != 0 ||
        registry_url_origin(lk->t.api_url, as, sizeof(as), ah, sizeof(ah), &ap) != 0)
        return -1;
    free(lk->realm_host);
    snprintf(hp, sizeof(hp), "%s:%d", rh, rp);
    lk->realm_host = strdup(hp);
    if (strcasecmp(rs, "https") != 0)
        return -2; /* credentials never travel in clear */
    rule = registry_realm_rule_of(lk->rc->conf, lk->t.host, lk->t.api_url, hp);
    if (rule == REGISTRY_HOST_REFUSED)
        return -2;
    lk->realm.restricted = rule != REGISTRY_HOST_NAMED;
    if (strcasecmp(rh, ah) == 0 && rp == ap) {
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
    /* a realm host without an entry of its own trusts what its registry trusts */
    ca = json_string_value(json_object_get(entry, "ca_file"));
    lk->realm.ca_file = entry != NULL ? dup_or_null(ca) : dup_or_null(lk->reg.ca_file);
    lk->realm.verify =
        entry != NULL ? !json_is_false(json_object_get(entry, "verify")) : lk->reg.verify;
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
    registry_secret_free(pair);
    if (b64 == NULL)
        return NULL;
    out = util_strdup_printf("Basic %s", b64);
    registry_secret_free(b64);
    return out;
}

/* GET realm?service=..&scope=.. (one scope= per space-separated scope). */
static void send_token(lookup *lk, const registry_challenge *ch, const char *scope)
{
    const char *headers[5] = {"Accept", "application/json", NULL, NULL, NULL};
    char *url = NULL, *svc = NULL, *basic = NULL, *grown, *copy = NULL, *tok, *save = NULL;

    int rs = realm_settings(lk, ch->realm);
    if (rs == -2) {
        LOG_WARN("registry: %s (image %s): token realm on %s refused: not https or not one of "
                 "its token_realm_hosts",
                 lk->t.host, lk->image, lk->realm_host != NULL ? lk->realm_host : "?");
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry sent a token realm that is not allowed. (image = %s, "
                             "registry = %s, realm_host = %s, reason = a realm must be https and "
                             "on the registry's host or one of its token_realm_hosts)",
                             lk->image, lk->t.host, lk->realm_host != NULL ? lk->realm_host : "?");
        return;
    }
    if (rs != 0) {
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry sent an unusable token realm. (image = %s, registry = %s)",
                             lk->image, lk->t.host);
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
        registry_lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    if ((basic = basic_header(lk)) != NULL) {
        headers[2] = "Authorization";
        headers[3] = basic;
    }
    lk->step = STEP_TOKEN;
    lk->rc->credential_fetches++;
    registry_lookup_send(lk, "GET", url, headers, NULL, &lk->realm);
done:
    free(url);
    free(svc);
    free(copy);
    registry_secret_free(basic);
}

/* POST ECR GetAuthorizationToken, SigV4-signed. */
void registry_send_ecr(lookup *lk)
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
        registry_lookup_fail(lk, RD_ERR_INTERNAL,
                             "Internal error. (cannot sign the ECR request for registry %s)",
                             lk->t.host);
        return;
    }
    lk->step = STEP_ECR;
    lk->rc->credential_fetches++;
    registry_lookup_send(lk, "POST", lk->t.ecr_api_url, headers, "{}", &lk->ecr);
    OPENSSL_cleanse(authz, sizeof(authz));
}

/* Splits the ECR API URL into what SigV4 signs: the Host header as httpc
 * sends it (port only when not the scheme's default), path and query. */
int registry_ecr_url_parts(lookup *lk)
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

static void fail_refused(lookup *lk, const char *who)
{
    if (lk->username != NULL) {
        /* the user name is for the operator's log, not for API clients */
        LOG_WARN("registry: %s refused the credentials of user %s (registry %s)", who, lk->username,
                 lk->t.host);
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry authentication was refused. (image = %s, registry = %s)",
                             lk->image, who);
    } else {
        registry_lookup_fail(
            lk, RD_ERR_REGISTRY_BAD_RESPONSE,
            "Registry authentication was refused: the registry requires credentials and "
            "none are configured. (image = %s, registry = %s)",
            lk->image, who);
    }
}

/* A 401 from the registry: find or fetch a credential, or give up. */
void registry_on_unauthorized(lookup *lk, const httpc_response *resp)
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
            registry_lookup_fail(
                lk, RD_ERR_NO_IMAGE_IN_REGISTRY,
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
        registry_secret_free(lk->auth);
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
            registry_lookup_fail(
                lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                "Registry sent a Bearer challenge without realm. (image = %s, registry = "
                "%s)",
                lk->image, lk->t.host);
            goto done;
        }
        scope = ch.scope != NULL ? ch.scope : lk->scope;
        cached = registry_cache_find(lk->rc, lk->t.host, scope);
        if (cached != NULL && (lk->auth = strdup(cached)) != NULL) {
            lk->auth_cached = 1;
            registry_send_tags(lk);
            goto done;
        }
        send_token(lk, &ch, scope);
    } else if (ch.scheme == REGISTRY_AUTH_BASIC) {
        if (lk->aws_key_id != NULL && lk->aws_secret != NULL) {
            registry_send_ecr(lk);
            goto done;
        }
        if ((basic = basic_header(lk)) == NULL) {
            fail_refused(lk, lk->t.host);
            goto done;
        }
        lk->auth = basic;
        lk->dance_done = 1;
        registry_cache_put(lk->rc, lk->t.host, "", basic, REGISTRY_BASIC_TTL_MS);
        registry_send_tags(lk);
    } else {
        fail_refused(lk, lk->t.host);
    }
done:
    registry_challenge_clear(&ch);
}

void registry_on_token(lookup *lk, const httpc_response *resp)
{
    const char *who = lk->realm_host != NULL ? lk->realm_host : lk->t.host;
    json_t *root = NULL, *tok, *exp;
    json_int_t ttl = REGISTRY_TOKEN_TTL_S;
    int64_t ttl_ms;

    if (resp->result != HTTPC_OK) {
        registry_fail_transport(lk, resp, who);
        return;
    }
    if (resp->status == 401 || resp->status == 403) {
        /* a GCP access token the realm refuses (revoked) is not used again */
        if (lk->gcp_key.private_key != NULL && lk->password != NULL)
            cache_drop_header(lk->rc, lk->password);
        fail_refused(lk, who);
        return;
    }
    if (resp->status != 200) {
        registry_fail_status(lk, resp->status, who);
        return;
    }
    root = json_loadb(resp->body, resp->body_len, 0, NULL);
    tok = json_object_get(root, "token");
    if (!json_is_string(tok) || json_string_length(tok) == 0)
        tok = json_object_get(root, "access_token");
    if (!json_is_string(tok) || json_string_length(tok) == 0 ||
        strpbrk(json_string_value(tok), "\r\n") != NULL) {
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry token service sent no token. (image = %s, registry = %s)",
                             lk->image, who);
        goto done;
    }
    exp = json_object_get(root, "expires_in");
    if (json_is_integer(exp) && json_integer_value(exp) > 0)
        ttl = json_integer_value(exp);
    else if (json_is_real(exp) && json_real_value(exp) >= 1 &&
             json_real_value(exp) < 1e15) /* the cast of a larger double is undefined */
        ttl = (json_int_t)json_real_value(exp);
    lk->auth = util_strdup_printf("Bearer %s", json_string_value(tok));
    if (lk->auth == NULL) {
        registry_lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    ttl_ms = (int64_t)ttl * 1000;
    if (ttl_ms >= 20000)
        ttl_ms -= 5000; /* renew a little early */
    registry_cache_put(lk->rc, lk->t.host, lk->token_scope, lk->auth, ttl_ms);
    if (strcmp(lk->token_scope, lk->scope) != 0)
        registry_cache_put(lk->rc, lk->t.host, lk->scope, lk->auth, ttl_ms);
    lk->dance_done = 1;
    registry_send_tags(lk);
done:
    json_decref(root);
}

void registry_on_ecr(lookup *lk, const httpc_response *resp)
{
    const char *who = lk->t.ecr_api_host;
    char *basic = NULL;
    int64_t expires_at = 0, ttl;
    json_t *root;
    const char *type;

    if (resp->result != HTTPC_OK) {
        registry_fail_transport(lk, resp, who);
        return;
    }
    if (resp->status == 400 || resp->status == 401 || resp->status == 403) {
        root = json_loadb(resp->body, resp->body_len, 0, NULL);
        type = json_string_value(json_object_get(root, "__type"));
        LOG_WARN("registry: ECR refused access key %s for registry %s: %.64s", lk->aws_key_id,
                 lk->t.host, type != NULL ? type : "(no error type)");
        registry_lookup_fail(
            lk, RD_ERR_REGISTRY_BAD_RESPONSE,
            "Registry authentication was refused: ECR did not accept the AWS credentials. "
            "(image = %s, registry = %s, error = %.64s)",
            lk->image, lk->t.host, type != NULL ? type : "(none)");
        json_decref(root);
        return;
    }
    if (resp->status != 200) {
        registry_fail_status(lk, resp->status, who);
        return;
    }
    if (registry_ecr_parse_token(resp->body, resp->body_len, &basic, &expires_at) != 0) {
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "ECR sent no authorization token. (image = %s, registry = %s)",
                             lk->image, lk->t.host);
        return;
    }
    ttl =
        expires_at > 0 ? expires_at - util_now_ms() - REGISTRY_ECR_MARGIN_MS : REGISTRY_ECR_TTL_MS;
    registry_cache_put(lk->rc, lk->t.host, "", basic, ttl);
    registry_secret_free(lk->auth);
    lk->auth = basic;
    lk->auth_cached = 0;
    lk->dance_done = 1;
    registry_send_tags(lk);
}
