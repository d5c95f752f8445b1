/*
 * test_catalog_sync.c - unit tests of one paged catalog sync
 * (src/remote/catalog_sync.c) over a real store in a temporary folder:
 * page requests, stop conditions, skipped records, answers refused whole,
 * and the swap of the new catalog.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/remote/catalog_sync.h"
#include "readmodel.h"
#include "remote.h"
#include "remote_models.h"
#include "store.h"

/* Every byte jansson holds now, and the most it held since the last reset
 * (json_set_alloc_funcs in main, before any JSON is made). */
static _Atomic long long json_live, json_peak;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);
    if (p != NULL) {
        long long now = atomic_fetch_add(&json_live, (long long)malloc_usable_size(p)) +
                        (long long)malloc_usable_size(p);
        if (now > atomic_load(&json_peak))
            atomic_store(&json_peak, now);
    }
    return p;
}

static void count_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&json_live, (long long)malloc_usable_size(p));
    free(p);
}

#define REPO "repo-0123456789ab"

typedef struct {
    char dir[256];
    store *st;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    char db[320];
    rd_error err = {0};
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_catalog_sync.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(db, sizeof(db), "%s/db", fx->dir);
    if (store_open(db, &fx->st, &err) != RD_OK)
        fail_msg("store_open: %s", err.message);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    store_close(fx->st);
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

/* A valid record of image "acme/<id>" (plugin_id id unless given). */
static json_t *rec(const char *id, const char *plugin_id)
{
    char image[64];
    snprintf(image, sizeof(image), "acme/%s", id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "plugin_id", plugin_id ? plugin_id : id,
                     "name", id, "state", "ENABLED", "image", image, "resource_type",
                     "inventory.Collector", "docs", "en", "hello");
}

/* {"results": [records of ids...], "total_count": total (< 0: absent)}. */
static json_t *page(json_int_t total, const char *const *ids)
{
    json_t *results = json_array();
    for (size_t i = 0; ids[i] != NULL; i++)
        json_array_append_new(results, rec(ids[i], NULL));
    if (total < 0)
        return json_pack("{s:o}", "results", results);
    return json_pack("{s:o, s:I}", "results", results, "total_count", total);
}

static size_t cached_count(store *st)
{
    json_t *arr = json_array();
    rd_error err = {0};
    size_t n;
    if (remote_catalog_load(st, REPO, arr, NULL, &err) != RD_OK)
        n = (size_t)-1;
    else
        n = json_array_size(arr);
    json_decref(arr);
    return n;
}

/* Feeds one page; returns its rc and sets *more. */
static rd_status feed(catalog_sync *s, json_t *body, int *more, rd_error *err)
{
    rd_status rc = catalog_sync_page(s, body, more, err);
    json_decref(body);
    return rc;
}

static void test_pages_until_short_page(void **state)
{
    fixture *fx = *state;
    static const char *const p1[] = {"a", "b", NULL}, *const p2[] = {"c", "d", NULL},
                             *const p3[] = {"e", NULL};
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 2);
    rd_error err = {0};
    int more = 0;
    json_t *req = catalog_sync_next_request(s);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(req, "query"), "page"), "start")),
                     1);
    assert_string_equal(json_string_value(json_object_get(req, "repository_id")), REPO);
    json_decref(req);
    assert_int_equal(feed(s, page(-1, p1), &more, &err), RD_OK);
    assert_int_equal(more, 1);
    req = catalog_sync_next_request(s);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(req, "query"), "page"), "start")),
                     3);
    json_decref(req);
    assert_int_equal(feed(s, page(-1, p2), &more, &err), RD_OK);
    assert_int_equal(more, 1);
    assert_int_equal(feed(s, page(-1, p3), &more, &err), RD_OK);
    assert_int_equal(more, 0);
    assert_int_equal(cached_count(fx->st), (size_t)-1); /* nothing written yet */
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    assert_int_equal(catalog_sync_count(s), 5);
    assert_int_equal(catalog_sync_pages(s), 3);
    assert_int_equal(cached_count(fx->st), 5);
    catalog_sync_free(s);
}

static void test_stops_at_total_count_or_unpaged_answer(void **state)
{
    fixture *fx = *state;
    static const char *const two[] = {"a", "b", NULL}, *const three[] = {"a", "b", "c", NULL};
    rd_error err = {0};
    int more = 1;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 2);
    assert_int_equal(feed(s, page(2, two), &more, &err), RD_OK);
    assert_int_equal(more, 0);
    catalog_sync_free(s);
    /* an upstream that does not page sends more than the limit: all of it */
    s = catalog_sync_new(fx->st, REPO, 2);
    more = 1;
    assert_int_equal(feed(s, page(3, three), &more, &err), RD_OK);
    assert_int_equal(more, 0);
    assert_int_equal(catalog_sync_count(s), 3);
    catalog_sync_free(s);
}

