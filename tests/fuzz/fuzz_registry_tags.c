/*
 * fuzz_registry_tags.c - a registry's tags/list answers: the bytes, split
 * at NUL, are up to four pages read in turn into one list, as a lookup
 * that follows Link headers does; registry_tags_page_collect.
 * Invariants: the list holds distinct, non-empty strings without NUL, the
 * same set as the keys of seen; a page accepted adds exactly its tags not
 * seen before, in their order; a page refused was not an object with a
 * tags array (or null) of such strings.
 */
#include "fuzz.h"
#include "registry.h"

#define FUZZ_RT_PAGES 4

/* 1 when page (JSON) is a tag list page the collector must accept. */
static int fuzz_rt_valid_page(const char *page, size_t len)
{
    json_t *root = json_loadb(page, len, 0, NULL), *list, *tag;
    size_t i;
    int ok = 0;

    if (!json_is_object(root))
        goto done;
    list = json_object_get(root, "tags");
    if (json_is_null(list)) {
        ok = 1;
        goto done;
    }
    if (!json_is_array(list))
        goto done;
    json_array_foreach(list, i, tag)
    {
        if (!json_is_string(tag) || json_string_length(tag) == 0 ||
            memchr(json_string_value(tag), '\0', json_string_length(tag)) != NULL)
            goto done;
    }
    ok = 1;
done:
    json_decref(root);
    return ok;
}

static void fuzz_registry_tags(const uint8_t *data, size_t size)
{
    json_t *seen = json_object(), *tags = json_array(), *tag;
    size_t pos = 0, i;

    FUZZ_CHECK(seen != NULL && tags != NULL);
    for (int page = 0; page < FUZZ_RT_PAGES && pos <= size; page++) {
        size_t end = pos, before = json_array_size(tags);
        int rc, valid;
        while (end < size && data[end] != '\0')
            end++;
        valid = fuzz_rt_valid_page((const char *)data + pos, end - pos);
        rc = registry_tags_page_collect((const char *)data + pos, end - pos, seen, tags);
        FUZZ_CHECK((rc == 0) == valid);
        if (rc == 0) {
            /* exactly the page's new tags, in order */
            json_t *root = json_loadb((const char *)data + pos, end - pos, 0, NULL);
            json_t *list = json_object_get(root, "tags"), *fresh = json_object();
            size_t k = before;
            FUZZ_CHECK(fresh != NULL);
            json_array_foreach(list, i, tag)
            {
                const char *s = json_string_value(tag);
                int old = 0;
                for (size_t j = 0; j < before; j++)
                    old |= strcmp(json_string_value(json_array_get(tags, j)), s) == 0;
                if (old || json_object_get(fresh, s) != NULL)
                    continue;
                json_object_set(fresh, s, json_true());
                FUZZ_CHECK(k < json_array_size(tags));
                FUZZ_CHECK(strcmp(json_string_value(json_array_get(tags, k)), s) == 0);
                k++;
            }
            FUZZ_CHECK(k == json_array_size(tags));
            json_decref(fresh);
            json_decref(root);
        }
        pos = end + 1;
    }
    /* distinct non-empty strings, the keys of seen */
    FUZZ_CHECK(json_object_size(seen) == json_array_size(tags));
    json_array_foreach(tags, i, tag)
    {
        FUZZ_CHECK(json_is_string(tag) && json_string_length(tag) > 0);
        FUZZ_CHECK(strlen(json_string_value(tag)) == json_string_length(tag));
        FUZZ_CHECK(json_object_get(seen, json_string_value(tag)) != NULL);
    }
    json_decref(seen);
    json_decref(tags);
}

FUZZ_ENTRY(registry_tags)
