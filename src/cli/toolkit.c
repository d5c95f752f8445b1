/*
 * toolkit.c - shared plumbing of the operator tools (see toolkit.h): the API
 * client over httpc, configuration helpers and terminal output.
 *
 * The client builds "https://host:port/repository/v1/<path>" URLs, sends
 * the JSON body with the bearer token and decodes every answer into a
 * tk_reply (transport failure, API error from the gateway-shaped
 * {"detail": {...}} body, or a parsed 2xx object).  Synchronous calls run
 * the client's own event loop until their answer arrives, so the tools can
 * mix them with asynchronous fan-out on the same keep-alive pool.
 */
#include "toolkit.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util.h"

#define TK_NON_TTY_WIDTH      120
#define TK_MAX_RESPONSE_BYTES ((size_t)256 << 20)
#define TK_MAX_BACKOFF_MS     30000
#define TK_EXCERPT_MAX        200
#define TK_MIN_COLUMN         5

void tk_init_process(void)
{
    signal(SIGPIPE, SIG_IGN);
}

/* ---- configuration helpers ----------------------------------------------- */

char *tk_trim_dup(const char *s)
{
    const char *end;
    char *out;
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    out = malloc((size_t)(end - s) + 1);
    if (out != NULL) {
        memcpy(out, s, (size_t)(end - s));
        out[end - s] = '\0';
    }
    return out;
}

char *tk_read_token_file(const char *path, char *errbuf, size_t errlen)
{
    char *data = NULL, *token = NULL, *nl;
    data = util_read_file(path, NULL);
    if (data == NULL) {
        snprintf(errbuf, errlen, "cannot read token file %s: %s", path, strerror(errno));
        goto done;
    }
    nl = strpbrk(data, "\r\n");
    if (nl != NULL)
        *nl = '\0';
    token = tk_trim_dup(data);
    if (token == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto done;
    }
    if (token[0] == '\0') {
        snprintf(errbuf, errlen, "token file %s: the first line is empty", path);
        free(token);
        token = NULL;
    }
done:
    if (data != NULL) {
        /* The token is a secret: do not leave copies in freed memory. */
        memset(data, 0, strlen(data));
        free(data);
    }
    return token;
}

