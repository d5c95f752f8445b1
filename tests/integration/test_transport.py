"""Transport: TLS only, HTTP/1.1 keep-alive, routing, limits, JSON errors,
signals and the command line (SPEC 1, 2, 10)."""

import http.client
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import unittest
import warnings

import harness
from harness import RepodTestCase, Server

MAX_BODY = 4096


def client_hello(version):
    """A raw TLS ClientHello record offering exactly `version` (0x0302 = TLS
    1.1, 0x0303 = TLS 1.2) with ECDHE/RSA suites usable by both versions."""
    suites = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xC009, 0xC00A, 0xC013, 0xC014,
              0x009C, 0x002F, 0x0035, 0x00FF]
    cs = b"".join(struct.pack(">H", s) for s in suites)

    def ext(kind, data):
        return struct.pack(">HH", kind, len(data)) + data

    groups = b"".join(struct.pack(">H", g) for g in (0x0017, 0x001D))
    sigalgs = b"".join(struct.pack(">H", a) for a in (0x0403, 0x0804, 0x0401, 0x0503, 0x0805))
    exts = (ext(0x000A, struct.pack(">H", len(groups)) + groups) +
            ext(0x000B, b"\x01\x00") +
            ext(0x000D, struct.pack(">H", len(sigalgs)) + sigalgs))
    body = (struct.pack(">H", version) + os.urandom(32) + b"\x00" +
            struct.pack(">H", len(cs)) + cs + b"\x01\x00" +
            struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


class TransportTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server({"limits": {"max_body_bytes": MAX_BODY}}, start=False, name="transport")
        try:
            cls.admin = cls.server.make_token("domain-t", "admin")
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def assertHealthy(self):
        r = self.server.request("/healthz", method="GET")
        self.assertEqual(r.status, 200, "server unhealthy afterwards" + self._ctx(r))

    def raw_exchange(self, data, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=timeout)
        try:
            s.sendall(data)
            return harness.recv_all(s, timeout=timeout)
        finally:
            s.close()

    # -- TLS ---------------------------------------------------------------

    def test_plain_http_gets_no_http_response(self):
        for req in (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                    b"POST /repository/v1/plugin/list HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"):
            with self.subTest(req=req[:20]):
                got = self.raw_exchange(req)
                self.assertNotIn(b"HTTP/1.", got, "plaintext answer on the TLS port: %r" % got[:200])
                self.assertNotIn(b"{", got[:1], "plaintext answer on the TLS port: %r" % got[:200])
        self.assertHealthy()

    def test_tls11_refused_tls12_hello_accepted(self):
        # Control: the same hand-made hello offering TLS 1.2 gets a ServerHello.
        got = self.raw_exchange(client_hello(0x0303))
        self.assertGreaterEqual(len(got), 11, "no answer to a TLS 1.2 ClientHello: %r" % got[:50])
        self.assertEqual(got[0], 0x16, "TLS 1.2 hello: expected a handshake record, got %r" % got[:20])
        self.assertEqual(got[5], 0x02, "TLS 1.2 hello: expected ServerHello, got %r" % got[:20])
        self.assertEqual(got[9:11], b"\x03\x03", "TLS 1.2 hello: ServerHello version %r" % got[9:11])
        # TLS 1.1 only: an alert or a closed connection, never a ServerHello.
        got = self.raw_exchange(client_hello(0x0302))
        if got:
            self.assertEqual(got[0], 0x15, "TLS 1.1 hello was not refused with an alert: %r" % got[:20])
        self.assertHealthy()

    def test_tls11_refused_by_python_client(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.server.ca_file)
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ssl.SSLError, ValueError) as e:
            self.skipTest("client cannot offer TLS 1.1 here: %s" % e)
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            s = harness.tls_socket(self.server.port, context=ctx)
            s.close()

    def test_tls12_and_tls13_work(self):
        for ver, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=name):
                ctx = self.server.context(min_version=ver, max_version=ver)
                conn = self.server.connect(context=ctx)
                try:
                    r = self.server.request("plugin/list", {}, token=self.admin, conn=conn)
                    self.assertEqual(conn.sock.version(), name)
                finally:
                    conn.close()
                self.assertOK(r)

    def test_server_certificate_is_the_configured_one(self):
        # A client trusting an unrelated CA must fail verification ...
        wrong = harness.client_context(os.path.join(harness.other_cert_dir(), "ca.crt"))
        with self.assertRaises(ssl.SSLCertVerificationError):
            harness.tls_socket(self.server.port, context=wrong).close()
        # ... and the right CA verifies, for the IP SAN and for localhost.
        harness.tls_socket(self.server.port).close()
        harness.tls_socket(self.server.port, server_hostname="localhost").close()

    # -- routes --------------------------------------------------------------

    def test_healthz_and_readyz(self):
        for path in ("/healthz", "/readyz"):
            with self.subTest(path=path):
                r = self.server.request(path, method="GET")
                self.assertEqual(r.status, 200, self._ctx(r))

    def test_unknown_route_404(self):
        for method, path in (("POST", "/repository/v1/plugin/frobnicate"),
                             ("POST", "/repository/v1/nothing/list"),
                             ("POST", "/repository/v2/plugin/list"),
                             ("GET", "/no/such/thing")):
            with self.subTest(path=path):
                r = self.server.request(path, {} if method == "POST" else None,
                                        token=self.admin, method=method)
                self.assertError(r, 404, "ERROR_UNKNOWN_ROUTE")

    def test_get_on_api_route_405(self):
        for path in ("plugin/list", "plugin/register", "repository/list"):
            with self.subTest(path=path):
                r = self.server.request(path, None, token=self.admin, method="GET")
                self.assertError(r, 405, "ERROR_METHOD_NOT_ALLOWED")

    def test_metrics(self):
        r = self.server.request("/metrics", method="GET")
        self.assertEqual(r.status, 200, self._ctx(r))
        text = r.body.decode() if isinstance(r.body, bytes) else json.dumps(r.body)
        self.assertRegex(text, r"(?m)^# (TYPE|HELP) \w+", "not Prometheus text")

    def test_metrics_listen_serves_only_operational_endpoints(self):
        srv = Server({"metrics_listen": "127.0.0.1:0"}, name="metrics")
        self.addCleanup(srv.close)
        m = re.search(r"repod: metrics on http://127\.0\.0\.1:(\d+)/metrics", srv.log())
        self.assertIsNotNone(m, srv.describe())
        port = int(m.group(1))

        def plain(method, path):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                c.request(method, path, body=b"{}" if method == "POST" else None)
                r = c.getresponse()
                return r.status, r.read()
            finally:
                c.close()

        status, body = plain("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertRegex(body.decode(), r"(?m)^repod_http_requests_total\{class=\"2xx\"\} \d+$")
        self.assertEqual(plain("GET", "/readyz")[0], 200)
        status, body = plain("POST", "/repository/v1/plugin/list")
        self.assertEqual(status, 404)  # the API is never served in plaintext
        self.assertEqual(json.loads(body)["detail"]["code"], "ERROR_UNKNOWN_ROUTE")
        srv.stop()

    def test_connection_limit_429(self):
        srv = Server({"limits": {"max_connections": 2}, "workers": 1}, name="connlimit")
        self.addCleanup(srv.close)
        held = [harness.tls_socket(srv.port) for _ in range(2)]
        try:
            third = harness.tls_socket(srv.port)
            try:
                third.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                raw = harness.recv_all(third, timeout=5)
            finally:
                third.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 429"), raw[:200])
            self.assertIn(b"connection: close", head.lower())
            self.assertEqual(json.loads(body)["detail"]["code"], "ERROR_TOO_MANY_REQUESTS")
        finally:
            for s in held:
                s.close()
        # closed connections are counted out again
        deadline = time.monotonic() + 5
        while True:
            r = srv.request("/healthz", method="GET")
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r.status, 200)
        srv.stop()

    def test_idle_connections_do_not_stall_the_server(self):
        idle = []
        try:
            for i in range(6):
                s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                if i % 2:
                    s.sendall(client_hello(0x0303)[:20])   # a half-sent handshake
                idle.append(s)
            t0 = time.monotonic()
            for _ in range(4):
                self.assertOK(self.server.request("plugin/list", {}, token=self.admin))
            self.assertLess(time.monotonic() - t0, 5, "requests stalled behind idle connections")
        finally:
            for s in idle:
                s.close()

    def test_concurrent_keepalive_clients(self):
        errors = []

        def client(n):
            conn = self.server.connect()
            try:
                for i in range(15):
                    r = self.server.request("plugin/list", {"query": {"page": {"limit": 1}}},
                                            token=self.admin, conn=conn)
                    if r.status != 200:
                        errors.append((n, i, r.status, r.body))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((n, repr(e)))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [], self.server.describe())

    # -- bodies --------------------------------------------------------------

    def test_body_over_limit_413(self):
        # Decided from Content-Length: a JSON 413 and a close.
        for size in (MAX_BODY + 1, 2 * MAX_BODY, 4 * MAX_BODY):
            with self.subTest(size=size):
                body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
                self.assertEqual(len(body), size)
                r = self.server.request("plugin/list", body, token=self.admin)
                self.assertError(r, 413, "ERROR_REQUEST_TOO_LARGE")
        # A body just under the limit is read normally (then judged as JSON).
        ok = json.dumps({"query": {"filter": [{"k": "name", "v": "y" * (MAX_BODY - 200), "o": "eq"}]}})
        self.assertLess(len(ok), MAX_BODY)
        r = self.server.request("plugin/list", ok, token=self.admin)
        self.assertOK(r)
        self.assertHealthy()

    def test_absurd_body_cut_off(self):
        # Far beyond the limit the answer is the same JSON 413, decided from
        # the head without reading the body; the server stays healthy.
        size = 100 * MAX_BODY
        body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
        r = self.server.request("plugin/list", body, token=self.admin)
        self.assertError(r, 413, "ERROR_REQUEST_TOO_LARGE")
        self.assertHealthy()

    def test_stalled_body_does_not_block_others(self):
        # A client that declares a body within the limit and stops sending
        # holds only its own connection: other clients are answered meanwhile.
        # (A declared body over the limit is answered 413 at once.)
        s = harness.tls_socket(self.server.port)
        try:
            s.sendall(b"POST /repository/v1/plugin/list HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Authorization: Bearer " + self.admin.encode() + b"\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % MAX_BODY)
            for _ in range(5):
                r = self.server.request("plugin/list", {}, token=self.admin)
                self.assertOK(r)
            self.assertHealthy()
        finally:
            s.close()

    def test_invalid_json_400(self):
        for raw in (b'{"query": ', b"not json", b'{"name": "\xff\xfe"}', b'{"a": 1,}', b"{'a': 1}"):
            with self.subTest(body=raw):
                r = self.server.request("plugin/list", raw, token=self.admin)
                self.assertError(r, 400, "ERROR_INVALID_JSON")

    def test_non_object_json_400(self):
        for raw in (b"[]", b'"text"', b"1", b"null", b"true"):
            with self.subTest(body=raw):
                r = self.server.request("plugin/list", raw, token=self.admin)
                self.assertError(r, 400, ("ERROR_INVALID_JSON", "ERROR_INVALID_PARAMETER_TYPE"))

    def test_duplicate_keys_400(self):
        for raw in (b'{"query": {}, "query": {"page": {"limit": 1}}}',
                    b'{"query": {"page": {"limit": 1, "limit": 2}}}'):
            with self.subTest(body=raw):
                r = self.server.request("plugin/list", raw, token=self.admin)
                self.assertError(r, 400, "ERROR_INVALID_JSON")

    def test_empty_body_means_empty_object(self):
        r = self.server.request("plugin/list", None, token=self.admin)
        body = self.assertOK(r)
        self.assertIsInstance(body.get("results"), list, self._ctx(r))
        self.assertIsInstance(body.get("total_count"), int, self._ctx(r))
        # register with an empty body is {}: a missing parameter, not bad JSON.
        r = self.server.request("plugin/register", None, token=self.admin)
        self.assertError(r, 400, "ERROR_REQUIRED_PARAMETER")

    def test_keep_alive_many_requests_one_connection(self):
        conn = self.server.connect()
        try:
            first_sock = None
            for i in range(8):
                if i % 3 == 2:
                    r = self.server.request("plugin/nothing", {}, token=self.admin, conn=conn)
                    self.assertError(r, 404, "ERROR_UNKNOWN_ROUTE")
                else:
                    r = self.server.request("plugin/list", {}, token=self.admin, conn=conn)
                    self.assertOK(r)
                self.assertNotEqual((r.headers.get("Connection") or "").lower(), "close")
                self.assertIsNotNone(conn.sock, "server closed the keep-alive connection")
                if first_sock is None:
                    first_sock = conn.sock
                self.assertIs(conn.sock, first_sock, "request %d used a new connection" % i)
        finally:
            conn.close()

    def test_content_type_json_on_answers(self):
        answers = [
            self.server.request("plugin/list", {}, token=self.admin),                       # 200
            self.server.request("plugin/get", {"plugin_id": "plugin-nope"}, token=self.admin),  # 404
            self.server.request("plugin/list", b"{", token=self.admin),                     # 400
            self.server.request("plugin/list", {}, token="bogus-token-value"),              # 401
            self.server.request("plugin/list", None, token=self.admin, method="GET"),       # 405
        ]
        for r in answers:
            with self.subTest(status=r.status):
                ctype = r.headers.get("Content-Type", "")
                self.assertTrue(ctype.startswith("application/json"), "%r %s" % (ctype, self._ctx(r)))
                self.assertIsInstance(r.body, dict, self._ctx(r))

    # -- process -------------------------------------------------------------

    def test_sigterm_exits_0_even_with_idle_keepalive(self):
        with Server({"limits": {"shutdown_timeout_s": 2}}, name="sigterm") as srv:
            self.assertEqual(srv.request("/healthz", method="GET").status, 200)
            conn = srv.connect()
            try:
                r = srv.request("plugin/list", {}, conn=conn)  # anonymous read, idle afterwards
                self.assertIn(r.status, (200, 401), srv.describe())
                t0 = time.monotonic()
                self.assertEqual(srv.stop(), 0)
                self.assertLess(time.monotonic() - t0, 15, "SIGTERM took too long")
            finally:
                conn.close()
            # the same data dir opens again and serves
            srv.start()
            self.assertEqual(srv.request("/readyz", method="GET").status, 200, srv.describe())
            self.assertEqual(srv.stop(), 0)

    def test_check_config(self):
        srv = self.server
        good = os.path.join(srv.tmp, "good.json")  # the running server holds its own data_dir
        with open(good, "w") as f:
            json.dump(harness.deep_merge(srv.config, {"data_dir": os.path.join(srv.tmp, "d2")}), f)
        r = srv.cli("--check-config", good)
        self.assertEqual(r.returncode, 0, "good config rejected: %s" % r.stderr)
        bad_cases = {
            "workers": harness.deep_merge(srv.config, {"workers": "many"}),
            "bogus_key": harness.deep_merge(srv.config, {"bogus_key": 1}),
            "max_body_bytes": harness.deep_merge(srv.config, {"limits": {"max_body_bytes": "big"}}),
            "anonymous_read": harness.deep_merge(srv.config, {"auth": {"anonymous_read": "yes"}}),
        }
        for key, cfg in bad_cases.items():
            with self.subTest(key=key):
                path = os.path.join(srv.tmp, "bad-%s.json" % key)
                with open(path, "w") as f:
                    json.dump(cfg, f)
                r = srv.cli("--check-config", path)
                self.assertNotEqual(r.returncode, 0, "bad config accepted (%s)" % key)
                self.assertIn(key, r.stderr, "stderr does not name the key")
        path = os.path.join(srv.tmp, "broken.json")
        with open(path, "w") as f:
            f.write('{"listen": ')
        r = srv.cli("--check-config", path)
        self.assertNotEqual(r.returncode, 0)
        r = srv.cli("--check-config", os.path.join(srv.tmp, "missing.json"))
        self.assertNotEqual(r.returncode, 0)

    def test_bad_config_fails_start(self):
        other = harness.other_cert_dir()
        cases = [
            ("workers", {"workers": -3}),
            ("tls", {"tls": {"key": os.path.join(other, "server.key")}}),       # key/cert mismatch
            ("tls", {"tls": {"cert": os.path.join(self.server.tmp, "nope.crt")}}),
        ]
        for i, (word, over) in enumerate(cases):
            with self.subTest(case=over):
                cfg = harness.deep_merge(self.server.config, over)
                cfg["data_dir"] = os.path.join(self.server.tmp, "bad-data-%d" % i)
                path = os.path.join(self.server.tmp, "bad-start-%d.json" % i)
                with open(path, "w") as f:
                    json.dump(cfg, f)
                try:
                    r = self.server.cli("--config", path, timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail("repod started (did not exit) with %s" % over)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(word, r.stderr)
                self.assertNotIn("listening on", r.stderr)

    def test_version_and_help(self):
        r = self.server.cli("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout + r.stderr, r"\d+\.\d+\.\d+")
        r = self.server.cli("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--config", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
