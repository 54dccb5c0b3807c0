/*
 * fake-watchdog: the "hardware" behind tests/fakes/fake_watchdog_preload.so
 * (protocol: fake_watchdog.h).  It behaves as a Linux watchdog driver with
 * magic close: open starts the timer (the current timeout; --timeout at
 * first), any byte written or WDIOC_KEEPALIVE feeds it, WDIOC_SETTIMEOUT
 * changes it (1..--max-timeout, else EINVAL; EOPNOTSUPP with
 * --no-settimeout) and feeds it, one descriptor at a time (EBUSY).  Closing
 * right after writing 'V' stops it; any other close, the death of the
 * process included, leaves it running.
 *
 * When the timer runs out the "machine resets": every process of the node
 * is stopped (SIGSTOP) and then killed (SIGKILL).  The node is the process
 * that opened the device if it still lives (checked through a pidfd, so a
 * reused pid is never hit), its descendants (a postmaster in its own
 * session), its process group unless that is this server's own group (a
 * test runner), and each --kill-pidfile's first-line pid (a postmaster.pid)
 * with its descendants.  This server and its ancestors are never touched.
 * The watchdog is then stopped, as after a reboot.
 *
 *   fake-watchdog --socket PATH --log FILE [--timeout S] [--max-timeout S]
 *                 [--no-settimeout] [--no-magicclose] [--identity TEXT]
 *                 [--kill-pidfile FILE]...
 *
 * FILE gets one line per event, flushed at once: "<CLOCK_MONOTONIC ms>
 * <event> [key=value]...": listening, open pid= pgid= timeout=, busy pid=,
 * write bytes=, ioctl op= value= err=, close magic=0|1 running=0|1, fired
 * pid= timeout= late_ms=, killed pids=a,b,..., exit.  SIGTERM/SIGINT: exit
 * (the socket is removed).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fake_watchdog.h"

#define MAX_PIDFILES 8
#define MAX_VICTIMS  1024

static struct {
	const char *socket_path;
	FILE *log;
	int timeout;
	int max_timeout;
	bool settimeout;
	bool magicclose;
	const char *identity;
	const char *pidfiles[MAX_PIDFILES];
	int n_pidfiles;
} opt = {.timeout = 60,
         .max_timeout = 65535,
         .settimeout = true,
         .magicclose = true,
         .identity = "pgkeel fake watchdog"};

static struct {
	int client; /* the open descriptor's connection; -1: none */
	pid_t pid;  /* who opened it */
	int pidfd;  /* of pid (-1: none): tells whether that process still lives */
	bool running;
	bool expect_close;
	int timeout;
	int64_t expires_ms;
} wd = {.client = -1, .pidfd = -1};

static volatile sig_atomic_t stop;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void event(const char *fmt, ...)
{
	va_list ap;

	fprintf(opt.log, "%lld ", (long long)now_ms());
	va_start(ap, fmt);
	vfprintf(opt.log, fmt, ap);
	va_end(ap);
	fputc('\n', opt.log);
	fflush(opt.log);
}

static void ping(void)
{
	wd.expires_ms = now_ms() + (int64_t)wd.timeout * 1000;
}

/* ------------------------------------------------------------ the reset */

struct proc {
	pid_t pid, ppid, pgid;
};

/* Every process's pid, parent and group, from /proc. */
static int list_procs(struct proc *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while (n < max && (e = readdir(d)) != NULL) {
		char path[64], buf[512], *p;
		long pid = strtol(e->d_name, &p, 10);
		FILE *f;
		int ppid, pgid;

		if (*p != '\0' || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		/* pid (comm) state ppid pgrp ...: comm may hold anything */
		if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
		    sscanf(p + 1, " %*c %d %d", &ppid, &pgid) != 2)
			continue;
		out[n].pid = (pid_t)pid;
		out[n].ppid = ppid;
		out[n].pgid = pgid;
		n++;
	}
	closedir(d);
	return n;
}

static bool in(const pid_t *set, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (set[i] == pid)
			return true;
	return false;
}

