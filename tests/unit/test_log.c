/*
 * Unit tests for core/log.c: level names, Patroni's plain line format, JSON
 * lines, thresholds, file rotation, queue overflow accounting, draining on
 * stop, reconfiguration and configuration errors.
 *
 * Every test that starts the logger stops it before looking at the output:
 * pgkeel_log_stop() drains the queue, so no test waits on a timer.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "log.h"

/* Test-only hook defined in core/log.c: hold the logger thread (no dequeue). */
extern void pgkeel_log_test_pause(bool paused);

#define PLAIN_TS_RE "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}"
#define ISO_TS_RE \
	"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2}$"

struct lines {
	char **v;
	size_t n;
};

struct fixture {
	char dir[PATH_MAX - 16];
	char file[PATH_MAX];
};

/* ---- helpers ---- */

static void lines_free(struct lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Read a file into lines without their '\n'; false when it cannot be opened. */
static bool lines_read(const char *path, struct lines *out)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	out->v = NULL;
	out->n = 0;
	if (f == NULL)
		return false;
	while ((len = getline(&line, &cap, f)) != -1) {
		char **v = realloc(out->v, (out->n + 1) * sizeof(*v));

		assert_non_null(v);
		out->v = v;
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		out->v[out->n] = strdup(line);
		assert_non_null(out->v[out->n]);
		out->n++;
	}
	free(line);
	fclose(f);
	return true;
}

static bool matches(const char *re, const char *s)
{
	regex_t rx;
	int rc;

	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&rx, s, 0, NULL, 0);
	regfree(&rx);
	return rc == 0;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int64_t file_size_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (int64_t)st.st_size;
}

static void rotated_path(const struct fixture *fx, int n, char *buf, size_t len)
{
	int w = snprintf(buf, len, "%s.%d", fx->file, n);

	assert_true(w > 0 && (size_t)w < len);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp;
	int n;

	assert_non_null(fx);
	tmp = getenv("TMPDIR");
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	n = snprintf(fx->dir, sizeof(fx->dir), "%s/pgkeel-test-log.XXXXXX", tmp);
	assert_true(n > 0 && (size_t)n < sizeof(fx->dir));
	assert_non_null(mkdtemp(fx->dir));
	n = snprintf(fx->file, sizeof(fx->file), "%s/pgkeel.log", fx->dir);
	assert_true(n > 0 && (size_t)n < sizeof(fx->file));
	*state = fx;
	return 0;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int n;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n > 0 && (size_t)n < sizeof(path)) {
			if (de->d_type == DT_DIR)
				remove_tree(path);
			else
				unlink(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	pgkeel_log_stop(); /* harmless when a test already stopped it */
	remove_tree(fx->dir);
	free(fx);
	return 0;
}

static void start_in(const char *dir, struct pgkeel_log_config *c)
{
	char err[512] = "";

	c->dir = dir;
	if (!pgkeel_log_start(c, err, sizeof(err)))
		fail_msg("pgkeel_log_start: %s", err);
}

/* Point fd 2 at path; returns the saved descriptor for stderr_restore(). */
static int stderr_redirect(const char *path)
{
	int saved;
	int fd;

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved != -1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_true(dup2(fd, STDERR_FILENO) != -1);
	close(fd);
	return saved;
}

static void stderr_restore(int saved)
{
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) != -1);
	close(saved);
}

/* ---- tests ---- */

