/*
 * zk_proto (backends/zookeeper): the `zookeeper:` options as Patroni reads
 * them, the base path Patroni composes, version tokens and the mapping of
 * ZooKeeper's return codes onto CONFLICT / UNAVAILABLE / INVALID.  No
 * server: the backend's behaviour against real ZooKeeper is
 * tests/integration/test_dcs_zookeeper.py.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zookeeper/zookeeper.h>

#include "zk_proto.h"

/* ------------------------------------------------------------------ a host that records */

struct rec {
	char lines[8][256];
	int n;
};

static void rec_log(void *ctx, enum pgkeel_log_level level, const char *fmt, ...)
	PGKEEL_PRINTF(3, 4);

static void rec_log(void *ctx, enum pgkeel_log_level level, const char *fmt, ...)
{
	struct rec *r = ctx;
	va_list ap;

	(void)level;
	if (r->n >= 8)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(r->lines[r->n++], sizeof(r->lines[0]), fmt, ap);
	va_end(ap);
}

static struct rec rec;
static const struct pgkeel_host host = {
    .abi_version = PGKEEL_HOST_ABI_VERSION,
    .struct_size = sizeof(struct pgkeel_host),
    .ctx = &rec,
    .log = rec_log,
};

static bool logged(const char *needle)
{
	for (int i = 0; i < rec.n; i++)
		if (strstr(rec.lines[i], needle) != NULL)
			return true;
	return false;
}

/* Parse `json`; returns the success and leaves the options in *o (free them). */
static bool parse(const char *json, struct zk_options *o, struct pgkeel_err *err)
{
	memset(&rec, 0, sizeof(rec));
	memset(err, 0, sizeof(*err));
	return zk_options_parse(o, &host, json, err);
}

/* ------------------------------------------------------------------ options */

static void test_hosts_forms(void **state)
{
	static const struct {
		const char *json;
		const char *hosts;
	} rows[] = {
	    {"{\"hosts\":[\"10.0.0.1:2181\",\"10.0.0.2:2182\"]}", "10.0.0.1:2181,10.0.0.2:2182"},
	    {"{\"hosts\":\"zk1:2181, zk2:2181,zk3:2181\"}", "zk1:2181,zk2:2181,zk3:2181"},
	    /* kazoo's default port */
	    {"{\"hosts\":[\"zk1\",\"zk2:2888\"]}", "zk1:2181,zk2:2888"},
	    {"{\"hosts\":\"zk1,zk2\"}", "zk1:2181,zk2:2181"},
	    /* a chroot suffix passes through (after a port it gets one too) */
	    {"{\"hosts\":\"zk1:2181,zk2:2181/pg\"}", "zk1:2181,zk2:2181/pg"},
	    {"{\"hosts\":\"zk1/pg\"}", "zk1:2181/pg"},
	    {"{\"hosts\":[\"[::1]:2181\",\"[::1]\"]}", "[::1]:2181,[::1]:2181"},
	    /* none: kazoo's 127.0.0.1:2181 */
	    {"{}", "127.0.0.1:2181"},
	    {NULL, "127.0.0.1:2181"},
	};
	struct zk_options o;
	struct pgkeel_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_true(parse(rows[i].json, &o, &err));
		assert_string_equal(o.hosts, rows[i].hosts);
		assert_false(o.use_ssl);
		assert_int_equal(o.n_auth, 0);
		zk_options_free(&o);
	}
}

static void test_bad_options(void **state)
{
	static const struct {
		const char *json;
		const char *msg;
	} rows[] = {
	    {"[1]", "the section must be a mapping"},
	    {"{\"hosts\":5}", "zookeeper.hosts: expected a list"},
	    {"{\"hosts\":[\"zk1\",7]}", "zookeeper.hosts[1]"},
	    {"{\"hosts\":\"zk1,,zk2\"}", NULL}, /* strtok_r skips the empty field */
	    {"{\"hosts\":[\" \"]}", "an empty host name"},
	    {"{\"use_ssl\":\"yes\"}", "zookeeper.use_ssl: expected true or false"},
	    {"{\"use_ssl\":true}", "no TLS support"},
	    {"{\"set_acls\":{\"CN=pg\":[\"ALL\"]}}", "x509 principals"},
	    {"{\"auth_data\":[\"digest\"]}", "zookeeper.auth_data: expected a mapping"},
	    {"{\"auth_data\":{\"digest\":1}}", "zookeeper.auth_data.digest"},
	};
	struct zk_options o;
	struct pgkeel_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool ok = parse(rows[i].json, &o, &err);

		if (rows[i].msg == NULL) {
			assert_true(ok);
		} else {
			assert_false(ok);
			if (strstr(err.msg, rows[i].msg) == NULL)
				fail_msg("%s: '%s' lacks '%s'", rows[i].json, err.msg, rows[i].msg);
		}
		zk_options_free(&o);
	}
}

static void test_warnings_and_auth(void **state)
{
	struct zk_options o;
	struct pgkeel_err err;

	(void)state;
	assert_true(parse("{\"hosts\":\"zk1:2181\",\"cacert\":\"/ca.pem\",\"verify\":false,"
	                  "\"use_ssl\":false,\"exhibitor\":{},\"auth_data\":{\"digest\":\"u:p\","
	                  "\"ip\":\"127.0.0.1\"}}",
	                  &o, &err));
	assert_true(logged("zookeeper.cacert is ignored: use_ssl is off"));
	assert_true(logged("zookeeper.verify is ignored"));
	assert_true(logged("ignoring unknown option 'exhibitor'"));
	assert_false(logged("auth_data"));
	assert_int_equal(o.n_auth, 2);
	assert_string_equal(o.auth[0].scheme, "digest");
	assert_string_equal(o.auth[0].credential, "u:p");
	assert_string_equal(o.auth[1].scheme, "ip");
	zk_options_free(&o);
	assert_null(o.hosts);
	zk_options_free(NULL);
}

