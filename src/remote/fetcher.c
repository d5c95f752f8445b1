/*
 * fetcher.c - the federation engine thread.
 *
 * Jobs arrive from worker threads through a locked queue and an event that
 * wakes this thread's loop.  Here, single-threaded: jobs with the same key
 * join the one in flight (coalescing); the circuit breaker of the job's
 * repository decides whether the upstream may be asked at all; answers are
 * validated whole, written to the cache, and every waiter's callback is
 * posted to its own event loop with event_base_once().
 *
 * A repository whose last upstream call failed is probed on a timer, not
 * only when a client asks: a tick looks for breakers whose probe is due
 * and sends each a catalog sync (a real upstream call that also refreshes
 * the mirrored catalog).  The breakers and their schedule are breakers.c.
 */
#include "fetcher.h"

#include <event2/event.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "breakers.h"
#include "catalog_sync.h"
#include "httpc.h"
#include "log.h"
#include "obs.h"
#include "registry.h"
#include "remote.h"
#include "remote_models.h"
#include "upstream_answer.h"
#include "util.h"

#define PROBE_TICK_MS 200 /* how often due probes are looked for */

typedef struct waiter {
    struct event_base *base;
    fetch_cb cb;
    void *arg;
    struct waiter *next;
} waiter;

/* A job with owned copies of its strings. */
typedef struct {
    fetch_kind kind;
    const resource_desc *res; /* never NULL */
    char *repository_id, *plugin_id, *endpoint, *token, *ca_file, *domain_id;
    json_t *plugin; /* TAGS */
    int force, verify;
    int64_t timeout_ms;
    int64_t submitted_ms; /* when a worker asked */
} job_copy;

typedef struct queued {
    job_copy job;
    waiter *w;
    struct queued *next;
} queued;

typedef struct inflight {
    fetcher *f;
    char key[600];
    job_copy job;
    waiter *waiters;
    conf_cache cs;
    char url[1024];
    char *body;
    char auth[600];
    const char *headers[5];
    catalog_sync *sync; /* CATALOG: the pages so far */
    int64_t sent_us;    /* when the last request went out (metrics) */
    struct inflight *next;
} inflight;

/* The outcome of a finished job, kept for coalescing late duplicates. */
#define RECENT_MAX 64
typedef struct {
    char key[600];
    int64_t completed_ms; /* after its cache write */
    rd_status rc;
    rd_error err;
} recent_outcome;

struct fetcher {
    app *a;
    pthread_t thread;
    int started;
    struct event_base *base;
    httpc *http;
    registry_client *registry; /* local plugins' versions (TAGS jobs) */
    struct event *wake;
    struct event *probe_tick; /* looks for due probes every PROBE_TICK_MS */
    pthread_mutex_t lock;     /* queue, stopping */
    queued *head, *tail;
    int stopping;
    breakers *breakers;                /* its own lock */
    inflight *inflight;                /* engine thread only */
    recent_outcome recent[RECENT_MAX]; /* engine thread only; a ring */
    size_t recent_next;
    atomic_ullong sent;
};

static char *dup_opt(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void job_copy_free(job_copy *j)
{
    free(j->repository_id);
    free(j->plugin_id);
    free(j->endpoint);
    free(j->token);
    free(j->ca_file);
    free(j->domain_id);
    json_decref(j->plugin);
}

int fetcher_is_offline(fetcher *f, const char *repository_id)
{
    return breakers_is_offline(f->breakers, repository_id);
}

/* ---- delivery ------------------------------------------------------------- */

typedef struct {
    fetch_cb cb;
    void *arg;
    fetch_result res;
} delivery;

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    delivery *d = arg;
    (void)fd;
    (void)what;
    d->cb(&d->res, d->arg);
    json_decref(d->res.value);
    free(d);
}

/* Posts res to every waiter with a callback and frees the waiters. */
static void deliver_all(waiter *w, const fetch_result *res)
{
    static const struct timeval now = {0, 0};
    while (w != NULL) {
        waiter *next = w->next;
        if (w->cb != NULL) {
            delivery *d = calloc(1, sizeof(*d));
            if (d != NULL) {
                d->cb = w->cb;
                d->arg = w->arg;
                d->res = *res;
                d->res.value = res->value != NULL ? json_deep_copy(res->value) : NULL;
                if (event_base_once(w->base, -1, EV_TIMEOUT, deliver_cb, d, &now) != 0) {
                    LOG_ERROR("fetcher: cannot deliver a result");
                    json_decref(d->res.value);
                    free(d);
                }
            }
        }
        free(w);
        w = next;
    }
}

