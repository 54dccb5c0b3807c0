#!/bin/sh
# contrib/pgkeel.service (built from contrib/pgkeel.service.in): the settings
# issue 5 asks for, RestartPreventExitStatus= equal to the failure statuses
# of core/exit_codes.h, and `systemd-analyze verify` silent on it (skipped
# when systemd-analyze is not installed).  verify only warns about a bad line
# ("ignoring") and still exits 0, so any output is a failure.
. "$(dirname "$0")/lib.sh"
unit="$top_builddir/contrib/pgkeel.service"
[ -f "$unit" ] || { fail "$unit is not built"; finish; }

for want in Type=notify KillMode=process Restart=on-failure TimeoutStopSec= WatchdogSec= \
	'ExecStart=/.*/pgkeel /etc/pgkeel/pgkeel.yml$'; do
	if grep -q "^$want" "$unit"; then pass "$want"; else fail "no $want in the unit"; fi
done
if grep -q '@[a-z]*@' "$unit"; then fail "unsubstituted: $(grep '@[a-z]*@' "$unit")"; fi

codes=$(sed -n 's/^#define PGKEEL_EXIT_[A-Z_]*[[:space:]][[:space:]]*\([0-9][0-9]*\).*/\1/p' \
	"$top_srcdir/core/exit_codes.h" | grep -vx 0 | sort -n | tr '\n' ' ')
listed=$(sed -n 's/^RestartPreventExitStatus=//p' "$unit" | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ')
if [ -n "$codes" ] && [ "$codes" = "$listed" ]; then
	pass "RestartPreventExitStatus= $listed"
else
	fail "RestartPreventExitStatus= lists '$listed' but core/exit_codes.h has '$codes':" \
		"a new exit status is either fatal (list it) or worth a restart (say so here)"
fi

command -v systemd-analyze >/dev/null 2>&1 || {
	echo "systemd-analyze not installed: verify skipped"
	[ "$failures" -eq 0 ] && exit 77
	finish
}
scratch
# the unit as installed, with ExecStart pointed at the built daemon (verify
# checks that it is executable) and the man pages it names findable
sed "s|^ExecStart=[^ ]*/pgkeel |ExecStart=$top_builddir/core/pgkeel |" "$unit" >"$TMP/pgkeel.service"
mkdir -p "$TMP/man/man5" "$TMP/man/man8"
cp "$top_srcdir/man/pgkeel.8" "$TMP/man/man8/"
cp "$top_srcdir/man/pgkeel.yml.5" "$TMP/man/man5/"

verify() {
	(cd "$TMP" && MANPATH="$TMP/man" systemd-analyze verify "$1" 2>&1)
}

if out=$(verify pgkeel.service) && [ -z "$out" ]; then
	pass "systemd-analyze verify"
else
	fail "systemd-analyze verify: $out"
fi
# the check itself can fail: a wrong value is reported
sed 's/^KillMode=process/KillMode=processes/' "$TMP/pgkeel.service" >"$TMP/broken.service"
if out=$(verify broken.service) && [ -z "$out" ]; then
	fail "systemd-analyze verify says nothing about KillMode=processes"
else
	pass "a broken unit is reported"
fi
finish