static pid_t pidfile_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	long pid = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* The node's processes (see the header), never this server or its ancestors. */
static int collect(pid_t root, pid_t *set, int n)
{
	static struct proc procs[32768];
	pid_t spared[64];
	int n_procs = list_procs(procs, (int)(sizeof(procs) / sizeof(procs[0])));
	int n_spared = 0, i, round;
	pid_t group = root > 1 ? getpgid(root) : 0, mine = getpgid(0);

	for (pid_t p = getpid(); p > 1 && n_spared < 64;) {
		spared[n_spared++] = p;
		for (i = 0; i < n_procs && procs[i].pid != p; i++)
			;
		p = i < n_procs ? procs[i].ppid : 0;
	}
	if (root > 1 && !in(spared, n_spared, root) && !in(set, n, root))
		set[n++] = root;
	for (i = 0; i < opt.n_pidfiles && n < MAX_VICTIMS; i++) {
		pid_t p = pidfile_pid(opt.pidfiles[i]);

		if (p > 1 && !in(spared, n_spared, p) && !in(set, n, p))
			set[n++] = p;
	}
	for (round = 0; round < 64; round++) {
		int before = n;

		for (i = 0; i < n_procs && n < MAX_VICTIMS; i++) {
			const struct proc *p = &procs[i];
			bool member =
			    (group > 0 && group != mine && p->pgid == group) || in(set, n, p->ppid);

			if (member && !in(spared, n_spared, p->pid) && !in(set, n, p->pid))
				set[n++] = p->pid;
		}
		if (n == before)
			break;
	}
	return n;
}

/* The opener still lives (its pid was not reused): a pidfd polls readable at exit. */
static bool opener_alive(void)
{
	struct pollfd p = {.fd = wd.pidfd, .events = POLLIN};

	return wd.pidfd >= 0 && poll(&p, 1, 0) == 0;
}

/* root: the opener, 0 when it is gone (then only the --kill-pidfile processes). */
static void reset_node(pid_t root)
{
	pid_t set[MAX_VICTIMS];
	char list[8192] = "";
	int n = 0, before, i, round;
	size_t len = 0;

	/* freeze first, so nothing forks or commits while the rest is found */
	for (round = 0; round < 16; round++) {
		before = n;
		n = collect(root, set, n);
		for (i = before; i < n; i++)
			(void)kill(set[i], SIGSTOP);
		if (n == before)
			break;
	}
	for (i = 0; i < n; i++) {
		(void)kill(set[i], SIGKILL);
		if (len + 16 < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d",
			                        i ? "," : "", (int)set[i]);
	}
	event("killed pids=%s", list);
}

/* ------------------------------------------------------------ the device */

static void reply(int fd, int err, int value)
{
	struct fakewd_reply r;

	memset(&r, 0, sizeof(r));
	r.err = err;
	r.value = value;
	r.options = WDIOF_KEEPALIVEPING | (opt.settimeout ? WDIOF_SETTIMEOUT : 0) |
	            (opt.magicclose ? WDIOF_MAGICCLOSE : 0);
	snprintf(r.identity, sizeof(r.identity), "%s", opt.identity);
	(void)send(fd, &r, sizeof(r), MSG_NOSIGNAL);
}

static void do_accept(int lfd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd == -1)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		cred.pid = 0;
	if (wd.client >= 0) {
		event("busy pid=%d", (int)cred.pid);
		reply(fd, EBUSY, 0);
		close(fd);
		return;
	}
	wd.client = fd;
	wd.pid = cred.pid;
	if (wd.pidfd >= 0)
		close(wd.pidfd);
	wd.pidfd = cred.pid > 0 ? (int)syscall(SYS_pidfd_open, cred.pid, 0) : -1;
	wd.expect_close = false;
	wd.running = true;
	ping();
	event("open pid=%d pgid=%d timeout=%d", (int)cred.pid, (int)getpgid(cred.pid), wd.timeout);
	reply(fd, 0, 0);
}

