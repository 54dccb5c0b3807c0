#!/bin/sh
# Every pgkeelctl command and option is documented in pgkeelctl(1): each
# command has a ".SS <command>" section that names each of its long options;
# the global options are in OPTIONS.  `pgkeelctl --list-commands` is the list.
. "$(dirname "$0")/lib.sh"
page="$top_srcdir/man/pgkeelctl.1"
ctl="$top_builddir/ctl/pgkeelctl"
[ -f "$page" ] || { fail "man/pgkeelctl.1 is missing"; finish; }
list=$("$ctl" --list-commands) || { fail "pgkeelctl --list-commands failed"; finish; }
[ -n "$list" ] || fail "no commands listed"

# the text of one section: from ".SS <name>" (or ".SH <NAME>") to the next heading
section() {
	awk -v want="$1" '
		/^\.S[SH] / { name = $2; gsub(/"/, "", name); on = (name == want); next }
		on { print }' "$page"
}

checked=0
nosection=
printf '%s\n' "$list" | {
	while read -r cmd opt; do
		if [ "$cmd" = pgkeelctl ]; then
			text=$(section OPTIONS)
			where="OPTIONS"
		else
			text=$(section "$cmd")
			where=".SS $cmd"
			if [ -z "$text" ]; then
				[ "$nosection" = "$cmd" ] ||
					echo "FAIL: command '$cmd' has no .SS section in man/pgkeelctl.1" >&2
				nosection=$cmd
				failures=$((failures + 1))
				continue
			fi
		fi
		[ -n "$opt" ] || continue
		esc=$(printf '%s' "$opt" | sed 's/-/\\-/g')
		if ! printf '%s\n' "$text" | grep -qF -e "$esc" -e "$opt"; then
			echo "FAIL: option '$opt' of '$cmd' is not documented in $where of man/pgkeelctl.1" >&2
			failures=$((failures + 1))
		fi
		checked=$((checked + 1))
	done
	echo "checked $checked options"
	[ "$failures" -eq 0 ]
} || failures=1
finish
