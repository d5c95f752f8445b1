/*
 * test_merged_read.c - the k-way merge of merged reads (merged_read.h):
 * for random tiers (read models of the remote shape, domain "") and random
 * list queries, asking each tier the tier query (merged_tier_query) and
 * combining the answers (merged_combine) gives exactly query_run over the
 * concatenation of the tiers' documents, each tier in default order:
 * results, their order and total_count.  Prints its seed; set
 * REPOD_TEST_SEED to replay one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "merged_read.h"
#include "plugin.h"
#include "readmodel.h"
#include "remote_models.h"
#include "resource.h"

#define NTIERS 3

static const char *const providers[] = {"aws", "google", "azure", "oracle"};
static const char *const states[] = {"ENABLED", "DISABLED"};
static const char *const types[] = {"inventory.Collector", "monitoring.Webhook", "notify.Protocol"};
static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo"};

static const char *pick(const char *const *list, size_t n)
{
    return list[(size_t)rand() % n];
}

#define PICK(a) pick(a, sizeof(a) / sizeof(a[0]))

/* A plugin view as a tier holds it: few distinct names and dates so that
 * sorts have many ties across tiers. */
static json_t *gen_view(int tier, int i)
{
    char id[64], name[64], at[64];
    snprintf(id, sizeof(id), "p-%d-%d", tier, i);
    snprintf(name, sizeof(name), "%s %s", PICK(words), PICK(words));
    snprintf(at, sizeof(at), "2024-01-%02dT00:00:00.000Z", 1 + rand() % 5);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "plugin_id", id,
                     "name", name, "state", PICK(states), "provider", PICK(providers),
                     "resource_type", PICK(types), "created_at", at, "updated_at", at, "domain_id",
                     "up", "repository_info", "repository_id", tier == 0 ? "local" : "remote",
                     "name", "tier");
}

static json_t *gen_query(void)
{
    static const char *const keys[] = {"name",      "created_at", "updated_at",
                                       "plugin_id", "provider",   "resource_type"};
    json_t *q = json_object();
    int r = rand() % 4;
    if (r == 1)
        json_object_set_new(
            q, "filter",
            json_pack("[{s:s, s:s, s:s}]", "k", "provider", "v", PICK(providers), "o", "eq"));
    else if (r == 2)
        json_object_set_new(q, "keyword", json_string(PICK(words)));
    else if (r == 3)
        json_object_set_new(
            q, "filter",
            json_pack("[{s:s, s:s, s:s}]", "k", "name", "v", PICK(words), "o", "contain"));
    r = rand() % 4;
    if (r == 1)
        json_object_set_new(q, "sort",
                            json_pack("{s:s, s:b}", "key", PICK(keys), "desc", rand() % 2));
    else if (r == 2)
        json_object_set_new(q, "sort",
                            json_pack("[{s:s, s:b}, {s:s}]", "key", PICK(keys), "desc", rand() % 2,
                                      "key", PICK(keys)));
    else if (r == 3)
        json_object_set_new(q, "sort", json_pack("{s:s}", "key", PICK(keys)));
    r = rand() % 5;
    if (r > 0)
        json_object_set_new(q, "page",
                            json_pack("{s:i, s:i}", "start", 1 + rand() % 40, "limit",
                                      r == 4 ? 0 : 1 + rand() % 25));
    if (rand() % 8 == 0)
        json_object_set_new(q, "count_only", json_true());
    if (rand() % 6 == 0)
        json_object_set_new(q, "minimal", json_true());
    return q;
}

