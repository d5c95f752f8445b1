/*
 * test_conf.c - unit tests of the configuration loader (src/core/conf.c).
 *
 * Besides the cases written here, every tests/data/conf/bad/NAME.json must
 * fail to load with a message that starts with its path and contains the
 * first line of NAME.expect, and every tests/data/conf/good/NAME.json must
 * load.  Adding a case is adding files.  The data folder comes from
 * REPOD_TEST_DATA (set by ctest), the source folder from REPOD_SOURCE_DIR.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "util.h"

#define PATH_MAX_LEN 1024

static const char *minimal_text = "{\"tls\": {\"cert\": \"server.crt\", \"key\": \"server.key\"},"
                                  " \"data_dir\": \"data\"}";

/* The folder of the test data (tests/data). */
static const char *data_dir(void)
{
    const char *d = getenv("REPOD_TEST_DATA");
    return d != NULL && d[0] != '\0' ? d : "tests/data";
}

/* Writes the repository's source folder into buf. */
static void source_dir(char *buf, size_t n)
{
    const char *s = getenv("REPOD_SOURCE_DIR");
    if (s != NULL && s[0] != '\0')
        snprintf(buf, n, "%s", s);
    else
        snprintf(buf, n, "%s/../..", data_dir());
}

/* Loads the file at path as conf_load_string does: its values only, without
 * opening the files it names (they do not exist here). */
static rd_status load_file_text(const char *path, repod_conf **conf, rd_error *err)
{
    char *text = util_read_file(path, NULL);
    rd_status rc;
    if (text == NULL)
        fail_msg("cannot read %s", path);
    rc = conf_load_string(text, path, conf, err);
    free(text);
    return rc;
}

/* Loads text as PATH and expects success; returns the conf. */
static repod_conf *load_ok(const char *text, const char *path)
{
    repod_conf *conf = NULL;
    rd_error err = {0};
    rd_status rc = conf_load_string(text, path, &conf, &err);
    if (rc != RD_OK)
        fail_msg("unexpected failure: %s", err.message);
    assert_non_null(conf);
    return conf;
}

/* Loads text as PATH, expects failure and that the message equals expect. */
static void load_fails_with(const char *text, const char *path, const char *expect)
{
    repod_conf *conf = (repod_conf *)1;
    rd_error err = {0};
    rd_status rc = conf_load_string(text, path, &conf, &err);
    assert_int_equal(rc, RD_ERR_INVALID_PARAMETER);
    assert_int_equal(err.code, RD_ERR_INVALID_PARAMETER);
    assert_null(conf);
    assert_string_equal(err.message, expect);
}

