/*
 * core/member.c: conn_url, api_url and the members/<name> value, compared
 * byte for byte with what Patroni 3.0.2 wrote (tests/data/patroni-3.0.2/members).
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
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "member.h"
#include "util.h"

#define CAPTURED TEST_SRCDIR "/tests/data/patroni-3.0.2"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("missing test data %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* A config as the capture's node N had (addresses, tags); extra: more restapi lines. */
static struct pgkeel_config *node_config(int n, const char *extra)
{
	struct pgkeel_config_opts opts = {0};
	struct pgkeel_diag d;
	struct pgkeel_config *c;
	char path[] = "/tmp/pgkeel-test-member-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f,
	        "scope: prod-pg\nnamespace: /db/\nname: pg-%d\n"
	        "restapi:\n  listen: 127.0.0.1:%d\n  connect_address: 127.0.0.1:%d\n%s"
	        "etcd3:\n  hosts: 127.0.0.1:23479\n"
	        "postgresql:\n  listen: 127.0.0.1:%d\n  connect_address: 127.0.0.1:%d\n"
	        "  data_dir: /tmp/pgkeel-test-member-data\n"
	        "  authentication:\n    superuser: {username: postgres}\n"
	        "    replication: {username: replicator}\n"
	        "%s",
	        n, 28100 + n, 28100 + n, extra != NULL ? extra : "",
	        25500 + n, 25500 + n, n == 3 ? "tags:\n  dc: dc3\n" : "");
	fclose(f);
	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	unlink(path);
	if (c == NULL)
		fail_msg("config: %s", json_object_to_json_string(d.errors));
	pgkeel_diag_clear(&d);
	return c;
}

static void assert_captured(const char *rel, const char *got)
{
	char path[512], *want;

	assert_true(pgkeel_fmt(path, sizeof(path), "%s/%s", CAPTURED, rel));
	want = slurp(path);
	if (strcmp(got, want) != 0)
		fail_msg("%s:\n got  %s\n want %s", rel, got, want);
	free(want);
}

static void test_urls(void **state)
{
	struct pgkeel_config *c = node_config(1, NULL);
	struct pgkeel_config *tls = node_config(2, "  certfile: /etc/ssl/x.pem\n");
	char *s;

	(void)state;
	s = pgkeel_member_conn_url(c);
	assert_string_equal(s, "postgres://127.0.0.1:25501/postgres");
	free(s);
	s = pgkeel_member_api_url(c);
	assert_string_equal(s, "http://127.0.0.1:28101/patroni");
	free(s);
	s = pgkeel_member_api_url(tls);
	assert_string_equal(s, "https://127.0.0.1:28102/patroni");
	free(s);
	pgkeel_config_unref(c);
	pgkeel_config_unref(tls);
}

static void test_values_as_patroni(void **state)
{
	struct pgkeel_member_facts f = {0};
	struct pgkeel_config *c1 = node_config(1, NULL), *c3 = node_config(3, NULL);
	char *v;

	(void)state;
	f.state = "running";
	f.role = "master";
	f.have_wal = true;
	f.wal_position = 67109000;
	f.timeline = 1;
	v = pgkeel_member_value(c1, &f);
	assert_captured("members/pg-1.json", v);
	free(v);
	f.role = "replica";
	v = pgkeel_member_value(c3, &f);
	assert_captured("members/pg-3.json", v);
	free(v);
	f.role = "master";
	f.wal_position = 83886616;
	f.timeline = 2;
	v = pgkeel_member_value(c3, &f);
	assert_captured("after-switchover/members/pg-3.json", v);
	free(v);
	pgkeel_config_unref(c1);
	pgkeel_config_unref(c3);
}

static void test_optional_fields(void **state)
{
	struct pgkeel_member_facts f = {0};
	struct pgkeel_config *c = node_config(1, NULL);
	json_object *sr = json_object_new_object();
	char *v;

	(void)state;
	json_object_object_add(sr, "schedule", json_object_new_string("2026-11-26T10:00:00+00:00"));
	f.state = "starting";
	f.role = "master";
	f.leader_checkpoint_pending = true;
	f.pending_restart = true;
	f.disable_sync = true;
	f.scheduled_restart = sr;
	f.paused = true;
	v = pgkeel_member_value(c, &f);
	assert_string_equal(v, "{\"conn_url\":\"postgres://127.0.0.1:25501/postgres\","
	                       "\"api_url\":\"http://127.0.0.1:28101/patroni\",\"state\":\"starting\","
	                       "\"role\":\"master\",\"version\":\"3.0.2\","
	                       "\"checkpoint_after_promote\":false,\"tags\":{\"nosync\":true},"
	                       "\"pending_restart\":true,"
	                       "\"scheduled_restart\":{\"schedule\":\"2026-11-26T10:00:00+00:00\"},"
	                       "\"pause\":true}");
	free(v);
	json_object_put(sr);
	pgkeel_config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urls),
	    cmocka_unit_test(test_values_as_patroni),
	    cmocka_unit_test(test_optional_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
