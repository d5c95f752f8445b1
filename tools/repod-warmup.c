/*
 * repod-warmup.c - fills a repod mirror's caches before it goes offline
 * (SPEC section 11).
 *
 *   repod-warmup --endpoint https://mirror:8443 --token-file F [--ca FILE]
 *                [--repository-id ID ...] [--concurrency N] [--no-versions]
 *                [--json] [--timeout-ms MS] [--retries N]
 *
 * Steps, all over one keep-alive pool to the mirror:
 *   1. repository list {"repository_type": "remote"} (unless ids are given);
 *   2. repository sync for each remote repository, one after the other;
 *      (a repository sync fills both mirrored catalogs: plugins and
 *      dashboard templates, which have nothing more to warm);
 *   3. plugin list of each synced repository (only plugin_id, sorted by
 *      plugin_id, in pages of --page-size, default 1000);
 *   4. plugin get-versions for every plugin, at most --concurrency in
 *      flight (skipped with --no-versions).  An answer from a fresh cache
 *      (X-Cache: HIT) or just fetched (MISS) is done; a STALE one is
 *      refreshed at once with repository sync {repository_id, plugin_id},
 *      which waits for the upstream, so exit 0 means every catalog and
 *      version list is fresh in the mirror's cache.
 * Every call retries transient failures (transport errors, 429, 502, 503,
 * 504) with exponential back-off (200 ms x 2^k, or the server's
 * Retry-After).  A retry keeps its concurrency slot while it waits.  A
 * repository whose sync fails is reported once and not walked further; so
 * is one whose version fetch fails for the whole repository (the mirror
 * or its upstream unreachable): its remaining plugins are not tried.
 *
 * Output: progress on stderr (a bar redrawn in place on a terminal, a plain
 * line every 2 s otherwise), then a summary on stdout (text, or one JSON
 * object with --json).  Exit 0 when everything was fetched, 1 when anything
 * failed (the failures are listed), 2 for usage errors.  Every step is
 * idempotent, so running it twice is harmless.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toolkit.h"
#include "util.h"

#define WU_DEFAULT_CONCURRENCY 8
#define WU_DEFAULT_RETRIES     3
#define WU_BACKOFF_BASE_MS     200
#define WU_DEFAULT_PAGE_SIZE   1000
#define WU_TTY_TICK_MS         200
#define WU_PLAIN_TICK_MS       2000

typedef struct {
    char *repository_id;
    char *name; /* NULL when ids were given on the command line */
    int synced;
    int failed;     /* a repository-wide failure was reported: stop its work */
    size_t plugins; /* plugin ids listed */
} wu_repo;

typedef struct {
    const char *stage; /* "list-repositories", "sync", "list-plugins", "get-versions" */
    char *repository_id;
    char *plugin_id;
    int status; /* HTTP status, 0 for transport failures */
    char code[TK_CODE_MAX];
    char message[TK_MESSAGE_MAX];
    int attempts;
} wu_failure;

struct warmup;

typedef struct {
    struct warmup *w;
    size_t repo;
    char *plugin_id;
    int attempts;
    int refresh;         /* the cached list was stale: repository sync it */
    struct event *timer; /* back-off timer while waiting to retry */
} wu_job;

typedef struct warmup {
    /* options */
    const char *endpoint_arg, *token_file, *ca_file;
    char **ids;
    size_t nids;
    long concurrency, timeout_ms, retries, page_size;
    int no_versions, json;
    /* state */
    char *endpoint, *token;
    tk_client *client;
    wu_repo *repos;
    size_t nrepos;
    wu_job *jobs;
    size_t njobs, jobs_cap, next, in_flight, done, fetched;
    size_t refreshed; /* stale version lists refreshed through repository sync */
    size_t not_tried; /* plugins of a repository that had failed */
    wu_failure *failures;
    size_t nfailures, failures_cap;
    long retries_done;
    int64_t start_us, phase_start_us;
    int tty;
    struct event *tick;
    int line_len; /* characters of the progress line on a terminal */
} warmup;

