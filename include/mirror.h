/*
 * mirror.h - adopting remote repositories: the shared end of an API
 * `repository register` and of the config file's "remotes", which are
 * registered at start-up (and retried until their upstream answers).
 */
#ifndef REPOD_MIRROR_H
#define REPOD_MIRROR_H

#include <jansson.h>

#include "app.h"
#include "status.h"

struct event_base;

/* 1 if name is used by the local repository or a remote one other than
 * except_id (may be NULL). */
int mirror_name_taken(app *a, const char *name, const char *except_id);

/* Stores record (borrowed; a remote_new_record()) under the repository_id
 * the upstream answered in probe (its local RepositoryInfo).  Refuses this
 * server itself (RD_ERR_INVALID_PARAMETER), an upstream already mirrored or
 * a taken name (RD_ERR_SAVE_UNIQUE_VALUES).  Queues a first catalog sync.
 * On success record holds the repository_id. */
rd_status mirror_adopt(app *a, json_t *record, const json_t *probe, rd_error *err);

/* 1 when record (borrowed) was created from the config file's "remotes"
 * and is managed by it (the API must not update or deregister it). */
int mirror_config_managed(const json_t *record);

/* Makes the stored remote repositories follow remotes (the config's
 * checked "remotes" array, borrowed): entries without a record (by name) are
 * registered from base's loop, retried every 30 s while their upstream does
 * not answer; config-managed records whose settings differ are updated
 * (endpoint, upstream, cache, priority; one log line per change, then a
 * catalog refresh); config-managed records whose entry is gone lose their
 * mark (one warning).  Records registered through the API are never
 * touched.  Main thread only (start-up and SIGHUP). */
void mirror_config_apply(app *a, struct event_base *base, const json_t *remotes);

/* mirror_config_apply with the config the server started with. */
void mirror_bootstrap(app *a, struct event_base *base);

/* Frees what mirror_config_apply left pending (call after base stopped and
 * the upstream engine was cancelled). */
void mirror_bootstrap_free(void);

#endif
