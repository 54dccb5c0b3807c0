/*
 * Tests of core/child.c: exit codes, start failures reported by the spawn
 * call, output capture, deadlines, process-group kills reaching
 * grandchildren, the callback slot, the environment scrub, and what a
 * child inherits (checked by tests/tools/child_probe from inside the child).
 *
 * The test process makes itself a child subreaper, so the grandchildren a
 * killed group leaves behind are reparented to it rather than to PID 1
 * (which, in some containers, never reaps).  Every test ends with no child
 * process at all and as many open descriptors as it started with: that is
 * how leaks of zombies, pipes and pidfds are caught.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

#ifndef TEST_BUILDDIR
#error "TEST_BUILDDIR must be defined by the build"
#endif

#define PROBE TEST_BUILDDIR "/tests/tools/child_probe"
/* Slack for "returned by the deadline": scheduling, fork under ASan. */
#define TOLERANCE_MS 400

static int fds_at_setup;

/* ---- helpers ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* The parent pid of pid from /proc/<pid>/stat; 0 when it is gone. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	pid_t ppid = 0;

	assert_true(pgkeel_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid));
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL) {
		int v;

		if (sscanf(p + 1, " %*c %d", &v) == 1)
			ppid = (pid_t)v;
	}
	fclose(f);
	return ppid;
}

/*
 * Reap the orphans reparented to us (we are a subreaper), never the child
 * `keep` a handle still tracks: the module must be the one to reap it.
 */
static void reap_orphans(pid_t keep)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		int64_t pid;

		if (pgkeel_parse_int64(e->d_name, &pid) && (pid_t)pid != keep &&
		    parent_of((pid_t)pid) == getpid())
			(void)waitpid((pid_t)pid, NULL, WNOHANG);
	}
	closedir(d);
}

/* Wait until no process has process group pgid (kill(-pgid, 0) fails with ESRCH). */
static bool group_gone(pid_t pgid, int timeout_ms, pid_t keep)
{
	int64_t deadline = pgkeel_now_monotonic_ms() + timeout_ms;

	for (;;) {
		reap_orphans(keep);
		if (kill(-pgid, 0) == -1 && errno == ESRCH)
			return true;
		if (pgkeel_now_monotonic_ms() >= deadline)
			return false;
		usleep(10000);
	}
}

/* Alive: exists and is neither a zombie nor dead (/proc/<pid>/stat state). */
static bool process_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool alive = false;

	assert_true(pgkeel_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid));
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL)
		alive = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X' && p[2] != 'x';
	fclose(f);
	return alive;
}

static bool dies_within(pid_t pid, int timeout_ms)
{
	int64_t deadline = pgkeel_now_monotonic_ms() + timeout_ms;

	while (process_alive(pid)) {
		if (pgkeel_now_monotonic_ms() >= deadline)
			return false;
		usleep(10000);
	}
	return true;
}

static int setup(void **state)
{
	(void)state;
	fds_at_setup = count_fds();
	return 0;
}

/* No child left (neither tracked nor orphaned) and no descriptor leaked. */
static int teardown(void **state)
{
	(void)state;
	assert_int_equal(pgkeel_child_reap_abandoned(), 0);
	reap_orphans(0);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(count_fds(), fds_at_setup);
	return 0;
}

static int run_status(const char *const *argv)
{
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	char err[256];
	int code;

	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	assert_int_equal(pgkeel_child_wait(&c, pgkeel_now_monotonic_ms() + 5000),
	                 PGKEEL_CHILD_EXITED);
	code = pgkeel_child_exit_code(&c);
	pgkeel_child_free(&c);
	return code;
}

/* Read one line from a non-blocking pipe within timeout_ms. */
static bool read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	int64_t deadline = pgkeel_now_monotonic_ms() + timeout_ms;
	size_t got = 0;

	while (got + 1 < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 100) == -1 && errno != EINTR)
			return false;
		n = read(fd, buf + got, 1);
		if (n == 1) {
			if (buf[got] == '\n') {
				buf[got] = '\0';
				return true;
			}
			got++;
			continue;
		}
		if (n == 0 || pgkeel_now_monotonic_ms() >= deadline)
			return false;
	}
	return false;
}

