/*
 * rm_dump.c - the ready bytes of a view: the same bytes as jansson's
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY), written into one growing
 * buffer.  jansson's dump allocates per object (its loop check) and per
 * number; at 100 000 documents the build spent a fifth of its time there.
 *
 * Same output as jansson 2.14 without flags: objects in insertion order,
 * "," and ":" without spaces, strings as UTF-8 with only '"', '\\' and
 * control characters escaped (\b \f \n \r \t, else \u00XX in upper-case
 * hex), integers in decimal.  A real is written by jansson itself (its
 * precision and exponent rules), as is anything unexpected.
 */
#include "rm-internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} dbuf;

static void put(dbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (b->n + n + 1 > cap)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put_string(dbuf *b, const char *s, size_t n)
{
    size_t run = 0;
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            snprintf(hex, sizeof(hex), "\\u%04X", c);
            esc = hex;
        }
        put(b, esc, strlen(esc));
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_value(dbuf *b, const json_t *v)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        int first = 1;
        put(b, "{", 1);
        for (void *it = json_object_iter((json_t *)v); it != NULL;
             it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                put(b, ",", 1);
            first = 0;
            put_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
            put(b, ":", 1);
            put_value(b, json_object_iter_value(it));
        }
        put(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                put(b, ",", 1);
            put_value(b, json_array_get(v, i));
        }
        put(b, "]", 1);
        break;
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put(b, num, strlen(num));
        break;
    case JSON_TRUE:
        put(b, "true", 4);
        break;
    case JSON_FALSE:
        put(b, "false", 5);
        break;
    case JSON_NULL:
        put(b, "null", 4);
        break;
    default: { /* a real: jansson's own rules */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s == NULL)
            b->failed = 1;
        else
            put(b, s, strlen(s));
        free(s);
    }
    }
}

char *rm_dump_after(const json_t *v, size_t head, size_t *len)
{
    dbuf b = {NULL, head, head + 1024, 0};
    char *out = NULL;
    b.p = malloc(b.cap);
    if (b.p == NULL)
        goto done;
    put_value(&b, v);
    if (b.failed)
        goto done;
    b.p[b.n] = '\0';
    out = realloc(b.p, b.n + 1); /* give back the doubling's slack */
    if (out == NULL)
        out = b.p;
    b.p = NULL;
    *len = b.n - head;
done:
    free(b.p);
    return out;
}

char *rm_dump(const json_t *v, size_t *len)
{
    return rm_dump_after(v, 0, len);
}
