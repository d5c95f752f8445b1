/*
 * test_merged_stat.c - the counted stat over several tiers (merged_read.h):
 * for random tiers (a local read model over several domains and two remote
 * models of domain "", each tier's documents carrying that tier's
 * repository_info) and random group-and-count stats, adding each tier's
 * counts to one tally (readmodel_stat_tally, local tier first) and
 * finishing the pipeline (query_stat_groups_finish) gives exactly the
 * answer of the path that decodes every tier's matches and runs query_stat
 * over their concatenation - and the answer of query_stat over the plain
 * views.  Prints its seed; set REPOD_TEST_SEED to replay one.
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

#include "plugin.h"
#include "query.h"
#include "readmodel.h"
#include "resource.h"

#define NTIERS 3

static const char *const providers[] = {"aws", "google", "azure", "oracle"};
static const char *const states[] = {"ENABLED", "DISABLED"};
static const char *const types[] = {"inventory.Collector", "monitoring.Webhook", "notify.Protocol"};
static const char *const words[] = {"alpha", "bravo", "charlie", "delta"};
static const char *const domains_all[] = {"dA", "dB", "dC"};
static const char *const tier_ids[] = {"repo-local", "repo-zulu", "repo-alpha"};
static const char *const tier_names[] = {"Local", "Zulu", "Alpha"};

static const char *pick(const char *const *list, size_t n)
{
    return list[(size_t)rand() % n];
}

#define PICK(a) pick(a, sizeof(a) / sizeof(a[0]))

/* A string from list, sometimes an odd value (missing, null, a number, an
 * array) that the models cannot count: the stat then falls back. */
static void set_value(json_t *v, const char *key, const char *const *list, size_t n, int odd)
{
    int r = odd ? rand() % 40 : 9;
    if (r == 0)
        return;
    if (r == 1)
        json_object_set_new(v, key, json_null());
    else if (r == 2)
        json_object_set_new(v, key, json_integer(rand() % 3));
    else if (r == 3)
        json_object_set_new(v, key, json_pack("[s]", pick(list, n)));
    else
        json_object_set_new(v, key, json_string(pick(list, n)));
}

#define SET(v, key, list, odd) set_value(v, key, list, sizeof(list) / sizeof(list[0]), odd)

/* A plugin view as tier t holds it (t 0: the local tier, domain picked). */
static json_t *gen_view(int t, int i, int odd)
{
    char id[64], name[64];
    json_t *v;
    snprintf(id, sizeof(id), "p-%d-%d", t, i);
    snprintf(name, sizeof(name), "%s %s", PICK(words), PICK(words));
    v = json_pack("{s:s, s:s, s:s, s:s}", "plugin_id", id, "name", name, "domain_id",
                  t == 0 ? PICK(domains_all) : "up", "created_at", "2024-01-01T00:00:00.000Z");
    SET(v, "provider", providers, odd);
    SET(v, "resource_type", types, odd);
    SET(v, "state", states, odd);
    json_object_set_new(v, "labels", json_pack("[s]", PICK(words)));
    json_object_set_new(v, "repository_info",
                        json_pack("{s:s, s:s, s:s, s:s}", "repository_id", tier_ids[t], "name",
                                  tier_names[t], "repository_type", t == 0 ? "local" : "remote",
                                  "endpoint", ""));
    return v;
}

static const char *const group_keys[] = {"provider",
                                         "resource_type",
                                         "state",
                                         "repository_info.repository_id",
                                         "name",
                                         "labels",
                                         "repository_info",
                                         "repository_info.name",
                                         "image",
                                         "repository_info.repository_type"};

/* A random filter as the console's facets make them, or another one. */
static json_t *gen_filter(void)
{
    switch (rand() % 6) {
    case 0:
        return json_pack("{s:s, s:s, s:s}", "k", "provider", "v", PICK(providers), "o", "eq");
    case 1:
        return json_pack("{s:s, s:s, s:s}", "k", "state", "v", PICK(states), "o", "eq");
    case 2:
        return json_pack("{s:s, s:s, s:s}", "k", "repository_info.repository_id", "v",
                         PICK(tier_ids), "o", "eq");
    case 3:
        return json_pack("{s:s, s:s, s:s}", "k", "name", "v", PICK(words), "o", "contain");
    case 4:
        return json_pack("{s:s, s:[ss], s:s}", "k", "resource_type", "v", PICK(types), PICK(types),
                         "o", "in");
    default:
        return json_pack("{s:s, s:s, s:s}", "k", "provider", "v", PICK(providers), "o", "not");
    }
}

