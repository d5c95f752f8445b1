/*
 * test_query.c - tests of the query and statistics engine (include/query.h).
 *
 *  1. Data-driven cases: every $REPOD_TEST_DATA/query/<name>.json is one
 *     test (format in docs/query.md, "Test cases"):
 *       {"description": "...", "schema": "plugin" | "repository",
 *        "docs": [...], "list": {query} + optional "eq": {...}
 *                    | "stat": {StatisticsQuery},
 *        "expect": {"results": [...], "ids": [plugin_id, ...],
 *                   "total_count": N | null (= absent)},
 *        "expect_error": "ERROR_...", "expect_message": "substring"}
 *     In docs, {"$now_offset_s": N} is replaced by the ISO-8601 time N
 *     seconds from now (for timediff cases).
 *  2. Direct tests: query_lookup, date and timediff parsing, sort
 *     stability, concurrent use of one compiled query.
 *  3. A seeded randomised comparison of query_run / query_match against a
 *     small reference evaluator written here (REPOD_TEST_SEED=<n> replays);
 *     sort comes in each accepted shape: v1 {keys}, v1 {key, desc} and the
 *     core v2 list of {key, desc}.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------- */

static char *dumps(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s != NULL ? s : strdup("(null)");
}

/* Replaces {"$now_offset_s": N} objects with ISO-8601 strings, in place. */
static json_t *resolve_now(json_t *v, int64_t now_ms)
{
    if (json_is_object(v)) {
        json_t *off = json_object_get(v, "$now_offset_s");
        const char *k;
        json_t *e;
        void *tmp;
        if (off != NULL && json_object_size(v) == 1) {
            char buf[40];
            util_format_iso8601(now_ms + json_integer_value(off) * 1000, buf, sizeof(buf));
            return json_string(buf);
        }
        json_object_foreach_safe(v, tmp, k, e)
        {
            json_t *r = resolve_now(e, now_ms);
            if (r != e)
                json_object_set_new(v, k, r);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            json_t *r = resolve_now(e, now_ms);
            if (r != e)
                json_array_set_new(v, i, r);
        }
    }
    return v;
}

static const char *data_dir(void)
{
    const char *d = getenv("REPOD_TEST_DATA");
    return d != NULL ? d : "tests/data";
}

/* ---- 1. data-driven cases ------------------------------------------------ */

