"""A pgkeel HA cluster for the tests: one etcd 3.4 (or a given EtcdCluster),
N pgkeel daemons (run as the postgres user when the tests run as root), each
with its PostgreSQL 15 on free loopback ports in a temp dir.  Node 1 gets the
seed's bootstrap section; the others join with none (as the seed guide says).
Everything started is stopped by PID in stop(), PostgreSQL included.

    with HaCluster(3) as c:
        c.start()
        leader = c.wait_leader()
        code, body = c.node("pg-2").rest("/replica")
        c.patronictl("list")

Debian's patronictl reads the same files (a patronictl config is written
beside the nodes').  Timing is short: ttl 10, loop_wait 2, retry_timeout 3.

Faults the tests inject, all on processes or sockets this module owns:
- proxies=True puts a TcpProxy (below) on each node's three network paths to
  the others: its etcd client connection (use_proxies, so the client never
  discovers the real member URLs), and the REST API and PostgreSQL addresses
  the others use (connect_address).  node.isolate() blackholes all three, as a
  network partition would, while the node's own listen ports stay reachable
  (the tests' direct writers and checks use those).
- node.env adds variables to one daemon's environment (libfaketime).
- HaProxy routes a write port to /leader and a read port to /replica.
- Writer commits rows with unique ids on one node, directly, and records
  each acknowledged commit with the monotonic time of its acknowledgment.
PGKEEL_HA_LOGS=<dir> keeps every node's log there when a cluster stops.
"""
import ctypes
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import yaml

from etcd_cluster import EtcdCluster
from pg_instance import PG_BIN, children_of, free_port, poll, server_user

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PGKEEL = os.path.join(BUILD, "core", "pgkeel")
ETCD3_SO = os.path.join(BUILD, "backends", "etcd3", ".libs", "dcs_etcd3.so")
PGKEELCTL = os.path.join(BUILD, "ctl", "pgkeelctl")
PR_SET_CHILD_SUBREAPER = 36

SUPERUSER_PW = "su-pw-4b1c"
REPL_PW = "rep-pw-77e0"
REWIND_PW = "rw-pw-19aa"

BOOTSTRAP_DCS = {
    "ttl": 10,
    "loop_wait": 2,
    "retry_timeout": 3,
    "maximum_lag_on_failover": 1048576,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {"wal_level": "replica", "hot_standby": "on", "max_wal_senders": 10,
                       "max_replication_slots": 10, "wal_log_hints": "on"},
    },
}
PG_HBA = [
    "local all all trust",
    "host all all 127.0.0.1/32 scram-sha-256",
    "host replication replicator 127.0.0.1/32 scram-sha-256",
]


def have_pgkeel():
    return os.access(PGKEEL, os.X_OK) and os.access(ETCD3_SO, os.R_OK)


