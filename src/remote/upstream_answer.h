/*
 * upstream_answer.h - internal to src/remote: how a failed call to an
 * upstream (a transport failure, or an answer other than 200 with the error
 * body of an upstream repod or another server of the published contract)
 * becomes the status and message repod answers and logs.
 *
 * Pure functions: no I/O and no state, so that the fuzz target
 * tests/fuzz/fuzz_upstream_answer.c reaches them.  The strings an upstream
 * sends (detail.code, detail.message) reach the message only with control
 * bytes replaced by '?', cut to a bound at a character boundary, and with
 * every occurrence of the token repod sent replaced by "[redacted]".
 */
#ifndef REPOD_UPSTREAM_ANSWER_H
#define REPOD_UPSTREAM_ANSWER_H

#include <jansson.h>
#include <stdint.h>

#include "fetcher.h"
#include "status.h"

/* Longest upstream code and message (bytes) copied into a message. */
#define UPSTREAM_ANSWER_CODE_MAX    64
#define UPSTREAM_ANSWER_MESSAGE_MAX 240

/* A transport failure (result is an httpc_result other than HTTPC_OK, why
 * its text or NULL) of the call about subject (repository id or endpoint)
 * -> RD_ERR_UPSTREAM_TIMEOUT, _BAD_RESPONSE or _UNAVAILABLE with err set. */
rd_status upstream_answer_transport(const char *subject, int result, const char *why,
                                    int64_t timeout_ms, rd_error *err);

/* An answer with HTTP status (not 200) to a call of kind about subject;
 * body is its JSON (borrowed, NULL when it was not JSON); token is the
 * bearer token sent (NULL or "" = none).  Returns RD_ERR_NOT_FOUND (404
 * with ERROR_NO_PLUGIN / ERROR_NOT_FOUND to a PLUGIN or VERSIONS call; err
 * untouched), a registry status relayed from a VERSIONS answer, or
 * RD_ERR_UPSTREAM_UNAVAILABLE (503) / RD_ERR_UPSTREAM_BAD_RESPONSE; never
 * RD_OK. */
rd_status upstream_answer_status(fetch_kind kind, const char *subject, int status,
                                 const json_t *body, const char *token, rd_error *err);

/* Copies s into out (size bytes, at least 1) for a message: control bytes
 * become '?', occurrences of token (when not NULL or "") "[redacted]", and
 * the result is cut to max bytes (and size - 1) at a UTF-8 boundary. */
void upstream_answer_clean(const char *s, const char *token, size_t max, char *out, size_t size);

#endif
