#!/usr/bin/env python3
"""pg_anchor.py - the read-bench questions asked of PostgreSQL, as an anchor.

    pg_anchor.py [--plugins N] [--iterations K] [--keep DIR]

Optional companion of read_bench.py.  Starts a throw-away PostgreSQL 15
(Debian's postgresql-15, run as the `postgres` user when started as root)
listening on a Unix socket only, stores the same generated plugins (gen.py)
as JSONB rows (domain, doc) with B-tree expression indexes on the fields the
list mix filters and sorts on and a pg_trgm GIN index on the name, then runs
the same questions K times each through one psql session (`\\timing`, result
rows sent to /dev/null) and prints p50 / p99 per question.  Nothing here is
repod; it shows what a general-purpose database does with the same data on
the same machine.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen  # noqa: E402
from procs import CLEANUP, BenchError, log, run_in_workdir  # noqa: E402
from read_bench import pct  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
READABLE = "domain IN ('domain-main', 'domain-public')"
PAGE = "LIMIT 20"


def as_postgres(cmd):
    """cmd unchanged; PG_USER holds the subprocess keywords that run it as
    the postgres user when this runs as root (initdb refuses root)."""
    return cmd


PG_USER = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def questions(get_id):
    q = []

    def page(where, order):
        return ("SELECT doc, count(*) OVER () FROM plugins WHERE %s AND %s ORDER BY %s %s"
                % (READABLE, where, order, PAGE))

    q.append(("get (local plugin)", "SELECT doc FROM plugins WHERE domain = 'domain-main' "
              "AND doc->>'plugin_id' = '%s'" % get_id))
    for key in ("name", "created_at", "updated_at", "plugin_id", "provider", "resource_type"):
        q.append(("list provider=aws sort %s page 20" % key,
                  page("doc->>'provider' = 'aws'", "doc->>'%s'" % key)))
    q.append(("list provider=aws resource_type=inventory.Collector sort name page 20",
              page("doc->>'provider' = 'aws' AND doc->>'resource_type' = 'inventory.Collector'",
                   "doc->>'name'")))
    q.append(("list state=ENABLED sort created_at desc page 20",
              page("doc->>'state' = 'ENABLED'", "doc->>'created_at' DESC")))
    kw = " AND ".join(
        "(doc->>'plugin_id' ILIKE '%%%s%%' OR doc->>'name' ILIKE '%%%s%%' OR "
        "doc->>'provider' ILIKE '%%%s%%' OR (doc->'labels')::text ILIKE '%%%s%%')"
        % (w, w, w, w) for w in ("jira", "collector"))
    q.append(("list keyword \"jira collector\" page 20", page(kw, "doc->>'name'")))
    q.append(("list name regex page 20",
              page("doc->>'name' ~* '^smart .* (auth|webhook)$'", "doc->>'name'")))
    q.append(("list name contain \"billing\" page 20",
              page("doc->>'name' ILIKE '%billing%'", "doc->>'name'")))
    q.append(("count_only provider=aws state=ENABLED",
              "SELECT count(*) FROM plugins WHERE %s AND doc->>'provider' = 'aws' AND "
              "doc->>'state' = 'ENABLED'" % READABLE))
    q.append(("count_only state=ENABLED",
              "SELECT count(*) FROM plugins WHERE %s AND doc->>'state' = 'ENABLED'" % READABLE))
    q.append(("stat group by provider (count)",
              "SELECT doc->>'provider', count(*) FROM plugins WHERE %s GROUP BY 1" % READABLE))
    return q


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plugins", type=int, default=100000)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--keep", metavar="DIR")
    ap.add_argument("--max-minutes", type=float, default=60)
    args = ap.parse_args(argv)
    if args.plugins < 1 or args.iterations < 1:
        ap.error("--plugins and --iterations must be >= 1")
    if not os.access(os.path.join(PG_BIN, "postgres"), os.X_OK):
        raise BenchError("PostgreSQL 15 not found in %s (apt-get install postgresql-15)" % PG_BIN)
    return run_in_workdir(args, "repod-pg-anchor-", run)


def run(args, workdir):
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    data = os.path.join(workdir, "pgdata")
    r = subprocess.run(as_postgres([os.path.join(PG_BIN, "initdb"), "-D", data, "-A", "trust",
                                    "-U", "bench", "--no-sync"]), **PG_USER,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError("initdb failed:\n%s" % r.stdout)
    logf = open(os.path.join(workdir, "postgres.log"), "ab")
    proc = CLEANUP.proc(subprocess.Popen(
        as_postgres([os.path.join(PG_BIN, "postgres"), "-D", data, "-k", workdir,
                     "-c", "listen_addresses=", "-c", "shared_buffers=256MB",
                     "-c", "work_mem=64MB", "-c", "fsync=off"]),
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, **PG_USER))
    logf.close()
    psql = as_postgres([os.path.join(PG_BIN, "psql"), "-h", workdir, "-U", "bench", "-d",
                        "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1"])
    deadline = time.monotonic() + 60
    while subprocess.run(psql + ["-c", "SELECT 1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, **PG_USER).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError("PostgreSQL did not start (see %s/postgres.log)" % workdir)
        time.sleep(0.2)

    log("generating and loading %d plugins" % args.plugins)
    base_ms = 1640995200000
    main_ids = []
    rows = []
    for i, (domain, disabled, body) in enumerate(gen.plugins(args.plugins)):
        doc = dict(body)
        doc["plugin_id"] = body["image"].rsplit("/", 1)[-1]
        doc["state"] = "DISABLED" if disabled else "ENABLED"
        doc["domain_id"] = domain
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base_ms + i * 60000) / 1000.0))
        doc["created_at"] = doc["updated_at"] = ts + ".000Z"
        if domain == "domain-main":
            main_ids.append(doc["plugin_id"])
        line = json.dumps(doc).replace("\\", "\\\\")
        rows.append("%s\t%s\n" % (domain, line))
    t0 = time.monotonic()
    setup = ("CREATE EXTENSION pg_trgm;\n"
             "CREATE TABLE plugins (domain text NOT NULL, doc jsonb NOT NULL);\n"
             "COPY plugins (domain, doc) FROM STDIN;\n" + "".join(rows) + "\\.\n"
             "CREATE INDEX ON plugins (domain, (doc->>'plugin_id'));\n")
    for f in ("name", "state", "provider", "resource_type", "created_at", "updated_at"):
        setup += "CREATE INDEX ON plugins ((doc->>'%s'));\n" % f
    setup += ("CREATE INDEX ON plugins USING gin ((doc->>'name') gin_trgm_ops);\n"
              "VACUUM ANALYZE plugins;\n")
    r = subprocess.run(psql, input=setup, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=1800, **PG_USER)
    if r.returncode != 0:
        raise BenchError("loading into PostgreSQL failed:\n%s" % r.stdout[-2000:])
    load_s = time.monotonic() - t0

    main_ids.sort()
    qs = questions(main_ids[len(main_ids) // 2])
    script = "\\o /dev/null\n"
    for _, sql in qs:
        script += sql + ";\n"  # warm-up, untimed
        script += "\\timing on\n" + (sql + ";\n") * args.iterations + "\\timing off\n"
    r = subprocess.run(psql, input=script, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=3600, **PG_USER)
    if r.returncode != 0:
        raise BenchError("a question failed in PostgreSQL:\n%s" % r.stderr[-2000:])
    times = [float(x) for x in re.findall(r"^Time: ([\d.]+) ms", r.stdout, re.M)]
    if len(times) != len(qs) * args.iterations:
        raise BenchError("expected %d timings, got %d" % (len(qs) * args.iterations, len(times)))

    print("\n## PostgreSQL 15 anchor: %d plugins as JSONB, %d runs per question\n" %
          (args.plugins, args.iterations))
    print("COPY + indexes + VACUUM ANALYZE: %.1f s\n" % load_s)
    print("| question | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    for n, (label, _) in enumerate(qs):
        lat = times[n * args.iterations:(n + 1) * args.iterations]
        print("| %s | %.2f | %.2f |" % (label, statistics.median(lat), pct(lat, 99)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.stderr.write("pg-anchor: FAILED: %s\n" % e)
        sys.exit(1)
