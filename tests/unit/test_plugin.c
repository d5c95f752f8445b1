/*
 * test_plugin.c - unit tests of the plugin resource (src/catalog/plugin.c):
 * register / update validation and record building, id requests, views.
 *
 * Besides the table tests here, data-driven cases live in
 * $REPOD_TEST_DATA/plugin/{register,update}/{valid,invalid}/ *.json; adding a
 * case is adding a file.  Case format:
 *   valid:   {"request": {...}, "expect": {key: exact value, ...},
 *             "absent": [keys], "default_urls": {...}, "register": {...}}
 *   invalid: {"request": {...}, "code": "ERROR_...",
 *             "message_contains": "text" or ["text", ...],
 *             "default_urls": {...}, "register": {...}}
 * "default_urls" (optional) goes into plugin_ctx; "register" (update cases,
 * optional) is the register request that builds the record to update (the
 * default is base_register_request()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define DOMAIN "domain-123456789012"
#define NOW    "2022-01-01T08:02:38.094Z"
#define LATER  "2023-05-05T10:00:00.000Z"

/* The register example of seed-plugin-api.md, verbatim. */
static const char *const seed_register =
    "{"
    "  \"name\": \"JIRA Issue notification\","
    "  \"service_type\": \"notification.Procotol\","
    "  \"image\": \"pyengine/plugin-jira-noti-protocol\","
    "  \"registry_type\": \"DOCKER_HUB\","
    "  \"registry_config\": {},"
    "  \"provider\": \"atlassian\","
    "  \"capability\": {\"supported_schema\": [\"atlassian_jira\"]},"
    "  \"template\": {\"options\": {\"schema\": {"
    "      \"type\": \"object\", \"required\": [],"
    "      \"properties\": {"
    "        \"project_id\": {\"type\": \"string\", \"title\": \"Project ID\", \"minLength\": 4.0},"
    "        \"sa_name\": {\"title\": \"Service Account\", \"type\": \"string\", \"minLength\": "
    "4.0}"
    "      }}}},"
    "  \"labels\": [\"jira\", \"atlassian\", \"notification\"],"
    "  \"tags\": {\"description\": \"Atlassian JIRA Issue notification\","
    "           \"icon\": \"https://icon-path/jira-icon.png\"}"
    "}";

/* The fields of a stored record, exactly (SPEC 3, plugin.h). */
static const char *const record_fields[] = {
    "plugin_id",     "name",         "state",           "resource_type", "image",      "provider",
    "registry_type", "registry_url", "registry_config", "capability",    "template",   "labels",
    "tags",          "docs",         "domain_id",       "created_at",    "updated_at", NULL,
};

/* ---- helpers ----------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    return v;
}

static plugin_ctx make_ctx(const json_t *default_urls)
{
    plugin_ctx ctx = {DOMAIN, NOW, default_urls};
    return ctx;
}

/* Returns the error message when the checks of record fail, else NULL;
 * buf holds the message. */
static const char *record_shape_problem(const json_t *rec, char *buf, size_t size)
{
    size_t n = 0;
    for (n = 0; record_fields[n] != NULL; n++) {
        if (json_object_get(rec, record_fields[n]) == NULL) {
            snprintf(buf, size, "record misses %s", record_fields[n]);
            return buf;
        }
    }
    if (json_object_size(rec) != n) {
        char *dump = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(buf, size, "record has %zu keys, want %zu: %s", json_object_size(rec), n,
                 dump != NULL ? dump : "?");
        free(dump);
        return buf;
    }
    return NULL;
}

static void assert_record_shape(const json_t *rec)
{
    char buf[1024];
    const char *problem = record_shape_problem(rec, buf, sizeof(buf));
    if (problem != NULL)
        fail_msg("%s", problem);
}

static void assert_str_field(const json_t *obj, const char *key, const char *want)
{
    const char *got = json_string_value(json_object_get(obj, key));
    if (got == NULL)
        fail_msg("%s is missing or not a string", key);
    assert_string_equal(got, want);
}

/* Builds a record from text and expects success; returns it (caller frees). */
static json_t *register_ok(const char *text, const json_t *default_urls)
{
    json_t *req = parse(text);
    json_t *rec = NULL;
    rd_error err;
    plugin_ctx ctx = make_ctx(default_urls);
    rd_status rc;

    rd_error_clear(&err);
    rc = plugin_build_record(req, &ctx, &rec, &err);
    if (rc != RD_OK)
        fail_msg("register failed: %s %s for %s", rd_status_name(rc), err.message, text);
    assert_non_null(rec);
    assert_record_shape(rec);
    json_decref(req);
    return rec;
}

/* Expects register of text to fail with code and a message containing want. */
static void register_fails(const char *text, const json_t *default_urls, rd_status code,
                           const char *want)
{
    json_t *req = parse(text);
    json_t *rec = (json_t *)0x1;
    rd_error err;
    plugin_ctx ctx = make_ctx(default_urls);
    rd_status rc;

    rd_error_clear(&err);
    rc = plugin_build_record(req, &ctx, &rec, &err);
    if (rc != code || err.code != code || strstr(err.message, want) == NULL)
        fail_msg("register %s: got %s \"%s\", want %s containing \"%s\"", text, rd_status_name(rc),
                 err.message, rd_status_name(code), want);
    assert_null(rec);
    json_decref(req);
}

/* A register request with image and extra members (a JSON fragment that
 * starts with a comma, or ""). */
static char *req_with(const char *image, const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"name\": \"n\", \"resource_type\": \"inventory.Collector\", \"image\": \"%s\"%s}",
             image, extra);
    return buf;
}

/* The register request behind the records that update tests change. */
static const char *base_register_request(void)
{
    return "{\"name\": \"JIRA Issue notification\", \"resource_type\": \"notification.Protocol\","
           " \"image\": \"pyengine/plugin-jira-noti-protocol\", \"provider\": \"atlassian\","
           " \"capability\": {\"supported_schema\": [\"atlassian_jira\"]},"
           " \"template\": {\"options\": {\"schema\": {\"type\": \"object\"}}},"
           " \"labels\": [\"jira\"], \"tags\": {\"description\": \"old\"}}";
}

/* ---- register ---------------------------------------------------------- */

static void test_register_seed_example(void **state)
{
    json_t *req = parse(seed_register);
    json_t *rec = register_ok(seed_register, NULL);
    json_t *want_caps = parse("{\"supported_schema\": [\"atlassian_jira\"]}");
    json_t *want_labels = parse("[\"jira\", \"atlassian\", \"notification\"]");
    (void)state;

    assert_str_field(rec, "plugin_id", "plugin-jira-noti-protocol");
    assert_str_field(rec, "name", "JIRA Issue notification");
    assert_str_field(rec, "state", "ENABLED");
    assert_str_field(rec, "resource_type", "notification.Procotol");
    assert_str_field(rec, "image", "pyengine/plugin-jira-noti-protocol");
    assert_str_field(rec, "provider", "atlassian");
    assert_str_field(rec, "registry_type", "DOCKER_HUB");
    assert_str_field(rec, "registry_url", "registry.hub.docker.com");
    assert_str_field(rec, "domain_id", DOMAIN);
    assert_str_field(rec, "created_at", NOW);
    assert_str_field(rec, "updated_at", NOW);
    assert_null(json_object_get(rec, "service_type"));
    assert_null(json_object_get(rec, "repository_info"));
    assert_true(json_equal(json_object_get(rec, "capability"), want_caps));
    assert_true(json_equal(json_object_get(rec, "labels"), want_labels));
    assert_true(json_equal(json_object_get(rec, "template"), json_object_get(req, "template")));
    assert_true(json_equal(json_object_get(rec, "tags"), json_object_get(req, "tags")));
    assert_int_equal(json_object_size(json_object_get(rec, "registry_config")), 0);

    json_decref(want_labels);
    json_decref(want_caps);
    json_decref(rec);
    json_decref(req);
}

