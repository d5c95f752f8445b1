/*
 * conf.c - loads and validates the server configuration (SPEC section 10).
 *
 * The configuration is one strict JSON file.  Every key is one row of
 * conf_rows[] (like Redis' standardConfig table): dotted name, type, flags,
 * bounds, default, target field in repod_conf and help text.  Loading is
 *
 *   1. parse the text (duplicate keys rejected);
 *   2. walk the objects by dotted name: each key must have a row, sections
 *      are descended into, every other value is checked and stored;
 *   3. fill the defaults of the rows not given (or fail on required ones);
 *   4. resolve workers = 0 to the number of online cores;
 *   5. (conf_load only) open the named files: each must be readable, and
 *      the TLS key must match the certificate (conf_files.c).
 *
 * Loading goes on after a problem, so that every problem of a file is
 * reported at once (conf_load_report).
 *
 * The free-form parts ("registries", "remotes", "registry.default_urls") are
 * stored as JSON copies after their own checks; registry and remote entries
 * are checked against smaller tables of their own (conf_registries.c).
 *
 * Relative paths are joined to the folder of the config file
 * ("conf/repod.json" + "../data" -> "conf/../data"); absolute ones are kept.
 *
 * Every problem is RD_ERR_INVALID_PARAMETER with a message "PATH: KEY: REASON"
 * (or "PATH: REASON" when the file cannot be read or parsed).
 *
 * Files: conf.c (the key table, load, free, conf_print_keys), conf_values.c
 * (checking and storing one value, host:port, paths), conf_registries.c
 * (the free-form parts), conf_files.c (the TLS files); shared declarations
 * in conf-internal.h.
 */
#include "conf-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ---------------------------------------------------------------------------
 * The key table
 * ------------------------------------------------------------------------- */

#define FIELD(f)     .off = offsetof(repod_conf, f), .size = sizeof(((repod_conf *)0)->f)
#define FIELD_OFF(f) offsetof(repod_conf, f)

#define ROW_SECTION(k, h)                                                                          \
    {                                                                                              \
        .key = (k), .type = CONF_SECTION, .off = CONF_NONE, .help = (h)                            \
    }
#define ROW_STRING(k, f, fl, d, ch, h)                                                             \
    {                                                                                              \
        .key = (k), .type = CONF_STRING, .flags = (fl), .def_str = (d), FIELD(f), .choices = (ch), \
        .help = (h)                                                                                \
    }
#define ROW_PATH(k, f, fl, d, dt, h)                                                               \
    {                                                                                              \
        .key = (k), .type = CONF_PATH, .flags = (fl), .def_str = (d), FIELD(f), .def_text = (dt),  \
        .help = (h)                                                                                \
    }
#define ROW_BOOL(k, f, d, h)                                                                       \
    {                                                                                              \
        .key = (k), .type = CONF_BOOL, .def_int = (d), FIELD(f), .help = (h)                       \
    }
#define ROW_INT(k, f, fl, d, lo, hi, h)                                                            \
    {                                                                                              \
        .key = (k), .type = CONF_INT, .flags = (fl), .def_int = (d), .min = (lo), .max = (hi),     \
        FIELD(f), .help = (h)                                                                      \
    }
#define ROW_HOSTPORT(k, f, fh, fp, fl, d, h)                                                       \
    {                                                                                              \
        .key = (k), .type = CONF_HOSTPORT, .flags = (fl), .def_str = (d), .off = (f),              \
        .size = sizeof(char *), .aux = FIELD_OFF(fh), .aux2 = FIELD_OFF(fp), .help = (h)           \
    }
#define ROW_STRLIST(k, f, fc, h)                                                                   \
    {                                                                                              \
        .key = (k), .type = CONF_STRLIST, FIELD(f), .aux = FIELD_OFF(fc), .help = (h)              \
    }
