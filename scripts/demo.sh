#!/usr/bin/env bash
# The main job: a local 3-node pgkeel cluster on 127.0.0.1 with HAProxy in
# front, under one state folder, left running.
#
#   scripts/demo.sh [start]   install what is missing (root), build, start one
#                             etcd, three pgkeel nodes (PostgreSQL 15, run as
#                             the postgres user) and HAProxy; print the cluster
#                             table and the connection strings
#   scripts/demo.sh status    what runs, the cluster table, where HAProxy routes
#   scripts/demo.sh failover  SIGKILL the primary's pgkeel and postmaster, show
#                             the new leader taking over and the old one rejoining
#   scripts/demo.sh stop      stop everything start started (by its PID files)
#   scripts/demo.sh clean     stop, then remove the state folder
#
# Environment:
#   DEMO_DIR         the state folder (default /var/tmp/pgkeel-demo)
#   DEMO_PORT_BASE   first port of the block the demo uses (default 25000; the
#                    block is recorded in $DEMO_DIR/demo.env at the first start):
#                    +0 HAProxy writes (-> /leader), +1 HAProxy reads (-> /replica),
#                    +2 HAProxy stats page, +8..+10 the REST APIs of pg-1..pg-3,
#                    +379/+380 etcd client/peer, +432..+434 PostgreSQL of pg-1..pg-3.
#                    Below 32768, so never a port the kernel hands out as a
#                    free port (what the test suite uses).
#   PGKEEL_BUILDDIR  use this build tree instead of building build/demo
#   DEMO_SKIP_DEPS=1 do not check or install Debian packages
#
# Timing is the tests' fast profile (ttl 10, loop_wait 2, retry_timeout 3), so
# a failover is visible within seconds; production keeps Patroni's defaults.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
STATE=${DEMO_DIR:-/var/tmp/pgkeel-demo}
PG_BIN=/usr/lib/postgresql/15/bin
NODES=(1 2 3)
SCOPE=demo
NAMESPACE=/db/
TTL=10
LOOP_WAIT=2
RETRY_TIMEOUT=3
# Debian packages: scripts/test.sh's list (the build dependencies,
# postgresql-15, etcd-server, haproxy, patroni for patronictl) and these.
DEMO_PACKAGES=(haproxy curl)

# ------------------------------------------------------------------ output

say() { printf '%s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# wait_for WHAT SECONDS COMMAND...: run COMMAND every half second until it
# succeeds or SECONDS pass; shows the elapsed time while it waits.
wait_for() {
	local what=$1 limit=$2 start=$SECONDS last=-1 el
	shift 2
	while :; do
		el=$((SECONDS - start))
		if "$@" >/dev/null 2>&1; then
			if [ -t 1 ]; then printf '\r\033[K'; fi
			say "  $what: ok (${el}s)"
			return 0
		fi
		if [ "$el" -ge "$limit" ]; then
			if [ -t 1 ]; then printf '\r\033[K'; fi
			say "  $what: still not after ${limit}s" >&2
			return 1
		fi
		if [ -t 1 ]; then
			printf '\r\033[K  %s ... %ds' "$what" "$el"
		elif [ "$el" -ne "$last" ] && [ $((el % 5)) -eq 0 ] && [ "$el" -gt 0 ]; then
			say "  $what ... ${el}s"
			last=$el
		fi
		sleep 0.5
	done
}

# -------------------------------------------------------------- the state

load_state() {
	[ -f "$STATE/demo.env" ] || return 1
	# shellcheck source=/dev/null
	. "$STATE/demo.env"
}

new_state() {
	local base=${DEMO_PORT_BASE:-25000}

	case $base in '' | *[!0-9]*) die "DEMO_PORT_BASE must be a number" ;; esac
	{ [ "$base" -ge 1024 ] && [ "$base" -le 65000 ]; } || die "DEMO_PORT_BASE out of range: $base"
	mkdir -p "$STATE"
	chmod 755 "$STATE"
	umask 077
	cat >"$STATE/demo.env" <<EOF
# written by scripts/demo.sh at the first start; removed by 'demo.sh clean'
PORT_BASE=$base
SUPERUSER_PW=$(secret)
REPL_PW=$(secret)
ADMIN_PW=$(secret)
EOF
	umask 022
}