static void test_register_defaults(void **state)
{
    json_t *rec = register_ok(req_with("plugin-x", ""), NULL);
    (void)state;

    assert_str_field(rec, "plugin_id", "plugin-x");
    assert_str_field(rec, "provider", "");
    assert_str_field(rec, "registry_type", "DOCKER_HUB");
    assert_str_field(rec, "registry_url", "registry.hub.docker.com");
    assert_true(json_is_object(json_object_get(rec, "registry_config")));
    assert_true(json_is_object(json_object_get(rec, "capability")));
    assert_true(json_is_object(json_object_get(rec, "template")));
    assert_true(json_is_object(json_object_get(rec, "tags")));
    assert_true(json_is_array(json_object_get(rec, "labels")));
    assert_int_equal(json_array_size(json_object_get(rec, "labels")), 0);
    json_decref(rec);

    /* null means "not given" */
    rec = register_ok(req_with("plugin-x", ", \"provider\": null, \"labels\": null,"
                                           " \"registry_type\": null, \"template\": null"),
                      NULL);
    assert_str_field(rec, "provider", "");
    assert_str_field(rec, "registry_type", "DOCKER_HUB");
    assert_true(json_is_array(json_object_get(rec, "labels")));
    assert_true(json_is_object(json_object_get(rec, "template")));
    json_decref(rec);
}

static void test_register_record_is_a_copy(void **state)
{
    json_t *req = parse(seed_register);
    json_t *rec = NULL;
    plugin_ctx ctx = make_ctx(NULL);
    rd_error err;
    (void)state;

    assert_int_equal(plugin_build_record(req, &ctx, &rec, &err), RD_OK);
    assert_int_equal(json_array_append_new(json_object_get(req, "labels"), json_string("x")), 0);
    json_object_clear(json_object_get(req, "tags"));
    assert_int_equal(json_array_size(json_object_get(rec, "labels")), 3);
    assert_int_equal(json_object_size(json_object_get(rec, "tags")), 2);
    /* one reference each: freeing the request leaves the record intact */
    json_decref(req);
    assert_str_field(rec, "name", "JIRA Issue notification");
    json_decref(rec);
}

static void test_register_required(void **state)
{
    (void)state;
    register_fails("{\"resource_type\": \"a.B\", \"image\": \"x\"}", NULL,
                   RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = name)");
    register_fails("{\"name\": \"\", \"resource_type\": \"a.B\", \"image\": \"x\"}", NULL,
                   RD_ERR_REQUIRED_PARAMETER, "(key = name)");
    register_fails("{\"name\": null, \"resource_type\": \"a.B\", \"image\": \"x\"}", NULL,
                   RD_ERR_REQUIRED_PARAMETER, "(key = name)");
    register_fails("{\"name\": \"n\", \"image\": \"x\"}", NULL, RD_ERR_REQUIRED_PARAMETER,
                   "Required parameter. (key = resource_type)");
    register_fails("{\"name\": \"n\", \"service_type\": \"\", \"image\": \"x\"}", NULL,
                   RD_ERR_REQUIRED_PARAMETER, "(key = resource_type)");
    register_fails("{\"name\": \"n\", \"resource_type\": \"a.B\"}", NULL, RD_ERR_REQUIRED_PARAMETER,
                   "Required parameter. (key = image)");
    register_fails("{\"name\": \"n\", \"resource_type\": \"a.B\", \"image\": \"\"}", NULL,
                   RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = image)");
    register_fails("{}", NULL, RD_ERR_REQUIRED_PARAMETER, "(key = name)");
}

static void test_register_unknown_keys(void **state)
{
    static const char *const keys[] = {
        "foo", "state", "repository_info", "created_at", "updated_at", "version", NULL};
    char extra[128], want[128];
    json_t *rec;
    (void)state;

    for (size_t i = 0; keys[i] != NULL; i++) {
        snprintf(extra, sizeof(extra), ", \"%s\": \"v\"", keys[i]);
        snprintf(want, sizeof(want), "Invalid parameter. (key = %s)", keys[i]);
        register_fails(req_with("x", extra), NULL, RD_ERR_INVALID_PARAMETER, want);
    }
    /* legacy keys are accepted; the domain always comes from ctx */
    rec = register_ok(req_with("x", ", \"domain_id\": \"domain-other\", \"project_id\": \"p\""),
                      NULL);
    assert_str_field(rec, "domain_id", DOMAIN);
    assert_null(json_object_get(rec, "project_id"));
    json_decref(rec);
}

