"""test_config.py - the configuration an operator can trust.

`--check-config` and start-up run one validation and report every problem
as FILE: key.path: reason; unknown keys fail at any depth (remotes,
registries); relative CA files resolve against the config's folder and
unreadable ones are configuration errors; the TLS key must match the
certificate; a data folder held by a running repod is refused; a failed
first start leaves nothing behind; config-defined remotes follow the file
on restart and SIGHUP (and the API may not change them); the pid file; the
shipped examples (conf/, docs/*.md, README.md) pass the real
`repod --check-config`.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import RepodTestCase, Server


def wait_until(fn, timeout=10.0, interval=0.1):
    """Calls fn until it returns a truthy value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def run_repod(*args, cwd=None, timeout=30):
    return subprocess.run([harness.REPOD_BIN] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                          cwd=cwd or "/", timeout=timeout)


def problem_lines(stderr):
    return [ln for ln in stderr.splitlines() if ln.strip()]


# --------------------------------------------------------------------------
# the shipped examples

def config_top_keys():
    """The top-level keys repod accepts, read from `repod --help`."""
    out = run_repod("--help").stdout
    keys = set()
    for line in out.splitlines():
        m = re.match(r"^  ([a-z_]+)(?:[.\[][^ ]*)?\s", line)
        if m and m.group(1) != "KEY":
            keys.add(m.group(1))
    return keys


def strip_comment_lines(text):
    return "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))


def markdown_config_blocks(path, top_keys):
    """(label, config dict) for every ```json block of path that looks like a
    repod config: a JSON object (or a partial `"key": ...` block, wrapped in
    {}) with at least one top-level config key."""
    with open(path) as f:
        text = f.read()
    out = []
    for i, m in enumerate(re.finditer(r"```json\n(.*?)```", text, re.S)):
        body = m.group(1)
        cfg = None
        for candidate in (body, "{" + body + "}"):
            try:
                cfg = json.loads(candidate)
                break
            except ValueError:
                continue
        if isinstance(cfg, dict) and top_keys & set(cfg):
            line = text.count("\n", 0, m.start()) + 1
            out.append(("%s:%d" % (os.path.relpath(path, harness.SOURCE_DIR), line), cfg))
    return out


def shipped_configs(top_keys):
    found = []
    for path in sorted(glob.glob(os.path.join(harness.SOURCE_DIR, "conf", "*.json*"))):
        with open(path) as f:
            text = f.read()
        if path.endswith(".jsonc"):
            text = strip_comment_lines(text)
        found.append((os.path.relpath(path, harness.SOURCE_DIR), json.loads(text)))
    docs = sorted(glob.glob(os.path.join(harness.SOURCE_DIR, "docs", "*.md")))
    for path in docs + [os.path.join(harness.SOURCE_DIR, "README.md")]:
        if os.path.exists(path):
            found.extend(markdown_config_blocks(path, top_keys))
    return found


TOLERATED = re.compile(r"^.*?: [a-z_\[\]0-9.]+(?:\.[^:]+)?: cannot read (/\S+): "
                       r"No such file or directory$"
                       r"|^.*?: (?:metrics_)?listen: cannot listen on .*: Address already in use$")


