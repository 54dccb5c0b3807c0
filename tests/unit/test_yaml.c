/* Unit tests for core/yaml_load.c: PyYAML-compatible resolution and errors. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "yaml_load.h"

static json_object *parse_ok(const char *text, json_object *positions)
{
	json_object *o = NULL;
	char err[512] = "";
	bool ok = pgkeel_yaml_parse(text, strlen(text), "t.yml", &o, positions, err, sizeof(err));

	if (!ok)
		fail_msg("unexpected parse error: %s", err);
	return o;
}

static void parse_err(const char *text, const char *expect)
{
	json_object *o = NULL;
	char err[512] = "";

	assert_false(pgkeel_yaml_parse(text, strlen(text), "t.yml", &o, NULL, err, sizeof(err)));
	assert_null(o);
	if (strstr(err, expect) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, expect);
}

/* Resolution of `v: <text>` compared with what PyYAML's safe_load yields (as JSON). */
static void test_scalar_resolution(void **state)
{
	static const struct {
		const char *yaml;
		const char *json;
	} cases[] = {
		{"on", "true"},          {"Off", "false"},        {"YES", "true"},
		{"no", "false"},         {"True", "true"},        {"y", "\"y\""},
		{"n", "\"n\""},          {"oN", "\"oN\""},        {"~", "null"},
		{"null", "null"},        {"NULL", "null"},        {"", "null"},
		{"0755", "493"},         {"0", "0"},              {"-0", "0"},
		{"42", "42"},            {"+42", "42"},           {"-17", "-17"},
		{"1_000", "1000"},       {"0x1F", "31"},          {"0b101", "5"},
		{"1:30", "90"},          {"09", "\"09\""},        {"0o17", "\"0o17\""},
		{"512MB", "\"512MB\""},  {"1e5", "\"1e5\""},      {"1.5", "1.5"},
		{"1.", "1.0"},           {".5", "0.5"},           {"1.5e+3", "1500.0"},
		{"1.5e3", "\"1.5e3\""},  {"'on'", "\"on\""},      {"\"0755\"", "\"0755\""},
		{"!!str 42", "\"42\""},  {"!!int '42'", "42"},    {"10.0.6.10:8008", "\"10.0.6.10:8008\""},
		{"1048576", "1048576"},  {"9223372036854775807", "9223372036854775807"},
		{"99999999999999999999", "\"99999999999999999999\""},
		{"wal-g wal-push %p", "\"wal-g wal-push %p\""},
		{"0.9", "0.9"},          {"1.1", "1.1"},          {"1e16", "\"1e16\""},
		{"10000000000000000.0", "1e+16"},
		{"999999999999999999:59", "\"999999999999999999:59\""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char doc[256];
		json_object *o, *v;
		const char *got;

		snprintf(doc, sizeof(doc), "v: %s\n", cases[i].yaml);
		o = parse_ok(doc, NULL);
		assert_non_null(o);
		v = json_object_object_get(o, "v");
		got = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null";
		if (strcmp(got, cases[i].json) != 0)
			fail_msg("'%s' resolved to %s, expected %s", cases[i].yaml, got, cases[i].json);
		json_object_put(o);
	}
}

static void test_merge_keys_and_anchors(void **state)
{
	const char *text = "base: &b {a: 1, b: 2}\n"
	                   "other: &o {c: 3}\n"
	                   "x:\n  <<: *b\n  b: 20\n"
	                   "y:\n  <<: [*o, *b]\n  a: 10\n"
	                   "z: *b\n";
	json_object *o = parse_ok(text, NULL);

	(void)state;
	assert_string_equal(
		json_object_to_json_string_ext(json_object_object_get(o, "x"), JSON_C_TO_STRING_PLAIN),
		"{\"a\":1,\"b\":20}");
	assert_string_equal(
		json_object_to_json_string_ext(json_object_object_get(o, "y"), JSON_C_TO_STRING_PLAIN),
		"{\"a\":10,\"b\":2,\"c\":3}");
	assert_string_equal(
		json_object_to_json_string_ext(json_object_object_get(o, "z"), JSON_C_TO_STRING_PLAIN),
		"{\"a\":1,\"b\":2}");
	json_object_put(o);
}

static void test_key_order_is_kept(void **state)
{
	json_object *o = parse_ok("z: 1\na: 2\nm: {y: 1, b: 2}\n", NULL);

	(void)state;
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
	                    "{\"z\":1,\"a\":2,\"m\":{\"y\":1,\"b\":2}}");
	json_object_put(o);
}

static void test_positions(void **state)
{
	json_object *pos = json_object_new_object();
	json_object *o = parse_ok("scope: x\npostgresql:\n  authentication:\n"
	                          "    replication:\n      password: [1]\n"
	                          "  pg_hba:\n    - a\n    - b\n",
	                          pos);

	(void)state;
	assert_string_equal(pgkeel_yaml_position(pos, "scope"), "t.yml:1:8");
	assert_string_equal(pgkeel_yaml_position(pos, "postgresql.authentication.replication.password"),
	                    "t.yml:5:17");
	assert_string_equal(pgkeel_yaml_position(pos, "postgresql.pg_hba[1]"), "t.yml:8:7");
	assert_null(pgkeel_yaml_position(pos, "nope"));
	json_object_put(o);
	json_object_put(pos);
}

static void test_errors(void **state)
{
	(void)state;
	parse_err("a: 1\nb: 2\na: 3\n", "t.yml:3:1: duplicate key 'a' (first at t.yml:1:1)");
	parse_err("x:\n  y: 1\n  y: 2\n", "duplicate key 'y' in 'x'");
	parse_err("a: [1, 2\n", "t.yml:");
	parse_err("a: b: c\n", "t.yml:1:5: invalid YAML");
	parse_err("a: *nope\n", "unknown alias");
	parse_err("a: 1\n---\nb: 2\n", "expected a single document");
	parse_err("a: !!int abc\n", "cannot use tag");
	parse_err("a: !custom x\n", "cannot use tag");
	parse_err("x:\n  <<: 5\n", "merge key");
	parse_err("a: &x 1\nb: &x 2\n", "t.yml:2:4: found duplicate anchor '&x'");
}

static void test_empty_document(void **state)
{
	json_object *o = (json_object *)1;
	char err[128];

	(void)state;
	assert_true(pgkeel_yaml_parse("", 0, "t.yml", &o, NULL, err, sizeof(err)));
	assert_null(o);
	assert_true(pgkeel_yaml_parse("# only a comment\n", 17, "t.yml", &o, NULL, err, sizeof(err)));
	assert_null(o);
}

static void test_alias_bomb_is_bounded(void **state)
{
	const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	                   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";

	(void)state;
	parse_err(bomb, "too many nodes");
}

static void test_missing_file(void **state)
{
	json_object *o = NULL;
	char err[512], fifo[64];

	(void)state;
	assert_false(pgkeel_yaml_load_file("/nonexistent/p.yml", &o, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/p.yml: cannot open"));
	/* a FIFO is refused at once, not waited on */
	snprintf(fifo, sizeof(fifo), "/tmp/pgkeel-fifo-%d", (int)getpid());
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_false(pgkeel_yaml_load_file(fifo, &o, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
	unlink(fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalar_resolution),
		cmocka_unit_test(test_merge_keys_and_anchors),
		cmocka_unit_test(test_key_order_is_kept),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_empty_document),
		cmocka_unit_test(test_alias_bomb_is_bounded),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
