"""pg_rewind on real PostgreSQL 15 timelines (tests/tools/rewind_probe).

The pure half (core/pg_rewind.c):
1. A clean switchover: the old primary stops cleanly, its replica replays the
   shutdown checkpoint and is promoted.  The old primary's checkpoint ends
   exactly at the switch point (read with pg_waldump): no rewind needed.
2. A forced divergence: the old primary starts again on its own and writes.
   Now its checkpoint lies past the switch point: rewind needed; pg_rewind
   (run as pgkeel runs it) makes it a replica that streams from the new primary
   and sees the new primary's data, not its own diverged rows.

The real check and job (core/pg_rewind_run.c), each on a split brain: a
replica "b" is promoted while the primary "a" still runs and writes, with
scram-sha-256 for the rewind and replication roles on TCP:
3. the check says NEEDED for a, NOT_NEEDED for a replica "c" that stopped
   before the promotion (and once it follows b); the job waits for the
   leader's checkpoint, archives a's .ready segments, runs pg_rewind with the
   rewind role's password in PGPASSFILE, and a then streams from b;
4. a SIGKILLed a: the check cannot decide (crash recovery first); the job
   runs single-user crash recovery, a CHECKPOINT on b, then pg_rewind;
5. WAL that pg_rewind needs is gone from a's pg_wal but archived: without a
   restore_command the rewind FAILED (the data is kept); with one, the job
   fetches the missing segments and pg_rewind succeeds;
6. the same failure with remove_data_directory_on_rewind_failure removes the
   data directory.
The probe drives the job in 100 ms slices of pgkeel_rewind_job_wait();
max_overrun_ms shows that no slice blocked on a child.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest
import yaml

from pg_instance import PG_BIN, PgInstance, have_postgres, poll, server_user

BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "rewind_probe")

pytestmark = pytest.mark.skipif(not have_postgres(), reason="postgresql-15 is not installed")


def probe(pg, *args):
    out = pg.run([PROBE] + [str(a) for a in args], check=False)
    text = out.stdout.decode(errors="replace")
    assert out.returncode == 0, text + out.stderr.decode(errors="replace")
    return text.strip()


def controldata(pg):
    out = pg.run([pg.bin("pg_controldata"), pg.datadir]).stdout.decode()
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


def cd_value(cd, name):
    return cd[name].strip()


def replication_sql(pg, sql):
    """A replication-protocol command (IDENTIFY_SYSTEM, TIMELINE_HISTORY) via psql."""
    out = pg.run([pg.bin("psql"), "-At", "-F", "|",
                  "dbname=postgres replication=database host=%s port=%d user=postgres"
                  % (pg.sockdir, pg.port), "-c", sql]).stdout.decode()
    return out


def test_switchover_then_divergence():
    base = tempfile.mkdtemp(prefix="pgkeel-rewind-")
    os.chmod(base, 0o755)
    a = PgInstance("a", base_dir=base)
    b = PgInstance("b", base_dir=base)
    try:
        a.initdb(wal_log_hints=True)
        a.start()
        a.psql("CREATE TABLE t (x text); INSERT INTO t VALUES ('before')")
        b.base_backup_from(a)
        b.start()
        poll(lambda: "streaming" in a.psql("SELECT state FROM pg_stat_replication"), 30,
             "b to stream from a")
        assert probe(a, "possible", a.datadir, a.bin_dir) == "yes"

        # 1. clean switchover: a stops, b replays everything, b is promoted
        a.stop("fast")
        cd = controldata(a)
        a_ckpt = cd_value(cd, "Latest checkpoint location")
        poll(lambda: b.psql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % a_ckpt) == "t",
             30, "b to replay a's shutdown checkpoint")
        b.run([b.bin("pg_ctl"), "promote", "-D", b.datadir, "-w", "-t", "60"])
        poll(lambda: b.psql("SELECT pg_is_in_recovery()") == "f", 30, "b to be promoted")
        leader_tli = int(replication_sql(b, "IDENTIFY_SYSTEM").split("|")[1])
        assert leader_tli == 2
        history = replication_sql(b, "TIMELINE_HISTORY 2").split("|", 1)[1]
        hist_file = os.path.join(base, "history")
        with open(hist_file, "w") as f:
            f.write(history)
        os.chmod(hist_file, 0o644)
        end = probe(a, "checkpoint-end", a.bin_dir, a.datadir, 1, a_ckpt)
        switch = history.split("\t")[1]
        assert end == switch, (end, switch)
        assert probe(a, "decide", 1, a_ckpt, 0, end, leader_tli, hist_file) == "NOT_NEEDED"
        # without the checkpoint end the decision must be conservative
        assert probe(a, "decide", 1, a_ckpt, 0, "0/0", leader_tli, hist_file) == "NEEDED"

        # 2. divergence: a comes back alone as a primary on timeline 1 and writes
        a.start()
        a.psql("INSERT INTO t SELECT 'diverged ' || g FROM generate_series(1, 1000) g")
        b.psql("INSERT INTO t VALUES ('on b')")
        a.stop("fast")
        cd = controldata(a)
        a_ckpt = cd_value(cd, "Latest checkpoint location")
        assert int(cd_value(cd, "Latest checkpoint's TimeLineID")) == 1
        end = probe(a, "checkpoint-end", a.bin_dir, a.datadir, 1, a_ckpt)
        assert probe(a, "decide", 1, a_ckpt, 0, end, leader_tli, hist_file) == "NEEDED"

        # the rewind, run the way pgkeel runs it
        out = probe(a, "run", a.bin_dir, a.datadir,
                    "host=127.0.0.1 port=%d user=postgres dbname=postgres" % b.port)
        assert "result ok" in out, out
        # follow b: standby.signal + primary_conninfo, then it streams.  pg_rewind
        # copied b's configuration, whose postgresql.auto.conf still names a as
        # its upstream (pg_basebackup -R): clear it, as pgkeel clears recovery
        # settings from postgresql.auto.conf
        a.write_file(os.path.join(a.datadir, "postgresql.auto.conf"), "")
        a.write_file(os.path.join(a.datadir, "standby.signal"), "")
        a.configure(primary_conninfo="host=127.0.0.1 port=%d user=postgres application_name=a"
                    % b.port, port=a.port)
        a.start()
        poll(lambda: "streaming" in b.psql("SELECT state FROM pg_stat_replication "
                                           "WHERE application_name = 'a'"),
             60, "the rewound a to stream from b")
        poll(lambda: a.psql("SELECT count(*) FROM t WHERE x = 'on b'") == "1", 30,
             "b's row on a")
        assert a.psql("SELECT count(*) FROM t WHERE x LIKE 'diverged%'") == "0"
        assert a.psql("SELECT pg_is_in_recovery()") == "t"
    finally:
        a.cleanup()
        b.cleanup()
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- the job

REWIND_PW = "rew:ind\\pw 'q'"
REPL_PW = "repl-pw-4f1"
SUPER_PW = "super-pw-9c2"
SLICE_SLACK_MS = 400  # what one 100 ms slice may overrun: scheduling, the leader's SQL
SCRAM_HBA = ["host all rewinder 127.0.0.1/32 scram-sha-256",
             "host replication replicator 127.0.0.1/32 scram-sha-256"]


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


class Env:
    """A temp dir for the instances, their configuration files and an archive."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="pgkeel-rewind-")
        os.chmod(self.base, 0o755)
        self.user = server_user()
        self.arch = self.mkdir("archive")
        self.instances = []

    def mkdir(self, name):
        path = os.path.join(self.base, name)
        os.makedirs(path)
        os.chmod(path, 0o700)
        os.chown(path, self.user.pw_uid, self.user.pw_gid)
        return path

    def primary(self, name="a", **settings):
        pg = PgInstance(name, base_dir=self.base)
        self.instances.append(pg)
        pg.initdb(hba=SCRAM_HBA, wal_log_hints=True, **settings)
        pg.start()
        pg.psql("CREATE ROLE replicator REPLICATION LOGIN PASSWORD %s;"
                "CREATE ROLE rewinder LOGIN PASSWORD %s;"
                "ALTER ROLE postgres PASSWORD %s;"
                "GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean), "
                "pg_catalog.pg_stat_file(text, boolean), pg_catalog.pg_read_binary_file(text), "
                "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewinder;"
                "CREATE TABLE t (x text); INSERT INTO t VALUES ('before')"
                % (sql_literal(REPL_PW), sql_literal(REWIND_PW), sql_literal(SUPER_PW)))
        return pg

    def replica(self, primary, name):
        pg = PgInstance(name, base_dir=self.base)
        self.instances.append(pg)
        pg.base_backup_from(primary, archive_mode=False)
        pg.start()
        poll(lambda: primary.psql("SELECT state FROM pg_stat_replication "
                                  "WHERE application_name = '%s'" % name) == "streaming",
             30, "%s to stream" % name)
        return pg

    def config(self, pg, rewind_role=True, **postgresql):
        auth = {"superuser": {"username": "postgres", "password": SUPER_PW},
                "replication": {"username": "replicator", "password": REPL_PW}}
        if rewind_role:
            auth["rewind"] = {"username": "rewinder", "password": REWIND_PW}
        cfg = {
            "scope": "rewind-test",
            "name": pg.name,
            "restapi": {"listen": "127.0.0.1:8008", "connect_address": "127.0.0.1:8008"},
            "etcd3": {"hosts": "127.0.0.1:2379"},
            "postgresql": {
                "listen": "127.0.0.1:%d" % pg.port,
                "connect_address": "127.0.0.1:%d" % pg.port,
                "data_dir": pg.datadir,
                "bin_dir": PG_BIN,
                "pgpass": os.path.join(self.base, pg.name + ".pgpass"),
                "use_pg_rewind": True,
                "authentication": auth,
                "parameters": {"unix_socket_directories": pg.sockdir},
            },
        }
        cfg["postgresql"].update(postgresql)
        path = os.path.join(self.base, pg.name + ".yml")
        with open(path, "w") as f:
            yaml.safe_dump(cfg, f, default_flow_style=False, sort_keys=False)
        os.chmod(path, 0o644)
        return path

    def probe(self, cfg, cmd, leader, *args):
        argv = [PROBE, cmd, "--config", cfg, "--leader-name", leader.name,
                "--leader-url", "postgres://127.0.0.1:%d/postgres" % leader.port]
        if os.geteuid() == 0:
            argv += ["--run-as", self.user.pw_name]
        argv += [str(a) for a in args]
        env = {"PATH": PG_BIN + ":/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
               "HOME": self.base}
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300)
        log = p.stderr.decode(errors="replace")
        print("rewind_probe %s:\n%s" % (cmd, log))  # shown when a test fails
        assert p.returncode == 0, "rewind_probe exited %d: %s" % (p.returncode, log)
        out = json.loads(p.stdout)
        out["log"] = log
        for pw in (REWIND_PW, REPL_PW, SUPER_PW):
            assert pw not in log, "a password was logged"
        if cmd == "job" and out["status"] != "refused":
            assert out["max_overrun_ms"] < SLICE_SLACK_MS, out
        return out

    def cleanup(self):
        try:
            for pg in self.instances:
                pg.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def env():
    e = Env()
    try:
        yield e
    finally:
        e.cleanup()


