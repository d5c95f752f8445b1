/*
 * test_breakers.c - unit tests of the circuit breakers of remote
 * repositories (src/remote/breakers.c): states, admission, the timed-probe
 * schedule, restore after a restart, drop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "../../src/remote/breakers.h"

static void test_states_follow_failures_in_a_row(void **state)
{
    breakers *bs = breakers_new();
    (void)state;
    assert_non_null(bs);
    assert_string_equal(breakers_record(bs, "repo-a", 0), "degraded");
    assert_string_equal(breakers_record(bs, "repo-a", 0), "degraded");
    assert_int_equal(breakers_is_offline(bs, "repo-a"), 0);
    assert_string_equal(breakers_record(bs, "repo-a", 0), "offline");
    assert_int_equal(breakers_is_offline(bs, "repo-a"), 1);
    /* another repository is not affected */
    assert_int_equal(breakers_is_offline(bs, "repo-b"), 0);
    assert_string_equal(breakers_record(bs, "repo-a", 1), "ok");
    assert_int_equal(breakers_is_offline(bs, "repo-a"), 0);
    /* one success resets the count */
    assert_string_equal(breakers_record(bs, "repo-a", 0), "degraded");
    breakers_free(bs);
}

static void test_open_breaker_admits_only_forced_calls(void **state)
{
    breakers *bs = breakers_new();
    int64_t wait_ms = -1;
    (void)state;
    assert_int_equal(breakers_admit(bs, "repo-a", 0, &wait_ms), 1); /* unknown: closed */
    for (int i = 0; i < 3; i++)
        breakers_record(bs, "repo-a", 0);
    assert_int_equal(breakers_admit(bs, "repo-a", 0, &wait_ms), 0);
    /* the first back-off is 1 s, shortened by at most 20 % */
    assert_true(wait_ms > 0 && wait_ms <= 1000);
    assert_int_equal(breakers_admit(bs, "repo-a", 1, &wait_ms), 1);
    breakers_free(bs);
}

static void test_probes_fall_due_and_are_rescheduled(void **state)
{
    breakers *bs = breakers_new();
    char due[4][BREAKERS_ID_MAX];
    (void)state;
    breakers_record(bs, "repo-a", 0); /* degraded: a probe after about 1 s */
    assert_int_equal(breakers_take_due(bs, due, 4), 0);
    usleep(1050 * 1000);
    assert_int_equal(breakers_take_due(bs, due, 4), 1);
    assert_string_equal(due[0], "repo-a");
    /* taken: not due again at once */
    assert_int_equal(breakers_take_due(bs, due, 4), 0);
    /* a success stops the probes */
    breakers_record(bs, "repo-a", 1);
    usleep(1050 * 1000);
    assert_int_equal(breakers_take_due(bs, due, 4), 0);
    breakers_free(bs);
}

static void test_restore_and_drop(void **state)
{
    breakers *bs = breakers_new();
    char due[4][BREAKERS_ID_MAX];
    (void)state;
    breakers_restore(bs, "repo-off", "offline");
    breakers_restore(bs, "repo-deg", "degraded");
    breakers_restore(bs, "repo-ok", "ok"); /* nothing to restore */
    assert_int_equal(breakers_is_offline(bs, "repo-off"), 1);
    assert_int_equal(breakers_is_offline(bs, "repo-deg"), 0);
    usleep(1050 * 1000);
    assert_int_equal(breakers_take_due(bs, due, 4), 2);
    breakers_drop(bs, "repo-off");
    assert_int_equal(breakers_is_offline(bs, "repo-off"), 0);
    /* a degraded breaker still counts toward offline after a restore */
    assert_string_equal(breakers_record(bs, "repo-deg", 0), "degraded");
    assert_string_equal(breakers_record(bs, "repo-deg", 0), "offline");
    breakers_free(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_follow_failures_in_a_row),
        cmocka_unit_test(test_open_breaker_admits_only_forced_calls),
        cmocka_unit_test(test_probes_fall_due_and_are_rescheduled),
        cmocka_unit_test(test_restore_and_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
