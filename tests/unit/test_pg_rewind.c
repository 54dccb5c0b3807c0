/*
 * Unit tests for core/pg_rewind.c: history parsing, the rewind decision,
 * pg_controldata and pg_waldump output, pg_rewind's argv and missing-WAL
 * message, archive/restore command templates, postmaster.opts and the
 * single-user crash recovery's argv.
 */
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
	assert_int_equal(decide(1, 0x3000000, false, 0x3000060, 2, hist), PGKEEL_REWIND_NOT_NEEDED);
	assert_int_equal(decide(1, 0x3000000, false, 0x3000058, 2, hist), PGKEEL_REWIND_NEEDED);
	assert_int_equal(decide(1, 0x3000000, false, 0, 2, hist), PGKEEL_REWIND_NEEDED);
	/* our timeline is not in the leader's history: rewind */
	assert_int_equal(decide(1, 0x100, true, 0, 3, "2\t0/4000000\tr\n"), PGKEEL_REWIND_NEEDED);
	assert_int_equal(decide(1, 0x100, true, 0, 2, NULL), PGKEEL_REWIND_NEEDED);
	/* two switches: 1 -> 2 -> 3, we are on 2 and behind its end */
	assert_int_equal(decide(2, 0x4000000, true, 0, 3, "1\t0/3000060\ta\n2\t0/5000000\tb\n"),
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
	/* PostgreSQL 16 words the error differently (Patroni 3.2.1) */
	assert_int_equal(pgkeel_waldump_checkpoint_end(
	                     0x1500790, out,
	                     "pg_waldump: error: error in WAL record at 0/1500790: invalid record "
	                     "length at 0/1500808: expected at least 24, got 0\n"),
	                 0x1500808);
	free(out);
	free(err);
}

static void test_fork_point(void **state)
{
	struct pgkeel_tl_switch h[3];
	int n =
	    pgkeel_tl_history_parse("1\t0/3000060\ta\n2\t0/5000000\tb\n3\t0/6000000\tc\n", h, 3);
	struct pgkeel_rewind_facts f = {.local_tli = 2,
	                                .local_lsn = 0x4000000,
	                                .leader_tli = 4,
	                                .history = h,
	                                .n_history = (size_t)n};
	size_t i = 99;

	(void)state;
	assert_ptr_equal(pgkeel_rewind_fork_point(&f, &i), &h[1]);
	assert_int_equal(i, 1);
	/* a former primary behind the switch point: the checkpoint end decides */
	assert_true(pgkeel_rewind_needs_checkpoint_end(&f));
	f.local_lsn = 0x5000000;
	assert_false(pgkeel_rewind_needs_checkpoint_end(&f));
	f.local_lsn = 0x4000000;
	f.in_recovery = true;
	assert_false(pgkeel_rewind_needs_checkpoint_end(&f));
	/* timeline 5 is nowhere: the last entry is logged */
	f.local_tli = 5;
	f.leader_tli = 6;
	assert_null(pgkeel_rewind_fork_point(&f, &i));
	assert_int_equal(i, 2);
	f.local_tli = 0; /* unknown: a later timeline (1) comes first */
	assert_null(pgkeel_rewind_fork_point(&f, &i));
	assert_int_equal(i, 0);
}

static void test_local_from_controldata(void **state)
{
	char *text = slurp(TEST_SRCDIR "/tests/data/postgresql15/pg_controldata-shutdown.txt");
	json_object *cd = pgkeel_controldata_parse(text);
	json_object *replica =
	    pgkeel_controldata_parse("Database cluster state:               shut down in recovery\n"
	                             "Latest checkpoint location:           0/8000028\n"
	                             "Latest checkpoint's TimeLineID:       1\n"
	                             "Minimum recovery ending location:     0/80000A0\n"
	                             "Min recovery ending loc's timeline:   1\n");
	json_object *was_primary =
	    pgkeel_controldata_parse("Database cluster state:               in archive recovery\n"
	                             "Latest checkpoint location:           0/9000028\n"
	                             "Latest checkpoint's TimeLineID:       2\n"
	                             "Minimum recovery ending location:     0/0\n"
	                             "Min recovery ending loc's timeline:   0\n");
	json_object *crashed =
	    pgkeel_controldata_parse("Database cluster state:               in production\n"
	                             "Latest checkpoint location:           0/9000028\n"
	                             "Latest checkpoint's TimeLineID:       2\n");
	bool in_recovery = true;
	int64_t tli = 0, lsn = 0, ckpt = 0;

	(void)state;
	assert_true(pgkeel_controldata_lsn(cd, "Latest checkpoint location", &ckpt));
	assert_true(pgkeel_rewind_local_from_controldata(cd, &in_recovery, &tli, &lsn));
	assert_false(in_recovery);
	assert_int_equal(tli, 1);
	assert_int_equal(lsn, ckpt);
	assert_true(pgkeel_rewind_local_from_controldata(replica, &in_recovery, &tli, &lsn));
	assert_true(in_recovery);
	assert_int_equal(lsn, 0x80000A0);
	/* 0/0 minimum recovery end: it was a primary when it stopped */
	assert_true(pgkeel_rewind_local_from_controldata(was_primary, &in_recovery, &tli, &lsn));
	assert_false(in_recovery);
	assert_int_equal(tli, 2);
	assert_int_equal(lsn, 0x9000028);
	/* a crashed primary: crash recovery first */
	assert_false(pgkeel_rewind_local_from_controldata(crashed, &in_recovery, &tli, &lsn));
	assert_false(pgkeel_rewind_local_from_controldata(NULL, &in_recovery, &tli, &lsn));
	json_object_put(cd);
	json_object_put(replica);
	json_object_put(was_primary);
	json_object_put(crashed);
	free(text);
}

