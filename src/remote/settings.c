/*
 * settings.c - validation of the settings of a remote repository (register
 * and update requests, and the "remotes" of the config file).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote.h"
#include "util.h"

rd_status remote_check_endpoint(const char *endpoint, rd_error *err)
{
    /* https://host[:port] with nothing after it */
    const char *p = endpoint + strlen("https://");
    if (strncmp(endpoint, "https://", 8) != 0 || *p == '\0' || strlen(endpoint) > 255)
        goto bad;
    for (; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            goto bad;
    }
    return RD_OK;
bad:
    return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                   "Invalid parameter. (key = endpoint, reason = expected https://host:port)");
}

static const struct {
    const char *key;
    int is_bool;
    json_int_t min, max;
} cache_keys[] = {
    {"ttl_s", 0, 0, 31536000},
    {"stale_while_revalidate", 1, 0, 1},
    {"stale_if_error_s", 0, 0, 31536000},
    {"negative_ttl_s", 0, 0, 86400},
    {"timeout_ms", 0, 100, 600000},
    {"max_response_bytes", 0, 1024, 1073741824},
    {"sync_page_size", 0, 1, 100000},
};

rd_status remote_check_cache(const json_t *cache, rd_error *err)
{
    const char *key;
    json_t *v;
    if (cache == NULL)
        return RD_OK;
    if (!json_is_object(cache))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = cache, type = object)");
    json_object_foreach((json_t *)cache, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(cache_keys) / sizeof(cache_keys[0]); i++)
            if (strcmp(cache_keys[i].key, key) == 0)
                break;
        if (i == sizeof(cache_keys) / sizeof(cache_keys[0]))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = cache.%s)",
                           key);
        if (cache_keys[i].is_bool ? !json_is_boolean(v) : !json_is_integer(v))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = cache.%s, type = %s)", key,
                           cache_keys[i].is_bool ? "boolean" : "integer");
        if (!cache_keys[i].is_bool && (json_integer_value(v) < cache_keys[i].min ||
                                       json_integer_value(v) > cache_keys[i].max))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                           "Invalid parameter. (key = cache.%s, reason = must be between %lld and "
                           "%lld)",
                           key, (long long)cache_keys[i].min, (long long)cache_keys[i].max);
    }
    return RD_OK;
}

/* 1 when path cannot be opened for reading as a regular file (errno set):
 * a CA bundle the server cannot read is the caller's mistake, not an
 * upstream outage. */
static int ca_file_unreadable(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), dir;
    if (fd < 0)
        return 1;
    dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir)
        errno = EISDIR;
    return dir;
}

rd_status remote_check_upstream(const json_t *up, rd_error *err)
{
    const char *key;
    json_t *v;
    if (up == NULL)
        return RD_OK;
    if (!json_is_object(up))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = upstream, type = object)");
    json_object_foreach((json_t *)up, key, v)
    {
        int is_bool = strcmp(key, "verify") == 0;
        if (strcmp(key, "token") != 0 && strcmp(key, "ca_file") != 0 && !is_bool)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = upstream.%s)",
                           key);
        if (!is_bool && json_is_string(v) && json_string_length(v) > 512)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                           "Invalid parameter. (key = upstream.%s, reason = longer than 512)", key);
        if (is_bool ? !json_is_boolean(v) : !json_is_string(v))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = upstream.%s, type = %s)", key,
                           is_bool ? "boolean" : "string");
        if (strcmp(key, "ca_file") == 0 && ca_file_unreadable(json_string_value(v)))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                           "Invalid parameter. (key = upstream.ca_file, reason = cannot read "
                           "the file: %s)",
                           strerror(errno));
    }
    return RD_OK;
}

rd_status remote_check_priority(const json_t *body, json_int_t *out, rd_error *err)
{
    json_t *v = json_object_get(body, "priority");
    if (v == NULL || json_is_null(v))
        return RD_OK;
    if (!json_is_integer(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = priority, type = integer)");
    if (json_integer_value(v) < 1 || json_integer_value(v) > 1000000)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = priority, reason = must be between 1 and "
                       "1000000; the local repository always comes first)");
    *out = json_integer_value(v);
    return RD_OK;
}

json_t *remote_new_record(const char *name, const char *endpoint, json_int_t priority,
                          const json_t *upstream, const json_t *cache)
{
    char now[32];
    json_t *up = json_is_object(upstream) ? json_deep_copy(upstream) : json_object();
    json_t *c = json_is_object(cache) ? json_deep_copy(cache) : json_object();
    util_now_iso8601(now, sizeof(now));
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o}", "name", name, "repository_type",
                     "remote", "endpoint", endpoint, "priority", priority, "created_at", now,
                     "upstream_config", up, "cache", c);
}
