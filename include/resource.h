/*
 * resource.h - resource descriptions: what the read model and the query
 * engine need to know about one kind of document (plugins today), so that
 * another resource is one more table entry rather than a copy of the code.
 *
 * A description is static, immutable data; every list is NULL-terminated.
 */
#ifndef REPOD_RESOURCE_H
#define REPOD_RESOURCE_H

#include "query.h"

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
} resource_desc;

extern const resource_desc resource_plugin;

/* The query schema of r (keyword and minimal fields, borrowed from r). */
query_schema resource_query_schema(const resource_desc *r);

/* 1 when key is in the NULL-terminated list. */
int resource_has_key(const char *const *list, const char *key);

#endif
