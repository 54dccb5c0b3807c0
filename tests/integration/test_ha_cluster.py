"""The HA loop end to end: three pgkeel daemons on etcd 3.4 and PostgreSQL 15
(tests/integration/ha_cluster.py).  Node 1 bootstraps with the seed's
bootstrap section, nodes 2 and 3 join with none; Debian's patronictl 3.0.2
reads the cluster and switches it over; a frozen leader (its daemon
SIGSTOPped, its postmaster killed) loses the lock and a replica is promoted;
the old leader comes back as a replica of the new one.  Rows written before
each change are on every node after it.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import signal
import time

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, have_pgkeel
from pg_instance import have_postgres, poll

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
]


def list_rows(out):
    """patronictl list's table as {member: (role, state, tl)}."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("pg-"):
            rows[cells[0]] = (cells[2], cells[3], cells[4])
    return rows


def wait_rows(c, want, timeout=60):
    """Wait until patronictl list shows exactly these (role, state) per member."""
    def check():
        rows = list_rows(c.patronictl("list"))
        return rows if {k: v[:2] for k, v in rows.items()} == want else None
    return poll(check, timeout, "patronictl list to show %s" % (want,))


def write_row(node, value):
    """Insert on the leader (its promotion may still be finishing: /leader is
    200 as soon as it holds the lock, as in Patroni)."""
    try:
        poll(lambda: node.psql("CREATE TABLE IF NOT EXISTS t (v int); INSERT INTO t VALUES "
                               "(%d)" % value) is not None, 30, "a write on %s" % node.name)
    except AssertionError as e:
        raise AssertionError("%s\n--- log of %s:\n%s" % (e, node.name, node.log(8000)))


def wait_row_everywhere(nodes, value, timeout=60):
    for n in nodes:
        try:
            poll(lambda n=n: n.psql("SELECT count(*) FROM t WHERE v = %d" % value) == "1",
                 timeout, "row %d on %s" % (value, n.name))
        except AssertionError as e:
            raise AssertionError("%s\n--- log of %s:\n%s" % (e, n.name, n.log(8000)))


@pytest.fixture
def cluster():
    with HaCluster(3) as c:
        yield c


def test_bootstrap_switchover_failover(cluster):
    c = cluster
    assert "bootstrap" not in open(c.node("pg-2").conf).read()
    c.start()
    assert c.wait_leader(timeout=90) == "pg-1"
    wait_rows(c, {"pg-1": ("Leader", "running"), "pg-2": ("Replica", "running"),
                  "pg-3": ("Replica", "running")}, timeout=90)
    # a member key carries its timeline once its first status query answered
    poll(lambda: all(r[2] == "1" for r in list_rows(c.patronictl("list")).values()), 30,
         "timeline 1 on every member in patronictl list")
    # HAProxy's view: /leader on the leader only, /replica on the others
    assert c.node("pg-1").rest("/leader")[0] == 200
    assert c.node("pg-1").rest("/replica")[0] == 503
    for name in ("pg-2", "pg-3"):
        poll(lambda name=name: c.node(name).rest("/replica")[0] == 200, 30,
             "/replica 200 on " + name)
        assert c.node(name).rest("/leader")[0] == 503
    code, body = c.node("pg-1").rest("/patroni")
    assert code == 200 and body["role"] == "master" and body["patroni"]["version"] == "3.0.2"
    assert c.key("initialize") == body["database_system_identifier"]
    write_row(c.node("pg-1"), 1)
    wait_row_everywhere(c.nodes, 1)

    # a switchover by Debian's patronictl
    out = c.patronictl("switchover", "--leader", "pg-1", "--candidate", "pg-2", "--force",
                       timeout=120)
    assert 'Successfully switched over to "pg-2"' in out, out
    assert c.wait_leader(timeout=60) == "pg-2"
    wait_rows(c, {"pg-1": ("Replica", "running"), "pg-2": ("Leader", "running"),
                  "pg-3": ("Replica", "running")}, timeout=90)
    assert c.node("pg-1").psql("SELECT pg_is_in_recovery()") == "t"
    write_row(c.node("pg-2"), 2)
    wait_row_everywhere(c.nodes, 2)
    assert "manual failover: demoting myself" in c.node("pg-1").log(10 ** 7)

    # the leader freezes: its lock expires, a replica is promoted
    old = c.node("pg-2")
    old.signal(signal.SIGSTOP)
    try:
        pid = old.postmaster_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        new = c.wait_leader(timeout=60, other_than="pg-2")
        took = time.monotonic() - t0
    finally:
        old.signal(signal.SIGCONT)
    assert new in ("pg-1", "pg-3")
    assert took < 3 * 10, took  # within a few ttl
    write_row(c.node(new), 3)
    # the old leader's daemon wakes up without its lock and rejoins as a replica
    wait_rows(c, {"pg-1": ("Leader" if new == "pg-1" else "Replica", "running"),
                  "pg-2": ("Replica", "running"),
                  "pg-3": ("Leader" if new == "pg-3" else "Replica", "running")}, timeout=120)
    wait_row_everywhere(c.nodes, 3)
    assert c.node("pg-2").psql("SELECT pg_is_in_recovery()") == "t"
    history = c.key("history")
    assert history is not None and history.startswith("[[1,"), history
