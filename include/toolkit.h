/*
 * toolkit.h - shared plumbing of the operator tools (repoctl, repod-warmup):
 * an API client over httpc (synchronous and asynchronous calls, error
 * decoding, retry classification), token and endpoint handling, and
 * terminal output (tables sized to the terminal, pretty JSON).
 *
 * The client owns one libevent event_base and one httpc; it is single-
 * threaded like httpc.  Nothing here prints a bearer token.  Tools that use
 * it must ignore SIGPIPE (tk_init_process() does that).
 */
#ifndef REPOD_TOOLKIT_H
#define REPOD_TOOLKIT_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "httpc.h"

/* Exit codes shared by the tools. */
#define TK_EXIT_OK        0
#define TK_EXIT_FAIL      1 /* the server answered an error / something failed */
#define TK_EXIT_USAGE     2 /* bad command line, options or config */
#define TK_EXIT_TRANSPORT 3 /* could not talk to the server (connect, TLS, timeout) */

#define TK_DEFAULT_TIMEOUT_MS 30000
#define TK_CODE_MAX           64
#define TK_MESSAGE_MAX        512
#define TK_ERRBUF             512

/* Process set-up for a tool: ignores SIGPIPE.  Call first in main(). */
void tk_init_process(void);

/* ---- configuration helpers ----------------------------------------------- */

/* Reads the first line of path, trimmed of surrounding white space, into a
 * new malloc'd string.  NULL on failure (unreadable, empty first line) with
 * the reason in errbuf (never the file's content). */
char *tk_read_token_file(const char *path, char *errbuf, size_t errlen);

/* Returns a new malloc'd copy of s trimmed of surrounding white space. */
char *tk_trim_dup(const char *s);

/* Checks that endpoint is "https://HOST[:PORT]" (an optional trailing '/'
 * is dropped, no path, query or credentials) and returns it as a new
 * malloc'd string; NULL with the reason in errbuf otherwise. */
char *tk_normalize_endpoint(const char *endpoint, char *errbuf, size_t errlen);

/* Parses a decimal integer in [min, max] from s; 0 on success, -1 if s is
 * not entirely a number in range. */
int tk_parse_long(const char *s, long min, long max, long *out);

/* ---- the API client -------------------------------------------------------- */

typedef struct tk_client tk_client;

typedef struct {
    const char *endpoint; /* normalized "https://host:port" (borrowed, copied) */
    const char *token;    /* bearer token or NULL for anonymous (copied) */
    const char *ca_file;  /* PEM bundle or NULL for the system store (copied) */
    int timeout_ms;       /* per request; <= 0 = TK_DEFAULT_TIMEOUT_MS */
} tk_client_opts;

/* One answer.  Exactly one of three outcomes:
 *  - transport failure: transport_error set, status 0, code is a
 *    TRANSPORT_* name (e.g. "CONNECT_FAILED") and message httpc's reason;
 *  - HTTP error (status outside 2xx): code/message from the
 *    {"detail": {code, message}} body, or "HTTP_<status>" and a cleaned
 *    excerpt of the body when it is not in that shape;
 *  - success (2xx, JSON object body): code "" and body the parsed object;
 *    a 2xx with a non-JSON body is reported as code "BAD_RESPONSE". */
typedef struct {
    int transport_error; /* 1 when no HTTP answer arrived */
    httpc_result result;
    int status;             /* HTTP status, 0 on transport failure */
    json_t *body;           /* parsed JSON body (any status) or NULL; owned */
    char code[TK_CODE_MAX]; /* "" on success */
    char message[TK_MESSAGE_MAX];
    int retry_after_ms; /* from a Retry-After header (seconds), -1 if none */
    char x_cache[8];    /* the X-Cache header (HIT, MISS, STALE) or "" */
} tk_reply;

typedef void (*tk_reply_cb)(const tk_reply *reply, void *arg);

/* Makes a client with its own event_base; NULL (reason in errbuf) on failure. */
tk_client *tk_client_new(const tk_client_opts *opts, char *errbuf, size_t errlen);

/* Frees the client; pending asynchronous calls get a transport failure
 * ("cancelled") from inside this call. */
void tk_client_free(tk_client *c);

/* The client's event_base (for timers of the caller). */
struct event_base *tk_client_base(tk_client *c);

/* Starts POST /repository/v1/<path> with body (borrowed; NULL = {}).
 * cb(reply, arg) is called exactly once from the event loop; the reply and
 * its body are valid only during the callback (json_incref to keep it).
 * Returns 0, or -1 if even the call record could not be made (no callback). */
int tk_call_async(tk_client *c, const char *path, const json_t *body, tk_reply_cb cb, void *arg);

/* Synchronous call: runs the event loop until the answer is in *out (which
 * the caller releases with tk_reply_clear).  Returns 0 when the answer is a
 * 2xx JSON object, -1 otherwise (details in *out). */
int tk_call(tk_client *c, const char *path, const json_t *body, tk_reply *out);

/* Like tk_call but retries transient failures (tk_reply_is_transient) up to
 * retries more times, sleeping base_delay_ms * 2^k (or Retry-After, capped
 * at 30 s) before attempt k + 1.  *attempts (may be NULL) gets the count. */
int tk_call_retry(tk_client *c, const char *path, const json_t *body, int retries,
                  int base_delay_ms, tk_reply *out, int *attempts);

/* Releases out->body and resets *out. */
void tk_reply_clear(tk_reply *out);

/* 1 when trying again later may help: a connect failure, timeout or broken
 * HTTP exchange, or HTTP 429, 502, 503, 504.  TLS failures are not transient. */
int tk_reply_is_transient(const tk_reply *r);

/* The delay before retry number k (0-based) in ms: base * 2^k, or the
 * reply's Retry-After when longer, capped at 30 s. */
int tk_backoff_ms(const tk_reply *r, int base_delay_ms, int k);

/* ---- output --------------------------------------------------------------- */

/* Width to lay tables out in: the terminal's columns (TIOCGWINSZ) when fd is
 * a terminal, else 120. */
int tk_terminal_width(int fd);

/* Prints j pretty (2-space indent) and a newline; 0 or -1. */
int tk_print_json(FILE *f, const json_t *j);

/* The value at dotted path in obj as display text into buf: strings as is,
 * integers and reals in decimal, true/false, "" for null or missing, and
 * arrays of scalars joined with ","; other values as compact JSON.  Returns
 * buf. */
const char *tk_json_text(const json_t *obj, const char *path, char *buf, size_t size);

/* Number of display columns of a UTF-8 string (one per code point). */
size_t tk_display_width(const char *s);

typedef struct tk_table tk_table;

/* A table with ncols columns named by headers (copied).  NULL on OOM. */
tk_table *tk_table_new(const char *const *headers, size_t ncols);

/* Appends a row of ncols cells (copied; NULL = "").  Control characters
 * are replaced by spaces so server data cannot drive the terminal.
 * 0 or -1 (OOM). */
int tk_table_add_row(tk_table *t, const char *const *cells);

/* Marks column col as one to narrow last (e.g. an id column): other
 * columns shrink to their minimum first. */
void tk_table_keep(tk_table *t, size_t col);

/* Number of rows added so far. */
size_t tk_table_rows(const tk_table *t);

/* Prints header and rows, columns separated by two spaces, fitting width:
 * when the natural widths do not fit, the widest columns are narrowed first
 * (kept columns only when the others are at their minimum of 5) and cut
 * cells end with "…".  No trailing spaces. */
void tk_table_print(const tk_table *t, FILE *f, int width);

void tk_table_free(tk_table *t);

#endif
