/*
 * registry.h - container-registry client: lists an image's tags (its
 * versions) with the OCI Distribution API (SPEC section 9).
 *
 * A registry_client is bound to one httpc, so to one event_base and its
 * thread; it is not thread-safe.  registry_list_tags() resolves where the
 * image lives (registry_type / registry_url / registry_config of the plugin,
 * plus the server config's "registries" entry for that host), then runs, on
 * the httpc's loop:
 *
 *   GET {api_url}/v2/<name>/tags/list?n=<page_size>
 *     401 + WWW-Authenticate: Bearer realm,service,scope
 *         -> GET realm?service=..&scope=.. (HTTP basic auth when username +
 *            password_file are configured) -> {"token"|"access_token",
 *            "expires_in"} -> retry with "Authorization: Bearer <token>"
 *     401 + WWW-Authenticate: Basic -> retry with the configured credentials
 *     200 -> accumulate "tags"; follow `Link: <...>; rel="next"`
 *
 * Only hosts in the outbound allow-list are connected (allow.c, below);
 * hosts allowed only by a pattern may not resolve to special addresses
 * (httpc's refuse_special_addresses).  A Bearer realm must be https and on
 * the registry's host or its token_realm_hosts.  Per registry origin one
 * lookup connects while the origin is not known to answer, and after a
 * failed connect lookups fail at once for registry.negative_cache_ms
 * (gate.c, docs/registries.md).
 *
 * AWS_PRIVATE_ECR with aws_access_key_id + aws_secret_access_key_file first
 * asks ECR's GetAuthorizationToken (a SigV4-signed POST) for a basic
 * credential; with password_file alone it uses user "AWS" (or username).
 *
 * GITHUB reads from ghcr.io (a built-in host, like Docker Hub), anonymously
 * or with username + password_file (a GitHub token) for the token request.
 * GCP_PRIVATE_GCR (gcr.io, <label>.gcr.io, <label>-docker.pkg.dev) with
 * service_account_key_file first exchanges an RS256-signed JWT at the key's
 * token_uri (https on oauth2.googleapis.com or a token_realm_hosts entry)
 * for an OAuth access token, the password of user "oauth2accesstoken" for
 * the registry's own token flow (gcp.c).
 *
 * Credentials obtained (bearer tokens per (api_url, scope), basic headers
 * per api_url, ECR credentials, GCP access tokens) are cached in the client until they expire
 * and sent up front on later lookups.  Secrets (passwords, tokens, keys)
 * never appear in error messages or logs.
 *
 * The other functions are the pure pieces of that flow, exported so that
 * they can be unit-tested: version precedence, WWW-Authenticate and Link
 * parsing, base64, the ECR token answer, target resolution, SigV4 and the
 * GCP key file, JWT and token answer.
 */
#ifndef REPOD_REGISTRY_H
#define REPOD_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "httpc.h"
#include "status.h"

/* ---- the client ---------------------------------------------------------- */

typedef struct registry_client registry_client;

/* Tunables that are not server config keys (tests use small pages). */
typedef struct {
    int page_size;             /* the n= of tags/list; default 1000 */
    int max_pages;             /* pages followed before giving up; default 100 */
    size_t max_response_bytes; /* cap of one response body; default 8 MiB */
} registry_client_options;

/* Sets opts to the defaults above. */
void registry_client_options_init(registry_client_options *opts);

/* A client bound to http (borrowed; must outlive the client, and the client
 * must only be used on http's loop thread).  conf is borrowed too and must
 * outlive the client: its `registries` object holds the per-host settings
 * (api_url, ca_file, verify, username, password_file, aws_access_key_id,
 * aws_secret_access_key_file, aws_region, service_account_key_file,
 * token_realm_hosts, timeout_ms), its
 * `registry_default_urls` the registry_url used when a lookup gives none, and
 * remote_defaults.timeout_ms the timeout of hosts without timeout_ms.  conf
 * may be NULL (no per-host settings).  Returns NULL when out of memory. */
registry_client *registry_client_new(httpc *http, const repod_conf *conf);

/* Same with explicit options (NULL = defaults). */
registry_client *registry_client_new_with(httpc *http, const repod_conf *conf,
                                          const registry_client_options *opts);

/* Frees rc and its credential cache.  Pending lookups are cancelled: each
 * callback runs from inside this call with RD_ERR_REGISTRY_UNAVAILABLE
 * "... cancelled".  Their HTTP requests still finish (or are cancelled by
 * httpc_free) later and are then silently dropped.  May be called from a
 * registry callback.  NULL is ignored. */
