/*
 * Child processes: spawn with a clean inheritance, track, signal the
 * process group, stop with escalation, capture output.  See child.h.
 *
 * fork() + execve() rather than posix_spawn(): glibc's posix_spawn cannot
 * switch credentials.  Everything the child needs (argv, the environment,
 * the PATH candidates) is prepared before fork(); after it the child only
 * makes async-signal-safe calls, because other threads (the logger, a
 * backend's watch thread) may hold locks at the moment of the fork.
 */
#include "autoconf.h"

#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Poll interval when the kernel offers no pidfd (before Linux 5.3). */
#define NO_PIDFD_TICK_MS 10
/* Descriptors scanned when close_range() is unavailable, at most. */
#define FALLBACK_MAX_FD 65536

/* The step of the child's set-up that failed, sent to the parent. */
enum setup_step {
	STEP_SETSID = 1,
	STEP_FD,
	STEP_SETGROUPS,
	STEP_SETGID,
	STEP_SETUID,
	STEP_CHDIR,
	STEP_DEVNULL,
	STEP_OUT_FILE,
	STEP_ERR_FILE,
	STEP_EXEC,
};

/* Written by the child into the report pipe when it cannot exec. */
struct setup_report {
	int step;
	int err;
	int candidate; /* STEP_EXEC: index into launch.candidates */
};

/* Everything the child needs, prepared before fork(). */
struct launch {
	char *const *argv;
	char **envp;
	char **candidates;
	size_t ncandidates;
	const char *cwd;
	const struct pgkeel_child_out *out;
	const struct pgkeel_child_out *err;
	int out_pipe;                         /* write end for PGKEEL_CHILD_OUT_PIPE, else -1 */
	int err_pipe;                         /* same for stderr */
	const struct pgkeel_child_user *user; /* NULL: keep the credentials */
	int report;                           /* write end of the report pipe */
	int max_fd;                           /* for the close_range() fallback */
};

/* Children that survived SIGKILL for the grace period; reaped later. */
#define MAX_ABANDONED 64
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t abandoned[MAX_ABANDONED];
static size_t nabandoned;

/* ---- small helpers ---- */

/* Format an error; a message too long for the buffer ends in "...". */
static void set_err(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	bool fit;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	fit = pgkeel_vfmt(err, errlen, fmt, ap);
	va_end(ap);
	if (!fit && errlen > 4)
		memcpy(err + errlen - 4, "...", 4);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	/* A pidfd is always close-on-exec. */
	long fd = syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0)
		return (int)fd;
#endif
	(void)pid;
	return -1;
}

static int ms_until(int64_t deadline_ms)
{
	int64_t left = deadline_ms - pgkeel_now_monotonic_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void abandon(struct pgkeel_child *c)
{
	pthread_mutex_lock(&abandoned_lock);
	if (nabandoned < MAX_ABANDONED) {
		abandoned[nabandoned++] = c->pid;
		log_warning("%s (pid %d) survived SIGKILL; it will be reaped when it dies", c->name,
		            (int)c->pid);
	} else {
		log_error("%s (pid %d) survived SIGKILL and too many others did: it will stay a "
		          "zombie",
		          c->name, (int)c->pid);
	}
	pthread_mutex_unlock(&abandoned_lock);
}

size_t pgkeel_child_reap_abandoned(void)
{
	size_t i = 0, left;

	pthread_mutex_lock(&abandoned_lock);
	while (i < nabandoned) {
		pid_t r = waitpid(abandoned[i], NULL, WNOHANG);

		if (r == abandoned[i] || (r == -1 && errno == ECHILD))
			abandoned[i] = abandoned[--nabandoned];
		else
			i++;
	}
	left = nabandoned;
	pthread_mutex_unlock(&abandoned_lock);
	return left;
}

/* ---- credentials ---- */

bool pgkeel_child_user_lookup(const char *name, struct pgkeel_child_user *out, char *err,
                              size_t errlen)
{
	struct passwd pw, *res = NULL;
	size_t buflen = 16384;
	char *buf = NULL;
	int rc, n;

	memset(out, 0, sizeof(*out));
	for (;;) {
		char *nbuf = realloc(buf, buflen);

		if (nbuf == NULL)
			pgkeel_oom();
		buf = nbuf;
		rc = getpwnam_r(name, &pw, buf, buflen, &res);
		if (rc != ERANGE || buflen >= (size_t)1 << 20)
			break;
		buflen *= 2;
	}
	if (res == NULL) {
		if (rc == 0)
			set_err(err, errlen, "no such user: %s", name);
		else
			set_err(err, errlen, "looking up user %s: %s", name, strerror(rc));
		free(buf);
		return false;
	}
	out->uid = pw.pw_uid;
	out->gid = pw.pw_gid;
	n = PGKEEL_CHILD_MAX_GROUPS;
	if (getgrouplist(name, pw.pw_gid, out->groups, &n) == -1) {
		set_err(err, errlen, "user %s is in more than %d groups", name,
		        PGKEEL_CHILD_MAX_GROUPS);
		free(buf);
		return false;
	}
	out->ngroups = n;
	free(buf);
	return true;
}

/* ---- environment and program lookup (parent, before fork) ---- */

static bool env_is_secret(const char *entry)
{
	return strncmp(entry, "PATRONI_", 8) == 0 || strncmp(entry, "PGKEEL_", 7) == 0;
}

static size_t env_name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');

	return eq != NULL ? (size_t)(eq - entry) : strlen(entry);
}

