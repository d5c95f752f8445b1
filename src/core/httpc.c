/*
 * httpc.c - asynchronous HTTPS client (see httpc.h) on libevent's evhttp
 * client over bufferevent_openssl.
 *
 * One client holds:
 *   - running / done: every request not yet handed back to its caller.  A
 *     finished request moves to `done` and is delivered from the client's
 *     `work` event, so callbacks never run inside httpc_request() nor inside
 *     libevent's own stack frames (where freeing things is unsafe).
 *   - conns: every connection, busy, idle in the pool, or dead and waiting
 *     for the work event to free it.  One httpc_conn is one TCP/TLS session:
 *     once evhttp reports it closed it is never used again, because evhttp
 *     would "reconnect" it with the same, already used SSL object, which
 *     libevent 2.1 cannot handshake again.
 *   - tls_ctxs: the SSL_CTX cache, one per (ca_file, verify).
 *
 * Pooling: an idle connection is keyed by (scheme, connect host, port, TLS
 * name, verify, ca_file); at most HTTPC_MAX_IDLE_PER_KEY idle per key and
 * HTTPC_MAX_IDLE_TOTAL in all, each closed after HTTPC_IDLE_TIMEOUT_MS.  The
 * most recently used one is reused first.  A GET or HEAD sent on a reused
 * connection that fails before the response headers arrived is retried
 * once on a new connection (the server may have closed it meanwhile).
 *
 * Deadline: one timer per request from httpc_request() to the last body
 * byte (DNS, connect, TLS, write, headers, body).  When it fires the
 * connection is freed at once, evhttp's request with it, and the callback
 * gets HTTPC_ERR_TIMEOUT.
 *
 * Size cap: evhttp_connection_set_max_body_size() before each request.
 * evhttp then fails with EVREQ_HTTP_DATA_TOO_LONG as soon as a
 * Content-Length, a chunk-size line or the bytes read so far (read until
 * close) pass the cap, without reading the rest.  Limitation of libevent
 * 2.1: a malformed chunk-size line is reported the same way, so it comes
 * back as HTTPC_ERR_TOO_LARGE, not HTTPC_ERR_PROTOCOL.
 *
 * Everything here runs on the client's event_base thread only.
 */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"

#ifndef REPOD_VERSION
#define REPOD_VERSION "dev"
#endif

#define HTTPC_DEFAULT_TIMEOUT_MS 5000
#define HTTPC_DEFAULT_MAX_BYTES  ((size_t)16 * 1024 * 1024)
#define HTTPC_MAX_IDLE_PER_KEY   4
#define HTTPC_MAX_IDLE_TOTAL     64
#define HTTPC_IDLE_TIMEOUT_MS    30000
#define HTTPC_MAX_HEADERS_SIZE   (64 * 1024)
#define HTTPC_ERROR_LEN          256
#define HTTPC_SSL_ERROR_LEN      128

typedef struct httpc_tls_ctx {
    struct httpc_tls_ctx *next;
    char *ca_file; /* NULL = system trust store (or verify off) */
    int verify;
    SSL_CTX *ctx;
} httpc_tls_ctx;

typedef enum { CONN_BUSY, CONN_IDLE, CONN_DEAD } httpc_conn_state;

struct httpc_req;

typedef struct httpc_conn {
    TAILQ_ENTRY(httpc_conn) link; /* in c->conns */
    httpc *c;
    char *key; /* pool key */
    struct evhttp_connection *evcon;
    struct bufferevent *bev; /* owned by evcon; NULL for plain http */
    struct event *idle_timer;
    httpc_conn_state state;
    int closed;            /* evhttp reported the session closed */
    int tls_up;            /* the TLS handshake completed */
    long verify_error;     /* first certificate error seen, X509_V_OK if none */
    int destroying;        /* inside conn_destroy */
    struct httpc_req *req; /* request in flight (CONN_BUSY) */
} httpc_conn;