static void test_register_types(void **state)
{
    static const struct {
        const char *extra;
        const char *want;
    } cases[] = {
        {", \"labels\": \"x\"", "Invalid parameter type. (key = labels, type = array)"},
        {", \"labels\": [\"a\", 1]", "(key = labels, type = array of strings)"},
        {", \"labels\": [null]", "(key = labels, type = array of strings)"},
        {", \"tags\": []", "(key = tags, type = object)"},
        {", \"capability\": \"c\"", "(key = capability, type = object)"},
        {", \"template\": [1]", "(key = template, type = object)"},
        {", \"registry_config\": 1", "(key = registry_config, type = object)"},
        {", \"provider\": 7", "(key = provider, type = string)"},
        {", \"registry_url\": true", "(key = registry_url, type = string)"},
        {", \"registry_type\": 1", "(key = registry_type, type = string)"},
        {", \"service_type\": {}", "(key = service_type, type = string)"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        register_fails(req_with("x", cases[i].extra), NULL, RD_ERR_INVALID_PARAMETER_TYPE,
                       cases[i].want);
    register_fails("{\"name\": 1, \"resource_type\": \"a\", \"image\": \"x\"}", NULL,
                   RD_ERR_INVALID_PARAMETER_TYPE, "(key = name, type = string)");
    register_fails("{\"name\": \"n\", \"resource_type\": \"a\", \"image\": [\"x\"]}", NULL,
                   RD_ERR_INVALID_PARAMETER_TYPE, "(key = image, type = string)");
}

static void test_register_service_type_alias(void **state)
{
    json_t *rec;
    (void)state;

    rec = register_ok("{\"name\": \"n\", \"service_type\": \"a.B\", \"image\": \"x\"}", NULL);
    assert_str_field(rec, "resource_type", "a.B");
    assert_null(json_object_get(rec, "service_type"));
    json_decref(rec);
    rec = register_ok(
        "{\"name\": \"n\", \"service_type\": \"a.B\", \"resource_type\": \"a.B\", \"image\": "
        "\"x\"}",
        NULL);
    assert_str_field(rec, "resource_type", "a.B");
    json_decref(rec);
    register_fails("{\"name\": \"n\", \"service_type\": \"a.B\", \"resource_type\": \"a.C\","
                   " \"image\": \"x\"}",
                   NULL, RD_ERR_INVALID_PARAMETER, "key = service_type");
}

static void test_register_check_order(void **state)
{
    (void)state;
    /* unknown key beats everything */
    register_fails("{\"labels\": 1, \"bogus\": 1}", NULL, RD_ERR_INVALID_PARAMETER,
                   "(key = bogus)");
    /* the first unknown key in request order */
    register_fails(req_with("x", ", \"zeta\": 1, \"alpha\": 1"), NULL, RD_ERR_INVALID_PARAMETER,
                   "(key = zeta)");
    /* types beat required */
    register_fails("{\"labels\": 1}", NULL, RD_ERR_INVALID_PARAMETER_TYPE, "key = labels");
    /* types in table order, not request order */
    register_fails(req_with("x", ", \"tags\": 1, \"provider\": 1"), NULL,
                   RD_ERR_INVALID_PARAMETER_TYPE, "key = provider");
    /* required beats image format */
    register_fails("{\"resource_type\": \"a\", \"image\": \"BAD\"}", NULL,
                   RD_ERR_REQUIRED_PARAMETER, "key = name");
    /* image length beats image format */
    register_fails(req_with("ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJA", ""), NULL,
                   RD_ERR_INVALID_IMAGE_LENGTH, "length = 41");
    /* image beats registry_type */
    register_fails(req_with("a:b", ", \"registry_type\": \"X\""), NULL, RD_ERR_INVALID_IMAGE_FORMAT,
                   "key = image");
    /* registry_type beats registry_config and template */
    register_fails(req_with("x", ", \"registry_type\": \"X\", \"registry_config\": {\"token\": "
                                 "\"t\"}, \"template\": {\"a\": 1}"),
                   NULL, RD_ERR_INVALID_REGISTRY_TYPE, "value = X");
    /* registry_config beats template */
    register_fails(req_with("x", ", \"registry_config\": {\"token\": \"t\"}, \"template\": "
                                 "{\"a\": 1}"),
                   NULL, RD_ERR_INVALID_PARAMETER, "registry_config.token");
}

static void test_register_bad_input(void **state)
{
    json_t *arr = json_array();
    json_t *req = parse(req_with("x", ""));
    json_t *rec = NULL;
    plugin_ctx ctx = make_ctx(NULL);
    plugin_ctx no_now = {DOMAIN, NULL, NULL};
    rd_error err;
    (void)state;

    assert_int_equal(plugin_build_record(arr, &ctx, &rec, &err), RD_ERR_INVALID_PARAMETER_TYPE);
    assert_null(rec);
    assert_int_equal(plugin_build_record(NULL, &ctx, &rec, &err), RD_ERR_INVALID_PARAMETER_TYPE);
    assert_int_equal(plugin_build_record(req, NULL, &rec, &err), RD_ERR_INTERNAL);
    assert_int_equal(plugin_build_record(req, &no_now, &rec, &err), RD_ERR_INTERNAL);
    assert_null(rec);
    /* a NULL err is allowed */
    assert_int_equal(plugin_build_record(arr, &ctx, &rec, NULL), RD_ERR_INVALID_PARAMETER_TYPE);
    json_decref(req);
    json_decref(arr);
}

static void test_register_messages_are_printable(void **state)
{
    json_t *req = parse(req_with("x", ""));
    json_t *rec = NULL;
    plugin_ctx ctx = make_ctx(NULL);
    rd_error err;
    char key[300];
    (void)state;

    /* a long key with control and non-ASCII characters */
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    memcpy(key, "\x01\xc3\xa9", 3);
    json_object_set_new(req, key, json_true());
    assert_int_equal(plugin_build_record(req, &ctx, &rec, &err), RD_ERR_INVALID_PARAMETER);
    for (const char *c = err.message; *c != '\0'; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    assert_non_null(strstr(err.message, "..."));
    assert_true(strlen(err.message) < 120);
    json_decref(req);
}

/* ---- image ------------------------------------------------------------- */

static void test_image_rules(void **state)
{
    static const struct {
        const char *image;
        rd_status code;
        const char *want; /* message part, NULL for RD_OK */
    } cases[] = {
        {"x", RD_OK, NULL},
        {"pyengine/plugin-jira-noti-protocol", RD_OK, NULL},
        {"a/b/c", RD_OK, NULL},
        {"a0/b_c/d-e.f", RD_OK, NULL},
        {"plugin.v2", RD_OK, NULL},
        {"ns/my_plugin-1.2", RD_OK, NULL},
        {"abcdefghijabcdefghijabcdefghijabcdefghij", RD_OK, NULL}, /* 40 */
        {"spaceone/abcdefghijabcdefghijabcdefghija", RD_OK, NULL}, /* 40 */
        {"abcdefghijabcdefghijabcdefghijabcdefghijk", RD_ERR_INVALID_IMAGE_LENGTH,
         "Invalid image length. (key = image, length = 41, max = 40)"},
        {"spaceone/abcdefghijabcdefghijabcdefghijab", RD_ERR_INVALID_IMAGE_LENGTH, "length = 41"},
        {"", RD_ERR_REQUIRED_PARAMETER, "key = image"},
        {"Pyengine/x", RD_ERR_INVALID_IMAGE_FORMAT, "uppercase"},
        {"a//b", RD_ERR_INVALID_IMAGE_FORMAT, "empty path component"},
        {"/a", RD_ERR_INVALID_IMAGE_FORMAT, "empty path component"},
        {"a/", RD_ERR_INVALID_IMAGE_FORMAT, "empty path component"},
        {"a/b/c/d", RD_ERR_INVALID_IMAGE_FORMAT, "at most 3"},
        {"host:5000/x", RD_ERR_INVALID_IMAGE_FORMAT, "tag or port"},
        {"x:tag", RD_ERR_INVALID_IMAGE_FORMAT, "tag or port"},
        {"x@sha256:0123456789abcdef", RD_ERR_INVALID_IMAGE_FORMAT, "digest"},
        {"-x", RD_ERR_INVALID_IMAGE_FORMAT, "start and end"},
        {"x-", RD_ERR_INVALID_IMAGE_FORMAT, "start and end"},
        {"a/_b", RD_ERR_INVALID_IMAGE_FORMAT, "start and end"},
        {"a..b", RD_ERR_INVALID_IMAGE_FORMAT, "doubled separator"},
        {"a__b", RD_ERR_INVALID_IMAGE_FORMAT, "doubled separator"},
        {"a.-b", RD_ERR_INVALID_IMAGE_FORMAT, "doubled separator"},
        {"a b", RD_ERR_INVALID_IMAGE_FORMAT, "invalid character"},
        {"caf\xc3\xa9", RD_ERR_INVALID_IMAGE_FORMAT, "invalid character"},
        {"registry.example.com/x", RD_ERR_INVALID_IMAGE_FORMAT, "registry host"},
        {"localhost/x", RD_ERR_INVALID_IMAGE_FORMAT, "registry host"},
    };
    rd_error err;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rd_status rc;
        rd_error_clear(&err);
        rc = plugin_check_image(cases[i].image, &err);
        if (rc != cases[i].code ||
            (cases[i].want != NULL && strstr(err.message, cases[i].want) == NULL))
            fail_msg("image \"%s\": got %s \"%s\", want %s \"%s\"", cases[i].image,
                     rd_status_name(rc), err.message, rd_status_name(cases[i].code),
                     cases[i].want != NULL ? cases[i].want : "");
        if (rc == RD_ERR_INVALID_IMAGE_FORMAT)
            assert_non_null(strstr(err.message, "Invalid image format. (key = image"));
    }
    assert_int_equal(plugin_check_image(NULL, &err), RD_ERR_REQUIRED_PARAMETER);

    /* through register too */
    register_fails(req_with("a//b", ""), NULL, RD_ERR_INVALID_IMAGE_FORMAT, "key = image");
}

static void test_plugin_id_from_image(void **state)
{
    char out[64];
    char small[5];
    (void)state;

    plugin_id_from_image("pyengine/plugin-jira-noti-protocol", out, sizeof(out));
    assert_string_equal(out, "plugin-jira-noti-protocol");
    plugin_id_from_image("a/b/c", out, sizeof(out));
    assert_string_equal(out, "c");
    plugin_id_from_image("solo", out, sizeof(out));
    assert_string_equal(out, "solo");
    plugin_id_from_image(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    plugin_id_from_image("ns/abcdefgh", small, sizeof(small));
    assert_string_equal(small, "abcd");
    plugin_id_from_image("x", out, 0); /* must not write */
}

/* ---- registry ---------------------------------------------------------- */

static void test_registry_type(void **state)
{
    json_t *rec;
    (void)state;

    register_fails(req_with("x", ", \"registry_type\": \"docker_hub\""), NULL,
                   RD_ERR_INVALID_REGISTRY_TYPE, "Invalid registry type. (key = registry_type");
    register_fails(req_with("x", ", \"registry_type\": \"QUAY\""), NULL,
                   RD_ERR_INVALID_REGISTRY_TYPE, "value = QUAY");
    register_fails(req_with("x", ", \"registry_type\": \"\""), NULL, RD_ERR_INVALID_REGISTRY_TYPE,
                   "key = registry_type");
    register_fails(req_with("x", ", \"registry_type\": [\"HARBOR\"]"), NULL,
                   RD_ERR_INVALID_PARAMETER_TYPE, "(key = registry_type, type = string)");
    rec = register_ok(
        req_with("x", ", \"registry_type\": \"HARBOR\", \"registry_url\": \"harbor.example.com\""),
        NULL);
    assert_str_field(rec, "registry_type", "HARBOR");
    assert_str_field(rec, "registry_url", "harbor.example.com");
    json_decref(rec);
    rec = register_ok(req_with("x", ", \"registry_type\": \"AWS_PRIVATE_ECR\", \"registry_url\": "
                                    "\"123456789012.dkr.ecr.ap-northeast-2.amazonaws.com\""),
                      NULL);
    assert_str_field(rec, "registry_type", "AWS_PRIVATE_ECR");
    json_decref(rec);
}

static void test_registry_url(void **state)
{
    json_t *defaults = parse("{\"HARBOR\": \"harbor.internal:8443/proj\"}");
    json_t *rec;
    (void)state;

    /* DOCKER_HUB: fixed URL, a matching one accepted, others rejected */
    rec = register_ok(req_with("x", ", \"registry_url\": \"registry.hub.docker.com\""), NULL);
    assert_str_field(rec, "registry_url", "registry.hub.docker.com");
    json_decref(rec);
    rec = register_ok(req_with("x", ", \"registry_url\": \"\""), NULL);
    assert_str_field(rec, "registry_url", "registry.hub.docker.com");
    json_decref(rec);
    register_fails(req_with("x", ", \"registry_url\": \"docker.io\""), NULL,
                   RD_ERR_INVALID_PARAMETER, "key = registry_url");

    /* other types: required unless the config has a default */
    register_fails(req_with("x", ", \"registry_type\": \"HARBOR\""), NULL,
                   RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = registry_url");
    register_fails(
        req_with("x", ", \"registry_type\": \"AWS_PRIVATE_ECR\", \"registry_url\": \"\""), defaults,
        RD_ERR_REQUIRED_PARAMETER, "key = registry_url");
    rec = register_ok(req_with("x", ", \"registry_type\": \"HARBOR\""), defaults);
    assert_str_field(rec, "registry_url", "harbor.internal:8443/proj");
    json_decref(rec);
    rec = register_ok(
        req_with("x", ", \"registry_type\": \"HARBOR\", \"registry_url\": \"h2.example.com\""),
        defaults);
    assert_str_field(rec, "registry_url", "h2.example.com");
    json_decref(rec);
    json_decref(defaults);
}

static void test_registry_url_format(void **state)
{
    static const struct {
        const char *url;
        const char *reason; /* NULL = valid */
    } cases[] = {
        {"harbor.example.com", NULL},
        {"harbor.example.com:8443", NULL},
        {"harbor.example.com/project", NULL},
        {"harbor.example.com:443/a/b_c-d.e", NULL},
        {"10.0.0.1:5000", NULL},
        {"[::1]:5000", NULL},
        {"localhost", NULL},
        {"https://harbor.example.com", "scheme"},
        {"harbor.example.com/a b", "whitespace"},
        {" harbor.example.com", "whitespace"},
        {"harbor example", "whitespace"},
        {"harbor.example.com:0", "invalid port"},
        {"harbor.example.com:65536", "invalid port"},
        {"harbor.example.com:", "invalid port"},
        {"harbor.example.com:80x", "expected host[:port][/path]"},
        {"harbor.example.com/", "empty path segment"},
        {"harbor.example.com//a", "empty path segment"},
        {"harbor.example.com/../x", "path segments"},
        {"-bad.example.com", "invalid host"},
        {"a..b", "invalid host"},
        {".example.com", "invalid host"},
        {"harbor.example.com?x=1", "expected host"},
        {"user@harbor.example.com", "expected host"},
        {"[]:80", "invalid host"},
    };
    char text[512];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), ", \"registry_type\": \"HARBOR\", \"registry_url\": \"%s\"",
                 cases[i].url);
        if (cases[i].reason == NULL) {
            json_t *rec = register_ok(req_with("x", text), NULL);
            assert_str_field(rec, "registry_url", cases[i].url);
            json_decref(rec);
        } else {
            register_fails(req_with("x", text), NULL, RD_ERR_INVALID_PARAMETER, cases[i].reason);
            register_fails(req_with("x", text), NULL, RD_ERR_INVALID_PARAMETER,
                           "Invalid parameter. (key = registry_url");
        }
    }
}

static void test_registry_config_credentials(void **state)
{
    static const char *const bad[] = {
        "password",
        "Password",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "aws_secret_access_key",
        "secretAccessKey",
        "aws_access_key_id",
        "api-key",
        "apiKey",
        "private_key",
        "credentials",
        "auth",
        "Authorization",
        "username",
        "pwd",
        "password_file",
        NULL,
    };
    static const char *const good[] = {"account_id", "region", "project",
                                       "insecure",   "author", NULL};
    char extra[256], want[128];
    json_t *rec;
    (void)state;

    for (size_t i = 0; bad[i] != NULL; i++) {
        snprintf(extra, sizeof(extra), ", \"registry_config\": {\"region\": \"r\", \"%s\": \"v\"}",
                 bad[i]);
        snprintf(want, sizeof(want), "(key = registry_config.%s,", bad[i]);
        register_fails(req_with("x", extra), NULL, RD_ERR_INVALID_PARAMETER, want);
    }
    for (size_t i = 0; good[i] != NULL; i++) {
        snprintf(extra, sizeof(extra), ", \"registry_config\": {\"%s\": \"v\"}", good[i]);
        rec = register_ok(req_with("x", extra), NULL);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(rec, "registry_config"), good[i])),
            "v");
        json_decref(rec);
    }
    /* nested objects and arrays are searched too */
    register_fails(req_with("x", ", \"registry_config\": {\"auth_cfg\": {\"Token\": 1}}"), NULL,
                   RD_ERR_INVALID_PARAMETER, "key = registry_config.auth_cfg.Token");
    register_fails(req_with("x", ", \"registry_config\": {\"mirrors\": [{\"url\": \"u\"},"
                                 " {\"secret\": 1}]}"),
                   NULL, RD_ERR_INVALID_PARAMETER, "key = registry_config.mirrors.1.secret");
    /* ECR settings as in SPEC 3 */
    rec = register_ok(req_with("x", ", \"registry_type\": \"AWS_PRIVATE_ECR\", \"registry_url\": "
                                    "\"123456789012.dkr.ecr.ap-northeast-2.amazonaws.com\", "
                                    "\"registry_config\": {\"account_id\": \"123456789012\", "
                                    "\"region\": \"ap-northeast-2\"}"),
                      NULL);
    assert_int_equal(json_object_size(json_object_get(rec, "registry_config")), 2);
    json_decref(rec);
}

