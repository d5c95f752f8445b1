/*
 * httpc-internal.h - what the files of the HTTPS client share: limits, the
 * client, connection, request and TLS-context structs, and the functions
 * one file calls in another.
 *
 *   httpc.c       public API, request life cycle, deadlines, size caps,
 *                 response delivery and error classification
 *   httpc_conn.c  TLS contexts and verification, connections, the pool
 *   httpc_opts.c  checking and copying httpc_request_opts into a request
 *
 * Not part of the public API: only src/core/httpc*.c include it.
 * Everything here runs on the client's event_base thread only.
 */
#ifndef REPOD_HTTPC_INTERNAL_H
#define REPOD_HTTPC_INTERNAL_H

#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "httpc.h"

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
    int destroying;        /* inside httpc_conn_destroy */
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
    int refuse_special;                        /* check addresses before connecting */
    struct evdns_getaddrinfo_request *dns_req; /* that check's lookup in flight */
    char **headers;                            /* NULL-terminated name, value pairs */
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

/* ---- httpc_conn.c ------------------------------------------------------ */

/* Makes the client's work event run (frees dead connections, delivers
 * finished requests) on the next loop iteration. */
void httpc_work_schedule(httpc *c);

/* Writes the last real TLS error of the OpenSSL queue (or of bev's own list
 * when bev is not NULL) into buf of size bytes; "" when there is none.
 * Consumes the queue. */
void httpc_ssl_error_text(struct bufferevent *bev, char *buf, size_t size);

/* Frees conn now, with its evhttp connection, bufferevent, SSL and any
 * evhttp request still queued on it (a request still attached is detached,
 * its ereq/conn cleared).  Only from httpc's own event callbacks or
 * httpc_free, never from inside an evhttp callback. */
void httpc_conn_destroy(httpc_conn *conn);

/* Marks a connection with no request in flight dead; the work event frees
 * it.  Safe from inside evhttp callbacks. */
void httpc_conn_discard(httpc_conn *conn);

/* Puts a connection whose request completed back into the pool (idle,
 * most recently used first), or discards it when it is closed, the client
 * is closing or the pool is full. */
void httpc_conn_release(httpc_conn *conn);

/* An idle, still open connection for key, now CONN_BUSY; NULL if none. */
httpc_conn *httpc_conn_checkout(httpc *c, const char *key);

/* Opens a new CONN_BUSY connection for r (the TCP connect starts with the
 * first request).  HTTPC_OK and *out (owned by c->conns), or an error
 * (HTTPC_ERR_TLS for a TLS context that cannot be made) with text in err. */
httpc_result httpc_conn_open(httpc *c, httpc_req *r, httpc_conn **out, char *err, size_t size);

/* Idle connections in the pool for key, or in all when key is NULL. */
size_t httpc_idle_count(const httpc *c, const char *key);

/* ---- httpc_addr.c ------------------------------------------------------ */

/* Resolves r->connect_host (r->refuse_special set) and checks every
 * address, then calls done(r, HTTPC_OK, "") with r->connect_host replaced
 * by the numeric address to connect to, or done(r, HTTPC_ERR_REFUSED or
 * HTTPC_ERR_CONNECT, why).  done may run before this returns; it is not
 * called after httpc_addr_cancel. */
typedef void (*httpc_addr_done)(httpc_req *r, httpc_result rc, const char *why);
void httpc_addr_check(httpc_req *r, httpc_addr_done done);

/* Cancels r's lookup in flight, if any (its callback then does nothing). */
void httpc_addr_cancel(httpc_req *r);

/* ---- httpc_opts.c ------------------------------------------------------ */

/* Checks opts and copies them into r (method, URL parts, headers, body,
 * limits, TLS settings, pool key); r owns every copy (freed with r).
 * HTTPC_OK, or an error with text in err; r may then be partly filled. */
httpc_result httpc_req_setup(httpc_req *r, const httpc_request_opts *opts, char *err, size_t size);

#endif /* REPOD_HTTPC_INTERNAL_H */
