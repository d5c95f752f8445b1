#!/usr/bin/env python3
"""read_bench.py - read-path benchmark of repod over real HTTPS.

    read_bench.py [--plugins N] [--iterations K] [--mirror-iterations K2]
                  [--connections C] [--keep DIR] [--no-mirror] [--max-minutes M]

Starts a real repod (build/repod or REPOD_BIN) on 127.0.0.1 with dev
certificates made by certs/gen-dev-certs.sh, creates tokens with
`repod token create`, registers N generated plugins (gen.py, the shape of
tools/bench-query.c) through plugin/register over C keep-alive TLS
connections in parallel, then:

  - restarts the server and times exec -> first /readyz 200 with N plugins;
  - runs each request of the mix K times over one keep-alive TLS connection
    as a viewer of domain-main and prints p50 / p99 per request;
  - reads the server's peak RSS (VmHWM) after loading and after the mix;
  - starts a mirror (a second repod whose remote repository is the first),
    times the first full `repository sync`, and runs the list mix through
    the mirror.

A request that does not answer 200 stops the run with a non-zero exit.  This
is a benchmark, not a test: nothing is asserted about speed.
"""

import argparse
import os
import shutil
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen  # noqa: E402
from procs import REPOD_BIN, BenchError, Repod, log, make_certs, run_in_workdir  # noqa: E402

PAGE = {"start": 1, "limit": 20}


def start_upstream(workdir, certs, data_dir=None):
    """The first repod: domain-public is public; HARBOR / ECR hosts allowed
    (no registry is contacted: verify_on_register is off).  data_dir: a data
    dir copied in first (never written itself)."""
    srv = Repod(workdir, "upstream", certs, extra={
        "registry": {"allowed_hosts": [gen.HARBOR_HOST, "*.dkr.ecr.*.amazonaws.com"]},
        "auth": {"public_domains": ["domain-public"]},
    })
    if data_dir:
        shutil.copytree(data_dir, srv.config["data_dir"])
    tokens = {d: srv.token(d, "admin") for d in gen.DOMAINS}
    tokens["viewer"] = srv.token("domain-main", "viewer")
    srv.start()
    return srv, tokens