typedef struct httpc_req {
    TAILQ_ENTRY(httpc_req) link; /* in c->running or c->done */
    httpc *c;
    httpc_cb cb;
    void *arg;
    int done; /* on c->done */

    /* What to send (all owned). */
    enum evhttp_cmd_type type;
    const char *method; /* static name */
    int idempotent;
    int tls, verify, port, timeout_ms;
    size_t cap;
    char *host;         /* URL host without brackets: TLS name */
    char *connect_host; /* where the TCP connection goes */
    char *host_header;
    char *target; /* path?query */
    char *ca_file;
    char *key;
    char **headers; /* NULL-terminated name, value pairs */
    char *body;
    size_t body_len;

    /* Progress. */
    struct event *deadline;
    httpc_conn *conn;            /* while in flight */
    struct evhttp_request *ereq; /* in flight, owned by evhttp */
    struct evhttp_request *resp; /* the response, owned by us */
    int ev_error;                /* enum evhttp_request_error, or -1 */
    int sys_errno;
    int headers_seen, reused, retried;

    /* Outcome. */
    httpc_result result;
    int status;
    char error[HTTPC_ERROR_LEN];
} httpc_req;

TAILQ_HEAD(httpc_req_list, httpc_req);
TAILQ_HEAD(httpc_conn_list, httpc_conn);

struct httpc {
    struct event_base *base;
    struct evdns_base *dns; /* NULL: blocking getaddrinfo (evdns unavailable) */
    struct event *work;     /* reaps dead connections, delivers results */
    httpc_tls_ctx *tls_ctxs;
    struct httpc_conn_list conns;
    struct httpc_req_list running, done;
    unsigned long opened;
    int dispatching;    /* inside a caller's callback from on_work */
    int free_requested; /* httpc_free called from a callback */
    int closing;        /* inside httpc_free */
};

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

static void req_start(httpc_req *r, int may_reuse);

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

static int httpc_is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
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

/* Writes the last real error of the OpenSSL queue (or of bev's own list when
 * bev is not NULL) into buf; "" when there is none.  bufferevent_openssl
 * also files bare SSL_get_error() codes (library 0, e.g. SSL_ERROR_SYSCALL
 * for a refused or reset socket): those are not TLS errors and are skipped. */
static void httpc_ssl_error_text(struct bufferevent *bev, char *buf, size_t size)
{
    unsigned long e = 0, next;
    for (;;) {
        next = bev != NULL ? bufferevent_get_openssl_error(bev) : ERR_get_error();
        if (next == 0)
            break;
        if (ERR_GET_LIB(next) != 0)
            e = next;
    }
    buf[0] = '\0';
    if (e != 0)
        ERR_error_string_n(e, buf, size);
}

/* ---- TLS contexts ----------------------------------------------------- */

/* Certificate verification callback: keeps OpenSSL's verdict and records
 * the first error on the connection (SSL app data), because evhttp resets
 * the SSL object when it tears the connection down, before httpc can look
 * at it. */
static int tls_verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct httpc_conn *conn = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    if (!preverify_ok && conn != NULL && conn->verify_error == X509_V_OK)
        conn->verify_error = X509_STORE_CTX_get_error(store);
    return preverify_ok;
}

/* TLS info callback: notes a completed handshake on the connection. */
static void tls_info_cb(const SSL *ssl, int where, int ret)
{
    struct httpc_conn *conn = SSL_get_app_data(ssl);
    (void)ret;
    if ((where & SSL_CB_HANDSHAKE_DONE) && conn != NULL)
        conn->tls_up = 1;
}

/* The cached SSL_CTX for (ca_file, verify), created on first use.  Returns
 * NULL with a reason in err when it cannot be made (a failed context is not
 * cached, so a fixed CA file is picked up by the next request). */