/* ---- results -------------------------------------------------------------- */

/* Persists the upstream status after an attempt at repository_id. */
static void record_status(fetcher *f, const char *repository_id, const char *state,
                          const rd_error *failure, int catalog_count, const catalog_sync *sync)
{
    const resource_desc *res = sync != NULL ? catalog_sync_resource(sync) : &resource_plugin;
    store *st = f->a->st;
    json_t *status = NULL;
    rd_error err;
    char now[32];
    if (remote_get(st, repository_id, &status, &err) != RD_OK)
        return; /* deregistered meanwhile */
    json_decref(status);
    status = NULL;
    if (remote_status_get(st, repository_id, &status, &err) != RD_OK)
        status = json_pack("{s:n, s:n, s:i}", "last_sync_at", "last_error", "cached_plugins", 0);
    if (status == NULL)
        return;
    json_object_set_new(status, "state", json_string(state));
    if (failure != NULL) {
        json_object_set_new(status, "last_error", json_string(failure->message));
    } else {
        json_object_set_new(status, "last_error", json_null());
    }
    if (catalog_count >= 0 && res == &resource_plugin) { /* last_sync_at: the plugins' */
        util_now_iso8601(now, sizeof(now));
        json_object_set_new(status, "last_sync_at", json_string(now));
    }
    if (catalog_count >= 0)
        json_object_set_new(status, res->status_count_key, json_integer(catalog_count));
    if (catalog_count >= 0 && res == &resource_plugin) {
        json_object_set_new(
            status, "skipped_records",
            json_integer(sync != NULL ? (json_int_t)catalog_sync_skipped(sync) : 0));
        json_object_set_new(status, "last_skip_reason",
                            sync != NULL && catalog_sync_skipped(sync) > 0
                                ? json_string(catalog_sync_last_skip(sync))
                                : json_null());
    } else if (catalog_count >= 0 && sync != NULL) {
        /* another resource's skips: counted apart, the reason shared */
        char key[64];
        snprintf(key, sizeof(key), "skipped_%s", res->status_count_key + strlen("cached_"));
        json_object_set_new(status, key, json_integer((json_int_t)catalog_sync_skipped(sync)));
        if (catalog_sync_skipped(sync) > 0)
            json_object_set_new(status, "last_skip_reason",
                                json_string(catalog_sync_last_skip(sync)));
    }
    if (remote_status_put(st, repository_id, status, &err) != RD_OK)
        LOG_WARN("fetcher: cannot record the status of %s: %s", repository_id, err.message);
    json_decref(status);
}

static const char *kind_name(fetch_kind k)
{
    switch (k) {
    case FETCH_CATALOG:
        return "catalog";
    case FETCH_PLUGIN:
        return "plugin";
    case FETCH_VERSIONS:
        return "versions";
    case FETCH_TAGS:
        return "tags";
    default:
        return "probe";
    }
}

/* What a job is about, for log lines. */
static const char *job_subject(const job_copy *j)
{
    if (j->repository_id != NULL)
        return j->repository_id;
    if (j->endpoint != NULL)
        return j->endpoint;
    return j->domain_id != NULL ? j->domain_id : "-";
}

static rd_status bad_shape(const inflight *in, const char *why, rd_error *err)
{
    const char *what = in->job.repository_id != NULL ? in->job.repository_id : in->job.endpoint;
    return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                   "Bad upstream response. (repository = %s, reason = %s)", what, why);
}

