/*
 * control.c - the local control socket of the server (control.h): accepts
 * on the main loop, reads one JSON line per connection with a short
 * timeout, takes checkpoints for `repod backup`.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "backup.h"
#include "log.h"
#include "util.h"

#define CONTROL_REQUEST_MAX 1024

struct control {
    store *st;
    char *data_dir;
    char *path; /* NULL when not listening */
    int fd;
    struct event *ev;
    unsigned seq;
};

/* Sends one JSON line (body stolen). */
static void reply(int fd, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return;
    if (send(fd, text, strlen(text), MSG_NOSIGNAL) > 0)
        send(fd, "\n", 1, MSG_NOSIGNAL);
    free(text);
}

/* Takes a checkpoint into a new folder under <data_dir>/backup.staging. */
static json_t *do_checkpoint(control *c, long uid)
{
    char stamp[UTIL_TIMESTAMP_LEN + 1];
    char *staging = util_strdup_printf("%s/%s", c->data_dir, BACKUP_STAGING_DIR);
    char *dir = NULL;
    rd_error err = {RD_OK, ""};
    json_t *out = NULL;
    int64_t start = util_monotonic_us();

    util_now_iso8601(stamp, sizeof(stamp));
    dir = staging != NULL ? util_strdup_printf("%s/ckpt-%lld-%ld-%u", staging,
                                               (long long)util_now_ms(), (long)getpid(), ++c->seq)
                          : NULL;
    if (dir == NULL) {
        out = json_pack("{s:b,s:s}", "ok", 0, "message", "out of memory");
        goto done;
    }
    if (mkdir(staging, 0700) != 0 && errno != EEXIST) {
        LOG_ERROR("backup: cannot create %s: %s", staging, strerror(errno));
        out = json_pack("{s:b,s:s}", "ok", 0, "message",
                        "the server cannot create its staging "
                        "folder (see its log)");
        goto done;
    }
    if (store_checkpoint(c->st, dir, &err) != RD_OK) {
        out = json_pack("{s:b,s:s}", "ok", 0, "message",
                        "the checkpoint failed (see the server's log)");
        goto done;
    }
    LOG_AUDIT("backup.checkpoint dir=%s uid=%ld took=%lldms", dir, uid,
              (long long)(util_monotonic_us() - start) / 1000);
    out = json_pack("{s:b,s:s,s:s}", "ok", 1, "dir", dir, "created_at", stamp);
done:
    free(dir);
    free(staging);
    return out;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    control *c = arg;
    char buf[CONTROL_REQUEST_MAX + 1];
    size_t len = 0;
    struct timeval tv = {2, 0};
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    json_t *req = NULL;
    const char *op;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    (void)what;

    if (fd < 0)
        return;
    memset(&cred, 0, sizeof(cred));
    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (len < CONTROL_REQUEST_MAX && memchr(buf, '\n', len) == NULL) {
        ssize_t r = recv(fd, buf + len, CONTROL_REQUEST_MAX - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    req = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    op = json_string_value(json_object_get(req, "op"));
    if (op != NULL && strcmp(op, "checkpoint") == 0)
        reply(fd, do_checkpoint(c, (long)cred.uid));
    else
        reply(fd, json_pack("{s:b,s:s}", "ok", 0, "message",
                            "unknown request (expected {\"op\": \"checkpoint\"})"));
    json_decref(req);
    close(fd);
}

rd_status control_start(struct event_base *base, store *st, const char *data_dir, control **out,
                        rd_error *err)
{
    control *c = calloc(1, sizeof(*c));
    struct sockaddr_un sa;
    char *staging = util_strdup_printf("%s/%s", data_dir, BACKUP_STAGING_DIR);
    char *tmp = NULL;
    rd_status rc = RD_OK;

    *out = NULL;
    if (c == NULL || staging == NULL || (c->data_dir = strdup(data_dir)) == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    c->st = st;
    c->fd = -1;
    util_remove_tree(staging); /* checkpoints a backup did not take away */
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.%ld", data_dir,
                         BACKUP_CONTROL_SOCKET, (long)getpid()) >= sizeof(sa.sun_path)) {
        LOG_WARN("control socket: %s/%s is too long for a unix socket; `repod backup` cannot "
                 "reach this server",
                 data_dir, BACKUP_CONTROL_SOCKET);
        goto done;
    }
    c->path = util_strdup_printf("%s/%s", data_dir, BACKUP_CONTROL_SOCKET);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->path == NULL || c->fd < 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "cannot create the control socket: %s", strerror(errno));
        goto done;
    }
    /* Bound under a temporary name, made 0600, then renamed over what a
     * killed server left (the store lock is ours): the socket is never
     * reachable with a wider mode, and no process-wide umask is touched. */
    tmp = util_strdup_printf("%s.%ld", c->path, (long)getpid());
    if (tmp == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", tmp);
    unlink(tmp);
    if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(tmp, 0600) != 0 ||
        rename(tmp, c->path) != 0 || listen(c->fd, 8) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "cannot listen on %s: %s", c->path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_accept, c);
    if (c->ev == NULL || event_add(c->ev, NULL) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "cannot watch the control socket");
        goto done;
    }
done:
    free(tmp);
    free(staging);
    if (rc != RD_OK) {
        control_stop(c);
        return rc;
    }
    *out = c;
    return RD_OK;
}

void control_stop(control *c)
{
    if (c == NULL)
        return;
    if (c->ev != NULL)
        event_free(c->ev);
    if (c->fd >= 0) {
        close(c->fd);
        unlink(c->path);
    }
    free(c->path);
    free(c->data_dir);
    free(c);
}
