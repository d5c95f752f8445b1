/*
 * main.c - the repod command line: serve, check a config, manage tokens.
 */
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <sys/socket.h>
#include <event2/thread.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "auth.h"
#include "backup.h"
#include "catalog.h"
#include "conf.h"
#include "control.h"
#include "fetcher.h"
#include "log.h"
#include "mirror.h"
#include "remote.h"
#include "remote_models.h"
#include "remote_records.h"
#include "server.h"
#include "store.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  repod --config FILE          serve the Plugin API over HTTPS\n"
               "  repod --check-config FILE    validate FILE and exit (0 = valid)\n"
               "  repod token create --config FILE --domain D --role R [--name N]\n"
               "  repod token list --config FILE\n"
               "  repod token revoke --config FILE NAME\n"
               "  repod backup --config FILE --to DIR     copy the data (server running or not)\n"
               "  repod restore --from DIR --config FILE [--force]   on a stopped server\n"
               "  repod --version | --help\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the tokens file and,\n"
               "from the config file, the TLS certificate (tls.*), log_level and remotes.\n"
               "The pid file (pid_file, default <data_dir>/repod.pid) is written once the\n"
               "server listens and removed on a clean stop.\n");
}

typedef struct {
    app *a;
    server *srv;
    struct event_base *base;
} main_state;

/* Prints every problem line (a JSON array of strings) to stderr. */
static void print_problems(const json_t *problems)
{
    size_t i;
    json_t *line;
    json_array_foreach(problems, i, line)
    {
        fprintf(stderr, "%s\n", json_string_value(line));
    }
}

/* 0 when host:port can be bound now (port 0 always can); else -1 with
 * errno set.  The probe socket is closed at once. */
static int address_free(const char *host, int port)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd = -1, one = 1, rc = -1, saved;

    if (port == 0)
        return 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, res->ai_addr, res->ai_addrlen) == 0)
        rc = 0;
    saved = errno;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    errno = saved;
    return rc;
}

/* The checks of start-up beyond the file itself: the listen addresses are
 * free, the data folder can be used and no running repod holds it.  Appends "FILE: data_dir:
 * REASON" lines to problems.  Never called while this process has the store open. */
static void check_environment(const repod_conf *conf, json_t *problems)
{
    char reason[RD_ERROR_MESSAGE_MAX];
    char *folder = conf->pid_file != NULL ? strdup(conf->pid_file) : NULL;
    if (address_free(conf->listen_host, conf->listen_port) != 0)
        json_array_append_new(problems,
                              json_sprintf("%s: listen: cannot listen on %s:%d: %s", conf->path,
                                           conf->listen_host, conf->listen_port, strerror(errno)));
    if (conf->metrics_host != NULL && address_free(conf->metrics_host, conf->metrics_port) != 0)
        json_array_append_new(
            problems, json_sprintf("%s: metrics_listen: cannot listen on %s:%d: %s", conf->path,
                                   conf->metrics_host, conf->metrics_port, strerror(errno)));
    if (store_check_dir(conf->data_dir, reason, sizeof(reason)) != 0)
        json_array_append_new(problems, json_sprintf("%s: data_dir: %s", conf->path, reason));
    if (folder != NULL && strrchr(folder, '/') != NULL) {
        *(strrchr(folder, '/') == folder ? folder + 1 : strrchr(folder, '/')) = '\0';
        if (strcmp(folder, conf->data_dir) != 0 &&
            store_check_dir(folder, reason, sizeof(reason)) != 0)
            json_array_append_new(problems, json_sprintf("%s: pid_file: %s", conf->path, reason));
    }
    free(folder);
}

/* The one validation of serve and --check-config: the file (conf_load) and
 * the environment.  Returns the conf, or NULL after printing every
 * problem. */
static repod_conf *load_and_check(const char *path)
{
    repod_conf *conf = NULL;
    json_t *problems = NULL;
    rd_error err = {RD_OK, ""};

    if (conf_load_report(path, &conf, &problems, &err) == RD_OK) {
        check_environment(conf, problems);
        if (json_array_size(problems) > 0) {
            conf_free(conf);
            conf = NULL;
        }
    }
    if (conf == NULL) {
        if (json_array_size(problems) == 0)
            fprintf(stderr, "%s\n", err.message);
        print_problems(problems);
    }
    json_decref(problems);
    return conf;
}

/* Writes this process's pid to conf->pid_file; 0, or -1 after printing
 * why. */