static void run_case(void **state)
{
    const char *path = *state;
    json_error_t jerr;
    json_t *c = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    json_t *docs, *before, *out = NULL, *expect, *v;
    const json_t *want_err;
    const query_schema *schema = &query_schema_plugin;
    query *q = NULL;
    rd_error err;
    rd_status rc;
    char *got;

    if (c == NULL)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    docs = json_object_get(c, "docs");
    assert_true(json_is_array(docs));
    resolve_now(docs, util_now_ms());
    before = json_deep_copy(docs);
    v = json_object_get(c, "schema");
    if (json_is_string(v) && strcmp(json_string_value(v), "repository") == 0)
        schema = &query_schema_repository;
    rd_error_clear(&err);
    if (json_object_get(c, "stat") != NULL) {
        rc = query_stat(json_object_get(c, "stat"), schema, docs, &out, &err);
    } else {
        rc = query_compile(json_object_get(c, "list"), json_object_get(c, "eq"), schema, &q, &err);
        if (rc == RD_OK)
            rc = query_run(q, docs, &out, &err);
    }
    want_err = json_object_get(c, "expect_error");
    if (want_err != NULL) {
        if (rc == RD_OK) {
            got = dumps(out);
            fail_msg("%s: expected %s, got success %s", path, json_string_value(want_err), got);
        }
        assert_null(out);
        assert_int_equal(err.code, rc);
        if (strcmp(rd_status_name(rc), json_string_value(want_err)) != 0)
            fail_msg("%s: expected %s, got %s (%s)", path, json_string_value(want_err),
                     rd_status_name(rc), err.message);
        v = json_object_get(c, "expect_message");
        if (v != NULL && strstr(err.message, json_string_value(v)) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", path, err.message, json_string_value(v));
        goto done;
    }
    if (rc != RD_OK)
        fail_msg("%s: %s: %s", path, rd_status_name(rc), err.message);
    got = dumps(out);
    expect = json_object_get(c, "expect");
    v = json_object_get(expect, "results");
    if (v != NULL && !json_equal(v, json_object_get(out, "results"))) {
        char *want = dumps(v);
        fail_msg("%s:\n  want %s\n  got  %s", path, want, got);
    }
    v = json_object_get(expect, "ids");
    if (v != NULL) {
        json_t *ids = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(out, "results"), i, r)
        {
            json_array_append(ids, json_object_get(r, "plugin_id"));
        }
        if (!json_equal(v, ids)) {
            char *want = dumps(v), *have = dumps(ids);
            fail_msg("%s:\n  want ids %s\n  got  ids %s", path, want, have);
        }
        json_decref(ids);
    }
    v = json_object_get(expect, "total_count");
    if (v != NULL) {
        json_t *tc = json_object_get(out, "total_count");
        if (json_is_null(v) ? tc != NULL : !json_equal(v, tc))
            fail_msg("%s: total_count: want %s, got %s", path, json_is_null(v) ? "absent" : "",
                     got);
    }
    if (q != NULL) {
        /* query_match agrees with query_run's total_count. */
        size_t i, n = 0;
        json_t *d;
        json_array_foreach(docs, i, d)
        {
            n += (size_t)query_match(q, d);
        }
        assert_int_equal(n, json_integer_value(json_object_get(out, "total_count")));
    }
    free(got);
done:
    /* The engine never modifies its input documents. */
    assert_true(json_equal(before, docs));
    json_decref(before);
    json_decref(out);
    query_free(q);
    json_decref(c);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_data_cases(void)
{
    char dir[1024];
    DIR *d;
    struct dirent *e;
    char **paths = NULL;
    size_t n = 0, cap = 0;
    struct CMUnitTest *tests;
    int failed;

    snprintf(dir, sizeof(dir), "%s/query", data_dir());
    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "test_query: cannot open %s (set REPOD_TEST_DATA)\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            paths = realloc(paths, cap * sizeof(*paths));
        }
        paths[n] = malloc(strlen(dir) + len + 2);
        sprintf(paths[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "test_query: no cases in %s\n", dir);
        return 1;
    }
    qsort(paths, n, sizeof(*paths), name_cmp);
    tests = calloc(n, sizeof(*tests));
    for (size_t i = 0; i < n; i++) {
        tests[i].name = strrchr(paths[i], '/') + 1;
        tests[i].test_func = run_case;
        tests[i].initial_state = paths[i];
    }
    failed = _cmocka_run_group_tests("query_cases", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(tests);
    return failed;
}

/* ---- 2. direct tests ----------------------------------------------------- */

static void test_lookup(void **state)
{
    (void)state;
    json_t *doc = json_loads("{\"a\": {\"b\": 1, \"c\": [1, 2]}, \"items\": [{\"n\": \"x\"}, "
                             "{\"m\": 1}, {\"n\": \"y\"}, 5], \"deep\": [{\"in\": [{\"v\": 1}, "
                             "{\"v\": 2}]}, {\"in\": [{\"v\": 3}]}], \"e\": null}",
                             0, NULL);
    json_t *owned, *v;
    assert_non_null(doc);

    v = query_lookup(doc, "a.b", &owned);
    assert_null(owned);
    assert_int_equal(json_integer_value(v), 1);
    v = query_lookup(doc, "a.c", &owned);
    assert_null(owned);
    assert_true(v == json_object_get(json_object_get(doc, "a"), "c"));
    v = query_lookup(doc, "e", &owned);
    assert_true(json_is_null(v));
    assert_null(query_lookup(doc, "a.zz", &owned));
    assert_null(owned);
    assert_null(query_lookup(doc, "a.b.c", &owned));
    assert_null(query_lookup(doc, "", &owned));

    /* Through an array of objects: a new array of the reached values. */
    v = query_lookup(doc, "items.n", &owned);
    assert_non_null(owned);
    assert_true(v == owned);
    json_t *want = json_loads("[\"x\", \"y\"]", 0, NULL);
    assert_true(json_equal(v, want));
    json_decref(want);
    json_decref(owned);

    v = query_lookup(doc, "deep.in.v", &owned);
    want = json_loads("[[1, 2], [3]]", 0, NULL);
    assert_true(json_equal(v, want));
    json_decref(want);
    json_decref(owned);
    json_decref(doc);
}

static void check_dt(const char *s, const char *want_iso)
{
    int64_t ms = 0;
    char buf[40];
    if (query_parse_datetime(s, &ms) != 0)
        fail_msg("query_parse_datetime(\"%s\") failed", s);
    util_format_iso8601(ms, buf, sizeof(buf));
    if (strcmp(buf, want_iso) != 0)
        fail_msg("query_parse_datetime(\"%s\") = %s, want %s", s, buf, want_iso);
}

static void test_parse_datetime(void **state)
{
    static const char *const bad[] = {"",
                                      "2022",
                                      "2022-1-01",
                                      "2022-01-1",
                                      "2022-13-01",
                                      "2022-02-29",
                                      "2022-01-01T",
                                      "2022-01-01T25:00",
                                      "2022-01-01T08:60",
                                      "2022-01-01T08:02:38.",
                                      "2022-01-01T08:02:38Zx",
                                      "2022-01-01T08:02:38+24:00",
                                      "2022-01-01x",
                                      "22-01-01",
                                      "2022-01-01T08:02:38+9",
                                      "now",
                                      NULL};
    int64_t ms;
    (void)state;
    check_dt("2022-01-01", "2022-01-01T00:00:00.000Z");
    check_dt("2022-01-01T08:02:38Z", "2022-01-01T08:02:38.000Z");
    check_dt("2022-01-01T08:02:38.094Z", "2022-01-01T08:02:38.094Z");
    check_dt("2022-01-01T08:02:38.09Z", "2022-01-01T08:02:38.090Z");
    check_dt("2022-01-01T08:02:38.094567Z", "2022-01-01T08:02:38.094Z");
    check_dt("2022-01-01T08:02:38", "2022-01-01T08:02:38.000Z");
    check_dt("2022-01-01T08:02", "2022-01-01T08:02:00.000Z");
    check_dt("2022-01-01 08:02:38z", "2022-01-01T08:02:38.000Z");
    check_dt("2022-01-01T17:02:38.094+09:00", "2022-01-01T08:02:38.094Z");
    check_dt("2022-01-01T05:02:38-0300", "2022-01-01T08:02:38.000Z");
    check_dt("2022-01-01T10:02:38+02", "2022-01-01T08:02:38.000Z");
    check_dt("2022-01-01T02:00:00+09:00", "2021-12-31T17:00:00.000Z");
    check_dt("2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59.999Z");
    check_dt("2000-02-29", "2000-02-29T00:00:00.000Z");
    check_dt("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z");
    assert_int_equal(query_parse_datetime("1969-12-31T23:59:59.999Z", &ms), 0);
    assert_int_equal(ms, -1);
    assert_int_equal(query_parse_datetime("1900-02-29", &ms), -1);
    for (size_t i = 0; bad[i] != NULL; i++)
        if (query_parse_datetime(bad[i], &ms) == 0)
            fail_msg("query_parse_datetime(\"%s\") accepted", bad[i]);
    assert_int_equal(query_parse_datetime(NULL, &ms), -1);
}

static void check_td(const char *s, int64_t now, const char *want_iso)
{
    int64_t ms = 0;
    char buf[40];
    if (query_parse_timediff(s, now, &ms) != 0)
        fail_msg("query_parse_timediff(\"%s\") failed", s);
    util_format_iso8601(ms, buf, sizeof(buf));
    if (strcmp(buf, want_iso) != 0)
        fail_msg("query_parse_timediff(\"%s\") = %s, want %s", s, buf, want_iso);
}

static void test_parse_timediff(void **state)
{
    static const char *const bad[] = {"",
                                      "now-",
                                      "now-1",
                                      "now-1x",
                                      "nowx",
                                      "now/",
                                      "now/y",
                                      "now--1d",
                                      " now",
                                      "now-1d/",
                                      "now 1d",
                                      "NOW",
                                      "now-99999999999d",
                                      "now+1.5h",
                                      "today",
                                      NULL};
    int64_t now, ms;
    (void)state;
    /* Wednesday 2024-03-13 15:30:45.123 UTC */
    assert_int_equal(query_parse_datetime("2024-03-13T15:30:45.123Z", &now), 0);
    check_td("now", now, "2024-03-13T15:30:45.123Z");
    check_td("now-1d", now, "2024-03-12T15:30:45.123Z");
    check_td("now+2h", now, "2024-03-13T17:30:45.123Z");
    check_td("now-30m", now, "2024-03-13T15:00:45.123Z");
    check_td("now-45s", now, "2024-03-13T15:30:00.123Z");
    check_td("now/d", now, "2024-03-13T00:00:00.000Z");
    check_td("now/h", now, "2024-03-13T15:00:00.000Z");
    check_td("now/m", now, "2024-03-13T15:30:00.000Z");
    check_td("now/s", now, "2024-03-13T15:30:45.000Z");
    check_td("now/w", now, "2024-03-11T00:00:00.000Z");
    check_td("now-1w/d", now, "2024-03-06T00:00:00.000Z");
    check_td("now-1w", now, "2024-03-06T15:30:45.123Z");
    check_td("now/d-1d", now, "2024-03-12T00:00:00.000Z");
    check_td("now-1d+12h/h", now, "2024-03-13T03:00:00.000Z");
    check_td("now-14d", now, "2024-02-28T15:30:45.123Z");
    /* A Monday stays on itself; a Sunday goes back six days. */
    assert_int_equal(query_parse_datetime("2024-03-11T08:00:00Z", &now), 0);
    check_td("now/w", now, "2024-03-11T00:00:00.000Z");
    assert_int_equal(query_parse_datetime("2024-03-17T23:59:59Z", &now), 0);
    check_td("now/w", now, "2024-03-11T00:00:00.000Z");
    /* Before the epoch rounding still goes down. */
    assert_int_equal(query_parse_datetime("1969-12-31T12:00:00Z", &now), 0);
    check_td("now/d", now, "1969-12-31T00:00:00.000Z");
    check_td("now/w", now, "1969-12-29T00:00:00.000Z");
    for (size_t i = 0; bad[i] != NULL; i++)
        if (query_parse_timediff(bad[i], now, &ms) == 0)
            fail_msg("query_parse_timediff(\"%s\") accepted", bad[i]);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void test_sort_stability(void **state)
{
    uint64_t seed = 0x1234567u;
    json_t *docs = json_array(), *out = NULL, *qobj;
    query *q = NULL;
    rd_error err;
    (void)state;
    for (int i = 0; i < 3000; i++) {
        json_t *d = json_pack("{s:i, s:i}", "seq", i, "k", (int)(rng_next(&seed) % 7));
        if (i % 11 == 0)
            json_object_del(d, "k");
        json_array_append_new(docs, d);
    }
    for (int desc = 0; desc < 2; desc++) {
        qobj = json_pack("{s:{s:s, s:b}}", "sort", "key", "k", "desc", desc);
        assert_int_equal(query_compile(qobj, NULL, &query_schema_plugin, &q, &err), RD_OK);
        assert_int_equal(query_run(q, docs, &out, &err), RD_OK);
        json_t *res = json_object_get(out, "results");
        assert_int_equal(json_array_size(res), 3000);
        for (size_t i = 1; i < json_array_size(res); i++) {
            json_t *a = json_array_get(res, i - 1), *b = json_array_get(res, i);
            json_int_t ka =
                json_object_get(a, "k") ? json_integer_value(json_object_get(a, "k")) : -1;
            json_int_t kb =
                json_object_get(b, "k") ? json_integer_value(json_object_get(b, "k")) : -1;
            if (desc ? ka < kb : ka > kb)
                fail_msg("not sorted at %zu", i);
            if (ka == kb && json_integer_value(json_object_get(a, "seq")) >=
                                json_integer_value(json_object_get(b, "seq")))
                fail_msg("not stable at %zu", i);
        }
        json_decref(out);
        query_free(q);
        json_decref(qobj);
    }
    json_decref(docs);
}

typedef struct {
    const query *q;
    const json_t *docs;
    json_t *out;
} thread_arg;

static void *thread_run(void *p)
{
    thread_arg *a = p;
    rd_error err;
    for (int i = 0; i < 20; i++) {
        json_t *out = NULL;
        if (query_run(a->q, a->docs, &out, &err) != RD_OK)
            return NULL;
        json_decref(a->out);
        a->out = out;
    }
    return NULL;
}

/* One compiled query (with regexes) used from several threads at once. */
static void test_concurrent(void **state)
{
    json_t *docs = json_array(), *qobj;
    query *q = NULL;
    rd_error err;
    pthread_t th[4];
    thread_arg args[4];
    (void)state;
    for (int i = 0; i < 500; i++)
        json_array_append_new(docs, json_pack("{s:s+, s:s, s:i}", "plugin_id", "plugin-",
                                              i % 2 ? "a" : "b", "name",
                                              i % 3 ? "Jira Protocol" : "Slack", "n", i));
    qobj =
        json_loads("{\"filter\": [{\"k\": \"name\", \"v\": \"^jira\", \"o\": \"regex\"}], "
                   "\"sort\": {\"key\": \"plugin_id\", \"desc\": true}, \"page\": {\"limit\": 50}}",
                   0, NULL);
    assert_int_equal(query_compile(qobj, NULL, NULL, &q, &err), RD_OK);
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){q, docs, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, thread_run, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_non_null(args[i].out);
        assert_int_equal(json_integer_value(json_object_get(args[i].out, "total_count")), 333);
        assert_true(json_equal(args[i].out, args[0].out));
    }
    for (int i = 0; i < 4; i++)
        json_decref(args[i].out);
    query_free(q);
    json_decref(qobj);
    json_decref(docs);
}

static void test_null_and_empty(void **state)
{
    json_t *docs = json_loads("[{\"plugin_id\": \"a\"}, {\"plugin_id\": \"b\"}]", 0, NULL);
    json_t *out = NULL, *empty = json_array();
    query *q = NULL;
    rd_error err;
    (void)state;
    /* NULL / JSON null query = match all. */
    assert_int_equal(query_compile(NULL, NULL, NULL, &q, &err), RD_OK);
    assert_int_equal(query_run(q, docs, &out, &err), RD_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 2);
    json_decref(out);
    assert_int_equal(query_run(q, empty, &out, &err), RD_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "total_count")), 0);
    assert_int_equal(json_array_size(json_object_get(out, "results")), 0);
    json_decref(out);
    /* Not an array of documents: an internal error, never a crash. */
    assert_int_equal(query_run(q, NULL, &out, &err), RD_ERR_INTERNAL);
    assert_null(out);
    query_free(q);
    query_free(NULL);
    json_decref(empty);
    json_decref(docs);
}

