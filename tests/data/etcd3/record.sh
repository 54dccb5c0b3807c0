#!/bin/sh
# Record etcd v3 JSON-gateway responses for tests/unit/test_etcd3_proto.c.
#
#   tests/data/etcd3/record.sh [outdir]
#
# Needs etcd + etcdctl (3.4), curl and base64.  Starts throw-away etcd
# processes on loopback ports PORT_BASE+1.. (default 23790) in a temp dir
# and stops them by PID.  Writes one body per file and index.tsv:
#   name <TAB> curl exit <TAB> HTTP status <TAB> RPC <TAB> request body
# Watch streams are kept with their HTTP chunk framing (curl --raw, *.raw)
# and de-chunked (*.stream).  Runs for about a minute.
set -eu

out=$(cd "${1:-$(dirname "$0")}" && pwd)
base=${PORT_BASE:-23790}
tmp=$(mktemp -d)
pids=
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || :
	done
	sleep 1
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

: >"$out/index.tsv"
E=   # gateway base URL
HDR= # extra request header (auth token)

# ---------------------------------------------------------------- JSON helpers
b64() { printf '%s' "$1" | base64 -w0; }
# {"key":k,"value":v[,"lease":id]}, v given in base64
j_put() {
	printf '{"key":"%s","value":"%s"' "$(b64 "$1")" "$2"
	[ -z "${3:-}" ] || printf ',"lease":"%s"' "$3"
	printf '}'
}
# {"key":k[,"range_end":e]}
j_key() {
	printf '{"key":"%s"' "$(b64 "$1")"
	[ -z "${2:-}" ] || printf ',"range_end":"%s"' "$(b64 "$2")"
	printf '}'
}
j_range() {
	printf '{"key":"%s","range_end":"%s","serializable":true}' "$(b64 "$1")" "$(b64 "$2")"
}
c_create() { printf '{"key":"%s","target":"CREATE","create_revision":"0"}' "$(b64 "$1")"; }
c_mod() { printf '{"key":"%s","target":"MOD","mod_revision":"%s"}' "$(b64 "$1")" "$2"; }
c_value() { printf '{"key":"%s","target":"VALUE","value":"%s"}' "$(b64 "$1")" "$(b64 "$2")"; }
op_put() { printf '{"request_put":%s}' "$(j_put "$@")"; }
op_del() { printf '{"request_delete_range":%s}' "$(j_key "$1")"; }
# compare success [failure]: one of each
j_txn() {
	printf '{"compare":[%s],"success":[%s]' "$1" "$2"
	[ -z "${3:-}" ] || printf ',"failure":[%s]' "$3"
	printf '}'
}
# key range_end [start_revision]
j_watch() {
	printf '{"create_request":{"key":"%s","range_end":"%s"' "$(b64 "$1")" "$(b64 "$2")"
	[ -z "${3:-}" ] || printf ',"start_revision":"%s"' "$3"
	printf '}}'
}

# ---------------------------------------------------------------- etcd and curl
start_etcd() { # name client_port peer_port initial_cluster [extra args]
	n=$1 cp=$2 pp=$3 ic=$4
	shift 4
	etcd --name "$n" --data-dir "$tmp/$n" \
		--listen-client-urls "http://127.0.0.1:$cp" \
		--advertise-client-urls "http://127.0.0.1:$cp" \
		--listen-peer-urls "http://127.0.0.1:$pp" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "$ic" --initial-cluster-state new "$@" >"$tmp/$n.log" 2>&1 &
	eval "pid_$n=$!"
	pids="$pids $!"
}

wait_up() { # client_port
	i=0
	until curl -s -o /dev/null "http://127.0.0.1:$1/version"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "etcd on port $1 did not start" >&2; exit 1; }
		sleep 0.1
	done
}

stop_etcd() { # name
	eval "p=\$pid_$1"
	kill "$p"
	wait "$p" 2>/dev/null || :
}

# name rpc body -> $out/name.json and an index line ('' body = GET)
rec() {
	set +e
	if [ -z "$3" ]; then
		code=$(curl -s -m 20 -o "$out/$1.json" -w '%{http_code}' "$E$2")
	elif [ -n "$HDR" ]; then
		code=$(curl -s -m 20 -H "$HDR" -o "$out/$1.json" -w '%{http_code}' "$E$2" -d "$3")
	else
		code=$(curl -s -m 20 -o "$out/$1.json" -w '%{http_code}' "$E$2" -d "$3")
	fi
	rc=$?
	set -e
	[ -f "$out/$1.json" ] || : >"$out/$1.json"
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$rc" "$code" "$2" "$3" >>"$out/index.tsv"
}

# The same for a request whose answer only feeds later requests.
helper() {
	rec "$@"
	mv "$out/$1.json" "$tmp/$1.json"
	grep -v "^$1	" "$out/index.tsv" >"$tmp/index" || :
	cat "$tmp/index" >"$out/index.tsv"
}

