/*
 * bench-query.c - benchmark of plugin list / stat queries over a large local
 * catalog: latencies, records decoded, peak memory.
 *
 *   bench-query [--plugins N] [--data-dir DIR] [--iterations K] [--store]
 *
 * Loads N generated plugins (default 100000) into a fresh data dir (default
 * a temporary folder, removed at the end; a DIR that already holds plugins
 * is used as it is), then times a fixed set of requests through the code
 * path of the API (src/api/plugin_api.c, collect_visible): query_compile,
 * catalog_plugin_collect_query for each readable domain, sort by name,
 * plugin_view, then query_run or query_stat.  Prints one line per request
 * with the median and p99 latency over K runs (default 20), the records
 * decoded per request, the part of the time spent in the catalog (reading
 * and decoding records) and the result / total counts, then the peak RSS.
 *
 * Plugins are made by plugin_build_record from register requests, as the
 * API does, and stored 1000 per batch with catalog_plugin_insert_many (a
 * synced write per plugin would take minutes).  The generator is seeded, so
 * every run loads the same catalog.
 *
 * By default lists go through the read model as the API's local-only lists
 * do (catalog_query_views) and stat through catalog_collect_views (from the
 * model); --store times the store path instead
 * (catalog_collect_store_views, then query_run / query_stat), the path
 * every list took before the read model answered them.
 */
#include <ftw.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "log.h"
#include "plugin.h"
#include "query.h"
#include "store.h"
#include "util.h"

/* The caller reads its own domain and one public domain; the third domain
 * is someone else's and must cost nothing. */
static const char *const readable[] = {"domain-main", "domain-public"};
#define NREADABLE 2

/* ---- generated catalog ----------------------------------------------------- */

static uint64_t rng = 42;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static double unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

#define PICK(a) (a[rnd() % (sizeof(a) / sizeof(a[0]))])

static const char *const providers[50] = {
    "aws",        "google_cloud", "azure",    "oracle",    "alibaba",   "ibm",         "naver",
    "kt",         "tencent",      "huawei",   "ncloud",    "nhn",       "openstack",   "vmware",
    "kubernetes", "datadog",      "newrelic", "grafana",   "slack",     "jira",        "pagerduty",
    "opsgenie",   "teams",        "telegram", "email",     "sms",       "github",      "gitlab",
    "bitbucket",  "jenkins",      "argocd",   "terraform", "ansible",   "prometheus",  "zabbix",
    "nagios",     "splunk",       "elastic",  "sumologic", "dynatrace", "appdynamics", "sentry",
    "mongodb",    "mysql",        "postgres", "redis",     "kafka",     "rabbitmq",    "nginx",
    "cloudflare"};
static const char *const adjectives[] = {"Cloud",  "Fast",   "Smart",    "Secure",  "Simple",
                                         "Global", "Hybrid", "Realtime", "Unified", "Lite"};
static const char *const nouns[] = {"Cost",    "Inventory", "Alert",   "Jira",     "Slack",
                                    "Metric",  "Log",       "Billing", "Security", "Compliance",
                                    "Network", "Storage",   "Compute", "Database", "Identity"};
static const struct {
    const char *resource_type;
    const char *kind;
} kinds[] = {{"inventory.Collector", "Collector"},
             {"monitoring.DataSource", "DataSource"},
             {"notification.Protocol", "Notification Protocol"},
             {"cost_analysis.DataSource", "Cost Source"},
             {"identity.Auth", "Auth"},
             {"monitoring.Webhook", "Webhook"}};
static const char *const label_pool[] = {
    "Compute",    "Storage",    "Network", "Database", "Security",  "Container",
    "Serverless", "Analytics",  "AI",      "IoT",      "Jira",      "Slack",
    "Email",      "SMS",        "Webhook", "Billing",  "Cost",      "Identity",
    "Logging",    "Monitoring", "beta",    "official", "community", "deprecated",
    "GPU",        "Backup",     "CDN",     "DNS",      "Queue",     "Cache"};