static int valid_repository_id(const char *id)
{
    if (id == NULL || strlen(id) != 17 || strncmp(id, "repo-", 5) != 0)
        return 0;
    for (const char *p = id + 5; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* apply_answer for one kind of job; rec is the repository record (NULL for
 * a probe). */
static rd_status apply_kind(inflight *in, const json_t *rec, json_t *body, json_t *results,
                            int64_t now, json_t **value, int *count, rd_error *err)
{
    store *st = in->f->a->st;
    size_t i;
    json_t *p;
    rd_status rc;

    switch (in->job.kind) {
    case FETCH_CATALOG: /* the last page arrived: swap the new catalog in */
        rc = catalog_sync_commit_models(in->sync, app_models(in->f->a, in->job.res), rec, now, err);
        if (rc == RD_OK) {
            size_t skipped = catalog_sync_skipped(in->sync);
            *count = (int)catalog_sync_count(in->sync);
            /* "plugins", "dashboard_templates": the status key without "cached_" */
            *value = json_pack("{s:i}", in->job.res->status_count_key + strlen("cached_"), *count);
            if (skipped > 0)
                LOG_WARN("fetcher: catalog %s: skipped %zu invalid record%s of %zu (first: %s)",
                         in->job.repository_id, skipped, skipped == 1 ? "" : "s",
                         skipped + (size_t)*count, catalog_sync_first_skip(in->sync));
        }
        return rc;
    case FETCH_PLUGIN:
        rc = in->job.res->check_upstream(body, err);
        if (rc != RD_OK)
            return rc;
        if (strcmp(json_string_value(json_object_get(body, in->job.res->id_field)),
                   in->job.plugin_id) != 0)
            return bad_shape(in, "another record was returned", err);
        rc = remote_item_put(in->job.res, st, in->job.repository_id, body, now, err);
        if (rc == RD_OK) {
            remote_models_put_at(app_models(in->f->a, in->job.res), rec, body, now);
            *value = json_incref(body);
        }
        return rc;
    case FETCH_VERSIONS:
        if (!json_is_array(results))
            return bad_shape(in, "no results list", err);
        json_array_foreach(results, i, p)
        {
            if (!json_is_string(p))
                return bad_shape(in, "a version is not a string", err);
        }
        rc = remote_versions_put(st, in->job.repository_id, in->job.plugin_id, results, now, err);
        if (rc == RD_OK)
            *value = json_incref(results);
        return rc;
    case FETCH_PROBE:
    default:
        p = json_array_get(results, 0);
        if (!json_is_object(p) ||
            !valid_repository_id(json_string_value(json_object_get(p, "repository_id"))) ||
            !json_is_string(json_object_get(p, "name")))
            return bad_shape(in, "no local repository in the answer", err);
        *value = json_incref(p);
        return RD_OK;
    }
}

/* Validates a 200 answer and writes it to the cache; *value receives what
 * waiters get (new reference). */
static rd_status apply_answer(inflight *in, json_t *body, json_t **value, int *count, rd_error *err)
{
    store *st = in->f->a->st;
    json_t *results = json_object_get(body, "results");
    int64_t now = util_now_ms();
    json_t *rec = NULL;
    rd_status rc;

    if (in->job.kind != FETCH_PROBE) {
        rd_status gone = remote_get(st, in->job.repository_id, &rec, err);
        if (gone != RD_OK) /* deregistered while the upstream answered: keep nothing */
            return rd_fail(err, RD_ERR_UPSTREAM_UNAVAILABLE,
                           "Upstream unavailable. (repository = %s, reason = deregistered)",
                           in->job.repository_id);
    }
    rc = apply_kind(in, rec, body, results, now, value, count, err);
    json_decref(rec);
    return rc;
}

static void inflight_free(inflight *in)
{
    job_copy_free(&in->job);
    catalog_sync_free(in->sync);
    free(in->body);
    free(in);
}

/* Removes in from the in-flight list. */
static void inflight_unlink(fetcher *f, inflight *in)
{
    for (inflight **pp = &f->inflight; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == in) {
            *pp = in->next;
            break;
        }
    }
}

/* Finishes a job: breaker, status, waiters. */
static void complete(inflight *in, rd_status rc, const rd_error *err, json_t *value, int count,
                     int upstream_asked)
{
    fetcher *f = in->f;
    fetch_result res;
    memset(&res, 0, sizeof(res));
    res.rc = rc;
    if (err != NULL && rc != RD_OK && rc != RD_ERR_NOT_FOUND)
        res.err = *err;
    res.err.code = rc;
    res.value = value;
    if (upstream_asked && in->job.repository_id != NULL) {
        /* an answer about one plugin's registry means the upstream is up */
        int success = rc == RD_OK || rc == RD_ERR_NOT_FOUND || rc == RD_ERR_INTERNAL ||
                      rc == RD_ERR_REGISTRY_UNAVAILABLE || rc == RD_ERR_REGISTRY_TIMEOUT ||
                      rc == RD_ERR_REGISTRY_BAD_RESPONSE || rc == RD_ERR_NO_IMAGE_IN_REGISTRY ||
                      rc == RD_ERR_INVALID_PARAMETER;
        const char *state = breakers_record(f->breakers, in->job.repository_id, success);
        record_status(f, in->job.repository_id, state, success ? NULL : &res.err,
                      rc == RD_OK && in->job.kind == FETCH_CATALOG ? count : -1, in->sync);
    }
    if (rc != RD_OK && rc != RD_ERR_NOT_FOUND)
        LOG_WARN("fetcher: %s %s%s%s: %s", kind_name(in->job.kind), job_subject(&in->job),
                 in->job.plugin_id ? " " : "", in->job.plugin_id ? in->job.plugin_id : "",
                 res.err.message);
    inflight_unlink(f, in);
    if (in->job.kind != FETCH_PROBE) {
        recent_outcome *r = &f->recent[f->recent_next];
        f->recent_next = (f->recent_next + 1) % RECENT_MAX;
        snprintf(r->key, sizeof(r->key), "%s", in->key);
        r->completed_ms = util_now_ms();
        r->rc = rc;
        r->err = res.err;
    }
    deliver_all(in->waiters, &res);
    json_decref(value);
    inflight_free(in);
}

static rd_status ask_next_page(inflight *in, rd_error *err);

static void on_http_done(const httpc_response *resp, void *arg)
{
    inflight *in = arg;
    rd_error err = {RD_OK, ""};
    json_t *body = NULL, *value = NULL;
    int count = -1, more = 0;
    int64_t took_us = util_monotonic_us() - in->sent_us;
    rd_status rc;

    if (resp->result != HTTPC_OK) {
        rc = upstream_answer_transport(in->job.repository_id != NULL ? in->job.repository_id
                                                                     : in->job.endpoint,
                                       resp->result, resp->error, in->cs.timeout_ms, &err);
    } else {
        body = json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, NULL);
        if (resp->status == 404 && in->job.kind == FETCH_CATALOG &&
            in->job.res->upstream_optional && catalog_sync_pages(in->sync) == 0) {
            /* an upstream without this resource (an older server): an
             * empty catalog, and the upstream is fine */
            LOG_INFO("fetcher: %s has no %s; its mirrored catalog of them is empty",
                     in->job.repository_id, in->job.res->plural);
            rc = RD_OK;
        } else if (resp->status == 404 && in->job.kind == FETCH_PLUGIN &&
                   in->job.res->upstream_optional) {
            rc = RD_ERR_NOT_FOUND; /* not there, or no such route upstream */
        } else if (resp->status != 200)
            rc = upstream_answer_status(
                in->job.kind, in->job.repository_id ? in->job.repository_id : in->job.endpoint,
                resp->status, body, in->auth[0] ? in->auth + strlen("Bearer ") : NULL, &err);
        else if (!json_is_object(body))
            rc = bad_shape(in, "not a JSON object", &err);
        else if (in->job.kind == FETCH_CATALOG)
            rc = catalog_sync_page(in->sync, body, &more, &err);
        else
            rc = RD_OK;
        if (rc == RD_OK && more)
            rc = ask_next_page(in, &err);
        else if (rc == RD_OK)
            rc = apply_answer(in, body, &value, &count, &err);
        if (rc == RD_ERR_NOT_FOUND && in->job.kind == FETCH_PLUGIN) {
            rd_error e2;
            remote_item_negative_put(in->job.res, in->f->a->st, in->job.repository_id,
                                     in->job.plugin_id, util_now_ms(), &e2);
        }
    }
    json_decref(body);
    obs_upstream_observe(in->job.repository_id, obs_up_result_of(rc), took_us);
    if (rc != RD_OK || !more) /* else the next page is on its way */
        complete(in, rc, &err, value, count, 1);
}

