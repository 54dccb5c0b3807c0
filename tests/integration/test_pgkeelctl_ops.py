"""pgkeelctl's cluster operations against a real 3-node pgkeel cluster
(tests/integration/ha_cluster.py: etcd 3.4, PostgreSQL 15, the REST API
behind basic auth): switchover, failover, restart, reload, reinit, flush,
pause and resume (ctl/cmd_switchover.c, cmd_member.c, cmd_pause.c).

pgkeelctl reads pg-1's own configuration file (its etcd, scope and
restapi.authentication), as an operator runs it.  One cluster for the
module; the tests run in file order and each leaves it healthy.

Bad input (unknown member, candidate equal to the leader, --leader not the
leader, no healthy candidate, scheduling in pause, a bad --scheduled value,
a bad role, ...) must print a clear message, exit 1 (2 for usage) and leave
the DCS keys failover, config and leader as they were.  Prompts are fed on
stdin: "N" changes nothing, "y" switches over.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os

import pytest
import yaml

from ha_cluster import HaCluster, requirements, wait_healthy
from pg_instance import free_port, poll

pytestmark = requirements(pgkeelctl=True)

SCOPE = "pgkeel-ops"
USER, PASSWORD = "ops-user", "ops-pw-93c1"
LATER = "2031-06-01T12:00:00+00:00"


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3, scope=SCOPE) as c:
        for n in c.nodes:
            cfg = n.config()
            cfg["restapi"]["authentication"] = {"username": USER, "password": PASSWORD}
            n.cfg = cfg
            n.config = lambda n=n: n.cfg  # what start() and the tests' rewrites use
            n.write_config(cfg)
        c.start()
        wait_healthy(c)
        yield c


def ctl(c, *args, stdin=None, timeout=400, **kw):
    """(exit status, stdout, stderr) of pgkeelctl, by default with pg-1's configuration."""
    return c.pgkeelctl(*args, stdin=stdin, timeout=timeout, **kw)


def ok(c, *args, **kw):
    rc, out, err = ctl(c, *args, **kw)
    assert rc == 0, "pgkeelctl %s: exit %d\n%s\n%s" % (args, rc, out, err)
    return out


def refused(c, *args, message, status=1, **kw):
    """The command fails with `message` on stderr and changes nothing in the DCS."""
    before = dcs_keys(c)
    rc, out, err = ctl(c, *args, **kw)
    assert rc == status and message in err, "pgkeelctl %s: exit %d\n%s\n%s" % (args, rc, out,
                                                                              err)
    assert dcs_keys(c) == before, "pgkeelctl %s changed the DCS" % (args,)
    return out, err


def dcs_keys(c):
    return {k: c.key(k) for k in ("failover", "config", "leader")}


def tables(out):
    """Each pretty table of the output as {member: [cells]}, in order."""
    found, cur = [], None
    for line in out.splitlines():
        if line.startswith("+ Cluster: "):
            cur = {}
            found.append(cur)
        elif cur is not None and line.startswith("| "):
            cells = [x.strip() for x in line.strip().strip("|").split("|")]
            if cells[0].startswith("pg-"):
                cur[cells[0]] = cells
    return found


def member(c, name):
    return json.loads(c.key("members/" + name) or "{}")


def start_time(node):
    code, body = node.rest("/patroni")
    return body.get("postmaster_start_time") if code == 200 else None


def new_postmaster(c, name, before):
    """The member's /patroni names a postmaster started after `before` (its
    sampler follows within a second)."""
    poll(lambda: start_time(c.node(name)) not in (None, before), 10,
         "a new postmaster on %s" % name)


def replicas(c, leader):
    return sorted(n.name for n in c.nodes if n.name != leader)


def assert_new_leader(c, out, want):
    """The command's last table shows `want` as the running leader, so does the DCS."""
    last = tables(out)[-1]
    assert last[want][2] == "Leader" and last[want][3] == "running", out
    assert c.leader_name() == want
    m = member(c, want)
    assert m.get("role") == "master" and m.get("state") == "running", m


# ------------------------------------------------------------------ bad input