/* The register request of plugin number i. */
static json_t *make_request(size_t i)
{
    char image[64], name[96], desc[160];
    const char *noun = PICK(nouns), *adj = PICK(adjectives);
    size_t k = rnd() % (sizeof(kinds) / sizeof(kinds[0]));
    size_t p = (size_t)(50.0 * unit() * unit()); /* skewed: aws is the most common */
    double r = unit();
    const char *registry_type = r < 0.8 ? "DOCKER_HUB" : r < 0.9 ? "HARBOR" : "AWS_PRIVATE_ECR";
    const char *registry_url = r < 0.8   ? "registry.hub.docker.com"
                               : r < 0.9 ? "harbor.example.com"
                                         : "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com";
    json_t *labels = json_array();

    snprintf(image, sizeof(image), "cloudforet/plugin-%s-%06zu", providers[p], i);
    for (char *c = image; *c != '\0'; c++)
        if (*c == '_')
            *c = '-';
    snprintf(name, sizeof(name), "%s %s %s %s", adj, providers[p], noun, kinds[k].kind);
    snprintf(desc, sizeof(desc), "%s %s plugin for %s (%s)", adj, noun, providers[p],
             kinds[k].resource_type);
    for (size_t n = rnd() % 5; n > 0; n--)
        json_array_append_new(labels, json_string(PICK(label_pool)));
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:[s], s:s}, "
        "s:{s:{s:{s:s, s:{s:{s:s, s:s}}, s:[s]}}}, s:o, s:{s:s, s:s, s:I}}",
        "name", name, "resource_type", kinds[k].resource_type, "image", image, "provider",
        providers[p], "registry_type", registry_type, "registry_url", registry_url,
        "registry_config", "region", "ap-northeast-2", "account_id", "123456789012", "capability",
        "supported_schema", "credentials", "monitoring_type", "METRIC", "template", "options",
        "schema", "type", "object", "properties", "domain", "type", "string", "title", "Domain",
        "required", "domain", "labels", labels, "tags", "description", desc, "icon",
        "https://assets.example.com/icons/plugin.svg", "priority", (json_int_t)(rnd() % 5));
}

static int load(catalog *cat, size_t n, rd_error *err)
{
    json_t *batch = json_array();
    int64_t base_ms = 1640995200000LL; /* 2022-01-01 */
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        char now[40];
        double d = unit();
        plugin_ctx ctx = {d < 0.8    ? "domain-main"
                          : d < 0.95 ? "domain-public"
                                     : "domain-other",
                          now, NULL};
        json_t *req = make_request(i), *rec = NULL;
        util_format_iso8601(base_ms + (int64_t)i * 60000, now, sizeof(now));
        if (plugin_build_record(req, &ctx, &rec, err) != RD_OK) {
            rc = -1;
        } else {
            if (unit() < 0.1)
                json_object_set_new(rec, "state", json_string("DISABLED"));
            json_array_append_new(batch, rec);
        }
        json_decref(req);
        if (rc == 0 && (json_array_size(batch) == 1000 || i + 1 == n)) {
            if (catalog_plugin_insert_many(cat, batch, err) != RD_OK)
                rc = -1;
            json_array_clear(batch);
        }
    }
    json_decref(batch);
    return rc;
}

/* ---- the API path ------------------------------------------------------------ */

static int use_store; /* --store */

/* The local half of the API's list path: catalog_collect_views (or, with
 * --store, the store path). */
static rd_status collect_views(catalog *cat, const query *q, json_t **out, size_t *decoded,
                               int64_t *catalog_us, rd_error *err)
{
    int64_t t0 = util_monotonic_us();
    rd_status rc = use_store
                       ? catalog_collect_store_views(cat, readable, NREADABLE, q, out, decoded, err)
                       : catalog_collect_views(cat, readable, NREADABLE, q, out, decoded, err);
    *catalog_us = util_monotonic_us() - t0;
    return rc;
}

typedef struct {
    const char *label;
    const char *query; /* list: the request's "query" (NULL = none) */
    const char *eq;    /* list: the request's top-level eq fields */
    const char *stat;  /* stat: the StatisticsQuery instead of a list */
    int fast_count;    /* count with catalog_plugin_count_query */
} bench_case;

static char plugin_id_eq[160]; /* filled in main: a plugin that exists */

