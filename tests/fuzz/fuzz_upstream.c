/*
 * fuzz_upstream.c - the answers of an upstream repod: the bytes are a
 * catalog page answer {"results": [...], "total_count": N}; the catalog
 * page parser (catalog_sync_page, fed the same page twice) and the
 * upstream record validator (remote_check_plugin on each record).
 * Invariants: a page accepted without error counts no more distinct
 * plugins than records seen; records remote_check_plugin accepts have a
 * string plugin_id.
 */
#include <unistd.h>

#include "../../src/remote/catalog_sync.h"
#include "fuzz.h"
#include "remote.h"
#include "store.h"

/* One store for the whole run, in a new folder under /tmp (the replay test
 * closes and removes it). */
static store *fuzz_upstream_st;
static char fuzz_upstream_dir[] = "/tmp/repod-fuzz-upstream-XXXXXX";

static store *fuzz_upstream_store(void)
{
    rd_error err;
    if (fuzz_upstream_st == NULL) {
        FUZZ_CHECK(mkdtemp(fuzz_upstream_dir) != NULL);
        FUZZ_CHECK(store_open(fuzz_upstream_dir, &fuzz_upstream_st, &err) == RD_OK);
    }
    return fuzz_upstream_st;
}

static void fuzz_upstream(const uint8_t *data, size_t size)
{
    json_t *body = fuzz_json(data, size), *rec;
    catalog_sync *s = NULL;
    rd_error err;
    int more = 0;
    size_t i, seen = 0;

    if (body == NULL)
        goto done;
    if (remote_check_plugin(body, &err) == RD_OK)
        FUZZ_CHECK(json_is_string(json_object_get(body, "plugin_id")));
    json_array_foreach(json_object_get(body, "results"), i, rec)
    {
        if (remote_check_plugin(rec, &err) == RD_OK)
            FUZZ_CHECK(json_is_string(json_object_get(rec, "plugin_id")));
    }
    if (!json_is_object(body))
        goto done;
    s = catalog_sync_new(fuzz_upstream_store(), "repo-1", 1 + (int64_t)(size % 4));
    FUZZ_CHECK(s != NULL);
    for (int round = 0; round < 2; round++) {
        json_t *req = catalog_sync_next_request(s);
        FUZZ_CHECK(req != NULL);
        json_decref(req);
        if (catalog_sync_page(s, body, &more, &err) != RD_OK)
            break;
        seen += json_array_size(json_object_get(body, "results"));
        FUZZ_CHECK(catalog_sync_count(s) <= seen);
        if (!more)
            break;
    }
done:
    catalog_sync_free(s);
    json_decref(body);
}

FUZZ_ENTRY(upstream)
