"""Outbound calls to container registries (SPEC 9, docs/registries.md).

  AllowListTest   registry_url / ECR account_id+region outside the allow-list
                  are refused at register/update (400, nothing stored) and a
                  stored plugin whose host is no longer allowed makes no
                  connection; allowed_hosts patterns ('*' = one DNS label,
                  port part of the match); ECR shapes.
  AddressTest     a host allowed only by a pattern that is a loopback address
                  is refused before connecting; the same host named exactly
                  in the config is read.
  RealmTest       a Bearer realm on a foreign host (or over http) gets 502 and
                  no connection, no credential; a realm listed in the entry's
                  token_realm_hosts is asked.
  FailFastTest    40 concurrent get-versions (8 in flight) against an
                  unreachable registry all answer 503 quickly, at the upstream
                  and through a mirror, whose repository stays `ok`; an
                  unreachable registry host gets one connection attempt, not
                  one per caller; registry calls have their own metric family.

Every listener here records the connections it accepts: "no connection was
made" is checked by a listener that must see none.
"""

import http.server
import json
import os
import socket
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import harness
from harness import RepodTestCase, Server, list_snapshot, plugin_body


class Recorder:
    """A TCP listener on 127.0.0.1 that counts accepted connections and
    closes each at once (a registry that is 'there' but never answers)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepts += 1
            c.close()

    def count(self):
        with self._lock:
            return self.accepts

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FakeRegistry:
    """A TLS Distribution API stub on 127.0.0.1.  GET /v2/<name>/tags/list:
    `foreign/*` answers 401 with a Bearer realm on realm_port, `plain/*`
    401 with an http realm on its own port, anything else 200 with tags."""

    def __init__(self, realm_port):
        outer = self
        self.realm_port = realm_port
        self.auth_seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.auth_seen.append(self.headers.get("Authorization"))
                path = self.path.split("?", 1)[0]
                name = path[len("/v2/"):-len("/tags/list")] if path.endswith("/tags/list") else ""
                if name.startswith("foreign/"):
                    self._challenge('Bearer realm="https://127.0.0.1:%d/token",service="x",'
                                    'scope="repository:%s:pull"' % (outer.realm_port, name))
                elif name.startswith("plain/"):
                    self._challenge('Bearer realm="http://127.0.0.1:%d/token",service="x"'
                                    % outer.port)
                else:
                    body = json.dumps({"name": name, "tags": ["1.0", "2.0"]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def _challenge(self, value):
                body = b'{"errors":[{"code":"UNAUTHORIZED"}]}'
                self.send_response(401)
                self.send_header("WWW-Authenticate", value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = harness.serve_https(Handler)
        self.port = self.httpd.server_address[1]

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        harness.stop_https(self.httpd)


def ca_file():
    return os.path.join(harness.cert_dir(), "ca.crt")


def entry(port, **extra):
    e = {"api_url": "https://127.0.0.1:%d" % port, "ca_file": ca_file(), "timeout_ms": 2000}
    e.update(extra)
    return e


def harbor(image, url, **extra):
    return plugin_body(image, registry_type="HARBOR", registry_url=url, **extra)


def metric_samples(server, family):
    """{labels-text: value} of one metric family from GET /metrics."""
    r = server.request("/metrics", method="GET")
    text = r.body.decode() if isinstance(r.body, bytes) else str(r.body)
    out = {}
    for line in text.splitlines():
        if line.startswith(family) and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name[len(family):]] = float(value)
    return out


# --------------------------------------------------------------------------

ECR_HOST = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com"


class AllowListTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.rec = Recorder()
        cls.gone = Recorder()   # named in the first config only
        cls.server = Server(start=False, name="outbound-allow", overrides={
            "registries": {cls.gone.host: entry(cls.gone.port)},
            "registry": {"allowed_hosts": ["*.allowed.test", "ok.example.com:5000",
                                           "*.dkr.ecr.*.amazonaws.com"]},
        })
        try:
            cls.admin = cls.server.make_token("allow", "admin")
            cls.server.start()
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        cls.server.close()
        cls.rec.close()
        cls.gone.close()

    @classmethod
    def tearDownClass(cls):
        cls._close()

    def register(self, body):
        return self.server.api("plugin/register", body, token=self.admin)

    def test_register_outside_allow_list_refused(self):
        before = list_snapshot(self.server, self.admin)
        for url in (self.rec.host, "169.254.169.254", "127.0.0.1:22", "localhost",
                    "a.b.allowed.test", "allowed.test", "ok.example.com", "ok.example.com:5001",
                    "evil.example.com"):
            with self.subTest(registry_url=url):
                r = self.register(harbor("team/refused-x", url))
                self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_url")
        self.assertEqual(list_snapshot(self.server, self.admin), before, "nothing stored")
        self.assertEqual(self.rec.count(), 0, "no connection")

    def test_register_inside_allow_list(self):
        for i, url in enumerate(("x.allowed.test", "X.Allowed.Test", "ok.example.com:5000",
                                 "registry.hub.docker.com", "docker.io", self.gone.host)):
            with self.subTest(registry_url=url):
                r = self.register(harbor("team/ok-%d" % i, url))
                self.assertOK(r)

    def test_ecr_account_and_region(self):
        def ecr(image, url=ECR_HOST, **cfg):
            return plugin_body(image, registry_type="AWS_PRIVATE_ECR", registry_url=url,
                               registry_config=cfg)
        before = list_snapshot(self.server, self.admin)
        r = self.register(ecr("team/ecr-a", account_id="12345", region="us-east-1"))
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_config.account_id")
        r = self.register(ecr("team/ecr-b", account_id="123456789012", region="us east"))
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_config.region")
        r = self.register(ecr("team/ecr-c", region="x.evil.com#"))
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_config.region")
        r = self.register(ecr("team/ecr-d", url=ECR_HOST + ".evil.example"))
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_url")
        r = self.register(ecr("team/ecr-e", url="123456789012.dkr.ecr.evil.example"))
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_url")
        self.assertEqual(list_snapshot(self.server, self.admin), before, "nothing stored")
        self.assertOK(self.register(ecr("team/ecr-ok", account_id="123456789012",
                                        region="ap-northeast-2")))

    def test_update_outside_allow_list_refused(self):
        self.assertOK(self.register(harbor("team/upd", "y.allowed.test")))
        r = self.server.api("plugin/update", {"plugin_id": "upd", "registry_url": self.rec.host},
                            token=self.admin)
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_url")
        g = self.assertOK(self.server.api("plugin/get", {"plugin_id": "upd"}, token=self.admin))
        self.assertEqual(g["registry_url"], "y.allowed.test")
        self.assertOK(self.server.api("plugin/update", {"plugin_id": "upd", "name": "Renamed"},
                                      token=self.admin))
        self.assertEqual(self.rec.count(), 0)

    def test_stored_plugin_no_longer_allowed(self):
        s = self.server
        self.assertOK(self.register(harbor("team/was-allowed", self.gone.host)))
        cfg = json.loads(json.dumps(s.config))
        cfg["registries"] = {}
        s.write_config(cfg)
        try:
            s.restart()
            r = s.api("plugin/get-versions", {"plugin_id": "was-allowed"}, token=self.admin)
            self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="registry_url")
            self.assertEqual(self.gone.count(), 0, "no connection to a host no longer allowed")
        finally:
            cfg["registries"] = {self.gone.host: entry(self.gone.port)}
            s.write_config(cfg)
            s.restart()


class AddressTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.pattern_only = Recorder()
        cls.named = Recorder()
        cls.server = Server(start=False, name="outbound-addr", overrides={
            # 127.0.0.1:P matches the pattern (one label for "127"), but is
            # not named: its loopback address is refused.
            "registry": {"allowed_hosts": ["*.0.0.1:%d" % cls.pattern_only.port,
                                           cls.named.host]},
            "registries": {},
        })
        try:
            cls.admin = cls.server.make_token("addr", "admin")
            cls.server.start()
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        cls.server.close()
        cls.pattern_only.close()
        cls.named.close()

    @classmethod
    def tearDownClass(cls):
        cls._close()

    def test_loopback_refused_unless_named(self):
        s = self.server
        self.assertOK(s.api("plugin/register", harbor("team/by-pattern", self.pattern_only.host),
                            token=self.admin))
        r = s.api("plugin/get-versions", {"plugin_id": "by-pattern"}, token=self.admin)
        self.assertError(r, 400, "ERROR_INVALID_PARAMETER", contains="loopback")
        self.assertEqual(self.pattern_only.count(), 0, "no connection to a loopback address")

        self.assertOK(s.api("plugin/register", harbor("team/by-name", self.named.host),
                            token=self.admin))
        r = s.api("plugin/get-versions", {"plugin_id": "by-name"}, token=self.admin)
        self.assertEqual(r.status, 503, self._ctx(r))   # connected, then closed on
        self.assertGreaterEqual(self.named.count(), 1, "a named loopback host is read")


class RealmTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.realm = Recorder()
        cls.reg = FakeRegistry(cls.realm.port)
        cls.tmp_pw = os.path.join(harness.cert_dir(), "..", "outbound-realm.pw")
        cls.server = Server(start=False, name="outbound-realm")
        pw = os.path.join(cls.server.tmp, "registry.pw")
        with open(pw, "w") as f:
            f.write("realm-Secret-77\n")
        cls.server.config["registries"] = {
            cls.reg.host: entry(cls.reg.port, username="robot", password_file=pw),
            # the same registry under another name that lists the realm host
            "localhost:%d" % cls.reg.port: entry(cls.reg.port, username="robot",
                                                  password_file=pw,
                                                  token_realm_hosts=[cls.realm.host]),
        }
        cls.server.write_config()
        try:
            cls.admin = cls.server.make_token("realm", "admin")
            cls.server.start()
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        cls.server.close()
        cls.reg.close()
        cls.realm.close()

    @classmethod
    def tearDownClass(cls):
        cls._close()

    def versions(self, pid):
        return self.server.api("plugin/get-versions", {"plugin_id": pid}, token=self.admin)

    def test_foreign_realm_refused(self):
        s = self.server
        self.assertOK(s.api("plugin/register", harbor("foreign/app", self.reg.host),
                            token=self.admin))
        r = self.versions("app")
        d = self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE", contains=self.realm.host)
        self.assertIn("realm", d["message"])
        self.assertEqual(self.realm.count(), 0, "no connection to the foreign realm")
        self.assertTrue(all(a is None for a in self.reg.auth_seen), self.reg.auth_seen)

    def test_http_realm_refused(self):
        s = self.server
        self.assertOK(s.api("plugin/register", harbor("plain/app2", self.reg.host),
                            token=self.admin))
        r = self.versions("app2")
        self.assertError(r, 502, "ERROR_REGISTRY_BAD_RESPONSE", contains="realm")

    def test_listed_realm_host_is_asked(self):
        s = self.server
        self.assertOK(s.api("plugin/register", harbor("foreign/app3", "localhost:%d" %
                                                      self.reg.port), token=self.admin))
        before = self.realm.count()
        r = self.versions("app3")
        self.assertIn(r.status, (502, 503), self._ctx(r))   # the recorder never answers
        self.assertGreater(self.realm.count(), before, "a listed realm host is asked")

    def test_plain_tags_read(self):
        s = self.server
        self.assertOK(s.api("plugin/register", harbor("team/open-app", self.reg.host),
                            token=self.admin))
        r = self.versions("open-app")
        b = self.assertOK(r)
        self.assertEqual(b["results"], ["2.0", "1.0"])


class FailFastTest(RepodTestCase):

    N = 40
    IN_FLIGHT = 8

    @classmethod
    def setUpClass(cls):
        cls.down_port = harness.free_port()          # nothing listens there
        cls.down = "127.0.0.1:%d" % cls.down_port
        cls.dropper = Recorder()                     # accepts and closes
        cls.up = Server(start=False, name="outbound-U", overrides={
            "auth": {"public_domains": ["market"]},
            "registries": {cls.down: entry(cls.down_port),
                           cls.dropper.host: entry(cls.dropper.port)},
            "registry": {"negative_cache_ms": 5000},
        })
        cls.mirror = Server(start=False, name="outbound-M")
        cls.server = cls.up
        try:
            market = cls.up.make_token("market", "admin")
            cls.up.start()
            for i in range(cls.N):
                r = cls.up.api("plugin/register", harbor("team/down-%d" % i, cls.down),
                               token=market)
                assert r.status == 200, r.body
                r = cls.up.api("plugin/register", harbor("team/drop-%d" % i, cls.dropper.host),
                               token=market)
                assert r.status == 200, r.body
            b = cls.up.api("repository/list", {"repository_type": "local"}).body
            cls.u_local_id = b["results"][0]["repository_id"]
            cls.system = cls.mirror.make_token("root", "system")
            cls.mirror.start()
            r = cls.mirror.api("repository/register", {
                "name": "Market", "repository_type": "remote", "endpoint": cls.up.endpoint,
                "upstream": {"ca_file": cls.mirror.ca_file},
                "cache": {"ttl_s": 300, "timeout_ms": 3000}}, token=cls.system)
            assert r.status == 200, r.body
            r = cls.mirror.api("repository/sync", {"repository_id": cls.u_local_id},
                               token=cls.system)
            assert r.status == 200, r.body
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        cls.mirror.close()
        cls.up.close()
        cls.dropper.close()

    @classmethod
    def tearDownClass(cls):
        cls._close()

    def burst(self, server, prefix):
        def one(i):
            t0 = time.monotonic()
            r = server.api("plugin/get-versions", {"plugin_id": "%s-%d" % (prefix, i)})
            return r, time.monotonic() - t0
        with ThreadPoolExecutor(self.IN_FLIGHT) as ex:
            return list(ex.map(one, range(self.N)))

    def check_all_503(self, results, where):
        for r, took in results:
            self.server = where
            self.assertError(r, 503, "ERROR_REGISTRY_UNAVAILABLE")
            self.assertLess(took, 2.0, "%s: a call took %.2f s" % (where.config_path, took))

    def test_1_unreachable_registry_fails_fast_everywhere(self):
        self.check_all_503(self.burst(self.up, "down"), self.up)
        self.check_all_503(self.burst(self.mirror, "down"), self.mirror)
        g = self.mirror.api("repository/get", {"repository_id": self.u_local_id},
                            token=self.system)
        self.server = self.mirror
        b = self.assertOK(g)
        self.assertEqual(b["upstream"]["state"], "ok", b)

    def test_2_one_connection_attempt_per_host(self):
        results = self.burst(self.up, "drop")
        for r, _ in results:
            self.server = self.up
            self.assertError(r, 503, "ERROR_REGISTRY_UNAVAILABLE")
        self.assertLessEqual(self.dropper.count(), 2,
                             "%d connections for %d lookups" % (self.dropper.count(), self.N))

    def test_3_registry_metrics_apart_from_upstream(self):
        self.burst(self.up, "down")
        reg = metric_samples(self.up, "repod_registry_requests_total")
        self.assertGreaterEqual(reg.get('{outcome="unavailable"}', 0), self.N, reg)
        self.assertIn('{outcome="ok"}', reg)
        self.assertEqual(self.up.metric("repod_upstream_requests_total"), 0.0,
                         "U has no remote repositories: registry calls are not upstream calls")


if __name__ == "__main__":
    unittest.main()