void registry_client_free(registry_client *rc);

/* Result of registry_list_tags.  On success rc is RD_OK, err is NULL and tags
 * is an array of tag strings sorted newest first (registry_sort_versions);
 * it is borrowed: valid during the callback only (json_incref to keep it).
 * On failure tags is NULL and err (borrowed, valid during the callback)
 * holds the code and a message that names the image and registry host. */
typedef void (*registry_tags_cb)(rd_status rc, const rd_error *err, json_t *tags, void *arg);

/* Lists the tags of image (e.g. "pyengine/plugin-jira") in the registry
 * given by registry_type ("DOCKER_HUB" | "HARBOR" | "AWS_PRIVATE_ECR" |
 * "GITHUB" | "GCP_PRIVATE_GCR"; NULL means DOCKER_HUB), registry_url
 * (host[:port][/path prefix]; NULL or "" -> conf's registry.default_urls,
 * then registry.hub.docker.com for DOCKER_HUB, ghcr.io for GITHUB; GITHUB's
 * host must be ghcr.io, GCP_PRIVATE_GCR's a registry_google_host())
 * and registry_config (object, e.g. ECR {"account_id", "region"}; may be
 * NULL).  All arguments are copied.  cb(rc, err, tags, arg) runs exactly
 * once, later, on the httpc's loop -- also for arguments that are refused at
 * once (only when even the lookup record cannot be allocated does it run
 * before this call returns, with RD_ERR_INTERNAL).
 *
 * Errors: unknown image -> RD_ERR_NO_IMAGE_IN_REGISTRY; connection refused,
 * DNS, TLS failure, 502/503, 429 -> RD_ERR_REGISTRY_UNAVAILABLE; deadline ->
 * RD_ERR_REGISTRY_TIMEOUT (also 504); malformed answers, other 5xx, bodies
 * over max_response_bytes, too many pages, credentials refused ->
 * RD_ERR_REGISTRY_BAD_RESPONSE (also a token realm that is not allowed);
 * bad arguments -> RD_ERR_INVALID_REGISTRY_TYPE, RD_ERR_INVALID_IMAGE_FORMAT
 * or RD_ERR_INVALID_PARAMETER (also: host outside the allow-list, or
 * resolving to a special address; nothing connected). */
void registry_list_tags(registry_client *rc, const char *registry_type, const char *registry_url,
                        const json_t *registry_config, const char *image, registry_tags_cb cb,
                        void *arg);

/* Lookup outcomes, counted over all clients of the process (metrics:
 * repod_registry_requests_total{outcome}).  "refused" covers lookups
 * refused before any connection (allow-list, bad arguments). */
typedef enum {
    REGISTRY_OUTCOME_OK = 0,
    REGISTRY_OUTCOME_NOT_FOUND,
    REGISTRY_OUTCOME_UNAVAILABLE,
    REGISTRY_OUTCOME_TIMEOUT,
    REGISTRY_OUTCOME_BAD_RESPONSE,
    REGISTRY_OUTCOME_REFUSED,
    REGISTRY_OUTCOME_COUNT
} registry_outcome;

/* The label of o ("ok", "not_found", ...) and how many lookups ended so. */
const char *registry_outcome_name(registry_outcome o);
unsigned long long registry_outcome_count(registry_outcome o);

/* Number of lookups started but not yet called back (tests, metrics). */
size_t registry_client_pending(const registry_client *rc);

/* Number of credential-service calls made so far: token-realm GETs plus ECR
 * GetAuthorizationToken and GCP token_uri POSTs (tests check that the cache is used). */
unsigned long registry_client_credential_fetches(const registry_client *rc);