/* ---- template ---------------------------------------------------------- */

static void test_template_schema(void **state)
{
    static const struct {
        const char *tmpl;
        const char *want; /* NULL = valid */
    } cases[] = {
        {"{}", NULL},
        {"{\"options\": {}}", NULL},
        {"{\"options\": {\"schema\": {}}}", NULL},
        {"{\"options\": {\"schema\": {\"type\": \"object\", \"required\": [], \"properties\": "
         "{}}}}",
         NULL},
        {"{\"options\": {\"schema\": {\"type\": [\"string\", \"null\"]}}}", NULL},
        {"{\"options\": {\"schema\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}}}",
         NULL},
        {"{\"options\": {\"schema\": {\"properties\": {\"a\": {\"type\": \"object\", "
         "\"properties\": {\"b\": {\"type\": \"boolean\"}}, \"required\": [\"b\"]}}}}}",
         NULL},
        {"{\"options\": {\"description\": \"no schema\"}, \"secret\": {\"schema\": {}}}", NULL},
        {"{\"options\": 1}", "(key = template.options, reason = must be an object)"},
        {"{\"options\": {\"schema\": []}}",
         "(key = template.options, reason = schema must be an object)"},
        {"{\"options\": {\"schema\": \"object\"}}", "reason = schema must be an object"},
        {"{\"options\": {\"schema\": {\"required\": \"a\"}}}",
         "Invalid template schema. (key = template.options, reason = required must be an array "
         "of strings)"},
        {"{\"options\": {\"schema\": {\"required\": [1]}}}",
         "reason = required must be an array of strings"},
        {"{\"options\": {\"schema\": {\"type\": \"obj\"}}}",
         "reason = type must be a JSON Schema type name"},
        {"{\"options\": {\"schema\": {\"type\": \"Object\"}}}", "reason = type must be"},
        {"{\"options\": {\"schema\": {\"type\": 3}}}", "reason = type must be"},
        {"{\"options\": {\"schema\": {\"type\": []}}}", "reason = type must be"},
        {"{\"options\": {\"schema\": {\"type\": [\"string\", \"string\"]}}}",
         "reason = type must be"},
        {"{\"options\": {\"schema\": {\"properties\": []}}}",
         "reason = properties must be an object"},
        {"{\"options\": {\"schema\": {\"properties\": {\"a\": 1}}}}",
         "reason = properties.a must be an object"},
        {"{\"options\": {\"schema\": {\"properties\": {\"a\": {\"type\": \"text\"}}}}}",
         "reason = properties.a.type must be"},
        {"{\"options\": {\"schema\": {\"properties\": {\"a\": {\"properties\": {\"b\": "
         "{\"required\": true}}}}}}}",
         "reason = properties.a.properties.b.required must be"},
        {"{\"options\": {\"schema\": {\"items\": 1}}}", "reason = items must be a schema"},
        {"{\"options\": {\"schema\": {\"items\": [{}, {\"type\": 1}]}}}",
         "reason = items.1.type must be"},
        {"{\"ok\": {\"schema\": {}}, \"second\": {\"schema\": {\"type\": \"x\"}}}",
         "key = template.second"},
    };
    char extra[1024];
    rd_error err;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *tmpl = parse(cases[i].tmpl);
        rd_status rc;

        rd_error_clear(&err);
        rc = plugin_check_template(tmpl, &err);
        if (cases[i].want == NULL && rc != RD_OK)
            fail_msg("template %s: unexpected %s", cases[i].tmpl, err.message);
        if (cases[i].want != NULL &&
            (rc != RD_ERR_INVALID_TEMPLATE_SCHEMA || strstr(err.message, cases[i].want) == NULL))
            fail_msg("template %s: got %s \"%s\", want \"%s\"", cases[i].tmpl, rd_status_name(rc),
                     err.message, cases[i].want);
        json_decref(tmpl);

        snprintf(extra, sizeof(extra), ", \"template\": %s", cases[i].tmpl);
        if (cases[i].want == NULL) {
            json_t *rec = register_ok(req_with("x", extra), NULL);
            json_decref(rec);
        } else {
            register_fails(req_with("x", extra), NULL, RD_ERR_INVALID_TEMPLATE_SCHEMA,
                           cases[i].want);
        }
    }
    assert_int_equal(plugin_check_template(NULL, &err), RD_OK);
}

