"""GET /metrics (SPEC 12, docs/operations.md "Metrics and alerts").

A busy mirror M of a real upstream repod U: the exposition parses (a small
parser of the text format below), every family has HELP and TYPE,
histograms are cumulative with _count equal to the +Inf bucket, and the
numbers move with the traffic: answers by route and status class by exactly
the requests made, upstream requests and their errors, the breaker gauge
when U stops, staleness growing, registry lookups by host, store writes.
"""

import math
import re
import time
import unittest

from harness import RepodTestCase, Server, free_port, plugin_body

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')

FAMILIES = {
    "repod_http_requests_total": "counter",
    "repod_http_request_duration_seconds": "histogram",
    "repod_upstream_request_duration_seconds": "histogram",
    "repod_upstream_errors_total": "counter",
    "repod_upstream_breaker_state": "gauge",
    "repod_upstream_last_sync_timestamp_seconds": "gauge",
    "repod_upstream_cached_plugins": "gauge",
    "repod_upstream_staleness_seconds": "gauge",
    "repod_registry_lookups_total": "counter",
    "repod_store_live_data_bytes": "gauge",
    "repod_store_sst_files_bytes": "gauge",
    "repod_store_memtable_bytes": "gauge",
    "repod_store_wal_syncs_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
}


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if m is None:
            raise ValueError("bad labels: %r" % text)
        if m.group(1) in labels:
            raise ValueError("duplicate label %s" % m.group(1))
        labels[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return labels


def parse(text):
    """{family: {"help", "type", "samples": [(name, labels, value)]}}; raises
    ValueError on anything the text format 0.0.4 does not allow."""
    fams, current = {}, None
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                raise ValueError("bad comment line %r" % line)
            f = fams.setdefault(parts[2], {"samples": []})
            key = "help" if parts[1] == "HELP" else "type"
            if key in f:
                raise ValueError("second %s for %s" % (parts[1], parts[2]))
            if key == "type" and parts[3] not in ("counter", "gauge", "histogram", "summary",
                                                 "untyped"):
                raise ValueError("bad type %r" % line)
            f[key] = parts[3]
            current = parts[2]
            continue
        if line.startswith("#") or line == "":
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise ValueError("bad sample line %r" % line)
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), float(m.group(3))
        fam = current
        if fam is None or not (name == fam or (fams[fam].get("type") == "histogram" and
                                               name in (fam + "_bucket", fam + "_sum",
                                                        fam + "_count"))):
            raise ValueError("sample %r outside its family (%r)" % (line, fam))
        fams[fam]["samples"].append((name, labels, value))
    for name, f in fams.items():
        if "help" not in f or "type" not in f:
            raise ValueError("%s lacks HELP or TYPE" % name)
    return fams


def series(fams, family, suffix="", **match):
    """{frozen labels: value} of the samples of family+suffix whose labels
    include match."""
    out = {}
    for name, labels, value in fams.get(family, {}).get("samples", []):
        if name == family + suffix and all(labels.get(k) == v for k, v in match.items()):
            out[tuple(sorted(labels.items()))] = value
    return out


def value(fams, family, suffix="", **match):
    """The sum of the matching samples (0 when none)."""
    return sum(series(fams, family, suffix, **match).values())


def check_histograms(test, fams):
    for fam, f in fams.items():
        if f["type"] != "histogram":
            continue
        groups = {}
        for name, labels, v in f["samples"]:
            key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            groups.setdefault(key, {"buckets": []})
            if name.endswith("_bucket"):
                groups[key]["buckets"].append((float(labels["le"]), v))
            else:
                groups[key][name[len(fam):]] = v
        for key, g in groups.items():
            with test.subTest(family=fam, labels=key):
                les = [le for le, _ in g["buckets"]]
                test.assertEqual(les, sorted(les), "buckets in order")
                test.assertEqual(les[-1], math.inf, "+Inf bucket last")
                counts = [c for _, c in g["buckets"]]
                test.assertEqual(counts, sorted(counts), "buckets cumulative")
                test.assertEqual(g["_count"], counts[-1], "_count equals the +Inf bucket")
                test.assertGreaterEqual(g["_sum"], 0)


