/*
 * test_httpc.c - unit tests of httpc.c, the asynchronous HTTPS client.
 *
 * Everything runs in one process and on one event_base: the client under
 * test, an evhttp TLS server (the "good" one, certificate of CA 1), a second
 * evhttp TLS server whose certificate comes from an unrelated CA 2, a plain
 * HTTP evhttp server, and "raw" servers written on bufferevents that
 * misbehave on purpose (never finish the handshake, answer garbage, claim a
 * 1 GiB body, stream until close, drop a kept-alive connection).  All listen
 * on 127.0.0.1 port 0 and the tests read the port back, like libevent's
 * test/regress_http.c.  Every server is event-driven, so one loop thread is
 * enough even for the "stalling" cases.
 *
 * Certificates are made once per run by certs/gen-dev-certs.sh (found through
 * $REPOD_SOURCE_DIR, set by ctest, or relative to the working directory) in
 * two temporary folders: both give a server certificate for localhost,
 * 127.0.0.1 and ::1.  Host name mismatch is tested with the
 * httpc_request_opts.connect_host addition: the URL names a host that is not
 * in the certificate (wrong.invalid, or the IP 127.0.0.2) while the TCP
 * connection goes to 127.0.0.1, so the name check is the only thing wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "httpc.h"

/* ---- certificates (made once per run) --------------------------------- */

static char g_dir[64];
static char g_ca1[128], g_cert1[128], g_key1[128];
static char g_ca2[128], g_cert2[128], g_key2[128];

static int group_setup(void **state)
{
    char cmd[2048];
    const char *script = testkit_cert_script();
    (void)state;
    if (script == NULL) {
        fprintf(stderr, "test_httpc: certs/gen-dev-certs.sh not found (set REPOD_SOURCE_DIR)\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_httpc.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "bash '%s' --force '%s/ca1' >/dev/null 2>&1 && "
             "bash '%s' --force '%s/ca2' >/dev/null 2>&1",
             script, g_dir, script, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_httpc: %s failed\n", script);
        return -1;
    }
    snprintf(g_ca1, sizeof(g_ca1), "%s/ca1/ca.crt", g_dir);
    snprintf(g_cert1, sizeof(g_cert1), "%s/ca1/server.crt", g_dir);
    snprintf(g_key1, sizeof(g_key1), "%s/ca1/server.key", g_dir);
    snprintf(g_ca2, sizeof(g_ca2), "%s/ca2/ca.crt", g_dir);
    snprintf(g_cert2, sizeof(g_cert2), "%s/ca2/server.crt", g_dir);
    snprintf(g_key2, sizeof(g_key2), "%s/ca2/server.key", g_dir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0] != '\0')
        testkit_rm_tree(g_dir);
    return 0;
}

/* ---- servers ------------------------------------------------------------ */

static SSL_CTX *server_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "test_httpc: cannot load %s / %s\n", cert, key);
        abort();
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    return ctx;
}

static int listener_port(evutil_socket_t fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        abort();
    return ntohs(sin.sin_port);
}

/* An evhttp server; TLS when ctx is not NULL. */
typedef struct {
    struct evhttp *http;
    SSL_CTX *ctx;
    int port;
    int accepted; /* connections accepted (TLS: bufferevents made) */
    char sni[256];
} http_server;

static int sni_cb(SSL *ssl, int *ad, void *arg)
{
    http_server *srv = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    (void)ad;
    snprintf(srv->sni, sizeof(srv->sni), "%s", name != NULL ? name : "");
    return SSL_TLSEXT_ERR_OK;
}

static struct bufferevent *server_bevcb(struct event_base *base, void *arg)
{
    http_server *srv = arg;
    SSL *ssl = SSL_new(srv->ctx);
    struct bufferevent *bev;
    if (ssl == NULL)
        abort(); /* never return NULL: evhttp would serve plaintext */
    srv->accepted++;
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        abort();
    return bev;
}

static void copy_header(struct evhttp_request *req, struct evkeyvalq *out, const char *name,
                        const char *as)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    evhttp_add_header(out, as, v != NULL ? v : "(none)");
}

static long query_long(struct evhttp_request *req, const char *name, long def)
{
    struct evkeyvalq q;
    const char *v;
    long n = def;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = evhttp_uri_get_query(uri);
    if (query == NULL)
        return def;
    TAILQ_INIT(&q);
    if (evhttp_parse_query_str(query, &q) == 0 && (v = evhttp_find_header(&q, name)) != NULL)
        n = strtol(v, NULL, 10);
    evhttp_clear_headers(&q);
    return n;
}

/* Routes:
 *   /echo      200, body "<METHOD> <uri>\n<request body>", X-Seen-* headers
 *              telling what the request carried, plus Link and
 *              WWW-Authenticate headers
 *   /big?n=N   N bytes with Content-Length
 *   /chunked?n=N&chunk=S   N bytes in chunks of S (Transfer-Encoding: chunked)
 *   /close     200 with Connection: close
 *   /slow      never answered */
