/*
 * mirror.c - adopting remote repositories from the API and the config file.
 */
#include "mirror.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fetcher.h"
#include "log.h"
#include "remote.h"

int mirror_name_taken(app *a, const char *name, const char *except_id)
{
    json_t *recs = NULL, *rec;
    size_t i;
    rd_error e;
    int taken =
        strcmp(json_string_value(json_object_get(catalog_local_info(a->cat), "name")), name) == 0;
    if (!taken && remote_list(a->st, &recs, &e) == RD_OK) {
        json_array_foreach(recs, i, rec)
        {
            const char *id = json_string_value(json_object_get(rec, "repository_id"));
            if (except_id != NULL && strcmp(id, except_id) == 0)
                continue;
            if (strcmp(json_string_value(json_object_get(rec, "name")), name) == 0)
                taken = 1;
        }
    }
    json_decref(recs);
    return taken;
}

/* Serialises the check-then-store of adoptions (API workers and the
 * config bootstrap on the main thread). */
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;

static rd_status adopt_locked(app *a, json_t *record, const json_t *probe, rd_error *err);

rd_status mirror_adopt(app *a, json_t *record, const json_t *probe, rd_error *err)
{
    rd_status rc;
    pthread_mutex_lock(&adopt_lock);
    rc = adopt_locked(a, record, probe, err);
    pthread_mutex_unlock(&adopt_lock);
    return rc;
}

static rd_status adopt_locked(app *a, json_t *record, const json_t *probe, rd_error *err)
{
    const char *id = json_string_value(json_object_get(probe, "repository_id"));
    const char *name = json_string_value(json_object_get(record, "name"));
    json_t *existing = NULL;
    fetch_job job;
    rd_status rc;

    if (id == NULL || name == NULL)
        return rd_fail(err, RD_ERR_UPSTREAM_BAD_RESPONSE,
                       "Bad upstream response. (reason = no local repository)");
    if (strcmp(id, catalog_local_id(a->cat)) == 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "Invalid parameter. (key = endpoint, reason = it is this server)");
    if (remote_get(a->st, id, &existing, err) == RD_OK) {
        rc = rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES,
                     "Duplicated value. (key = repository_id, value = %s, name = %s)", id,
                     json_string_value(json_object_get(existing, "name")));
        json_decref(existing);
        return rc;
    }
    if (mirror_name_taken(a, name, NULL))
        return rd_fail(err, RD_ERR_SAVE_UNIQUE_VALUES, "Duplicated value. (key = name, value = %s)",
                       name);
    json_object_set_new(record, "repository_id", json_string(id));
    rc = remote_put(a->st, record, err);
    if (rc != RD_OK)
        return rc;
    if (json_is_false(json_object_get(json_object_get(record, "upstream_config"), "verify")))
        LOG_WARN("repository %s (%s): TLS verification of the upstream is off", id,
                 json_string_value(json_object_get(record, "endpoint")));
    LOG_INFO("registered remote repository %s (%s) at %s", id, name,
             json_string_value(json_object_get(record, "endpoint")));
    memset(&job, 0, sizeof(job));
    job.kind = FETCH_CATALOG;
    job.repository_id = id;
    fetcher_submit(a->fetcher, &job, NULL, NULL, NULL); /* fill the mirror in the background */
    job.res = &resource_dashboard;
    fetcher_submit(a->fetcher, &job, NULL, NULL, NULL);
    return RD_OK;
}

/* ---- config "remotes" ------------------------------------------------------ */

/* The config file's "remotes" are the truth for the records they created
 * (marked "managed_by": "config"): missing ones are registered (retried
 * every 30 s while the upstream does not answer), changed ones updated in
 * place, and records whose entry left the file are handed over to the API
 * (the mark is dropped).  Records registered through the API are never
 * touched.  Everything here runs on the main thread. */

#define MANAGED_KEY   "managed_by"
#define MANAGED_VALUE "config"

typedef struct pending_remote {
    app *a;
    struct event_base *base;
    json_t *entry; /* the config entry (new reference) */
    struct event *retry;
    int in_flight; /* a probe is out: its callback frees a dropped entry */
    int dropped;   /* no longer wanted (not in pending_list any more) */
    struct pending_remote *next;
} pending_remote;

static pending_remote *pending_list;

int mirror_config_managed(const json_t *record)
{
    const char *v = json_string_value(json_object_get(record, MANAGED_KEY));
    return v != NULL && strcmp(v, MANAGED_VALUE) == 0;
}

static void pending_free(pending_remote *p)
{
    if (p->retry != NULL)
        event_free(p->retry);
    json_decref(p->entry);
    free(p);
}

