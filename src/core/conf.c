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
 *   4. resolve workers = 0 to the number of online cores.
 *
 * The free-form parts ("registries", "remotes", "registry.default_urls") are
 * stored as JSON copies after their own checks; registry entries are checked
 * against a second, smaller table (registry_entry_rows[]).
 *
 * Relative paths are joined to the folder of the config file
 * ("conf/repod.json" + "../data" -> "conf/../data"); absolute ones are kept.
 *
 * Every failure is RD_ERR_INVALID_PARAMETER with a message "PATH: KEY: REASON"
 * (or "PATH: REASON" when the file cannot be read or parsed).
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ---------------------------------------------------------------------------
 * The key table
 * ------------------------------------------------------------------------- */

typedef enum {
    CONF_SECTION,  /* an object whose keys are rows of their own */
    CONF_STRING,   /* char * */
    CONF_PATH,     /* char *, resolved against the config folder */
    CONF_BOOL,     /* int 0/1, from JSON true/false only */
    CONF_INT,      /* int or int64_t (by .size), JSON integer within [min, max] */
    CONF_HOSTPORT, /* "host:port" / "[v6]:port" -> char *host (.aux), int port (.aux2) */
    CONF_STRLIST,  /* char ** NULL-terminated (.off), size_t count (.aux) */
    CONF_OBJECT,   /* json_t * object copy */
    CONF_ARRAY     /* json_t * array copy */
} conf_type;

#define CF_REQUIRED    0x01u /* no default: the key must be given */
#define CF_NONEMPTY    0x02u /* a string must not be "" */
#define CF_EMPTY_UNSET 0x04u /* "" is allowed and means "not set" (NULL / no host) */
#define CF_URL         0x08u /* a string must start with http:// or https:// */
#define CF_NPROC_ZERO  0x10u /* an int 0 is replaced by the number of online cores */
#define CF_IN_DATA_DIR 0x20u /* the default path is relative to data_dir */

#define CONF_NONE ((size_t)-1) /* no target field */

typedef struct conf_ctx conf_ctx;
typedef struct conf_row conf_row;

/* A check for a free-form object/array: validates (and may rewrite) the owned
 * copy; on failure fills ctx->err and returns its code. */
typedef rd_status (*conf_check_fn)(conf_ctx *ctx, const conf_row *row, json_t *copy);

struct conf_row {
    const char *key; /* dotted name */
    conf_type type;
    unsigned flags;             /* CF_* */
    const char *def_str;        /* default of string-like rows; NULL = none */
    int64_t def_int;            /* default of bool / int rows */
    int64_t min, max;           /* bounds of int rows */
    size_t off;                 /* target field in repod_conf, or CONF_NONE */
    size_t size;                /* sizeof the target field */
    size_t aux, aux2;           /* second/third targets (see conf_type) */
    const char *const *choices; /* allowed values of a string row, NULL-terminated */
    conf_check_fn check;        /* extra check of an object/array row */
    const char *def_text;       /* default as shown by conf_print_keys, if not derived */
    const char *help;
};

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

static rd_status check_default_urls(conf_ctx *ctx, const conf_row *row, json_t *copy);
static rd_status check_registries(conf_ctx *ctx, const conf_row *row, json_t *copy);
static rd_status check_remotes(conf_ctx *ctx, const conf_row *row, json_t *copy);

static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};

/* Every key of the file.  A section row must come before its keys; data_dir
 * must come before auth.tokens_file (whose default lives under it). */
