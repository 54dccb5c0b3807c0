"""HAProxy 2.6 and PgBouncer 1.18 (Debian's) in front of a 3-node pgkeel
cluster (tests/integration/ha_cluster.py), routed by the REST API as the
seed's topology has it:

  HAProxy  write port: option httpchk GET /leader, http-check expect status
           200, check port <api> inter 1s rise 2 fall 2 on-marked-down
           shutdown-sessions; read port: the same with GET /replica
  -> PgBouncer (session pooling, one per node, in front of its PostgreSQL)
  -> PostgreSQL 15

Writes through the write port reach the leader and reads through the read
port a replica; a session open through the write port to the old primary is
cut when a switchover (Debian's patronictl) moves the leader, and the next
connection reaches the new one.  A client committing through the whole
chain across a second switchover is counted: it gets errors only in the
window of the switchover (the first failed commit to the first one on the
new leader, a few seconds), every acknowledged row is on the new leader,
and commits resume.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import shutil
import subprocess
import threading
import time

import pytest

from etcd_cluster import ETCD
from ha_cluster import (HAPROXY, SUPERUSER_PW, HaCluster, have_haproxy, have_pgkeel,
                        wait_healthy)
from pg_instance import free_port, have_postgres, poll, server_user

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not have_haproxy(), reason="haproxy not installed"),
    pytest.mark.skipif(not os.access(PGBOUNCER, os.X_OK), reason="pgbouncer not installed"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
]


def psycopg2_or_skip():
    try:
        import psycopg2
    except ImportError:
        pytest.skip("python3-psycopg2 not installed")
    return psycopg2


class Process:
    """A foreground child stopped by PID."""

    def __init__(self, argv, log, **kw):
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(argv, stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                                         **kw)
        self.log = log

    def tail(self):
        with open(self.log, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def listening(port, proc):
    import socket
    if proc.proc.poll() is not None:
        raise AssertionError("exited %d: %s" % (proc.proc.returncode, proc.tail()))
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start_pgbouncer(node):
    """PgBouncer in front of node's PostgreSQL, run as the server's user."""
    user = server_user()
    d = os.path.join(node.dir, "pgbouncer")
    os.makedirs(d)
    node.bouncer_port = free_port()
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write('"postgres" "%s"\n' % SUPERUSER_PW)
    with open(os.path.join(d, "pgbouncer.ini"), "w") as f:
        f.write("\n".join([
            "[databases]",
            "postgres = host=127.0.0.1 port=%d dbname=postgres" % node.pg_port,
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            "listen_port = %d" % node.bouncer_port,
            "unix_socket_dir =",
            "auth_type = scram-sha-256",
            "auth_file = %s" % os.path.join(d, "users.txt"),
            "pool_mode = session",
            "server_connect_timeout = 2",
            "server_login_retry = 1",
            "pidfile = %s" % os.path.join(d, "pgbouncer.pid"),
            ""]))
    for name in os.listdir(d) + [""]:
        os.chown(os.path.join(d, name), user.pw_uid, user.pw_gid)
    kw = {}
    if os.geteuid() == 0:
        kw = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    p = Process([PGBOUNCER, os.path.join(d, "pgbouncer.ini")], os.path.join(d, "log"), **kw)
    poll(lambda: listening(node.bouncer_port, p), 20, "pgbouncer of " + node.name)
    return p


def start_haproxy(base, nodes, backend_port):
    write, read = free_port(), free_port()
    lines = ["global", "    maxconn 200", "defaults", "    mode tcp", "    timeout connect 2s",
             "    timeout client 30m", "    timeout server 30m", "    timeout check 2s"]
    for section, port, check in (("write", write, "/leader"), ("read", read, "/replica")):
        lines += ["listen %s" % section, "    bind 127.0.0.1:%d" % port,
                  "    option httpchk GET %s" % check, "    http-check expect status 200",
                  "    default-server inter 1s rise 2 fall 2 on-marked-down shutdown-sessions"]
        lines += ["    server %s 127.0.0.1:%d check port %d" % (n.name, backend_port(n),
                                                              n.api_port) for n in nodes]
    cfg = os.path.join(base, "haproxy-%d.cfg" % write)
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = Process([HAPROXY, "-db", "-f", cfg], cfg + ".log")
    poll(lambda: listening(write, p) and listening(read, p), 20, "haproxy listening")
    return p, write, read


def connect(port, timeout=2):
    psycopg2 = psycopg2_or_skip()
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=SUPERUSER_PW,
                            dbname="postgres", connect_timeout=timeout)
    conn.autocommit = True
    return conn


def one(port, sql):
    """The first column of the first row, or None when anything fails."""
    psycopg2 = psycopg2_or_skip()
    try:
        conn = connect(port)
    except psycopg2.Error:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 3000")
            cur.execute(sql)
            return cur.fetchone()[0]
    except psycopg2.Error:
        return None
    finally:
        conn.close()


SERVER_PORT = "SELECT setting::int FROM pg_settings WHERE name = 'port'"


def routed(port, sql, want, timeout, what):
    """Wait until six connections in a row answer sql with want (HAProxy starts
    with every server up, round robin, until the checks mark them down)."""
    streak = [0]

    def check():
        streak[0] = streak[0] + 1 if one(port, sql) == want else 0
        return streak[0] >= 6
    poll(check, timeout, what)


@pytest.fixture
def cluster():
    psycopg2_or_skip()
    procs = []
    with HaCluster(3) as c:
        try:
            c.start()
            c.procs = procs
            yield c
        finally:
            for p in procs:
                p.stop()


def switchover(c, to):
    leader = c.leader_name()
    out = c.patronictl("switchover", "--leader", leader, "--candidate", to, "--force",
                       timeout=120)
    assert 'Successfully switched over to "%s"' % to in out, out
    return leader


def test_haproxy_routes_and_cuts(cluster):
    c = cluster
    leader = c.node(wait_healthy(c))
    hap, write, read = start_haproxy(c.base, c.nodes, lambda n: n.pg_port)
    c.procs.append(hap)
    routed(write, SERVER_PORT, leader.pg_port, 30, "the write port to the leader")
    routed(read, "SELECT pg_is_in_recovery()", True, 30, "the read port to a replica")
    assert one(write, "CREATE TABLE t (v int); INSERT INTO t VALUES (1); SELECT 1") == 1

    # a session open to the old primary is cut when the leader moves
    old = connect(write)
    with old.cursor() as cur:
        cur.execute(SERVER_PORT)
        assert cur.fetchone()[0] == leader.pg_port
    new = next(n for n in c.nodes if n is not leader)
    switchover(c, new.name)
    psycopg2 = psycopg2_or_skip()

    def cut():
        try:
            with old.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                cur.fetchone()
            return False
        except psycopg2.Error:
            return True
    poll(cut, 30, "the old session cut")
    old.close()
    routed(write, SERVER_PORT, new.pg_port, 30, "the write port to the new leader")
    assert one(write, "INSERT INTO t VALUES (2); SELECT count(*) FROM t") == 2


class Client(threading.Thread):
    """Commits one row at a time through port, reconnecting after errors;
    records acknowledged ids and the monotonic times of failed attempts."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.acked = []
        self.errors = []

    def run(self):
        psycopg2 = psycopg2_or_skip()
        n = 0
        while not self.halt.is_set():  # ends with stop()
            try:
                conn = connect(self.port)
            except psycopg2.Error:
                self.errors.append(time.monotonic())
                self.halt.wait(0.1)
                continue
            try:
                with conn.cursor() as cur:
                    cur.execute("SET statement_timeout = 3000")
                    while not self.halt.is_set():
                        n += 1
                        cur.execute("INSERT INTO w VALUES (%d)" % n)
                        self.acked.append((n, time.monotonic()))
                        self.halt.wait(0.02)
            except psycopg2.Error:
                self.errors.append(time.monotonic())
            finally:
                conn.close()

    def stop(self):
        self.halt.set()
        self.join(15)
        assert not self.is_alive()


