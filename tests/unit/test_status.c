/*
 * test_status.c - unit tests of the status table (src/core/status.c) and of
 * the log level helpers (src/core/log.c).
 *
 * The expected code -> (error-code string, HTTP status) pairs below are
 * copied by hand from SPEC section 2, not from status.c, so a wrong row in
 * the table fails here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "status.h"

/* SPEC section 2, one row per rd_status. */
static const struct {
    rd_status code;
    const char *name;
    int http;
} spec[] = {
    {RD_OK, "OK", 200},
    /* 400 */
    {RD_ERR_INVALID_JSON, "ERROR_INVALID_JSON", 400},
    {RD_ERR_REQUIRED_PARAMETER, "ERROR_REQUIRED_PARAMETER", 400},
    {RD_ERR_INVALID_PARAMETER, "ERROR_INVALID_PARAMETER", 400},
    {RD_ERR_INVALID_PARAMETER_TYPE, "ERROR_INVALID_PARAMETER_TYPE", 400},
    {RD_ERR_INVALID_IMAGE_LENGTH, "ERROR_INVALID_IMAGE_LENGTH", 400},
    {RD_ERR_INVALID_IMAGE_FORMAT, "ERROR_INVALID_IMAGE_FORMAT", 400},
    {RD_ERR_INVALID_TEMPLATE_SCHEMA, "ERROR_INVALID_TEMPLATE_SCHEMA", 400},
    {RD_ERR_INVALID_REGISTRY_TYPE, "ERROR_INVALID_REGISTRY_TYPE", 400},
    {RD_ERR_DB_QUERY, "ERROR_DB_QUERY", 400},
    {RD_ERR_OPERATOR_VALUE_TYPE, "ERROR_OPERATOR_VALUE_TYPE", 400},
    {RD_ERR_OPERATOR_LIST_VALUE_TYPE, "ERROR_OPERATOR_LIST_VALUE_TYPE", 400},
    {RD_ERR_OPERATOR_BOOLEAN_TYPE, "ERROR_OPERATOR_BOOLEAN_TYPE", 400},
    {RD_ERR_BAD_REQUEST, "ERROR_BAD_REQUEST", 400},
    /* 401 / 403 */
    {RD_ERR_AUTHENTICATE_FAILURE, "ERROR_AUTHENTICATE_FAILURE", 401},
    {RD_ERR_PERMISSION_DENIED, "ERROR_PERMISSION_DENIED", 403},
    /* 404 */
    {RD_ERR_NOT_FOUND, "ERROR_NOT_FOUND", 404},
    {RD_ERR_NO_PLUGIN, "ERROR_NO_PLUGIN", 404},
    {RD_ERR_NO_IMAGE_IN_REGISTRY, "ERROR_NO_IMAGE_IN_REGISTRY", 404},
    {RD_ERR_UNKNOWN_ROUTE, "ERROR_UNKNOWN_ROUTE", 404},
    /* 405 */
    {RD_ERR_METHOD_NOT_ALLOWED, "ERROR_METHOD_NOT_ALLOWED", 405},
    /* 409 */
    {RD_ERR_SAVE_UNIQUE_VALUES, "ERROR_SAVE_UNIQUE_VALUES", 409},
    {RD_ERR_NOT_LOCAL_PLUGIN, "ERROR_NOT_LOCAL_PLUGIN", 409},
    {RD_ERR_EXIST_RESOURCE, "ERROR_EXIST_RESOURCE", 409},
    /* 413 / 429 */
    {RD_ERR_REQUEST_TOO_LARGE, "ERROR_REQUEST_TOO_LARGE", 413},
    {RD_ERR_REQUEST_HEADER_TOO_LARGE, "ERROR_REQUEST_HEADER_TOO_LARGE", 431},
    {RD_ERR_TOO_MANY_REQUESTS, "ERROR_TOO_MANY_REQUESTS", 429},
    /* 500 */
    {RD_ERR_INTERNAL, "ERROR_INTERNAL", 500},
    /* 502 / 503 / 504 */
    {RD_ERR_UPSTREAM_BAD_RESPONSE, "ERROR_UPSTREAM_BAD_RESPONSE", 502},
    {RD_ERR_REGISTRY_BAD_RESPONSE, "ERROR_REGISTRY_BAD_RESPONSE", 502},
    {RD_ERR_UPSTREAM_UNAVAILABLE, "ERROR_UPSTREAM_UNAVAILABLE", 503},
    {RD_ERR_REGISTRY_UNAVAILABLE, "ERROR_REGISTRY_UNAVAILABLE", 503},
    {RD_ERR_UPSTREAM_TIMEOUT, "ERROR_UPSTREAM_TIMEOUT", 504},
    {RD_ERR_REGISTRY_TIMEOUT, "ERROR_REGISTRY_TIMEOUT", 504},
};
#define N_SPEC (sizeof(spec) / sizeof(spec[0]))

