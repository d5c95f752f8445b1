/*
 * test_fuzz_regressions.c - replays, through the same functions the
 * libFuzzer targets call (tests/fuzz/fuzz_<name>.c, included here), every
 * saved finding in tests/fuzz/regressions/<name>/ and every seed of
 * tests/fuzz/corpus/<name>/, so that the normal suite (and its ASan/UBSan
 * run) keeps checking them.  A broken invariant aborts the program.  Also
 * checks directly the values the fixed findings are about.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_REPLAY 1
#include "../fuzz/fuzz_conf.c"
#include "../fuzz/fuzz_gcp_key.c"
#include "../fuzz/fuzz_hosts.c"
#include "../fuzz/fuzz_http_guard.c"
#include "../fuzz/fuzz_query.c"
#include "../fuzz/fuzz_registry_answers.c"
#include "../fuzz/fuzz_registry_headers.c"
#include "../fuzz/fuzz_registry_tags.c"
#include "../fuzz/fuzz_request.c"
#include "../fuzz/fuzz_sigv4.c"
#include "../fuzz/fuzz_stat.c"
#include "../fuzz/fuzz_upstream.c"
#include "../fuzz/fuzz_upstream_answer.c"
#include "../fuzz/fuzz_versions.c"
#include "testkit.h"
#include "util.h"

typedef void (*fuzz_fn)(const uint8_t *data, size_t size);

/* Runs fn over every file of <source>/tests/fuzz/<sub>/<name>; returns how
 * many (0 when the folder does not exist). */
