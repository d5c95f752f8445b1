/*
 * control.h - the server's local control socket, <data_dir>/control.sock
 * (mode 0600: only the service user and root can connect).  `repod backup`
 * asks through it for a checkpoint of the store, which the running server
 * must take because it holds the database's lock.
 *
 * Protocol: one JSON line each way.
 *   -> {"op": "checkpoint"}
 *   <- {"ok": true, "dir": "<data_dir>/backup.staging/ckpt-..."}
 *   <- {"ok": false, "message": "..."}
 * The client copies the checkpoint and removes its folder; what a client
 * left behind is removed at the next start.
 */
#ifndef REPOD_CONTROL_H
#define REPOD_CONTROL_H

#include <event2/event.h>

#include "status.h"
#include "store.h"

typedef struct control control;

/* Listens on <data_dir>/control.sock with requests answered on base (the
 * main loop).  st (borrowed) must outlive the control.  A path too long for
 * a unix socket is logged and gives a control that listens nowhere.  Call
 * with the store open (its lock proves no other server uses data_dir). */
rd_status control_start(struct event_base *base, store *st, const char *data_dir, control **out,
                        rd_error *err);

/* Stops listening and removes the socket file; NULL is a no-op. */
void control_stop(control *c);

#endif