static void usage(FILE *f)
{
    fputs("usage: repod-warmup --endpoint https://HOST:PORT (--token-file FILE | env REPOD_TOKEN)\n"
          "                    [--ca FILE] [--repository-id ID ...] [--concurrency N]\n"
          "                    [--no-versions] [--json] [--timeout-ms MS] [--retries N]\n"
          "                    [--page-size N]\n"
          "\n"
          "Fills a repod mirror's caches before it goes offline: syncs each remote\n"
          "repository (all of them unless --repository-id is given), then fetches the\n"
          "version list of every plugin they hold.\n"
          "\n"
          "  --endpoint URL        the mirror (env REPOD_ENDPOINT)\n"
          "  --token-file FILE     a system token, first line of FILE (env REPOD_TOKEN)\n"
          "  --ca FILE             PEM CA bundle to verify the mirror (env REPOD_CA;\n"
          "                        default: the system trust store)\n"
          "  --repository-id ID    a remote repository to warm (repeatable)\n"
          "  --concurrency N       version fetches in flight, 1-256 (default 8)\n"
          "  --no-versions         sync and list only; skip get-versions\n"
          "  --json                print the summary as one JSON object on stdout\n"
          "  --timeout-ms MS       per request, 100-3600000 (default 30000)\n"
          "  --retries N           retries of a transient failure, 0-20 (default 3);\n"
          "                        back-off 200 ms x 2^k or the server's Retry-After\n"
          "  --page-size N         plugin ids per plugin list call, 1-10000 (default 1000)\n"
          "\n"
          "Exit status: 0 everything fetched, 1 something failed (listed in the\n"
          "summary), 2 usage error.\n",
          f);
}

/* ---- failures -------------------------------------------------------------- */

/* Records a failure of stage for (repository_id, plugin_id) from reply. */
static void add_failure(warmup *w, const char *stage, const char *repository_id,
                        const char *plugin_id, const tk_reply *reply, int attempts)
{
    wu_failure *f;
    if (w->nfailures == w->failures_cap) {
        size_t cap = w->failures_cap ? w->failures_cap * 2 : 16;
        wu_failure *grown = realloc(w->failures, cap * sizeof(*grown));
        if (grown == NULL) {
            fprintf(stderr, "repod-warmup: out of memory\n");
            exit(TK_EXIT_FAIL);
        }
        w->failures = grown;
        w->failures_cap = cap;
    }
    f = &w->failures[w->nfailures++];
    memset(f, 0, sizeof(*f));
    f->stage = stage;
    f->repository_id = repository_id ? strdup(repository_id) : NULL;
    f->plugin_id = plugin_id ? strdup(plugin_id) : NULL;
    f->status = reply->status;
    snprintf(f->code, sizeof(f->code), "%s", reply->code[0] ? reply->code : "UNKNOWN");
    snprintf(f->message, sizeof(f->message), "%s", reply->message);
    f->attempts = attempts;
}

/* ---- progress ---------------------------------------------------------- */

static double elapsed_s(int64_t since_us)
{
    return (double)(util_monotonic_us() - since_us) / 1e6;
}

/* Formats seconds as "1h02m", "3m07s" or "12s". */
static void format_eta(double s, char *buf, size_t size)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

