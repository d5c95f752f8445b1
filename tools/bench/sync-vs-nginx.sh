#!/usr/bin/env bash
# sync-vs-nginx.sh - times the first catalog sync of a mirror of an
# N-plugin upstream next to curl fetching the same catalog bytes from nginx
# over TLS, in the same run (docs/benchmarks.md, "First catalog sync").
#
#   tools/bench/sync-vs-nginx.sh [--plugins N] [--page-size P] [--build-dir DIR]
#
# The upstream is a small Python server (TLS, the dev certificates) that
# answers the published contract: repository list and a paged plugin list
# whose pages are rendered before the clock starts.  The same pages are
# written to files that nginx serves; curl fetches them over one keep-alive
# connection, then the whole catalog as one file.  Everything runs on
# 127.0.0.1 with ports picked at run time, in a temporary folder removed at
# the end.  Needs python3, nginx and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
PLUGINS=100000
PAGE=1000
BUILD_DIR=${BUILD_DIR:-build}
while [ $# -gt 0 ]; do
    case "$1" in
    --plugins) PLUGINS=$2; shift 2 ;;
    --page-size) PAGE=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    *) echo "usage: $0 [--plugins N] [--page-size P] [--build-dir DIR]" >&2; exit 2 ;;
    esac
done
for tool in python3 nginx curl; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 2; }
done
[ -x "$BUILD_DIR/repod" ] || { echo "$0: $BUILD_DIR/repod not built (tools/build.sh)" >&2; exit 2; }

exec python3 - "$PLUGINS" "$PAGE" "$BUILD_DIR/repod" <<'PY'
import http.server, json, os, re, shutil, socket, socketserver, ssl, subprocess, sys
import tempfile, threading, time, urllib.request

n, page, repod = int(sys.argv[1]), int(sys.argv[2]), os.path.abspath(sys.argv[3])
tmp = tempfile.mkdtemp(prefix="sync-vs-nginx.")
os.chmod(tmp, 0o755)  # nginx workers may run as another user
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(i):
    pid = "plugin-bench-%06d" % i
    return {"plugin_id": pid, "name": "Bench plugin %06d" % i, "state": "ENABLED",
            "image": "bench/" + pid, "registry_type": "DOCKER_HUB",
            "registry_url": "registry.hub.docker.com", "registry_config": {},
            "capability": {"supported_schema": ["aws_access_key"]},
            "template": {"options": {"schema": {"type": "object", "properties": {}}}},
            "labels": ["bench", "collector"], "tags": {"team": "bench"},
            "docs": {"en": {"summary": "A generated plugin for the sync benchmark."}},
            "provider": "aws", "resource_type": "inventory.Collector",
            "domain_id": "domain-bench", "repository_info": {
                "repository_id": "repo-beefbeefbeef", "name": "Bench", "repository_type": "local"},
            "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"}


