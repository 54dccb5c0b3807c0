#!/usr/bin/python3
"""REST API throughput and p99 latency of GET /leader and GET /patroni, for
pgkeel and for Patroni 3.0.2 in the same run (see bench/README.md).

For each supervisor in turn, on 127.0.0.1 only: a fresh one-member etcd and
one node (its PostgreSQL 15 the leader), started from the same Patroni YAML
as writegap.py's.  Debian's wrk loads the leader's REST port (2 threads, 16
connections, 10 s, --latency), for each endpoint once with keep-alive and
once with a `Connection: close` header (a new connection per request, as
HAProxy's checks), in three conditions:

  normal        the cluster as it is;
  dcs_stopped   etcd SIGSTOPped for the run (SIGCONT after);
  pg_stopped    the leader's postmaster and all its children SIGSTOPped for
                the run (a hung PostgreSQL; SIGCONT after).

After a stopped run the node must answer 200 on /leader and /patroni again
before the next one starts.  wrk shares the machine's cores with the server.
First, as a reference for what this machine allows a lean server, the same
wrk runs against HAProxy answering a document of /leader's size itself.

stdout: "name value unit" lines, '#' lines are comments; progress on stderr.
Every wait has a deadline; everything started is stopped by PID at the end.
Run as root (the servers then run as postgres) with Debian's python3:

    PGKEEL_BUILDDIR=build/default /usr/bin/python3 bench/restbench.py
"""
import argparse
import os
import re
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import writegap as wg  # noqa: E402

ENDPOINTS = ("leader", "patroni")
MODES = ("keepalive", "close")
CONDITIONS = ("normal", "dcs_stopped", "pg_stopped")
NODE = 1  # the measured node, alone in its cluster: the leader
TARGET_RATIO = 20.0
TARGET_P99_MS = 2.0


# ---- wrk's output -----------------------------------------------------------------------------

TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
NUM = r"([0-9]+(?:\.[0-9]+)?)"


def to_ms(value, unit):
    return float(value) * TIME_UNITS[unit]


def parse_wrk(text):
    """wrk --latency's report as a dict: rps, requests, seconds, latency
    avg/max and the p50/p75/p90/p99 percentiles in ms (None when no request
    completed: wrk then prints zeros), errors (connect, read, write,
    timeout: socket errors), non2xx.  ValueError when the report lacks its
    request count or Requests/sec line."""
    out = {"errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "non2xx": 0}
    m = re.search(r"^\s*(\d+) requests in " + NUM + r"(us|ms|s|m|h)\b", text, re.M)
    r = re.search(r"^Requests/sec:\s*" + NUM + r"\s*$", text, re.M)
    if not m or not r:
        raise ValueError("not a wrk report: %r" % text[:200])
    out["requests"] = int(m.group(1))
    out["seconds"] = to_ms(m.group(2), m.group(3)) / 1000.0
    out["rps"] = float(r.group(1))
    done = out["requests"] > 0
    lat = re.search(r"^\s*Latency\s+" + NUM + r"(us|ms|s|m|h)\s+\S+\s+" + NUM +
                    r"(us|ms|s|m|h)", text, re.M)
    out["avg"] = to_ms(lat.group(1), lat.group(2)) if lat and done else None
    out["max"] = to_ms(lat.group(3), lat.group(4)) if lat and done else None
    for pct in ("50", "75", "90", "99"):
        p = re.search(r"^\s*%s(?:\.0+)?%%\s+%s(us|ms|s|m|h)\s*$" % (pct, NUM), text, re.M)
        out["p" + pct] = to_ms(p.group(1), p.group(2)) if p and done else None
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if e:
        out["errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                 (int(x) for x in e.groups())))
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if n:
        out["non2xx"] = int(n.group(1))
    return out


# ---- the cluster ------------------------------------------------------------------------------

class RestCluster(wg.Cluster):
    """writegap's cluster reduced to etcd and one node, no HAProxy."""

    def start(self):
        self.start_etcd()
        self.start_node(NODE)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.ports.api(NODE), path)

    def healthy(self):
        return self.code(NODE, "/leader") == 200 and self.code(NODE, "/patroni") == 200

    def cpu_ticks(self):
        """CPU ticks used so far by the node's supervisor process tree
        (PostgreSQL's processes excluded)."""
        tree, stats = wg.supervisor_tree(self.procs["pg-%d" % NODE].pid)
        return sum(stats[p][3] for p in tree)

    def pg_pids(self):
        """The postmaster, then its children (the hung PostgreSQL's)."""
        pm = self.postmaster_pid(NODE)
        if pm is None:
            raise wg.BenchError("no postmaster for pg-%d" % NODE)
        return [pm] + wg.children(pm)

    def freeze(self, cond):
        """SIGSTOP what cond stops; the pids to SIGCONT afterwards."""
        if cond == "dcs_stopped":
            pids = [self.procs["etcd"].pid]
        elif cond == "pg_stopped":
            pids = self.pg_pids()
        else:
            return []
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids


def thaw(pids):
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def run_wrk(url, mode, a, log):
    """One wrk run; its parsed report.  wrk's own output is appended to log."""
    argv = ["wrk", "-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.duration,
            "--timeout", "%ds" % a.wrk_timeout, "--latency"]
    if mode == "close":
        argv += ["-H", "Connection: close"]
    argv.append(url)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=a.duration + a.wrk_timeout + 30)
    except subprocess.TimeoutExpired:  # run() has killed it by its pid
        raise wg.BenchError("wrk did not finish within %d s" % (a.duration + a.wrk_timeout + 30))
    text = p.stdout.decode(errors="replace")
    with open(log, "a") as f:
        f.write("$ %s\n%s\n" % (" ".join(argv), text))
    if p.returncode != 0:
        raise wg.BenchError("wrk exited %d: %s" % (p.returncode, text.strip()[-300:]))
    try:
        return parse_wrk(text)
    except ValueError as e:
        raise wg.BenchError(str(e))