static void test_template_deep_nesting(void **state)
{
    char text[4096];
    size_t n = 0;
    json_t *tmpl;
    rd_error err;
    (void)state;

    n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"o\": {\"schema\": ");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"items\": ");
    n += (size_t)snprintf(text + n, sizeof(text) - n, "{}");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "}");
    snprintf(text + n, sizeof(text) - n, "}}");
    tmpl = parse(text);
    assert_int_equal(plugin_check_template(tmpl, &err), RD_ERR_INVALID_TEMPLATE_SCHEMA);
    assert_non_null(strstr(err.message, "nested too deeply"));
    json_decref(tmpl);
}

/* ---- update ------------------------------------------------------------ */

static json_t *base_record(void)
{
    return register_ok(base_register_request(), NULL);
}

static void update_fails(const json_t *rec, const char *text, rd_status code, const char *want)
{
    json_t *req = parse(text);
    json_t *before = json_deep_copy(rec);
    json_t *out = (json_t *)0x1;
    rd_error err;
    rd_status rc;

    rd_error_clear(&err);
    rc = plugin_apply_update(rec, req, LATER, &out, &err);
    if (rc != code || strstr(err.message, want) == NULL)
        fail_msg("update %s: got %s \"%s\", want %s containing \"%s\"", text, rd_status_name(rc),
                 err.message, rd_status_name(code), want);
    assert_null(out);
    assert_true(json_equal(rec, before));
    json_decref(before);
    json_decref(req);
}

