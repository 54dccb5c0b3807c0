/*
 * pg_ctl: starting, watching, stopping, reloading and promoting the local
 * postmaster (see pg_ctl.h for the contract).  Patroni's counterparts:
 * postgresql/__init__.py (start, stop, _do_stop, terminate_postmaster,
 * restart, reload, promote, check_startup_state_changed) and
 * postgresql/postmaster.py (PostmasterProcess.start, signal_stop,
 * signal_kill, from_pidfile).
 */
#include "autoconf.h"

#include "pg_ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "child.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_query.h"
#include "util.h"

/* How much of the log a failure reason is looked for in. */
#define LOG_TAIL_BYTES (64 * 1024)
/* Poll period when no pidfd can wake us. */
#define TICK_MS 50
/* Between two pg_is_in_recovery() checks while a promotion completes. */
#define PROMOTE_CHECK_MS 100
/* One such check may take this long. */
#define PROMOTE_QUERY_MS 2000
/* Readiness connection attempts of a starting postmaster, at most one per period. */
#define CONNECT_RETRY_MS 1000
/* Output of pg_ctl kept for messages. */
#define PG_CTL_OUTPUT_MAX 4096

struct pgkeel_pgctl {
	char *data_dir;
	char *bin_dir; /* "" for PATH */
	char *log_path;
	char *log_old_path; /* <log>.1 */
	int64_t log_max;
	struct pgkeel_child child; /* the postmaster we started (when !st.adopted) */
	int pidfd;                 /* the adopted postmaster's pidfd, -1 */
	int64_t ready_deadline_ms;
	int64_t log_offset;      /* log size when the postmaster was started or adopted */
	bool fresh_conn;         /* close the caller's connection before the readiness check */
	int64_t last_connect_ms; /* the last readiness connection attempt */
	struct pgkeel_pgctl_status st;
};

/* ---------------------------------------------------------------- names */

const char *pgkeel_pgctl_state_name(enum pgkeel_pgctl_state s)
{
	switch (s) {
	case PGKEEL_PGCTL_STOPPED:
		return "stopped";
	case PGKEEL_PGCTL_STARTING:
		return "starting";
	case PGKEEL_PGCTL_RUNNING:
		return "running";
	case PGKEEL_PGCTL_STOPPING:
		return "stopping";
	case PGKEEL_PGCTL_STOP_FAILED:
		return "stop failed";
	case PGKEEL_PGCTL_CRASHED:
		return "crashed";
	case PGKEEL_PGCTL_START_FAILED:
		return "start failed";
	case PGKEEL_PGCTL_RESTARTING:
		return "restarting";
	case PGKEEL_PGCTL_RESTART_FAILED:
		return "restart failed";
	}
	return "unknown";
}

const char *pgkeel_pgctl_role_name(enum pgkeel_pgctl_role r)
{
	switch (r) {
	case PGKEEL_PGCTL_ROLE_PRIMARY:
		return "primary";
	case PGKEEL_PGCTL_ROLE_REPLICA:
		return "replica";
	case PGKEEL_PGCTL_ROLE_STANDBY_LEADER:
		return "standby_leader";
	case PGKEEL_PGCTL_ROLE_UNKNOWN:
		break;
	}
	return "unknown";
}

static const char *const stop_mode_names[] = {"smart", "fast", "immediate"};

bool pgkeel_pgctl_stop_mode_parse(const char *s, enum pgkeel_pgctl_stop_mode *out)
{
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(stop_mode_names); i++) {
		if (s != NULL && strcmp(s, stop_mode_names[i]) == 0) {
			*out = (enum pgkeel_pgctl_stop_mode)i;
			return true;
		}
	}
	return false;
}

const char *pgkeel_pgctl_stop_mode_name(enum pgkeel_pgctl_stop_mode m)
{
	return (size_t)m < PGKEEL_ARRAY_LEN(stop_mode_names) ? stop_mode_names[m] : "unknown";
}

const char *pgkeel_pgctl_stop_result_name(enum pgkeel_pgctl_stop_result r)
{
	switch (r) {
	case PGKEEL_PGCTL_STOP_DONE:
		return "done";
	case PGKEEL_PGCTL_STOP_NOT_RUNNING:
		return "not running";
	case PGKEEL_PGCTL_STOP_KILLED:
		return "killed";
	case PGKEEL_PGCTL_STOP_PENDING:
		return "pending";
	case PGKEEL_PGCTL_STOP_ERROR:
		return "error";
	}
	return "unknown";
}

static int stop_signal(enum pgkeel_pgctl_stop_mode m)
{
	switch (m) {
	case PGKEEL_PGCTL_SMART:
		return SIGTERM;
	case PGKEEL_PGCTL_FAST:
		return SIGINT;
	case PGKEEL_PGCTL_IMMEDIATE:
		break;
	}
	return SIGQUIT;
}

/* -------------------------------------------------------------- helpers */

static void set_errf(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);
static void set_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	if (!pgkeel_vfmt(err, errlen, fmt, ap) && errlen > 4)
		memcpy(err + errlen - 4, "...", 4);
	va_end(ap);
}