static void on_tags_done(rd_status rc, const rd_error *err, json_t *tags, void *arg)
{
    inflight *in = arg;
    rd_error e2 = {RD_OK, ""};
    if (rc == RD_OK && remote_tags_put(in->f->a->st, in->job.domain_id, in->job.plugin_id, tags,
                                       util_now_ms(), &e2) != RD_OK)
        LOG_WARN("fetcher: cannot cache the versions of %s: %s", in->job.plugin_id, e2.message);
    complete(in, rc, err, rc == RD_OK ? json_incref(tags) : NULL, -1, 0);
}

/* Reads the tags of a local plugin's image from its registry. */
static void start_tags(fetcher *f, inflight *in)
{
    const json_t *p = in->job.plugin;
    registry_list_tags(f->registry, json_string_value(json_object_get(p, "registry_type")),
                       json_string_value(json_object_get(p, "registry_url")),
                       json_object_get(p, "registry_config"),
                       json_string_value(json_object_get(p, "image")), on_tags_done, in);
}

/* ---- starting a job ------------------------------------------------------- */

/* Sends in's request (in->body) upstream; on_http_done follows. */
static void send_request(inflight *in)
{
    httpc_request_opts o;
    httpc_request_init(&o);
    o.method = "POST";
    o.url = in->url;
    o.headers = in->headers;
    o.body = in->body;
    o.body_len = in->body != NULL ? strlen(in->body) : 0;
    o.timeout_ms = (int)in->cs.timeout_ms;
    o.max_response_bytes = (size_t)in->cs.max_response_bytes;
    o.ca_file = in->job.ca_file;
    o.verify = in->job.verify;
    atomic_fetch_add(&in->f->sent, 1);
    in->sent_us = util_monotonic_us();
    LOG_DEBUG("fetcher: %s %s %s", kind_name(in->job.kind), in->url, in->body ? in->body : "");
    httpc_request(in->f->http, &o, on_http_done, in);
}

