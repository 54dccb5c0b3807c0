"""core/child.c starting a program as another user (the postmaster runs as
postgres while pgkeel may run as root).  Needs root and a postgres user;
skipped otherwise.  Everything else about children is in
tests/unit/test_child.c.

tests/tools/child_probe is both ends: `child_probe run --user postgres --
child_probe report` starts the reporter through pgkeel_child_capture() and
prints what the reporter saw from inside (credentials, working directory,
descriptors, signal mask, environment).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
(PGKEEL_BUILDDIR names the build tree; default build/default).
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PGKEEL_BUILDDIR", os.path.join(TOP, "build", "default"))
PROBE = os.path.join(BUILD, "tests", "tools", "child_probe")


@pytest.fixture
def pg():
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user")


@pytest.fixture
def tmp():
    # World-traversable, so the postgres user can reach the copied probe.
    d = tempfile.mkdtemp(prefix="pgkeel-child-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def probe(tmp):
    if not os.path.exists(PROBE):
        pytest.skip("child_probe not built in " + BUILD)
    # The build tree may not be readable by postgres: use a copy.
    path = os.path.join(tmp, "child_probe")
    shutil.copy(PROBE, path)
    os.chmod(path, 0o755)
    return path


def run(probe, args, env_extra=None, as_user=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    ids = {}
    if as_user is not None:
        ids = {"user": as_user.pw_uid, "group": as_user.pw_gid,
               "extra_groups": os.getgrouplist(as_user.pw_name, as_user.pw_gid)}
    return subprocess.run([probe, "run"] + args, env=env, capture_output=True, text=True,
                          timeout=30, **ids)


def parse(report):
    fields, fds, env = {}, {}, {}
    for line in report.splitlines():
        if line.startswith(("SigBlk:", "SigIgn:")):  # "SigBlk:\t0000..."
            fields[line[:7]] = line[7:].strip()
            continue
        key, _, value = line.partition(" ")
        if key == "fd":
            num, _, target = value.partition(" ")
            fds[int(num)] = target
        elif key == "env":
            name, _, val = value.partition("=")
            env[name] = val
        else:
            fields[key] = value
    return fields, fds, env


def test_runs_as_postgres(pg, tmp, probe):
    home = os.path.join(tmp, "home")
    os.mkdir(home, 0o700)
    os.chown(home, pg.pw_uid, pg.pw_gid)
    r = run(probe, ["--user", "postgres", "--cwd", home, "--env", "LANG=C",
                    "--env", "PGPASSFILE=" + home + "/pgpass", "--", probe, "report"],
            env_extra={"PATRONI_SUPERUSER_PASSWORD": "secret", "PGKEEL_ETCD3_PASSWORD": "s2",
                       "LANG": "de_DE.UTF-8", "KEEP_ME": "yes"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("result: ok\nstatus: exited with code 0\n"), r.stdout
    fields, fds, env = parse(r.stdout)
    for key in ("uid", "euid"):
        assert int(fields[key]) == pg.pw_uid
    for key in ("gid", "egid"):
        assert int(fields[key]) == pg.pw_gid
    groups = sorted(int(g) for g in fields["groups"].split(",") if g)
    assert groups == sorted(set(os.getgrouplist("postgres", pg.pw_gid)))
    assert 0 not in groups  # root's group is not kept
    assert fields["cwd"] == home
    assert fields["sid"] == fields["pid"] == fields["pgid"]
    assert sorted(fds) == [0, 1, 2]
    # stdin /dev/null, stdout the capture pipe, stderr inherited from the driver.
    assert fds[0] == "/dev/null"
    assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:") and fds[1] != fds[2]
    assert fields["SigBlk:"] == "0" * 16 and fields["SigIgn:"] == "0" * 16
    assert not [k for k in env if k.startswith(("PATRONI_", "PGKEEL_"))]
    assert "secret" not in r.stdout
    assert env["LANG"] == "C" and env["KEEP_ME"] == "yes"
    assert env["PGPASSFILE"] == home + "/pgpass"


def test_output_file_opened_as_postgres(pg, tmp, probe):
    logdir = os.path.join(tmp, "log")
    os.mkdir(logdir, 0o700)
    os.chown(logdir, pg.pw_uid, pg.pw_gid)
    log = os.path.join(logdir, "postmaster.log")
    for _ in range(2):
        r = run(probe, ["--user", "postgres", "--out-file", log, "--", probe, "report"])
        assert r.returncode == 0, r.stderr
        assert "result: ok\nstatus: exited with code 0\n" in r.stdout
    st = os.stat(log)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (pg.pw_uid, pg.pw_gid, 0o600)
    with open(log) as f:
        text = f.read()
    assert text.count("\nSigBlk:\t") == 2  # appended, not truncated
    assert "fd 1 " + log in text and "fd 2 " + log in text

    # A directory only root may write to is refused with postgres' rights,
    # and the spawn call says so (not an exit code).
    rootdir = os.path.join(tmp, "rootonly")
    os.mkdir(rootdir, 0o755)
    bad = os.path.join(rootdir, "x.log")
    r = run(probe, ["--user", "postgres", "--out-file", bad, "--", probe, "report"])
    assert r.returncode == 3, r.stdout
    assert r.stderr == ("error: cannot start child_probe: open %s for stdout: "
                        "Permission denied\n" % bad)
    assert not os.path.exists(bad)


def test_chdir_checked_as_postgres(pg, tmp, probe):
    private = os.path.join(tmp, "private")
    os.mkdir(private, 0o700)
    r = run(probe, ["--user", "postgres", "--cwd", private, "--", probe, "report"])
    assert r.returncode == 3
    assert r.stderr == ("error: cannot start child_probe: chdir %s: Permission denied\n"
                        % private)
    # As root the same directory is fine.
    r = run(probe, ["--cwd", private, "--", probe, "report"])
    assert r.returncode == 0, r.stderr
    assert parse(r.stdout)[0]["cwd"] == private


def test_unprivileged_switch_is_a_clear_error(pg, tmp, probe):
    # pgkeel running as postgres cannot start a child as root.
    r = run(probe, ["--user", "root", "--", probe, "report"], as_user=pg)
    assert r.returncode == 3, r.stdout
    assert r.stderr == ("error: cannot start child_probe: setgroups: "
                        "Operation not permitted\n")
    # Its own user needs no privilege.
    r = run(probe, ["--user", "postgres", "--", probe, "report"], as_user=pg)
    assert r.returncode == 0, r.stderr
    assert int(parse(r.stdout)[0]["uid"]) == pg.pw_uid