def check_example(cfg, tmp, certs):
    """Runs the real --check-config on cfg with the TLS files of the tests
    and a temp data folder.  Returns (exit code, the problem lines that are
    not 'an absolute example path does not exist here' or 'the example's
    port is taken on this machine')."""
    cfg = json.loads(json.dumps(cfg))
    tls = cfg.setdefault("tls", {})
    if isinstance(tls, dict):
        tls["cert"] = os.path.join(certs, "server.crt")
        tls["key"] = os.path.join(certs, "server.key")
    cfg["data_dir"] = os.path.join(tmp, "data")
    if "pid_file" in cfg:
        cfg["pid_file"] = os.path.join(tmp, "data", "repod.pid")
    path = os.path.join(tmp, "example.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = run_repod("--check-config", path)
    bad = [ln for ln in problem_lines(r.stderr) if not TOLERATED.match(ln)]
    return r.returncode, bad, r.stderr


class ShippedExamplesTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="repod-it-examples-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.certs = harness.cert_dir()
        self.top_keys = config_top_keys()

    def test_top_keys_read_from_help(self):
        self.assertTrue({"listen", "tls", "data_dir", "remotes", "registries", "pid_file"}
                        <= self.top_keys, self.top_keys)

    def test_every_example_passes_check_config(self):
        examples = shipped_configs(self.top_keys)
        labels = [label for label, _ in examples]
        self.assertIn("conf/repod.json", labels)
        self.assertIn("conf/repod.example.jsonc", labels)
        self.assertTrue(any(label.startswith("docs/configuration.md") for label in labels), labels)
        for label, cfg in examples:
            with self.subTest(example=label):
                code, bad, err = check_example(cfg, self.tmp, self.certs)
                self.assertEqual(bad, [], "%s: %s" % (label, err))
                if not problem_lines(err):
                    self.assertEqual(code, 0, err)

    def test_the_check_catches_a_bad_example(self):
        """The example check itself fails on an unknown key or a bad value."""
        _, cfg = shipped_configs(self.top_keys)[0]
        for over in ({"remotes": [{"name": "M", "endpoint": "https://m.example.com:8443",
                                   "cache": {"ttl": 5}}]},
                     {"registries": {"h.example.com": {"timeout_ms": "fast"}}},
                     {"limits": {"max_body_bytes": 1}}):
            with self.subTest(over=over):
                code, bad, err = check_example(harness.deep_merge(cfg, over), self.tmp, self.certs)
                self.assertNotEqual(code, 0)
                self.assertNotEqual(bad, [], err)


# --------------------------------------------------------------------------
# validation

class CheckConfigTest(RepodTestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="repod-it-config-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.certs = harness.cert_dir()
        self.base = {"listen": "127.0.0.1:0",
                     "tls": {"cert": os.path.join(self.certs, "server.crt"),
                             "key": os.path.join(self.certs, "server.key")},
                     "data_dir": os.path.join(self.tmp, "data"), "workers": 1}

    def write(self, name, cfg):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    def start_fails(self, path):
        try:
            r = run_repod("--config", path, timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("repod started with %s" % path)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("listening on", r.stderr)
        return r

    def test_help_lists_the_keys_once(self):
        r = run_repod("--help")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout.count("Configuration keys"), 1, r.stdout)
        for key in ("pid_file", "remotes[].endpoint", "remotes[].upstream.ca_file",
                    "remotes[].cache.ttl_s"):
            self.assertIn(key, r.stdout)

    def test_every_problem_reported_by_check_and_start_alike(self):
        cfg = harness.deep_merge(self.base, {
            "limits": {"max_body_bytes": 5},
            "registries": {"h.example.com": {"tokn": "x"}},
        })
        cfg["remotes"] = [{"name": "M", "repository_type": "remote",
                           "endpoint": "https://m.example.com:8443",
                           "cache": {"ttl": 5}, "upstream": {"verify": "no"}},
                          {"name": "N", "endpoint": "ftp://nowhere"}]
        path = self.write("bad.json", cfg)
        expected = [
            "%s: limits.max_body_bytes: must be an integer between 1024 and 1073741824" % path,
            "%s: registries.h.example.com.tokn: unknown key" % path,
            "%s: remotes[0].cache.ttl: unknown key" % path,
            "%s: remotes[0].upstream.verify: expected true or false" % path,
            "%s: remotes[1].endpoint: expected https://host:port" % path,
        ]
        r = run_repod("--check-config", path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(sorted(problem_lines(r.stderr)), sorted(expected), r.stderr)
        s = self.start_fails(path)
        self.assertEqual(sorted(problem_lines(s.stderr)), sorted(expected), s.stderr)
        self.assertFalse(os.path.exists(cfg["data_dir"]), "a refused start created data_dir")

    def test_repository_type_remote_accepted(self):
        cfg = dict(self.base, remotes=[{"name": "M", "repository_type": "remote",
                                        "endpoint": "https://m.example.com:8443"}])
        r = run_repod("--check-config", self.write("ok.json", cfg))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_unreadable_files_are_config_errors(self):
        cfg = harness.deep_merge(self.base, {
            "registries": {"h.example.com": {"ca_file": "h-ca.crt", "password_file": "h.pw"},
                           "e.example.com": {"aws_secret_access_key_file": "/nonexistent/k"}}})
        cfg["remotes"] = [{"name": "M", "endpoint": "https://m.example.com:8443",
                           "upstream": {"ca_file": "up-ca.crt"}}]
        path = self.write("files.json", cfg)
        r = run_repod("--check-config", path)   # from "/": relative to the file's folder
        self.assertEqual(sorted(problem_lines(r.stderr)), sorted([
            "%s: registries.h.example.com.ca_file: cannot read h-ca.crt: No such file or directory" % path,
            "%s: registries.h.example.com.password_file: cannot read h.pw: No such file or directory" % path,
            "%s: registries.e.example.com.aws_secret_access_key_file: cannot read /nonexistent/k: "
            "No such file or directory" % path,
            "%s: remotes[0].upstream.ca_file: cannot read up-ca.crt: No such file or directory" % path,
        ]), r.stderr)
        self.start_fails(path)
        for name in ("h-ca.crt", "h.pw", "up-ca.crt"):
            shutil.copy(os.path.join(self.certs, "ca.crt"), os.path.join(self.tmp, name))
        del cfg["registries"]["e.example.com"]
        path = self.write("files.json", cfg)
        r = run_repod("--check-config", path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_tls_files_checked_like_start(self):
        other = harness.other_cert_dir()
        cases = [
            ({"tls": {"cert": os.path.join(self.tmp, "nope.crt")}},
             "tls.cert: cannot read %s: No such file or directory" % os.path.join(self.tmp, "nope.crt")),
            ({"tls": {"key": os.path.join(other, "server.key")}},
             "tls.key: does not match the certificate in tls.cert"),
            ({"tls": {"cert": os.path.join(self.certs, "server.key")}},
             "tls.cert: not a PEM certificate chain"),
        ]
        for i, (over, want) in enumerate(cases):
            with self.subTest(want=want):
                path = self.write("tls-%d.json" % i, harness.deep_merge(self.base, over))
                r = run_repod("--check-config", path)
                self.assertEqual(r.returncode, 1)
                self.assertIn("%s: %s" % (path, want), r.stderr)
                s = self.start_fails(path)
                self.assertIn("%s: %s" % (path, want), s.stderr)

    def test_data_dir_in_use_or_not_a_folder(self):
        srv = Server(name="cfg-inuse", overrides={"workers": 1})
        self.addCleanup(srv.close)
        r = run_repod("--check-config", srv.config_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s: data_dir: %s is in use by another process (pid %d;"
                      % (srv.config_path, srv.data_dir, srv.proc.pid), r.stderr)
        second = self.write("second.json", harness.deep_merge(srv.config, {}))
        s = self.start_fails(second)
        self.assertIn("data_dir: %s is in use by another process" % srv.data_dir, s.stderr)
        same_port = self.write("port.json", dict(self.base, listen="127.0.0.1:%d" % srv.port))
        r = run_repod("--check-config", same_port)
        self.assertEqual(problem_lines(r.stderr),
                         ["%s: listen: cannot listen on 127.0.0.1:%d: Address already in use"
                          % (same_port, srv.port)], r.stderr)
        srv.stop()
        r = run_repod("--check-config", srv.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        afile = os.path.join(self.tmp, "afile")
        open(afile, "w").close()
        r = run_repod("--check-config", self.write("file.json", dict(self.base, data_dir=afile)))
        self.assertIn("data_dir: %s is not a folder" % afile, r.stderr)

    def test_failed_first_start_leaves_nothing(self):
        """A start that fails leaves no store behind (one that fails after
        the store was created takes it back): the corrected config then
        starts with its own local repository name."""
        blocker = os.path.join(self.tmp, "blocker")   # pid_file names a folder: it cannot be written
        os.mkdir(blocker)
        other_key = os.path.join(harness.other_cert_dir(), "server.key")
        cases = [("pid_file", {"pid_file": blocker}, False),
                 ("pid_file", {"pid_file": blocker}, True),
                 ("tls.key", {"tls": {"key": other_key}}, False)]
        for i, (word, over, pre_existing) in enumerate(cases):
            with self.subTest(word=word, pre_existing=pre_existing):
                data = os.path.join(self.tmp, "data-%d" % i)
                if pre_existing:
                    os.mkdir(data)
                    open(os.path.join(data, "operator-note.txt"), "w").close()
                cfg = harness.deep_merge(self.base, over)
                cfg.update(data_dir=data, local_repository={"name": "Wrong"})
                r = self.start_fails(self.write("first.json", cfg))
                self.assertIn(word, r.stderr)
                if pre_existing:
                    self.assertEqual(os.listdir(data), ["operator-note.txt"])
                else:
                    self.assertFalse(os.path.exists(data),
                                     os.listdir(data) if os.path.exists(data) else "")
                srv = Server(start=False, name="cfg-fixed",
                             overrides={"workers": 1, "data_dir": data,
                                        "local_repository": {"name": "Right"}})
                self.addCleanup(srv.close)
                srv.start()
                local = srv.api("repository/list", {"repository_type": "local"}).body["results"]
                self.assertEqual([x["name"] for x in local], ["Right"], srv.describe())
                srv.stop()


# --------------------------------------------------------------------------
# the pid file

class PidFileTest(RepodTestCase):

    def test_pid_file_lifecycle(self):
        srv = Server(name="cfg-pid", overrides={"workers": 1})
        self.addCleanup(srv.close)
        pid_path = os.path.join(srv.data_dir, "repod.pid")
        with open(pid_path) as f:
            self.assertEqual(f.read().strip(), str(srv.proc.pid))
        self.assertEqual(srv.request("/readyz", method="GET").status, 200)
        with open(pid_path) as f:
            os.kill(int(f.read()), signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "received SIGHUP" in srv.log(), 5), srv.describe())
        self.assertTrue(srv.running())
        self.assertEqual(srv.stop(), 0)
        self.assertFalse(os.path.exists(pid_path))

    def test_pid_file_elsewhere_or_none(self):
        srv = Server(start=False, name="cfg-pid2", overrides={"workers": 1})
        self.addCleanup(srv.close)
        srv.config["pid_file"] = "run/repod.pid"       # relative to the config's folder
        srv.write_config()
        srv.start()
        pid_path = os.path.join(srv.tmp, "run", "repod.pid")
        with open(pid_path) as f:
            self.assertEqual(f.read().strip(), str(srv.proc.pid))
        srv.stop()
        self.assertFalse(os.path.exists(pid_path))
        srv.config["pid_file"] = ""
        srv.write_config()
        srv.start()
        self.assertFalse(os.path.exists(os.path.join(srv.data_dir, "repod.pid")))
        self.assertFalse(os.path.exists(pid_path))
        srv.stop()


# --------------------------------------------------------------------------
# config-defined remotes

class ConfigRemotesTest(RepodTestCase):

    @classmethod
    def setUpClass(cls):
        cls.up = Server(name="cfg-up", overrides={"workers": 1})
        try:
            cls.up_id = cls.up.api("repository/list", {"repository_type": "local"}) \
                .body["results"][0]["repository_id"]
        except BaseException:
            cls.up.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.up.close()

    def new_mirror(self, name, remotes, subdir=None):
        m = Server(start=False, name=name, overrides={"workers": 1})
        self.addCleanup(m.close)
        if subdir:   # the config lives in a folder of its own, not the working directory
            os.mkdir(os.path.join(m.tmp, subdir))
            m.config_path = os.path.join(m.tmp, subdir, "repod.json")
        m.config["remotes"] = remotes
        m.write_config()
        m.system = m.make_token("root", "system")
        m.start()
        return m

    def remote(self, m, name):
        b = m.api("repository/list", {"repository_type": "remote"}, token=m.system).body
        for r in b.get("results", []):
            if r["name"] == name:
                return r
        return None

    def test_relative_ca_file_resolves_against_the_config_folder(self):
        m = Server(start=False, name="cfg-rel", overrides={"workers": 1})
        self.addCleanup(m.close)
        etc = os.path.join(m.tmp, "etc")
        os.mkdir(etc)
        shutil.copy(m.ca_file, os.path.join(etc, "up-ca.crt"))
        m.config_path = os.path.join(etc, "repod.json")   # started with cwd = m.tmp
        m.config["remotes"] = [{"name": "Up", "endpoint": self.up.endpoint,
                                "upstream": {"ca_file": "up-ca.crt"}}]
        m.write_config()
        m.system = m.make_token("root", "system")
        m.start()
        self.assertTrue(wait_until(lambda: self.remote(m, "Up") is not None, 10), m.describe())
        self.assertEqual(self.remote(m, "Up")["repository_id"], self.up_id)
        self.assertNotIn("cannot load CA", m.log())

    def test_edits_apply_on_restart_and_sighup(self):
        m = self.new_mirror("cfg-edit", [{"name": "Up", "endpoint": self.up.endpoint, "priority": 5,
                                          "upstream": {"ca_file": self.up.ca_file},
                                          "cache": {"ttl_s": 60}}])
        self.assertTrue(wait_until(lambda: self.remote(m, "Up") is not None, 10), m.describe())
        self.assertEqual(self.remote(m, "Up")["priority"], 5)

        # restart with another endpoint (same upstream by name), priority and cache
        other_endpoint = "https://localhost:%d" % self.up.port
        ca_copy = os.path.join(m.tmp, "ca-copy.crt")
        shutil.copy(self.up.ca_file, ca_copy)
        m.config["remotes"] = [{"name": "Up", "endpoint": other_endpoint, "priority": 7,
                                "upstream": {"ca_file": ca_copy}, "cache": {"ttl_s": 90}}]
        m.write_config()
        m.restart()
        r = self.remote(m, "Up")
        self.assertEqual((r["endpoint"], r["priority"], r["cache"]),
                         (other_endpoint, 7, {"ttl_s": 90}), m.describe())
        self.assertEqual(r["upstream_settings"]["ca_file"], ca_copy)
        log = m.log()
        self.assertIn("remote Up: upstream changed from %s to %s" % (self.up.endpoint, other_endpoint), log)
        self.assertIn("remote Up: priority changed from 5 to 7", log)
        self.assertIn("remote Up: CA file changed from %s to %s" % (self.up.ca_file, ca_copy), log)
        self.assertIn('remote Up: cache changed from {"ttl_s":60} to {"ttl_s":90}', log)

        # SIGHUP applies an edit while serving
        m.config["remotes"][0]["priority"] = 9
        m.write_config()
        m.sighup()
        self.assertTrue(wait_until(lambda: self.remote(m, "Up")["priority"] == 9, 5), m.describe())
        self.assertTrue(m.wait_log("remote Up: priority changed from 7 to 9"), m.describe())

        # a SIGHUP with a broken file changes nothing
        m.config["remotes"][0]["priority"] = 11
        m.config["remotes"][0]["bogus"] = 1
        m.write_config()
        m.sighup()
        self.assertTrue(wait_until(lambda: "remotes[0].bogus: unknown key" in m.log(), 5), m.describe())
        self.assertEqual(self.remote(m, "Up")["priority"], 9)
        self.assertTrue(m.running())

        # the API may read and sync it, not change it
        rid = self.up_id
        self.assertError(m.api("repository/update", {"repository_id": rid, "priority": 3},
                               token=m.system), 409, "ERROR_EXIST_RESOURCE",
                         contains="managed by the configuration file")
        self.assertError(m.api("repository/deregister", {"repository_id": rid}, token=m.system),
                         409, "ERROR_EXIST_RESOURCE", contains="managed by the configuration file")
        self.assertOK(m.api("repository/sync", {"repository_id": rid}, token=m.system))

        # removed from the file: it stays, handed over to the API
        del m.config["remotes"]
        m.write_config()
        m.sighup()
        self.assertTrue(wait_until(lambda: "remote Up (%s): no longer in the config file" % rid
                                   in m.log(), 5), m.describe())
        self.assertIsNotNone(self.remote(m, "Up"))
        self.assertOK(m.api("repository/update", {"repository_id": rid, "priority": 3},
                            token=m.system))
        self.assertOK(m.api("repository/deregister", {"repository_id": rid}, token=m.system))
        self.assertIsNone(self.remote(m, "Up"))

    def test_api_registered_remote_is_never_touched(self):
        m = self.new_mirror("cfg-api", [])
        self.assertOK(m.api("repository/register", {
            "name": "Up", "repository_type": "remote", "endpoint": self.up.endpoint,
            "priority": 4, "upstream": {"ca_file": self.up.ca_file}}, token=m.system))
        m.config["remotes"] = [{"name": "Up", "endpoint": self.up.endpoint, "priority": 8,
                                "upstream": {"ca_file": self.up.ca_file}}]
        m.write_config()
        m.restart()
        self.assertEqual(self.remote(m, "Up")["priority"], 4)
        self.assertIn("remote Up: registered through the API, so its config entry is not applied",
                      m.log())
        self.assertOK(m.api("repository/update", {"repository_id": self.up_id, "priority": 6},
                            token=m.system))

    def test_api_ca_file_unreadable_is_400(self):
        m = self.new_mirror("cfg-apica", [])
        missing = os.path.join(m.tmp, "missing-ca.crt")
        self.assertError(m.api("repository/register", {
            "name": "Up", "repository_type": "remote", "endpoint": self.up.endpoint,
            "upstream": {"ca_file": missing}}, token=m.system),
            400, "ERROR_INVALID_PARAMETER", contains="upstream.ca_file")
        self.assertIsNone(self.remote(m, "Up"))
        self.assertOK(m.api("repository/register", {
            "name": "Up", "repository_type": "remote", "endpoint": self.up.endpoint,
            "upstream": {"ca_file": self.up.ca_file}}, token=m.system))
        self.assertError(m.api("repository/update", {"repository_id": self.up_id,
                                                     "upstream": {"ca_file": missing}},
                               token=m.system),
                         400, "ERROR_INVALID_PARAMETER", contains="upstream.ca_file")
        self.assertEqual(self.remote(m, "Up")["upstream_settings"]["ca_file"], self.up.ca_file)


if __name__ == "__main__":
    unittest.main()