def test_bad_input_changes_nothing(cluster):
    c = cluster
    leader = wait_healthy(c)
    r1, r2 = replicas(c, leader)
    refused(c, "switchover", "--candidate", "nope", "--force",
            message="Member nope does not exist in cluster %s" % SCOPE)
    refused(c, "switchover", "--candidate", leader, "--force",
            message="Switchover target and source are the same.")
    refused(c, "switchover", "--leader", r1, "--candidate", r2, "--force",
            message="Member %s is not the leader of cluster %s" % (r1, SCOPE))
    refused(c, "failover", "--force",
            message="Failover could be performed only to a specific candidate")
    refused(c, "failover", "--candidate", "nope", "--force",
            message="Member nope does not exist in cluster %s" % SCOPE)
    refused(c, "switchover", "--candidate", r1, "--scheduled", "next tuesday", "--force",
            message="Unable to parse scheduled timestamp (next tuesday)")
    refused(c, "restart", SCOPE, "nope", "--force", message="nope is not a member of cluster")
    refused(c, "restart", SCOPE, "-r", "boss", "--force", status=2,
            message="Invalid value for '--role' / '-r': 'boss' is not one of")
    refused(c, "restart", SCOPE, r1, "--pg-version", "9.6", "--force",
            message="Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 9.6")
    refused(c, "restart", SCOPE, r1, "--scheduled", "31/02/2031", "--force",
            message="Unable to parse scheduled timestamp (31/02/2031)")
    refused(c, "reinit", SCOPE, leader, "--force", message="No replica among provided members")
    refused(c, "reload", SCOPE, leader, "-r", "replica", "--force",
            message="No replica among provided members")
    refused(c, "flush", SCOPE, "everything", "--force", status=2,
            message="Invalid value for 'TARGET': 'everything'")
    refused(c, "restart", status=2, message="Missing argument 'CLUSTER_NAME'.")
    refused(c, "switchover", "--sideways", status=2, message="No such option: --sideways")
    refused(c, "resume", message="Cluster is not paused")
    assert c.leader_name() == leader


def test_no_healthy_candidate(cluster):
    """The replicas tagged nofailover (their files changed, `pgkeelctl reload`):
    nobody to switch over to."""
    c = cluster
    leader = wait_healthy(c)
    others = replicas(c, leader)
    for name in others:
        n = c.node(name)
        n.cfg["tags"] = {"nofailover": True}
        n.write_config(n.cfg)
    try:
        out = ok(c, "reload", SCOPE, *others, "--force")
        for name in others:
            assert ("Reload request received for member %s and will be processed within 2 "
                    "seconds" % name) in out, out
        poll(lambda: all(member(c, n).get("tags", {}).get("nofailover") for n in others), 30,
             "the nofailover tags in the member keys")
        refused(c, "switchover", "--force", message="No candidates found to switchover to")
        refused(c, "switchover", "--candidate", others[0], "--force",
                message="No candidates found to switchover to")
        refused(c, "failover", "--candidate", others[1], "--force",
                message="No candidates found to failover to")
    finally:
        for name in others:
            n = c.node(name)
            n.cfg["tags"] = {}
            n.write_config(n.cfg)
        out = ok(c, "reload", SCOPE, "-r", "replica", "--force")
        assert out.count("Reload request received for member") == 2, out
    poll(lambda: not any(member(c, n).get("tags") for n in others), 30,
         "the nofailover tags gone")


# ------------------------------------------------------------------ prompts

def test_switchover_prompts(cluster):
    c = cluster
    leader = wait_healthy(c)
    cand = replicas(c, leader)[0]
    # every prompt answered, the confirmation refused: nothing happens
    out, _ = refused(c, "switchover", stdin="\n%s\n\nN\n" % cand, message="Aborting switchover")
    assert "Primary [%s]: " % leader in out, out
    assert "Candidate %s []: " % repr(replicas(c, leader)) in out, out
    assert "When should the switchover take place (e.g. " in out and " [now]: " in out, out
    assert ("Are you sure you want to switchover cluster %s, demoting current leader %s? [y/N]: "
            % (SCOPE, leader)) in out, out
    assert c.leader_name() == leader
    # the same answered "y"
    out = ok(c, "switchover", stdin="\n%s\n\ny\n" % cand)
    assert 'Successfully switched over to "%s"' % cand in out, out
    assert_new_leader(c, out, cand)


# ------------------------------------------------------------------ switchover, failover

def test_switchover_force_any_candidate(cluster):
    c = cluster
    old = wait_healthy(c)
    out = ok(c, "switchover", "--force")
    assert "Current cluster topology" in out and len(tables(out)) == 2, out
    new = c.leader_name()
    assert new != old, out
    assert_new_leader(c, out, new)


def test_switchover_force_candidate(cluster):
    c = cluster
    old = wait_healthy(c)
    cand = replicas(c, old)[-1]
    out = ok(c, "switchover", SCOPE, "--primary", old, "--candidate", cand, "--force")
    assert 'Successfully switched over to "%s"' % cand in out, out
    assert_new_leader(c, out, cand)
    assert json.loads(c.key("failover") or "{}") == {}


