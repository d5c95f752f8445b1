/*
 * test_console.c - unit tests of the console's request mapping
 * (src/console/console.c) and of the generated asset table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "console.h"

static const char *header(const console_answer *a, const char *name)
{
    for (size_t i = 0; a->headers[i] != NULL; i += 2)
        if (strcmp(a->headers[i], name) == 0)
            return a->headers[i + 1];
    return NULL;
}

static void assert_security_headers(const console_answer *a)
{
    assert_string_equal(header(a, "Content-Security-Policy"), CONSOLE_CSP);
    assert_string_equal(header(a, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(header(a, "Referrer-Policy"), "no-referrer");
}

static void test_table_has_index_and_strong_etags(void **state)
{
    const console_asset *index = console_find("/ui/");
    (void)state;
    assert_non_null(index);
    assert_ptr_equal(index, console_find("/ui/index.html"));
    assert_string_equal(index->content_type, "text/html; charset=utf-8");
    assert_non_null(console_find("/ui/app.js"));
    assert_null(console_find("/ui/../index.html"));
    assert_null(console_find("/ui"));
    for (size_t i = 0; i < console_asset_count; i++) {
        const console_asset *a = &console_assets[i];
        assert_int_equal(strlen(a->etag), 66); /* "<64 hex>" */
        assert_int_equal(a->etag[0], '"');
        assert_int_equal(a->data[a->len], 0); /* the table ends each file with a NUL */
        /* the console under /ui/, and the API document */
        assert_true(strncmp(a->path, "/ui/", 4) == 0 || strcmp(a->path, "/openapi.json") == 0);
    }
}

static void test_etag_matching(void **state)
{
    const char *e = "\"abc\"";
    (void)state;
    assert_true(console_etag_matches("\"abc\"", e));
    assert_true(console_etag_matches("W/\"abc\"", e));
    assert_true(console_etag_matches("\"x\", \"abc\"", e));
    assert_true(console_etag_matches("\"x\",W/\"abc\"", e));
    assert_true(console_etag_matches("*", e));
    assert_false(console_etag_matches("\"abcd\"", e));
    assert_false(console_etag_matches("\"ab\"", e));
    assert_false(console_etag_matches("abc", e));
    assert_false(console_etag_matches("", e));
    assert_false(console_etag_matches("\"abc", e));
    assert_false(console_etag_matches(",,, ", e));
}

static void test_routes(void **state)
{
    repod_conf conf;
    console_answer a;
    const console_asset *js = console_find("/ui/app.js");
    (void)state;
    memset(&conf, 0, sizeof(conf));
    conf.ui_enabled = 1;

    assert_int_equal(console_route(&conf, "GET", "/repository/v1/plugin/list", NULL, &a), 0);
    assert_int_equal(console_route(&conf, "GET", "/uix", NULL, &a), 0);
    assert_int_equal(console_route(&conf, "GET", "/", NULL, &a), 0);

    assert_int_equal(console_route(&conf, "GET", "/ui/app.js", NULL, &a), 1);
    assert_int_equal(a.error, RD_OK);
    assert_int_equal(a.status, 200);
    assert_ptr_equal(a.body, (const char *)js->data);
    assert_int_equal(a.len, js->len);
    assert_string_equal(header(&a, "ETag"), js->etag);
    assert_string_equal(header(&a, "Cache-Control"), "no-cache");
    assert_security_headers(&a);

    assert_int_equal(console_route(&conf, "HEAD", "/ui/app.js", js->etag, &a), 1);
    assert_int_equal(a.status, 304);
    assert_int_equal(a.len, 0);
    assert_security_headers(&a);

    assert_int_equal(console_route(&conf, "GET", "/ui", NULL, &a), 1);
    assert_int_equal(a.status, 308);
    assert_string_equal(header(&a, "Location"), "/ui/");
    assert_security_headers(&a);

    assert_int_equal(console_route(&conf, "GET", "/ui/missing.js", NULL, &a), 1);
    assert_int_equal(a.error, RD_ERR_UNKNOWN_ROUTE);
    assert_security_headers(&a);

    assert_int_equal(console_route(&conf, "POST", "/ui/", NULL, &a), 1);
    assert_int_equal(a.error, RD_ERR_METHOD_NOT_ALLOWED);
    assert_string_equal(header(&a, "Allow"), "GET, HEAD");
    assert_security_headers(&a);

    conf.ui_enabled = 0;
    assert_int_equal(console_route(&conf, "GET", "/ui/", NULL, &a), 0);
    assert_int_equal(console_route(&conf, "GET", "/ui", NULL, &a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_has_index_and_strong_etags),
        cmocka_unit_test(test_etag_matching),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
