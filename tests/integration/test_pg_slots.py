"""core/pg_slots.c against real PostgreSQL 15, through tests/tools/slots_probe:
member slots created for two members and dropped when a member vanishes,
ignore_slots, a permanent logical slot (test_decoding) created on the
primary and re-created when its plugin changes, an active slot left alone,
advancing of a permanent physical slot, nothing touched without a `config`
key, on a streaming replica physical slots, and logical slots on a replica
(core/pg_slots_copy.c): copied from the primary into the stopped replica,
ready once the primary's physical slot holds the catalog_xmin, advanced to the
/status position the leader publishes, re-copy asked for when their WAL is
gone, usable after promotion, dropped when no longer wanted.

The probe gets a cluster as JSON (the DCS keys) on stdin and runs
pgkeel_slots_sync() once; PostgreSQL runs as the postgres user (pg_instance).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import signal
import subprocess

import pytest

from pg_instance import PgInstance, have_postgres, poll

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "slots_probe")

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="slots_probe not built (make check)"),
]


@pytest.fixture(scope="module")
def primary():
    pg = PgInstance("slots-primary")
    try:
        pg.initdb(wal_level="logical", max_replication_slots=20, max_wal_senders=10)
        pg.start()
        pg.psql("CREATE DATABASE app")
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="module")
def replica(primary):
    rep = PgInstance("slots-replica")
    try:
        rep.base_backup_from(primary)
        rep.start()
        poll(lambda: primary.psql("SELECT count(*) FROM pg_stat_replication "
                                  "WHERE application_name = 'slots-replica'") == "1",
             30, "slots-replica streaming")
        yield rep
    finally:
        rep.cleanup()


@pytest.fixture(autouse=True)
def no_slots(primary):
    """Every test starts and ends on a primary without slots."""
    drop_all(primary)
    yield
    drop_all(primary)


def drop_all(pg):
    pg.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE NOT active")


def member(name, **extra):
    value = {"conn_url": "postgres://127.0.0.1:5432/postgres",
             "api_url": "http://127.0.0.1:8008/patroni", "state": "running",
             "role": "replica", "version": "3.0.2"}
    value.update(extra)
    return value


def cluster(leader, members, config=None, status=None, with_config=True):
    c = {"leader": leader}
    for name, value in members.items():
        c["members/" + name] = value
    if with_config:
        c["config"] = config if config is not None else {}
    if status is not None:
        c["status"] = status
    return c


def run_doc(pg, doc):
    if pg is not None:
        doc["conn"] = {"host": pg.sockdir, "port": pg.port, "user": "postgres"}
    doc.setdefault("deadline_ms", 20000)
    p = subprocess.run([PROBE], input=json.dumps(doc).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, "slots_probe exited %d: %s" % (p.returncode, err)
    return json.loads(p.stdout), err


def run(pg, clu, config=None, name="pg1", role="primary", tags=None, apply=True,
        logical=None, last_lsn=None):
    doc = {"name": name, "role": role, "tags": tags or {},
           "config": config if config is not None else {}, "cluster": clu, "apply": apply}
    if logical is not None:
        doc["logical"] = logical
    if last_lsn is not None:
        doc["last_lsn"] = last_lsn
    return run_doc(pg, doc)


def slots(pg):
    """{name: (type, database, plugin, has_restart_lsn)} of pg_replication_slots."""
    out = {}
    text = pg.psql("SELECT slot_name, slot_type, coalesce(database, ''), coalesce(plugin, ''),"
                   " restart_lsn IS NOT NULL FROM pg_replication_slots ORDER BY 1")
    for line in text.splitlines():
        name, typ, db, plugin, has_lsn = line.split("|")
        out[name] = (typ, db, plugin, has_lsn == "t")
    return out


def lsn(pg, expr):
    return int(pg.psql("SELECT (%s - '0/0'::pg_lsn)::bigint" % expr))


def test_member_slots_created_then_dropped(primary):
    members = {"pg1": member("pg1", role="master"), "pg2": member("pg2"),
               "pg3": member("pg3")}
    out, log = run(primary, cluster("pg1", members))
    assert [d["name"] for d in out["desired"]] == ["pg2", "pg3"]
    assert out["result"] == {"ok": True, "read_ok": True, "dropped": 0, "created": 2,
                             "advanced": 0, "failed": 0, "skipped": 0, "copy": []}
    assert "Trying to create physical replication slot 'pg2'" in log
    # created with the WAL reserved at once (immediately_reserve)
    assert slots(primary) == {"pg2": ("physical", "", "", True),
                              "pg3": ("physical", "", "", True)}

    # the same again: nothing to do
    out, log = run(primary, cluster("pg1", members))
    assert out["plan"]["ops"] == []
    assert out["result"]["created"] == 0

    # pg3 vanished from the DCS: its slot goes
    del members["pg3"]
    out, log = run(primary, cluster("pg1", members))
    assert out["plan"]["ops"] == [{"op": "drop", "name": "pg3", "type": "physical"}]
    assert "Dropped unknown replication slot 'pg3'" in log
    assert out["result"]["dropped"] == 1
    assert sorted(slots(primary)) == ["pg2"]


def test_ignore_slots(primary):
    primary.psql("SELECT pg_create_physical_replication_slot('external', true)")
    primary.psql("SELECT pg_create_physical_replication_slot('stray', true)")
    primary.psql("SELECT pg_create_logical_replication_slot('ext_cdc', 'test_decoding')",
                 dbname="app")
    config = {"ignore_slots": [{"name": "external"},
                               {"type": "logical", "database": "app",
                                "plugin": "test_decoding"}]}
    clu = cluster("pg1", {"pg1": member("pg1"), "pg2": member("pg2")}, config)
    out, log = run(primary, clu, config)
    assert sorted(out["plan"]["ignored"]) == ["ext_cdc", "external"]
    assert "Dropped unknown replication slot 'stray'" in log
    assert sorted(slots(primary)) == ["ext_cdc", "external", "pg2"]

    # without the matchers they are unknown like any other
    out, log = run(primary, cluster("pg1", {"pg1": member("pg1"), "pg2": member("pg2")}))
    assert "Dropped unknown replication slot 'external'" in log
    assert "Dropped unknown replication slot 'ext_cdc'" in log
    assert sorted(slots(primary)) == ["pg2"]


def test_permanent_logical_slot_on_primary(primary):
    config = {"slots": {"cdc": {"type": "logical", "database": "postgres",
                                "plugin": "test_decoding"},
                        "app_cdc": {"database": "app", "plugin": "test_decoding"},
                        "keep": {"type": "physical"}}}
    members = {"pg1": member("pg1"), "pg2": member("pg2")}
    out, log = run(primary, cluster("pg1", members, config), config)
    assert out["errors"] == []
    assert out["result"]["created"] == 4 and out["result"]["failed"] == 0
    assert "Trying to create logical replication slot 'cdc' database='postgres' " \
           "plugin='test_decoding'" in log
    assert slots(primary) == {"app_cdc": ("logical", "app", "test_decoding", True),
                              "cdc": ("logical", "postgres", "test_decoding", True),
                              "keep": ("physical", "", "", True),
                              "pg2": ("physical", "", "", True)}

    # the plugin changes: dropped and created again in the same pass
    config["slots"]["cdc"]["plugin"] = "pgoutput"
    out, log = run(primary, cluster("pg1", members, config), config)
    assert "Trying to drop replication slot 'cdc' because value is changing from " \
           "{'type': 'logical', 'database': 'postgres', 'plugin': 'test_decoding'} to " \
           "{'type': 'logical', 'database': 'postgres', 'plugin': 'pgoutput'}" in log
    assert out["result"]["dropped"] == 1 and out["result"]["created"] == 1
    assert slots(primary)["cdc"] == ("logical", "postgres", "pgoutput", True)

    # a name that is not a valid slot name is refused, the rest goes on
    config["slots"]["Bad-Name"] = None
    out, log = run(primary, cluster("pg1", members, config), config)
    assert "Invalid permanent replication slot name 'Bad-Name'" in out["errors"]
    assert "ERROR: Invalid permanent replication slot name 'Bad-Name'" in log
    assert "Bad-Name" not in slots(primary)


def test_active_slot_is_left_alone(primary):
    primary.psql("SELECT pg_create_logical_replication_slot('busy', 'test_decoding')")
    recv = subprocess.Popen([primary.bin("pg_recvlogical"), "-h", primary.sockdir,
                             "-p", str(primary.port), "-U", "postgres", "-d", "postgres",
                             "-S", "busy", "--start", "-f", "/dev/null"],
                            env=primary.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        poll(lambda: primary.psql("SELECT active FROM pg_replication_slots "
                                  "WHERE slot_name = 'busy'") == "t", 30, "slot busy active")
        out, log = run(primary, cluster("pg1", {"pg1": member("pg1")}))
        assert out["plan"]["kept_active"] == ["busy"]
        assert out["result"]["failed"] == 0
        assert "busy" in slots(primary)
    finally:
        recv.send_signal(signal.SIGTERM)
        recv.wait(timeout=30)
    poll(lambda: primary.psql("SELECT active FROM pg_replication_slots "
                              "WHERE slot_name = 'busy'") == "f", 30, "slot busy inactive")
    out, log = run(primary, cluster("pg1", {"pg1": member("pg1")}))
    assert "Dropped unknown replication slot 'busy'" in log


def test_permanent_physical_slot_advanced(primary):
    config = {"slots": {"keep": None}}
    members = {"pg1": member("pg1")}
    run(primary, cluster("pg1", members, config), config)
    before = lsn(primary, "(SELECT restart_lsn FROM pg_replication_slots "
                          "WHERE slot_name = 'keep')")
    primary.psql("CREATE TABLE IF NOT EXISTS filler AS SELECT generate_series(1, 10000) AS i")
    primary.psql("SELECT pg_switch_wal()")
    target = lsn(primary, "pg_current_wal_lsn()")
    assert target > before
    status = {"optime": target, "slots": {"keep": target}}
    out, log = run(primary, cluster("pg1", members, config, status), config)
    assert out["plan"]["ops"] == [{"op": "advance", "name": "keep", "type": "physical",
                                   "lsn": target}]
    assert out["result"]["advanced"] == 1
    assert lsn(primary, "(SELECT restart_lsn FROM pg_replication_slots "
                        "WHERE slot_name = 'keep')") == target


def test_no_config_key_touches_nothing(primary):
    primary.psql("SELECT pg_create_physical_replication_slot('stray', true)")
    clu = cluster("pg1", {"pg1": member("pg1"), "pg2": member("pg2")}, with_config=False)
    out, log = run(primary, clu)
    assert out["managed"] is False
    assert out["plan"]["ops"] == []
    assert sorted(slots(primary)) == ["stray"]


def test_replica(primary, replica):
    config = {"slots": {"keep": None,
                        "cdc": {"type": "logical", "database": "postgres",
                                "plugin": "test_decoding"}}}
    members = {"pg1": member("pg1", role="master"), "pg2": member("pg2"),
               "pg3": member("pg3", tags={"replicatefrom": "pg2"})}
    primary.psql("SELECT pg_create_physical_replication_slot('stray', true)")
    # the primary gets pg2's slot and the permanent ones; pg3 cascades from pg2
    out, log = run(primary, cluster("pg1", members, config), config)
    assert sorted(slots(primary)) == ["cdc", "keep", "pg2"]
    # the replica (pg2) carries pg3 and the physical permanent slot; no logical slot
    out, log = run(replica, cluster("pg1", members, config), config, name="pg2",
                   role="replica")
    assert [d["name"] for d in out["desired"]] == ["pg3", "keep", "cdc"]
    assert out["plan"]["copy"] == []  # no position in /status: nothing to copy yet
    assert out["result"]["created"] == 2 and out["result"]["failed"] == 0
    # (pg_basebackup copies no slot: the replica has just its own)
    assert sorted(slots(replica)) == ["keep", "pg3"]

    # advanced on the replica to the position the leader published
    primary.psql("CREATE TABLE IF NOT EXISTS filler2 AS SELECT generate_series(1, 1000) AS i")
    target = lsn(primary, "pg_current_wal_lsn()")
    poll(lambda: lsn(replica, "pg_last_wal_replay_lsn()") >= target, 30, "replica replay")
    status = {"optime": target, "slots": {"keep": target}}
    out, log = run(replica, cluster("pg1", members, config, status), config, name="pg2",
                   role="replica")
    assert out["result"]["advanced"] == 1 and out["result"]["failed"] == 0
    assert lsn(replica, "(SELECT restart_lsn FROM pg_replication_slots "
                        "WHERE slot_name = 'keep')") == target
    drop_all(replica)


# ---- logical slots on a replica: copy, readiness, advance, promotion ----

def logical_changes(pg, slot):
    """The data column of pg_logical_slot_get_changes (consumes them)."""
    text = pg.psql("SELECT data FROM pg_logical_slot_get_changes('%s', NULL, NULL)" % slot)
    return text.splitlines()


def test_logical_slots_on_replica(primary):
    """A permanent logical slot is copied from the primary into the stopped
    replica, reported not ready until the primary's physical slot for the
    replica carries a catalog_xmin, advanced on the replica to the /status
    position, usable after promotion from that position on, and dropped on
    the replica once it is no longer wanted."""
    slots_conf = {"cdc": {"type": "logical", "database": "postgres",
                          "plugin": "test_decoding"},
                  "cdc_old": {"type": "logical", "database": "postgres",
                              "plugin": "test_decoding"}}
    config = {"slots": slots_conf,
              "postgresql": {"authentication": {"superuser": {"username": "postgres"}}}}
    url = "postgres://127.0.0.1:%d/postgres" % primary.port
    members = {"pg1": member("pg1", role="master", conn_url=url), "pg2": member("pg2")}

    def clu(status=None, conf=config):
        return cluster("pg1", members, {"slots": conf["slots"]}, status)

    # cdc_old and pg2's physical slot exist before the replica is cloned:
    # the WAL from cdc_old's restart_lsn on is never on the replica
    old_only = {"slots": {"cdc_old": slots_conf["cdc_old"]},
                "postgresql": config["postgresql"]}
    out, log = run(primary, clu(conf=old_only), old_only)
    assert sorted(slots(primary)) == ["cdc_old", "pg2"]
    rep = PgInstance("slots-pg2")
    try:
        # wal_keep_size: the stop for the copy must not recycle cdc's WAL
        rep.base_backup_from(primary, primary_slot_name="pg2", hot_standby_feedback=False,
                             wal_receiver_status_interval=1, wal_keep_size="64MB")
        rep.start()
        poll(lambda: primary.psql("SELECT active FROM pg_replication_slots "
                                  "WHERE slot_name = 'pg2'") == "t", 30, "pg2 streaming")
        # the primary creates cdc
        out, log = run(primary, clu(), config)
        assert out["result"]["failed"] == 0
        assert sorted(slots(primary)) == ["cdc", "cdc_old", "pg2"]
        primary.psql("CREATE TABLE logi(v text)")
        primary.psql("INSERT INTO logi VALUES ('before-copy')")
        assert any("before-copy" in c for c in logical_changes(primary, "cdc"))
        version = int(rep.psql("SHOW server_version_num"))
        pos = {n: lsn(primary, "(SELECT confirmed_flush_lsn FROM pg_replication_slots "
                               "WHERE slot_name = '%s')" % n) for n in ("cdc", "cdc_old")}
        # what the leader publishes: the logical slots at confirmed_flush_lsn
        wal = lsn(primary, "pg_current_wal_lsn()")
        out, log = run(primary, clu(), config, last_lsn=wal)
        assert out["status_slots"] == pos
        status = {"optime": wal, "slots": out["status_slots"]}

        # the replica wants both slots, has none: they are to be copied
        out, log = run(rep, clu(status), config, name="pg2", role="replica")
        assert sorted(out["plan"]["copy"]) == ["cdc", "cdc_old"]
        assert sorted(out["result"]["copy"]) == ["cdc", "cdc_old"]
        assert out["hot_standby_feedback"] is True  # Patroni would force it on
        # a slot without a /status position is not copied (Patroni waits)
        out, log = run(rep, clu({"optime": 1}), config, name="pg2", role="replica")
        assert out["plan"]["copy"] == []

        doc = {"name": "pg2", "role": "replica", "config": config, "cluster": clu(status),
               "server_version": version, "logical": {},
               "copy": {"names": ["cdc", "cdc_old", "not_configured"],
                        "install": rep.datadir}}
        # never into a running instance
        out, log = run_doc(None, dict(doc))
        assert sorted(c["name"] for c in out["copied"]) == ["cdc", "cdc_old"]
        assert out["installed"] is False and "running" in out["install_error"]
        assert not os.path.exists(os.path.join(rep.datadir, "pg_replslot", "cdc"))

        rep.stop()
        out, log = run_doc(None, dict(doc))
        assert out["installed"] is True, out["install_error"]
        copied = {c["name"]: c for c in out["copied"]}
        assert copied["cdc"]["database"] == "postgres"
        assert copied["cdc"]["plugin"] == "test_decoding"
        assert sorted(out["logical"]["pending"]) == ["cdc", "cdc_old"]
        state = os.stat(os.path.join(rep.datadir, "pg_replslot", "cdc", "state"))
        assert (state.st_uid, state.st_mode & 0o777) == (rep.user.pw_uid, 0o600)
        assert not os.path.exists(os.path.join(rep.datadir, "pg_replslot", "cdc.tmp"))
        rep.start()
        assert slots(rep)["cdc"] == ("logical", "postgres", "test_decoding", True)
        assert slots(rep)["cdc_old"] == ("logical", "postgres", "test_decoding", True)

        # not ready while the replica sends no hot_standby_feedback
        logical = {"pending": out["logical"]["pending"]}
        out, log = run(rep, clu(status), config, name="pg2", role="replica", logical=logical)
        assert sorted(out["logical"]["pending"]) == ["cdc", "cdc_old"]
        assert 'Logical slot failover requires "hot_standby_feedback"' in log
        assert "is safe to be used after a failover" not in log

        rep.psql("ALTER SYSTEM SET hot_standby_feedback = on")
        rep.psql("SELECT pg_reload_conf()")
        poll(lambda: primary.psql("SELECT catalog_xmin IS NOT NULL FROM pg_replication_slots"
                                  " WHERE slot_name = 'pg2'") == "t", 30,
             "catalog_xmin on the primary's physical slot pg2")

        logs = []

        def ready():
            nonlocal logical
            out, log = run(rep, clu(status), config, name="pg2", role="replica",
                           logical=logical)
            logical = {"pending": out["logical"]["pending"]}
            logs.append(log)
            return out["logical"]["pending"] == {}
        poll(ready, 30, "copied slots ready")
        for name in ("cdc", "cdc_old"):
            assert "Logical slot %s is safe to be used after a failover" % name in "".join(logs)

        # changes on the primary, consumed there: the replica follows to /status
        primary.psql("INSERT INTO logi VALUES ('consumed-on-primary')")
        logical_changes(primary, "cdc")
        target = lsn(primary, "(SELECT confirmed_flush_lsn FROM pg_replication_slots "
                              "WHERE slot_name = 'cdc')")
        assert target > pos["cdc"]
        poll(lambda: lsn(rep, "pg_last_wal_replay_lsn()") >= target, 30, "replica replay")
        status = {"optime": target, "slots": {"cdc": target, "cdc_old": target}}
        out, log = run(rep, clu(status), config, name="pg2", role="replica")
        assert out["plan"]["ops"] == [
            {"op": "advance", "name": "cdc", "type": "logical", "database": "postgres",
             "lsn": target},
            {"op": "advance", "name": "cdc_old", "type": "logical", "database": "postgres",
             "lsn": target}]
        assert out["result"]["advanced"] == 1 and out["result"]["failed"] == 1, log
        # cdc_old needs WAL the replica never had (58P01): copy it again
        assert "Failed to advance logical replication slot 'cdc_old'" in log
        assert out["result"]["copy"] == ["cdc_old"]
        assert lsn(rep, "(SELECT confirmed_flush_lsn FROM pg_replication_slots "
                        "WHERE slot_name = 'cdc')") == target

        # cdc_old is no longer wanted: dropped on the replica
        conf2 = {"slots": {"cdc": slots_conf["cdc"]},
                 "postgresql": config["postgresql"]}
        out, log = run(rep, clu(status, conf2), conf2, name="pg2", role="replica")
        assert "Dropped unknown replication slot 'cdc_old'" in log
        assert sorted(slots(rep)) == ["cdc"]

        # written after the advance position, then a promotion: the slot
        # decodes exactly what came after it
        primary.psql("INSERT INTO logi VALUES ('after-advance')")
        end = lsn(primary, "pg_current_wal_lsn()")
        poll(lambda: lsn(rep, "pg_last_wal_replay_lsn()") >= end, 30, "replica replay")
        rep.psql("SELECT pg_promote(true, 30)")
        out, log = run_doc(None, {"name": "pg2", "role": "primary", "config": conf2,
                                  "cluster": clu(status, conf2), "server_version": version,
                                  "logical": {"pending": {"cdc": None}}, "promote": True})
        assert "Logical replication slots that might be unsafe to use after promote: " \
               "{'cdc'}" in log
        changes = logical_changes(rep, "cdc")
        assert any("after-advance" in c for c in changes), changes
        assert not any("consumed-on-primary" in c or "before-copy" in c for c in changes)
    finally:
        rep.cleanup()
        drop_all(primary)
        primary.psql("DROP TABLE IF EXISTS logi")
