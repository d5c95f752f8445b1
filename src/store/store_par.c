/*
 * store_par.c - a scan of the store whose records are handled on several
 * threads: the calling thread reads them in key order into reused batches,
 * the scan's threads take whole batches from a bounded queue.
 */
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"
#include "store.h"

#define SCAN_BATCH_BYTES (64 * 1024)

/* Records copied out of the iterator: each as its key length, value length
 * (size_t each, unaligned) then its key and value bytes. */
typedef struct {
    char *buf;
    size_t len, cap;
} scan_batch;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t more; /* a full batch is queued, or the scan ended */
    pthread_cond_t room; /* a batch is free again */
    scan_batch *pool;    /* npool batches, reused: their buffers only grow */
    size_t npool;
    size_t *full, nfull, fhead; /* queue of full batches (indexes in pool) */
    size_t *free_, nfree;       /* stack of free batches */
    int closed;                 /* the reader is done */
    int stop;                   /* some fn returned non-zero */
    store_scan_fn fn;
} scan_par;

typedef struct {
    scan_par *sp;
    void *ud;
} scan_worker;

static int batch_add(scan_batch *b, const char *k, size_t klen, const char *v, size_t vlen)
{
    size_t need = b->len + 2 * sizeof(size_t) + klen + vlen;
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : SCAN_BATCH_BYTES;
        char *nb;
        while (ncap < need)
            ncap *= 2;
        if ((nb = realloc(b->buf, ncap)) == NULL)
            return -1;
        b->buf = nb;
        b->cap = ncap;
    }
    memcpy(b->buf + b->len, &klen, sizeof(size_t));
    memcpy(b->buf + b->len + sizeof(size_t), &vlen, sizeof(size_t));
    memcpy(b->buf + b->len + 2 * sizeof(size_t), k, klen);
    memcpy(b->buf + b->len + 2 * sizeof(size_t) + klen, v, vlen);
    b->len = need;
    return 0;
}

/* Calls fn on each record of b until it returns non-zero; that value. */
static int batch_run(const scan_batch *b, store_scan_fn fn, void *ud)
{
    size_t at = 0, klen, vlen;
    while (at < b->len) {
        const char *k;
        memcpy(&klen, b->buf + at, sizeof(size_t));
        memcpy(&vlen, b->buf + at + sizeof(size_t), sizeof(size_t));
        k = b->buf + at + 2 * sizeof(size_t);
        if (fn(ud, k, klen, k + klen, vlen) != 0)
            return 1;
        at += 2 * sizeof(size_t) + klen + vlen;
    }
    return 0;
}

static void *scan_worker_main(void *arg)
{
    scan_worker *w = arg;
    scan_par *sp = w->sp;
    size_t i;
    int stop;
    for (;;) {
        pthread_mutex_lock(&sp->mu);
        while (sp->nfull == 0 && !sp->closed && !sp->stop)
            pthread_cond_wait(&sp->more, &sp->mu);
        if (sp->nfull == 0 || sp->stop) {
            pthread_mutex_unlock(&sp->mu);
            break;
        }
        i = sp->full[sp->fhead];
        sp->fhead = (sp->fhead + 1) % sp->npool;
        sp->nfull--;
        pthread_mutex_unlock(&sp->mu);
        stop = batch_run(&sp->pool[i], sp->fn, w->ud);
        pthread_mutex_lock(&sp->mu);
        sp->pool[i].len = 0;
        sp->free_[sp->nfree++] = i;
        if (stop) {
            sp->stop = 1;
            pthread_cond_broadcast(&sp->more);
        }
        pthread_cond_broadcast(&sp->room);
        pthread_mutex_unlock(&sp->mu);
    }
    return NULL;
}

/* A free batch for the reader (SIZE_MAX: the scan stopped). */
static size_t take_free(scan_par *sp)
{
    size_t i = SIZE_MAX;
    pthread_mutex_lock(&sp->mu);
    while (sp->nfree == 0 && !sp->stop)
        pthread_cond_wait(&sp->room, &sp->mu);
    if (!sp->stop)
        i = sp->free_[--sp->nfree];
    pthread_mutex_unlock(&sp->mu);
    return i;
}