static const conf_row conf_rows[] = {
    ROW_HOSTPORT("listen", CONF_NONE, listen_host, listen_port, 0, "127.0.0.1:8443",
                 "address of the HTTPS API; port 0 picks a free port; IPv6 as [addr]:port"),
    ROW_HOSTPORT("metrics_listen", FIELD_OFF(metrics_listen), metrics_host, metrics_port,
                 CF_EMPTY_UNSET, "",
                 "separate address for /metrics; \"\" serves it on the API port"),
    ROW_SECTION("tls", "TLS of the API port"),
    ROW_PATH("tls.cert", tls_cert, CF_REQUIRED, NULL, NULL, "server certificate chain (PEM)"),
    ROW_PATH("tls.key", tls_key, CF_REQUIRED, NULL, NULL, "private key of tls.cert (PEM)"),
    ROW_PATH("tls.client_ca", tls_client_ca, CF_EMPTY_UNSET, NULL, NULL,
             "CA bundle for mutual TLS (clients must present a certificate); unset or \"\" = off"),
    ROW_PATH("data_dir", data_dir, 0, "data", NULL, "folder of the RocksDB store and tokens"),
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
    ROW_JSON("registry.default_urls", CONF_OBJECT, registry_default_urls, check_default_urls,
             "registry_type -> registry_url used when a plugin gives none "
             "(keys DOCKER_HUB, AWS_PRIVATE_ECR, HARBOR)"),
    ROW_SECTION("remote_defaults", "cache settings of remote repositories (SPEC 6)"),
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
    ROW_JSON("registries", CONF_OBJECT, registries, check_registries,
             "registry host (as in registry_url) -> {api_url, ca_file, verify, username, "
             "password_file, aws_access_key_id, aws_secret_access_key_file, aws_region, "
             "timeout_ms}"),
    ROW_JSON("remotes", CONF_ARRAY, remotes, check_remotes,
             "remote repositories to create at start-up (objects, as for repository register)"),
};

#define CONF_ROW_COUNT (sizeof(conf_rows) / sizeof(conf_rows[0]))

/* The keys of one "registries" entry (SPEC 9).  Checked only; the entry is
 * stored as a JSON copy with its paths resolved. */
#define ENTRY_ROW(k, t, lo, hi, dt, h)                                                             \
    {                                                                                              \
        .key = (k), .type = (t), .flags = CF_NONEMPTY, .min = (lo), .max = (hi), .off = CONF_NONE, \
        .def_text = (dt), .help = (h)                                                              \
    }

static const conf_row registry_entry_rows[] = {
    {.key = "api_url",
     .type = CONF_STRING,
     .flags = CF_NONEMPTY | CF_URL,
     .off = CONF_NONE,
     .def_text = "https://<host>",
     .help = "Distribution API endpoint of this registry"},
    ENTRY_ROW("ca_file", CONF_PATH, 0, 0, "(system trust store)",
              "CA bundle that signs the registry's certificate"),
    {.key = "verify",
     .type = CONF_BOOL,
     .def_int = 1,
     .off = CONF_NONE,
     .help = "verify the registry's TLS certificate (false: labs only, warns at start)"},
    ENTRY_ROW("username", CONF_STRING, 0, 0, NULL, "basic-auth user (also for Bearer tokens)"),
    ENTRY_ROW("password_file", CONF_PATH, 0, 0, NULL, "file holding the basic-auth password"),
    ENTRY_ROW("aws_access_key_id", CONF_STRING, 0, 0, NULL, "ECR: access key id"),
    ENTRY_ROW("aws_secret_access_key_file", CONF_PATH, 0, 0, NULL,
              "ECR: file holding the secret access key"),
    ENTRY_ROW("aws_region", CONF_STRING, 0, 0, NULL, "ECR: region, e.g. ap-northeast-2"),
    ENTRY_ROW("timeout_ms", CONF_INT, 100, 600000, "remote_defaults.timeout_ms",
              "timeout of one registry call"),
};

#define REGISTRY_ENTRY_ROW_COUNT (sizeof(registry_entry_rows) / sizeof(registry_entry_rows[0]))

static const char *const registry_types[] = {"DOCKER_HUB", "AWS_PRIVATE_ECR", "HARBOR", NULL};

/* ---------------------------------------------------------------------------
 * Load state and small helpers
 * ------------------------------------------------------------------------- */

struct conf_ctx {
    const char *path; /* for messages */
    char *base;       /* folder of the config file (owned) */
    repod_conf *conf;
    rd_error *err;
    bool given[CONF_ROW_COUNT]; /* row was set from the file */
};

#define KEY_MAX    320
#define REASON_MAX 200

