/*
 * repoctl.c - a small operator CLI over repod's HTTPS API (SPEC section 11).
 *
 *   repoctl [GLOBAL OPTIONS] RESOURCE VERB [ARGS] [OPTIONS]
 *
 * Settings, each taken from the first place that has it:
 *   endpoint  --endpoint, env REPOD_ENDPOINT, config "endpoint",
 *             default https://127.0.0.1:8443
 *   token     --token / --token-file, env REPOD_TOKEN, config "token_file",
 *             default none (anonymous)
 *   CA        --ca, env REPOD_CA, config "ca", default the system store
 * The config file is --config FILE, else $XDG_CONFIG_HOME/repoctl/config.json
 * or ~/.config/repoctl/config.json (ignored when absent); relative paths in
 * it are relative to its folder.
 *
 * Output: a table sized to the terminal (TIOCGWINSZ, 120 columns when stdout
 * is not a terminal; long cells cut with "…"), or with -o json the server's
 * answer pretty-printed (2-space indent).  Errors: "error: CODE: message" on
 * stderr.  Exit: 0 done, 1 the server answered an error, 2 usage or local
 * input error, 3 transport or TLS failure.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toolkit.h"

#define CTL_DEFAULT_ENDPOINT "https://127.0.0.1:8443"
#define CTL_DEFAULT_LIMIT    20
#define CTL_MAX_POSITIONAL   8
#define CTL_MAX_REPEAT       64
#define CTL_CELL             1024

/* Option bits.  GLOBAL ones are accepted by every command. */
enum {
    O_ENDPOINT = 1u << 0,
    O_TOKEN = 1u << 1,
    O_TOKEN_FILE = 1u << 2,
    O_CA = 1u << 3,
    O_CONFIG = 1u << 4,
    O_OUTPUT = 1u << 5,
    O_TIMEOUT = 1u << 6,
    O_HELP = 1u << 7,
    O_FILE = 1u << 8,
    O_REPO = 1u << 9,
    O_FILTER = 1u << 10,
    O_SORT = 1u << 11,
    O_PAGE = 1u << 12,
    O_LIMIT = 1u << 13,
    O_KEYWORD = 1u << 14,
    O_DISTINCT = 1u << 15,
    O_QUERY_FILE = 1u << 16
};
#define O_GLOBAL                                                                                   \
    (O_ENDPOINT | O_TOKEN | O_TOKEN_FILE | O_CA | O_CONFIG | O_OUTPUT | O_TIMEOUT | O_HELP)
#define O_QUERY (O_FILTER | O_SORT | O_PAGE | O_LIMIT | O_KEYWORD)

typedef struct {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 = none */
    int takes_value;
    unsigned bit;
} opt_spec;

static const opt_spec opt_specs[] = {{"endpoint", 0, 1, O_ENDPOINT},
                                     {"token", 0, 1, O_TOKEN},
                                     {"token-file", 0, 1, O_TOKEN_FILE},
                                     {"ca", 0, 1, O_CA},
                                     {"config", 0, 1, O_CONFIG},
                                     {"output", 'o', 1, O_OUTPUT},
                                     {"timeout-ms", 0, 1, O_TIMEOUT},
                                     {"help", 'h', 0, O_HELP},
                                     {"file", 'f', 1, O_FILE},
                                     {"repository-id", 0, 1, O_REPO},
                                     {"filter", 0, 1, O_FILTER},
                                     {"sort", 0, 1, O_SORT},
                                     {"page", 0, 1, O_PAGE},
                                     {"limit", 0, 1, O_LIMIT},
                                     {"keyword", 0, 1, O_KEYWORD},
                                     {"distinct", 0, 1, O_DISTINCT},
                                     {"query-file", 0, 1, O_QUERY_FILE},
                                     {NULL, 0, 0, 0}};

typedef struct {
    const char *endpoint, *token, *token_file, *ca, *config, *output, *timeout;
    const char *file, *repository_id, *page, *limit, *distinct, *query_file;
    const char *filters[CTL_MAX_REPEAT], *sorts[CTL_MAX_REPEAT], *keywords[CTL_MAX_REPEAT];
    size_t nfilters, nsorts, nkeywords;
    const char *pos[CTL_MAX_POSITIONAL];
    int npos;
    unsigned seen;
} ctl_args;

typedef struct ctl ctl;

typedef struct {
    const char *header; /* column title */
    const char *path;   /* dotted path in the result object */
} column;

/* A resource whose register / get / list / update / enable / disable /
 * deregister commands share one implementation (the server serves them
 * with one set of handlers). */
typedef struct {
    const char *route;  /* "plugin", "dashboard-template" */
    const char *id_key; /* "plugin_id", "template_id" */
    const char *noun;   /* "plugin", "dashboard template" */
    const char *plural; /* "plugins", ... */
    const column *cols; /* table columns, the id first */
    size_t ncols;
} ctl_res;

typedef struct {
    const char *resource, *verb;
    const char *arg; /* positional argument name ("ID") or NULL */
    unsigned allowed;
    int (*run)(ctl *c);
    const char *synopsis;
    const char *help;
    const ctl_res *res; /* the shared commands' resource; NULL for the others */
} ctl_cmd;

struct ctl {
    ctl_args a;
    const ctl_cmd *cmd;
    const char *id; /* the positional argument */
    int json_out;
    int width;
    char *endpoint, *token, *ca;
    int timeout_ms;
    tk_client *client;
};

/* ---- usage ------------------------------------------------------------------ */

static const char global_help[] =
    "Global options (any position):\n"
    "  --endpoint URL      server, https://HOST:PORT (env REPOD_ENDPOINT, config \"endpoint\",\n"
    "                      default " CTL_DEFAULT_ENDPOINT ")\n"
    "  --token TOKEN       bearer token (env REPOD_TOKEN)\n"
    "  --token-file FILE   read the token from the first line of FILE (config \"token_file\")\n"
    "  --ca FILE           PEM CA bundle to verify the server (env REPOD_CA, config \"ca\")\n"
    "  --config FILE       config file (default ~/.config/repoctl/config.json)\n"
    "  -o, --output FMT    table (default) or json (the server's answer, pretty)\n"
    "  --timeout-ms MS     per request, 100-3600000 (default 30000)\n"
    "  -h, --help          help; also `repoctl RESOURCE --help`, `repoctl RESOURCE VERB --help`\n";