static void server_gencb(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    (void)arg;
    if (out == NULL)
        abort();
    if (strcmp(path, "/echo") == 0) {
        const char *method = "OTHER";
        switch (evhttp_request_get_command(req)) {
        case EVHTTP_REQ_GET:
            method = "GET";
            break;
        case EVHTTP_REQ_POST:
            method = "POST";
            break;
        default:
            break;
        }
        evbuffer_add_printf(out, "%s %s\n", method, evhttp_request_get_uri(req));
        evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
        copy_header(req, oh, "Host", "X-Seen-Host");
        copy_header(req, oh, "User-Agent", "X-Seen-User-Agent");
        copy_header(req, oh, "Accept", "X-Seen-Accept");
        copy_header(req, oh, "Content-Type", "X-Seen-Content-Type");
        copy_header(req, oh, "Content-Length", "X-Seen-Content-Length");
        copy_header(req, oh, "Connection", "X-Seen-Connection");
        copy_header(req, oh, "X-Custom", "X-Seen-Custom");
        evhttp_add_header(oh, "Content-Type", "application/json");
        evhttp_add_header(oh, "Link", "</v2/x/tags/list?n=2&last=b>; rel=\"next\"");
        evhttp_add_header(oh, "WWW-Authenticate",
                          "Bearer realm=\"https://auth.example/token\",service=\"reg\"");
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strcmp(path, "/big") == 0) {
        long n = query_long(req, "n", 0), i;
        for (i = 0; i < n; i++)
            evbuffer_add(out, "x", 1);
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strcmp(path, "/chunked") == 0) {
        long n = query_long(req, "n", 0), chunk = query_long(req, "chunk", 1024), sent = 0;
        char *buf = malloc((size_t)chunk);
        if (buf == NULL)
            abort();
        memset(buf, 'c', (size_t)chunk);
        evhttp_send_reply_start(req, 200, "OK");
        while (sent < n) {
            long k = n - sent < chunk ? n - sent : chunk;
            evbuffer_add(out, buf, (size_t)k);
            evhttp_send_reply_chunk(req, out);
            sent += k;
        }
        evhttp_send_reply_end(req);
        free(buf);
    } else if (strcmp(path, "/close") == 0) {
        evhttp_add_header(oh, "Connection", "close");
        evbuffer_add_printf(out, "bye");
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strcmp(path, "/slow") == 0) {
        /* never answered; evhttp frees it with the connection */
    } else {
        evhttp_send_reply(req, 404, "Not Found", NULL);
    }
    evbuffer_free(out);
}

static void http_server_start(struct event_base *base, http_server *srv, const char *cert,
                              const char *key)
{
    struct evhttp_bound_socket *sock;
    memset(srv, 0, sizeof(*srv));
    srv->http = evhttp_new(base);
    assert_non_null(srv->http);
    if (cert != NULL) {
        srv->ctx = server_ctx(cert, key);
        SSL_CTX_set_tlsext_servername_callback(srv->ctx, sni_cb);
        SSL_CTX_set_tlsext_servername_arg(srv->ctx, srv);
        evhttp_set_bevcb(srv->http, server_bevcb, srv);
    }
    evhttp_set_gencb(srv->http, server_gencb, srv);
    evhttp_set_timeout(srv->http, 30);
    sock = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
    assert_non_null(sock);
    srv->port = listener_port(evhttp_bound_socket_get_fd(sock));
}

static void http_server_stop(http_server *srv)
{
    if (srv->http != NULL)
        evhttp_free(srv->http);
    if (srv->ctx != NULL)
        SSL_CTX_free(srv->ctx);
    memset(srv, 0, sizeof(*srv));
}

/* A raw TLS server (bare TCP for RAW_HOLD) that misbehaves on purpose. */
typedef enum {
    RAW_HOLD,              /* accept, never read or handshake */
    RAW_GARBAGE,           /* answer a non-HTTP line, keep the connection */
    RAW_HUGE_LENGTH,       /* Content-Length: 1 GiB, send 1000 bytes, stall */
    RAW_UNTIL_CLOSE_BIG,   /* no length, 1 MiB, then close */
    RAW_UNTIL_CLOSE_SMALL, /* no length, "hello until close", then close */
    RAW_DROP_SECOND        /* answer "conn N" once per connection, close on the 2nd request */
} raw_mode;

typedef struct raw_server raw_server;

typedef struct raw_conn {
    struct raw_conn *next;
    raw_server *srv;
    struct bufferevent *bev;
    int requests;
    int closing; /* free once the output is flushed */
    int number;  /* 1 = first accepted connection */
} raw_conn;

struct raw_server {
    struct evconnlistener *lst;
    SSL_CTX *ctx;
    raw_mode mode;
    int port;
    int accepted;
    evutil_socket_t held[32];
    int nheld;
    raw_conn *conns;
};

/* Frees rc (bufferevent_free also drops its callbacks, so none comes later
 * with the freed rc). */
static void raw_conn_free(raw_conn *rc)
{
    raw_conn **pp;
    for (pp = &rc->srv->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == rc) {
            *pp = rc->next;
            break;
        }
    }
    bufferevent_free(rc->bev);
    free(rc);
}

static void raw_write(struct bufferevent *bev, const char *s)
{
    bufferevent_write(bev, s, strlen(s));
}

static void raw_writecb(struct bufferevent *bev, void *arg)
{
    raw_conn *rc = arg;
    if (rc->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        raw_conn_free(rc);
}

static void raw_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        raw_conn_free(arg);
}

