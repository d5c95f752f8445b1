/*
 * test_readmodel.c - unit tests of the in-memory read model
 * (src/readmodel/, include/readmodel.h, include/resource.h).
 *
 * The main property: for random catalogs over several domains, random
 * writes (insert / replace / delete) interleaved with random queries, every
 * readmodel_query_json answer equals query_run over the reference documents
 * of the readable domains in default order (results, their order and
 * total_count).  Random tests print their seed; set REPOD_TEST_SEED to
 * replay one.  REPOD_RM_MEASURE=N additionally builds N generated plugins
 * and prints the resident memory they take.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "plugin.h"
#include "query.h"
#include "readmodel.h"
#include "resource.h"
#include "store.h"
#include "testkit.h"

#include "../../src/readmodel/rm-internal.h" /* the compact form, for test_kept_values_shared */

static json_t *plugin(const char *domain, const char *id, const char *name, const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:s}", "plugin_id", id,
                     "domain_id", domain, "name", name, "state", state, "resource_type",
                     "DataSource", "provider", "acme", "labels", "Fast", "created_at",
                     "2024-01-01T00:00:00.000Z", "updated_at", "2024-01-02T00:00:00.000Z");
}

static json_t *run_rm(readmodel *rm, const char *qtext, const char *const *domains, size_t nd)
{
    rd_error err = {0};
    json_error_t jerr;
    json_t *qobj = json_loads(qtext, 0, &jerr), *out = NULL;
    query *q = NULL;
    query_schema schema = resource_query_schema(&resource_plugin);
    assert_non_null(qobj);
    assert_int_equal(query_compile(qobj, NULL, &schema, &q, &err), RD_OK);
    assert_int_equal(readmodel_query_json(rm, q, domains, nd, &out, &err), RD_OK);
    query_free(q);
    json_decref(qobj);
    return out;
}

static void test_schema_from_description(void **state)
{
    query_schema s = resource_query_schema(&resource_plugin);
    (void)state;
    for (size_t i = 0;; i++) {
        assert_true((s.keyword_fields[i] == NULL) ==
                    (query_schema_plugin.keyword_fields[i] == NULL));
        if (s.keyword_fields[i] == NULL)
            break;
        assert_string_equal(s.keyword_fields[i], query_schema_plugin.keyword_fields[i]);
    }
    for (size_t i = 0;; i++) {
        assert_true((s.minimal_fields[i] == NULL) ==
                    (query_schema_plugin.minimal_fields[i] == NULL));
        if (s.minimal_fields[i] == NULL)
            break;
        assert_string_equal(s.minimal_fields[i], query_schema_plugin.minimal_fields[i]);
    }
    assert_string_equal(resource_plugin.id_field, "plugin_id");
    assert_true(resource_has_key(resource_plugin.sort_keys, "created_at"));
    assert_false(resource_has_key(resource_plugin.sort_keys, "labels"));
}

/* The ready bytes are exactly json_dumps(view, JSON_COMPACT) for awkward
 * values: escapes, control characters, NUL inside a string, non-ASCII,
 * reals, integers at the limits, empty and nested containers, key order. */
static void test_ready_bytes_equal_jansson(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *v = plugin("d1", "p1", "q\"uote\\back/slash\b\f\n\r\t\x01\x1f\x7f end", "ENABLED");
    readmodel_doc *d;
    size_t len;
    char *expect;
    (void)state;
    json_object_set_new(v, "nul", json_stringn("a\0b", 3));
    json_object_set_new(v, "utf8", json_string("caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80"));
    json_object_set_new(v, "reals", json_pack("[f,f,f,f,f]", 0.1, 1e300, -2.5, 100.0, 1e-7));
    json_object_set_new(v, "ints",
                        json_pack("[I,I,i]", (json_int_t)INT64_MAX, (json_int_t)INT64_MIN, 0));
    json_object_set_new(v, "nested",
                        json_pack("{s:{}, s:[], s:[{},[null,true,false]]}", "o", "a", "x"));
    json_object_set_new(v, "k\"e\ny", json_string(""));
    json_object_del(v, "name"); /* insertion order after a delete and a re-set */
    json_object_set_new(v, "name", json_string("late"));
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "p1", v, &err), RD_OK);
    d = readmodel_get(rm, "d1", "p1");
    assert_non_null(d);
    expect = json_dumps(v, JSON_COMPACT);
    assert_non_null(expect);
    assert_int_equal(memcmp(readmodel_doc_bytes(d, &len), expect, strlen(expect) + 1), 0);
    assert_int_equal(len, strlen(expect));
    free(expect);
    readmodel_doc_release(d);
    readmodel_destroy(rm);
    json_decref(v);
}

/* readmodel_doc_decode_keys: only the named top-level keys, in the view's
 * order, with the view's values. */
static void test_decode_keys(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *v = plugin("d1", "p1", "One", "ENABLED"), *keys, *got, *want;
    readmodel_doc *d;
    (void)state;
    json_object_set_new(v, "repository_info",
                        json_pack("{s:s, s:s}", "repository_id", "r1", "name", "local"));
    json_object_set_new(v, "kx", json_string("other"));
    json_object_set_new(v, "k", json_string("plain"));
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "p1", v, &err), RD_OK);
    d = readmodel_get(rm, "d1", "p1");
    assert_non_null(d);
    keys = json_pack("{s:n, s:n, s:n, s:n}", "repository_info", "name", "absent", "k");
    got = readmodel_doc_decode_keys(d, keys);
    want = json_pack("{s:O, s:O, s:O}", "name", json_object_get(v, "name"), "repository_info",
                     json_object_get(v, "repository_info"), "k", json_object_get(v, "k"));
    assert_non_null(got);
    assert_true(json_equal(got, want));
    {
        char *a = json_dumps(got, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);
        assert_string_equal(a, b); /* the view's order */
        free(a);
        free(b);
    }
    json_decref(got);
    json_decref(want);
    json_decref(keys);
    readmodel_doc_release(d);
    readmodel_destroy(rm);
    json_decref(v);
}

/* The bytes of d in parts, joined, must be json_dumps(view, JSON_COMPACT);
 * the joined copy, readmodel_doc_bytes and the decoded view agree. */
static void expect_parts(const readmodel_doc *d, const json_t *view, size_t want_tlen)
{
    const char *head, *tail;
    size_t hlen, tlen, blen = 0, total = readmodel_doc_parts(d, &head, &hlen, &tail, &tlen);
    char *expect = json_dumps(view, JSON_COMPACT), *copy = readmodel_doc_bytes_copy(d, NULL);
    json_t *back = readmodel_doc_decode(d);
    assert_non_null(expect);
    assert_int_equal(total, strlen(expect));
    assert_int_equal(hlen + tlen, total);
    assert_int_equal(head[hlen], '\0');
    assert_int_equal(memcmp(head, expect, hlen), 0);
    assert_int_equal(memcmp(tail, expect + hlen, tlen), 0);
    if (want_tlen != SIZE_MAX)
        assert_int_equal(tlen, want_tlen);
    assert_string_equal(copy, expect);
    assert_string_equal(readmodel_doc_bytes(d, &blen), expect);
    assert_int_equal(blen, total);
    assert_non_null(back);
    assert_true(json_equal(back, (json_t *)view));
    json_decref(back);
    free(copy);
    free(expect);
}

/* repository_info, the view's last member, is one tail shared by every
 * document holding the same one; any other last member gives no tail. */