static void test_invalid_records_are_skipped(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    int more = 1;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 10);
    json_t *body =
        json_pack("{s:[o, o, o, o], s:i}", "results", rec("plugin-jira", "my-jira"),
                  rec("ok-two", NULL), json_pack("{s:s, s:i}", "plugin_id", "bad-one", "name", 42),
                  rec("bad-id", "Not An Id"), "total_count", 4);
    json_t *arr = json_array(), *first;
    assert_int_equal(feed(s, body, &more, &err), RD_OK);
    assert_int_equal(more, 0);
    assert_int_equal(catalog_sync_skipped(s), 2);
    assert_non_null(strstr(catalog_sync_first_skip(s), "name"));
    assert_non_null(strstr(catalog_sync_first_skip(s), "bad-one"));
    assert_non_null(strstr(catalog_sync_last_skip(s), "plugin_id"));
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    assert_int_equal(catalog_sync_count(s), 2);
    catalog_sync_free(s);
    /* the client-chosen id is kept with its fields as received */
    assert_int_equal(remote_plugin_get(fx->st, REPO, "my-jira", &first, &err), RD_OK);
    assert_string_equal(json_string_value(json_object_get(first, "image")), "acme/plugin-jira");
    assert_string_equal(json_string_value(json_object_get(json_object_get(first, "docs"), "en")),
                        "hello");
    json_decref(first);
    json_decref(arr);
}

static void test_answers_refused_whole(void **state)
{
    fixture *fx = *state;
    static const char *const two[] = {"a", "b", NULL};
    rd_error err = {0};
    int more = 0;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, json_pack("{s:{}}", "results"), &more, &err),
                     RD_ERR_UPSTREAM_BAD_RESPONSE);
    assert_int_equal(feed(s, json_pack("{s:[], s:s}", "results", "total_count", "x"), &more, &err),
                     RD_ERR_UPSTREAM_BAD_RESPONSE);
    /* records, none valid: a change of shape must not empty the mirror */
    assert_int_equal(feed(s, json_pack("{s:[{s:s}]}", "results", "plugin_id", "a"), &more, &err),
                     RD_ERR_UPSTREAM_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "no valid plugin"));
    catalog_sync_free(s);
    /* a full page that brings nothing new: paging does not advance */
    s = catalog_sync_new(fx->st, REPO, 2);
    assert_int_equal(feed(s, page(-1, two), &more, &err), RD_OK);
    assert_int_equal(more, 1);
    assert_int_equal(feed(s, page(-1, two), &more, &err), RD_ERR_UPSTREAM_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "does not advance"));
    catalog_sync_free(s);
    /* an empty catalog is a catalog */
    s = catalog_sync_new(fx->st, REPO, 2);
    assert_int_equal(feed(s, json_pack("{s:[], s:i}", "results", "total_count", 0), &more, &err),
                     RD_OK);
    assert_int_equal(more, 0);
    catalog_sync_free(s);
}

static void test_swap_is_whole_or_nothing(void **state)
{
    fixture *fx = *state;
    static const char *const old[] = {"a", "b", "c", NULL}, *const neu[] = {"c", "d", NULL};
    rd_error err = {0};
    int more = 0;
    json_t *p = NULL;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, page(3, old), &more, &err), RD_OK);
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    catalog_sync_free(s);
    /* a sync that never commits changes nothing */
    s = catalog_sync_new(fx->st, REPO, 2);
    assert_int_equal(feed(s, page(4, neu), &more, &err), RD_OK);
    assert_int_equal(more, 1);
    catalog_sync_free(s);
    assert_int_equal(cached_count(fx->st), 3);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "d", &p, &err), RD_ERR_NOT_FOUND);
    /* a committed one drops what the upstream no longer has */
    s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, page(2, neu), &more, &err), RD_OK);
    assert_int_equal(catalog_sync_commit(s, 2000, &err), RD_OK);
    catalog_sync_free(s);
    assert_int_equal(cached_count(fx->st), 2);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "a", &p, &err), RD_ERR_NOT_FOUND);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "d", &p, &err), RD_OK);
    json_decref(p);
}

/* A dashboard template record (template_id id). */
static json_t *dash(const char *id)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[], s:[s], s:{}}", "template_id", id, "name", id,
                     "state", "ENABLED", "template_type", "MULTI", "dashboards", "labels", "x",
                     "tags");
}

