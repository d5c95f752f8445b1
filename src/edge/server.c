/*
 * server.c - the HTTPS edge.
 *
 * Each worker thread owns an event_base and an evhttp accepting on its own
 * dup() of the one listening socket of the process, so no lock is taken on
 * the request path.  The socket is bound without SO_REUSEPORT: another
 * process (another repod or anything else) that already listens on the
 * address makes start-up fail with "address in use", and nobody can bind it
 * while this server runs.
 *
 * Plaintext is never served: the bufferevent callback always returns an
 * OpenSSL bufferevent, and in the one case where no TLS object can be made it
 * returns a plain one that on_request() recognises and drops unanswered.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "console.h"
#include "http_guard.h"
#include "linger.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "util.h"

/* Per-connection bookkeeping attached to the SSL object; freed with it, which
 * is how closed connections are counted. */
typedef struct {
    app *app;
    int over_limit;
    int reject;        /* no TLS object of its own could be made: dropped unanswered */
    http_guard *guard; /* checks each request head as it arrives (owned) */
} conn_info;

typedef struct worker worker;

struct server {
    app *app;
    tls_server *tls;
    int port;
    int metrics_port;           /* 0 when metrics_listen is not set */
    evutil_socket_t metrics_fd; /* until worker 0 takes it over; else -1 */
    int nworkers;
    worker *workers;
    atomic_int draining; /* SIGTERM came: /readyz 503, every answer closes its connection */
};

struct worker {
    server *srv;
    int index;
    evutil_socket_t fd;
    pthread_t thread;
    int started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct evhttp *ops_http; /* plain-HTTP metrics_listen (worker 0 only) */
    struct evhttp_bound_socket *ops_bound;
    struct event *stop_ev;
    atomic_int inflight; /* requests received and not yet answered */
    SSL *spare_ssl;      /* a TLS object kept for when none can be made */
    linger_set *linger;  /* refused connections closing (see linger.h) */
    conn_info *spare_ci;
};

static int conn_ex_index = -1;
static pthread_once_t conn_ex_once = PTHREAD_ONCE_INIT;

static void conn_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    conn_info *ci = ptr;
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ci != NULL) {
        atomic_fetch_sub(&ci->app->connections_open, 1);
        http_guard_free(ci->guard);
        free(ci);
    }
}

static void conn_ex_init(void)
{
    conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_info_free);
}

/* ---- replies ---------------------------------------------------------- */

typedef struct {
    worker *w;
    struct evhttp_request *req; /* NULL once the client went away */
    struct evhttp_connection *evcon;
    int64_t start_us;
    int linger;                /* refused before its body was read: close with linger.h */
    int route;                 /* metrics label (metrics.h EDGE_ROUTE_*) */
    const char *cache_control; /* NULL: no-store */
    char method[8];
    char path[256];
    char domain[AUTH_NAME_MAX];
} edge_req;

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

static void count_status(app *a, int status)
{
    int cls = status / 100;
    atomic_fetch_add(&a->requests_total, 1);
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add(&a->requests_by_class[cls], 1);
}

/* evhttp closes a refused connection (its answer is written): the client
 * may still be sending the body it declared, so the socket lingers. */
static void on_refused_close(struct evhttp_connection *evcon, void *arg)
{
    worker *w = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
    int64_t max_s = w->srv->app->conf->request_timeout_s;
    if (fd >= 0)
        linger_start(w->linger, fd, (int)(max_s < 30 ? max_s : 30));
}

/* Sends a raw body (body, then tail when tlen > 0) with status and logs the
 * access line; frees er. */