static void test_level_parse(void **state)
{
	static const struct {
		const char *s;
		enum pgkeel_log_level level;
	} good[] = {
		{ "DEBUG", PGKEEL_LOG_DEBUG },	   { "debug", PGKEEL_LOG_DEBUG },
		{ "INFO", PGKEEL_LOG_INFO },	   { "Info", PGKEEL_LOG_INFO },
		{ "WARNING", PGKEEL_LOG_WARNING }, { "warning", PGKEEL_LOG_WARNING },
		{ "WARN", PGKEEL_LOG_WARNING },	   { "warn", PGKEEL_LOG_WARNING },
		{ "ERROR", PGKEEL_LOG_ERROR },	   { "error", PGKEEL_LOG_ERROR },
		{ "CRITICAL", PGKEEL_LOG_FATAL },  { "critical", PGKEEL_LOG_FATAL },
		{ "FATAL", PGKEEL_LOG_FATAL },	   { "fatal", PGKEEL_LOG_FATAL },
	};
	static const char *const bad[] = {
		"", "INF", "INFOO", " INFO", "INFO ", "WARNINGS", "3", "NOTICE", "TRACE", "crit",
	};
	enum pgkeel_log_level level;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		level = (enum pgkeel_log_level)99;
		assert_true(pgkeel_log_level_parse(good[i].s, &level));
		assert_int_equal(level, good[i].level);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		level = PGKEEL_LOG_DEBUG;
		if (pgkeel_log_level_parse(bad[i], &level))
			fail_msg("accepted bad level \"%s\"", bad[i]);
		assert_int_equal(level, PGKEEL_LOG_DEBUG); /* untouched */
	}
	assert_false(pgkeel_log_level_parse(NULL, &level));

	assert_string_equal(pgkeel_log_level_name(PGKEEL_LOG_FATAL), "CRITICAL");
	assert_string_equal(pgkeel_log_level_name(PGKEEL_LOG_ERROR), "ERROR");
	assert_string_equal(pgkeel_log_level_name(PGKEEL_LOG_WARNING), "WARNING");
	assert_string_equal(pgkeel_log_level_name(PGKEEL_LOG_NOTICE), "INFO");
	assert_string_equal(pgkeel_log_level_name(PGKEEL_LOG_INFO), "INFO");
	assert_string_equal(pgkeel_log_level_name(PGKEEL_LOG_DEBUG), "DEBUG");
}

static void test_defaults(void **state)
{
	struct pgkeel_log_config c;

	(void)state;
	memset(&c, 0x5a, sizeof(c));
	pgkeel_log_config_defaults(&c);
	assert_int_equal(c.level, PGKEEL_LOG_INFO);
	assert_int_equal(c.format, PGKEEL_LOG_PLAIN);
	assert_null(c.dateformat);
	assert_null(c.dir);
	assert_int_equal(c.file_num, 4);
	assert_int_equal(c.file_size, 25000000);
	assert_int_equal(c.max_queue_size, 1000);
	assert_null(c.syslog_facility);
	assert_null(c.ident);
}

static void test_plain_format(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;

	pgkeel_log_config_defaults(&c);
	c.level = PGKEEL_LOG_DEBUG;
	start_in(fx->dir, &c);
	log_info("hello");
	log_fatal("boom %d", 42);
	log_notice("a notice");
	log_warning("careful");
	log_error("bad");
	log_debug("details");
	log_info("line one\nline two");
	pgkeel_log_stop();

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 8);
	assert_true(matches("^" PLAIN_TS_RE " INFO: hello$", l.v[0]));
	assert_true(matches("^" PLAIN_TS_RE " CRITICAL: boom 42$", l.v[1]));
	assert_true(matches("^" PLAIN_TS_RE " INFO: a notice$", l.v[2]));
	assert_true(matches("^" PLAIN_TS_RE " WARNING: careful$", l.v[3]));
	assert_true(matches("^" PLAIN_TS_RE " ERROR: bad$", l.v[4]));
	assert_true(matches("^" PLAIN_TS_RE " DEBUG: details$", l.v[5]));
	/* Multi-line messages stay as they are, as Patroni prints them. */
	assert_true(matches("^" PLAIN_TS_RE " INFO: line one$", l.v[6]));
	assert_string_equal(l.v[7], "line two");
	/* The pattern itself is strict: Python puts a comma before the milliseconds. */
	assert_false(matches("^" PLAIN_TS_RE " INFO: hello$",
			     "2026-11-25 21:04:47.207 INFO: hello"));
	assert_true(matches("^" PLAIN_TS_RE " INFO: hello$",
			    "2026-11-25 21:04:47,207 INFO: hello"));
	lines_free(&l);
}

