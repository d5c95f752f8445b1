/*
 * test_auth.c - unit tests of auth.c (tokens file, table, Authorization
 * header) and of the `repod token` CLI in token_cli.c.
 *
 * Every test works in its own temporary folder; the CLI tests write a small
 * config there and capture stdout/stderr through dup2 into temp files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "util.h"

typedef struct {
    char dir[256];
    char tokens[320];
    char config[320];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_auth.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    /* A subfolder that does not exist yet: the CLI must create it. */
    snprintf(fx->tokens, sizeof(fx->tokens), "%s/auth/tokens.json", fx->dir);
    snprintf(fx->config, sizeof(fx->config), "%s/repod.json", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    char *copy = strdup(path);
    char *slash = strrchr(copy, '/');
    *slash = '\0';
    assert_int_equal(util_mkdir_p(copy), 0);
    free(copy);
    assert_int_equal(util_write_file_atomic(path, text, strlen(text), 0600), 0);
}

static char *read_text(const char *path)
{
    char *s = util_read_file(path, NULL);
    assert_non_null(s);
    return s;
}

/* Writes a tokens file whose entries are given as (name, token, domain, role)
 * quadruples, hashing each token. */
static void write_tokens(const char *path, int n, const char *const *rows)
{
    json_t *doc = json_pack("{s:[]}", "tokens");
    rd_error err;
    for (int i = 0; i < n; i++) {
        char hash[65];
        const char *const *r = rows + 4 * i;
        util_sha256_hex(r[1], strlen(r[1]), hash);
        json_array_append_new(json_object_get(doc, "tokens"),
                              json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", r[0], "sha256", hash,
                                        "domain_id", r[2], "role", r[3], "created_at",
                                        "2024-01-01T00:00:00.000Z"));
    }
    assert_int_equal(auth_file_save(path, doc, &err), RD_OK);
    json_decref(doc);
}

/* ---- roles and token format ------------------------------------------------ */

