/*
 * test_catalog.c - unit tests of the catalog (src/catalog/catalog.c): the
 * local repository record and local plugins over a real store.
 *
 * Every test opens a real RocksDB store in its own temporary folder under
 * /tmp (mkdtemp) and removes the folder afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "store.h"

typedef struct {
    char dir[320];
    store *st;
    catalog *cat;
} fixture;

static void open_all(fixture *fx, const char *name)
{
    rd_error err = {0};
    if (store_open(fx->dir, &fx->st, &err) != RD_OK)
        fail_msg("store_open: %s", err.message);
    if (catalog_open(fx->st, name, &fx->cat, &err) != RD_OK)
        fail_msg("catalog_open: %s", err.message);
    assert_non_null(fx->cat);
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
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_catalog.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    open_all(fx, "local-repo");
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

/* A plugin record as the API layer would store it. */
static json_t *make_plugin(const char *domain_id, const char *plugin_id, const char *name)
{
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:{s:s}}", "domain_id", domain_id,
                            "plugin_id", plugin_id, "name", name, "service_type", "inventory",
                            "tags", "t1", "labels", "k", "v");
    assert_non_null(rec);
    return rec;
}

static void insert_ok(catalog *cat, const char *domain_id, const char *plugin_id, const char *name)
{
    rd_error err = {0};
    json_t *rec = make_plugin(domain_id, plugin_id, name);
    rd_status rc = catalog_plugin_insert(cat, rec, &err);
    json_decref(rec);
    if (rc != RD_OK)
        fail_msg("insert %s/%s: %s", domain_id, plugin_id, err.message);
}

/* Expects (domain, plugin) to be stored with the given name. */
static void expect_name(catalog *cat, const char *domain_id, const char *plugin_id,
                        const char *name)
{
    rd_error err = {0};
    json_t *got = NULL;
    rd_status rc = catalog_plugin_get(cat, domain_id, plugin_id, &got, &err);
    if (rc != RD_OK)
        fail_msg("get %s/%s: status %d (%s)", domain_id, plugin_id, (int)rc, err.message);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "name")), name);
    assert_string_equal(json_string_value(json_object_get(got, "domain_id")), domain_id);
    assert_string_equal(json_string_value(json_object_get(got, "plugin_id")), plugin_id);
    json_decref(got);
}

static void expect_absent(catalog *cat, const char *domain_id, const char *plugin_id)
{
    rd_error err = {0};
    json_t *got = NULL;
    assert_int_equal(catalog_plugin_get(cat, domain_id, plugin_id, &got, &err), RD_ERR_NOT_FOUND);
    assert_null(got);
}

static size_t count_all(catalog *cat)
{
    size_t n = (size_t)-1;
    rd_error err = {0};
    assert_int_equal(catalog_plugin_count_all(cat, &n, &err), RD_OK);
    return n;
}

static int count_one(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (*(size_t *)ud)++;
    return 0;
}

