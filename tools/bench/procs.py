"""procs.py - repod processes, HTTPS clients and clean-up for the benchmarks.

Standard library only.  Every process started here is registered in CLEANUP
and killed (then its temp dir removed, unless kept) when the benchmark ends,
whether it ends normally, on an error, on SIGINT/SIGTERM or on its deadline.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
REPOD_BIN = os.environ.get("REPOD_BIN") or os.path.join(SOURCE_DIR, "build", "repod")
GEN_CERTS = os.path.join(SOURCE_DIR, "certs", "gen-dev-certs.sh")
API = "/repository/v1/"


class BenchError(Exception):
    pass


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---- clean-up -------------------------------------------------------------

class Cleanup:
    def __init__(self):
        self.procs = []
        self.dirs = []
        self.keep = False

    def proc(self, p):
        self.procs.append(p)
        return p

    def dir(self, d):
        self.dirs.append(d)
        return d

    def run(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if not self.keep:
            for d in self.dirs:
                shutil.rmtree(d, ignore_errors=True)
        self.dirs = []


CLEANUP = Cleanup()


def _on_signal(signum, _frame):
    raise SystemExit("stopped by signal %d" % signum)


def _on_alarm(_signum, _frame):
    raise BenchError("deadline reached (--max-minutes); stopping")


def install_handlers(max_minutes):
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(max_minutes * 60))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_certs(workdir):
    d = os.path.join(workdir, "certs")
    os.makedirs(d)
    r = subprocess.run(["bash", GEN_CERTS, "--force", d], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise BenchError("gen-dev-certs.sh failed: %s" % r.stderr.decode(errors="replace"))
    return d


def client_context(ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = True
    return ctx


# ---- one keep-alive HTTPS client ------------------------------------------

class Client:
    """One keep-alive TLS connection; every call checks the status."""

    def __init__(self, port, ctx, token=None, timeout=600):
        self.port, self.ctx, self.token, self.timeout = port, ctx, token, timeout
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=self.timeout,
                                                context=self.ctx)

    def call(self, path, body=None, expect=200, method="POST"):
        """Returns (status, headers, raw body).  Raises BenchError when the
        status is not expect."""
        if not path.startswith("/"):
            path = API + path
        hdrs = {}
        data = None
        if method == "POST":
            data = json.dumps(body if body is not None else {}).encode()
            hdrs["Content-Type"] = "application/json"
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the server closed an idle keep-alive connection: reconnect once
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        if expect is not None and resp.status != expect:
            raise BenchError("%s %s answered %d (expected %d): %s" %
                             (method, path, resp.status, expect, raw[:300].decode(errors="replace")))
        return resp.status, resp.headers, raw

    def json(self, path, body=None):
        return json.loads(self.call(path, body)[2])

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---- a repod process ------------------------------------------------------

class Repod:
    """A repod with its own folder (config, data, tokens, log) under workdir."""

    def __init__(self, workdir, name, certs, extra=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.name = name
        self.certs = certs
        self.ca_file = os.path.join(certs, "ca.crt")
        self.ctx = client_context(self.ca_file)
        self.port = free_port()
        self.config_path = os.path.join(self.dir, "repod.json")
        self.log_path = os.path.join(self.dir, "server.log")
        self.config = {
            "listen": "127.0.0.1:%d" % self.port,
            "tls": {"cert": os.path.join(certs, "server.crt"),
                    "key": os.path.join(certs, "server.key")},
            "data_dir": os.path.join(self.dir, "data"),
            "auth": {"tokens_file": os.path.join(self.dir, "tokens.json")},
            "workers": 2,
            "log_level": "warn",
        }
        for k, v in (extra or {}).items():
            if isinstance(v, dict) and isinstance(self.config.get(k), dict):
                self.config[k].update(v)
            else:
                self.config[k] = v
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        self.proc = None

    def token(self, domain, role):
        r = subprocess.run([REPOD_BIN, "token", "create", "--config", self.config_path,
                            "--domain", domain, "--role", role, "--name",
                            "bench-%s-%s" % (domain, role)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
        if r.returncode != 0 or not lines:
            raise BenchError("repod token create failed: %s" % r.stderr)
        return lines[-1]

    def start(self, timeout=900):
        """Starts repod and waits for /readyz 200.  Returns the seconds from
        exec to the first 200."""
        logf = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = CLEANUP.proc(subprocess.Popen(
            [REPOD_BIN, "--config", self.config_path], stdin=subprocess.DEVNULL,
            stdout=logf, stderr=logf, cwd=self.dir))
        logf.close()
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError("%s exited with %d before ready; log %s:\n%s" %
                                 (self.name, self.proc.returncode, self.log_path, self.log_tail()))
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5,
                                                context=self.ctx)
                c.request("GET", "/readyz")
                st = c.getresponse().status
                c.close()
                if st == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("%s not ready within %d s" % (self.name, timeout))
            time.sleep(0.01)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BenchError("%s did not stop within 60 s of SIGTERM" % self.name)
            if self.proc.returncode != 0:
                raise BenchError("%s exited with %d after SIGTERM" %
                                 (self.name, self.proc.returncode))

    def hwm_kb(self):
        """Peak RSS (VmHWM, kB) of the running process."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise BenchError("no VmHWM for pid %d" % self.proc.pid)

    def client(self, token=None):
        return Client(self.port, self.ctx, token)

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d" % self.port

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def run_in_workdir(args, prefix, run):
    """Runs run(args, workdir) with the signal and deadline handlers
    installed, in args.keep (a new folder, kept) or a temp dir (removed),
    and cleans up whatever it started, however it ends."""
    install_handlers(args.max_minutes)
    if args.keep:
        if os.path.exists(args.keep):
            raise BenchError("--keep %s: already exists (give a new folder)" % args.keep)
        os.makedirs(args.keep)
        workdir = args.keep
        CLEANUP.keep = True
    else:
        workdir = CLEANUP.dir(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(args, workdir)
    finally:
        CLEANUP.run()
