"""The rest of the REST API (issue 6) over real HTTP, through
tests/tools/rest_probe (the server on a free loopback port, the state and
the DCS content set from here, and a stand-in for the HA loop: requests the
loop answers from a fresh DCS read are answered by core/rest_docs.c on the
probe's `dcs` cluster, with the writes recorded instead of sent).

Covers: GET /config, /history (cached view, or read by the loop), /cluster,
/metrics; PATCH /config (merge, CAS, 409, 503), PUT /config (no write when
equal, 502), DELETE /switchover (200, 404, 409); POST /restart checks,
scheduling (202, 409, DELETE 200/404, member-key form), an immediate restart
queued with its filters, POST /reinitialize force, POST /reload, /sigterm,
/citus; the allowlist (403 before 401) and allowlist_include_members; HTTPS
with a test CA, https_extra_headers, an encrypted key, verify_client optional
(403 on unsafe endpoints) and required (no connection without a certificate).

And differentially against Debian's Patroni 3.0.2 code, run in-process on the
same inputs: GET /metrics for a seeded sample of node situations (those of
test_rest.py), cluster_as_json for random clusters, PATCH /config's
patch_config and PUT /config's deep_compare for random configurations and
patches, and do_POST_restart's answers for valid and invalid bodies.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import datetime
import io
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from test_rest import (CLUSTER, Situation, leader_state, patroni_api,  # noqa: F401
                       replica_state, start)

AUTH = {"Authorization": "Basic dTpw"}  # u:p


def jpost(p, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    hdrs = dict(headers or {})
    status, h, raw = p.request(method, path, body=data, headers=hdrs)
    return status, h, raw.decode(errors="replace")


def writes(p):
    return json.loads(p.cmd("writes"))


# ------------------------------------------------------------ configuration


def test_config_history_cluster(start):
    p = start()
    p.state(**leader_state())
    status, h, body = jpost(p, "GET", "/config")
    assert status == 200 and h["content-type"] == "application/json"
    assert body == '{"ttl": 30, "loop_wait": 10, "synchronous_mode": true}'
    assert jpost(p, "GET", "/history")[2] == "[]"
    kv = dict(CLUSTER, history=[[1, 25165984, "no recovery target specified",
                                 "2026-11-25T21:06:41.863428+00:00", "pg-1"]])
    p.state(**leader_state(cluster=kv))
    assert json.loads(jpost(p, "GET", "/history")[2]) == kv["history"]
    # no config key: 502 page
    kv = {k: v for k, v in CLUSTER.items() if k != "config"}
    p.state(**leader_state(cluster=kv))
    status, h, body = jpost(p, "GET", "/config")
    assert status == 502 and "Bad Gateway" in body
    # no cached view: the loop reads the DCS (the probe's `dcs` cluster)
    p.state(**leader_state(cluster=None))
    assert p.cmd("dcs " + json.dumps(CLUSTER)) == "ok"
    assert jpost(p, "GET", "/config")[:1] == (200,)
    assert jpost(p, "GET", "/history")[2] == "[]"
    # GET /cluster is always a fresh read
    status, _, body = jpost(p, "GET", "/cluster")
    doc = json.loads(body)
    assert status == 200 and [m["name"] for m in doc["members"]] == ["pg-1", "pg-2"]
    assert doc["members"][0]["role"] == "leader" and "lag" not in doc["members"][0]
    assert doc["members"][1] == {
        "name": "pg-2", "role": "sync_standby", "state": "running",
        "api_url": "http://127.0.0.1:8009/patroni", "host": "127.0.0.1", "port": 5433,
        "lag": "unknown"}
    assert p.cmd("dcs none") == "ok"  # the DCS does not answer
    assert jpost(p, "GET", "/cluster")[0] == 503
    assert jpost(p, "GET", "/config")[0] == 503


def test_patch_put_config(start):
    p = start("--auth", "u:p")
    p.state(**leader_state())
    assert p.cmd("dcs " + json.dumps(CLUSTER)) == "ok"
    patch = {"loop_wait": "10", "ttl": None, "postgresql": {"parameters": {"work_mem": "8MB"}},
             "pause": True}
    # unsafe: authentication first
    assert jpost(p, "PATCH", "/config", patch)[0] == 401
    status, h, body = jpost(p, "PATCH", "/config", patch, AUTH)
    assert status == 200 and h["content-type"] == "application/json"
    assert body == ('{"loop_wait": 10, "synchronous_mode": true, '
                    '"postgresql": {"parameters": {"work_mem": "8MB"}}, "pause": true}')
    assert writes(p) == [{"key": "config", "version": "1", "ok": True,
                          "value": '{"loop_wait":10,"synchronous_mode":true,"postgresql":'
                                   '{"parameters":{"work_mem":"8MB"}},"pause":true}'}]
    # nothing changes: no write, the same answer
    status, _, body = jpost(p, "PATCH", "/config", {"loop_wait": "10"}, AUTH)
    assert status == 200 and writes(p) == []
    # lost CAS: 409 page
    assert p.cmd("cas fail") == "ok"
    status, h, body = jpost(p, "PATCH", "/config", {"ttl": 20}, AUTH)
    assert status == 409 and h["connection"] == "close" and "Conflict" in body
    assert [w["ok"] for w in writes(p)] == [False]
    # PUT: no CAS; equal (str-wise) -> no write; DCS down -> 502
    new = {"ttl": "30", "loop_wait": 10, "synchronous_mode": True}
    status, _, body = jpost(p, "PUT", "/config", new, AUTH)
    assert status == 200 and json.loads(body) == new and writes(p) == []
    new["ttl"] = 20
    status, _, body = jpost(p, "PUT", "/config", new, AUTH)
    assert status == 200 and writes(p) == [
        {"key": "config", "version": None, "ok": True,
         "value": '{"ttl":20,"loop_wait":10,"synchronous_mode":true}'}]
    assert p.cmd("cas down") == "ok"
    assert jpost(p, "PUT", "/config", {"ttl": 5}, AUTH)[0] == 502
    # no config key: PATCH 503 page
    assert p.cmd("dcs " + json.dumps({"leader": "pg-1"})) == "ok"
    assert jpost(p, "PATCH", "/config", {"ttl": 5}, AUTH)[0] == 503
    # bodies: required, a non-empty object
    assert p.raw(b"PATCH /config HTTP/1.0\r\nAuthorization: Basic dTpw\r\n\r\n").startswith(
        b"HTTP/1.1 411 ")  # no Content-Length at all
    assert p.request("PATCH", "/config", headers=AUTH)[0] == 400  # Content-Length: 0
    assert p.request("PATCH", "/config", body=b"{", headers=AUTH)[0] == 400
    assert p.request("PATCH", "/config", body=b"{}", headers=AUTH)[0] == 400
    assert p.request("PUT", "/config", body=b"[1]", headers=AUTH)[0] == 400
    # wrong method: the 501 page patronictl looks for
    status, _, body = jpost(p, "POST", "/config", {"a": 1}, AUTH)
    assert status == 501 and "Server does not support this operation" in body


def test_delete_switchover(start):
    p = start()
    p.state(**leader_state())
    kv = dict(CLUSTER, failover={"leader": "pg-1", "member": "pg-2",
                                 "scheduled_at": "2031-06-01T12:00:00+00:00"})
    assert p.cmd("dcs " + json.dumps(kv)) == "ok"
    assert jpost(p, "DELETE", "/switchover") == (200, jpost(p, "DELETE", "/switchover")[1],
                                                  "scheduled switchover deleted")
    assert writes(p)[0] == {"key": "failover", "value": "{}", "version": "1", "ok": True}
    assert p.cmd("cas fail") == "ok"
    assert jpost(p, "DELETE", "/switchover")[0] == 409
    assert p.cmd("dcs " + json.dumps(CLUSTER)) == "ok"
    assert jpost(p, "DELETE", "/switchover")[::2] == (404, "no switchover is scheduled")


# ------------------------------------------------------------ restart & co


def test_restart_reinitialize_reload(start):
    p = start()
    p.state(**leader_state())
    cases = [
        ({"role": "primary", "foo": 1}, 400, "Unknown filter for the scheduled restart: foo"),
        ({"role": "leader"}, 400, "PostgreSQL role should be either primary or replica"),
        ({"postgres_version": "10"}, 400,
         "Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 10"),
        ({"postgres_version": "a.b"}, 400, "Invalid PostgreSQL version: a.b"),
        ({"timeout": "0"}, 400, "Timeout should be a positive number of seconds"),
        ({"timeout": "5 parsecs"}, 400, "Timeout should be a positive number of seconds"),
        ({"schedule": "tomorrow-ish"}, 422, "Unable to parse scheduled timestamp. It should "
                                            "be in an unambiguous format, e.g. ISO 8601"),
        ({"schedule": "2031-01-01T10:00:00"}, 400,
         "Timezone information is mandatory for the scheduled restart"),
        ({"schedule": "2020-01-01T10:00:00+00:00"}, 422, "Cannot schedule restart in the past"),
    ]
    for body, code, text in cases:
        assert jpost(p, "POST", "/restart", body)[::2] == (code, text), body
    # an immediate restart goes to the loop with its filters
    status, _, body = jpost(p, "POST", "/restart",
                            {"restart_pending": False, "postgres_version": "15.4",
                             "role": "master", "timeout": "1min"})
    doc = json.loads(body)
    assert status == 200 and doc["kind"] == "restart"
    assert (doc["role"], doc["postgres_version"], doc["restart_pending"], doc["timeout_s"]) == \
        ("master", "15.4", True, 60)
    # no body at all: an unconditional restart
    status, _, body = jpost(p, "POST", "/restart")
    assert status == 200 and json.loads(body)["restart_pending"] is False
    # scheduled: kept by the server, shown as the member key shows it
    sched = {"schedule": "2031-01-01T12:00:00+02:00", "timeout": 30, "role": "replica"}
    assert jpost(p, "POST", "/restart", sched)[::2] == (202, "Restart scheduled")
    assert jpost(p, "POST", "/restart", sched)[::2] == (409, "Another restart is already "
                                                              "scheduled")
    assert json.loads(p.cmd("sched")) == {
        "schedule": "2031-01-01T12:00:00+02:00", "timeout": 30, "role": "replica",
        "postmaster_start_time": "2026-11-25 23:06:46.341123+00:00"}
    assert jpost(p, "DELETE", "/restart")[::2] == (200, "scheduled restart deleted")
    assert jpost(p, "DELETE", "/restart")[::2] == (404, "no restarts are scheduled")
    assert p.cmd("sched") == "none"
    assert jpost(p, "POST", "/restart", sched)[0] == 202
    assert p.cmd("sched_cancel") == "ok" and p.cmd("sched") == "none"
    # paused: no scheduling
    p.state(**leader_state(paused=True))
    assert jpost(p, "POST", "/restart", sched)[::2] == (
        500, "Can't schedule restart in the paused state")
    # reinitialize: body optional, force is Patroni's parse_bool
    for body, force in ((None, False), ({"force": "yes"}, True), ({"force": 1}, True),
                        ({"force": "maybe"}, False), ({"force": True}, True)):
        status, _, text = jpost(p, "POST", "/reinitialize", body)
        assert status == 200 and json.loads(text)["kind"] == "reinitialize"
        assert json.loads(text)["force"] is force, body
    assert p.request("POST", "/reinitialize", body=b"[]")[0] == 400
    # reload: answered at once, the loop told
    assert p.cmd("reload") == "0"
    assert jpost(p, "POST", "/reload")[::2] == (202, "reload scheduled")
    assert p.cmd("reload") == "1" and p.cmd("reload") == "0"
    assert jpost(p, "POST", "/sigterm")[::2] == (202, "shutdown scheduled")
    assert p.raw(b"POST /citus HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 411 ")
    assert jpost(p, "POST", "/citus", {"type": "after_promote"})[::2] == (200, "OK")


def test_restart_waits_for_the_loop(start):
    """A restart the loop holds keeps its connection; health checks go on."""
    p = start("--reply-timeout-ms", "60000")
    p.state(**leader_state())
    assert p.cmd("mode hold") == "ok"
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.update(r=jpost(p, "POST", "/restart", {})))
    t.start()
    try:
        for _ in range(20):
            assert p.code("/leader") == 200
        assert p.cmd("held") == "1"
    finally:
        assert p.cmd("release") == "released 1"
        t.join(10)
    assert res["r"][0] == 200


# ------------------------------------------------------------ access


def test_allowlist(start):
    p = start("--auth", "u:p", "--allow", "10.0.0.0/8", "--allow", "192.0.2.7")
    p.state(**leader_state())
    status, h, body = jpost(p, "POST", "/reload")
    assert (status, body) == (403, "Access is denied")  # before the 401
    assert h["content-type"] == "text/html"
    assert p.code("/leader") == 200  # safe endpoints are never checked
    p2 = start("--auth", "u:p", "--allow", "127.0.0.0/31")
    assert jpost(p2, "POST", "/reload")[0] == 401
    assert jpost(p2, "POST", "/reload", headers=AUTH)[0] == 202
    # the members' api_url hosts, from the cached cluster view
    p3 = start("--allow-members")
    kv = dict(CLUSTER)
    kv["members/pg-2"] = dict(CLUSTER["members/pg-2"], api_url="http://10.9.9.9:8008/patroni")
    kv["members/pg-1"] = dict(CLUSTER["members/pg-1"], api_url="http://10.9.9.8:8008/patroni")
    p3.state(**leader_state(cluster=kv))
    assert jpost(p3, "POST", "/reload")[::2] == (403, "Access is denied")
    kv["members/pg-2"]["api_url"] = "http://localhost:8009/patroni"
    p3.state(**leader_state(cluster=kv))
    assert jpost(p3, "POST", "/reload")[0] == 202
    # the same answer once the resolver thread cached the view's addresses
    # (it looks every 0.2 s): requests over 0.6 s, bounded in count
    t_end = time.monotonic() + 0.6
    for _ in range(200):
        assert jpost(p3, "POST", "/reload")[0] == 202
        if time.monotonic() >= t_end:
            break
        time.sleep(0.05)
    p3.state(**leader_state(cluster=None))  # no view: nobody
    assert jpost(p3, "POST", "/reload")[0] == 403


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)


@pytest.fixture(scope="module")
def pki():
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tempfile.mkdtemp(prefix="pgkeel-pki-")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=pgkeel test CA", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, extra in (("server", ["-extfile", "san.cnf"]), ("client", []),
                        ("server2", ["-extfile", "san.cnf"])):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", *extra, cwd=d)
    # an encrypted copy of the server key, and a client certificate of another CA
    openssl("pkey", "-in", "server.key", "-out", "server-enc.key", "-aes256", "-passout",
            "pass:s3cret", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out",
            "rogue.crt", "-days", "2", "-subj", "/CN=rogue", cwd=d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def https(p, pki, method, path, cert=None, body=None, headers=None, peer=None):
    """(status, headers, body); peer: a list the server certificate's CN is added to."""
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(pki, cert + ".crt"), os.path.join(pki, cert + ".key"))
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", p.port, context=ctx, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        if peer is not None:
            subject = dict(x[0] for x in c.sock.getpeercert()["subject"])
            peer.append(subject["commonName"])
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        c.close()


