/*
 * test_index.c - unit tests of the plugin secondary indexes
 * (src/catalog/index.c, their use in src/catalog/catalog.c) and of the
 * index hints of the query engine (query_index_values, query_index_only).
 *
 * The main property: for random plugin sets and random queries, the indexed
 * path (catalog_plugin_collect_query + query_run) answers exactly what the
 * full scan (catalog_plugin_collect + query_run) answers, before and after
 * inserts, modifications and deletes.  Random tests print their seed; set
 * REPOD_TEST_SEED to replay one.  Every test uses a real RocksDB store in
 * its own mkdtemp folder under /tmp, removed afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog.h"
#include "query.h"
#include "store.h"

typedef struct {
    char dir[320];
    store *st;
    catalog *cat;
} fixture;

static void open_all(fixture *fx)
{
    rd_error err = {0};
    if (store_open(fx->dir, &fx->st, &err) != RD_OK)
        fail_msg("store_open: %s", err.message);
    if (catalog_open(fx->st, "local-repo", &fx->cat, &err) != RD_OK)
        fail_msg("catalog_open: %s", err.message);
}

static void close_all(fixture *fx)
{
    catalog_close(fx->cat);
    fx->cat = NULL;
    store_close(fx->st);
    fx->st = NULL;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_index.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    open_all(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    close_all(fx);
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

static uint64_t seed_rng(const char *test)
{
    const char *env = getenv("REPOD_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("%s: seed %llu (REPOD_TEST_SEED=%llu to replay)\n", test, (unsigned long long)seed,
           (unsigned long long)seed);
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    return seed;
}

/* For messages: "null" instead of a NULL text. */
static const char *text(const char *s)
{
    return s != NULL ? s : "null";
}

static query *compile(const char *query_text, const char *eq_text)
{
    json_error_t jerr;
    json_t *qv = query_text != NULL ? json_loads(query_text, JSON_ALLOW_NUL, &jerr) : NULL;
    json_t *eq = eq_text != NULL ? json_loads(eq_text, JSON_ALLOW_NUL, &jerr) : NULL;
    query *q = NULL;
    rd_error err = {0};
    if ((query_text != NULL && qv == NULL) || (eq_text != NULL && eq == NULL))
        fail_msg("bad test JSON: %s", jerr.text);
    if (query_compile(qv, eq, NULL, &q, &err) != RD_OK)
        fail_msg("query_compile(%s, %s): %s", text(query_text), text(eq_text), err.message);
    json_decref(qv);
    json_decref(eq);
    return q;
}

/* query_run over the full scan and over the indexed path of one domain;
 * fails when they differ.  Returns the total_count; *decoded gets the
 * records the indexed path decoded. */
static size_t check_domain(catalog *cat, const char *domain, const query *q, const char *what,
                           size_t *decoded)
{
    json_t *all = json_array(), *some = json_array(), *want = NULL, *got = NULL;
    rd_error err = {0};
    size_t dec = 0, total, count = 0;
    int exact = 0;

    assert_int_equal(catalog_plugin_collect(cat, domain, all, &err), RD_OK);
    assert_int_equal(catalog_plugin_collect_query(cat, domain, q, some, &dec, &err), RD_OK);
    assert_int_equal(dec, json_array_size(some));
    assert_true(json_array_size(some) <= json_array_size(all));
    for (size_t i = 1; i < json_array_size(some); i++) {
        const char *a =
            json_string_value(json_object_get(json_array_get(some, i - 1), "plugin_id"));
        const char *b = json_string_value(json_object_get(json_array_get(some, i), "plugin_id"));
        if (strcmp(a, b) >= 0)
            fail_msg("%s: indexed path out of plugin_id order (%s, %s)", what, a, b);
    }
    assert_int_equal(query_run(q, all, &want, &err), RD_OK);
    assert_int_equal(query_run(q, some, &got, &err), RD_OK);
    if (!json_equal(want, got)) {
        char *w = json_dumps(want, JSON_COMPACT), *g = json_dumps(got, JSON_COMPACT);
        fail_msg("%s (domain %s):\n full scan: %.600s\n indexed:   %.600s", what, domain, w, g);
    }
    total = (size_t)json_integer_value(json_object_get(want, "total_count"));
    assert_int_equal(catalog_plugin_count_query(cat, domain, q, &count, &exact, &err), RD_OK);
    if (exact && count != total)
        fail_msg("%s (domain %s): key-only count %zu, expected %zu", what, domain, count, total);
    if (decoded != NULL)
        *decoded = dec;
    json_decref(all);
    json_decref(some);
    json_decref(want);
    json_decref(got);
    return total;
}

static void insert_record(catalog *cat, json_t *rec)
{
    rd_error err = {0};
    if (catalog_plugin_insert(cat, rec, &err) != RD_OK)
        fail_msg("insert: %s", err.message);
    json_decref(rec);
}

/* ---- random plugins and queries ------------------------------------------- */

