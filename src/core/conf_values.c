/*
 * conf_values.c - checking and storing one configuration value: the JSON
 * type and flags/bounds of a row, host:port ("host:port" / "[v6]:port")
 * parsing, path resolution against the config folder, and storing strings,
 * paths, ints, string lists and JSON copies into repod_conf fields.
 */
#include "conf-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Returns a new string: the folder part of path ("." when it has none). */
char *conf_path_dirname(const char *path)
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
char *conf_path_join(const char *base, const char *value)
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

/* 0 when path names a readable regular file; else -1 with errno set. */
int conf_file_readable(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int rc = -1;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0)
        goto done;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return rc;
}

/* 1 when s is https://host[:port] with nothing after it (the form of a
 * remote repository's endpoint). */
static int origin_valid(const char *s)
{
    const char *p = s + strlen("https://");
    if (strncmp(s, "https://", 8) != 0 || *p == '\0' || strlen(s) > 255)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return 0;
    return 1;
}

/* Returns the row named key in rows[0..n), or NULL. */
const conf_row *conf_row_find(const conf_row *rows, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].key, key) == 0)
            return &rows[i];
    return NULL;
}

/* Per type: its name in conf_print_keys and the reason when a value has the
 * wrong JSON type. */
const conf_type_desc conf_type_info[] = {
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
int conf_choice_valid(const char *const *choices, const char *s)
{
    for (size_t i = 0; choices[i] != NULL; i++)
        if (strcmp(choices[i], s) == 0)
            return 1;
    return 0;
}

/* Writes the choices as "a, b, c" into buf. */
void conf_choices_format(const char *const *choices, char *buf, size_t n)
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
int conf_value_check(const conf_row *row, const json_t *v, char *reason, size_t n)
{
    char list[128];
    char *host = NULL;
    int port = 0, rc = -1;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    int64_t i = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;

    if (!json_type_fits(row->type, v)) {
        snprintf(reason, n, "%s", conf_type_info[row->type].expected);
        goto done;
    }
    if ((row->type == CONF_STRING || row->type == CONF_PATH) && s[0] == '\0' &&
        ((row->flags & CF_NONEMPTY) ||
         (row->type == CONF_PATH && !(row->flags & CF_EMPTY_UNSET)))) {
        snprintf(reason, n, "must not be empty");
        goto done;
    }
    if (row->type == CONF_STRING && row->choices != NULL && !conf_choice_valid(row->choices, s)) {
        conf_choices_format(row->choices, list, sizeof(list));
        snprintf(reason, n, "must be one of %s", list);
        goto done;
    }
    if (row->type == CONF_STRING && (row->flags & CF_URL) && strncmp(s, "https://", 8) != 0 &&
        strncmp(s, "http://", 7) != 0) {
        snprintf(reason, n, "must start with https:// or http://");
        goto done;
    }
    if (row->type == CONF_STRING && (row->flags & CF_ORIGIN) && !origin_valid(s)) {
        snprintf(reason, n, "expected https://host:port");
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
void *conf_field_at(repod_conf *conf, size_t off)
{
    return (char *)conf + off;
}

/* Replaces the char * at off with value (owned); value may be NULL. */
static void field_set_string(repod_conf *conf, size_t off, char *value)
{
    char **slot = conf_field_at(conf, off);
    free(*slot);
    *slot = value;
}

/* Stores an int row's value into its int or int64_t field. */
void conf_field_set_int(repod_conf *conf, const conf_row *row, int64_t value)
{
    if (row->size == sizeof(int64_t))
        *(int64_t *)conf_field_at(conf, row->off) = value;
    else
        *(int *)conf_field_at(conf, row->off) = (int)value;
}

/* Stores a string-like value (already checked) of row: a string, a path
 * resolved against base, or host:port.  Returns RD_OK or fails into ctx. */
rd_status conf_store_text(conf_ctx *ctx, const conf_row *row, const char *s, const char *base)
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
        copy = conf_path_join(base, s);
    } else if (row->type == CONF_HOSTPORT) {
        if (s[0] != '\0' && hostport_parse(s, &host, &port, reason, sizeof(reason)) != 0) {
            rc = conf_fail(ctx, row->key, "%s", reason);
            goto done;
        }
        field_set_string(ctx->conf, row->aux, host);
        *(int *)conf_field_at(ctx->conf, row->aux2) = port;
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
rd_status conf_store_strlist(conf_ctx *ctx, const conf_row *row, const json_t *v)
{
    size_t n = v != NULL ? json_array_size(v) : 0;
    char **list = calloc(n + 1, sizeof(*list));
    char ***slot = conf_field_at(ctx->conf, row->off);
    rd_status rc = RD_OK;

    if (list == NULL) {
        rc = conf_oom(ctx);
        goto done;
    }
    if (row->check != NULL && v != NULL) {
        json_t *copy = json_deep_copy(v);
        rc = copy != NULL ? row->check(ctx, row, copy) : conf_oom(ctx);
        json_decref(copy);
        if (rc != RD_OK)
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
    *(size_t *)conf_field_at(ctx->conf, row->aux) = n;
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
rd_status conf_store_json(conf_ctx *ctx, const conf_row *row, const json_t *v)
{
    json_t *copy = NULL;
    json_t **slot = conf_field_at(ctx->conf, row->off);
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
