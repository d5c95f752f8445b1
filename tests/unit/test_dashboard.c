/*
 * test_dashboard.c - unit tests of the dashboard template resource
 * (src/catalog/dashboard.c): register / update validation, record building,
 * views, the resource description and the id requests it shares with
 * plugins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "dashboard.h"
#include "resource.h"

#define DOMAIN "d1"
#define NOW    "2022-01-01T08:02:38.094Z"
#define LATER  "2023-05-05T10:00:00.000Z"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", text, jerr.text);
    return v;
}

/* Registers text; returns the record (NULL on failure, with err set). */
static json_t *build(const char *text, rd_error *err)
{
    resource_ctx ctx = {DOMAIN, NOW, NULL};
    json_t *req = parse(text), *rec = NULL;
    rd_status rc = dashboard_build_record(req, &ctx, &rec, err);
    json_decref(req);
    if (rc != RD_OK)
        assert_null(rec);
    return rec;
}

/* Register text must fail with code and a message containing needle. */
static void expect_register_error(const char *text, rd_status code, const char *needle)
{
    rd_error err = {RD_OK, ""};
    json_t *rec = build(text, &err);
    if (rec != NULL || err.code != code || strstr(err.message, needle) == NULL)
        fail_msg("%s: got %s '%s', want %s containing '%s'", text, rd_status_name(err.code),
                 err.message, rd_status_name(code), needle);
}

static void test_register_record(void **state)
{
    rd_error err = {RD_OK, ""};
    json_t *rec = build("{\"template_id\": \"my-board\", \"name\": \"Board\", \"template_type\": "
                        "\"SINGLE\", \"dashboards\": [{\"a\": 1}, 2], \"labels\": [\"x\"], "
                        "\"tags\": {\"k\": \"v\"}, \"domain_id\": \"ignored\"}",
                        &err);
    json_t *want =
        parse("{\"template_id\": \"my-board\", \"name\": \"Board\", \"state\": "
              "\"ENABLED\", \"template_type\": \"SINGLE\", \"dashboards\": [{\"a\": 1}, "
              "2], \"labels\": [\"x\"], \"tags\": {\"k\": \"v\"}, \"domain_id\": \"d1\", "
              "\"created_at\": \"" NOW "\", \"updated_at\": \"" NOW "\"}");
    (void)state;
    assert_non_null(rec);
    assert_true(json_equal(rec, want));
    json_decref(rec);
    json_decref(want);
}

static void test_register_defaults_and_generated_id(void **state)
{
    rd_error err = {RD_OK, ""};
    regex_t re;
    json_t *a = build("{\"name\": \"A\", \"template_id\": \"\"}", &err);
    json_t *b = build("{\"name\": \"B\", \"template_type\": null, \"labels\": null}", &err);
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(regcomp(&re, "^template-[0-9a-f]{12}$", REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&re, json_string_value(json_object_get(a, "template_id")), 0, NULL, 0),
                     0);
    assert_int_equal(regexec(&re, json_string_value(json_object_get(b, "template_id")), 0, NULL, 0),
                     0);
    regfree(&re);
    assert_string_not_equal(json_string_value(json_object_get(a, "template_id")),
                            json_string_value(json_object_get(b, "template_id")));
    assert_string_equal(json_string_value(json_object_get(b, "template_type")), "MULTI");
    assert_int_equal(json_array_size(json_object_get(b, "dashboards")), 0);
    assert_int_equal(json_array_size(json_object_get(b, "labels")), 0);
    assert_int_equal(json_object_size(json_object_get(b, "tags")), 0);
    json_decref(a);
    json_decref(b);
}

