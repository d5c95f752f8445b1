/*
 * test_store.c - unit tests of the RocksDB store (src/store/store.c).
 *
 * Every test opens a real database in its own temporary folder under /tmp
 * (mkdtemp) and removes the folder afterwards.  Error paths that log the
 * library's text capture stderr through dup2 into a temp file so the test can
 * check that the text reaches the log but not the caller's message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

typedef struct {
    char dir[256];
    char db[320];
    store *st;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    rd_error err = {0};
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    /* A subfolder that does not exist yet: store_open must create it. */
    snprintf(fx->db, sizeof(fx->db), "%s/data/db", fx->dir);
    if (store_open(fx->db, &fx->st, &err) != RD_OK)
        fail_msg("store_open: %s", err.message);
    assert_non_null(fx->st);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    store_close(fx->st);
    testkit_rm_tree(fx->dir);
    free(fx);
    return 0;
}

/* Closes and reopens the fixture's database. */
static void reopen(fixture *fx)
{
    rd_error err = {0};
    store_close(fx->st);
    fx->st = NULL;
    if (store_open(fx->db, &fx->st, &err) != RD_OK)
        fail_msg("store_open (reopen): %s", err.message);
    assert_non_null(fx->st);
}

/* Writes one key in one synced batch. */
static void put1(store *st, store_cf cf, const void *key, size_t klen, const void *val, size_t vlen)
{
    rd_error err = {0};
    store_batch *b = store_batch_new(st);
    assert_non_null(b);
    store_batch_put(b, cf, key, klen, val, vlen);
    if (store_write(st, b, &err) != RD_OK)
        fail_msg("store_write: %s", err.message);
    store_batch_free(b);
}

static void put_str(store *st, store_cf cf, const char *key, const char *val)
{
    put1(st, cf, key, strlen(key), val, strlen(val));
}

/* Expects key to hold exactly val (vlen bytes) and the copy to be
 * NUL-terminated. */
static void expect_bytes(store *st, store_cf cf, const void *key, size_t klen, const void *val,
                         size_t vlen)
{
    char *got = NULL;
    size_t glen = (size_t)-1;
    rd_error err = {0};
    rd_status rc = store_get(st, cf, key, klen, &got, &glen, &err);
    if (rc != RD_OK)
        fail_msg("store_get: status %d (%s)", (int)rc, err.message);
    assert_non_null(got);
    assert_int_equal(glen, vlen);
    assert_memory_equal(got, val, vlen);
    assert_int_equal(got[vlen], '\0');
    free(got);
}

static void expect_str(store *st, store_cf cf, const char *key, const char *val)
{
    expect_bytes(st, cf, key, strlen(key), val, strlen(val));
}

static void expect_missing(store *st, store_cf cf, const void *key, size_t klen)
{
    char *got = NULL;
    size_t glen = 0;
    rd_error err = {0};
    assert_int_equal(store_get(st, cf, key, klen, &got, &glen, &err), RD_ERR_NOT_FOUND);
    assert_null(got);
}

/* Runs store_open(dir) with stderr redirected to a temp file in tmpdir;
 * returns what was logged (malloc'd). */
static char *capture_open(const char *tmpdir, const char *dir, store **out, rd_error *err,
                          rd_status *rc)
{
    char path[512];
    int saved, fd;
    char *text;
    snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    *rc = store_open(dir, out, err);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    text = util_read_file(path, NULL);
    assert_non_null(text);
    unlink(path);
    return text;
}

/* The RocksDB text logged after "store: open <dir>: " (malloc'd, no
 * newline), or NULL if no such line was logged. */
static char *logged_rocksdb_text(const char *log, const char *dir)
{
    char marker[600];
    const char *p, *end;
    snprintf(marker, sizeof(marker), "store: open %s: ", dir);
    p = strstr(log, marker);
    if (p == NULL)
        return NULL;
    p += strlen(marker);
    end = strchr(p, '\n');
    if (end == NULL)
        end = p + strlen(p);
    return strndup(p, (size_t)(end - p));
}

/* ---- open / close ---------------------------------------------------- */

/* Data written in every family survives close and reopen; families do not
 * see each other's keys. */
