/*
 * Unit tests for the pure parts of the rest of the REST API (issue 6):
 * Python's str() of JSON values, patch_config and deep_compare, the
 * documents of GET /cluster, /history, /config and /metrics, the POST
 * /restart body checks, the allowlist networks and api_url hosts, and the
 * timestamps (isoformat, epoch microseconds).  The same functions are
 * compared with Patroni 3.0.2's own code on random inputs in
 * tests/integration/test_rest_api.py.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cluster.h"
#include "json.h"
#include "pg_query.h"
#include "rest_internal.h"
#include "state.h"
#include "util.h"

#include "rest_test.h"

static void check_py_str(const char *json, const char *want)
{
	struct json_object *o = json_of(json);
	char *got = pgkeel_rest_py_str(o);

	assert_string_equal(got, want);
	free(got);
	json_object_put(o);
}

static void test_py_str(void **state)
{
	(void)state;
	check_py_str("null", "None");
	check_py_str("true", "True");
	check_py_str("100", "100");
	check_py_str("1.5", "1.5");
	check_py_str("10.0", "10.0");
	check_py_str("\"on\"", "on");
	check_py_str("[1, \"a\", null, false]", "[1, 'a', None, False]");
	check_py_str("{\"a\": {\"b\": \"it's\"}, \"c\": []}", "{'a': {'b': \"it's\"}, 'c': []}");
	check_py_str("[\"a\\nb\\\\\"]", "['a\\nb\\\\']");
}

static void check_patch(const char *config, const char *patch, bool changed, const char *want)
{
	struct json_object *c = json_of(config), *p = json_of(patch);
	char *got;

	assert_int_equal(pgkeel_rest_patch_config(c, p), changed);
	got = pgkeel_json_compact(c);
	assert_string_equal(got, want);
	free(got);
	json_object_put(c);
	json_object_put(p);
}

static void test_patch_config(void **state)
{
	(void)state;
	/* null deletes (a change only when the old value was not null) */
	check_patch("{\"a\":1,\"b\":null}", "{\"a\":null}", true, "{\"b\":null}");
	check_patch("{\"a\":1,\"b\":null}", "{\"b\":null,\"x\":null}", false, "{\"a\":1}");
	/* scalars compared by str(): "100" and 100 are the same, True and "true" are not */
	check_patch("{\"a\":100}", "{\"a\":\"100\"}", false, "{\"a\":100}");
	check_patch("{\"a\":true}", "{\"a\":\"true\"}", true, "{\"a\":\"true\"}");
	/* objects merge, keep their place; new keys go last */
	check_patch("{\"p\":{\"x\":1,\"y\":2},\"q\":0}", "{\"p\":{\"y\":3,\"z\":null},\"n\":[1]}",
	            true, "{\"p\":{\"x\":1,\"y\":3},\"q\":0,\"n\":[1]}");
	/* an object replaces a scalar and the other way round, nulls inside kept */
	check_patch("{\"p\":1}", "{\"p\":{\"a\":null}}", true, "{\"p\":{\"a\":null}}");
	check_patch("{\"p\":{\"a\":1}}", "{\"p\":\"x\"}", true, "{\"p\":\"x\"}");
}

static void test_deep_compare(void **state)
{
	static const struct {
		const char *a, *b;
		bool eq;
	} rows[] = {
	    {"{\"1\":null}", "{}", false},
	    {"{\"1\":{}}", "{\"1\":null}", false},
	    {"{\"1\":[1]}", "{\"1\":[2]}", false},
	    {"{\"1\":2}", "{\"1\":\"2\"}", true},
	    {"{\"1\":{\"2\":[3,4]}}", "{\"1\":{\"2\":[3,4]}}", true},
	    {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", true},
	    {"{\"a\":\"x\"}", "{\"a\":{\"x\":1}}", false},
	};

	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(rows); i++) {
		struct json_object *a = json_of(rows[i].a), *b = json_of(rows[i].b);

		assert_int_equal(pgkeel_rest_deep_compare(a, b), rows[i].eq);
		json_object_put(a);
		json_object_put(b);
	}
}