static const char *const domains[] = {"domain-a", "domain-b", "domain-c"};
static const char *const names[] = {"Alpha", "Beta", "Gamma Monitor", "Delta", "Jira Noti", ""};
static const char *const states[] = {"ENABLED", "DISABLED"};
static const char *const rtypes[] = {"inventory.Collector", "monitoring.DataSource",
                                     "notification.Protocol"};
static const char *const providers[] = {"aws", "google_cloud", "azure", "oracle", ""};
static const char *const regtypes[] = {"DOCKER_HUB", "HARBOR", "AWS_PRIVATE_ECR"};
static const char *const labels[] = {"Jira", "Slack", "AWS", "beta"};

typedef struct {
    const char *field;
    const char *const *pool;
    size_t n;
} field_pool;

#define POOL(f, a)                                                                                 \
    {                                                                                              \
        f, a, sizeof(a) / sizeof(a[0])                                                             \
    }
static const field_pool pools[] = {
    POOL("name", names),         POOL("state", states),           POOL("resource_type", rtypes),
    POOL("provider", providers), POOL("registry_type", regtypes), POOL("labels", labels),
};
#define NPOOLS   (sizeof(pools) / sizeof(pools[0]))
#define NINDEXED 5 /* the first five pools are the indexed fields */

static char long_value[3000];

/* An odd value for an indexed field: an array, a number, null, an object, a
 * string too long for a key, or NULL (remove the field).  (Strings with a
 * NUL byte cannot be stored: jansson does not read them back.) */
static json_t *odd_value(const field_pool *p)
{
    switch (pick(6)) {
    case 0:
        return json_pack("[ss]", p->pool[pick(p->n)], p->pool[pick(p->n)]);
    case 1:
        return json_integer(7);
    case 2:
        return json_null();
    case 3:
        return json_pack("{s:s}", "x", p->pool[pick(p->n)]);
    case 4:
        return json_string(long_value);
    default:
        return NULL;
    }
}

static void set_field(json_t *rec, const field_pool *p, int odd_percent)
{
    if ((int)pick(100) < odd_percent) {
        json_t *v = odd_value(p);
        if (v == NULL)
            json_object_del(rec, p->field);
        else
            json_object_set_new(rec, p->field, v);
        return;
    }
    json_object_set_new(rec, p->field, json_string(p->pool[pick(p->n)]));
}

static json_t *random_plugin(const char *domain, int id)
{
    char pid[32];
    json_t *rec;
    snprintf(pid, sizeof(pid), "plugin-%04d", id);
    rec = json_pack("{s:s, s:s, s:s, s:[], s:{s:s}}", "domain_id", domain, "plugin_id", pid,
                    "image", "cloudforet/x", "labels", "tags", "env", pick(2) ? "prod" : "dev");
    assert_non_null(rec);
    for (size_t f = 0; f < NINDEXED; f++)
        set_field(rec, &pools[f], 4);
    for (size_t i = pick(3); i > 0; i--)
        json_array_append_new(json_object_get(rec, "labels"), json_string(labels[pick(4)]));
    return rec;
}

/* A value for a condition on pool p: usually a pool string, sometimes an
 * odd one. */
static json_t *random_value(const field_pool *p)
{
    switch (pick(12)) {
    case 0:
        return json_null();
    case 1:
        return json_integer(7);
    case 2:
        return json_pack("[s]", p->pool[pick(p->n)]);
    case 3:
        return json_stringn("aw\0s", 4);
    case 4:
        return json_string(long_value);
    case 5:
        return json_string("no-such-value");
    default:
        return json_string(p->pool[pick(p->n)]);
    }
}

static json_t *random_cond(void)
{
    static const char *const ops[] = {"eq",     "eq",      "eq",    "in",     "in", "not",
                                      "not_in", "contain", "regex", "exists", "gte"};
    const field_pool *p = &pools[pick(NPOOLS)];
    const char *op = ops[pick(sizeof(ops) / sizeof(ops[0]))];
    const char *key = p->field;
    json_t *v;

    if (pick(10) == 0)
        key = pick(2) ? "provider.0" : "plugin_id";
    if (strcmp(op, "in") == 0 || strcmp(op, "not_in") == 0) {
        v = json_array();
        for (size_t i = pick(4); i > 0; i--)
            json_array_append_new(v, random_value(p));
    } else if (strcmp(op, "exists") == 0) {
        v = json_boolean(pick(2));
    } else if (strcmp(op, "contain") == 0 || strcmp(op, "regex") == 0) {
        v = json_string(pick(2) ? "a" : "^G");
    } else if (strcmp(key, "plugin_id") == 0) {
        char pid[32];
        snprintf(pid, sizeof(pid), "plugin-%04d", (int)pick(40));
        v = json_string(pid);
    } else {
        v = random_value(p);
        if (strcmp(op, "gte") == 0 && (json_is_array(v) || json_is_object(v))) {
            json_decref(v);
            v = json_string("B");
        }
    }
    return json_pack("{s:s, s:o, s:s}", "k", key, "v", v, "o", op);
}

