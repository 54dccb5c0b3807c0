/*
 * pgkeelctl's shared parts (ctl/): the list table against what patronictl
 * 3.0.2 prints (the spec's observed output; the multi-line case and the
 * YAML texts were produced by Debian's patroni.ctl and prettytable 3.6),
 * YAML quoting, --scheduled parsing, role selection.
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

#include <json-c/json.h>

#include "ctl.h"

static void add(struct pgkeel_cluster_builder *b, const char *key, const char *value)
{
	struct pgkeel_dcs_entry e = {.key = key, .value = value, .value_len = strlen(value),
	                             .version = "1"};

	assert_int_equal(pgkeel_cluster_builder_add(b, &e), 0);
}

static char *member(const char *port, const char *role, const char *tags, const char *extra)
{
	return pgkeel_asprintf("{\"conn_url\":\"postgres://127.0.0.1:%s/postgres\",\"api_url\":"
	                       "\"http://127.0.0.1:8%s/patroni\",\"state\":\"running\",\"role\":"
	                       "\"%s\",\"version\":\"3.0.2\",\"tags\":%s%s}",
	                       port, port + 1, role, tags, extra);
}

/* The cluster of the spec's observed `patronictl list` (§2.4). */
static struct pgkeel_cluster *batman(void)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	char *m0 = member("5430", "replica", "{\"dc\":\"dc0\"}",
	                  ",\"xlog_location\":67108960,\"timeline\":3");
	char *m1 = member("5431", "replica", "{\"dc\":\"dc1\"}",
	                  ",\"xlog_location\":67108960,\"timeline\":3");
	char *m2 = member("5432", "master", "{\"dc\":\"dc2\"}",
	                  ",\"xlog_location\":67108960,\"timeline\":3");

	add(b, "leader", "pg2");
	add(b, "members/pg0", m0);
	add(b, "members/pg1", m1);
	add(b, "members/pg2", m2);
	add(b, "sync", "{\"leader\":\"pg2\",\"sync_standby\":\"pg0\"}");
	add(b, "status", "{\"optime\":67108960}");
	add(b, "failover", "{\"leader\":\"pg2\",\"scheduled_at\":\"2031-06-01T12:00:00+00:00\"}");
	free(m0);
	free(m1);
	free(m2);
	return pgkeel_cluster_builder_finish(b);
}

static char *render(const struct pgkeel_cluster *c, const char *scope, enum ctl_format fmt,
                    bool extended)
{
	struct ctl ctl = {0};
	struct ctl_list_opts o = {.format = fmt, .extended = extended};
	char *buf = NULL;
	size_t len = 0;

	ctl.out = open_memstream(&buf, &len);
	assert_non_null(ctl.out);
	ctl_print_cluster(&ctl, scope, c, &o);
	fclose(ctl.out);
	return buf;
}

static void test_list_pretty(void **state)
{
	struct pgkeel_cluster *c = batman();
	char *out = render(c, "batman", CTL_FMT_PRETTY, false);

	(void)state;
	assert_string_equal(
	    out,
	    "+ Cluster: batman --------+--------------+---------+----+-----------+---------+\n"
	    "| Member | Host           | Role         | State   | TL | Lag in MB | Tags    |\n"
	    "+--------+----------------+--------------+---------+----+-----------+---------+\n"
	    "| pg0    | 127.0.0.1:5430 | Sync Standby | running |  3 |         0 | dc: dc0 |\n"
	    "| pg1    | 127.0.0.1:5431 | Replica      | running |  3 |         0 | dc: dc1 |\n"
	    "| pg2    | 127.0.0.1:5432 | Leader       | running |  3 |           | dc: dc2 |\n"
	    "+--------+----------------+--------------+---------+----+-----------+---------+\n"
	    " Switchover scheduled at: 2031-06-01T12:00:00+00:00\n"
	    "                    from: pg2\n");
	free(out);
	pgkeel_cluster_unref(c);
}

