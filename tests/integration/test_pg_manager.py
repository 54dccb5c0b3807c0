"""core/pg_manager.c (the PostgreSQL manager the HA loop calls) against real
PostgreSQL 15, through tests/tools/pgm_probe (run as the postgres user).

One lifecycle, as the HA loop drives it: bootstrap a primary as an async
action (refresh keeps answering while it runs; a second action is refused),
post-bootstrap, clone a replica, stop the primary, promote the replica with
its checkpointer stopped (checkpoint_after_promote stays pending until the
manager's CHECKPOINT completes), the old primary follows the new one, a
new manager adopts the running instance without restarting it, and the new
primary demotes gracefully (its stop reported before the demotion ends).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import yaml

from pg_instance import PG_BIN, children_of, have_postgres, free_port, poll, server_user

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "pgm_probe")

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="pgm_probe not built (make check)"),
]

PR_SET_CHILD_SUBREAPER = 36
HBA = [
    "local all all trust",
    "host all all 127.0.0.1/32 trust",
    "host replication replicator 127.0.0.1/32 trust",
    "local replication all trust",
]


class Node:
    def __init__(self, base, name, bootstrap=None):
        self.user = server_user()
        self.name = name
        self.dir = os.path.join(base, name)
        self.datadir = os.path.join(self.dir, "data")
        self.sockdir = os.path.join(self.dir, "sock")
        for d in (self.dir, self.sockdir):
            os.makedirs(d)
            os.chmod(d, 0o700)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        self.port = free_port()
        cfg = {
            "scope": "pgm-test",
            "name": name,
            "restapi": {"listen": "127.0.0.1:8008", "connect_address": "127.0.0.1:8008"},
            "etcd3": {"hosts": "127.0.0.1:2379"},
            "postgresql": {
                "listen": "127.0.0.1:%d" % self.port,
                "connect_address": "127.0.0.1:%d" % self.port,
                "data_dir": self.datadir,
                "bin_dir": PG_BIN,
                "pgpass": os.path.join(self.dir, "pgpass"),
                "use_unix_socket": True,
                "pg_hba": HBA,
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "replicator", "password": "rep-pw"},
                },
                "parameters": {"unix_socket_directories": self.sockdir, "fsync": False,
                               "shared_buffers": "16MB", "logging_collector": False},
            },
        }
        if bootstrap is not None:
            cfg["bootstrap"] = bootstrap
        self.conf = os.path.join(self.dir, "pgkeel.yml")
        with open(self.conf, "w") as f:
            yaml.safe_dump(cfg, f, default_flow_style=False, sort_keys=False)
        os.chmod(self.conf, 0o644)

    def psql(self, sql):
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-h",
                            self.sockdir, "-p", str(self.port), "-U", "postgres", "-d",
                            "postgres", "-c", sql], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, **kw)
        return p.stdout.decode().strip() if p.returncode == 0 else None


class Probe:
    """One pgm_probe process = one struct pgkeel_pgm."""

    def __init__(self, node):
        self.node = node
        self.stderr = tempfile.TemporaryFile()
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=node.user.pw_uid, group=node.user.pw_gid, extra_groups=[])
        env = {"PATH": PG_BIN + ":/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
               "HOME": node.dir}
        self.proc = subprocess.Popen([PROBE, "--config", node.conf], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, cwd=node.dir,
                                     env=env, **kw)
        self.buf = b""

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    def cmd(self, line, timeout=120.0):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("pgm_probe gave no answer to %r: %s" % (line, self.log()))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("pgm_probe exited on %r: %s" % (line, self.log()))
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw)

    def run(self, action, timeout_ms=120000):
        """Submit an action and wait for its result."""
        sub = self.cmd("submit " + action)
        assert sub["ok"], (action, sub, self.log())
        w = self.cmd("wait %d" % timeout_ms, timeout=timeout_ms / 1000 + 10)
        assert w["idle"] and w["result"] is not None, (action, w)
        assert w["result"]["ok"], (action, w["result"], self.log())
        return w["result"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stop_postmaster(pid, datadir):
    """SIGQUIT (then SIGKILL) a postmaster by PID if it is still that data
    directory's, and reap it (we are its subreaper)."""
    try:
        if os.path.realpath(os.readlink("/proc/%d/cwd" % pid)) != os.path.realpath(datadir):
            return
    except OSError:
        return
    kids = children_of(pid)
    for sig in (signal.SIGCONT, signal.SIGQUIT):
        for p in [pid] + kids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists("/proc/%d/cwd" % pid):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        time.sleep(0.05)
    for p in [pid] + kids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def env():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    base = tempfile.mkdtemp(prefix="pgkeel-pgm-")
    os.chmod(base, 0o755)
    state = {"base": base, "probes": [], "pids": []}
    try:
        yield state
    finally:
        for p in state["probes"]:
            p.close()
        for pid, datadir in state["pids"]:
            stop_postmaster(pid, datadir)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        for _ in range(200):  # bounded: reap what was reparented to us
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        shutil.rmtree(base, ignore_errors=True)


