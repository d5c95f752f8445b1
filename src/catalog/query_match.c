/*
 * query_match.c - the filter conditions of list queries: the operator
 * table, compiling one {k, v, o} condition (operand checks, the regex
 * guard, hashed `in` lists), testing it against a document, and
 * query_match (filter, filter_or and keyword words).
 *
 * Matching rules (MongoDB find() semantics unless said otherwise; the same
 * text is in docs/query.md):
 *  - A dotted key walks objects by field name.  An array met on the way is
 *    entered element by element (object elements continue the walk; an
 *    all-digit component also indexes the array).  At the end of the path a
 *    value that is an array is tested itself and element by element: a
 *    condition holds when any reached value satisfies it.
 *  - A branch of the walk that does not resolve is "missing".  Missing
 *    values never satisfy eq/lt/lte/gt/gte/contain/regex/datetime/timediff,
 *    except that `eq null` / `in [.., null]` / `lte null` / `gte null`
 *    match missing as well as null (MongoDB's {k: null}).
 *  - `not`, `not_in`, `not_contain`, `not_contain_in` are the negation of
 *    `eq`, `in`, `contain`, `contain_in`: they match missing fields, and an
 *    array matches `not x` only if neither it nor any element equals x.
 *  - eq / in equality: numbers compare numerically (1 == 1.0), strings
 *    bytewise (case-sensitive), booleans and null by value, arrays element
 *    by element in order, objects by their set of fields (field order does
 *    not matter, unlike MongoDB).  Values of different kinds are unequal
 *    ("1" != 1, false != 0, null != false).
 *  - lt / lte / gt / gte compare within one kind only (MongoDB type
 *    bracketing): number with number, string with string (bytewise),
 *    boolean with boolean (false < true); a value of another kind never
 *    matches.  The operand must be a number, string, boolean or null
 *    (object / array -> ERROR_OPERATOR_VALUE_TYPE); `lt null` / `gt null`
 *    match nothing, `lte null` / `gte null` behave as `eq null`.
 *  - contain / contain_in: ASCII case-insensitive substring of a string
 *    value (non-strings never contain anything).  regex / regex_in: POSIX
 *    extended, case-insensitive, unanchored search in string values;
 *    back-references and patterns whose expansion is too large are refused
 *    (ERROR_DB_QUERY) so that no query can stall a worker.
 *  - datetime_* / timediff_*: the document value must be a string that
 *    parses as ISO-8601 (query_parse_datetime); it is compared in ms with
 *    the operand.  A value that does not parse never matches.  A malformed
 *    operand is ERROR_DB_QUERY, a non-string operand
 *    ERROR_OPERATOR_VALUE_TYPE.  timediff operands are evaluated once, when
 *    the query is compiled.
 *  - exists: true when the path reaches any value (null included).
 */
#include "query-internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- operators ---------------------------------------------------------- */

typedef enum {
    A_ANY,         /* any JSON value */
    A_SCALAR,      /* number, string, boolean or null */
    A_BOOL,        /* exists */
    A_STRING,      /* contain */
    A_LIST,        /* in */
    A_STRING_LIST, /* contain_in */
    A_REGEX,
    A_REGEX_LIST,
    A_DATETIME,
    A_TIMEDIFF
} qarg;

