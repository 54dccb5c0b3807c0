#!/bin/sh
# `pgkeel CONFIG` with a broken backend: one line naming the file, exit 1, no
# crash.  Run as the postgres user when the tests run as root.
. "$(dirname "$0")/lib.sh"
scratch
libs="$top_builddir/tests/plugins/.libs"

as_user=""
if [ "$(id -u)" -eq 0 ]; then
	if id postgres >/dev/null 2>&1; then u=postgres; else u=nobody; fi
	as_user="runuser -u $u --"
fi

cfg() {
	cat > "$TMP/$1.yml" <<YAML
scope: batman
name: pg-1
backend_dir: $TMP/$1
restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}
etcd3: {hosts: 127.0.0.1:2379}
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: $TMP/data
  authentication:
    superuser: {username: postgres, password: secret}
    replication: {username: replicator, password: rep}
YAML
	chmod 644 "$TMP/$1.yml"
	mkdir -p "$TMP/$1"
	chmod 755 "$TMP/$1"
}

# case NAME SOURCE-FILE-OR-EMPTY NEEDLE
case_() {
	name=$1 src=$2 needle=$3
	cfg "$name"
	if [ -n "$src" ]; then
		cp "$src" "$TMP/$name/dcs_etcd3.so"
		chmod 755 "$TMP/$name/dcs_etcd3.so"
	fi
	out=$(timeout 20 $as_user "$PGKEEL" "$TMP/$name.yml" 2>&1)
	rc=$?
	lines=$(printf '%s\n' "$out" | grep -c .)
	if [ "$rc" -ne 1 ]; then
		fail "$name: exit $rc, expected 1: $out"
	elif [ "$lines" -ne 1 ]; then
		fail "$name: expected one line, got $lines: $out"
	elif ! printf '%s' "$out" | grep -qF "$TMP/$name/dcs_etcd3.so" ||
		! printf '%s' "$out" | grep -qF -- "$needle"; then
		fail "$name: message lacks the file or '$needle': $out"
	else
		pass "$name: $out"
	fi
}

case_ foreign-abi "$libs/dcs_badabi.so" "was built for DCS ABI 2."
case_ no-entry "$libs/dcs_noentry.so" "does not export pgkeel_dcs_plugin_entry"
case_ wrong-name "$libs/dcs_missingop.so" "calls itself 'missingop', expected 'etcd3'"
case_ no-file "" "no such file"
case_ not-elf "$top_srcdir/tests/plugins/not-a-library.so.txt" "is not a shared object"
finish
