/*
 * Tests of core/pg_callbacks.c: the shell-words splitter (checked against
 * Python's shlex.split), the argv contract seen by a stand-in script, the
 * one-callback-at-a-time rule (two role changes 100 ms apart leave one
 * callback running, the first one's whole process group gone), on_reload in
 * its own slot, and nothing fired while bootstrapping.
 *
 * The stand-in script is written into a temp dir at setup:
 *   cb.sh TAG MODE [action role scope]
 * records its argv in TAG.argv and its pid in TAG.pid; MODE quick exits 0,
 * exit3 exits 3, linger starts a `sleep` in its process group (pid in
 * TAG.kid) and waits for it.  The test process is a child subreaper, so the
 * members of a killed group are reparented to it and reaped here.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "json.h"
#include "pg_callbacks.h"
#include "util.h"

static char dir[64];
static char script[128];

/* ---- helpers ---- */

static void path_of(char *buf, size_t len, const char *tag, const char *ext)
{
	assert_true(pgkeel_fmt(buf, len, "%s/%s.%s", dir, tag, ext));
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = calloc(1, 4096);
	assert_non_null(buf);
	n = fread(buf, 1, 4095, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Wait for a file the script writes (it renames it into place when complete). */
static bool wait_file(const char *tag, const char *ext, int timeout_ms)
{
	char path[256];
	int64_t deadline = pgkeel_now_monotonic_ms() + timeout_ms;

	path_of(path, sizeof(path), tag, ext);
	while (!exists(path)) {
		if (pgkeel_now_monotonic_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

static int read_pid(const char *tag, const char *ext)
{
	char path[256], *text;
	int64_t v = 0;

	path_of(path, sizeof(path), tag, ext);
	text = slurp(path);
	assert_non_null(text);
	text[strcspn(text, "\n")] = '\0';
	assert_true(pgkeel_parse_int64(text, &v));
	free(text);
	return (int)v;
}

/* Field 5 (pgrp) and 4 (ppid) of /proc/<pid>/stat; false when gone. */
static bool proc_stat(pid_t pid, pid_t *ppid, pid_t *pgrp, char *state)
{
	char path[64], buf[512], *p;
	FILE *f;
	int a, b;
	char s;
	bool ok = false;

	assert_true(pgkeel_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid));
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1, " %c %d %d", &s, &a, &b) == 3) {
		*state = s;
		*ppid = (pid_t)a;
		*pgrp = (pid_t)b;
		ok = true;
	}
	fclose(f);
	return ok;
}

/* Reap orphans reparented to us, but never `keep`, which the module tracks. */
static void reap_orphans(pid_t keep)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		int64_t pid;
		pid_t ppid, pgrp;
		char st;

		if (pgkeel_parse_int64(e->d_name, &pid) && (pid_t)pid != keep &&
		    proc_stat((pid_t)pid, &ppid, &pgrp, &st) && ppid == getpid())
			(void)waitpid((pid_t)pid, NULL, WNOHANG);
	}
	closedir(d);
}

/* Live (non-zombie) processes in process group pgrp. */
static int group_members(pid_t pgrp)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		int64_t pid;
		pid_t ppid, g;
		char st;

		if (pgkeel_parse_int64(e->d_name, &pid) && proc_stat((pid_t)pid, &ppid, &g, &st) &&
		    g == pgrp && st != 'Z')
			n++;
	}
	closedir(d);
	return n;
}

/* Live processes whose command line mentions our script. */
static int script_processes(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		int64_t pid;
		char path[64], buf[512];
		FILE *f;
		size_t len;
		pid_t ppid, g;
		char st;

		if (!pgkeel_parse_int64(e->d_name, &pid) ||
		    !proc_stat((pid_t)pid, &ppid, &g, &st) || st == 'Z')
			continue;
		assert_true(pgkeel_fmt(path, sizeof(path), "/proc/%d/cmdline", (int)pid));
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < len; i++)
			buf[i] = buf[i] == '\0' ? ' ' : buf[i];
		buf[len] = '\0';
		if (strstr(buf, script) != NULL)
			n++;
	}
	closedir(d);
	return n;
}

