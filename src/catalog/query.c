/*
 * query.c - the list query engine (SPEC section 8): compiles `query`
 * objects (filter, filter_or, keyword, sort, page, only, minimal,
 * count_only) and runs them over arrays of JSON documents; also the shared
 * helpers of query-internal.h (paths, JSON order / equality / hash, sort,
 * page, hash index, calendar) that stat.c uses.
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
 *
 * Sort order (MongoDB): null = missing < numbers < strings < objects <
 * arrays < booleans; an array field sorts by its smallest element ascending
 * and its largest descending, an empty array before null.  The sort is
 * stable: ties keep the input order.
 *
 * A compiled query is immutable; query_match / query_run may run on it from
 * several threads at once (glibc's regexec is thread-safe).
 */
#include "query-internal.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- operators ---------------------------------------------------------- */

typedef enum { K_EQ, K_CMP, K_EXISTS, K_CONTAIN, K_REGEX, K_TIME } qkind;
typedef enum { C_NONE, C_LT, C_LTE, C_GT, C_GTE } qcmp;
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

/* One compiled condition. */
typedef struct {
    qpath path;
    qkind kind;
    qcmp cmp;
    int negate;
    json_t *value;       /* owned copy of the operand */
    const json_t **vals; /* K_EQ / K_CMP: operands, borrowed from value */
    size_t nvals;
    int has_null;         /* K_EQ: a null operand (matches missing too) */
    qhash vals_index;     /* K_EQ with many operands: hash of vals */
    const char **needles; /* K_CONTAIN: borrowed from value */
    size_t nneedles;
    regex_t *re; /* K_REGEX */
    size_t nre;
    int exists;   /* K_EXISTS */
    int64_t time; /* K_TIME: operand in ms */
} qcond;

/* `only` / `minimal` projection: a trie of dotted keys. */
typedef struct qproj {
    char *name;
    int whole; /* the whole value is kept */
    struct qproj *child;
    size_t nchild;
    size_t cap;
} qproj;

struct query {
    qcond *and_conds;
    size_t nand;
    qcond *or_conds;
    size_t nor;
    char **words; /* keyword words (owned) */
    size_t nwords;
    qpath *kw_paths; /* schema keyword fields */
    size_t nkw;
    qsort_spec sort;
    qpage page;
    qproj *proj; /* NULL = whole documents */
    int count_only;
};

/* ---- small helpers ------------------------------------------------------ */

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

int64_t qfloor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t qdays_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void qcivil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dim[m - 1];
}

