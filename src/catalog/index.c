/*
 * index.c - secondary indexes of the local plugins: the entries a record
 * owns, their upkeep inside the catalog's write batches, the rebuild of an
 * index missing from an older data dir, and the read side (candidate ids for
 * a query, key-only counts).  Key layout and invariants: index.h.
 */
#include "index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

const char *const pindex_fields[] = {"name",     "state",         "resource_type",
                                     "provider", "registry_type", NULL};

/* Every key query_index_only may rely on: the primary key and the index. */
static const char *const key_fields[] = {"plugin_id", "name",          "state", "resource_type",
                                         "provider",  "registry_type", NULL};

static const char META_VERSION[] = "plugin_index_version";

#define REBUILD_BATCH 1000

size_t pindex_record_key(char *buf, size_t size, const char *domain_id, const char *plugin_id)
{
    return store_key(buf, size, "L", domain_id, plugin_id, NULL);
}

/* ---- entries of one record ------------------------------------------------ */

/* The entry of rec (NULL = none) for field into buf (PINDEX_KEY_MAX bytes);
 * returns its length, 0 when the record has no entry for the field. */
static size_t entry_key(char *buf, const char *field, const char *domain_id, const char *plugin_id,
                        const json_t *rec)
{
    const json_t *v = json_is_object(rec) ? json_object_get(rec, field) : NULL;
    size_t n = 0;
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
        n = store_key(buf, PINDEX_KEY_MAX, "I", field, json_string_value(v), domain_id, plugin_id,
                      NULL);
    if (n == 0 && (json_is_string(v) || json_is_array(v)))
        n = store_key(buf, PINDEX_KEY_MAX, "U", field, domain_id, plugin_id, NULL);
    return n;
}

void pindex_put_changes(store_batch *b, const char *domain_id, const char *plugin_id,
                        const json_t *old_rec, const json_t *new_rec)
{
    char oldk[PINDEX_KEY_MAX], newk[PINDEX_KEY_MAX];
    for (size_t f = 0; pindex_fields[f] != NULL; f++) {
        size_t ol = entry_key(oldk, pindex_fields[f], domain_id, plugin_id, old_rec);
        size_t nl = entry_key(newk, pindex_fields[f], domain_id, plugin_id, new_rec);
        if (ol == nl && memcmp(oldk, newk, ol) == 0)
            continue;
        if (ol > 0)
            store_batch_delete(b, STORE_CF_INDEX, oldk, ol);
        if (nl > 0)
            store_batch_put(b, STORE_CF_INDEX, newk, nl, "", 0);
    }
}

/* ---- rebuild ---------------------------------------------------------------- */

typedef struct {
    store *st;
    store_batch *b;
    size_t queued; /* operations in b */
    size_t records;
    rd_status rc;
    rd_error *err;
} rebuild_ctx;

/* Writes the batch once it holds REBUILD_BATCH deletes or records (or
 * always when force); 0 to go on, 1 to stop (ctx->rc set). */
static int rebuild_flush(rebuild_ctx *ctx, int force)
{
    if (ctx->queued == 0 || (!force && ctx->queued < REBUILD_BATCH))
        return 0;
    ctx->rc = store_write(ctx->st, ctx->b, ctx->err);
    store_batch_free(ctx->b);
    ctx->b = store_batch_new(ctx->st);
    ctx->queued = 0;
    if (ctx->rc == RD_OK && ctx->b == NULL)
        ctx->rc = rd_fail(ctx->err, RD_ERR_INTERNAL, "out of memory");
    return ctx->rc != RD_OK;
}

static int rebuild_drop(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    rebuild_ctx *ctx = ud;
    (void)val;
    (void)vlen;
    store_batch_delete(ctx->b, STORE_CF_INDEX, key, klen);
    ctx->queued++;
    return rebuild_flush(ctx, 0);
}

