/*
 * core/history.c: the leader's `history` key, compared with what Patroni
 * 3.0.2 wrote after a switchover (tests/data/patroni-3.0.2/after-switchover).
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "history.h"
#include "util.h"

/* A snapshot whose history key holds `value` (NULL: no key). */
static struct pgkeel_cluster *with_history(const char *value)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_dcs_entry e = {.key = "history", .version = "7"};

	if (value != NULL) {
		e.value = value;
		e.value_len = strlen(value);
		pgkeel_cluster_builder_add(b, &e);
	}
	return pgkeel_cluster_builder_finish(b);
}

static char *update(const char *old, int64_t tl, const char *file, int64_t us, int64_t max)
{
	struct pgkeel_cluster *c = with_history(old);
	char *out = pgkeel_history_update(c->history, tl, file, 1795648030, us, "pg-3", max);

	pgkeel_cluster_unref(c);
	return out;
}

static void test_after_switchover_as_patroni(void **state)
{
	char *v;

	(void)state;
	v = update("[]", 2, "1\t0/50000A0\tno recovery target specified\n", 944457, 0);
	assert_string_equal(
	    v, "[[1,83886240,\"no recovery target specified\",\"2026-11-25T23:07:10.944457+00:00\","
	       "\"pg-3\"]]");
	free(v);
}

static void test_when_to_write(void **state)
{
	const char *done = "[[1,83886240,\"no recovery target specified\","
	                   "\"2026-11-25T23:07:10.944457+00:00\",\"pg-3\"]]";
	char *v;

	(void)state;
	/* timeline 1: "[]" only when something else is there */
	assert_null(update("[]", 1, NULL, 0, 0));
	v = update(done, 1, NULL, 0, 0);
	assert_string_equal(v, "[]");
	free(v);
	/* up to date: nothing */
	assert_null(update(done, 2, "1\t0/50000A0\tx\n", 0, 0));
	/* no file: nothing */
	assert_null(update(NULL, 2, NULL, 0, 0));
	/* a line without the leader's name is completed */
	v = update("[[1,83886240,\"no recovery target specified\"]]", 2,
	           "1\t0/50000A0\tno recovery target specified\n", 0, 0);
	assert_string_equal(v, "[[1,83886240,\"no recovery target specified\","
	                       "\"2026-11-25T23:07:10+00:00\",\"pg-3\"]]");
	free(v);
}

static void test_old_lines_kept_and_trimmed(void **state)
{
	const char *old = "[[1,100,\"r1\",\"2026-01-01T00:00:00+00:00\",\"pg-2\"],"
	                  "[2,200,\"r2\",\"2026-01-02T00:00:00+00:00\"]]";
	const char *file = "# comment\n1\t0/64\tr1\n2\t0/C8\tr2\n\n3\t0/12C\tr3\nbad line\n";
	char *v;

	(void)state;
	v = update(old, 4, file, 5, 0);
	assert_string_equal(v, "[[1,100,\"r1\",\"2026-01-01T00:00:00+00:00\",\"pg-2\"],"
	                       "[2,200,\"r2\",\"2026-01-02T00:00:00+00:00\"],"
	                       "[3,300,\"r3\",\"2026-11-25T23:07:10.000005+00:00\",\"pg-3\"]]");
	free(v);
	/* max_timelines_history keeps the last lines */
	v = update(old, 4, file, 0, 2);
	assert_string_equal(v, "[[2,200,\"r2\",\"2026-01-02T00:00:00+00:00\"],"
	                       "[3,300,\"r3\",\"2026-11-25T23:07:10+00:00\",\"pg-3\"]]");
	free(v);
	/* an old line with another LSN for the timeline is not carried over */
	v = update("[[1,999,\"r1\",\"2026-01-01T00:00:00+00:00\",\"pg-2\"]]", 3,
	           "1\t0/64\tr1\n2\t0/C8\tr2\n", 0, 0);
	assert_string_equal(v, "[[1,100,\"r1\"],[2,200,\"r2\",\"2026-11-25T23:07:10+00:00\","
	                       "\"pg-3\"]]");
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_after_switchover_as_patroni),
	    cmocka_unit_test(test_when_to_write),
	    cmocka_unit_test(test_old_lines_kept_and_trimmed),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
