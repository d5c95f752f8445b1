/*
 * test_catalog_resources.c - the catalog keyed by (resource, domain, id):
 * plugins and dashboard templates side by side in one store, each with its
 * own key prefix, uniqueness, read model and default order; plugin keys
 * keep their layout; both models are rebuilt when the catalog reopens.
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

#include "catalog.h"
#include "dashboard.h"
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
    if (catalog_open(fx->st, "Local", &fx->cat, &err) != RD_OK)
        fail_msg("catalog_open: %s", err.message);
}

static void close_all(fixture *fx)
{
    catalog_close(fx->cat);
    store_close(fx->st);
    fx->cat = NULL;
    fx->st = NULL;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_catalog_resources.XXXXXX");
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

static void add_template(catalog *cat, const char *domain, const char *id, const char *name)
{
    rd_error err = {0};
    resource_ctx ctx = {domain, "2024-01-01T00:00:00.000Z", NULL};
    json_t *req = json_pack("{s:s, s:s}", "template_id", id, "name", name), *rec = NULL;
    assert_int_equal(dashboard_build_record(req, &ctx, &rec, &err), RD_OK);
    if (catalog_insert(cat, &resource_dashboard, rec, &err) != RD_OK)
        fail_msg("insert %s/%s: %s", domain, id, err.message);
    json_decref(req);
    json_decref(rec);
}

/* The ids of the list answer of the domain's documents of res. */
static void expect_list(catalog *cat, const resource_desc *res, const char *domain,
                        const char *want)
{
    rd_error err = {0};
    query_schema schema = resource_query_schema(res);
    const char *domains[] = {domain};
    query *q = NULL;
    json_t *out = NULL, *doc;
    size_t i;
    char got[256] = "";
    assert_int_equal(query_compile(NULL, NULL, &schema, &q, &err), RD_OK);
    assert_int_equal(catalog_res_query_views(cat, res, domains, 1, q, &out, &err), RD_OK);
    json_array_foreach(json_object_get(out, "results"), i, doc)
    {
        strcat(got, i ? "," : "");
        strcat(got, json_string_value(json_object_get(doc, res->id_field)));
    }
    assert_string_equal(got, want);
    json_decref(out);
    query_free(q);
}

static void test_side_by_side(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *plugin =
               json_pack("{s:s, s:s, s:s}", "domain_id", "d1", "plugin_id", "same-id", "name", "P"),
           *got = NULL;
    char *val = NULL;
    char key[64];
    size_t klen;

    assert_int_equal(catalog_plugin_insert(fx->cat, plugin, &err), RD_OK);
    add_template(fx->cat, "d1", "same-id", "Zed");
    add_template(fx->cat, "d1", "other", "Alpha");
    add_template(fx->cat, "d2", "same-id", "D2");

    /* a clash is per resource and domain */
    {
        resource_ctx ctx = {"d1", "2024-01-01T00:00:00.000Z", NULL};
        json_t *req = json_pack("{s:s, s:s}", "template_id", "same-id", "name", "dup"), *rec;
        assert_int_equal(dashboard_build_record(req, &ctx, &rec, &err), RD_OK);
        assert_int_equal(catalog_insert(fx->cat, &resource_dashboard, rec, &err),
                         RD_ERR_SAVE_UNIQUE_VALUES);
        assert_non_null(strstr(err.message, "key = template_id, value = same-id"));
        json_decref(req);
        json_decref(rec);
    }

    /* the plugin keeps its key layout; the template has its own prefix */
    klen = store_key(key, sizeof(key), "L", "d1", "same-id", NULL);
    assert_int_equal(store_get(fx->st, STORE_CF_PLUGINS, key, klen, &val, NULL, &err), RD_OK);
    assert_non_null(strstr(val, "\"plugin_id\""));
    free(val);
    klen = store_key(key, sizeof(key), "D", "d1", "same-id", NULL);
    assert_int_equal(store_get(fx->st, STORE_CF_PLUGINS, key, klen, &val, NULL, &err), RD_OK);
    assert_non_null(strstr(val, "\"template_id\""));
    free(val);

    assert_int_equal(catalog_get(fx->cat, &resource_dashboard, "d1", "same-id", &got, &err), RD_OK);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "Zed");
    json_decref(got);
    expect_list(fx->cat, &resource_dashboard, "d1", "other,same-id"); /* by name */
    expect_list(fx->cat, &resource_plugin, "d1", "same-id");
    assert_int_equal(readmodel_count(catalog_model(fx->cat, &resource_dashboard)), 3);
    assert_int_equal(readmodel_count(catalog_model(fx->cat, &resource_plugin)), 1);

    /* deleting the template leaves the plugin */
    assert_int_equal(catalog_delete(fx->cat, &resource_dashboard, "d1", "same-id", &err), RD_OK);
    assert_int_equal(catalog_delete(fx->cat, &resource_dashboard, "d1", "same-id", &err),
                     RD_ERR_NOT_FOUND);
    assert_int_equal(catalog_plugin_get(fx->cat, "d1", "same-id", &got, &err), RD_OK);
    json_decref(got);

    /* reopen: both models come back from the store */
    close_all(fx);
    open_all(fx);
    assert_true(catalog_res_whole(fx->cat, &resource_dashboard));
    expect_list(fx->cat, &resource_dashboard, "d1", "other");
    expect_list(fx->cat, &resource_dashboard, "d2", "same-id");
    expect_list(fx->cat, &resource_plugin, "d1", "same-id");
    {
        const char *domains[] = {"d1", "d2"};
        json_t *docs = NULL;
        assert_int_equal(catalog_res_store_views(fx->cat, &resource_dashboard, domains, 2, NULL,
                                                 &docs, NULL, &err),
                         RD_OK);
        assert_int_equal(json_array_size(docs), 2); /* the store path, in default order */
        assert_string_equal(json_string_value(json_object_get(json_array_get(docs, 0), "name")),
                            "Alpha");
        assert_string_equal(
            json_string_value(json_object_get(
                json_object_get(json_array_get(docs, 1), "repository_info"), "endpoint")),
            "");
        json_decref(docs);
    }
    json_decref(plugin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_side_by_side, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