static void test_cluster_json(void **state)
{
	static const char *const kv[] = {
	    "leader",
	    "pg-2",
	    "members/pg-2",
	    "{\"conn_url\":\"postgres://127.0.0.1:5433/postgres\",\"api_url\":"
	    "\"http://127.0.0.1:8009/patroni\",\"state\":\"running\",\"role\":\"master\","
	    "\"tags\":{\"dc\":\"b\"},\"timeline\":3,\"xlog_location\":5}",
	    "members/pg-1",
	    "{\"conn_url\":\"postgres://DB-1/postgres\",\"api_url\":\"http://127.0.0.1:8008/"
	    "patroni\","
	    "\"role\":\"replica\",\"xlog_location\":90,\"pending_restart\":true}",
	    "members/pg-3",
	    "{\"conn_url\":\"postgres://[::1]:5434/postgres\",\"state\":\"stopped\"}",
	    "status",
	    "{\"optime\":100}",
	    "sync",
	    "{\"leader\":\"pg-2\",\"sync_standby\":\"pg-1\"}",
	    "config",
	    "{\"pause\":\"on\"}",
	    "failover",
	    "{\"leader\":\"pg-2\",\"scheduled_at\":\"2031-06-01 12:00:00.25Z\"}",
	    NULL};
	struct pgkeel_cluster *c = cluster_of(kv);
	char *got = pgkeel_rest_cluster_json(c);

	(void)state;
	assert_string_equal(
	    got, "{\"members\": ["
	         "{\"name\": \"pg-1\", \"role\": \"sync_standby\", \"state\": \"\", \"api_url\": "
	         "\"http://127.0.0.1:8008/patroni\", \"host\": \"db-1\", \"port\": 5432, "
	         "\"pending_restart\": true, \"lag\": 10}, "
	         "{\"name\": \"pg-2\", \"role\": \"leader\", \"state\": \"running\", \"api_url\": "
	         "\"http://127.0.0.1:8009/patroni\", \"host\": \"127.0.0.1\", \"port\": 5433, "
	         "\"timeline\": 3, \"tags\": {\"dc\": \"b\"}}, "
	         "{\"name\": \"pg-3\", \"role\": \"replica\", \"state\": \"stopped\", \"api_url\": "
	         "null, \"host\": \"::1\", \"port\": 5434, \"lag\": \"unknown\"}], "
	         "\"pause\": true, \"scheduled_switchover\": {\"at\": "
	         "\"2031-06-01T12:00:00.250000+00:00\", \"from\": \"pg-2\"}}");
	free(got);
	pgkeel_cluster_unref(c);
}

static void test_history_config_json(void **state)
{
	static const char *const kv1[] = {"history",
	                                  "[[1,25,\"no recovery target\",\"t\",\"pg-1\"]]",
	                                  "config", "{\"ttl\":30,\"a\":{\"b\":1.0}}", NULL};
	static const char *const kv2[] = {"history", "{\"not\":\"a list\"}", "config", "[1]", NULL};
	static const char *const kv3[] = {"leader", "pg-1", NULL};
	struct pgkeel_cluster *c = cluster_of(kv1);
	char *h, *cfg;

	(void)state;
	h = pgkeel_rest_history_json(c);
	cfg = pgkeel_rest_config_json(c);
	assert_string_equal(h, "[[1, 25, \"no recovery target\", \"t\", \"pg-1\"]]");
	assert_string_equal(cfg, "{\"ttl\": 30, \"a\": {\"b\": 1.0}}");
	free(h);
	free(cfg);
	pgkeel_cluster_unref(c);

	c = cluster_of(kv2);
	h = pgkeel_rest_history_json(c);
	cfg = pgkeel_rest_config_json(c);
	assert_string_equal(h, "[]");
	assert_string_equal(cfg, "{}"); /* Patroni's ClusterConfig of a non-object */
	free(h);
	free(cfg);
	pgkeel_cluster_unref(c);

	c = cluster_of(kv3);
	h = pgkeel_rest_history_json(c);
	assert_string_equal(h, "[]");
	assert_null(pgkeel_rest_config_json(c)); /* 502 */
	free(h);
	pgkeel_cluster_unref(c);
}

