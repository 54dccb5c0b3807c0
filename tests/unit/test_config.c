/* Unit tests for the configuration loader (core/config*.c). */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"
#include "config.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgkeel-test-config-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	pgkeel_config_env_reset();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* A small valid config; `extra` is appended (it may override keys only in new sections). */
#define BASE_CONFIG                                                    \
	"scope: batman\n"                                              \
	"namespace: /db/\n"                                            \
	"name: pg-1\n"                                                 \
	"restapi:\n  listen: 127.0.0.1:8008\n  connect_address: 127.0.0.1:8008\n" \
	"etcd3:\n  hosts: 127.0.0.1:2379\n"                            \
	"postgresql:\n  listen: 127.0.0.1:5432\n"                      \
	"  connect_address: 127.0.0.1:5432\n"                          \
	"  data_dir: /tmp/pgkeel-nonexistent/data\n"                   \
	"  authentication:\n"                                          \
	"    superuser: {username: postgres, password: secret}\n"      \
	"    replication: {username: replicator, password: rep}\n"

static struct pgkeel_config *load(const char *path, bool strict, struct pgkeel_diag *d)
{
	struct pgkeel_config_opts opts = {.strict = strict, .use_environ = true};

	pgkeel_diag_init(d);
	return pgkeel_config_load(path, &opts, d);
}

static bool diag_has(json_object *arr, const char *needle)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (strstr(json_object_get_string(json_object_array_get_idx(arr, i)), needle) != NULL)
			return true;
	return false;
}

static void expect_error(const char *text, const char *needle)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c = load(write_file("bad.yml", text), false, &d);

	assert_null(c);
	if (!diag_has(d.errors, needle))
		fail_msg("no error containing '%s' in %s", needle,
		         json_object_to_json_string(d.errors));
	pgkeel_diag_clear(&d);
}

static void test_seed_config_is_valid(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c = load(TEST_SRCDIR "/tests/config/seed-pg-1.yml", false, &d);

	(void)state;
	if (c == NULL)
		fail_msg("seed config rejected: %s", json_object_to_json_string(d.errors));
	assert_int_equal(pgkeel_diag_warnings(&d), 0);
	assert_string_equal(c->name, "pg-1");
	assert_string_equal(c->scope, "prod-pg");
	assert_string_equal(c->namespace_, "/db/");
	assert_string_equal(c->dcs_type, "etcd3");
	assert_string_equal(c->dcs_options_json,
	                    "{\"hosts\":\"10.0.5.10:2379,10.0.5.11:2379,10.0.5.12:2379\"}");
	assert_string_equal(c->data_dir, "/var/lib/postgresql/15/main");
	assert_int_equal(c->ttl, 30);
	assert_int_equal(c->loop_wait, 10);
	assert_int_equal(c->retry_timeout, 10);
	/* effective view: DCS parameters merged over the controlled defaults */
	assert_int_equal(json_object_get_int(pgkeel_json_path(c->effective,
	                                                      "postgresql.parameters.max_connections")),
	                 200);
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.parameters.wal_keep_size")),
	                    "512MB");
	assert_true(json_object_get_boolean(pgkeel_json_path(c->effective, "synchronous_mode")));
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.parameters.unix_socket_directories")),
	                    "/var/run/postgresql");
	assert_string_equal(json_object_get_string(pgkeel_json_path(c->effective,
	                                                            "postgresql.scope")),
	                    "prod-pg");
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

