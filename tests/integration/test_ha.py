"""Readers behind HAProxy: two mirrors of one upstream, conf/haproxy.cfg.example.

A real upstream repod publishes a few plugins; two real mirror repods
register it; a real haproxy (Debian's package) runs the configuration of
conf/haproxy.cfg.example, rewritten only for the ports this test picks on
127.0.0.1, the test CA, its own admin socket and short check timings.
Threads drive bounded read load (anonymous plugin get / list over TLS,
keep-alive and fresh connections) through HAProxy while:

(a) one mirror is killed with SIGKILL and, later, started again: requests
    may fail only within the health-check window after the kill (computed
    from the configuration), never after it;
(b) both mirrors are restarted one after the other with SIGTERM (the next
    only once HAProxy sees the restarted one up again): not one request
    fails.  This rests on repod's drain (limits.shutdown_grace_ms): /readyz
    answers 503 and answers close their connections before the listener
    closes.

The counts are printed.  Skipped when haproxy is not installed
(tools/install-deps.sh installs it).
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import registry_util
import test_openapi
from harness import RepodTestCase, Server, plugin_body

HAPROXY_BIN = shutil.which("haproxy") or "/usr/sbin/haproxy"
EXAMPLE = os.path.join(harness.SOURCE_DIR, "conf", "haproxy.cfg.example")
INTER_MS = 200
FALL = 2
RISE = 2
CHECK_TIMEOUT_MS = 500
GRACE_MS = 1500  # > FALL * INTER_MS + CHECK_TIMEOUT_MS
THREADS = 4
PLUGINS = ["mk-%d" % i for i in range(4)]


def haproxy_config(front_port, backends, ca_file, admin_sock):
    """conf/haproxy.cfg.example with this test's addresses and timings."""
    with open(EXAMPLE) as f:
        text = f.read()
    subs = [
        (r"bind \S+", "bind 127.0.0.1:%d" % front_port),
        (r"stats socket \S+", "stats socket %s" % admin_sock),
        (r"ca-file \S+", "ca-file %s" % ca_file),
        (r"repod\.example\.com", "localhost"),
        (r"inter \S+", "inter %dms" % INTER_MS),
        (r"fall \d+", "fall %d" % FALL),
        (r"rise \d+", "rise %d" % RISE),
        (r"timeout check \S+", "timeout check %dms" % CHECK_TIMEOUT_MS),
        (r"maxconn \d+", "maxconn 1000"),  # within the test machine's open-file limit
    ]
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        if n == 0:
            raise AssertionError("the example has no %r any more" % pat)
    servers = re.findall(r"^\s*server \S+ \S+.*$", text, re.M)
    if len(servers) != len(backends):
        raise AssertionError("the example has %d servers, the test %d" %
                             (len(servers), len(backends)))
    for line, (name, port) in zip(servers, backends):
        text = text.replace(line, "    server %s 127.0.0.1:%d" % (name, port), 1)
    return text


def example_setting(pattern, default=None):
    with open(EXAMPLE) as f:
        m = re.search(pattern, f.read())
    return m.group(1) if m else default