static void send_parts(edge_req *er, int status, const char *content_type, const char *body,
                       size_t len, const char *tail, size_t tlen, const char *const *headers)
{
    struct evkeyvalq *out;
    struct evbuffer *buf;
    int64_t took_us;

    if (er->req == NULL) {
        /* The connection closed while the answer was being prepared. */
        LOG_INFO("access %s %s - (client gone) %lldus domain=%s", er->method, er->path,
                 (long long)(util_monotonic_us() - er->start_us), er->domain[0] ? er->domain : "-");
        atomic_fetch_sub(&er->w->inflight, 1);
        free(er);
        return;
    }
    if (er->evcon != NULL)
        evhttp_connection_set_closecb(er->evcon, er->linger ? on_refused_close : NULL, er->w);
    out = evhttp_request_get_output_headers(er->req);
    buf = evbuffer_new();
    evhttp_add_header(out, "Content-Type", content_type);
    for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
        evhttp_add_header(out, headers[i], headers[i + 1]);
    if (evhttp_find_header(out, "Cache-Control") == NULL)
        evhttp_add_header(out, "Cache-Control",
                          er->cache_control != NULL ? er->cache_control : "no-store");
    if (atomic_load(&er->w->srv->draining) && evhttp_find_header(out, "Connection") == NULL)
        evhttp_add_header(out, "Connection", "close"); /* the client reconnects elsewhere */
    if (buf != NULL) {
        evbuffer_add(buf, body, len);
        if (tlen > 0)
            evbuffer_add(buf, tail, tlen);
    }
    len += tlen;
    evhttp_send_reply(er->req, status, rd_http_reason(status), buf);
    if (buf != NULL)
        evbuffer_free(buf);
    count_status(er->w->srv->app, status);
    took_us = util_monotonic_us() - er->start_us;
    edge_metrics_observe(er->route, status, took_us);
    LOG_INFO("access %s %s %d %zu %lldus domain=%s", er->method, er->path, status, len,
             (long long)took_us, er->domain[0] ? er->domain : "-");
    atomic_fetch_sub(&er->w->inflight, 1);
    free(er);
}

static void send_raw(edge_req *er, int status, const char *content_type, const char *body,
                     size_t len, const char *const *headers)
{
    send_parts(er, status, content_type, body, len, NULL, 0, headers);
}

/* api_edge.reply: serialises body (stolen). */
static void edge_reply(void *ctx, int status, json_t *body, const char *const *headers)
{
    edge_req *er = ctx;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        static const char fallback[] =
            "{\"detail\":{\"code\":\"ERROR_INTERNAL\",\"message\":\"Internal error.\"}}";
        send_raw(er, 500, "application/json", fallback, sizeof(fallback) - 1, NULL);
        return;
    }
    send_raw(er, status, "application/json", text, strlen(text), headers);
    free(text);
}

/* api_edge.reply_bytes: a body already serialised (borrowed). */
static void edge_reply_bytes(void *ctx, int status, const char *body, size_t len, const char *tail,
                             size_t tlen, const char *const *headers)
{
    send_parts(ctx, status, "application/json", body, len, tail, tlen, headers);
}

static void reply_error(edge_req *er, rd_status code, const char *message,
                        const char *const *headers)
{
    edge_reply(er, rd_status_http(code), api_error_body(code, message), headers);
}

/* ---- operational endpoints -------------------------------------------- */

static void serve_metrics(edge_req *er)
{
    struct evbuffer *text = evbuffer_new();
    if (text == NULL || edge_metrics_render(er->w->srv->app, text) != 0) {
        if (text != NULL)
            evbuffer_free(text);
        reply_error(er, RD_ERR_INTERNAL, "Internal error.", NULL);
        return;
    }
    send_raw(er, 200, "text/plain; version=0.0.4", (const char *)evbuffer_pullup(text, -1),
             evbuffer_get_length(text), NULL);
    evbuffer_free(text);
}

/* GET /openapi.json: the embedded document (the asset table of console.h);
 * 304 when the client holds this edition (If-None-Match). */
static void serve_openapi(edge_req *er, struct evhttp_request *req)
{
    const console_asset *doc = console_find("/openapi.json");
    const char *match = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    const char *etag[] = {"ETag", doc != NULL ? doc->etag : "", NULL};
    er->cache_control = "public, max-age=300";
    if (doc == NULL)
        reply_error(er, RD_ERR_INTERNAL, "Internal error.", NULL);
    else if (match != NULL && console_etag_matches(match, doc->etag))
        send_raw(er, 304, doc->content_type, "", 0, etag);
    else
        send_raw(er, 200, doc->content_type, (const char *)doc->data, doc->len, etag);
}

/* Answers /healthz, /readyz, /metrics and /openapi.json; returns 0 if path
 * is not one. */