/* ---- 3. randomised comparison with a reference evaluator --------------- */

#define R_FIELDS 6
static const char *const r_fields[R_FIELDS] = {"name",   "state",         "provider",
                                               "labels", "tags.priority", "created_at"};
static const char *const r_names[] = {"alpha", "Beta", "gamma", "delta", "Alpha beta", "zeta"};
static const char *const r_providers[] = {"aws", "azure", "google", "AWS", ""};
static const char *const r_labels[] = {"a", "b", "c", "D", "ab"};
static const char *const r_words[] = {"al", "BE", "a", "zz", "gam", "aws", "d"};

typedef struct {
    uint64_t s;
} rng;

static int rnd(rng *r, int n)
{
    return (int)(rng_next(&r->s) % (uint64_t)n);
}

static json_t *random_doc(rng *r, int i)
{
    json_t *d = json_object();
    char id[32], ts[64];
    snprintf(id, sizeof(id), "plugin-%03d", i);
    json_object_set_new(d, "plugin_id", json_string(id));
    if (rnd(r, 10) > 0)
        json_object_set_new(d, "name", json_string(r_names[rnd(r, 6)]));
    json_object_set_new(d, "state", json_string(rnd(r, 2) ? "ENABLED" : "DISABLED"));
    switch (rnd(r, 7)) {
    case 0:
        break;
    case 1:
        json_object_set_new(d, "provider", json_null());
        break;
    default:
        json_object_set_new(d, "provider", json_string(r_providers[rnd(r, 5)]));
    }
    if (rnd(r, 5) > 0) {
        json_t *labels = json_array();
        int n = rnd(r, 4);
        for (int k = 0; k < n; k++)
            json_array_append_new(labels, json_string(r_labels[rnd(r, 5)]));
        json_object_set_new(d, "labels", labels);
    }
    if (rnd(r, 6) > 0) {
        json_t *tags = json_object();
        switch (rnd(r, 5)) {
        case 0:
            break;
        case 1:
            json_object_set_new(tags, "priority", json_real(rnd(r, 6) + 0.5));
            break;
        case 2:
            json_object_set_new(tags, "priority", json_string(rnd(r, 2) ? "3" : "x"));
            break;
        default:
            json_object_set_new(tags, "priority", json_integer(rnd(r, 6)));
        }
        json_object_set_new(d, "tags", tags);
    }
    if (rnd(r, 8) > 0) {
        snprintf(ts, sizeof(ts), "2022-0%d-%02dT%02d:00:00.000Z", 1 + rnd(r, 3), 1 + rnd(r, 28),
                 rnd(r, 24));
        json_object_set_new(d, "created_at", json_string(ts));
    }
    return d;
}

