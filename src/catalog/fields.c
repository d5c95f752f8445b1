/*
 * fields.c - request checks shared by the resources' validators (fields.h).
 */
#include "fields.h"

#include "catalog.h"

#include <stdio.h>
#include <string.h>

int fields_in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(s, list[i]) == 0)
            return 1;
    }
    return 0;
}

static const fields_rule *find_rule(const fields_rule *rules, const char *key)
{
    for (size_t i = 0; rules[i].key != NULL; i++) {
        if (strcmp(rules[i].key, key) == 0)
            return &rules[i];
    }
    return NULL;
}

const char *fields_printable(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    size_t limit = size - 4 < FIELDS_PRINTABLE_MAX ? size - 4 : FIELDS_PRINTABLE_MAX;

    for (; s[0] != '\0' && n < limit; s++) {
        unsigned char c = (unsigned char)s[0];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s[0] != '\0') {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

const char *fields_str(const json_t *req, const char *key)
{
    return json_string_value(json_object_get(req, key));
}

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

rd_status fields_internal(rd_error *err)
{
    return rd_fail(err, RD_ERR_INTERNAL, "Internal error.");
}

rd_status fields_check_unknown(const json_t *req, const fields_rule *rules,
                               const char *const *immutable, rd_error *err)
{
    /* jansson's iterator API is not const-qualified; it only reads here. */
    json_t *obj = (json_t *)req;
    const char *key;
    json_t *value;
    char buf[FIELDS_PRINTABLE_MAX + 4];

    json_object_foreach(obj, key, value)
    {
        if (find_rule(rules, key) != NULL)
            continue;
        if (immutable != NULL && fields_in_list(key, immutable))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                           "Invalid parameter. (key = %s, reason = update cannot change it)", key);
        return rd_fail(err, RD_ERR_INVALID_PARAMETER, "Invalid parameter. (key = %s)",
                       fields_printable(key, buf, sizeof(buf)));
    }
    return RD_OK;
}

/* The type name v must have under type, or NULL when it has it. */
static const char *type_mismatch(const json_t *v, fields_type type)
{
    switch (type) {
    case KT_STRING:
        return json_is_string(v) ? NULL : "string";
    case KT_OBJECT:
        return json_is_object(v) ? NULL : "object";
    case KT_ARRAY:
        return json_is_array(v) ? NULL : "array";
    case KT_STRING_ARRAY:
        if (!json_is_array(v))
            return "array";
        for (size_t j = 0; j < json_array_size(v); j++) {
            if (!json_is_string(json_array_get(v, j)))
                return "array of strings";
        }
        return NULL;
    case KT_IGNORED:
        break;
    }
    return NULL;
}

rd_status fields_check_types(const json_t *req, const fields_rule *rules, rd_error *err)
{
    for (size_t i = 0; rules[i].key != NULL; i++) {
        const json_t *v = json_object_get(req, rules[i].key);
        const char *want;

        if (v == NULL || json_is_null(v))
            continue;
        want = type_mismatch(v, rules[i].type);
        if (want != NULL)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = %s, type = %s)", rules[i].key, want);
    }
    return RD_OK;
}

rd_status fields_check_body(const json_t *req, const fields_rule *rules,
                            const char *const *immutable, rd_error *err)
{
    rd_status rc;
    if (!json_is_object(req))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = body, type = object)");
    rc = fields_check_unknown(req, rules, immutable, err);
    if (rc == RD_OK)
        rc = fields_check_types(req, rules, err);
    return rc;
}

rd_status fields_check_required(const char *value, const char *key, rd_error *err)
{
    if (value == NULL || value[0] == '\0')
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = %s)", key);
    return RD_OK;
}

const char *fields_component_reason(const char *s, size_t n)
{
    if (n == 0)
        return "empty path component";
    if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return "a component must start and end with a lowercase letter or digit";
    for (size_t i = 1; i < n; i++) {
        if (!is_lower_alnum(s[i]) && !is_lower_alnum(s[i - 1]))
            return "doubled separator";
    }
    return NULL;
}

rd_status fields_check_id(const char *key, const char *id, rd_error *err)
{
    char buf[FIELDS_PRINTABLE_MAX + 4];
    const char *reason = NULL;
    size_t len;

    if (id == NULL || id[0] == '\0')
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = %s)", key);
    len = strlen(id);
    if (len > FIELDS_ID_MAX)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = %s, reason = longer than %d characters)", key,
                       FIELDS_ID_MAX);
    for (size_t i = 0; i < len && reason == NULL; i++) {
        char c = id[i];
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-')
            reason = "only lowercase letters, digits, '.', '_' and '-' are allowed";
    }
    if (reason == NULL)
        reason = fields_component_reason(id, len);
    if (reason != NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = %s, value = %s, reason = %s)", key,
                       fields_printable(id, buf, sizeof(buf)), reason);
    return RD_OK;
}

rd_status fields_check_id_request(const json_t *req, const char *id_key, int allow_repo,
                                  rd_error *err)
{
    fields_rule rules[] = {
        {id_key, KT_STRING},       {"repository_id", KT_STRING}, {"only", KT_STRING_ARRAY},
        {"domain_id", KT_IGNORED}, {"project_id", KT_IGNORED},   {NULL, KT_IGNORED},
    };
    const fields_rule *use = rules;
    rd_status rc;

    if (!allow_repo) { /* id_key, then the legacy keys */
        rules[2].key = id_key;
        rules[2].type = KT_STRING;
        use = &rules[2];
    }
    if (!json_is_object(req))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = body, type = object)");
    if ((rc = fields_check_unknown(req, use, NULL, err)) != RD_OK)
        return rc;
    if ((rc = fields_check_types(req, use, err)) != RD_OK)
        return rc;
    return fields_check_required(fields_str(req, id_key), id_key, err);
}

int fields_set_string(json_t *rec, const char *key, const char *value)
{
    return json_object_set_new(rec, key, json_string(value));
}

int fields_set_copy(json_t *rec, const char *key, const json_t *req, json_t *dflt)
{
    const json_t *v = json_object_get(req, key);

    if (v == NULL || json_is_null(v))
        return json_object_set_new(rec, key, dflt);
    json_decref(dflt);
    return json_object_set_new(rec, key, json_deep_copy(v));
}

int fields_apply_changes(json_t *rec, const json_t *req, const char *const *changeable)
{
    for (size_t i = 0; changeable[i] != NULL; i++) {
        const json_t *v = json_object_get(req, changeable[i]);
        if (v == NULL || json_is_null(v))
            continue;
        if (json_object_set_new(rec, changeable[i], json_deep_copy(v)) != 0)
            return -1;
    }
    return 0;
}

rd_status catalog_check_id_request(const resource_desc *res, const json_t *req, int allow_repo,
                                   rd_error *err)
{
    return fields_check_id_request(req, res->id_field, allow_repo, err);
}
