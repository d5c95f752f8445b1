/*
 * conf_files.c - the part of loading a configuration that opens files:
 * the TLS certificate chain and private key are loaded with OpenSSL and must
 * belong together, and tls.client_ca must hold certificates.  (Whether each
 * named file can be read at all is checked as its value is stored.)
 */
#include "conf-internal.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* The reason of the last OpenSSL error (the queue is emptied). */
static void openssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, n, "unknown error");
    else
        ERR_error_string_n(e, buf, n);
    ERR_clear_error();
}

/* Loads tls.cert, tls.key and tls.client_ca as the server will; problems
 * go into ctx.  Files that cannot be read were reported already. */
void conf_check_tls(conf_ctx *ctx)
{
    const repod_conf *c = ctx->conf;
    SSL_CTX *ssl = NULL;
    char reason[REASON_MAX];

    if (c->tls_cert == NULL || c->tls_key == NULL || conf_file_readable(c->tls_cert) != 0 ||
        conf_file_readable(c->tls_key) != 0)
        goto client_ca;
    ssl = SSL_CTX_new(TLS_server_method());
    if (ssl == NULL) {
        conf_oom(ctx);
        goto done;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, c->tls_cert) != 1) {
        openssl_reason(reason, sizeof(reason));
        conf_fail(ctx, "tls.cert", "not a PEM certificate chain (%s)", reason);
    } else if (SSL_CTX_use_PrivateKey_file(ssl, c->tls_key, SSL_FILETYPE_PEM) != 1) {
        int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        openssl_reason(reason, sizeof(reason));
        if (mismatch)
            conf_fail(ctx, "tls.key", "does not match the certificate in tls.cert");
        else
            conf_fail(ctx, "tls.key", "not a PEM private key (%s)", reason);
    } else if (SSL_CTX_check_private_key(ssl) != 1) {
        ERR_clear_error();
        conf_fail(ctx, "tls.key", "does not match the certificate in tls.cert");
    }
client_ca:
    if (c->tls_client_ca != NULL && conf_file_readable(c->tls_client_ca) == 0) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->tls_client_ca);
        if (names == NULL) {
            ERR_clear_error();
            conf_fail(ctx, "tls.client_ca", "holds no PEM certificate");
        } else {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
        }
    }
done:
    SSL_CTX_free(ssl);
}
