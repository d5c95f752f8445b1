/*
 * query.c - the list query engine (SPEC section 8), entry points: compiles
 * the request's `query` object (filter, filter_or, keyword, sort, page,
 * only, minimal, count_only) and the eq_filters into a struct query, frees
 * it, and runs it over an array of JSON documents (query_run: match, sort,
 * page, project).  Also the resource schemas and the message helpers of
 * query-internal.h (qfmt, qdump).
 *
 * The engine is split by concern; shared private declarations are in
 * query-internal.h, and stat.c (statistics queries) uses the same pieces:
 *   query.c        - this file: compile / free / run, schemas, messages
 *   query_match.c  - the operators: compiling and testing one condition,
 *                    query_match (filter, filter_or, keyword)
 *   query_index.c  - index hints (query_index_values, query_index_only)
 *   query_value.c  - dotted paths and their traversal, query_lookup, the
 *                    order / equality / hash over JSON values, hash index
 *   query_time.c   - calendar helpers, datetime and timediff parsing
 *   query_output.c - sort, page and the only / minimal projection
 *
 * A compiled query is immutable; query_match / query_run may run on it from
 * several threads at once (glibc's regexec is thread-safe).
 */
#include "query-internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- schemas ------------------------------------------------------------ */

static const char *const plugin_keyword_fields[] = {"plugin_id", "name", "provider", "labels",
                                                    NULL};
static const char *const plugin_minimal_fields[] = {
    "plugin_id", "name", "state", "image", "resource_type", "registry_type", "provider", NULL};
static const char *const repository_keyword_fields[] = {"repository_id", "name", NULL};
static const char *const repository_minimal_fields[] = {"repository_id", "name", "repository_type",
                                                        NULL};

const query_schema query_schema_plugin = {plugin_keyword_fields, plugin_minimal_fields};
const query_schema query_schema_repository = {repository_keyword_fields, repository_minimal_fields};

/* ---- messages ----------------------------------------------------------- */

void qfmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

void qdump(const json_t *v, char *buf, size_t size)
{
    char *s = NULL;
    if (size == 0)
        return;
    if (v != NULL)
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        snprintf(buf, size, "%s", v == NULL ? "null" : "?");
        return;
    }
    if (strlen(s) >= size && size > 4)
        snprintf(buf, size, "%.*s...", (int)(size - 4), s);
    else
        snprintf(buf, size, "%s", s);
    free(s);
}

/* ---- compile ------------------------------------------------------------- */

static const char *const query_keys[] = {"filter",  "filter_or",  "sort",    "page", "only",
                                         "minimal", "count_only", "keyword", NULL};

static rd_status conds_compile(const json_t *list, const char *where, int64_t now_ms, qcond *conds,
                               size_t *n, rd_error *err)
{
    char sub[64];
    for (size_t i = 0; i < json_array_size(list); i++) {
        rd_status rc;
        qfmt(sub, sizeof(sub), "%s[%zu]", where, i);
        rc = qi_cond_compile(json_array_get(list, i), sub, now_ms, &conds[*n], err);
        if (rc != RD_OK)
            return rc;
        (*n)++;
    }
    return RD_OK;
}

static rd_status list_param(const json_t *qobj, const char *name, const json_t **out, rd_error *err)
{
    const json_t *v = qobj != NULL ? json_object_get(qobj, name) : NULL;
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return RD_OK;
    if (!json_is_array(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query.%s, type = list)", name);
    *out = v;
    return RD_OK;
}

static rd_status bool_param(const json_t *qobj, const char *name, int *out, rd_error *err)
{
    const json_t *v = qobj != NULL ? json_object_get(qobj, name) : NULL;
    *out = 0;
    if (v == NULL || json_is_null(v))
        return RD_OK;
    if (!json_is_boolean(v))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query.%s, type = bool)", name);
    *out = json_is_true(v);
    return RD_OK;
}

static rd_status keyword_compile(query *q, const json_t *kw, const query_schema *schema,
                                 rd_error *err)
{
    const char *s, *p;
    size_t n = 0;
    if (kw == NULL || json_is_null(kw))
        return RD_OK;
    if (!json_is_string(kw))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query.keyword, type = string)");
    s = json_string_value(kw);
    for (p = s; *p != '\0';) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p != '\0' && !isspace((unsigned char)*p))
            p++;
    }
    if (n == 0)
        return RD_OK;
    q->words = calloc(n, sizeof(*q->words));
    if (q->words == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (p = s; *p != '\0';) {
        const char *start;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && !isspace((unsigned char)*p))
            p++;
        q->words[q->nwords] = strndup(start, (size_t)(p - start));
        if (q->words[q->nwords] == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        q->nwords++;
    }
    for (n = 0; schema->keyword_fields[n] != NULL; n++)
        ;
    q->kw_paths = calloc(n ? n : 1, sizeof(*q->kw_paths));
    if (q->kw_paths == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; i < n; i++) {
        rd_status rc = qpath_init(&q->kw_paths[i], schema->keyword_fields[i], "keyword", err);
        if (rc != RD_OK)
            return rc;
        q->nkw++;
    }
    return RD_OK;
}