/* A minimal file (only tls + data_dir) gets every default. */
static void test_minimal_gets_defaults(void **state)
{
    (void)state;
    repod_conf *conf = load_ok(minimal_text, "/etc/repod/repod.json");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    assert_string_equal(conf->path, "/etc/repod/repod.json");
    assert_string_equal(conf->listen_host, "127.0.0.1");
    assert_int_equal(conf->listen_port, 8443);
    assert_string_equal(conf->metrics_listen, "");
    assert_null(conf->metrics_host);
    assert_int_equal(conf->metrics_port, 0);
    assert_string_equal(conf->tls_cert, "/etc/repod/server.crt");
    assert_string_equal(conf->tls_key, "/etc/repod/server.key");
    assert_null(conf->tls_client_ca);
    assert_string_equal(conf->tls_ciphers, CONF_TLS_CIPHERS_DEFAULT);
    assert_string_equal(conf->tls_min_version, "TLS1.2");
    assert_string_equal(conf->data_dir, "/etc/repod/data");
    assert_string_equal(conf->log_level, "info");
    assert_int_equal(conf->workers, cores < 1 ? 1 : (cores > 256 ? 256 : cores));
    assert_int_equal(conf->max_body_bytes, 1048576);
    assert_int_equal(conf->max_header_bytes, 16384);
    assert_int_equal(conf->request_timeout_s, 30);
    assert_int_equal(conf->max_connections, 10000);
    assert_int_equal(conf->shutdown_timeout_s, 10);
    assert_int_equal(conf->shutdown_grace_ms, 0);
    assert_string_equal(conf->tokens_file, "/etc/repod/data/tokens.json");
    assert_int_equal(conf->anonymous_read, 1);
    assert_non_null(conf->public_domains);
    assert_null(conf->public_domains[0]);
    assert_int_equal(conf->public_domains_count, 0);
    assert_string_equal(conf->local_repository_name, "Local");
    assert_int_equal(conf->verify_on_register, 0);
    assert_true(json_is_object(conf->registry_default_urls));
    assert_int_equal(json_object_size(conf->registry_default_urls), 0);
    assert_int_equal(conf->remote_defaults.ttl_s, 300);
    assert_int_equal(conf->remote_defaults.stale_while_revalidate, 1);
    assert_int_equal(conf->remote_defaults.stale_if_error_s, 604800);
    assert_int_equal(conf->remote_defaults.negative_ttl_s, 30);
    assert_int_equal(conf->remote_defaults.timeout_ms, 5000);
    assert_int_equal(conf->remote_defaults.max_response_bytes, 16777216);
    assert_int_equal(conf->remote_defaults.sync_page_size, 1000);
    assert_true(json_is_object(conf->registries));
    assert_int_equal(json_object_size(conf->registries), 0);
    assert_true(json_is_array(conf->remotes));
    assert_int_equal(json_array_size(conf->remotes), 0);
    conf_free(conf);
}

/* A file that sets every key: every value lands in its field. */
static void test_full_file(void **state)
{
    (void)state;
    char path[PATH_MAX_LEN], expect[PATH_MAX_LEN];
    repod_conf *conf = NULL;
    rd_error err = {0};
    json_t *entry;

    snprintf(path, sizeof(path), "%s/conf/good/full.json", data_dir());
    if (load_file_text(path, &conf, &err) != RD_OK)
        fail_msg("%s", err.message);
    assert_string_equal(conf->path, path);
    assert_string_equal(conf->listen_host, "0.0.0.0");
    assert_int_equal(conf->listen_port, 9443);
    assert_string_equal(conf->metrics_listen, "127.0.0.1:9100");
    assert_string_equal(conf->metrics_host, "127.0.0.1");
    assert_int_equal(conf->metrics_port, 9100);
    snprintf(expect, sizeof(expect), "%s/conf/good/certs/server.crt", data_dir());
    assert_string_equal(conf->tls_cert, expect);
    assert_string_equal(conf->tls_key, "/etc/repod/server.key");
    snprintf(expect, sizeof(expect), "%s/conf/good/certs/clients-ca.crt", data_dir());
    assert_string_equal(conf->tls_client_ca, expect);
    assert_string_equal(conf->data_dir, "/var/lib/repod");
    assert_string_equal(conf->log_level, "debug");
    assert_int_equal(conf->workers, 4);
    assert_int_equal(conf->max_body_bytes, 2097152);
    assert_int_equal(conf->max_header_bytes, 32768);
    assert_int_equal(conf->request_timeout_s, 60);
    assert_int_equal(conf->max_connections, 500);
    assert_int_equal(conf->shutdown_timeout_s, 20);
    snprintf(expect, sizeof(expect), "%s/conf/good/secrets/tokens.json", data_dir());
    assert_string_equal(conf->tokens_file, expect);
    assert_int_equal(conf->anonymous_read, 0);
    assert_int_equal(conf->public_domains_count, 2);
    assert_string_equal(conf->public_domains[0], "domain-market");
    assert_string_equal(conf->public_domains[1], "domain-public");
    assert_null(conf->public_domains[2]);
    assert_string_equal(conf->local_repository_name, "Marketplace");
    assert_int_equal(conf->verify_on_register, 1);
    assert_string_equal(json_string_value(json_object_get(conf->registry_default_urls, "HARBOR")),
                        "harbor.example.com");
    assert_int_equal(json_object_size(conf->registry_default_urls), 2);
    assert_int_equal(conf->remote_defaults.ttl_s, 600);
    assert_int_equal(conf->remote_defaults.stale_while_revalidate, 0);
    assert_int_equal(conf->remote_defaults.stale_if_error_s, 86400);
    assert_int_equal(conf->remote_defaults.negative_ttl_s, 60);
    assert_int_equal(conf->remote_defaults.timeout_ms, 2500);
    assert_int_equal(conf->remote_defaults.max_response_bytes, 33554432);

    assert_int_equal(json_object_size(conf->registries), 3);
    entry = json_object_get(conf->registries, "harbor.example.com");
    assert_string_equal(json_string_value(json_object_get(entry, "username")), "robot$ci");
    snprintf(expect, sizeof(expect), "%s/conf/good/secrets/harbor.pw", data_dir());
    assert_string_equal(json_string_value(json_object_get(entry, "password_file")), expect);
    assert_string_equal(json_string_value(json_object_get(entry, "ca_file")),
                        "/etc/repod/harbor-ca.crt");
    assert_true(json_is_true(json_object_get(entry, "verify")));
    assert_int_equal(json_integer_value(json_object_get(entry, "timeout_ms")), 3000);
    entry = json_object_get(conf->registries, "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com");
    snprintf(expect, sizeof(expect), "%s/conf/good/secrets/ecr.key", data_dir());
    assert_string_equal(json_string_value(json_object_get(entry, "aws_secret_access_key_file")),
                        expect);
    assert_string_equal(json_string_value(json_object_get(entry, "aws_region")), "ap-northeast-2");

    assert_int_equal(json_array_size(conf->remotes), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(conf->remotes, 0), "name")),
        "Marketplace");
    conf_free(conf);
}

