#!/bin/bash
# Capture, from a real Patroni 3.0.2 cluster, the exact values Patroni writes into etcd v3, and store them
# as test data under tests/data/patroni-3.0.2/ (see the README.md written there).
#
# What it does (everything on 127.0.0.1, all waits bounded):
#   1. starts a 1-node etcd (v3 API) and 3 Patroni nodes pg-1..pg-3 (namespace /db/, scope prod-pg) whose
#      bootstrap.dcs is the seed guide's section (also written verbatim to bootstrap-dcs.yml);
#   2. waits for leader + 2 streaming replicas + a synchronous standby, dumps the DCS (etcdctl -w json and
#      one decoded file per key), the leader's patroni.dynamic.json, `patronictl list`, GET /patroni;
#   3. `patronictl switchover --force` to the synchronous standby, waits for the new leader, the
#      `failover` ({}) and `history` keys and the new `sync`, dumps again into after-switchover/;
#   4. `patronictl edit-config --set failsafe_mode=true --force`, waits for the `failsafe` key, dumps into
#      after-failsafe/;
#   5. stops everything it started, by PID (trap on exit, also on failure).
#
# Run as root on Debian 12 with the packages patroni (3.0.2), etcd-server, etcd-client, postgresql-15.
# Env: OUT (output dir, default <repo>/tests/data/patroni-3.0.2), RUN_DIR (default: mktemp -d under /tmp),
#      KEEP_RUN_DIR=1 (keep logs/data after success), READY_TIMEOUT (s, default 240),
#      ETCD_PORT ETCD_PEER_PORT API_PORT_BASE PG_PORT_BASE (node i uses BASE+i).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$REPO/tests/data/patroni-3.0.2}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
PATRONI=/usr/bin/patroni
PATRONICTL=/usr/bin/patronictl
RUN_AS=postgres
READY_TIMEOUT=${READY_TIMEOUT:-240}
ETCD_PORT=${ETCD_PORT:-23479}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-23480}
API_PORT_BASE=${API_PORT_BASE:-28100}   # pg-1 -> 28101 ...
PG_PORT_BASE=${PG_PORT_BASE:-25500}     # pg-1 -> 25501 ...
NAMESPACE=/db/
SCOPE=prod-pg
PREFIX=/db/prod-pg/
NODES="1 2 3"
SUPERPASS=capturesuper
REPLPASS=capturerepl

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL/Patroni are started as $RUN_AS via setpriv)"
for b in "$PY" "$PATRONI" "$PATRONICTL" etcd etcdctl "$PG_BIN/postgres" curl setpriv ss; do
  command -v "$b" >/dev/null || die "missing $b"
done

api_port() { echo $((API_PORT_BASE + $1)); }
pg_port() { echo $((PG_PORT_BASE + $1)); }
port_busy() { ss -Hltn "sport = :$1" | grep -q .; }
for p in "$ETCD_PORT" "$ETCD_PEER_PORT" $(for i in $NODES; do echo "$(api_port "$i") $(pg_port "$i")"; done); do
  port_busy "$p" && die "127.0.0.1:$p is already in use (override the *_PORT* variables)"
done

