"""Three things Patroni 3.0.2 does that the HA loop had left out, on one
2-node cluster shared by the module (etcd 3.4, PostgreSQL 15; ttl 10,
loop_wait 2, wal_level logical), in order:

1. hot_standby_feedback forcing: a permanent logical slot in the dynamic
   configuration turns it on in postgresql.conf and in PostgreSQL (SHOW) on
   both nodes (Patroni computes it as a replica would, whatever the role);
   without the slot it goes back off.
2. postgresql.pre_promote on pg-2: with the leader gone, pg-2 wins the race,
   the script (shlex words only, the daemon's environment) exits 1, nothing
   is promoted, the key is released and pg-2 sits out the race for ttl;
   then the script exits 0 and pg-2 is promoted.
3. single-user crash recovery: the leader's daemon and postmaster are
   SIGKILLed, the other node takes over, and the old leader's daemon comes
   back to a data directory "in production": it runs `postgres --single`
   as a task of its own, then rejoins (rewind if needed) and streams.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import copy
import os
import re
import signal

import pytest

from ha_cluster import BOOTSTRAP_DCS, HaCluster, fail_with_logs, healthy, in_recovery
from ha_cluster import requirements
from pg_instance import children_of, poll

TTL = 10
SLOT = {"gaps_cdc": {"type": "logical", "database": "postgres", "plugin": "test_decoding"}}
FENCE = """#!/bin/sh
# pre_promote for test_ha_gaps: records what it was given, exits with fence.rc
d=%(dir)s
{
  echo "argc=$#"
  for a in "$@"; do echo "arg=$a"; done
  echo "token=$FENCE_TOKEN"
} > "$d/fence.out"
echo run >> "$d/fence.runs"
exit "$(cat "$d/fence.rc")"
"""

pytestmark = requirements()


def own(node, path):
    os.chown(path, node.user.pw_uid, node.user.pw_gid)


@pytest.fixture(scope="module")
def cluster():
    dcs = copy.deepcopy(BOOTSTRAP_DCS)
    dcs["postgresql"]["parameters"]["wal_level"] = "logical"
    with HaCluster(2, scope="pgkeel-gaps", bootstrap_dcs=dcs) as c:
        n2 = c.node("pg-2")
        script = os.path.join(n2.dir, "fence.sh")
        with open(script, "w") as f:
            f.write(FENCE % {"dir": n2.dir})
        os.chmod(script, 0o755)
        set_fence(n2, 1)
        cfg = n2.config()
        cfg["postgresql"]["pre_promote"] = "%s 'fence arg' second" % script
        n2.write_config(cfg)
        n2.env["FENCE_TOKEN"] = "t-42"
        c.start()
        yield c


def set_fence(node, rc):
    path = os.path.join(node.dir, "fence.rc")
    with open(path, "w") as f:
        f.write("%d\n" % rc)
    own(node, path)


def fence_runs(node):
    try:
        with open(os.path.join(node.dir, "fence.runs")) as f:
            return len(f.read().split())
    except OSError:
        return 0


def conf_hsf(node):
    """hot_standby_feedback as postgresql.conf sets it (None: not set)."""
    with open(os.path.join(node.datadir, "postgresql.conf")) as f:
        m = re.findall(r"^hot_standby_feedback\s*=\s*'?(\w+)'?", f.read(), re.M)
    return m[-1] if m else None


def reaped(pid):
    """A killed postmaster, reparented to us (the cluster's subreaper) once its
    daemon died: reap it; True once it is gone."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # not ours (or reaped already)
        return not os.path.exists("/proc/%d" % pid)


def patch_config(c, node, body):
    code, out = node.rest("/config", "PATCH", body)
    if code != 200:
        fail_with_logs(c, "PATCH /config %r: %s %s" % (body, code, out))


def test_hot_standby_feedback_forced_by_permanent_logical_slots(cluster):
    c = cluster
    leader, (replica,) = healthy(c)
    for n in (leader, replica):
        assert conf_hsf(n) is None, n.name
        assert n.psql("SHOW hot_standby_feedback") == "off", n.name

    patch_config(c, leader, {"slots": SLOT})
    try:
        for n in (replica, leader):  # Patroni forces it as a replica would, on both
            poll(lambda: conf_hsf(n) == "on" and
                 n.psql("SHOW hot_standby_feedback") == "on", 30,
                 "hot_standby_feedback on in %s" % n.name)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    poll(lambda: leader.psql("SELECT slot_type FROM pg_replication_slots WHERE "
                             "slot_name = 'gaps_cdc'") == "logical", 30,
         "the permanent logical slot on the leader")
    assert "hot_standby_feedback forced on: permanent logical slots" in replica.log(10 ** 7)
    assert "hot_standby_feedback forced on" in leader.log(10 ** 7)

    patch_config(c, leader, {"slots": None})
    try:
        for n in (replica, leader):
            poll(lambda: conf_hsf(n) is None and
                 n.psql("SHOW hot_standby_feedback") == "off", 30,
                 "hot_standby_feedback off again in %s" % n.name)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    assert "hot_standby_feedback no longer forced on" in replica.log(10 ** 7)


def test_paused_replay_is_resumed(cluster):
    """Patroni's handle_parameter_change: outside maintenance mode a
    replica's paused WAL replay is resumed (PostgreSQL 14+ pauses it when the
    primary raises a parameter a hot standby must match)."""
    c = cluster
    leader, (replica,) = healthy(c)
    replica.psql("SELECT pg_catalog.pg_wal_replay_pause()")
    try:
        poll(lambda: "Resuming paused WAL replay for PostgreSQL 14+" in replica.log(10 ** 7)
             and replica.psql("SELECT pg_catalog.pg_is_wal_replay_paused()") == "f", 30,
             "pgkeel resuming the paused replay")
    except AssertionError as e:
        fail_with_logs(c, str(e))


def test_pre_promote_failure_releases_the_lock_then_success_promotes(cluster):
    c = cluster
    leader, (replica,) = healthy(c)
    if replica.name != "pg-2":
        pytest.skip("pg-2 (the node with pre_promote) is the leader")
    set_fence(replica, 1)
    runs = fence_runs(replica)
    leader.stop()  # SIGTERM: PostgreSQL stops, the key is released at once

    try:
        replica.wait_log("pre_promote script `", timeout=40)
        replica.wait_log("Promotion cancelled because the pre-promote script failed",
                         timeout=30)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    log = replica.log(10 ** 7)
    assert re.search(r"pre_promote script `[^`]*fence\.sh 'fence arg' second` exited with 1",
                     log), log[-3000:]
    assert "Releasing the leader key voluntarily because the pre-promote script failed" in log
    assert fence_runs(replica) == runs + 1
    with open(os.path.join(replica.dir, "fence.out")) as f:
        # shlex words only (no action/role/scope), the daemon's environment
        assert f.read().split("\n") == ["argc=2", "arg=fence arg", "arg=second",
                                        "token=t-42", ""]
    # not promoted, the key gone (nobody else may take it: pg-1 is down)
    assert in_recovery(replica) == "t"
    poll(lambda: c.leader_name() is None, 10, "the leader key released")
    try:
        replica.wait_log("backoff: skip leader race after pre_promote script failure",
                         timeout=15)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    assert in_recovery(replica) == "t"

    set_fence(replica, 0)
    try:
        poll(lambda: c.leader_name() == "pg-2" and in_recovery(replica) == "f", 60,
             "pg-2 promoted once pre_promote passes")
    except AssertionError as e:
        fail_with_logs(c, str(e))
    assert re.search(r"pre_promote script `[^`]*` exited with 0", replica.log(10 ** 7))
    assert fence_runs(replica) >= runs + 2
    healthy(c)  # pg-1 comes back as a replica


def test_crash_recovery_in_single_user_mode(cluster):
    c = cluster
    leader, (replica,) = healthy(c)
    pid = leader.postmaster_pid()
    assert pid is not None
    leader.kill()  # the daemon first, so nothing restarts PostgreSQL
    for p in [pid] + children_of(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    poll(lambda: reaped(pid), 10, "the killed postmaster reaped")
    try:
        poll(lambda: c.leader_name() == replica.name and in_recovery(replica) == "f",
             TTL * 4, "%s promoted" % replica.name)
    except AssertionError as e:
        fail_with_logs(c, str(e))

    mark = len(leader.log(10 ** 7))
    leader.start()
    try:
        leader.wait_log("crash recovery in a single user mode done: pg_controldata says "
                        "\"shut down\"", timeout=40)
        poll(lambda: leader.rest("/replica")[0] == 200 and in_recovery(leader) == "t", 60,
             "%s streaming again" % leader.name)
        healthy(c, timeout=60)
    except AssertionError as e:
        fail_with_logs(c, str(e))
    log = leader.log(10 ** 7)[mark:]
    assert "not available yet" not in log
    first = log.index("doing crash recovery in a single user mode")
    done = log.index("crash recovery in a single user mode done")
    start = min(i for i in (log.find("starting as a secondary"),
                            log.find("running pg_rewind from")) if i >= 0)
    assert first < done < start, log[-4000:]
