/*
 * log.h - leveled logging to stderr.
 *
 * log_msg() checks the level before formatting.  The level may be changed at
 * any time from any thread (SIGHUP reload); lines are written with one
 * write(2) each so threads never interleave inside a line.  Never pass a
 * bearer token or secret to these functions.
 */
#ifndef REPOD_LOG_H
#define REPOD_LOG_H

/* LOG_LVL_AUDIT is not a level an operator sets: audit lines (one per write,
 * token changes) are written whatever log_level says. */
typedef enum {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO,
    LOG_LVL_WARN,
    LOG_LVL_ERROR,
    LOG_LVL_AUDIT
} log_level;

/* Parses "debug", "info", "warn"/"warning", "error"; returns -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(log_level level);

void log_set_level(log_level level);
log_level log_get_level(void);
int log_enabled(log_level level);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Routes libevent's internal log messages into log_msg(). */
void log_capture_libevent(void);

#define LOG_DEBUG(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_DEBUG))                                                            \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                                   \
    } while (0)
#define LOG_INFO(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_LVL_INFO))                                                             \
            log_msg(LOG_LVL_INFO, __VA_ARGS__);                                                    \
    } while (0)
#define LOG_WARN(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_AUDIT(...) log_msg(LOG_LVL_AUDIT, __VA_ARGS__)

#endif
