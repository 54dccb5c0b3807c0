"""core/sampler.c against real PostgreSQL 15, through tests/tools/sampler_probe
(which plays the HA loop: it publishes the loop part the sampler reads and
watches the pg part the sampler publishes): fresh samples at a steady
cadence, a SIGSTOPped server turning the sample into "failed" without
changing the cadence, suspend/resume dropping and re-opening the connection
(pg_stat_activity), a smart shutdown that completes while suspended, a
prompt stop with the server frozen mid-query, and a replica's timeline from
IDENTIFY_SYSTEM following a timeline switch.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import select
import subprocess
import tempfile
import time

import pytest
import yaml

from pg_instance import PgInstance, have_postgres, poll

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "sampler_probe")

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="sampler_probe not built (make check)"),
]

INTERVAL_MS = 1000
CADENCE_SLACK_MS = 300  # a tick may come this much early or late (scheduling, the watch's polling)


def write_config(pg):
    """A pgkeel configuration for the instance pg (the local connection on
    its socket, the replication connection over TCP as replicator)."""
    cfg = {
        "scope": "sampler-test",
        "name": pg.name,
        "restapi": {"listen": "127.0.0.1:8008", "connect_address": "127.0.0.1:8008"},
        "etcd3": {"hosts": "127.0.0.1:2379"},
        "postgresql": {
            "listen": "127.0.0.1:%d" % pg.port,
            "connect_address": "127.0.0.1:%d" % pg.port,
            "data_dir": pg.datadir,
            "bin_dir": pg.bin_dir,
            "use_unix_socket": True,
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "replicator", "password": "rep-pw"},
            },
            "parameters": {"unix_socket_directories": pg.sockdir},
        },
    }
    path = os.path.join(pg.dir, "pgkeel.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, default_flow_style=False, sort_keys=False)
    os.chmod(path, 0o644)
    return path


class Probe:
    """One sampler_probe process, run as the server's user."""

    def __init__(self, pg):
        self.stderr = tempfile.TemporaryFile()
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=pg.user.pw_uid, group=pg.user.pw_gid, extra_groups=[])
        env = dict(pg.env, HOME=pg.dir)
        self.proc = subprocess.Popen([PROBE, "--config", write_config(pg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, cwd=pg.dir, env=env, **kw)
        self.buf = b""

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-4000:]

    def cmd(self, line, timeout=30.0):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("sampler_probe gave no answer to %r: %s" %
                                     (line, self.log()))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("sampler_probe exited on %r: %s" % (line, self.log()))
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        out = json.loads(raw)
        assert "error" not in out, (line, out)
        return out

    def wait_status(self, want, ms):
        out = self.cmd("wait-status %d %d" % (1 if want else 0, ms), timeout=ms / 1000 + 10)
        assert out["ok"], ("no %s sample within %d ms" % ("valid" if want else "failed", ms),
                           self.log())
        return out["took_ms"]

    def start_running(self):
        """Play a loop that says PostgreSQL runs; start; the first sample within 1.5 s."""
        self.cmd("loop running")
        t0 = time.monotonic()
        self.cmd("start")
        self.wait_status(True, 1500)
        assert time.monotonic() - t0 < 1.5

    def close(self):
        """quit, and the probe's exit status (0 expected)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def primary():
    pg = PgInstance("primary").initdb()
    try:
        pg.start()
        pg.psql("CREATE ROLE replicator REPLICATION LOGIN PASSWORD 'rep-pw'")
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def probe(primary):
    p = Probe(primary)
    try:
        yield p
    finally:
        rc = p.close()
    assert rc == 0, ("sampler_probe exited with %s" % rc, p.log())


def patroni_backends(pg):
    """pids of the backends whose application_name is Patroni (the sampler's)."""
    out = pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'Patroni'")
    return sorted(int(x) for x in out.split())


def assert_no_backend_for(pg, seconds):
    """For seconds, pg_stat_activity never shows the sampler's backend."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert patroni_backends(pg) == []
        time.sleep(0.1)


def assert_cadence(parts, n_min):
    """At least n_min parts, one per interval (the first may come at any time)."""
    assert len(parts) >= n_min, parts
    gaps = [b["t"] - a["t"] for a, b in zip(parts, parts[1:])]
    for g in gaps:
        assert abs(g - INTERVAL_MS) <= CADENCE_SLACK_MS, (gaps, parts)


def test_fresh_samples_on_a_primary(primary, probe):
    probe.start_running()
    s = probe.cmd("sample")
    assert s["status"] and not s["in_recovery"] and s["timeline"] == 1, s
    assert 0 < s["left_ms"] <= 2500, s
    parts = probe.cmd("watch 3500")["parts"]
    assert_cadence(parts, 3)
    for p in parts:
        # published right after a sample that started at most one query deadline before
        assert p["status"] and 2500 - 800 - 50 <= p["left_ms"] <= 2500, parts
    pid = probe.cmd("pid")["pid"]
    assert pid > 0 and patroni_backends(primary) == [pid]
    out = probe.cmd("stop")
    assert out["joined"] and out["took_ms"] < 200, out
    assert not probe.cmd("quiet 1500")["published"]
    assert probe.close() == 0, probe.log()


def test_samples_only_while_the_loop_says_running(primary, probe):
    probe.cmd("loop stopped")
    probe.cmd("start")
    parts = probe.cmd("watch 2500")["parts"]
    assert len(parts) >= 2 and not any(p["status"] for p in parts), parts
    assert patroni_backends(primary) == []
    probe.cmd("loop running")
    probe.wait_status(True, 1500)
    assert patroni_backends(primary) == [probe.cmd("pid")["pid"]]
    probe.cmd("loop stopped")
    probe.wait_status(False, 1500)
    poll(lambda: patroni_backends(primary) == [], 3, "the sampler's backend to exit")


def test_frozen_postgres_fails_the_sample_and_keeps_the_cadence(primary, probe):
    probe.start_running()
    primary.freeze()
    try:
        took = probe.wait_status(False, 2500)
        assert took <= 2500
        parts = probe.cmd("watch 3500")["parts"]
        assert_cadence(parts, 3)
        assert not any(p["status"] for p in parts), parts
    finally:
        primary.thaw()
    probe.wait_status(True, 2500)


def test_stop_returns_promptly_with_postgres_frozen_mid_query(primary, probe):
    probe.start_running()
    primary.freeze()
    try:
        probe.wait_status(False, 2500)
        # a failed sample is published when its query times out (800 ms into
        # the tick); the next query starts 200 ms later: 500 ms after the
        # publish the sampler is inside that query
        out = probe.cmd("stop 500")
        assert out["took_ms"] < 200, out
        assert not out["joined"], ("the stop did not happen mid-query", out)
        assert not probe.cmd("quiet 2000")["published"]
    finally:
        primary.thaw()
    assert probe.close() == 0, probe.log()


def test_suspend_drops_the_connection_and_resume_reopens_it(primary, probe):
    probe.start_running()
    pid = probe.cmd("pid")["pid"]
    assert patroni_backends(primary) == [pid]
    out = probe.cmd("suspend 1000")
    assert out["closed"] and out["took_ms"] < 1000, out
    assert not probe.cmd("sample")["status"]  # a failed part, published at once
    assert probe.cmd("pid")["pid"] == 0
    poll(lambda: patroni_backends(primary) == [], 3, "the sampler's backend to exit")
    # suspended, it stays away for good (the loop still says "running")
    assert_no_backend_for(primary, 2.5)
    assert probe.cmd("watch 1200")["parts"] == []  # and publishes nothing more
    probe.cmd("resume")
    probe.wait_status(True, 1500)
    new_pid = probe.cmd("pid")["pid"]
    assert new_pid not in (0, pid) and patroni_backends(primary) == [new_pid]


def test_smart_shutdown_completes_while_suspended(primary, probe):
    probe.start_running()
    assert probe.cmd("suspend 1000")["closed"]
    t0 = time.monotonic()
    primary.stop("smart", timeout=10)  # raises (after escalating) if it took longer
    assert time.monotonic() - t0 < 10
    assert not primary.running()
    # the sampler, told nothing else, neither connects nor publishes a sample
    assert not probe.cmd("sample")["status"]
    primary.start()
    assert_no_backend_for(primary, 2.0)
    probe.cmd("resume")
    probe.wait_status(True, 1500)


def test_replica_timeline_follows_a_timeline_switch(primary):
    """A cascading replica: the sampler reports its timeline from
    IDENTIFY_SYSTEM, leaves no walsender behind, and follows the switch when
    its upstream is promoted."""
    mid = PgInstance("mid", base_dir=primary.base)
    leaf = PgInstance("leaf", base_dir=primary.base)
    probe = None
    try:
        mid.base_backup_from(primary).start()
        leaf.base_backup_from(mid, log_replication_commands=True).start()
        probe = Probe(leaf)
        probe.start_running()
        s = probe.cmd("sample")
        assert s["in_recovery"] and s["timeline"] == 1, s
        assert "replication command: IDENTIFY_SYSTEM" in leaf.log_tail(100000)
        # the IDENTIFY_SYSTEM connection is closed right after use
        poll(lambda: leaf.psql("SELECT count(*) FROM pg_stat_activity "
                               "WHERE backend_type = 'walsender'") == "0",
             3, "no walsender on the leaf")
        mid.run([mid.bin("pg_ctl"), "promote", "-w", "-D", mid.datadir])
        poll(lambda: probe.cmd("sample").get("timeline") == 2, 15,
             "the leaf's sample to show timeline 2")
        s = probe.cmd("sample")
        assert s["status"] and s["in_recovery"], s
        assert probe.close() == 0, probe.log()
    finally:
        if probe is not None:
            probe.close()
        leaf.cleanup()
        mid.cleanup()