static void test_update_changes(void **state)
{
    json_t *rec = base_record();
    json_t *before = json_deep_copy(rec);
    json_t *req = parse("{\"plugin_id\": \"plugin-jira-noti-protocol\", \"name\": \"New\","
                        " \"labels\": [\"a\", \"b\"], \"tags\": {\"k\": \"v\"},"
                        " \"capability\": {}, \"template\": {\"x\": {\"schema\": {\"type\": "
                        "\"string\"}}}, \"domain_id\": \"domain-x\", \"project_id\": \"p\"}");
    json_t *out = NULL;
    rd_error err;
    (void)state;

    assert_int_equal(plugin_apply_update(rec, req, LATER, &out, &err), RD_OK);
    assert_record_shape(out);
    assert_str_field(out, "name", "New");
    assert_true(json_equal(json_object_get(out, "labels"), json_object_get(req, "labels")));
    assert_true(json_equal(json_object_get(out, "tags"), json_object_get(req, "tags")));
    assert_int_equal(json_object_size(json_object_get(out, "capability")), 0);
    assert_true(json_equal(json_object_get(out, "template"), json_object_get(req, "template")));
    assert_str_field(out, "updated_at", LATER);
    assert_str_field(out, "created_at", NOW);
    assert_str_field(out, "domain_id", DOMAIN);
    assert_str_field(out, "image", "pyengine/plugin-jira-noti-protocol");
    assert_str_field(out, "resource_type", "notification.Protocol");
    /* the old record is untouched and shares nothing with the new one */
    assert_true(json_equal(rec, before));
    json_array_clear(json_object_get(req, "labels"));
    assert_int_equal(json_array_size(json_object_get(out, "labels")), 2);
    json_decref(out);
    json_decref(req);

    /* plugin_id alone: only updated_at changes */
    req = parse("{\"plugin_id\": \"plugin-jira-noti-protocol\"}");
    assert_int_equal(plugin_apply_update(rec, req, LATER, &out, &err), RD_OK);
    json_object_set_new(before, "updated_at", json_string(LATER));
    assert_true(json_equal(out, before));
    json_decref(out);
    json_decref(req);

    json_decref(before);
    json_decref(rec);
}

static void test_update_immutable(void **state)
{
    static const char *const keys[] = {
        "image", "provider",   "registry_type", "registry_url",    "registry_config",
        "state", "created_at", "updated_at",    "repository_info", NULL};
    json_t *rec = base_record();
    json_t *out = NULL;
    json_t *req;
    rd_error err;
    char text[256], want[128];
    (void)state;

    for (size_t i = 0; keys[i] != NULL; i++) {
        /* rejected even when the value is the stored one */
        json_t *stored = json_object_get(rec, keys[i]);
        char *val = stored != NULL ? json_dumps(stored, JSON_ENCODE_ANY) : strdup("\"v\"");
        snprintf(text, sizeof(text), "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"%s\": %s}",
                 keys[i], val);
        snprintf(want, sizeof(want), "Invalid parameter. (key = %s, reason = update cannot change",
                 keys[i]);
        update_fails(rec, text, RD_ERR_INVALID_PARAMETER, want);
        free(val);
    }
    update_fails(rec, "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"foo\": 1}",
                 RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = foo)");

    /* resource_type / service_type: equal is a no-op, different is rejected */
    req = parse("{\"plugin_id\": \"plugin-jira-noti-protocol\", \"service_type\": "
                "\"notification.Protocol\", \"resource_type\": \"notification.Protocol\"}");
    assert_int_equal(plugin_apply_update(rec, req, LATER, &out, &err), RD_OK);
    assert_str_field(out, "resource_type", "notification.Protocol");
    assert_null(json_object_get(out, "service_type"));
    json_decref(out);
    json_decref(req);
    update_fails(rec,
                 "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"service_type\": \"other.X\"}",
                 RD_ERR_INVALID_PARAMETER, "key = service_type");
    update_fails(rec,
                 "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"resource_type\": \"other.X\"}",
                 RD_ERR_INVALID_PARAMETER, "key = resource_type");
    json_decref(rec);
}

static void test_update_checks(void **state)
{
    json_t *rec = base_record();
    json_t *req = parse("{\"plugin_id\": \"plugin-jira-noti-protocol\"}");
    json_t *out = NULL;
    rd_error err;
    (void)state;

    update_fails(rec, "{\"name\": \"x\"}", RD_ERR_REQUIRED_PARAMETER,
                 "Required parameter. (key = plugin_id)");
    update_fails(rec, "{\"plugin_id\": \"\"}", RD_ERR_REQUIRED_PARAMETER, "key = plugin_id");
    update_fails(rec, "{\"plugin_id\": 5}", RD_ERR_INVALID_PARAMETER_TYPE,
                 "(key = plugin_id, type = string)");
    update_fails(rec, "{\"plugin_id\": \"plugin-other\"}", RD_ERR_INVALID_PARAMETER,
                 "key = plugin_id");
    update_fails(rec, "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"labels\": \"x\"}",
                 RD_ERR_INVALID_PARAMETER_TYPE, "(key = labels, type = array)");
    update_fails(rec, "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"tags\": [1]}",
                 RD_ERR_INVALID_PARAMETER_TYPE, "(key = tags, type = object)");
    update_fails(rec, "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"name\": \"\"}",
                 RD_ERR_REQUIRED_PARAMETER, "key = name");
    update_fails(rec,
                 "{\"plugin_id\": \"plugin-jira-noti-protocol\", \"template\": {\"options\": "
                 "{\"schema\": {\"required\": \"a\"}}}}",
                 RD_ERR_INVALID_TEMPLATE_SCHEMA,
                 "(key = template.options, reason = required must be an array of strings)");
    /* immutable key beats a missing plugin_id */
    update_fails(rec, "{\"image\": \"x\"}", RD_ERR_INVALID_PARAMETER, "key = image");

    assert_int_equal(plugin_apply_update(rec, req, NULL, &out, &err), RD_ERR_INTERNAL);
    assert_int_equal(plugin_apply_update(NULL, req, LATER, &out, &err), RD_ERR_INTERNAL);
    assert_null(out);
    json_decref(req);
    json_decref(rec);
}

/* ---- id requests and views --------------------------------------------- */

static void expect_id(const char *text, int allow_repo, rd_status code, const char *want)
{
    json_t *req = parse(text);
    rd_error err;
    rd_status rc;

    rd_error_clear(&err);
    rc = plugin_check_id_request(req, allow_repo, &err);
    if (rc != code || (want != NULL && strstr(err.message, want) == NULL))
        fail_msg("id request %s (repo %d): got %s \"%s\", want %s \"%s\"", text, allow_repo,
                 rd_status_name(rc), err.message, rd_status_name(code), want ? want : "");
    json_decref(req);
}

