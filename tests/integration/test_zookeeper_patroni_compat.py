"""ZooKeeper backend <-> Debian's Patroni 3.0.2 (python3-kazoo) on the same
ZooKeeper 3.8, under /db/.

1. A real Patroni 3.0.2 node bootstraps a cluster; the backend's load_cluster
   (dcs_tool dump) returns its znodes byte for byte as ZooKeeper stores them,
   with their dataVersion and ephemeralOwner, and the core's cluster model
   reads the leader, the member fields, the config and the optime from them.
2. The backend writes a cluster (dcs_tool seed-patroni; its sessions are
   abandoned, not closed, so the ephemeral znodes live for ttl); Debian's
   patronictl reads it with `list`, `history` and `show-config`.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request

import pytest

import dcs_suite
from test_etcd3_patroni_compat import patroni_config as etcd3_patroni_config
from test_etcd3_patroni_compat import postgres_user
from zk_cluster import ZkCluster, free_port, have_zookeeper, poll

ZOOKEEPER = os.path.join(dcs_suite.BUILD, "backends", "zookeeper", ".libs", "dcs_zookeeper.so")
DCS_TOOL = os.path.join(dcs_suite.BUILD, "tests", "tools", "dcs_tool")
PATRONI = "/usr/bin/patroni"
PATRONICTL = "/usr/bin/patronictl"
PG_BIN = "/usr/lib/postgresql/15/bin"

def have_kazoo():
    try:
        import kazoo  # noqa: F401
        return True
    except ImportError:
        return False


pytestmark = pytest.mark.skipif(
    not (have_zookeeper() and have_kazoo() and os.path.exists(PATRONI)
         and os.path.exists(PG_BIN + "/postgres") and os.path.exists(ZOOKEEPER)),
    reason="needs zookeeper, python3-kazoo, patroni, postgresql-15 and dcs_zookeeper.so")


@pytest.fixture(scope="module")
def env():
    cluster = ZkCluster(size=1).start()
    tmp = tempfile.mkdtemp(prefix="pgkeel-compat-zk-")
    os.chmod(tmp, 0o755)
    try:
        backends = dcs_suite.install_backend(ZOOKEEPER, "zookeeper", tmp)
        yield cluster, backends, tmp
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def tool(backends, cluster, scope, *cmd):
    out = subprocess.run(
        [DCS_TOOL, "--backend-dir", backends, "--backend", "zookeeper",
         "--options", json.dumps({"hosts": cluster.hosts}), "--namespace", "/db/",
         "--scope", scope, "--ttl", "30"] + list(cmd),
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def patroni_config(path, cluster, scope, node_dir, pg_port, api_port):
    """The etcd3 test's Patroni node, its DCS section made a zookeeper: one."""
    etcd3_patroni_config(path, cluster, scope, node_dir, pg_port, api_port)
    with open(path) as f:
        text = f.read()
    assert "\netcd3:\n  hosts:" in text
    with open(path, "w") as f:
        f.write(text.replace("\netcd3:\n  hosts:", "\nzookeeper:\n  hosts:"))