secret() { od -An -tx1 -N12 /dev/urandom | tr -d ' \n'; }

write_port() { echo $((PORT_BASE + 0)); }
read_port() { echo $((PORT_BASE + 1)); }
stats_port() { echo $((PORT_BASE + 2)); }
rest_port() { echo $((PORT_BASE + 7 + $1)); }
etcd_port() { echo $((PORT_BASE + 379)); }
etcd_peer_port() { echo $((PORT_BASE + 380)); }
pg_port() { echo $((PORT_BASE + 431 + $1)); }
node_dir() { echo "$STATE/pg-$1"; }

# ------------------------------------------------------- processes by PID

pidfile() { echo "$STATE/run/$1.pid"; }

# alive PID: the process exists and is not a zombie
alive() {
	local st
	[ -n "$1" ] && st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$st" != Z ]
}

# pid_of NAME: the recorded PID of NAME when it still runs the recorded
# program (a recycled PID is never signalled)
pid_of() {
	local f pid exe
	f=$(pidfile "$1")
	[ -f "$f" ] || return 1
	read -r pid exe <"$f" || return 1
	alive "$pid" || return 1
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || return 1
	echo "$pid"
}

# record NAME PID PROGRAM: wait (bounded) until PID runs PROGRAM, then keep it
record() {
	local name=$1 pid=$2 exe
	exe=$(readlink -f "$3")
	wait_exec() { [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; }
	if ! wait_for "$name started (pid $pid)" 10 wait_exec; then
		die "$name did not start; see $STATE/logs/$name.log"
	fi
	echo "$pid $exe" >"$(pidfile "$name")"
}

# launch NAME USER PROGRAM ARGS...: start PROGRAM in its own session, output
# to logs/NAME.log, as USER when we are root; records its PID
launch() {
	local name=$1 user=$2 prog=$3 pid
	shift 3
	if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then
		(cd / && exec setsid env -i PATH="$PG_BIN:/usr/bin:/bin" LANG=C.UTF-8 TZ=UTC \
			HOME="$(node_dir "${name#pg-}")" \
			setpriv --reuid="$user" --regid="$user" --init-groups "$prog" "$@" \
			</dev/null >>"$STATE/logs/$name.log" 2>&1) &
	else
		(cd / && exec setsid "$prog" "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1) &
	fi
	pid=$!
	record "$name" "$pid" "$prog"
}

# stop_pid NAME SIGNAL SECONDS: signal, wait, SIGKILL after SECONDS
stop_pid() {
	local name=$1 sig=$2 limit=$3 pid
	pid=$(pid_of "$name") || {
		rm -f "$(pidfile "$name")"
		return 0
	}
	kill -CONT "$pid" 2>/dev/null || true
	kill "-$sig" "$pid" 2>/dev/null || true
	gone() { ! alive "$pid"; }
	if ! wait_for "stopping $name (pid $pid, SIG$sig)" "$limit" gone; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_for "$name after SIGKILL" 10 gone || say "  $name (pid $pid) is still there" >&2
	fi
	rm -f "$(pidfile "$name")"
}

# The postmaster of node N: postmaster.pid's PID when that process runs in
# the node's data directory.
postmaster_pid() {
	local data pid
	data=$(node_dir "$1")/data
	[ -f "$data/postmaster.pid" ] || return 1
	pid=$(head -1 "$data/postmaster.pid" 2>/dev/null) || return 1
	alive "$pid" || return 1
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$data" ] || return 1
	echo "$pid"
}

# children_of PID: the PIDs whose parent is PID (from /proc: procps may be absent)
children_of() {
	local parent=$1 f line fields
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		read -r -a fields <<<"${line##*) }" # after the command name: state ppid ...
		[ "${fields[1]:-}" = "$parent" ] || continue
		f=${f#/proc/}
		echo "${f%/stat}"
	done
}

# kill_postmaster N: SIGKILL the postmaster of node N and its children (a crash)
kill_postmaster() {
	local pm kids
	pm=$(postmaster_pid "$1") || return 0
	kill -STOP "$pm" 2>/dev/null || true # it forks no more while we list
	kids=$(children_of "$pm")
	# shellcheck disable=SC2086
	kill -KILL "$pm" $kids 2>/dev/null || true
}

# ----------------------------------------------------------------- probes

rest_code() {
	curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(rest_port "$1")$2" || true
}
is_leader() { [ "$(rest_code "$1" /leader)" = 200 ]; }
is_replica() { [ "$(rest_code "$1" /replica)" = 200 ]; }

# leader: the node whose REST API answers 200 on /leader
leader() {
	local n
	for n in "${NODES[@]}"; do
		if is_leader "$n"; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# sync_standby: the node whose /sync answers 200 (synchronous_mode: only it
# may be promoted, as in Patroni)
sync_standby() {
	local n
	for n in "${NODES[@]}"; do
		if [ "$(rest_code "$n" /sync)" = 200 ]; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

leader_other_than() {
	local n
	n=$(leader) && [ "$n" != "$1" ]
}

# psql_via PORT SQL: run SQL as postgres over TCP (HAProxy or a node), bounded
psql_via() {
	PGPASSWORD=$SUPERUSER_PW PGCONNECT_TIMEOUT=3 timeout 15 "$PG_BIN/psql" -X -q -A -t \
		-v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

# served_by PORT [primary]: the node behind PORT (HAProxy sends the session
# somewhere); with "primary", only when that node is out of recovery
served_by() {
	local p n sql="SELECT inet_server_port()"
	[ "${2:-}" != primary ] || sql="$sql WHERE NOT pg_is_in_recovery()"
	p=$(psql_via "$1" "$sql" 2>/dev/null) || return 1
	for n in "${NODES[@]}"; do
		if [ "$(pg_port "$n")" = "$p" ]; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

write_reaches() { [ "$(served_by "$(write_port)" primary)" = "$1" ]; }
read_works() { served_by "$(read_port)" >/dev/null; }
etcd_healthy() {
	curl -fsS -m 2 "http://127.0.0.1:$(etcd_port)/health" | grep -q '"health":"true"'
}

# streams_from N LEADER: node N's WAL receiver streams from LEADER
streams_from() {
	[ "$(psql_via "$(pg_port "$1")" "SELECT count(*) FROM pg_stat_wal_receiver WHERE
		status = 'streaming' AND conninfo ~ 'port=$(pg_port "$2")( |$)'")" = 1 ]
}

replica_of() { is_replica "$1" && streams_from "$1" "$2"; }

# demo_write NOTE: one row through HAProxy's write port; says which node took it
demo_write() {
	local out
	if out=$(write_row "$1" 2>&1); then say "  $out"; else say "  the write failed: $out"; fi
}

write_row() {
	psql_via "$(write_port)" "SET client_min_messages = warning;
		CREATE TABLE IF NOT EXISTS demo_writes (id bigserial PRIMARY KEY,
		at timestamptz NOT NULL DEFAULT now(), note text,
		served_by int NOT NULL DEFAULT inet_server_port());
		INSERT INTO demo_writes (note) VALUES ('$1') RETURNING 'row ' || id || ' written on pg-' ||
		(served_by - $((PORT_BASE + 431)));"
}

cluster_list() {
	if [ -x "$STATE/bin/pgkeelctl" ]; then
		LC_ALL=C.UTF-8 HOME=$STATE timeout 30 "$STATE/bin/pgkeelctl" -c "$STATE/patronictl.yml" \
			list || say "(pgkeelctl list failed)"
	elif [ -x /usr/bin/patronictl ]; then
		LC_ALL=C.UTF-8 HOME=$STATE timeout 30 /usr/bin/patronictl -c "$STATE/patronictl.yml" list ||
			say "(patronictl list failed)"
	else
		local n
		for n in "${NODES[@]}"; do
			say "pg-$n  /leader $(rest_code "$n" /leader)  /replica $(rest_code "$n" /replica)"
		done
	fi
}

# -------------------------------------------------------- install, build

install_deps() {
	local pkgs=() missing=() installed p
	# scripts/test.sh's PACKAGES=( ... ) list, one place for both scripts
	mapfile -t pkgs < <({
		sed -n '/^PACKAGES=(/,/^)/p' "$top/scripts/test.sh" | sed '1d;$d'
		echo "${DEMO_PACKAGES[@]}"
	} | tr -s ' \t' '\n' | grep . | sort -u)
	[ ${#pkgs[@]} -gt ${#DEMO_PACKAGES[@]} ] || die "cannot read the package list of scripts/test.sh"
	installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${pkgs[@]}" 2>/dev/null |
		awk '$1 == "ii" { print $2 }')
	for p in "${pkgs[@]}"; do
		grep -qx "$p" <<<"$installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages: all ${#pkgs[@]} present"
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages (run as root to install them): ${missing[*]}"
	say "installing: ${missing[*]} (log: $STATE/logs/apt.log)"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y --no-install-recommends "${missing[@]}" ||
		{ apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }; } \
		>>"$STATE/logs/apt.log" 2>&1 || {
		tail -20 "$STATE/logs/apt.log" >&2
		die "apt-get install failed"
	}
	# Debian's default cluster, created just now by the package, is not used
	if [[ " ${missing[*]} " == *" postgresql-15 "* ]] &&
		pg_lsclusters -h 2>/dev/null | grep -q '^15 main'; then
		pg_dropcluster --stop 15 main || true
	fi
}

build() {
	local pid
	if [ -n "${PGKEEL_BUILDDIR:-}" ]; then
		BUILD=$PGKEEL_BUILDDIR
	else
		BUILD=$top/build/demo
		say "building pgkeel in $BUILD (log: $STATE/logs/build.log)"
		(
			set -e
			[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
			mkdir -p "$BUILD"
			cd "$BUILD"
			[ -f Makefile ] || "$top/configure"
			make -j2
		) >>"$STATE/logs/build.log" 2>&1 &
		pid=$!
		built() { ! alive "$pid"; }
		wait_for "build" 1800 built || true
		wait "$pid" || {
			tail -30 "$STATE/logs/build.log" >&2
			die "the build failed; the whole log is $STATE/logs/build.log"
		}
	fi
	{ [ -x "$BUILD/core/pgkeel" ] && [ -f "$BUILD/backends/etcd3/.libs/dcs_etcd3.so" ]; } ||
		die "no pgkeel or dcs_etcd3.so in $BUILD"
	# copies the postgres user can read, in a folder only root writes to (the
	# backend loader refuses group- or world-writable ones)
	mkdir -p "$STATE/bin" "$STATE/backends"
	install -m 755 "$BUILD/core/pgkeel" "$STATE/bin/pgkeel"
	if [ -x "$BUILD/ctl/pgkeelctl" ]; then
		install -m 755 "$BUILD/ctl/pgkeelctl" "$STATE/bin/pgkeelctl"
	fi
	install -m 755 "$BUILD/backends/etcd3/.libs/dcs_etcd3.so" "$STATE/backends/dcs_etcd3.so"
	say "pgkeel: $("$STATE/bin/pgkeel" --version)"
}

# ---------------------------------------------------------- configuration

# node_config N: node N's patroni.yml; node 1 carries the seed's bootstrap
# section (archiving left out: no wal-g here), the others join without one.
node_config() {
	local n=$1 dir
	dir=$(node_dir "$n")
	cat <<EOF
scope: $SCOPE
namespace: $NAMESPACE
name: pg-$n
backend_dir: $STATE/backends
restapi:
  listen: 127.0.0.1:$(rest_port "$n")
  connect_address: 127.0.0.1:$(rest_port "$n")
etcd3:
  hosts: 127.0.0.1:$(etcd_port)
EOF
	[ "$n" -ne 1 ] || cat <<EOF
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
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
        hot_standby: "on"
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
    - local all all peer
  users:
    admin:
      password: $ADMIN_PW
      options: [createrole, createdb]
EOF
	cat <<EOF
postgresql:
  listen: 127.0.0.1:$(pg_port "$n")
  connect_address: 127.0.0.1:$(pg_port "$n")
  data_dir: $dir/data
  bin_dir: $PG_BIN
  pgpass: $dir/pgpass
  authentication:
    superuser:
      username: postgres
      password: $SUPERUSER_PW
    replication:
      username: replicator
      password: $REPL_PW
  parameters:
    unix_socket_directories: $dir
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
EOF
}

haproxy_config() {
	cat <<EOF
# written by scripts/demo.sh: writes go to the node whose /leader answers
# 200, reads to those whose /replica does (pgkeel's REST API, as Patroni's)
global
    maxconn 200
    log stderr format raw local0 notice

defaults
    log global
    mode tcp
    retries 2
    timeout connect 4s
    timeout client 30m
    timeout server 30m
    timeout check 3s

listen stats
    mode http
    bind 127.0.0.1:$(stats_port)
    stats enable
    stats uri /
    stats refresh 2s
EOF
	haproxy_listen postgres-write "$(write_port)" /leader
	haproxy_listen postgres-read "$(read_port)" /replica "balance roundrobin"
}

# haproxy_listen NAME PORT CHECK [BALANCE]: a TCP listener whose servers are
# the nodes for which GET CHECK on their REST API answers 200
haproxy_listen() {
	local n
	printf '\nlisten %s\n    bind 127.0.0.1:%s\n' "$1" "$2"
	[ -z "${4:-}" ] || printf '    %s\n' "$4"
	printf '    option httpchk GET %s\n    http-check expect status 200\n' "$3"
	echo "    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions"
	for n in "${NODES[@]}"; do
		echo "    server pg-$n 127.0.0.1:$(pg_port "$n") check port $(rest_port "$n")"
	done
}

write_configs() {
	local n dir
	for n in "${NODES[@]}"; do
		dir=$(node_dir "$n")
		mkdir -p "$dir"
		chown "$RUN_USER:" "$dir"
		chmod 700 "$dir"
		(umask 077 && node_config "$n" >"$dir/pgkeel.yml")
		chown "$RUN_USER:" "$dir/pgkeel.yml"
	done
	haproxy_config >"$STATE/haproxy.cfg"
	cat >"$STATE/patronictl.yml" <<EOF
scope: $SCOPE
namespace: $NAMESPACE
backend_dir: $STATE/backends
etcd3:
  hosts: 127.0.0.1:$(etcd_port)
EOF
}

# ---------------------------------------------------------------- commands

running_any() {
	local f
	for f in "$STATE"/run/*.pid; do
		[ -f "$f" ] && pid_of "$(basename "$f" .pid)" >/dev/null && return 0
	done
	return 1
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports() {
	local p
	for p in $(write_port) $(read_port) $(stats_port) $(etcd_port) $(etcd_peer_port) \
		$(rest_port 1) $(rest_port 2) $(rest_port 3) $(pg_port 1) $(pg_port 2) $(pg_port 3); do
		if port_taken "$p"; then
			die "port $p is in use; choose another block with DEMO_PORT_BASE (after 'demo.sh clean')"
		fi
	done
}

start_node() {
	launch "pg-$1" "$RUN_USER" "$STATE/bin/pgkeel" "$(node_dir "$1")/pgkeel.yml"
}

show_summary() {
	say
	cluster_list
	say
	say "Connect (passwords are in $STATE/demo.env):"
	say "  writes -> primary:   psql 'postgresql://admin:$ADMIN_PW@127.0.0.1:$(write_port)/postgres'"
	say "  reads  -> replicas:  psql 'postgresql://admin:$ADMIN_PW@127.0.0.1:$(read_port)/postgres'"
	say "  superuser:           postgres / $SUPERUSER_PW (same ports)"
	say "  REST API:            http://127.0.0.1:$(rest_port 1)/patroni (pg-1;" \
		"pg-2 $(rest_port 2), pg-3 $(rest_port 3))"
	say "  HAProxy stats:       http://127.0.0.1:$(stats_port)/"
	say "  pgkeelctl:           $STATE/bin/pgkeelctl -c $STATE/patronictl.yml list"
	say "                       (Debian's patronictl takes the same -c file)"
	say "  logs:                $STATE/logs/"
	say
	say "Next: scripts/demo.sh failover | status | stop"
}

cmd_start() {
	local n lead first=1
	mkdir -p "$STATE/logs" "$STATE/run"
	load_state || new_state
	load_state
	if running_any; then
		say "the demo already runs in $STATE"
		cmd_status
		return 0
	fi
	[ -n "${DEMO_SKIP_DEPS:-}" ] || install_deps
	if [ "$(id -u)" -eq 0 ]; then
		RUN_USER=postgres
		id postgres >/dev/null 2>&1 || die "no postgres user (is postgresql-15 installed?)"
	else
		RUN_USER=$(id -un)
	fi
	for p in "$PG_BIN/postgres" /usr/bin/etcd /usr/sbin/haproxy /usr/bin/curl; do
		[ -x "$p" ] || die "$p is missing (run as root to install it, or unset DEMO_SKIP_DEPS)"
	done
	build
	check_ports
	write_configs
	/usr/sbin/haproxy -c -q -f "$STATE/haproxy.cfg" || die "haproxy rejects $STATE/haproxy.cfg"

	say "starting etcd on 127.0.0.1:$(etcd_port)"
	launch etcd root /usr/bin/etcd --name demo --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$(etcd_port)" \
		--advertise-client-urls "http://127.0.0.1:$(etcd_port)" \
		--listen-peer-urls "http://127.0.0.1:$(etcd_peer_port)" \
		--initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer_port)" \
		--initial-cluster "demo=http://127.0.0.1:$(etcd_peer_port)" \
		--initial-cluster-state new --initial-cluster-token pgkeel-demo
	wait_for "etcd healthy" 60 etcd_healthy || die "etcd did not come up; see $STATE/logs/etcd.log"

	# A new cluster: pg-1 (the bootstrap section) first, the others once it
	# leads, as the seed guide says.  An existing one: the leader of the last
	# run first (stop stopped it last: its WAL is the newest, nobody needs a
	# rewind), the others once it leads.
	if [ -f "$(node_dir 1)/data/PG_VERSION" ]; then
		first=$(cat "$STATE/last-leader" 2>/dev/null) || first=1
		say "starting pg-$first (the last leader) on its existing data"
	else
		say "starting pg-1 (initdb; REST 127.0.0.1:$(rest_port 1), PostgreSQL 127.0.0.1:$(pg_port 1))"
	fi
	start_node "$first"
	wait_for "pg-$first leads" 120 is_leader "$first" ||
		die "no leader; see $STATE/logs/pg-$first.log"
	for n in "${NODES[@]}"; do
		[ "$n" != "$first" ] || continue
		say "starting pg-$n (REST 127.0.0.1:$(rest_port "$n"), PostgreSQL 127.0.0.1:$(pg_port "$n"))"
		start_node "$n"
	done
	lead=$(leader) || die "the leader went away"
	for n in "${NODES[@]}"; do
		[ "$n" = "$lead" ] || wait_for "pg-$n streams from pg-$lead" 180 replica_of "$n" "$lead" ||
			die "pg-$n is not a replica; see $STATE/logs/pg-$n.log"
	done

	say "starting HAProxy (writes 127.0.0.1:$(write_port), reads 127.0.0.1:$(read_port))"
	launch haproxy root /usr/sbin/haproxy -db -f "$STATE/haproxy.cfg"
	wait_for "HAProxy's write port reaches pg-$lead" 60 write_reaches "$lead" ||
		die "HAProxy does not route writes; see $STATE/logs/haproxy.log"
	wait_for "HAProxy's read port reaches a replica" 60 read_works ||
		die "HAProxy does not route reads; see $STATE/logs/haproxy.log"
	wait_for "a synchronous standby (synchronous_mode: true)" 60 sync_standby ||
		die "pg-$lead names no synchronous standby; see $STATE/logs/pg-$lead.log"
	say "  pg-$(sync_standby) is the synchronous standby"
	demo_write "demo.sh start"
	show_summary
}

cmd_status() {
	local n pid pm w r
	load_state || die "no demo in $STATE (run scripts/demo.sh)"
	say "state folder: $STATE"
	for n in etcd haproxy; do
		if pid=$(pid_of "$n"); then say "  $n: running (pid $pid)"; else say "  $n: not running"; fi
	done
	for n in "${NODES[@]}"; do
		pid=$(pid_of "pg-$n") && pid="running (pid $pid)" || pid="not running"
		pm=$(postmaster_pid "$n") && pm="running (postmaster $pm)" || pm="not running"
		say "  pg-$n: pgkeel $pid, PostgreSQL $pm"
	done
	say
	cluster_list
	w=$(served_by "$(write_port)" 2>/dev/null) && w=pg-$w || w="nothing"
	r=$(served_by "$(read_port)" 2>/dev/null) && r=pg-$r || r="nothing"
	say "HAProxy: writes 127.0.0.1:$(write_port) -> $w, reads 127.0.0.1:$(read_port) -> $r"
}

cmd_failover() {
	local old new sync pid t0
	load_state || die "no demo in $STATE (run scripts/demo.sh)"
	RUN_USER=$(stat -c %U "$(node_dir 1)")
	old=$(leader) || die "no node is the leader right now (scripts/demo.sh status)"
	pid=$(pid_of "pg-$old") || die "pg-$old's pgkeel is not one this script started"
	# with synchronous_mode only the synchronous standby may take over; with
	# none, killing the primary leaves the cluster without a leader
	sync=$(sync_standby) || die "pg-$old has no synchronous standby yet; try again in a few seconds"
	say "pg-$old is the leader, pg-$sync its synchronous standby"
	say "killing pg-$old's pgkeel (pid $pid) and its postmaster with SIGKILL"
	t0=$SECONDS
	kill -KILL "$pid"
	kill_postmaster "$old"
	rm -f "$(pidfile "pg-$old")"
	if wait_for "a new leader (the lock expires within ttl=${TTL}s)" 90 leader_other_than "$old"; then
		new=$(leader)
		say "pg-$new took over $((SECONDS - t0))s after the kill"
		wait_for "HAProxy's write port reaches pg-$new" 60 write_reaches "$new" ||
			say "  HAProxy does not route writes to pg-$new (see $STATE/logs/haproxy.log)" >&2
		demo_write "after failover from pg-$old"
	else
		say "no new leader; see $STATE/logs/pg-*.log" >&2
	fi
	say "restarting pg-$old's pgkeel${new:+: it rejoins as a replica of pg-$new}"
	start_node "$old"
	[ -n "${new:-}" ] || die "pg-$old restarted; scripts/demo.sh status shows what follows"
	wait_for "pg-$old streams from pg-$new" 180 replica_of "$old" "$new" ||
		die "pg-$old did not rejoin; see $STATE/logs/pg-$old.log"
	say
	cluster_list
}

cmd_stop() {
	local n lead pm
	load_state || {
		say "no demo in $STATE"
		return 0
	}
	say "stopping the demo in $STATE"
	stop_pid haproxy TERM 15
	# replicas first, the leader last: no needless failover on the way down
	lead=$(leader) || lead=
	[ -z "$lead" ] || echo "$lead" >"$STATE/last-leader"
	for n in "${NODES[@]}"; do
		[ "$n" = "$lead" ] || stop_pid "pg-$n" TERM 90
	done
	[ -z "$lead" ] || stop_pid "pg-$lead" TERM 90
	for n in "${NODES[@]}"; do # a postmaster whose pgkeel was killed
		if pm=$(postmaster_pid "$n"); then
			say "  PostgreSQL of pg-$n still runs (postmaster $pm): fast shutdown"
			echo "$pm $PG_BIN/postgres" >"$(pidfile "postmaster-$n")"
			stop_pid "postmaster-$n" INT 60
			kill_postmaster "$n"
		fi
	done
	stop_pid etcd TERM 30
	say "stopped (data kept in $STATE; 'scripts/demo.sh clean' removes it)"
}

cmd_clean() {
	cmd_stop
	if [ -f "$STATE/demo.env" ]; then
		rm -rf "$STATE"
		say "removed $STATE"
	fi
}

case ${1:-start} in
start) cmd_start ;;
status) cmd_status ;;
failover) cmd_failover ;;
stop) cmd_stop ;;
clean) cmd_clean ;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
*) die "unknown command '$1' (start, status, failover, stop, clean)" ;;
esac