class Node:
    def __init__(self, cluster, name, bootstrap, dirname=None):
        self.cluster = cluster
        self.name = name
        self.user = server_user()
        self.dir = os.path.join(cluster.base, dirname or name)
        self.datadir = os.path.join(self.dir, "data")
        self.sockdir = os.path.join(self.dir, "sock")
        for d in (self.dir, self.sockdir):
            os.makedirs(d)
            os.chmod(d, 0o700)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        self.api_port = free_port()
        self.pg_port = free_port()
        self.conf = os.path.join(self.dir, "pgkeel.yml")
        self.logfile = os.path.join(self.dir, "pgkeel.log")
        self.bootstrap = bootstrap
        self.env = {}  # added to the daemon's environment (e.g. libfaketime)
        self.proc = None
        self.logf = None
        self.proxies = {}
        if cluster.proxies:  # what the others reach this node through
            self.proxies["etcd"] = TcpProxy(cluster.etcd.members[0].client_port)
            self.proxies["api"] = TcpProxy(self.api_port)
            self.proxies["pg"] = TcpProxy(self.pg_port)
        self.write_config()

    def connect_port(self, what):
        p = self.proxies.get(what)
        return p.port if p is not None else {"api": self.api_port, "pg": self.pg_port}[what]

    def isolate(self):
        """Blackhole this node's paths to the DCS and to the other members."""
        for p in self.proxies.values():
            p.cut()

    def heal(self):
        for p in self.proxies.values():
            p.restore()

    def config(self):
        cfg = {
            "scope": self.cluster.scope,
            "namespace": "/db/",
            "name": self.name,
            "backend_dir": self.cluster.backends,
            "log": {"level": self.cluster.log_level},
            "restapi": {"listen": "127.0.0.1:%d" % self.api_port,
                        "connect_address": "127.0.0.1:%d" % self.connect_port("api")},
            "etcd3": self.etcd_config(),
            "postgresql": {
                "listen": "127.0.0.1:%d" % self.pg_port,
                "connect_address": "127.0.0.1:%d" % self.connect_port("pg"),
                "data_dir": self.datadir,
                "bin_dir": PG_BIN,
                "pgpass": os.path.join(self.dir, "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": SUPERUSER_PW},
                    "replication": {"username": "replicator", "password": REPL_PW},
                    "rewind": {"username": "rewinder", "password": REWIND_PW},
                },
                "parameters": {"unix_socket_directories": self.sockdir, "fsync": "off",
                               "shared_buffers": "16MB", "logging_collector": "off"},
            },
            "tags": dict(self.cluster.tags.get(self.name, {})),
            # Patroni's default mode (automatic) would open the real /dev/watchdog
            "watchdog": {"mode": "off"},
        }
        if self.bootstrap:
            cfg["bootstrap"] = {
                "dcs": json.loads(json.dumps(self.cluster.bootstrap_dcs)),
                "initdb": [{"encoding": "UTF8"}, "data-checksums"],
                "pg_hba": PG_HBA,
            }
        return cfg

    def etcd_config(self):
        p = self.proxies.get("etcd")
        if p is None:
            return {"hosts": self.cluster.etcd.hosts}
        return {"hosts": "127.0.0.1:%d" % p.port, "use_proxies": True}

    def write_config(self, cfg=None):
        with open(self.conf, "w") as f:
            yaml.safe_dump(cfg or self.config(), f, default_flow_style=False, sort_keys=False)
        os.chmod(self.conf, 0o644)

    # ---- the daemon ----
    def start(self):
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        if self.logf is not None:
            self.logf.close()
        self.logf = open(self.logfile, "ab")
        env = {"PATH": PG_BIN + ":/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
               "HOME": self.dir}
        env.update(self.env)
        self.proc = subprocess.Popen([PGKEEL, self.conf], stdout=self.logf, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=env, **kw)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM (SIGKILL after timeout); the daemon stops PostgreSQL itself."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.logf is not None:
            self.logf.close()
            self.logf = None
        return self.proc.returncode

    def kill(self):
        """SIGKILL the daemon only (PostgreSQL stays, as after a crash of pgkeel)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self, n=6000):
        try:
            with open(self.logfile, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def wait_log(self, needle, timeout=60):
        poll(lambda: needle in self.log(10 ** 7), timeout,
             "%r in the log of %s: %s" % (needle, self.name, self.log(2000)))

    # ---- PostgreSQL ----
    def postmaster_pid(self):
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        try:
            if os.path.realpath(os.readlink("/proc/%d/cwd" % pid)) == \
                    os.path.realpath(self.datadir):
                return pid
        except OSError:
            pass
        return None

    def psql(self, sql, timeout=20):
        """psql on the unix socket as postgres; None when it fails."""
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        try:
            p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-h",
                                self.sockdir, "-p", str(self.pg_port), "-U", "postgres", "-d",
                                "postgres", "-c", sql], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            return None
        return p.stdout.decode().strip() if p.returncode == 0 else None

    # ---- REST ----
    def rest(self, path, method="GET", body=None, timeout=5):
        """(status, parsed JSON or text); (None, error) when nothing answered."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.api_port, path),
                                     data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                code, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, raw = e.code, e.read()
        except OSError as e:
            return None, str(e)
        try:
            return code, json.loads(raw)
        except ValueError:
            return code, raw.decode(errors="replace")


