"""core/pg_ctl.c against real PostgreSQL 15, through tests/tools/pgctl_probe:
configuration files written through pg_conf, start (ready, failure with the
reason from the log), what the postmaster inherits (descriptors, signals,
environment), adoption after a restart of the supervisor, a stale
postmaster.pid, crash detection, stop modes and the SIGKILL escalation,
reload, restart-needed detection and restart, promotion.

The probe runs as the postgres user (PostgreSQL refuses root); data
directories are made by pg_instance.py (initdb, pg_basebackup), but every
start and stop under test goes through the module.  Every postmaster a probe
reported is killed by PID (with its children) when a test ends, also on
failure.  This module makes the test process a child subreaper while it runs,
so that a postmaster whose probe was killed is reparented here and reaped by
PID instead of staying a zombie of init.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import ctypes
import json
import os
import select
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from pg_instance import PG_BIN, PgInstance, children_of, have_postgres, poll, server_user

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "pgctl_probe")

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="pgctl_probe not built (make check)"),
]

SLACK_MS = 500          # scheduling slack on top of a documented bound
KILL_GRACE_MS = 1000    # PGKEEL_PGCTL_KILL_GRACE_MS
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    reap_orphaned_postgres()


def reap_orphaned_postgres():
    """Reap exited postgres processes reparented to us (the children of a
    postmaster that was killed); nothing else of ours is touched."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                data = f.read().decode(errors="replace")
        except OSError:
            continue
        comm = data[data.find("(") + 1:data.rfind(")")]
        fields = data[data.rfind(")") + 2:].split()
        if comm == "postgres" and fields[0] == "Z" and int(fields[1]) == me:
            reap(int(entry))


# ---- processes ----

def proc_state(pid):
    """The state letter of /proc/<pid>/stat, None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2]


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def gone(pid):
    """Exited: no such process, or a zombie (reaped here when it is ours)."""
    reap(pid)
    return proc_state(pid) in (None, "Z", "X")


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def fd_targets(pid):
    d = "/proc/%d/fd" % pid
    out = {}
    for fd in os.listdir(d):
        try:
            out[int(fd)] = os.readlink(os.path.join(d, fd))
        except OSError:
            pass
    return out


def kill_tree(pid, datadir):
    """SIGKILL a postmaster we started and its children, by PID, if it is
    still this data directory's postmaster (never a recycled pid)."""
    try:
        cwd = os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        reap(pid)
        return
    if os.path.realpath(cwd) != os.path.realpath(datadir):
        return
    for p in [pid] + children_of(pid):
        try:
            os.kill(p, signal.SIGCONT)
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    poll(lambda: gone(pid), 10, "postmaster %d to die" % pid)


def kill_all(pids, datadir):
    """The children a SIGKILLed postmaster left (they would exit on their own
    soon; a new postmaster cannot start while they hold shared memory)."""
    for pid in pids:
        if not gone(pid):
            kill_tree(pid, datadir)
    poll(lambda: all(gone(p) for p in pids), 10, "the old postmaster's children to exit")


# ---- the probe ----

class Probe:
    """One pgctl_probe process = one struct pgkeel_pgctl, run as postgres."""

    def __init__(self, node, *args, env=None):
        self.node = node
        user = server_user()
        self.stderr = tempfile.TemporaryFile()
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        penv = dict(node.pg.env)
        penv.update(env or {})
        self.proc = subprocess.Popen(
            [PROBE, "--data-dir", node.pg.datadir, "--bin-dir", PG_BIN, "--config", node.conf,
             "--host", node.pg.sockdir, "--port", str(node.pg.port), "--user", "postgres"] +
            list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            cwd=node.pg.dir, env=penv, **kw)
        self.buf = b""
        self.killed = False

    def cmd(self, line, timeout=60.0):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("pgctl_probe gave no answer to %r within %.0f s: %s" %
                                     (line, timeout, self.errors()))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("pgctl_probe exited (%s) on %r: %s" %
                                         (self.proc.poll(), line, self.errors()))
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        out = json.loads(raw)
        if out["status"]["pid"]:
            self.node.pids.add(out["status"]["pid"])
        return out

    def ok(self, line, timeout=60.0):
        out = self.cmd(line, timeout)
        assert out["ok"], (out, self.errors()[-3000:])
        return out

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def kill(self):
        """The supervisor dies: SIGKILL, PostgreSQL is left alone."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self):
        """Quit (PostgreSQL is left as it is); an error text unless the probe
        exited 0 (the sanitizer build reports leaks through the exit code)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
                return "pgctl_probe did not quit"
        if self.killed or self.proc.returncode == 0:
            return None
        return "pgctl_probe exited %d: %s" % (self.proc.returncode, self.errors()[-3000:])