/* tls.ciphers must name a cipher OpenSSL knows; tls.min_version is one of
 * two versions. */
static void test_tls_policy_keys(void **state)
{
    repod_conf *conf;
    (void)state;
    conf = load_ok("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"ciphers\": "
                   "\"ECDHE-ECDSA-AES256-GCM-SHA384\", \"min_version\": \"TLS1.3\"}}",
                   "/etc/repod/repod.json");
    assert_string_equal(conf->tls_ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_string_equal(conf->tls_min_version, "TLS1.3");
    conf_free(conf);
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"ciphers\": \"NOPE\"}}",
                    "conf/x.json",
                    "conf/x.json: tls.ciphers: no cipher known to OpenSSL in \"NOPE\"");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"ciphers\": \"\"}}",
                    "conf/x.json", "conf/x.json: tls.ciphers: must not be empty");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"min_version\": \"TLS1.1\"}}",
                    "conf/x.json", "conf/x.json: tls.min_version: must be one of TLS1.2, TLS1.3");
}

/* The exact message formats documented in include/conf.h. */
static void test_message_formats(void **state)
{
    (void)state;
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\"}, \"limits\": "
                    "{\"max_body_bytes\": 5}}",
                    "conf/x.json",
                    "conf/x.json: limits.max_body_bytes: must be an integer between 1024 and "
                    "1073741824");
    load_fails_with("{\"tls\": {\"key\": \"b\"}}", "conf/x.json",
                    "conf/x.json: tls.cert: required");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\"}, \"listen\": \"8443\"}",
                    "conf/x.json", "conf/x.json: listen: expected host:port");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\"}, \"foo\": true}", "conf/x.json",
                    "conf/x.json: foo: unknown key");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"pem\": 1}}", "conf/x.json",
                    "conf/x.json: tls.pem: unknown key");
    load_fails_with("{\n\"tls\": {\"cert\": \"a\", \"key\": \"b\"},\n\"workers\": 2,,\n}",
                    "conf/x.json",
                    "conf/x.json: invalid JSON at line 3 column 14: string or '}' expected near "
                    "','");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\"}, \"workers\": \"5\"}",
                    "conf/x.json", "conf/x.json: workers: expected an integer");
    load_fails_with("{\"tls\": {\"cert\": \"a\", \"key\": \"b\"}, \"registries\": {\"h.io\": "
                    "{\"token\": \"t\"}}}",
                    "conf/x.json", "conf/x.json: registries.h.io.token: unknown key");
}

