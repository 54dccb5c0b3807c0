"""scripts/demo.sh, the README's main command, end to end: start, status,
failover, stop in a temp state folder on a port block nobody else uses
(below the kernel's range of free ports, which the other tests take), with
the build under test (PGKEEL_BUILDDIR) and no package installation.

Checked: a write through HAProxy's write port lands on the leader (and is
read back from that node directly); failover moves the leader and the write
port follows it, the old primary rejoins as a replica; stop leaves no
process behind, PostgreSQL included.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing

import psycopg2
import pytest

from etcd_cluster import ETCD
from ha_cluster import BUILD, PGKEEL, TOP, HaCluster, have_pgkeel
from pg_instance import have_postgres, poll

DEMO = os.path.join(TOP, "scripts", "demo.sh")
HAPROXY = "/usr/sbin/haproxy"
# offsets of the block demo.sh uses (its header documents them)
OFFSETS = (0, 1, 2, 8, 9, 10, 379, 380, 432, 433, 434)

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not os.access(HAPROXY, os.X_OK), reason="haproxy not installed"),
    pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def live(pid):
    """The process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def free_block():
    """A DEMO_PORT_BASE whose whole block is free, below 32768 (so no test's
    free_port() can be handed one of them later)."""
    bases = list(range(20000, 32000, 500))
    random.shuffle(bases)
    for base in bases:
        if all(port_free(base + o) for o in OFFSETS):
            return base
    raise AssertionError("no free port block between 20000 and 32768")


