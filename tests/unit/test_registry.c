/*
 * test_registry.c - unit tests of the registry client (src/registry/).
 *
 * Part 1, pure functions: version precedence and sorting, WWW-Authenticate
 * and Link parsing, base64 and ECR token answers, target resolution, and
 * GITHUB / GCP_PRIVATE_GCR targets, Google hosts and token_uri rules, the
 * GCP JWT (verified with OpenSSL) and key-file parser, the SigV4 signer against AWS's published
 * test-suite vectors (get-vanilla, post-vanilla, get-vanilla-query-order-key-case,
 * post-header-value-case, post-x-www-form-urlencoded; credential AKIDEXAMPLE, 20150830T123600Z,
 * us-east-1, service "service") and the IAM ListUsers example of AWS's
 * "Create a signed AWS API request" page.
 *
 * Part 2, the client on an event loop against an in-process fake registry:
 * one evhttp TLS server on 127.0.0.1 port 0 (certificate from
 * certs/gen-dev-certs.sh) that plays a Distribution registry (tags/list
 * with pagination, Bearer and Basic challenges, errors, stalls), its token
 * service, and ECR's GetAuthorizationToken endpoint (which checks the SigV4
 * signature).  The client is configured through a real conf_load_string()
 * config, so only keys that conf.c accepts are used.  Real-registry tests
 * are in test_registry_live.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testkit.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "httpc.h"
#include "registry.h"
#include "util.h"

/* =========================================================================
 * Part 1: pure functions
 * ========================================================================= */

/* ---- versions ------------------------------------------------------------- */

static json_t *array_of(const char *const *tags)
{
    json_t *a = json_array();
    size_t i;
    for (i = 0; tags[i] != NULL; i++)
        json_array_append_new(a, json_string(tags[i]));
    return a;
}

static void assert_array_is(const json_t *a, const char *const *expect)
{
    size_t i, n = 0;
    while (expect[n] != NULL)
        n++;
    if (json_array_size(a) != n) {
        char *dump = json_dumps(a, 0);
        fail_msg("expected %zu tags, got %s", n, dump);
    }
    for (i = 0; i < n; i++) {
        const char *got = json_string_value(json_array_get(a, i));
        if (got == NULL || strcmp(got, expect[i]) != 0) {
            char *dump = json_dumps(a, 0);
            fail_msg("position %zu: expected %s, got %s", i, expect[i], dump);
        }
    }
}

/* Sorts expect shuffled `rounds` times (deterministic PRNG) and checks the
 * order comes back every time. */
static void check_order(const char *const *expect, int rounds)
{
    size_t n = 0, i, j;
    const char **work;
    unsigned int seed = 12345;
    int r;
    while (expect[n] != NULL)
        n++;
    work = calloc(n + 1, sizeof(*work));
    assert_non_null(work);
    for (r = 0; r < rounds; r++) {
        json_t *a;
        memcpy(work, expect, n * sizeof(*work));
        for (i = n; i > 1; i--) {
            seed = seed * 1103515245u + 12345u;
            j = (seed >> 8) % i;
            const char *t = work[i - 1];
            work[i - 1] = work[j];
            work[j] = t;
        }
        if (r == 1) { /* also reversed */
            for (i = 0; i < n / 2; i++) {
                const char *t = work[i];
                work[i] = work[n - 1 - i];
                work[n - 1 - i] = t;
            }
            memcpy(work, expect, n * sizeof(*work));
            for (i = 0; i < n / 2; i++) {
                const char *t = work[i];
                work[i] = work[n - 1 - i];
                work[n - 1 - i] = t;
            }
        }
        a = array_of(work);
        registry_sort_versions(a);
        assert_array_is(a, expect);
        json_decref(a);
    }
    /* the comparison is antisymmetric and agrees with the order */
    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            int c = registry_version_cmp(expect[i], expect[j]);
            if (i < j && c >= 0)
                fail_msg("cmp(%s, %s) = %d, expected < 0", expect[i], expect[j], c);
            if (i > j && c <= 0)
                fail_msg("cmp(%s, %s) = %d, expected > 0", expect[i], expect[j], c);
            if (i == j)
                assert_int_equal(c, 0);
        }
    }
    free(work);
}

static void test_version_seed_order(void **state)
{
    static const char *const seed[] = {
        "1.2.2", "1.2.1.20220429.104002", "1.2.1.20220422.161421", "1.2.1.20220411.113807", "1.2.1",
        NULL};
    (void)state;
    check_order(seed, 50);
}

static void test_version_full_order(void **state)
{
    static const char *const order[] = {
        "10.0",   "2.0.1",    "2.0",         "V2.0",      "v2.0",  "2.0-rc10", "2.0-rc2", "2.0-rc1",
        "2.0-rc", "2.0-beta", "2.0-alpha.1", "2.0-alpha", "2.0-1", "1.10",     "1.9.9",   "1.02",
        "1.2",    "1.1",      "1",           "0.1",       "0",     "1.0+b",    "Latest",  "_x",
        "dev",    "latest",   "stable",      "v",         NULL};
    (void)state;
    check_order(order, 30);
}

static void test_version_huge_numbers(void **state)
{
    static const char *const order[] = {"1.99999999999999999999999999999999999999",
                                        "1.18446744073709551616",
                                        "1.18446744073709551615",
                                        "1.9223372036854775808",
                                        "1.9",
                                        "1.00000000000000000000000000000000000001",
                                        "1.1",
                                        "1.0000000000000000000000000000",
                                        NULL};
    (void)state;
    check_order(order, 20);
    /* equal values: the raw string decides, and never claims equality */
    assert_true(registry_version_cmp("1.01", "1.1") < 0);
    assert_true(registry_version_cmp("1.1", "1.01") > 0);
    assert_true(registry_version_cmp("1.0", "v1.0") < 0);
    assert_true(registry_version_cmp("2.0-rc01", "2.0-rc1") < 0);
    assert_int_equal(registry_version_cmp("1.0", "1.0"), 0);
    assert_int_equal(registry_version_cmp("latest", "latest"), 0);
}

static void test_version_grammar(void **state)
{
    static const char *const yes[] = {"0",
                                      "1",
                                      "1.2.3",
                                      "v1",
                                      "V1.0",
                                      "1.0-rc",
                                      "1.0-rc.1",
                                      "1.0-rc_1",
                                      "1.0-a-b",
                                      "007",
                                      "1.0--x",
                                      "2022.04.29",
                                      "1.2.1.20220429.104002",
                                      NULL};
    static const char *const no[] = {"",     "v",       "vv1",   "1.",     ".1",       "1..2",
                                     "1.0-", "1_0",     "1.0+b", "a1.0",   "1.a",      "1 0",
                                     "-1",   "1.0-r c", "x",     "latest", "1.0-rc+1", NULL};
    size_t i;
    (void)state;
    for (i = 0; yes[i] != NULL; i++) {
        if (!registry_is_version(yes[i]))
            fail_msg("%s should be a version", yes[i]);
    }
    for (i = 0; no[i] != NULL; i++) {
        if (registry_is_version(no[i]))
            fail_msg("\"%s\" should not be a version", no[i]);
    }
    assert_false(registry_is_version(NULL));
}

static void test_version_sort_edge_cases(void **state)
{
    json_t *a;
    (void)state;
    registry_sort_versions(NULL);
    a = json_object();
    registry_sort_versions(a); /* ignored */
    json_decref(a);
    a = json_array();
    registry_sort_versions(a);
    assert_int_equal(json_array_size(a), 0);
    /* non-strings go last, in their original order */
    json_array_append_new(a, json_integer(7));
    json_array_append_new(a, json_string("latest"));
    json_array_append_new(a, json_null());
    json_array_append_new(a, json_string("1.0"));
    json_array_append_new(a, json_string("2.0"));
    registry_sort_versions(a);
    assert_int_equal(json_array_size(a), 5);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "2.0");
    assert_string_equal(json_string_value(json_array_get(a, 1)), "1.0");
    assert_string_equal(json_string_value(json_array_get(a, 2)), "latest");
    assert_true(json_is_integer(json_array_get(a, 3)));
    assert_true(json_is_null(json_array_get(a, 4)));
    json_decref(a);
}

/* ---- WWW-Authenticate --------------------------------------------------- */

static void test_www_authenticate_docker_hub(void **state)
{
    registry_challenge ch;
    (void)state;
    assert_int_equal(registry_parse_www_authenticate(
                         "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker."
                         "io\",scope=\"repository:library/busybox:pull\"",
                         &ch),
                     0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BEARER);
    assert_string_equal(ch.realm, "https://auth.docker.io/token");
    assert_string_equal(ch.service, "registry.docker.io");
    assert_string_equal(ch.scope, "repository:library/busybox:pull");
    assert_null(ch.error);
    registry_challenge_clear(&ch);
    assert_null(ch.realm);
}

static void test_www_authenticate_quoting(void **state)
{
    registry_challenge ch;
    (void)state;
    /* commas and escapes inside quoted strings, spaces around '=' */
    assert_int_equal(
        registry_parse_www_authenticate(
            "Bearer realm = \"https://a.example/t?x=1,2\" , service=\"s,\\\"q\\\"\","
            "scope=\"repository:a/b:pull,push repository:c:pull\",error=\"insufficient_"
            "scope\"",
            &ch),
        0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BEARER);
    assert_string_equal(ch.realm, "https://a.example/t?x=1,2");
    assert_string_equal(ch.service, "s,\"q\"");
    assert_string_equal(ch.scope, "repository:a/b:pull,push repository:c:pull");
    assert_string_equal(ch.error, "insufficient_scope");
    registry_challenge_clear(&ch);

    /* unquoted values, case-insensitive scheme and names */
    assert_int_equal(
        registry_parse_www_authenticate("BEARER Realm=https://r.example/token,SERVICE=reg", &ch),
        0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BEARER);
    assert_string_equal(ch.realm, "https://r.example/token");
    assert_string_equal(ch.service, "reg");
    assert_null(ch.scope);
    registry_challenge_clear(&ch);

    assert_int_equal(registry_parse_www_authenticate("bAsIc realm=\"Registry Realm\"", &ch), 0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BASIC);
    assert_string_equal(ch.realm, "Registry Realm");
    registry_challenge_clear(&ch);
}

static void test_www_authenticate_missing_and_multiple(void **state)
{
    registry_challenge ch;
    (void)state;
    assert_int_equal(registry_parse_www_authenticate("Bearer realm=\"x\"", &ch), 0);
    assert_string_equal(ch.realm, "x");
    assert_null(ch.service);
    assert_null(ch.scope);
    registry_challenge_clear(&ch);

    assert_int_equal(registry_parse_www_authenticate("Basic", &ch), 0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BASIC);
    assert_null(ch.realm);
    registry_challenge_clear(&ch);

    assert_int_equal(registry_parse_www_authenticate("Bearer", &ch), 0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BEARER);
    assert_null(ch.realm);
    registry_challenge_clear(&ch);

    /* several challenges: Bearer wins, then Basic */
    assert_int_equal(
        registry_parse_www_authenticate("Basic realm=\"b\", Bearer realm=\"t\",service=\"s\"", &ch),
        0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BEARER);
    assert_string_equal(ch.realm, "t");
    assert_string_equal(ch.service, "s");
    registry_challenge_clear(&ch);

    assert_int_equal(registry_parse_www_authenticate("Basic, Bearer realm=\"t\"", &ch), 0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BEARER);
    assert_string_equal(ch.realm, "t");
    registry_challenge_clear(&ch);

    assert_int_equal(registry_parse_www_authenticate(
                         "Negotiate abc==, Basic realm=\"r\", Digest realm=\"d\"", &ch),
                     0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_BASIC);
    assert_string_equal(ch.realm, "r");
    registry_challenge_clear(&ch);

    assert_int_equal(registry_parse_www_authenticate("Digest realm=\"d\", qop=\"auth\"", &ch), 0);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_OTHER);
    registry_challenge_clear(&ch);
}

