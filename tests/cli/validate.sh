#!/bin/sh
# pgkeel --validate-config: the seed guide's configuration passes, each
# typical mistake fails with exit 1 and a message naming the place.
. "$(dirname "$0")/lib.sh"
scratch

# run NAME EXPECTED_RC NEEDLE [pgkeel args...]
run() {
	name=$1 want=$2 needle=$3
	shift 3
	if [ "$1" = env ]; then out=$("$@" 2>&1); else out=$("$PGKEEL" "$@" 2>&1); fi
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$name: exit $rc, expected $want; output: $out"
	elif ! printf '%s\n' "$out" | grep -qF -- "$needle"; then
		fail "$name: output lacks '$needle': $out"
	else
		pass "$name"
	fi
}

base() {
	cat <<'YAML'
scope: batman
namespace: /db/
name: pg-1
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
etcd3:
  hosts: 127.0.0.1:2379
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /var/lib/postgresql/15/main
  authentication:
    superuser: {username: postgres, password: secret}
    replication: {username: replicator, password: rep}
YAML
}

# The seed's DCS hosts are not on loopback: --offline, so no test leaves it.
run seed 0 "configuration is valid (member pg-1 of cluster prod-pg, DCS etcd3" \
	--offline --validate-config "$top_srcdir/tests/config/seed-pg-1.yml"
run sample 0 "configuration is valid" --offline --validate-config "$top_srcdir/pgkeel.yml.sample"
run seed-strict 1 "is not configured on this host" \
	--strict --offline --validate-config "$top_srcdir/tests/config/seed-pg-1.yml"

base > "$TMP/ok.yml"
run minimal 0 "configuration is valid" --validate-config "$TMP/ok.yml"

{ base; echo "tags: {a: [1, 2}"; } > "$TMP/bad-yaml.yml"
run bad-yaml 1 "$TMP/bad-yaml.yml:16:" --validate-config "$TMP/bad-yaml.yml"

{ base; printf '    rewind:\n      password: [x]\n'; } > "$TMP/type.yml"
run wrong-type 1 "$TMP/type.yml:17:17: postgresql.authentication.rewind.password: expected a string" \
	--validate-config "$TMP/type.yml"

base | grep -v '^name:' > "$TMP/noname.yml"
run missing-name 1 "missing required key 'name'" --validate-config "$TMP/noname.yml"
base | grep -v '^scope:' > "$TMP/noscope.yml"
run missing-scope 1 "missing required key 'scope'" --validate-config "$TMP/noscope.yml"
base | grep -v 'data_dir:' > "$TMP/nodata.yml"
run missing-data-dir 1 "missing required key 'postgresql.data_dir'" --validate-config "$TMP/nodata.yml"

base | sed 's/^etcd3:/etcd:/' > "$TMP/etcd2.yml"
run etcd-v2 1 "$TMP/etcd2.yml:7:1: etcd: the etcd v2 API is not supported; use an etcd3: section" \
	--validate-config "$TMP/etcd2.yml"
base | sed 's/^etcd3:/kafka:/' > "$TMP/nodcs.yml"
run unknown-dcs 1 "no DCS section" --validate-config "$TMP/nodcs.yml"
run unknown-dcs-key 1 "unknown key 'kafka'" --validate-config "$TMP/nodcs.yml"

run unreadable 1 "$TMP/missing.yml: cannot read the configuration" --validate-config "$TMP/missing.yml"
if [ "$(id -u)" -ne 0 ]; then
	base > "$TMP/secret.yml"
	chmod 000 "$TMP/secret.yml"
	run unreadable-perm 1 "cannot open" --validate-config "$TMP/secret.yml"
fi

{ base; printf 'tags:\n  dc: a\n  dc: b\n'; } > "$TMP/dup.yml"
run duplicate-key 1 "$TMP/dup.yml:18:3: duplicate key 'dc' in 'tags' (first at $TMP/dup.yml:17:3)" \
	--validate-config "$TMP/dup.yml"

{ base; echo "ttl: 10"; } > "$TMP/ttl.yml"
run top-level-ttl 0 "ttl is ignored here" --validate-config "$TMP/ttl.yml"

{ base; printf 'bootstrap:\n  dcs: {ttl: 10, loop_wait: 10, retry_timeout: 10}\n'; } > "$TMP/timing.yml"
run timing-warn 0 "loop_wait (10) + 2*retry_timeout (10) > ttl (10)" --validate-config "$TMP/timing.yml"
run timing-strict 1 "loop_wait (10) + 2*retry_timeout (10) > ttl (10)" --strict --validate-config "$TMP/timing.yml"
{ base; printf 'bootstrap:\n  dcs: {ttl: 10, loop_wait: 2, retry_timeout: 3}\n'; } > "$TMP/fast.yml"
out=$("$PGKEEL" --validate-config "$TMP/fast.yml" 2>&1)
if [ $? -eq 0 ] && ! printf '%s' "$out" | grep -q 'retry_timeout'; then pass fast-timing; else fail "fast-timing: $out"; fi

mkdir "$TMP/conf.d"
base > "$TMP/conf.d/00-base.yml"
echo "name: pg-2" > "$TMP/conf.d/10-name.yml"
run directory 0 "member pg-2 of cluster batman" --validate-config "$TMP/conf.d"

run env-config 0 "member pg-1 of cluster batman" env PATRONI_CONFIGURATION="$(base)" "$PGKEEL" --validate-config
run env-override 0 "member from-env of cluster batman" env PATRONI_NAME=from-env "$PGKEEL" --validate-config "$TMP/ok.yml"

run version 0 "pgkeel " --version
run help 0 "Usage: pgkeel" --help
run bad-option 2 "Usage: pgkeel" --no-such-option

finish
