/*
 * backup_cli.c - `repod backup` and `repod restore` (backup.h).
 *
 *   repod backup  --config FILE --to DIR
 *   repod restore --from DIR --config FILE [--force]
 *
 * backup: with the server running, asks it over <data_dir>/control.sock for
 * a checkpoint (the server holds the database's lock), copies it into
 * DIR/db with the tokens file and the config, writes manifest.json last and
 * removes the checkpoint.  With no server running, copies the data folder
 * itself while holding the database's lock, so no server starts meanwhile.
 *
 * restore: verifies DIR against its manifest, refuses a data folder a
 * server holds, and a non-empty one unless --force (which empties it),
 * copies the files back, opens the restored database once to check it, and
 * gives everything to the owner of the data folder (run as root for a
 * folder owned by the service user).
 *
 * Exit codes: 0 done, 1 failure ("repod backup: REASON" on stderr), 2 bad
 * usage.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

#define REASON_MAX 1024

/* The files of a data folder that are not the database. */
static const char *const not_db[] = {
    "tokens.json", "repod.pid", BACKUP_CONTROL_SOCKET, "LOCK", NULL,
};

typedef struct {
    const char *verb;
    const char *config;
    const char *to;
    const char *from;
    int force;
} bk_args;

static void usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  repod backup --config FILE --to DIR\n"
               "      copy the data of the server FILE configures into DIR (new or empty):\n"
               "      a consistent checkpoint taken by the running server, or the files of a\n"
               "      stopped one; the tokens file; the config; manifest.json with SHA-256s\n"
               "  repod restore --from DIR --config FILE [--force]\n"
               "      verify the backup in DIR and put it back into the data_dir and\n"
               "      auth.tokens_file of FILE; the server must be stopped; --force\n"
               "      empties a non-empty data_dir first\n"
               "Exit status: 0 done, 1 failure, 2 usage.\n");
}

/* "--opt VALUE" or "--opt=VALUE"; returns the value and advances *i, or
 * NULL when argv[*i] is not opt. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, int *missing)
{
    size_t len = strlen(opt);
    if (strncmp(argv[*i], opt, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* 0, or CLI_USAGE after printing what is wrong. */
static int parse(int argc, char **argv, bk_args *a)
{
    int backup = strcmp(argv[0], "backup") == 0;
    memset(a, 0, sizeof(*a));
    a->verb = argv[0];
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--config", &missing)) != NULL)
            a->config = v;
        else if (backup && (v = opt_value(argc, argv, &i, "--to", &missing)) != NULL)
            a->to = v;
        else if (!backup && (v = opt_value(argc, argv, &i, "--from", &missing)) != NULL)
            a->from = v;
        else if (!backup && strcmp(argv[i], "--force") == 0)
            a->force = 1;
        else if (missing) {
            fprintf(stderr, "repod %s: %s needs a value\n", a->verb, argv[i]);
            return CLI_USAGE;
        } else {
            fprintf(stderr, "repod %s: unknown argument '%s'\n", a->verb, argv[i]);
            return CLI_USAGE;
        }
        if (v != NULL && v[0] == '\0') {
            fprintf(stderr, "repod %s: %s needs a value\n", a->verb, argv[i]);
            return CLI_USAGE;
        }
    }
    if (a->config == NULL || (backup ? a->to == NULL : a->from == NULL)) {
        fprintf(stderr, "repod %s: --config FILE and %s are required\n", a->verb,
                backup ? "--to DIR" : "--from DIR");
        return CLI_USAGE;
    }
    return 0;
}

/* Connects to the control socket of data_dir: the fd, or -1 (errno). */
static int control_connect(const char *data_dir)
{
    struct sockaddr_un sa;
    int fd;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", data_dir,
                         BACKUP_CONTROL_SOCKET) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        fd = -1;
    }
    return fd;
}

/* Asks the server behind fd for a checkpoint: its folder (malloc'd) or
 * NULL with the reason. */
static char *ask_checkpoint(int fd, char *reason, size_t n)
{
    static const char req[] = "{\"op\": \"checkpoint\"}\n";
    char buf[4096];
    size_t len = 0;
    struct timeval tv = {600, 0};
    json_t *rep = NULL;
    char *dir = NULL;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0) {
        snprintf(reason, n, "cannot talk to the server: %s", strerror(errno));
        goto done;
    }
    while (len < sizeof(buf) - 1 && memchr(buf, '\n', len) == NULL) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    rep = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    if (!json_is_true(json_object_get(rep, "ok")) ||
        json_string_value(json_object_get(rep, "dir")) == NULL) {
        snprintf(reason, n, "the server did not take the checkpoint: %s",
                 json_string_value(json_object_get(rep, "message"))
                     ? json_string_value(json_object_get(rep, "message"))
                     : "no answer");
        goto done;
    }
    dir = strdup(json_string_value(json_object_get(rep, "dir")));
done:
    json_decref(rep);
    return dir;
}

/* Takes the database's lock (the fcntl lock RocksDB takes on LOCK) so that
 * no server opens data_dir meanwhile: the fd, or -1 when a server holds it
 * (*pid) or there is no database (*pid 0). */