/* The seed's bootstrap.dcs, as pgkeel would write it into the DCS `config` key. */
static void test_bootstrap_dcs_matches_patroni(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c = load(TEST_SRCDIR "/tests/config/seed-pg-1.yml", false, &d);
	FILE *f = fopen(TEST_SRCDIR "/tests/data/patroni-3.0.2/config.json", "r");
	char want[4096];
	size_t n;
	char *got;

	(void)state;
	assert_non_null(c);
	assert_non_null(f);
	n = fread(want, 1, sizeof(want) - 1, f);
	fclose(f);
	want[n] = '\0';
	got = pgkeel_json_compact(c->dynamic);
	assert_string_equal(got, want);
	free(got);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_wrong_type_names_place(void **state)
{
	(void)state;
	expect_error(BASE_CONFIG "    rewind:\n      password: [1, 2]\n",
	             "bad.yml:17:17: postgresql.authentication.rewind.password: expected a string");
	expect_error(BASE_CONFIG "  pg_ctl_timeout: soon\n",
	             "bad.yml:16:19: postgresql.pg_ctl_timeout: expected an integer");
	expect_error(BASE_CONFIG "  use_pg_rewind: maybe\n", "postgresql.use_pg_rewind: expected a "
	                                                       "boolean");
	expect_error(BASE_CONFIG "tags: [a]\n", "bad.yml:16:7: tags: expected a mapping");
}

static void test_missing_required(void **state)
{
	(void)state;
	expect_error("namespace: /db/\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "etcd3: {host: 127.0.0.1:2379}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432}\n",
	             "missing required key 'scope'");
	expect_error("scope: x\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "etcd3: {host: 127.0.0.1:2379}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432}\n",
	             "missing required key 'name'");
	expect_error("scope: x\nname: y\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "etcd3: {host: 127.0.0.1:2379}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432}\n",
	             "missing required key 'postgresql.data_dir'");
}

static void test_dcs_selection(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	expect_error("scope: x\nname: y\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432, "
	             "data_dir: /d}\n",
	             "no DCS section");
	expect_error("scope: x\nname: y\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "etcd: {host: 127.0.0.1:2379}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432, "
	             "data_dir: /d}\n",
	             "bad.yml:4:1: etcd: the etcd v2 API is not supported; use an etcd3: section");
	expect_error("scope: x\nname: y\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "raft: {self_addr: 127.0.0.1:2222}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432, "
	             "data_dir: /d}\n",
	             "raft: Patroni's built-in raft DCS is not supported");
	expect_error(BASE_CONFIG "citus: {group: 0, database: citus}\n", "citus");

	c = load(write_file("two.yml", BASE_CONFIG "zookeeper: {hosts: [127.0.0.1:2181]}\n"
	                                            "consul: {host: 127.0.0.1:8500}\n"),
	         false, &d);
	assert_non_null(c);
	assert_string_equal(c->dcs_type, "consul");
	assert_true(diag_has(d.warnings, "several DCS sections (consul, etcd3, zookeeper); using "
	                                 "consul"));
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_syntax_and_duplicates(void **state)
{
	(void)state;
	expect_error(BASE_CONFIG "tags:\n  a: 1\n  a: 2\n", "bad.yml:18:3: duplicate key 'a' in 'tags'");
	expect_error("scope: [x\n", "bad.yml:");
	expect_error(BASE_CONFIG "bootstrap:\n  dcs: 5\n", "bootstrap.dcs: expected a mapping");
}

static void test_unreadable_file(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	char *p;

	(void)state;
	c = load("/nonexistent/dir/patroni.yml", false, &d);
	assert_null(c);
	assert_true(diag_has(d.errors, "/nonexistent/dir/patroni.yml: cannot read the "
	                               "configuration"));
	pgkeel_diag_clear(&d);
	if (geteuid() != 0) {
		p = write_file("secret.yml", BASE_CONFIG);
		assert_int_equal(chmod(p, 0), 0);
		c = load(p, false, &d);
		assert_null(c);
		assert_true(diag_has(d.errors, "cannot open"));
		pgkeel_diag_clear(&d);
	}
	c = load(write_file("empty.yml", "# nothing\n"), false, &d);
	assert_null(c);
	assert_true(diag_has(d.errors, "the configuration is empty"));
	pgkeel_diag_clear(&d);
}

static void test_unknown_and_ignored_keys_warn(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	c = load(write_file("w.yml", BASE_CONFIG "  frobnicate: 1\nttl: 5\nloop_wait: 1\n"),
	         false, &d);
	assert_non_null(c);
	assert_true(diag_has(d.warnings, "w.yml:16:3: unknown key 'postgresql.frobnicate'"));
	assert_true(diag_has(d.warnings, "w.yml:17:1: ttl is ignored here"));
	assert_int_equal(c->ttl, 30); /* the top-level value has no effect */
	assert_int_equal(c->loop_wait, 10);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_timing_clamp(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	const char *fast = BASE_CONFIG "bootstrap:\n  dcs: {ttl: 10, loop_wait: 2, retry_timeout: 3}\n";
	const char *bad = BASE_CONFIG "bootstrap:\n  dcs: {ttl: 20, loop_wait: 10, retry_timeout: 10}\n";

	(void)state;
	c = load(write_file("fast.yml", fast), true, &d);
	assert_non_null(c);
	assert_int_equal(pgkeel_diag_warnings(&d), 0);
	assert_int_equal(c->ttl, 10);
	assert_int_equal(c->loop_wait, 2);
	assert_int_equal(c->retry_timeout, 3);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);

	c = load(write_file("bad.yml", bad), false, &d);
	assert_non_null(c);
	assert_true(diag_has(d.warnings, "loop_wait (10) + 2*retry_timeout (10) > ttl (20)"));
	assert_int_equal(c->loop_wait, 1);
	assert_int_equal(c->retry_timeout, 9);
	/* the dynamic tree itself is not rewritten: it goes to the DCS as given */
	assert_int_equal(json_object_get_int(pgkeel_json_path(c->dynamic, "loop_wait")), 10);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);

	c = load(write_file("bad.yml", bad), true, &d);
	assert_null(c);
	assert_true(diag_has(d.errors, "> ttl (20)"));
	pgkeel_diag_clear(&d);
}

