"""The operator tools (SPEC 11): repod-warmup against a real mirror of a real
upstream, and repoctl round trips against one repod.

The binaries are $REPOD_BUILD_DIR/repod-warmup and $REPOD_BUILD_DIR/repoctl
(ctest sets REPOD_BUILD_DIR; default <repo>/build).  Every tool run gets a
clean environment: no REPOD_* variables from the caller and a temporary HOME,
so a developer's ~/.config/repoctl/config.json never leaks in.
"""

import collections
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler

import harness
from harness import SEED_JIRA_REGISTER, RepodTestCase, Server, free_port, plugin_body

WARMUP = os.path.join(harness.BUILD_DIR, "repod-warmup")
REPOCTL = os.path.join(harness.BUILD_DIR, "repoctl")
TOOL_TIMEOUT_S = 180

MARKET_DOMAIN = "market"
MARKET_PLUGINS = 300
MARKET_TEMPLATES = ["mk-dash-a", "mk-dash-b"]
PROVIDERS = ("aws", "google", "azure", "atlassian", "slack")
RESOURCE_TYPES = ("inventory.Collector", "monitoring.DataSource", "notification.Protocol")


def tool_env(extra=None, home=None):
    """os.environ without REPOD_* / XDG_CONFIG_HOME, HOME set to home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("REPOD_") and k != "XDG_CONFIG_HOME"}
    if home is not None:
        env["HOME"] = home
    env.update(extra or {})
    return env


def run_tool(argv, env=None, timeout=TOOL_TIMEOUT_S, stdin_text=None):
    """Runs a tool; returns CompletedProcess with text stdout/stderr."""
    stdin = None if stdin_text is not None else subprocess.DEVNULL
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, input=stdin_text,
                          stdin=stdin, env=env, timeout=timeout, text=True)


def describe_run(p):
    return "\nexit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (p.returncode, p.stdout[-6000:],
                                                                  p.stderr[-6000:])


def need_binaries(*paths):
    for p in paths:
        if not os.access(p, os.X_OK):
            raise unittest.SkipTest("tool not built: %s (cmake --build build)" % p)


def market_plugin(i):
    """The i-th public marketplace plugin (register body)."""
    return plugin_body("market/mk-plugin-%03d" % i, name="Market Plugin %03d" % i,
                       resource_type=RESOURCE_TYPES[i % len(RESOURCE_TYPES)],
                       provider=PROVIDERS[i % len(PROVIDERS)], labels=["market", "n%d" % (i % 7)])


# --------------------------------------------------------------------------
# repod-warmup

class WarmupTest(RepodTestCase):
    """Upstream U (a public marketplace of 300 plugins) and mirror M with U
    registered as the remote repository "Market".  Tests run in name order;
    test_9 stops U, so it is last."""

    @classmethod
    def setUpClass(cls):
        need_binaries(WARMUP, REPOCTL)
        cls.tmp = tempfile.mkdtemp(prefix="repod-it-tools-")
        cls.upstream = cls.server = cls.mirror = None
        try:
            cls.upstream = Server({"auth": {"public_domains": [MARKET_DOMAIN]}}, start=False,
                                  name="warm-upstream")
            market_admin = cls.upstream.make_token(MARKET_DOMAIN, "admin")
            cls.upstream.start()
            conn = cls.upstream.connect()  # one keep-alive connection for all of them
            try:
                for i in range(MARKET_PLUGINS):
                    r = cls.upstream.api("plugin/register", market_plugin(i), token=market_admin,
                                         conn=conn)
                    if r.status != 200:
                        raise harness.ServerError("seeding the upstream failed at %d: %r%s" %
                                                  (i, (r.status, r.body), cls.upstream.describe()))
            finally:
                conn.close()
            for tid in MARKET_TEMPLATES:
                r = cls.upstream.api("dashboard-template/register",
                                     {"template_id": tid, "name": "Template " + tid},
                                     token=market_admin)
                if r.status != 200:
                    raise harness.ServerError("seeding a template failed: %r%s" %
                                              ((r.status, r.body), cls.upstream.describe()))
            cls.mirror = cls.server = Server(start=False, name="warm-mirror")
            cls.system = cls.mirror.make_token("ops", "system")
            cls.viewer = cls.mirror.make_token("ops", "viewer")
            cls.mirror.start()
            r = cls.mirror.api("repository/register", {
                "name": "Market", "repository_type": "remote", "endpoint": cls.upstream.endpoint,
                "upstream": {"ca_file": cls.upstream.ca_file}}, token=cls.system)
            if r.status != 200:
                raise harness.ServerError("registering the remote failed: %r%s" %
                                          ((r.status, r.body), cls.mirror.describe()))
            cls.repo_id = r.body["repository_id"]
            cls.token_file = os.path.join(cls.tmp, "system.token")
            with open(cls.token_file, "w") as f:
                f.write("  %s  \n# the rest of the file is ignored\n" % cls.system)
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _cleanup(cls):
        for s in (cls.mirror, cls.upstream):
            if s is not None:
                s.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.mirror is not None and cls.mirror.running():
                cls.mirror.stop()
            if cls.upstream is not None and cls.upstream.running():
                cls.upstream.stop()
        finally:
            cls._cleanup()

    def warmup(self, *args, token_file=True, env=None, timeout=TOOL_TIMEOUT_S):
        argv = [WARMUP, "--endpoint", self.mirror.endpoint, "--ca", self.mirror.ca_file]
        if token_file:
            argv += ["--token-file", self.token_file]
        return run_tool(argv + list(args), env=tool_env(env, home=self.tmp), timeout=timeout)

    def ctl(self, *args, token=None):
        argv = [REPOCTL, "--endpoint", self.mirror.endpoint, "--ca", self.mirror.ca_file,
                "--token", token or self.system]
        return run_tool(argv + list(args), env=tool_env(home=self.tmp))

    def summary(self, p):
        lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, "--json prints one line" + describe_run(p))
        return json.loads(lines[0])

    def all_ids(self):
        return ["mk-plugin-%03d" % i for i in range(MARKET_PLUGINS)]

    # -- repoctl on a mirror ---------------------------------------------------

    def test_0_repoctl_repository_commands(self):
        p = self.ctl("repository", "list")
        self.assertEqual(p.returncode, 0, describe_run(p))
        header = p.stdout.splitlines()[0].split()
        self.assertEqual(header[:3], ["REPOSITORY_ID", "NAME", "TYPE"], describe_run(p))
        self.assertIn("STATE", header)
        market = [ln for ln in p.stdout.splitlines() if ln.startswith(self.repo_id)]
        self.assertEqual(len(market), 1, describe_run(p))
        self.assertIn("Market", market[0])
        self.assertIn("remote", market[0])

        p = self.ctl("repository", "get", self.repo_id, "-o", "json")
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertEqual(json.loads(p.stdout)["repository_id"], self.repo_id)

        p = self.ctl("repository", "sync", self.repo_id)
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertEqual(p.stdout.splitlines()[0].split(),
                         ["REPOSITORY_ID", "PLUGINS", "DASHBOARD_TEMPLATES"])
        self.assertEqual(p.stdout.splitlines()[1].split(),
                         [self.repo_id, str(MARKET_PLUGINS), str(len(MARKET_TEMPLATES))])

        # dashboard templates through the mirror, like plugins
        p = self.ctl("dashboard", "list", "--repository-id", self.repo_id, "-o", "json",
                     token=self.viewer)
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertEqual([t["template_id"] for t in json.loads(p.stdout)["results"]],
                         MARKET_TEMPLATES)
        p = self.ctl("dashboard", "get", "mk-dash-b", token=self.viewer)
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertIn("mk-dash-b", p.stdout)
        self.assertIn("Market", p.stdout.splitlines()[1])

        p = self.ctl("plugin", "get", "mk-plugin-007", "--repository-id", self.repo_id,
                     token=self.viewer)
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertIn("mk-plugin-007", p.stdout)
        self.assertIn("Market", p.stdout.splitlines()[1])

        # Writes to remote plugins are refused by the server (exit 1, its code).
        p = self.ctl("plugin", "disable", "mk-plugin-007")
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_NOT_LOCAL_PLUGIN: ", p.stderr)

        # A remote whose upstream is unreachable: the server's 503, exit 1.
        spec = os.path.join(self.tmp, "dead-remote.json")
        with open(spec, "w") as f:
            json.dump({"name": "Dead", "repository_type": "remote",
                       "endpoint": "https://127.0.0.1:%d" % free_port(),
                       "upstream": {"ca_file": self.upstream.ca_file},
                       "cache": {"timeout_ms": 2000}}, f)
        p = self.ctl("repository", "register", "-f", spec)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_UPSTREAM_UNAVAILABLE: ", p.stderr)

    # -- repod-warmup ------------------------------------------------------------

    def test_1_usage_errors_exit_2(self):
        cases = [
            ([WARMUP, "--bogus"], {}),
            ([WARMUP, "--endpoint", self.mirror.endpoint], {}),                     # no token
            ([WARMUP, "--endpoint", "http://127.0.0.1:1", "--token-file", self.token_file], {}),
            ([WARMUP, "--token-file", self.token_file], {}),                         # no endpoint
            ([WARMUP, "--endpoint", self.mirror.endpoint, "--token-file", self.token_file,
              "--concurrency", "0"], {}),
            ([WARMUP, "--endpoint", self.mirror.endpoint, "--token-file", self.token_file,
              "--retries", "x"], {}),
            ([WARMUP, "--endpoint", self.mirror.endpoint, "--token-file", self.token_file,
              "--page-size", "0"], {}),
            ([WARMUP, "--endpoint", self.mirror.endpoint, "--token-file",
              os.path.join(self.tmp, "missing.token")], {}),
            ([WARMUP, "--endpoint", self.mirror.endpoint, "--token-file", self.token_file,
              "extra-argument"], {}),
        ]
        for argv, env in cases:
            p = run_tool(argv, env=tool_env(env, home=self.tmp))
            self.assertEqual(p.returncode, 2, "%s%s" % (argv, describe_run(p)))
            self.assertTrue(p.stderr.strip(), "a reason on stderr for %s" % argv)
            self.assertNotIn(self.system, p.stderr + p.stdout)
        p = run_tool([WARMUP, "--help"], env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertIn("--no-versions", p.stdout)

    def test_2_version_failures_are_reported(self):
        # The upstream has no container registry, so get-versions fails there
        # for every plugin: a non-zero exit with every failure listed.  When
        # the upstream is slow to say so (timeouts), the mirror's breaker may
        # open: the repository is then reported once and its remaining
        # plugins are not tried, so every plugin is either listed or counted
        # as not tried.
        p = self.warmup("--retries", "1", "--concurrency", "16")
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("repositories synced  1/1", p.stdout, describe_run(p))
        self.assertIn("plugins              %d" % MARKET_PLUGINS, p.stdout)
        self.assertIn("version lists        0/%d fetched" % MARKET_PLUGINS, p.stdout)
        self.assertIn(": %d plugins, %d dashboard templates" %
                      (MARKET_PLUGINS, len(MARKET_TEMPLATES)), p.stderr, describe_run(p))
        listed = [ln for ln in p.stdout.splitlines() if ln.startswith("  get-versions plugin ")]
        whole = [ln for ln in p.stdout.splitlines()
                 if ln.startswith("  get-versions repository ")]
        self.assertLessEqual(len(whole), 1, describe_run(p))
        self.assertIn("failures             %d" % (len(listed) + len(whole)), p.stdout)
        not_tried = int(p.stdout.split(" not tried after")[0].rsplit(", ", 1)[1])
        self.assertEqual(len(listed) + len(whole) + not_tried, MARKET_PLUGINS, describe_run(p))
        if not whole:
            self.assertEqual(len(listed), MARKET_PLUGINS, describe_run(p))
        for ln in listed:
            self.assertRegex(ln, r"^  get-versions plugin mk-plugin-\d{3} in repository "
                                 r"repo-[0-9a-f]{12}: ERROR_[A-Z_]+: .+"
                                 r"\(HTTP 5\d\d, \d attempts?\)$")
        self.assertIn(self.repo_id, (listed + whole)[0])
        # 503s are transient: each got one retry.
        self.assertIn("(HTTP 503, 2 attempts)", p.stdout)
        # Plain progress lines (stderr is not a terminal).
        self.assertRegex(p.stderr, r"repod-warmup: versions %d/%d \(100%%\)" %
                         (MARKET_PLUGINS, MARKET_PLUGINS))
        self.assertNotIn("\r", p.stderr)
        self.assertNotIn(self.system, p.stdout + p.stderr)

        # The same failures, counted in the --json summary.
        p = self.warmup("--json", "--retries", "0")
        self.assertEqual(p.returncode, 1, describe_run(p))
        s = self.summary(p)
        self.assertFalse(s["ok"])
        self.assertEqual(s["repositories_synced"], 1)
        self.assertEqual(s["plugins"], MARKET_PLUGINS)
        self.assertFalse(s["versions_skipped"])
        self.assertEqual(s["versions_fetched"], 0)
        self.assertEqual(s["versions_failed"], MARKET_PLUGINS)
        self.assertEqual(s["failure_count"], len(s["failures"]))
        per_plugin = [f["plugin_id"] for f in s["failures"] if f["plugin_id"] is not None]
        self.assertLessEqual(len(s["failures"]) - len(per_plugin), 1, s["failures"])
        self.assertEqual(len(s["failures"]) + s["versions_not_tried"], MARKET_PLUGINS)
        self.assertLessEqual(set(per_plugin), set(self.all_ids()))
        self.assertEqual(len(set(per_plugin)), len(per_plugin))
        for f in s["failures"]:
            self.assertEqual(f["stage"], "get-versions")
            self.assertEqual(f["repository_id"], self.repo_id)
            self.assertGreaterEqual(f["status"], 500)
            self.assertRegex(f["code"], r"^ERROR_[A-Z_]+$")
            self.assertTrue(f["message"])
            self.assertEqual(f["attempts"], 1)
        self.assertIsInstance(s["seconds"], (int, float))

    def test_3_warmup_no_versions_then_again(self):
        p = self.warmup("--no-versions", "--json")
        self.assertEqual(p.returncode, 0, describe_run(p))
        s = self.summary(p)
        self.assertTrue(s["ok"], s)
        self.assertEqual(s["repositories_total"], 1)
        self.assertEqual(s["repositories_synced"], 1)
        self.assertEqual(s["repositories"], [{"repository_id": self.repo_id, "name": "Market",
                                              "synced": True, "failed": False,
                                              "plugins": MARKET_PLUGINS}])
        self.assertEqual(s["plugins"], MARKET_PLUGINS)
        self.assertTrue(s["versions_skipped"])
        self.assertEqual(s["failures"], [])

        # Twice is harmless: same answer, fast, nothing duplicated.  This
        # run walks the catalog in pages of 64 ids (5 plugin list calls).
        lists_before = self.mirror.access_count("plugin/list", settle=True)
        started = time.monotonic()
        p = self.warmup("--no-versions", "--repository-id", self.repo_id, "--page-size", "64")
        took = time.monotonic() - started
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertEqual(self.mirror.access_count("plugin/list", settle=True) - lists_before,
                         -(-MARKET_PLUGINS // 64))
        self.assertLess(took, 15.0, "second run took %.1f s" % took)
        self.assertIn("repositories synced  1/1", p.stdout)
        self.assertIn("plugins              %d" % MARKET_PLUGINS, p.stdout)
        self.assertIn("skipped (--no-versions)", p.stdout)
        r = self.mirror.api("plugin/list", {"repository_id": self.repo_id,
                                            "query": {"count_only": True}}, token=self.system)
        self.assertEqual(self.assertOK(r)["total_count"], MARKET_PLUGINS)

        # The token may come from REPOD_TOKEN as well.
        p = self.warmup("--no-versions", token_file=False, env={"REPOD_TOKEN": self.system})
        self.assertEqual(p.returncode, 0, describe_run(p))

    def test_4_progress_bar_on_a_terminal(self):
        # stderr on a pseudo-terminal: the bar is redrawn in place.  stdout
        # goes to a file (the --json summary is larger than a pipe buffer).
        master, slave = pty.openpty()
        out_path = os.path.join(self.tmp, "tty-run.json")
        chunks = []
        try:
            with open(out_path, "w") as out_f:
                proc = subprocess.Popen(
                    [WARMUP, "--endpoint", self.mirror.endpoint, "--ca", self.mirror.ca_file,
                     "--token-file", self.token_file, "--retries", "0", "--json"],
                    stdin=subprocess.DEVNULL, stdout=out_f, stderr=slave,
                    env=tool_env(home=self.tmp))
            os.close(slave)
            slave = None
            deadline = time.monotonic() + TOOL_TIMEOUT_S
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    try:
                        b = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not b:
                        break
                    chunks.append(b)
                elif proc.poll() is not None:
                    break
            proc.wait(timeout=TOOL_TIMEOUT_S)
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        with open(out_path) as f:
            out = f.read()
        tty = b"".join(chunks).decode(errors="replace")
        self.assertEqual(proc.returncode, 1, tty)
        self.assertIn("\rversions [", tty)
        self.assertIn("%d/%d" % (MARKET_PLUGINS, MARKET_PLUGINS), tty)
        self.assertIn("ETA", tty)
        self.assertIn("/s", tty)
        s = json.loads(out)
        self.assertEqual(s["failure_count"] + s["versions_not_tried"], MARKET_PLUGINS)

    def test_9_mirror_serves_everything_after_the_upstream_is_gone(self):
        p = self.warmup("--no-versions")
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.upstream.stop()

        conn = self.mirror.connect()
        try:
            for pid in self.all_ids():
                r = self.mirror.api("plugin/get", {"plugin_id": pid}, token=self.viewer, conn=conn)
                body = self.assertOK(r, msg="plugin get %s with the upstream down" % pid)
                self.assertEqual(body["plugin_id"], pid)
                self.assertEqual(body["repository_info"]["repository_id"], self.repo_id)
                self.assertEqual(body["repository_info"]["repository_type"], "remote")
            # Anonymous readers too.
            r = self.mirror.api("plugin/get", {"plugin_id": "mk-plugin-123"}, conn=conn)
            self.assertEqual(self.assertOK(r)["provider"], PROVIDERS[123 % len(PROVIDERS)])
        finally:
            conn.close()
        r = self.mirror.api("plugin/list", {}, token=self.viewer)
        body = self.assertOK(r)
        self.assertEqual(body["total_count"], MARKET_PLUGINS)
        self.assertEqual(sorted(p["plugin_id"] for p in body["results"]), self.all_ids())
        r = self.mirror.api("plugin/stat", {"query": {"distinct": "provider"}}, token=self.viewer)
        self.assertEqual(self.assertOK(r)["results"], sorted(PROVIDERS))

        # repoctl reads the same catalog from the mirror.
        p = self.ctl("plugin", "list", "--filter", "provider=slack", "-o", "json",
                     token=self.viewer)
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertEqual(json.loads(p.stdout)["total_count"], MARKET_PLUGINS // len(PROVIDERS))

        # A warm-up now fails at the sync step, reported with the server's
        # code, and the mirror keeps serving.
        p = self.warmup("--json", "--no-versions", "--retries", "0", "--timeout-ms", "20000")
        self.assertEqual(p.returncode, 1, describe_run(p))
        s = self.summary(p)
        self.assertEqual(s["repositories_synced"], 0)
        self.assertEqual(len(s["failures"]), 1, s)
        f = s["failures"][0]
        self.assertEqual((f["stage"], f["repository_id"]), ("sync", self.repo_id))
        self.assertIn(f["code"], ("ERROR_UPSTREAM_UNAVAILABLE", "ERROR_UPSTREAM_TIMEOUT"))
        self.assertIn(f["status"], (503, 504))
        r = self.mirror.api("plugin/get", {"plugin_id": "mk-plugin-299"}, token=self.viewer)
        self.assertOK(r)


# --------------------------------------------------------------------------
# repod-warmup with version lists: a fake upstream

class FakeUpstream:
    """A minimal upstream repod over TLS (the harness certificate) that
    serves a fixed catalog and answers get-versions, which a real repod
    cannot do here (it reads no container registry).  Plugin ids in
    fail_once answer 503 the first time.  stop() also cuts every open
    keep-alive connection, so the upstream is really gone."""

    LOCAL_ID = "repo-fa4e00000001"

    def __init__(self, plugins, versions, fail_once=()):
        self.plugins = plugins
        self.versions = versions
        self.fail_once = set(fail_once)
        self.versions_delay_s = 0.0   # get-versions answers this late
        self.versions_down = False    # get-versions answers 503 (upstream trouble)
        self.calls = collections.Counter()
        self.lock = threading.Lock()
        self.conns = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.conns.append(self.connection)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                status, out = fake.route(self.path, body)
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = harness.serve_https(Handler)
        self.endpoint = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        self.stopped = False

    def route(self, path, body):
        verb = path[len(harness.API_PREFIX):]
        with self.lock:
            self.calls[verb] += 1
        if verb == "repository/list":
            return 200, {"results": [{"repository_id": self.LOCAL_ID, "name": "Fake",
                                      "repository_type": "local"}], "total_count": 1}
        if verb == "plugin/list":
            return 200, {"results": self.plugins, "total_count": len(self.plugins)}
        if verb == "plugin/get-versions":
            pid = body.get("plugin_id")
            if self.versions_down:
                return 503, {"detail": {"code": "ERROR_SERVICE_UNAVAILABLE",
                                        "message": "Service unavailable."}}
            if self.versions_delay_s:
                time.sleep(self.versions_delay_s)
            with self.lock:
                if pid in self.fail_once:
                    self.fail_once.discard(pid)
                    return 503, {"detail": {"code": "ERROR_REGISTRY_UNAVAILABLE",
                                            "message": "Registry unavailable. (flaky)"}}
            if pid not in self.versions:
                return 404, {"detail": {"code": "ERROR_NO_PLUGIN",
                                        "message": "Plugin not found. (plugin_id = %s)" % pid}}
            v = self.versions[pid]
            return 200, {"version": v, "total_count": len(v), "results": v}
        return 404, {"detail": {"code": "ERROR_UNKNOWN_ROUTE", "message": path}}

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        harness.stop_https(self.httpd)
        with self.lock:
            for c in self.conns:
                for f in (lambda: c.shutdown(socket.SHUT_RDWR), c.close):
                    try:
                        f()
                    except OSError:
                        pass


class WarmupVersionsTest(RepodTestCase):
    """The full warm-up, version lists included: the catalog of a real repod
    served by a FakeUpstream that also answers get-versions; after the
    warm-up the fake is stopped and the mirror still answers everything."""

    PLUGINS = 120
    FLAKY = ("fk-plugin-010", "fk-plugin-077")

    @classmethod
    def setUpClass(cls):
        need_binaries(WARMUP)
        cls.tmp = tempfile.mkdtemp(prefix="repod-it-tools-versions-")
        cls.fake = cls.server = None
        try:
            with Server({"auth": {"public_domains": [MARKET_DOMAIN]}}, start=False,
                        name="versions-source") as src:
                admin = src.make_token(MARKET_DOMAIN, "admin")
                src.start()
                conn = src.connect()
                for i in range(cls.PLUGINS):
                    r = src.api("plugin/register", plugin_body("acme/fk-plugin-%03d" % i,
                                                               provider=PROVIDERS[i % 5]),
                                token=admin, conn=conn)
                    if r.status != 200:
                        raise harness.ServerError("seeding failed: %r" % ((r.status, r.body),))
                conn.close()
                plugins = src.api("plugin/list", {}).body["results"]
                src.stop()
            cls.versions = {p["plugin_id"]: ["1.%d.%d" % (i % 3, i % 5), "1.0.0", "latest"]
                            for i, p in enumerate(plugins)}
            cls.fake = FakeUpstream(plugins, cls.versions, fail_once=cls.FLAKY)
            cls.server = Server(start=False, name="versions-mirror")
            cls.system = cls.server.make_token("ops", "system")
            cls.server.start()
            r = cls.server.api("repository/register", {
                "name": "Fake Market", "repository_type": "remote", "endpoint": cls.fake.endpoint,
                "upstream": {"ca_file": cls.server.ca_file}}, token=cls.system)
            if r.status != 200:
                raise harness.ServerError("registering the fake upstream failed: %r%s" %
                                          ((r.status, r.body), cls.server.describe()))
            cls.repo_id = r.body["repository_id"]
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _cleanup(cls):
        if cls.fake is not None:
            cls.fake.stop()
        if cls.server is not None:
            cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server is not None and cls.server.running():
                cls.server.stop()
        finally:
            cls._cleanup()

    def warmup(self, *args):
        return run_tool([WARMUP, "--endpoint", self.server.endpoint, "--ca", self.server.ca_file,
                         "--json"] + list(args),
                        env=tool_env({"REPOD_TOKEN": self.system}, home=self.tmp))

    def test_versions_cached_then_served_offline(self):
        self.assertEqual(self.repo_id, FakeUpstream.LOCAL_ID)
        p = self.warmup("--concurrency", "4")
        self.assertEqual(p.returncode, 0, describe_run(p))
        s = json.loads(p.stdout)
        self.assertTrue(s["ok"], s)
        self.assertEqual(s["plugins"], self.PLUGINS)
        self.assertEqual(s["versions_fetched"], self.PLUGINS)
        self.assertEqual(s["versions_failed"], 0)
        self.assertGreaterEqual(s["retries"], len(self.FLAKY))  # the flaky ones were retried
        self.assertEqual(self.fake.calls["plugin/get-versions"], self.PLUGINS + len(self.FLAKY))
        self.assertEqual(self.fake.fail_once, set())

        # Twice is harmless: the mirror answers from its fresh cache.
        p = self.warmup()
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertEqual(json.loads(p.stdout)["versions_fetched"], self.PLUGINS)
        self.assertEqual(self.fake.calls["plugin/get-versions"], self.PLUGINS + len(self.FLAKY))

        # Air-gapped: the upstream is gone, every version list is still served.
        self.fake.stop()
        conn = self.server.connect()
        try:
            for pid, versions in sorted(self.versions.items()):
                r = self.server.api("plugin/get-versions", {"plugin_id": pid}, conn=conn)
                body = self.assertOK(r, msg="get-versions %s offline" % pid)
                self.assertEqual(body["results"], versions)
                self.assertEqual(body["total_count"], len(versions))
                r = self.server.api("plugin/get", {"plugin_id": pid}, conn=conn)
                self.assertEqual(self.assertOK(r)["repository_info"]["repository_id"],
                                 self.repo_id)
        finally:
            conn.close()


class WarmupFreshnessTest(RepodTestCase):
    """Exit 0 means fresh: a warm-up after the ttl has passed refreshes the
    stale lists itself (not in the background) before it exits; and a
    repository that cannot be reached is reported once, not per plugin."""

    N = 6

    @classmethod
    def fake_plugins(cls, tag):
        out = []
        for i in range(cls.N):
            out.append({"plugin_id": "fr-plugin-%d" % i, "name": "Fresh %d %s" % (i, tag),
                        "image": "acme/fr-plugin-%d" % i, "registry_type": "DOCKER_HUB",
                        "registry_url": "https://registry.hub.docker.com",
                        "resource_type": "inventory.Collector", "provider": "aws",
                        "state": "ENABLED", "labels": [], "tags": {}, "capability": {},
                        "docs": {}, "metadata": {}, "domain_id": MARKET_DOMAIN,
                        "created_at": "2026-01-01T00:00:00.000Z",
                        "updated_at": "2026-01-01T00:00:00.000Z"})
        return out

    @classmethod
    def setUpClass(cls):
        need_binaries(WARMUP)
        cls.tmp = tempfile.mkdtemp(prefix="repod-it-tools-fresh-")
        cls.fake = cls.down = cls.server = None
        try:
            cls.fake = FakeUpstream(cls.fake_plugins("v1"),
                                    {"fr-plugin-%d" % i: ["1.0.%d" % i] for i in range(cls.N)})
            cls.down = FakeUpstream(cls.fake_plugins("d"),
                                    {"fr-plugin-%d" % i: ["1.0.0"] for i in range(cls.N)})
            cls.down.LOCAL_ID = "repo-fa4e00000002"
            cls.server = Server(start=False, name="fresh-mirror")
            cls.system = cls.server.make_token("ops", "system")
            cls.server.start()
            cls.repo_id = cls.register("Fresh", cls.fake)
            cls.down_id = cls.register("Down", cls.down)
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def register(cls, name, fake):
        r = cls.server.api("repository/register", {
            "name": name, "repository_type": "remote", "endpoint": fake.endpoint,
            "upstream": {"ca_file": cls.server.ca_file},
            "cache": {"ttl_s": 1, "timeout_ms": 5000}}, token=cls.system)
        if r.status != 200:
            raise harness.ServerError("registering %s failed: %r%s" %
                                      (name, (r.status, r.body), cls.server.describe()))
        return r.body["repository_id"]

    @classmethod
    def _cleanup(cls):
        for f in (cls.fake, cls.down):
            if f is not None:
                f.stop()
        if cls.server is not None:
            cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def warmup(self, *args, endpoint=None):
        return run_tool([WARMUP, "--endpoint", endpoint or self.server.endpoint,
                         "--ca", self.server.ca_file, "--json", "--retries", "1"] + list(args),
                        env=tool_env({"REPOD_TOKEN": self.system}, home=self.tmp))

    def test_0_sync_of_one_version_list(self):
        sync = lambda body, token=self.system: self.server.api("repository/sync", body,
                                                               token=token)
        r = sync({"repository_id": self.repo_id, "plugin_id": "fr-plugin-1"})
        self.assertEqual(self.assertOK(r), {"repository_id": self.repo_id,
                                            "plugin_id": "fr-plugin-1", "versions": 1})
        r = self.server.api("plugin/get-versions", {"plugin_id": "fr-plugin-1",
                                                    "repository_id": self.repo_id})
        self.assertEqual(self.assertOK(r)["results"], ["1.0.1"])
        self.assertEqual(r.headers.get("X-Cache"), "HIT")
        self.assertError(sync({"repository_id": self.repo_id, "plugin_id": "fr-nope"}), 404,
                         "ERROR_NO_PLUGIN")
        self.assertError(sync({"repository_id": self.repo_id, "plugin_id": ""}), 400,
                         "ERROR_INVALID_PARAMETER")
        self.assertError(sync({"repository_id": self.repo_id, "plugin_id": 7}), 400,
                         "ERROR_INVALID_PARAMETER_TYPE")
        self.assertError(sync({"repository_id": self.repo_id, "plugin": "x"}), 400)
        self.assertError(sync({"repository_id": self.repo_id, "plugin_id": "fr-plugin-1"},
                              token=None), 401)

    def test_1_after_the_ttl_warmup_waits_for_fresh_data(self):
        p = self.warmup("--repository-id", self.repo_id)
        self.assertEqual(p.returncode, 0, describe_run(p))
        time.sleep(1.2)  # ttl_s 1: every cached list is stale now
        self.fake.plugins = self.fake_plugins("v2")
        self.fake.versions = {"fr-plugin-%d" % i: ["2.0.%d" % i, "1.0.%d" % i]
                              for i in range(self.N)}
        self.fake.versions_delay_s = 1.0  # a background refresh would still be running
        p = self.warmup("--repository-id", self.repo_id)
        self.assertEqual(p.returncode, 0, describe_run(p))
        s = json.loads(p.stdout)
        self.assertEqual(s["versions_fetched"], self.N, s)
        self.assertEqual(s["versions_refreshed"], self.N, s)
        self.fake.stop()
        for i in range(self.N):
            pid = "fr-plugin-%d" % i
            r = self.server.api("plugin/get-versions", {"plugin_id": pid,
                                                        "repository_id": self.repo_id})
            self.assertEqual(self.assertOK(r)["results"], ["2.0.%d" % i, "1.0.%d" % i])
            r = self.server.api("plugin/get", {"plugin_id": pid, "repository_id": self.repo_id})
            self.assertEqual(self.assertOK(r)["name"], "Fresh %d v2" % i)

    def test_2_failing_repository_is_reported_once(self):
        self.down.versions_down = True
        p = self.warmup("--repository-id", self.down_id, "--concurrency", "2")
        self.assertEqual(p.returncode, 1, describe_run(p))
        s = json.loads(p.stdout)
        self.assertEqual(len(s["failures"]), 1, s["failures"])
        (f,) = s["failures"]
        self.assertEqual((f["stage"], f["repository_id"], f["plugin_id"]),
                         ("get-versions", self.down_id, None), f)
        self.assertEqual(f["code"], "ERROR_UPSTREAM_UNAVAILABLE", f)
        self.assertGreaterEqual(s["versions_not_tried"], 1, s)
        self.assertEqual(p.stderr.count("version lists of"), 1, p.stderr)

        # the upstream gone: the sync fails, once
        self.down.stop()
        p = self.warmup("--repository-id", self.down_id)
        self.assertEqual(p.returncode, 1, describe_run(p))
        s = json.loads(p.stdout)
        self.assertEqual([(f["stage"], f["repository_id"]) for f in s["failures"]],
                         [("sync", self.down_id)], s)

        # repoctl shows the state in its STATE column
        need_binaries(REPOCTL)
        p = run_tool([REPOCTL, "--endpoint", self.server.endpoint, "--ca", self.server.ca_file,
                      "--token", self.system, "repository", "list"],
                     env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        lines = p.stdout.splitlines()
        header = lines[0].split()
        self.assertIn("STATE", header, p.stdout)
        (row,) = [ln for ln in lines if ln.startswith(self.down_id)]
        self.assertIn("offline", row.split(), p.stdout)

    def test_3_dead_mirror_one_failure_per_repository(self):
        dead = "https://127.0.0.1:%d" % free_port()
        p = self.warmup("--repository-id", self.repo_id, "--repository-id", self.down_id,
                        endpoint=dead)
        self.assertEqual(p.returncode, 1, describe_run(p))
        s = json.loads(p.stdout)
        self.assertEqual(sorted((f["stage"], f["repository_id"]) for f in s["failures"]),
                         sorted([("sync", self.repo_id), ("sync", self.down_id)]), s)
        p = self.warmup(endpoint=dead)
        self.assertEqual(p.returncode, 1, describe_run(p))
        s = json.loads(p.stdout)
        self.assertEqual([f["stage"] for f in s["failures"]], ["list-repositories"], s)


# --------------------------------------------------------------------------
# repoctl

class RepoctlTest(RepodTestCase):
    """repoctl against one repod (local repository only)."""

    Q_PLUGINS = [  # domain-q: list / sort / page / stat cases
        ("acme/q-alpha", "Alpha", "atlassian", ["jira"]),
        ("acme/q-bravo", "Bravo", "aws", ["cloud"]),
        ("acme/q-charlie", "Charlie", "aws", ["cloud"]),
        ("acme/q-delta", "Delta", "google", []),
        ("acme/q-echo", "Echo Jira Bridge", "atlassian", ["jira", "chat"]),
    ]

    @classmethod
    def setUpClass(cls):
        need_binaries(REPOCTL)
        cls.tmp = tempfile.mkdtemp(prefix="repod-it-repoctl-")
        cls.server = Server(start=False, name="repoctl")
        try:
            cls.admin = cls.server.make_token("domain-a", "admin")
            cls.viewer = cls.server.make_token("domain-a", "viewer")
            cls.admin_q = cls.server.make_token("domain-q", "admin")
            cls.system = cls.server.make_token("domain-root", "system")
            cls.server.start()
            for image, name, provider, labels in cls.Q_PLUGINS:
                r = cls.server.api("plugin/register", plugin_body(image, name=name,
                                                                  provider=provider,
                                                                  labels=labels),
                                   token=cls.admin_q)
                if r.status != 200:
                    raise harness.ServerError("seeding failed: %r" % ((r.status, r.body),))
        except BaseException:
            cls.server.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            cls.server.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, obj):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            if isinstance(obj, str):
                f.write(obj)
            else:
                json.dump(obj, f)
        return path

    def ctl(self, *args, token=None, env=None, flags=True, stdin_text=None):
        argv = [REPOCTL]
        if flags:
            argv += ["--endpoint", self.server.endpoint, "--ca", self.server.ca_file]
            if token is not False:
                argv += ["--token", token or self.admin]
        return run_tool(argv + list(args), env=tool_env(env, home=self.tmp),
                        stdin_text=stdin_text)

    def ok(self, p):
        self.assertEqual(p.returncode, 0, describe_run(p))
        return p.stdout

    def json_out(self, p):
        return json.loads(self.ok(p))

    def table(self, p):
        """(header words, data lines) of a table output."""
        lines = self.ok(p).splitlines()
        self.assertTrue(lines, describe_run(p))
        return lines[0].split(), lines[1:]

    def api(self, path, body, token=None):
        return self.assertOK(self.server.api(path, body, token=token or self.admin))

    # -- round trip ----------------------------------------------------------------

    def test_plugin_round_trip(self):
        pid = "plugin-jira-noti-protocol"
        spec = self.write("jira.json", SEED_JIRA_REGISTER)
        header, rows = self.table(self.ctl("plugin", "register", "-f", spec))
        self.assertEqual(header, ["PLUGIN_ID", "NAME", "STATE", "PROVIDER", "RESOURCE_TYPE",
                                  "REPOSITORY"])
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0].startswith(pid + " "), rows)
        self.assertIn("ENABLED", rows[0])
        self.assertIn("atlassian", rows[0])

        # get: table, and -o json equal to the API's answer.
        header, rows = self.table(self.ctl("plugin", "get", pid))
        self.assertEqual(header[0], "PLUGIN_ID")
        self.assertIn(pid, rows[0])
        self.assertIn("JIRA Issue notification", rows[0])
        self.assertEqual(self.json_out(self.ctl("plugin", "get", pid, "-o", "json")),
                         self.api("plugin/get", {"plugin_id": pid}))
        out = self.ctl("plugin", "get", pid, "--output=json").stdout
        self.assertTrue(out.startswith("{\n  \"plugin_id\": "), out[:80])  # 2-space indent

        # list with filters.
        header, rows = self.table(self.ctl("plugin", "list", "--filter", "provider=atlassian"))
        self.assertEqual([r.split()[0] for r in rows], [pid])
        got = self.json_out(self.ctl("plugin", "list", "--filter", "name~=jira", "-o", "json"))
        self.assertEqual(got, self.api("plugin/list", {"query": {"filter": [
            {"k": "name", "v": "jira", "o": "contain"}]}}))
        self.assertEqual([p["plugin_id"] for p in got["results"]], [pid])
        got = self.json_out(self.ctl("plugin", "list", "--filter", "provider!=atlassian",
                                     "-o", "json"))
        self.assertEqual(got["total_count"], 0)
        got = self.json_out(self.ctl("plugin", "list", "--keyword", "jira", "-o", "json"))
        self.assertEqual(got["total_count"], 1)

        # update from a patch file.
        patch = self.write("patch.json", {"labels": ["jira"], "tags": {"tier": "gold"}})
        got = self.json_out(self.ctl("plugin", "update", pid, "-f", patch, "-o", "json"))
        self.assertEqual(got["labels"], ["jira"])
        self.assertEqual(got["tags"], {"tier": "gold"})
        self.assertEqual(self.api("plugin/get", {"plugin_id": pid})["labels"], ["jira"])
        # ... or from standard input.
        got = self.json_out(self.ctl("plugin", "update", pid, "-f", "-", "-o", "json",
                                     stdin_text='{"name": "JIRA Issues"}'))
        self.assertEqual(got["name"], "JIRA Issues")

        # disable / enable / deregister.
        header, rows = self.table(self.ctl("plugin", "disable", pid))
        self.assertIn("DISABLED", rows[0])
        self.assertEqual(self.api("plugin/get", {"plugin_id": pid})["state"], "DISABLED")
        self.assertEqual(self.json_out(self.ctl("plugin", "enable", pid, "-o", "json"))["state"],
                         "ENABLED")
        out = self.ok(self.ctl("plugin", "deregister", pid))
        self.assertIn(pid, out)
        p = self.ctl("plugin", "get", pid)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_NO_PLUGIN: ", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_dashboard_round_trip(self):
        tid = "ops-board"
        spec = self.write("board.json", {"template_id": tid, "name": "Ops Board",
                                         "template_type": "SINGLE", "labels": ["ops"],
                                         "dashboards": [{"name": "main"}]})
        header, rows = self.table(self.ctl("dashboard", "register", "-f", spec))
        self.assertEqual(header, ["TEMPLATE_ID", "NAME", "STATE", "TYPE", "REPOSITORY"])
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0].startswith(tid + " "), rows)
        self.assertIn("SINGLE", rows[0])
        gen = self.json_out(self.ctl("dashboard", "register", "-f", "-", "-o", "json",
                                     stdin_text='{"name": "Generated"}'))
        self.assertRegex(gen["template_id"], r"^template-[0-9a-f]{12}$")
        self.assertEqual(gen["template_type"], "MULTI")

        header, rows = self.table(self.ctl("dashboard", "get", tid))
        self.assertIn("Ops Board", rows[0])
        self.assertEqual(self.json_out(self.ctl("dashboard", "get", tid, "-o", "json")),
                         self.api("dashboard-template/get", {"template_id": tid}))
        got = self.json_out(self.ctl("dashboard", "list", "--filter", "template_type=SINGLE",
                                     "-o", "json"))
        self.assertEqual([t["template_id"] for t in got["results"]], [tid])
        header, rows = self.table(self.ctl("dashboard", "list", "--sort", "name:desc"))
        self.assertEqual([r.split()[0] for r in rows], [tid, gen["template_id"]])

        patch = self.write("board-patch.json", {"name": "Ops Board 2", "tags": {"a": "b"}})
        got = self.json_out(self.ctl("dashboard", "update", tid, "-f", patch, "-o", "json"))
        self.assertEqual((got["name"], got["tags"]), ("Ops Board 2", {"a": "b"}))
        other = self.write("board-other.json", {"template_id": "another"})
        p = self.ctl("dashboard", "update", tid, "-f", other)
        self.assertEqual(p.returncode, 2, describe_run(p))
        self.assertIn("names another template_id", p.stderr)

        header, rows = self.table(self.ctl("dashboard", "disable", tid))
        self.assertIn("DISABLED", rows[0])
        self.assertEqual(self.json_out(self.ctl("dashboard", "enable", tid, "-o", "json"))["state"],
                         "ENABLED")
        p = self.ctl("dashboard", "register", "-f", spec)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_SAVE_UNIQUE_VALUES: ", p.stderr)
        p = self.ctl("dashboard", "enable", tid, token=self.viewer)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("ERROR_PERMISSION_DENIED", p.stderr)
        self.assertIn("dashboard template %s deregistered" % tid,
                      self.ok(self.ctl("dashboard", "deregister", tid)))
        p = self.ctl("dashboard", "get", tid)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_NOT_FOUND: ", p.stderr)
        self.ok(self.ctl("dashboard", "deregister", gen["template_id"]))
        p = run_tool([REPOCTL, "dashboard", "--help"], env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        for verb in ("register -f FILE", "update ID -f PATCH", "get ID", "list", "enable ID",
                     "disable ID", "deregister ID"):
            self.assertIn("repoctl dashboard " + verb, p.stdout)

    def test_list_sort_and_page(self):
        header, rows = self.table(self.ctl("plugin", "list", "--sort", "name:desc",
                                           token=self.admin_q))
        self.assertEqual([r.split()[0] for r in rows],
                         ["q-echo", "q-delta", "q-charlie", "q-bravo", "q-alpha"])
        got = self.json_out(self.ctl("plugin", "list", "--sort", "name:desc", "--page", "2",
                                     "--limit", "2", "-o", "json", token=self.admin_q))
        self.assertEqual([p["plugin_id"] for p in got["results"]], ["q-charlie", "q-bravo"])
        self.assertEqual(got["total_count"], 5)
        self.assertEqual(got, self.api("plugin/list", {"query": {
            "sort": {"key": "name", "desc": True}, "page": {"start": 3, "limit": 2}}},
            token=self.admin_q))
        # Two sort keys: provider, then name descending.
        got = self.json_out(self.ctl("plugin", "list", "--sort", "provider", "--sort",
                                     "name:desc", "-o", "json", token=self.admin_q))
        self.assertEqual([p["plugin_id"] for p in got["results"]],
                         ["q-echo", "q-alpha", "q-charlie", "q-bravo", "q-delta"])
        # A page shorter than the total says so.
        out = self.ok(self.ctl("plugin", "list", "--limit", "2", token=self.admin_q))
        self.assertIn("(2 of 5 plugins", out)
        # Filters are ANDed.
        got = self.json_out(self.ctl("plugin", "list", "--filter", "provider=aws", "--filter",
                                     "name~=char", "-o", "json", token=self.admin_q))
        self.assertEqual([p["plugin_id"] for p in got["results"]], ["q-charlie"])

    def test_stat(self):
        header, rows = self.table(self.ctl("plugin", "stat", "--distinct", "provider",
                                           token=self.admin_q))
        self.assertEqual(header, ["PROVIDER"])
        self.assertEqual([r.strip() for r in rows], ["atlassian", "aws", "google"])
        got = self.json_out(self.ctl("plugin", "stat", "--distinct", "provider", "-o", "json",
                                     token=self.admin_q))
        self.assertEqual(got, self.api("plugin/stat", {"query": {"distinct": "provider"}},
                                       token=self.admin_q))
        got = self.json_out(self.ctl("plugin", "stat", "--distinct", "provider", "--filter",
                                     "labels=jira", "-o", "json", token=self.admin_q))
        self.assertEqual(got["results"], ["atlassian"])
        query = {"aggregate": [
            {"group": {"keys": [{"key": "provider", "name": "provider"}],
                       "fields": [{"name": "count", "operator": "count"}]}},
            {"sort": {"key": "count", "desc": True}}]}
        qf = self.write("stat.json", query)
        header, rows = self.table(self.ctl("plugin", "stat", "--query-file", qf,
                                           token=self.admin_q))
        self.assertEqual(set(header), {"PROVIDER", "COUNT"})
        cells = [dict(zip(header, r.split())) for r in rows]
        self.assertEqual({c["PROVIDER"]: c["COUNT"] for c in cells},
                         {"atlassian": "2", "aws": "2", "google": "1"})
        got = self.json_out(self.ctl("plugin", "stat", "--query-file", qf, "-o", "json",
                                     token=self.admin_q))
        self.assertEqual(got, self.api("plugin/stat", {"query": query}, token=self.admin_q))

    def test_repository_list_and_get(self):
        local = self.api("repository/list", {}, token=self.system)["results"][0]
        header, rows = self.table(self.ctl("repository", "list", token=self.system))
        self.assertEqual(header[:4], ["REPOSITORY_ID", "NAME", "TYPE", "PRIORITY"])
        self.assertTrue(rows[0].startswith(local["repository_id"]), rows)
        self.assertIn("local", rows[0])
        self.assertEqual(rows[0], rows[0].rstrip(), "no trailing spaces")
        self.assertEqual(self.json_out(self.ctl("repository", "list", "-o", "json",
                                                token=self.system)),
                         self.api("repository/list", {}, token=self.system))
        got = self.json_out(self.ctl("repository", "get", local["repository_id"], "-o", "json",
                                     token=self.viewer))
        self.assertEqual(got["repository_id"], local["repository_id"])
        got = self.json_out(self.ctl("repository", "list", "--filter", "repository_type=remote",
                                     "-o", "json", token=self.system))
        self.assertEqual(got["total_count"], 0)
        # Sync is for remote repositories only: the server's error, exit 1.
        p = self.ctl("repository", "sync", local["repository_id"], token=self.system)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_INVALID_PARAMETER: ", p.stderr)

    def test_table_fits_120_columns_when_not_a_terminal(self):
        long_name = "A very long plugin name " + "that goes on and on " * 8
        spec = self.write("long.json", plugin_body("acme/long-name-plugin", name=long_name,
                                                   provider="p" * 60))
        out = self.ok(self.ctl("plugin", "register", "-f", spec))
        try:
            lines = out.splitlines()
            self.assertEqual(lines[0].split()[0], "PLUGIN_ID")
            for ln in lines:
                self.assertLessEqual(len(ln), 120, ln)
            self.assertIn("\u2026", lines[1])      # cut with an ellipsis
            self.assertIn("long-name-plugin", lines[1])  # the id column stays whole
        finally:
            self.server.api("plugin/deregister", {"plugin_id": "long-name-plugin"},
                            token=self.admin)

    # -- errors and exit codes --------------------------------------------------------

    def test_errors_and_exit_codes(self):
        # The server's error: exit 1, "error: CODE: message" on stderr.
        p = self.ctl("plugin", "get", "no-such-plugin")
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertEqual(p.stderr.strip(),
                         "error: ERROR_NO_PLUGIN: Plugin not found. (plugin_id = no-such-plugin)")
        p = self.ctl("plugin", "register", "-f", self.write("viewer.json", plugin_body("acme/v")),
                     token=self.viewer)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_PERMISSION_DENIED: ", p.stderr)
        p = self.ctl("plugin", "list", token="rdt_" + "0" * 64)
        self.assertEqual(p.returncode, 1, describe_run(p))
        self.assertIn("error: ERROR_AUTHENTICATE_FAILURE: ", p.stderr)
        p = self.ctl("plugin", "list", "--filter", "state=x", "--sort", "nope:desc",
                     "--filter", "name~=", "-o", "json")
        self.assertEqual(p.returncode, 0, describe_run(p))

        # Transport: nothing listening, or a certificate we do not trust: exit 3.
        dead = "https://127.0.0.1:%d" % free_port()
        p = run_tool([REPOCTL, "--endpoint", dead, "--ca", self.server.ca_file, "plugin", "list"],
                     env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 3, describe_run(p))
        self.assertIn("error: CONNECT_FAILED: ", p.stderr)
        p = run_tool([REPOCTL, "--endpoint", self.server.endpoint, "--ca",
                      os.path.join(harness.other_cert_dir(), "ca.crt"), "plugin", "list"],
                     env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 3, describe_run(p))
        self.assertIn("error: TLS_FAILED: ", p.stderr)

        # Usage: exit 2, nothing sent.
        before = self.server.access_count("plugin/list")
        usage = [
            [],
            ["plugin"],
            ["plugin", "frobnicate"],
            ["widget", "list"],
            ["plugin", "get"],
            ["plugin", "get", "a", "b"],
            ["plugin", "list", "--bogus"],
            ["plugin", "list", "--filter", "provider"],
            ["plugin", "list", "--filter", "=x"],
            ["plugin", "list", "--sort", "name:sideways"],
            ["plugin", "list", "--page", "0"],
            ["plugin", "list", "-o", "yaml"],
            ["plugin", "list", "-f", "x.json"],          # option of another command
            ["plugin", "get", "x", "--distinct", "provider"],
            ["plugin", "register"],                       # -f missing
            ["plugin", "register", "-f", os.path.join(self.tmp, "missing.json")],
            ["plugin", "register", "-f", self.write("bad.json", "{not json")],
            ["plugin", "register", "-f", self.write("array.json", "[1, 2]")],
            ["plugin", "update", "x", "-f", self.write("other.json", {"plugin_id": "y"})],
            ["plugin", "stat"],
            ["plugin", "stat", "--distinct", "provider", "--query-file", "q.json"],
            ["plugin", "list", "--token", "a", "--token-file", "b"],
            ["plugin", "list", "--timeout-ms", "5"],
            ["plugin", "list", "--endpoint", "http://127.0.0.1:1"],
            ["plugin", "list", "--ca", os.path.join(self.tmp, "missing-ca.crt")],
        ]
        for args in usage:
            p = self.ctl(*args)
            self.assertEqual(p.returncode, 2, "%s%s" % (args, describe_run(p)))
            self.assertTrue(p.stderr.strip(), "a reason on stderr for %s" % args)
            self.assertNotIn(self.admin, p.stdout + p.stderr)
        self.assertEqual(self.server.access_count("plugin/list"), before)

        # token create explains where tokens are made.
        p = self.ctl("token", "create")
        self.assertEqual(p.returncode, 2, describe_run(p))
        self.assertIn("repod token create --config FILE --domain D --role R", p.stderr)

    def test_help(self):
        p = run_tool([REPOCTL, "--help"], env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        for cmd in ("plugin register -f FILE", "plugin list", "plugin stat", "repository sync ID",
                    "token create", "--endpoint", "-o, --output"):
            self.assertIn(cmd, p.stdout)
        p = run_tool([REPOCTL, "plugin", "list", "--help"], env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertTrue(p.stdout.startswith("usage: repoctl plugin list"), p.stdout)
        self.assertIn("key~=text", p.stdout)
        p = run_tool([REPOCTL, "repository", "list", "--help"], env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        for state in ("ok ", "degraded ", "offline "):  # what STATE means
            self.assertIn("\n  " + state, p.stdout)
        p = run_tool([REPOCTL, "help", "repository"], env=tool_env(home=self.tmp))
        self.assertEqual(p.returncode, 0, describe_run(p))
        self.assertIn("repoctl repository register -f FILE", p.stdout)

    # -- configuration ------------------------------------------------------------------

    def test_environment_configuration(self):
        env = {"REPOD_ENDPOINT": self.server.endpoint, "REPOD_TOKEN": self.admin_q,
               "REPOD_CA": self.server.ca_file}
        got = self.json_out(self.ctl("plugin", "list", "-o", "json", flags=False, env=env))
        self.assertEqual(got["total_count"], 5)
        # Flags win over the environment.
        got = self.json_out(self.ctl("plugin", "list", "-o", "json", "--token", self.viewer,
                                     flags=False, env=env))
        self.assertEqual(got["total_count"], 0)
        p = self.ctl("plugin", "list", "--endpoint", "https://127.0.0.1:%d" % free_port(),
                     flags=False, env=env)
        self.assertEqual(p.returncode, 3, describe_run(p))
        # Without a CA the server's test certificate is not trusted.
        env_no_ca = dict(env)
        del env_no_ca["REPOD_CA"]
        p = self.ctl("plugin", "list", flags=False, env=env_no_ca)
        self.assertEqual(p.returncode, 3, describe_run(p))
        self.assertIn("TLS_FAILED", p.stderr)

    def test_config_file(self):
        home = tempfile.mkdtemp(prefix="repod-it-repoctl-home-")
        try:
            cfg_dir = os.path.join(home, ".config", "repoctl")
            os.makedirs(cfg_dir)
            with open(os.path.join(cfg_dir, "token"), "w") as f:
                f.write(self.admin_q + "\n")
            with open(os.path.join(cfg_dir, "config.json"), "w") as f:
                json.dump({"endpoint": self.server.endpoint, "token_file": "token",
                           "ca": self.server.ca_file}, f)
            argv = [REPOCTL, "plugin", "list", "-o", "json"]
            p = run_tool(argv, env=tool_env(home=home))
            self.assertEqual(p.returncode, 0, describe_run(p))
            self.assertEqual(json.loads(p.stdout)["total_count"], 5)
            # The environment wins over the file.
            p = run_tool(argv, env=tool_env({"REPOD_TOKEN": self.viewer}, home=home))
            self.assertEqual(json.loads(p.stdout)["total_count"], 0, describe_run(p))
            p = run_tool(argv, env=tool_env({"REPOD_ENDPOINT": "https://127.0.0.1:%d" %
                                             free_port()}, home=home))
            self.assertEqual(p.returncode, 3, describe_run(p))
            # --config names another file; a broken one is a usage error.
            other = os.path.join(home, "other.json")
            with open(other, "w") as f:
                json.dump({"endpoint": self.server.endpoint, "tokne_file": "x"}, f)
            p = run_tool([REPOCTL, "--config", other, "plugin", "list"], env=tool_env(home=home))
            self.assertEqual(p.returncode, 2, describe_run(p))
            self.assertIn("tokne_file", p.stderr)
        finally:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
