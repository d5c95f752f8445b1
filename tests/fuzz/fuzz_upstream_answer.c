/*
 * fuzz_upstream_answer.c - a failed upstream call as repod reads it: the
 * first byte picks the call's kind, the next two its HTTP status (100-599),
 * the fourth a transport result; the rest is the answer's body (an error
 * body of an upstream repod or a published-contract server, or anything).
 * upstream_answer_status, upstream_answer_transport and
 * upstream_answer_clean (src/remote/upstream_answer.c).
 * Invariants: never RD_OK; RD_ERR_NOT_FOUND only for a 404 to a PLUGIN or
 * VERSIONS call; RD_ERR_UPSTREAM_UNAVAILABLE only for a 503; a relayed
 * registry status only for VERSIONS; err.code is the status returned; the
 * message is non-empty, bounded, valid UTF-8 without control bytes, names
 * the repository and never holds the token repod sent.
 */
#include "../../src/remote/upstream_answer.h"
#include "fuzz.h"
#include "httpc.h"

#define FUZZ_UA_TOKEN   "tok-5ecr3t-ZQ8"
#define FUZZ_UA_SUBJECT "repo-0123456789ab"

/* 1 when s is valid UTF-8 (shortest forms not checked) without control bytes. */
static int fuzz_ua_clean_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t need = *p < 0x80 ? 0 : *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : 99;
        if (need == 99 || *p < 0x20 || *p == 0x7f)
            return 0;
        p++;
        for (size_t i = 0; i < need; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return 0;
    }
    return 1;
}

static void fuzz_upstream_answer(const uint8_t *data, size_t size)
{
    fetch_kind kind;
    int status, result;
    json_t *body;
    rd_error err = {RD_OK, ""};
    rd_status rc;
    char *text, out[64];

    if (size < 4)
        return;
    kind = (fetch_kind)(data[0] % 5);
    status = 100 + (data[1] << 8 | data[2]) % 500;
    result = 1 + data[3] % 7;
    data += 4;
    size -= 4;

    body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (status == 200)
        status = 404; /* only failures reach the interpretation */
    rc = upstream_answer_status(kind, FUZZ_UA_SUBJECT, status, body, FUZZ_UA_TOKEN, &err);
    FUZZ_CHECK(rc != RD_OK);
    if (rc == RD_ERR_NOT_FOUND) {
        FUZZ_CHECK(status == 404 && (kind == FETCH_PLUGIN || kind == FETCH_VERSIONS));
    } else {
        FUZZ_CHECK(err.code == rc);
        if (rc == RD_ERR_UPSTREAM_UNAVAILABLE)
            FUZZ_CHECK(status == 503);
        else if (rc != RD_ERR_UPSTREAM_BAD_RESPONSE)
            FUZZ_CHECK(kind == FETCH_VERSIONS &&
                       (rc == RD_ERR_REGISTRY_UNAVAILABLE || rc == RD_ERR_REGISTRY_TIMEOUT ||
                        rc == RD_ERR_REGISTRY_BAD_RESPONSE || rc == RD_ERR_NO_IMAGE_IN_REGISTRY ||
                        rc == RD_ERR_INVALID_PARAMETER));
        FUZZ_CHECK(err.message[0] != '\0');
        FUZZ_CHECK(strlen(err.message) < sizeof(err.message));
        FUZZ_CHECK(fuzz_ua_clean_text(err.message));
        FUZZ_CHECK(strstr(err.message, FUZZ_UA_TOKEN) == NULL);
        FUZZ_CHECK(strstr(err.message, "repository = " FUZZ_UA_SUBJECT) != NULL);
    }
    json_decref(body);

    /* a transport failure: the class follows the result */
    rc = upstream_answer_transport(FUZZ_UA_SUBJECT, result, NULL, 1000, &err);
    FUZZ_CHECK(err.code == rc);
    FUZZ_CHECK((rc == RD_ERR_UPSTREAM_TIMEOUT) == (result == HTTPC_ERR_TIMEOUT));
    FUZZ_CHECK(rc == RD_ERR_UPSTREAM_TIMEOUT || rc == RD_ERR_UPSTREAM_UNAVAILABLE ||
               rc == RD_ERR_UPSTREAM_BAD_RESPONSE);

    /* the cleaner alone, on the raw bytes, at a bound from the input */
    text = fuzz_cstr(data, size);
    upstream_answer_clean(text, FUZZ_UA_TOKEN, size % sizeof(out), out, sizeof(out));
    FUZZ_CHECK(strlen(out) <= size % sizeof(out));
    FUZZ_CHECK(strstr(out, FUZZ_UA_TOKEN) == NULL);
    for (const char *p = out; *p != '\0'; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
    free(text);
}

FUZZ_ENTRY(upstream_answer)