static void test_shared_tail(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *info = json_pack("{s:s, s:s, s:s, s:s}", "repository_id", "repo-1", "name",
                             "lo\"cal \xc3\xa9", "repository_type", "local", "endpoint", "");
    json_t *a = plugin("d1", "p1", "One", "ENABLED"), *b = plugin("d2", "p2", "Two", "DISABLED");
    json_t *c = plugin("d1", "p3", "Three", "ENABLED"), *only = json_object();
    json_t *other = json_pack("{s:s, s:s}", "repository_id", "repo-2", "name", "x\n");
    readmodel_doc *da, *db, *dc, *dd, *de;
    const char *ta, *tb, *h;
    size_t hl, tl, want;
    char *t;
    (void)state;
    json_object_set(a, "repository_info", info);
    json_object_set(b, "repository_info", info);
    json_object_set(c, "repository_info", info); /* then another last member */
    json_object_set_new(c, "docs", json_object());
    json_object_set(only, "repository_info", other);
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "p1", a, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d2", "p2", b, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "p3", c, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "", "", only, &err), RD_OK);
    da = readmodel_get(rm, "d1", "p1");
    db = readmodel_get(rm, "d2", "p2");
    dc = readmodel_get(rm, "d1", "p3");
    dd = readmodel_get(rm, "", "");
    assert_non_null(da);
    assert_non_null(db);
    assert_non_null(dc);
    assert_non_null(dd);
    t = json_dumps(info, JSON_COMPACT);
    want = strlen("\"repository_info\":") + strlen(t) + 1;
    free(t);
    expect_parts(da, a, want);
    expect_parts(db, b, want);
    expect_parts(dc, c, 0);
    expect_parts(dd, only, SIZE_MAX);
    readmodel_doc_parts(da, &h, &hl, &ta, &tl);
    readmodel_doc_parts(db, &h, &hl, &tb, &tl);
    assert_ptr_equal(ta, tb); /* one copy */
    readmodel_doc_parts(dd, &h, &hl, &ta, &tl);
    assert_int_equal(hl, 1); /* "{" */
    /* a bulk build splits the same way; a replaced document keeps its parts */
    {
        json_t *views = json_pack("[O, O]", a, b);
        assert_int_equal(readmodel_build(rm, views, &err), RD_OK);
        json_decref(views);
    }
    de = readmodel_get(rm, "d2", "p2");
    assert_non_null(de);
    expect_parts(de, b, want);
    expect_parts(dc, c, 0);
    readmodel_doc_release(da);
    readmodel_doc_release(db);
    readmodel_doc_release(dc);
    readmodel_doc_release(dd);
    readmodel_doc_release(de);
    readmodel_destroy(rm);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(only);
    json_decref(info);
    json_decref(other);
}

static const json_t *kept(const readmodel_doc *d, const char *key)
{
    for (size_t k = 0; k < d->nvals; k++)
        if (strcmp(d->layout->keys[k], key) == 0)
            return d->vals[k];
    return NULL;
}

/* One copy of what repeats: an equal list of labels is one array for every
 * document holding it, equal kept strings of a document are one value. */
static void test_kept_values_shared(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *a = plugin("d1", "p1", "One", "ENABLED"), *b = plugin("d2", "p2", "Two", "ENABLED");
    json_t *c = plugin("d1", "p3", "Three", "ENABLED");
    readmodel_doc *da, *db, *dc;
    (void)state;
    json_object_set_new(a, "labels", json_pack("[s,s]", "Fast", "x"));
    json_object_set_new(b, "labels", json_pack("[s,s]", "Fast", "x"));
    json_object_set_new(c, "labels", json_pack("[s,s]", "x", "Fast"));
    json_object_set_new(a, "updated_at", json_string("2024-01-01T00:00:00.000Z"));
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "p1", a, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d2", "p2", b, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "p3", c, &err), RD_OK);
    da = readmodel_get(rm, "d1", "p1");
    db = readmodel_get(rm, "d2", "p2");
    dc = readmodel_get(rm, "d1", "p3");
    assert_non_null(da);
    assert_non_null(db);
    assert_non_null(dc);
    assert_ptr_equal(kept(da, "labels"), kept(db, "labels"));
    assert_true(kept(da, "labels") != kept(dc, "labels")); /* another order */
    assert_true(json_equal((json_t *)kept(dc, "labels"), json_object_get(c, "labels")));
    assert_ptr_equal(kept(da, "created_at"), kept(da, "updated_at"));
    assert_true(kept(db, "created_at") != kept(db, "updated_at"));
    assert_string_equal(json_string_value(kept(db, "updated_at")), "2024-01-02T00:00:00.000Z");
    /* what a query reads is unchanged */
    {
        json_t *got = run_rm(rm,
                             "{\"filter\":[{\"k\":\"labels\",\"v\":\"x\",\"o\":\"eq\"}],"
                             "\"sort\":{\"key\":\"updated_at\"}}",
                             NULL, 0);
        assert_int_equal(json_integer_value(json_object_get(got, "total_count")), 3);
        json_decref(got);
    }
    readmodel_doc_release(da);
    readmodel_doc_release(db);
    readmodel_doc_release(dc);
    readmodel_destroy(rm);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_put_get_replace_delete(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *v1 = plugin("d1", "p1", "One", "ENABLED"), *v2 = plugin("d1", "p1", "Uno", "ENABLED");
    readmodel_doc *old, *cur;
    size_t len;
    char *expect;
    (void)state;

    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    assert_null(readmodel_get(rm, "d1", "p1"));
    assert_int_equal(readmodel_put(rm, "d1", "p1", v1, &err), RD_OK);
    assert_int_equal(readmodel_count(rm), 1);
    old = readmodel_get(rm, "d1", "p1");
    assert_non_null(old);
    expect = json_dumps(v1, JSON_COMPACT);
    assert_string_equal(readmodel_doc_bytes(old, &len), expect);
    assert_int_equal(len, strlen(expect));
    free(expect);
    assert_true(json_equal((json_t *)readmodel_doc_view(old), v1));
    /* the model keeps its own copy: changing the caller's view changes nothing */
    json_object_set_new(v1, "name", json_string("Changed"));
    assert_string_equal(json_string_value(json_object_get(readmodel_doc_view(old), "name")), "One");

    assert_int_equal(readmodel_put(rm, "d1", "p1", v2, &err), RD_OK);
    assert_int_equal(readmodel_count(rm), 1);
    cur = readmodel_get(rm, "d1", "p1");
    assert_string_equal(json_string_value(json_object_get(readmodel_doc_view(cur), "name")), "Uno");
    /* a reader holding the old version still sees it whole */
    assert_string_equal(json_string_value(json_object_get(readmodel_doc_view(old), "name")), "One");
    assert_null(readmodel_get(rm, "d2", "p1"));

    assert_int_equal(readmodel_delete(rm, "d1", "p1"), 1);
    assert_int_equal(readmodel_delete(rm, "d1", "p1"), 0);
    assert_null(readmodel_get(rm, "d1", "p1"));
    assert_int_equal(readmodel_count(rm), 0);
    readmodel_doc_release(old);
    readmodel_doc_release(cur);
    readmodel_destroy(rm);
    json_decref(v1);
    json_decref(v2);
}

static void test_domain_isolation(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    const char *d1[] = {"d1"}, *both[] = {"d1", "d2"};
    json_t *a = plugin("d1", "same", "Shared", "ENABLED"),
           *b = plugin("d2", "same", "Shared", "ENABLED");
    json_t *c = plugin("d2", "other", "Other", "ENABLED"), *out;
    (void)state;

    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d1", "same", a, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d2", "same", b, &err), RD_OK);
    assert_int_equal(readmodel_put(rm, "d2", "other", c, &err), RD_OK);

    out = run_rm(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"Shared\",\"o\":\"eq\"}]}", d1, 1);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "results"), 0), "domain_id")),
                        "d1");
    json_decref(out);
    out = run_rm(rm, "{\"keyword\":\"oth\"}", d1, 1);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 0);
    json_decref(out);
    out = run_rm(rm, "{\"count_only\":true}", both, 2);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 3);
    assert_int_equal(json_array_size(json_object_get(out, "results")), 0);
    json_decref(out);
    out = run_rm(rm, "{}", NULL, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 3);
    json_decref(out);
    readmodel_destroy(rm);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_build_swaps_content(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *views = json_array(), *old = plugin("d1", "gone", "Gone", "ENABLED"), *out;
    readmodel_doc *d;
    (void)state;

    json_array_append_new(views, plugin("d1", "p2", "Bravo", "ENABLED"));
    json_array_append_new(views, plugin("d2", "p1", "Alpha", "DISABLED"));
    json_array_append_new(views, plugin("d1", "p0", "Zulu", "ENABLED"));
    /* a later duplicate replaces the earlier one in every index */
    json_array_append_new(views, plugin("d1", "p0", "Charlie", "ENABLED"));
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    {
        json_t *none = json_array(); /* an empty build is fine */
        assert_int_equal(readmodel_build(rm, none, &err), RD_OK);
        assert_int_equal(readmodel_count(rm), 0);
        json_decref(none);
    }
    assert_int_equal(readmodel_put(rm, "d1", "gone", old, &err), RD_OK);
    assert_int_equal(readmodel_build(rm, views, &err), RD_OK);
    assert_int_equal(readmodel_count(rm), 3);
    assert_null(readmodel_get(rm, "d1", "gone"));
    d = readmodel_get(rm, "d2", "p1");
    assert_non_null(d);
    readmodel_doc_release(d);
    /* default order: name, then plugin_id, then domain_id */
    out = run_rm(rm, "{}", NULL, 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "results"), 0), "name")),
                        "Alpha");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "results"), 2), "name")),
                        "Charlie");
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 3);
    json_decref(out);
    out = run_rm(rm, "{\"sort\":{\"key\":\"name\",\"desc\":true}}", NULL, 0);
    assert_int_equal(json_array_size(json_object_get(out, "results")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "results"), 0), "name")),
                        "Charlie");
    json_decref(out);
    out = run_rm(rm, "{\"keyword\":\"zul\"}", NULL, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 0);
    json_decref(out);
    readmodel_destroy(rm);
    json_decref(views);
    json_decref(old);
}