/* The value after "key " on its own line in text, copied into buf. */
static bool field(const char *text, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t ll = eol != NULL ? (size_t)(eol - p) : strlen(p);

		if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			if (ll - kl - 1 >= len)
				return false;
			memcpy(buf, p + kl + 1, ll - kl - 1);
			buf[ll - kl - 1] = '\0';
			return true;
		}
		p = eol != NULL ? eol + 1 : NULL;
	}
	return false;
}

static bool has_line(const char *text, const char *line)
{
	size_t l = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && (p[l] == '\n' || p[l] == '\0'))
			return true;
		p += l;
	}
	return false;
}

/* ---- exit codes and start failures ---- */

static void test_exit_codes(void **state)
{
	static const char *const t[] = {"/bin/true", NULL};
	static const char *const f[] = {"/bin/false", NULL};
	static const char *const by_path[] = {"false", NULL};
	static const char *const seven[] = {"/bin/sh", "-c", "exit 7", NULL};

	(void)state;
	assert_int_equal(run_status(t), 0);
	assert_int_equal(run_status(f), 1);
	assert_int_equal(run_status(by_path), 1);
	assert_int_equal(run_status(seven), 7);
}

static void test_killed_status(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	char err[256], desc[64];

	(void)state;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	assert_int_equal(pgkeel_child_wait(&c, pgkeel_now_monotonic_ms() + 5000),
	                 PGKEEL_CHILD_EXITED);
	assert_int_equal(pgkeel_child_exit_code(&c), -1);
	assert_false(pgkeel_child_succeeded(&c));
	pgkeel_child_describe(c.wstatus, desc, sizeof(desc));
	assert_string_equal(desc, "killed by signal 9 (SIGKILL)");
	pgkeel_child_describe(0x100 * 3, desc, sizeof(desc));
	assert_string_equal(desc, "exited with code 3");
	pgkeel_child_describe(-1, desc, sizeof(desc));
	assert_string_equal(desc, "exit status unknown");
	/* Reaped exactly once: the pid is no longer ours, and signalling refuses. */
	assert_int_equal(waitpid(c.pid, NULL, WNOHANG), -1);
	assert_false(pgkeel_child_signal(&c, SIGTERM));
	assert_int_equal(errno, ESRCH);
	pgkeel_child_free(&c);
}

static void expect_spawn_error(const struct pgkeel_child_spec *spec, int want_errno,
                               const char *want_text)
{
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	char err[512] = "";

	errno = 0;
	assert_false(pgkeel_child_spawn(spec, &c, err, sizeof(err)));
	assert_int_equal(errno, want_errno);
	if (strstr(err, want_text) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want_text);
	assert_int_equal(c.pid, 0);
	assert_int_equal(c.pidfd, -1);
	/* The failed child was reaped by the spawn call itself. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_start_failures(void **state)
{
	static const char *const missing[] = {"/nonexistent/pgkeel-no-such-program", NULL};
	static const char *const missing_path[] = {"pgkeel-no-such-program", NULL};
	static const char *const t[] = {"/bin/true", NULL};
	static const char *const bad_env[] = {"=x", NULL};
	struct pgkeel_child_spec spec = {.argv = missing};
	char plain[] = "/tmp/pgkeel-child-plain-XXXXXX", want[128];
	const char *not_exec[] = {plain, NULL};
	int fd;

	(void)state;
	/* A file without execute permission (even root needs one x bit). */
	fd = mkstemp(plain);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);

	expect_spawn_error(&spec, ENOENT,
	                   "cannot start pgkeel-no-such-program: exec "
	                   "/nonexistent/pgkeel-no-such-program: No such file or directory");
	spec.argv = missing_path;
	expect_spawn_error(&spec, ENOENT, "pgkeel-no-such-program not found in PATH");
	spec.argv = not_exec;
	assert_true(pgkeel_fmt(want, sizeof(want), "exec %s: Permission denied", plain));
	expect_spawn_error(&spec, EACCES, want);
	assert_int_equal(unlink(plain), 0);

	spec.argv = t;
	spec.cwd = "/nonexistent-dir";
	expect_spawn_error(&spec, ENOENT, "chdir /nonexistent-dir: No such file or directory");
	spec.cwd = NULL;
	spec.out.mode = PGKEEL_CHILD_OUT_FILE;
	spec.out.path = "/nonexistent-dir/log";
	expect_spawn_error(&spec, ENOENT, "open /nonexistent-dir/log for stdout");
	spec.out.mode = PGKEEL_CHILD_OUT_STDOUT;
	expect_spawn_error(&spec, EINVAL, "bad stdout/stderr redirection");
	spec.out.mode = PGKEEL_CHILD_OUT_NULL;
	spec.env = bad_env;
	expect_spawn_error(&spec, EINVAL, "bad environment override");
}

