/*
 * resource.c - the static resource descriptions (include/resource.h).
 */
#include "resource.h"

#include <string.h>

static const char *const plugin_eq_fields[] = {
    "name", "state", "resource_type", "provider", "registry_type", "plugin_id", NULL};
static const char *const plugin_sort_keys[] = {
    "name", "created_at", "updated_at", "plugin_id", "provider", "resource_type", NULL};
static const char *const plugin_keyword_fields[] = {"plugin_id", "name", "provider", "labels",
                                                    NULL};
static const char *const plugin_minimal_fields[] = {
    "plugin_id", "name", "state", "image", "resource_type", "registry_type", "provider", NULL};
static const char *const plugin_default_order[] = {"name", "plugin_id", "domain_id", NULL};
static const char *const plugin_match_fields[] = {"service_type", "registry_url", NULL};
static const char *const plugin_shared_fields[] = {"state",         "resource_type", "provider",
                                                   "registry_type", "domain_id",     "labels",
                                                   "service_type",  "registry_url",  NULL};

const resource_desc resource_plugin = {
    .name = "Plugin",
    .id_field = "plugin_id",
    .id_rule = "chosen by the client at register, else the last '/'-segment of image",
    .domain_field = "domain_id",
    .eq_fields = plugin_eq_fields,
    .sort_keys = plugin_sort_keys,
    .keyword_fields = plugin_keyword_fields,
    .minimal_fields = plugin_minimal_fields,
    .default_order = plugin_default_order,
    .match_fields = plugin_match_fields,
    .shared_fields = plugin_shared_fields,
};

query_schema resource_query_schema(const resource_desc *r)
{
    query_schema s = {r->keyword_fields, r->minimal_fields};
    return s;
}

int resource_has_key(const char *const *list, const char *key)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], key) == 0)
            return 1;
    return 0;
}
