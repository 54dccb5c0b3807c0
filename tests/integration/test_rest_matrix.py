"""The REST status-code matrix side by side: a 3-node Patroni 3.0.2 cluster
(Debian's /usr/bin/patroni) and a 3-node pgkeel cluster, started from the
same configuration (tests/integration/ha_cluster.py) on one etcd 3.4 under
two scopes, are brought into the same states, and every endpoint is asked of
the same node of both (or of the node in the same role: the sync replica of
one against the sync replica of the other): the status codes must be equal,
and so must the JSON keys of /patroni, /cluster, /history and /config
(pgkeel adds "pgkeel_version" and the patroni object's "name") and the role
and state of /patroni and of /cluster's members.

States, in this order on the shared clusters: steady (a leader and two
streaming replicas); synchronous_mode on (PATCH /config), so one replica is
the sync standby and the other is async; both replicas lagging (maintenance
mode, as Patroni resumes a paused replay otherwise; replay paused with
pg_wal_replay_pause(), ~3 MB written on the leader until the leader's optime
in the DCS passes replayed + 1kB), asked ?lag=1kB and ?lag=100MB of every
health check; a standby cluster leader (a 1-node cluster per supervisor,
bootstrap.dcs.standby_cluster following its main cluster's leader, started
during the states above and stopped once compared); synchronous_mode off
again; the replica pg-2 tagged noloadbalance (the file rewritten, POST
/reload); paused (patronictl pause); paused with pg-2's PostgreSQL stopped;
then the DCS frozen (SIGSTOP of etcd, paused so that nobody demotes) once
every view expired, asking only what needs no DCS read.  Requests: every
health check (GET, HEAD, OPTIONS, ?lag=, ?tag_), the informational
endpoints, and the unsafe ones with bodies that are refused without effect
(bad filters, bad schedules, a switchover from a wrong leader, nothing to
delete, wrong methods).

Patroni's postmasters are this process's children (the clusters make it
their subreaper): the test reaps each one that exits, or Patroni, which
waits for the PID to vanish, would take a zombie for a running PostgreSQL.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import contextlib
import http.client
import json
import os
import signal
import subprocess
import threading

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
# every health check that reads ?lag=, asked in the lagging state
LAGGED = ["/replica?lag=1kB", "/replica?lag=100MB", "/read-only?lag=1kB",
          "/read-only?lag=100MB", "/async?lag=1kB", "/async?lag=100MB", "/sync?lag=1kB",
          "/sync?lag=100MB", "/read-only-sync?lag=1kB", "/read-only-sync?lag=100MB",
          "/?lag=1kB", "/health?lag=1kB", "/replica?lag=1kB&tag_dc=a"]
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
    """The keys compared, and the roles and states (of /cluster's members in
    role order: the sync replica's name may differ); drop: keys of /patroni and
    of /cluster's members left out."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return "not JSON"
    if path == "/patroni" and isinstance(doc, dict):
        doc.pop("pgkeel_version", None)
        doc.get("patroni", {}).pop("name", None)
        return sorted(k for k in doc if k not in drop), sorted(doc.get("patroni", {})), \
            doc.get("role"), doc.get("state")
    if path == "/cluster" and isinstance(doc, dict):
        members = doc.get("members", [])
        return sorted(doc), [sorted(k for k in m if k not in drop) for m in members], \
            sorted((str(m.get("role")), str(m.get("state"))) for m in members)
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


def compare(state, ours, theirs, gets=None, others=None, drop=(), pairs=None):
    """Every request's differences (state, node, request, pgkeel, Patroni); pairs:
    the (pgkeel node name, Patroni node name) to compare, by default every node
    against its namesake; drop: keys() leaves these out."""
    diff = []
    for a_name, b_name in pairs or [(n.name, n.name) for n in ours.nodes]:
        a = matrix(ours.node(a_name), gets, others, drop)
        b = matrix(theirs.node(b_name), gets, others, drop)
        name = a_name if a_name == b_name else "%s/%s" % (a_name, b_name)
        diff += [(state, name, k, a[k], b[k]) for k in a if a[k] != b[k]]
    return diff


def both(ours, theirs, what, pred, timeout=60):
    try:
        poll(lambda: pred(ours) and pred(theirs), timeout, what)
    except AssertionError as e:
        raise AssertionError("%s; pgkeel: %s, Patroni: %s" % (
            e, ask(ours.nodes[-1], "GET", "/patroni"),
            ask(theirs.nodes[-1], "GET", "/patroni")))


@contextlib.contextmanager
def daemon(patroni):
    """Inside: the helpers start Patroni's daemon on the same files (when patroni)."""
    saved = ha_cluster.PGKEEL
    if patroni:
        ha_cluster.PGKEEL = PATRONI
    try:
        yield
    finally:
        ha_cluster.PGKEEL = saved


@pytest.fixture(scope="module")
def clusters():
    etcd = EtcdCluster(1)
    etcd.start(30)
    try:
        with HaCluster(3, scope="matrix-pgkeel", etcd=etcd) as ours, \
                HaCluster(3, scope="matrix-patroni", etcd=etcd) as theirs:
            for c in (ours, theirs):
                for n in c.nodes:
                    n.write_config(dict(n.config(), tags={"dc": "a"}))
            for c, patroni in ((ours, False), (theirs, True)):
                with daemon(patroni):
                    c.start()
            for c, patroni in ((ours, False), (theirs, True)):
                with daemon(patroni):  # (it restarts a daemon that exited)
                    # the states below take pg-1 as the leader
                    assert wait_healthy(c, timeout=120) == "pg-1"
            yield ours, theirs
    finally:
        etcd.stop()


def pg_stop(node):
    """pg_ctl stop; the postmaster reaped if it was ours (see reaped())."""
    kw = {}
    if os.geteuid() == 0:
        kw = dict(user=node.user.pw_uid, group=node.user.pw_gid, extra_groups=[])
    pid = node.postmaster_pid()
    assert pid is not None, node.name
    subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-m", "fast", "-w", "-D",
                    node.datadir], check=True, timeout=60, stdout=subprocess.DEVNULL, **kw)
    poll(lambda: reaped(pid), 30, "the postmaster of %s reaped" % node.name)