def test_haproxy_pgbouncer_switchover(cluster):
    c = cluster
    leader = c.node(wait_healthy(c))
    for n in c.nodes:
        c.procs.append(start_pgbouncer(n))
    hap, write, read = start_haproxy(c.base, c.nodes, lambda n: n.bouncer_port)
    c.procs.append(hap)
    routed(write, SERVER_PORT, leader.pg_port, 30, "the chain to the leader")
    routed(read, "SELECT pg_is_in_recovery()", True, 30, "the chain to a replica")
    assert one(write, "CREATE TABLE w (id int PRIMARY KEY); SELECT 1") == 1

    client = Client(write)
    client.start()
    try:
        poll(lambda: len(client.acked) > 20, 30, "commits through the chain")
        new = next(n for n in c.nodes if n is not leader)
        t0 = time.monotonic()
        switchover(c, new.name)
        poll(lambda: client.acked and client.acked[-1][1] > time.monotonic() - 0.5 and
             one(write, SERVER_PORT) == new.pg_port, 60, "commits on the new leader")
        t1 = time.monotonic()
        n_before = len(client.acked)
        poll(lambda: len(client.acked) > n_before + 20, 30, "commits going on")
    finally:
        client.stop()
    errors = [t for t in client.errors if t >= t0 - 1]
    print("client errors across the switchover: %d in %.1f s" % (len(errors), t1 - t0))
    assert len(client.errors) == len(errors), "errors before the switchover"
    # the errors belong to the switchover: none after the chain settled
    assert all(t <= t1 for t in errors), (errors, t1)
    ids = [i for i, _ in client.acked]
    assert one(write, "SELECT count(*) FROM w WHERE id <= %d" % max(ids)) >= len(set(ids))
    missing = one(write, "SELECT count(*) FROM unnest(ARRAY[%s]) AS a(id) WHERE id NOT IN "
                         "(SELECT id FROM w)" % ",".join(map(str, ids)))
    assert missing == 0, "acknowledged commits lost: %d" % missing