/* Asks for the next page of a catalog sync. */
static rd_status ask_next_page(inflight *in, rd_error *err)
{
    json_t *body = catalog_sync_next_request(in->sync);
    free(in->body);
    in->body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (in->body == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    send_request(in);
    return RD_OK;
}

static const char *job_key(const job_copy *j, char *buf, size_t size)
{
    char digest[65] = "";
    const char *image =
        j->plugin != NULL ? json_string_value(json_object_get(j->plugin, "image")) : NULL;
    if (j->kind == FETCH_PROBE) {
        /* probes share an answer only when they would connect the same way */
        char material[2048];
        snprintf(material, sizeof(material), "%s|%s|%d|%lld", j->token ? j->token : "",
                 j->ca_file ? j->ca_file : "", j->verify, (long long)j->timeout_ms);
        util_sha256_hex(material, strlen(material), digest);
    }
    snprintf(buf, size, "%d|%s|%s|%s|%s|%s|%s|%s", (int)j->kind, j->res->route,
             j->repository_id ? j->repository_id : "", j->plugin_id ? j->plugin_id : "",
             j->kind == FETCH_PROBE ? j->endpoint : "", j->domain_id ? j->domain_id : "",
             image ? image : "", digest);
    return buf;
}

/* Fills in the request of in from the repository record (or the probe job). */
static rd_status prepare(inflight *in, rd_error *err)
{
    fetcher *f = in->f;
    json_t *rec = NULL, *body = NULL;
    const char *endpoint, *token = NULL, *path = NULL;
    char route[128];
    rd_status rc = RD_OK;

    remote_cache_settings(NULL, &f->a->conf->remote_defaults, &in->cs);
    if (in->job.kind == FETCH_PROBE) {
        endpoint = in->job.endpoint;
        token = in->job.token;
        if (in->job.timeout_ms > 0)
            in->cs.timeout_ms = in->job.timeout_ms;
        path = "/repository/v1/repository/list";
        body = json_pack("{s:s}", "repository_type", "local");
    } else {
        json_t *cfg;
        rc = remote_get(f->a->st, in->job.repository_id, &rec, err);
        if (rc == RD_ERR_NOT_FOUND)
            rc = rd_fail(err, RD_ERR_NOT_FOUND, "Value not found. (repository_id = %s)",
                         in->job.repository_id);
        if (rc != RD_OK)
            goto done;
        remote_cache_settings(rec, &f->a->conf->remote_defaults, &in->cs);
        endpoint = json_string_value(json_object_get(rec, "endpoint"));
        cfg = json_object_get(rec, "upstream_config");
        token = json_string_value(json_object_get(cfg, "token"));
        free(in->job.ca_file);
        in->job.ca_file = dup_opt(json_string_value(json_object_get(cfg, "ca_file")));
        in->job.verify = !json_is_false(json_object_get(cfg, "verify"));
        if (in->job.kind == FETCH_CATALOG) {
            snprintf(route, sizeof(route), "/repository/v1/%s/list", in->job.res->route);
            rd_error e2;
            in->sync = catalog_sync_new_res(in->job.res, f->a->st, in->job.repository_id,
                                            in->cs.sync_page_size);
            /* the new read model is built page by page; else from the store */
            if (in->sync != NULL &&
                catalog_sync_use_models(in->sync, app_models(f->a, in->job.res), rec, &e2) != RD_OK)
                LOG_WARN("fetcher: catalog %s: %s", in->job.repository_id, e2.message);
            body = in->sync != NULL ? catalog_sync_next_request(in->sync) : NULL;
        } else {
            snprintf(route, sizeof(route), "/repository/v1/%s/%s", in->job.res->route,
                     in->job.kind == FETCH_PLUGIN ? "get" : "get-versions");
            body = json_pack("{s:s, s:s}", in->job.res->id_field, in->job.plugin_id,
                             "repository_id", in->job.repository_id);
        }
        path = route;
    }
    if (endpoint == NULL || body == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "Internal error. (reason = incomplete repository)");
        goto done;
    }
    snprintf(in->url, sizeof(in->url), "%s%s", endpoint, path);
    in->body = json_dumps(body, JSON_COMPACT);
    in->headers[0] = "Content-Type";
    in->headers[1] = "application/json";
    in->headers[2] = NULL;
    if (token != NULL && token[0] != '\0') {
        snprintf(in->auth, sizeof(in->auth), "Bearer %s", token);
        in->headers[2] = "Authorization";
        in->headers[3] = in->auth;
        in->headers[4] = NULL;
    }
done:
    json_decref(rec);
    json_decref(body);
    return rc;
}