def promote(pg):
    pg.run([pg.bin("pg_ctl"), "promote", "-D", pg.datadir, "-w", "-t", "60"])
    poll(lambda: pg.psql("SELECT pg_is_in_recovery()") == "f", 30, "%s to be promoted" % pg.name)


def wait_replayed(pg, lsn, what):
    poll(lambda: pg.psql("SELECT pg_last_wal_replay_lsn() >= '%s'" % lsn) == "t", 30,
         "%s to replay %s" % (pg.name, what))


def diverge(a, rows=500, switches=2):
    """The old primary keeps writing on its own timeline (a split brain)."""
    for i in range(switches):
        a.psql("INSERT INTO t SELECT 'diverged %d ' || g FROM generate_series(1, %d) g;"
               "SELECT pg_switch_wal()" % (i, rows))
    a.psql("INSERT INTO t VALUES ('diverged last')")


def follow(replica, leader):
    """Start as a standby of leader (what the config module writes), then see leader's rows."""
    replica.write_file(os.path.join(replica.datadir, "postgresql.auto.conf"), "")
    replica.write_file(os.path.join(replica.datadir, "standby.signal"), "")
    replica.configure(primary_conninfo="host=127.0.0.1 port=%d user=postgres application_name=%s"
                      % (leader.port, replica.name), recovery_target_timeline="latest")
    replica.start()
    poll(lambda: leader.psql("SELECT state FROM pg_stat_replication WHERE application_name = "
                             "'%s'" % replica.name) == "streaming",
         60, "%s to stream from %s" % (replica.name, leader.name))
    leader.psql("INSERT INTO t VALUES ('streamed to %s')" % replica.name)
    poll(lambda: replica.psql("SELECT count(*) FROM t WHERE x = 'streamed to %s'"
                              % replica.name) == "1",
         30, "a row streamed from %s to %s" % (leader.name, replica.name))
    assert replica.psql("SELECT pg_is_in_recovery()") == "t"
    assert replica.psql("SELECT count(*) FROM t WHERE x LIKE 'diverged%'") == "0"


