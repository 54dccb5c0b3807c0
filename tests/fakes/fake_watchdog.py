"""A fake Linux watchdog device for the integration tests (never /dev/watchdog).

tests/fakes/fake-watchdog is the "hardware" (it kills the node when not fed in
time: see the comment at the top of fake_watchdog.c); the process under test
runs with fake_watchdog_preload.so, which makes the socket path look like a
watchdog device.  Give that path as `watchdog.device` and start the process
with env() merged into its environment:

    with FakeWatchdog(tmpdir) as wd:             # started, listening
        cfg["watchdog"] = {"mode": "required", "device": wd.device}
        env.update(wd.env(env))
        ... start pgkeel ...
        wd.wait_event("open")
        wd.wait_event("fired", timeout=30)
        wd.events()   # [("open", {"pid": "123", ...}), ...] with .t (monotonic s)

The server runs as the invoking user (root in the tests, so it may kill the
node's processes whoever they run as); the socket is mode 0666.  stop() (also
on leaving the context) ends it by PID.
"""
import os
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
SERVER = os.path.join(BUILD, "tests", "fakes", "fake-watchdog")
PRELOAD = os.path.join(BUILD, "tests", "fakes", ".libs", "fake_watchdog_preload.so")


def have_fake_watchdog():
    return os.access(SERVER, os.X_OK) and os.access(PRELOAD, os.R_OK)


class Event:
    def __init__(self, line):
        parts = line.split()
        self.t = int(parts[0]) / 1000.0  # CLOCK_MONOTONIC, as time.monotonic()
        self.name = parts[1]
        self.args = dict(p.split("=", 1) for p in parts[2:] if "=" in p)

    def __getitem__(self, key):
        return self.args[key]

    def __repr__(self):
        return "%.3f %s %s" % (self.t, self.name, self.args)


class FakeWatchdog:
    def __init__(self, base_dir, name="watchdog", timeout=60, max_timeout=65535,
                 settimeout=True, magicclose=True, kill_pidfiles=()):
        self.device = os.path.join(base_dir, name + ".sock")
        self.logfile = os.path.join(base_dir, name + ".events")
        self.argv = [SERVER, "--socket", self.device, "--log", self.logfile,
                     "--timeout", str(timeout), "--max-timeout", str(max_timeout)]
        if not settimeout:
            self.argv.append("--no-settimeout")
        if not magicclose:
            self.argv.append("--no-magicclose")
        for p in kill_pidfiles:
            self.argv += ["--kill-pidfile", p]
        self.proc = None
        # the directory must let the node's user reach the socket
        os.chmod(base_dir, os.stat(base_dir).st_mode | 0o111)

    def start(self, timeout=10):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_event("listening", timeout=timeout)
        return self

    def env(self, base=None):
        """Environment entries for the process that opens the device; an
        LD_PRELOAD already in `base` (libfaketime) is kept."""
        preload = PRELOAD
        if base and base.get("LD_PRELOAD"):
            preload = base["LD_PRELOAD"] + ":" + PRELOAD
        return {"LD_PRELOAD": preload, "FAKEWD_DEVICE": self.device,
                # a sanitizer build's runtime must otherwise come first
                "ASAN_OPTIONS": "verify_asan_link_order=0"}

    def events(self, name=None):
        try:
            with open(self.logfile) as f:
                evs = [Event(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        return [e for e in evs if name is None or e.name == name]

    def wait_event(self, name, timeout=30, count=1, pred=None):
        """The count-th event called name (matching pred), waited for with a deadline."""
        deadline = time.monotonic() + timeout
        while True:
            evs = [e for e in self.events(name) if pred is None or pred(e)]
            if len(evs) >= count:
                return evs[count - 1]
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("fake-watchdog exited (%s): %s" % (
                    self.proc.returncode, self.proc.stderr.read().decode(errors="replace")))
            if time.monotonic() >= deadline:
                raise AssertionError("timed out after %.1f s waiting for %r; events: %s" % (
                    timeout, name, self.events()))
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
