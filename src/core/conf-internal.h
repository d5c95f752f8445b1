/*
 * conf-internal.h - private declarations shared by the configuration loader
 * (conf.c: key table, load, free, print; conf_values.c: checking and storing
 * one value, host:port, paths; conf_registries.c: the free-form parts;
 * conf_files.c: the TLS files).
 * Not part of the public API (that is include/conf.h).
 */
#ifndef REPOD_CONF_INTERNAL_H
#define REPOD_CONF_INTERNAL_H

#include "conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the key table ------------------------------------------------------- */

typedef enum {
    CONF_SECTION,  /* an object whose keys are rows of their own */
    CONF_STRING,   /* char * */
    CONF_PATH,     /* char *, resolved against the config folder */
    CONF_BOOL,     /* int 0/1, from JSON true/false only */
    CONF_INT,      /* int or int64_t (by .size), JSON integer within [min, max] */
    CONF_HOSTPORT, /* "host:port" / "[v6]:port" -> char *host (.aux), int port (.aux2) */
    CONF_STRLIST,  /* char ** NULL-terminated (.off), size_t count (.aux) */
    CONF_OBJECT,   /* json_t * object copy */
    CONF_ARRAY     /* json_t * array copy */
} conf_type;

#define CF_REQUIRED    0x01u /* no default: the key must be given */
#define CF_NONEMPTY    0x02u /* a string must not be "" */
#define CF_EMPTY_UNSET 0x04u /* "" is allowed and means "not set" (NULL / no host) */
#define CF_URL         0x08u /* a string must start with http:// or https:// */
#define CF_NPROC_ZERO  0x10u /* an int 0 is replaced by the number of online cores */
#define CF_IN_DATA_DIR 0x20u /* the default path is relative to data_dir */
#define CF_READABLE    0x40u /* a path must name a readable file (conf_load only) */
#define CF_ORIGIN      0x80u /* a string must be https://host[:port] and nothing more */

#define CONF_NONE ((size_t)-1) /* no target field */

typedef struct conf_ctx conf_ctx;
typedef struct conf_row conf_row;

/* A check for a free-form object/array: validates (and may rewrite) the owned
 * copy; on failure fills ctx->err and returns its code. */
typedef rd_status (*conf_check_fn)(conf_ctx *ctx, const conf_row *row, json_t *copy);

struct conf_row {
    const char *key; /* dotted name */
    conf_type type;
    unsigned flags;             /* CF_* */
    const char *def_str;        /* default of string-like rows; NULL = none */
    int64_t def_int;            /* default of bool / int rows */
    int64_t min, max;           /* bounds of int rows */
    size_t off;                 /* target field in repod_conf, or CONF_NONE */
    size_t size;                /* sizeof the target field */
    size_t aux, aux2;           /* second/third targets (see conf_type) */
    const char *const *choices; /* allowed values of a string row, NULL-terminated */
    conf_check_fn check;        /* extra check of an object/array row */
    const char *def_text;       /* default as shown by conf_print_keys, if not derived */
    const char *help;
};

/* Per type: its name in conf_print_keys and the reason when a value has the
 * wrong JSON type (conf_values.c; indexed by conf_type). */
typedef struct {
    const char *name;
    const char *expected;
} conf_type_desc;

extern const conf_type_desc conf_type_info[];

/* The keys of one "registries" entry and of one "remotes" entry
 * (conf_registries.c). */
extern const conf_row conf_registry_entry_rows[];
extern const size_t conf_registry_entry_row_count;
extern const conf_row conf_remote_entry_rows[];
extern const size_t conf_remote_entry_row_count;

/* ---- load state ---------------------------------------------------------- */

struct conf_ctx {
    const char *path; /* for messages */
    char *base;       /* folder of the config file (owned) */
    repod_conf *conf;
    rd_error *err;    /* the first problem */
    json_t *problems; /* every problem, "PATH: KEY: REASON" strings (owned) */
    rd_status rc;     /* RD_OK, or the code of the first problem */
    bool check_files; /* open the named files (conf_load), not only parse */
    bool *given;      /* per row of conf_rows[]: present in the file (borrowed) */
};