static void set_reason(struct pgkeel_pgctl *ctl, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
static void set_reason(struct pgkeel_pgctl *ctl, const char *fmt, ...)
{
	char *r = ctl->st.reason;
	size_t len = sizeof(ctl->st.reason);
	va_list ap;

	va_start(ap, fmt);
	if (!pgkeel_vfmt(r, len, fmt, ap))
		memcpy(r + len - 4, "...", 4);
	va_end(ap);
}

static void set_state_text(struct pgkeel_pgctl *ctl, enum pgkeel_pgctl_state s, const char *text)
{
	if (ctl->st.state != s || strcmp(ctl->st.state_name, text) != 0)
		log_debug("PostgreSQL state: %s -> %s", ctl->st.state_name, text);
	ctl->st.state = s;
	(void)pgkeel_fmt(ctl->st.state_name, sizeof(ctl->st.state_name), "%s", text);
	ctl->st.state_since_ms = pgkeel_now_monotonic_ms();
	if (s != PGKEEL_PGCTL_STARTING)
		ctl->st.timed_out = false;
}

static void set_state(struct pgkeel_pgctl *ctl, enum pgkeel_pgctl_state s)
{
	set_state_text(ctl, s, pgkeel_pgctl_state_name(s));
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	long fd = syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0) {
		(void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
		return (int)fd;
	}
#else
	(void)pid;
	errno = ENOSYS;
#endif
	return -1;
}

static bool pidfd_signal(int pidfd, int sig)
{
#ifdef SYS_pidfd_send_signal
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0;
#else
	(void)pidfd;
	(void)sig;
	errno = ENOSYS;
	return false;
#endif
}

static char *path_join(const char *dir, const char *name)
{
	size_t l = strlen(dir);

	if (l > 0 && dir[l - 1] == '/')
		return pgkeel_asprintf("%s%s", dir, name);
	return pgkeel_asprintf("%s/%s", dir, name);
}

static int64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ------------------------------------------------------------- the log */

/* Write all of buf to fd. */
static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/*
 * Keep the log under its bound: copy it to <log>.1 and truncate it in place
 * (the postmaster appends, so it continues at offset 0).
 */
static void log_maintain(struct pgkeel_pgctl *ctl)
{
	char buf[65536];
	int in, out, trunc_fd;
	ssize_t n;
	bool ok = true;

	if (file_size(ctl->log_path) <= ctl->log_max)
		return;
	in = open(ctl->log_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in == -1)
		return;
	out = open(ctl->log_old_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out == -1) {
		log_warning("cannot rotate %s: %s: %s", ctl->log_path, ctl->log_old_path,
		            strerror(errno));
		close(in);
		return;
	}
	while (ok && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			ok = false;
			break;
		}
		ok = write_all(out, buf, (size_t)n);
	}
	close(in);
	if (close(out) == -1)
		ok = false;
	if (!ok) {
		log_warning("cannot rotate %s into %s: %s", ctl->log_path, ctl->log_old_path,
		            strerror(errno));
		return;
	}
	trunc_fd = open(ctl->log_path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (trunc_fd == -1 || ftruncate(trunc_fd, 0) == -1)
		log_warning("cannot truncate %s: %s", ctl->log_path, strerror(errno));
	if (trunc_fd != -1)
		close(trunc_fd);
	ctl->log_offset = 0;
}

/* The log from `from` (at most its last LOG_TAIL_BYTES); malloc'd, never NULL. */
static char *log_read_since(const struct pgkeel_pgctl *ctl, int64_t from)
{
	int64_t size = file_size(ctl->log_path);
	struct pgkeel_sbuf b = {0};
	char buf[8192];
	int fd;

	if (from > size)
		from = 0; /* truncated meanwhile */
	if (size - from > LOG_TAIL_BYTES)
		from = size - LOG_TAIL_BYTES;
	fd = open(ctl->log_path, O_RDONLY | O_CLOEXEC);
	if (fd != -1 && lseek(fd, (off_t)from, SEEK_SET) != (off_t)-1) {
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			pgkeel_sbuf_put(&b, buf, (size_t)n);
		}
	}
	if (fd != -1)
		close(fd);
	return pgkeel_sbuf_finish(&b);
}

static const char *const severities[] = {
    "PANIC",  "FATAL",  "ERROR",  "WARNING", "LOG",  "NOTICE",  "INFO",      "DEBUG1",   "DEBUG2",
    "DEBUG3", "DEBUG4", "DEBUG5", "DETAIL",  "HINT", "CONTEXT", "STATEMENT", "LOCATION",
};

/* Messages backends write for clients while the server starts or stops. */
static const char *const noise[] = {
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "the database system is in recovery mode",
    "terminating connection due to administrator command",
};

/*
 * The earliest "SEVERITY:  " of the line (PostgreSQL puts two spaces after
 * it); *msg points to the message.  -1 when none.
 */
static int line_severity(const char *line, size_t len, const char **msg)
{
	int best = -1;
	const char *best_at = NULL;

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(severities); i++) {
		size_t sl = strlen(severities[i]);

		for (const char *p = line; p + sl + 3 <= line + len; p++) {
			if (memcmp(p, severities[i], sl) == 0 && memcmp(p + sl, ":  ", 3) == 0 &&
			    (p == line || p[-1] == ' ')) {
				if (best_at == NULL || p < best_at) {
					best_at = p;
					best = (int)i;
					*msg = p + sl + 3;
				}
				break;
			}
		}
	}
	return best;
}

static bool has_pid_marker(const char *line, size_t len)
{
	for (const char *p = line; p < line + len; p++) {
		const char *q = p + 1;

		if (*p != '[')
			continue;
		while (q < line + len && *q >= '0' && *q <= '9')
			q++;
		if (q > p + 1 && q < line + len && *q == ']')
			return true;
	}
	return false;
}

static bool contains(const char *s, size_t len, const char *needle)
{
	size_t nl = strlen(needle);

	for (size_t i = 0; i + nl <= len; i++)
		if (memcmp(s + i, needle, nl) == 0)
			return true;
	return false;
}

static void reason_add(struct pgkeel_sbuf *b, const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\r' || s[len - 1] == '\t'))
		len--;
	if (len == 0)
		return;
	if (b->len > 0)
		pgkeel_sbuf_puts(b, "; ");
	pgkeel_sbuf_put(b, s, len);
}

void pgkeel_pgctl_log_reason(const char *text, pid_t pid, char *out, size_t outlen)
{
	struct pgkeel_sbuf b = {0};
	char marker[32];
	bool by_pid = false;
	const char *line, *last[3] = {NULL, NULL, NULL};
	size_t lastlen[3] = {0, 0, 0};
	size_t nlast = 0;
	char *r;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (text == NULL)
		return;
	(void)pgkeel_fmt(marker, sizeof(marker), "[%d]", (int)pid);
	/* Does the prefix show pids, and the postmaster's among them? */
	for (line = text; pid > 0 && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);

		if (has_pid_marker(line, len) && contains(line, len, marker)) {
			by_pid = true;
			break;
		}
		line = nl != NULL ? nl + 1 : line + len;
	}
	for (line = text; *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		const char *msg = NULL;
		int sev = line_severity(line, len, &msg);
		bool wanted = false;

		if (len > 0 && strspn(line, " \t\r") < len) {
			last[nlast % 3] = line;
			lastlen[nlast % 3] = len;
			nlast++;
		}
		if (sev >= 0) {
			size_t ml = len - (size_t)(msg - line);
			const char *name = severities[sev];

			wanted = strcmp(name, "PANIC") == 0 || strcmp(name, "FATAL") == 0 ||
			         strcmp(name, "ERROR") == 0 ||
			         (strcmp(name, "LOG") == 0 && ml >= 10 &&
			          memcmp(msg, "could not ", 10) == 0);
			for (size_t i = 0; wanted && i < PGKEEL_ARRAY_LEN(noise); i++)
				if (contains(msg, ml, noise[i]))
					wanted = false;
			if (wanted && by_pid && !contains(line, len, marker))
				wanted = false;
			if (wanted)
				reason_add(&b, msg, ml);
		}
		line = nl != NULL ? nl + 1 : line + len;
	}
	if (b.len == 0) {
		size_t first = nlast > 3 ? nlast - 3 : 0;

		for (size_t i = first; i < nlast; i++)
			reason_add(&b, last[i % 3], lastlen[i % 3]);
	}
	r = pgkeel_sbuf_finish(&b);
	if (!pgkeel_fmt(out, outlen, "%s", r) && outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
	free(r);
}