static SSL_CTX *tls_ctx_get(httpc *c, const char *ca_file, int verify, char *err, size_t size)
{
    httpc_tls_ctx *t;
    SSL_CTX *ctx = NULL;
    char why[HTTPC_SSL_ERROR_LEN];
    for (t = c->tls_ctxs; t != NULL; t = t->next) {
        if (t->verify == verify &&
            ((t->ca_file == NULL && ca_file == NULL) ||
             (t->ca_file != NULL && ca_file != NULL && strcmp(t->ca_file, ca_file) == 0)))
            return t->ctx;
    }
    ERR_clear_error();
    t = calloc(1, sizeof(*t));
    ctx = SSL_CTX_new(TLS_client_method());
    if (t == NULL || ctx == NULL || (ca_file != NULL && (t->ca_file = strdup(ca_file)) == NULL)) {
        snprintf(err, size, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* IGNORE_UNEXPECTED_EOF: OpenSSL 3 otherwise turns a peer's close
     * without close_notify into a hard error, which libevent 2.1 cannot
     * tell from a real failure (it breaks read-until-close bodies and the
     * detection of idle connections closed by the server). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
                                 | SSL_OP_IGNORE_UNEXPECTED_EOF
#endif
    );
    if (verify) {
        int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            httpc_ssl_error_text(NULL, why, sizeof(why));
            snprintf(err, size, "cannot load CA %s: %s", ca_file != NULL ? ca_file : "store", why);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    SSL_CTX_set_info_callback(ctx, tls_info_cb);
    t->verify = verify;
    t->ctx = ctx;
    t->next = c->tls_ctxs;
    c->tls_ctxs = t;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    if (t != NULL)
        free(t->ca_file);
    free(t);
    return NULL;
}

/* ---- connections ------------------------------------------------------ */

static void on_work(evutil_socket_t fd, short what, void *arg);

static void work_schedule(httpc *c)
{
    event_active(c->work, 0, 1);
}

/* Frees conn now: its evhttp connection, bufferevent, SSL and any evhttp
 * request still queued on it (without evhttp calling back).  A request
 * still attached is detached (its outcome is the caller's business).
 * Only call from httpc's own event callbacks or httpc_free, never from
 * inside an evhttp callback. */
static void conn_destroy(httpc_conn *conn)
{
    httpc *c = conn->c;
    TAILQ_REMOVE(&c->conns, conn, link);
    conn->destroying = 1;
    if (conn->req != NULL) {
        conn->req->conn = NULL;
        conn->req->ereq = NULL; /* freed by evhttp_connection_free */
        conn->req = NULL;
    }
    if (conn->evcon != NULL)
        evhttp_connection_free(conn->evcon);
    if (conn->idle_timer != NULL)
        event_free(conn->idle_timer);
    free(conn->key);
    free(conn);
}

/* Marks a connection with no request in flight for freeing by the work
 * event (safe from inside evhttp callbacks). */
static void conn_discard(httpc_conn *conn)
{
    if (conn->state == CONN_DEAD)
        return;
    if (conn->state == CONN_IDLE)
        evtimer_del(conn->idle_timer);
    conn->state = CONN_DEAD;
    work_schedule(conn->c);
}

/* evhttp's close callback: the TCP/TLS session is gone (server closed it,
 * an error, or we are freeing it). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    httpc_conn *conn = arg;
    (void)evcon;
    conn->closed = 1;
    if (!conn->destroying && conn->state == CONN_IDLE)
        conn_discard(conn);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    httpc_conn *conn = arg;
    (void)fd;
    (void)what;
    LOG_DEBUG("httpc: closing idle connection (%s)", conn->key);
    conn_destroy(conn);
}

static size_t idle_count(const httpc *c, const char *key)
{
    const httpc_conn *conn;
    size_t n = 0;
    TAILQ_FOREACH(conn, &c->conns, link)
    {
        if (conn->state == CONN_IDLE && (key == NULL || strcmp(conn->key, key) == 0))
            n++;
    }
    return n;
}

/* Puts a connection whose request completed back into the pool, or
 * discards it when it is closed or the pool is full. */
static void conn_release(httpc_conn *conn)
{
    httpc *c = conn->c;
    struct timeval tv = {HTTPC_IDLE_TIMEOUT_MS / 1000, (HTTPC_IDLE_TIMEOUT_MS % 1000) * 1000};
    if (conn->closed || c->closing || c->free_requested ||
        idle_count(c, conn->key) >= HTTPC_MAX_IDLE_PER_KEY ||
        idle_count(c, NULL) >= HTTPC_MAX_IDLE_TOTAL) {
        conn_discard(conn);
        return;
    }
    conn->state = CONN_IDLE;
    /* Most recently used first: keeps the fewest connections warm. */
    TAILQ_REMOVE(&c->conns, conn, link);
    TAILQ_INSERT_HEAD(&c->conns, conn, link);
    evtimer_add(conn->idle_timer, &tv);
}

/* An idle, still open connection for key (now busy), or NULL. */
static httpc_conn *conn_checkout(httpc *c, const char *key)
{
    httpc_conn *conn;
    TAILQ_FOREACH(conn, &c->conns, link)
    {
        if (conn->state == CONN_IDLE && !conn->closed && strcmp(conn->key, key) == 0) {
            evtimer_del(conn->idle_timer);
            conn->state = CONN_BUSY;
            return conn;
        }
    }
    return NULL;
}

/* Opens a new connection for r (the connect itself starts with the first
 * request).  Returns HTTPC_OK and *out, or an error with text in err. */
static httpc_result conn_open(httpc *c, httpc_req *r, httpc_conn **out, char *err, size_t size)
{
    httpc_conn *conn = NULL;
    SSL_CTX *ctx;
    SSL *ssl = NULL;
    struct bufferevent *bev = NULL;
    httpc_result rc = HTTPC_ERR_INTERNAL;

    *out = NULL;
    conn = calloc(1, sizeof(*conn));
    if (conn == NULL || (conn->key = strdup(r->key)) == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }
    conn->c = c;
    conn->state = CONN_BUSY;
    conn->verify_error = X509_V_OK;
    conn->idle_timer = evtimer_new(c->base, on_idle_timeout, conn);
    if (conn->idle_timer == NULL) {
        snprintf(err, size, "out of memory");
        goto done;
    }
    if (r->tls) {
        ctx = tls_ctx_get(c, r->ca_file, r->verify, err, size);
        if (ctx == NULL) {
            rc = HTTPC_ERR_TLS;
            goto done;
        }
        ssl = SSL_new(ctx);
        if (ssl == NULL) {
            snprintf(err, size, "cannot create a TLS session");
            goto done;
        }
        SSL_set_app_data(ssl, conn); /* conn outlives ssl: freed in conn_destroy */
        /* SNI is for DNS names only (RFC 6066); IP literals are checked
         * against the certificate's IP SANs instead of a host name. */
        if (!httpc_is_ip_literal(r->host) && SSL_set_tlsext_host_name(ssl, r->host) != 1) {
            SSL_free(ssl);
            snprintf(err, size, "cannot set TLS server name %s", r->host);
            goto done;
        }
        if (r->verify) {
            int ok;
            if (httpc_is_ip_literal(r->host)) {
                ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), r->host);
            } else {
                SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                ok = SSL_set1_host(ssl, r->host);
            }
            if (ok != 1) {
                SSL_free(ssl);
                snprintf(err, size, "cannot set the TLS name to verify (%s)", r->host);
                goto done;
            }
        }
        /* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl from here
         * on, even when it fails. */
        bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        ssl = NULL;
        if (bev == NULL) {
            snprintf(err, size, "cannot create a TLS bufferevent");
            goto done;
        }
        /* A TCP close without close_notify is reported as EOF (evhttp needs
         * EOF to end read-until-close bodies and to notice idle closes). */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    conn->evcon = evhttp_connection_base_bufferevent_new(c->base, c->dns, bev, r->connect_host,
                                                         (unsigned short)r->port);
    if (conn->evcon == NULL) {
        if (bev != NULL)
            bufferevent_free(bev);
        snprintf(err, size, "cannot create an HTTP connection");
        goto done;
    }
    conn->bev = r->tls ? evhttp_connection_get_bufferevent(conn->evcon) : NULL;
    evhttp_connection_set_closecb(conn->evcon, on_close, conn);
    evhttp_connection_set_max_headers_size(conn->evcon, HTTPC_MAX_HEADERS_SIZE);
    evhttp_connection_set_retries(conn->evcon, 0);
    TAILQ_INSERT_HEAD(&c->conns, conn, link);
    c->opened++;
    LOG_DEBUG("httpc: new connection to %s:%d (%s)", r->connect_host, r->port, r->key);
    *out = conn;
    conn = NULL;
    rc = HTTPC_OK;
done:
    if (conn != NULL) {
        if (conn->idle_timer != NULL)
            event_free(conn->idle_timer);
        free(conn->key);
        free(conn);
    }
    return rc;
}

/* ---- requests --------------------------------------------------------- */

/* Records r's outcome and queues it for delivery by the work event.  r must
 * no longer be attached to a connection.  No-op when r is already done. */
static void req_finish(httpc_req *r, httpc_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void req_finish(httpc_req *r, httpc_result result, const char *fmt, ...)
{
    httpc *c = r->c;
    va_list ap;
    if (r->done)
        return;
    r->result = result;
    r->error[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(r->error, sizeof(r->error), fmt, ap);
        va_end(ap);
    }
    if (r->deadline != NULL)
        evtimer_del(r->deadline);
    TAILQ_REMOVE(&c->running, r, link);
    TAILQ_INSERT_TAIL(&c->done, r, link);
    r->done = 1;
    if (result != HTTPC_OK)
        LOG_DEBUG("httpc: %s %s:%d%s failed: %s", r->method != NULL ? r->method : "?",
                  r->host != NULL ? r->host : "?", r->port, r->target != NULL ? r->target : "",
                  r->error);
    work_schedule(c);
}

static void req_free(httpc_req *r)
{
    size_t i;
    if (r->deadline != NULL)
        event_free(r->deadline);
    if (r->resp != NULL)
        evhttp_request_free(r->resp);
    if (r->headers != NULL) {
        for (i = 0; r->headers[i] != NULL; i++)
            free(r->headers[i]);
        free(r->headers);
    }
    free(r->host);
    free(r->connect_host);
    free(r->host_header);
    free(r->target);
    free(r->ca_file);
    free(r->key);
    free(r->body);
    free(r);
}

static const char *resp_header(const void *resp_ctx, const char *name)
{
    struct evhttp_request *ereq = (struct evhttp_request *)resp_ctx;
    if (ereq == NULL || name == NULL)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(ereq), name);
}

/* Calls r's callback with its outcome, then frees r (already off the lists). */
static void req_deliver(httpc_req *r)
{
    httpc_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.result = r->result;
    resp.status = r->result == HTTPC_OK ? r->status : 0;
    resp.error = r->error;
    resp.body = "";
    resp.header = resp_header;
    resp.resp_ctx = NULL;
    if (r->result == HTTPC_OK && r->resp != NULL) {
        struct evbuffer *in = evhttp_request_get_input_buffer(r->resp);
        const char *p = NULL;
        if (evbuffer_add(in, "", 1) == 0)
            p = (const char *)evbuffer_pullup(in, -1);
        if (p == NULL) {
            resp.result = HTTPC_ERR_INTERNAL;
            resp.status = 0;
            resp.error = "out of memory";
        } else {
            resp.body = p;
            resp.body_len = evbuffer_get_length(in) - 1;
            resp.resp_ctx = r->resp;
        }
    }
    r->cb(&resp, r->arg);
    req_free(r);
}

/* Turns a failed exchange into a result and a message.  TLS facts come from
 * the callbacks above (the SSL object itself has been reset by then). */
static httpc_result req_classify(const httpc_req *r, httpc_conn *conn, char *msg, size_t size)
{
    SSL *ssl = conn->bev != NULL ? bufferevent_openssl_get_ssl(conn->bev) : NULL;
    char why[HTTPC_SSL_ERROR_LEN];
    long verify;
    int dns_err;

    switch (r->ev_error) {
    case EVREQ_HTTP_TIMEOUT:
        snprintf(msg, size, "I/O timeout");
        return HTTPC_ERR_TIMEOUT;
    case EVREQ_HTTP_DATA_TOO_LONG:
        if (!r->headers_seen)
            snprintf(msg, size, "response headers over %d bytes", HTTPC_MAX_HEADERS_SIZE);
        else
            snprintf(msg, size, "response body over %zu bytes", r->cap);
        return HTTPC_ERR_TOO_LARGE;
    case EVREQ_HTTP_INVALID_HEADER:
        snprintf(msg, size, "malformed HTTP response");
        return HTTPC_ERR_PROTOCOL;
    default:
        break;
    }
    if (conn->bev != NULL) {
        verify = conn->verify_error;
        if (verify == X509_V_OK && ssl != NULL)
            verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            snprintf(msg, size, "TLS certificate verification failed for %s: %s", r->host,
                     X509_verify_cert_error_string(verify));
            return HTTPC_ERR_TLS;
        }
        httpc_ssl_error_text(conn->bev, why, sizeof(why));
        if (why[0] != '\0') {
            snprintf(msg, size, "TLS error with %s: %s", r->host, why);
            return HTTPC_ERR_TLS;
        }
    }
    dns_err = bufferevent_socket_get_dns_error(evhttp_connection_get_bufferevent(conn->evcon));
    if (dns_err != 0) {
        snprintf(msg, size, "cannot resolve %s: %s", r->connect_host, evutil_gai_strerror(dns_err));
        return HTTPC_ERR_CONNECT;
    }
    if (r->headers_seen || r->reused || conn->tls_up) {
        snprintf(msg, size, "connection to %s:%d closed before the response was complete",
                 r->connect_host, r->port);
        return HTTPC_ERR_CONNECT;
    }
    if (r->ev_error < 0) {
        /* evhttp's connect-failure path: it is taken when connect() says
         * ECONNREFUSED (errno is clobbered by its cleanup). */
        snprintf(msg, size, "cannot connect to %s:%d: connection refused", r->connect_host,
                 r->port);
    } else if (r->sys_errno != 0) {
        snprintf(msg, size, "cannot connect to %s:%d: %s", r->connect_host, r->port,
                 strerror(r->sys_errno));
    } else {
        snprintf(msg, size, "cannot connect to %s:%d", r->connect_host, r->port);
    }
    return HTTPC_ERR_CONNECT;
}

