/*
 * test_remote_models.c - the read models of the remote repositories over a
 * real store: a committed sync swaps the tier whole (a held tier keeps the
 * old catalog), a plugin fetched on its own joins the current tier, a
 * renamed repository or a catalog the hooks missed is rebuilt from the store
 * when read, a deregistered-and-registered-again repository starts empty,
 * load_all rebuilds every tier at start, the time a plugin was fetched on
 * its own is kept with the tier (and loaded at start), and with the records
 * snapshot attached a changed record still leads to a store check.
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

#include "remote.h"
#include "remote_models.h"
#include "remote_records.h"
#include "resource.h"
#include "store.h"

#define REPO "repo-0123456789ab"

typedef struct {
    char dir[256];
    store *st;
    remote_models *m;
    json_t *record;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    char db[320];
    rd_error err = {0};
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_remote_models.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(db, sizeof(db), "%s/db", fx->dir);
    if (store_open(db, &fx->st, &err) != RD_OK)
        fail_msg("store_open: %s", err.message);
    assert_int_equal(remote_models_create(&resource_plugin, &fx->m, &err), RD_OK);
    fx->record = json_pack("{s:s, s:s, s:s, s:i}", "repository_id", REPO, "name", "Up",
                           "repository_type", "remote", "priority", 1);
    assert_int_equal(remote_put(fx->st, fx->record, &err), RD_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    remote_models_destroy(fx->m);
    json_decref(fx->record);
    store_close(fx->st);
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

static json_t *plugin(const char *id)
{
    char image[64];
    snprintf(image, sizeof(image), "acme/%s", id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "plugin_id", id, "name", id, "state", "ENABLED",
                     "image", image, "service_type", "notification.Protocol");
}

/* Commits a catalog of the given ids through the models. */
static void sync_catalog(fixture *fx, const char *const *ids, int64_t at)
{
    rd_error err = {0};
    remote_catalog_txn *t = remote_catalog_begin(fx->st, REPO);
    assert_non_null(t);
    for (size_t i = 0; ids[i] != NULL; i++) {
        json_t *p = plugin(ids[i]);
        assert_true(remote_catalog_add(t, p) >= 0);
        json_decref(p);
    }
    assert_int_equal(remote_models_commit(fx->m, t, fx->record, at, &err), RD_OK);
    remote_catalog_free(t);
}

static remote_tier *tier(fixture *fx)
{
    remote_tier *t = NULL;
    rd_error err = {0};
    assert_int_equal(remote_models_tier(fx->m, fx->st, fx->record, &t, &err), RD_OK);
    assert_non_null(t);
    return t;
}

/* The repository name in the view of plugin_id in t; NULL when absent. */
static const char *info_name(remote_tier *t, const char *plugin_id, char *buf, size_t len)
{
    readmodel_doc *d = readmodel_get(remote_tier_model(t), "", plugin_id);
    if (d == NULL)
        return NULL;
    snprintf(buf, len, "%s",
             json_string_value(json_object_get(
                 json_object_get(readmodel_doc_view(d), "repository_info"), "name")));
    readmodel_doc_release(d);
    return buf;
}

static void test_sync_swaps_whole_tier(void **state)
{
    fixture *fx = *state;
    static const char *const first[] = {"a", "b", "c", NULL};
    static const char *const second[] = {"b", "d", NULL};
    remote_tier *held, *now;
    int64_t at = 0;
    char buf[64];

    now = tier(fx); /* never synced: an empty tier */
    assert_int_equal(remote_tier_synced(now, NULL), 0);
    assert_int_equal(readmodel_count(remote_tier_model(now)), 0);
    remote_tier_release(now);

    sync_catalog(fx, first, 1000);
    held = tier(fx);
    assert_int_equal(remote_tier_synced(held, &at), 1);
    assert_int_equal(at, 1000);
    assert_int_equal(readmodel_count(remote_tier_model(held)), 3);
    assert_string_equal(info_name(held, "a", buf, sizeof(buf)), "Up");
    {
        /* the served view: repository_info of the mirror, both type keys */
        readmodel_doc *d = readmodel_get(remote_tier_model(held), "", "a");
        const json_t *v = readmodel_doc_view(d);
        assert_string_equal(json_string_value(json_object_get(v, "resource_type")),
                            "notification.Protocol");
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "repository_info"),
                                                              "repository_id")),
                            REPO);
        readmodel_doc_release(d);
    }

    sync_catalog(fx, second, 2000);
    now = tier(fx);
    assert_int_equal(readmodel_count(remote_tier_model(now)), 2);
    assert_null(info_name(now, "a", buf, sizeof(buf)));
    assert_non_null(info_name(now, "d", buf, sizeof(buf)));
    /* a reader that held the old tier still sees the old catalog whole */
    assert_int_equal(readmodel_count(remote_tier_model(held)), 3);
    assert_non_null(info_name(held, "a", buf, sizeof(buf)));
    remote_tier_release(held);
    remote_tier_release(now);
}

