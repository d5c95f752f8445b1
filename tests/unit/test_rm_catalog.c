/*
 * test_rm_catalog.c - the catalog's list paths over its read model against
 * the store: random inserts, modifies, bulk inserts and deletes through the
 * catalog API, each followed by random list queries over random readable
 * domain sets (own domain + public domains, or none), where
 * catalog_query_views and query_run over catalog_collect_views (both from
 * the model) must equal query_run over the views of catalog_plugin_collect
 * (the stored records); and a stat over both.  Prints its seed; set
 * REPOD_TEST_SEED to replay one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "plugin.h"
#include "query.h"
#include "store.h"
#include "testkit.h"

static unsigned rnd_state;

static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return ((rnd_state >> 8) & 0xffffffu) % n;
}

#define NIDS     30
#define NPOOL(a) (sizeof(a) / sizeof(*(a)))

static const char *const names[] = {"Alpha", "alpha", "Beta", "Gamma Ray", "delta", "ALPHABET", ""};
static const char *const states[] = {"ENABLED", "DISABLED"};
static const char *const types[] = {"DataSource", "Collector", "Notification"};
static const char *const providers[] = {"acme", "Acme", "globex", "", "initech"};
static const char *const labels[] = {"Fast", "slow", "beta", "ALPHA", "x"};
static const char *const dates[] = {"2024-01-01T00:00:00.000Z", "2023-05-05T10:00:00.000Z",
                                    "2025-12-31T23:59:59.999Z"};
static const char *const domains_all[] = {"dA", "dB", "dC"};

/* A string of pool, now and then an odd value (number, null, array). */
static json_t *pick(const char *const *pool, size_t n)
{
    unsigned r = rnd(16);
    if (r == 0)
        return json_integer(rnd(3));
    if (r == 1)
        return json_null();
    if (r == 2)
        return json_pack("[ss]", pool[rnd((unsigned)n)], pool[rnd((unsigned)n)]);
    return json_string(pool[rnd((unsigned)n)]);
}

static json_t *random_record(const char *domain, const char *id)
{
    json_t *r = json_object(), *l = json_array();
    char img[64];
    snprintf(img, sizeof(img), "repo/%s", id);
    json_object_set_new(r, "plugin_id", json_string(id));
    json_object_set_new(r, "domain_id", json_string(domain));
    json_object_set_new(r, "name", pick(names, NPOOL(names)));
    json_object_set_new(r, "state", json_string(states[rnd(2)]));
    json_object_set_new(r, "resource_type", json_string(types[rnd(3)]));
    json_object_set_new(r, "provider", pick(providers, NPOOL(providers)));
    json_object_set_new(r, "registry_type", json_string(rnd(2) ? "DOCKER_HUB" : "HARBOR"));
    json_object_set_new(r, "image", json_string(img));
    json_object_set_new(r, "created_at", json_string(dates[rnd(3)]));
    json_object_set_new(r, "updated_at", json_string(dates[rnd(3)]));
    for (unsigned i = rnd(3); i > 0; i--)
        json_array_append_new(l, json_string(labels[rnd(5)]));
    json_object_set_new(r, "labels", l);
    if (rnd(2))
        json_object_set_new(r, "docs", json_pack("{s:s}", "readme", "x"));
    return r;
}

static json_t *random_value(const char *field)
{
    char id[16];
    if (strcmp(field, "name") == 0)
        return json_string(names[rnd(NPOOL(names))]);
    if (strcmp(field, "state") == 0)
        return json_string(states[rnd(2)]);
    if (strcmp(field, "resource_type") == 0 || strcmp(field, "service_type") == 0)
        return json_string(types[rnd(3)]);
    if (strcmp(field, "provider") == 0)
        return json_string(providers[rnd(NPOOL(providers))]);
    if (strcmp(field, "labels") == 0)
        return json_string(labels[rnd(5)]);
    if (strcmp(field, "domain_id") == 0)
        return json_string(domains_all[rnd(3)]);
    snprintf(id, sizeof(id), "p%u", rnd(NIDS));
    return json_string(id);
}