static json_t *random_query(json_t **eq)
{
    json_t *q = json_object(), *filter = json_array();
    for (size_t i = pick(4); i > 0; i--)
        json_array_append_new(filter, random_cond());
    json_object_set_new(q, "filter", filter);
    if (pick(4) == 0) {
        json_t *fo = json_array();
        for (size_t i = 1 + pick(2); i > 0; i--)
            json_array_append_new(fo, random_cond());
        json_object_set_new(q, "filter_or", fo);
    }
    if (pick(6) == 0)
        json_object_set_new(q, "keyword", json_string(pick(2) ? "a" : "jira"));
    if (pick(4) == 0)
        json_object_set_new(q, "sort", json_pack("{s:s, s:b}", "key", "name", "desc", pick(2)));
    if (pick(4) == 0)
        json_object_set_new(q, "page", json_pack("{s:i, s:i}", "start", 2, "limit", 3));
    if (pick(8) == 0)
        json_object_set_new(q, "count_only", json_true());
    *eq = NULL;
    if (pick(3) == 0) {
        const field_pool *p = &pools[pick(NINDEXED)];
        *eq = json_object();
        json_object_set_new(*eq, p->field, json_string(p->pool[pick(p->n)]));
        if (pick(3) == 0)
            json_object_set_new(*eq, "state", pick(4) ? json_string("ENABLED") : json_null());
    }
    return q;
}

/* Runs nq random queries over every domain; returns how many matched
 * something (to show the queries are not all empty). */
static size_t random_queries(catalog *cat, size_t nq)
{
    size_t nonempty = 0;
    for (size_t i = 0; i < nq; i++) {
        json_t *eq = NULL, *qv = random_query(&eq);
        query *q = NULL;
        rd_error err = {0};
        char *qtext = json_dumps(qv, JSON_COMPACT), *eqtext = json_dumps(eq, JSON_COMPACT);
        char what[1200];
        assert_int_equal(query_compile(qv, eq, NULL, &q, &err), RD_OK);
        snprintf(what, sizeof(what), "query %.900s eq %.200s", qtext, text(eqtext));
        for (size_t d = 0; d < 3; d++)
            nonempty += check_domain(cat, domains[d], q, what, NULL) > 0;
        query_free(q);
        free(qtext);
        free(eqtext);
        json_decref(qv);
        json_decref(eq);
    }
    return nonempty;
}

typedef struct {
    const field_pool *p;
} change_arg;

static rd_status change_cb(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    change_arg *a = ud;
    (void)err;
    *updated = json_deep_copy(current);
    set_field(*updated, a->p, 20);
    return RD_OK;
}

/* ---- tests: equivalence ------------------------------------------------------ */

static void test_random_equivalence(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    size_t nonempty;
    int next_id = 0;

    seed_rng("test_random_equivalence");
    for (int round = 0; round < 3; round++) {
        /* Inserts: most in the first domain. */
        for (int i = 0; i < 120; i++) {
            const char *d = domains[pick(10) < 6 ? 0 : 1 + pick(2)];
            insert_record(fx->cat, random_plugin(d, next_id++));
        }
        nonempty = random_queries(fx->cat, 150);
        assert_true(nonempty > 0);
        /* Modifications of indexed fields (some to odd values), deletes. */
        for (int i = 0; i < 80; i++) {
            char pid[32];
            const char *d = domains[pick(3)];
            change_arg a = {&pools[pick(NINDEXED)]};
            snprintf(pid, sizeof(pid), "plugin-%04d", (int)pick((size_t)next_id));
            rd_status rc = catalog_plugin_modify(fx->cat, d, pid, change_cb, &a, NULL, &err);
            assert_true(rc == RD_OK || rc == RD_ERR_NOT_FOUND);
        }
        for (int i = 0; i < 25; i++) {
            char pid[32];
            snprintf(pid, sizeof(pid), "plugin-%04d", (int)pick((size_t)next_id));
            rd_status rc = catalog_plugin_delete(fx->cat, domains[pick(3)], pid, &err);
            assert_true(rc == RD_OK || rc == RD_ERR_NOT_FOUND);
        }
        random_queries(fx->cat, 150);
    }
    /* The same after a restart (nothing rebuilt: the version is current). */
    close_all(fx);
    open_all(fx);
    random_queries(fx->cat, 100);
}

/* ---- tests: upkeep on insert / modify / delete -------------------------------- */

static json_t *simple_plugin(const char *domain, const char *pid, const char *provider,
                             const char *state)
{
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "domain_id", domain, "plugin_id", pid,
                  "name", pid, "state", state, "resource_type", "inventory.Collector", "provider",
                  provider, "registry_type", "DOCKER_HUB");
    assert_non_null(rec);
    return rec;
}