static const struct {
    const char *name;
    qkind kind;
    qcmp cmp;
    int negate;
    qarg arg;
} op_table[] = {
    {"eq", K_EQ, C_NONE, 0, A_ANY},
    {"not", K_EQ, C_NONE, 1, A_ANY},
    {"lt", K_CMP, C_LT, 0, A_SCALAR},
    {"lte", K_CMP, C_LTE, 0, A_SCALAR},
    {"gt", K_CMP, C_GT, 0, A_SCALAR},
    {"gte", K_CMP, C_GTE, 0, A_SCALAR},
    {"exists", K_EXISTS, C_NONE, 0, A_BOOL},
    {"contain", K_CONTAIN, C_NONE, 0, A_STRING},
    {"not_contain", K_CONTAIN, C_NONE, 1, A_STRING},
    {"in", K_EQ, C_NONE, 0, A_LIST},
    {"not_in", K_EQ, C_NONE, 1, A_LIST},
    {"contain_in", K_CONTAIN, C_NONE, 0, A_STRING_LIST},
    {"not_contain_in", K_CONTAIN, C_NONE, 1, A_STRING_LIST},
    {"regex", K_REGEX, C_NONE, 0, A_REGEX},
    {"regex_in", K_REGEX, C_NONE, 0, A_REGEX_LIST},
    {"datetime_gt", K_TIME, C_GT, 0, A_DATETIME},
    {"datetime_gte", K_TIME, C_GTE, 0, A_DATETIME},
    {"datetime_lt", K_TIME, C_LT, 0, A_DATETIME},
    {"datetime_lte", K_TIME, C_LTE, 0, A_DATETIME},
    {"timediff_gt", K_TIME, C_GT, 0, A_TIMEDIFF},
    {"timediff_gte", K_TIME, C_GTE, 0, A_TIMEDIFF},
    {"timediff_lt", K_TIME, C_LT, 0, A_TIMEDIFF},
    {"timediff_lte", K_TIME, C_LTE, 0, A_TIMEDIFF},
};

/* ---- conditions ---------------------------------------------------------- */

void qi_cond_free(qcond *c)
{
    qhash_free(&c->vals_index);
    for (size_t i = 0; i < c->nre; i++)
        regfree(&c->re[i]);
    free(c->re);
    free(c->needles);
    free(c->vals);
    json_decref(c->value);
    qpath_free(&c->path);
    memset(c, 0, sizeof(*c));
}

/* Upper bound on the size of the automaton glibc builds for a pattern: every
 * atom (and group, even an empty one) costs at least 1 and a bounded
 * repetition {m,n} multiplies the atom (or group) before it by max(n, 1).  glibc expands bounded
 * repetitions, so nested ones such as
 * ((a{1,100}){1,100}){1,100} would take seconds and hundreds of MB; its
 * epsilon closures grow quadratically, so even ((a*)*){3000} takes over
 * 20 s: at 1000 the worst seen is under 0.1 s and 10 MB. */
#define REGEX_MAX_COST  1000.0
#define REGEX_MAX_DEPTH 32
#define EQ_HASH_MIN     8 /* `in` lists longer than this are hashed */

/* 0 = acceptable, -1 = too complex, -2 = uses a back-reference.  *budget
 * is what the condition may still spend (regex_in shares one budget).
 * '+' copies its atom in glibc (a+ is aa*), so it doubles like {1,2}.
 * Stacked duplication symbols (undefined in POSIX ERE) are refused, but for
 * one '?' after one '*' or '+' (".*?"): glibc takes seconds on runs of
 * them such as "e*****...*+" or "e*****...2***". */
