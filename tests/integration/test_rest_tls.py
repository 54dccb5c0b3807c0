"""The REST API over HTTPS with mutual TLS in a 3-node pgkeel cluster
(tests/integration/ha_cluster.py): every node has restapi.certfile/keyfile
from a test CA, cafile and verify_client: required, and a ctl: client
certificate, so every connection must present a certificate of that CA --
HAProxy-like health checks, pgkeel's own calls to its peers (the switchover
candidate is probed with GET /patroni before the leader hands over) and
Debian's patronictl 3.0.2, which reads the same file.

Checks: api_url is https://; a client with the CA and a client certificate
gets the health checks' codes; one without a certificate, or with one of
another CA, gets no HTTP answer at all; plain HTTP gets none either; the
unsafe endpoints want basic auth on top; `patronictl switchover --force`
succeeds (so the leader's probe of the candidate carried its certificate).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess

import pytest

from etcd_cluster import ETCD
from ha_cluster import HaCluster, have_pgkeel
from pg_instance import have_postgres, poll, server_user

pytestmark = [
    pytest.mark.skipif(not have_postgres(), reason="PostgreSQL 15 binaries not installed"),
    pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="etcd not installed"),
    pytest.mark.skipif(not have_pgkeel(), reason="pgkeel or dcs_etcd3.so not built"),
    pytest.mark.skipif(not os.access("/usr/bin/patronictl", os.X_OK),
                       reason="Debian's patroni package not installed"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]

USER, PASSWORD = "tls-user", "tls-pw-0c4a"
AUTH = {"Authorization": "Basic " + base64.b64encode(
    ("%s:%s" % (USER, PASSWORD)).encode()).decode()}


def make_pki(d):
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=pgkeel tls test CA")
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", "san.cnf")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out",
            "rogue.crt", "-days", "2", "-subj", "/CN=rogue")
    user = server_user()
    for name in os.listdir(d):
        os.chown(os.path.join(d, name), user.pw_uid, user.pw_gid)
        os.chmod(os.path.join(d, name), 0o600 if name.endswith(".key") else 0o644)
    os.chmod(d, 0o755)


def https(node, method, path, cert="client", body=None, headers=None, pki=None):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(pki, cert + ".crt"), os.path.join(pki, cert + ".key"))
    c = http.client.HTTPSConnection("127.0.0.1", node.api_port, context=ctx, timeout=5)
    try:
        c.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                  headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return None, None
    finally:
        c.close()


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3, scope="pgkeel-tls") as c:
        pki = os.path.join(c.base, "pki")
        os.mkdir(pki)
        make_pki(pki)
        for n in c.nodes:
            cfg = n.config()
            cfg["restapi"].update({
                "certfile": os.path.join(pki, "server.crt"),
                "keyfile": os.path.join(pki, "server.key"),
                "cafile": os.path.join(pki, "ca.crt"), "verify_client": "required",
                "authentication": {"username": USER, "password": PASSWORD}})
            cfg["ctl"] = {"certfile": os.path.join(pki, "client.crt"),
                          "keyfile": os.path.join(pki, "client.key"),
                          "cacert": os.path.join(pki, "ca.crt")}
            n.config = lambda cfg=cfg: cfg
            n.write_config(cfg)
        c.pki = pki
        c.start()
        leader = poll(lambda: c.leader_name() if c.leader_name() and
                      https(c.node(c.leader_name()), "GET", "/leader", pki=pki)[0] == 200
                      else None, 90, "a leader over HTTPS")
        for n in c.nodes:
            if n.name != leader:
                poll(lambda n=n: https(n, "GET", "/replica", pki=pki)[0] == 200, 120,
                     "%s a streaming replica over HTTPS" % n.name)
        yield c


def ctl(c, *args):
    p = subprocess.run(["/usr/bin/patronictl", "-c", c.node("pg-1").conf] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": c.base})
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out
    return out


def test_mutual_tls(cluster):
    c, pki = cluster, cluster.pki
    leader = c.node(c.leader_name())
    member = json.loads(c.key("members/" + leader.name))
    assert member["api_url"] == "https://127.0.0.1:%d/patroni" % leader.api_port
    code, body = https(leader, "GET", "/patroni", pki=pki)
    assert code == 200 and json.loads(body)["role"] == "master"
    # no certificate, another CA's, or plain HTTP: no HTTP answer at all
    assert https(leader, "GET", "/leader", cert=None, pki=pki) == (None, None)
    assert https(leader, "GET", "/leader", cert="rogue", pki=pki) == (None, None)
    with socket.create_connection(("127.0.0.1", leader.api_port), timeout=5) as s:
        s.sendall(b"GET /leader HTTP/1.0\r\n\r\n")
        try:
            got = s.recv(64)
        except OSError:
            got = b""
    assert not got.startswith(b"HTTP/"), got
    # unsafe endpoints: the certificate and basic auth
    assert https(leader, "POST", "/reload", pki=pki)[0] == 401
    assert https(leader, "POST", "/reload", headers=AUTH, pki=pki) == (202, "reload scheduled")


def test_patronictl_switchover_over_tls(cluster):
    c, pki = cluster, cluster.pki
    leader = c.leader_name()
    cand = next(n.name for n in c.nodes if n.name != leader)
    out = ctl(c, "switchover", "--leader", leader, "--candidate", cand, "--force")
    assert 'Successfully switched over to "%s"' % cand in out, out
    poll(lambda: https(c.node(cand), "GET", "/leader", pki=pki)[0] == 200, 60,
         "the new leader over HTTPS")
    out = ctl(c, "list")
    assert "Leader" in out and cand in out
