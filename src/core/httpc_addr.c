/*
 * httpc_addr.c - the address check of requests with
 * refuse_special_addresses: the connect host is resolved once, every
 * address is checked (loopback, link-local, unspecified and multicast are
 * refused), and the request is pinned to the first address, so the
 * connection goes exactly where the check looked (no second DNS answer).
 *
 * Everything here runs on the client's event_base thread only.
 */
#include "httpc-internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "log.h"

int httpc_address_is_special(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 127 || (a >> 16) == 0xA9FE /* 169.254/16 */ || a == 0 ||
               (a >> 28) == 0xE /* 224/4 */ || (a >> 24) == 0 /* 0/8 */;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
            struct sockaddr_in v4;
            memset(&v4, 0, sizeof(v4));
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            if (IN6_IS_ADDR_V4MAPPED(a) || memcmp(&v4.sin_addr, "\0\0\0\0", 4) != 0)
                return httpc_address_is_special((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_MULTICAST(a);
    }
    return 1; /* anything else is not an internet address */
}

typedef struct {
    httpc_req *r;
    httpc_addr_done done;
} addr_job;

/* Checks the answer and pins r; calls done. */
static void addr_judge(httpc_req *r, httpc_addr_done done, int result, struct evutil_addrinfo *res)
{
    struct evutil_addrinfo *ai;
    char text[INET6_ADDRSTRLEN], why[HTTPC_ERROR_LEN];
    const void *bytes;
    char *pinned;

    if (result != 0 || res == NULL) {
        snprintf(why, sizeof(why), "cannot resolve %s: %s", r->connect_host,
                 evutil_gai_strerror(result));
        done(r, HTTPC_ERR_CONNECT, why);
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (httpc_address_is_special(ai->ai_addr)) {
            bytes = ai->ai_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            if (evutil_inet_ntop(ai->ai_family, bytes, text, sizeof(text)) == NULL)
                snprintf(text, sizeof(text), "?");
            snprintf(why, sizeof(why),
                     "%s resolves to %s (loopback, link-local, unspecified or multicast): refused",
                     r->connect_host, text);
            LOG_WARN("httpc: %s", why);
            done(r, HTTPC_ERR_REFUSED, why);
            return;
        }
    }
    ai = res;
    bytes = ai->ai_family == AF_INET
                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    pinned =
        evutil_inet_ntop(ai->ai_family, bytes, text, sizeof(text)) != NULL ? strdup(text) : NULL;
    if (pinned == NULL) {
        done(r, HTTPC_ERR_INTERNAL, "out of memory");
        return;
    }
    free(r->connect_host);
    r->connect_host = pinned;
    done(r, HTTPC_OK, "");
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    addr_job *job = arg;
    httpc_req *r = job->r;
    httpc_addr_done done = job->done;
    free(job);
    if (result == EVUTIL_EAI_CANCEL) { /* httpc_addr_cancel: r is finished elsewhere */
        if (res != NULL)
            evutil_freeaddrinfo(res);
        return;
    }
    r->dns_req = NULL;
    addr_judge(r, done, result, res);
    if (res != NULL)
        evutil_freeaddrinfo(res);
}

void httpc_addr_check(httpc_req *r, httpc_addr_done done)
{
    struct evutil_addrinfo hints, *res = NULL;
    addr_job *job;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    if (r->c->dns == NULL) {
        rc = evutil_getaddrinfo(r->connect_host, NULL, &hints, &res);
        addr_judge(r, done, rc, res);
        if (res != NULL)
            evutil_freeaddrinfo(res);
        return;
    }
    job = calloc(1, sizeof(*job));
    if (job == NULL) {
        done(r, HTTPC_ERR_INTERNAL, "out of memory");
        return;
    }
    job->r = r;
    job->done = done;
    r->dns_req = evdns_getaddrinfo(r->c->dns, r->connect_host, NULL, &hints, on_resolved, job);
    /* NULL: answered (or failed) already, job freed by on_resolved */
}

void httpc_addr_cancel(httpc_req *r)
{
    struct evdns_getaddrinfo_request *q = r->dns_req;
    if (q == NULL)
        return;
    r->dns_req = NULL;
    evdns_getaddrinfo_cancel(q);
}
