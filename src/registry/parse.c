/*
 * parse.c - the text formats of the registry flow: WWW-Authenticate
 * challenges (RFC 7235), Link headers (RFC 8288), tags/list pages,
 * base64 (RFC 4648) and ECR's GetAuthorizationToken answer.  Pure functions; see registry.h.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

/* ---- lexing helpers ------------------------------------------------------ */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 tchar. */
static int is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *p)
{
    while (is_ows(*p))
        p++;
    return p;
}

/* Reads a quoted-string starting at *pp (on the opening quote) into a new
 * string without quotes and escapes; advances *pp past the closing quote.
 * NULL when unterminated or out of memory. */
static char *read_quoted(const char **pp)
{
    const char *p = *pp + 1;
    char *out = malloc(strlen(p) + 1), *o = out;
    if (out == NULL)
        return NULL;
    while (*p != '"') {
        if (*p == '\0') {
            free(out);
            return NULL;
        }
        if (*p == '\\' && p[1] != '\0')
            p++;
        *o++ = *p++;
    }
    *o = '\0';
    *pp = p + 1;
    return out;
}

/* Reads an unquoted value: up to a comma, semicolon or white space (lenient:
 * accepts URL characters that are not tchar). */
static char *read_bare(const char **pp)
{
    const char *p = *pp, *s = p;
    while (*p != '\0' && *p != ',' && *p != ';' && !is_ows(*p))
        p++;
    *pp = p;
    return strndup(s, (size_t)(p - s));
}

/* ---- WWW-Authenticate ------------------------------------------------------- */

void registry_challenge_clear(registry_challenge *ch)
{
    if (ch == NULL)
        return;
    free(ch->realm);
    free(ch->service);
    free(ch->scope);
    free(ch->error);
    memset(ch, 0, sizeof(*ch));
}

static int challenge_rank(registry_auth_scheme s)
{
    return s == REGISTRY_AUTH_BEARER ? 3 : (s == REGISTRY_AUTH_BASIC ? 2 : 1);
}

/* Stores value under name in ch when it is a parameter we keep (and not yet
 * set); takes ownership of value. */
static void challenge_set(registry_challenge *ch, const char *name, size_t name_len, char *value)
{
    char **slot = NULL;
    if (name_len == 5 && strncasecmp(name, "realm", 5) == 0)
        slot = &ch->realm;
    else if (name_len == 7 && strncasecmp(name, "service", 7) == 0)
        slot = &ch->service;
    else if (name_len == 5 && strncasecmp(name, "scope", 5) == 0)
        slot = &ch->scope;
    else if (name_len == 5 && strncasecmp(name, "error", 5) == 0)
        slot = &ch->error;
    if (slot != NULL && *slot == NULL) {
        *slot = value;
        return;
    }
    free(value);
}

/* Parses one challenge at *pp (scheme and its parameters) into ch; leaves
 * *pp at the start of the next challenge or the end.  0 or -1. */
static int challenge_read(const char **pp, registry_challenge *ch)
{
    const char *p = skip_ows(*pp), *s = p, *name;
    size_t name_len;
    int first = 1, rc = -1;
    char *value = NULL;

    while (is_tchar(*p))
        p++;
    if (p == s)
        goto done;
    if ((size_t)(p - s) == 6 && strncasecmp(s, "bearer", 6) == 0)
        ch->scheme = REGISTRY_AUTH_BEARER;
    else if ((size_t)(p - s) == 5 && strncasecmp(s, "basic", 5) == 0)
        ch->scheme = REGISTRY_AUTH_BASIC;
    else
        ch->scheme = REGISTRY_AUTH_OTHER;
    if (*p != '\0' && *p != ',' && !is_ows(*p))
        goto done;
    for (;;) {
        const char *item;
        p = skip_ows(p);
        if (first && *p == ',')
            break; /* a challenge without parameters ("Basic, Bearer ...") */
        while (*p == ',' || is_ows(*p))
            p++;
        if (*p == '\0')
            break;
        item = name = p;
        while (is_tchar(*p) && *p != '=')
            p++;
        name_len = (size_t)(p - name);
        p = skip_ows(p);
        if (name_len == 0) {
            if (!first)
                goto done;
            /* token68 made of characters outside tchar: skip it */
            while (*p != '\0' && *p != ',')
                p++;
            first = 0;
            continue;
        }
        if (*p != '=') {
            if (first) { /* token68 ("Negotiate abc") */
                first = 0;
                continue;
            }
            p = item; /* the next challenge's scheme */
            break;
        }
        p = skip_ows(p + 1);
        if (*p == '=' || *p == ',' || *p == '\0') { /* token68 ending in '=' */
            while (*p == '=' || is_ows(*p))
                p++;
            first = 0;
            continue;
        }
        value = *p == '"' ? read_quoted(&p) : read_bare(&p);
        if (value == NULL)
            goto done;
        challenge_set(ch, name, name_len, value);
        value = NULL;
        first = 0;
        p = skip_ows(p);
        if (*p != ',' && *p != '\0')
            goto done;
    }
    rc = 0;
done:
    free(value);
    *pp = p;
    return rc;
}