static const char query_help[] =
    "  --filter EXPR       key=value (eq), key!=value (not), key~=text (contain,\n"
    "                      case-insensitive); repeatable, ANDed; dotted keys reach\n"
    "                      nested fields (tags.description, repository_info.name)\n"
    "  --sort KEY[:desc]   sort key, repeatable (KEY:asc is the default direction)\n"
    "  --page N            page number, 1-based (with --limit, default limit 20)\n"
    "  --limit M           results per page (0 = all)\n"
    "  --keyword WORD      every word must appear in plugin_id, name, provider or labels\n";

static const ctl_res res_plugin, res_dashboard;

static int run_register(ctl *c);
static int run_get(ctl *c);
static int run_res_list(ctl *c);
static int run_update(ctl *c);
static int run_state(ctl *c);
static int run_plugin_versions(ctl *c);
static int run_plugin_stat(ctl *c);
static int run_repository_list(ctl *c);
static int run_repository_get(ctl *c);
static int run_repository_register(ctl *c);
static int run_repository_sync(ctl *c);
static int run_token_create(ctl *c);

static const ctl_cmd commands[] = {
    {"plugin", "register", NULL, O_FILE, run_register, "plugin register -f FILE",
     "Registers the plugin described by FILE (a CreatePluginRequest JSON object; \"-\"\n"
     "reads standard input) in the caller's local repository.\n",
     &res_plugin},
    {"plugin", "get", "ID", O_REPO, run_get, "plugin get ID [--repository-id R]",
     "Shows one plugin: the local repository first, then remote ones by priority, or\n"
     "only repository R.\n",
     &res_plugin},
    {"plugin", "list", NULL, O_QUERY | O_REPO, run_res_list,
     "plugin list [--filter EXPR ...] [--sort KEY[:desc]] [--page N --limit M]\n"
     "[--keyword W] [--repository-id R]",
     "Lists the plugins the caller can see (every repository, or only R).\n", &res_plugin},
    {"plugin", "update", "ID", O_FILE, run_update, "plugin update ID -f PATCH",
     "Updates a local plugin with the fields of PATCH (a JSON object with any of name,\n"
     "capability, template, labels, tags; \"-\" reads standard input).\n",
     &res_plugin},
    {"plugin", "enable", "ID", 0, run_state, "plugin enable ID",
     "Sets a local plugin's state to ENABLED.\n", &res_plugin},
    {"plugin", "disable", "ID", 0, run_state, "plugin disable ID",
     "Sets a local plugin's state to DISABLED.\n", &res_plugin},
    {"plugin", "deregister", "ID", 0, run_state, "plugin deregister ID",
     "Removes a local plugin.\n", &res_plugin},
    {"plugin", "versions", "ID", O_REPO, run_plugin_versions,
     "plugin versions ID [--repository-id R]",
     "Lists the plugin's versions (its image tags), newest first.\n", NULL},
    {"plugin", "stat", NULL, O_DISTINCT | O_QUERY_FILE | O_FILTER | O_KEYWORD | O_REPO,
     run_plugin_stat,
     "plugin stat (--distinct KEY | --query-file FILE) [--filter EXPR ...]\n"
     "[--keyword W] [--repository-id R]",
     "Runs a statistics query over the plugins the caller can see: the sorted distinct\n"
     "values of KEY, or the StatisticsQuery object in FILE (filter, aggregate, ...;\n"
     "--filter and --keyword then belong in the file).\n",
     NULL},
    {"dashboard", "register", NULL, O_FILE, run_register, "dashboard register -f FILE",
     "Registers the dashboard template described by FILE (a\n"
     "RegisterDashboardTemplateRequest JSON object: name, template_id?, template_type\n"
     "MULTI|SINGLE, dashboards, labels, tags; \"-\" reads standard input).\n",
     &res_dashboard},
    {"dashboard", "get", "ID", O_REPO, run_get, "dashboard get ID [--repository-id R]",
     "Shows one dashboard template: the local repository first, then remote ones by\n"
     "priority, or only repository R.\n",
     &res_dashboard},
    {"dashboard", "list", NULL, O_QUERY | O_REPO, run_res_list,
     "dashboard list [--filter EXPR ...] [--sort KEY[:desc]] [--page N --limit M]\n"
     "[--keyword W] [--repository-id R]",
     "Lists the dashboard templates the caller can see (every repository, or only R).\n",
     &res_dashboard},
    {"dashboard", "update", "ID", O_FILE, run_update, "dashboard update ID -f PATCH",
     "Updates a dashboard template with the fields of PATCH (a JSON object with any of\n"
     "name, template_type, dashboards, labels, tags; \"-\" reads standard input).\n",
     &res_dashboard},
    {"dashboard", "enable", "ID", 0, run_state, "dashboard enable ID",
     "Sets a dashboard template's state to ENABLED.\n", &res_dashboard},
    {"dashboard", "disable", "ID", 0, run_state, "dashboard disable ID",
     "Sets a dashboard template's state to DISABLED.\n", &res_dashboard},
    {"dashboard", "deregister", "ID", 0, run_state, "dashboard deregister ID",
     "Removes a dashboard template.\n", &res_dashboard},
    {"repository", "list", NULL, O_FILTER | O_SORT | O_PAGE | O_LIMIT, run_repository_list,
     "repository list [--filter EXPR ...] [--sort KEY[:desc]]\n[--page N --limit M]",
     "Lists the repositories: the local one and every remote one.  STATE is a remote\n"
     "repository's upstream state (empty for the local one):\n"
     "  ok        the last upstream call succeeded (or none was made yet)\n"
     "  degraded  the last one or two calls failed; requests still go upstream and a\n"
     "            probe follows after 1 s\n"
     "  offline   three calls in a row failed; cached data is served, nothing waits\n"
     "            on the upstream, and a probe (a catalog sync) goes out after 1 s,\n"
     "            2 s, 4 s ... at most 60 s, without client traffic\n"
     "One success (a probe, a read or a repository sync) makes it ok again.  ENDPOINT\n"
     "and the last error need a token.\n",
     NULL},
    {"repository", "get", "ID", 0, run_repository_get, "repository get ID",
     "Shows one repository, with the upstream state of a remote one (see repository\n"
     "list --help for the states).\n",
     NULL},
    {"repository", "register", NULL, O_FILE, run_repository_register, "repository register -f FILE",
     "Registers the repository described by FILE, e.g.\n"
     "  {\"name\": \"Market\", \"repository_type\": \"remote\",\n"
     "   \"endpoint\": \"https://market.example.com:8443\",\n"
     "   \"upstream\": {\"ca_file\": \"/etc/repod/market-ca.crt\"}}\n"
     "(system token).\n",
     NULL},
    {"repository", "sync", "ID", 0, run_repository_sync, "repository sync ID",
     "Refreshes a remote repository's catalogs (plugins, then dashboard templates)\n"
     "from its upstream now (system token).\n",
     NULL},
    {"token", "create", NULL, 0, run_token_create, "token create",
     "Tokens are not made over the API; this prints how to make one on the server.\n", NULL},
    {NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL}};