static void test_register_errors_in_order(void **state)
{
    (void)state;
    /* unknown keys first, in request order */
    expect_register_error("{\"foo\": 1, \"name\": 5}", RD_ERR_INVALID_PARAMETER, "key = foo");
    expect_register_error("{\"name\": \"x\", \"state\": \"ENABLED\"}", RD_ERR_INVALID_PARAMETER,
                          "key = state");
    expect_register_error("{\"name\": \"x\", \"image\": \"a\"}", RD_ERR_INVALID_PARAMETER,
                          "key = image");
    /* then types, in table order */
    expect_register_error("{\"labels\": 1, \"template_id\": 2}", RD_ERR_INVALID_PARAMETER_TYPE,
                          "key = template_id, type = string");
    expect_register_error("{\"name\": 1}", RD_ERR_INVALID_PARAMETER_TYPE,
                          "key = name, type = string");
    expect_register_error("{\"name\": \"x\", \"template_type\": []}", RD_ERR_INVALID_PARAMETER_TYPE,
                          "key = template_type, type = string");
    expect_register_error("{\"name\": \"x\", \"dashboards\": {}}", RD_ERR_INVALID_PARAMETER_TYPE,
                          "key = dashboards, type = array");
    expect_register_error("{\"name\": \"x\", \"labels\": [\"a\", 1]}",
                          RD_ERR_INVALID_PARAMETER_TYPE, "key = labels, type = array of strings");
    expect_register_error("{\"name\": \"x\", \"tags\": \"t\"}", RD_ERR_INVALID_PARAMETER_TYPE,
                          "key = tags, type = object");
    /* then name, the id rules, the type */
    expect_register_error("{}", RD_ERR_REQUIRED_PARAMETER, "key = name");
    expect_register_error("{\"name\": \"\", \"template_type\": \"BAD\"}", RD_ERR_REQUIRED_PARAMETER,
                          "key = name");
    expect_register_error("{\"name\": \"x\", \"template_id\": \"Upper\"}", RD_ERR_INVALID_PARAMETER,
                          "key = template_id");
    expect_register_error("{\"name\": \"x\", \"template_id\": \"-lead\"}", RD_ERR_INVALID_PARAMETER,
                          "key = template_id");
    expect_register_error("{\"name\": \"x\", \"template_id\": \"a..b\"}", RD_ERR_INVALID_PARAMETER,
                          "doubled separator");
    expect_register_error("{\"name\": \"x\", \"template_id\": "
                          "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                          RD_ERR_INVALID_PARAMETER, "longer than 40 characters");
    expect_register_error(
        "{\"name\": \"x\", \"template_id\": \"ok\", \"template_type\": \"multi\"}",
        RD_ERR_INVALID_PARAMETER, "key = template_type, value = multi");
}

static void test_register_bad_calls(void **state)
{
    rd_error err = {RD_OK, ""};
    resource_ctx no_domain = {NULL, NOW, NULL};
    json_t *req = parse("{\"name\": \"x\"}"), *arr = parse("[]"), *rec = NULL;
    (void)state;
    assert_int_equal(dashboard_build_record(req, &no_domain, &rec, &err), RD_ERR_INTERNAL);
    assert_null(rec);
    assert_int_equal(dashboard_build_record(arr, &(resource_ctx){DOMAIN, NOW, NULL}, &rec, &err),
                     RD_ERR_INVALID_PARAMETER_TYPE);
    assert_int_equal(dashboard_build_record(req, NULL, NULL, &err), RD_ERR_INTERNAL);
    json_decref(req);
    json_decref(arr);
}

static void test_update(void **state)
{
    rd_error err = {RD_OK, ""};
    json_t *rec = build("{\"template_id\": \"b\", \"name\": \"Old\", \"labels\": [\"l\"]}", &err);
    json_t *req = parse("{\"template_id\": \"b\", \"name\": \"New\", \"template_type\": "
                        "\"SINGLE\", \"dashboards\": [1], \"tags\": {\"t\": 1}, \"labels\": null}");
    json_t *out = NULL;
    (void)state;
    assert_int_equal(dashboard_apply_update(rec, req, LATER, &out, &err), RD_OK);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "New");
    assert_string_equal(json_string_value(json_object_get(out, "template_type")), "SINGLE");
    assert_int_equal(json_array_size(json_object_get(out, "dashboards")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "labels"), 0)),
                        "l"); /* null: no change */
    assert_string_equal(json_string_value(json_object_get(out, "created_at")), NOW);
    assert_string_equal(json_string_value(json_object_get(out, "updated_at")), LATER);
    assert_string_equal(json_string_value(json_object_get(rec, "name")), "Old"); /* untouched */
    json_decref(out);
    json_decref(req);
    json_decref(rec);
}

