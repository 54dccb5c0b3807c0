"""pgkeelctl's show-config, edit-config, dsn, query and remove against a
3-node pgkeel cluster (tests/integration/ha_cluster.py: etcd 3.4,
PostgreSQL 15), side by side with Debian's patronictl 3.0.2 reading the same
configuration file.

- show-config prints the same text as patronictl, tricky values included;
- edit-config --set/--pg --force changes the DCS key exactly as patronictl
  writes it (json.dumps with default separators) and the change reaches
  PostgreSQL on every node (SHOW polled); the diff shown before the question
  is patronictl's, byte for byte, and colored on a terminal;
- --apply/--replace from a file and from stdin, an $EDITOR script;
- a concurrent change made between the read and the write (the editor script
  itself runs patronictl edit-config) is refused and the other change kept;
- bad input (no '=', a value or an edit that is not YAML, an edit that is not
  a mapping, a failing editor, a missing file, an unknown cluster) gives a
  clear message and exit 1 (2 for usage), and the config key keeps its value
  and its revision;
- dsn and query (-r master/replica, -m member, formats, errors, --password,
  the watch loop, autocommit as Patroni sets it) match patronictl;
- remove refuses wrong answers (every key kept), and with the right answers
  wipes a separate scope's keys and nothing else.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import base64
import difflib
import json
import os
import random
import re
import select
import signal
import subprocess
import time

import pytest
import yaml

from ha_cluster import PGKEELCTL, SUPERUSER_PW, HaCluster, requirements, wait_healthy
from pg_instance import poll

pytestmark = requirements(patronictl=True, pgkeelctl=True)

SCOPE = "pgkeel-ctlcfg"
# dynamic values show-config must print as patronictl does
TRICKY = {"s_on": "on", "s_num": "1.5", "s_empty": "", "s_uni": "caf\u00e9 \u2603",
          "s_colon": "a: b", "s_hash": "x #y", "list": [1, "two", None, True],
          "nested": {"z": 1, "a": {"deep": "yes"}}, "f": 0.1, "big": 12345678901234567}


@pytest.fixture(scope="module")
def cluster():
    with HaCluster(3, scope=SCOPE) as c:
        c.start()
        wait_healthy(c)
        yield c


def env(c, **extra):
    e = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": c.base, "TMPDIR": c.base,
         "TZ": "UTC", "PGUSER": "postgres", "PGPASSWORD": SUPERUSER_PW}
    e.update(extra)
    return e


def k(c, *args, stdin="", timeout=60, **extra):
    """pgkeelctl with pg-1's configuration file: (exit status, stdout, stderr)."""
    return c.pgkeelctl(*args, stdin=stdin, timeout=timeout, env=env(c, **extra))


def pctl(c, *args, stdin="", timeout=60, **extra):
    """Debian's patronictl with the same file: (exit status, stdout, stderr)."""
    p = subprocess.run(["/usr/bin/patronictl", "-c", c.node("pg-1").conf] + list(args),
                       input=stdin.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env(c, **extra))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def kv(c, rel, scope=SCOPE):
    """(value, mod_revision) of a key, (None, None) when absent."""
    key = "/db/%s/%s" % (scope, rel)
    out = c.etcd.rpc("/kv/range", {"key": base64.b64encode(key.encode()).decode()})
    kvs = out.get("kvs") or []
    if not kvs:
        return None, None
    return base64.b64decode(kvs[0].get("value", "")).decode(), kvs[0].get("mod_revision")


def keys_under(c, scope):
    prefix = "/db/%s/" % scope
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    out = c.etcd.rpc("/kv/range", {"key": base64.b64encode(prefix.encode()).decode(),
                                   "range_end": base64.b64encode(end.encode()).decode(),
                                   "keys_only": True})
    return sorted(base64.b64decode(x["key"]).decode()[len(prefix):]
                  for x in out.get("kvs") or [])


def config(c):
    value, _ = kv(c, "config")
    # what patronictl writes: json.dumps() with the default separators
    assert json.dumps(json.loads(value)) == value, value
    return json.loads(value)