/* Unknown keys are checked before missing required ones, and the first
 * unknown key in file order is named. */
static void test_first_error_wins(void **state)
{
    (void)state;
    load_fails_with("{\"zzz\": 1, \"aaa\": 2}", "x.json", "x.json: zzz: unknown key");
    load_fails_with("{\"log_level\": \"loud\"}", "x.json",
                    "x.json: log_level: must be one of debug, info, warn, error");
}

/* Every problem of a file is listed, in file order; the first is also the
 * error message. */
static void test_every_problem_reported(void **state)
{
    (void)state;
    char path[PATH_MAX_LEN] = "/tmp/repod-test-conf-XXXXXX";
    const char *text = "{\"zzz\": 1, \"limits\": {\"max_body_bytes\": 5, \"x\": 1},"
                       " \"tls\": 5, \"remotes\": [{\"name\": \"M\", \"cache\": {\"ttl\": 1}}]}";
    repod_conf *conf = (repod_conf *)1;
    json_t *problems = NULL;
    rd_error err = {0};
    char expect[6][PATH_MAX_LEN + 100];
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(expect[0], sizeof(expect[0]), "%s: zzz: unknown key", path);
    snprintf(expect[1], sizeof(expect[1]),
             "%s: limits.max_body_bytes: must be an integer between 1024 and 1073741824", path);
    snprintf(expect[2], sizeof(expect[2]), "%s: limits.x: unknown key", path);
    snprintf(expect[3], sizeof(expect[3]), "%s: tls: expected an object", path);
    snprintf(expect[4], sizeof(expect[4]), "%s: remotes[0].cache.ttl: unknown key", path);
    snprintf(expect[5], sizeof(expect[5]), "%s: remotes[0].endpoint: required", path);
    assert_int_equal(conf_load_report(path, &conf, &problems, &err), RD_ERR_INVALID_PARAMETER);
    unlink(path);
    assert_null(conf);
    assert_string_equal(err.message, expect[0]);
    assert_int_equal(json_array_size(problems), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_array_get(problems, i)), expect[i]);
    json_decref(problems);
}

/* remotes[].upstream.ca_file is resolved against the config's folder and
 * made absolute (it is stored in the repository's record). */
static void test_remote_ca_file_resolved(void **state)
{
    (void)state;
    const char *text = "{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"remotes\": [{\"name\": "
                       "\"M\", \"endpoint\": \"https://m.io:8443\", \"upstream\": {\"ca_file\": "
                       "\"up-ca.crt\"}}]}";
    char cwd[PATH_MAX_LEN], expect[PATH_MAX_LEN + 64];
    repod_conf *conf = load_ok(text, "/etc/repod/repod.json");
    json_t *up = json_object_get(json_array_get(conf->remotes, 0), "upstream");
    assert_string_equal(json_string_value(json_object_get(up, "ca_file")), "/etc/repod/up-ca.crt");
    conf_free(conf);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    conf = load_ok(text, "conf/repod.json");
    up = json_object_get(json_array_get(conf->remotes, 0), "upstream");
    snprintf(expect, sizeof(expect), "%s/conf/up-ca.crt", cwd);
    assert_string_equal(json_string_value(json_object_get(up, "ca_file")), expect);
    conf_free(conf);
}

