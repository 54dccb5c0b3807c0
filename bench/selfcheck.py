#!/usr/bin/python3
"""A quick check of the benchmark's own parts, run by hand (no cluster, a
second or two): the write-gap arithmetic on a made-up writer log,
restbench's reading of wrk's reports, and the generated files as pgkeel and HAProxy read them (Patroni's own
--validate-config rejects loopback addresses that it runs with fine).

    PGKEEL_BUILDDIR=build/default /usr/bin/python3 bench/selfcheck.py

Exits 1 on a failed check; a tool that is not installed (or pgkeel not
built) is reported as skipped.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import restbench  # noqa: E402
import writegap  # noqa: E402
import writer  # noqa: E402

failures = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def run(argv, env=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       timeout=60)
    return p.returncode, p.stdout.decode(errors="replace")


def gap_arithmetic():
    log = ["10.000000 ok 1", "10.010000 ok 2", "10.020000 err 3 OperationalError: gone",
           "11.000000 err 4 TimeoutError: no answer within 1.0 s", "13.520000 ok 5",
           "13.530000 ok 6", "13.54"]  # the last line was cut short by the stop
    r = writer.analyze(log)
    check([n for _, n in r["oks"]] == [1, 2, 5, 6], "acknowledged commits read in order")
    check(r["errors"] == 2, "failed attempts counted, a cut line ignored")
    check(abs(r["max_gap"] - 3.51) < 1e-9 and r["gap_start"] == 10.01 and r["gap_end"] == 13.52,
          "longest gap between acknowledged commits (3.51 s, 10.01 -> 13.52)")
    r = writer.analyze(["5.0 ok 1"])
    check(r["max_gap"] == 0.0 and r["gap_start"] is None, "one commit: no gap")
    check(writegap.summary([3.0, None, 1.0, 2.0, 10.0]) == (1.0, 2.5, 10.0),
          "min/median/max skip missing values")
    check(writegap.summary([None]) is None, "no values: no summary")


WRK_OK = """Running 10s test @ http://127.0.0.1:27008/leader
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   209.49us  130.26us   8.41ms   93.97%
    Req/Sec    38.22k     2.27k   43.23k    72.50%
  Latency Distribution
     50%  185.00us
     75%  224.00us
     90%    1.20ms
     99%    1.05s
  760489 requests in 10.00s, 96.46MB read
  Socket errors: connect 0, read 3, write 0, timeout 17
  Non-2xx or 3xx responses: 12
Requests/sec:  76039.53
Transfer/sec:      9.64MB
"""

WRK_NONE = """Running 3s test @ http://127.0.0.1:27999/x
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 3.01s, 0.00B read
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


def wrk_reports():
    r = restbench.parse_wrk(WRK_OK)
    check(r["requests"] == 760489 and r["rps"] == 76039.53 and r["seconds"] == 10.0,
          "wrk: request count, Requests/sec and duration")
    close = (lambda x, y: x is not None and abs(x - y) < 1e-9)
    check(close(r["p50"], 0.185) and close(r["p90"], 1.2) and close(r["p99"], 1050.0) and
          close(r["avg"], 0.20949) and close(r["max"], 8.41),
          "wrk: latencies in us, ms and s read as ms")
    check(r["errors"] == {"connect": 0, "read": 3, "write": 0, "timeout": 17} and
          r["non2xx"] == 12, "wrk: socket errors and non-2xx responses")
    r = restbench.parse_wrk(WRK_NONE)
    check(r["requests"] == 0 and r["rps"] == 0.0 and r["p99"] is None and
          r["non2xx"] == 0 and sum(r["errors"].values()) == 0,
          "wrk: no request completed: no percentiles (wrk prints zeros)")
    try:
        restbench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
        check(False, "wrk: an error message is not a report")
    except ValueError:
        check(True, "wrk: an error message is not a report")


def generated_files():
    ports = writegap.Ports(26000)
    check(len(set(ports.all())) == len(ports.all()) and max(ports.all()) < 32768,
          "ports distinct and below the ephemeral range")
    timing = writegap.PROFILES["fast"]
    with tempfile.TemporaryDirectory(prefix="pgkeel-bench-check-") as d:
        cfg = os.path.join(d, "pg-1.yml")
        with open(cfg, "w") as f:
            writegap.yaml.safe_dump(writegap.node_config(1, ports, timing, d), f)
        build = os.environ.get("PGKEEL_BUILDDIR", os.path.join(writegap.TOP, "build", "default"))
        pgkeel = os.path.join(build, "core", "pgkeel")
        if os.access(pgkeel, os.X_OK):
            env = dict(os.environ, PGKEEL_BACKEND_DIR=os.path.join(build, "backends", "etcd3",
                                                                   ".libs"))
            rc, out = run([pgkeel, "--validate-config", cfg], env)
            check(rc == 0, "pgkeel --validate-config accepts the node config%s" %
                  ("" if rc == 0 else ":\n" + out))
        else:
            print("skip pgkeel --validate-config (%s not built)" % pgkeel)
        hcfg = os.path.join(d, "haproxy.cfg")
        with open(hcfg, "w") as f:
            f.write(writegap.haproxy_config(ports))
        try:
            rc, out = run(["haproxy", "-c", "-q", "-f", hcfg])
            check(rc == 0, "haproxy -c accepts haproxy.cfg%s" % ("" if rc == 0 else ":\n" + out))
        except FileNotFoundError:
            print("skip haproxy -c (not installed)")


def main():
    gap_arithmetic()
    wrk_reports()
    generated_files()
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