if [ -z "${RUN_DIR:-}" ]; then RUN_DIR=$(mktemp -d /tmp/pgkeel-capture.XXXXXX); else mkdir -p "$RUN_DIR"; fi
[ -z "$(ls -A "$RUN_DIR")" ] || die "RUN_DIR $RUN_DIR is not empty"
chmod 755 "$RUN_DIR"
node_dir() { echo "$RUN_DIR/pg-$1"; }
node_cfg() { echo "$RUN_DIR/pg-$1.yml"; }
AS_USER=(setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups env HOME="$RUN_DIR" PATH=/usr/bin:/bin LANG=C.UTF-8)
ETCDCTL=(env ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$ETCD_PORT" --command-timeout=5s)
ctl() { "$PATRONICTL" -c "$(node_cfg 1)" "$@"; }

# ---------------------------------------------------------------------------------------------------
# Teardown: only the PIDs started here (patroni: SIGTERM, it stops its postmaster; leftover postmasters
# from postmaster.pid: SIGINT; etcd: SIGTERM), each bounded, then SIGKILL.
PIDS_PATRONI=()
PID_ETCD=
stop_pid() { # <pid> <signal> <seconds>
  local pid=$1 i
  kill "-$2" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $3 * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "pid $pid still alive after $3 s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2
}
# is <pid> alive and is its command line containing <string>?
pid_is() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }
teardown() {
  local rc=$? pid i
  set +e
  for pid in "${PIDS_PATRONI[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS_PATRONI[@]}"; do pid_is "$pid" patroni && { log "stopping patroni $pid"; stop_pid "$pid" TERM 60; }; done
  for i in $NODES; do
    pid=$(head -n1 "$(node_dir "$i")/data/postmaster.pid" 2>/dev/null)
    [ -n "$pid" ] && pid_is "$pid" "$(node_dir "$i")/data" && { log "stopping leftover postmaster $pid"; stop_pid "$pid" INT 30; }
  done
  [ -n "$PID_ETCD" ] && pid_is "$PID_ETCD" etcd && { log "stopping etcd $PID_ETCD"; stop_pid "$PID_ETCD" TERM 10; }
  if [ "$rc" = 0 ] && [ "${KEEP_RUN_DIR:-0}" != 1 ]; then rm -rf "$RUN_DIR"; else log "run dir kept: $RUN_DIR"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# bootstrap.dcs, verbatim from the seed guide (/work/shared/seed/ha-stack-guide.txt), as the YAML value
# of bootstrap.dcs. Written as-is to $OUT/bootstrap-dcs.yml and indented under `bootstrap: dcs:`.
BOOTSTRAP_DCS="ttl: 30
loop_wait: 10
retry_timeout: 10
maximum_lag_on_failover: 1048576
synchronous_mode: true
synchronous_mode_strict: false
postgresql:
  use_pg_rewind: true
  use_slots: true
  parameters:
    max_connections: 200
    max_wal_senders: 10
    wal_keep_size: 512MB
    max_replication_slots: 10
    wal_level: replica
    hot_standby: on
    archive_mode: on
    archive_command: 'wal-g wal-push %p'
"

node_tags() {
  case $1 in
    1) echo "tags: {}" ;;
    2) printf 'tags:\n  nofailover: false\n  noloadbalance: false\n  clonefrom: false\n  nosync: false\n' ;;
    3) printf 'tags:\n  dc: dc3\n' ;;
  esac
}

for i in $NODES; do
  d=$(node_dir "$i")
  mkdir -p "$d"
  cat >"$(node_cfg "$i")" <<EOF
scope: $SCOPE
namespace: $NAMESPACE
name: pg-$i
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$(api_port "$i")
  connect_address: 127.0.0.1:$(api_port "$i")
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
$(printf '%s' "$BOOTSTRAP_DCS" | sed 's/^/    /')
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  - data-checksums
postgresql:
  listen: 127.0.0.1:$(pg_port "$i")
  connect_address: 127.0.0.1:$(pg_port "$i")
  data_dir: $d/data
  bin_dir: $PG_BIN
  pgpass: $d/pgpass
  authentication:
    superuser: {username: postgres, password: $SUPERPASS}
    replication: {username: replicator, password: $REPLPASS}
  parameters:
    unix_socket_directories: '$d'
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
$(node_tags "$i")
EOF
done
chown -R "$RUN_AS:" "$RUN_DIR"
chmod 700 "$RUN_DIR"/pg-?

# ---------------------------------------------------------------------------------------------------
# helpers: DCS reads (decoded through python so values keep their exact bytes)
cat >"$RUN_DIR/kv.py" <<'PYEOF'
import base64, json, os, sys

def load(path):
    with open(path, 'rb') as f:
        return json.loads(f.read())

def kvs(doc, prefix):
    for kv in doc.get('kvs') or []:
        k = base64.b64decode(kv['key']).decode()
        assert k.startswith(prefix), k
        yield k[len(prefix):], base64.b64decode(kv.get('value', '')), kv

