/*
 * tls.c - server-side TLS contexts.
 *
 * Policy: TLS 1.2 and 1.3 only (tls.min_version may raise the floor to 1.3);
 * TLS 1.2 suites from tls.ciphers (default: ECDHE with AES-GCM or
 * ChaCha20-Poly1305, i.e. Mozilla "intermediate" without DHE); TLS 1.3 keeps
 * OpenSSL's default suites (all AEAD); the server's order wins; no
 * compression; no renegotiation.  docs/tls.md describes how to change it.
 */
#include "tls.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct tls_server {
    pthread_mutex_t lock;
    SSL_CTX *ctx; /* guarded by lock; SSL objects hold their own reference */
};

/* Logs the OpenSSL error queue (operators see it; clients never do). */
static void log_openssl(const char *what)
{
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        LOG_ERROR("tls: %s: %s", what, buf);
    }
}

/* Builds a context from conf's tls.* keys. */
static rd_status make_ctx(const repod_conf *conf, SSL_CTX **out, rd_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *client_ca = conf->tls_client_ca;
    int min_version = conf->tls_min_version != NULL && strcmp(conf->tls_min_version, "TLS1.3") == 0
                          ? TLS1_3_VERSION
                          : TLS1_2_VERSION;
    rd_status rc = RD_OK;
    if (ctx == NULL) {
        log_openssl("SSL_CTX_new");
        return rd_fail(err, RD_ERR_INTERNAL, "cannot create a TLS context");
    }
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
        SSL_CTX_set_cipher_list(ctx, conf->tls_ciphers != NULL ? conf->tls_ciphers
                                                               : CONF_TLS_CIPHERS_DEFAULT) != 1) {
        log_openssl("policy");
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "tls.ciphers: no usable cipher in the list");
        goto done;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert) != 1) {
        log_openssl("certificate");
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "tls.cert: cannot load certificate %s",
                     conf->tls_cert);
        goto done;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        log_openssl("private key");
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER,
                     "tls.key: cannot load private key %s (or it does not match tls.cert)",
                     conf->tls_key);
        goto done;
    }
    if (client_ca != NULL && client_ca[0] != '\0') {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1 || names == NULL) {
            if (names != NULL)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            log_openssl("client CA");
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "tls.client_ca: cannot load %s", client_ca);
            goto done;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
done:
    if (rc != RD_OK) {
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    *out = ctx;
    return rc;
}

rd_status tls_server_create(const repod_conf *conf, tls_server **out, rd_error *err)
{
    tls_server *t = calloc(1, sizeof(*t));
    rd_status rc;
    *out = NULL;
    if (t == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    pthread_mutex_init(&t->lock, NULL);
    rc = make_ctx(conf, &t->ctx, err);
    if (rc != RD_OK) {
        tls_server_free(t);
        return rc;
    }
    *out = t;
    return RD_OK;
}

rd_status tls_server_reload(tls_server *t, const repod_conf *conf, rd_error *err)
{
    SSL_CTX *fresh = NULL, *old;
    rd_status rc = make_ctx(conf, &fresh, err);
    if (rc != RD_OK)
        return rc;
    pthread_mutex_lock(&t->lock);
    old = t->ctx;
    t->ctx = fresh;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* connections still using it keep their reference */
    return RD_OK;
}

SSL *tls_server_new_ssl(tls_server *t)
{
    SSL *ssl;
    pthread_mutex_lock(&t->lock);
    ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (ssl == NULL)
        log_openssl("SSL_new");
    return ssl;
}

void tls_server_free(tls_server *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