/* ------------------------------------------------------------ tracking */

static bool tracked(const struct pgkeel_pgctl *ctl)
{
	return ctl->st.pid != 0;
}

/* Is the tracked postmaster alive?  Reaps our child when it exited. */
static bool pm_alive(struct pgkeel_pgctl *ctl)
{
	struct pgkeel_pidfile pf;

	if (!tracked(ctl))
		return false;
	if (!ctl->st.adopted) {
		if (pgkeel_child_poll(&ctl->child) == PGKEEL_CHILD_RUNNING)
			return true;
		ctl->st.exit_status = ctl->child.wstatus;
		return false;
	}
	if (ctl->pidfd >= 0) {
		struct pollfd p = {.fd = ctl->pidfd, .events = POLLIN};
		int r;

		do {
			r = poll(&p, 1, 0);
		} while (r == -1 && errno == EINTR);
		if (r == 0)
			return true;
		if (r == 1)
			return false;
	}
	return pgkeel_postmaster_check(ctl->data_dir, &pf) == PGKEEL_PM_RUNNING &&
	       pf.pid == ctl->st.pid;
}

/* Stop tracking (never signals anything). */
static void forget(struct pgkeel_pgctl *ctl)
{
	if (ctl->child.pid != 0) {
		if (ctl->child.reaped) {
			pgkeel_child_free(&ctl->child);
		} else {
			/* Still running: leave it running, just drop our descriptors. */
			if (ctl->child.pidfd >= 0)
				close(ctl->child.pidfd);
			if (ctl->child.out_fd >= 0)
				close(ctl->child.out_fd);
			if (ctl->child.err_fd >= 0)
				close(ctl->child.err_fd);
			pgkeel_child_init(&ctl->child);
		}
	}
	if (ctl->pidfd >= 0)
		close(ctl->pidfd);
	ctl->pidfd = -1;
	ctl->st.pid = 0;
	ctl->st.adopted = false;
}

/* Send sig to the tracked postmaster only (not to its process group). */
static bool pm_signal(struct pgkeel_pgctl *ctl, int sig)
{
	struct pgkeel_pidfile pf;

	if (!tracked(ctl)) {
		errno = ESRCH;
		return false;
	}
	if (!ctl->st.adopted) {
		/* Unreaped, our child's pid cannot have been reused. */
		if (ctl->child.reaped) {
			errno = ESRCH;
			return false;
		}
		return kill(ctl->child.pid, sig) == 0;
	}
	if (ctl->pidfd >= 0)
		return pidfd_signal(ctl->pidfd, sig);
	if (pgkeel_postmaster_check(ctl->data_dir, &pf) != PGKEEL_PM_RUNNING ||
	    pf.pid != ctl->st.pid) {
		errno = ESRCH;
		return false;
	}
	return kill(ctl->st.pid, sig) == 0;
}

int pgkeel_pgctl_exit_fd(const struct pgkeel_pgctl *ctl)
{
	if (ctl->st.pid <= 0)
		return -1;
	return ctl->st.adopted ? ctl->pidfd : ctl->child.pidfd;
}

/* Wait at most ms for the postmaster to exit (wakes early when it does). */
static void pm_wait(struct pgkeel_pgctl *ctl, int64_t ms)
{
	int fd = ctl->st.adopted ? ctl->pidfd : ctl->child.pidfd;

	if (ms <= 0)
		return;
	if (fd >= 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, ms > INT_MAX ? INT_MAX : (int)ms) != -1 || errno == EINTR)
			return;
	}
	sleep_ms(ms < TICK_MS ? ms : TICK_MS);
}

static void describe_exit(const struct pgkeel_pgctl *ctl, char *buf, size_t len)
{
	if (ctl->st.adopted || ctl->st.exit_status == -1)
		(void)pgkeel_fmt(buf, len, "is gone");
	else
		pgkeel_child_describe(ctl->st.exit_status, buf, len);
}

/* The postmaster disappeared: "start failed" or "crashed", with the reason. */
static void pm_lost(struct pgkeel_pgctl *ctl, enum pgkeel_pgctl_state s)
{
	char how[128], why[sizeof(ctl->st.reason)];
	char *text = log_read_since(ctl, ctl->log_offset);
	pid_t pid = ctl->st.pid;

	describe_exit(ctl, how, sizeof(how));
	pgkeel_pgctl_log_reason(text, pid, why, sizeof(why));
	free(text);
	if (why[0] != '\0')
		set_reason(ctl, "postmaster (pid %d) %s: %s", (int)pid, how, why);
	else
		set_reason(ctl, "postmaster (pid %d) %s", (int)pid, how);
	if (s == PGKEEL_PGCTL_START_FAILED)
		log_error("postmaster is not running: %s", ctl->st.reason);
	else
		log_error("PostgreSQL crashed: %s", ctl->st.reason);
	forget(ctl);
	set_state(ctl, s);
}

/* The postmaster is gone after a stop. */
static void pm_stopped(struct pgkeel_pgctl *ctl)
{
	struct pgkeel_pidfile pf;
	pid_t pid = ctl->st.pid;

	ctl->st.pidfile_left = pid != 0 && pgkeel_pidfile_read(ctl->data_dir, &pf) && pf.pid == pid;
	forget(ctl);
	ctl->st.reason[0] = '\0';
	set_state(ctl, PGKEEL_PGCTL_STOPPED);
}