class HaCluster:
    def __init__(self, size=3, scope="pgkeel-test", etcd=None, bootstrap_dcs=None, tags=None,
                 proxies=False, log_level="INFO"):
        """proxies: a TcpProxy on every node's paths to the others (Node.isolate())."""
        self.base = tempfile.mkdtemp(prefix="pgkeel-ha-")
        os.chmod(self.base, 0o755)
        self.scope = scope
        self.tags = tags or {}
        self.bootstrap_dcs = bootstrap_dcs or BOOTSTRAP_DCS
        self.own_etcd = etcd is None
        self.etcd = etcd or EtcdCluster(1)
        self.proxies = proxies
        self.log_level = log_level
        self.haproxy = None
        self.extra_nodes = []
        self.backends = os.path.join(self.base, "backends")
        os.mkdir(self.backends)
        os.chmod(self.backends, 0o755)
        shutil.copy(ETCD3_SO, os.path.join(self.backends, "dcs_etcd3.so"))
        os.chmod(os.path.join(self.backends, "dcs_etcd3.so"), 0o755)
        self.nodes = [Node(self, "pg-%d" % (i + 1), i == 0) for i in range(size)]
        self.libc = ctypes.CDLL(None, use_errno=True)

    def extra_node(self, name, dirname):
        """A node outside self.nodes (e.g. a second one with a taken name);
        stop() stops it too."""
        n = Node(self, name, False, dirname=dirname)
        self.extra_nodes.append(n)
        return n

    def start_haproxy(self):
        self.haproxy = HaProxy(self.base, self.nodes).start()
        return self.haproxy

    def __enter__(self):
        # postmasters outlive a killed daemon: reparent them here, reap them by PID
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def start(self, etcd_timeout=30):
        if self.own_etcd:
            self.etcd.start(etcd_timeout)
        for n in self.nodes:
            n.start()
        return self

    # ---- what the DCS says ----
    def key(self, rel):
        v = self.etcd.get("/db/%s/%s" % (self.scope, rel))
        return v.decode() if isinstance(v, bytes) else v

    def leader_name(self):
        return self.key("leader")

    def wait_leader(self, timeout=90, other_than=None):
        def check():
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None and n.proc.returncode:
                    raise AssertionError("%s exited %d: %s" % (n.name, n.proc.returncode,
                                                               n.log(3000)))
            name = self.leader_name()
            if name and name != other_than:
                node = self.node(name)
                code, _ = node.rest("/leader")
                return name if code == 200 else None
            return None
        return poll(check, timeout, "a leader (other than %s)" % other_than)

    def wait_replicas(self, names, timeout=120):
        def check():
            for name in names:
                code, body = self.node(name).rest("/replica")
                if code != 200:
                    return False
            return True
        poll(check, timeout, "replicas %s streaming" % (names,))

    # ---- patronictl (Debian's) against the same DCS ----
    def patronictl(self, *args, timeout=60, check=True):
        conf = os.path.join(self.base, "patronictl.yml")
        with open(conf, "w") as f:
            yaml.safe_dump({"scope": self.scope, "namespace": "/db/",
                            "etcd3": {"hosts": self.etcd.hosts}}, f)
        p = subprocess.run(["/usr/bin/patronictl", "-c", conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.base})
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError("patronictl %s failed (%d): %s" % (args, p.returncode, out))
        return out

    # ---- pgkeelctl against the same DCS ----
    def pgkeelctl(self, *args, conf=None, stdin=None, timeout=60, env=None):
        """Run pgkeelctl (-c conf, default: pg-1's configuration file); returns
        (exit status, stdout, stderr).  stdin: text fed to its prompts."""
        e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.base, "TZ": "UTC",
             "PGKEEL_BACKEND_DIR": self.backends}
        e.update(env or {})
        p = subprocess.run([PGKEELCTL, "-c", conf or self.nodes[0].conf] + list(args),
                           input=(stdin or "").encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=e)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    # ---- teardown ----
    def stop(self):
        problems = []
        if self.haproxy is not None:
            self.haproxy.stop()
        for n in self.nodes:  # a partition must not slow the shutdown down
            n.heal()
        nodes = self.nodes + self.extra_nodes
        orphans = [pid for pid in (n.postmaster_pid() for n in nodes) if pid]
        for n in nodes:
            try:
                n.stop()
            except Exception as e:  # keep stopping the others
                problems.append("%s: %r" % (n.name, e))
        for n in nodes:
            pid = n.postmaster_pid()
            if pid is not None:  # the daemon did not stop it: by PID, ours only
                orphans.append(pid)
                for p in [pid] + children_of(pid):
                    try:
                        os.kill(p, signal.SIGCONT)
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for n in self.nodes:
            for p in n.proxies.values():
                p.close()
        if self.own_etcd:
            self.etcd.stop()
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        for pid in orphans:  # reparented to us when their daemon died: reap by PID
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                except ChildProcessError:
                    break  # not ours (its daemon reaped it)
                time.sleep(0.05)
        keep = os.environ.get("PGKEEL_HA_LOGS")  # a directory to keep the logs in
        if keep:
            dest = os.path.join(keep, os.path.basename(self.base))
            os.makedirs(dest, exist_ok=True)
            for n in nodes:
                if os.path.exists(n.logfile):
                    shutil.copy(n.logfile, os.path.join(dest, os.path.basename(n.dir) + ".log"))
        shutil.rmtree(self.base, ignore_errors=True)
        assert not problems, problems


