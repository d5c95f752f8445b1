/*
 * console.c - answers for the embedded web console under /ui (console.h).
 *
 * The files themselves live in the table that cmake/embed_assets.cmake
 * generates from console/; this file only maps a request to one of them
 * and adds the headers every console answer carries.
 */
#include "console.h"

#include <string.h>

/* Revalidated on every use: the file names carry no version, and the ETag
 * makes the revalidation a body-less 304. */
#define CONSOLE_CACHE_CONTROL "no-cache"

static void add_header(console_answer *out, const char *name, const char *value)
{
    size_t n = 0;
    while (out->headers[n] != NULL)
        n += 2;
    if (n + 2 < sizeof(out->headers) / sizeof(out->headers[0])) {
        out->headers[n] = name;
        out->headers[n + 1] = value;
        out->headers[n + 2] = NULL;
    }
}

static void security_headers(console_answer *out)
{
    add_header(out, "Content-Security-Policy", CONSOLE_CSP);
    add_header(out, "X-Content-Type-Options", "nosniff");
    add_header(out, "Referrer-Policy", "no-referrer");
}

const console_asset *console_find(const char *path)
{
    const console_asset *found = NULL;
    if (path == NULL)
        goto done;
    if (strcmp(path, "/ui/") == 0)
        path = "/ui/index.html";
    for (size_t i = 0; i < console_asset_count; i++) {
        if (strcmp(console_assets[i].path, path) == 0) {
            found = &console_assets[i];
            break;
        }
    }
done:
    return found;
}

int console_etag_matches(const char *if_none_match, const char *etag)
{
    const char *p = if_none_match;
    size_t elen = strlen(etag);
    int match = 0;
    while (p != NULL && *p != '\0') {
        const char *end;
        size_t len;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        if (strncmp(p, "W/", 2) == 0)
            p += 2; /* If-None-Match compares weakly */
        end = p;
        if (*end == '"') {
            end = strchr(end + 1, '"');
            end = end != NULL ? end + 1 : p + strlen(p);
        } else {
            while (*end != '\0' && *end != ',' && *end != ' ' && *end != '\t')
                end++;
        }
        len = (size_t)(end - p);
        if ((len == 1 && *p == '*') || (len == elen && strncmp(p, etag, len) == 0)) {
            match = 1;
            break;
        }
        p = end;
    }
    return match;
}

int console_route(const repod_conf *conf, const char *method, const char *path,
                  const char *if_none_match, console_answer *out)
{
    const console_asset *asset;
    int mine = 0;

    memset(out, 0, sizeof(*out));
    out->error = RD_OK;
    if (conf == NULL || !conf->ui_enabled || path == NULL)
        goto done;
    if (strcmp(path, "/ui") != 0 && strncmp(path, "/ui/", 4) != 0)
        goto done;
    mine = 1;
    security_headers(out);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        add_header(out, "Allow", "GET, HEAD");
        out->error = RD_ERR_METHOD_NOT_ALLOWED;
        out->message = "Method not allowed. (allowed = GET, HEAD)";
        goto done;
    }
    if (strcmp(path, "/ui") == 0) {
        add_header(out, "Location", "/ui/");
        out->status = 308;
        out->content_type = "text/plain; charset=utf-8";
        out->body = "";
        goto done;
    }
    asset = console_find(path);
    if (asset == NULL) {
        out->error = RD_ERR_UNKNOWN_ROUTE;
        out->message = "Unknown route.";
        goto done;
    }
    add_header(out, "ETag", asset->etag);
    add_header(out, "Cache-Control", CONSOLE_CACHE_CONTROL);
    out->content_type = asset->content_type;
    if (if_none_match != NULL && console_etag_matches(if_none_match, asset->etag)) {
        out->status = 304;
        out->body = "";
        goto done;
    }
    out->status = 200;
    out->body = (const char *)asset->data;
    out->len = asset->len;
done:
    return mine;
}