/* A new rd_status without a row here fails the build of this test. */
_Static_assert(N_SPEC == RD_STATUS_COUNT, "every rd_status needs a row in spec[]");

/* The table above covers every code exactly once. */
static void test_spec_table_covers_enum(void **state)
{
    int seen[RD_STATUS_COUNT] = {0};
    (void)state;
    for (size_t i = 0; i < N_SPEC; i++) {
        assert_true((int)spec[i].code >= 0 && spec[i].code < RD_STATUS_COUNT);
        seen[spec[i].code]++;
    }
    for (int c = 0; c < RD_STATUS_COUNT; c++)
        if (seen[c] != 1)
            fail_msg("code %d appears %d times in the test's table", c, seen[c]);
}

/* Every code has the name and HTTP status SPEC section 2 gives it. */
static void test_names_and_http_match_spec(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_SPEC; i++) {
        const char *name = rd_status_name(spec[i].code);
        int http = rd_status_http(spec[i].code);
        if (name == NULL || strcmp(name, spec[i].name) != 0)
            fail_msg("code %d: name '%s', expected '%s'", (int)spec[i].code, name ? name : "(null)",
                     spec[i].name);
        if (http != spec[i].http)
            fail_msg("%s: HTTP %d, expected %d", spec[i].name, http, spec[i].http);
    }
}

/* Every failure code is an "ERROR_..." name with a 4xx/5xx status; only
 * RD_OK is "OK"/200. */
static void test_name_shape(void **state)
{
    (void)state;
    assert_string_equal(rd_status_name(RD_OK), "OK");
    assert_int_equal(rd_status_http(RD_OK), 200);
    for (int c = RD_OK + 1; c < RD_STATUS_COUNT; c++) {
        const char *name = rd_status_name((rd_status)c);
        int http = rd_status_http((rd_status)c);
        assert_non_null(name);
        if (strncmp(name, "ERROR_", 6) != 0 || strlen(name) <= 6)
            fail_msg("code %d: name '%s' does not start with ERROR_", c, name);
        for (const char *p = name; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                fail_msg("code %d: name '%s' is not UPPER_SNAKE_CASE", c, name);
        if (http < 400 || http > 599)
            fail_msg("%s: HTTP %d is not an error status", name, http);
    }
}

static void test_names_unique(void **state)
{
    (void)state;
    for (int a = 0; a < RD_STATUS_COUNT; a++)
        for (int b = a + 1; b < RD_STATUS_COUNT; b++)
            if (strcmp(rd_status_name((rd_status)a), rd_status_name((rd_status)b)) == 0)
                fail_msg("codes %d and %d share the name %s", a, b, rd_status_name((rd_status)a));
}

static void test_out_of_range(void **state)
{
    static const int bad[] = {-1, -1000, RD_STATUS_COUNT, RD_STATUS_COUNT + 1, 1000000};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_string_equal(rd_status_name((rd_status)bad[i]), "ERROR_INTERNAL");
        assert_int_equal(rd_status_http((rd_status)bad[i]), 500);
    }
}