def controldata(node, key):
    kw = {}
    if os.geteuid() == 0:
        kw = dict(user=node.user.pw_uid, group=node.user.pw_gid, extra_groups=[])
    out = subprocess.run([os.path.join(PG_BIN, "pg_controldata"), node.datadir],
                         stdout=subprocess.PIPE, env={"LANG": "C"}, check=True, **kw)
    for line in out.stdout.decode().splitlines():
        k, _, v = line.partition(":")
        if k.strip() == key:
            return v.strip()
    return None


def test_manager_lifecycle(env):
    a = Node(env["base"], "pg-a", bootstrap={"initdb": [{"encoding": "UTF8"}, "data-checksums"]})
    b = Node(env["base"], "pg-b")
    pa = Probe(a)
    env["probes"].append(pa)

    s = pa.cmd("refresh")
    assert s["empty"] and not s["running"] and s["sysid"] == "" and not s["busy"], s

    # bootstrap runs on the worker: refresh answers meanwhile, a second action is refused
    assert pa.cmd("submit bootstrap")["ok"]
    refused = pa.cmd("submit stop fast")
    assert not refused["ok"] and refused["err"] == "bootstrap already in progress", refused
    busy = pa.cmd("busy-refresh 120000", timeout=130)
    assert busy["busy_seen"] and busy["refreshes"] >= 1 and busy["max_ms"] < 1000, busy
    w = pa.cmd("wait 120000", timeout=130)
    assert w["result"]["ok"] and w["result"]["name"] == "bootstrap", (w, pa.log())
    s = pa.cmd("refresh")
    env["pids"].append((s["pid"], a.datadir))
    assert s["running"] and s["state"] == "running" and s["role"] == "primary", s
    assert s["queried"] and s["in_recovery"] is False and s["timeline"] == 1, s
    assert s["sysid"] == controldata(a, "Database system identifier"), s
    assert controldata(a, "Data page checksum version") == "1"
    assert s["checkpoint_pending"] is False, s

    pa.run("post_bootstrap")
    assert a.psql("SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'") == "t"

    # a replica cloned from it streams
    pb = Probe(b)
    env["probes"].append(pb)
    pb.run("create_replica 127.0.0.1 %d" % a.port)
    sb = pb.cmd("refresh")
    env["pids"].append((sb["pid"], b.datadir))
    assert sb["running"] and sb["in_recovery"] is True and sb["sysid"] == s["sysid"], sb
    assert os.path.exists(os.path.join(b.datadir, "standby.signal"))
    a.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    poll(lambda: b.psql("SELECT count(*) FROM t") == "1", 30, "row 1 on the replica")

    # switchover by hand: stop the primary, promote the replica with its
    # checkpointer stopped -- the post-promote CHECKPOINT cannot complete
    pa.run("stop fast")
    sa = pa.cmd("refresh")
    assert not sa["running"] and sa["state"] == "stopped", sa
    ckpt = [p for p in children_of(sb["pid"])
            if b"checkpointer" in open("/proc/%d/cmdline" % p, "rb").read()]
    assert len(ckpt) == 1, ckpt
    os.kill(ckpt[0], signal.SIGSTOP)
    try:
        pb.run("promote")
        for _ in range(10):  # bounded: it stays pending while the checkpointer is stopped
            sb = pb.cmd("refresh")
            assert sb["in_recovery"] is False and sb["timeline"] == 2, sb
            assert sb["checkpoint_pending"] is True, sb
            time.sleep(0.1)
    finally:
        os.kill(ckpt[0], signal.SIGCONT)
    poll(lambda: pb.cmd("refresh")["checkpoint_pending"] is False, 60,
         "the CHECKPOINT after promote")
    assert b.psql("SELECT timeline_id FROM pg_control_checkpoint()") == "2"
    assert "CHECKPOINT after promote done (timeline 2)" in pb.log()

    # the old primary comes back as a replica of the new one
    pa.run("start replica 127.0.0.1 %d" % b.port)
    sa = pa.cmd("refresh")
    env["pids"].append((sa["pid"], a.datadir))
    assert sa["running"] and sa["in_recovery"] is True, sa
    b.psql("INSERT INTO t VALUES (2)")
    poll(lambda: a.psql("SELECT count(*) FROM t") == "2", 30, "row 2 on the old primary")
    poll(lambda: pa.cmd("refresh").get("timeline") == 2, 30, "timeline 2 on the old primary")

    # a new manager adopts the running replica without restarting it
    pa.close()
    pa2 = Probe(a)
    env["probes"].append(pa2)
    s2 = pa2.cmd("refresh")
    assert s2["running"] and s2["adopted"] and s2["pid"] == sa["pid"], s2
    assert s2["role"] == "replica" and s2["in_recovery"] is True, s2
    assert "found PostgreSQL running" in pa2.log()

    # the new primary demotes gracefully: the stop is reported (with its shutdown
    # checkpoint) before the demotion ends, and it comes back as a replica
    assert pb.cmd("stopped")["stopped"] is False
    pb.run("demote graceful")
    st = pb.cmd("stopped")
    assert st["stopped"] is True and st["lsn"] > 0, st
    sb = pb.cmd("refresh")
    assert sb["running"] and sb["in_recovery"] is True, sb
    assert "Demoting self (graceful)" in pb.log()
