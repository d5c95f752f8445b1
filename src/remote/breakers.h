/*
 * breakers.h - the circuit breakers of the remote repositories (remote
 * internal; used by fetcher.c).
 *
 * One breaker per repository id, with its own lock, so any thread may ask.
 * Rules: every failure schedules a timed probe (1 s while degraded); the
 * third failure in a row opens the breaker (offline) with a back-off of
 * 1 s, doubled by each further failure up to 60 s; each delay is
 * shortened by up to 20 % at random so mirrors do not probe in step; one
 * success closes it.
 */
#ifndef REPOD_BREAKERS_H
#define REPOD_BREAKERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct breakers breakers;

#define BREAKERS_ID_MAX 64

/* A new empty set (NULL when out of memory); free with breakers_free. */
breakers *breakers_new(void);
void breakers_free(breakers *bs);

/* 1 when repository_id's breaker is open and its next probe is not due. */
int breakers_is_offline(breakers *bs, const char *repository_id);

/* 1 if the upstream may be asked now (force asks anyway).  An open breaker
 * lets one probe through when its back-off has passed and pushes the next
 * one out; otherwise 0 with the time to wait in *wait_ms. */
int breakers_admit(breakers *bs, const char *repository_id, int force, int64_t *wait_ms);

/* Records an outcome; returns the state to persist: "ok", "degraded" or
 * "offline" (static strings). */
const char *breakers_record(breakers *bs, const char *repository_id, int success);

/* Restores a breaker in state "degraded" or "offline" (as stored when the
 * server stopped) with its first probe about 1 s from now. */
void breakers_restore(breakers *bs, const char *repository_id, const char *state);

/* Copies into due[0..max) the ids whose timed probe is due now and
 * schedules their next one (a later tick that finds the probe still in
 * flight joins it); returns how many. */
size_t breakers_take_due(breakers *bs, char (*due)[BREAKERS_ID_MAX], size_t max);

/* Forgets repository_id's breaker (the repository is gone). */
void breakers_drop(breakers *bs, const char *repository_id);

#endif
