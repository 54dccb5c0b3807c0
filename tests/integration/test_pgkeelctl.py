"""pgkeelctl's read-only commands against a real 3-node pgkeel cluster
(tests/integration/ha_cluster.py: etcd 3.4, PostgreSQL 15), side by side with
Debian's patronictl 3.0.2 on the same cluster: `list` in every format, `-e`,
`topology` (pg-3 replicates from pg-2), `history` after a switchover, the
Sync Standby role under synchronous_mode, `version`; then pgkeel's own `why`
(a leader, a nofailover member, an asynchronous replica in synchronous mode,
a member whose daemon is frozen), --dcs-url with a configuration that has no
DCS section of its own, and bad input (exit 1 or 2 with a clear message).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import signal
import time

import pytest
import yaml

from ha_cluster import HaCluster, requirements, streaming_to, wait_healthy
from pg_instance import poll

pytestmark = requirements(patronictl=True, pgkeelctl=True)

SCOPE = "ctl-test"
TAGS = {"pg-2": {"dc": "east", "zone": "b"}, "pg-3": {"replicatefrom": "pg-2",
                                                       "nofailover": True}}


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3, scope=SCOPE, tags=TAGS) as c:
        c.start()
        c.wait_leader()
        # pg-3 cascades from pg-2 (replicatefrom), so not wait_healthy()
        poll(lambda: "pg-2" in streaming_to(c.node("pg-1")), 120, "pg-2 streaming from pg-1")
        poll(lambda: "pg-3" in streaming_to(c.node("pg-2")), 120, "pg-3 streaming from pg-2")
        yield c


def ctl_ok(c, *args, **kw):
    rc, out, err = c.pgkeelctl(*args, **kw)
    assert rc == 0, "pgkeelctl %s exited %d: %s%s" % (args, rc, out, err)
    return out


def same_as_patronictl(c, *args, timeout=30):
    """pgkeelctl and patronictl print the same text (polled: the cluster
    may move between the two reads, e.g. a lag figure)."""
    seen = {}

    def check():
        theirs = c.patronictl(*args)
        ours = ctl_ok(c, *args)
        seen["last"] = (ours, theirs)
        return ours == theirs
    try:
        poll(check, timeout, "pgkeelctl %s == patronictl %s" % (args, args))
    except AssertionError:
        ours, theirs = seen.get("last", ("", ""))
        raise AssertionError("pgkeelctl %s differs from patronictl:\n--- pgkeelctl\n%s"
                             "--- patronictl\n%s" % (args, ours, theirs))
    return seen["last"][0]


def test_list_like_patronictl(cluster):
    # members keys carry every field once each node ran a cycle with PostgreSQL up
    poll(lambda: all(json.loads(cluster.key("members/" + n.name) or "{}").get("timeline")
                     for n in cluster.nodes), 60, "member keys with timelines")
    out = same_as_patronictl(cluster, "list")
    assert "Cluster: %s" % SCOPE in out and "| Leader" in out
    assert "dc: east" in out and "zone: b" in out  # two tag lines: rules between rows
    for fmt in ("tsv", "json", "yaml"):
        same_as_patronictl(cluster, "list", "-f", fmt)
    same_as_patronictl(cluster, "list", "-e")
    out = same_as_patronictl(cluster, "topology")
    lines = [l for l in out.splitlines() if l.startswith("| ")]
    names = [l.split("|")[1][1:].rstrip() for l in lines[1:]]
    assert names == ["pg-1", "+ pg-2", "  + pg-3"], out
    same_as_patronictl(cluster, "history")  # no promotion yet: an empty table
    same_as_patronictl(cluster, "list", "no-such-cluster")
    rows = json.loads(ctl_ok(cluster, "list", "-f", "json"))
    assert {r["Member"] for r in rows} == {"pg-1", "pg-2", "pg-3"}
    # a timestamp first, then the table
    out = ctl_ok(cluster, "list", "-t")
    assert time.strftime("%Y-%m-%d", time.gmtime()) in out.splitlines()[0]


def test_list_is_fast(cluster):
    """Not a timing target (bench/ measures that): a sanity bound on one
    healthy cluster, generous enough for a sanitizer build."""
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        ctl_ok(cluster, "list")
        times.append(time.monotonic() - t0)
    times.sort()
    print("pgkeelctl list median %.1f ms" % (times[2] * 1000))
    assert times[2] < 2.0


def test_version(cluster):
    out = ctl_ok(cluster, "version", SCOPE)
    assert out.startswith("pgkeelctl version ")
    for n in cluster.nodes:
        assert "%s: Patroni 3.0.2 PostgreSQL 15." % n.name in out
    out = ctl_ok(cluster, "version", SCOPE, "pg-2")
    assert "pg-2:" in out and "pg-1:" not in out


def test_why(cluster):
    leader = cluster.leader_name()
    out = ctl_ok(cluster, "why")
    assert "%s: the leader" % leader in out
    block = out.split("pg-3:")[1]
    assert "tagged nofailover" in block
    out = ctl_ok(cluster, "why", "pg-2")
    assert "pg-2:\n  can be promoted" in out, out
    # a frozen daemon: its REST API does not answer (the DCS still lists it)
    node = cluster.node("pg-2")
    node.signal(signal.SIGSTOP)
    try:
        out = ctl_ok(cluster, "why", SCOPE, "pg-2", timeout=30)
        assert "REST API not reachable" in out, out
    finally:
        node.signal(signal.SIGCONT)
    rc, out, err = cluster.pgkeelctl("why", "nobody")
    assert rc == 1 and "nobody is not a member of cluster" in err


def test_sync_standby_role(cluster):
    cluster.patronictl("edit-config", "--force", "--set", "synchronous_mode=true")
    try:
        def sync_named():
            v = cluster.key("sync")
            return v and json.loads(v).get("sync_standby")
        standby = poll(sync_named, 60, "a synchronous standby in the sync key")
        out = same_as_patronictl(cluster, "list")
        assert "Sync Standby" in out
        others = [n.name for n in cluster.nodes
                  if n.name not in (standby, cluster.leader_name())]
        for name in others:
            out = ctl_ok(cluster, "why", name)
            assert "not a synchronous standby" in out, out
    finally:
        cluster.patronictl("edit-config", "--force", "--set", "synchronous_mode=false")
        poll(lambda: not (cluster.key("sync") and json.loads(cluster.key("sync")).get(
            "sync_standby")), 60, "the sync key emptied")


def test_history_after_switchover(cluster):
    leader = cluster.leader_name()
    cluster.patronictl("switchover", "--leader", leader, "--candidate", "pg-2", "--force")
    cluster.wait_leader(other_than=leader)
    wait_healthy(cluster)
    poll(lambda: cluster.key("history") not in (None, "", "[]"), 60, "a history line")
    out = same_as_patronictl(cluster, "history")
    assert "pg-2" in out
    for fmt in ("tsv", "json", "yaml"):
        same_as_patronictl(cluster, "history", "-f", fmt)
    same_as_patronictl(cluster, "list")


def test_dcs_url_and_short_config(cluster, tmp_path):
    """A configuration with only a namespace; the DCS from --dcs-url (and
    from $DCS_URL), the cluster name as an operand."""
    conf = tmp_path / "ctl.yml"
    conf.write_text(yaml.safe_dump({"namespace": "/db/"}))
    url = "etcd3://" + cluster.etcd.hosts.split(",")[0]
    ours = ctl_ok(cluster, "--dcs-url", url, "list", SCOPE, "-f", "json", conf=str(conf))
    theirs = ctl_ok(cluster, "list", "-f", "json")
    assert [r["Member"] for r in json.loads(ours)] == [r["Member"] for r in json.loads(theirs)]
    ours = ctl_ok(cluster, "list", SCOPE, conf=str(conf), env={"DCS_URL": url})
    assert "Cluster: %s" % SCOPE in ours
    # without a cluster name and without scope: a clear error
    rc, out, err = cluster.pgkeelctl("--dcs-url", url, "list", conf=str(conf))
    assert rc == 1 and "no cluster name" in err


def test_bad_input(cluster, tmp_path):
    rc, out, err = cluster.pgkeelctl("list", conf="/nonexistent/ctl.yml")
    assert rc == 1 and "Provided config file /nonexistent/ctl.yml not existing" in err
    rc, out, err = cluster.pgkeelctl("bogus")
    assert rc == 2 and "no such command 'bogus'" in err
    rc, out, err = cluster.pgkeelctl("list", "--bogus")
    assert rc == 2 and "No such option: --bogus" in err
    rc, out, err = cluster.pgkeelctl("list", "-f", "xml")
    assert rc == 2 and "'xml' is not one of" in err
    rc, out, err = cluster.pgkeelctl("--dcs-url", "mysql://x", "list")
    assert rc == 1 and "Unknown dcs scheme: mysql" in err
    nodcs = tmp_path / "nodcs.yml"
    nodcs.write_text("scope: %s\n" % SCOPE)
    rc, out, err = cluster.pgkeelctl("list", conf=str(nodcs))
    assert rc == 1 and "no DCS section" in err
    bad = tmp_path / "bad.yml"
    bad.write_text("scope: [unclosed\n")
    rc, out, err = cluster.pgkeelctl("list", conf=str(bad))
    assert rc == 1 and "bad.yml:" in err
    # an etcd nobody listens on: a clear DCS error within the deadline
    rc, out, err = cluster.pgkeelctl("--dcs-url", "etcd3://127.0.0.1:9", "list", SCOPE,
                                     timeout=60)
    assert rc == 1 and "Error:" in err
    assert ctl_ok(cluster, "--help").startswith("Usage: pgkeelctl")
    assert "Usage: pgkeelctl list" in ctl_ok(cluster, "list", "--help")