try:
    certs = os.path.join(tmp, "certs")
    subprocess.run(["bash", "certs/gen-dev-certs.sh", "--force", certs], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ca = os.path.join(certs, "ca.crt")
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    plugins = [record(i) for i in range(n)]
    pages = {}
    for k, start in enumerate(range(1, n + 1, page) if n else [1]):
        body = json.dumps({"results": plugins[start - 1:start - 1 + page],
                           "total_count": n}).encode()
        pages[start] = body
        with open(os.path.join(www, "page-%05d.json" % k), "wb") as f:
            f.write(body)
    with open(os.path.join(www, "all.json"), "wb") as f:
        f.write(json.dumps({"results": plugins, "total_count": n}).encode())
    page_bytes = sum(len(b) for b in pages.values())
    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not self.path.endswith(("/repository/list", "/plugin/list")):
                body = b'{"detail":{"code":"ERROR_NOT_FOUND","message":"Not found."}}'
                self.send_response(404)  # an older upstream: no dashboard templates
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path.endswith("/repository/list"):
                data = json.dumps({"results": [{"repository_id": "repo-beefbeefbeef",
                                                "name": "Bench", "repository_type": "local"}],
                                   "total_count": 1}).encode()
            else:
                pg = (req.get("query") or {}).get("page") or {}
                start, limit = int(pg.get("start", 1)), int(pg.get("limit", 0))
                data = pages.get(start) if limit == page else None
                if data is None:
                    chunk = plugins[start - 1:start - 1 + limit] if limit else plugins
                    data = json.dumps({"results": chunk, "total_count": n}).encode()
                served.append(len(data))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    class Upstream(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

        def finish_request(self, request, addr):
            try:
                with ctx.wrap_socket(request, server_side=True) as tls:
                    Handler(tls, addr, self)
            except OSError:
                pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, "server.crt"), os.path.join(certs, "server.key"))
    up = Upstream(("127.0.0.1", 0), Handler)
    threading.Thread(target=up.serve_forever, daemon=True).start()

    # the mirror
    conf = os.path.join(tmp, "repod.json")
    with open(conf, "w") as f:
        json.dump({"listen": "127.0.0.1:0", "data_dir": os.path.join(tmp, "data"),
                   "tls": {"cert": os.path.join(certs, "server.crt"),
                           "key": os.path.join(certs, "server.key")},
                   "auth": {"tokens_file": os.path.join(tmp, "tokens.json")},
                   "log_level": "warn",
                   "remote_defaults": {"sync_page_size": page, "timeout_ms": 120000,
                                       "ttl_s": 3600}}, f)
    token = subprocess.run([repod, "token", "create", "--config", conf, "--domain", "ops",
                            "--role", "system"], check=True, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True).stdout.strip().splitlines()[-1]
    srv = subprocess.Popen([repod, "--config", conf], stderr=subprocess.PIPE, text=True)
    procs.append(srv)
    port = None
    for line in srv.stderr:
        m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        sys.exit("repod did not start")
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    cctx = ssl.create_default_context(cafile=ca)

    def api(path, body):
        req = urllib.request.Request("https://127.0.0.1:%d/repository/v1/%s" % (port, path),
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=cctx, timeout=600) as r:
            return json.loads(r.read())

    t0 = time.monotonic()
    reg = api("repository/register", {
        "name": "Bench", "repository_type": "remote",
        "endpoint": "https://127.0.0.1:%d" % up.server_address[1], "upstream": {"ca_file": ca}})
    synced = api("repository/sync", {"repository_id": reg["repository_id"]})  # joins the first
    sync_s = time.monotonic() - t0
    sync_pages = len(served)
    status = api("repository/get", {"repository_id": reg["repository_id"]})["upstream"]
    if synced["plugins"] != n or status["cached_plugins"] != n:
        sys.exit("the mirror holds %r plugins, not %d" % (synced, n))
    t0 = time.monotonic()
    listed = api("plugin/list", {"repository_id": reg["repository_id"],
                                 "query": {"count_only": True}})
    count_s = time.monotonic() - t0

    # nginx serving the same bytes
    nport = free_port()
    nconf = os.path.join(tmp, "nginx.conf")
    with open(nconf, "w") as f:
        f.write("""worker_processes 1; pid %(t)s/nginx.pid; error_log %(t)s/nginx.err;
events {}
http { access_log off; client_body_temp_path %(t)s/cb; proxy_temp_path %(t)s/px;
  fastcgi_temp_path %(t)s/fc; uwsgi_temp_path %(t)s/uw; scgi_temp_path %(t)s/sc;
  server { listen 127.0.0.1:%(p)d ssl; ssl_certificate %(c)s/server.crt;
    ssl_certificate_key %(c)s/server.key; root %(w)s; } }
""" % {"t": tmp, "p": nport, "c": certs, "w": www})
    ng = subprocess.Popen(["nginx", "-p", tmp, "-c", nconf, "-g", "daemon off;"],
                          stderr=subprocess.DEVNULL)
    procs.append(ng)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", nport), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    base = "https://127.0.0.1:%d/" % nport
    urls = [base + "page-%05d.json" % k for k in range(len(pages))]
    curl = ["curl", "-sS", "--fail", "--cacert", ca]

    def timed_curl(targets):
        args = list(curl)
        for u in targets:
            args += ["-o", "/dev/null", u]
        t = time.monotonic()
        subprocess.run(args, check=True)
        return time.monotonic() - t

    # the same page requests sent straight to the upstream (its own share)
    args = list(curl) + ["-H", "Content-Type: application/json"]
    up_url = "https://127.0.0.1:%d/repository/v1/plugin/list" % up.server_address[1]
    for k, start in enumerate(sorted(pages)):
        if k:
            args.append("--next")
            args += ["-sS", "--fail", "--cacert", ca, "-H", "Content-Type: application/json"]
        args += ["-o", "/dev/null", "-d", json.dumps({"query": {"page": {"start": start,
                                                                          "limit": page}}}),
                 up_url]
    t = time.monotonic()
    subprocess.run(args, check=True)
    upstream_s = time.monotonic() - t
    pages_s = timed_curl(urls)
    whole_s = timed_curl([base + "all.json"])
    print("plugins %d, page size %d, %d pages, %.1f MB of pages (%.1f MB as one file)"
          % (n, page, len(pages), page_bytes / 1e6, os.path.getsize(os.path.join(www, "all.json")) / 1e6))
    print("%-52s %8s" % ("step", "seconds"))
    print("%-52s %8.2f" % ("repod: register + first sync (%d upstream pages)" % sync_pages, sync_s))
    print("%-52s %8.2f" % ("curl: the same page requests to the upstream itself", upstream_s))
    print("%-52s %8.2f" % ("curl: the same pages from nginx (one connection)", pages_s))
    print("%-52s %8.2f" % ("curl: the whole catalog as one file from nginx", whole_s))
    print("%-52s %8.2f" % ("repod: count_only list of the mirrored catalog", count_s))
    if listed.get("total_count") != n:
        sys.exit("count_only answered %r" % listed)
finally:
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, True)
PY