static int serve_operational(edge_req *er, struct evhttp_request *req, const char *path)
{
    static const char *const allow_get[] = {"Allow", "GET", NULL};
    int is_health = strcmp(path, "/healthz") == 0;
    int is_ready = strcmp(path, "/readyz") == 0;
    int is_metrics = strcmp(path, "/metrics") == 0;
    int is_openapi = strcmp(path, "/openapi.json") == 0;
    if (!is_health && !is_ready && !is_metrics && !is_openapi)
        return 0;
    er->route = EDGE_ROUTE_OPERATIONAL;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        reply_error(er, RD_ERR_METHOD_NOT_ALLOWED, "Method not allowed. (allowed = GET)",
                    allow_get);
        return 1;
    }
    if (is_openapi) {
        serve_openapi(er, req);
    } else if (is_metrics) {
        serve_metrics(er);
    } else if (is_ready && atomic_load(&er->w->srv->draining)) {
        edge_reply(er, 503, json_pack("{s:s}", "status", "draining"), NULL);
    } else if (is_ready && !atomic_load(&er->w->srv->app->ready)) {
        edge_reply(er, 503, json_pack("{s:s}", "status", "not ready"), NULL);
    } else {
        edge_reply(er, 200, json_pack("{s:s}", "status", is_ready ? "ready" : "ok"), NULL);
    }
    return 1;
}

/* ---- request entry ---------------------------------------------------- */

/* The connection of a request that is still being answered closed: evhttp
 * frees the request with it, so the answer must not be sent. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    edge_req *er = arg;
    (void)evcon;
    er->req = NULL;
    er->evcon = NULL;
}

/* Starts the bookkeeping of one request (NULL when out of memory). */
static edge_req *edge_req_new(worker *w, struct evhttp_request *req)
{
    edge_req *er = calloc(1, sizeof(*er));
    if (er == NULL)
        return NULL;
    er->w = w;
    er->req = req;
    er->start_us = util_monotonic_us();
    snprintf(er->method, sizeof(er->method), "%s", method_name(evhttp_request_get_command(req)));
    snprintf(er->path, sizeof(er->path), "-");
    atomic_fetch_add(&w->inflight, 1);
    return er;
}