/* The values a field reaches: one value, or each label; *present = the path
 * resolves at all (labels: []  is present with no values). */
static size_t ref_values(const json_t *doc, int field, const json_t **vals, int *present)
{
    const json_t *v;
    if (field == 4) {
        const json_t *tags = json_object_get(doc, "tags");
        v = tags != NULL ? json_object_get(tags, "priority") : NULL;
    } else {
        v = json_object_get(doc, r_fields[field]);
    }
    *present = v != NULL;
    if (v == NULL)
        return 0;
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++)
            vals[i] = json_array_get(v, i);
        return n;
    }
    vals[0] = v;
    return 1;
}

static int ref_rank(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return 0;
    return json_is_number(v) ? 1 : 2;
}

/* The reference order of the generated values: null < numbers < strings. */
static int ref_cmp(const json_t *a, const json_t *b)
{
    int ra = ref_rank(a), rb = ref_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (ra == 1) {
        double x = json_number_value(a), y = json_number_value(b);
        return (x > y) - (x < y);
    }
    if (ra == 2) {
        int c = strcmp(json_string_value(a), json_string_value(b));
        return (c > 0) - (c < 0);
    }
    return 0;
}

static int ref_icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay;; p++) {
        size_t i;
        for (i = 0; i < n && p[i] != '\0'; i++)
            if (tolower((unsigned char)p[i]) != tolower((unsigned char)needle[i]))
                break;
        if (i == n)
            return 1;
        if (*p == '\0')
            return 0;
    }
}