def test_https(start, pki):
    f = lambda n: os.path.join(pki, n)  # noqa: E731
    p = start("--certfile", f("server.crt"), "--keyfile", f("server-enc.key"),
              "--keyfile-password", "s3cret", "--header", "X-Plain:1", "--https-header",
              "Strict-Transport-Security:max-age=60", "--auth", "u:p")
    p.state(**leader_state())
    status, h, body = https(p, pki, "GET", "/patroni")
    assert status == 200 and json.loads(body)["role"] == "master"
    assert h["x-plain"] == "1" and h["strict-transport-security"] == "max-age=60"
    assert https(p, pki, "POST", "/reload")[0] == 401
    assert https(p, pki, "POST", "/reload", headers=AUTH)[0] == 202
    with pytest.raises(OSError):  # plain HTTP on the TLS port gets no answer
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
            s.sendall(b"GET /patroni HTTP/1.0\r\n\r\n")
            if not s.recv(100).startswith(b"HTTP/1.0 200"):
                raise OSError("no HTTP answer")

    # a renewed certificate in the same files: in force after a reload
    live = tempfile.mkdtemp(prefix="pgkeel-live-")
    try:
        for src, dst in (("server.crt", "live.crt"), ("server.key", "live.key")):
            shutil.copy(f(src), os.path.join(live, dst))
        p = start("--certfile", os.path.join(live, "live.crt"), "--keyfile",
                  os.path.join(live, "live.key"))
        p.state(**leader_state())
        cns = []
        assert https(p, pki, "GET", "/leader", peer=cns)[0] == 200 and cns == ["server"]
        with open(os.path.join(live, "live.crt"), "w") as out:
            out.write("not a certificate\n")
        assert p.cmd("reconfigure") == "ok"  # a broken file: the old one stays
        assert https(p, pki, "GET", "/leader", peer=cns)[0] == 200 and cns[-1] == "server"
        for src, dst in (("server2.crt", "live.crt"), ("server2.key", "live.key")):
            shutil.copy(f(src), os.path.join(live, dst))
        assert p.cmd("reconfigure") == "ok"
        assert https(p, pki, "GET", "/leader", peer=cns)[0] == 200 and cns[-1] == "server2"
    finally:
        shutil.rmtree(live, ignore_errors=True)

    # verify_client optional: anyone may read, unsafe endpoints need a certificate
    p = start("--certfile", f("server.crt"), "--keyfile", f("server.key"), "--cafile",
              f("ca.crt"), "--verify-client", "Optional")
    p.state(**leader_state())
    assert https(p, pki, "GET", "/leader")[0] == 200
    assert https(p, pki, "POST", "/reload")[::2] == (403, "client certificate required")
    assert https(p, pki, "POST", "/reload", cert="rogue")[0] == 403
    assert https(p, pki, "POST", "/reload", cert="client")[0] == 202

    # required: no certificate, no connection at all (as Python's handshake)
    p = start("--certfile", f("server.crt"), "--keyfile", f("server.key"), "--cafile",
              f("ca.crt"), "--verify-client", "required")
    p.state(**leader_state())
    assert https(p, pki, "GET", "/leader", cert="client")[0] == 200
    assert https(p, pki, "POST", "/reload", cert="client")[0] == 202
    for cert in (None, "rogue"):
        try:
            got = https(p, pki, "GET", "/leader", cert=cert)[0]
        except (OSError, ssl.SSLError, http_client_errors()):
            got = None
        assert got is None, cert


