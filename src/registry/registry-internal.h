/*
 * registry-internal.h - what the registry client's files share: limits,
 * the client and lookup structs, and the functions one file calls in the
 * other.
 *
 *   registry.c  public API, the lookup state machine, tags pagination,
 *               transport and status errors
 *   auth.c      the credential cache, the 401 answer (Bearer token flow,
 *               Basic credentials), the token service and ECR
 *               GetAuthorizationToken
 *   gate.c      fail fast per registry origin (one probe, negative cache)
 *   gcp.c       GCP service-account keys -> OAuth access tokens
 *
 * Not part of the public API: only registry.c, auth.c and gate.c include it.
 * Everything here runs on the httpc's loop thread only.
 */
#ifndef REPOD_REGISTRY_INTERNAL_H
#define REPOD_REGISTRY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "httpc.h"
#include "registry.h"

#define REGISTRY_PAGE_SIZE        1000
#define REGISTRY_MAX_PAGES        100
#define REGISTRY_MAX_BYTES        ((size_t)8 * 1024 * 1024)
#define REGISTRY_TIMEOUT_MS       5000
#define REGISTRY_TOKEN_TTL_S      60      /* bearer tokens without expires_in */
#define REGISTRY_BASIC_TTL_MS     300000  /* configured basic credentials */
#define REGISTRY_ECR_TTL_MS       3600000 /* ECR answers without expiresAt */
#define REGISTRY_ECR_MARGIN_MS    60000   /* renew ECR credentials this early */
#define REGISTRY_CACHE_MAX        256
#define REGISTRY_MAX_UNAUTHORIZED 4 /* 401s answered in one lookup */
#define REGISTRY_ECR_TARGET       "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
#define REGISTRY_ECR_CONTENT_TYPE "application/x-amz-json-1.1"
#define REGISTRY_SIGV4_MAX        1024

typedef struct cred_entry {
    struct cred_entry *next;
    char *key;          /* host "|" scope */
    char *header;       /* Authorization value (secret) */
    int64_t expires_ms; /* monotonic */
} cred_entry;

typedef struct lookup lookup;

/* What the client knows of one registry API origin (fail fast, gate.c). */
typedef struct host_state {
    struct host_state *next;
    char *origin;          /* "scheme://host:port|<registries key>" of the api_url */
    int64_t down_until_ms; /* monotonic; lookups fail at once before this */
    int verified;          /* an HTTP answer came since the last connect failure */
    lookup *probe;         /* the one lookup allowed to connect while unverified */
    lookup *parked;        /* lookups waiting for the probe (via park_next) */
    size_t parked_count;
} host_state;

struct registry_client {
    httpc *http;
    const repod_conf *conf;
    registry_client_options opts;
    lookup *lookups; /* pending, doubly linked */
    size_t pending;
    cred_entry *cache;
    size_t cache_count;
    unsigned long credential_fetches;
    host_state *hosts;
    size_t host_count;
};

typedef enum { STEP_DEFERRED, STEP_ECR, STEP_GCP, STEP_TOKEN, STEP_TAGS } lookup_step;

/* Where and how one kind of request goes. */
typedef struct {
    char *ca_file; /* NULL = system trust store */
    int verify;
    int timeout_ms;
    int plain;      /* http:// permitted (configured api_url is http://) */
    int restricted; /* refuse loopback, link-local, unspecified, multicast addresses */
} link_settings;

struct lookup {
    registry_client *rc; /* NULL once cancelled */
    lookup *prev, *next;
    registry_tags_cb cb;
    void *arg;
    char *image; /* as given, for messages */
    registry_target t;
    link_settings reg;                     /* the registry */
    link_settings ecr;                     /* ECR's API endpoint */
    link_settings realm;                   /* the token service of the current dance */
    link_settings gcp;                     /* GCP: the key's token_uri */
    registry_gcp_key gcp_key;              /* GCP: the service-account key (secret) */
    char *username, *password;             /* basic credentials (password secret) */
    char *aws_key_id, *aws_secret;         /* ECR keys (secret) */
    char *ecr_host, *ecr_path, *ecr_query; /* Host header, path and query of the ECR API URL */
    lookup_step step;
    char *url;        /* the tags page being read */
    char *auth;       /* Authorization value for tags requests (secret) */
    int auth_cached;  /* auth came from the cache */
    int dance_done;   /* auth was obtained by this lookup */
    int unauthorized; /* 401s seen */
    int pages;
    char *scope;       /* "repository:<name>:pull" */
    char *token_scope; /* scope of the token being fetched */
    char *realm_host;  /* for messages */
    json_t *tags, *seen;
    rd_error deferred; /* STEP_DEFERRED: what to report */
    host_state *gate;  /* the registry origin's state (owned by rc) */
    lookup *park_next; /* in gate->parked */
    int parked;        /* waiting for gate->probe: no request in flight */
};

/* ---- registry.c -------------------------------------------------------------------- */

/* Wipes and frees a secret string; NULL is fine. */
void registry_secret_free(char *s);

/* Scheme, host (as in the URL) and effective port of url into the given
 * buffers (truncated to ssize / hsize); 0, or -1 when url has no scheme or
 * host. */