static json_t *random_query(void)
{
    static const char *const fields[] = {"name",     "state",  "resource_type", "service_type",
                                         "provider", "labels", "plugin_id",     "domain_id"};
    static const char *const ops[] = {"eq", "eq", "in", "not", "contain", "regex", "not_in"};
    static const char *const sort_keys[] = {"name",      "created_at", "updated_at",
                                            "plugin_id", "provider",   "state"};
    static const char *const words[] = {"alp", "acme fast", "Gamma", "zzz"};
    json_t *q = json_object(), *f = json_array();
    for (unsigned n = rnd(3); n > 0; n--) {
        const char *k = fields[rnd(NPOOL(fields))], *o = ops[rnd(NPOOL(ops))];
        json_t *v;
        if (strcmp(o, "in") == 0 || strcmp(o, "not_in") == 0)
            v = json_pack("[oo]", random_value(k), random_value(k));
        else if (strcmp(o, "contain") == 0 || strcmp(o, "regex") == 0)
            v = json_string(rnd(2) ? "a" : "^p1");
        else
            v = random_value(k);
        json_array_append_new(f, json_pack("{s:s, s:o, s:s}", "k", k, "v", v, "o", o));
    }
    json_object_set_new(q, "filter", f);
    if (rnd(4) == 0)
        json_object_set_new(q, "keyword", json_string(words[rnd(4)]));
    if (rnd(3))
        json_object_set_new(q, "sort",
                            json_pack("{s:s, s:b}", "key", sort_keys[rnd(6)], "desc", (int)rnd(2)));
    if (rnd(2))
        json_object_set_new(q, "page",
                            json_pack("{s:i, s:i}", "start", (int)rnd(4), "limit", (int)rnd(6)));
    if (rnd(8) == 0)
        json_object_set_new(q, "count_only", json_true());
    if (rnd(8) == 0)
        json_object_set_new(q, "minimal", json_true());
    return q;
}

/* The reference: views of the stored records of the domains, default order. */
static json_t *store_views(catalog *cat, const char *const *doms, size_t nd)
{
    json_t *recs = json_array(), *out = json_array(), **tmp;
    rd_error err = {0};
    size_t n;
    for (size_t i = 0; i < nd; i++)
        assert_int_equal(catalog_plugin_collect(cat, doms[i], recs, &err), RD_OK);
    n = json_array_size(recs);
    tmp = calloc(n + 1, sizeof(*tmp));
    for (size_t i = 0; i < n; i++)
        tmp[i] = plugin_view(json_array_get(recs, i), catalog_local_info(cat));
    qsort(tmp, n, sizeof(*tmp), plugin_cmp_default_order);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, tmp[i]);
    free(tmp);
    json_decref(recs);
    return out;
}

static void expect_equal(unsigned seed, const char *what, const json_t *qobj, json_t *want,
                         json_t *got)
{
    if (!json_equal(want, got)) {
        char *qs = json_dumps(qobj, JSON_COMPACT), *ws = json_dumps(want, JSON_COMPACT),
             *gs = json_dumps(got, JSON_COMPACT);
        printf("seed %u %s\nquery %s\nwant %s\ngot  %s\n", seed, what, qs, ws, gs);
        free(qs);
        free(ws);
        free(gs);
        fail();
    }
}