static int regex_check(const char *p, double *budget)
{
    double seq[REGEX_MAX_DEPTH + 1], last[REGEX_MAX_DEPTH + 1];
    int depth = 0, prev_dup = 0;
    seq[0] = last[0] = 0;
    for (; *p != '\0'; p++) {
        int dup = 0;
        switch (*p) {
        case '\\':
            if (p[1] >= '1' && p[1] <= '9')
                return -2; /* back-references can take exponential time */
            if (p[1] != '\0')
                p++;
            seq[depth] += 1;
            last[depth] = 1;
            break;
        case '[':
            /* A bracket expression is one atom: skip to its closing ']'. */
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p != '\0' && *p != ']') {
                if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
                    char close = p[1];
                    p += 2;
                    while (*p != '\0' && !(*p == close && p[1] == ']'))
                        p++;
                    if (*p != '\0')
                        p++;
                }
                if (*p != '\0')
                    p++;
            }
            if (*p == '\0')
                return 0; /* unterminated: regcomp reports it */
            seq[depth] += 1;
            last[depth] = 1;
            break;
        case '(':
            if (depth == REGEX_MAX_DEPTH)
                return -1;
            depth++;
            seq[depth] = last[depth] = 0;
            break;
        case ')':
            if (depth > 0) {
                /* a group is a node even when empty or repeated {0} */
                double inner = seq[depth] < 1 ? 1 : seq[depth];
                depth--;
                seq[depth] += inner;
                last[depth] = inner;
            }
            break;
        case '|':
            last[depth] = 0; /* alternatives add up: an upper bound */
            break;
        case '*':
        case '?':
            if (prev_dup > 1 || (prev_dup == 1 && *p != '?'))
                return -1;
            seq[depth] += 1;
            dup = prev_dup + 1;
            break;
        case '+':
            if (prev_dup)
                return -1;
            seq[depth] += last[depth] + 1;
            last[depth] *= 2;
            dup = 1;
            break;
        case '{': {
            char *end;
            unsigned long m = strtoul(p + 1, &end, 10), n = m;
            if (end == p + 1)
                break; /* a literal '{' (or a syntax error for regcomp) */
            if (*end == ',') {
                n = isdigit((unsigned char)end[1]) ? strtoul(end + 1, &end, 10) : m + 1;
                if (*end == ',')
                    end++;
            }
            if (*end != '}')
                break;
            if (n < m)
                n = m;
            if (n > 100000 || prev_dup)
                return -1;
            dup = 1;
            if (n == 0)
                n = 1; /* x{0} still leaves its node: it does not make x free */
            seq[depth] += last[depth] * ((double)n - 1);
            last[depth] *= (double)n;
            p = end;
            break;
        }
        default:
            seq[depth] += 1;
            last[depth] = 1;
            break;
        }
        if (seq[depth] > *budget)
            return -1;
        prev_dup = dup;
    }
    if (seq[0] > *budget)
        return -1;
    *budget -= seq[0];
    return 0;
}

