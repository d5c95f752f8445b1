/*
 * test_registry_live.c - the registry client against a REAL registry:
 * Debian's docker-registry (github.com/distribution/distribution 2.8),
 * started by this program on 127.0.0.1 with TLS (certificates from
 * certs/gen-dev-certs.sh) in three modes that share one storage folder:
 *
 *   open   - no authentication; the images are pushed through it with the
 *            Distribution HTTP API (blob uploads + schema2 manifests)
 *   basic  - htpasswd (bcrypt, made with `htpasswd -Bbn`)
 *   token  - `auth: token:`; the token service is an HTTPS server inside
 *            this process that issues ES256 JWTs signed with the server
 *            key, the certificate in the JWT's x5c header, the dev CA as the
 *            registry's rootcertbundle
 *
 * The same in-process server also plays ECR's GetAuthorizationToken (the
 * `registries` entry of "api.ecr.us-east-1.amazonaws.com" points at it); the
 * basic-auth registry then plays the ECR registry (user "AWS").
 *
 * Note: distribution 2.8 ignores `n` on tags/list (it never paginates), so
 * multi-page Link pagination is covered by test_registry.c's fake registry;
 * here a small page size must still give the whole list.
 *
 * When docker-registry or htpasswd is missing the program prints why and
 * exits 77 (the conventional "skipped" code) without running anything.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "httpc.h"
#include "registry.h"
#include "util.h"

#define TOKEN_SERVICE "repod-test-registry"
#define TOKEN_ISSUER  "repod-test-issuer"
#define ECR_KEY_ID    "AKIDLIVETEST"
#define ECR_SECRET    "live/ecr+secret"
#define ECR_PASSWORD  "ecr-live-pw"

static char g_registry_bin[512], g_htpasswd_bin[512];
static char g_dir[64];
static char g_ca[128], g_cert[128], g_key[128];
static struct event_base *g_base;
static httpc *g_http;
static repod_conf *g_conf;

/* ---- helpers ----------------------------------------------------------------- */

static int find_exe(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    char *copy, *dir, *save = NULL;
    int found = 0;
    if (path == NULL || path[0] == '\0')
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    copy = strdup(path);
    for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, size, "%s/%s", dir, name);
        found = access(out, X_OK) == 0;
    }
    free(copy);
    if (!found && snprintf(out, size, "/usr/bin/%s", name) > 0 && access(out, X_OK) == 0)
        found = 1;
    return found;
}

static int socket_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        abort();
    return ntohs(sin.sin_port);
}

static int free_port(void)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        abort();
    port = socket_port(fd);
    close(fd);
    return port;
}

