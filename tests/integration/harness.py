"""harness.py - start a real repod over TLS on 127.0.0.1 and talk to it.

Used by every tests/integration/test_*.py.  Standard library only.

Environment (set by tests/CMakeLists.txt when run through ctest):
  REPOD_BIN         the server binary (default: <repo>/build/repod)
  REPOD_SOURCE_DIR  the repository root (default: two folders up from here)
  REPOD_BUILD_DIR   the build folder (informational)
  REPOD_KEEP_TMP=1  keep each server's temp dir (config, data, log) for debugging

Run by hand:
  cd tests/integration && python3 -m unittest -v            # all
  cd tests/integration && python3 -m unittest -v test_auth  # one module
"""

import atexit
import collections
import copy
import http.client
import http.server
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("REPOD_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("REPOD_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
REPOD_BIN = os.environ.get("REPOD_BIN") or os.path.join(SOURCE_DIR, "build", "repod")
GEN_CERTS = os.path.join(SOURCE_DIR, "certs", "gen-dev-certs.sh")
KEEP_TMP = os.environ.get("REPOD_KEEP_TMP") == "1"

API_PREFIX = "/repository/v1/"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 15.0
LISTEN_RE = re.compile(r"repod: listening on https://127\.0\.0\.1:(\d+)\s*$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REPOSITORY_ID_RE = re.compile(r"^repo-[0-9a-f]{12}$")

# The seed document's register example (seed-plugin-api.md, "register").
SEED_JIRA_REGISTER = {
    "name": "JIRA Issue notification",
    "service_type": "notification.Procotol",
    "image": "pyengine/plugin-jira-noti-protocol",
    "registry_type": "DOCKER_HUB",
    "registry_config": {},
    "provider": "atlassian",
    "capability": {"supported_schema": ["atlassian_jira"]},
    "template": {
        "options": {
            "schema": {
                "type": "object",
                "required": [],
                "properties": {
                    "project_id": {"type": "string", "title": "Project ID", "minLength": 4.0},
                    "sa_name": {"title": "Service Account", "type": "string", "minLength": 4.0},
                },
            }
        }
    },
    "labels": ["jira", "atlassian", "notification"],
    "tags": {
        "description": "Atlassian JIRA Issue notification",
        "icon": "https://icon-path/jira-icon.png",
    },
}

# Every key of a PluginInfo answer (SPEC 3: the stored fields plus the
# service_type alias and repository_info).
PLUGIN_INFO_KEYS = frozenset([
    "plugin_id", "name", "state", "resource_type", "service_type", "image", "provider",
    "registry_type", "registry_url", "registry_config", "capability", "template", "labels",
    "tags", "docs", "domain_id", "repository_info", "created_at", "updated_at",
])


def plugin_body(image, name=None, resource_type="notification.Protocol", **extra):
    """A minimal valid register request for image."""
    body = {"name": name or ("Plugin " + image.rsplit("/", 1)[-1]),
            "resource_type": resource_type, "image": image}
    body.update(extra)
    return body


# --------------------------------------------------------------------------
# certificates (made once per process, removed at exit)

_cert_lock = threading.Lock()
_cert_dirs = {}


def _make_certs(kind):
    with _cert_lock:
        if kind not in _cert_dirs:
            d = tempfile.mkdtemp(prefix="repod-it-certs-%s-" % kind)
            if not KEEP_TMP:
                atexit.register(shutil.rmtree, d, True)
            r = subprocess.run(["bash", GEN_CERTS, "--force", d], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("gen-dev-certs.sh failed (%d): %s" %
                                   (r.returncode, r.stderr.decode(errors="replace")))
            _cert_dirs[kind] = d
        return _cert_dirs[kind]


def cert_dir():
    """The folder with ca.crt, server.crt, server.key that test servers use."""
    return _make_certs("main")


def other_cert_dir():
    """A second, unrelated CA + server cert (for the 'wrong certificate' cases)."""
    return _make_certs("other")


def client_context(cafile=None, min_version=None, max_version=None):
    """A verifying TLS client context trusting cafile (default: the test CA)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                     cafile=cafile or os.path.join(cert_dir(), "ca.crt"))
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def deep_merge(base, over):
    """Returns base with over merged in (objects merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


Response = collections.namedtuple("Response", ["status", "headers", "body"])


def _parse_body(raw):
    if not raw:
        return raw
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return raw


def read_response(resp):
    raw = resp.read()
    return Response(resp.status, resp.headers, _parse_body(raw))


# --------------------------------------------------------------------------
# the server

_barrier_ids = itertools.count(1)


class ServerError(AssertionError):
    pass


class Server:
    """One repod process with its own temp dir (config, data, tokens, log)."""

    def __init__(self, overrides=None, start=True, name="repod"):
        if not os.access(REPOD_BIN, os.X_OK):
            raise ServerError("server binary not found or not executable: %s "
                              "(build it: cmake -S . -B build && cmake --build build, "
                              "or set REPOD_BIN)" % REPOD_BIN)
        self.bin = REPOD_BIN
        self.tmp = tempfile.mkdtemp(prefix="repod-it-%s-" % name)
        self.certs = cert_dir()
        self.ca_file = os.path.join(self.certs, "ca.crt")
        self.data_dir = os.path.join(self.tmp, "data")
        self.tokens_file = os.path.join(self.tmp, "tokens.json")
        self.config_path = os.path.join(self.tmp, "repod.json")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.stdout_path = os.path.join(self.tmp, "server.stdout")
        self.config = deep_merge({
            "listen": "127.0.0.1:0",
            "tls": {"cert": os.path.join(self.certs, "server.crt"),
                    "key": os.path.join(self.certs, "server.key")},
            "data_dir": self.data_dir,
            "auth": {"tokens_file": self.tokens_file},
            "workers": 2,
        }, overrides)
        self.write_config()
        self.proc = None
        self.port = None
        self.secrets = []          # every token secret made through make_token
        self._log_lock = threading.Lock()
        self._log_lines = []
        self._reader = None
        self._ctx = None
        self.closed = False
        if start:
            try:
                self.start()
            except BaseException:
                self.close()
                raise

    # -- configuration and logs -------------------------------------------

    def write_config(self, config=None):
        if config is not None:
            self.config = config
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)

    def log(self):
        """Everything the server wrote to stderr so far (all runs)."""
        with self._log_lock:
            return "".join(self._log_lines)

    def wait_log(self, text, timeout=5.0):
        """Waits until text is in the log (the harness reads the server's
        stderr on its own thread, so a line written before an answer may
        be read after it).  Returns whether it came."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def log_tail(self, n=60):
        with self._log_lock:
            return "".join(self._log_lines[-n:])

    def describe(self):
        return "\n--- server log tail (%s) ---\n%s--- end of log ---" % (self.log_path, self.log_tail())

    def _drain(self, stream):
        with open(self.log_path, "ab") as logf:
            for raw in iter(stream.readline, b""):
                logf.write(raw)
                logf.flush()
                line = raw.decode("utf-8", errors="replace")
                with self._log_lock:
                    self._log_lines.append(line)
                if self._listen_port is None:
                    m = LISTEN_RE.search(line)
                    if m:
                        self._listen_port = int(m.group(1))
                        self._ready.set()
        stream.close()

    # -- life cycle ----------------------------------------------------------

    def start(self):
        if self.running():
            raise ServerError("server already running")
        self._listen_port = None
        self._ready = threading.Event()
        with self._log_lock:
            self._log_lines.append("=== harness: starting %s --config %s ===\n" % (self.bin, self.config_path))
        stdout = open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen([self.bin, "--config", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=stdout,
                                         stderr=subprocess.PIPE, cwd=self.tmp)
        finally:
            stdout.close()
        self._reader = threading.Thread(target=self._drain, args=(self.proc.stderr,),
                                        name="repod-stderr", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise ServerError("repod exited with %s before listening%s" %
                                  (self.proc.returncode, self.describe()))
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerError("repod did not print its listening line within %.0f s%s" %
                                  (START_TIMEOUT_S, self.describe()))
        self.port = self._listen_port
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if not self.running():
            raise ServerError("server not running (exit %s)%s" %
                              (self.proc and self.proc.returncode, self.describe()))
        self.proc.send_signal(sig)

    def sighup(self):
        self.signal(signal.SIGHUP)

    def stop(self, expect_code=0):
        """SIGTERM, wait, check the exit code.  Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._join_reader()
                raise ServerError("repod did not exit within %.0f s of SIGTERM%s" %
                                  (STOP_TIMEOUT_S, self.describe()))
        self._join_reader()
        code = self.proc.returncode
        if expect_code is not None and code != expect_code:
            raise ServerError("repod exited with %s after SIGTERM, expected %s%s" %
                              (code, expect_code, self.describe()))
        return code

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join_reader()

    def restart(self):
        """Stops (SIGTERM, exit 0) if running, then starts again on the same
        config and data dir.  The port may change."""
        if self.running():
            self.stop()
        return self.start()

    def pin_port(self):
        """Rewrites the config so that later starts listen on the port the
        server has now (a restarted upstream keeps its endpoint)."""
        if self.port is None:
            raise ServerError("server has no port yet")
        self.config["listen"] = "127.0.0.1:%d" % self.port
        self.write_config()
        return self.port

    @property
    def endpoint(self):
        """https://127.0.0.1:PORT (what a mirror registers as endpoint)."""
        if self.port is None:
            raise ServerError("server has no port yet")
        return "https://127.0.0.1:%d" % self.port

    def log_barrier(self, timeout=5.0):
        """Waits until every line the server logged for requests answered
        so far has been read: sends one request of its own (an unknown
        route) and waits for its access line."""
        marker = "/repository/v1/log-barrier/%d" % next(_barrier_ids)
        self.request(marker, method="POST", body=b"{}")
        return self.wait_log("access POST %s " % marker, timeout)

    def access_count(self, path, status=None, settle=False):
        """How many access-log lines this server wrote (all runs) for
        POST path ('plugin/get' shorthand or absolute), optionally only
        those answered with status.  With settle, the lines of every
        request answered before the call are counted (log_barrier)."""
        if settle:
            self.log_barrier()
        if not path.startswith("/"):
            path = API_PREFIX + path
        pat = re.compile(r"\baccess POST %s (\d{3}|-) " % re.escape(path))
        n = 0
        for line in self.log().splitlines():
            m = pat.search(line)
            if m and (status is None or m.group(1) == str(status)):
                n += 1
        return n

    def metric(self, name):
        """The value of one unlabelled sample of GET /metrics (float), or None."""
        r = self.request("/metrics", method="GET")
        if r.status != 200:
            raise ServerError("GET /metrics answered %d%s" % (r.status, self.describe()))
        text = r.body.decode() if isinstance(r.body, bytes) else str(r.body)
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        return None

    def _join_reader(self):
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None

    def close(self):
        """Kills the server if still running and removes the temp dir."""
        if self.closed:
            return
        self.closed = True
        try:
            self.kill9()
        finally:
            if not KEEP_TMP:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- command line --------------------------------------------------------

    def cli(self, *args, timeout=30):
        """Runs REPOD_BIN with args; returns CompletedProcess (text)."""
        return subprocess.run([self.bin] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              timeout=timeout, text=True, cwd=self.tmp)

    def make_token(self, domain, role, name=None, reload=True):
        """`repod token create`; returns the secret (last stdout line).  When
        the server is running and reload is set, sends SIGHUP and waits until
        the token is accepted."""
        args = ["token", "create", "--config", self.config_path, "--domain", domain, "--role", role]
        if name is not None:
            args += ["--name", name]
        r = self.cli(*args)
        if r.returncode != 0:
            raise ServerError("repod %s failed (%d):\nstdout: %s\nstderr: %s" %
                              (" ".join(args), r.returncode, r.stdout, r.stderr))
        lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
        if not lines:
            raise ServerError("repod token create printed nothing on stdout; stderr: %s" % r.stderr)
        secret = lines[-1]
        self.secrets.append(secret)
        if reload and self.running():
            self.sighup()
            self.wait_token(secret, accepted=True)
        return secret

    def revoke_token(self, name, reload=True, secret=None):
        r = self.cli("token", "revoke", "--config", self.config_path, name)
        if r.returncode != 0:
            raise ServerError("repod token revoke %s failed (%d): %s %s" %
                              (name, r.returncode, r.stdout, r.stderr))
        if reload and self.running():
            self.sighup()
            if secret is not None:
                self.wait_token(secret, accepted=False)
        return r

    def wait_token(self, secret, accepted=True, timeout=5.0):
        """Polls plugin list with secret until it is (not) rejected with 401."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.request("plugin/list", {}, token=secret).status
            if (st != 401) == accepted:
                return
            if time.monotonic() > deadline:
                raise ServerError("token still %s %.0f s after SIGHUP (last status %d)%s" %
                                  ("rejected" if accepted else "accepted", timeout, st,
                                   self.describe()))
            time.sleep(0.05)

    # -- HTTPS ---------------------------------------------------------------

    def context(self, **kw):
        if not kw:
            if self._ctx is None:
                self._ctx = client_context(self.ca_file)
            return self._ctx
        return client_context(self.ca_file, **kw)

    def connect(self, context=None, timeout=REQUEST_TIMEOUT_S):
        """A new (lazy) keep-alive HTTPSConnection to the server."""
        if self.port is None:
            raise ServerError("server has no port yet")
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=context or self.context())

    def request(self, path, body=None, token=None, method="POST", headers=None, conn=None):
        """One request; returns Response(status, headers, body) where body is
        the decoded JSON when it parses, else the raw bytes.  path may be
        'plugin/list' (API shorthand) or an absolute '/healthz'.  body: None
        (no body), dict/list (JSON), str or bytes (sent as is).  With conn the
        request goes over that keep-alive connection, else a fresh one."""
        if not path.startswith("/"):
            path = API_PREFIX + path
        hdrs = {}
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
            hdrs["Content-Type"] = "application/json"
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        own = conn is None
        c = self.connect() if own else conn
        try:
            c.request(method, path, body=data, headers=hdrs)
            return read_response(c.getresponse())
        finally:
            if own:
                c.close()

    def api(self, path, body=None, token=None, **kw):
        return self.request(path, {} if body is None else body, token=token, **kw)


# --------------------------------------------------------------------------
# unittest base

class RepodTestCase(unittest.TestCase):
    """Base class: assertion helpers that print the response and server log."""

    maxDiff = 4000
    server = None  # set by subclasses (class attribute)

    def _ctx(self, resp, msg=None):
        if isinstance(resp, Response):
            out = "\nresponse: HTTP %s %r" % (resp.status, resp.body)
        else:
            out = "\nresponse: %r" % (resp,)
        if msg:
            out = "\n" + msg + out
        srv = getattr(self, "server", None)
        if srv is not None:
            out += srv.describe()
        return out

    def assertOK(self, resp, status=200, msg=None):
        self.assertEqual(resp.status, status, "expected HTTP %d%s" % (status, self._ctx(resp, msg)))
        ctype = resp.headers.get("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"),
                        "Content-Type %r%s" % (ctype, self._ctx(resp, msg)))
        self.assertIsInstance(resp.body, dict, "answer is not a JSON object" + self._ctx(resp, msg))
        return resp.body

    def assertError(self, resp, status, code=None, contains=None, msg=None):
        """resp is HTTP status with {"detail": {"code": code, "message": ...}};
        code may be a str or a tuple of allowed codes; contains: substrings
        the message must hold."""
        self.assertEqual(resp.status, status, "expected HTTP %d%s" % (status, self._ctx(resp, msg)))
        ctype = resp.headers.get("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"),
                        "Content-Type %r%s" % (ctype, self._ctx(resp, msg)))
        body = resp.body
        self.assertIsInstance(body, dict, "error body is not a JSON object" + self._ctx(resp, msg))
        detail = body.get("detail")
        self.assertIsInstance(detail, dict, "no detail object" + self._ctx(resp, msg))
        self.assertIsInstance(detail.get("code"), str, "detail.code" + self._ctx(resp, msg))
        self.assertIsInstance(detail.get("message"), str, "detail.message" + self._ctx(resp, msg))
        if code is not None:
            allowed = (code,) if isinstance(code, str) else tuple(code)
            self.assertIn(detail["code"], allowed, "error code" + self._ctx(resp, msg))
        if contains:
            for s in ([contains] if isinstance(contains, str) else contains):
                self.assertIn(s, detail["message"], "error message" + self._ctx(resp, msg))
        return detail

    def assertPluginInfo(self, p, msg=None):
        """p has exactly the PluginInfo keys with sane types."""
        self.assertIsInstance(p, dict, msg)
        self.assertEqual(set(p.keys()), set(PLUGIN_INFO_KEYS), "PluginInfo keys %s" % (msg or ""))
        self.assertIn(p["state"], ("ENABLED", "DISABLED"))
        self.assertEqual(p["service_type"], p["resource_type"])
        self.assertRegex(p["created_at"], TIMESTAMP_RE)
        self.assertRegex(p["updated_at"], TIMESTAMP_RE)
        self.assertIsInstance(p["labels"], list)
        for k in ("registry_config", "capability", "template", "tags", "repository_info"):
            self.assertIsInstance(p[k], dict, k)
        ri = p["repository_info"]
        self.assertRegex(ri.get("repository_id", ""), REPOSITORY_ID_RE)
        return p


def list_snapshot(server, token, body=None):
    """The caller's whole plugin list, sorted by (domain_id, plugin_id), for
    before/after comparisons."""
    r = server.api("plugin/list", body or {}, token=token)
    if r.status != 200 or not isinstance(r.body, dict):
        raise ServerError("plugin list failed: %r%s" % ((r.status, r.body), server.describe()))
    res = sorted(r.body.get("results", []), key=lambda p: (p.get("domain_id", ""), p.get("plugin_id", "")))
    return {"total_count": r.body.get("total_count"), "results": res}


def serve_https(handler_cls, certs=None):
    """Starts a threaded HTTPS server on 127.0.0.1, on a port it picks, with
    the development certificate of certs (default: cert_dir()), serving on a
    daemon thread.  Returns the server; its port is server_address[1].  Stop
    it with stop_https()."""
    certs = certs or cert_dir()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, "server.crt"), os.path.join(certs, "server.key"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def stop_https(httpd):
    httpd.shutdown()
    httpd.server_close()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_socket(port, context=None, server_hostname="127.0.0.1", timeout=REQUEST_TIMEOUT_S):
    """A connected, handshaken TLS socket to 127.0.0.1:port."""
    ctx = context or client_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def recv_all(sock, timeout=5.0, limit=1 << 20):
    """Reads until EOF, timeout or limit; returns the bytes (errors end the read)."""
    sock.settimeout(timeout)
    chunks = []
    total = 0
    deadline = time.monotonic() + timeout
    while total < limit and time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except (socket.timeout, ConnectionError, OSError, ssl.SSLError):
            break
        if not b:
            break
        chunks.append(b)
        total += len(b)
    return b"".join(chunks)


if __name__ == "__main__":
    # Smoke: start a server, print its port, stop.
    with Server() as s:
        print("listening on", s.port)
        print(s.request("/healthz", method="GET"))
        s.stop()
    sys.exit(0)