static void raw_readcb(struct bufferevent *bev, void *arg)
{
    raw_conn *rc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    char *big;
    if (end.pos < 0 || rc->closing)
        return;
    evbuffer_drain(in, (size_t)end.pos + 4);
    rc->requests++;
    switch (rc->srv->mode) {
    case RAW_GARBAGE:
        raw_write(bev, "garbage without any structure\r\n\r\n");
        break;
    case RAW_HUGE_LENGTH:
        big = calloc(1, 1000);
        assert_non_null(big);
        raw_write(bev, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n");
        bufferevent_write(bev, big, 1000);
        free(big);
        break;
    case RAW_UNTIL_CLOSE_BIG:
        big = malloc(1 << 20);
        assert_non_null(big);
        memset(big, 'u', 1 << 20);
        raw_write(bev, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        bufferevent_write(bev, big, 1 << 20);
        free(big);
        rc->closing = 1;
        break;
    case RAW_UNTIL_CLOSE_SMALL:
        raw_write(bev, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello until close");
        rc->closing = 1;
        break;
    case RAW_DROP_SECOND:
        if (rc->requests == 1) {
            char body[32];
            int n = snprintf(body, sizeof(body), "conn %d", rc->number);
            evbuffer_add_printf(bufferevent_get_output(bev),
                                "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n, body);
        } else {
            raw_conn_free(rc); /* as if the server had timed out the idle connection */
        }
        break;
    case RAW_HOLD:
        break;
    }
}

static void raw_acceptcb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                         int len, void *arg)
{
    raw_server *srv = arg;
    raw_conn *rc;
    SSL *ssl;
    (void)sa;
    (void)len;
    srv->accepted++;
    if (srv->mode == RAW_HOLD) {
        if (srv->nheld < (int)(sizeof(srv->held) / sizeof(srv->held[0])))
            srv->held[srv->nheld++] = fd;
        else
            evutil_closesocket(fd);
        return;
    }
    rc = calloc(1, sizeof(*rc));
    ssl = SSL_new(srv->ctx);
    if (rc == NULL || ssl == NULL)
        abort();
    rc->srv = srv;
    rc->number = srv->accepted;
    rc->bev = bufferevent_openssl_socket_new(evconnlistener_get_base(lst), fd, ssl,
                                             BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (rc->bev == NULL)
        abort();
    rc->next = srv->conns;
    srv->conns = rc;
    bufferevent_setcb(rc->bev, raw_readcb, raw_writecb, raw_eventcb, rc);
    bufferevent_enable(rc->bev, EV_READ | EV_WRITE);
}

static void raw_server_start(struct event_base *base, raw_server *srv, raw_mode mode)
{
    struct sockaddr_in sin;
    memset(srv, 0, sizeof(*srv));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    srv->mode = mode;
    srv->ctx = server_ctx(g_cert1, g_key1);
    srv->lst =
        evconnlistener_new_bind(base, raw_acceptcb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                -1, (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(srv->lst);
    srv->port = listener_port(evconnlistener_get_fd(srv->lst));
}

static void raw_server_stop(raw_server *srv)
{
    int i;
    if (srv->lst == NULL)
        return;
    evconnlistener_free(srv->lst);
    for (i = 0; i < srv->nheld; i++)
        evutil_closesocket(srv->held[i]);
    while (srv->conns != NULL)
        raw_conn_free(srv->conns);
    SSL_CTX_free(srv->ctx);
    memset(srv, 0, sizeof(*srv));
}

/* ---- per-test fixture and helpers -------------------------------------- */

typedef struct {
    struct event_base *base;
    httpc *c;
    http_server good;  /* CA 1 */
    http_server wrong; /* CA 2 */
    http_server plain; /* no TLS */
    raw_server raw;
} fixture;

static int g_in_request;   /* set while httpc_request() runs */
static int g_tearing_down; /* results of a failed test are gone: ignore them */

typedef struct {
    int done;
    int calls;
    int reentrant; /* the callback ran inside httpc_request() */
    httpc_result result;
    int status;
    char error[256];
    char *body;
    size_t body_len;
    char hdr[8][256]; /* values of the names in g_hdr_names, "" when absent */
    int64_t t_start_us, t_done_us;
    int *counter;
    httpc **free_client; /* when set, the callback frees this client */
} result_t;

static const char *const g_hdr_names[8] = {
    "X-Seen-Host", "X-Seen-User-Agent", "X-Seen-Accept", "X-Seen-Content-Type", "X-Seen-Custom",
    "link",        "WWW-AUTHENTICATE",  "Content-Type"};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_result(const httpc_response *resp, void *arg)
{
    result_t *res = arg;
    size_t i;
    if (g_tearing_down)
        return;
    res->calls++;
    res->reentrant |= g_in_request;
    res->done = 1;
    res->t_done_us = now_us();
    res->result = resp->result;
    res->status = resp->status;
    snprintf(res->error, sizeof(res->error), "%s", resp->error != NULL ? resp->error : "(null)");
    free(res->body);
    res->body = malloc(resp->body_len + 1);
    assert_non_null(res->body);
    assert_non_null(resp->body);
    memcpy(res->body, resp->body, resp->body_len + 1);
    res->body_len = resp->body_len;
    for (i = 0; i < 8; i++) {
        const char *v = httpc_response_header(resp, g_hdr_names[i]);
        snprintf(res->hdr[i], sizeof(res->hdr[i]), "%s", v != NULL ? v : "");
    }
    if (res->counter != NULL)
        (*res->counter)++;
    if (res->free_client != NULL && *res->free_client != NULL) {
        httpc_free(*res->free_client);
        *res->free_client = NULL;
    }
}

static int start(fixture *fx, const httpc_request_opts *opts, result_t *res)
{
    int rc;
    res->t_start_us = now_us();
    g_in_request = 1;
    rc = httpc_request(fx->c, opts, on_result, res);
    g_in_request = 0;
    assert_int_equal(res->calls, 0); /* never called back from inside */
    return rc;
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until *flag >= target or max_ms pass; returns 1 on success. */
static int run_until(fixture *fx, const int *flag, int target, int max_ms)
{
    int expired = 0;
    struct timeval tv = {max_ms / 1000, (max_ms % 1000) * 1000};
    struct event *guard = evtimer_new(fx->base, guard_cb, &expired);
    assert_non_null(guard);
    evtimer_add(guard, &tv);
    while (*flag < target && !expired)
        event_base_loop(fx->base, EVLOOP_ONCE);
    event_free(guard);
    return *flag >= target;
}

/* Runs the loop for ms milliseconds. */
static void run_for(fixture *fx, int ms)
{
    int never = 0;
    run_until(fx, &never, 1, ms);
}

static void result_clear(result_t *res)
{
    free(res->body);
    memset(res, 0, sizeof(*res));
}

static void opts_for(httpc_request_opts *o, char *url, size_t size, int port, const char *path)
{
    httpc_request_init(o);
    snprintf(url, size, "https://127.0.0.1:%d%s", port, path);
    o->url = url;
    o->ca_file = g_ca1;
    o->timeout_ms = 5000;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    http_server_start(fx->base, &fx->good, g_cert1, g_key1);
    http_server_start(fx->base, &fx->wrong, g_cert2, g_key2);
    http_server_start(fx->base, &fx->plain, NULL, NULL);
    fx->c = httpc_new(fx->base);
    assert_non_null(fx->c);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    g_tearing_down = 1;
    httpc_free(fx->c);
    g_tearing_down = 0;
    raw_server_stop(&fx->raw);
    http_server_stop(&fx->good);
    http_server_stop(&fx->wrong);
    http_server_stop(&fx->plain);
    /* let libevent finish deferred frees (evdns shutdown, closed sockets) */
    event_base_loop(fx->base, EVLOOP_NONBLOCK);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_get_round_trip(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128], host[64];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo?x=1&y=two");
    assert_int_equal(start(fx, &o, &res), 0);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    assert_string_equal(res.error, "");
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "GET /echo?x=1&y=two\n");
    assert_int_equal(res.body_len, strlen("GET /echo?x=1&y=two\n"));
    snprintf(host, sizeof(host), "127.0.0.1:%d", fx->good.port);
    assert_string_equal(res.hdr[0], host);
    assert_true(strncmp(res.hdr[1], "repod/", 6) == 0);
    assert_string_equal(res.hdr[2], "application/json");
    assert_string_equal(res.hdr[3], "(none)"); /* no body, no Content-Type */
    assert_int_equal(res.calls, 1);
    assert_false(res.reentrant);
    /* an IP literal is never sent as SNI */
    assert_string_equal(fx->good.sni, "");
    result_clear(&res);
}

static void test_post_round_trip(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    const char *hdrs[] = {"X-Custom", "custom value", "Accept", "text/plain", NULL};
    const char body[] = "{\"plugin_id\":\"plugin-1\",\"nul\":\"a\0b\"}";
    result_t res = {0};
    char expect[256];
    size_t explen;
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    o.method = "POST";
    o.body = body;
    o.body_len = sizeof(body) - 1; /* binary safe: contains a NUL */
    o.headers = hdrs;
    assert_int_equal(start(fx, &o, &res), 0);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    assert_int_equal(res.status, 200);
    explen = (size_t)snprintf(expect, sizeof(expect), "POST /echo\n");
    memcpy(expect + explen, body, sizeof(body) - 1);
    explen += sizeof(body) - 1;
    assert_int_equal(res.body_len, explen);
    assert_memory_equal(res.body, expect, explen);
    assert_string_equal(res.hdr[2], "text/plain"); /* caller's Accept wins */
    assert_string_equal(res.hdr[3], "application/json");
    assert_string_equal(res.hdr[4], "custom value");
    result_clear(&res);
}

static void test_headers_visible(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    /* looked up case-insensitively ("link", "WWW-AUTHENTICATE") */
    assert_string_equal(res.hdr[5], "</v2/x/tags/list?n=2&last=b>; rel=\"next\"");
    assert_string_equal(res.hdr[6], "Bearer realm=\"https://auth.example/token\",service=\"reg\"");
    assert_string_equal(res.hdr[7], "application/json");
    result_clear(&res);
}

static void test_verified_by_name_with_sni(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    httpc_request_init(&o);
    snprintf(url, sizeof(url), "https://localhost:%d/echo", fx->good.port);
    o.url = url;
    o.ca_file = g_ca1;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    assert_int_equal(res.status, 200);
    assert_string_equal(fx->good.sni, "localhost");
    result_clear(&res);
}

static void test_wrong_ca_fails(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->wrong.port, "/echo");
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TLS);
    assert_non_null(strstr(res.error, "certificate"));
    assert_non_null(strstr(res.error, "unable to get local issuer certificate"));
    result_clear(&res);
}

static void test_system_store_rejects_dev_ca(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    o.ca_file = NULL; /* system trust store: does not know the dev CA */
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TLS);
    result_clear(&res);
}

static void test_hostname_mismatch_fails(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0}, res_ip = {0}, res_off = {0};

    /* DNS name not in the certificate, connection to the right server. */
    httpc_request_init(&o);
    snprintf(url, sizeof(url), "https://wrong.invalid:%d/echo", fx->good.port);
    o.url = url;
    o.ca_file = g_ca1;
    o.connect_host = "127.0.0.1";
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TLS);
    assert_non_null(strstr(res.error, "hostname mismatch"));
    assert_string_equal(fx->good.sni, "wrong.invalid"); /* SNI follows the URL */

    /* IP literal not in the certificate. */
    snprintf(url, sizeof(url), "https://127.0.0.2:%d/echo", fx->good.port);
    start(fx, &o, &res_ip);
    assert_true(run_until(fx, &res_ip.done, 1, 5000));
    assert_int_equal(res_ip.result, HTTPC_ERR_TLS);
    assert_non_null(strstr(res_ip.error, "IP address mismatch"));

    /* Same request with verify off: accepted. */
    o.verify = 0;
    start(fx, &o, &res_off);
    assert_true(run_until(fx, &res_off.done, 1, 5000));
    assert_int_equal(res_off.result, HTTPC_OK);
    result_clear(&res);
    result_clear(&res_ip);
    result_clear(&res_off);
}

static void test_verify_off_accepts_wrong_ca(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->wrong.port, "/echo");
    o.verify = 0;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    assert_int_equal(res.status, 200);
    result_clear(&res);
}