/* ---- capture ---- */

static void test_capture(void **state)
{
	static const char *const echo[] = {"echo", "hello", "world", NULL};
	static const char *const both[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	static const char *const big[] = {"/bin/sh", "-c", "yes 0123456789 | head -c 200000", NULL};
	static const char *const missing[] = {"/nonexistent/x", NULL};
	struct pgkeel_child_spec spec = {.argv = echo};
	struct pgkeel_child_output out;
	char err[256];
	int64_t deadline = pgkeel_now_monotonic_ms() + 5000;

	(void)state;
	assert_int_equal(pgkeel_child_capture(&spec, deadline, 4096, &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_string_equal(out.data, "hello world\n");
	assert_int_equal(out.len, 12);
	assert_false(out.truncated);
	assert_int_equal(out.wstatus, 0);
	pgkeel_child_output_free(&out);

	/* stderr stays out unless merged. */
	spec.argv = both;
	assert_int_equal(pgkeel_child_capture(&spec, deadline, 4096, &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_string_equal(out.data, "out\n");
	assert_true(WIFEXITED(out.wstatus) && WEXITSTATUS(out.wstatus) == 3);
	pgkeel_child_output_free(&out);
	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	assert_int_equal(pgkeel_child_capture(&spec, deadline, 4096, &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_string_equal(out.data, "out\nerr\n");
	pgkeel_child_output_free(&out);

	/* Bounded: the rest is read (the writer never blocks) and dropped. */
	spec.argv = big;
	spec.err.mode = PGKEEL_CHILD_OUT_NULL;
	assert_int_equal(pgkeel_child_capture(&spec, deadline, 100, &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_int_equal(out.len, 100);
	assert_int_equal(strlen(out.data), 100);
	assert_true(out.truncated);
	assert_int_equal(out.wstatus, 0);
	assert_memory_equal(out.data, "0123456789\n0123456789\n", 22);
	pgkeel_child_output_free(&out);

	spec.argv = missing;
	assert_int_equal(pgkeel_child_capture(&spec, deadline, 100, &out, err, sizeof(err)),
	                 PGKEEL_CHILD_FAILED);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "No such file or directory"));
	pgkeel_child_output_free(&out);
}

/* A command that outlives its deadline is killed; the call returns by the deadline. */
static void test_capture_deadline(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "sleep 30 & echo $$; sleep 30", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child_output out;
	int64_t start = pgkeel_now_monotonic_ms(), took, pgid;
	char err[256];

	(void)state;
	assert_int_equal(pgkeel_child_capture(&spec, start + 300, 4096, &out, err, sizeof(err)),
	                 PGKEEL_CHILD_TIMEOUT);
	took = pgkeel_now_monotonic_ms() - start;
	assert_true(took >= 300);
	if (took > 300 + TOLERANCE_MS)
		fail_msg("capture returned %lld ms after start, deadline was 300 ms",
		         (long long)took);
	assert_true(WIFSIGNALED(out.wstatus) && WTERMSIG(out.wstatus) == SIGKILL);
	/* The output so far is kept; the background sleep died with its group. */
	assert_true(out.len > 1 && out.data[out.len - 1] == '\n');
	out.data[out.len - 1] = '\0';
	assert_true(pgkeel_parse_int64(out.data, &pgid));
	assert_true(group_gone((pid_t)pgid, 5000, 0));
	pgkeel_child_output_free(&out);
}

static void test_wait_deadline(void **state)
{
	static const char *const argv[] = {"sleep", "30", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	int64_t start, took;
	char err[256];

	(void)state;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	assert_true(c.pidfd >= 0);
	assert_int_equal(pgkeel_child_poll(&c), PGKEEL_CHILD_RUNNING);
	start = pgkeel_now_monotonic_ms();
	assert_int_equal(pgkeel_child_wait(&c, start + 200), PGKEEL_CHILD_RUNNING);
	took = pgkeel_now_monotonic_ms() - start;
	assert_true(took >= 200 && took <= 200 + TOLERANCE_MS);
	/* A deadline in the past does not block at all. */
	assert_int_equal(pgkeel_child_wait(&c, 0), PGKEEL_CHILD_RUNNING);
	assert_int_equal(pgkeel_child_stop(&c, SIGTERM, pgkeel_now_monotonic_ms() + 5000),
	                 PGKEEL_CHILD_STOPPED);
	assert_true(c.reaped);
	assert_true(WIFSIGNALED(c.wstatus) && WTERMSIG(c.wstatus) == SIGTERM);
	pgkeel_child_free(&c);
}

/* The pidfd becomes readable at exit, so the HA loop can poll it with its other fds. */
static void test_pidfd(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "read x; exit 4", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	struct pollfd p;
	char err[256];
	int in[2], saved_stdin = fcntl(0, F_DUPFD_CLOEXEC, 3);

	(void)state;
	/*
	 * Our stdin becomes a pipe nobody writes to: a child inheriting it would
	 * block in `read`.  Its stdin must be /dev/null, where `read` sees EOF.
	 */
	assert_int_equal(pipe(in), 0);
	assert_int_equal(dup2(in[0], 0), 0);
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	p.fd = c.pidfd;
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(pgkeel_child_poll(&c), PGKEEL_CHILD_EXITED);
	assert_int_equal(pgkeel_child_exit_code(&c), 4);
	/* Polling again does not wait again. */
	assert_int_equal(pgkeel_child_poll(&c), PGKEEL_CHILD_EXITED);
	assert_int_equal(pgkeel_child_exit_code(&c), 4);
	pgkeel_child_free(&c);
	if (saved_stdin >= 0) {
		assert_int_equal(dup2(saved_stdin, 0), 0);
		close(saved_stdin);
	} else {
		close(0);
	}
	close(in[0]);
	close(in[1]);
}

/* ---- process groups ---- */

static void test_group_kill(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!; sleep 30", NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .out.mode = PGKEEL_CHILD_OUT_PIPE};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	char err[256], line[32];
	pid_t pgid, grandchild;
	int64_t v;

	(void)state;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	pgid = c.pid;
	assert_int_equal(getpgid(c.pid), c.pid);
	assert_int_equal(getsid(c.pid), c.pid);
	assert_true(read_line(c.out_fd, line, sizeof(line), 5000));
	assert_true(pgkeel_parse_int64(line, &v));
	grandchild = (pid_t)v;
	assert_int_equal(getpgid(grandchild), pgid);
	assert_int_equal(kill(-pgid, 0), 0);

	/* A signal to the group reaches the background sleep, not only sh. */
	assert_true(pgkeel_child_signal(&c, SIGTERM));
	assert_true(dies_within(grandchild, 5000));
	assert_int_equal(pgkeel_child_stop(&c, SIGTERM, pgkeel_now_monotonic_ms() + 5000),
	                 PGKEEL_CHILD_STOPPED);
	assert_true(c.reaped);
	pgkeel_child_free(&c);
	assert_true(group_gone(pgid, 5000, 0));
	assert_int_equal(kill(grandchild, 0), -1);
	assert_int_equal(errno, ESRCH);
}

/*
 * The leader obeys SIGTERM, a member ignores it: stop kills the member too.
 * The member prints its pid only once it ignores SIGTERM.
 */
static void test_stop_sweeps_group(void **state)
{
	static const char *const argv[] = {
	    "/bin/sh", "-c", "sh -c 'trap \"\" TERM; echo $$; exec sleep 30' & exec sleep 30",
	    NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .out.mode = PGKEEL_CHILD_OUT_PIPE};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	char err[256], line[32];
	pid_t pgid, member;
	int64_t v;

	(void)state;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	pgid = c.pid;
	assert_true(read_line(c.out_fd, line, sizeof(line), 5000));
	assert_true(pgkeel_parse_int64(line, &v));
	member = (pid_t)v;
	assert_int_equal(pgkeel_child_stop(&c, SIGTERM, pgkeel_now_monotonic_ms() + 5000),
	                 PGKEEL_CHILD_STOPPED);
	assert_true(WIFSIGNALED(c.wstatus) && WTERMSIG(c.wstatus) == SIGTERM);
	assert_true(dies_within(member, 1000));
	pgkeel_child_free(&c);
	assert_true(group_gone(pgid, 5000, 0));
}

/* SIGTERM ignored by the whole group: SIGKILL at the deadline. */
static void test_stop_escalates(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c",
	                                   "trap '' TERM; sleep 30 & echo ready; sleep 30", NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .out.mode = PGKEEL_CHILD_OUT_PIPE};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	int64_t start, took;
	char err[256], line[32];
	pid_t pgid;

	(void)state;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	pgid = c.pid;
	assert_true(read_line(c.out_fd, line, sizeof(line), 5000));
	start = pgkeel_now_monotonic_ms();
	assert_int_equal(pgkeel_child_stop(&c, SIGTERM, start + 300), PGKEEL_CHILD_KILLED);
	took = pgkeel_now_monotonic_ms() - start;
	assert_true(took >= 300);
	if (took > 300 + TOLERANCE_MS)
		fail_msg("stop returned after %lld ms, deadline 300 ms", (long long)took);
	assert_true(WIFSIGNALED(c.wstatus) && WTERMSIG(c.wstatus) == SIGKILL);
	pgkeel_child_free(&c);
	assert_true(group_gone(pgid, 5000, 0));
}

/* Freeing a running child kills its group; signalling works before that. */
static void test_free_kills(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	struct pgkeel_child empty = PGKEEL_CHILD_INIT;
	char err[256];
	pid_t pgid;

	(void)state;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	pgid = c.pid;
	/* A handle in use is refused. */
	assert_false(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_true(pgkeel_child_signal(&c, 0));
	assert_true(pgkeel_child_signal(&c, SIGSTOP));
	assert_true(pgkeel_child_signal(&c, SIGCONT));
	pgkeel_child_free(&c);
	assert_int_equal(c.pid, 0);
	assert_int_equal(c.pidfd, -1);
	assert_true(group_gone(pgid, 5000, 0));
	/* An empty handle is accepted everywhere. */
	assert_int_equal(pgkeel_child_poll(&empty), PGKEEL_CHILD_EXITED);
	assert_int_equal(pgkeel_child_wait(&empty, 0), PGKEEL_CHILD_EXITED);
	assert_int_equal(pgkeel_child_stop(&empty, SIGTERM, 0), PGKEEL_CHILD_STOPPED);
	assert_false(pgkeel_child_signal(&empty, SIGTERM));
	pgkeel_child_free(&empty);
	pgkeel_child_free(NULL);
}

/* ---- slots ---- */

static void test_slot(void **state)
{
	static const char *const first[] = {"/bin/sh", "-c", "sleep 30 & echo $!; sleep 30", NULL};
	static const char *const second[] = {"sleep", "30", NULL};
	static const char *const quick[] = {"/bin/true", NULL};
	struct pgkeel_child_spec spec = {.argv = first, .out.mode = PGKEEL_CHILD_OUT_PIPE};
	struct pgkeel_child_slot slot;
	int64_t deadline, v;
	char err[256], line[32];
	pid_t pid1, pid2, grandchild;

	(void)state;
	pgkeel_child_slot_init(&slot);
	assert_false(pgkeel_child_slot_busy(&slot));
	assert_true(pgkeel_child_slot_start(&slot, &spec, err, sizeof(err)));
	pid1 = slot.child.pid;
	assert_true(read_line(slot.child.out_fd, line, sizeof(line), 5000));
	assert_true(pgkeel_parse_int64(line, &v));
	grandchild = (pid_t)v;
	assert_true(pgkeel_child_slot_busy(&slot));

	spec.argv = second;
	spec.out.mode = PGKEEL_CHILD_OUT_NULL;
	assert_true(pgkeel_child_slot_start(&slot, &spec, err, sizeof(err)));
	pid2 = slot.child.pid;
	assert_int_not_equal(pid1, pid2);
	assert_int_equal(slot.replaced, 1);
	/* The first command and the child it forked are gone; the second runs. */
	assert_true(group_gone(pid1, 5000, slot.child.pid));
	assert_int_equal(kill(grandchild, 0), -1);
	assert_true(pgkeel_child_slot_busy(&slot));
	assert_int_equal(kill(pid2, 0), 0);

	spec.argv = quick;
	assert_true(pgkeel_child_slot_start(&slot, &spec, err, sizeof(err)));
	assert_int_equal(slot.replaced, 2);
	assert_true(group_gone(pid2, 5000, slot.child.pid));
	deadline = pgkeel_now_monotonic_ms() + 5000;
	while (pgkeel_child_slot_busy(&slot) && pgkeel_now_monotonic_ms() < deadline)
		usleep(5000);
	assert_false(pgkeel_child_slot_busy(&slot));
	assert_true(pgkeel_child_succeeded(&slot.child));

	/* A command that finished is not counted as replaced. */
	assert_true(pgkeel_child_slot_start(&slot, &spec, err, sizeof(err)));
	assert_int_equal(slot.replaced, 2);
	pgkeel_child_slot_free(&slot);
	assert_int_equal(slot.child.pid, 0);
}

/* ---- environment ---- */

static void test_env_scrub(void **state)
{
	static const char *const argv[] = {"env", NULL};
	static const char *const overrides[] = {"LANG=C",          "OVERRIDE_ME=first",
	                                        "REMOVE_ME",       "PGPASSFILE=/tmp/pgpass",
	                                        "OVERRIDE_ME=new", NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .env = overrides};
	struct pgkeel_child_output out;
	char err[256];

	(void)state;
	assert_int_equal(setenv("PATRONI_X", "secret-x", 1), 0);
	assert_int_equal(setenv("PATRONI_ETCD3_PASSWORD", "secret-p", 1), 0);
	assert_int_equal(setenv("PGKEEL_Y", "secret-y", 1), 0);
	assert_int_equal(setenv("KEEP_ME", "1", 1), 0);
	assert_int_equal(setenv("OVERRIDE_ME", "old", 1), 0);
	assert_int_equal(setenv("REMOVE_ME", "1", 1), 0);
	assert_int_equal(setenv("LANG", "de_DE.UTF-8", 1), 0);
	assert_int_equal(pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 5000, 1 << 16,
	                                      &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_null(strstr(out.data, "secret"));
	assert_null(strstr(out.data, "PATRONI_"));
	assert_null(strstr(out.data, "PGKEEL_"));
	assert_null(strstr(out.data, "REMOVE_ME"));
	assert_true(has_line(out.data, "KEEP_ME=1"));
	assert_true(has_line(out.data, "OVERRIDE_ME=new"));
	assert_null(strstr(out.data, "OVERRIDE_ME=old"));
	assert_null(strstr(out.data, "OVERRIDE_ME=first"));
	assert_true(has_line(out.data, "LANG=C"));
	assert_true(has_line(out.data, "PGPASSFILE=/tmp/pgpass"));
	pgkeel_child_output_free(&out);
	/* The daemon's own environment is untouched. */
	assert_string_equal(getenv("PATRONI_X"), "secret-x");
	unsetenv("PATRONI_X");
	unsetenv("PATRONI_ETCD3_PASSWORD");
	unsetenv("PGKEEL_Y");
	unsetenv("KEEP_ME");
	unsetenv("OVERRIDE_ME");
	unsetenv("REMOVE_ME");
	unsetenv("LANG");
}

/* PATH is looked up in the child's environment, overrides included. */
static void test_path_override(void **state)
{
	static const char *const argv[] = {"child_probe", "report", NULL};
	static const char *const env[] = {"PATH=/nonexistent:" TEST_BUILDDIR "/tests/tools", NULL};
	struct pgkeel_child_spec spec = {.argv = argv, .env = env};
	struct pgkeel_child_output out;
	char err[256];

	(void)state;
	assert_int_equal(pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 5000, 1 << 16,
	                                      &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_int_equal(out.wstatus, 0);
	assert_non_null(strstr(out.data, "\nSigBlk:"));
	pgkeel_child_output_free(&out);
}

/* ---- what a child inherits ---- */

/* fd 1 and 2 as expected (NULL: fd 1 anything, fd 2 /dev/null), nothing else inherited. */
static void check_report(const char *report, const char *want_fd1, const char *want_fd2)
{
	char pid[32], sid[32], pgid[32], v[PATH_MAX];
	const char *p;
	int nfd = 0;

	assert_true(field(report, "pid", pid, sizeof(pid)));
	assert_true(field(report, "sid", sid, sizeof(sid)));
	assert_true(field(report, "pgid", pgid, sizeof(pgid)));
	assert_string_equal(sid, pid);
	assert_string_equal(pgid, pid);
	for (p = report; (p = strstr(p, "\nfd ")) != NULL; p++) {
		if (strncmp(p, "\nfd 0 ", 6) != 0 && strncmp(p, "\nfd 1 ", 6) != 0 &&
		    strncmp(p, "\nfd 2 ", 6) != 0)
			fail_msg("the child inherited a descriptor: %.60s", p + 1);
		nfd++;
	}
	assert_int_equal(nfd, 3);
	assert_true(field(report, "fd 0", v, sizeof(v)));
	assert_string_equal(v, "/dev/null");
	assert_true(field(report, "fd 2", v, sizeof(v)));
	assert_string_equal(v, want_fd2 != NULL ? want_fd2 : "/dev/null");
	assert_true(field(report, "fd 1", v, sizeof(v)));
	if (want_fd1 != NULL)
		assert_string_equal(v, want_fd1);
	assert_true(has_line(report, "SigBlk:\t0000000000000000"));
	assert_true(has_line(report, "SigIgn:\t0000000000000000"));
}

static bool self_status_nonzero(const char *key)
{
	char line[256];
	bool nonzero = false;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, strlen(key)) == 0)
			nonzero = strspn(line + strlen(key), "\t0\n") != strlen(line + strlen(key));
	}
	fclose(f);
	return nonzero;
}

/*
 * The kernel call, as glibc refuses signals 32 and 33.  The kernel's struct
 * sigaction starts with the handler except on MIPS; zeros are no flags and
 * an empty mask.
 */
static void set_raw_disposition(int sig, void (*handler)(int))
{
#if !defined(__mips__)
	unsigned long ksa[16] = {(unsigned long)handler};

	assert_int_equal(syscall(SYS_rt_sigaction, sig, ksa, NULL, (size_t)((NSIG - 1) / 8)), 0);
#else
	(void)sig;
	(void)handler;
#endif
}

static void test_inheritance(void **state)
{
	static const char *const argv[] = {PROBE, "report", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child_output out;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_pipe;
	sigset_t block, old_mask;
	char err[256], dir[] = "/tmp/pgkeel-child-XXXXXX", file[PATH_MAX], cwd[PATH_MAX + 8];
	int sock, filefd, efd, pfd[2], i;

	(void)state;
	/* Descriptors pgkeel or a library might open without O_CLOEXEC. */
	sock = socket(AF_INET, SOCK_STREAM, 0);
	filefd = open("/etc/hostname", O_RDONLY);
	efd = eventfd(0, 0);
	assert_int_equal(pipe(pfd), 0);
	assert_true(sock > 2 && filefd > 2 && efd > 2);
	assert_int_equal(fcntl(sock, F_GETFD) & FD_CLOEXEC, 0);
	/* The daemon's signal set-up. */
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
	sigemptyset(&ign.sa_mask);
	assert_int_equal(sigaction(SIGINT, &ign, &old_int), 0);
	assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
	/* glibc's own signals, which its sigaction() refuses to touch (GNU make ignores them). */
	set_raw_disposition(32, SIG_IGN);
	set_raw_disposition(33, SIG_IGN);
	/* So that the test can fail: the parent really has all that. */
	assert_true(self_status_nonzero("SigBlk:"));
	assert_true(self_status_nonzero("SigIgn:"));

	assert_int_equal(pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 5000, 1 << 16,
	                                      &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_int_equal(out.wstatus, 0);
	check_report(out.data, NULL, NULL);
	pgkeel_child_output_free(&out);

	/* The same with a working directory and stdout appended to a file. */
	assert_non_null(mkdtemp(dir));
	assert_true(pgkeel_fmt(file, sizeof(file), "%s/out.log", dir));
	spec.cwd = dir;
	spec.out.mode = PGKEEL_CHILD_OUT_FILE;
	spec.out.path = "out.log"; /* relative to the child's working directory */
	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	for (i = 0; i < 2; i++) {
		struct pgkeel_child c = PGKEEL_CHILD_INIT;

		assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
		assert_int_equal(pgkeel_child_wait(&c, pgkeel_now_monotonic_ms() + 5000),
		                 PGKEEL_CHILD_EXITED);
		assert_true(pgkeel_child_succeeded(&c));
		pgkeel_child_free(&c);
	}
	{
		FILE *f = fopen(file, "r");
		char *text = pgkeel_xcalloc(1, 1 << 16), *second;
		size_t n;
		struct stat st;

		assert_non_null(f);
		n = fread(text, 1, (1 << 16) - 1, f);
		fclose(f);
		assert_true(n > 0);
		/* Appended: two reports, each with its own fds and the file as fd 1 and 2. */
		second = strstr(text + 1, "pid ");
		assert_non_null(second);
		second[-1] = '\0';
		assert_true(pgkeel_fmt(cwd, sizeof(cwd), "cwd %s", dir));
		assert_true(has_line(text, cwd));
		assert_true(has_line(second, cwd));
		check_report(second, file, file);
		assert_int_equal(stat(file, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		free(text);
	}
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(dir), 0);

	assert_int_equal(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
	assert_int_equal(sigaction(SIGINT, &old_int, NULL), 0);
	assert_int_equal(sigaction(SIGPIPE, &old_pipe, NULL), 0);
	set_raw_disposition(32, SIG_DFL);
	set_raw_disposition(33, SIG_DFL);
	close(sock);
	close(filefd);
	close(efd);
	close(pfd[0]);
	close(pfd[1]);
}

/* Output to a descriptor the caller owns, and to a caller's pipe read by hand. */
static void test_out_fd(void **state)
{
	static const char *const argv[] = {"/bin/sh", "-c", "echo to-fd; echo err >&2", NULL};
	struct pgkeel_child_spec spec = {.argv = argv};
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	char err[256], line[64];
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	spec.out.mode = PGKEEL_CHILD_OUT_FD;
	spec.out.fd = p[1];
	spec.err.mode = PGKEEL_CHILD_OUT_PIPE;
	assert_true(pgkeel_child_spawn(&spec, &c, err, sizeof(err)));
	assert_int_equal(c.out_fd, -1);
	assert_true(c.err_fd >= 0);
	assert_true(read_line(p[0], line, sizeof(line), 5000));
	assert_string_equal(line, "to-fd");
	assert_true(read_line(c.err_fd, line, sizeof(line), 5000));
	assert_string_equal(line, "err");
	assert_int_equal(pgkeel_child_wait(&c, pgkeel_now_monotonic_ms() + 5000),
	                 PGKEEL_CHILD_EXITED);
	assert_true(pgkeel_child_succeeded(&c));
	pgkeel_child_free(&c);
	/* The caller's descriptor stays open. */
	assert_true(fcntl(p[1], F_GETFD) != -1);
	close(p[0]);
	close(p[1]);
}

/* Our own credentials need no privilege: the switch is skipped, not refused. */
static void test_same_user(void **state)
{
	static const char *const argv[] = {PROBE, "report", NULL};
	struct pgkeel_child_user self = {.uid = getuid(), .gid = getgid(), .ngroups = 0};
	struct pgkeel_child_spec spec = {.argv = argv, .user = &self};
	struct pgkeel_child_output out;
	char err[256], v[64], want[64];

	(void)state;
	assert_false(pgkeel_child_user_lookup("pgkeel-no-such-user", &self, err, sizeof(err)));
	assert_string_equal(err, "no such user: pgkeel-no-such-user");
	self.uid = getuid();
	self.gid = getgid();
	assert_int_equal(pgkeel_child_capture(&spec, pgkeel_now_monotonic_ms() + 5000, 1 << 16,
	                                      &out, err, sizeof(err)),
	                 PGKEEL_CHILD_OK);
	assert_true(field(out.data, "uid", v, sizeof(v)));
	assert_true(pgkeel_fmt(want, sizeof(want), "%u", (unsigned)getuid()));
	assert_string_equal(v, want);
	pgkeel_child_output_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_killed_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capture, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_capture_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wait_deadline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pidfd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_kill, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_sweeps_group, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_escalates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_kills, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_env_scrub, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path_override, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inheritance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_out_fd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_same_user, setup, teardown),
	};

	/* Orphaned grandchildren come to us, not to a PID 1 that may never reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		perror("prctl(PR_SET_CHILD_SUBREAPER)");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
