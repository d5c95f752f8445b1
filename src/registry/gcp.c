/*
 * gcp.c - GCP_PRIVATE_GCR credentials: a service-account key file
 * (client_email, private_key, token_uri) is turned into an OAuth access
 * token with the JWT bearer grant (RFC 7523): repod signs a JWT with the
 * key (RS256), POSTs it to token_uri and uses the access token it gets as
 * the password of user "oauth2accesstoken" for the registry's own Bearer
 * or Basic flow (auth.c).  Access tokens are cached per registry until
 * shortly before they expire.  The pure pieces (key parsing, the JWT,
 * base64url, the token answer) are in registry.h for the unit tests.
 */
#include "registry-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "log.h"
#include "util.h"

#define GCP_SCOPE       "https://www.googleapis.com/auth/cloud-platform"
#define GCP_GRANT       "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
#define GCP_JWT_TTL_S   3600
#define GCP_DEFAULT_TTL 3600      /* access tokens without expires_in */
#define GCP_MARGIN_MS   60000     /* renew access tokens this early */
#define GCP_CACHE_SCOPE "\001gcp" /* cache slot of the access token (no real scope) */
#define GCP_USER        "oauth2accesstoken"

/* ---- pure pieces ------------------------------------------------------------------ */

char *registry_base64url_encode(const void *data, size_t n)
{
    char *s = registry_base64_encode(data, n), *p;
    size_t len;
    if (s == NULL)
        return NULL;
    for (p = s; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    len = strlen(s);
    while (len > 0 && s[len - 1] == '=')
        s[--len] = '\0';
    return s;
}

void registry_gcp_key_clear(registry_gcp_key *k)
{
    if (k == NULL)
        return;
    free(k->client_email);
    registry_secret_free(k->private_key);
    free(k->token_uri);
    memset(k, 0, sizeof(*k));
}

/* The non-empty string key of obj, or NULL. */
static const char *field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL && s[0] != '\0' ? s : NULL;
}

int registry_gcp_key_parse(const char *text, size_t len, registry_gcp_key *out, char *why,
                           size_t why_size)
{
    json_t *root = json_loadb(text != NULL ? text : "", text != NULL ? len : 0, 0, NULL);
    const char *type, *email, *key, *uri;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(root)) {
        snprintf(why, why_size, "not a JSON object");
        goto done;
    }
    type = json_string_value(json_object_get(root, "type"));
    email = field(root, "client_email");
    key = field(root, "private_key");
    uri = field(root, "token_uri");
    if (type != NULL && strcmp(type, "service_account") != 0) {
        snprintf(why, why_size, "type is not \"service_account\"");
    } else if (email == NULL) {
        snprintf(why, why_size, "client_email is missing");
    } else if (key == NULL) {
        snprintf(why, why_size, "private_key is missing");
    } else if (strstr(key, "-----BEGIN") == NULL) {
        snprintf(why, why_size, "private_key is not PEM");
    } else if (uri == NULL) {
        snprintf(why, why_size, "token_uri is missing");
    } else if (strncasecmp(uri, "https://", 8) != 0) {
        snprintf(why, why_size, "token_uri is not https");
    } else if (strpbrk(email, "\r\n") != NULL) {
        snprintf(why, why_size, "client_email is malformed");
    } else {
        out->client_email = strdup(email);
        out->private_key = strdup(key);
        out->token_uri = strdup(uri);
        if (out->client_email == NULL || out->private_key == NULL || out->token_uri == NULL) {
            snprintf(why, why_size, "out of memory");
            registry_gcp_key_clear(out);
        } else {
            rc = 0;
        }
    }
done:
    if (root != NULL) {
        /* the parsed copy held the private key too */
        json_t *pk = json_object_get(root, "private_key");
        if (json_is_string(pk))
            OPENSSL_cleanse((char *)json_string_value(pk), json_string_length(pk));
    }
    json_decref(root);
    return rc;
}

/* Signs input with the RSA key in pem (RS256); a new base64url signature. */
static char *rs256_sign(const char *pem, const char *input, char *why, size_t why_size)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *out = NULL;

    if (pkey == NULL) {
        snprintf(why, why_size, "private_key cannot be read");
        goto done;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        snprintf(why, why_size, "private_key is not an RSA key");
        goto done;
    }
    md = EVP_MD_CTX_new();
    /* RSA with SHA-256 and PKCS#1 v1.5 padding (the default) */
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, strlen(input)) != 1 ||
        (sig = malloc(sig_len)) == NULL ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) != 1) {
        snprintf(why, why_size, "signing failed");
        goto done;
    }
    out = registry_base64url_encode(sig, sig_len);
    if (out == NULL)
        snprintf(why, why_size, "out of memory");
done:
    free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return out;
}