static void test_bad_ca_file(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    o.ca_file = "/nonexistent/ca.crt";
    assert_int_equal(start(fx, &o, &res), -1);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TLS);
    assert_non_null(strstr(res.error, "/nonexistent/ca.crt"));
    result_clear(&res);
}

static void test_tls_to_plain_server_fails(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    opts_for(&o, url, sizeof(url), fx->plain.port, "/echo");
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TLS);
    result_clear(&res);
}

static void test_plain_http_only_when_allowed(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0}, res2 = {0};
    httpc_request_init(&o);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", fx->plain.port);
    o.url = url;
    assert_int_equal(start(fx, &o, &res), -1);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_INTERNAL);
    o.allow_plain = 1;
    assert_int_equal(start(fx, &o, &res2), 0);
    assert_true(run_until(fx, &res2.done, 1, 5000));
    assert_int_equal(res2.result, HTTPC_OK);
    assert_string_equal(res2.body, "GET /echo\n");
    result_clear(&res);
    result_clear(&res2);
}

static void test_connection_refused(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    struct sockaddr_in sin;
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;
    /* a port that was just free: bind, read it, close */
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    port = listener_port(fd);
    close(fd);
    opts_for(&o, url, sizeof(url), port, "/echo");
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_CONNECT);
    assert_non_null(strstr(res.error, "refused"));
    assert_false(res.reentrant);
    result_clear(&res);
}

