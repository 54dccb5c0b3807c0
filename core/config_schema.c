/*
 * The configuration schema tables (see config_schema.h): every key of
 * Patroni 3.0.2's patroni.yml and dynamic configuration, the later 3.x keys
 * pgkeel accepts, pgkeel's own extensions, and the PostgreSQL parameters
 * Patroni controls.  Sources: spec/patroni-interfaces.md §3-4 and, where the
 * spec is silent, the behaviour of Patroni v3.0.2 (config.py, validator.py,
 * postgresql/config.py and the dcs/ modules).
 *
 * Conventions:
 * - `def` is YAML text; NULL means "no default" (unset, computed, or
 *   documented in `doc`).
 * - REQUIRED on a key below an optional section means "required when that
 *   section is present".
 * - DEPRECATED rows are legacy spellings; `alias_of` names the current key.
 * - A row whose last segment is "*" under `bootstrap` or `postgresql` is a
 *   custom bootstrap / replica method section: valid only under the name
 *   that bootstrap.method or create_replica_methods gives it.
 * - Every path here must be documented in man/pgkeel.yml.5 (make check).
 */
#include "autoconf.h"

#include <stdbool.h>
#include <string.h>

#include "config_schema.h"
#include "util.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/pgkeel"
#endif

#define REQ PGKEEL_CF_REQUIRED
#define NORL PGKEEL_CF_NORELOAD
#define RST PGKEEL_CF_RESTART
#define IGN PGKEEL_CF_IGNORED
#define DEP PGKEEL_CF_DEPRECATED
#define UNS PGKEEL_CF_UNSUPPORTED
#define SEC PGKEEL_CF_SECRET
#define EXT PGKEEL_CF_EXTENSION