int registry_gcp_jwt(const registry_gcp_key *key, const char *scope, int64_t now_s, char **out,
                     char *why, size_t why_size)
{
    json_t *claims = NULL;
    char *c_json = NULL, *h64 = NULL, *c64 = NULL, *input = NULL, *s64 = NULL;
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    int rc = -1;

    *out = NULL;
    claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", key->client_email, "scope",
                       scope != NULL ? scope : GCP_SCOPE, "aud", key->token_uri, "iat",
                       (json_int_t)now_s, "exp", (json_int_t)(now_s + GCP_JWT_TTL_S));
    c_json = claims != NULL ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    h64 = registry_base64url_encode(header, strlen(header));
    c64 = c_json != NULL ? registry_base64url_encode(c_json, strlen(c_json)) : NULL;
    input = h64 != NULL && c64 != NULL ? util_strdup_printf("%s.%s", h64, c64) : NULL;
    if (input == NULL) {
        snprintf(why, why_size, "out of memory");
        goto done;
    }
    if ((s64 = rs256_sign(key->private_key, input, why, why_size)) == NULL)
        goto done;
    if ((*out = util_strdup_printf("%s.%s", input, s64)) == NULL) {
        snprintf(why, why_size, "out of memory");
        goto done;
    }
    rc = 0;
done:
    json_decref(claims);
    free(c_json);
    free(h64);
    free(c64);
    free(input);
    free(s64);
    return rc;
}

int registry_gcp_parse_token(const char *body, size_t len, char **access_token,
                             int64_t *expires_in_s)
{
    json_t *root = json_loadb(body != NULL ? body : "", body != NULL ? len : 0, 0, NULL);
    const json_t *tok = json_object_get(root, "access_token"), *exp;
    int rc = -1;

    *access_token = NULL;
    *expires_in_s = GCP_DEFAULT_TTL;
    if (!json_is_string(tok) || json_string_length(tok) == 0 ||
        strlen(json_string_value(tok)) != json_string_length(tok) ||
        strpbrk(json_string_value(tok), "\r\n") != NULL)
        goto done;
    exp = json_object_get(root, "expires_in");
    if (json_is_integer(exp) && json_integer_value(exp) > 0)
        *expires_in_s = json_integer_value(exp);
    else if (json_is_real(exp) && json_real_value(exp) >= 1 &&
             json_real_value(exp) < 1e15) /* the cast of a larger double is undefined */
        *expires_in_s = (int64_t)json_real_value(exp);
    if ((*access_token = strdup(json_string_value(tok))) != NULL)
        rc = 0;
done:
    if (json_is_string(tok))
        OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
    json_decref(root);
    return rc;
}

/* ---- the lookup step -------------------------------------------------------------- */

/* Host of the key's token_uri, for messages and logs. */
static void token_host(const lookup *lk, char *out, size_t size)
{
    if (registry_host_normalize(lk->gcp_key.token_uri, out, size) != 0)
        snprintf(out, size, "(token_uri)");
}