def measure(c, cond, endpoint, mode, a):
    """One wrk run in condition cond; its report plus the status codes the
    node answered just before and just after (while still stopped)."""
    wg.wait_for(c.healthy, 180, "200 on pg-%d's /leader and /patroni" % NODE, 0.2)
    frozen = c.freeze(cond)
    try:
        before = c.code(NODE, "/" + endpoint, 5.0)
        ticks = c.cpu_ticks()
        res = run_wrk(c.url("/" + endpoint), mode, a, os.path.join(c.dir, "wrk.log"))
        ticks = c.cpu_ticks() - ticks
        after = c.code(NODE, "/" + endpoint, 5.0)
    finally:
        thaw(frozen)
    res["codes"] = (before, after)
    res["cpu_s"] = ticks / os.sysconf("SC_CLK_TCK")
    return res


def name_of(endpoint, mode, cond):
    return "%s.%s%s" % (endpoint, mode, "" if cond == "normal" else "." + cond)


def report(prefix, res):
    """The figures of one wrk run (res from run_wrk, plus cpu_s: the server's
    CPU seconds meanwhile) as prefix.<figure> lines."""
    wg.emit(prefix + ".rps", int(round(res["rps"])), "req/s")
    for pct in ("p50", "p99", "max"):
        if res[pct] is not None:
            wg.emit("%s.%s" % (prefix, pct), round(res[pct], 3), "ms")
    wg.emit(prefix + ".requests", res["requests"], "requests")
    wg.emit(prefix + ".non2xx", res["non2xx"], "responses")
    wg.emit(prefix + ".socket_errors", sum(res["errors"].values()), "errors")
    wg.emit(prefix + ".server_cpu", round(res["cpu_s"] / res["seconds"], 3), "cpu_s/s")
    if res["requests"] > 0:
        wg.emit(prefix + ".server_cpu_per_request",
                round(res["cpu_s"] * 1e6 / res["requests"], 1), "us")


def report_codes(c, name, res):
    """A comment with the status the node answered before and after the run,
    and wrk's socket errors by kind.  (Patroni's HTTP/1.0 answers end with
    the connection, no Content-Length: wrk counts the response, then one
    read error when the connection ends.)"""
    errs = ", ".join("%s %d" % kv for kv in res["errors"].items() if kv[1])
    notes = ("; no request completed" if res["requests"] == 0 else "") + \
        ("; socket errors: " + errs if errs else "")
    wg.comment("%s %s: status %s before, %s after the run (None: no answer within 5 s); "
               "loadavg %s%s" % (c.sup, name, res["codes"][0], res["codes"][1], wg.loadavg(),
                                 notes))


# ---- the reference: HAProxy answering a fixed document --------------------------------------

# About the size of /leader's answer (pgkeel's and Patroni's status document)
REFERENCE_BODY = (
    '{"state": "running", "postmaster_start_time": "2026-11-26 05:02:33.104943+00:00", '
    '"role": "master", "server_version": 150018, "xlog": {"location": 50331968}, '
    '"timeline": 1, "dcs_last_seen": 1795669353, "database_system_identifier": '
    '"7576542375318274071", "patroni": {"version": "3.0.2", "scope": "bench"}}\n')


