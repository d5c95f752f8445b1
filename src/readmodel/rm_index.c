/*
 * rm_index.c - the read model's index primitives: a byte-string hash map,
 * sorted slot-id sets, postings built from them, and trigram extraction.
 */
#include "rm-internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static size_t find_slot(const rm_map *m, const char *key, size_t len, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->e[i].key != NULL) {
        if (m->e[i].hash == h && m->e[i].len == len && memcmp(m->e[i].key, key, len) == 0)
            return i;
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

void *rm_map_get(const rm_map *m, const char *key, size_t len)
{
    size_t i;
    if (m->cap == 0)
        return NULL;
    i = find_slot(m, key, len, hash_bytes(key, len));
    return m->e[i].key != NULL ? m->e[i].val : NULL;
}

static int grow(rm_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    rm_mapent *ne = calloc(ncap, sizeof(*ne));
    if (ne == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].key != NULL) {
            size_t j = (size_t)m->e[i].hash & (ncap - 1);
            while (ne[j].key != NULL)
                j = (j + 1) & (ncap - 1);
            ne[j] = m->e[i];
        }
    }
    free(m->e);
    m->e = ne;
    m->cap = ncap;
    return 0;
}

int rm_map_put(rm_map *m, const char *key, size_t len, void *val)
{
    uint64_t h = hash_bytes(key, len);
    size_t i;
    char *copy;
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return -1;
    copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, key, len);
    copy[len] = '\0';
    i = find_slot(m, key, len, h);
    m->e[i].key = copy;
    m->e[i].len = len;
    m->e[i].hash = h;
    m->e[i].val = val;
    m->count++;
    return 0;
}

void *rm_map_del(rm_map *m, const char *key, size_t len)
{
    size_t i, j;
    void *val;
    if (m->cap == 0)
        return NULL;
    i = find_slot(m, key, len, hash_bytes(key, len));
    if (m->e[i].key == NULL)
        return NULL;
    val = m->e[i].val;
    free(m->e[i].key);
    m->e[i].key = NULL;
    m->count--;
    /* backward shift: move later entries of the run into the hole */
    for (j = (i + 1) & (m->cap - 1); m->e[j].key != NULL; j = (j + 1) & (m->cap - 1)) {
        size_t home = (size_t)m->e[j].hash & (m->cap - 1);
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->e[i] = m->e[j];
            m->e[j].key = NULL;
            i = j;
        }
    }
    return val;
}

void rm_map_free(rm_map *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->e[i].key != NULL) {
            free(m->e[i].key);
            if (free_val != NULL)
                free_val(m->e[i].val);
        }
    }
    free(m->e);
    memset(m, 0, sizeof(*m));
}

/* ---- id sets --------------------------------------------------------------- */

static size_t lower_bound(const rm_ids *s, uint32_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int rm_ids_add(rm_ids *s, uint32_t id)
{
    /* ids mostly come in ascending order (a bulk build): append */
    size_t pos = s->n == 0 || s->v[s->n - 1] < id ? s->n : lower_bound(s, id);
    if (pos < s->n && s->v[pos] == id)
        return 0;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4;
        uint32_t *nv = realloc(s->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        s->v = nv;
        s->cap = ncap;
    }
    memmove(&s->v[pos + 1], &s->v[pos], (s->n - pos) * sizeof(*s->v));
    s->v[pos] = id;
    s->n++;
    return 0;
}

void rm_ids_fit(rm_ids *s)
{
    uint32_t *nv;
    if (s->cap <= s->n || s->n == 0)
        return;
    nv = realloc(s->v, s->n * sizeof(*nv));
    if (nv != NULL) {
        s->v = nv;
        s->cap = s->n;
    }
}

void rm_map_fit_ids(rm_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key != NULL)
            rm_ids_fit(m->e[i].val);
}

void rm_ids_del(rm_ids *s, uint32_t id)
{
    size_t pos = lower_bound(s, id);
    if (pos < s->n && s->v[pos] == id) {
        memmove(&s->v[pos], &s->v[pos + 1], (s->n - pos - 1) * sizeof(*s->v));
        s->n--;
    }
}

int rm_ids_has(const rm_ids *s, uint32_t id)
{
    size_t pos = lower_bound(s, id);
    return pos < s->n && s->v[pos] == id;
}

void rm_ids_free_ptr(void *p)
{
    rm_ids *s = p;
    if (s != NULL)
        free(s->v);
    free(s);
}

int rm_post_add(rm_map *m, const char *key, size_t len, uint32_t id)
{
    rm_ids *s = rm_map_get(m, key, len);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        if (rm_map_put(m, key, len, s) != 0) {
            free(s);
            return -1;
        }
    }
    return rm_ids_add(s, id);
}

void rm_post_del(rm_map *m, const char *key, size_t len, uint32_t id)
{
    rm_ids *s = rm_map_get(m, key, len);
    if (s == NULL)
        return;
    rm_ids_del(s, id);
    if (s->n == 0)
        rm_ids_free_ptr(rm_map_del(m, key, len));
}

/* ---- trigrams -------------------------------------------------------------- */

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int rm_trigrams(const char *s, size_t len, rm_ids *out)
{
    for (size_t i = 0; i + 3 <= len; i++) {
        uint32_t t = (uint32_t)lower((unsigned char)s[i]) << 16 |
                     (uint32_t)lower((unsigned char)s[i + 1]) << 8 | lower((unsigned char)s[i + 2]);
        if (out->n == out->cap) {
            size_t ncap = out->cap ? out->cap * 2 : 32;
            uint32_t *nv = realloc(out->v, ncap * sizeof(*nv));
            if (nv == NULL)
                return -1;
            out->v = nv;
            out->cap = ncap;
        }
        out->v[out->n++] = t;
    }
    return 0;
}
