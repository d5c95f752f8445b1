/*
 * auth.c - bearer tokens: the tokens file, the in-memory table and the
 * Authorization header check (SPEC section 7).
 *
 * The tokens file holds only SHA-256 hashes of the secrets.  At load time it
 * becomes an immutable auth_table: an array of entries plus an open-addressing
 * index keyed by the leading bytes of each hash (SHA-256 output is uniform, so
 * no further hashing is needed).  A lookup probes the index and compares the
 * full 32-byte digests with CRYPTO_memcmp.
 *
 * Threads: worker threads look tokens up under the read side of a rwlock that
 * prefers writers; auth_reload() builds the new table without the lock, swaps
 * the pointer under the write lock and frees the old table after releasing
 * it.  A failed reload leaves the old table in force.
 */
#include "auth.h"

#include <errno.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define AUTH_DIGEST_LEN  32
#define AUTH_TOKEN_MAX   1024 /* longer bearer values are rejected unhashed */
#define AUTH_CREATED_MAX 64

typedef struct {
    unsigned char digest[AUTH_DIGEST_LEN];
    auth_role role;
    char name[AUTH_NAME_MAX];
    char domain_id[AUTH_NAME_MAX];
} auth_entry;

/* Immutable once built. */
typedef struct {
    size_t count;
    auth_entry *entries;
    size_t mask;     /* number of slots - 1 (a power of two minus one) */
    uint32_t *slots; /* entry index + 1; 0 = empty */
} auth_table;

struct auth_store {
    char *path;
    pthread_rwlock_t lock;
    auth_table *table; /* guarded by lock */
};

static const char *const role_names[] = {
    [AUTH_ROLE_ANONYMOUS] = "anonymous",
    [AUTH_ROLE_VIEWER] = "viewer",
    [AUTH_ROLE_ADMIN] = "admin",
    [AUTH_ROLE_SYSTEM] = "system",
};

int auth_role_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int r = AUTH_ROLE_VIEWER; r <= AUTH_ROLE_SYSTEM; r++)
        if (strcmp(name, role_names[r]) == 0)
            return r;
    return -1;
}

const char *auth_role_name(auth_role role)
{
    if ((int)role < AUTH_ROLE_ANONYMOUS || role > AUTH_ROLE_SYSTEM)
        return "unknown";
    return role_names[role];
}

