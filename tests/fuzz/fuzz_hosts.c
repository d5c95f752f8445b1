/*
 * fuzz_hosts.c - the outbound allow-list and the registry target resolver:
 * the bytes are "<pattern>\0<host>\0<realm host>\0<token_uri>\0<registry
 * type>\0<registry_url>\0<image>"; registry_host_pattern_match,
 * registry_host_normalize, registry_host_rule_of, registry_realm_rule_of,
 * registry_token_uri_rule_of, registry_google_host, the ECR shape checks
 * and registry_resolve_target against a fixed config.  Invariants: a
 * normalised host is lower case without a scheme; a pattern without '*'
 * matches only an equal host; a resolved target's host is not refused.
 */
#include "conf.h"
#include "fuzz.h"
#include "registry.h"

static const repod_conf *fuzz_hosts_conf(void)
{
    static repod_conf *conf;
    rd_error err;
    if (conf == NULL)
        FUZZ_CHECK(conf_load_string(
                       "{\"tls\": {\"cert\": \"s.crt\", \"key\": \"s.key\"}, "
                       "\"registry\": {\"allowed_hosts\": [\"*.corp.example\", "
                       "\"exact.example:5000\", \"*.dkr.ecr.*.amazonaws.com\"], "
                       "\"default_urls\": {\"HARBOR\": \"harbor.default.example/base\"}}, "
                       "\"registries\": {\"Harbor.Example.com\": {\"api_url\": "
                       "\"https://10.1.2.3:9443\", \"token_realm_hosts\": [\"sso.example.com\"]},"
                       " \"gcr.io\": {\"token_realm_hosts\": [\"127.0.0.1:7000\"]}}}",
                       "/etc/repod/repod.json", &conf, &err) == RD_OK);
    return conf;
}

static void fuzz_hosts(const uint8_t *data, size_t size)
{
    const repod_conf *conf = fuzz_hosts_conf();
    char *f[7], norm[300];
    registry_target t;
    rd_error err;

    fuzz_fields(data, size, f, 7);
    if (registry_host_pattern_match(f[0], f[1]) && strchr(f[0], '*') == NULL) {
        char a[300], b[300];
        if (registry_host_normalize(f[0], a, sizeof(a)) == 0 &&
            registry_host_normalize(f[1], b, sizeof(b)) == 0)
            FUZZ_CHECK(strcmp(a, b) == 0);
    }
    if (registry_host_normalize(f[1], norm, sizeof(norm)) == 0) {
        FUZZ_CHECK(strstr(norm, "://") == NULL);
        for (const char *p = norm; *p; p++)
            FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
    }
    (void)registry_host_rule_of(conf, f[1]);
    (void)registry_host_rule_of(NULL, f[1]);
    (void)registry_realm_rule_of(conf, f[1], "https://10.1.2.3:9443", f[2]);
    (void)registry_realm_rule_of(conf, "registry.hub.docker.com", "https://registry-1.docker.io",
                                 f[2]);
    (void)registry_token_uri_rule_of(conf, "gcr.io", f[3]);
    (void)registry_google_host(f[1]);
    (void)registry_ecr_account_valid(f[1]);
    (void)registry_ecr_region_valid(f[2]);
    if (registry_resolve_target(conf, f[4][0] ? f[4] : NULL, f[5][0] ? f[5] : NULL, NULL, f[6], &t,
                                &err) == RD_OK) {
        FUZZ_CHECK(t.host != NULL && t.api_url != NULL && t.repository != NULL);
        FUZZ_CHECK(registry_host_rule_of(conf, t.api_url) != REGISTRY_HOST_REFUSED ||
                   registry_host_rule_of(conf, t.host) != REGISTRY_HOST_REFUSED || t.ecr);
    }
    registry_target_clear(&t);
    fuzz_fields_free(f, 7);
}

FUZZ_ENTRY(hosts)
