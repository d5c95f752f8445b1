/*
 * fuzz_sigv4.c - the SigV4 canonical request builder: the bytes are
 * "<method>\0<host>\0<path>\0<query>\0<header name>\0<header value>\0
 * <region>\0<body>"; registry_sigv4_authorization with fixed keys and date.
 * Invariants: success writes a NUL-terminated "AWS4-HMAC-SHA256 " value
 * within the buffer; the same request signs the same twice.
 */
#include "fuzz.h"
#include "registry.h"

static void fuzz_sigv4(const uint8_t *data, size_t size)
{
    char *f[8], out[2048], again[2048];
    const char *headers[] = {NULL, NULL, NULL};
    registry_sigv4_request r;

    fuzz_fields(data, size, f, 8);
    memset(&r, 0, sizeof(r));
    headers[0] = f[4];
    headers[1] = f[5];
    r.method = f[0];
    r.host = f[1];
    r.path = f[2][0] ? f[2] : NULL;
    r.query = f[3];
    r.headers = f[4][0] ? headers : NULL;
    r.body = f[7];
    r.body_len = strlen(f[7]);
    r.access_key_id = "AKIDEXAMPLE";
    r.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    r.region = f[6][0] ? f[6] : "us-east-1";
    r.service = "ecr";
    r.amz_date = "20150830T123600Z";
    memset(out, 'x', sizeof(out));
    if (registry_sigv4_authorization(&r, out, sizeof(out)) == 0) {
        FUZZ_CHECK(memchr(out, '\0', sizeof(out)) != NULL);
        FUZZ_CHECK(strncmp(out, "AWS4-HMAC-SHA256 ", 17) == 0);
        FUZZ_CHECK(registry_sigv4_authorization(&r, again, sizeof(again)) == 0);
        FUZZ_CHECK(strcmp(out, again) == 0);
    }
    (void)registry_sigv4_authorization(&r, out, 64); /* too small is refused, not overrun */
    fuzz_fields_free(f, 8);
}

FUZZ_ENTRY(sigv4)