static void test_role_parse(void **state)
{
    (void)state;
    assert_int_equal(auth_role_parse("viewer"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_role_parse("admin"), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_role_parse("system"), AUTH_ROLE_SYSTEM);
    assert_int_equal(auth_role_parse("anonymous"), -1);
    assert_int_equal(auth_role_parse("Admin"), -1);
    assert_int_equal(auth_role_parse(""), -1);
    assert_int_equal(auth_role_parse(NULL), -1);
    assert_string_equal(auth_role_name(AUTH_ROLE_ANONYMOUS), "anonymous");
    assert_string_equal(auth_role_name(AUTH_ROLE_VIEWER), "viewer");
    assert_string_equal(auth_role_name(AUTH_ROLE_ADMIN), "admin");
    assert_string_equal(auth_role_name(AUTH_ROLE_SYSTEM), "system");
    assert_string_equal(auth_role_name((auth_role)42), "unknown");
    assert_true(auth_name_valid("domain-1"));
    assert_true(auth_name_valid("ci.bot@x:1_a"));
    assert_false(auth_name_valid(""));
    assert_false(auth_name_valid("a b"));
    assert_false(auth_name_valid("a\"b"));
    assert_false(auth_name_valid(NULL));
}

static void test_token_generate(void **state)
{
    char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1], ha[65], hb[65], check[65];
    (void)state;
    assert_int_equal(auth_token_generate(a, sizeof(a), ha), 0);
    assert_int_equal(auth_token_generate(b, sizeof(b), hb), 0);
    assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
    assert_memory_equal(a, "rdt_", 4);
    for (size_t i = 4; i < AUTH_TOKEN_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_not_equal(a, b);
    util_sha256_hex(a, strlen(a), check);
    assert_string_equal(ha, check);
    assert_int_equal(auth_token_generate(a, AUTH_TOKEN_LEN, ha), -1); /* too small */
}

/* ---- store --------------------------------------------------------------- */

static void test_missing_file_is_empty(void **state)
{
    fixture *fx = *state;
    auth_store *st = NULL;
    auth_identity who;
    rd_error err;
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    assert_int_equal(auth_token_count(st), 0);
    assert_int_equal(auth_authenticate(st, NULL, &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_ANONYMOUS);
    assert_string_equal(who.name, "");
    assert_string_equal(who.domain_id, "");
    assert_int_equal(auth_authenticate(st, "Bearer rdt_x", &who, &err),
                     RD_ERR_AUTHENTICATE_FAILURE);
    auth_close(st);
}

static void test_authenticate(void **state)
{
    fixture *fx = *state;
    static const char *const rows[] = {
        "ci",  "tok-admin-secret",  "domain-a",    "admin",
        "ops", "tok-system-secret", "domain-root", "system",
        "ro",  "tok-viewer-secret", "domain-b",    "viewer",
    };
    auth_store *st = NULL;
    auth_identity who;
    rd_error err;
    char *text;

    write_tokens(fx->tokens, 3, rows);
    text = read_text(fx->tokens);
    assert_null(strstr(text, "secret")); /* hashes only */
    free(text);

    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    assert_int_equal(auth_token_count(st), 3);

    assert_int_equal(auth_authenticate(st, "Bearer tok-admin-secret", &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_ADMIN);
    assert_string_equal(who.name, "ci");
    assert_string_equal(who.domain_id, "domain-a");

    assert_int_equal(auth_authenticate(st, "bearer tok-system-secret", &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_SYSTEM);
    assert_string_equal(who.domain_id, "domain-root");

    assert_int_equal(auth_authenticate(st, "BEARER   tok-viewer-secret  ", &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_VIEWER);
    assert_string_equal(who.name, "ro");

    assert_int_equal(auth_authenticate(st, NULL, &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_ANONYMOUS);
    auth_close(st);
}

static void test_bad_headers(void **state)
{
    fixture *fx = *state;
    static const char *const rows[] = {"ci", "good-token", "domain-a", "admin"};
    static const char *const bad[] = {
        "Basic Z29vZC10b2tlbg==",
        "Basic good-token",
        "Bearer",
        "Bearer ",
        "Bearer  ",
        "",
        "   ",
        "Bearergood-token",
        "Bearer good-token extra",
        "Bearer good-tokenX",
        "Bearer good-toke",
        "Token good-token",
        "Bearer unknown",
    };
    auth_store *st = NULL;
    auth_identity who;
    rd_error err;

    write_tokens(fx->tokens, 1, rows);
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rd_error_clear(&err);
        memset(&who, 0x55, sizeof(who));
        assert_int_equal(auth_authenticate(st, bad[i], &who, &err), RD_ERR_AUTHENTICATE_FAILURE);
        assert_int_equal(err.code, RD_ERR_AUTHENTICATE_FAILURE);
        assert_non_null(strstr(err.message, "Authenticate failure."));
        assert_null(strstr(err.message, "good-tok"));
        assert_null(strstr(err.message, "unknown"));
        assert_int_equal(who.role, AUTH_ROLE_ANONYMOUS);
        assert_string_equal(who.name, "");
        assert_string_equal(who.domain_id, "");
    }
    assert_int_equal(auth_authenticate(st, "bearer good-token", &who, &err), RD_OK);
    assert_int_equal(auth_authenticate(st, "Bearer\tgood-token", &who, &err), RD_OK);
    auth_close(st);
}

static void test_reload(void **state)
{
    fixture *fx = *state;
    static const char *const one[] = {"a", "tok-a", "d1", "admin"};
    static const char *const two[] = {"b", "tok-b", "d2", "viewer", "c", "tok-c", "d3", "system"};
    auth_store *st = NULL;
    auth_identity who;
    rd_error err;

    write_tokens(fx->tokens, 1, one);
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    assert_int_equal(auth_authenticate(st, "Bearer tok-a", &who, &err), RD_OK);
    assert_int_equal(auth_authenticate(st, "Bearer tok-b", &who, &err),
                     RD_ERR_AUTHENTICATE_FAILURE);

    /* "a" revoked, "b" and "c" created. */
    write_tokens(fx->tokens, 2, two);
    assert_int_equal(auth_authenticate(st, "Bearer tok-a", &who, &err), RD_OK); /* not yet */
    assert_int_equal(auth_reload(st, &err), RD_OK);
    assert_int_equal(auth_token_count(st), 2);
    assert_int_equal(auth_authenticate(st, "Bearer tok-a", &who, &err),
                     RD_ERR_AUTHENTICATE_FAILURE);
    assert_int_equal(auth_authenticate(st, "Bearer tok-b", &who, &err), RD_OK);
    assert_string_equal(who.domain_id, "d2");
    assert_int_equal(auth_authenticate(st, "Bearer tok-c", &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_SYSTEM);

    /* A broken file: reload fails, the old table stays. */
    write_text(fx->tokens, "{\"tokens\": [ {\"name\": \"x\"");
    rd_error_clear(&err);
    assert_int_equal(auth_reload(st, &err), RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, fx->tokens));
    assert_int_equal(auth_token_count(st), 2);
    assert_int_equal(auth_authenticate(st, "Bearer tok-b", &who, &err), RD_OK);

    /* A deleted file means no tokens. */
    assert_int_equal(unlink(fx->tokens), 0);
    assert_int_equal(auth_reload(st, &err), RD_OK);
    assert_int_equal(auth_token_count(st), 0);
    assert_int_equal(auth_authenticate(st, "Bearer tok-b", &who, &err),
                     RD_ERR_AUTHENTICATE_FAILURE);
    auth_close(st);
}

/* Copies tmpl into buf with each "%s" replaced by value (no printf: the
 * templates are not literals). */
static void subst(char *buf, size_t size, const char *tmpl, const char *value)
{
    size_t used = 0, vlen = strlen(value);
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 's') {
            assert_true(used + vlen < size);
            memcpy(buf + used, value, vlen);
            used += vlen;
            p++;
        } else {
            assert_true(used + 1 < size);
            buf[used++] = *p;
        }
    }
    buf[used] = '\0';
}

static void test_strict_parse(void **state)
{
    fixture *fx = *state;
    static const char H[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    static const char H2[] = "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    static const struct {
        const char *entry1; /* the second entry; the first one is always fine */
        const char *expect;
    } cases[] = {
        {"42", "tokens[1]: not an object"},
        {"{\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":\"admin\"}", "tokens[1]: name: missing"},
        {"{\"name\":\"b\",\"domain_id\":\"d\",\"role\":\"admin\"}", "tokens[1]: sha256: missing"},
        {"{\"name\":\"b\",\"sha256\":\"%s\",\"role\":\"admin\"}", "tokens[1]: domain_id: missing"},
        {"{\"name\":\"b\",\"sha256\":\"%s\",\"domain_id\":\"d\"}", "tokens[1]: role: missing"},
        {"{\"name\":\"b\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":\"root\"}",
         "tokens[1]: role:"},
        {"{\"name\":\"b\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":1}",
         "tokens[1]: role: not a string"},
        {"{\"name\":\"b\",\"sha256\":\"abc\",\"domain_id\":\"d\",\"role\":\"admin\"}",
         "tokens[1]: sha256:"},
        {"{\"name\":\"b\",\"sha256\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789"
         "abcdef\",\"domain_id\":\"d\",\"role\":\"admin\"}",
         "tokens[1]: sha256:"},
        {"{\"name\":\"a\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":\"admin\"}",
         "tokens[1]: name: same name"},
        {"{\"name\":\"b\",\"sha256\":\""
         "%s"
         "\",\"domain_id\":\"d\",\"role\":\"admin\",\"x\":1}",
         "tokens[1]: unknown key 'x'"},
        {"{\"name\":\"b c\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":\"admin\"}",
         "tokens[1]: name:"},
        {"{\"name\":\"b\",\"sha256\":\"%s\",\"domain_id\":\"\",\"role\":\"admin\"}",
         "tokens[1]: domain_id:"},
        {"{\"name\":\"b\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":\"admin\","
         "\"created_at\":5}",
         "tokens[1]: created_at:"},
    };
    char text[2048], entry[1024];
    auth_store *st = NULL;
    rd_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* The second entry uses H2 unless it tests a duplicate hash. */
        subst(entry, sizeof(entry), cases[i].entry1, H2);
        snprintf(text, sizeof(text),
                 "{\"tokens\":[{\"name\":\"a\",\"sha256\":\"%s\",\"domain_id\":\"d\","
                 "\"role\":\"viewer\"},%s]}",
                 H, entry);
        write_text(fx->tokens, text);
        rd_error_clear(&err);
        assert_int_equal(auth_open(fx->tokens, &st, &err), RD_ERR_INVALID_PARAMETER);
        assert_null(st);
        if (strstr(err.message, cases[i].expect) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.message, cases[i].expect);
        assert_non_null(strstr(err.message, fx->tokens));
    }

    /* Duplicate hash. */
    snprintf(text, sizeof(text),
             "{\"tokens\":[{\"name\":\"a\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":"
             "\"viewer\"},{\"name\":\"b\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":"
             "\"viewer\"}]}",
             H, H);
    write_text(fx->tokens, text);
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "tokens[1]: sha256: same hash"));
    assert_null(strstr(err.message, H));

    /* Whole-file problems; JSON errors never quote the file's text. */
    static const struct {
        const char *text;
        const char *expect;
    } files[] = {
        {"not json rdt_supersecret", "invalid JSON at line 1"},
        {"", "invalid JSON"},
        {"[]", "top level must be an object"},
        {"{}", "tokens: must be an array"},
        {"{\"tokens\": {}}", "tokens: must be an array"},
        {"{\"tokens\": [], \"extra\": 1}", "unknown key 'extra'"},
        {"{\"tokens\": [], \"tokens\": []}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        write_text(fx->tokens, files[i].text);
        rd_error_clear(&err);
        assert_int_equal(auth_open(fx->tokens, &st, &err), RD_ERR_INVALID_PARAMETER);
        if (strstr(err.message, files[i].expect) == NULL)
            fail_msg("file %zu: message '%s' lacks '%s'", i, err.message, files[i].expect);
        assert_null(strstr(err.message, "supersecret"));
    }

    /* The empty table and a good entry without created_at are fine. */
    write_text(fx->tokens, "{\"tokens\": []}");
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    auth_close(st);
    snprintf(text, sizeof(text),
             "{\"tokens\":[{\"name\":\"a\",\"sha256\":\"%s\",\"domain_id\":\"d\",\"role\":"
             "\"viewer\"}]}",
             H);
    write_text(fx->tokens, text);
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    assert_int_equal(auth_token_count(st), 1);
    auth_close(st);
}