/* Requests on metrics_listen: only the operational endpoints. */
static void on_ops_request(struct evhttp_request *req, void *arg)
{
    edge_req *er = edge_req_new(arg, req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (er == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (path == NULL)
        path = "-";
    snprintf(er->path, sizeof(er->path), "%s", path);
    if (!serve_operational(er, req, path))
        reply_error(er, RD_ERR_UNKNOWN_ROUTE, "Unknown route.", NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    worker *w = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
    const struct evhttp_uri *uri;
    const char *path;
    struct evbuffer *in;
    edge_req *er;

    if (ssl == NULL) {
        /* No TLS object could be made for this connection: drop it. */
        if (evcon != NULL)
            evhttp_connection_free(evcon);
        return;
    }
    er = edge_req_new(w, req);
    if (er == NULL) {
        evhttp_connection_free(evcon);
        return;
    }
    er->evcon = evcon;
    evhttp_connection_set_closecb(evcon, on_conn_close, er);
    {
        static const char *const close_hdr[] = {"Connection", "close", NULL};
        conn_info *ci = conn_ex_index >= 0 ? SSL_get_ex_data(ssl, conn_ex_index) : NULL;
        const char *message = NULL, *method = NULL, *rpath = NULL;
        rd_status refusal;
        if (ci == NULL || ci->reject || ci->guard == NULL) {
            atomic_fetch_sub(&w->inflight, 1);
            free(er);
            evhttp_connection_free(evcon);
            return;
        }
        refusal = http_guard_next(ci->guard, &message, &method, &rpath);
        if (refusal != RD_OK) {
            /* Refused when its head arrived; its body was never read. */
            snprintf(er->method, sizeof(er->method), "%s", method);
            snprintf(er->path, sizeof(er->path), "%s", rpath);
            er->linger = 1;
            reply_error(er, refusal, message, close_hdr);
            return;
        }
        if (ci->over_limit) {
            reply_error(er, RD_ERR_TOO_MANY_REQUESTS,
                        "Too many requests. (reason = connection limit reached)", close_hdr);
            return;
        }
    }
    uri = evhttp_request_get_evhttp_uri(req);
    path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0')
        path = "/";
    snprintf(er->path, sizeof(er->path), "%s", path);
    if (serve_operational(er, req, path))
        return;
    {
        console_answer ca; /* the web console under /ui (console.h) */
        const char *inm =
            evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
        if (console_route(w->srv->app->conf, er->method, path, inm, &ca)) {
            er->route = EDGE_ROUTE_CONSOLE;
            if (ca.error != RD_OK)
                reply_error(er, ca.error, ca.message, ca.headers);
            else
                send_raw(er, ca.status, ca.content_type, ca.body, ca.len, ca.headers);
            return;
        }
    }
    er->route = edge_metrics_api_route(path);
    in = evhttp_request_get_input_buffer(req);
    if ((int64_t)evbuffer_get_length(in) > w->srv->app->conf->max_body_bytes) {
        static const char *const close_hdr[] = {"Connection", "close", NULL};
        reply_error(er, RD_ERR_REQUEST_TOO_LARGE,
                    "Request too large. (limit = limits.max_body_bytes)", close_hdr);
        return;
    }
    {
        api_edge edge = {edge_reply, er, w->base, edge_reply_bytes};
        size_t len = evbuffer_get_length(in);
        const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
        const char *authz =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        api_dispatch(w->srv->app, &edge, er->method, path, authz, body, len, er->domain);
    }
}

/* Makes the bufferevent of a new connection: always TLS (see file header). */
/* Makes the worker's spare TLS object (see make_bev); 0 on success. */
static int refill_spare(worker *w)
{
    if (w->spare_ssl != NULL)
        return 0;
    w->spare_ci = w->spare_ci != NULL ? w->spare_ci : calloc(1, sizeof(*w->spare_ci));
    w->spare_ssl = w->spare_ci != NULL ? tls_server_new_ssl(w->srv->tls) : NULL;
    return w->spare_ssl != NULL ? 0 : -1;
}

/* Makes the bufferevent of a new connection: always TLS (see file header).
 * When no TLS object can be made for it, the worker's spare one is used and
 * the connection is marked to be dropped: evhttp serves a connection whose
 * bufferevent is not TLS as plaintext, even its own error pages. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    worker *w = arg;
    app *a = w->srv->app;
    SSL *ssl = tls_server_new_ssl(w->srv->tls);
    conn_info *ci = ssl != NULL ? calloc(1, sizeof(*ci)) : NULL;
    struct bufferevent *bev;

    if (ci == NULL) {
        SSL_free(ssl);
        if (w->spare_ssl == NULL) /* two allocation failures in a row */
            return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        ssl = w->spare_ssl;
        ci = w->spare_ci;
        w->spare_ssl = NULL;
        w->spare_ci = NULL;
        memset(ci, 0, sizeof(*ci));
        ci->reject = 1;
    } else if (w->spare_ssl == NULL) {
        refill_spare(w);
    }
    ci->app = a;
    atomic_fetch_add(&a->connections_total, 1);
    if (atomic_fetch_add(&a->connections_open, 1) >= a->conf->max_connections)
        ci->over_limit = 1;
    if (SSL_set_ex_data(ssl, conn_ex_index, ci) != 1) {
        /* on_request() drops a connection without its conn_info */
        atomic_fetch_sub(&a->connections_open, 1);
        free(ci);
        ci = NULL;
    }
    /* The bufferevent owns ssl (and so ci) from here on, even when creation
     * fails. */
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) /* out of memory: evhttp itself would make a plain one */
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (ci != NULL && !ci->reject)
        ci->guard = http_guard_new(bufferevent_get_input(bev), a->conf->max_header_bytes,
                                   a->conf->max_body_bytes); /* NULL: dropped by on_request() */
    return bev;
}

/* ---- lifecycle -------------------------------------------------------- */