static bench_case cases[] = {
    {"list provider=oracle (index)", NULL, "{\"provider\": \"oracle\"}", NULL, 0},
    {"list provider=oracle page 1/20", "{\"page\": {\"start\": 1, \"limit\": 20}}",
     "{\"provider\": \"oracle\"}", NULL, 0},
    {"list plugin_id=<one> (key)", NULL, plugin_id_eq, NULL, 0},
    {"list state=ENABLED (index, 90%)", "{\"page\": {\"start\": 1, \"limit\": 20}}",
     "{\"state\": \"ENABLED\"}", NULL, 0},
    {"list keyword \"jira collector\"",
     "{\"keyword\": \"jira collector\", \"page\": {\"start\": 1, \"limit\": 20}}", NULL, NULL, 0},
    {"list name regex",
     "{\"filter\": [{\"k\": \"name\", \"v\": \"^smart .* (auth|webhook)$\", \"o\": \"regex\"}]}",
     NULL, NULL, 0},
    {"list sort created_at page 1/20",
     "{\"sort\": {\"key\": \"created_at\", \"desc\": true}, \"page\": {\"start\": 1, \"limit\": "
     "20}}",
     NULL, NULL, 0},
    {"list count_only (all)", "{\"count_only\": true}", NULL, NULL, 0},
    {"count_only (key-only count)", "{\"count_only\": true}", NULL, NULL, 1},
    {"count_only state=ENABLED, key-only", "{\"count_only\": true}", "{\"state\": \"ENABLED\"}",
     NULL, 1},
    {"stat group by provider", NULL, NULL,
     "{\"aggregate\": [{\"group\": {\"keys\": [{\"key\": \"provider\", \"name\": \"provider\"}], "
     "\"fields\": [{\"name\": \"count\", \"operator\": \"count\"}]}}, {\"sort\": {\"key\": "
     "\"count\", \"desc\": true}}]}",
     0},
};

typedef struct {
    size_t decoded;
    size_t results;
    long long total;    /* -1 = none */
    int64_t catalog_us; /* time in catalog_collect_views: decode, view, default sort */
} run_out;

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = text != NULL ? json_loads(text, 0, &jerr) : NULL;
    if (text != NULL && v == NULL) {
        fprintf(stderr, "bench-query: bad case JSON: %s\n", jerr.text);
        exit(1);
    }
    return v;
}

static rd_status run_case(catalog *cat, const bench_case *c, run_out *o, rd_error *err)
{
    json_t *qv = parse(c->query), *eq = parse(c->eq), *sq = parse(c->stat);
    json_t *docs = NULL, *res = NULL;
    query *q = NULL;
    rd_status rc;

    memset(o, 0, sizeof(*o));
    o->total = -1;
    if (sq != NULL) {
        rc = collect_views(cat, NULL, &docs, &o->decoded, &o->catalog_us, err);
        if (rc == RD_OK)
            rc = query_stat(sq, &query_schema_plugin, docs, &res, err);
        goto done;
    }
    rc = query_compile(qv, eq, &query_schema_plugin, &q, err);
    if (rc == RD_OK && c->fast_count) {
        size_t total = 0;
        int64_t t0 = util_monotonic_us();
        for (size_t i = 0; i < NREADABLE && rc == RD_OK; i++) {
            size_t n = 0;
            int exact = 0;
            rc = catalog_plugin_count_query(cat, readable[i], q, &n, &exact, err);
            if (rc == RD_OK && !exact)
                rc = rd_fail(err, RD_ERR_INTERNAL, "no key-only count for this query");
            total += n;
        }
        o->catalog_us = util_monotonic_us() - t0;
        o->total = (long long)total;
        goto done;
    }
    if (rc == RD_OK && !use_store) { /* a local-only list, as the API answers it */
        int64_t t0 = util_monotonic_us();
        rc = catalog_query_views(cat, readable, NREADABLE, q, &res, err);
        o->catalog_us = util_monotonic_us() - t0;
        goto done;
    }
    if (rc == RD_OK)
        rc = collect_views(cat, q, &docs, &o->decoded, &o->catalog_us, err);
    if (rc == RD_OK)
        rc = query_run(q, docs, &res, err);
done:
    if (rc == RD_OK && res != NULL) {
        json_t *t = json_object_get(res, "total_count");
        o->results = json_array_size(json_object_get(res, "results"));
        if (t != NULL)
            o->total = (long long)json_integer_value(t);
    }
    query_free(q);
    json_decref(qv);
    json_decref(eq);
    json_decref(sq);
    json_decref(docs);
    json_decref(res);
    return rc;
}

/* Sets plugin_id_eq to the eq filter of some plugin of the main domain. */
static rd_status pick_plugin_id(catalog *cat, rd_error *err)
{
    json_t *q = json_pack("{s:s}", "provider", "oracle"), *recs = json_array();
    query *cq = NULL;
    rd_status rc = query_compile(NULL, q, NULL, &cq, err);
    if (rc == RD_OK)
        rc = catalog_plugin_collect_query(cat, readable[0], cq, recs, NULL, err);
    if (rc == RD_OK && json_array_size(recs) == 0)
        rc = rd_fail(err, RD_ERR_NOT_FOUND, "no plugin with provider oracle");
    if (rc == RD_OK)
        snprintf(plugin_id_eq, sizeof(plugin_id_eq), "{\"plugin_id\": \"%s\"}",
                 json_string_value(json_object_get(json_array_get(recs, 0), "plugin_id")));
    query_free(cq);
    json_decref(q);
    json_decref(recs);
    return rc;
}