static void queue_full(scan_par *sp, size_t i)
{
    pthread_mutex_lock(&sp->mu);
    sp->full[(sp->fhead + sp->nfull) % sp->npool] = i;
    sp->nfull++;
    pthread_cond_signal(&sp->more);
    pthread_mutex_unlock(&sp->mu);
}

static void scan_par_free(scan_par *sp)
{
    for (size_t i = 0; sp->pool != NULL && i < sp->npool; i++)
        free(sp->pool[i].buf);
    free(sp->pool);
    free(sp->full);
    free(sp->free_);
    pthread_cond_destroy(&sp->more);
    pthread_cond_destroy(&sp->room);
    pthread_mutex_destroy(&sp->mu);
}

rd_status store_scan_parallel(store *st, store_cf cf, const void *prefix, size_t plen,
                              size_t nthreads, store_scan_fn fn, void *const *uds, rd_error *err)
{
    scan_par sp;
    scan_worker *w = NULL;
    pthread_t *thr = NULL;
    size_t started = 0, cur = SIZE_MAX;
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    char *upper = NULL;
    rd_status rc = RD_OK;

    memset(&sp, 0, sizeof(sp));
    pthread_mutex_init(&sp.mu, NULL);
    pthread_cond_init(&sp.more, NULL);
    pthread_cond_init(&sp.room, NULL);
    sp.fn = fn;
    sp.npool = 2 * nthreads + 2;
    sp.pool = calloc(sp.npool, sizeof(*sp.pool));
    sp.full = calloc(sp.npool, sizeof(*sp.full));
    sp.free_ = calloc(sp.npool, sizeof(*sp.free_));
    w = calloc(nthreads, sizeof(*w));
    thr = calloc(nthreads, sizeof(*thr));
    if (nthreads == 0 || sp.pool == NULL || sp.full == NULL || sp.free_ == NULL || w == NULL ||
        thr == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < sp.npool; i++)
        sp.free_[sp.nfree++] = i;
    for (; started < nthreads; started++) {
        w[started].sp = &sp;
        w[started].ud = uds[started];
        if (pthread_create(&thr[started], NULL, scan_worker_main, &w[started]) != 0)
            break;
    }
    if (started == 0) { /* no thread: the plain scan, on this one */
        rc = store_scan(st, cf, prefix, plen, fn, uds[0], err);
        goto done;
    }
    if (store_iter_open(st, cf, prefix, plen, &ro, &it, &upper) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (plen > 0 && (klen < plen || memcmp(k, prefix, plen) != 0))
            break;
        if (cur == SIZE_MAX && (cur = take_free(&sp)) == SIZE_MAX)
            break; /* some fn stopped the scan */
        if (batch_add(&sp.pool[cur], k, klen, v, vlen) != 0) {
            rc = rd_fail(err, RD_ERR_INTERNAL, "out of memory");
            break;
        }
        if (sp.pool[cur].len >= SCAN_BATCH_BYTES) {
            queue_full(&sp, cur);
            cur = SIZE_MAX;
        }
    }
    if (cur != SIZE_MAX && rc == RD_OK && sp.pool[cur].len > 0)
        queue_full(&sp, cur);
    if (rc == RD_OK)
        rc = store_iter_status(it, err);
done:
    pthread_mutex_lock(&sp.mu);
    sp.closed = 1;
    if (rc != RD_OK)
        sp.stop = 1; /* drop what is queued */
    pthread_cond_broadcast(&sp.more);
    pthread_mutex_unlock(&sp.mu);
    for (size_t i = 0; i < started; i++)
        pthread_join(thr[i], NULL);
    if (it != NULL)
        rocksdb_iter_destroy(it);
    if (ro != NULL)
        rocksdb_readoptions_destroy(ro);
    free(upper);
    free(w);
    free(thr);
    scan_par_free(&sp);
    return rc;
}