/* Prints prefix + the command's synopsis; its continuation lines are
 * indented to the column after "RESOURCE VERB ". */
static void print_synopsis(FILE *f, const char *prefix, const ctl_cmd *k)
{
    size_t indent = strlen(prefix) + strlen(k->resource) + strlen(k->verb) + 2;
    const char *s = k->synopsis;
    fputs(prefix, f);
    for (; *s != '\0'; s++) {
        fputc(*s, f);
        if (*s == '\n')
            fprintf(f, "%*s", (int)indent, "");
    }
    fputc('\n', f);
}

static void usage_all(FILE *f)
{
    fputs("usage: repoctl [GLOBAL OPTIONS] RESOURCE VERB [ARGS] [OPTIONS]\n\nCommands:\n", f);
    for (const ctl_cmd *k = commands; k->resource != NULL; k++)
        print_synopsis(f, "  repoctl ", k);
    fputs("\n", f);
    fputs(global_help, f);
    fputs("\nExit status: 0 done, 1 the server answered an error, 2 usage or input error,\n"
          "3 transport or TLS failure.\n",
          f);
}

static void usage_resource(FILE *f, const char *resource)
{
    fprintf(f, "usage: repoctl %s VERB [ARGS] [OPTIONS]\n\n", resource);
    for (const ctl_cmd *k = commands; k->resource != NULL; k++)
        if (strcmp(k->resource, resource) == 0)
            print_synopsis(f, "  repoctl ", k);
    fputs("\n", f);
    fputs(global_help, f);
}

static void usage_cmd(FILE *f, const ctl_cmd *k)
{
    print_synopsis(f, "usage: repoctl ", k);
    fprintf(f, "\n%s", k->help);
    if (k->allowed & (O_FILTER | O_SORT | O_PAGE | O_KEYWORD)) {
        fputs("\nOptions:\n", f);
        fputs(query_help, f);
    }
    fputs("\n", f);
    fputs(global_help, f);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("repoctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see repoctl --help)\n", stderr);
}

/* ---- argument parsing ------------------------------------------------------- */

static int store_option(ctl_args *a, const opt_spec *o, const char *value)
{
    const char **slot = NULL;
    const char **list = NULL;
    size_t *count = NULL;
    switch (o->bit) {
    case O_ENDPOINT:
        slot = &a->endpoint;
        break;
    case O_TOKEN:
        slot = &a->token;
        break;
    case O_TOKEN_FILE:
        slot = &a->token_file;
        break;
    case O_CA:
        slot = &a->ca;
        break;
    case O_CONFIG:
        slot = &a->config;
        break;
    case O_OUTPUT:
        slot = &a->output;
        break;
    case O_TIMEOUT:
        slot = &a->timeout;
        break;
    case O_FILE:
        slot = &a->file;
        break;
    case O_REPO:
        slot = &a->repository_id;
        break;
    case O_PAGE:
        slot = &a->page;
        break;
    case O_LIMIT:
        slot = &a->limit;
        break;
    case O_DISTINCT:
        slot = &a->distinct;
        break;
    case O_QUERY_FILE:
        slot = &a->query_file;
        break;
    case O_FILTER:
        list = a->filters;
        count = &a->nfilters;
        break;
    case O_SORT:
        list = a->sorts;
        count = &a->nsorts;
        break;
    case O_KEYWORD:
        list = a->keywords;
        count = &a->nkeywords;
        break;
    default:
        break;
    }
    a->seen |= o->bit;
    if (slot != NULL) {
        *slot = value;
    } else if (list != NULL) {
        if (*count >= CTL_MAX_REPEAT) {
            usage_error("too many --%s options (at most %d)", o->name, CTL_MAX_REPEAT);
            return -1;
        }
        list[(*count)++] = value;
    }
    return 0;
}

/* Parses every argument: options anywhere ("--name value", "--name=value",
 * "-o value", "-ovalue"), "--" ends options.  0 or -1 (reported). */
static int parse_args(int argc, char **argv, ctl_args *a)
{
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        const opt_spec *o = NULL;
        if (only_positional || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->npos >= CTL_MAX_POSITIONAL) {
                usage_error("too many arguments");
                return -1;
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            for (const opt_spec *s = opt_specs; s->name != NULL; s++)
                if (strlen(s->name) == n && strncmp(s->name, name, n) == 0)
                    o = s;
            if (o == NULL) {
                usage_error("unknown option --%.*s", (int)n, name);
                return -1;
            }
            if (eq != NULL) {
                if (!o->takes_value) {
                    usage_error("--%s takes no value", o->name);
                    return -1;
                }
                value = eq + 1;
            }
        } else {
            for (const opt_spec *s = opt_specs; s->name != NULL; s++)
                if (s->short_name != 0 && s->short_name == arg[1])
                    o = s;
            if (o == NULL || (!o->takes_value && arg[2] != '\0')) {
                usage_error("unknown option %s", arg);
                return -1;
            }
            if (arg[2] != '\0')
                value = arg + 2;
        }
        if (o->takes_value && value == NULL) {
            if (i + 1 >= argc) {
                usage_error("--%s needs a value", o->name);
                return -1;
            }
            value = argv[++i];
        }
        if (store_option(a, o, value) != 0)
            return -1;
    }
    return 0;
}