static rd_status set_provider_cb(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    (void)err;
    *updated = json_deep_copy(current);
    json_object_set_new(*updated, "provider", json_string(ud));
    return RD_OK;
}

static rd_status set_array_cb(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    (void)err;
    *updated = json_deep_copy(current);
    json_object_set_new(*updated, "provider", json_pack("[ss]", "y", (const char *)ud));
    return RD_OK;
}

static rd_status set_identity_cb(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    (void)err;
    *updated = json_deep_copy(current);
    json_object_set_new(*updated, "plugin_id", json_string(ud));
    return RD_OK;
}

/* Number of plugins of domain the indexed path returns for provider = p,
 * checked against the full scan. */
static size_t provider_count(catalog *cat, const char *domain, const char *p, size_t *decoded)
{
    char eq[128];
    query *q;
    size_t n;
    snprintf(eq, sizeof(eq), "{\"provider\": \"%s\"}", p);
    q = compile(NULL, eq);
    n = check_domain(cat, domain, q, eq, decoded);
    query_free(q);
    return n;
}

static int count_cb(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (*(size_t *)ud)++;
    return 0;
}

static size_t index_entries(store *st)
{
    size_t n = 0;
    rd_error err = {0};
    assert_int_equal(store_scan(st, STORE_CF_INDEX, "", 0, count_cb, &n, &err), RD_OK);
    return n;
}

static void test_upkeep(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    size_t decoded = 0;
    json_t *rec;

    insert_record(fx->cat, simple_plugin("d", "p1", "aws", "ENABLED"));
    insert_record(fx->cat, simple_plugin("d", "p2", "aws", "ENABLED"));
    insert_record(fx->cat, simple_plugin("d", "p3", "azure", "DISABLED"));
    insert_record(fx->cat, simple_plugin("e", "p1", "aws", "ENABLED"));
    assert_int_equal(index_entries(fx->st), 4 * 5);
    assert_int_equal(provider_count(fx->cat, "d", "aws", &decoded), 2);
    assert_int_equal(decoded, 2);
    assert_int_equal(provider_count(fx->cat, "e", "aws", &decoded), 1);

    /* A duplicate insert changes nothing, index included. */
    rec = simple_plugin("d", "p1", "oracle", "ENABLED");
    assert_int_equal(catalog_plugin_insert(fx->cat, rec, &err), RD_ERR_SAVE_UNIQUE_VALUES);
    json_decref(rec);
    assert_int_equal(provider_count(fx->cat, "d", "oracle", &decoded), 0);
    assert_int_equal(decoded, 0);
    assert_int_equal(index_entries(fx->st), 4 * 5);

    /* Changing the provider moves the entry. */
    assert_int_equal(
        catalog_plugin_modify(fx->cat, "d", "p1", set_provider_cb, "oracle", NULL, &err), RD_OK);
    assert_int_equal(provider_count(fx->cat, "d", "aws", &decoded), 1);
    assert_int_equal(decoded, 1);
    assert_int_equal(provider_count(fx->cat, "d", "oracle", &decoded), 1);
    assert_int_equal(decoded, 1);
    assert_int_equal(index_entries(fx->st), 4 * 5);

    /* To an array: an "unindexable" entry, still found by eq on an element. */
    assert_int_equal(catalog_plugin_modify(fx->cat, "d", "p2", set_array_cb, "x", NULL, &err),
                     RD_OK);
    assert_int_equal(provider_count(fx->cat, "d", "aws", &decoded), 0);
    assert_int_equal(decoded, 1); /* p2, through its "U" entry */
    assert_int_equal(provider_count(fx->cat, "d", "x", &decoded), 1);
    assert_int_equal(provider_count(fx->cat, "d", "y", &decoded), 1);
    assert_int_equal(provider_count(fx->cat, "d", "azure", &decoded), 1);
    assert_int_equal(decoded, 2); /* p3, and p2 through its "U" entry */
    assert_int_equal(catalog_plugin_modify(fx->cat, "d", "p2", set_provider_cb, "aws", NULL, &err),
                     RD_OK);
    assert_int_equal(provider_count(fx->cat, "d", "azure", &decoded), 1);
    assert_int_equal(decoded, 1);

    /* A modify may not change the identity of the record. */
    assert_int_equal(catalog_plugin_modify(fx->cat, "d", "p3", set_identity_cb, "p9", NULL, &err),
                     RD_ERR_INTERNAL);
    assert_int_equal(provider_count(fx->cat, "d", "azure", &decoded), 1);

    /* Delete removes the entries. */
    assert_int_equal(catalog_plugin_delete(fx->cat, "d", "p1", &err), RD_OK);
    assert_int_equal(provider_count(fx->cat, "d", "oracle", &decoded), 0);
    assert_int_equal(decoded, 0);
    assert_int_equal(index_entries(fx->st), 3 * 5);
    assert_int_equal(catalog_plugin_delete(fx->cat, "d", "p2", &err), RD_OK);
    assert_int_equal(catalog_plugin_delete(fx->cat, "d", "p3", &err), RD_OK);
    assert_int_equal(catalog_plugin_delete(fx->cat, "e", "p1", &err), RD_OK);
    assert_int_equal(index_entries(fx->st), 0);
}