/* Dashboard templates: the same sync, keyed by template_id under their own
 * cache keys; records failing dashboard_check_upstream are skipped. */
static void test_dashboard_catalog(void **state)
{
    fixture *fx = *state;
    catalog_sync *s = catalog_sync_new_res(&resource_dashboard, fx->st, REPO, 2);
    json_t *bad_type = dash("t-bad"), *no_name = dash("t-anon"), *got = NULL, *arr = json_array();
    rd_error err = {0};
    int more = 0;
    int64_t at = 0;

    json_object_set_new(bad_type, "tags", json_string("x"));
    json_object_del(no_name, "name");
    assert_int_equal(feed(s,
                          json_pack("{s:[o,o], s:I}", "results", dash("t-a"), bad_type,
                                    "total_count", (json_int_t)5),
                          &more, &err),
                     RD_OK);
    assert_int_equal(more, 1);
    assert_int_equal(feed(s,
                          json_pack("{s:[o,o], s:I}", "results", no_name, dash("t-b"),
                                    "total_count", (json_int_t)5),
                          &more, &err),
                     RD_OK);
    assert_int_equal(more, 1);
    assert_int_equal(feed(s, json_pack("{s:[o]}", "results", dash("t-c")), &more, &err), RD_OK);
    assert_int_equal(more, 0);
    assert_int_equal(catalog_sync_count(s), 3);
    assert_int_equal(catalog_sync_skipped(s), 2);
    assert_non_null(strstr(catalog_sync_first_skip(s), "tags is not an object"));
    assert_non_null(strstr(catalog_sync_last_skip(s), "without name"));
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    catalog_sync_free(s);
    /* its own catalog: the plugins' stays never synced */
    assert_int_equal(remote_res_catalog_load(&resource_dashboard, fx->st, REPO, arr, &at, &err),
                     RD_OK);
    assert_int_equal(json_array_size(arr), 3);
    assert_int_equal(at, 1000);
    assert_int_equal(cached_count(fx->st), (size_t)-1);
    assert_int_equal(remote_item_get(&resource_dashboard, fx->st, REPO, "t-b", &got, &err), RD_OK);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "t-b");
    json_decref(got);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "t-b", &got, &err), RD_ERR_NOT_FOUND);
    /* a page without one valid record fails the sync */
    s = catalog_sync_new_res(&resource_dashboard, fx->st, REPO, 2);
    assert_int_equal(
        feed(s, json_pack("{s:[{s:s}]}", "results", "template_id", "t-x"), &more, &err),
        RD_ERR_UPSTREAM_BAD_RESPONSE);
    assert_non_null(strstr(err.message, "no valid record"));
    catalog_sync_free(s);
    /* deregistering the repository drops the dashboard cache too */
    assert_int_equal(remote_delete(fx->st, REPO, &err), RD_OK);
    assert_int_equal(remote_item_get(&resource_dashboard, fx->st, REPO, "t-b", &got, &err),
                     RD_ERR_NOT_FOUND);
    assert_int_equal(remote_res_catalog_age(&resource_dashboard, fx->st, REPO, &at, &err),
                     RD_ERR_NOT_FOUND);
    json_decref(arr);
}

/* The number of cache keys starting "<kind>\0<REPO>" (every generation). */
static size_t keys_of(store *st, const char *kind)
{
    char prefix[128];
    size_t plen = store_key(prefix, sizeof(prefix), kind, REPO, NULL), n = 0;
    rd_error err = {0};
    assert_int_equal(store_count(st, STORE_CF_CACHE, prefix, plen, &n, &err), RD_OK);
    return n;
}

/* 1 when the repository is marked as holding another generation. */
static int marked(store *st)
{
    char key[128], *val = NULL;
    size_t klen = store_key(key, sizeof(key), "G", REPO, NULL), vlen;
    rd_error err = {0};
    rd_status rc = store_get(st, STORE_CF_CACHE, key, klen, &val, &vlen, &err);
    free(val);
    return rc == RD_OK;
}

static void reopen(fixture *fx)
{
    char db[320];
    rd_error err = {0};
    store_close(fx->st);
    snprintf(db, sizeof(db), "%s/db", fx->dir);
    if (store_open(db, &fx->st, &err) != RD_OK)
        fail_msg("store_open: %s", err.message);
}

