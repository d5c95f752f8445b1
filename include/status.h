/*
 * status.h - the one status type of repod.
 *
 * Every fallible function returns an rd_status and, on failure, fills an
 * rd_error with the code and a human-readable message that names the offending
 * key or value.  One table (status.c) maps each code to its HTTP status and to
 * the error-code string of the API (SPEC section 2); only the HTTP edge turns
 * an rd_error into a reply.
 */
#ifndef REPOD_STATUS_H
#define REPOD_STATUS_H

#include <stddef.h>

typedef enum {
    RD_OK = 0,
    /* 400 */
    RD_ERR_INVALID_JSON,
    RD_ERR_REQUIRED_PARAMETER,
    RD_ERR_INVALID_PARAMETER,
    RD_ERR_INVALID_PARAMETER_TYPE,
    RD_ERR_INVALID_IMAGE_LENGTH,
    RD_ERR_INVALID_IMAGE_FORMAT,
    RD_ERR_INVALID_TEMPLATE_SCHEMA,
    RD_ERR_INVALID_REGISTRY_TYPE,
    RD_ERR_DB_QUERY,
    RD_ERR_OPERATOR_VALUE_TYPE,
    RD_ERR_OPERATOR_LIST_VALUE_TYPE,
    RD_ERR_OPERATOR_BOOLEAN_TYPE,
    RD_ERR_BAD_REQUEST,
    /* 401 / 403 */
    RD_ERR_AUTHENTICATE_FAILURE,
    RD_ERR_PERMISSION_DENIED,
    /* 404 */
    RD_ERR_NOT_FOUND,
    RD_ERR_NO_PLUGIN,
    RD_ERR_NO_IMAGE_IN_REGISTRY,
    RD_ERR_UNKNOWN_ROUTE,
    /* 405 */
    RD_ERR_METHOD_NOT_ALLOWED,
    /* 409 */
    RD_ERR_SAVE_UNIQUE_VALUES,
    RD_ERR_NOT_LOCAL_PLUGIN,
    RD_ERR_EXIST_RESOURCE,
    /* 413 / 431 / 429 */
    RD_ERR_REQUEST_TOO_LARGE,
    RD_ERR_REQUEST_HEADER_TOO_LARGE,
    RD_ERR_TOO_MANY_REQUESTS,
    /* 500 */
    RD_ERR_INTERNAL,
    /* 502 / 503 / 504 */
    RD_ERR_UPSTREAM_BAD_RESPONSE,
    RD_ERR_REGISTRY_BAD_RESPONSE,
    RD_ERR_UPSTREAM_UNAVAILABLE,
    RD_ERR_REGISTRY_UNAVAILABLE,
    RD_ERR_UPSTREAM_TIMEOUT,
    RD_ERR_REGISTRY_TIMEOUT,
    RD_STATUS_COUNT,
    /* Not an error: the operation continues asynchronously (see api.h). */
    RD_PENDING = 1000
} rd_status;

#define RD_ERROR_MESSAGE_MAX 512

/* A failure: its code and a message for the client.  Messages never carry
 * file paths, library messages or secrets (SPEC 2). */
typedef struct {
    rd_status code;
    char message[RD_ERROR_MESSAGE_MAX];
} rd_error;

/* Sets err (if not NULL) to code and the formatted message; returns code so a
 * caller can write `return rd_fail(err, RD_ERR_X, "...")`. */
rd_status rd_fail(rd_error *err, rd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Resets err to RD_OK with an empty message. */
void rd_error_clear(rd_error *err);

/* The API error-code string of code, e.g. "ERROR_NOT_FOUND"; "OK" for RD_OK. */
const char *rd_status_name(rd_status code);

/* The HTTP status of code (200 for RD_OK). */
int rd_status_http(rd_status code);

/* The HTTP reason phrase for an HTTP status code ("Not Found"). */
const char *rd_http_reason(int http_status);

#endif
