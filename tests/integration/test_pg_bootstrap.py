"""core/pg_bootstrap.c against real PostgreSQL 15, through tests/tools/pgboot_probe:
bootstrap with initdb (the seed's list-form options, the map form, forbidden
options refused before anything runs) and with a custom method, the
post-bootstrap roles and script on the started primary, and replica creation
by pg_basebackup (then streaming as a standby) and by custom methods with
Patroni's argv/env contract (tests/data/pgboot/method.sh records what it was
given).

The probe drives each task as the HA loop would, in 100 ms slices of
pgkeel_pg_task_wait(); max_overrun_ms shows that no slice blocked, even
across pg_basebackup's 5 s retry pause.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile

import pytest
import yaml

from pg_instance import PG_BIN, PgInstance, free_port, have_postgres, poll, server_user

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "pgboot_probe")
METHOD_SH = os.path.join(TOP, "tests", "data", "pgboot", "method.sh")

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="pgboot_probe not built (make check)"),
]

SCOPE = "boot-test"
# quotes, a backslash and "$$": SQL quoting, the DO block's dollar tag, pgpass escaping
SUPERUSER_PW = "su'per\\secret $$ 1"
REPL_PW = "rep:pass\\word"
REWIND_PW = "rewind-pw-7f3a"
ADMIN_PW = "admin-pw-91c2"
PGOPTIONS = "-c synchronous_commit=local -c statement_timeout=0"

# The seed's bootstrap section (tests/config/seed-pg-1.yml), plus what the
# tests need: scram on TCP so that passwords matter, and a loopback
# replication rule (the seed's pg_hba admits none).
SEED_INITDB = [{"encoding": "UTF8"}, "data-checksums"]
SEED_PG_HBA = [
    "host replication replicator 10.0.6.0/24 scram-sha-256",
    "host all all 10.0.0.0/8 scram-sha-256",
    "local all all peer",
]
TEST_HBA_RULE = "host replication replicator 127.0.0.1/32 scram-sha-256"

SLICE_SLACK_MS = 300  # what one 100 ms slice may overrun: scheduling, a role's SQL


def pgpass_escape(s):
    return s.replace("\\", "\\\\").replace(":", "\\:")


def conninfo_escape(s):
    out = ""
    for ch in s:
        if ch in "'\\ ":
            out += "\\"
        out += ch
    return out


class Env:
    """A temp dir owned by the server user: instances, configs, records, TMPDIR."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="pgkeel-boot-")
        os.chmod(self.base, 0o755)
        self.user = server_user()
        self.tmpdir = self.mkdir("tmp")
        self.script = os.path.join(self.base, "method.sh")
        shutil.copy(METHOD_SH, self.script)
        os.chmod(self.script, 0o755)
        self.instances = []
        self.n = 0

    def mkdir(self, name):
        path = os.path.join(self.base, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o700)
        os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return path

    def instance(self, name):
        pg = PgInstance(name, base_dir=self.base)
        self.instances.append(pg)
        return pg

    def record_file(self):
        self.n += 1
        path = os.path.join(self.base, "record-%d.txt" % self.n)
        with open(path, "w"):
            pass
        os.chmod(path, 0o666)
        return path

    def config(self, pg, name, bootstrap=None, postgresql=None):
        cfg = {
            "scope": SCOPE,
            "name": name,
            "restapi": {"listen": "127.0.0.1:8008", "connect_address": "127.0.0.1:8008"},
            "etcd3": {"hosts": "127.0.0.1:2379"},
            "bootstrap": bootstrap if bootstrap is not None else {},
            "postgresql": {
                "listen": "127.0.0.1:%d" % pg.port,
                "connect_address": "127.0.0.1:%d" % pg.port,
                "data_dir": pg.datadir,
                "bin_dir": PG_BIN,
                "pgpass": os.path.join(self.base, name + ".pgpass"),
                "use_unix_socket": True,
                "authentication": {
                    "superuser": {"username": "postgres", "password": SUPERUSER_PW},
                    "replication": {"username": "replicator", "password": REPL_PW},
                    "rewind": {"username": "rewinder", "password": REWIND_PW},
                },
                "parameters": {"unix_socket_directories": pg.sockdir},
            },
        }
        cfg["postgresql"].update(postgresql or {})
        self.n += 1
        path = os.path.join(self.base, "%s-%d.yml" % (name, self.n))
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f, default_flow_style=False, sort_keys=False)
        return path

    def probe(self, cfg, *args, record=None, timeout=600):
        env = {"PATH": PG_BIN + ":/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
               "HOME": self.base, "TMPDIR": self.tmpdir}
        if record is not None:
            env["PGBOOT_RECORD"] = record
        argv = [PROBE]
        if cfg is not None:
            argv += ["--config", cfg]
        if os.geteuid() == 0:
            argv += ["--run-as", self.user.pw_name]
        argv += [str(a) for a in args]
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        log = p.stderr.decode(errors="replace")
        assert p.returncode == 0, "pgboot_probe exited %d: %s" % (p.returncode, log)
        out = json.loads(p.stdout)
        out["log"] = log
        return out

    def cleanup(self):
        try:
            for pg in self.instances:
                pg.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def records(path):
    """The runs method.sh recorded: argv, env, pgpass lines, marker, SQL answers, status."""
    runs = []
    cur = None
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            if key == "BEGIN":
                cur = {"argv": [value], "env": {}, "pgpass": [], "marker": None, "sql": [],
                       "status": None}
                runs.append(cur)
            elif key == "ARG":
                cur["argv"].append(value)
            elif key == "ENV":
                name, _, val = value.partition("=")
                cur["env"][name] = val
            elif key == "PGPASS":
                cur["pgpass"].append(value)
            elif key == "MARKER":
                cur["marker"] = value == "yes"
            elif key == "SQL":
                cur["sql"].append(value)
            elif key == "END":
                cur["status"] = int(value)
    return runs