int registry_url_origin(const char *url, char *scheme, size_t ssize, char *host, size_t hsize,
                        int *port);

/* Frees s's CA file and zeroes s. */
void registry_settings_clear(link_settings *s);

/* Reports a failure (code, message from fmt) to lk's caller and frees lk.
 * Must be the last thing a handler does with lk. */
void registry_lookup_fail(lookup *lk, rd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends one request for lk with settings s (headers: NULL-terminated name,
 * value pairs, borrowed for the call); the answer comes to the state
 * machine's httpc callback, even when httpc refuses the request at once. */
void registry_lookup_send(lookup *lk, const char *method, const char *url,
                          const char *const *headers, const char *body, const link_settings *s);

/* Requests lk->url (the current tags page) with lk->auth, if any; step
 * becomes STEP_TAGS. */
void registry_send_tags(lookup *lk);

/* Fails lk for a transport failure (resp->result != HTTPC_OK) of a request
 * to who (a host, for the message). */
void registry_fail_transport(lookup *lk, const httpc_response *resp, const char *who);

/* Fails lk for an unexpected HTTP status from who. */
void registry_fail_status(lookup *lk, int status, const char *who);

/* Reports err to lk's caller later, through a request that httpc fails
 * asynchronously (the callback never runs inside the caller's call). */
void registry_lookup_defer(lookup *lk, const rd_error *err);

/* Starts lk's first request (ECR, GCP token or tags) once its gate lets it. */
void registry_lookup_begin(lookup *lk);

/* Sends lk's first tags request with a cached credential, if any. */
void registry_lookup_tags_start(lookup *lk);

/* ---- gate.c: fail fast per registry host -------------------------------------------- */

/* Admits lk (prepared) to its registry origin: 1 when it may send now (it
 * may have become the origin's probe), 0 when it was parked or failed at
 * once because the origin failed to connect a moment ago. */
int registry_gate_admit(lookup *lk);

/* Called with every answer to a tags request of lk: records whether the
 * origin is reachable, and releases or fails the parked lookups. */
void registry_gate_answer(lookup *lk, const httpc_response *resp);

/* lk ends: when it was its origin's probe, the parked lookups go on. */
void registry_gate_leave(lookup *lk);

/* Frees rc's host table; parked lookups must be gone already. */
void registry_gate_free_all(registry_client *rc);

/* ---- auth.c ------------------------------------------------------------------------ */

/* Frees one credential cache entry (its value wiped). */
void registry_cred_free(cred_entry *e);

/* The cached Authorization value for (host, scope), borrowed until the next
 * cache change, or NULL; drops expired entries on the way.  Scope "" holds
 * per-registry basic credentials. */
const char *registry_cache_find(registry_client *rc, const char *host, const char *scope);

/* Sends the SigV4-signed ECR GetAuthorizationToken request for lk (step
 * STEP_ECR), or fails lk when it cannot be signed. */
void registry_send_ecr(lookup *lk);

/* Fills lk->ecr_host, ecr_path and ecr_query from lk->t.ecr_api_url: what
 * SigV4 signs.  0, or -1 on a bad URL or allocation failure. */
int registry_ecr_url_parts(lookup *lk);

/* Stores header (an Authorization value or other secret) for (host,
 * scope) for ttl_ms (nothing when ttl_ms <= 0), replacing an older one. */
void registry_cache_put(registry_client *rc, const char *host, const char *scope,
                        const char *header, int64_t ttl_ms);

/* Handles a 401 from the registry: drops a refused cached credential, then
 * retries with a cached one, starts the Bearer token flow, ECR or Basic
 * credentials, or fails lk. */
void registry_on_unauthorized(lookup *lk, const httpc_response *resp);

/* Handles the token service's answer (STEP_TOKEN): caches the token and
 * retries the tags page, or fails lk. */
void registry_on_token(lookup *lk, const httpc_response *resp);

/* Handles ECR's GetAuthorizationToken answer (STEP_ECR): caches the basic
 * credential and retries the tags page, or fails lk. */
void registry_on_ecr(lookup *lk, const httpc_response *resp);

/* ---- gcp.c ------------------------------------------------------------------------- */

/* Reads and checks the service-account key file of lk's registry (its
 * token_uri must pass registry_token_uri_rule_of), sets the token
 * endpoint's connection settings and user "oauth2accesstoken".  RD_OK, or
 * RD_ERR_REGISTRY_BAD_RESPONSE naming the registry host (never the key). */
rd_status registry_gcp_prepare(lookup *lk, const char *key_file, rd_error *err);

/* 1 when a cached access token of lk's registry became lk->password. */
int registry_gcp_use_cached(lookup *lk);

/* Signs a JWT with lk's key and POSTs it to the key's token_uri (step
 * STEP_GCP), or fails lk. */
void registry_send_gcp(lookup *lk);

/* Handles the token endpoint's answer (STEP_GCP): caches the access token
 * and starts the tags request, or fails lk. */
void registry_on_gcp(lookup *lk, const httpc_response *resp);

#endif /* REPOD_REGISTRY_INTERNAL_H */