#define ROW_JSON(k, t, f, chk, h)                                                                  \
    {                                                                                              \
        .key = (k), .type = (t), FIELD(f), .check = (chk), .help = (h)                             \
    }

#define GIB (INT64_C(1) << 30)
#define MIB (INT64_C(1) << 20)

static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const tls_version_choices[] = {"TLS1.2", "TLS1.3", NULL};

/* Every key of the file.  A section row must come before its keys; data_dir
 * must come before auth.tokens_file (whose default lives under it). */
static const conf_row conf_rows[] = {
    ROW_HOSTPORT("listen", CONF_NONE, listen_host, listen_port, 0, "127.0.0.1:8443",
                 "address of the HTTPS API; port 0 picks a free port; IPv6 as [addr]:port"),
    ROW_HOSTPORT("metrics_listen", FIELD_OFF(metrics_listen), metrics_host, metrics_port,
                 CF_EMPTY_UNSET, "",
                 "separate address for /metrics; \"\" serves it on the API port"),
    ROW_SECTION("tls", "TLS of the API port"),
    ROW_PATH("tls.cert", tls_cert, CF_REQUIRED | CF_READABLE, NULL, NULL,
             "server certificate chain (PEM)"),
    ROW_PATH("tls.key", tls_key, CF_REQUIRED | CF_READABLE, NULL, NULL,
             "private key of tls.cert (PEM)"),
    ROW_PATH("tls.client_ca", tls_client_ca, CF_EMPTY_UNSET | CF_READABLE, NULL, NULL,
             "CA bundle for mutual TLS (clients must present a certificate); unset or \"\" = off"),
    {.key = "tls.ciphers",
     .type = CONF_STRING,
     .flags = CF_NONEMPTY,
     .def_str = CONF_TLS_CIPHERS_DEFAULT,
     FIELD(tls_ciphers),
     .def_text = "ECDHE+AEAD",
     .help = "TLS 1.2 cipher suites (OpenSSL cipher list); the default is ECDHE with AES-GCM "
             "or ChaCha20-Poly1305 only; TLS 1.3 suites are OpenSSL's defaults"},
    ROW_STRING("tls.min_version", tls_min_version, 0, "TLS1.2", tls_version_choices,
               "oldest TLS version accepted: TLS1.2 or TLS1.3"),
    ROW_PATH("data_dir", data_dir, 0, "data", NULL, "folder of the RocksDB store and tokens"),
    ROW_PATH("pid_file", pid_file, CF_IN_DATA_DIR | CF_EMPTY_UNSET, "repod.pid",
             "<data_dir>/repod.pid",
             "written once the server listens, removed on a clean stop; \"\" = none"),
    ROW_STRING("log_level", log_level, 0, "info", log_level_choices,
               "debug, info, warn or error (reloaded on SIGHUP)"),
    ROW_INT("workers", workers, CF_NPROC_ZERO, 0, 0, 256,
            "event-loop threads; 0 = one per online core"),
    ROW_SECTION("limits", "request and connection limits"),
    ROW_INT("limits.max_body_bytes", max_body_bytes, 0, MIB, 1024, GIB,
            "largest request body; larger ones get 413"),
    ROW_INT("limits.max_header_bytes", max_header_bytes, 0, 16384, 1024, MIB,
            "largest request header block"),
    ROW_INT("limits.request_timeout_s", request_timeout_s, 0, 30, 1, 3600,
            "time allowed to read a request and idle keep-alive time"),
    ROW_INT("limits.max_connections", max_connections, 0, 10000, 1, 1000000,
            "open client connections over all workers"),
    ROW_INT("limits.shutdown_timeout_s", shutdown_timeout_s, 0, 10, 0, 600,
            "how long SIGTERM waits for in-flight requests"),
    ROW_INT("limits.shutdown_grace_ms", shutdown_grace_ms, 0, 0, 0, 600000,
            "on SIGTERM, keep serving this long with /readyz answering 503 (so a load "
            "balancer takes the server out) before the listener closes"),
    ROW_SECTION("auth", "authentication"),
    ROW_PATH("auth.tokens_file", tokens_file, CF_IN_DATA_DIR, "tokens.json",
             "<data_dir>/tokens.json", "token hashes (managed by `repod token`)"),
    ROW_BOOL("auth.anonymous_read", anonymous_read, 1,
             "callers without a token may read remote-tier plugins"),
    ROW_STRLIST("auth.public_domains", public_domains, public_domains_count,
                "domains whose local plugins everyone may read"),
    ROW_SECTION("local_repository", "the local repository"),
    ROW_STRING("local_repository.name", local_repository_name, CF_NONEMPTY, "Local", NULL,
               "name of the local repository"),
    ROW_SECTION("registry", "container registry behaviour"),
    ROW_BOOL("registry.verify_on_register", verify_on_register, 0,
             "plugin register/update checks that the image exists in its registry"),
    ROW_JSON("registry.default_urls", CONF_OBJECT, registry_default_urls, conf_check_default_urls,
             "registry_type -> registry_url used when a plugin gives none "
             "(keys DOCKER_HUB, AWS_PRIVATE_ECR, HARBOR, GITHUB, GCP_PRIVATE_GCR)"),
    {.key = "registry.allowed_hosts",
     .type = CONF_STRLIST,
     FIELD(registry_allowed_hosts),
     .aux = FIELD_OFF(registry_allowed_hosts_count),
     .check = conf_check_allowed_hosts,
     .help = "registry hosts repod may connect to besides Docker Hub and `registries` keys: "
             "host[:port] or patterns where '*' is one DNS label (docs/registries.md)"},
    ROW_INT("registry.negative_cache_ms", registry_negative_cache_ms, 0, 5000, 0, 600000,
            "after a failed connect, lookups of that registry host fail at once this long"),
    ROW_SECTION("remote_defaults", "cache settings of remote repositories (docs/federation.md)"),
    ROW_INT("remote_defaults.ttl_s", remote_defaults.ttl_s, 0, 300, 0, 31536000,
            "age below which a cached catalog is served without asking upstream"),
    ROW_BOOL("remote_defaults.stale_while_revalidate", remote_defaults.stale_while_revalidate, 1,
             "serve a stale entry at once while one background refresh runs"),
    ROW_INT("remote_defaults.stale_if_error_s", remote_defaults.stale_if_error_s, 0, 604800, 0,
            31536000, "age up to which entries are served when the upstream fails"),
    ROW_INT("remote_defaults.negative_ttl_s", remote_defaults.negative_ttl_s, 0, 30, 0, 86400,
            "how long an upstream \"not found\" is remembered"),
    ROW_INT("remote_defaults.timeout_ms", remote_defaults.timeout_ms, 0, 5000, 100, 600000,
            "connect + response timeout of one upstream call"),
    ROW_INT("remote_defaults.max_response_bytes", remote_defaults.max_response_bytes, 0, 16 * MIB,
            1024, GIB, "larger upstream answers are rejected"),
    ROW_INT("remote_defaults.sync_page_size", remote_defaults.sync_page_size, 0, 1000, 1, 100000,
            "plugins asked for in one page of a catalog sync (query.page.limit)"),
    ROW_JSON("registries", CONF_OBJECT, registries, conf_check_registries,
             "registry host (as in registry_url) -> {api_url, ca_file, verify, username, "
             "password_file, aws_access_key_id, aws_secret_access_key_file, aws_region, "
             "service_account_key_file, "
             "timeout_ms}"),
    ROW_SECTION("store", "RocksDB memory (docs/read-model.md, \"Memory of the server\")"),
    ROW_INT("store.block_cache_mb", store_block_cache_mb, 0, 8, 1, 65536,
            "one LRU block cache for every column family, index and filter blocks included"),
    ROW_INT("store.write_buffer_mb", store_write_buffer_mb, 0, 64, 2, 65536,
            "all memtables together (each column family's up to half of it)"),
    ROW_SECTION("ui", "the web console (docs/console.md)"),
    ROW_BOOL("ui.enabled", ui_enabled, 1,
             "serve the web console at /ui/; false answers /ui/ with the API's 404"),
    ROW_JSON("remotes", CONF_ARRAY, remotes, conf_check_remotes,
             "remote repositories managed by this file (registered at start, updated on "
             "restart and SIGHUP)"),
};

