/*
 * http_guard.c - refuses bad request heads and oversized bodies before
 * evhttp reads them (see http_guard.h for what and why).
 *
 * Positions are stream offsets: total_in counts every byte the connection
 * ever added to the input buffer, so evhttp has consumed
 * total_in - evbuffer_get_length(in) of them, and the guard has looked at
 * `scanned`.  evhttp consumes heads line by line and chunked bodies chunk by
 * chunk, and the guard sees every byte before evhttp does, so the line the
 * guard refuses is still in the buffer: the buffer is cut at its start and
 * ends with bytes that complete the request without a body.
 */
#include "http_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

enum {
    G_HEAD,       /* request line and header lines */
    G_BODY,       /* Content-Length body: body_left bytes to go */
    G_CHUNK_SIZE, /* a chunk-size line */
    G_CHUNK_DATA, /* chunk data: body_left bytes to go */
    G_CHUNK_END,  /* the CRLF after chunk data */
    G_TRAILER,    /* trailer lines after the last chunk */
    G_REFUSED     /* a request was refused: nothing more is looked at */
};

#define LINE_KEEP       256 /* first bytes of a line kept for parsing */
#define CHUNK_LINE_MAX  64  /* a chunk-size line longer than this is refused */
#define HEADER_SLACK    512 /* evhttp's head limit is ours plus this */
#define SYNTHETIC_START "GET / HTTP/1.1\r\n\r\n"

struct http_guard {
    struct evbuffer *in;
    struct evbuffer_cb_entry *cb;
    int64_t max_header, max_body;
    uint64_t total_in; /* bytes ever added to in */
    uint64_t scanned;  /* stream offset looked at so far */
    int state;
    /* the current line */
    uint64_t line_start; /* stream offset of its first byte */
    size_t line_len;     /* bytes so far, '\n' excluded */
    char last;           /* its last byte so far */
    char line[LINE_KEEP];
    /* the current request */
    int64_t head_bytes; /* head (and trailer) bytes so far */
    int first_line_done;
    int may_have_body;      /* POST, PUT, PATCH: the methods evhttp reads a body for */
    int64_t content_length; /* -1 = none */
    int chunked;
    int64_t body_left;
    int64_t body_total;
    /* requests: the index of the one refused, answered in http_guard_next */
    uint64_t heads_done;
    uint64_t dispatched;
    uint64_t refused_index;
    rd_status refusal;
    char message[160];
    char method[16];
    char path[256];
};

int64_t http_guard_evhttp_header_limit(int64_t max_header_bytes)
{
    return max_header_bytes + HEADER_SLACK;
}

static void head_reset(http_guard *g)
{
    g->state = G_HEAD;
    g->head_bytes = 0;
    g->first_line_done = 0;
    g->may_have_body = 0;
    g->content_length = -1;
    g->chunked = 0;
    g->body_left = 0;
    g->body_total = 0;
    snprintf(g->method, sizeof(g->method), "-");
    snprintf(g->path, sizeof(g->path), "-");
}

/* Copies the method and path of the request line in line[0..len) (possibly
 * cut short) for the access log. */
static void note_request_line(http_guard *g, const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);
    const char *end, *sp2;
    if (sp == NULL)
        return;
    snprintf(g->method, sizeof(g->method), "%.*s", (int)(sp - line), line);
    end = line + len;
    sp2 = memchr(sp + 1, ' ', (size_t)(end - sp - 1));
    snprintf(g->path, sizeof(g->path), "%.*s", (int)((sp2 != NULL ? sp2 : end) - sp - 1), sp + 1);
}

/* Appends n filler bytes (the body of a Content-Length evhttp has read). */
static void add_filler(struct evbuffer *in, int64_t n)
{
    static const char filler[1024];
    while (n > 0) {
        size_t k = n > (int64_t)sizeof(filler) ? sizeof(filler) : (size_t)n;
        if (evbuffer_add(in, filler, k) != 0)
            break;
        n -= (int64_t)k;
    }
}

/* Refuses the current request: cuts the buffer at the start of the current
 * line and appends what makes evhttp dispatch the request without reading
 * more.  From here on nothing is looked at. */
