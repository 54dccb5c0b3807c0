#!/bin/sh
# The man pages render without any groff warning.
. "$(dirname "$0")/lib.sh"
command -v groff >/dev/null 2>&1 || { echo "groff not installed"; exit 77; }
for page in "$top_srcdir"/man/*.[1-8]; do
	out=$(groff -man -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then fail "$(basename "$page"): $out"; else pass "$(basename "$page")"; fi
done
finish
