/*
 * resource.h - resource descriptions: what the read model and the query
 * engine need to know about one kind of document (plugins, dashboard
 * templates), and how the catalog validates, stores and views it, so that
 * another resource is one more table entry rather than a copy of the code.
 *
 * A description is static, immutable data; every list is NULL-terminated.
 */
#ifndef REPOD_RESOURCE_H
#define REPOD_RESOURCE_H

#include <jansson.h>

#include "query.h"
#include "status.h"

/* What a register builds a record from besides the request: the owning
 * domain, the time of the write and (plugins) the configured default
 * registry URLs per registry_type (may be NULL). */
typedef struct {
    const char *domain_id;
    const char *now;
    const json_t *default_urls;
} resource_ctx;

/* The validation hooks of a resource (see plugin.h, dashboard.h). */
/* A register request (borrowed) -> a new stored record in *record. */
typedef rd_status (*resource_build_fn)(const json_t *req, const resource_ctx *ctx, json_t **record,
                                       rd_error *err);
/* An update request (borrowed) applied to a record (borrowed) -> a new
 * record in *updated, updated_at = now. */
typedef rd_status (*resource_update_fn)(const json_t *record, const json_t *req, const char *now,
                                        json_t **updated, rd_error *err);
/* A record (borrowed) -> its response view (new), with repository_info. */
typedef json_t *(*resource_view_fn)(const json_t *record, const json_t *repository_info);
/* The same, in place on a record decoded for one answer (repository_info
 * shared by reference). */
typedef void (*resource_view_in_place_fn)(json_t *record, json_t *repository_info);
/* Validates a record received from an upstream (borrowed): the fields a
 * mirror relies on are present with the right types; unknown fields are
 * not looked at.  RD_ERR_UPSTREAM_BAD_RESPONSE naming the problem. */
typedef rd_status (*resource_check_fn)(const json_t *record, rd_error *err);

typedef struct {
    const char *name;         /* "Plugin" */
    const char *id_field;     /* top-level key holding the document's id */
    const char *id_rule;      /* how an id is made, for documentation */
    const char *domain_field; /* top-level key holding the owning domain */
    /* top-level keys with postings: eq / in over strings on them are
     * answered from the read model's indexes */
    const char *const *eq_fields;
    /* top-level keys the read model keeps a sorted order for */
    const char *const *sort_keys;
    /* keys `keyword` searches and `minimal` returns (the query schema) */
    const char *const *keyword_fields;
    const char *const *minimal_fields;
    /* the default order of a list: these string fields compared with
     * strcmp ("" when missing or not a string), in turn */
    const char *const *default_order;
    /* further top-level keys the read model keeps in each document's compact
     * form, so that filters on them are matched without decoding the
     * document (NULL = none); the keys above are always kept */
    const char *const *match_fields;
    /* kept keys whose string values (or string array elements) repeat
     * across documents: one shared copy per distinct value (NULL = none) */
    const char *const *shared_fields;

    /* ---- the local tier (catalog) and the API ---- */
    const char *route;  /* the <resource> of /repository[/v1]/<resource>/<verb> */
    const char *plural; /* "plugins": for log lines and tools */
    /* first key part of a local record in STORE_CF_PLUGINS: records are
     * "<prefix>\0<domain_id>\0<id>" */
    const char *store_prefix;
    /* 1 when the store keeps secondary indexes of the records
     * (src/catalog/index.h: plugins only) */
    int store_indexed;
    /* the list request's top-level keys that are eq filters */
    const char *const *list_eq_keys;
    resource_build_fn build_record;
    resource_update_fn apply_update;
    resource_view_fn view;
    resource_view_in_place_fn view_in_place;

    /* ---- the remote tier (mirrors, src/remote) ---- */
    /* prefix of the cache key kinds of this resource in STORE_CF_CACHE:
     * "<prefix>C" records, "<prefix>M" catalog stamp, "<prefix>N" negative
     * answers, "<prefix>P" records fetched on their own (remote.h) */
    const char *cache_prefix;
    /* the upstream status key counting the mirrored records, "cached_<n>":
     * a sync answers {"<n>": count}, skipped records are "skipped_<n>"
     * (plugins keep their older "skipped_records") */
    const char *status_count_key;
    /* 1 when an upstream may lack the resource's routes (an older server):
     * a 404 to its list is an empty catalog, not a failure */
    int upstream_optional;
    resource_check_fn check_upstream;
} resource_desc;

extern const resource_desc resource_plugin;
extern const resource_desc resource_dashboard;

/* The query schema of r (keyword and minimal fields, borrowed from r). */
query_schema resource_query_schema(const resource_desc *r);

/* 1 when key is in the NULL-terminated list. */
int resource_has_key(const char *const *list, const char *key);

#endif