static void expect_id_format(const char *id)
{
    regex_t re;
    int rc;
    assert_non_null(id);
    assert_int_equal(regcomp(&re, "^repo-[0-9a-f]{12}$", REG_EXTENDED | REG_NOSUB), 0);
    rc = regexec(&re, id, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("local repository id '%s' does not match ^repo-[0-9a-f]{12}$", id);
}

/* ---- local repository ------------------------------------------------ */

static void test_local_repository_created(void **state)
{
    fixture *fx = *state;
    const char *id = catalog_local_id(fx->cat);
    const json_t *info = catalog_local_info(fx->cat);
    json_t *rec = catalog_local_record(fx->cat);
    json_t *stored = NULL;
    rd_error err = {0};
    size_t repos = 0;

    expect_id_format(id);
    assert_non_null(info);
    assert_int_equal(json_object_size(info), 3);
    assert_string_equal(json_string_value(json_object_get(info, "repository_id")), id);
    assert_string_equal(json_string_value(json_object_get(info, "name")), "local-repo");
    assert_string_equal(json_string_value(json_object_get(info, "repository_type")), "local");

    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "repository_id")), id);
    assert_string_equal(json_string_value(json_object_get(rec, "name")), "local-repo");
    assert_string_equal(json_string_value(json_object_get(rec, "repository_type")), "local");
    assert_non_null(json_string_value(json_object_get(rec, "created_at")));
    /* A new reference: changing it does not change the catalog's copy. */
    json_object_set_new(rec, "name", json_string("changed"));
    json_decref(rec);
    rec = catalog_local_record(fx->cat);
    assert_string_equal(json_string_value(json_object_get(rec, "name")), "local-repo");

    /* Persisted in the repositories family under its id (store.h). */
    assert_int_equal(store_get_json(fx->st, STORE_CF_REPOS, id, strlen(id), &stored, &err), RD_OK);
    assert_true(json_equal(stored, rec));
    json_decref(stored);
    json_decref(rec);
    assert_int_equal(store_scan(fx->st, STORE_CF_REPOS, "", 0, count_one, &repos, &err), RD_OK);
    assert_int_equal(repos, 1);
    /* No plugins yet. */
    assert_int_equal(count_all(fx->cat), 0);
}

/* Reopening keeps the id and name, even when another name is passed, both
 * on the same store and after a restart of the store; no second repository
 * is created. */
static void test_local_repository_stable(void **state)
{
    fixture *fx = *state;
    char id[64];
    char created[64];
    catalog *again = NULL;
    rd_error err = {0};
    size_t repos = 0;
    json_t *rec = catalog_local_record(fx->cat);

    snprintf(id, sizeof(id), "%s", catalog_local_id(fx->cat));
    snprintf(created, sizeof(created), "%s", json_string_value(json_object_get(rec, "created_at")));
    json_decref(rec);

    /* Same store, second catalog. */
    assert_int_equal(catalog_open(fx->st, "another-name", &again, &err), RD_OK);
    assert_string_equal(catalog_local_id(again), id);
    assert_string_equal(json_string_value(json_object_get(catalog_local_info(again), "name")),
                        "local-repo");
    catalog_close(again);

    /* Restart of everything with yet another name. */
    close_all(fx);
    open_all(fx, "third-name");
    assert_string_equal(catalog_local_id(fx->cat), id);
    assert_string_equal(
        json_string_value(json_object_get(catalog_local_info(fx->cat), "repository_id")), id);
    assert_string_equal(json_string_value(json_object_get(catalog_local_info(fx->cat), "name")),
                        "local-repo");
    rec = catalog_local_record(fx->cat);
    assert_string_equal(json_string_value(json_object_get(rec, "name")), "local-repo");
    assert_string_equal(json_string_value(json_object_get(rec, "created_at")), created);
    json_decref(rec);
    assert_int_equal(store_scan(fx->st, STORE_CF_REPOS, "", 0, count_one, &repos, &err), RD_OK);
    assert_int_equal(repos, 1);
}

/* Two fresh stores get different ids. */
static void test_local_ids_differ(void **state)
{
    fixture *fx = *state;
    fixture other = {0};
    assert_true(strlen(fx->dir) < 200);
    snprintf(other.dir, sizeof(other.dir), "%.200s/other", fx->dir);
    open_all(&other, "x");
    assert_string_not_equal(catalog_local_id(other.cat), catalog_local_id(fx->cat));
    expect_id_format(catalog_local_id(other.cat));
    close_all(&other);
}

static void test_close_null(void **state)
{
    (void)state;
    catalog_close(NULL);
}

/* ---- insert / get ---------------------------------------------------- */