static int pid_file_write(const repod_conf *conf)
{
    char text[32];
    char *folder;
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid()), rc = 0;
    if (conf->pid_file == NULL)
        return 0;
    folder = strdup(conf->pid_file);
    if (folder != NULL && strrchr(folder, '/') != NULL && strrchr(folder, '/') != folder) {
        *strrchr(folder, '/') = '\0';
        util_mkdir_p(folder);
    }
    free(folder);
    if (util_write_file_atomic(conf->pid_file, text, (size_t)n, 0644) != 0) {
        fprintf(stderr, "%s: pid_file: cannot write %s: %s\n", conf->path, conf->pid_file,
                strerror(errno));
        rc = -1;
    }
    return rc;
}

/* systemd (Type=notify): RELOADING=1 with the monotonic time systemd asks
 * for; every sd_notify() is a no-op when NOTIFY_SOCKET is unset. */
static void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    main_state *ms = arg;
    (void)what;
    LOG_INFO("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sd_notify(0, "STOPPING=1");
    event_base_loopexit(ms->base, NULL);
}

/* SIGHUP: the tokens file, then the config file again (the validation of
 * start-up) for the TLS certificate (from the tls.* paths it names now),
 * log_level and the config's remotes.  A file with problems changes
 * nothing; a certificate that does not load keeps the previous one. */
static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    main_state *ms = arg;
    rd_error err = {RD_OK, ""};
    repod_conf *fresh = NULL;
    json_t *problems = NULL, *line;
    size_t i;
    int lvl;
    (void)sig;
    (void)what;
    LOG_INFO("received SIGHUP, reloading");
    notify_reloading();
    if (auth_reload(ms->a->auth, &err) != RD_OK)
        LOG_ERROR("reload tokens: %s", err.message);
    if (conf_load_report(ms->a->conf->path, &fresh, &problems, &err) != RD_OK) {
        json_array_foreach(problems, i, line)
        {
            LOG_ERROR("reload: %s", json_string_value(line));
        }
        LOG_ERROR("reload TLS: the config has problems; keeping the previous certificate, "
                  "log_level and remotes");
        goto done;
    }
    if (server_reload_tls(ms->srv, fresh, &err) == RD_OK)
        LOG_INFO("TLS certificate reloaded from %s", fresh->tls_cert);
    else
        LOG_ERROR("reload TLS: %s; keeping the previous certificate", err.message);
    lvl = log_level_parse(fresh->log_level);
    if (lvl >= 0)
        log_set_level((log_level)lvl);
    mirror_config_apply(ms->a, ms->base, fresh->remotes);
done:
    sd_notify(0, "READY=1");
    json_decref(problems);
    conf_free(fresh);
}

/* SPEC 6: a remote whose TLS is not verified is worth a warning at every
 * start. */
static void warn_unverified_remotes(app *a)
{
    json_t *recs = NULL, *rec;
    size_t i;
    rd_error err;
    if (remote_list(a->st, &recs, &err) != RD_OK)
        return;
    json_array_foreach(recs, i, rec)
    {
        if (json_is_false(json_object_get(json_object_get(rec, "upstream_config"), "verify")))
            LOG_WARN("repository %s (%s): TLS verification of the upstream is off",
                     json_string_value(json_object_get(rec, "repository_id")),
                     json_string_value(json_object_get(rec, "endpoint")));
    }
    json_decref(recs);
}

static void cancel_upstream_waits(void *fetcher_ptr)
{
    fetcher_cancel(fetcher_ptr);
}

