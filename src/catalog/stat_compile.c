/*
 * stat_compile.c - compiles a StatisticsQuery (SPEC section 8) into a
 * stat_plan: the filter part (through query.c), page, and either the
 * distinct path or the aggregate stages with their items.  Every error of
 * a query is found here, before any document is looked at.
 *
 * Core v2 shapes are accepted beside v1: the one-letter aliases k, n, o of
 * key, name, operator in group keys, group fields and project fields; a sort
 * stage given as a list of {key, desc}; and the analyze form
 * {group_by: [keys], fields: {name: {key, operator}}, sort: [...]}, which is
 * rewritten into the equivalent group (+ sort) pipeline.
 */
#include "stat-internal.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    acc_op op;
} acc_table[] = {
    {"count", ACC_COUNT}, {"sum", ACC_SUM},   {"average", ACC_AVG},
    {"max", ACC_MAX},     {"min", ACC_MIN},   {"first", ACC_FIRST},
    {"last", ACC_LAST},   {"push", ACC_PUSH}, {"add_to_set", ACC_ADD_TO_SET},
};

static const char *const stage_names[] = {"group", "count",  "sort",   "limit",
                                          "skip",  "unwind", "project"};

/* ---- compile helpers ----------------------------------------------------- */

static rd_status check_keys(const json_t *obj, const char *const *allowed, const char *where,
                            rd_error *err)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        size_t i;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(k, allowed[i]) == 0)
                break;
        if (allowed[i] == NULL)
            return rd_fail(err, RD_ERR_DB_QUERY, "Unknown key. (key = %s.%s)", where, k);
    }
    return RD_OK;
}

/* Reads obj[field] as a string: missing / null / "" is RD_ERR_REQUIRED_PARAMETER
 * when required (else *out = NULL), a non-string RD_ERR_INVALID_PARAMETER_TYPE. */
static rd_status get_string(const json_t *obj, const char *field, const char *where, int required,
                            const char **out, rd_error *err)
{
    const json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (v != NULL && !json_is_null(v) && !json_is_string(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.%s, type = string)", where, field);
    if (json_is_string(v) && json_string_length(v) > 0)
        *out = json_string_value(v);
    if (*out == NULL && required)
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = %s.%s)", where,
                       field);
    return RD_OK;
}

/* Output field names follow MongoDB's rules: no '.', no leading '$'. */
static rd_status check_name(const char *name, const char *where, rd_error *err)
{
    if (strchr(name, '.') != NULL || name[0] == '$')
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "Invalid name: it may not contain '.' or start with '$'. "
                       "(key = %s.name, value = %s)",
                       where, name);
    return RD_OK;
}

static rd_status check_date_format(const char *fmt, const char *where, rd_error *err)
{
    if (strlen(fmt) > DATE_FORMAT_MAX)
        return rd_fail(err, RD_ERR_DB_QUERY, "date_format is too long. (key = %s.date_format)",
                       where);
    for (const char *p = fmt; *p != '\0'; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == '\0' || strchr("YmdHMSLjwuUVGzZ%", *p) == NULL)
            return rd_fail(err, RD_ERR_DB_QUERY,
                           "Invalid date_format. (key = %s.date_format, value = %s)", where, fmt);
    }
    return RD_OK;
}

static rd_status list_of_objects(const json_t *obj, const char *field, const char *where,
                                 const json_t **out, rd_error *err)
{
    const json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return RD_OK;
    if (!json_is_array(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.%s, type = list)", where, field);
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_object(json_array_get(v, i)))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = %s.%s[%zu], type = object)", where,
                           field, i);
    *out = v;
    return RD_OK;
}

static void item_free(stage_item *it)
{
    qpath_free(&it->path);
    free(it->name);
    free(it->date_format);
}

static void stage_free(stage *s)
{
    for (size_t i = 0; i < s->nkeys; i++)
        item_free(&s->keys[i]);
    for (size_t i = 0; i < s->nitems; i++)
        item_free(&s->items[i]);
    free(s->keys);
    free(s->items);
    free(s->name);
    qsort_spec_free(&s->sort);
    qpath_free(&s->path);
}

