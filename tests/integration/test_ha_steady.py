"""Issue 5, the cases that must NOT fail over, on one shared 3-node cluster
(etcd 3.4, PostgreSQL 15, HAProxy 2.6; ttl 10, loop_wait 2, retry_timeout 3):
bootstrap and HAProxy routing, a second node with a taken name, a +-60 s
wall-clock step on the leader's daemon (libfaketime), and a postmaster crash
under a live daemon.  pg-1 bootstraps and is expected to stay the leader
through the whole module; each test checks that before it starts.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import signal
import threading
import time

import pytest

from ha_cluster import (HaCluster, cmdline, fail_with_logs, in_recovery, leaders_seen,
                        requirements, sql_tcp, wait_healthy)
from pg_instance import children_of, poll

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
TTL, LOOP_WAIT = 10, 2

pytestmark = requirements(haproxy=True) + [
    pytest.mark.skipif(not os.access(FAKETIME_LIB, os.R_OK),
                       reason="libfaketime not installed (Debian's faketime)"),
]


@pytest.fixture(scope="module")
def cluster():
    """pg-1's daemon runs under libfaketime: the wall clock it sees is the real
    one plus the offset in its timestamp file ("+0" until a test steps it).
    Monotonic clocks (CLOCK_BOOTTIME included) stay real, as in an NTP step."""
    with HaCluster(3) as c:
        c.clock_file = os.path.join(c.base, "faketime-offset")
        step_clock(c, "+0")
        os.chmod(c.clock_file, 0o644)
        c.node("pg-1").env.update({
            "LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": c.clock_file,
            "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # an ASan build wants its runtime first in the preload list
            "ASAN_OPTIONS": "verify_asan_link_order=0"})
        c.start()
        c.start_haproxy()
        yield c


@pytest.fixture
def steady(cluster):
    """The cluster as every test here leaves it: pg-1 the leader, two replicas."""
    leader = wait_healthy(cluster)
    assert leader == "pg-1", leader
    return cluster


def test_bootstrap_through_haproxy(steady):
    c = steady
    leader = c.node("pg-1")
    code, status = leader.rest("/patroni")
    assert code == 200 and status["role"] == "master", status
    sysid = status["database_system_identifier"]
    assert c.key("initialize") == sysid
    for n in c.nodes[1:]:  # cloned from the leader, never initialized on their own
        code, body = n.rest("/patroni")
        assert code == 200 and body["role"] == "replica", body
        assert body["database_system_identifier"] == sysid
        assert "initdb" not in n.log(10 ** 7), n.log(3000)
    assert in_recovery(leader) == "f"
    leader.psql("CREATE TABLE IF NOT EXISTS boot (v text)")
    leader.psql("INSERT INTO boot VALUES ('from-the-leader')")
    for n in c.nodes[1:]:
        poll(lambda n=n: n.psql("SELECT v FROM boot") == "from-the-leader", 30,
             "the leader's row on " + n.name)
        assert in_recovery(n) == "t"

    # HAProxy: the write port reaches the primary, the read port a replica
    hp = c.haproxy
    replica_ports = {n.pg_port for n in c.nodes[1:]}
    poll(lambda: sql_tcp(hp.write_port, "SELECT inet_server_port()") == [leader.pg_port], 30,
         "HAProxy's write port on pg-1")
    assert sql_tcp(hp.write_port, "SELECT pg_is_in_recovery()") == [False]
    assert sql_tcp(hp.write_port, "INSERT INTO boot VALUES ('through-haproxy')") == []
    seen = set()

    def read_port_on_replicas():  # round robin: both replicas, never the primary
        port = sql_tcp(hp.read_port, "SELECT inet_server_port()")
        if port:
            assert port[0] in replica_ports, (port, replica_ports)
            seen.add(port[0])
        return seen == replica_ports
    poll(read_port_on_replicas, 30, "HAProxy's read port on both replicas")
    poll(lambda: sql_tcp(hp.read_port, "SELECT count(*) FROM boot WHERE v = 'through-haproxy'")
         == [1], 30, "the row written through HAProxy read back through it")
    assert sql_tcp(hp.read_port, "SELECT pg_is_in_recovery()") == [True]


def test_duplicate_member_name(steady):
    c = steady
    first = c.node("pg-2")
    before = c.key("members/pg-2")
    assert before is not None and str(first.api_port) in before, before
    dup = c.extra_node("pg-2", "pg-2-duplicate")
    dup.start()
    poll(lambda: not dup.alive(), 30, "the second pg-2 to exit")
    log = dup.log(10 ** 6)
    assert dup.proc.returncode != 0, log
    assert "there is already a node named 'pg-2' running" in log, log
    # nothing of the second one reached the DCS, its data directory or PostgreSQL
    assert not os.path.exists(dup.datadir), os.listdir(dup.dir)
    after = c.key("members/pg-2")
    assert after is not None and str(first.api_port) in after, after
    assert str(dup.api_port) not in after and str(dup.pg_port) not in after, after
    assert first.alive() and first.rest("/replica")[0] == 200
    assert c.leader_name() == "pg-1"


def sampled_timeline(node):
    """The timeline in the node's /patroni (absent until PostgreSQL was sampled)."""
    def timeline():
        code, body = node.rest("/patroni")
        return body.get("timeline") if code == 200 and isinstance(body, dict) else None
    return poll(timeline, 10, "a timeline in the /patroni of " + node.name)