static int read_digits(const char **sp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*sp)[i]))
            return -1;
        v = v * 10 + ((*sp)[i] - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

int query_parse_datetime(const char *s, int64_t *epoch_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, offset_min = 0;
    if (s == NULL)
        return -1;
    if (read_digits(&s, 4, &y) || *s != '-')
        return -1;
    s++;
    if (read_digits(&s, 2, &mo) || *s != '-')
        return -1;
    s++;
    if (read_digits(&s, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (read_digits(&s, 2, &h) || *s != ':')
            return -1;
        s++;
        if (read_digits(&s, 2, &mi))
            return -1;
        if (*s == ':') {
            s++;
            if (read_digits(&s, 2, &sec))
                return -1;
            if (*s == '.' || *s == ',') {
                int nd = 0;
                s++;
                while (isdigit((unsigned char)*s)) {
                    if (nd < 3)
                        ms = ms * 10 + (*s - '0');
                    nd++;
                    s++;
                }
                if (nd == 0)
                    return -1;
                for (; nd < 3; nd++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, oh, om = 0;
            s++;
            if (read_digits(&s, 2, &oh))
                return -1;
            if (*s == ':') {
                s++;
                if (read_digits(&s, 2, &om))
                    return -1;
            } else if (isdigit((unsigned char)*s)) {
                if (read_digits(&s, 2, &om))
                    return -1;
            }
            if (oh > 23 || om > 59)
                return -1;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*s != '\0')
        return -1;
    int64_t days = qdays_from_civil(y, (unsigned)mo, (unsigned)d);
    *epoch_ms = (((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms - (int64_t)offset_min * 60000;
    return 0;
}

static int64_t unit_ms(char u)
{
    switch (u) {
    case 's':
        return 1000;
    case 'm':
        return 60 * 1000;
    case 'h':
        return 3600 * 1000;
    case 'd':
        return 86400 * 1000;
    case 'w':
        return 7 * 86400 * 1000;
    default:
        return 0;
    }
}

int query_parse_timediff(const char *s, int64_t now_ms, int64_t *epoch_ms)
{
    int64_t t = now_ms;
    if (s == NULL || strncmp(s, "now", 3) != 0)
        return -1;
    s += 3;
    while (*s != '\0') {
        if (*s == '+' || *s == '-') {
            int64_t sign = *s == '-' ? -1 : 1, n = 0, unit, delta;
            s++;
            if (!isdigit((unsigned char)*s))
                return -1;
            while (isdigit((unsigned char)*s)) {
                n = n * 10 + (*s - '0');
                if (n > 1000000000)
                    return -1;
                s++;
            }
            unit = unit_ms(*s);
            if (unit == 0)
                return -1;
            s++;
            delta = sign * n * unit;
            if (__builtin_add_overflow(t, delta, &t))
                return -1;
        } else if (*s == '/') {
            int64_t unit = unit_ms(s[1]);
            if (unit == 0)
                return -1;
            if (s[1] == 'w') {
                /* 1970-01-01 was a Thursday: Monday-based weeks start 3 days earlier. */
                int64_t day = qfloor_div(t, 86400000);
                int64_t since_monday = day - qfloor_div(day + 3, 7) * 7 + 3;
                t = (day - since_monday) * 86400000;
            } else {
                t = qfloor_div(t, unit) * unit;
            }
            s += 2;
        } else {
            return -1;
        }
        /* Keep to +-3 million years so that rounding cannot overflow. */
        if (t < -100000000000000000LL || t > 100000000000000000LL)
            return -1;
    }
    *epoch_ms = t;
    return 0;
}

/* ---- paths -------------------------------------------------------------- */

rd_status qpath_init(qpath *p, const char *dotted, const char *where, rd_error *err)
{
    size_t len, n = 1;
    memset(p, 0, sizeof(*p));
    len = dotted != NULL ? strlen(dotted) : 0;
    if (len == 0)
        return rd_fail(err, RD_ERR_DB_QUERY, "Invalid key. (key = %s, value = \"\")", where);
    if (dotted[0] == '.' || dotted[len - 1] == '.' || strstr(dotted, "..") != NULL)
        return rd_fail(err, RD_ERR_DB_QUERY, "Invalid key. (key = %s, value = %s)", where, dotted);
    for (size_t i = 0; i < len; i++)
        n += dotted[i] == '.';
    p->text = strdup(dotted);
    p->buf = strdup(dotted);
    p->parts = calloc(n, sizeof(*p->parts));
    p->index = calloc(n, sizeof(*p->index));
    if (p->text == NULL || p->buf == NULL || p->parts == NULL || p->index == NULL) {
        qpath_free(p);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    p->nparts = n;
    char *c = p->buf;
    for (size_t i = 0; i < n; i++) {
        char *dot = strchr(c, '.');
        size_t clen;
        if (dot != NULL)
            *dot = '\0';
        p->parts[i] = c;
        clen = strlen(c);
        p->index[i] = -1;
        if (clen > 0 && clen <= 9 && strspn(c, "0123456789") == clen)
            p->index[i] = strtol(c, NULL, 10);
        c += clen + 1;
    }
    return RD_OK;
}

void qpath_free(qpath *p)
{
    free(p->text);
    free(p->buf);
    free(p->parts);
    free(p->index);
    memset(p, 0, sizeof(*p));
}

static int visit_rec(const json_t *v, const qpath *p, size_t i, qvisit_fn cb, void *ctx)
{
    int r;
    if (i == p->nparts) {
        size_t k;
        const json_t *e;
        r = cb(v, QV_LEAF, ctx);
        if (r != 0 || !json_is_array(v))
            return r;
        json_array_foreach(v, k, e)
        {
            r = cb(e, QV_ELEMENT, ctx);
            if (r != 0)
                return r;
        }
        return 0;
    }
    if (json_is_object(v)) {
        const json_t *child = json_object_get(v, p->parts[i]);
        if (child == NULL)
            return cb(NULL, QV_MISSING, ctx);
        return visit_rec(child, p, i + 1, cb, ctx);
    }
    if (json_is_array(v)) {
        int reached = 0;
        size_t k;
        const json_t *e;
        if (p->index[i] >= 0) {
            e = json_array_get(v, (size_t)p->index[i]);
            if (e != NULL) {
                reached = 1;
                r = visit_rec(e, p, i + 1, cb, ctx);
                if (r != 0)
                    return r;
            }
        }
        json_array_foreach(v, k, e)
        {
            if (!json_is_object(e))
                continue;
            reached = 1;
            r = visit_rec(e, p, i, cb, ctx);
            if (r != 0)
                return r;
        }
        return reached ? 0 : cb(NULL, QV_MISSING, ctx);
    }
    return cb(NULL, QV_MISSING, ctx);
}

int qpath_visit(const qpath *p, const json_t *doc, qvisit_fn cb, void *ctx)
{
    if (!json_is_object(doc))
        return cb(NULL, QV_MISSING, ctx);
    return visit_rec(doc, p, 0, cb, ctx);
}

static json_t *lookup_rec(const json_t *v, const char *seg, int *is_new)
{
    *is_new = 0;
    if (seg == NULL)
        return (json_t *)v;
    size_t len = strcspn(seg, ".");
    const char *rest = seg[len] == '.' ? seg + len + 1 : NULL;
    if (json_is_object(v)) {
        json_t *child = json_object_getn(v, seg, len);
        return child == NULL ? NULL : lookup_rec(child, rest, is_new);
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        const json_t *e;
        if (out == NULL)
            return NULL;
        json_array_foreach(v, i, e)
        {
            int nested_new;
            json_t *r;
            if (!json_is_object(e) && !json_is_array(e))
                continue;
            r = lookup_rec(e, seg, &nested_new);
            if (r == NULL)
                continue;
            if (nested_new)
                json_array_append_new(out, r);
            else
                json_array_append(out, r);
        }
        *is_new = 1;
        return out;
    }
    return NULL;
}

json_t *query_lookup(const json_t *doc, const char *dotted_key, json_t **owned)
{
    int is_new = 0;
    json_t *r;
    if (owned != NULL)
        *owned = NULL;
    if (doc == NULL || dotted_key == NULL || dotted_key[0] == '\0')
        return NULL;
    r = lookup_rec(doc, dotted_key, &is_new);
    if (is_new) {
        if (owned != NULL) {
            *owned = r;
        } else {
            /* Cannot hand out a new value without an owner. */
            json_decref(r);
            r = NULL;
        }
    }
    return r;
}

/* ---- JSON order / equality / hash --------------------------------------- */

static int type_rank(const json_t *v)
{
    if (v == NULL)
        return 1;
    switch (json_typeof(v)) {
    case JSON_NULL:
        return 1;
    case JSON_INTEGER:
    case JSON_REAL:
        return 2;
    case JSON_STRING:
        return 3;
    case JSON_OBJECT:
        return 4;
    case JSON_ARRAY:
        return 5;
    case JSON_TRUE:
    case JSON_FALSE:
        return 6;
    }
    return 7;
}

/* int vs real without losing precision beyond 2^53. */
static int int_real_cmp(json_int_t i, double d)
{
    if (d != d)
        return 1; /* NaN cannot come from JSON; order it first anyway */
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double di = (double)i;
    if (di < d)
        return -1;
    if (di > d)
        return 1;
    json_int_t t = (json_int_t)d;
    return (i > t) - (i < t);
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_integer(a))
        return int_real_cmp(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -int_real_cmp(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return (x > y) - (x < y);
}

static int str_cmp(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int r = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
    if (r != 0)
        return r < 0 ? -1 : 1;
    return (la > lb) - (la < lb);
}

static int cstr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char **sorted_keys(const json_t *o)
{
    size_t n = json_object_size(o), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    const char *k;
    const json_t *v;
    if (keys == NULL)
        return NULL;
    json_object_foreach((json_t *)o, k, v)
    {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), cstr_cmp);
    return keys;
}

static int obj_cmp(const json_t *a, const json_t *b)
{
    size_t na = json_object_size(a), nb = json_object_size(b);
    const char **ka = sorted_keys(a), **kb = sorted_keys(b);
    int r = 0;
    if (ka != NULL && kb != NULL) {
        for (size_t i = 0; i < na && i < nb && r == 0; i++) {
            r = strcmp(ka[i], kb[i]);
            if (r == 0)
                r = qjson_cmp(json_object_get(a, ka[i]), json_object_get(b, kb[i]));
            else
                r = r < 0 ? -1 : 1;
        }
    }
    if (r == 0)
        r = (na > nb) - (na < nb);
    free(ka);
    free(kb);
    return r;
}

int qjson_cmp(const json_t *a, const json_t *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 2:
        return num_cmp(a, b);
    case 3:
        return str_cmp(a, b);
    case 4:
        return obj_cmp(a, b);
    case 5: {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            int r = qjson_cmp(json_array_get(a, i), json_array_get(b, i));
            if (r != 0)
                return r;
        }
        return (na > nb) - (na < nb);
    }
    case 6:
        return json_is_true(a) - json_is_true(b);
    default:
        return 0;
    }
}

int qjson_equal(const json_t *a, const json_t *b)
{
    int ra, rb;
    if (a == b)
        return 1;
    ra = type_rank(a);
    rb = type_rank(b);
    if (ra != rb)
        return 0;
    switch (ra) {
    case 2:
        return num_cmp(a, b) == 0;
    case 3:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case 4: {
        const char *k;
        const json_t *v;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, k, v)
        {
            const json_t *w = json_object_get(b, k);
            if (w == NULL || !qjson_equal(v, w))
                return 0;
        }
        return 1;
    }
    case 5: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!qjson_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    case 6:
        return json_typeof(a) == json_typeof(b);
    default:
        return 1;
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

uint64_t qjson_hash(const json_t *v)
{
    switch (type_rank(v)) {
    case 1:
        return 0x6e756c6cULL;
    case 2: {
        double d = json_number_value(v);
        uint64_t bits;
        if (d == 0)
            d = 0; /* -0.0 == 0.0 */
        memcpy(&bits, &d, sizeof(bits));
        return mix64(bits ^ 0x2545f4914f6cdd1dULL);
    }
    case 3:
        return bytes_hash(json_string_value(v), json_string_length(v));
    case 4: {
        uint64_t h = 0x6f626a65ULL;
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            h += mix64(bytes_hash(k, strlen(k)) * 31 + qjson_hash(e));
        }
        return mix64(h);
    }
    case 5: {
        uint64_t h = 0x61727261ULL;
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            h = mix64(h * 31 + qjson_hash(e));
        }
        return h;
    }
    default:
        return json_is_true(v) ? 0x74727565ULL : 0x66616c73ULL;
    }
}

/* ---- hash index ---------------------------------------------------------- */

size_t qhash_find(const qhash *h, uint64_t hash, qhash_eq_fn eq, const void *ctx)
{
    size_t mask, i;
    if (h->cap == 0)
        return SIZE_MAX;
    mask = h->cap - 1;
    for (i = (size_t)hash & mask; h->slot[i] != 0; i = (i + 1) & mask)
        if (h->hash[i] == hash && eq(h->slot[i] - 1, ctx))
            return h->slot[i] - 1;
    return SIZE_MAX;
}

static void qhash_place(size_t *slot, uint64_t *hashes, size_t cap, uint64_t hash, size_t idx1)
{
    size_t i = (size_t)hash & (cap - 1);
    while (slot[i] != 0)
        i = (i + 1) & (cap - 1);
    slot[i] = idx1;
    hashes[i] = hash;
}

int qhash_insert(qhash *h, uint64_t hash, size_t idx)
{
    if ((h->count + 1) * 4 > h->cap * 3) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        size_t *slot = calloc(cap, sizeof(*slot));
        uint64_t *hashes = calloc(cap, sizeof(*hashes));
        if (slot == NULL || hashes == NULL) {
            free(slot);
            free(hashes);
            return -1;
        }
        for (size_t i = 0; i < h->cap; i++)
            if (h->slot[i] != 0)
                qhash_place(slot, hashes, cap, h->hash[i], h->slot[i]);
        free(h->slot);
        free(h->hash);
        h->slot = slot;
        h->hash = hashes;
        h->cap = cap;
    }
    qhash_place(h->slot, h->hash, h->cap, hash, idx + 1);
    h->count++;
    return 0;
}

void qhash_free(qhash *h)
{
    free(h->slot);
    free(h->hash);
    memset(h, 0, sizeof(*h));
}

/* ---- sort ---------------------------------------------------------------- */

static rd_status sort_key_compile(const json_t *item, const char *where, qsort_key *out,
                                  rd_error *err)
{
    const char *k;
    const json_t *v, *key = NULL, *desc = NULL;
    json_object_foreach((json_t *)item, k, v)
    {
        if (strcmp(k, "key") == 0)
            key = v;
        else if (strcmp(k, "desc") == 0)
            desc = v;
        else
            return rd_fail(err, RD_ERR_DB_QUERY, "Unknown sort key. (key = %s.%s)", where, k);
    }
    if (!json_is_string(key))
        return rd_fail(err, RD_ERR_DB_QUERY, "Sort requires a key. (key = %s.key)", where);
    if (desc != NULL && !json_is_null(desc) && !json_is_boolean(desc))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.desc, type = bool)", where);
    out->desc = json_is_true(desc);
    return qpath_init(&out->path, json_string_value(key), where, err);
}

rd_status qsort_spec_compile(const json_t *sort, const char *where, qsort_spec *out, rd_error *err)
{
    rd_status rc = RD_OK;
    const json_t *list = NULL;
    char sub[160];
    memset(out, 0, sizeof(*out));
    if (sort == NULL || json_is_null(sort))
        return RD_OK;
    if (json_is_object(sort)) {
        const json_t *keys = json_object_get(sort, "keys");
        if (keys != NULL && json_object_size(sort) != 1)
            return rd_fail(err, RD_ERR_DB_QUERY, "Invalid sort: use either key or keys. (key = %s)",
                           where);
        if (keys != NULL && !json_is_array(keys))
            return rd_fail(err, RD_ERR_DB_QUERY, "Invalid sort: keys must be a list. (key = %s)",
                           where);
        list = keys;
    } else if (json_is_array(sort)) {
        list = sort;
    } else {
        return rd_fail(err, RD_ERR_DB_QUERY,
                       "Invalid sort: expected {key, desc} or {keys: [...]}. (key = %s)", where);
    }
    if (list == NULL) {
        out->keys = calloc(1, sizeof(*out->keys));
        if (out->keys == NULL)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        out->nkeys = 1;
        rc = sort_key_compile(sort, where, &out->keys[0], err);
        goto done;
    }
    if (json_array_size(list) == 0)
        return RD_OK;
    out->keys = calloc(json_array_size(list), sizeof(*out->keys));
    if (out->keys == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; i < json_array_size(list) && rc == RD_OK; i++) {
        const json_t *item = json_array_get(list, i);
        qfmt(sub, sizeof(sub), "%s%s[%zu]", where, list == sort ? "" : ".keys", i);
        out->nkeys++;
        if (!json_is_object(item))
            rc = rd_fail(err, RD_ERR_DB_QUERY, "Invalid sort: expected {key, desc}. (key = %s)",
                         sub);
        else
            rc = sort_key_compile(item, sub, &out->keys[i], err);
    }
done:
    if (rc != RD_OK)
        qsort_spec_free(out);
    return rc;
}

void qsort_spec_free(qsort_spec *s)
{
    for (size_t i = 0; i < s->nkeys; i++)
        qpath_free(&s->keys[i].path);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}

typedef struct {
    const json_t *v; /* NULL = null / missing */
    int empty;       /* an empty array: before null */
} qskey;

typedef struct {
    qskey best;
    int have;
    int desc;
} skey_ctx;

static int skey_cmp(const qskey *a, const qskey *b)
{
    if (a->empty || b->empty)
        return b->empty - a->empty;
    return qjson_cmp(a->v, b->v);
}

static int skey_visit(const json_t *v, qv_kind kind, void *vctx)
{
    skey_ctx *c = vctx;
    qskey k = {NULL, 0};
    if (kind == QV_LEAF && json_is_array(v)) {
        if (json_array_size(v) > 0)
            return 0; /* its elements follow */
        k.empty = 1;
    } else if (kind != QV_MISSING) {
        k.v = v;
    }
    if (!c->have) {
        c->best = k;
        c->have = 1;
    } else {
        int r = skey_cmp(&k, &c->best);
        if (c->desc ? r > 0 : r < 0)
            c->best = k;
    }
    return 0;
}

typedef struct {
    const qsort_spec *spec;
    const qskey *keys;
} sort_ctx;

static int sort_idx_cmp(size_t a, size_t b, const void *vctx)
{
    const sort_ctx *c = vctx;
    size_t nk = c->spec->nkeys;
    for (size_t k = 0; k < nk; k++) {
        int r = skey_cmp(&c->keys[a * nk + k], &c->keys[b * nk + k]);
        if (r != 0)
            return c->spec->keys[k].desc ? -r : r;
    }
    return 0;
}

void qmerge_sort(size_t *idx, size_t *tmp, size_t n, qidx_cmp_fn cmp, const void *ctx)
{
    const size_t run = 8;
    size_t *src = idx, *dst = tmp;
    /* Insertion-sort short runs, then merge them bottom-up; both stable. */
    for (size_t lo = 0; lo < n; lo += run) {
        size_t hi = lo + run < n ? lo + run : n;
        for (size_t i = lo + 1; i < hi; i++) {
            size_t x = idx[i], j = i;
            while (j > lo && cmp(x, idx[j - 1], ctx) < 0) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
    }
    for (size_t width = run; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                dst[o++] = cmp(src[j], src[i], ctx) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, n * sizeof(*idx));
}

rd_status qsort_order(const qsort_spec *spec, const json_t *const *docs, size_t *order, size_t n,
                      rd_error *err)
{
    rd_status rc = RD_OK;
    qskey *keys = NULL;
    size_t *tmp = NULL;
    size_t nk = spec->nkeys;
    if (nk == 0 || n < 2)
        return RD_OK;
    keys = calloc(n * nk, sizeof(*keys));
    tmp = malloc(n * sizeof(*tmp));
    if (keys == NULL || tmp == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < nk; k++) {
            skey_ctx c = {{NULL, 0}, 0, spec->keys[k].desc};
            qpath_visit(&spec->keys[k].path, docs[i], skey_visit, &c);
            keys[i * nk + k] = c.best;
        }
    }
    sort_ctx ctx = {spec, keys};
    qmerge_sort(order, tmp, n, sort_idx_cmp, &ctx);
done:
    free(keys);
    free(tmp);
    return rc;
}

/* ---- page ---------------------------------------------------------------- */

static rd_status page_int(const json_t *v, const char *where, const char *name, size_t *out,
                          rd_error *err)
{
    if (json_is_null(v)) {
        *out = 0;
        return RD_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s.%s, type = non-negative integer)", where,
                       name);
#if JSON_INTEGER_IS_LONG_LONG
    if ((unsigned long long)json_integer_value(v) > SIZE_MAX)
        *out = SIZE_MAX;
    else
#endif
        *out = (size_t)json_integer_value(v);
    return RD_OK;
}

rd_status qpage_compile(const json_t *page, const char *where, qpage *out, rd_error *err)
{
    const char *k;
    const json_t *v;
    memset(out, 0, sizeof(*out));
    if (page == NULL || json_is_null(page))
        return RD_OK;
    if (!json_is_object(page))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                       "Invalid parameter type. (key = %s, type = object)", where);
    out->given = 1;
    json_object_foreach((json_t *)page, k, v)
    {
        rd_status rc;
        size_t n = 0;
        if (strcmp(k, "start") == 0) {
            rc = page_int(v, where, k, &n, err);
            out->offset = n > 0 ? n - 1 : 0;
        } else if (strcmp(k, "limit") == 0) {
            rc = page_int(v, where, k, &n, err);
            out->limit = n;
        } else {
            rc = rd_fail(err, RD_ERR_DB_QUERY, "Unknown page key. (key = %s.%s)", where, k);
        }
        if (rc != RD_OK)
            return rc;
    }
    return RD_OK;
}

void qpage_slice(const qpage *p, size_t total, size_t *from, size_t *to)
{
    *from = p->offset < total ? p->offset : total;
    *to = total;
    if (p->limit > 0 && p->limit < total - *from)
        *to = *from + p->limit;
}

/* ---- conditions ---------------------------------------------------------- */

static void cond_free(qcond *c)
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
 * atom costs 1 and a bounded repetition {m,n} multiplies the atom (or group)
 * before it.  glibc expands bounded repetitions, so nested ones such as
 * ((a{1,100}){1,100}){1,100} would take seconds and hundreds of MB. */
#define REGEX_MAX_COST  10000.0
#define REGEX_MAX_DEPTH 32
#define EQ_HASH_MIN     8 /* `in` lists longer than this are hashed */

/* 0 = acceptable, -1 = too complex, -2 = uses a back-reference.  *budget
 * is what the condition may still spend (regex_in shares one budget). */
static int regex_check(const char *p, double *budget)
{
    double seq[REGEX_MAX_DEPTH + 1], last[REGEX_MAX_DEPTH + 1];
    int depth = 0;
    seq[0] = last[0] = 0;
    for (; *p != '\0'; p++) {
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
                double inner = seq[depth--];
                seq[depth] += inner;
                last[depth] = inner;
            }
            break;
        case '|':
            last[depth] = 0; /* alternatives add up: an upper bound */
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
            if (n > 100000)
                return -1;
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
static rd_status cond_compile(const json_t *cond, const char *where, int64_t now_ms, qcond *c,
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
        cond_free(c);
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

/* ---- projection ---------------------------------------------------------- */

static void proj_clear(qproj *p)
{
    for (size_t i = 0; i < p->nchild; i++)
        proj_clear(&p->child[i]);
    free(p->child);
    free(p->name);
    memset(p, 0, sizeof(*p));
}

static void proj_free(qproj *p)
{
    if (p != NULL) {
        proj_clear(p);
        free(p);
    }
}

static const qproj *proj_find(const qproj *node, const char *name)
{
    for (size_t i = 0; i < node->nchild; i++)
        if (strcmp(node->child[i].name, name) == 0)
            return &node->child[i];
    return NULL;
}

/* Adds a dotted key to the trie; -1 on allocation failure. */
static int proj_add(qproj *root, const qpath *path)
{
    qproj *n = root;
    for (size_t i = 0; i < path->nparts; i++) {
        qproj *next = (qproj *)proj_find(n, path->parts[i]);
        if (n->whole)
            return 0; /* an ancestor is kept whole already */
        if (next == NULL) {
            if (n->nchild == n->cap) {
                size_t cap = n->cap ? n->cap * 2 : 4;
                qproj *grown = realloc(n->child, cap * sizeof(*grown));
                if (grown == NULL)
                    return -1;
                n->child = grown;
                n->cap = cap;
            }
            next = &n->child[n->nchild];
            memset(next, 0, sizeof(*next));
            next->name = strdup(path->parts[i]);
            if (next->name == NULL)
                return -1;
            n->nchild++;
        }
        n = next;
    }
    for (size_t i = 0; i < n->nchild; i++)
        proj_clear(&n->child[i]);
    n->nchild = 0;
    n->whole = 1;
    return 0;
}

static json_t *proj_object(const json_t *obj, const qproj *node);

/* Projects v under node; NULL = leave the field out. */
static json_t *proj_value(const json_t *v, const qproj *node)
{
    if (node->whole)
        return json_deep_copy(v);
    if (json_is_object(v))
        return proj_object(v, node);
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        const json_t *e;
        if (out == NULL)
            return NULL;
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e))
                json_array_append_new(out, proj_object(e, node));
        }
        return out;
    }
    return NULL;
}