class MetricsTest(RepodTestCase):
    """U publishes domain "market" (2 plugins); M mirrors U and names a
    registry host where nothing listens."""

    @classmethod
    def setUpClass(cls):
        cls.dead_port = free_port()
        cls.dead_host = "127.0.0.1:%d" % cls.dead_port
        cls.up = Server(start=False, name="met-U",
                        overrides={"auth": {"public_domains": ["market"]}})
        cls.server = cls.mirror = Server(start=False, name="met-M", overrides={
            "registries": {cls.dead_host: {"api_url": "https://" + cls.dead_host,
                                           "ca_file": cls.up.ca_file,
                                           "timeout_ms": 2000}}})
        try:
            admin = cls.up.make_token("market", "admin")
            cls.up.start()
            for image in ("market/met-a", "market/met-b"):
                cls.must(cls.up.api("plugin/register", plugin_body(image), token=admin))
            cls.u_local_id = cls.must(cls.up.api("repository/list",
                                                 {"repository_type": "local"}))["results"][0][
                                                     "repository_id"]
            cls.system = cls.mirror.make_token("root", "system")
            cls.admin = cls.mirror.make_token("d1", "admin")
            cls.mirror.start()
            cls.must(cls.mirror.api("repository/register", {
                "name": "Upstream", "repository_type": "remote", "endpoint": cls.up.endpoint,
                "upstream": {"ca_file": cls.mirror.ca_file},
                "cache": {"ttl_s": 3600, "timeout_ms": 800}}, token=cls.system))
            cls.must(cls.mirror.api("repository/sync", {"repository_id": cls.u_local_id},
                                    token=cls.system))
            cls.must(cls.mirror.api("plugin/register", plugin_body("d1/loc-a"), token=cls.admin))
        except BaseException:
            cls.mirror.close()
            cls.up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mirror.close()
        cls.up.close()

    @staticmethod
    def must(resp):
        if resp.status != 200:
            raise AssertionError("set-up step failed: %s %r" % (resp.status, resp.body))
        return resp.body

    def scrape(self):
        r = self.mirror.request("/metrics", method="GET")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"))
        text = r.body.decode() if isinstance(r.body, bytes) else str(r.body)
        try:
            return parse(text)
        except ValueError as e:
            self.fail("exposition does not parse: %s\n%s" % (e, text))

    def wait_metric(self, fn, timeout=8.0):
        deadline = time.monotonic() + timeout
        while True:
            fams = self.scrape()
            if fn(fams) or time.monotonic() > deadline:
                return fams
            time.sleep(0.2)

    def test_1_every_family_with_help_type_and_valid_histograms(self):
        self.mirror.api("plugin/get", {"plugin_id": "met-a"})  # an upstream or cache answer
        fams = self.scrape()
        for fam, typ in FAMILIES.items():
            with self.subTest(family=fam):
                self.assertIn(fam, fams)
                self.assertEqual(fams[fam]["type"], typ)
                self.assertTrue(fams[fam]["help"])
        check_histograms(self, fams)
        self.assertGreater(value(fams, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value(fams, "process_open_fds"), 3)
        start = value(fams, "process_start_time_seconds")
        self.assertLess(abs(start - time.time()), 3600)
        self.assertGreaterEqual(value(fams, "process_cpu_seconds_total"), 0)
        self.assertGreater(value(fams, "repod_store_live_data_bytes") +
                           value(fams, "repod_store_sst_files_bytes") +
                           value(fams, "repod_store_memtable_bytes"), 0)
        for name, labels, _ in fams["repod_http_request_duration_seconds"]["samples"]:
            self.assertIn(labels["code"], ("2xx", "3xx", "4xx", "5xx"))
            self.assertRegex(labels["route"],
                             r"^(operational|console|unknown|[a-z-]+/[a-z-]+)$")

    def test_2_route_counts_move_by_exactly_the_requests_made(self):
        h = "repod_http_request_duration_seconds"
        before = self.scrape()
        for _ in range(3):
            self.assertOK(self.mirror.api("plugin/get", {"plugin_id": "loc-a"}, token=self.admin))
        self.assertOK(self.mirror.request("/repository/plugin/get", {"plugin_id": "loc-a"},
                                          token=self.admin))  # gateway spelling, same route
        for _ in range(2):
            self.assertError(self.mirror.api("plugin/get", {"plugin_id": "nope"},
                                             token=self.admin), 404)
        self.assertOK(self.mirror.api("plugin/list", {}, token=self.admin))
        self.assertError(self.mirror.request("/repository/v1/nothing/here", {}), 404)
        self.assertError(self.mirror.request("/no/such/path/%d" % time.time_ns(), {}), 404)
        self.assertOK(self.mirror.request("/healthz", method="GET"))
        self.assertEqual(self.mirror.request("/ui/", method="GET").status, 200)
        after = self.scrape()

        def delta(suffix, **m):
            return value(after, h, suffix, **m) - value(before, h, suffix, **m)
        self.assertEqual(delta("_count", route="plugin/get", code="2xx"), 4)
        self.assertEqual(delta("_count", route="plugin/get", code="4xx"), 2)
        self.assertEqual(delta("_count", route="plugin/list", code="2xx"), 1)
        self.assertEqual(delta("_count", route="unknown", code="4xx"), 2)
        self.assertEqual(delta("_count", route="console", code="2xx"), 1)
        # /healthz and the first scrape (counted once answered)
        self.assertEqual(delta("_count", route="operational", code="2xx"), 2)
        self.assertEqual(delta("_bucket", route="plugin/get", code="2xx", le="+Inf"), 4)
        self.assertGreater(delta("_sum", route="plugin/get"), 0)
        c = "repod_http_requests_total"
        self.assertEqual(value(after, c, **{"class": "4xx"}) - value(before, c, **{"class": "4xx"}),
                         4)
        total = value(after, h, "_count")
        self.assertEqual(total - value(before, h, "_count"), 12)
        wal = "repod_store_wal_syncs_total"
        self.assertOK(self.mirror.api("plugin/update", {"plugin_id": "loc-a", "name": "Loc A2"},
                                      token=self.admin))
        self.assertGreater(value(self.scrape(), wal), value(after, wal), "a write syncs the WAL")

    def test_3_registry_lookups_by_host(self):
        fam = "repod_registry_lookups_total"
        before = self.scrape()
        self.assertOK(self.mirror.api("plugin/register", plugin_body(
            "team/dead-reg", registry_type="HARBOR", registry_url=self.dead_host),
            token=self.admin))
        self.mirror.api("plugin/get-versions", {"plugin_id": "dead-reg"}, token=self.admin)
        after = self.wait_metric(
            lambda f: value(f, fam, host=self.dead_host, result="error") >
            value(before, fam, host=self.dead_host, result="error"))
        self.assertGreater(value(after, fam, host=self.dead_host, result="error"),
                           value(before, fam, host=self.dead_host, result="error"))
        self.assertEqual(value(after, fam, host=self.dead_host, result="ok"), 0)
        hosts = {dict(k)["host"] for k in series(after, fam)}
        self.assertLessEqual(hosts, {self.dead_host, "other"}, "only allow-listed hosts")

    def test_4_upstream_series_staleness_and_outage(self):
        rid = self.u_local_id
        up_h = "repod_upstream_request_duration_seconds"
        errs = "repod_upstream_errors_total"
        fams = self.scrape()
        self.assertGreaterEqual(value(fams, up_h, "_count", repository=rid, result="ok"), 1)
        self.assertEqual(value(fams, "repod_upstream_breaker_state", repository=rid), 0)
        self.assertEqual(value(fams, "repod_upstream_cached_plugins", repository=rid), 2)
        last = value(fams, "repod_upstream_last_sync_timestamp_seconds", repository=rid)
        self.assertLess(abs(last - time.time()), 600)
        stale1 = value(fams, "repod_upstream_staleness_seconds", repository=rid)
        self.assertGreaterEqual(stale1, 0)
        time.sleep(1.2)
        fams = self.scrape()
        self.assertGreaterEqual(value(fams, "repod_upstream_staleness_seconds", repository=rid),
                                stale1 + 1.0, "staleness grows")
        self.assertEqual(value(fams, "repod_upstream_last_sync_timestamp_seconds",
                               repository=rid), last)

        errors_before = value(fams, errs, repository=rid)
        self.up.stop()
        for _ in range(3):
            r = self.mirror.api("repository/sync", {"repository_id": rid}, token=self.system)
            self.assertNotEqual(r.status, 200)
        fams = self.wait_metric(
            lambda f: value(f, "repod_upstream_breaker_state", repository=rid) == 2)
        self.assertEqual(value(fams, "repod_upstream_breaker_state", repository=rid), 2,
                         "the breaker opened")
        self.assertGreaterEqual(value(fams, errs, repository=rid) - errors_before, 3)
        self.assertGreaterEqual(value(fams, errs, repository=rid, result="unavailable") +
                                value(fams, errs, repository=rid, result="timeout"), 3)
        self.assertEqual(value(fams, "repod_upstream_last_sync_timestamp_seconds",
                               repository=rid), last, "no successful sync since")
        check_histograms(self, fams)


if __name__ == "__main__":
    unittest.main()
