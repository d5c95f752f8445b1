/*
 * backup.c - the files of a backup folder (backup.h): copying with SHA-256
 * and fsync, checking a folder against its manifest, removing and
 * re-owning trees.
 */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define COPY_CHUNK (1 << 20)

/* fsyncs a folder so the names in it are durable. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Streams src into dst (when dst is not NULL: created exclusively, mode
 * 0600, fsynced) and hashes it; *size and hex (65 bytes) receive the
 * length and SHA-256. */
static int hash_copy(const char *src, const char *dst, long long *size, char *hex, char *reason,
                     size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *buf = malloc(COPY_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int in = -1, out = -1, rc = -1;
    ssize_t r;

    *size = 0;
    if (buf == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        snprintf(reason, n, "out of memory");
        goto done;
    }
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(reason, n, "cannot read %s: %s", src, strerror(errno));
        goto done;
    }
    if (dst != NULL && (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        snprintf(reason, n, "cannot create %s: %s", dst, strerror(errno));
        goto done;
    }
    while ((r = read(in, buf, COPY_CHUNK)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(reason, n, "cannot read %s: %s", src, strerror(errno));
            goto done;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        *size += r;
        for (ssize_t off = 0; out >= 0 && off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                snprintf(reason, n, "cannot write %s: %s", dst, strerror(errno));
                goto done;
            }
            off += w;
        }
    }
    if (out >= 0 && fsync(out) != 0) {
        snprintf(reason, n, "cannot write %s: %s", dst, strerror(errno));
        goto done;
    }
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    util_hex(md, mdlen, hex);
    rc = 0;
done:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == 0) {
        snprintf(reason, n, "cannot write %s: %s", dst, strerror(errno));
        rc = -1;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

int backup_copy_file(const char *src, const char *root, const char *rel, json_t *files,
                     char *reason, size_t n)
{
    char *dst = util_strdup_printf("%s/%s", root, rel);
    char hex[65];
    long long size = 0;
    int rc = -1;

    if (dst == NULL) {
        snprintf(reason, n, "out of memory");
        goto done;
    }
    if (hash_copy(src, dst, &size, hex, reason, n) != 0)
        goto done;
    json_array_append_new(
        files, json_pack("{s:s,s:I,s:s}", "path", rel, "size", (json_int_t)size, "sha256", hex));
    rc = 0;
done:
    free(dst);
    return rc;
}

static int skipped(const char *name, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
        if (strcmp(name, skip[i]) == 0)
            return 1;
    return 0;
}

int backup_copy_dir(const char *src_dir, const char *root, const char *sub, const char *const *skip,
                    json_t *files, char *reason, size_t n)
{
    char *dst_dir = util_strdup_printf("%s/%s", root, sub);
    DIR *d = NULL;
    struct dirent *e;
    int rc = -1;

    if (dst_dir == NULL) {
        snprintf(reason, n, "out of memory");
        goto done;
    }
    if (mkdir(dst_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(reason, n, "cannot create %s: %s", dst_dir, strerror(errno));
        goto done;
    }
    d = opendir(src_dir);
    if (d == NULL) {
        snprintf(reason, n, "cannot read %s: %s", src_dir, strerror(errno));
        goto done;
    }
    while ((e = readdir(d)) != NULL) {
        char *src = util_strdup_printf("%s/%s", src_dir, e->d_name);
        char *rel = util_strdup_printf("%s/%s", sub, e->d_name);
        struct stat st;
        int ok = src != NULL && rel != NULL;
        if (ok && !skipped(e->d_name, skip) && lstat(src, &st) == 0 && S_ISREG(st.st_mode))
            ok = backup_copy_file(src, root, rel, files, reason, n) == 0;
        else if (!ok)
            snprintf(reason, n, "out of memory");
        free(src);
        free(rel);
        if (!ok)
            goto done;
    }
    sync_dir(dst_dir);
    sync_dir(root);
    rc = 0;
done:
    if (d != NULL)
        closedir(d);
    free(dst_dir);
    return rc;
}

/* One manifest entry: a relative path without "..", present with its size
 * and hash. */
static int verify_entry(const char *dir, json_t *entry, char *reason, size_t n)
{
    const char *rel = json_string_value(json_object_get(entry, "path"));
    const char *want = json_string_value(json_object_get(entry, "sha256"));
    json_t *jsize = json_object_get(entry, "size");
    char *path = NULL, hex[65];
    long long size = 0;
    int rc = -1;

    if (rel == NULL || want == NULL || !json_is_integer(jsize) || rel[0] == '/' ||
        strstr(rel, "..") != NULL) {
        snprintf(reason, n, "%s/manifest.json: a malformed file entry", dir);
        goto done;
    }
    path = util_strdup_printf("%s/%s", dir, rel);
    if (path == NULL || hash_copy(path, NULL, &size, hex, reason, n) != 0)
        goto done;
    if (size != json_integer_value(jsize) || strcmp(hex, want) != 0) {
        snprintf(reason, n, "%s: %s does not match the manifest (size %lld, expected %lld%s)", dir,
                 rel, size, (long long)json_integer_value(jsize),
                 size == json_integer_value(jsize) ? "; SHA-256 differs" : "");
        goto done;
    }
    rc = 0;
done:
    free(path);
    return rc;
}

int backup_verify(const char *dir, json_t **manifest, char *reason, size_t n)
{
    char *path = util_strdup_printf("%s/manifest.json", dir);
    json_error_t jerr;
    json_t *m = NULL, *files, *entry;
    const char *format;
    size_t i;
    int rc = -1;

    *manifest = NULL;
    if (path == NULL) {
        snprintf(reason, n, "out of memory");
        goto done;
    }
    if (access(path, F_OK) != 0) {
        snprintf(reason, n,
                 "%s is not a repod backup (no manifest.json: missing, or the backup "
                 "did not finish)",
                 dir);
        goto done;
    }
    m = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    files = json_object_get(m, "files");
    format = json_string_value(json_object_get(m, "format"));
    if (m == NULL || !json_is_array(files) ||
        json_integer_value(json_object_get(m, "version")) != 1 || format == NULL ||
        strcmp(format, "repod-backup") != 0) {
        snprintf(reason, n, "%s/manifest.json is not a repod backup manifest (version 1)", dir);
        goto done;
    }
    json_array_foreach(files, i, entry)
    {
        if (verify_entry(dir, entry, reason, n) != 0)
            goto done;
    }
    *manifest = json_incref(m);
    rc = 0;
done:
    json_decref(m);
    free(path);
    return rc;
}

int backup_dir_nonempty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    while (d != NULL && !found && (e = readdir(d)) != NULL)
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return found;
}

static unsigned chown_uid, chown_gid;

static int chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (lchown(path, chown_uid, chown_gid) != 0)
        return 0; /* best effort: the server reports what it cannot open */
    return 0;
}

void backup_chown_tree(const char *path, unsigned uid, unsigned gid)
{
    chown_uid = uid;
    chown_gid = gid;
    nftw(path, chown_one, 16, FTW_PHYS);
}