static void do_ioctl(const struct fakewd_req *q)
{
	int err = 0, value = 0;
	const char *op = "?";

	switch (q->request) {
	case WDIOC_GETSUPPORT:
		op = "getsupport";
		break;
	case WDIOC_SETTIMEOUT:
		op = "settimeout";
		value = q->value;
		if (!opt.settimeout)
			err = EOPNOTSUPP;
		else if (q->value < 1 || q->value > opt.max_timeout)
			err = EINVAL;
		else {
			wd.timeout = q->value;
			ping();
		}
		break;
	case WDIOC_GETTIMEOUT:
		op = "gettimeout";
		value = wd.timeout;
		break;
	case WDIOC_KEEPALIVE:
		op = "keepalive";
		ping();
		break;
	case WDIOC_GETTIMELEFT:
		op = "gettimeleft";
		value = wd.running ? (int)((wd.expires_ms - now_ms()) / 1000) : 0;
		break;
	default:
		err = ENOTTY;
		break;
	}
	event("ioctl op=%s value=%d err=%d", op, value, err);
	reply(wd.client, err, value);
}

static void do_client(void)
{
	char buf[256];
	ssize_t n = recv(wd.client, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && (size_t)n == sizeof(struct fakewd_req) &&
	    memcmp(buf, FAKEWD_MAGIC, sizeof(FAKEWD_MAGIC)) == 0) {
		struct fakewd_req q;

		memcpy(&q, buf, sizeof(q));
		do_ioctl(&q);
		return;
	}
	if (n > 0) {
		/* Linux's watchdog_write(): the last 'V' arms the magic close */
		wd.expect_close = false;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == 'V')
				wd.expect_close = true;
		ping();
		event("write bytes=%.*s", (int)n, buf);
		return;
	}
	/* closed (n == 0) or broken */
	if (wd.running && wd.expect_close && opt.magicclose)
		wd.running = false;
	event("close magic=%d running=%d", wd.expect_close ? 1 : 0, wd.running ? 1 : 0);
	close(wd.client);
	wd.client = -1;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: fake-watchdog --socket PATH --log FILE [--timeout S] "
	                "[--max-timeout S] [--no-settimeout] [--no-magicclose] "
	                "[--identity TEXT] [--kill-pidfile FILE]...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct sigaction act;
	const char *log_path = NULL;
	int lfd, i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--no-settimeout") == 0)
			opt.settimeout = false;
		else if (strcmp(a, "--no-magicclose") == 0)
			opt.magicclose = false;
		else if (v == NULL)
			return usage();
		else if (strcmp(a, "--socket") == 0)
			opt.socket_path = argv[++i];
		else if (strcmp(a, "--log") == 0)
			log_path = argv[++i];
		else if (strcmp(a, "--timeout") == 0)
			opt.timeout = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(a, "--max-timeout") == 0)
			opt.max_timeout = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(a, "--identity") == 0)
			opt.identity = argv[++i];
		else if (strcmp(a, "--kill-pidfile") == 0 && opt.n_pidfiles < MAX_PIDFILES)
			opt.pidfiles[opt.n_pidfiles++] = argv[++i];
		else
			return usage();
	}
	if (opt.socket_path == NULL || log_path == NULL || opt.timeout < 1 ||
	    strlen(opt.socket_path) >= sizeof(sa.sun_path))
		return usage();
	opt.log = fopen(log_path, "a");
	if (opt.log == NULL) {
		perror(log_path);
		return 1;
	}
	wd.timeout = opt.timeout;

	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	memcpy(sa.sun_path, opt.socket_path, strlen(opt.socket_path) + 1);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	(void)unlink(opt.socket_path);
	if (lfd == -1 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    chmod(opt.socket_path, 0666) == -1 || listen(lfd, 8) == -1) {
		perror(opt.socket_path);
		return 1;
	}
	event("listening path=%s timeout=%d", opt.socket_path, opt.timeout);

	while (!stop) {
		struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN},
		                        {.fd = wd.client, .events = POLLIN}};
		int wait_ms = -1;

		if (wd.running) {
			int64_t left = wd.expires_ms - now_ms();

			if (left <= 0) {
				event("fired pid=%d timeout=%d late_ms=%lld", (int)wd.pid,
				      wd.timeout, (long long)-left);
				reset_node(opener_alive() ? wd.pid : 0);
				wd.running = false;
				wd.timeout = opt.timeout;
				continue;
			}
			wait_ms = left > 1000 ? 1000 : (int)left;
		}
		if (poll(pfd, wd.client >= 0 ? 2 : 1, wait_ms) == -1) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (pfd[0].revents & POLLIN)
			do_accept(lfd);
		else if (wd.client >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			do_client();
	}
	(void)unlink(opt.socket_path);
	event("exit");
	return 0;
}
