/*
 * token_cli.c - `repod token create|list|revoke`: manages the tokens file
 * named by auth.tokens_file in the server config (SPEC section 7).
 *
 *   repod token create --config FILE --domain DOMAIN_ID --role ROLE [--name NAME]
 *   repod token list   --config FILE
 *   repod token revoke --config FILE NAME
 *
 * Options also accept the --opt=VALUE form.  Exit codes: 0 done, 1 failure
 * (bad config or tokens file, duplicate or unknown name), 2 bad usage (usage
 * text on stderr).
 *
 * Output (stdout):
 *   create - "key: value" info lines (name, domain_id, role, created_at,
 *            file), a SIGHUP note, then the secret alone on the LAST line.
 *   list   - a table with the columns NAME DOMAIN_ID ROLE CREATED_AT (never
 *            hashes or secrets); nothing but the header when empty.
 *   revoke - one confirmation line and the SIGHUP note.
 * Errors go to stderr as "repod token VERB: REASON".  The secret is printed
 * exactly once and never written anywhere else.
 *
 * Concurrent invocations are serialised with flock(2) on the folder that
 * holds the tokens file, so two creates cannot lose each other's entry.
 */
#include "auth.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

#define SIGHUP_NOTE "A running server picks up the change on SIGHUP (kill -HUP <pid>)."

/* Option bits: which options a verb accepts. */
enum { OPT_CONFIG = 1, OPT_DOMAIN = 2, OPT_ROLE = 4, OPT_NAME = 8 };

typedef struct {
    const char *config;
    const char *domain;
    const char *role;
    const char *name;
    const char *positional[2];
    int npositional;
    int help;
} cli_args;

static void usage(FILE *f)
{
    fputs("usage: repod token create --config FILE --domain DOMAIN_ID --role ROLE [--name NAME]\n"
          "       repod token list   --config FILE\n"
          "       repod token revoke --config FILE NAME\n"
          "\n"
          "ROLE is viewer, admin or system.  NAME defaults to <role>-<8 hex>; names and\n"
          "domain ids are 1-127 characters of [A-Za-z0-9._:@-].  create prints the new\n"
          "secret once, alone on the last line of stdout; the tokens file (auth.tokens_file\n"
          "in the config) stores only its SHA-256 hash.  A running server reloads the\n"
          "tokens file on SIGHUP.\n",
          f);
}

/* Parses argv[2..] into a; allowed is a mask of OPT_* bits.  Returns 0, or -1
 * after printing the reason to stderr. */
static int parse_args(int argc, char **argv, unsigned allowed, int max_positional, cli_args *a)
{
    static const struct {
        const char *name;
        unsigned bit;
        size_t offset;
    } opts[] = {
        {"--config", OPT_CONFIG, offsetof(cli_args, config)},
        {"--domain", OPT_DOMAIN, offsetof(cli_args, domain)},
        {"--role", OPT_ROLE, offsetof(cli_args, role)},
        {"--name", OPT_NAME, offsetof(cli_args, name)},
    };
    int only_positional = 0;

    memset(a, 0, sizeof(*a));
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        size_t k, n = sizeof(opts) / sizeof(opts[0]);
        if (!only_positional && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
            a->help = 1;
            continue;
        }
        if (!only_positional && strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (a->npositional >= max_positional) {
                fprintf(stderr, "repod token %s: unexpected argument '%s'\n", argv[1], arg);
                return -1;
            }
            a->positional[a->npositional++] = arg;
            continue;
        }
        for (k = 0; k < n; k++) {
            size_t len = strlen(opts[k].name);
            if (strncmp(arg, opts[k].name, len) == 0 && (arg[len] == '\0' || arg[len] == '='))
                break;
        }
        if (k == n || !(allowed & opts[k].bit)) {
            fprintf(stderr, "repod token %s: unknown option '%s'\n", argv[1], arg);
            return -1;
        }
        const char **slot = (const char **)((char *)a + opts[k].offset);
        const char *eq = strchr(arg, '=');
        if (eq != NULL) {
            *slot = eq + 1;
        } else if (i + 1 < argc) {
            *slot = argv[++i];
        } else {
            fprintf(stderr, "repod token %s: %s needs a value\n", argv[1], opts[k].name);
            return -1;
        }
    }
    if (a->help)
        return 0;
    if ((allowed & OPT_CONFIG) && (a->config == NULL || a->config[0] == '\0')) {
        fprintf(stderr, "repod token %s: --config FILE is required\n", argv[1]);
        return -1;
    }
    return 0;
}

/* Loads the config and returns a malloc'd copy of auth.tokens_file; NULL
 * after printing the reason. */
static char *tokens_path(const char *verb, const char *config)
{
    repod_conf *conf = NULL;
    rd_error err;
    char *path = NULL;

    rd_error_clear(&err);
    if (conf_load_values(config, &conf, &err) != RD_OK) {
        fprintf(stderr, "repod token %s: %s\n", verb, err.message);
        return NULL;
    }
    if (conf->tokens_file == NULL || conf->tokens_file[0] == '\0')
        fprintf(stderr, "repod token %s: %s: auth.tokens_file: empty\n", verb, config);
    else if ((path = strdup(conf->tokens_file)) == NULL)
        fprintf(stderr, "repod token %s: out of memory\n", verb);
    conf_free(conf);
    return path;
}