#define CONF_ROW_COUNT (sizeof(conf_rows) / sizeof(conf_rows[0]))

/* ---------------------------------------------------------------------------
 * Failures
 * ------------------------------------------------------------------------- */

/* Records one problem line with its code; the first also goes into err. */
static rd_status problem_add(conf_ctx *ctx, rd_status code, const char *line)
{
    size_t n = json_array_size(ctx->problems);
    if (ctx->rc == RD_OK) {
        ctx->rc = code;
        rd_fail(ctx->err, code, "%s", line);
    }
    if (ctx->problems != NULL && n < CONF_PROBLEMS_MAX)
        json_array_append_new(ctx->problems, json_string(line));
    else if (ctx->problems != NULL && n == CONF_PROBLEMS_MAX)
        json_array_append_new(ctx->problems,
                              json_sprintf("%s: more problems not listed", ctx->path));
    return code;
}

/* Records "PATH: KEY: REASON" as RD_ERR_INVALID_PARAMETER; returns that code. */
rd_status conf_fail(conf_ctx *ctx, const char *key, const char *fmt, ...)
{
    char reason[REASON_MAX], line[RD_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s: %s: %s", ctx->path, key, reason);
    return problem_add(ctx, RD_ERR_INVALID_PARAMETER, line);
}

/* Records "PATH: out of memory" as RD_ERR_INTERNAL. */
rd_status conf_oom(conf_ctx *ctx)
{
    char line[RD_ERROR_MESSAGE_MAX];
    snprintf(line, sizeof(line), "%s: out of memory", ctx->path);
    return problem_add(ctx, RD_ERR_INTERNAL, line);
}

/* ---------------------------------------------------------------------------
 * Walking the file
 * ------------------------------------------------------------------------- */

/* Checks and stores the value v given for row (not a section). */
static rd_status row_apply(conf_ctx *ctx, const conf_row *row, const json_t *v)
{
    char reason[REASON_MAX];
    rd_status rc = RD_OK;

    if (conf_value_check(row, v, reason, sizeof(reason)) != 0) {
        rc = conf_fail(ctx, row->key, "%s", reason);
        goto done;
    }
    switch (row->type) {
    case CONF_STRING:
    case CONF_PATH:
    case CONF_HOSTPORT:
        rc = conf_store_text(ctx, row, json_string_value(v), ctx->base);
        break;
    case CONF_BOOL:
        *(int *)conf_field_at(ctx->conf, row->off) = json_is_true(v);
        break;
    case CONF_INT:
        conf_field_set_int(ctx->conf, row, (int64_t)json_integer_value(v));
        break;
    case CONF_STRLIST:
        rc = conf_store_strlist(ctx, row, v);
        break;
    case CONF_OBJECT:
    case CONF_ARRAY:
        rc = conf_store_json(ctx, row, v);
        break;
    case CONF_SECTION:
        break;
    }
    if (rc == RD_OK && row->type == CONF_PATH && (row->flags & CF_READABLE) && ctx->check_files) {
        const char *resolved = *(char **)conf_field_at(ctx->conf, row->off);
        if (resolved != NULL && conf_file_readable(resolved) != 0)
            rc = conf_fail(ctx, row->key, "cannot read %s: %s", json_string_value(v),
                           strerror(errno));
    }
done:
    return rc;
}

/* Stores the default of a row that the file did not give; fails on required
 * rows. */
static rd_status row_default(conf_ctx *ctx, const conf_row *row)
{
    rd_status rc = RD_OK;

    if (row->flags & CF_REQUIRED) {
        rc = conf_fail(ctx, row->key, "required");
        goto done;
    }
    switch (row->type) {
    case CONF_STRING:
    case CONF_HOSTPORT:
        rc = conf_store_text(ctx, row, row->def_str, ctx->base);
        break;
    case CONF_PATH:
        rc = conf_store_text(ctx, row, row->def_str,
                             (row->flags & CF_IN_DATA_DIR) ? ctx->conf->data_dir : ctx->base);
        break;
    case CONF_BOOL:
        *(int *)conf_field_at(ctx->conf, row->off) = row->def_int != 0;
        break;
    case CONF_INT:
        conf_field_set_int(ctx->conf, row, row->def_int);
        break;
    case CONF_STRLIST:
        rc = conf_store_strlist(ctx, row, NULL);
        break;
    case CONF_OBJECT:
    case CONF_ARRAY:
        rc = conf_store_json(ctx, row, NULL);
        break;
    case CONF_SECTION:
        break;
    }
done:
    return rc;
}

/* Marks every row below the section key as given (the section itself was
 * not an object: one problem is enough). */
static void section_skip(conf_ctx *ctx, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < CONF_ROW_COUNT; i++)
        if (strncmp(conf_rows[i].key, key, len) == 0 && conf_rows[i].key[len] == '.')
            ctx->given[i] = true;
}