def ready_files(pg):
    """Segments waiting for archive_command (not backup history files: Patroni's pattern)."""
    status = os.path.join(pg.datadir, "pg_wal", "archive_status")
    return sorted(f[:-6] for f in os.listdir(status)
                  if re.match(r"^[0-9A-F]{24}(\.partial)?\.ready$", f))


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def test_check_and_job_rewind_a_diverged_primary(env):
    enable = os.path.join(env.base, "archive-enabled")
    a = env.primary(archive_mode=True,
                    archive_command="test -f %s && cp %%p %s/%%f" % (enable, env.arch))
    b = env.replica(a, "b")
    c = env.replica(a, "c")
    # c stops before the promotion; b has everything c has
    c.stop("fast")
    wait_replayed(b, cd_value(controldata(c), "Minimum recovery ending location"), "what c has")
    promote(b)
    diverge(a)
    b.psql("INSERT INTO t VALUES ('on b')")
    cfg_a, cfg_c = env.config(a), env.config(c)
    out = env.probe(cfg_a, "job", b)
    assert out["status"] == "refused", out
    assert out["error"] == "Can not run pg_rewind because postgres is still running"
    a.stop("fast")
    ready = ready_files(a)
    assert len(ready) >= 2, ready  # archive_command fails until `enable` exists

    out = env.probe(cfg_a, "check", b)
    assert out["need"] == "NEEDED", out
    assert (out["local_tli"], out["leader_tli"], out["in_recovery"]) == (1, 2, False), out
    assert out["switchpoint"] != "0/0"
    assert "Local timeline=1 lsn=" in out["log"] and "primary_timeline=2" in out["log"]
    out = env.probe(cfg_a, "check", b, "--leader-role", "replica")
    assert out["need"] == "UNKNOWN" and "not primary" in out["reason"], out
    out = env.probe(cfg_c, "check", b)
    assert out["need"] == "NOT_NEEDED", out
    assert out["in_recovery"] and out["local_tli"] == 1, out

    # a cancelled job kills what it runs (here an archive_command that hangs)
    marker = "pgkeel-rewind-test-%d" % os.getpid()
    a.configure(archive_command="sleep 60 # %s" % marker)
    out = env.probe(cfg_a, "job", b, "--cancel-after-ms", 500)
    assert (out["status"], out["result"], out["cancelled"]) == ("failed", "retry", True), out
    assert out["error"] == "archive_command cancelled" and out["elapsed_ms"] < 5000, out
    assert not [p for p in os.listdir("/proc") if p.isdigit() and marker in cmdline(p)]
    a.configure(archive_command="test -f %s && cp %%p %s/%%f" % (enable, env.arch))

    # the leader has not published its post-promote checkpoint: nothing is rewound
    out = env.probe(cfg_a, "job", b, "--checkpoint-after-promote", "false")
    assert (out["status"], out["result"]) == ("failed", "retry"), out
    assert out["error"] == "leader has not done its checkpoint yet"
    assert out["rewind_runs"] == 0 and out["archived"] == 0, out
    assert "Failed to archive WAL segment" in out["log"]
    assert ready_files(a) == ready

    # a leader that does not publish it: pg_control_checkpoint() is checked (rewind role)
    b.psql("CHECKPOINT")
    with open(enable, "w"):
        pass
    out = env.probe(cfg_a, "job", b)
    assert (out["status"], out["result"], out["error"]) == ("succeeded", "success", ""), out
    assert out["archived"] == len(ready) and not out["crash_recovery"], out
    for wal in ready:
        assert os.path.exists(os.path.join(env.arch, wal)), wal
    log = out["log"]
    assert log.index("Trying to archive %s" % ready[0]) < log.index("running pg_rewind from")
    assert "pg_rewind exit code=0" in log
    pgpass = os.path.join(env.base, "a.pgpass")
    argv, penv = out["argv"], out["env"]
    assert argv[0] == os.path.join(PG_BIN, "pg_rewind")
    assert "--restore-target-wal" not in argv
    dsn = argv[argv.index("--source-server") + 1]
    assert dsn == ("dbname=postgres user=rewinder host=127.0.0.1 port=%d "
                   "target_session_attrs=read-write" % b.port), dsn
    assert penv == ["PGPASSFILE=" + pgpass, "LANG=C", "LC_ALL=C",
                    "PGOPTIONS=-c statement_timeout=0"], penv
    st = os.stat(pgpass)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == env.user.pw_uid
    with open(pgpass) as f:
        assert f.read() == "127.0.0.1:%d:*:rewinder:rew\\:ind\\\\pw 'q'" % b.port

    # rewound: on b's timeline, nothing to rewind any more; then it streams from b
    out = env.probe(cfg_a, "check", b)
    assert out["need"] == "NOT_NEEDED" and out["local_tli"] == 2, out
    follow(a, b)

    # c simply follows b: no rewind, stopped or running
    follow(c, b)
    tli = int(replication_sql(c, "IDENTIFY_SYSTEM").split("|")[1])
    replay = c.psql("SELECT pg_last_wal_replay_lsn()")
    out = env.probe(cfg_c, "check", b, "--running", tli, replay)
    assert out["need"] == "NOT_NEEDED" and out["local_tli"] == 2, out


