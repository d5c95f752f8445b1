/*
 * fetcher.h - the federation engine: one thread that talks to every
 * upstream repod, with coalescing, a circuit breaker per repository and the
 * writes of what it fetched into the cache (remote.h).
 *
 * Worker threads submit jobs; each job's callback runs later on the event
 * loop the submitter named, never inside fetcher_submit().  Concurrent jobs
 * with the same key (kind, repository, plugin) share one upstream request.
 *
 * A repository whose last upstream call failed (degraded or offline) is
 * probed on a timer by the engine itself, with a catalog sync, so it returns
 * to ok without client traffic (back-off and states: docs/federation.md).
 * Breakers of repositories recorded as degraded or offline are restored at
 * fetcher_start().
 */
#ifndef REPOD_FETCHER_H
#define REPOD_FETCHER_H

#include <jansson.h>
#include <stdint.h>

#include "app.h"
#include "resource.h"
#include "status.h"

struct event_base;
typedef struct fetcher fetcher;

typedef enum {
    FETCH_CATALOG,  /* refresh the mirrored catalog of repository_id (of res) */
    FETCH_PLUGIN,   /* fetch one plugin (one record of res) of repository_id */
    FETCH_VERSIONS, /* fetch the version list of one plugin */
    FETCH_PROBE,    /* ask endpoint for its local repository (register) */
    FETCH_TAGS      /* read the tags of a local plugin's image from its registry */
} fetch_kind;

typedef struct {
    fetch_kind kind;
    /* CATALOG, PLUGIN: the resource (static; NULL = resource_plugin).  A
     * PLUGIN job of another resource names its record in plugin_id. */
    const resource_desc *res;
    const char *repository_id; /* CATALOG, PLUGIN, VERSIONS */
    const char *plugin_id;     /* PLUGIN, VERSIONS, TAGS */
    const char *domain_id;     /* TAGS: the local plugin's domain */
    const json_t *plugin;      /* TAGS: the local plugin record (copied) */
    int force;                 /* go to the upstream even when the breaker is open */
    int64_t seen_at_ms;        /* when the caller found the cache wanting (0 = now): an
                                * answer cached since then is used without asking again */
    /* PROBE only: where and how to connect (no record exists yet). */
    const char *endpoint;
    const char *token;
    const char *ca_file;
    int verify;
    int64_t timeout_ms;
} fetch_job;

typedef struct {
    rd_status rc;  /* RD_OK; RD_ERR_NOT_FOUND (upstream has no such plugin);
                    * RD_ERR_UPSTREAM_* */
    rd_error err;  /* message when rc is an error */
    json_t *value; /* borrowed, valid during the callback: PROBE -> the
                    * upstream's local RepositoryInfo; CATALOG -> {"plugins": n}
                    * ({"dashboard_templates": n} for that resource);
                    * PLUGIN -> the plugin record; VERSIONS, TAGS -> the list */
} fetch_result;

typedef void (*fetch_cb)(const fetch_result *res, void *arg);

/* Starts the engine thread.  a is borrowed and must outlive it. */
rd_status fetcher_start(app *a, fetcher **out, rd_error *err);

/* Stops the engine: jobs queued or in flight complete with
 * RD_ERR_UPSTREAM_UNAVAILABLE ("shutting down"), delivered to their loops
 * (which should still run to answer them); later submits are answered the
 * same way at once.  Idempotent; NULL is a no-op. */
void fetcher_cancel(fetcher *f);

/* fetcher_cancel, then frees f (after every submitter has stopped). */
void fetcher_free(fetcher *f);

/* Queues job (copied).  cb(res, arg) runs once on reply_base; with cb NULL
 * the job runs in the background (stale-while-revalidate refreshes). */
void fetcher_submit(fetcher *f, const fetch_job *job, struct event_base *reply_base, fetch_cb cb,
                    void *arg);

/* 1 when the breaker of repository_id is open and no probe is due, so a
 * request must not wait on the upstream. */
int fetcher_is_offline(fetcher *f, const char *repository_id);

/* Upstream requests sent so far (for tests and metrics). */
unsigned long long fetcher_requests_sent(fetcher *f);

#endif