static bool env_same_name(const char *a, const char *b)
{
	size_t la = env_name_len(a);

	return la == env_name_len(b) && strncmp(a, b, la) == 0;
}

static bool env_overridden(const char *entry, const char *const *overrides)
{
	size_t i;

	for (i = 0; overrides != NULL && overrides[i] != NULL; i++) {
		if (env_same_name(entry, overrides[i]))
			return true;
	}
	return false;
}

/*
 * The child's environment: ours minus PATRONI_* and PGKEEL_*, minus every
 * name the overrides mention, plus the overrides that set a value (the last
 * one of a name wins).  The strings are borrowed, not copied.
 */
static char **env_build(const char *const *overrides, char *msg, size_t msglen)
{
	size_t n = 0, nov = 0, i, j, k = 0;
	char **envp;

	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		n++;
	for (i = 0; overrides != NULL && overrides[i] != NULL; i++) {
		if (env_name_len(overrides[i]) == 0) {
			set_err(msg, msglen, "bad environment override \"%s\"", overrides[i]);
			return NULL;
		}
		nov++;
	}
	envp = pgkeel_xcalloc(n + nov + 1, sizeof(*envp));
	for (i = 0; i < n; i++) {
		if (!env_is_secret(environ[i]) && !env_overridden(environ[i], overrides))
			envp[k++] = environ[i];
	}
	for (i = 0; i < nov; i++) {
		bool later = false;

		if (strchr(overrides[i], '=') == NULL)
			continue;
		for (j = i + 1; j < nov && !later; j++)
			later = env_same_name(overrides[i], overrides[j]);
		if (!later)
			envp[k++] = (char *)overrides[i];
	}
	envp[k] = NULL;
	return envp;
}

static void candidates_free(char **c, size_t n)
{
	size_t i;

	for (i = 0; c != NULL && i < n; i++)
		free(c[i]);
	free(c);
}

/* The paths execvp() would try for program, given the child's PATH. */
static char **candidates_build(const char *program, char **envp, size_t *count)
{
	const char *path = "/bin:/usr/bin";
	const char *p, *end;
	size_t n = 1, k = 0, i;
	char **c;

	if (strchr(program, '/') != NULL) {
		c = pgkeel_xcalloc(1, sizeof(*c));
		c[0] = pgkeel_strdup(program);
		*count = 1;
		return c;
	}
	for (i = 0; envp[i] != NULL; i++) {
		if (strncmp(envp[i], "PATH=", 5) == 0)
			path = envp[i] + 5;
	}
	for (p = path; *p != '\0'; p++) {
		if (*p == ':')
			n++;
	}
	c = pgkeel_xcalloc(n, sizeof(*c));
	for (p = path;; p = end + 1) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		/* An empty element means the working directory, as for execvp(). */
		if (end == p)
			c[k++] = pgkeel_asprintf("%s", program);
		else
			c[k++] = pgkeel_asprintf("%.*s/%s", (int)(end - p), p, program);
		if (*end == '\0')
			break;
	}
	*count = k;
	return c;
}