/* Walks the object obj whose dotted name is prefix ("" for the top level):
 * every key must have a row; sections are descended into, other values
 * checked and stored.  Goes on after a problem; returns ctx->rc. */
static rd_status walk_object(conf_ctx *ctx, const json_t *obj, const char *prefix)
{
    const char *name;
    json_t *value;
    char key[KEY_MAX];

    json_object_foreach((json_t *)obj, name, value)
    {
        const conf_row *row = NULL;
        snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (strchr(name, '.') == NULL && name[0] != '\0')
            row = conf_row_find(conf_rows, CONF_ROW_COUNT, key);
        if (row == NULL) {
            conf_fail(ctx, key, "unknown key");
            continue;
        }
        ctx->given[row - conf_rows] = true;
        if (row->type != CONF_SECTION) {
            row_apply(ctx, row, value);
        } else if (!json_is_object(value)) {
            conf_fail(ctx, key, "expected an object");
            section_skip(ctx, key);
        } else {
            walk_object(ctx, value, key);
        }
    }
    return ctx->rc;
}

/* Checks that tls.ciphers names at least one cipher OpenSSL knows (the same
 * call the TLS context makes at start-up). */
static rd_status check_tls_ciphers(conf_ctx *ctx)
{
    SSL_CTX *probe = SSL_CTX_new(TLS_server_method());
    rd_status rc = RD_OK;
    if (probe == NULL) {
        rc = conf_oom(ctx);
        goto done;
    }
    if (SSL_CTX_set_cipher_list(probe, ctx->conf->tls_ciphers) != 1)
        rc = conf_fail(ctx, "tls.ciphers", "no cipher known to OpenSSL in \"%s\"",
                       ctx->conf->tls_ciphers);
done:
    ERR_clear_error();
    SSL_CTX_free(probe);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Public functions
 * ------------------------------------------------------------------------- */

/* Parses text[0..len) as the config of path; the common part of conf_load
 * and conf_load_string.  With check_files the named files are opened too.
 * On success *out is a new conf; *problems (when not NULL) gets every
 * problem. */
static rd_status conf_parse(const char *text, size_t len, const char *path, bool check_files,
                            repod_conf **out, json_t **problems, rd_error *err)
{
    bool given[CONF_ROW_COUNT] = {false}; /* row was present in the file */
    conf_ctx ctx = {.path = path != NULL ? path : "(string)",
                    .err = err,
                    .given = given,
                    .check_files = check_files,
                    .problems = json_array()};
    json_t *root = NULL;
    json_error_t jerr;
    char line[RD_ERROR_MESSAGE_MAX];

    *out = NULL;
    rd_error_clear(err);
    ctx.conf = calloc(1, sizeof(*ctx.conf));
    ctx.base = conf_path_dirname(path != NULL ? path : "");
    if (ctx.conf == NULL || ctx.base == NULL || ctx.problems == NULL ||
        (ctx.conf->path = strdup(path != NULL ? path : "")) == NULL) {
        conf_oom(&ctx);
        goto done;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(line, sizeof(line), "%s: invalid JSON at line %d column %d: %s", ctx.path,
                 jerr.line, jerr.column, jerr.text);
        problem_add(&ctx, RD_ERR_INVALID_PARAMETER, line);
        goto done;
    }
    if (!json_is_object(root)) {
        snprintf(line, sizeof(line), "%s: expected a JSON object at the top level", ctx.path);
        problem_add(&ctx, RD_ERR_INVALID_PARAMETER, line);
        goto done;
    }
    walk_object(&ctx, root, "");
    for (size_t i = 0; i < CONF_ROW_COUNT; i++)
        if (conf_rows[i].type != CONF_SECTION && !ctx.given[i])
            row_default(&ctx, &conf_rows[i]);
    if (ctx.conf->tls_ciphers != NULL)
        check_tls_ciphers(&ctx);
    for (size_t i = 0; i < CONF_ROW_COUNT; i++) {
        const conf_row *row = &conf_rows[i];
        if ((row->flags & CF_NPROC_ZERO) && *(int *)conf_field_at(ctx.conf, row->off) == 0) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            if (cores < 1)
                cores = 1;
            if (cores > row->max)
                cores = (long)row->max;
            *(int *)conf_field_at(ctx.conf, row->off) = (int)cores;
        }
    }
    if (ctx.check_files)
        conf_check_tls(&ctx);
    if (ctx.rc == RD_OK) {
        *out = ctx.conf;
        ctx.conf = NULL;
    }
done:
    if (problems != NULL) {
        *problems = ctx.problems;
        ctx.problems = NULL;
    }
    json_decref(ctx.problems);
    json_decref(root);
    conf_free(ctx.conf);
    free(ctx.base);
    return ctx.rc;
}

