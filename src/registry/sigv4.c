/*
 * sigv4.c - AWS Signature Version 4 for header-signed requests (used for
 * ECR's GetAuthorizationToken).  Canonical request -> string to sign ->
 * HMAC-SHA256 key chain, as documented by AWS and checked against its
 * published test suite in tests/unit/test_registry.c.
 */
#include "registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* ---- a growing string ----------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_add(sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_free(sbuf *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- encoding -------------------------------------------------------------------- */

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Appends s[0..n) percent-encoded (AWS style: upper-case hex); '/' is kept
 * when keep_slash. */
static void sb_add_encoded(sbuf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            sb_addn(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_addn(b, e, 3);
        }
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string; NULL on a bad escape or no memory. */
static char *pct_decode(const char *s, size_t n, size_t *out_len)
{
    char *out = malloc(n + 1);
    size_t i, o = 0;
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
                goto bad;
            out[o++] = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
bad:
    free(out);
    return NULL;
}

/* s[0..n) percent-decoded, then encoded again the AWS way: a new string,
 * NULL on a bad escape or no memory. */
static char *reencode(const char *s, size_t n)
{
    size_t dlen = 0;
    char *dec = pct_decode(s, n, &dlen);
    sbuf enc = {0};
    if (dec == NULL)
        return NULL;
    sb_add_encoded(&enc, dec, dlen, 0);
    sb_addn(&enc, "", 0);
    free(dec);
    if (enc.data == NULL && !enc.failed)
        return strdup("");
    if (enc.failed) {
        free(enc.data);
        return NULL;
    }
    return enc.data;
}

/* ---- canonical parts ------------------------------------------------------------ */

typedef struct {
    char *name;  /* lower-case */
    char *value; /* trimmed, spaces collapsed */
    size_t order;
} header_item;

typedef struct {
    char *key; /* encoded */
    char *value;
} query_item;

static int header_item_cmp(const void *x, const void *y)
{
    const header_item *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c != 0)
        return c;
    return a->order < b->order ? -1 : (a->order > b->order ? 1 : 0);
}

static int query_item_cmp(const void *x, const void *y)
{
    const query_item *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c != 0 ? c : strcmp(a->value, b->value);
}

/* A header value trimmed, inner runs of spaces/tabs collapsed to one space. */
static char *header_value_clean(const char *v)
{
    char *out = malloc(strlen(v) + 1), *o = out;
    int space = 0;
    if (out == NULL)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            *o++ = ' ';
        space = 0;
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

static char *lower_dup(const char *s)
{
    char *out = strdup(s), *p;
    if (out == NULL)
        return NULL;
    for (p = out; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return out;
}

/* Appends canonical headers ("name:value\n" ...) to ch and the signed header
 * list to sh.  0 or -1. */
static int canonical_headers(const registry_sigv4_request *req, sbuf *ch, sbuf *sh)
{
    header_item *items = NULL;
    size_t n = 2, i, k;
    int rc = -1;

    for (i = 0; req->headers != NULL && req->headers[i] != NULL; i += 2) {
        if (req->headers[i + 1] == NULL || strcasecmp(req->headers[i], "host") == 0 ||
            strcasecmp(req->headers[i], "x-amz-date") == 0)
            return -1;
        n++;
    }
    items = calloc(n, sizeof(*items));
    if (items == NULL)
        return -1;
    items[0].name = strdup("host");
    items[0].value = header_value_clean(req->host);
    items[1].name = strdup("x-amz-date");
    items[1].value = strdup(req->amz_date);
    for (i = 0, k = 2; req->headers != NULL && req->headers[i] != NULL; i += 2, k++) {
        items[k].name = lower_dup(req->headers[i]);
        items[k].value = header_value_clean(req->headers[i + 1]);
        items[k].order = k;
    }
    for (i = 0; i < n; i++) {
        if (items[i].name == NULL || items[i].value == NULL)
            goto done;
    }
    qsort(items, n, sizeof(*items), header_item_cmp);
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(items[i].name, items[i - 1].name) == 0) {
            /* a repeated header: "name:v1,v2" */
            ch->len--; /* drop the '\n' of the previous line */
            sb_add(ch, ",");
            sb_add(ch, items[i].value);
            sb_add(ch, "\n");
            continue;
        }
        if (i > 0)
            sb_add(sh, ";");
        sb_add(sh, items[i].name);
        sb_add(ch, items[i].name);
        sb_add(ch, ":");
        sb_add(ch, items[i].value);
        sb_add(ch, "\n");
    }
    rc = ch->failed || sh->failed ? -1 : 0;
done:
    for (i = 0; i < n; i++) {
        free(items[i].name);
        free(items[i].value);
    }
    free(items);
    return rc;
}