/* 1 when the response's framing leaves the connection usable: a
 * read-until-close body ends with the session. */
static int resp_keeps_connection(const httpc_req *r, struct evhttp_request *ereq)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(ereq);
    const char *te = evhttp_find_header(h, "Transfer-Encoding");
    int code = evhttp_request_get_response_code(ereq);
    if (r->type == EVHTTP_REQ_HEAD || code == 204 || code == 304 || (code >= 100 && code < 200))
        return 1;
    return evhttp_find_header(h, "Content-Length") != NULL ||
           (te != NULL && strcasecmp(te, "chunked") == 0);
}

/* evhttp's header callback: the status line and headers are in. */
static int on_headers(struct evhttp_request *ereq, void *arg)
{
    httpc_req *r = arg;
    (void)ereq;
    if (r->conn != NULL)
        r->headers_seen = 1;
    return 0;
}

/* evhttp's error callback; always followed by on_done(NULL).  evhttp
 * restores errno for it, so the socket error is still there. */
static void on_error(enum evhttp_request_error error, void *arg)
{
    httpc_req *r = arg;
    if (r->conn == NULL)
        return;
    r->ev_error = (int)error;
    r->sys_errno = errno;
}

/* evhttp's request callback: a response (ereq with a status) or a failure
 * (ereq NULL, or status 0 when the connect failed). */