/* ---- version precedence (version.c) ---------------------------------------
 *
 * A *version* tag is: an optional 'v' or 'V'; one or more dot-separated
 * runs of ASCII digits; optionally '-' and a non-empty pre-release suffix of
 * [0-9A-Za-z._-].  Anything else ("latest", "dev", "1.0+build", "1..2",
 * "1.0-") is a *name* tag.
 *
 * Precedence of two versions:
 *   1. numeric components compared left to right by value (any length: no
 *      integer conversion, leading zeros ignored); on an equal common prefix
 *      the one with more components is newer (1.2.1.20220429 > 1.2.1);
 *   2. with equal components, a plain release is newer than any pre-release
 *      of it (1.0 > 1.0-rc2);
 *   3. two pre-releases compare their suffixes "naturally": runs of digits by
 *      value, other runs byte-wise, a digit run below a non-digit run, a
 *      suffix that is a prefix of the other below it (1.0-rc10 > 1.0-rc2 >
 *      1.0-rc1 > 1.0-rc > 1.0-beta > 1.0-alpha.1 > 1.0-alpha);
 *   4. otherwise (v1.0 vs 1.0, 1.01 vs 1.1) the precedence is equal and the
 *      raw strings decide, byte-wise ascending ("1.0" before "v1.0").
 * The sorted list is: versions newest first, then name tags in byte-wise
 * ascending order ("dev" before "latest"). */

/* Order of a and b in registry_sort_versions' output: negative when a comes
 * first, positive when b comes first, 0 only for equal strings. */
int registry_version_cmp(const char *a, const char *b);

/* 1 when tag is a version tag (grammar above), else 0. */
int registry_is_version(const char *tag);

/* Sorts an array of tag strings in place, newest first (see above).
 * Non-string elements, if any, are moved to the end in their original
 * order.  NULL or a non-array is ignored. */
void registry_sort_versions(json_t *tags);

/* ---- HTTP header parsing (parse.c) ----------------------------------------- */

typedef enum {
    REGISTRY_AUTH_NONE = 0, /* no usable challenge */
    REGISTRY_AUTH_BASIC,
    REGISTRY_AUTH_BEARER,
    REGISTRY_AUTH_OTHER /* some other scheme (Digest, Negotiate, ...) */
} registry_auth_scheme;

/* One challenge of a WWW-Authenticate header; strings are owned (free with
 * registry_challenge_clear), NULL when the parameter was absent. */
typedef struct {
    registry_auth_scheme scheme;
    char *realm;
    char *service;
    char *scope;
    char *error; /* e.g. "insufficient_scope", "invalid_token" */
} registry_challenge;

/* Parses a WWW-Authenticate value (RFC 7235: one or more challenges, scheme
 * case-insensitive, parameters as token or quoted-string with backslash
 * escapes, names case-insensitive).  When several challenges are given the
 * first Bearer wins, then the first Basic, then the first other.  Returns 0
 * and fills out (zeroed first), or -1 (out zeroed) when value is NULL, empty
 * or malformed, or memory runs out. */
int registry_parse_www_authenticate(const char *value, registry_challenge *out);

/* Frees the strings of ch and zeroes it. */
void registry_challenge_clear(registry_challenge *ch);

/* From a Link header value (one or more `<uri-reference>; param=...`
 * separated by commas), finds the link whose rel (a space-separated list,
 * quoted or not, case-insensitive) contains "next" and resolves it against
 * base_url (absolute "scheme://", network-path "//host/...", absolute path
 * "/..." or a relative path).  Returns 0 with *next set to a new malloc'd
 * absolute URL, 0 with *next NULL when there is no next link (or link is
 * NULL), -1 when the header is malformed or memory runs out. */
int registry_link_next(const char *link, const char *base_url, char **next);

/* Adds the tags of one tags/list page (body of len bytes: {"name": ...,
 * "tags": [...]}; "tags": null is a repository without tags) to the JSON
 * array tags, skipping the tags that are keys of the JSON object seen (both
 * are updated).  Returns 0, or -1 when the page is not a tag list (not a
 * JSON object, "tags" neither an array nor null, a tag not a non-empty
 * string without NUL) or memory runs out; tags added before that stay. */
int registry_tags_page_collect(const char *body, size_t len, json_t *seen, json_t *tags);

/* Decodes standard base64 (RFC 4648, '=' padding optional, no whitespace).
 * Returns a new NUL-terminated malloc'd buffer and its length in *len (if
 * not NULL), or NULL for invalid input or no memory. */
unsigned char *registry_base64_decode(const char *in, size_t *len);

/* Standard base64 with padding of n bytes: a new malloc'd string or NULL. */
char *registry_base64_encode(const void *data, size_t n);

/* Reads an ECR GetAuthorizationToken answer:
 * {"authorizationData": [{"authorizationToken": base64("user:password"),
 *   "expiresAt": <epoch seconds, number or numeric string>, ...}]}.
 * On success returns 0 and sets *basic to a new "Basic <token>" header
 * value (malloc'd; the caller must wipe and free it) and *expires_at_ms to
 * expiresAt in ms (0 when absent).  -1 when the body is not such an answer
 * (the token must decode to "user:password" with a non-empty user). */