/* ------------------------------------------------------------- the API */

struct pgkeel_pgctl *pgkeel_pgctl_new(const struct pgkeel_pgctl_opts *opts)
{
	struct pgkeel_pgctl *ctl = pgkeel_xcalloc(1, sizeof(*ctl));

	ctl->data_dir = pgkeel_strdup(opts->data_dir != NULL ? opts->data_dir : "");
	ctl->bin_dir = pgkeel_strdup(opts->bin_dir != NULL ? opts->bin_dir : "");
	if (opts->log_path != NULL && opts->log_path[0] != '\0')
		ctl->log_path = pgkeel_strdup(opts->log_path);
	else
		ctl->log_path = path_join(ctl->data_dir, PGKEEL_PGCTL_LOG_NAME);
	ctl->log_old_path = pgkeel_asprintf("%s.1", ctl->log_path);
	ctl->log_max = opts->log_max_bytes > 0 ? opts->log_max_bytes : PGKEEL_PGCTL_LOG_MAX_BYTES;
	pgkeel_child_init(&ctl->child);
	ctl->pidfd = -1;
	ctl->st.exit_status = -1;
	set_state(ctl, PGKEEL_PGCTL_STOPPED);
	return ctl;
}

void pgkeel_pgctl_free(struct pgkeel_pgctl *ctl)
{
	if (ctl == NULL)
		return;
	forget(ctl);
	free(ctl->data_dir);
	free(ctl->bin_dir);
	free(ctl->log_path);
	free(ctl->log_old_path);
	free(ctl);
}

const struct pgkeel_pgctl_status *pgkeel_pgctl_status(const struct pgkeel_pgctl *ctl)
{
	return &ctl->st;
}

void pgkeel_pgctl_set_role(struct pgkeel_pgctl *ctl, enum pgkeel_pgctl_role role)
{
	ctl->st.role = role;
}

const char *pgkeel_pgctl_log_path(const struct pgkeel_pgctl *ctl)
{
	return ctl->log_path;
}

/*
 * Patroni's get_postgres_role_from_data_directory: recovery configured
 * (standby.signal, recovery.signal, or recovery.conf before 12) is a replica.
 * (postmaster.pid cannot tell: a hot standby's status is "ready" too.)
 */
static enum pgkeel_pgctl_role role_from_data_dir(const char *data_dir)
{
	static const char *const files[] = {"standby.signal", "recovery.signal", "recovery.conf"};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(files); i++) {
		char *path = path_join(data_dir, files[i]);
		bool found = access(path, F_OK) == 0;

		free(path);
		if (found)
			return PGKEEL_PGCTL_ROLE_REPLICA;
	}
	return PGKEEL_PGCTL_ROLE_PRIMARY;
}

/* Notice a postmaster that went away since the last look. */
static void refresh(struct pgkeel_pgctl *ctl)
{
	if (!tracked(ctl) || pm_alive(ctl))
		return;
	switch (ctl->st.state) {
	case PGKEEL_PGCTL_STARTING:
		pm_lost(ctl, PGKEEL_PGCTL_START_FAILED);
		break;
	case PGKEEL_PGCTL_RUNNING:
		pm_lost(ctl, PGKEEL_PGCTL_CRASHED);
		break;
	case PGKEEL_PGCTL_STOPPING:
		pm_stopped(ctl);
		break;
	default:
		forget(ctl);
		break;
	}
}

enum pgkeel_pgctl_adopt_result pgkeel_pgctl_adopt(struct pgkeel_pgctl *ctl)
{
	struct pgkeel_pidfile pf, again;
	enum pgkeel_postmaster_state pm;
	int fd;

	refresh(ctl);
	if (tracked(ctl))
		return PGKEEL_PGCTL_ADOPTED;
	pm = pgkeel_postmaster_check(ctl->data_dir, &pf);
	if (pm == PGKEEL_PM_NOT_RUNNING)
		return PGKEEL_PGCTL_ADOPT_NONE;
	/* Patroni's extra check: never ourselves or our parent. */
	if (pm == PGKEEL_PM_STALE || pf.pid == getpid() || pf.pid == getppid()) {
		log_info("postmaster.pid names process %d, which is not the postmaster of %s",
		         (int)pf.pid, ctl->data_dir);
		return PGKEEL_PGCTL_ADOPT_STALE;
	}
	/* Pin the process, then make sure it is still the one the file names. */
	fd = open_pidfd(pf.pid);
	if (fd == -1 && errno == ESRCH)
		return PGKEEL_PGCTL_ADOPT_NONE;
	pm = pgkeel_postmaster_check(ctl->data_dir, &again);
	if (pm != PGKEEL_PM_RUNNING || again.pid != pf.pid) {
		if (fd != -1)
			close(fd);
		return pm == PGKEEL_PM_STALE ? PGKEEL_PGCTL_ADOPT_STALE : PGKEEL_PGCTL_ADOPT_NONE;
	}
	ctl->pidfd = fd;
	ctl->st.pid = again.pid;
	ctl->st.adopted = true;
	ctl->st.exit_status = -1;
	ctl->st.start_time = again.start_time;
	ctl->st.pidfile_left = false;
	ctl->st.reason[0] = '\0';
	(void)pgkeel_fmt(ctl->st.pidfile_status, sizeof(ctl->st.pidfile_status), "%s",
	                 again.status);
	ctl->st.role = role_from_data_dir(ctl->data_dir);
	ctl->log_offset = file_size(ctl->log_path);
	ctl->fresh_conn = false;
	ctl->ready_deadline_ms = PGKEEL_CHILD_NO_DEADLINE;
	if (strcmp(again.status, "ready") == 0 || strcmp(again.status, "standby") == 0)
		set_state(ctl, PGKEEL_PGCTL_RUNNING);
	else if (strcmp(again.status, "stopping") == 0)
		set_state(ctl, PGKEEL_PGCTL_STOPPING);
	else
		set_state(ctl, PGKEEL_PGCTL_STARTING);
	log_info("found PostgreSQL running in %s (postmaster pid=%d, status \"%s\")", ctl->data_dir,
	         (int)again.pid, again.status);
	return PGKEEL_PGCTL_ADOPTED;
}

bool pgkeel_pgctl_is_running(struct pgkeel_pgctl *ctl)
{
	if (tracked(ctl))
		return pm_alive(ctl);
	return pgkeel_postmaster_check(ctl->data_dir, NULL) == PGKEEL_PM_RUNNING;
}