/* The core v2 aliases of item keys: k = key, n = name, o = operator.
 * *out gets a new object with the aliases renamed (both spellings of one
 * key -> RD_ERR_DB_QUERY). */
static rd_status item_unalias(const json_t *obj, const char *where, json_t **out, rd_error *err)
{
    static const char *const pairs[][2] = {{"k", "key"}, {"n", "name"}, {"o", "operator"}};
    json_t *copy = json_copy((json_t *)obj);
    *out = NULL;
    if (copy == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        json_t *alias = json_object_get(copy, pairs[i][0]);
        if (alias == NULL)
            continue;
        if (json_object_get(copy, pairs[i][1]) != NULL) {
            json_decref(copy);
            return rd_fail(err, RD_ERR_DB_QUERY, "Use either %s or %s. (key = %s.%s)", pairs[i][1],
                           pairs[i][0], where, pairs[i][0]);
        }
        json_object_set(copy, pairs[i][1], alias);
        json_object_del(copy, pairs[i][0]);
    }
    *out = copy;
    return RD_OK;
}

/* kind: 0 = group key, 1 = group field, 2 = project field. */
static rd_status item_compile_plain(const json_t *obj, int kind, const char *where, stage_item *it,
                                    rd_error *err);

static rd_status item_compile(const json_t *obj, int kind, const char *where, stage_item *it,
                              rd_error *err)
{
    json_t *plain = NULL;
    rd_status rc = item_unalias(obj, where, &plain, err);
    if (rc == RD_OK)
        rc = item_compile_plain(plain, kind, where, it, err);
    json_decref(plain);
    return rc;
}

static rd_status item_compile_plain(const json_t *obj, int kind, const char *where, stage_item *it,
                                    rd_error *err)
{
    static const char *const key_keys[] = {"key", "name", "date_format", NULL};
    static const char *const field_keys[] = {"key", "name", "operator", NULL};
    static const char *const project_keys[] = {"key", "name", NULL};
    const char *key, *name, *fmt = NULL, *op = NULL;
    rd_status rc;

    rc = check_keys(obj, kind == 0 ? key_keys : kind == 1 ? field_keys : project_keys, where, err);
    if (rc != RD_OK)
        return rc;
    if (kind == 1) {
        size_t i;
        rc = get_string(obj, "operator", where, 1, &op, err);
        if (rc != RD_OK)
            return rc;
        for (i = 0; i < sizeof(acc_table) / sizeof(acc_table[0]); i++)
            if (strcmp(op, acc_table[i].name) == 0)
                break;
        if (i == sizeof(acc_table) / sizeof(acc_table[0]))
            return rd_fail(err, RD_ERR_DB_QUERY,
                           "Invalid aggregate operator. (key = %s.operator, operator = %s)", where,
                           op);
        it->op = acc_table[i].op;
    }
    rc = get_string(obj, "key", where, !(kind == 1 && it->op == ACC_COUNT), &key, err);
    if (rc == RD_OK)
        rc = get_string(obj, "name", where, 1, &name, err);
    if (rc == RD_OK)
        rc = check_name(name, where, err);
    if (rc == RD_OK && kind == 0)
        rc = get_string(obj, "date_format", where, 0, &fmt, err);
    if (rc == RD_OK && fmt != NULL)
        rc = check_date_format(fmt, where, err);
    if (rc != RD_OK)
        return rc;
    if (key != NULL) {
        char sub[160];
        qfmt(sub, sizeof(sub), "%s.key", where);
        rc = qpath_init(&it->path, key, sub, err);
        if (rc != RD_OK)
            return rc;
        it->has_key = 1;
    }
    it->name = strdup(name);
    it->date_format = fmt != NULL ? strdup(fmt) : NULL;
    if (it->name == NULL || (fmt != NULL && it->date_format == NULL))
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    return RD_OK;
}