static void on_done(struct evhttp_request *ereq, void *arg)
{
    httpc_req *r = arg;
    httpc_conn *conn = r->conn;
    httpc_result rc;
    char msg[HTTPC_ERROR_LEN];

    if (conn == NULL) /* abandoned: its connection is being destroyed */
        return;
    r->ereq = NULL;
    r->conn = NULL;
    conn->req = NULL;
    if (ereq != NULL && r->ev_error < 0 && evhttp_request_get_response_code(ereq) != 0) {
        evhttp_request_own(ereq); /* freed in req_free, after the callback */
        r->resp = ereq;
        r->status = evhttp_request_get_response_code(ereq);
        if (resp_keeps_connection(r, ereq))
            conn_release(conn);
        else
            conn_discard(conn);
        req_finish(r, HTTPC_OK, NULL);
        return;
    }
    rc = req_classify(r, conn, msg, sizeof(msg));
    conn_discard(conn);
    if (rc == HTTPC_ERR_CONNECT && r->reused && !r->headers_seen && !r->retried && r->idempotent &&
        !r->c->closing) {
        LOG_DEBUG("httpc: reused connection failed (%s), retrying once", msg);
        r->retried = 1;
        req_start(r, 0);
        return;
    }
    req_finish(r, rc, "%s", msg);
}