static void test_reopen_persists(void **state)
{
    fixture *fx = *state;
    static const char *const vals[STORE_CF_COUNT] = {"meta-v", "repos-v", "plugins-v", "index-v",
                                                     "cache-v"};
    struct stat sb;

    assert_int_equal(stat(fx->db, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    for (int cf = 0; cf < STORE_CF_COUNT; cf++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", cf);
        put_str(fx->st, (store_cf)cf, key, vals[cf]);
    }
    reopen(fx);
    for (int cf = 0; cf < STORE_CF_COUNT; cf++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", cf);
        expect_str(fx->st, (store_cf)cf, key, vals[cf]);
        /* k<cf> lives only in its own family. */
        for (int other = 0; other < STORE_CF_COUNT; other++)
            if (other != cf)
                expect_missing(fx->st, (store_cf)other, key, strlen(key));
    }
    /* A second reopen of an existing database with all its families. */
    reopen(fx);
    expect_str(fx->st, STORE_CF_CACHE, "k4", "cache-v");
}

static void test_close_null_is_noop(void **state)
{
    (void)state;
    store_close(NULL);
}

/* A folder that cannot be created (its parent is a regular file). */
static void test_open_under_regular_file_fails(void **state)
{
    fixture *fx = *state;
    char file[320], dir[400];
    store *st = (store *)1;
    rd_error err = {0};
    rd_status rc;
    char *log;

    snprintf(file, sizeof(file), "%s/plain", fx->dir);
    assert_int_equal(util_write_file_atomic(file, "x", 1, 0600), 0);
    snprintf(dir, sizeof(dir), "%s/db", file);
    log = capture_open(fx->dir, dir, &st, &err, &rc);
    assert_int_equal(rc, RD_ERR_INTERNAL);
    assert_int_equal(err.code, RD_ERR_INTERNAL);
    assert_null(st);
    assert_true(strlen(err.message) > 0);
    /* Neither RocksDB's nor libc's wording reaches the caller. */
    assert_null(strstr(err.message, "IO error"));
    assert_null(strstr(err.message, "While"));
    assert_null(strstr(err.message, "Not a directory"));
    free(log);
}

/* RocksDB itself refuses: the data folder is a regular file.  Its text is
 * logged, never handed to the caller. */
static void test_open_on_regular_file_hides_rocksdb_text(void **state)
{
    fixture *fx = *state;
    char file[320];
    store *st = (store *)1;
    rd_error err = {0};
    rd_status rc;
    char *log, *lib;

    snprintf(file, sizeof(file), "%s/plainfile", fx->dir);
    assert_int_equal(util_write_file_atomic(file, "x", 1, 0600), 0);
    log = capture_open(fx->dir, file, &st, &err, &rc);
    assert_int_equal(rc, RD_ERR_INTERNAL);
    assert_int_equal(err.code, RD_ERR_INTERNAL);
    assert_null(st);
    assert_true(strlen(err.message) > 0);
    lib = logged_rocksdb_text(log, file);
    if (lib == NULL)
        fail_msg("RocksDB's error was not logged; log was: %s", log);
    assert_true(strlen(lib) > 0);
    if (strstr(err.message, lib) != NULL)
        fail_msg("message '%s' carries RocksDB's text '%s'", err.message, lib);
    assert_null(strstr(err.message, "IO error"));
    assert_null(strstr(err.message, "While"));
    free(lib);
    free(log);
}

/* A second open of a database that is already open fails on RocksDB's lock. */
static void test_open_twice_fails_on_lock(void **state)
{
    fixture *fx = *state;
    store *st = (store *)1;
    rd_error err = {0};
    rd_status rc;
    char *log, *lib;

    log = capture_open(fx->dir, fx->db, &st, &err, &rc);
    assert_int_equal(rc, RD_ERR_INTERNAL);
    assert_int_equal(err.code, RD_ERR_INTERNAL);
    assert_null(st);
    lib = logged_rocksdb_text(log, fx->db);
    if (lib == NULL)
        fail_msg("RocksDB's error was not logged; log was: %s", log);
    if (strstr(err.message, lib) != NULL)
        fail_msg("message '%s' carries RocksDB's text '%s'", err.message, lib);
    assert_null(strstr(err.message, "lock"));
    free(lib);
    free(log);
    /* The first handle still works. */
    put_str(fx->st, STORE_CF_META, "still", "open");
    expect_str(fx->st, STORE_CF_META, "still", "open");
}

/* ---- get ------------------------------------------------------------- */

/* A missing key is RD_ERR_NOT_FOUND and leaves err and the outputs alone. */
static void test_get_missing(void **state)
{
    fixture *fx = *state;
    char *val = (char *)"sentinel";
    size_t vlen = 77;
    rd_error err;
    err.code = RD_ERR_BAD_REQUEST;
    snprintf(err.message, sizeof(err.message), "untouched");

    assert_int_equal(store_get(fx->st, STORE_CF_PLUGINS, "nope", 4, &val, &vlen, &err),
                     RD_ERR_NOT_FOUND);
    assert_int_equal(err.code, RD_ERR_BAD_REQUEST);
    assert_string_equal(err.message, "untouched");
    assert_string_equal(val, "sentinel");
    assert_int_equal(vlen, 77);
    /* Deleted keys are missing too. */
    put_str(fx->st, STORE_CF_PLUGINS, "gone", "v");
    store_batch *b = store_batch_new(fx->st);
    assert_non_null(b);
    store_batch_delete(b, STORE_CF_PLUGINS, "gone", 4);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    expect_missing(fx->st, STORE_CF_PLUGINS, "gone", 4);
}

/* vlen is optional. */
static void test_get_without_length(void **state)
{
    fixture *fx = *state;
    char *val = NULL;
    rd_error err = {0};
    put_str(fx->st, STORE_CF_CACHE, "k", "hello");
    assert_int_equal(store_get(fx->st, STORE_CF_CACHE, "k", 1, &val, NULL, &err), RD_OK);
    assert_string_equal(val, "hello");
    free(val);
}

/* Composite keys with NUL separators and binary values round-trip exactly;
 * keys that differ only after a NUL are distinct. */
static void test_binary_keys_round_trip(void **state)
{
    fixture *fx = *state;
    char k1[64], k2[64], k3[64];
    size_t l1 = store_key(k1, sizeof(k1), "L", "dom", "plug", NULL);
    size_t l2 = store_key(k2, sizeof(k2), "L", "dom", "plug2", NULL);
    size_t l3 = store_key(k3, sizeof(k3), "L", "dom", NULL);
    static const char v1[] = {'a', '\0', 'b', '\0', '\xff', '\0'};
    static const char v2[] = {'\0'};

    assert_int_equal(l1, 10);
    assert_memory_equal(k1, "L\0dom\0plug", 10);
    assert_int_equal(l3, 5);
    put1(fx->st, STORE_CF_PLUGINS, k1, l1, v1, sizeof(v1));
    put1(fx->st, STORE_CF_PLUGINS, k2, l2, v2, sizeof(v2));
    expect_bytes(fx->st, STORE_CF_PLUGINS, k1, l1, v1, sizeof(v1));
    expect_bytes(fx->st, STORE_CF_PLUGINS, k2, l2, v2, sizeof(v2));
    /* The shorter composite key is a different key. */
    expect_missing(fx->st, STORE_CF_PLUGINS, k3, l3);
    /* A C-string view of k1 ("L") is a different key. */
    expect_missing(fx->st, STORE_CF_PLUGINS, k1, strlen(k1));
    /* An empty value. */
    put1(fx->st, STORE_CF_PLUGINS, "empty", 5, "", 0);
    expect_bytes(fx->st, STORE_CF_PLUGINS, "empty", 5, "", 0);
    reopen(fx);
    expect_bytes(fx->st, STORE_CF_PLUGINS, k1, l1, v1, sizeof(v1));
    expect_bytes(fx->st, STORE_CF_PLUGINS, k2, l2, v2, sizeof(v2));
}

/* ---- store_key ------------------------------------------------------- */

static void test_store_key(void **state)
{
    char buf[16];
    (void)state;
    memset(buf, 'x', sizeof(buf));
    /* "ab\0cd\0" = 6 bytes; the empty last part gives a trailing separator. */
    assert_int_equal(store_key(buf, sizeof(buf), "ab", "cd", "", NULL), 6);
    assert_memory_equal(buf, "ab\0cd\0", 6);
    /* One part, no separator. */
    assert_int_equal(store_key(buf, sizeof(buf), "single", NULL), 6);
    assert_memory_equal(buf, "single", 6);
    /* Exactly fills the buffer: "abc\0efg" = 7 bytes in 7. */
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(store_key(buf, 7, "abc", "efg", NULL), 7);
    assert_memory_equal(buf, "abc\0efg", 7);
    assert_int_equal(buf[7], 'x'); /* nothing written past size */
    /* Overflow: one byte short, in a part and in a separator. */
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(store_key(buf, 6, "abc", "efg", NULL), 0);
    assert_int_equal(buf[6], 'x');
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(store_key(buf, 3, "abc", "e", NULL), 0);
    assert_int_equal(buf[3], 'x');
    assert_int_equal(store_key(buf, 2, "abc", NULL), 0);
    assert_int_equal(store_key(buf, 0, "a", NULL), 0);
    /* A long part never writes past size. */
    {
        char big[2000];
        char small[8];
        memset(big, 'q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memset(small, 'x', sizeof(small));
        assert_int_equal(store_key(small, 4, "L", big, NULL), 0);
    }
}

/* ---- JSON ------------------------------------------------------------ */

static void test_get_json(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *in = json_pack("{s:s, s:i, s:[s, b], s:n}", "name", "p\xc3\xa9", "n", 42, "list", "x",
                           1, "none");
    json_t *out = NULL;
    store_batch *b = store_batch_new(fx->st);
    int same;
    assert_non_null(in);
    assert_non_null(b);
    assert_int_equal(store_batch_put_json(b, STORE_CF_REPOS, "r1", 2, in), 0);
    store_batch_put(b, STORE_CF_REPOS, "bad", 3, "{not json", 9);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);

    assert_int_equal(store_get_json(fx->st, STORE_CF_REPOS, "r1", 2, &out, &err), RD_OK);
    assert_non_null(out);
    same = json_equal(in, out);
    json_decref(out);
    json_decref(in);
    out = NULL;
    assert_true(same);
    /* Stored compactly. */
    put_str(fx->st, STORE_CF_REPOS, "r4", "x");
    b = store_batch_new(fx->st);
    assert_non_null(b);
    in = json_pack("{s:[i, i]}", "a", 1, 2);
    assert_non_null(in);
    assert_int_equal(store_batch_put_json(b, STORE_CF_REPOS, "r4", 2, in), 0);
    json_decref(in);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    expect_str(fx->st, STORE_CF_REPOS, "r4", "{\"a\":[1,2]}");

    /* Missing -> NOT_FOUND, err untouched. */
    rd_error_clear(&err);
    assert_int_equal(store_get_json(fx->st, STORE_CF_REPOS, "r3", 2, &out, &err), RD_ERR_NOT_FOUND);
    assert_int_equal(err.code, RD_OK);
    assert_null(out);
    /* Corrupt record -> INTERNAL with a generic message. */
    assert_int_equal(store_get_json(fx->st, STORE_CF_REPOS, "bad", 3, &out, &err), RD_ERR_INTERNAL);
    assert_int_equal(err.code, RD_ERR_INTERNAL);
    assert_null(out);
    assert_null(strstr(err.message, "{not json"));
}

/* What store_batch_put_json accepts (it encodes with JSON_ENCODE_ANY, so a
 * bare string or number) store_get_json must read back. */
static void test_get_json_bare_value(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    json_t *out = NULL;
    json_t *num = json_integer(7);
    json_t *str = json_string("v1");
    store_batch *b = store_batch_new(fx->st);
    int put_num, put_str_rc;
    assert_non_null(b);
    put_num = store_batch_put_json(b, STORE_CF_META, "schema_version", 14, num);
    put_str_rc = store_batch_put_json(b, STORE_CF_META, "name", 4, str);
    json_decref(num);
    json_decref(str);
    assert_int_equal(put_num, 0);
    assert_int_equal(put_str_rc, 0);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    expect_str(fx->st, STORE_CF_META, "schema_version", "7");

    if (store_get_json(fx->st, STORE_CF_META, "schema_version", 14, &out, &err) != RD_OK)
        fail_msg("a bare number written by store_batch_put_json cannot be read back: %s",
                 err.message);
    assert_true(json_is_integer(out));
    assert_int_equal(json_integer_value(out), 7);
    json_decref(out);
    out = NULL;
    if (store_get_json(fx->st, STORE_CF_META, "name", 4, &out, &err) != RD_OK)
        fail_msg("a bare string written by store_batch_put_json cannot be read back: %s",
                 err.message);
    assert_string_equal(json_string_value(out), "v1");
    json_decref(out);
}

/* ---- batches --------------------------------------------------------- */

/* Puts and deletes across several families become visible together, only
 * at store_write, and survive a reopen. */
static void test_batch_across_families(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    store_batch *b;

    put_str(fx->st, STORE_CF_INDEX, "old-index", "1");
    put_str(fx->st, STORE_CF_CACHE, "old-cache", "2");
    put_str(fx->st, STORE_CF_META, "replace", "before");

    b = store_batch_new(fx->st);
    assert_non_null(b);
    store_batch_put(b, STORE_CF_META, "replace", 7, "after", 5);
    store_batch_put(b, STORE_CF_REPOS, "repo-1", 6, "R", 1);
    store_batch_put(b, STORE_CF_PLUGINS, "L\0d\0p", 5, "P", 1);
    store_batch_delete(b, STORE_CF_INDEX, "old-index", 9);
    store_batch_delete(b, STORE_CF_CACHE, "old-cache", 9);
    /* A put then a delete of the same key in one batch: the delete wins. */
    store_batch_put(b, STORE_CF_CACHE, "transient", 9, "T", 1);
    store_batch_delete(b, STORE_CF_CACHE, "transient", 9);

    /* Nothing is visible before the write. */
    expect_str(fx->st, STORE_CF_META, "replace", "before");
    expect_missing(fx->st, STORE_CF_REPOS, "repo-1", 6);
    expect_str(fx->st, STORE_CF_INDEX, "old-index", "1");

    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);

    expect_str(fx->st, STORE_CF_META, "replace", "after");
    expect_str(fx->st, STORE_CF_REPOS, "repo-1", "R");
    expect_bytes(fx->st, STORE_CF_PLUGINS, "L\0d\0p", 5, "P", 1);
    expect_missing(fx->st, STORE_CF_INDEX, "old-index", 9);
    expect_missing(fx->st, STORE_CF_CACHE, "old-cache", 9);
    expect_missing(fx->st, STORE_CF_CACHE, "transient", 9);

    reopen(fx);
    expect_str(fx->st, STORE_CF_META, "replace", "after");
    expect_str(fx->st, STORE_CF_REPOS, "repo-1", "R");
    expect_bytes(fx->st, STORE_CF_PLUGINS, "L\0d\0p", 5, "P", 1);
    expect_missing(fx->st, STORE_CF_INDEX, "old-index", 9);
    expect_missing(fx->st, STORE_CF_CACHE, "old-cache", 9);
}

/* A batch with a value that cannot be encoded is refused as a whole: none
 * of its other changes are applied. */
static void test_batch_failed_encode_applies_nothing(void **state)
{
    fixture *fx = *state;
    rd_error err = {0};
    store_batch *b;

    put_str(fx->st, STORE_CF_INDEX, "keep", "1");
    b = store_batch_new(fx->st);
    assert_non_null(b);
    store_batch_put(b, STORE_CF_REPOS, "a", 1, "A", 1);
    store_batch_delete(b, STORE_CF_INDEX, "keep", 4);
    assert_int_equal(store_batch_put_json(b, STORE_CF_REPOS, "b", 1, NULL), -1);
    assert_int_equal(store_write(fx->st, b, &err), RD_ERR_INTERNAL);
    assert_int_equal(err.code, RD_ERR_INTERNAL);
    store_batch_free(b);
    expect_missing(fx->st, STORE_CF_REPOS, "a", 1);
    expect_missing(fx->st, STORE_CF_REPOS, "b", 1);
    expect_str(fx->st, STORE_CF_INDEX, "keep", "1");
}

static void test_batch_free_null(void **state)
{
    (void)state;
    store_batch_free(NULL);
}

/* ---- scans ----------------------------------------------------------- */

typedef struct {
    const char *bytes;
    size_t len;
} bkey;

#define BK(s)                                                                                      \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* Keys around every prefix boundary that matters: NUL separators, 0xff
 * bytes (where "increment the last byte" must carry), and keys that share
 * a prefix but are longer or shorter. */
static const bkey scan_keys[] = {
    BK(""),           BK("\x00"),         BK("a"),
    BK("a\x00"),      BK("a\x00x"),       BK("a\x00x\x00y"),
    BK("a\x01"),      BK("a\xfe"),        BK("a\xfe\xff"),
    BK("a\xff"),      BK("a\xff\x00"),    BK("a\xff\xff"),
    BK("a\xff\xffz"), BK("ab"),           BK("ab\x00p"),
    BK("b"),          BK("b\x00"),        BK("\xfe"),
    BK("\xfe\xff"),   BK("\xff"),         BK("\xff\x00"),
    BK("\xff\xff"),   BK("\xff\xff\x01"), BK("\xff\xff\xff"),
};
#define N_SCAN_KEYS (sizeof(scan_keys) / sizeof(scan_keys[0]))

typedef struct {
    char *keys[N_SCAN_KEYS + 1];
    size_t klens[N_SCAN_KEYS + 1];
    size_t n;
    size_t stop_after; /* 0 = never stop */
    int overflow;
    int bad_value;
} scan_seen;

/* Values are "v:" + the key bytes, so the callback can check the pairing. */
static int record_key(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    scan_seen *s = ud;
    if (vlen != klen + 2 || memcmp(val, "v:", 2) != 0 || memcmp(val + 2, key, klen) != 0)
        s->bad_value = 1;
    if (s->n >= N_SCAN_KEYS + 1) {
        s->overflow = 1;
        return 1;
    }
    s->keys[s->n] = malloc(klen + 1);
    if (s->keys[s->n] != NULL)
        memcpy(s->keys[s->n], key, klen);
    s->klens[s->n] = klen;
    s->n++;
    return s->stop_after != 0 && s->n >= s->stop_after;
}

static void seen_free(scan_seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    s->n = 0;
}

/* Bytewise order, shorter first on a common prefix (RocksDB's default). */
static int bkey_cmp(const void *a, const void *b)
{
    const bkey *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->bytes, y->bytes, n);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static void fill_scan_keys(store *st, store_cf cf)
{
    rd_error err = {0};
    store_batch *b = store_batch_new(st);
    assert_non_null(b);
    for (size_t i = 0; i < N_SCAN_KEYS; i++) {
        char val[64];
        memcpy(val, "v:", 2);
        memcpy(val + 2, scan_keys[i].bytes, scan_keys[i].len);
        store_batch_put(b, cf, scan_keys[i].bytes, scan_keys[i].len, val, scan_keys[i].len + 2);
    }
    assert_int_equal(store_write(st, b, &err), RD_OK);
    store_batch_free(b);
}

/* Scans prefix and compares with the expected list computed by brute force. */
static void check_scan(store *st, const char *prefix, size_t plen, size_t expect_min)
{
    bkey sorted[N_SCAN_KEYS];
    bkey want[N_SCAN_KEYS];
    size_t nwant = 0;
    scan_seen seen = {0};
    rd_error err = {0};

    memcpy(sorted, scan_keys, sizeof(sorted));
    qsort(sorted, N_SCAN_KEYS, sizeof(sorted[0]), bkey_cmp);
    for (size_t i = 0; i < N_SCAN_KEYS; i++)
        if (sorted[i].len >= plen && memcmp(sorted[i].bytes, prefix, plen) == 0)
            want[nwant++] = sorted[i];
    assert_true(nwant >= expect_min); /* guards the table itself */

    assert_int_equal(store_scan(st, STORE_CF_PLUGINS, prefix, plen, record_key, &seen, &err),
                     RD_OK);
    assert_false(seen.overflow);
    assert_false(seen.bad_value);
    if (seen.n != nwant) {
        char hex[80];
        size_t got = seen.n;
        util_hex(prefix, plen, hex);
        seen_free(&seen);
        fail_msg("prefix %s (%zu bytes): %zu keys, expected %zu", hex, plen, got, nwant);
    }
    for (size_t i = 0; i < nwant; i++) {
        assert_non_null(seen.keys[i]);
        if (seen.klens[i] != want[i].len || memcmp(seen.keys[i], want[i].bytes, want[i].len) != 0) {
            char hp[80], hk[80];
            util_hex(prefix, plen, hp);
            util_hex(want[i].bytes, want[i].len, hk);
            seen_free(&seen);
            fail_msg("prefix %s: key %zu differs from expected %s", hp, i, hk);
        }
    }
    seen_free(&seen);
}

static void test_scan_prefixes(void **state)
{
    fixture *fx = *state;

    fill_scan_keys(fx->st, STORE_CF_PLUGINS);
    /* Same keys plus extras in another family must never leak into scans. */
    fill_scan_keys(fx->st, STORE_CF_INDEX);
    put_str(fx->st, STORE_CF_INDEX, "a-index-only", "x");
    put_str(fx->st, STORE_CF_CACHE, "a", "x");

    check_scan(fx->st, "", 0, N_SCAN_KEYS); /* whole family */
    check_scan(fx->st, "a", 1, 13);
    check_scan(fx->st, "a\x00", 2, 3);
    check_scan(fx->st, "a\x00x", 3, 2);
    check_scan(fx->st, "ab", 2, 2);
    check_scan(fx->st, "a\xfe", 2, 2);
    check_scan(fx->st, "a\xff", 2, 4);
    check_scan(fx->st, "a\xff\xff", 3, 2);
    check_scan(fx->st, "a\xff\xff\xff", 4, 0);
    check_scan(fx->st, "b", 1, 2);
    check_scan(fx->st, "\x00", 1, 1);
    check_scan(fx->st, "\xfe", 1, 2);
    check_scan(fx->st, "\xff", 1, 5);
    check_scan(fx->st, "\xff\xff", 2, 3);
    check_scan(fx->st, "\xff\xff\xff", 3, 1);
    check_scan(fx->st, "\xff\xff\xff\xff", 4, 0);
    check_scan(fx->st, "c", 1, 0);
    check_scan(fx->st, "0", 1, 0);

    /* After a reopen (data now read from SST files, not the memtable). */
    reopen(fx);
    check_scan(fx->st, "", 0, N_SCAN_KEYS);
    check_scan(fx->st, "a\xff", 2, 4);
    check_scan(fx->st, "\xff", 1, 5);
}

/* The exact list for one prefix, written out by hand (not brute force). */
static void test_scan_exact_order(void **state)
{
    fixture *fx = *state;
    scan_seen seen = {0};
    rd_error err = {0};
    fill_scan_keys(fx->st, STORE_CF_PLUGINS);
    assert_int_equal(store_scan(fx->st, STORE_CF_PLUGINS, "a\xff", 2, record_key, &seen, &err),
                     RD_OK);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.klens[0], 2);
    assert_memory_equal(seen.keys[0], "a\xff", 2);
    assert_int_equal(seen.klens[1], 3);
    assert_memory_equal(seen.keys[1], "a\xff\x00", 3);
    assert_int_equal(seen.klens[2], 3);
    assert_memory_equal(seen.keys[2], "a\xff\xff", 3);
    assert_int_equal(seen.klens[3], 4);
    assert_memory_equal(seen.keys[3], "a\xff\xffz", 4);
    seen_free(&seen);
}