def http_client_errors():
    import http.client
    return http.client.HTTPException


# ------------------------------------------------ differential: Patroni 3.0.2


def as_datetime(text):
    import dateutil.parser
    return dateutil.parser.parse(text) if text else None


def test_differential_metrics(start):
    patroni = patroni_api()
    rng = random.Random(4242)
    p = start()
    mismatches = []
    for n in range(80):
        sit = Situation(rng)
        p.state(**sit.probe_state())
        h, out = sit.patroni_handler(patroni, "/metrics", "")
        plain = h.query

        def query(sql, *a, **kw):
            row = list(plain(sql, *a, **kw)[0])
            row[0], row[6] = as_datetime(row[0]), as_datetime(row[6])
            return [row]
        h.query = query
        h._write_response = lambda code, body, content_type="text/html", headers=None: \
            out.update(code=code, body=body, ctype=content_type)
        h.do_GET_metrics()
        want = out["body"]  # a replica with no known timeline included: None on both
        # dcs_last_seen is the same constant on both sides
        status, hdrs, body = p.request("GET", "/metrics")
        if (status, hdrs["content-type"], body.decode()) != (200, "text/plain", want):
            mismatches.append((n, vars(sit), body.decode(), want))
    assert not mismatches, "%d differ, first: %r" % (len(mismatches), mismatches[0])


