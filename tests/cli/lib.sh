# Shared helpers for the shell tests (sourced).  Automake runs the tests with
# top_srcdir and top_builddir exported; fall back to the layout of a build in
# the source tree.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
PGKEEL="$top_builddir/core/pgkeel"
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

pass() {
	echo "ok: $*"
}

finish() {
	if [ "$failures" -ne 0 ]; then
		echo "$failures check(s) failed" >&2
		exit 1
	fi
	exit 0
}

# A scratch directory removed on exit, readable by an unprivileged user.
scratch() {
	TMP=$(mktemp -d /tmp/pgkeel-test.XXXXXX)
	chmod 755 "$TMP"
	trap 'rm -rf "$TMP"' EXIT
}
