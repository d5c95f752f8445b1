/*
 * test_obs.c - unit tests of the metrics counters (src/core/obs.c): bucket
 * placement and cumulative snapshots, bounded label tables ("other"), the
 * result mappings of upstream requests and registry lookups.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"

static void test_buckets_are_cumulative(void **state)
{
    obs_hist h;
    obs_hist_snap s;
    (void)state;
    memset(&h, 0, sizeof(h));
    obs_hist_observe(&h, 500);      /* 0.5 ms -> le 0.001 */
    obs_hist_observe(&h, 1000);     /* exactly 1 ms -> le 0.001 */
    obs_hist_observe(&h, 30000);    /* 30 ms -> le 0.05 */
    obs_hist_observe(&h, 60000000); /* 60 s -> +Inf only */
    obs_hist_observe(&h, -5);       /* counts as 0 */
    obs_hist_snapshot(&h, &s);
    assert_int_equal(s.cum[0], 3);
    assert_int_equal(s.cum[4], 3); /* le 0.025 */
    assert_int_equal(s.cum[5], 4); /* le 0.05 */
    assert_int_equal(s.cum[OBS_BUCKETS - 1], 4);
    assert_int_equal(s.cum[OBS_BUCKETS], 5);
    assert_int_equal(s.count, 5);
    assert_true(s.sum_s > 60.03 && s.sum_s < 60.04);
    for (size_t i = 1; i < OBS_BUCKETS; i++)
        assert_true(obs_bucket_le[i] > obs_bucket_le[i - 1]);
    {
        obs_hist_snap total = s; /* shards of one series add up */
        obs_hist_add(&total, &s);
        assert_int_equal(total.count, 10);
        assert_int_equal(total.cum[0], 6);
        assert_true(total.sum_s > 120.06 && total.sum_s < 120.08);
    }
}

static void test_tables_are_bounded(void **state)
{
    obs_upstream_row *rows = calloc(OBS_ROWS_MAX + 1, sizeof(*rows));
    obs_registry_row *regs = calloc(OBS_ROWS_MAX + 1, sizeof(*regs));
    char id[32];
    size_t n;
    (void)state;
    assert_non_null(rows);
    assert_non_null(regs);
    for (int i = 0; i < OBS_ROWS_MAX + 10; i++) {
        snprintf(id, sizeof(id), "repo-%d", i);
        obs_upstream_observe(id, OBS_UP_OK, 100);
    }
    obs_upstream_observe("repo-0", OBS_UP_TIMEOUT, 100);
    obs_upstream_observe(NULL, OBS_UP_OK, 100); /* not counted */
    n = obs_upstream_snapshot(rows, OBS_ROWS_MAX + 1);
    assert_int_equal(n, OBS_ROWS_MAX + 1);
    assert_string_equal(rows[0].label, "repo-0");
    assert_int_equal(rows[0].h[OBS_UP_OK].count, 1);
    assert_int_equal(rows[0].h[OBS_UP_TIMEOUT].count, 1);
    assert_string_equal(rows[OBS_ROWS_MAX].label, "other");
    assert_int_equal(rows[OBS_ROWS_MAX].h[OBS_UP_OK].count, 10);

    obs_registry_count("ghcr.io", OBS_REG_OK);
    obs_registry_count(NULL, OBS_REG_REFUSED);
    obs_registry_count("other", OBS_REG_ERROR); /* a host named "other" shares the row */
    n = obs_registry_snapshot(regs, OBS_ROWS_MAX + 1);
    assert_int_equal(n, 2);
    assert_string_equal(regs[0].label, "ghcr.io");
    assert_int_equal(regs[0].n[OBS_REG_OK], 1);
    assert_string_equal(regs[1].label, "other");
    assert_int_equal(regs[1].n[OBS_REG_REFUSED], 1);
    assert_int_equal(regs[1].n[OBS_REG_ERROR], 1);
    free(rows);
    free(regs);
}

static void test_result_mappings(void **state)
{
    (void)state;
    assert_int_equal(obs_up_result_of(RD_OK), OBS_UP_OK);
    assert_int_equal(obs_up_result_of(RD_ERR_NOT_FOUND), OBS_UP_NOT_FOUND);
    assert_int_equal(obs_up_result_of(RD_ERR_UPSTREAM_TIMEOUT), OBS_UP_TIMEOUT);
    assert_int_equal(obs_up_result_of(RD_ERR_UPSTREAM_UNAVAILABLE), OBS_UP_UNAVAILABLE);
    assert_int_equal(obs_up_result_of(RD_ERR_UPSTREAM_BAD_RESPONSE), OBS_UP_BAD_RESPONSE);
    assert_int_equal(obs_up_result_of(RD_ERR_INTERNAL), OBS_UP_ERROR);
    assert_string_equal(obs_up_result_name(OBS_UP_BAD_RESPONSE), "bad_response");
    assert_int_equal(obs_reg_result_of(RD_OK), OBS_REG_OK);
    assert_int_equal(obs_reg_result_of(RD_ERR_NO_IMAGE_IN_REGISTRY), OBS_REG_NOT_FOUND);
    assert_int_equal(obs_reg_result_of(RD_ERR_REGISTRY_TIMEOUT), OBS_REG_ERROR);
    assert_int_equal(obs_reg_result_of(RD_ERR_INVALID_PARAMETER), OBS_REG_REFUSED);
    assert_string_equal(obs_reg_result_name(OBS_REG_REFUSED), "refused");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_are_cumulative),
        cmocka_unit_test(test_tables_are_bounded),
        cmocka_unit_test(test_result_mappings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
