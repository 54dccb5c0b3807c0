"""Issue 5, no split brain, on one 3-node cluster shared by the module (etcd
3.4, PostgreSQL 15; ttl 10, loop_wait 2, retry_timeout 3) whose network paths
between nodes go through test-owned TCP proxies (ha_cluster.TcpProxy).  A
Writer per node commits rows with unique ids straight to that node's
PostgreSQL (never through the proxies or HAProxy) and records each
acknowledged commit with its time.

(c) the leader cut off from the DCS and from its peers (its proxies
    blackholed), still reachable by its writer: its last acknowledged commit
    precedes the new leader's first.
(a) synchronous_mode, the leader's daemon frozen (SIGSTOP) for longer than
    the ttl while its PostgreSQL runs on: the old primary acknowledges no
    commit after the new leader's first, every acknowledged row is on the new
    primary, and after SIGCONT the old node demotes and never takes the lock
    back.
(b) (a fake watchdog resets the node) is the watchdog's own test.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import signal
import time

import pytest

from ha_cluster import HaCluster, Writer, fail_with_logs
from ha_cluster import healthy as ha_healthy
from ha_cluster import in_recovery, leaders_seen, new_ids, requirements, streaming_to
from pg_instance import poll

TTL, LOOP_WAIT = 10, 2

pytestmark = requirements(patronictl=True)
pytest.importorskip("psycopg2")


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3, proxies=True) as c:
        c.start()
        yield c


@pytest.fixture
def healthy(cluster):
    """(cluster, leader node, replica nodes) with every partition healed."""
    for n in cluster.nodes:
        n.heal()
    return (cluster,) + ha_healthy(cluster)


def create_table(c, leader, table):
    assert leader.psql("CREATE TABLE %s (id bigint PRIMARY KEY, node text)" % table) is not None
    for n in c.nodes:
        poll(lambda n=n: n.psql("SELECT count(*) FROM %s" % table) == "0", 30,
             "table %s on %s" % (table, n.name))


def start_writers(c, table):
    ids = new_ids()
    writers = {n.name: Writer(n, table, ids) for n in c.nodes}
    for w in writers.values():
        w.start()
    return writers


def stop_writers(writers):
    for w in writers.values():
        w.halt.set()
    for w in writers.values():
        w.stop()


def acked_after(writer, t):
    return [a for a in writer.acked if a[1] > t]


def wait_new_leader_commits(c, writers, old, t):
    """The name of a leader other than old once its writer got a commit
    acknowledged after t."""
    def check():
        name = c.leader_name()
        if name in (None, old.name):
            return None
        return name if acked_after(writers[name], t) else None
    try:
        return poll(check, TTL + 30, "a new leader acknowledging commits")
    except AssertionError as e:
        fail_with_logs(c, str(e))


def rows_on(node, table):
    out = node.psql("SELECT id FROM %s" % table, timeout=30)
    assert out is not None, node.name
    return {int(x) for x in out.split()}


def test_isolated_leader_fences_itself(healthy):
    """(c) The leader loses the DCS and its peers, not its clients: it stops
    acknowledging commits before a replica can be promoted."""
    c, old, replicas = healthy
    create_table(c, old, "sb_isolated")
    writers = start_writers(c, "sb_isolated")
    try:
        poll(lambda: len(writers[old.name].acked) >= 20, 30, "commits on " + old.name)
        old.isolate()
        t_cut = time.monotonic()

        new = wait_new_leader_commits(c, writers, old, t_cut)
        # the isolated node must be fenced by now: not a writable primary
        poll(lambda: in_recovery(old) != "f", 10, old.name + " not a primary")
    finally:
        stop_writers(writers)
    old_acks = acked_after(writers[old.name], t_cut)
    new_first = min(t for _, t in acked_after(writers[new], t_cut))
    last_old = max([t for _, t in writers[old.name].acked])
    assert last_old < new_first, fail_with_logs(
        c, "%s acknowledged a commit %.3f s after %s's first" % (old.name, last_old - new_first,
                                                               new))
    assert last_old - t_cut < TTL, (old_acks[-3:], t_cut)
    print("isolated: %d commits on %s after the cut, the last %.2f s after it; %s's first "
          "%.2f s after it" % (len(old_acks), old.name, last_old - t_cut, new, new_first - t_cut))

    old.heal()
    try:
        seen = leaders_seen(c, lambda: rejoined(c, old, new), timeout=120,
                            what=old.name + " streaming from " + new)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    assert seen == {new}, seen


def rejoined(c, old, new):
    """old is a replica streaming from new."""
    return old.rest("/replica")[0] == 200 and in_recovery(old) == "t" and \
        old.name in streaming_to(c.node(new))


def sync_state(c):
    try:
        return json.loads(c.key("sync") or "{}")
    except ValueError:
        return {}


def test_frozen_leader_sync_mode(healthy):
    """(a) synchronous_mode: the leader's daemon SIGSTOPped longer than the ttl."""
    c, old, replicas = healthy
    c.patronictl("edit-config", "--set", "synchronous_mode=true", "--force")
    try:
        def synchronous():
            s = sync_state(c)
            code, body = old.rest("/patroni")
            if s.get("leader") != old.name or not s.get("sync_standby") or code != 200:
                return None
            rep = {r.get("application_name"): r.get("sync_state")
                   for r in body.get("replication") or []}
            return s["sync_standby"] if rep.get(s["sync_standby"]) == "sync" else None
        standby = poll(synchronous, 30, "a synchronous standby of " + old.name)
        create_table(c, old, "sb_frozen")
        writers = start_writers(c, "sb_frozen")
        try:
            poll(lambda: len(writers[old.name].acked) >= 20, 30, "commits on " + old.name)
            old.signal(signal.SIGSTOP)
            t_stop = time.monotonic()
            try:
                new = wait_new_leader_commits(c, writers, old, t_stop)
                assert new == standby, (new, standby)  # only the sync standby may be promoted
                poll(lambda: time.monotonic() - t_stop > TTL + LOOP_WAIT, TTL + 10,
                     "the freeze to outlast the ttl")
            finally:
                old.signal(signal.SIGCONT)
            # the old leader wakes up without its lock: it demotes, rejoins, never leads
            try:
                seen = leaders_seen(c, lambda: rejoined(c, old, new), timeout=120,
                                    what=old.name + " streaming from " + new)
            except AssertionError as e:
                fail_with_logs(c, str(e))
        finally:
            stop_writers(writers)
        assert seen == {new}, seen
        new_node = c.node(new)
        new_first = min(t for _, t in acked_after(writers[new], t_stop))
        late = [a for a in writers[old.name].acked if a[1] >= new_first]
        assert not late, fail_with_logs(c, "%s acknowledged %s after %s's first commit" % (
            old.name, late[:5], new))
        print("frozen: %d commits on %s after the freeze, %s's first %.2f s after it; "
              "%d acknowledged in all" % (len(acked_after(writers[old.name], t_stop)), old.name,
                                          new, new_first - t_stop,
                                          sum(len(w.acked) for w in writers.values())))
        acked = {i for w in writers.values() for i, _ in w.acked}
        missing = acked - rows_on(new_node, "sb_frozen")
        assert not missing, fail_with_logs(c, "acknowledged rows lost: %s" % sorted(missing)[:20])
    finally:
        c.patronictl("edit-config", "--set", "synchronous_mode=false", "--force")