char *tk_normalize_endpoint(const char *endpoint, char *errbuf, size_t errlen)
{
    static const char scheme[] = "https://";
    char *out = NULL;
    const char *host, *port = NULL;
    size_t len;

    if (endpoint == NULL || strncasecmp(endpoint, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(errbuf, errlen, "endpoint must start with https:// (got \"%s\")",
                 endpoint ? endpoint : "");
        goto done;
    }
    host = endpoint + sizeof(scheme) - 1;
    len = strlen(host);
    if (len > 0 && host[len - 1] == '/')
        len--;
    if (len == 0 || len > 255 || strcspn(host, "/?#@ \t") < len) {
        snprintf(errbuf, errlen, "endpoint must be https://HOST[:PORT] without a path (got \"%s\")",
                 endpoint);
        goto done;
    }
    if (host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (close == NULL || close == host + 1) {
            snprintf(errbuf, errlen, "endpoint has a bad IPv6 address (got \"%s\")", endpoint);
            goto done;
        }
        if (close + 1 < host + len) {
            if (close[1] != ':') {
                snprintf(errbuf, errlen, "endpoint has a bad port (got \"%s\")", endpoint);
                goto done;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(host, ':', len);
        if (colon == host) {
            snprintf(errbuf, errlen, "endpoint has no host (got \"%s\")", endpoint);
            goto done;
        }
        if (colon != NULL)
            port = colon + 1;
    }
    if (port != NULL) {
        size_t plen = (size_t)(host + len - port);
        long p = 0;
        if (plen == 0 || plen > 5) {
            snprintf(errbuf, errlen, "endpoint has a bad port (got \"%s\")", endpoint);
            goto done;
        }
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) {
                p = -1;
                break;
            }
            p = p * 10 + (port[i] - '0');
        }
        if (p < 1 || p > 65535) {
            snprintf(errbuf, errlen, "endpoint has a bad port (got \"%s\")", endpoint);
            goto done;
        }
    }
    out = malloc(sizeof(scheme) + len);
    if (out == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto done;
    }
    memcpy(out, scheme, sizeof(scheme) - 1);
    memcpy(out + sizeof(scheme) - 1, host, len);
    out[sizeof(scheme) - 1 + len] = '\0';
done:
    return out;
}

int tk_parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- the API client -------------------------------------------------------- */

struct tk_client {
    struct event_base *base;
    httpc *http;
    char *endpoint;
    char *auth_header; /* "Bearer <token>" or NULL */
    char *ca_file;
    int timeout_ms;
};

typedef struct {
    tk_client *c;
    tk_reply_cb cb;
    void *arg;
} tk_pending;

tk_client *tk_client_new(const tk_client_opts *opts, char *errbuf, size_t errlen)
{
    tk_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto oom;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : TK_DEFAULT_TIMEOUT_MS;
    c->endpoint = strdup(opts->endpoint);
    if (c->endpoint == NULL)
        goto oom;
    if (opts->ca_file != NULL && (c->ca_file = strdup(opts->ca_file)) == NULL)
        goto oom;
    if (opts->token != NULL) {
        size_t n = strlen("Bearer ") + strlen(opts->token) + 1;
        if ((c->auth_header = malloc(n)) == NULL)
            goto oom;
        snprintf(c->auth_header, n, "Bearer %s", opts->token);
    }
    c->base = event_base_new();
    if (c->base == NULL) {
        snprintf(errbuf, errlen, "cannot create an event loop");
        tk_client_free(c);
        return NULL;
    }
    c->http = httpc_new(c->base);
    if (c->http == NULL)
        goto oom;
    return c;
oom:
    snprintf(errbuf, errlen, "out of memory");
    tk_client_free(c);
    return NULL;
}

void tk_client_free(tk_client *c)
{
    if (c == NULL)
        return;
    if (c->http != NULL)
        httpc_free(c->http);
    if (c->base != NULL)
        event_base_free(c->base);
    free(c->endpoint);
    if (c->auth_header != NULL) {
        memset(c->auth_header, 0, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c->ca_file);
    free(c);
}

struct event_base *tk_client_base(tk_client *c)
{
    return c->base;
}

void tk_reply_clear(tk_reply *out)
{
    if (out == NULL)
        return;
    json_decref(out->body);
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
}

static const char *transport_code(httpc_result r)
{
    switch (r) {
    case HTTPC_ERR_CONNECT:
        return "CONNECT_FAILED";
    case HTTPC_ERR_TLS:
        return "TLS_FAILED";
    case HTTPC_ERR_TIMEOUT:
        return "TIMEOUT";
    case HTTPC_ERR_TOO_LARGE:
        return "RESPONSE_TOO_LARGE";
    case HTTPC_ERR_PROTOCOL:
        return "PROTOCOL_ERROR";
    default:
        return "CLIENT_ERROR";
    }
}

/* Copies at most TK_EXCERPT_MAX bytes of s into dst (size bytes), control
 * characters turned into spaces and runs of white space collapsed. */
static void excerpt(const char *s, size_t len, char *dst, size_t size)
{
    size_t o = 0;
    int space = 1;
    for (size_t i = 0; i < len && i < TK_EXCERPT_MAX && o + 1 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == ' ') {
            if (!space)
                dst[o++] = ' ';
            space = 1;
            continue;
        }
        dst[o++] = (char)ch;
        space = 0;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* Fills *out from one httpc response. */
static void decode_response(const httpc_response *resp, tk_reply *out)
{
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    out->result = resp->result;
    if (resp->result != HTTPC_OK) {
        out->transport_error = 1;
        snprintf(out->code, sizeof(out->code), "%s", transport_code(resp->result));
        snprintf(out->message, sizeof(out->message), "%s",
                 resp->error && resp->error[0] ? resp->error : "request failed");
        return;
    }
    out->status = resp->status;
    if (resp->body_len > 0)
        out->body = json_loadb(resp->body, resp->body_len, 0, NULL);
    {
        const char *ra = httpc_response_header(resp, "Retry-After");
        long secs;
        const char *xc = httpc_response_header(resp, "X-Cache");
        if (ra != NULL && tk_parse_long(ra, 0, 3600, &secs) == 0)
            out->retry_after_ms = (int)secs * 1000;
        if (xc != NULL)
            snprintf(out->x_cache, sizeof(out->x_cache), "%s", xc);
    }
    if (resp->status >= 200 && resp->status < 300) {
        if (!json_is_object(out->body)) {
            snprintf(out->code, sizeof(out->code), "BAD_RESPONSE");
            snprintf(out->message, sizeof(out->message),
                     "HTTP %d with a body that is not a JSON object", resp->status);
        }
        return;
    }
    {
        json_t *detail = json_object_get(out->body, "detail");
        const char *code = json_string_value(json_object_get(detail, "code"));
        const char *msg = json_string_value(json_object_get(detail, "message"));
        if (code != NULL && code[0] != '\0') {
            snprintf(out->code, sizeof(out->code), "%s", code);
            excerpt(msg ? msg : "", strlen(msg ? msg : ""), out->message, sizeof(out->message));
        } else {
            snprintf(out->code, sizeof(out->code), "HTTP_%d", resp->status);
            excerpt(resp->body, resp->body_len, out->message, sizeof(out->message));
            if (out->message[0] == '\0')
                snprintf(out->message, sizeof(out->message), "HTTP %d with an empty body",
                         resp->status);
        }
    }
}

static void on_http_done(const httpc_response *resp, void *arg)
{
    tk_pending *p = arg;
    tk_reply reply;
    decode_response(resp, &reply);
    p->cb(&reply, p->arg);
    json_decref(reply.body);
    free(p);
}

int tk_call_async(tk_client *c, const char *path, const json_t *body, tk_reply_cb cb, void *arg)
{
    const char *headers[] = {"Content-Type",
                             "application/json",
                             "Accept",
                             "application/json",
                             "User-Agent",
                             "repod-tools/" REPOD_VERSION,
                             NULL,
                             NULL,
                             NULL};
    httpc_request_opts opts;
    tk_pending *p = NULL;
    char *url = NULL, *payload = NULL;
    size_t url_len;
    int rc = -1;

    p = calloc(1, sizeof(*p));
    url_len = strlen(c->endpoint) + strlen("/repository/v1/") + strlen(path) + 1;
    url = malloc(url_len);
    payload = body != NULL ? json_dumps(body, JSON_COMPACT) : strdup("{}");
    if (p == NULL || url == NULL || payload == NULL)
        goto done;
    snprintf(url, url_len, "%s/repository/v1/%s", c->endpoint, path);
    if (c->auth_header != NULL) {
        headers[6] = "Authorization";
        headers[7] = c->auth_header;
    }
    p->c = c;
    p->cb = cb;
    p->arg = arg;
    httpc_request_init(&opts);
    opts.method = "POST";
    opts.url = url;
    opts.headers = headers;
    opts.body = payload;
    opts.body_len = strlen(payload);
    opts.timeout_ms = c->timeout_ms;
    opts.max_response_bytes = TK_MAX_RESPONSE_BYTES;
    opts.ca_file = c->ca_file;
    /* httpc calls back (asynchronously) even when it fails at once (only
     * an out-of-memory request record goes unanswered), so the record
     * belongs to the callback from here on. */
    (void)httpc_request(c->http, &opts, on_http_done, p);
    p = NULL;
    rc = 0;
done:
    free(p);
    free(url);
    free(payload);
    return rc;
}

typedef struct {
    int done;
    int abandoned;
    tk_reply reply;
} tk_sync_ctx;

static void on_sync_done(const tk_reply *reply, void *arg)
{
    tk_sync_ctx *s = arg;
    if (s->abandoned) {
        free(s);
        return;
    }
    s->reply = *reply;
    s->reply.body = json_incref(reply->body);
    s->done = 1;
}

int tk_call(tk_client *c, const char *path, const json_t *body, tk_reply *out)
{
    tk_sync_ctx *s = calloc(1, sizeof(*s));
    int rc = -1;
    memset(out, 0, sizeof(*out));
    out->retry_after_ms = -1;
    out->transport_error = 1;
    out->result = HTTPC_ERR_INTERNAL;
    snprintf(out->code, sizeof(out->code), "CLIENT_ERROR");
    snprintf(out->message, sizeof(out->message), "out of memory");
    if (s == NULL)
        goto done;
    if (tk_call_async(c, path, body, on_sync_done, s) != 0) {
        free(s);
        goto done;
    }
    while (!s->done) {
        /* 1 = nothing left to wait for: the answer can never come. */
        if (event_base_loop(c->base, EVLOOP_ONCE) != 0) {
            /* The callback will free the context if it ever runs. */
            s->abandoned = 1;
            snprintf(out->message, sizeof(out->message), "event loop failed");
            goto done;
        }
    }
    *out = s->reply;
    free(s);
    rc = out->code[0] == '\0' ? 0 : -1;
done:
    return rc;
}

/* Runs the event loop for ms milliseconds (keep-alive connections stay
 * serviced meanwhile). */
static void loop_sleep(tk_client *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (event_base_loopexit(c->base, &tv) != 0 || event_base_dispatch(c->base) < 0)
        usleep((useconds_t)ms * 1000);
}

int tk_call_retry(tk_client *c, const char *path, const json_t *body, int retries,
                  int base_delay_ms, tk_reply *out, int *attempts)
{
    int k = 0, rc;
    for (;;) {
        rc = tk_call(c, path, body, out);
        if (rc == 0 || k >= retries || !tk_reply_is_transient(out))
            break;
        loop_sleep(c, tk_backoff_ms(out, base_delay_ms, k));
        tk_reply_clear(out);
        k++;
    }
    if (attempts != NULL)
        *attempts = k + 1;
    return rc;
}

int tk_reply_is_transient(const tk_reply *r)
{
    if (r->transport_error)
        return r->result == HTTPC_ERR_CONNECT || r->result == HTTPC_ERR_TIMEOUT ||
               r->result == HTTPC_ERR_PROTOCOL;
    return r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504;
}

int tk_backoff_ms(const tk_reply *r, int base_delay_ms, int k)
{
    int64_t ms = base_delay_ms > 0 ? base_delay_ms : 0;
    for (int i = 0; i < k && ms < TK_MAX_BACKOFF_MS; i++)
        ms *= 2;
    if (r != NULL && r->retry_after_ms > ms)
        ms = r->retry_after_ms;
    return ms > TK_MAX_BACKOFF_MS ? TK_MAX_BACKOFF_MS : (int)ms;
}

/* ---- output --------------------------------------------------------------- */

int tk_terminal_width(int fd)
{
    struct winsize ws;
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return TK_NON_TTY_WIDTH;
}

int tk_print_json(FILE *f, const json_t *j)
{
    if (json_dumpf(j, f, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
        return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

static const json_t *json_path(const json_t *obj, const char *path)
{
    char key[256];
    const char *p = path;
    while (obj != NULL && *p != '\0') {
        size_t n = strcspn(p, ".");
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        p += n;
        if (*p == '.')
            p++;
    }
    return obj;
}

/* Appends s to buf (size) at *off, cutting at the end. */
static void append(char *buf, size_t size, size_t *off, const char *s)
{
    size_t n = strlen(s);
    if (*off + 1 >= size)
        return;
    if (n > size - 1 - *off)
        n = size - 1 - *off;
    memcpy(buf + *off, s, n);
    *off += n;
    buf[*off] = '\0';
}

static void scalar_text(const json_t *v, char *buf, size_t size)
{
    buf[0] = '\0';
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, size, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, size, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, size, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, size, "false");
        break;
    default:
        break;
    }
}

const char *tk_json_text(const json_t *obj, const char *path, char *buf, size_t size)
{
    const json_t *v = path != NULL && path[0] != '\0' ? json_path(obj, path) : obj;
    char *dump;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    if (v == NULL || json_is_null(v))
        return buf;
    if (json_is_array(v)) {
        size_t i, off = 0;
        const json_t *e;
        int scalars = 1;
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e) || json_is_array(e))
                scalars = 0;
        }
        if (scalars) {
            char item[512];
            json_array_foreach(v, i, e)
            {
                scalar_text(e, item, sizeof(item));
                if (i > 0)
                    append(buf, size, &off, ",");
                append(buf, size, &off, item);
            }
            return buf;
        }
    }
    if (json_is_object(v) || json_is_array(v)) {
        dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dump != NULL)
            snprintf(buf, size, "%s", dump);
        free(dump);
        return buf;
    }
    scalar_text(v, buf, size);
    return buf;
}

