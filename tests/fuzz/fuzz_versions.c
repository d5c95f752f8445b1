/*
 * fuzz_versions.c - the version sorter: the bytes are a JSON array of tags
 * (as a registry's tags list gives them, or any array); registry_sort_versions.
 * Invariants: the output is a permutation of the input, strings sorted by
 * registry_version_cmp (which is antisymmetric and 0 only for equal
 * strings) and non-strings after them in their original order.
 */
#include "fuzz.h"
#include "registry.h"

static int fuzz_versions_sign(int v)
{
    return (v > 0) - (v < 0);
}

static void fuzz_versions(const uint8_t *data, size_t size)
{
    json_t *tags = fuzz_json(data, size), *orig = NULL, *v;
    size_t n, i, j, nstr = 0;

    if (json_is_object(tags)) { /* a tags/list answer: {"name", "tags": [...]} */
        json_t *t = json_incref(json_object_get(tags, "tags"));
        json_decref(tags);
        tags = t;
    }
    if (!json_is_array(tags))
        goto done;
    orig = json_copy(tags);
    FUZZ_CHECK(orig != NULL);
    registry_sort_versions(tags);
    n = json_array_size(tags);
    FUZZ_CHECK(n == json_array_size(orig));
    json_array_foreach(orig, i, v) nstr += json_is_string(v) ? 1 : 0;
    /* strings first, sorted; each pair consistent */
    for (i = 0; i < n; i++) {
        const char *a = json_string_value(json_array_get(tags, i));
        FUZZ_CHECK((a != NULL) == (i < nstr));
        if (a == NULL)
            continue;
        FUZZ_CHECK(registry_version_cmp(a, a) == 0);
        if (i + 1 < nstr) {
            const char *b = json_string_value(json_array_get(tags, i + 1));
            int ab = registry_version_cmp(a, b), ba = registry_version_cmp(b, a);
            FUZZ_CHECK(ab <= 0);
            FUZZ_CHECK(fuzz_versions_sign(ab) == -fuzz_versions_sign(ba));
            FUZZ_CHECK((ab == 0) == (strcmp(a, b) == 0));
        }
    }
    /* a permutation: every element of the input is there as often */
    json_array_foreach(orig, i, v)
    {
        size_t want = 0, got = 0;
        for (j = 0; j < n; j++) {
            want += json_equal(v, json_array_get(orig, j)) ? 1 : 0;
            got += json_equal(v, json_array_get(tags, j)) ? 1 : 0;
        }
        FUZZ_CHECK(want == got);
    }
    /* non-strings keep their order */
    for (i = 0, j = nstr; i < n; i++) {
        v = json_array_get(orig, i);
        if (!json_is_string(v))
            FUZZ_CHECK(json_array_get(tags, j++) == v);
    }
    if (nstr > 0)
        (void)registry_is_version(json_string_value(json_array_get(tags, 0)));
done:
    json_decref(orig);
    json_decref(tags);
}

FUZZ_ENTRY(versions)