static int lock_data_dir(const char *data_dir, long *pid)
{
    char *path = util_strdup_printf("%s/LOCK", data_dir);
    struct flock fl;
    int fd = path != NULL ? open(path, O_RDWR | O_CLOEXEC) : -1;

    *pid = 0;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fd >= 0 && fcntl(fd, F_SETLK, &fl) != 0) {
        if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
            *pid = (long)fl.l_pid;
        *pid = *pid != 0 ? *pid : -1;
        close(fd);
        fd = -1;
    }
    free(path);
    return fd;
}

/* Creates dir (parents too) or accepts it empty. */
static int prepare_target(const char *dir, char *reason, size_t n)
{
    if (backup_dir_nonempty(dir)) {
        snprintf(reason, n, "%s is not empty; back up into a new or empty folder", dir);
        return -1;
    }
    if (util_mkdir_p(dir) != 0 || chmod(dir, 0700) != 0) {
        snprintf(reason, n, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmd_backup(const bk_args *a)
{
    repod_conf *conf = NULL;
    rd_error err = {RD_OK, ""};
    char reason[REASON_MAX] = "", stamp[UTIL_TIMESTAMP_LEN + 1];
    char *checkpoint = NULL, *manifest_path = NULL, *text = NULL;
    json_t *files = json_array(), *manifest = NULL;
    int fd = -1, lock_fd = -1, rc = CLI_FAIL, online;
    long pid = 0;
    json_int_t bytes = 0;
    size_t i;
    json_t *f;

    if (conf_load_values(a->config, &conf, &err) != RD_OK) {
        snprintf(reason, sizeof(reason), "%s", err.message);
        goto done;
    }
    util_now_iso8601(stamp, sizeof(stamp));
    fd = control_connect(conf->data_dir);
    online = fd >= 0;
    if (!online && errno == EACCES) {
        snprintf(reason, sizeof(reason),
                 "cannot connect to %s/%s: %s (run as root or as the user the server runs as)",
                 conf->data_dir, BACKUP_CONTROL_SOCKET, strerror(EACCES));
        goto done;
    }
    if (!online) {
        lock_fd = lock_data_dir(conf->data_dir, &pid);
        if (lock_fd < 0 && pid != 0) {
            snprintf(reason, sizeof(reason),
                     "%s is in use (pid %ld) but its control socket %s/%s does not answer; is "
                     "that a repod of this version?",
                     conf->data_dir, pid, conf->data_dir, BACKUP_CONTROL_SOCKET);
            goto done;
        }
        if (lock_fd < 0) {
            snprintf(reason, sizeof(reason),
                     "%s holds no database (no running server there, "
                     "and no LOCK file)",
                     conf->data_dir);
            goto done;
        }
    }
    if (prepare_target(a->to, reason, sizeof(reason)) != 0)
        goto done;
    if (online) {
        checkpoint = ask_checkpoint(fd, reason, sizeof(reason));
        if (checkpoint == NULL ||
            backup_copy_dir(checkpoint, a->to, "db", NULL, files, reason, sizeof(reason)) != 0)
            goto done;
    } else if (backup_copy_dir(conf->data_dir, a->to, "db", not_db, files, reason,
                               sizeof(reason)) != 0) {
        goto done;
    }
    if (access(conf->tokens_file, F_OK) == 0 &&
        backup_copy_file(conf->tokens_file, a->to, "tokens.json", files, reason, sizeof(reason)) !=
            0)
        goto done;
    if (backup_copy_file(a->config, a->to, "repod.json", files, reason, sizeof(reason)) != 0)
        goto done;
    json_array_foreach(files, i, f)
    {
        bytes += json_integer_value(json_object_get(f, "size"));
    }
    manifest = json_pack("{s:s,s:i,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:O}", "format", "repod-backup",
                         "version", 1, "repod_version", REPOD_VERSION, "created_at", stamp, "mode",
                         online ? "online checkpoint" : "copy of a stopped server's data", "source",
                         "config", conf->path, "data_dir", conf->data_dir, "tokens_file",
                         conf->tokens_file, "files", files);
    text = manifest != NULL ? json_dumps(manifest, JSON_INDENT(1)) : NULL;
    manifest_path = util_strdup_printf("%s/manifest.json", a->to);
    if (text == NULL || manifest_path == NULL ||
        util_write_file_atomic(manifest_path, text, strlen(text), 0600) != 0) {
        snprintf(reason, sizeof(reason), "cannot write %s/manifest.json: %s", a->to,
                 strerror(errno));
        goto done;
    }
    printf("repod backup: %zu files, %lld bytes, from %s into %s (%s)\n", json_array_size(files),
           (long long)bytes, conf->data_dir, a->to,
           online ? "online checkpoint" : "server stopped");
    rc = CLI_OK;
done:
    if (rc != CLI_OK)
        fprintf(stderr, "repod backup: %s\n", reason);
    if (checkpoint != NULL)
        util_remove_tree(checkpoint);
    if (fd >= 0)
        close(fd);
    if (lock_fd >= 0)
        close(lock_fd);
    free(checkpoint);
    free(manifest_path);
    free(text);
    json_decref(manifest);
    json_decref(files);
    conf_free(conf);
    return rc;
}

/* Copies the db/ files of the backup into data_dir. */
static int restore_files(const char *from, const json_t *manifest, const repod_conf *conf,
                         char *reason, size_t n)
{
    json_t *scratch = json_array(), *f;
    size_t i;
    int rc = -1;

    json_array_foreach(json_object_get(manifest, "files"), i, f)
    {
        const char *rel = json_string_value(json_object_get(f, "path"));
        char *src = util_strdup_printf("%s/%s", from, rel);
        int ok = src != NULL;
        if (ok && strncmp(rel, "db/", 3) == 0)
            ok = backup_copy_file(src, conf->data_dir, rel + 3, scratch, reason, n) == 0;
        else if (ok && strcmp(rel, "tokens.json") == 0) {
            size_t len = 0;
            char *data = util_read_file(src, &len);
            ok = data != NULL && util_write_file_atomic(conf->tokens_file, data, len, 0600) == 0;
            if (!ok)
                snprintf(reason, n, "cannot write %s: %s", conf->tokens_file, strerror(errno));
            free(data);
        }
        free(src);
        if (!ok)
            goto done;
    }
    rc = 0;
done:
    json_decref(scratch);
    return rc;
}

static int cmd_restore(const bk_args *a)
{
    repod_conf *conf = NULL;
    rd_error err = {RD_OK, ""};
    char reason[REASON_MAX] = "";
    json_t *manifest = NULL;
    store *st = NULL;
    struct stat ds;
    int fd = -1, rc = CLI_FAIL;

    if (conf_load_values(a->config, &conf, &err) != RD_OK) {
        snprintf(reason, sizeof(reason), "%s", err.message);
        goto done;
    }
    if (backup_verify(a->from, &manifest, reason, sizeof(reason)) != 0)
        goto done;
    fd = control_connect(conf->data_dir);
    if (fd >= 0 || store_check_dir(conf->data_dir, reason, sizeof(reason)) != 0) {
        if (fd >= 0)
            snprintf(reason, sizeof(reason), "%s is in use by a running repod", conf->data_dir);
        snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
                 "; stop the server before restoring");
        goto done;
    }
    if (!a->force && backup_dir_nonempty(conf->data_dir)) {
        snprintf(reason, sizeof(reason),
                 "%s is not empty; restore into an empty data_dir, or pass --force to delete "
                 "its contents first",
                 conf->data_dir);
        goto done;
    }
    if (!a->force && access(conf->tokens_file, F_OK) == 0) {
        snprintf(reason, sizeof(reason), "%s exists; pass --force to replace it",
                 conf->tokens_file);
        goto done;
    }
    if (a->force && stat(conf->data_dir, &ds) == 0) {
        util_remove_tree(conf->data_dir);
        if (mkdir(conf->data_dir, 0750) == 0 && chown(conf->data_dir, ds.st_uid, ds.st_gid) != 0)
            fprintf(stderr, "repod restore: warning: cannot give %s back to uid %ld: %s\n",
                    conf->data_dir, (long)ds.st_uid, strerror(errno));
    }
    if (util_mkdir_p(conf->data_dir) != 0) {
        snprintf(reason, sizeof(reason), "cannot create %s: %s", conf->data_dir, strerror(errno));
        goto done;
    }
    if (restore_files(a->from, manifest, conf, reason, sizeof(reason)) != 0)
        goto done;
    if (store_open(conf->data_dir, &st, &err) != RD_OK) {
        snprintf(reason, sizeof(reason), "the restored database does not open: %s", err.message);
        goto done;
    }
    store_close(st);
    if (geteuid() == 0 && stat(conf->data_dir, &ds) == 0) {
        backup_chown_tree(conf->data_dir, ds.st_uid, ds.st_gid);
        if (access(conf->tokens_file, F_OK) == 0)
            backup_chown_tree(conf->tokens_file, ds.st_uid, ds.st_gid);
    }
    printf("repod restore: %zu files from %s (taken %s) into %s; tokens file %s\n",
           json_array_size(json_object_get(manifest, "files")), a->from,
           json_string_value(json_object_get(manifest, "created_at")), conf->data_dir,
           conf->tokens_file);
    rc = CLI_OK;
done:
    if (rc != CLI_OK)
        fprintf(stderr, "repod restore: %s\n", reason);
    if (fd >= 0)
        close(fd);
    json_decref(manifest);
    conf_free(conf);
    return rc;
}

int backup_cli_main(int argc, char **argv)
{
    bk_args a;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return CLI_OK;
        }
    }
    if (parse(argc, argv, &a) != 0) {
        usage(stderr);
        return CLI_USAGE;
    }
    log_set_level(LOG_LVL_WARN);
    rc = strcmp(a.verb, "backup") == 0 ? cmd_backup(&a) : cmd_restore(&a);
    fflush(stdout);
    return rc;
}
