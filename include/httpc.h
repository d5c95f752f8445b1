/*
 * httpc.h - asynchronous HTTPS client on a libevent event_base, used to talk
 * to upstream repod servers and to container registries.
 *
 * One httpc per event_base (worker thread); it is not thread-safe and must
 * only be used from its base's thread.  Connections are kept alive and reused
 * per (host, port, TLS settings).  TLS verification (chain + hostname, SNI) is
 * on unless the request says otherwise.  Every request has a deadline
 * (connect + full response) and a response size cap; whatever happens, the
 * callback is called exactly once (never from inside httpc_request()).
 * The process must ignore SIGPIPE (OpenSSL writes to sockets with write(2);
 * repod's main() does this).
 */
#ifndef REPOD_HTTPC_H
#define REPOD_HTTPC_H

#include <event2/event.h>
#include <stddef.h>

typedef struct httpc httpc;

typedef enum {
    HTTPC_OK = 0,        /* a complete HTTP response arrived (any status) */
    HTTPC_ERR_CONNECT,   /* DNS, TCP connect or connection reset */
    HTTPC_ERR_TLS,       /* handshake or certificate verification failed */
    HTTPC_ERR_TIMEOUT,   /* deadline passed */
    HTTPC_ERR_TOO_LARGE, /* response body over max_response_bytes */
    HTTPC_ERR_PROTOCOL,  /* malformed HTTP */
    HTTPC_ERR_REFUSED,   /* refuse_special_addresses: a special address, nothing connected */
    HTTPC_ERR_INTERNAL   /* out of memory, bad URL, ... */
} httpc_result;

typedef struct {
    /* "GET" (default), "HEAD", "POST", "PUT", "DELETE", "PATCH" or "OPTIONS". */
    const char *method;
    /* "https://host:port/path?query"; http:// only when allow_plain (tests). */
    const char *url;
    /* NULL-terminated name, value pairs (borrowed, copied), may be NULL.
     * Host, Content-Length, Connection and Transfer-Encoding are set by
     * httpc and refused here; User-Agent, Accept and Content-Type replace
     * httpc's defaults. */
    const char *const *headers;
    const char *body; /* request body (borrowed, copied), may be NULL */
    size_t body_len;
    int timeout_ms;            /* connect + response deadline, default 5000 */
    size_t max_response_bytes; /* default 16 MiB */
    const char *ca_file;       /* PEM bundle to verify against; NULL = system trust store */
    /* 1 (set by httpc_request_init) = verify chain + host name; 0 = accept any
     * certificate (labs only). */
    int verify;
    int allow_plain; /* permit http:// URLs */
    /* Addition: when not NULL, the TCP connection goes to this host or IP
     * literal instead of the URL's host; SNI, certificate name checks and
     * the Host header still use the URL's host (like curl --connect-to).
     * Borrowed.  Used by tests; also useful to pin an upstream address. */
    const char *connect_host;
    /* 1 = resolve the connect host first and refuse (HTTPC_ERR_REFUSED,
     * nothing connected) when any of its addresses is loopback, link-local
     * (169.254.0.0/16, fe80::/10), unspecified (0.0.0.0, ::) or multicast;
     * otherwise connect to exactly the address checked (no second lookup,
     * so DNS rebinding cannot swap it).  0 (default) = no check. */
    int refuse_special_addresses;
} httpc_request_opts;

typedef struct {
    httpc_result result;
    int status; /* HTTP status when result == HTTPC_OK */
    /* Short description when result != HTTPC_OK, "" on success (borrowed,
     * valid during the callback). */
    const char *error;
    /* Response body, NUL-terminated, "" on failure (borrowed, valid during
     * the callback). */
    const char *body;
    size_t body_len;
    /* Response header lookup (case-insensitive), valid during the callback. */
    const char *(*header)(const void *resp_ctx, const char *name);
    const void *resp_ctx;
} httpc_response;

typedef void (*httpc_cb)(const httpc_response *resp, void *arg);

/* Sets opts to defaults: GET, verify on, timeout 5000 ms, 16 MiB cap. */
void httpc_request_init(httpc_request_opts *opts);

/* A client bound to base (borrowed; must outlive the client). */
httpc *httpc_new(struct event_base *base);

/* Cancels every pending request (their callbacks are called with
 * HTTPC_ERR_INTERNAL, "cancelled", from inside httpc_free) and frees the
 * client and all its connections.  A request that had already finished but
 * whose callback had not run yet gets its real result.  May be called from
 * inside an httpc callback: the client is then freed as soon as that
 * callback returns (c must not be used after the call either way). */
void httpc_free(httpc *c);

/* Starts a request; cb(resp, arg) is called exactly once, later, from the
 * event loop.  opts and everything it points to are copied.  Returns 0, or
 * -1 if the request failed at once (bad URL or options, CA file unreadable,
 * client being freed, ...): cb is still called, asynchronously, with the
 * reason.  Only when even the request record cannot be allocated (out of
 * memory) is -1 returned without a callback. */
int httpc_request(httpc *c, const httpc_request_opts *opts, httpc_cb cb, void *arg);

/* Looks up a header of resp (convenience wrapper); NULL when absent. */
const char *httpc_response_header(const httpc_response *resp, const char *name);

/* 1 when sa (AF_INET / AF_INET6) is loopback, link-local, unspecified or
 * multicast (IPv4-mapped IPv6 judged as IPv4): what refuse_special_addresses
 * refuses.  Other families count as special. */
struct sockaddr;
int httpc_address_is_special(const struct sockaddr *sa);

/* Addition, for tests and metrics: how many connections c has opened so far
 * (a reused keep-alive connection is not counted again). */
unsigned long httpc_connections_opened(const httpc *c);

/* Addition, for tests and metrics: connections currently idle in the pool. */
size_t httpc_idle_connections(const httpc *c);

#endif
