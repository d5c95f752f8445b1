/*
 * log.c - leveled logging to stderr with ISO-8601 UTC timestamps.
 */
#include "log.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = LOG_LVL_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error", "audit"};

int log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i <= LOG_LVL_ERROR; i++) /* "audit" is not a level to set */
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_LVL_WARN;
    return -1;
}

const char *log_level_name(log_level level)
{
    if ((int)level < 0 || level > LOG_LVL_AUDIT)
        return "info";
    return level_names[level];
}

void log_set_level(log_level level)
{
    atomic_store(&current_level, (int)level);
}

log_level log_get_level(void)
{
    return (log_level)atomic_load(&current_level);
}

int log_enabled(log_level level)
{
    return (int)level >= atomic_load(&current_level);
}

void log_msg(log_level level, const char *fmt, ...)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t n;
    va_list ap;

    if (!log_enabled(level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ", (long)(tv.tv_usec / 1000),
                          log_level_name(level));
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

static void libevent_log_cb(int severity, const char *msg)
{
    log_level level = LOG_LVL_DEBUG;
    switch (severity) {
    case EVENT_LOG_DEBUG:
        level = LOG_LVL_DEBUG;
        break;
    case EVENT_LOG_MSG:
        level = LOG_LVL_INFO;
        break;
    case EVENT_LOG_WARN:
        level = LOG_LVL_WARN;
        break;
    default:
        level = LOG_LVL_ERROR;
        break;
    }
    log_msg(level, "libevent: %s", msg);
}

void log_capture_libevent(void)
{
    event_set_log_callback(libevent_log_cb);
}
