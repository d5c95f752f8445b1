/*
 * test_remote_records.c - the in-memory snapshot of the remote repository
 * records over a real store: precedence order, a held snapshot unchanged by
 * later writes, writes seen by the next get with a new generation, local
 * records left out, and a store that is not attached read every time.
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
#include "remote_records.h"
#include "store.h"

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
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_remote_records.XXXXXX");
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
    remote_records_detach(fx->st);
    store_close(fx->st);
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

static void put(fixture *fx, const char *id, const char *name, const char *type, int priority)
{
    rd_error err = {0};
    json_t *rec = json_pack("{s:s, s:s, s:s, s:i}", "repository_id", id, "name", name,
                            "repository_type", type, "priority", priority);
    assert_non_null(rec);
    if (strcmp(type, "remote") == 0)
        assert_int_equal(remote_put(fx->st, rec, &err), RD_OK);
    else
        assert_int_equal(store_put_json(fx->st, STORE_CF_REPOS, id, strlen(id), rec, &err), RD_OK);
    json_decref(rec);
}

/* The names of r's records, in order, joined by ",". */
static const char *order(const remote_records *r, char *buf, size_t len)
{
    size_t i, used = 0;
    const json_t *rec;
    buf[0] = '\0';
    json_array_foreach(remote_records_array(r), i, rec)
    {
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
                                 json_string_value(json_object_get(rec, "name")));
        assert_true(used < len);
    }
    return buf;
}

static remote_records *snap(fixture *fx)
{
    remote_records *r = NULL;
    rd_error err = {0};
    assert_int_equal(remote_records_get(fx->st, &r, &err), RD_OK);
    assert_non_null(r);
    return r;
}

static void test_snapshot_follows_writes(void **state)
{
    fixture *fx = *state;
    remote_records *held, *again, *now;
    rd_error err = {0};
    uint64_t gen;
    char buf[128];

    assert_int_equal(remote_records_attach(fx->st, &err), RD_OK);
    assert_int_equal(remote_records_attach(fx->st, &err), RD_OK); /* idempotent */
    put(fx, "repo-00000000000b", "Bravo", "remote", 20);
    put(fx, "repo-00000000000a", "Alpha", "remote", 10);
    put(fx, "repo-00000000000c", "Charlie", "remote", 10);
    put(fx, "repo-00000000000l", "Local", "local", 0);
    gen = remote_records_generation(fx->st);
    assert_true(gen != 0);

    held = snap(fx);
    assert_string_equal(order(held, buf, sizeof(buf)), "Alpha,Charlie,Bravo");
    assert_non_null(remote_records_find(held, "repo-00000000000b"));
    assert_null(remote_records_find(held, "repo-00000000000l"));
    assert_null(remote_records_find(held, "repo-000000000zzz"));
    again = snap(fx);
    assert_ptr_equal(again, held); /* no write: the same snapshot */
    remote_records_release(again);
    assert_int_equal(remote_records_generation(fx->st), gen);

    /* a new priority and a delete: the next get sees them, a holder not */
    put(fx, "repo-00000000000b", "Bravo", "remote", 5);
    assert_true(remote_records_generation(fx->st) != gen);
    gen = remote_records_generation(fx->st);
    assert_int_equal(remote_delete(fx->st, "repo-00000000000c", &err), RD_OK);
    assert_true(remote_records_generation(fx->st) != gen);
    now = snap(fx);
    assert_string_equal(order(now, buf, sizeof(buf)), "Bravo,Alpha");
    assert_null(remote_records_find(now, "repo-00000000000c"));
    assert_string_equal(order(held, buf, sizeof(buf)), "Alpha,Charlie,Bravo");
    remote_records_release(held);
    remote_records_release(now);

    /* detached: generation 0, every get reads the store */
    remote_records_detach(fx->st);
    assert_int_equal(remote_records_generation(fx->st), 0);
    held = snap(fx);
    again = snap(fx);
    assert_ptr_not_equal(again, held);
    assert_string_equal(order(again, buf, sizeof(buf)), "Bravo,Alpha");
    remote_records_release(held);
    remote_records_release(again);
}

static void test_not_attached_reads_the_store(void **state)
{
    fixture *fx = *state;
    remote_records *r;
    char buf[64];
    r = snap(fx);
    assert_string_equal(order(r, buf, sizeof(buf)), "");
    remote_records_release(r);
    put(fx, "repo-00000000000a", "Alpha", "remote", 10);
    assert_int_equal(remote_records_generation(fx->st), 0);
    r = snap(fx);
    assert_string_equal(order(r, buf, sizeof(buf)), "Alpha");
    remote_records_release(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_follows_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_attached_reads_the_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
