/*
 * tls.h - the server's TLS context: TLS 1.2+ only (tls.min_version), TLS 1.2
 * limited to the tls.ciphers list (ECDHE + AEAD by default), server cipher
 * preference, no compression, no renegotiation, optional client
 * certificates; reloadable on SIGHUP from a freshly loaded configuration.
 */
#ifndef REPOD_TLS_H
#define REPOD_TLS_H

#include <openssl/ssl.h>

#include "conf.h"
#include "status.h"

typedef struct tls_server tls_server;

/* Builds the context from conf's tls.* keys: cert (PEM chain), key,
 * client_ca (NULL = no mutual TLS), ciphers, min_version.  conf is only
 * read during the call.  Fails with a message naming the key and file that
 * could not be used. */
rd_status tls_server_create(const repod_conf *conf, tls_server **out, rd_error *err);

/* Builds a new context from conf's tls.* keys (which may name other files
 * than the ones in force) and swaps it in; on failure the old context stays
 * in force and err says why.  Safe to call while other threads use
 * tls_server_new_ssl. */
rd_status tls_server_reload(tls_server *t, const repod_conf *conf, rd_error *err);

/* A new SSL object for one accepted connection (NULL on failure).  Thread-safe. */
SSL *tls_server_new_ssl(tls_server *t);

void tls_server_free(tls_server *t);

#endif