/* An empty family scans to nothing. */
static void test_scan_empty_family(void **state)
{
    fixture *fx = *state;
    scan_seen seen = {0};
    rd_error err = {0};
    assert_int_equal(store_scan(fx->st, STORE_CF_CACHE, "", 0, record_key, &seen, &err), RD_OK);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_scan(fx->st, STORE_CF_CACHE, "x", 1, record_key, &seen, &err), RD_OK);
    assert_int_equal(seen.n, 0);
}

/* A non-zero return from the callback stops the scan at once. */
static void test_scan_early_stop(void **state)
{
    fixture *fx = *state;
    scan_seen seen = {0};
    rd_error err = {0};
    fill_scan_keys(fx->st, STORE_CF_PLUGINS);

    seen.stop_after = 3;
    assert_int_equal(store_scan(fx->st, STORE_CF_PLUGINS, "a", 1, record_key, &seen, &err), RD_OK);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.klens[0], 1);
    assert_memory_equal(seen.keys[0], "a", 1);
    assert_int_equal(seen.klens[2], 3);
    assert_memory_equal(seen.keys[2], "a\x00x", 3);
    seen_free(&seen);

    seen.stop_after = 1;
    assert_int_equal(store_scan(fx->st, STORE_CF_PLUGINS, "", 0, record_key, &seen, &err), RD_OK);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.klens[0], 0); /* the empty key sorts first */
    seen_free(&seen);
}

