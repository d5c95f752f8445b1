/*
 * linger.c - lingering close of refused connections (see linger.h).
 */
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define LINGER_IDLE_S 2 /* a socket silent this long is closed */

typedef struct lingerer lingerer;

struct lingerer {
    linger_set *set;
    evutil_socket_t fd;
    struct event *ev;
    int64_t deadline_us;
    lingerer *prev, *next;
};

struct linger_set {
    struct event_base *base;
    lingerer *head;
    int count;
};

linger_set *linger_set_new(struct event_base *base)
{
    linger_set *ls = calloc(1, sizeof(*ls));
    if (ls != NULL)
        ls->base = base;
    return ls;
}

static void lingerer_close(lingerer *l)
{
    linger_set *ls = l->set;
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        ls->head = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    ls->count--;
    event_free(l->ev);
    close(l->fd);
    free(l);
}

/* Reads and discards; closes at EOF, on an error, when idle or late. */
static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    lingerer *l = arg;
    char buf[16384];
    ssize_t n = 1;
    if (what & EV_READ) {
        do
            n = recv(fd, buf, sizeof(buf), 0);
        while (n > 0 && util_monotonic_us() < l->deadline_us);
    }
    if ((what & EV_TIMEOUT) || n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
        util_monotonic_us() >= l->deadline_us)
        lingerer_close(l);
}

int linger_start(linger_set *ls, evutil_socket_t fd, int max_s)
{
    struct timeval idle = {LINGER_IDLE_S, 0};
    lingerer *l = calloc(1, sizeof(*l));
    int rc = -1;
    if (l == NULL)
        goto done;
    l->set = ls;
    l->fd = -1;
    l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (l->fd < 0)
        goto done;
    l->deadline_us = util_monotonic_us() + (int64_t)max_s * 1000000;
    l->ev = event_new(ls->base, l->fd, EV_READ | EV_PERSIST, on_linger, l);
    if (l->ev == NULL || event_add(l->ev, &idle) != 0)
        goto done;
    shutdown(l->fd, SHUT_WR); /* the answer is written: the client sees its end */
    l->next = ls->head;
    if (ls->head != NULL)
        ls->head->prev = l;
    ls->head = l;
    ls->count++;
    rc = 0;
done:
    if (rc != 0 && l != NULL) {
        if (l->ev != NULL)
            event_free(l->ev);
        if (l->fd >= 0)
            close(l->fd);
        free(l);
    }
    return rc;
}

int linger_count(const linger_set *ls)
{
    return ls->count;
}

void linger_set_free(linger_set *ls)
{
    if (ls == NULL)
        return;
    while (ls->head != NULL)
        lingerer_close(ls->head);
    free(ls);
}