/* A miss judged by a worker just before a fetch of the same key completed
 * reaches this thread after that fetch has left the in-flight list.  Every
 * completion is remembered for a while (after its cache write), so such a
 * job gets that outcome instead of a second upstream request: identical
 * misses cost one request, failures included.  Returns 1 when q was
 * answered (and freed). */
static int answered_meanwhile(fetcher *f, queued *q)
{
    store *st = f->a->st;
    job_copy *j = &q->job;
    const recent_outcome *r = NULL;
    json_t *value = NULL;
    int64_t at = 0;
    char key[600];
    rd_error e;
    fetch_result res;

    if (j->force || j->kind == FETCH_PROBE)
        return 0;
    job_key(j, key, sizeof(key));
    for (size_t i = 0; i < RECENT_MAX; i++) {
        if (f->recent[i].completed_ms >= j->submitted_ms && strcmp(f->recent[i].key, key) == 0)
            r = &f->recent[i];
    }
    if (r == NULL)
        return 0;
    memset(&res, 0, sizeof(res));
    res.rc = r->rc;
    res.err = r->err;
    if (r->rc == RD_OK) {
        rd_status rc = RD_ERR_NOT_FOUND;
        switch (j->kind) {
        case FETCH_CATALOG:
            rc = remote_res_catalog_age(j->res, st, j->repository_id, &at, &e);
            value = json_object();
            break;
        case FETCH_PLUGIN:
            rc = remote_item_get(j->res, st, j->repository_id, j->plugin_id, &value, &e);
            break;
        case FETCH_TAGS:
            rc = remote_tags_get(st, j->domain_id, j->plugin_id, &value, &at, &e);
            break;
        case FETCH_VERSIONS:
            rc = remote_versions_get(st, j->repository_id, j->plugin_id, &value, &at, &e);
            break;
        default:
            break;
        }
        if (rc != RD_OK) { /* gone meanwhile (e.g. deregistered): ask again */
            json_decref(value);
            return 0;
        }
    }
    res.value = value;
    deliver_all(q->w, &res);
    json_decref(value);
    job_copy_free(j);
    free(q);
    return 1;
}

static void start_job(fetcher *f, queued *q)
{
    char key[600];
    inflight *in;
    rd_error err = {RD_OK, ""};
    int64_t wait_ms = 0;

    job_key(&q->job, key, sizeof(key));
    for (in = f->inflight; in != NULL; in = in->next) {
        if (strcmp(in->key, key) == 0) { /* coalesce */
            q->w->next = in->waiters;
            in->waiters = q->w;
            job_copy_free(&q->job);
            free(q);
            return;
        }
    }
    if (answered_meanwhile(f, q))
        return;
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        fetch_result res = {RD_ERR_INTERNAL, {RD_ERR_INTERNAL, "Internal error."}, NULL};
        deliver_all(q->w, &res);
        job_copy_free(&q->job);
        free(q);
        return;
    }
    in->f = f;
    snprintf(in->key, sizeof(in->key), "%s", key);
    in->job = q->job;
    in->waiters = q->w;
    free(q);
    in->next = f->inflight;
    f->inflight = in;

    if (in->job.kind == FETCH_TAGS) { /* counted by the registry client */
        start_tags(f, in);
        return;
    }
    if (prepare(in, &err) != RD_OK) {
        complete(in, err.code, &err, NULL, -1, 0);
        return;
    }
    if (in->job.repository_id != NULL &&
        !breakers_admit(f->breakers, in->job.repository_id, in->job.force, &wait_ms)) {
        rd_fail(&err, RD_ERR_UPSTREAM_UNAVAILABLE,
                "Upstream unavailable. (repository = %s, reason = offline, next probe in %lld "
                "ms)",
                in->job.repository_id, (long long)wait_ms);
        complete(in, err.code, &err, NULL, -1, 0);
        return;
    }
    send_request(in);
}

