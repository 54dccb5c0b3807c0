"""Issue 5, the leader going away, on one 3-node cluster shared by the module
(etcd 3.4, PostgreSQL 15; ttl 10, loop_wait 2, retry_timeout 3): a leader
that dies (daemon and postmaster SIGKILLed) and comes back, a leader whose
daemon is stopped with SIGTERM, the DCS frozen (SIGSTOP of etcd) with and
without failsafe_mode, and pause mode.  Any node may be the leader when a
test starts: each one waits for one leader and two streaming replicas first
(restarting daemons an earlier test left stopped).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import signal
import time

import pytest

from ha_cluster import HaCluster, cmdline, fail_with_logs
from ha_cluster import healthy as ha_healthy
from ha_cluster import in_recovery, leaders_seen, requirements, wait_healthy
from pg_instance import children_of, poll

TTL, LOOP_WAIT = 10, 2

pytestmark = requirements(patronictl=True)


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3) as c:
        c.start()
        yield c


@pytest.fixture
def healthy(cluster):
    """(cluster, leader node, replica nodes) once the cluster is whole again."""
    return (cluster,) + ha_healthy(cluster)


def timeline(node):
    code, body = node.rest("/patroni")
    return body.get("timeline") if code == 200 else None


def write(node, table, value, timeout=30):
    poll(lambda: node.psql("CREATE TABLE IF NOT EXISTS %s (v text); INSERT INTO %s VALUES "
                           "('%s')" % (table, table, value)) is not None, timeout,
         "a write on " + node.name)


def has_row(node, table, value):
    return node.psql("SELECT count(*) FROM %s WHERE v = '%s'" % (table, value)) == "1"


def wait_rejoined(c, node, table, value, timeout=120):
    """node streams from the current leader and has its row."""
    try:
        poll(lambda: node.rest("/replica")[0] == 200 and in_recovery(node) == "t" and
             has_row(node, table, value), timeout, node.name + " rejoined as a replica")
    except AssertionError as e:
        fail_with_logs(c, str(e))


def set_pause(c, on):
    """`patronictl pause --wait` / `resume --wait` (PATCH /config on a member,
    then every running member's key must report the new mode)."""
    out = c.patronictl("pause" if on else "resume", "--wait", timeout=60)
    assert "Failed" not in out and "Error" not in out, out

    def applied():
        for n in c.nodes:
            if n.alive():
                data = json.loads(c.key("members/" + n.name) or "{}")
                if bool(data.get("pause")) != on:
                    return False
        return True
    poll(applied, 30, "every member %s" % ("paused" if on else "resumed"))


def test_pause_no_failover(healthy):
    """Paused: SIGTERM of the leader's daemon leaves PostgreSQL running and the
    key in place; the leader dying (daemon and postmaster) promotes nobody."""
    c, old, replicas = healthy
    set_pause(c, True)
    try:
        pm = old.postmaster_pid()
        assert old.stop() == 0, old.log(3000)
        assert old.postmaster_pid() == pm, old.log(3000)
        assert in_recovery(old) == "f"
        assert c.leader_name() == old.name
        old.start()  # resumes as the leader of the running primary, no restart
        poll(lambda: old.rest("/leader")[0] == 200, 30, old.name + " the leader again")
        assert old.postmaster_pid() == pm

        old.kill()
        os.kill(pm, signal.SIGKILL)
        t0 = time.monotonic()
        promoted = []

        def observed():
            for n in replicas:
                if in_recovery(n) == "f":
                    promoted.append(n.name)
            return time.monotonic() - t0 > TTL + 3 * LOOP_WAIT
        seen = leaders_seen(c, observed, timeout=60, what="ttl + 3 loop_wait paused")
        assert not promoted, fail_with_logs(c, "promoted while paused: %s" % promoted)
        assert seen <= {old.name, None}, seen
        assert c.leader_name() is None  # the dead leader's key expired, nobody took it
        for n in replicas:
            assert n.alive() and in_recovery(n) == "t"
            assert "PAUSE:" in n.log(10 ** 6)
    finally:
        if not old.alive():
            old.start()  # paused: it leaves its PostgreSQL stopped until the resume
        set_pause(c, False)
    wait_healthy(c)


def test_graceful_sigterm(healthy):
    """SIGTERM of the leader's daemon: PostgreSQL stopped, the key released;
    a replica is the leader well before the ttl."""
    c, old, replicas = healthy
    write(old, "graceful", "before")
    old.signal(signal.SIGTERM)
    t0 = time.monotonic()
    try:
        new = c.wait_leader(timeout=TTL, other_than=old.name)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    took = time.monotonic() - t0
    assert took < TTL / 2, fail_with_logs(c, "a new leader only after %.1f s" % took)
    poll(lambda: not old.alive(), 30, old.name + " to exit")
    assert old.proc.returncode == 0, old.log(3000)
    assert old.postmaster_pid() is None
    new_node = c.node(new)
    assert has_row(new_node, "graceful", "before")
    write(new_node, "graceful", "after")
    old.start()
    wait_rejoined(c, old, "graceful", "after")


def test_unplanned_failover(healthy):
    """SIGKILL of the leader's daemon and postmaster after a commit only it
    has (its walsenders frozen): a replica holds the lock and accepts writes
    within ttl + loop_wait; the old node, restarted, is rewound and rejoins."""
    c, old, replicas = healthy
    write(old, "unplanned", "before")
    for n in replicas:
        poll(lambda n=n: has_row(n, "unplanned", "before"), 30, "the row on " + n.name)
    pm = old.postmaster_pid()
    senders = [p for p in children_of(pm) if "walsender" in cmdline(p)]
    assert len(senders) == len(replicas), [cmdline(p) for p in children_of(pm)]
    for p in senders:
        os.kill(p, signal.SIGSTOP)
    assert old.psql("INSERT INTO unplanned VALUES ('only-on-the-old-primary')") is not None
    old.kill()
    for p in [pm] + senders:
        os.kill(p, signal.SIGKILL)
    t0 = time.monotonic()

    def promoted():
        name = c.leader_name()
        if name is None or name == old.name:
            return None
        n = c.node(name)
        ok = n.psql("INSERT INTO unplanned VALUES ('after')", timeout=3) is not None
        return name if ok else None
    try:
        new = poll(promoted, TTL + LOOP_WAIT + 20, "a writable new leader")
    except AssertionError as e:
        fail_with_logs(c, str(e))
    took = time.monotonic() - t0
    assert took < TTL + LOOP_WAIT, fail_with_logs(c, "writes only after %.1f s" % took)
    assert timeline(c.node(new)) is not None

    log_start = len(old.log(10 ** 8))
    old.start()
    wait_rejoined(c, old, "unplanned", "after")
    assert not has_row(old, "unplanned", "only-on-the-old-primary")
    assert "rewind" in old.log(10 ** 8)[log_start:].lower(), old.log(5000)
    assert timeline(old) == timeline(c.node(new))


def test_dcs_outage_demotes(healthy):
    """etcd frozen longer than retry_timeout: the leader stops being a primary
    before its lock could expire; etcd back: one leader again."""
    c, old, replicas = healthy
    m = c.etcd.members[0]
    c.etcd.freeze(m)
    t0 = time.monotonic()
    try:
        try:
            poll(lambda: in_recovery(old) != "f", TTL + 10, old.name + " demoted")
        except AssertionError as e:
            fail_with_logs(c, str(e))
        took = time.monotonic() - t0
        # (a renewal sent just before the freeze times out sooner than retry_timeout)
        assert took < TTL, fail_with_logs(c, "demoted after %.1f s" % took)
        for n in c.nodes:
            assert n.rest("/leader")[0] != 200, n.name
        for n in replicas:
            assert in_recovery(n) == "t", n.name
    finally:
        c.etcd.thaw(m)
    try:
        leader = wait_healthy(c, timeout=90)
    except AssertionError as e:
        fail_with_logs(c, "no single leader after the outage: %s" % e)
    # the lock holder answers /leader 200 as soon as it has the lock (as Patroni's
    # does); its promotion may take a moment more: poll, and never two primaries
    def primaries():
        found = [n.name for n in c.nodes if in_recovery(n) == "f"]
        assert len(found) <= 1, found
        return found
    assert poll(primaries, 30, "one primary after the outage") == [leader]


def failsafe_view(node):
    code, body = node.rest("/failsafe")
    return sorted(body) if code == 200 and isinstance(body, dict) else None


def test_dcs_outage_failsafe(healthy):
    """With failsafe_mode and every member reachable, a frozen etcd leaves the
    primary running for longer than the ttl; when etcd is back it is still
    the only leader, on the same timeline."""
    c, leader, replicas = healthy
    c.patronictl("edit-config", "--set", "failsafe_mode=true", "--force")
    try:
        # the leader's own view of the failsafe key (its GET /failsafe): a
        # leader that wrote the key knows it only from its next read (Patroni
        # keeps what it wrote), so an outage in that cycle would demote it
        poll(lambda: failsafe_view(leader) == sorted(n.name for n in c.nodes), 30,
             "the failsafe key listing every member")
        pm = leader.postmaster_pid()
        tl = timeline(leader)
        m = c.etcd.members[0]
        c.etcd.freeze(m)
        t0 = time.monotonic()
        bad = []
        try:
            def observed():
                if in_recovery(leader) != "f":
                    bad.append(("not a primary", time.monotonic() - t0))
                return time.monotonic() - t0 > TTL + 2 * LOOP_WAIT
            poll(observed, TTL + 30, "ttl + 2 loop_wait of outage")
        finally:
            c.etcd.thaw(m)
        if bad:
            fail_with_logs(c, "failsafe did not keep the primary: %s" % bad[:10])
        assert leader.postmaster_pid() == pm
        assert "failsafe" in leader.log(10 ** 6)
        name = wait_healthy(c, timeout=60)
        assert name == leader.name
        assert timeline(leader) == tl
        assert [n.name for n in c.nodes if in_recovery(n) == "f"] == [leader.name]
    finally:
        c.patronictl("edit-config", "--set", "failsafe_mode=false", "--force")
