/*
 * rm_build.c - the read model's bulk builder on two threads.
 *
 * The caller's thread makes each document (its ready bytes and compact kept
 * values) or hands a view over whole; several callers may add at once (a
 * scan decoding records on several threads).  A worker thread started at
 * begin takes
 * them from a bounded queue, makes the documents handed over as views, and
 * puts every document in the new state (key map, postings, trigrams, kept
 * orders).  finish waits for the worker, sorts the orders and swaps the new
 * state in under the write lock, so readers only ever see the old state or
 * the whole new one.  Without a worker (pthread_create failed) everything
 * runs on the caller's thread.
 */
#include "rm-internal.h"

#include <stdlib.h>
#include <string.h>

#define RM_BUILD_QUEUE 256

typedef struct {
    readmodel_doc *doc; /* a made document, or NULL: */
    json_t *view;       /* a view to make one of (owned) */
} build_item;

struct readmodel_builder {
    readmodel *rm;
    rm_state *st;
    pthread_t worker;
    int has_worker;
    pthread_mutex_t mu;
    pthread_cond_t more; /* the queue got an item, or closed */
    pthread_cond_t room; /* the queue has room */
    build_item q[RM_BUILD_QUEUE];
    size_t head, n;
    int closed;
    int failed; /* out of memory somewhere: the build is lost */
};

static const char *str_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : "";
}

static readmodel_doc *make_doc(readmodel *rm, const json_t *view)
{
    const resource_desc *res = rm->res;
    const char *dom =
        res->domain_field != NULL ? str_or_empty(json_object_get(view, res->domain_field)) : "";
    return rm_doc_new(rm, dom, str_or_empty(json_object_get(view, res->id_field)), view);
}

/* Puts one item in the new state; 0, or -1 when memory ran out. */
static int put_item(readmodel_builder *b, build_item *it)
{
    readmodel_doc *d = it->doc;
    if (d == NULL && it->view != NULL) {
        d = make_doc(b->rm, it->view);
        json_decref(it->view);
    }
    return d == NULL ? -1 : rm_state_put(b->st, d);
}

static void drop_item(build_item *it)
{
    readmodel_doc_release(it->doc);
    json_decref(it->view);
}

static void *worker_main(void *arg)
{
    readmodel_builder *b = arg;
    build_item batch[64];
    size_t n;
    int failed;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        while (b->n == 0 && !b->closed)
            pthread_cond_wait(&b->more, &b->mu);
        if (b->n == 0) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        for (n = 0; n < sizeof(batch) / sizeof(batch[0]) && b->n > 0; n++) {
            batch[n] = b->q[b->head];
            b->head = (b->head + 1) % RM_BUILD_QUEUE;
            b->n--;
        }
        failed = b->failed;
        pthread_cond_signal(&b->room);
        pthread_mutex_unlock(&b->mu);
        for (size_t i = 0; i < n; i++) {
            if (failed)
                drop_item(&batch[i]);
            else if (put_item(b, &batch[i]) != 0)
                failed = 1;
        }
        if (failed) {
            pthread_mutex_lock(&b->mu);
            b->failed = 1;
            pthread_mutex_unlock(&b->mu);
        }
    }
    return NULL;
}

/* Hands it to the worker (or puts it here without one); takes it. */
static rd_status enqueue(readmodel_builder *b, build_item it, rd_error *err)
{
    int failed;
    pthread_mutex_lock(&b->mu);
    if (!b->has_worker) { /* callers on several threads take turns */
        failed = b->failed || put_item(b, &it) != 0;
        b->failed |= failed;
        pthread_mutex_unlock(&b->mu);
        return failed ? rd_fail(err, RD_ERR_INTERNAL, "Out of memory.") : RD_OK;
    }
    while (b->n == RM_BUILD_QUEUE && !b->failed)
        pthread_cond_wait(&b->room, &b->mu);
    failed = b->failed;
    if (!failed) {
        b->q[(b->head + b->n) % RM_BUILD_QUEUE] = it;
        if (b->n++ == 0)
            pthread_cond_signal(&b->more);
    }
    pthread_mutex_unlock(&b->mu);
    if (failed) {
        drop_item(&it);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    return RD_OK;
}

/* Closes the queue and waits for the worker to take every item. */
static void stop_worker(readmodel_builder *b)
{
    if (!b->has_worker)
        return;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    pthread_cond_signal(&b->more);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->worker, NULL);
    b->has_worker = 0;
}

static void builder_free(readmodel_builder *b)
{
    stop_worker(b);
    rm_state_free(b->st);
    pthread_cond_destroy(&b->more);
    pthread_cond_destroy(&b->room);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

rd_status readmodel_build_begin(readmodel *rm, readmodel_builder **out, rd_error *err)
{
    readmodel_builder *b = calloc(1, sizeof(*b));
    *out = NULL;
    if (b == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->more, NULL);
    pthread_cond_init(&b->room, NULL);
    b->rm = rm;
    if ((b->st = rm_state_new(rm->res, &rm->lay)) == NULL) {
        builder_free(b);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    b->st->bulk = 1;
    b->has_worker = pthread_create(&b->worker, NULL, worker_main, b) == 0;
    *out = b;
    return RD_OK;
}

rd_status readmodel_build_add(readmodel_builder *b, const json_t *view, rd_error *err)
{
    build_item it = {make_doc(b->rm, view), NULL};
    if (it.doc == NULL) {
        pthread_mutex_lock(&b->mu);
        b->failed = 1;
        pthread_mutex_unlock(&b->mu);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    return enqueue(b, it, err);
}

rd_status readmodel_build_add_new(readmodel_builder *b, json_t *view, rd_error *err)
{
    build_item it = {NULL, view};
    if (view == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    return enqueue(b, it, err);
}

rd_status readmodel_build_finish(readmodel_builder *b, rd_error *err)
{
    rm_state *old;
    stop_worker(b);
    if (b->failed || rm_finish_bulk(b->st) != 0) {
        builder_free(b);
        return rd_fail(err, RD_ERR_INTERNAL, "Out of memory.");
    }
    pthread_rwlock_wrlock(&b->rm->lock);
    old = b->rm->st;
    b->rm->st = b->st;
    pthread_rwlock_unlock(&b->rm->lock);
    b->st = old;
    builder_free(b); /* frees the old state */
    return RD_OK;
}

void readmodel_build_abort(readmodel_builder *b)
{
    if (b != NULL)
        builder_free(b);
}

rd_status readmodel_build(readmodel *rm, const json_t *views, rd_error *err)
{
    readmodel_builder *b = NULL;
    rd_status rc = readmodel_build_begin(rm, &b, err);
    size_t i;
    const json_t *v;
    if (rc != RD_OK)
        return rc;
    json_array_foreach(views, i, v)
    {
        rc = readmodel_build_add(b, v, err);
        if (rc != RD_OK) {
            readmodel_build_abort(b);
            return rc;
        }
    }
    return readmodel_build_finish(b, err);
}