static void test_many_tokens(void **state)
{
    fixture *fx = *state;
    enum { N = 500 };
    json_t *doc = json_pack("{s:[]}", "tokens");
    auth_store *st = NULL;
    auth_identity who;
    rd_error err;
    char name[32], tok[32], hash[65], hdr[64];

    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        snprintf(tok, sizeof(tok), "secret-%d", i);
        util_sha256_hex(tok, strlen(tok), hash);
        json_array_append_new(json_object_get(doc, "tokens"),
                              json_pack("{s:s,s:s,s:s,s:s}", "name", name, "sha256", hash,
                                        "domain_id", "d", "role", i % 2 ? "admin" : "viewer"));
    }
    assert_int_equal(auth_file_save(fx->tokens, doc, &err), RD_OK);
    json_decref(doc);
    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    assert_int_equal(auth_token_count(st), N);
    for (int i = 0; i < N; i++) {
        snprintf(hdr, sizeof(hdr), "Bearer secret-%d", i);
        snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(auth_authenticate(st, hdr, &who, &err), RD_OK);
        assert_string_equal(who.name, name);
        assert_int_equal(who.role, i % 2 ? AUTH_ROLE_ADMIN : AUTH_ROLE_VIEWER);
    }
    assert_int_equal(auth_authenticate(st, "Bearer secret-500", &who, &err),
                     RD_ERR_AUTHENTICATE_FAILURE);
    auth_close(st);
}