static void test_can_restore(void **state)
{
	bool config_file = true;

	(void)state;
	assert_false(pgkeel_rewind_can_restore(150000, false, true, &config_file));
	assert_false(config_file);
	assert_true(pgkeel_rewind_can_restore(150000, true, true, &config_file));
	assert_false(config_file);
	/* Debian: postgresql.conf in /etc -- 15+ is told where it is, 13/14 cannot be */
	assert_true(pgkeel_rewind_can_restore(150000, true, false, &config_file));
	assert_true(config_file);
	assert_false(pgkeel_rewind_can_restore(140000, true, false, &config_file));
	assert_true(pgkeel_rewind_can_restore(130000, true, true, &config_file));
	assert_false(config_file);
	assert_false(pgkeel_rewind_can_restore(120000, true, true, &config_file));
}

static void test_missing_wal(void **state)
{
	char name[25];

	(void)state;
	assert_true(pgkeel_rewind_missing_wal(
	    "pg_rewind: servers diverged at WAL location 0/3000000 on timeline 1\n"
	    "pg_rewind: error: could not open file \"/data/pg_wal/000000010000000000000003\": "
	    "No such file or directory\n"
	    "pg_rewind: error: could not find previous WAL record at 0/3000028\n",
	    name));
	assert_string_equal(name, "000000010000000000000003");
	/* Patroni's example, on the last line without a newline */
	assert_true(pgkeel_rewind_missing_wal("x\ncould not open file \"/pg/d a/pg_wal/"
	                                      "0000000A00006AA100000068\": No such file or "
	                                      "directory",
	                                      name));
	assert_string_equal(name, "0000000A00006AA100000068");
	/* not in pg_wal, not a segment name, no path, no closing quote */
	assert_false(pgkeel_rewind_missing_wal(
	    "could not open file \"/data/global/000000010000000000000003\": No such file", name));
	assert_false(pgkeel_rewind_missing_wal(
	    "could not open file \"/data/pg_wal/00000002.history\": No such file", name));
	assert_false(pgkeel_rewind_missing_wal(
	    "could not open file \"000000010000000000000003\": No such file", name));
	assert_false(pgkeel_rewind_missing_wal(
	    "could not open file \"/data/pg_wal/000000010000000000000003", name));
	assert_false(pgkeel_rewind_missing_wal("", name));
}

static void test_archiver_command(void **state)
{
	char *c;

	(void)state;
	c = pgkeel_rewind_archiver_command("cp %p /arch/%f", "/data/pg_wal",
	                                   "000000010000000000000003");
	assert_string_equal(c, "cp /data/pg_wal/000000010000000000000003 "
	                       "/arch/000000010000000000000003");
	free(c);
	c = pgkeel_rewind_archiver_command("x %r 100%% %z %", "/w/", "F");
	assert_string_equal(c, "x 000000010000000000000001 100% %z %");
	free(c);
	c = pgkeel_rewind_archiver_command("%%p %%%f", "/w", "F");
	assert_string_equal(c, "%p %F");
	free(c);
}