def script(c, name, body):
    path = os.path.join(c.base, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def show_all(c, guc):
    return [n.psql("SHOW %s" % guc) for n in c.nodes]


def leader_and_replicas(c):
    leader = c.leader_name()
    return c.node(leader), [n for n in c.nodes if n.name != leader]


# ------------------------------------------------------------------ show-config

def test_show_config_same_as_patronictl(cluster):
    c = cluster
    rc, out, err = k(c, "show-config")
    assert rc == 0, err
    assert out == pctl(c, "show-config")[1]
    assert "loop_wait: 2\n" in out and out.endswith("\n\n")
    # awkward values, written by patronictl itself
    rc, _, err = pctl(c, "edit-config", "--force", "-s", "pgkeel_test=" + json.dumps(TRICKY))
    assert rc == 0, err
    assert config(c)["pgkeel_test"] == TRICKY
    rc, out, err = k(c, "show-config", SCOPE)
    assert rc == 0, err
    assert out == pctl(c, "show-config", SCOPE)[1]
    assert "s_on: 'on'" in out and "caf\u00e9" in out
    rc, _, err = k(c, "edit-config", "--force", "-q", "-s", "pgkeel_test=")
    assert rc == 0 and "pgkeel_test" not in config(c), err


# ------------------------------------------------------------------ edit-config

def test_set_and_pg_reach_postgresql(cluster):
    c = cluster
    before = config(c)
    rc, out, err = k(c, "edit-config", "--force", "-s", "maximum_lag_on_failover=2097152",
                     "-p", "work_mem=8MB", "-p", " log_min_duration_statement = 250")
    assert rc == 0, err
    assert out.startswith("--- \n+++ \n@@ ") and out.endswith("Configuration changed\n"), out
    assert "-maximum_lag_on_failover: 1048576\n+maximum_lag_on_failover: 2097152\n" in out
    assert "+    work_mem: 8MB\n" in out
    cfg = config(c)
    assert cfg["maximum_lag_on_failover"] == 2097152
    assert cfg["postgresql"]["parameters"]["work_mem"] == "8MB"
    # the key is the text before '=', stripped; the value is YAML
    assert cfg["postgresql"]["parameters"]["log_min_duration_statement"] == 250
    for key in before:
        if key not in ("maximum_lag_on_failover", "postgresql"):
            assert cfg[key] == before[key], key
    poll(lambda: show_all(c, "work_mem") == ["8MB"] * 3, 60, "work_mem 8MB on every node")
    # the same value again: nothing to do, nothing written
    _, rev = kv(c, "config")
    rc, out, err = k(c, "edit-config", "--force", "-p", "work_mem=8MB")
    assert (rc, out) == (0, "Not changed\n"), err
    assert kv(c, "config")[1] == rev
    # an empty value deletes; a mapping left empty goes too
    rc, out, err = k(c, "edit-config", "--force", "-q", "-p", "work_mem=", "-p",
                     "log_min_duration_statement =", "-s", "a.b.c=1")
    assert (rc, out) == (0, "Configuration changed\n"), err
    rc, out, err = k(c, "edit-config", "--force", "-q", "-s", "a.b.c=")
    assert rc == 0, err
    cfg = config(c)
    assert "work_mem" not in cfg["postgresql"]["parameters"] and "a" not in cfg
    poll(lambda: show_all(c, "work_mem") == ["4MB"] * 3, 60, "work_mem back to 4MB")


def test_diff_and_question_as_patronictl(cluster):
    c = cluster
    value, rev = kv(c, "config")
    for args in (["-s", "ttl=20"], ["-p", "work_mem=16MB", "-s", "loop_wait=3"],
                 ["-s", "postgresql.parameters.x.y.z=on"], ["-s", "postgresql.use_slots="],
                 ["-s", "a.b=[1, 2]", "-s", "c={d: 1, e: [x, 'y']}"], ["-s", "ttl=10.0"],
                 ["-s", "postgresql="], ["-s", "retry_timeout=true"]):
        rc, out, err = k(c, "edit-config", *args, stdin="n\n")
        prc, pout, perr = pctl(c, "edit-config", *args, stdin="n\n")
        assert out == pout, (args, out, pout)
        assert (rc == 0) == ("Not changed" in out), (args, rc, err)
        assert err == "", err
    assert kv(c, "config") == (value, rev)
    # answered yes
    rc, out, err = k(c, "edit-config", "-s", "maximum_lag_on_failover=3145728", stdin="y\n")
    assert rc == 0 and out.endswith("Apply these changes? [y/N]: Configuration changed\n"), out
    assert config(c)["maximum_lag_on_failover"] == 3145728


def big_config(rng, n):
    """A mapping whose YAML has many equal lines (difflib's "popular" ones)."""
    return {"pgkeel_test": {"g%03d" % i: {"x": 1, "y": rng.choice([2, 3]), "z": "same"}
                            for i in range(n)}}


def test_diff_is_difflibs(cluster):
    """The diff printed is difflib.unified_diff's, also for long texts (its
    autojunk rule for lines seen more than len/100 + 1 times in 200+ lines)."""
    c = cluster
    rng = random.Random(7)
    base = big_config(rng, 70)  # 281 lines of YAML, "  x: 1" 70 times
    rc, _, err = k(c, "edit-config", "--force", "-q", "--apply", "-", stdin=json.dumps(base))
    assert rc == 0, err
    value, rev = kv(c, "config")
    before = k(c, "show-config")[1][:-1]
    lines = before.splitlines()
    edited = os.path.join(c.base, "edited.yml")
    ed = script(c, "ed-copy.sh", "cp %s \"$1\"\n" % edited)
    added = compared = 0
    for _ in range(12):
        new = list(lines)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(new))
            op = rng.random()
            if op < 0.3 and new[i].startswith("    "):
                del new[i]
            elif op < 0.6 and new[i].startswith("  g"):
                added += 1
                new.insert(i, "  zz%03d: %d" % (added, rng.randrange(3)))
            elif new[i].startswith("    y: "):
                new[i] = "    y: 4"
        after = "\n".join(new[:rng.randint(len(new) - 40, len(new))]) + "\n"
        with open(edited, "w") as f:
            f.write(after)
        want = "".join(line.rstrip("\n") + "\n" for line in difflib.unified_diff(
            [x + "\n" for x in before.rstrip("\n").split("\n")],
            [x + "\n" for x in after.rstrip("\n").split("\n")]))
        rc, out, err = k(c, "edit-config", stdin="n\n", EDITOR=ed)
        if rc == 0:  # the cut made it equal
            assert out == "Not changed\n"
            continue
        assert out == want + "Apply these changes? [y/N]: ", err
        compared += 1
    assert compared >= 8
    assert kv(c, "config") == (value, rev)
    rc, _, err = k(c, "edit-config", "--force", "-q", "-s", "pgkeel_test=")
    assert rc == 0 and "pgkeel_test" not in config(c), err


