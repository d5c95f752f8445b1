/*
 * fuzz_gcp_key.c - the GCP service-account key file parser
 * (registry_gcp_key_parse).  Invariants: success gives client_email,
 * private_key and an https token_uri (scheme in any case); failure gives a zeroed key and a
 * reason that quotes no key material.
 */
#include <strings.h>

#include "fuzz.h"
#include "registry.h"

static void fuzz_gcp_key(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    registry_gcp_key k;
    char why[256];

    if (registry_gcp_key_parse(text, size, &k, why, sizeof(why)) == 0) {
        FUZZ_CHECK(k.client_email != NULL && k.private_key != NULL && k.token_uri != NULL);
        FUZZ_CHECK(strncasecmp(k.token_uri, "https://", 8) == 0);
    } else {
        FUZZ_CHECK(k.client_email == NULL && k.private_key == NULL && k.token_uri == NULL);
        FUZZ_CHECK(why[0] != '\0' && strstr(why, "PRIVATE KEY") == NULL);
    }
    registry_gcp_key_clear(&k);
    free(text);
}

FUZZ_ENTRY(gcp_key)