/* The line of one metric in a /metrics text ("" when absent). */
static const char *metric_line(const char *text, const char *name, char *buf, size_t len)
{
	const char *p = text;

	buf[0] = '\0';
	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') &&
		    (p[strlen(name)] == '{' || p[strlen(name)] == ' ')) {
			size_t n = strcspn(p, "\n");

			(void)pgkeel_fmt(buf, len, "%.*s", (int)n, p);
			break;
		}
		p++;
	}
	return buf;
}

static void test_metrics(void **state)
{
	static const char *const kv[] = {"leader", "pg-1", "sync",
	                                 "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}", NULL};
	struct pgkeel_state_view v = {pgkeel_state_loop_new(), pgkeel_state_pg_new()};
	struct pgkeel_pg_status *st = pgkeel_xcalloc(1, sizeof(*st));
	struct pgkeel_rest_pgview pv;
	char line[256], *text;

	(void)state;
	v.loop->name = pgkeel_strdup("pg-2");
	v.loop->scope = pgkeel_strdup("batman");
	v.loop->pg_state = pgkeel_strdup("running");
	v.loop->role = PGKEEL_STATE_ROLE_REPLICA;
	v.loop->synchronous_mode = true;
	v.loop->cluster = cluster_of(kv);
	v.loop->cluster_valid_ms = INT64_MAX;
	v.loop->dcs_last_seen = 1795648027;
	v.loop->pending_restart = true;
	st->in_recovery = true;
	st->server_version = 150018;
	st->replay_lsn = 500;
	st->receive_lsn = 0; /* received_location falls back to replayed */
	st->replay_paused = true;
	(void)pgkeel_fmt(st->postmaster_start_time, sizeof(st->postmaster_start_time), "%s",
	                 "2026-11-25 23:06:49.550397+00:00");
	(void)pgkeel_fmt(st->replay_timestamp, sizeof(st->replay_timestamp), "%s",
	                 "2026-11-25 23:06:57+00:00");
	v.pg->status = st;
	v.pg->timeline = 0; /* not known yet */
	v.pg->valid_until_ms = INT64_MAX;
	pgkeel_rest_pgview_get(&v, 1000, &pv);
	text = pgkeel_rest_metrics(&v, &pv);
	assert_true(strncmp(text,
	                    "# HELP patroni_version Patroni semver without periods.\n"
	                    "# TYPE patroni_version gauge\n"
	                    "patroni_version{scope=\"batman\"} 030002\n",
	                    118) == 0);
	assert_string_equal(metric_line(text, "patroni_postmaster_start_time", line, sizeof(line)),
	                    "patroni_postmaster_start_time{scope=\"batman\"} 1795648009.550397");
	assert_string_equal(
	    metric_line(text, "patroni_xlog_replayed_timestamp", line, sizeof(line)),
	    "patroni_xlog_replayed_timestamp{scope=\"batman\"} 1795648017.0");
	assert_string_equal(metric_line(text, "patroni_xlog_received_location", line, sizeof(line)),
	                    "patroni_xlog_received_location{scope=\"batman\"} 500");
	assert_string_equal(metric_line(text, "patroni_sync_standby", line, sizeof(line)),
	                    "patroni_sync_standby{scope=\"batman\"} 1");
	assert_string_equal(metric_line(text, "patroni_xlog_paused", line, sizeof(line)),
	                    "patroni_xlog_paused{scope=\"batman\"} 1");
	assert_string_equal(
	    metric_line(text, "patroni_postgres_server_version", line, sizeof(line)),
	    "patroni_postgres_server_version {scope=\"batman\"} 150018");
	/* queried, timeline not known: Python's None, as 3.0.2 prints it */
	assert_string_equal(metric_line(text, "patroni_postgres_timeline", line, sizeof(line)),
	                    "patroni_postgres_timeline{scope=\"batman\"} None");
	assert_string_equal(metric_line(text, "patroni_pending_restart", line, sizeof(line)),
	                    "patroni_pending_restart{scope=\"batman\"} 1");
	assert_string_equal(metric_line(text, "patroni_cluster_unlocked", line, sizeof(line)),
	                    "patroni_cluster_unlocked{scope=\"batman\"} 0");
	assert_true(text[strlen(text) - 1] == '\n');
	free(text);

	v.pg->timeline = 3;
	text = pgkeel_rest_metrics(&v, &pv);
	assert_string_equal(metric_line(text, "patroni_postgres_timeline", line, sizeof(line)),
	                    "patroni_postgres_timeline{scope=\"batman\"} 3");
	free(text);

	/* not queried (PostgreSQL stopped): no timeline key, 0 */
	free(v.loop->pg_state);
	v.loop->pg_state = pgkeel_strdup("stopped");
	pgkeel_rest_pgview_get(&v, 1000, &pv);
	text = pgkeel_rest_metrics(&v, &pv);
	assert_string_equal(metric_line(text, "patroni_postgres_timeline", line, sizeof(line)),
	                    "patroni_postgres_timeline{scope=\"batman\"} 0");
	assert_string_equal(metric_line(text, "patroni_postgres_running", line, sizeof(line)),
	                    "patroni_postgres_running{scope=\"batman\"} 0");
	free(text);
	pgkeel_state_release(&v);
}