/* Wait until pgrp has no live member (reaping orphans meanwhile). */
static bool group_gone(pid_t pgrp, pid_t keep, int timeout_ms)
{
	int64_t deadline = pgkeel_now_monotonic_ms() + timeout_ms;

	for (;;) {
		reap_orphans(keep);
		if (group_members(pgrp) == 0)
			return true;
		if (pgkeel_now_monotonic_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}

/* Poll the module until the slot's callback has been reported. */
static void wait_done(struct pgkeel_callbacks *cb, bool reload)
{
	int64_t deadline = pgkeel_now_monotonic_ms() + 10000;

	for (;;) {
		pgkeel_callbacks_poll(cb);
		if (!(reload ? cb->reload_pending : cb->main_pending))
			return;
		assert_true(pgkeel_now_monotonic_ms() < deadline);
		sleep_ms(10);
	}
}

static char *command(const char *tag, const char *mode)
{
	return pgkeel_asprintf("'%s' %s %s", script, tag, mode);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	static const char body[] =
	    "#!/bin/sh\n"
	    "# stand-in callback: cb.sh TAG MODE action role scope\n"
	    "d=$(dirname \"$0\")\n"
	    "echo $$ > \"$d/$1.pid.tmp\" && mv \"$d/$1.pid.tmp\" \"$d/$1.pid\"\n"
	    "{ printf '%s\\n' \"$0\"; printf '%s\\n' \"$@\";"
	    " echo \"secret:${PATRONI_TEST_SECRET-unset}\"; } > \"$d/$1.argv.tmp\"\n"
	    "mv \"$d/$1.argv.tmp\" \"$d/$1.argv\"\n"
	    "case $2 in\n"
	    "quick) exit 0 ;;\n"
	    "exit3) exit 3 ;;\n"
	    "linger) sleep 60 & echo $! > \"$d/$1.kid.tmp\" && mv \"$d/$1.kid.tmp\" "
	    "\"$d/$1.kid\"; wait ;;\n"
	    "esac\n";
	FILE *f;

	(void)state;
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	assert_true(pgkeel_fmt(dir, sizeof(dir), "/tmp/pgkeel-test-cb-XXXXXX"));
	if (mkdtemp(dir) == NULL)
		return -1;
	assert_true(pgkeel_fmt(script, sizeof(script), "%s/cb.sh", dir));
	f = fopen(script, "w");
	assert_non_null(f);
	fputs(body, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(script, 0700), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	reap_orphans(0);
	assert_true(pgkeel_fmt(cmd, sizeof(cmd), "rm -rf '%s'", dir));
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the splitter ---- */

static void test_shell_split(void **state)
{
	/* input -> words joined with '|' (Python's shlex.split), or "!error" */
	static const char *const cases[][2] = {
	    {"", ""},
	    {"  a  b\tc\n", "a|b|c"},
	    {"a'b c'd", "ab cd"},
	    {"'a b' \"c d\"", "a b|c d"},
	    {"a\\ b", "a b"},
	    {"\"a\\\"b\\\\c\\$d\"", "a\"b\\c\\$d"},
	    {"'a\\b'", "a\\b"},
	    {"'' \"\" x", "||x"},
	    {"a''", "a"},
	    {"a\\\nb", "a\nb"},
	    {"a#b #c", "a#b|#c"},
	    {"\"it's\"", "it's"},
	    {"x\\'y", "x'y"},
	    {"\"a\\nb\"", "a\\nb"},
	    {"/usr/bin/cb.sh --flag=\"x y\"", "/usr/bin/cb.sh|--flag=x y"},
	    {"a\\", "!No escaped character"},
	    {"'abc", "!No closing quotation"},
	    {"\"abc\\", "!No escaped character"},
	    {"it's", "!No closing quotation"},
	};

	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(cases); i++) {
		char **argv = (char **)1, err[64] = "", *joined;
		size_t argc = 99;
		bool ok = pgkeel_shell_split(cases[i][0], &argv, &argc, err, sizeof(err));
		struct pgkeel_sbuf b = {0};

		if (cases[i][1][0] == '!') {
			assert_false(ok);
			assert_null(argv);
			assert_int_equal(argc, 0);
			assert_string_equal(err, cases[i][1] + 1);
			continue;
		}
		assert_true(ok);
		for (size_t j = 0; j < argc; j++)
			pgkeel_sbuf_printf(&b, "%s%s", j > 0 ? "|" : "", argv[j]);
		joined = pgkeel_sbuf_finish(&b);
		assert_null(argv[argc]);
		assert_string_equal(joined, cases[i][1]);
		free(joined);
		pgkeel_argv_free(argv);
	}
	/* NULL is no words; errors without a buffer are fine */
	{
		char **argv;
		size_t argc;

		assert_true(pgkeel_shell_split(NULL, &argv, &argc, NULL, 0));
		assert_int_equal(argc, 0);
		assert_null(argv[0]);
		pgkeel_argv_free(argv);
		assert_false(pgkeel_shell_split("'", &argv, &argc, NULL, 0));
		pgkeel_argv_free(NULL);
	}
}

/* ---- callbacks ---- */

static void test_argv_contract(void **state)
{
	struct pgkeel_callbacks cb;
	char *cmd, path[256], *text, expected[512];

	(void)state;
	setenv("PATRONI_TEST_SECRET", "hunter2", 1);
	pgkeel_callbacks_init(&cb);
	cb.quiet = true;
	cmd = pgkeel_asprintf("'%s' 'arg with space' quick", script);
	assert_int_equal(
	    pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_ROLE_CHANGE, "promoted", "batman"),
	    PGKEEL_CB_STARTED);
	free(cmd);
	wait_done(&cb, false);
	unsetenv("PATRONI_TEST_SECRET");
	assert_true(pgkeel_child_succeeded(&cb.main.child));
	path_of(path, sizeof(path), "arg with space", "argv");
	text = slurp(path);
	assert_non_null(text);
	assert_true(pgkeel_fmt(expected, sizeof(expected),
	                       "%s\narg with space\nquick\non_role_change\nmaster\nbatman\n"
	                       "secret:unset\n",
	                       script));
	assert_string_equal(text, expected);
	free(text);

	/* the other roles and actions are passed as they are */
	cmd = command("r", "quick");
	assert_int_equal(pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_START, "replica", "b2"),
	                 PGKEEL_CB_STARTED);
	wait_done(&cb, false);
	path_of(path, sizeof(path), "r", "argv");
	text = slurp(path);
	assert_non_null(text);
	assert_non_null(strstr(text, "\nr\nquick\non_start\nreplica\nb2\n"));
	free(text);
	assert_int_equal(pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_STOP, "primary", "b2"),
	                 PGKEEL_CB_STARTED);
	wait_done(&cb, false);
	text = slurp(path);
	assert_non_null(strstr(text, "\non_stop\nmaster\nb2\n"));
	free(text);
	assert_int_equal(
	    pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_RESTART, "standby_leader", "b2"),
	    PGKEEL_CB_STARTED);
	wait_done(&cb, false);
	text = slurp(path);
	assert_non_null(strstr(text, "\non_restart\nstandby_leader\nb2\n"));
	free(text);
	free(cmd);

	/* a failing callback: its exit status is collected */
	cmd = command("f", "exit3");
	assert_int_equal(pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_RELOAD, "replica", "b2"),
	                 PGKEEL_CB_STARTED);
	free(cmd);
	wait_done(&cb, true);
	assert_int_equal(pgkeel_child_exit_code(&cb.reload.child), 3);
	assert_int_equal(pgkeel_callbacks_pid(&cb, true), 0);

	pgkeel_callbacks_shutdown(&cb, pgkeel_now_monotonic_ms());
	assert_string_equal(pgkeel_cb_role_name("primary"), "master");
	assert_string_equal(pgkeel_cb_role_name("promoted"), "master");
	assert_string_equal(pgkeel_cb_role_name("demoted"), "demoted");
	assert_string_equal(pgkeel_cb_action_name(PGKEEL_CB_ON_ROLE_CHANGE), "on_role_change");
}

