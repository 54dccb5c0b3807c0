#!/usr/bin/python3
"""The benchmark's client: commits rows through HAProxy's write port and logs
every attempt, so that the longest stretch without an acknowledged commit (the
client-visible write gap) can be read from the log afterwards.

    writer.py run --port P --tag T --log FILE [--interval 0.01] [--max-seconds 300]
        One autocommit INSERT every --interval seconds on 127.0.0.1:P; after any
        error the connection is dropped and a new one made.  The connection is
        asynchronous, so the client-side timeouts (--connect-timeout 1,
        --statement-timeout 2) can be shorter than libpq's connect_timeout floor
        of 2 s; HAProxy holds a new connection while it retries a dead server
        that it still marks UP.  SIGTERM ends the run after the current attempt.
        Log lines: "<CLOCK_MONOTONIC s> ok <id>" when the commit was
        acknowledged, "<s> err <id> <reason>" otherwise.

    writer.py setup --port P        creates the table (run against the primary)

analyze() and lost_rows() are what writegap.py imports.
"""
import argparse
import os
import select
import signal
import sys
import time

import psycopg2
from psycopg2 import extensions

PASSWORD = os.environ.get("BENCH_SUPERUSER_PW", "bench-su-5d2e")
TABLE = ("CREATE TABLE IF NOT EXISTS bench_writes (tag text, id int,"
         " at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (tag, id))")

stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


def dsn(port):
    return dict(host="127.0.0.1", port=port, user="postgres", password=PASSWORD,
                dbname="postgres", application_name="bench-writer")


def drive(conn, timeout):
    """Run an asynchronous connection's pending operation to its end, or
    raise TimeoutError once timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer within %.1f s" % timeout)
        if state == extensions.POLL_READ:
            select.select([conn.fileno()], [], [], left)
        else:
            select.select([], [conn.fileno()], [], left)


def attempt(conn, a, n):
    """One INSERT on conn (a new connection when None); returns the
    connection to use next (None after a failure) and the log line."""
    try:
        if conn is None:
            conn = psycopg2.connect(async_=True, options="-c statement_timeout=%d" %
                                    int(a.statement_timeout * 1000), **dsn(a.port))
            drive(conn, a.connect_timeout)
        del conn.notices[:]
        cur = conn.cursor()
        cur.execute("INSERT INTO bench_writes (tag, id) VALUES (%s, %s)", (a.tag, n))
        drive(conn, a.statement_timeout)
        # a commit whose wait for a synchronous standby was cancelled is only
        # local (PostgreSQL warns): not an acknowledged durable write
        if any("synchronous replication" in x for x in conn.notices):
            return conn, "err %d sync-wait-cancelled" % n
        return conn, "ok %d" % n
    except Exception as e:  # noqa: BLE001 -- every failure means "not writable"
        reason = (str(e).strip().splitlines() or [""])[0][:120]
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        return None, "err %d %s: %s" % (n, type(e).__name__, reason)


def run(a):
    signal.signal(signal.SIGTERM, on_term)
    end = time.monotonic() + a.max_seconds
    conn, n = None, 0
    due = time.monotonic()
    with open(a.log, "w", buffering=1) as log:
        while not stopping and time.monotonic() < end:
            n += 1
            conn, line = attempt(conn, a, n)
            log.write("%.6f %s\n" % (time.monotonic(), line))
            due += a.interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:  # behind schedule: go on at once, but never spin on a refused connect
                due = time.monotonic()
                if conn is None:
                    time.sleep(0.005)
    if conn is not None:
        conn.close()


def setup(a):
    conn = psycopg2.connect(connect_timeout=5, **dsn(a.port))
    conn.autocommit = True
    conn.cursor().execute(TABLE)
    conn.close()


def analyze(lines):
    """What a writer log says: acknowledged commits (time, id) in order, the
    number of failed attempts, and the longest interval between two
    consecutive acknowledged commits with its bounds."""
    oks, errors = [], 0
    for line in lines:
        f = line.split()
        if len(f) < 3:
            continue  # a line cut short when the writer was stopped
        if f[1] == "ok":
            oks.append((float(f[0]), int(f[2])))
        else:
            errors += 1
    gap, start, end = 0.0, None, None
    for (t0, _), (t1, _) in zip(oks, oks[1:]):
        if t1 - t0 > gap:
            gap, start, end = t1 - t0, t0, t1
    return {"oks": oks, "errors": errors, "max_gap": gap, "gap_start": start, "gap_end": end}


def read_log(path):
    with open(path) as f:
        return analyze(f)


def lost_rows(port, tag, ids):
    """Acknowledged ids of run tag that the server on 127.0.0.1:port lacks."""
    conn = psycopg2.connect(connect_timeout=5, **dsn(port))
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM bench_writes WHERE tag = %s", (tag,))
        present = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    return sorted(set(ids) - present)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    r = sp.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--tag", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--interval", type=float, default=0.01)
    r.add_argument("--max-seconds", type=float, default=300)
    r.add_argument("--connect-timeout", type=float, default=1.0)
    r.add_argument("--statement-timeout", type=float, default=2.0)
    s = sp.add_parser("setup")
    s.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    {"run": run, "setup": setup}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