static int restart_parse(const char *body, struct pgkeel_rest_restart *r, char **data, char *msg,
                         size_t len)
{
	struct json_object *b = json_of(body), *d = NULL;
	/* 2026-01-01T00:00:00Z */
	int rc = pgkeel_rest_restart_parse(b, INT64_C(1767225600000), r, &d, msg, len);

	*data = d != NULL ? pgkeel_json_compact(d) : NULL;
	json_object_put(d);
	json_object_put(b);
	return rc;
}

static void test_restart_parse(void **state)
{
	struct pgkeel_rest_restart r;
	char msg[256], *data;

	(void)state;
	assert_int_equal(restart_parse("{\"timeout\":\"2min\",\"role\":\"replica\","
	                               "\"restart_pending\":0,\"schedule\":"
	                               "\"2026-06-01 10:00:00.5+01:00\",\"postgres_version\":"
	                               "\"15.3\"}",
	                               &r, &data, msg, sizeof(msg)),
	                 0);
	assert_string_equal(data, "{\"timeout\":120,\"role\":\"replica\",\"restart_pending\":0,"
	                          "\"schedule\":\"2026-06-01T10:00:00.500000+01:00\","
	                          "\"postgres_version\":\"15.3\"}");
	assert_int_equal(r.timeout_s, 120);
	assert_true(r.restart_pending);
	assert_string_equal(r.role, "replica");
	assert_string_equal(r.postgres_version, "15.3");
	assert_string_equal(r.schedule, "2026-06-01T10:00:00.500000+01:00");
	free(data);
	pgkeel_rest_restart_clear(&r);

	/* the first failing key in body order answers */
	assert_int_equal(
	    restart_parse("{\"timeout\":0,\"role\":\"x\"}", &r, &data, msg, sizeof(msg)), 400);
	assert_string_equal(msg, "Timeout should be a positive number of seconds");
	assert_null(data);
	assert_int_equal(
	    restart_parse("{\"role\":\"x\",\"timeout\":0}", &r, &data, msg, sizeof(msg)), 400);
	assert_string_equal(msg, "PostgreSQL role should be either primary or replica");
	assert_int_equal(
	    restart_parse("{\"postgres_version\":\"9.6\"}", &r, &data, msg, sizeof(msg)), 400);
	assert_string_equal(msg,
	                    "Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 9.6");
	assert_int_equal(restart_parse("{\"postgres_version\":15}", &r, &data, msg, sizeof(msg)),
	                 400);
	assert_string_equal(msg, "Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: 15");
	assert_int_equal(
	    restart_parse("{\"postgres_version\":\"1_0.2\"}", &r, &data, msg, sizeof(msg)),
	    0); /* Python's int() takes 1_0 */
	free(data);
	pgkeel_rest_restart_clear(&r);
	assert_int_equal(
	    restart_parse("{\"schedule\":\"2025-06-01T10:00:00Z\"}", &r, &data, msg, sizeof(msg)),
	    422);
	assert_string_equal(msg, "Cannot schedule restart in the past");
	assert_int_equal(restart_parse("{\"x\":1}", &r, &data, msg, sizeof(msg)), 400);
	assert_string_equal(msg, "Unknown filter for the scheduled restart: x");
	assert_int_equal(restart_parse("{\"timeout\":true}", &r, &data, msg, sizeof(msg)), 400);
}

