/*
 * core/sampler.c without a server: the rule that decides when a replica's
 * timeline is asked again, and the thread's life (cadence, suspend/resume,
 * a new configuration, stop) against a socket directory that does not
 * exist, so that every sample fails at once.  The samples themselves are
 * tested on PostgreSQL 15 by tests/integration/test_sampler.py.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "sampler.h"
#include "state.h"
#include "util.h"

/* ------------------------------------------------------------ the timeline rule */

static void test_need_identify(void **state)
{
	static const struct {
		int64_t now, asked, cached, asked_status, status, leader;
		bool want;
		const char *why;
	} rows[] = {
	    {10000, 0, 0, 0, 1, 1, true, "never asked"},
	    {10000, 9000, 1, 1, 1, 1, false, "cached, equal to the leader's"},
	    {99000, 9000, 1, 1, 1, 1, false, "equal to the leader's: never again"},
	    {10000, 9000, 1, 1, 2, 2, true, "the replica's own timeline moved"},
	    {10000, 9000, 1, 1, 1, 2, false, "differs from the leader's, asked 1 s ago"},
	    {14000, 9000, 1, 1, 1, 2, true, "differs from the leader's, asked 5 s ago"},
	    {13999, 9000, 1, 1, 1, 2, false, "differs from the leader's, asked 4.999 s ago"},
	    {14000, 9000, 1, 1, 1, 0, false, "no leader known, equal to the status query's"},
	    {14000, 9000, 1, 2, 2, 0, true, "no leader known, behind the status query's"},
	    {12000, 9000, 1, 2, 2, 0, false, "no leader known, behind, asked 3 s ago"},
	    {14000, 9000, 2, 2, 2, 1, true, "ahead of the leader's, asked 5 s ago"},
	    {14000, 9000, 0, 1, 1, 1, true, "the last ask failed, 5 s ago"},
	    {10000, 9000, 0, 1, 1, 1, false, "the last ask failed, 1 s ago"},
	};

	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(rows); i++) {
		bool got = pgkeel_sampler_need_identify(rows[i].now, rows[i].asked, rows[i].cached,
		                                        rows[i].asked_status, rows[i].status,
		                                        rows[i].leader);

		if (got != rows[i].want)
			fail_msg("row %zu (%s): got %d", i, rows[i].why, got);
	}
}

/* ------------------------------------------------------------ the thread */

static struct pgkeel_config *nosock_config(void)
{
	struct pgkeel_config_opts opts = {.strict = false};
	char path[] = "/tmp/pgkeel-test-sampler-XXXXXX";
	struct pgkeel_config *c;
	struct pgkeel_diag d;
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "scope: s\nname: pg-1\n"
	           "restapi:\n  listen: 127.0.0.1:28301\n  connect_address: 127.0.0.1:28301\n"
	           "etcd3:\n  hosts: 127.0.0.1:23479\n"
	           "postgresql:\n  listen: 127.0.0.1:25591\n  connect_address: 127.0.0.1:25591\n"
	           "  data_dir: /tmp/pgkeel-test-sampler-data\n"
	           "  use_unix_socket: true\n"
	           "  parameters: {unix_socket_directories: /nonexistent/pgkeel-test-sampler}\n"
	           "  authentication:\n    superuser: {username: postgres}\n"
	           "    replication: {username: replicator}\n");
	assert_int_equal(fclose(f), 0);
	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	unlink(path);
	if (c == NULL)
		fail_msg("config: %s", json_object_to_json_string(d.errors));
	pgkeel_diag_clear(&d);
	return c;
}

static void publish_loop(const char *pg_state)
{
	struct pgkeel_state_loop *l = pgkeel_state_loop_new();

	l->pg_state = pgkeel_strdup(pg_state);
	pgkeel_state_publish_loop(l);
}

static void nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* How many pg parts were published during ms (each a failed one). */
static int count_parts(int64_t ms)
{
	int64_t until = pgkeel_now_monotonic_ms() + ms;
	struct pgkeel_state_view v;
	struct pgkeel_state_pg *last;
	int n = 0;

	pgkeel_state_acquire(&v);
	last = v.pg; /* held: its address cannot be reused by the next part */
	v.pg = NULL;
	pgkeel_state_release(&v);
	while (pgkeel_now_monotonic_ms() < until) {
		pgkeel_state_acquire(&v);
		if (v.pg != last) {
			assert_non_null(v.pg);
			assert_null(v.pg->status);
			pgkeel_state_pg_unref(last);
			last = v.pg;
			v.pg = NULL;
			n++;
		}
		pgkeel_state_release(&v);
		nap_ms(2);
	}
	pgkeel_state_pg_unref(last);
	return n;
}

static void test_thread_life(void **state)
{
	struct pgkeel_config *c = nosock_config();
	struct pgkeel_sampler_opts o = {.cfg = c, .interval_ms = 100};
	struct pgkeel_sampler *s;
	int64_t t0;
	int n;

	(void)state;
	publish_loop("running");
	s = pgkeel_sampler_start(&o);
	n = count_parts(650);
	assert_in_range(n, 4, 8); /* one every 100 ms */
	assert_int_equal(pgkeel_sampler_backend_pid(s), 0);

	t0 = pgkeel_now_monotonic_ms();
	assert_true(pgkeel_sampler_suspend(s, t0 + 1000));
	assert_true(pgkeel_now_monotonic_ms() - t0 < 200);
	assert_int_equal(count_parts(400), 0); /* suspended: nothing */
	assert_true(pgkeel_sampler_suspend(s, pgkeel_now_monotonic_ms() + 1000)); /* again: fine */
	pgkeel_sampler_resume(s);
	assert_true(count_parts(350) >= 2);

	pgkeel_sampler_set_config(s, c);
	publish_loop("stopped"); /* not queried: failed parts all the same */
	assert_true(count_parts(350) >= 2);

	t0 = pgkeel_now_monotonic_ms();
	assert_true(pgkeel_sampler_stop(s));
	assert_true(pgkeel_now_monotonic_ms() - t0 < 200);
	assert_int_equal(count_parts(300), 0);
	assert_true(pgkeel_sampler_stop(NULL));
	pgkeel_state_publish_loop(NULL);
	pgkeel_state_publish_pg(NULL);
	pgkeel_config_unref(c);
}

/* The query deadline is capped below the interval, the defaults apply. */
static void test_stop_at_once(void **state)
{
	struct pgkeel_config *c = nosock_config();
	struct pgkeel_sampler_opts o = {.cfg = c, .interval_ms = 10, .query_timeout_ms = 5000};
	struct pgkeel_sampler *s;

	(void)state;
	publish_loop("starting");
	s = pgkeel_sampler_start(&o);
	assert_true(count_parts(200) >= 5);
	assert_true(pgkeel_sampler_stop(s));
	o.interval_ms = 0;
	o.query_timeout_ms = 0;
	s = pgkeel_sampler_start(&o); /* stopped before or during its first sample */
	assert_true(pgkeel_sampler_stop(s));
	pgkeel_state_publish_loop(NULL);
	pgkeel_state_publish_pg(NULL);
	pgkeel_config_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_need_identify),
	    cmocka_unit_test(test_thread_life),
	    cmocka_unit_test(test_stop_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