static void test_put_rename_and_store_changes(void **state)
{
    fixture *fx = *state;
    static const char *const ids[] = {"a", "b", NULL};
    remote_tier *t;
    json_t *solo = plugin("solo");
    rd_error err = {0};
    char buf[64];

    sync_catalog(fx, ids, 1000);
    /* a plugin fetched on its own joins the current tier */
    assert_int_equal(remote_plugin_put(fx->st, REPO, solo, 1500, &err), RD_OK);
    remote_models_put(fx->m, fx->record, solo);
    t = tier(fx);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 3);
    remote_tier_release(t);

    /* a rename is seen by the next read, rebuilt from the store */
    json_object_set_new(fx->record, "name", json_string("Renamed"));
    assert_int_equal(remote_put(fx->st, fx->record, &err), RD_OK);
    t = tier(fx);
    assert_string_equal(info_name(t, "solo", buf, sizeof(buf)), "Renamed");
    assert_string_equal(info_name(t, "a", buf, sizeof(buf)), "Renamed");
    assert_int_equal(readmodel_count(remote_tier_model(t)), 3);
    remote_tier_release(t);

    /* a catalog written without the models (a missed hook) is caught by
     * its stamp */
    {
        remote_catalog_txn *tx = remote_catalog_begin(fx->st, REPO);
        json_t *p = plugin("z");
        assert_true(remote_catalog_add(tx, p) == 1);
        assert_int_equal(remote_catalog_commit(tx, 3000, &err), RD_OK);
        remote_catalog_free(tx);
        json_decref(p);
    }
    t = tier(fx);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 1);
    assert_non_null(info_name(t, "z", buf, sizeof(buf)));
    remote_tier_release(t);

    /* deregistered and registered again: an empty, unsynced tier */
    assert_int_equal(remote_delete(fx->st, REPO, &err), RD_OK);
    assert_int_equal(remote_put(fx->st, fx->record, &err), RD_OK);
    t = tier(fx);
    assert_int_equal(remote_tier_synced(t, NULL), 0);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 0);
    remote_tier_release(t);
    json_decref(solo);
}

static void test_load_all_and_retain(void **state)
{
    fixture *fx = *state;
    static const char *const ids[] = {"a", "b", "c", NULL};
    remote_models *fresh = NULL;
    remote_tier *t = NULL;
    json_t *none = json_array();
    rd_error err = {0};

    sync_catalog(fx, ids, 1000);
    /* a new set (a restart) builds the tier from the store */
    assert_int_equal(remote_models_create(&resource_plugin, &fresh, &err), RD_OK);
    assert_int_equal(remote_models_load_all(fresh, fx->st, &err), RD_OK);
    assert_int_equal(remote_models_tier(fresh, fx->st, fx->record, &t, &err), RD_OK);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 3);
    assert_string_equal(remote_tier_id(t), REPO);
    /* retain over no repository drops the tier; a holder keeps its copy */
    remote_models_retain(fresh, none);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 3);
    remote_tier_release(t);
    remote_models_destroy(fresh);
    json_decref(none);
}

static void test_own_fetch_stamps(void **state)
{
    fixture *fx = *state;
    static const char *const ids[] = {"a", "b", NULL};
    remote_models *fresh = NULL;
    remote_tier *t;
    json_t *solo = plugin("solo"), *b = plugin("b");
    rd_error err = {0};
    int64_t at = 0;

    sync_catalog(fx, ids, 1000);
    /* "b" fetched on its own before the catalog, "solo" after it */
    assert_int_equal(remote_plugin_put(fx->st, REPO, b, 900, &err), RD_OK);
    assert_int_equal(remote_plugin_put(fx->st, REPO, solo, 1500, &err), RD_OK);
    remote_models_put_at(fx->m, fx->record, solo, 1500);
    t = tier(fx);
    assert_int_equal(remote_tier_own_fetched_at(t, "solo", &at), 1);
    assert_int_equal(at, 1500);
    assert_int_equal(remote_tier_own_fetched_at(t, "a", &at), 0);
    remote_tier_release(t);

    /* at start, the stamps younger than the catalog come from the store */
    assert_int_equal(remote_models_create(&resource_plugin, &fresh, &err), RD_OK);
    assert_int_equal(remote_models_load_all(fresh, fx->st, &err), RD_OK);
    assert_int_equal(remote_models_tier(fresh, fx->st, fx->record, &t, &err), RD_OK);
    at = 0;
    assert_int_equal(remote_tier_own_fetched_at(t, "solo", &at), 1);
    assert_int_equal(at, 1500);
    assert_int_equal(remote_tier_own_fetched_at(t, "b", &at), 0);
    remote_tier_release(t);
    remote_models_destroy(fresh);

    /* a new catalog makes the older stamps moot */
    sync_catalog(fx, ids, 2000);
    t = tier(fx);
    assert_int_equal(remote_tier_own_fetched_at(t, "solo", &at), 0);
    remote_tier_release(t);
    json_decref(solo);
    json_decref(b);
}

static void test_attached_records_changes_check_the_store(void **state)
{
    fixture *fx = *state;
    static const char *const ids[] = {"a", "b", NULL};
    remote_tier *t;
    rd_error err = {0};
    char buf[64];

    assert_int_equal(remote_records_attach(fx->st, &err), RD_OK);
    sync_catalog(fx, ids, 1000);
    t = tier(fx);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 2);
    remote_tier_release(t);
    /* a rename: the record in hand names the new name */
    json_object_set_new(fx->record, "name", json_string("Renamed"));
    assert_int_equal(remote_put(fx->st, fx->record, &err), RD_OK);
    t = tier(fx);
    assert_string_equal(info_name(t, "a", buf, sizeof(buf)), "Renamed");
    remote_tier_release(t);
    /* deregistered and registered again (same id, same name): empty */
    assert_int_equal(remote_delete(fx->st, REPO, &err), RD_OK);
    assert_int_equal(remote_put(fx->st, fx->record, &err), RD_OK);
    t = tier(fx);
    assert_int_equal(remote_tier_synced(t, NULL), 0);
    assert_int_equal(readmodel_count(remote_tier_model(t)), 0);
    remote_tier_release(t);
    remote_records_detach(fx->st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_swaps_whole_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_rename_and_store_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_all_and_retain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_fetch_stamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attached_records_changes_check_the_store, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
