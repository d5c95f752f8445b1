/*
 * test_util.c - unit tests of the shared helpers (src/core/util.c): time
 * stamps, ids, hex, SHA-256 and the file helpers.
 *
 * File tests work in their own temporary folder under /tmp (mkdtemp) and
 * remove it afterwards; they set the umask to 022 while they run so the
 * expected modes do not depend on the caller's umask.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

typedef struct {
    char dir[256];
    mode_t old_umask;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_util.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->old_umask = umask(022);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    umask(fx->old_umask);
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

static void path_in(const fixture *fx, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", fx->dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

static int matches(const char *pattern, const char *s)
{
    regex_t re;
    int rc;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

#define ISO_PATTERN "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"

/* ---- time stamps ----------------------------------------------------- */

static void expect_iso(int64_t ms, const char *want)
{
    char buf[64];
    memset(buf, 'x', sizeof(buf));
    util_format_iso8601(ms, buf, sizeof(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("util_format_iso8601(%lld) = '%s', expected '%s'", (long long)ms, buf, want);
    assert_int_equal(strlen(buf), UTIL_TIMESTAMP_LEN);
}

static void test_format_iso8601_known(void **state)
{
    (void)state;
    expect_iso(0, "1970-01-01T00:00:00.000Z");
    expect_iso(1641024158094LL, "2022-01-01T08:02:38.094Z");
    expect_iso(1, "1970-01-01T00:00:00.001Z");
    expect_iso(999, "1970-01-01T00:00:00.999Z");
    expect_iso(1000, "1970-01-01T00:00:01.000Z");
    expect_iso(951782400000LL, "2000-02-29T00:00:00.000Z");  /* leap day */
    expect_iso(1709251199999LL, "2024-02-29T23:59:59.999Z"); /* end of a leap day */
    expect_iso(4102444800000LL, "2100-01-01T00:00:00.000Z"); /* past 2038 */
    expect_iso(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

/* Exactly UTIL_TIMESTAMP_LEN + 1 bytes is enough. */
static void test_format_iso8601_exact_buffer(void **state)
{
    char buf[UTIL_TIMESTAMP_LEN + 1];
    (void)state;
    util_format_iso8601(1641024158094LL, buf, sizeof(buf));
    assert_string_equal(buf, "2022-01-01T08:02:38.094Z");
}

/* Milliseconds before the epoch still format as a valid time stamp
 * (int64_t is signed): -1 ms is the last millisecond of 1969. */
static void test_format_iso8601_before_epoch(void **state)
{
    (void)state;
    expect_iso(-1, "1969-12-31T23:59:59.999Z");
    expect_iso(-1000, "1969-12-31T23:59:59.000Z");
    expect_iso(-1001, "1969-12-31T23:59:58.999Z");
}

static void test_now_iso8601(void **state)
{
    char before[64], now[UTIL_TIMESTAMP_LEN + 1], after[64];
    (void)state;
    util_format_iso8601(util_now_ms(), before, sizeof(before));
    util_now_iso8601(now, sizeof(now));
    util_format_iso8601(util_now_ms(), after, sizeof(after));
    assert_int_equal(strlen(now), UTIL_TIMESTAMP_LEN);
    assert_int_equal(strlen(now), 24);
    if (!matches(ISO_PATTERN, now))
        fail_msg("'%s' is not an ISO-8601 UTC time stamp with milliseconds", now);
    /* These strings sort in time order. */
    assert_true(strcmp(before, now) <= 0);
    assert_true(strcmp(now, after) <= 0);
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t ms = util_now_ms();
    int64_t wall = (int64_t)time(NULL) * 1000;
    int64_t m1 = util_monotonic_us();
    struct timespec ts = {0, 2000000}; /* 2 ms */
    nanosleep(&ts, NULL);
    int64_t m2 = util_monotonic_us();
    /* Within two seconds of time(2), in milliseconds. */
    assert_true(ms > wall - 2000 && ms < wall + 2000);
    assert_true(m2 - m1 >= 2000);
    assert_true(m2 - m1 < 10 * 1000 * 1000);
}

/* ---- hex, ids, hashes ------------------------------------------------ */

static void test_hex(void **state)
{
    static const unsigned char data[] = {0x00, 0x01, 0x0f, 0x10, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof(data) + 1];
    char one[3];
    char empty[1] = {'x'};
    (void)state;
    memset(out, 'x', sizeof(out));
    util_hex(data, sizeof(data), out);
    assert_string_equal(out, "00010f107f80abff");
    util_hex("\xa5", 1, one);
    assert_string_equal(one, "a5");
    util_hex(data, 0, empty);
    assert_string_equal(empty, "");
}

static void test_random_bytes(void **state)
{
    unsigned char a[32], b[32];
    (void)state;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(util_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(util_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_make_id(void **state)
{
    enum { N = 1000 };
    char *ids[N];
    char small[10];
    (void)state;
    for (int i = 0; i < N; i++) {
        char buf[32];
        assert_int_equal(util_make_id("plugin-", buf, sizeof(buf)), 0);
        assert_int_equal(strlen(buf), strlen("plugin-") + 12);
        if (!matches("^plugin-[0-9a-f]{12}$", buf))
            fail_msg("bad id '%s'", buf);
        ids[i] = strdup(buf);
        assert_non_null(ids[i]);
    }
    qsort(ids, N, sizeof(ids[0]), cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
    for (int i = 0; i < N; i++)
        free(ids[i]);

    /* The documented size (strlen(prefix) + 13) is enough; one less is not. */
    {
        char exact[sizeof("repo-") + 12];
        assert_int_equal(util_make_id("repo-", exact, sizeof(exact)), 0);
        assert_true(matches("^repo-[0-9a-f]{12}$", exact));
        assert_int_equal(util_make_id("repo-", exact, sizeof(exact) - 1), -1);
    }
    assert_int_equal(util_make_id("repo-", small, sizeof(small)), -1);
    /* An empty prefix is just the hex. */
    {
        char bare[13];
        assert_int_equal(util_make_id("", bare, sizeof(bare)), 0);
        assert_true(matches("^[0-9a-f]{12}$", bare));
    }
}

static void expect_sha(const void *data, size_t n, const char *want)
{
    char out[65];
    memset(out, 'x', sizeof(out));
    util_sha256_hex(data, n, out);
    assert_string_equal(out, want);
}

static void test_sha256_hex(void **state)
{
    static const char million_a_tail[] =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    (void)state;
    /* FIPS 180-2 / NIST test vectors. */
    expect_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* Binary data is hashed by length, not up to the first NUL: "a\0b"
     * differs from "a". */
    {
        char h1[65], h2[65];
        util_sha256_hex("a\0b", 3, h1);
        util_sha256_hex("a", 1, h2);
        assert_string_not_equal(h1, h2);
        assert_string_equal(h2, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
    }
    /* One million 'a' (long input). */
    {
        char *m = malloc(1000000);
        assert_non_null(m);
        memset(m, 'a', 1000000);
        expect_sha(m, 1000000, million_a_tail);
        free(m);
    }
}

/* ---- files ----------------------------------------------------------- */

static void expect_mode(const char *path, mode_t want)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    if ((sb.st_mode & 07777) != want)
        fail_msg("%s has mode %04o, expected %04o", path, (unsigned)(sb.st_mode & 07777),
                 (unsigned)want);
}

/* Only name is left in the folder (no temp files). */
static void expect_only_entry(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0, others = 0;
    char other[256] = "";
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strcmp(e->d_name, name) == 0)
            found++;
        else {
            others++;
            snprintf(other, sizeof(other), "%s", e->d_name);
        }
    }
    closedir(d);
    assert_int_equal(found, 1);
    if (others != 0)
        fail_msg("unexpected entry '%s' left in %s", other, dir);
}

static void test_write_read_round_trip(void **state)
{
    fixture *fx = *state;
    char path[320];
    size_t n = 100000, len = 0;
    unsigned char *data = malloc(n);
    char *back;

    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)((i * 7 + i / 256) & 0xff); /* many NULs and 0xff */
    data[0] = 0;
    data[n - 1] = 0;
    path_in(fx, "blob.bin", path, sizeof(path));
    assert_int_equal(util_write_file_atomic(path, data, n, 0600), 0);
    back = util_read_file(path, &len);
    assert_non_null(back);
    assert_int_equal(len, n);
    assert_memory_equal(back, data, n);
    assert_int_equal(back[n], '\0');
    free(back);
    expect_mode(path, 0600);
    expect_only_entry(fx->dir, "blob.bin");

    /* len is optional. */
    back = util_read_file(path, NULL);
    assert_non_null(back);
    free(back);
    free(data);
}

/* Sizes around the reader's buffer growth steps. */
static void test_read_sizes(void **state)
{
    fixture *fx = *state;
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 16384, 65537};
    char path[320];
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], len = 12345;
        char *data = malloc(n + 1);
        char *back;
        assert_non_null(data);
        for (size_t i = 0; i < n; i++)
            data[i] = (char)(i % 251);
        path_in(fx, "sized", path, sizeof(path));
        assert_int_equal(util_write_file_atomic(path, data, n, 0644), 0);
        back = util_read_file(path, &len);
        assert_non_null(back);
        if (len != n)
            fail_msg("size %zu read back as %zu", n, len);
        assert_memory_equal(back, data, n);
        assert_int_equal(back[n], '\0');
        free(back);
        free(data);
    }
}

/* The mode argument is honoured, also when replacing an existing file with
 * another mode; the replacement is complete. */
static void test_write_mode_and_replace(void **state)
{
    fixture *fx = *state;
    char path[320];
    char *back;
    size_t len = 0;

    path_in(fx, "conf.json", path, sizeof(path));
    assert_int_equal(util_write_file_atomic(path, "a long first version", 20, 0644), 0);
    expect_mode(path, 0644);
    assert_int_equal(util_write_file_atomic(path, "short", 5, 0640), 0);
    expect_mode(path, 0640);
    back = util_read_file(path, &len);
    assert_non_null(back);
    assert_int_equal(len, 5);
    assert_string_equal(back, "short");
    free(back);
    assert_int_equal(util_write_file_atomic(path, "x", 1, 0600), 0);
    expect_mode(path, 0600);
    expect_only_entry(fx->dir, "conf.json");
    /* An empty file. */
    assert_int_equal(util_write_file_atomic(path, "", 0, 0600), 0);
    back = util_read_file(path, &len);
    assert_non_null(back);
    assert_int_equal(len, 0);
    assert_string_equal(back, "");
    free(back);
}

static void test_file_errors(void **state)
{
    fixture *fx = *state;
    char path[320];
    size_t len = 777;

    path_in(fx, "missing", path, sizeof(path));
    errno = 0;
    assert_null(util_read_file(path, &len));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(len, 777);

    /* A folder is not a readable file. */
    errno = 0;
    assert_null(util_read_file(fx->dir, &len));
    assert_int_not_equal(errno, 0);

    /* Writing into a folder that does not exist fails and leaves nothing. */
    path_in(fx, "nodir/file", path, sizeof(path));
    errno = 0;
    assert_int_equal(util_write_file_atomic(path, "x", 1, 0600), -1);
    assert_int_equal(errno, ENOENT);

    /* Replacing a folder fails; the folder and no temp file remain. */
    path_in(fx, "adir", path, sizeof(path));
    assert_int_equal(mkdir(path, 0700), 0);
    {
        char inner[400];
        snprintf(inner, sizeof(inner), "%s/keep", path);
        assert_int_equal(util_write_file_atomic(inner, "k", 1, 0600), 0);
    }
    errno = 0;
    assert_int_equal(util_write_file_atomic(path, "x", 1, 0600), -1);
    assert_int_not_equal(errno, 0);
    expect_only_entry(fx->dir, "adir");
}

static void expect_dir(const char *path, mode_t want)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    if ((sb.st_mode & 0777) != want)
        fail_msg("%s has mode %04o, expected %04o", path, (unsigned)(sb.st_mode & 0777),
                 (unsigned)want);
}

static void test_mkdir_p(void **state)
{
    fixture *fx = *state;
    char path[320], mid[320], file[320], under[400];

    path_in(fx, "a/b/c/d", path, sizeof(path));
    path_in(fx, "a/b", mid, sizeof(mid));
    assert_int_equal(util_mkdir_p(path), 0);
    expect_dir(path, 0750);
    expect_dir(mid, 0750);
    /* Existing: fine, again. */
    assert_int_equal(util_mkdir_p(path), 0);
    assert_int_equal(util_mkdir_p(mid), 0);
    /* Trailing slash and doubled slashes. */
    path_in(fx, "x//y/", path, sizeof(path));
    assert_int_equal(util_mkdir_p(path), 0);
    path_in(fx, "x/y", path, sizeof(path));
    expect_dir(path, 0750);
    /* A file in the way. */
    path_in(fx, "plain", file, sizeof(file));
    assert_int_equal(util_write_file_atomic(file, "x", 1, 0600), 0);
    snprintf(under, sizeof(under), "%s/sub/deeper", file);
    errno = 0;
    assert_int_equal(util_mkdir_p(under), -1);
    assert_int_equal(errno, ENOTDIR);
    /* Bad input. */
    assert_int_equal(util_mkdir_p(""), -1);
}

/* A relative path is created relative to the working folder. */
static void test_mkdir_p_relative(void **state)
{
    fixture *fx = *state;
    char cwd[1024], path[320];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(fx->dir), 0);
    int rc = util_mkdir_p("rel/one/two");
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    path_in(fx, "rel/one/two", path, sizeof(path));
    expect_dir(path, 0750);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_iso8601_known),
        cmocka_unit_test(test_format_iso8601_exact_buffer),
        cmocka_unit_test(test_format_iso8601_before_epoch),
        cmocka_unit_test(test_now_iso8601),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_make_id),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test_setup_teardown(test_write_read_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_mode_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p_relative, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