static void test_unresolvable_host(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    result_t res = {0};
    int64_t ms;
    /* Depending on the resolver this is a fast NXDOMAIN (CONNECT) or a
     * lookup that outlives the deadline (TIMEOUT); either way the callback
     * comes on time and nothing leaks while the lookup is still pending. */
    httpc_request_init(&o);
    o.url = "https://no-such-host.invalid/echo";
    o.timeout_ms = 300;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    ms = (res.t_done_us - res.t_start_us) / 1000;
    assert_true(res.result == HTTPC_ERR_CONNECT || res.result == HTTPC_ERR_TIMEOUT);
    /* the 300 ms deadline bounds it: well under the 5 s a stuck resolver
     * would take (generous, for a loaded machine and sanitizer builds) */
    assert_true(ms <= 3000);
    result_clear(&res);
}

static void test_timeout_during_handshake(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    int64_t ms;
    raw_server_start(fx->base, &fx->raw, RAW_HOLD);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/echo");
    o.timeout_ms = 300;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    ms = (res.t_done_us - res.t_start_us) / 1000;
    assert_int_equal(res.result, HTTPC_ERR_TIMEOUT);
    assert_true(ms >= 290);
    assert_true(ms <= 500);
    assert_int_equal(fx->raw.accepted, 1);
    result_clear(&res);
}

static void test_timeout_waiting_for_response(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0}, res2 = {0};
    int64_t ms;
    opts_for(&o, url, sizeof(url), fx->good.port, "/slow");
    o.timeout_ms = 300;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    ms = (res.t_done_us - res.t_start_us) / 1000;
    assert_int_equal(res.result, HTTPC_ERR_TIMEOUT);
    assert_true(ms >= 290);
    assert_true(ms <= 500);
    /* the timed-out connection was discarded, not pooled */
    assert_int_equal(httpc_idle_connections(fx->c), 0);
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    start(fx, &o, &res2);
    assert_true(run_until(fx, &res2.done, 1, 5000));
    assert_int_equal(res2.result, HTTPC_OK);
    assert_int_equal(fx->good.accepted, 2);
    result_clear(&res);
    result_clear(&res2);
}