static rd_status cond_value_compile(qcond *c, qarg arg, const char *op, const char *dump,
                                    int64_t now_ms, rd_error *err)
{
    const json_t *v = c->value;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    switch (arg) {
    case A_BOOL:
        if (!json_is_boolean(v))
            return rd_fail(err, RD_ERR_OPERATOR_BOOLEAN_TYPE,
                           "Operator value must be a boolean. (operator = %s, condition = %s)", op,
                           dump);
        c->exists = json_is_true(v);
        return RD_OK;
    case A_SCALAR:
        if (json_is_object(v) || json_is_array(v))
            return rd_fail(err, RD_ERR_OPERATOR_VALUE_TYPE,
                           "Operator value must be a number, string, boolean or null. "
                           "(operator = %s, condition = %s)",
                           op, dump);
        /* fall through */
    case A_ANY:
        n = 1;
        break;
    case A_STRING:
    case A_REGEX:
    case A_DATETIME:
    case A_TIMEDIFF:
        if (!json_is_string(v))
            return rd_fail(err, RD_ERR_OPERATOR_VALUE_TYPE,
                           "Operator value must be a string. (operator = %s, condition = %s)", op,
                           dump);
        n = 1;
        break;
    case A_LIST:
    case A_STRING_LIST:
    case A_REGEX_LIST:
        if (!json_is_array(v))
            return rd_fail(err, RD_ERR_OPERATOR_LIST_VALUE_TYPE,
                           "Operator value must be a list. (operator = %s, condition = %s)", op,
                           dump);
        if (arg != A_LIST) {
            size_t i;
            const json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e))
                    return rd_fail(err, RD_ERR_OPERATOR_VALUE_TYPE,
                                   "Operator values must be strings. "
                                   "(operator = %s, condition = %s)",
                                   op, dump);
            }
        }
        break;
    }
    if (arg == A_DATETIME || arg == A_TIMEDIFF) {
        int bad = arg == A_DATETIME ? query_parse_datetime(json_string_value(v), &c->time)
                                    : query_parse_timediff(json_string_value(v), now_ms, &c->time);
        if (bad)
            return rd_fail(err, RD_ERR_DB_QUERY, "Invalid %s value. (operator = %s, value = %s)",
                           arg == A_DATETIME ? "datetime" : "timediff", op, json_string_value(v));
        return RD_OK;
    }
    /* The operands: the value itself, or the elements of a list value. */
    const json_t **items = calloc(n ? n : 1, sizeof(*items));
    rd_status rc = RD_OK;
    if (items == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; i < n; i++)
        items[i] = (arg == A_LIST || arg == A_STRING_LIST || arg == A_REGEX_LIST)
                       ? json_array_get(v, i)
                       : v;
    if (c->kind == K_EQ || c->kind == K_CMP) {
        c->vals = items; /* kept */
        items = NULL;
        c->nvals = n;
        for (size_t i = 0; i < n; i++)
            c->has_null |= json_is_null(c->vals[i]);
        /* Long `in` lists: look values up by hash instead of scanning. */
        for (size_t i = 0; n > EQ_HASH_MIN && i < n; i++) {
            if (qhash_insert(&c->vals_index, qjson_hash(c->vals[i]), i) != 0) {
                rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
                goto done;
            }
        }
    } else if (c->kind == K_CONTAIN) {
        c->needles = calloc(n ? n : 1, sizeof(*c->needles));
        if (c->needles == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            c->needles[i] = json_string_value(items[i]);
        c->nneedles = n;
    } else { /* K_REGEX: compiled once, here */
        double budget = REGEX_MAX_COST;
        c->re = calloc(n ? n : 1, sizeof(*c->re));
        if (c->re == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const char *pattern = json_string_value(items[i]);
            int check = regex_check(pattern, &budget);
            if (check != 0) {
                rc = rd_fail(err, RD_ERR_DB_QUERY, "%s (key = %s, regex = %s)",
                             check == -2 ? "Back-references are not supported in a regular "
                                           "expression."
                                         : "Regular expression is too complex.",
                             c->path.text, pattern);
                goto done;
            }
            if (regcomp(&c->re[i], pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
                rc = rd_fail(err, RD_ERR_DB_QUERY,
                             "Invalid regular expression. (key = %s, regex = %s)", c->path.text,
                             pattern);
                goto done;
            }
            c->nre++;
        }
    }
done:
    free(items);
    return rc;
}

static const char *cond_get(const json_t *c, const char *short_name, const char *long_name,
                            const json_t **out)
{
    const json_t *v = json_object_get(c, short_name);
    *out = v != NULL ? v : json_object_get(c, long_name);
    return *out != NULL ? json_string_value(*out) : NULL;
}

/* Compiles one {k, v, o} condition; on failure c is left empty. */
rd_status qi_cond_compile(const json_t *cond, const char *where, int64_t now_ms, qcond *c,
                          rd_error *err)
{
    rd_status rc = RD_OK;
    char dump[200];
    const char *k, *key, *op;
    const json_t *v, *key_v, *value_v, *op_v;
    size_t i;
    memset(c, 0, sizeof(*c));
    qdump(cond, dump, sizeof(dump));
    if (!json_is_object(cond))
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "Filter condition should be an object. (key = %s, condition = %s)", where,
                       dump);
    json_object_foreach((json_t *)cond, k, v)
    {
        static const char *const known[] = {"k", "key", "v", "value", "o", "operator"};
        int ok = 0;
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok)
            return rd_fail(err, RD_ERR_DB_QUERY,
                           "Unknown filter condition key. (key = %s, condition = %s)", k, dump);
    }
    key = cond_get(cond, "k", "key", &key_v);
    op = cond_get(cond, "o", "operator", &op_v);
    value_v = json_object_get(cond, "v");
    if (value_v == NULL)
        value_v = json_object_get(cond, "value");
    if (key == NULL || op == NULL || key[0] == '\0')
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "Filter condition requires key and operator. (condition = %s)", dump);
    for (i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++)
        if (strcmp(op, op_table[i].name) == 0)
            break;
    if (i == sizeof(op_table) / sizeof(op_table[0]))
        return rd_fail(err, RD_ERR_DB_QUERY, "Invalid operator. (operator = %s, condition = %s)",
                       op, dump);
    c->kind = op_table[i].kind;
    c->cmp = op_table[i].cmp;
    c->negate = op_table[i].negate;
    rc = qpath_init(&c->path, key, where, err);
    if (rc != RD_OK)
        goto done;
    c->value = value_v != NULL ? json_deep_copy(value_v) : json_null();
    if (c->value == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    rc = cond_value_compile(c, op_table[i].arg, op, dump, now_ms, err);
done:
    if (rc != RD_OK)
        qi_cond_free(c);
    return rc;
}

