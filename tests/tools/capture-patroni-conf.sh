#!/bin/bash
# Capture, from a real 2-node Patroni 3.0.2 cluster, the files Patroni writes for PostgreSQL
# (postgresql.conf, pg_hba.conf, pg_ident.conf, the pgpass file) and the postmaster's command line, and
# store them as test data under tests/data/patroni-3.0.2/pgconf/ (README.md written there) for
# tests/unit/test_pg_conf.c.
#
# What it does (everything on 127.0.0.1, all waits bounded):
#   1. starts a 1-node etcd (v3 API) and Patroni pg-1, waits until it leads, then pg.B-2 (a name that
#      exercises the slot-name mapping); bootstrap.dcs is the seed guide's section; the local files add
#      a few parameters (quotes, backslashes, a boolean, a float, a dotted name), recovery_conf,
#      pg_hba and pg_ident, a replication password with ':' and '\';
#   2. once pg.B-2 streams, saves per node into <out>/<node>/: postgresql.conf, pg_hba.conf,
#      pg_ident.conf, pgpass, cmdline (/proc/<postmaster>/cmdline, NUL -> space, no newline),
#      controldata.txt (pg_controldata), patroni.yml (the exact file used); plus <out>/config.json
#      (the DCS config key) and <out>/pg_settings.tsv (the leader's pg_settings before the edit);
#   3. `patronictl edit-config` lowers max_connections 200 -> 100 and changes/removes a few other
#      parameters; waits until both nodes logged the change, restarts pg.B-2 only (its pg_controldata
#      still says 200, so Patroni starts it with 200 and pending_restart), and saves into
#      <out>/after-edit/: config.json, pg-1/postgresql.conf, pg-1/changed-lines.txt (the primary's
#      "Changed ..." log lines), pg.B-2/{postgresql.conf,cmdline,controldata.txt,changed-lines.txt,
#      rest-patroni.json};
#   4. stops everything it started, by PID (trap on exit, also on failure).
#
# Run as root on Debian 12 with the packages patroni (3.0.2), etcd-server, etcd-client, postgresql-15.
# Env: OUT (default <repo>/tests/data/patroni-3.0.2/pgconf; its content is replaced), RUN_DIR (default:
#      mktemp -d under /tmp), KEEP_RUN_DIR=1 (keep logs/data after success), READY_TIMEOUT (s, default
#      180), ETCD_PORT ETCD_PEER_PORT API_PORT_BASE PG_PORT_BASE (node i uses BASE+i).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$REPO/tests/data/patroni-3.0.2/pgconf}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
PATRONI=/usr/bin/patroni
PATRONICTL=/usr/bin/patronictl
RUN_AS=postgres
READY_TIMEOUT=${READY_TIMEOUT:-180}
ETCD_PORT=${ETCD_PORT:-23579}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-23580}
API_PORT_BASE=${API_PORT_BASE:-28200} # node 1 -> 28201, node 2 -> 28202
PG_PORT_BASE=${PG_PORT_BASE:-25600}   # node 1 -> 25601, node 2 -> 25602
NAMESPACE=/db/
SCOPE=prod-pg
PREFIX=/db/prod-pg/
NODES="1 2"
SUPERPASS=capturesuper
REPLPASS='rep:pa\ss' # pgpass escaping

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL/Patroni are started as $RUN_AS via setpriv)"
for b in "$PY" "$PATRONI" "$PATRONICTL" etcd etcdctl "$PG_BIN/postgres" curl setpriv ss; do
  command -v "$b" >/dev/null || die "missing $b"
done

node_name() { case $1 in 1) echo pg-1 ;; 2) echo pg.B-2 ;; esac; }
api_port() { echo $((API_PORT_BASE + $1)); }
pg_port() { echo $((PG_PORT_BASE + $1)); }
port_busy() { ss -Hltn "sport = :$1" | grep -q .; }
for p in "$ETCD_PORT" "$ETCD_PEER_PORT" $(for i in $NODES; do echo "$(api_port "$i") $(pg_port "$i")"; done); do
  port_busy "$p" && die "127.0.0.1:$p is already in use (override the *_PORT* variables)"
done

if [ -z "${RUN_DIR:-}" ]; then RUN_DIR=$(mktemp -d /tmp/pgkeel-capture-conf.XXXXXX); else mkdir -p "$RUN_DIR"; fi
[ -z "$(ls -A "$RUN_DIR")" ] || die "RUN_DIR $RUN_DIR is not empty"
chmod 755 "$RUN_DIR"
node_dir() { echo "$RUN_DIR/n$1"; }
node_cfg() { echo "$RUN_DIR/n$1.yml"; }
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
# bootstrap.dcs: the seed guide's section (/work/shared/seed/ha-stack-guide.txt), verbatim.
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

for i in $NODES; do
  d=$(node_dir "$i")
  mkdir -p "$d"
  cat >"$(node_cfg "$i")" <<EOF