static void test_one_role_change_at_a_time(void **state)
{
	struct pgkeel_callbacks cb;
	char *c1 = command("rc1", "linger"), *c2 = command("rc2", "linger");
	pid_t pid1, pid2;
	int kid1;
	int64_t t0;

	(void)state;
	pgkeel_callbacks_init(&cb);
	cb.quiet = true;
	t0 = pgkeel_now_monotonic_ms();
	assert_int_equal(
	    pgkeel_callbacks_fire(&cb, c1, PGKEEL_CB_ON_ROLE_CHANGE, "promoted", "batman"),
	    PGKEEL_CB_STARTED);
	pid1 = pgkeel_callbacks_pid(&cb, false);
	assert_true(pid1 > 0);
	/* the first callback has forked its grandchild when the second comes */
	assert_true(wait_file("rc1", "kid", 5000));
	kid1 = read_pid("rc1", "kid");
	if (pgkeel_now_monotonic_ms() < t0 + 100)
		sleep_ms((int)(t0 + 100 - pgkeel_now_monotonic_ms()));
	assert_int_equal(
	    pgkeel_callbacks_fire(&cb, c2, PGKEEL_CB_ON_ROLE_CHANGE, "replica", "batman"),
	    PGKEEL_CB_STARTED);
	pid2 = pgkeel_callbacks_pid(&cb, false);
	assert_true(pid2 > 0 && pid2 != pid1);
	assert_int_equal(cb.main.replaced, 1);

	/* the first one's whole group is gone, its grandchild included */
	assert_true(group_gone(pid1, pid2, 2000));
	{
		/* killed: gone, or a zombie its new parent has not reaped yet */
		pid_t ppid, g;
		char st = 'Z';

		assert_true(!proc_stat(kid1, &ppid, &g, &st) || st == 'Z');
	}
	/* exactly one callback runs: the second */
	assert_true(wait_file("rc2", "kid", 5000));
	assert_int_equal(script_processes(), 1);
	assert_int_equal(read_pid("rc2", "pid"), pid2);
	assert_true(group_members(pid2) >= 2);

	pgkeel_callbacks_shutdown(&cb, pgkeel_now_monotonic_ms());
	assert_true(group_gone(pid2, 0, 2000));
	assert_int_equal(script_processes(), 0);
	free(c1);
	free(c2);
}

