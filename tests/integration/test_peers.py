"""core/peers.c on the wire, through tests/tools/peers_probe, against small
HTTP servers this test starts on free loopback ports (threads of this
process), which answer as the test wants: Patroni 3.0.2's exact responses
(tests/data/patroni-3.0.2/rest/*.http), delays, silence, a refused port,
kept-alive connections that break, HTTPS with a test CA and client
certificates (made with openssl in a temp dir).

What is checked: peers answer in parallel (the slowest sets the time, not
the sum), every request is bounded by its timeout and the call by its
deadline, POST /failsafe's verdict, body and headers compared with what
Patroni 3.0.2 sent (sent-post-failsafe.http), urllib3's retry rules, the
/liveness check, reuse of kept connections without cost when they broke,
and PatroniRequest's TLS behaviour.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import base64
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from pg_instance import free_port

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "peers_probe")
REST = os.path.join(TOP, "tests", "data", "patroni-3.0.2", "rest")

pytestmark = pytest.mark.skipif(not os.access(PROBE, os.X_OK),
                                reason="peers_probe not built (make check)")

AUTH = "patroni:rest-secret"  # the capture's restapi.authentication
SLACK_MS = 600  # scheduling and poll wake-up on a busy 2-core machine

HANG = object()
CLOSE = object()


def captured(name):
    with open(os.path.join(REST, name), "rb") as f:
        return f.read()


def patroni_answer(code, reason, ctype, body):
    """A response framed as Patroni's BaseHTTPServer frames it: HTTP/1.0, no
    Content-Length, the connection closed after it."""
    return (b"HTTP/1.0 %d %s\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\n"
            b"Date: Thu, 26 Nov 2026 01:46:38 GMT\r\nContent-Type: %s\r\n\r\n"
            % (code, reason.encode(), ctype.encode())) + body


def keepalive_answer(body, code=200):
    return (b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (code, len(body))) + body


def status_body(role="replica", wal=100, **extra):
    doc = {"state": "running", "role": role, "timeline": 1,
           "patroni": {"version": "3.0.2", "scope": "t"}}
    if role == "master":
        doc["xlog"] = {"location": wal}
    else:
        doc["xlog"] = {"received_location": wal, "replayed_location": wal,
                       "replayed_timestamp": None, "paused": False}
    doc.update(extra)
    return json.dumps(doc).encode()


def read_request(c, buf):
    """One HTTP request from socket c (buf: bytes already read); (None, b"") at EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = c.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    length = 0
    for k, v in headers:
        if k.lower() == "content-length":
            length = int(v)
    while len(rest) < length:
        chunk = c.recv(65536)
        if not chunk:
            break
        rest += chunk
    return ({"method": method, "path": path, "headers": headers, "body": rest[:length],
             "head": head}, rest[length:])


class Peer:
    """A member's REST API: reply(req, peer) gives the bytes to answer, or
    HANG (keep the connection, never answer) or CLOSE (close without an
    answer).  Requests are recorded with the number of their connection."""

    def __init__(self, reply, keepalive=False, tls=None, tls_fail_first=False):
        self.reply = reply
        self.keepalive = keepalive
        self.tls = tls
        self.tls_fail_first = tls_fail_first
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.conns = 0
        self.open_conns = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def url(self, path="/patroni"):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, path)

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                cid = self.conns
            threading.Thread(target=self.serve_conn, args=(c, cid), daemon=True).start()

    def serve_conn(self, c, cid):
        try:
            if self.tls is not None:
                if self.tls_fail_first and cid == 1:
                    c.recv(65536)  # the ClientHello, then an orderly close mid-handshake
                    return
                c = self.tls.wrap_socket(c, server_side=True)
            with self.lock:
                self.open_conns[cid] = c
            buf = b""
            while not self.stopping.is_set():
                req, buf = read_request(c, buf)
                if req is None:
                    return
                req["conn"] = cid
                with self.lock:
                    self.requests.append(req)
                action = self.reply(req, self)
                if action is HANG:
                    self.stopping.wait(60)
                    return
                if action is CLOSE:
                    return
                c.sendall(action)
                if not self.keepalive:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            with self.lock:
                self.open_conns.pop(cid, None)
            c.close()

    def close_idle(self):
        """Close every kept connection from the server side (an idle timeout)."""
        with self.lock:
            conns = list(self.open_conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self, method=None):
        with self.lock:
            return len([r for r in self.requests if method is None or r["method"] == method])

    def close(self):
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.close_idle()
        self.thread.join(timeout=5)