typedef struct {
    int field;
    const char *op;
    json_t *value;
} ref_cond;

static int ref_eq(const json_t *a, const json_t *b)
{
    if (ref_rank(a) != ref_rank(b))
        return 0;
    return ref_cmp(a, b) == 0;
}

static int ref_match_cond(const ref_cond *c, const json_t *doc)
{
    const json_t *vals[8];
    int present;
    size_t n = ref_values(doc, c->field, vals, &present);
    const char *op = c->op;
    int neg = strncmp(op, "not", 3) == 0, any = 0;
    if (strcmp(op, "exists") == 0)
        return json_is_true(c->value) ? present : !present;
    if (op[0] == 'l' || op[0] == 'g') {
        /* lt / lte / gt / gte null: lte / gte act as eq null, lt / gt never match */
        if (json_is_null(c->value)) {
            if (strcmp(op, "lte") != 0 && strcmp(op, "gte") != 0)
                return 0;
            op = "eq";
        }
    }
    if (strcmp(op, "not") == 0)
        op = "eq";
    else if (neg)
        op += 4; /* not_in -> in, not_contain[_in] -> contain[_in] */
    for (size_t i = 0; i < n && !any; i++) {
        const json_t *v = vals[i];
        if (strcmp(op, "eq") == 0) {
            any = ref_eq(v, c->value);
        } else if (strcmp(op, "in") == 0) {
            for (size_t k = 0; k < json_array_size(c->value); k++)
                any |= ref_eq(v, json_array_get(c->value, k));
        } else if (strcmp(op, "contain") == 0) {
            any = json_is_string(v) &&
                  ref_icontains(json_string_value(v), json_string_value(c->value));
        } else if (strcmp(op, "contain_in") == 0) {
            for (size_t k = 0; k < json_array_size(c->value); k++)
                any |= json_is_string(v) &&
                       ref_icontains(json_string_value(v),
                                     json_string_value(json_array_get(c->value, k)));
        } else if (strcmp(op, "regex") == 0) {
            /* generated patterns are "^word": a case-insensitive prefix */
            const char *w = json_string_value(c->value) + 1;
            any = json_is_string(v) && strncasecmp(json_string_value(v), w, strlen(w)) == 0;
        } else if (strncmp(op, "datetime_", 9) == 0) {
            /* same ISO layout on both sides: bytewise order is time order */
            if (json_is_string(v)) {
                int r = strcmp(json_string_value(v), json_string_value(c->value));
                const char *cmp = op + 9;
                any = strcmp(cmp, "lt") == 0    ? r < 0
                      : strcmp(cmp, "lte") == 0 ? r <= 0
                      : strcmp(cmp, "gt") == 0  ? r > 0
                                                : r >= 0;
            }
        } else {
            /* lt lte gt gte: same rank only */
            if (ref_rank(v) == ref_rank(c->value) && ref_rank(v) != 0) {
                int r = ref_cmp(v, c->value);
                any = strcmp(op, "lt") == 0    ? r < 0
                      : strcmp(op, "lte") == 0 ? r <= 0
                      : strcmp(op, "gt") == 0  ? r > 0
                                               : r >= 0;
            }
        }
    }
    /* eq / in with null also match a missing field or a null value. */
    if (!any && !present && (strcmp(op, "eq") == 0 || strcmp(op, "in") == 0)) {
        if (strcmp(op, "eq") == 0)
            any = json_is_null(c->value);
        else
            for (size_t k = 0; k < json_array_size(c->value); k++)
                any |= json_is_null(json_array_get(c->value, k));
    }
    return neg ? !any : any;
}