static void test_failed_sync_leaves_nothing_behind(void **state)
{
    fixture *fx = *state;
    static const char *const all[] = {"a", "b", "c", NULL}, *const p1[] = {"x", "y", NULL};
    rd_error err = {0};
    json_t *p = NULL;
    int64_t at = 0;
    int more = 0;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, page(3, all), &more, &err), RD_OK);
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    catalog_sync_free(s);
    assert_int_equal(keys_of(fx->st, "C"), 3);
    assert_int_equal(remote_negative_put(fx->st, REPO, "x", 1100, &err), RD_OK);

    /* page 1 of 3 arrives (written where readers do not look), page 2 is bad */
    s = catalog_sync_new(fx->st, REPO, 2);
    assert_int_equal(feed(s, page(5, p1), &more, &err), RD_OK);
    assert_int_equal(more, 1);
    assert_int_equal(keys_of(fx->st, "C"), 5);
    assert_int_equal(cached_count(fx->st), 3);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "x", &p, &err), RD_ERR_NOT_FOUND);
    assert_int_equal(feed(s, json_pack("{s:{}}", "results"), &more, &err),
                     RD_ERR_UPSTREAM_BAD_RESPONSE);
    catalog_sync_free(s);

    /* the old catalog whole, its negative answer kept, nothing else stored */
    reopen(fx);
    assert_int_equal(cached_count(fx->st), 3);
    assert_int_equal(remote_catalog_age(fx->st, REPO, &at, &err), RD_OK);
    assert_int_equal(at, 1000);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "x", &p, &err), RD_ERR_NOT_FOUND);
    assert_int_equal(remote_negative_get(fx->st, REPO, "x", &at, &err), RD_OK);
    assert_int_equal(keys_of(fx->st, "C"), 3);
    assert_false(marked(fx->st));

    /* a sync that completes: the old generation and the negative answer go */
    s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, page(2, p1), &more, &err), RD_OK);
    assert_int_equal(catalog_sync_commit(s, 2000, &err), RD_OK);
    catalog_sync_free(s);
    assert_int_equal(keys_of(fx->st, "C"), 2);
    assert_false(marked(fx->st));
    assert_int_equal(remote_negative_get(fx->st, REPO, "x", &at, &err), RD_ERR_NOT_FOUND);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "x", &p, &err), RD_OK);
    json_decref(p);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "a", &p, &err), RD_ERR_NOT_FOUND);
}

/* What a sync cut short by a crash leaves (its pages under the next
 * generation, and the mark) is removed when the models are loaded at start. */
static void test_sync_cut_short_is_swept_at_start(void **state)
{
    fixture *fx = *state;
    static const char *const all[] = {"a", "b", "c", NULL};
    char key[128], owner[64];
    rd_error err = {0};
    remote_models *m = NULL;
    remote_tier *t = NULL;
    json_t *p = NULL, *record, *mark, *left;
    store_batch *b;
    int more = 0;
    size_t klen;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, page(3, all), &more, &err), RD_OK);
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    catalog_sync_free(s);

    /* two records of generation 2 and the mark, as a crashed sync wrote them */
    b = store_batch_new(fx->st);
    snprintf(owner, sizeof(owner), "%s#%016llx", REPO, 2ULL);
    left = rec("x", NULL);
    klen = store_key(key, sizeof(key), "C", owner, "x", NULL);
    assert_int_equal(store_batch_put_json(b, STORE_CF_CACHE, key, klen, left), 0);
    klen = store_key(key, sizeof(key), "C", owner, "y", NULL);
    assert_int_equal(store_batch_put_json(b, STORE_CF_CACHE, key, klen, left), 0);
    mark = json_pack("{s:i}", "gen", 2);
    klen = store_key(key, sizeof(key), "G", REPO, NULL);
    assert_int_equal(store_batch_put_json(b, STORE_CF_CACHE, key, klen, mark), 0);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    json_decref(left);
    json_decref(mark);
    assert_int_equal(keys_of(fx->st, "C"), 5);
    assert_int_equal(cached_count(fx->st), 3); /* never read */
    assert_int_equal(remote_plugin_get(fx->st, REPO, "x", &p, &err), RD_ERR_NOT_FOUND);

    reopen(fx);
    record = json_pack("{s:s, s:s, s:s, s:s}", "repository_id", REPO, "name", "Market",
                       "repository_type", "remote", "endpoint", "https://127.0.0.1:1");
    assert_int_equal(remote_put(fx->st, record, &err), RD_OK);
    assert_int_equal(remote_models_create(&resource_plugin, &m, &err), RD_OK);
    assert_int_equal(remote_models_load_all(m, fx->st, &err), RD_OK);
    assert_int_equal(keys_of(fx->st, "C"), 3);
    assert_false(marked(fx->st));
    assert_int_equal(remote_models_tier(m, fx->st, record, &t, &err), RD_OK);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 3);
    remote_tier_release(t);
    remote_models_destroy(m);
    json_decref(record);
}

