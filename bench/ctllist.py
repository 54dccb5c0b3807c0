#!/usr/bin/python3
"""How long `pgkeelctl list` and Debian's `patronictl list` take on the same
healthy 3-node pgkeel cluster (etcd 3.4, PostgreSQL 15), started with the
integration tests' tests/integration/ha_cluster.py on 127.0.0.1.

Each tool runs --runs times in turn (interleaved, so both see the same
machine); prints `name value unit` lines: median and p95 wall time of the
whole command (process start to exit), and the ratio of the medians.

    PGKEEL_BUILDDIR=build/default /usr/bin/python3 bench/ctllist.py [--runs 30]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from ha_cluster import PGKEELCTL, HaCluster, wait_healthy  # noqa: E402


def timed(argv, env):
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                       timeout=60)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("%s failed: %s" % (argv[0], p.stderr.decode(errors="replace")))
    return dt


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    runs = max(1, min(args.runs, 1000))
    with HaCluster(3, scope="ctl-bench") as c:
        c.start()
        wait_healthy(c)
        conf = c.nodes[0].conf
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": c.base,
               "PGKEEL_BACKEND_DIR": c.backends}
        c.patronictl("list")  # writes the patronictl.yml the tests use
        pconf = os.path.join(c.base, "patronictl.yml")
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(timed([PGKEELCTL, "-c", conf, "list"], env))
            theirs.append(timed(["/usr/bin/patronictl", "-c", pconf, "list"], env))
    print("# pgkeelctl list vs patronictl list, %d runs each, 3-node cluster" % runs)
    for name, xs in (("pgkeelctl", ours), ("patronictl", theirs)):
        print("%s.list.median %.1f ms" % (name, statistics.median(xs) * 1000))
        print("%s.list.p95 %.1f ms" % (name, pct(xs, 0.95) * 1000))
    print("pgkeelctl_vs_patronictl.list.median %.3f ratio"
          % (statistics.median(ours) / statistics.median(theirs)))


if __name__ == "__main__":
    main()