# ---- what the tests ask of a running cluster ----

def in_recovery(node):
    """'t' on a replica, 'f' on a primary, None when PostgreSQL does not answer."""
    return node.psql("SELECT pg_is_in_recovery()", timeout=5)


def streaming_to(node):
    """Names of the standbys streaming from node, from its /patroni."""
    code, body = node.rest("/patroni")
    if code != 200 or not isinstance(body, dict):
        return set()
    return {r.get("application_name") for r in body.get("replication") or []
            if r.get("state") == "streaming"}


def wait_healthy(c, timeout=120):
    """Start any daemon that is not running, then wait for one leader (200 on
    /leader) and every other node a replica (200 on /replica) streaming from
    it; the leader's name."""
    for n in c.nodes:
        if not n.alive():
            n.start()
    leader = c.wait_leader(timeout=timeout)
    others = [n.name for n in c.nodes if n.name != leader]
    c.wait_replicas(others, timeout=timeout)
    poll(lambda: streaming_to(c.node(leader)) >= set(others), timeout,
         "%s streaming from %s" % (others, leader))
    return leader


def fail_with_logs(c, msg, tail=5000):
    """Raise msg with the end of every node's log."""
    raise AssertionError(msg + "".join("\n--- log of %s:\n%s" % (n.name, n.log(tail))
                                       for n in c.nodes))


def healthy(c, timeout=120):
    """(leader node, replica nodes) once wait_healthy() passes (else the logs)."""
    try:
        name = wait_healthy(c, timeout)
    except AssertionError as e:
        fail_with_logs(c, "the cluster is not healthy: %s" % e)
    return c.node(name), [n for n in c.nodes if n.name != name]


