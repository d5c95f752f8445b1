#!/usr/bin/env python3
"""get_vs_nginx.py - plugin get throughput of repod against nginx.

    get_vs_nginx.py [--plugins N] [--duration S] [--connections C]
                    [--threads T] [--keep DIR] [--max-minutes M]

In one run, on 127.0.0.1, with the same dev certificate everywhere:

  1. starts repod, registers N plugins (default 1000) through the API and
     saves the exact bytes of one PluginInfo answer (plugin get);
  2. starts a mirror (a second repod whose remote repository is the first),
     syncs it, and checks that the mirror answers the same plugin from its
     cache (X-Cache: HIT);
  3. starts nginx (Debian nginx-light) with TLS, serving those bytes as a
     static file for POST: the static module answers POST with 405, and
     `error_page 405 =200 $uri;` turns that into an internal GET of the same
     file answered 200 (the request body is discarded);
  4. runs `wrk -tT -cC -dS --latency` with a Lua script that sends the same
     POST (method, JSON body, Content-Type, Authorization) against nginx,
     repod's local get and the mirror's cached remote get, and prints req/s,
     p50 / p99 and the ratios repod / nginx.

Any non-2xx answer or socket read/write/timeout error fails the run
(non-zero exit).  nginx and wrk must be installed (get-vs-nginx.sh installs
them with apt-get).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from procs import (CLEANUP, REPOD_BIN, BenchError, Client, client_context, free_port,  # noqa: E402
                   log, run_in_workdir, make_certs)
from read_bench import load, start_mirror, start_upstream  # noqa: E402

NGINX_CONF = """\
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs}/server.crt;
        ssl_certificate_key {certs}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root {dir}/www;
        default_type application/json;
        # The static module answers POST with 405; serve the file instead.
        error_page 405 =200 $uri;
        location = /repository/v1/plugin/get {{
            try_files /plugin-info.json =404;
        }}
    }}
}}
"""

WRK_LUA = """\
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def start_nginx(workdir, certs):
    d = os.path.join(workdir, "nginx")
    os.makedirs(os.path.join(d, "www"))
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, certs=certs, user=user))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    logf = open(os.path.join(d, "stderr.log"), "ab")
    proc = CLEANUP.proc(subprocess.Popen([nginx, "-c", conf, "-p", d], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf))
    logf.close()
    return d, port, proc


def wait_port(port, proc, what, timeout=30):
    import socket
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError("%s exited with %d" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError("%s did not listen within %d s" % (what, timeout))
            time.sleep(0.05)


def run_wrk(workdir, label, port, body, token, args):
    script = os.path.join(workdir, "wrk-%s.lua" % label)
    with open(script, "w") as f:
        f.write(WRK_LUA.format(body=body, token=token))
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % args.duration,
           "--timeout", "10s", "--latency", "-s", script,
           "https://127.0.0.1:%d/repository/v1/plugin/get" % port]
    log("wrk against %s: %s" % (label, " ".join(cmd)))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=args.duration + 120)
    out = r.stdout
    if r.returncode != 0:
        raise BenchError("wrk failed against %s (%d):\n%s" % (label, r.returncode, out))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if m:
        raise BenchError("%s answered %s non-2xx responses:\n%s" % (label, m.group(1), out))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m and any(int(x) for x in m.groups()):
        raise BenchError("socket errors against %s:\n%s" % (label, out))
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "requests": total, "p50": lat(out, "50%"), "p99": lat(out, "99%")}


def lat(out, q):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(q), out, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugins", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", metavar="DIR")
    ap.add_argument("--max-minutes", type=float, default=60)
    args = ap.parse_args(argv)
    if args.plugins < 1 or args.duration < 1 or args.connections < 1 or args.threads < 1:
        ap.error("--plugins, --duration, --connections and --threads must be >= 1")
    for tool in ("wrk", "nginx"):
        if not (shutil.which(tool) or os.access("/usr/sbin/" + tool, os.X_OK)):
            raise BenchError("%s is not installed (tools/bench/get-vs-nginx.sh installs it)" % tool)
    if not os.access(REPOD_BIN, os.X_OK):
        raise BenchError("no repod binary at %s: build it (tools/build.sh) or set REPOD_BIN"
                         % REPOD_BIN)
    return run_in_workdir(args, "repod-get-vs-nginx-", run)


def run(args, workdir):
    certs = make_certs(workdir)
    srv, tokens = start_upstream(workdir, certs)
    log("loading %d plugins through the API" % args.plugins)
    _, main_ids = load(srv, tokens, args.plugins, 8)
    plugin_id = main_ids[len(main_ids) // 2]
    body = '{"plugin_id": "%s"}' % plugin_id
    viewer = srv.client(tokens["viewer"])
    _, _, info = viewer.call("plugin/get", {"plugin_id": plugin_id})
    viewer.close()

    m, sc, m_viewer, repo_id = start_mirror(workdir, certs, srv, tokens)
    sc.json("repository/sync", {"repository_id": repo_id})
    sc.close()
    mc = m.client(m_viewer)
    mc.call("plugin/get", {"plugin_id": plugin_id})
    _, hdrs, _ = mc.call("plugin/get", {"plugin_id": plugin_id})
    mc.close()
    if hdrs.get("X-Cache") != "HIT":
        raise BenchError("the mirror's get is not a cache hit (X-Cache: %s)" % hdrs.get("X-Cache"))

    ndir, nport, nproc = start_nginx(workdir, certs)
    with open(os.path.join(ndir, "www", "plugin-info.json"), "wb") as f:
        f.write(info)
    wait_port(nport, nproc, "nginx")
    nc = Client(nport, client_context(os.path.join(certs, "ca.crt")), tokens["viewer"])
    _, nh, nbody = nc.call("plugin/get", {"plugin_id": plugin_id})
    nc.close()
    if nbody != info:
        raise BenchError("nginx does not serve the same bytes as repod")

    res = {}
    res["nginx"] = run_wrk(workdir, "nginx", nport, body, tokens["viewer"], args)
    res["local"] = run_wrk(workdir, "repod-local", srv.port, body, tokens["viewer"], args)
    res["mirror"] = run_wrk(workdir, "repod-mirror", m.port, body, m_viewer, args)

    ng = res["nginx"]["rps"]
    print("\n## plugin get: repod against nginx (same PluginInfo bytes, %d bytes)\n" % len(info))
    print("wrk -t%d -c%d -d%ds, TLS keep-alive, %d plugins loaded, %s\n" %
          (args.threads, args.connections, args.duration, args.plugins,
           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("| server | req/s | p50 ms | p99 ms | requests | ratio to nginx |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, label in (("nginx", "nginx static file (error_page 405 =200)"),
                       ("local", "repod plugin get, local plugin"),
                       ("mirror", "repod mirror plugin get, cached remote plugin")):
        r = res[key]
        print("| %s | %.0f | %.2f | %.2f | %d | %.2f |" %
              (label, r["rps"], r["p50"], r["p99"], r["requests"], r["rps"] / ng))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.stderr.write("get-vs-nginx: FAILED: %s\n" % e)
        sys.exit(1)