static int port_open(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- docker-registry processes --------------------------------------------------- */

typedef struct {
    const char *mode; /* "open", "basic", "token" */
    int port;
    pid_t pid;
    char log[160];
} registry_proc;

static registry_proc g_open = {"open", 0, 0, ""}, g_basic = {"basic", 0, 0, ""},
                     g_token = {"token", 0, 0, ""};

static void dump_log(const registry_proc *p)
{
    char *text = util_read_file(p->log, NULL);
    fprintf(stderr, "---- docker-registry (%s) log ----\n%s\n----\n", p->mode,
            text != NULL ? text : "(none)");
    free(text);
}

/* Writes the config of p and starts `docker-registry serve`; waits (<= 15 s)
 * until its port accepts connections.  0 or -1. */
static int registry_start(registry_proc *p, int token_port)
{
    char cfg[160], text[4096], auth[1024] = "";
    int i, status, fd;

    p->port = free_port();
    snprintf(cfg, sizeof(cfg), "%s/registry-%s.yml", g_dir, p->mode);
    snprintf(p->log, sizeof(p->log), "%s/registry-%s.log", g_dir, p->mode);
    if (strcmp(p->mode, "basic") == 0)
        snprintf(auth, sizeof(auth),
                 "auth:\n  htpasswd:\n    realm: repod-test\n    path: %s/htpasswd\n", g_dir);
    else if (strcmp(p->mode, "token") == 0)
        snprintf(auth, sizeof(auth),
                 "auth:\n  token:\n    realm: https://127.0.0.1:%d/token\n    service: %s\n"
                 "    issuer: %s\n    rootcertbundle: %s\n",
                 token_port, TOKEN_SERVICE, TOKEN_ISSUER, g_ca);
    snprintf(text, sizeof(text),
             "version: 0.1\n"
             "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
             "storage:\n  filesystem:\n    rootdirectory: %s/storage\n"
             "  maintenance:\n    uploadpurging:\n      enabled: false\n"
             "http:\n  addr: 127.0.0.1:%d\n  secret: repod-live-test-%s\n"
             "  tls:\n    certificate: %s\n    key: %s\n"
             "%s",
             g_dir, p->port, p->mode, g_cert, g_key, auth);
    testkit_write_text(cfg, text);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(g_registry_bin, g_registry_bin, "serve", cfg, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 300; i++) {
        if (port_open(p->port))
            return 0;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            fprintf(stderr, "test_registry_live: docker-registry (%s) exited\n", p->mode);
            dump_log(p);
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "test_registry_live: docker-registry (%s) did not listen\n", p->mode);
    dump_log(p);
    return -1;
}

static void registry_stop(registry_proc *p)
{
    int i, status;
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    for (i = 0; i < 100; i++) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &status, 0);
    p->pid = 0;
}

/* ---- the in-process token service and ECR endpoint ----------------------------- */

typedef struct {
    struct evhttp *http;
    SSL_CTX *ctx;
    int port;
    EVP_PKEY *key;  /* signs the JWTs */
    char *x5c;      /* base64 DER of the server certificate */
    int token_hits; /* GET /token */
    int ecr_hits;   /* POST / */
} aux_server;

static aux_server g_aux;

static struct bufferevent *aux_bevcb(struct event_base *base, void *arg)
{
    aux_server *srv = arg;
    SSL *ssl = SSL_new(srv->ctx);
    struct bufferevent *bev;
    if (ssl == NULL)
        abort(); /* never NULL: evhttp would serve plaintext */
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        abort();
    return bev;
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

/* base64url without padding of n bytes (new string). */
static char *b64url(const void *data, size_t n)
{
    char *s = registry_base64_encode(data, n), *p;
    size_t len;
    assert_non_null(s);
    for (p = s; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    len = strlen(s);
    while (len > 0 && s[len - 1] == '=')
        s[--len] = '\0';
    return s;
}

/* An ES256 JWT for docker-registry's token auth: x5c header, the claims the
 * registry checks (iss, aud, exp, nbf, access). */
static char *jwt_make(aux_server *srv, const char *subject, const char *scope)
{
    json_t *header, *claims, *access = json_array();
    char *h_json, *c_json, *h64, *c64, *input, *s64, *out;
    unsigned char der[256], raw[64];
    const unsigned char *p = der;
    size_t der_len = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *sig;
    const BIGNUM *r, *s;
    time_t now = time(NULL);
    char jti[33];
    unsigned char rnd[16];

    /* scope "repository:NAME:pull,push" -> access entry */
    if (scope != NULL && strncmp(scope, "repository:", 11) == 0) {
        const char *name = scope + 11, *colon = strrchr(scope, ':');
        char *n = strndup(name, (size_t)(colon - name)), *acts = strdup(colon + 1), *a, *save;
        json_t *actions = json_array();
        for (a = strtok_r(acts, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save))
            json_array_append_new(actions, json_string(a));
        json_array_append_new(access, json_pack("{s:s, s:s, s:o}", "type", "repository", "name", n,
                                                "actions", actions));
        free(n);
        free(acts);
    }
    util_random_bytes(rnd, sizeof(rnd));
    util_hex(rnd, sizeof(rnd), jti);
    header = json_pack("{s:s, s:s, s:[s]}", "typ", "JWT", "alg", "ES256", "x5c", srv->x5c);
    claims =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}", "iss", TOKEN_ISSUER, "sub", subject,
                  "aud", TOKEN_SERVICE, "exp", (json_int_t)(now + 300), "nbf",
                  (json_int_t)(now - 30), "iat", (json_int_t)now, "jti", jti, "access", access);
    h_json = json_dumps(header, JSON_COMPACT);
    c_json = json_dumps(claims, JSON_COMPACT);
    h64 = b64url(h_json, strlen(h_json));
    c64 = b64url(c_json, strlen(c_json));
    input = malloc(strlen(h64) + strlen(c64) + 2);
    sprintf(input, "%s.%s", h64, c64);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, srv->key), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, strlen(input)),
                     1);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    assert_non_null(sig);
    ECDSA_SIG_get0(sig, &r, &s);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    s64 = b64url(raw, sizeof(raw));
    out = malloc(strlen(input) + strlen(s64) + 2);
    sprintf(out, "%s.%s", input, s64);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    free(h_json);
    free(c_json);
    free(h64);
    free(c64);
    free(input);
    free(s64);
    json_decref(header);
    json_decref(claims);
    return out;
}