field() { # name json-field -> first "field":"value" of a recorded body
	f="$out/$1.json"
	[ -f "$f" ] || f="$tmp/$1.json"
	sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$f" | head -n 1
}

# name body [header]: the stream both raw (chunk framing) and de-chunked
watch_start() {
	h=${3:-X-Nothing: 1}
	curl -s -N --raw -m 20 -H "$h" "$E/watch" -d "$2" -o "$out/$1.raw" &
	w1=$!
	curl -s -N -m 20 -H "$h" "$E/watch" -d "$2" -o "$out/$1.stream" &
	w2=$!
	pids="$pids $w1 $w2"
	printf '%s\t-\t200\t/watch\t%s\n' "$1" "$2" >>"$out/index.tsv"
	sleep 1
}

watch_stop() { # [seconds to wait for the stream]
	sleep "${1:-1}"
	kill "$w1" "$w2" 2>/dev/null || :
	wait "$w1" "$w2" 2>/dev/null || :
}

P=/service/batman/
PE=/service/batman0
LEADER=${P}leader
CONFIG=${P}config
INIT=${P}initialize
SYNC=${P}sync
BIN=${P}x-bin
MEMBER=${P}members/pg-1

# ---------------------------------------------------------------- one member, no auth
ca=$((base + 1))
start_etcd one $ca $((base + 11)) "one=http://127.0.0.1:$((base + 11))"
wait_up $ca
E=http://127.0.0.1:$ca
rec version /version ''
E=http://127.0.0.1:$ca/v3

rec auth_not_enabled /auth/authenticate '{"name":"root","password":"secret"}'
rec range_empty /kv/range "$(j_range $P $PE)"
rec lease_grant /lease/grant '{"TTL":"30"}'
LEASE=$(field lease_grant ID)
rec put_leader /kv/put "$(j_put "$LEADER" "$(b64 pg-1)" "$LEASE")"
rec put /kv/put "$(j_put "$CONFIG" "$(b64 '{"ttl":30,"loop_wait":10}')")"
CONFIG_REV=$(field put revision)
# a value with a NUL, a 0xff and a newline
rec put_binary /kv/put "$(j_put "$BIN" "$(printf 'a\000\377\nz' | base64 -w0)")"
rec range_kvs /kv/range "$(j_range $P $PE)"
rec deleterange /kv/deleterange "$(j_key "$BIN")"
rec deleterange_none /kv/deleterange "$(j_key ${P}absent ${P}absenu)"

CREATE_INIT=$(j_txn "$(c_create "$INIT")" "$(op_put "$INIT" "$(b64 7300000000000000001)")")
rec txn_create_ok /kv/txn "$CREATE_INIT"
rec txn_create_fail /kv/txn "$CREATE_INIT"

rec txn_mod_put_ok /kv/txn \
	"$(j_txn "$(c_mod "$CONFIG" "$CONFIG_REV")" "$(op_put "$CONFIG" "$(b64 '{"ttl":20}')")")"
rec txn_mod_put_fail /kv/txn \
	"$(j_txn "$(c_mod "$CONFIG" "$CONFIG_REV")" "$(op_put "$CONFIG" "$(b64 '{"ttl":25}')")")"

helper put_sync /kv/put "$(j_put "$SYNC" "$(b64 '{"leader":"pg-1","sync_standby":null}')")"
SYNC_REV=$(field put_sync revision)
rec txn_mod_delete_fail /kv/txn "$(j_txn "$(c_mod "$SYNC" $((SYNC_REV - 1)))" "$(op_del "$SYNC")")"
rec txn_mod_delete_ok /kv/txn "$(j_txn "$(c_mod "$SYNC" "$SYNC_REV")" "$(op_del "$SYNC")")"

# Patroni >= 3.0.3 update_leader: VALUE == me -> put, else txn { CREATE == 0 -> put }
rebind() { # name value
	put=$(op_put "$LEADER" "$(b64 "$2")" "$LEASE")
	rec "$1" /kv/txn "$(j_txn "$(c_value "$LEADER" "$2")" "$put" \
		"{\"request_txn\":$(j_txn "$(c_create "$LEADER")" "$put")}")"
}
rebind txn_rebind_ok pg-1
rec txn_value_delete_fail /kv/txn "$(j_txn "$(c_value "$LEADER" pg-2)" "$(op_del "$LEADER")")"
rec txn_value_delete_ok /kv/txn "$(j_txn "$(c_value "$LEADER" pg-1)" "$(op_del "$LEADER")")"
rebind txn_rebind_nested_ok pg-1
helper put_leader_other /kv/put "$(j_put "$LEADER" "$(b64 pg-2)")"
rebind txn_rebind_nested_fail pg-1

