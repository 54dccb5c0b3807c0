"""core/pg_query.c against real PostgreSQL 15, through tests/tools/pgq_probe:
the status a primary and a streaming replica report, pending_restart, the
pg_settings reader, and deadlines that hold against a SIGSTOPped server, a
silent listener and a closed port.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from pg_instance import PgInstance, free_port, have_postgres, poll

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "pgq_probe")

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="pgq_probe not built (make check)"),
]

SLACK_MS = 500  # what "returns by the deadline" may overrun: poll wake-up, process scheduling
TS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$")


class Probe:
    """One pgq_probe process = one struct pgkeel_pg for its whole life."""

    def __init__(self, *args):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PROBE] + [str(a) for a in args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        self.buf = b""

    def cmd(self, line, timeout=30.0):
        """Send one command; its JSON answer (waiting at most timeout seconds)."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("pgq_probe gave no answer to %r within %.0f s" %
                                     (line, timeout))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("pgq_probe exited (%s) on %r: %s" %
                                         (self.proc.poll(), line, self.errors()))
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw)

    def ok(self, line, timeout=30.0):
        out = self.cmd(line, timeout)
        assert out["rc"] == "ok", out
        return out

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        assert self.proc.returncode == 0, "pgq_probe exited %d: %s" % (
            self.proc.returncode, self.errors())


def probe_for(pg, *extra):
    return Probe("--host", pg.sockdir, "--port", pg.port, "--user", "postgres", *extra)


@pytest.fixture(scope="module")
def primary():
    pg = PgInstance("primary")
    try:
        pg.initdb()
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="module")
def replica(primary):
    rep = PgInstance("replica1")
    try:
        rep.base_backup_from(primary)
        rep.start()
        poll(lambda: primary.psql("SELECT count(*) FROM pg_stat_replication "
                                  "WHERE state = 'streaming' AND application_name = 'replica1'")
             == "1", 30, "replica1 streaming")
        yield rep
    finally:
        rep.cleanup()


