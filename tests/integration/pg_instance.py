"""Real PostgreSQL (Debian's postgresql-15) for the tests: an instance in a temp
dir, on a free loopback port with its unix socket in that dir, run as the
postgres user when the tests run as root (initdb refuses root).  Processes are
only ever signalled by the PIDs this helper started (the postmaster and its
children); stop() also runs on failure through the context manager or
cleanup(), so nothing is left running.

    with PgInstance("primary") as pg:        # temp dir, free port
        pg.initdb()                          # trust auth on socket + 127.0.0.1
        pg.start()
        pg.psql("SELECT 1")
        rep = PgInstance("replica")
        rep.base_backup_from(pg)             # pg_basebackup -R over TCP
        rep.start()
        pg.freeze(); pg.thaw()               # SIGSTOP / SIGCONT every process
        rep.cleanup()

PGKEEL_PG_BIN overrides the binary directory (default /usr/lib/postgresql/15/bin).
"""
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("PGKEEL_PG_BIN", "/usr/lib/postgresql/15/bin")


def have_postgres(bin_dir=PG_BIN):
    return all(os.access(os.path.join(bin_dir, b), os.X_OK)
               for b in ("initdb", "postgres", "pg_basebackup", "psql"))


_HANDED_OUT = set()


def free_port():
    """A free TCP port on 127.0.0.1 below Linux's ephemeral range (32768+):
    a port the kernel hands out for bind(0) can be taken by any outgoing
    connection before the server binds it.  Never the same one twice in a
    process; bounded attempts, then the kernel's choice."""
    for _ in range(200):
        port = random.randrange(10000, 20000)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(pred, timeout, what):
    """Wait for pred() with a deadline (never a bare sleep standing in for it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def server_user():
    """The account PostgreSQL runs as: postgres when we are root, else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    return pwd.getpwnam("postgres")


def conf_value(v):
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("\\", "\\\\").replace("'", "''") + "'"


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