/* Takes p out of pending_list; frees it unless its probe is still out. */
static void pending_drop(pending_remote *p)
{
    for (pending_remote **pp = &pending_list; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    p->dropped = 1;
    if (!p->in_flight)
        pending_free(p);
}

static pending_remote *pending_find(const char *name)
{
    for (pending_remote *p = pending_list; p != NULL; p = p->next)
        if (strcmp(json_string_value(json_object_get(p->entry, "name")), name) == 0)
            return p;
    return NULL;
}

static void bootstrap_try(pending_remote *p);

static void bootstrap_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bootstrap_try(arg);
}

static void bootstrap_probed(const fetch_result *res, void *arg)
{
    pending_remote *p = arg;
    const char *name = json_string_value(json_object_get(p->entry, "name"));
    json_int_t priority = 100;
    json_t *rec;
    rd_error err = {RD_OK, ""};
    rd_status rc = res->rc;

    p->in_flight = 0;
    if (p->dropped) {
        pending_free(p);
        return;
    }
    if (rc == RD_OK) {
        remote_check_priority(p->entry, &priority, &err);
        rec = remote_new_record(name, json_string_value(json_object_get(p->entry, "endpoint")),
                                priority, json_object_get(p->entry, "upstream"),
                                json_object_get(p->entry, "cache"));
        json_object_set_new(rec, MANAGED_KEY, json_string(MANAGED_VALUE));
        rc = mirror_adopt(p->a, rec, res->value, &err);
        json_decref(rec);
        if (rc == RD_OK || rc == RD_ERR_SAVE_UNIQUE_VALUES || rc == RD_ERR_INVALID_PARAMETER) {
            if (rc != RD_OK)
                LOG_ERROR("config remotes: %s: %s", name, err.message);
            pending_drop(p); /* done with this entry */
            return;
        }
    } else {
        err = res->err;
    }
    LOG_WARN("config remotes: %s: %s; retrying in 30 s", name, err.message);
    {
        struct timeval tv = {30, 0};
        event_add(p->retry, &tv);
    }
}

static void bootstrap_try(pending_remote *p)
{
    json_t *up = json_object_get(p->entry, "upstream");
    json_t *cache = json_object_get(p->entry, "cache");
    fetch_job job;
    memset(&job, 0, sizeof(job));
    job.kind = FETCH_PROBE;
    job.endpoint = json_string_value(json_object_get(p->entry, "endpoint"));
    job.token = json_string_value(json_object_get(up, "token"));
    job.ca_file = json_string_value(json_object_get(up, "ca_file"));
    job.verify = !json_is_false(json_object_get(up, "verify"));
    job.timeout_ms = json_integer_value(json_object_get(cache, "timeout_ms"));
    p->in_flight = 1;
    fetcher_submit(p->a->fetcher, &job, p->base, bootstrap_probed, p);
}

/* Registers entry in the background (it has no record yet). */
static void pending_start(app *a, struct event_base *base, json_t *entry)
{
    pending_remote *p = pending_find(json_string_value(json_object_get(entry, "name")));
    if (p != NULL && json_equal(p->entry, entry))
        return; /* already on its way, unchanged */
    if (p != NULL)
        pending_drop(p);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    p->a = a;
    p->base = base;
    p->entry = json_incref(entry);
    p->retry = evtimer_new(base, bootstrap_retry_cb, p);
    p->next = pending_list;
    pending_list = p;
    bootstrap_try(p);
}