static void test_too_large_content_length(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0}, ok = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/big?n=200000");
    o.max_response_bytes = 65536;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TOO_LARGE);
    assert_string_equal(res.body, "");
    /* exactly at the cap is fine */
    opts_for(&o, url, sizeof(url), fx->good.port, "/big?n=65536");
    o.max_response_bytes = 65536;
    start(fx, &o, &ok);
    assert_true(run_until(fx, &ok.done, 1, 5000));
    assert_int_equal(ok.result, HTTPC_OK);
    assert_int_equal(ok.body_len, 65536);
    result_clear(&res);
    result_clear(&ok);
}

static void test_too_large_declared_fails_fast(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    int64_t ms;
    /* Content-Length: 1 GiB but only 1000 bytes ever come: waiting for the
     * body would end in a timeout, so TOO_LARGE proves the early check. */
    raw_server_start(fx->base, &fx->raw, RAW_HUGE_LENGTH);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/");
    o.max_response_bytes = 65536;
    o.timeout_ms = 3000;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    ms = (res.t_done_us - res.t_start_us) / 1000;
    assert_int_equal(res.result, HTTPC_ERR_TOO_LARGE);
    assert_true(ms < 1500);
    result_clear(&res);
}

static void test_too_large_chunked(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0}, ok = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/chunked?n=1048576&chunk=4096");
    o.max_response_bytes = 65536;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TOO_LARGE);
    /* a chunked body under the cap is reassembled */
    opts_for(&o, url, sizeof(url), fx->good.port, "/chunked?n=50000&chunk=3000");
    o.max_response_bytes = 65536;
    start(fx, &o, &ok);
    assert_true(run_until(fx, &ok.done, 1, 5000));
    assert_int_equal(ok.result, HTTPC_OK);
    assert_int_equal(ok.body_len, 50000);
    assert_int_equal(ok.body[49999], 'c');
    result_clear(&res);
    result_clear(&ok);
}

static void test_too_large_until_close(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    raw_server_start(fx->base, &fx->raw, RAW_UNTIL_CLOSE_BIG);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/");
    o.max_response_bytes = 65536;
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_TOO_LARGE);
    result_clear(&res);
}

static void test_body_until_close(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    /* no length, server closes without close_notify */
    raw_server_start(fx->base, &fx->raw, RAW_UNTIL_CLOSE_SMALL);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/");
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    assert_string_equal(res.body, "hello until close");
    assert_int_equal(httpc_idle_connections(fx->c), 0);
    result_clear(&res);
}

static void test_garbage_is_protocol_error(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t res = {0};
    raw_server_start(fx->base, &fx->raw, RAW_GARBAGE);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/");
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_ERR_PROTOCOL);
    result_clear(&res);
}

/* refuse_special_addresses: a name or literal that is loopback is refused
 * before any connection; without the option the same URL is fetched. */
static void test_special_addresses_refused(void **state)
{
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]", "0.0.0.0", NULL};
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    size_t i;
    for (i = 0; hosts[i] != NULL; i++) {
        result_t res = {0};
        httpc_request_init(&o);
        snprintf(url, sizeof(url), "https://%s:%d/echo", hosts[i], fx->good.port);
        o.url = url;
        o.ca_file = g_ca1;
        o.refuse_special_addresses = 1;
        start(fx, &o, &res);
        assert_true(run_until(fx, &res.done, 1, 5000));
        if (res.result != HTTPC_ERR_REFUSED)
            fail_msg("%s: result %d (%s)", hosts[i], (int)res.result, res.error);
        assert_non_null(strstr(res.error, "refused"));
        result_clear(&res);
    }
    assert_int_equal(fx->good.accepted, 0);
    assert_int_equal(httpc_connections_opened(fx->c), 0);
    {
        result_t res = {0};
        opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
        start(fx, &o, &res);
        assert_true(run_until(fx, &res.done, 1, 5000));
        assert_int_equal(res.result, HTTPC_OK);
        assert_int_equal(fx->good.accepted, 1);
        result_clear(&res);
    }
}

/* The address classes refused by refuse_special_addresses. */
static void test_special_address_classes(void **state)
{
    static const char *const special[] = {"127.0.0.1",
                                          "127.255.0.9",
                                          "169.254.169.254",
                                          "0.0.0.0",
                                          "224.0.0.1",
                                          "239.1.2.3",
                                          "::1",
                                          "::",
                                          "fe80::1",
                                          "ff02::1",
                                          "::ffff:127.0.0.1",
                                          "::ffff:169.254.1.1",
                                          NULL};
    static const char *const ordinary[] = {"10.0.0.1",    "192.168.1.1",    "8.8.8.8", "172.16.0.1",
                                           "2001:db8::1", "::ffff:8.8.8.8", NULL};
    struct sockaddr_storage ss;
    size_t i;
    (void)state;
    for (i = 0; special[i] != NULL; i++) {
        memset(&ss, 0, sizeof(ss));
        assert_int_equal(
            evutil_parse_sockaddr_port(special[i], (struct sockaddr *)&ss, &(int){sizeof(ss)}), 0);
        if (!httpc_address_is_special((struct sockaddr *)&ss))
            fail_msg("%s not refused", special[i]);
    }
    for (i = 0; ordinary[i] != NULL; i++) {
        memset(&ss, 0, sizeof(ss));
        assert_int_equal(
            evutil_parse_sockaddr_port(ordinary[i], (struct sockaddr *)&ss, &(int){sizeof(ss)}), 0);
        if (httpc_address_is_special((struct sockaddr *)&ss))
            fail_msg("%s refused", ordinary[i]);
    }
}