/* Odd field values: arrays reach eq through their elements; strings too
 * long for a key still match eq on themselves. */
static void test_unindexable_values(void **state)
{
    fixture *fx = *state;
    json_t *rec;
    json_t *values = NULL;

    memset(long_value, 'z', sizeof(long_value) - 1);
    rec = simple_plugin("d", "p-array", "aws", "ENABLED");
    json_object_set_new(rec, "provider", json_pack("[ss]", "gcp", "aws"));
    insert_record(fx->cat, rec);
    rec = simple_plugin("d", "p-long", "aws", "ENABLED");
    json_object_set_new(rec, "provider", json_string(long_value));
    insert_record(fx->cat, rec);
    rec = simple_plugin("d", "p-num", "aws", "ENABLED");
    json_object_set_new(rec, "provider", json_integer(3));
    insert_record(fx->cat, rec);
    insert_record(fx->cat, simple_plugin("d", "p-plain", "aws", "ENABLED"));

    assert_int_equal(provider_count(fx->cat, "d", "aws", NULL), 2);
    assert_int_equal(provider_count(fx->cat, "d", "gcp", NULL), 1);
    {
        json_t *filter = json_pack("{s:[{s:s, s:s, s:s}]}", "filter", "k", "provider", "o", "eq",
                                   "v", long_value);
        query *lq = NULL;
        rd_error err = {0};
        assert_int_equal(query_compile(filter, NULL, NULL, &lq, &err), RD_OK);
        assert_int_equal(query_index_values(lq, "provider", &values), 1);
        json_decref(values);
        assert_int_equal(check_domain(fx->cat, "d", lq, "long value", NULL), 1);
        query_free(lq);
        json_decref(filter);
    }
}

/* ---- tests: the index is used ---------------------------------------------------- */

static void load_many(catalog *cat, int n, int nproviders)
{
    rd_error err = {0};
    json_t *batch = json_array();
    for (int i = 0; i < n; i++) {
        char pid[32], prov[32];
        snprintf(pid, sizeof(pid), "plugin-%05d", i);
        snprintf(prov, sizeof(prov), "provider-%02d", i % nproviders);
        json_array_append_new(batch, simple_plugin(i % 10 == 9 ? "other" : "main", pid, prov,
                                                   i % 3 == 0 ? "DISABLED" : "ENABLED"));
        if (json_array_size(batch) == 1000 || i == n - 1) {
            if (catalog_plugin_insert_many(cat, batch, &err) != RD_OK)
                fail_msg("insert_many: %s", err.message);
            json_array_clear(batch);
        }
    }
    json_decref(batch);
}

static void test_index_is_used(void **state)
{
    fixture *fx = *state;
    size_t decoded = 0, n;
    query *q;

    load_many(fx->cat, 2000, 50);
    /* 2000 plugins, 1800 in "main", provider-07 on 40 of them (all in main). */
    n = provider_count(fx->cat, "main", "provider-07", &decoded);
    assert_int_equal(n, 40);
    assert_true(decoded <= n);

    /* Two constrained fields: the smaller candidate set is read. */
    q = compile("{\"filter\": [{\"k\": \"state\", \"v\": \"ENABLED\", \"o\": \"eq\"},"
                "{\"k\": \"provider\", \"v\": [\"provider-07\", \"provider-08\"], \"o\": \"in\"}]}",
                NULL);
    n = check_domain(fx->cat, "main", q, "state + provider in", &decoded);
    assert_true(n > 0);
    assert_int_equal(decoded, 80);
    query_free(q);

    /* plugin_id reads records directly. */
    q = compile(NULL, "{\"plugin_id\": \"plugin-00012\", \"provider\": \"provider-12\"}");
    n = check_domain(fx->cat, "main", q, "plugin_id", &decoded);
    assert_int_equal(n, 1);
    assert_int_equal(decoded, 1);
    query_free(q);

    /* Contradictory constraints read nothing. */
    q = compile("{\"filter\": [{\"k\": \"provider\", \"v\": \"provider-01\", \"o\": \"eq\"}]}",
                "{\"provider\": \"provider-02\"}");
    assert_int_equal(check_domain(fx->cat, "main", q, "contradiction", &decoded), 0);
    assert_int_equal(decoded, 0);
    query_free(q);

    /* Without a usable constraint every record is read. */
    q = compile("{\"filter_or\": [{\"k\": \"provider\", \"v\": \"provider-01\", \"o\": \"eq\"}]}",
                NULL);
    check_domain(fx->cat, "main", q, "filter_or", &decoded);
    assert_int_equal(decoded, 1800);
    query_free(q);
}