/* Appends the canonical query string of query to out.  0 or -1. */
static int canonical_query(const char *query, sbuf *out)
{
    query_item *items = NULL;
    size_t n = 0, i, cap = 0;
    const char *p = query;
    int rc = -1;

    if (query == NULL || query[0] == '\0')
        return 0;
    while (*p != '\0') {
        const char *s = p, *eq;
        size_t len = strcspn(p, "&"), klen, vlen;
        p += len;
        if (*p == '&')
            p++;
        if (len == 0)
            continue;
        if (n == cap) {
            query_item *grown;
            cap = cap != 0 ? cap * 2 : 8;
            grown = realloc(items, cap * sizeof(*items));
            if (grown == NULL)
                goto done;
            items = grown;
        }
        eq = memchr(s, '=', len);
        klen = eq != NULL ? (size_t)(eq - s) : len;
        vlen = eq != NULL ? len - klen - 1 : 0;
        items[n].key = items[n].value = NULL;
        n++;
        items[n - 1].key = reencode(s, klen);
        items[n - 1].value = reencode(eq != NULL ? eq + 1 : "", vlen);
        if (items[n - 1].key == NULL || items[n - 1].value == NULL)
            goto done;
    }
    if (n > 0) /* items is NULL for an empty query */
        qsort(items, n, sizeof(*items), query_item_cmp);
    for (i = 0; i < n; i++) {
        if (i > 0)
            sb_add(out, "&");
        sb_add(out, items[i].key);
        sb_add(out, "=");
        sb_add(out, items[i].value);
    }
    rc = out->failed ? -1 : 0;
done:
    for (i = 0; i < n; i++) {
        free(items[i].key);
        free(items[i].value);
    }
    free(items);
    return rc;
}

/* ---- hashing --------------------------------------------------------------------- */

static void sha256_hex(const void *data, size_t n, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    size_t i;
    SHA256(data != NULL ? data : "", n, md);
    for (i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static int hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len) ==
            NULL ||
        len != 32)
        return -1;
    return 0;
}

/* ---- public ---------------------------------------------------------------------- */

void registry_sigv4_timestamp(int64_t epoch_ms, char out[17])
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int registry_sigv4_authorization(const registry_sigv4_request *req, char *out, size_t size)
{
    sbuf creq = {0}, hdrs = {0}, signed_hdrs = {0}, sts = {0}, secret = {0};
    char payload_hash[65], creq_hash[65], date[9], scope[256];
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    static const char hex[] = "0123456789abcdef";
    char sig_hex[65];
    const char *path;
    size_t i;
    int rc = -1, n;

    if (req == NULL || out == NULL || req->method == NULL || req->host == NULL ||
        req->host[0] == '\0' || req->access_key_id == NULL || req->secret_access_key == NULL ||
        req->region == NULL || req->service == NULL || req->amz_date == NULL ||
        strlen(req->amz_date) != 16 || req->amz_date[8] != 'T' || req->amz_date[15] != 'Z')
        goto done;
    memcpy(date, req->amz_date, 8);
    date[8] = '\0';
    n = snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, req->region, req->service);
    if (n < 0 || (size_t)n >= sizeof(scope))
        goto done;

    /* Canonical request. */
    path = req->path != NULL && req->path[0] != '\0' ? req->path : "/";
    sb_add(&creq, req->method);
    sb_add(&creq, "\n");
    sb_add_encoded(&creq, path, strlen(path), 1);
    sb_add(&creq, "\n");
    if (canonical_query(req->query, &creq) != 0)
        goto done;
    sb_add(&creq, "\n");
    if (canonical_headers(req, &hdrs, &signed_hdrs) != 0)
        goto done;
    sb_add(&creq, hdrs.data);
    sb_add(&creq, "\n");
    sb_add(&creq, signed_hdrs.data);
    sb_add(&creq, "\n");
    sha256_hex(req->body, req->body != NULL ? req->body_len : 0, payload_hash);
    sb_add(&creq, payload_hash);
    if (creq.failed)
        goto done;
    sha256_hex(creq.data, creq.len, creq_hash);

    /* String to sign and the key chain. */
    sb_add(&sts, "AWS4-HMAC-SHA256\n");
    sb_add(&sts, req->amz_date);
    sb_add(&sts, "\n");
    sb_add(&sts, scope);
    sb_add(&sts, "\n");
    sb_add(&sts, creq_hash);
    sb_add(&secret, "AWS4");
    sb_add(&secret, req->secret_access_key);
    if (sts.failed || secret.failed)
        goto done;
    if (hmac(secret.data, secret.len, date, k1) != 0 || hmac(k1, 32, req->region, k2) != 0 ||
        hmac(k2, 32, req->service, k3) != 0 || hmac(k3, 32, "aws4_request", k4) != 0 ||
        hmac(k4, 32, sts.data, sig) != 0)
        goto done;
    for (i = 0; i < 32; i++) {
        sig_hex[2 * i] = hex[sig[i] >> 4];
        sig_hex[2 * i + 1] = hex[sig[i] & 15];
    }
    sig_hex[64] = '\0';
    n = snprintf(out, size, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 req->access_key_id, scope, signed_hdrs.data, sig_hex);
    if (n < 0 || (size_t)n >= size)
        goto done;
    rc = 0;
done:
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(k3, sizeof(k3));
    OPENSSL_cleanse(k4, sizeof(k4));
    sb_free(&creq);
    sb_free(&hdrs);
    sb_free(&signed_hdrs);
    sb_free(&sts);
    sb_free(&secret);
    if (rc != 0 && out != NULL && size > 0)
        out[0] = '\0';
    return rc;
}