cmd = sys.argv[1]
if cmd == 'get':        # get <dump> <prefix> <key> -> raw value on stdout, exit 1 if absent
    for k, v, _ in kvs(load(sys.argv[2]), sys.argv[3]):
        if k == sys.argv[4]:
            sys.stdout.buffer.write(v)
            sys.exit(0)
    sys.exit(1)
elif cmd == 'json':     # json <dump> <prefix> <key> <python expr over x> -> print(expr), exit 1 if absent/fails
    for k, v, _ in kvs(load(sys.argv[2]), sys.argv[3]):
        if k == sys.argv[4]:
            try:
                x = json.loads(v)
                r = eval(sys.argv[5], {'x': x})
            except Exception:
                sys.exit(1)
            print('' if r is None else r)
            sys.exit(0)
    sys.exit(1)
elif cmd == 'explode':  # explode <dump> <prefix> <outdir> [key...] -> one file per key (all keys if none given)
    want = set(sys.argv[5:])
    for k, v, kv in kvs(load(sys.argv[2]), sys.argv[3]):
        if want and k not in want:
            continue
        name = k if k in ('leader', 'initialize') else k + '.json'
        p = os.path.join(sys.argv[4], name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(v)
        print('%-22s mod_revision=%-4s lease=%s %s' % (k, kv.get('mod_revision'), kv.get('lease', 0), v.decode()),
              file=sys.stderr)
elif cmd == 'pretty':   # pretty <dump> <prefix>: human-readable listing
    for k, v, kv in kvs(load(sys.argv[2]), sys.argv[3]):
        print(k, kv.get('mod_revision'), kv.get('lease', 0), v.decode())
PYEOF

SNAP=$RUN_DIR/snap.json
snap() { "${ETCDCTL[@]}" get --prefix "$PREFIX" -w json >"$SNAP.tmp" 2>/dev/null && mv "$SNAP.tmp" "$SNAP"; }
kv() { "$PY" "$RUN_DIR/kv.py" get "$SNAP" "$PREFIX" "$1"; }
kvj() { "$PY" "$RUN_DIR/kv.py" json "$SNAP" "$PREFIX" "$1" "$2"; }
psql_node() { PGPASSWORD=$SUPERPASS PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -h 127.0.0.1 -p "$(pg_port "$1")" -U postgres -d postgres -XAtq "${@:2}"; }
name_idx() { echo "${1#pg-}"; }
rest_get() { curl -s -m 5 "http://127.0.0.1:$(api_port "$(name_idx "$1")")$2"; }

# wait_until <seconds> <description> <command...>
wait_until() {
  local t=$1 what=$2 deadline=$((SECONDS + $1)); shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timeout after $t s waiting for: $what (logs in $RUN_DIR)"
    sleep 0.5
  done
  log "ok: $what"
}

# a stable cluster: leader key = L (global), members all running, the replicas with xlog_location,
# sync key {leader: L, sync_standby: S} (S global), status key present, 2 streaming walsenders on L
# of which S is 'sync'. $1: expected leader name or empty.
LEADER= SYNC_STANDBY=
cluster_steady() {
  local want=${1:-} m st q n
  snap || return 1
  LEADER=$(kv leader) || return 1
  [ -z "$want" ] || [ "$LEADER" = "$want" ] || return 1
  for n in $NODES; do
    m=members/pg-$n
    st=$(kvj "$m" 'x["state"] + ":" + x["role"] + ":" + str("xlog_location" in x)') || return 1
    if [ "pg-$n" = "$LEADER" ]; then [ "$st" = "running:master:True" ] || return 1
    else [ "$st" = "running:replica:True" ] || return 1; fi
  done
  SYNC_STANDBY=$(kvj sync 'x["sync_standby"] if x.get("leader") == "'"$LEADER"'" else None') || return 1
  [ -n "$SYNC_STANDBY" ] || return 1
  kv status >/dev/null || return 1
  q="select count(*) filter (where state = 'streaming') || ':' ||
       string_agg(case when sync_state = 'sync' then application_name end, ',')
     from pg_stat_replication"
  q=$(psql_node "$(name_idx "$LEADER")" -c "$q" 2>/dev/null) || return 1
  [ "$q" = "2:$SYNC_STANDBY" ] || return 1
  # the synchronous standby has seen the sync key too (its GET /patroni carries "sync_standby": true)
  case "$(rest_get "$SYNC_STANDBY" /patroni)" in *'"sync_standby": true'*) return 0 ;; *) return 1 ;; esac
}