/* Fails with "PATH: KEY: REASON" as RD_ERR_INVALID_PARAMETER; returns that code. */
static rd_status conf_fail(conf_ctx *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rd_status conf_fail(conf_ctx *ctx, const char *key, const char *fmt, ...)
{
    char reason[REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return rd_fail(ctx->err, RD_ERR_INVALID_PARAMETER, "%s: %s: %s", ctx->path, key, reason);
}

/* Fails with "PATH: out of memory" as RD_ERR_INTERNAL. */
static rd_status conf_oom(conf_ctx *ctx)
{
    return rd_fail(ctx->err, RD_ERR_INTERNAL, "%s: out of memory", ctx->path);
}

/* Returns a new string: the folder part of path ("." when it has none). */
static char *path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Returns a new string: value when it is absolute, else base + "/" + value.
 * NULL when out of memory. */
static char *path_join(const char *base, const char *value)
{
    char *out = NULL;
    size_t blen;
    if (value[0] == '/' || base == NULL || base[0] == '\0')
        return strdup(value);
    blen = strlen(base);
    if (asprintf(&out, "%s%s%s", base, base[blen - 1] == '/' ? "" : "/", value) < 0)
        out = NULL;
    return out;
}

/* Returns the row named key in rows[0..n), or NULL. */
static const conf_row *row_find(const conf_row *rows, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].key, key) == 0)
            return &rows[i];
    return NULL;
}

/* Per type: its name in conf_print_keys and the reason when a value has the
 * wrong JSON type. */
static const struct {
    const char *name;
    const char *expected;
} type_info[] = {
    [CONF_SECTION] = {"object", "expected an object"},
    [CONF_STRING] = {"string", "expected a string"},
    [CONF_PATH] = {"path", "expected a path string"},
    [CONF_BOOL] = {"bool", "expected true or false"},
    [CONF_INT] = {"int", "expected an integer"},
    [CONF_HOSTPORT] = {"host:port", "expected host:port"},
    [CONF_STRLIST] = {"[string]", "expected an array of strings"},
    [CONF_OBJECT] = {"object", "expected an object"},
    [CONF_ARRAY] = {"[object]", "expected an array"},
};

/* 1 when s is a syntactically valid DNS host name (labels of letters, digits
 * and '-', not starting or ending with '-'). */
static int hostname_valid(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return s[len - 1] != '-';
}

/* Splits "host:port" or "[v6]:port" into a new *host and *port (0..65535).
 * Returns 0, or -1 with a reason in reason[] (*host untouched). */
static int hostport_parse(const char *text, char **host, int *port, char *reason, size_t n)
{
    const char *colon, *p;
    char *h = NULL;
    unsigned char addr[sizeof(struct in6_addr)];
    long value = 0;
    int rc = -1;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(reason, n, "expected host:port");
            goto done;
        }
        h = strndup(text + 1, (size_t)(close - text - 1));
        colon = close + 1;
        if (h != NULL && inet_pton(AF_INET6, h, addr) != 1) {
            snprintf(reason, n, "expected host:port: \"%s\" is not an IPv6 address", h);
            goto done;
        }
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || colon == text) {
            snprintf(reason, n, "expected host:port");
            goto done;
        }
        h = strndup(text, (size_t)(colon - text));
        if (h != NULL && strchr(h, ':') != NULL) {
            snprintf(reason, n, "expected host:port (write an IPv6 address as [addr]:port)");
            goto done;
        }
        if (h != NULL && strspn(h, "0123456789.") == strlen(h)) {
            if (inet_pton(AF_INET, h, addr) != 1) {
                snprintf(reason, n, "expected host:port: \"%s\" is not an IPv4 address", h);
                goto done;
            }
        } else if (h != NULL && !hostname_valid(h)) {
            snprintf(reason, n, "expected host:port: \"%s\" is not a valid host name", h);
            goto done;
        }
    }
    if (h == NULL) {
        snprintf(reason, n, "out of memory");
        goto done;
    }
    p = colon + 1;
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5) {
        snprintf(reason, n, "expected host:port");
        goto done;
    }
    value = strtol(p, NULL, 10);
    if (value > 65535) {
        snprintf(reason, n, "port must be between 0 and 65535");
        goto done;
    }
    *host = h;
    *port = (int)value;
    h = NULL;
    rc = 0;
done:
    free(h);
    return rc;
}

/* 1 when s is one of the NULL-terminated choices. */
static int choice_valid(const char *const *choices, const char *s)
{
    for (size_t i = 0; choices[i] != NULL; i++)
        if (strcmp(choices[i], s) == 0)
            return 1;
    return 0;
}