/* catalog_plugin_count_query: exact from keys when the query allows. */
static void test_count_query(void **state)
{
    fixture *fx = *state;
    static const struct {
        const char *query, *eq;
        int exact;
        size_t count;
    } cases[] = {
        {NULL, NULL, 1, 1800},
        {"{\"count_only\": true, \"sort\": {\"key\": \"name\"}}", NULL, 1, 1800},
        {NULL, "{\"provider\": \"provider-07\"}", 1, 40},
        {NULL, "{\"provider\": \"provider-07\", \"state\": \"ENABLED\"}", 1, 27},
        {"{\"filter\": [{\"k\": \"state\", \"v\": [\"ENABLED\", \"DISABLED\"], \"o\": \"in\"}]}",
         NULL, 1, 1800},
        {NULL, "{\"plugin_id\": \"plugin-00007\"}", 1, 1},
        {NULL, "{\"plugin_id\": \"plugin-00009\"}", 1, 0}, /* in "other" */
        {"{\"keyword\": \"x\"}", NULL, 0, 0},
        {"{\"filter\": [{\"k\": \"tags.a\", \"v\": \"x\", \"o\": \"eq\"}]}", NULL, 0, 0},
        {"{\"filter\": [{\"k\": \"provider\", \"v\": \"p\", \"o\": \"contain\"}]}", NULL, 0, 0},
        {"{\"filter_or\": [{\"k\": \"provider\", \"v\": \"x\", \"o\": \"eq\"}]}", NULL, 0, 0},
    };
    rd_error err = {0};

    load_many(fx->cat, 2000, 50);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        query *q = cases[i].query != NULL || cases[i].eq != NULL
                       ? compile(cases[i].query, cases[i].eq)
                       : NULL;
        size_t count = 12345;
        int exact = -1;
        assert_int_equal(catalog_plugin_count_query(fx->cat, "main", q, &count, &exact, &err),
                         RD_OK);
        if (exact != cases[i].exact)
            fail_msg("case %zu: exact %d", i, exact);
        if (exact)
            assert_int_equal(count, cases[i].count);
        if (q != NULL)
            check_domain(fx->cat, "main", q, "count case", NULL);
        query_free(q);
    }
    /* An "unindexable" value of a constrained field: not exact. */
    {
        json_t *rec = simple_plugin("main", "zz", "x", "ENABLED");
        query *q = compile(NULL, "{\"provider\": \"provider-07\"}");
        size_t count = 0;
        int exact = -1;
        json_object_set_new(rec, "provider", json_pack("[s]", "provider-07"));
        insert_record(fx->cat, rec);
        assert_int_equal(catalog_plugin_count_query(fx->cat, "main", q, &count, &exact, &err),
                         RD_OK);
        assert_int_equal(exact, 0);
        assert_int_equal(check_domain(fx->cat, "main", q, "array provider", NULL), 41);
        query_free(q);
    }
}