class Node:
    """A data directory (initdb'ed or cloned by pg_instance.py), a
    configuration file for the probe, and every postmaster pid seen."""

    def __init__(self, name, base=None, **params):
        self.pg = PgInstance(name, base_dir=base)
        self.pids = set()
        self.probes = []
        self.conf = os.path.join(self.pg.dir, "pgkeel.yml")
        self.pgpass = os.path.join(self.pg.dir, "pgpass")
        self.write_conf(**params)

    def write_conf(self, **params):
        pg = self.pg
        params.setdefault("unix_socket_directories", pg.sockdir)
        params.setdefault("fsync", "off")
        params.setdefault("shared_buffers", "16MB")
        lines = [
            "scope: pgctl-test",
            "name: %s" % pg.name,
            "restapi:",
            "  listen: 127.0.0.1:8008",
            "  connect_address: 127.0.0.1:8008",
            "etcd3:",
            "  hosts: 127.0.0.1:2379",
            "postgresql:",
            "  listen: 127.0.0.1:%d" % pg.port,
            "  connect_address: 127.0.0.1:%d" % pg.port,
            "  data_dir: %s" % pg.datadir,
            "  bin_dir: %s" % PG_BIN,
            "  pgpass: %s" % self.pgpass,
            "  authentication:",
            "    superuser:",
            "      username: postgres",
            "    replication:",
            "      username: postgres",
            "      password: rep-secret",
            "  pg_hba:",
            "    - local all all trust",
            "    - local replication all trust",
            "    - host all all 127.0.0.1/32 trust",
            "    - host replication all 127.0.0.1/32 trust",
            "  parameters:",
        ] + ["    %s: %s" % (k, json.dumps(v)) for k, v in params.items()]
        pg.write_file(self.conf, "\n".join(lines) + "\n", mode=0o644)

    def probe(self, *args, env=None):
        p = Probe(self, *args, env=env)
        self.probes.append(p)
        return p

    def path(self, name):
        return os.path.join(self.pg.datadir, name)

    def cleanup(self):
        problems = []
        for p in self.probes:
            try:
                problems.append(p.close())
            except Exception as e:
                problems.append(repr(e))
        try:
            for pid in self.pids:
                kill_tree(pid, self.pg.datadir)
        finally:
            self.pg.cleanup()
        problems = [p for p in problems if p]
        assert not problems, problems


@pytest.fixture
def nodes():
    made = []

    def make(name, base=None, **params):
        n = Node(name, base, **params)
        made.append(n)
        return n
    yield make
    errors = []
    for n in reversed(made):
        try:
            n.cleanup()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, errors


@pytest.fixture
def node(nodes):
    n = nodes("pgctl")
    n.pg.initdb()
    return n


def started(node, *args, env=None):
    """A probe that wrote the configuration and started PostgreSQL, ready."""
    p = node.probe(*args, env=env)
    p.ok("write primary")
    p.ok("start 30000")
    out = p.ok("wait 30000")
    assert out["status"]["state"] == "running"
    return p


# ---- tests ----