class HAProxy:
    def __init__(self, tmp, front_port, backends, ca_file):
        self.dir = tmp
        self.port = front_port
        self.sock = os.path.join(tmp, "admin.sock")
        self.cfg = os.path.join(tmp, "haproxy.cfg")
        self.log = os.path.join(tmp, "haproxy.log")
        with open(self.cfg, "w") as f:
            f.write(haproxy_config(front_port, backends, ca_file, self.sock))
        r = subprocess.run([HAPROXY_BIN, "-c", "-f", self.cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise AssertionError("haproxy -c refused the config:\n%s" % r.stdout.decode())
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen([HAPROXY_BIN, "-db", "-f", self.cfg],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, preexec_fn=registry_util._die_with_parent)
        finally:
            logf.close()

    def describe(self):
        try:
            with open(self.log, errors="replace") as f:
                return "\n--- haproxy log ---\n" + "".join(f.readlines()[-40:])
        except OSError:
            return ""

    def states(self):
        """{server name: status} of the backend ('UP', 'DOWN', ...); {} while
        the admin socket is not there yet."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(self.sock)
                s.sendall(b"show stat\n")
                data = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        cols = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(cols, line.split(",")))
            if row.get("pxname") == "repod_mirrors" and row.get("svname") not in ("BACKEND", None):
                out[row["svname"]] = row.get("status", "")
        return out

    def wait_state(self, name, want, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited%s" % self.describe())
            if self.states().get(name, "").startswith(want):
                return
            time.sleep(0.05)
        raise AssertionError("%s not %s in HAProxy within %.0fs: %r%s" %
                             (name, want, timeout, self.states(), self.describe()))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Load:
    """THREADS threads reading through HAProxy until stop(); half reuse one
    keep-alive connection, half open a fresh connection per request.
    Every request is recorded as (monotonic end time, ok, what)."""

    def __init__(self, port, ctx):
        self.port = port
        self.ctx = ctx
        self.lock = threading.Lock()
        self.results = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)

    def connect(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self.ctx)

    def run(self, idx):
        keep = idx % 2 == 0
        conn = self.connect() if keep else None
        n = 0
        while not self.stopping.is_set() and n < 100000:
            n += 1
            if n % 3 == 0:
                path, body = "/repository/v1/plugin/list", {}
            else:
                path, body = "/repository/plugin/get", {"plugin_id": PLUGINS[n % len(PLUGINS)]}
            c = conn if keep else self.connect()
            ok, what = False, ""
            try:
                c.request("POST", path, body=json.dumps(body),
                          headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                data = resp.read()
                ok = resp.status == 200
                what = "HTTP %d %s" % (resp.status, data[:120])
            except (OSError, http.client.HTTPException) as e:
                what = "%s: %s" % (type(e).__name__, e)
                c.close()
            finally:
                if not keep:
                    c.close()
            with self.lock:
                self.results.append((time.monotonic(), ok, what))
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def snapshot(self, since=0.0):
        with self.lock:
            return [r for r in self.results if r[0] >= since]


def counts(results):
    fails = [r for r in results if not r[1]]
    return len(results), len(fails), fails


def load_for(seconds):
    time.sleep(seconds)


_skip = None if os.access(HAPROXY_BIN, os.X_OK) else \
    "needs haproxy (Debian package haproxy; tools/install-deps.sh installs it)"


@unittest.skipIf(_skip, _skip)
class HighAvailabilityTest(RepodTestCase):
    @classmethod
    def setUpClass(cls):
        cls.servers = []
        cls.haproxy = None
        cls.tmp = tempfile.mkdtemp(prefix="repod-ha-")
        try:
            up = Server(start=False, name="ha-U", overrides={"auth": {"public_domains": ["market"]}})
            cls.servers.append(up)
            adm = up.make_token("market", "admin")
            up.start()
            for pid in PLUGINS:
                r = up.api("plugin/register", plugin_body("market/" + pid), token=adm)
                assert r.status == 200, (r.status, r.body)
            cls.mirrors = []
            for i in (1, 2):
                m = Server(start=False, name="ha-M%d" % i,
                           overrides={"limits": {"shutdown_grace_ms": GRACE_MS}})
                cls.servers.append(m)
                sysm = m.make_token("root", "system")
                m.start()
                m.pin_port()
                r = m.api("repository/register",
                          {"name": "Market", "repository_type": "remote", "endpoint": up.endpoint,
                           "upstream": {"ca_file": m.ca_file}}, token=sysm)
                assert r.status == 200, (r.status, r.body, m.describe())
                r = m.api("repository/sync", {"repository_id": r.body["repository_id"]},
                          token=sysm)
                assert r.status == 200, (r.status, r.body)
                cls.mirrors.append(m)
            cls.haproxy = HAProxy(cls.tmp, harness.free_port(),
                                  [("mirror1", cls.mirrors[0].port),
                                   ("mirror2", cls.mirrors[1].port)],
                                  cls.mirrors[0].ca_file)
            for name in ("mirror1", "mirror2"):
                cls.haproxy.wait_state(name, "UP")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.haproxy is not None:
            cls.haproxy.close()
        for s in reversed(cls.servers):
            try:
                if s.running():
                    s.stop(expect_code=None)
            finally:
                s.close()
        if os.environ.get("REPOD_KEEP_TMP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def ctx(self):
        return harness.client_context(self.mirrors[0].ca_file)

    def test_0_haproxy_balances_over_both_mirrors(self):
        c = http.client.HTTPSConnection("127.0.0.1", self.haproxy.port, timeout=10,
                                        context=self.ctx())
        try:
            for pid in PLUGINS:
                c.request("POST", "/repository/v1/plugin/get", body=json.dumps({"plugin_id": pid}))
                r = c.getresponse()
                body = json.loads(r.read())
                self.assertEqual((r.status, body["plugin_id"]), (200, pid))
        finally:
            c.close()
        for _ in range(8):  # fresh connections: round robin reaches both
            c = http.client.HTTPSConnection("127.0.0.1", self.haproxy.port, timeout=10,
                                            context=self.ctx())
            c.request("POST", "/repository/v1/plugin/list", body="{}")
            self.assertEqual(c.getresponse().status, 200)
            c.close()
        for m in self.mirrors:
            self.assertTrue(m.wait_log("access POST /repository/v1/plugin/list 200"),
                            "a mirror got no request" + m.describe())

    def test_1_sigkill_fails_only_within_the_check_window(self):
        m1 = self.mirrors[0]
        # the window in which HAProxy may still send to a dead mirror:
        # fall checks inter apart, each up to timeout check, plus one
        # inter of phase and a margin for a loaded machine
        window_s = ((FALL + 1) * INTER_MS + FALL * CHECK_TIMEOUT_MS) / 1000.0 + 1.0
        load = Load(self.haproxy.port, self.ctx()).start()
        try:
            load_for(1.0)
            t_kill = time.monotonic()
            m1.kill9()
            self.haproxy.wait_state("mirror1", "DOWN")
            t_down = time.monotonic()
            load_for(2.0)
            m1.start()
            self.haproxy.wait_state("mirror1", "UP")
            load_for(1.0)
        finally:
            load.stop()
        total, nfail, fails = counts(load.snapshot())
        before = [f for f in fails if f[0] < t_kill]
        late = [f for f in fails if f[0] > t_kill + window_s]
        print("\nHA (a) SIGKILL: %d requests, %d failed, all within %.2fs of the kill "
              "(marked down after %.2fs; window %.2fs)" %
              (total, nfail, max([f[0] - t_kill for f in fails] or [0]), t_down - t_kill,
               window_s))
        self.assertGreater(total, 50)
        self.assertEqual(before, [], "failures before the kill")
        self.assertEqual(late, [], "failures after the check window%s" % self.haproxy.describe())
        self.assertLessEqual(t_down - t_kill, window_s)

    def test_2_rolling_sigterm_restart_loses_nothing(self):
        load = Load(self.haproxy.port, self.ctx()).start()
        try:
            load_for(0.5)
            for name, m in zip(("mirror1", "mirror2"), self.mirrors):
                m.stop()  # SIGTERM: drains, exits 0
                self.assertTrue(m.wait_log("shutdown: draining for %dms" % GRACE_MS),
                                m.describe())
                self.assertEqual(self.haproxy.states().get(name, "")[:4], "DOWN")
                m.start()
                self.haproxy.wait_state(name, "UP")
                load_for(0.5)
        finally:
            load.stop()
        total, nfail, fails = counts(load.snapshot())
        print("\nHA (b) rolling SIGTERM restart of both mirrors: %d requests, %d failed" %
              (total, nfail))
        self.assertGreater(total, 50)
        self.assertEqual(fails[:5], [], "requests lost in a rolling restart%s" %
                         self.haproxy.describe())


class DrainTest(RepodTestCase):
    """SIGTERM with limits.shutdown_grace_ms: /readyz 503 "draining" while
    the API still answers (closing each connection), then a clean exit."""

    def test_drain_before_the_listener_closes(self):
        with Server({"limits": {"shutdown_grace_ms": 3000}}, name="drain") as srv:
            self.server = srv
            conn = srv.connect()
            self.assertOK(srv.request("plugin/list", {}, conn=conn))
            self.assertOK(srv.request("/readyz", method="GET"))
            srv.signal(signal.SIGTERM)
            self.assertTrue(srv.wait_log("shutdown: draining for 3000ms"), srv.describe())
            r = srv.request("/readyz", method="GET")
            self.assertEqual((r.status, r.body), (503, {"status": "draining"}))
            doc = test_openapi.load_doc()  # the answer is the documented one
            schema = doc["paths"]["/readyz"]["get"]["responses"]["503"]["content"]
            v = test_openapi.schema_validator(doc, schema["application/json"]["schema"])
            self.assertEqual(test_openapi.errors_of(v, r.body), [])
            self.assertEqual(r.headers.get("Connection"), "close")
            r = srv.request("plugin/list", {}, conn=conn)  # the keep-alive one
            self.assertOK(r)
            self.assertEqual(r.headers.get("Connection"), "close")
            self.assertOK(srv.request("plugin/list", {}))  # a new connection
            self.assertEqual(srv.stop(), 0)
            self.assertIn("shutdown: drained", srv.log())
            conn.close()

    def test_no_grace_by_default(self):
        with Server(name="nodrain") as srv:
            self.server = srv
            self.assertEqual(srv.stop(), 0)
            self.assertNotIn("draining", srv.log())


if __name__ == "__main__":
    unittest.main()
