"""The REST status-code matrix side by side: a 2-node Patroni 3.0.2 cluster
(Debian's /usr/bin/patroni) and a 2-node pgkeel cluster, started from the
same configuration (tests/integration/ha_cluster.py) on one etcd 3.4 under
two scopes, are brought into the same states, and every endpoint is asked of
the same node of both: the status codes must be equal, and so must the JSON
keys of /patroni, /cluster, /history and /config (pgkeel adds
"pgkeel_version" and the patroni object's "name").

States: steady (a leader and a streaming replica); the replica tagged
noloadbalance (the file rewritten, POST /reload); paused (patronictl pause);
paused with the replica's PostgreSQL stopped; then the DCS frozen (SIGSTOP
of etcd, paused so that nobody demotes) once both views expired, asking
only what needs no DCS read.  Requests: every health check
(GET, HEAD, OPTIONS, ?lag=, ?tag_), the informational endpoints, and the
unsafe ones with bodies that are refused without effect (bad filters, bad
schedules, a switchover from a wrong leader, nothing to delete, wrong
methods).  A standby cluster and a lagging replica are not reproduced here
(test_rest.py's in-process comparison covers those states).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import http.client
import json
import os
import signal
import subprocess

import pytest

import ha_cluster
from etcd_cluster import ETCD, EtcdCluster
from ha_cluster import HaCluster, have_pgkeel, wait_healthy
from pg_instance import PG_BIN, have_postgres, poll

PATRONI = "/usr/bin/patroni"

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not os.access(PATRONI, os.X_OK),
                       reason="Debian's patroni package not installed"),
]

GETS = ["/", "/primary", "/master", "/read-write", "/leader", "/standby-leader",
        "/standby_leader", "/replica", "/replica?lag=1MB", "/replica?tag_dc=x", "/read-only",
        "/read-only-sync", "/sync", "/async", "/health", "/liveness", "/readiness", "/patroni",
        "/cluster", "/history", "/config", "/metrics", "/failsafe", "/foo"]
OTHERS = [
    ("HEAD", "/", None), ("HEAD", "/replica", None), ("OPTIONS", "/leader", None),
    ("POST", "/restart", {"role": "x"}), ("POST", "/restart", {"schedule": "soon"}),
    ("POST", "/restart", {"timeout": 0}), ("DELETE", "/restart", None),
    ("DELETE", "/switchover", None), ("POST", "/switchover", {"candidate": "pg-2"}),
    ("POST", "/switchover", {"leader": "nobody", "candidate": "pg-2"}),
    ("POST", "/failover", {"leader": "pg-1"}), ("PATCH", "/config", {}),
    ("PUT", "/foo", {"a": 1}), ("POST", "/failsafe", {"name": "x"}),
    ("POST", "/sigterm", None), ("POST", "/citus", {}), ("GET", "/readiness?x=1", None),
]
KEYED = ("/patroni", "/cluster", "/history", "/config")


def ask(node, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", node.api_port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data)
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e).encode()
    finally:
        conn.close()


def keys(path, raw, drop=()):
    try:
        doc = json.loads(raw)
    except ValueError:
        return "not JSON"
    if path == "/patroni" and isinstance(doc, dict):
        doc.pop("pgkeel_version", None)
        doc.get("patroni", {}).pop("name", None)
        return sorted(doc), sorted(doc.get("patroni", {}))
    if path == "/cluster" and isinstance(doc, dict):
        return sorted(doc), [sorted(k for k in m if k not in drop)
                             for m in doc.get("members", [])]
    if isinstance(doc, dict):
        return sorted(doc)
    return type(doc).__name__, len(doc)


def matrix(node, gets=None, others=None, drop=()):
    out = {}
    for path in GETS if gets is None else gets:
        code, raw = ask(node, "GET", path)
        out["GET " + path] = (code, keys(path, raw, drop)) if path in KEYED and code == 200 \
            else code
    for method, path, body in OTHERS if others is None else others:
        out["%s %s %s" % (method, path, json.dumps(body))] = ask(node, method, path, body)[0]
    return out


def compare(state, ours, theirs, quirks=(), gets=None, others=None, drop=()):
    """Every request's differences but the quirks (node, request, pgkeel, Patroni);
    drop: member keys /cluster's comparison leaves out."""
    diff = []
    for name in ("pg-1", "pg-2"):
        a = matrix(ours.node(name), gets, others, drop)
        b = matrix(theirs.node(name), gets, others, drop)
        diff += [(state, name, k, a[k], b[k]) for k in a
                 if a[k] != b[k] and (name, k, a[k], b[k]) not in quirks]
    return diff