/* ---- concurrency ------------------------------------------------------------ */

typedef struct {
    auth_store *st;
    atomic_int stop;
    atomic_long ok;
    atomic_int failures;
} race_ctx;

static void *race_worker(void *arg)
{
    race_ctx *c = arg;
    auth_identity who;
    rd_error err;
    while (!atomic_load(&c->stop)) {
        /* "stable" is in every version of the file; "flip" comes and goes. */
        if (auth_authenticate(c->st, "Bearer stable-token", &who, &err) != RD_OK ||
            strcmp(who.name, "stable") != 0 || strcmp(who.domain_id, "d") != 0 ||
            who.role != AUTH_ROLE_ADMIN)
            atomic_fetch_add(&c->failures, 1);
        rd_status rc = auth_authenticate(c->st, "Bearer flip-token", &who, &err);
        if (rc == RD_OK && (strcmp(who.name, "flip") != 0 || who.role != AUTH_ROLE_VIEWER))
            atomic_fetch_add(&c->failures, 1);
        if (rc != RD_OK && rc != RD_ERR_AUTHENTICATE_FAILURE)
            atomic_fetch_add(&c->failures, 1);
        (void)auth_token_count(c->st);
        atomic_fetch_add(&c->ok, 1);
    }
    return NULL;
}

