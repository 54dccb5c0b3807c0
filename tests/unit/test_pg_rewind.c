/* Unit tests for core/pg_rewind.c: history parsing, the rewind decision, pg_waldump output. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pg_data.h"
#include "pg_rewind.h"

static void test_history_parse(void **state)
{
	struct pgkeel_tl_switch h[4];

	(void)state;
	assert_int_equal(pgkeel_tl_history_parse("1\t0/3000060\tno recovery target specified\n"
	                                         "\n# comment\n"
	                                         "2\t0/5000000\tat restore point \"x\"\n",
	                                         h, 4),
	                 2);
	assert_int_equal(h[0].parent_tli, 1);
	assert_int_equal(h[0].switchpoint, 0x3000060);
	assert_int_equal(h[1].parent_tli, 2);
	assert_int_equal(h[1].switchpoint, 0x5000000);
	assert_int_equal(pgkeel_tl_history_parse("", h, 4), 0);
	assert_int_equal(pgkeel_tl_history_parse("x\t0/1\tr\n", h, 4), -1);
	assert_int_equal(pgkeel_tl_history_parse("1 0/1 r\n", h, 4), -1);
	assert_int_equal(pgkeel_tl_history_parse("1\tnope\tr\n", h, 4), -1);
	/* more lines than room: the first `max` are kept */
	assert_int_equal(pgkeel_tl_history_parse("1\t0/1\ta\n2\t0/2\tb\n3\t0/3\tc\n", h, 2), 2);
}

static enum pgkeel_rewind_need decide(int64_t local_tli, int64_t local_lsn, bool in_recovery,
                                      int64_t checkpoint_end, int64_t leader_tli,
                                      const char *history)
{
	struct pgkeel_tl_switch h[8];
	int n = history ? pgkeel_tl_history_parse(history, h, 8) : 0;
	struct pgkeel_rewind_facts f = {
		.local_tli = local_tli,
		.local_lsn = local_lsn,
		.in_recovery = in_recovery,
		.checkpoint_end = checkpoint_end,
		.leader_tli = leader_tli,
		.history = h,
		.n_history = n > 0 ? (size_t)n : 0,
	};

	return pgkeel_rewind_decide(&f);
}

static void test_decide(void **state)
{
	const char *hist = "1\t0/3000060\tno recovery target specified\n";

	(void)state;
	/* unknown facts */
	assert_int_equal(decide(0, 100, true, 0, 2, hist), PGKEEL_REWIND_UNKNOWN);
	assert_int_equal(decide(1, 100, true, 0, 0, hist), PGKEEL_REWIND_UNKNOWN);
	/* same timeline: nothing to rewind; ahead of the leader: rewind */
	assert_int_equal(decide(2, 0x9000000, false, 0, 2, NULL), PGKEEL_REWIND_NOT_NEEDED);
	assert_int_equal(decide(3, 0x9000000, false, 0, 2, NULL), PGKEEL_REWIND_NEEDED);
	/* a replica that replayed up to the switch point only: fine; past it: rewind */
	assert_int_equal(decide(1, 0x3000060, true, 0, 2, hist), PGKEEL_REWIND_NOT_NEEDED);
	assert_int_equal(decide(1, 0x3000000, true, 0, 2, hist), PGKEEL_REWIND_NOT_NEEDED);
	assert_int_equal(decide(1, 0x3000061, true, 0, 2, hist), PGKEEL_REWIND_NEEDED);
	/* a former primary: checkpoint at/after the switch -> rewind */
	assert_int_equal(decide(1, 0x3000060, false, 0, 2, hist), PGKEEL_REWIND_NEEDED);
	/* ... before it: rewind unless the checkpoint record ends exactly at the switch */
	assert_int_equal(decide(1, 0x3000000, false, 0x3000060, 2, hist),
	                 PGKEEL_REWIND_NOT_NEEDED);
	assert_int_equal(decide(1, 0x3000000, false, 0x3000058, 2, hist), PGKEEL_REWIND_NEEDED);
	assert_int_equal(decide(1, 0x3000000, false, 0, 2, hist), PGKEEL_REWIND_NEEDED);
	/* our timeline is not in the leader's history: rewind */
	assert_int_equal(decide(1, 0x100, true, 0, 3, "2\t0/4000000\tr\n"), PGKEEL_REWIND_NEEDED);
	assert_int_equal(decide(1, 0x100, true, 0, 2, NULL), PGKEEL_REWIND_NEEDED);
	/* two switches: 1 -> 2 -> 3, we are on 2 and behind its end */
	assert_int_equal(decide(2, 0x4000000, true, 0, 3,
	                        "1\t0/3000060\ta\n2\t0/5000000\tb\n"),
	                 PGKEEL_REWIND_NOT_NEEDED);
}

