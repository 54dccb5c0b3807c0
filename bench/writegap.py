#!/usr/bin/python3
"""Client-visible write gap of a switchover and of an unplanned failover, for
pgkeel and for Patroni 3.0.2 in the same run (see bench/README.md).

For each supervisor in turn, on 127.0.0.1 only: a fresh one-member etcd,
HAProxy (write port checked with GET /leader, inter 1s fall 2 rise 2
on-marked-down shutdown-sessions) and three nodes started from the same
Patroni YAML, each with its PostgreSQL 15.  A client (writer.py) commits
through HAProxy every --interval seconds and logs each acknowledged commit;
the write gap is the longest interval between two acknowledged commits
around the event:

  switchover   Debian's `patronictl switchover --leader --candidate --force`;
  failover     SIGKILL of the leader's supervisor, its postmaster and the
               postmaster's children in one go (a host crash); the crashed
               node's supervisor is then restarted and must rejoin.

Optional idle figures: CPU seconds per minute and RSS/PSS of each
supervisor's process tree (PostgreSQL's processes excluded) over
--idle-seconds with no client load.

stdout: "name value unit" lines, '#' lines are comments; progress on stderr.
Every wait has a deadline; everything started is stopped by PID at the end.
Run as root (the servers then run as postgres) with Debian's python3:

    PGKEEL_BUILDDIR=build/default /usr/bin/python3 bench/writegap.py
"""
import argparse
import os
import platform
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import writer  # noqa: E402

TOP = os.path.dirname(HERE)
PG_BIN = "/usr/lib/postgresql/15/bin"
PROFILES = {"fast": {"ttl": 10, "loop_wait": 2, "retry_timeout": 3},
            "default": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}}
NODES = (1, 2, 3)
SCOPE = "bench"
REPL_PW = "bench-rep-81c4"
TAIL = 2.0  # seconds the writer keeps going after its first commit on the new primary


class BenchError(Exception):
    pass


class Interrupted(Exception):
    pass


def now():
    return time.monotonic()  # the writer logs CLOCK_MONOTONIC too


def progress(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def emit(name, value, unit):
    v = "%.3f" % value if isinstance(value, float) else str(value)
    print("%s %s %s" % (name, v, unit), flush=True)


def comment(text):
    print("# " + text, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def wait_for(pred, timeout, what, step=0.1):
    """pred()'s first true value, polled every step seconds; BenchError
    once timeout seconds have passed without one."""
    end = now() + timeout
    while True:
        v = pred()
        if v:
            return v
        if now() >= end:
            raise BenchError("no %s within %g s" % (what, timeout))
        time.sleep(step)


def summary(values):
    """min, median, max of the values that are not None (None if none)."""
    v = sorted(x for x in values if x is not None)
    return (v[0], statistics.median(v), v[-1]) if v else None


# ---- the cluster's files ----------------------------------------------------------------------

class Ports:
    """One block from base, below Linux's ephemeral range: HAProxy base,
    REST base+8..10, etcd base+379/380, PostgreSQL base+432..434."""

    def __init__(self, base):
        self.base = base
        self.haproxy = base
        self.etcd = base + 379
        self.etcd_peer = base + 380

    def api(self, i):
        return self.base + 7 + i

    def pg(self, i):
        return self.base + 431 + i

    def all(self):
        return [self.haproxy, self.etcd, self.etcd_peer] + \
            [p for i in NODES for p in (self.api(i), self.pg(i))]


def node_config(i, ports, timing, node_dir):
    """The YAML both supervisors run, as a dict: Patroni's format, every node
    with the bootstrap section (whoever wins the initialize race uses it)."""
    return {
        "scope": SCOPE,
        "name": "pg-%d" % i,
        "restapi": {"listen": "127.0.0.1:%d" % ports.api(i),
                    "connect_address": "127.0.0.1:%d" % ports.api(i)},
        "etcd3": {"hosts": "127.0.0.1:%d" % ports.etcd},
        "bootstrap": {
            "dcs": dict(timing, maximum_lag_on_failover=1048576, postgresql={
                "use_pg_rewind": True, "use_slots": True,
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
                "parameters": {"wal_level": "replica", "hot_standby": "on",
                               "wal_log_hints": "on", "max_wal_senders": 10,
                               "max_replication_slots": 10, "max_connections": 100}}),
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": "127.0.0.1:%d" % ports.pg(i),
            "connect_address": "127.0.0.1:%d" % ports.pg(i),
            "data_dir": os.path.join(node_dir, "data"),
            "bin_dir": PG_BIN,
            "pgpass": os.path.join(node_dir, "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": writer.PASSWORD},
                "replication": {"username": "replicator", "password": REPL_PW}},
            "parameters": {"unix_socket_directories": node_dir},
            "pg_hba": ["local all all trust",
                       "host replication replicator 127.0.0.1/32 scram-sha-256",
                       "host all all 127.0.0.1/32 scram-sha-256"],
        },
        # no device here; "off" keeps either supervisor from opening a real one
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False,
                 "nosync": False},
    }