static void test_www_authenticate_malformed(void **state)
{
    static const char *const bad[] = {
        "",           "   ", "Bearer realm=\"unterminated", "=x", "Bearer realm=\"a\" junk",
        "\"quoted\"", NULL};
    registry_challenge ch;
    size_t i;
    (void)state;
    assert_int_equal(registry_parse_www_authenticate(NULL, &ch), -1);
    assert_int_equal(ch.scheme, REGISTRY_AUTH_NONE);
    for (i = 0; bad[i] != NULL; i++) {
        if (registry_parse_www_authenticate(bad[i], &ch) != -1)
            fail_msg("accepted malformed \"%s\"", bad[i]);
        assert_null(ch.realm);
    }
}

/* ---- Link ------------------------------------------------------------------- */

static void expect_next(const char *link, const char *base, const char *expect)
{
    char *next = (char *)1;
    assert_int_equal(registry_link_next(link, base, &next), 0);
    if (expect == NULL) {
        assert_null(next);
        return;
    }
    if (next == NULL)
        fail_msg("no next link in %s", link);
    assert_string_equal(next, expect);
    free(next);
}

static void test_link_next(void **state)
{
    const char *base = "https://r.example:5000/v2/foo/tags/list?n=2";
    (void)state;
    /* relative (absolute path), as Distribution sends it */
    expect_next("</v2/foo/tags/list?last=b&n=2>; rel=\"next\"", base,
                "https://r.example:5000/v2/foo/tags/list?last=b&n=2");
    /* absolute */
    expect_next("<https://other.example/v2/foo/tags/list?last=c>; rel=next", base,
                "https://other.example/v2/foo/tags/list?last=c");
    /* network-path, query-only and relative-path references */
    expect_next("<//cdn.example/v2/x>; rel=\"next\"", base, "https://cdn.example/v2/x");
    expect_next("<?last=z>; rel=\"next\"", base, "https://r.example:5000/v2/foo/tags/list?last=z");
    expect_next("<list2?last=z>; rel=\"next\"", base,
                "https://r.example:5000/v2/foo/tags/list2?last=z");
    expect_next("<a?b>; rel=next", "https://h.example", "https://h.example/a?b");
    /* several links, rel lists, case, other parameters with quoted commas */
    expect_next("<https://r.example/prev>; rel=\"prev\", </v2/foo/tags/list?last=d>; rel=\"next\"",
                base, "https://r.example:5000/v2/foo/tags/list?last=d");
    expect_next("</first>; rel=\"first\", </n?x=1>; title=\"a, b; c\"; REL=\"last NEXT\"", base,
                "https://r.example:5000/n?x=1");
    expect_next("</p>;rel=next;type=\"application/json\"", base, "https://r.example:5000/p");
    /* a link whose URL holds a comma */
    expect_next("</v2/foo/tags/list?last=a,b>; rel=\"next\"", base,
                "https://r.example:5000/v2/foo/tags/list?last=a,b");
    /* no next */
    expect_next("</v2/foo/tags/list?last=b>; rel=\"prev\"", base, NULL);
    expect_next("</v2/foo/tags/list?last=b>; rel=\"nextish\"", base, NULL);
    expect_next("", base, NULL);
    expect_next(NULL, base, NULL);
}

static void test_link_malformed(void **state)
{
    static const char *const bad[] = {"/v2/foo?last=b; rel=\"next\"",
                                      "<unterminated; rel=next",
                                      "<>; rel=\"next\"",
                                      "<a b>; rel=next",
                                      "</x>; rel=\"next",
                                      "</x> junk; rel=next",
                                      NULL};
    char *next = NULL;
    size_t i;
    (void)state;
    for (i = 0; bad[i] != NULL; i++) {
        if (registry_link_next(bad[i], "https://h.example/v2/", &next) != -1)
            fail_msg("accepted malformed Link \"%s\"", bad[i]);
        assert_null(next);
    }
    assert_int_equal(registry_link_next("</x>; rel=next", NULL, &next), -1);
}

/* ---- base64 and ECR answers -------------------------------------------------- */

static void test_base64(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar", NULL};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",     "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", NULL};
    unsigned char *d;
    size_t i, len;
    char *e;
    (void)state;
    for (i = 0; plain[i] != NULL; i++) { /* RFC 4648 section 10 */
        e = registry_base64_encode(plain[i], strlen(plain[i]));
        assert_string_equal(e, coded[i]);
        free(e);
        d = registry_base64_decode(coded[i], &len);
        assert_non_null(d);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(d, plain[i], len);
        free(d);
    }
    d = registry_base64_decode("QVdTOnBhc3N3b3Jk", &len);
    assert_string_equal((char *)d, "AWS:password");
    free(d);
    d = registry_base64_decode("Zm9vYg", &len); /* padding optional */
    assert_string_equal((char *)d, "foob");
    free(d);
    d = registry_base64_decode("AAEC/w==", &len); /* binary */
    assert_int_equal(len, 4);
    assert_int_equal(d[3], 0xff);
    free(d);
    assert_null(registry_base64_decode("Zm9v!", NULL));
    assert_null(registry_base64_decode("Z", NULL));
    assert_null(registry_base64_decode("Zm9v Zg==", NULL));
    assert_null(registry_base64_decode("Zg=", NULL));
    assert_null(registry_base64_decode("Zg===", NULL));
    assert_null(registry_base64_decode(NULL, NULL));
}

static void test_ecr_token_answer(void **state)
{
    char *basic = NULL;
    int64_t exp = -1;
    const char *ok =
        "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhc3N3b3Jk\","
        "\"expiresAt\":1.7E9,\"proxyEndpoint\":\"https://1.dkr.ecr.x.amazonaws.com\"}]}";
    const char *str_exp =
        "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhc3N3b3Jk\",\"expiresAt\":"
        "\"1700000000.5\"}]}";
    const char *no_exp = "{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhc3N3b3Jk\"}]}";
    static const char *const bad[] = {
        "not json",
        "{}",
        "{\"authorizationData\":[]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"\"}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"!!!\"}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"bm9jb2xvbg==\"}]}", /* "nocolon" */
        "{\"authorizationData\":[{\"authorizationToken\":\"OnB3\"}]}",         /* ":pw" */
        "{\"authorizationData\":[{\"authorizationToken\":42}]}",
        NULL};
    size_t i;
    (void)state;
    assert_int_equal(registry_ecr_parse_token(ok, strlen(ok), &basic, &exp), 0);
    assert_string_equal(basic, "Basic QVdTOnBhc3N3b3Jk");
    assert_true(exp == INT64_C(1700000000000));
    free(basic);
    assert_int_equal(registry_ecr_parse_token(str_exp, strlen(str_exp), &basic, &exp), 0);
    assert_true(exp == INT64_C(1700000000500));
    free(basic);
    assert_int_equal(registry_ecr_parse_token(no_exp, strlen(no_exp), &basic, &exp), 0);
    assert_true(exp == 0);
    free(basic);
    for (i = 0; bad[i] != NULL; i++) {
        if (registry_ecr_parse_token(bad[i], strlen(bad[i]), &basic, &exp) != -1)
            fail_msg("accepted bad ECR answer %s", bad[i]);
        assert_null(basic);
    }
}

/* ---- SigV4 --------------------------------------------------------------------- */

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_CRED                                                                                 \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static void suite_request(registry_sigv4_request *r, const char *method)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->host = "example.amazonaws.com";
    r->path = "/";
    r->access_key_id = "AKIDEXAMPLE";
    r->secret_access_key = SUITE_SECRET;
    r->region = "us-east-1";
    r->service = "service";
    r->amz_date = "20150830T123600Z";
}

static void expect_authz(const registry_sigv4_request *r, const char *expect)
{
    char out[512];
    assert_int_equal(registry_sigv4_authorization(r, out, sizeof(out)), 0);
    assert_string_equal(out, expect);
}

