/*
 * test_metrics.c - unit tests of the text helpers of /metrics
 * (src/edge/metrics.c): label escaping and the samples of one histogram.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../src/edge/metrics.h"

static void test_label_values_are_escaped(void **state)
{
    char buf[64];
    (void)state;
    assert_string_equal(metrics_escape("plain-id_1", buf, sizeof(buf)), "plain-id_1");
    assert_string_equal(metrics_escape("a\"b\\c\nd", buf, sizeof(buf)), "a\\\"b\\\\c\\nd");
    /* truncated, never an escape cut in half */
    assert_string_equal(metrics_escape("\"\"\"\"", buf, 6), "\\\"\\\"");
}

static void test_histogram_samples(void **state)
{
    obs_hist h;
    obs_hist_snap s;
    struct evbuffer *out = evbuffer_new();
    char *text;
    size_t len;
    (void)state;
    memset(&h, 0, sizeof(h));
    obs_hist_observe(&h, 2000);
    obs_hist_snapshot(&h, &s);
    assert_int_equal(metrics_hist(out, "x_seconds", "route=\"r\"", &s), 0);
    len = evbuffer_get_length(out);
    text = (char *)evbuffer_pullup(out, -1);
    text[len - 1] = '\0'; /* the final newline */
    assert_non_null(strstr(text, "x_seconds_bucket{route=\"r\",le=\"0.001\"} 0\n"));
    assert_non_null(strstr(text, "x_seconds_bucket{route=\"r\",le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(text, "x_seconds_bucket{route=\"r\",le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(text, "x_seconds_sum{route=\"r\"} 0.002000\n"));
    assert_non_null(strstr(text, "x_seconds_count{route=\"r\"} 1"));
    evbuffer_drain(out, len);
    assert_int_equal(metrics_hist(out, "y", "", &s), 0);
    text = (char *)evbuffer_pullup(out, -1);
    assert_true(strncmp(text, "y_bucket{le=\"0.001\"} 0\n", 23) == 0);
    evbuffer_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_histogram_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