static void test_insert_then_get(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *rec = make_plugin("domain-1", "plugin-aaa", "First");
    json_t *got = NULL;

    assert_int_equal(catalog_plugin_insert(fx->cat, rec, &err), RD_OK);
    assert_int_equal(catalog_plugin_get(fx->cat, "domain-1", "plugin-aaa", &got, &err), RD_OK);
    assert_non_null(got);
    assert_true(json_equal(rec, got));
    assert_true(got != rec);
    json_decref(got);
    got = NULL;
    assert_int_equal(count_all(fx->cat), 1);

    /* Survives a restart. */
    close_all(fx);
    open_all(fx, "local-repo");
    assert_int_equal(catalog_plugin_get(fx->cat, "domain-1", "plugin-aaa", &got, &err), RD_OK);
    assert_true(json_equal(rec, got));
    json_decref(got);
    json_decref(rec);
    /* Other ids and domains are not there. */
    expect_absent(fx->cat, "domain-1", "plugin-aab");
    expect_absent(fx->cat, "domain-2", "plugin-aaa");
    expect_absent(fx->cat, "domain-", "plugin-aaa");
    expect_absent(fx->cat, "domain-1", "plugin-aa");
}

/* A duplicate (same domain, same plugin_id) is refused and changes nothing. */
static void test_duplicate_insert(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *first = make_plugin("domain-1", "plugin-dup", "Original");
    json_t *second = make_plugin("domain-1", "plugin-dup", "Impostor");
    json_t *got = NULL;
    rd_status rc;

    assert_int_equal(catalog_plugin_insert(fx->cat, first, &err), RD_OK);
    rc = catalog_plugin_insert(fx->cat, second, &err);
    json_decref(second);
    assert_int_equal(rc, RD_ERR_SAVE_UNIQUE_VALUES);
    assert_int_equal(err.code, RD_ERR_SAVE_UNIQUE_VALUES);
    assert_non_null(strstr(err.message, "plugin-dup")); /* names the value */

    assert_int_equal(catalog_plugin_get(fx->cat, "domain-1", "plugin-dup", &got, &err), RD_OK);
    assert_true(json_equal(first, got));
    json_decref(got);
    json_decref(first);
    assert_int_equal(count_all(fx->cat), 1);
}

/* The same plugin_id in another domain is a different plugin. */
static void test_same_id_other_domain(void **state)
{
    fixture *fx = *state;
    insert_ok(fx->cat, "domain-1", "plugin-x", "One");
    insert_ok(fx->cat, "domain-2", "plugin-x", "Two");
    /* A domain that is a prefix of another. */
    insert_ok(fx->cat, "domain-", "plugin-x", "Prefix");
    expect_name(fx->cat, "domain-1", "plugin-x", "One");
    expect_name(fx->cat, "domain-2", "plugin-x", "Two");
    expect_name(fx->cat, "domain-", "plugin-x", "Prefix");
    assert_int_equal(count_all(fx->cat), 3);
}

/* A record without domain_id or plugin_id is refused and stores nothing. */
static void test_insert_incomplete(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *rec = json_pack("{s:s}", "plugin_id", "plugin-x");
    assert_non_null(rec);
    assert_int_not_equal(catalog_plugin_insert(fx->cat, rec, &err), RD_OK);
    json_decref(rec);
    rec = json_pack("{s:s, s:i}", "domain_id", "d", "plugin_id", 5);
    assert_non_null(rec);
    assert_int_not_equal(catalog_plugin_insert(fx->cat, rec, &err), RD_OK);
    json_decref(rec);
    assert_int_equal(count_all(fx->cat), 0);
}

/* A plugin_id too long for a key is refused (not truncated into another
 * plugin's key). */
static void test_insert_overlong_id(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    char *big = malloc(3000);
    json_t *rec;
    rd_status rc;
    json_t *got = NULL;
    assert_non_null(big);
    memset(big, 'p', 2999);
    big[2999] = '\0';
    rec = make_plugin("d", big, "Big");
    rc = catalog_plugin_insert(fx->cat, rec, &err);
    json_decref(rec);
    assert_int_not_equal(rc, RD_OK);
    assert_int_equal(count_all(fx->cat), 0);
    assert_int_equal(catalog_plugin_get(fx->cat, "d", big, &got, &err), RD_ERR_NOT_FOUND);
    free(big);
}