int registry_ecr_parse_token(const char *body, size_t len, char **basic, int64_t *expires_at_ms);

/* ---- GCP service-account keys (gcp.c) -------------------------------------- */

/* A parsed service-account key file; strings owned (registry_gcp_key_clear). */
typedef struct {
    char *client_email;
    char *private_key; /* PEM (secret) */
    char *token_uri;
} registry_gcp_key;

/* Parses a service-account key file (JSON with client_email, private_key
 * PEM and an https token_uri; "type", when present, "service_account").
 * 0 and out filled, or -1 with a short reason in why ("client_email is
 * missing"; never any key material) and out zeroed. */
int registry_gcp_key_parse(const char *text, size_t len, registry_gcp_key *out, char *why,
                           size_t why_size);

/* Frees (wiping the private key) and zeroes k; NULL is fine. */
void registry_gcp_key_clear(registry_gcp_key *k);

/* Base64url without padding (RFC 7515): a new malloc'd string or NULL. */
char *registry_base64url_encode(const void *data, size_t n);

/* The JWT of the OAuth JWT bearer grant: header {"alg":"RS256","typ":"JWT"},
 * claims {iss: client_email, scope, aud: token_uri, iat: now_s, exp: now_s +
 * 3600}, each part base64url, signed RSASSA-PKCS1-v1_5 SHA-256 with the
 * key's private_key.  scope NULL = cloud-platform.  0 with *out a new
 * malloc'd JWT (secret), or -1 with a reason in why (not an RSA key, ...). */
int registry_gcp_jwt(const registry_gcp_key *key, const char *scope, int64_t now_s, char **out,
                     char *why, size_t why_size);

/* Reads the token endpoint's answer {"access_token", "expires_in"}: 0 with
 * *access_token a new malloc'd string (secret) and *expires_in_s (3600 when
 * absent), or -1. */
int registry_gcp_parse_token(const char *body, size_t len, char **access_token,
                             int64_t *expires_in_s);

/* ---- where an image lives (target.c) ---------------------------------------- */

/* The resolved registry of one lookup; strings owned (registry_target_clear). */
typedef struct {
    char *host;         /* the config key: registry_url up to the first '/' */
    char *api_url;      /* Distribution API base URL, without trailing '/' */
    char *repository;   /* name on that registry: [path prefix/]image, with
                           "library/" for one-component Docker Hub images */
    int ecr;            /* registry_type AWS_PRIVATE_ECR */
    char *ecr_region;   /* ECR: the region (entry aws_region > registry_config
                           region > the host's "<acct>.dkr.ecr.<region>." part) */
    char *ecr_api_url;  /* ECR: GetAuthorizationToken endpoint: the api_url of
                           registries["api.ecr.<region>.amazonaws.com"] if set,
                           else https://api.ecr.<region>.amazonaws.com */
    char *ecr_api_host; /* ECR: "api.ecr.<region>.amazonaws.com" (config key) */
    int named;          /* host named exactly in the config: special addresses allowed */
    int gcp;            /* registry_type GCP_PRIVATE_GCR */
} registry_target;

/* Resolves registry_type/registry_url/registry_config/image (as for
 * registry_list_tags) against conf (may be NULL).  Returns RD_OK and fills
 * out, or an error (out cleared): RD_ERR_INVALID_REGISTRY_TYPE,
 * RD_ERR_INVALID_IMAGE_FORMAT (image or path prefix not a valid repository
 * path), RD_ERR_INVALID_PARAMETER (no registry_url for HARBOR, no or a
 * malformed account_id/region for ECR, or a host outside the outbound
 * allow-list: the message names registry_url or registry_config.account_id),
 * RD_ERR_INTERNAL (no memory).  Nothing is connected. */
rd_status registry_resolve_target(const repod_conf *conf, const char *registry_type,
                                  const char *registry_url, const json_t *registry_config,
                                  const char *image, registry_target *out, rd_error *err);

/* Frees the strings of t and zeroes it. */
void registry_target_clear(registry_target *t);