static json_t *random_scalar(rng *r, int field)
{
    switch (field) {
    case 0:
        return rnd(r, 8) == 0 ? json_null() : json_string(r_names[rnd(r, 6)]);
    case 1:
        return json_string(rnd(r, 2) ? "ENABLED" : "DISABLED");
    case 2:
        return rnd(r, 5) == 0 ? json_null() : json_string(r_providers[rnd(r, 5)]);
    case 3:
        return json_string(r_labels[rnd(r, 5)]);
    case 4:
        switch (rnd(r, 4)) {
        case 0:
            return json_real(rnd(r, 6) + 0.5);
        case 1:
            return json_string("3");
        case 2:
            return json_null();
        default:
            return json_integer(rnd(r, 6));
        }
    default: {
        char ts[64];
        snprintf(ts, sizeof(ts), "2022-0%d-%02dT%02d:00:00.000Z", 1 + rnd(r, 3), 1 + rnd(r, 28),
                 rnd(r, 24));
        return json_string(ts);
    }
    }
}

static void random_cond(rng *r, ref_cond *c)
{
    static const char *const ops[] = {"eq",
                                      "not",
                                      "lt",
                                      "lte",
                                      "gt",
                                      "gte",
                                      "exists",
                                      "contain",
                                      "not_contain",
                                      "in",
                                      "not_in",
                                      "contain_in",
                                      "not_contain_in",
                                      "regex"};
    static const char *const dt_ops[] = {"datetime_lt", "datetime_lte", "datetime_gt",
                                         "datetime_gte"};
    c->field = rnd(r, R_FIELDS);
    c->op = ops[rnd(r, 14)];
    if (c->field == 5 && rnd(r, 2))
        c->op = dt_ops[rnd(r, 4)];
    if (strcmp(c->op, "exists") == 0) {
        c->value = json_boolean(rnd(r, 2));
    } else if (strstr(c->op, "contain") != NULL || strcmp(c->op, "regex") == 0) {
        char buf[16];
        const char *w = r_words[rnd(r, 7)];
        if (strcmp(c->op, "regex") == 0) {
            snprintf(buf, sizeof(buf), "^%s", w);
            c->value = json_string(buf);
        } else if (strstr(c->op, "_in") != NULL) {
            c->value = json_pack("[ss]", w, r_words[rnd(r, 7)]);
        } else {
            c->value = json_string(w);
        }
    } else if (strcmp(c->op, "in") == 0 || strcmp(c->op, "not_in") == 0) {
        c->value = json_array();
        /* short lists are scanned, long ones (> 8) hashed: test both */
        for (int k = rnd(r, 2) ? rnd(r, 3) : rnd(r, 14); k >= 0; k--)
            json_array_append_new(c->value, random_scalar(r, c->field));
    } else if (strncmp(c->op, "datetime_", 9) == 0) {
        c->value = random_scalar(r, 5);
    } else {
        c->value = random_scalar(r, c->field);
    }
}