static void test_concurrent_reload(void **state)
{
    fixture *fx = *state;
    static const char *const with[] = {"stable", "stable-token", "d", "admin",
                                       "flip",   "flip-token",   "e", "viewer"};
    static const char *const without[] = {"stable", "stable-token", "d", "admin"};
    enum { THREADS = 4, RELOADS = 200 };
    pthread_t th[THREADS];
    race_ctx c;
    rd_error err;

    memset(&c, 0, sizeof(c));
    write_tokens(fx->tokens, 2, with);
    assert_int_equal(auth_open(fx->tokens, &c.st, &err), RD_OK);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_worker, &c), 0);
    for (int i = 0; i < RELOADS; i++) {
        if (i % 10 == 5) {
            write_text(fx->tokens, "{broken");
            assert_int_equal(auth_reload(c.st, &err), RD_ERR_INVALID_PARAMETER);
        } else {
            write_tokens(fx->tokens, i % 2 ? 2 : 1, i % 2 ? with : without);
            assert_int_equal(auth_reload(c.st, &err), RD_OK);
        }
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    assert_true(atomic_load(&c.ok) > 0);
    auth_close(c.st);
}

/* ---- CLI ----------------------------------------------------------------- */

typedef struct {
    int rc;
    char *out;
    char *err;
} cli_result;

static void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs auth_cli_main on a NULL-terminated argv, capturing stdout and stderr. */
static cli_result run_cli(const fixture *fx, const char *const *args)
{
    char out_path[400], err_path[400];
    char *argv[32];
    int argc = 0, saved_out, saved_err, fd_out, fd_err;
    cli_result r;

    while (args[argc] != NULL) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    snprintf(out_path, sizeof(out_path), "%s/stdout.txt", fx->dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr.txt", fx->dir);
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(STDOUT_FILENO);
    saved_err = dup(STDERR_FILENO);
    fd_out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fd_err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved_out >= 0 && saved_err >= 0 && fd_out >= 0 && fd_err >= 0);
    dup2(fd_out, STDOUT_FILENO);
    dup2(fd_err, STDERR_FILENO);
    close(fd_out);
    close(fd_err);
    r.rc = auth_cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    r.out = read_text(out_path);
    r.err = read_text(err_path);
    return r;
}

static void write_config(const fixture *fx)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"tls\": {\"cert\": \"cert.pem\", \"key\": \"key.pem\"},\n"
             " \"data_dir\": \"data\",\n"
             " \"auth\": {\"tokens_file\": \"%s\"}}\n",
             fx->tokens);
    write_text(fx->config, text);
}

