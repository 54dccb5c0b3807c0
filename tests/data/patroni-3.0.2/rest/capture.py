#!/usr/bin/python3
"""Record Patroni 3.0.2's peer-to-peer REST traffic into this folder (see README.md).

Runs, on 127.0.0.1 with free ports and a temp dir, one etcd and three Debian
Patroni 3.0.2 nodes (pg-1 bootstraps; pg-2 a replica; pg-3 a replica tagged
nofailover) with restapi.authentication and failsafe_mode, plus a capture
server registered as a fourth member "pg-capture" (a member key written into
etcd by hand, its api_url pointing at the capture server).  Then records:

  1. GET /patroni, GET /liveness of each node (raw responses and bodies);
  2. POST /failsafe to a replica and to the primary, with and without
     credentials (raw responses);
  3. the body of a node whose PostgreSQL is stopped (pause, pg_ctl stop);
  4. what the primary sends to pg-capture (POST /failsafe) while etcd is
     SIGSTOPped: request line, headers, body, as raw bytes;
  5. what a replica sends to pg-capture (GET /patroni) in the leader race
     after the primary's Patroni got SIGTERM.

Everything started here is stopped by PID, also on failure.  Run as root on
Debian 12 with patroni, etcd-server and postgresql-15 installed:
    /usr/bin/python3 tests/data/patroni-3.0.2/rest/capture.py [OUTDIR]
"""
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from etcd_cluster import EtcdCluster, free_port, poll  # noqa: E402

PATRONI = "/usr/bin/patroni"
PATRONICTL = "/usr/bin/patronictl"
PG_BIN = "/usr/lib/postgresql/15/bin"
SCOPE = "peers"
NAMESPACE = "/db/"
PREFIX = NAMESPACE + SCOPE + "/"
API_USER, API_PASS = "patroni", "rest-secret"
SUPERPASS, REPLPASS = "capsuper", "caprepl"


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Capture:
    """A member that records every request as raw bytes and answers like a
    healthy replica far behind (so it never blocks anyone's race)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        conn.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            raw = head + b"\r\n\r\n" + body
            with self.lock:
                self.requests.append(raw)
            if head.startswith(b"POST /failsafe"):
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\nAccepted")
            else:
                doc = {"state": "running", "role": "replica",
                       "xlog": {"received_location": 0, "replayed_location": 0,
                                "replayed_timestamp": None, "paused": False},
                       "timeline": 1, "patroni": {"version": "3.0.2", "scope": SCOPE}}
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" +
                             json.dumps(doc).encode())
        except OSError:
            pass
        finally:
            conn.close()

    def find(self, prefix):
        with self.lock:
            for r in self.requests:
                if r.startswith(prefix):
                    return r
        return None

    def close(self):
        self.closing = True
        self.sock.close()


def raw_http(port, request, timeout=5):
    """Send request bytes, return everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def get_request(port, path):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept-Encoding: identity\r\n\r\n"
            % (path, port)).encode()


def post_request(port, path, body, auth):
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept-Encoding: identity\r\n" % (path, port)
    if auth:
        import base64
        head += "Authorization: Basic %s\r\n" % base64.b64encode(auth.encode()).decode()
    head += "Content-Length: %d\r\n\r\n" % len(body)
    return head.encode() + body


def body_of(raw):
    return raw.partition(b"\r\n\r\n")[2]


