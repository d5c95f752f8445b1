/*
 * server.h - the HTTPS edge: listening sockets, worker threads (one
 * event_base + evhttp each, sharing the port with SO_REUSEPORT), TLS on every
 * connection, limits, operational endpoints, and the hand-off of API calls to
 * api_dispatch().
 */
#ifndef REPOD_SERVER_H
#define REPOD_SERVER_H

#include "app.h"
#include "status.h"

typedef struct server server;

/* Binds the listening sockets (conf->listen; port 0 picks a free port) and
 * loads TLS.  a is borrowed and must outlive the server. */
rd_status server_create(app *a, server **out, rd_error *err);

/* The port actually bound. */
int server_port(const server *srv);

/* The plain-HTTP port of metrics_listen actually bound (0 when not set). */
int server_metrics_port(const server *srv);

/* Starts conf->workers threads that serve until server_stop(). */
rd_status server_start(server *srv, rd_error *err);

/* Graceful stop: every worker stops accepting, waits for in-flight requests
 * (at most limits.shutdown_timeout_s), closes its connections and exits;
 * returns when all threads have been joined.  Call from the main thread. */
void server_stop(server *srv);

/* Reloads the TLS certificate and key (SIGHUP); the old ones stay on failure. */
rd_status server_reload_tls(server *srv, rd_error *err);

void server_free(server *srv);

#endif