static void expect_update_error(const char *text, rd_status code, const char *needle)
{
    rd_error err = {RD_OK, ""};
    json_t *rec = build("{\"template_id\": \"b\", \"name\": \"Old\"}", &err);
    json_t *req = parse(text), *out = NULL;
    rd_status rc = dashboard_apply_update(rec, req, LATER, &out, &err);
    if (rc != code || out != NULL || strstr(err.message, needle) == NULL)
        fail_msg("%s: got %s '%s', want %s containing '%s'", text, rd_status_name(rc), err.message,
                 rd_status_name(code), needle);
    json_decref(req);
    json_decref(rec);
}

static void test_update_errors(void **state)
{
    (void)state;
    expect_update_error("{\"template_id\": \"b\", \"state\": \"DISABLED\"}",
                        RD_ERR_INVALID_PARAMETER, "key = state, reason = update cannot change it");
    expect_update_error("{\"template_id\": \"b\", \"bogus\": 1}", RD_ERR_INVALID_PARAMETER,
                        "key = bogus");
    expect_update_error("{\"template_id\": \"b\", \"tags\": []}", RD_ERR_INVALID_PARAMETER_TYPE,
                        "key = tags");
    expect_update_error("{\"name\": \"x\"}", RD_ERR_REQUIRED_PARAMETER, "key = template_id");
    expect_update_error("{\"template_id\": \"other\"}", RD_ERR_INVALID_PARAMETER, "does not match");
    expect_update_error("{\"template_id\": \"b\", \"name\": \"\"}", RD_ERR_REQUIRED_PARAMETER,
                        "key = name");
    expect_update_error("{\"template_id\": \"b\", \"template_type\": \"X\"}",
                        RD_ERR_INVALID_PARAMETER, "key = template_type");
}

static void test_view(void **state)
{
    rd_error err = {RD_OK, ""};
    json_t *rec = build("{\"template_id\": \"v\", \"name\": \"V\"}", &err);
    json_t *info = parse("{\"repository_id\": \"repo-1\", \"name\": \"Local\", "
                         "\"repository_type\": \"local\"}");
    json_t *view = dashboard_view(rec, info);
    (void)state;
    assert_non_null(view);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(view, "repository_info"), "endpoint")),
        "");
    assert_null(json_object_get(info, "endpoint")); /* a copy was completed */
    assert_null(json_object_get(rec, "repository_info"));
    assert_int_equal(json_object_size(view), json_object_size(rec) + 1);
    assert_null(dashboard_view(NULL, info));
    json_decref(view);
    json_decref(info);
    json_decref(rec);
}

static void test_description_and_id_requests(void **state)
{
    rd_error err = {RD_OK, ""};
    json_t *ok = parse("{\"template_id\": \"a\", \"repository_id\": \"r\", \"only\": [\"name\"]}");
    json_t *plugin_key = parse("{\"plugin_id\": \"a\"}");
    (void)state;
    assert_string_equal(resource_dashboard.id_field, "template_id");
    assert_string_equal(resource_dashboard.route, "dashboard-template");
    assert_string_not_equal(resource_dashboard.store_prefix, resource_plugin.store_prefix);
    assert_true(resource_has_key(resource_dashboard.list_eq_keys, "template_type"));
    assert_false(resource_has_key(resource_dashboard.list_eq_keys, "plugin_id"));
    assert_int_equal(catalog_check_id_request(&resource_dashboard, ok, 1, &err), RD_OK);
    assert_int_equal(catalog_check_id_request(&resource_dashboard, ok, 0, &err),
                     RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "key = repository_id"));
    assert_int_equal(catalog_check_id_request(&resource_dashboard, plugin_key, 0, &err),
                     RD_ERR_INVALID_PARAMETER);
    assert_int_equal(catalog_check_id_request(&resource_plugin, plugin_key, 0, &err), RD_OK);
    json_decref(ok);
    json_decref(plugin_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_record),
        cmocka_unit_test(test_register_defaults_and_generated_id),
        cmocka_unit_test(test_register_errors_in_order),
        cmocka_unit_test(test_register_bad_calls),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_update_errors),
        cmocka_unit_test(test_view),
        cmocka_unit_test(test_description_and_id_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