/* Stops accepting: closes this worker's listening sockets.  Connections
 * already open keep being served until server_stop() ends the loop. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    if (w->bound != NULL) {
        evhttp_del_accept_socket(w->http, w->bound); /* closes the listening fd */
        w->bound = NULL;
        w->fd = -1;
    }
    if (w->ops_bound != NULL) {
        evhttp_del_accept_socket(w->ops_http, w->ops_bound);
        w->ops_bound = NULL;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    /* Keep running with nothing pending: after stop_cb closed the listener,
     * requests waiting on the upstream engine have no event of their own
     * until their answer is posted here.  server_stop() ends the loop. */
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static rd_status worker_init(worker *w, rd_error *err)
{
    const repod_conf *conf = w->srv->app->conf;
    w->base = event_base_new();
    w->http = w->base != NULL ? evhttp_new(w->base) : NULL;
    w->stop_ev = w->base != NULL ? event_new(w->base, -1, 0, stop_cb, w) : NULL;
    w->linger = w->base != NULL ? linger_set_new(w->base) : NULL;
    if (w->http == NULL || w->stop_ev == NULL || w->linger == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "cannot create the event loop of worker %d", w->index);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    /* Heads and bodies over limits.* are refused by the connection's
     * http_guard before evhttp reads them (JSON 431 / 413, see on_request);
     * evhttp's own limits, which it answers with HTML or a bare close, are
     * set so that they are never reached first. */
    evhttp_set_max_body_size(w->http, (ev_ssize_t)conf->max_body_bytes);
    evhttp_set_max_headers_size(w->http,
                                (ev_ssize_t)http_guard_evhttp_header_limit(conf->max_header_bytes));
    evhttp_set_timeout(w->http, (int)conf->request_timeout_s);
    evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_default_content_type(w->http, "application/json");
    if (refill_spare(w) != 0)
        return rd_fail(err, RD_ERR_INTERNAL, "cannot create a TLS object for worker %d", w->index);
    evhttp_set_bevcb(w->http, make_bev, w);
    evhttp_set_gencb(w->http, on_request, w);
    w->bound = evhttp_accept_socket_with_handle(w->http, w->fd);
    if (w->bound == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "worker %d cannot accept on its socket", w->index);
    if (w->index == 0 && conf->metrics_host != NULL) {
        /* Operational endpoints on their own plain-HTTP address, for
         * scrapers on an internal interface; the API never answers there. */
        w->ops_http = evhttp_new(w->base);
        if (w->ops_http == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "cannot create the metrics listener");
        evhttp_set_allowed_methods(w->ops_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
        evhttp_set_timeout(w->ops_http, (int)conf->request_timeout_s);
        evhttp_set_max_body_size(w->ops_http, 1024);
        evhttp_set_gencb(w->ops_http, on_ops_request, w);
        w->ops_bound = evhttp_accept_socket_with_handle(w->ops_http, w->srv->metrics_fd);
        if (w->ops_bound == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "cannot accept on the metrics_listen socket");
        w->srv->metrics_fd = -1; /* owned by ops_bound now */
        w->srv->metrics_port = edge_bound_port(evhttp_bound_socket_get_fd(w->ops_bound));
    }
    return RD_OK;
}

rd_status server_create(app *a, server **out, rd_error *err)
{
    const repod_conf *conf = a->conf;
    server *srv = calloc(1, sizeof(*srv));
    evutil_socket_t fd = -1;
    rd_status rc = RD_OK;

    *out = NULL;
    pthread_once(&conn_ex_once, conn_ex_init);
    if (srv == NULL || conn_ex_index < 0) {
        free(srv);
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    }
    srv->app = a;
    srv->metrics_fd = -1;
    srv->nworkers = conf->workers > 0 ? conf->workers : 1;
    srv->workers = calloc((size_t)srv->nworkers, sizeof(worker));
    if (srv->workers == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (int i = 0; i < srv->nworkers; i++)
        srv->workers[i].fd = -1;
    /* Bind before anything else can fail, so a busy port is reported as
     * such; each worker accepts on a dup() of this fd, closed below. */
    fd = edge_listen("listen", conf->listen_host, conf->listen_port, err);
    if (fd < 0) {
        rc = err->code;
        goto done;
    }
    srv->port = edge_bound_port(fd);
    if (conf->metrics_host != NULL) {
        srv->metrics_fd =
            edge_listen("metrics_listen", conf->metrics_host, conf->metrics_port, err);
        if (srv->metrics_fd < 0) {
            rc = err->code;
            goto done;
        }
    }
    rc = tls_server_create(conf, &srv->tls, err);
    if (rc != RD_OK)
        goto done;
    for (int i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (w->fd < 0) {
            rc =
                rd_fail(err, RD_ERR_INTERNAL,
                        "cannot share the listening socket with worker %d: %s", i, strerror(errno));
            goto done;
        }
        rc = worker_init(w, err);
        if (rc != RD_OK)
            goto done;
    }
done:
    if (fd >= 0)
        close(fd);
    if (rc != RD_OK) {
        server_free(srv);
        return rc;
    }
    *out = srv;
    return RD_OK;
}

int server_port(const server *srv)
{
    return srv->port;
}

int server_metrics_port(const server *srv)
{
    return srv->metrics_port;
}

rd_status server_start(server *srv, rd_error *err)
{
    for (int i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return rd_fail(err, RD_ERR_INTERNAL, "cannot start worker thread %d", i);
        w->started = 1;
    }
    return RD_OK;
}

static int inflight_total(server *srv)
{
    int n = 0;
    for (int i = 0; i < srv->nworkers; i++)
        n += atomic_load(&srv->workers[i].inflight);
    return n;
}

/* Waits (polling) until no request is in flight or timeout_ms passed;
 * returns what is still in flight. */
static int wait_idle(server *srv, int64_t timeout_ms)
{
    int64_t deadline = util_monotonic_us() + timeout_ms * 1000;
    int n;
    while ((n = inflight_total(srv)) > 0 && util_monotonic_us() < deadline)
        usleep(20000);
    return n;
}

/* The drain before the listener closes: keep serving for
 * limits.shutdown_grace_ms while /readyz answers 503, so that a load
 * balancer's health check takes this server out of rotation first and no
 * new connection meets a closed port; every answer from now on carries
 * Connection: close, so keep-alive clients reconnect (through the
 * balancer, to another server). */
static void drain(server *srv)
{
    int64_t grace_ms = srv->app->conf->shutdown_grace_ms;
    int64_t deadline = util_monotonic_us() + grace_ms * 1000;
    atomic_store(&srv->draining, 1);
    if (grace_ms <= 0)
        return;
    LOG_INFO("shutdown: draining for %lldms (readyz answers 503, connections close after "
             "their answer)",
             (long long)grace_ms);
    while (util_monotonic_us() < deadline)
        usleep(20000);
    LOG_INFO("shutdown: drained; closing the listener with %d requests in flight",
             inflight_total(srv));
}

void server_stop(server *srv, void (*cancel_waits)(void *), void *arg)
{
    int left;
    drain(srv);
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started)
            event_active(srv->workers[i].stop_ev, 0, 0);
    left = wait_idle(srv, (int64_t)srv->app->conf->shutdown_timeout_s * 1000);
    if (left > 0 && cancel_waits != NULL) {
        /* Requests still waiting on upstreams or registries: end those waits
         * so they are answered (503) while the loops still run. */
        LOG_WARN("shutdown: %d requests still in flight after %llds; cancelling their waits", left,
                 (long long)srv->app->conf->shutdown_timeout_s);
        cancel_waits(arg);
        left = wait_idle(srv, 2000);
    }
    if (left > 0)
        LOG_WARN("shutdown: closing with %d requests unanswered", left);
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].started)
            event_base_loopexit(srv->workers[i].base, NULL);
    for (int i = 0; i < srv->nworkers; i++) {
        if (srv->workers[i].started) {
            pthread_join(srv->workers[i].thread, NULL);
            srv->workers[i].started = 0;
        }
    }
}

rd_status server_reload_tls(server *srv, const repod_conf *conf, rd_error *err)
{
    return tls_server_reload(srv->tls, conf, err);
}

void server_free(server *srv)
{
    if (srv == NULL)
        return;
    for (int i = 0; srv->workers != NULL && i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        if (w->bound == NULL && w->fd >= 0)
            close(w->fd); /* never handed to evhttp */
        if (w->http != NULL)
            evhttp_free(w->http); /* closes bound sockets and connections */
        if (w->ops_http != NULL)
            evhttp_free(w->ops_http);
        SSL_free(w->spare_ssl);
        free(w->spare_ci);
        linger_set_free(w->linger);
        if (w->stop_ev != NULL)
            event_free(w->stop_ev);
        if (w->base != NULL)
            event_base_free(w->base);
    }
    free(srv->workers);
    if (srv->metrics_fd >= 0)
        close(srv->metrics_fd);
    tls_server_free(srv->tls);
    free(srv);
}