/* ---- readers during writes ------------------------------------------------- */

typedef struct {
    readmodel *rm;
    atomic_int bad;
} race_ctx;

/* Each version N of a document has name "vN" and labels ["vN"]: a reader
 * that sees a name and labels from different versions saw half a write. */
/* Runs qtext over rm; returns how many documents were tested, and checks
 * the number of matches. */
static size_t tested_by(readmodel *rm, const char *qtext, size_t want_matches)
{
    rd_error err = {0};
    json_t *qobj = json_loads(qtext, 0, NULL);
    query *q = NULL;
    query_schema schema = resource_query_schema(&resource_plugin);
    readmodel_result r;
    size_t tested;
    assert_non_null(qobj);
    assert_int_equal(query_compile(qobj, NULL, &schema, &q, &err), RD_OK);
    assert_int_equal(readmodel_query(rm, q, NULL, 0, &r, &err), RD_OK);
    assert_int_equal(r.total_count, want_matches);
    tested = r.tested;
    readmodel_result_free(&r);
    query_free(q);
    json_decref(qobj);
    return tested;
}

/* contain / regex on a keyword field test only the documents holding the
 * operand's trigrams (or those of the literal runs a pattern requires). */
static void test_text_prefilter(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    (void)state;
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    for (int i = 0; i < 300; i++) {
        char id[16], name[32];
        json_t *v;
        snprintf(id, sizeof(id), "id-%d", i);
        snprintf(name, sizeof(name), "Plugin %d", i);
        v = plugin("d", id, name, "ENABLED");
        assert_int_equal(readmodel_put(rm, "d", id, v, &err), RD_OK);
        json_decref(v);
    }
    /* "Plugin 29", "Plugin 290".."Plugin 299" */
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"plugin 29\",\"o\":\"contain\"}]}", 11),
        11);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"^PLUGIN 29\",\"o\":\"regex\"}]}", 11),
        11);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"gin 29[0-4]\",\"o\":\"regex\"}]}", 5),
        11);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"x?plugin 2x{0}9\",\"o\":\"regex\"}]}",
                  11),
        111); /* "plugin 2": the 9 after an optional part is a run of its own */
    /* the union over the operands of the _in forms */
    assert_int_equal(
        tested_by(
            rm, "{\"filter\":[{\"k\":\"name\",\"v\":[\"gin 7\",\"gin 12\"],\"o\":\"contain_in\"}]}",
            22),
        22);
    assert_int_equal(
        tested_by(
            rm, "{\"filter\":[{\"k\":\"name\",\"v\":[\"n 7$\",\"n 12\"],\"o\":\"regex_in\"}]}", 12),
        22);
    /* alternatives: the union of what each branch requires; a group: what
     * it requires, unless it is optional */
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"n 29|n 3\",\"o\":\"regex\"}]}", 22),
        22); /* "Plugin 29", "Plugin 29x"; "Plugin 3", "Plugin 3x" */
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"(n 29)\",\"o\":\"regex\"}]}", 11), 11);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"((n 29))\",\"o\":\"regex\"}]}", 11),
        11);
    assert_int_equal(tested_by(rm,
                               "{\"filter\":[{\"k\":\"name\",\"v\":\"^plug(in 29|IN 12)$\",\"o\":"
                               "\"regex\"}]}",
                               2),
                     22);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"n 2(9|x)\",\"o\":\"regex\"}]}", 11),
        111); /* a branch too short to narrow: only "n 2" */
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"[(|]*n 29\",\"o\":\"regex\"}]}", 11),
        11); /* '|' and '(' in a bracket expression are no structure */
    /* nothing to narrow with: every document is tested */
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"(n 29|n 7)?\",\"o\":\"regex\"}]}", 300),
        300);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"(n 29|)\",\"o\":\"regex\"}]}", 300),
        300);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"n 29+?\",\"o\":\"regex\"}]}", 111),
        111); /* (9+)? is optional: only "n 2" */
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"x{0}|n 29\",\"o\":\"regex\"}]}", 300),
        300);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"29\",\"o\":\"contain\"}]}", 13), 300);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"name\",\"v\":\"n 29\",\"o\":\"not_contain\"}]}", 289),
        300);
    assert_int_equal(
        tested_by(rm, "{\"filter\":[{\"k\":\"image\",\"v\":\"n 29\",\"o\":\"contain\"}]}", 0), 300);
    readmodel_destroy(rm);
}

static json_t *versioned(int n)
{
    char v[16];
    snprintf(v, sizeof(v), "v%d", n);
    return json_pack("{s:s, s:s, s:s, s:[s]}", "plugin_id", "p", "domain_id", "d", "name", v,
                     "labels", v);
}

static void *race_reader(void *arg)
{
    race_ctx *c = arg;
    query_schema schema = resource_query_schema(&resource_plugin);
    json_t *qobj = json_pack("{s:s}", "keyword", "v");
    query *q = NULL;
    rd_error err = {0};
    if (query_compile(qobj, NULL, &schema, &q, &err) != RD_OK) {
        c->bad = 1;
        goto done;
    }
    for (int i = 0; i < 2000; i++) {
        readmodel_result r;
        readmodel_doc *d = readmodel_get(c->rm, "d", "p");
        if (d != NULL) {
            const json_t *v = readmodel_doc_view(d);
            if (strcmp(json_string_value(json_object_get(v, "name")),
                       json_string_value(json_array_get(json_object_get(v, "labels"), 0))) != 0)
                c->bad = 1;
            readmodel_doc_release(d);
        }
        if (readmodel_query(c->rm, q, NULL, 0, &r, &err) != RD_OK || r.n != r.total_count ||
            r.n > 1)
            c->bad = 1;
        readmodel_result_free(&r);
    }
done:
    query_free(q);
    json_decref(qobj);
    return NULL;
}

