/*
 * util.h - small shared helpers: time stamps, ids, random bytes, hex, files.
 */
#ifndef REPOD_UTIL_H
#define REPOD_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_TIMESTAMP_LEN 24 /* "2022-01-01T08:02:38.094Z" */

/* Writes the current UTC time as ISO-8601 with milliseconds and 'Z' into buf
 * (at least UTIL_TIMESTAMP_LEN + 1 bytes). */
void util_now_iso8601(char *buf, size_t size);

/* Formats ms since the epoch like util_now_iso8601. */
void util_format_iso8601(int64_t epoch_ms, char *buf, size_t size);

/* Milliseconds since the epoch (wall clock) / monotonic microseconds. */
int64_t util_now_ms(void);
int64_t util_monotonic_us(void);

/* Fills buf with n cryptographically random bytes; 0 on success, -1 on error. */
int util_random_bytes(void *buf, size_t n);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void util_hex(const void *data, size_t n, char *out);

/* Makes "<prefix><12 lowercase hex>" into out (strlen(prefix) + 13 bytes). */
int util_make_id(const char *prefix, char *out, size_t size);

/* SHA-256 of s as 64 lowercase hex characters into out (65 bytes). */
void util_sha256_hex(const void *data, size_t n, char *out);

/* Reads a whole file into a new NUL-terminated malloc'd buffer; NULL on error
 * (errno set).  *len receives the length when len is not NULL. */
char *util_read_file(const char *path, size_t *len);

/* Writes data to path atomically (temp file in the same folder, fsync, rename)
 * with the given mode; 0 on success, -1 on error (errno set). */
int util_write_file_atomic(const char *path, const void *data, size_t len, int mode);

/* A new malloc'd string formatted like printf; NULL when out of memory. */
char *util_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Creates dir and its parents (mode 0750); 0 on success or if it exists. */
int util_mkdir_p(const char *dir);

/* Removes path and everything below it (files, folders, links; symbolic
 * links are not followed), as far as it can; errors are ignored. */
void util_remove_tree(const char *path);

#endif