class PgInstance:
    """One PostgreSQL data directory and its postmaster."""

    def __init__(self, name="pg", base_dir=None, port=None, bin_dir=PG_BIN):
        self.name = name
        self.bin_dir = bin_dir
        self.user = server_user()
        self.owns_base = base_dir is None
        self.base = base_dir or tempfile.mkdtemp(prefix="pgkeel-pg-")
        os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        self.dir = os.path.join(self.base, name)
        self.datadir = os.path.join(self.dir, "data")
        self.sockdir = os.path.join(self.dir, "sock")
        self.logfile = os.path.join(self.dir, "postgres.log")
        for d in (self.dir, self.sockdir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o700)
            os.chown(d, self.user.pw_uid, self.user.pw_gid)
        self.port = port or free_port()
        self.proc = None
        self.frozen = []
        self.env = {"PATH": self.bin_dir + ":/usr/bin:/bin", "LANG": "C", "LC_ALL": "C",
                    "TZ": "UTC"}

    # ---- running things as the server's user ----
    def run(self, argv, timeout=120, check=True, input=None):
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        p = subprocess.run(argv, env=self.env, cwd=self.dir, timeout=timeout, input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d): %s%s" % (
                argv[0], p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace")))
        return p

    def bin(self, name):
        return os.path.join(self.bin_dir, name)

    # ---- creating the data directory ----
    def initdb(self, extra_args=(), hba=None, **settings):
        """initdb (trust auth), then a test-friendly configuration: this port,
        the socket in our dir, 127.0.0.1 only, WAL for replicas.  hba: lines put
        before the default trust lines (first match wins)."""
        self.run([self.bin("initdb"), "-D", self.datadir, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync"] + list(extra_args))
        self.write_hba(hba or [])
        defaults = dict(listen_addresses="127.0.0.1", wal_level="replica", max_wal_senders=10,
                        max_replication_slots=10, hot_standby=True, fsync=False,
                        shared_buffers="16MB", logging_collector=False,
                        log_min_messages="info")
        defaults.update(settings)
        self.configure(**defaults)
        return self

    def write_hba(self, extra_lines=()):
        lines = list(extra_lines) + [
            "local all all trust",
            "local replication all trust",
            "host all all 127.0.0.1/32 trust",
            "host replication all 127.0.0.1/32 trust",
        ]
        self.write_file(os.path.join(self.datadir, "pg_hba.conf"), "\n".join(lines) + "\n")

    def write_file(self, path, text, mode=0o600):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def configure(self, **settings):
        """Append settings to postgresql.conf (later lines win); port and the
        socket dir of this instance are always (re)written."""
        settings.setdefault("port", self.port)
        settings.setdefault("unix_socket_directories", self.sockdir)
        path = os.path.join(self.datadir, "postgresql.conf")
        with open(path, "a") as f:
            f.write("\n# pg_instance.py\n")
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, conf_value(v)))

    def base_backup_from(self, primary, extra_args=(), **settings):
        """pg_basebackup -R from primary over TCP; the copy gets our port and
        socket dir.  cluster_name defaults to our name, which the walreceiver
        uses as application_name on the primary."""
        self.run([self.bin("pg_basebackup"), "-D", self.datadir, "-h", "127.0.0.1",
                  "-p", str(primary.port), "-U", "postgres", "-X", "stream", "-R",
                  "--no-sync", "-c", "fast"] + list(extra_args))
        os.chmod(self.datadir, 0o700)
        settings.setdefault("cluster_name", self.name)
        self.configure(**settings)
        return self

    # ---- the postmaster ----
    def start(self, timeout=30, extra_args=()):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        kw = {}
        if os.geteuid() == 0:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        log = open(self.logfile, "ab")
        try:
            self.proc = subprocess.Popen([self.bin("postgres"), "-D", self.datadir] +
                                         list(extra_args), env=self.env, cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, **kw)
        finally:
            log.close()
        poll(self.ready, timeout, "PostgreSQL %s to accept connections" % self.name)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        if not self.running():
            raise AssertionError("postgres %s exited (%s): %s" % (
                self.name, self.proc.returncode if self.proc else None, self.log_tail()))
        p = subprocess.run([self.bin("pg_isready"), "-q", "-h", self.sockdir,
                            "-p", str(self.port), "-t", "1"], env=self.env, timeout=10)
        return p.returncode == 0

    def log_tail(self, n=3000):
        try:
            with open(self.logfile, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def pids(self):
        """The postmaster and its children (backends, walsenders, auxiliaries)."""
        if not self.running():
            return []
        return [self.pid] + children_of(self.pid)

    def freeze(self):
        """SIGSTOP the postmaster first (no new children), then every child.
        PostgreSQL children call setsid(), so a process-group kill misses them."""
        assert self.running() and not self.frozen
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = [self.pid]
        for pid in children_of(self.pid):
            try:
                os.kill(pid, signal.SIGSTOP)
                self.frozen.append(pid)
            except ProcessLookupError:
                pass

    def thaw(self):
        for pid in reversed(self.frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def stop(self, mode="fast", timeout=30):
        """smart/fast/immediate shutdown by PID, escalating to SIGKILL of the
        postmaster and its children."""
        if self.frozen:
            self.thaw()
        if not self.running():
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
               "immediate": signal.SIGQUIT}[mode]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        kids = children_of(self.pid)
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            for pid in [self.pid] + kids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)

    def restart(self, mode="fast", timeout=30):
        self.stop(mode)
        self.start(timeout)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self.owns_base:
                shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # ---- talking to it (psql, not the code under test) ----
    def psql(self, sql, dbname="postgres", timeout=30):
        """Run sql through psql on the unix socket; the unaligned, tuples-only text."""
        p = subprocess.run([self.bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", dbname, "-c", sql], env=self.env, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise AssertionError("psql %r failed: %s" % (sql, p.stderr.decode(errors="replace")))
        return p.stdout.decode().strip()