static void test_possible(void **state)
{
	json_object *cd = pgkeel_controldata_parse("wal_log_hints setting: off\n"
	                                           "Data page checksum version: 0\n");
	json_object *cd2 = pgkeel_controldata_parse("wal_log_hints setting: on\n"
	                                            "Data page checksum version: 0\n");
	json_object *cd3 = pgkeel_controldata_parse("wal_log_hints setting: off\n"
	                                            "Data page checksum version: 1\n");
	char why[256] = "";

	(void)state;
	assert_false(pgkeel_rewind_possible(true, cd, why, sizeof(why)));
	assert_non_null(strstr(why, "wal_log_hints"));
	assert_true(pgkeel_rewind_possible(true, cd2, NULL, 0));
	assert_true(pgkeel_rewind_possible(true, cd3, NULL, 0));
	assert_false(pgkeel_rewind_possible(false, cd2, why, sizeof(why)));
	assert_non_null(strstr(why, "use_pg_rewind"));
	json_object_put(cd);
	json_object_put(cd2);
	json_object_put(cd3);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 8192);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 8191, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_waldump(void **state)
{
	/* recorded: pg_waldump -t 1 -s 0/1500790 -n 2 after a clean shutdown (PostgreSQL 15) */
	char *out = slurp(TEST_SRCDIR "/tests/data/postgresql15/pg_waldump-checkpoint.out");
	char *err = slurp(TEST_SRCDIR "/tests/data/postgresql15/pg_waldump-checkpoint.err");

	(void)state;
	assert_int_equal(pgkeel_waldump_checkpoint_end(0x1500790, out, err), 0x1500808);
	/* another LSN than the one dumped: not ours */
	assert_int_equal(pgkeel_waldump_checkpoint_end(0x1500718, out, err), 0);
	assert_int_equal(pgkeel_waldump_checkpoint_end(0x1500790, out, ""), 0);
	assert_int_equal(pgkeel_waldump_checkpoint_end(0x1500790, "a\nb\n", err), 0);
	assert_int_equal(pgkeel_waldump_checkpoint_end(0x1500790, NULL, err), 0);
	free(out);
	free(err);
}

static void test_argv(void **state)
{
	json_object *opts = json_tokener_parse("[\"debug\", {\"sync-method\": \"fsync\"}]");
	char **argv = pgkeel_rewind_argv("/usr/lib/postgresql/15/bin", "/data", "host=h port=1",
	                                 true, "/data/postgresql.conf", opts);
	const char *want[] = {"/usr/lib/postgresql/15/bin/pg_rewind", "--restore-target-wal",
	                      "--config-file=/data/postgresql.conf", "--debug",
	                      "--sync-method=fsync", "-D", "/data", "--source-server",
	                      "host=h port=1", NULL};
	size_t i;

	(void)state;
	for (i = 0; want[i] != NULL; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[i]);
	pgkeel_rewind_argv_free(argv);
	json_object_put(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history_parse),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_possible),
		cmocka_unit_test(test_waldump),
		cmocka_unit_test(test_argv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