def test_failover_candidate(cluster):
    c = cluster
    old = wait_healthy(c)
    cand = replicas(c, old)[0]
    out = ok(c, "failover", "--candidate", cand, "--force")
    assert 'Successfully failed over to "%s"' % cand in out, out
    assert_new_leader(c, out, cand)


def test_scheduled_switchover_then_flush(cluster):
    c = cluster
    leader = wait_healthy(c)
    cand = replicas(c, leader)[0]
    out = ok(c, "switchover", "--candidate", cand, "--scheduled", LATER, "--force")
    assert "Switchover scheduled" in out, out
    assert "Switchover scheduled at: %s" % LATER in out, out
    assert json.loads(c.key("failover")) == {"leader": leader, "member": cand,
                                             "scheduled_at": LATER}
    out = ok(c, "flush", SCOPE, "switchover", "--force")
    assert "Success: scheduled switchover deleted" in out, out
    assert not json.loads(c.key("failover") or "{}").get("scheduled_at")
    assert "No pending scheduled switchover" in ok(c, "flush", SCOPE, "switchover")
    assert c.leader_name() == leader


def test_dcs_fallback_without_rest(cluster):
    """No member's REST API reachable (every request goes to a closed proxy
    port): switchover writes the failover key itself and the HA loop acts on
    it; a scheduled one is flushed with CAS; pause has nobody to ask."""
    c = cluster
    leader = wait_healthy(c)
    cand = replicas(c, leader)[-1]
    # the DCS by the name localhost, exempt from the proxy; members by 127.0.0.1
    cfg = json.loads(json.dumps(c.node("pg-1").cfg))
    cfg["etcd3"] = {"hosts": c.etcd.hosts.replace("127.0.0.1", "localhost"), "use_proxies": True}
    conf = os.path.join(c.base, "ctl-no-rest.yml")
    with open(conf, "w") as f:
        yaml.safe_dump(cfg, f)
    blocked = {"http_proxy": "http://127.0.0.1:%d" % free_port(), "no_proxy": "localhost"}
    assert ok(c, "list", conf=conf, env=blocked).count("| pg-") == 3
    before = dcs_keys(c)
    rc, out, err = c.pgkeelctl("pause", conf=conf, env=blocked)
    assert rc == 1 and "Can not find accessible cluster member" in err, (out, err)
    assert dcs_keys(c) == before
    rc, out, err = c.pgkeelctl("switchover", "--candidate", cand, "--scheduled", LATER,
                               "--force", conf=conf, env=blocked)
    assert rc == 0 and "Could not switchover using Patroni api, falling back to DCS" in out, \
        (out, err)
    assert json.loads(c.key("failover")) == {"leader": leader, "member": cand,
                                             "scheduled_at": LATER}
    rc, out, err = c.pgkeelctl("flush", SCOPE, "switchover", "--force", conf=conf,
                               env=blocked)
    assert rc == 0 and "Could not find any accessible member of cluster %s" % SCOPE in out, \
        (out, err)
    assert json.loads(c.key("failover")) == {}
    rc, out, err = c.pgkeelctl("switchover", "--candidate", cand, "--force", conf=conf,
                               env=blocked, timeout=400)
    assert rc == 0 and "Could not switchover using Patroni api, falling back to DCS" in out, \
        (out, err)
    assert_new_leader(c, out, cand)


# ------------------------------------------------------------------ pause, resume

def test_pause_resume_wait(cluster):
    c = cluster
    leader = wait_healthy(c)
    cand = replicas(c, leader)[0]
    out = ok(c, "pause", "--wait")
    assert "'pause' request sent, waiting until it is recognized by all nodes" in out, out
    assert "Success: cluster management is paused" in out and "Maintenance mode: on" in out, out
    assert all(member(c, n.name).get("pause") is True for n in c.nodes)
    assert json.loads(c.key("config")).get("pause") is True
    try:
        refused(c, "pause", message="Cluster is already paused")
        refused(c, "switchover", "--candidate", cand, "--scheduled", LATER, "--force",
                message="Can't schedule switchover in the paused state")
        refused(c, "restart", SCOPE, cand, "--scheduled", LATER, "--force",
                message="Can't schedule restart in the paused state")
    finally:
        out = ok(c, "resume", "--wait")
    assert "Success: cluster management is resumed" in out, out
    assert "Maintenance mode" not in out, out
    assert not any(member(c, n.name).get("pause") for n in c.nodes)
    assert json.loads(c.key("config")).get("pause") is None