/* Every list path against the store for one random query and domain set. */
static void check_lists(catalog *cat, unsigned seed)
{
    json_t *qobj = random_query(), *ref_docs, *ref = NULL, *got = NULL, *docs = NULL;
    json_t *stat_q, *sref = NULL, *sgot = NULL;
    query *q = NULL;
    rd_error err = {0};
    const char *doms[3];
    size_t nd = 0;
    /* the caller's own domain first, then public ones; sometimes none */
    for (int d = 0; d < 3; d++)
        if (rnd(2))
            doms[nd++] = domains_all[(d + seed) % 3];
    assert_int_equal(query_compile(qobj, NULL, &query_schema_plugin, &q, &err), RD_OK);
    ref_docs = store_views(cat, doms, nd);
    assert_int_equal(query_run(q, ref_docs, &ref, &err), RD_OK);

    assert_int_equal(catalog_query_views(cat, doms, nd, q, &got, &err), RD_OK);
    expect_equal(seed, "catalog_query_views", qobj, ref, got);
    json_decref(got);
    got = NULL;
    { /* the serialised list the API sends: json_dumps of the same answer */
        char *body = NULL, *want = json_dumps(ref, JSON_COMPACT);
        size_t len = 0;
        assert_int_equal(
            catalog_res_query_bytes(cat, &resource_plugin, doms, nd, q, &body, &len, &err), RD_OK);
        assert_int_equal(len, strlen(want));
        assert_string_equal(body, want);
        free(body);
        free(want);
    }

    assert_int_equal(catalog_collect_views(cat, doms, nd, q, &docs, NULL, &err), RD_OK);
    assert_int_equal(query_run(q, docs, &got, &err), RD_OK);
    expect_equal(seed, "catalog_collect_views", qobj, ref, got);

    stat_q = json_pack("{s:O, s:[{s:{s:[{s:s, s:s}], s:[{s:s, s:s}]}}]}", "filter",
                       json_object_get(qobj, "filter"), "aggregate", "group", "keys", "key",
                       "provider", "name", "p", "fields", "name", "n", "operator", "count");
    assert_int_equal(query_stat(stat_q, &query_schema_plugin, ref_docs, &sref, &err), RD_OK);
    json_decref(docs);
    docs = NULL;
    /* the API narrows a stat's local read by the stat's own filters */
    {
        json_t *f = json_pack("{s:O}", "filter", json_object_get(qobj, "filter"));
        query *hint = NULL;
        assert_int_equal(query_compile(f, NULL, &query_schema_plugin, &hint, &err), RD_OK);
        assert_int_equal(catalog_collect_views(cat, doms, nd, hint, &docs, NULL, &err), RD_OK);
        query_free(hint);
        json_decref(f);
    }
    assert_int_equal(query_stat(stat_q, &query_schema_plugin, docs, &sgot, &err), RD_OK);
    expect_equal(seed, "stat", stat_q, sref, sgot);
    /* catalog_stat_views: counted by the model, or run over its views */
    {
        static const char *const keys[] = {"provider", "state", "service_type",
                                           "labels",   "name",  "resource_type"};
        json_t *v2 = json_pack("{s:O, s:[s], s:{s:{s:s}}, s:[{s:s, s:b}]}", "filter",
                               json_object_get(qobj, "filter"), "group_by", keys[rnd(6)], "fields",
                               "n", "operator", "count", "sort", "key", "n", "desc", 1);
        json_t *vref = NULL, *vgot = NULL;
        json_decref(sgot);
        sgot = NULL;
        assert_int_equal(catalog_stat_views(cat, doms, nd, stat_q, &sgot, &err), RD_OK);
        expect_equal(seed, "catalog_stat_views", stat_q, sref, sgot);
        assert_int_equal(query_stat(v2, &query_schema_plugin, ref_docs, &vref, &err), RD_OK);
        assert_int_equal(catalog_stat_views(cat, doms, nd, v2, &vgot, &err), RD_OK);
        expect_equal(seed, "catalog_stat_views group_by", v2, vref, vgot);
        json_decref(vref);
        json_decref(vgot);
        json_decref(v2);
    }
    /* a stat on keys the model does not keep (dotted, unkept) with the
     * list's keyword: run over views that hold only the keys it reads */
    {
        json_t *fq =
            json_pack("{s:O, s:[{s:{s:[{s:s, s:s}, {s:s, s:s}], s:[{s:s, s:s}, {s:s, s:s, s:s}, "
                      "{s:s, s:s, s:s}]}}, {s:{s:s, s:b}}]}",
                      "filter", json_object_get(qobj, "filter"), "aggregate", "group", "keys",
                      "key", "docs.readme", "name", "readme", "key", "registry_type", "name",
                      "type", "fields", "name", "count", "operator", "count", "name", "img",
                      "operator", "first", "key", "image", "name", "labels", "operator",
                      "add_to_set", "key", "labels", "sort", "key", "count", "desc", 1);
        json_t *fref = NULL, *fgot = NULL;
        if (json_object_get(qobj, "keyword") != NULL)
            json_object_set(fq, "keyword", json_object_get(qobj, "keyword"));
        assert_int_equal(query_stat(fq, &query_schema_plugin, ref_docs, &fref, &err), RD_OK);
        assert_int_equal(catalog_stat_views(cat, doms, nd, fq, &fgot, &err), RD_OK);
        expect_equal(seed, "catalog_stat_views unkept keys", fq, fref, fgot);
        json_decref(fref);
        json_decref(fgot);
        json_decref(fq);
        fq =
            json_pack("{s:O, s:s, s:{s:i, s:i}}", "filter", json_object_get(qobj, "filter"),
                      "distinct", rnd(2) ? "docs.readme" : "image", "page", "start", 2, "limit", 5);
        fref = fgot = NULL;
        assert_int_equal(query_stat(fq, &query_schema_plugin, ref_docs, &fref, &err), RD_OK);
        assert_int_equal(catalog_stat_views(cat, doms, nd, fq, &fgot, &err), RD_OK);
        expect_equal(seed, "catalog_stat_views distinct", fq, fref, fgot);
        json_decref(fref);
        json_decref(fgot);
        json_decref(fq);
    }

    json_decref(stat_q);
    json_decref(sref);
    json_decref(sgot);
    json_decref(docs);
    json_decref(ref);
    json_decref(got);
    json_decref(ref_docs);
    query_free(q);
    json_decref(qobj);
}

/* The ready bytes a get sends are what the view of the stored record
 * serialises to (as the edge does: JSON_COMPACT). */