static rd_status items_compile(const json_t *list, int kind, const char *where, stage_item **out,
                               size_t *n, rd_error *err)
{
    char sub[160];
    size_t count = json_array_size(list);
    *out = calloc(count ? count : 1, sizeof(**out));
    if (*out == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; i < count; i++) {
        rd_status rc;
        qfmt(sub, sizeof(sub), "%s[%zu]", where, i);
        (*n)++;
        rc = item_compile(json_array_get(list, i), kind, sub, &(*out)[i], err);
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;
}

static rd_status group_compile(const json_t *g, const char *where, stage *s, rd_error *err)
{
    static const char *const allowed[] = {"keys", "fields", NULL};
    const json_t *keys, *fields;
    char sub[160];
    rd_status rc;

    if (!json_is_object(g))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s, type = object)", where);
    if ((rc = check_keys(g, allowed, where, err)) != RD_OK ||
        (rc = list_of_objects(g, "keys", where, &keys, err)) != RD_OK ||
        (rc = list_of_objects(g, "fields", where, &fields, err)) != RD_OK)
        return rc;
    qfmt(sub, sizeof(sub), "%s.keys", where);
    rc = items_compile(keys, 0, sub, &s->keys, &s->nkeys, err);
    if (rc != RD_OK)
        return rc;
    qfmt(sub, sizeof(sub), "%s.fields", where);
    rc = items_compile(fields, 1, sub, &s->items, &s->nitems, err);
    if (rc != RD_OK)
        return rc;
    /* Output names must be unique across keys and fields. */
    for (size_t i = 0; i < s->nkeys + s->nitems; i++) {
        const char *a = i < s->nkeys ? s->keys[i].name : s->items[i - s->nkeys].name;
        for (size_t j = i + 1; j < s->nkeys + s->nitems; j++) {
            const char *b = j < s->nkeys ? s->keys[j].name : s->items[j - s->nkeys].name;
            if (strcmp(a, b) == 0)
                return rd_fail(err, RD_ERR_DB_QUERY, "Duplicate name. (key = %s, name = %s)", where,
                               a);
        }
    }
    return RD_OK;
}

