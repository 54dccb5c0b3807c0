"""The REST server (core/rest.c) over real HTTP, driven through
tests/tools/rest_probe: the server on a free loopback port, the published
state set from here, and a stand-in for the HA loop that answers, holds or
ignores the requests queued to it (see rest_probe.c for its commands).

Covers: health-check codes for a leader, replicas and a lagging replica;
HEAD/OPTIONS (status only, also HAProxy's raw "OPTIONS / HTTP/1.0"); the
status document; a suspended POST /switchover answered by the "loop"; the
reply deadline (503) when the loop never takes or never answers a request;
20 concurrent health checks answering while 8 requests are suspended; a
lock deadline in the past turning /leader 503 with no loop action, and a
lock and a cycle deadline running out by themselves; basic auth; Patroni's
4xx/5xx pages; POST/GET /failsafe; extra headers; the queue bound; IPv6.

And a differential check against Debian's Patroni 3.0.2: its own
RestApiHandler (/usr/lib/python3/dist-packages/patroni/api.py) is run
in-process on a stand-in Patroni object holding the same situation as the
probe, for a seeded sample of situations (roles, lock, DCS view, pause,
standby cluster, synchronous mode, tags, lag, PostgreSQL state, a failed
status query) and every health path with lag/tag queries: status codes of
GET and HEAD, /liveness, /readiness, and the status document byte for byte
(pgkeel adds "name" to the patroni object, as 3.3 does, and
"pgkeel_version").

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import concurrent.futures
import http.client
import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

from pg_instance import poll

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "rest_probe")


class Probe:
    def __init__(self, *args):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PROBE] + list(args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, bufsize=0)
        self.buf = b""
        line = self.readline(10)
        assert line.startswith("port "), line
        self.port = int(line.split()[1])
        self.host = "127.0.0.1"

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("rest_probe did not answer; log:\n" + self.stderr())
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("rest_probe exited; log:\n" + self.stderr())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def stderr(self):
        if self.log.closed:
            return self.final_log
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def cmd(self, line, timeout=10):
        self.proc.stdin.write(line.encode() + b"\n")
        return self.readline(timeout)

    def state(self, **kw):
        assert self.cmd("state " + json.dumps(kw)) == "ok"

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def code(self, path, method="GET"):
        return self.request(method, path)[0]

    def raw(self, data, timeout=10):
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=15)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.final_log = self.stderr()
        self.log.close()


@pytest.fixture
def start():
    if not os.access(PROBE, os.X_OK):
        pytest.skip("rest_probe not built in " + BUILD)
    probes = []

    def _start(*args):
        p = Probe(*args)
        probes.append(p)
        return p

    yield _start
    for p in probes:
        p.close()
    for p in probes:
        assert p.proc.returncode == 0, p.stderr()
        assert "Sanitizer" not in p.stderr(), p.stderr()


CLUSTER = {
    "initialize": "7712249454031023488",
    "leader": "pg-1",
    "members/pg-1": {"conn_url": "postgres://127.0.0.1:5432/postgres",
                     "api_url": "http://127.0.0.1:8008/patroni", "state": "running",
                     "role": "master", "version": "3.0.2"},
    "members/pg-2": {"conn_url": "postgres://127.0.0.1:5433/postgres",
                     "api_url": "http://127.0.0.1:8009/patroni", "state": "running",
                     "role": "replica", "version": "3.0.2"},
    "status": {"optime": 100000000},
    "sync": {"leader": "pg-1", "sync_standby": "pg-2"},
    "config": {"ttl": 30, "loop_wait": 10, "synchronous_mode": True},
}

PRIMARY_PG = {"in_recovery": False, "server_version": 150018, "wal_lsn": 100000000,
              "postmaster_start_time": "2026-11-25 23:06:46.341123+00:00", "timeline": 2,
              "walsenders": [{"usename": "replicator", "application_name": "pg-2",
                              "client_addr": "127.0.0.1", "state": "streaming",
                              "sync_state": "sync", "sync_priority": 1}]}


def leader_state(**over):
    s = dict(name="pg-1", scope="batman", pg_state="running", pg_running=True, role="master",
             lock_ms=30000, ttl=30, loop_wait=10, synchronous_mode=True,
             sysid="7712249454031023488", dcs_last_seen=1795648027, tags={"dc": "dc1"},
             cluster=CLUSTER, pg=PRIMARY_PG)
    s.update(over)
    return s


def replica_state(replayed=100000000, **over):
    s = dict(name="pg-2", scope="batman", pg_state="running", pg_running=True, role="replica",
             ttl=30, loop_wait=10, synchronous_mode=True, sysid="7712249454031023488",
             dcs_last_seen=1795648027, tags={"dc": "dc2"}, cluster=CLUSTER,
             pg={"in_recovery": True, "server_version": 150018, "replay_lsn": replayed,
                 "receive_lsn": replayed, "timeline": 2,
                 "postmaster_start_time": "2026-11-25 23:06:49.550397+00:00",
                 "replay_timestamp": "2026-11-25 23:06:57.838652+00:00"})
    s.update(over)
    return s


HEALTH = ["/", "/primary", "/master", "/read-write", "/leader", "/standby-leader",
          "/standby_leader", "/replica", "/read-only", "/read-only-sync", "/sync", "/async",
          "/health"]


def test_codes_leader_replica_lagging(start):
    p = start()
    p.state(**leader_state())
    got = {path: p.code(path) for path in HEALTH}
    assert got == {"/": 200, "/primary": 200, "/master": 200, "/read-write": 200,
                   "/leader": 200, "/standby-leader": 503, "/standby_leader": 503,
                   "/replica": 503, "/read-only": 200, "/read-only-sync": 200, "/sync": 503,
                   "/async": 503, "/health": 200}
    assert p.code("/liveness") == 200 and p.code("/readiness") == 200

    p.state(**replica_state())  # pg-2 is the sync standby
    got = {path: p.code(path) for path in HEALTH}
    assert got == {"/": 503, "/primary": 503, "/master": 503, "/read-write": 503,
                   "/leader": 503, "/standby-leader": 503, "/standby_leader": 503,
                   "/replica": 200, "/read-only": 200, "/read-only-sync": 200, "/sync": 200,
                   "/async": 503, "/health": 200}
    assert p.code("/replica?tag_dc=dc2") == 200
    assert p.code("/replica?tag_dc=dc1") == 503
    assert p.code("/replica?tag_zone=a") == 503
    assert p.code("/replica?lag=&tag_dc=") == 200  # blank values are ignored

    # 3 MiB behind the leader's optime
    p.state(**replica_state(replayed=100000000 - 3 * 1024 * 1024, synchronous_mode=False))
    assert p.code("/replica") == 200
    assert p.code("/replica?lag=1MB") == 503
    assert p.code("/replica?lag=4MB") == 200
    assert p.code("/replica?lag=3145728") == 200
    assert p.code("/replica?lag=3145727") == 503
    assert p.code("/async?lag=1MB") == 503
    assert p.code("/async?lag=10MB") == 200
    assert p.code("/read-only?lag=1MB") == 503
    assert p.code("/replica?lag=oops") == 200

    p.state(**replica_state(tags={"noloadbalance": True}))
    assert p.code("/replica") == 503 and p.code("/health") == 200


def test_head_options_status_only(start):
    p = start("--header", "X-Extra:yes")
    p.state(**leader_state())
    for method in ("HEAD", "OPTIONS"):
        status, headers, body = p.request(method, "/")
        assert status == 200 and body == b""
        assert "x-extra" not in headers and "content-type" not in headers
        assert p.request(method, "/replica")[0] == 503
        assert p.request(method, "/patroni")[0] == 503   # no HEAD_patroni in Patroni
        assert p.request(method, "/liveness")[0] == 503  # nor HEAD_liveness
    # HAProxy's bare "option httpchk"
    out = p.raw(b"OPTIONS / HTTP/1.0\r\n\r\n")
    assert out.split(b"\r\n", 1)[0].split()[1] == b"200", out
    out = p.raw(b"GET /replica HTTP/1.0\r\n\r\n")
    assert out.split(b"\r\n", 1)[0].split()[1] == b"503", out
    # GET /liveness and /readiness: the status line only
    status, headers, body = p.request("GET", "/liveness")
    assert status == 200 and body == b"" and "x-extra" not in headers


def test_status_document(start):
    p = start("--header", "X-Extra:yes")
    p.state(**leader_state())
    status, headers, body = p.request("GET", "/patroni")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-extra"] == "yes"
    doc = json.loads(body)
    assert list(doc) == ["state", "postmaster_start_time", "role", "server_version", "xlog",
                         "timeline", "replication", "dcs_last_seen", "tags",
                         "database_system_identifier", "patroni", "pgkeel_version"]
    assert doc["role"] == "master" and doc["xlog"] == {"location": 100000000}
    assert doc["patroni"] == {"version": "3.0.2", "scope": "batman", "name": "pg-1"}
    assert isinstance(doc["server_version"], int) and isinstance(doc["dcs_last_seen"], int)
    # a health GET carries the same document with its own code
    status, _, body = p.request("GET", "/replica")
    assert status == 503 and json.loads(body) == doc
    # any other GET path is a health check too
    status, _, body = p.request("GET", "/foo/bar")
    assert status == 503 and json.loads(body) == doc
    assert p.code("/patroni/anything") == 200

    # the replica document Patroni 3.0.2 wrote (tests/data/patroni-3.0.2), same keys and types
    with open(os.path.join(TOP, "tests", "data", "patroni-3.0.2",
                           "rest-patroni-replica.json")) as f:
        recorded = json.load(f)
    p.state(**replica_state(tags={"dc": "dc3"}))
    doc = json.loads(p.request("GET", "/patroni")[2])
    del doc["pgkeel_version"], doc["patroni"]["name"]
    assert list(doc) == list(recorded)
    assert {k: type(v) for k, v in doc.items()} == {k: type(v) for k, v in recorded.items()}
    assert list(doc["xlog"]) == list(recorded["xlog"])


def test_switchover_answered_by_loop(start):
    p = start()
    p.state(**leader_state())
    body = json.dumps({"leader": "pg-1", "candidate": "pg-2", "scheduled_at": None})
    status, headers, out = p.request("POST", "/switchover", body)
    assert status == 200, out
    assert json.loads(out) == {"kind": "switchover", "leader": "pg-1", "candidate": "pg-2",
                               "scheduled_at": None, "client": "127.0.0.1", "role": None,
                               "postgres_version": None, "restart_pending": False,
                               "timeout_s": -1, "force": False}
    # patronictl 3.0.2's failover body; "member" is an alias of "candidate"
    status, _, out = p.request("POST", "/failover", json.dumps({"member": "pg-2"}))
    assert status == 200 and json.loads(out)["candidate"] == "pg-2"
    # a scheduled one carries the normalized time
    status, _, out = p.request("POST", "/switchover", json.dumps(
        {"leader": "pg-1", "scheduled_at": "2031-06-01T12:00:00Z"}))
    assert status == 200 and json.loads(out)["scheduled_at"] == "2031-06-01T12:00:00+00:00"
    # the loop's own text goes back verbatim
    assert p.cmd('reply 200 Successfully switched over to "pg-2"') == "ok"
    status, headers, out = p.request("POST", "/switchover", body)
    assert (status, out) == (200, b'Successfully switched over to "pg-2"')
    assert headers["content-type"] == "text/html"
    # checked before queueing: nothing reaches the loop
    assert p.cmd("mode ignore") == "ok"
    status, _, out = p.request("POST", "/failover", json.dumps({"leader": "pg-1"}))
    assert (status, out) == (400, b"Failover could be performed only to a specific candidate")
    status, _, out = p.request("POST", "/switchover", json.dumps({"candidate": "pg-2"}))
    assert (status, out) == (400, b"Switchover could be performed only from a specific leader")
    status, _, out = p.request("POST", "/switchover", json.dumps(
        {"leader": "pg-1", "scheduled_at": "2020-01-01T00:00:00+00:00"}))
    assert (status, out) == (422, b"Cannot schedule switchover in the past")
    p.state(**leader_state(paused=True))
    status, _, out = p.request("POST", "/switchover", json.dumps({"leader": "pg-1"}))
    assert (status, out) == (400, b"Switchover is possible only to a specific candidate in "
                                  b"a paused state")


def test_reply_deadline(start):
    # --switchover-wait-ms 0 would mean Patroni's 20 s; keep the test short
    p = start("--reply-timeout-ms", "1000", "--switchover-wait-ms", "500")
    p.state(**leader_state())
    body = json.dumps({"leader": "pg-1", "candidate": "pg-2"})
    assert p.cmd("mode ignore") == "ok"  # a dead loop: never takes it
    t0 = time.monotonic()
    status, _, out = p.request("POST", "/switchover", body)
    took = time.monotonic() - t0
    assert status == 503, out
    assert out == b"switchover request not processed: the HA loop did not take it in time"
    assert 1.4 <= took < 5, took
    assert p.cmd("mode hold") == "ok"  # a stuck loop: takes it, never answers
    t0 = time.monotonic()
    status, _, out = p.request("POST", "/failover", json.dumps({"candidate": "pg-2"}))
    took = time.monotonic() - t0
    assert (status, out) == (503, b"Failover status unknown")
    assert 1.4 <= took < 5, took
    assert p.cmd("held") == "1"
    assert p.cmd("release") == "released 1"  # a late answer is dropped quietly
    # a scheduled request gets no polling time
    t0 = time.monotonic()
    status, _, out = p.request("POST", "/switchover", json.dumps(
        {"leader": "pg-1", "scheduled_at": "2031-06-01T12:00:00+00:00"}))
    assert (status, out) == (503, b"Switchover status unknown")
    assert 0.9 <= time.monotonic() - t0 < 4
    assert p.code("/leader") == 200


def test_health_checks_while_requests_suspended(start):
    p = start("--reply-timeout-ms", "60000")
    p.state(**leader_state())
    assert p.cmd("mode hold") == "ok"
    body = json.dumps({"leader": "pg-1", "candidate": "pg-2"})
    with concurrent.futures.ThreadPoolExecutor(max_workers=28) as pool:
        slow = [pool.submit(p.request, "POST", "/switchover", body, None, 60)
                for _ in range(8)]
        poll(lambda: p.cmd("held") == "8", 10, "8 requests held by the loop")
        assert not any(f.done() for f in slow)
        t0 = time.monotonic()
        paths = ["/leader", "/health", "/patroni", "/replica", "/"] * 4
        fast = [pool.submit(p.request, "GET", path, None, None, 5) for path in paths]
        codes = [f.result(timeout=10)[0] for f in fast]
        assert time.monotonic() - t0 < 3
        assert codes == [{"/replica": 503}.get(path, 200) for path in paths]
        assert not any(f.done() for f in slow)
        assert p.cmd("release") == "released 8"
        for f in slow:
            status, _, out = f.result(timeout=10)
            assert status == 200 and json.loads(out)["candidate"] == "pg-2"


def test_stale_lock_and_stuck_loop(start):
    p = start()
    assert p.cmd("mode ignore") == "ok"
    # the lock deadline is in the past: no longer the leader, with no loop action
    p.state(**leader_state(lock_ms=-1))
    for path in ("/leader", "/primary", "/", "/read-write", "/read-only"):
        assert p.code(path) == 503, path
    assert p.code("/health") == 200
    # a lock that runs out while nobody publishes anything
    p.state(**leader_state(lock_ms=1500))
    assert p.code("/leader") == 200
    t0 = time.monotonic()
    poll(lambda: p.code("/leader") == 503, 10, "/leader to turn 503 by itself")
    assert time.monotonic() - t0 >= 1.0
    assert p.code("/primary") == 503
    # /liveness: the next cycle was due now; a primary tolerates ttl
    p.state(**leader_state(ttl=1, next_cycle_ms=0))
    assert p.code("/liveness") == 200
    poll(lambda: p.code("/liveness") == 503, 10, "/liveness to turn 503 by itself")
    # the DCS view expires too: /sync needs one
    p.state(**replica_state(cluster_valid_ms=1000))
    assert p.code("/sync") == 200 and p.code("/readiness") == 200
    poll(lambda: p.code("/sync") == 503, 10, "the cached view to expire")
    assert p.code("/readiness") == 503 and p.code("/replica") == 200
    doc = json.loads(p.request("GET", "/patroni")[2])
    assert doc["cluster_unlocked"] is True and "sync_standby" not in doc
    # a stale PostgreSQL sample reads as a failed status query
    p.state(**replica_state(pg_valid_ms=800))
    assert json.loads(p.request("GET", "/patroni")[2])["state"] == "running"
    poll(lambda: json.loads(p.request("GET", "/patroni")[2])["state"] == "unknown", 10,
         "the sample to go stale")
    assert p.code("/health") == 503


def test_auth(start):
    p = start("--auth", "patroni:s3cret")
    p.state(**leader_state())
    body = json.dumps({"leader": "pg-1", "candidate": "pg-2"})
    status, headers, out = p.request("POST", "/switchover", body)
    assert (status, out) == (401, b"no auth header received")
    assert headers["www-authenticate"] == 'Basic realm="Patroni"'
    status, headers, out = p.request("POST", "/switchover", body,
                                     {"Authorization": "Basic cGF0cm9uaTp3cm9uZw=="})
    assert (status, out) == (401, b"not authenticated")
    status, _, out = p.request("POST", "/switchover", body, {"Authorization": "Bearer x"})
    assert (status, out) == (401, b"not authenticated")
    # auth is checked before the body is looked at
    status, _, out = p.request("POST", "/failsafe", "{")
    assert status == 401
    good = {"Authorization": "Basic cGF0cm9uaTpzM2NyZXQ="}
    status, _, out = p.request("POST", "/switchover", body, good)
    assert status == 200, out
    # GET/HEAD/OPTIONS are never authenticated
    assert p.code("/leader") == 200 and p.code("/", "OPTIONS") == 200


def test_bad_requests(start):
    p = start("--max-body", "1024")
    p.state(**leader_state(failsafe_mode=True, role="replica"))
    # no Content-Length: 411 page
    out = p.raw(b"POST /switchover HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411"), out
    assert b"Client must specify Content-Length" in out
    for bad in (b"{", b"[]", b"{}", b'"x"', b"\xff\xfe"):
        status, headers, out = p.request("POST", "/switchover", bad)
        assert status == 400, bad
        assert headers["content-type"] == "text/html;charset=utf-8"
        assert b"<p>Error code: 400</p>" in out
    status, _, out = p.request("POST", "/failsafe", b"{}")
    assert status == 400
    status, _, out = p.request("POST", "/switchover", b"{" + b" " * 2000 + b"}")
    assert status == 413
    # unknown method/path combinations: the page patronictl looks for
    for method, path in (("PUT", "/switchover"), ("POST", "/foo"), ("DELETE", "/"),
                         ("PATCH", "/leader"), ("BREW", "/")):
        status, _, out = p.request(method, path, b"{}")
        assert status == 501, (method, path)
        assert b"Server does not support this operation" in out
        assert ("Unsupported method ('%s')" % method).encode() in out
    # still serving after all that
    assert p.code("/health") == 200


def test_failsafe(start):
    p = start()
    msg = {"name": "pg-1", "conn_url": "postgres://127.0.0.1:5432/postgres",
           "api_url": "http://127.0.0.1:8008/patroni", "slots": {"pg_2": 67109000}}
    p.state(**replica_state())  # failsafe_mode off
    status, _, out = p.request("POST", "/failsafe", json.dumps(msg))
    assert status == 502 and b"<p>Error code: 502</p>" in out
    assert p.code("/failsafe") == 502  # no failsafe key in the view
    assert p.cmd("failsafe") == "none"
    # answered at once even though the "loop" takes nothing
    assert p.cmd("mode ignore") == "ok"
    p.state(**replica_state(failsafe_mode=True))
    status, _, out = p.request("POST", "/failsafe", json.dumps(msg), timeout=2)
    assert (status, out) == (200, b"Accepted")
    assert json.loads(p.cmd("failsafe")) == msg
    status, _, out = p.request("POST", "/failsafe", json.dumps({"name": "pg-1"}))
    assert status == 400
    p.state(**leader_state(failsafe_mode=True))
    status, _, out = p.request("POST", "/failsafe", json.dumps(msg))
    assert (status, out) == (500, b"Running as a leader")
    cluster = dict(CLUSTER, failsafe={"pg-1": "http://127.0.0.1:8008/patroni",
                                      "pg-2": "http://127.0.0.1:8009/patroni"})
    p.state(**replica_state(cluster=cluster))
    status, headers, out = p.request("GET", "/failsafe")
    assert status == 200 and headers["content-type"] == "application/json"
    assert out == (b'{"pg-1": "http://127.0.0.1:8008/patroni", '
                   b'"pg-2": "http://127.0.0.1:8009/patroni"}')


def test_queue_bound(start):
    p = start("--queue-max", "2", "--reply-timeout-ms", "30000")
    p.state(**leader_state())
    assert p.cmd("mode ignore") == "ok"
    body = json.dumps({"leader": "pg-1", "candidate": "pg-2"})
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        waiting = [pool.submit(p.request, "POST", "/switchover", body, None, 30)
                   for _ in range(2)]
        poll(lambda: p.cmd("queued") == "2", 10, "2 requests queued")
        status, _, out = p.request("POST", "/switchover", body)
        assert (status, out) == (503, b"too many requests are waiting for the HA loop")
        assert p.cmd("mode answer") == "ok"
        for f in waiting:
            assert f.result(timeout=10)[0] == 200


def test_ipv6_and_bad_listen(start):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1")
    p = start("--listen", "[::1]:0")
    p.host = "::1"
    p.state(**leader_state())
    assert p.code("/leader") == 200
    r = subprocess.run([PROBE, "--listen", "localhost"], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert b'expected <HOST>:<PORT> for "listen", but got "localhost"' in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = subprocess.run([PROBE, "--listen", "127.0.0.1:%d" % s.getsockname()[1]],
                           capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and b"Couldn't start a service on" in r.stderr


def test_wildcard_listen(start):
    for listen in ("*:0", "0.0.0.0:0", ":0"):
        p = start("--listen", listen)
        p.state(**leader_state())
        assert p.code("/leader") == 200, listen


def test_connection_limits(start):
    # the idle timeout must outlast the check of the fourth connection, even on a
    # slow (sanitizer) build: once the three are timed out, a fourth is accepted
    p = start("--per-ip", "3", "--conn-timeout-s", "4")
    p.state(**leader_state())
    socks = [socket.create_connection((p.host, p.port), timeout=5) for _ in range(3)]
    try:
        for s in socks:  # a request started but never finished
            s.sendall(b"GET /leader HTTP/1.1\r\n")
        def refused():
            try:
                return p.raw(b"GET /leader HTTP/1.0\r\n\r\n") == b""
            except (ConnectionResetError, BrokenPipeError):
                return True
        poll(refused, 3, "a fourth connection from the same address to be refused")
        # the idle ones are closed after the connection timeout
        t0 = time.monotonic()
        for s in socks:
            s.settimeout(15)
            assert s.recv(100) == b""
        assert time.monotonic() - t0 < 8
        poll(lambda: p.code("/leader") == 200, 10, "connections to be accepted again")
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------
# Differential check against Patroni 3.0.2's own RestApiHandler

PATRONI_DIR = "/usr/lib/python3/dist-packages"


def patroni_api():
    if not os.path.exists(os.path.join(PATRONI_DIR, "patroni", "api.py")):
        pytest.skip("Debian's patroni package is not installed")
    sys.path.insert(0, PATRONI_DIR)
    try:
        import patroni
        import patroni.api
        import patroni.dcs
        import patroni.exceptions
        from patroni.version import __version__
    finally:
        sys.path.remove(PATRONI_DIR)
    if __version__ != "3.0.2":
        pytest.skip("Patroni %s, not 3.0.2" % __version__)
    return patroni


BUILTIN_TAGS = ("clonefrom", "nofailover", "noloadbalance", "nosync")


class Situation:
    """One node's situation, rendered for the probe and for Patroni."""

    def __init__(self, rng):
        self.role = rng.choice(["master", "replica", "standby_leader"])
        self.pg_state = rng.choice(["running"] * 5 + ["stopped", "starting", "crashed"])
        self.pg_running = self.pg_state in ("running", "starting")
        self.sample = rng.choice(["primary", "replica", "replica", "failed"])
        self.lock = rng.choice(["held", "none", "expired"])
        self.view = rng.random() < 0.8
        self.paused = rng.random() < 0.3
        self.standby_cluster = rng.random() < 0.2
        self.sync_mode = rng.random() < 0.5
        self.in_sync = rng.random() < 0.6
        self.has_leader = rng.random() < 0.85
        self.optime = rng.choice([0, 100000000])
        self.replayed = 100000000 - rng.choice([0, 0, 512 * 1024, 3 * 1024 * 1024])
        self.received = rng.choice([0, self.replayed])
        self.timeline = rng.choice([None, 2])
        self.tags = rng.choice([{}, {"dc": "dc1"}, {"dc": "dc1", "noloadbalance": True},
                                {"nofailover": False, "noloadbalance": False, "n": 5},
                                {"dc": "dc2", "b": True, "f": 1.5}])
        self.disable_sync = rng.random() < 0.1
        self.failsafe_active = rng.random() < 0.1
        self.pending_restart = rng.random() < 0.2
        self.watchdog_failed = rng.random() < 0.1
        self.sysid = rng.choice([None, "7712249454031023488"])
        self.walsenders = rng.choice([[], PRIMARY_PG["walsenders"]])

    def cluster_kv(self):
        kv = {"members/me": {"conn_url": "postgres://127.0.0.1:5433/postgres",
                             "api_url": "http://127.0.0.1:8009/patroni"},
              "config": {"synchronous_mode": self.sync_mode, "pause": self.paused}}
        if self.has_leader:
            kv["leader"] = "pg-1"
        if self.optime:
            kv["status"] = {"optime": self.optime}
        kv["sync"] = {"leader": "pg-1", "sync_standby": "me" if self.in_sync else "pg-3"}
        return kv

    def pg(self):
        if self.sample == "failed":
            return None
        if self.sample == "primary":
            return {"in_recovery": False, "server_version": 150018, "wal_lsn": 100000000,
                    "postmaster_start_time": "2026-11-25 23:06:46.341123+00:00",
                    "timeline": 2, "walsenders": self.walsenders}
        return {"in_recovery": True, "server_version": 150018, "replay_lsn": self.replayed,
                "receive_lsn": self.received, "timeline": self.timeline or 0,
                "replay_paused": self.received == 0,
                "postmaster_start_time": "2026-11-25 23:06:49.550397+00:00",
                "replay_timestamp": "2026-11-25 23:06:57.838652+00:00"
                if self.received else None}

    def probe_state(self):
        s = dict(name="me", scope="batman", pg_state=self.pg_state, pg_running=self.pg_running,
                 role=self.role, ttl=30, loop_wait=10, next_cycle_ms=0, paused=self.paused,
                 standby_cluster=self.standby_cluster, synchronous_mode=self.sync_mode,
                 failsafe_active=self.failsafe_active, pending_restart=self.pending_restart,
                 watchdog_failed=self.watchdog_failed, dcs_last_seen=1795648027,
                 tags=self.tags, disable_sync=self.disable_sync, pg=self.pg())
        if self.sysid:
            s["sysid"] = self.sysid
        if self.lock == "held":
            s["lock_ms"] = 60000
        elif self.lock == "expired":
            s["lock_ms"] = -1
        if self.view:
            s["cluster"] = self.cluster_kv()
        return s

    def patroni_handler(self, patroni, path, query):
        """Patroni 3.0.2's handler for one request on a stand-in Patroni."""
        dcs_mod = patroni.dcs
        sit = self
        tags = {k: v for k, v in self.tags.items() if k not in BUILTIN_TAGS or v}
        cluster = None
        if self.view:
            kv = self.cluster_kv()
            member = dcs_mod.Member.from_node(1, "me", None, json.dumps(kv["members/me"]))
            members = [member]
            leader = None
            if self.has_leader:
                lm = dcs_mod.Member.from_node(1, "pg-1", None, "{}")
                members.append(lm)
                leader = dcs_mod.Leader(1, None, lm)
            cluster = dcs_mod.Cluster(
                None, dcs_mod.ClusterConfig.from_node(1, json.dumps(kv["config"])), leader,
                self.optime, members, None,
                dcs_mod.SyncState.from_node(1, json.dumps(kv["sync"])), None, None, None)

        class Watchdog:
            is_healthy = not sit.watchdog_failed

        class Ha:
            watchdog = Watchdog()

            def is_paused(self):
                return sit.paused

            def is_leader(self):
                return sit.lock == "held"

            def is_standby_cluster(self):
                return sit.standby_cluster

            def get_effective_tags(self):
                t = dict(tags)
                if sit.disable_sync:
                    t["nosync"] = True
                return t

            def failsafe_is_active(self):
                return sit.failsafe_active

        class Postgresql:
            POSTMASTER_START_TIME = "x"
            TL_LSN = "x"
            wal_name = "wal"
            lsn_name = "lsn"
            state = sit.pg_state
            role = sit.role
            name = "me"
            scope = "batman"
            sysid = sit.sysid
            pending_restart = sit.pending_restart
            server_version = 150018

            def replica_cached_timeline(self, _):
                return sit.timeline

            def is_running(self):
                return sit.pg_running

        class Dcs:
            last_seen = 1795648027
            ttl = 30

        Dcs.cluster = cluster

        class Logger:
            queue_size = 0
            NORMAL_LOG_QUEUE_SIZE = 2
            records_lost = 0

        class Patroni:
            version = "3.0.2"
            scheduled_restart = None
            logger = Logger()
            next_run = time.time()

        Patroni.postgresql = Postgresql()
        Patroni.ha = Ha()
        Patroni.dcs = Dcs()
        Patroni.tags = tags
        Patroni.noloadbalance = bool(tags.get("noloadbalance", False))

        class Server:
            patroni = Patroni()

            @staticmethod
            def query(sql, *params):
                pg = sit.pg()
                if pg is None:
                    raise patroni.exceptions.PostgresConnectionException("connection problems")
                rec = pg["in_recovery"]
                return [[pg["postmaster_start_time"], 0 if rec else pg["timeline"],
                         pg.get("wal_lsn"), pg.get("replay_lsn"), pg.get("receive_lsn"),
                         pg.get("replay_paused", False), pg.get("replay_timestamp"),
                         pg.get("walsenders") or None]]

        h = patroni.api.RestApiHandler.__new__(patroni.api.RestApiHandler)
        h.server = Server()
        h.path = path
        h.path_query = urllib.parse.parse_qs(query)
        h.query = lambda sql, *params, **kw: Server.query(sql, *params)
        out = {}
        h._write_status_code_only = lambda code: out.update(code=code, body=None)
        h._write_json_response = lambda code, resp: out.update(
            code=code, body=json.dumps(resp, default=str))
        return h, out