/* The name of the first option bit set in bits. */
static const char *option_name(unsigned bits)
{
    for (const opt_spec *s = opt_specs; s->name != NULL; s++)
        if (bits & s->bit)
            return s->name;
    return "?";
}

/* ---- settings ----------------------------------------------------------------- */

/* path made absolute against the folder of config_path when relative, "~/"
 * expanded; new string. */
static char *config_relative(const char *config_path, const char *path)
{
    const char *home = getenv("HOME");
    const char *slash = strrchr(config_path, '/');
    size_t n;
    char *out;
    if (strncmp(path, "~/", 2) == 0 && home != NULL) {
        n = strlen(home) + strlen(path);
        if ((out = malloc(n)) != NULL)
            snprintf(out, n, "%s/%s", home, path + 2);
        return out;
    }
    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    n = (size_t)(slash - config_path) + 1 + strlen(path) + 1;
    if ((out = malloc(n)) != NULL)
        snprintf(out, n, "%.*s/%s", (int)(slash - config_path), config_path, path);
    return out;
}

typedef struct {
    char *endpoint, *token_file, *ca;
} ctl_config;

static void config_free(ctl_config *cfg)
{
    free(cfg->endpoint);
    free(cfg->token_file);
    free(cfg->ca);
    memset(cfg, 0, sizeof(*cfg));
}

/* Loads the config file into *cfg (all NULL when the default file is
 * absent).  0, or -1 after reporting a usage error. */
static int load_config(const ctl_args *a, ctl_config *cfg)
{
    char defpath[4096];
    const char *path = a->config, *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    json_t *root = NULL, *v;
    json_error_t jerr;
    const char *key;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    if (path == NULL) {
        if (xdg != NULL && xdg[0] == '/')
            snprintf(defpath, sizeof(defpath), "%s/repoctl/config.json", xdg);
        else if (home != NULL && home[0] != '\0')
            snprintf(defpath, sizeof(defpath), "%s/.config/repoctl/config.json", home);
        else
            return 0;
        if (access(defpath, F_OK) != 0)
            return 0;
        path = defpath;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        usage_error("config %s: %s (line %d)", path, jerr.text, jerr.line);
        goto done;
    }
    if (!json_is_object(root)) {
        usage_error("config %s: not a JSON object", path);
        goto done;
    }
    json_object_foreach(root, key, v)
    {
        char **slot = NULL;
        if (strcmp(key, "endpoint") == 0)
            slot = &cfg->endpoint;
        else if (strcmp(key, "token_file") == 0)
            slot = &cfg->token_file;
        else if (strcmp(key, "ca") == 0)
            slot = &cfg->ca;
        if (slot == NULL) {
            usage_error("config %s: %s: unknown key (known: endpoint, token_file, ca)", path, key);
            goto done;
        }
        if (json_is_null(v))
            continue;
        if (!json_is_string(v) || json_string_value(v)[0] == '\0') {
            usage_error("config %s: %s: must be a non-empty string", path, key);
            goto done;
        }
        *slot = slot == &cfg->endpoint ? strdup(json_string_value(v))
                                       : config_relative(path, json_string_value(v));
    }
    rc = 0;
done:
    json_decref(root);
    if (rc != 0)
        config_free(cfg);
    return rc;
}

static const char *nonempty_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Resolves endpoint, token, CA and timeout (flags, env, config, defaults).
 * Returns TK_EXIT_OK or TK_EXIT_USAGE (reported). */
static int resolve_settings(ctl *c)
{
    ctl_config cfg;
    const char *endpoint, *ca;
    char err[TK_ERRBUF];
    int loaded = 0, rc = TK_EXIT_USAGE;
    long timeout = TK_DEFAULT_TIMEOUT_MS;

    memset(&cfg, 0, sizeof(cfg));
    if (c->a.token != NULL && c->a.token_file != NULL) {
        usage_error("--token and --token-file exclude each other");
        goto done;
    }
    if (c->a.timeout != NULL && tk_parse_long(c->a.timeout, 100, 3600000, &timeout) != 0) {
        usage_error("--timeout-ms must be 100-3600000 (got \"%s\")", c->a.timeout);
        goto done;
    }
    c->timeout_ms = (int)timeout;
    endpoint = c->a.endpoint ? c->a.endpoint : nonempty_env("REPOD_ENDPOINT");
    ca = c->a.ca ? c->a.ca : nonempty_env("REPOD_CA");
    /* The default config file is read only when it may be needed; one named
     * by --config always is (so a mistake in it is not hidden). */
    if (c->a.config != NULL || endpoint == NULL || ca == NULL ||
        (c->a.token == NULL && c->a.token_file == NULL && nonempty_env("REPOD_TOKEN") == NULL)) {
        if (load_config(&c->a, &cfg) != 0)
            goto done;
        loaded = 1;
    }
    if (endpoint == NULL)
        endpoint = cfg.endpoint ? cfg.endpoint : CTL_DEFAULT_ENDPOINT;
    if (ca == NULL)
        ca = cfg.ca;
    c->endpoint = tk_normalize_endpoint(endpoint, err, sizeof(err));
    if (c->endpoint == NULL) {
        usage_error("%s", err);
        goto done;
    }
    if (ca != NULL) {
        if (access(ca, R_OK) != 0) {
            usage_error("cannot read CA file %s: %s", ca, strerror(errno));
            goto done;
        }
        c->ca = strdup(ca);
    }
    if (c->a.token != NULL) {
        c->token = tk_trim_dup(c->a.token);
    } else if (c->a.token_file != NULL ||
               (loaded && nonempty_env("REPOD_TOKEN") == NULL && cfg.token_file != NULL)) {
        const char *file = c->a.token_file ? c->a.token_file : cfg.token_file;
        c->token = tk_read_token_file(file, err, sizeof(err));
        if (c->token == NULL) {
            usage_error("%s", err);
            goto done;
        }
    } else if (nonempty_env("REPOD_TOKEN") != NULL) {
        c->token = tk_trim_dup(nonempty_env("REPOD_TOKEN"));
    }
    if (c->token != NULL && c->token[0] == '\0') {
        free(c->token);
        c->token = NULL;
    }
    rc = TK_EXIT_OK;
done:
    config_free(&cfg);
    return rc;
}