static void test_merge_equals_query_run(void **state)
{
    const char *seed_env = getenv("REPOD_TEST_SEED");
    unsigned seed = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    resource_desc res = resource_plugin;
    query_schema schema = resource_query_schema(&resource_plugin);
    rd_error err = {0};
    (void)state;

    printf("test_merge_equals_query_run: seed %u\n", seed);
    srand(seed);
    res.domain_field = NULL;
    for (int round = 0; round < 30; round++) {
        readmodel *rm[NTIERS];
        json_t *tier_views[NTIERS], *concat = json_array();
        for (int t = 0; t < NTIERS; t++) {
            json_t **items;
            int n = rand() % 60;
            tier_views[t] = json_array();
            for (int i = 0; i < n; i++)
                json_array_append_new(tier_views[t], gen_view(t, i));
            assert_int_equal(readmodel_create(&res, &rm[t], &err), RD_OK);
            assert_int_equal(readmodel_build(rm[t], tier_views[t], &err), RD_OK);
            /* the reference: each tier in default order, tier after tier */
            items = calloc((size_t)n + 1, sizeof(*items));
            for (int i = 0; i < n; i++)
                items[i] = json_array_get(tier_views[t], (size_t)i);
            qsort(items, (size_t)n, sizeof(*items), plugin_cmp_default_order);
            for (int i = 0; i < n; i++)
                json_array_append(concat, items[i]);
            free(items);
        }
        for (int k = 0; k < 40; k++) {
            json_t *qj = gen_query(), *want = NULL, *got = NULL;
            query *q = NULL, *tq = NULL;
            readmodel_result res_t[NTIERS];
            merged_part parts[NTIERS];
            const json_t **views[NTIERS];
            assert_int_equal(query_compile(qj, NULL, &schema, &q, &err), RD_OK);
            assert_int_equal(merged_tier_query(qj, NULL, &schema, q, &tq, &err), RD_OK);
            for (int t = 0; t < NTIERS; t++) {
                assert_int_equal(readmodel_query(rm[t], tq, NULL, 0, &res_t[t], &err), RD_OK);
                views[t] = calloc(res_t[t].n + 1, sizeof(*views[t]));
                for (size_t j = 0; j < res_t[t].n; j++)
                    views[t][j] = readmodel_doc_view(res_t[t].docs[j]);
                parts[t].docs = views[t];
                parts[t].n = res_t[t].n;
                parts[t].total = res_t[t].total_count;
            }
            assert_int_equal(merged_combine(q, parts, NTIERS, &got, &err), RD_OK);
            assert_int_equal(query_run(q, concat, &want, &err), RD_OK);
            if (!json_equal(want, got)) {
                char *qs = json_dumps(qj, JSON_COMPACT);
                fail_msg("seed %u round %d: merge differs from query_run for %s", seed, round, qs);
            }
            for (int t = 0; t < NTIERS; t++) {
                readmodel_result_free(&res_t[t]);
                free(views[t]);
            }
            json_decref(want);
            json_decref(got);
            query_free(q);
            query_free(tq);
            json_decref(qj);
        }
        for (int t = 0; t < NTIERS; t++) {
            readmodel_destroy(rm[t]);
            json_decref(tier_views[t]);
        }
        json_decref(concat);
    }
}

/* The tier query keeps filters and sort, drops the projection, and asks
 * for the first start+limit-1 documents. */
static void test_tier_query_page(void **state)
{
    query_schema schema = resource_query_schema(&resource_plugin);
    rd_error err = {0};
    json_t *qj = json_pack("{s:{s:s}, s:{s:i, s:i}, s:[s], s:s}", "sort", "key", "name", "page",
                           "start", 5, "limit", 10, "only", "name", "keyword", "alpha");
    query *q = NULL, *tq = NULL;
    size_t from, to;
    (void)state;
    assert_int_equal(query_compile(qj, NULL, &schema, &q, &err), RD_OK);
    assert_int_equal(merged_tier_query(qj, NULL, &schema, q, &tq, &err), RD_OK);
    query_page_window(tq, 1000, &from, &to);
    assert_int_equal(from, 0);
    assert_int_equal(to, 14);
    {
        json_t *doc = json_pack("{s:s, s:s}", "name", "alpha", "plugin_id", "x");
        json_t *p = query_project(tq, doc);
        assert_true(json_equal(p, doc)); /* no projection */
        assert_true(query_match(tq, doc));
        json_decref(p);
        json_decref(doc);
    }
    query_free(q);
    query_free(tq);
    json_decref(qj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_equals_query_run),
        cmocka_unit_test(test_tier_query_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