/* ---- the outbound allow-list (allow.c) ---------------------------------------
 *
 * repod connects for registries only to: Docker Hub (registry.hub.docker.com,
 * its API host registry-1.docker.io, its realm auth.docker.io); ghcr.io;
 * Google's registry hosts (registry_google_host); keys of the config's
 * `registries` and their api_url hosts; registry.default_urls
 * hosts; hosts matching registry.allowed_hosts.  Hosts are compared as
 * "name[:port]", lower-cased, ":443" dropped.  In an allowed_hosts pattern
 * '*' stands for exactly one whole DNS label (one or more of [a-z0-9-], no
 * '.'), and the port is part of the match: "*.example.com" matches
 * "a.example.com" (port 443) only, "*.example.com:5000" only port 5000. */

typedef enum {
    REGISTRY_HOST_REFUSED = 0, /* not in the allow-list */
    REGISTRY_HOST_ALLOWED,     /* allowed; special addresses are refused */
    REGISTRY_HOST_NAMED        /* named exactly by the operator: any address */
} registry_host_rule;

/* The rule for host (host[:port], or a URL whose host is taken). */
registry_host_rule registry_host_rule_of(const repod_conf *conf, const char *host);

/* The rule for a Bearer token realm on realm_host of the registry keyed
 * registry_host (api_url its API base): its own host (the registry's rule),
 * the entry's token_realm_hosts (named), auth.docker.io for Docker Hub when
 * the entry sets no token_realm_hosts (allowed); else refused. */
registry_host_rule registry_realm_rule_of(const repod_conf *conf, const char *registry_host,
                                          const char *api_url, const char *realm_host);

/* 1 when host (host[:port] or URL) is one of Google's registry hosts, on
 * port 443: gcr.io, <label>.gcr.io or <label>-docker.pkg.dev (Artifact
 * Registry; the first label ends in "-docker").  These, ghcr.io and Docker
 * Hub are allowed without config (special addresses refused). */
int registry_google_host(const char *host);

/* The rule for a GCP service-account key's token_uri used for the registry
 * keyed registry_host: https and on oauth2.googleapis.com (allowed), or on a
 * host of that entry's token_realm_hosts (named); else refused. */
registry_host_rule registry_token_uri_rule_of(const repod_conf *conf, const char *registry_host,
                                              const char *token_uri);

/* 1 when host matches pattern (rules above; a pattern without '*' must be
 * equal). */
int registry_host_pattern_match(const char *pattern, const char *host);

/* host[:port] of s (URL or host[:port][/path]) normalised as above into out;
 * 0, or -1 when empty or too long. */
int registry_host_normalize(const char *s, char *out, size_t size);

/* ECR shapes: an account id is exactly 12 digits; a region is two lower-case
 * letters, one or more "-word" parts and "-<digits>" (us-east-1,
 * us-gov-west-1).  1 when valid. */
int registry_ecr_account_valid(const char *s);
int registry_ecr_region_valid(const char *s);

/* ---- AWS Signature Version 4 (sigv4.c) -------------------------------------- */

typedef struct {
    const char *method; /* "GET", "POST", ... */
    const char *host;   /* the Host header exactly as sent ("host" or "host:port") */
    const char *path;   /* request path as sent (already percent-encoded); NULL = "/" */
    const char *query;  /* query string as sent, without '?'; NULL or "" = none */
    /* Further headers to sign: NULL-terminated name, value pairs (may be
     * NULL).  host and x-amz-date are always signed and must not be here. */
    const char *const *headers;
    const void *body; /* payload; NULL = empty */
    size_t body_len;
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;   /* "us-east-1" */
    const char *service;  /* "ecr" */
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ"; also sent as X-Amz-Date */
} registry_sigv4_request;

/* Writes the Authorization header value for req into out:
 * "AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/<service>/aws4_request,
 *  SignedHeaders=<names>, Signature=<hex>".  Canonicalisation as in AWS's
 * test suite for non-S3 services: header names lower-cased, values trimmed
 * with inner runs of spaces collapsed, repeated headers joined with ',';
 * query parameters percent-decoded, re-encoded (unreserved characters
 * A-Z a-z 0-9 - _ . ~ kept) and sorted by name then value; the path's bytes
 * other than unreserved and '/' percent-encoded once more (the path is not
 * normalised: give "/" or a clean path).  Returns 0, or -1 when an argument
 * is missing or malformed, out is too small or memory runs out. */
int registry_sigv4_authorization(const registry_sigv4_request *req, char *out, size_t size);

/* Formats epoch_ms as the SigV4 timestamp "YYYYMMDDTHHMMSSZ" (17 bytes). */
void registry_sigv4_timestamp(int64_t epoch_ms, char out[17]);

#endif