/* ---- requests ----------------------------------------------------------------- */

/* POSTs body to path; on success *out is the answer (new reference) and 0
 * is returned; otherwise the error is printed and the exit code returned. */
static int api(ctl *c, const char *path, const json_t *body, json_t **out)
{
    tk_reply r;
    int rc;
    *out = NULL;
    if (c->client == NULL) {
        tk_client_opts o;
        char err[TK_ERRBUF];
        memset(&o, 0, sizeof(o));
        o.endpoint = c->endpoint;
        o.token = c->token;
        o.ca_file = c->ca;
        o.timeout_ms = c->timeout_ms;
        c->client = tk_client_new(&o, err, sizeof(err));
        if (c->client == NULL) {
            fprintf(stderr, "error: CLIENT_ERROR: %s\n", err);
            return TK_EXIT_FAIL;
        }
    }
    if (tk_call(c->client, path, body, &r) == 0) {
        *out = json_incref(r.body);
        rc = TK_EXIT_OK;
    } else {
        fprintf(stderr, "error: %s: %s\n", r.code, r.message);
        if (r.transport_error && r.result == HTTPC_ERR_TLS)
            fprintf(stderr, "hint: pass the server's CA with --ca FILE (or REPOD_CA)\n");
        rc = r.transport_error ? TK_EXIT_TRANSPORT : TK_EXIT_FAIL;
    }
    tk_reply_clear(&r);
    return rc;
}

/* Reads a JSON object from path ("-" = stdin) into *out.  0 or
 * TK_EXIT_USAGE (reported). */
static int read_json_object(const char *what, const char *path, json_t **out)
{
    json_error_t jerr;
    json_t *j;
    if (path == NULL) {
        usage_error("%s: -f FILE is required", what);
        return TK_EXIT_USAGE;
    }
    if (strcmp(path, "-") == 0)
        j = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
    else
        j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        usage_error("%s: %s: %s (line %d, column %d)", what, path, jerr.text, jerr.line,
                    jerr.column);
        return TK_EXIT_USAGE;
    }
    if (!json_is_object(j)) {
        usage_error("%s: %s: must hold a JSON object", what, path);
        json_decref(j);
        return TK_EXIT_USAGE;
    }
    *out = j;
    return TK_EXIT_OK;
}

/* Builds the query's filter list from --filter options into q.  0 or
 * TK_EXIT_USAGE (reported). */
static int add_filters(const ctl *c, json_t *q)
{
    json_t *filters;
    if (c->a.nfilters == 0)
        return TK_EXIT_OK;
    filters = json_array();
    json_object_set_new(q, "filter", filters);
    for (size_t i = 0; i < c->a.nfilters; i++) {
        const char *expr = c->a.filters[i], *eq = strchr(expr, '=');
        const char *op = "eq";
        size_t klen;
        if (eq == NULL) {
            usage_error("--filter %s: expected key=value, key!=value or key~=text", expr);
            return TK_EXIT_USAGE;
        }
        klen = (size_t)(eq - expr);
        if (klen > 0 && expr[klen - 1] == '~') {
            op = "contain";
            klen--;
        } else if (klen > 0 && expr[klen - 1] == '!') {
            op = "not";
            klen--;
        }
        if (klen == 0) {
            usage_error("--filter %s: the key is empty", expr);
            return TK_EXIT_USAGE;
        }
        json_array_append_new(filters,
                              json_pack("{s:s%, s:s, s:s}", "k", expr, klen, "v", eq + 1, "o", op));
    }
    return TK_EXIT_OK;
}

/* Adds --sort, --page/--limit and --keyword to q.  0 or TK_EXIT_USAGE. */
static int add_sort_page_keyword(const ctl *c, json_t *q)
{
    json_t *keys = json_array();
    long page = 1, limit = CTL_DEFAULT_LIMIT;
    int rc = TK_EXIT_USAGE;
    for (size_t i = 0; i < c->a.nsorts; i++) {
        const char *s = c->a.sorts[i], *colon = strrchr(s, ':');
        size_t klen = colon ? (size_t)(colon - s) : strlen(s);
        int desc = 0;
        if (colon != NULL) {
            if (strcmp(colon + 1, "desc") == 0)
                desc = 1;
            else if (strcmp(colon + 1, "asc") != 0) {
                usage_error("--sort %s: expected KEY, KEY:asc or KEY:desc", s);
                goto done;
            }
        }
        if (klen == 0) {
            usage_error("--sort %s: the key is empty", s);
            goto done;
        }
        json_array_append_new(keys, json_pack("{s:s%, s:b}", "key", s, klen, "desc", desc));
    }
    if (json_array_size(keys) == 1)
        json_object_set(q, "sort", json_array_get(keys, 0));
    else if (json_array_size(keys) > 1)
        json_object_set_new(q, "sort", json_pack("{s:O}", "keys", keys));
    if (c->a.page != NULL && tk_parse_long(c->a.page, 1, 1000000000L, &page) != 0) {
        usage_error("--page must be a number from 1 (got \"%s\")", c->a.page);
        goto done;
    }
    if (c->a.limit != NULL && tk_parse_long(c->a.limit, 0, 1000000000L, &limit) != 0) {
        usage_error("--limit must be a number from 0 (got \"%s\")", c->a.limit);
        goto done;
    }
    if (c->a.page != NULL && c->a.limit != NULL && limit == 0 && page > 1) {
        usage_error("--page needs a --limit above 0");
        goto done;
    }
    if (c->a.page != NULL || c->a.limit != NULL)
        json_object_set_new(q, "page",
                            json_pack("{s:I, s:I}", "start", (json_int_t)((page - 1) * limit + 1),
                                      "limit", (json_int_t)limit));
    if (c->a.nkeywords > 0) {
        size_t n = 1;
        char *kw;
        for (size_t i = 0; i < c->a.nkeywords; i++)
            n += strlen(c->a.keywords[i]) + 1;
        kw = calloc(1, n);
        if (kw == NULL)
            goto done;
        for (size_t i = 0; i < c->a.nkeywords; i++) {
            if (i > 0)
                strcat(kw, " ");
            strcat(kw, c->a.keywords[i]);
        }
        json_object_set_new(q, "keyword", json_string(kw));
        free(kw);
    }
    rc = TK_EXIT_OK;
done:
    json_decref(keys);
    return rc;
}