static void test_insert_many_unique(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *batch = json_array();
    size_t n = 0;

    insert_record(fx->cat, simple_plugin("d", "p1", "aws", "ENABLED"));
    /* Twice in the array. */
    json_array_append_new(batch, simple_plugin("d", "p2", "aws", "ENABLED"));
    json_array_append_new(batch, simple_plugin("d", "p2", "gcp", "ENABLED"));
    assert_int_equal(catalog_plugin_insert_many(fx->cat, batch, &err), RD_ERR_SAVE_UNIQUE_VALUES);
    /* Already stored. */
    json_array_clear(batch);
    json_array_append_new(batch, simple_plugin("d", "p3", "aws", "ENABLED"));
    json_array_append_new(batch, simple_plugin("d", "p1", "aws", "ENABLED"));
    assert_int_equal(catalog_plugin_insert_many(fx->cat, batch, &err), RD_ERR_SAVE_UNIQUE_VALUES);
    assert_int_equal(catalog_plugin_count_all(fx->cat, &n, &err), RD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(index_entries(fx->st), 5);
    /* Same id, other domain: fine. */
    json_array_clear(batch);
    json_array_append_new(batch, simple_plugin("d", "p3", "aws", "ENABLED"));
    json_array_append_new(batch, simple_plugin("e", "p1", "aws", "ENABLED"));
    assert_int_equal(catalog_plugin_insert_many(fx->cat, batch, &err), RD_OK);
    assert_int_equal(catalog_plugin_count_all(fx->cat, &n, &err), RD_OK);
    assert_int_equal(n, 3);
    assert_int_equal(provider_count(fx->cat, "d", "aws", NULL), 2);
    json_decref(batch);
}

/* ---- tests: rebuild ---------------------------------------------------------------- */

typedef struct {
    store_batch *b;
} drop_ctx;

static int drop_cb(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    drop_ctx *d = ud;
    (void)val;
    (void)vlen;
    store_batch_delete(d->b, STORE_CF_INDEX, key, klen);
    return 0;
}

static void strip_index(fixture *fx, const char *version, int drop_entries)
{
    rd_error err = {0};
    drop_ctx d = {store_batch_new(fx->st)};
    static const char meta[] = "plugin_index_version";
    if (drop_entries)
        assert_int_equal(store_scan(fx->st, STORE_CF_INDEX, "", 0, drop_cb, &d, &err), RD_OK);
    if (version == NULL)
        store_batch_delete(d.b, STORE_CF_META, meta, strlen(meta));
    else
        store_batch_put(d.b, STORE_CF_META, meta, strlen(meta), version, strlen(version));
    assert_int_equal(store_write(fx->st, d.b, &err), RD_OK);
    store_batch_free(d.b);
}

static void test_rebuild(void **state)
{
    fixture *fx = *state;
    size_t decoded = 0;
    char *val = NULL;
    rd_error err = {0};
    static const char bogus[] = "I\0provider\0provider-07\0main\0plugin-00001";

    load_many(fx->cat, 2500, 50);
    assert_int_equal(index_entries(fx->st), 2500 * 5);

    /* A data dir from before the index: no entries, no version. */
    strip_index(fx, NULL, 1);
    assert_int_equal(index_entries(fx->st), 0);
    close_all(fx);
    open_all(fx);
    assert_int_equal(index_entries(fx->st), 2500 * 5);
    assert_int_equal(store_get(fx->st, STORE_CF_META, "plugin_index_version", 20, &val, NULL, &err),
                     RD_OK);
    assert_string_equal(val, "1");
    free(val);
    assert_int_equal(provider_count(fx->cat, "main", "provider-07", &decoded), 50);
    assert_true(decoded <= 50);
    assert_int_equal(provider_count(fx->cat, "other", "provider-09", &decoded), 50);
    assert_int_equal(decoded, 50);

    /* An older version with stale entries: they are dropped. */
    {
        store_batch *b = store_batch_new(fx->st);
        store_batch_put(b, STORE_CF_INDEX, bogus, sizeof(bogus) - 1, "", 0);
        assert_int_equal(store_write(fx->st, b, &err), RD_OK);
        store_batch_free(b);
    }
    strip_index(fx, "0", 0);
    assert_int_equal(index_entries(fx->st), 2500 * 5 + 1);
    close_all(fx);
    open_all(fx);
    assert_int_equal(index_entries(fx->st), 2500 * 5);
    assert_int_equal(store_get(fx->st, STORE_CF_INDEX, bogus, sizeof(bogus) - 1, &val, NULL, &err),
                     RD_ERR_NOT_FOUND);
    assert_int_equal(provider_count(fx->cat, "main", "provider-07", &decoded), 50);
    assert_int_equal(decoded, 50);
    seed_rng("test_rebuild");
    random_queries(fx->cat, 40);
}

/* ---- tests: query_index_values / query_index_only ------------------------------------- */

/* Expects query_index_values(field) to give `want` (a JSON array text) or,
 * with want NULL, to be unconstrained. */
static void expect_values(const char *query_text, const char *eq_text, const char *field,
                          const char *want)
{
    query *q = compile(query_text, eq_text);
    json_t *values = (json_t *)1, *w = want != NULL ? json_loads(want, 0, NULL) : NULL;
    int r = query_index_values(q, field, &values);
    if (want == NULL) {
        if (r != 0 || values != NULL)
            fail_msg("%s / %s: expected unconstrained, got %d", text(query_text), text(eq_text), r);
    } else {
        if (r != 1 || !json_equal(values, w)) {
            char *got = values != NULL ? json_dumps(values, JSON_COMPACT) : NULL;
            fail_msg("%s / %s: expected %s, got %d %s", text(query_text), text(eq_text), want, r,
                     text(got));
        }
    }
    json_decref(values);
    json_decref(w);
    query_free(q);
}

#define F(cond)    "{\"filter\": [" cond "]}"
#define C(k, o, v) "{\"k\": \"" k "\", \"o\": \"" o "\", \"v\": " v "}"

static void test_index_values(void **state)
{
    (void)state;
    /* eq, in, both. */
    expect_values(F(C("provider", "eq", "\"aws\"")), NULL, "provider", "[\"aws\"]");
    expect_values(F(C("provider", "in", "[\"b\", \"a\", \"b\"]")), NULL, "provider",
                  "[\"a\", \"b\"]");
    expect_values(F(C("provider", "eq", "\"a\"") "," C("provider", "in", "[\"a\", \"b\"]")), NULL,
                  "provider", "[\"a\"]");
    expect_values(F(C("provider", "in", "[\"c\", \"a\", \"b\"]") "," C("provider", "in",
                                                                       "[\"b\", \"c\", \"d\"]")),
                  NULL, "provider", "[\"b\", \"c\"]");
    expect_values(F(C("provider", "eq", "\"a\"") "," C("provider", "eq", "\"b\"")), NULL,
                  "provider", "[]");
    expect_values(F(C("provider", "in", "[]")), NULL, "provider", "[]");
    /* Long lists (hashed inside the engine). */
    expect_values(
        F(C("provider", "in",
            "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]") "," C("provider",
                                                                                         "in",
                                                                                         "[\"k\", "
                                                                                         "\"z\", "
                                                                                         "\"c\"]")),
        NULL, "provider", "[\"c\", \"k\"]");
    /* Top-level eq filters, alone and with filter. */
    expect_values(NULL, "{\"provider\": \"aws\"}", "provider", "[\"aws\"]");
    expect_values(F(C("provider", "in", "[\"aws\", \"gcp\"]")), "{\"provider\": \"gcp\"}",
                  "provider", "[\"gcp\"]");
    expect_values(NULL, "{\"provider\": null}", "provider", NULL);
    expect_values(NULL, "{\"provider\": 3}", "provider", NULL);
    /* Other fields do not constrain this one. */
    expect_values(NULL, "{\"state\": \"ENABLED\"}", "provider", NULL);
    expect_values(F(C("provider.0", "eq", "\"aws\"")), NULL, "provider", NULL);
    expect_values(F(C("tags.env", "eq", "\"prod\"")), NULL, "tags.env", NULL);
    /* filter_or only, keyword: unconstrained. */
    expect_values("{\"filter_or\": [" C("provider", "eq", "\"aws\"") "]}", NULL, "provider", NULL);
    expect_values("{\"keyword\": \"aws\"}", NULL, "provider", NULL);
    /* Non-string operands, negations, other operators: ignored. */
    expect_values(F(C("provider", "eq", "1")), NULL, "provider", NULL);
    expect_values(F(C("provider", "eq", "null")), NULL, "provider", NULL);
    expect_values(F(C("provider", "eq", "[\"aws\"]")), NULL, "provider", NULL);
    expect_values(F(C("provider", "in", "[\"aws\", null]")), NULL, "provider", NULL);
    expect_values(F(C("provider", "in", "[\"aws\", 1]")), NULL, "provider", NULL);
    expect_values(F(C("provider", "eq", "\"a\\u0000b\"")), NULL, "provider", NULL);
    expect_values(F(C("provider", "not", "\"aws\"")), NULL, "provider", NULL);
    expect_values(F(C("provider", "not_in", "[\"aws\"]")), NULL, "provider", NULL);
    expect_values(F(C("provider", "contain", "\"aws\"")), NULL, "provider", NULL);
    expect_values(F(C("provider", "gte", "\"aws\"")), NULL, "provider", NULL);
    /* An ignored condition next to a counting one. */
    expect_values(F(C("provider", "eq", "1") "," C("provider", "eq", "\"aws\"")), NULL, "provider",
                  "[\"aws\"]");
    expect_values(F(C("provider", "not", "\"aws\"") "," C("provider", "in", "[\"aws\", \"x\"]")),
                  "{\"state\": \"ENABLED\"}", "provider", "[\"aws\", \"x\"]");
    /* Key spellings. */
    expect_values("{\"filter\": [{\"key\": \"name\", \"operator\": \"eq\", \"value\": \"n\"}]}",
                  NULL, "name", "[\"n\"]");
}

static void expect_only(const char *query_text, const char *eq_text, int want)
{
    static const char *const fields[] = {"plugin_id", "provider", "state", NULL};
    query *q = compile(query_text, eq_text);
    if (query_index_only(q, fields) != want)
        fail_msg("query_index_only(%s, %s) != %d", text(query_text), text(eq_text), want);
    query_free(q);
}

static void test_index_only(void **state)
{
    (void)state;
    expect_only(NULL, NULL, 1);
    expect_only("{\"sort\": {\"key\": \"name\"}, \"page\": {\"limit\": 2}, \"count_only\": true}",
                NULL, 1);
    expect_only(NULL, "{\"provider\": \"aws\", \"plugin_id\": \"p\"}", 1);
    expect_only(F(C("state", "in", "[\"ENABLED\"]")), "{\"provider\": \"aws\"}", 1);
    expect_only(NULL, "{\"name\": \"x\"}", 0);
    expect_only(F(C("provider", "eq", "1")), NULL, 0);
    expect_only(F(C("provider", "not", "\"aws\"")), NULL, 0);
    expect_only(F(C("provider", "contain", "\"aws\"")), NULL, 0);
    expect_only("{\"keyword\": \"a\"}", NULL, 0);
    expect_only("{\"filter_or\": [" C("provider", "eq", "\"aws\"") "]}", NULL, 0);
    expect_only("{\"filter_or\": []}", NULL, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_values),
        cmocka_unit_test(test_index_only),
        cmocka_unit_test_setup_teardown(test_upkeep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unindexable_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_many_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_is_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_equivalence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
    };
    memset(long_value, 'z', sizeof(long_value) - 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