/* ---- main -------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static uint64_t dir_bytes;

static int size_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        dir_bytes += (uint64_t)sb->st_size;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-query [--plugins N] [--data-dir DIR] [--iterations K] [--store]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"plugins", required_argument, NULL, 'n'},
                                         {"data-dir", required_argument, NULL, 'd'},
                                         {"iterations", required_argument, NULL, 'k'},
                                         {"store", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char tmpdir[] = "/tmp/bench-query.XXXXXX";
    const char *dir = NULL;
    size_t nplugins = 100000, iterations = 20, have = 0;
    double *ms = NULL, *cat_ms = NULL;
    store *st = NULL;
    catalog *cat = NULL;
    rd_error err = {0};
    struct rusage ru;
    int c, status = 1;

    while ((c = getopt_long(argc, argv, "n:d:k:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            nplugins = strtoull(optarg, NULL, 10);
            break;
        case 'd':
            dir = optarg;
            break;
        case 'k':
            iterations = strtoull(optarg, NULL, 10);
            break;
        case 's':
            use_store = 1;
            break;
        default:
            usage();
            return c == 'h' ? 0 : 2;
        }
    }
    if (iterations == 0 || optind != argc) {
        usage();
        return 2;
    }
    log_set_level(LOG_LVL_WARN);
    if (dir == NULL) {
        if (mkdtemp(tmpdir) == NULL) {
            perror("bench-query: mkdtemp");
            return 1;
        }
    }
    ms = calloc(iterations, sizeof(*ms));
    cat_ms = calloc(iterations, sizeof(*cat_ms));
    if (ms == NULL || cat_ms == NULL ||
        store_open(dir != NULL ? dir : tmpdir, &st, &err) != RD_OK ||
        catalog_open(st, "bench", &cat, &err) != RD_OK ||
        catalog_plugin_count_all(cat, &have, &err) != RD_OK)
        goto done;

    if (have > 0) {
        printf("using the %zu plugins already in %s\n", have, dir);
    } else {
        int64_t t0 = util_monotonic_us();
        if (load(cat, nplugins, &err) != 0)
            goto done;
        printf("loaded %zu plugins in %.1f s (batches of 1000, index maintained)\n", nplugins,
               (double)(util_monotonic_us() - t0) / 1e6);
        have = nplugins;
    }
    if (pick_plugin_id(cat, &err) != RD_OK)
        goto done;
    printf("domains readable by the caller: %s, %s; %zu iterations per request\n\n", readable[0],
           readable[1], iterations);
    printf("%-36s %10s %10s %11s %9s %8s %12s\n", "request", "median ms", "p99 ms", "catalog ms",
           "decoded", "results", "total_count");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_out o = {0};
        for (size_t k = 0; k < iterations; k++) {
            int64_t t0 = util_monotonic_us();
            if (run_case(cat, &cases[i], &o, &err) != RD_OK) {
                fprintf(stderr, "bench-query: %s: %s\n", cases[i].label, err.message);
                goto done;
            }
            ms[k] = (double)(util_monotonic_us() - t0) / 1000.0;
            cat_ms[k] = (double)o.catalog_us / 1000.0;
        }
        qsort(ms, iterations, sizeof(*ms), cmp_double);
        qsort(cat_ms, iterations, sizeof(*cat_ms), cmp_double);
        {
            size_t p99 = (iterations * 99 + 99) / 100; /* ceil(0.99 k) */
            char total[24];
            if (o.total < 0)
                snprintf(total, sizeof(total), "-");
            else
                snprintf(total, sizeof(total), "%lld", o.total);
            printf("%-36s %10.2f %10.2f %11.2f %9zu %8zu %12s\n", cases[i].label,
                   ms[iterations / 2], ms[p99 - 1], cat_ms[iterations / 2], o.decoded, o.results,
                   total);
            fflush(stdout);
        }
    }
    status = 0;
done:
    if (status != 0 && err.message[0] != '\0')
        fprintf(stderr, "bench-query: %s\n", err.message);
    catalog_close(cat);
    store_close(st);
    nftw(dir != NULL ? dir : tmpdir, size_entry, 16, FTW_PHYS);
    getrusage(RUSAGE_SELF, &ru);
    printf("\nplugins: %zu, data dir: %.1f MB, peak RSS: %.1f MB\n", have,
           (double)dir_bytes / 1048576.0, (double)ru.ru_maxrss / 1024.0);
    if (dir == NULL)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(ms);
    free(cat_ms);
    return status;
}
