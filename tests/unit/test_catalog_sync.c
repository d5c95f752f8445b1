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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/remote/catalog_sync.h"
#include "remote.h"
#include "store.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