def random_cluster(rng):
    kv = {}
    names = ["pg-%d" % i for i in range(1, rng.randint(1, 4) + 1)]
    for name in names:
        port = 5432 + rng.randint(0, 3)
        m = {"conn_url": rng.choice(["postgres://127.0.0.1:%d/postgres" % port,
                                     "postgres://Host-%s/postgres" % name,
                                     "postgres://[::1]:%d/postgres" % port]),
             "api_url": "http://127.0.0.1:%d/patroni" % (8008 + port - 5432),
             "role": rng.choice(["master", "replica"]), "version": "3.0.2"}
        if rng.random() < 0.8:
            m["state"] = rng.choice(["running", "stopped", "creating replica"])
        if rng.random() < 0.7:
            m["xlog_location"] = rng.choice([0, 100000000, 99000000, 100000512])
        if rng.random() < 0.6:
            m["timeline"] = rng.choice([1, 2])
        if rng.random() < 0.2:
            m["pending_restart"] = True
        if rng.random() < 0.3:
            m["tags"] = rng.choice([{"dc": "a"}, {"nofailover": True, "x": [1, "y"]}])
        if rng.random() < 0.15:
            m["scheduled_restart"] = {"schedule": "2031-01-01T10:00:00+00:00",
                                      "postmaster_start_time": "2026-11-25 23:06:46+00:00"}
        if rng.random() < 0.1:
            m["conn_kwargs"] = {"host": "10.0.0.%d" % port, "port": str(port)}
            del m["conn_url"]
        if rng.random() < 0.1:
            del m["api_url"]
        kv["members/" + name] = m
    lead = rng.choice(names + [None, "ghost"])
    if lead:
        kv["leader"] = lead
    if rng.random() < 0.8:
        kv["status"] = {"optime": rng.choice([0, 100000000])}
    kv["sync"] = rng.choice([{"leader": names[0], "sync_standby": names[-1]},
                             {"leader": names[0], "sync_standby": None}])
    cfg = {"ttl": 30}
    if rng.random() < 0.3:
        cfg["pause"] = rng.choice([True, "on", False, "no"])
    if rng.random() < 0.2:
        cfg["standby_cluster"] = rng.choice([{"host": "10.1.1.1"}, {"port": 0}])
    if rng.random() < 0.9:
        kv["config"] = cfg
    if rng.random() < 0.4:
        kv["failover"] = {"leader": names[0]}
        if rng.random() < 0.7:
            kv["failover"]["scheduled_at"] = rng.choice(["2031-06-01T12:00:00+00:00",
                                                         "2031-06-01T12:00:00.25Z",
                                                         "2031-06-01 14:00:00+02:00"])
        if rng.random() < 0.5:
            kv["failover"]["member"] = names[-1]
    return kv