def haproxy_config(ports):
    lines = ["global", "    maxconn 200",
             "defaults", "    mode tcp", "    retries 2", "    timeout connect 4s",
             "    timeout client 30m", "    timeout server 30m", "    timeout check 5s",
             "listen write", "    bind 127.0.0.1:%d" % ports.haproxy,
             "    option httpchk", "    http-check send meth GET uri /leader",
             "    http-check expect status 200",
             "    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions"]
    lines += ["    server pg-%d 127.0.0.1:%d maxconn 100 check port %d" %
              (i, ports.pg(i), ports.api(i)) for i in NODES]
    return "\n".join(lines) + "\n"


# ---- processes ------------------------------------------------------------------------------

def server_user():
    return pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())


def proc_stat(pid):
    """(state, ppid, comm, utime+stime+cutime+cstime) of pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    return f[0], int(f[1]), comm, sum(int(x) for x in f[11:15])


def all_stats():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st is not None:
                out[int(d)] = st
    return out


def children(pid):
    return [p for p, st in all_stats().items() if st[1] == pid]


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def supervisor_tree(root):
    """root and its descendants, except PostgreSQL's processes (and theirs)."""
    stats = all_stats()
    kids = {}
    for p, st in stats.items():
        kids.setdefault(st[1], []).append(p)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in stats and (p == root or stats[p][2] != "postgres"):
            out.append(p)
            todo += kids.get(p, [])
    return out, stats