/* The last line of s (without its newline) copied into buf. */
static void last_line(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);
    const char *start;
    assert_true(n > 0 && s[n - 1] == '\n');
    n--;
    start = s + n;
    while (start > s && start[-1] != '\n')
        start--;
    assert_true((size_t)(s + n - start) < size);
    memcpy(buf, start, (size_t)(s + n - start));
    buf[s + n - start] = '\0';
}

static void test_cli_create_list_revoke(void **state)
{
    fixture *fx = *state;
    char token[256], hdr[300], token2[256];
    auth_store *st = NULL;
    auth_identity who;
    rd_error err;
    cli_result r;
    char *text;
    struct stat sb;

    write_config(fx);
    {
        const char *args[] = {"token",  "create", "--config", fx->config, "--domain", "domain-a",
                              "--role", "admin",  "--name",   "ci",       NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 0);
    last_line(r.out, token, sizeof(token));
    assert_int_equal(strlen(token), AUTH_TOKEN_LEN);
    assert_memory_equal(token, "rdt_", 4);
    assert_non_null(strstr(r.out, "ci"));
    assert_non_null(strstr(r.out, "domain-a"));
    assert_non_null(strstr(r.out, "admin"));
    assert_non_null(strstr(r.out, "SIGHUP"));
    /* The secret appears once, on the last line only. */
    assert_true(strstr(r.out, token) == r.out + strlen(r.out) - AUTH_TOKEN_LEN - 1);
    assert_null(strstr(r.err, token));
    cli_result_free(&r);

    /* The file holds the hash, not the secret, and is private. */
    text = read_text(fx->tokens);
    assert_null(strstr(text, token));
    assert_null(strstr(text, token + 4));
    {
        char hash[65];
        util_sha256_hex(token, strlen(token), hash);
        assert_non_null(strstr(text, hash));
    }
    free(text);
    assert_int_equal(stat(fx->tokens, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    assert_int_equal(auth_open(fx->tokens, &st, &err), RD_OK);
    snprintf(hdr, sizeof(hdr), "Bearer %s", token);
    assert_int_equal(auth_authenticate(st, hdr, &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_ADMIN);
    assert_string_equal(who.name, "ci");
    assert_string_equal(who.domain_id, "domain-a");

    /* Same name again -> exit 1, nothing changed. */
    {
        const char *args[] = {"token",  "create", "--config", fx->config, "--domain", "domain-b",
                              "--role", "viewer", "--name",   "ci",       NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "already exists"));
    assert_string_equal(r.out, "");
    cli_result_free(&r);

    /* Default name <role>-<8 hex>, --opt=value form. */
    {
        char opt[400];
        snprintf(opt, sizeof(opt), "--config=%s", fx->config);
        const char *args[] = {"token", "create", opt, "--domain=root", "--role=system", NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 0);
    last_line(r.out, token2, sizeof(token2));
    assert_string_not_equal(token, token2);
    assert_non_null(strstr(r.out, "system-"));
    cli_result_free(&r);

    /* list: names, domains, roles; never hashes or secrets. */
    {
        const char *args[] = {"token", "list", "--config", fx->config, NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "NAME"));
    assert_non_null(strstr(r.out, "DOMAIN_ID"));
    assert_non_null(strstr(r.out, "CREATED_AT"));
    assert_non_null(strstr(r.out, "ci"));
    assert_non_null(strstr(r.out, "domain-a"));
    assert_non_null(strstr(r.out, "root"));
    assert_non_null(strstr(r.out, "system-"));
    assert_null(strstr(r.out, "rdt_"));
    text = read_text(fx->tokens);
    {
        const char *h = strstr(text, "\"sha256\": \"");
        char hash[65];
        assert_non_null(h);
        memcpy(hash, h + 11, 64);
        hash[64] = '\0';
        assert_null(strstr(r.out, hash));
    }
    free(text);
    cli_result_free(&r);

    /* revoke -> the reloaded server answers 401. */
    {
        const char *args[] = {"token", "revoke", "--config", fx->config, "ci", NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "SIGHUP"));
    cli_result_free(&r);
    assert_int_equal(auth_authenticate(st, hdr, &who, &err), RD_OK); /* until SIGHUP */
    assert_int_equal(auth_reload(st, &err), RD_OK);
    assert_int_equal(auth_authenticate(st, hdr, &who, &err), RD_ERR_AUTHENTICATE_FAILURE);
    snprintf(hdr, sizeof(hdr), "Bearer %s", token2);
    assert_int_equal(auth_authenticate(st, hdr, &who, &err), RD_OK);
    assert_int_equal(who.role, AUTH_ROLE_SYSTEM);
    assert_string_equal(who.domain_id, "root");
    auth_close(st);

    /* revoke an unknown name -> exit 1. */
    {
        const char *args[] = {"token", "revoke", "--config", fx->config, "ci", NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no token named 'ci'"));
    cli_result_free(&r);
}

static void test_cli_usage(void **state)
{
    fixture *fx = *state;
    static const char *const cfg = "@CONFIG@";
    const char *const cases[][12] = {
        {"token", NULL},
        {"token", "frobnicate", NULL},
        {"token", "create", NULL},
        {"token", "create", "--config", cfg, "--role", "admin", NULL},
        {"token", "create", "--config", cfg, "--domain", "d", NULL},
        {"token", "create", "--config", cfg, "--domain", "d", "--role", "root", NULL},
        {"token", "create", "--config", cfg, "--domain", "d e", "--role", "admin", NULL},
        {"token", "create", "--config", cfg, "--domain", "d", "--role", "admin", "--name", "",
         NULL},
        {"token", "create", "--config", cfg, "--domain", "d", "--role", "admin", "--bogus", NULL},
        {"token", "create", "--config", cfg, "--domain", "d", "--role", NULL},
        {"token", "create", "--config", cfg, "--domain", "d", "--role", "admin", "extra", NULL},
        {"token", "list", NULL},
        {"token", "list", "--config", cfg, "--role", "admin", NULL},
        {"token", "revoke", "--config", cfg, NULL},
        {"token", "revoke", "--config", cfg, "a", "b", NULL},
        {"token", "revoke", "x", NULL},
    };
    cli_result r;

    write_config(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[12];
        size_t k;
        for (k = 0; cases[i][k] != NULL; k++)
            args[k] = cases[i][k] == cfg ? fx->config : cases[i][k];
        args[k] = NULL;
        r = run_cli(fx, args);
        if (r.rc != 2)
            fail_msg("case %zu: exit %d, stderr '%s'", i, r.rc, r.err);
        assert_non_null(strstr(r.err, "usage"));
        assert_string_equal(r.out, "");
        cli_result_free(&r);
    }
    /* Nothing was created by the bad calls. */
    assert_int_equal(access(fx->tokens, F_OK), -1);

    {
        const char *args[] = {"token", "--help", NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage"));
    cli_result_free(&r);
}

static void test_cli_bad_files(void **state)
{
    fixture *fx = *state;
    cli_result r;
    char missing[400];

    /* A config that does not exist -> exit 1. */
    snprintf(missing, sizeof(missing), "%s/nope.json", fx->dir);
    {
        const char *args[] = {"token", "list", "--config", missing, NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 1);
    assert_true(strlen(r.err) > 0);
    cli_result_free(&r);

    /* An empty table lists just the header. */
    write_config(fx);
    {
        const char *args[] = {"token", "list", "--config", fx->config, NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "NAME"));
    cli_result_free(&r);

    /* A broken tokens file is reported and left alone. */
    write_text(fx->tokens, "{\"tokens\": [1]}");
    {
        const char *args[] = {"token", "create", "--config", fx->config, "--domain",
                              "d",     "--role", "viewer",   NULL};
        r = run_cli(fx, args);
    }
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "tokens[0]"));
    assert_string_equal(r.out, "");
    cli_result_free(&r);
    {
        char *text = read_text(fx->tokens);
        assert_string_equal(text, "{\"tokens\": [1]}");
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_parse),
        cmocka_unit_test(test_token_generate),
        cmocka_unit_test_setup_teardown(test_missing_file_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_create_list_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_bad_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