typedef struct {
    int field;
    int desc;
} ref_sort;

static const json_t *ref_sort_value(const json_t *doc, const ref_sort *s, int *empty)
{
    const json_t *vals[8], *best = NULL;
    int present;
    size_t n = ref_values(doc, s->field, vals, &present);
    *empty = present && n == 0 && s->field == 3;
    for (size_t i = 0; i < n; i++) {
        int c = ref_cmp(vals[i], best);
        if (i == 0 || (s->desc ? c > 0 : c < 0))
            best = vals[i];
    }
    return best;
}

static int ref_doc_cmp(const json_t *a, const json_t *b, const ref_sort *keys, int nkeys)
{
    for (int k = 0; k < nkeys; k++) {
        int ea, eb, c;
        const json_t *va = ref_sort_value(a, &keys[k], &ea), *vb = ref_sort_value(b, &keys[k], &eb);
        c = (ea || eb) ? eb - ea : ref_cmp(va, vb);
        if (c != 0)
            return keys[k].desc ? -c : c;
    }
    return 0;
}

static void test_randomised(void **state)
{
    const char *env = getenv("REPOD_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    rng r = {seed * 2654435761u + 1};
    (void)state;
    for (int iter = 0; iter < 400; iter++) {
        int ndocs = rnd(&r, 60), nand = rnd(&r, 4), nor = rnd(&r, 3), nkeys = rnd(&r, 3);
        json_t *docs = json_array(), *qobj = json_object(), *filter = json_array(),
               *filter_or = json_array(), *out = NULL;
        ref_cond conds[8];
        ref_sort keys[2];
        const char *keyword = rnd(&r, 4) == 0 ? r_words[rnd(&r, 7)] : NULL;
        const json_t **expected = calloc((size_t)ndocs + 1, sizeof(*expected));
        size_t nexp = 0, start = (size_t)rnd(&r, 4), limit = (size_t)rnd(&r, 8);
        query *q = NULL;
        rd_error err;

        for (int i = 0; i < ndocs; i++)
            json_array_append_new(docs, random_doc(&r, i));
        for (int i = 0; i < nand + nor; i++) {
            random_cond(&r, &conds[i]);
            json_array_append_new(i < nand ? filter : filter_or,
                                  json_pack("{s:s, s:O, s:s}", "k", r_fields[conds[i].field], "v",
                                            conds[i].value, "o", conds[i].op));
        }
        json_object_set_new(qobj, "filter", filter);
        json_object_set_new(qobj, "filter_or", filter_or);
        if (keyword != NULL)
            json_object_set_new(qobj, "keyword", json_string(keyword));
        if (nkeys > 0) {
            json_t *klist = json_array();
            for (int k = 0; k < nkeys; k++) {
                keys[k].field = rnd(&r, R_FIELDS);
                keys[k].desc = rnd(&r, 2);
                json_array_append_new(klist, json_pack("{s:s, s:b}", "key", r_fields[keys[k].field],
                                                       "desc", keys[k].desc));
            }
            /* v1 {keys: [...]}, the core v2 list form, or v1 {key, desc} */
            int shape = rnd(&r, 3);
            if (shape == 0)
                json_object_set_new(qobj, "sort", json_pack("{s:o}", "keys", klist));
            else if (shape == 1 || nkeys > 1)
                json_object_set_new(qobj, "sort", klist);
            else {
                json_object_set(qobj, "sort", json_array_get(klist, 0));
                json_decref(klist);
            }
        }
        json_object_set_new(qobj, "page",
                            json_pack("{s:i, s:i}", "start", (int)start, "limit", (int)limit));

        if (query_compile(qobj, NULL, NULL, &q, &err) != RD_OK) {
            char *s = dumps(qobj);
            fail_msg("seed %llu iter %d: compile %s: %s", (unsigned long long)seed, iter, s,
                     err.message);
        }
        /* reference filter */
        for (int i = 0; i < ndocs; i++) {
            const json_t *d = json_array_get(docs, (size_t)i);
            int ok = 1, any_or = nor == 0;
            for (int k = 0; k < nand; k++)
                ok &= ref_match_cond(&conds[k], d);
            for (int k = nand; k < nand + nor; k++)
                any_or |= ref_match_cond(&conds[k], d);
            ok &= any_or;
            if (ok && keyword != NULL) {
                static const char *const kf[] = {"plugin_id", "name", "provider"};
                int found = 0;
                for (int f = 0; f < 3; f++) {
                    const json_t *v = json_object_get(d, kf[f]);
                    found |= json_is_string(v) && ref_icontains(json_string_value(v), keyword);
                }
                const json_t *labels = json_object_get(d, "labels");
                for (size_t l = 0; l < json_array_size(labels); l++)
                    found |= ref_icontains(json_string_value(json_array_get(labels, l)), keyword);
                ok &= found;
            }
            if (ok != query_match(q, d)) {
                char *s = dumps(qobj), *ds = dumps(d);
                fail_msg("seed %llu iter %d: query_match=%d, reference=%d\n  query %s\n  doc %s",
                         (unsigned long long)seed, iter, !ok, ok, s, ds);
            }
            if (ok)
                expected[nexp++] = d;
        }
        /* reference stable insertion sort */
        for (size_t i = 1; i < nexp; i++) {
            const json_t *x = expected[i];
            size_t j = i;
            while (j > 0 && ref_doc_cmp(x, expected[j - 1], keys, nkeys) < 0) {
                expected[j] = expected[j - 1];
                j--;
            }
            expected[j] = x;
        }
        if (query_run(q, docs, &out, &err) != RD_OK)
            fail_msg("seed %llu iter %d: run: %s", (unsigned long long)seed, iter, err.message);
        size_t from = start > 0 ? start - 1 : 0, to = nexp;
        if (from > nexp)
            from = nexp;
        if (limit > 0 && from + limit < nexp)
            to = from + limit;
        json_t *res = json_object_get(out, "results");
        int bad = (size_t)json_integer_value(json_object_get(out, "total_count")) != nexp ||
                  json_array_size(res) != to - from;
        for (size_t i = from; !bad && i < to; i++)
            bad = !json_equal(json_array_get(res, i - from), expected[i]);
        if (bad) {
            char *s = dumps(qobj), *o = dumps(out), *d = dumps(docs);
            fail_msg("seed %llu iter %d: query %s\n got %s\n docs %s\n (expected %zu matches)",
                     (unsigned long long)seed, iter, s, o, d, nexp);
        }
        json_decref(out);
        query_free(q);

        /* count_only: same total, no results. */
        json_object_set_new(qobj, "count_only", json_true());
        assert_int_equal(query_compile(qobj, NULL, NULL, &q, &err), RD_OK);
        assert_int_equal(query_run(q, docs, &out, &err), RD_OK);
        assert_int_equal(json_integer_value(json_object_get(out, "total_count")), nexp);
        assert_int_equal(json_array_size(json_object_get(out, "results")), 0);
        json_decref(out);
        query_free(q);

        for (int i = 0; i < nand + nor; i++)
            json_decref(conds[i].value);
        free(expected);
        json_decref(qobj);
        json_decref(docs);
    }
}

int main(void)
{
    const struct CMUnitTest unit_tests[] = {
        cmocka_unit_test(test_lookup),         cmocka_unit_test(test_parse_datetime),
        cmocka_unit_test(test_parse_timediff), cmocka_unit_test(test_sort_stability),
        cmocka_unit_test(test_concurrent),     cmocka_unit_test(test_null_and_empty),
        cmocka_unit_test(test_randomised),
    };
    int failed = cmocka_run_group_tests_name("query_unit", unit_tests, NULL, NULL);
    failed += run_data_cases();
    return failed;
}