DIFF_PATHS = ["/", "/primary", "/master", "/read-write", "/leader", "/standby-leader",
              "/standby_leader", "/replica", "/read-only", "/read-only-sync",
              "/read-only-synchronous", "/sync", "/synchronous", "/async", "/asynchronous",
              "/health", "/foo", "/leaderx", "/x/replica"]
DIFF_QUERIES = ["", "lag=1MB", "lag=100kB", "lag=0", "lag=bogus", "tag_dc=dc1", "tag_dc=dc2",
                "tag_n=5", "tag_b=true", "tag_f=1.5", "tag_nofailover=false",
                "tag_dc=dc1&lag=4MB", "tag_nosync=true"]


def ours_without_extras(body):
    doc = json.loads(body)
    doc.pop("pgkeel_version")
    doc["patroni"].pop("name")
    return json.dumps(doc)


def test_differential_patroni_302(start):
    patroni = patroni_api()
    rng = random.Random(20261126)
    p = start()
    mismatches = []
    checked = 0
    for n in range(120):
        sit = Situation(rng)
        p.state(**sit.probe_state())
        cases = [(path, "") for path in DIFF_PATHS] + \
                [(rng.choice(["/replica", "/read-only", "/async", "/sync", "/",
                              "/read-only-sync"]), q) for q in DIFF_QUERIES]
        for path, query in cases:
            url = path + ("?" + query if query else "")
            h, want = sit.patroni_handler(patroni, path, query)
            h.do_GET()
            status, _, body = p.request("GET", url)
            checked += 1
            if status != want["code"]:
                mismatches.append((n, "GET", url, status, want["code"], vars(sit)))
            elif ours_without_extras(body) != want["body"]:
                mismatches.append((n, "GET body", url, ours_without_extras(body), want["body"]))
            if not query:
                h, want = sit.patroni_handler(patroni, path, query)
                h.do_HEAD()
                if p.code(url, "HEAD") != want["code"]:
                    mismatches.append((n, "HEAD", url, vars(sit)))
        for name in ("patroni", "liveness", "readiness"):
            h, want = sit.patroni_handler(patroni, "/" + name, "")
            getattr(h, "do_GET_" + name)()
            status, _, body = p.request("GET", "/" + name)
            if status != want["code"]:
                mismatches.append((n, name, status, want["code"], vars(sit)))
            elif name == "patroni" and ours_without_extras(body) != want["body"]:
                mismatches.append((n, "patroni body", ours_without_extras(body), want["body"]))
    assert not mismatches, "%d of %d differ, first: %r" % (len(mismatches), checked,
                                                          mismatches[:3])
