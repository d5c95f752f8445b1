/*
 * resource.c - the static resource descriptions (include/resource.h).
 */
#include "resource.h"

#include <string.h>

#include "dashboard.h"
#include "plugin.h"
#include "remote.h"

static const char *const plugin_eq_fields[] = {
    "name", "state", "resource_type", "provider", "registry_type", "plugin_id", NULL};
static const char *const plugin_sort_keys[] = {
    "name", "created_at", "updated_at", "plugin_id", "provider", "resource_type", NULL};
static const char *const plugin_keyword_fields[] = {"plugin_id", "name", "provider", "labels",
                                                    NULL};
static const char *const plugin_minimal_fields[] = {
    "plugin_id", "name", "state", "image", "resource_type", "registry_type", "provider", NULL};
static const char *const plugin_default_order[] = {"name", "plugin_id", "domain_id", NULL};
static const char *const plugin_list_eq_keys[] = {
    "plugin_id", "name", "state", "resource_type", "provider", "registry_type", NULL};
/* repository_info: one object per tier, shared; filters and stat group
 * keys under it are read from the compact form */
static const char *const plugin_match_fields[] = {"service_type", "registry_url", "repository_info",
                                                  NULL};
static const char *const plugin_shared_fields[] = {
    "state",  "resource_type", "provider",     "registry_type",   "domain_id",
    "labels", "service_type",  "registry_url", "repository_info", NULL};

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
    .route = "plugin",
    .plural = "plugins",
    .store_prefix = "L",
    .store_indexed = 1,
    .list_eq_keys = plugin_list_eq_keys,
    .build_record = plugin_build_record,
    .apply_update = plugin_apply_update,
    .view = plugin_view,
    .view_in_place = plugin_view_in_place,
    .match_fields = plugin_match_fields,
    .shared_fields = plugin_shared_fields,
    .cache_prefix = "",
    .status_count_key = "cached_plugins",
    .upstream_optional = 0,
    .check_upstream = remote_check_plugin,
};

static const char *const dashboard_eq_fields[] = {"name", "state", "template_type", "template_id",
                                                  NULL};
static const char *const dashboard_sort_keys[] = {"name",        "created_at",    "updated_at",
                                                  "template_id", "template_type", NULL};
static const char *const dashboard_keyword_fields[] = {"template_id", "name", "labels", NULL};
static const char *const dashboard_minimal_fields[] = {"template_id", "name", "state",
                                                       "template_type", NULL};
static const char *const dashboard_match_fields[] = {"repository_info", NULL};
static const char *const dashboard_shared_fields[] = {"state",  "template_type",   "domain_id",
                                                      "labels", "repository_info", NULL};
static const char *const dashboard_default_order[] = {"name", "template_id", "domain_id", NULL};

const resource_desc resource_dashboard = {
    .name = "DashboardTemplate",
    .id_field = "template_id",
    .id_rule = "chosen by the client at register, else \"template-\" + 12 random hex digits",
    .domain_field = "domain_id",
    .eq_fields = dashboard_eq_fields,
    .sort_keys = dashboard_sort_keys,
    .keyword_fields = dashboard_keyword_fields,
    .minimal_fields = dashboard_minimal_fields,
    .default_order = dashboard_default_order,
    .route = "dashboard-template",
    .plural = "dashboard templates",
    .store_prefix = "D",
    .store_indexed = 0,
    .list_eq_keys = dashboard_eq_fields,
    .build_record = dashboard_build_record,
    .apply_update = dashboard_apply_update,
    .view = dashboard_view,
    .view_in_place = dashboard_view_in_place,
    .match_fields = dashboard_match_fields,
    .shared_fields = dashboard_shared_fields,
    .cache_prefix = "D",
    .status_count_key = "cached_dashboard_templates",
    .upstream_optional = 1,
    .check_upstream = dashboard_check_upstream,
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