def settled(c):
    """Every member key complete: running, with a timeline (a replica's comes later)."""
    code, raw = ask(c.node("pg-1"), "GET", "/cluster")
    return code == 200 and all(m.get("state") == "running" and "timeline" in m
                               for m in json.loads(raw)["members"])


def set_pause(ours, theirs, pause):
    """PATCH /config {"pause": ...} as patronictl pause/resume does; until every
    node's view has it."""
    for c in (ours, theirs):
        assert ask(c.node("pg-1"), "PATCH", "/config", {"pause": pause})[0] == 200
    both(ours, theirs, "pause %s seen by every node" % pause,
         lambda c: all(bool(n.rest("/patroni")[1].get("pause")) == bool(pause) for n in c.nodes))


def reaped(pid):
    """Reap pid if it is a child of this process that exited: Patroni's postmasters
    are (its launcher exits and the clusters make this process their subreaper),
    and Patroni waits for its postmaster's PID to vanish, which a zombie never
    does.  True once reaped or when pid is no child of ours (pgkeel's postmasters)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


@contextlib.contextmanager
def reaping(pids):
    """Reap pids (see reaped()) as they exit, while inside the block."""
    done = threading.Event()

    def run():
        left = set(pids)
        while left and not done.wait(0.05):  # ends with the block
            left = {pid for pid in left if not reaped(pid)}
    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join(10)


def replicas(c):
    return [n for n in c.nodes if n.name != "pg-1"]


def sync_pair(c):
    """(sync replica's name, async replica's name) once the sync key names one of
    the replicas and each answers for its role, else None."""
    raw = c.key("sync")
    try:
        sync = json.loads(raw).get("sync_standby") if raw else None
    except ValueError:
        return None
    names = [n.name for n in replicas(c)]
    if sync not in names:
        return None
    other = next(n for n in names if n != sync)
    if ask(c.node(sync), "GET", "/sync")[0] != 200 or \
            ask(c.node(other), "GET", "/async")[0] != 200:
        return None
    return sync, other


def replay(c, what):
    """Pause or resume WAL replay on c's replicas."""
    for n in replicas(c):
        assert n.psql("SELECT pg_wal_replay_%s()" % what) is not None, (n.name, what)


def standby_of(c, etcd, scope):
    """A 1-node standby cluster (not started) following c's leader pg-1."""
    dcs = dict(ha_cluster.BOOTSTRAP_DCS, standby_cluster={
        "host": "127.0.0.1", "port": c.node("pg-1").pg_port,
        "create_replica_methods": ["basebackup"]})
    s = HaCluster(1, scope=scope, etcd=etcd, bootstrap_dcs=dcs)
    n = s.node("pg-1")
    n.write_config(dict(n.config(), tags={"dc": "a"}))
    return s


def standby_leading(c):
    n = c.node("pg-1")
    return ask(n, "GET", "/standby-leader")[0] == 200 and settled(c) and \
        n.psql("SELECT pg_is_in_recovery()") == "t"


