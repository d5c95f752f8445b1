"""fake_upstream.py - a misbehaving upstream repod for the federation tests.

A small HTTPS server (Python standard library, TLS with the harness's dev
certificates or any other cert dir) that answers the three calls a mirror
sends upstream (SPEC 4, 5):

  POST /repository/v1/repository/list   always correct: one local repository
                                         (repository_id fixed, default
                                         repo-0123456789ab)
  POST /repository/v1/plugin/list        per mode (below)
  POST /repository/v1/plugin/get         per mode (below)

Modes (attribute `mode`, or POST /_fake/mode {"mode": M} from another process):

  good         the catalog in `plugins` (valid PluginInfo documents)
  garbage      200, Content-Type application/json, a body that is not JSON
  wrong_shape  200, valid JSON, but each plugin lacks its `image`
  oversized    200, valid JSON of the right shape, larger than `oversize_bytes`
  stall        never answers (the connection stays open until stop())
  error500     500 with an ERROR_INTERNAL body

`get_delay_s` delays good plugin/get answers (to hold a request in flight
for the coalescing test).  Every API request is recorded in `requests` as
(path, body) in arrival order; count(path) counts them.

In-process use (what the tests do):

    fake = FakeUpstream(cert_dir(), plugins=[fake_plugin("acme/fake-a")])
    fake.start(); ... fake.mode = "garbage"; ... fake.stop()

Stand-alone: python3 fake_upstream.py --certs DIR [--port N] [--mode M]
"""

import argparse
import copy
import http.server
import json
import os
import socketserver
import ssl
import sys
import threading
import time

API = "/repository/v1/"
MODES = ("good", "garbage", "wrong_shape", "oversized", "stall", "error500")
DEFAULT_REPOSITORY_ID = "repo-0123456789ab"


def fake_plugin(image, name=None, **extra):
    """A complete, valid PluginInfo document as an upstream repod sends it."""
    pid = image.rsplit("/", 1)[-1]
    doc = {
        "plugin_id": pid,
        "name": name or ("Fake " + pid),
        "state": "ENABLED",
        "resource_type": "inventory.Collector",
        "service_type": "inventory.Collector",
        "image": image,
        "provider": "fake",
        "registry_type": "DOCKER_HUB",
        "registry_url": "registry.hub.docker.com",
        "registry_config": {},
        "capability": {},
        "template": {},
        "labels": ["fake"],
        "tags": {},
        "domain_id": "fake-domain",
        "repository_info": {"repository_id": DEFAULT_REPOSITORY_ID, "name": "Local",
                            "repository_type": "local"},
        "created_at": "2024-01-02T03:04:05.678Z",
        "updated_at": "2024-01-02T03:04:05.678Z",
    }
    doc.update(extra)
    return doc