static void test_list_tsv_json_yaml(void **state)
{
	struct pgkeel_cluster *c = batman();
	char *out;

	(void)state;
	out = render(c, "batman", CTL_FMT_TSV, false);
	assert_string_equal(out,
	                    "Cluster\tMember\tHost\tRole\tState\tTL\tLag in MB\tTags\n"
	                    "batman\tpg0\t127.0.0.1:5430\tSync Standby\trunning\t3\t0\t{dc: dc0}\n"
	                    "batman\tpg1\t127.0.0.1:5431\tReplica\trunning\t3\t0\t{dc: dc1}\n"
	                    "batman\tpg2\t127.0.0.1:5432\tLeader\trunning\t3\t\t{dc: dc2}\n");
	free(out);
	out = render(c, "batman", CTL_FMT_JSON, false);
	assert_string_equal(
	    out, "[{\"Cluster\": \"batman\", \"Member\": \"pg0\", \"Host\": \"127.0.0.1:5430\", "
	         "\"Role\": \"Sync Standby\", \"State\": \"running\", \"TL\": 3, \"Lag in MB\": 0, "
	         "\"Tags\": {\"dc\": \"dc0\"}}, {\"Cluster\": \"batman\", \"Member\": \"pg1\", "
	         "\"Host\": \"127.0.0.1:5431\", \"Role\": \"Replica\", \"State\": \"running\", "
	         "\"TL\": 3, \"Lag in MB\": 0, \"Tags\": {\"dc\": \"dc1\"}}, {\"Cluster\": "
	         "\"batman\", \"Member\": \"pg2\", \"Host\": \"127.0.0.1:5432\", \"Role\": "
	         "\"Leader\", \"State\": \"running\", \"TL\": 3, \"Tags\": {\"dc\": \"dc2\"}}]\n");
	free(out);
	out = render(c, "batman", CTL_FMT_YAML, false);
	assert_non_null(strstr(out, "- Cluster: batman\n  Host: 127.0.0.1:5430\n  Lag in MB: 0\n"
	                            "  Member: pg0\n  Role: Sync Standby\n  State: running\n"
	                            "  TL: 3\n  Tags:\n    dc: dc0\n"));
	free(out);
	pgkeel_cluster_unref(c);
}

/* Several tag lines: a rule between all rows (prettytable ALL); no host port when all on 5432. */
static void test_list_multiline(void **state)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_cluster *c;
	char *out;

	(void)state;
	add(b, "leader", "a");
	add(b, "members/a",
	    "{\"conn_url\":\"postgres://10.0.0.1:5432/postgres\",\"api_url\":\"http://10.0.0.1:8008/"
	    "patroni\",\"state\":\"running\",\"role\":\"master\",\"tags\":{\"nofailover\":true,"
	    "\"dc\":\"x\"},\"timeline\":12}");
	add(b, "members/b",
	    "{\"conn_url\":\"postgres://10.0.0.2:5432/postgres\",\"api_url\":\"http://10.0.0.2:8008/"
	    "patroni\",\"state\":\"streaming\",\"role\":\"replica\"}");
	c = pgkeel_cluster_builder_finish(b);
	out = render(c, "multi", CTL_FMT_PRETTY, false);
	assert_string_equal(
	    out,
	    "+ Cluster: multi ---+---------+-----------+----+-----------+------------------+\n"
	    "| Member | Host     | Role    | State     | TL | Lag in MB | Tags             |\n"
	    "+--------+----------+---------+-----------+----+-----------+------------------+\n"
	    "| a      | 10.0.0.1 | Leader  | running   | 12 |           | dc: x            |\n"
	    "|        |          |         |           |    |           | nofailover: true |\n"
	    "+--------+----------+---------+-----------+----+-----------+------------------+\n"
	    "| b      | 10.0.0.2 | Replica | streaming |    |   unknown |                  |\n"
	    "+--------+----------+---------+-----------+----+-----------+------------------+\n");
	free(out);
	pgkeel_cluster_unref(c);
}

/* No members: PrettyTable still closes the frame (two rules under the header). */
static void test_list_empty(void **state)
{
	struct pgkeel_cluster *c = pgkeel_cluster_new_empty();
	char *out = render(c, "x", CTL_FMT_PRETTY, false);

	(void)state;
	assert_string_equal(out, "+ Cluster: x ---+------+-------+----+-----------+\n"
	                         "| Member | Host | Role | State | TL | Lag in MB |\n"
	                         "+--------+------+------+-------+----+-----------+\n"
	                         "+--------+------+------+-------+----+-----------+\n");
	free(out);
	pgkeel_cluster_unref(c);
}