scope: $SCOPE
namespace: $NAMESPACE
name: $(node_name "$i")
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
    replication: {username: replicator, password: '$REPLPASS'}
  parameters:
    unix_socket_directories: '$d'
    shared_buffers: 32MB
    work_mem: 8MB
    log_connections: on
    checkpoint_completion_target: 0.85
    log_line_prefix: "%m [%p] it's \\\\ "
    max_connections: 999
    custom.option: 'a b'
  recovery_conf:
    restore_command: 'cp /nonexistent/%f "%p"'
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
  pg_ident:
  - "# MAPNAME SYSTEM-USERNAME PG-USERNAME"
  - mymap root postgres
tags: {}
EOF
done
chown -R "$RUN_AS:" "$RUN_DIR"
chmod 700 "$RUN_DIR"/n?

psql_node() { PGPASSWORD=$SUPERPASS PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -h 127.0.0.1 -p "$(pg_port "$1")" -U postgres -d postgres -XAtq "${@:2}"; }
rest_get() { curl -s -m 5 "http://127.0.0.1:$(api_port "$1")$2"; }
postmaster_pid() { head -n1 "$(node_dir "$1")/data/postmaster.pid" 2>/dev/null; }

# wait_until <seconds> <description> <command...>
wait_until() {
  local t=$1 what=$2 deadline=$((SECONDS + $1)); shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timeout after $t s waiting for: $what (logs in $RUN_DIR)"
    sleep 0.5
  done
  log "ok: $what"
}

leader_is_1() {
  [ "$("${ETCDCTL[@]}" get --print-value-only "${PREFIX}leader" 2>/dev/null)" = pg-1 ] &&
    [ "$(psql_node 1 -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]
}
# pg.B-2 streams from pg-1 as the synchronous standby, and pg-1's conf names it
steady() {
  [ "$(psql_node 1 -c "select state || ':' || sync_state from pg_stat_replication where application_name = 'pg.B-2'" 2>/dev/null)" = streaming:sync ] || return 1
  grep -q '^synchronous_standby_names' "$(node_dir 1)/data/postgresql.conf" || return 1
  case "$(rest_get 2 /patroni)" in *'"state": "running"'*) ;; *) return 1 ;; esac
  [ -s "$(node_dir 2)/pgpass" ]
}

# save_node <i> <dir> [what...]: copies of the files Patroni wrote (mode 644)
save_node() {
  local i=$1 dir=$2 d f pid; shift 2
  d=$(node_dir "$i")
  mkdir -p "$dir"
  for f in "$@"; do
    case $f in
      postgresql.conf | pg_hba.conf | pg_ident.conf)
        [ -f "$d/data/$f" ] && cp "$d/data/$f" "$dir/$f" ;;
      pgpass)
        [ -f "$d/pgpass" ] && { cp "$d/pgpass" "$dir/pgpass"; stat -c '%a' "$d/pgpass" >"$dir/pgpass.mode"; } ;;
      cmdline)
        pid=$(postmaster_pid "$i")
        [ -n "$pid" ] || die "no postmaster.pid on node $i"
        tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/ $//' | tr -d '\n' >"$dir/cmdline" ;;
      controldata.txt)
        "${AS_USER[@]}" "$PG_BIN/pg_controldata" "$d/data" >"$dir/controldata.txt" ;;
      patroni.yml)
        cp "$(node_cfg "$i")" "$dir/patroni.yml" ;;
    esac
  done
  chmod 644 "$dir"/*
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

rm -rf "$OUT"
mkdir -p "$OUT"

t0=$SECONDS
"${AS_USER[@]}" "$PATRONI" "$(node_cfg 1)" >"$(node_dir 1)/patroni.log" 2>&1 &
PIDS_PATRONI+=($!)
wait_until "$READY_TIMEOUT" "pg-1 leads" leader_is_1
"${AS_USER[@]}" "$PATRONI" "$(node_cfg 2)" >"$(node_dir 2)/patroni.log" 2>&1 &
PIDS_PATRONI+=($!)
wait_until "$READY_TIMEOUT" "pg.B-2 streams as the synchronous standby" steady
sleep 2 # let both finish the cycle that wrote their files

# --- capture 1: primary + replica ----------------------------------------------------------------------
ALL=(postgresql.conf pg_hba.conf pg_ident.conf pgpass cmdline controldata.txt patroni.yml)
save_node 1 "$OUT/pg-1" "${ALL[@]}"
save_node 2 "$OUT/pg.B-2" "${ALL[@]}"
"${ETCDCTL[@]}" get --print-value-only "${PREFIX}config" | head -c -1 >"$OUT/config.json"
psql_node 1 -F $'\t' -c "select name, setting, coalesce(unit, ''), vartype, context from pg_settings order by name" >"$OUT/pg_settings.tsv"
rest_get 2 /patroni >"$OUT/pg.B-2/rest-patroni.json"

# --- edit-config: lower max_connections, change others, remove archive_command -------------------------
grep -c 'Changed ' "$(node_dir 1)/patroni.log" >/dev/null && die "pg-1 logged 'Changed' before the edit"
log "edit-config"
ctl edit-config --force \
  --set postgresql.parameters.max_connections=100 \
  --set postgresql.parameters.checkpoint_timeout=10min \
  --set postgresql.parameters.track_io_timing=on \
  --set postgresql.parameters.wal_keep_size=1GB \
  --set postgresql.parameters.archive_command=null >"$RUN_DIR/edit-config.out" 2>&1 ||
  { cat "$RUN_DIR/edit-config.out" >&2; die "edit-config failed"; }
reloaded() { grep -q 'Reloading PostgreSQL configuration' "$(node_dir "$1")/patroni.log"; }
wait_until 60 "pg-1 reloaded" reloaded 1
wait_until 60 "pg.B-2 reloaded" reloaded 2
log "restart pg.B-2"
ctl restart "$SCOPE" pg.B-2 --force >"$RUN_DIR/restart.out" 2>&1 || { cat "$RUN_DIR/restart.out" >&2; die "restart failed"; }
restarted() {
  case "$(rest_get 2 /patroni)" in *'"state": "running"'*'"pending_restart": true'* | *'"pending_restart": true'*'"state": "running"'*) ;; *) return 1 ;; esac
  [ "$(psql_node 2 -c 'show max_connections' 2>/dev/null)" = 200 ]
}
wait_until "$READY_TIMEOUT" "pg.B-2 running again with max_connections 200 and pending_restart" restarted
sleep 2
A=$OUT/after-edit
save_node 1 "$A/pg-1" postgresql.conf
save_node 2 "$A/pg.B-2" postgresql.conf cmdline controldata.txt
"${ETCDCTL[@]}" get --print-value-only "${PREFIX}config" | head -c -1 >"$A/config.json"
for i in $NODES; do
  n=$(node_name "$i")
  sed -n 's/^.* INFO: \(Changed .*\)$/\1/p' "$(node_dir "$i")/patroni.log" >"$A/$n/changed-lines.txt"
done
rest_get 2 /patroni >"$A/pg.B-2/rest-patroni.json"
chmod 644 "$OUT"/*.* "$A"/*.* "$A"/*/*