/* Writes the choices as "a, b, c" into buf. */
static void choices_format(const char *const *choices, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", choices[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* ---------------------------------------------------------------------------
 * Checking and storing one value
 * ------------------------------------------------------------------------- */

/* 1 when the JSON type of v fits a row of the given type. */
static int json_type_fits(conf_type type, const json_t *v)
{
    switch (type) {
    case CONF_SECTION:
    case CONF_OBJECT:
        return json_is_object(v);
    case CONF_STRING:
    case CONF_PATH:
    case CONF_HOSTPORT:
        return json_is_string(v);
    case CONF_BOOL:
        return json_is_boolean(v);
    case CONF_INT:
        return json_is_integer(v);
    case CONF_STRLIST:
    case CONF_ARRAY:
        return json_is_array(v);
    }
    return 0;
}

/* Checks v against row's type, flags and bounds without storing anything.
 * Returns 0, or -1 with the reason in reason[]. */
static int value_check(const conf_row *row, const json_t *v, char *reason, size_t n)
{
    char list[128];
    char *host = NULL;
    int port = 0, rc = -1;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    int64_t i = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;

    if (!json_type_fits(row->type, v)) {
        snprintf(reason, n, "%s", type_info[row->type].expected);
        goto done;
    }
    if ((row->type == CONF_STRING || row->type == CONF_PATH) && s[0] == '\0' &&
        ((row->flags & CF_NONEMPTY) ||
         (row->type == CONF_PATH && !(row->flags & CF_EMPTY_UNSET)))) {
        snprintf(reason, n, "must not be empty");
        goto done;
    }
    if (row->type == CONF_STRING && row->choices != NULL && !choice_valid(row->choices, s)) {
        choices_format(row->choices, list, sizeof(list));
        snprintf(reason, n, "must be one of %s", list);
        goto done;
    }
    if (row->type == CONF_STRING && (row->flags & CF_URL) && strncmp(s, "https://", 8) != 0 &&
        strncmp(s, "http://", 7) != 0) {
        snprintf(reason, n, "must start with https:// or http://");
        goto done;
    }
    if (row->type == CONF_INT && (i < row->min || i > row->max)) {
        snprintf(reason, n, "must be an integer between %" PRId64 " and %" PRId64, row->min,
                 row->max);
        goto done;
    }
    if (row->type == CONF_HOSTPORT && !(s[0] == '\0' && (row->flags & CF_EMPTY_UNSET)) &&
        hostport_parse(s, &host, &port, reason, n) != 0)
        goto done;
    for (size_t k = 0; row->type == CONF_STRLIST && k < json_array_size(v); k++) {
        const json_t *e = json_array_get(v, k);
        if (!json_is_string(e) || json_string_value(e)[0] == '\0') {
            snprintf(reason, n, "element %zu: expected a non-empty string", k);
            goto done;
        }
    }
    rc = 0;
done:
    free(host);
    return rc;
}

/* Address of a row's target field (off is one of row->off/aux/aux2). */
static void *field_at(repod_conf *conf, size_t off)
{
    return (char *)conf + off;
}

/* Replaces the char * at off with value (owned); value may be NULL. */
static void field_set_string(repod_conf *conf, size_t off, char *value)
{
    char **slot = field_at(conf, off);
    free(*slot);
    *slot = value;
}

/* Stores an int row's value into its int or int64_t field. */
static void field_set_int(repod_conf *conf, const conf_row *row, int64_t value)
{
    if (row->size == sizeof(int64_t))
        *(int64_t *)field_at(conf, row->off) = value;
    else
        *(int *)field_at(conf, row->off) = (int)value;
}

/* Stores a string-like value (already checked) of row: a string, a path
 * resolved against base, or host:port.  Returns RD_OK or fails into ctx. */
static rd_status store_text(conf_ctx *ctx, const conf_row *row, const char *s, const char *base)
{
    rd_status rc = RD_OK;
    char *copy = NULL, *host = NULL;
    char reason[REASON_MAX];
    int port = 0;

    if (row->type == CONF_PATH) {
        if (s == NULL || (s[0] == '\0' && (row->flags & CF_EMPTY_UNSET))) {
            field_set_string(ctx->conf, row->off, NULL);
            goto done;
        }
        copy = path_join(base, s);
    } else if (row->type == CONF_HOSTPORT) {
        if (s[0] != '\0' && hostport_parse(s, &host, &port, reason, sizeof(reason)) != 0) {
            rc = conf_fail(ctx, row->key, "%s", reason);
            goto done;
        }
        field_set_string(ctx->conf, row->aux, host);
        *(int *)field_at(ctx->conf, row->aux2) = port;
        host = NULL;
        if (row->off == CONF_NONE)
            goto done;
        copy = strdup(s);
    } else {
        if (s == NULL)
            goto done;
        copy = strdup(s);
    }
    if (copy == NULL) {
        rc = conf_oom(ctx);
        goto done;
    }
    field_set_string(ctx->conf, row->off, copy);
    copy = NULL;
done:
    free(copy);
    free(host);
    return rc;
}

/* Stores a string list (already checked; NULL = empty) into row's fields. */
static rd_status store_strlist(conf_ctx *ctx, const conf_row *row, const json_t *v)
{
    size_t n = v != NULL ? json_array_size(v) : 0;
    char **list = calloc(n + 1, sizeof(*list));
    char ***slot = field_at(ctx->conf, row->off);
    rd_status rc = RD_OK;

    if (list == NULL) {
        rc = conf_oom(ctx);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        list[i] = strdup(json_string_value(json_array_get(v, i)));
        if (list[i] == NULL) {
            rc = conf_oom(ctx);
            goto done;
        }
    }
    *slot = list;
    *(size_t *)field_at(ctx->conf, row->aux) = n;
    list = NULL;
done:
    if (list != NULL)
        for (size_t i = 0; list[i] != NULL; i++)
            free(list[i]);
    free(list);
    return rc;
}

/* Stores an owned JSON copy (of v, or an empty object/array when v is NULL)
 * after the row's extra check. */
static rd_status store_json(conf_ctx *ctx, const conf_row *row, const json_t *v)
{
    json_t *copy = NULL;
    json_t **slot = field_at(ctx->conf, row->off);
    rd_status rc = RD_OK;

    if (v != NULL)
        copy = json_deep_copy(v);
    else
        copy = row->type == CONF_ARRAY ? json_array() : json_object();
    if (copy == NULL) {
        rc = conf_oom(ctx);
        goto done;
    }
    if (row->check != NULL && (rc = row->check(ctx, row, copy)) != RD_OK)
        goto done;
    json_decref(*slot);
    *slot = copy;
    copy = NULL;
done:
    json_decref(copy);
    return rc;
}

/* Checks and stores the value v given for row (not a section). */
static rd_status row_apply(conf_ctx *ctx, const conf_row *row, const json_t *v)
{
    char reason[REASON_MAX];
    rd_status rc = RD_OK;

    if (value_check(row, v, reason, sizeof(reason)) != 0) {
        rc = conf_fail(ctx, row->key, "%s", reason);
        goto done;
    }
    switch (row->type) {
    case CONF_STRING:
    case CONF_PATH:
    case CONF_HOSTPORT:
        rc = store_text(ctx, row, json_string_value(v), ctx->base);
        break;
    case CONF_BOOL:
        *(int *)field_at(ctx->conf, row->off) = json_is_true(v);
        break;
    case CONF_INT:
        field_set_int(ctx->conf, row, (int64_t)json_integer_value(v));
        break;
    case CONF_STRLIST:
        rc = store_strlist(ctx, row, v);
        break;
    case CONF_OBJECT:
    case CONF_ARRAY:
        rc = store_json(ctx, row, v);
        break;
    case CONF_SECTION:
        break;
    }
    if (rc == RD_OK)
        ctx->given[row - conf_rows] = true;
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
        rc = store_text(ctx, row, row->def_str, ctx->base);
        break;
    case CONF_PATH:
        rc = store_text(ctx, row, row->def_str,
                        (row->flags & CF_IN_DATA_DIR) ? ctx->conf->data_dir : ctx->base);
        break;
    case CONF_BOOL:
        *(int *)field_at(ctx->conf, row->off) = row->def_int != 0;
        break;
    case CONF_INT:
        field_set_int(ctx->conf, row, row->def_int);
        break;
    case CONF_STRLIST:
        rc = store_strlist(ctx, row, NULL);
        break;
    case CONF_OBJECT:
    case CONF_ARRAY:
        rc = store_json(ctx, row, NULL);
        break;
    case CONF_SECTION:
        break;
    }
done:
    return rc;
}