/* Takes an exclusive flock on the folder of path (created when missing) so
 * read-modify-write cycles of concurrent CLI runs do not interleave.  Returns
 * the descriptor to close, or -1 after printing the reason. */
static int lock_folder(const char *verb, const char *path)
{
    char *copy = strdup(path);
    const char *dir;
    int fd = -1;

    if (copy == NULL) {
        fprintf(stderr, "repod token %s: out of memory\n", verb);
        return -1;
    }
    dir = dirname(copy);
    if (util_mkdir_p(dir) != 0) {
        fprintf(stderr, "repod token %s: %s: cannot create folder: %s\n", verb, dir,
                strerror(errno));
        goto done;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        fprintf(stderr, "repod token %s: %s: cannot lock folder: %s\n", verb, dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
done:
    free(copy);
    return fd;
}

/* Index of the entry called name in doc's tokens, or -1. */
static long find_name(json_t *doc, const char *name)
{
    json_t *tokens = json_object_get(doc, "tokens"), *e;
    size_t i;
    json_array_foreach(tokens, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return (long)i;
    }
    return -1;
}

static int cmd_create(const cli_args *a)
{
    int rc = CLI_FAIL, lock_fd = -1, role;
    char *path = NULL;
    json_t *doc = NULL, *entry = NULL;
    rd_error err;
    char token[AUTH_TOKEN_LEN + 1], hash[AUTH_SHA256_HEX_LEN + 1], name[AUTH_NAME_MAX];
    char created[UTIL_TIMESTAMP_LEN + 8];

    token[0] = '\0';
    rd_error_clear(&err);
    if (a->domain == NULL || a->role == NULL) {
        fprintf(stderr, "repod token create: --domain and --role are required\n");
        usage(stderr);
        return CLI_USAGE;
    }
    role = auth_role_parse(a->role);
    if (role < 0) {
        fprintf(stderr, "repod token create: --role must be viewer, admin or system\n");
        usage(stderr);
        return CLI_USAGE;
    }
    if (!auth_name_valid(a->domain)) {
        fprintf(stderr,
                "repod token create: --domain must be 1-%d characters of [A-Za-z0-9._:@-]\n",
                AUTH_NAME_MAX - 1);
        usage(stderr);
        return CLI_USAGE;
    }
    if (a->name != NULL && !auth_name_valid(a->name)) {
        fprintf(stderr, "repod token create: --name must be 1-%d characters of [A-Za-z0-9._:@-]\n",
                AUTH_NAME_MAX - 1);
        usage(stderr);
        return CLI_USAGE;
    }

    path = tokens_path("create", a->config);
    if (path == NULL)
        goto done;
    lock_fd = lock_folder("create", path);
    if (lock_fd < 0)
        goto done;
    if (auth_file_load(path, &doc, &err) != RD_OK) {
        fprintf(stderr, "repod token create: %s\n", err.message);
        goto done;
    }
    if (a->name != NULL) {
        snprintf(name, sizeof(name), "%s", a->name);
        if (find_name(doc, name) >= 0) {
            fprintf(stderr, "repod token create: a token named '%s' already exists in %s\n", name,
                    path);
            goto done;
        }
    } else {
        do {
            unsigned char raw[4];
            char hex[9];
            if (util_random_bytes(raw, sizeof(raw)) != 0) {
                fprintf(stderr, "repod token create: random generator failed\n");
                goto done;
            }
            util_hex(raw, sizeof(raw), hex);
            snprintf(name, sizeof(name), "%s-%s", a->role, hex);
        } while (find_name(doc, name) >= 0);
    }
    if (auth_token_generate(token, sizeof(token), hash) != 0) {
        fprintf(stderr, "repod token create: random generator failed\n");
        goto done;
    }
    util_now_iso8601(created, sizeof(created));
    entry = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "sha256", hash, "domain_id",
                      a->domain, "role", auth_role_name((auth_role)role), "created_at", created);
    if (entry == NULL || json_array_append_new(json_object_get(doc, "tokens"), entry) != 0) {
        fprintf(stderr, "repod token create: out of memory\n");
        goto done;
    }
    if (auth_file_save(path, doc, &err) != RD_OK) {
        fprintf(stderr, "repod token create: %s\n", err.message);
        goto done;
    }
    LOG_AUDIT("token.create name=%s domain=%s role=%s file=%s uid=%ld", name, a->domain,
              auth_role_name((auth_role)role), path, (long)getuid());
    printf("Created token.\n"
           "name:       %s\n"
           "domain_id:  %s\n"
           "role:       %s\n"
           "created_at: %s\n"
           "file:       %s\n"
           "%s\n"
           "The secret is on the next line; it is shown only this once:\n"
           "%s\n",
           name, a->domain, auth_role_name((auth_role)role), created, path, SIGHUP_NOTE, token);
    rc = CLI_OK;
done:
    OPENSSL_cleanse(token, sizeof(token));
    json_decref(doc);
    if (lock_fd >= 0)
        close(lock_fd);
    free(path);
    return rc;
}

static int cmd_list(const cli_args *a)
{
    int rc = CLI_FAIL;
    char *path = NULL;
    json_t *doc = NULL, *tokens, *e;
    rd_error err;
    size_t i;
    int w_name = 4, w_domain = 9, w_role = 4;

    rd_error_clear(&err);
    path = tokens_path("list", a->config);
    if (path == NULL)
        goto done;
    if (auth_file_load(path, &doc, &err) != RD_OK) {
        fprintf(stderr, "repod token list: %s\n", err.message);
        goto done;
    }
    tokens = json_object_get(doc, "tokens");
    json_array_foreach(tokens, i, e)
    {
        int n = (int)strlen(json_string_value(json_object_get(e, "name")));
        int d = (int)strlen(json_string_value(json_object_get(e, "domain_id")));
        int r = (int)strlen(json_string_value(json_object_get(e, "role")));
        w_name = n > w_name ? n : w_name;
        w_domain = d > w_domain ? d : w_domain;
        w_role = r > w_role ? r : w_role;
    }
    printf("%-*s  %-*s  %-*s  %s\n", w_name, "NAME", w_domain, "DOMAIN_ID", w_role, "ROLE",
           "CREATED_AT");
    json_array_foreach(tokens, i, e)
    {
        const char *created = json_string_value(json_object_get(e, "created_at"));
        printf("%-*s  %-*s  %-*s  %s\n", w_name, json_string_value(json_object_get(e, "name")),
               w_domain, json_string_value(json_object_get(e, "domain_id")), w_role,
               json_string_value(json_object_get(e, "role")), created ? created : "-");
    }
    rc = CLI_OK;
done:
    json_decref(doc);
    free(path);
    return rc;
}

static int cmd_revoke(const cli_args *a)
{
    int rc = CLI_FAIL, lock_fd = -1;
    char *path = NULL, domain[AUTH_NAME_MAX], role[16];
    json_t *doc = NULL, *e;
    rd_error err;
    const char *name = a->positional[0];
    long idx;

    rd_error_clear(&err);
    if (a->npositional != 1) {
        fprintf(stderr, "repod token revoke: NAME is required\n");
        usage(stderr);
        return CLI_USAGE;
    }
    path = tokens_path("revoke", a->config);
    if (path == NULL)
        goto done;
    lock_fd = lock_folder("revoke", path);
    if (lock_fd < 0)
        goto done;
    if (auth_file_load(path, &doc, &err) != RD_OK) {
        fprintf(stderr, "repod token revoke: %s\n", err.message);
        goto done;
    }
    idx = find_name(doc, name);
    if (idx < 0) {
        fprintf(stderr, "repod token revoke: no token named '%s' in %s\n", name, path);
        goto done;
    }
    e = json_array_get(json_object_get(doc, "tokens"), (size_t)idx);
    snprintf(domain, sizeof(domain), "%s", json_string_value(json_object_get(e, "domain_id")));
    snprintf(role, sizeof(role), "%s", json_string_value(json_object_get(e, "role")));
    if (json_array_remove(json_object_get(doc, "tokens"), (size_t)idx) != 0 ||
        auth_file_save(path, doc, &err) != RD_OK) {
        fprintf(stderr, "repod token revoke: %s\n",
                err.code != RD_OK ? err.message : "cannot remove the entry");
        goto done;
    }
    LOG_AUDIT("token.revoke name=%s domain=%s role=%s file=%s uid=%ld", name, domain, role, path,
              (long)getuid());
    printf("Revoked token '%s'.\n%s\n", name, SIGHUP_NOTE);
    rc = CLI_OK;
done:
    json_decref(doc);
    if (lock_fd >= 0)
        close(lock_fd);
    free(path);
    return rc;
}

int auth_cli_main(int argc, char **argv)
{
    static const struct {
        const char *verb;
        unsigned allowed;
        int max_positional;
        int (*run)(const cli_args *a);
    } verbs[] = {
        {"create", OPT_CONFIG | OPT_DOMAIN | OPT_ROLE | OPT_NAME, 0, cmd_create},
        {"list", OPT_CONFIG, 0, cmd_list},
        {"revoke", OPT_CONFIG, 1, cmd_revoke},
    };
    cli_args a;
    int rc;

    if (argc < 2 || argv[1] == NULL) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        fflush(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(argv[1], verbs[i].verb) != 0)
            continue;
        if (parse_args(argc, argv, verbs[i].allowed, verbs[i].max_positional, &a) != 0) {
            usage(stderr);
            return CLI_USAGE;
        }
        if (a.help) {
            usage(stdout);
            fflush(stdout);
            return CLI_OK;
        }
        rc = verbs[i].run(&a);
        fflush(stdout);
        return rc;
    }
    fprintf(stderr, "repod token: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