static void test_sigv4_suite_vectors(void **state)
{
    registry_sigv4_request r;
    const char *header_value_case[] = {"My-Header1", "VALUE1", NULL};
    const char *form[] = {"Content-Type", "application/x-www-form-urlencoded", NULL};
    (void)state;

    suite_request(&r, "GET"); /* get-vanilla */
    expect_authz(&r, SUITE_CRED
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    r.path = NULL; /* the same: an empty path is "/" */
    expect_authz(&r, SUITE_CRED
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");

    suite_request(&r, "POST"); /* post-vanilla */
    expect_authz(&r, SUITE_CRED
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");

    suite_request(&r, "GET"); /* get-vanilla-query-order-key-case */
    r.query = "Param2=value2&Param1=value1";
    expect_authz(&r, SUITE_CRED
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");

    suite_request(&r, "POST"); /* post-header-value-case */
    r.headers = header_value_case;
    expect_authz(&r, SUITE_CRED
                 "SignedHeaders=host;my-header1;x-amz-date, "
                 "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");

    suite_request(&r, "POST"); /* post-x-www-form-urlencoded */
    r.headers = form;
    r.body = "Param1=value1";
    r.body_len = strlen("Param1=value1");
    expect_authz(&r, SUITE_CRED
                 "SignedHeaders=content-type;host;x-amz-date, "
                 "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

/* AWS General Reference, "Create a signed AWS API request": IAM ListUsers. */
static void test_sigv4_iam_list_users(void **state)
{
    registry_sigv4_request r;
    const char *headers[] = {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8",
                             NULL};
    (void)state;
    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.host = "iam.amazonaws.com";
    r.path = "/";
    r.query = "Action=ListUsers&Version=2010-05-08";
    r.headers = headers;
    r.access_key_id = "AKIDEXAMPLE";
    r.secret_access_key = SUITE_SECRET;
    r.region = "us-east-1";
    r.service = "iam";
    r.amz_date = "20150830T123600Z";
    expect_authz(&r, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date, "
                     "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

static void test_sigv4_canonical_details(void **state)
{
    registry_sigv4_request r;
    char a[512], b[512];
    const char *spaced[] = {"My-Header1", "  value1   with   spaces  ", NULL};
    const char *clean[] = {"my-header1", "value1 with spaces", NULL};
    const char *host_dup[] = {"Host", "x", NULL};
    (void)state;
    /* header names are case-insensitive, values trimmed and collapsed */
    suite_request(&r, "GET");
    r.headers = spaced;
    assert_int_equal(registry_sigv4_authorization(&r, a, sizeof(a)), 0);
    r.headers = clean;
    assert_int_equal(registry_sigv4_authorization(&r, b, sizeof(b)), 0);
    assert_string_equal(a, b);
    /* query encoding is normalised: %7E and ~ are the same, order does not matter */
    suite_request(&r, "GET");
    r.query = "b=%7E&a=1";
    assert_int_equal(registry_sigv4_authorization(&r, a, sizeof(a)), 0);
    r.query = "a=1&b=~";
    assert_int_equal(registry_sigv4_authorization(&r, b, sizeof(b)), 0);
    assert_string_equal(a, b);
    /* refusals */
    suite_request(&r, "GET");
    r.amz_date = "2015-08-30T12:36:00Z";
    assert_int_equal(registry_sigv4_authorization(&r, a, sizeof(a)), -1);
    assert_string_equal(a, "");
    suite_request(&r, "GET");
    r.headers = host_dup;
    assert_int_equal(registry_sigv4_authorization(&r, a, sizeof(a)), -1);
    suite_request(&r, "GET");
    assert_int_equal(registry_sigv4_authorization(&r, a, 40), -1); /* too small */
    suite_request(&r, "GET");
    r.query = "a=%zz";
    assert_int_equal(registry_sigv4_authorization(&r, a, sizeof(a)), -1);
    suite_request(&r, "GET");
    r.secret_access_key = NULL;
    assert_int_equal(registry_sigv4_authorization(&r, a, sizeof(a)), -1);
    assert_int_equal(registry_sigv4_authorization(NULL, a, sizeof(a)), -1);
    /* the timestamp */
    registry_sigv4_timestamp(INT64_C(1440938160000), a);
    assert_string_equal(a, "20150830T123600Z");
    registry_sigv4_timestamp(0, a);
    assert_string_equal(a, "19700101T000000Z");
}

/* ---- targets ------------------------------------------------------------------- */

static repod_conf *load_conf(const char *json)
{
    repod_conf *conf = NULL;
    rd_error err = {0};
    if (conf_load_string(json, "/etc/repod/repod.json", &conf, &err) != RD_OK)
        fail_msg("config refused: %s", err.message);
    return conf;
}

/* A config whose registry.allowed_hosts admits the hosts of the target
 * tests (freed at exit by the group teardown). */
static repod_conf *g_open;

static repod_conf *open_conf(void)
{
    if (g_open == NULL)
        g_open = load_conf("{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, "
                           "\"registry\": {\"allowed_hosts\": [\"harbor.example.com:8443\", "
                           "\"harbor.example.com\", \"h.example\", \"q.io\", \"ecr.example.com\", "
                           "\"*.dkr.ecr.*.amazonaws.com\", \"*.dkr.ecr.*.amazonaws.com.cn\"]}}");
    return g_open;
}

static void test_target_docker_hub(void **state)
{
    registry_target t;
    rd_error err;
    repod_conf *conf;
    (void)state;
    assert_int_equal(registry_resolve_target(NULL, NULL, NULL, NULL, "busybox", &t, &err), RD_OK);
    assert_string_equal(t.host, "registry.hub.docker.com");
    assert_string_equal(t.api_url, "https://registry-1.docker.io");
    assert_string_equal(t.repository, "library/busybox");
    assert_false(t.ecr);
    registry_target_clear(&t);

    assert_int_equal(registry_resolve_target(open_conf(), "DOCKER_HUB", "registry.hub.docker.com",
                                             NULL, "pyengine/plugin-jira", &t, &err),
                     RD_OK);
    assert_string_equal(t.repository, "pyengine/plugin-jira");
    assert_string_equal(t.api_url, "https://registry-1.docker.io");
    registry_target_clear(&t);

    /* other names of Docker Hub share its entry */
    conf = load_conf(
        "{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, \"registries\": "
        "{\"registry.hub.docker.com\": {\"api_url\": \"https://mirror.example:8443/\"}}}");
    assert_int_equal(
        registry_resolve_target(conf, "DOCKER_HUB", "docker.io", NULL, "nginx", &t, &err), RD_OK);
    assert_string_equal(t.host, "registry.hub.docker.com");
    assert_string_equal(t.api_url, "https://mirror.example:8443");
    assert_string_equal(t.repository, "library/nginx");
    registry_target_clear(&t);
    conf_free(conf);
}

static void test_target_harbor_and_defaults(void **state)
{
    registry_target t;
    rd_error err;
    repod_conf *conf;
    (void)state;
    assert_int_equal(registry_resolve_target(open_conf(), "HARBOR",
                                             "harbor.example.com:8443/spaceone/", NULL, "plugin-x",
                                             &t, &err),
                     RD_OK);
    assert_string_equal(t.host, "harbor.example.com:8443");
    assert_string_equal(t.api_url, "https://harbor.example.com:8443");
    assert_string_equal(t.repository, "spaceone/plugin-x"); /* no library/ outside Docker Hub */
    registry_target_clear(&t);

    assert_int_equal(registry_resolve_target(open_conf(), "HARBOR", "https://harbor.example.com",
                                             NULL, "a/b", &t, &err),
                     RD_OK);
    assert_string_equal(t.host, "harbor.example.com");
    registry_target_clear(&t);

    assert_int_equal(registry_resolve_target(open_conf(), "HARBOR", NULL, NULL, "a/b", &t, &err),
                     RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "registry_url"));
    assert_null(t.host);

    conf = load_conf("{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, \"registry\": "
                     "{\"default_urls\": {\"HARBOR\": \"harbor.corp/base\"}}, \"registries\": "
                     "{\"harbor.corp\": {\"api_url\": \"https://10.0.0.5:9443\"}}}");
    assert_int_equal(registry_resolve_target(conf, "HARBOR", "", NULL, "a/b", &t, &err), RD_OK);
    assert_string_equal(t.host, "harbor.corp");
    assert_string_equal(t.api_url, "https://10.0.0.5:9443");
    assert_string_equal(t.repository, "base/a/b");
    registry_target_clear(&t);
    conf_free(conf);
}

static void test_target_ecr(void **state)
{
    registry_target t;
    rd_error err;
    repod_conf *conf;
    json_t *cfg = json_pack("{s:s, s:s}", "account_id", "123456789012", "region", "ap-northeast-2");
    (void)state;
    assert_int_equal(
        registry_resolve_target(open_conf(), "AWS_PRIVATE_ECR", NULL, cfg, "team/app", &t, &err),
        RD_OK);
    assert_string_equal(t.host, "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com");
    assert_string_equal(t.api_url, "https://123456789012.dkr.ecr.ap-northeast-2.amazonaws.com");
    assert_string_equal(t.repository, "team/app");
    assert_true(t.ecr);
    assert_string_equal(t.ecr_region, "ap-northeast-2");
    assert_string_equal(t.ecr_api_host, "api.ecr.ap-northeast-2.amazonaws.com");
    assert_string_equal(t.ecr_api_url, "https://api.ecr.ap-northeast-2.amazonaws.com");
    registry_target_clear(&t);

    /* from registry_url alone: region from the host name */
    assert_int_equal(registry_resolve_target(open_conf(), "AWS_PRIVATE_ECR",
                                             "1.dkr.ecr.eu-west-1.amazonaws.com", NULL, "app", &t,
                                             &err),
                     RD_OK);
    assert_string_equal(t.ecr_region, "eu-west-1");
    assert_string_equal(t.repository, "app");
    registry_target_clear(&t);

    assert_int_equal(registry_resolve_target(open_conf(), "AWS_PRIVATE_ECR",
                                             "1.dkr.ecr.cn-north-1.amazonaws.com.cn", NULL, "app",
                                             &t, &err),
                     RD_OK);
    assert_string_equal(t.ecr_api_url, "https://api.ecr.cn-north-1.amazonaws.com.cn");
    registry_target_clear(&t);

    /* the config's region wins; the API endpoint comes from its own entry */
    conf = load_conf(
        "{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, \"registries\": {"
        "\"1.dkr.ecr.eu-west-1.amazonaws.com\": {\"aws_region\": \"us-east-1\"},"
        "\"api.ecr.us-east-1.amazonaws.com\": {\"api_url\": \"https://127.0.0.1:1234/\"}}}");
    assert_int_equal(registry_resolve_target(conf, "AWS_PRIVATE_ECR",
                                             "1.dkr.ecr.eu-west-1.amazonaws.com", NULL, "app", &t,
                                             &err),
                     RD_OK);
    assert_string_equal(t.ecr_region, "us-east-1");
    assert_string_equal(t.ecr_api_url, "https://127.0.0.1:1234");
    registry_target_clear(&t);
    conf_free(conf);

    assert_int_equal(
        registry_resolve_target(open_conf(), "AWS_PRIVATE_ECR", NULL, NULL, "app", &t, &err),
        RD_ERR_INVALID_PARAMETER);
    assert_int_equal(registry_resolve_target(open_conf(), "AWS_PRIVATE_ECR", "ecr.example.com",
                                             NULL, "app", &t, &err),
                     RD_ERR_INVALID_PARAMETER); /* no region anywhere */
    json_object_set_new(cfg, "region", json_string("bad region"));
    assert_int_equal(
        registry_resolve_target(open_conf(), "AWS_PRIVATE_ECR", NULL, cfg, "app", &t, &err),
        RD_ERR_INVALID_PARAMETER);
    json_decref(cfg);
}

/* The outbound allow-list: patterns, rules, realm hosts, ECR shapes. */
static void test_allow_list_rules(void **state)
{
    repod_conf *conf;
    (void)state;
    /* '*' is exactly one DNS label; the port is part of the match */
    assert_true(registry_host_pattern_match("*.example.com", "a.example.com"));
    assert_true(registry_host_pattern_match("*.example.com", "A.Example.COM:443"));
    assert_false(registry_host_pattern_match("*.example.com", "a.b.example.com"));
    assert_false(registry_host_pattern_match("*.example.com", "example.com"));
    assert_false(registry_host_pattern_match("*.example.com", ".example.com"));
    assert_false(registry_host_pattern_match("*.example.com", "a.example.com:5000"));
    assert_false(registry_host_pattern_match("*.example.com", "a.example.com.evil.org"));
    assert_true(registry_host_pattern_match("*.example.com:5000", "a.example.com:5000"));
    assert_false(registry_host_pattern_match("*.example.com:5000", "a.example.com"));
    assert_true(registry_host_pattern_match("*.dkr.ecr.*.amazonaws.com",
                                            "123456789012.dkr.ecr.us-east-1.amazonaws.com"));
    assert_false(registry_host_pattern_match("*.dkr.ecr.*.amazonaws.com",
                                             "1.dkr.ecr.us-east-1.amazonaws.com.evil.org"));
    assert_false(
        registry_host_pattern_match("*.dkr.ecr.*.amazonaws.com", "x.dkr.ecr.a.b.amazonaws.com"));

    conf = load_conf(
        "{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, "
        "\"registry\": {\"allowed_hosts\": [\"*.corp.example\", \"exact.example:5000\"], "
        "\"default_urls\": {\"HARBOR\": \"harbor.default.example/base\"}}, "
        "\"registries\": {\"Harbor.Example.com\": {\"api_url\": \"https://10.1.2.3:9443\", "
        "\"token_realm_hosts\": [\"sso.example.com\"]}}}");
    assert_int_equal(registry_host_rule_of(conf, "harbor.example.com"), REGISTRY_HOST_NAMED);
    assert_int_equal(registry_host_rule_of(conf, "harbor.example.com:443"), REGISTRY_HOST_NAMED);
    assert_int_equal(registry_host_rule_of(conf, "harbor.example.com:444"), REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_host_rule_of(conf, "https://10.1.2.3:9443"), REGISTRY_HOST_NAMED);
    assert_int_equal(registry_host_rule_of(conf, "harbor.default.example"), REGISTRY_HOST_NAMED);
    assert_int_equal(registry_host_rule_of(conf, "exact.example:5000"), REGISTRY_HOST_NAMED);
    assert_int_equal(registry_host_rule_of(conf, "exact.example"), REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_host_rule_of(conf, "r.corp.example"), REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_host_rule_of(conf, "registry.hub.docker.com"), REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_host_rule_of(conf, "registry-1.docker.io"), REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_host_rule_of(conf, "169.254.169.254"), REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_host_rule_of(NULL, "harbor.example.com"), REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_host_rule_of(NULL, "registry.hub.docker.com"), REGISTRY_HOST_ALLOWED);

    /* realms: own host, token_realm_hosts, Docker Hub's default; nothing else */
    assert_int_equal(registry_realm_rule_of(conf, "harbor.example.com", "https://10.1.2.3:9443",
                                            "10.1.2.3:9443"),
                     REGISTRY_HOST_NAMED);
    assert_int_equal(registry_realm_rule_of(conf, "harbor.example.com", "https://10.1.2.3:9443",
                                            "sso.example.com"),
                     REGISTRY_HOST_NAMED);
    assert_int_equal(registry_realm_rule_of(conf, "harbor.example.com", "https://10.1.2.3:9443",
                                            "evil.example.com"),
                     REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_realm_rule_of(conf, "harbor.example.com", "https://10.1.2.3:9443",
                                            "10.1.2.3:9444"),
                     REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_realm_rule_of(NULL, "registry.hub.docker.com",
                                            "https://registry-1.docker.io", "auth.docker.io:443"),
                     REGISTRY_HOST_ALLOWED);
    assert_int_equal(
        registry_realm_rule_of(NULL, "r.corp.example", "https://r.corp.example", "auth.docker.io"),
        REGISTRY_HOST_REFUSED);
    conf_free(conf);

    /* ECR shapes */
    assert_true(registry_ecr_account_valid("123456789012"));
    assert_false(registry_ecr_account_valid("12345678901"));
    assert_false(registry_ecr_account_valid("1234567890123"));
    assert_false(registry_ecr_account_valid("12345678901a"));
    assert_false(registry_ecr_account_valid(NULL));
    assert_true(registry_ecr_region_valid("us-east-1"));
    assert_true(registry_ecr_region_valid("ap-northeast-2"));
    assert_true(registry_ecr_region_valid("us-gov-west-1"));
    assert_true(registry_ecr_region_valid("cn-north-1"));
    assert_false(registry_ecr_region_valid("us-east"));
    assert_false(registry_ecr_region_valid("x.evil.com"));
    assert_false(registry_ecr_region_valid("US-EAST-1"));
    assert_false(registry_ecr_region_valid("u-east-1"));
    assert_false(registry_ecr_region_valid("us--1"));
    assert_false(registry_ecr_region_valid("us-east-1a"));
}

/* ---- GITHUB and GCP_PRIVATE_GCR ------------------------------------------------ */

static void test_target_github_and_gcp(void **state)
{
    registry_target t;
    rd_error err;
    repod_conf *conf;
    (void)state;
    /* GITHUB: ghcr.io by default, a path prefix allowed, no other host */
    assert_int_equal(
        registry_resolve_target(open_conf(), "GITHUB", NULL, NULL, "org/app", &t, &err), RD_OK);
    assert_string_equal(t.host, "ghcr.io");
    assert_string_equal(t.api_url, "https://ghcr.io");
    assert_string_equal(t.repository, "org/app");
    assert_false(t.named); /* built in: special addresses refused */
    assert_false(t.gcp);
    registry_target_clear(&t);
    assert_int_equal(registry_resolve_target(open_conf(), "GITHUB", "ghcr.io/cloudforet-io", NULL,
                                             "plugin-x", &t, &err),
                     RD_OK);
    assert_string_equal(t.repository, "cloudforet-io/plugin-x");
    registry_target_clear(&t);
    assert_int_equal(
        registry_resolve_target(open_conf(), "GITHUB", "harbor.example.com", NULL, "a/b", &t, &err),
        RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "GITHUB reads from ghcr.io"));

    /* GCP_PRIVATE_GCR: Google's hosts only, registry_url required */
    assert_int_equal(registry_resolve_target(open_conf(), "GCP_PRIVATE_GCR", "gcr.io/my-project",
                                             NULL, "app", &t, &err),
                     RD_OK);
    assert_string_equal(t.host, "gcr.io");
    assert_string_equal(t.repository, "my-project/app");
    assert_true(t.gcp);
    registry_target_clear(&t);
    assert_int_equal(registry_resolve_target(open_conf(), "GCP_PRIVATE_GCR",
                                             "asia-northeast3-docker.pkg.dev/proj/repo", NULL,
                                             "app", &t, &err),
                     RD_OK);
    assert_string_equal(t.api_url, "https://asia-northeast3-docker.pkg.dev");
    assert_string_equal(t.repository, "proj/repo/app");
    registry_target_clear(&t);
    assert_int_equal(
        registry_resolve_target(open_conf(), "GCP_PRIVATE_GCR", NULL, NULL, "app", &t, &err),
        RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "registry_url"));
    assert_int_equal(registry_resolve_target(open_conf(), "GCP_PRIVATE_GCR", "evil.example/p", NULL,
                                             "app", &t, &err),
                     RD_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "GCP_PRIVATE_GCR reads from"));

    /* a `registries` entry maps the host elsewhere; default_urls work */
    conf = load_conf("{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, \"registry\": "
                     "{\"default_urls\": {\"GCP_PRIVATE_GCR\": \"eu.gcr.io/proj\"}}, "
                     "\"registries\": {\"ghcr.io\": {\"api_url\": \"https://127.0.0.1:5000\"}}}");
    assert_int_equal(registry_resolve_target(conf, "GITHUB", "", NULL, "o/a", &t, &err), RD_OK);
    assert_string_equal(t.api_url, "https://127.0.0.1:5000");
    assert_true(t.named);
    registry_target_clear(&t);
    assert_int_equal(registry_resolve_target(conf, "GCP_PRIVATE_GCR", "", NULL, "a", &t, &err),
                     RD_OK);
    assert_string_equal(t.host, "eu.gcr.io");
    assert_string_equal(t.repository, "proj/a");
    registry_target_clear(&t);
    conf_free(conf);
}

static void test_google_hosts_and_token_uri(void **state)
{
    repod_conf *conf;
    (void)state;
    assert_true(registry_google_host("gcr.io"));
    assert_true(registry_google_host("us.gcr.io"));
    assert_true(registry_google_host("EU.GCR.IO:443"));
    assert_true(registry_google_host("us-docker.pkg.dev"));
    assert_true(registry_google_host("europe-west1-docker.pkg.dev"));
    assert_false(registry_google_host("a.b.gcr.io"));      /* one label only */
    assert_false(registry_google_host("gcr.io:5000"));     /* port 443 only */
    assert_false(registry_google_host("-docker.pkg.dev")); /* no location */
    assert_false(registry_google_host("docker.pkg.dev"));
    assert_false(registry_google_host("us-maven.pkg.dev")); /* not a Docker repository */
    assert_false(registry_google_host("x.us-docker.pkg.dev"));
    assert_false(registry_google_host("gcr.io.evil.org"));
    assert_false(registry_google_host("evilgcr.io"));

    /* built in: allowed, special addresses refused */
    assert_int_equal(registry_host_rule_of(open_conf(), "ghcr.io"), REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_host_rule_of(open_conf(), "us.gcr.io"), REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_host_rule_of(open_conf(), "us-docker.pkg.dev"),
                     REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_host_rule_of(open_conf(), "ghcr.io:8443"), REGISTRY_HOST_REFUSED);

    /* token_uri: https on oauth2.googleapis.com, or a token_realm_hosts entry */
    conf = load_conf("{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, \"registries\": "
                     "{\"gcr.io\": {\"token_realm_hosts\": [\"127.0.0.1:7000\"]}}}");
    assert_int_equal(
        registry_token_uri_rule_of(conf, "us.gcr.io", "https://oauth2.googleapis.com/token"),
        REGISTRY_HOST_ALLOWED);
    assert_int_equal(registry_token_uri_rule_of(conf, "gcr.io", "https://127.0.0.1:7000/token"),
                     REGISTRY_HOST_NAMED);
    assert_int_equal(registry_token_uri_rule_of(conf, "us.gcr.io", "https://127.0.0.1:7000/token"),
                     REGISTRY_HOST_REFUSED); /* another registry's list */
    assert_int_equal(registry_token_uri_rule_of(conf, "gcr.io", "http://127.0.0.1:7000/token"),
                     REGISTRY_HOST_REFUSED); /* not https */
    assert_int_equal(registry_token_uri_rule_of(conf, "gcr.io", "http://oauth2.googleapis.com/t"),
                     REGISTRY_HOST_REFUSED);
    assert_int_equal(registry_token_uri_rule_of(conf, "gcr.io", "https://evil.example/token"),
                     REGISTRY_HOST_REFUSED);
    conf_free(conf);
}

/* A new RSA (or, with ec, P-256) private key as PEM. */
static char *new_key_pem(int ec, EVP_PKEY **pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    *pkey = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    assert_non_null(*pkey);
    assert_int_equal(PEM_write_bio_PrivateKey(bio, *pkey, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

/* Base64url (no padding) decoded, via the standard decoder. */
static unsigned char *b64url_decode(const char *in, size_t n, size_t *len)
{
    char *std = strndup(in, n);
    unsigned char *out;
    for (char *p = std; *p != '\0'; p++) {
        assert_true(*p != '=' && *p != '+' && *p != '/'); /* url alphabet, no padding */
        if (*p == '-')
            *p = '+';
        else if (*p == '_')
            *p = '/';
    }
    out = registry_base64_decode(std, len);
    free(std);
    assert_non_null(out);
    return out;
}

static void test_gcp_jwt_verifies(void **state)
{
    EVP_PKEY *pkey, *ec;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    registry_gcp_key key;
    char why[128], *pem = new_key_pem(0, &pkey), *ec_pem = new_key_pem(1, &ec), *jwt, *b64;
    const char *dot1, *dot2;
    unsigned char *part, *sig;
    size_t len, sig_len;
    json_t *j;
    (void)state;

    key.client_email = "repod@proj.iam.gserviceaccount.com";
    key.private_key = pem;
    key.token_uri = "https://oauth2.googleapis.com/token";
    assert_int_equal(registry_gcp_jwt(&key, NULL, 1700000000, &jwt, why, sizeof(why)), 0);
    dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    assert_null(strchr(dot2 + 1, '.'));

    part = b64url_decode(jwt, (size_t)(dot1 - jwt), &len);
    j = json_loads((char *)part, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(j, "typ")), "JWT");
    json_decref(j);
    free(part);
    part = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
    j = json_loads((char *)part, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "iss")), key.client_email);
    assert_string_equal(json_string_value(json_object_get(j, "aud")), key.token_uri);
    assert_string_equal(json_string_value(json_object_get(j, "scope")),
                        "https://www.googleapis.com/auth/cloud-platform");
    assert_int_equal(json_integer_value(json_object_get(j, "iat")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(j, "exp")), 1700003600);
    json_decref(j);
    free(part);

    /* RSASSA-PKCS1-v1_5 SHA-256 over "header.claims", checked by OpenSSL */
    sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig_len);
    assert_int_equal(sig_len, 256);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_equal(
        EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    /* ... and not over anything else */
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_not_equal(
        EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)jwt, (size_t)(dot2 - jwt) - 1),
        1);
    free(sig);
    free(jwt);

    /* base64url without padding: 1, 2 and 3 bytes; '-' and '_' */
    b64 = registry_base64url_encode("\xfb\xff", 2);
    assert_string_equal(b64, "-_8");
    free(b64);
    b64 = registry_base64url_encode("a", 1);
    assert_string_equal(b64, "YQ");
    free(b64);
    b64 = registry_base64url_encode("abc", 3);
    assert_string_equal(b64, "YWJj");
    free(b64);

    /* not RSA, not a key: a reason, no JWT */
    key.private_key = ec_pem;
    assert_int_equal(registry_gcp_jwt(&key, NULL, 1700000000, &jwt, why, sizeof(why)), -1);
    assert_null(jwt);
    assert_string_equal(why, "private_key is not an RSA key");
    key.private_key = "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n";
    assert_int_equal(registry_gcp_jwt(&key, NULL, 1700000000, &jwt, why, sizeof(why)), -1);
    assert_string_equal(why, "private_key cannot be read");

    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    EVP_PKEY_free(ec);
    free(pem);
    free(ec_pem);
}

static void test_gcp_key_parse(void **state)
{
    registry_gcp_key key;
    char why[128];
    const char *good = "{\"type\": \"service_account\", \"project_id\": \"p\", \"client_email\": "
                       "\"a@p.iam.gserviceaccount.com\", \"private_key\": \"-----BEGIN PRIVATE "
                       "KEY-----\\nxyz\\n-----END PRIVATE KEY-----\\n\", \"token_uri\": "
                       "\"https://oauth2.googleapis.com/token\"}";
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "not a JSON object"},
        {"[1]", "not a JSON object"},
        {"{\"private_key\": \"-----BEGIN X\", \"token_uri\": \"https://t\"}",
         "client_email is missing"},
        {"{\"client_email\": \"a@b\", \"token_uri\": \"https://t\"}", "private_key is missing"},
        {"{\"client_email\": \"a@b\", \"private_key\": \"secret-not-pem\", \"token_uri\": "
         "\"https://t\"}",
         "private_key is not PEM"},
        {"{\"client_email\": \"a@b\", \"private_key\": \"-----BEGIN X\"}", "token_uri is missing"},
        {"{\"client_email\": \"a@b\", \"private_key\": \"-----BEGIN X\", \"token_uri\": "
         "\"http://t\"}",
         "token_uri is not https"},
        {"{\"type\": \"authorized_user\", \"client_email\": \"a@b\", \"private_key\": "
         "\"-----BEGIN X\", \"token_uri\": \"https://t\"}",
         "type is not \"service_account\""},
    };
    char *token;
    int64_t exp;
    (void)state;

    assert_int_equal(registry_gcp_key_parse(good, strlen(good), &key, why, sizeof(why)), 0);
    assert_string_equal(key.client_email, "a@p.iam.gserviceaccount.com");
    assert_string_equal(key.token_uri, "https://oauth2.googleapis.com/token");
    assert_non_null(strstr(key.private_key, "-----BEGIN PRIVATE KEY-----\nxyz"));
    registry_gcp_key_clear(&key);
    assert_null(key.private_key);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(
            registry_gcp_key_parse(bad[i].text, strlen(bad[i].text), &key, why, sizeof(why)), -1);
        assert_string_equal(why, bad[i].why);
        assert_null(key.client_email);
        assert_null(strstr(why, "secret")); /* never the key itself */
    }

    /* the token endpoint's answer */
    assert_int_equal(registry_gcp_parse_token("{\"access_token\": \"ya29.x\", \"expires_in\": "
                                              "3599, \"token_type\": \"Bearer\"}",
                                              70, &token, &exp),
                     0);
    assert_string_equal(token, "ya29.x");
    assert_int_equal(exp, 3599);
    free(token);
    assert_int_equal(registry_gcp_parse_token("{\"access_token\": \"t\"}", 21, &token, &exp), 0);
    assert_int_equal(exp, 3600);
    free(token);
    assert_int_equal(registry_gcp_parse_token("{\"error\": \"invalid_grant\"}", 26, &token, &exp),
                     -1);
    assert_null(token);
    assert_int_equal(registry_gcp_parse_token("{\"access_token\": \"a\\nb\"}", 24, &token, &exp),
                     -1);
}