def test_diff_colored_on_a_terminal(cluster):
    c = cluster
    cmd = "%s -c %s edit-config -s maximum_lag_on_failover=4194304" % (
        PGKEELCTL, c.node("pg-1").conf)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=b"n\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=env(c))
    out = p.stdout.decode()
    assert "\x1b[1;31m-maximum_lag_on_failover: 3145728\x1b[0m" in out, out
    assert "\x1b[1;32m+maximum_lag_on_failover: 4194304\x1b[0m" in out, out
    assert config(c)["maximum_lag_on_failover"] == 3145728


def test_apply_and_replace(cluster):
    c = cluster
    path = os.path.join(c.base, "apply.yml")
    with open(path, "w") as f:
        f.write("maximum_lag_on_failover: 1048576\npostgresql:\n  parameters:\n"
                "    work_mem: 12MB\n    max_wal_senders: null\nloop_wait: '2'\n")
    for opt in ("--apply", "--replace"):
        # the diff is patronictl's (answer no)
        assert k(c, "edit-config", opt, path, stdin="n\n")[1] == \
            pctl(c, "edit-config", opt, path, stdin="n\n")[1]
    before = config(c)
    rc, out, err = k(c, "edit-config", "--apply", path, "--force")
    assert rc == 0 and out.endswith("Configuration changed\n"), err
    cfg = config(c)
    assert cfg["maximum_lag_on_failover"] == 1048576
    assert cfg["postgresql"]["parameters"]["work_mem"] == "12MB"
    assert "max_wal_senders" not in cfg["postgresql"]["parameters"]
    assert cfg["loop_wait"] == 2  # str() equal: kept as it was, as patch_config does
    assert cfg["ttl"] == before["ttl"] and cfg["postgresql"]["use_slots"] is True
    poll(lambda: show_all(c, "work_mem") == ["12MB"] * 3, 60, "work_mem 12MB everywhere")
    # from stdin: patronictl cannot ask, so it wants --force
    text = "postgresql:\n  parameters:\n    work_mem: 6MB\n"
    _, rev = kv(c, "config")
    rc, out, err = k(c, "edit-config", "--apply", "-", stdin=text)
    assert rc == 1 and out.endswith("Use --force option to apply changes\n"), (out, err)
    assert kv(c, "config")[1] == rev
    rc, out, err = k(c, "edit-config", "--apply", "-", "--force", stdin=text)
    assert rc == 0 and config(c)["postgresql"]["parameters"]["work_mem"] == "6MB", err
    # --replace: the file is the whole configuration (top-level nulls dropped)
    new = json.loads(json.dumps(before))
    new["postgresql"]["parameters"]["max_wal_senders"] = 10
    new["postgresql"]["parameters"].pop("work_mem", None)
    new["maximum_lag_on_failover"] = 1048576
    with open(path, "w") as f:
        yaml.safe_dump(dict(new, dropped=None), f)
    rc, out, err = k(c, "edit-config", "--replace", path, "--force", "-q")
    assert (rc, out) == (0, "Configuration changed\n"), err
    assert config(c) == new
    # from stdin, then a --set on top
    text = yaml.safe_dump(new)
    new["retry_timeout"] = 4
    rc, out, err = k(c, "edit-config", "--replace", "-", "--force", "-q", "-s",
                     "retry_timeout=4", stdin=text)
    assert rc == 0 and config(c) == new, err
    poll(lambda: show_all(c, "work_mem") == ["4MB"] * 3, 60, "work_mem back to 4MB")


