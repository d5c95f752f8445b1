/*
 * fuzz_stat.c - the stat pipeline: the bytes are a StatisticsQuery
 * (filter, keyword, distinct or aggregate stages, page); the stat compiler
 * and runner (query_stat) over a small fixed catalog.  Invariants: on
 * success the answer is an object with a "results" array, on failure
 * nothing is returned.
 */
#include "fuzz.h"
#include "query.h"

static void fuzz_stat(const uint8_t *data, size_t size)
{
    json_t *stat = fuzz_json(data, size), *out = NULL;
    rd_error err;

    if (stat == NULL)
        return;
    if (query_stat(stat, size % 2 ? &query_schema_repository : &query_schema_plugin, fuzz_catalog(),
                   &out, &err) == RD_OK) {
        FUZZ_CHECK(json_is_object(out));
        FUZZ_CHECK(json_is_array(json_object_get(out, "results")));
    } else {
        FUZZ_CHECK(out == NULL);
    }
    json_decref(out);
    json_decref(stat);
}

FUZZ_ENTRY(stat)
