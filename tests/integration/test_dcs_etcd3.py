"""The DCS conformance suite (dcs_suite.py) on the etcd3 backend, against a
real etcd 3.4 from Debian's etcd-server on loopback.

The "unavailable" scenario runs twice: with etcd frozen (SIGSTOP: connections
are accepted by the kernel but nothing answers) and with etcd killed
(connection refused).  Run with Debian's interpreter:
/usr/bin/python3 -m pytest tests/integration (PGKEEL_BUILDDIR names the build).
"""
import contextlib
import json
import os
import shutil
import tempfile

import pytest

import dcs_suite
from etcd_cluster import EtcdCluster

ETCD3 = os.path.join(dcs_suite.BUILD, "backends", "etcd3", ".libs", "dcs_etcd3.so")

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/etcd"),
                                reason="etcd-server is not installed")


@pytest.fixture(scope="module")
def etcd():
    cluster = EtcdCluster(size=1).start()
    tmp = tempfile.mkdtemp(prefix="pgkeel-conf-etcd3-")
    os.chmod(tmp, 0o755)
    try:
        backends = dcs_suite.install_backend(ETCD3, "etcd3", tmp)
        suite = dcs_suite.Suite(backends, "etcd3", json.dumps({"hosts": cluster.hosts}),
                                namespace="/db/", ttl=3, loop_wait=1, retry_timeout=1)
        yield suite, cluster
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def frozen(cluster):
    @contextlib.contextmanager
    def outage():
        m = cluster.members[0]
        cluster.freeze(m)
        try:
            yield
        finally:
            cluster.thaw(m)
    return outage


def killed(cluster):
    @contextlib.contextmanager
    def outage():
        m = cluster.members[0]
        cluster.kill(m)
        try:
            yield
        finally:
            cluster.restart(m)
    return outage


@pytest.mark.parametrize("scenario", [s for s in dcs_suite.SCENARIOS
                                      if s not in dcs_suite.OUTAGE_SCENARIOS])
def test_conformance(etcd, scenario):
    suite, cluster = etcd
    dcs_suite.run_scenario(suite, scenario)


def test_unavailable_when_frozen(etcd):
    suite, cluster = etcd
    dcs_suite.run_scenario(suite, "unavailable", outage=frozen(cluster))


def test_unavailable_when_killed(etcd):
    suite, cluster = etcd
    dcs_suite.run_scenario(suite, "unavailable", outage=killed(cluster))
    # and it serves again once etcd is back
    suite.run("race")