def test_check_after_a_clean_switchover(env):
    """A former primary whose shutdown checkpoint ends at the switch point (pg_waldump)."""
    a = env.primary()
    b = env.replica(a, "b")
    a.stop("fast")
    ckpt = cd_value(controldata(a), "Latest checkpoint location")
    wait_replayed(b, ckpt, "a's shutdown checkpoint")
    promote(b)
    out = env.probe(env.config(a), "check", b)
    assert out["need"] == "NOT_NEEDED", out
    assert not out["in_recovery"] and out["local_lsn"] == ckpt, out
    assert out["checkpoint_end"] == out["switchpoint"] != "0/0", out


def kill_all(pg):
    """A crash: SIGKILL to the postmaster and every child, by PID."""
    pids = pg.pids()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pg.proc.wait(timeout=10)

    def gone():
        for pid in pids:
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                pass
        return True
    poll(gone, 10, "the killed processes to disappear")


def test_crashed_primary_is_recovered_then_rewound(env):
    a = env.primary()
    b = env.replica(a, "b")
    promote(b)
    diverge(a)
    b.psql("INSERT INTO t VALUES ('on b')")
    kill_all(a)
    assert cd_value(controldata(a), "Database cluster state") == "in production"
    # no rewind role: the superuser's credentials are the rewind credentials
    cfg = env.config(a, rewind_role=False)

    out = env.probe(cfg, "check", b)
    assert out["need"] == "UNKNOWN" and '"in production"' in out["reason"], out

    # the leader does not publish checkpoint_after_promote: the job runs CHECKPOINT there
    out = env.probe(cfg, "job", b)
    assert (out["status"], out["result"]) == ("succeeded", "success"), out
    assert out["crash_recovery"], out
    log = out["log"]
    assert log.index("doing crash recovery in a single user mode") < \
        log.index("running pg_rewind from")
    assert "user=postgres" in out["argv"][out["argv"].index("--source-server") + 1]
    follow(a, b)


