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
                 delete=False, token=None):
        self.storage = storage
        self.token = token  # a TokenService: `auth: token` with its realm
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
        elif self.token is not None:
            auth = ("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n"
                    "    rootcertbundle: %s\n") % (self.token.realm, TokenService.SERVICE,
                                                 TokenService.ISSUER,
                                                 os.path.join(self.certs, "ca.crt"))
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


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_service_account_key(folder, name, email, token_uri):
    """Writes FOLDER/NAME.json, a GCP service-account key file with a new
    RSA key; returns (path, public key).  Needs python3-cryptography."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = os.path.join(folder, name + ".json")
    with open(path, "w") as f:
        json.dump({"type": "service_account", "project_id": "repod-test",
                   "private_key_id": "k-" + name, "private_key": pem, "client_email": email,
                   "client_id": "1", "token_uri": token_uri}, f)
    return path, key.public_key()


class TokenService:
    """An HTTPS server on 127.0.0.1 that plays two credential services:

    GET /token?service=..&scope=..  docker-registry's token auth (`auth:
        token`, Registry(token=this)): ES256 JWTs signed with the dev server
        key, its certificate in the x5c header (the dev CA is the registry's
        rootcertbundle).  Anonymous requests get pull access only to
        repositories under public_prefixes; Basic requests must match
        `users` (name -> password) or be user "oauth2accesstoken" with an
        access token issued below and not yet expired.
    POST /oauth2/token  Google's JWT bearer grant: verifies the RS256
        signature with the public key registered for the JWT's iss
        (add_client), aud == this URL, iat/exp sane and not expired;
        answers {"access_token", "expires_in"} (expires_in per client) or
        400 {"error": "invalid_grant"}.

    Records what it saw (token_requests, grants, refusals).  Needs
    python3-cryptography."""

    SERVICE = "repod-test-registry"
    ISSUER = "repod-test-issuer"

    def __init__(self, users=None, public_prefixes=()):
        import http.server
        from cryptography.hazmat.primitives import serialization
        from cryptography import x509
        outer = self
        self.users = dict(users or {})
        self.public_prefixes = tuple(public_prefixes)
        self.clients = {}         # email -> (public key, expires_in)
        self.issued = {}          # access token -> expiry (monotonic)
        self.token_requests = []  # (user or None, scope)
        self.grants = []          # emails that got an access token
        self.refusals = []        # reasons the grant endpoint refused
        self.lock = threading.Lock()
        certs = harness.cert_dir()
        with open(os.path.join(certs, "server.key"), "rb") as f:
            self.sign_key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(certs, "server.crt"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer._registry_token(self)

            def do_POST(self):
                outer._grant(self)

        self.httpd = harness.serve_https(Handler, certs)
        self.port = self.httpd.server_address[1]

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def realm(self):
        return "https://127.0.0.1:%d/token" % self.port

    @property
    def token_uri(self):
        return "https://127.0.0.1:%d/oauth2/token" % self.port

    def add_client(self, email, public_key, expires_in=3600):
        self.clients[email] = (public_key, expires_in)

    def grants_of(self, email):
        with self.lock:
            return self.grants.count(email)

    def close(self):
        harness.stop_https(self.httpd)

    # -- docker-registry token auth -----------------------------------------

    def _jwt(self, subject, access):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "exp": now + 300,
                  "nbf": now - 30, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = (_b64url(json.dumps(header).encode()) + "." +
                   _b64url(json.dumps(claims).encode()))
        der = self.sign_key.sign(signing.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _basic_ok(self, user, password):
        if user == "oauth2accesstoken":
            expiry = self.issued.get(password)
            return expiry is not None and time.monotonic() < expiry
        return user in self.users and self.users[user] == password

    def _registry_token(self, h):
        import urllib.parse
        url = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path != "/token" or q.get("service", [""])[0] != self.SERVICE:
            h._reply(400, {"details": "unknown service"})
            return
        scope = q.get("scope", [""])[0]
        user = None
        authz = h.headers.get("Authorization")
        if authz is not None:
            try:
                user, _, pw = base64.b64decode(authz.split(" ", 1)[1]).decode().partition(":")
            except (ValueError, IndexError):
                user, pw = "?", ""
            with self.lock:
                self.token_requests.append((user, scope))
                ok = authz.startswith("Basic ") and self._basic_ok(user, pw)
            if not ok:
                h._reply(401, {"details": "incorrect username or password"})
                return
        else:
            with self.lock:
                self.token_requests.append((None, scope))
        access = []
        if scope.startswith("repository:"):
            name, _, actions = scope[len("repository:"):].rpartition(":")
            if user is not None or name.startswith(self.public_prefixes):
                access.append({"type": "repository", "name": name,
                               "actions": actions.split(",")})
        token = self._jwt(user or "", access)
        h._reply(200, {"token": token, "access_token": token, "expires_in": 300})

    # -- Google's JWT bearer grant ----------------------------------------------

    def _refuse(self, h, why):
        with self.lock:
            self.refusals.append(why)
        h._reply(400, {"error": "invalid_grant", "error_description": why})

    def _grant(self, h):
        import urllib.parse
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        n = int(h.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(h.rfile.read(n).decode())
        if (h.path != "/oauth2/token" or
                h.headers.get("Content-Type") != "application/x-www-form-urlencoded" or
                form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]):
            self._refuse(h, "not a JWT bearer grant")
            return
        parts = form.get("assertion", [""])[0].split(".")
        if len(parts) != 3 or any("=" in p for p in parts):
            self._refuse(h, "malformed assertion")
            return
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            sig = _b64url_decode(parts[2])
        except ValueError:
            self._refuse(h, "undecodable assertion")
            return
        if header != {"alg": "RS256", "typ": "JWT"}:
            self._refuse(h, "bad header %r" % header)
            return
        client = self.clients.get(claims.get("iss"))
        if client is None:
            self._refuse(h, "unknown client")
            return
        try:
            client[0].verify(sig, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(),
                             hashes.SHA256())
        except InvalidSignature:
            self._refuse(h, "bad signature")
            return
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if claims.get("aud") != self.token_uri:
            self._refuse(h, "bad audience")
            return
        if (not isinstance(iat, int) or not isinstance(exp, int) or exp <= now or
                iat > now + 60 or exp - iat > 3600 or not claims.get("scope")):
            self._refuse(h, "bad times or scope")
            return
        token = "ya29.test-" + os.urandom(12).hex()
        with self.lock:
            self.issued[token] = time.monotonic() + client[1]
            self.grants.append(claims["iss"])
        h._reply(200, {"access_token": token, "expires_in": client[1], "token_type": "Bearer"})