def haproxy_reference_config(ports, body_file):
    """HAProxy 2.6 with as many threads as pgkeel's REST workers, answering
    every request itself with REFERENCE_BODY."""
    return "\n".join([
        "global", "    maxconn 2000", "    nbthread 2",
        "defaults", "    mode http", "    timeout connect 5s", "    timeout client 30s",
        "    timeout server 30s",
        "frontend reference", "    bind 127.0.0.1:%d" % ports.haproxy,
        "    http-request return status 200 content-type application/json file %s" % body_file,
    ]) + "\n"


def run_reference(a, ports):
    """wrk against HAProxy serving a fixed document, in its own session as
    the supervisors: what this machine allows a lean event-driven server
    with wrk sharing its cores (normal condition only)."""
    d = os.path.join(a.run_dir, "reference")
    os.makedirs(d, exist_ok=True)
    body, cfg = os.path.join(d, "body.json"), os.path.join(d, "haproxy.cfg")
    with open(body, "w") as f:
        f.write(REFERENCE_BODY)
    with open(cfg, "w") as f:
        f.write(haproxy_reference_config(ports, body))
    got = {}
    if wg.port_busy(ports.haproxy):
        wg.comment("reference: FAILED: 127.0.0.1:%d already in use" % ports.haproxy)
        return None
    wg.progress("reference: HAProxy on 127.0.0.1:%d" % ports.haproxy)
    log = open(os.path.join(d, "haproxy.log"), "wb")
    proc = None
    try:
        subprocess.run(["haproxy", "-c", "-q", "-f", cfg], check=True, timeout=30)
        proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        wg.wait_for(lambda: wg.port_busy(ports.haproxy), 20, "HAProxy listening")
        url = "http://127.0.0.1:%d/leader" % ports.haproxy
        for mode in a.modes:
            wg.progress("reference: %s" % mode)
            ticks = wg.proc_stat(proc.pid)[3]
            res = run_wrk(url, mode, a, os.path.join(d, "wrk.log"))
            res["cpu_s"] = (wg.proc_stat(proc.pid)[3] - ticks) / os.sysconf("SC_CLK_TCK")
            got[mode] = res
            report("reference." + mode, res)
    except (wg.BenchError, subprocess.SubprocessError, OSError) as e:
        wg.comment("reference: FAILED: %s (logs in %s)" % (e, d))
        got = None
    finally:
        if proc is not None and proc.poll() is None:
            wg.stop_pid(proc.pid, signal.SIGTERM, 10)
            proc.wait(timeout=10)
        log.close()
    return got


def run_supervisor(sup, cmd, env, a, ports, timing):
    """All figures of one supervisor, by name (without the supervisor)."""
    c = RestCluster(sup, cmd, env, a.run_dir, ports, timing, 0)
    got = {}
    wg.comment("%s: loadavg at start %s" % (sup, wg.loadavg()))
    wg.progress("%s: starting etcd and pg-%d in %s" % (sup, NODE, c.dir))
    try:
        c.prepare()
        t0 = wg.now()
        c.start()
        wg.wait_for(c.healthy, 300, "pg-%d leading (200 on /leader and /patroni)" % NODE, 0.2)
        c.emit("bootstrap", wg.now() - t0, "s")
        # a run under a condition right after its normal run: the machine's
        # other load drifts less between the two
        for endpoint in a.endpoints:
            for mode in a.modes:
                for cond in a.conditions:
                    name = name_of(endpoint, mode, cond)
                    wg.progress("%s: %s" % (sup, name))
                    got[name] = measure(c, cond, endpoint, mode, a)
                    report("%s.%s" % (sup, name), got[name])
                    report_codes(c, name, got[name])
                    if cond != "normal" and name_of(endpoint, mode, "normal") in got:
                        base = got[name_of(endpoint, mode, "normal")]["rps"]
                        if base > 0:
                            c.emit(name + ".vs_normal", round(got[name]["rps"] / base, 3),
                                   "ratio")
    except (wg.BenchError, subprocess.SubprocessError, OSError) as e:
        wg.comment("%s: FAILED: %s (logs in %s)" % (sup, e, c.dir))
        got = None
    finally:
        wg.progress("%s: stopping" % sup)
        handlers = [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]
        try:
            c.stop()
        finally:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        wg.comment("%s: loadavg at end %s" % (sup, wg.loadavg()))
    return got


