/*
 * stat.c - the statistics engine (SPEC section 8, StatisticsQuery):
 * filter / filter_or / keyword select documents (through query.c), then
 * either `distinct` or an `aggregate` pipeline of group, count, sort, limit,
 * skip, unwind and project stages runs over them, then `page` slices the
 * final rows.
 *
 * Each stage behaves as its MongoDB counterpart ($group, $count, $sort,
 * $limit, $skip, $unwind, $project) would on the same documents, with these
 * deliberate, documented differences (also in docs/query.md):
 *  - group rows come out in order of first appearance of their key in the
 *    input (MongoDB leaves it unspecified); add_to_set keeps first-appearance
 *    order too;
 *  - sort is stable (ties keep the incoming row order);
 *  - group keys become top-level fields of the row (MongoDB keeps them in
 *    _id; the platform flattens them the same way); a key whose path is
 *    missing is left out of the row, and missing and null are different
 *    groups, as in MongoDB;
 *  - `date_format` parses the key's value as an ISO-8601 string
 *    (query_parse_datetime) and formats it in UTC with MongoDB
 *    $dateToString specifiers (%Y %m %d %H %M %S %L %j %w %u %U %V %G %z
 *    %Z %%); a value that is not such a string gives null;
 *  - project without exclude_keys keeps the key fields of the last group
 *    stage (where MongoDB would keep _id), with exclude_keys it does not.
 * Every error is found while compiling, before any document is looked at,
 * so a bad query never returns partial results.
 */
#include "query-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compiled plan ------------------------------------------------------- */

typedef enum {
    ACC_COUNT,
    ACC_SUM,
    ACC_AVG,
    ACC_MAX,
    ACC_MIN,
    ACC_FIRST,
    ACC_LAST,
    ACC_PUSH,
    ACC_ADD_TO_SET
} acc_op;

static const struct {
    const char *name;
    acc_op op;
} acc_table[] = {
    {"count", ACC_COUNT}, {"sum", ACC_SUM},   {"average", ACC_AVG},
    {"max", ACC_MAX},     {"min", ACC_MIN},   {"first", ACC_FIRST},
    {"last", ACC_LAST},   {"push", ACC_PUSH}, {"add_to_set", ACC_ADD_TO_SET},
};

typedef enum { ST_GROUP, ST_COUNT, ST_SORT, ST_LIMIT, ST_SKIP, ST_UNWIND, ST_PROJECT } stage_kind;

static const char *const stage_names[] = {"group", "count",  "sort",   "limit",
                                          "skip",  "unwind", "project"};

typedef struct {
    qpath path;        /* key (validated; path.text is looked up) */
    char *name;        /* output field */
    char *date_format; /* NULL = the value itself */
    acc_op op;         /* fields only */
    int has_key;       /* fields only: count needs no key */
} stage_item;

typedef struct {
    stage_kind kind;
    stage_item *keys; /* group keys */
    size_t nkeys;
    stage_item *items; /* group fields / project fields */
    size_t nitems;
    char *name;       /* count */
    qsort_spec sort;  /* sort */
    size_t n;         /* limit / skip */
    qpath path;       /* unwind */
    int exclude_keys; /* project */
} stage;

typedef struct {
    query *filter;
    qpage page;
    int distinct;
    qpath distinct_path;
    stage *stages;
    size_t nstages;
} stat_plan;

#define DATE_FORMAT_MAX 64

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

/* kind: 0 = group key, 1 = group field, 2 = project field. */
static rd_status item_compile(const json_t *obj, int kind, const char *where, stage_item *it,
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

static void plan_free(stat_plan *p)
{
    query_free(p->filter);
    qpath_free(&p->distinct_path);
    for (size_t i = 0; i < p->nstages; i++)
        stage_free(&p->stages[i]);
    free(p->stages);
    memset(p, 0, sizeof(*p));
}

static rd_status plan_compile(const json_t *sq, const query_schema *schema, stat_plan *p,
                              rd_error *err)
{
    static const char *const allowed[] = {"filter",    "filter_or", "keyword", "distinct",
                                          "aggregate", "page",      NULL};
    static const char *const filter_keys[] = {"filter", "filter_or", "keyword", NULL};
    rd_status rc = RD_OK;
    json_t *fobj = NULL;
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

    fobj = json_object();
    if (fobj == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; filter_keys[i] != NULL; i++) {
        json_t *v = json_object_get(sq, filter_keys[i]);
        if (v != NULL)
            json_object_set(fobj, filter_keys[i], v);
    }
    rc = query_compile(fobj, NULL, schema, &p->filter, err);
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
    json_decref(fobj);
    return rc;
}

/* ---- rows ---------------------------------------------------------------- */

/* A list of owned row references. */
typedef struct {
    json_t **v;
    size_t n;
    size_t cap;
} rowset;

/* Appends row (stolen, even on failure); -1 on allocation failure. */
static int rows_push(rowset *r, json_t *row)
{
    if (row == NULL)
        return -1;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        json_t **grown = realloc(r->v, cap * sizeof(*grown));
        if (grown == NULL) {
            json_decref(row);
            return -1;
        }
        r->v = grown;
        r->cap = cap;
    }
    r->v[r->n++] = row;
    return 0;
}