/* Reads the file at path and parses it (opening the files it names when
 * check_files); *problems (when not NULL) gets every problem. */
static rd_status load_file(const char *path, bool check_files, repod_conf **out, json_t **problems,
                           rd_error *err)
{
    char *text = NULL;
    size_t len = 0;
    rd_status rc;

    *out = NULL;
    if (problems != NULL)
        *problems = NULL;
    text = util_read_file(path, &len);
    if (text == NULL) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: cannot read: %s", path, strerror(errno));
        if (problems != NULL)
            *problems = json_pack("[s]", err->message);
        goto done;
    }
    rc = conf_parse(text, len, path, check_files, out, problems, err);
done:
    free(text);
    return rc;
}

/* Loads and validates the file at path (see conf.h); *problems (when not
 * NULL) gets every problem. */
rd_status conf_load_report(const char *path, repod_conf **out, json_t **problems, rd_error *err)
{
    return load_file(path, true, out, problems, err);
}

/* The file's keys and values only (see conf.h). */
rd_status conf_load_values(const char *path, repod_conf **out, rd_error *err)
{
    return load_file(path, false, out, NULL, err);
}

/* Loads and validates the file at path (see conf.h).  Returns RD_OK with a
 * new *out, or RD_ERR_INVALID_PARAMETER with the first problem in err. */
