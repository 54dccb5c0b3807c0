"""Dynamic configuration through the DCS on a running pgkeel cluster (etcd,
PostgreSQL 15, Debian's patronictl 3.0.2): `patronictl edit-config --set`
reaches every node's PostgreSQL (a reloadable parameter is applied by a
reload, one that needs a restart shows as pending restart in `patronictl
list` and in the member keys), and the cached copy patroni.dynamic.json
follows.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, have_pgkeel
from pg_instance import have_postgres, poll

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
]


def test_edit_config_reaches_postgresql():
    with HaCluster(2) as c:
        c.start()
        assert c.wait_leader(timeout=90) == "pg-1"
        c.wait_replicas(["pg-2"], timeout=90)
        out = c.patronictl("edit-config", "--force", "--set",
                           "postgresql.parameters.work_mem=7MB", "--set",
                           "postgresql.parameters.wal_buffers=1MB")
        assert "work_mem" in out, out
        for n in c.nodes:
            poll(lambda n=n: n.psql("SHOW work_mem") == "7MB", 30, "work_mem on " + n.name)
            # wal_buffers needs a restart: still the old value, flagged pending
            assert n.psql("SHOW wal_buffers") == "512kB"
            poll(lambda n=n: json.loads(c.key("members/" + n.name)).get("pending_restart"), 30,
                 "pending_restart in the member key of " + n.name)
        listing = c.patronictl("list")
        assert "Pending restart" in listing and listing.count("*") >= 2, listing
        with open(os.path.join(c.node("pg-1").datadir, "patroni.dynamic.json")) as f:
            cached = json.load(f)
        assert cached["postgresql"]["parameters"]["work_mem"] == "7MB", cached
        assert "Reloading PostgreSQL configuration." in c.node("pg-2").log(10 ** 7)