static void test_keepalive_reuses_one_connection(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    int i;
    for (i = 0; i < 5; i++) {
        result_t res = {0};
        opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
        start(fx, &o, &res);
        assert_true(run_until(fx, &res.done, 1, 5000));
        assert_int_equal(res.result, HTTPC_OK);
        result_clear(&res);
    }
    assert_int_equal(fx->good.accepted, 1);
    assert_int_equal(httpc_connections_opened(fx->c), 1);
    assert_int_equal(httpc_idle_connections(fx->c), 1);
    /* a different TLS setting is a different pool key */
    {
        result_t res = {0};
        opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
        o.verify = 0;
        start(fx, &o, &res);
        assert_true(run_until(fx, &res.done, 1, 5000));
        assert_int_equal(res.result, HTTPC_OK);
        assert_int_equal(fx->good.accepted, 2);
        result_clear(&res);
    }
}

static void test_idle_closed_by_server_is_dropped(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t r1 = {0}, r2 = {0};
    evhttp_set_timeout(fx->good.http, 1); /* the server drops idle connections after 1 s */
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    start(fx, &o, &r1);
    assert_true(run_until(fx, &r1.done, 1, 5000));
    assert_int_equal(r1.result, HTTPC_OK);
    assert_int_equal(httpc_idle_connections(fx->c), 1);
    run_for(fx, 1600);
    /* the close was noticed while idle: the connection left the pool */
    assert_int_equal(httpc_idle_connections(fx->c), 0);
    start(fx, &o, &r2);
    assert_true(run_until(fx, &r2.done, 1, 5000));
    assert_int_equal(r2.result, HTTPC_OK);
    assert_int_equal(fx->good.accepted, 2);
    result_clear(&r1);
    result_clear(&r2);
}

static void test_ipv6_literal(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128], expect_host[64];
    result_t res = {0};
    http_server v6;
    struct evhttp_bound_socket *sock;
    memset(&v6, 0, sizeof(v6));
    v6.http = evhttp_new(fx->base);
    assert_non_null(v6.http);
    v6.ctx = server_ctx(g_cert1, g_key1);
    evhttp_set_bevcb(v6.http, server_bevcb, &v6);
    evhttp_set_gencb(v6.http, server_gencb, &v6);
    sock = evhttp_bind_socket_with_handle(v6.http, "::1", 0);
    if (sock == NULL) {
        http_server_stop(&v6);
        skip(); /* no IPv6 loopback here */
    }
    {
        struct sockaddr_in6 sin6;
        socklen_t len = sizeof(sin6);
        assert_int_equal(
            getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin6, &len), 0);
        v6.port = ntohs(sin6.sin6_port);
    }
    httpc_request_init(&o);
    snprintf(url, sizeof(url), "https://[::1]:%d/echo", v6.port);
    o.url = url;
    o.ca_file = g_ca1; /* the certificate has IP:::1 */
    start(fx, &o, &res);
    assert_true(run_until(fx, &res.done, 1, 5000));
    assert_int_equal(res.result, HTTPC_OK);
    snprintf(expect_host, sizeof(expect_host), "[::1]:%d", v6.port);
    assert_string_equal(res.hdr[0], expect_host);
    result_clear(&res);
    httpc_free(fx->c); /* close the client side before the server goes */
    fx->c = NULL;
    http_server_stop(&v6);
}

static void test_connection_close_not_reused(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    int i;
    for (i = 0; i < 2; i++) {
        result_t res = {0};
        opts_for(&o, url, sizeof(url), fx->good.port, "/close");
        start(fx, &o, &res);
        assert_true(run_until(fx, &res.done, 1, 5000));
        assert_int_equal(res.result, HTTPC_OK);
        assert_string_equal(res.body, "bye");
        result_clear(&res);
    }
    assert_int_equal(fx->good.accepted, 2);
    assert_int_equal(httpc_idle_connections(fx->c), 0);
}

static void test_retry_get_on_dropped_keepalive(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t r1 = {0}, r2 = {0};
    raw_server_start(fx->base, &fx->raw, RAW_DROP_SECOND);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/");
    start(fx, &o, &r1);
    assert_true(run_until(fx, &r1.done, 1, 5000));
    assert_int_equal(r1.result, HTTPC_OK);
    assert_string_equal(r1.body, "conn 1");
    /* the pooled connection is dropped when the 2nd request arrives: the
     * GET is retried once on a new connection */
    start(fx, &o, &r2);
    assert_true(run_until(fx, &r2.done, 1, 5000));
    assert_int_equal(r2.result, HTTPC_OK);
    assert_string_equal(r2.body, "conn 2");
    assert_int_equal(fx->raw.accepted, 2);
    assert_int_equal(httpc_connections_opened(fx->c), 2);
    result_clear(&r1);
    result_clear(&r2);
}

static void test_no_retry_for_post(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t r1 = {0}, r2 = {0};
    raw_server_start(fx->base, &fx->raw, RAW_DROP_SECOND);
    opts_for(&o, url, sizeof(url), fx->raw.port, "/");
    start(fx, &o, &r1);
    assert_true(run_until(fx, &r1.done, 1, 5000));
    assert_int_equal(r1.result, HTTPC_OK);
    o.method = "POST";
    o.body = "{}";
    o.body_len = 2;
    start(fx, &o, &r2);
    assert_true(run_until(fx, &r2.done, 1, 5000));
    assert_int_equal(r2.result, HTTPC_ERR_CONNECT);
    assert_non_null(strstr(r2.error, "closed before the response"));
    assert_int_equal(fx->raw.accepted, 1);
    result_clear(&r1);
    result_clear(&r2);
}