/* Scans see the latest committed writes and deletes. */
static void test_scan_sees_deletes(void **state)
{
    fixture *fx = *state;
    scan_seen seen = {0};
    rd_error err = {0};
    store_batch *b;
    put_str(fx->st, STORE_CF_REPOS, "r1", "v:r1");
    put_str(fx->st, STORE_CF_REPOS, "r2", "v:r2");
    put_str(fx->st, STORE_CF_REPOS, "r3", "v:r3");
    b = store_batch_new(fx->st);
    assert_non_null(b);
    store_batch_delete(b, STORE_CF_REPOS, "r2", 2);
    assert_int_equal(store_write(fx->st, b, &err), RD_OK);
    store_batch_free(b);
    assert_int_equal(store_scan(fx->st, STORE_CF_REPOS, "r", 1, record_key, &seen, &err), RD_OK);
    assert_int_equal(seen.n, 2);
    assert_memory_equal(seen.keys[0], "r1", 2);
    assert_memory_equal(seen.keys[1], "r3", 2);
    seen_free(&seen);
}

/* ---- store_scan_parallel ---------------------------------------------------- */

#define PAR_N   3000
#define PAR_BIG 100000 /* bigger than one hand-over batch */

typedef struct {
    size_t n;            /* records seen by this thread */
    long last;           /* index of the last one (-1: none) */
    int unordered;       /* a record came before an earlier one */
    int bad;             /* a key or value not as written */
    long stop_at;        /* return non-zero on this index (-1: never) */
    unsigned char *seen; /* shared: seen[i] set by the one thread that saw i */
} par_seen;

