/*
 * fuzz_registry_answers.c - answers of credential services: the bytes are
 * a body read both as an ECR GetAuthorizationToken answer
 * (registry_ecr_parse_token) and as an OAuth token answer
 * (registry_gcp_parse_token), plus base64 round trips.  Invariants: a
 * parsed ECR credential is "Basic <token>"; decoding what was encoded
 * gives the bytes back.
 */
#include "fuzz.h"
#include "registry.h"

static void fuzz_registry_answers(const uint8_t *data, size_t size)
{
    char *body = fuzz_cstr(data, size), *basic = NULL, *token = NULL, *enc = NULL;
    unsigned char *dec = NULL;
    int64_t exp_ms = 0, exp_s = 0;
    size_t n = 0;

    if (registry_ecr_parse_token(body, size, &basic, &exp_ms) == 0) {
        FUZZ_CHECK(basic != NULL && strncmp(basic, "Basic ", 6) == 0);
    }
    if (registry_gcp_parse_token(body, size, &token, &exp_s) == 0)
        FUZZ_CHECK(token != NULL);
    free(dec);
    dec = registry_base64_decode(body, &n);
    free(dec);
    enc = registry_base64_encode(data, size);
    FUZZ_CHECK(enc != NULL);
    dec = registry_base64_decode(enc, &n);
    FUZZ_CHECK(dec != NULL && n == size && (size == 0 || memcmp(dec, data, size) == 0));
    free(enc);
    enc = registry_base64url_encode(data, size);
    FUZZ_CHECK(enc != NULL && strpbrk(enc, "+/=") == NULL);
    free(enc);
    free(dec);
    free(token);
    free(basic);
    free(body);
}

FUZZ_ENTRY(registry_answers)