bool pgkeel_pgctl_start(struct pgkeel_pgctl *ctl, const char *const *argv,
                        enum pgkeel_pgctl_role role, int64_t ready_deadline_ms, char *err,
                        size_t errlen)
{
	struct pgkeel_child_spec spec;
	struct pgkeel_pidfile pf;
	char grandparent[48];
	const char *env[2] = {NULL, NULL};
	enum pgkeel_pgctl_adopt_result found;

	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
		set_errf(err, errlen, "cannot start PostgreSQL: no command line");
		return false;
	}
	found = pgkeel_pgctl_adopt(ctl);
	if (found == PGKEEL_PGCTL_ADOPTED) {
		log_error("Cannot start PostgreSQL because one is already running.");
		ctl->ready_deadline_ms = ready_deadline_ms;
		ctl->fresh_conn = true;
		set_state(ctl, PGKEEL_PGCTL_STARTING);
		return true;
	}
	if (found == PGKEEL_PGCTL_ADOPT_STALE && pgkeel_pidfile_read(ctl->data_dir, &pf)) {
		/*
		 * A live process that is not a postmaster holds the pid of
		 * postmaster.pid: PostgreSQL would refuse to start ("lock file
		 * already exists").  It ignores the pid given as its grandparent.
		 */
		log_info("Telling pg_ctl that it is safe to ignore postmaster.pid for process %d",
		         (int)pf.pid);
		if (pgkeel_fmt(grandparent, sizeof(grandparent), "PG_GRANDPARENT_PID=%d",
		               (int)pf.pid))
			env[0] = grandparent;
	}
	forget(ctl);
	log_maintain(ctl);
	ctl->log_offset = file_size(ctl->log_path);

	memset(&spec, 0, sizeof(spec));
	spec.argv = argv;
	spec.env = env;
	spec.out.mode = PGKEEL_CHILD_OUT_FILE;
	spec.out.path = ctl->log_path;
	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	spec.name = "postgres";
	ctl->st.role = role;
	ctl->st.exit_status = -1;
	ctl->st.pidfile_left = false;
	ctl->st.pidfile_status[0] = '\0';
	ctl->st.start_time = 0;
	if (!pgkeel_child_spawn(&spec, &ctl->child, ctl->st.reason, sizeof(ctl->st.reason))) {
		log_error("%s", ctl->st.reason);
		set_errf(err, errlen, "%s", ctl->st.reason);
		set_state(ctl, PGKEEL_PGCTL_START_FAILED);
		return false;
	}
	ctl->st.pid = ctl->child.pid;
	ctl->st.adopted = false;
	ctl->st.start_time = pgkeel_process_start_time(ctl->child.pid);
	ctl->st.reason[0] = '\0';
	ctl->ready_deadline_ms = ready_deadline_ms;
	ctl->fresh_conn = true;
	log_info("postmaster pid=%d", (int)ctl->child.pid);
	set_state(ctl, PGKEEL_PGCTL_STARTING);
	return true;
}

/* One readiness check of a starting postmaster. */
static void check_start(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg, int64_t deadline_ms)
{
	struct pgkeel_pidfile pf;
	struct pgkeel_pg_err e;

	if (!tracked(ctl)) {
		/* Nothing to wait for (cannot happen through this API). */
		set_reason(ctl, "no postmaster is being started");
		set_state(ctl, PGKEEL_PGCTL_START_FAILED);
		return;
	}
	if (!pm_alive(ctl)) {
		pm_lost(ctl, PGKEEL_PGCTL_START_FAILED);
		return;
	}
	if (pgkeel_now_monotonic_ms() >= ctl->ready_deadline_ms)
		ctl->st.timed_out = true;
	if (!pgkeel_pidfile_read(ctl->data_dir, &pf) || pf.pid != ctl->st.pid) {
		set_reason(ctl, "postmaster.pid not written yet");
		return;
	}
	(void)pgkeel_fmt(ctl->st.pidfile_status, sizeof(ctl->st.pidfile_status), "%s", pf.status);
	if (pf.start_time > 0)
		ctl->st.start_time = pf.start_time;
	if (strcmp(pf.status, "ready") != 0 && strcmp(pf.status, "standby") != 0) {
		set_reason(ctl, "postmaster.pid status is \"%s\"", pf.status);
		return;
	}
	if (pg != NULL) {
		int64_t now = pgkeel_now_monotonic_ms();

		/* A connection made before this start may belong to the previous postmaster. */
		if (ctl->fresh_conn) {
			pgkeel_pg_close(pg);
			ctl->last_connect_ms = now - CONNECT_RETRY_MS;
		}
		ctl->fresh_conn = false;
		if (!pgkeel_pg_connected(pg) && now - ctl->last_connect_ms < CONNECT_RETRY_MS)
			return; /* the reason of the last attempt stays */
		ctl->last_connect_ms = now;
		if (pgkeel_pg_connect(pg, deadline_ms, &e) != PGKEEL_PG_OK) {
			set_reason(ctl, "%s", e.msg);
			return;
		}
	}
	if (ctl->st.role == PGKEEL_PGCTL_ROLE_UNKNOWN)
		ctl->st.role = role_from_data_dir(ctl->data_dir);
	ctl->st.reason[0] = '\0';
	set_state(ctl, PGKEEL_PGCTL_RUNNING);
}

enum pgkeel_pgctl_state pgkeel_pgctl_poll(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg,
                                          int64_t deadline_ms)
{
	switch (ctl->st.state) {
	case PGKEEL_PGCTL_STARTING:
		check_start(ctl, pg, deadline_ms);
		break;
	case PGKEEL_PGCTL_RUNNING:
	case PGKEEL_PGCTL_STOPPING:
		refresh(ctl);
		break;
	default:
		break;
	}
	log_maintain(ctl);
	return ctl->st.state;
}

enum pgkeel_pgctl_state pgkeel_pgctl_wait_ready(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg,
                                                int64_t deadline_ms)
{
	for (;;) {
		int64_t left;

		if (pgkeel_pgctl_poll(ctl, pg, deadline_ms) != PGKEEL_PGCTL_STARTING)
			break;
		left = deadline_ms - pgkeel_now_monotonic_ms();
		if (left <= 0)
			break;
		pm_wait(ctl, left < TICK_MS ? left : TICK_MS);
	}
	return ctl->st.state;
}