def compare(p, k, ref):
    """pgkeel_vs_patroni ratios and the issue's two targets, as far as both
    ran; the reference's p99 beside pgkeel's (ref: run_reference's, or None)."""
    rps_ok, p99_ok = [], []
    for name in sorted(set(p) & set(k)):
        pr, kr = p[name], k[name]
        if pr["rps"] > 0:
            wg.emit("pgkeel_vs_patroni.%s.rps" % name, round(kr["rps"] / pr["rps"], 2), "ratio")
        else:
            wg.comment("pgkeel_vs_patroni.%s.rps: Patroni completed no request" % name)
        if pr["p99"] and kr["p99"] is not None:
            wg.emit("pgkeel_vs_patroni.%s.p99" % name, round(kr["p99"] / pr["p99"], 4), "ratio")
        rps_ok.append(kr["rps"] > 0 and kr["rps"] >= TARGET_RATIO * pr["rps"])
        p99_ok.append(kr["p99"] is not None and kr["p99"] < TARGET_P99_MS)
        mode = name.split(".")[1]
        r99 = (ref or {}).get(mode, {}).get("p99")
        wg.comment("target %s: %.0f req/s vs Patroni's %.0f (%s; >= %gx: %s); p99 %s ms "
                   "(< %g ms: %s%s)" % (
                       name, kr["rps"], pr["rps"],
                       "%.1fx" % (kr["rps"] / pr["rps"]) if pr["rps"] > 0 else "Patroni stalled",
                       TARGET_RATIO, "met" if rps_ok[-1] else "MISSED",
                       "%.3f" % kr["p99"] if kr["p99"] is not None else "-", TARGET_P99_MS,
                       "met" if p99_ok[-1] else "MISSED",
                       "; HAProxy reference %.3f ms" % r99 if r99 is not None else ""))
    if rps_ok:
        wg.comment("targets: >= %gx Patroni's req/s in %d of %d runs, p99 < %g ms in %d of %d" % (
            TARGET_RATIO, sum(rps_ok), len(rps_ok), TARGET_P99_MS, sum(p99_ok), len(p99_ok)))


def csv(choices):
    def parse(text):
        items = [x for x in text.split(",") if x]
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError("%r: choose from %s" % (text, ",".join(choices)))
        return items
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="PGKEEL_BUILDDIR: pgkeel's build tree "
                                        "(default: build/default)")
    ap.add_argument("--supervisors", type=csv(("patroni", "pgkeel")), default="patroni,pgkeel",
                    help="comma-separated, run in this order (default: %(default)s)")
    ap.add_argument("--conditions", type=csv(CONDITIONS), default=",".join(CONDITIONS))
    ap.add_argument("--endpoints", type=csv(ENDPOINTS), default=",".join(ENDPOINTS))
    ap.add_argument("--modes", type=csv(MODES), default=",".join(MODES))
    ap.add_argument("--profile", choices=sorted(wg.PROFILES), default="fast")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--wrk-timeout", type=int, default=2,
                    help="seconds before wrk counts a request as timed out")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the HAProxy reference runs")
    ap.add_argument("--port-base", type=int, default=27000)
    ap.add_argument("--run-dir", default="/var/tmp/pgkeel-restbench")
    a = ap.parse_args()

    timing = wg.PROFILES[a.profile]
    try:
        build, commands = wg.start_run(a.run_dir, a.supervisors)
    except wg.BenchError as e:
        sys.stderr.write("%s\n" % e)
        return 2
    wg.comment_header(build, commands, ["wrk", "--version"])
    wg.comment("profile %s; one node per cluster, measured while it leads; wrk -t%d -c%d "
               "-d%ds --timeout %ds --latency, sharing the %d cores with the server" % (
                   a.profile, a.threads, a.connections, a.duration, a.wrk_timeout,
                   os.cpu_count()))
    ports = wg.Ports(a.port_base)
    results = {}
    try:
        if a.reference:
            results["reference"] = run_reference(a, ports)
        for s in a.supervisors:
            results[s] = run_supervisor(s, commands[s][0], commands[s][1], a, ports, timing)
    except wg.Interrupted as e:
        wg.comment("interrupted (%s)" % e)
        return 130
    if results.get("patroni") and results.get("pgkeel"):
        compare(results["patroni"], results["pgkeel"], results.get("reference"))
    k, r = results.get("pgkeel"), results.get("reference")
    for mode in (r if k and r else {}):
        for endpoint in a.endpoints:
            name = name_of(endpoint, mode, "normal")
            if name in k and r[mode]["rps"] > 0:
                wg.emit("pgkeel_vs_reference.%s.rps" % name,
                        round(k[name]["rps"] / r[mode]["rps"], 2), "ratio")
            if name in k and r[mode]["p99"] and k[name]["p99"] is not None:
                wg.emit("pgkeel_vs_reference.%s.p99" % name,
                        round(k[name]["p99"] / r[mode]["p99"], 2), "ratio")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