/* An unreadable file names the path and the system's reason. */
static void test_unreadable(void **state)
{
    (void)state;
    repod_conf *conf = (repod_conf *)1;
    rd_error err = {0};
    char path[PATH_MAX_LEN], expect[PATH_MAX_LEN + 64];

    assert_int_equal(conf_load("/nonexistent/repod.json", &conf, &err), RD_ERR_INVALID_PARAMETER);
    assert_null(conf);
    assert_string_equal(err.message,
                        "/nonexistent/repod.json: cannot read: No such file or directory");

    snprintf(path, sizeof(path), "%s/conf", data_dir());
    conf = (repod_conf *)1;
    assert_int_equal(conf_load(path, &conf, &err), RD_ERR_INVALID_PARAMETER);
    assert_null(conf);
    snprintf(expect, sizeof(expect), "%s: cannot read: Is a directory", path);
    assert_string_equal(err.message, expect);
}

/* Invalid JSON in a file gives its line and column. */
static void test_invalid_json_file(void **state)
{
    (void)state;
    char path[PATH_MAX_LEN], expect[PATH_MAX_LEN + 128];
    repod_conf *conf = NULL;
    rd_error err = {0};

    snprintf(path, sizeof(path), "%s/conf/bad/invalid_json_missing_comma.json", data_dir());
    assert_int_equal(conf_load(path, &conf, &err), RD_ERR_INVALID_PARAMETER);
    snprintf(expect, sizeof(expect),
             "%s: invalid JSON at line 3 column 12: '}' expected near '\"data_dir\"'", path);
    assert_string_equal(err.message, expect);
}

/* Relative paths are joined to the config file's folder; absolute ones are
 * kept; tokens_file defaults under data_dir. */
static void test_relative_paths(void **state)
{
    (void)state;
    repod_conf *conf;
    json_t *entry;

    conf = load_ok("{\"tls\": {\"cert\": \"../certs/server.crt\", \"key\": \"/abs/server.key\","
                   " \"client_ca\": \"ca/clients.pem\"}, \"data_dir\": \"../data\","
                   " \"registries\": {\"h.io\": {\"ca_file\": \"h-ca.pem\", \"password_file\":"
                   " \"/abs/pw\", \"aws_secret_access_key_file\": \"k/ecr.key\","
                   " \"username\": \"u\"}}}",
                   "conf/repod.json");
    assert_string_equal(conf->path, "conf/repod.json");
    assert_string_equal(conf->tls_cert, "conf/../certs/server.crt");
    assert_string_equal(conf->tls_key, "/abs/server.key");
    assert_string_equal(conf->tls_client_ca, "conf/ca/clients.pem");
    assert_string_equal(conf->data_dir, "conf/../data");
    assert_string_equal(conf->tokens_file, "conf/../data/tokens.json");
    entry = json_object_get(conf->registries, "h.io");
    assert_string_equal(json_string_value(json_object_get(entry, "ca_file")), "conf/h-ca.pem");
    assert_string_equal(json_string_value(json_object_get(entry, "password_file")), "/abs/pw");
    assert_string_equal(json_string_value(json_object_get(entry, "aws_secret_access_key_file")),
                        "conf/k/ecr.key");
    assert_string_equal(json_string_value(json_object_get(entry, "username")), "u");
    conf_free(conf);

    /* tokens_file given: relative to the config folder, not to data_dir */
    conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"data_dir\": \"/srv/repod\","
                   " \"auth\": {\"tokens_file\": \"tokens.json\"}}",
                   "/etc/repod/repod.json");
    assert_string_equal(conf->data_dir, "/srv/repod");
    assert_string_equal(conf->tokens_file, "/etc/repod/tokens.json");
    conf_free(conf);

    /* a file in the working directory and one at the root */
    conf = load_ok(minimal_text, "repod.json");
    assert_string_equal(conf->data_dir, "./data");
    assert_string_equal(conf->tls_cert, "./server.crt");
    conf_free(conf);
    conf = load_ok(minimal_text, "/repod.json");
    assert_string_equal(conf->data_dir, "/data");
    assert_string_equal(conf->tokens_file, "/data/tokens.json");
    conf_free(conf);

    /* data_dir defaults to "data" next to the file */
    conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}}", "/opt/r/conf.json");
    assert_string_equal(conf->data_dir, "/opt/r/data");
    assert_string_equal(conf->tokens_file, "/opt/r/data/tokens.json");
    conf_free(conf);
}

