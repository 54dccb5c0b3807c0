"""Real etcd 3.4 (Debian's etcd-server) for the tests: one member or three, on
free loopback ports in a temp dir, stopped by PID.  Nothing here talks to a
non-loopback address.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from pg_instance import free_port  # noqa: F401 (re-exported)

ETCD = shutil.which("etcd") or "/usr/bin/etcd"




def poll(pred, timeout, what):
    """Wait for pred() with a deadline (never a bare sleep standing in for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


class Member:
    def __init__(self, name, datadir, client_port, peer_port, scheme="http"):
        self.scheme = scheme
        self.name = name
        self.datadir = datadir
        self.client_port = client_port
        self.peer_port = peer_port
        self.proc = None
        self.log = None
        self.stopped = False

    @property
    def client_url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.client_port)

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    @property
    def hostport(self):
        return "127.0.0.1:%d" % self.client_port


class EtcdCluster:
    """size members; start() waits until every member reports health."""

    def __init__(self, size=1, election_ms=500, heartbeat_ms=100, tls=None, extra_args=()):
        """tls: {"ca":..., "cert":..., "key":..., "client_cert":..., "client_key":...}
        serves clients over HTTPS and requires client certificates."""
        self.tmp = tempfile.mkdtemp(prefix="pgkeel-etcd-")
        self.members = []
        self.election_ms = election_ms
        self.heartbeat_ms = heartbeat_ms
        self.tls = tls
        self.extra_args = list(extra_args)
        for i in range(size):
            self.members.append(Member("e%d" % i, os.path.join(self.tmp, "e%d" % i),
                                       free_port(), free_port(),
                                       "https" if tls else "http"))

    @property
    def hosts(self):
        return ",".join(m.hostport for m in self.members)

    def initial_cluster(self):
        return ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)

    def start_member(self, m, state="new"):
        m.log = open(os.path.join(self.tmp, m.name + ".log"), "ab")
        m.proc = subprocess.Popen(
            [ETCD, "--name", m.name, "--data-dir", m.datadir,
             "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
             "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
             "--initial-cluster", self.initial_cluster(),
             "--initial-cluster-state", state, "--initial-cluster-token", "pgkeel-test",
             "--election-timeout", str(self.election_ms),
             "--heartbeat-interval", str(self.heartbeat_ms),
             "--logger", "zap", "--log-outputs", "stderr"] + self.tls_args() + self.extra_args,
            stdout=m.log, stderr=m.log)
        m.stopped = False

    def tls_args(self):
        if not self.tls:
            return []
        return ["--cert-file", self.tls["cert"], "--key-file", self.tls["key"],
                "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]

    def ssl_context(self):
        import ssl
        ctx = ssl.create_default_context(cafile=self.tls["ca"])
        ctx.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        return ctx

    def urlopen(self, req, timeout):
        if self.tls:
            return urllib.request.urlopen(req, timeout=timeout, context=self.ssl_context())
        return urllib.request.urlopen(req, timeout=timeout)

    def start(self, timeout=30):
        for m in self.members:
            self.start_member(m)
        for m in self.members:
            poll(lambda m=m: self.healthy(m), timeout, "etcd member %s healthy" % m.name)
        return self

    def healthy(self, m):
        if m.proc is None or m.proc.poll() is not None:
            raise AssertionError("etcd %s exited: %s" % (m.name, self.tail(m)))
        try:
            with self.urlopen(m.client_url + "/health", timeout=1) as r:
                return json.load(r).get("health") == "true"
        except OSError:
            return False

    def tail(self, m, n=2000):
        try:
            with open(os.path.join(self.tmp, m.name + ".log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # faults, by PID of processes we started
    def freeze(self, m):
        m.proc.send_signal(signal.SIGSTOP)
        m.stopped = True

    def thaw(self, m):
        m.proc.send_signal(signal.SIGCONT)
        m.stopped = False

    def kill(self, m):
        if m.stopped:
            self.thaw(m)
        m.proc.kill()
        m.proc.wait(timeout=10)

    def restart(self, m, timeout=30):
        self.start_member(m, state="existing")
        poll(lambda: self.healthy(m), timeout, "etcd member %s healthy again" % m.name)

    # direct access for checks, through the v3 JSON gateway (no pgkeel code)
    def rpc(self, path, body, member=None, token=None):
        m = member or self.members[0]
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        req = urllib.request.Request(m.client_url + "/v3" + path,
                                     data=json.dumps(body).encode(), headers=headers)
        with self.urlopen(req, timeout=5) as r:
            return json.load(r)

    def get(self, key, member=None):
        import base64
        out = self.rpc("/kv/range", {"key": base64.b64encode(key.encode()).decode()}, member)
        kvs = out.get("kvs") or []
        if not kvs:
            return None
        return base64.b64decode(kvs[0].get("value", "")).decode()

    def put(self, key, value, member=None):
        import base64
        return self.rpc("/kv/put", {"key": base64.b64encode(key.encode()).decode(),
                                    "value": base64.b64encode(value.encode()).decode()},
                        member)

    def stop(self):
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                if m.stopped:
                    self.thaw(m)
                m.proc.terminate()
                try:
                    m.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait(timeout=10)
            if m.log is not None:
                m.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