size_t tk_display_width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

struct tk_table {
    size_t ncols;
    char **headers;
    char **cells; /* rows * ncols */
    unsigned char *keep;
    size_t rows, cap;
};

/* A copy of s with C0/C1 control characters and DEL replaced by spaces. */
static char *clean_dup(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            out[o++] = ' ';
        } else if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            out[o++] = ' '; /* U+0080..U+009F */
            i++;
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return out;
}

tk_table *tk_table_new(const char *const *headers, size_t ncols)
{
    tk_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->headers = calloc(ncols ? ncols : 1, sizeof(char *));
    t->keep = calloc(ncols ? ncols : 1, 1);
    if (t->headers == NULL || t->keep == NULL)
        goto fail;
    for (size_t i = 0; i < ncols; i++)
        if ((t->headers[i] = clean_dup(headers[i] ? headers[i] : "")) == NULL)
            goto fail;
    return t;
fail:
    tk_table_free(t);
    return NULL;
}

int tk_table_add_row(tk_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **grown = realloc(t->cells, cap * t->ncols * sizeof(char *) + 1);
        if (grown == NULL)
            return -1;
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        char *c = clean_dup(cells[i] ? cells[i] : "");
        if (c == NULL) {
            for (size_t j = 0; j < i; j++)
                free(t->cells[t->rows * t->ncols + j]);
            return -1;
        }
        t->cells[t->rows * t->ncols + i] = c;
    }
    t->rows++;
    return 0;
}