static void test_yaml_quoting(void **state)
{
	json_object *v = json_tokener_parse(
	    "{\"a\":\"on\",\"b\":\"1\",\"c\":\"\",\"d\":[1,\"x\"],\"e\":{\"f\":null},\"g\":\"0755\","
	    "\"h\":\"a b: c\",\"i\":1.5,\"j\":\"yes\",\"k\":\"-\",\"l\":\"2026-11-26T05:09:37.02+00:00\","
	    "\"m\":\"2026-11-26\",\"n\":\"<<\",\"o\":\"2026-11-26x\"}");
	json_object *t = json_tokener_parse("{\"dc\":\"x\",\"n\":true}");
	char *y;

	(void)state;
	y = ctl_yaml_dump(v, false);
	assert_string_equal(y, "a: 'on'\nb: '1'\nc: ''\nd:\n- 1\n- x\ne:\n  f: null\ng: '0755'\n"
	                       "h: 'a b: c'\ni: 1.5\nj: 'yes'\nk: '-'\nl: '2026-11-26T05:09:37.02+00:00'\n"
	                       "m: '2026-11-26'\nn: '<<'\no: 2026-11-26x\n");
	free(y);
	y = ctl_yaml_dump(t, true);
	assert_string_equal(y, "{dc: x, n: true}\n");
	free(y);
	json_object_put(v);
	json_object_put(t);
}

static void test_schedule(void **state)
{
	char *s = NULL;

	(void)state;
	assert_true(ctl_parse_schedule("now", &s));
	assert_null(s);
	assert_true(ctl_parse_schedule("2031-01-01T10:00:00+00:00", &s));
	assert_string_equal(s, "2031-01-01T10:00:00+00:00");
	free(s);
	assert_true(ctl_parse_schedule("2031-01-01 10:00Z", &s));
	assert_string_equal(s, "2031-01-01T10:00:00+00:00");
	free(s);
	assert_true(ctl_parse_schedule("2031-01-01T10:00:00.5-0230", &s));
	assert_string_equal(s, "2031-01-01T10:00:00.500000-02:30");
	free(s);
	/* naive: the local zone is added (TZ=UTC in main) */
	assert_true(ctl_parse_schedule("2031-06-01 12:30:15", &s));
	assert_string_equal(s, "2031-06-01T12:30:15+00:00");
	free(s);
	assert_false(ctl_parse_schedule("soon", &s));
	assert_false(ctl_parse_schedule("2031-13-01T10:00", &s));
	assert_false(ctl_parse_schedule("2031-01-01T10:00+25:00", &s));
	assert_false(ctl_parse_schedule("2031-01-01T10:00 junk", &s));
}

static void test_roles(void **state)
{
	struct pgkeel_cluster *c = batman();
	const struct pgkeel_member **sel;
	char *names[] = {(char *)"pg1", (char *)"pg2"};
	char *bad[] = {(char *)"nobody"};
	enum ctl_role r;

	(void)state;
	assert_true(ctl_role_parse("master", &r));
	assert_int_equal(r, CTL_ROLE_PRIMARY);
	assert_false(ctl_role_parse("boss", &r));
	assert_int_equal(ctl_select_members(c, NULL, 0, CTL_ROLE_REPLICA, &sel), 2);
	assert_string_equal(sel[0]->name, "pg0");
	free(sel);
	assert_int_equal(ctl_select_members(c, NULL, 0, CTL_ROLE_PRIMARY, &sel), 1);
	assert_string_equal(sel[0]->name, "pg2");
	free(sel);
	assert_int_equal(ctl_select_members(c, NULL, 0, CTL_ROLE_STANDBY_LEADER, &sel), 0);
	free(sel);
	assert_int_equal(ctl_select_members(c, names, 2, CTL_ROLE_ANY, &sel), 2);
	free(sel);
	assert_int_equal(ctl_select_members(c, bad, 1, CTL_ROLE_ANY, &sel), -1);
	pgkeel_cluster_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_pretty),  cmocka_unit_test(test_list_tsv_json_yaml),
	    cmocka_unit_test(test_list_multiline), cmocka_unit_test(test_list_empty),
	    cmocka_unit_test(test_yaml_quoting),
	    cmocka_unit_test(test_schedule),     cmocka_unit_test(test_roles),
	};

	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