static struct sockaddr_in6 v6(const char *text)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};

	assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
	return a;
}

static struct sockaddr_in v4(const char *text)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
	return a;
}

static void test_allowlist(void **state)
{
	const char *entries[] = {"10.1.2.3/16", "bogus/99", "192.0.2.7", "2001:db8::/32"};
	size_t n;
	struct pgkeel_rest_net *nets = pgkeel_rest_allowlist_build(entries, 4, &n);
	struct sockaddr_in a;
	struct sockaddr_in6 b;

	(void)state;
	assert_int_equal(n, 3); /* the bad entry is skipped */
	a = v4("10.1.200.9");
	assert_true(pgkeel_rest_net_match(nets, n, (struct sockaddr *)&a));
	a = v4("10.2.0.1");
	assert_false(pgkeel_rest_net_match(nets, n, (struct sockaddr *)&a));
	a = v4("192.0.2.7");
	assert_true(pgkeel_rest_net_match(nets, n, (struct sockaddr *)&a));
	b = v6("::ffff:192.0.2.7"); /* IPv4 through a dual-stack socket */
	assert_true(pgkeel_rest_net_match(nets, n, (struct sockaddr *)&b));
	b = v6("2001:db8:ffff::1");
	assert_true(pgkeel_rest_net_match(nets, n, (struct sockaddr *)&b));
	b = v6("2001:db9::1");
	assert_false(pgkeel_rest_net_match(nets, n, (struct sockaddr *)&b));
	assert_false(pgkeel_rest_net_match(nets, n, NULL));
	free(nets);
}

static void test_url_host(void **state)
{
	char *host;
	int port;

	(void)state;
	assert_true(pgkeel_rest_url_host("http://127.0.0.1:8008/patroni", &host, &port));
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8008);
	free(host);
	assert_true(pgkeel_rest_url_host("HTTPS://u:p@Node-1.Example/patroni", &host, &port));
	assert_string_equal(host, "node-1.example");
	assert_int_equal(port, 443);
	free(host);
	assert_true(pgkeel_rest_url_host("http://[::1]:81", &host, &port));
	assert_string_equal(host, "::1");
	assert_int_equal(port, 81);
	free(host);
	assert_false(pgkeel_rest_url_host("nothing", &host, &port));
	assert_false(pgkeel_rest_url_host("http:///patroni", &host, &port));
	assert_false(pgkeel_rest_url_host(NULL, &host, &port));
}

static void test_times(void **state)
{
	int64_t us;
	char *iso;

	(void)state;
	assert_true(pgkeel_rest_time_us("1970-01-01 00:00:01.5+00:00", &us));
	assert_int_equal(us, 1500000);
	assert_true(pgkeel_rest_time_us("1970-01-01T01:00:00+01:00", &us));
	assert_int_equal(us, 0);
	assert_false(pgkeel_rest_time_us("1970-01-01T01:00:00", &us));
	iso = pgkeel_rest_isoformat("2031-06-01T12:00:00Z");
	assert_string_equal(iso, "2031-06-01T12:00:00+00:00");
	free(iso);
	assert_null(pgkeel_rest_isoformat("soon"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_py_str),
	    cmocka_unit_test(test_patch_config),
	    cmocka_unit_test(test_deep_compare),
	    cmocka_unit_test(test_cluster_json),
	    cmocka_unit_test(test_history_config_json),
	    cmocka_unit_test(test_metrics),
	    cmocka_unit_test(test_restart_parse),
	    cmocka_unit_test(test_allowlist),
	    cmocka_unit_test(test_url_host),
	    cmocka_unit_test(test_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