/* A random stat that groups by one to three distinct keys, mostly
 * counting, with later stages and a page sometimes. */
static json_t *gen_stat(void)
{
    static const char *const names[] = {"value", "label", "type"};
    json_t *sq = json_object(), *keys = json_array(), *fields, *agg = json_array();
    int nk = rand() % 3 == 0 ? 2 + rand() % 2 : 1;
    const char *k[3];
    for (int i = 0; i < nk; i++) { /* distinct keys */
        int dup;
        do {
            k[i] = PICK(group_keys);
            dup = 0;
            for (int j = 0; j < i; j++)
                dup |= strcmp(k[i], k[j]) == 0;
        } while (dup);
    }
    if (rand() % 2) {
        json_t *f = json_array();
        for (int n = 1 + rand() % 2; n > 0; n--)
            json_array_append_new(f, gen_filter());
        json_object_set_new(sq, "filter", f);
    }
    if (rand() % 5 == 0)
        json_object_set_new(sq, "keyword", json_string(PICK(words)));
    for (int i = 0; i < nk; i++)
        json_array_append_new(keys, json_pack("{s:s, s:s}", "key", k[i], "name", names[i]));
    fields = json_pack("[{s:s, s:s}]", "name", "count", "operator", "count");
    if (rand() % 10 == 0) /* not a count: the decoding path */
        json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "name", "ids", "key",
                                                "plugin_id", "operator", "push"));
    json_array_append_new(agg,
                          json_pack("{s:{s:o, s:o}}", "group", "keys", keys, "fields", fields));
    switch (rand() % 4) {
    case 0:
        json_array_append_new(agg, json_pack("{s:{s:s, s:b}}", "sort", "key", "count", "desc", 1));
        break;
    case 1:
        json_array_append_new(agg, json_pack("{s:{s:s}}", "sort", "key", "value"));
        json_array_append_new(agg, json_pack("{s:i}", "limit", 1 + rand() % 3));
        break;
    case 2:
        json_array_append_new(agg, json_pack("{s:{s:s}}", "count", "name", "groups"));
        break;
    default:
        break;
    }
    json_object_set_new(sq, "aggregate", agg);
    if (rand() % 4 == 0)
        json_object_set_new(sq, "page",
                            json_pack("{s:i, s:i}", "start", 1 + rand() % 3, "limit", rand() % 4));
    return sq;
}

/* The tiers, as merged_stat reads them. */
typedef struct {
    readmodel *rm[NTIERS];
    json_t *views[NTIERS]; /* each tier's views */
    const char *doms[3];   /* the local tier's readable domains */
    size_t nd;
} tiers;

/* The counted path: each tier's counts added in tier order, then the rest
 * of the pipeline; *out NULL when some tier cannot count. */
static rd_status counted_path(const tiers *t, const json_t *sq, json_t **out, rd_error *err)
{
    query_schema schema = resource_query_schema(&resource_plugin);
    query_stat_groups *plan = NULL;
    query_stat_tally *tally = NULL;
    int counted = 1;
    rd_status rc = query_stat_groups_compile(sq, &schema, &plan, err);
    *out = NULL;
    if (rc != RD_OK || plan == NULL)
        return rc;
    tally = query_stat_tally_new(plan);
    assert_non_null(tally);
    for (int i = 0; i < NTIERS && counted && rc == RD_OK; i++)
        rc = readmodel_stat_tally(t->rm[i], plan, i == 0 ? t->doms : NULL, i == 0 ? t->nd : 0,
                                  tally, &counted, err);
    if (rc == RD_OK && counted)
        rc = query_stat_groups_finish(plan, tally, out, err);
    query_stat_tally_free(tally);
    query_stat_groups_free(plan);
    return rc;
}

/* The decoding path: every tier's matches of the stat's filters, decoded
 * and concatenated in tier order, then query_stat. */