static void test_readers_during_writes(void **state)
{
    readmodel *rm = NULL;
    rd_error err = {0};
    pthread_t th[2];
    race_ctx c = {NULL, 0};
    atomic_init(&c.bad, 0);
    (void)state;
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    c.rm = rm;
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, race_reader, &c), 0);
    for (int i = 0; i < 2000; i++) {
        json_t *v = versioned(i);
        if (i % 5 == 4)
            readmodel_delete(rm, "d", "p");
        else
            assert_int_equal(readmodel_put(rm, "d", "p", v, &err), RD_OK);
        json_decref(v);
    }
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(c.bad, 0);
    readmodel_destroy(rm);
}

/* ---- the catalog's model of the local plugins ------------------------------- */

static rd_status rename_fn(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    (void)err;
    *updated = json_deep_copy(current);
    json_object_set_new(*updated, "name", json_string(ud));
    return RD_OK;
}

/* The model's view of (domain, id) equals plugin_view of the stored record,
 * or both are absent. */
static void check_view(catalog *cat, const char *domain, const char *id)
{
    readmodel_doc *d = catalog_plugin_view(cat, domain, id);
    json_t *rec = NULL, *want;
    rd_error err = {0};
    rd_status rc = catalog_plugin_get(cat, domain, id, &rec, &err);
    if (rc == RD_ERR_NOT_FOUND) {
        assert_null(d);
        return;
    }
    assert_int_equal(rc, RD_OK);
    assert_non_null(d);
    want = plugin_view(rec, catalog_local_info(cat));
    assert_true(json_equal(want, (json_t *)readmodel_doc_view(d)));
    json_decref(want);
    json_decref(rec);
    readmodel_doc_release(d);
}

static void test_catalog_keeps_model(void **state)
{
    char dir[64];
    store *st = NULL;
    catalog *cat = NULL;
    rd_error err = {0};
    json_t *a = plugin("d1", "p1", "One", "ENABLED"), *many = json_array();
    readmodel_doc *d;
    (void)state;

    snprintf(dir, sizeof(dir), "/tmp/test_readmodel.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(dir, &st, &err), RD_OK);
    assert_int_equal(catalog_open(st, "local-repo", &cat, &err), RD_OK);
    assert_null(catalog_plugin_view(cat, "d1", "p1"));
    assert_int_equal(catalog_plugin_insert(cat, a, &err), RD_OK);
    check_view(cat, "d1", "p1");
    d = catalog_plugin_view(cat, "d1", "p1");
    assert_non_null(d);
    assert_non_null(json_object_get(readmodel_doc_view(d), "repository_info"));
    readmodel_doc_release(d);
    assert_int_equal(catalog_plugin_modify(cat, "d1", "p1", rename_fn, "Renamed", NULL, &err),
                     RD_OK);
    check_view(cat, "d1", "p1");
    d = catalog_plugin_view(cat, "d1", "p1");
    assert_string_equal(json_string_value(json_object_get(readmodel_doc_view(d), "name")),
                        "Renamed");
    readmodel_doc_release(d);
    json_array_append_new(many, plugin("d1", "p2", "Two", "ENABLED"));
    json_array_append_new(many, plugin("d2", "p1", "Other", "DISABLED"));
    assert_int_equal(catalog_plugin_insert_many(cat, many, &err), RD_OK);
    check_view(cat, "d1", "p2");
    check_view(cat, "d2", "p1");
    assert_int_equal(catalog_plugin_delete(cat, "d1", "p2", &err), RD_OK);
    assert_null(catalog_plugin_view(cat, "d1", "p2"));

    /* a new open builds the model from the store */
    catalog_close(cat);
    store_close(st);
    assert_int_equal(store_open(dir, &st, &err), RD_OK);
    assert_int_equal(catalog_open(st, "local-repo", &cat, &err), RD_OK);
    check_view(cat, "d1", "p1");
    check_view(cat, "d2", "p1");
    assert_null(catalog_plugin_view(cat, "d1", "p2"));
    catalog_close(cat);
    store_close(st);
    testkit_rm_tree(dir);
    json_decref(a);
    json_decref(many);
}

/* A model built by the two-thread builder (views borrowed, and views handed
 * over) answers exactly as one built by puts one at a time: 5000 plugins
 * (more than the builder's queue holds), duplicates included, every
 * document's bytes and a set of lists, sorts and counts. */
static void test_builder_equals_puts(void **state)
{
    static const char *const provs[] = {"aws", "google_cloud", "azure", "oracle", "acme"};
    static const char *const queries[] = {
        "{\"page\":{\"limit\":50}}",
        "{\"sort\":{\"key\":\"name\"},\"page\":{\"start\":100,\"limit\":30}}",
        "{\"sort\":{\"key\":\"created_at\",\"desc\":true},\"page\":{\"limit\":40}}",
        "{\"sort\":{\"key\":\"provider\"},\"page\":{\"start\":2000,\"limit\":40}}",
        "{\"filter\":[{\"k\":\"provider\",\"v\":\"azure\",\"o\":\"eq\"}],\"count_only\":true}",
        "{\"keyword\":\"plugin 42\",\"page\":{\"limit\":100}}",
        "{\"filter\":[{\"k\":\"name\",\"v\":\"^plugin 1\",\"o\":\"regex\"}],\"sort\":{\"key\":"
        "\"plugin_id\"},\"page\":{\"limit\":100}}",
    };
    static const char *const doms[] = {"d1", "d2", "d3"};
    readmodel *byput = NULL, *built = NULL, *handed = NULL;
    readmodel_builder *b1 = NULL, *b2 = NULL;
    rd_error err = {0};
    json_t *views = json_array();
    (void)state;
    for (int i = 0; i < 5000; i++) {
        char id[32], name[48], created[40];
        json_t *v;
        snprintf(id, sizeof(id), "p%d", i % 4700); /* 300 later duplicates replace */
        snprintf(name, sizeof(name), "plugin %d", (i * 7919) % 5000);
        snprintf(created, sizeof(created), "2024-01-%02dT00:00:%02d.000Z", 1 + i % 28, i % 60);
        v = plugin(doms[(i % 4700) % 3], id, name, i % 10 == 0 ? "DISABLED" : "ENABLED");
        json_object_set_new(v, "provider", json_string(provs[(i / 3) % 5]));
        json_object_set_new(v, "created_at", json_string(created));
        json_array_append_new(views, v);
    }
    assert_int_equal(readmodel_create(&resource_plugin, &byput, &err), RD_OK);
    assert_int_equal(readmodel_create(&resource_plugin, &built, &err), RD_OK);
    assert_int_equal(readmodel_create(&resource_plugin, &handed, &err), RD_OK);
    assert_int_equal(readmodel_build_begin(built, &b1, &err), RD_OK);
    assert_int_equal(readmodel_build_begin(handed, &b2, &err), RD_OK);
    for (size_t i = 0; i < json_array_size(views); i++) {
        json_t *v = json_array_get(views, i);
        const char *dom = json_string_value(json_object_get(v, "domain_id"));
        const char *id = json_string_value(json_object_get(v, "plugin_id"));
        assert_int_equal(readmodel_put(byput, dom, id, v, &err), RD_OK);
        assert_int_equal(readmodel_build_add(b1, v, &err), RD_OK);
        assert_int_equal(readmodel_build_add_new(b2, json_deep_copy(v), &err), RD_OK);
    }
    assert_int_equal(readmodel_build_finish(b1, &err), RD_OK);
    assert_int_equal(readmodel_build_finish(b2, &err), RD_OK);
    assert_int_equal(readmodel_count(byput), 4700);
    assert_int_equal(readmodel_count(built), 4700);
    assert_int_equal(readmodel_count(handed), 4700);
    for (size_t i = 4700; i < json_array_size(views); i++) { /* the last version of each */
        json_t *v = json_array_get(views, i);
        const char *dom = json_string_value(json_object_get(v, "domain_id"));
        const char *id = json_string_value(json_object_get(v, "plugin_id"));
        readmodel_doc *a = readmodel_get(byput, dom, id), *x = readmodel_get(built, dom, id),
                      *y = readmodel_get(handed, dom, id);
        assert_non_null(a);
        assert_non_null(x);
        assert_non_null(y);
        assert_string_equal(readmodel_doc_bytes(a, NULL), readmodel_doc_bytes(x, NULL));
        assert_string_equal(readmodel_doc_bytes(a, NULL), readmodel_doc_bytes(y, NULL));
        readmodel_doc_release(a);
        readmodel_doc_release(x);
        readmodel_doc_release(y);
    }
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
        json_t *want = run_rm(byput, queries[q], doms, 3);
        json_t *got1 = run_rm(built, queries[q], doms, 3);
        json_t *got2 = run_rm(handed, queries[q], doms + 1, 1);
        json_t *want2 = run_rm(byput, queries[q], doms + 1, 1);
        assert_true(json_equal(want, got1));
        assert_true(json_equal(want2, got2));
        json_decref(want);
        json_decref(got1);
        json_decref(got2);
        json_decref(want2);
    }
    readmodel_destroy(byput);
    readmodel_destroy(built);
    readmodel_destroy(handed);
    json_decref(views);
}