class Probe:
    """One peers_probe process = one context (and connection cache) for its life."""

    def __init__(self, *args):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PROBE] + [str(a) for a in args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        self.buf = b""

    def cmd(self, line, timeout=30.0):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("peers_probe gave no answer to %r within %.0f s"
                                     % (line, timeout))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("peers_probe exited (%s) on %r: %s"
                                         % (self.proc.poll(), line, self.errors()))
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw)

    def status(self, ms, **targets):
        out = self.cmd("status %d %s" % (ms, " ".join("%s=%s" % kv for kv in targets.items())))
        out["by_name"] = {p["name"]: p for p in out["peers"]}
        return out

    def failsafe(self, ms, msg, **targets):
        assert self.cmd("msg " + json.dumps(msg))["error"] == ""
        out = self.cmd("failsafe %d %s" % (ms, " ".join("%s=%s" % kv for kv in targets.items())))
        out["by_name"] = {p["name"]: p for p in out["peers"]}
        return out

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        assert self.proc.returncode == 0, "peers_probe exited %d: %s" % (
            self.proc.returncode, self.errors())


@pytest.fixture
def make():
    """make.peer(...) / make.probe(...): started here, stopped after the test."""
    peers, probes = [], []

    class Maker:
        @staticmethod
        def peer(*a, **kw):
            p = Peer(*a, **kw)
            peers.append(p)
            return p

        @staticmethod
        def probe(*a):
            p = Probe(*a)
            probes.append(p)
            return p
    try:
        yield Maker
    finally:
        for p in probes:
            p.close()
        for p in peers:
            p.close()


def headers_of(req):
    return {k.lower(): v for k, v in req["headers"]}


def patroni_sent(name):
    """Request line, header names (lower case) and values, body of a request Patroni sent."""
    head, _, body = captured(name).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


def basic(auth):
    return "Basic " + base64.b64encode(auth.encode()).decode()


# ---------------------------------------------------------------- GET <api_url>

def test_status_in_parallel(make):
    """Three peers; two take 1.5 s and 1.2 s: the call takes about 1.5 s, not the sum."""
    def slow(delay, body):
        def reply(req, peer):
            time.sleep(delay)  # the server's own slowness, not a wait of the test
            return patroni_answer(200, "OK", "application/json", body)
        return reply
    a = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json",
                                              status_body(wal=100)))
    b = make.peer(slow(1.5, status_body(wal=300)))
    c = make.peer(slow(1.2, status_body(wal=200, tags={"nofailover": True})))
    probe = make.probe("--auth", AUTH)
    t0 = time.monotonic()
    out = probe.status(5000, a=a.url(), b=b.url(), c=c.url())
    wall_ms = (time.monotonic() - t0) * 1000
    st = out["by_name"]
    assert [st[n]["reachable"] for n in "abc"] == [True, True, True], out
    assert (st["a"]["wal_position"], st["b"]["wal_position"], st["c"]["wal_position"]) == \
        (100, 300, 200)
    assert st["c"]["limitation"] == "not allowed to promote"
    assert st["a"]["limitation"] is None and st["a"]["http_code"] == 200
    assert 1400 <= out["elapsed_ms"] < 2200, out["elapsed_ms"]
    assert wall_ms < 2200 + SLACK_MS
    assert st["a"]["elapsed_ms"] < 1000 and st["b"]["elapsed_ms"] >= 1400
    assert "Got response from b %s: " % b.url() in probe.errors()


def test_status_request_as_patroni_sends_it(make):
    """GET <api_url> with the headers of sent-get-patroni.http (User-Agent aside)."""
    a = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json", status_body()))
    probe = make.probe("--auth", AUTH)
    url = a.url("/patroni")
    assert probe.status(3000, a=url)["by_name"]["a"]["reachable"]
    req = a.requests[0]
    line, theirs, _ = patroni_sent("sent-get-patroni.http")
    assert line.split(" ")[0] == req["method"] == "GET"
    assert req["path"] == "/patroni"
    ours = headers_of(req)
    assert set(ours) == set(theirs), (ours, theirs)
    assert ours["authorization"] == theirs["authorization"] == basic(AUTH)
    assert ours["accept-encoding"] == "identity"
    assert ours["host"] == "127.0.0.1:%d" % a.port
    # without credentials configured, no Authorization
    probe2 = make.probe()
    assert probe2.status(3000, a=url)["by_name"]["a"]["reachable"]
    assert "authorization" not in headers_of(a.requests[1])