/* Walks the object obj whose dotted name is prefix ("" for the top level):
 * every key must have a row; sections are descended into, other values
 * checked and stored. */
static rd_status walk_object(conf_ctx *ctx, const json_t *obj, const char *prefix)
{
    const char *name;
    json_t *value;
    char key[KEY_MAX];
    rd_status rc = RD_OK;

    json_object_foreach((json_t *)obj, name, value)
    {
        const conf_row *row = NULL;
        snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (strchr(name, '.') == NULL && name[0] != '\0')
            row = row_find(conf_rows, CONF_ROW_COUNT, key);
        if (row == NULL) {
            rc = conf_fail(ctx, key, "unknown key");
            goto done;
        }
        if (row->type == CONF_SECTION) {
            if (!json_is_object(value)) {
                rc = conf_fail(ctx, key, "expected an object");
                goto done;
            }
            rc = walk_object(ctx, value, key);
        } else {
            rc = row_apply(ctx, row, value);
        }
        if (rc != RD_OK)
            goto done;
    }
done:
    return rc;
}

/* ---------------------------------------------------------------------------
 * Checks of the free-form parts
 * ------------------------------------------------------------------------- */

/* registry.default_urls: keys are registry types, values non-empty strings. */
static rd_status check_default_urls(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    const char *type;
    json_t *url;
    char key[KEY_MAX], list[128];
    rd_status rc = RD_OK;

    json_object_foreach(copy, type, url)
    {
        snprintf(key, sizeof(key), "%s.%s", row->key, type);
        if (!choice_valid(registry_types, type)) {
            choices_format(registry_types, list, sizeof(list));
            rc = conf_fail(ctx, key, "unknown registry type (expected one of %s)", list);
            goto done;
        }
        if (!json_is_string(url) || json_string_value(url)[0] == '\0') {
            rc = conf_fail(ctx, key, "expected a non-empty string");
            goto done;
        }
    }
done:
    return rc;
}