static void test_target_refusals(void **state)
{
    static const char *const bad_images[] = {"Foo/bar", "a//b", "-a",    "a-", "a?b",
                                             "a/../b",  "a b",  "/a",    "a/", "a:tag",
                                             "a@sha",   "a..b", "a___b", NULL};
    static const char *const good_images[] = {
        "a", "a/b/c", "a.b", "a_b", "a__b", "a---b", "plugin-jira-noti-protocol", NULL};
    registry_target t;
    rd_error err;
    size_t i;
    (void)state;
    assert_int_equal(registry_resolve_target(open_conf(), "QUAY", "q.io", NULL, "a", &t, &err),
                     RD_ERR_INVALID_REGISTRY_TYPE);
    assert_non_null(strstr(err.message, "QUAY"));
    assert_int_equal(
        registry_resolve_target(open_conf(), "HARBOR", "h.example", NULL, NULL, &t, &err),
        RD_ERR_REQUIRED_PARAMETER);
    for (i = 0; bad_images[i] != NULL; i++) {
        if (registry_resolve_target(open_conf(), "HARBOR", "h.example", NULL, bad_images[i], &t,
                                    &err) != RD_ERR_INVALID_IMAGE_FORMAT)
            fail_msg("accepted image %s", bad_images[i]);
    }
    for (i = 0; good_images[i] != NULL; i++) {
        if (registry_resolve_target(open_conf(), "HARBOR", "h.example", NULL, good_images[i], &t,
                                    &err) != RD_OK)
            fail_msg("refused image %s: %s", good_images[i], err.message);
        registry_target_clear(&t);
    }
    assert_int_equal(
        registry_resolve_target(open_conf(), "HARBOR", "h.example/Bad", NULL, "a", &t, &err),
        RD_ERR_INVALID_PARAMETER);
    assert_int_equal(
        registry_resolve_target(open_conf(), "HARBOR", "us er@h.example", NULL, "a", &t, &err),
        RD_ERR_INVALID_PARAMETER);
}