def patroni_json(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/patroni" % port, timeout=2) as r:
            return json.load(r)
    except OSError:
        return None
    except ValueError:
        return None


class Node:
    def __init__(self, run, i, etcd_hosts, tags):
        self.name = "pg-%d" % i
        self.dir = os.path.join(run, self.name)
        self.api_port = free_port()
        self.pg_port = free_port()
        self.cfg = os.path.join(run, self.name + ".yml")
        self.proc = None
        os.makedirs(self.dir)
        with open(self.cfg, "w") as f:
            f.write("""\
scope: {scope}
namespace: {ns}
name: {name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
  authentication:
    username: {user}
    password: {pw}
etcd3:
  hosts: {hosts}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    failsafe_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
  initdb:
  - encoding: UTF8
  - data-checksums
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {d}/data
  bin_dir: {bin}
  pgpass: {d}/pgpass
  authentication:
    superuser: {{username: postgres, password: {sp}}}
    replication: {{username: replicator, password: {rp}}}
  parameters:
    unix_socket_directories: '{d}'
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
tags: {tags}
""".format(scope=SCOPE, ns=NAMESPACE, name=self.name, api=self.api_port, user=API_USER,
           pw=API_PASS, hosts=etcd_hosts, pg=self.pg_port, d=self.dir, bin=PG_BIN,
           sp=SUPERPASS, rp=REPLPASS, tags=json.dumps(tags)))

    def start(self, pw):
        logf = open(os.path.join(self.dir, "patroni.log"), "ab")
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--init-groups",
             "env", "HOME=" + self.dir, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", PATRONI, self.cfg],
            stdout=logf, stderr=logf)

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        pid = self.postmaster_pid()
        if pid is not None:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    mine = os.path.join(self.dir, "data").encode() in f.read()
            except OSError:
                mine = False
            if mine:
                os.kill(pid, signal.SIGINT)
                deadline = time.monotonic() + 30
                while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                    time.sleep(0.1)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    if os.geteuid() != 0:
        sys.exit("run as root (Patroni/PostgreSQL run as postgres)")
    pw = pwd.getpwnam("postgres")
    run = tempfile.mkdtemp(prefix="pgkeel-rest-capture-")
    os.chmod(run, 0o755)
    etcd = EtcdCluster(size=1).start()
    cap = Capture()
    nodes = [Node(run, 1, etcd.hosts, {}), Node(run, 2, etcd.hosts, {"dc": "dc2"}),
             Node(run, 3, etcd.hosts, {"nofailover": True})]
    for n in nodes:
        os.chown(n.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(n.dir, 0o700)
    files = {}

    def save(name, data):
        files[name] = data
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        log("wrote %s (%d bytes)" % (name, len(data)))

    try:
        nodes[0].start(pw)
        poll(lambda: (patroni_json(nodes[0].api_port) or {}).get("role") == "master", 120,
             "pg-1 primary")
        for n in nodes[1:]:
            n.start(pw)

        def streaming(n):
            d = patroni_json(n.api_port) or {}
            return d.get("state") == "running" and d.get("role") == "replica" and \
                d.get("xlog", {}).get("received_location", 0) > 0
        poll(lambda: all(streaming(n) for n in nodes[1:]), 180, "two streaming replicas")
        # the fourth member, as Patroni would read it from members/
        member = {"conn_url": "postgres://127.0.0.1:1/postgres",
                  "api_url": "http://127.0.0.1:%d/patroni" % cap.port,
                  "state": "running", "role": "replica", "version": "3.0.2"}
        etcd.put(PREFIX + "members/pg-capture", json.dumps(member))
        poll(lambda: "pg-capture" in (etcd.get(PREFIX + "failsafe") or ""), 60,
             "pg-capture in the failsafe key")
        poll(lambda: (patroni_json(nodes[0].api_port) or {}).get("replication") and
             len(patroni_json(nodes[0].api_port)["replication"]) == 2, 60, "2 walsenders")

        # 1. status documents and liveness
        for n, what in ((nodes[0], "primary"), (nodes[1], "replica"),
                        (nodes[2], "replica-nofailover")):
            raw = raw_http(n.api_port, get_request(n.api_port, "/patroni"))
            save("get-patroni-%s.http" % what, raw)
            save("patroni-%s.json" % what, body_of(raw))
        save("get-liveness-primary.http",
             raw_http(nodes[0].api_port, get_request(nodes[0].api_port, "/liveness")))

        # 2. POST /failsafe answers
        msg = json.dumps({"name": "pg-1", "conn_url": "postgres://127.0.0.1:%d/postgres"
                          % nodes[0].pg_port, "api_url": "http://127.0.0.1:%d/patroni"
                          % nodes[0].api_port, "slots": {"pg_1": 0}}).encode()
        auth = API_USER + ":" + API_PASS
        save("post-failsafe-replica.http",
             raw_http(nodes[1].api_port, post_request(nodes[1].api_port, "/failsafe", msg, auth)))
        save("post-failsafe-primary.http",
             raw_http(nodes[0].api_port, post_request(nodes[0].api_port, "/failsafe", msg, auth)))
        save("post-failsafe-noauth.http",
             raw_http(nodes[1].api_port, post_request(nodes[1].api_port, "/failsafe", msg, None)))

        # 3. PostgreSQL stopped (paused, so Patroni leaves it down)
        ctl = [PATRONICTL, "-c", nodes[0].cfg]
        subprocess.run(ctl + ["pause", "--wait"], check=True, capture_output=True, timeout=60)
        subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                        "--init-groups", PG_BIN + "/pg_ctl", "stop", "-m", "fast", "-w", "-D",
                        os.path.join(nodes[2].dir, "data")], check=True, capture_output=True,
                       timeout=60)
        poll(lambda: "xlog" not in (patroni_json(nodes[2].api_port) or {"xlog": 0}), 30,
             "pg-3 reports no xlog")
        raw = raw_http(nodes[2].api_port, get_request(nodes[2].api_port, "/patroni"))
        save("get-patroni-stopped.http", raw)
        save("patroni-stopped.json", body_of(raw))
        subprocess.run(ctl + ["resume", "--wait"], check=True, capture_output=True, timeout=60)
        poll(lambda: streaming(nodes[2]), 120, "pg-3 streaming again")

        # 4. the primary's POST /failsafe while etcd is frozen
        etcd.freeze(etcd.members[0])
        try:
            req = poll(lambda: cap.find(b"POST /failsafe"), 60, "POST /failsafe from pg-1")
            save("sent-post-failsafe.http", req)
            poll(lambda: "failsafe mode is enabled and all members are accessible" in
                 open(os.path.join(nodes[0].dir, "patroni.log"), errors="replace").read(),
                 30, "pg-1 staying primary in failsafe mode")
        finally:
            etcd.thaw(etcd.members[0])

        # 5. a replica's GET /patroni in the leader race
        nodes[0].proc.send_signal(signal.SIGTERM)
        req = poll(lambda: cap.find(b"GET /patroni"), 90, "GET /patroni in the race")
        save("sent-get-patroni.http", req)
        nodes[0].proc.wait(timeout=60)
    finally:
        for n in nodes:
            n.stop()
        cap.close()
        etcd.stop()
        subprocess.run(["rm", "-rf", run])
    log("done: %s" % ", ".join(sorted(files)))


if __name__ == "__main__":
    main()
