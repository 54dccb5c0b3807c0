"""The pgkeel daemon as a process: start, SIGHUP reload, secrets scrubbed from
its environment, SIGTERM.  It runs as the postgres user (as in production)
when the tests run as root, with the mock backend built under the name etcd3.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PGKEEL = os.path.join(BUILD, "core", "pgkeel")
MOCK_ETCD3 = os.path.join(BUILD, "tests", "plugins", "mock-etcd3", ".libs", "dcs_etcd3.so")


def run_as():
    """The user the daemon runs as: postgres when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("no unprivileged user to run the daemon as")


def poll(pred, timeout=10.0, what="condition"):
    """Wait for pred() with a deadline; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


CONFIG = """\
scope: batman
namespace: /db/
name: pg-1
backend_dir: {backends}
log:
  level: {level}
restapi:
  listen: 127.0.0.1:18008
  connect_address: 127.0.0.1:18008
etcd3:
  hosts: 127.0.0.1:2379
  store: {store}
postgresql:
  listen: 127.0.0.1:15432
  connect_address: 127.0.0.1:15432
  data_dir: {tmp}/data
  authentication:
    superuser: {{username: postgres, password: secret}}
    replication: {{username: replicator, password: rep}}
tags:
  dc: {dc}
"""


class Daemon:
    def __init__(self, tmp, env_extra=None):
        self.tmp = tmp
        self.cfg = os.path.join(tmp, "pgkeel.yml")
        self.log = os.path.join(tmp, "stderr.log")
        self.backends = os.path.join(tmp, "backends")
        os.mkdir(self.backends)
        os.chmod(self.backends, 0o755)
        shutil.copy(MOCK_ETCD3, os.path.join(self.backends, "dcs_etcd3.so"))
        os.chmod(os.path.join(self.backends, "dcs_etcd3.so"), 0o755)
        self.write_config()
        self.env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
        self.env.update(env_extra or {})
        self.proc = None

    def write_config(self, **kw):
        values = dict(backends=self.backends, level="INFO",
                      store=os.path.join(self.tmp, "store"), tmp=self.tmp, dc="a")
        values.update(kw)
        with open(self.cfg, "w") as f:
            f.write(CONFIG.format(**values))
        os.chmod(self.cfg, 0o644)

    def start(self):
        user = run_as()
        if user is not None:
            os.chown(self.tmp, user.pw_uid, user.pw_gid)

        def demote():
            if user is not None:
                os.setgid(user.pw_gid)
                os.setgroups([])
                os.setuid(user.pw_uid)

        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([PGKEEL, self.cfg], stdout=self.logf, stderr=self.logf,
                                     env=self.env, preexec_fn=demote, cwd=self.tmp)
        self.wait_log("pgkeel ", "starting")

    def text(self):
        with open(self.log, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, *needles, timeout=10.0):
        def found():
            assert self.proc.poll() is None or all(n in self.text() for n in needles), \
                "pgkeel exited (%s): %s" % (self.proc.returncode, self.text())
            return all(n in self.text() for n in needles)
        poll(found, timeout, "log lines %r" % (needles,))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise
        if self.proc is not None:
            self.logf.close()
        return self.proc.returncode if self.proc else None


@pytest.fixture
def daemon_factory():
    made = []
    tmps = []

    def make(**kw):
        tmp = tempfile.mkdtemp(prefix="pgkeel-it-")
        os.chmod(tmp, 0o755)
        tmps.append(tmp)
        d = Daemon(tmp, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
    for t in tmps:
        shutil.rmtree(t, ignore_errors=True)


def test_build_present():
    assert os.access(PGKEEL, os.X_OK), "build pgkeel first (%s)" % PGKEEL
    assert os.path.exists(MOCK_ETCD3), "build the check programs first (make check)"


def test_starts_and_stops_cleanly(daemon_factory):
    d = daemon_factory()
    d.start()
    d.wait_log("member pg-1 of cluster batman, DCS etcd3", "namespace /db/")
    assert d.stop() == 0
    assert "pgkeel stopping" in d.text()


def test_secrets_are_scrubbed_from_the_environment(daemon_factory):
    d = daemon_factory(env_extra={"PATRONI_REPLICATION_PASSWORD": "s3cret-repl",
                                  "PGKEEL_SUPERUSER_PASSWORD": "s3cret-super",
                                  "PATRONI_RESTAPI_PASSWORD": "s3cret-rest",
                                  "UNRELATED": "kept"})
    d.start()
    with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
        environ = f.read()
    assert b"UNRELATED=kept" in environ
    for secret in (b"s3cret-repl", b"s3cret-super", b"s3cret-rest"):
        assert secret not in environ
    assert d.stop() == 0


def test_sighup_reloads_and_keeps_fixed_keys(daemon_factory):
    d = daemon_factory()
    d.start()
    # a reloadable change plus a key that cannot change at runtime
    with open(d.cfg) as f:
        text = f.read()
    with open(d.cfg, "w") as f:
        f.write(text.replace("scope: batman", "scope: robin").replace("dc: a", "dc: b"))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("scope cannot change at runtime; keeping 'batman'", "configuration reloaded")

    # a broken file: the old configuration stays, the daemon keeps running
    before = d.text().count("configuration reloaded")
    with open(d.cfg, "w") as f:
        f.write("scope: [unclosed\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("the new configuration is not valid; keeping the current one")
    assert d.proc.poll() is None
    assert d.text().count("configuration reloaded") == before

    # debug logging switched on by a reload
    d.write_config(level="DEBUG")
    d.proc.send_signal(signal.SIGHUP)
    poll(lambda: d.text().count("configuration reloaded") == before + 1, 10, "second reload")
    assert d.stop() == 0


def test_invalid_config_exits_1(daemon_factory):
    d = daemon_factory()
    with open(d.cfg, "a") as f:
        f.write("tags: [a]\n")
    user = run_as()
    out = subprocess.run(
        [PGKEEL, d.cfg], capture_output=True, timeout=20,
        preexec_fn=(lambda: os.setuid(user.pw_uid)) if user else None)
    assert out.returncode == 1
    assert b"duplicate key 'tags'" in out.stderr