static int cmp_holds(qcmp cmp, int r)
{
    switch (cmp) {
    case C_LT:
        return r < 0;
    case C_LTE:
        return r <= 0;
    case C_GT:
        return r > 0;
    case C_GTE:
        return r >= 0;
    default:
        return r == 0;
    }
}

typedef struct {
    const json_t *const *vals;
    const json_t *v;
} eq_ctx;

static int eq_val(size_t idx, const void *vctx)
{
    const eq_ctx *c = vctx;
    return qjson_equal(c->vals[idx], c->v);
}

/* Does one reached value (NULL = missing) satisfy the positive form? */
static int cond_visit(const json_t *v, qv_kind kind, void *vctx)
{
    const qcond *c = vctx;
    (void)kind;
    switch (c->kind) {
    case K_EXISTS:
        return v != NULL;
    case K_EQ:
        if (v == NULL)
            return c->has_null;
        if (c->vals_index.cap > 0) {
            eq_ctx ctx = {c->vals, v};
            return qhash_find(&c->vals_index, qjson_hash(v), eq_val, &ctx) != SIZE_MAX;
        }
        for (size_t i = 0; i < c->nvals; i++)
            if (qjson_equal(v, c->vals[i]))
                return 1;
        return 0;
    case K_CMP: {
        const json_t *x = c->vals[0];
        if (json_is_null(x))
            return (c->cmp == C_LTE || c->cmp == C_GTE) && (v == NULL || json_is_null(v));
        if (v == NULL)
            return 0;
        if (!((json_is_number(x) && json_is_number(v)) ||
              (json_is_string(x) && json_is_string(v)) ||
              (json_is_boolean(x) && json_is_boolean(v))))
            return 0;
        return cmp_holds(c->cmp, qjson_cmp(v, x));
    }
    case K_CONTAIN:
        if (!json_is_string(v))
            return 0;
        for (size_t i = 0; i < c->nneedles; i++)
            if (strcasestr(json_string_value(v), c->needles[i]) != NULL)
                return 1;
        return 0;
    case K_REGEX:
        if (!json_is_string(v))
            return 0;
        for (size_t i = 0; i < c->nre; i++)
            if (regexec(&c->re[i], json_string_value(v), 0, NULL, 0) == 0)
                return 1;
        return 0;
    case K_TIME: {
        int64_t t;
        if (!json_is_string(v) || query_parse_datetime(json_string_value(v), &t) != 0)
            return 0;
        return cmp_holds(c->cmp, (t > c->time) - (t < c->time));
    }
    }
    return 0;
}

static int cond_match(const qcond *c, const json_t *doc)
{
    int any = qpath_visit(&c->path, doc, cond_visit, (void *)c);
    if (c->kind == K_EXISTS)
        return c->exists ? any : !any;
    return c->negate ? !any : any;
}
/* ---- match --------------------------------------------------------------- */

static int keyword_visit(const json_t *v, qv_kind kind, void *ctx)
{
    (void)kind;
    return json_is_string(v) && strcasestr(json_string_value(v), ctx) != NULL;
}

int query_match(const query *q, const json_t *doc)
{
    for (size_t i = 0; i < q->nand; i++)
        if (!cond_match(&q->and_conds[i], doc))
            return 0;
    if (q->nor > 0) {
        size_t i;
        for (i = 0; i < q->nor; i++)
            if (cond_match(&q->or_conds[i], doc))
                break;
        if (i == q->nor)
            return 0;
    }
    for (size_t w = 0; w < q->nwords; w++) {
        size_t f;
        for (f = 0; f < q->nkw; f++)
            if (qpath_visit(&q->kw_paths[f], doc, keyword_visit, q->words[w]))
                break;
        if (f == q->nkw)
            return 0;
    }
    return 1;
}

int qi_cond_has_string(const qcond *c, const json_t *s)
{
    if (c->vals_index.cap > 0) {
        eq_ctx ctx = {c->vals, s};
        return qhash_find(&c->vals_index, qjson_hash(s), eq_val, &ctx) != SIZE_MAX;
    }
    for (size_t i = 0; i < c->nvals; i++)
        if (qjson_equal(c->vals[i], s))
            return 1;
    return 0;
}