def test_editor(cluster):
    c = cluster
    ed = script(c, "ed-lag.sh", "sed -i 's/^maximum_lag_on_failover: .*/"
                "maximum_lag_on_failover: 5242880/' \"$1\"\n"
                "case \"$1\" in */%s-config-*.yaml) ;; *) exit 7;; esac\n" % SCOPE)
    rc, out, err = k(c, "edit-config", stdin="n\n", EDITOR=ed)
    assert rc == 1 and out.endswith("Apply these changes? [y/N]: "), (out, err)
    assert "+maximum_lag_on_failover: 5242880" in out
    assert config(c)["maximum_lag_on_failover"] == 1048576
    rc, out, err = k(c, "edit-config", stdin="y\n", EDITOR=ed)
    assert rc == 0 and out.endswith("Configuration changed\n"), err
    assert config(c)["maximum_lag_on_failover"] == 5242880
    # the editor leaves it as it was
    rc, out, err = k(c, "edit-config", EDITOR=script(c, "ed-none.sh", "exit 0\n"))
    assert (rc, out) == (0, "Not changed\n"), err
    # the temporary files are gone
    assert not [f for f in os.listdir(c.base) if f.startswith(SCOPE + "-config-")]


def test_concurrent_change_refused(cluster):
    c = cluster
    # between our read and our write, somebody else changes the configuration
    ed = script(c, "ed-race.sh",
                "/usr/bin/patronictl -c %s edit-config --force -s retry_timeout=5 >/dev/null "
                "|| exit 9\nsed -i 's/^maximum_lag_on_failover: .*/"
                "maximum_lag_on_failover: 1048576/' \"$1\"\n" % c.node("pg-2").conf)
    rc, out, err = k(c, "edit-config", "--force", EDITOR=ed)
    assert rc == 1, (out, err)
    assert err == "Error: Config modification aborted due to concurrent changes\n"
    cfg = config(c)
    assert cfg["retry_timeout"] == 5  # the other change is kept
    assert cfg["maximum_lag_on_failover"] == 5242880  # ours was not written
    rc, _, err = k(c, "edit-config", "--force", "-q", "-s", "retry_timeout=3", "-s",
                   "maximum_lag_on_failover=1048576")
    assert rc == 0, err


