/*
 * httpc_conn.c - the connections of the HTTPS client (see httpc.c for the
 * model): the SSL_CTX cache with certificate and host name verification,
 * opening a connection, the idle pool (per-key and total limits, idle
 * timeout, most recently used first) and freeing dead connections.
 *
 * Everything here runs on the client's event_base thread only.
 */
#include "httpc-internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"

/* ---- small helpers ---------------------------------------------------- */

static int httpc_is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Writes the last real error of the OpenSSL queue (or of bev's own list when
 * bev is not NULL) into buf; "" when there is none.  bufferevent_openssl
 * also files bare SSL_get_error() codes (library 0, e.g. SSL_ERROR_SYSCALL
 * for a refused or reset socket): those are not TLS errors and are skipped. */
void httpc_ssl_error_text(struct bufferevent *bev, char *buf, size_t size)
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

void httpc_work_schedule(httpc *c)
{
    event_active(c->work, 0, 1);
}

/* Frees conn now: its evhttp connection, bufferevent, SSL and any evhttp
 * request still queued on it (without evhttp calling back).  A request
 * still attached is detached (its outcome is the caller's business).
 * Only call from httpc's own event callbacks or httpc_free, never from
 * inside an evhttp callback. */
void httpc_conn_destroy(httpc_conn *conn)
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
void httpc_conn_discard(httpc_conn *conn)
{
    if (conn->state == CONN_DEAD)
        return;
    if (conn->state == CONN_IDLE)
        evtimer_del(conn->idle_timer);
    conn->state = CONN_DEAD;
    httpc_work_schedule(conn->c);
}

/* evhttp's close callback: the TCP/TLS session is gone (server closed it,
 * an error, or we are freeing it). */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    httpc_conn *conn = arg;
    (void)evcon;
    conn->closed = 1;
    if (!conn->destroying && conn->state == CONN_IDLE)
        httpc_conn_discard(conn);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    httpc_conn *conn = arg;
    (void)fd;
    (void)what;
    LOG_DEBUG("httpc: closing idle connection (%s)", conn->key);
    httpc_conn_destroy(conn);
}

size_t httpc_idle_count(const httpc *c, const char *key)
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
void httpc_conn_release(httpc_conn *conn)
{
    httpc *c = conn->c;
    struct timeval tv = {HTTPC_IDLE_TIMEOUT_MS / 1000, (HTTPC_IDLE_TIMEOUT_MS % 1000) * 1000};
    if (conn->closed || c->closing || c->free_requested ||
        httpc_idle_count(c, conn->key) >= HTTPC_MAX_IDLE_PER_KEY ||
        httpc_idle_count(c, NULL) >= HTTPC_MAX_IDLE_TOTAL) {
        httpc_conn_discard(conn);
        return;
    }
    conn->state = CONN_IDLE;
    /* Most recently used first: keeps the fewest connections warm. */
    TAILQ_REMOVE(&c->conns, conn, link);
    TAILQ_INSERT_HEAD(&c->conns, conn, link);
    evtimer_add(conn->idle_timer, &tv);
}

/* An idle, still open connection for key (now busy), or NULL. */
httpc_conn *httpc_conn_checkout(httpc *c, const char *key)
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
httpc_result httpc_conn_open(httpc *c, httpc_req *r, httpc_conn **out, char *err, size_t size)
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
        SSL_set_app_data(ssl, conn); /* conn outlives ssl: freed in httpc_conn_destroy */
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
