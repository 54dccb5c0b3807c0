"""pg_rewind decisions on real PostgreSQL 15 timelines (tests/tools/rewind_probe).

1. A clean switchover: the old primary stops cleanly, its replica replays the
   shutdown checkpoint and is promoted.  The old primary's checkpoint ends
   exactly at the switch point (read with pg_waldump): no rewind needed.
2. A forced divergence: the old primary starts again on its own and writes.
   Now its checkpoint lies past the switch point: rewind needed; pg_rewind
   (run as pgkeel runs it) makes it a replica that streams from the new primary
   and sees the new primary's data, not its own diverged rows.
"""
import os
import shutil
import tempfile

import pytest

from pg_instance import PgInstance, have_postgres, poll

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