static void test_check_id_request(void **state)
{
    (void)state;
    expect_id("{\"plugin_id\": \"p\"}", 0, RD_OK, NULL);
    expect_id("{\"plugin_id\": \"p\", \"domain_id\": \"d\", \"project_id\": \"x\"}", 0, RD_OK,
              NULL);
    expect_id("{\"plugin_id\": \"p\", \"repository_id\": \"repo-1\", \"only\": [\"name\"]}", 1,
              RD_OK, NULL);
    expect_id("{\"plugin_id\": \"p\", \"repository_id\": \"repo-1\"}", 0, RD_ERR_INVALID_PARAMETER,
              "Invalid parameter. (key = repository_id)");
    expect_id("{\"plugin_id\": \"p\", \"only\": [\"name\"]}", 0, RD_ERR_INVALID_PARAMETER,
              "(key = only)");
    expect_id("{\"plugin_id\": \"p\", \"foo\": 1}", 1, RD_ERR_INVALID_PARAMETER, "(key = foo)");
    expect_id("{}", 0, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = plugin_id)");
    expect_id("{\"plugin_id\": \"\"}", 1, RD_ERR_REQUIRED_PARAMETER, "(key = plugin_id)");
    expect_id("{\"plugin_id\": 1}", 0, RD_ERR_INVALID_PARAMETER_TYPE,
              "(key = plugin_id, type = string)");
    expect_id("{\"plugin_id\": \"p\", \"repository_id\": 1}", 1, RD_ERR_INVALID_PARAMETER_TYPE,
              "(key = repository_id, type = string)");
    expect_id("{\"plugin_id\": \"p\", \"only\": \"name\"}", 1, RD_ERR_INVALID_PARAMETER_TYPE,
              "(key = only, type = array)");
    expect_id("{\"plugin_id\": \"p\", \"only\": [1]}", 1, RD_ERR_INVALID_PARAMETER_TYPE,
              "(key = only, type = array of strings)");
    expect_id("[]", 0, RD_ERR_INVALID_PARAMETER_TYPE, "type = object");
}

static void test_plugin_view(void **state)
{
    json_t *rec = register_ok(seed_register, NULL);
    json_t *before = json_deep_copy(rec);
    json_t *info = parse("{\"repository_id\": \"repo-123456789012\", \"name\": \"Marketplace\","
                         " \"repository_type\": \"remote\", \"endpoint\": \"\"}");
    json_t *view = plugin_view(rec, info);
    const char *key;
    json_t *value;
    (void)state;

    assert_non_null(view);
    assert_str_field(view, "service_type", "notification.Procotol");
    assert_str_field(view, "resource_type", "notification.Procotol");
    assert_true(json_equal(json_object_get(view, "repository_info"), info));
    assert_int_equal(json_object_size(view), json_object_size(rec) + 2);
    json_object_foreach(rec, key, value)
    {
        assert_true(json_equal(json_object_get(view, key), value));
    }
    /* copies: changing the inputs leaves the view alone, and vice versa */
    json_object_set_new(info, "name", json_string("Changed"));
    assert_str_field(json_object_get(view, "repository_info"), "name", "Marketplace");
    json_array_clear(json_object_get(view, "labels"));
    assert_true(json_equal(rec, before));
    json_decref(view);

    view = plugin_view(rec, NULL);
    assert_non_null(view);
    assert_true(json_is_object(json_object_get(view, "repository_info")));
    json_decref(view);
    assert_null(plugin_view(NULL, info));

    json_decref(info);
    json_decref(before);
    json_decref(rec);
}

/* A record stored before docs existed, and a repository_info without
 * endpoint, answer docs {} and endpoint "" (the published PluginInfo and
 * RepositoryInfo require both); given values are kept. */
static void test_plugin_view_complete(void **state)
{
    json_t *rec = register_ok(seed_register, NULL);
    json_t *info = parse("{\"repository_id\": \"repo-123456789012\", \"name\": \"Local\","
                         " \"repository_type\": \"local\"}");
    json_t *view;
    (void)state;

    json_object_del(rec, "docs");
    view = plugin_view(rec, info);
    assert_true(json_is_object(json_object_get(view, "docs")));
    assert_int_equal(json_object_size(json_object_get(view, "docs")), 0);
    assert_str_field(json_object_get(view, "repository_info"), "endpoint", "");
    assert_null(json_object_get(info, "endpoint")); /* the input is not touched */
    json_decref(view);

    json_object_set_new(rec, "docs", parse("{\"en\": {\"a\": 1}}"));
    plugin_view_in_place(rec, info);
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(json_object_get(rec, "docs"), "en"), "a")),
                     1);
    assert_str_field(json_object_get(rec, "repository_info"), "endpoint", "");

    plugin_view_complete(NULL); /* harmless */
    json_decref(info);
    json_decref(rec);
}

static void test_check_id(void **state)
{
    static const char *const good[] = {"a", "plugin-x", "my.plugin_v2-1", "0abc", NULL};
    static const char *const bad[] = {"A",   "a/b", "-a",  "a-", "a..b",
                                      "a b", "a:1", "a@b", "é",  NULL};
    char long_id[PLUGIN_IMAGE_MAX + 2];
    rd_error err;
    (void)state;

    for (size_t i = 0; good[i] != NULL; i++)
        assert_int_equal(plugin_check_id(good[i], &err), RD_OK);
    for (size_t i = 0; bad[i] != NULL; i++) {
        rd_error_clear(&err);
        if (plugin_check_id(bad[i], &err) != RD_ERR_INVALID_PARAMETER ||
            strstr(err.message, "key = plugin_id") == NULL)
            fail_msg("plugin_id %s: got \"%s\"", bad[i], err.message);
    }
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[PLUGIN_IMAGE_MAX] = '\0';
    assert_int_equal(plugin_check_id(long_id, &err), RD_OK);
    long_id[PLUGIN_IMAGE_MAX] = 'a';
    long_id[PLUGIN_IMAGE_MAX + 1] = '\0';
    assert_int_equal(plugin_check_id(long_id, &err), RD_ERR_INVALID_PARAMETER);
    assert_int_equal(plugin_check_id("", &err), RD_ERR_REQUIRED_PARAMETER);
    assert_int_equal(plugin_check_id(NULL, &err), RD_ERR_REQUIRED_PARAMETER);
}

/* ---- data-driven cases ------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the sorted *.json names in dir (caller frees); *count set.
 * Fails the test when the folder cannot be read. */
static char **list_cases(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL)
        fail_msg("cannot open case folder %s (is REPOD_TEST_DATA set?)", dir);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        assert_non_null(names);
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
    *count = n;
    return names;
}

static rd_status status_from_name(const char *name)
{
    for (int i = 0; i < RD_STATUS_COUNT; i++) {
        if (name != NULL && strcmp(rd_status_name((rd_status)i), name) == 0)
            return (rd_status)i;
    }
    return RD_STATUS_COUNT;
}

/* Checks the message against "message_contains" (string or array). */
static int message_matches(const json_t *want, const char *message)
{
    if (want == NULL)
        return 1;
    if (json_is_string(want))
        return strstr(message, json_string_value(want)) != NULL;
    for (size_t i = 0; i < json_array_size(want); i++) {
        const char *s = json_string_value(json_array_get(want, i));
        if (s == NULL || strstr(message, s) == NULL)
            return 0;
    }
    return json_is_array(want);
}

/* Checks "expect" (exact values) and "absent" (keys) against got; writes a
 * problem into buf and returns -1 on mismatch. */