def status_kb(pid, field, name):
    try:
        with open("/proc/%d/%s" % (pid, name)) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def stop_pid(pid, sig, grace):
    """sig, then SIGKILL if pid is still alive after grace seconds; a pid
    that is not our child is watched through /proc."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    end = now() + grace
    while alive(pid) and now() < end:
        time.sleep(0.1)
    if alive(pid):
        progress("pid %d still alive %g s after signal %d: SIGKILL" % (pid, grace, sig))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def port_busy(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


class Writer:
    """writer.py run through HAProxy, as a separate process."""

    def __init__(self, cluster, tag, interval):
        self.tag = tag
        self.log = os.path.join(cluster.dir, "writer-%s.log" % tag)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "writer.py"), "run", "--port",
             str(cluster.ports.haproxy), "--tag", tag, "--log", self.log, "--interval",
             str(interval), "--max-seconds", "600"], stdin=subprocess.DEVNULL)

    def result(self):
        try:
            return writer.read_log(self.log)
        except OSError:
            return writer.analyze([])

    def wait_steady(self, seconds, timeout=60):
        """Until the log holds seconds' worth of acknowledged commits."""
        def steady():
            oks = self.result()["oks"]
            return oks and oks[-1][0] - oks[0][0] >= seconds
        wait_for(steady, timeout, "%g s of commits through HAProxy" % seconds)

    def wait_ok_after(self, t, timeout):
        """Time of the first acknowledged commit after t."""
        def first():
            return next((at for at, _ in self.result()["oks"] if at > t), None)
        return wait_for(first, timeout, "commit through HAProxy", 0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:  # the current attempt ends within its client-side timeouts
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Cluster:
    def __init__(self, sup, cmd, env, run_dir, ports, timing, interval):
        self.sup = sup
        self.cmd = cmd          # argv; the node's config file is appended
        self.env = env          # added to the supervisors' environment
        self.dir = os.path.join(run_dir, sup)
        self.ports = ports
        self.timing = timing
        self.interval = interval
        self.user = server_user()
        self.procs = {}         # name -> Popen, for everything started here
        self.logs = []

    def node_dir(self, i):
        return os.path.join(self.dir, "pg-%d" % i)

    def node_cfg(self, i):
        return os.path.join(self.dir, "pg-%d.yml" % i)

    def emit(self, name, value, unit):
        emit("%s.%s" % (self.sup, name), value, unit)

    # ---- start and stop ----
    def prepare(self):
        busy = [p for p in self.ports.all() if port_busy(p)]
        if busy:
            raise BenchError("127.0.0.1 ports %s already in use (--port-base)" % busy)
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in [self.dir] + [self.node_dir(i) for i in NODES]:
            os.makedirs(d)
            os.chmod(d, 0o700)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        for i in NODES:
            with open(self.node_cfg(i), "w") as f:
                yaml.safe_dump(node_config(i, self.ports, self.timing, self.node_dir(i)), f,
                               default_flow_style=False, sort_keys=False)
            os.chmod(self.node_cfg(i), 0o644)
        with open(os.path.join(self.dir, "haproxy.cfg"), "w") as f:
            f.write(haproxy_config(self.ports))

    def spawn(self, name, argv, cwd=None, env=None):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        self.logs.append(log)
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        e = {"PATH": PG_BIN + ":/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
             "HOME": cwd or self.dir}
        e.update(env or {})
        # own session: a ^C of the benchmark reaches them only through stop()
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=cwd or self.dir,
                                            env=e, start_new_session=True, **kw)
        return self.procs[name]

    def start(self):
        p = self.ports
        self.start_etcd()
        cfg = os.path.join(self.dir, "haproxy.cfg")
        subprocess.run(["haproxy", "-c", "-q", "-f", cfg], check=True)
        self.spawn("haproxy", ["haproxy", "-db", "-f", cfg])
        wait_for(lambda: port_busy(p.haproxy), 20, "HAProxy listening")
        for i in NODES:
            self.start_node(i)

    def start_etcd(self):
        """A one-member etcd on the block's ports, until it answers /health."""
        p = self.ports
        peer = "http://127.0.0.1:%d" % p.etcd_peer
        client = "http://127.0.0.1:%d" % p.etcd
        self.spawn("etcd", ["etcd", "--name", "bench", "--data-dir",
                            os.path.join(self.dir, "etcd"), "--listen-client-urls", client,
                            "--advertise-client-urls", client, "--listen-peer-urls", peer,
                            "--initial-advertise-peer-urls", peer, "--initial-cluster",
                            "bench=" + peer, "--initial-cluster-state", "new"])
        wait_for(lambda: self.get("%s/health" % client)[0] == 200, 30, "etcd")

    def start_node(self, i):
        self.spawn("pg-%d" % i, self.cmd + [self.node_cfg(i)], cwd=self.node_dir(i),
                   env=self.env)

    def postmaster_pid(self, i):
        data = os.path.join(self.node_dir(i), "data")
        try:
            with open(os.path.join(data, "postmaster.pid")) as f:
                pid = int(f.readline())
            # the postmaster's working directory is its data directory
            if os.path.realpath("/proc/%d/cwd" % pid) == os.path.realpath(data):
                return pid
        except (OSError, ValueError):
            pass
        return None

    def crash(self, i):
        """SIGKILL node i's supervisor, postmaster and the postmaster's
        children, one kill() after the other: a host crash.  Returns the
        time of the first kill."""
        sup = self.procs["pg-%d" % i]
        pm = self.postmaster_pid(i)
        pids = [sup.pid] + ([pm] + children(pm) if pm else [])
        t = now()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sup.wait(timeout=10)
        return t

    def stop(self):
        for i in NODES:  # supervisors stop their PostgreSQL
            proc = self.procs.get("pg-%d" % i)
            if proc is not None and proc.poll() is None:
                stop_pid(proc.pid, signal.SIGTERM, 60)
        for i in NODES:  # a postmaster left behind: fast shutdown, by PID
            pm = self.postmaster_pid(i)
            if pm is not None:
                progress("%s: stopping the postmaster of pg-%d (%d)" % (self.sup, i, pm))
                stop_pid(pm, signal.SIGINT, 30)
        for name in ("haproxy", "etcd"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                stop_pid(proc.pid, signal.SIGTERM, 10)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                progress("%s: pid %d did not exit" % (self.sup, proc.pid))
        for log in self.logs:
            log.close()

    # ---- what the cluster says ----
    def get(self, url, timeout=1.0):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, b""
        except OSError:
            return None, b""

    def code(self, i, path, timeout=1.0):
        return self.get("http://127.0.0.1:%d%s" % (self.ports.api(i), path), timeout)[0]

    def streaming(self, i):
        try:
            conn = writer.psycopg2.connect(connect_timeout=2, **writer.dsn(self.ports.pg(i)))
        except writer.psycopg2.Error:
            return None
        try:
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            return cur.fetchone()[0]
        except writer.psycopg2.Error:
            return None
        finally:
            conn.close()

    def ready(self):
        """The leader's index once one node answers 200 on /leader, the two
        others 200 on /replica, and the leader has 2 streaming walsenders."""
        leaders = [i for i in NODES if self.code(i, "/leader") == 200]
        if len(leaders) != 1:
            return None
        lead = leaders[0]
        if any(self.code(i, "/replica") != 200 for i in NODES if i != lead):
            return None
        return lead if self.streaming(lead) == 2 else None

    def new_leader(self, old):
        for i in NODES:
            if i != old and self.code(i, "/leader", 0.5) == 200:
                return i, now()
        return None

    # ---- the figures ----
    def bootstrap(self):
        t0 = now()
        self.start()
        lead = wait_for(self.ready, 300, "leader + 2 streaming replicas", 0.2)
        took = now() - t0
        self.emit("bootstrap", took, "s")
        writer.setup(argparse.Namespace(port=self.ports.pg(lead)))
        return {"bootstrap": took}

    def idle(self, seconds):
        lead = wait_for(self.ready, 120, "healthy cluster")
        roots = {i: self.procs["pg-%d" % i].pid for i in NODES}
        ticks0 = {}
        for i, pid in roots.items():
            tree, stats = supervisor_tree(pid)
            ticks0[i] = sum(stats[p][3] for p in tree)
        t0 = now()
        time.sleep(seconds)  # the measurement window itself
        dt = now() - t0
        hz = os.sysconf("SC_CLK_TCK")
        replicas, got = 0, {}
        for i, pid in roots.items():
            tree, stats = supervisor_tree(pid)
            ticks = sum(stats[p][3] for p in tree)
            if i == lead:
                role = "leader"
            else:
                replicas += 1
                role = "replica%d" % replicas
            self.emit("idle.%s.cpu_per_min" % role, (ticks - ticks0[i]) / hz * 60.0 / dt,
                      "s/min")
            self.emit("idle.%s.rss" % role,
                      sum(status_kb(p, "VmRSS", "status") for p in tree) / 1024.0, "MiB")
            self.emit("idle.%s.pss" % role,
                      sum(status_kb(p, "Pss", "smaps_rollup") for p in tree) / 1024.0, "MiB")
            self.emit("idle.%s.processes" % role, len(tree), "count")
            if role == "leader":
                got["idle.leader.cpu_per_min"] = (ticks - ticks0[i]) / hz * 60.0 / dt
                got["idle.leader.rss"] = sum(status_kb(p, "VmRSS", "status") for p in tree)
        return got

    def switchover(self, r):
        old = wait_for(self.ready, 180, "healthy cluster")
        new = min(i for i in NODES if i != old)
        w = Writer(self, "so%d" % r, self.interval)
        try:
            w.wait_steady(1.0)
            out = open(os.path.join(self.dir, "switchover-%d.out" % r), "wb")
            t0 = now()
            ctl = subprocess.Popen(
                ["patronictl", "-c", self.node_cfg(1), "switchover", "--leader", "pg-%d" % old,
                 "--candidate", "pg-%d" % new, "--force"], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                                               "HOME": self.dir})
            try:
                t_lead = wait_for(lambda: self.code(new, "/leader", 0.5) == 200 and now(), 60,
                                  "200 on pg-%d's /leader" % new, 0.05)
                rc = ctl.wait(timeout=60)
                t_ctl = now()
            finally:
                if ctl.poll() is None:
                    ctl.kill()
                    ctl.wait()
                out.close()
            t_ok = w.wait_ok_after(t_lead, 60)
            time.sleep(max(0.0, t_ok + TAIL - now()))
        finally:
            w.stop()
        res = w.result()
        p = "switchover.r%d." % r
        self.emit(p + "write_gap", res["max_gap"], "s")
        self.emit(p + "new_leader_200", t_lead - t0, "s")
        self.emit(p + "first_write_ok", t_ok - t0, "s")
        self.emit(p + "ctl_returned", t_ctl - t0, "s")
        comment("%s switchover %d pg-%d -> pg-%d: longest gap from %+.3f s to %+.3f s after "
                "patronictl started; %d commits, %d failed attempts; patronictl exited %d"
                % (self.sup, r, old, new, res["gap_start"] - t0, res["gap_end"] - t0,
                   len(res["oks"]), res["errors"], rc))
        return {"write_gap": res["max_gap"], "new_leader_200": t_lead - t0}

    def failover(self, r):
        old = wait_for(self.ready, 180, "healthy cluster")
        w = Writer(self, "fo%d" % r, self.interval)
        try:
            w.wait_steady(1.0)
            tk = self.crash(old)
            new, t_lead = wait_for(lambda: self.new_leader(old), 120,
                                   "200 on a replica's /leader", 0.05)
            t_ok = w.wait_ok_after(t_lead, 60)
            time.sleep(max(0.0, t_ok + TAIL - now()))
        finally:
            w.stop()
        res = w.result()
        lost = writer.lost_rows(self.ports.pg(new), w.tag, [n for _, n in res["oks"]])
        p = "failover.r%d." % r
        self.emit(p + "write_gap", res["max_gap"], "s")
        self.emit(p + "new_leader_200", t_lead - tk, "s")
        self.emit(p + "first_write_ok", t_ok - tk, "s")
        self.emit(p + "rows_lost", len(lost), "rows")
        comment("%s failover %d: pg-%d killed, pg-%d leads; longest gap from %+.3f s to %+.3f s "
                "after the kill; %d commits, %d failed attempts"
                % (self.sup, r, old, new, res["gap_start"] - tk, res["gap_end"] - tk,
                   len(res["oks"]), res["errors"]))
        if lost:  # asynchronous replication: the last commits before the kill may be lost
            acked = dict((n, at) for at, n in res["oks"])
            comment("%s failover %d: lost ids %s, acknowledged at %s s after the kill"
                    % (self.sup, r, lost[:10], ["%+.3f" % (acked[n] - tk) for n in lost[:10]]))
        t0 = now()
        self.start_node(old)
        wait_for(self.ready, 300, "pg-%d back as a streaming replica" % old, 0.2)
        rejoin = now() - t0
        self.emit(p + "rejoin", rejoin, "s")
        return {"write_gap": res["max_gap"], "new_leader_200": t_lead - tk,
                "first_write_ok": t_ok - tk, "rejoin": rejoin, "rows_lost": len(lost)}