def test_status_patroni_responses_replayed(make):
    """Patroni 3.0.2's own responses, byte for byte (HTTP/1.0, ended by close)."""
    answers = {n: captured("get-patroni-%s.http" % n)
               for n in ("primary", "replica", "replica-nofailover", "stopped")}
    peers = {n: make.peer(lambda r, p, raw=raw: raw) for n, raw in answers.items()}
    probe = make.probe()
    out = probe.status(5000, **{n.replace("-", "_"): p.url() for n, p in peers.items()})
    st = out["by_name"]
    assert st["primary"]["reachable"] and not st["primary"]["in_recovery"]
    assert st["primary"]["timeline"] == 1 and st["primary"]["limitation"] is None
    assert st["replica"]["in_recovery"] and st["replica"]["wal_position"] == 67108864
    assert st["replica_nofailover"]["limitation"] == "not allowed to promote"
    assert not st["stopped"]["reachable"]
    assert st["stopped"]["limitation"] == "not reachable"
    assert st["stopped"]["http_code"] == 200
    assert st["primary"]["json"]["database_system_identifier"] == "7712290628676990694"


def test_status_code_is_not_judged(make):
    """Patroni parses the body whatever the status; a 503 page is just not JSON."""
    a = make.peer(lambda r, p: patroni_answer(503, "Service Unavailable", "application/json",
                                              status_body(role="master", wal=5)))
    b = make.peer(lambda r, p: patroni_answer(502, "Bad Gateway", "text/html",
                                              b"<html>502</html>"))
    out = make.probe().status(3000, a=a.url(), b=b.url())["by_name"]
    assert out["a"]["reachable"] and out["a"]["http_code"] == 503
    assert not out["a"]["in_recovery"]
    assert not out["b"]["reachable"] and out["b"]["http_code"] == 502
    assert "not JSON" in out["b"]["error"]


def test_status_silent_peer_times_out_at_2s(make):
    """A peer that accepts and never answers costs 2 s; the others are unaffected."""
    ok = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json", status_body()))
    silent = make.peer(lambda r, p: HANG)
    probe = make.probe()
    out = probe.status(10000, ok=ok.url(), silent=silent.url())
    st = out["by_name"]
    assert st["ok"]["reachable"] and st["ok"]["elapsed_ms"] < 1000
    assert not st["silent"]["reachable"]
    assert st["silent"]["http_code"] == 0
    assert 1900 <= st["silent"]["elapsed_ms"] < 2000 + SLACK_MS, st["silent"]
    assert out["elapsed_ms"] < 2000 + SLACK_MS
    assert silent.count() == 1  # no retry
    assert "Request failed to silent: GET %s (" % silent.url() in probe.errors()


def test_status_refused_at_once(make):
    ok = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json", status_body()))
    port = free_port()
    out = make.probe().status(5000, ok=ok.url(), gone="http://127.0.0.1:%d/patroni" % port)
    st = out["by_name"]
    assert st["ok"]["reachable"]
    assert not st["gone"]["reachable"] and st["gone"]["limitation"] == "not reachable"
    assert out["elapsed_ms"] < 1000, out


def test_status_overall_deadline(make):
    """The call returns by its deadline even when that is shorter than 2 s."""
    silent = make.peer(lambda r, p: HANG)
    silent2 = make.peer(lambda r, p: HANG)
    probe = make.probe()
    t0 = time.monotonic()
    out = probe.status(700, a=silent.url(), b=silent2.url())
    assert (time.monotonic() - t0) * 1000 < 700 + SLACK_MS
    assert 650 <= out["elapsed_ms"] < 700 + SLACK_MS, out
    assert not out["by_name"]["a"]["reachable"] and not out["by_name"]["b"]["reachable"]


def test_status_kept_connection_reused_and_broken(make):
    """A pgkeel peer keeps connections: the next cycle reuses it; when the peer
    closed it meanwhile (idle timeout) or drops it on the next request, the
    probe still gets its answer at once on a fresh connection."""
    mode = {"drop_next_on": None}

    def reply(req, peer):
        if mode["drop_next_on"] == req["conn"]:
            mode["drop_next_on"] = None
            return CLOSE  # the race: closed as the request arrived, no answer
        return keepalive_answer(status_body(wal=42))
    peer = make.peer(reply, keepalive=True)
    probe = make.probe()
    first = probe.status(3000, p=peer.url())["by_name"]["p"]
    assert first["reachable"] and first["wal_position"] == 42
    second = probe.status(3000, p=peer.url())["by_name"]["p"]
    assert second["reachable"]
    assert [r["conn"] for r in peer.requests] == [1, 1], "the connection was not reused"

    # the peer drops the kept connection when the next request arrives
    mode["drop_next_on"] = 1
    third = probe.status(3000, p=peer.url())
    assert third["by_name"]["p"]["reachable"], third
    assert third["elapsed_ms"] < 1000
    assert [r["conn"] for r in peer.requests] == [1, 1, 1, 2]

    # the peer closed it while idle
    peer.close_idle()
    fourth = probe.status(3000, p=peer.url())
    assert fourth["by_name"]["p"]["reachable"], fourth
    assert fourth["elapsed_ms"] < 1000
    assert peer.requests[-1]["conn"] == 3