static void check_ready_bytes(catalog *cat, const char *dom, const char *id)
{
    json_t *rec = NULL, *view;
    rd_error err = {0};
    readmodel_doc *d = catalog_plugin_view(cat, dom, id);
    char *want;
    size_t len = 0;
    if (catalog_plugin_get(cat, dom, id, &rec, &err) != RD_OK) {
        assert_null(d);
        return;
    }
    assert_non_null(d);
    view = plugin_view(rec, catalog_local_info(cat));
    want = json_dumps(view, JSON_COMPACT);
    assert_string_equal(readmodel_doc_bytes(d, &len), want);
    assert_int_equal(len, strlen(want));
    free(want);
    json_decref(view);
    json_decref(rec);
    readmodel_doc_release(d);
}

static rd_status replace_fn(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    (void)current;
    (void)err;
    *updated = json_incref(ud);
    return RD_OK;
}

static void test_lists_match_store(void **state)
{
    const char *seed_env = getenv("REPOD_TEST_SEED");
    unsigned seed = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    char dir[64];
    store *st = NULL;
    catalog *cat = NULL;
    rd_error err = {0};
    size_t checked = 0;
    (void)state;

    printf("test_lists_match_store seed %u\n", seed);
    rnd_state = seed;
    snprintf(dir, sizeof(dir), "/tmp/test_rm_catalog.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(dir, &st, &err), RD_OK);
    assert_int_equal(catalog_open(st, "local-repo", &cat, &err), RD_OK);
    for (int step = 0; step < 300; step++) {
        char id[16];
        const char *dom = domains_all[rnd(3)];
        json_t *rec, *old = NULL;
        snprintf(id, sizeof(id), "p%u", rnd(NIDS));
        rec = random_record(dom, id);
        if (catalog_plugin_get(cat, dom, id, &old, &err) == RD_OK) {
            if (rnd(3) == 0)
                assert_int_equal(catalog_plugin_delete(cat, dom, id, &err), RD_OK);
            else
                assert_int_equal(catalog_plugin_modify(cat, dom, id, replace_fn, rec, NULL, &err),
                                 RD_OK);
        } else if (rnd(5) == 0) {
            json_t *many = json_array();
            json_array_append(many, rec);
            assert_int_equal(catalog_plugin_insert_many(cat, many, &err), RD_OK);
            json_decref(many);
        } else {
            assert_int_equal(catalog_plugin_insert(cat, rec, &err), RD_OK);
        }
        json_decref(old);
        json_decref(rec);
        assert_true(catalog_model_whole(cat));
        check_ready_bytes(cat, dom, id);
        for (int qi = 0; qi < 3; qi++, checked++)
            check_lists(cat, seed);
        if (step == 150) { /* a new open rebuilds the model from the store */
            catalog_close(cat);
            assert_int_equal(catalog_open(st, "local-repo", &cat, &err), RD_OK);
        }
    }
    printf("test_lists_match_store: %zu queries equal\n", checked);
    catalog_close(cat);
    store_close(st);
    testkit_rm_tree(dir);
}

/* A model rebuilt from a store that spans many of the scan's hand-over
 * batches (the records decoded on several threads): every record is in
 * it, its ready bytes are the view's, and lists equal the store's. */
static void test_rebuild_many(void **state)
{
    const char *seed_env = getenv("REPOD_TEST_SEED");
    unsigned seed = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    char dir[64];
    store *st = NULL;
    catalog *cat = NULL;
    rd_error err = {0};
    json_t *many = json_array(), *all = json_array();
    (void)state;

    printf("test_rebuild_many seed %u\n", seed);
    rnd_state = seed;
    snprintf(dir, sizeof(dir), "/tmp/test_rm_catalog.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(dir, &st, &err), RD_OK);
    assert_int_equal(catalog_open(st, "local-repo", &cat, &err), RD_OK);
    for (unsigned i = 0; i < 1500; i++) {
        char id[16];
        snprintf(id, sizeof(id), "p%u", NIDS + i);
        json_array_append_new(many, random_record(domains_all[i % 3], id));
    }
    assert_int_equal(catalog_plugin_insert_many(cat, many, &err), RD_OK);
    catalog_close(cat);
    assert_int_equal(catalog_open(st, "local-repo", &cat, &err), RD_OK);
    assert_true(catalog_model_whole(cat));
    for (size_t d = 0; d < 3; d++)
        assert_int_equal(catalog_plugin_collect(cat, domains_all[d], all, &err), RD_OK);
    assert_int_equal(json_array_size(all), 1500);
    for (unsigned i = 0; i < 1500; i += 7) {
        char id[16];
        snprintf(id, sizeof(id), "p%u", NIDS + i);
        check_ready_bytes(cat, domains_all[i % 3], id);
    }
    for (int qi = 0; qi < 60; qi++)
        check_lists(cat, seed);
    json_decref(many);
    json_decref(all);
    catalog_close(cat);
    store_close(st);
    testkit_rm_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_match_store),
        cmocka_unit_test(test_rebuild_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
