"""Real ZooKeeper 3.8 (Debian's zookeeper package) for the tests: a standalone
server or a 3-server ensemble, on free loopback ports in a temp dir, started
as `java ... QuorumPeerMain zoo.cfg` and stopped by PID.  Nothing here talks
to a non-loopback address.

    zk = ZkCluster(size=1).start()
    zk.hosts            # "127.0.0.1:port,..." for a zookeeper: section
    zk.get("/db/x/leader"), zk.stat("/db/x/leader"), zk.children("/db/x")
    zk.freeze(zk.servers[0]); zk.thaw(...); zk.kill(...); zk.restart(...)
    zk.stop()

The servers tick every 500 ms and accept session timeouts from 1 s to 60 s
(minSessionTimeout/maxSessionTimeout; override with session_ms=(min, max)),
so short test ttls are granted as asked.  Checks read through kazoo
(python3-kazoo, Patroni's own client) when it is installed.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from etcd_cluster import free_port, poll  # noqa: F401 (poll: for the tests' imports)

JAVA = shutil.which("java") or "/usr/bin/java"
ZK_JAR = "/usr/share/java/zookeeper.jar"
ZK_CONF = "/etc/zookeeper/conf"
SLF4J_SIMPLE = "/usr/share/java/slf4j-simple.jar"


def have_zookeeper():
    return os.path.exists(ZK_JAR) and os.access(JAVA, os.X_OK)


def four_letter(port, cmd, timeout=1.0):
    """A ZooKeeper four-letter command; None when the server does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(cmd.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            return out.decode(errors="replace")
    except OSError:
        return None


class Server:
    def __init__(self, sid, base, client_port, peer_port, election_port):
        self.sid = sid
        self.dir = os.path.join(base, "zk%d" % sid)
        self.datadir = os.path.join(self.dir, "data")
        os.makedirs(self.datadir)
        self.client_port = client_port
        self.peer_port = peer_port
        self.election_port = election_port
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.logfile = os.path.join(self.dir, "zk.log")
        self.proc = None
        self.log = None
        self.stopped = False

    @property
    def hostport(self):
        return "127.0.0.1:%d" % self.client_port

    def mode(self):
        """standalone, leader or follower; None while not serving."""
        out = four_letter(self.client_port, "srvr")
        if not out:
            return None
        for line in out.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None


class ZkCluster:
    def __init__(self, size=1, session_ms=(1000, 60000), tick_ms=500):
        self.tmp = tempfile.mkdtemp(prefix="pgkeel-zk-")
        self.size = size
        self.session_ms = session_ms
        self.tick_ms = tick_ms
        self.servers = [Server(i + 1, self.tmp, free_port(), free_port(), free_port())
                        for i in range(size)]
        self._kazoo = None
        for s in self.servers:
            self.write_config(s)

    @property
    def hosts(self):
        return ",".join(s.hostport for s in self.servers)

    def write_config(self, s):
        lines = [
            "tickTime=%d" % self.tick_ms,
            "initLimit=20",
            "syncLimit=10",
            "dataDir=%s" % s.datadir,
            "clientPort=%d" % s.client_port,
            "clientPortAddress=127.0.0.1",
            "minSessionTimeout=%d" % self.session_ms[0],
            "maxSessionTimeout=%d" % self.session_ms[1],
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,mntr,cons",
            "autopurge.purgeInterval=0",
        ]
        if self.size > 1:
            lines.append("quorumListenOnAllIPs=false")
            for o in self.servers:
                lines.append("server.%d=127.0.0.1:%d:%d" % (o.sid, o.peer_port,
                                                           o.election_port))
            with open(os.path.join(s.datadir, "myid"), "w") as f:
                f.write("%d\n" % s.sid)
        with open(s.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start_server(self, s):
        cp = [ZK_CONF, ZK_JAR]
        if os.path.exists(SLF4J_SIMPLE):
            cp.append(SLF4J_SIMPLE)
        s.log = open(s.logfile, "ab")
        s.proc = subprocess.Popen(
            [JAVA, "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Xshare:auto", "-Djava.net.preferIPv4Stack=true",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
             "-Dorg.slf4j.simpleLogger.showDateTime=true",
             "-Dzookeeper.jmx.log4j.disable=true",
             "-cp", ":".join(cp), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             s.cfg],
            stdout=s.log, stderr=s.log, stdin=subprocess.DEVNULL, cwd=s.dir)
        s.stopped = False

    def serving(self, s):
        if s.proc is None or s.proc.poll() is not None:
            raise AssertionError("ZooKeeper server %d exited: %s" % (s.sid, self.tail(s)))
        m = s.mode()
        return m in ("standalone", "leader", "follower")

    def start(self, timeout=60):
        for s in self.servers:
            self.start_server(s)
        for s in self.servers:
            poll(lambda s=s: self.serving(s), timeout, "ZooKeeper server %d serving" % s.sid)
        return self

    def leader(self):
        for s in self.servers:
            if not s.stopped and s.proc is not None and s.proc.poll() is None:
                if s.mode() in ("leader", "standalone"):
                    return s
        return None

    def tail(self, s, n=3000):
        try:
            with open(s.logfile, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # ---- faults, by PID of processes we started ----
    def freeze(self, s):
        s.proc.send_signal(signal.SIGSTOP)
        s.stopped = True

    def thaw(self, s):
        s.proc.send_signal(signal.SIGCONT)
        s.stopped = False

    def kill(self, s):
        if s.stopped:
            self.thaw(s)
        s.proc.kill()
        s.proc.wait(timeout=10)
        if s.log is not None:
            s.log.close()
            s.log = None

    def restart(self, s, timeout=60):
        self.start_server(s)
        poll(lambda: self.serving(s), timeout, "ZooKeeper server %d serving again" % s.sid)

    # ---- direct access for checks, through kazoo (no pgkeel code) ----
    def kazoo(self):
        if self._kazoo is None:
            from kazoo.client import KazooClient
            self._kazoo = KazooClient(hosts=self.hosts, timeout=10)
            self._kazoo.start(timeout=30)
        return self._kazoo

    def get(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            self.kazoo().sync(path)
            return self.kazoo().get(path)[0].decode()
        except NoNodeError:
            return None

    def stat(self, path):
        return self.kazoo().exists(path)

    def children(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            return sorted(self.kazoo().get_children(path))
        except NoNodeError:
            return []

    def set(self, path, value):
        from kazoo.exceptions import NoNodeError
        try:
            self.kazoo().set(path, value.encode())
        except NoNodeError:
            self.kazoo().create(path, value.encode(), makepath=True)

    def close_kazoo(self):
        if self._kazoo is not None:
            try:
                self._kazoo.stop()
                self._kazoo.close()
            except Exception:
                pass
            self._kazoo = None

    def stop(self):
        self.close_kazoo()
        for s in self.servers:
            if s.proc is not None and s.proc.poll() is None:
                if s.stopped:
                    self.thaw(s)
                s.proc.terminate()
                try:
                    s.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    s.proc.kill()
                    s.proc.wait(timeout=10)
            if s.log is not None:
                s.log.close()
                s.log = None
        shutil.rmtree(self.tmp, ignore_errors=True)
