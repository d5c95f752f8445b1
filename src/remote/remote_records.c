/*
 * remote_records.c - the in-memory snapshot of the remote repository
 * records (include/remote_records.h): one holder per attached store, with
 * the current snapshot and a generation, under one short lock.
 */
#include "remote_records.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "remote.h"

struct remote_records {
    atomic_int refs;
    json_t *recs; /* array of records, in precedence order */
};

typedef struct holder {
    store *st;
    remote_records *snap; /* NULL: build at the next get */
    uint64_t gen;
    struct holder *next;
} holder;

static pthread_mutex_t holders_lock = PTHREAD_MUTEX_INITIALIZER;
static holder *holders;

/* The holder of st, or NULL; call with holders_lock held. */
static holder *find_locked(const store *st)
{
    holder *h = holders;
    while (h != NULL && h->st != st)
        h = h->next;
    return h;
}

remote_records *remote_records_ref(remote_records *r)
{
    if (r != NULL)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void remote_records_release(remote_records *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    json_decref(r->recs);
    free(r);
}

const json_t *remote_records_array(const remote_records *r)
{
    return r->recs;
}

const json_t *remote_records_find(const remote_records *r, const char *repository_id)
{
    size_t i;
    const json_t *rec;
    json_array_foreach(r->recs, i, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "repository_id"));
        if (id != NULL && strcmp(id, repository_id) == 0)
            return rec;
    }
    return NULL;
}

rd_status remote_records_attach(store *st, rd_error *err)
{
    rd_status rc = RD_OK;
    holder *h;
    pthread_mutex_lock(&holders_lock);
    if (find_locked(st) == NULL) {
        h = calloc(1, sizeof(*h));
        if (h == NULL) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        } else {
            h->st = st;
            h->gen = 1;
            h->next = holders;
            holders = h;
        }
    }
    pthread_mutex_unlock(&holders_lock);
    return rc;
}

void remote_records_detach(store *st)
{
    holder **p, *gone = NULL;
    pthread_mutex_lock(&holders_lock);
    for (p = &holders; *p != NULL; p = &(*p)->next) {
        if ((*p)->st == st) {
            gone = *p;
            *p = gone->next;
            break;
        }
    }
    pthread_mutex_unlock(&holders_lock);
    if (gone != NULL) {
        remote_records_release(gone->snap);
        free(gone);
    }
}

void remote_records_changed(store *st)
{
    remote_records *old = NULL;
    holder *h;
    pthread_mutex_lock(&holders_lock);
    h = find_locked(st);
    if (h != NULL) {
        old = h->snap;
        h->snap = NULL;
        h->gen++;
    }
    pthread_mutex_unlock(&holders_lock);
    remote_records_release(old);
}

uint64_t remote_records_generation(store *st)
{
    uint64_t gen = 0;
    holder *h;
    pthread_mutex_lock(&holders_lock);
    h = find_locked(st);
    if (h != NULL)
        gen = h->gen;
    pthread_mutex_unlock(&holders_lock);
    return gen;
}

rd_status remote_records_get(store *st, remote_records **out, rd_error *err)
{
    remote_records *r = NULL;
    uint64_t gen = 0;
    holder *h;
    rd_status rc = RD_OK;

    *out = NULL;
    pthread_mutex_lock(&holders_lock);
    h = find_locked(st);
    if (h != NULL) {
        gen = h->gen;
        r = remote_records_ref(h->snap);
    }
    pthread_mutex_unlock(&holders_lock);
    if (r != NULL)
        goto done;

    /* built from the store, outside the lock */
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    atomic_init(&r->refs, 1);
    rc = remote_list(st, &r->recs, err);
    if (rc != RD_OK) {
        free(r);
        r = NULL;
        goto done;
    }
    /* kept only if no write came in meanwhile (its generation is unchanged) */
    pthread_mutex_lock(&holders_lock);
    h = find_locked(st);
    if (h != NULL && h->gen == gen && h->snap == NULL)
        h->snap = remote_records_ref(r);
    pthread_mutex_unlock(&holders_lock);
done:
    *out = r;
    return rc;
}