def missing_wal_setup(env):
    """a archives everything; after the split brain the segments pg_rewind needs are
    removed from a's pg_wal (PostgreSQL recycles them itself once archived)."""
    a = env.primary(archive_mode=True, archive_command="cp %%p %s/%%f" % env.arch)
    b = env.replica(a, "b")
    promote(b)
    diverge(a, rows=100, switches=3)
    last = a.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    poll(lambda: a.psql("SELECT last_archived_wal >= '%s' FROM pg_stat_archiver"
                        % ("%024X" % (int(last, 16) - 1))) == "t",
         30, "a to archive its segments")
    b.psql("INSERT INTO t VALUES ('on b'); CHECKPOINT")
    a.stop("fast")
    waldir = os.path.join(a.datadir, "pg_wal")
    switch = replication_sql(b, "TIMELINE_HISTORY 2").split("|", 1)[1].split("\t")[1]
    hi, lo = (int(x, 16) for x in switch.split("/"))
    first = "00000001%08X%08X" % (hi, lo >> 24)  # the segment of the switch point
    removed = []
    for f in sorted(os.listdir(waldir)):
        if len(f) == 24 and f.startswith("00000001") and first <= f < last[:24]:
            assert os.path.exists(os.path.join(env.arch, f)), f
            os.unlink(os.path.join(waldir, f))
            removed.append(f)
    assert os.path.exists(os.path.join(env.arch, first))
    return a, b