def patroni_cluster(patroni, kv):
    dcs = patroni.dcs
    members = [dcs.Member.from_node(1, k.split("/", 1)[1], None, json.dumps(v))
               for k, v in kv.items() if k.startswith("members/")]
    leader = None
    if "leader" in kv:
        m = next((m for m in members if m.name == kv["leader"]), None) or \
            dcs.Member(-1, kv["leader"], None, {})
        leader = dcs.Leader(1, None, m)
    config = dcs.ClusterConfig.from_node(1, json.dumps(kv["config"])) if "config" in kv \
        else None
    failover = dcs.Failover.from_node(1, json.dumps(kv["failover"])) if "failover" in kv \
        else None
    sync = dcs.SyncState.from_node(1, json.dumps(kv["sync"])) if "sync" in kv \
        else dcs.SyncState.empty()
    last_lsn = kv.get("status", {}).get("optime", 0)
    return dcs.Cluster(kv.get("initialize"), config, leader, last_lsn, members, failover, sync,
                       None, None, None, {})


def test_differential_cluster(start):
    patroni = patroni_api()
    import patroni.utils as putils  # noqa: F811 (the same module patroni_api loaded)
    rng = random.Random(777)
    p = start()
    p.state(**leader_state())
    mismatches = []
    for n in range(150):
        kv = random_cluster(rng)
        assert p.cmd("dcs " + json.dumps(kv)) == "ok"
        want = json.dumps(putils.cluster_as_json(patroni_cluster(patroni, kv)), default=str)
        status, _, body = jpost(p, "GET", "/cluster")
        if (status, body) != (200, want):
            mismatches.append((n, kv, body, want))
    assert not mismatches, "%d differ, first: %r" % (len(mismatches), mismatches[0])


