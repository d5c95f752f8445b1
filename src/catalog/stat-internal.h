/*
 * stat-internal.h - private declarations shared by the statistics engine
 * (stat.c, stat_compile.c, stat_group.c, stat_stages.c, stat_date.c): the
 * compiled plan of a StatisticsQuery and the row list its stages work on.
 * Not part of the public API.
 */
#ifndef REPOD_STAT_INTERNAL_H
#define REPOD_STAT_INTERNAL_H

#include "query-internal.h"

#include <stddef.h>
#include <stdint.h>

/* ---- compiled plan ------------------------------------------------------- */

typedef enum {
    ACC_COUNT,
    ACC_SUM,
    ACC_AVG,
    ACC_MAX,
    ACC_MIN,
    ACC_FIRST,
    ACC_LAST,
    ACC_PUSH,
    ACC_ADD_TO_SET
} acc_op;

typedef enum { ST_GROUP, ST_COUNT, ST_SORT, ST_LIMIT, ST_SKIP, ST_UNWIND, ST_PROJECT } stage_kind;

typedef struct {
    qpath path;        /* key (validated; path.text is looked up) */
    char *name;        /* output field */
    char *date_format; /* NULL = the value itself */
    acc_op op;         /* fields only */
    int has_key;       /* fields only: count needs no key */
} stage_item;

typedef struct {
    stage_kind kind;
    stage_item *keys; /* group keys */
    size_t nkeys;
    stage_item *items; /* group fields / project fields */
    size_t nitems;
    char *name;       /* count */
    qsort_spec sort;  /* sort */
    size_t n;         /* limit / skip */
    qpath path;       /* unwind */
    int exclude_keys; /* project */
} stage;

typedef struct {
    query *filter;
    qpage page;
    int distinct;
    qpath distinct_path;
    stage *stages;
    size_t nstages;
} stat_plan;

/* Longest date_format accepted (stat_format_date's buffer is sized from it). */
#define DATE_FORMAT_MAX 64

/* ---- rows ---------------------------------------------------------------- */

/* A list of owned row references. */
typedef struct {
    json_t **v;
    size_t n;
    size_t cap;
} rowset;

/* Appends row (stolen, even on failure; NULL counts as an allocation
 * failure); returns 0, or -1 on allocation failure. (stat.c) */
int stat_rows_push(rowset *r, json_t *row);

/* Drops every row and the list itself; *r is left empty. (stat.c) */
void stat_rows_clear(rowset *r);

/* Replaces *r with next, taking it over; next is left empty. (stat.c) */
void stat_rows_replace(rowset *r, rowset *next);

/* ---- compile (stat_compile.c) -------------------------------------------- */

/* Compiles the StatisticsQuery sq against schema into *p (zeroed by the
 * caller).  Returns RD_OK, or an error in err; either way *p may hold parts
 * and must be released with stat_plan_free. */
rd_status stat_plan_compile(const json_t *sq, const query_schema *schema, stat_plan *p,
                            rd_error *err);

/* Frees everything *p owns and zeroes it. */
void stat_plan_free(stat_plan *p);

/* ---- run ----------------------------------------------------------------- */

/* Runs one aggregate stage over rows (replacing them).  *last_group is the
 * most recent group stage (borrowed; reset by count), read by project.
 * Returns RD_OK, or RD_ERR_INTERNAL on allocation failure (rows then hold
 * the input or a valid intermediate state). (stat_stages.c) */
rd_status stat_run_stage(const stage *s, const stage **last_group, rowset *rows, rd_error *err);

/* Runs the group stage s over rows, replacing them by one row per group in
 * order of first appearance.  Returns RD_OK or RD_ERR_INTERNAL (out of
 * memory; rows then unchanged). (stat_group.c) */
rd_status stat_run_group(const stage *s, rowset *rows, rd_error *err);

/* Formats ms (milliseconds since the epoch, UTC) with MongoDB $dateToString
 * specifiers (as accepted by the compile step) into buf[0..size); always
 * NUL-terminates; output is truncated rather than overflowing. (stat_date.c) */
void stat_format_date(int64_t ms, const char *fmt, char *buf, size_t size);

#endif
