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
 * Files: this one holds the public API and the request life cycle
 * (sending, deadlines, size caps, classifying failures, delivering
 * responses); httpc_conn.c the TLS contexts, connections and pool;
 * httpc_opts.c the checking of request options; httpc-internal.h what
 * they share.
 *
 * Everything here runs on the client's event_base thread only.
 */
#include "httpc-internal.h"

#include <errno.h>
#include <stdarg.h>
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
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"

#ifndef REPOD_VERSION
#define REPOD_VERSION "dev"
#endif

static void req_start(httpc_req *r, int may_reuse);

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
    httpc_work_schedule(c);
}

static void req_free(httpc_req *r)
{
    size_t i;
    httpc_addr_cancel(r);
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
            httpc_conn_release(conn);
        else
            httpc_conn_discard(conn);
        req_finish(r, HTTPC_OK, NULL);
        return;
    }
    rc = req_classify(r, conn, msg, sizeof(msg));
    httpc_conn_discard(conn);
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

    conn = may_reuse ? httpc_conn_checkout(c, r->key) : NULL;
    r->reused = conn != NULL;
    if (conn == NULL) {
        rc = httpc_conn_open(c, r, &conn, err, sizeof(err));
        if (rc != HTTPC_OK) {
            req_finish(r, rc, "%s", err);
            return;
        }
    }
    ereq = evhttp_request_new(on_done, r);
    if (ereq == NULL) {
        httpc_conn_discard(conn);
        req_finish(r, HTTPC_ERR_INTERNAL, "out of memory");
        return;
    }
    evhttp_request_set_error_cb(ereq, on_error);
    evhttp_request_set_header_cb(ereq, on_headers);
    if (req_fill(r, ereq) != 0) {
        evhttp_request_free(ereq);
        httpc_conn_discard(conn);
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
            httpc_conn_discard(conn);
            req_finish(r, HTTPC_ERR_CONNECT, "cannot start a request to %s:%d", r->connect_host,
                       r->port);
        }
        return;
    }
    set_nodelay(conn);
}

/* req_start once httpc_addr_check has pinned r to a checked address. */
static void req_start_checked(httpc_req *r, httpc_result rc, const char *why)
{
    if (rc == HTTPC_OK)
        req_start(r, 1);
    else
        req_finish(r, rc, "%s", why);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    httpc_req *r = arg;
    (void)fd;
    (void)what;
    if (r->conn != NULL)
        httpc_conn_destroy(r->conn); /* the half-done exchange cannot be reused */
    httpc_addr_cancel(r);
    req_finish(r, HTTPC_ERR_TIMEOUT, "no complete response from %s:%d within %d ms",
               r->connect_host, r->port, r->timeout_ms);
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
            httpc_conn_destroy(conn);
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
                httpc_conn_destroy(r->conn);
            httpc_addr_cancel(r);
            req_finish(r, HTTPC_ERR_INTERNAL, "cancelled");
        } else {
            break;
        }
    }
    while (!TAILQ_EMPTY(&c->conns))
        httpc_conn_destroy(TAILQ_FIRST(&c->conns));
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
    rc = httpc_req_setup(r, opts, err, sizeof(err));
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
    if (r->refuse_special)
        httpc_addr_check(r, req_start_checked);
    else
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
    return c != NULL ? httpc_idle_count(c, NULL) : 0;
}