/* ---------------------------------------------------------------- stop */

enum pgkeel_pgctl_stop_result pgkeel_pgctl_stop_begin(struct pgkeel_pgctl *ctl,
                                                      enum pgkeel_pgctl_stop_mode mode)
{
	refresh(ctl);
	if (!tracked(ctl) && pgkeel_pgctl_adopt(ctl) != PGKEEL_PGCTL_ADOPTED) {
		pm_stopped(ctl);
		return PGKEEL_PGCTL_STOP_NOT_RUNNING;
	}
	log_info("stopping PostgreSQL (postmaster pid=%d, %s shutdown)", (int)ctl->st.pid,
	         pgkeel_pgctl_stop_mode_name(mode));
	if (!pm_signal(ctl, stop_signal(mode))) {
		if (errno == ESRCH) {
			pm_stopped(ctl);
			return PGKEEL_PGCTL_STOP_DONE;
		}
		set_reason(ctl, "could not send stop signal to PostgreSQL (pid %d): %s",
		           (int)ctl->st.pid, strerror(errno));
		log_warning("%s", ctl->st.reason);
		set_state(ctl, PGKEEL_PGCTL_STOP_FAILED);
		return PGKEEL_PGCTL_STOP_ERROR;
	}
	set_state(ctl, PGKEEL_PGCTL_STOPPING);
	return PGKEEL_PGCTL_STOP_PENDING;
}

enum pgkeel_pgctl_stop_result pgkeel_pgctl_stop_wait(struct pgkeel_pgctl *ctl,
                                                     int64_t kill_deadline_ms)
{
	if (!tracked(ctl))
		return ctl->st.state == PGKEEL_PGCTL_STOP_FAILED ? PGKEEL_PGCTL_STOP_ERROR
		                                                 : PGKEEL_PGCTL_STOP_DONE;
	for (;;) {
		int64_t left;

		if (!pm_alive(ctl)) {
			pm_stopped(ctl);
			return PGKEEL_PGCTL_STOP_DONE;
		}
		left = kill_deadline_ms - pgkeel_now_monotonic_ms();
		if (left <= 0)
			break;
		pm_wait(ctl, left);
	}
	log_warning("Timeout during postmaster stop, aborting Postgres.");
	return pgkeel_pgctl_kill(ctl);
}

enum pgkeel_pgctl_stop_result pgkeel_pgctl_stop(struct pgkeel_pgctl *ctl,
                                                enum pgkeel_pgctl_stop_mode mode,
                                                int64_t kill_deadline_ms)
{
	enum pgkeel_pgctl_stop_result r = pgkeel_pgctl_stop_begin(ctl, mode);

	if (r != PGKEEL_PGCTL_STOP_PENDING)
		return r;
	return pgkeel_pgctl_stop_wait(ctl, kill_deadline_ms);
}

struct proc_list {
	pid_t *pid;
	pid_t *ppid;
	size_t n, cap;
};

/* Every process's pid and parent pid, from /proc. */
static void proc_scan(struct proc_list *l)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	l->n = 0;
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char path[64], buf[512], *p;
		int64_t pid;
		long long ppid;
		int fd;
		ssize_t n;

		if (!pgkeel_parse_int64(de->d_name, &pid) || pid <= 0 || pid > INT_MAX ||
		    !pgkeel_fmt(path, sizeof(path), "/proc/%s/stat", de->d_name))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd == -1)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		/* pid (comm) state ppid ...: comm may hold spaces and parentheses */
		p = strrchr(buf, ')');
		if (p == NULL || sscanf(p + 1, " %*c %lld", &ppid) != 1)
			continue;
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 256;
			l->pid = pgkeel_xreallocarray(l->pid, l->cap, sizeof(*l->pid));
			l->ppid = pgkeel_xreallocarray(l->ppid, l->cap, sizeof(*l->ppid));
		}
		l->pid[l->n] = (pid_t)pid;
		l->ppid[l->n] = (pid_t)ppid;
		l->n++;
	}
	closedir(d);
}

/* The descendants of root (children first found, then theirs); malloc'd. */
static pid_t *descendants(pid_t root, size_t *count)
{
	struct proc_list l = {0};
	pid_t *out = NULL;
	size_t n = 0, cap = 0, next = 0;
	pid_t parent = root;

	proc_scan(&l);
	for (;;) {
		for (size_t i = 0; i < l.n; i++) {
			if (l.ppid[i] != parent || l.pid[i] == root)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				out = pgkeel_xreallocarray(out, cap, sizeof(*out));
			}
			out[n++] = l.pid[i];
		}
		if (next >= n)
			break;
		parent = out[next++];
	}
	free(l.pid);
	free(l.ppid);
	*count = n;
	return out;
}

/* Gone, or a zombie nobody reaps (it holds no resources). */
static bool process_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return true;
	if (!pgkeel_fmt(path, sizeof(path), "/proc/%d/stat", (int)pid))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && (p[2] == 'Z' || p[2] == 'X');
}

enum pgkeel_pgctl_stop_result pgkeel_pgctl_kill(struct pgkeel_pgctl *ctl)
{
	pid_t *kids;
	size_t nkids, left;
	int64_t until;
	bool pm_gone;
	pid_t pid;

	refresh(ctl);
	if (!tracked(ctl) && pgkeel_pgctl_adopt(ctl) != PGKEEL_PGCTL_ADOPTED) {
		pm_stopped(ctl);
		return PGKEEL_PGCTL_STOP_NOT_RUNNING;
	}
	pid = ctl->st.pid;
	log_warning("Sending SIGKILL to Postmaster and its children");
	/*
	 * Stopped, the postmaster can neither fork nor reap: the list stays
	 * true.  Deepest first and the postmaster last, so that a killed
	 * process stays an unreaped zombie (its pid not reusable) while the
	 * others are signalled.
	 */
	(void)pm_signal(ctl, SIGSTOP);
	kids = descendants(pid, &nkids);
	for (size_t i = nkids; i > 0; i--)
		(void)kill(kids[i - 1], SIGKILL);
	(void)pm_signal(ctl, SIGKILL);
	until = pgkeel_now_monotonic_ms() + PGKEEL_PGCTL_KILL_GRACE_MS;
	for (;;) {
		pm_gone = !pm_alive(ctl);
		left = 0;
		for (size_t i = 0; i < nkids; i++)
			if (!process_gone(kids[i]))
				left++;
		if ((pm_gone && left == 0) || pgkeel_now_monotonic_ms() >= until)
			break;
		if (pm_gone)
			sleep_ms(10); /* its pidfd stays readable: do not spin on it */
		else
			pm_wait(ctl, 20);
	}
	free(kids);
	if (!pm_gone || left > 0) {
		set_reason(ctl, "%s survived SIGKILL",
		           pm_gone ? "a child of the postmaster" : "the postmaster");
		log_error("%s (pid %d)", ctl->st.reason, (int)pid);
		if (pm_gone)
			forget(ctl);
		set_state(ctl, PGKEEL_PGCTL_STOP_FAILED);
		return PGKEEL_PGCTL_STOP_ERROR;
	}
	pm_stopped(ctl);
	return PGKEEL_PGCTL_STOP_KILLED;
}

