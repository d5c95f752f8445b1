/*
 * openapi_doc.h - docs/openapi.json, embedded into the binary at build time
 * (cmake/embed-file.cmake writes the definitions into the build folder).
 * Static data: never freed, shared by every thread.
 */
#ifndef REPOD_EDGE_OPENAPI_DOC_H
#define REPOD_EDGE_OPENAPI_DOC_H

#include <stddef.h>

extern const unsigned char edge_openapi_json[]; /* the bytes, NUL-terminated */
extern const size_t edge_openapi_json_len;      /* without the NUL */
extern const char edge_openapi_json_etag[];     /* quoted strong ETag */

#endif