int auth_name_valid(const char *s)
{
    size_t n;
    if (s == NULL)
        return 0;
    n = strlen(s);
    if (n == 0 || n >= AUTH_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes exactly AUTH_SHA256_HEX_LEN lowercase hex characters; 0 on success. */
static int sha256_hex_decode(const char *hex, unsigned char *out)
{
    if (strlen(hex) != AUTH_SHA256_HEX_LEN)
        return -1;
    for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int auth_token_generate(char *token, size_t size, char *sha256_hex)
{
    unsigned char raw[32];
    size_t plen = strlen(AUTH_TOKEN_PREFIX);
    if (token == NULL || sha256_hex == NULL || size < AUTH_TOKEN_LEN + 1)
        return -1;
    if (util_random_bytes(raw, sizeof(raw)) != 0)
        return -1;
    memcpy(token, AUTH_TOKEN_PREFIX, plen);
    util_hex(raw, sizeof(raw), token + plen);
    OPENSSL_cleanse(raw, sizeof(raw));
    util_sha256_hex(token, AUTH_TOKEN_LEN, sha256_hex);
    return 0;
}

/* ---- Tokens file -------------------------------------------------------- */

static const char *const entry_keys[] = {"name", "sha256", "domain_id", "role", "created_at"};

/* Checks one entry of "tokens".  seen_names / seen_hashes are used as sets.
 * Error messages never quote a value of the file. */
static rd_status validate_entry(const char *path, size_t i, json_t *e, json_t *seen_names,
                                json_t *seen_hashes, rd_error *err)
{
    const char *key;
    json_t *v;
    const char *name, *hash, *domain, *role;
    unsigned char digest[AUTH_DIGEST_LEN];

    if (!json_is_object(e))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: tokens[%zu]: not an object", path, i);
    json_object_foreach(e, key, v)
    {
        size_t k;
        for (k = 0; k < sizeof(entry_keys) / sizeof(entry_keys[0]); k++)
            if (strcmp(key, entry_keys[k]) == 0)
                break;
        if (k == sizeof(entry_keys) / sizeof(entry_keys[0]))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: tokens[%zu]: unknown key '%.64s'",
                           path, i, key);
    }
    for (size_t k = 0; k < 4; k++) {
        v = json_object_get(e, entry_keys[k]);
        if (v == NULL)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: tokens[%zu]: %s: missing", path, i,
                           entry_keys[k]);
        if (!json_is_string(v))
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: tokens[%zu]: %s: not a string", path,
                           i, entry_keys[k]);
    }
    name = json_string_value(json_object_get(e, "name"));
    hash = json_string_value(json_object_get(e, "sha256"));
    domain = json_string_value(json_object_get(e, "domain_id"));
    role = json_string_value(json_object_get(e, "role"));
    if (!auth_name_valid(name))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: name: must be 1-%d characters of [A-Za-z0-9._:@-]", path,
                       i, AUTH_NAME_MAX - 1);
    if (sha256_hex_decode(hash, digest) != 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: sha256: must be 64 lowercase hex characters", path, i);
    if (!auth_name_valid(domain))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: domain_id: must be 1-%d characters of [A-Za-z0-9._:@-]",
                       path, i, AUTH_NAME_MAX - 1);
    if (auth_role_parse(role) < 0)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: role: must be viewer, admin or system", path, i);
    v = json_object_get(e, "created_at");
    if (v != NULL && (!json_is_string(v) || strlen(json_string_value(v)) >= AUTH_CREATED_MAX))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: created_at: must be a string (ISO-8601)", path, i);
    if (json_object_get(seen_names, name) != NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: name: same name as an earlier entry", path, i);
    if (json_object_get(seen_hashes, hash) != NULL)
        return rd_fail(err, RD_ERR_INVALID_PARAMETER,
                       "%s: tokens[%zu]: sha256: same hash as an earlier entry", path, i);
    if (json_object_set_new(seen_names, name, json_true()) != 0 ||
        json_object_set_new(seen_hashes, hash, json_true()) != 0)
        return rd_fail(err, RD_ERR_INTERNAL, "%s: out of memory", path);
    return RD_OK;
}

/* Checks the whole document (see auth.h for the format). */
static rd_status validate_doc(const char *path, json_t *doc, rd_error *err)
{
    rd_status rc = RD_OK;
    json_t *tokens, *seen_names = NULL, *seen_hashes = NULL;
    const char *key;
    json_t *v;
    size_t i;

    if (!json_is_object(doc))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: top level must be an object", path);
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "tokens") != 0)
            return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: unknown key '%.64s'", path, key);
    }
    tokens = json_object_get(doc, "tokens");
    if (!json_is_array(tokens))
        return rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: tokens: must be an array", path);
    seen_names = json_object();
    seen_hashes = json_object();
    if (seen_names == NULL || seen_hashes == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "%s: out of memory", path);
        goto done;
    }
    json_array_foreach(tokens, i, v)
    {
        rc = validate_entry(path, i, v, seen_names, seen_hashes, err);
        if (rc != RD_OK)
            goto done;
    }
done:
    json_decref(seen_hashes);
    json_decref(seen_names);
    return rc;
}

rd_status auth_file_load(const char *path, json_t **doc, rd_error *err)
{
    rd_status rc = RD_OK;
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    json_error_t jerr;

    *doc = NULL;
    text = util_read_file(path, &len);
    if (text == NULL) {
        if (errno != ENOENT) {
            rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: cannot read: %s", path,
                         strerror(errno));
            goto done;
        }
        root = json_pack("{s:[]}", "tokens");
        if (root == NULL)
            rc = rd_fail(err, RD_ERR_INTERNAL, "%s: out of memory", path);
        goto done;
    }
    /* jansson's error text can quote the input; report the position only. */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = rd_fail(err, RD_ERR_INVALID_PARAMETER, "%s: invalid JSON at line %d, column %d", path,
                     jerr.line, jerr.column);
        goto done;
    }
    rc = validate_doc(path, root, err);
done:
    free(text);
    if (rc != RD_OK) {
        json_decref(root);
        root = NULL;
    }
    *doc = root;
    return rc;
}