static void test_free_cancels_pending(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t slow = {0}, queued = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/slow");
    start(fx, &o, &slow);
    run_for(fx, 150); /* connected, request sent, no answer */
    assert_int_equal(slow.calls, 0);
    assert_int_equal(fx->good.accepted, 1);
    start(fx, &o, &queued); /* not even connected yet */
    httpc_free(fx->c);
    fx->c = NULL;
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.result, HTTPC_ERR_INTERNAL);
    assert_string_equal(slow.error, "cancelled");
    assert_int_equal(queued.calls, 1);
    assert_int_equal(queued.result, HTTPC_ERR_INTERNAL);
    assert_string_equal(queued.error, "cancelled");
    run_for(fx, 50); /* server side sees the close; nothing may call back */
    assert_int_equal(slow.calls, 1);
    assert_int_equal(queued.calls, 1);
    result_clear(&slow);
    result_clear(&queued);
}

static void test_free_from_callback(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    char url[128];
    result_t fast = {0}, slow = {0};
    opts_for(&o, url, sizeof(url), fx->good.port, "/slow");
    start(fx, &o, &slow);
    opts_for(&o, url, sizeof(url), fx->good.port, "/echo");
    fast.free_client = &fx->c;
    start(fx, &o, &fast);
    assert_true(run_until(fx, &fast.done, 1, 5000));
    assert_int_equal(fast.result, HTTPC_OK);
    assert_null(fx->c);
    assert_int_equal(slow.calls, 1);
    assert_string_equal(slow.error, "cancelled");
    result_clear(&fast);
    result_clear(&slow);
}

#define N_CONCURRENT 50

static void test_concurrent_requests(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    static char urls[N_CONCURRENT][128];
    static result_t res[N_CONCURRENT];
    int done = 0, i;
    char expect[160];
    memset(res, 0, sizeof(res));
    for (i = 0; i < N_CONCURRENT; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/echo?i=%d", i);
        opts_for(&o, urls[i], sizeof(urls[i]), fx->good.port, path);
        res[i].counter = &done;
        assert_int_equal(start(fx, &o, &res[i]), 0);
    }
    assert_true(run_until(fx, &done, N_CONCURRENT, 20000));
    for (i = 0; i < N_CONCURRENT; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].result, HTTPC_OK);
        snprintf(expect, sizeof(expect), "GET /echo?i=%d\n", i);
        assert_string_equal(res[i].body, expect);
        result_clear(&res[i]);
    }
    assert_true(httpc_idle_connections(fx->c) <= 4);
    assert_int_equal(httpc_connections_opened(fx->c), fx->good.accepted);
}

static void test_bad_requests_fail_async(void **state)
{
    fixture *fx = *state;
    httpc_request_opts o;
    const char *bad_hdr[] = {"X-Evil", "a\r\nInjected: 1", NULL};
    const char *host_hdr[] = {"Host", "elsewhere", NULL};
    result_t a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    int done;
    httpc_request_init(&o);
    o.url = "ftp://127.0.0.1/x";
    assert_int_equal(start(fx, &o, &a), -1);
    o.url = "not a url";
    assert_int_equal(start(fx, &o, &b), -1);
    o.url = "https://127.0.0.1:1/x";
    o.headers = bad_hdr;
    assert_int_equal(start(fx, &o, &c), -1);
    o.headers = host_hdr;
    assert_int_equal(start(fx, &o, &d), -1);
    o.headers = NULL;
    o.method = "BREW";
    assert_int_equal(start(fx, &o, &e), -1);
    assert_int_equal(a.calls + b.calls + c.calls + d.calls + e.calls, 0);
    run_for(fx, 50);
    done = a.calls + b.calls + c.calls + d.calls + e.calls;
    assert_int_equal(done, 5);
    assert_int_equal(a.result, HTTPC_ERR_INTERNAL);
    assert_int_equal(b.result, HTTPC_ERR_INTERNAL);
    assert_int_equal(c.result, HTTPC_ERR_INTERNAL);
    assert_int_equal(d.result, HTTPC_ERR_INTERNAL);
    assert_int_equal(e.result, HTTPC_ERR_INTERNAL);
    assert_false(a.reentrant || b.reentrant || c.reentrant || d.reentrant || e.reentrant);
    result_clear(&a);
    result_clear(&b);
    result_clear(&c);
    result_clear(&d);
    result_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verified_by_name_with_sni, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_ca_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_store_rejects_dev_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname_mismatch_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_off_accepts_wrong_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ca_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_to_plain_server_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_http_only_when_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_addresses_refused, setup, teardown),
        cmocka_unit_test(test_special_address_classes),
        cmocka_unit_test_setup_teardown(test_unresolvable_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_during_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_waiting_for_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_declared_fails_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_until_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_until_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_is_protocol_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuses_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_closed_by_server_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_get_on_dropped_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_retry_for_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_fail_async, setup, teardown),
    };
    /* as in repod's main(): a peer closing a TLS socket must not kill us */
    signal(SIGPIPE, SIG_IGN);
    /* TEST_FILTER=pattern runs only the matching tests (while debugging). */
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