static int serve(const char *config_path)
{
    app a;
    main_state ms = {&a, NULL, NULL};
    rd_error err = {RD_OK, ""};
    struct event *ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
    store_undo *undo = NULL;
    control *ctl = NULL;
    int exit_code = 1, pid_written = 0;

    memset(&a, 0, sizeof(a));
    a.conf = load_and_check(config_path);
    if (a.conf == NULL)
        return 1;
    log_set_level((log_level)log_level_parse(a.conf->log_level));
    log_capture_libevent();
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "repod: libevent has no thread support\n");
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Everything that can fail without touching the data folder comes
     * first (TLS, the listening sockets, tokens); a first start that fails
     * later takes back the store it created, so the next start begins
     * afresh (with the local repository name of the corrected file). */
    if (server_create(&a, &ms.srv, &err) != RD_OK ||
        auth_open(a.conf->tokens_file, &a.auth, &err) != RD_OK) {
        fprintf(stderr, "repod: %s\n", err.message);
        goto done;
    }
    undo = store_undo_begin(a.conf->data_dir);
    if (store_open_with(
            a.conf->data_dir,
            &(store_options){a.conf->store_block_cache_mb, a.conf->store_write_buffer_mb}, &a.st,
            &err) != RD_OK ||
        catalog_open(a.st, a.conf->local_repository_name, &a.cat, &err) != RD_OK ||
        remote_records_attach(a.st, &err) != RD_OK ||
        remote_models_create(&resource_plugin, &a.models, &err) != RD_OK ||
        remote_models_load_all(a.models, a.st, &err) != RD_OK ||
        remote_models_create(&resource_dashboard, &a.dashboard_models, &err) != RD_OK ||
        remote_models_load_all(a.dashboard_models, a.st, &err) != RD_OK ||
        fetcher_start(&a, &a.fetcher, &err) != RD_OK) {
        fprintf(stderr, "repod: %s\n", err.message);
        goto done;
    }
    ms.base = event_base_new();
    if (ms.base == NULL) {
        fprintf(stderr, "repod: cannot create the main event loop\n");
        goto done;
    }
    ev_term = evsignal_new(ms.base, SIGTERM, on_stop_signal, &ms);
    ev_int = evsignal_new(ms.base, SIGINT, on_stop_signal, &ms);
    ev_hup = evsignal_new(ms.base, SIGHUP, on_reload_signal, &ms);
    if (ev_term == NULL || ev_int == NULL || ev_hup == NULL || evsignal_add(ev_term, NULL) ||
        evsignal_add(ev_int, NULL) || evsignal_add(ev_hup, NULL)) {
        fprintf(stderr, "repod: cannot install signal handlers\n");
        goto done;
    }
    if (control_start(ms.base, a.st, a.conf->data_dir, &ctl, &err) != RD_OK ||
        server_start(ms.srv, &err) != RD_OK) {
        fprintf(stderr, "repod: %s\n", err.message);
        goto done;
    }
    warn_unverified_remotes(&a);
    mirror_bootstrap(&a, ms.base);
    atomic_store(&a.ready, 1);
    if (pid_file_write(a.conf) != 0) {
        atomic_store(&a.ready, 0);
        server_stop(ms.srv, cancel_upstream_waits, a.fetcher);
        goto done;
    }
    pid_written = a.conf->pid_file != NULL;
    store_undo_free(undo); /* serving: the store is here to stay */
    undo = NULL;
    LOG_INFO("repod %s: local repository %s, %d workers, data in %s", REPOD_VERSION,
             catalog_local_id(a.cat), a.conf->workers, a.conf->data_dir);
    if (server_metrics_port(ms.srv) > 0)
        fprintf(stderr, "repod: metrics on http://%s:%d/metrics\n", a.conf->metrics_host,
                server_metrics_port(ms.srv));
    fprintf(stderr, "repod: listening on https://%s:%d\n", a.conf->listen_host,
            server_port(ms.srv));
    fflush(stderr);
    sd_notifyf(0, "READY=1\nSTATUS=serving on https://%s:%d", a.conf->listen_host,
               server_port(ms.srv));
    event_base_dispatch(ms.base);
    atomic_store(&a.ready, 0);
    server_stop(ms.srv, cancel_upstream_waits, a.fetcher);
    exit_code = 0;
done:
    /* Workers are joined.  Stop the upstream engine first: what it cancels
     * may be delivered to the main loop (config remotes still being
     * registered), which runs once more before anything is freed. */
    fetcher_cancel(a.fetcher);
    if (ms.base != NULL)
        event_base_loop(ms.base, EVLOOP_NONBLOCK);
    mirror_bootstrap_free();
    control_stop(ctl); /* before the loop it is registered on goes */
    if (ev_term != NULL)
        event_free(ev_term);
    if (ev_int != NULL)
        event_free(ev_int);
    if (ev_hup != NULL)
        event_free(ev_hup);
    if (ms.base != NULL)
        event_base_free(ms.base);
    fetcher_free(a.fetcher);
    server_free(ms.srv);
    remote_models_destroy(a.models);
    remote_models_destroy(a.dashboard_models);
    auth_close(a.auth);
    catalog_close(a.cat);
    remote_records_detach(a.st);
    store_close(a.st);
    store_undo_apply(undo); /* a failed first start leaves no store behind */
    store_undo_free(undo);
    if (pid_written)
        unlink(a.conf->pid_file);
    conf_free(a.conf);
    if (exit_code == 0)
        LOG_INFO("stopped");
    return exit_code;
}

static int check_config(const char *path)
{
    repod_conf *conf = load_and_check(path);
    if (conf == NULL)
        return 1;
    conf_free(conf);
    printf("repod: %s: configuration OK\n", path);
    return 0;
}

int main(int argc, char **argv)
{
#ifdef M_ARENA_MAX
    /* two malloc arenas (not 8 per core): the read model's build and the
     * workers share them, so freed memory is reused rather than spread */
    mallopt(M_ARENA_MAX, 2);
#endif
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        return auth_cli_main(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0))
        return backup_cli_main(argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("repod %s\n", REPOD_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        printf("\n");
        conf_print_keys(stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return serve(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--check-config") == 0)
        return check_config(argv[2]);
    usage(stderr);
    return 2;
}
