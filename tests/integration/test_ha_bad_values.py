"""Issue 5, bad input from a foreign writer: garbage written straight into
the `config`, `sync`, `failover` and `members/<x>` keys of a running pgkeel
cluster (etcd 3.4, PostgreSQL 15) is logged with the key it came from and
skipped: no daemon crashes, the leader keeps its lock and PostgreSQL keeps
the last good configuration; a good value written afterwards is applied.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import time

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, have_pgkeel, wait_healthy
from pg_instance import have_postgres, poll

LOOP_WAIT = 2

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
]


def test_garbage_in_dcs_keys_is_skipped():
    with HaCluster(2) as c:
        c.start()
        assert wait_healthy(c) == "pg-1"
        c.patronictl("edit-config", "--force", "--set", "postgresql.parameters.work_mem=5MB")
        for n in c.nodes:
            poll(lambda n=n: n.psql("SHOW work_mem") == "5MB", 30, "work_mem on " + n.name)
        prefix = "/db/%s/" % c.scope
        good_config = c.key("config")
        for key, value in (("config", "{not json"), ("sync", "[1, 2"),
                           ("failover", "\x00\xff garbage"), ("members/pg-9", "42")):
            c.etcd.put(prefix + key, value)
        t0 = time.monotonic()
        # a few cycles with the garbage in place
        while time.monotonic() - t0 < 4 * LOOP_WAIT:  # bounded
            assert c.leader_name() == "pg-1"
            for n in c.nodes:
                assert n.alive(), n.log(3000)
            time.sleep(0.5)
        log = c.node("pg-1").log(10 ** 7) + c.node("pg-2").log(10 ** 7)
        for key in ("config", "sync", "members/pg-9"):
            assert "DCS key %s" % key in log, (key, log[-3000:])
        assert c.node("pg-1").rest("/leader")[0] == 200
        for n in c.nodes:
            assert n.psql("SHOW work_mem") == "5MB"  # the last good configuration
        # a good value again is applied
        cfg = json.loads(good_config)
        cfg["postgresql"]["parameters"]["work_mem"] = "6MB"
        c.etcd.put(prefix + "config", json.dumps(cfg))
        for n in c.nodes:
            poll(lambda n=n: n.psql("SHOW work_mem") == "6MB", 30, "work_mem 6MB on " + n.name)
        assert c.leader_name() == "pg-1"