/* ------------------------------------------------- restart, reload, promote */

bool pgkeel_pgctl_restart(struct pgkeel_pgctl *ctl, const char *const *argv,
                          enum pgkeel_pgctl_role role, int64_t kill_deadline_ms,
                          int64_t ready_deadline_ms, char *err, size_t errlen)
{
	enum pgkeel_pgctl_stop_result r;

	set_state(ctl, PGKEEL_PGCTL_RESTARTING);
	r = pgkeel_pgctl_stop(ctl, PGKEEL_PGCTL_FAST, kill_deadline_ms);
	if (r == PGKEEL_PGCTL_STOP_ERROR) {
		set_errf(err, errlen, "restart: %s", ctl->st.reason);
		set_state_text(ctl, PGKEEL_PGCTL_RESTART_FAILED, "restart failed (stop failed)");
		return false;
	}
	if (!pgkeel_pgctl_start(ctl, argv, role, ready_deadline_ms, err, errlen)) {
		set_state_text(ctl, PGKEEL_PGCTL_RESTART_FAILED, "restart failed (start failed)");
		return false;
	}
	return true;
}

bool pgkeel_pgctl_reload(struct pgkeel_pgctl *ctl, char *err, size_t errlen)
{
	refresh(ctl);
	if (!tracked(ctl) && pgkeel_pgctl_adopt(ctl) != PGKEEL_PGCTL_ADOPTED) {
		set_errf(err, errlen, "cannot reload: PostgreSQL is not running");
		return false;
	}
	if (!pm_signal(ctl, SIGHUP)) {
		set_errf(err, errlen, "cannot reload: signal to postmaster (pid %d): %s",
		         (int)ctl->st.pid, strerror(errno));
		return false;
	}
	log_debug("sent SIGHUP to the postmaster (pid %d)", (int)ctl->st.pid);
	return true;
}

static char *one_line(char *s)
{
	size_t l = strlen(s);

	while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == ' ' || s[l - 1] == '\r'))
		s[--l] = '\0';
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return s;
}

bool pgkeel_pgctl_promote(struct pgkeel_pgctl *ctl, int64_t deadline_ms, char *err, size_t errlen)
{
	struct pgkeel_child_spec spec;
	struct pgkeel_child_output out;
	enum pgkeel_child_result r;
	char *pg_ctl, how[128], msg[256], why[512] = "";
	const char *argv[6];
	bool ok = false;

	refresh(ctl);
	if (!tracked(ctl) && pgkeel_pgctl_adopt(ctl) != PGKEEL_PGCTL_ADOPTED) {
		set_errf(err, errlen, "cannot promote: PostgreSQL is not running");
		return false;
	}
	pg_ctl =
	    ctl->bin_dir[0] != '\0' ? path_join(ctl->bin_dir, "pg_ctl") : pgkeel_strdup("pg_ctl");
	argv[0] = pg_ctl;
	argv[1] = "promote";
	argv[2] = "-W";
	argv[3] = "-D";
	argv[4] = ctl->data_dir;
	argv[5] = NULL;
	memset(&spec, 0, sizeof(spec));
	spec.argv = argv;
	spec.err.mode = PGKEEL_CHILD_OUT_STDOUT;
	r = pgkeel_child_capture(&spec, deadline_ms, PG_CTL_OUTPUT_MAX, &out, msg, sizeof(msg));
	switch (r) {
	case PGKEEL_CHILD_FAILED:
		set_errf(why, sizeof(why), "%s", msg);
		break;
	case PGKEEL_CHILD_TIMEOUT:
		set_errf(why, sizeof(why), "pg_ctl promote did not finish by its deadline: %s",
		         one_line(out.data));
		break;
	case PGKEEL_CHILD_OK:
		if (WIFEXITED(out.wstatus) && WEXITSTATUS(out.wstatus) == 0) {
			log_info("pg_ctl promote: %s", one_line(out.data));
			ok = true;
			break;
		}
		pgkeel_child_describe(out.wstatus, how, sizeof(how));
		set_errf(why, sizeof(why), "pg_ctl promote %s: %s", how, one_line(out.data));
		break;
	}
	if (!ok) {
		log_error("%s", why);
		set_errf(err, errlen, "%s", why);
	}
	pgkeel_child_output_free(&out);
	free(pg_ctl);
	return ok;
}

bool pgkeel_pgctl_wait_promoted(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg, int64_t deadline_ms,
                                char *err, size_t errlen)
{
	char last[256] = "still in recovery";

	for (;;) {
		struct pgkeel_pg_err e;
		struct pg_result *res = NULL;
		int64_t now = pgkeel_now_monotonic_ms(), q_deadline;

		if (!pgkeel_pgctl_is_running(ctl)) {
			set_errf(err, errlen, "PostgreSQL is not running");
			return false;
		}
		q_deadline =
		    now + PROMOTE_QUERY_MS < deadline_ms ? now + PROMOTE_QUERY_MS : deadline_ms;
		if (pgkeel_pg_exec(pg, "SELECT pg_catalog.pg_is_in_recovery()", 0, NULL, q_deadline,
		                   &res, &e) == PGKEEL_PG_OK) {
			bool in_recovery = PQntuples(res) != 1 || PQnfields(res) != 1 ||
			                   strcmp(PQgetvalue(res, 0, 0), "f") != 0;

			PQclear(res);
			if (!in_recovery) {
				ctl->st.role = PGKEEL_PGCTL_ROLE_PRIMARY;
				return true;
			}
			(void)pgkeel_fmt(last, sizeof(last), "still in recovery");
		} else {
			(void)pgkeel_fmt(last, sizeof(last), "%s", e.msg);
		}
		now = pgkeel_now_monotonic_ms();
		if (now >= deadline_ms)
			break;
		sleep_ms(deadline_ms - now < PROMOTE_CHECK_MS ? deadline_ms - now
		                                              : PROMOTE_CHECK_MS);
	}
	set_errf(err, errlen, "promotion not complete by the deadline: %s", last);
	return false;
}