def controldata(pg):
    out = pg.run([pg.bin("pg_controldata"), pg.datadir]).stdout.decode()
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in out.splitlines()) if v}


def tcp_psql(pg, user, password, sql):
    """psql over TCP with a password (scram on 127.0.0.1): None when refused."""
    env = dict(pg.env, PGPASSWORD=password)
    p = subprocess.run([pg.bin("psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(pg.port),
                        "-U", user, "-d", "postgres", "-c", sql], env=env, timeout=30,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.stdout.decode().strip() if p.returncode == 0 else None


def make_marker(env, pg):
    """A data directory holding only a marker file (for keep_data)."""
    os.makedirs(pg.datadir, exist_ok=True)
    os.chown(pg.datadir, env.user.pw_uid, env.user.pw_gid)
    os.chmod(pg.datadir, 0o700)
    with open(os.path.join(pg.datadir, "marker"), "w") as f:
        f.write("x")


def assert_did_not_block(out):
    assert out["max_overrun_ms"] < SLICE_SLACK_MS, out


@pytest.fixture(scope="module")
def env():
    e = Env()
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture(scope="module")
def primary(env):
    """Bootstrapped with the seed's options, started, post-bootstrapped."""
    pg = env.instance("primary")
    record = env.record_file()
    bootstrap = {
        "initdb": SEED_INITDB + [{"auth-host": "scram-sha-256"}],
        "pg_hba": SEED_PG_HBA + [TEST_HBA_RULE],
        "users": {"admin": {"password": ADMIN_PW, "options": ["createrole", "createdb"]}},
        "post_bootstrap": "%s --psql" % env.script,
    }
    cfg = env.config(pg, "pg-1", bootstrap=bootstrap)
    boot = env.probe(cfg, "bootstrap")
    assert boot["result"] == "succeeded", boot
    # what the config module would write; log_statement=all to catch a logged password
    pg.configure(listen_addresses="127.0.0.1", wal_level="replica", max_wal_senders=10,
                 hot_standby=True, fsync=False, shared_buffers="16MB",
                 logging_collector=False, log_statement="all", log_min_duration_statement=0)
    pg.start()
    post = env.probe(cfg, "post-bootstrap", record=record)
    pg.boot, pg.post, pg.cfg, pg.record = boot, post, cfg, record
    return pg


# ---------------------------------------------------------------- bootstrap

def test_bootstrap_initdb_with_seed_options(env, primary):
    boot = primary.boot
    argv = boot["argv"]
    assert argv[:4] == [os.path.join(PG_BIN, "initdb"), "--encoding=UTF8", "--data-checksums",
                        "--auth-host=scram-sha-256"], argv
    assert argv[4] == "--username=postgres"
    assert argv[5].startswith("--pwfile=" + os.path.join(env.tmpdir, "pgkeel-pwfile-"))
    assert argv[6:] == [primary.datadir]
    assert boot["state"] == "initializing new cluster"
    assert boot["custom"] is False and boot["method"] == "initdb"
    # the password file is gone, and initdb ran as a child the probe kept polling
    assert os.listdir(env.tmpdir) == []
    assert boot["slices"] > 1
    assert_did_not_block(boot)
    assert controldata(primary)["Data page checksum version"] == "1"
    assert primary.psql("SHOW server_encoding") == "UTF8"
    with open(os.path.join(primary.datadir, "pg_hba.conf")) as f:
        hba = f.read()
    assert hba.endswith("\n\n" + "\n".join(SEED_PG_HBA + [TEST_HBA_RULE]) + "\n")
    # initdb's own output was collected and logged
    assert "initdb: Success." in boot["log"]


def test_post_bootstrap_roles(primary):
    assert primary.post["result"] == "succeeded", primary.post
    rows = primary.psql("SELECT rolname, rolsuper, rolreplication, rolcreaterole, rolcreatedb, "
                        "rolcanlogin FROM pg_roles WHERE rolname IN "
                        "('postgres', 'replicator', 'rewinder', 'admin') ORDER BY rolname")
    assert rows.splitlines() == [
        "admin|f|f|t|t|t",
        "postgres|t|t|t|t|t",
        "replicator|f|t|f|f|t",
        "rewinder|f|f|f|f|t",
    ]
    for f in ("pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)",
              "pg_read_binary_file(text)", "pg_read_binary_file(text, bigint, bigint, boolean)"):
        assert primary.psql("SELECT has_function_privilege('rewinder', 'pg_catalog.%s', "
                            "'EXECUTE')" % f) == "t", f
    assert primary.psql("SELECT has_function_privilege('admin', "
                        "'pg_catalog.pg_ls_dir(text, boolean, boolean)', 'EXECUTE')") == "f"
    # the passwords work over TCP (scram): initdb's --pwfile and the ALTER/CREATE ROLEs
    assert tcp_psql(primary, "postgres", SUPERUSER_PW, "SELECT current_user") == "postgres"
    assert tcp_psql(primary, "admin", ADMIN_PW, "SELECT current_user") == "admin"
    assert tcp_psql(primary, "rewinder", REWIND_PW, "SELECT current_user") == "rewinder"
    assert tcp_psql(primary, "admin", "wrong", "SELECT 1") is None


def test_post_bootstrap_statements_not_logged(primary):
    with open(primary.logfile, errors="replace") as f:
        log = f.read()
    assert "SET log_statement TO none" in log  # statements are logged on this server...
    for pw in ("secret", "rep:pass", REWIND_PW, ADMIN_PW):
        assert pw not in log  # ...but not the role DDL with the passwords
    assert "CREATE ROLE" not in log and "ALTER ROLE" not in log


def test_post_bootstrap_script_contract(env, primary):
    runs = records(primary.record)
    assert len(runs) == 1, runs
    run = runs[0]
    dsn = "dbname=postgres user=postgres host=%s port=%d" % (primary.sockdir, primary.port)
    assert run["argv"][1:] == ["--psql", dsn]
    assert run["env"] == {"PGPASSFILE": os.path.join(env.base, "pg-1.pgpass"),
                          "PGOPTIONS": PGOPTIONS}
    assert run["pgpass"] == ["%s:%d:*:postgres:%s" % (primary.sockdir, primary.port,
                                                      pgpass_escape(SUPERUSER_PW))]
    # PGOPTIONS applied; Patroni's order: the replication role comes after the script
    assert run["sql"][:3] == ["local", "0", "0"], run
    assert run["status"] == 0
    assert primary.psql("SELECT count(*) FROM pg_tables "
                        "WHERE tablename = 'post_bootstrap_ran'") == "1"


def test_failing_post_bootstrap_fails_with_its_output(env, primary):
    record = env.record_file()
    cfg = env.config(primary, "pg-1", bootstrap={"post_init": "%s --fail" % env.script})
    out = env.probe(cfg, "post-bootstrap", record=record)
    assert out["result"] == "failed", out
    err = out["error"]
    assert err.startswith("post_init script %s --fail failed: exited with code 3" % env.script)
    assert "method.sh: failing on purpose" in err and "method.sh: boom (stderr)" in err
    assert [r["status"] for r in records(record)] == [3]


@pytest.mark.parametrize("initdb, name", [
    ([{"encoding": "UTF8"}, {"pgdata": "/somewhere"}], "pgdata"),
    (["data-checksums", "nosync"], "nosync"),
    (["pwfile=/tmp/x"], "pwfile"),
    ({"encoding": "UTF8", "sync-only": True}, "sync-only"),
    ({"version": "1"}, "version"),
])
def test_forbidden_initdb_option_refused(env, initdb, name):
    pg = env.instance("forbidden")
    cfg = env.config(pg, "pg-x", bootstrap={"initdb": initdb})
    out = env.probe(cfg, "bootstrap")
    assert out["result"] == "refused", out
    assert out["error"] == "bootstrap.initdb: %s option for initdb is not allowed" % name
    assert not os.path.exists(pg.datadir)
    assert os.listdir(env.tmpdir) == []


@pytest.mark.parametrize("initdb, message", [
    ([{"encoding": "UTF8", "locale": "C"}], "only one key-value is allowed"),
    ([{"encoding": 8}], "value should be a string"),
    ([["nested"]], "value should be string value or a single key-value pair"),
    # (a bare string is refused by the configuration loader already)
])
def test_malformed_initdb_options_refused(env, initdb, message):
    pg = env.instance("malformed")
    out = env.probe(env.config(pg, "pg-x", bootstrap={"initdb": initdb}), "bootstrap")
    assert out["result"] == "refused", out
    assert out["error"].startswith("bootstrap.initdb: ") and message in out["error"], out
    assert not os.path.exists(pg.datadir)


def test_bootstrap_initdb_map_form(env):
    pg = env.instance("mapform")
    bootstrap = {"initdb": {"encoding": "UTF8", "locale": "C", "data-checksums": False,
                            "auth-local": "'trust'"},
                 "pg_hba": SEED_PG_HBA}
    # postgresql.pg_hba is set: bootstrap.pg_hba is not appended
    cfg = env.config(pg, "pg-m", bootstrap=bootstrap,
                     postgresql={"pg_hba": ["local all all trust"]})
    out = env.probe(cfg, "bootstrap")
    assert out["result"] == "succeeded", out
    argv = out["argv"]
    assert argv[1:4] == ["--encoding=UTF8", "--locale=C", "--auth-local=trust"], argv
    assert argv[4] == "--username=postgres" and argv[5].startswith("--pwfile=")
    assert argv[6] == pg.datadir
    assert controldata(pg)["Data page checksum version"] == "0"
    with open(os.path.join(pg.datadir, "pg_hba.conf")) as f:
        hba = f.read()
    assert SEED_PG_HBA[0] not in hba
    # a data directory that is not empty is never bootstrapped over
    again = env.probe(cfg, "bootstrap")
    assert again["result"] == "refused" and "is not empty" in again["error"], again


def test_custom_bootstrap_method(env):
    pg = env.instance("custom")
    record = env.record_file()
    bootstrap = {"method": "restore",
                 "restore": {"command": "%s --signals" % env.script, "no_params": False,
                             "keep_existing_recovery_conf": False, "extra": "x"},
                 "pg_hba": ["host all all 10.1.0.0/16 md5"]}
    out = env.probe(env.config(pg, "pg-c", bootstrap=bootstrap), "bootstrap", record=record)
    assert out["result"] == "succeeded", out
    assert out["custom"] is True and out["method"] == "restore"
    assert out["state"] == "running custom bootstrap script"
    run, = records(record)
    assert run["argv"] == [env.script, "--signals", "--scope=" + SCOPE,
                           "--datadir=" + pg.datadir, "--extra=x"]
    assert "PGPASSFILE" not in run["env"]
    # the promote trigger and the recovery files the command left are removed
    for f in ("standby.signal", "recovery.signal", "promote"):
        assert not os.path.exists(os.path.join(pg.datadir, f)), f
    with open(os.path.join(pg.datadir, "pg_hba.conf")) as f:
        assert f.read() == "\nhost all all 10.1.0.0/16 md5\n"


def test_custom_bootstrap_keeps_recovery_settings(env):
    pg = env.instance("custom2")
    record = env.record_file()
    bootstrap = {"method": "restore",
                 "restore": {"command": "%s --signals" % env.script, "no_params": True,
                             "keep_existing_recovery_conf": True,
                             "target": pg.datadir}}
    out = env.probe(env.config(pg, "pg-c", bootstrap=bootstrap), "bootstrap", record=record)
    assert out["result"] == "succeeded", out
    assert out["keep_existing_recovery_conf"] is True
    run, = records(record)
    assert run["argv"] == [env.script, "--signals", "--target=" + pg.datadir]
    assert os.path.exists(os.path.join(pg.datadir, "standby.signal"))
    assert os.path.exists(os.path.join(pg.datadir, "recovery.signal"))
    assert not os.path.exists(os.path.join(pg.datadir, "promote"))

    pg2 = env.instance("custom3")
    bootstrap["restore"] = {"command": "%s --signals" % env.script,
                            "recovery_conf": {"restore_command": "cp /arch/%f %p"}}
    out = env.probe(env.config(pg2, "pg-c", bootstrap=bootstrap), "bootstrap", record=record)
    assert out["result"] == "succeeded", out
    assert out["recovery_conf"] == {"restore_command": "cp /arch/%f %p"}
    assert os.path.exists(os.path.join(pg2.datadir, "standby.signal"))


def test_failing_custom_bootstrap(env):
    pg = env.instance("custom4")
    bootstrap = {"method": "restore", "restore": {"command": "%s --fail" % env.script}}
    out = env.probe(env.config(pg, "pg-c", bootstrap=bootstrap), "bootstrap")
    assert out["result"] == "failed", out
    assert out["state"] == "custom bootstrap failed"
    assert out["error"].startswith("bootstrap method restore exited with code 3: ")
    assert "boom (stderr)" in out["error"]


# ------------------------------------------------------------------ replicas

def replica_config(env, rep, **postgresql):
    return env.config(rep, "pg-2", postgresql=postgresql)


def source_url(primary):
    return "postgres://127.0.0.1:%d/postgres" % primary.port


def replication_dsn(primary):
    return "dbname=postgres user=replicator host=127.0.0.1 port=%d" % primary.port


def test_replica_by_basebackup_streams(env, primary):
    rep = env.instance("replica1")
    cfg = replica_config(env, rep, basebackup=[
        {"checkpoint": "fast"}, {"max-rate": "100M"}, "no-sync", {"format": "tar"},
        "wal-method=fetch"])
    out = env.probe(cfg, "replica", "--source", source_url(primary))
    assert out["result"] == "succeeded", out
    assert out["method"] == "basebackup" and out["commands"] == 1
    pgpass = os.path.join(env.base, "pg-2.pgpass")
    assert out["argv"] == [os.path.join(PG_BIN, "pg_basebackup"), "--pgdata=" + rep.datadir,
                           "-X", "stream", "--dbname=" + replication_dsn(primary),
                           "--checkpoint=fast", "--max-rate=100M", "--no-sync"]
    assert out["env"] == ["PGPASSFILE=" + pgpass]
    assert "format option for basebackup is not allowed" in out["log"]
    assert "wal-method option for basebackup is not allowed" in out["log"]
    assert out["state"] == "stopped"
    with open(pgpass) as f:
        assert f.read() == "127.0.0.1:%d:*:replicator:%s" % (primary.port,
                                                             pgpass_escape(REPL_PW))
    assert_did_not_block(out)

    # start it as a standby (the minimal recovery settings the config module will write)
    with open(os.path.join(rep.datadir, "standby.signal"), "w"):
        pass
    conninfo = "%s passfile=%s application_name=pg-2" % (replication_dsn(primary), pgpass)
    rep.configure(primary_conninfo=conninfo, cluster_name="pg-2", log_statement="none")
    rep.start()
    poll(lambda: primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = "
                              "'streaming' AND application_name = 'pg-2' "
                              "AND usename = 'replicator'") == "1", 30, "pg-2 streaming")
    primary.psql("CREATE TABLE streamed AS SELECT 42 AS x")
    poll(lambda: rep.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'streamed'") == "1",
         30, "the new table on the replica")
    assert rep.psql("SELECT pg_is_in_recovery()") == "t"
    rep.stop()


def test_basebackup_two_attempts_five_seconds_apart(env):
    rep = env.instance("replica-retry")
    make_marker(env, rep)
    cfg = replica_config(env, rep)
    closed = free_port()
    out = env.probe(cfg, "replica", "--source", "postgres://127.0.0.1:%d/postgres" % closed)
    assert out["result"] == "failed", out
    assert out["commands"] == 2
    assert out["elapsed_ms"] >= 5000
    # the pause was a timer: every 100 ms slice came back on time
    assert out["slices"] >= 45
    assert_did_not_block(out)
    assert "Trying again in 5 seconds" in out["log"]
    err = out["error"]
    assert err.startswith("failed to create a replica: Error when fetching backup: "
                          "pg_basebackup exited with code 1: "), err
    assert "connection to server" in err
    # wiped before the first attempt, removed after the failure
    assert not os.path.exists(rep.datadir)


@pytest.mark.parametrize("version, allowed", [(150000, True), (140000, False)])
def test_basebackup_compress_on_the_server_only_from_15(env, version, allowed):
    rep = env.instance("replica-compress")
    cfg = replica_config(env, rep, basebackup=[{"compress": "server-gzip"},
                                               {"compress": "gzip:5"}])
    out = env.probe(cfg, "--server-version", version, "--retry-ms", "100", "replica",
                    "--source", "postgres://127.0.0.1:%d/postgres" % free_port())
    assert out["result"] == "failed" and out["commands"] == 2, out
    assert out["argv"][5:] == (["--compress=server-gzip"] if allowed else []), out["argv"]
    assert "compress option for basebackup is not allowed" in out["log"]


def test_cancel_replica_creation(env):
    rep = env.instance("replica-cancel")
    cfg = replica_config(env, rep)
    out = env.probe(cfg, "--cancel-after-ms", "1000", "replica", "--source",
                    "postgres://127.0.0.1:%d/postgres" % free_port())
    assert out["result"] == "failed" and out["cancelled"] is True, out
    assert out["error"] == "create replica cancelled"
    assert out["elapsed_ms"] < 4000
    assert not os.path.exists(rep.datadir)


def test_custom_replica_method_contract(env, primary):
    rep = env.instance("replica-custom")
    make_marker(env, rep)
    record = env.record_file()
    cfg = replica_config(env, rep, create_replica_methods=["walg"],
                         walg={"command": "%s --tag 'a b'" % env.script, "extra": 1})
    out = env.probe(cfg, "replica", "--source", source_url(primary), record=record)
    assert out["result"] == "succeeded", out
    assert out["method"] == "walg"
    run, = records(record)
    # Patroni 3.0.2's order: the section's own keys, then the defaults
    assert run["argv"] == [env.script, "--tag", "a b", "--extra=1", "--scope=" + SCOPE,
                           "--role=replica", "--datadir=" + rep.datadir,
                           "--connstring=" + replication_dsn(primary)]
    assert run["env"] == {"PGPASSFILE": os.path.join(env.base, "pg-2.pgpass")}
    assert run["pgpass"] == ["127.0.0.1:%d:*:replicator:%s" % (primary.port,
                                                               pgpass_escape(REPL_PW))]
    assert run["marker"] is False  # the data directory was wiped first
    assert os.path.exists(os.path.join(rep.datadir, "PG_VERSION"))


def test_custom_replica_method_keep_data(env, primary):
    rep = env.instance("replica-keep")
    make_marker(env, rep)
    record = env.record_file()
    cfg = replica_config(env, rep, create_replica_methods=["restore"],
                         restore={"command": env.script, "keep_data": True})
    out = env.probe(cfg, "replica", "--source", source_url(primary), record=record)
    assert out["result"] == "succeeded", out
    run, = records(record)
    assert run["marker"] is True
    # without no_params Patroni passes keep_data on as well
    assert run["argv"][1:3] == ["--keep_data=True", "--scope=" + SCOPE]


def test_custom_replica_method_no_params(env, primary):
    rep = env.instance("replica-noparams")
    make_marker(env, rep)
    record = env.record_file()
    cfg = replica_config(env, rep, create_replica_methods=["restore"],
                         restore={"command": env.script, "no_params": True, "keep_data": True,
                                  "no_leader": True, "target": rep.datadir})
    out = env.probe(cfg, "replica", "--source", source_url(primary), record=record)
    assert out["result"] == "succeeded", out
    run, = records(record)
    assert run["argv"] == [env.script, "--target=" + rep.datadir]
    assert run["marker"] is True


def test_failing_method_falls_through_to_basebackup(env, primary):
    rep = env.instance("replica-fallthrough")
    record = env.record_file()
    cfg = replica_config(env, rep, create_replica_methods=["broken", "basebackup"],
                         broken={"command": env.script, "fail": 1},
                         basebackup={"checkpoint": "fast"})
    out = env.probe(cfg, "replica", "--source", source_url(primary), record=record)
    assert out["result"] == "succeeded", out
    assert out["method"] == "basebackup" and out["commands"] == 2
    run, = records(record)
    assert run["status"] == 3 and "--fail=1" in run["argv"]
    assert "Error creating replica using method broken" in out["log"]
    assert "boom (stderr)" in out["log"]
    assert out["argv"][-1] == "--checkpoint=fast"
    assert controldata(rep)["Database cluster state"] == "in production"


def test_no_leader(env, primary):
    rep = env.instance("replica-noleader")
    record = env.record_file()
    cfg = replica_config(env, rep, create_replica_methods=["basebackup", "restore", "other"],
                         restore={"command": env.script, "no_leader": True},
                         other={"command": env.script})
    assert env.probe(cfg, "without-leader")["without_leader"] is True
    assert env.probe(cfg, "without-leader", "--methods", '["basebackup", "other"]')[
        "without_leader"] is False
    out = env.probe(cfg, "replica", record=record)
    assert out["result"] == "succeeded", out
    assert out["method"] == "restore" and out["commands"] == 1
    run, = records(record)
    assert run["argv"] == [env.script, "--no_leader=True", "--scope=" + SCOPE, "--role=replica",
                           "--datadir=" + rep.datadir, "--connstring="]
    assert "PGPASSFILE" not in run["env"]
    # nothing that works without a leader: refused, nothing runs
    out = env.probe(cfg, "replica", "--methods", '["basebackup", "other"]', record=record)
    assert out["result"] == "refused", out
    assert out["error"] == "no replica creation method works without a leader"
    assert len(records(record)) == 1


def test_all_methods_fail_data_dir_removed(env, primary):
    rep = env.instance("replica-allfail")
    make_marker(env, rep)
    record = env.record_file()
    cfg = replica_config(env, rep, create_replica_methods=["broken", "broken2"],
                         broken={"command": "%s --fail" % env.script, "keep_data": True},
                         broken2={"command": "%s --fail" % env.script})
    out = env.probe(cfg, "replica", "--source", source_url(primary), record=record)
    assert out["result"] == "failed", out
    assert [r["marker"] for r in records(record)] == [True, False]
    assert out["error"].startswith("failed to create a replica: Error creating replica using "
                                   "method broken2: exited with code 3: ")
    assert not os.path.exists(rep.datadir)


# -------------------------------------------------------------------- pieces

def test_data_dir_helpers(env):
    d = env.mkdir("helpers")
    data = os.path.join(d, "data")
    os.makedirs(os.path.join(data, "lost+found"))
    with open(os.path.join(data, ".hidden"), "w"):
        pass
    assert env.probe(None, "empty", data)["empty"] is True
    assert env.probe(None, "empty", os.path.join(d, "missing"))["empty"] is True
    os.makedirs(os.path.join(data, "global"))
    with open(os.path.join(data, "global", "pg_control"), "w"):
        pass
    assert env.probe(None, "empty", data)["empty"] is False
    # a symlinked pg_wal and tablespace: their targets go too; other links are not followed
    for name in ("walx", "ts1", "keep"):
        os.makedirs(os.path.join(d, name))
        with open(os.path.join(d, name, "f"), "w"):
            pass
    os.symlink(os.path.join(d, "walx"), os.path.join(data, "pg_wal"))
    os.makedirs(os.path.join(data, "pg_tblspc"))
    os.symlink(os.path.join(d, "ts1"), os.path.join(data, "pg_tblspc", "16384"))
    os.makedirs(os.path.join(data, "base", "1"))
    os.symlink(os.path.join(d, "keep"), os.path.join(data, "base", "1", "link"))
    out = env.probe(None, "remove", data)
    assert out["ok"] is True, out
    assert sorted(os.listdir(d)) == ["keep"]
    assert os.listdir(os.path.join(d, "keep")) == ["f"]
    assert env.probe(None, "remove", data)["ok"] is True  # already gone


def test_local_address(env):
    pg = env.instance("addr")
    cfg = env.config(pg, "pg-a", postgresql={"listen": "0.0.0.0:%d" % pg.port,
                                             "use_unix_socket": False})
    out = env.probe(cfg, "local-address")
    assert (out["host"], out["port"]) == ("localhost", str(pg.port))
    cfg = env.config(pg, "pg-a", postgresql={"listen": "10.9.8.7,127.0.0.2:%d" % pg.port,
                                             "use_unix_socket": False})
    assert env.probe(cfg, "local-address")["host"] == "10.9.8.7"
    cfg = env.config(pg, "pg-a", postgresql={
        "parameters": {"unix_socket_directories": "relative, %s" % pg.sockdir}})
    assert env.probe(cfg, "local-address")["host"] == pg.sockdir
    assert env.probe(cfg, "local-address", "--replication")["host"] == "localhost"


def test_nothing_left_running(env):
    """Only the postmasters the fixtures started may remain; no probe children."""
    mine = set()
    for pg in env.instances:
        mine.update(pg.pids())
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        assert env.base not in cmd, cmd
