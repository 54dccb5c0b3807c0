"""core/watchdog.c against a watchdog device that really kills: the fake in
tests/fakes (fake-watchdog serves a unix socket, fake_watchdog_preload.so makes
it look like /dev/watchdog to the process; see tests/fakes/fake_watchdog.py).
Never the real /dev/watchdog.

tests/tools/wd_probe drives the module from a real configuration file (ttl 8,
loop_wait 1: the timeout is ttl - safety_margin) and answers one line per
command; its log lines are on its stderr.  What the fake saw is its event
file.  The rules themselves (Patroni's Watchdog, branch by branch) are in
tests/unit/test_watchdog.c; this is the device protocol end to end:
activation sets the timeout, keepalives feed it, disable is the magic close,
a node that stops feeding (SIGSTOP) or dies while armed is killed together
with its PostgreSQL, and an unusable device fails activation only in mode
required.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "fakes"))
from fake_watchdog import FakeWatchdog, have_fake_watchdog  # noqa: E402
from pg_instance import PgInstance, have_postgres, poll  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "wd_probe")

pytestmark = [
    pytest.mark.skipif(not os.access(PROBE, os.X_OK), reason="wd_probe not built in " + BUILD),
    pytest.mark.skipif(not have_fake_watchdog(), reason="the fake watchdog is not built"),
]

TTL, LOOP_WAIT = 8, 1


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="pgkeel-wd-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def wd(tmp):
    w = FakeWatchdog(tmp).start()
    yield w
    w.stop()


def write_config(tmp, watchdog, name="pgkeel.yml", ttl=TTL):
    """A configuration as the daemon reads it; watchdog: the section (a dict)."""
    lines = ["scope: s", "name: pg-1",
             "bootstrap:", "  dcs: {ttl: %d, loop_wait: %d, retry_timeout: 2}" % (ttl, LOOP_WAIT),
             "restapi: {listen: '127.0.0.1:8008', connect_address: '127.0.0.1:8008'}",
             "etcd3: {hosts: '127.0.0.1:2379'}",
             "postgresql:", "  listen: 127.0.0.1:5432", "  connect_address: 127.0.0.1:5432",
             "  data_dir: %s/data" % tmp,
             "  authentication:", "    superuser: {username: postgres, password: x}",
             "    replication: {username: r, password: y}",
             "watchdog:"]
    lines += ["  %s: %s" % (k, v) for k, v in watchdog.items()]
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class Probe:
    def __init__(self, tmp, config, wd=None, new_session=False):
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C"}
        if wd is not None:
            env.update(wd.env())
        self.errpath = os.path.join(tmp, "probe-%d.err" % time.monotonic_ns())
        with open(self.errpath, "wb") as err:
            self.proc = subprocess.Popen([PROBE, config], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, env=env,
                                         start_new_session=new_session)

    def cmd(self, line, timeout=20):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        out = self.proc.stdout.readline().decode().strip() if ready else ""
        if not out:
            raise AssertionError("no answer to %r from wd_probe (exit %s): %s" % (
                line, self.proc.poll(), self.log()))
        return out

    def log(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def probes():
    started = []
    yield started
    for p in started:
        p.close()


def probe(probes, *args, **kw):
    p = Probe(*args, **kw)
    probes.append(p)
    return p


def no_event(wd, name, within):
    """Fails as soon as `name` shows up during the next `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert wd.events(name) == [], wd.events()
        time.sleep(0.1)


def gone(pid):
    """Not running: no such process, or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def device_log(wd):
    """The fake's events after `listening`, as compact strings."""
    out = []
    for e in wd.events()[1:]:
        if e.name == "ioctl":
            out.append("%s=%s%s" % (e["op"], e["value"], "" if e["err"] == "0" else
                                    " err=" + e["err"]))
        elif e.name == "write":
            out.append("write " + e["bytes"])
        elif e.name == "close":
            out.append("close magic=%s running=%s" % (e["magic"], e["running"]))
        else:
            out.append(e.name)
    return out


def test_activate_feed_disable(tmp, wd, probes):
    """ttl 8 - safety_margin 5: the device gets 3 s; fed, it never fires; the
    magic close stops it."""
    p = probe(probes, tmp, write_config(tmp, {"mode": "required", "device": wd.device}), wd)
    assert p.cmd("status") == "status running=0 healthy=1 timeout=0"
    assert device_log(wd) == []  # nothing opened before activation
    assert p.cmd("activate") == "activate ok"
    assert device_log(wd) == ["open", "getsupport=0", "settimeout=3", "gettimeout=3"]
    assert p.cmd("status") == "status running=1 healthy=1 timeout=3"
    assert ("INFO: pgkeel fake watchdog at %s activated with 3 second timeout, timing slack 2 "
            "seconds" % wd.device) in p.log()

    # fed every 0.5 s for longer than the timeout: not fired
    assert p.cmd("feed 4500 500").startswith("fed ")
    feeds = wd.events("write")
    assert len(feeds) >= 8 and all(e["bytes"] == "1" for e in feeds)
    assert max(b.t - a.t for a, b in zip(feeds, feeds[1:])) < 3.0
    assert wd.events("fired") == []

    assert p.cmd("disable") == "disable"
    wd.wait_event("close")
    assert device_log(wd)[-2:] == ["write V", "close magic=1 running=0"]
    no_event(wd, "fired", 4.0)  # stopped: the timeout passes without a reset
    assert p.cmd("status") == "status running=0 healthy=1 timeout=0"
    assert p.proc.poll() is None

    # armed again by the next activation
    assert p.cmd("activate") == "activate ok"
    assert device_log(wd)[-4:] == ["open", "getsupport=0", "settimeout=3", "gettimeout=3"]
    assert p.cmd("disable") == "disable"
    wd.wait_event("close", count=2)


@pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed")
def test_frozen_node_is_killed(tmp, probes):
    """SIGSTOP the fed process (a frozen leader): the fake fires ttl - margin
    after the last feed and kills the process, its process group and the
    PostgreSQL of the node (postmaster and backends)."""
    with PgInstance("node") as pg:
        pg.initdb()
        pg.start()
        pg_pids = pg.pids()
        assert len(pg_pids) > 1
        with FakeWatchdog(tmp, kill_pidfiles=[os.path.join(pg.datadir, "postmaster.pid")]) as wd:
            p = probe(probes, tmp, write_config(tmp, {"mode": "automatic", "device": wd.device}),
                      wd, new_session=True)
            assert p.cmd("activate") == "activate ok"
            child = int(p.cmd("spawn").split("pid=")[1])
            assert p.cmd("feed 1500 300").startswith("fed ")
            os.kill(p.proc.pid, signal.SIGSTOP)

            fired = wd.wait_event("fired", timeout=10)
            last_feed = wd.events("write")[-1]
            assert 3.0 <= fired.t - last_feed.t < 3.5, (fired, last_feed)
            killed = set(int(x) for x in wd.wait_event("killed")["pids"].split(","))
            assert {p.proc.pid, child}.issubset(killed), (killed, p.proc.pid, child)
            # the postmaster and its children then; a short-lived child (an
            # autovacuum worker) may have ended by itself before the kill
            assert pg_pids[0] in killed, (killed, pg_pids)
            assert len(set(pg_pids[1:]) & killed) > 0, (killed, pg_pids)

            assert p.proc.wait(timeout=10) == -signal.SIGKILL
            assert pg.proc.wait(timeout=10) == -signal.SIGKILL
            poll(lambda: all(gone(x) for x in pg_pids + [child]), 10, "the node's processes")
            assert wd.wait_event("close")["running"] == "0"  # reset: the watchdog is off


def test_exit_while_armed_still_fires(tmp, wd, probes):
    """A process that ends without the magic close (crash, exit without
    disable) leaves the device running: it fires, as a real one would."""
    p = probe(probes, tmp, write_config(tmp, {"mode": "automatic", "device": wd.device}), wd)
    assert p.cmd("activate") == "activate ok"
    p.proc.stdin.close()  # end of input: the probe frees the watchdog and exits
    assert p.proc.wait(timeout=10) == 0
    assert "WARNING: Leaving pgkeel fake watchdog at %s running: it fires in 3 seconds" % \
        wd.device in p.log()
    close = wd.wait_event("close")
    assert (close["magic"], close["running"]) == ("0", "1")
    fired = wd.wait_event("fired", timeout=10)
    assert 3.0 <= fired.t - wd.events("ioctl")[-1].t < 3.5
    # the opener is gone (its pid may be reused): nothing was killed
    assert wd.wait_event("killed")["pids"] == ""


def test_required_unusable_device(tmp, probes):
    """mode required: a missing device is unhealthy (watchdog_failed) and
    activation fails, so the node must not promote."""
    missing = os.path.join(tmp, "no-such-watchdog")
    p = probe(probes, tmp, write_config(tmp, {"mode": "required", "device": missing}))
    assert p.cmd("status") == "status running=0 healthy=0 timeout=0"
    assert p.cmd("activate") == "activate fail"
    log = p.log()
    assert ("WARNING: Could not activate Linux watchdog device at %s: Can't open watchdog "
            "device: [Errno 2] No such file or directory: '%s'" % (missing, missing)) in log
    assert "ERROR: Configuration requires watchdog, but watchdog could not be configured." in log
    assert p.cmd("status") == "status running=0 healthy=0 timeout=0"
    assert p.cmd("activate") == "activate fail"  # and stays failed


def test_required_device_with_unsafe_timeout(tmp, probes):
    """A device that keeps its own 60 s timeout cannot guarantee the reset
    before the lock expires: required mode refuses it and stops it again
    (magic close) so it cannot fire on a node that is not the leader."""
    with FakeWatchdog(tmp, timeout=60, settimeout=False) as wd:
        p = probe(probes, tmp, write_config(tmp, {"mode": "required", "device": wd.device}), wd)
        assert p.cmd("activate") == "activate fail"
        wd.wait_event("close")
        assert device_log(wd) == ["open", "getsupport=0", "gettimeout=60", "write V",
                                  "close magic=1 running=0"]
        assert ("ERROR: Configuration requires watchdog, but a safe watchdog timeout 3 could "
                "not be configured. Watchdog timeout is 60.") in p.log()
        assert p.cmd("status") == "status running=0 healthy=0 timeout=0"


def test_automatic_unusable_device(tmp, probes):
    """mode automatic: runs without a watchdog, healthy, a warning only."""
    missing = os.path.join(tmp, "no-such-watchdog")
    p = probe(probes, tmp, write_config(tmp, {"mode": "automatic", "device": missing}))
    assert p.cmd("activate") == "activate ok"
    assert p.cmd("status") == "status running=0 healthy=1 timeout=0"
    assert "Can't open watchdog device: [Errno 2]" in p.log()
    assert "ERROR" not in p.log()


def test_busy_device(tmp, wd, probes):
    """One descriptor at a time, as /dev/watchdog: a second opener gets EBUSY."""
    cfg = write_config(tmp, {"mode": "required", "device": wd.device})
    first = probe(probes, tmp, cfg, wd)
    assert first.cmd("activate") == "activate ok"
    second = probe(probes, tmp, cfg, wd)
    assert second.cmd("activate") == "activate fail"
    assert "[Errno 16] Device or resource busy" in second.log()
    assert first.cmd("disable") == "disable"


@pytest.mark.parametrize("watchdog,timeout,slack", [
    ({"safety_margin": 5}, 3, 2),     # ttl - safety_margin
    ({"safety_margin": -1}, 4, 3),    # ttl / 2
    ({"safety_margin": 7}, 1, 0),     # the smallest safe slack
    ({}, 3, 2),                       # default safety_margin 5
])
def test_safety_margin(tmp, wd, probes, watchdog, timeout, slack):
    cfg = dict(watchdog, mode="required", device=wd.device)
    p = probe(probes, tmp, write_config(tmp, cfg), wd)
    assert p.cmd("activate") == "activate ok"
    assert device_log(wd)[2:4] == ["settimeout=%d" % timeout, "gettimeout=%d" % timeout]
    assert "activated with %d second timeout, timing slack %d seconds" % (timeout, slack) in \
        p.log()
    assert p.cmd("disable") == "disable"


def test_negative_slack_is_unusable(tmp, wd, probes):
    """timeout 8 - 8 = 0 < loop_wait: no watchdog is safe; the device is not even opened."""
    p = probe(probes, tmp, write_config(tmp, {"mode": "required", "device": wd.device,
                                               "safety_margin": 8}), wd)
    assert p.cmd("status") == "status running=0 healthy=0 timeout=0"
    assert p.cmd("activate") == "activate fail"
    assert "Watchdog not supported because leader TTL 8 is less than 2x loop_wait 1" in p.log()
    assert device_log(wd) == []


def test_reload_new_timeout_at_next_keepalive(tmp, wd, probes):
    """A new ttl (from the DCS) reaches a running device only with the next feed,
    after a renewed lock; mode off disables at once."""
    p = probe(probes, tmp, write_config(tmp, {"mode": "required", "device": wd.device}), wd)
    assert p.cmd("activate") == "activate ok"
    assert p.cmd("reload %s" % write_config(tmp, {"mode": "required", "device": wd.device},
                                             name="ttl12.yml", ttl=12)) == "reload"
    assert device_log(wd)[-1] == "gettimeout=3"
    assert p.cmd("keepalive") == "keepalive"
    wd.wait_event("ioctl", count=5)
    assert device_log(wd)[-3:] == ["write 1", "settimeout=7", "gettimeout=7"]
    assert p.cmd("status") == "status running=1 healthy=1 timeout=7"
    assert p.cmd("reload %s" % write_config(tmp, {"mode": "'off'", "device": wd.device},
                                             name="off.yml")) == "reload"
    wd.wait_event("close")
    assert device_log(wd)[-2:] == ["write V", "close magic=1 running=0"]
    assert p.cmd("status") == "status running=0 healthy=1 timeout=0"


# ---------------------------------------------------------------- the daemon
#
# pgkeel itself with the fake device (ha_cluster.py: etcd, PostgreSQL 15; ttl
# 10, loop_wait 2, so the timeout is 5 s).  They need core/loop.c to drive
# core/watchdog.c: until a pgkeel binary links it they are reported as
# expected failures without running; from then on they must pass.

def pgkeel_has_watchdog():
    try:
        from ha_cluster import PGKEEL
        with open(PGKEEL, "rb") as f:
            return b"Configuration requires watchdog" in f.read()
    except (ImportError, OSError):
        return False


def have_cluster():
    try:
        from etcd_cluster import ETCD
        from ha_cluster import have_pgkeel
    except ImportError:
        return False
    return have_postgres() and os.access(ETCD, os.X_OK) and have_pgkeel()


def daemon(test):
    test = pytest.mark.skipif(not have_cluster(),
                              reason="etcd, PostgreSQL or pgkeel not available")(test)
    return pytest.mark.xfail(not pgkeel_has_watchdog(), run=False, strict=True,
                             reason="core/loop.c does not drive core/watchdog.c yet")(test)


def with_watchdog(node, wd, mode):
    cfg = node.config()
    cfg["watchdog"] = {"mode": mode, "device": wd.device if wd is not None else
                       os.path.join(node.dir, "no-such-watchdog")}
    node.write_config(cfg)
    if wd is not None:
        node.env.update(wd.env(node.env))


def patroni_status(node):
    code, body = node.rest("/patroni")
    assert code == 200, (code, body)
    return body


def armed_leader(c, wd, mode="required"):
    """Start the 1-node cluster with the fake device; wait until its leader is armed and fed."""
    n = c.nodes[0]
    with_watchdog(n, wd, mode)
    c.start()
    c.wait_leader()
    wd.wait_event("open")
    assert wd.wait_event("ioctl", pred=lambda e: e["op"] == "settimeout")["value"] == "5"
    feeds = [wd.wait_event("write", count=k, timeout=15) for k in (1, 2, 3)]
    assert all(e["bytes"] == "1" for e in feeds)
    assert max(b.t - a.t for a, b in zip(feeds, feeds[1:])) < 5.0
    return n


@daemon
def test_daemon_leader_armed():
    """Armed while leader with ttl - safety_margin, fed after each renewal,
    stopped by the magic close when SIGTERM has stopped PostgreSQL."""
    from ha_cluster import HaCluster
    with HaCluster(1) as c:
        with FakeWatchdog(c.base) as wd:
            n = armed_leader(c, wd)
            assert "watchdog_failed" not in patroni_status(n)
            n.stop()
            close = wd.wait_event("close")
            assert (close["magic"], close["running"]) == ("1", "0"), wd.events()[-6:]
            no_event(wd, "fired", 6.0)


@daemon
def test_daemon_frozen_leader_is_reset():
    """The leader's daemon frozen: the fake kills the node (daemon and
    postmaster) timeout after the last feed, well inside the lock's ttl."""
    from ha_cluster import HaCluster
    with HaCluster(1) as c:
        pidfile = os.path.join(c.nodes[0].datadir, "postmaster.pid")
        with FakeWatchdog(c.base, kill_pidfiles=[pidfile]) as wd:
            n = armed_leader(c, wd)
            pm = n.postmaster_pid()
            assert pm is not None
            os.kill(n.proc.pid, signal.SIGSTOP)
            fired = wd.wait_event("fired", timeout=15)
            last_feed = wd.events("write")[-1]
            # the lock was renewed just before that feed: reset 5 s later, ttl is 10
            assert 5.0 <= fired.t - last_feed.t < 5.5
            killed = set(int(x) for x in wd.wait_event("killed")["pids"].split(","))
            assert {n.proc.pid, pm}.issubset(killed), (killed, n.proc.pid, pm)
            assert n.proc.wait(timeout=10) == -signal.SIGKILL
            poll(lambda: gone(pm), 10, "the postmaster to be gone")


@daemon
def test_daemon_unusable_device():
    """pg-1 (automatic, no device) bootstraps and leads without a watchdog;
    pg-2 (required, no device) reports watchdog_failed and never takes over,
    even when the leader is gone."""
    from ha_cluster import HaCluster
    with HaCluster(2) as c:
        one, two = c.nodes
        with_watchdog(one, None, "automatic")
        with_watchdog(two, None, "required")
        c.start()
        assert c.wait_leader() == "pg-1"
        c.wait_replicas(["pg-2"])
        assert "watchdog_failed" not in patroni_status(one)
        assert patroni_status(two).get("watchdog_failed") is True
        assert "Can't open watchdog device" in one.log(10 ** 7)

        pm = one.postmaster_pid()
        one.kill()
        os.kill(pm, signal.SIGKILL)
        poll(lambda: c.leader_name() is None, 30, "the lock to expire")
        two.wait_log("Watchdog device is not usable", timeout=30)
        assert c.leader_name() is None
        assert two.rest("/leader")[0] == 503