/* workers 0 means the number of online cores; other values are kept. */
static void test_workers(void **state)
{
    (void)state;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    repod_conf *conf;

    conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"workers\": 0}", "x.json");
    assert_true(conf->workers >= 1);
    assert_int_equal(conf->workers, cores < 1 ? 1 : (cores > 256 ? 256 : cores));
    conf_free(conf);
    conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"workers\": 3}", "x.json");
    assert_int_equal(conf->workers, 3);
    conf_free(conf);
}

/* host:port forms: IPv4, host name, [IPv6], port 0, metrics_listen. */
static void test_listen_forms(void **state)
{
    (void)state;
    repod_conf *conf;

    conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"listen\": \"[::1]:0\","
                   " \"metrics_listen\": \"0.0.0.0:9100\"}",
                   "x.json");
    assert_string_equal(conf->listen_host, "::1");
    assert_int_equal(conf->listen_port, 0);
    assert_string_equal(conf->metrics_listen, "0.0.0.0:9100");
    assert_string_equal(conf->metrics_host, "0.0.0.0");
    assert_int_equal(conf->metrics_port, 9100);
    conf_free(conf);

    conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"listen\": "
                   "\"repo-1.example.com:65535\"}",
                   "x.json");
    assert_string_equal(conf->listen_host, "repo-1.example.com");
    assert_int_equal(conf->listen_port, 65535);
    conf_free(conf);
}

/* Values of the right type are copied, and the copies are owned. */
static void test_json_parts_are_copies(void **state)
{
    (void)state;
    repod_conf *conf = load_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"registry\":"
                               " {\"default_urls\": {\"AWS_PRIVATE_ECR\": \"e.io\"}},"
                               " \"remotes\": [{\"name\": \"M\", \"endpoint\": "
                               "\"https://m.example.com:8443\", \"cache\": {\"ttl_s\": 5}}]}",
                               "x.json");
    assert_int_equal(conf->registry_default_urls->refcount, 1);
    assert_int_equal(conf->remotes->refcount, 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(conf->remotes, 0), "cache"), "ttl_s")),
                     5);
    assert_string_equal(
        json_string_value(json_object_get(conf->registry_default_urls, "AWS_PRIVATE_ECR")), "e.io");
    conf_free(conf);
    conf_free(NULL);
}

/* Reads the first line of path into buf (without the newline). */
static void read_first_line(const char *path, char *buf, size_t n)
{
    char *text = util_read_file(path, NULL);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(buf, n, "%s", text);
    free(text);
}

/* qsort comparator of char[256] names. */
static int name_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Sorted names in folder ending with suffix; returns the count. */
static size_t list_files(const char *folder, const char *suffix, char names[][256], size_t max)
{
    DIR *d = opendir(folder);
    struct dirent *e;
    size_t n = 0, slen = strlen(suffix);
    if (d == NULL)
        fail_msg("cannot open %s", folder);
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (len > slen && strcmp(e->d_name + len - slen, suffix) == 0)
            snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, 256, name_cmp);
    return n;
}

#define MAX_CASES 512
static char case_names[MAX_CASES][256];

