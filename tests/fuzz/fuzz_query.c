/*
 * fuzz_query.c - the list query of every list API: the bytes are a request
 * body {"query": ..., other keys as eq filters}; query_compile, then
 * query_match and query_run over a small fixed catalog.  Invariants: a
 * query that compiles runs without error, total_count counts the documents
 * query_match accepts, and results never outnumber total_count.
 */
#include "fuzz.h"
#include "query.h"

static void fuzz_query(const uint8_t *data, size_t size)
{
    json_t *body = fuzz_json(data, size), *out = NULL, *eq = NULL;
    const json_t *docs = fuzz_catalog();
    query *q = NULL;
    rd_error err;
    size_t matched = 0, i;
    json_t *doc;

    if (!json_is_object(body))
        goto done;
    eq = json_deep_copy(body);
    FUZZ_CHECK(eq != NULL);
    json_object_del(eq, "query");
    if (query_compile(json_object_get(body, "query"), eq,
                      size % 2 ? &query_schema_repository : &query_schema_plugin, &q,
                      &err) != RD_OK) {
        FUZZ_CHECK(q == NULL);
        goto done;
    }
    json_array_foreach(docs, i, doc) matched += query_match(q, doc) ? 1 : 0;
    FUZZ_CHECK(query_run(q, docs, &out, &err) == RD_OK);
    FUZZ_CHECK(json_is_object(out));
    FUZZ_CHECK(json_integer_value(json_object_get(out, "total_count")) == (json_int_t)matched);
    FUZZ_CHECK(json_array_size(json_object_get(out, "results")) <= matched);
done:
    json_decref(out);
    query_free(q);
    json_decref(eq);
    json_decref(body);
}

FUZZ_ENTRY(query)
