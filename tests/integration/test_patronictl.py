"""Debian's patronictl 3.0.2 against a 3-node pgkeel cluster
(tests/integration/ha_cluster.py: etcd 3.4, PostgreSQL 15), the REST API
protected by basic auth; patronictl reads a node's own configuration file
(its etcd, scope and restapi.authentication), as operators run it.

One cluster for the whole module, commands in an order that keeps it
healthy: list, topology, version, show-config/edit-config, pause/resume
(PATCH /config), reload, restart (immediate, scheduled, flush), reinit
(the replica's data directory really recreated), a switchover, a
scheduled switchover flushed (DELETE /switchover), a failover, history.
Then eight concurrent POST /restart requests, one of them slow (pg-3's
`postgres` is a wrapper that sleeps 3 s before starting), while the nodes'
health checks are asked every 100 ms: every check answers within a second
and the leader's /leader never stops answering 200; the slow restart is
answered only when PostgreSQL is up again.  Unsafe requests without
credentials get 401.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import base64
import concurrent.futures
import datetime
import http.client
import json
import os
import subprocess
import threading
import time

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, have_pgkeel, wait_healthy
from pg_instance import PG_BIN, have_postgres, poll

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
]

SCOPE = "pgkeel-test"
USER, PASSWORD = "ctl-user", "ctl-pw-5e1d"
AUTH = {"Authorization": "Basic " + base64.b64encode(
    ("%s:%s" % (USER, PASSWORD)).encode()).decode()}
SLOW_START_S = 3


def slow_bin_dir(node):
    """A bin_dir whose postgres sleeps before starting (the others: links)."""
    d = os.path.join(node.dir, "bin")
    os.makedirs(d)
    for name in os.listdir(PG_BIN):
        if name != "postgres":
            os.symlink(os.path.join(PG_BIN, name), os.path.join(d, name))
    with open(os.path.join(d, "postgres"), "w") as f:
        f.write("#!/bin/sh\nsleep %d\nexec %s \"$@\"\n" % (SLOW_START_S,
                                                         os.path.join(PG_BIN, "postgres")))
    os.chmod(os.path.join(d, "postgres"), 0o755)
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3, scope=SCOPE) as c:
        for n in c.nodes:
            cfg = n.config()
            cfg["restapi"]["authentication"] = {"username": USER, "password": PASSWORD}
            if n.name == "pg-3":
                cfg["postgresql"]["bin_dir"] = slow_bin_dir(n)
            n.config = lambda cfg=cfg: cfg  # what start() and restarts read
            n.write_config(cfg)
        c.start()
        wait_healthy(c)
        yield c


def ctl(c, *args, timeout=120, check=True):
    """patronictl with pg-1's configuration file."""
    p = subprocess.run(["/usr/bin/patronictl", "-c", c.node("pg-1").conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": c.base})
    out = p.stdout.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError("patronictl %s failed (%d): %s" % (args, p.returncode, out))
    return out


def rows(out):
    """A pretty table's rows as {member: [cells]}."""
    got = {}
    for line in out.splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        name = cells[0].lstrip("+ ").strip()
        if name.startswith("pg-"):
            got[name] = cells
    return got


def roles(c):
    return {k: v[2] for k, v in rows(ctl(c, "list")).items()}


def wait_roles(c, want, timeout=90):
    poll(lambda: roles(c) == want, timeout, "patronictl list to show %s" % want)


def request(node, method, path, body=None, headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", node.api_port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def start_time(node):
    code, body = node.rest("/patroni")
    return body.get("postmaster_start_time") if code == 200 else None


def test_read_only_commands(cluster):
    c = cluster
    assert roles(c) == {"pg-1": "Leader", "pg-2": "Replica", "pg-3": "Replica"}
    assert set(rows(ctl(c, "topology"))) == {"pg-1", "pg-2", "pg-3"}
    out = ctl(c, "version", SCOPE)
    for n in ("pg-1", "pg-2", "pg-3"):
        assert "%s: Patroni 3.0.2 PostgreSQL 15." % n in out, out
    assert "loop_wait: 2" in ctl(c, "show-config")
    assert ctl(c, "history").count("|") > 0


def test_config_pause_reload(cluster):
    c = cluster
    out = ctl(c, "edit-config", "--force", "-s", "maximum_lag_on_failover=2097152", "-p",
              "work_mem=8MB")
    assert "Configuration changed" in out, out
    cfg = ctl(c, "show-config")
    assert "maximum_lag_on_failover: 2097152" in cfg and "work_mem: 8MB" in cfg
    # the daemons apply it (PostgreSQL reloaded)
    poll(lambda: c.node("pg-2").psql("SHOW work_mem") == "8MB", 30, "work_mem on pg-2")
    # pause/resume: PATCH /config through the API
    assert "Success: cluster management is paused" in ctl(c, "pause", "--wait")
    assert "Maintenance mode: on" in ctl(c, "list")
    assert c.node("pg-2").rest("/patroni")[1].get("pause") is True
    assert "Success: cluster management is resumed" in ctl(c, "resume", "--wait")
    assert "Maintenance mode" not in ctl(c, "list")
    assert json.loads(c.key("config")).get("pause") is None
    # reload: 202 from every member
    out = ctl(c, "reload", SCOPE, "--force")
    for n in ("pg-1", "pg-2", "pg-3"):
        assert ("Reload request received for member %s and will be processed within 2 "
                "seconds" % n) in out, out
    # unsafe requests want the credentials
    assert request(c.node("pg-1"), "POST", "/reload")[0] == 401
    assert request(c.node("pg-1"), "PATCH", "/config", {"x": 1}, {"Authorization": "Basic eA=="}
                   ) == (401, "not authenticated")


def test_restart_and_reinit(cluster):
    c = cluster
    before = start_time(c.node("pg-2"))
    out = ctl(c, "restart", SCOPE, "pg-2", "--force")
    assert "Success: restart on member pg-2" in out, out
    # answered once PostgreSQL was up again (the sample follows within a second)
    assert c.node("pg-2").psql("SELECT 1") == "1"
    poll(lambda: start_time(c.node("pg-2")) not in (None, before), 5, "a new postmaster")
    # conditions not met: answered by the loop with Patroni's text
    code, text = request(c.node("pg-2"), "POST", "/restart", {"postgres_version": "9.6.1"}, AUTH)
    assert (code, text) == (503, "restart conditions are not satisfied")
    # scheduled, shown by list, flushed
    out = ctl(c, "restart", SCOPE, "pg-3", "--scheduled", "2031-01-01T00:00:00+00:00",
              "--force")
    assert "Success: restart scheduled on member pg-3" in out, out
    poll(lambda: "2031-01-01T00:00:00+00:00" in ctl(c, "list"), 30, "the scheduled restart "
         "in the member key")
    out = ctl(c, "flush", SCOPE, "pg-3", "restart", "--force")
    assert "Success: flush scheduled restart for member pg-3" in out, out
    poll(lambda: "2031-01-01" not in ctl(c, "list"), 30, "the scheduled restart gone")
    # scheduled a few seconds ahead: it runs, then it is gone from the member key
    before = start_time(c.node("pg-2"))
    at = (datetime.datetime.now(datetime.timezone.utc) +
          datetime.timedelta(seconds=4)).replace(microsecond=0).isoformat()
    out = ctl(c, "restart", SCOPE, "pg-2", "--scheduled", at, "--force")
    assert "Success: restart scheduled on member pg-2" in out, out
    poll(lambda: start_time(c.node("pg-2")) not in (None, before), 30, "the scheduled restart")
    poll(lambda: "scheduled_restart" not in json.loads(c.key("members/pg-2")), 30,
         "the schedule cleared")
    assert "restart initiated" in c.node("pg-2").log(20000)
    # reinit: the leader refuses, a replica is cloned again
    code, text = request(c.node("pg-1"), "POST", "/reinitialize", {}, AUTH)
    assert (code, text) == (503, "I am the leader, can not reinitialize")
    marker = os.path.join(c.node("pg-2").datadir, "pgkeel_reinit_marker")
    open(marker, "w").close()
    out = ctl(c, "reinit", SCOPE, "pg-2", "--force", "--wait", timeout=180)
    assert "Success: reinitialize for member pg-2" in out, out
    assert not os.path.exists(marker)
    wait_healthy(c)


def test_switchover_failover_history(cluster):
    c = cluster
    leader = c.leader_name()
    cand = "pg-2" if leader != "pg-2" else "pg-1"
    out = ctl(c, "switchover", "--leader", leader, "--candidate", cand, "--force")
    assert 'Successfully switched over to "%s"' % cand in out, out
    assert c.wait_leader(timeout=60) == cand
    wait_healthy(c)
    # a scheduled switchover, then flushed: DELETE /switchover on the leader
    out = ctl(c, "switchover", "--leader", cand, "--candidate", "pg-3", "--scheduled",
              "2031-06-01T12:00:00+00:00", "--force")
    assert "Switchover scheduled" in out, out
    assert "Switchover scheduled at: 2031-06-01T12:00:00+00:00" in ctl(c, "list")
    code, body = request(c.node(cand), "GET", "/cluster")
    assert code == 200 and json.loads(body)["scheduled_switchover"] == {
        "at": "2031-06-01T12:00:00+00:00", "from": cand, "to": "pg-3"}
    out = ctl(c, "flush", SCOPE, "switchover", "--force")
    assert "Success: scheduled switchover deleted" in out, out
    assert "No pending scheduled switchover" in ctl(c, "flush", SCOPE, "switchover", "--force")
    # failover to pg-3
    out = ctl(c, "failover", "--candidate", "pg-3", "--force")
    assert 'Successfully failed over to "pg-3"' in out, out
    assert c.wait_leader(timeout=90) == "pg-3"
    wait_healthy(c)
    hist = ctl(c, "history")
    assert len([line for line in hist.splitlines() if line.startswith("|  ")]) >= 2, hist

    def new_leaders():  # from pg-1's cached view: the next cycle's read
        code, body = request(c.node("pg-1"), "GET", "/history")
        return code == 200 and [h[4] for h in json.loads(body)][-2:] == [cand, "pg-3"]
    poll(new_leaders, 20, "GET /history naming both new leaders")


def test_concurrent_slow_restarts_and_health_checks(cluster):
    c = cluster
    wait_healthy(c)
    leader = c.node(c.leader_name())
    replicas = [n for n in c.nodes if n is not leader]
    slow = c.node("pg-3")
    stop = threading.Event()
    checks = []  # (node, path, status or None, seconds)

    def checker():
        while not stop.is_set():  # ends with stop
            for n in c.nodes:
                for path in ("/leader", "/replica"):
                    t0 = time.monotonic()
                    try:
                        status = request(n, "GET", path, timeout=2)[0]
                    except OSError:
                        status = None
                    checks.append((n.name, path, status, time.monotonic() - t0))
            stop.wait(0.1)

    th = threading.Thread(target=checker, daemon=True)
    th.start()
    targets = [slow] * 4 + [r for r in replicas if r is not slow] * 4
    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [(n, ex.submit(request, n, "POST", "/restart", {}, AUTH, 120))
                    for n in targets[:8]]
            answers = [(n.name, f.result(), time.monotonic() - t0) for n, f in futs]
    finally:
        stop.set()
        th.join(10)
    took_slow = [t for name, (code, _), t in answers if name == slow.name and code == 200]
    ok = {(name, code, text) for name, (code, text), _ in answers}
    assert ("pg-3", 200, "restarted successfully") in ok, answers
    assert all(code == 200 and text == "restarted successfully" or
               code == 503 and text == "restart already in progress"
               for _, (code, text), _ in answers), answers
    assert took_slow and min(took_slow) >= SLOW_START_S, answers
    assert len(checks) > 20
    failed = [x for x in checks if x[2] is None or x[3] > 1.0]
    assert not failed, failed[:5]
    assert all(status == 200 for name, path, status, _ in checks
               if name == leader.name and path == "/leader"), \
        [x for x in checks if x[0] == leader.name and x[1] == "/leader"][:5]
    wait_healthy(c)