static void rows_clear(rowset *r)
{
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Replaces *r with next (taking it over). */
static void rows_replace(rowset *r, rowset *next)
{
    rows_clear(r);
    *r = *next;
    memset(next, 0, sizeof(*next));
}

/* ---- dates --------------------------------------------------------------- */

static int iso_weeks_in(int64_t y)
{
    int64_t p = (y + y / 4 - y / 100 + y / 400) % 7;
    int64_t q = ((y - 1) + (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400) % 7;
    return 52 + (p == 4 || q == 3);
}

/* Formats ms (UTC) with MongoDB $dateToString specifiers into buf. */
static void format_date(int64_t ms, const char *fmt, char *buf, size_t size)
{
    int64_t days = qfloor_div(ms, 86400000), y, iso_year;
    int64_t in_day = ms - days * 86400000;
    unsigned mo, d;
    int wday0, yday0, iso_wday, week;
    size_t o = 0;

    qcivil_from_days(days, &y, &mo, &d);
    wday0 = (int)(((days % 7) + 11) % 7); /* 0 = Sunday; 1970-01-01 was a Thursday */
    yday0 = (int)(days - qdays_from_civil(y, 1, 1));
    iso_wday = (wday0 + 6) % 7 + 1;
    week = (yday0 + 1 - iso_wday + 10) / 7;
    iso_year = y;
    if (week < 1) {
        iso_year = y - 1;
        week = iso_weeks_in(y - 1);
    } else if (week > iso_weeks_in(y)) {
        iso_year = y + 1;
        week = 1;
    }
    buf[0] = '\0';
    for (const char *p = fmt; *p != '\0' && o + 8 < size; p++) {
        int w = 0;
        if (*p != '%') {
            buf[o++] = *p;
            buf[o] = '\0';
            continue;
        }
        p++;
        switch (*p) {
        case 'Y':
            w = snprintf(buf + o, size - o, "%04lld", (long long)y);
            break;
        case 'm':
            w = snprintf(buf + o, size - o, "%02u", mo);
            break;
        case 'd':
            w = snprintf(buf + o, size - o, "%02u", d);
            break;
        case 'H':
            w = snprintf(buf + o, size - o, "%02d", (int)(in_day / 3600000));
            break;
        case 'M':
            w = snprintf(buf + o, size - o, "%02d", (int)(in_day / 60000 % 60));
            break;
        case 'S':
            w = snprintf(buf + o, size - o, "%02d", (int)(in_day / 1000 % 60));
            break;
        case 'L':
            w = snprintf(buf + o, size - o, "%03d", (int)(in_day % 1000));
            break;
        case 'j':
            w = snprintf(buf + o, size - o, "%03d", yday0 + 1);
            break;
        case 'w':
            w = snprintf(buf + o, size - o, "%d", wday0 + 1);
            break;
        case 'u':
            w = snprintf(buf + o, size - o, "%d", iso_wday);
            break;
        case 'U':
            w = snprintf(buf + o, size - o, "%02d", (yday0 + 7 - wday0) / 7);
            break;
        case 'V':
            w = snprintf(buf + o, size - o, "%02d", week);
            break;
        case 'G':
            w = snprintf(buf + o, size - o, "%04lld", (long long)iso_year);
            break;
        case 'z':
            w = snprintf(buf + o, size - o, "+0000");
            break;
        case 'Z':
            w = snprintf(buf + o, size - o, "+0");
            break;
        default: /* '%' (others are rejected at compile time) */
            w = snprintf(buf + o, size - o, "%%");
            break;
        }
        if (w > 0)
            o += (size_t)w;
    }
}

/* ---- group --------------------------------------------------------------- */

typedef struct {
    int64_t count; /* count, average */
    int64_t isum;
    double dsum;
    int real; /* sum: the result is a real */
    int seen; /* first */
    json_t *value;
    qhash set; /* add_to_set */
} acc;

typedef struct {
    json_t **keys; /* nkeys values; NULL = missing (owned) */
    acc *accs;
} group;

typedef struct {
    const group *groups;
    json_t *const *probe;
    size_t nkeys;
} group_eq_ctx;

static int group_eq(size_t idx, const void *vctx)
{
    const group_eq_ctx *c = vctx;
    const group *g = &c->groups[idx];
    for (size_t i = 0; i < c->nkeys; i++) {
        const json_t *a = g->keys[i], *b = c->probe[i];
        if ((a == NULL) != (b == NULL))
            return 0;
        if (a != NULL && !qjson_equal(a, b))
            return 0;
    }
    return 1;
}

typedef struct {
    const json_t *arr;
    const json_t *v;
} set_eq_ctx;

static int set_eq(size_t idx, const void *vctx)
{
    const set_eq_ctx *c = vctx;
    return qjson_equal(json_array_get(c->arr, idx), c->v);
}

static void group_free(group *g, const stage *s)
{
    for (size_t i = 0; i < s->nkeys && g->keys != NULL; i++)
        json_decref(g->keys[i]);
    for (size_t i = 0; i < s->nitems && g->accs != NULL; i++) {
        json_decref(g->accs[i].value);
        qhash_free(&g->accs[i].set);
    }
    free(g->keys);
    free(g->accs);
}

/* The group key value of row for key item k: a new reference, NULL = missing. */
static json_t *group_key_value(const json_t *row, const stage_item *k)
{
    json_t *owned, *v = query_lookup(row, k->path.text, &owned);
    int64_t ms;
    if (k->date_format == NULL)
        return owned != NULL ? owned : json_incref(v);
    if (json_is_string(v) && query_parse_datetime(json_string_value(v), &ms) == 0) {
        char buf[DATE_FORMAT_MAX * 6 + 16];
        format_date(ms, k->date_format, buf, sizeof(buf));
        json_decref(owned);
        return json_string(buf);
    }
    json_decref(owned);
    return json_null();
}

static int acc_init(acc *a, acc_op op)
{
    memset(a, 0, sizeof(*a));
    if (op == ACC_PUSH || op == ACC_ADD_TO_SET) {
        a->value = json_array();
        return a->value != NULL ? 0 : -1;
    }
    return 0;
}

/* Folds one row into a; -1 on allocation failure. */
static int acc_update(acc *a, const stage_item *f, const json_t *row)
{
    json_t *owned = NULL, *v = NULL;
    int rc = 0;
    if (f->has_key)
        v = query_lookup(row, f->path.text, &owned);
    switch (f->op) {
    case ACC_COUNT:
        a->count++;
        break;
    case ACC_SUM:
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            int64_t before = a->isum;
            if (__builtin_add_overflow(before, (int64_t)x, &a->isum)) {
                a->dsum += (double)before + (double)x;
                a->isum = 0;
                a->real = 1;
            }
        } else if (json_is_real(v)) {
            a->dsum += json_real_value(v);
            a->real = 1;
        }
        break;
    case ACC_AVG:
        if (json_is_number(v)) {
            a->dsum += json_number_value(v);
            a->count++;
        }
        break;
    case ACC_MAX:
    case ACC_MIN:
        if (v != NULL && !json_is_null(v)) {
            int r = a->value == NULL ? 0 : qjson_cmp(v, a->value);
            if (a->value == NULL || (f->op == ACC_MAX ? r > 0 : r < 0)) {
                json_decref(a->value);
                a->value = json_incref(v);
            }
        }
        break;
    case ACC_FIRST:
    case ACC_LAST:
        if (f->op == ACC_LAST || !a->seen) {
            json_decref(a->value);
            a->value = v != NULL ? json_incref(v) : json_null();
            a->seen = 1;
        }
        break;
    case ACC_PUSH:
        if (v != NULL)
            rc = json_array_append(a->value, v);
        break;
    case ACC_ADD_TO_SET:
        if (v != NULL) {
            uint64_t h = qjson_hash(v);
            set_eq_ctx ctx = {a->value, v};
            if (qhash_find(&a->set, h, set_eq, &ctx) == SIZE_MAX) {
                rc = json_array_append(a->value, v);
                if (rc == 0)
                    rc = qhash_insert(&a->set, h, json_array_size(a->value) - 1);
            }
        }
        break;
    }
    json_decref(owned);
    return rc;
}

static json_t *acc_result(const acc *a, acc_op op)
{
    switch (op) {
    case ACC_COUNT:
        return json_integer(a->count);
    case ACC_SUM:
        return a->real ? json_real(a->dsum + (double)a->isum) : json_integer(a->isum);
    case ACC_AVG:
        return a->count > 0 ? json_real(a->dsum / (double)a->count) : json_null();
    default:
        return a->value != NULL ? json_incref(a->value) : json_null();
    }
}

static uint64_t key_hash(json_t *const *keys, size_t n)
{
    uint64_t h = 0x67726f7570ULL;
    for (size_t i = 0; i < n; i++) {
        h = h * 0x100000001b3ULL + (keys[i] != NULL ? qjson_hash(keys[i]) : 0x6d697373ULL);
        h ^= h >> 29;
    }
    return h;
}

static rd_status run_group(const stage *s, rowset *rows, rd_error *err)
{
    rd_status rc = RD_OK;
    group *groups = NULL;
    size_t ngroups = 0, cap = 0;
    qhash index = {0};
    json_t **probe = NULL;
    rowset out = {0};

    probe = calloc(s->nkeys + 1, sizeof(*probe));
    if (probe == NULL)
        goto oom;
    for (size_t r = 0; r < rows->n; r++) {
        const json_t *row = rows->v[r];
        uint64_t h;
        size_t gi;
        for (size_t k = 0; k < s->nkeys; k++)
            probe[k] = group_key_value(row, &s->keys[k]);
        h = key_hash(probe, s->nkeys);
        group_eq_ctx ctx = {groups, probe, s->nkeys};
        gi = qhash_find(&index, h, group_eq, &ctx);
        if (gi == SIZE_MAX) {
            group *g;
            if (ngroups == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                group *grown = realloc(groups, ncap * sizeof(*grown));
                if (grown == NULL)
                    goto oom_probe;
                groups = grown;
                cap = ncap;
            }
            g = &groups[ngroups];
            g->keys = calloc(s->nkeys + 1, sizeof(*g->keys));
            g->accs = calloc(s->nitems + 1, sizeof(*g->accs));
            ngroups++;
            if (g->keys == NULL || g->accs == NULL)
                goto oom_probe;
            for (size_t f = 0; f < s->nitems; f++)
                if (acc_init(&g->accs[f], s->items[f].op) != 0)
                    goto oom_probe;
            if (qhash_insert(&index, h, ngroups - 1) != 0)
                goto oom_probe;
            memcpy(g->keys, probe, s->nkeys * sizeof(*probe));
            memset(probe, 0, s->nkeys * sizeof(*probe));
            gi = ngroups - 1;
        } else {
            for (size_t k = 0; k < s->nkeys; k++) {
                json_decref(probe[k]);
                probe[k] = NULL;
            }
        }
        for (size_t f = 0; f < s->nitems; f++)
            if (acc_update(&groups[gi].accs[f], &s->items[f], row) != 0)
                goto oom;
    }
    for (size_t gi = 0; gi < ngroups; gi++) {
        json_t *row = json_object();
        if (row == NULL)
            goto oom;
        for (size_t k = 0; k < s->nkeys; k++)
            if (groups[gi].keys[k] != NULL)
                json_object_set(row, s->keys[k].name, groups[gi].keys[k]);
        for (size_t f = 0; f < s->nitems; f++)
            json_object_set_new(row, s->items[f].name,
                                acc_result(&groups[gi].accs[f], s->items[f].op));
        if (rows_push(&out, row) != 0)
            goto oom;
    }
    rows_replace(rows, &out);
    goto done;
oom_probe:
    for (size_t k = 0; k < s->nkeys; k++) {
        json_decref(probe[k]);
        probe[k] = NULL;
    }
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    for (size_t gi = 0; gi < ngroups; gi++)
        group_free(&groups[gi], s);
    free(groups);
    free(probe);
    qhash_free(&index);
    rows_clear(&out);
    return rc;
}

/* ---- other stages -------------------------------------------------------- */

/* The value at p walking objects only (as $unwind does); NULL = missing. */
static const json_t *plain_get(const json_t *row, const qpath *p)
{
    const json_t *cur = row;
    for (size_t i = 0; i < p->nparts && cur != NULL; i++)
        cur = json_is_object(cur) ? json_object_get(cur, p->parts[i]) : NULL;
    return cur;
}

/* A copy of obj with p (from component i on) set to val; shares the rest. */
static json_t *copy_set(const json_t *obj, const qpath *p, size_t i, json_t *val)
{
    json_t *o = json_copy((json_t *)obj);
    if (o == NULL)
        return NULL;
    if (i + 1 == p->nparts) {
        if (json_object_set(o, p->parts[i], val) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    }
    json_t *child = copy_set(json_object_get(obj, p->parts[i]), p, i + 1, val);
    if (child == NULL || json_object_set_new(o, p->parts[i], child) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static rd_status run_unwind(const stage *s, rowset *rows, rd_error *err)
{
    rowset out = {0};
    for (size_t r = 0; r < rows->n; r++) {
        const json_t *v = plain_get(rows->v[r], &s->path);
        size_t i;
        json_t *e;
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_array(v)) {
            if (rows_push(&out, json_incref(rows->v[r])) != 0)
                goto oom;
            continue;
        }
        json_array_foreach(v, i, e)
        {
            if (rows_push(&out, copy_set(rows->v[r], &s->path, 0, e)) != 0)
                goto oom;
        }
    }
    rows_replace(rows, &out);
    return RD_OK;
oom:
    rows_clear(&out);
    return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
}

static rd_status run_project(const stage *s, const stage *last_group, rowset *rows, rd_error *err)
{
    for (size_t r = 0; r < rows->n; r++) {
        json_t *row = rows->v[r], *nrow = json_object();
        if (nrow == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        if (!s->exclude_keys && last_group != NULL) {
            for (size_t k = 0; k < last_group->nkeys; k++) {
                json_t *v = json_object_get(row, last_group->keys[k].name);
                if (v != NULL)
                    json_object_set(nrow, last_group->keys[k].name, v);
            }
        }
        for (size_t f = 0; f < s->nitems; f++) {
            json_t *owned, *v = query_lookup(row, s->items[f].path.text, &owned);
            if (v != NULL)
                json_object_set(nrow, s->items[f].name, v);
            json_decref(owned);
        }
        json_decref(row);
        rows->v[r] = nrow;
    }
    return RD_OK;
}

static rd_status run_sort(const stage *s, rowset *rows, rd_error *err)
{
    rd_status rc;
    size_t *order = malloc((rows->n ? rows->n : 1) * sizeof(*order));
    json_t **sorted = malloc((rows->n ? rows->n : 1) * sizeof(*sorted));
    if (order == NULL || sorted == NULL) {
        free(order);
        free(sorted);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    for (size_t i = 0; i < rows->n; i++)
        order[i] = i;
    rc = qsort_order(&s->sort, (const json_t *const *)rows->v, order, rows->n, err);
    if (rc == RD_OK) {
        for (size_t i = 0; i < rows->n; i++)
            sorted[i] = rows->v[order[i]];
        memcpy(rows->v, sorted, rows->n * sizeof(*sorted));
    }
    free(order);
    free(sorted);
    return rc;
}

static rd_status run_stage(const stage *s, const stage **last_group, rowset *rows, rd_error *err)
{
    switch (s->kind) {
    case ST_GROUP:
        *last_group = s;
        return run_group(s, rows, err);
    case ST_COUNT: {
        size_t n = rows->n;
        rowset out = {0};
        *last_group = NULL;
        if (n > 0 && rows_push(&out, json_pack("{s:I}", s->name, (json_int_t)n)) != 0)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        rows_replace(rows, &out);
        return RD_OK;
    }
    case ST_SORT:
        return run_sort(s, rows, err);
    case ST_LIMIT:
        while (rows->n > s->n)
            json_decref(rows->v[--rows->n]);
        return RD_OK;
    case ST_SKIP: {
        size_t skip = s->n < rows->n ? s->n : rows->n;
        for (size_t i = 0; i < skip; i++)
            json_decref(rows->v[i]);
        memmove(rows->v, rows->v + skip, (rows->n - skip) * sizeof(*rows->v));
        rows->n -= skip;
        return RD_OK;
    }
    case ST_UNWIND:
        return run_unwind(s, rows, err);
    case ST_PROJECT:
        return run_project(s, *last_group, rows, err);
    }
    return RD_OK;
}

/* ---- distinct ------------------------------------------------------------ */

typedef struct {
    const json_t **v;
    size_t n;
    size_t cap;
    int failed;
} value_list;

static int distinct_visit(const json_t *v, qv_kind kind, void *vctx)
{
    value_list *l = vctx;
    if (kind == QV_MISSING || (kind == QV_LEAF && json_is_array(v)))
        return 0; /* arrays are unwound: their elements follow */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        const json_t **grown = realloc(l->v, cap * sizeof(*grown));
        if (grown == NULL) {
            l->failed = 1;
            return 1;
        }
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

static int value_idx_cmp(size_t a, size_t b, const void *vctx)
{
    const value_list *l = vctx;
    return qjson_cmp(l->v[a], l->v[b]);
}

/* Distinct values of p over the matching docs, sorted, into rows. */
static rd_status run_distinct(const stat_plan *p, const json_t *docs, rowset *rows, rd_error *err)
{
    rd_status rc = RD_OK;
    value_list l = {0};
    size_t *order = NULL, *tmp = NULL, i;
    const json_t *d;

    json_array_foreach(docs, i, d)
    {
        if (query_match(p->filter, d))
            qpath_visit(&p->distinct_path, d, distinct_visit, &l);
        if (l.failed)
            goto oom;
    }
    order = malloc((l.n ? l.n : 1) * sizeof(*order));
    tmp = malloc((l.n ? l.n : 1) * sizeof(*tmp));
    if (order == NULL || tmp == NULL)
        goto oom;
    for (i = 0; i < l.n; i++)
        order[i] = i;
    qmerge_sort(order, tmp, l.n, value_idx_cmp, &l);
    for (i = 0; i < l.n; i++) {
        const json_t *v = l.v[order[i]];
        if (i > 0 && qjson_equal(v, l.v[order[i - 1]]))
            continue;
        if (rows_push(rows, json_incref((json_t *)v)) != 0)
            goto oom;
    }
    goto done;
oom:
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    free(l.v);
    free(order);
    free(tmp);
    return rc;
}

/* ---- entry point --------------------------------------------------------- */

rd_status query_stat(const json_t *stat_query, const query_schema *schema, const json_t *docs,
                     json_t **out, rd_error *err)
{
    rd_status rc;
    stat_plan plan = {0};
    rowset rows = {0};
    json_t *results = NULL;
    const stage *last_group = NULL;
    size_t from, to, i;
    const json_t *d;

    *out = NULL;
    rc = plan_compile(stat_query, schema, &plan, err);
    if (rc != RD_OK)
        goto done;
    if (!json_is_array(docs)) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Internal error.");
        goto done;
    }
    if (plan.distinct) {
        rc = run_distinct(&plan, docs, &rows, err);
    } else {
        json_array_foreach(docs, i, d)
        {
            if (query_match(plan.filter, d) && rows_push(&rows, json_incref((json_t *)d)) != 0) {
                rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
                break;
            }
        }
        for (i = 0; i < plan.nstages && rc == RD_OK; i++)
            rc = run_stage(&plan.stages[i], &last_group, &rows, err);
    }
    if (rc != RD_OK)
        goto done;
    /* Results never share structure with the (borrowed) input documents. */
    results = json_array();
    if (results == NULL)
        goto oom;
    qpage_slice(&plan.page, rows.n, &from, &to);
    for (i = from; i < to; i++)
        if (json_array_append_new(results, json_deep_copy(rows.v[i])) != 0)
            goto oom;
    *out = json_pack("{s:O}", "results", results);
    if (*out == NULL)
        goto oom;
    if (plan.page.given &&
        json_object_set_new(*out, "total_count", json_integer((json_int_t)rows.n)))
        goto oom;
    goto done;
oom:
    json_decref(*out);
    *out = NULL;
    rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    json_decref(results);
    rows_clear(&rows);
    plan_free(&plan);
    return rc;
}