static int rebuild_add(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    rebuild_ctx *ctx = ud;
    char domain_id[PINDEX_KEY_MAX], plugin_id[PINDEX_KEY_MAX];
    const char *d = key + 2, *sep;
    json_error_t jerr;
    json_t *rec;

    /* key = "L\0<domain_id>\0<plugin_id>" */
    sep = klen > 2 ? memchr(d, '\0', klen - 2) : NULL;
    if (sep == NULL || klen >= PINDEX_KEY_MAX) {
        LOG_WARN("plugin index: skipping a malformed record key");
        return 0;
    }
    memcpy(domain_id, d, (size_t)(sep - d));
    domain_id[sep - d] = '\0';
    memcpy(plugin_id, sep + 1, klen - (size_t)(sep + 1 - key));
    plugin_id[klen - (size_t)(sep + 1 - key)] = '\0';
    rec = json_loadb(val, vlen, 0, &jerr);
    if (rec == NULL) {
        LOG_WARN("plugin index: skipping corrupt record %s/%s: %s", domain_id, plugin_id,
                 jerr.text);
        return 0;
    }
    pindex_put_changes(ctx->b, domain_id, plugin_id, NULL, rec);
    json_decref(rec);
    ctx->records++;
    ctx->queued++; /* one record: up to five entries */
    return rebuild_flush(ctx, 0);
}

rd_status pindex_ensure(store *st, rd_error *err)
{
    static const char prefix_i[2] = {'I', '\0'}, prefix_u[2] = {'U', '\0'},
                      prefix_l[2] = {'L', '\0'};
    rebuild_ctx ctx = {st, NULL, 0, 0, RD_OK, err};
    char *version = NULL;
    rd_status rc =
        store_get(st, STORE_CF_META, META_VERSION, strlen(META_VERSION), &version, NULL, err);

    if (rc == RD_OK && strcmp(version, PINDEX_VERSION) == 0)
        goto done;
    if (rc != RD_OK && rc != RD_ERR_NOT_FOUND)
        goto done;
    ctx.b = store_batch_new(st);
    if (ctx.b == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    rc = store_scan(st, STORE_CF_INDEX, prefix_i, sizeof(prefix_i), rebuild_drop, &ctx, err);
    if (rc == RD_OK && ctx.rc == RD_OK)
        rc = store_scan(st, STORE_CF_INDEX, prefix_u, sizeof(prefix_u), rebuild_drop, &ctx, err);
    if (rc == RD_OK && ctx.rc == RD_OK)
        rc = store_scan(st, STORE_CF_PLUGINS, prefix_l, sizeof(prefix_l), rebuild_add, &ctx, err);
    if (rc == RD_OK)
        rc = ctx.rc;
    if (rc != RD_OK)
        goto done;
    /* The version goes last, with the last entries. */
    store_batch_put(ctx.b, STORE_CF_META, META_VERSION, strlen(META_VERSION), PINDEX_VERSION,
                    strlen(PINDEX_VERSION));
    ctx.queued++;
    if (rebuild_flush(&ctx, 1))
        rc = ctx.rc;
    else if (ctx.records > 0 || version != NULL)
        LOG_INFO("plugin index: rebuilt (version %s -> %s) for %zu local plugins",
                 version != NULL ? version : "none", PINDEX_VERSION, ctx.records);
done:
    store_batch_free(ctx.b);
    free(version);
    return rc;
}

/* ---- id lists ----------------------------------------------------------------- */

void pindex_ids_free(pindex_ids *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ids[i]);
    free(l->ids);
    memset(l, 0, sizeof(*l));
}