rd_status auth_file_save(const char *path, json_t *doc, rd_error *err)
{
    rd_status rc;
    char *text = NULL, *dir = NULL;
    size_t len;

    rc = validate_doc(path, doc, err);
    if (rc != RD_OK)
        goto done;
    text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    dir = strdup(path);
    if (text == NULL || dir == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "%s: out of memory", path);
        goto done;
    }
    if (util_mkdir_p(dirname(dir)) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "%s: cannot create its folder: %s", path,
                     strerror(errno));
        goto done;
    }
    len = strlen(text);
    text[len] = '\n'; /* replace the NUL: the length is passed explicitly */
    if (util_write_file_atomic(path, text, len + 1, 0600) != 0) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "%s: cannot write: %s", path, strerror(errno));
        goto done;
    }
done:
    free(dir);
    free(text);
    return rc;
}

/* ---- In-memory table ----------------------------------------------------- */

static void table_free(auth_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t->entries);
    free(t);
}

static size_t digest_slot(const unsigned char *digest, size_t mask)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    return (size_t)h & mask;
}

/* Builds a table from a validated document; NULL when out of memory. */
static auth_table *table_build(json_t *doc)
{
    json_t *tokens = json_object_get(doc, "tokens"), *e;
    size_t n = json_array_size(tokens), cap = 8, i;
    auth_table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    while (cap < 2 * n)
        cap *= 2;
    t->entries = calloc(n ? n : 1, sizeof(*t->entries));
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->entries == NULL || t->slots == NULL) {
        table_free(t);
        return NULL;
    }
    t->mask = cap - 1;
    t->count = n;
    json_array_foreach(tokens, i, e)
    {
        auth_entry *en = &t->entries[i];
        size_t s;
        sha256_hex_decode(json_string_value(json_object_get(e, "sha256")), en->digest);
        en->role = (auth_role)auth_role_parse(json_string_value(json_object_get(e, "role")));
        snprintf(en->name, sizeof(en->name), "%s", json_string_value(json_object_get(e, "name")));
        snprintf(en->domain_id, sizeof(en->domain_id), "%s",
                 json_string_value(json_object_get(e, "domain_id")));
        for (s = digest_slot(en->digest, t->mask); t->slots[s] != 0; s = (s + 1) & t->mask)
            ;
        t->slots[s] = (uint32_t)(i + 1);
    }
    return t;
}

/* Finds digest in t; NULL if absent.  Digests are compared in constant time. */
static const auth_entry *table_find(const auth_table *t, const unsigned char *digest)
{
    for (size_t s = digest_slot(digest, t->mask); t->slots[s] != 0; s = (s + 1) & t->mask) {
        const auth_entry *en = &t->entries[t->slots[s] - 1];
        if (CRYPTO_memcmp(en->digest, digest, AUTH_DIGEST_LEN) == 0)
            return en;
    }
    return NULL;
}

/* Loads path into a new table. */
static rd_status table_load(const char *path, auth_table **out, rd_error *err)
{
    json_t *doc = NULL;
    rd_status rc = auth_file_load(path, &doc, err);
    *out = NULL;
    if (rc != RD_OK)
        return rc;
    *out = table_build(doc);
    json_decref(doc);
    if (*out == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "%s: out of memory", path);
    return RD_OK;
}

/* ---- Store --------------------------------------------------------------- */

rd_status auth_open(const char *tokens_file, auth_store **out, rd_error *err)
{
    rd_status rc;
    auth_store *st = NULL;
    auth_table *t = NULL;
    pthread_rwlockattr_t attr;

    *out = NULL;
    if (tokens_file == NULL || tokens_file[0] == '\0')
        return rd_fail(err, RD_ERR_INVALID_PARAMETER, "auth.tokens_file: empty path");
    rc = table_load(tokens_file, &t, err);
    if (rc != RD_OK)
        goto done;
    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->path = strdup(tokens_file)) == NULL) {
        rc = rd_fail(err, RD_ERR_INTERNAL, "%s: out of memory", tokens_file);
        goto done;
    }
    /* Prefer writers so a SIGHUP reload is not starved by busy workers. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&st->lock, &attr) != 0) {
        pthread_rwlockattr_destroy(&attr);
        rc = rd_fail(err, RD_ERR_INTERNAL, "%s: cannot create lock", tokens_file);
        goto done;
    }
    pthread_rwlockattr_destroy(&attr);
    st->table = t;
    t = NULL;
    *out = st;
    st = NULL;
done:
    if (st != NULL) {
        free(st->path);
        free(st);
    }
    table_free(t);
    return rc;
}

/* Logs one audit line per token that is in `now` and not in `before`
 * (verb "added") -- same hash, name, domain and role -- so both directions
 * of a reload are told by calling it twice. */
