/*
 * server.h - the HTTPS edge: listening sockets, worker threads (one
 * event_base + evhttp each, sharing one listening socket), TLS on every
 * connection, limits, operational endpoints, and the hand-off of API calls to
 * api_dispatch().
 */
#ifndef REPOD_SERVER_H
#define REPOD_SERVER_H

#include "app.h"
#include "status.h"

typedef struct server server;

/* Binds the listening sockets (conf->listen, conf->metrics_listen; port 0
 * picks a free port) and loads TLS.  An address another process listens on
 * fails with "listen HOST:PORT: address in use (...)".  Nothing runs until
 * server_start().  a is borrowed and must outlive the server. */
rd_status server_create(app *a, server **out, rd_error *err);

/* The port actually bound. */
int server_port(const server *srv);

/* The plain-HTTP port of metrics_listen actually bound (0 when not set). */
int server_metrics_port(const server *srv);

/* Starts conf->workers threads that serve until server_stop(). */
rd_status server_start(server *srv, rd_error *err);

/* Graceful stop.  First the drain: for limits.shutdown_grace_ms the server
 * keeps accepting and answering while /readyz answers 503 "draining" and
 * every answer carries Connection: close (a load balancer takes it out of
 * rotation).  Then every worker stops accepting; requests in flight get up to
 * limits.shutdown_timeout_s to finish.  If some are still waiting then,
 * cancel_waits(arg) (may be NULL) is called to end their waits (the
 * upstream engine answers them with errors) and they get 2 s more.  Then
 * the loops end (closing idle connections) and the threads are joined.
 * Call from the main thread. */
void server_stop(server *srv, void (*cancel_waits)(void *), void *arg);

/* Rebuilds the TLS context from conf's tls.* keys (SIGHUP, with a freshly
 * loaded configuration whose tls.cert / tls.key may name other files); conf
 * is only read during the call.  On failure the previous context stays in
 * force and err says why. */
rd_status server_reload_tls(server *srv, const repod_conf *conf, rd_error *err);

void server_free(server *srv);

#endif
