"""The HA loop end to end on ZooKeeper: three pgkeel daemons with a
zookeeper: section on a real ZooKeeper 3.8 (one standalone server for the
module) and PostgreSQL 15, with ha_cluster.py's HaCluster (its etcd3 section
swapped for a zookeeper: one; ha_cluster.py itself is unchanged).

Node 1 bootstraps, nodes 2 and 3 join; the leader and member znodes are
ephemeral znodes of each daemon's session; Debian's patronictl 3.0.2 (on
kazoo) reads the cluster and switches it over; a frozen leader (its daemon
SIGSTOPped, so its session is no longer kept alive, and its postmaster
killed) loses the lock when the server expires its session, and a replica is
promoted; the old leader comes back as a replica.  Rows written before each
change are on every node after it.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import shutil
import signal
import time

import pytest
import yaml

from ha_cluster import BUILD, HaCluster, Node, have_pgkeel
from pg_instance import have_postgres, poll
from test_ha_cluster import wait_row_everywhere, wait_rows, write_row
from zk_cluster import ZkCluster, have_zookeeper

ZOOKEEPER_SO = os.path.join(BUILD, "backends", "zookeeper", ".libs", "dcs_zookeeper.so")


def have_kazoo():
    try:
        import kazoo  # noqa: F401
        return True
    except ImportError:
        return False


pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not have_zookeeper(), reason="Debian's zookeeper not installed"),
    pytest.mark.skipif(not have_kazoo(), reason="python3-kazoo not installed"),
    pytest.mark.skipif(not (have_pgkeel() and os.path.exists(ZOOKEEPER_SO)),
                       reason="pgkeel or dcs_zookeeper.so not built"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
]


class ZkNode(Node):
    """A node whose DCS section is zookeeper: instead of etcd3:."""

    def config(self):
        cfg = super().config()
        cfg.pop("etcd3", None)
        cfg["zookeeper"] = {"hosts": self.cluster.zk.hosts.split(",")}
        return cfg


class ZkHaCluster(HaCluster):
    """HaCluster on a ZooKeeper the caller owns (started and stopped by it)."""

    def __init__(self, zk, size=3, **kw):
        self.zk = zk
        super().__init__(size=size, etcd=zk, **kw)  # own_etcd False: never started here
        shutil.copy(ZOOKEEPER_SO, os.path.join(self.backends, "dcs_zookeeper.so"))
        os.chmod(os.path.join(self.backends, "dcs_zookeeper.so"), 0o755)
        for n in self.nodes:
            n.__class__ = ZkNode
            n.write_config()

    def znode(self, rel):
        return "/db/%s/%s" % (self.scope, rel)

    def key(self, rel):
        return self.zk.get(self.znode(rel))

    def patronictl(self, *args, timeout=60, check=True):
        import subprocess
        conf = os.path.join(self.base, "patronictl.yml")
        with open(conf, "w") as f:
            yaml.safe_dump({"scope": self.scope, "namespace": "/db/",
                            "zookeeper": {"hosts": self.zk.hosts.split(",")}}, f)
        p = subprocess.run(["/usr/bin/patronictl", "-c", conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.base})
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError("patronictl %s failed (%d): %s" % (args, p.returncode, out))
        return out


@pytest.fixture(scope="module")
def zk():
    cluster = ZkCluster(size=1).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(zk):
    with ZkHaCluster(zk, 3) as c:
        yield c


def test_zookeeper_bootstrap_switchover_failover(cluster):
    c = cluster
    cfg = yaml.safe_load(open(c.node("pg-2").conf))
    assert "zookeeper" in cfg and "etcd3" not in cfg and "bootstrap" not in cfg
    c.start()
    assert c.wait_leader(timeout=90) == "pg-1"
    wait_rows(c, {"pg-1": ("Leader", "running"), "pg-2": ("Replica", "running"),
                  "pg-3": ("Replica", "running")}, timeout=90)
    # Patroni's layout: leader and members ephemeral, each of its daemon's session
    leader = c.zk.stat(c.znode("leader"))
    members = {m: c.zk.stat(c.znode("members/" + m)) for m in ("pg-1", "pg-2", "pg-3")}
    assert leader.ephemeralOwner != 0
    assert members["pg-1"].ephemeralOwner == leader.ephemeralOwner
    assert len({s.ephemeralOwner for s in members.values()}) == 3
    assert c.zk.stat(c.znode("config")).ephemeralOwner == 0
    code, body = c.node("pg-1").rest("/patroni")
    assert code == 200 and body["role"] == "master"
    assert c.key("initialize") == body["database_system_identifier"]
    for name in ("pg-2", "pg-3"):
        poll(lambda name=name: c.node(name).rest("/replica")[0] == 200, 30,
             "/replica 200 on " + name)
    write_row(c.node("pg-1"), 1)
    wait_row_everywhere(c.nodes, 1)

    # a switchover by Debian's patronictl (kazoo)
    out = c.patronictl("switchover", "--leader", "pg-1", "--candidate", "pg-2", "--force",
                       timeout=120)
    assert 'Successfully switched over to "pg-2"' in out, out
    assert c.wait_leader(timeout=60) == "pg-2"
    wait_rows(c, {"pg-1": ("Replica", "running"), "pg-2": ("Leader", "running"),
                  "pg-3": ("Replica", "running")}, timeout=90)
    write_row(c.node("pg-2"), 2)
    wait_row_everywhere(c.nodes, 2)
    # pgkeelctl reads the same cluster through dcs_zookeeper.so (a ctl handle)
    def same_list():
        rc, ours, err = c.pgkeelctl("list", "-f", "json")
        assert rc == 0, err
        return json.loads(ours) == json.loads(c.patronictl("list", "-f", "json"))
    poll(same_list, 30, "pgkeelctl list == patronictl list on ZooKeeper")

    # the leader freezes: the server expires its session (ttl 10 s), the
    # leader znode goes with it and a replica is promoted
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
    assert took < 3 * 10, took
    write_row(c.node(new), 3)
    # the old leader wakes up without its session and rejoins as a replica
    wait_rows(c, {"pg-1": ("Leader" if new == "pg-1" else "Replica", "running"),
                  "pg-2": ("Replica", "running"),
                  "pg-3": ("Leader" if new == "pg-3" else "Replica", "running")}, timeout=120)
    wait_row_everywhere(c.nodes, 3)
    assert c.node("pg-2").psql("SELECT pg_is_in_recovery()") == "t"
    history = c.key("history")
    assert history is not None and history.startswith("[[1,"), history