static json_t *proj_object(const json_t *obj, const qproj *node)
{
    json_t *out = json_object();
    const char *k;
    const json_t *v;
    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)obj, k, v)
    {
        const qproj *child = proj_find(node, k);
        if (child != NULL) {
            json_t *r = proj_value(v, child);
            if (r != NULL)
                json_object_set_new(out, k, r);
        }
    }
    return out;
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
        rc = cond_compile(json_array_get(list, i), sub, now_ms, &conds[*n], err);
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

static rd_status proj_compile(query *q, const json_t *only, int minimal, const query_schema *schema,
                              rd_error *err)
{
    char where[64];
    size_t n = json_array_size(only);
    if (n == 0 && !minimal)
        return RD_OK;
    q->proj = calloc(1, sizeof(*q->proj));
    if (q->proj == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    for (size_t i = 0; n > 0 ? i < n : schema->minimal_fields[i] != NULL; i++) {
        const json_t *item = n > 0 ? json_array_get(only, i) : NULL;
        const char *key = n > 0 ? json_string_value(item) : schema->minimal_fields[i];
        qpath path;
        rd_status rc;
        int bad;
        qfmt(where, sizeof(where), "query.only[%zu]", i);
        if (key == NULL)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER_TYPE,
                           "Invalid parameter type. (key = %s, type = string)", where);
        rc = qpath_init(&path, key, where, err);
        if (rc != RD_OK)
            return rc;
        bad = proj_add(q->proj, &path);
        qpath_free(&path);
        if (bad)
            return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
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
    rc = proj_compile(q, only, minimal, schema, err);
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
        cond_free(&q->and_conds[i]);
    for (size_t i = 0; i < q->nor; i++)
        cond_free(&q->or_conds[i]);
    free(q->and_conds);
    free(q->or_conds);
    for (size_t i = 0; i < q->nwords; i++)
        free(q->words[i]);
    free(q->words);
    for (size_t i = 0; i < q->nkw; i++)
        qpath_free(&q->kw_paths[i]);
    free(q->kw_paths);
    qsort_spec_free(&q->sort);
    proj_free(q->proj);
    free(q);
}

/* ---- match / run --------------------------------------------------------- */

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

/* ---- index hints --------------------------------------------------------- */

/* 1 when c confines the top-level key `field` to its operands: a positive
 * eq / in on exactly that key whose operands are all NUL-free strings. */
static int cond_index_hint(const qcond *c, const char *field)
{
    if (c->kind != K_EQ || c->negate || c->path.nparts != 1 || strcmp(c->path.text, field) != 0)
        return 0;
    for (size_t i = 0; i < c->nvals; i++) {
        const json_t *v = c->vals[i];
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return 0;
    }
    return 1;
}

static int cond_has_string(const qcond *c, const json_t *s)
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

static int cmp_json_strings(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    size_t lx = json_string_length(x), ly = json_string_length(y);
    int c = memcmp(json_string_value(x), json_string_value(y), lx < ly ? lx : ly);
    return c != 0 ? c : (lx > ly) - (lx < ly);
}

int query_index_values(const query *q, const char *field, json_t **values)
{
    const qcond *first = NULL;
    const json_t **keep = NULL;
    json_t *out = NULL;
    size_t nkeep = 0;
    int rc = 0;

    *values = NULL;
    if (strchr(field, '.') != NULL)
        return 0;
    for (size_t i = 0; i < q->nand && first == NULL; i++)
        if (cond_index_hint(&q->and_conds[i], field))
            first = &q->and_conds[i];
    if (first == NULL)
        return 0;
    keep = malloc((first->nvals ? first->nvals : 1) * sizeof(*keep));
    out = json_array();
    if (keep == NULL || out == NULL) {
        rc = -1;
        goto done;
    }
    /* The first condition's operands that every other counting condition
     * also allows. */
    for (size_t v = 0; v < first->nvals; v++) {
        int ok = 1;
        for (size_t i = 0; i < q->nand && ok; i++) {
            const qcond *c = &q->and_conds[i];
            if (c != first && cond_index_hint(c, field))
                ok = cond_has_string(c, first->vals[v]);
        }
        if (ok)
            keep[nkeep++] = first->vals[v];
    }
    qsort(keep, nkeep, sizeof(*keep), cmp_json_strings);
    for (size_t v = 0; v < nkeep; v++) {
        if (v > 0 && cmp_json_strings(&keep[v - 1], &keep[v]) == 0)
            continue;
        if (json_array_append_new(out, json_deep_copy(keep[v])) != 0) {
            rc = -1;
            goto done;
        }
    }
    *values = out;
    out = NULL;
    rc = 1;
done:
    free(keep);
    json_decref(out);
    return rc;
}

int query_index_only(const query *q, const char *const *fields)
{
    if (q->nor > 0 || q->nwords > 0)
        return 0;
    for (size_t i = 0; i < q->nand; i++) {
        size_t f;
        for (f = 0; fields[f] != NULL; f++)
            if (strchr(fields[f], '.') == NULL && cond_index_hint(&q->and_conds[i], fields[f]))
                break;
        if (fields[f] == NULL)
            return 0;
    }
    return 1;
}

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
            json_t *copy =
                q->proj != NULL && json_is_object(d) ? proj_object(d, q->proj) : json_deep_copy(d);
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