static size_t par_vlen(long i)
{
    return i % 500 == 7 ? PAR_BIG : 7 + (size_t)(i % 37);
}

static void fill_par(store *st)
{
    rd_error err = {0};
    store_batch *b = store_batch_new(st);
    char *val = malloc(PAR_BIG);
    assert_non_null(b);
    assert_non_null(val);
    for (long i = 0; i < PAR_N; i++) {
        char key[16];
        size_t vlen = par_vlen(i);
        snprintf(key, sizeof(key), "p%05ld", i);
        memset(val, 'a' + (int)(i % 26), vlen);
        memcpy(val, key, 6);
        store_batch_put(b, STORE_CF_PLUGINS, key, 6, val, vlen);
    }
    store_batch_put(b, STORE_CF_PLUGINS, "q00000", 6, "q00000", 6); /* outside the prefix */
    assert_int_equal(store_write(st, b, &err), RD_OK);
    store_batch_free(b);
    free(val);
}

static int par_record(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    par_seen *ps = ud;
    long i;
    if (klen != 6 || key[0] != 'p' || sscanf(key + 1, "%5ld", &i) != 1 || i < 0 || i >= PAR_N) {
        ps->bad = 1;
        return 0;
    }
    if (vlen != par_vlen(i) || memcmp(val, key, 6) != 0 || val[vlen - 1] != 'a' + (int)(i % 26) ||
        ps->seen[i])
        ps->bad = 1;
    if (i <= ps->last)
        ps->unordered = 1;
    ps->seen[i] = 1;
    ps->last = i;
    ps->n++;
    return i == ps->stop_at;
}