def step_clock(c, offset):
    with open(c.clock_file, "w") as f:
        f.write(offset + "\n")


def test_wall_clock_step_no_failover(steady):
    """A +60 s and then a -120 s step of the leader daemon's wall clock (to
    real time - 60 s): no demotion, no failover, /leader answers 200 throughout."""
    c = steady
    leader = c.node("pg-1")
    pid = leader.postmaster_pid()
    timeline = sampled_timeline(leader)
    log_start = len(leader.log(10 ** 8))
    bad = []

    def observe(seconds):
        end = time.monotonic() + seconds

        def check():
            code, _ = leader.rest("/leader", timeout=2)
            if code != 200:
                bad.append(("/leader", code, time.monotonic()))
            name = c.leader_name()
            if name != "pg-1":
                bad.append(("leader key", name, time.monotonic()))
            return time.monotonic() >= end
        poll(check, seconds + 30, "%d s of observation" % seconds)

    try:
        for offset, shift in (("+60s", 60), ("-60s", -60)):
            step_clock(c, offset)
            # the daemon sees the step: /patroni's dcs_last_seen is its wall clock
            poll(lambda: abs(leader.rest("/patroni")[1].get("dcs_last_seen", 0) -
                             (time.time() + shift)) < 15, 30,
                 "pg-1's daemon on the %s clock" % offset)
            observe(3 * LOOP_WAIT + 1)
    finally:
        step_clock(c, "+0")
    poll(lambda: abs(leader.rest("/patroni")[1].get("dcs_last_seen", 0) - time.time()) < 15, 30,
         "pg-1's daemon back on the real clock")
    observe(LOOP_WAIT + 1)
    if bad:
        fail_with_logs(c, "the clock step disturbed the leader: %s" % bad[:20])
    assert leader.postmaster_pid() == pid
    assert sampled_timeline(leader) == timeline
    log = leader.log(10 ** 8)[log_start:]
    assert "demot" not in log.lower(), log[-3000:]
    for n in c.nodes[1:]:
        assert n.rest("/replica")[0] == 200


def test_postmaster_crash_restarted_in_place(steady):
    """SIGKILL of the leader's postmaster, its daemon alive, one of its
    children slow to exit (the checkpointer stopped for half a second): PostgreSQL
    is started again on the same node as the primary; the lock never moves."""
    c = steady
    leader = c.node("pg-1")
    pid = leader.postmaster_pid()
    timeline = sampled_timeline(leader)
    leader.psql("CREATE TABLE IF NOT EXISTS crash (v int)")
    slow = [p for p in children_of(pid) if "checkpointer" in cmdline(p)]
    assert len(slow) == 1, [cmdline(p) for p in children_of(pid)]
    slow = slow[0]
    os.kill(slow, signal.SIGSTOP)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    # until it runs again (and sees its postmaster gone) it holds the shared memory
    threading.Timer(0.5, os.kill, (slow, signal.SIGCONT)).start()

    def back():
        new = leader.postmaster_pid()
        return new is not None and new != pid and \
            leader.psql("INSERT INTO crash VALUES (1)", timeout=5) is not None
    try:
        seen = leaders_seen(c, back, timeout=60, what="pg-1 writable again")
    except AssertionError as e:
        fail_with_logs(c, str(e))
    took = time.monotonic() - t0
    assert seen == {"pg-1"}, seen
    assert in_recovery(leader) == "f"
    assert sampled_timeline(leader) == timeline  # no promotion anywhere
    for n in c.nodes[1:]:
        assert in_recovery(n) == "t", n.name
        poll(lambda n=n: n.psql("SELECT count(*) FROM crash") == "1", 60,
             "the row written after the crash on " + n.name)
    assert took < TTL, took