/* ---- randomised differential test ------------------------------------------ */

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return ((rnd_state >> 8) & 0xffffffu) % n;
}

static const char *const names[] = {"Alpha",    "alpha", "Beta", "Gamma Ray", "delta",
                                    "ALPHABET", "zeta",  "",     "Beta"};
static const char *const states[] = {"ENABLED", "DISABLED"};
static const char *const types[] = {"DataSource", "Collector", "Notification"};
static const char *const providers[] = {"acme", "Acme", "globex", "", "initech"};
static const char *const labels[] = {"Fast", "slow", "beta", "ALPHA", "x"};
static const char *const dates[] = {"2024-01-01T00:00:00.000Z", "2023-05-05T10:00:00.000Z",
                                    "2024-01-01T00:00:00.000Z", "2025-12-31T23:59:59.999Z"};
static const char *const domains_all[] = {"dA", "dB", "dC"};

#define NIDS 40

static json_t *random_string_or_odd(const char *const *pool, size_t n)
{
    unsigned r = rnd(20);
    if (r == 0)
        return NULL; /* missing */
    if (r == 1)
        return json_integer(rnd(3));
    if (r == 2)
        return json_null();
    if (r == 3)
        return json_pack("[ss]", pool[rnd((unsigned)n)], pool[rnd((unsigned)n)]);
    return json_string(pool[rnd((unsigned)n)]);
}

static void set_maybe(json_t *o, const char *key, json_t *v)
{
    if (v != NULL)
        json_object_set_new(o, key, v);
}

/* repository_info: mostly one of a few objects (a tier's), sometimes odd:
 * missing, null, a string, an array of objects, odd values inside. */
static json_t *random_info(void)
{
    static const char *const ids[] = {"r-local", "r-one", "r-two"};
    static const char *const rnames[] = {"Local", "One", "one"};
    unsigned i = rnd(3), r = rnd(24);
    if (r == 0)
        return NULL;
    if (r == 1)
        return json_null();
    if (r == 2)
        return json_string(ids[i]);
    if (r == 3)
        return json_pack("[{s:s}]", "repository_id", ids[i]);
    if (r == 4)
        return json_pack("{s:i, s:n}", "repository_id", (int)i, "name");
    if (r == 5)
        return json_pack("{s:s}", "repository_id", ids[i]);
    return json_pack("{s:s, s:s, s:s}", "repository_id", ids[i], "name", rnames[i],
                     "repository_type", i == 0 ? "local" : "remote");
}

static json_t *random_view(const char *domain, const char *id)
{
    json_t *v = json_object(), *l = json_array();
    char img[64];
    json_object_set_new(v, "plugin_id", json_string(id));
    json_object_set_new(v, "domain_id", json_string(domain));
    set_maybe(v, "name", random_string_or_odd(names, sizeof(names) / sizeof(*names)));
    set_maybe(v, "state", json_string(states[rnd(2)]));
    set_maybe(v, "resource_type", random_string_or_odd(types, 3));
    set_maybe(v, "provider", random_string_or_odd(providers, 5));
    set_maybe(v, "registry_type", json_string(rnd(2) ? "DOCKER_HUB" : "HARBOR"));
    set_maybe(v, "created_at", random_string_or_odd(dates, 4));
    set_maybe(v, "updated_at", random_string_or_odd(dates, 4));
    snprintf(img, sizeof(img), "repo/%s", id);
    json_object_set_new(v, "image", json_string(img));
    for (unsigned i = rnd(3); i > 0; i--)
        json_array_append_new(l, json_string(labels[rnd(5)]));
    json_object_set_new(v, "labels", l);
    json_object_set_new(v, "tags", json_pack("{s:i}", "priority", (int)rnd(5)));
    set_maybe(v, "repository_info", random_info());
    return v;
}

static int cmp_default(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    static const char *const keys[] = {"name", "plugin_id", "domain_id"};
    for (int i = 0; i < 3; i++) {
        const char *s = json_string_value(json_object_get(x, keys[i]));
        const char *t = json_string_value(json_object_get(y, keys[i]));
        int c = strcmp(s ? s : "", t ? t : "");
        if (c != 0)
            return c;
    }
    return 0;
}

/* The reference documents of the readable domains, in default order. */
static json_t *reference(json_t *all, const char *const *domains, size_t nd)
{
    const char *k;
    json_t *v, *arr = json_array();
    size_t n = 0;
    json_t **tmp = calloc(json_object_size(all) + 1, sizeof(*tmp));
    json_object_foreach(all, k, v)
    {
        const char *dom = json_string_value(json_object_get(v, "domain_id"));
        int ok = domains == NULL;
        for (size_t i = 0; i < nd && !ok; i++)
            ok = strcmp(domains[i], dom) == 0;
        if (ok)
            tmp[n++] = v;
    }
    qsort(tmp, n, sizeof(*tmp), cmp_default);
    for (size_t i = 0; i < n; i++)
        json_array_append(arr, tmp[i]);
    free(tmp);
    return arr;
}

static const char *const cond_fields[] = {
    "name",     "state",         "resource_type",
    "provider", "created_at",    "plugin_id",
    "labels",   "tags.priority", "repository_info.repository_id"};

static json_t *random_value(const char *field)
{
    if (strcmp(field, "name") == 0)
        return json_string(names[rnd(sizeof(names) / sizeof(*names))]);
    if (strcmp(field, "state") == 0)
        return json_string(states[rnd(2)]);
    if (strcmp(field, "resource_type") == 0)
        return json_string(types[rnd(3)]);
    if (strcmp(field, "provider") == 0)
        return json_string(providers[rnd(5)]);
    if (strcmp(field, "created_at") == 0)
        return json_string(dates[rnd(4)]);
    if (strcmp(field, "labels") == 0)
        return json_string(labels[rnd(5)]);
    if (strcmp(field, "tags.priority") == 0)
        return json_integer(rnd(5));
    if (strcmp(field, "repository_info.repository_id") == 0)
        return json_string(rnd(2) ? "r-one" : "r-local");
    {
        char id[16];
        snprintf(id, sizeof(id), "p%u", rnd(NIDS));
        return json_string(id);
    }
}