/* registries: host -> entry; each entry's keys are checked against
 * registry_entry_rows[] and its paths resolved against the config folder. */
static rd_status check_registries(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    const char *host, *name;
    json_t *entry, *value;
    char key[KEY_MAX], reason[REASON_MAX];
    char *resolved = NULL;
    rd_status rc = RD_OK;

    json_object_foreach(copy, host, entry)
    {
        snprintf(key, sizeof(key), "%s.%s", row->key, host);
        if (host[0] == '\0') {
            rc = conf_fail(ctx, row->key, "host names must not be empty");
            goto done;
        }
        if (!json_is_object(entry)) {
            rc = conf_fail(ctx, key, "expected an object");
            goto done;
        }
        json_object_foreach(entry, name, value)
        {
            const conf_row *sub = row_find(registry_entry_rows, REGISTRY_ENTRY_ROW_COUNT, name);
            snprintf(key, sizeof(key), "%s.%s.%s", row->key, host, name);
            if (sub == NULL) {
                rc = conf_fail(ctx, key, "unknown key");
                goto done;
            }
            if (value_check(sub, value, reason, sizeof(reason)) != 0) {
                rc = conf_fail(ctx, key, "%s", reason);
                goto done;
            }
            if (sub->type != CONF_PATH)
                continue;
            resolved = path_join(ctx->base, json_string_value(value));
            if (resolved == NULL || json_object_set_new(entry, name, json_string(resolved)) != 0) {
                rc = conf_oom(ctx);
                goto done;
            }
            free(resolved);
            resolved = NULL;
        }
    }
done:
    free(resolved);
    return rc;
}

/* remotes: an array of objects (their keys belong to the repository module). */
static rd_status check_remotes(conf_ctx *ctx, const conf_row *row, json_t *copy)
{
    size_t i;
    json_t *remote;
    char key[KEY_MAX];
    rd_status rc = RD_OK;

    json_array_foreach(copy, i, remote)
    {
        if (!json_is_object(remote)) {
            snprintf(key, sizeof(key), "%s[%zu]", row->key, i);
            rc = conf_fail(ctx, key, "expected an object");
            goto done;
        }
    }
done:
    return rc;
}

