/*
 * version.c - version precedence of image tags (SPEC 9) and the sort of a
 * tag list, newest first.  The grammar and the rules are in registry.h.
 *
 * Numbers are compared as digit strings (leading zeros skipped, then length,
 * then bytes), so components of any length are safe: nothing is converted
 * to an integer.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

/* A parsed version tag: the digits-and-dots part and the optional suffix. */
typedef struct {
    const char *num; /* first digit */
    size_t num_len;  /* up to the '-' or the end */
    const char *pre; /* after the '-', NULL for a plain release */
} version_parts;

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_suffix_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '_' || c == '-';
}

/* Fills parts and returns 1 when tag is a version tag, else 0. */
static int version_parse(const char *tag, version_parts *parts)
{
    const char *p = tag, *q;
    int ok = 0;

    memset(parts, 0, sizeof(*parts));
    if (tag == NULL)
        goto done;
    if (*p == 'v' || *p == 'V')
        p++;
    parts->num = p;
    for (;;) {
        if (!is_digit(*p))
            goto done; /* a component must start with a digit */
        while (is_digit(*p))
            p++;
        if (*p != '.')
            break;
        p++;
    }
    parts->num_len = (size_t)(p - parts->num);
    if (*p == '-') {
        parts->pre = p + 1;
        if (*parts->pre == '\0')
            goto done;
        for (q = parts->pre; *q != '\0'; q++) {
            if (!is_suffix_char(*q))
                goto done;
        }
        p = q;
    }
    ok = *p == '\0';
done:
    return ok;
}

/* Compares two runs of digits by value: <0, 0, >0. */
static int digits_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c;
    while (alen > 1 && *a == '0') {
        a++;
        alen--;
    }
    while (blen > 1 && *b == '0') {
        b++;
        blen--;
    }
    if (alen != blen)
        return alen < blen ? -1 : 1;
    c = memcmp(a, b, alen);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

/* Compares the numeric parts: component by component, then more components
 * win.  >0 when a is newer. */
static int numbers_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    const char *ae = a + alen, *be = b + blen;
    int c;
    while (a < ae && b < be) {
        const char *as = a, *bs = b;
        while (a < ae && *a != '.')
            a++;
        while (b < be && *b != '.')
            b++;
        c = digits_cmp(as, (size_t)(a - as), bs, (size_t)(b - bs));
        if (c != 0)
            return c;
        if (a < ae)
            a++; /* the dot */
        if (b < be)
            b++;
    }
    if (a < ae)
        return 1;
    if (b < be)
        return -1;
    return 0;
}

/* Natural comparison of two pre-release suffixes.  >0 when a is newer. */
static int suffix_cmp(const char *a, const char *b)
{
    int c;
    while (*a != '\0' && *b != '\0') {
        const char *as = a, *bs = b;
        int ad = is_digit(*a), bd = is_digit(*b);
        size_t alen, blen, n;
        if (ad != bd)
            return ad ? -1 : 1; /* numbers below words */
        while (*a != '\0' && is_digit(*a) == ad)
            a++;
        while (*b != '\0' && is_digit(*b) == bd)
            b++;
        alen = (size_t)(a - as);
        blen = (size_t)(b - bs);
        if (ad) {
            c = digits_cmp(as, alen, bs, blen);
        } else {
            n = alen < blen ? alen : blen;
            c = memcmp(as, bs, n);
            c = c < 0 ? -1 : (c > 0 ? 1 : 0);
            if (c == 0 && alen != blen)
                c = alen < blen ? -1 : 1;
        }
        if (c != 0)
            return c;
    }
    if (*a != '\0')
        return 1;
    if (*b != '\0')
        return -1;
    return 0;
}

/* Precedence of two parsed versions: >0 when a is newer, 0 when equal. */
static int precedence_cmp(const version_parts *a, const version_parts *b)
{
    int c = numbers_cmp(a->num, a->num_len, b->num, b->num_len);
    if (c != 0)
        return c;
    if (a->pre == NULL && b->pre == NULL)
        return 0;
    if (a->pre == NULL)
        return 1; /* the release is newer than its pre-releases */
    if (b->pre == NULL)
        return -1;
    return suffix_cmp(a->pre, b->pre);
}

static int sign_of(int c)
{
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

int registry_is_version(const char *tag)
{
    version_parts parts;
    return version_parse(tag, &parts);
}

int registry_version_cmp(const char *a, const char *b)
{
    version_parts pa, pb;
    int va = version_parse(a, &pa), vb = version_parse(b, &pb), c;

    if (va != vb)
        return va ? -1 : 1; /* versions before names */
    if (va) {
        c = precedence_cmp(&pa, &pb);
        if (c != 0)
            return -c; /* newest first */
    }
    return sign_of(strcmp(a, b));
}

/* One element of the array being sorted, with its original index. */
typedef struct {
    json_t *value;
    size_t index;
} sort_item;

static int sort_item_cmp(const void *x, const void *y)
{
    const sort_item *a = x, *b = y;
    const char *as = json_string_value(a->value), *bs = json_string_value(b->value);
    int c;
    if ((as == NULL) != (bs == NULL))
        return as == NULL ? 1 : -1; /* non-strings last */
    c = as != NULL ? registry_version_cmp(as, bs) : 0;
    if (c != 0)
        return c;
    return a->index < b->index ? -1 : (a->index > b->index ? 1 : 0);
}

void registry_sort_versions(json_t *tags)
{
    sort_item *items = NULL;
    size_t i, n;

    if (!json_is_array(tags) || (n = json_array_size(tags)) < 2)
        goto done;
    items = calloc(n, sizeof(*items));
    if (items == NULL)
        goto done;
    for (i = 0; i < n; i++) {
        items[i].value = json_incref(json_array_get(tags, i));
        items[i].index = i;
    }
    qsort(items, n, sizeof(*items), sort_item_cmp);
    /* set_new steals our extra reference and drops the array's old one. */
    for (i = 0; i < n; i++)
        json_array_set_new(tags, i, items[i].value);
done:
    free(items);
}
