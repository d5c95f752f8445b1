/*
 * listener.h - the listening sockets of the edge (edge-internal; used by
 * server.c): one socket per address and process, shared by the workers
 * through dup()s.
 */
#ifndef REPOD_LISTENER_H
#define REPOD_LISTENER_H

#include <event2/util.h>

#include "status.h"

/* Binds and listens on host:port (port 0 picks a free one), non-blocking,
 * close-on-exec, TCP_NODELAY, SO_REUSEADDR but never SO_REUSEPORT: the bind
 * fails when any other socket listens there.  what names the address in
 * messages ("listen", "metrics_listen"): "WHAT HOST:PORT: address in use
 * (another process listens there)" or "WHAT HOST:PORT: cannot listen: ...".
 * Returns the new fd (the caller's to close) or -1 with err set. */
evutil_socket_t edge_listen(const char *what, const char *host, int port, rd_error *err);

/* The local port fd is bound to, or -1. */
int edge_bound_port(evutil_socket_t fd);

#endif
