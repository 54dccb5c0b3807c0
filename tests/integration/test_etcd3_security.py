"""The etcd3 backend against an etcd with authentication and one with TLS and
client certificates (loopback, certificates made by openssl for the test).

- auth: the conformance scenarios pass with a user; a token that expires
  (--auth-token-ttl 1) while a handle is idle is renewed by authenticating
  again; credentials in the URL work; a wrong password is an outage with a
  clear message, never a conflict.
- TLS: the scenarios pass with cacert/cert/key; without the client
  certificate the backend reports the DCS unreachable.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import dcs_suite
from etcd_cluster import EtcdCluster

ETCD3 = os.path.join(dcs_suite.BUILD, "backends", "etcd3", ".libs", "dcs_etcd3.so")
DCS_TOOL = os.path.join(dcs_suite.BUILD, "tests", "tools", "dcs_tool")

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/etcd"),
                                reason="etcd-server is not installed")


@pytest.fixture
def workdir():
    tmp = tempfile.mkdtemp(prefix="pgkeel-etcd3-sec-")
    os.chmod(tmp, 0o755)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def dump(backends, options):
    return subprocess.run(
        [DCS_TOOL, "--backend-dir", backends, "--backend", "etcd3",
         "--options", json.dumps(options), "--namespace", "/db/", "--scope", "sec",
         "--ttl", "10", "--retry-timeout", "2", "dump"],
        capture_output=True, text=True, timeout=60)


def enable_auth(cluster, password):
    cluster.rpc("/auth/role/add", {"name": "root"})
    cluster.rpc("/auth/user/add", {"name": "root", "password": password})
    cluster.rpc("/auth/user/grant", {"user": "root", "role": "root"})
    cluster.rpc("/auth/enable", {})


def test_auth(workdir):
    cluster = EtcdCluster(size=1, extra_args=["--auth-token-ttl", "1"]).start()
    try:
        enable_auth(cluster, "s3cret")
        backends = dcs_suite.install_backend(ETCD3, "etcd3", workdir)
        opts = {"hosts": cluster.hosts, "username": "root", "password": "s3cret"}
        suite = dcs_suite.Suite(backends, "etcd3", json.dumps(opts), ttl=3, loop_wait=1,
                                retry_timeout=1)
        # expiry leaves a handle idle for longer than the token lives
        for scenario in ("race", "cas", "expiry", "watch"):
            suite.run(scenario)

        url = {"url": "http://root:s3cret@%s" % cluster.hosts}
        dcs_suite.Suite(backends, "etcd3", json.dumps(url), ttl=3, loop_wait=1,
                        retry_timeout=1).run("race")

        bad = dump(backends, {"hosts": cluster.hosts, "username": "root",
                              "password": "wrong"})
        assert bad.returncode == 1
        assert "status 2" in bad.stderr  # UNAVAILABLE, not CONFLICT (1)
        assert "authentication failed" in bad.stderr, bad.stderr
        assert "s3cret" not in bad.stderr + bad.stdout and "wrong" not in bad.stdout

        anon = dump(backends, {"hosts": cluster.hosts})
        assert anon.returncode == 1 and "user name is empty" in anon.stderr, anon.stderr
    finally:
        cluster.stop()


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True,
                   timeout=60)


def make_certs(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=pgkeel test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
                "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", name + ".crt",
                cwd=d)
    return {k: os.path.join(d, v) for k, v in (
        ("ca", "ca.crt"), ("cert", "server.crt"), ("key", "server.key"),
        ("client_cert", "client.crt"), ("client_key", "client.key"))}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_with_client_certificates(workdir):
    certs = make_certs(workdir)
    cluster = EtcdCluster(size=1, tls=certs).start()
    try:
        backends = dcs_suite.install_backend(ETCD3, "etcd3", workdir)
        opts = {"hosts": cluster.hosts, "protocol": "https", "cacert": certs["ca"],
                "cert": certs["client_cert"], "key": certs["client_key"]}
        suite = dcs_suite.Suite(backends, "etcd3", json.dumps(opts), ttl=3, loop_wait=1,
                                retry_timeout=1)
        for scenario in ("race", "cas", "watch"):
            suite.run(scenario)

        nocert = dump(backends, {"hosts": cluster.hosts, "protocol": "https",
                                 "cacert": certs["ca"]})
        assert nocert.returncode == 1 and "status 2" in nocert.stderr, nocert.stderr
        noca = dump(backends, {"hosts": cluster.hosts, "protocol": "https",
                               "cert": certs["client_cert"], "key": certs["client_key"]})
        assert noca.returncode == 1 and "status 2" in noca.stderr, noca.stderr
    finally:
        cluster.stop()
