/*
 * main.c - the repod command line: serve, check a config, manage tokens.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "catalog.h"
#include "conf.h"
#include "fetcher.h"
#include "log.h"
#include "mirror.h"
#include "remote.h"
#include "server.h"
#include "store.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  repod --config FILE          serve the Plugin API over HTTPS\n"
               "  repod --check-config FILE    validate FILE and exit (0 = valid)\n"
               "  repod token create --config FILE --domain D --role R [--name N]\n"
               "  repod token list --config FILE\n"
               "  repod token revoke --config FILE NAME\n"
               "  repod --version | --help\n"
               "\n"
               "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the tokens file and,\n"
               "from the config file, the TLS certificate (tls.*) and log_level.\n");
}

typedef struct {
    app *a;
    server *srv;
    struct event_base *base;
} main_state;

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    main_state *ms = arg;
    (void)what;
    LOG_INFO("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(ms->base, NULL);
}

/* SIGHUP: tokens, then the config file again for the TLS certificate (from
 * the tls.* paths it names now) and the log level; each keeps its old value
 * when the new one cannot be loaded. */
static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    main_state *ms = arg;
    rd_error err = {RD_OK, ""};
    repod_conf *fresh = NULL;
    int lvl;
    (void)sig;
    (void)what;
    LOG_INFO("received SIGHUP, reloading");
    if (auth_reload(ms->a->auth, &err) != RD_OK)
        LOG_ERROR("reload tokens: %s", err.message);
    if (conf_load(ms->a->conf->path, &fresh, &err) != RD_OK) {
        LOG_ERROR("reload TLS: %s; keeping the previous certificate", err.message);
        LOG_ERROR("reload log_level: %s", err.message);
        return;
    }
    if (server_reload_tls(ms->srv, fresh, &err) == RD_OK)
        LOG_INFO("TLS certificate reloaded from %s", fresh->tls_cert);
    else
        LOG_ERROR("reload TLS: %s; keeping the previous certificate", err.message);
    lvl = log_level_parse(fresh->log_level);
    if (lvl >= 0)
        log_set_level((log_level)lvl);
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
    int exit_code = 1;

    memset(&a, 0, sizeof(a));
    if (conf_load(config_path, &a.conf, &err) != RD_OK) {
        fprintf(stderr, "repod: %s\n", err.message);
        return 1;
    }
    log_set_level((log_level)log_level_parse(a.conf->log_level));
    log_capture_libevent();
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "repod: libevent has no thread support\n");
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The listening sockets and TLS first: a busy port or a bad certificate
     * fails start-up before anything is written to data_dir. */
    if (server_create(&a, &ms.srv, &err) != RD_OK ||
        store_open(a.conf->data_dir, &a.st, &err) != RD_OK ||
        catalog_open(a.st, a.conf->local_repository_name, &a.cat, &err) != RD_OK ||
        auth_open(a.conf->tokens_file, &a.auth, &err) != RD_OK ||
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
    if (server_start(ms.srv, &err) != RD_OK) {
        fprintf(stderr, "repod: %s\n", err.message);
        goto done;
    }
    warn_unverified_remotes(&a);
    mirror_bootstrap(&a, ms.base);
    atomic_store(&a.ready, 1);
    LOG_INFO("repod %s: local repository %s, %d workers, data in %s", REPOD_VERSION,
             catalog_local_id(a.cat), a.conf->workers, a.conf->data_dir);
    if (server_metrics_port(ms.srv) > 0)
        fprintf(stderr, "repod: metrics on http://%s:%d/metrics\n", a.conf->metrics_host,
                server_metrics_port(ms.srv));
    fprintf(stderr, "repod: listening on https://%s:%d\n", a.conf->listen_host,
            server_port(ms.srv));
    fflush(stderr);
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
    auth_close(a.auth);
    catalog_close(a.cat);
    store_close(a.st);
    conf_free(a.conf);
    if (exit_code == 0)
        LOG_INFO("stopped");
    return exit_code;
}

static int check_config(const char *path)
{
    repod_conf *conf = NULL;
    rd_error err = {RD_OK, ""};
    if (conf_load(path, &conf, &err) != RD_OK) {
        fprintf(stderr, "repod: %s\n", err.message);
        return 1;
    }
    conf_free(conf);
    printf("repod: %s: configuration OK\n", path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "token") == 0)
        return auth_cli_main(argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("repod %s\n", REPOD_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        printf("\nConfiguration keys:\n");
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