def run_supervisor(sup, cmd, env, a, ports, timing):
    """All figures of one supervisor; their values by name (medians) for the
    comparison at the end."""
    c = Cluster(sup, cmd, env, a.run_dir, ports, timing, a.interval)
    got = {}
    comment("%s: loadavg at start %s" % (sup, loadavg()))
    progress("%s: starting etcd, HAProxy and 3 nodes in %s" % (sup, c.dir))
    try:
        c.prepare()
        got.update(c.bootstrap())
        if a.idle_seconds > 0:
            progress("%s: idle for %g s" % (sup, a.idle_seconds))
            got.update(c.idle(a.idle_seconds))
        for kind, n, fn in (("switchover", a.switchovers, c.switchover),
                            ("failover", a.failovers, c.failover)):
            runs = []
            for r in range(1, n + 1):
                progress("%s: %s %d/%d" % (sup, kind, r, n))
                runs.append(fn(r))
            for fig in (runs[0] if runs else {}):
                if fig == "rows_lost":
                    c.emit("%s.rows_lost_total" % kind, sum(x[fig] for x in runs), "rows")
                    continue
                s = summary(x[fig] for x in runs)
                for label, v in zip(("min", "median", "max"), s):
                    c.emit("%s.%s.%s" % (kind, fig, label), v, "s")
                got["%s.%s.median" % (kind, fig)] = s[1]
    except (BenchError, subprocess.SubprocessError, OSError, writer.psycopg2.Error) as e:
        comment("%s: FAILED: %s (logs in %s)" % (sup, e, c.dir))
        got = None
    finally:
        progress("%s: stopping" % sup)
        handlers = [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]
        try:
            c.stop()
        finally:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        comment("%s: loadavg at end %s" % (sup, loadavg()))
    return got


