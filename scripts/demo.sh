#!/usr/bin/env bash
# The main job: a local 3-node demo cluster on loopback.
#
# The HA loop (issue "The HA loop and the core REST API") is what makes the
# three daemons form a cluster; until it lands this script does everything
# that exists today: installs the build dependencies, builds pgkeel, writes
# the three nodes' patroni.yml files (etcd3 DCS, loopback ports) and has
# pgkeel validate each of them.  It starts no server.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
DEMO_DIR=${DEMO_DIR:-/tmp/pgkeel-demo}
BUILD=${BUILD:-$top/build/default}

echo "building pgkeel (log: $DEMO_DIR/build.log)"
mkdir -p "$DEMO_DIR"
BUILD_ONLY=1 BUILD_ROOT="$top/build" "$top/scripts/test.sh" >"$DEMO_DIR/build.log" 2>&1 || {
	tail -30 "$DEMO_DIR/build.log" >&2
	echo "build failed; the whole log is in $DEMO_DIR/build.log" >&2
	exit 1
}

mkdir -p "$DEMO_DIR"
for i in 1 2 3; do
	cat > "$DEMO_DIR/pg-$i.yml" <<YAML
scope: demo
namespace: /demo/
name: pg-$i
restapi:
  listen: 127.0.0.1:$((8007 + i))
  connect_address: 127.0.0.1:$((8007 + i))
etcd3:
  hosts: 127.0.0.1:2379
$( [ "$i" -eq 1 ] && cat <<'BOOT'
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 3
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_level: replica
        hot_standby: on
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
BOOT
)
postgresql:
  listen: 127.0.0.1:$((54320 + i))
  connect_address: 127.0.0.1:$((54320 + i))
  data_dir: $DEMO_DIR/data/pg-$i
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: $DEMO_DIR/pgpass-$i
  authentication:
    superuser: {username: postgres, password: demo-super}
    replication: {username: replicator, password: demo-repl}
YAML
	echo "--- pg-$i ($DEMO_DIR/pg-$i.yml)"
	"$BUILD/core/pgkeel" --validate-config "$DEMO_DIR/pg-$i.yml" 2>&1 |
		grep -v -e 'loopback address' -e 'no DCS endpoint answers' -e 'backend directory' \
			-e 'DCS backend' || true
done
echo
echo "pgkeel $("$BUILD/core/pgkeel" --version | cut -d' ' -f2) is built and the three configurations are valid."
echo "The cluster itself (etcd + 3 pgkeel daemons + PostgreSQL 15) lands with the HA loop."