int registry_parse_www_authenticate(const char *value, registry_challenge *out)
{
    registry_challenge cur;
    const char *p = value;
    int rc = -1;

    memset(&cur, 0, sizeof(cur));
    if (out == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    if (value == NULL)
        goto done;
    for (;;) {
        while (*p == ',' || is_ows(*p))
            p++;
        if (*p == '\0')
            break;
        if (challenge_read(&p, &cur) != 0)
            goto done;
        if (out->scheme == REGISTRY_AUTH_NONE ||
            challenge_rank(cur.scheme) > challenge_rank(out->scheme)) {
            registry_challenge_clear(out);
            *out = cur;
            memset(&cur, 0, sizeof(cur));
        } else {
            registry_challenge_clear(&cur);
        }
    }
    rc = out->scheme == REGISTRY_AUTH_NONE ? -1 : 0;
done:
    registry_challenge_clear(&cur);
    if (rc != 0)
        registry_challenge_clear(out);
    return rc;
}

/* ---- Link ---------------------------------------------------------------------- */

/* 1 when the space-separated list rels contains "next" (case-insensitive). */
static int rel_has_next(const char *rels)
{
    const char *p = rels;
    while (*p != '\0') {
        const char *s;
        while (*p == ' ' || *p == '\t')
            p++;
        s = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (p - s == 4 && strncasecmp(s, "next", 4) == 0)
            return 1;
    }
    return 0;
}

/* 1 when s begins with "scheme://". */
static int has_scheme(const char *s)
{
    const char *p = s;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    return strncmp(p, "://", 3) == 0;
}

/* Resolves ref against base (both absolute URLs with "scheme://"): a new
 * string, or NULL when base is not absolute or memory runs out. */
static char *url_resolve(const char *ref, size_t ref_len, const char *base)
{
    const char *auth, *path_start, *cut;
    const char *sep = ""; /* between the kept part of base and ref */
    size_t keep, plen;
    char *out = NULL;

    if (has_scheme(ref)) {
        out = strndup(ref, ref_len);
        goto done;
    }
    if (!has_scheme(base))
        goto done;
    auth = strstr(base, "://") + 3;
    path_start = auth + strcspn(auth, "/?#");
    if (ref_len >= 2 && ref[0] == '/' && ref[1] == '/') {
        keep = (size_t)(auth - 2 - base); /* "scheme:" */
    } else if (ref_len >= 1 && ref[0] == '/') {
        keep = (size_t)(path_start - base);
    } else if (ref_len >= 1 && ref[0] == '?') {
        keep = (size_t)(path_start - base) + strcspn(path_start, "?#");
    } else {
        /* a relative path replaces the last segment of base's path */
        plen = strcspn(path_start, "?#");
        cut = path_start + plen;
        while (cut > path_start && cut[-1] != '/')
            cut--;
        keep = (size_t)(cut - base);
        if (cut == path_start)
            sep = "/"; /* base has no path */
    }
    out = malloc(keep + strlen(sep) + ref_len + 1);
    if (out == NULL)
        goto done;
    memcpy(out, base, keep);
    memcpy(out + keep, sep, strlen(sep));
    memcpy(out + keep + strlen(sep), ref, ref_len);
    out[keep + strlen(sep) + ref_len] = '\0';
done:
    return out;
}

int registry_link_next(const char *link, const char *base_url, char **next)
{
    const char *p = link, *ref, *name;
    size_t ref_len, name_len;
    char *value = NULL;
    int rc = -1, is_next;

    if (next == NULL)
        return -1;
    *next = NULL;
    if (link == NULL)
        return 0;
    for (;;) {
        while (*p == ',' || is_ows(*p))
            p++;
        if (*p == '\0')
            break;
        if (*p != '<')
            goto done;
        ref = ++p;
        while (*p != '>' && *p != '\0')
            p++;
        if (*p != '>')
            goto done;
        ref_len = (size_t)(p - ref);
        p++;
        is_next = 0;
        for (;;) { /* parameters */
            p = skip_ows(p);
            if (*p != ';')
                break;
            p = skip_ows(p + 1);
            name = p;
            while (is_tchar(*p) && *p != '=')
                p++;
            name_len = (size_t)(p - name);
            if (name_len == 0)
                goto done;
            p = skip_ows(p);
            if (*p != '=')
                continue; /* a parameter without value */
            p = skip_ows(p + 1);
            value = *p == '"' ? read_quoted(&p) : read_bare(&p);
            if (value == NULL)
                goto done;
            if (name_len == 3 && strncasecmp(name, "rel", 3) == 0 && rel_has_next(value))
                is_next = 1;
            free(value);
            value = NULL;
        }
        if (*p != ',' && *p != '\0')
            goto done;
        if (is_next) {
            if (ref_len == 0 || memchr(ref, ' ', ref_len) != NULL || base_url == NULL)
                goto done;
            *next = url_resolve(ref, ref_len, base_url);
            rc = *next != NULL ? 0 : -1;
            goto done;
        }
    }
    rc = 0;
done:
    free(value);
    return rc;
}

/* ---- tags/list page --------------------------------------------------------------- */

int registry_tags_page_collect(const char *body, size_t len, json_t *seen, json_t *tags)
{
    json_t *root = json_loadb(body, len, 0, NULL), *list, *tag;
    size_t i;
    int rc = -1;

    if (!json_is_object(root))
        goto done;
    list = json_object_get(root, "tags");
    if (json_is_null(list)) {
        rc = 0; /* a repository whose tags were all deleted */
        goto done;
    }
    if (!json_is_array(list))
        goto done;
    json_array_foreach(list, i, tag)
    {
        const char *s = json_string_value(tag);
        if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(tag))
            goto done;
        if (json_object_get(seen, s) != NULL)
            continue;
        if (json_object_set(seen, s, json_true()) != 0 ||
            json_array_append_new(tags, json_string(s)) != 0)
            goto done;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ---- base64 ---------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
    const char *p;
    if (c == '\0')
        return -1;
    p = strchr(b64_alphabet, c);
    return p != NULL ? (int)(p - b64_alphabet) : -1;
}

unsigned char *registry_base64_decode(const char *in, size_t *len)
{
    size_t n, i, o = 0, pad = 0;
    unsigned char *out = NULL;
    unsigned long acc = 0;
    int bits = 0, v, ok = 0;

    if (in == NULL)
        goto done;
    n = strlen(in);
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0))
        goto done;
    out = malloc(n / 4 * 3 + 3 + 1);
    if (out == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        if ((v = b64_value(in[i])) < 0)
            goto done;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    if (len != NULL)
        *len = o;
    ok = 1;
done:
    if (!ok) {
        free(out);
        out = NULL;
    }
    return out;
}