@pytest.fixture
def probes():
    made = []

    def make(pg, *extra):
        p = probe_for(pg, *extra)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def test_primary_status(primary, probes):
    p = probes(primary)
    out = p.ok("status 2000")
    st = out["status"]
    assert out["connected"] is True
    assert st["in_recovery"] is False
    assert st["timeline"] == 1
    assert st["checkpoint_tli"] == 1
    assert st["wal_lsn"] > 0
    assert st["server_version"] >= 150000 and st["server_version"] < 160000
    assert st["server_version"] == out["server_version_num"]
    assert st["replay_paused"] is False
    assert st["replay_timestamp"] is None
    assert st["receiver_status"] is None and st["received_tli"] == 0
    assert st["synchronous_commit"] == "on" and st["synchronous_standby_names"] == ""
    assert TS_RE.match(st["postmaster_start_time"]), st["postmaster_start_time"]
    # the same numbers as Patroni's expressions run through psql
    wal = int(primary.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"))
    assert 0 < st["wal_lsn"] <= wal
    assert str(st["server_version"]) == primary.psql("SHOW server_version_num")
    usec = int(primary.psql("SELECT (extract(epoch FROM pg_postmaster_start_time())"
                            " * 1000000)::bigint"))
    assert st["postmaster_start_time"] == python_str_datetime(usec)


def python_str_datetime(usec):
    """str(datetime) of a timestamptz as psycopg2 hands it to Patroni (server TZ is UTC)."""
    import datetime
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return str(epoch + datetime.timedelta(microseconds=usec))


def test_postmaster_start_time_as_psycopg2(primary, probes):
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(host=primary.sockdir, port=primary.port, user="postgres",
                            dbname="postgres")
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_catalog.pg_postmaster_start_time()")
        expected = str(cur.fetchone()[0])
    finally:
        conn.close()
    assert probes(primary).ok("status 2000")["status"]["postmaster_start_time"] == expected


def test_connection_as_patroni_makes_it(primary, probes):
    p = probes(primary)
    row = p.ok("exec 2000 SELECT application_name, current_setting('statement_timeout'), "
               "current_database(), current_user FROM pg_stat_activity "
               "WHERE pid = pg_backend_pid()")["rows"][0]
    assert row == ["Patroni", "2s", "postgres", "postgres"]
    # an explicit application_name wins over the fallback; statement_timeout is settable
    q = probes(primary, "--appname", "pgkeel-test", "--statement-timeout", "750")
    row = q.ok("exec 2000 SELECT application_name, current_setting('statement_timeout') "
               "FROM pg_stat_activity WHERE pid = pg_backend_pid()")["rows"][0]
    assert row == ["pgkeel-test", "750ms"]


def test_tcp_connection_keepalives(primary, probes):
    """Over TCP the server sees a TCP client and our socket has SO_KEEPALIVE
    (keepalives=1); extra keywords cannot override the named parameters."""
    p = probes(primary, "--extra", "host=127.0.0.1", "--extra", "dbname=template1")
    out = p.ok("exec 2000 SELECT client_addr, current_database() FROM pg_stat_activity "
               "WHERE pid = pg_backend_pid()")
    assert out["rows"] == [[None, "postgres"]]  # still the unix socket and our dbname
    q = Probe("--host", "127.0.0.1", "--port", primary.port, "--user", "postgres")
    try:
        out = q.ok("exec 2000 SELECT client_addr::text FROM pg_stat_activity "
                   "WHERE pid = pg_backend_pid()")
        assert out["rows"] == [["127.0.0.1/32"]]
        assert probe_socket_keepalive(q.proc.pid, primary.port)
    finally:
        q.close()


def probe_socket_keepalive(pid, port):
    """True when the process has a TCP connection to port whose keepalive timer
    fires within our keepalives_idle (10 s), not the kernel's 2 hours: the
    tr:tm->when column of /proc/net/tcp is 02:<ticks of USER_HZ, hex>."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            remote_port = int(cols[2].split(":")[1], 16)
            timer, when = cols[5].split(":")
            if cols[9] in inodes and remote_port == port:
                return timer == "02" and int(when, 16) <= 10 * os.sysconf("SC_CLK_TCK")
    return False


def test_sql_error_keeps_connection(primary, probes):
    p = probes(primary)
    pid = p.ok("connect 2000")["backend_pid"]
    out = p.cmd("exec 2000 SELECT 1/0")
    assert out["rc"] == "sql" and out["sqlstate"] == "22012"
    assert "division by zero" in out["msg"]
    assert out["connected"] is True and out["backend_pid"] == pid
    assert p.ok("exec 2000 SELECT 2")["rows"] == [["2"]]


def test_settings_reader(primary, probes):
    p = probes(primary)
    out = p.ok("settings 2000 shared_buffers MAX_CONNECTIONS Wal_Level no_such_setting")
    rows = {s["name"]: s for s in out["settings"]}
    assert sorted(rows) == ["max_connections", "shared_buffers", "wal_level"]
    sb = rows["shared_buffers"]
    assert (sb["setting"], sb["unit"], sb["vartype"], sb["context"]) == \
        ("2048", "8kB", "integer", "postmaster")
    assert sb["sourcefile"].endswith("postgresql.conf") and sb["pending_restart"] is False
    assert rows["max_connections"]["unit"] is None
    assert rows["wal_level"]["vartype"] == "enum"
    out = p.ok("settings 2000 work_mem")
    assert [(s["name"], s["unit"], s["context"]) for s in out["settings"]] == \
        [("work_mem", "kB", "user")]
    # quoting: names are data, never SQL
    assert p.ok("settings 2000 a\",\"b x'y }{ \\")["settings"] == []


def test_pending_restart(probes):
    with PgInstance("pending") as pg:
        pg.initdb()
        pg.start()
        p = probes(pg)
        assert p.ok("status 2000")["status"]["pending_restart"] is False
        pg.psql("ALTER SYSTEM SET shared_buffers = '32MB'")
        pg.psql("ALTER SYSTEM SET work_mem = '8MB'")  # reloadable: never pending
        pg.psql("SELECT pg_reload_conf()")
        st = poll(lambda: (lambda s: s if s["pending_restart"] else None)(
            p.ok("status 2000")["status"]), 10, "pending_restart after reload")
        assert st["pending_restart_names"] == ["shared_buffers"]
        rows = p.ok("pending 2000")["settings"]
        assert [(r["name"], r["pending_restart"], r["setting"]) for r in rows] == \
            [("shared_buffers", True, "2048")]  # the running value; the new one needs a restart
        # Patroni ignores its recovery parameters, case-insensitively
        assert p.ok("pending 2000 primary_conninfo SHARED_BUFFERS")["settings"] == []
        pg.restart()
        st = p.ok("status 5000")["status"]  # the old connection is stale: reconnected once
        assert st["pending_restart"] is False and st["pending_restart_names"] == []
        assert p.ok("settings 2000 shared_buffers")["settings"][0]["setting"] == "4096"
        p.close()
        assert p.errors().count("establishing a new patroni connection") == 2


def test_replica_status(primary, replica, probes):
    pp = probes(primary)
    rp = probes(replica)
    primary.psql("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
    target = pp.ok("status 2000")["status"]["wal_lsn"]

    def caught_up():
        st = rp.ok("status 2000")["status"]
        return st if st["replay_lsn"] >= target else None
    st = poll(caught_up, 30, "replica to replay the primary's WAL")
    assert st["in_recovery"] is True
    assert st["wal_lsn"] == 0
    assert st["receive_lsn"] > 0 and st["replay_lsn"] > 0
    assert st["receive_lsn"] >= st["replay_lsn"]
    assert st["replay_paused"] is False
    assert st["receiver_status"] == "streaming"
    assert st["received_tli"] == 1 and st["timeline"] == 1
    assert "host=127.0.0.1" in st["receiver_conninfo"]
    assert "port=%d" % primary.port in st["receiver_conninfo"]
    assert TS_RE.match(st["replay_timestamp"]), st["replay_timestamp"]
    assert st["replication"] == []

    prim = pp.ok("status 2000")["status"]
    rows = [r for r in prim["replication"] if r["application_name"] == "replica1"]
    assert len(rows) == 1, prim["replication"]
    r = rows[0]
    assert r["state"] == "streaming" and r["sync_state"] == "async"
    assert r["sync_priority"] == 0 and r["usename"] == "postgres"
    assert r["client_addr"] == "127.0.0.1"
    assert r["pid"] > 0
    for k in ("sent_lsn", "write_lsn", "flush_lsn", "replay_lsn"):
        assert 0 < r[k] <= prim["wal_lsn"], (k, r, prim["wal_lsn"])

    # replay pause shows up; resume clears it
    rp.ok("exec 2000 SELECT pg_wal_replay_pause()")
    poll(lambda: rp.ok("status 2000")["status"]["replay_paused"], 10, "replay paused")
    rp.ok("exec 2000 SELECT pg_wal_replay_resume()")
    poll(lambda: not rp.ok("status 2000")["status"]["replay_paused"], 10, "replay resumed")


def test_identify_system(primary, replica, probes):
    sysid = primary.psql("SELECT system_identifier FROM pg_control_system()")
    for pg in (primary, replica):
        out = probes(pg, "--replication").ok("identify 2000")
        assert out["systemid"] == sysid
        assert out["timeline"] == 1
        assert out["xlogpos"] > 0
    # a replication connection runs no monitoring SQL; a normal one no IDENTIFY_SYSTEM
    assert probes(primary, "--replication").cmd("status 2000")["rc"] == "badresult"
    assert probes(primary).cmd("identify 2000")["rc"] == "badresult"


def test_sigstopped_server(probes):
    with PgInstance("frozen") as pg:
        pg.initdb()
        pg.start()
        p = probes(pg)
        old_pid = p.ok("status 2000")["backend_pid"]
        pg.freeze()
        try:
            t0 = time.monotonic()
            out = p.cmd("status 2000", timeout=10)
            took = (time.monotonic() - t0) * 1000
            assert out["rc"] == "timeout", out
            assert "timed out" in out["msg"]
            assert out["connected"] is False
            assert 1500 <= out["elapsed_ms"] <= 2000 + SLACK_MS, out
            assert took <= 2000 + SLACK_MS
            # connecting to a stopped postmaster: its socket accepts, nobody answers
            t0 = time.monotonic()
            out = p.cmd("connect 1500", timeout=10)
            assert out["rc"] == "timeout", out
            assert (time.monotonic() - t0) * 1000 <= 1500 + SLACK_MS
            assert out["connected"] is False
        finally:
            pg.thaw()
        out = p.ok("status 5000")
        assert out["connected"] is True and out["backend_pid"] != old_pid
        assert out["status"]["in_recovery"] is False
        # the abandoned backend goes away: the connection really was dropped
        poll(lambda: pg.psql("SELECT count(*) FROM pg_stat_activity WHERE pid = %d" % old_pid)
             == "0", 10, "the timed-out backend to exit")
        p.close()
        assert "query timed out after" in p.errors()
        assert "closed patroni connection" in p.errors()


def test_busy_query_is_cancelled(primary, probes):
    """A statement that outlives its deadline is cancelled on the server, so
    it does not keep running after the call returned."""
    p = probes(primary, "--statement-timeout", "-1")  # only our cancel can stop it
    p.ok("connect 2000")
    t0 = time.monotonic()
    out = p.cmd("exec 1000 SELECT pg_sleep(30), 'marker-cancel'")
    assert out["rc"] == "timeout" and "cancel requested" in out["msg"], out
    assert out["connected"] is False
    assert (time.monotonic() - t0) * 1000 <= 1000 + SLACK_MS
    poll(lambda: primary.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                              "query LIKE '%marker-cancel%' AND pid <> pg_backend_pid()") == "0",
         5, "the cancelled statement to stop")
    # and the next call simply reconnects
    assert p.ok("exec 2000 SELECT 1")["rows"] == [["1"]]


def test_closed_port_fails_fast_and_clearly(probes):
    port = free_port()  # nothing listens there
    p = Probe("--host", "127.0.0.1", "--port", port, "--user", "postgres")
    try:
        t0 = time.monotonic()
        out = p.cmd("status 3000", timeout=10)
        assert out["rc"] == "connect", out
        assert "Connection refused" in out["msg"] and str(port) in out["msg"], out
        assert (time.monotonic() - t0) * 1000 <= 3000 + SLACK_MS
        assert out["connected"] is False
    finally:
        p.close()
    # a socket directory with no server in it
    with tempfile.TemporaryDirectory() as d:
        q = Probe("--host", d, "--port", port, "--user", "postgres")
        try:
            out = q.cmd("connect 3000", timeout=10)
            assert out["rc"] == "connect" and "No such file or directory" in out["msg"], out
        finally:
            q.close()


def test_silent_listener_times_out():
    """TCP accepts (the kernel's backlog) but no startup answer ever comes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        p = Probe("--host", "127.0.0.1", "--port", port, "--user", "postgres")
        try:
            t0 = time.monotonic()
            out = p.cmd("connect 1200", timeout=10)
            took = (time.monotonic() - t0) * 1000
            assert out["rc"] == "timeout" and "timed out" in out["msg"], out
            assert 1000 <= took <= 1200 + SLACK_MS
            # connect_timeout bounds a connection attempt even with a later deadline
            q = Probe("--host", "127.0.0.1", "--port", port, "--user", "postgres",
                      "--connect-timeout", "1")
            try:
                t0 = time.monotonic()
                out = q.cmd("status 10000", timeout=15)
                took = (time.monotonic() - t0) * 1000
                assert out["rc"] == "timeout", out
                assert 900 <= took <= 1000 + SLACK_MS
            finally:
                q.close()
        finally:
            p.close()


def test_passwords(probes):
    """scram auth over TCP: a password given as a parameter or in a passfile;
    a wrong one fails with the server's reason and is never printed."""
    secret = "s3cr3t-Pw-%d" % os.getpid()
    with PgInstance("auth") as pg:
        pg.initdb(hba=["host all alice 127.0.0.1/32 scram-sha-256"],
                  password_encryption="scram-sha-256")
        pg.start()
        pg.psql("CREATE ROLE alice LOGIN PASSWORD '%s'" % secret)
        tcp = ["--host", "127.0.0.1", "--port", pg.port, "--user", "alice"]
        p = Probe(*tcp, "--password", secret)
        try:
            assert p.ok("exec 2000 SELECT current_user")["rows"] == [["alice"]]
        finally:
            p.close()
        assert secret not in p.errors()
        passfile = os.path.join(pg.dir, "pgpass")
        with open(passfile, "w") as f:
            f.write("127.0.0.1:%d:*:alice:%s\n" % (pg.port, secret))
        os.chmod(passfile, 0o600)
        p = Probe(*tcp, "--passfile", passfile)
        try:
            assert p.ok("status 2000")["status"]["in_recovery"] is False
        finally:
            p.close()
        wrong = "wrong-" + secret
        p = Probe(*tcp, "--password", wrong)
        try:
            out = p.cmd("connect 2000")
            assert out["rc"] == "connect", out
            assert "password authentication failed" in out["msg"], out
            assert wrong not in json.dumps(out) and secret not in json.dumps(out)
        finally:
            p.close()
        assert wrong not in p.errors()