def both(ours, theirs, what, pred, timeout=60):
    try:
        poll(lambda: pred(ours) and pred(theirs), timeout, what)
    except AssertionError as e:
        raise AssertionError("%s; pgkeel: %s, Patroni: %s" % (
            e, ask(ours.node("pg-2"), "GET", "/patroni"),
            ask(theirs.node("pg-2"), "GET", "/patroni")))


@pytest.fixture(scope="module")
def clusters():
    etcd = EtcdCluster(1)
    etcd.start(30)
    try:
        with HaCluster(2, scope="matrix-pgkeel", etcd=etcd) as ours, \
                HaCluster(2, scope="matrix-patroni", etcd=etcd) as theirs:
            for c in (ours, theirs):
                for n in c.nodes:
                    n.write_config(dict(n.config(), tags={"dc": "a"}))
            ours.start()
            saved = ha_cluster.PGKEEL
            ha_cluster.PGKEEL = PATRONI  # the same files, Patroni's daemon
            try:
                theirs.start()
            finally:
                ha_cluster.PGKEEL = saved
            for c in (ours, theirs):
                wait_healthy(c, timeout=120)
            yield ours, theirs
    finally:
        etcd.stop()


def pg_stop(node):
    kw = {}
    if os.geteuid() == 0:
        kw = dict(user=node.user.pw_uid, group=node.user.pw_gid, extra_groups=[])
    subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-m", "fast", "-w", "-D",
                    node.datadir], check=True, timeout=60, stdout=subprocess.DEVNULL, **kw)


def settled(c):
    """Both member keys complete: running, with a timeline (a replica's comes later)."""
    code, raw = ask(c.node("pg-1"), "GET", "/cluster")
    return code == 200 and all(m.get("state") == "running" and "timeline" in m
                               for m in json.loads(raw)["members"])


def test_matrix_side_by_side(clusters):
    ours, theirs = clusters
    both(ours, theirs, "complete member keys", settled)
    diff = compare("steady", ours, theirs)

    # the replica tagged noloadbalance: the file rewritten, POST /reload
    for c in (ours, theirs):
        n = c.node("pg-2")
        n.write_config(dict(n.config(), tags={"dc": "a", "noloadbalance": True}))
        assert ask(n, "POST", "/reload") == (202, b"reload scheduled")
    both(ours, theirs, "pg-2 out of load balancing",
         lambda c: ask(c.node("pg-2"), "GET", "/replica")[0] == 503)
    diff += compare("noloadbalance", ours, theirs)

    for c in (ours, theirs):
        assert "Success: cluster management is paused" in c.patronictl("pause", "--wait")
    both(ours, theirs, "pause seen by both nodes",
         lambda c: all(n.rest("/patroni")[1].get("pause") for n in c.nodes))
    diff += compare("paused", ours, theirs)

    for c in (ours, theirs):
        pg_stop(c.node("pg-2"))
    # (Patroni keeps its state "running" while it has not reaped the postmaster,
    # and reports "unknown"; pgkeel reports "crashed")
    both(ours, theirs, "pg-2's PostgreSQL seen down",
         lambda c: c.node("pg-2").rest("/patroni")[1].get("state") in ("stopped", "unknown",
                                                                       "crashed"))
    # Patroni 3.0.2 has not noticed that its postmaster exited (it still
    # calls its state "running"), so its /readiness stays 200 and its member
    # key keeps the timeline
    quirks = [("pg-2", k, 503, 200) for k in ("GET /readiness", "GET /readiness?x=1 null")]
    diff += compare("paused, replica stopped", ours, theirs, quirks, drop=("timeline",))

    # the DCS frozen (paused: nobody demotes), once both views expired (ttl);
    # only requests that need no DCS read (Patroni's would hang for retry_timeout)
    etcd = ours.etcd.members[0].proc
    etcd.send_signal(signal.SIGSTOP)
    try:
        # the views expire at the last read + ttl, the locks at the last renewal +
        # ttl, a moment later: both gone on both sides
        both(ours, theirs, "the cluster views and the leader locks expired",
             lambda c: all(n.rest("/patroni")[1].get("cluster_unlocked") for n in c.nodes)
             and ask(c.node("pg-1"), "GET", "/readiness")[0] == 503, timeout=40)
        diff += compare("paused, DCS frozen", ours, theirs, quirks,
                        gets=[g for g in GETS if g not in ("/cluster", "/history", "/config")],
                        others=[o for o in OTHERS if o[0] in ("HEAD", "OPTIONS", "GET")])
    finally:
        etcd.send_signal(signal.SIGCONT)
    assert not diff, "%d differences (state, node, request, pgkeel, Patroni):\n%s" % (
        len(diff), "\n".join(map(repr, diff)))