static json_t *random_cond(void)
{
    const char *f = cond_fields[rnd(sizeof(cond_fields) / sizeof(*cond_fields))];
    /* contain / regex operands of 3 literal bytes or more are answered with
     * the trigram prefilter on keyword fields: cases with matches, case
     * differences, optional parts, intervals, groups, classes, alternation */
    static const char *const subs[] = {"alp", "ET",    "a",      "ph",  "x",    "acm",
                                       "ray", "ALPHA", "amma r", "LOW", "fast", "zzzz"};
    static const char *const res[] = {
        "^al", "A$", "b.t", "^$", "^alpha", "LPH", "gam+a ray", "alpx?ha", "al{1}pha", "a.{2}ha",
        "(al|be)ta", "^ALP[h]a", "alph|gam", "ga(m)ma", "elt\\w", "^acme$", "lo?w", "fa[s]t",
        "\\.*lph", "x{0}alp",
        /* groups and alternatives: each branch's runs */
        "^(alpha|beta)$", "(ph|et)a", "(alp)?ha", "ga(m|x)+a", "(a(l|c)me|zeta)", "x|(be)ta",
        "[|(]?alp", "(amma r|elt)a?", "al(p)*h", "^(acme|globex|)$", "(fas|slo)w?", "LP(H|X)A|cme",
        "(al|be)(ph|ta)", "^(gam){1}", "a+?lph", "(Alp|zzz)ha"};
    const unsigned nres = sizeof(res) / sizeof(*res);
    if (rnd(3) == 0) { /* a text operator on a keyword field, lists too */
        static const char *const kw[] = {"name", "plugin_id", "provider", "labels"};
        const char *k = kw[rnd(4)];
        switch (rnd(4)) {
        case 0:
            return json_pack("{s:s, s:s, s:s}", "k", k, "v", subs[rnd(12)], "o", "contain");
        case 1:
            return json_pack("{s:s, s:[ss], s:s}", "k", k, "v", subs[rnd(12)], subs[rnd(12)], "o",
                             "contain_in");
        case 2:
            return json_pack("{s:s, s:s, s:s}", "k", k, "v", res[rnd(nres)], "o", "regex");
        default:
            return json_pack("{s:s, s:[ss], s:s}", "k", k, "v", res[rnd(nres)], res[rnd(nres)], "o",
                             "regex_in");
        }
    }
    switch (rnd(8)) {
    case 0:
        return json_pack("{s:s, s:o, s:s}", "k", f, "v", random_value(f), "o", "not");
    case 1:
        return json_pack("{s:s, s:[oo], s:s}", "k", f, "v", random_value(f), random_value(f), "o",
                         rnd(4) ? "in" : "not_in");
    case 2:
        return json_pack("{s:s, s:s, s:s}", "k", f, "v", subs[rnd(12)], "o",
                         rnd(3) ? "contain" : "not_contain");
    case 3:
        return json_pack("{s:s, s:s, s:s}", "k", f, "v", res[rnd(nres)], "o", "regex");
    case 4:
        return json_pack("{s:s, s:b, s:s}", "k", f, "v", (int)rnd(2), "o", "exists");
    default:
        return json_pack("{s:s, s:o, s:s}", "k", f, "v", random_value(f), "o", "eq");
    }
}

static json_t *random_query(void)
{
    json_t *q = json_object();
    static const char *const sort_keys[] = {
        "name",          "created_at", "updated_at", "plugin_id",     "provider",
        "resource_type", "state",      "labels",     "tags.priority", "image"};
    static const char *const words[] = {"alp", "ALPHA", "be x", "acme fast", "ra", "zzz", "Gamma"};
    unsigned n = rnd(3);
    if (n > 0) {
        json_t *f = json_array();
        while (n-- > 0)
            json_array_append_new(f, random_cond());
        json_object_set_new(q, "filter", f);
    }
    if (rnd(6) == 0) {
        json_t *f = json_array();
        json_array_append_new(f, random_cond());
        json_array_append_new(f, random_cond());
        json_object_set_new(q, "filter_or", f);
    }
    if (rnd(4) == 0)
        json_object_set_new(q, "keyword", json_string(words[rnd(7)]));
    switch (rnd(4)) {
    case 0:
        break;
    case 1:
    case 2:
        json_object_set_new(
            q, "sort", json_pack("{s:s, s:b}", "key", sort_keys[rnd(10)], "desc", (int)rnd(2)));
        break;
    default:
        json_object_set_new(q, "sort",
                            json_pack("[{s:s, s:b}, {s:s, s:b}]", "key", sort_keys[rnd(10)], "desc",
                                      (int)rnd(2), "key", sort_keys[rnd(10)], "desc", (int)rnd(2)));
    }
    if (rnd(2))
        json_object_set_new(q, "page",
                            json_pack("{s:i, s:i}", "start", (int)rnd(6), "limit", (int)rnd(5)));
    if (rnd(8) == 0)
        json_object_set_new(q, "count_only", json_true());
    if (rnd(8) == 0)
        json_object_set_new(q, "minimal", json_true());
    return q;
}

/* What the last random_stat groups by: its number of keys, and 1 when a
 * key is a path under repository_info. */
static unsigned last_stat_keys;
static int last_stat_info;

/* A random StatisticsQuery: filters, then a group by one to three keys
 * counting (v1 aggregate or v2 group_by), sometimes with later stages,
 * another accumulator or a page - shapes readmodel_stat answers or
 * declines. */
static json_t *random_stat(void)
{
    static const char *const keys[] = {"name",
                                       "state",
                                       "provider",
                                       "resource_type",
                                       "labels",
                                       "tags.priority",
                                       "image",
                                       "registry_type",
                                       "created_at",
                                       "plugin_id",
                                       "repository_info.repository_id",
                                       "repository_info.name",
                                       "repository_info.repository_type",
                                       "repository_info",
                                       "repository_info.nothing"};
    static const char *const knames[] = {"k", "k2", "k3"};
    last_stat_keys = 0;
    last_stat_info = 0;
    json_t *sq = json_object(), *fields;
    unsigned nk = rnd(3) == 0 ? 2 + rnd(2) : 1;
    const char *k[3];
    unsigned n = rnd(3);
    for (unsigned i = 0; i < nk; i++) { /* distinct keys */
        int dup;
        do {
            k[i] = keys[rnd(15)];
            dup = 0;
            for (unsigned j = 0; j < i; j++)
                dup |= strcmp(k[i], k[j]) == 0;
        } while (dup);
    }
    for (unsigned i = 0; i < nk; i++)
        last_stat_info |= strncmp(k[i], "repository_info.", 16) == 0;
    last_stat_keys = nk;
    if (n > 0) {
        json_t *f = json_array();
        while (n-- > 0)
            json_array_append_new(f, random_cond());
        json_object_set_new(sq, "filter", f);
    }
    if (rnd(6) == 0)
        json_object_set_new(sq, "keyword", json_string(rnd(2) ? "alp" : "acme"));
    if (rnd(4) == 0) { /* the v2 form */
        json_t *by = json_array();
        fields = json_pack("{s:{s:s}}", "n", "operator", "count");
        if (rnd(6) == 0)
            json_object_set_new(fields, "names",
                                json_pack("{s:s, s:s}", "key", "plugin_id", "operator", "push"));
        for (unsigned i = 0; i < nk; i++)
            json_array_append_new(by, json_string(k[i]));
        json_object_set_new(sq, "group_by", by);
        json_object_set_new(sq, "fields", fields);
        if (rnd(2))
            json_object_set_new(sq, "sort", json_pack("[{s:s, s:b}]", "key", "n", "desc", 1));
    } else {
        json_t *agg = json_array(), *gkeys = json_array();
        fields = json_pack("[{s:s, s:s}]", "name", "n", "operator", "count");
        if (rnd(3) == 0)
            json_array_append_new(fields,
                                  json_pack("{s:s, s:s}", "name", "m", "operator", "count"));
        if (rnd(8) == 0)
            json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "key", "name", "name",
                                                    "first", "operator", "first"));
        for (unsigned i = 0; i < nk; i++)
            json_array_append_new(gkeys,
                                  json_pack("{s:s, s:s, s:s*}", "key", k[i], "name", knames[i],
                                            "date_format", rnd(8) == 0 ? "%Y" : NULL));
        json_array_append_new(
            agg, json_pack("{s:{s:o, s:o}}", "group", "keys", gkeys, "fields", fields));
        switch (rnd(5)) {
        case 0:
            json_array_append_new(agg, json_pack("{s:{s:s, s:b}}", "sort", "key", "n", "desc", 1));
            break;
        case 1:
            json_array_append_new(agg, json_pack("{s:{s:s}}", "sort", "key", "k"));
            json_array_append_new(agg, json_pack("{s:i}", "limit", 2));
            break;
        case 2:
            json_array_append_new(agg, json_pack("{s:{s:s}}", "count", "name", "groups"));
            break;
        default:
            break;
        }
        json_object_set_new(sq, "aggregate", agg);
    }
    if (rnd(3) == 0)
        json_object_set_new(sq, "page",
                            json_pack("{s:i, s:i}", "start", (int)rnd(3), "limit", (int)rnd(4)));
    return sq;
}

