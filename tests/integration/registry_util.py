"""registry_util.py - a real container registry for the integration tests.

Starts Debian's `docker-registry` (github.com/distribution/distribution 2.8)
on 127.0.0.1 with TLS (the harness's dev certificates) and, optionally,
htpasswd basic auth, and pushes minimal schema2 images through the
Distribution HTTP API (blob uploads + manifests), the way
tests/unit/test_registry_live.c does it in C.  Standard library only.

    storage = tempfile.mkdtemp()
    reg = Registry(storage, name="open").start()
    reg.push_image("team/plugin-alpha", ["1.0", "latest"])
    reg.tags("team/plugin-alpha")            # what the registry itself lists
    auth = Registry(storage, name="basic", htpasswd=make_htpasswd(dir, "alice", "s3cret")).start()
    ...
    reg.stop(); auth.stop()

Several Registry objects may share one storage folder (one pushes, all
serve).  Every process started here gets SIGKILL when the test process
dies (PR_SET_PDEATHSIG) and is stopped at exit.

Note: distribution 2.8 ignores `n=` on tags/list and sends no Link header,
so it never paginates.
"""

import atexit
import base64
import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import harness

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
HTPASSWD_BIN = shutil.which("htpasswd") or "/usr/bin/htpasswd"

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"

_live = set()


def available():
    """None when docker-registry and htpasswd are installed, else why not."""
    missing = [b for b in (REGISTRY_BIN, HTPASSWD_BIN) if not os.access(b, os.X_OK)]
    if missing:
        return ("needs %s (Debian packages docker-registry and apache2-utils; "
                "tools/install-deps.sh installs them)" % ", ".join(missing))
    return None


