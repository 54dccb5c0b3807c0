"""The DCS conformance suite (tests/conformance/dcs_conformance) driven from pytest.

The C program is written once against the backend ABI; a driver per backend
(test_dcs_mock.py, test_dcs_etcd3.py, ...) only provides the store:

    suite = dcs_suite.Suite(backend_dir, "etcd3", options_json)
    dcs_suite.run_scenario(suite, scenario, outage=stop_the_store)

for every name in SCENARIOS.  `outage` is a context-manager factory that
takes the store down (rename the mock's store away, SIGSTOP or kill etcd)
and brings it back; it is used for the scenarios in OUTAGE_SCENARIOS only.
Every other scenario needs a healthy store.

Each run uses a fresh scope (pid, counter, scenario), so runs never see each
other's keys, and the namespace /db/ (not Patroni's default /service/, so a
backend with a hard-coded prefix fails the "namespace" scenario).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import contextlib
import itertools
import os
import shutil
import subprocess
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
CONFORMANCE = os.path.join(BUILD, "tests", "conformance", "dcs_conformance")

# In the order the program lists them (`--scenario list`); test ids come from here.
SCENARIOS = [
    "race", "expiry", "lease", "cas", "initialize", "members", "ttl", "watch",
    "plain", "ctl", "delete_cluster", "namespace", "unavailable",
]
# Scenarios that must run while the store is down.
OUTAGE_SCENARIOS = {"unavailable"}
# The ttl scenario halves the ttl and tells old from new by expiry time.
TTL_SCENARIO_MIN_TTL = 4

_scopes = itertools.count(1)


def poll(pred, timeout=10.0, what="condition", interval=0.05):
    """Wait for pred() with a deadline; never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def install_backend(so_path, name, parent):
    """Copy a built backend into a fresh 0755 directory as dcs_<name>.so (0755).

    The loader refuses group/world-writable files and directories, and a
    build tree may be either."""
    if not os.path.exists(so_path):
        raise AssertionError("backend %s not built (make check builds it)" % so_path)
    d = os.path.join(parent, "backends")
    os.mkdir(d)
    os.chmod(d, 0o755)
    dst = os.path.join(d, "dcs_%s.so" % name)
    shutil.copy(so_path, dst)
    os.chmod(dst, 0o755)
    return d


def unique_scope(scenario):
    """A scope no other run uses; DNS-label safe (Kubernetes object names)."""
    return "c%d-%d-%s" % (os.getpid(), next(_scopes), scenario.replace("_", "-"))


def listed_scenarios():
    out = subprocess.run([CONFORMANCE, "--scenario", "list"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


class Result:
    def __init__(self, args, proc, seconds):
        self.args = args
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        self.lines = proc.stdout.splitlines()

    def tagged(self, tag):
        return [line for line in self.lines if line.split(" ", 1)[0] == tag]

    @property
    def failures(self):
        return self.tagged("FAIL")

    @property
    def notes(self):
        return self.tagged("note")


class Suite:
    """One backend's parameters for dcs_conformance."""

    def __init__(self, backend_dir, backend, options_json, namespace="/db/", ttl=3,
                 loop_wait=1, retry_timeout=1, slack_ms=None, timeout=180):
        self.backend_dir = backend_dir
        self.backend = backend
        self.options_json = options_json
        self.namespace = namespace
        self.ttl = ttl
        self.loop_wait = loop_wait
        self.retry_timeout = retry_timeout
        self.slack_ms = slack_ms
        self.timeout = timeout  # seconds for one scenario process

    def args(self, scenario, scope):
        ttl = self.ttl
        if scenario == "ttl":
            ttl = max(ttl, TTL_SCENARIO_MIN_TTL)
        a = [CONFORMANCE,
             "--backend-dir", self.backend_dir,
             "--backend", self.backend,
             "--options", self.options_json,
             "--namespace", self.namespace,
             "--scope", scope,
             "--ttl", str(ttl),
             "--loop-wait", str(self.loop_wait),
             "--retry-timeout", str(self.retry_timeout),
             "--scenario", scenario]
        if self.slack_ms is not None:
            a += ["--slack-ms", str(self.slack_ms)]
        return a

    def run(self, scenario, scope=None):
        """Run one scenario; raises AssertionError with the failing check."""
        assert os.access(CONFORMANCE, os.X_OK), \
            "build the check programs first (make check): %s" % CONFORMANCE
        args = self.args(scenario, scope or unique_scope(scenario))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(args, capture_output=True, text=True,
                                  errors="replace", timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("dcs_conformance --scenario %s hung for %d s; output:\n%s"
                                 % (scenario, self.timeout, e.stdout or "")) from None
        r = Result(args, proc, time.monotonic() - t0)
        # pytest shows captured output of a failed test: the whole transcript.
        print("$ " + " ".join(args))
        print(r.stdout, end="")
        if r.stderr:
            print("--- stderr ---\n" + r.stderr, end="")
        print("--- %s: exit %d in %.1f s" % (scenario, r.returncode, r.seconds))
        if r.returncode != 0:
            why = r.failures[-1] if r.failures else "no FAIL line"
            tail = "\n".join(r.stderr.splitlines()[-20:])
            raise AssertionError("scenario %s failed (exit %d): %s\nstderr tail:\n%s"
                                 % (scenario, r.returncode, why, tail))
        if not r.lines or "scenario passed" not in r.lines[-1]:
            raise AssertionError("scenario %s exited 0 without its final line" % scenario)
        return r


def run_scenario(suite, scenario, outage=None):
    """Run `scenario`; those in OUTAGE_SCENARIOS inside `outage()` (the store down)."""
    if scenario in OUTAGE_SCENARIOS:
        if outage is None:
            raise ValueError("scenario %s needs an outage context" % scenario)
        with outage():
            return suite.run(scenario)
    return suite.run(scenario)


@contextlib.contextmanager
def renamed(path, suffix=".down"):
    """Move `path` away for the duration of the block and put it back."""
    away = path + suffix
    os.rename(path, away)
    try:
        yield away
    finally:
        os.rename(away, path)
