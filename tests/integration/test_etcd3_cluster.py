"""The etcd3 backend on a 3-member etcd cluster (loopback):

- killing one member (the raft leader, the worst case) while a member renews
  its lock and another one reads: no error reaches the HA layer;
- freezing (SIGSTOP) the member that serves a handle's watch, then changing
  the leader key through another member: the watch recovers and reports the
  change within ttl.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import dcs_suite
from etcd_cluster import EtcdCluster, poll

ETCD3 = os.path.join(dcs_suite.BUILD, "backends", "etcd3", ".libs", "dcs_etcd3.so")
DCS_TOOL = os.path.join(dcs_suite.BUILD, "tests", "tools", "dcs_tool")

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/etcd"),
                                reason="etcd-server is not installed")


@pytest.fixture
def cluster3():
    cluster = EtcdCluster(size=3).start()
    tmp = tempfile.mkdtemp(prefix="pgkeel-etcd3-cluster-")
    os.chmod(tmp, 0o755)
    try:
        backends = dcs_suite.install_backend(ETCD3, "etcd3", tmp)
        yield cluster, backends
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def raft_leader(cluster):
    for m in cluster.members:
        try:
            status = cluster.rpc("/maintenance/status", {}, m)
        except OSError:
            continue
        if status.get("leader") == status.get("header", {}).get("member_id"):
            return m
    return None


def test_killing_one_member_is_invisible(cluster3):
    cluster, backends = cluster3
    suite = dcs_suite.Suite(backends, "etcd3", json.dumps({"hosts": cluster.hosts}),
                            namespace="/db/", ttl=5, loop_wait=1, retry_timeout=2)
    scope = dcs_suite.unique_scope("kill-one")
    # "lease" renews a lock every loop_wait for more than ttl while another
    # handle reads every 200 ms and must always see the holder: any error
    # (or a lapse of the lock) fails it.
    proc = subprocess.Popen(suite.args("lease", scope), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        victim = poll(lambda: raft_leader(cluster), 10, "a raft leader")
        time.sleep(0.5)  # let the scenario get going before the fault
        cluster.kill(victim)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(out, err)
    assert proc.returncode == 0, "lease scenario failed with a member killed:\n" + out + err
    assert "scenario passed" in out
    # the survivors elected a new leader and still serve
    poll(lambda: raft_leader(cluster) is not None, 10, "a new raft leader")
    suite.run("race")


def test_watch_recovers_from_a_frozen_member(cluster3):
    cluster, backends = cluster3
    ttl = 10
    scope = dcs_suite.unique_scope("watch-freeze")
    # freeze a follower, so the cluster keeps its raft leader and only the
    # watching handle's member goes silent
    leader = poll(lambda: raft_leader(cluster), 10, "a raft leader")
    first = next(m for m in cluster.members if m is not leader)
    others = [leader] + [m for m in cluster.members if m is not leader and m is not first]
    # the watching handle lists the member to be frozen first: it serves the watch
    hosts = ",".join([first.hostport] + [m.hostport for m in others])
    cluster.put("/db/%s/leader" % scope, "pg-old", member=others[0])
    proc = subprocess.Popen(
        [DCS_TOOL, "--backend-dir", backends, "--backend", "etcd3",
         "--options", json.dumps({"hosts": hosts}), "--namespace", "/db/",
         "--scope", scope, "--ttl", str(ttl), "--loop-wait", "2", "--retry-timeout", "3",
         "watch-wait=%d" % ((ttl + 20) * 1000)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("armed leader=pg-old"), line + proc.stderr.read()
        cluster.freeze(first)
        t0 = time.monotonic()

        def put_new():
            try:
                cluster.put("/db/%s/leader" % scope, "pg-new", member=others[0])
                return True
            except OSError:
                return False
        poll(put_new, ttl, "the leader key to change through another member")
        out, err = proc.communicate(timeout=ttl + 30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        cluster.thaw(first)
    print(out, err)
    assert proc.returncode == 0, "the watch never reported the change:\n" + out + err
    assert "leader=pg-new" in out
    assert elapsed < ttl, "reported after %.1f s, ttl is %d s" % (elapsed, ttl)