char *registry_base64_encode(const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i, o = 0;
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8) | p[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        unsigned long v = (unsigned long)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)p[i + 1] << 8;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* expiresAt seconds as ms, clamped to +-1e18 (NaN gives 0): the cast of an
 * out-of-range double is undefined. */
static int64_t seconds_to_ms(double s)
{
    double ms = s * 1000.0;
    if (ms != ms)
        return 0;
    if (ms > 1e18)
        return (int64_t)1e18;
    if (ms < -1e18)
        return -(int64_t)1e18;
    return (int64_t)ms;
}
/* ---- ECR GetAuthorizationToken answer ---------------------------------------------- */

int registry_ecr_parse_token(const char *body, size_t len, char **basic, int64_t *expires_at_ms)
{
    json_t *root = NULL, *data, *token, *exp;
    unsigned char *decoded = NULL;
    size_t dlen = 0;
    const char *colon;
    int rc = -1;

    if (basic == NULL || expires_at_ms == NULL || body == NULL)
        return -1;
    *basic = NULL;
    *expires_at_ms = 0;
    root = json_loadb(body, len, 0, NULL);
    data = json_array_get(json_object_get(root, "authorizationData"), 0);
    token = json_object_get(data, "authorizationToken");
    if (!json_is_string(token) || json_string_length(token) == 0)
        goto done;
    decoded = registry_base64_decode(json_string_value(token), &dlen);
    if (decoded == NULL || memchr(decoded, '\0', dlen) != NULL)
        goto done;
    colon = strchr((const char *)decoded, ':');
    if (colon == NULL || colon == (const char *)decoded)
        goto done;
    exp = json_object_get(data, "expiresAt");
    if (json_is_number(exp)) {
        *expires_at_ms = seconds_to_ms(json_number_value(exp));
    } else if (json_is_string(exp)) {
        char *end = NULL;
        double d = strtod(json_string_value(exp), &end);
        if (end != json_string_value(exp) && *end == '\0')
            *expires_at_ms = seconds_to_ms(d);
    }
    *basic = malloc(6 + json_string_length(token) + 1);
    if (*basic == NULL)
        goto done;
    memcpy(*basic, "Basic ", 6);
    memcpy(*basic + 6, json_string_value(token), json_string_length(token) + 1);
    rc = 0;
done:
    if (decoded != NULL) {
        OPENSSL_cleanse(decoded, dlen);
        free(decoded);
    }
    json_decref(root);
    return rc;
}