static void table_audit_missing(const auth_table *now, const auth_table *before, const char *verb)
{
    for (size_t i = 0; i < now->count; i++) {
        const auth_entry *en = &now->entries[i];
        const auth_entry *was = table_find(before, en->digest);
        if (was != NULL && was->role == en->role && strcmp(was->name, en->name) == 0 &&
            strcmp(was->domain_id, en->domain_id) == 0)
            continue;
        LOG_AUDIT("token.%s name=%s domain=%s role=%s", verb, en->name, en->domain_id,
                  auth_role_name(en->role));
    }
}

rd_status auth_reload(auth_store *store, rd_error *err)
{
    auth_table *fresh = NULL, *old;
    rd_status rc;

    if (store == NULL)
        return rd_fail(err, RD_ERR_INTERNAL, "auth: no store");
    rc = table_load(store->path, &fresh, err);
    if (rc != RD_OK)
        return rc;
    pthread_rwlock_wrlock(&store->lock);
    old = store->table;
    store->table = fresh;
    pthread_rwlock_unlock(&store->lock);
    table_audit_missing(fresh, old, "added");
    table_audit_missing(old, fresh, "removed");
    table_free(old);
    return RD_OK;
}

void auth_close(auth_store *store)
{
    if (store == NULL)
        return;
    pthread_rwlock_destroy(&store->lock);
    table_free(store->table);
    free(store->path);
    free(store);
}

size_t auth_token_count(auth_store *store)
{
    size_t n;
    if (store == NULL)
        return 0;
    pthread_rwlock_rdlock(&store->lock);
    n = store->table->count;
    pthread_rwlock_unlock(&store->lock);
    return n;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

rd_status auth_authenticate(auth_store *store, const char *authorization, auth_identity *who,
                            rd_error *err)
{
    const char *p, *tok;
    size_t len;
    char hex[AUTH_SHA256_HEX_LEN + 1];
    unsigned char digest[AUTH_DIGEST_LEN];
    const auth_entry *en;
    rd_status rc = RD_OK;

    memset(who, 0, sizeof(*who));
    who->role = AUTH_ROLE_ANONYMOUS;
    if (authorization == NULL)
        return RD_OK;

    p = authorization;
    while (is_ows(*p))
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != '\0' && !is_ows(p[6])))
        return rd_fail(err, RD_ERR_AUTHENTICATE_FAILURE,
                       "Authenticate failure. (reason = unsupported authorization scheme)");
    p += 6;
    while (is_ows(*p))
        p++;
    tok = p;
    len = strcspn(tok, " \t");
    for (p = tok + len; is_ows(*p); p++)
        ;
    if (len == 0)
        return rd_fail(err, RD_ERR_AUTHENTICATE_FAILURE,
                       "Authenticate failure. (reason = missing token)");
    if (*p != '\0' || len > AUTH_TOKEN_MAX)
        return rd_fail(err, RD_ERR_AUTHENTICATE_FAILURE,
                       "Authenticate failure. (reason = invalid token)");

    util_sha256_hex(tok, len, hex);
    sha256_hex_decode(hex, digest);
    if (store != NULL) {
        pthread_rwlock_rdlock(&store->lock);
        en = table_find(store->table, digest);
        if (en != NULL) {
            who->role = en->role;
            memcpy(who->name, en->name, sizeof(who->name));
            memcpy(who->domain_id, en->domain_id, sizeof(who->domain_id));
        }
        pthread_rwlock_unlock(&store->lock);
    } else {
        en = NULL;
    }
    if (en == NULL)
        rc = rd_fail(err, RD_ERR_AUTHENTICATE_FAILURE,
                     "Authenticate failure. (reason = invalid token)");
    OPENSSL_cleanse(hex, sizeof(hex));
    OPENSSL_cleanse(digest, sizeof(digest));
    return rc;
}
