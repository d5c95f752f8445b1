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
    return RD_OK;
}

/* ---- config "remotes" ------------------------------------------------------ */

typedef struct pending_remote {
    app *a;
    struct event_base *base;
    json_t *entry;
    struct event *retry;
    struct pending_remote *next;
} pending_remote;

static pending_remote *pending_list;

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

    if (rc == RD_OK) {
        remote_check_priority(p->entry, &priority, &err);
        rec = remote_new_record(name, json_string_value(json_object_get(p->entry, "endpoint")),
                                priority, json_object_get(p->entry, "upstream"),
                                json_object_get(p->entry, "cache"));
        rc = mirror_adopt(p->a, rec, res->value, &err);
        json_decref(rec);
        if (rc == RD_OK || rc == RD_ERR_SAVE_UNIQUE_VALUES || rc == RD_ERR_INVALID_PARAMETER) {
            if (rc != RD_OK)
                LOG_ERROR("config remotes: %s: %s", name, err.message);
            return; /* done with this entry */
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
    fetcher_submit(p->a->fetcher, &job, p->base, bootstrap_probed, p);
}

/* Validates one config entry; logs and returns 0 when it is unusable. */
static int entry_valid(const json_t *entry, size_t index)
{
    static const char *const keys[] = {"name", "endpoint", "priority", "upstream", "cache", NULL};
    const char *key, *name, *endpoint;
    json_t *v;
    json_int_t prio;
    rd_error err = {RD_OK, ""};
    json_object_foreach((json_t *)entry, key, v)
    {
        size_t i;
        for (i = 0; keys[i] != NULL && strcmp(keys[i], key) != 0; i++)
            ;
        if (keys[i] == NULL) {
            LOG_ERROR("config remotes[%zu]: unknown key %s; entry skipped", index, key);
            return 0;
        }
    }
    name = json_string_value(json_object_get(entry, "name"));
    endpoint = json_string_value(json_object_get(entry, "endpoint"));
    if (name == NULL || name[0] == '\0' || endpoint == NULL) {
        LOG_ERROR("config remotes[%zu]: name and endpoint are required; entry skipped", index);
        return 0;
    }
    if (remote_check_endpoint(endpoint, &err) != RD_OK ||
        remote_check_priority(entry, &prio, &err) != RD_OK ||
        remote_check_upstream(json_object_get(entry, "upstream"), &err) != RD_OK ||
        remote_check_cache(json_object_get(entry, "cache"), &err) != RD_OK) {
        LOG_ERROR("config remotes[%zu]: %s; entry skipped", index, err.message);
        return 0;
    }
    return 1;
}

void mirror_bootstrap(app *a, struct event_base *base)
{
    json_t *entry;
    size_t i;
    json_array_foreach(a->conf->remotes, i, entry)
    {
        const char *name;
        pending_remote *p;
        if (!json_is_object(entry) || !entry_valid(entry, i))
            continue;
        name = json_string_value(json_object_get(entry, "name"));
        if (mirror_name_taken(a, name, NULL))
            continue; /* registered before (by name): the stored settings stand */
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            continue;
        p->a = a;
        p->base = base;
        p->entry = json_incref(entry);
        p->retry = evtimer_new(base, bootstrap_retry_cb, p);
        p->next = pending_list;
        pending_list = p;
        bootstrap_try(p);
    }
}

void mirror_bootstrap_free(void)
{
    while (pending_list != NULL) {
        pending_remote *p = pending_list;
        pending_list = p->next;
        if (p->retry != NULL)
            event_free(p->retry);
        json_decref(p->entry);
        free(p);
    }
}
