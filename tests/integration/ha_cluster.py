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
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
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
    def __init__(self, cluster, name, bootstrap):
        self.cluster = cluster
        self.name = name
        self.user = server_user()
        self.dir = os.path.join(cluster.base, name)
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
        self.proc = None
        self.logf = None
        self.write_config()

    def config(self):
        cfg = {
            "scope": self.cluster.scope,
            "namespace": "/db/",
            "name": self.name,
            "backend_dir": self.cluster.backends,
            "log": {"level": "INFO"},
            "restapi": {"listen": "127.0.0.1:%d" % self.api_port,
                        "connect_address": "127.0.0.1:%d" % self.api_port},
            "etcd3": {"hosts": self.cluster.etcd.hosts},
            "postgresql": {
                "listen": "127.0.0.1:%d" % self.pg_port,
                "connect_address": "127.0.0.1:%d" % self.pg_port,
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
        }
        if self.bootstrap:
            cfg["bootstrap"] = {
                "dcs": json.loads(json.dumps(self.cluster.bootstrap_dcs)),
                "initdb": [{"encoding": "UTF8"}, "data-checksums"],
                "pg_hba": PG_HBA,
            }
        return cfg

    def write_config(self, cfg=None):
        with open(self.conf, "w") as f:
            yaml.safe_dump(cfg or self.config(), f, default_flow_style=False, sort_keys=False)
        os.chmod(self.conf, 0o644)

    # ---- the daemon ----
    def start(self):
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        self.logf = open(self.logfile, "ab")
        env = {"PATH": PG_BIN + ":/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
               "HOME": self.dir}
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
    def __init__(self, size=3, scope="pgkeel-test", etcd=None, bootstrap_dcs=None, tags=None):
        self.base = tempfile.mkdtemp(prefix="pgkeel-ha-")
        os.chmod(self.base, 0o755)
        self.scope = scope
        self.tags = tags or {}
        self.bootstrap_dcs = bootstrap_dcs or BOOTSTRAP_DCS
        self.own_etcd = etcd is None
        self.etcd = etcd or EtcdCluster(1)
        self.backends = os.path.join(self.base, "backends")
        os.mkdir(self.backends)
        os.chmod(self.backends, 0o755)
        shutil.copy(ETCD3_SO, os.path.join(self.backends, "dcs_etcd3.so"))
        os.chmod(os.path.join(self.backends, "dcs_etcd3.so"), 0o755)
        self.nodes = [Node(self, "pg-%d" % (i + 1), i == 0) for i in range(size)]
        self.libc = ctypes.CDLL(None, use_errno=True)

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

    # ---- teardown ----
    def stop(self):
        problems = []
        orphans = [pid for pid in (n.postmaster_pid() for n in self.nodes) if pid]
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:  # keep stopping the others
                problems.append("%s: %r" % (n.name, e))
        for n in self.nodes:
            pid = n.postmaster_pid()
            if pid is not None:  # the daemon did not stop it: by PID, ours only
                orphans.append(pid)
                for p in [pid] + children_of(pid):
                    try:
                        os.kill(p, signal.SIGCONT)
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
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
        shutil.rmtree(self.base, ignore_errors=True)
        assert not problems, problems
