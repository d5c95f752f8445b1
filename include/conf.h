/*
 * conf.h - the server configuration (SPEC section 10).
 *
 * One JSON file, parsed by a table of (key, type, bounds, default, target
 * field) rows in conf.c.  Every key has a default, so a file that names only
 * the TLS files and data_dir is complete.  Unknown keys (at any depth,
 * "remotes" and "registries" entries included) and bad values fail with
 * "FILE: KEY: REASON"; every problem of a file is reported, not only the
 * first.  Relative paths in the file are resolved against the folder that
 * holds the file.  conf_load also opens the files the config names (TLS
 * certificate and key, which must match, CA bundles, password and key
 * files); conf_load_string only parses.
 */
#ifndef REPOD_CONF_H
#define REPOD_CONF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

/* The default of tls.ciphers: ECDHE key exchange with AEAD suites only
 * (Mozilla "intermediate" without DHE), ECDSA before RSA. */
#define CONF_TLS_CIPHERS_DEFAULT                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

typedef struct {
    int64_t ttl_s;              /* default 300 */
    int stale_while_revalidate; /* default 1 */
    int64_t stale_if_error_s;   /* default 604800 */
    int64_t negative_ttl_s;     /* default 30 */
    int64_t timeout_ms;         /* default 5000 */
    int64_t max_response_bytes; /* default 16 MiB */
    int64_t sync_page_size;     /* plugins asked for in one catalog page; default 1000 */
} conf_cache;

typedef struct {
    char *path;                 /* the file this came from, as given to conf_load */
    char *listen_host;          /* "127.0.0.1" from listen "127.0.0.1:8443" */
    int listen_port;            /* 0 = pick a free port */
    char *metrics_listen;       /* "" = serve /metrics on the API port */
    char *metrics_host;         /* host part of metrics_listen; NULL when it is "" */
    int metrics_port;           /* port part of metrics_listen; 0 when it is "" */
    char *tls_cert;             /* required */
    char *tls_key;              /* required */
    char *tls_client_ca;        /* NULL = no mutual TLS */
    char *tls_ciphers;          /* TLS 1.2 suites, OpenSSL syntax; CONF_TLS_CIPHERS_DEFAULT */
    char *tls_min_version;      /* "TLS1.2" (default) or "TLS1.3" */
    char *data_dir;             /* default "data" (relative to the config file) */
    char *pid_file;             /* default "<data_dir>/repod.pid"; NULL ("") = none */
    char *log_level;            /* default "info" */
    int workers;                /* 0 = number of cores; 1..256 */
    int64_t max_body_bytes;     /* limits.max_body_bytes, default 1 MiB */
    int64_t max_header_bytes;   /* limits.max_header_bytes, default 16 KiB */
    int64_t request_timeout_s;  /* limits.request_timeout_s, default 30 */
    int64_t max_connections;    /* limits.max_connections (all workers), default 10000 */
    int64_t shutdown_timeout_s; /* limits.shutdown_timeout_s, default 10 */
    int64_t shutdown_grace_ms;  /* limits.shutdown_grace_ms, default 0 */
    char *tokens_file;          /* auth.tokens_file, default "<data_dir>/tokens.json" */
    int anonymous_read;         /* auth.anonymous_read, default 1 */
    char **public_domains;      /* auth.public_domains, NULL-terminated */
    size_t public_domains_count;
    char *local_repository_name;   /* local_repository.name, default "Local" */
    int verify_on_register;        /* registry.verify_on_register, default 0 */
    json_t *registry_default_urls; /* registry.default_urls: {"HARBOR": "harbor.example.com", ...}
                                      (owned); {} */
    char **registry_allowed_hosts; /* registry.allowed_hosts, NULL-terminated; [] */
    size_t registry_allowed_hosts_count;
    int64_t registry_negative_cache_ms; /* registry.negative_cache_ms, default 5000 */
    conf_cache remote_defaults;
    json_t *registries;            /* "registries" object as given (owned); {} by default */
    int ui_enabled;                /* ui.enabled: the web console at /ui/; default 1 */
    int64_t store_block_cache_mb;  /* store.block_cache_mb, default 8 */
    int64_t store_write_buffer_mb; /* store.write_buffer_mb, default 64 */
    json_t *remotes; /* "remotes": array of remote repositories the config manages (owned;
                        checked; upstream.ca_file resolved to an absolute path); [] */
} repod_conf;

/* Loads and validates path, and checks the files it names.  On success *out
 * is a new conf (free with conf_free).  On failure returns
 * RD_ERR_INVALID_PARAMETER and err->message is the first problem,
 * "PATH: KEY: REASON" (or "PATH: REASON" for unreadable/invalid JSON). */
rd_status conf_load(const char *path, repod_conf **out, rd_error *err);

/* conf_load that also hands back every problem: when problems is not NULL,
 * *problems is a new array of "PATH: KEY: REASON" strings (empty on
 * success).  The one validation of serve, --check-config and SIGHUP. */
rd_status conf_load_report(const char *path, repod_conf **out, json_t **problems, rd_error *err);

/* The keys and values of the file at path, checked like conf_load but
 * without opening the files it names: for commands that only need a
 * setting (`repod token` needs auth.tokens_file, not the TLS key). */
rd_status conf_load_values(const char *path, repod_conf **out, rd_error *err);

/* Same as conf_load but from a JSON text, and without opening the files it
 * names; path is used for messages and for resolving relative paths (its
 * folder). */
rd_status conf_load_string(const char *text, const char *path, repod_conf **out, rd_error *err);

void conf_free(repod_conf *conf);

/* Prints every key with its default and meaning to f (for --help). */
void conf_print_keys(FILE *f);

#endif
