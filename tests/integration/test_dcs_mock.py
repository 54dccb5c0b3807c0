"""The DCS conformance suite (dcs_suite.py) on the mock backend.

The mock (tests/plugins/dcs_mock.c) keeps its store in a file named by its
options; every handle naming that file shares it.  The store lives alone in
its own directory: the outage for the "unavailable" scenario renames that
directory away, so neither the ops nor a new handle's init (which creates a
missing store file) can reach it, and puts it back afterwards.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import json
import os
import shutil
import tempfile

import pytest

import dcs_suite

MOCK = os.path.join(dcs_suite.BUILD, "tests", "plugins", ".libs", "dcs_mock.so")


class MockStore:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "dcs")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "store")

    def outage(self):
        return dcs_suite.renamed(self.dir)


@pytest.fixture(scope="module")
def mock():
    tmp = tempfile.mkdtemp(prefix="pgkeel-conf-mock-")
    os.chmod(tmp, 0o755)
    try:
        store = MockStore(tmp)
        backends = dcs_suite.install_backend(MOCK, "mock", tmp)
        suite = dcs_suite.Suite(backends, "mock", json.dumps({"store": store.path}),
                                namespace="/db/", ttl=3, loop_wait=1, retry_timeout=1)
        yield suite, store
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_scenario_list():
    assert dcs_suite.listed_scenarios() == dcs_suite.SCENARIOS


@pytest.mark.parametrize("scenario", dcs_suite.SCENARIOS)
def test_conformance(mock, scenario):
    suite, store = mock
    r = dcs_suite.run_scenario(suite, scenario, outage=store.outage)
    # The mock implements everything the suite looks at: no soft findings.
    assert r.notes == [], r.notes


def test_store_back_after_outage(mock):
    """After the outage the same store answers again (the driver restored it)."""
    suite, store = mock
    with store.outage():
        assert not os.path.exists(store.path)
    assert os.path.exists(store.path)
    suite.run("race")