/* Prints a phase message on stderr (clearing a progress bar first). */
static void note(warmup *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(warmup *w, const char *fmt, ...)
{
    va_list ap;
    if (w->tty && w->line_len > 0) {
        fputs("\r\033[K", stderr);
        w->line_len = 0;
    }
    fputs("repod-warmup: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static void draw_progress(warmup *w, int final)
{
    double secs = elapsed_s(w->phase_start_us);
    double rate = secs > 0 ? (double)w->done / secs : 0.0;
    size_t failed = w->done - w->fetched;
    char eta[32] = "?", stats[160], fails[48] = "";
    if (w->done >= w->njobs)
        snprintf(eta, sizeof(eta), "0s");
    else if (rate > 0)
        format_eta((double)(w->njobs - w->done) / rate, eta, sizeof(eta));
    if (w->tty) {
        int width = tk_terminal_width(STDERR_FILENO), bar, filled;
        if (failed > 0)
            snprintf(fails, sizeof(fails), " (%zu failed)", failed);
        snprintf(stats, sizeof(stats), " %zu/%zu %3d%% %.1f/s ETA %s%s", w->done, w->njobs,
                 w->njobs ? (int)(100 * w->done / w->njobs) : 100, rate, eta, fails);
        bar = width - (int)strlen(stats) - (int)strlen("versions []") - 1;
        if (bar > 40)
            bar = 40;
        if (bar < 5)
            bar = 0;
        filled = w->njobs ? (int)((size_t)bar * w->done / w->njobs) : bar;
        fputs("\rversions ", stderr);
        if (bar > 0) {
            fputc('[', stderr);
            for (int i = 0; i < bar; i++)
                fputc(i < filled ? '#' : '.', stderr);
            fputc(']', stderr);
        }
        fputs(stats, stderr);
        fputs("\033[K", stderr);
        w->line_len = 1;
        if (final) {
            fputc('\n', stderr);
            w->line_len = 0;
        }
    } else {
        fprintf(stderr, "repod-warmup: versions %zu/%zu (%d%%), %.1f/s, ETA %s, %zu failed\n",
                w->done, w->njobs, w->njobs ? (int)(100 * w->done / w->njobs) : 100, rate, eta,
                failed);
    }
    fflush(stderr);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    draw_progress(arg, 0);
}

/* ---- synchronous calls ----------------------------------------------------------- */

/* tk_call_retry with the tool's settings; counts the retries it made. */
static int call(warmup *w, const char *path, const json_t *body, tk_reply *r, int *attempts)
{
    int rc = tk_call_retry(w->client, path, body, (int)w->retries, WU_BACKOFF_BASE_MS, r, attempts);
    w->retries_done += *attempts - 1;
    return rc;
}

/* ---- step 1: which repositories --------------------------------------------- */

/* Replaces control characters of s (from the server) with '?' in place, so
 * progress and summary lines cannot drive the terminal; returns s. */
static char *clean(char *s)
{
    for (char *p = s; p != NULL && *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}

static int add_repo(warmup *w, const char *id, const char *name)
{
    for (size_t i = 0; i < w->nrepos; i++)
        if (strcmp(w->repos[i].repository_id, id) == 0)
            return 0; /* named twice */
    wu_repo *grown = realloc(w->repos, (w->nrepos + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    w->repos = grown;
    memset(&w->repos[w->nrepos], 0, sizeof(wu_repo));
    w->repos[w->nrepos].repository_id = clean(strdup(id));
    w->repos[w->nrepos].name = name ? clean(strdup(name)) : NULL;
    w->nrepos++;
    return 0;
}

/* Fills w->repos from the command line or the mirror's remote repositories.
 * 0, or -1 after recording a failure. */
static int find_repositories(warmup *w)
{
    tk_reply r;
    json_t *body = NULL, *results, *rec;
    size_t i;
    int attempts, rc = -1;

    if (w->nids > 0) {
        for (i = 0; i < w->nids; i++)
            if (add_repo(w, w->ids[i], NULL) != 0)
                goto done;
        rc = 0;
        goto done;
    }
    body = json_pack("{s:s}", "repository_type", "remote");
    if (call(w, "repository/list", body, &r, &attempts) != 0) {
        add_failure(w, "list-repositories", NULL, NULL, &r, attempts);
        tk_reply_clear(&r);
        goto done;
    }
    results = json_object_get(r.body, "results");
    json_array_foreach(results, i, rec)
    {
        const char *id = json_string_value(json_object_get(rec, "repository_id"));
        const char *type = json_string_value(json_object_get(rec, "repository_type"));
        if (id != NULL && type != NULL && strcmp(type, "remote") == 0)
            if (add_repo(w, id, json_string_value(json_object_get(rec, "name"))) != 0)
                break;
    }
    tk_reply_clear(&r);
    rc = 0;
done:
    json_decref(body);
    return rc;
}

/* ---- steps 2 and 3: sync and list -------------------------------------------- */

static const char *repo_label(const wu_repo *repo, char *buf, size_t size)
{
    if (repo->name != NULL)
        snprintf(buf, size, "%s (%s)", repo->name, repo->repository_id);
    else
        snprintf(buf, size, "%s", repo->repository_id);
    return buf;
}

static int add_job(warmup *w, size_t repo, const char *plugin_id)
{
    if (w->njobs == w->jobs_cap) {
        size_t cap = w->jobs_cap ? w->jobs_cap * 2 : 256;
        wu_job *grown = realloc(w->jobs, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        w->jobs = grown;
        w->jobs_cap = cap;
    }
    memset(&w->jobs[w->njobs], 0, sizeof(wu_job));
    w->jobs[w->njobs].w = w;
    w->jobs[w->njobs].repo = repo;
    w->jobs[w->njobs].plugin_id = strdup(plugin_id);
    if (w->jobs[w->njobs].plugin_id == NULL)
        return -1;
    clean(w->jobs[w->njobs].plugin_id);
    w->njobs++;
    return 0;
}

/* Syncs repository i and queues a version fetch for each of its plugins. */
static void sync_and_list(warmup *w, size_t i)
{
    wu_repo *repo = &w->repos[i];
    char label[300];
    const char *last = NULL;
    tk_reply r;
    json_t *body = NULL;
    long start = 1;
    size_t first_job = w->njobs;
    int attempts;

    repo_label(repo, label, sizeof(label));
    body = json_pack("{s:s}", "repository_id", repo->repository_id);
    if (call(w, "repository/sync", body, &r, &attempts) != 0) {
        add_failure(w, "sync", repo->repository_id, NULL, &r, attempts);
        note(w, "sync of %s failed: %s: %s", label, r.code, r.message);
        tk_reply_clear(&r);
        goto done;
    }
    repo->synced = 1;
    note(w,
         "synced %s: %" JSON_INTEGER_FORMAT " plugins, %" JSON_INTEGER_FORMAT
         " dashboard templates",
         label, json_integer_value(json_object_get(r.body, "plugins")),
         json_integer_value(json_object_get(r.body, "dashboard_templates")));
    tk_reply_clear(&r);

    /* Pages sorted by plugin_id: ids shared by several upstream domains
     * are adjacent, so comparing with the previous id removes them. */
    for (;;) {
        json_t *results, *p;
        size_t k, n;
        json_decref(body);
        body =
            json_pack("{s:s, s:{s:[s], s:{s:s}, s:{s:I, s:I}}}", "repository_id",
                      repo->repository_id, "query", "only", "plugin_id", "sort", "key", "plugin_id",
                      "page", "start", (json_int_t)start, "limit", (json_int_t)w->page_size);
        if (call(w, "plugin/list", body, &r, &attempts) != 0) {
            add_failure(w, "list-plugins", repo->repository_id, NULL, &r, attempts);
            note(w, "plugin list of %s failed: %s: %s", label, r.code, r.message);
            tk_reply_clear(&r);
            break;
        }
        results = json_object_get(r.body, "results");
        n = json_array_size(results);
        json_array_foreach(results, k, p)
        {
            const char *id = json_string_value(json_object_get(p, "plugin_id"));
            if (id == NULL || (last != NULL && strcmp(last, id) == 0))
                continue;
            if (add_job(w, i, id) != 0) {
                fprintf(stderr, "repod-warmup: out of memory\n");
                exit(TK_EXIT_FAIL);
            }
            last = w->jobs[w->njobs - 1].plugin_id;
        }
        start += (long)n;
        tk_reply_clear(&r);
        if (n < (size_t)w->page_size)
            break;
    }
    repo->plugins = w->njobs - first_job;
    if (w->no_versions)
        note(w, "%s: %zu plugins listed", label, repo->plugins);
done:
    json_decref(body);
}

/* ---- step 4: version lists ------------------------------------------------- */

static void pump(warmup *w);

static void on_versions(const tk_reply *reply, void *arg);

static void start_job(wu_job *job)
{
    warmup *w = job->w;
    json_t *body = json_pack("{s:s, s:s}", "plugin_id", job->plugin_id, "repository_id",
                             w->repos[job->repo].repository_id);
    const char *path = job->refresh ? "repository/sync" : "plugin/get-versions";
    job->attempts++;
    if (body == NULL || tk_call_async(w->client, path, body, on_versions, job) != 0) {
        fprintf(stderr, "repod-warmup: out of memory\n");
        exit(TK_EXIT_FAIL);
    }
    json_decref(body);
}

/* A job is over: frees its slot and starts the next ones. */
static void job_done(warmup *w)
{
    w->in_flight--;
    w->done++;
    pump(w);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    wu_job *job = arg;
    (void)fd;
    (void)what;
    event_free(job->timer);
    job->timer = NULL;
    if (job->w->repos[job->repo].failed) { /* reported already */
        job->w->not_tried++;
        job_done(job->w);
        return;
    }
    start_job(job);
}

/* 1 when a failure is not about one plugin: the mirror or the repository's
 * upstream cannot be reached (or the repository is offline), so the other
 * plugins would fail the same way.  A timeout may be one slow plugin; three
 * in a row make the repository offline, which then counts. */
static int repository_wide(const tk_reply *reply)
{
    return reply->transport_error || strcmp(reply->code, "ERROR_UPSTREAM_UNAVAILABLE") == 0;
}

/* Records the failure of job (once per repository when it is repository-wide). */
static void job_failed(wu_job *job, const tk_reply *reply)
{
    warmup *w = job->w;
    wu_repo *repo = &w->repos[job->repo];
    char label[300];
    if (repo->failed) {
        w->not_tried++;
        return;
    }
    if (!repository_wide(reply)) {
        add_failure(w, "get-versions", repo->repository_id, job->plugin_id, reply, job->attempts);
        return;
    }
    repo->failed = 1;
    add_failure(w, "get-versions", repo->repository_id, NULL, reply, job->attempts);
    note(w, "version lists of %s stopped at %s: %s: %s", repo_label(repo, label, sizeof(label)),
         job->plugin_id, reply->code, reply->message);
}

static void on_versions(const tk_reply *reply, void *arg)
{
    wu_job *job = arg;
    warmup *w = job->w;

    if (reply->code[0] == '\0' && !job->refresh && strcmp(reply->x_cache, "STALE") == 0 &&
        !w->repos[job->repo].failed) {
        /* served from a stale copy: refresh it now and wait for that */
        job->refresh = 1;
        job->attempts = 0;
        start_job(job);
        return;
    }
    if (w->repos[job->repo].failed && reply->code[0] != '\0') {
        w->not_tried++; /* its repository failed meanwhile: reported already */
    } else if (reply->code[0] == '\0') {
        w->fetched++;
        w->refreshed += job->refresh != 0;
    } else if (tk_reply_is_transient(reply) && job->attempts <= w->retries) {
        int ms = tk_backoff_ms(reply, WU_BACKOFF_BASE_MS, job->attempts - 1);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        job->timer = evtimer_new(tk_client_base(w->client), on_retry_timer, job);
        if (job->timer != NULL && evtimer_add(job->timer, &tv) == 0) {
            w->retries_done++;
            return; /* keeps its slot while it waits */
        }
        if (job->timer != NULL)
            event_free(job->timer);
        job->timer = NULL;
        job_failed(job, reply);
    } else {
        job_failed(job, reply);
    }
    job_done(w);
}

/* Starts jobs up to the concurrency limit (those of a failed repository are
 * not tried); stops the loop when all are done. */
static void pump(warmup *w)
{
    while (w->in_flight < (size_t)w->concurrency && w->next < w->njobs) {
        wu_job *job = &w->jobs[w->next++];
        if (w->repos[job->repo].failed) {
            w->not_tried++;
            w->done++;
            continue;
        }
        w->in_flight++;
        start_job(job);
    }
    if (w->done == w->njobs)
        event_base_loopbreak(tk_client_base(w->client));
}

static void fetch_versions(warmup *w)
{
    struct timeval tv;
    int ms = w->tty ? WU_TTY_TICK_MS : WU_PLAIN_TICK_MS;
    if (w->njobs == 0)
        return;
    note(w, "fetching %zu version lists, %ld in flight", w->njobs, w->concurrency);
    w->phase_start_us = util_monotonic_us();
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    w->tick = event_new(tk_client_base(w->client), -1, EV_PERSIST, on_tick, w);
    if (w->tick != NULL)
        event_add(w->tick, &tv);
    pump(w);
    event_base_dispatch(tk_client_base(w->client));
    if (w->tick != NULL) {
        event_free(w->tick);
        w->tick = NULL;
    }
    draw_progress(w, 1);
}

/* ---- summary ----------------------------------------------------------------- */

static int stage_rank(const char *stage)
{
    static const char *const order[] = {"list-repositories", "sync", "list-plugins",
                                        "get-versions"};
    for (int i = 0; i < 4; i++)
        if (strcmp(stage, order[i]) == 0)
            return i;
    return 4;
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* Failures in a stable order: stage, repository, plugin. */
static int cmp_failure(const void *x, const void *y)
{
    const wu_failure *a = x, *b = y;
    int c = stage_rank(a->stage) - stage_rank(b->stage);
    if (c == 0)
        c = cmp_str(a->repository_id, b->repository_id);
    if (c == 0)
        c = cmp_str(a->plugin_id, b->plugin_id);
    return c;
}

static size_t synced_count(const warmup *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nrepos; i++)
        n += w->repos[i].synced != 0;
    return n;
}

static void print_json_summary(warmup *w, double secs)
{
    json_t *out = json_object(), *repos = json_array(), *fails = json_array();
    size_t plugins = 0;
    for (size_t i = 0; i < w->nrepos; i++) {
        wu_repo *r = &w->repos[i];
        plugins += r->plugins;
        json_array_append_new(repos, json_pack("{s:s, s:s?, s:b, s:b, s:I}", "repository_id",
                                               r->repository_id, "name", r->name, "synced",
                                               r->synced, "failed", r->failed || !r->synced,
                                               "plugins", (json_int_t)r->plugins));
    }
    for (size_t i = 0; i < w->nfailures; i++) {
        wu_failure *f = &w->failures[i];
        json_array_append_new(fails,
                              json_pack("{s:s, s:s?, s:s?, s:i, s:s, s:s, s:i}", "stage", f->stage,
                                        "repository_id", f->repository_id, "plugin_id",
                                        f->plugin_id, "status", f->status, "code", f->code,
                                        "message", f->message, "attempts", f->attempts));
    }
    json_object_set_new(out, "ok", json_boolean(w->nfailures == 0));
    json_object_set_new(out, "endpoint", json_string(w->endpoint));
    json_object_set_new(out, "repositories", repos);
    json_object_set_new(out, "repositories_total", json_integer((json_int_t)w->nrepos));
    json_object_set_new(out, "repositories_synced", json_integer((json_int_t)synced_count(w)));
    json_object_set_new(out, "plugins", json_integer((json_int_t)plugins));
    json_object_set_new(out, "versions_skipped", json_boolean(w->no_versions));
    json_object_set_new(out, "versions_fetched", json_integer((json_int_t)w->fetched));
    json_object_set_new(out, "versions_failed", json_integer((json_int_t)(w->done - w->fetched)));
    json_object_set_new(out, "versions_refreshed", json_integer((json_int_t)w->refreshed));
    json_object_set_new(out, "versions_not_tried", json_integer((json_int_t)w->not_tried));
    json_object_set_new(out, "retries", json_integer((json_int_t)w->retries_done));
    json_object_set_new(out, "failure_count", json_integer((json_int_t)w->nfailures));
    json_object_set_new(out, "failures", fails);
    json_object_set_new(out, "seconds", json_real(secs));
    if (json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6)) == 0)
        fputc('\n', stdout);
    json_decref(out);
}

static void print_text_summary(warmup *w, double secs)
{
    size_t plugins = 0;
    for (size_t i = 0; i < w->nrepos; i++)
        plugins += w->repos[i].plugins;
    printf("repod-warmup summary for %s\n", w->endpoint);
    printf("  repositories synced  %zu/%zu\n", synced_count(w), w->nrepos);
    printf("  plugins              %zu\n", plugins);
    if (w->no_versions)
        printf("  version lists        skipped (--no-versions)\n");
    else
        printf("  version lists        %zu/%zu fetched (%zu stale ones refreshed, %zu not tried "
               "after their repository failed)\n",
               w->fetched, w->njobs, w->refreshed, w->not_tried);
    printf("  retries              %ld\n", w->retries_done);
    printf("  failures             %zu\n", w->nfailures);
    printf("  seconds              %.1f\n", secs);
    if (w->nfailures > 0) {
        printf("failures:\n");
        for (size_t i = 0; i < w->nfailures; i++) {
            wu_failure *f = &w->failures[i];
            printf("  %s", f->stage);
            if (f->plugin_id != NULL)
                printf(" plugin %s", f->plugin_id);
            if (f->repository_id != NULL)
                printf(" %srepository %s", f->plugin_id ? "in " : "", f->repository_id);
            printf(": %s: %s", f->code, f->message);
            if (f->status > 0)
                printf(" (HTTP %d, %d attempt%s)\n", f->status, f->attempts,
                       f->attempts == 1 ? "" : "s");
            else
                printf(" (%d attempt%s)\n", f->attempts, f->attempts == 1 ? "" : "s");
        }
    }
    fflush(stdout);
}

/* ---- command line ---------------------------------------------------------- */

/* Parses argv into w; 0, or TK_EXIT_USAGE after printing why (or help:
 * *exit_now set with TK_EXIT_OK). */
static int parse_args(warmup *w, int argc, char **argv, int *exit_now)
{
    enum {
        O_ENDPOINT = 256,
        O_TOKEN_FILE,
        O_CA,
        O_REPO,
        O_CONC,
        O_NOVER,
        O_JSON,
        O_TIMEOUT,
        O_RETRIES,
        O_PAGE_SIZE,
        O_VERSION
    };
    static const struct option options[] = {{"endpoint", required_argument, NULL, O_ENDPOINT},
                                            {"token-file", required_argument, NULL, O_TOKEN_FILE},
                                            {"ca", required_argument, NULL, O_CA},
                                            {"repository-id", required_argument, NULL, O_REPO},
                                            {"concurrency", required_argument, NULL, O_CONC},
                                            {"no-versions", no_argument, NULL, O_NOVER},
                                            {"json", no_argument, NULL, O_JSON},
                                            {"timeout-ms", required_argument, NULL, O_TIMEOUT},
                                            {"retries", required_argument, NULL, O_RETRIES},
                                            {"page-size", required_argument, NULL, O_PAGE_SIZE},
                                            {"help", no_argument, NULL, 'h'},
                                            {"version", no_argument, NULL, O_VERSION},
                                            {NULL, 0, NULL, 0}};
    int opt;
    *exit_now = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case O_ENDPOINT:
            w->endpoint_arg = optarg;
            break;
        case O_TOKEN_FILE:
            w->token_file = optarg;
            break;
        case O_CA:
            w->ca_file = optarg;
            break;
        case O_REPO: {
            char **grown = realloc(w->ids, (w->nids + 1) * sizeof(*grown));
            if (grown == NULL)
                return TK_EXIT_USAGE;
            w->ids = grown;
            w->ids[w->nids++] = optarg;
            break;
        }
        case O_CONC:
            if (tk_parse_long(optarg, 1, 256, &w->concurrency) != 0) {
                fprintf(stderr, "repod-warmup: --concurrency must be 1-256 (got \"%s\")\n", optarg);
                return TK_EXIT_USAGE;
            }
            break;
        case O_NOVER:
            w->no_versions = 1;
            break;
        case O_JSON:
            w->json = 1;
            break;
        case O_TIMEOUT:
            if (tk_parse_long(optarg, 100, 3600000, &w->timeout_ms) != 0) {
                fprintf(stderr, "repod-warmup: --timeout-ms must be 100-3600000 (got \"%s\")\n",
                        optarg);
                return TK_EXIT_USAGE;
            }
            break;
        case O_RETRIES:
            if (tk_parse_long(optarg, 0, 20, &w->retries) != 0) {
                fprintf(stderr, "repod-warmup: --retries must be 0-20 (got \"%s\")\n", optarg);
                return TK_EXIT_USAGE;
            }
            break;
        case O_PAGE_SIZE:
            if (tk_parse_long(optarg, 1, 10000, &w->page_size) != 0) {
                fprintf(stderr, "repod-warmup: --page-size must be 1-10000 (got \"%s\")\n", optarg);
                return TK_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            *exit_now = 1;
            return TK_EXIT_OK;
        case O_VERSION:
            printf("repod-warmup %s\n", REPOD_VERSION);
            *exit_now = 1;
            return TK_EXIT_OK;
        case ':':
            fprintf(stderr, "repod-warmup: %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return TK_EXIT_USAGE;
        default:
            fprintf(stderr, "repod-warmup: unknown option %s\n", argv[optind - 1]);
            usage(stderr);
            return TK_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "repod-warmup: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return TK_EXIT_USAGE;
    }
    for (size_t i = 0; i < w->nids; i++)
        if (w->ids[i][0] == '\0') {
            fprintf(stderr, "repod-warmup: --repository-id must not be empty\n");
            return TK_EXIT_USAGE;
        }
    return TK_EXIT_OK;
}

/* Resolves endpoint, token and CA from options and environment; 0 or
 * TK_EXIT_USAGE after printing why. */
static int resolve_settings(warmup *w)
{
    char err[TK_ERRBUF];
    const char *endpoint = w->endpoint_arg ? w->endpoint_arg : getenv("REPOD_ENDPOINT");
    const char *env_token = getenv("REPOD_TOKEN");
    if (w->ca_file == NULL && getenv("REPOD_CA") != NULL && getenv("REPOD_CA")[0] != '\0')
        w->ca_file = getenv("REPOD_CA");
    if (endpoint == NULL || endpoint[0] == '\0') {
        fprintf(stderr, "repod-warmup: --endpoint is required (or env REPOD_ENDPOINT)\n");
        return TK_EXIT_USAGE;
    }
    w->endpoint = tk_normalize_endpoint(endpoint, err, sizeof(err));
    if (w->endpoint == NULL) {
        fprintf(stderr, "repod-warmup: %s\n", err);
        return TK_EXIT_USAGE;
    }
    if (w->token_file != NULL) {
        w->token = tk_read_token_file(w->token_file, err, sizeof(err));
        if (w->token == NULL) {
            fprintf(stderr, "repod-warmup: %s\n", err);
            return TK_EXIT_USAGE;
        }
    } else if (env_token != NULL && (w->token = tk_trim_dup(env_token)) != NULL &&
               w->token[0] != '\0') {
        /* from the environment */
    } else {
        fprintf(stderr, "repod-warmup: a system token is required: --token-file FILE or env "
                        "REPOD_TOKEN\n");
        return TK_EXIT_USAGE;
    }
    if (w->ca_file != NULL && access(w->ca_file, R_OK) != 0) {
        fprintf(stderr, "repod-warmup: cannot read CA file %s\n", w->ca_file);
        return TK_EXIT_USAGE;
    }
    return TK_EXIT_OK;
}

static void free_warmup(warmup *w)
{
    for (size_t i = 0; i < w->njobs; i++) {
        if (w->jobs[i].timer != NULL)
            event_free(w->jobs[i].timer);
        free(w->jobs[i].plugin_id);
    }
    free(w->jobs);
    tk_client_free(w->client);
    for (size_t i = 0; i < w->nrepos; i++) {
        free(w->repos[i].repository_id);
        free(w->repos[i].name);
    }
    free(w->repos);
    for (size_t i = 0; i < w->nfailures; i++) {
        free(w->failures[i].repository_id);
        free(w->failures[i].plugin_id);
    }
    free(w->failures);
    free(w->ids);
    free(w->endpoint);
    if (w->token != NULL) {
        memset(w->token, 0, strlen(w->token));
        free(w->token);
    }
}

int main(int argc, char **argv)
{
    warmup w;
    tk_client_opts copts;
    char err[TK_ERRBUF];
    int exit_now = 0, rc;
    double secs;

    tk_init_process();
    memset(&w, 0, sizeof(w));
    w.concurrency = WU_DEFAULT_CONCURRENCY;
    w.retries = WU_DEFAULT_RETRIES;
    w.timeout_ms = TK_DEFAULT_TIMEOUT_MS;
    w.page_size = WU_DEFAULT_PAGE_SIZE;
    w.tty = isatty(STDERR_FILENO);
    w.start_us = util_monotonic_us();

    rc = parse_args(&w, argc, argv, &exit_now);
    if (rc != TK_EXIT_OK || exit_now)
        goto done;
    rc = resolve_settings(&w);
    if (rc != TK_EXIT_OK)
        goto done;
    memset(&copts, 0, sizeof(copts));
    copts.endpoint = w.endpoint;
    copts.token = w.token;
    copts.ca_file = w.ca_file;
    copts.timeout_ms = (int)w.timeout_ms;
    w.client = tk_client_new(&copts, err, sizeof(err));
    if (w.client == NULL) {
        fprintf(stderr, "repod-warmup: %s\n", err);
        rc = TK_EXIT_FAIL;
        goto done;
    }

    if (find_repositories(&w) == 0) {
        if (w.nrepos == 0)
            note(&w, "no remote repositories on %s: nothing to warm", w.endpoint);
        for (size_t i = 0; i < w.nrepos; i++)
            sync_and_list(&w, i);
        if (!w.no_versions)
            fetch_versions(&w);
    } else {
        note(&w, "listing repositories failed: %s: %s", w.failures[0].code, w.failures[0].message);
    }

    secs = elapsed_s(w.start_us);
    if (w.nfailures > 1)
        qsort(w.failures, w.nfailures, sizeof(w.failures[0]), cmp_failure);
    if (w.json)
        print_json_summary(&w, secs);
    else
        print_text_summary(&w, secs);
    rc = w.nfailures == 0 ? TK_EXIT_OK : TK_EXIT_FAIL;
done:
    free_warmup(&w);
    return rc;
}
