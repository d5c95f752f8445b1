/*
 * http_guard.h - checks each request head of one connection as its bytes
 * arrive, before evhttp parses them (edge-internal; used by server.c).
 *
 * libevent 2.1 gives a server no hook between "head parsed" and "body
 * read", and answers its own limits with HTML or a bare close.  The guard
 * watches the decrypted input buffer of the connection (an evbuffer
 * callback runs before evhttp's read callback) and follows the HTTP/1.1
 * framing: request heads, Content-Length bodies, chunked bodies.  A request
 * it refuses is cut at the offending line and completed with a few
 * synthetic bytes, so that evhttp dispatches it at once, without reading
 * the body; the edge then answers the refusal (JSON, Connection: close).
 *
 * Refused: a head over max_header_bytes (431); a declared Content-Length
 * or a chunked body over max_body_bytes (413); Content-Length values that
 * differ, Content-Length with Transfer-Encoding, a Transfer-Encoding other
 * than "chunked", an invalid Content-Length or chunk size, a folded header
 * line, an empty request line, a body on a method evhttp reads none for
 * (400).  Identical repeated Content-Length values are accepted.
 */
#ifndef REPOD_HTTP_GUARD_H
#define REPOD_HTTP_GUARD_H

#include <event2/buffer.h>
#include <stdint.h>

#include "status.h"

typedef struct http_guard http_guard;

/* Starts watching in (the input buffer of a new connection; borrowed, must
 * outlive the guard).  NULL when out of memory. */
http_guard *http_guard_new(struct evbuffer *in, int64_t max_header_bytes, int64_t max_body_bytes);

/* Stops watching and frees g (NULL is a no-op). */
void http_guard_free(http_guard *g);

/* Called once per request evhttp dispatches on the connection, in order.
 * Returns RD_OK, or the refusal of that request with its client message in
 * *message and the method and path of its request line (as far as they
 * were read; "-" otherwise) in *method / *path; all three borrowed from g. */
rd_status http_guard_next(http_guard *g, const char **message, const char **method,
                          const char **path);

/* The evhttp limits that go with the guard's: a little above its own, so
 * that the guard always refuses first and evhttp never answers itself. */
int64_t http_guard_evhttp_header_limit(int64_t max_header_bytes);

#endif
