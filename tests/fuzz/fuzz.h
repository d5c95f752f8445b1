/*
 * fuzz.h - shared pieces of the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * Each target defines one function, fuzz_<name>(data, size), that takes
 * arbitrary bytes, runs them through one untrusted-input entry point of
 * repod and checks what it can about the result.  FUZZ_ENTRY(name) turns
 * it into libFuzzer's LLVMFuzzerTestOneInput; tests/unit/
 * test_fuzz_regressions.c includes the targets with FUZZ_REPLAY defined
 * and replays the saved inputs through the same functions.
 *
 * A broken invariant is a finding: FUZZ_CHECK prints it and aborts.
 */
#ifndef REPOD_FUZZ_H
#define REPOD_FUZZ_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#ifdef FUZZ_REPLAY
#define FUZZ_ENTRY(name)
#else
#define FUZZ_ENTRY(name)                                                                           \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                  \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                   \
    {                                                                                              \
        static int quiet;                                                                          \
        if (!quiet) {                                                                              \
            log_set_level(LOG_LVL_ERROR);                                                          \
            quiet = 1;                                                                             \
        }                                                                                          \
        fuzz_##name(data, size);                                                                   \
        return 0;                                                                                  \
    }
#endif

/* A new NUL-terminated copy of data (NULs inside are kept; strlen stops at
 * the first).  Aborts when out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* data as JSON the way the API reads request bodies (duplicate keys
 * refused), any type at the top; NULL when it is not JSON. */
static inline json_t *fuzz_json(const uint8_t *data, size_t size)
{
    return json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
}

/* Splits data at NUL bytes into up to n fields (new strings in out[],
 * missing ones ""); free with fuzz_fields_free. */
static inline void fuzz_fields(const uint8_t *data, size_t size, char **out, size_t n)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t end = pos;
        while (end < size && data[end] != '\0')
            end++;
        out[i] = fuzz_cstr(data + (pos < size ? pos : size), pos < size ? end - pos : 0);
        pos = end < size ? end + 1 : size;
    }
}

static inline void fuzz_fields_free(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i]);
}

/* The small fixed catalog the query and stat targets run over (borrowed;
 * built once): plugins with strings, numbers, arrays, nested objects,
 * nulls and missing fields. */
static inline const json_t *fuzz_catalog(void)
{
    static json_t *docs;
    if (docs == NULL) {
        docs = json_loads(
            "[{\"plugin_id\": \"plugin-jira\", \"name\": \"Jira\", \"provider\": \"atlassian\","
            " \"state\": \"ENABLED\", \"image\": \"pyengine/plugin-jira\","
            " \"resource_type\": \"notification.Protocol\", \"labels\": [\"Jira\", \"Alert\"],"
            " \"capability\": {\"version\": 2, \"targets\": [{\"name\": \"a\", \"n\": 1}]},"
            " \"tags\": {\"k\": \"v\"}, \"created_at\": \"2024-01-02T03:04:05.123Z\","
            " \"updated_at\": \"2024-02-01T00:00:00Z\", \"priority\": 10},"
            " {\"plugin_id\": \"plugin-aws\", \"name\": \"AWS EC2\", \"provider\": \"aws\","
            " \"state\": \"DISABLED\", \"labels\": [], \"capability\": null,"
            " \"created_at\": \"2023-12-31\", \"priority\": 2.5, \"tags\": {}},"
            " {\"plugin_id\": \"p3\", \"name\": \"\", \"provider\": null, \"labels\": [1, true, "
            "null,"
            " {\"x\": [\"y\"]}], \"created_at\": \"not a date\", \"priority\": -1,"
            " \"capability\": {\"version\": \"2\", \"targets\": []}},"
            " {\"plugin_id\": \"p4\", \"repository_id\": \"repo-1\"}]",
            0, NULL);
        FUZZ_CHECK(docs != NULL);
    }
    return docs;
}

#endif