def cmdline(pid):
    """/proc/<pid>/cmdline as one string ("" when the process is gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def requirements(patronictl=False, haproxy=False, pgkeelctl=False):
    """The skip marks of a module that runs a cluster (pytestmark)."""
    import pytest
    from etcd_cluster import ETCD
    from pg_instance import have_postgres
    marks = [
        pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
        pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
        pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    ]
    if patronictl:
        marks.append(pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                                        reason="Debian's patroni package not installed"))
    if haproxy:
        marks.append(pytest.mark.skipif(not have_haproxy(), reason="haproxy not installed"))
    if pgkeelctl:
        marks.append(pytest.mark.skipif(not os.access(PGKEELCTL, os.X_OK),
                                        reason="pgkeelctl not built"))
    return marks


def leaders_seen(c, until, timeout=120, what="the condition"):
    """Poll the leader key until until() is true; the set of names it held
    (None for no key) on the way."""
    seen = set()

    def check():
        seen.add(c.leader_name())
        return until()
    poll(check, timeout, what)
    seen.add(c.leader_name())
    return seen


# ---- a test-owned TCP proxy: the partition switch ----

class TcpProxy:
    """Forwards a free loopback port to 127.0.0.1:target.  cut() blackholes it
    as a partition does: open connections stay open but no byte passes either
    way, new ones are accepted and held.  restore() drops everything that was
    held (as TCP gives up after a long partition) and forwards again."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.passing = threading.Event()
        self.passing.set()
        self.closed = False
        self.lock = threading.Lock()
        self.socks = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        self.passing.clear()

    def restore(self):
        if self.passing.is_set():
            return
        self._drop_all()
        self.passing.set()

    def close(self):
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.listener.close()
        self._drop_all()
        self.passing.set()

    def _drop_all(self):
        with self.lock:
            socks, self.socks = self.socks, set()
        for s in socks:
            self._close(s)

    @staticmethod
    def _close(s):
        try:
            s.shutdown(socket.SHUT_RDWR)  # wakes a recv() in a pump
        except OSError:
            pass
        s.close()

    def _track(self, s):
        with self.lock:
            if self.closed:
                self._close(s)
                return False
            self.socks.add(s)
            return True

    def _drop(self, s):
        with self.lock:
            self.socks.discard(s)
        self._close(s)

    def _wait_passing(self):
        while not self.closed:  # ends with close()
            if self.passing.wait(0.2):
                return not self.closed
        return False

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._track(client):
                threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client):
        if not self._wait_passing():
            self._drop(client)
            return
        try:
            server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            server.settimeout(None)
        except OSError:
            self._drop(client)
            return
        if not self._track(server):
            self._drop(client)
            return
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        self._pump(server, client)

    def _pump(self, src, dst):
        try:
            while True:  # ends with either side's EOF or error, or close()
                data = src.recv(65536)
                if not data or not self._wait_passing():
                    break
                dst.sendall(data)
        except OSError:
            pass
        self._drop(src)
        self._drop(dst)


# ---- HAProxy (Debian's 2.6) as the README's demo configures it ----

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def have_haproxy():
    return os.access(HAPROXY, os.X_OK)