def test_missing_wal_is_fetched_with_restore_command(env):
    a, b = missing_wal_setup(env)
    cfg = env.config(a)

    # no restore_command: pg_rewind fails against a healthy leader; the data is kept
    out = env.probe(cfg, "job", b, "--checkpoint-after-promote", "true")
    assert (out["status"], out["result"]) == ("failed", "failed"), out
    assert "could not open file" in out["error"], out
    assert "Failed to rewind from healty primary: b" in out["log"]
    assert os.path.exists(os.path.join(a.datadir, "PG_VERSION"))

    # with one (and pg_rewind not restoring by itself) the job fetches what it misses
    a.configure(restore_command="cp %s/%%f %%p" % env.arch)
    out = env.probe(cfg, "job", b, "--checkpoint-after-promote", "true",
                    "--no-restore-target-wal")
    assert (out["status"], out["result"]) == ("succeeded", "success"), out
    assert out["wal_fetched"] >= 1 and out["rewind_runs"] == out["wal_fetched"] + 1, out
    assert "--restore-target-wal" not in out["argv"]
    assert "Trying to fetch the missing wal: cp %s/00000001" % env.arch in out["log"]
    follow(a, b)


def test_rewind_failure_removes_the_data_directory(env):
    a, b = missing_wal_setup(env)
    cfg = env.config(a, remove_data_directory_on_rewind_failure=True)
    out = env.probe(cfg, "job", b, "--checkpoint-after-promote", "true")
    assert (out["status"], out["result"]) == ("failed", "removed"), out
    assert "remove_data_directory_on_rewind_failure is set. removing..." in out["log"]
    assert not os.path.exists(a.datadir)