static void test_reload_has_its_own_slot(void **state)
{
	struct pgkeel_callbacks cb;
	char *crc = command("rc", "linger"), *r1 = command("rl1", "linger"),
	     *r2 = command("rl2", "linger");
	pid_t prc, p1, p2;

	(void)state;
	pgkeel_callbacks_init(&cb);
	cb.quiet = true;
	assert_int_equal(
	    pgkeel_callbacks_fire(&cb, crc, PGKEEL_CB_ON_ROLE_CHANGE, "promoted", "batman"),
	    PGKEEL_CB_STARTED);
	prc = pgkeel_callbacks_pid(&cb, false);
	assert_int_equal(pgkeel_callbacks_fire(&cb, r1, PGKEEL_CB_ON_RELOAD, "master", "batman"),
	                 PGKEEL_CB_STARTED);
	p1 = pgkeel_callbacks_pid(&cb, true);
	assert_true(wait_file("rl1", "kid", 5000));
	assert_true(wait_file("rc", "kid", 5000));
	/* on_reload did not touch the role change */
	assert_int_equal(pgkeel_callbacks_pid(&cb, false), prc);
	assert_true(group_members(prc) >= 2);
	assert_int_equal(cb.main.replaced, 0);

	/* a second on_reload replaces only the first */
	assert_int_equal(pgkeel_callbacks_fire(&cb, r2, PGKEEL_CB_ON_RELOAD, "master", "batman"),
	                 PGKEEL_CB_STARTED);
	p2 = pgkeel_callbacks_pid(&cb, true);
	assert_true(p2 > 0 && p2 != p1);
	assert_true(group_gone(p1, p2, 2000));
	assert_int_equal(pgkeel_callbacks_pid(&cb, false), prc);
	assert_true(group_members(prc) >= 2);
	assert_int_equal(cb.reload.replaced, 1);

	pgkeel_callbacks_shutdown(&cb, pgkeel_now_monotonic_ms());
	assert_true(group_gone(prc, 0, 2000));
	assert_true(group_gone(p2, 0, 2000));
	free(crc);
	free(r1);
	free(r2);
}