/* Fills the evhttp request: headers and body.  0, or -1 on failure. */
static int req_fill(const httpc_req *r, struct evhttp_request *ereq)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(ereq);
    char len[32];
    size_t i;
    if (evhttp_add_header(h, "Host", r->host_header) != 0)
        return -1;
    for (i = 0; r->headers != NULL && r->headers[i] != NULL; i += 2) {
        if (evhttp_add_header(h, r->headers[i], r->headers[i + 1]) != 0)
            return -1;
    }
    if (evhttp_find_header(h, "User-Agent") == NULL &&
        evhttp_add_header(h, "User-Agent", "repod/" REPOD_VERSION) != 0)
        return -1;
    if (evhttp_find_header(h, "Accept") == NULL &&
        evhttp_add_header(h, "Accept", "application/json") != 0)
        return -1;
    if (r->body != NULL && evhttp_find_header(h, "Content-Type") == NULL &&
        evhttp_add_header(h, "Content-Type", "application/json") != 0)
        return -1;
    if (r->body != NULL || r->type == EVHTTP_REQ_POST || r->type == EVHTTP_REQ_PUT ||
        r->type == EVHTTP_REQ_PATCH) {
        snprintf(len, sizeof(len), "%zu", r->body_len);
        if (evhttp_add_header(h, "Content-Length", len) != 0)
            return -1;
    }
    if (evhttp_add_header(h, "Connection", "keep-alive") != 0)
        return -1;
    if (r->body_len > 0 &&
        evbuffer_add(evhttp_request_get_output_buffer(ereq), r->body, r->body_len) != 0)
        return -1;
    return 0;
}