static int ids_push(pindex_ids *l, const char *id, size_t len)
{
    char *copy;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **grown = realloc(l->ids, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        l->ids = grown;
        l->cap = cap;
    }
    copy = strndup(id, len);
    if (copy == NULL)
        return -1;
    l->ids[l->n++] = copy;
    return 0;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts l bytewise and drops duplicates. */
static void ids_sort(pindex_ids *l)
{
    size_t w = 0;
    if (l->n == 0)
        return;
    qsort(l->ids, l->n, sizeof(*l->ids), cmp_ids);
    for (size_t r = 1; r < l->n; r++) {
        if (strcmp(l->ids[r], l->ids[w]) == 0)
            free(l->ids[r]);
        else
            l->ids[++w] = l->ids[r];
    }
    l->n = w + 1;
}

static int ids_contains(const pindex_ids *l, const char *id)
{
    return bsearch(&id, l->ids, l->n, sizeof(*l->ids), cmp_ids) != NULL;
}

/* ---- reading the index --------------------------------------------------------- */

typedef struct {
    pindex_ids *ids;
    size_t plen;  /* the id follows the scanned prefix */
    size_t limit; /* stop once more ids than this are collected */
    int over;
    int oom;
} collect_ctx;

static int collect_id(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    collect_ctx *ctx = ud;
    (void)val;
    (void)vlen;
    if (ids_push(ctx->ids, key + ctx->plen, klen - ctx->plen) != 0) {
        ctx->oom = 1;
        return 1;
    }
    if (ctx->ids->n > ctx->limit) {
        ctx->over = 1;
        return 1;
    }
    return 0;
}

/* Collects into out (empty on entry) the ids of domain_id whose entry for
 * field is "I" with one of values (a JSON array of strings) or "U";
 * *unindexable tells whether any "U" entry was found.  Stops early with
 * *over = 1 when more than limit ids turn up.  out is sorted on success. */
static rd_status field_ids(store *st, const char *field, const json_t *values,
                           const char *domain_id, size_t limit, pindex_ids *out, int *over,
                           int *unindexable, rd_error *err)
{
    char prefix[PINDEX_KEY_MAX];
    collect_ctx ctx = {out, 0, limit, 0, 0};
    rd_status rc = RD_OK;
    size_t i, before;
    const json_t *v;

    json_array_foreach(values, i, v)
    {
        /* A value too long for a key has only "U" entries. */
        ctx.plen = store_key(prefix, sizeof(prefix), "I", field, json_string_value(v), domain_id,
                             "", NULL);
        if (ctx.plen == 0)
            continue;
        rc = store_scan(st, STORE_CF_INDEX, prefix, ctx.plen, collect_id, &ctx, err);
        if (rc != RD_OK || ctx.over || ctx.oom)
            goto done;
    }
    before = out->n;
    ctx.plen = store_key(prefix, sizeof(prefix), "U", field, domain_id, "", NULL);
    if (ctx.plen > 0)
        rc = store_scan(st, STORE_CF_INDEX, prefix, ctx.plen, collect_id, &ctx, err);
    *unindexable = out->n > before;
done:
    *over = ctx.over;
    if (rc == RD_OK && ctx.oom)
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    if (rc == RD_OK && !ctx.over)
        ids_sort(out);
    return rc;
}

/* The plugin_id values of q as an id list; 0 = unconstrained, -1 = out of
 * memory. */
static int plugin_id_values(const query *q, pindex_ids *out)
{
    json_t *values = NULL;
    size_t i;
    const json_t *v;
    int r = query_index_values(q, "plugin_id", &values);
    if (r <= 0)
        return r;
    json_array_foreach(values, i, v)
    {
        if (ids_push(out, json_string_value(v), json_string_length(v)) != 0) {
            r = -1;
            break;
        }
    }
    json_decref(values);
    return r; /* already sorted and distinct */
}

rd_status pindex_candidates(store *st, const char *domain_id, const query *q, pindex_ids *out,
                            int *used, rd_error *err)
{
    pindex_ids best = {0}, cur = {0};
    json_t *values = NULL;
    int have = 0, r;
    rd_status rc = RD_OK;

    memset(out, 0, sizeof(*out));
    *used = 0;
    if (q == NULL)
        return RD_OK;
    r = plugin_id_values(q, &best);
    if (r < 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    have = r > 0;
    for (size_t f = 0; pindex_fields[f] != NULL && !(have && best.n == 0); f++) {
        int over = 0, unindexable = 0;
        r = query_index_values(q, pindex_fields[f], &values);
        if (r < 0) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            goto done;
        }
        if (r == 0)
            continue;
        rc = field_ids(st, pindex_fields[f], values, domain_id, have ? best.n : SIZE_MAX, &cur,
                       &over, &unindexable, err);
        json_decref(values);
        values = NULL;
        if (rc != RD_OK)
            goto done;
        if (!over && (!have || cur.n < best.n)) {
            pindex_ids_free(&best);
            best = cur;
            memset(&cur, 0, sizeof(cur));
            have = 1;
        } else {
            pindex_ids_free(&cur);
        }
    }
    if (have) {
        *out = best;
        memset(&best, 0, sizeof(best));
        *used = 1;
    }
done:
    json_decref(values);
    pindex_ids_free(&cur);
    pindex_ids_free(&best);
    return rc;
}

rd_status pindex_count(store *st, const char *domain_id, const query *q, size_t *count, int *exact,
                       rd_error *err)
{
    char key[PINDEX_KEY_MAX];
    pindex_ids lists[sizeof(key_fields) / sizeof(key_fields[0])];
    size_t nlists = 0, smallest = 0, n = 0;
    json_t *values = NULL;
    rd_status rc = RD_OK;
    int r, bail = 0;

    memset(lists, 0, sizeof(lists));
    *exact = 0;
    if (q != NULL && !query_index_only(q, key_fields))
        return RD_OK;
    /* plugin_id: the named records that exist. */
    if (q != NULL) {
        pindex_ids named = {0};
        r = plugin_id_values(q, &named);
        for (size_t i = 0; r > 0 && i < named.n; i++) {
            char *val = NULL;
            size_t klen = pindex_record_key(key, sizeof(key), domain_id, named.ids[i]);
            rd_status g = klen > 0 ? store_get(st, STORE_CF_PLUGINS, key, klen, &val, NULL, err)
                                   : RD_ERR_NOT_FOUND;
            free(val);
            if (g == RD_OK && ids_push(&lists[0], named.ids[i], strlen(named.ids[i])) != 0)
                r = -1;
            else if (g != RD_OK && g != RD_ERR_NOT_FOUND)
                rc = g;
            if (rc != RD_OK)
                break;
        }
        pindex_ids_free(&named);
        if (r < 0)
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        if (rc != RD_OK)
            goto done;
        nlists = r > 0;
    }
    for (size_t f = 0; q != NULL && pindex_fields[f] != NULL && !bail; f++) {
        int over = 0, unindexable = 0;
        r = query_index_values(q, pindex_fields[f], &values);
        if (r < 0) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            goto done;
        }
        if (r == 0)
            continue;
        rc = field_ids(st, pindex_fields[f], values, domain_id, SIZE_MAX, &lists[nlists], &over,
                       &unindexable, err);
        json_decref(values);
        values = NULL;
        if (rc != RD_OK)
            goto done;
        nlists++;
        bail = unindexable; /* those records need their value read */
    }
    if (bail)
        goto done;
    if (nlists == 0) {
        size_t plen = pindex_record_key(key, sizeof(key), domain_id, "");
        if (plen > 0)
            rc = store_count(st, STORE_CF_PLUGINS, key, plen, &n, err);
    } else {
        for (size_t l = 1; l < nlists; l++)
            if (lists[l].n < lists[smallest].n)
                smallest = l;
        for (size_t i = 0; i < lists[smallest].n; i++) {
            size_t l;
            for (l = 0; l < nlists; l++)
                if (l != smallest && !ids_contains(&lists[l], lists[smallest].ids[i]))
                    break;
            n += l == nlists;
        }
    }
    if (rc == RD_OK) {
        *count = n;
        *exact = 1;
    }
done:
    json_decref(values);
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
        pindex_ids_free(&lists[l]);
    return rc;
}
