/*
 * fuzz_http_guard.c - the request-head guard of the edge: the bytes are a
 * connection's input stream.  It goes into one evbuffer at once and into
 * another in chunks whose sizes come from the bytes themselves, each
 * watched by its own http_guard.  Invariants: whatever the chunking, the
 * guards take the same decisions for the same requests, and the buffer fed
 * at once is a prefix of the other (the same bytes, cut and completed the
 * same way; bytes that arrive after a refusal are left alone).
 */
#include <event2/buffer.h>

#include "../../src/edge/http_guard.h"
#include "fuzz.h"

#define FUZZ_GUARD_HEAD 256
#define FUZZ_GUARD_BODY 64
#define FUZZ_GUARD_NEXT 6

static void fuzz_http_guard(const uint8_t *data, size_t size)
{
    struct evbuffer *whole = evbuffer_new(), *parts = evbuffer_new();
    http_guard *gw, *gp;
    size_t pos = 0, i = 0;

    FUZZ_CHECK(whole != NULL && parts != NULL);
    gw = http_guard_new(whole, FUZZ_GUARD_HEAD, FUZZ_GUARD_BODY);
    gp = http_guard_new(parts, FUZZ_GUARD_HEAD, FUZZ_GUARD_BODY);
    FUZZ_CHECK(gw != NULL && gp != NULL);
    evbuffer_add(whole, data, size);
    while (pos < size) {
        size_t n = 1 + (size_t)data[i++ % size] % 23;
        if (n > size - pos)
            n = size - pos;
        evbuffer_add(parts, data + pos, n);
        pos += n;
    }
    /* bytes after a refusal are not looked at: those that arrived later
     * stay after the cut, so the whole buffer is a prefix of the other */
    FUZZ_CHECK(evbuffer_get_length(whole) <= evbuffer_get_length(parts));
    FUZZ_CHECK(evbuffer_get_length(whole) == 0 ||
               memcmp(evbuffer_pullup(whole, -1), evbuffer_pullup(parts, -1),
                      evbuffer_get_length(whole)) == 0);
    for (int k = 0; k < FUZZ_GUARD_NEXT; k++) {
        const char *mw = NULL, *ww = NULL, *pw = NULL, *mp = NULL, *wp = NULL, *pp = NULL;
        rd_status rw = http_guard_next(gw, &mw, &ww, &pw);
        rd_status rp = http_guard_next(gp, &mp, &wp, &pp);
        FUZZ_CHECK(rw == rp);
        if (rw != RD_OK) {
            FUZZ_CHECK(mw != NULL && mp != NULL && strcmp(mw, mp) == 0);
            FUZZ_CHECK(ww != NULL && wp != NULL && strcmp(ww, wp) == 0);
            FUZZ_CHECK(pw != NULL && pp != NULL && strcmp(pw, pp) == 0);
        }
    }
    http_guard_free(gw);
    http_guard_free(gp);
    evbuffer_free(whole);
    evbuffer_free(parts);
}

FUZZ_ENTRY(http_guard)
