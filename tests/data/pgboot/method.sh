#!/bin/sh
# Stand-in for the commands pgkeel runs with Patroni's argument contract: a
# custom replica method (WAL-G, pgBackRest...), a custom bootstrap method and
# a post_bootstrap script (tests/integration/test_pg_bootstrap.py).
#
# Appends what it was given to $PGBOOT_RECORD, one "KEY<TAB>value" line each,
# between "BEGIN<TAB>$0" and "END<TAB>status":
#   ARG     each argument, in order
#   ENV     PGPASSFILE=... and PGOPTIONS=... when set
#   PGPASS  the lines of $PGPASSFILE
#   MARKER  yes/no: was <data dir>/marker there when it started (keep_data)
#   SQL     psql's answers (--psql)
# It understands these among its arguments (anything else is only recorded):
#   --datadir=DIR, --target=DIR  create DIR as a minimal data directory
#                                (PG_VERSION 15, global/pg_control)
#   --fail[=...]                 write to stdout and stderr, exit 3, create nothing
#   --signals                    also leave standby.signal, recovery.signal and
#                                promote in the data directory
#   --psql                       connect with the last argument as the conninfo,
#                                record synchronous_commit, statement_timeout and
#                                whether role replicator exists yet, then create
#                                table post_bootstrap_ran
set -u
rec=${PGBOOT_RECORD:-/dev/null}
datadir=
fail=
signals=
psql=
last=
for a in "$@"; do
	case $a in
	--datadir=*) datadir=${a#--datadir=} ;;
	--target=*) datadir=${a#--target=} ;;
	--fail | --fail=*) fail=1 ;;
	--signals) signals=1 ;;
	--psql) psql=1 ;;
	esac
	last=$a
done

{
	printf 'BEGIN\t%s\n' "$0"
	for a in "$@"; do
		printf 'ARG\t%s\n' "$a"
	done
	if [ -n "${PGPASSFILE+x}" ]; then
		printf 'ENV\tPGPASSFILE=%s\n' "$PGPASSFILE"
		if [ -r "$PGPASSFILE" ]; then
			while IFS= read -r line || [ -n "$line" ]; do
				printf 'PGPASS\t%s\n' "$line"
			done <"$PGPASSFILE"
		fi
	fi
	if [ -n "${PGOPTIONS+x}" ]; then
		printf 'ENV\tPGOPTIONS=%s\n' "$PGOPTIONS"
	fi
	if [ -n "$datadir" ]; then
		if [ -e "$datadir/marker" ]; then
			printf 'MARKER\tyes\n'
		else
			printf 'MARKER\tno\n'
		fi
	fi
} >>"$rec"

status=0
if [ -n "$psql" ]; then
	for q in "SHOW synchronous_commit" "SHOW statement_timeout" \
		"SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'" \
		"CREATE TABLE post_bootstrap_ran ()"; do
		out=$(psql -X -A -t -v ON_ERROR_STOP=1 -d "$last" -c "$q" 2>&1) || status=4
		printf 'SQL\t%s\n' "$out" >>"$rec"
	done
fi
if [ -n "$fail" ]; then
	echo "method.sh: failing on purpose"
	echo "method.sh: boom (stderr)" >&2
	status=3
elif [ -n "$datadir" ] && [ "$status" -eq 0 ]; then
	mkdir -p "$datadir/global" && chmod 700 "$datadir" &&
		echo 15 >"$datadir/PG_VERSION" && : >"$datadir/global/pg_control" || status=5
	if [ -n "$signals" ] && [ "$status" -eq 0 ]; then
		: >"$datadir/standby.signal"
		: >"$datadir/recovery.signal"
		: >"$datadir/promote"
	fi
fi
printf 'END\t%s\n' "$status" >>"$rec"
exit "$status"