/* ---- the child, between fork() and execve(): async-signal-safe only ---- */

static void child_fail(int report, int step, int err, int candidate) __attribute__((noreturn));
static void child_fail(int report, int step, int err, int candidate)
{
	struct setup_report r = {.step = step, .err = err, .candidate = candidate};
	ssize_t n;

	do
		n = write(report, &r, sizeof(r));
	while (n == -1 && errno == EINTR);
	_exit(127);
}

/* A close-on-exec copy of fd numbered 3 or above, so dup2() onto 0..2 cannot clobber it. */
static int dup_high(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* Source descriptors that exist before the child opens anything. */
static int child_fixed_source(const struct pgkeel_child_out *o, int target, int pipe_w)
{
	switch (o->mode) {
	case PGKEEL_CHILD_OUT_INHERIT:
		return dup_high(target);
	case PGKEEL_CHILD_OUT_FD:
		return dup_high(o->fd);
	case PGKEEL_CHILD_OUT_PIPE:
		return dup_high(pipe_w);
	default:
		return -2; /* opened later */
	}
}

/* Sources the child opens itself, with its final credentials and directory. */
static int child_open_source(const struct pgkeel_child_out *o, int report, int step)
{
	int fd, fl;

	if (o->mode == PGKEEL_CHILD_OUT_FILE) {
		/* O_NONBLOCK: a FIFO without a reader must fail, not hang the parent. */
		fd = open(o->path,
		          O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
		if (fd == -1)
			child_fail(report, step, errno, 0);
		fl = fcntl(fd, F_GETFL);
		if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
			child_fail(report, step, errno, 0);
	} else {
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd == -1)
			child_fail(report, STEP_DEVNULL, errno, 0);
	}
	if (fd < 3) {
		int high = dup_high(fd);

		if (high == -1)
			child_fail(report, STEP_FD, errno, 0);
		fd = high;
	}
	return fd;
}

static void child_close_from_3(int max_fd)
{
	int fd;

#ifdef SYS_close_range
	/* Mark rather than close: the report pipe must stay open until exec. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	for (fd = 3; fd < max_fd; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/*
 * glibc's sigaction() refuses the signals it reserves for itself (32 and 33,
 * SIGCANCEL and SIGSETXID), yet an ignored disposition of theirs is inherited
 * like any other (GNU make, for one, hands them down ignored).  The kernel
 * call sets them; an all-zero kernel sigaction is SIG_DFL, no flags, empty
 * mask on every architecture.
 */
static void child_default_signal(int sig)
{
#ifdef SYS_rt_sigaction
	unsigned long ksa[16];

	memset(ksa, 0, sizeof(ksa));
	(void)syscall(SYS_rt_sigaction, sig, ksa, NULL, (size_t)((NSIG - 1) / 8));
#else
	(void)sig;
#endif
}

static void child_main(const struct launch *l) __attribute__((noreturn));
static void child_main(const struct launch *l)
{
	struct sigaction sa;
	sigset_t empty;
	int report, src[3], sig, i, e, err = ENOENT, err_at = 0;
	bool eacces = false;
	size_t k;

	/* Default dispositions first; every signal stays blocked until exec. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, &sa, NULL) == -1)
			child_default_signal(sig);
	}
	report = l->report < 3 ? dup_high(l->report) : l->report;
	if (report == -1)
		_exit(127);
	if (setsid() == -1)
		child_fail(report, STEP_SETSID, errno, 0);

	src[1] = child_fixed_source(l->out, 1, l->out_pipe);
	src[2] = l->err->mode == PGKEEL_CHILD_OUT_STDOUT
	             ? -2
	             : child_fixed_source(l->err, 2, l->err_pipe);
	if (src[1] == -1 || src[2] == -1)
		child_fail(report, STEP_FD, errno, 0);

	if (l->user != NULL) {
		if (setgroups((size_t)l->user->ngroups, l->user->groups) == -1)
			child_fail(report, STEP_SETGROUPS, errno, 0);
		if (setresgid(l->user->gid, l->user->gid, l->user->gid) == -1)
			child_fail(report, STEP_SETGID, errno, 0);
		if (setresuid(l->user->uid, l->user->uid, l->user->uid) == -1)
			child_fail(report, STEP_SETUID, errno, 0);
	}
	if (l->cwd != NULL && chdir(l->cwd) == -1)
		child_fail(report, STEP_CHDIR, errno, 0);

	src[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (src[0] == -1)
		child_fail(report, STEP_DEVNULL, errno, 0);
	if (src[0] < 3 && (src[0] = dup_high(src[0])) == -1)
		child_fail(report, STEP_FD, errno, 0);
	if (src[1] == -2)
		src[1] = child_open_source(l->out, report, STEP_OUT_FILE);
	if (l->err->mode == PGKEEL_CHILD_OUT_STDOUT)
		src[2] = src[1];
	else if (src[2] == -2)
		src[2] = child_open_source(l->err, report, STEP_ERR_FILE);

	/* dup2() clears close-on-exec on 0..2; every source is >= 3, so none is clobbered. */
	for (i = 0; i < 3; i++) {
		if (dup2(src[i], i) == -1)
			child_fail(report, STEP_FD, errno, 0);
	}
	child_close_from_3(l->max_fd);

	sigemptyset(&empty);
	(void)sigprocmask(SIG_SETMASK, &empty, NULL);

	/* execvp()'s rules: go on after "not there", remember "not allowed". */
	for (k = 0; k < l->ncandidates; k++) {
		execve(l->candidates[k], l->argv, l->envp);
		e = errno;
		if (e == EACCES) {
			if (!eacces)
				err_at = (int)k;
			eacces = true;
			continue;
		}
		if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT)
			child_fail(report, STEP_EXEC, e, (int)k);
		if (!eacces) {
			err = e;
			err_at = (int)k;
		}
	}
	child_fail(report, STEP_EXEC, eacces ? EACCES : err, err_at);
}

/* ---- spawning ---- */

static void describe_failure(const struct pgkeel_child_spec *spec, const struct launch *l,
                             const struct setup_report *r, const char *name, char *err,
                             size_t errlen)
{
	const char *why = strerror(r->err);

	switch (r->step) {
	case STEP_SETSID:
		set_err(err, errlen, "cannot start %s: setsid: %s", name, why);
		break;
	case STEP_SETGROUPS:
		set_err(err, errlen, "cannot start %s: setgroups: %s", name, why);
		break;
	case STEP_SETGID:
		set_err(err, errlen, "cannot start %s: setgid %u: %s", name,
		        (unsigned)spec->user->gid, why);
		break;
	case STEP_SETUID:
		set_err(err, errlen, "cannot start %s: setuid %u: %s", name,
		        (unsigned)spec->user->uid, why);
		break;
	case STEP_CHDIR:
		set_err(err, errlen, "cannot start %s: chdir %s: %s", name, spec->cwd, why);
		break;
	case STEP_DEVNULL:
		set_err(err, errlen, "cannot start %s: open /dev/null: %s", name, why);
		break;
	case STEP_OUT_FILE:
		set_err(err, errlen, "cannot start %s: open %s for stdout: %s", name,
		        spec->out.path, why);
		break;
	case STEP_ERR_FILE:
		set_err(err, errlen, "cannot start %s: open %s for stderr: %s", name,
		        spec->err.path, why);
		break;
	case STEP_EXEC:
		if (strchr(spec->argv[0], '/') == NULL && r->err == ENOENT)
			set_err(err, errlen, "cannot start %s: %s not found in PATH", name,
			        spec->argv[0]);
		else if (r->candidate >= 0 && (size_t)r->candidate < l->ncandidates)
			set_err(err, errlen, "cannot start %s: exec %s: %s", name,
			        l->candidates[r->candidate], why);
		else
			set_err(err, errlen, "cannot start %s: exec: %s", name, why);
		break;
	default:
		set_err(err, errlen, "cannot start %s: setting up descriptors: %s", name, why);
		break;
	}
}

static bool out_valid(const struct pgkeel_child_out *o, bool is_err)
{
	switch (o->mode) {
	case PGKEEL_CHILD_OUT_NULL:
	case PGKEEL_CHILD_OUT_INHERIT:
	case PGKEEL_CHILD_OUT_PIPE:
		return true;
	case PGKEEL_CHILD_OUT_FD:
		return o->fd >= 0;
	case PGKEEL_CHILD_OUT_FILE:
		return o->path != NULL && o->path[0] != '\0';
	case PGKEEL_CHILD_OUT_STDOUT:
		return is_err;
	}
	return false;
}

void pgkeel_child_init(struct pgkeel_child *c)
{
	static const struct pgkeel_child empty = PGKEEL_CHILD_INIT;

	*c = empty;
}

static void child_name(const struct pgkeel_child_spec *spec, char *buf, size_t len)
{
	const char *name = spec->name;

	if (name == NULL) {
		name = strrchr(spec->argv[0], '/');
		name = name != NULL && name[1] != '\0' ? name + 1 : spec->argv[0];
	}
	/* Only used in messages: a shortened name is fine. */
	(void)pgkeel_fmt(buf, len, "%s", name);
}

bool pgkeel_child_spawn(const struct pgkeel_child_spec *spec, struct pgkeel_child *c, char *err,
                        size_t errlen)
{
	struct launch l;
	struct setup_report r;
	struct rlimit rl;
	sigset_t all, old;
	int report[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
	char name[sizeof(c->name)];
	size_t got = 0;
	pid_t pid;
	int saved = 0;

	if (spec == NULL || spec->argv == NULL || spec->argv[0] == NULL ||
	    spec->argv[0][0] == '\0' || c == NULL || c->pid != 0) {
		set_err(err, errlen, "cannot start a child: no program given or handle in use");
		errno = EINVAL;
		return false;
	}
	child_name(spec, name, sizeof(name));
	if (!out_valid(&spec->out, false) || !out_valid(&spec->err, true)) {
		set_err(err, errlen, "cannot start %s: bad stdout/stderr redirection", name);
		errno = EINVAL;
		return false;
	}
	(void)pgkeel_child_reap_abandoned();

	memset(&l, 0, sizeof(l));
	l.argv = (char *const *)spec->argv;
	l.cwd = spec->cwd;
	l.out = &spec->out;
	l.err = &spec->err;
	l.out_pipe = -1;
	l.err_pipe = -1;
	/* Switching to the credentials we already have needs no privilege: skip it. */
	if (spec->user != NULL && (spec->user->uid != geteuid() || spec->user->uid != getuid() ||
	                           spec->user->gid != getegid() || spec->user->gid != getgid()))
		l.user = spec->user;
	l.max_fd = FALLBACK_MAX_FD;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < FALLBACK_MAX_FD)
		l.max_fd = (int)rl.rlim_cur;

	l.envp = env_build(spec->env, err, errlen);
	if (l.envp == NULL) {
		errno = EINVAL;
		return false;
	}
	l.candidates = candidates_build(spec->argv[0], l.envp, &l.ncandidates);

	if (pipe2(report, O_CLOEXEC) == -1 ||
	    (spec->out.mode == PGKEEL_CHILD_OUT_PIPE && pipe2(outp, O_CLOEXEC) == -1) ||
	    (spec->err.mode == PGKEEL_CHILD_OUT_PIPE && pipe2(errp, O_CLOEXEC) == -1)) {
		saved = errno;
		set_err(err, errlen, "cannot start %s: pipe: %s", name, strerror(saved));
		goto fail;
	}
	l.report = report[1];
	l.out_pipe = outp[1];
	l.err_pipe = errp[1];

	/* No handler of ours may run in the child before its dispositions are reset. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_main(&l);
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close_fd(&report[1]);
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	if (pid == -1) {
		set_err(err, errlen, "cannot start %s: fork: %s", name, strerror(saved));
		goto fail;
	}

	/* EOF: the program was executed (the pipe is close-on-exec).  Data: it was not. */
	while (got < sizeof(r)) {
		ssize_t n = read(report[0], (char *)&r + got, sizeof(r) - got);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close_fd(&report[0]);
	if (got > 0) {
		int st;

		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
		if (got < sizeof(r)) {
			r.step = 0;
			r.err = EIO;
		}
		describe_failure(spec, &l, &r, name, err, errlen);
		saved = r.err;
		goto fail;
	}

	c->pid = pid;
	c->pidfd = open_pidfd(pid);
	c->out_fd = outp[0];
	c->err_fd = errp[0];
	c->reaped = false;
	c->wstatus = 0;
	memcpy(c->name, name, sizeof(name));
	if (c->out_fd >= 0)
		(void)fcntl(c->out_fd, F_SETFL, fcntl(c->out_fd, F_GETFL) | O_NONBLOCK);
	if (c->err_fd >= 0)
		(void)fcntl(c->err_fd, F_SETFL, fcntl(c->err_fd, F_GETFL) | O_NONBLOCK);
	free(l.envp);
	candidates_free(l.candidates, l.ncandidates);
	log_debug("started %s (pid %d)", c->name, (int)pid);
	return true;

fail:
	close_fd(&report[0]);
	close_fd(&report[1]);
	close_fd(&outp[0]);
	close_fd(&outp[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	free(l.envp);
	candidates_free(l.candidates, l.ncandidates);
	errno = saved;
	return false;
}

/* ---- tracking ---- */

static void mark_lost(struct pgkeel_child *c)
{
	log_warning("%s (pid %d) was reaped by someone else: its exit status is lost", c->name,
	            (int)c->pid);
	c->reaped = true;
	c->wstatus = -1;
}

enum pgkeel_child_state pgkeel_child_poll(struct pgkeel_child *c)
{
	int st;

	if (c->pid == 0 || c->reaped)
		return PGKEEL_CHILD_EXITED;
	for (;;) {
		pid_t r = waitpid(c->pid, &st, WNOHANG);

		if (r == c->pid) {
			c->reaped = true;
			c->wstatus = st;
			return PGKEEL_CHILD_EXITED;
		}
		if (r == 0)
			return PGKEEL_CHILD_RUNNING;
		if (errno != EINTR) {
			mark_lost(c);
			return PGKEEL_CHILD_EXITED;
		}
	}
}

/* Has the child exited?  Leaves it a zombie, so its process group id stays ours. */
static bool exited_nowait(struct pgkeel_child *c)
{
	siginfo_t si;

	if (c->pid == 0 || c->reaped)
		return true;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
			return si.si_pid == c->pid;
		if (errno != EINTR) {
			mark_lost(c);
			return true;
		}
	}
}

/* Wait for the child to exit until the deadline; reap it or leave it a zombie. */
static bool wait_exit(struct pgkeel_child *c, int64_t deadline_ms, bool reap)
{
	for (;;) {
		int left;

		if (reap ? pgkeel_child_poll(c) == PGKEEL_CHILD_EXITED : exited_nowait(c))
			return true;
		left = ms_until(deadline_ms);
		if (left == 0)
			return false;
		if (c->pidfd >= 0) {
			struct pollfd p = {.fd = c->pidfd, .events = POLLIN};

			if (poll(&p, 1, left) == -1 && errno != EINTR)
				sleep_ms(left < NO_PIDFD_TICK_MS ? left : NO_PIDFD_TICK_MS);
		} else {
			sleep_ms(left < NO_PIDFD_TICK_MS ? left : NO_PIDFD_TICK_MS);
		}
	}
}

enum pgkeel_child_state pgkeel_child_wait(struct pgkeel_child *c, int64_t deadline_ms)
{
	return wait_exit(c, deadline_ms, true) ? PGKEEL_CHILD_EXITED : PGKEEL_CHILD_RUNNING;
}

bool pgkeel_child_signal(struct pgkeel_child *c, int sig)
{
	if (c->pid == 0 || c->reaped) {
		errno = ESRCH;
		return false;
	}
	/* Unreaped, the child (even a zombie) keeps its group id from being reused. */
	return kill(-c->pid, sig) == 0;
}

/* The child has exited but is not reaped: kill what is left of its group, then reap. */
static void sweep_and_reap(struct pgkeel_child *c)
{
	if (!c->reaped)
		(void)kill(-c->pid, SIGKILL);
	(void)pgkeel_child_poll(c);
}

enum pgkeel_child_stop_result pgkeel_child_stop(struct pgkeel_child *c, int sig,
                                                int64_t deadline_ms)
{
	if (c->pid == 0 || c->reaped)
		return PGKEEL_CHILD_STOPPED;
	(void)pgkeel_child_signal(c, sig);
	if (wait_exit(c, deadline_ms, false)) {
		sweep_and_reap(c);
		return PGKEEL_CHILD_STOPPED;
	}
	if (sig != SIGKILL)
		log_warning("%s (pid %d) did not stop in time: sending SIGKILL", c->name,
		            (int)c->pid);
	(void)pgkeel_child_signal(c, SIGKILL);
	if (wait_exit(c, pgkeel_now_monotonic_ms() + PGKEEL_CHILD_KILL_GRACE_MS, false)) {
		sweep_and_reap(c);
		return PGKEEL_CHILD_KILLED;
	}
	return PGKEEL_CHILD_STUCK;
}

void pgkeel_child_free(struct pgkeel_child *c)
{
	if (c == NULL)
		return;
	if (c->pid != 0 && !c->reaped &&
	    pgkeel_child_stop(c, SIGKILL, pgkeel_now_monotonic_ms()) == PGKEEL_CHILD_STUCK)
		abandon(c);
	close_fd(&c->pidfd);
	close_fd(&c->out_fd);
	close_fd(&c->err_fd);
	pgkeel_child_init(c);
}

int pgkeel_child_exit_code(const struct pgkeel_child *c)
{
	if (c->pid == 0 || !c->reaped || c->wstatus == -1 || !WIFEXITED(c->wstatus))
		return -1;
	return WEXITSTATUS(c->wstatus);
}

bool pgkeel_child_succeeded(const struct pgkeel_child *c)
{
	return pgkeel_child_exit_code(c) == 0;
}

void pgkeel_child_describe(int wstatus, char *buf, size_t len)
{
	if (wstatus == -1) {
		set_err(buf, len, "exit status unknown");
	} else if (WIFEXITED(wstatus)) {
		set_err(buf, len, "exited with code %d", WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(wstatus));

		set_err(buf, len, "killed by signal %d%s%s%s%s", WTERMSIG(wstatus),
		        abbrev != NULL ? " (SIG" : "", abbrev != NULL ? abbrev : "",
		        abbrev != NULL ? ")" : "", WCOREDUMP(wstatus) ? ", core dumped" : "");
	} else {
		set_err(buf, len, "still running");
	}
}

/* ---- capture ---- */

struct capture_buf {
	struct pgkeel_child_output *out;
	size_t cap;
	size_t max;
};

/* Read what the pipe has now; false at EOF or on error. */
static bool capture_read(int fd, struct capture_buf *b)
{
	char scratch[4096];

	for (;;) {
		struct pgkeel_child_output *o = b->out;
		size_t room;
		char *dst;
		ssize_t n;

		if (o->len < b->max && o->len + 1 >= b->cap) {
			size_t ncap = b->cap * 2 > b->max + 1 ? b->max + 1 : b->cap * 2;
			char *nd = realloc(o->data, ncap);

			if (nd == NULL)
				pgkeel_oom();
			o->data = nd;
			b->cap = ncap;
		}
		if (o->len < b->max) {
			dst = o->data + o->len;
			room = b->cap - 1 - o->len;
		} else {
			dst = scratch;
			room = sizeof(scratch);
		}
		n = read(fd, dst, room);
		if (n > 0) {
			if (dst == scratch) {
				o->truncated = true;
			} else {
				o->len += (size_t)n;
				o->data[o->len] = '\0';
			}
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		return n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

void pgkeel_child_output_free(struct pgkeel_child_output *out)
{
	if (out == NULL)
		return;
	free(out->data);
	memset(out, 0, sizeof(*out));
}

enum pgkeel_child_result pgkeel_child_capture(const struct pgkeel_child_spec *spec,
                                              int64_t deadline_ms, size_t max_bytes,
                                              struct pgkeel_child_output *out, char *err,
                                              size_t errlen)
{
	struct pgkeel_child c = PGKEEL_CHILD_INIT;
	struct pgkeel_child_spec s;
	struct capture_buf b = {.out = out, .max = max_bytes};
	bool open_pipe = true;

	memset(out, 0, sizeof(*out));
	b.cap = max_bytes + 1 < 4096 ? max_bytes + 1 : 4096;
	out->data = pgkeel_xcalloc(1, b.cap);
	if (spec == NULL) {
		set_err(err, errlen, "cannot start a child: no program given");
		errno = EINVAL;
		return PGKEEL_CHILD_FAILED;
	}
	s = *spec;
	s.out.mode = PGKEEL_CHILD_OUT_PIPE;
	if (!pgkeel_child_spawn(&s, &c, err, errlen))
		return PGKEEL_CHILD_FAILED;

	for (;;) {
		struct pollfd p[2];
		nfds_t n = 0;
		int left, timeout;

		if (open_pipe) {
			p[n].fd = c.out_fd;
			p[n++].events = POLLIN;
		}
		if (c.pidfd >= 0) {
			p[n].fd = c.pidfd;
			p[n++].events = POLLIN;
		}
		left = ms_until(deadline_ms);
		timeout = c.pidfd >= 0 ? left : (left < NO_PIDFD_TICK_MS ? left : NO_PIDFD_TICK_MS);
		if (poll(p, n, timeout) == -1 && errno != EINTR)
			sleep_ms(timeout < NO_PIDFD_TICK_MS ? timeout : NO_PIDFD_TICK_MS);
		if (open_pipe)
			open_pipe = capture_read(c.out_fd, &b);
		/*
		 * Output written before the exit is in the pipe by now; a
		 * background grandchild holding the pipe open is not waited for.
		 */
		if (pgkeel_child_poll(&c) == PGKEEL_CHILD_EXITED) {
			if (open_pipe)
				(void)capture_read(c.out_fd, &b);
			out->wstatus = c.wstatus;
			pgkeel_child_free(&c);
			return PGKEEL_CHILD_OK;
		}
		if (ms_until(deadline_ms) == 0)
			break;
	}
	log_warning("%s (pid %d) did not finish in time: killing it", c.name, (int)c.pid);
	(void)pgkeel_child_stop(&c, SIGKILL, pgkeel_now_monotonic_ms());
	if (open_pipe)
		(void)capture_read(c.out_fd, &b);
	out->wstatus = c.reaped ? c.wstatus : -1;
	pgkeel_child_free(&c);
	return PGKEEL_CHILD_TIMEOUT;
}

/* ---- slots ---- */

void pgkeel_child_slot_init(struct pgkeel_child_slot *s)
{
	pgkeel_child_init(&s->child);
	s->replaced = 0;
}

bool pgkeel_child_slot_start(struct pgkeel_child_slot *s, const struct pgkeel_child_spec *spec,
                             char *err, size_t errlen)
{
	if (pgkeel_child_slot_busy(s)) {
		log_info("killing %s (pid %d) to run the next command", s->child.name,
		         (int)s->child.pid);
		s->replaced++;
	}
	pgkeel_child_free(&s->child);
	return pgkeel_child_spawn(spec, &s->child, err, errlen);
}

bool pgkeel_child_slot_busy(struct pgkeel_child_slot *s)
{
	return pgkeel_child_poll(&s->child) == PGKEEL_CHILD_RUNNING;
}

void pgkeel_child_slot_free(struct pgkeel_child_slot *s)
{
	pgkeel_child_free(&s->child);
}
