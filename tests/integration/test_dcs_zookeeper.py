"""The DCS conformance suite (dcs_suite.py) on the ZooKeeper backend, against
real ZooKeeper 3.8 from Debian's zookeeper package on loopback, and the
backend on a 3-server ensemble.

- every scenario on a standalone server under /db/ (one JVM for the module);
  "unavailable" with the server frozen (SIGSTOP) and killed;
- the layout is Patroni's: znodes under /db/<scope>/, leader and member
  ephemeral and owned by the session the lease reports, parents persistent;
- the session timeout the server negotiated is what the lease reports, and a
  server that clamps it below ttl is warned about;
- a lost session: the old holder learns it lost the lock (CONFLICT);
- on a 3-server ensemble: killing one server (the one the holder's session
  uses, the worst case) while a member renews its lock and another reads
  does not show; freezing all three makes every op UNAVAILABLE within its
  deadline, and the backend serves again once they are thawed.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import dcs_suite
from zk_cluster import ZkCluster, have_zookeeper, poll

ZOOKEEPER = os.path.join(dcs_suite.BUILD, "backends", "zookeeper", ".libs", "dcs_zookeeper.so")
DCS_TOOL = os.path.join(dcs_suite.BUILD, "tests", "tools", "dcs_tool")

pytestmark = [
    pytest.mark.skipif(not have_zookeeper(), reason="Debian's zookeeper is not installed"),
    pytest.mark.skipif(not os.path.exists(ZOOKEEPER), reason="dcs_zookeeper.so not built"),
]


def have_kazoo():
    try:
        import kazoo  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def zk():
    cluster = ZkCluster(size=1).start()
    tmp = tempfile.mkdtemp(prefix="pgkeel-conf-zk-")
    os.chmod(tmp, 0o755)
    try:
        backends = dcs_suite.install_backend(ZOOKEEPER, "zookeeper", tmp)
        suite = dcs_suite.Suite(backends, "zookeeper", json.dumps({"hosts": [cluster.hosts]}),
                                namespace="/db/", ttl=3, loop_wait=1, retry_timeout=1)
        yield suite, cluster
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def frozen(cluster):
    @contextlib.contextmanager
    def outage():
        s = cluster.servers[0]
        cluster.close_kazoo()
        cluster.freeze(s)
        try:
            yield
        finally:
            cluster.thaw(s)
    return outage


def killed(cluster):
    @contextlib.contextmanager
    def outage():
        s = cluster.servers[0]
        cluster.close_kazoo()
        cluster.kill(s)
        try:
            yield
        finally:
            cluster.restart(s)
    return outage


@pytest.mark.parametrize("scenario", [s for s in dcs_suite.SCENARIOS
                                      if s not in dcs_suite.OUTAGE_SCENARIOS])
def test_conformance(zk, scenario):
    suite, cluster = zk
    dcs_suite.run_scenario(suite, scenario)


def tool(suite, scope, *cmd, ttl=30, check=True, timeout=60):
    out = subprocess.run(
        [DCS_TOOL, "--backend-dir", suite.backend_dir, "--backend", "zookeeper",
         "--options", suite.options_json, "--namespace", "/db/", "--scope", scope,
         "--ttl", str(ttl)] + list(cmd),
        capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.skipif(not have_kazoo(), reason="python3-kazoo is not installed")
def test_layout_is_patronis(zk):
    """seed-patroni writes a two-member cluster; kazoo sees Patroni's znodes:
    persistent parents with empty data, leader and members ephemeral, owned
    by the session the lease names, living on after the handles finished
    (fini does not close the session: the znodes expire with it)."""
    suite, cluster = zk
    scope = dcs_suite.unique_scope("layout")
    out = tool(suite, scope, "seed-patroni", ttl=30).stdout
    lease_owner = out.split("leader lease ")[1].split(",")[0]
    granted = int(out.split("granted ")[1].split(" ms")[0])
    assert granted == 30000, out
    base = "/db/%s" % scope
    assert cluster.children(base) == sorted(
        ["config", "failover", "history", "initialize", "leader", "members", "status",
         "sync"])
    assert cluster.children(base + "/members") == ["pg-1", "pg-2"]
    for parent in ("/db", base, base + "/members"):
        st = cluster.stat(parent)
        assert st.ephemeralOwner == 0 and st.dataLength == 0, parent
    leader = cluster.stat(base + "/leader")
    assert cluster.get(base + "/leader") == "pg-2"
    assert str(leader.ephemeralOwner) == lease_owner
    assert cluster.stat(base + "/members/pg-2").ephemeralOwner == leader.ephemeralOwner
    assert cluster.stat(base + "/members/pg-1").ephemeralOwner not in (0, leader.ephemeralOwner)
    for key in ("config", "initialize", "history", "sync", "failover", "status"):
        assert cluster.stat(base + "/" + key).ephemeralOwner == 0, key
    assert json.loads(cluster.get(base + "/config"))["ttl"] == 30
    assert cluster.get(base + "/initialize") == "7300000000000000001"
    assert json.loads(cluster.get(base + "/members/pg-1"))["tags"] == {"dc": "a"}
    # what load_cluster reports is what the store holds
    raw = json.loads(tool(suite, scope, "dump").stdout.splitlines()[0])
    for key in ("leader", "members/pg-1", "members/pg-2", "config", "sync"):
        st = cluster.stat(base + "/" + key)
        assert raw[key]["value"] == cluster.get(base + "/" + key), key
        assert raw[key]["version"] == str(st.version), key
        assert (raw[key]["owner"] or "0") == str(st.ephemeralOwner), key
    cluster.kazoo().delete(base, recursive=True)


def test_short_granted_timeout_is_reported_and_warned():
    """A server whose maxSessionTimeout (2 s) is below ttl (3 s): the lease
    reports the 2 s granted (the suite's lease check then fails on it, which
    is the point) and the backend warns that the lock may vanish early."""
    cluster = ZkCluster(size=1, session_ms=(1000, 2000)).start()
    tmp = tempfile.mkdtemp(prefix="pgkeel-zk-short-")
    os.chmod(tmp, 0o755)
    try:
        backends = dcs_suite.install_backend(ZOOKEEPER, "zookeeper", tmp)
        suite = dcs_suite.Suite(backends, "zookeeper", json.dumps({"hosts": cluster.hosts}),
                                ttl=3, loop_wait=1, retry_timeout=1)
        proc = subprocess.run(suite.args("lease", dcs_suite.unique_scope("short")),
                              capture_output=True, text=True, timeout=120)
        print(proc.stdout, proc.stderr)
        assert proc.returncode == 1
        assert "reported granted_ttl_ms 2000, not close to the 3000 asked for" in proc.stdout
        assert "granted a session timeout of 2000 ms, shorter than the ttl of 3 s" \
            in proc.stderr
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_unavailable_when_frozen(zk):
    suite, cluster = zk
    dcs_suite.run_scenario(suite, "unavailable", outage=frozen(cluster))


def test_unavailable_when_killed(zk):
    suite, cluster = zk
    dcs_suite.run_scenario(suite, "unavailable", outage=killed(cluster))
    # and it serves again once ZooKeeper is back
    suite.run("race")


# ---------------------------------------------------------------- 3-server ensemble

@pytest.fixture(scope="module")
def ensemble():
    cluster = ZkCluster(size=3).start()
    tmp = tempfile.mkdtemp(prefix="pgkeel-zk3-")
    os.chmod(tmp, 0o755)
    try:
        backends = dcs_suite.install_backend(ZOOKEEPER, "zookeeper", tmp)
        yield cluster, backends
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_ensemble_killing_one_server_is_invisible(ensemble):
    """"lease" renews a lock every loop_wait for more than ttl while another
    handle reads every 200 ms and must always see the holder: any error (or a
    lapse of the lock) fails it.  The ensemble's leader is killed meanwhile
    (an election, and every session on it moves to another server)."""
    cluster, backends = ensemble
    suite = dcs_suite.Suite(backends, "zookeeper", json.dumps({"hosts": cluster.hosts}),
                            namespace="/db/", ttl=6, loop_wait=1, retry_timeout=2)
    scope = dcs_suite.unique_scope("kill-one")
    proc = subprocess.Popen(suite.args("lease", scope), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        victim = poll(cluster.leader, 10, "a ZooKeeper leader")
        # the holder has its lock once the scenario printed its first renewal
        line = ""
        deadline = time.monotonic() + 30
        while "granted_ttl_ms" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
        assert "granted_ttl_ms" in line, line + proc.stderr.read()
        cluster.kill(victim)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(out, err)
    assert proc.returncode == 0, "lease scenario failed with a server killed:\n" + out + err
    assert "scenario passed" in out
    # the two survivors elected a leader and still serve
    poll(lambda: cluster.leader() is not None, 30, "a new ZooKeeper leader")
    suite.run("race")
    cluster.restart(victim)


def test_ensemble_frozen_is_unavailable_in_time(ensemble):
    """SIGSTOP of all three servers: every op answers UNAVAILABLE by its
    deadline (the suite's "unavailable" scenario), and after SIGCONT the
    backend serves again."""
    cluster, backends = ensemble
    suite = dcs_suite.Suite(backends, "zookeeper", json.dumps({"hosts": cluster.hosts}),
                            namespace="/db/", ttl=4, loop_wait=1, retry_timeout=1)

    @contextlib.contextmanager
    def outage():
        cluster.close_kazoo()
        for s in cluster.servers:
            cluster.freeze(s)
        try:
            yield
        finally:
            for s in cluster.servers:
                cluster.thaw(s)

    dcs_suite.run_scenario(suite, "unavailable", outage=outage)
    poll(lambda: cluster.leader() is not None, 30, "the ensemble serving after SIGCONT")
    suite.run("race")