# ---------------------------------------------------------------- POST /failsafe

MSG = {"name": "pg-1", "conn_url": "postgres://127.0.0.1:49223/postgres",
       "api_url": "http://127.0.0.1:44537/patroni", "slots": None}


def accepted(req, peer):
    return captured("post-failsafe-replica.http")


def test_failsafe_all_accepted_as_patroni_posts_it(make):
    peers = [make.peer(accepted) for _ in range(3)]
    probe = make.probe("--auth", AUTH)
    # the api_url's path and query are replaced by /failsafe, as urlunparse does
    targets = {"pg%d" % i: p.url("/patroni?x=1") for i, p in enumerate(peers)}
    out = probe.failsafe(5000, MSG, **targets)
    assert out["accepted"] is True, out
    assert all(p["accepted"] and p["attempts"] == 1 and p["http_code"] == 200
               for p in out["peers"])
    line, theirs, body = patroni_sent("sent-post-failsafe.http")
    assert out["body"].encode() == body
    for p in peers:
        assert p.count() == 1
        req = p.requests[0]
        assert "%s %s" % (req["method"], req["path"]) == " ".join(line.split(" ")[:2]) == \
            "POST /failsafe"
        ours = headers_of(req)
        assert req["body"] == body
        assert set(ours) == set(theirs), (ours, theirs)  # no Content-Type, no Expect
        assert ours["authorization"] == theirs["authorization"]
        assert ours["content-length"] == str(len(body))


def test_failsafe_other_answers_refuse(make):
    """Only 200 with body exactly Accepted counts; one refusal makes it false."""
    good = make.peer(accepted)
    cases = {
        "leader": captured("post-failsafe-primary.http"),     # 500 Running as a leader
        "noauth": captured("post-failsafe-noauth.http"),      # 401
        "lower": patroni_answer(200, "OK", "text/html", b"accepted"),
        "newline": patroni_answer(200, "OK", "text/html", b"Accepted\n"),
        "created": patroni_answer(201, "Created", "text/html", b"Accepted"),
    }
    probe = make.probe("--auth", AUTH)
    for name, raw in cases.items():
        bad = make.peer(lambda r, p, raw=raw: raw)
        out = probe.failsafe(5000, MSG, good=good.url(), bad=bad.url())
        assert out["accepted"] is False, (name, out)
        assert out["by_name"]["good"]["accepted"]
        assert not out["by_name"]["bad"]["accepted"]
        # an HTTP answer is final: urllib3 does not retry a POST on its status
        assert out["by_name"]["bad"]["attempts"] == 1 and bad.count() == 1, name
    assert out["by_name"]["bad"]["http_code"] == 201


def test_failsafe_500_then_accepted_is_not_retried(make):
    """Patroni (urllib3 Retry(1), POST): a 500 is an answer, not a failure to retry."""
    answers = [captured("post-failsafe-primary.http"), captured("post-failsafe-replica.http")]
    peer = make.peer(lambda r, p: answers[min(p.count("POST") - 1, 1)])
    out = make.probe("--auth", AUTH).failsafe(5000, MSG, p=peer.url())
    assert out["accepted"] is False
    assert out["by_name"]["p"]["http_code"] == 500
    assert out["by_name"]["p"]["body"] == "Running as a leader"
    assert peer.count() == 1


def test_failsafe_refused_is_retried_once(make):
    good = make.peer(accepted)
    port = free_port()
    probe = make.probe("--auth", AUTH)
    out = probe.failsafe(5000, MSG, good=good.url(), gone="http://127.0.0.1:%d/patroni" % port)
    assert out["accepted"] is False
    assert out["by_name"]["gone"]["attempts"] == 2
    assert out["by_name"]["gone"]["http_code"] == 0
    assert out["elapsed_ms"] < 1000
    assert "Retrying POST http://127.0.0.1:%d/failsafe" % port in probe.errors()
    assert "Request failed to gone: POST http://127.0.0.1:%d/patroni" % port in probe.errors()