static void test_bootstrapping_and_config(void **state)
{
	struct pgkeel_callbacks cb;
	struct pgkeel_config cfg;
	char *cmd = command("bs", "quick"), *conf, path[256];

	(void)state;
	pgkeel_callbacks_init(&cb);
	cb.quiet = true;
	cb.bootstrapping = true;
	assert_int_equal(pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_START, "master", "batman"),
	                 PGKEEL_CB_BOOTSTRAPPING);
	assert_int_equal(pgkeel_callbacks_fire(&cb, cmd, PGKEEL_CB_ON_RELOAD, "master", "batman"),
	                 PGKEEL_CB_BOOTSTRAPPING);
	assert_int_equal(pgkeel_callbacks_pid(&cb, false), 0);
	assert_int_equal(pgkeel_callbacks_pid(&cb, true), 0);
	assert_false(cb.called);
	sleep_ms(100);
	path_of(path, sizeof(path), "bs", "pid");
	assert_false(exists(path));

	/* not configured: nothing runs, but it counts as a call (Patroni's __cb_called) */
	cb.bootstrapping = false;
	assert_int_equal(pgkeel_callbacks_fire(&cb, NULL, PGKEEL_CB_ON_RELOAD, "master", "b"),
	                 PGKEEL_CB_NOT_CONFIGURED);
	assert_false(cb.called);
	assert_int_equal(pgkeel_callbacks_fire(&cb, NULL, PGKEEL_CB_ON_START, "master", "b"),
	                 PGKEEL_CB_NOT_CONFIGURED);
	assert_true(cb.called);
	assert_int_equal(pgkeel_callbacks_fire(&cb, "  ", PGKEEL_CB_ON_START, "master", "b"),
	                 PGKEEL_CB_NOT_CONFIGURED);
	assert_int_equal(pgkeel_callbacks_fire(&cb, "'unclosed", PGKEEL_CB_ON_START, "master", "b"),
	                 PGKEEL_CB_FAILED);
	assert_int_equal(
	    pgkeel_callbacks_fire(&cb, "/nonexistent/cb.sh", PGKEEL_CB_ON_START, "master", "b"),
	    PGKEEL_CB_FAILED);
	assert_int_equal(pgkeel_callbacks_pid(&cb, false), 0);

	/* from the configuration: postgresql.callbacks.<action> and the scope */
	memset(&cfg, 0, sizeof(cfg));
	cfg.scope = "from-config";
	conf = pgkeel_asprintf("{\"postgresql\":{\"callbacks\":{\"on_start\":\"'%s' cfg quick\","
	                       "\"on_stop\":null}}}",
	                       script);
	cfg.effective = json_tokener_parse(conf);
	assert_non_null(cfg.effective);
	assert_int_equal(pgkeel_callbacks_fire_config(&cb, &cfg, PGKEEL_CB_ON_STOP, "master"),
	                 PGKEEL_CB_NOT_CONFIGURED);
	assert_int_equal(pgkeel_callbacks_fire_config(&cb, &cfg, PGKEEL_CB_ON_RELOAD, "master"),
	                 PGKEEL_CB_NOT_CONFIGURED);
	assert_int_equal(pgkeel_callbacks_fire_config(&cb, &cfg, PGKEEL_CB_ON_START, "primary"),
	                 PGKEEL_CB_STARTED);
	wait_done(&cb, false);
	{
		char *text;

		path_of(path, sizeof(path), "cfg", "argv");
		text = slurp(path);
		assert_non_null(text);
		assert_non_null(strstr(text, "\ncfg\nquick\non_start\nmaster\nfrom-config\n"));
		free(text);
	}
	json_object_put(cfg.effective);
	free(conf);
	pgkeel_callbacks_shutdown(&cb, pgkeel_now_monotonic_ms());
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shell_split),
	    cmocka_unit_test(test_argv_contract),
	    cmocka_unit_test(test_one_role_change_at_a_time),
	    cmocka_unit_test(test_reload_has_its_own_slot),
	    cmocka_unit_test(test_bootstrapping_and_config),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