def make_htpasswd(folder, user, password):
    """Writes FOLDER/htpasswd with one bcrypt entry (htpasswd -Bbn); returns its path."""
    path = os.path.join(folder, "htpasswd")
    r = subprocess.run([HTPASSWD_BIN, "-Bbn", user, password], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("htpasswd failed: %s" % r.stderr.decode(errors="replace"))
    with open(path, "ab") as f:
        f.write(r.stdout.strip() + b"\n")
    return path


def _die_with_parent():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_all():
    for reg in list(_live):
        reg.stop()


atexit.register(_stop_all)


class RegistryError(AssertionError):
    pass


class Registry:
    """One `docker-registry serve` process with TLS on 127.0.0.1:port."""

    def __init__(self, storage, name="open", htpasswd=None, certs=None, port=None,
                 delete=False):
        self.storage = storage
        self.delete = delete
        self.name = name
        self.htpasswd = htpasswd
        self.certs = certs or harness.cert_dir()
        self.ca_file = os.path.join(self.certs, "ca.crt")
        self.port = port
        self.proc = None
        self.dir = os.path.join(storage, "_proc-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "config.yml")
        self.log_path = os.path.join(self.dir, "registry.log")
        self._ctx = None

    # -- life cycle -----------------------------------------------------------

    @property
    def host(self):
        """host:port as a plugin's registry_url names it."""
        return "127.0.0.1:%d" % self.port

    @property
    def api_url(self):
        return "https://127.0.0.1:%d" % self.port

    def _write_config(self):
        auth = ""
        if self.htpasswd:
            auth = ("auth:\n  htpasswd:\n    realm: repod-test\n    path: %s\n" % self.htpasswd)
        text = ("version: 0.1\n"
                "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
                "  delete:\n    enabled: %s\n"
                "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                "http:\n  addr: 127.0.0.1:%d\n  secret: repod-it-%s\n"
                "  tls:\n    certificate: %s\n    key: %s\n"
                "%s") % (self.storage, "true" if self.delete else "false", self.port, self.name,
                         os.path.join(self.certs, "server.crt"),
                         os.path.join(self.certs, "server.key"), auth)
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, timeout=15.0):
        """Starts the process (on the same port when restarted) and waits
        until the port accepts connections."""
        if self.running():
            raise RegistryError("registry %s already running" % self.name)
        for attempt in range(3):
            if self.port is None or attempt > 0:
                self.port = harness.free_port()
            self._write_config()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             preexec_fn=_die_with_parent)
            finally:
                log.close()
            _live.add(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if _port_open(self.port):
                    return self
                time.sleep(0.05)
            self.stop()
        raise RegistryError("docker-registry (%s) did not start%s" % (self.name, self.describe()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM (SIGKILL after 5 s); the port stops accepting connections."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live.discard(self)

    def describe(self):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read()[-4000:].decode(errors="replace")
        except OSError:
            text = "(no log)"
        return "\n--- docker-registry (%s) log ---\n%s\n--- end ---" % (self.name, text)

    # -- Distribution HTTP API -------------------------------------------------

    def _connect(self):
        if self._ctx is None:
            self._ctx = harness.client_context(self.ca_file)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=15, context=self._ctx)

    def _do(self, conn, method, path, body=None, headers=None, auth=None):
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % auth).encode()).decode()
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data

    def _push_blob(self, conn, name, data, auth=None):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        st, hdrs, body = self._do(conn, "POST", "/v2/%s/blobs/uploads/" % name,
                                  body=b"", auth=auth)
        if st != 202:
            raise RegistryError("POST blob upload %s -> %d %r" % (name, st, body))
        loc = hdrs.get("Location", "")
        if loc.startswith("https://"):
            loc = "/" + loc.split("/", 3)[3]
        loc += ("&" if "?" in loc else "?") + "digest=" + digest
        st, _, body = self._do(conn, "PUT", loc, body=data,
                               headers={"Content-Type": "application/octet-stream"}, auth=auth)
        if st != 201:
            raise RegistryError("PUT blob %s -> %d %r" % (name, st, body))
        return digest

    def _manifest(self, conn, name, auth=None):
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Labels": {"image": name}},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = b"not really a tar.gz, the registry does not look at it: " + name.encode()
        cfg_digest = self._push_blob(conn, name, config, auth)
        layer_digest = self._push_blob(conn, name, layer, auth)
        return json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(config), "digest": cfg_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(layer), "digest": layer_digest}],
        }).encode()

    def push_image(self, name, tags, auth=None):
        """Pushes one minimal schema2 image of name under every tag (in the
        order given).  With no tags the manifest is pushed by digest only:
        the repository exists but lists no tag."""
        conn = self._connect()
        try:
            manifest = self._manifest(conn, name, auth)
            refs = list(tags) or ["sha256:" + hashlib.sha256(manifest).hexdigest()]
            for ref in refs:
                st, _, body = self._do(conn, "PUT", "/v2/%s/manifests/%s" % (name, ref),
                                       body=manifest, headers={"Content-Type": MANIFEST_V2},
                                       auth=auth)
                if st != 201:
                    raise RegistryError("PUT manifest %s:%s -> %d %r" % (name, ref, st, body))
        finally:
            conn.close()

    def untag(self, name, tag, auth=None):
        """Deletes the manifest that tag names (needs delete=True): every tag
        of that manifest goes; when it was the only manifest, the
        repository still exists and tags/list answers {"tags": null}."""
        conn = self._connect()
        try:
            st, hdrs, body = self._do(conn, "HEAD", "/v2/%s/manifests/%s" % (name, tag),
                                      headers={"Accept": MANIFEST_V2}, auth=auth)
            digest = hdrs.get("Docker-Content-Digest")
            if st != 200 or not digest:
                raise RegistryError("HEAD manifest %s:%s -> %d" % (name, tag, st))
            st, _, body = self._do(conn, "DELETE", "/v2/%s/manifests/%s" % (name, digest),
                                   auth=auth)
            if st != 202:
                raise RegistryError("DELETE manifest %s@%s -> %d %r" % (name, digest, st, body))
        finally:
            conn.close()

    def tags_list(self, name, auth=None):
        """(status, decoded body) of GET /v2/<name>/tags/list."""
        conn = self._connect()
        try:
            st, _, body = self._do(conn, "GET", "/v2/%s/tags/list" % name, auth=auth)
        finally:
            conn.close()
        try:
            return st, json.loads(body.decode())
        except ValueError:
            return st, body


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections and never
    answers (not even the TLS handshake): a registry that times out."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def api_url(self):
        return "https://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self._thread.join(2)


def version_key(tag):
    """SPEC 9 precedence as a sort key (larger = newer) for tags made of
    plain dot-separated numbers (optionally a leading 'v'); other tags get
    None.  Used only to compute expected orders of generated tag sets."""
    t = tag[1:] if tag.startswith("v") else tag
    parts = t.split(".")
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def spec_order(tags):
    """tags sorted newest first: versions by precedence (a longer version
    wins on an equal prefix), then the non-version tags alphabetically."""
    versions = [t for t in tags if version_key(t) is not None]
    others = [t for t in tags if version_key(t) is None]
    return sorted(versions, key=version_key, reverse=True) + sorted(others)
