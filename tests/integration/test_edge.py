"""The HTTPS edge: request framing and limits decided from the head (JSON
400 / 413 / 431 before any body is read), TLS policy (tls.ciphers,
tls.min_version), one process per listening address, and SIGHUP reloading
the certificate named by the config file now (SPEC 1, 2, 10, 12;
docs/tls.md)."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import harness
from harness import RepodTestCase, Server

OPENSSL = shutil.which("openssl")


def s_client(port, *args):
    """Runs `openssl s_client` against 127.0.0.1:port with args; returns
    (handshake succeeded, output).  No certificate verification: these
    tests are about which versions and suites are negotiated."""
    r = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30, text=True)
    out = r.stdout
    ok = r.returncode == 0 and "Cipher is (NONE)" not in out and "New, " in out
    return ok, out


def negotiated(out):
    """The cipher s_client reports, or None."""
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Cipher is "):
            return line[len("Cipher is "):]
        if line.startswith("New, ") and ", Cipher is " in line:
            return line.split(", Cipher is ", 1)[1].strip()
    return None


def rsa_cert_dir():
    """A self-signed RSA certificate for 127.0.0.1 (the dev certificates are
    ECDSA), in a temp folder removed by the caller."""
    d = tempfile.mkdtemp(prefix="repod-it-rsa-")
    r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                        "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", os.path.join(d, "server.key"),
                        "-out", os.path.join(d, "server.crt")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        shutil.rmtree(d, True)
        raise RuntimeError("openssl req failed: %s" % r.stderr.decode(errors="replace"))
    return d


MAX_BODY = 4096
LIST = b"POST /repository/v1/plugin/list HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def exchange(port, pieces, timeout=5.0):
    """Sends pieces (bytes, each its own TLS record, a short pause between)
    over one TLS connection and reads until the server closes it or timeout.
    Returns (answers, closed): answers is a list of (status, headers dict,
    body bytes); closed tells whether the server ended the connection."""
    s = harness.tls_socket(port)
    data, closed = b"", False
    try:
        for i, p in enumerate(pieces):
            if i:
                time.sleep(0.05)
            try:
                s.sendall(p)
            except (ConnectionError, ssl.SSLError, OSError):
                break
        s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionError, ssl.SSLError, OSError):
                closed = True
                break
            if not b:
                closed = True
                break
            data += b
    finally:
        s.close()
    answers = []
    while data.startswith(b"HTTP/1.1 "):
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(hdrs.get("content-length", "0"))
        answers.append((int(lines[0].split()[1]), hdrs, rest[:n]))
        data = rest[n:]
    return answers, closed


class FramingTest(RepodTestCase):
    """Request heads are judged as they arrive: bad framing is a JSON 400,
    an oversized head a JSON 431, an oversized body a JSON 413 decided from
    the head, and the connection is closed."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server({"limits": {"max_body_bytes": MAX_BODY}}, start=False, name="framing")
        try:
            cls.admin = cls.server.make_token("domain-f", "admin")
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise
        cls.auth = b"Authorization: Bearer " + cls.admin.encode() + b"\r\n"

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def assertRefused(self, pieces, status, code, before=0):
        """The connection gets `before` normal answers, then one JSON error
        (status, code) with Connection: close, and is closed."""
        answers, closed = exchange(self.server.port, pieces)
        self.assertEqual(len(answers), before + 1, "answers: %r%s" % (answers, self.server.describe()))
        st, hdrs, body = answers[-1]
        self.assertEqual(st, status, "%r%s" % (answers, self.server.describe()))
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        self.assertEqual(hdrs.get("connection", "").lower(), "close")
        detail = json.loads(body)["detail"]
        self.assertEqual(detail["code"], code)
        self.assertIsInstance(detail["message"], str)
        self.assertTrue(closed, "connection left open after the refusal")
        for st, _, _ in answers[:-1]:
            self.assertEqual(st, 200)
        self.assertEqual(self.server.request("/healthz", method="GET").status, 200)
        return detail

    # -- Content-Length / Transfer-Encoding ---------------------------------

    def test_differing_content_lengths_400(self):
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        head = LIST + self.auth + b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}" + smuggled
        detail = self.assertRefused([head], 400, "ERROR_BAD_REQUEST")
        self.assertIn("Content-Length", detail["message"])
        # The same with the head split over several TLS records.
        self.assertRefused([LIST + self.auth + b"Content-Length: 2\r\n",
                            b"Content-Length: 40\r\n", b"\r\n{}" + smuggled], 400,
                           "ERROR_BAD_REQUEST")

    def test_identical_content_lengths_accepted(self):
        answers, _ = exchange(self.server.port, [LIST + self.auth + b"Content-Length: 2\r\n"
                                                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"])
        self.assertEqual([a[0] for a in answers], [200], answers)

    def test_content_length_and_transfer_encoding_400(self):
        for hdrs in (b"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n",
                     b"Transfer-Encoding: chunked\r\nContent-Length: 7\r\n"):
            with self.subTest(hdrs=hdrs):
                self.assertRefused([LIST + self.auth + hdrs + b"\r\n2\r\n{}\r\n0\r\n\r\n"], 400,
                                   "ERROR_BAD_REQUEST")

    def test_other_bad_framing_400(self):
        cases = [
            LIST + self.auth + b"Transfer-Encoding: gzip\r\n\r\n{}",
            LIST + self.auth + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            LIST + self.auth + b"Content-Length: 2x\r\n\r\n{}",
            LIST + self.auth + b"Content-Length: -1\r\n\r\n{}",
            LIST + self.auth + b"Content-Length : 2\r\n\r\n{}",
            LIST + self.auth + b"X-A: b\r\n  folded\r\nContent-Length: 2\r\n\r\n{}",
            LIST + self.auth + b"Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\n{}\r\n0\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello",
            LIST + self.auth + b"NoColonHere\r\nContent-Length: 2\r\n\r\n{}",
            LIST + self.auth + b"Content-Length\x00: 2\r\n\r\n{}",
            LIST + self.auth + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nbad trailer\r\n\r\n",
            b"GET /healthz\r\n\r\n",
            b"\r\nGET /healthz HTTP/1.1\r\n\r\n",
        ]
        for i, raw in enumerate(cases):
            with self.subTest(case=i, tail=raw[-30:]):
                self.assertRefused([raw], 400, "ERROR_BAD_REQUEST")

    # -- sizes ----------------------------------------------------------------

    def test_head_over_limit_431(self):
        big = b"Authorization: Bearer " + b"a" * 100000 + b"\r\n"
        detail = self.assertRefused([LIST + big + b"Content-Length: 2\r\n\r\n{}"], 431,
                                    "ERROR_REQUEST_HEADER_TOO_LARGE")
        self.assertIn("limits.max_header_bytes", detail["message"])
        # Many small lines, sent line by line, add up the same way.
        lines = [b"X-Pad-%d: %s\r\n" % (i, b"p" * 200) for i in range(100)]
        self.assertRefused([LIST + self.auth + b"Content-Length: 2\r\n"] + lines + [b"\r\n{}"],
                           431, "ERROR_REQUEST_HEADER_TOO_LARGE")
        # A request line alone over the limit.
        self.assertRefused([b"GET /" + b"x" * 20000 + b" HTTP/1.1\r\n\r\n"], 431,
                           "ERROR_REQUEST_HEADER_TOO_LARGE")
        self.assertGreaterEqual(self.server.access_count("plugin/list", 431), 2)

    def test_declared_body_over_limit_413_from_the_head(self):
        # Nothing of the body is sent: the answer comes from the head alone.
        for declared in (MAX_BODY + 1, 50000000):
            with self.subTest(declared=declared):
                head = LIST + self.auth + b"Content-Type: application/json\r\n" \
                    + b"Content-Length: %d\r\n\r\n{" % declared
                detail = self.assertRefused([head], 413, "ERROR_REQUEST_TOO_LARGE")
                self.assertIn("limits.max_body_bytes", detail["message"])
        self.assertGreaterEqual(self.server.access_count("plugin/list", 413), 2)

    def test_body_over_limit_any_size_json_413(self):
        # Clients that send the whole body before reading still get the answer.
        for size in (MAX_BODY + 1, 4 * MAX_BODY + 1, 100 * MAX_BODY, 5 * 1024 * 1024):
            with self.subTest(size=size):
                r = self.server.request("plugin/list", b" " * (size - 2) + b"{}", token=self.admin)
                self.assertError(r, 413, "ERROR_REQUEST_TOO_LARGE")
                self.assertEqual((r.headers.get("Connection") or "").lower(), "close")
        r = self.server.request("plugin/list", b" " * (MAX_BODY - 2) + b"{}", token=self.admin)
        self.assertOK(r)

    def test_chunked_body(self):
        body = json.dumps({"query": {"page": {"limit": 1}}}).encode()
        chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
        second = LIST + self.auth + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        answers, _ = exchange(self.server.port,
                              [LIST + self.auth + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + second])
        self.assertEqual([a[0] for a in answers], [200, 200], answers)
        # Over the limit while streaming: 413 once the chunk sizes pass it.
        self.assertRefused([LIST + self.auth + b"Transfer-Encoding: chunked\r\n\r\n",
                            b"800\r\n" + b" " * 0x800 + b"\r\n", b"900\r\n"], 413,
                           "ERROR_REQUEST_TOO_LARGE")

    def test_pipelined_good_then_refused(self):
        good = LIST + self.auth + b"Content-Length: 2\r\n\r\n{}"
        bad = LIST + self.auth + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
        self.assertRefused([good + good + bad], 400, "ERROR_BAD_REQUEST", before=2)


@unittest.skipIf(OPENSSL is None, "openssl command not installed")
class TlsPolicyTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = Server(name="tlspolicy")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()

    def assertHandshake(self, port, *args, cipher=None):
        ok, out = s_client(port, *args)
        self.assertTrue(ok, "handshake with %s failed:\n%s" % (" ".join(args), out[-1500:]))
        if cipher is not None:
            self.assertEqual(negotiated(out), cipher, out[-1500:])
        return out

    def assertNoHandshake(self, port, *args):
        ok, out = s_client(port, *args)
        self.assertFalse(ok, "handshake with %s succeeded:\n%s" % (" ".join(args), out[-1500:]))

    def test_tls12_ecdhe_aead_suites_work(self):
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            with self.subTest(suite=suite):
                self.assertHandshake(self.server.port, "-tls1_2", "-cipher", suite, cipher=suite)

    def test_tls12_cbc_and_static_rsa_suites_refused(self):
        for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-SHA",
                      "AES128-GCM-SHA256"):
            with self.subTest(suite=suite):
                self.assertNoHandshake(self.server.port, "-tls1_2", "-cipher", suite)

    def test_server_order_wins(self):
        # The client lists ChaCha20 first; the server's list puts AES128-GCM first.
        self.assertHandshake(self.server.port, "-tls1_2", "-cipher",
                             "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256",
                             cipher="ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_tls13_works_tls11_refused(self):
        out = self.assertHandshake(self.server.port, "-tls1_3")
        self.assertIn("TLSv1.3", out)
        self.assertNoHandshake(self.server.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")

    def test_rsa_certificate(self):
        d = rsa_cert_dir()
        self.addCleanup(shutil.rmtree, d, True)
        srv = Server({"tls": {"cert": os.path.join(d, "server.crt"),
                              "key": os.path.join(d, "server.key")}}, name="tlsrsa")
        self.addCleanup(srv.close)
        self.assertHandshake(srv.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256",
                             cipher="ECDHE-RSA-AES128-GCM-SHA256")
        self.assertNoHandshake(srv.port, "-tls1_2", "-cipher", "AES128-SHA")
        self.assertNoHandshake(srv.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")
        self.assertNoHandshake(srv.port, "-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256")
        srv.stop()

    def test_min_version_tls13(self):
        srv = Server({"tls": {"min_version": "TLS1.3"}}, name="tls13")
        self.addCleanup(srv.close)
        self.assertNoHandshake(srv.port, "-tls1_2")
        self.assertHandshake(srv.port, "-tls1_3")
        srv.stop()

    def test_custom_ciphers_honoured(self):
        srv = Server({"tls": {"ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305"}}, name="tlsciphers")
        self.addCleanup(srv.close)
        self.assertNoHandshake(srv.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertHandshake(srv.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305",
                             cipher="ECDHE-ECDSA-CHACHA20-POLY1305")
        self.assertHandshake(srv.port, "-tls1_3")  # TLS 1.3 keeps its own suites
        srv.stop()

    def test_bad_policy_fails_config(self):
        cases = [("tls.ciphers", {"tls": {"ciphers": "NO-SUCH-CIPHER"}}),
                 ("tls.ciphers", {"tls": {"ciphers": ""}}),
                 ("tls.min_version", {"tls": {"min_version": "TLS1.1"}})]
        for i, (key, over) in enumerate(cases):
            with self.subTest(case=over):
                cfg = harness.deep_merge(self.server.config, over)
                cfg["data_dir"] = os.path.join(self.server.tmp, "policy-data-%d" % i)
                path = os.path.join(self.server.tmp, "policy-%d.json" % i)
                with open(path, "w") as f:
                    json.dump(cfg, f)
                for args in (("--check-config", path), ("--config", path)):
                    r = self.server.cli(*args, timeout=15)
                    self.assertNotEqual(r.returncode, 0, "accepted: %s" % (over,))
                    self.assertIn("%s: %s:" % (path, key), r.stderr)
                self.assertFalse(os.path.exists(cfg["data_dir"]), "a failed start wrote data_dir")


class PortOwnershipTest(RepodTestCase):
    """A second process on a busy listen address fails start-up; the workers
    of one process share the port."""

    def start_fails(self, overrides, word):
        """Starts a repod with overrides and expects it to exit non-zero with
        'WORD HOST:PORT: address in use' and nothing written to data_dir."""
        srv = Server(overrides, start=False, name="busy")
        self.addCleanup(srv.close)
        try:
            r = srv.cli("--config", srv.config_path, timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("repod started on a busy address (%s)" % (overrides,))
        self.assertNotEqual(r.returncode, 0, r.stderr)
        # "FILE: listen: cannot listen on 127.0.0.1:P: Address already in use"
        self.assertRegex(r.stderr, r"(?i)\b%s: cannot listen on 127\.0\.0\.1:\d+: address "
                                   r"already in use" % word)
        self.assertNotIn("listening on", r.stderr)
        self.assertFalse(os.path.exists(srv.data_dir), "the failed start wrote its data_dir")

    def test_second_repod_on_same_port_fails(self):
        first = Server(name="owner")
        self.addCleanup(first.close)
        self.start_fails({"listen": "127.0.0.1:%d" % first.port}, "listen")
        # The first one still answers every connection (none go elsewhere).
        for _ in range(8):
            self.assertEqual(first.request("/healthz", method="GET").status, 200)
        self.assertEqual(first.stop(), 0)

    def test_python_listener_blocks_start(self):
        for reuseport in (False, True):
            with self.subTest(reuseport=reuseport):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.addCleanup(s.close)
                if reuseport:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                s.bind(("127.0.0.1", 0))
                s.listen(8)
                self.start_fails({"listen": "127.0.0.1:%d" % s.getsockname()[1]}, "listen")

    def test_metrics_listen_busy_fails_start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        self.start_fails({"metrics_listen": "127.0.0.1:%d" % s.getsockname()[1]}, "metrics_listen")

    def test_restart_on_same_port_and_workers_share_it(self):
        srv = Server({"workers": 4}, name="sameport")
        self.addCleanup(srv.close)
        port = srv.pin_port()
        for _ in range(3):
            conns = [srv.connect() for _ in range(12)]
            try:
                for c in conns:
                    self.assertEqual(srv.request("/healthz", method="GET", conn=c).status, 200)
            finally:
                for c in conns:
                    c.close()
            self.assertEqual(srv.stop(), 0)
            srv.start()   # the same port again, at once
            self.assertEqual(srv.port, port)
        srv.stop()


class CertificateReloadTest(RepodTestCase):
    """SIGHUP rebuilds TLS from the tls.* paths the config file names now."""

    @staticmethod
    def unverified():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def served_cert(self, srv):
        s = harness.tls_socket(srv.port, context=self.unverified())
        try:
            return s.getpeercert(binary_form=True)
        finally:
            s.close()

    @staticmethod
    def der(path):
        with open(path) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def wait_log(self, srv, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while text not in srv.log():
            if time.monotonic() > deadline:
                self.fail("no %r in the log%s" % (text, srv.describe()))
            time.sleep(0.05)

    def test_sighup_loads_new_paths_and_keeps_old_on_failure(self):
        srv = Server(name="reload")
        self.addCleanup(srv.close)
        first = os.path.join(srv.certs, "server.crt")
        other = harness.other_cert_dir()
        second, second_key = os.path.join(other, "server.crt"), os.path.join(other, "server.key")
        self.assertNotEqual(self.der(first), self.der(second))
        self.assertEqual(self.served_cert(srv), self.der(first))

        # A valid new pair: served after SIGHUP.
        srv.config["tls"] = {"cert": second, "key": second_key}
        srv.write_config()
        srv.sighup()
        self.wait_log(srv, "TLS certificate reloaded from %s" % second)
        self.assertEqual(self.served_cert(srv), self.der(second))

        # Broken pairs: the previous certificate stays, and the log says so.
        broken = [{"cert": first, "key": second_key},                               # mismatch
                  {"cert": os.path.join(srv.tmp, "missing.crt"), "key": second_key}]  # no file
        for n, tls in enumerate(broken, start=1):
            with self.subTest(tls=tls):
                srv.config["tls"] = tls
                srv.write_config()
                srv.sighup()
                deadline = time.monotonic() + 5
                while srv.log().count("keeping the previous certificate") < n:
                    if time.monotonic() > deadline:
                        self.fail("no 'keeping the previous certificate' line%s" % srv.describe())
                    time.sleep(0.05)
                self.assertRegex(srv.log(), r"reload: .*tls\.(cert|key): ")
                self.assertEqual(self.served_cert(srv), self.der(second))
                conn = srv.connect(self.unverified())
                try:
                    self.assertEqual(srv.request("/healthz", method="GET", conn=conn).status, 200)
                finally:
                    conn.close()

        # A config file that no longer loads: everything stays as it was.
        with open(srv.config_path, "w") as f:
            f.write('{"tls": ')
        srv.sighup()
        self.wait_log(srv, "repod.json: invalid JSON")
        self.assertRegex(srv.log(), r"reload: .*repod\.json: invalid JSON.*\n.*reload TLS: the "
                                    r"config has problems; keeping the previous certificate")
        self.assertEqual(self.served_cert(srv), self.der(second))
        srv.stop()


if __name__ == "__main__":
    unittest.main()