class Demo:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pgkeel-demo-test-")
        os.chmod(self.dir, 0o755)
        self.base = free_block()
        self.env = dict(os.environ, DEMO_DIR=self.dir, DEMO_PORT_BASE=str(self.base),
                        PGKEEL_BUILDDIR=BUILD, DEMO_SKIP_DEPS="1", LANG="C.UTF-8")
        self.values = {}

    def run(self, *args, timeout=150):
        p = subprocess.run([DEMO] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=self.env, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0, "demo.sh %s failed (%d):\n%s\n%s" % (
            " ".join(args), p.returncode, out, self.logs())
        return out

    def logs(self):
        text = []
        logdir = os.path.join(self.dir, "logs")
        for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
            with open(os.path.join(logdir, name), "rb") as f:
                text.append("--- %s\n%s" % (name, f.read()[-3000:].decode(errors="replace")))
        return "\n".join(text)

    def env_value(self, key):
        if not self.values:
            with open(os.path.join(self.dir, "demo.env")) as f:
                for line in f:
                    if "=" in line and not line.startswith("#"):
                        k, v = line.strip().split("=", 1)
                        self.values[k] = v
        return self.values[key]

    def connect(self, port):
        return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                password=self.env_value("SUPERUSER_PW"), connect_timeout=5)

    def pg_port(self, node):
        return self.base + 431 + node

    def leader_via_rest(self):
        for n in (1, 2, 3):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/leader" % (self.base + 7 + n),
                                            timeout=3) as r:
                    if r.status == 200:
                        return n
            except (urllib.error.URLError, OSError):
                pass
        return None

    def write_through_haproxy(self, note):
        """INSERT through the write port; (node that served it, row id)."""
        def attempt():
            try:
                with closing(self.connect(self.base)) as c, c, c.cursor() as cur:
                    cur.execute("SET statement_timeout = '5s'")
                    cur.execute("CREATE TABLE IF NOT EXISTS smoke (id serial PRIMARY KEY, note "
                                "text, port int DEFAULT inet_server_port())")
                    cur.execute("INSERT INTO smoke (note) VALUES (%s) RETURNING port, id", (note,))
                    return cur.fetchone()
            except psycopg2.Error:
                return None
        port, row = poll(attempt, 30, "a write through HAProxy's write port")
        return port - self.base - 431, row

    def row_on(self, node, row):
        """(note, in recovery) of the row on that node; None when it does not answer."""
        try:
            with closing(self.connect(self.pg_port(node))) as c, c, c.cursor() as cur:
                cur.execute("SELECT note, pg_is_in_recovery() FROM smoke WHERE id = %s", (row,))
                return cur.fetchone()
        except psycopg2.Error:
            return None

    def pids(self):
        """Every PID the demo recorded, and the postmasters in its data folders."""
        pids = set()
        run = os.path.join(self.dir, "run")
        for name in os.listdir(run) if os.path.isdir(run) else []:
            with open(os.path.join(run, name)) as f:
                pids.add(int(f.read().split()[0]))
        for n in (1, 2, 3):
            try:
                with open(os.path.join(self.dir, "pg-%d" % n, "data", "postmaster.pid")) as f:
                    pids.add(int(f.readline()))
            except (OSError, ValueError):
                pass
        return pids

    def processes_inside(self):
        """Live (non-zombie) processes whose cwd or command line is in the state folder."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            if not live(int(entry)):
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink("/proc/%s/cwd" % entry)
            except OSError:
                continue
            if cwd.startswith(self.dir) or self.dir in cmd:
                found.append("%s: %s (cwd %s)" % (entry, cmd, cwd))
        return found

    def cleanup(self):
        """After a failed test: stop by the recorded PIDs, then remove the folder."""
        try:
            subprocess.run([DEMO, "stop"], env=self.env, timeout=300, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pass
        for pid in self.pids():
            try:
                if os.readlink("/proc/%d/cwd" % pid).startswith(self.dir) or \
                        self.dir in open("/proc/%d/cmdline" % pid).read():
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def demo():
    d = Demo()
    try:
        yield d
    finally:
        d.cleanup()


def test_demo_start_status_failover_stop(demo):
    out = demo.run()  # start
    assert "Leader" in out and "postgresql://admin:" in out, out
    assert demo.leader_via_rest() == 1, out

    node, row = demo.write_through_haproxy("before failover")
    assert node == 1
    assert demo.row_on(1, row) == ("before failover", False)

    out = demo.run("status")
    assert "pg-1: pgkeel running" in out and "writes 127.0.0.1:%d -> pg-1" % demo.base in out, out

    out = demo.run("failover")
    new = demo.leader_via_rest()
    assert new in (2, 3), out
    assert "pg-%d took over" % new in out and "pg-1 streams from pg-%d: ok" % new in out, out
    node, row = demo.write_through_haproxy("after failover")
    assert node == new
    assert demo.row_on(new, row) == ("after failover", False)
    # the old primary follows the new one and has the row
    poll(lambda: demo.row_on(1, row) == ("after failover", True), 30, "the row on pg-1")

    pids = demo.pids()
    assert len(pids) >= 8, pids  # etcd, haproxy, 3 pgkeel, 3 postmasters
    out = demo.run("stop")
    alive = [p for p in pids if live(p)]
    assert not alive, "still running after stop: %s\n%s" % (alive, out)
    assert not demo.processes_inside(), demo.processes_inside()
    bound = [demo.base + o for o in OFFSETS if listening(demo.base + o)]
    assert not bound, "still listening after stop: %s" % bound


def have_systemd_build():
    try:
        with open(os.path.join(BUILD, "autoconf.h")) as f:
            return "#define HAVE_SYSTEMD 1" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not have_systemd_build(), reason="pgkeel built without libsystemd")
def test_unit_notify_protocol():
    """What contrib/pgkeel.service relies on (Type=notify, WatchdogSec): on a
    socket standing in for systemd's, READY=1 comes only once the DCS answers
    (not while pgkeel waits for a frozen etcd) and the REST API listens,
    WATCHDOG=1 after every cycle, STOPPING=1 on SIGTERM."""
    # an abstract socket: no file permissions between us and the postgres user
    name = "pgkeel-test-notify-%d" % os.getpid()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(0.2)

    def messages(seconds, until=None):
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.extend(sock.recv(4096).decode().split("\n"))
            except socket.timeout:
                continue
            if until is not None and until(got):
                break
        return got

    with closing(sock), HaCluster(1) as c:
        node = c.nodes[0]
        # the DCS down = etcd frozen (its port stays taken)
        c.etcd.start()
        c.etcd.freeze(c.etcd.members[0])
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=node.user.pw_uid, group=node.user.pw_gid, extra_groups=[])
        node.logf = open(node.logfile, "ab")
        node.proc = subprocess.Popen(
            [PGKEEL, node.conf], stdout=node.logf, stderr=node.logf, stdin=subprocess.DEVNULL,
            cwd=node.dir, env={"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": node.dir,
                               "NOTIFY_SOCKET": "@" + name}, **kw)
        node.wait_log("waiting for the DCS to be accessible", timeout=30)
        early = messages(2)
        assert "READY=1" not in early, "READY=1 with no DCS: %s\n%s" % (early, node.log())

        c.etcd.thaw(c.etcd.members[0])
        got = messages(30, lambda g: "READY=1" in g and g.count("WATCHDOG=1") >= 2)
        assert "READY=1" in got, "no READY=1 once etcd answers: %s\n%s" % (got, node.log())
        assert listening(node.api_port), "READY=1 before the REST API listens"
        assert got.count("WATCHDOG=1") >= 2, "WATCHDOG=1 not after every cycle: %s" % got
        assert got.index("READY=1") < got.index("WATCHDOG=1"), got

        node.proc.send_signal(signal.SIGTERM)
        got = messages(30, lambda g: "STOPPING=1" in g)
        assert "STOPPING=1" in got, got
        assert node.proc.wait(timeout=60) == 0, node.log()