/* ---- output --------------------------------------------------------------------- */

static const column plugin_columns[] = {{"PLUGIN_ID", "plugin_id"},
                                        {"NAME", "name"},
                                        {"STATE", "state"},
                                        {"PROVIDER", "provider"},
                                        {"RESOURCE_TYPE", "resource_type"},
                                        {"REPOSITORY", "repository_info.name"}};

static const column repository_columns[] = {{"REPOSITORY_ID", "repository_id"},
                                            {"NAME", "name"},
                                            {"TYPE", "repository_type"},
                                            {"PRIORITY", "priority"},
                                            {"ENDPOINT", "endpoint"},
                                            {"STATE", "upstream.state"},
                                            {"CACHED", "upstream.cached_plugins"},
                                            {"LAST_SYNC", "upstream.last_sync_at"}};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static const column dashboard_columns[] = {{"TEMPLATE_ID", "template_id"},
                                           {"NAME", "name"},
                                           {"STATE", "state"},
                                           {"TYPE", "template_type"},
                                           {"REPOSITORY", "repository_info.name"}};

static const ctl_res res_plugin = {"plugin",  "plugin_id",    "plugin",
                                   "plugins", plugin_columns, NCOLS(plugin_columns)};
static const ctl_res res_dashboard = {"dashboard-template", "template_id",
                                      "dashboard template", "dashboard templates",
                                      dashboard_columns,    NCOLS(dashboard_columns)};

/* Prints items (array of objects) as a table of the given columns. */
static int print_rows(const ctl *c, const column *cols, size_t ncols, const json_t *items)
{
    const char *headers[16];
    char cells[16][CTL_CELL];
    const char *row[16];
    tk_table *t;
    const json_t *it;
    size_t i;
    for (size_t k = 0; k < ncols; k++)
        headers[k] = cols[k].header;
    t = tk_table_new(headers, ncols);
    if (t == NULL)
        return TK_EXIT_FAIL;
    if (cols == plugin_columns || cols == repository_columns || cols == dashboard_columns)
        tk_table_keep(t, 0); /* the id: what the next command needs */
    json_array_foreach(items, i, it)
    {
        for (size_t k = 0; k < ncols; k++)
            row[k] = tk_json_text(it, cols[k].path, cells[k], sizeof(cells[k]));
        if (tk_table_add_row(t, row) != 0) {
            tk_table_free(t);
            return TK_EXIT_FAIL;
        }
    }
    tk_table_print(t, stdout, c->width);
    tk_table_free(t);
    return TK_EXIT_OK;
}

/* Prints one object as a one-row table. */
static int print_one(const ctl *c, const column *cols, size_t ncols, const json_t *obj)
{
    json_t *items = json_pack("[O]", obj);
    int rc = print_rows(c, cols, ncols, items);
    json_decref(items);
    return rc;
}

/* "(N of TOTAL ...)" after a paged or limited list. */
static void print_count_note(const json_t *answer, const char *what)
{
    size_t shown = json_array_size(json_object_get(answer, "results"));
    json_t *total = json_object_get(answer, "total_count");
    if (json_is_integer(total) && (json_int_t)shown < json_integer_value(total))
        printf("(%zu of %" JSON_INTEGER_FORMAT " %s; use --page/--limit for more)\n", shown,
               json_integer_value(total), what);
}

/* Prints the answer as JSON when -o json; returns 1 when it did. */
static int maybe_json(const ctl *c, const json_t *answer)
{
    if (!c->json_out)
        return 0;
    tk_print_json(stdout, answer);
    return 1;
}

/* Runs path with body and prints the answer as one plugin or repository. */
static int call_and_print_one(ctl *c, const char *path, const json_t *body, const column *cols,
                              size_t ncols)
{
    json_t *answer = NULL;
    int rc = api(c, path, body, &answer);
    if (rc == TK_EXIT_OK && !maybe_json(c, answer))
        rc = print_one(c, cols, ncols, answer);
    json_decref(answer);
    return rc;
}

/* ---- commands ------------------------------------------------------------------- */

/* The route of the command's resource and verb into path. */
static const char *res_path(const ctl *c, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", c->cmd->res->route, c->cmd->verb);
    return path;
}

static int run_register(ctl *c)
{
    char what[64], path[64];
    const ctl_res *r = c->cmd->res;
    json_t *body = NULL;
    int rc;
    snprintf(what, sizeof(what), "%s register", c->cmd->resource);
    rc = read_json_object(what, c->a.file, &body);
    if (rc == TK_EXIT_OK)
        rc = call_and_print_one(c, res_path(c, path, sizeof(path)), body, r->cols, r->ncols);
    json_decref(body);
    return rc;
}

static int run_get(ctl *c)
{
    char path[64];
    const ctl_res *r = c->cmd->res;
    json_t *body = json_pack("{s:s}", r->id_key, c->id);
    int rc;
    if (c->a.repository_id != NULL)
        json_object_set_new(body, "repository_id", json_string(c->a.repository_id));
    rc = call_and_print_one(c, res_path(c, path, sizeof(path)), body, r->cols, r->ncols);
    json_decref(body);
    return rc;
}

/* A list command: filters, sort, page and keyword from the flags into the
 * query; repository_id narrows plugin lists only. */
static int run_list(ctl *c, const char *route, int by_repository, const column *cols, size_t ncols,
                    const char *noun)
{
    json_t *body = json_object(), *q = json_object(), *answer = NULL;
    int rc = add_filters(c, q);
    if (rc == TK_EXIT_OK)
        rc = add_sort_page_keyword(c, q);
    if (rc != TK_EXIT_OK)
        goto done;
    if (json_object_size(q) > 0)
        json_object_set(body, "query", q);
    if (by_repository && c->a.repository_id != NULL)
        json_object_set_new(body, "repository_id", json_string(c->a.repository_id));
    rc = api(c, route, body, &answer);
    if (rc == TK_EXIT_OK && !maybe_json(c, answer)) {
        rc = print_rows(c, cols, ncols, json_object_get(answer, "results"));
        print_count_note(answer, noun);
    }
done:
    json_decref(answer);
    json_decref(q);
    json_decref(body);
    return rc;
}