/* Every bad/NAME.json fails with "PATH: ..." containing NAME.expect. */
static void test_bad_files(void **state)
{
    (void)state;
    char folder[PATH_MAX_LEN], path[PATH_MAX_LEN + 300], expect_path[PATH_MAX_LEN + 300];
    char expect[512];
    size_t n, failures = 0;

    snprintf(folder, sizeof(folder), "%s/conf/bad", data_dir());
    n = list_files(folder, ".json", case_names, MAX_CASES);
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        repod_conf *conf = NULL;
        rd_error err = {0};
        rd_status rc;
        snprintf(path, sizeof(path), "%s/%s", folder, case_names[i]);
        snprintf(expect_path, sizeof(expect_path), "%.*s.expect", (int)(strlen(path) - 5), path);
        read_first_line(expect_path, expect, sizeof(expect));
        assert_true(expect[0] != '\0');
        rc = load_file_text(path, &conf, &err);
        if (rc != RD_ERR_INVALID_PARAMETER || conf != NULL) {
            print_error("%s: loaded (rc %d), expected failure \"%s\"\n", case_names[i], rc, expect);
            conf_free(conf);
            failures++;
            continue;
        }
        if (strncmp(err.message, path, strlen(path)) != 0 ||
            strncmp(err.message + strlen(path), ": ", 2) != 0 ||
            strstr(err.message, expect) == NULL) {
            print_error("%s:\n  got:    %s\n  wanted: PATH: ...%s...\n", case_names[i], err.message,
                        expect);
            failures++;
        }
    }
    print_message("%zu bad config files checked\n", n);
    assert_int_equal(failures, 0);
}

/* Every good/NAME.json loads. */
static void test_good_files(void **state)
{
    (void)state;
    char folder[PATH_MAX_LEN], path[PATH_MAX_LEN + 300];
    size_t n, failures = 0;

    snprintf(folder, sizeof(folder), "%s/conf/good", data_dir());
    n = list_files(folder, ".json", case_names, MAX_CASES);
    assert_true(n >= 3);
    for (size_t i = 0; i < n; i++) {
        repod_conf *conf = NULL;
        rd_error err = {0};
        snprintf(path, sizeof(path), "%s/%s", folder, case_names[i]);
        if (load_file_text(path, &conf, &err) != RD_OK) {
            print_error("%s: %s\n", case_names[i], err.message);
            failures++;
        }
        conf_free(conf);
    }
    assert_int_equal(failures, 0);
}

/* Captures conf_print_keys() output in a new string. */
static char *print_keys_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    conf_print_keys(f);
    fclose(f);
    return buf;
}

/* --help lists every key with its default. */
static void test_print_keys(void **state)
{
    (void)state;
    static const char *const must[] = {
        "listen ",
        "127.0.0.1:8443",
        "metrics_listen ",
        "tls.cert ",
        "(required)",
        "tls.key ",
        "tls.client_ca ",
        "data_dir ",
        "log_level ",
        "workers ",
        "[0..256]",
        "limits.max_body_bytes ",
        "1048576",
        "[1024..1073741824]",
        "limits.max_header_bytes ",
        "limits.request_timeout_s ",
        "limits.max_connections ",
        "limits.shutdown_timeout_s ",
        "limits.shutdown_grace_ms ",
        "auth.tokens_file ",
        "<data_dir>/tokens.json",
        "auth.anonymous_read ",
        "auth.public_domains ",
        "local_repository.name ",
        "registry.verify_on_register ",
        "registry.default_urls ",
        "remote_defaults.ttl_s ",
        "remote_defaults.stale_while_revalidate ",
        "remote_defaults.stale_if_error_s ",
        "604800",
        "remote_defaults.negative_ttl_s ",
        "remote_defaults.timeout_ms ",
        "remote_defaults.max_response_bytes ",
        "16777216",
        "registries ",
        "registries.<host>.api_url ",
        "registries.<host>.aws_secret_access_key_file ",
        "registries.<host>.timeout_ms ",
        "remotes ",
    };
    char *text = print_keys_text();
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        if (strstr(text, must[i]) == NULL)
            fail_msg("conf_print_keys lacks \"%s\"", must[i]);
    free(text);
}

/* Returns text with every line whose first non-blank characters are "//"
 * removed (how the example file is turned into a config). */
static char *strip_comment_lines(const char *text)
{
    char *out = malloc(strlen(text) + 1), *o = out;
    const char *line = text;
    assert_non_null(out);
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) + 1 : strlen(line);
        const char *p = line + strspn(line, " \t");
        if (strncmp(p, "//", 2) != 0) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    return out;
}