def random_value(rng, depth=0):
    choice = rng.randint(0, 7 if depth < 2 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, 1, 10, 100])
    if choice == 3:
        return rng.choice(["10", "1", "on", "true", "True", "x"])
    if choice == 4:
        return rng.choice([1.5, 10.0])
    if choice == 5:
        return rng.choice([[1, 2], ["a"], []])
    return {rng.choice("abcde"): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_object(rng, depth=0):
    return {rng.choice(["ttl", "loop_wait", "a", "b", "postgresql"]): random_value(rng, depth)
            for _ in range(rng.randint(1, 4))}


def test_differential_patch_put(start):
    patroni_api()
    import copy
    from patroni.utils import deep_compare, patch_config
    rng = random.Random(99)
    p = start()
    p.state(**leader_state())
    mismatches = []
    for n in range(200):
        config = random_object(rng)
        patch = random_object(rng)
        kv = dict(CLUSTER, config=config)
        assert p.cmd("dcs " + json.dumps(kv)) == "ok"
        data = copy.deepcopy(config)
        changed = patch_config(data, patch)
        status, _, body = jpost(p, "PATCH", "/config", patch)
        w = writes(p)
        want_w = [json.dumps(data, separators=(",", ":"))] if changed else []
        if (status, body, [x["value"] for x in w]) != (200, json.dumps(data), want_w):
            mismatches.append(("PATCH", config, patch, body, json.dumps(data), w))
        equal = deep_compare(patch, config)
        status, _, body = jpost(p, "PUT", "/config", patch)
        w = writes(p)
        if (status, body, len(w)) != (200, json.dumps(patch), 0 if equal else 1):
            mismatches.append(("PUT", config, patch, body, equal, w))
    assert not mismatches, "%d differ, first: %r" % (len(mismatches), mismatches[0])


RESTART_BODIES = [
    {}, {"role": "master"}, {"role": "primary"}, {"role": "replica"}, {"role": "Master"},
    {"role": 1}, {"postgres_version": "15.3"}, {"postgres_version": "9.6"},
    {"postgres_version": "9.6.24"}, {"postgres_version": "15"}, {"postgres_version": "1.2.3.4"},
    {"postgres_version": "x.1"}, {"postgres_version": " 15 .3"}, {"timeout": 30},
    {"timeout": "30"}, {"timeout": "1min"}, {"timeout": "1.5"}, {"timeout": 0},
    {"timeout": -5}, {"timeout": "5h"}, {"timeout": "abc"}, {"timeout": True},
    {"restart_pending": False}, {"restart_pending": True, "role": "replica"},
    {"bogus": 1}, {"timeout": 0, "role": "x"}, {"role": "x", "timeout": 0},
    {"schedule": "2031-01-01T10:00:00+00:00"}, {"schedule": "2031-01-01T10:00:00"},
    {"schedule": "2031-01-01 10:00:00.5+01:00", "timeout": 10},
    {"schedule": "2001-01-01T10:00:00Z"}, {"schedule": "not a date at all"},
    {"schedule": "2031-01-01T10:00:00Z", "bogus": 1}, {"bogus": 1, "schedule": "x"},
]


def patroni_restart(patroni, body, paused):
    class Cluster:
        def is_paused(self):
            return paused

    class Ha:
        scheduled = False

        def restart(self, data):
            return True, "restarted successfully"

        def schedule_future_restart(self, data):
            Ha.data = data
            return True

    class Dcs:
        def get_cluster(self):
            return Cluster()

    class Patroni:
        dcs = Dcs()
        ha = Ha()

    class Server:
        patroni = Patroni()

        def check_access(self, rh):
            return True

    h = patroni.api.RestApiHandler.__new__(patroni.api.RestApiHandler)
    h.server = Server()
    raw = json.dumps(body).encode()
    h.headers = {"content-length": str(len(raw))}
    h.rfile = io.BytesIO(raw)
    out = {}
    h._write_response = lambda code, text, content_type="text/html", headers=None: \
        out.update(code=code, body=text)
    h.do_POST_restart()
    return out, getattr(Ha, "data", None)


def test_differential_restart(start):
    patroni = patroni_api()
    p = start()
    mismatches = []
    for paused in (False, True):
        p.state(**leader_state(paused=paused))
        for body in RESTART_BODIES:
            want, data = patroni_restart(patroni, dict(body), paused)
            status, _, text = jpost(p, "POST", "/restart", body)
            if status == 200 and want["code"] == 200:
                continue  # the loop's answer (not the probe's echo) is tested live
            if (status, text) != (want["code"], want["body"]):
                mismatches.append((paused, body, status, text, want))
            elif status == 202:
                got = json.loads(p.cmd("sched"))
                got.pop("postmaster_start_time")
                data = {k: (v.isoformat() if isinstance(v, datetime.datetime) else v)
                        for k, v in data.items() if k != "postmaster_start_time"}
                if got != data or list(got) != list(data):
                    mismatches.append((body, got, data))
                assert jpost(p, "DELETE", "/restart")[0] == 200
    assert not mismatches, "%d differ: %r" % (len(mismatches), mismatches)


def test_py_str_in_urls(start):
    """Query strings and paths the router must not trip on."""
    p = start()
    p.state(**leader_state())
    assert p.code("/cluster/x?y=1") == 200
    assert p.code("/metrics?" + urllib.parse.urlencode({"a": "b"})) == 200
    assert p.code("/config/") == 200