static int run_res_list(ctl *c)
{
    char path[64];
    const ctl_res *r = c->cmd->res;
    return run_list(c, res_path(c, path, sizeof(path)), 1, r->cols, r->ncols, r->plural);
}

static int run_update(ctl *c)
{
    char what[64], path[64];
    const ctl_res *r = c->cmd->res;
    json_t *body = NULL, *given;
    int rc;
    snprintf(what, sizeof(what), "%s update", c->cmd->resource);
    rc = read_json_object(what, c->a.file, &body);
    if (rc != TK_EXIT_OK)
        return rc;
    given = json_object_get(body, r->id_key);
    if (given != NULL && !(json_is_string(given) && strcmp(json_string_value(given), c->id) == 0)) {
        usage_error("%s: %s names another %s than %s", what, c->a.file, r->id_key, c->id);
        rc = TK_EXIT_USAGE;
    } else {
        json_object_set_new(body, r->id_key, json_string(c->id));
        rc = call_and_print_one(c, res_path(c, path, sizeof(path)), body, r->cols, r->ncols);
    }
    json_decref(body);
    return rc;
}

/* enable / disable / deregister */
static int run_state(ctl *c)
{
    char path[64];
    const ctl_res *r = c->cmd->res;
    json_t *body = json_pack("{s:s}", r->id_key, c->id), *answer = NULL;
    int rc;
    res_path(c, path, sizeof(path));
    if (strcmp(c->cmd->verb, "deregister") != 0) {
        rc = call_and_print_one(c, path, body, r->cols, r->ncols);
        json_decref(body);
        return rc;
    }
    rc = api(c, path, body, &answer);
    if (rc == TK_EXIT_OK && !maybe_json(c, answer))
        printf("%s %s deregistered\n", r->noun, c->id);
    json_decref(answer);
    json_decref(body);
    return rc;
}

static int run_plugin_versions(ctl *c)
{
    static const column cols[] = {{"VERSION", ""}};
    json_t *body = json_pack("{s:s}", "plugin_id", c->id), *answer = NULL;
    int rc;
    if (c->a.repository_id != NULL)
        json_object_set_new(body, "repository_id", json_string(c->a.repository_id));
    rc = api(c, "plugin/get-versions", body, &answer);
    if (rc == TK_EXIT_OK && !maybe_json(c, answer))
        rc = print_rows(c, cols, 1, json_object_get(answer, "results"));
    json_decref(answer);
    json_decref(body);
    return rc;
}

/* Upper-cases s into buf. */
static const char *upper(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < size; i++)
        buf[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
    buf[i] = '\0';
    return buf;
}

/* Prints stat results: scalars under one column (the distinct key), objects
 * with one column per key (in order of first appearance, at most 16). */
static int print_stat(const ctl *c, const json_t *results, const char *distinct)
{
    char names[16][128], headers_buf[16][128];
    column cols[16];
    size_t ncols = 0, i;
    const json_t *row, *v;
    const char *key;
    int objects = 0;
    json_array_foreach(results, i, row)
    {
        if (!json_is_object(row))
            continue;
        objects = 1;
        json_object_foreach((json_t *)row, key, v)
        {
            size_t k = 0;
            (void)v;
            while (k < ncols && strcmp(names[k], key) != 0)
                k++;
            if (k == ncols && ncols < 16 && strlen(key) < sizeof(names[0]) &&
                strchr(key, '.') == NULL) {
                snprintf(names[ncols], sizeof(names[0]), "%s", key);
                cols[ncols].header = upper(key, headers_buf[ncols], sizeof(headers_buf[0]));
                cols[ncols].path = names[ncols];
                ncols++;
            }
        }
    }
    if (!objects) {
        column one = {upper(distinct ? distinct : "value", headers_buf[0], sizeof(headers_buf[0])),
                      ""};
        return print_rows(c, &one, 1, results);
    }
    return print_rows(c, cols, ncols, results);
}

static int run_plugin_stat(ctl *c)
{
    json_t *body = json_object(), *q = NULL, *answer = NULL;
    int rc = TK_EXIT_USAGE;
    if ((c->a.distinct != NULL) == (c->a.query_file != NULL)) {
        usage_error("plugin stat: give exactly one of --distinct KEY and --query-file FILE");
        goto done;
    }
    if (c->a.query_file != NULL) {
        if (c->a.nfilters > 0 || c->a.nkeywords > 0) {
            usage_error("plugin stat: with --query-file put filters and keywords in the file");
            goto done;
        }
        rc = read_json_object("plugin stat", c->a.query_file, &q);
        if (rc != TK_EXIT_OK)
            goto done;
    } else {
        if (c->a.distinct[0] == '\0') {
            usage_error("plugin stat: --distinct needs a key");
            goto done;
        }
        q = json_pack("{s:s}", "distinct", c->a.distinct);
        rc = add_filters(c, q);
        if (rc == TK_EXIT_OK)
            rc = add_sort_page_keyword(c, q);
        if (rc != TK_EXIT_OK)
            goto done;
    }
    json_object_set(body, "query", q);
    if (c->a.repository_id != NULL)
        json_object_set_new(body, "repository_id", json_string(c->a.repository_id));
    rc = api(c, "plugin/stat", body, &answer);
    if (rc == TK_EXIT_OK && !maybe_json(c, answer))
        rc = print_stat(c, json_object_get(answer, "results"), c->a.distinct);
done:
    json_decref(answer);
    json_decref(q);
    json_decref(body);
    return rc;
}

static int run_repository_list(ctl *c)
{
    return run_list(c, "repository/list", 0, repository_columns, NCOLS(repository_columns),
                    "repositories");
}

static int run_repository_get(ctl *c)
{
    json_t *body = json_pack("{s:s}", "repository_id", c->id);
    int rc = call_and_print_one(c, "repository/get", body, repository_columns,
                                NCOLS(repository_columns));
    json_decref(body);
    return rc;
}

static int run_repository_register(ctl *c)
{
    json_t *body = NULL;
    int rc = read_json_object("repository register", c->a.file, &body);
    if (rc == TK_EXIT_OK)
        rc = call_and_print_one(c, "repository/register", body, repository_columns,
                                NCOLS(repository_columns));
    json_decref(body);
    return rc;
}