static void query_value(struct evhttp_request *req, const char *name, char *out, size_t size)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)), *v;
    out[0] = '\0';
    if (query == NULL)
        return;
    TAILQ_INIT(&q);
    if (evhttp_parse_query_str(query, &q) == 0 && (v = evhttp_find_header(&q, name)) != NULL)
        snprintf(out, size, "%s", v);
    evhttp_clear_headers(&q);
}

static int auth_is(struct evhttp_request *req, const char *user, const char *pw)
{
    const char *got = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    char pair[128], want[256], *b64;
    int ok;
    snprintf(pair, sizeof(pair), "%s:%s", user, pw);
    b64 = registry_base64_encode(pair, strlen(pair));
    snprintf(want, sizeof(want), "Basic %s", b64);
    free(b64);
    ok = got != NULL && strcmp(got, want) == 0;
    return ok;
}

/* GET /token?service=..&scope=..: anonymous, or basic alice:s3cret. */
static void aux_token(aux_server *srv, struct evhttp_request *req)
{
    char service[128], scope[256], body[4096], *jwt;
    const char *subject = "";
    srv->token_hits++;
    query_value(req, "service", service, sizeof(service));
    query_value(req, "scope", scope, sizeof(scope));
    if (strcmp(service, TOKEN_SERVICE) != 0) {
        reply(req, 400, "{\"details\":\"unknown service\"}");
        return;
    }
    if (evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization") != NULL) {
        if (!auth_is(req, "alice", "s3cret")) {
            reply(req, 401, "{\"details\":\"incorrect username or password\"}");
            return;
        }
        subject = "alice";
    }
    jwt = jwt_make(srv, subject, scope);
    snprintf(body, sizeof(body), "{\"token\":\"%s\",\"access_token\":\"%s\",\"expires_in\":300}",
             jwt, jwt);
    free(jwt);
    reply(req, 200, body);
}

/* POST /: ECR GetAuthorizationToken (the signature itself is checked in
 * test_registry.c; here the flow end to end). */
static void aux_ecr(aux_server *srv, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *authz = evhttp_find_header(h, "Authorization");
    const char *target = evhttp_find_header(h, "X-Amz-Target");
    char pair[64], body[512], *b64;
    srv->ecr_hits++;
    if (target == NULL ||
        strcmp(target, "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken") != 0 ||
        authz == NULL || strncmp(authz, "AWS4-HMAC-SHA256 Credential=" ECR_KEY_ID "/", 41) != 0 ||
        strstr(authz, "/us-east-1/ecr/aws4_request") == NULL) {
        reply(req, 400, "{\"__type\":\"UnrecognizedClientException\"}");
        return;
    }
    snprintf(pair, sizeof(pair), "AWS:%s", ECR_PASSWORD);
    b64 = registry_base64_encode(pair, strlen(pair));
    snprintf(body, sizeof(body),
             "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"expiresAt\":%lld}]}", b64,
             (long long)time(NULL) + 43200);
    free(b64);
    reply(req, 200, body);
}