@pytest.mark.parametrize("args,editor,status,message", [
    (["-s", "ttl"], None, 1, "Error: Invalid parameter setting ttl\n"),
    (["-p", "work_mem"], None, 1,
     "Error: Invalid parameter setting postgresql.parameters.work_mem\n"),
    (["-s", "ttl=["], None, 1,
     re.compile(r"^Error: the value of --set 'ttl=\[' is not valid YAML: line \d+, column \d+: "
                r"did not find expected node content")),
    ([], "printf 'ttl: 10\\nloop_wait: [2\\n' > \"$1\"", 1,
     re.compile(r"^Error: The edited configuration is not valid YAML: line 3, column 1: ")),
    ([], "printf -- '- a\\n' > \"$1\"", 1,
     "Error: The edited configuration is a single value or a list, not a mapping of "
     "configuration keys\n"),
    ([], ": > \"$1\"", 1, "Error: The edited configuration is empty, not a mapping of "
                          "configuration keys\n"),
    ([], "exit 3", 1, "Error: Editor exited with return code 3\n"),
    (["--apply", "/nonexistent.yml"], None, 1,
     "Error: --apply /nonexistent.yml: cannot open: No such file or directory\n"),
    (["--replace", "-", "--force"], None, 1,
     re.compile(r"^Error: --replace - \(stdin\) is not valid YAML: line \d+, column \d+: ")),
    (["--apply", "-", "--force"], None, 1,
     "Error: --apply - (stdin) does not hold a mapping of configuration keys\n"),
    (["no-such-cluster", "-s", "ttl=20", "--force"], None, 1,
     "Error: cluster no-such-cluster has no configuration in the DCS (is the cluster name "
     "right?)\n"),
    (["--bogus"], None, 2, re.compile(r"No such option: --bogus")),
    (["a", "b"], None, 2, re.compile(r"Got unexpected extra argument \(b\)")),
])
def test_bad_input_changes_nothing(cluster, args, editor, status, message):
    c = cluster
    before = kv(c, "config")
    extra = {}
    if editor is not None:
        extra["EDITOR"] = script(c, "ed-bad.sh", editor + "\n")
    stdin = "ttl: [\n" if "--replace" in args else "[1, 2]\n" if "--apply" in args else ""
    rc, out, err = k(c, "edit-config", *args, stdin=stdin, **extra)
    assert rc == status, (out, err)
    if isinstance(message, str):
        assert err == message
    else:
        assert message.search(err), err
    assert "Configuration changed" not in out
    assert kv(c, "config") == before
    assert kv(c, "config", "no-such-cluster") == (None, None)


# ------------------------------------------------------------------ dsn, query

def test_dsn(cluster):
    c = cluster
    leader, replicas = leader_and_replicas(c)
    first_replica = sorted(replicas, key=lambda n: n.name)[0]
    for args, node in (([], leader), (["-r", "master"], leader), (["-r", "replica"],
                       first_replica), (["-m", "pg-3"], c.node("pg-3")), ([SCOPE], leader)):
        rc, out, err = k(c, "dsn", *args)
        assert (rc, out) == (0, "host=127.0.0.1 port=%d\n" % node.pg_port), err
        assert out == pctl(c, "dsn", *args)[1]
    assert k(c, "dsn", "-m", "nobody") == (1, "", "Error: Can not find a suitable member\n")
    assert k(c, "dsn", "-r", "standby-leader") == \
        (1, "", "Error: Can not find a suitable member\n")
    assert k(c, "dsn", "-m", "pg-1", "-r", "any") == \
        (1, "", "Error: --role and --member are mutually exclusive options\n")
    assert k(c, "dsn", "-r", "boss")[0] == 2


def no_time(text):
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<time>", text)