/* ---------------------------------------------------------------------------
 * Public functions
 * ------------------------------------------------------------------------- */

/* Parses text[0..len) as the config of path; the common part of conf_load
 * and conf_load_string.  On success *out is a new conf. */
static rd_status conf_parse(const char *text, size_t len, const char *path, repod_conf **out,
                            rd_error *err)
{
    conf_ctx ctx = {.path = path != NULL ? path : "(string)", .err = err};
    json_t *root = NULL;
    json_error_t jerr;
    rd_status rc = RD_OK;

    *out = NULL;
    rd_error_clear(err);
    ctx.conf = calloc(1, sizeof(*ctx.conf));
    ctx.base = path_dirname(path != NULL ? path : "");
    if (ctx.conf == NULL || ctx.base == NULL ||
        (ctx.conf->path = strdup(path != NULL ? path : "")) == NULL) {
        rc = conf_oom(&ctx);
        goto done;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: invalid JSON at line %d column %d: %s",
                     ctx.path, jerr.line, jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: expected a JSON object at the top level",
                     ctx.path);
        goto done;
    }
    if ((rc = walk_object(&ctx, root, "")) != RD_OK)
        goto done;
    for (size_t i = 0; i < CONF_ROW_COUNT && rc == RD_OK; i++)
        if (conf_rows[i].type != CONF_SECTION && !ctx.given[i])
            rc = row_default(&ctx, &conf_rows[i]);
    if (rc != RD_OK)
        goto done;
    for (size_t i = 0; i < CONF_ROW_COUNT; i++) {
        const conf_row *row = &conf_rows[i];
        if ((row->flags & CF_NPROC_ZERO) && *(int *)field_at(ctx.conf, row->off) == 0) {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            if (cores < 1)
                cores = 1;
            if (cores > row->max)
                cores = (long)row->max;
            *(int *)field_at(ctx.conf, row->off) = (int)cores;
        }
    }
    *out = ctx.conf;
    ctx.conf = NULL;
done:
    json_decref(root);
    conf_free(ctx.conf);
    free(ctx.base);
    return rc;
}

/* Loads and validates the file at path (see conf.h).  Returns RD_OK with a
 * new *out, or RD_ERR_INVALID_PARAMETER with "PATH: KEY: REASON" in err. */
rd_status conf_load(const char *path, repod_conf **out, rd_error *err)
{
    char *text = NULL;
    size_t len = 0;
    rd_status rc;

    *out = NULL;
    text = util_read_file(path, &len);
    if (text == NULL) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    rc = conf_parse(text, len, path, out, err);
done:
    free(text);
    return rc;
}

/* Like conf_load, from a NUL-terminated text; path names the (possibly
 * imaginary) file for messages and relative paths. */
rd_status conf_load_string(const char *text, const char *path, repod_conf **out, rd_error *err)
{
    return conf_parse(text, strlen(text), path, out, err);
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
            free(*(char **)field_at(conf, row->off));
            break;
        case CONF_HOSTPORT:
            free(*(char **)field_at(conf, row->aux));
            if (row->off != CONF_NONE)
                free(*(char **)field_at(conf, row->off));
            break;
        case CONF_STRLIST: {
            char **list = *(char ***)field_at(conf, row->off);
            for (size_t k = 0; list != NULL && list[k] != NULL; k++)
                free(list[k]);
            free(list);
            break;
        }
        case CONF_OBJECT:
        case CONF_ARRAY:
            json_decref(*(json_t **)field_at(conf, row->off));
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
    fprintf(f, "  %-44s %-9s %-26s %s%s\n", key, type_info[row->type].name, def, row->help, range);
}

/* Prints every key with its type, default and meaning to f (for --help). */
void conf_print_keys(FILE *f)
{
    fprintf(f, "Configuration keys (strict JSON; relative paths are relative to the file):\n");
    fprintf(f, "  %-44s %-9s %-26s %s\n", "KEY", "TYPE", "DEFAULT", "MEANING");
    for (size_t i = 0; i < CONF_ROW_COUNT; i++)
        if (conf_rows[i].type != CONF_SECTION)
            row_print(f, "", &conf_rows[i]);
    for (size_t i = 0; i < REGISTRY_ENTRY_ROW_COUNT; i++)
        row_print(f, "registries.<host>.", &registry_entry_rows[i]);
}