static void aux_gencb(struct evhttp_request *req, void *arg)
{
    aux_server *srv = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (strcmp(path, "/token") == 0)
        aux_token(srv, req);
    else if (evhttp_request_get_command(req) == EVHTTP_REQ_POST && strcmp(path, "/") == 0)
        aux_ecr(srv, req);
    else
        reply(req, 404, "{}");
}

static void aux_start(aux_server *srv)
{
    struct evhttp_bound_socket *sock;
    FILE *f;
    X509 *cert;
    unsigned char *der = NULL;
    int len;

    memset(srv, 0, sizeof(*srv));
    srv->ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate_chain_file(srv->ctx, g_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(srv->ctx, g_key, SSL_FILETYPE_PEM), 1);
    f = fopen(g_key, "r");
    assert_non_null(f);
    srv->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(srv->key);
    f = fopen(g_cert, "r");
    assert_non_null(f);
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(cert);
    len = i2d_X509(cert, &der);
    assert_true(len > 0);
    srv->x5c = registry_base64_encode(der, (size_t)len);
    OPENSSL_free(der);
    X509_free(cert);
    srv->http = evhttp_new(g_base);
    evhttp_set_bevcb(srv->http, aux_bevcb, srv);
    evhttp_set_gencb(srv->http, aux_gencb, srv);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    sock = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
    assert_non_null(sock);
    srv->port = socket_port(evhttp_bound_socket_get_fd(sock));
}

static void aux_stop(aux_server *srv)
{
    if (srv->http != NULL)
        evhttp_free(srv->http);
    SSL_CTX_free(srv->ctx);
    EVP_PKEY_free(srv->key);
    free(srv->x5c);
    memset(srv, 0, sizeof(*srv));
}

/* ---- the event loop ------------------------------------------------------------ */

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

static void run_until(const int *flag, int max_ms)
{
    int expired = 0;
    struct timeval tv = {max_ms / 1000, (max_ms % 1000) * 1000};
    struct event *guard = evtimer_new(g_base, guard_cb, &expired);
    evtimer_add(guard, &tv);
    while (*flag == 0 && !expired)
        event_base_loop(g_base, EVLOOP_ONCE);
    event_free(guard);
}

/* ---- pushing images with the Distribution API ------------------------------------ */

typedef struct {
    int done;
    httpc_result result;
    int status;
    char location[1024];
    char error[256];
} http_result;

static void on_http(const httpc_response *resp, void *arg)
{
    http_result *r = arg;
    const char *loc = httpc_response_header(resp, "Location");
    r->done = 1;
    r->result = resp->result;
    r->status = resp->status;
    snprintf(r->location, sizeof(r->location), "%s", loc != NULL ? loc : "");
    snprintf(r->error, sizeof(r->error), "%s", resp->error != NULL ? resp->error : "");
}

static void http_do(const char *method, const char *url, const char *ctype, const char *body,
                    size_t len, http_result *r)
{
    httpc_request_opts o;
    const char *headers[] = {"Content-Type", ctype, NULL};
    memset(r, 0, sizeof(*r));
    httpc_request_init(&o);
    o.method = method;
    o.url = url;
    o.headers = ctype != NULL ? headers : NULL;
    o.body = body != NULL ? body : "";
    o.body_len = len;
    o.ca_file = g_ca;
    o.timeout_ms = 10000;
    httpc_request(g_http, &o, on_http, r);
    run_until(&r->done, 15000);
    if (!r->done || r->result != HTTPC_OK)
        fail_msg("%s %s: %s", method, url, r->error);
}