rd_status conf_load(const char *path, repod_conf **out, rd_error *err)
{
    return conf_load_report(path, out, NULL, err);
}

/* Like conf_load, from a NUL-terminated text and without opening the named
 * files; path names the (possibly imaginary) file for messages and relative
 * paths. */
rd_status conf_load_string(const char *text, const char *path, repod_conf **out, rd_error *err)
{
    return conf_parse(text, strlen(text), path, false, out, NULL, err);
}

/* Frees conf and everything it owns (table-driven); NULL is a no-op. */
void conf_free(repod_conf *conf)
{
    if (conf == NULL)
        return;
    for (size_t i = 0; i < CONF_ROW_COUNT; i++) {
        const conf_row *row = &conf_rows[i];
        switch (row->type) {
        case CONF_STRING:
        case CONF_PATH:
            free(*(char **)conf_field_at(conf, row->off));
            break;
        case CONF_HOSTPORT:
            free(*(char **)conf_field_at(conf, row->aux));
            if (row->off != CONF_NONE)
                free(*(char **)conf_field_at(conf, row->off));
            break;
        case CONF_STRLIST: {
            char **list = *(char ***)conf_field_at(conf, row->off);
            for (size_t k = 0; list != NULL && list[k] != NULL; k++)
                free(list[k]);
            free(list);
            break;
        }
        case CONF_OBJECT:
        case CONF_ARRAY:
            json_decref(*(json_t **)conf_field_at(conf, row->off));
            break;
        default:
            break;
        }
    }
    free(conf->path);
    free(conf);
}