/* Each HTTP status the table uses has its standard reason phrase. */
static void test_http_reason(void **state)
{
    static const struct {
        int http;
        const char *reason;
    } reasons[] = {
        {200, "OK"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {413, "Payload Too Large"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        assert_string_equal(rd_http_reason(reasons[i].http), reasons[i].reason);
    /* Every status the table can produce has a real phrase. */
    for (int c = 0; c < RD_STATUS_COUNT; c++) {
        const char *r = rd_http_reason(rd_status_http((rd_status)c));
        assert_non_null(r);
        if (strcmp(r, "Error") == 0)
            fail_msg("HTTP %d of %s has no reason phrase", rd_status_http((rd_status)c),
                     rd_status_name((rd_status)c));
    }
    assert_non_null(rd_http_reason(299));
    assert_non_null(rd_http_reason(-1));
}

/* ---- rd_fail / rd_error_clear ---------------------------------------- */

static rd_status fail_helper(rd_error *err, const char *key)
{
    return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = %s)", key);
}

static void test_rd_fail_formats(void **state)
{
    rd_error err;
    (void)state;
    memset(&err, 0x5a, sizeof(err));
    assert_int_equal(fail_helper(&err, "image"), RD_ERR_REQUIRED_PARAMETER);
    assert_int_equal(err.code, RD_ERR_REQUIRED_PARAMETER);
    assert_string_equal(err.message, "Required parameter. (key = image)");

    assert_int_equal(rd_fail(&err, RD_ERR_INVALID_PARAMETER, "n=%d s=%s c=%c %%", -42, "x", 'q'),
                     RD_ERR_INVALID_PARAMETER);
    assert_int_equal(err.code, RD_ERR_INVALID_PARAMETER);
    assert_string_equal(err.message, "n=-42 s=x c=q %");

    /* A second failure replaces the first entirely. */
    assert_int_equal(rd_fail(&err, RD_ERR_NOT_FOUND, "short"), RD_ERR_NOT_FOUND);
    assert_int_equal(err.code, RD_ERR_NOT_FOUND);
    assert_string_equal(err.message, "short");

    /* An empty message. */
    assert_int_equal(rd_fail(&err, RD_ERR_INTERNAL, "%s", ""), RD_ERR_INTERNAL);
    assert_string_equal(err.message, "");
}

/* An over-long message is cut to the buffer and stays NUL-terminated. */
static void test_rd_fail_truncates(void **state)
{
    char big[RD_ERROR_MESSAGE_MAX * 3];
    rd_error err;
    (void)state;
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(&err, 0x5a, sizeof(err));
    assert_int_equal(rd_fail(&err, RD_ERR_BAD_REQUEST, "%s", big), RD_ERR_BAD_REQUEST);
    assert_int_equal(strlen(err.message), RD_ERROR_MESSAGE_MAX - 1);
    assert_memory_equal(err.message, big, RD_ERROR_MESSAGE_MAX - 1);
}

/* A message cut by the buffer inside a multibyte character must not end in
 * half a character (it becomes a JSON string in the answer). */
static void test_rd_fail_truncates_on_utf8_boundary(void **state)
{
    char big[RD_ERROR_MESSAGE_MAX * 3];
    rd_error err;
    (void)state;
    for (int shift = 0; shift < 4; shift++) {
        size_t n = 0;
        memset(big, 'x', (size_t)shift);
        n = (size_t)shift;
        while (n + 3 < sizeof(big)) { /* "é" (2 bytes) and "€" (3 bytes), alternating */
            if ((n / 5) % 2 == 0) {
                big[n++] = (char)0xC3;
                big[n++] = (char)0xA9;
            } else {
                big[n++] = (char)0xE2;
                big[n++] = (char)0x82;
                big[n++] = (char)0xAC;
            }
        }
        big[n] = '\0';
        rd_fail(&err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = %s)", big);
        json_t *str = json_string(err.message); /* NULL when not valid UTF-8 */
        assert_non_null(str);
        assert_true(strlen(err.message) >= RD_ERROR_MESSAGE_MAX - 4);
        json_decref(str);
    }
}

static void test_rd_fail_null_err(void **state)
{
    (void)state;
    assert_int_equal(rd_fail(NULL, RD_ERR_INTERNAL, "boom %s %d", "x", 1), RD_ERR_INTERNAL);
    assert_int_equal(fail_helper(NULL, "image"), RD_ERR_REQUIRED_PARAMETER);
    assert_int_equal(rd_fail(NULL, RD_OK, "fine"), RD_OK);
    rd_error_clear(NULL);
}

static void test_rd_error_clear(void **state)
{
    rd_error err;
    (void)state;
    rd_fail(&err, RD_ERR_PERMISSION_DENIED, "Permission denied. (role = viewer)");
    rd_error_clear(&err);
    assert_int_equal(err.code, RD_OK);
    assert_string_equal(err.message, "");
}

/* ---- log levels ------------------------------------------------------ */

static void test_log_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_LVL_DEBUG);
    assert_int_equal(log_level_parse("info"), LOG_LVL_INFO);
    assert_int_equal(log_level_parse("warn"), LOG_LVL_WARN);
    assert_int_equal(log_level_parse("warning"), LOG_LVL_WARN);
    assert_int_equal(log_level_parse("error"), LOG_LVL_ERROR);
    /* Case does not matter. */
    assert_int_equal(log_level_parse("DEBUG"), LOG_LVL_DEBUG);
    assert_int_equal(log_level_parse("Info"), LOG_LVL_INFO);
    assert_int_equal(log_level_parse("WARNING"), LOG_LVL_WARN);
    assert_int_equal(log_level_parse("ErRoR"), LOG_LVL_ERROR);
    /* Unknown. */
    assert_int_equal(log_level_parse(NULL), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse("verbose"), -1);
    assert_int_equal(log_level_parse("trace"), -1);
    assert_int_equal(log_level_parse("fatal"), -1);
    assert_int_equal(log_level_parse("warn "), -1);
    assert_int_equal(log_level_parse(" info"), -1);
    assert_int_equal(log_level_parse("inf"), -1);
    assert_int_equal(log_level_parse("debugging"), -1);
    assert_int_equal(log_level_parse("0"), -1);
}