/* Requests are small and answered at once: without TCP_NODELAY, a request
 * written as several TLS records waits for the peer's delayed ACK (~40 ms).
 * The socket exists once evhttp starts connecting (for names, after the
 * lookup: then the next request on the connection sets it). */
static void set_nodelay(httpc_conn *conn)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn->evcon);
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Sends r on a pooled connection (when may_reuse) or a new one.  Failures
 * finish r (delivered later).  evhttp never calls back synchronously from
 * here in practice, but on_done tolerates it. */
static void req_start(httpc_req *r, int may_reuse)
{
    httpc *c = r->c;
    httpc_conn *conn = NULL;
    struct evhttp_request *ereq = NULL;
    httpc_result rc;
    char err[HTTPC_ERROR_LEN];

    conn = may_reuse ? conn_checkout(c, r->key) : NULL;
    r->reused = conn != NULL;
    if (conn == NULL) {
        rc = conn_open(c, r, &conn, err, sizeof(err));
        if (rc != HTTPC_OK) {
            req_finish(r, rc, "%s", err);
            return;
        }
    }
    ereq = evhttp_request_new(on_done, r);
    if (ereq == NULL) {
        conn_discard(conn);
        req_finish(r, HTTPC_ERR_INTERNAL, "out of memory");
        return;
    }
    evhttp_request_set_error_cb(ereq, on_error);
    evhttp_request_set_header_cb(ereq, on_headers);
    if (req_fill(r, ereq) != 0) {
        evhttp_request_free(ereq);
        conn_discard(conn);
        req_finish(r, HTTPC_ERR_INTERNAL, "cannot build the request");
        return;
    }
    evhttp_connection_set_max_body_size(
        conn->evcon, r->cap > (size_t)EV_SSIZE_MAX ? EV_SSIZE_MAX : (ev_ssize_t)r->cap);
    r->ev_error = -1;
    r->sys_errno = 0;
    r->headers_seen = 0;
    r->conn = conn;
    r->ereq = ereq;
    conn->req = r;
    if (evhttp_make_request(conn->evcon, ereq, r->type, r->target) != 0) {
        /* evhttp freed ereq, or dropped it from its queue. */
        if (r->conn == conn) {
            r->conn = NULL;
            r->ereq = NULL;
            conn->req = NULL;
            conn_discard(conn);
            req_finish(r, HTTPC_ERR_CONNECT, "cannot start a request to %s:%d", r->connect_host,
                       r->port);
        }
        return;
    }
    set_nodelay(conn);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    httpc_req *r = arg;
    (void)fd;
    (void)what;
    if (r->conn != NULL)
        conn_destroy(r->conn); /* the half-done exchange cannot be reused */
    req_finish(r, HTTPC_ERR_TIMEOUT, "no complete response from %s:%d within %d ms",
               r->connect_host, r->port, r->timeout_ms);
}

/* Copies opts into r.  HTTPC_OK, or an error with text in err. */
static httpc_result req_setup(httpc_req *r, const httpc_request_opts *opts, char *err, size_t size)
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

/* ---- the work event --------------------------------------------------- */

/* Frees dead connections, then hands finished requests to their callers. */
static void on_work(evutil_socket_t fd, short what, void *arg)
{
    httpc *c = arg;
    httpc_conn *conn, *next;
    httpc_req *r;
    (void)fd;
    (void)what;
    for (conn = TAILQ_FIRST(&c->conns); conn != NULL; conn = next) {
        next = TAILQ_NEXT(conn, link);
        if (conn->state == CONN_DEAD)
            conn_destroy(conn);
    }
    c->dispatching = 1;
    while (!c->free_requested && (r = TAILQ_FIRST(&c->done)) != NULL) {
        TAILQ_REMOVE(&c->done, r, link);
        req_deliver(r);
    }
    c->dispatching = 0;
    if (c->free_requested)
        httpc_free(c);
}