/* Drains the submission queue (engine thread). */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    fetcher *f = arg;
    queued *q;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&f->lock);
    q = f->head;
    f->head = f->tail = NULL;
    pthread_mutex_unlock(&f->lock);
    while (q != NULL) {
        queued *next = q->next;
        q->next = NULL;
        start_job(f, q);
        q = next;
    }
}

/* ---- timed probes ---------------------------------------------------------- */

/* Sends a catalog sync to the upstream of repository_id as its probe. */
static void send_probe(fetcher *f, const char *repository_id)
{
    queued *q = calloc(1, sizeof(*q));
    waiter *w = calloc(1, sizeof(*w));
    if (q == NULL || w == NULL || (q->job.repository_id = strdup(repository_id)) == NULL) {
        free(q);
        free(w);
        return;
    }
    q->job.kind = FETCH_CATALOG;
    q->job.res = &resource_plugin;
    q->job.force = 1; /* the tick already judged the probe due */
    q->job.submitted_ms = util_now_ms();
    q->w = w; /* no callback: the outcome goes to the breaker and the status */
    LOG_DEBUG("fetcher: probing the upstream of %s", repository_id);
    start_job(f, q);
}

/* Looks for breakers whose probe is due and probes them (engine thread).
 * A breaker of a repository deregistered meanwhile is dropped. */
static void on_probe_tick(evutil_socket_t fd, short what, void *arg)
{
    fetcher *f = arg;
    char due[16][BREAKERS_ID_MAX];
    size_t ndue = breakers_take_due(f->breakers, due, sizeof(due) / sizeof(due[0]));
    (void)fd;
    (void)what;
    for (size_t i = 0; i < ndue; i++) {
        json_t *rec = NULL;
        rd_error e;
        rd_status rc = remote_get(f->a->st, due[i], &rec, &e);
        json_decref(rec);
        if (rc == RD_OK)
            send_probe(f, due[i]);
        else if (rc == RD_ERR_NOT_FOUND)
            breakers_drop(f->breakers, due[i]);
    }
}

/* Restores the breakers of repositories that were degraded or offline when
 * the server stopped, so their probes run without client traffic. */
static void seed_breakers(fetcher *f)
{
    json_t *recs = NULL, *rec;
    size_t i;
    rd_error e;
    if (remote_list(f->a->st, &recs, &e) != RD_OK)
        return;
    json_array_foreach(recs, i, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "repository_id"));
        json_t *status = NULL;
        const char *state;
        if (id == NULL || remote_status_get(f->a->st, id, &status, &e) != RD_OK)
            continue;
        state = json_string_value(json_object_get(status, "state"));
        if (state != NULL)
            breakers_restore(f->breakers, id, state);
        json_decref(status);
    }
    json_decref(recs);
}

static void *engine_main(void *arg)
{
    fetcher *f = arg;
    event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY); /* until fetcher_cancel */
    return NULL;
}

rd_status fetcher_start(app *a, fetcher **out, rd_error *err)
{
    static const struct timeval tick = {0, PROBE_TICK_MS * 1000};
    fetcher *f = calloc(1, sizeof(*f));
    *out = NULL;
    if (f == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "out of memory");
    f->a = a;
    pthread_mutex_init(&f->lock, NULL);
    f->breakers = breakers_new();
    f->base = event_base_new();
    f->http = f->base != NULL ? httpc_new(f->base) : NULL;
    f->registry = f->http != NULL ? registry_client_new(f->http, a->conf) : NULL;
    f->wake = f->base != NULL ? event_new(f->base, -1, EV_PERSIST, on_wake, f) : NULL;
    f->probe_tick = f->base != NULL ? event_new(f->base, -1, EV_PERSIST, on_probe_tick, f) : NULL;
    if (f->breakers == NULL || f->registry == NULL || f->wake == NULL || f->probe_tick == NULL ||
        event_add(f->wake, NULL) != 0 || event_add(f->probe_tick, &tick) != 0) {
        fetcher_free(f);
        return rd_fail(err, RD_ERR_INTERNAL, "cannot start the upstream engine");
    }
    seed_breakers(f);
    if (pthread_create(&f->thread, NULL, engine_main, f) != 0) {
        fetcher_free(f);
        return rd_fail(err, RD_ERR_INTERNAL, "cannot start the upstream engine thread");
    }
    f->started = 1;
    *out = f;
    return RD_OK;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    fetcher *f = arg;
    (void)fd;
    (void)what;
    event_base_loopexit(f->base, NULL);
}