static int expect_matches(const json_t *tc, const json_t *got, char *buf, size_t size)
{
    const json_t *expect = json_object_get(tc, "expect");
    const json_t *absent = json_object_get(tc, "absent");
    const char *key;
    json_t *want;

    json_object_foreach((json_t *)expect, key, want)
    {
        const json_t *have = json_object_get(got, key);
        if (have == NULL || !json_equal(have, want)) {
            char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_COMPACT);
            char *h = have != NULL ? json_dumps(have, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            snprintf(buf, size, "%s = %s, want %s", key, h != NULL ? h : "(absent)",
                     w != NULL ? w : "?");
            free(w);
            free(h);
            return -1;
        }
    }
    for (size_t i = 0; i < json_array_size(absent); i++) {
        const char *k = json_string_value(json_array_get(absent, i));
        if (k != NULL && json_object_get(got, k) != NULL) {
            snprintf(buf, size, "%s should be absent", k);
            return -1;
        }
    }
    return 0;
}

typedef enum { CASE_REGISTER, CASE_UPDATE } case_kind;

/* Runs one case file; returns NULL when it passes, else a problem in buf. */
static const char *run_case(case_kind kind, int valid, const json_t *tc, char *buf, size_t size)
{
    const json_t *req = json_object_get(tc, "request");
    plugin_ctx ctx = make_ctx(json_object_get(tc, "default_urls"));
    json_t *out = NULL, *base = NULL, *before = NULL;
    const char *problem = NULL;
    rd_error err;
    rd_status rc, want_code = RD_OK;

    rd_error_clear(&err);
    if (!json_is_object(tc) || req == NULL) {
        snprintf(buf, size, "case has no \"request\"");
        return buf;
    }
    if (!valid) {
        want_code = status_from_name(json_string_value(json_object_get(tc, "code")));
        if (want_code == RD_STATUS_COUNT || want_code == RD_OK) {
            snprintf(buf, size, "invalid case needs an error \"code\"");
            return buf;
        }
    }

    if (kind == CASE_REGISTER) {
        rc = plugin_build_record(req, &ctx, &out, &err);
    } else {
        const json_t *reg = json_object_get(tc, "register");
        json_t *reg_own = reg != NULL ? NULL : parse(base_register_request());
        rc = plugin_build_record(reg != NULL ? reg : reg_own, &ctx, &base, &err);
        json_decref(reg_own);
        if (rc != RD_OK) {
            snprintf(buf, size, "base register failed: %s", err.message);
            return buf;
        }
        before = json_deep_copy(base);
        rc = plugin_apply_update(base, req, LATER, &out, &err);
    }

    if (valid && rc != RD_OK) {
        snprintf(buf, size, "got %s \"%s\", want success", rd_status_name(rc), err.message);
        problem = buf;
    } else if (!valid && (rc != want_code || err.code != want_code ||
                          !message_matches(json_object_get(tc, "message_contains"), err.message))) {
        snprintf(buf, size, "got %s \"%s\", want %s", rd_status_name(rc), err.message,
                 rd_status_name(want_code));
        problem = buf;
    } else if (!valid && out != NULL) {
        snprintf(buf, size, "an error returned a record");
        problem = buf;
    } else if (valid) {
        problem = record_shape_problem(out, buf, size);
        if (problem == NULL && expect_matches(tc, out, buf, size) != 0)
            problem = buf;
        if (problem == NULL && kind == CASE_UPDATE) {
            static const char *const fixed[] = {"plugin_id",
                                                "image",
                                                "resource_type",
                                                "provider",
                                                "registry_type",
                                                "registry_url",
                                                "registry_config",
                                                "state",
                                                "domain_id",
                                                "created_at",
                                                NULL};
            for (size_t i = 0; problem == NULL && fixed[i] != NULL; i++) {
                if (!json_equal(json_object_get(out, fixed[i]), json_object_get(base, fixed[i]))) {
                    snprintf(buf, size, "update changed %s", fixed[i]);
                    problem = buf;
                }
            }
            if (problem == NULL &&
                strcmp(json_string_value(json_object_get(out, "updated_at")), LATER) != 0) {
                snprintf(buf, size, "updated_at not set");
                problem = buf;
            }
        }
    }
    if (problem == NULL && before != NULL && !json_equal(before, base)) {
        snprintf(buf, size, "update modified the old record");
        problem = buf;
    }
    json_decref(before);
    json_decref(base);
    json_decref(out);
    return problem;
}

/* Runs every case of $REPOD_TEST_DATA/plugin/<sub>; fails listing the
 * failing files; at least min_cases files must exist. */
static void run_folder(case_kind kind, const char *sub, int valid, size_t min_cases)
{
    const char *data = getenv("REPOD_TEST_DATA");
    char dir[1024], path[2048], buf[1024];
    char **names;
    size_t count = 0, failures = 0;

    if (data == NULL || data[0] == '\0')
        data = "tests/data";
    snprintf(dir, sizeof(dir), "%s/plugin/%s", data, sub);
    names = list_cases(dir, &count);
    for (size_t i = 0; i < count; i++) {
        json_error_t jerr;
        json_t *tc;
        const char *problem;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        tc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (tc == NULL) {
            print_message("FAIL %s: bad JSON at line %d: %s\n", path, jerr.line, jerr.text);
            failures++;
        } else if ((problem = run_case(kind, valid, tc, buf, sizeof(buf))) != NULL) {
            print_message("FAIL %s: %s\n", path, problem);
            failures++;
        }
        json_decref(tc);
        free(names[i]);
    }
    free(names);
    print_message("%s: %zu cases, %zu failed\n", dir, count, failures);
    if (count < min_cases)
        fail_msg("%s: only %zu cases, want at least %zu", dir, count, min_cases);
    assert_int_equal(failures, 0);
}

static void test_cases_register_valid(void **state)
{
    (void)state;
    run_folder(CASE_REGISTER, "register/valid", 1, 5);
}

static void test_cases_register_invalid(void **state)
{
    (void)state;
    run_folder(CASE_REGISTER, "register/invalid", 0, 10);
}

static void test_cases_update_valid(void **state)
{
    (void)state;
    run_folder(CASE_UPDATE, "update/valid", 1, 3);
}

static void test_cases_update_invalid(void **state)
{
    (void)state;
    run_folder(CASE_UPDATE, "update/invalid", 0, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_seed_example),
        cmocka_unit_test(test_register_defaults),
        cmocka_unit_test(test_register_record_is_a_copy),
        cmocka_unit_test(test_register_required),
        cmocka_unit_test(test_register_unknown_keys),
        cmocka_unit_test(test_register_types),
        cmocka_unit_test(test_register_service_type_alias),
        cmocka_unit_test(test_register_check_order),
        cmocka_unit_test(test_register_bad_input),
        cmocka_unit_test(test_register_messages_are_printable),
        cmocka_unit_test(test_image_rules),
        cmocka_unit_test(test_plugin_id_from_image),
        cmocka_unit_test(test_registry_type),
        cmocka_unit_test(test_registry_url),
        cmocka_unit_test(test_registry_url_format),
        cmocka_unit_test(test_registry_config_credentials),
        cmocka_unit_test(test_template_schema),
        cmocka_unit_test(test_template_deep_nesting),
        cmocka_unit_test(test_update_changes),
        cmocka_unit_test(test_update_immutable),
        cmocka_unit_test(test_update_checks),
        cmocka_unit_test(test_check_id_request),
        cmocka_unit_test(test_plugin_view),
        cmocka_unit_test(test_plugin_view_complete),
        cmocka_unit_test(test_check_id),
        cmocka_unit_test(test_cases_register_valid),
        cmocka_unit_test(test_cases_register_invalid),
        cmocka_unit_test(test_cases_update_valid),
        cmocka_unit_test(test_cases_update_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