/* ---- public API ------------------------------------------------------- */

void httpc_request_init(httpc_request_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->method = "GET";
    opts->timeout_ms = HTTPC_DEFAULT_TIMEOUT_MS;
    opts->max_response_bytes = HTTPC_DEFAULT_MAX_BYTES;
    opts->verify = 1;
}

httpc *httpc_new(struct event_base *base)
{
    httpc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base = base;
    TAILQ_INIT(&c->conns);
    TAILQ_INIT(&c->running);
    TAILQ_INIT(&c->done);
    c->work = event_new(base, -1, 0, on_work, c);
    if (c->work == NULL) {
        free(c);
        return NULL;
    }
    /* Asynchronous DNS (reads resolv.conf and /etc/hosts); its sockets are
     * only watched while a lookup runs, so an idle client never keeps the
     * loop alive. */
    c->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (c->dns == NULL)
        LOG_WARN("httpc: asynchronous DNS unavailable, host names resolve blocking");
    return c;
}

void httpc_free(httpc *c)
{
    httpc_req *r;
    httpc_tls_ctx *t;
    if (c == NULL)
        return;
    if (c->dispatching || c->closing) {
        c->free_requested = 1; /* finished by on_work / the outer httpc_free */
        return;
    }
    c->closing = 1;
    for (;;) {
        if ((r = TAILQ_FIRST(&c->done)) != NULL) {
            TAILQ_REMOVE(&c->done, r, link);
            req_deliver(r); /* may queue more requests: they are cancelled too */
        } else if ((r = TAILQ_FIRST(&c->running)) != NULL) {
            if (r->conn != NULL)
                conn_destroy(r->conn);
            req_finish(r, HTTPC_ERR_INTERNAL, "cancelled");
        } else {
            break;
        }
    }
    while (!TAILQ_EMPTY(&c->conns))
        conn_destroy(TAILQ_FIRST(&c->conns));
    while ((t = c->tls_ctxs) != NULL) {
        c->tls_ctxs = t->next;
        SSL_CTX_free(t->ctx);
        free(t->ca_file);
        free(t);
    }
    if (c->dns != NULL)
        evdns_base_free(c->dns, 1);
    event_free(c->work);
    free(c);
}

int httpc_request(httpc *c, const httpc_request_opts *opts, httpc_cb cb, void *arg)
{
    httpc_req *r;
    httpc_result rc;
    char err[HTTPC_ERROR_LEN];
    struct timeval tv;

    if (c == NULL || cb == NULL)
        return -1;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        LOG_ERROR("httpc: out of memory");
        return -1;
    }
    r->c = c;
    r->cb = cb;
    r->arg = arg;
    r->ev_error = -1;
    TAILQ_INSERT_TAIL(&c->running, r, link);
    if (c->closing || c->free_requested) {
        req_finish(r, HTTPC_ERR_INTERNAL, "cancelled");
        return -1;
    }
    if (opts == NULL) {
        req_finish(r, HTTPC_ERR_INTERNAL, "no request options");
        return -1;
    }
    rc = req_setup(r, opts, err, sizeof(err));
    if (rc != HTTPC_OK) {
        req_finish(r, rc, "%s", err);
        return -1;
    }
    r->deadline = evtimer_new(c->base, on_deadline, r);
    if (r->deadline == NULL) {
        req_finish(r, HTTPC_ERR_INTERNAL, "out of memory");
        return -1;
    }
    tv.tv_sec = r->timeout_ms / 1000;
    tv.tv_usec = (r->timeout_ms % 1000) * 1000;
    evtimer_add(r->deadline, &tv);
    req_start(r, 1);
    return r->done && r->result != HTTPC_OK ? -1 : 0;
}

const char *httpc_response_header(const httpc_response *resp, const char *name)
{
    if (resp == NULL || resp->header == NULL)
        return NULL;
    return resp->header(resp->resp_ctx, name);
}

unsigned long httpc_connections_opened(const httpc *c)
{
    return c != NULL ? c->opened : 0;
}

size_t httpc_idle_connections(const httpc *c)
{
    return c != NULL ? idle_count(c, NULL) : 0;
}
