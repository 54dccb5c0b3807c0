#!/bin/sh
# Every configuration key the parser knows must be documented in pgkeel.yml(5).
. "$(dirname "$0")/lib.sh"
page="$top_srcdir/man/pgkeel.yml.5"
keys=$("$PGKEEL" --list-config-keys) || { fail "pgkeel --list-config-keys failed"; finish; }
[ -n "$keys" ] || fail "no keys listed"
n=0
printf '%s\n' "$keys" | {
	missing=0
	while read -r kind path; do
		n=$((n + 1))
		if ! grep -qF -- "$path" "$page"; then
			echo "FAIL: $kind key '$path' is not documented in man/pgkeel.yml.5" >&2
			missing=$((missing + 1))
		fi
	done
	echo "checked $n keys"
	[ "$missing" -eq 0 ]
} || failures=1
finish