def load(srv, tokens, n, connections):
    """Registers n plugins through the API; 10% are disabled afterwards.
    Returns (seconds, plugin ids of domain-main)."""
    items = gen.plugins(n)
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "error": None}
    main_ids = []
    t0 = time.monotonic()

    def worker():
        clients = {d: srv.client(tokens[d]) for d in gen.DOMAINS}
        try:
            while True:
                with lock:
                    i = state["next"]
                    if i >= n or state["error"] is not None:
                        return
                    state["next"] = i + 1
                domain, disabled, body = items[i]
                c = clients[domain]
                info = c.json("plugin/register", body)
                if disabled:
                    c.json("plugin/disable", {"plugin_id": info["plugin_id"]})
                with lock:
                    state["done"] += 1
                    if domain == "domain-main":
                        main_ids.append(info["plugin_id"])
                    done = state["done"]
                if done % max(1, n // 10) == 0:
                    el = time.monotonic() - t0
                    log("loaded %d/%d plugins in %.1f s (%.0f/s)" % (done, n, el, done / el))
        except BaseException as e:  # noqa: B902 - reported by the caller
            with lock:
                if state["error"] is None:
                    state["error"] = e
        finally:
            for c in clients.values():
                c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["error"] is not None:
        raise BenchError("loading failed: %s" % state["error"])
    main_ids.sort()
    return time.monotonic() - t0, main_ids


def list_cases():
    """(label, verb, body) of the list / stat mix."""
    cases = []
    for key in ("name", "created_at", "updated_at", "plugin_id", "provider", "resource_type"):
        cases.append(("list provider=aws sort %s page 20" % key, "plugin/list",
                      {"provider": "aws", "query": {"sort": {"key": key}, "page": PAGE}}))
    cases += [
        ("list provider=aws resource_type=inventory.Collector sort name page 20", "plugin/list",
         {"provider": "aws", "resource_type": "inventory.Collector",
          "query": {"sort": {"key": "name"}, "page": PAGE}}),
        ("list state=ENABLED sort created_at desc page 20", "plugin/list",
         {"state": "ENABLED", "query": {"sort": {"key": "created_at", "desc": True},
                                        "page": PAGE}}),
        ("list keyword \"jira collector\" page 20", "plugin/list",
         {"query": {"keyword": "jira collector", "page": PAGE}}),
        ("list name regex page 20", "plugin/list",
         {"query": {"filter": [{"k": "name", "v": "^smart .* (auth|webhook)$", "o": "regex"}],
                    "page": PAGE}}),
        ("list name contain \"billing\" page 20", "plugin/list",
         {"query": {"filter": [{"k": "name", "v": "billing", "o": "contain"}], "page": PAGE}}),
        ("count_only provider=aws state=ENABLED", "plugin/list",
         {"provider": "aws", "state": "ENABLED", "query": {"count_only": True}}),
        ("count_only state=ENABLED", "plugin/list",
         {"state": "ENABLED", "query": {"count_only": True}}),
        ("stat group by provider (count)", "plugin/stat",
         {"query": {"aggregate": [{"group": {"keys": [{"key": "provider", "name": "provider"}],
                                             "fields": [{"name": "count",
                                                         "operator": "count"}]}}]}}),
    ]
    return cases + console_cases("jira")


def console_cases(word):
    """The requests the web console makes for one keystroke of its catalog
    search (console/catalog.js): the list page and the four facet stats."""
    def facet(key, extra=()):
        keys = [{"key": key, "name": "value"}] + [{"key": k, "name": n} for k, n in extra]
        return {"query": {"keyword": word, "filter": [], "aggregate": [
            {"group": {"keys": keys, "fields": [{"name": "count", "operator": "count"}]}},
            {"sort": {"key": "count", "desc": True}}]}}
    return [
        ("console keystroke: list keyword %s sort name page 10" % word, "plugin/list",
         {"query": {"keyword": word, "filter": [], "sort": {"key": "name", "desc": False},
                    "page": {"start": 1, "limit": 10}}}),
        ("console keystroke: facet provider", "plugin/stat", facet("provider")),
        ("console keystroke: facet resource_type", "plugin/stat", facet("resource_type")),
        ("console keystroke: facet state", "plugin/stat", facet("state")),
        ("console keystroke: facet repository", "plugin/stat",
         facet("repository_info.repository_id",
               (("repository_info.name", "label"), ("repository_info.repository_type", "type")))),
    ]


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def time_case(client, verb, body, k):
    """Runs one request k times (after one unmeasured warm-up); returns
    (latencies in ms, the last answer)."""
    answer = client.json(verb, body)
    lat = []
    for _ in range(k):
        t0 = time.perf_counter()
        answer = client.json(verb, body)
        lat.append((time.perf_counter() - t0) * 1000.0)
    return lat, answer


def run_mix(client, cases, k, title):
    rows = []
    for label, verb, body in cases:
        lat, answer = time_case(client, verb, body, k)
        results = answer.get("results")
        rows.append((label, statistics.median(lat), pct(lat, 99),
                     len(results) if isinstance(results, list) else "-",
                     answer.get("total_count", "-")))
        log("%s: %s p50 %.2f ms" % (title, label, rows[-1][1]))
    return rows


def print_rows(title, rows):
    print("\n### %s\n" % title)
    print("| request | p50 ms | p99 ms | results | total_count |")
    print("|---|---:|---:|---:|---:|")
    for label, p50, p99, nres, total in rows:
        print("| %s | %.2f | %.2f | %s | %s |" % (label, p50, p99, nres, total))


def start_mirror(workdir, certs, srv, tokens):
    """A second repod whose remote repository is srv, reading with the
    domain-main viewer token (it sees domain-main and domain-public)."""
    m = Repod(workdir, "mirror", certs)
    system = m.token("root", "system")
    viewer = m.token("domain-main", "viewer")
    m.start()
    sc = m.client(system)
    info = sc.json("repository/register", {
        "name": "Upstream", "repository_type": "remote", "endpoint": srv.endpoint,
        "upstream": {"ca_file": m.ca_file, "token": tokens["viewer"]},
        # The catalog sync asks for the whole upstream catalog in one answer
        # (about 1 KB per plugin), so the 16 MiB default would refuse it
        # beyond about 16 000 plugins.
        "cache": {"ttl_s": 86400, "timeout_ms": 600000}})
    return m, sc, viewer, info["repository_id"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugins", type=int, default=100000)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--connections", type=int, default=8,
                    help="parallel keep-alive connections while loading (default 8)")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR (created) and keep it: configs, data, logs")
    ap.add_argument("--mirror-iterations", type=int, default=None,
                    help="runs per request through the mirror (default: --iterations)")
    ap.add_argument("--no-mirror", action="store_true", help="skip the mirror part")
    ap.add_argument("--data-dir", metavar="DIR",
                    help="start on a copy of this data dir (one kept by --keep, or made by "
                         "build/bench-query --data-dir) instead of loading plugins")
    ap.add_argument("--max-minutes", type=float, default=120,
                    help="stop the whole run after this long (default 120)")
    args = ap.parse_args(argv)
    if (args.plugins < 1 or args.iterations < 1 or args.connections < 1 or
            (args.mirror_iterations is not None and args.mirror_iterations < 1)):
        ap.error("--plugins, --iterations, --mirror-iterations and --connections must be >= 1")
    if not os.access(REPOD_BIN, os.X_OK):
        raise BenchError("no repod binary at %s: build it (tools/build.sh) or set REPOD_BIN"
                         % REPOD_BIN)
    return run_in_workdir(args, "repod-read-bench-", run)


def run(args, workdir):
    certs = make_certs(workdir)
    n, k = args.plugins, args.iterations
    mk = args.mirror_iterations or k
    srv, tokens = start_upstream(workdir, certs, args.data_dir)
    if args.data_dir:
        load_s, main_ids = None, None
        log("upstream on %s with the plugins of %s" % (srv.endpoint, args.data_dir))
    else:
        log("upstream on %s, loading %d plugins over %d connections" %
            (srv.endpoint, n, args.connections))
        load_s, main_ids = load(srv, tokens, n, args.connections)
    hwm_load = srv.hwm_kb()
    log("restarting to time start-up")
    srv.stop()
    startup_s = srv.start()
    hwm_start = srv.hwm_kb()
    viewer = srv.client(tokens["viewer"])
    if main_ids:
        get_id = main_ids[len(main_ids) // 2]
    else:
        first = viewer.json("plugin/list", {"query": {"filter": [
            {"k": "domain_id", "v": "domain-main", "o": "eq"}], "sort": {"key": "plugin_id"},
            "page": {"start": 1000, "limit": 1}}})
        log("%d plugins of domain-main in %s" % (first["total_count"], args.data_dir))
        get_id = first["results"][0]["plugin_id"]
    rows = run_mix(viewer, [("get (local plugin)", "plugin/get", {"plugin_id": get_id})] +
                   list_cases(), k, "local")
    hwm_mix = srv.hwm_kb()
    viewer.close()

    mirror_rows = None
    if not args.no_mirror:
        m, sc, m_viewer, repo_id = start_mirror(workdir, certs, srv, tokens)
        t0 = time.monotonic()
        sync = sc.json("repository/sync", {"repository_id": repo_id})
        sync_s = time.monotonic() - t0
        log("mirror sync took %.1f s: %s" % (sync_s, sync))
        mc = m.client(m_viewer)
        mirror_rows = run_mix(mc, [("get (cached remote plugin)", "plugin/get",
                                    {"plugin_id": get_id})] + list_cases(), mk, "mirror")
        mirror_hwm = m.hwm_kb()
        mc.close()
        sc.close()

    print("\n## repod read-path benchmark: %s, %d runs per request (%d through "
          "the mirror)\n" % ("data dir %s" % args.data_dir if args.data_dir else
                              "%d plugins" % n, k, mk))
    print("| measure | value |")
    print("|---|---:|")
    if load_s is not None:
        print("| plugins registered through the API | %d |" % n)
        print("| load time (%d connections) | %.1f s (%.0f registers/s) |" %
              (args.connections, load_s, n / load_s))
        print("| peak RSS after loading (VmHWM) | %.1f MB |" % (hwm_load / 1024.0))
    else:
        print("| data dir copied from | %s |" % args.data_dir)
        print("| peak RSS of the first start (VmHWM) | %.1f MB |" % (hwm_load / 1024.0))
    print("| start-up to /readyz 200 | %.3f s |" % startup_s)
    print("| peak RSS of the restarted server at ready (VmHWM) | %.1f MB |" %
          (hwm_start / 1024.0))
    print("| peak RSS of the restarted server after the mix (VmHWM) | %.1f MB |" %
          (hwm_mix / 1024.0))
    if mirror_rows is not None:
        print("| mirror: first full repository sync | %.1f s (%s) |" %
              (sync_s, ", ".join("%s=%s" % kv for kv in sorted(sync.items())
                                 if kv[0] != "repository_id")))
        print("| mirror: peak RSS after sync and mix (VmHWM) | %.1f MB |" % (mirror_hwm / 1024.0))
    print_rows("Local repository over HTTPS (viewer of domain-main, keep-alive)", rows)
    if mirror_rows is not None:
        print_rows("Through the mirror (cached remote repository)", mirror_rows)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.stderr.write("read-bench: FAILED: %s\n" % e)
        sys.exit(1)