void tk_table_keep(tk_table *t, size_t col)
{
    if (col < t->ncols)
        t->keep[col] = 1;
}

size_t tk_table_rows(const tk_table *t)
{
    return t->rows;
}

/* Prints s in exactly w columns (cut with "…" when longer); pad = 0 for the
 * last column (no trailing spaces). */
static void print_cell(FILE *f, const char *s, size_t w, int pad)
{
    size_t dw = tk_display_width(s);
    if (dw <= w) {
        fputs(s, f);
        if (pad)
            for (size_t i = dw; i < w; i++)
                fputc(' ', f);
        return;
    }
    if (w == 0)
        return;
    {
        size_t keep = w - 1, cps = 0;
        const char *p = s;
        /* Copy keep code points. */
        while (*p != '\0') {
            if (((unsigned char)*p & 0xc0) != 0x80) {
                if (cps == keep)
                    break;
                cps++;
            }
            p++;
        }
        fwrite(s, 1, (size_t)(p - s), f);
        fputs("\xe2\x80\xa6", f); /* … */
    }
}

void tk_table_print(const tk_table *t, FILE *f, int width)
{
    size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
    size_t *minw = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
    size_t total = 0;
    if (w == NULL || minw == NULL || t->ncols == 0)
        goto done;
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = tk_display_width(t->headers[c]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t dw = tk_display_width(t->cells[r * t->ncols + c]);
            if (dw > w[c])
                w[c] = dw;
        }
        minw[c] = w[c] < TK_MIN_COLUMN ? w[c] : TK_MIN_COLUMN;
        total += w[c];
    }
    total += 2 * (t->ncols - 1);
    /* Narrow the widest column one step at a time until the table fits:
     * first among the columns not kept, then among all. */
    for (int pass = 0; pass < 2; pass++) {
        while (width > 0 && total > (size_t)width) {
            size_t widest = t->ncols;
            for (size_t c = 0; c < t->ncols; c++)
                if ((pass == 1 || !t->keep[c]) && w[c] > minw[c] &&
                    (widest == t->ncols || w[c] > w[widest]))
                    widest = c;
            if (widest == t->ncols)
                break;
            w[widest]--;
            total--;
        }
    }
    for (size_t r = 0; r <= t->rows; r++) {
        char *const *row = r == 0 ? t->headers : t->cells + (r - 1) * t->ncols;
        size_t last = t->ncols - 1;
        /* Empty trailing cells are not printed: no trailing spaces. */
        while (last > 0 && row[last][0] == '\0')
            last--;
        for (size_t c = 0; c <= last; c++) {
            print_cell(f, row[c], w[c], c < last);
            if (c < last)
                fputs("  ", f);
        }
        fputc('\n', f);
    }
done:
    free(w);
    free(minw);
}

void tk_table_free(tk_table *t)
{
    if (t == NULL)
        return;
    if (t->headers != NULL)
        for (size_t i = 0; i < t->ncols; i++)
            free(t->headers[i]);
    free(t->headers);
    free(t->keep);
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