# dump <outdir> <tag> [keys...]: etcdctl -w json dump + decoded files
dump() {
  local dir=$1 tag=$2; shift 2
  mkdir -p "$dir"
  "${ETCDCTL[@]}" get --prefix "$PREFIX" -w json >"$OUT/etcd-range-$tag.json.tmp"
  # etcdctl ends its JSON output with a newline; store its output exactly (single line + newline)
  mv "$OUT/etcd-range-$tag.json.tmp" "$OUT/etcd-range-$tag.json"
  # the same snapshot as the etcd gRPC-gateway returns it (the JSON/HTTP API Patroni's etcd3 client uses:
  # POST /v3/kv/range with base64 key/range_end and serializable; plus "revision" = the etcdctl dump's
  # header revision so both files show the same data). int64 fields are JSON strings here.
  local rev body
  rev=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["header"]["revision"])' "$OUT/etcd-range-$tag.json")
  body=$("$PY" -c 'import base64, json, sys
k = sys.argv[1].encode(); e = k[:-1] + bytes([k[-1] + 1])
print(json.dumps({"key": base64.b64encode(k).decode(), "range_end": base64.b64encode(e).decode(),
                  "serializable": True, "revision": int(sys.argv[2])}))' "$PREFIX" "$rev")
  curl -s -m 5 -X POST "http://127.0.0.1:$ETCD_PORT/v3/kv/range" -d "$body" >"$OUT/etcd-gateway-range-$tag.json"
  log "dump $tag:"
  "$PY" "$RUN_DIR/kv.py" explode "$OUT/etcd-range-$tag.json" "$PREFIX" "$dir" "$@"
}

# ---------------------------------------------------------------------------------------------------
log "run dir $RUN_DIR, output $OUT"
"${AS_USER[@]}" etcd --name capture-etcd --data-dir "$RUN_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "capture-etcd=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
  >"$RUN_DIR/etcd.log" 2>&1 &
PID_ETCD=$!
wait_until 20 "etcd healthy" "${ETCDCTL[@]}" endpoint health
"${ETCDCTL[@]}" get --prefix / --keys-only | grep -q . && die "etcd on $ETCD_PORT is not empty (not ours?)"

# replace only what this script writes; pgconf/ belongs to capture-patroni-conf.sh
find "$OUT" -mindepth 1 -maxdepth 1 ! -name pgconf -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$OUT"
printf '%s' "$BOOTSTRAP_DCS" >"$OUT/bootstrap-dcs.yml"

t0=$SECONDS
for i in $NODES; do
  "${AS_USER[@]}" "$PATRONI" "$(node_cfg "$i")" >"$(node_dir "$i")/patroni.log" 2>&1 &
  PIDS_PATRONI+=($!)
  sleep 1   # deterministic-ish order: pg-1 normally wins the initialize race
done
wait_until "$READY_TIMEOUT" "leader + 2 streaming replicas + sync standby" cluster_steady
log "bootstrap took $((SECONDS - t0)) s; leader $LEADER, sync standby $SYNC_STANDBY"

# --- dump 1: after bootstrap --------------------------------------------------------------------------
dump "$OUT" bootstrap
L1=$LEADER S1=$SYNC_STANDBY
cp "$(node_dir "$(name_idx "$L1")")/data/patroni.dynamic.json" "$OUT/dynamic.json"
chmod 644 "$OUT/dynamic.json"
ctl list >"$OUT/patronictl-list.txt" 2>&1
rest_get "$L1" /patroni >"$OUT/rest-patroni-leader.json"
rest_get "$S1" /patroni >"$OUT/rest-patroni-replica.json"
for n in $NODES; do
  if [ "pg-$n" != "$L1" ] && [ "pg-$n" != "$S1" ]; then rest_get "pg-$n" /patroni >"$OUT/rest-patroni-replica-async.json"; fi