static rd_status count_int(const json_t *v, const char *where, int positive, size_t *out,
                           rd_error *err)
{
    if (!json_is_integer(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s, type = integer)", where);
    if (json_integer_value(v) < (positive ? 1 : 0))
        return rd_fail(err, RD_ERR_DB_QUERY, "The value must be %s. (key = %s, value = %lld)",
                       positive ? "positive" : "non-negative", where,
                       (long long)json_integer_value(v));
    *out = (size_t)json_integer_value(v);
    return RD_OK;
}

static rd_status stage_compile(const json_t *st, const char *where, stage *s, rd_error *err)
{
    static const char *const count_keys[] = {"name", NULL};
    static const char *const unwind_keys[] = {"path", NULL};
    static const char *const project_keys[] = {"fields", "exclude_keys", NULL};
    const char *k = NULL, *str;
    const json_t *v = NULL, *it;
    char sub[160];
    rd_status rc;
    size_t kind;

    if (!json_is_object(st) || json_object_size(st) != 1)
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "An aggregate stage needs exactly one of group, count, sort, limit, skip, "
                       "unwind, project. (key = %s)",
                       where);
    json_object_foreach((json_t *)st, k, it)
    {
        v = it;
        break;
    }
    for (kind = 0; kind < sizeof(stage_names) / sizeof(stage_names[0]); kind++)
        if (strcmp(k, stage_names[kind]) == 0)
            break;
    if (kind == sizeof(stage_names) / sizeof(stage_names[0]))
        return rd_fail(err, RD_ERR_DB_QUERY, "Unknown aggregate stage. (key = %s.%s)", where, k);
    s->kind = (stage_kind)kind;
    qfmt(sub, sizeof(sub), "%s.%s", where, k);
    switch (s->kind) {
    case ST_GROUP:
        return group_compile(v, sub, s, err);
    case ST_SORT:
        return qsort_spec_compile(v, sub, &s->sort, err);
    case ST_LIMIT:
        return count_int(v, sub, 1, &s->n, err);
    case ST_SKIP:
        return count_int(v, sub, 0, &s->n, err);
    default:
        break;
    }
    if (!json_is_object(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s, type = object)", sub);
    if (s->kind == ST_COUNT) {
        if ((rc = check_keys(v, count_keys, sub, err)) != RD_OK ||
            (rc = get_string(v, "name", sub, 1, &str, err)) != RD_OK ||
            (rc = check_name(str, sub, err)) != RD_OK)
            return rc;
        s->name = strdup(str);
        return s->name != NULL ? RD_OK : rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    if (s->kind == ST_UNWIND) {
        if ((rc = check_keys(v, unwind_keys, sub, err)) != RD_OK ||
            (rc = get_string(v, "path", sub, 1, &str, err)) != RD_OK)
            return rc;
        if (str[0] == '$')
            str++;
        qfmt(sub, sizeof(sub), "%s.unwind.path", where);
        return qpath_init(&s->path, str, sub, err);
    }
    /* ST_PROJECT */
    const json_t *fields, *excl;
    if ((rc = check_keys(v, project_keys, sub, err)) != RD_OK ||
        (rc = list_of_objects(v, "fields", sub, &fields, err)) != RD_OK)
        return rc;
    excl = json_object_get(v, "exclude_keys");
    if (excl != NULL && !json_is_null(excl) && !json_is_boolean(excl))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.exclude_keys, type = bool)", sub);
    s->exclude_keys = json_is_true(excl);
    qfmt(sub, sizeof(sub), "%s.project.fields", where);
    return items_compile(fields, 2, sub, &s->items, &s->nitems, err);
}

void stat_plan_free(stat_plan *p)
{
    query_free(p->filter);
    qpath_free(&p->distinct_path);
    for (size_t i = 0; i < p->nstages; i++)
        stage_free(&p->stages[i]);
    free(p->stages);
    memset(p, 0, sizeof(*p));
}

/* The last '.'-segment of a dotted key: the output name of a group_by key. */
static const char *last_segment(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot != NULL ? dot + 1 : key;
}

/* The analyze form (core v2 AnalyzeQuery): group_by (a non-empty list of
 * keys; each becomes a group key named by its last segment), fields
 * (optional object name -> {key?, operator}) and sort (optional, any sort
 * shape) become aggregate [{group}, {sort}?].  *out gets a new
 * StatisticsQuery object; the filter part and page are kept. */
static rd_status rewrite_group_by(const json_t *sq, json_t **out, rd_error *err)
{
    static const char *const kept[] = {"filter", "filter_or", "keyword", "page", NULL};
    static const char *const own[] = {"group_by", "fields", "sort", NULL};
    const json_t *group_by = json_object_get(sq, "group_by");
    const json_t *fields = json_object_get(sq, "fields"), *sort = json_object_get(sq, "sort");
    json_t *res = json_object(), *keys = json_array(), *items = json_array(), *agg = json_array();
    const char *k;
    json_t *v;
    size_t i;
    rd_status rc = RD_OK;

    *out = NULL;
    if (res == NULL || keys == NULL || items == NULL || agg == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    json_object_foreach((json_t *)sq, k, v)
    {
        size_t j;
        for (j = 0; kept[j] != NULL && strcmp(kept[j], k) != 0; j++)
            ;
        if (kept[j] != NULL) {
            json_object_set(res, k, v);
            continue;
        }
        for (j = 0; own[j] != NULL && strcmp(own[j], k) != 0; j++)
            ;
        if (own[j] == NULL) {
            rc = rd_fail(err, RD_ERR_DB_QUERY,
                         "Unknown key: use either group_by or aggregate / distinct. (key = "
                         "query.%s)",
                         k);
            goto done;
        }
    }
    if (!json_is_array(group_by) || json_array_size(group_by) == 0) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                     "Invalid parameter type. (key = query.group_by, type = non-empty list of "
                     "strings)");
        goto done;
    }
    json_array_foreach(group_by, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                         "Invalid parameter type. (key = query.group_by[%zu], type = string)", i);
            goto done;
        }
        json_array_append_new(
            keys, json_pack("{s:O, s:s}", "key", v, "name", last_segment(json_string_value(v))));
    }
    if (fields != NULL && !json_is_null(fields) && !json_is_object(fields)) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                     "Invalid parameter type. (key = query.fields, type = object)");
        goto done;
    }
    json_object_foreach((json_t *)fields, k, v)
    {
        json_t *item;
        if (!json_is_object(v)) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                         "Invalid parameter type. (key = query.fields.%s, type = object)", k);
            goto done;
        }
        item = json_copy(v);
        if (item == NULL || json_object_set_new(item, "name", json_string(k)) != 0 ||
            json_array_append_new(items, item) != 0) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
            goto done;
        }
    }
    json_array_append_new(agg, json_pack("{s:{s:O, s:O}}", "group", "keys", keys, "fields", items));
    if (sort != NULL && !json_is_null(sort))
        json_array_append_new(agg, json_pack("{s:O}", "sort", sort));
    json_object_set(res, "aggregate", agg);
    *out = res;
    res = NULL;
