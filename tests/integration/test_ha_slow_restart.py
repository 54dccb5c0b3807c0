"""Issue 5, a slow restart: the leader's `postgres` is a wrapper that sleeps
2 x ttl before it starts the real one; POST /restart on the leader must not
cause a failover.  The loop keeps renewing the lock while the restart runs
beside it ("updated leader lock during restart"), /leader answers 200 all
along, and the leader comes back as the primary on the same timeline.
Etcd 3.4, PostgreSQL 15, ttl 10 / loop_wait 2 / retry_timeout 3.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import time

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, have_pgkeel, wait_healthy
from pg_instance import PG_BIN, have_postgres, poll

TTL = 10
SLEEP = 2 * TTL

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
]

WRAPPER = """#!/bin/sh
# a slow postgres: sleep, then the real one (test_ha_slow_restart.py)
if [ -e "%(flag)s" ]; then sleep %(sleep)d; fi
exec %(real)s "$@"
"""


def test_slow_restart_is_no_failover():
    with HaCluster(2) as c:
        leader = c.node("pg-1")
        # a bin_dir of links to Debian's binaries, postgres a wrapper that sleeps
        # only once the flag file exists (initdb and the first start run at once)
        bindir = os.path.join(c.base, "slowbin")
        os.mkdir(bindir)
        for name in os.listdir(PG_BIN):
            if name != "postgres":
                os.symlink(os.path.join(PG_BIN, name), os.path.join(bindir, name))
        flag = os.path.join(c.base, "slow")
        with open(os.path.join(bindir, "postgres"), "w") as f:
            f.write(WRAPPER % {"flag": flag, "sleep": SLEEP,
                               "real": os.path.join(PG_BIN, "postgres")})
        os.chmod(os.path.join(bindir, "postgres"), 0o755)
        os.chmod(bindir, 0o755)
        cfg = leader.config()
        cfg["postgresql"]["bin_dir"] = bindir
        leader.write_config(cfg)
        c.start()
        assert wait_healthy(c) == "pg-1"
        timeline = poll(lambda: leader.rest("/patroni")[1].get("timeline"), 10, "a timeline")
        pid = leader.postmaster_pid()
        with open(flag, "w"):
            pass
        t0 = time.monotonic()
        code, body = leader.rest("/restart", method="POST", body={}, timeout=2 * SLEEP + 30)
        assert code in (200, 503), (code, body)  # 503: "postgres is still starting"
        # while the wrapper sleeps: the lock stays, nobody is promoted
        deadline = time.monotonic() + SLEEP + 30
        seen = set()
        while time.monotonic() < deadline:  # bounded
            seen.add(c.leader_name())
            assert c.node("pg-2").psql("SELECT pg_is_in_recovery()") in ("t", None)
            new = leader.postmaster_pid()
            if new is not None and new != pid and \
                    leader.psql("SELECT pg_is_in_recovery()") == "f":
                break
            time.sleep(0.5)
        else:
            raise AssertionError("pg-1 not back within %d s: %s" % (SLEEP + 30, leader.log(4000)))
        assert seen == {"pg-1"}, seen
        assert time.monotonic() - t0 >= SLEEP - 1, "the wrapper did not slow the restart"
        assert len(seen) == 1 and time.monotonic() - t0 > TTL  # the lock outlived a ttl
        assert "updated leader lock during restart" in leader.log(10 ** 7)
        assert poll(lambda: leader.rest("/patroni")[1].get("timeline"), 10,
                    "a timeline") == timeline
        assert c.node("pg-2").rest("/leader")[0] == 503