rd_status registry_gcp_prepare(lookup *lk, const char *key_file, rd_error *err)
{
    const repod_conf *conf = lk->rc->conf;
    char why[128], host[300], key[310];
    char *text = NULL;
    size_t len = 0;
    const json_t *entry = NULL;
    const char *ca;
    registry_host_rule rule;
    rd_status rc = RD_OK;

    text = util_read_file(key_file, &len);
    if (text == NULL) {
        LOG_ERROR("registry: cannot read service_account_key_file of registry %s", lk->t.host);
        rc = rd_fail(err, RD_ERR_REGISTRY_BAD_RESPONSE,
                     "Registry credentials are unusable: the service-account key of registry %s "
                     "cannot be read.",
                     lk->t.host);
        goto done;
    }
    if (registry_gcp_key_parse(text, len, &lk->gcp_key, why, sizeof(why)) != 0) {
        LOG_ERROR("registry: service_account_key_file of registry %s: %s", lk->t.host, why);
        rc = rd_fail(err, RD_ERR_REGISTRY_BAD_RESPONSE,
                     "Registry credentials are unusable: the service-account key of registry %s "
                     "is invalid (%s).",
                     lk->t.host, why);
        goto done;
    }
    token_host(lk, host, sizeof(host));
    rule = registry_token_uri_rule_of(conf, lk->t.host, lk->gcp_key.token_uri);
    if (rule == REGISTRY_HOST_REFUSED) {
        LOG_WARN("registry: token_uri on %s of the service-account key of registry %s refused: "
                 "not https on oauth2.googleapis.com or one of its token_realm_hosts",
                 host, lk->t.host);
        rc = rd_fail(err, RD_ERR_REGISTRY_BAD_RESPONSE,
                     "Registry credentials are unusable: the token_uri of the service-account key "
                     "of registry %s is not allowed. (token_uri_host = %s, reason = it must be "
                     "https on oauth2.googleapis.com or one of the entry's token_realm_hosts)",
                     lk->t.host, host);
        goto done;
    }
    /* the token endpoint: its own `registries` entry, else what its registry trusts */
    if (conf != NULL && json_is_object(conf->registries)) {
        entry = json_object_get(conf->registries, host);
        if (entry == NULL && strchr(host, ':') == NULL) {
            snprintf(key, sizeof(key), "%s:443", host);
            entry = json_object_get(conf->registries, key);
        }
    }
    ca = json_string_value(json_object_get(entry, "ca_file"));
    lk->gcp.ca_file = entry != NULL ? (ca != NULL ? strdup(ca) : NULL)
                                    : (lk->reg.ca_file != NULL ? strdup(lk->reg.ca_file) : NULL);
    lk->gcp.verify =
        entry != NULL ? !json_is_false(json_object_get(entry, "verify")) : lk->reg.verify;
    lk->gcp.timeout_ms = lk->reg.timeout_ms;
    lk->gcp.plain = 0;
    lk->gcp.restricted = rule != REGISTRY_HOST_NAMED;
    free(lk->username);
    lk->username = strdup(GCP_USER);
    if (lk->username == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    if (text != NULL) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    return rc;
}

int registry_gcp_use_cached(lookup *lk)
{
    const char *cached = registry_cache_find(lk->rc, lk->t.host, GCP_CACHE_SCOPE);
    if (cached == NULL)
        return 0;
    registry_secret_free(lk->password);
    lk->password = strdup(cached);
    return lk->password != NULL;
}

void registry_send_gcp(lookup *lk)
{
    const char *headers[] = {"Accept", "application/json", "Content-Type",
                             "application/x-www-form-urlencoded", NULL};
    char why[128], *jwt = NULL, *body = NULL;

    if (registry_gcp_jwt(&lk->gcp_key, GCP_SCOPE, util_now_ms() / 1000, &jwt, why, sizeof(why)) !=
        0) {
        LOG_ERROR("registry: service_account_key_file of registry %s: %s", lk->t.host, why);
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry credentials are unusable: the service-account key of "
                             "registry %s cannot sign (%s). (image = %s)",
                             lk->t.host, why, lk->image);
        return;
    }
    body = util_strdup_printf("grant_type=%s&assertion=%s", GCP_GRANT, jwt);
    if (body == NULL) {
        registry_lookup_fail(lk, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    lk->step = STEP_GCP;
    lk->rc->credential_fetches++;
    registry_lookup_send(lk, "POST", lk->gcp_key.token_uri, headers, body, &lk->gcp);
done:
    registry_secret_free(jwt);
    registry_secret_free(body);
}

/* 1 when s is a short OAuth error code ("invalid_grant"): safe to echo. */
static int error_code_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_'))
            return 0;
    return n > 0 && n <= 64;
}

void registry_on_gcp(lookup *lk, const httpc_response *resp)
{
    char who[300], *token = NULL;
    int64_t expires_in = 0, ttl_ms;
    json_t *root;
    const char *code;

    token_host(lk, who, sizeof(who));
    if (resp->result != HTTPC_OK) {
        registry_fail_transport(lk, resp, who);
        return;
    }
    if (resp->status == 400 || resp->status == 401 || resp->status == 403) {
        root = json_loadb(resp->body, resp->body_len, 0, NULL);
        code = json_string_value(json_object_get(root, "error"));
        if (!error_code_ok(code))
            code = "(none)";
        LOG_WARN("registry: token endpoint %s refused the service-account key of registry %s "
                 "(client %s): status %d, error %s",
                 who, lk->t.host, lk->gcp_key.client_email, resp->status, code);
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry authentication was refused: the token endpoint did not "
                             "accept the service-account key. (image = %s, registry = %s, "
                             "token_uri_host = %s, error = %s)",
                             lk->image, lk->t.host, who, code);
        json_decref(root);
        return;
    }
    if (resp->status != 200) {
        registry_fail_status(lk, resp->status, who);
        return;
    }
    if (registry_gcp_parse_token(resp->body, resp->body_len, &token, &expires_in) != 0) {
        registry_lookup_fail(lk, RD_ERR_REGISTRY_BAD_RESPONSE,
                             "Registry token endpoint sent no access token. (image = %s, "
                             "registry = %s, token_uri_host = %s)",
                             lk->image, lk->t.host, who);
        return;
    }
    /* renew 60 s early; short-lived tokens at half their life */
    ttl_ms = expires_in * 1000;
    ttl_ms -= ttl_ms > 2 * GCP_MARGIN_MS ? GCP_MARGIN_MS : ttl_ms / 2;
    registry_cache_put(lk->rc, lk->t.host, GCP_CACHE_SCOPE, token, ttl_ms);
    registry_secret_free(lk->password);
    lk->password = token;
    registry_lookup_tags_start(lk);
}