/* Writes the default of row as text into buf. */
static void default_format(const conf_row *row, char *buf, size_t n)
{
    if (row->def_text != NULL)
        snprintf(buf, n, "%s", row->def_text);
    else if (row->flags & CF_REQUIRED)
        snprintf(buf, n, "(required)");
    else if (row->type == CONF_BOOL)
        snprintf(buf, n, "%s", row->def_int ? "true" : "false");
    else if (row->type == CONF_INT)
        snprintf(buf, n, "%" PRId64, row->def_int);
    else if (row->type == CONF_STRLIST || row->type == CONF_ARRAY)
        snprintf(buf, n, "[]");
    else if (row->type == CONF_OBJECT)
        snprintf(buf, n, "{}");
    else if (row->def_str == NULL)
        snprintf(buf, n, "(none)");
    else if (row->def_str[0] == '\0')
        snprintf(buf, n, "\"\"");
    else
        snprintf(buf, n, "%s", row->def_str);
}

/* Prints one row of the key table. */
static void row_print(FILE *f, const char *prefix, const conf_row *row)
{
    char key[KEY_MAX], def[64], range[64] = "";
    snprintf(key, sizeof(key), "%s%s", prefix, row->key);
    default_format(row, def, sizeof(def));
    if (row->type == CONF_INT)
        snprintf(range, sizeof(range), " [%" PRId64 "..%" PRId64 "]", row->min, row->max);
    fprintf(f, "  %-44s %-9s %-26s %s%s\n", key, conf_type_info[row->type].name, def, row->help,
            range);
}

/* Prints every key with its type, default and meaning to f (for --help). */
void conf_print_keys(FILE *f)
{
    fprintf(f, "Configuration keys (strict JSON; relative paths are relative to the file):\n");
    fprintf(f, "  %-44s %-9s %-26s %s\n", "KEY", "TYPE", "DEFAULT", "MEANING");
    for (size_t i = 0; i < CONF_ROW_COUNT; i++)
        if (conf_rows[i].type != CONF_SECTION)
            row_print(f, "", &conf_rows[i]);
    for (size_t i = 0; i < conf_registry_entry_row_count; i++)
        row_print(f, "registries.<host>.", &conf_registry_entry_rows[i]);
    for (size_t i = 0; i < conf_remote_entry_row_count; i++)
        if (conf_remote_entry_rows[i].type != CONF_SECTION)
            row_print(f, "remotes[].", &conf_remote_entry_rows[i]);
}