static rd_status decoded_path(const tiers *t, const json_t *sq, json_t **out, rd_error *err)
{
    query_schema schema = resource_query_schema(&resource_plugin);
    query *hint = NULL;
    rd_error ignored;
    json_t *docs = json_array();
    rd_status rc;
    if (query_stat_filter(sq, &schema, &hint, &ignored) != RD_OK)
        hint = NULL;
    for (int i = 0; i < NTIERS; i++) {
        readmodel_result r;
        memset(&r, 0, sizeof(r));
        assert_int_equal(
            readmodel_matches(t->rm[i], hint, i == 0 ? t->doms : NULL, i == 0 ? t->nd : 0, &r, err),
            RD_OK);
        for (size_t j = 0; j < r.n; j++)
            json_array_append_new(docs, readmodel_doc_decode(r.docs[j]));
        readmodel_result_free(&r);
    }
    rc = query_stat(sq, &schema, docs, out, err);
    query_free(hint);
    json_decref(docs);
    return rc;
}

/* query_stat over the plain views: each tier's readable views in default
 * order, tier after tier. */
static rd_status plain_path(const tiers *t, const json_t *sq, json_t **out, rd_error *err)
{
    query_schema schema = resource_query_schema(&resource_plugin);
    json_t *docs = json_array();
    rd_status rc;
    for (int i = 0; i < NTIERS; i++) {
        size_t n = json_array_size(t->views[i]), k = 0;
        json_t **items = calloc(n + 1, sizeof(*items));
        for (size_t j = 0; j < n; j++) {
            json_t *v = json_array_get(t->views[i], j);
            const char *dom = json_string_value(json_object_get(v, "domain_id"));
            int ok = i != 0;
            for (size_t d = 0; d < t->nd && !ok; d++)
                ok = strcmp(t->doms[d], dom) == 0;
            if (ok)
                items[k++] = v;
        }
        qsort(items, k, sizeof(*items), plugin_cmp_default_order);
        for (size_t j = 0; j < k; j++)
            json_array_append(docs, items[j]);
        free(items);
    }
    rc = query_stat(sq, &schema, docs, out, err);
    json_decref(docs);
    return rc;
}

static void tiers_build(tiers *t, int odd)
{
    static resource_desc remote_res;
    rd_error err = {0};
    remote_res = resource_plugin;
    remote_res.domain_field = NULL; /* the remote shape: domain "" */
    for (int i = 0; i < NTIERS; i++) {
        int n = rand() % 70;
        t->views[i] = json_array();
        for (int j = 0; j < n; j++)
            json_array_append_new(t->views[i], gen_view(i, j, odd));
        assert_int_equal(readmodel_create(i == 0 ? &resource_plugin : &remote_res, &t->rm[i], &err),
                         RD_OK);
        assert_int_equal(readmodel_build(t->rm[i], t->views[i], &err), RD_OK);
    }
    t->nd = 0;
    for (int d = 0; d < 3; d++)
        if (rand() % 3 != 0)
            t->doms[t->nd++] = domains_all[d];
}

static void tiers_free(tiers *t)
{
    for (int i = 0; i < NTIERS; i++) {
        readmodel_destroy(t->rm[i]);
        json_decref(t->views[i]);
    }
}

static void fail_differs(unsigned seed, int round, const json_t *sq, const char *what,
                         const json_t *want, const json_t *got)
{
    char *qs = json_dumps(sq, JSON_COMPACT), *ws = json_dumps(want, JSON_COMPACT),
         *gs = json_dumps(got, JSON_COMPACT);
    fail_msg("seed %u round %d: %s differs\nstat %s\nwant %s\ngot  %s", seed, round, what, qs, ws,
             gs);
}