def test_query(cluster):
    c = cluster
    leader, replicas = leader_and_replicas(c)
    assert k(c, "query", "-c", "select 1") == (0, "?column?\n1\n", "")
    assert k(c, "query", "-r", "master", "-c", "select pg_is_in_recovery()") == \
        (0, "pg_is_in_recovery\nFalse\n", "")
    assert k(c, "query", "-r", "replica", "-c", "select pg_is_in_recovery()") == \
        (0, "pg_is_in_recovery\nTrue\n", "")
    rc, out, err = k(c, "query", "-m", replicas[0].name, "-U", "postgres", "-d", "template1",
                     "-c", "select current_setting('port') as port, current_database(), "
                     "current_setting('application_name') as app")
    assert (rc, out) == (0, "port\tcurrent_database\tapp\n%d\ttemplate1\tPatroni ctl\n"
                         % replicas[0].pg_port), err
    # values and formats as patronictl prints them
    sql = ("select 1 as i, true as b, null::int as n, 1.50::numeric as d, 0.1::float8 as f, "
           "'x y'::text as t, 1e15::float8 as big, 0.0000001::numeric as tiny, "
           "'2020-01-01 10:00:00.5+05:30'::timestamptz as ts")
    for fmt in ("tsv", "pretty"):
        rc, out, err = k(c, "query", "-c", sql, "--format", fmt)
        assert rc == 0 and out == pctl(c, "query", "-c", sql, "--format", fmt)[1], err
    sql = "select 1 as i, true as b, null::int as n, 0.1::float8 as f, 'x: y'::text as t"
    for fmt in ("json", "yaml"):
        rc, out, err = k(c, "query", "-c", sql, "--format", fmt)
        assert rc == 0 and out == pctl(c, "query", "-c", sql, "--format", fmt)[1], err
    assert k(c, "query", "-c", "select 1 as a, 2 as b", "--delimiter", ";")[1] == "a;b\n1;2\n"
    assert k(c, "query", "-c", "select 1; select 2 as two")[1] == "two\n2\n"
    # failures: patronictl's rows, exit status 1
    for args, msg in ((["-c", "select 1/0"], "ERROR, SQLSTATE: 22012"),
                      (["-c", "selec"], "ERROR, SQLSTATE: 42601"),
                      (["-c", "create temp table t()"], "ERROR, SQLSTATE: no results to fetch"),
                      (["-c", " "], "ERROR, SQLSTATE: can't execute an empty query"),
                      (["-r", "standby-leader", "-c", "select 1"],
                       "No connection to role=standby-leader is available"),
                      (["-m", "nobody", "-c", "select 1"],
                       "No connection to member nobody is available")):
        rc, out, err = k(c, "query", *args)
        assert (rc, no_time(out)) == (1, "<time>\t%s\n" % msg), (args, out, err)
        assert no_time(out) == no_time(pctl(c, "query", *args)[1])
    # autocommit, as Patroni's psycopg2 connections
    for run, table in ((k, "pgkeel_ctl_k"), (pctl, "pgkeel_ctl_p")):
        assert run(c, "query", "-c", "create table %s(); select 1 as one" % table)[1] == \
            "one\n1\n"
        assert leader.psql("select to_regclass('%s') is not null" % table) == "t"
    assert k(c, "query", "-c", "drop table pgkeel_ctl_k, pgkeel_ctl_p; select 0 as zero") == \
        (0, "zero\n0\n", "")
    rc, out, _ = k(c, "query", "-c", "create table pgkeel_ctl_k(); select 1/0")
    assert rc == 1 and "SQLSTATE: 22012" in out
    assert leader.psql("select to_regclass('pgkeel_ctl_k') is null") == "t"
    # -f, and the option checks
    path = os.path.join(c.base, "q.sql")
    with open(path, "w") as f:
        f.write("select 42 as answer\n")
    assert k(c, "query", "-f", path) == (0, "answer\n42\n", "")
    assert k(c, "query", "-f", path, "-c", "select 1") == \
        (1, "", "Error: --file and --command are mutually exclusive options\n")
    assert k(c, "query") == (1, "", "Error: You need to specify either --command or --file\n")
    assert k(c, "query", "-f", "/nonexistent.sql")[0] == 2
    assert k(c, "query", "-m", "pg-1", "-r", "master", "-c", "select 1")[2] == \
        "Error: --role and --member are mutually exclusive options\n"