static void test_random_differential(void **state)
{
    const char *seed_env = getenv("REPOD_TEST_SEED");
    unsigned seed = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    query_schema schema = resource_query_schema(&resource_plugin);
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *all = json_object();
    size_t checked = 0, stats_counted = 0, stats_declined = 0, stats_refused = 0;
    size_t stats_multi = 0, stats_info = 0;
    (void)state;

    printf("test_random_differential seed %u\n", seed);
    rnd_state = seed;
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    for (int round = 0; round < 6; round++) {
        /* a random catalog, sometimes loaded by a bulk build */
        if (round % 3 == 0) {
            json_t *views = json_array();
            const char *k;
            json_t *v;
            json_object_clear(all);
            for (unsigned i = rnd(NIDS * 2); i > 0; i--) {
                char id[16], key[40];
                const char *dom = domains_all[rnd(3)];
                snprintf(id, sizeof(id), "p%u", rnd(NIDS));
                snprintf(key, sizeof(key), "%s/%s", dom, id);
                json_object_set_new(all, key, random_view(dom, id));
            }
            json_object_foreach(all, k, v)
            {
                json_array_append(views, v);
            }
            assert_int_equal(readmodel_build(rm, views, &err), RD_OK);
            json_decref(views);
        }
        for (int step = 0; step < 150; step++) {
            char id[16], key[40];
            const char *dom = domains_all[rnd(3)];
            snprintf(id, sizeof(id), "p%u", rnd(NIDS));
            snprintf(key, sizeof(key), "%s/%s", dom, id);
            if (rnd(4) == 0) {
                int there = json_object_get(all, key) != NULL;
                assert_int_equal(readmodel_delete(rm, dom, id), there);
                json_object_del(all, key);
            } else {
                json_t *v = random_view(dom, id);
                assert_int_equal(readmodel_put(rm, dom, id, v, &err), RD_OK);
                json_object_set_new(all, key, v);
            }
            assert_int_equal(readmodel_count(rm), json_object_size(all));
            for (int qi = 0; qi < 3; qi++) {
                json_t *qobj = random_query(), *ref_docs, *ref = NULL, *got = NULL;
                query *q = NULL;
                const char *doms[3];
                size_t nd = 0;
                int use_domains = rnd(3) != 0;
                for (int d = 0; d < 3 && use_domains; d++)
                    if (rnd(2))
                        doms[nd++] = domains_all[d];
                assert_int_equal(query_compile(qobj, NULL, &schema, &q, &err), RD_OK);
                ref_docs = reference(all, use_domains ? doms : NULL, nd);
                assert_int_equal(query_run(q, ref_docs, &ref, &err), RD_OK);
                /* either way of ordering many matches, or the model's choice */
                readmodel_set_plan(rm, (int)rnd(3));
                assert_int_equal(
                    readmodel_query_json(rm, q, use_domains ? doms : NULL, nd, &got, &err), RD_OK);
                if (!json_equal(ref, got)) {
                    char *qs = json_dumps(qobj, JSON_COMPACT), *rs = json_dumps(ref, JSON_COMPACT),
                         *gs = json_dumps(got, JSON_COMPACT);
                    printf("seed %u round %d step %d domains %zu%s\nquery %s\nwant %s\ngot  %s\n",
                           seed, round, step, nd, use_domains ? "" : " (all)", qs, rs, gs);
                    free(qs);
                    free(rs);
                    free(gs);
                    fail();
                }
                { /* the serialised answer: the same bytes as the edge would write */
                    char *body = NULL, *want = json_dumps(ref, JSON_COMPACT);
                    size_t len = 0;
                    assert_int_equal(readmodel_query_bytes(rm, q, use_domains ? doms : NULL, nd,
                                                           &body, &len, &err),
                                     RD_OK);
                    assert_non_null(body);
                    assert_int_equal(len, strlen(want));
                    assert_string_equal(body, want);
                    free(body);
                    free(want);
                }
                checked++;
                json_decref(ref);
                json_decref(got);
                json_decref(ref_docs);
                query_free(q);
                json_decref(qobj);
            }
            { /* a stat: counted by the model when it can, as query_stat */
                json_t *sq = random_stat(), *ref_docs, *ref = NULL, *got = NULL;
                const char *doms[3];
                size_t nd = 0;
                for (int d = 0; d < 3; d++)
                    if (rnd(2))
                        doms[nd++] = domains_all[d];
                ref_docs = reference(all, doms, nd);
                rd_status want_rc = query_stat(sq, &schema, ref_docs, &ref, &err);
                /* a bad stat (duplicate group names) is refused alike */
                assert_int_equal(readmodel_stat(rm, sq, doms, nd, &got, &err), want_rc);
                stats_refused += want_rc != RD_OK;
                if (got != NULL && !json_equal(ref, got)) {
                    char *qs = json_dumps(sq, JSON_COMPACT), *rs = json_dumps(ref, JSON_COMPACT),
                         *gs = json_dumps(got, JSON_COMPACT);
                    printf("seed %u round %d step %d\nstat %s\nwant %s\ngot  %s\n", seed, round,
                           step, qs, rs, gs);
                    free(qs);
                    free(rs);
                    free(gs);
                    fail();
                }
                stats_counted += got != NULL;
                stats_multi += got != NULL && last_stat_keys > 1;
                stats_info += got != NULL && last_stat_info;
                stats_declined += got == NULL && want_rc == RD_OK;
                json_decref(ref);
                json_decref(got);
                json_decref(ref_docs);
                json_decref(sq);
            }
        }
    }
    printf("test_random_differential: %zu queries equal; %zu stats counted by the model equal, "
           "%zu declined, %zu refused alike; counted: %zu by several keys, %zu by a key under "
           "repository_info\n",
           checked, stats_counted, stats_declined, stats_refused, stats_multi, stats_info);
    /* the model counts the usual shapes itself (most of the 900 stats) */
    assert_true(stats_counted > 250);
    assert_true(stats_multi > 15);
    assert_true(stats_info > 30);
    readmodel_destroy(rm);
    json_decref(all);
}

