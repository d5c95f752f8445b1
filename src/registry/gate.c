/*
 * gate.c - fail fast per registry host.  For each registry API origin
 * (scheme://host:port) the client remembers whether it answered lately:
 *
 *   - unverified (new, or after a failed connect): one lookup at a time,
 *     the probe, may connect; others for the same origin wait (parked).
 *     An HTTP answer verifies the origin and the parked lookups go on; a
 *     failed connect, TLS handshake or timeout fails them all at once with
 *     RD_ERR_REGISTRY_UNAVAILABLE.
 *   - after a failed connect, lookups fail at once for
 *     registry.negative_cache_ms (default 5000; 0 = off).
 *   - verified: no gate, lookups run in parallel.
 *
 * So an unreachable registry costs one connection attempt (one DNS lookup)
 * per origin at a time instead of one per caller.
 */
#include "registry-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define GATE_HOSTS_MAX       256
#define GATE_DEFAULT_DOWN_MS 5000

static int64_t now_ms(void)
{
    return util_monotonic_us() / 1000;
}

static int64_t down_ms(const registry_client *rc)
{
    if (rc->conf == NULL)
        return GATE_DEFAULT_DOWN_MS;
    return rc->conf->registry_negative_cache_ms;
}

/* Drops entries that hold nothing (no probe, no parked, not down). */
static void gate_trim(registry_client *rc, int64_t now)
{
    host_state **pp = &rc->hosts, *h;
    while ((h = *pp) != NULL) {
        if (h->probe == NULL && h->parked == NULL && h->down_until_ms <= now) {
            *pp = h->next;
            free(h->origin);
            free(h);
            rc->host_count--;
        } else {
            pp = &h->next;
        }
    }
}

static host_state *gate_find(registry_client *rc, const char *origin)
{
    host_state *h;
    for (h = rc->hosts; h != NULL; h = h->next)
        if (strcmp(h->origin, origin) == 0)
            return h;
    if (rc->host_count >= GATE_HOSTS_MAX)
        gate_trim(rc, now_ms());
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->origin = strdup(origin)) == NULL) {
        free(h);
        return NULL;
    }
    h->next = rc->hosts;
    rc->hosts = h;
    rc->host_count++;
    return h;
}

int registry_gate_admit(lookup *lk)
{
    char scheme[16], host[256], origin[400];
    int port;
    int64_t now = now_ms();
    host_state *h = lk->gate;
    rd_error err;

    if (h == NULL) {
        if (registry_url_origin(lk->t.api_url, scheme, sizeof(scheme), host, sizeof(host), &port) !=
            0)
            return 1; /* the request itself will fail */
        /* per config entry too: two entries on one origin may differ in
         * their TLS settings */
        snprintf(origin, sizeof(origin), "%s://%s:%d|%.64s", scheme, host, port, lk->t.host);
        h = lk->gate = gate_find(lk->rc, origin);
        if (h == NULL)
            return 1;
    }
    if (h->down_until_ms > now) {
        rd_fail(&err, RD_ERR_REGISTRY_UNAVAILABLE,
                "Registry unavailable. (image = %s, registry = %s, reason = cannot connect, "
                "failed %lld ms ago)",
                lk->image, lk->t.host, (long long)(down_ms(lk->rc) - (h->down_until_ms - now)));
        registry_lookup_defer(lk, &err);
        return 0;
    }
    if (h->verified || h->probe == NULL || h->probe == lk) {
        if (!h->verified)
            h->probe = lk;
        return 1;
    }
    lk->parked = 1;
    lk->park_next = h->parked;
    h->parked = lk;
    h->parked_count++;
    return 0;
}

/* Takes the parked list of h; each goes on (resume) or fails with err. */
static void gate_release(host_state *h, const rd_error *err)
{
    lookup *lk = h->parked, *next;
    h->parked = NULL;
    h->parked_count = 0;
    for (; lk != NULL; lk = next) {
        next = lk->park_next;
        lk->park_next = NULL;
        lk->parked = 0;
        if (err != NULL) {
            rd_error e;
            rd_fail(&e, err->code,
                    "Registry unavailable. (image = %s, registry = %s, reason = cannot connect)",
                    lk->image, lk->t.host);
            registry_lookup_defer(lk, &e);
        } else {
            registry_lookup_begin(lk);
        }
    }
}

void registry_gate_answer(lookup *lk, const httpc_response *resp)
{
    host_state *h = lk->gate;
    rd_error err;
    if (h == NULL)
        return;
    if (resp->result == HTTPC_ERR_CONNECT || resp->result == HTTPC_ERR_TLS ||
        resp->result == HTTPC_ERR_TIMEOUT) {
        h->verified = 0;
        h->down_until_ms = now_ms() + down_ms(lk->rc);
        if (h->probe == lk) {
            h->probe = NULL;
            if (h->parked_count > 0)
                LOG_WARN("registry: %s unreachable: %zu waiting lookups fail at once", h->origin,
                         h->parked_count);
            rd_fail(&err, RD_ERR_REGISTRY_UNAVAILABLE, "cannot connect");
            gate_release(h, &err);
        }
        return;
    }
    if (resp->result == HTTPC_OK) {
        h->verified = 1;
        h->down_until_ms = 0;
    }
    if (h->probe == lk) {
        h->probe = NULL;
        gate_release(h, NULL);
    }
}

void registry_gate_leave(lookup *lk)
{
    host_state *h = lk->gate;
    if (h == NULL)
        return;
    if (lk->parked) { /* only when the client is freed */
        lookup **pp;
        for (pp = &h->parked; *pp != NULL; pp = &(*pp)->park_next) {
            if (*pp == lk) {
                *pp = lk->park_next;
                h->parked_count--;
                break;
            }
        }
        lk->parked = 0;
    }
    if (h->probe == lk) {
        h->probe = NULL;
        gate_release(h, NULL);
    }
    lk->gate = NULL;
}

void registry_gate_free_all(registry_client *rc)
{
    host_state *h;
    while ((h = rc->hosts) != NULL) {
        rc->hosts = h->next;
        free(h->origin);
        free(h);
    }
    rc->host_count = 0;
}