static void test_file_mode(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct stat st;
	mode_t old = umask(022);

	pgkeel_log_config_defaults(&c);
	start_in(fx->dir, &c);
	pgkeel_log_stop();
	umask(old);
	assert_int_equal(stat(fx->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_dateformat(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;

	pgkeel_log_config_defaults(&c);
	c.dateformat = "%Y/%m/%d@%H";
	start_in(fx->dir, &c);
	log_info("custom");
	pgkeel_log_stop();

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 1);
	assert_true(matches("^[0-9]{4}/[0-9]{2}/[0-9]{2}@[0-9]{2} INFO: custom$", l.v[0]));
	lines_free(&l);
}

static void test_threshold(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;
	int evaluated = 0;

	pgkeel_log_config_defaults(&c);
	c.level = PGKEEL_LOG_WARNING;
	start_in(fx->dir, &c);
	assert_int_equal(pgkeel_log_threshold(), PGKEEL_LOG_WARNING);
	log_debug("debug %d", ++evaluated);
	log_info("info");
	log_notice("notice");
	log_warning("warning");
	log_error("error");
	log_fatal("fatal");
	pgkeel_log_stop();
	/* log_debug tests the threshold before evaluating its arguments. */
	assert_int_equal(evaluated, 0);

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 3);
	assert_true(matches(" WARNING: warning$", l.v[0]));
	assert_true(matches(" ERROR: error$", l.v[1]));
	assert_true(matches(" CRITICAL: fatal$", l.v[2]));
	lines_free(&l);
}

static void test_json_format(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;
	static const char *const expect_msg[] = {
		"hello \"world\"",
		"two\nlines\tand a / slash",
		"failover to pg1",
	};
	static const char *const expect_level[] = { "INFO", "WARNING", "CRITICAL" };
	size_t i;

	pgkeel_log_config_defaults(&c);
	c.format = PGKEEL_LOG_JSON;
	c.ident = "pg0-keeper";
	start_in(fx->dir, &c);
	log_info("%s", expect_msg[0]);
	log_warning("%s", expect_msg[1]);
	log_fatal("%s", expect_msg[2]);
	pgkeel_log_stop();

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 3); /* the newline in a message is escaped */
	for (i = 0; i < l.n; i++) {
		struct json_object *o = json_tokener_parse(l.v[i]);
		struct json_object *v;

		assert_non_null(o);
		assert_true(json_object_is_type(o, json_type_object));
		assert_int_equal(json_object_object_length(o), 4);
		assert_true(json_object_object_get_ex(o, "time", &v));
		assert_true(matches(ISO_TS_RE, json_object_get_string(v)));
		assert_true(json_object_object_get_ex(o, "level", &v));
		assert_string_equal(json_object_get_string(v), expect_level[i]);
		assert_true(json_object_object_get_ex(o, "name", &v));
		assert_string_equal(json_object_get_string(v), "pg0-keeper");
		assert_true(json_object_object_get_ex(o, "message", &v));
		assert_string_equal(json_object_get_string(v), expect_msg[i]);
		json_object_put(o);
	}
	lines_free(&l);
}

static void test_json_default_ident(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;
	struct json_object *o;
	struct json_object *v;

	pgkeel_log_config_defaults(&c);
	c.format = PGKEEL_LOG_JSON;
	start_in(fx->dir, &c);
	log_info("x");
	pgkeel_log_stop();

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 1);
	o = json_tokener_parse(l.v[0]);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "name", &v));
	assert_string_equal(json_object_get_string(v), "pgkeel");
	json_object_put(o);
	lines_free(&l);
}