def version(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return p.stdout.decode(errors="replace").strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def comment_header(build, commands, tool):
    """The run's date, versions (the supervisors, PostgreSQL, etcd, tool's
    first line) and host as comment lines."""
    comment("date: %s" % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    comment("patroni: %s; pgkeel: %s (built in %s); bench tree at commit %s" % (
        version(["/usr/bin/patroni", "--version"]),
        version(commands["pgkeel"][0] + ["--version"]) if "pgkeel" in commands else "-",
        build, version(["git", "-C", TOP, "rev-parse", "--short", "HEAD"])))
    comment("%s; %s; %s" % (version([os.path.join(PG_BIN, "postgres"), "--version"]),
                            version(["etcd", "--version"]), version(tool)))
    comment("host: %s %s, %d cores; everything on 127.0.0.1" % (
        platform.system(), platform.release(), os.cpu_count()))


def pgkeel_binaries(build, dest):
    """Copies of the built daemon and etcd backend outside the build tree
    (a rebuild during the run changes nothing), in a directory pgkeel's
    loader accepts: owned by root or the server user, not group-writable."""
    os.makedirs(dest, exist_ok=True)
    os.chmod(dest, 0o755)
    for src in (os.path.join(build, "core", "pgkeel"),
                os.path.join(build, "backends", "etcd3", ".libs", "dcs_etcd3.so")):
        if not os.access(src, os.R_OK):
            raise BenchError("%s missing: build pgkeel first (PGKEEL_BUILDDIR)" % src)
        shutil.copy(src, dest)
        os.chmod(os.path.join(dest, os.path.basename(src)), 0o755)
    return [os.path.join(dest, "pgkeel")], {"PGKEEL_BACKEND_DIR": dest}


def start_run(run_dir, sups):
    """SIGTERM and SIGINT raise Interrupted from now on; the run directory;
    pgkeel's build tree (PGKEEL_BUILDDIR) and each supervisor's (argv, env)
    (pgkeel_binaries()'s BenchError when pgkeel is not built)."""
    def interrupted(signum, frame):
        raise Interrupted("signal %d" % signum)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    build = os.path.abspath(os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build",
                                                                           "default")))
    os.makedirs(run_dir, exist_ok=True)
    os.chmod(run_dir, 0o755)
    commands = {"patroni": (["/usr/bin/patroni"], {})}
    if "pgkeel" in sups:
        commands["pgkeel"] = pgkeel_binaries(build, os.path.join(run_dir, "pgkeel-bin"))
    return build, commands


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="PGKEEL_BUILDDIR: pgkeel's build tree "
                                        "(default: build/default)")
    ap.add_argument("--supervisors", default="patroni,pgkeel",
                    help="comma-separated, run in this order (default: %(default)s)")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="fast")
    ap.add_argument("--switchovers", type=int, default=3)
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--interval", type=float, default=0.01,
                    help="seconds between the writer's commits (default: %(default)s)")
    ap.add_argument("--port-base", type=int, default=26000)
    ap.add_argument("--run-dir", default="/var/tmp/pgkeel-bench")
    a = ap.parse_args()
    sups = [s for s in a.supervisors.split(",") if s]
    for s in sups:
        if s not in ("patroni", "pgkeel"):
            ap.error("unknown supervisor %r (patroni, pgkeel)" % s)

    timing = PROFILES[a.profile]
    try:
        build, commands = start_run(a.run_dir, sups)
    except BenchError as e:
        sys.stderr.write("%s\n" % e)
        return 2
    comment_header(build, commands, ["haproxy", "-v"])
    comment("profile %s, the same for both supervisors; writer: one commit every %g s "
            "through HAProxy, 1 s connect / 2 s statement timeouts" % (a.profile, a.interval))
    for k in ("ttl", "loop_wait", "retry_timeout"):
        emit(k, timing[k], "s")
    ports = Ports(a.port_base)
    results = {}
    try:
        for s in sups:
            results[s] = run_supervisor(s, commands[s][0], commands[s][1], a, ports, timing)
    except Interrupted as e:
        comment("interrupted (%s)" % e)
        return 130
    p, k = results.get("patroni"), results.get("pgkeel")
    if p and k:
        for name in sorted(set(p) & set(k)):
            if p[name]:
                emit("pgkeel_vs_patroni.%s" % name, k[name] / p[name], "ratio")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