/* ---- modify ---------------------------------------------------------- */

typedef struct {
    const char *new_name;
    int calls;
    char seen_name[64];
    rd_status fail_with; /* RD_OK = succeed */
    int leave_partial;   /* set *updated before failing */
} modify_ud;

static rd_status rename_cb(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    modify_ud *m = ud;
    m->calls++;
    snprintf(m->seen_name, sizeof(m->seen_name), "%s",
             json_string_value(json_object_get(current, "name")));
    if (m->fail_with != RD_OK) {
        if (m->leave_partial)
            *updated = json_deep_copy(current); /* the catalog must free it */
        return rd_fail(err, m->fail_with, "Invalid parameter. (key = name)");
    }
    *updated = json_deep_copy(current);
    if (*updated == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    json_object_set_new(*updated, "name", json_string(m->new_name));
    return RD_OK;
}

static void test_modify_applies_and_persists(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    modify_ud m = {.new_name = "Renamed"};
    json_t *out = NULL;

    insert_ok(fx->cat, "domain-1", "plugin-m", "Before");
    insert_ok(fx->cat, "domain-2", "plugin-m", "Other domain");
    assert_int_equal(
        catalog_plugin_modify(fx->cat, "domain-1", "plugin-m", rename_cb, &m, &out, &err), RD_OK);
    assert_int_equal(m.calls, 1);
    assert_string_equal(m.seen_name, "Before");
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "Renamed");
    /* Fields the callback kept are kept. */
    assert_string_equal(json_string_value(json_object_get(out, "service_type")), "inventory");
    json_decref(out);
    expect_name(fx->cat, "domain-1", "plugin-m", "Renamed");
    expect_name(fx->cat, "domain-2", "plugin-m", "Other domain");

    /* out is optional. */
    m.new_name = "Again";
    assert_int_equal(
        catalog_plugin_modify(fx->cat, "domain-1", "plugin-m", rename_cb, &m, NULL, &err), RD_OK);
    assert_string_equal(m.seen_name, "Renamed");

    close_all(fx);
    open_all(fx, "local-repo");
    expect_name(fx->cat, "domain-1", "plugin-m", "Again");
    expect_name(fx->cat, "domain-2", "plugin-m", "Other domain");
    assert_int_equal(count_all(fx->cat), 2);
}

/* A failing callback: its status and message come back, nothing changes,
 * and a half-made *updated is freed by the catalog (checked by ASan). */
static void test_modify_failing_callback(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    modify_ud m = {.new_name = "Never", .fail_with = RD_ERR_INVALID_PARAMETER};
    json_t *out = NULL;
    json_t *before = make_plugin("domain-1", "plugin-f", "Kept");
    json_t *got = NULL;

    assert_int_equal(catalog_plugin_insert(fx->cat, before, &err), RD_OK);
    assert_int_equal(
        catalog_plugin_modify(fx->cat, "domain-1", "plugin-f", rename_cb, &m, &out, &err),
        RD_ERR_INVALID_PARAMETER);
    assert_int_equal(err.code, RD_ERR_INVALID_PARAMETER);
    assert_string_equal(err.message, "Invalid parameter. (key = name)");
    assert_null(out);
    m.leave_partial = 1;
    assert_int_equal(
        catalog_plugin_modify(fx->cat, "domain-1", "plugin-f", rename_cb, &m, &out, &err),
        RD_ERR_INVALID_PARAMETER);
    assert_null(out);
    assert_int_equal(m.calls, 2);

    assert_int_equal(catalog_plugin_get(fx->cat, "domain-1", "plugin-f", &got, &err), RD_OK);
    assert_true(json_equal(before, got));
    json_decref(got);
    json_decref(before);
}

/* Concurrent read-modify-write cycles never lose an update. */
typedef struct {
    catalog *cat;
    int rounds;
    int failures;
} bump_arg;

