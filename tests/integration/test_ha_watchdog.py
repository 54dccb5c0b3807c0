"""Issue 5, no split brain (b): the leader's daemon freezes with the watchdog
armed.  pg-1 runs with `watchdog: {mode: required}` on a fake device
(tests/fakes: the fake-watchdog server kills the node -- the daemon, its
process group and its postmaster -- when it is not fed within ttl -
safety_margin); a Writer per node commits rows straight to that node's
PostgreSQL.  SIGSTOP of the leader's pgkeel: the watchdog resets the node
before the lock expires, so the old primary acknowledges nothing after the
new leader's first commit, and every row it acknowledged is on the new
primary.  Etcd 3.4, PostgreSQL 15, ttl 10 / loop_wait 2 / retry_timeout 3.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import signal
import sys
import time

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, Writer, have_pgkeel, new_ids, wait_healthy
from pg_instance import have_postgres, poll

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_watchdog import FakeWatchdog, have_fake_watchdog  # noqa: E402

TTL, SAFETY_MARGIN = 10, 5

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not have_fake_watchdog(), reason="the fake watchdog is not built"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the fake watchdog kills another user's node"),
]
pytest.importorskip("psycopg2")


def logs(c):
    return "".join("\n--- log of %s:\n%s" % (n.name, n.log(4000)) for n in c.nodes)


def test_frozen_leader_is_reset_by_the_watchdog():
    with HaCluster(3) as c:
        leader = c.node("pg-1")
        wd = FakeWatchdog(c.base, kill_pidfiles=[os.path.join(leader.datadir, "postmaster.pid")])
        wd.start()
        try:
            cfg = leader.config()
            cfg["watchdog"] = {"mode": "required", "device": wd.device,
                               "safety_margin": SAFETY_MARGIN}
            leader.write_config(cfg)
            leader.env.update(wd.env(leader.env))
            c.start()
            assert wait_healthy(c) == "pg-1"
            opened = wd.wait_event("open", timeout=30)
            code, body = leader.rest("/patroni")
            assert code == 200 and not body.get("watchdog_failed"), body
            assert leader.psql("CREATE TABLE wd (id bigint PRIMARY KEY, node text)") is not None
            for n in c.nodes:
                poll(lambda n=n: n.psql("SELECT count(*) FROM wd") == "0", 30, "table on " + n.name)
            ids = new_ids()
            writers = {n.name: Writer(n, "wd", ids) for n in c.nodes}
            for w in writers.values():
                w.start()
            try:
                poll(lambda: len(writers["pg-1"].acked) >= 20, 30, "commits on pg-1")
                leader.signal(signal.SIGSTOP)
                t_stop = time.monotonic()
                fired = wd.wait_event("fired", timeout=TTL + 10)

                def new_leader_writes():
                    name = c.leader_name()
                    if name in (None, "pg-1"):
                        return None
                    return name if [a for a in writers[name].acked if a[1] > t_stop] else None
                try:
                    new = poll(new_leader_writes, TTL + 40, "a new leader acknowledging commits")
                except AssertionError as e:
                    raise AssertionError(str(e) + logs(c))
            finally:
                for w in writers.values():
                    w.halt.set()
                for w in writers.values():
                    w.stop()
            # the reset came after the last feed, within the watchdog's timeout (+ slack)
            assert fired.t - t_stop < TTL - SAFETY_MARGIN + 2, (fired, t_stop)
            new_first = min(t for _, t in writers[new].acked if t > t_stop)
            last_old = max(t for _, t in writers["pg-1"].acked)
            assert fired.t < new_first, (fired.t - t_stop, new_first - t_stop)
            assert last_old < new_first, "pg-1 acknowledged a commit after %s's first" % new
            # every row pg-1 acknowledged is on the new primary
            got = c.node(new).psql("SELECT id FROM wd", timeout=30)
            on_new = {int(x) for x in got.split()} if got else set()
            lost = [rid for rid, _ in writers["pg-1"].acked if rid not in on_new]
            # asynchronous replication may lose the very last commits; none after the reset
            assert all(t <= fired.t for rid, t in writers["pg-1"].acked if rid in lost), lost
            assert leader.postmaster_pid() is None, "the watchdog left pg-1's postmaster running"
            print("watchdog: fired %.2f s after the freeze (opened with timeout %s); %s's first "
                  "commit %.2f s after it; %d rows of pg-1 not replicated" % (
                      fired.t - t_stop, opened.args.get("timeout"), new,
                      new_first - t_stop, len(lost)))
        finally:
            leader.signal(signal.SIGCONT)
            wd.stop()