static void test_environment_overrides(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	json_object *hosts;

	(void)state;
	pgkeel_config_env_reset();
	setenv("PATRONI_NAME", "from-env", 1);
	setenv("PGKEEL_SCOPE", "pgkeel-scope", 1);
	setenv("PATRONI_SCOPE", "patroni-scope", 1);
	setenv("PATRONI_ETCD3_HOSTS", "'10.0.0.1:2379','10.0.0.2:2379'", 1);
	setenv("PATRONI_REPLICATION_PASSWORD", "s3cret", 1);
	setenv("PATRONI_RESTAPI_ALLOWLIST_INCLUDE_MEMBERS", "on", 1);
	setenv("PATRONI_LOG_LOGGERS", "patroni.postmaster: WARNING", 1);
	setenv("PATRONI_ADMIN_PASSWORD", "adm", 1);
	setenv("PATRONI_ADMIN_OPTIONS", "createrole,createdb", 1);
	c = load(write_file("e.yml", BASE_CONFIG), false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(c->name, "from-env");
	assert_string_equal(c->scope, "pgkeel-scope");
	hosts = pgkeel_json_path(c->local, "etcd3.hosts");
	assert_string_equal(json_object_to_json_string_ext(hosts, JSON_C_TO_STRING_PLAIN),
	                    "[\"10.0.0.1:2379\",\"10.0.0.2:2379\"]");
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->local, "postgresql.authentication.replication.password")),
	                    "s3cret");
	assert_true(json_object_get_boolean(pgkeel_json_path(c->local,
	                                                     "restapi.allowlist_include_members")));
	assert_string_equal(json_object_get_string(json_object_object_get(
				    pgkeel_json_path(c->local, "log.loggers"), "patroni.postmaster")),
	                    "WARNING");
	assert_string_equal(json_object_to_json_string_ext(pgkeel_json_path(c->local,
	                                                                     "bootstrap.users.ADMIN"),
	                                                   JSON_C_TO_STRING_PLAIN),
	                    "{\"password\":\"adm\",\"options\":[\"createrole\",\"createdb\"]}");
	/* consumed variables are gone before any child can inherit them */
	assert_null(getenv("PATRONI_REPLICATION_PASSWORD"));
	assert_null(getenv("PATRONI_NAME"));
	assert_null(getenv("PGKEEL_SCOPE"));
	assert_null(getenv("PATRONI_SCOPE"));
	assert_null(getenv("PATRONI_ADMIN_PASSWORD"));
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
	pgkeel_config_env_reset();
}