def test_failsafe_silent_peer_not_retried(make):
    """A read timeout after the request went out: urllib3 does not retry a POST."""
    good = make.peer(accepted)
    silent = make.peer(lambda r, p: HANG)
    out = make.probe().failsafe(10000, MSG, good=good.url(), silent=silent.url())
    assert out["accepted"] is False
    s = out["by_name"]["silent"]
    assert s["attempts"] == 1 and silent.count() == 1
    assert 1900 <= s["elapsed_ms"] < 2000 + SLACK_MS
    assert out["by_name"]["good"]["accepted"] and out["by_name"]["good"]["elapsed_ms"] < 1000


def test_failsafe_overall_deadline(make):
    silent = make.peer(lambda r, p: HANG)
    out = make.probe().failsafe(800, MSG, silent=silent.url())
    assert out["accepted"] is False
    assert 750 <= out["elapsed_ms"] < 800 + SLACK_MS


def test_failsafe_large_body_no_expect_wait(make):
    """A body over 1 MiB: curl would send Expect: 100-continue and wait a second
    for Patroni's HTTP/1.0 server, which never answers it."""
    peer = make.peer(accepted)
    msg = dict(MSG, slots={"slot_%05d" % i: 67108864 + i for i in range(50000)})
    out = make.probe("--auth", AUTH).failsafe(5000, msg, p=peer.url())
    assert out["accepted"] is True
    assert len(peer.requests[0]["body"]) > 1024 * 1024
    assert json.loads(peer.requests[0]["body"])["slots"]["slot_49999"] == 67108864 + 49999
    assert "expect" not in headers_of(peer.requests[0])
    assert out["elapsed_ms"] < 1000, out


def test_failsafe_no_targets(make):
    out = make.probe().failsafe(1000, MSG)
    assert out["accepted"] is True and out["peers"] == []


# ---------------------------------------------------------------- GET /liveness

def test_liveness(make):
    up = make.peer(lambda r, p: captured("get-liveness-primary.http"))
    sick = make.peer(lambda r, p: b"HTTP/1.0 503 Service Unavailable\r\n\r\n")
    silent = make.peer(lambda r, p: HANG)
    probe = make.probe()
    out = probe.cmd("alive 5000 " + up.url("/patroni?q=1"))
    assert out["alive"] is True and out["http_code"] == 200
    assert up.requests[0]["method"] == "GET" and up.requests[0]["path"] == "/liveness"
    out = probe.cmd("alive 5000 " + sick.url())
    assert out["alive"] is True and out["http_code"] == 503
    out = probe.cmd("alive 5000 http://127.0.0.1:%d/patroni" % free_port())
    assert out["alive"] is False and out["elapsed_ms"] < 1000
    out = probe.cmd("alive 1000 " + silent.url())
    assert out["alive"] is False
    assert 950 <= out["elapsed_ms"] < 1000 + SLACK_MS


# ---------------------------------------------------------------- HTTPS

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


