/*
 * listener.c - the listening sockets of the edge (see listener.h).
 */
#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Opens the one listening socket of an address (what names it in messages:
 * "listen" or "metrics_listen").  No SO_REUSEPORT: the bind fails when any
 * other socket listens on host:port, including SO_REUSEPORT ones of another
 * process, so two servers never split one port.  The workers of this
 * process share the socket through dup()s of it. */
evutil_socket_t edge_listen(const char *what, const char *host, int port, rd_error *err)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    evutil_socket_t fd = -1;
    int one = 1, gai;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s %s:%d: cannot resolve %s: %s", what, host, port,
                host, gai_strerror(gai));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    /* SO_REUSEADDR only lets a restart bind over connections in TIME_WAIT;
     * it never allows a second listener. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        /* accepted sockets inherit it: small answers leave at once */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        if (errno == EADDRINUSE)
            rd_fail(err, RD_ERR_INVALID_PARAMETER,
                    "%s %s:%d: address in use (another process listens there)", what, host, port);
        else
            rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s %s:%d: cannot listen: %s", what, host, port,
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int edge_bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}
