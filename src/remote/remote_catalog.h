/*
 * remote_catalog.h - helpers shared by remote.c and remote_catalog.c
 * (internal to src/remote).
 */
#ifndef REPOD_REMOTE_CATALOG_H
#define REPOD_REMOTE_CATALOG_H

#include <stddef.h>

#include "resource.h"

/* The cache key kind letter ('C', 'M', 'N', 'P', 'G') of res: its
 * cache_prefix, then the letter, written into buf (returned). */
const char *remote_kind(const resource_desc *res, char letter, char *buf, size_t size);

#endif