static void test_log_level_name_and_enabled(void **state)
{
    log_level saved = log_get_level();
    (void)state;
    /* Names parse back to their level. */
    for (int l = LOG_LVL_DEBUG; l <= LOG_LVL_ERROR; l++)
        assert_int_equal(log_level_parse(log_level_name((log_level)l)), l);
    assert_string_equal(log_level_name(LOG_LVL_WARN), "warn");

    log_set_level(LOG_LVL_WARN);
    assert_int_equal(log_get_level(), LOG_LVL_WARN);
    assert_false(log_enabled(LOG_LVL_DEBUG));
    assert_false(log_enabled(LOG_LVL_INFO));
    assert_true(log_enabled(LOG_LVL_WARN));
    assert_true(log_enabled(LOG_LVL_ERROR));
    log_set_level(LOG_LVL_DEBUG);
    assert_true(log_enabled(LOG_LVL_DEBUG));
    log_set_level(LOG_LVL_ERROR);
    assert_false(log_enabled(LOG_LVL_WARN));
    assert_true(log_enabled(LOG_LVL_ERROR));
    log_set_level(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_table_covers_enum),
        cmocka_unit_test(test_names_and_http_match_spec),
        cmocka_unit_test(test_name_shape),
        cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_http_reason),
        cmocka_unit_test(test_rd_fail_formats),
        cmocka_unit_test(test_rd_fail_truncates),
        cmocka_unit_test(test_rd_fail_truncates_on_utf8_boundary),
        cmocka_unit_test(test_rd_fail_null_err),
        cmocka_unit_test(test_rd_error_clear),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_log_level_name_and_enabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