static void test_counted_equals_decoded(void **state)
{
    const char *seed_env = getenv("REPOD_TEST_SEED");
    unsigned seed = seed_env != NULL ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    size_t counted = 0, declined = 0;
    rd_error err = {0};
    (void)state;

    printf("test_counted_equals_decoded: seed %u\n", seed);
    srand(seed);
    for (int round = 0; round < 30; round++) {
        tiers t;
        tiers_build(&t, round % 3 == 2);
        for (int k = 0; k < 40; k++) {
            json_t *sq = gen_stat(), *fast = NULL, *slow = NULL, *plain = NULL;
            rd_status rc_fast = counted_path(&t, sq, &fast, &err);
            rd_status rc_slow = decoded_path(&t, sq, &slow, &err);
            assert_int_equal(plain_path(&t, sq, &plain, &err), rc_slow);
            assert_int_equal(rc_fast, rc_slow);
            if (rc_slow == RD_OK && !json_equal(slow, plain))
                fail_differs(seed, round, sq, "the decoded path", plain, slow);
            if (fast != NULL && !json_equal(slow, fast))
                fail_differs(seed, round, sq, "the counted path", slow, fast);
            counted += fast != NULL;
            declined += fast == NULL;
            json_decref(fast);
            json_decref(slow);
            json_decref(plain);
            json_decref(sq);
        }
        tiers_free(&t);
    }
    printf("test_counted_equals_decoded: %zu stats counted, %zu decoded\n", counted, declined);
    assert_true(counted > 400);
    assert_true(declined > 50);
}

/* The console's four facets (console/catalog.js) over clean tiers are all
 * counted, the repository facet with its three keys under repository_info
 * included: one group per tier. */
static void test_console_facets_counted(void **state)
{
    static const char *const facet_text[] = {
        "{\"keyword\":\"alpha\",\"filter\":[{\"k\":\"state\",\"v\":\"ENABLED\",\"o\":\"eq\"}],"
        "\"aggregate\":[{\"group\":{\"keys\":[{\"key\":\"provider\",\"name\":\"value\"}],"
        "\"fields\":[{\"name\":\"count\",\"operator\":\"count\"}]}},"
        "{\"sort\":{\"key\":\"count\",\"desc\":true}}]}",
        "{\"filter\":[],\"aggregate\":[{\"group\":{\"keys\":[{\"key\":\"resource_type\","
        "\"name\":\"value\"}],\"fields\":[{\"name\":\"count\",\"operator\":\"count\"}]}},"
        "{\"sort\":{\"key\":\"count\",\"desc\":true}}]}",
        "{\"filter\":[{\"k\":\"repository_info.repository_id\",\"v\":\"repo-zulu\",\"o\":\"eq\"}],"
        "\"aggregate\":[{\"group\":{\"keys\":[{\"key\":\"state\",\"name\":\"value\"}],"
        "\"fields\":[{\"name\":\"count\",\"operator\":\"count\"}]}},"
        "{\"sort\":{\"key\":\"count\",\"desc\":true}}]}",
        "{\"keyword\":\"alpha\",\"filter\":[],\"aggregate\":[{\"group\":{\"keys\":["
        "{\"key\":\"repository_info.repository_id\",\"name\":\"value\"},"
        "{\"key\":\"repository_info.name\",\"name\":\"label\"},"
        "{\"key\":\"repository_info.repository_type\",\"name\":\"type\"}],"
        "\"fields\":[{\"name\":\"count\",\"operator\":\"count\"}]}},"
        "{\"sort\":{\"key\":\"count\",\"desc\":true}}]}",
    };
    rd_error err = {0};
    tiers t;
    (void)state;
    srand(5);
    tiers_build(&t, 0);
    for (size_t i = 0; i < sizeof(facet_text) / sizeof(*facet_text); i++) {
        json_t *sq = json_loads(facet_text[i], 0, NULL), *fast = NULL, *slow = NULL;
        assert_non_null(sq);
        assert_int_equal(counted_path(&t, sq, &fast, &err), RD_OK);
        assert_int_equal(decoded_path(&t, sq, &slow, &err), RD_OK);
        assert_non_null(fast); /* counted, nothing decoded */
        if (!json_equal(fast, slow))
            fail_differs(5, (int)i, sq, "a console facet", slow, fast);
        if (i == 3) /* one row per tier that has matches */
            assert_true(json_array_size(json_object_get(fast, "results")) >= 2);
        json_decref(fast);
        json_decref(slow);
        json_decref(sq);
    }
    tiers_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counted_equals_decoded),
        cmocka_unit_test(test_console_facets_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