/* ------------------------------------------------------------------ paths, versions */

static void test_base_path(void **state)
{
	static const struct {
		const char *ns, *scope, *want;
	} rows[] = {
	    {"/service/", "batman", "/service/batman"},
	    {"/db/", "c1", "/db/c1"},
	    {"service", "batman", "/service/batman"},
	    {"/", "batman", "/batman"},
	    {"", "batman", "/batman"},
	    {NULL, "batman", "/batman"},
	    {"//a//b//", "s", "/a/b/s"},
	};
	char *p;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		p = zk_base_path(rows[i].ns, rows[i].scope);
		assert_non_null(p);
		assert_string_equal(p, rows[i].want);
		free(p);
	}
	assert_null(zk_base_path("/service/", ""));
	assert_null(zk_base_path("/service/", "a/b"));
	assert_null(zk_base_path("/service/", NULL));
	p = zk_path("/service/batman", "members/pg-1");
	assert_string_equal(p, "/service/batman/members/pg-1");
	free(p);
}

static void test_versions(void **state)
{
	int32_t v = -5;
	char buf[24];

	(void)state;
	assert_true(zk_parse_version("0", &v));
	assert_int_equal(v, 0);
	assert_true(zk_parse_version("2147483647", &v));
	assert_int_equal(v, 2147483647);
	assert_false(zk_parse_version("2147483648", &v));
	assert_false(zk_parse_version("-1", &v));
	assert_false(zk_parse_version("", &v));
	assert_false(zk_parse_version("12a", &v));
	assert_false(zk_parse_version(" 1", &v));
	assert_false(zk_parse_version(NULL, &v));
	zk_fmt_i64(buf, sizeof(buf), 72058385818779649LL);
	assert_string_equal(buf, "72058385818779649");
	zk_fmt_i64(buf, sizeof(buf), -72057594037927935LL);
	assert_string_equal(buf, "-72057594037927935");
}

/* ------------------------------------------------------------------ return codes */

static void test_rc_mapping(void **state)
{
	static const struct {
		int rc;
		enum zk_rc_class cls;
		enum pgkeel_dcs_status st;
		int detail;
	} rows[] = {
	    {ZOK, ZK_RC_OK, PGKEEL_DCS_OK, PGKEEL_DCS_D_NONE},
	    {ZCONNECTIONLOSS, ZK_RC_TRANSIENT, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_CONNECT},
	    {ZOPERATIONTIMEOUT, ZK_RC_TRANSIENT, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_TIMEOUT},
	    {ZSESSIONEXPIRED, ZK_RC_SESSION, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SESSION_LOST},
	    {ZCLOSING, ZK_RC_SESSION, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SESSION_LOST},
	    {ZINVALIDSTATE, ZK_RC_SESSION, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SESSION_LOST},
	    {ZNOAUTH, ZK_RC_AUTH, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_AUTH},
	    {ZAUTHFAILED, ZK_RC_AUTH, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_AUTH},
	    {ZNONODE, ZK_RC_ANSWER, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_NOT_FOUND},
	    {ZNODEEXISTS, ZK_RC_ANSWER, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_EXISTS},
	    {ZBADVERSION, ZK_RC_ANSWER, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_VERSION},
	    {ZNOTEMPTY, ZK_RC_ANSWER, PGKEEL_DCS_CONFLICT, PGKEEL_DCS_D_VERSION},
	    {ZBADARGUMENTS, ZK_RC_INVALID, PGKEEL_DCS_INVALID, PGKEEL_DCS_D_NONE},
	    {ZINVALIDACL, ZK_RC_INVALID, PGKEEL_DCS_INVALID, PGKEEL_DCS_D_NONE},
	    {ZSYSTEMERROR, ZK_RC_OTHER, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER},
	    {ZMARSHALLINGERROR, ZK_RC_OTHER, PGKEEL_DCS_UNAVAILABLE, PGKEEL_DCS_D_SERVER},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int detail = -1;

		assert_int_equal(zk_rc_classify(rows[i].rc), rows[i].cls);
		assert_int_equal(zk_rc_status(rows[i].rc, &detail), rows[i].st);
		assert_int_equal(detail, rows[i].detail);
	}
	/* CONFLICT and UNAVAILABLE never meet: no answer class maps to UNAVAILABLE */
	assert_int_equal(zk_rc_status(ZNONODE, NULL), PGKEEL_DCS_CONFLICT);
}

static void test_cluster_keys(void **state)
{
	size_t n = 0;

	(void)state;
	while (zk_cluster_keys[n] != NULL)
		n++;
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++) {
		assert_null(strchr(zk_cluster_keys[i], '/'));
		for (size_t j = i + 1; j < n; j++)
			assert_string_not_equal(zk_cluster_keys[i], zk_cluster_keys[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hosts_forms),       cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_warnings_and_auth), cmocka_unit_test(test_base_path),
	    cmocka_unit_test(test_versions),          cmocka_unit_test(test_rc_mapping),
	    cmocka_unit_test(test_cluster_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