done
"$PY" -c 'import json, sys, yaml
a = json.load(open(sys.argv[1])); b = yaml.safe_load(open(sys.argv[2]))
sys.exit(0 if a == b else "config.json != bootstrap-dcs.yml: %r vs %r" % (a, b))' "$OUT/config.json" "$OUT/bootstrap-dcs.yml"
log "config.json == bootstrap-dcs.yml (as parsed by PyYAML)"

# --- switchover to the synchronous standby ---------------------------------------------------------------
log "switchover $L1 -> $S1"
ctl switchover --leader "$L1" --candidate "$S1" --force >"$RUN_DIR/switchover.out" 2>&1 || { cat "$RUN_DIR/switchover.out" >&2; die "switchover failed"; }
cat "$RUN_DIR/switchover.out" >&2
after_switchover() {
  cluster_steady "$S1" || return 1
  [ "$(kv failover)" = "{}" ] || return 1
  kv history >/dev/null
}
wait_until "$READY_TIMEOUT" "new leader $S1 + 2 streaming replicas + new sync standby + failover {} + history" after_switchover
L2=$LEADER S2=$SYNC_STANDBY
dump "$OUT/after-switchover" after-switchover
ctl list >"$OUT/after-switchover/patronictl-list.txt" 2>&1

# --- failsafe_mode ------------------------------------------------------------------------------------------
log "edit-config failsafe_mode=true"
ctl edit-config --set failsafe_mode=true --force >"$RUN_DIR/edit-config.out" 2>&1 || { cat "$RUN_DIR/edit-config.out" >&2; die "edit-config failed"; }
failsafe_there() { snap && kv failsafe >/dev/null && [ "$(kv leader)" = "$L2" ]; }
wait_until 60 "failsafe key" failsafe_there
dump "$OUT/after-failsafe" after-failsafe config failsafe
# the daemon saves its cache file right after the HA cycle that wrote the failsafe key
DYN2=$(node_dir "$(name_idx "$L2")")/data/patroni.dynamic.json
wait_until 30 "failsafe_mode in the leader's patroni.dynamic.json" grep -qF '"failsafe_mode": true' "$DYN2"
cp "$DYN2" "$OUT/after-failsafe/dynamic.json"
chmod 644 "$OUT/after-failsafe/dynamic.json"

# --- README ---------------------------------------------------------------------------------------------------
PATRONI_VER=$("$PATRONI" --version 2>&1)
ETCD_VER=$(etcd --version 2>&1 | head -n1)
PG_VER=$("$PG_BIN/postgres" --version)
PYETCD=$(dpkg-query -W -f '${Package} ${Version}, ' patroni python3-urllib3 python3-yaml 2>/dev/null || true)
cat >"$OUT/README.md" <<EOF
# Patroni 3.0.2 DCS capture (etcd v3)

