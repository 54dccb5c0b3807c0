"""core/pg_demote.c against real PostgreSQL 15, through tests/tools/pgctl_probe
(commands demote, demote-stop, demote-start, follow): a graceful demotion of
an old primary into a streaming replica of the promoted one, the
immediate-nolock escalation to SIGKILL at the lock deadline with a SIGSTOPped
postmaster, and a replica following another upstream with a reload (same
postmaster) on PostgreSQL 15.

The helpers (probe, nodes, cleanup by PID, child subreaper) are those of
test_pg_ctl.py; pg_instance.py makes the data directories and runs the
instances that are not under test.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import signal

from pg_instance import children_of, free_port, poll
from test_pg_ctl import (KILL_GRACE_MS, SLACK_MS, gone, nodes, pytestmark,  # noqa: F401
                         subreaper)


def strip_auto_conninfo(node):
    """pg_basebackup -R wrote a primary_conninfo into postgresql.auto.conf,
    which would win over ours (Patroni removes it too)."""
    auto = node.path("postgresql.auto.conf")
    lines = open(auto).read().splitlines(True)
    node.pg.write_file(auto, "".join(l for l in lines if not l.startswith("primary_conninfo")))


def started_primary(node):
    p = node.probe()
    p.ok("write primary")
    p.ok("start 30000")
    assert p.ok("wait 30000")["status"]["state"] == "running"
    return p


def started_replica(node, upstream):
    strip_auto_conninfo(node)
    p = node.probe()
    p.ok("write replica 127.0.0.1 %d" % upstream.pg.port)
    p.ok("start 30000 replica")
    st = p.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["role"] == "replica"
    return p


def streaming(probe, app):
    return probe.ok("sql 5000 SELECT count(*) FROM pg_stat_replication "
                    "WHERE application_name = '%s' AND state = 'streaming'" % app)["value"]


def checkpoint_lsn(node):
    out = node.pg.run([node.pg.bin("pg_controldata"), "-D", node.pg.datadir])
    text = out.stdout if isinstance(out.stdout, str) else out.stdout.decode()
    for line in text.splitlines():
        if line.startswith("Latest checkpoint location:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no checkpoint location in pg_controldata output: %s" % text)


def test_graceful_demotion_follows_the_new_primary(nodes):
    a = nodes("a")
    a.pg.initdb()
    pa = started_primary(a)
    b = nodes("b", base=a.pg.base)
    b.pg.base_backup_from(a.pg)
    pb = started_replica(b, a)
    poll(lambda: streaming(pa, "b") == "1", 30, "b streaming from a")
    pa.ok("sql 5000 CREATE TABLE before_switchover AS SELECT 1 AS x")

    # first half: CHECKPOINT, fast stop
    out = pa.ok("demote-stop graceful 10000 30000")
    assert out["checkpoint_ok"] and out["result"] == "done", out
    assert out["status"]["state"] == "stopped"
    assert not os.path.exists(a.path("postmaster.pid"))
    # the shutdown checkpoint reached b before a stopped: b replays it, then is promoted,
    # so that a needs no rewind
    lsn = checkpoint_lsn(a)
    poll(lambda: pb.ok("sql 5000 SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn)
         ["value"] == "t", 30, "b to replay a's shutdown checkpoint")
    assert pb.ok("promote 30000")["status"]["role"] == "primary"

    # second half: a starts as a replica of b
    out = pa.ok("demote-start graceful 30000 127.0.0.1 %d" % b.pg.port)
    assert out["started"], out
    assert os.path.exists(a.path("standby.signal"))
    conf = open(a.path("postgresql.conf")).read()
    assert "port=%d" % b.pg.port in conf and "application_name=a" in conf, conf
    st = pa.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["role"] == "replica", st
    assert pa.ok("sql 5000 SELECT pg_is_in_recovery()")["value"] == "t"
    poll(lambda: streaming(pb, "a") == "1", 30, "a streaming from b")
    pb.ok("sql 5000 CREATE TABLE after_switchover AS SELECT 2 AS x")
    poll(lambda: pa.cmd("sql 5000 SELECT x FROM after_switchover").get("value") == "2", 30,
         "a to replay b's writes")
    assert pa.ok("sql 5000 SELECT x FROM before_switchover")["value"] == "1"

    # offline: fast stop, back as a replica with no upstream
    out = pa.ok("demote offline 0 30000 30000 127.0.0.1 %d" % b.pg.port)
    assert not out["checkpoint_ok"] and out["result"] == "done" and out["started"], out
    assert "primary_conninfo" not in open(a.path("postgresql.conf")).read()
    assert os.path.exists(a.path("standby.signal"))
    st = pa.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["role"] == "replica", st
    assert pa.ok("sql 5000 SELECT pg_is_in_recovery()")["value"] == "t"
    poll(lambda: streaming(pb, "a") == "0", 30, "a no longer streaming")

    pa.ok("stop fast 30000")
    pb.ok("stop fast 30000")


def test_immediate_nolock_escalates_to_sigkill(nodes):
    a = nodes("a")
    a.pg.initdb()
    pa = started_primary(a)
    pid = pa.ok("status")["status"]["pid"]
    kids = children_of(pid)
    assert kids
    os.kill(pid, signal.SIGSTOP)  # the postmaster ignores every request now
    port = free_port()
    out = pa.ok("demote immediate-nolock 0 1500 30000 127.0.0.1 %d" % port, timeout=30)
    assert out["result"] == "killed" and out["started"], out
    assert not out["checkpoint_ok"]
    assert 1500 <= out["elapsed_ms"] <= 1500 + KILL_GRACE_MS + SLACK_MS, out
    assert gone(pid) and all(gone(k) for k in kids)
    st = out["status"]
    assert st["pid"] not in (0, pid) and st["role"] == "replica", st
    assert os.path.exists(a.path("standby.signal"))
    assert "port=%d" % port in open(a.path("postgresql.conf")).read()
    st = pa.ok("wait 30000")["status"]
    assert st["state"] == "running" and st["role"] == "replica", st
    assert pa.ok("sql 5000 SELECT pg_is_in_recovery()")["value"] == "t"

    # immediate (the lock is released by the caller): no SIGKILL needed
    out = pa.ok("demote immediate 0 30000 30000")
    assert out["result"] == "done" and out["started"], out
    assert pa.ok("wait 30000")["status"]["state"] == "running"
    pa.ok("stop fast 30000")


def test_follow_reloads_on_15(nodes):
    a = nodes("a")
    a.pg.initdb()
    a.pg.start()
    b = nodes("b", base=a.pg.base)
    b.pg.base_backup_from(a.pg)
    pb = started_replica(b, a)
    c = nodes("c", base=a.pg.base)
    c.pg.base_backup_from(a.pg)
    c.pg.start()
    poll(lambda: a.pg.psql("SELECT count(*) FROM pg_stat_replication "
                           "WHERE application_name = 'b' AND state = 'streaming'") == "1", 30,
         "b streaming from a")
    pid = pb.ok("status")["status"]["pid"]

    out = pb.ok("follow 30000 30000 127.0.0.1 %d" % c.pg.port)
    assert out["reloaded"] and not out["restarted"], out
    assert out["status"]["pid"] == pid and out["status"]["state"] == "running"
    assert "port=%d" % c.pg.port in open(b.path("postgresql.conf")).read()
    poll(lambda: c.pg.psql("SELECT count(*) FROM pg_stat_replication "
                           "WHERE application_name = 'b' AND state = 'streaming'") == "1", 30,
         "b streaming from c")
    assert a.pg.psql("SELECT count(*) FROM pg_stat_replication "
                     "WHERE application_name = 'b'") == "0"
    assert pb.ok("status")["status"]["pid"] == pid
    assert pb.ok("sql 5000 SELECT pg_is_in_recovery()")["value"] == "t"
    pb.ok("stop fast 30000")
