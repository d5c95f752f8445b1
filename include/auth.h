/*
 * auth.h - bearer-token authentication and roles (SPEC section 7).
 *
 * Tokens are opaque random strings; the tokens file holds only their SHA-256
 * hashes with {name, domain_id, role}.  An auth_store is safe to use from many
 * threads; auth_reload() swaps the table atomically (SIGHUP).
 */
#ifndef REPOD_AUTH_H
#define REPOD_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

typedef enum {
    AUTH_ROLE_ANONYMOUS = 0, /* no token */
    AUTH_ROLE_VIEWER,
    AUTH_ROLE_ADMIN,
    AUTH_ROLE_SYSTEM
} auth_role;

#define AUTH_NAME_MAX 128

typedef struct {
    auth_role role;
    char name[AUTH_NAME_MAX];      /* token name; "" when anonymous */
    char domain_id[AUTH_NAME_MAX]; /* "" when anonymous */
} auth_identity;

typedef struct auth_store auth_store;

/* Opens the tokens file (a missing file means no tokens yet).  A malformed
 * file fails with RD_ERR_INVALID_PARAMETER naming the file, the entry index
 * and the problem.  On success *out is a new store (free with auth_close).
 * All functions below may be called from any number of threads at once
 * (a rwlock guards the table; auth_close must not race with the others). */
rd_status auth_open(const char *tokens_file, auth_store **out, rd_error *err);

/* Re-reads the tokens file; on failure the old table stays in force. */
rd_status auth_reload(auth_store *store, rd_error *err);

void auth_close(auth_store *store);

/* Resolves an Authorization header value (NULL = anonymous).  "Bearer <tok>"
 * (scheme case-insensitive, one or more spaces) with a known token fills *who;
 * anything else (empty header, other scheme, empty/unknown/revoked token) ->
 * RD_ERR_AUTHENTICATE_FAILURE with *who reset to anonymous.  The message never
 * contains the token.  Lookup is O(1) and compares hashes in constant time. */
rd_status auth_authenticate(auth_store *store, const char *authorization, auth_identity *who,
                            rd_error *err);

/* "viewer" | "admin" | "system" -> role; -1 if unknown (exact lowercase;
 * "anonymous" is not a role a token can have). */
int auth_role_parse(const char *name);
/* "anonymous" | "viewer" | "admin" | "system"; "unknown" out of range. */
const char *auth_role_name(auth_role role);

/* Number of tokens in the table now in force (0 for a NULL store). */
size_t auth_token_count(auth_store *store);

/* ---- Tokens file helpers (used by the `repod token` CLI and by auth_open) ----
 *
 * File format (JSON, mode 0600, written atomically):
 *   {"tokens": [{"name": "ci", "sha256": "<64 lowercase hex>", "domain_id": "d-1",
 *                "role": "system|admin|viewer", "created_at": "<ISO-8601>"}]}
 * name, sha256, domain_id and role are required; created_at is optional.
 * Names and hashes are unique; unknown keys are rejected.  The secret itself
 * is never stored. */

/* Token secrets are "rdt_" followed by 64 lowercase hex characters (32 random
 * bytes = 256 bits).  The stored hash is SHA-256 of the whole string,
 * including the "rdt_" prefix, as 64 lowercase hex characters. */
#define AUTH_TOKEN_PREFIX   "rdt_"
#define AUTH_TOKEN_LEN      68 /* strlen("rdt_") + 64 */
#define AUTH_SHA256_HEX_LEN 64

/* Makes a new secret into token (at least AUTH_TOKEN_LEN + 1 bytes) and its
 * hash into sha256_hex (AUTH_SHA256_HEX_LEN + 1 bytes).  0 on success, -1 if
 * the random generator failed.  The caller should OPENSSL_cleanse the secret
 * once it is printed. */
int auth_token_generate(char *token, size_t size, char *sha256_hex);

/* 1 if s is acceptable as a token name or domain_id: 1..AUTH_NAME_MAX-1
 * characters from [A-Za-z0-9._:@-]; 0 otherwise (NULL included). */
int auth_name_valid(const char *s);

/* Reads and validates the tokens file.  On success *doc is a new reference to
 * the whole document ({"tokens": []} when the file does not exist).  On
 * failure RD_ERR_INVALID_PARAMETER with "PATH: tokens[I]: REASON" (values of
 * the file are never quoted, so a misplaced secret cannot leak). */
rd_status auth_file_load(const char *path, json_t **doc, rd_error *err);

/* Validates doc like auth_file_load and writes it to path atomically with
 * mode 0600, creating the parent folder when missing.  doc is borrowed. */
rd_status auth_file_save(const char *path, json_t *doc, rd_error *err);

/* `repod token create|list|revoke ...`: argv[0] is "token".  Returns the
 * process exit code (0 ok, 1 failure, 2 bad usage).  Implemented in
 * src/cli/token_cli.c; see its header for the output format. */
int auth_cli_main(int argc, char **argv);

#endif