class HaProxy:
    """A write port checked with GET /leader and a read port checked with
    GET /replica on every node's REST API; run in the foreground, stopped by PID."""

    def __init__(self, base, nodes):
        self.write_port = free_port()
        self.read_port = free_port()
        self.cfg = os.path.join(base, "haproxy.cfg")
        self.logfile = os.path.join(base, "haproxy.log")
        self.proc = None
        lines = ["global", "    maxconn 200", "defaults", "    mode tcp",
                 "    timeout connect 2s", "    timeout client 30m", "    timeout server 30m",
                 "    timeout check 2s"]
        for section, port, check in (("write", self.write_port, "/leader"),
                                     ("read", self.read_port, "/replica")):
            lines += ["listen %s" % section, "    bind 127.0.0.1:%d" % port,
                      "    option httpchk", "    http-check send meth GET uri %s" % check,
                      "    http-check expect status 200",
                      "    default-server inter 1s fall 2 rise 2 on-marked-down "
                      "shutdown-sessions"]
            lines += ["    server %s 127.0.0.1:%d check port %d" % (n.name, n.pg_port, n.api_port)
                      for n in nodes]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=20):
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=log,
                                         stderr=log, stdin=subprocess.DEVNULL)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited %d: %s" % (self.proc.returncode,
                                                               self.log()))
            for port in (self.write_port, self.read_port):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    return False
            return True
        poll(listening, timeout, "haproxy listening")
        return self

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ---- SQL over TCP as a client sees it (psycopg2, Debian's python3-psycopg2) ----

def sql_tcp(port, sql, timeout=5):
    """One statement through 127.0.0.1:port as the superuser, autocommit; the
    first column of every row, or None when the connection or the statement fails."""
    import psycopg2
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                password=SUPERUSER_PW, dbname="postgres",
                                connect_timeout=max(1, int(timeout)))
    except psycopg2.Error:
        return None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = %d" % int(timeout * 1000))
            cur.execute(sql)
            return [r[0] for r in cur.fetchall()] if cur.description else []
    except psycopg2.Error:
        return None
    finally:
        conn.close()


class Writer(threading.Thread):
    """Commits one row per statement (INSERT INTO <table>(id, node)) on one
    node's own PostgreSQL port (not through HAProxy), with ids unique across
    all writers sharing `ids`, and records every acknowledged commit as
    (id, monotonic time of the acknowledgment) in self.acked.  A commit that
    does not answer within commit_timeout is abandoned (its connection closed),
    never counted; so is one PostgreSQL answered with a warning that the wait
    for synchronous replication was cancelled."""

    ids_lock = threading.Lock()

    def __init__(self, node, table, ids, commit_timeout=3.0, pace=0.02):
        super().__init__(daemon=True, name="writer-" + node.name)
        self.node = node
        self.table = table
        self.ids = ids
        self.commit_timeout = commit_timeout
        self.pace = pace
        self.acked = []
        self.errors = 0
        self.halt = threading.Event()

    def stop(self):
        self.halt.set()
        self.join(timeout=2 * self.commit_timeout + 10)
        assert not self.is_alive(), "writer for %s did not stop" % self.node.name

    @staticmethod
    def _wait(conn, deadline):
        import psycopg2.extensions as ext
        while True:  # bounded by the deadline
            state = conn.poll()
            if state == ext.POLL_OK:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            fd = conn.fileno()
            if state == ext.POLL_READ:
                select.select([fd], [], [], left)
            else:
                select.select([], [fd], [], left)

    def _session(self, conn):
        import psycopg2
        cur = conn.cursor()
        while not self.halt.is_set():  # ends with stop() or a broken connection
            with self.ids_lock:
                rid = next(self.ids)
            del conn.notices[:]
            try:
                cur.execute("INSERT INTO %s (id, node) VALUES (%d, '%s')" % (
                    self.table, rid, self.node.name))
                if not self._wait(conn, time.monotonic() + self.commit_timeout):
                    return  # abandoned: not acknowledged
            except psycopg2.Error:
                if conn.closed:
                    raise
                self.errors += 1  # e.g. read-only: a replica's writer keeps trying
                self.halt.wait(0.2)
                continue
            t = time.monotonic()
            if any("synchronous replication" in m for m in conn.notices):
                return
            self.acked.append((rid, t))
            self.halt.wait(self.pace)

    def run(self):
        import psycopg2
        while not self.halt.is_set():  # ends with stop()
            conn = None
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.node.pg_port,
                                        user="postgres", password=SUPERUSER_PW,
                                        dbname="postgres", connect_timeout=2, async_=1)
                if self._wait(conn, time.monotonic() + 2):
                    self._session(conn)
            except psycopg2.Error:
                self.errors += 1
            finally:
                if conn is not None:
                    conn.close()
            self.halt.wait(0.1)


def new_ids():
    """An id source for Writers (unique across all of them)."""
    return itertools.count(1)