done:
    json_decref(res);
    json_decref(keys);
    json_decref(items);
    json_decref(agg);
    return rc;
}

static rd_status plan_compile(const json_t *sq, const query_schema *schema, stat_plan *p,
                              rd_error *err);

rd_status stat_plan_compile(const json_t *sq, const query_schema *schema, stat_plan *p,
                            rd_error *err)
{
    json_t *rewritten = NULL;
    rd_status rc;
    if (!json_is_object(sq) || json_object_get(sq, "group_by") == NULL)
        return plan_compile(sq, schema, p, err);
    rc = rewrite_group_by(sq, &rewritten, err);
    if (rc == RD_OK)
        rc = plan_compile(rewritten, schema, p, err);
    json_decref(rewritten);
    return rc;
}

rd_status query_stat_filter(const json_t *stat_query, const query_schema *schema, query **out,
                            rd_error *err)
{
    static const char *const filter_keys[] = {"filter", "filter_or", "keyword", NULL};
    json_t *fobj;
    rd_status rc;
    *out = NULL;
    if (!json_is_object(stat_query))
        return RD_OK;
    fobj = json_object();
    if (fobj == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; filter_keys[i] != NULL; i++) {
        json_t *v = json_object_get(stat_query, filter_keys[i]);
        if (v != NULL)
            json_object_set(fobj, filter_keys[i], v);
    }
    rc = query_compile(fobj, NULL, schema, out, err);
    json_decref(fobj);
    return rc;
}

static rd_status plan_compile(const json_t *sq, const query_schema *schema, stat_plan *p,
                              rd_error *err)
{
    static const char *const allowed[] = {"filter",    "filter_or", "keyword", "distinct",
                                          "aggregate", "page",      NULL};
    rd_status rc = RD_OK;
    const json_t *distinct, *aggregate;
    char where[64];

    if (sq != NULL && !json_is_null(sq) && !json_is_object(sq))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query, type = object)");
    if (!json_is_object(sq))
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = aggregate)");
    if ((rc = check_keys(sq, allowed, "query", err)) != RD_OK)
        return rc;
    distinct = json_object_get(sq, "distinct");
    aggregate = json_object_get(sq, "aggregate");
    if (json_is_null(distinct))
        distinct = NULL;
    if (json_is_null(aggregate))
        aggregate = NULL;
    if (distinct != NULL && aggregate != NULL)
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "Use either distinct or aggregate, not both. (key = query.distinct)");
    if (distinct != NULL && !json_is_string(distinct))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query.distinct, type = string)");
    if (aggregate != NULL && !json_is_array(aggregate))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query.aggregate, type = list)");
    if (distinct == NULL && json_array_size(aggregate) == 0)
        return rd_fail(err, RD_ERR_REQUIRED_PARAMETER, "Required parameter. (key = aggregate)");

    rc = query_stat_filter(sq, schema, &p->filter, err);
    if (rc != RD_OK)
        goto done;
    rc = qpage_compile(json_object_get(sq, "page"), "query.page", &p->page, err);
    if (rc != RD_OK)
        goto done;
    if (distinct != NULL) {
        p->distinct = 1;
        rc = qpath_init(&p->distinct_path, json_string_value(distinct), "query.distinct", err);
        goto done;
    }
    p->stages = calloc(json_array_size(aggregate), sizeof(*p->stages));
    if (p->stages == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    for (size_t i = 0; i < json_array_size(aggregate) && rc == RD_OK; i++) {
        qfmt(where, sizeof(where), "query.aggregate[%zu]", i);
        p->nstages++;
        rc = stage_compile(json_array_get(aggregate, i), where, &p->stages[i], err);
    }
done:
    return rc;
}
