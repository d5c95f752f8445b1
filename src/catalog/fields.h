/*
 * fields.h - request checks shared by the resources' validators (plugin.c,
 * dashboard.c): unknown keys, key types, required strings, client-chosen
 * ids, id-only requests, and the small helpers that build records.  Private
 * to src/catalog.
 *
 * Messages name the offending key and quote values through
 * fields_printable(), so a message is always short printable ASCII.
 */
#ifndef REPOD_CATALOG_FIELDS_H
#define REPOD_CATALOG_FIELDS_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

#define FIELDS_PRINTABLE_MAX 64
#define FIELDS_ID_MAX        40 /* a client-chosen id: one image path component */

/* How a request key is checked. */
typedef enum {
    KT_STRING,       /* a string */
    KT_OBJECT,       /* an object */
    KT_STRING_ARRAY, /* an array of strings */
    KT_ARRAY,        /* an array of anything */
    KT_IGNORED       /* legacy key: accepted, not checked, not used */
} fields_type;

typedef struct {
    const char *key;
    fields_type type;
} fields_rule;

/* 1 when s is in the NULL-terminated list. */
int fields_in_list(const char *s, const char *const *list);

/* Copies s into buf (size > 4) for quoting in a message: at most
 * FIELDS_PRINTABLE_MAX printable ASCII characters, anything else as '?', and
 * "..." when cut.  Returns buf. */
const char *fields_printable(const char *s, char *buf, size_t size);

/* The string value of req[key], or NULL when absent, null or not a string. */
const char *fields_str(const json_t *req, const char *key);

/* RD_ERR_INTERNAL "Internal error." */
rd_status fields_internal(rd_error *err);

/* The first key of req (in request order) that rules (terminated by a NULL
 * key) do not list -> INVALID_PARAMETER "(key = foo)"; a key in immutable
 * (NULL-terminated, may be NULL) -> "(key = foo, reason = update cannot
 * change it)". */
rd_status fields_check_unknown(const json_t *req, const fields_rule *rules,
                               const char *const *immutable, rd_error *err);

/* The type of every present, non-null key, in table order ->
 * INVALID_PARAMETER_TYPE "(key = labels, type = array)". */
rd_status fields_check_types(const json_t *req, const fields_rule *rules, rd_error *err);

/* The first steps of every register / update check: req must be an object
 * (else INVALID_PARAMETER_TYPE "(key = body, type = object)"), then
 * fields_check_unknown, then fields_check_types. */
rd_status fields_check_body(const json_t *req, const fields_rule *rules,
                            const char *const *immutable, rd_error *err);

/* A required string: NULL and "" -> REQUIRED_PARAMETER "(key = name)". */
rd_status fields_check_required(const char *value, const char *key, rd_error *err);

/* Checks one '/'-separated image component [s, s + n): lowercase letters
 * and digits joined by single '.', '_' or '-'.  A reason, or NULL. */
const char *fields_component_reason(const char *s, size_t n);

/* Checks an id chosen by a client for the field key: one image path
 * component of at most FIELDS_ID_MAX bytes.  NULL or "" ->
 * REQUIRED_PARAMETER; else INVALID_PARAMETER "(key = <key>, ...)". */
rd_status fields_check_id(const char *key, const char *id, rd_error *err);

/* Checks a request that names one document by id_key (get, enable,
 * disable, deregister): id_key (required string) and, when allow_repo is
 * set, repository_id (string) and only (array of strings); the legacy
 * domain_id / project_id are accepted.  Unknown keys -> INVALID_PARAMETER,
 * types -> INVALID_PARAMETER_TYPE, id absent/null/"" -> REQUIRED_PARAMETER. */
rd_status fields_check_id_request(const json_t *req, const char *id_key, int allow_repo,
                                  rd_error *err);

/* rec[key] = a new string; 0 or -1. */
int fields_set_string(json_t *rec, const char *key, const char *value);

/* rec[key] = a deep copy of req[key], or dflt (a new reference, always
 * consumed) when req[key] is absent or null; 0 or -1. */
int fields_set_copy(json_t *rec, const char *key, const json_t *req, json_t *dflt);

/* Sets every key of changeable (NULL-terminated) that req holds non-null
 * to a deep copy of it in rec; 0 or -1. */
int fields_apply_changes(json_t *rec, const json_t *req, const char *const *changeable);

#endif
