/*
 * store_dir.c - the store's folder before it is opened: can it be opened
 * (writable, not held by another process), and taking back what a failed
 * first start created in it.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* 0 when the RocksDB LOCK file in dir is not locked by another process
 * (or does not exist); -1 with the holder's pid in *pid otherwise. */
static int lock_free(const char *dir, long *pid)
{
    char *path = util_strdup_printf("%s/LOCK", dir);
    struct flock fl;
    int fd, rc = 0;

    if (path == NULL)
        return 0;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        /* RocksDB locks the whole file with fcntl(F_SETLK, F_WRLCK) */
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
            *pid = (long)fl.l_pid;
            rc = -1;
        }
        close(fd);
    }
    free(path);
    return rc;
}

int store_check_dir(const char *dir, char *reason, size_t n)
{
    struct stat st;
    char *parent = NULL, *slash;
    long pid = 0;
    int rc = -1;

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(reason, n, "%s is not a folder", dir);
            goto done;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            snprintf(reason, n, "%s is not writable: %s", dir, strerror(errno));
            goto done;
        }
        if (lock_free(dir, &pid) != 0) {
            snprintf(reason, n, "%s is in use by another process (pid %ld; is repod running?)", dir,
                     pid);
            goto done;
        }
        rc = 0;
        goto done;
    }
    if (errno != ENOENT) {
        snprintf(reason, n, "cannot use %s: %s", dir, strerror(errno));
        goto done;
    }
    /* missing: the nearest existing parent must let us create it */
    parent = strdup(dir);
    if (parent == NULL) {
        rc = 0;
        goto done;
    }
    for (;;) {
        slash = strrchr(parent, '/');
        if (slash == NULL) {
            snprintf(parent, strlen(parent) + 1, ".");
        } else if (slash == parent) {
            parent[1] = '\0';
        } else {
            *slash = '\0';
        }
        if (stat(parent, &st) == 0 || errno != ENOENT || strcmp(parent, ".") == 0 ||
            strcmp(parent, "/") == 0)
            break;
    }
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode) || access(parent, W_OK | X_OK) != 0) {
        snprintf(reason, n, "cannot create %s: %s is not a writable folder", dir, parent);
        goto done;
    }
    rc = 0;
done:
    free(parent);
    return rc;
}

struct store_undo {
    char *dir;
    int active;      /* 0: a database was there already; nothing to undo */
    int dir_existed; /* dir existed: remove only new entries */
    char **names;    /* entries present before (NULL-terminated) */
};

store_undo *store_undo_begin(const char *dir)
{
    store_undo *u = calloc(1, sizeof(*u));
    char *current = util_strdup_printf("%s/CURRENT", dir);
    DIR *d = NULL;
    struct dirent *e;
    size_t count = 0, cap = 16;

    if (u == NULL || current == NULL || (u->dir = strdup(dir)) == NULL)
        goto fail;
    u->active = access(current, F_OK) != 0;
    d = opendir(dir);
    u->dir_existed = d != NULL;
    u->names = calloc(cap, sizeof(char *));
    if (u->names == NULL)
        goto fail;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (count + 1 >= cap) {
            char **more = realloc(u->names, cap * 2 * sizeof(char *));
            if (more == NULL)
                goto fail;
            u->names = more;
            cap *= 2;
        }
        if ((u->names[count] = strdup(e->d_name)) == NULL)
            goto fail;
        u->names[++count] = NULL;
    }
    if (d != NULL)
        closedir(d);
    free(current);
    return u;
fail:
    if (d != NULL)
        closedir(d);
    free(current);
    store_undo_free(u);
    return NULL;
}

void store_undo_apply(const store_undo *u)
{
    DIR *d;
    struct dirent *e;

    if (u == NULL || !u->active)
        return;
    if (!u->dir_existed) {
        util_remove_tree(u->dir);
        return;
    }
    d = opendir(u->dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        int known = 0;
        char *path;
        for (size_t i = 0; u->names[i] != NULL && !known; i++)
            known = strcmp(u->names[i], e->d_name) == 0;
        if (known || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        path = util_strdup_printf("%s/%s", u->dir, e->d_name);
        if (path != NULL)
            util_remove_tree(path);
        free(path);
    }
    if (d != NULL)
        closedir(d);
}

void store_undo_free(store_undo *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; u->names != NULL && u->names[i] != NULL; i++)
        free(u->names[i]);
    free(u->names);
    free(u->dir);
    free(u);
}