/* Uploads data as a blob of name; writes its digest. */
static void push_blob(const char *base, const char *name, const char *data, char digest[72])
{
    char url[1200], hex[65];
    http_result r;
    util_sha256_hex(data, strlen(data), hex);
    snprintf(digest, 72, "sha256:%s", hex);
    snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/", base, name);
    http_do("POST", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 202);
    if (strncmp(r.location, "https://", 8) == 0)
        snprintf(url, sizeof(url), "%s%cdigest=%s", r.location,
                 strchr(r.location, '?') != NULL ? '&' : '?', digest);
    else
        snprintf(url, sizeof(url), "%s%s%cdigest=%s", base, r.location,
                 strchr(r.location, '?') != NULL ? '&' : '?', digest);
    http_do("PUT", url, "application/octet-stream", data, strlen(data), &r);
    assert_int_equal(r.status, 201);
}

/* Pushes a minimal schema2 image of name under each tag. */
static void push_image(const char *name, const char *const *tags)
{
    char base[64], cfg_digest[72], layer_digest[72], manifest[1024], url[512], config[256];
    const char *layer = "not really a tar.gz, the registry does not look";
    http_result r;
    size_t i;

    snprintf(base, sizeof(base), "https://127.0.0.1:%d", g_open.port);
    snprintf(
        config, sizeof(config),
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":{\"image\":\"%s\"}},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
        name);
    push_blob(base, name, config, cfg_digest);
    push_blob(base, name, layer, layer_digest);
    snprintf(manifest, sizeof(manifest),
             "{\"schemaVersion\":2,\"mediaType\":\"application/"
             "vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":\"application/"
             "vnd.docker.container.image.v1+json\",\"size\":%zu,\"digest\":\"%s\"},\"layers\":[{"
             "\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":%zu,"
             "\"digest\":\"%s\"}]}",
             strlen(config), cfg_digest, strlen(layer), layer_digest);
    for (i = 0; tags[i] != NULL; i++) {
        snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", base, name, tags[i]);
        http_do("PUT", url, "application/vnd.docker.distribution.manifest.v2+json", manifest,
                strlen(manifest), &r);
        if (r.status != 201)
            fail_msg("PUT manifest %s:%s -> %d", name, tags[i], r.status);
    }
}

/* The tags pushed to pyengine/plugin-jira, newest first. */
static const char *const jira_order[] = {"1.2.2",
                                         "1.2.1.20220429.104002",
                                         "1.2.1.20220422.161421",
                                         "1.2.1.20220411.113807",
                                         "1.2.1",
                                         "v1.1",
                                         "1.0",
                                         "1.0-rc2",
                                         "1.0-rc1",
                                         "0.9",
                                         "dev",
                                         "latest",
                                         NULL};

/* ---- fixture ------------------------------------------------------------------ */

static void add_entry(json_t *regs, const char *host, int port)
{
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    json_object_set_new(
        regs, host,
        json_pack("{s:s, s:s, s:i}", "api_url", url, "ca_file", g_ca, "timeout_ms", 3000));
}

static void entry_set(json_t *regs, const char *host, const char *key, const char *value)
{
    json_object_set_new(json_object_get(regs, host), key, json_string(value));
}

