/*
 * fuzz_registry_headers.c - the registry's HTTP headers: the bytes are
 * "<WWW-Authenticate value>\0<Link value>\0<base URL>"; parsed by
 * registry_parse_www_authenticate and registry_link_next.  Invariants: a
 * failed parse leaves the challenge zeroed; a next link is an absolute
 * URL ("scheme://...").
 */
#include "fuzz.h"
#include "registry.h"

static void fuzz_registry_headers(const uint8_t *data, size_t size)
{
    char *f[3];
    registry_challenge ch;
    char *next = NULL;

    fuzz_fields(data, size, f, 3);
    if (registry_parse_www_authenticate(f[0], &ch) != 0) {
        FUZZ_CHECK(ch.scheme == REGISTRY_AUTH_NONE && ch.realm == NULL && ch.service == NULL &&
                   ch.scope == NULL && ch.error == NULL);
    }
    registry_challenge_clear(&ch);
    if (registry_link_next(f[1], f[2][0] ? f[2] : "https://registry.example.com/v2/a/tags/list",
                           &next) == 0 &&
        next != NULL)
        FUZZ_CHECK(strstr(next, "://") != NULL);
    free(next);
    fuzz_fields_free(f, 3);
}

FUZZ_ENTRY(registry_headers)