def test_query_password_prompt(cluster):
    """--password asks (again when the answer is empty).  The cluster's
    pg_hba trusts 127.0.0.1 (initdb's lines come first), so a wrong password
    cannot be told from a right one here."""
    c = cluster
    rc, out, err = k(c, "query", "--password", "-c", "select 7 as seven",
                     stdin="\n" + SUPERUSER_PW + "\n", PGPASSWORD="")
    assert (rc, out, err) == (0, "Password: Password: seven\n7\n", "")
    rc, out, err = k(c, "query", "--password", "-c", "select 7", stdin="", PGPASSWORD="")
    assert (rc, err) == (1, "Aborted!\n"), out


def test_query_watch(cluster):
    """-w repeats until interrupted; each round reads the DCS and connects anew."""
    c = cluster
    p = subprocess.Popen([PGKEELCTL, "-c", c.node("pg-1").conf, "query", "-w", "0.2", "-c",
                          "select pg_backend_pid() as pid"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env(c))
    try:
        buf = b""
        deadline = time.monotonic() + 30
        while buf.count(b"\n") < 6 and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        lines = buf.decode().splitlines()[:6]
        assert lines[0::2] == ["pid"] * 3, lines
        pids = [int(x) for x in lines[1::2]]
        assert len(set(pids)) == 3, pids
        assert p.poll() is None
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


# ------------------------------------------------------------------ remove

def test_remove_refuses_wrong_answers(cluster):
    c = cluster
    leader = c.leader_name()
    before = keys_under(c, SCOPE)
    assert {"config", "leader", "initialize", "members/pg-1"} <= set(before)
    for answers, message in (
            (["other"], "Cluster names specified do not match"),
            (["", SCOPE, "yes"], 'You did not exactly type "Yes I am aware"'),
            ([SCOPE, "Yes I am aware", "pg-x"],
             "You did not specify the current leader of the cluster"),
            ([SCOPE, "Yes I am aware"], None)):
        rc, out, err = k(c, "remove", SCOPE, stdin="".join(a + "\n" for a in answers))
        assert (rc, err) == (1, "Error: %s\n" % message if message else "Aborted!\n"), \
            (answers, out, err)
        assert keys_under(c, SCOPE) == before
        assert c.leader_name() == leader
    # the table and the first question as patronictl prints them
    out = k(c, "remove", SCOPE, stdin="other\n")[1]
    assert out == pctl(c, "remove", SCOPE, stdin="other\n")[1]
    assert "Please confirm the cluster name to remove: " in out and "| pg-1 " in out
    assert k(c, "remove")[0] == 2


def test_remove_wipes_only_its_scope(cluster):
    c = cluster
    keep = keys_under(c, SCOPE)
    for scope, leader in (("pgkeel-doomed", "ghost"), ("pgkeel-doomed-2", None)):
        base = "/db/%s/" % scope
        c.etcd.put(base + "config", json.dumps({"ttl": 30}))
        c.etcd.put(base + "initialize", "7000000000000000001")
        c.etcd.put(base + "members/ghost", json.dumps(
            {"conn_url": "postgres://127.0.0.1:1/postgres", "api_url":
             "http://127.0.0.1:1/patroni", "state": "running", "role": "master",
             "version": "3.0.2"}))
        if leader:
            c.etcd.put(base + "leader", leader)
        assert len(keys_under(c, scope)) == (4 if leader else 3)
        answers = [scope, "Yes I am aware"] + ([leader] if leader else [])
        rc, out, err = k(c, "remove", scope, stdin="".join(a + "\n" for a in answers))
        assert (rc, err) == (0, ""), out
        assert ("Please specify the leader name to continue: " in out) == bool(leader)
        assert keys_under(c, scope) == []
    assert keys_under(c, SCOPE) == keep
    assert kv(c, "leader")[0] is not None
