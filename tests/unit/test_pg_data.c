/* Unit tests for core/pg_data.c: LSNs, data directory facts, postmaster.pid checks. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pg_data.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgkeel-test-pgdata-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_lsn(void **state)
{
	int64_t v;
	char buf[32];

	(void)state;
	assert_true(pgkeel_lsn_parse("0/4042B60", &v));
	assert_int_equal(v, 0x4042B60);
	assert_true(pgkeel_lsn_parse("1/0", &v));
	assert_int_equal(v, INT64_C(1) << 32);
	assert_true(pgkeel_lsn_parse("0/0", &v));
	assert_int_equal(v, 0);
	assert_false(pgkeel_lsn_parse("", &v));
	assert_false(pgkeel_lsn_parse("0/", &v));
	assert_false(pgkeel_lsn_parse("/5", &v));
	assert_false(pgkeel_lsn_parse("0/5x", &v));
	assert_false(pgkeel_lsn_parse("100000000/0", &v));
	assert_false(pgkeel_lsn_parse("0/100000000", &v));
	pgkeel_lsn_format(0x4042B60, buf, sizeof(buf));
	assert_string_equal(buf, "0/4042B60");
	pgkeel_lsn_format((INT64_C(0x1A) << 32) | 0xFF, buf, sizeof(buf));
	assert_string_equal(buf, "1A/FF");
}

static void test_dir_and_version(void **state)
{
	char sub[128];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/nope", tmpdir);
	assert_true(pgkeel_pg_dir_empty(sub));
	assert_true(pgkeel_pg_dir_empty(tmpdir));
	assert_int_equal(pgkeel_pg_data_version(tmpdir), 0);
	write_file("PG_VERSION", "15\n");
	assert_false(pgkeel_pg_dir_empty(tmpdir));
	assert_int_equal(pgkeel_pg_data_version(tmpdir), 15);
	write_file("PG_VERSION", "garbage\n");
	assert_int_equal(pgkeel_pg_data_version(tmpdir), 0);
}

static void write_pidfile(pid_t pid, int64_t start)
{
	char text[512];

	snprintf(text, sizeof(text), "%d\n%s\n%lld\n5432\n/var/run/postgresql\n127.0.0.1\n"
	                             "  5432001     32768\nready   \n",
	         (int)pid, tmpdir, (long long)start);
	write_file("postmaster.pid", text);
}

static void test_pidfile_and_liveness(void **state)
{
	struct pgkeel_pidfile pf;
	char old_cwd[4096];
	int64_t me = pgkeel_process_start_time(getpid());
	pid_t dead;
	int st;

	(void)state;
	assert_true(me > 1000000000);
	assert_int_equal(pgkeel_postmaster_check(tmpdir, NULL), PGKEEL_PM_NOT_RUNNING);

	/* this test process plays the postmaster: its cwd is the data directory */
	assert_non_null(getcwd(old_cwd, sizeof(old_cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	write_pidfile(getpid(), me);
	assert_true(pgkeel_pidfile_read(tmpdir, &pf));
	assert_int_equal(pf.pid, getpid());
	assert_int_equal(pf.port, 5432);
	assert_string_equal(pf.status, "ready");
	assert_string_equal(pf.socket_dir, "/var/run/postgresql");
	assert_int_equal(pgkeel_postmaster_check(tmpdir, &pf), PGKEEL_PM_RUNNING);

	/* the same pid with a start time far from the process's: reused pid */
	write_pidfile(getpid(), me - 3600);
	assert_int_equal(pgkeel_postmaster_check(tmpdir, NULL), PGKEEL_PM_STALE);
	assert_int_equal(chdir(old_cwd), 0);

	/* a live process that is not in the data directory (pid 1's cwd is "/") */
	write_pidfile(1, me);
	assert_int_equal(pgkeel_postmaster_check(tmpdir, NULL), PGKEEL_PM_STALE);

	/* a pid that is gone */
	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, &st, 0), dead);
	write_pidfile(dead, me);
	assert_int_equal(pgkeel_postmaster_check(tmpdir, NULL), PGKEEL_PM_NOT_RUNNING);

	write_file("postmaster.pid", "not a pid\n");
	assert_false(pgkeel_pidfile_read(tmpdir, &pf));
	assert_int_equal(pgkeel_postmaster_check(tmpdir, NULL), PGKEEL_PM_NOT_RUNNING);
}

static void test_controldata(void **state)
{
	FILE *f = fopen(TEST_SRCDIR "/tests/data/postgresql15/pg_controldata-shutdown.txt", "r");
	char text[8192];
	size_t n;
	json_object *cd;
	const char *s;
	int64_t v;

	(void)state;
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	cd = pgkeel_controldata_parse(text);
	assert_non_null(cd);
	assert_true(pgkeel_controldata_str(cd, "Database cluster state", &s));
	assert_string_equal(s, "shut down");
	assert_true(pgkeel_controldata_int(cd, "Latest checkpoint's TimeLineID", &v));
	assert_int_equal(v, 1);
	assert_true(pgkeel_controldata_lsn(cd, "Latest checkpoint location", &v));
	assert_int_equal(v, 0x17414F8);
	assert_true(pgkeel_controldata_int(cd, "max_connections setting", &v));
	assert_int_equal(v, 100);
	assert_true(pgkeel_controldata_str(cd, "wal_log_hints setting", &s));
	assert_string_equal(s, "off");
	assert_true(pgkeel_controldata_int(cd, "Data page checksum version", &v));
	assert_int_equal(v, 1);
	assert_false(pgkeel_controldata_str(cd, "No such line", &s));
	assert_false(pgkeel_controldata_lsn(cd, "Database cluster state", &v));
	json_object_put(cd);
	assert_null(pgkeel_controldata_parse(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lsn),
		cmocka_unit_test_setup_teardown(test_dir_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pidfile_and_liveness, setup, teardown),
		cmocka_unit_test(test_controldata),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