/* A key; K0 = no default. */
#define K(path, type, def, flags, doc) { path, PGKEEL_CT_##type, def, flags, NULL, doc }
#define K0(path, type, flags, doc) { path, PGKEEL_CT_##type, NULL, flags, NULL, doc }
/* A legacy spelling of `alias`. */
#define ALIAS(path, type, alias, flags, doc) \
	{ path, PGKEEL_CT_##type, NULL, (flags) | DEP, alias, doc }

const struct pgkeel_conf_key pgkeel_local_keys[] = {
	/* ---- top level */
	K0("scope", STRING, REQ | NORL, "cluster name: DCS key prefix and PostgreSQL cluster_name"),
	K0("name", STRING, REQ | NORL, "member name, unique in the cluster"),
	K("namespace", STRING, "/service/", NORL, "DCS path prefix the cluster keys live under"),
	K("backend_dir", STRING, PKGLIBDIR, NORL | EXT,
	  "directory holding the dcs_<name>.so backends (else $PGKEEL_BACKEND_DIR)"),

	/* global-only keys: Patroni ignores them in the local file */
	K0("ttl", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("loop_wait", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("retry_timeout", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("maximum_lag_on_failover", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("maximum_lag_on_syncnode", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("check_timeline", BOOL, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("primary_start_timeout", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("primary_stop_timeout", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	ALIAS("master_start_timeout", INT, "primary_start_timeout", IGN,
	      "old name of primary_start_timeout; global-only, ignored here"),
	ALIAS("master_stop_timeout", INT, "primary_stop_timeout", IGN,
	      "old name of primary_stop_timeout; global-only, ignored here"),
	K0("synchronous_mode", BOOL, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("synchronous_mode_strict", BOOL, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("synchronous_node_count", INT, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	K0("failsafe_mode", BOOL, IGN, "global-only: set it in bootstrap.dcs or the DCS"),
	/* DCS-only keys: read from the DCS config only */
	K0("max_timelines_history", INT, IGN, "DCS-only: set it in bootstrap.dcs or the DCS"),
	K0("pause", BOOL, IGN, "DCS-only: maintenance mode is set with pgkeelctl/patronictl pause"),
	K0("standby_cluster", FREEMAP, IGN, "DCS-only: set it in bootstrap.dcs or the DCS"),
	K0("slots", FREEMAP, IGN, "DCS-only: set it in bootstrap.dcs or the DCS"),
	K0("ignore_slots", LIST, IGN, "DCS-only: set it in bootstrap.dcs or the DCS"),

	/* ---- log */
	K0("log", MAP, 0, "logging"),
	K("log.level", STRING, "INFO", 0, "DEBUG, INFO, WARNING (WARN), ERROR, CRITICAL (FATAL)"),
	K("log.traceback_level", STRING, "ERROR", IGN, "Python traceback level; pgkeel has none"),
	K("log.format", ANY, "'%(asctime)s %(levelname)s: %(message)s'", IGN,
	  "Python logging format; pgkeel always writes Patroni's default layout"),
	K0("log.dateformat", STRING, 0, "strftime format of the time stamp"),
	K("log.max_queue_size", INT, "1000", 0, "records buffered for the logger thread"),
	K0("log.dir", STRING, 0, "write <dir>/pgkeel.log with size rotation instead of stderr"),
	K("log.file_num", INT, "4", 0, "rotated log files kept"),
	K("log.file_size", INT, "25000000", 0, "bytes per log file before rotation"),
	K0("log.loggers", FREEMAP, IGN, "per-Python-module levels; pgkeel has one logger"),
	K("log.type", STRING, "plain", 0, "plain (Patroni's line format) or json (Patroni 3.3)"),
	K0("log.static_fields", FREEMAP, IGN, "extra fields of json records (Patroni 3.3)"),
	K0("log.syslog", STRING, EXT,
	  "also log to syslog with this facility (daemon, user, local0..local7)"),

	/* ---- restapi */
	K0("restapi", MAP, REQ, "the REST API server"),
	K0("restapi.listen", HOSTPORT, REQ, "where the REST API listens: address:port"),
	K0("restapi.connect_address", HOSTPORT, REQ,
	  "address other members and clients use (api_url)"),
	K0("restapi.authentication", MAP, 0, "basic auth for the unsafe endpoints"),
	K0("restapi.authentication.username", STRING, 0, "basic-auth user name"),
	K0("restapi.authentication.password", STRING, SEC, "basic-auth password"),
	ALIAS("restapi.auth", STRING, "restapi.authentication", SEC,
	      "legacy 'user:password' form of restapi.authentication"),
	K0("restapi.certfile", STRING, 0, "PEM certificate; enables HTTPS"),
	K0("restapi.keyfile", STRING, 0, "PEM private key"),
	K0("restapi.keyfile_password", STRING, SEC, "password of the private key"),
	K0("restapi.cafile", STRING, 0, "CA bundle for client certificates"),
	K0("restapi.ciphers", STRING, 0, "OpenSSL cipher list"),
	K("restapi.verify_client", STRING, "none", 0,
	  "client certificates: none, optional, required"),
	K0("restapi.allowlist", LIST, 0, "hosts/IPs/CIDRs allowed to call unsafe endpoints"),
	K("restapi.allowlist_include_members", BOOL, "false", 0,
	  "also allow the cluster members' hosts"),
	K0("restapi.http_extra_headers", FREEMAP, 0, "headers added to every response"),
	K0("restapi.https_extra_headers", FREEMAP, 0, "headers added to responses over HTTPS"),
	K("restapi.request_queue_size", INT, "128", 0,
	  "listen backlog, 0..4096 (Patroni 3.0.3; its default is 5)"),

	/* ---- ctl */
	K0("ctl", MAP, 0, "client settings for pgkeelctl/patronictl and peer requests"),
	K("ctl.insecure", BOOL, "false", 0, "do not verify the REST server certificate"),
	K0("ctl.cacert", STRING, 0, "CA bundle (default: restapi.cafile)"),
	K0("ctl.certfile", STRING, 0, "client certificate (default: restapi.certfile)"),
	K0("ctl.keyfile", STRING, 0, "client key (default: restapi.keyfile)"),
	K0("ctl.keyfile_password", STRING, SEC, "password of the client key"),
	K0("ctl.authentication", MAP, 0, "client basic auth (Patroni 3.3; default restapi's)"),
	K0("ctl.authentication.username", STRING, 0, "client basic-auth user name"),
	K0("ctl.authentication.password", STRING, SEC, "client basic-auth password"),
	ALIAS("ctl.auth", STRING, "ctl.authentication", SEC,
	      "legacy 'user:password' form of ctl.authentication"),

	/* ---- etcd3 */
	K0("etcd3", MAP, NORL, "etcd v3 DCS (gRPC-JSON gateway)"),
	K0("etcd3.host", STRING, 0, "one endpoint host[:port]"),
	K0("etcd3.hosts", STRLIST, 0, "endpoints, list or comma-separated host:port"),
	K("etcd3.port", INT, "2379", 0, "port for host/hosts entries without one"),
	K("etcd3.use_proxies", BOOL, "false", 0, "treat hosts as proxies: no member discovery"),
	K0("etcd3.url", STRING, 0, "endpoint URL http(s)://host:port"),
	K0("etcd3.proxy", STRING, 0, "proxy URL; implies use_proxies"),
	K0("etcd3.srv", STRING, 0, "domain for DNS SRV discovery"),
	K0("etcd3.srv_suffix", STRING, 0, "suffix of the SRV record names"),
	K("etcd3.protocol", STRING, "http", 0, "http or https for host/hosts"),
	K0("etcd3.username", STRING, 0, "etcd user"),
	K0("etcd3.password", STRING, SEC, "etcd password"),
	K0("etcd3.cacert", STRING, 0, "CA certificate; enables verification"),
	K0("etcd3.cert", STRING, 0, "client certificate"),
	K0("etcd3.key", STRING, 0, "client key"),
	ALIAS("etcd3.discovery_srv", STRING, "etcd3.srv", 0, "old name of etcd3.srv"),
	ALIAS("etcd3.srv_domain", STRING, "etcd3.srv", 0, "old name of etcd3.srv"),

	/* ---- consul */
	K0("consul", MAP, NORL, "Consul DCS (local agent)"),
	K("consul.host", STRING, "127.0.0.1:8500", 0, "agent host[:port]"),
	K0("consul.url", STRING, 0, "agent URL http(s)://host:port"),
	K("consul.port", INT, "8500", 0, "agent port"),
	K("consul.scheme", STRING, "http", 0, "http or https"),
	K0("consul.token", STRING, SEC, "ACL token (sent as X-Consul-Token)"),
	K0("consul.verify", BOOL, 0, "verify the agent's certificate"),
	K0("consul.cacert", STRING, 0, "CA certificate"),
	K0("consul.cert", STRING, 0, "client certificate"),
	K0("consul.key", STRING, 0, "client key"),
	K0("consul.dc", STRING, 0, "datacenter (default: the agent's)"),
	K("consul.consistency", STRING, "default", 0, "read mode: default, consistent, stale"),
	K0("consul.checks", LIST, 0, "health checks bound to the session"),
	K("consul.register_service", BOOL, "false", 0, "register the member as a Consul service"),
	K0("consul.service_tags", LIST, 0, "extra tags of the registered service"),
	K("consul.service_check_interval", STRING, "5s", 0, "interval of the service health check"),
	K0("consul.service_check_tls_server_name", STRING, 0, "TLS server name of the check"),

	/* ---- zookeeper */
	K0("zookeeper", MAP, NORL, "ZooKeeper DCS"),
	K0("zookeeper.hosts", STRLIST, 0, "ensemble, list or comma-separated host:port"),
	K("zookeeper.use_ssl", BOOL, "false", 0, "TLS to the ensemble"),
	K0("zookeeper.cacert", STRING, 0, "CA certificate"),
	K0("zookeeper.cert", STRING, 0, "client certificate"),
	K0("zookeeper.key", STRING, 0, "client key"),
	K0("zookeeper.key_password", STRING, SEC, "password of the client key"),
	K("zookeeper.verify", BOOL, "true", 0, "verify the server certificate"),
	K0("zookeeper.set_acls", FREEMAP, 0, "default ACL: x509 principal -> permissions"),
	K0("zookeeper.auth_data", FREEMAP, SEC,
	  "scheme -> credential added on connect (Patroni 3.3)"),
	ALIAS("zookeeper.exhibitor", MAP, "exhibitor", UNS,
	      "legacy place of the exhibitor section"),

	/* ---- kubernetes */
	K0("kubernetes", MAP, NORL, "Kubernetes API DCS"),
	K("kubernetes.namespace", STRING, "default", 0, "namespace of the cluster objects"),
	K0("kubernetes.labels", FREEMAP, 0,
	  "labels of the cluster objects and selector (required)"),
	K("kubernetes.scope_label", STRING, "cluster-name", 0, "label holding the scope"),
	K("kubernetes.role_label", STRING, "role", 0, "pod label holding the role"),
	K("kubernetes.leader_label_value", STRING, "master", 0, "role label of the leader (3.1)"),
	K("kubernetes.follower_label_value", STRING, "replica", 0, "role label of replicas (3.1)"),
	K("kubernetes.standby_leader_label_value", STRING, "master", 0,
	  "role label of a standby leader (3.1)"),
	K0("kubernetes.tmp_role_label", STRING, 0, "extra pod label with the raw role (3.1)"),
	K("kubernetes.use_endpoints", BOOL, "false", 0, "Endpoints instead of ConfigMaps"),
	K0("kubernetes.pod_ip", STRING, 0, "this pod's IP (needed with use_endpoints)"),
	K0("kubernetes.ports", LIST, 0, "Endpoints ports: list of {name, port}"),
	K("kubernetes.bypass_api_service", BOOL, "false", 0, "talk to the API servers directly"),
	K0("kubernetes.cacert", STRING, 0, "CA bundle of the API server"),
	K0("kubernetes.retriable_http_codes", ANY, 0, "extra HTTP codes to retry: int or list"),
	K0("kubernetes.context", STRING, 0, "kubeconfig context outside a pod"),

	/* ---- unsupported DCS sections (recognised, refused with a hint) */
	K0("etcd", MAP, NORL | UNS, "etcd v2 API: unsupported, use etcd3"),
	K0("etcd.host", STRING, UNS, "etcd v2 endpoint"),
	K0("etcd.hosts", STRLIST, UNS, "etcd v2 endpoints"),
	K0("etcd.port", INT, UNS, "etcd v2 default port"),
	K0("etcd.use_proxies", BOOL, UNS, "etcd v2 proxies"),
	K0("etcd.url", STRING, UNS, "etcd v2 URL"),
	K0("etcd.proxy", STRING, UNS, "etcd v2 proxy URL"),
	K0("etcd.srv", STRING, UNS, "etcd v2 SRV domain"),
	K0("etcd.srv_suffix", STRING, UNS, "etcd v2 SRV suffix"),
	K0("etcd.protocol", STRING, UNS, "etcd v2 protocol"),
	K0("etcd.username", STRING, UNS, "etcd v2 user"),
	K0("etcd.password", STRING, UNS | SEC, "etcd v2 password"),
	K0("etcd.cacert", STRING, UNS, "etcd v2 CA certificate"),
	K0("etcd.cert", STRING, UNS, "etcd v2 client certificate"),
	K0("etcd.key", STRING, UNS, "etcd v2 client key"),
	K0("exhibitor", MAP, NORL | UNS, "Exhibitor-managed ZooKeeper: unsupported"),
	K0("exhibitor.hosts", STRLIST, UNS, "Exhibitor hosts"),
	K0("exhibitor.port", INT, UNS, "Exhibitor port"),
	K0("exhibitor.poll_interval", INT, UNS, "Exhibitor poll interval"),
	K0("raft", MAP, NORL | UNS, "Patroni's built-in Raft: unsupported"),
	K0("raft.self_addr", HOSTPORT, UNS, "Raft address"),
	K0("raft.bind_addr", HOSTPORT, UNS, "Raft bind address"),
	K0("raft.partner_addrs", STRLIST, UNS, "Raft partners"),
	K0("raft.data_dir", STRING, UNS, "Raft data directory"),
	K0("raft.password", STRING, UNS | SEC, "Raft traffic password"),
	K0("citus", MAP, NORL | UNS, "Citus integration: unsupported"),
	K0("citus.group", INT, UNS, "Citus group"),
	K0("citus.database", STRING, UNS, "Citus database"),

	/* ---- bootstrap */
	K0("bootstrap", MAP, 0, "how a new cluster is created"),
	K0("bootstrap.dcs", MAP, 0, "initial dynamic configuration (checked as DCS config)"),
	K("bootstrap.method", STRING, "initdb", 0, "initdb or the name of a custom method section"),
	K0("bootstrap.initdb", LIST_OR_MAP, 0, "initdb options: strings and one-key maps"),
	K0("bootstrap.pg_hba", LIST, 0, "lines appended to the new pg_hba.conf"),
	K0("bootstrap.users", FREEMAP, 0,
	  "roles created after bootstrap: name -> {password, options}"),
	K0("bootstrap.post_bootstrap", STRING, 0, "command run once after bootstrap with a DSN"),
	K0("bootstrap.post_init", STRING, 0, "same as post_bootstrap (which wins)"),
	K0("bootstrap.*", MAP, 0, "custom bootstrap method named by bootstrap.method"),
	K0("bootstrap.*.command", STRING, 0, "custom bootstrap command"),
	K("bootstrap.*.keep_existing_recovery_conf", BOOL, "false", 0,
	  "keep recovery settings the command left behind"),
	K("bootstrap.*.no_params", BOOL, "false", 0, "do not pass --scope and --datadir"),
	K0("bootstrap.*.recovery_conf", FREEMAP, 0, "recovery settings written after the command"),

	/* ---- postgresql */
	K0("postgresql", MAP, REQ, "the PostgreSQL instance"),
	K0("postgresql.listen", HOSTPORT, REQ | RST,
	  "where PostgreSQL listens: addr[,addr...]:port"),
	K0("postgresql.connect_address", HOSTPORT, REQ,
	  "address other members and clients connect to (conn_url)"),
	K0("postgresql.proxy_address", HOSTPORT, 0,
	  "address of a connection pooler beside it (proxy_url)"),
	K0("postgresql.data_dir", STRING, REQ | NORL, "data directory"),
	K0("postgresql.config_dir", STRING, RST, "directory of postgresql.conf (default data_dir)"),
	K("postgresql.bin_dir", STRING, "''", 0,
	  "directory of the PostgreSQL binaries ('' = PATH)"),
	K0("postgresql.bin_name", MAP, 0, "custom binary names (Patroni 3.0.3)"),
	K("postgresql.bin_name.pg_ctl", STRING, "pg_ctl", 0, "name of pg_ctl"),
	K("postgresql.bin_name.initdb", STRING, "initdb", 0, "name of initdb"),
	K("postgresql.bin_name.pg_controldata", STRING, "pg_controldata", 0,
	  "name of pg_controldata"),
	K("postgresql.bin_name.pg_basebackup", STRING, "pg_basebackup", 0, "name of pg_basebackup"),
	K("postgresql.bin_name.postgres", STRING, "postgres", 0, "name of postgres"),
	K("postgresql.bin_name.pg_isready", STRING, "pg_isready", 0, "name of pg_isready"),
	K("postgresql.bin_name.pg_rewind", STRING, "pg_rewind", 0, "name of pg_rewind"),
	K("postgresql.pgpass", STRING, "~/pgpass", 0,
	  "password file pgkeel writes for libpq tools"),
	K0("postgresql.authentication", MAP, REQ, "roles used by pgkeel and the replicas"),
	K0("postgresql.authentication.superuser", MAP, REQ, "superuser (initdb, local connections)"),
	K0("postgresql.authentication.replication", MAP, REQ, "replication role"),
	K0("postgresql.authentication.rewind", MAP, 0, "pg_rewind role (default: superuser)"),
	K0("postgresql.authentication.*.username", STRING, 0, "role name"),
	K0("postgresql.authentication.*.password", STRING, SEC, "role password"),
	K0("postgresql.authentication.*.sslmode", STRING, 0, "libpq sslmode"),
	K0("postgresql.authentication.*.sslcert", STRING, 0, "libpq sslcert"),
	K0("postgresql.authentication.*.sslkey", STRING, 0, "libpq sslkey"),
	K0("postgresql.authentication.*.sslpassword", STRING, SEC, "libpq sslpassword"),
	K0("postgresql.authentication.*.sslrootcert", STRING, 0, "libpq sslrootcert"),
	K0("postgresql.authentication.*.sslcrl", STRING, 0, "libpq sslcrl"),
	K0("postgresql.authentication.*.sslcrldir", STRING, 0, "libpq sslcrldir"),
	K0("postgresql.authentication.*.gssencmode", STRING, 0, "libpq gssencmode"),
	K0("postgresql.authentication.*.channel_binding", STRING, 0, "libpq channel_binding"),
	ALIAS("postgresql.superuser", MAP, "postgresql.authentication.superuser", 0,
	      "legacy place of authentication.superuser"),
	ALIAS("postgresql.replication", MAP, "postgresql.authentication.replication", 0,
	      "legacy place of authentication.replication"),
	ALIAS("postgresql.pg_rewind", MAP, "postgresql.authentication.superuser", 0,
	      "legacy: superuser credentials when none given; turns use_pg_rewind on"),
	ALIAS("postgresql.name", STRING, "name", 0, "legacy place of the member name"),
	K0("postgresql.parameters", FREEMAP, 0, "PostgreSQL parameters (over the DCS ones)"),
	K0("postgresql.pg_hba", LIST, 0, "pg_hba.conf lines; the file is rewritten from them"),
	K0("postgresql.pg_ident", LIST, 0, "pg_ident.conf lines; the file is rewritten from them"),
	K0("postgresql.callbacks", MAP, 0, "commands run on events: <cmd> <action> <role> <scope>"),
	K0("postgresql.callbacks.on_start", STRING, 0, "after PostgreSQL starts"),
	K0("postgresql.callbacks.on_stop", STRING, 0, "after PostgreSQL stops"),
	K0("postgresql.callbacks.on_restart", STRING, 0, "after PostgreSQL restarts"),
	K0("postgresql.callbacks.on_reload", STRING, 0, "after a configuration reload"),
	K0("postgresql.callbacks.on_role_change", STRING, 0, "after a promotion or demotion"),
	K0("postgresql.pre_promote", STRING, 0,
	  "fencing command before promotion; non-zero aborts"),
	K0("postgresql.before_stop", STRING, 0, "command before stopping PostgreSQL (3.0.3)"),
	K("postgresql.create_replica_methods", LIST, "[basebackup]", 0,
	  "methods tried in order to create a replica"),
	ALIAS("postgresql.create_replica_method", LIST, "postgresql.create_replica_methods", 0,
	      "old name of create_replica_methods"),
	K0("postgresql.basebackup", LIST_OR_MAP, 0, "extra pg_basebackup options"),
	K0("postgresql.recovery_conf", FREEMAP, 0, "extra recovery settings on standbys"),
	K0("postgresql.custom_conf", STRING, 0, "file included instead of postgresql.base.conf"),
	K("postgresql.use_unix_socket", BOOL, "false", 0, "own connections over the Unix socket"),
	K("postgresql.use_unix_socket_repl", BOOL, "false", 0,
	  "local replication connections over the Unix socket"),
	K("postgresql.pg_ctl_timeout", INT, "60", 0, "seconds to wait for start/stop"),
	K("postgresql.use_pg_rewind", BOOL, "false", 0, "rewind a diverged former primary"),
	K("postgresql.remove_data_directory_on_rewind_failure", BOOL, "false", 0,
	  "wipe the data directory when pg_rewind fails"),
	K("postgresql.remove_data_directory_on_diverged_timelines", BOOL, "false", 0,
	  "wipe the data directory when timelines diverged and rewind is impossible"),
	K0("postgresql.krbsrvname", STRING, 0, "Kerberos service name for libpq"),
	K("postgresql.database", STRING, "postgres", 0, "database of conn_url and own connections"),
	K("postgresql.config_base_name", STRING, "postgresql", RST,
	  "base name of the generated files"),
	K("postgresql.use_slots", BOOL, "true", IGN,
	  "DCS-only: set it in bootstrap.dcs.postgresql"),
	K0("postgresql.*", FREEMAP, 0, "custom replica method named in create_replica_methods"),
	K0("postgresql.*.command", STRING, 0, "replica method command (default: the method name)"),
	K("postgresql.*.keep_data", BOOL, "false", 0, "do not wipe the data directory first"),
	K("postgresql.*.no_params", BOOL, "false", 0,
	  "do not pass --scope --role --datadir --connstring"),
	K("postgresql.*.no_leader", BOOL, "false", 0, "method works without a running leader"),
	ALIAS("postgresql.*.no_master", BOOL, "postgresql.*.no_leader", 0, "old name of no_leader"),

	/* ---- watchdog */
	K0("watchdog", MAP, 0, "hardware/softdog watchdog"),
	K("watchdog.mode", SCALAR, "automatic", 0, "one of off, automatic, required"),
	K("watchdog.device", STRING, "/dev/watchdog", 0, "watchdog device"),
	K("watchdog.safety_margin", INT, "5", 0,
	  "seconds the watchdog fires before the lock expires"),
	K("watchdog.driver", STRING, "default", 0, "watchdog driver (default = Linux)"),

	/* ---- tags */
	K0("tags", FREEMAP, 0, "member tags, published in the member key"),
	K("tags.nofailover", BOOL, "false", 0, "never becomes leader"),
	K("tags.failover_priority", INT, "1", 0, "race priority at equal WAL position (3.2)"),
	K("tags.clonefrom", BOOL, "false", 0, "preferred source for new replicas"),
	K("tags.noloadbalance", BOOL, "false", 0, "GET /replica answers 503"),
	K0("tags.replicatefrom", STRING, 0, "member to stream from (cascading)"),
	K("tags.nosync", BOOL, "false", 0, "never a synchronous standby"),
	K("tags.nostream", BOOL, "false", 0, "no streaming, archive recovery only (3.3)"),
};
const size_t pgkeel_local_keys_len = PGKEEL_ARRAY_LEN(pgkeel_local_keys);

const struct pgkeel_conf_key pgkeel_dynamic_keys[] = {
	K("ttl", INT, "30", 0, "leader lock TTL in seconds"),
	K("loop_wait", INT, "10", 0, "seconds between HA cycles"),
	K("retry_timeout", INT, "10", 0, "seconds a DCS or PostgreSQL operation may retry"),
	K("maximum_lag_on_failover", INT, "1048576", 0, "bytes a replica may lag and still race"),
	K("maximum_lag_on_syncnode", INT, "-1", 0,
	  "bytes before a sync standby is replaced (<=0 off)"),
	K("max_timelines_history", INT, "0", 0, "entries kept in history (0 = all)"),
	K("primary_start_timeout", INT, "300", 0,
	  "seconds a crashed primary may recover before failover"),
	K("primary_stop_timeout", INT, "0", 0,
	  "seconds before SIGKILL on stop in synchronous mode"),
	ALIAS("master_start_timeout", INT, "primary_start_timeout", 0,
	      "old name of primary_start_timeout"),
	ALIAS("master_stop_timeout", INT, "primary_stop_timeout", 0,
	      "old name of primary_stop_timeout"),
	K("check_timeline", BOOL, "false", 0, "candidates on an older timeline do not race"),
	K("synchronous_mode", BOOL, "false", 0, "synchronous replication managed by pgkeel"),
	K("synchronous_mode_strict", BOOL, "false", 0, "block writes when no sync standby is left"),
	K("synchronous_node_count", INT, "1", 0, "number of synchronous standbys"),
	K("failsafe_mode", BOOL, "false", 0, "keep the primary while all members answer"),
	K0("pause", BOOL, 0, "maintenance mode: no automatic failover"),
	K0("standby_cluster", MAP, 0, "run the cluster as a standby of another one"),
	K0("standby_cluster.host", STRING, 0, "remote primary host (several: comma-separated)"),
	K0("standby_cluster.port", INT, 0, "port of the remote primary"),
	K0("standby_cluster.primary_slot_name", STRING, 0, "slot on the remote primary"),
	K0("standby_cluster.create_replica_methods", LIST, 0, "methods for the standby leader"),
	K0("standby_cluster.restore_command", STRING, 0, "restore_command of the standby cluster"),
	K0("standby_cluster.archive_cleanup_command", STRING, 0, "archive_cleanup_command"),
	K0("standby_cluster.recovery_min_apply_delay", STRING, 0, "recovery_min_apply_delay"),
	K0("slots", FREEMAP, 0, "permanent slots: name -> {type, database, plugin}"),
	ALIAS("permanent_slots", FREEMAP, "slots", 0, "other name of slots"),
	ALIAS("permanent_replication_slots", FREEMAP, "slots", 0, "other name of slots"),
	K0("ignore_slots", LIST, 0,
	  "slots pgkeel leaves alone: list of {name, type, database, plugin}"),
	K0("postgresql", MAP, 0, "PostgreSQL settings for every member"),
	K("postgresql.use_pg_rewind", BOOL, "false", 0, "rewind a diverged former primary"),
	K("postgresql.use_slots", BOOL, "true", 0, "replication slots for members (DCS-only)"),
	K0("postgresql.parameters", FREEMAP, 0, "PostgreSQL parameters for all members"),
	K0("postgresql.recovery_conf", FREEMAP, 0, "extra recovery settings on standbys"),
	K0("postgresql.pg_hba", LIST, 0, "pg_hba.conf lines"),
	K0("postgresql.pg_ident", LIST, 0, "pg_ident.conf lines"),
	K("postgresql.pg_ctl_timeout", INT, "60", 0, "seconds to wait for start/stop"),
	K("postgresql.remove_data_directory_on_rewind_failure", BOOL, "false", 0,
	  "wipe the data directory when pg_rewind fails"),
	K("postgresql.remove_data_directory_on_diverged_timelines", BOOL, "false", 0,
	  "wipe the data directory when timelines diverged"),
	K0("postgresql.callbacks", MAP, 0, "event commands"),
	K0("postgresql.callbacks.on_start", STRING, 0, "after PostgreSQL starts"),
	K0("postgresql.callbacks.on_stop", STRING, 0, "after PostgreSQL stops"),
	K0("postgresql.callbacks.on_restart", STRING, 0, "after PostgreSQL restarts"),
	K0("postgresql.callbacks.on_reload", STRING, 0, "after a configuration reload"),
	K0("postgresql.callbacks.on_role_change", STRING, 0, "after a promotion or demotion"),
	K0("postgresql.pre_promote", STRING, 0, "fencing command before promotion"),
	K0("postgresql.before_stop", STRING, 0, "command before stopping PostgreSQL"),
	K("postgresql.create_replica_methods", LIST, "[basebackup]", 0, "replica creation methods"),
	ALIAS("postgresql.create_replica_method", LIST, "postgresql.create_replica_methods", 0,
	      "old name of create_replica_methods"),
	K0("postgresql.basebackup", LIST_OR_MAP, 0, "extra pg_basebackup options"),
	K0("postgresql.custom_conf", STRING, 0, "file included instead of postgresql.base.conf"),
	K("postgresql.use_unix_socket", BOOL, "false", 0, "own connections over the Unix socket"),
	K("postgresql.use_unix_socket_repl", BOOL, "false", 0, "replication over the Unix socket"),
	K("postgresql.bin_dir", STRING, "''", 0, "directory of the PostgreSQL binaries"),
	K0("postgresql.bin_name", MAP, 0, "custom binary names"),
	K("postgresql.bin_name.pg_ctl", STRING, "pg_ctl", 0, "name of pg_ctl"),
	K("postgresql.bin_name.initdb", STRING, "initdb", 0, "name of initdb"),
	K("postgresql.bin_name.pg_controldata", STRING, "pg_controldata", 0,
	  "name of pg_controldata"),
	K("postgresql.bin_name.pg_basebackup", STRING, "pg_basebackup", 0, "name of pg_basebackup"),
	K("postgresql.bin_name.postgres", STRING, "postgres", 0, "name of postgres"),
	K("postgresql.bin_name.pg_isready", STRING, "pg_isready", 0, "name of pg_isready"),
	K("postgresql.bin_name.pg_rewind", STRING, "pg_rewind", 0, "name of pg_rewind"),
	K0("postgresql.krbsrvname", STRING, 0, "Kerberos service name"),
	K("postgresql.database", STRING, "postgres", 0, "database of conn_url and own connections"),
	K("postgresql.config_base_name", STRING, "postgresql", RST, "base name of generated files"),
	/* local-only keys: dropped when found in the DCS */
	K0("postgresql.listen", HOSTPORT, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.connect_address", HOSTPORT, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.proxy_address", HOSTPORT, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.data_dir", STRING, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.config_dir", STRING, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.pgpass", STRING, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.authentication", FREEMAP, IGN, "local-only: ignored in the DCS"),
	K0("postgresql.*", FREEMAP, 0, "custom replica method named in create_replica_methods"),
	K0("postgresql.*.command", STRING, 0, "replica method command"),
	K("postgresql.*.keep_data", BOOL, "false", 0, "do not wipe the data directory first"),
	K("postgresql.*.no_params", BOOL, "false", 0, "pass no default parameters"),
	K("postgresql.*.no_leader", BOOL, "false", 0, "method works without a running leader"),
	ALIAS("postgresql.*.no_master", BOOL, "postgresql.*.no_leader", 0, "old name of no_leader"),
};
const size_t pgkeel_dynamic_keys_len = PGKEEL_ARRAY_LEN(pgkeel_dynamic_keys);

/* Command-line parameters (spec §3.11; Patroni 3.0.2 CMDLINE_OPTIONS). */
const struct pgkeel_controlled_param pgkeel_controlled_params[] = {
	{ "listen_addresses", NULL, 0, 0, PGKEEL_CP_NEVER, 0, NULL },
	{ "port", NULL, 0, 0, PGKEEL_CP_NEVER, 0, NULL },
	{ "cluster_name", NULL, 90500, 0, PGKEEL_CP_NEVER, 0, NULL },
	{ "wal_level", "hot_standby", 0, 0, PGKEEL_CP_ENUM, 0, "|hot_standby|replica|logical|" },
	{ "hot_standby", "on", 0, 0, PGKEEL_CP_NEVER, 0, NULL },
	{ "max_connections", "100", 0, 0, PGKEEL_CP_INT_MIN, 25, NULL },
	{ "max_wal_senders", "10", 0, 0, PGKEEL_CP_INT_MIN, 3, NULL },
	{ "wal_keep_segments", "8", 0, 130000, PGKEEL_CP_INT_MIN, 1, NULL },
	{ "wal_keep_size", "128MB", 130000, 0, PGKEEL_CP_SIZE_MIN_MB, 16, NULL },
	{ "max_prepared_transactions", "0", 0, 0, PGKEEL_CP_INT_MIN, 0, NULL },
	{ "max_locks_per_transaction", "64", 0, 0, PGKEEL_CP_INT_MIN, 32, NULL },
	{ "track_commit_timestamp", "off", 90500, 0, PGKEEL_CP_BOOL, 0, NULL },
	{ "max_replication_slots", "10", 90400, 0, PGKEEL_CP_INT_MIN, 4, NULL },
	{ "max_worker_processes", "8", 90400, 0, PGKEEL_CP_INT_MIN, 2, NULL },
	{ "wal_log_hints", "on", 90400, 0, PGKEEL_CP_NEVER, 0, NULL },
};
const size_t pgkeel_controlled_params_len = PGKEEL_ARRAY_LEN(pgkeel_controlled_params);

/* ------------------------------------------------------------------ lookup */

/* Length of the dotted segment starting at s. */
static size_t seg_len(const char *s)
{
	const char *dot = strchr(s, '.');

	return dot != NULL ? (size_t)(dot - s) : strlen(s);
}

/* Segment `n` (0-based) of a dotted path, or NULL; *len gets its length. */
static const char *seg_at(const char *path, size_t n, size_t *len)
{
	const char *s = path;

	for (size_t i = 0; i < n; i++) {
		size_t l = seg_len(s);

		if (s[l] == '\0')
			return NULL;
		s += l + 1;
	}
	*len = seg_len(s);
	return s;
}

static size_t seg_count(const char *path)
{
	size_t n = 1;

	for (const char *p = path; *p != '\0'; p++)
		if (*p == '.')
			n++;
	return n;
}

static bool seg_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static bool seg_is_star(const char *s, size_t len)
{
	return len == 1 && s[0] == '*';
}

/* Do the first `n` segments of row path `pat` match those of `path`? ("*" = any) */
static bool prefix_matches(const char *pat, const char *path, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t pl, ql;
		const char *p = seg_at(pat, i, &pl);
		const char *q = seg_at(path, i, &ql);

		if (p == NULL || q == NULL)
			return false;
		if (!seg_is_star(p, pl) && !seg_eq(p, pl, q, ql))
			return false;
	}
	return true;
}

/*
 * A "*" at depth d is shadowed for `path` when the table lists keys below a
 * literal segment equal to path's segment d (e.g. postgresql.callbacks.* are
 * listed, so postgresql.callbacks.command is not postgresql.*.command).
 */
static bool star_shadowed(const struct pgkeel_conf_key *tab, size_t len, const char *path,
                          size_t d)
{
	size_t ql;
	const char *q = seg_at(path, d, &ql);

	for (size_t i = 0; i < len; i++) {
		size_t pl;
		const char *p = seg_at(tab[i].path, d, &pl);

		if (p == NULL || seg_is_star(p, pl) || !seg_eq(p, pl, q, ql))
			continue;
		if (seg_count(tab[i].path) > d + 1 && prefix_matches(tab[i].path, path, d))
			return true;
	}
	return false;
}

/*
 * Match `path` against row `pat`.  Returns false on no match; otherwise
 * *literal gets a bit mask of the literal segments (most significant bit =
 * first segment), so a literal early segment ranks above a "*".
 */
static bool row_matches(const struct pgkeel_conf_key *tab, size_t len, const char *pat,
                        const char *path, unsigned long *literal)
{
	size_t n = seg_count(pat);
	unsigned long mask = 0;

	if (n != seg_count(path) || n >= sizeof(mask) * 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		size_t pl, ql;
		const char *p = seg_at(pat, i, &pl);
		const char *q = seg_at(path, i, &ql);

		mask <<= 1;
		if (seg_eq(p, pl, q, ql)) {
			mask |= 1;
			continue;
		}
		if (!seg_is_star(p, pl) || ql == 0 || star_shadowed(tab, len, path, i))
			return false;
	}
	*literal = mask;
	return true;
}

const struct pgkeel_conf_key *pgkeel_conf_key_find(const struct pgkeel_conf_key *tab,
                                                   size_t len, const char *path)
{
	const struct pgkeel_conf_key *best = NULL;
	unsigned long best_literal = 0;

	if (tab == NULL || path == NULL || *path == '\0')
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (strcmp(tab[i].path, path) == 0)
			return &tab[i];
	}
	for (size_t i = 0; i < len; i++) {
		unsigned long literal;

		if (strchr(tab[i].path, '*') == NULL)
			continue;
		if (!row_matches(tab, len, tab[i].path, path, &literal))
			continue;
		if (best == NULL || literal > best_literal) {
			best = &tab[i];
			best_literal = literal;
		}
	}
	return best;
}