static void refuse(http_guard *g, rd_status code, const char *message)
{
    size_t len = evbuffer_get_length(g->in);
    uint64_t consumed = g->total_in - len;
    size_t keep = g->line_start >= consumed ? (size_t)(g->line_start - consumed) : 0;
    struct evbuffer *prefix = evbuffer_new();
    int state = g->state;

    g->state = G_REFUSED; /* before touching the buffer: its callback runs again */
    g->refusal = code;
    /* heads_done counts the current request once its head is complete */
    g->refused_index = state == G_HEAD ? g->heads_done : g->heads_done - 1;
    snprintf(g->message, sizeof(g->message), "%s", message);
    if (state == G_HEAD && !g->first_line_done)
        note_request_line(g, g->line, g->line_len < LINE_KEEP ? g->line_len : LINE_KEEP);
    if (g->line_start < consumed)
        LOG_WARN("http guard: %llu bytes of the refused request were already read",
                 (unsigned long long)(consumed - g->line_start));
    if (prefix == NULL)
        LOG_WARN("http guard: out of memory while cutting a refused request");
    if (keep > len)
        keep = len;
    if (prefix != NULL && keep > 0)
        evbuffer_remove_buffer(g->in, prefix, keep);
    evbuffer_drain(g->in, evbuffer_get_length(g->in));
    if (prefix != NULL) {
        evbuffer_add_buffer(g->in, prefix);
        evbuffer_free(prefix);
    }
    if (state == G_HEAD && !g->first_line_done) {
        evbuffer_add(g->in, SYNTHETIC_START, strlen(SYNTHETIC_START));
    } else if (state == G_HEAD) {
        evbuffer_add(g->in, "\r\n", 2);
        if (g->chunked)
            evbuffer_add(g->in, "0\r\n\r\n", 5);
        else if (g->content_length > 0)
            add_filler(g->in, g->content_length);
    } else if (state == G_TRAILER) {
        evbuffer_add(g->in, "\r\n", 2);
    } else { /* G_CHUNK_SIZE, G_CHUNK_END */
        evbuffer_add(g->in, "0\r\n\r\n", 5);
    }
}

/* Parses a Content-Length or chunk-size value: digits of base (10 or 16)
 * only, at most max_digits of them; -1 when invalid. */
static int64_t parse_number(const char *s, size_t len, int base, size_t max_digits)
{
    int64_t v = 0;
    if (len == 0 || len > max_digits)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * base + d;
    }
    return v;
}

/* One header line of the head (not the request line, not empty). */
static void header_line(http_guard *g, const char *line, size_t len, int cut_short)
{
    const char *colon = memchr(line, ':', len);
    const char *v, *end = line + len;
    size_t name_len;

    if (line[0] == ' ' || line[0] == '\t') {
        refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = folded header line)");
        return;
    }
    if (memchr(line, '\0', len) != NULL) { /* evhttp would see a shorter line */
        refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = NUL byte in a header line)");
        return;
    }
    if (colon == NULL) { /* (or a header name longer than LINE_KEEP) */
        refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = header line without a colon)");
        return;
    }
    name_len = (size_t)(colon - line);
    if (memchr(line, ' ', name_len) != NULL || memchr(line, '\t', name_len) != NULL) {
        refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = space in a header name)");
        return;
    }
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (name_len == 14 && strncasecmp(line, "content-length", 14) == 0) {
        int64_t n = cut_short ? -1 : parse_number(v, (size_t)(end - v), 10, 18);
        if (n < 0)
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = invalid Content-Length)");
        else if (g->chunked)
            refuse(g, RD_ERR_BAD_REQUEST,
                   "Bad request. (reason = both Content-Length and Transfer-Encoding)");
        else if (g->content_length >= 0 && n != g->content_length)
            refuse(g, RD_ERR_BAD_REQUEST,
                   "Bad request. (reason = Content-Length headers with different values)");
        else if (n > 0 && !g->may_have_body)
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = a body on a method without one)");
        else if (n > g->max_body)
            refuse(g, RD_ERR_REQUEST_TOO_LARGE,
                   "Request too large. (limit = limits.max_body_bytes)");
        else
            g->content_length = n;
    } else if (name_len == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
        if (g->content_length >= 0)
            refuse(g, RD_ERR_BAD_REQUEST,
                   "Bad request. (reason = both Content-Length and Transfer-Encoding)");
        else if (g->chunked || cut_short || end - v != 7 || strncasecmp(v, "chunked", 7) != 0)
            refuse(g, RD_ERR_BAD_REQUEST,
                   "Bad request. (reason = Transfer-Encoding other than chunked)");
        else if (!g->may_have_body)
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = a body on a method without one)");
        else
            g->chunked = 1;
    }
}

/* The request line: METHOD SP TARGET SP HTTP/1.x (a long target may be cut
 * short in line[0..len); then only the method is checked). */
static void request_line(http_guard *g, const char *line, size_t len, int cut_short)
{
    const char *sp = memchr(line, ' ', len);
    const char *sp2 = sp != NULL ? memchr(sp + 1, ' ', len - (size_t)(sp - line) - 1) : NULL;
    size_t mlen = sp != NULL ? (size_t)(sp - line) : len;
    int version_ok =
        sp2 != NULL && (size_t)(line + len - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0;
    if (sp == NULL || mlen == 0 || (!cut_short && !version_ok)) {
        refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = invalid request line)");
        return;
    }
    note_request_line(g, line, len);
    g->may_have_body = (mlen == 4 && memcmp(line, "POST", 4) == 0) ||
                       (mlen == 3 && memcmp(line, "PUT", 3) == 0) ||
                       (mlen == 5 && memcmp(line, "PATCH", 5) == 0);
    g->first_line_done = 1;
}