def test_start_writes_config_and_postmaster_inherits_nothing(node, nodes):
    original = open(node.path("postgresql.conf")).read()
    p = node.probe(env={"PATRONI_SECRET": "dcs-password", "PGKEEL_TOKEN": "rest-secret"})
    fds = p.ok("fds")
    w = p.ok("write primary")
    assert w["diag"]["errors"] == []
    # postgresql.conf renamed once to postgresql.base.conf, then Patroni's file
    assert open(node.path("postgresql.base.conf")).read() == original
    conf = open(node.path("postgresql.conf")).read()
    assert conf.startswith("# Do not edit this file manually!\n"), conf
    assert "include 'postgresql.base.conf'" in conf
    assert "hba_file = '%s'" % node.path("pg_hba.conf") in conf
    assert "host replication all 127.0.0.1/32 trust" in open(node.path("pg_hba.conf")).read()
    assert stat.S_IMODE(os.stat(node.path("postgresql.conf")).st_mode) == 0o600
    assert not os.path.exists(node.path("standby.signal"))
    argv = w["argv"]
    assert argv[:4] == [os.path.join(PG_BIN, "postgres"), "-D", node.pg.datadir,
                        "--config-file=%s" % node.path("postgresql.conf")]
    assert "--port=%d" % node.pg.port in argv and "--listen_addresses=127.0.0.1" in argv
    # a second write keeps the base file (the rename happens once)
    p.ok("write primary")
    assert open(node.path("postgresql.base.conf")).read() == original

    out = p.ok("start 30000")
    st = out["status"]
    assert st["state"] == "starting" and st["role"] == "primary" and not st["adopted"]
    pid = st["pid"]
    st = p.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["pidfile_status"] == "ready"
    assert st["pid"] == pid
    pidfile = open(node.path("postmaster.pid")).read().split("\n")
    assert int(pidfile[0]) == pid and int(pidfile[2]) == st["start_time"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[:-1] == [a.encode() for a in argv]

    # descriptors: stdin /dev/null, stdout+stderr the log, none of the probe's
    targets = fd_targets(pid)
    log = st["log_path"]
    assert log == node.path("pgkeel-postmaster.log")
    assert targets[0] == "/dev/null"
    assert targets[1] == log and targets[2] == log
    assert "socket:[%d]" % fds["socket_inode"] not in targets.values(), targets
    assert fds["eventfd_link"] not in targets.values(), targets
    # signals: nothing blocked (postgres blocks only transiently while it works), and
    # the ignored set is postgres's own, as a postmaster started by Python has it
    poll(lambda: int(proc_status(pid, "SigBlk"), 16) == 0, 5, "postmaster SigBlk == 0")
    ref = nodes("reference")
    ref.pg.initdb()
    ref.pg.start()
    assert proc_status(pid, "SigIgn") == proc_status(ref.pg.pid, "SigIgn")
    ignored = int(proc_status(pid, "SigIgn"), 16)
    assert not ignored & (1 << (signal.SIGWINCH - 1)), "SIGWINCH ignore inherited"
    assert not ignored & (1 << (signal.SIGTSTP - 1)), "SIGTSTP ignore inherited"
    # environment: no PATRONI_* / PGKEEL_* secrets
    with open("/proc/%d/environ" % pid, "rb") as f:
        env = f.read().split(b"\0")
    assert not [e for e in env if e.startswith((b"PATRONI_", b"PGKEEL_"))], env
    # own session
    assert os.getsid(pid) == pid

    assert p.ok("sql 5000 SELECT 1")["value"] == "1"
    # a smart shutdown waits for every client: the caller closes its own connection
    p.ok("close")
    out = p.ok("stop smart 30000")
    assert out["result"] == "done" and out["status"]["state"] == "stopped"
    assert gone(pid)
    assert not os.path.exists(node.path("postmaster.pid"))
    assert not out["status"]["pidfile_left"]


def test_stop_fast_and_immediate(node):
    p = started(node)
    for mode in ("fast", "immediate"):
        if mode == "immediate":
            p.ok("start 30000")
            p.ok("wait 30000")
        st = p.ok("status")["status"]
        pid = st["pid"]
        kids = children_of(pid)
        assert kids
        out = p.ok("stop %s 30000" % mode)
        assert out["result"] == "done", out
        assert out["status"]["state"] == "stopped" and out["status"]["pid"] == 0
        assert gone(pid) and all(gone(k) for k in kids)
        # PostgreSQL 15 removes postmaster.pid on an immediate shutdown too; only a
        # SIGKILLed postmaster leaves it (test_stop_escalates_to_sigkill)
        assert not os.path.exists(node.path("postmaster.pid")), mode
        assert not out["status"]["pidfile_left"]
        assert "received %s shutdown request" % mode in open(st["log_path"]).read()
    # stopping what is not running
    out = p.ok("stop fast 5000")
    assert out["result"] == "not running"
    # crash recovery after the immediate stop, and a stop split in begin + wait
    p.ok("start 30000")
    p.ok("wait 30000")
    out = p.ok("stop-begin fast")
    assert out["result"] == "pending" and out["status"]["state"] == "stopping"
    out = p.ok("stop-wait 30000")
    assert out["result"] == "done" and out["status"]["state"] == "stopped"


def test_start_failure_reports_port_taken(node):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", node.pg.port))
        blocker.listen(1)
        p = node.probe()
        p.ok("write primary")
        out = p.ok("start 30000")
        pid = out["status"]["pid"]
        out = p.cmd("wait 30000")
        assert not out["ok"]
        st = out["status"]
        assert st["state"] == "start failed", st
        assert out["elapsed_ms"] < 10000
        assert 'could not bind IPv4 address "127.0.0.1": Address already in use' in st["reason"]
        assert "exited with code 1" in st["reason"], st["reason"]
        assert "database system is shut down" not in st["reason"]
        assert st["pid"] == 0 and gone(pid)
    finally:
        blocker.close()
    # the port is free again: the same handle starts it
    p.ok("start 30000")
    assert p.ok("wait 30000")["status"]["state"] == "running"
    p.ok("stop fast 30000")


def test_start_failure_before_logging(node):
    """A message PostgreSQL writes before its logging is set up (no severity)."""
    p = node.probe()
    out = p.ok("startx 30000 primary %s -D %s/nonexistent" % (os.path.join(PG_BIN, "postgres"),
                                                               node.pg.dir))
    out = p.cmd("wait 30000")
    st = out["status"]
    assert st["state"] == "start failed"
    assert "nonexistent" in st["reason"] and "No such file or directory" in st["reason"], st


def test_start_failure_cannot_execute(node):
    p = node.probe()
    out = p.cmd("startx 30000 primary %s/no-such-postgres -D %s" % (node.pg.dir,
                                                                   node.pg.datadir))
    assert not out["ok"]
    assert out["status"]["state"] == "start failed"
    assert "No such file or directory" in out["err"] and out["status"]["reason"] == out["err"]


def test_ready_needs_a_connection(node):
    """pidfile "ready" is not enough when the caller's connection fails: the
    start times out (state stays "starting", as in Patroni) with the reason."""
    p = node.probe("--user", "nosuchrole")
    p.ok("write primary")
    p.ok("start 1500")
    out = p.cmd("wait 3000")
    st = out["status"]
    assert not out["ok"] and st["state"] == "starting" and st["timed_out"], st
    assert st["pidfile_status"] == "ready"
    assert 'role "nosuchrole" does not exist' in st["reason"], st
    # at most one connection attempt a second (each logs Patroni's INFO line)
    attempts = p.errors().count("establishing a new patroni connection")
    assert 1 <= attempts <= 4, attempts
    out = p.ok("stop fast 30000")
    assert out["result"] == "done" and out["status"]["state"] == "stopped"


def test_adopt_after_supervisor_restart(node):
    p = started(node)
    st = p.ok("status")["status"]
    pid, start_time = st["pid"], st["start_time"]
    p.kill()
    assert proc_state(pid) not in (None, "Z")
    q = node.probe()
    out = q.ok("adopt")
    assert out["result"] == "adopted"
    st = out["status"]
    assert st["pid"] == pid and st["start_time"] == start_time
    assert st["adopted"] and st["state"] == "running" and st["role"] == "primary"
    assert q.ok("poll")["status"]["state"] == "running"
    assert q.ok("running")["ok"]
    # start on a running instance: adopts, Patroni's "starting", then ready again
    q.ok("write primary")
    out = q.ok("start 30000")
    assert out["status"]["pid"] == pid and out["status"]["state"] == "starting"
    assert q.ok("wait 30000")["status"]["state"] == "running"
    assert "Cannot start PostgreSQL because one is already running." in q.errors()
    # reload and stop work on the adopted postmaster (not our child)
    q.ok("reload")
    out = q.ok("stop fast 30000")
    assert out["result"] == "done" and out["status"]["state"] == "stopped"
    assert gone(pid)
    assert not os.path.exists(node.path("postmaster.pid"))
    assert q.cmd("adopt")["result"] == "none"


def test_stale_pidfile_is_not_adopted(node):
    user = server_user()
    # an unrelated live process of the same user holds the pid in postmaster.pid
    other = subprocess.Popen(["sleep", "300"], user=user.pw_uid, group=user.pw_gid,
                             extra_groups=[], cwd="/")
    try:
        node.pg.write_file(node.path("postmaster.pid"), "%d\n%s\n%d\n%d\n%s\n127.0.0.1\n"
                           "  5432001   1\nready   \n" % (other.pid, node.pg.datadir,
                                                           int(time.time()) - 3600,
                                                           node.pg.port, node.pg.sockdir))
        p = node.probe()
        out = p.cmd("adopt")
        assert out["result"] == "stale" and out["status"]["pid"] == 0
        assert not p.cmd("running")["ok"]
        p.ok("write primary")
        p.ok("start 30000")
        st = p.ok("wait 30000")["status"]
        assert st["state"] == "running" and st["pid"] != other.pid
        assert "safe to ignore postmaster.pid for process %d" % other.pid in p.errors()
        assert int(open(node.path("postmaster.pid")).readline()) == st["pid"]
        assert other.poll() is None  # untouched
        p.ok("stop fast 30000")
    finally:
        other.kill()
        other.wait()


def test_crash_detection(node):
    p = started(node)
    st = p.ok("status")["status"]
    pid = st["pid"]
    kids = children_of(pid)
    os.kill(pid, signal.SIGKILL)
    st = poll(lambda: (lambda s: s if s["state"] != "running" else None)(
        p.ok("poll")["status"]), 10, "crash noticed")
    assert st["state"] == "crashed"
    assert "killed by signal 9" in st["reason"], st
    assert st["pid"] == 0 and st["exit_status"] == signal.SIGKILL
    reap(pid)
    kill_all(kids, node.pg.datadir)
    # the leftover postmaster.pid names a dead pid: the next start copes
    p.ok("start 30000")
    st = p.ok("wait 30000")["status"]
    assert st["state"] == "running"
    # an adopted postmaster dying is a crash too
    p.kill()
    q = node.probe()
    assert q.ok("adopt")["result"] == "adopted"
    pid = q.ok("status")["status"]["pid"]
    kids = children_of(pid)
    os.kill(pid, signal.SIGKILL)
    poll(lambda: gone(pid), 10, "postmaster gone")
    st = q.ok("poll")["status"]
    assert st["state"] == "crashed" and "is gone" in st["reason"], st
    kill_all(kids, node.pg.datadir)


def test_reload_and_restart_needed(node):
    p = started(node)
    assert p.ok("sql 5000 SHOW work_mem")["value"] == "4MB"
    # a reloadable parameter
    node.write_conf(work_mem="7MB")
    p.ok("config %s" % node.conf)
    p.ok("write primary")
    p.ok("reload")
    poll(lambda: p.ok("sql 5000 SHOW work_mem")["value"] == "7MB", 10, "work_mem 7MB")
    assert p.ok("pending 5000")["names"] == []
    # a postmaster parameter: pending_restart after the reload, cleared by a restart
    pid = p.ok("status")["status"]["pid"]
    node.write_conf(work_mem="7MB", shared_buffers="24MB")
    p.ok("config %s" % node.conf)
    p.ok("write primary")
    p.ok("reload")
    poll(lambda: p.ok("pending 5000")["names"] == ["shared_buffers"], 10,
         "pending_restart for shared_buffers")
    assert p.ok("sql 5000 SHOW shared_buffers")["value"] == "16MB"
    out = p.ok("restart 30000 30000")
    assert out["status"]["state"] == "starting" and out["status"]["pid"] != pid
    assert gone(pid)
    assert p.ok("wait 30000")["status"]["state"] == "running"
    assert p.ok("pending 5000")["names"] == []
    assert p.ok("sql 5000 SHOW shared_buffers")["value"] == "24MB"
    assert p.ok("sql 5000 SHOW work_mem")["value"] == "7MB"
    p.ok("stop fast 30000")
    # reload without a postmaster
    out = p.cmd("reload")
    assert not out["ok"] and "not running" in out["err"]


def test_promote_replica(nodes):
    primary = nodes("primary")
    primary.pg.initdb()
    primary.pg.start()
    rep = nodes("replica", base=primary.pg.base)
    rep.pg.base_backup_from(primary.pg)
    # pg_basebackup -R put a primary_conninfo into postgresql.auto.conf, which would
    # win over ours; Patroni removes recovery parameters from that file
    auto = rep.path("postgresql.auto.conf")
    lines = open(auto).read().splitlines(True)
    rep.pg.write_file(auto, "".join(l for l in lines if not l.startswith("primary_conninfo")))
    p = rep.probe()
    w = p.ok("write replica 127.0.0.1 %d" % primary.pg.port)
    assert w["standby_signal"]
    assert os.path.exists(rep.path("standby.signal"))
    conf = open(rep.path("postgresql.conf")).read()
    assert "primary_conninfo = " in conf and "application_name=replica" in conf
    assert "recovery_target_timeline = 'latest'" in conf
    # the replication password went to the pgpass file (0600), not into the conninfo
    assert "passfile=%s" % rep.pgpass in conf and "rep-secret" not in conf
    assert "rep-secret" in open(rep.pgpass).read()
    assert stat.S_IMODE(os.stat(rep.pgpass).st_mode) == 0o600
    p.ok("start 30000 replica")
    st = p.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["role"] == "replica"
    assert st["pidfile_status"] == "ready"  # a hot standby accepting connections
    assert p.ok("sql 5000 SELECT pg_is_in_recovery()")["value"] == "t"
    poll(lambda: primary.pg.psql("SELECT count(*) FROM pg_stat_replication "
                                 "WHERE application_name = 'replica'") == "1", 30,
         "replica streaming")
    # promoting a primary fails with pg_ctl's message
    q = primary.probe()
    q.ok("adopt")
    out = q.cmd("promote 10000")
    assert not out["ok"] and "not in standby mode" in out["err"], out
    q.close()
    primary.pids.clear()  # pg_instance.py started that one and stops it
    # the supervisor restarts: the replica is adopted as a replica, then promoted
    p.kill()
    p = rep.probe()
    st = p.ok("adopt")["status"]
    assert st["adopted"] and st["role"] == "replica" and st["state"] == "running"
    out = p.ok("promote 30000")
    assert out["status"]["role"] == "primary"
    assert p.ok("sql 5000 SELECT pg_is_in_recovery()")["value"] == "f"
    assert not os.path.exists(rep.path("standby.signal"))
    assert p.ok("sql 5000 SELECT timeline_id FROM pg_control_checkpoint()")
    p.ok("stop fast 30000")


def test_stop_escalates_to_sigkill(node):
    p = started(node)
    st = p.ok("status")["status"]
    pid = st["pid"]
    kids = children_of(pid)
    assert kids
    os.kill(pid, signal.SIGSTOP)  # the postmaster ignores every request now
    out = p.ok("stop immediate 1500", timeout=30)
    assert out["result"] == "killed", out
    assert 1500 <= out["elapsed_ms"] <= 1500 + KILL_GRACE_MS + SLACK_MS, out
    st = out["status"]
    assert st["state"] == "stopped" and st["pid"] == 0
    assert gone(pid)
    assert all(gone(k) for k in kids), [(k, proc_state(k)) for k in kids]
    # a SIGKILLed postmaster leaves postmaster.pid (naming a dead pid) behind
    assert st["pidfile_left"]
    assert int(open(node.path("postmaster.pid")).readline()) == pid
    # which the next start replaces
    p.ok("start 30000")
    st = p.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["pid"] != pid
    # kill on demand (the "stop the starting postmaster now" primitive)
    pid = st["pid"]
    out = p.ok("kill")
    assert out["result"] == "killed" and gone(pid)


def test_log_file_stays_bounded(node):
    """Past its bound the log is copied to <log>.1 and truncated in place; the
    postmaster keeps writing to it (O_APPEND)."""
    p = node.probe("--log-max", "4000")
    p.ok("write primary")
    p.ok("start 30000")
    log = p.ok("wait 30000")["status"]["log_path"]
    p.ok("sql 5000 DO $$BEGIN RAISE LOG 'before-rotation %', repeat('x', 5000); END$$")
    poll(lambda: "before-rotation" in open(log).read(), 10, "the LOG line in the log")
    p.ok("poll")
    assert os.path.getsize(log) < 4000
    assert "before-rotation" in open(log + ".1").read()
    assert stat.S_IMODE(os.stat(log + ".1").st_mode) == 0o600
    p.ok("sql 5000 DO $$BEGIN RAISE LOG 'after-rotation'; END$$")
    poll(lambda: "after-rotation" in open(log).read(), 10, "writes to continue")
    with open(log, "rb") as f:
        assert b"\0" not in f.read()  # appended at the new end, no hole
    p.ok("stop fast 30000")


def test_log_reason_extraction(node):
    p = node.probe()

    def reason(pid, text):
        return p.ok("reason %d %s" % (pid, text.replace("\n", "\\n")))["reason"]

    text = ("2026-01-01 00:00:00.000 UTC [100] LOG:  starting PostgreSQL 15\n"
            "2026-01-01 00:00:00.001 UTC [100] LOG:  could not bind IPv4 address \"127.0.0.1\": "
            "Address already in use\n"
            "2026-01-01 00:00:00.001 UTC [100] HINT:  Is another postmaster already running?\n"
            "2026-01-01 00:00:00.002 UTC [200] FATAL:  the database system is starting up\n"
            "2026-01-01 00:00:00.002 UTC [300] FATAL:  password authentication failed\n"
            "2026-01-01 00:00:00.002 UTC [100] FATAL:  could not create any TCP/IP sockets\n"
            "2026-01-01 00:00:00.003 UTC [100] LOG:  database system is shut down\n")
    assert reason(100, text) == ('could not bind IPv4 address "127.0.0.1": Address already in '
                                 'use; could not create any TCP/IP sockets')
    # without pids in the prefix: every interesting line, client noise skipped
    plain = "\n".join(line.split("] ", 1)[1] for line in text.strip().split("\n"))
    assert reason(100, plain) == ('could not bind IPv4 address "127.0.0.1": Address already in '
                                  'use; password authentication failed; could not create any '
                                  'TCP/IP sockets')
    # no severity at all: the last lines
    assert reason(100, "one\ntwo\n\nthree\nfour\n") == "two; three; four"
    assert reason(0, "") == ""