/* Runs the parallel scan of prefix "p" on nthreads threads; the records
 * seen in all (each at most once, each thread's in key order). */
static size_t par_scan(store *st, size_t nthreads, long stop_at, unsigned char *seen)
{
    par_seen ps[4];
    void *uds[4];
    rd_error err = {0};
    size_t total = 0;
    memset(seen, 0, PAR_N);
    for (size_t t = 0; t < nthreads; t++) {
        ps[t] = (par_seen){0, -1, 0, 0, stop_at, seen};
        uds[t] = &ps[t];
    }
    assert_int_equal(
        store_scan_parallel(st, STORE_CF_PLUGINS, "p", 1, nthreads, par_record, uds, &err), RD_OK);
    for (size_t t = 0; t < nthreads; t++) {
        assert_false(ps[t].bad);
        assert_false(ps[t].unordered);
        total += ps[t].n;
    }
    return total;
}

/* Every record of the prefix reaches exactly one of the threads, whole
 * (values bigger than a batch included), each thread's in key order; a
 * non-zero return stops the scan. */
static void test_scan_parallel(void **state)
{
    fixture *fx = *state;
    unsigned char *seen = malloc(PAR_N);
    size_t n;
    assert_non_null(seen);
    fill_par(fx->st);
    for (int pass = 0; pass < 2; pass++) { /* memtable, then SST files */
        for (size_t nthreads = 1; nthreads <= 4; nthreads++) {
            assert_int_equal(par_scan(fx->st, nthreads, -1, seen), PAR_N);
            for (size_t i = 0; i < PAR_N; i++)
                assert_true(seen[i]);
        }
        n = par_scan(fx->st, 3, 1500, seen);
        assert_true(seen[1500]);
        assert_true(n > 0 && n < PAR_N);
        reopen(fx);
    }
    /* an empty range: no call */
    {
        par_seen ps = {0, -1, 0, 0, -1, seen};
        void *uds[1] = {&ps};
        rd_error err = {0};
        assert_int_equal(
            store_scan_parallel(fx->st, STORE_CF_CACHE, "", 0, 1, par_record, uds, &err), RD_OK);
        assert_int_equal(ps.n, 0);
    }
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
        cmocka_unit_test(test_close_null_is_noop),
        cmocka_unit_test_setup_teardown(test_open_under_regular_file_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_on_regular_file_hides_rocksdb_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_twice_fails_on_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_without_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_round_trip, setup, teardown),
        cmocka_unit_test(test_store_key),
        cmocka_unit_test_setup_teardown(test_get_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_json_bare_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_across_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_failed_encode_applies_nothing, setup, teardown),
        cmocka_unit_test(test_batch_free_null),
        cmocka_unit_test_setup_teardown(test_scan_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_exact_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_empty_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_early_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_sees_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_parallel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
