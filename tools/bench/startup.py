#!/usr/bin/env python3
"""startup.py - start-up time and memory of repod on an existing data dir.

    startup.py --data-dir DIR [--runs K] [--workdir W] [--extra JSON]

Copies DIR (a repod data dir, e.g. one kept by read-bench.sh --keep or made
by build/bench-query --data-dir) into a work folder, then K times: starts a
real repod (build/repod or REPOD_BIN) on the copy, times exec -> first
/readyz 200 over TLS, reads VmRSS and VmHWM of the process at that moment,
and stops it with SIGTERM.  Prints one line per run and the medians.  DIR
itself is never written.  A benchmark, not a test: nothing is asserted.
"""

import argparse
import json
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from procs import Repod, log, make_certs, run_in_workdir  # noqa: E402


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run(args, workdir):
    certs = make_certs(workdir)
    extra = json.loads(args.extra) if args.extra else {}
    srv = Repod(workdir, "srv", certs, extra=extra)
    shutil.copytree(args.data_dir, srv.config["data_dir"])
    rows = []
    for i in range(args.runs):
        secs = srv.start()
        rss = status_kb(srv.proc.pid, "VmRSS")
        hwm = status_kb(srv.proc.pid, "VmHWM")
        srv.stop()
        rows.append((secs, rss, hwm))
        print("run %d: ready in %.3f s, VmRSS %.1f MB, VmHWM %.1f MB" %
              (i + 1, secs, rss / 1024.0, hwm / 1024.0), flush=True)
    print("median: ready in %.3f s, VmRSS %.1f MB, VmHWM %.1f MB" %
          (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows) / 1024.0,
           statistics.median(r[2] for r in rows) / 1024.0))
    log("done")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--extra", default="", help="JSON object merged into the config")
    p.add_argument("--keep", default=None)
    p.add_argument("--max-minutes", type=int, default=30)
    args = p.parse_args()
    return run_in_workdir(args, "repod-startup-", run)


if __name__ == "__main__":
    sys.exit(main())