/* A catalog stored before generations ("C\0<repo>\0<id>", a stamp without
 * gen) is read as it is, and the first sync replaces it. */
static void test_catalog_without_generation(void **state)
{
    fixture *fx = *state;
    static const char *const neu[] = {"b", NULL};
    char key[128];
    rd_error err = {0};
    json_t *p = rec("a", NULL), *meta = json_pack("{s:i, s:i}", "fetched_at", 500, "count", 1);
    store_batch *b = store_batch_new(fx->st);
    int64_t at = 0;
    int more = 0;
    catalog_sync *s;
    size_t klen = store_key(key, sizeof(key), "C", REPO, "a", NULL);
    assert_int_equal(store_batch_put_json(b, STORE_CF_CACHE, key, klen, p), 0);
    klen = store_key(key, sizeof(key), "M", REPO, NULL);
    assert_int_equal(store_batch_put_json(b, STORE_CF_CACHE, key, klen, meta), 0);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    json_decref(p);
    json_decref(meta);
    assert_int_equal(cached_count(fx->st), 1);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "a", &p, &err), RD_OK);
    json_decref(p);
    assert_int_equal(remote_catalog_age(fx->st, REPO, &at, &err), RD_OK);
    assert_int_equal(at, 500);

    s = catalog_sync_new(fx->st, REPO, 10);
    assert_int_equal(feed(s, page(1, neu), &more, &err), RD_OK);
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    catalog_sync_free(s);
    assert_int_equal(cached_count(fx->st), 1);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "a", &p, &err), RD_ERR_NOT_FOUND);
    assert_int_equal(remote_plugin_get(fx->st, REPO, "b", &p, &err), RD_OK);
    json_decref(p);
    assert_int_equal(keys_of(fx->st, "C"), 1);
    assert_false(marked(fx->st));
}

/* A record of id with a large docs body (bytes of text). */
static json_t *fat_rec(const char *id, size_t bytes)
{
    json_t *r = rec(id, NULL);
    char *body = malloc(bytes + 1);
    assert_non_null(body);
    memset(body, 'x', bytes);
    body[bytes] = '\0';
    json_object_set_new(r, "docs", json_pack("{s:{s:s}}", "en", "body", body));
    free(body);
    return r;
}

/* A sync of many pages holds about one page of parsed records at a time:
 * what jansson holds never exceeds two pages' worth. */
static void test_sync_holds_about_one_page(void **state)
{
    fixture *fx = *state;
    enum { PAGE = 100, PAGES = 30, DOC = 2000 };
    rd_error err = {0};
    long long base, page_bytes = 0, held = 0;
    int more = 1;
    catalog_sync *s = catalog_sync_new(fx->st, REPO, PAGE);
    base = atomic_load(&json_live);
    for (int k = 0; k < PAGES && more; k++) {
        json_t *results = json_array(), *body;
        long long before = atomic_load(&json_live);
        char id[32];
        for (int i = 0; i < PAGE; i++) {
            snprintf(id, sizeof(id), "p%05d", k * PAGE + i);
            json_array_append_new(results, fat_rec(id, DOC));
        }
        body = json_pack("{s:o, s:i}", "results", results, "total_count", PAGE * PAGES);
        if (atomic_load(&json_live) - before > page_bytes)
            page_bytes = atomic_load(&json_live) - before;
        atomic_store(&json_peak, atomic_load(&json_live));
        assert_int_equal(feed(s, body, &more, &err), RD_OK);
        if (atomic_load(&json_peak) - base > held)
            held = atomic_load(&json_peak) - base;
    }
    assert_int_equal(more, 0);
    assert_int_equal(catalog_sync_count(s), PAGE * PAGES);
    assert_true(page_bytes > 0);
    if (held > 2 * page_bytes)
        fail_msg("a sync of %d pages held %lld bytes of JSON, a page is %lld", PAGES, held,
                 page_bytes);
    assert_int_equal(catalog_sync_commit(s, 1000, &err), RD_OK);
    catalog_sync_free(s);
    assert_int_equal(cached_count(fx->st), PAGE * PAGES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pages_until_short_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stops_at_total_count_or_unpaged_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_records_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answers_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_is_whole_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_sync_leaves_nothing_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_cut_short_is_swept_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_holds_about_one_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_without_generation, setup, teardown),
    };
    json_set_alloc_funcs(count_malloc, count_free);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