rec lease_keepalive /lease/keepalive "{\"ID\":\"$LEASE\"}"
rec lease_keepalive_unknown /lease/keepalive '{"ID":"12345"}'
rec put_lease_unknown /kv/put "$(j_put "$MEMBER" "$(b64 '{}')" 12345)"
rec txn_create_lease_unknown /kv/txn \
	"$(j_txn "$(c_create ${P}other)" "$(op_put ${P}other "$(b64 pg-1)" 12345)")"
rec lease_revoke /lease/revoke "{\"ID\":\"$LEASE\"}"
rec lease_keepalive_revoked /lease/keepalive "{\"ID\":\"$LEASE\"}"
rec lease_revoke_unknown /lease/revoke '{"ID":"12345"}'
rec lease_grant_short /lease/grant '{"TTL":"1"}'
sleep $(($(field lease_grant_short TTL) + 2))
rec lease_keepalive_expired /lease/keepalive "{\"ID\":\"$(field lease_grant_short ID)\"}"

rec bad_json /kv/range 'not json'
rec bad_base64 /kv/range '{"key":"!!!"}'
rec key_missing /kv/put '{}'
rec watch_bad_request /watch '{"create_request":{"key":"!!"}}'

# The watch: create, a put, a put of the leader, a delete.
watch_start watch "$(j_watch $P $PE $(($(field put_leader_other revision) + 1)))"
helper w_put /kv/put "$(j_put "$MEMBER" "$(b64 '{"role":"primary"}')")"
helper w_put_leader /kv/put "$(j_put "$LEADER" "$(b64 pg-1)")"
helper w_del /kv/deleterange "$(j_key "$MEMBER")"
watch_stop

# A watch from a compacted revision: created, then canceled with compact_revision.
ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$ca" compaction "$(field w_del revision)" \
	>/dev/null
watch_start watch_compacted "$(j_watch $P $PE 2)"
watch_stop

# ---------------------------------------------------------------- auth on the same member
C="etcdctl --endpoints=http://127.0.0.1:$ca"
export ETCDCTL_API=3
$C user add root:secret >/dev/null
$C user grant-role root root >/dev/null
$C user add guest:guest >/dev/null
$C auth enable >/dev/null
rec auth_ok /auth/authenticate '{"name":"root","password":"secret"}'
TOKEN=$(field auth_ok token)
rec auth_wrong_password /auth/authenticate '{"name":"root","password":"wrong"}'
rec auth_no_token /kv/range "$(j_range $P $PE)"
rec lease_grant_auth_no_token /lease/grant '{"TTL":"30"}'
rec lease_keepalive_auth_no_token /lease/keepalive \
	"{\"ID\":\"$(field lease_grant_auth_no_token ID)\"}"
HDR="Authorization: $TOKEN"
rec auth_range_ok /kv/range "$(j_range $P $PE)"
HDR="Authorization: bogus.token.1"
rec auth_invalid_token /kv/range "$(j_range $P $PE)"
HDR=
helper auth_guest /auth/authenticate '{"name":"guest","password":"guest"}'
HDR="Authorization: $(field auth_guest token)"
rec auth_permission_denied /kv/range "$(j_range $P $PE)"
HDR=
watch_start watch_auth_no_token "$(j_watch $P $PE)"
watch_stop
watch_start watch_auth_invalid_token "$(j_watch $P $PE)" "Authorization: bogus.token.1"
watch_stop

stop_etcd one
rec conn_refused /kv/range "$(j_range $P $PE)"

# ---------------------------------------------------------------- no leader
# Two members, short election timeout; stop one, ask the other (no quorum, so no leader).
IC="a=http://127.0.0.1:$((base + 13)),b=http://127.0.0.1:$((base + 14))"
start_etcd a $((base + 3)) $((base + 13)) "$IC" --heartbeat-interval 50 --election-timeout 500
start_etcd b $((base + 4)) $((base + 14)) "$IC" --heartbeat-interval 50 --election-timeout 500
wait_up $((base + 3))
wait_up $((base + 4))
sleep 2
E=http://127.0.0.1:$((base + 3))/v3
helper nl_lease /lease/grant '{"TTL":"30"}'
# A watch that requires a leader (grpc-gateway passes Grpc-Metadata-* headers
# on as gRPC metadata; clientv3.WithRequireLeader sets hasleader=true): etcd
# cancels it once the leader is lost, and the gateway ends the stream with an
# {"error":{...}} message.
watch_start noleader_watch "$(j_watch $P $PE)" "Grpc-Metadata-hasleader: true"
stop_etcd b
watch_stop 8
rec noleader_put /kv/put "$(j_put "$CONFIG" "$(b64 '{}')")"
rec noleader_range /kv/range "$(j_key "$CONFIG")"
rec noleader_keepalive /lease/keepalive "{\"ID\":\"$(field nl_lease ID)\"}"
rec noleader_lease_grant /lease/grant '{"TTL":"30"}'
rec noleader_authenticate /auth/authenticate '{"name":"root","password":"secret"}'
stop_etcd a
etcd --version | head -n 1