/* =========================================================================
 * Part 2: the client against an in-process fake registry
 * ========================================================================= */

static char g_dir[64];
static char g_ca[128], g_cert[128], g_key[128];
static char g_pw_good[128], g_pw_bad[128], g_aws_secret[128];

#define ECR_SECRET   "fake/ecr+secret"
#define ECR_PASSWORD "ecr-pw-1"

/* ---- the fake server ----------------------------------------------------------- */

typedef struct {
    struct evhttp *http;
    SSL_CTX *ctx;
    int port;
    int token_hits;      /* GET /token */
    int token_with_auth; /* ... that carried basic credentials */
    int ecr_hits;        /* POST / (GetAuthorizationToken) */
    int ecr_sig_ok;      /* ... whose signature verified */
    int tags_hits;       /* GET .../tags/list */
    int unauthorized;    /* 401 answers */
    char last_path[512]; /* of the last tags request, with query */
    char last_auth[512]; /* its Authorization header */
} fake_server;

static fake_server g_fake;

static struct bufferevent *fake_bevcb(struct event_base *base, void *arg)
{
    fake_server *srv = arg;
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

static const char *req_header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static void reply(struct evhttp_request *req, int code, const char *content_type, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    if (content_type != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    if (body != NULL)
        evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Status", out);
    evbuffer_free(out);
}

static char *basic_of(const char *user, const char *pw)
{
    char pair[256], *b64, *out;
    snprintf(pair, sizeof(pair), "%s:%s", user, pw);
    b64 = registry_base64_encode(pair, strlen(pair));
    out = malloc(strlen(b64) + 7);
    sprintf(out, "Basic %s", b64);
    free(b64);
    return out;
}

static int auth_is_basic(struct evhttp_request *req, const char *user, const char *pw)
{
    const char *got = req_header(req, "Authorization");
    char *want = basic_of(user, pw);
    int ok = got != NULL && strcmp(got, want) == 0;
    free(want);
    return ok;
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

/* The tags of "paged/app", in the server's (lexical) order. */
static const char *const paged_tags[] = {
    "0.9",   "1.0", "1.0-rc1", "1.0-rc2", "1.2.1",
    "1.2.2", "dev", "latest",  "v1.1",    "1.2.1.20220429.104002",
    NULL};

/* Distribution-style paging of tags[]: n and last from the query; link_style
 * 0 = relative, 1 = absolute, 2 = several links, 3 = another origin. */
static void reply_paged(fake_server *srv, struct evhttp_request *req, const char *name,
                        const char *const *tags, int link_style_cycle)
{
    char nbuf[32], last[128], link[1024];
    struct evbuffer *out = evbuffer_new();
    size_t start = 0, count = 0, i, n;
    long page_n;
    int style;

    query_value(req, "n", nbuf, sizeof(nbuf));
    query_value(req, "last", last, sizeof(last));
    page_n = nbuf[0] != '\0' ? strtol(nbuf, NULL, 10) : 1000;
    while (tags[count] != NULL)
        count++;
    if (last[0] != '\0') {
        for (i = 0; i < count; i++) {
            if (strcmp(tags[i], last) == 0)
                start = i + 1;
        }
    }
    n = 0;
    evbuffer_add_printf(out, "{\"name\":\"%s\",\"tags\":[", name);
    for (i = start; i < count && (long)n < page_n; i++, n++)
        evbuffer_add_printf(out, "%s\"%s\"", n > 0 ? "," : "", tags[i]);
    evbuffer_add_printf(out, "]}");
    if (i < count) {
        style = link_style_cycle >= 0 ? (int)(start / (size_t)page_n) % 3 : -link_style_cycle - 1;
        if (style == 0)
            snprintf(link, sizeof(link), "</v2/%s/tags/list?n=%ld&last=%s>; rel=\"next\"", name,
                     page_n, tags[i - 1]);
        else if (style == 1)
            snprintf(link, sizeof(link),
                     "<https://127.0.0.1:%d/v2/%s/tags/list?n=%ld&last=%s>; rel=next", srv->port,
                     name, page_n, tags[i - 1]);
        else if (style == 2)
            snprintf(link, sizeof(link),
                     "</v2/%s/tags/list?n=%ld>; rel=\"first\", </v2/%s/tags/list?n=%ld&last=%s>; "
                     "title=\"a, b\"; rel=\"last next\"",
                     name, page_n, name, page_n, tags[i - 1]);
        else
            snprintf(link, sizeof(link),
                     "<https://registry.internal:5000/v2/%s/tags/list?n=%ld&last=%s>; rel=\"next\"",
                     name, page_n, tags[i - 1]);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Link", link);
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void reply_unauthorized(fake_server *srv, struct evhttp_request *req, const char *challenge)
{
    srv->unauthorized++;
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", challenge);
    reply(req, 401, "application/json",
          "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}");
}

static void fake_tags(fake_server *srv, struct evhttp_request *req, const char *name)
{
    static const char *const two[] = {"1.0", "2.0", NULL};
    static const char *const cross[] = {"1", "2", "3", "4", "5", NULL};
    const char *auth = req_header(req, "Authorization");
    char challenge[512];

    srv->tags_hits++;
    snprintf(srv->last_path, sizeof(srv->last_path), "%s", evhttp_request_get_uri(req));
    snprintf(srv->last_auth, sizeof(srv->last_auth), "%s", auth != NULL ? auth : "");
    if (strcmp(name, "paged/app") == 0) {
        reply_paged(srv, req, name, paged_tags, 0);
    } else if (strcmp(name, "crossorigin/app") == 0) {
        reply_paged(srv, req, name, cross, -4);
    } else if (strcmp(name, "loop/app") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Link",
                          "</v2/loop/app/tags/list?n=1000>; rel=\"next\"");
        reply(req, 200, "application/json", "{\"name\":\"loop/app\",\"tags\":[\"1\"]}");
    } else if (strcmp(name, "badlink/app") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Link", "<nope; rel=next");
        reply(req, 200, "application/json", "{\"name\":\"badlink/app\",\"tags\":[\"1\"]}");
    } else if (strcmp(name, "garbage/app") == 0) {
        reply(req, 200, "application/json", "<html>surprise</html>");
    } else if (strcmp(name, "badtags/app") == 0) {
        reply(req, 200, "application/json", "{\"name\":\"badtags/app\",\"tags\":[\"1.0\",2]}");
    } else if (strcmp(name, "notags/app") == 0) {
        reply(req, 200, "application/json", "{\"name\":\"notags/app\"}");
    } else if (strcmp(name, "nulltags/app") == 0) {
        reply(req, 200, "application/json", "{\"name\":\"nulltags/app\",\"tags\":null}");
    } else if (strcmp(name, "dups/app") == 0) {
        reply(req, 200, "application/json",
              "{\"name\":\"dups/app\",\"tags\":[\"1.0\",\"latest\",\"1.0\",\"2.0\"]}");
    } else if (strcmp(name, "err500/app") == 0) {
        reply(req, 500, "text/plain", "boom");
    } else if (strcmp(name, "err503/app") == 0) {
        reply(req, 503, "text/plain", "maintenance");
    } else if (strcmp(name, "err403/app") == 0) {
        reply(req, 403, "application/json", "{\"errors\":[{\"code\":\"DENIED\"}]}");
    } else if (strcmp(name, "big/app") == 0) {
        struct evbuffer *out = evbuffer_new();
        int i;
        evbuffer_add_printf(out, "{\"name\":\"big/app\",\"tags\":[\"0\"");
        for (i = 1; i < 2000; i++)
            evbuffer_add_printf(out, ",\"%d\"", i);
        evbuffer_add_printf(out, "]}");
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
    } else if (strcmp(name, "slow/app") == 0) {
        /* never answered */
    } else if (strcmp(name, "bearer/app") == 0 || strcmp(name, "private/app") == 0 ||
               strcmp(name, "library/busybox") == 0) {
        int ok = auth != NULL &&
                 (strcmp(auth, "Bearer tok-good") == 0 ||
                  (strcmp(name, "private/app") != 0 && strcmp(auth, "Bearer tok-anon") == 0));
        if (!ok) {
            snprintf(challenge, sizeof(challenge),
                     "Bearer realm=\"https://127.0.0.1:%d/token\",service=\"fake-registry\","
                     "scope=\"repository:%s:pull\"",
                     srv->port, name);
            reply_unauthorized(srv, req, challenge);
            return;
        }
        reply_paged(srv, req, name, two, 0);
    } else if (strcmp(name, "basic/app") == 0) {
        if (!auth_is_basic(req, "alice", "s3cret")) {
            reply_unauthorized(srv, req, "Basic realm=\"fake\"");
            return;
        }
        reply_paged(srv, req, name, two, 0);
    } else if (strcmp(name, "ecr/app") == 0) {
        if (!auth_is_basic(req, "AWS", ECR_PASSWORD)) {
            reply_unauthorized(srv, req,
                               "Basic realm=\"https://ecr\",service=\"ecr.amazonaws.com\"");
            return;
        }
        reply_paged(srv, req, name, two, 0);
    } else if (strcmp(name, "foreign/app") == 0) {
        /* a realm on another host name (the same server, so token_hits
         * shows whether it was asked) */
        snprintf(challenge, sizeof(challenge),
                 "Bearer realm=\"https://localhost:%d/token\",service=\"fake-registry\","
                 "scope=\"repository:%s:pull\"",
                 srv->port, name);
        reply_unauthorized(srv, req, challenge);
    } else if (strcmp(name, "odd-challenge/app") == 0) {
        reply_unauthorized(srv, req, "Negotiate");
    } else {
        reply(req, 404, "application/json",
              "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name not known to "
              "registry\"}]}");
    }
}

/* GET /token: basic alice:s3cret -> tok-good, anonymous -> tok-anon. */
static void fake_token(fake_server *srv, struct evhttp_request *req)
{
    char service[128], scope[256];
    srv->token_hits++;
    query_value(req, "service", service, sizeof(service));
    query_value(req, "scope", scope, sizeof(scope));
    if (strcmp(service, "fake-registry") != 0 || strncmp(scope, "repository:", 11) != 0) {
        reply(req, 400, "application/json", "{\"details\":\"bad service or scope\"}");
        return;
    }
    if (req_header(req, "Authorization") != NULL) {
        srv->token_with_auth++;
        if (!auth_is_basic(req, "alice", "s3cret")) {
            reply(req, 401, "application/json", "{\"details\":\"incorrect username or password\"}");
            return;
        }
        reply(req, 200, "application/json",
              "{\"token\":\"tok-good\",\"expires_in\":300,\"issued_at\":\"2024-01-01T00:00:00Z\"}");
        return;
    }
    reply(req, 200, "application/json", "{\"access_token\":\"tok-anon\"}");
}

/* POST /: ECR GetAuthorizationToken; verifies the SigV4 signature. */
static void fake_ecr(fake_server *srv, struct evhttp_request *req)
{
    const char *authz = req_header(req, "Authorization"), *date = req_header(req, "X-Amz-Date");
    const char *target = req_header(req, "X-Amz-Target"), *ctype = req_header(req, "Content-Type");
    const char *host = req_header(req, "Host");
    const char *signed_headers[] = {"Content-Type", ctype != NULL ? ctype : "", "X-Amz-Target",
                                    target != NULL ? target : "", NULL};
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char body[64] = "", expect[1024], answer[512], token_pair[64], *b64;
    registry_sigv4_request sr;
    size_t len = evbuffer_get_length(in);

    srv->ecr_hits++;
    if (len < sizeof(body))
        evbuffer_copyout(in, body, len);
    if (target == NULL ||
        strcmp(target, "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken") != 0 ||
        ctype == NULL || strcmp(ctype, "application/x-amz-json-1.1") != 0 ||
        strcmp(body, "{}") != 0 || authz == NULL || date == NULL || host == NULL) {
        reply(req, 400, "application/x-amz-json-1.1", "{\"__type\":\"SerializationException\"}");
        return;
    }
    if (strncmp(authz, "AWS4-HMAC-SHA256 Credential=AKIDTEST/", 37) != 0) {
        reply(req, 400, "application/x-amz-json-1.1",
              "{\"__type\":\"UnrecognizedClientException\",\"message\":\"The security token "
              "included in the request is invalid.\"}");
        return;
    }
    memset(&sr, 0, sizeof(sr));
    sr.method = "POST";
    sr.host = host;
    sr.path = "/";
    sr.headers = signed_headers;
    sr.body = body;
    sr.body_len = strlen(body);
    sr.access_key_id = "AKIDTEST";
    sr.secret_access_key = ECR_SECRET;
    sr.region = "us-east-1";
    sr.service = "ecr";
    sr.amz_date = date;
    if (registry_sigv4_authorization(&sr, expect, sizeof(expect)) != 0 ||
        strcmp(expect, authz) != 0 ||
        strstr(authz, "SignedHeaders=content-type;host;x-amz-date;x-amz-target,") == NULL) {
        reply(req, 403, "application/x-amz-json-1.1", "{\"__type\":\"InvalidSignatureException\"}");
        return;
    }
    srv->ecr_sig_ok++;
    snprintf(token_pair, sizeof(token_pair), "AWS:%s", ECR_PASSWORD);
    b64 = registry_base64_encode(token_pair, strlen(token_pair));
    snprintf(answer, sizeof(answer),
             "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"expiresAt\":%lld,"
             "\"proxyEndpoint\":\"https://123456789012.dkr.ecr.us-east-1.amazonaws.com\"}]}",
             b64, (long long)(time(NULL) + 43200));
    free(b64);
    reply(req, 200, "application/x-amz-json-1.1", answer);
}

static void fake_gencb(struct evhttp_request *req, void *arg)
{
    fake_server *srv = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    size_t len = path != NULL ? strlen(path) : 0;
    char name[256];

    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST && strcmp(path, "/") == 0) {
        fake_ecr(srv, req);
    } else if (strcmp(path, "/token") == 0) {
        fake_token(srv, req);
    } else if (len > 4 + 10 && strncmp(path, "/v2/", 4) == 0 &&
               strcmp(path + len - 10, "/tags/list") == 0 && len - 14 < sizeof(name)) {
        memcpy(name, path + 4, len - 14);
        name[len - 14] = '\0';
        fake_tags(srv, req, name);
    } else {
        reply(req, 404, "text/plain", "no route");
    }
}

static int socket_port(evutil_socket_t fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        abort();
    return ntohs(sin.sin_port);
}

static void fake_start(struct event_base *base, fake_server *srv)
{
    struct evhttp_bound_socket *sock;
    memset(srv, 0, sizeof(*srv));
    srv->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(srv->ctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(srv->ctx, g_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(srv->ctx, g_key, SSL_FILETYPE_PEM), 1);
    srv->http = evhttp_new(base);
    assert_non_null(srv->http);
    evhttp_set_bevcb(srv->http, fake_bevcb, srv);
    evhttp_set_gencb(srv->http, fake_gencb, srv);
    evhttp_set_timeout(srv->http, 30);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    sock = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
    assert_non_null(sock);
    srv->port = socket_port(evhttp_bound_socket_get_fd(sock));
}

static void fake_stop(fake_server *srv)
{
    if (srv->http != NULL)
        evhttp_free(srv->http);
    if (srv->ctx != NULL)
        SSL_CTX_free(srv->ctx);
    memset(srv, 0, sizeof(*srv));
}

static void fake_reset_counters(fake_server *srv)
{
    srv->token_hits = srv->token_with_auth = srv->ecr_hits = srv->ecr_sig_ok = 0;
    srv->tags_hits = srv->unauthorized = 0;
    srv->last_path[0] = srv->last_auth[0] = '\0';
}

/* A port with nothing listening (bound, then closed). */
static int closed_port(void)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    port = socket_port(fd);
    close(fd);
    return port;
}

/* ---- fixture ------------------------------------------------------------------ */

static struct event_base *g_base;
static httpc *g_http;
static repod_conf *g_conf;

/* registries[host] = {api_url: https://127.0.0.1:port, ca_file, timeout_ms: 1500}
 * plus key = value (a path) when key is given; "verify" sets verify: false. */
static void add_entry(json_t *regs, const char *host, int port, const char *key, const char *value)
{
    char url[64];
    json_t *e;
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", port);
    e = json_pack("{s:s, s:s, s:i}", "api_url", url, "ca_file", g_ca, "timeout_ms", 1500);
    assert_non_null(e);
    if (key != NULL && strcmp(key, "verify") == 0)
        json_object_set_new(e, "verify", json_false());
    else if (key != NULL)
        json_object_set_new(e, key, json_string(value));
    json_object_set_new(regs, host, e);
}

static int group_setup(void **state)
{
    char cmd[2048], *json = NULL;
    json_t *regs, *root;
    const char *script = testkit_cert_script();
    rd_error err = {0};
    int down;
    (void)state;
    if (script == NULL) {
        fprintf(stderr, "test_registry: certs/gen-dev-certs.sh not found (set REPOD_SOURCE_DIR)\n");
        return -1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_registry.XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "bash '%s' --force '%s' >/dev/null 2>&1", script, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_registry: %s failed\n", script);
        return -1;
    }
    snprintf(g_ca, sizeof(g_ca), "%s/ca.crt", g_dir);
    snprintf(g_cert, sizeof(g_cert), "%s/server.crt", g_dir);
    snprintf(g_key, sizeof(g_key), "%s/server.key", g_dir);
    snprintf(g_pw_good, sizeof(g_pw_good), "%s/good.pw", g_dir);
    snprintf(g_pw_bad, sizeof(g_pw_bad), "%s/bad.pw", g_dir);
    snprintf(g_aws_secret, sizeof(g_aws_secret), "%s/aws.key", g_dir);
    testkit_write_text(g_pw_good, "s3cret\n");
    testkit_write_text(g_pw_bad, "WRONG-pass-xyzzy\r\n");
    testkit_write_text(g_aws_secret, ECR_SECRET "\n");

    g_base = event_base_new();
    g_http = httpc_new(g_base);
    if (g_base == NULL || g_http == NULL)
        return -1;
    fake_start(g_base, &g_fake);
    down = closed_port();
    regs = json_object();
    add_entry(regs, "fake.test", g_fake.port, NULL, NULL);
    add_entry(regs, "auth.test", g_fake.port, "password_file", g_pw_good);
    json_object_set_new(json_object_get(regs, "auth.test"), "username", json_string("alice"));
    add_entry(regs, "wrong.test", g_fake.port, "password_file", g_pw_bad);
    json_object_set_new(json_object_get(regs, "wrong.test"), "username", json_string("alice"));
    add_entry(regs, "noca.test", g_fake.port, NULL, NULL);
    json_object_del(json_object_get(regs, "noca.test"), "ca_file");
    add_entry(regs, "noverify.test", g_fake.port, "verify", NULL);
    json_object_del(json_object_get(regs, "noverify.test"), "ca_file");
    add_entry(regs, "down.test", down, NULL, NULL);
    add_entry(regs, "fast.test", g_fake.port, NULL, NULL);
    json_object_set_new(json_object_get(regs, "fast.test"), "timeout_ms", json_integer(300));
    add_entry(regs, "registry.hub.docker.com", g_fake.port, NULL, NULL);
    add_entry(regs, "realm.test", g_fake.port, "password_file", g_pw_good);
    json_object_set_new(json_object_get(regs, "realm.test"), "username", json_string("alice"));
    {
        char realm[64];
        snprintf(realm, sizeof(realm), "localhost:%d", g_fake.port);
        json_object_set_new(json_object_get(regs, "realm.test"), "token_realm_hosts",
                            json_pack("[s]", realm));
    }
    add_entry(regs, "123456789012.dkr.ecr.us-east-1.amazonaws.com", g_fake.port,
              "aws_secret_access_key_file", g_aws_secret);
    json_object_set_new(json_object_get(regs, "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
                        "aws_access_key_id", json_string("AKIDTEST"));
    add_entry(regs, "210987654321.dkr.ecr.us-east-1.amazonaws.com", g_fake.port,
              "aws_secret_access_key_file", g_aws_secret);
    json_object_set_new(json_object_get(regs, "210987654321.dkr.ecr.us-east-1.amazonaws.com"),
                        "aws_access_key_id", json_string("AKIDBAD"));
    add_entry(regs, "999999999999.dkr.ecr.us-east-1.amazonaws.com", g_fake.port, "password_file",
              g_pw_good);
    add_entry(regs, "api.ecr.us-east-1.amazonaws.com", g_fake.port, NULL, NULL);
    root = json_pack("{s:{s:s, s:s}, s:s, s:o}", "tls", "cert", g_cert, "key", g_key, "data_dir",
                     g_dir, "registries", regs);
    json = json_dumps(root, 0);
    json_decref(root);
    if (json == NULL || conf_load_string(json, "/etc/repod/repod.json", &g_conf, &err) != RD_OK) {
        fprintf(stderr, "test_registry: config refused: %s\n", err.message);
        free(json);
        return -1;
    }
    free(json);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    conf_free(g_open);
    g_open = NULL;
    conf_free(g_conf);
    fake_stop(&g_fake);
    httpc_free(g_http);
    if (g_base != NULL)
        event_base_free(g_base);
    if (g_dir[0] != '\0')
        testkit_rm_tree(g_dir);
    return 0;
}

typedef struct {
    int calls;
    rd_status rc;
    rd_error err;
    json_t *tags; /* copy */
} result;

static int g_in_call;

static void on_result(rd_status rc, const rd_error *err, json_t *tags, void *arg)
{
    result *r = arg;
    assert_false(g_in_call); /* never from inside registry_list_tags */
    r->calls++;
    r->rc = rc;
    if (rc == RD_OK) {
        assert_null(err);
        assert_non_null(tags);
        r->tags = json_deep_copy(tags);
    } else {
        assert_non_null(err);
        assert_null(tags);
        assert_int_equal(err->code, rc);
        r->err = *err;
    }
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until r has been called back, at most max_ms. */
static void run_until_called(result *r, int max_ms)
{
    int expired = 0;
    struct timeval tv = {max_ms / 1000, (max_ms % 1000) * 1000};
    struct event *guard = evtimer_new(g_base, guard_cb, &expired);
    evtimer_add(guard, &tv);
    while (r->calls == 0 && !expired)
        event_base_loop(g_base, EVLOOP_ONCE);
    event_free(guard);
    if (r->calls == 0)
        fail_msg("no callback within %d ms", max_ms);
}

static void run_for(int ms)
{
    result never = {0};
    int expired = 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *guard = evtimer_new(g_base, guard_cb, &expired);
    evtimer_add(guard, &tv);
    while (never.calls == 0 && !expired)
        event_base_loop(g_base, EVLOOP_ONCE);
    event_free(guard);
}

static void lookup(registry_client *rc, const char *type, const char *url, const json_t *config,
                   const char *image, result *r)
{
    memset(r, 0, sizeof(*r));
    g_in_call = 1;
    registry_list_tags(rc, type, url, config, image, on_result, r);
    g_in_call = 0;
    assert_int_equal(r->calls, 0);
    run_until_called(r, 10000);
    assert_int_equal(r->calls, 1);
}

static void result_clear(result *r)
{
    json_decref(r->tags);
    memset(r, 0, sizeof(*r));
}

static registry_client *client_with(int page_size, int max_pages, size_t max_bytes)
{
    registry_client_options o;
    registry_client_options_init(&o);
    o.page_size = page_size;
    o.max_pages = max_pages;
    o.max_response_bytes = max_bytes;
    return registry_client_new_with(g_http, g_conf, &o);
}

static int setup(void **state)
{
    fake_reset_counters(&g_fake);
    *state = registry_client_new(g_http, g_conf);
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    registry_client_free(*state);
    run_for(20); /* let cancelled requests drain */
    return 0;
}

static void expect_error(const result *r, rd_status code, const char *needle)
{
    if (r->rc != code)
        fail_msg("expected %s, got %s: %s", rd_status_name(code), rd_status_name(r->rc),
                 r->err.message);
    if (needle != NULL && strstr(r->err.message, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", r->err.message, needle);
}

/* ---- client tests ------------------------------------------------------------- */

static void test_client_pagination(void **state)
{
    static const char *const expect[] = {"1.2.2",   "1.2.1.20220429.104002",
                                         "1.2.1",   "v1.1",
                                         "1.0",     "1.0-rc2",
                                         "1.0-rc1", "0.9",
                                         "dev",     "latest",
                                         NULL};
    registry_client *rc = client_with(3, 0, 0);
    result r;
    (void)state;
    lookup(rc, "HARBOR", "fake.test", NULL, "paged/app", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_array_is(r.tags, expect);
    assert_int_equal(g_fake.tags_hits, 4); /* 3 + 3 + 3 + 1, three Link styles */
    assert_non_null(strstr(g_fake.last_path, "n=3"));
    assert_non_null(strstr(g_fake.last_path, "last="));
    result_clear(&r);
    assert_int_equal(registry_client_pending(rc), 0);
    registry_client_free(rc);
    registry_client_free(*state);
    *state = NULL;
}

static void test_client_default_page_size_one_page(void **state)
{
    result r;
    lookup(*state, "HARBOR", "fake.test", NULL, "paged/app", &r);
    assert_int_equal(r.rc, RD_OK);
    assert_int_equal(json_array_size(r.tags), 10);
    assert_int_equal(g_fake.tags_hits, 1);
    assert_string_equal(g_fake.last_path, "/v2/paged/app/tags/list?n=1000");
    result_clear(&r);
}

static void test_client_cross_origin_link_rebased(void **state)
{
    registry_client *rc = client_with(2, 0, 0);
    result r;
    (void)state;
    lookup(rc, "HARBOR", "fake.test", NULL, "crossorigin/app", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_int_equal(json_array_size(r.tags), 5);
    assert_string_equal(json_string_value(json_array_get(r.tags, 0)), "5");
    assert_int_equal(g_fake.tags_hits, 3);
    result_clear(&r);
    registry_client_free(rc);
}

static void test_client_pagination_limits(void **state)
{
    registry_client *rc = client_with(1, 4, 0);
    result r;
    lookup(*state, "HARBOR", "fake.test", NULL, "loop/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "pagination");
    result_clear(&r);
    lookup(rc, "HARBOR", "fake.test", NULL, "paged/app", &r); /* 10 pages > 4 */
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "pages = 4");
    assert_int_equal(g_fake.tags_hits, 1 + 4);
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "badlink/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "Link");
    result_clear(&r);
    registry_client_free(rc);
}

static void test_client_bad_answers(void **state)
{
    registry_client *small = client_with(0, 0, 4096);
    result r;
    lookup(*state, "HARBOR", "fake.test", NULL, "garbage/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "invalid tag list");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "badtags/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "badtags/app");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "notags/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "invalid tag list");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "err500/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "status = 500");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "err503/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_UNAVAILABLE, "status = 503");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "err403/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "denied");
    result_clear(&r);
    lookup(small, "HARBOR", "fake.test", NULL, "big/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "too large");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "big/app", &r); /* fits in 8 MiB */
    assert_int_equal(r.rc, RD_OK);
    assert_int_equal(json_array_size(r.tags), 2000);
    assert_string_equal(json_string_value(json_array_get(r.tags, 0)), "1999");
    result_clear(&r);
    registry_client_free(small);
}

static void test_client_empty_and_duplicates(void **state)
{
    static const char *const dups[] = {"2.0", "1.0", "latest", NULL};
    result r;
    lookup(*state, "HARBOR", "fake.test", NULL, "nulltags/app", &r);
    assert_int_equal(r.rc, RD_OK);
    assert_int_equal(json_array_size(r.tags), 0);
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "dups/app", &r);
    assert_int_equal(r.rc, RD_OK);
    assert_array_is(r.tags, dups);
    result_clear(&r);
}

static void test_client_not_found(void **state)
{
    result r;
    lookup(*state, "HARBOR", "fake.test", NULL, "nosuch/image", &r);
    expect_error(&r, RD_ERR_NO_IMAGE_IN_REGISTRY, "nosuch/image");
    assert_non_null(strstr(r.err.message, "fake.test"));
    result_clear(&r);
}

static void test_client_transport_errors(void **state)
{
    result r;
    lookup(*state, "HARBOR", "down.test", NULL, "a/b", &r);
    expect_error(&r, RD_ERR_REGISTRY_UNAVAILABLE, "down.test");
    result_clear(&r);
    lookup(*state, "HARBOR", "noca.test", NULL, "paged/app", &r); /* dev CA not in system store */
    expect_error(&r, RD_ERR_REGISTRY_UNAVAILABLE, "TLS");
    result_clear(&r);
    lookup(*state, "HARBOR", "noverify.test", NULL, "paged/app", &r); /* verify: false */
    assert_int_equal(r.rc, RD_OK);
    result_clear(&r);
    lookup(*state, "HARBOR", "fast.test", NULL, "slow/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_TIMEOUT, "timeout_ms = 300");
    result_clear(&r);
}

static void test_client_bearer_anonymous_and_reuse(void **state)
{
    result r;
    lookup(*state, "HARBOR", "fake.test", NULL, "bearer/app", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_int_equal(json_array_size(r.tags), 2);
    assert_int_equal(g_fake.token_hits, 1);
    assert_int_equal(g_fake.token_with_auth, 0);
    assert_int_equal(g_fake.unauthorized, 1);
    assert_string_equal(g_fake.last_auth, "Bearer tok-anon");
    result_clear(&r);
    /* the token is reused: no 401, no token request */
    lookup(*state, "HARBOR", "fake.test", NULL, "bearer/app", &r);
    assert_int_equal(r.rc, RD_OK);
    assert_int_equal(g_fake.token_hits, 1);
    assert_int_equal(g_fake.unauthorized, 1);
    assert_int_equal(registry_client_credential_fetches(*state), 1);
    result_clear(&r);
    /* a private image read anonymously: "not found (or not readable)" */
    lookup(*state, "HARBOR", "fake.test", NULL, "private/app", &r);
    expect_error(&r, RD_ERR_NO_IMAGE_IN_REGISTRY, "private/app");
    result_clear(&r);
}

static void test_client_bearer_with_credentials(void **state)
{
    result r;
    lookup(*state, "HARBOR", "auth.test", NULL, "private/app", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_int_equal(g_fake.token_with_auth, 1);
    assert_string_equal(g_fake.last_auth, "Bearer tok-good");
    result_clear(&r);
    /* wrong password: the token service refuses; the message says so, without secrets */
    lookup(*state, "HARBOR", "wrong.test", NULL, "private/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "refused");
    assert_null(strstr(r.err.message, "alice")); /* user names go to the log only */
    assert_null(strstr(r.err.message, "WRONG-pass"));
    assert_null(strstr(r.err.message, "s3cret"));
    result_clear(&r);
}

static void test_client_basic(void **state)
{
    result r;
    lookup(*state, "HARBOR", "auth.test", NULL, "basic/app", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_int_equal(g_fake.unauthorized, 1);
    result_clear(&r);
    lookup(*state, "HARBOR", "auth.test", NULL, "basic/app", &r); /* sent up front now */
    assert_int_equal(r.rc, RD_OK);
    assert_int_equal(g_fake.unauthorized, 1);
    result_clear(&r);
    lookup(*state, "HARBOR", "wrong.test", NULL, "basic/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "authentication was refused");
    assert_null(strstr(r.err.message, "WRONG-pass"));
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "basic/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "none are configured");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "odd-challenge/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "refused");
    result_clear(&r);
}

static void test_client_ecr(void **state)
{
    json_t *cfg = json_pack("{s:s, s:s}", "account_id", "123456789012", "region", "us-east-1");
    result r;
    lookup(*state, "AWS_PRIVATE_ECR", NULL, cfg, "ecr/app", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_int_equal(json_array_size(r.tags), 2);
    assert_int_equal(g_fake.ecr_hits, 1);
    assert_int_equal(g_fake.ecr_sig_ok, 1);
    assert_int_equal(g_fake.unauthorized, 0); /* credentials sent up front */
    result_clear(&r);
    lookup(*state, "AWS_PRIVATE_ECR", "123456789012.dkr.ecr.us-east-1.amazonaws.com", NULL,
           "ecr/app", &r);
    assert_int_equal(r.rc, RD_OK);
    assert_int_equal(g_fake.ecr_hits, 1); /* cached until expiresAt */
    result_clear(&r);
    /* keys ECR does not know */
    json_object_set_new(cfg, "account_id", json_string("210987654321"));
    lookup(*state, "AWS_PRIVATE_ECR", NULL, cfg, "ecr/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, "UnrecognizedClientException");
    assert_non_null(strstr(r.err.message, "refused"));
    assert_null(strstr(r.err.message, ECR_SECRET));
    assert_null(strstr(r.err.message, "AKIDBAD"));
    result_clear(&r);
    /* a pre-fetched password (user AWS) */
    json_object_set_new(cfg, "account_id", json_string("999999999999"));
    testkit_write_text(g_pw_good, ECR_PASSWORD "\n");
    lookup(*state, "AWS_PRIVATE_ECR", NULL, cfg, "ecr/app", &r);
    testkit_write_text(g_pw_good, "s3cret\n");
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    result_clear(&r);
    json_decref(cfg);
}

static void test_client_docker_hub_override(void **state)
{
    result r;
    lookup(*state, "DOCKER_HUB", NULL, NULL, "busybox", &r);
    if (r.rc != RD_OK)
        fail_msg("%s", r.err.message);
    assert_string_equal(g_fake.last_path, "/v2/library/busybox/tags/list?n=1000");
    result_clear(&r);
}

static void test_client_refused_arguments_are_async(void **state)
{
    result r;
    lookup(*state, "QUAY", "fake.test", NULL, "a/b", &r);
    expect_error(&r, RD_ERR_INVALID_REGISTRY_TYPE, "QUAY");
    result_clear(&r);
    lookup(*state, "HARBOR", "fake.test", NULL, "Bad/Image", &r);
    expect_error(&r, RD_ERR_INVALID_IMAGE_FORMAT, "Bad/Image");
    result_clear(&r);
    lookup(*state, "HARBOR", NULL, NULL, "a/b", &r);
    expect_error(&r, RD_ERR_INVALID_PARAMETER, "registry_url");
    result_clear(&r);
    assert_int_equal(g_fake.tags_hits, 0);
}

static void test_client_free_cancels(void **state)
{
    registry_client *rc = registry_client_new(g_http, g_conf);
    result a, b;
    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    registry_list_tags(rc, "HARBOR", "fake.test", NULL, "slow/app", on_result, &a);
    registry_list_tags(rc, "QUAY", NULL, NULL, "x", on_result, &b); /* deferred error */
    assert_int_equal(registry_client_pending(rc), 2);
    run_for(50);
    assert_int_equal(b.calls, 1);
    assert_int_equal(registry_client_pending(rc), 1);
    registry_client_free(rc);
    assert_int_equal(a.calls, 1);
    expect_error(&a, RD_ERR_REGISTRY_UNAVAILABLE, "cancelled");
    run_for(1700); /* the request's own timeout fires later: nothing more happens */
    assert_int_equal(a.calls, 1);
    result_clear(&a);
    result_clear(&b);
}

/* The client may be freed from its own callback. */
static registry_client *g_free_me;

static void free_in_callback(rd_status rc, const rd_error *err, json_t *tags, void *arg)
{
    on_result(rc, err, tags, arg);
    registry_client_free(g_free_me);
    g_free_me = NULL;
}

static void test_client_free_from_callback(void **state)
{
    result a, b;
    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    g_free_me = registry_client_new(g_http, g_conf);
    registry_list_tags(g_free_me, "HARBOR", "fake.test", NULL, "paged/app", free_in_callback, &a);
    registry_list_tags(g_free_me, "HARBOR", "fast.test", NULL, "slow/app", on_result, &b);
    run_until_called(&a, 5000);
    assert_int_equal(a.rc, RD_OK);
    assert_null(g_free_me);
    assert_int_equal(b.calls, 1); /* cancelled by the free */
    expect_error(&b, RD_ERR_REGISTRY_UNAVAILABLE, "cancelled");
    run_for(400);
    assert_int_equal(b.calls, 1);
    result_clear(&a);
    result_clear(&b);
}

/* httpc_free cancels the requests underneath: callbacks get "cancelled". */
static void test_client_httpc_free_cancels(void **state)
{
    httpc *h = httpc_new(g_base);
    registry_client *rc = registry_client_new(h, g_conf);
    result a;
    (void)state;
    memset(&a, 0, sizeof(a));
    registry_list_tags(rc, "HARBOR", "fake.test", NULL, "slow/app", on_result, &a);
    run_for(100);
    assert_int_equal(a.calls, 0);
    httpc_free(h);
    assert_int_equal(a.calls, 1);
    expect_error(&a, RD_ERR_REGISTRY_UNAVAILABLE, "cancelled");
    assert_int_equal(registry_client_pending(rc), 0);
    registry_client_free(rc);
    result_clear(&a);
}

/* A realm on a host that is neither the registry's nor one of its
 * token_realm_hosts gets no request (and so no credential). */
static void test_client_foreign_realm_refused(void **state)
{
    result r;
    char realm[64];
    snprintf(realm, sizeof(realm), "localhost:%d", g_fake.port);
    lookup(*state, "HARBOR", "auth.test", NULL, "foreign/app", &r);
    expect_error(&r, RD_ERR_REGISTRY_BAD_RESPONSE, realm);
    assert_non_null(strstr(r.err.message, "not allowed"));
    assert_int_equal(g_fake.token_hits, 0);
    assert_int_equal(registry_client_credential_fetches(*state), 0);
    result_clear(&r);
    /* listed in token_realm_hosts: asked */
    lookup(*state, "HARBOR", "realm.test", NULL, "foreign/app", &r);
    assert_int_equal(g_fake.token_hits, 1);
    assert_int_equal(g_fake.token_with_auth, 1);
    result_clear(&r);
}

/* An unreachable registry: concurrent lookups cost one connection attempt,
 * and later ones fail at once (negative cache); another origin is not
 * affected. */
static void test_client_unreachable_fails_fast(void **state)
{
    result r[10], again;
    unsigned long before = httpc_connections_opened(g_http);
    char image[32];
    int i;
    memset(r, 0, sizeof(r));
    for (i = 0; i < 10; i++) {
        snprintf(image, sizeof(image), "team/app-%d", i);
        registry_list_tags(*state, "HARBOR", "down.test", NULL, image, on_result, &r[i]);
    }
    for (i = 0; i < 10; i++) {
        run_until_called(&r[i], 10000);
        expect_error(&r[i], RD_ERR_REGISTRY_UNAVAILABLE, "cannot connect");
        result_clear(&r[i]);
    }
    assert_int_equal(httpc_connections_opened(g_http) - before, 1);
    lookup(*state, "HARBOR", "down.test", NULL, "team/later", &again);
    expect_error(&again, RD_ERR_REGISTRY_UNAVAILABLE, "ms ago");
    result_clear(&again);
    assert_int_equal(httpc_connections_opened(g_http) - before, 1);
    lookup(*state, "HARBOR", "fake.test", NULL, "paged/app", &again);
    assert_int_equal(again.rc, RD_OK);
    result_clear(&again);
}

static void test_client_concurrent(void **state)
{
    result r[6];
    int i;
    memset(r, 0, sizeof(r));
    for (i = 0; i < 6; i++)
        registry_list_tags(*state, "HARBOR", "fake.test", NULL,
                           i % 2 == 0 ? "paged/app" : "bearer/app", on_result, &r[i]);
    assert_int_equal(registry_client_pending(*state), 6);
    for (i = 0; i < 6; i++) {
        run_until_called(&r[i], 10000);
        assert_int_equal(r[i].rc, RD_OK);
        result_clear(&r[i]);
    }
    assert_int_equal(registry_client_pending(*state), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_seed_order),
        cmocka_unit_test(test_version_full_order),
        cmocka_unit_test(test_version_huge_numbers),
        cmocka_unit_test(test_version_grammar),
        cmocka_unit_test(test_version_sort_edge_cases),
        cmocka_unit_test(test_www_authenticate_docker_hub),
        cmocka_unit_test(test_www_authenticate_quoting),
        cmocka_unit_test(test_www_authenticate_missing_and_multiple),
        cmocka_unit_test(test_www_authenticate_malformed),
        cmocka_unit_test(test_link_next),
        cmocka_unit_test(test_link_malformed),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_ecr_token_answer),
        cmocka_unit_test(test_sigv4_suite_vectors),
        cmocka_unit_test(test_sigv4_iam_list_users),
        cmocka_unit_test(test_sigv4_canonical_details),
        cmocka_unit_test(test_target_docker_hub),
        cmocka_unit_test(test_target_harbor_and_defaults),
        cmocka_unit_test(test_target_ecr),
        cmocka_unit_test(test_target_refusals),
        cmocka_unit_test(test_allow_list_rules),
        cmocka_unit_test(test_target_github_and_gcp),
        cmocka_unit_test(test_google_hosts_and_token_uri),
        cmocka_unit_test(test_gcp_jwt_verifies),
        cmocka_unit_test(test_gcp_key_parse),
        cmocka_unit_test_setup_teardown(test_client_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_default_page_size_one_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cross_origin_link_rebased, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_pagination_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_bad_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_empty_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_transport_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_bearer_anonymous_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_bearer_with_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_ecr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_docker_hub_override, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_refused_arguments_are_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_free_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_httpc_free_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_foreign_realm_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_unreachable_fails_fast, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