# ------------------------------------------------------------------ restart, reload, flush

def test_restart_member_and_role(cluster):
    c = cluster
    leader = wait_healthy(c)
    r1, r2 = replicas(c, leader)
    before = start_time(c.node(r1))
    out = ok(c, "restart", SCOPE, r1, "--force")
    assert "Success: restart on member %s" % r1 in out, out
    assert tables(out)[-1][r1][3] == "running", out
    new_postmaster(c, r1, before)
    # -r replica: both replicas, the leader untouched
    times = {n.name: start_time(n) for n in c.nodes}
    out = ok(c, "restart", SCOPE, "-r", "replica", "--force")
    for name in (r1, r2):
        assert "Success: restart on member %s" % name in out, out
        new_postmaster(c, name, times[name])
    assert "restart on member %s" % leader not in out, out
    assert start_time(c.node(leader)) == times[leader]
    # --pending with nothing pending: the member refuses, exit 1, no restart
    rc, out, err = ctl(c, "restart", SCOPE, leader, "--pending", "--force")
    assert rc == 1 and ("Failed: restart for member %s, status code=503, (restart conditions "
                        "are not satisfied)" % leader) in out, (out, err)
    assert start_time(c.node(leader)) == times[leader]
    assert c.leader_name() == leader


def test_scheduled_restart_then_flush(cluster):
    c = cluster
    leader = wait_healthy(c)
    r1 = replicas(c, leader)[0]
    out = ok(c, "restart", SCOPE, r1, "--scheduled", LATER, "--force")
    assert "Success: restart scheduled on member %s" % r1 in out, out
    poll(lambda: (member(c, r1).get("scheduled_restart") or {}).get("schedule") == LATER, 30,
         "the scheduled restart in the member key")
    out = ok(c, "flush", SCOPE, r1, "restart", "--force")
    assert "Success: flush scheduled restart for member %s" % r1 in out, out
    poll(lambda: "scheduled_restart" not in member(c, r1), 30, "the scheduled restart gone")
    out = ok(c, "flush", SCOPE, r1, "restart", "--force")
    assert "No scheduled restart for member %s" % r1 in out, out
    # the same through the prompts: time, confirmation, version; flush confirmed
    out = ok(c, "restart", SCOPE, r1, stdin="%s\ny\n\n" % LATER)
    assert "When should the restart take place (e.g. " in out and ")  [now]: " in out, out
    assert ("Are you sure you want to schedule restart of members %s at %s? [y/N]: "
            % (r1, LATER.replace("T", " "))) in out, out
    assert ("Restart if the PostgreSQL version is less than provided (e.g. 9.5.2)  []: "
            in out), out
    assert "Success: restart scheduled on member %s" % r1 in out, out
    poll(lambda: "scheduled_restart" in member(c, r1), 30, "the scheduled restart again")
    out = ok(c, "flush", SCOPE, r1, "restart", stdin="y\n")
    assert "Are you sure you want to flush members %s? [y/N]: " % r1 in out, out
    assert "Success: flush scheduled restart for member %s" % r1 in out, out
    poll(lambda: "scheduled_restart" not in member(c, r1), 30, "the scheduled restart gone")


def test_reload_all(cluster):
    c = cluster
    wait_healthy(c)
    out = ok(c, "reload", SCOPE, "--force")
    for n in c.nodes:
        assert ("Reload request received for member %s and will be processed within 2 seconds"
                % n.name) in out, out
    # without --force: the confirmation answered N
    out, _ = refused(c, "reload", SCOPE, stdin="N\n", message="Aborted reload")
    assert "Are you sure you want to reload members " in out, out


# ------------------------------------------------------------------ reinit

def test_reinit_force_wait(cluster):
    c = cluster
    leader = wait_healthy(c)
    r1 = replicas(c, leader)[0]
    marker = os.path.join(c.node(r1).datadir, "pgkeel_reinit_marker")
    open(marker, "w").close()
    out = ok(c, "reinit", SCOPE, r1, "--force", "--wait")
    assert "Success: reinitialize for member %s" % r1 in out, out
    assert "Waiting for reinitialize to complete on: %s" % r1 in out, out
    assert "Reinitialize is completed on: %s" % r1 in out, out
    assert not os.path.exists(marker)
    m = member(c, r1)
    assert m.get("state") == "running" and "xlog_location" in m, m
    wait_healthy(c)
