#!/usr/bin/env bash
# The test entry point (README, .ci/run): installs the Debian packages the
# build and the tests need, builds, and runs every test, printing a timing
# table at the end so the CI budget stays visible.
#
#   scripts/test.sh            everything: deps, build, unit + sanitizer + script
#                              tests, integration tests, make distcheck
#   SKIP_DEPS=1                do not touch packages
#   SKIP_SANITIZERS=1          skip the ASan+UBSan build
#   SKIP_DISTCHECK=1           skip make distcheck
#   BUILD_ROOT=dir             where the build trees go (default: build/ in the tree)
#   BUILD_ONLY=1               packages, autoreconf and the default build only
#                              (what scripts/demo.sh uses)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD_ROOT=${BUILD_ROOT:-$top/build}
JOBS=${JOBS:-2}

# Debian 12 packages: the build, the unit tests, the doc checks, and the real
# components the integration tests start.
PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libyaml-dev libjson-c-dev libcurl4-openssl-dev libpq-dev libmicrohttpd-dev
	libcmocka-dev libsystemd-dev libzookeeper-mt-dev libssl-dev
	groff-base python3-pytest postgresql-15 xz-utils
	etcd-server patroni python3-etcd python3-psycopg2 openssl haproxy faketime
	zookeeper python3-kazoo
	pgbouncer libgnutls28-dev
	systemd curl wrk
)

declare -a timing_names=() timing_secs=() timing_status=()
overall=0

step() {
	local name=$1 start end rc
	shift
	echo
	echo "=== $name"
	start=$(date +%s)
	set +e
	"$@"
	rc=$?
	set -e
	end=$(date +%s)
	timing_names+=("$name")
	timing_secs+=($((end - start)))
	if [ "$rc" -eq 0 ]; then timing_status+=(ok); else timing_status+=("FAILED ($rc)"); overall=1; fi
	return 0
}

install_deps() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all ${#PACKAGES[@]} packages present"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages (run as root to install): ${missing[*]}" >&2
		return 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${missing[@]}" ||
		{ apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
	# the packaged default cluster is not used by anything here
	if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q '^15 main'; then
		pg_dropcluster --stop 15 main || true
	fi
}

bootstrap() {
	autoreconf -fi
}

build() {
	local dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" --enable-werror "$@" && make -j"$JOBS")
}

check() {
	local dir=$1
	(cd "$dir" && make -j"$JOBS" check) || { cat_failed_logs "$dir"; return 1; }
}

cat_failed_logs() {
	local dir=$1
	for log in $(grep -l -E '^(FAIL|ERROR)' "$dir"/tests/*/*.log "$dir"/tests/*.log 2>/dev/null); do
		echo "----- $log"
		cat "$log"
	done
}

# Multi-node scenario modules and the slowest server suites (several
# clusters or ensembles each, minutes of wall time): they run once, against
# the normal build.  The sanitizer pass runs every
# other integration test, the 3-node core scenario (test_ha_cluster.py)
# included, so the daemon's HA paths still run under ASan+UBSan.
SCENARIO_MODULES="test_ha_steady.py test_ha_failover.py test_ha_split_brain.py
	test_ha_watchdog.py test_ha_slow_restart.py test_ha_bad_values.py
	test_ha_zookeeper.py test_demo.py test_rest_matrix.py
	test_patronictl.py test_haproxy_pgbouncer.py test_rest_tls.py
	test_zookeeper_patroni_compat.py test_etcd3_patroni_compat.py
	test_dcs_zookeeper.py test_etcd3_cluster.py test_rest_api.py test_pgkeelctl_ops.py test_ha_gaps.py test_pgkeelctl_config.py"

integration() {
	local dir=$1 mode=${2:-all} ignore=()
	if ! ls tests/integration/test_*.py >/dev/null 2>&1; then
		echo "no integration tests present"
		return 0
	fi
	if [ "$mode" = sanitizers ]; then
		for m in $SCENARIO_MODULES; do
			ignore+=("--ignore=tests/integration/$m")
		done
	fi
	PGKEEL_BUILDDIR="$dir" /usr/bin/python3 -m pytest -v -x --durations=15 "${ignore[@]}" \
		tests/integration
}

distcheck() {
	local dir=$1
	(cd "$dir" && make -j"$JOBS" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror)
}

[ -n "${SKIP_DEPS:-}" ] || step "install Debian packages" install_deps
step "autoreconf" bootstrap
step "build" build "$BUILD_ROOT/default"
if [ -n "${BUILD_ONLY:-}" ]; then
	exit "$overall"
fi
step "unit and script tests" check "$BUILD_ROOT/default"
[ -n "${SKIP_SANITIZERS:-}" ] || {
	step "build (ASan+UBSan)" build "$BUILD_ROOT/sanitizers" --enable-sanitizers
	step "unit and script tests (ASan+UBSan)" check "$BUILD_ROOT/sanitizers"
}
step "integration tests" integration "$BUILD_ROOT/default"
[ -n "${SKIP_SANITIZERS:-}" ] ||
	step "integration tests (ASan+UBSan)" integration "$BUILD_ROOT/sanitizers" sanitizers
[ -n "${SKIP_DISTCHECK:-}" ] || step "make distcheck" distcheck "$BUILD_ROOT/default"

echo
echo "=== timing"
printf '%-40s %8s  %s\n' step seconds status
total=0
for i in "${!timing_names[@]}"; do
	printf '%-40s %8s  %s\n' "${timing_names[$i]}" "${timing_secs[$i]}" "${timing_status[$i]}"
	total=$((total + timing_secs[i]))
done
printf '%-40s %8s\n' total "$total"
if [ "$overall" -ne 0 ]; then
	echo "SOME STEPS FAILED" >&2
fi
exit "$overall"