rd_status query_compile(const json_t *query_obj, const json_t *eq_filters,
                        const query_schema *schema, query **out, rd_error *err)
{
    rd_status rc = RD_OK;
    query *q = NULL;
    const json_t *filter = NULL, *filter_or = NULL, *only = NULL, *v;
    const char *k;
    int minimal = 0;
    size_t neq = 0;
    int64_t now_ms = util_now_ms();

    *out = NULL;
    if (schema == NULL)
        schema = &query_schema_plugin;
    if (json_is_null(query_obj))
        query_obj = NULL;
    if (json_is_null(eq_filters))
        eq_filters = NULL;
    if (query_obj != NULL && !json_is_object(query_obj))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = query, type = object)");
    if (eq_filters != NULL && !json_is_object(eq_filters))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = eq_filters, type = object)");
    if (query_obj != NULL) {
        json_object_foreach((json_t *)query_obj, k, v)
        {
            size_t i;
            for (i = 0; query_keys[i] != NULL; i++)
                if (strcmp(k, query_keys[i]) == 0)
                    break;
            if (query_keys[i] == NULL)
                return rd_fail(err, RD_ERR_DB_QUERY, "Unknown query key. (key = query.%s)", k);
        }
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");

    if ((rc = list_param(query_obj, "filter", &filter, err)) != RD_OK ||
        (rc = list_param(query_obj, "filter_or", &filter_or, err)) != RD_OK ||
        (rc = list_param(query_obj, "only", &only, err)) != RD_OK ||
        (rc = bool_param(query_obj, "minimal", &minimal, err)) != RD_OK ||
        (rc = bool_param(query_obj, "count_only", &q->count_only, err)) != RD_OK)
        goto done;

    if (eq_filters != NULL) {
        json_object_foreach((json_t *)eq_filters, k, v)
        {
            neq += !json_is_null(v);
        }
    }
    q->and_conds = calloc(json_array_size(filter) + neq + 1, sizeof(*q->and_conds));
    q->or_conds = calloc(json_array_size(filter_or) + 1, sizeof(*q->or_conds));
    if (q->and_conds == NULL || q->or_conds == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    rc = conds_compile(filter, "query.filter", now_ms, q->and_conds, &q->nand, err);
    if (rc != RD_OK)
        goto done;
    rc = conds_compile(filter_or, "query.filter_or", now_ms, q->or_conds, &q->nor, err);
    if (rc != RD_OK)
        goto done;
    if (eq_filters != NULL) {
        json_object_foreach((json_t *)eq_filters, k, v)
        {
            qcond *c = &q->and_conds[q->nand];
            if (json_is_null(v))
                continue;
            rc = qpath_init(&c->path, k, k, err);
            if (rc != RD_OK)
                goto done;
            q->nand++;
            c->kind = K_EQ;
            c->value = json_deep_copy(v);
            c->vals = calloc(1, sizeof(*c->vals));
            if (c->value == NULL || c->vals == NULL) {
                rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
                goto done;
            }
            c->vals[0] = c->value;
            c->nvals = 1;
        }
    }
    rc = keyword_compile(q, query_obj != NULL ? json_object_get(query_obj, "keyword") : NULL,
                         schema, err);
    if (rc != RD_OK)
        goto done;
    rc = qsort_spec_compile(query_obj != NULL ? json_object_get(query_obj, "sort") : NULL,
                            "query.sort", &q->sort, err);
    if (rc != RD_OK)
        goto done;
    rc = qpage_compile(query_obj != NULL ? json_object_get(query_obj, "page") : NULL, "query.page",
                       &q->page, err);
    if (rc != RD_OK)
        goto done;
    rc = qi_proj_compile(q, only, minimal, schema, err);
done:
    if (rc != RD_OK)
        query_free(q);
    else
        *out = q;
    return rc;
}

void query_free(query *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->nand; i++)
        qi_cond_free(&q->and_conds[i]);
    for (size_t i = 0; i < q->nor; i++)
        qi_cond_free(&q->or_conds[i]);
    free(q->and_conds);
    free(q->or_conds);
    for (size_t i = 0; i < q->nwords; i++)
        free(q->words[i]);
    free(q->words);
    for (size_t i = 0; i < q->nkw; i++)
        qpath_free(&q->kw_paths[i]);
    free(q->kw_paths);
    qsort_spec_free(&q->sort);
    qi_proj_free(q->proj);
    free(q);
}

/* ---- run ---------------------------------------------------------------- */

rd_status query_run(const query *q, const json_t *docs, json_t **out, rd_error *err)
{
    rd_status rc = RD_OK;
    const json_t **matched = NULL;
    size_t *order = NULL;
    json_t *results = NULL;
    size_t n, m = 0, from, to;

    *out = NULL;
    if (!json_is_array(docs))
        return rd_fail(err, RD_ERR_INTERNAL, "Internal error.");
    n = json_array_size(docs);
    matched = malloc((n ? n : 1) * sizeof(*matched));
    results = json_array();
    if (matched == NULL || results == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(docs, i);
        if (query_match(q, d))
            matched[m++] = d;
    }
    if (!q->count_only && m > 0) {
        order = malloc(m * sizeof(*order));
        if (order == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
            goto done;
        }
        for (size_t i = 0; i < m; i++)
            order[i] = i;
        rc = qsort_order(&q->sort, matched, order, m, err);
        if (rc != RD_OK)
            goto done;
        qpage_slice(&q->page, m, &from, &to);
        for (size_t i = from; i < to; i++) {
            const json_t *d = matched[order[i]];
            json_t *copy = q->proj != NULL && json_is_object(d) ? qi_proj_object(d, q->proj)
                                                                : json_deep_copy(d);
            if (copy == NULL || json_array_append_new(results, copy) != 0) {
                rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
                goto done;
            }
        }
    }
    *out = json_pack("{s:O, s:I}", "results", results, "total_count", (json_int_t)m);
    if (*out == NULL)
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
done:
    json_decref(results);
    free(order);
    free(matched);
    return rc;
}

int query_is_count_only(const query *q)
{
    return q != NULL && q->count_only;
}

int query_projects(const query *q)
{
    return q != NULL && q->proj != NULL;
}