static void test_rotation(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char path[PATH_MAX];
	struct lines cur;
	struct lines prev;
	long last_prev;
	long first_cur;
	int i;

	pgkeel_log_config_defaults(&c);
	c.file_size = 1000;
	c.file_num = 3;
	start_in(fx->dir, &c);
	/* ~52 bytes per line, 300 lines: about 15 rotations. */
	for (i = 0; i < 300; i++)
		log_info("record %04d padding padding", i);
	pgkeel_log_stop();

	assert_true(file_exists(fx->file));
	assert_true(file_size_of(fx->file) <= 1000);
	for (i = 1; i <= 3; i++) {
		rotated_path(fx, i, path, sizeof(path));
		if (!file_exists(path))
			fail_msg("missing %s", path);
		assert_true(file_size_of(path) <= 1000);
		assert_true(file_size_of(path) > 1000 - 60); /* rotated only when full */
	}
	rotated_path(fx, 4, path, sizeof(path));
	assert_false(file_exists(path));

	/* Newest records in pgkeel.log, the ones just before them in .1. */
	rotated_path(fx, 1, path, sizeof(path));
	assert_true(lines_read(fx->file, &cur));
	assert_true(lines_read(path, &prev));
	assert_true(cur.n > 0 && prev.n > 0);
	assert_true(matches(" INFO: record 0299 padding padding$", cur.v[cur.n - 1]));
	assert_true(sscanf(strstr(prev.v[prev.n - 1], "record "), "record %ld", &last_prev) == 1);
	assert_true(sscanf(strstr(cur.v[0], "record "), "record %ld", &first_cur) == 1);
	assert_int_equal(first_cur, last_prev + 1);
	lines_free(&cur);
	lines_free(&prev);
}

static void test_rotation_file_num_zero(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char path[PATH_MAX];
	int i;

	pgkeel_log_config_defaults(&c);
	c.file_size = 500;
	c.file_num = 0;
	start_in(fx->dir, &c);
	for (i = 0; i < 100; i++)
		log_info("record %04d padding padding", i);
	pgkeel_log_stop();

	assert_true(file_size_of(fx->file) <= 500);
	rotated_path(fx, 1, path, sizeof(path));
	assert_false(file_exists(path));
}

static void test_drop_counting(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;
	int i;

	pgkeel_log_config_defaults(&c);
	c.max_queue_size = 2;
	start_in(fx->dir, &c);
	assert_int_equal(pgkeel_log_dropped(), 0);
	pgkeel_log_test_pause(true);
	for (i = 0; i < 5; i++)
		log_info("r%d", i);
	assert_int_equal(pgkeel_log_dropped(), 3);
	pgkeel_log_test_pause(false);
	pgkeel_log_stop();
	assert_int_equal(pgkeel_log_dropped(), 3);

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 3);
	assert_true(matches("^" PLAIN_TS_RE " INFO: r0$", l.v[0]));
	assert_true(matches("^" PLAIN_TS_RE " INFO: r1$", l.v[1]));
	assert_true(matches("^" PLAIN_TS_RE " WARNING: 3 log records dropped \\(queue full\\)$",
			    l.v[2]));
	lines_free(&l);

	/* The counter is per run. */
	start_in(fx->dir, &c);
	assert_int_equal(pgkeel_log_dropped(), 0);
	pgkeel_log_stop();
}

static void test_stop_drains_paused(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;
	int i;

	pgkeel_log_config_defaults(&c);
	start_in(fx->dir, &c);
	/* Everything is still queued when stop() is called. */
	pgkeel_log_test_pause(true);
	for (i = 0; i < 500; i++)
		log_info("n=%d", i);
	pgkeel_log_stop();
	assert_int_equal(pgkeel_log_dropped(), 0);

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 500);
	for (i = 0; i < 500; i++) {
		char want[32];

		assert_true(snprintf(want, sizeof(want), " INFO: n=%d$", i) < (int)sizeof(want));
		assert_true(matches(want, l.v[i]));
	}
	lines_free(&l);
}

#define PRODUCERS 4
#define PER_PRODUCER 125

static void *producer(void *arg)
{
	int id = (int)(intptr_t)arg;
	int i;

	for (i = 0; i < PER_PRODUCER; i++)
		log_info("t%d-%d", id, i);
	return NULL;
}