def sync_and_lag_states(ours, theirs):
    """synchronous_mode on: the sync and the async replica, then both lagging."""
    for c in (ours, theirs):
        assert ask(c.node("pg-1"), "PATCH", "/config", {"synchronous_mode": True})[0] == 200
    both(ours, theirs, "a sync and an async replica", sync_pair)
    both(ours, theirs, "complete member keys", settled)
    a, b = sync_pair(ours), sync_pair(theirs)
    pairs = [("pg-1", "pg-1"), (a[0], b[0]), (a[1], b[1])]
    diff = compare("synchronous_mode", ours, theirs, pairs=pairs)

    # both replicas lagging: replay paused, ~3 MB written on the leader, until the
    # leader's optime every node reads from the DCS is past replayed + 1kB.  In
    # maintenance mode, as Patroni resumes a paused replay on every cycle otherwise
    # (PostgreSQL 14+ pauses it on a parameter change); the health checks read the
    # pause only when there is no cluster view
    set_pause(ours, theirs, True)
    for c in (ours, theirs):
        replay(c, "pause")
        assert c.node("pg-1").psql(
            "CREATE TABLE lagfill AS SELECT g, repeat('x', 200) AS pad "
            "FROM generate_series(1, 10000) g") is not None
    both(ours, theirs, "both replicas lagging by more than 1kB",
         lambda c: all(ask(n, "GET", "/replica?lag=1kB")[0] == 503 for n in replicas(c)))
    diff += compare("lagging, paused", ours, theirs, gets=GETS + LAGGED, others=[], pairs=pairs)
    for c in (ours, theirs):
        replay(c, "resume")
    both(ours, theirs, "the replicas caught up",
         lambda c: all(ask(n, "GET", "/replica?lag=1MB")[0] == 200 for n in replicas(c)))
    set_pause(ours, theirs, None)
    return diff


def test_matrix_side_by_side(clusters):
    ours, theirs = clusters
    both(ours, theirs, "complete member keys", settled)
    diff = compare("steady", ours, theirs)

    # the standby clusters bootstrap (a base backup of their main cluster's
    # leader) while the sync and lagging states are compared
    standby = [standby_of(ours, ours.etcd, "matrix-pgkeel-standby"),
               standby_of(theirs, ours.etcd, "matrix-patroni-standby")]
    try:
        for c, patroni in zip(standby, (False, True)):
            with daemon(patroni):
                c.start()
        diff += sync_and_lag_states(ours, theirs)
        both(*standby, "a standby leader", standby_leading, timeout=120)
        diff += compare("standby cluster leader", *standby)
    finally:
        with reaping([pid for pid in (n.postmaster_pid() for c in standby for n in c.nodes)
                      if pid is not None]):
            for c in standby:
                c.stop()

    # synchronous_mode off again: both replicas async, the sync key deleted
    for c in (ours, theirs):
        assert ask(c.node("pg-1"), "PATCH", "/config", {"synchronous_mode": False})[0] == 200
    both(ours, theirs, "no sync replica",
         lambda c: all(ask(n, "GET", "/sync")[0] == 503 and ask(n, "GET", "/async")[0] == 200
                       for n in replicas(c)) and
         all("sync_standby" not in n.rest("/patroni")[1] for n in replicas(c)) and
         not c.key("sync") and
         all(m["role"] != "sync_standby" for n in c.nodes
             for m in n.rest("/cluster")[1]["members"]))

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
        pg_stop(c.node("pg-2"))  # (its postmaster reaped: Patroni sees it gone)
    both(ours, theirs, "pg-2's PostgreSQL seen down",
         lambda c: c.node("pg-2").rest("/patroni")[1].get("state") in ("stopped", "unknown",
                                                                       "crashed"))
    diff += compare("paused, replica stopped", ours, theirs)

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
        # (with no leader in its view, Patroni asks a replica's timeline over a
        # replication connection to itself on every status request, whose
        # walsender the next request's /patroni may list under "replication")
        diff += compare("paused, DCS frozen", ours, theirs,
                        gets=[g for g in GETS if g not in ("/cluster", "/history", "/config")],
                        others=[o for o in OTHERS if o[0] in ("HEAD", "OPTIONS", "GET")],
                        drop=("replication",))
    finally:
        etcd.send_signal(signal.SIGCONT)
    assert not diff, "%d differences (state, node, request, pgkeel, Patroni):\n%s" % (
        len(diff), "\n".join(map(repr, diff)))