static rd_status bump_cb(void *ud, const json_t *current, json_t **updated, rd_error *err)
{
    (void)ud;
    *updated = json_deep_copy(current);
    if (*updated == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    json_int_t n = json_integer_value(json_object_get(current, "counter"));
    json_object_set_new(*updated, "counter", json_integer(n + 1));
    return RD_OK;
}

static void *bump_thread(void *p)
{
    bump_arg *a = p;
    for (int i = 0; i < a->rounds; i++) {
        rd_error err = {0};
        if (catalog_plugin_modify(a->cat, "d", "counter", bump_cb, NULL, NULL, &err) != RD_OK)
            a->failures++;
    }
    return NULL;
}

static void test_modify_concurrent(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    pthread_t th[4];
    bump_arg args[4];
    json_t *rec = make_plugin("d", "counter", "C");
    json_t *got = NULL;

    json_object_set_new(rec, "counter", json_integer(0));
    assert_int_equal(catalog_plugin_insert(fx->cat, rec, &err), RD_OK);
    json_decref(rec);
    for (int i = 0; i < 4; i++) {
        args[i] = (bump_arg){fx->cat, 25, 0};
        assert_int_equal(pthread_create(&th[i], NULL, bump_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(catalog_plugin_get(fx->cat, "d", "counter", &got, &err), RD_OK);
    assert_int_equal(json_integer_value(json_object_get(got, "counter")), 100);
    json_decref(got);
}

/* ---- missing plugins ------------------------------------------------- */

static void test_missing_plugin(void **state)
{
    fixture *fx = *state;
    rd_error err;
    modify_ud m = {.new_name = "X"};
    json_t *out = NULL;

    insert_ok(fx->cat, "domain-1", "plugin-present", "P");
    err.code = RD_ERR_BAD_REQUEST;
    snprintf(err.message, sizeof(err.message), "untouched");
    assert_int_equal(catalog_plugin_get(fx->cat, "domain-1", "plugin-absent", &out, &err),
                     RD_ERR_NOT_FOUND);
    assert_null(out);
    /* get leaves err alone (catalog.h). */
    assert_int_equal(err.code, RD_ERR_BAD_REQUEST);
    assert_string_equal(err.message, "untouched");
    /* Present id, wrong domain. */
    assert_int_equal(catalog_plugin_get(fx->cat, "domain-2", "plugin-present", &out, &err),
                     RD_ERR_NOT_FOUND);
    assert_null(out);

    assert_int_equal(
        catalog_plugin_modify(fx->cat, "domain-1", "plugin-absent", rename_cb, &m, &out, &err),
        RD_ERR_NOT_FOUND);
    assert_int_equal(m.calls, 0);
    assert_null(out);
    assert_int_equal(
        catalog_plugin_modify(fx->cat, "domain-2", "plugin-present", rename_cb, &m, &out, &err),
        RD_ERR_NOT_FOUND);
    assert_int_equal(m.calls, 0);
    assert_int_equal(catalog_plugin_delete(fx->cat, "domain-1", "plugin-absent", &err),
                     RD_ERR_NOT_FOUND);
    assert_int_equal(catalog_plugin_delete(fx->cat, "domain-2", "plugin-present", &err),
                     RD_ERR_NOT_FOUND);
    /* Nothing was created by those calls. */
    expect_absent(fx->cat, "domain-1", "plugin-absent");
    expect_name(fx->cat, "domain-1", "plugin-present", "P");
    assert_int_equal(count_all(fx->cat), 1);
}

/* ---- delete ---------------------------------------------------------- */

static void test_delete(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    insert_ok(fx->cat, "domain-1", "plugin-a", "A");
    insert_ok(fx->cat, "domain-1", "plugin-b", "B");
    insert_ok(fx->cat, "domain-2", "plugin-a", "A2");
    assert_int_equal(count_all(fx->cat), 3);

    assert_int_equal(catalog_plugin_delete(fx->cat, "domain-1", "plugin-a", &err), RD_OK);
    expect_absent(fx->cat, "domain-1", "plugin-a");
    expect_name(fx->cat, "domain-1", "plugin-b", "B");
    expect_name(fx->cat, "domain-2", "plugin-a", "A2");
    assert_int_equal(count_all(fx->cat), 2);
    assert_int_equal(catalog_plugin_delete(fx->cat, "domain-1", "plugin-a", &err),
                     RD_ERR_NOT_FOUND);

    /* The id is free again. */
    insert_ok(fx->cat, "domain-1", "plugin-a", "Reborn");
    expect_name(fx->cat, "domain-1", "plugin-a", "Reborn");

    close_all(fx);
    open_all(fx, "local-repo");
    expect_name(fx->cat, "domain-1", "plugin-a", "Reborn");
    assert_int_equal(count_all(fx->cat), 3);
}

/* ---- collect / count ------------------------------------------------- */

/* Checks that arr[from..] holds exactly the given plugin_ids in order, all
 * in domain_id. */
static void expect_collected(const json_t *arr, size_t from, const char *domain_id,
                             const char *const *ids, size_t n)
{
    assert_int_equal(json_array_size(arr), from + n);
    for (size_t i = 0; i < n; i++) {
        const json_t *rec = json_array_get(arr, from + i);
        assert_string_equal(json_string_value(json_object_get(rec, "domain_id")), domain_id);
        assert_string_equal(json_string_value(json_object_get(rec, "plugin_id")), ids[i]);
    }
}

static void test_collect_by_domain(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *arr = json_array();
    static const char *const in_a[] = {"p1", "p1x", "p2", "p3"};
    static const char *const in_ab[] = {"p0", "p9"};
    static const char *const in_b[] = {"only-b"};

    assert_non_null(arr);
    /* Inserted out of order, mixed across domains whose names share
     * prefixes ("a", "ab", "a-"). */
    insert_ok(fx->cat, "a", "p3", "A3");
    insert_ok(fx->cat, "ab", "p9", "AB9");
    insert_ok(fx->cat, "a", "p1x", "A1x");
    insert_ok(fx->cat, "b", "only-b", "B");
    insert_ok(fx->cat, "a", "p1", "A1");
    insert_ok(fx->cat, "ab", "p0", "AB0");
    insert_ok(fx->cat, "a", "p2", "A2");
    insert_ok(fx->cat, "a-", "p5", "A-5");

    assert_int_equal(catalog_plugin_collect(fx->cat, "a", arr, &err), RD_OK);
    expect_collected(arr, 0, "a", in_a, 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "name")), "A1");
    json_array_clear(arr);

    assert_int_equal(catalog_plugin_collect(fx->cat, "ab", arr, &err), RD_OK);
    expect_collected(arr, 0, "ab", in_ab, 2);
    json_array_clear(arr);

    /* Appends after what the array already holds. */
    json_array_append_new(arr, json_string("existing"));
    assert_int_equal(catalog_plugin_collect(fx->cat, "b", arr, &err), RD_OK);
    expect_collected(arr, 1, "b", in_b, 1);
    assert_string_equal(json_string_value(json_array_get(arr, 0)), "existing");
    json_array_clear(arr);

    /* Unknown domains and strict prefixes of real ones see nothing. */
    assert_int_equal(catalog_plugin_collect(fx->cat, "zzz", arr, &err), RD_OK);
    assert_int_equal(catalog_plugin_collect(fx->cat, "", arr, &err), RD_OK);
    assert_int_equal(catalog_plugin_collect(fx->cat, "c", arr, &err), RD_OK);
    assert_int_equal(json_array_size(arr), 0);

    assert_int_equal(count_all(fx->cat), 8);
    json_decref(arr);
}

/* count_all counts plugins in every domain and nothing else. */
static void test_count_all(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    store_batch *b;
    char name[32];

    assert_int_equal(count_all(fx->cat), 0);
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof(name), "plugin-%d", i);
        insert_ok(fx->cat, i % 2 ? "odd" : "even", name, name);
    }
    assert_int_equal(count_all(fx->cat), 7);
    /* Other families and other key spaces in the plugins family are not
     * local plugins. */
    b = store_batch_new(fx->st);
    assert_non_null(b);
    store_batch_put(b, STORE_CF_INDEX, "L\0x\0y", 5, "{}", 2);
    store_batch_put(b, STORE_CF_CACHE, "L\0x\0z", 5, "{}", 2);
    store_batch_put(b, STORE_CF_PLUGINS, "M\0x\0y", 5, "{}", 2);
    store_batch_put(b, STORE_CF_PLUGINS, "K\0x\0y", 5, "{}", 2);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    assert_int_equal(count_all(fx->cat), 7);
    assert_int_equal(catalog_plugin_delete(fx->cat, "odd", "plugin-1", &err), RD_OK);
    assert_int_equal(count_all(fx->cat), 6);
}

