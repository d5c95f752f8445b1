/*
 * tls.h - the server's TLS context: TLS 1.2+ only, optional client
 * certificates, reloadable on SIGHUP.
 */
#ifndef REPOD_TLS_H
#define REPOD_TLS_H

#include <openssl/ssl.h>

#include "status.h"

typedef struct tls_server tls_server;

/* Loads cert (PEM chain), key and optional client_ca (NULL = no mutual TLS).
 * Fails with a message naming the file that could not be used. */
rd_status tls_server_create(const char *cert, const char *key, const char *client_ca,
                            tls_server **out, rd_error *err);

/* Re-reads the same files into a new context; on failure the old context
 * stays in force.  Safe to call while other threads use tls_server_new_ssl. */
rd_status tls_server_reload(tls_server *t, rd_error *err);

/* A new SSL object for one accepted connection (NULL on failure).  Thread-safe. */
SSL *tls_server_new_ssl(tls_server *t);

void tls_server_free(tls_server *t);

#endif