static int run_repository_sync(ctl *c)
{
    static const column cols[] = {{"REPOSITORY_ID", "repository_id"},
                                  {"PLUGINS", "plugins"},
                                  {"DASHBOARD_TEMPLATES", "dashboard_templates"}};
    json_t *body = json_pack("{s:s}", "repository_id", c->id);
    int rc = call_and_print_one(c, "repository/sync", body, cols, NCOLS(cols));
    json_decref(body);
    return rc;
}

static int run_token_create(ctl *c)
{
    (void)c;
    fputs("repoctl cannot create tokens: tokens are made on the server host, with access\n"
          "to the server's config and tokens file:\n"
          "\n"
          "  repod token create --config FILE --domain D --role R [--name N]\n"
          "\n"
          "ROLE is viewer, admin or system.  The secret is printed once, alone on the last\n"
          "line.  Then send SIGHUP to the running server (kill -HUP <pid>) and give the\n"
          "token to repoctl with --token, --token-file FILE, env REPOD_TOKEN, or\n"
          "\"token_file\" in ~/.config/repoctl/config.json.\n",
          stderr);
    return TK_EXIT_USAGE;
}

/* ---- main --------------------------------------------------------------------- */

static int known_resource(const char *name)
{
    for (const ctl_cmd *k = commands; k->resource != NULL; k++)
        if (strcmp(k->resource, name) == 0)
            return 1;
    return 0;
}

static const ctl_cmd *find_cmd(const char *resource, const char *verb)
{
    for (const ctl_cmd *k = commands; k->resource != NULL; k++)
        if (strcmp(k->resource, resource) == 0 && strcmp(k->verb, verb) == 0)
            return k;
    return NULL;
}

/* Picks the command from the positionals and checks its arguments and
 * options.  Returns TK_EXIT_OK with c->cmd set, TK_EXIT_OK with c->cmd
 * NULL when help was printed, or TK_EXIT_USAGE. */
static int select_cmd(ctl *c)
{
    int help = (c->a.seen & O_HELP) != 0;
    const ctl_args *a = &c->a;
    unsigned extra;
    int nargs;

    if (a->npos > 0 && strcmp(a->pos[0], "help") == 0) {
        /* "repoctl help [RESOURCE [VERB]]" */
        memmove(c->a.pos, c->a.pos + 1, sizeof(c->a.pos[0]) * (size_t)(a->npos - 1));
        c->a.npos--;
        help = 1;
    }
    if (a->npos == 0) {
        if (help) {
            usage_all(stdout);
            return TK_EXIT_OK;
        }
        usage_all(stderr);
        return TK_EXIT_USAGE;
    }
    if (!known_resource(a->pos[0])) {
        usage_error("unknown resource \"%s\" (plugin, repository or token)", a->pos[0]);
        return TK_EXIT_USAGE;
    }
    if (a->npos == 1) {
        if (help) {
            usage_resource(stdout, a->pos[0]);
            return TK_EXIT_OK;
        }
        usage_error("%s: a verb is needed", a->pos[0]);
        usage_resource(stderr, a->pos[0]);
        return TK_EXIT_USAGE;
    }
    c->cmd = find_cmd(a->pos[0], a->pos[1]);
    if (c->cmd == NULL) {
        usage_error("unknown command \"%s %s\"", a->pos[0], a->pos[1]);
        usage_resource(stderr, a->pos[0]);
        return TK_EXIT_USAGE;
    }
    if (help) {
        usage_cmd(stdout, c->cmd);
        c->cmd = NULL;
        return TK_EXIT_OK;
    }
    nargs = a->npos - 2;
    if (nargs != (c->cmd->arg != NULL ? 1 : 0)) {
        if (c->cmd->arg != NULL && nargs == 0)
            usage_error("%s %s: %s is needed", c->cmd->resource, c->cmd->verb, c->cmd->arg);
        else
            usage_error("%s %s: unexpected argument \"%s\"", c->cmd->resource, c->cmd->verb,
                        a->pos[c->cmd->arg != NULL ? 3 : 2]);
        print_synopsis(stderr, "usage: repoctl ", c->cmd);
        c->cmd = NULL;
        return TK_EXIT_USAGE;
    }
    if (c->cmd->arg != NULL) {
        c->id = a->pos[2];
        if (c->id[0] == '\0') {
            usage_error("%s %s: %s must not be empty", c->cmd->resource, c->cmd->verb, c->cmd->arg);
            c->cmd = NULL;
            return TK_EXIT_USAGE;
        }
    }
    extra = a->seen & ~(c->cmd->allowed | O_GLOBAL);
    if (extra != 0) {
        usage_error("%s %s does not take --%s", c->cmd->resource, c->cmd->verb, option_name(extra));
        print_synopsis(stderr, "usage: repoctl ", c->cmd);
        c->cmd = NULL;
        return TK_EXIT_USAGE;
    }
    if (a->output != NULL && strcmp(a->output, "json") != 0 && strcmp(a->output, "table") != 0) {
        usage_error("-o must be table or json (got \"%s\")", a->output);
        c->cmd = NULL;
        return TK_EXIT_USAGE;
    }
    c->json_out = a->output != NULL && strcmp(a->output, "json") == 0;
    return TK_EXIT_OK;
}

int main(int argc, char **argv)
{
    ctl c;
    int rc;

    tk_init_process();
    memset(&c, 0, sizeof(c));
    if (parse_args(argc, argv, &c.a) != 0) {
        rc = TK_EXIT_USAGE;
        goto done;
    }
    rc = select_cmd(&c);
    if (rc != TK_EXIT_OK || c.cmd == NULL)
        goto done;
    if (c.cmd->run != run_token_create) {
        rc = resolve_settings(&c);
        if (rc != TK_EXIT_OK)
            goto done;
    }
    c.width = tk_terminal_width(STDOUT_FILENO);
    rc = c.cmd->run(&c);
    if (fflush(stdout) != 0 && rc == TK_EXIT_OK)
        rc = TK_EXIT_FAIL;
done:
    tk_client_free(c.client);
    free(c.endpoint);
    if (c.token != NULL) {
        memset(c.token, 0, strlen(c.token));
        free(c.token);
    }
    free(c.ca);
    return rc;
}