/* ---- concurrency ----------------------------------------------------- */

#define N_THREADS 4
#define N_IDS     50

typedef struct {
    catalog *cat;
    int thread;
    pthread_barrier_t *start;
    int ok;
    int dup;
    int other;
} insert_arg;

static void *insert_thread(void *p)
{
    insert_arg *a = p;
    pthread_barrier_wait(a->start);
    for (int k = 0; k < N_IDS; k++) {
        /* Each thread walks the ids from a different starting point. */
        int i = (k + a->thread * 13) % N_IDS;
        char id[32], owner[32];
        rd_error err = {0};
        snprintf(id, sizeof(id), "plugin-%02d", i);
        snprintf(owner, sizeof(owner), "thread-%d", a->thread);
        json_t *rec =
            json_pack("{s:s, s:s, s:s}", "domain_id", "domain-c", "plugin_id", id, "name", owner);
        rd_status rc = rec ? catalog_plugin_insert(a->cat, rec, &err) : RD_ERR_INTERNAL;
        json_decref(rec);
        if (rc == RD_OK)
            a->ok++;
        else if (rc == RD_ERR_SAVE_UNIQUE_VALUES)
            a->dup++;
        else
            a->other++;
    }
    return NULL;
}

static void test_concurrent_inserts(void **state)
{
    fixture *fx = *state;
    pthread_t th[N_THREADS];
    insert_arg args[N_THREADS];
    pthread_barrier_t start;
    int ok = 0, dup = 0, other = 0;
    json_t *arr = json_array();
    rd_error err = {0};

    assert_non_null(arr);
    assert_int_equal(pthread_barrier_init(&start, NULL, N_THREADS), 0);
    for (int t = 0; t < N_THREADS; t++) {
        args[t] = (insert_arg){fx->cat, t, &start, 0, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, insert_thread, &args[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        ok += args[t].ok;
        dup += args[t].dup;
        other += args[t].other;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(other, 0);
    assert_int_equal(ok, N_IDS);
    assert_int_equal(dup, (N_THREADS - 1) * N_IDS);
    assert_int_equal(count_all(fx->cat), N_IDS);

    /* Every id is stored exactly once, with a winner's record. */
    assert_int_equal(catalog_plugin_collect(fx->cat, "domain-c", arr, &err), RD_OK);
    assert_int_equal(json_array_size(arr), N_IDS);
    for (int i = 0; i < N_IDS; i++) {
        char id[32];
        const json_t *rec = json_array_get(arr, (size_t)i);
        const char *owner = json_string_value(json_object_get(rec, "name"));
        snprintf(id, sizeof(id), "plugin-%02d", i);
        assert_string_equal(json_string_value(json_object_get(rec, "plugin_id")), id);
        assert_non_null(owner);
        assert_int_equal(strncmp(owner, "thread-", 7), 0);
    }
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_repository_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_repository_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_ids_differ, setup, teardown),
        cmocka_unit_test(test_close_null),
        cmocka_unit_test_setup_teardown(test_insert_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_id_other_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_incomplete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_overlong_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modify_applies_and_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modify_failing_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modify_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collect_by_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_inserts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