#define CONF_PROBLEMS_MAX 100 /* more problems than this are counted, not listed */

#define KEY_MAX    320
#define REASON_MAX 200

/* ---- conf.c -------------------------------------------------------------- */

/* Records the problem "PATH: KEY: REASON" (RD_ERR_INVALID_PARAMETER) in
 * ctx->problems (and in ctx->err when it is the first); loading goes on so
 * that every problem is reported.  Returns that code. */
rd_status conf_fail(conf_ctx *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "PATH: out of memory" as RD_ERR_INTERNAL; returns that code. */
rd_status conf_oom(conf_ctx *ctx);

/* ---- conf_values.c ------------------------------------------------------- */

/* Returns a new string: the folder part of path ("." when it has none);
 * NULL when out of memory. */
char *conf_path_dirname(const char *path);

/* Returns a new string: value when it is absolute (or base is NULL / ""),
 * else base + "/" + value.  NULL when out of memory. */
char *conf_path_join(const char *base, const char *value);

/* Returns the row named key in rows[0..n) (borrowed), or NULL. */
const conf_row *conf_row_find(const conf_row *rows, size_t n, const char *key);

/* 1 when s is one of the NULL-terminated choices, else 0. */
int conf_choice_valid(const char *const *choices, const char *s);

/* Writes the choices as "a, b, c" into buf[0..n) (NUL-terminated, truncated). */
void conf_choices_format(const char *const *choices, char *buf, size_t n);

/* Checks v against row's type, flags and bounds without storing anything.
 * Returns 0, or -1 with the reason in reason[0..n). */
int conf_value_check(const conf_row *row, const json_t *v, char *reason, size_t n);

/* Address of a row's target field in conf (off is one of row->off/aux/aux2). */
void *conf_field_at(repod_conf *conf, size_t off);

/* Stores an int row's value into its int or int64_t field of conf. */
void conf_field_set_int(repod_conf *conf, const conf_row *row, int64_t value);

/* Stores a string-like value s (already checked; NULL = none) of row into
 * ctx->conf: a string copy, a path resolved against base, or host:port.
 * Returns RD_OK or fails into ctx. */
rd_status conf_store_text(conf_ctx *ctx, const conf_row *row, const char *s, const char *base);

/* Stores a copy of the string list v (already checked; NULL = empty) into
 * row's fields of ctx->conf.  Returns RD_OK or fails into ctx. */
rd_status conf_store_strlist(conf_ctx *ctx, const conf_row *row, const json_t *v);

/* Stores an owned JSON copy (of v, or an empty object/array when v is NULL)
 * into row's field after the row's extra check.  Returns RD_OK or fails
 * into ctx (the field is then unchanged). */
rd_status conf_store_json(conf_ctx *ctx, const conf_row *row, const json_t *v);

/* 0 when path names a readable regular file; else -1 with errno set. */
int conf_file_readable(const char *path);

/* ---- conf_files.c -------------------------------------------------------- */

/* With ctx->check_files: loads tls.cert and tls.key with OpenSSL and checks
 * that they belong together, and that tls.client_ca holds certificates.
 * Problems go into ctx. */
void conf_check_tls(conf_ctx *ctx);

/* ---- conf_registries.c --------------------------------------------------- */

/* Checks of the free-form rows (conf_check_fn): validate, and may rewrite,
 * the owned copy; on failure fill ctx->err and return its code. */
rd_status conf_check_default_urls(conf_ctx *ctx, const conf_row *row, json_t *copy);
rd_status conf_check_allowed_hosts(conf_ctx *ctx, const conf_row *row, json_t *copy);
rd_status conf_check_registries(conf_ctx *ctx, const conf_row *row, json_t *copy);
rd_status conf_check_realm_hosts(conf_ctx *ctx, const conf_row *row, json_t *copy);
rd_status conf_check_remotes(conf_ctx *ctx, const conf_row *row, json_t *copy);

#endif