/* ------------------------------------------------------ configuration */

static bool file_exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

static bool remove_file(const char *path, struct pgkeel_diag *diag)
{
	if (unlink(path) == -1 && errno != ENOENT) {
		pgkeel_diag_error(diag, "cannot remove %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static bool write_file(const char *path, const char *content, unsigned mode,
                       struct pgkeel_diag *diag)
{
	char err[512];

	if (!pgkeel_pg_file_write(path, content, mode, NULL, err, sizeof(err))) {
		pgkeel_diag_error(diag, "%s", err);
		return false;
	}
	return true;
}

/* Rename <config_dir>/<base>.conf to <base>.base.conf once (Patroni). */
static bool rename_base_conf(const char *conf_path, struct pgkeel_diag *diag)
{
	size_t l = strlen(conf_path);
	char *base;
	bool ok = true;

	if (!pgkeel_str_has_suffix(conf_path, ".conf")) {
		pgkeel_diag_error(diag, "unexpected configuration file name %s", conf_path);
		return false;
	}
	base = pgkeel_asprintf("%.*s.base.conf", (int)(l - 5), conf_path);
	if (!file_exists(base) && rename(conf_path, base) == -1) {
		pgkeel_diag_error(diag, "cannot rename %s to %s: %s", conf_path, base,
		                  strerror(errno));
		ok = false;
	}
	free(base);
	return ok;
}

static bool write_recovery_files(const char *data_dir, const struct pgkeel_pg_situation *sit,
                                 const struct pgkeel_pg_files *files, unsigned mode,
                                 struct pgkeel_diag *diag)
{
	char *standby = path_join(data_dir, "standby.signal");
	char *recovery = path_join(data_dir, "recovery.signal");
	char *conf = path_join(data_dir, "recovery.conf");
	bool ok;

	if (sit->server_version >= 120000) {
		if (!sit->recovery)
			ok = remove_file(standby, diag) && remove_file(recovery, diag);
		else if (files->standby_signal)
			ok = write_file(standby, "", mode, diag) && remove_file(recovery, diag);
		else
			ok = remove_file(standby, diag) && write_file(recovery, "", mode, diag);
	} else if (files->recovery_conf != NULL) {
		ok = write_file(conf, files->recovery_conf, 0600, diag);
	} else {
		ok = remove_file(conf, diag);
	}
	free(standby);
	free(recovery);
	free(conf);
	return ok;
}

bool pgkeel_pgctl_write_config(const struct pgkeel_config *cfg,
                               const struct pgkeel_pg_situation *sit, json_object *params,
                               struct pgkeel_pg_files *files, struct pgkeel_diag *diag)
{
	struct pgkeel_pg_situation s = *sit;
	json_object *own = NULL;
	const char *custom;
	char *config_dir = NULL, *path;
	unsigned mode = 0600;
	struct stat sb;
	bool ok = false;

	memset(files, 0, sizeof(*files));
	if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
		pgkeel_diag_error(diag, "postgresql.data_dir is not set");
		return false;
	}
	if (s.server_version == 0) {
		int major = pgkeel_pg_data_version(cfg->data_dir);

		if (major == 0) {
			pgkeel_diag_error(diag,
			                  "cannot tell the PostgreSQL version: no PG_VERSION in %s",
			                  cfg->data_dir);
			return false;
		}
		s.server_version = major * 10000;
	}
	if (params == NULL) {
		size_t before = pgkeel_diag_errors(diag);

		own = pgkeel_pg_server_params(cfg, &s, diag);
		if (pgkeel_diag_errors(diag) > before)
			goto out;
		params = own;
	}
	if (!pgkeel_pg_render(cfg, &s, params, files, diag))
		goto out;
	/* PostgreSQL's own rule: group-readable files when the data directory is 0750. */
	if (stat(cfg->data_dir, &sb) == 0 && (sb.st_mode & 0777) == 0750)
		mode = 0640;

	custom = json_object_get_string(pgkeel_json_path(cfg->effective, "postgresql.custom_conf"));
	if ((custom == NULL || custom[0] == '\0') &&
	    !rename_base_conf(files->postgresql_conf_path, diag))
		goto out;
	if (!write_file(files->postgresql_conf_path, files->postgresql_conf, mode, diag))
		goto out;
	{
		const char *slash = strrchr(files->postgresql_conf_path, '/');

		config_dir =
		    slash == NULL
		        ? pgkeel_strdup(".")
		        : pgkeel_asprintf("%.*s", (int)(slash - files->postgresql_conf_path),
		                          files->postgresql_conf_path);
	}
	if (files->pg_hba != NULL) {
		path = path_join(config_dir, "pg_hba.conf");
		ok = write_file(path, files->pg_hba, mode, diag);
		free(path);
		if (!ok)
			goto out;
	}
	if (files->pg_ident != NULL) {
		path = path_join(config_dir, "pg_ident.conf");
		ok = write_file(path, files->pg_ident, mode, diag);
		free(path);
		if (!ok)
			goto out;
	}
	ok = false;
	if (!write_recovery_files(cfg->data_dir, &s, files, mode, diag))
		goto out;
	if (files->pgpass != NULL && files->pgpass_path != NULL) {
		char err[512];
		bool world = false;

		if (!pgkeel_pg_pgpass_write(files->pgpass_path, files->pgpass, &world, err,
		                            sizeof(err))) {
			pgkeel_diag_error(diag, "%s", err);
			goto out;
		}
		if (world)
			pgkeel_diag_warning(diag,
			                    "the folder of the pgpass file %s is writable by "
			                    "others",
			                    files->pgpass_path);
	}
	ok = true;
out:
	json_object_put(own);
	free(config_dir);
	return ok;
}
