"""The HTTPS edge: TLS policy (tls.ciphers, tls.min_version), one process per
listening address, and SIGHUP reloading the certificate named by the config
file now (SPEC 1, 10, 12; docs/tls.md)."""

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
        self.assertRegex(r.stderr, r"repod: %s 127\.0\.0\.1:\d+: address in use" % word)
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
                self.assertRegex(srv.log(), r"reload TLS: .*tls\.(cert|key).*; keeping the previous "
                                            r"certificate")
                self.assertEqual(self.served_cert(srv), self.der(second))
                conn = srv.connect(self.unverified())
                try:
                    self.assertEqual(srv.request("/healthz", method="GET", conn=conn).status, 200)
                finally:
                    conn.close()
        srv.stop()


if __name__ == "__main__":
    unittest.main()
