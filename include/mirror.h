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

/* Registers the config's "remotes" that are not registered yet (by name),
 * asking their upstreams from base's loop; entries whose upstream does not
 * answer are retried every 30 s.  Invalid entries are logged and skipped. */
void mirror_bootstrap(app *a, struct event_base *base);

/* Frees what mirror_bootstrap left pending (call after base stopped). */
void mirror_bootstrap_free(void);

#endif