def test_backend_reads_what_patroni_writes(env):
    cluster, backends, tmp = env
    user = postgres_user()
    scope = "patroni-wrote"
    node_dir = os.path.join(tmp, "pg-1")
    os.mkdir(node_dir, 0o700)
    os.chown(node_dir, user.pw_uid, user.pw_gid)
    cfg = os.path.join(tmp, "patroni.yml")
    api_port = free_port()
    patroni_config(cfg, cluster, scope, node_dir, free_port(), api_port)
    os.chmod(cfg, 0o644)
    log = open(os.path.join(tmp, "patroni.log"), "wb")

    def demote():
        os.setgid(user.pw_gid)
        os.setgroups([])
        os.setuid(user.pw_uid)

    proc = subprocess.Popen([PATRONI, cfg], stdout=log, stderr=log, preexec_fn=demote,
                            cwd=node_dir, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    try:
        def running():
            assert proc.poll() is None, open(os.path.join(tmp, "patroni.log")).read()[-3000:]
            dump = json.loads(tool(backends, cluster, scope, "dump").splitlines()[0])
            member = dump.get("members/pg-1")
            if not member or dump.get("leader", {}).get("value") != "pg-1":
                return None
            data = json.loads(member["value"])
            if data.get("state") != "running" or "xlog_location" not in data \
                    or "status" not in dump:
                return None
            return dump
        dump = poll(running, 120, "Patroni to bootstrap and publish its member")

        # byte for byte what ZooKeeper holds, with its dataVersion and owner
        base = "/db/%s/" % scope
        for key in ("leader", "members/pg-1", "config", "initialize", "status"):
            st = cluster.stat(base + key)
            assert dump[key]["value"] == cluster.get(base + key), key
            assert dump[key]["version"] == str(st.version), key
            assert (dump[key]["owner"] or "0") == str(st.ephemeralOwner), key
        # the leader and Patroni's member znode belong to Patroni's session
        assert dump["leader"]["owner"] is not None
        assert dump["leader"]["owner"] == dump["members/pg-1"]["owner"]
        assert cluster.stat(base + "config").ephemeralOwner == 0

        # the core's model of it
        summary = json.loads(tool(backends, cluster, scope, "dump").splitlines()[1])
        assert summary["leader"] == "pg-1"
        m = summary["members"]["pg-1"]
        assert m["role"] == "master" and m["state"] == "running"
        assert m["version"] == "3.0.2"
        assert m["api_url"] == "http://127.0.0.1:%d/patroni" % api_port
        assert m["tags"] == {"dc": "compat"}
        assert m["xlog_location"] > 0 and m["timeline"] == 1
        assert summary["config"]["ttl"] == 20
        assert summary["config"]["postgresql"]["parameters"]["max_connections"] == 50
        assert summary["optime"] == json.loads(dump["status"]["value"])["optime"]
        assert summary["initialize"] == dump["initialize"]["value"]
        assert summary["timeline"] == 0  # no history key yet: unknown, as in Patroni
        assert summary["warnings"] == []
        with urllib.request.urlopen("http://127.0.0.1:%d/patroni" % api_port, timeout=5) as r:
            status = json.load(r)
        assert status["role"] == "master"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        pidfile = os.path.join(node_dir, "data", "postmaster.pid")
        if os.path.exists(pidfile):  # Patroni normally stops it; be sure
            with open(pidfile) as f:
                try:
                    os.kill(int(f.readline()), signal.SIGINT)
                except (ValueError, ProcessLookupError):
                    pass


def test_patronictl_reads_what_the_backend_writes(env):
    cluster, backends, tmp = env
    scope = "pgkeel-wrote"
    print(tool(backends, cluster, scope, "seed-patroni"))
    cfg = os.path.join(tmp, "ctl.yml")
    with open(cfg, "w") as f:
        f.write("scope: %s\nnamespace: /db/\nzookeeper:\n  hosts: %s\n" % (scope, cluster.hosts))

    def ctl(*args):
        out = subprocess.run([PATRONICTL, "-c", cfg] + list(args), capture_output=True,
                             text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                         "LANG": "C.UTF-8"})
        print(out.stdout, out.stderr)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        return out.stdout

    listing = ctl("list")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in listing.splitlines() if line.startswith("| pg-")}
    assert set(rows) == {"pg-1", "pg-2"}
    assert rows["pg-2"][2] == "Leader" and rows["pg-2"][3] == "running"
    assert rows["pg-1"][2] == "Sync Standby"
    assert rows["pg-2"][1] == "127.0.0.1:25432"
    assert "Cluster: %s" % scope in listing

    history = ctl("history")
    assert "no recovery target specified" in history and "pg-2" in history

    config = ctl("show-config")
    assert "ttl: 30" in config and "max_connections: 200" in config