/* ---- memory per plugin (REPOD_RM_MEASURE=N) -------------------------------- */

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A view shaped like what the catalog serves for a registered plugin. */
static json_t *generated_view(size_t i)
{
    char id[32], name[48], image[96];
    snprintf(id, sizeof(id), "plugin-%06zu", i);
    snprintf(name, sizeof(name), "Plugin %zu for %s", i, i % 3 ? "metrics" : "logs");
    snprintf(image, sizeof(image), "registry.example.com/team-%zu/%s", i % 50, id);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{}, s:{}, s:{}, s:[ss], s:{s:s, s:i},"
        " s:s, s:s, s:s, s:{s:s, s:s, s:s}}",
        "plugin_id", id, "name", name, "state", i % 7 ? "ENABLED" : "DISABLED", "resource_type",
        i % 2 ? "DataSource" : "Collector", "service_type", i % 2 ? "DataSource" : "Collector",
        "image", image, "provider", i % 5 ? "aws" : "google_cloud", "registry_type", "DOCKER_HUB",
        "registry_url", "https://registry.example.com", "registry_config", "capability", "template",
        "labels", "Monitoring", i % 2 ? "Fast" : "Slow", "tags", "team", "core", "priority",
        (int)(i % 10), "domain_id", i % 4 ? "domain-main" : "domain-other", "created_at",
        "2024-03-01T10:20:30.123Z", "updated_at", "2024-03-02T10:20:30.123Z", "repository_info",
        "repository_id", "repo-local", "name", "local", "repository_type", "local");
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Times one query over the model and over the plain array with query_run,
 * and checks that both answer the same. */
static void time_query(readmodel *rm, const json_t *views, const char *text)
{
    query_schema schema = resource_query_schema(&resource_plugin);
    json_t *qobj = json_loads(text, 0, NULL), *a = NULL, *b = NULL;
    query *q = NULL;
    rd_error err = {0};
    double best_model = 1e12, best_run = 1e12;
    assert_int_equal(query_compile(qobj, NULL, &schema, &q, &err), RD_OK);
    for (int round = 0; round < 3; round++) { /* best of three */
        double t0, t1, t2;
        json_decref(a);
        json_decref(b);
        t0 = now_ms();
        assert_int_equal(readmodel_query_json(rm, q, NULL, 0, &a, &err), RD_OK);
        t1 = now_ms();
        assert_int_equal(query_run(q, views, &b, &err), RD_OK);
        t2 = now_ms();
        assert_true(json_equal(a, b));
        best_model = t1 - t0 < best_model ? t1 - t0 : best_model;
        best_run = t2 - t1 < best_run ? t2 - t1 : best_run;
    }
    printf("  %-70s model %8.2f ms  query_run %8.2f ms  total_count %lld\n", text, best_model,
           best_run, (long long)json_integer_value(json_object_get(a, "total_count")));
    json_decref(a);
    json_decref(b);
    query_free(q);
    json_decref(qobj);
}

/* Times a stat counted by the model against query_stat over the array. */
static void time_stat(readmodel *rm, const json_t *views, const char *text)
{
    query_schema schema = resource_query_schema(&resource_plugin);
    json_t *sq = json_loads(text, 0, NULL), *a = NULL, *b = NULL;
    rd_error err = {0};
    double best_model = 1e12, best_run = 1e12;
    for (int round = 0; round < 3; round++) {
        double t0, t1, t2;
        json_decref(a);
        json_decref(b);
        t0 = now_ms();
        assert_int_equal(readmodel_stat(rm, sq, NULL, 0, &a, &err), RD_OK);
        t1 = now_ms();
        assert_int_equal(query_stat(sq, &schema, views, &b, &err), RD_OK);
        t2 = now_ms();
        assert_non_null(a);
        assert_true(json_equal(a, b));
        best_model = t1 - t0 < best_model ? t1 - t0 : best_model;
        best_run = t2 - t1 < best_run ? t2 - t1 : best_run;
    }
    printf("  stat %-65s model %8.2f ms  query_stat %8.2f ms  groups %zu\n", text, best_model,
           best_run, json_array_size(json_object_get(a, "results")));
    json_decref(a);
    json_decref(b);
    json_decref(sq);
}

static void test_memory_per_plugin(void **state)
{
    const char *env = getenv("REPOD_RM_MEASURE");
    size_t n = env != NULL ? strtoul(env, NULL, 10) : 0;
    readmodel *rm = NULL;
    rd_error err = {0};
    json_t *views, **sorted;
    long before, mid, after;
    double t0, t1;
    (void)state;
    if (n == 0)
        skip();
    before = rss_kb();
    assert_int_equal(readmodel_create(&resource_plugin, &rm, &err), RD_OK);
    t0 = now_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *v = generated_view(i);
        assert_int_equal(readmodel_put(rm, json_string_value(json_object_get(v, "domain_id")),
                                       json_string_value(json_object_get(v, "plugin_id")), v, &err),
                         RD_OK);
        json_decref(v);
    }
    t1 = now_ms();
    mid = rss_kb();
    /* the same documents as a plain jansson array in default order */
    sorted = calloc(n, sizeof(*sorted));
    assert_non_null(sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = generated_view(i);
    qsort(sorted, n, sizeof(*sorted), cmp_default);
    views = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(views, sorted[i]);
    free(sorted);
    after = rss_kb();
    assert_int_equal(readmodel_count(rm), n);
    {
        readmodel *rm2 = NULL;
        double b0, b1;
        assert_int_equal(readmodel_create(&resource_plugin, &rm2, &err), RD_OK);
        b0 = now_ms();
        assert_int_equal(readmodel_build(rm2, views, &err), RD_OK);
        b1 = now_ms();
        printf("read model: bulk build of %zu plugins in %.0f ms\n", n, b1 - b0);
        readmodel_destroy(rm2);
    }
    printf("read model: %zu plugins put one by one in %.0f ms; RSS +%ld KiB (%ld B/plugin); "
           "the same views as a jansson array: RSS +%ld KiB (%ld B/plugin)\n",
           n, t1 - t0, mid - before, (mid - before) * 1024 / (long)n, after - mid,
           (after - mid) * 1024 / (long)n);
    time_query(rm, views, "{\"page\":{\"limit\":20}}");
    time_query(rm, views,
               "{\"sort\":{\"key\":\"updated_at\",\"desc\":true},\"page\":{\"limit\":20}}");
    time_query(rm, views, "{\"keyword\":\"plugin 4242\",\"page\":{\"limit\":20}}");
    time_query(rm, views,
               "{\"filter\":[{\"k\":\"provider\",\"v\":\"google_cloud\",\"o\":\"eq\"}],\"count_"
               "only\":true}");
    time_query(rm, views,
               "{\"filter\":[{\"k\":\"name\",\"v\":\"^plugin "
               "99\",\"o\":\"regex\"}],\"page\":{\"limit\":20}}");
    time_query(rm, views,
               "{\"filter\":[{\"k\":\"name\",\"v\":\"plugin 4242\",\"o\":\"contain\"}],"
               "\"page\":{\"limit\":20}}");
    time_stat(rm, views,
              "{\"aggregate\":[{\"group\":{\"keys\":[{\"key\":\"provider\",\"name\":\"p\"}],"
              "\"fields\":[{\"name\":\"n\",\"operator\":\"count\"}]}}]}");
    time_stat(rm, views,
              "{\"filter\":[{\"k\":\"state\",\"v\":\"ENABLED\",\"o\":\"eq\"}],"
              "\"group_by\":[\"resource_type\"],\"fields\":{\"n\":{\"operator\":\"count\"}}}");
    json_decref(views);
    readmodel_destroy(rm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_from_description),
        cmocka_unit_test(test_ready_bytes_equal_jansson),
        cmocka_unit_test(test_put_get_replace_delete),
        cmocka_unit_test(test_decode_keys),
        cmocka_unit_test(test_shared_tail),
        cmocka_unit_test(test_kept_values_shared),
        cmocka_unit_test(test_domain_isolation),
        cmocka_unit_test(test_build_swaps_content),
        cmocka_unit_test(test_readers_during_writes),
        cmocka_unit_test(test_text_prefilter),
        cmocka_unit_test(test_catalog_keeps_model),
        cmocka_unit_test(test_builder_equals_puts),
        cmocka_unit_test(test_random_differential),
        cmocka_unit_test(test_memory_per_plugin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
