#!/bin/sh
# House rule (STYLE.md 3.2): no strcpy, strcat, sprintf, vsprintf, strtok, gets,
# atoi/atol in our C code; use snprintf with a truncation check, strtok_r, strtol.
. "$(dirname "$0")/lib.sh"
hits=$(grep -nE '(^|[^_a-zA-Z0-9])(strcpy|strcat|sprintf|vsprintf|strtok|gets|atoi|atol|atoll)[[:space:]]*\(' \
	$(find "$top_srcdir/core" "$top_srcdir/backends" "$top_srcdir/include" \
		"$top_srcdir/tests/plugins" -name '*.[ch]' 2>/dev/null) 2>/dev/null |
	grep -vE '(snprintf|vsnprintf|asprintf|vasprintf|strtok_r)[[:space:]]*\(' )
if [ -n "$hits" ]; then
	fail "banned functions used:
$hits"
else
	pass "no banned function calls"
fi
finish