@pytest.fixture(scope="module")
def pki():
    """A test CA; server certificates for peer.invalid and for IP 127.0.0.1; a client
    certificate (also with an encrypted key); and a second, unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tempfile.mkdtemp(prefix="pgkeel-peers-pki-")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    try:
        for ca in ("ca", "otherca"):
            openssl("req", "-x509", *key, "-keyout", ca + ".key", "-out", ca + ".crt",
                    "-subj", "/CN=pgkeel test " + ca, "-days", "2", cwd=d)
        for name, cn, san in (("server", "peer.invalid", "DNS:peer.invalid"),
                              ("server-ip", "127.0.0.1", "IP:127.0.0.1"),
                              ("client", "pg-1", None)):
            openssl("req", *key, "-keyout", name + ".key", "-out", name + ".csr",
                    "-subj", "/CN=" + cn, cwd=d)
            ext = []
            if san:
                with open(os.path.join(d, name + ".ext"), "w") as f:
                    f.write("subjectAltName=%s\n" % san)
                ext = ["-extfile", name + ".ext"]
            openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", name + ".crt", "-days", "2", *ext, cwd=d)
        openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:kp-secret",
                "-out", "client-enc.key", cwd=d)
        yield {n: os.path.join(d, n) for n in os.listdir(d)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def server_tls(pki, cert="server", require_client=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki[cert + ".crt"], pki[cert + ".key"])
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki["ca.crt"])
    return ctx


def test_https_client_certificate(make, pki):
    """restapi verify_client: required.  As the daemon with a certificate: the chain is
    verified (test CA), the host name not (the certificate names peer.invalid)."""
    peer = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json",
                                                 status_body(wal=77)),
                     tls=server_tls(pki))
    client = ["--certfile", pki["client.crt"], "--keyfile", pki["client.key"],
              "--cafile", pki["ca.crt"], "--verify-peer"]
    st = make.probe(*client).status(5000, p=peer.url())["by_name"]["p"]
    assert st["reachable"] and st["wal_position"] == 77, st
    # encrypted key with its password
    st = make.probe("--certfile", pki["client.crt"], "--keyfile", pki["client-enc.key"],
                    "--keyfile-password", "kp-secret", "--cafile", pki["ca.crt"],
                    "--verify-peer").status(5000, p=peer.url())["by_name"]["p"]
    assert st["reachable"], st
    # no client certificate: the handshake fails
    st = make.probe().status(5000, p=peer.url())["by_name"]["p"]
    assert not st["reachable"] and st["http_code"] == 0
    # a server certificate from another CA is refused when verifying
    st = make.probe("--certfile", pki["client.crt"], "--keyfile", pki["client.key"],
                    "--cafile", pki["otherca.crt"], "--verify-peer") \
        .status(5000, p=peer.url())["by_name"]["p"]
    assert not st["reachable"]
    # checking the host name too (patronictl without insecure) refuses peer.invalid
    st = make.probe(*client, "--verify-host").status(5000, p=peer.url())["by_name"]["p"]
    assert not st["reachable"]


def test_https_without_verification(make, pki):
    """The daemon without a client certificate does not verify servers at all."""
    peer = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json",
                                                 status_body()),
                     tls=server_tls(pki, require_client=False))
    assert make.probe().status(5000, p=peer.url())["by_name"]["p"]["reachable"]
    ip_peer = make.peer(lambda r, p: patroni_answer(200, "OK", "application/json",
                                                    status_body()),
                        tls=server_tls(pki, cert="server-ip", require_client=False))
    st = make.probe("--cafile", pki["ca.crt"], "--verify-peer", "--verify-host") \
        .status(5000, p=ip_peer.url())["by_name"]["p"]
    assert st["reachable"], st


def test_https_failsafe_retried_after_failed_handshake(make, pki):
    """The peer closes the first connection mid-handshake: urllib3 retries a POST after
    an SSL error, so the second attempt gets Accepted."""
    peer = make.peer(accepted, tls=server_tls(pki), tls_fail_first=True)
    probe = make.probe("--auth", AUTH, "--certfile", pki["client.crt"], "--keyfile",
                       pki["client.key"], "--cafile", pki["ca.crt"], "--verify-peer")
    out = probe.failsafe(5000, MSG, p=peer.url())
    assert out["accepted"] is True, (out, probe.errors())
    assert out["by_name"]["p"]["attempts"] == 2
    assert peer.conns == 2 and peer.count() == 1
    assert headers_of(peer.requests[0])["authorization"] == basic(AUTH)


def test_settings_from_patroni_yml(make, pki, tmp_path):
    """The daemon's settings from a patroni.yml: restapi's certificate is the client
    certificate, restapi.cafile the CA, restapi.authentication the credentials."""
    cfg = tmp_path / "patroni.yml"
    cfg.write_text("""\
scope: s
name: pg-1
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
  certfile: {crt}
  keyfile: {key}
  cafile: {ca}
  authentication:
    username: patroni
    password: rest-secret
etcd3:
  hosts: 127.0.0.1:2379
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: {tmp}/data
  authentication:
    superuser: {{username: postgres, password: x}}
    replication: {{username: r, password: y}}
""".format(crt=pki["client.crt"], key=pki["client.key"], ca=pki["ca.crt"], tmp=tmp_path))
    probe = make.probe("--config", cfg, "--insecure", "1")
    s = probe.cmd("settings")
    assert s["auth"] == AUTH and s["certfile"] == pki["client.crt"]
    assert s["verify_peer"] is True and s["verify_host"] is False
    peer = make.peer(accepted, tls=server_tls(pki))
    out = probe.failsafe(5000, MSG, p=peer.url())
    assert out["accepted"] is True, (out, probe.errors())
    assert headers_of(peer.requests[0])["authorization"] == basic(AUTH)