static void test_stop_drains_threads(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	pthread_t th[PRODUCERS];
	int next[PRODUCERS];
	struct lines l;
	size_t i;
	int t;

	memset(next, 0, sizeof(next));
	pgkeel_log_config_defaults(&c);
	start_in(fx->dir, &c);
	for (t = 0; t < PRODUCERS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, producer, (void *)(intptr_t)t), 0);
	for (t = 0; t < PRODUCERS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	pgkeel_log_stop();
	assert_int_equal(pgkeel_log_dropped(), 0);

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, PRODUCERS * PER_PRODUCER);
	for (i = 0; i < l.n; i++) {
		const char *m = strstr(l.v[i], " INFO: t");
		int id;
		int n;

		assert_non_null(m);
		assert_int_equal(sscanf(m, " INFO: t%d-%d", &id, &n), 2);
		assert_true(id >= 0 && id < PRODUCERS && n >= 0 && n < PER_PRODUCER);
		/* Each producer's records arrive once each, in its own order. */
		assert_int_equal(n, next[id]);
		next[id]++;
	}
	for (t = 0; t < PRODUCERS; t++)
		assert_int_equal(next[t], PER_PRODUCER);
	lines_free(&l);
}

static void test_reconfigure(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char dir_a[PATH_MAX];
	char dir_b[PATH_MAX];
	char file_a[PATH_MAX];
	char file_b[PATH_MAX];
	char err[512] = "";
	struct lines l;

	assert_true(snprintf(dir_a, sizeof(dir_a), "%s/a", fx->dir) < (int)sizeof(dir_a));
	assert_true(snprintf(dir_b, sizeof(dir_b), "%s/b", fx->dir) < (int)sizeof(dir_b));
	assert_true(snprintf(file_a, sizeof(file_a), "%s/pgkeel.log", dir_a) < (int)sizeof(file_a));
	assert_true(snprintf(file_b, sizeof(file_b), "%s/pgkeel.log", dir_b) < (int)sizeof(file_b));
	assert_int_equal(mkdir(dir_a, 0700), 0);
	assert_int_equal(mkdir(dir_b, 0700), 0);

	pgkeel_log_config_defaults(&c);
	start_in(dir_a, &c);
	/* Queued before the switch: must still land in a. */
	pgkeel_log_test_pause(true);
	log_info("a1");
	log_debug("not yet");

	pgkeel_log_config_defaults(&c);
	c.dir = dir_b;
	c.format = PGKEEL_LOG_JSON;
	c.level = PGKEEL_LOG_DEBUG;
	assert_true(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	assert_int_equal(pgkeel_log_threshold(), PGKEEL_LOG_DEBUG);
	log_debug("b1");
	pgkeel_log_test_pause(false);

	/* Bad configurations leave b in place. */
	c.syslog_facility = "kernel";
	err[0] = '\0';
	assert_false(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "kernel"));
	c.syslog_facility = NULL;
	c.dir = "/nonexistent/pgkeel-test-dir";
	c.level = PGKEEL_LOG_ERROR;
	err[0] = '\0';
	assert_false(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/pgkeel-test-dir/pgkeel.log"));
	assert_int_equal(pgkeel_log_threshold(), PGKEEL_LOG_DEBUG);
	log_info("b2");
	pgkeel_log_stop();

	assert_true(lines_read(file_a, &l));
	assert_int_equal(l.n, 1);
	assert_true(matches("^" PLAIN_TS_RE " INFO: a1$", l.v[0]));
	lines_free(&l);

	assert_true(lines_read(file_b, &l));
	assert_int_equal(l.n, 2);
	assert_non_null(strstr(l.v[0], "\"message\":\"b1\""));
	assert_non_null(strstr(l.v[0], "\"level\":\"DEBUG\""));
	assert_non_null(strstr(l.v[1], "\"message\":\"b2\""));
	lines_free(&l);
}

/* Several reconfigurations while the thread is behind: each record keeps its sink. */
static void test_reconfigure_backlog(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	static const char *const names[] = { "a", "b", "c", "d" };
	char dirs[4][PATH_MAX];
	char files[4][PATH_MAX];
	char err[512] = "";
	struct lines l;
	size_t i;

	for (i = 0; i < 4; i++) {
		assert_true(snprintf(dirs[i], sizeof(dirs[i]), "%s/%s", fx->dir, names[i]) <
			    (int)sizeof(dirs[i]));
		assert_true(snprintf(files[i], sizeof(files[i]), "%s/pgkeel.log", dirs[i]) <
			    (int)sizeof(files[i]));
		assert_int_equal(mkdir(dirs[i], 0700), 0);
	}
	pgkeel_log_config_defaults(&c);
	start_in(dirs[0], &c);
	pgkeel_log_test_pause(true);
	log_info("x1");
	c.dir = dirs[1];
	assert_true(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	log_info("x2");
	c.dir = dirs[2];
	assert_true(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	/* Nothing logged in between: c is superseded before it is ever used. */
	c.dir = dirs[3];
	assert_true(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	log_info("x3");
	log_info("x4");
	pgkeel_log_test_pause(false);
	pgkeel_log_stop();

	assert_true(lines_read(files[0], &l));
	assert_int_equal(l.n, 1);
	assert_true(matches(" INFO: x1$", l.v[0]));
	lines_free(&l);
	assert_true(lines_read(files[1], &l));
	assert_int_equal(l.n, 1);
	assert_true(matches(" INFO: x2$", l.v[0]));
	lines_free(&l);
	assert_true(lines_read(files[2], &l));
	assert_int_equal(l.n, 0);
	lines_free(&l);
	assert_true(lines_read(files[3], &l));
	assert_int_equal(l.n, 2);
	assert_true(matches(" INFO: x3$", l.v[0]));
	assert_true(matches(" INFO: x4$", l.v[1]));
	lines_free(&l);
}

static void test_reconfigure_queue_size(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char err[512] = "";
	struct lines l;
	int i;

	pgkeel_log_config_defaults(&c);
	c.max_queue_size = 8;
	start_in(fx->dir, &c);
	pgkeel_log_test_pause(true);
	for (i = 0; i < 6; i++)
		log_info("q%d", i);
	/* Shrinking below what is queued keeps the queued records... */
	c.max_queue_size = 2;
	assert_true(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	/* ...but admits no more until the queue is below the new limit. */
	log_info("dropped");
	assert_int_equal(pgkeel_log_dropped(), 1);
	pgkeel_log_test_pause(false);
	pgkeel_log_stop();

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 7);
	for (i = 0; i < 6; i++) {
		char want[32];

		assert_true(snprintf(want, sizeof(want), " INFO: q%d$", i) < (int)sizeof(want));
		assert_true(matches(want, l.v[i]));
	}
	assert_true(matches(" WARNING: 1 log records dropped \\(queue full\\)$", l.v[6]));
	lines_free(&l);
}

static void test_start_errors(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char err[512];

	pgkeel_log_config_defaults(&c);
	c.dir = "/nonexistent/pgkeel-test-dir";
	err[0] = '\0';
	assert_false(pgkeel_log_start(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open log file"));
	assert_non_null(strstr(err, "No such file or directory"));

	pgkeel_log_config_defaults(&c);
	c.syslog_facility = "local8";
	err[0] = '\0';
	assert_false(pgkeel_log_start(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "log.syslog:"));
	assert_non_null(strstr(err, "local8"));

	pgkeel_log_config_defaults(&c);
	c.max_queue_size = 0;
	err[0] = '\0';
	assert_false(pgkeel_log_start(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "max_queue_size"));

	pgkeel_log_config_defaults(&c);
	c.file_num = -1;
	err[0] = '\0';
	assert_false(pgkeel_log_start(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "file_num"));

	pgkeel_log_config_defaults(&c);
	c.dir = "";
	err[0] = '\0';
	assert_false(pgkeel_log_start(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "log.dir"));

	/* Not running: reconfigure refuses, stop is a no-op. */
	pgkeel_log_config_defaults(&c);
	assert_false(pgkeel_log_reconfigure(&c, err, sizeof(err)));
	pgkeel_log_stop();

	/* A NULL error buffer is allowed. */
	c.syslog_facility = "bogus";
	assert_false(pgkeel_log_start(&c, NULL, 0));

	/* Twice: the second start fails, the first keeps working. */
	pgkeel_log_config_defaults(&c);
	start_in(fx->dir, &c);
	err[0] = '\0';
	assert_false(pgkeel_log_start(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "already running"));
	log_info("still here");
	pgkeel_log_stop();
	assert_int_equal(file_size_of(fx->file) > 0, 1);
}

static void test_syslog_facilities(void **state)
{
	static const char *const good[] = { "daemon", "user", "local0", "local3", "LOCAL7" };
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char err[512];
	struct lines l;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		pgkeel_log_config_defaults(&c);
		c.syslog_facility = good[i];
		c.ident = "pgkeel-test";
		err[0] = '\0';
		c.dir = fx->dir;
		if (!pgkeel_log_start(&c, err, sizeof(err)))
			fail_msg("facility %s refused: %s", good[i], err);
		log_info("via %s", good[i]);
		pgkeel_log_stop();
	}
	/* syslog is in addition to the file sink. */
	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, sizeof(good) / sizeof(good[0]));
	assert_true(matches(" INFO: via daemon$", l.v[0]));
	lines_free(&l);
}

static void test_sync_stderr(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	char path[PATH_MAX];
	struct lines l;
	int saved;

	assert_true(snprintf(path, sizeof(path), "%s/stderr.txt", fx->dir) < (int)sizeof(path));
	saved = stderr_redirect(path);
	log_info("before start");
	log_debug("hidden"); /* default threshold is INFO */
	pgkeel_log_config_defaults(&c);
	start_in(NULL, &c); /* dir NULL: the thread writes to stderr */
	log_warning("from thread");
	pgkeel_log_stop();
	log_error("after stop");
	stderr_restore(saved);

	assert_true(lines_read(path, &l));
	assert_int_equal(l.n, 3);
	assert_true(matches("^" PLAIN_TS_RE " INFO: before start$", l.v[0]));
	assert_true(matches("^" PLAIN_TS_RE " WARNING: from thread$", l.v[1]));
	assert_true(matches("^" PLAIN_TS_RE " ERROR: after stop$", l.v[2]));
	lines_free(&l);
}

static void test_truncation(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;
	char *big;
	const char *m;
	size_t i;
	size_t len;
	const size_t marker_len = strlen("... [truncated]");

	big = malloc(10001);
	assert_non_null(big);
	/* "a" then two-byte UTF-8 characters: the cut lands inside one of them. */
	big[0] = 'a';
	for (i = 1; i + 1 < 10000; i += 2) {
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9;
	}
	big[i] = '\0';

	pgkeel_log_config_defaults(&c);
	start_in(fx->dir, &c);
	log_info("%s", big);
	log_info("short");
	pgkeel_log_stop();
	free(big);

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 2);
	m = strstr(l.v[0], " INFO: ");
	assert_non_null(m);
	m += strlen(" INFO: ");
	len = strlen(m);
	assert_true(len < 4096);
	assert_true(len > 4000);
	assert_string_equal(m + len - marker_len, "... [truncated]");
	/* Whole characters only: 'a' plus an even number of bytes before the marker. */
	assert_int_equal((len - marker_len - 1) % 2, 0);
	assert_int_equal((unsigned char)m[len - marker_len - 2], 0xc3);
	assert_true(matches(" INFO: short$", l.v[1]));
	lines_free(&l);
}

static void test_errno_preserved(void **state)
{
	struct fixture *fx = *state;
	struct pgkeel_log_config c;
	struct lines l;

	pgkeel_log_config_defaults(&c);
	start_in(fx->dir, &c);
	errno = ENOENT;
	log_error("open failed: %m");
	assert_int_equal(errno, ENOENT);
	errno = EACCES;
	log_debug("filtered: %m");
	assert_int_equal(errno, EACCES);
	pgkeel_log_stop();

	assert_true(lines_read(fx->file, &l));
	assert_int_equal(l.n, 1);
	assert_true(matches(" ERROR: open failed: No such file or directory$", l.v[0]));
	lines_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test_setup_teardown(test_plain_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dateformat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_default_ident, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_file_num_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_counting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_drains_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_drains_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure_queue_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syslog_facilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_stderr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