def _error(code, message):
    return {"detail": {"code": code, "message": message}}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-upstream/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        self._send(404, _error("ERROR_UNKNOWN_ROUTE", "Unknown route."))

    def do_POST(self):
        fake = self.server.fake
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        try:
            body = json.loads(raw.decode() or "{}")
        except ValueError:
            body = None
        path = self.path
        if path == "/_fake/mode":
            mode = (body or {}).get("mode")
            if mode not in MODES:
                self._send(400, _error("ERROR_INVALID_PARAMETER", "mode"))
                return
            fake.mode = mode
            self._send(200, {"mode": mode})
            return
        with fake.lock:
            fake.requests.append((path, body))
            mode = fake.mode
        if path == API + "repository/list":
            self._send(200, {"results": [fake.repository_info()], "total_count": 1})
            return
        if path not in (API + "plugin/list", API + "plugin/get"):
            self._send(404, _error("ERROR_UNKNOWN_ROUTE", "Unknown route."))
            return
        is_get = path.endswith("/get")
        if mode == "stall":
            fake.release.wait(600)
            self.close_connection = True
            return
        if mode == "garbage":
            self._send(200, b"<html>this is { not json", "application/json")
            return
        if mode == "error500":
            self._send(500, _error("ERROR_INTERNAL", "Internal error."))
            return
        plugins = fake.snapshot()
        if mode == "wrong_shape":
            for p in plugins:
                p.pop("image", None)
        if mode == "oversized":
            pad = "x" * fake.oversize_bytes
            for p in plugins:
                p["tags"] = {"padding": pad}
        if is_get:
            pid = (body or {}).get("plugin_id")
            hit = [p for p in plugins if p.get("plugin_id") == pid]
            if mode == "good" and fake.get_delay_s:
                time.sleep(fake.get_delay_s)
            if not hit:
                if mode == "good":
                    self._send(404, _error("ERROR_NO_PLUGIN",
                                           "Plugin not found. (plugin_id = %s)" % pid))
                    return
                # a bad mode answers badly even for unknown ids
                hit = [fake_plugin("fake/" + (pid or "x"))]
                if mode == "wrong_shape":
                    hit[0].pop("image", None)
                if mode == "oversized":
                    hit[0]["tags"] = {"padding": "x" * fake.oversize_bytes}
            self._send(200, hit[0])
        else:
            self._send(200, {"results": plugins, "total_count": len(plugins)})


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, ctx, fake):
        self.ctx = ctx
        self.fake = fake
        http.server.HTTPServer.__init__(self, addr, _Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the request's own thread, so a client
        # that fails (or stalls in) the handshake never blocks accept().
        try:
            request.settimeout(30)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.fake.lock:
                self.fake.tls_failures += 1
            return
        try:
            tls.settimeout(None)
            self.RequestHandlerClass(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass


class FakeUpstream:
    """One fake upstream on 127.0.0.1 (port 0 = any free port)."""

    def __init__(self, certs_dir, plugins=None, repository_id=DEFAULT_REPOSITORY_ID,
                 name="Fake Market", port=0, mode="good"):
        self.certs_dir = certs_dir
        self.repository_id = repository_id
        self.name = name
        self.plugins = list(plugins or [])
        self.mode = mode
        self.get_delay_s = 0.0
        self.oversize_bytes = 64 * 1024
        self.lock = threading.Lock()
        self.requests = []
        self.tls_failures = 0
        self.release = threading.Event()
        self._want_port = port
        self._srv = None
        self._thread = None
        self.port = None

    # -- state ----------------------------------------------------------------

    def repository_info(self):
        return {"repository_id": self.repository_id, "name": self.name,
                "repository_type": "local", "priority": 0,
                "created_at": "2024-01-01T00:00:00.000Z"}

    def snapshot(self):
        with self.lock:
            return copy.deepcopy(self.plugins)

    def set_plugins(self, plugins):
        with self.lock:
            self.plugins = list(plugins)

    def count(self, path, plugin_id=None):
        """Requests received for path ('plugin/get' shorthand or absolute)."""
        if not path.startswith("/"):
            path = API + path
        with self.lock:
            return sum(1 for p, b in self.requests
                       if p == path and (plugin_id is None or (b or {}).get("plugin_id") == plugin_id))

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d" % self.port

    # -- life cycle -------------------------------------------------------------

    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.path.join(self.certs_dir, "server.crt"),
                            os.path.join(self.certs_dir, "server.key"))
        self.release.clear()
        self._srv = _Server(("127.0.0.1", self._want_port), ctx, self)
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._srv is None:
            return
        self.release.set()           # let stalled handlers go
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)
        self._srv = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--certs", required=True, help="folder with server.crt and server.key")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", choices=MODES, default="good")
    ap.add_argument("--repository-id", default=DEFAULT_REPOSITORY_ID)
    args = ap.parse_args(argv)
    fake = FakeUpstream(args.certs, plugins=[fake_plugin("fake/fake-a"), fake_plugin("fake/fake-b")],
                        repository_id=args.repository_id, port=args.port, mode=args.mode)
    fake.start()
    print("fake-upstream: listening on %s" % fake.endpoint, file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
