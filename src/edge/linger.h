/*
 * linger.h - lingering close of refused connections (edge-internal).
 *
 * When a request is refused before its body was read (413, 431, 400), the
 * answer is sent and evhttp closes the connection while the client may
 * still be sending the body; closing a socket with unread or incoming data
 * makes the kernel send a reset, and a client that writes its whole body
 * before reading then loses the answer.  A linger set keeps such sockets
 * open a little longer with the write side shut down (so the client sees
 * the answer and the end of it), reads and discards what still arrives,
 * and closes them at EOF, after LINGER_IDLE_S without data or after a
 * per-socket deadline.  Nothing read is kept.
 *
 * One set per worker thread; not thread-safe.
 */
#ifndef REPOD_LINGER_H
#define REPOD_LINGER_H

#include <event2/event.h>

typedef struct linger_set linger_set;

/* A set whose sockets are watched on base (borrowed, must outlive the set).
 * NULL when out of memory. */
linger_set *linger_set_new(struct event_base *base);

/* Lingers on a dup() of fd (fd itself stays the caller's) for at most
 * max_s seconds.  The answer must already be written to fd.  Returns 0, or
 * -1 (nothing kept) when a descriptor or memory is short. */
int linger_start(linger_set *ls, evutil_socket_t fd, int max_s);

/* How many sockets linger now. */
int linger_count(const linger_set *ls);

/* Closes every lingering socket and frees ls (NULL is a no-op). */
void linger_set_free(linger_set *ls);

#endif