/* conf/repod.json loads, with paths next to conf/; the example documents
 * every key and, without its comments, is a valid config of defaults. */
static void test_shipped_files(void **state)
{
    (void)state;
    char src[PATH_MAX_LEN], path[PATH_MAX_LEN + 64], expect[PATH_MAX_LEN + 64];
    char *text = NULL, *json = NULL, *keys = NULL, *line;
    repod_conf *conf = NULL, *defaults = NULL;
    rd_error err = {0};
    size_t checked = 0;

    source_dir(src, sizeof(src));
    snprintf(path, sizeof(path), "%s/conf/repod.json", src);
    if (load_file_text(path, &conf, &err) != RD_OK)
        fail_msg("%s", err.message);
    snprintf(expect, sizeof(expect), "%s/conf/../certs/server.crt", src);
    assert_string_equal(conf->tls_cert, expect);
    snprintf(expect, sizeof(expect), "%s/conf/../certs/server.key", src);
    assert_string_equal(conf->tls_key, expect);
    snprintf(expect, sizeof(expect), "%s/conf/../data", src);
    assert_string_equal(conf->data_dir, expect);
    assert_string_equal(conf->listen_host, "127.0.0.1");
    assert_int_equal(conf->listen_port, 8443);
    conf_free(conf);
    conf = NULL;

    snprintf(path, sizeof(path), "%s/conf/repod.example.jsonc", src);
    text = util_read_file(path, NULL);
    assert_non_null(text);
    json = strip_comment_lines(text);
    if (conf_load_string(json, path, &conf, &err) != RD_OK)
        fail_msg("example without comments: %s", err.message);
    defaults = load_ok("{\"tls\": {\"cert\": \"../certs/server.crt\", \"key\": "
                       "\"../certs/server.key\"}, \"data_dir\": \"../data\"}",
                       path);
    /* the example shows the defaults */
    assert_string_equal(conf->listen_host, defaults->listen_host);
    assert_int_equal(conf->listen_port, defaults->listen_port);
    assert_string_equal(conf->tokens_file, defaults->tokens_file);
    assert_int_equal(conf->workers, defaults->workers);
    assert_int_equal(conf->max_body_bytes, defaults->max_body_bytes);
    assert_int_equal(conf->max_header_bytes, defaults->max_header_bytes);
    assert_int_equal(conf->request_timeout_s, defaults->request_timeout_s);
    assert_int_equal(conf->max_connections, defaults->max_connections);
    assert_int_equal(conf->shutdown_timeout_s, defaults->shutdown_timeout_s);
    assert_int_equal(conf->shutdown_grace_ms, defaults->shutdown_grace_ms);
    assert_int_equal(conf->anonymous_read, defaults->anonymous_read);
    assert_string_equal(conf->local_repository_name, defaults->local_repository_name);
    assert_memory_equal(&conf->remote_defaults, &defaults->remote_defaults,
                        sizeof(conf->remote_defaults));

    /* every key listed by --help is mentioned, quoted, in the example */
    keys = print_keys_text();
    for (line = strtok(keys, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char key[128], quoted[140];
        const char *leaf;
        if (sscanf(line, " %127s", key) != 1 || strcmp(key, "KEY") == 0 ||
            strcmp(key, "Configuration") == 0)
            continue;
        leaf = strrchr(key, '.') != NULL ? strrchr(key, '.') + 1 : key;
        snprintf(quoted, sizeof(quoted), "\"%s\"", leaf);
        if (strstr(text, quoted) == NULL)
            fail_msg("the example does not document %s", key);
        checked++;
    }
    assert_true(checked >= 36);
    free(keys);
    free(json);
    free(text);
    conf_free(conf);
    conf_free(defaults);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_gets_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_message_formats),
        cmocka_unit_test(test_tls_policy_keys),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_remote_ca_file_resolved),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_invalid_json_file),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_json_parts_are_copies),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_print_keys),
        cmocka_unit_test(test_shipped_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