static void test_env_list_and_dict_syntax(void **state)
{
	json_object *o;

	(void)state;
	o = pgkeel_env_parse_list("a,b");
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	                    "[\"a\",\"b\"]");
	json_object_put(o);
	o = pgkeel_env_parse_list("[1, 'x']");
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "[1,\"x\"]");
	json_object_put(o);
	o = pgkeel_env_parse_dict("a: 1, b: on");
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	                    "{\"a\":1,\"b\":true}");
	json_object_put(o);
	o = pgkeel_env_parse_dict("{a: [1}");
	assert_null(o);
}

static void test_config_directory(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	char dir[256];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/conf.d", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_file("conf.d/00-base.yml", BASE_CONFIG "tags: {nosync: true, dc: a}\n");
	write_file("conf.d/10-node.yml", "name: pg-2\ntags: {dc: b, nosync: null}\n");
	write_file("conf.d/README", "not yaml: [");
	c = load(dir, false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(c->name, "pg-2");
	assert_string_equal(json_object_to_json_string_ext(pgkeel_json_path(c->local, "tags"),
	                                                   JSON_C_TO_STRING_PLAIN),
	                    "{\"dc\":\"b\"}");
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_patroni_configuration_env(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	setenv("PATRONI_CONFIGURATION", BASE_CONFIG, 1);
	c = load(NULL, false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(c->source, "PATRONI_CONFIGURATION");
	assert_string_equal(c->scope, "batman");
	assert_null(getenv("PATRONI_CONFIGURATION"));
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_effective_rules(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c, *c2;
	json_object *dyn;

	(void)state;
	c = load(write_file("eff.yml",
	                    BASE_CONFIG "    superuser2: {username: x, bogus: 1}\n"
	                                "  use_slots: false\n"
	                                "  parameters: {max_connections: 500, work_mem: 8MB}\n"
	                                "bootstrap:\n  dcs:\n    postgresql:\n      parameters:\n"
	                                "        max_connections: 10\n"
	                                "        max_wal_senders: 20\n"
	                                "        wal_level: minimal\n"),
	         false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	/* local value of a controlled parameter dropped, invalid DCS value -> default */
	assert_int_equal(json_object_get_int(pgkeel_json_path(
				 c->effective, "postgresql.parameters.max_connections")),
	                 100);
	assert_int_equal(json_object_get_int(pgkeel_json_path(
				 c->effective, "postgresql.parameters.max_wal_senders")),
	                 20);
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.parameters.wal_level")),
	                    "hot_standby");
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.parameters.work_mem")),
	                    "8MB");
	assert_true(diag_has(d.warnings, "postgresql.parameters.max_connections in the local"));
	assert_true(diag_has(d.warnings, "postgresql.parameters.max_connections=10 is not valid"));
	/* use_slots is DCS-only */
	assert_true(json_object_get_boolean(pgkeel_json_path(c->effective, "postgresql.use_slots")));
	/* authentication keeps only connection parameters */
	assert_null(pgkeel_json_path(c->effective, "postgresql.authentication.superuser2.bogus"));
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.authentication.superuser2.username")),
	                    "x");
	pgkeel_diag_clear(&d);

	/* a dynamic config from the DCS replaces bootstrap.dcs */
	dyn = json_tokener_parse("{\"ttl\":\"40\",\"loop_wait\":5,\"synchronous_mode\":true,"
	                         "\"postgresql\":{\"use_slots\":false,\"data_dir\":\"/evil\"},"
	                         "\"pause\":true}");
	pgkeel_diag_init(&d);
	c2 = pgkeel_config_with_dynamic(c, dyn, &d);
	assert_non_null(c2);
	assert_int_equal(c2->ttl, 40);
	assert_int_equal(c2->loop_wait, 5);
	assert_false(json_object_get_boolean(pgkeel_json_path(c2->effective, "postgresql.use_slots")));
	assert_string_equal(c2->data_dir, "/tmp/pgkeel-nonexistent/data");
	assert_true(json_object_get_boolean(pgkeel_json_path(c2->effective, "pause")));
	json_object_put(dyn);
	pgkeel_config_unref(c2);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_reload_keeps_fixed_keys(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config_opts opts = {.use_environ = true};
	struct pgkeel_config *c, *n;
	char *p;

	(void)state;
	p = write_file("r.yml", BASE_CONFIG);
	c = load(p, false, &d);
	assert_non_null(c);
	pgkeel_diag_clear(&d);

	write_file("r.yml", "scope: robin\nnamespace: /db/\nname: pg-1\n"
	                    "restapi:\n  listen: 127.0.0.1:8009\n  connect_address: 127.0.0.1:8009\n"
	                    "consul:\n  host: 127.0.0.1:8500\n"
	                    "postgresql:\n  listen: 127.0.0.1:5432\n"
	                    "  connect_address: 127.0.0.1:5432\n  data_dir: /elsewhere\n"
	                    "  authentication:\n"
	                    "    superuser: {username: postgres, password: secret}\n"
	                    "    replication: {username: replicator, password: rep}\n"
	                    "tags: {nofailover: true}\n");
	pgkeel_diag_init(&d);
	n = pgkeel_config_reload(c, p, &opts, &d);
	if (n == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(n->scope, "batman");
	assert_string_equal(n->data_dir, "/tmp/pgkeel-nonexistent/data");
	assert_string_equal(n->dcs_type, "etcd3");
	assert_string_equal(json_object_get_string(pgkeel_json_path(n->effective, "restapi.listen")),
	                    "127.0.0.1:8009");
	assert_true(diag_has(d.warnings, "scope cannot change at runtime; keeping 'batman'"));
	assert_true(diag_has(d.warnings, "postgresql.data_dir cannot change at runtime"));
	assert_true(diag_has(d.warnings, "the DCS type cannot change at runtime; keeping etcd3"));
	pgkeel_diag_clear(&d);

	/* a broken file: reload fails, the caller keeps the old snapshot */
	write_file("r.yml", "scope: [\n");
	pgkeel_diag_init(&d);
	assert_null(pgkeel_config_reload(n, p, &opts, &d));
	assert_true(pgkeel_diag_errors(&d) > 0);
	pgkeel_diag_clear(&d);

	/* the published snapshot is refcounted */
	pgkeel_config_publish(n);
	{
		struct pgkeel_config *cur = pgkeel_config_current();

		assert_ptr_equal(cur, n);
		pgkeel_config_unref(cur);
	}
	pgkeel_config_publish(NULL);
	pgkeel_config_unref(n);
	pgkeel_config_unref(c);
}

static void test_legacy_forms(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	c = load(write_file("legacy.yml",
	                    "scope: x\nnamespace: /db/\n"
	                    "restapi: {listen: ':8008', connect_address: 127.0.0.1:8008, "
	                    "auth: 'admin:pw:with:colons'}\n"
	                    "etcd3: {host: 127.0.0.1:2379}\n"
	                    "postgresql:\n  name: legacy-name\n  listen: 127.0.0.1:5432\n"
	                    "  connect_address: 127.0.0.1:5432\n  data_dir: /d\n"
	                    "  replication: {username: r, password: p}\n"
	                    "  superuser: {username: s, password: p}\n"),
	         false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(c->name, "legacy-name");
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.authentication.replication.username")),
	                    "r");
	assert_true(diag_has(d.warnings, "postgresql.replication is deprecated"));
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "restapi.authentication.username")),
	                    "admin");
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "restapi.authentication.password")),
	                    "pw:with:colons");
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

