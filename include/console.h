/*
 * console.h - the embedded web console (SPEC 13, docs/console.md).
 *
 * The files of console/ (HTML, CSS, JavaScript modules, an SVG icon) are
 * turned into a C table at build time by cmake/embed_assets.cmake: path,
 * content type, bytes and a strong ETag (SHA-256 of the bytes).  This module
 * decides what a GET or HEAD under /ui answers; the edge (server.c) sends it.
 * Nothing here allocates: answers point into static data.
 *
 * Every console answer, errors included, carries the security headers of
 * CONSOLE_CSP (Content-Security-Policy), X-Content-Type-Options: nosniff and
 * Referrer-Policy: no-referrer.
 */
#ifndef REPOD_CONSOLE_H
#define REPOD_CONSOLE_H

#include <stddef.h>

#include "conf.h"
#include "status.h"

#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; "             \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* One embedded file (the generated table; static storage). */
typedef struct {
    const char *path;         /* "/ui/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* "\"<sha256 hex>\"" */
} console_asset;

extern const console_asset console_assets[];
extern const size_t console_asset_count;

#define CONSOLE_HEADERS_MAX 8

/* What to answer.  When error is not RD_OK the edge answers the API's JSON
 * error (error, message) with headers; else status, content_type and body
 * (len bytes; empty for 304 and 308) with headers.  Everything points to
 * static storage. */
typedef struct {
    rd_status error;
    const char *message;
    int status; /* 200, 304 or 308 */
    const char *content_type;
    const char *body;
    size_t len;
    const char *headers[2 * CONSOLE_HEADERS_MAX + 1]; /* name, value, ..., NULL */
} console_answer;

/* The embedded file at path ("/ui/" is "/ui/index.html"), or NULL. */
const console_asset *console_find(const char *path);

/* 1 when the console answers this request (out filled), 0 when it is not
 * the console's: path is not /ui or under /ui/, or conf->ui_enabled is off
 * (the API then answers its 404).  method is "GET", "HEAD", ...;
 * if_none_match is the request's If-None-Match header or NULL.
 *   /ui                -> 308 to /ui/
 *   a known file       -> 200 (or 304 when if_none_match names its ETag)
 *   another /ui/ path  -> 404 ERROR_UNKNOWN_ROUTE
 *   not GET or HEAD    -> 405 ERROR_METHOD_NOT_ALLOWED with Allow: GET, HEAD */
int console_route(const repod_conf *conf, const char *method, const char *path,
                  const char *if_none_match, console_answer *out);

/* 1 when the If-None-Match value (a list of entity tags, W/ prefixes
 * compared weakly, or "*") matches etag. */
int console_etag_matches(const char *if_none_match, const char *etag);

#endif