static void test_ready_file(void **state)
{
	(void)state;
	assert_true(pgkeel_rewind_is_ready_file("000000010000000000000003.ready"));
	assert_true(pgkeel_rewind_is_ready_file("0000000A00006AA100000068.partial.ready"));
	assert_false(pgkeel_rewind_is_ready_file("000000010000000000000003.done"));
	assert_false(pgkeel_rewind_is_ready_file("000000010000000000000003.00000028.backup.ready"));
	assert_false(pgkeel_rewind_is_ready_file("00000002.history.ready"));
	assert_false(pgkeel_rewind_is_ready_file("00000001000000000000000a.ready"));
	assert_false(pgkeel_rewind_is_ready_file("000000010000000000000003.readyx"));
	assert_false(pgkeel_rewind_is_ready_file(""));
}

static void test_postmaster_opts(void **state)
{
	json_object *o = pgkeel_rewind_postmaster_opts(
	    "/usr/lib/postgresql/15/bin/postgres \"-D\" \"/data\" "
	    "\"--config-file=/data/postgresql.conf\" \"--listen_addresses=127.0.0.1\" "
	    "\"--port=5432\" \"--cluster_name=a b=c\" \"-c\" \"x=y\"\n");
	json_object *v;

	(void)state;
	assert_int_equal(json_object_object_length(o), 4);
	assert_true(json_object_object_get_ex(o, "config-file", &v));
	assert_string_equal(json_object_get_string(v), "/data/postgresql.conf");
	assert_true(json_object_object_get_ex(o, "port", &v));
	assert_string_equal(json_object_get_string(v), "5432");
	assert_true(json_object_object_get_ex(o, "cluster_name", &v));
	assert_string_equal(json_object_get_string(v), "a b=c");
	json_object_put(o);
	o = pgkeel_rewind_postmaster_opts("");
	assert_int_equal(json_object_object_length(o), 0);
	json_object_put(o);
}

/* argv equals want (both NULL-terminated). */
static void assert_argv(char **argv, const char *const *want)
{
	size_t i;

	for (i = 0; want[i] != NULL; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[i]);
}

static void test_single_user_argv(void **state)
{
	json_object *opts = json_tokener_parse("{\"port\": \"5432\", \"archive_mode\": \"off\","
	                                       " \"config-file\": \"/etc/pg.conf\"}");
	char **argv = pgkeel_rewind_single_user_argv("/bin/postgres", "/data", opts);
	const char *want[] = {"/bin/postgres",
	                      "--single",
	                      "-D",
	                      "/data",
	                      "-c",
	                      "archive_command=false",
	                      "-c",
	                      "archive_mode=on",
	                      "-c",
	                      "config-file=/etc/pg.conf",
	                      "-c",
	                      "port=5432",
	                      "template1",
	                      NULL};

	(void)state;
	assert_argv(argv, want);
	pgkeel_rewind_argv_free(argv);
	argv = pgkeel_rewind_single_user_argv("postgres", "/d", NULL);
	assert_string_equal(argv[4], "-c");
	assert_string_equal(argv[5], "archive_command=false");
	assert_string_equal(argv[8], "template1");
	assert_null(argv[9]);
	pgkeel_rewind_argv_free(argv);
	json_object_put(opts);
}

static void test_argv(void **state)
{
	json_object *opts = json_tokener_parse("[\"debug\", {\"sync-method\": \"fsync\"}]");
	char **argv = pgkeel_rewind_argv("/usr/lib/postgresql/15/bin/pg_rewind", "/data",
	                                 "host=h port=1", true, "/data/postgresql.conf", opts);
	const char *want[] = {"/usr/lib/postgresql/15/bin/pg_rewind",
	                      "--restore-target-wal",
	                      "--config-file=/data/postgresql.conf",
	                      "--debug",
	                      "--sync-method=fsync",
	                      "-D",
	                      "/data",
	                      "--source-server",
	                      "host=h port=1",
	                      NULL};

	(void)state;
	assert_argv(argv, want);
	pgkeel_rewind_argv_free(argv);
	json_object_put(opts);
	argv = pgkeel_rewind_argv(NULL, "/d", "dsn", false, "/ignored.conf", NULL);
	assert_string_equal(argv[0], "pg_rewind");
	assert_string_equal(argv[1], "-D");
	assert_null(argv[5]);
	pgkeel_rewind_argv_free(argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_history_parse),
	    cmocka_unit_test(test_decide),
	    cmocka_unit_test(test_possible),
	    cmocka_unit_test(test_waldump),
	    cmocka_unit_test(test_argv),
	    cmocka_unit_test(test_fork_point),
	    cmocka_unit_test(test_local_from_controldata),
	    cmocka_unit_test(test_can_restore),
	    cmocka_unit_test(test_missing_wal),
	    cmocka_unit_test(test_archiver_command),
	    cmocka_unit_test(test_ready_file),
	    cmocka_unit_test(test_postmaster_opts),
	    cmocka_unit_test(test_single_user_argv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