/* Compact text of a JSON value for a log line ("(none)" for NULL); free(). */
static char *log_text(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return strdup("(none)");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* Logs "remote NAME: WHAT changed from A to B" when a and b differ;
 * returns 1 then.  secret: the values are not shown. */
static int note_change(const char *name, const char *what, const json_t *a, const json_t *b,
                       int secret)
{
    char *ta, *tb;
    if ((a == NULL && b == NULL) || (a != NULL && b != NULL && json_equal(a, b)))
        return 0;
    if (secret) {
        LOG_INFO("remote %s: %s changed", name, what);
        return 1;
    }
    ta = log_text(a);
    tb = log_text(b);
    LOG_INFO("remote %s: %s changed from %s to %s", name, what, ta ? ta : "?", tb ? tb : "?");
    free(ta);
    free(tb);
    return 1;
}

/* Brings the config-managed record rec (borrowed, updated in place) in line
 * with its config entry; stores it and refreshes its catalog when anything
 * changed. */
static void record_update(app *a, json_t *rec, const json_t *entry)
{
    const char *name = json_string_value(json_object_get(rec, "name"));
    const json_t *eup = json_object_get(entry, "upstream");
    json_t *rup = json_object_get(rec, "upstream_config");
    json_t *up = json_is_object(eup) ? json_deep_copy(eup) : json_object();
    json_t *cache = json_is_object(json_object_get(entry, "cache"))
                        ? json_deep_copy(json_object_get(entry, "cache"))
                        : json_object();
    json_t *prio = json_integer(100), *t = json_true();
    json_t *rverify, *everify;
    rd_error err = {RD_OK, ""};
    int changed = 0;
    fetch_job job;

    if (json_object_get(entry, "priority") != NULL)
        json_integer_set(prio, json_integer_value(json_object_get(entry, "priority")));
    changed |= note_change(name, "upstream", json_object_get(rec, "endpoint"),
                           json_object_get(entry, "endpoint"), 0);
    changed |= note_change(name, "upstream token", json_object_get(rup, "token"),
                           json_object_get(up, "token"), 1);
    changed |= note_change(name, "CA file", json_object_get(rup, "ca_file"),
                           json_object_get(up, "ca_file"), 0);
    rverify = json_object_get(rup, "verify") ? json_object_get(rup, "verify") : t;
    everify = json_object_get(up, "verify") ? json_object_get(up, "verify") : t;
    changed |= note_change(name, "TLS verification", rverify, everify, 0);
    changed |= note_change(name, "cache", json_object_get(rec, "cache"), cache, 0);
    changed |= note_change(name, "priority", json_object_get(rec, "priority"), prio, 0);
    if (!changed)
        goto done;
    json_object_set(rec, "endpoint", json_object_get(entry, "endpoint"));
    json_object_set(rec, "upstream_config", up);
    json_object_set(rec, "cache", cache);
    json_object_set(rec, "priority", prio);
    pthread_mutex_lock(&adopt_lock);
    if (remote_put(a->st, rec, &err) != RD_OK)
        LOG_ERROR("remote %s: cannot store the new settings: %s", name, err.message);
    pthread_mutex_unlock(&adopt_lock);
    if (json_is_false(everify))
        LOG_WARN("repository %s (%s): TLS verification of the upstream is off",
                 json_string_value(json_object_get(rec, "repository_id")),
                 json_string_value(json_object_get(rec, "endpoint")));
    memset(&job, 0, sizeof(job));
    job.kind = FETCH_CATALOG;
    job.repository_id = json_string_value(json_object_get(rec, "repository_id"));
    job.force = 1;
    fetcher_submit(a->fetcher, &job, NULL, NULL, NULL); /* refresh with the new settings */
    job.res = &resource_dashboard;
    fetcher_submit(a->fetcher, &job, NULL, NULL, NULL);
done:
    json_decref(up);
    json_decref(cache);
    json_decref(prio);
    json_decref(t);
}

/* The config entry named name in remotes, or NULL (borrowed). */
static json_t *entry_named(const json_t *remotes, const char *name)
{
    size_t i;
    json_t *entry;
    json_array_foreach(remotes, i, entry)
    {
        const char *n = json_string_value(json_object_get(entry, "name"));
        if (n != NULL && name != NULL && strcmp(n, name) == 0)
            return entry;
    }
    return NULL;
}

void mirror_config_apply(app *a, struct event_base *base, const json_t *remotes)
{
    json_t *recs = NULL, *rec, *entry;
    size_t i;
    rd_error err = {RD_OK, ""};
    pending_remote *p, *next;

    if (remote_list(a->st, &recs, &err) != RD_OK) {
        LOG_ERROR("config remotes: cannot read the repositories: %s", err.message);
        return;
    }
    /* entries that left the file: records handed over, registrations dropped */
    json_array_foreach(recs, i, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "name"));
        if (!mirror_config_managed(rec) || entry_named(remotes, name) != NULL)
            continue;
        json_object_del(rec, MANAGED_KEY);
        pthread_mutex_lock(&adopt_lock);
        if (remote_put(a->st, rec, &err) != RD_OK)
            LOG_ERROR("remote %s: %s", name, err.message);
        pthread_mutex_unlock(&adopt_lock);
        LOG_WARN("remote %s (%s): no longer in the config file; it stays registered and is now "
                 "managed through the API (repository deregister removes it)",
                 name, json_string_value(json_object_get(rec, "repository_id")));
    }
    for (p = pending_list; p != NULL; p = next) {
        next = p->next;
        if (entry_named(remotes, json_string_value(json_object_get(p->entry, "name"))) == NULL)
            pending_drop(p);
    }
    json_array_foreach(remotes, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        size_t k;
        json_t *found = NULL;
        json_array_foreach(recs, k, rec)
        {
            if (strcmp(json_string_value(json_object_get(rec, "name")), name) == 0)
                found = rec;
        }
        if (found == NULL && mirror_name_taken(a, name, NULL))
            LOG_ERROR("remote %s: the name of the local repository; entry ignored", name);
        else if (found == NULL)
            pending_start(a, base, entry);
        else if (!mirror_config_managed(found))
            LOG_WARN("remote %s: registered through the API, so its config entry is not applied "
                     "(deregister it to let the config file manage it)",
                     name);
        else
            record_update(a, found, entry);
    }
    json_decref(recs);
}

void mirror_bootstrap(app *a, struct event_base *base)
{
    mirror_config_apply(a, base, a->conf->remotes);
}

void mirror_bootstrap_free(void)
{
    while (pending_list != NULL) {
        pending_remote *p = pending_list;
        pending_list = p->next;
        pending_free(p);
    }
}