static int group_setup(void **state)
{
    static const char *const busybox_tags[] = {"1.36", "latest", "1.35.0", NULL};
    static const char *const ecr_tags[] = {"2.0", "1.0", NULL};
    char cmd[4096], pw_good[128], pw_bad[128], aws_key[128], *json;
    const char *script = testkit_cert_script();
    json_t *regs, *root;
    rd_error err = {0};
    (void)state;

    if (script == NULL) {
        fprintf(stderr, "test_registry_live: certs/gen-dev-certs.sh not found\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_registry_live.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "bash '%s' --force '%s' >/dev/null 2>&1 && "
             "'%s' -Bbn alice s3cret > '%s/htpasswd' 2>/dev/null && "
             "'%s' -Bbn AWS '%s' >> '%s/htpasswd' 2>/dev/null",
             script, g_dir, g_htpasswd_bin, g_dir, g_htpasswd_bin, ECR_PASSWORD, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_registry_live: certificates or htpasswd failed\n");
        return -1;
    }
    snprintf(g_ca, sizeof(g_ca), "%s/ca.crt", g_dir);
    snprintf(g_cert, sizeof(g_cert), "%s/server.crt", g_dir);
    snprintf(g_key, sizeof(g_key), "%s/server.key", g_dir);
    snprintf(pw_good, sizeof(pw_good), "%s/good.pw", g_dir);
    snprintf(pw_bad, sizeof(pw_bad), "%s/bad.pw", g_dir);
    snprintf(aws_key, sizeof(aws_key), "%s/aws.key", g_dir);
    testkit_write_text(pw_good, "s3cret\n");
    testkit_write_text(pw_bad, "WRONG-live-pass\n");
    testkit_write_text(aws_key, ECR_SECRET "\n");

    g_base = event_base_new();
    g_http = httpc_new(g_base);
    aux_start(&g_aux);
    if (registry_start(&g_open, 0) != 0 || registry_start(&g_basic, 0) != 0 ||
        registry_start(&g_token, g_aux.port) != 0)
        return -1;

    push_image("pyengine/plugin-jira", jira_order);
    push_image("library/busybox", busybox_tags);
    push_image("team/ecr-app", ecr_tags);

    regs = json_object();
    add_entry(regs, "open.test", g_open.port);
    add_entry(regs, "registry.hub.docker.com", g_open.port);
    add_entry(regs, "basic.test", g_basic.port);
    entry_set(regs, "basic.test", "username", "alice");
    entry_set(regs, "basic.test", "password_file", pw_good);
    add_entry(regs, "basicwrong.test", g_basic.port);
    entry_set(regs, "basicwrong.test", "username", "alice");
    entry_set(regs, "basicwrong.test", "password_file", pw_bad);
    add_entry(regs, "basicnone.test", g_basic.port);
    add_entry(regs, "token.test", g_token.port);
    entry_set(regs, "token.test", "username", "alice");
    entry_set(regs, "token.test", "password_file", pw_good);
    add_entry(regs, "tokenwrong.test", g_token.port);
    entry_set(regs, "tokenwrong.test", "username", "alice");
    entry_set(regs, "tokenwrong.test", "password_file", pw_bad);
    add_entry(regs, "tokenanon.test", g_token.port);
    /* the token service runs on its own port: a realm host of these entries */
    {
        char realm[64];
        snprintf(realm, sizeof(realm), "127.0.0.1:%d", g_aux.port);
        json_object_set_new(json_object_get(regs, "token.test"), "token_realm_hosts",
                            json_pack("[s]", realm));
        json_object_set_new(json_object_get(regs, "tokenwrong.test"), "token_realm_hosts",
                            json_pack("[s]", realm));
        json_object_set_new(json_object_get(regs, "tokenanon.test"), "token_realm_hosts",
                            json_pack("[s]", realm));
    }
    add_entry(regs, "123456789012.dkr.ecr.us-east-1.amazonaws.com", g_basic.port);
    entry_set(regs, "123456789012.dkr.ecr.us-east-1.amazonaws.com", "aws_access_key_id",
              ECR_KEY_ID);
    entry_set(regs, "123456789012.dkr.ecr.us-east-1.amazonaws.com", "aws_secret_access_key_file",
              aws_key);
    add_entry(regs, "api.ecr.us-east-1.amazonaws.com", g_aux.port);
    root = json_pack("{s:{s:s, s:s}, s:s, s:o}", "tls", "cert", g_cert, "key", g_key, "data_dir",
                     g_dir, "registries", regs);
    json = json_dumps(root, 0);
    json_decref(root);
    if (conf_load_string(json, "/etc/repod/repod.json", &g_conf, &err) != RD_OK) {
        fprintf(stderr, "test_registry_live: config refused: %s\n", err.message);
        free(json);
        return -1;
    }
    free(json);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    registry_stop(&g_open);
    registry_stop(&g_basic);
    registry_stop(&g_token);
    conf_free(g_conf);
    aux_stop(&g_aux);
    httpc_free(g_http);
    if (g_base != NULL)
        event_base_free(g_base);
    if (g_dir[0] != '\0')
        testkit_rm_tree(g_dir);
    return 0;
}

/* ---- lookups ------------------------------------------------------------------ */

typedef struct {
    int calls;
    rd_status rc;
    rd_error err;
    json_t *tags;
} result;

static void on_result(rd_status rc, const rd_error *err, json_t *tags, void *arg)
{
    result *r = arg;
    r->calls++;
    r->rc = rc;
    if (err != NULL)
        r->err = *err;
    if (tags != NULL)
        r->tags = json_deep_copy(tags);
}

static void lookup(registry_client *rc, const char *type, const char *url, const char *image,
                   result *r)
{
    memset(r, 0, sizeof(*r));
    registry_list_tags(rc, type, url, NULL, image, on_result, r);
    assert_int_equal(r->calls, 0);
    run_until(&r->calls, 15000);
    assert_int_equal(r->calls, 1);
}

static void result_clear(result *r)
{
    json_decref(r->tags);
    memset(r, 0, sizeof(*r));
}

static void expect_ok(const result *r)
{
    if (r->rc != RD_OK)
        fail_msg("%s: %s", rd_status_name(r->rc), r->err.message);
    assert_non_null(r->tags);
}

static void expect_error(const result *r, rd_status code, const char *needle)
{
    if (r->rc != code)
        fail_msg("expected %s, got %s: %s", rd_status_name(code), rd_status_name(r->rc),
                 r->err.message);
    if (needle != NULL && strstr(r->err.message, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", r->err.message, needle);
}

static void expect_tags(const json_t *tags, const char *const *expect)
{
    size_t i, n = 0;
    char *dump = json_dumps(tags, 0);
    while (expect[n] != NULL)
        n++;
    if (json_array_size(tags) != n)
        fail_msg("expected %zu tags, got %s", n, dump);
    for (i = 0; i < n; i++) {
        if (strcmp(json_string_value(json_array_get(tags, i)), expect[i]) != 0)
            fail_msg("position %zu: expected %s in %s", i, expect[i], dump);
    }
    free(dump);
}

static int setup(void **state)
{
    g_aux.token_hits = g_aux.ecr_hits = 0;
    *state = registry_client_new(g_http, g_conf);
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    registry_client_free(*state);
    return 0;
}

static void test_tags_in_precedence_order(void **state)
{
    result r;
    lookup(*state, "HARBOR", "open.test", "pyengine/plugin-jira", &r);
    expect_ok(&r);
    expect_tags(r.tags, jira_order);
    result_clear(&r);
}

static void test_small_page_size_still_complete(void **state)
{
    registry_client_options o;
    registry_client *rc;
    result r;
    (void)state;
    registry_client_options_init(&o);
    o.page_size = 2;
    rc = registry_client_new_with(g_http, g_conf, &o);
    lookup(rc, "HARBOR", "open.test", "pyengine/plugin-jira", &r);
    expect_ok(&r);
    expect_tags(r.tags, jira_order);
    result_clear(&r);
    registry_client_free(rc);
}

static void test_unknown_image(void **state)
{
    result r;
    lookup(*state, "HARBOR", "open.test", "pyengine/no-such-plugin", &r);
    expect_error(&r, RD_ERR_NO_IMAGE_IN_REGISTRY, "pyengine/no-such-plugin");
    result_clear(&r);
    lookup(*state, "HARBOR", "token.test", "pyengine/no-such-plugin", &r);
    expect_error(&r, RD_ERR_NO_IMAGE_IN_REGISTRY, "pyengine/no-such-plugin");
    result_clear(&r);
}

static void test_docker_hub_library_prefix(void **state)
{
    static const char *const expect[] = {"1.36", "1.35.0", "latest", NULL};
    result r;
    lookup(*state, "DOCKER_HUB", NULL, "busybox", &r);
    expect_ok(&r);
    expect_tags(r.tags, expect);
    result_clear(&r);
}

static void test_htpasswd_basic_auth(void **state)
{
    result r;
    lookup(*state, "HARBOR", "basic.test", "pyengine/plugin-jira", &r);
    expect_ok(&r);
    expect_tags(r.tags, jira_order);
    result_clear(&r);
    lookup(*state, "HARBOR", "basicwrong.test", "pyengine/plugin-jira", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "authentication was refused");
    assert_non_null(strstr(r.err.message, "basicwrong.test"));
    assert_null(strstr(r.err.message, "WRONG-live-pass"));
    result_clear(&r);
    lookup(*state, "HARBOR", "basicnone.test", "pyengine/plugin-jira", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "none are configured");
    result_clear(&r);
}

static void test_token_auth_and_reuse(void **state)
{
    result r;
    lookup(*state, "HARBOR", "token.test", "pyengine/plugin-jira", &r);
    expect_ok(&r);
    expect_tags(r.tags, jira_order);
    assert_int_equal(g_aux.token_hits, 1);
    result_clear(&r);
    /* the bearer token is cached per (host, scope) and reused */
    lookup(*state, "HARBOR", "token.test", "pyengine/plugin-jira", &r);
    expect_ok(&r);
    assert_int_equal(g_aux.token_hits, 1);
    assert_int_equal(registry_client_credential_fetches(*state), 1);
    result_clear(&r);
    /* another scope needs another token */
    lookup(*state, "HARBOR", "token.test", "library/busybox", &r);
    expect_ok(&r);
    assert_int_equal(g_aux.token_hits, 2);
    result_clear(&r);
    /* anonymous tokens work too */
    lookup(*state, "HARBOR", "tokenanon.test", "team/ecr-app", &r);
    expect_ok(&r);
    result_clear(&r);
    /* wrong password: the token service refuses */
    lookup(*state, "HARBOR", "tokenwrong.test", "pyengine/plugin-jira", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "authentication was refused");
    assert_null(strstr(r.err.message, "WRONG-live-pass"));
    result_clear(&r);
}

static void test_ecr_flow(void **state)
{
    static const char *const expect[] = {"2.0", "1.0", NULL};
    json_t *cfg = json_pack("{s:s, s:s}", "account_id", "123456789012", "region", "us-east-1");
    result r;
    memset(&r, 0, sizeof(r));
    registry_list_tags(*state, "AWS_PRIVATE_ECR", NULL, cfg, "team/ecr-app", on_result, &r);
    run_until(&r.calls, 15000);
    expect_ok(&r);
    expect_tags(r.tags, expect);
    assert_int_equal(g_aux.ecr_hits, 1);
    result_clear(&r);
    lookup(*state, "AWS_PRIVATE_ECR", "123456789012.dkr.ecr.us-east-1.amazonaws.com",
           "team/ecr-app", &r);
    expect_ok(&r);
    assert_int_equal(g_aux.ecr_hits, 1); /* cached until expiresAt */
    result_clear(&r);
    json_decref(cfg);
}

/* Last: stops the open registry. */
static void test_registry_stopped(void **state)
{
    result r;
    lookup(*state, "HARBOR", "open.test", "pyengine/plugin-jira", &r); /* pools a connection */
    expect_ok(&r);
    result_clear(&r);
    registry_stop(&g_open);
    lookup(*state, "HARBOR", "open.test", "pyengine/plugin-jira", &r);
    expect_error(&r, RD_ERR_REGISTRY_UNAVAILABLE, "open.test");
    result_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tags_in_precedence_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_page_size_still_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docker_hub_library_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_htpasswd_basic_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_auth_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecr_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_stopped, setup, teardown),
    };
    if (!find_exe("docker-registry", g_registry_bin, sizeof(g_registry_bin)) ||
        !find_exe("htpasswd", g_htpasswd_bin, sizeof(g_htpasswd_bin))) {
        fprintf(stderr, "test_registry_live: SKIPPED: docker-registry and htpasswd are needed "
                        "(Debian packages docker-registry and apache2-utils; "
                        "tools/install-deps.sh installs them)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