Exact values a real Patroni cluster wrote into etcd, for pgkeel's DCS/etcd3 tests. Produced by
\`tests/tools/capture-patroni.sh\` (run it as root on Debian 12 to regenerate; it overwrites this folder).

- captured: $(date -u +%Y-%m-%dT%H:%M:%SZ)
- Patroni: \`$PATRONI_VER\` (Debian packages: ${PYETCD}Python $(/usr/bin/python3 -V 2>&1 | cut -d' ' -f2))
- etcd: \`$ETCD_VER\`, accessed by Patroni through the etcd3 (gRPC-gateway) client; one etcd node
- PostgreSQL: \`$PG_VER\`
- namespace \`/db/\`, scope \`prod-pg\` → key prefix \`/db/prod-pg/\`; members pg-1, pg-2, pg-3, all on 127.0.0.1:
  REST API ports $(api_port 1)/$(api_port 2)/$(api_port 3), PostgreSQL ports $(pg_port 1)/$(pg_port 2)/$(pg_port 3), etcd $ETCD_PORT.
- tags: pg-1 none (\`tags: {}\`), pg-2 \`{nofailover: false, noloadbalance: false, clonefrom: false, nosync: false}\`
  (the seed guide's; all falsy, so they are dropped from the member data), pg-3 \`{dc: dc3}\`.
- timeline of the run: bootstrap (leader **$L1**, synchronous standby **$S1**) → \`patronictl switchover --leader
  $L1 --candidate $S1 --force\` (new leader **$L2**, new synchronous standby **$S2**) → \`patronictl edit-config
  --set failsafe_mode=true --force\`.

Values are stored byte-for-byte as read from etcd (decoded from the base64 of \`etcdctl -w json\`), with no
trailing newline added.

| file | what |
| --- | --- |
| \`bootstrap-dcs.yml\` | the \`bootstrap.dcs\` section given to Patroni, as the YAML value of \`bootstrap.dcs\` (i.e. de-indented; the seed guide's section). Note PyYAML (YAML 1.1) reads \`on\` as boolean \`true\`. |
| \`etcd-range-bootstrap.json\` | \`ETCDCTL_API=3 etcdctl get --prefix /db/prod-pg/ -w json\` right after bootstrap: header (cluster_id, member_id, revision, raft_term), \`kvs\` with base64 key/value, create_revision, mod_revision, version, lease (only on lease-bound keys), count. Exact etcdctl output (one line + newline). |
| \`etcd-gateway-range-*.json\` | the same snapshots (same revision) as returned by etcd's gRPC-gateway, \`POST /v3/kv/range\` with body \`{"key": b64("/db/prod-pg/"), "range_end": b64("/db/prod-pg0"), "serializable": true, "revision": <header revision of the etcdctl dump>}\` — the JSON API Patroni's etcd3 client (and pgkeel) talks. Unlike etcdctl, int64/uint64 fields (revisions, lease, cluster_id, count) are JSON **strings** and zero/false fields are omitted. Exact bytes of the response (no trailing newline). |
| \`config.json\` | \`config\` key after bootstrap (written by the bootstrapping node, compact JSON, before any edit) |
| \`dynamic.json\` | \`<data_dir>/patroni.dynamic.json\` of the leader after bootstrap (Patroni's cache of the dynamic config; \`json.dump\` default spacing) |
| \`initialize\` | \`initialize\` key (system identifier) |
| \`leader\` | \`leader\` key (member name; lease-bound) |
| \`members/pg-N.json\` | member keys after bootstrap (leader: role master, replicas: role replica; all state running; lease-bound) |
| \`status.json\`, \`sync.json\` | \`status\` and \`sync\` keys after bootstrap |
| \`patronictl-list.txt\` | \`patronictl -c pg-1.yml list\` at the first dump (stdout+stderr) |
| \`rest-patroni-leader.json\` | \`curl -s http://<leader rest>/patroni\` at the first dump |
| \`rest-patroni-replica.json\` | same, of the synchronous standby (has \`sync_standby: true\`) |
| \`rest-patroni-replica-async.json\` | same, of the other (asynchronous) replica |
| \`etcd-range-after-switchover.json\` | the etcdctl dump after the switchover completed (new leader running, 2 streaming replicas, new sync standby) |
| \`after-switchover/*\` | every key decoded from that dump: \`failover.json\` (\`{}\`, cleared by the daemon), \`history.json\`, \`sync.json\`, \`status.json\`, \`leader\`, \`members/*.json\`, and the unchanged \`config.json\`, \`initialize\`; plus \`patronictl-list.txt\` |
| \`etcd-range-after-failsafe.json\` | the etcdctl dump once the \`failsafe\` key appeared after \`edit-config --set failsafe_mode=true\` |
| \`after-failsafe/config.json\` | \`config\` key as rewritten by \`patronictl edit-config\` (Python default JSON spacing, not compact) |
| \`after-failsafe/failsafe.json\` | \`failsafe\` key written by the leader |
| \`after-failsafe/dynamic.json\` | the new leader's \`patroni.dynamic.json\` after the edit |
EOF

log "done in $((SECONDS - t0)) s; files:"
(cd "$OUT" && find . -type f | sort | xargs ls -l >&2)