/* Answers a job that will never run (the engine is stopping) and frees it. */
static void answer_shutting_down(queued *q)
{
    fetch_result res = {
        RD_ERR_UPSTREAM_UNAVAILABLE,
        {RD_ERR_UPSTREAM_UNAVAILABLE, "Upstream unavailable. (reason = shutting down)"},
        NULL};
    deliver_all(q->w, &res);
    job_copy_free(&q->job);
    free(q);
}

void fetcher_cancel(fetcher *f)
{
    static const struct timeval now = {0, 0};
    queued *q;
    int started;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    q = f->head;
    f->head = f->tail = NULL;
    started = f->started;
    f->started = 0;
    pthread_mutex_unlock(&f->lock);
    if (started) {
        event_base_once(f->base, -1, EV_TIMEOUT, stop_cb, f, &now);
        pthread_join(f->thread, NULL);
    }
    if (f->probe_tick != NULL)
        event_del(f->probe_tick); /* no probe starts on the loops below */
    /* The loop is gone: free the clients (their pending requests complete
     * with "cancelled" and reach their waiters), then whatever was queued. */
    if (f->registry != NULL)
        registry_client_free(f->registry);
    f->registry = NULL;
    if (f->http != NULL)
        httpc_free(f->http);
    f->http = NULL;
    /* Connections freed while a name lookup was pending are finalized by
     * deferred callbacks: let them run. */
    for (int i = 0; i < 3; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    while (q != NULL) {
        queued *next = q->next;
        answer_shutting_down(q);
        q = next;
    }
}

void fetcher_free(fetcher *f)
{
    if (f == NULL)
        return;
    fetcher_cancel(f);
    if (f->wake != NULL)
        event_free(f->wake);
    if (f->probe_tick != NULL)
        event_free(f->probe_tick);
    if (f->base != NULL)
        event_base_free(f->base);
    breakers_free(f->breakers);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void fetcher_submit(fetcher *f, const fetch_job *job, struct event_base *reply_base, fetch_cb cb,
                    void *arg)
{
    queued *q = calloc(1, sizeof(*q));
    waiter *w = calloc(1, sizeof(*w));
    int stopping;
    if (q == NULL || w == NULL) {
        free(q);
        free(w);
        LOG_ERROR("fetcher: out of memory");
        return;
    }
    q->job.kind = job->kind;
    q->job.res = job->res != NULL ? job->res : &resource_plugin;
    q->job.repository_id = dup_opt(job->repository_id);
    q->job.plugin_id = dup_opt(job->plugin_id);
    q->job.endpoint = dup_opt(job->endpoint);
    q->job.token = dup_opt(job->token);
    q->job.ca_file = dup_opt(job->ca_file);
    q->job.force = job->force;
    q->job.verify = job->verify;
    q->job.timeout_ms = job->timeout_ms;
    q->job.domain_id = dup_opt(job->domain_id);
    q->job.plugin = job->plugin != NULL ? json_deep_copy(job->plugin) : NULL;
    q->job.submitted_ms = job->seen_at_ms > 0 ? job->seen_at_ms : util_now_ms();
    w->base = reply_base;
    w->cb = cb;
    w->arg = arg;
    q->w = w;
    pthread_mutex_lock(&f->lock);
    stopping = f->stopping;
    if (!stopping) {
        if (f->tail != NULL)
            f->tail->next = q;
        else
            f->head = q;
        f->tail = q;
    }
    pthread_mutex_unlock(&f->lock);
    if (stopping) {
        answer_shutting_down(q);
        return;
    }
    event_active(f->wake, EV_READ, 0);
}

unsigned long long fetcher_requests_sent(fetcher *f)
{
    return atomic_load(&f->sent);
}