/* A complete line of the current state. */
static void line_done(http_guard *g)
{
    size_t full = g->line_len > 0 && g->last == '\r' ? g->line_len - 1 : g->line_len;
    int cut_short = full > LINE_KEEP; /* only the first LINE_KEEP bytes are known */
    size_t len = cut_short ? LINE_KEEP : full;

    switch (g->state) {
    case G_HEAD:
        if (!g->first_line_done) {
            request_line(g, g->line, len, cut_short);
        } else if (len == 0 && !cut_short) {
            g->heads_done++;
            if (g->chunked) {
                g->state = G_CHUNK_SIZE;
            } else if (g->content_length > 0) {
                g->state = G_BODY;
                g->body_left = g->content_length;
            } else {
                head_reset(g);
            }
        } else {
            header_line(g, g->line, len, cut_short);
        }
        break;
    case G_CHUNK_SIZE: {
        int64_t n = cut_short ? -1 : parse_number(g->line, len, 16, 15);
        if (n < 0) {
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = invalid chunk size)");
        } else if (n == 0) {
            g->state = G_TRAILER;
        } else if (g->body_total + n > g->max_body) {
            refuse(g, RD_ERR_REQUEST_TOO_LARGE,
                   "Request too large. (limit = limits.max_body_bytes)");
        } else {
            g->body_total += n;
            g->body_left = n;
            g->state = G_CHUNK_DATA;
        }
        break;
    }
    case G_CHUNK_END:
        if (len != 0 || cut_short)
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = invalid chunk size)");
        else
            g->state = G_CHUNK_SIZE;
        break;
    case G_TRAILER:
        if (len == 0 && !cut_short)
            head_reset(g);
        else if (g->line[0] == ' ' || g->line[0] == '\t' || memchr(g->line, ':', len) == NULL)
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = malformed trailer line)");
        break;
    default:
        break;
    }
}

/* Looks at p[0..n), the next bytes of the stream.  Returns at once when the
 * request is refused (the buffer p points into has changed then). */
static void scan_bytes(http_guard *g, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && g->state != G_REFUSED) {
        if (g->state == G_BODY || g->state == G_CHUNK_DATA) {
            size_t k = (int64_t)(n - i) < g->body_left ? n - i : (size_t)g->body_left;
            i += k;
            g->scanned += k;
            g->body_left -= (int64_t)k;
            if (g->body_left == 0) {
                if (g->state == G_BODY)
                    head_reset(g);
                else
                    g->state = G_CHUNK_END;
                g->line_start = g->scanned;
                g->line_len = 0;
            }
            continue;
        }
        if (g->state == G_HEAD || g->state == G_TRAILER) {
            if (++g->head_bytes > g->max_header) {
                refuse(g, RD_ERR_REQUEST_HEADER_TOO_LARGE,
                       "Request header too large. (limit = limits.max_header_bytes)");
                return;
            }
        } else if (g->line_len > CHUNK_LINE_MAX) {
            refuse(g, RD_ERR_BAD_REQUEST, "Bad request. (reason = invalid chunk size)");
            return;
        }
        g->scanned++;
        if (p[i] == '\n') {
            line_done(g);
            if (g->state == G_REFUSED)
                return;
            g->line_start = g->scanned;
            g->line_len = 0;
        } else {
            if (g->line_len < LINE_KEEP)
                g->line[g->line_len] = p[i];
            g->line_len++;
            g->last = p[i];
        }
        i++;
    }
}

/* Looks at every byte added since the last call. */
static void scan(http_guard *g)
{
    while (g->state != G_REFUSED && g->scanned < g->total_in) {
        size_t len = evbuffer_get_length(g->in);
        uint64_t todo = g->total_in - g->scanned;
        struct evbuffer_ptr ptr;
        struct evbuffer_iovec vec[8];
        int n;
        if (todo > len || evbuffer_ptr_set(g->in, &ptr, len - (size_t)todo, EVBUFFER_PTR_SET) != 0)
            break; /* evhttp read bytes never looked at: cannot happen */
        n = evbuffer_peek(g->in, (ev_ssize_t)todo, &ptr, vec, 8);
        if (n <= 0)
            break;
        for (int i = 0; i < n && i < 8 && g->state != G_REFUSED && todo > 0; i++) {
            size_t k = vec[i].iov_len < todo ? vec[i].iov_len : (size_t)todo;
            scan_bytes(g, vec[i].iov_base, k);
            todo -= k;
        }
    }
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    http_guard *g = arg;
    (void)buf;
    if (g->state == G_REFUSED || info->n_added == 0)
        return;
    g->total_in += info->n_added;
    scan(g);
}

http_guard *http_guard_new(struct evbuffer *in, int64_t max_header_bytes, int64_t max_body_bytes)
{
    http_guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->in = in;
    g->max_header = max_header_bytes;
    g->max_body = max_body_bytes;
    head_reset(g);
    g->cb = evbuffer_add_cb(in, on_input, g);
    if (g->cb == NULL) {
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_free(http_guard *g)
{
    if (g == NULL)
        return;
    evbuffer_remove_cb_entry(g->in, g->cb);
    free(g);
}

rd_status http_guard_next(http_guard *g, const char **message, const char **method,
                          const char **path)
{
    uint64_t index = g->dispatched++;
    if (g->state != G_REFUSED || index != g->refused_index)
        return RD_OK;
    *message = g->message;
    *method = g->method;
    *path = g->path;
    return g->refusal;
}