static size_t replay_dir(const char *sub, const char *name, fuzz_fn fn)
{
    const char *src = getenv("REPOD_SOURCE_DIR");
    char dir[1024], path[2048];
    DIR *d;
    struct dirent *e;
    size_t n = 0;

    snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s/%s", src != NULL ? src : "../..", sub, name);
    d = opendir(dir);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = 0;
        char *bytes;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        bytes = util_read_file(path, &len);
        if (bytes == NULL)
            fail_msg("cannot read %s", path);
        fn((const uint8_t *)bytes, len);
        free(bytes);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(const char *name, fuzz_fn fn)
{
    size_t seeds = replay_dir("corpus", name, fn);
    (void)replay_dir("regressions", name, fn);
    if (seeds == 0)
        fail_msg("no seed corpus for fuzz target %s (is REPOD_SOURCE_DIR set?)", name);
}

static void test_replay_conf(void **state)
{
    (void)state;
    replay("conf", fuzz_conf);
}

static void test_replay_gcp_key(void **state)
{
    (void)state;
    replay("gcp_key", fuzz_gcp_key);
}

static void test_replay_hosts(void **state)
{
    (void)state;
    replay("hosts", fuzz_hosts);
}

static void test_replay_http_guard(void **state)
{
    (void)state;
    replay("http_guard", fuzz_http_guard);
}

static void test_replay_query(void **state)
{
    (void)state;
    replay("query", fuzz_query);
}

static void test_replay_registry_answers(void **state)
{
    (void)state;
    replay("registry_answers", fuzz_registry_answers);
}

static void test_replay_registry_headers(void **state)
{
    (void)state;
    replay("registry_headers", fuzz_registry_headers);
}

static void test_replay_registry_tags(void **state)
{
    (void)state;
    replay("registry_tags", fuzz_registry_tags);
}

static void test_replay_request(void **state)
{
    (void)state;
    replay("request", fuzz_request);
}

static void test_replay_sigv4(void **state)
{
    (void)state;
    replay("sigv4", fuzz_sigv4);
}

static void test_replay_stat(void **state)
{
    (void)state;
    replay("stat", fuzz_stat);
}

static void test_replay_upstream(void **state)
{
    (void)state;
    replay("upstream", fuzz_upstream);
    if (fuzz_upstream_st != NULL) {
        store_close(fuzz_upstream_st);
        testkit_rm_tree(fuzz_upstream_dir);
    }
}

static void test_replay_upstream_answer(void **state)
{
    (void)state;
    replay("upstream_answer", fuzz_upstream_answer);
}

static void test_replay_versions(void **state)
{
    (void)state;
    replay("versions", fuzz_versions);
}

/* Expiry numbers too large for an int64 are clamped, not cast. */
static void test_huge_expiry_clamped(void **state)
{
    char *basic = NULL, *token = NULL;
    int64_t ms = 0, s = 0;
    (void)state;
    const char *ecr = "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnNlY3JldA==\","
                      "\"expiresAt\":1.7e21}]}";
    assert_int_equal(registry_ecr_parse_token(ecr, strlen(ecr), &basic, &ms), 0);
    assert_true(ms == (int64_t)1e18);
    free(basic);
    basic = NULL;
    const char *ecr2 = "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnNlY3JldA==\","
                       "\"expiresAt\":\"-1e300\"}]}";
    assert_int_equal(registry_ecr_parse_token(ecr2, strlen(ecr2), &basic, &ms), 0);
    assert_true(ms == -(int64_t)1e18);
    free(basic);
    const char *gcp = "{\"access_token\":\"t\",\"expires_in\":1e300}";
    assert_int_equal(registry_gcp_parse_token(gcp, strlen(gcp), &token, &s), 0);
    assert_true(s == 3600);
    free(token);
}

/* An upstream's error body reaches the message without control bytes, cut
 * to a bound, and without the token repod sent it. */
static void test_upstream_error_body_cleaned(void **state)
{
    rd_error err = {RD_OK, ""};
    char big[1200];
    json_t *body = json_pack("{s:{s:s,s:s}}", "detail", "code", "ERROR_REGISTRY_TIMEOUT", "message",
                             "slow\n\x1b[31mregistry tok-5ecr3t-ZQ8\x7f");
    (void)state;
    assert_int_equal(upstream_answer_status(FETCH_VERSIONS, "repo-0123456789ab", 504, body,
                                            "tok-5ecr3t-ZQ8", &err),
                     RD_ERR_REGISTRY_TIMEOUT);
    assert_string_equal(err.message,
                        "slow??[31mregistry [redacted]? (repository = repo-0123456789ab)");
    json_decref(body);
    body = json_pack("{s:{s:s}}", "detail", "code", "ERROR_X\ttok-5ecr3t-ZQ8");
    assert_int_equal(upstream_answer_status(FETCH_PLUGIN, "repo-0123456789ab", 500, body,
                                            "tok-5ecr3t-ZQ8", &err),
                     RD_ERR_UPSTREAM_BAD_RESPONSE);
    assert_string_equal(err.message, "Bad upstream response. (repository = repo-0123456789ab, "
                                     "status = 500, code = ERROR_X?[redacted])");
    json_decref(body);
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    body =
        json_pack("{s:{s:s,s:s}}", "detail", "code", "ERROR_NO_IMAGE_IN_REGISTRY", "message", big);
    assert_int_equal(
        upstream_answer_status(FETCH_VERSIONS, "repo-0123456789ab", 404, body, NULL, &err),
        RD_ERR_NO_IMAGE_IN_REGISTRY);
    assert_int_equal(strlen(err.message),
                     UPSTREAM_ANSWER_MESSAGE_MAX + strlen(" (repository = repo-0123456789ab)"));
    json_decref(body);
}

/* A tags/list page adds its new tags once, in order; a bad page is refused. */
static void test_tags_page_collect(void **state)
{
    json_t *seen = json_object(), *tags = json_array();
    const char *p1 = "{\"name\": \"a/b\", \"tags\": [\"1.0\", \"1.1\", \"1.0\"]}";
    const char *p2 = "{\"tags\": [\"1.1\", \"2.0\"]}";
    const char *p3 = "{\"tags\": null}";
    const char *bad = "{\"tags\": [\"3.0\", \"\"]}";
    (void)state;
    assert_int_equal(registry_tags_page_collect(p1, strlen(p1), seen, tags), 0);
    assert_int_equal(registry_tags_page_collect(p2, strlen(p2), seen, tags), 0);
    assert_int_equal(registry_tags_page_collect(p3, strlen(p3), seen, tags), 0);
    assert_int_equal(json_array_size(tags), 3);
    assert_string_equal(json_string_value(json_array_get(tags, 2)), "2.0");
    assert_int_equal(registry_tags_page_collect(bad, strlen(bad), seen, tags), -1);
    assert_int_equal(registry_tags_page_collect("[]", 2, seen, tags), -1);
    json_decref(seen);
    json_decref(tags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_conf),
        cmocka_unit_test(test_replay_gcp_key),
        cmocka_unit_test(test_replay_hosts),
        cmocka_unit_test(test_replay_http_guard),
        cmocka_unit_test(test_replay_query),
        cmocka_unit_test(test_replay_registry_answers),
        cmocka_unit_test(test_replay_registry_headers),
        cmocka_unit_test(test_replay_registry_tags),
        cmocka_unit_test(test_replay_request),
        cmocka_unit_test(test_replay_sigv4),
        cmocka_unit_test(test_replay_stat),
        cmocka_unit_test(test_replay_upstream),
        cmocka_unit_test(test_replay_upstream_answer),
        cmocka_unit_test(test_replay_versions),
        cmocka_unit_test(test_huge_expiry_clamped),
        cmocka_unit_test(test_upstream_error_body_cleaned),
        cmocka_unit_test(test_tags_page_collect),
    };
    log_set_level(LOG_LVL_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
