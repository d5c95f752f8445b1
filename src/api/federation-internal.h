/*
 * federation-internal.h - the cache verdicts of federation.c shared with
 * the other remote reads of src/api (federation_item.c: the get of one
 * record; federation_versions.c: version lists).
 */
#ifndef REPOD_FEDERATION_INTERNAL_H
#define REPOD_FEDERATION_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "api.h"
#include "fetcher.h"
#include "resource.h"

typedef enum { USE_FRESH, USE_STALE, MUST_FETCH, UNAVAILABLE } verdict;

/* What to do with an entry of repository rec fetched at fetched_at (have 0:
 * nothing cached); *refresh = 1 when a background refresh must be queued
 * (a stale entry served while it is revalidated). */
verdict federation_judge(app *a, const json_t *rec, int have, int64_t fetched_at, int *refresh);

/* After a failed fetch: 1 when the cached entry is within stale_if_error_s. */
int federation_stale_usable(app *a, const json_t *rec, int have, int64_t fetched_at);

/* Notes an X-Cache outcome (the worst wins: HIT < MISS < STALE). */
void federation_note_cache(api_call *call, const char *what);

/* Queues a background fetch of kind for res (no waiter). */
void federation_refresh(app *a, const resource_desc *res, fetch_kind kind,
                        const char *repository_id, const char *id);

#endif