/* Review findings: the DCS tree cannot override local-only keys. */
static void test_dynamic_cannot_override_local(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	c = load(write_file("dyn.yml",
	                    BASE_CONFIG "tags: {dc: a}\n"
	                                "bootstrap:\n  dcs:\n    name: evil\n    scope: other\n"
	                                "    tags: {nofailover: true}\n"
	                                "    watchdog: {mode: required}\n"
	                                "    restapi: {listen: '1.2.3.4:1'}\n"
	                                "    master_start_timeout: 50\n"
	                                "    primary_start_timeout: 100\n"
	                                "    pause: true\n"),
	         false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(c->name, "pg-1");
	assert_string_equal(c->scope, "batman");
	assert_string_equal(json_object_get_string(pgkeel_json_path(c->effective, "restapi.listen")),
	                    "127.0.0.1:8008");
	assert_string_equal(json_object_get_string(pgkeel_json_path(c->effective, "watchdog.mode")),
	                    "automatic");
	assert_null(pgkeel_json_path(c->effective, "tags.nofailover"));
	assert_int_equal(json_object_get_int(pgkeel_json_path(c->effective,
	                                                      "primary_start_timeout")),
	                 100);
	assert_true(json_object_get_boolean(pgkeel_json_path(c->effective, "pause")));
	assert_true(diag_has(d.warnings, "unknown key 'bootstrap.dcs.name'"));
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_hostile_values(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	/* a legacy key next to an authentication that is not a map: an error, no abort */
	expect_error("scope: x\nname: y\n"
	             "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	             "etcd3: {host: 127.0.0.1:2379}\n"
	             "postgresql: {listen: 127.0.0.1:5432, connect_address: 127.0.0.1:5432, "
	             "data_dir: /d, authentication: x, replication: {username: a}}\n",
	             "postgresql.authentication: expected a mapping");
	expect_error(BASE_CONFIG "bootstrap:\n  dcs: {ttl: 9223372036854775807, "
	                         "loop_wait: 9223372036854775807}\n",
	             "must not exceed");
	expect_error(BASE_CONFIG "bootstrap:\n  dcs: {ttl: 4294967296000}\n", "must not exceed");
	expect_error(BASE_CONFIG "log: {max_queue_size: 4294967296}\n",
	             "log.max_queue_size: expected an integer from 1 to 1000000");
	/* NaN: an error in the file; from the DCS, the default with a warning */
	expect_error(BASE_CONFIG "bootstrap:\n  dcs: {ttl: .nan}\n",
	             "bad.yml:17:14: bootstrap.dcs.ttl: expected an integer");
	c = load(write_file("ok.yml", BASE_CONFIG), false, &d);
	assert_non_null(c);
	pgkeel_diag_clear(&d);
	{
		json_object *dyn = json_object_new_object();
		struct pgkeel_config *c2;

		json_object_object_add(dyn, "ttl", json_object_new_double(NAN));
		pgkeel_diag_init(&d);
		c2 = pgkeel_config_with_dynamic(c, dyn, &d);
		assert_non_null(c2);
		assert_int_equal(c2->ttl, 30);
		assert_true(diag_has(d.warnings, "dynamic configuration: ttl: expected an integer"));
		json_object_put(dyn);
		pgkeel_config_unref(c2);
	}
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
	/* a huge size does not overflow */
	c = load(write_file("size.yml", BASE_CONFIG "bootstrap:\n  dcs:\n    postgresql:\n"
	                                            "      parameters: {wal_keep_size: 9999999999999TB}\n"),
	         false, &d);
	assert_non_null(c);
	assert_true(diag_has(d.warnings, "wal_keep_size"));
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_scalars_and_dotted_keys(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	c = load(write_file("num.yml",
	                    "scope: 2023\nname: 1\n"
	                    "restapi: {listen: 127.0.0.1:8008, connect_address: 127.0.0.1:8008}\n"
	                    "etcd3: {host: 127.0.0.1:2379}\n"
	                    "postgresql:\n  listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432\n"
	                    "  data_dir: /d\n"
	                    "  authentication:\n"
	                    "    superuser: {username: postgres, password: 12345}\n"
	                    "    replication: {username: r, password: 0.5}\n"
	                    "log.level: DEBUG\n"),
	         false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_string_equal(c->scope, "2023");
	assert_string_equal(c->name, "1");
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.authentication.superuser.password")),
	                    "12345");
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.authentication.replication.password")),
	                    "0.5");
	assert_true(diag_has(d.warnings, "num.yml:12:1: unknown key 'log.level' (ignored; a "
	                                 "dotted name"));
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_parameters_rules(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	json_object *params;
	int work_mem_keys = 0;

	(void)state;
	c = load(write_file("p.yml", BASE_CONFIG "  parameters: {Work_Mem: 4MB}\n"
	                                         "bootstrap:\n  dcs:\n    postgresql:\n"
	                                         "      parameters: {wal_level: LOGICAL, "
	                                         "work_mem: 8MB, max_wal_senders: 'replica|x'}\n"),
	         false, &d);
	if (c == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	params = pgkeel_json_path(c->effective, "postgresql.parameters");
	assert_string_equal(json_object_get_string(json_object_object_get(params, "wal_level")),
	                    "logical");
	json_object_object_foreach(params, k, v)
	{
		(void)v;
		if (strcasecmp(k, "work_mem") == 0)
			work_mem_keys++;
	}
	assert_int_equal(work_mem_keys, 1);
	assert_string_equal(json_object_get_string(json_object_object_get(params, "Work_Mem")),
	                    "4MB");
	/* defaults of the controlled parameters are Patroni's strings */
	assert_true(json_object_is_type(json_object_object_get(params, "hot_standby"),
	                                json_type_string));
	assert_string_equal(json_object_get_string(json_object_object_get(params, "hot_standby")),
	                    "on");
	assert_int_equal(json_object_get_int(json_object_object_get(params, "max_wal_senders")), 10);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);

	c = load(write_file("w.yml", BASE_CONFIG "bootstrap:\n  dcs:\n    postgresql:\n"
	                                         "      parameters: {wal_level: 'replica|logical'}\n"),
	         false, &d);
	assert_non_null(c);
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->effective, "postgresql.parameters.wal_level")),
	                    "hot_standby");
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_clamp_reaches_effective_view(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	c = load(write_file("t.yml", BASE_CONFIG "bootstrap:\n  dcs: {ttl: 10}\n"), false, &d);
	assert_non_null(c);
	assert_int_equal(c->loop_wait, 1);
	assert_int_equal(c->retry_timeout, 4);
	assert_int_equal(json_object_get_int(pgkeel_json_path(c->effective, "retry_timeout")), 4);
	assert_int_equal(json_object_get_int(pgkeel_json_path(c->effective,
	                                                      "postgresql.retry_timeout")),
	                 4);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

static void test_env_positions_and_patroni_configuration_scrub(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config *c;

	(void)state;
	pgkeel_config_env_reset();
	setenv("PATRONI_RESTAPI_LISTEN", "nonsense", 1);
	c = load(write_file("env.yml", BASE_CONFIG), false, &d);
	assert_null(c);
	assert_true(diag_has(d.errors, "environment: restapi.listen: expected"));
	pgkeel_diag_clear(&d);
	pgkeel_config_env_reset();

	/* with PATRONI_CONFIGURATION the others are not merged, but still consumed */
	setenv("PATRONI_CONFIGURATION", BASE_CONFIG, 1);
	setenv("PATRONI_SUPERUSER_PASSWORD", "leak", 1);
	c = load(NULL, false, &d);
	assert_non_null(c);
	assert_null(getenv("PATRONI_SUPERUSER_PASSWORD"));
	assert_string_equal(json_object_get_string(pgkeel_json_path(
				    c->local, "postgresql.authentication.superuser.password")),
	                    "secret");
	pgkeel_diag_clear(&d);
	{
		struct pgkeel_config_opts opts = {.use_environ = true};
		struct pgkeel_config *n;

		pgkeel_diag_init(&d);
		n = pgkeel_config_reload(c, NULL, &opts, &d);
		assert_ptr_equal(n, c);
		assert_true(diag_has(d.warnings, "nothing to reload"));
		pgkeel_config_unref(n);
		pgkeel_diag_clear(&d);
	}
	pgkeel_config_unref(c);
	pgkeel_config_env_reset();
}

static void test_reload_keeps_dcs_state(void **state)
{
	struct pgkeel_diag d;
	struct pgkeel_config_opts opts = {.use_environ = true};
	struct pgkeel_config *c, *dc, *n;
	json_object *dyn;
	char *p;

	(void)state;
	p = write_file("r.yml", BASE_CONFIG "bootstrap:\n  dcs: {ttl: 30, loop_wait: 10}\n");
	c = load(p, false, &d);
	assert_non_null(c);
	pgkeel_diag_clear(&d);
	dyn = json_tokener_parse("{\"ttl\":30,\"loop_wait\":10}");
	pgkeel_diag_init(&d);
	dc = pgkeel_config_with_dynamic(c, dyn, &d);
	json_object_put(dyn);
	assert_non_null(dc);
	assert_true(dc->dynamic_from_dcs);
	pgkeel_diag_clear(&d);

	/* the operator edits bootstrap.dcs and the DCS section, then reloads */
	write_file("r.yml", BASE_CONFIG "  hosts: 127.0.0.2:2379\n"
	                                "bootstrap:\n  dcs: {ttl: 30, loop_wait: 5}\n");
	p = write_file("r.yml", "scope: batman\nnamespace: /db/\nname: pg-1\n"
	                        "restapi:\n  listen: 127.0.0.1:8008\n  connect_address: 127.0.0.1:8008\n"
	                        "etcd3:\n  hosts: 127.0.0.2:2379\n"
	                        "postgresql:\n  listen: 127.0.0.1:5432\n"
	                        "  connect_address: 127.0.0.1:5432\n"
	                        "  data_dir: /tmp/pgkeel-nonexistent/data\n"
	                        "  authentication:\n"
	                        "    superuser: {username: postgres, password: secret}\n"
	                        "    replication: {username: replicator, password: rep}\n"
	                        "bootstrap:\n  dcs: {ttl: 30, loop_wait: 5}\n");
	pgkeel_diag_init(&d);
	n = pgkeel_config_reload(dc, p, &opts, &d);
	if (n == NULL)
		fail_msg("%s", json_object_to_json_string(d.errors));
	assert_int_equal(n->loop_wait, 10);
	assert_true(n->dynamic_from_dcs);
	assert_string_equal(n->dcs_options_json, "{\"hosts\":\"127.0.0.1:2379\"}");
	assert_true(diag_has(d.warnings, "the etcd3 section cannot change at runtime"));
	pgkeel_config_unref(n);
	pgkeel_config_unref(dc);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seed_config_is_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootstrap_dcs_matches_patroni, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_type_names_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dcs_selection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_and_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_ignored_keys_warn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timing_clamp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_environment_overrides, setup, teardown),
		cmocka_unit_test(test_env_list_and_dict_syntax),
		cmocka_unit_test_setup_teardown(test_config_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_patroni_configuration_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_effective_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_fixed_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_cannot_override_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scalars_and_dotted_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parameters_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clamp_reaches_effective_view, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_positions_and_patroni_configuration_scrub,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_dcs_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