# --- README ---------------------------------------------------------------------------------------------------
PATRONI_VER=$("$PATRONI" --version 2>&1)
PG_VER=$("$PG_BIN/postgres" --version)
cat >"$OUT/README.md" <<EOF
# Patroni 3.0.2 configuration files (PostgreSQL 15)

What a real Patroni wrote for PostgreSQL, for pgkeel's core/pg_conf.c tests (tests/unit/test_pg_conf.c).
Produced by \`tests/tools/capture-patroni-conf.sh\` (run it as root on Debian 12 to regenerate; it
replaces this folder).

- captured: $(date -u +%Y-%m-%dT%H:%M:%SZ); \`$PATRONI_VER\`, \`$PG_VER\`, etcd v3 on 127.0.0.1:$ETCD_PORT
- scope \`prod-pg\`, namespace \`/db/\`; members \`pg-1\` (primary, PostgreSQL port $(pg_port 1)) and \`pg.B-2\`
  (replica, port $(pg_port 2), slot name \`pg_b_2\`); synchronous_mode from the seed's bootstrap.dcs.
- Data directories and the pgpass files lived under the capture's temporary run directory; the paths
  in the files are the ones of that run (see each \`patroni.yml\`).

| file | what |
| --- | --- |
| \`<node>/patroni.yml\` | the exact configuration file the node ran with |
| \`config.json\` | the DCS \`config\` key (bootstrap.dcs as stored) |
| \`<node>/postgresql.conf\`, \`pg_hba.conf\`, \`pg_ident.conf\` | as Patroni wrote them into the data directory |
| \`<node>/pgpass\`, \`pgpass.mode\` | the \`postgresql.pgpass\` file and its octal mode (a file exists only where Patroni wrote one) |
| \`<node>/cmdline\` | the postmaster's \`/proc/<pid>/cmdline\`, NUL → space, no trailing newline |
| \`<node>/controldata.txt\` | \`pg_controldata\` of the data directory at capture time |
| \`pg.B-2/rest-patroni.json\` | \`GET /patroni\` of the replica |
| \`pg_settings.tsv\` | the primary's \`select name, setting, coalesce(unit, ''), vartype, context from pg_settings\`, before the edit |
| \`after-edit/config.json\` | the \`config\` key after \`patronictl edit-config --set postgresql.parameters.max_connections=100 --set ...checkpoint_timeout=10min --set ...track_io_timing=on --set ...wal_keep_size=1GB --set ...archive_command=null\` |
| \`after-edit/<node>/changed-lines.txt\` | the \`Changed ...\` lines each node logged for that edit (message text after \`INFO: \`) |
| \`after-edit/pg-1/postgresql.conf\` | the primary's file as last rewritten (not restarted): with the edited parameters, and without synchronous_standby_names, which it dropped while pg.B-2 restarted |
| \`after-edit/pg.B-2/*\` | the replica after \`patronictl restart prod-pg pg.B-2\`: pg_controldata still records max_connections 200, so Patroni started it with 200 (file and command line) and reports \`pending_restart\` |
EOF

log "done in $((SECONDS - t0)) s; files:"
(cd "$OUT" && find . -type f | sort | xargs ls -l >&2)
