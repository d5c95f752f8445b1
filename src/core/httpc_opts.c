/*
 * httpc_opts.c - turns the caller's httpc_request_opts into a request ready
 * to send: the method, the URL (https only unless allow_plain; host, port,
 * target, Host header), header checks (token names, no control characters,
 * no headers httpc sets itself), the body, limits, TLS settings and the
 * connection pool key.
 */
#include "httpc-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

static const struct {
    const char *name;
    enum evhttp_cmd_type type;
    int retry_safe;
} httpc_methods[] = {
    {"GET", EVHTTP_REQ_GET, 1},         {"HEAD", EVHTTP_REQ_HEAD, 1},
    {"POST", EVHTTP_REQ_POST, 0},       {"PUT", EVHTTP_REQ_PUT, 0},
    {"DELETE", EVHTTP_REQ_DELETE, 0},   {"PATCH", EVHTTP_REQ_PATCH, 0},
    {"OPTIONS", EVHTTP_REQ_OPTIONS, 0},
};

/* Headers that httpc writes itself and callers may not set. */
static const char *const httpc_reserved_headers[] = {"Host", "Content-Length", "Connection",
                                                     "Transfer-Encoding", NULL};

/* ---- small helpers ---------------------------------------------------- */

static char *httpc_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* A new malloc'd string from a printf format; NULL on allocation failure. */
static char *httpc_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *httpc_printf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int httpc_is_token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* 1 when name is a valid header name and value holds no CR, LF or other
 * control character except tab. */
static int httpc_header_ok(const char *name, const char *value)
{
    const unsigned char *p;
    if (name == NULL || value == NULL || name[0] == '\0')
        return 0;
    for (p = (const unsigned char *)name; *p != '\0'; p++) {
        if (!httpc_is_token_char(*p))
            return 0;
    }
    for (p = (const unsigned char *)value; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    }
    return 1;
}

/* Copies opts into r.  HTTPC_OK, or an error with text in err. */
httpc_result httpc_req_setup(httpc_req *r, const httpc_request_opts *opts, char *err, size_t size)
{
    struct evhttp_uri *uri = NULL;
    const char *method, *scheme, *host, *path, *query;
    httpc_result rc = HTTPC_ERR_INTERNAL;
    size_t i, n, hostlen;
    int default_port, bracket;

    method = opts->method != NULL ? opts->method : "GET";
    for (i = 0; i < sizeof(httpc_methods) / sizeof(httpc_methods[0]); i++) {
        if (strcasecmp(method, httpc_methods[i].name) == 0)
            break;
    }
    if (i == sizeof(httpc_methods) / sizeof(httpc_methods[0])) {
        snprintf(err, size, "unsupported method %.32s", method);
        goto done;
    }
    r->type = httpc_methods[i].type;
    r->method = httpc_methods[i].name;
    r->idempotent = httpc_methods[i].retry_safe;
    if (opts->url == NULL || (uri = evhttp_uri_parse(opts->url)) == NULL) {
        snprintf(err, size, "bad URL %.200s", opts->url != NULL ? opts->url : "(null)");
        goto done;
    }
    scheme = evhttp_uri_get_scheme(uri);
    if (scheme != NULL && strcasecmp(scheme, "https") == 0) {
        r->tls = 1;
        default_port = 443;
    } else if (scheme != NULL && strcasecmp(scheme, "http") == 0 && opts->allow_plain) {
        r->tls = 0;
        default_port = 80;
    } else {
        snprintf(err, size, "unsupported URL scheme in %.200s (https only)", opts->url);
        goto done;
    }
    host = evhttp_uri_get_host(uri);
    if (host == NULL || host[0] == '\0' || evhttp_uri_get_userinfo(uri) != NULL) {
        snprintf(err, size, "bad URL %.200s (host missing or user info present)", opts->url);
        goto done;
    }
    hostlen = strlen(host);
    bracket = host[0] == '[' && hostlen > 2 && host[hostlen - 1] == ']';
    r->host = bracket ? strndup(host + 1, hostlen - 2) : strdup(host);
    if (r->host == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }
    r->port = evhttp_uri_get_port(uri);
    if (r->port == -1)
        r->port = default_port;
    if (r->port < 1 || r->port > 65535) {
        snprintf(err, size, "bad port in URL %.200s", opts->url);
        goto done;
    }
    path = evhttp_uri_get_path(uri);
    query = evhttp_uri_get_query(uri);
    if (path == NULL || path[0] == '\0')
        path = "/";
    r->target = query != NULL ? httpc_printf("%s?%s", path, query) : strdup(path);
    if (r->port == default_port)
        r->host_header = bracket ? httpc_printf("[%s]", r->host) : httpc_strdup(r->host);
    else
        r->host_header = bracket ? httpc_printf("[%s]:%d", r->host, r->port)
                                 : httpc_printf("%s:%d", r->host, r->port);
    r->connect_host = httpc_strdup(opts->connect_host != NULL ? opts->connect_host : r->host);
    r->refuse_special = opts->refuse_special_addresses != 0;
    if (r->target == NULL || r->host_header == NULL || r->connect_host == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }
    if (strpbrk(r->target, " \r\n") != NULL || r->connect_host[0] == '\0') {
        snprintf(err, size, "bad URL %.200s", opts->url);
        goto done;
    }

    /* Headers: validated and copied. */
    for (n = 0; opts->headers != NULL && opts->headers[n] != NULL; n += 2) {
        const char *const *rh;
        if (!httpc_header_ok(opts->headers[n], opts->headers[n + 1])) {
            snprintf(err, size, "bad request header %.64s", opts->headers[n]);
            goto done;
        }
        for (rh = httpc_reserved_headers; *rh != NULL; rh++) {
            if (strcasecmp(*rh, opts->headers[n]) == 0) {
                snprintf(err, size, "header %s is set by httpc", *rh);
                goto done;
            }
        }
    }
    if (n > 0) {
        r->headers = calloc(n + 1, sizeof(char *));
        if (r->headers == NULL) {
            snprintf(err, size, "out of memory");
            goto done;
        }
        for (i = 0; i < n; i++) {
            if ((r->headers[i] = strdup(opts->headers[i])) == NULL) {
                snprintf(err, size, "out of memory");
                goto done;
            }
        }
    }
    if (opts->body != NULL) {
        r->body = malloc(opts->body_len + 1);
        if (r->body == NULL) {
            snprintf(err, size, "out of memory");
            goto done;
        }
        memcpy(r->body, opts->body, opts->body_len);
        r->body[opts->body_len] = '\0';
        r->body_len = opts->body_len;
    }
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
    r->cap = opts->max_response_bytes > 0 ? opts->max_response_bytes : HTTPC_DEFAULT_MAX_BYTES;
    r->verify = r->tls && opts->verify;
    if (r->verify && opts->ca_file != NULL && (r->ca_file = strdup(opts->ca_file)) == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }
    r->key = httpc_printf("%s|%s|%d|%s|%d|%s", r->tls ? "https" : "http", r->connect_host, r->port,
                          r->host, r->verify, r->ca_file != NULL ? r->ca_file : "");
    if (r->key == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }
    rc = HTTPC_OK;
done:
    if (uri != NULL)
        evhttp_uri_free(uri);
    return rc;
}
