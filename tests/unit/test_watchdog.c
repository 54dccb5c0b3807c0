/*
 * Unit tests for core/watchdog.c: Patroni 3.0.2's Watchdog and
 * LinuxWatchdogDevice rules against a simulated device.  The module's
 * open/ioctl/write/close/access calls are redirected with -Wl,--wrap
 * (tests/local.mk) to the device below when they name DEV_PATH or its
 * descriptor, and reach the C library otherwise; its log lines are captured
 * the same way (--wrap=pgkeel_log).  The real device protocol, against a
 * fake that kills the process, is tests/integration/test_watchdog.py.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "util.h"
#include "watchdog.h"

#define DEV_PATH "/fake/watchdog"
#define DEV_FD   1013
#define ALL_OPTS (WDIOF_SETTIMEOUT | WDIOF_MAGICCLOSE | WDIOF_KEEPALIVEPING)

/* ------------------------------------------------------------ the device */

static struct {
	bool exists;       /* access(W_OK) and open succeed */
	int open_errno;    /* open fails with this (exists or not) */
	uint32_t options;  /* WDIOF_* */
	int support_errno; /* WDIOC_GETSUPPORT fails */
	int set_errno;     /* WDIOC_SETTIMEOUT fails */
	int write_errno;   /* write fails */
	int timeout;       /* in force */
	bool is_open;
	char trace[1024]; /* "open support set=25 get=25 w1 wV close" ... */
} dev;

static char logged[8192]; /* "LEVEL: message\n" ... */

static void trace(const char *fmt, ...) PGKEEL_PRINTF(1, 2);
static void trace(const char *fmt, ...)
{
	size_t n = strlen(dev.trace);
	va_list ap;

	if (n > 0 && n + 1 < sizeof(dev.trace))
		dev.trace[n++] = ' ';
	va_start(ap, fmt);
	(void)vsnprintf(dev.trace + n, sizeof(dev.trace) - n, fmt, ap);
	va_end(ap);
}

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	if (strcmp(path, DEV_PATH) == 0) {
		assert_int_equal(flags & O_ACCMODE, O_WRONLY);
		assert_true(flags & O_CLOEXEC);
		assert_false(dev.is_open); /* never opened twice */
		trace("open");
		if (dev.open_errno != 0 || !dev.exists) {
			errno = dev.open_errno != 0 ? dev.open_errno : ENOENT;
			return -1;
		}
		dev.is_open = true;
		return DEV_FD;
	}
	va_start(ap, flags);
	mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	return __real_open(path, flags, mode);
}

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != DEV_FD)
		return __real_ioctl(fd, req, arg);
	assert_true(dev.is_open);
	if (req == WDIOC_GETSUPPORT) {
		struct watchdog_info *info = arg;

		trace("support");
		if (dev.support_errno != 0) {
			errno = dev.support_errno;
			return -1;
		}
		memset(info, 0, sizeof(*info));
		info->options = dev.options;
		memcpy(info->identity, "unit dev", 8);
		return 0;
	}
	if (req == WDIOC_SETTIMEOUT) {
		trace("set=%d", *(int *)arg);
		if (dev.set_errno != 0 || !(dev.options & WDIOF_SETTIMEOUT)) {
			errno = dev.set_errno != 0 ? dev.set_errno : EOPNOTSUPP;
			return -1;
		}
		dev.timeout = *(int *)arg;
		return 0;
	}
	if (req == WDIOC_GETTIMEOUT) {
		trace("get=%d", dev.timeout);
		*(int *)arg = dev.timeout;
		return 0;
	}
	fail_msg("unexpected ioctl 0x%lx", req);
	return -1;
}

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	if (fd != DEV_FD)
		return __real_write(fd, buf, n);
	assert_true(dev.is_open);
	assert_int_equal(n, 1);
	trace("w%c", *(const char *)buf);
	if (dev.write_errno != 0) {
		errno = dev.write_errno;
		return -1;
	}
	return 1;
}

int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_close(int fd)
{
	if (fd != DEV_FD)
		return __real_close(fd);
	assert_true(dev.is_open);
	trace("close");
	dev.is_open = false;
	return 0;
}

int __real_access(const char *path, int mode);
int __wrap_access(const char *path, int mode);
int __wrap_access(const char *path, int mode)
{
	if (strcmp(path, DEV_PATH) != 0)
		return __real_access(path, mode);
	assert_int_equal(mode, W_OK);
	if (dev.exists)
		return 0;
	errno = ENOENT;
	return -1;
}

void __wrap_pgkeel_log(enum pgkeel_log_level level, const char *fmt, ...);
void __wrap_pgkeel_log(enum pgkeel_log_level level, const char *fmt, ...)
{
	size_t n = strlen(logged);
	va_list ap;

	(void)pgkeel_fmt(logged + n, sizeof(logged) - n, "%s: ", pgkeel_log_level_name(level));
	n = strlen(logged);
	va_start(ap, fmt);
	(void)vsnprintf(logged + n, sizeof(logged) - n, fmt, ap);
	va_end(ap);
	n = strlen(logged);
	(void)pgkeel_fmt(logged + n, sizeof(logged) - n, "\n");
}

static int reset(void **state)
{
	(void)state;
	memset(&dev, 0, sizeof(dev));
	dev.exists = true;
	dev.options = ALL_OPTS;
	dev.timeout = 60; /* the driver's default */
	logged[0] = '\0';
	return 0;
}

static void clear_trace(void)
{
	dev.trace[0] = '\0';
	logged[0] = '\0';
}

#define assert_logged(s)                                                                           \
	do {                                                                                       \
		if (strstr(logged, (s)) == NULL)                                                   \
			fail_msg("not logged: \"%s\"; the log:\n%s", (s), logged);                 \
	} while (0)

/* ttl 30, loop_wait 10, safety_margin 5: timeout 25, slack 15 (Patroni's defaults). */
static void settings(struct pgkeel_watchdog_settings *s, enum pgkeel_watchdog_mode mode)
{
	pgkeel_watchdog_settings_default(s, 30, 10);
	s->mode = mode;
	(void)pgkeel_fmt(s->device, sizeof(s->device), "%s", DEV_PATH);
}

static struct pgkeel_watchdog *new_wd(enum pgkeel_watchdog_mode mode)
{
	struct pgkeel_watchdog_settings s;
	struct pgkeel_watchdog *w;

	settings(&s, mode);
	w = pgkeel_watchdog_new(&s);
	assert_non_null(w);
	return w;
}

/* ------------------------------------------------------------ settings */

static void test_timeout_rules(void **state)
{
	struct pgkeel_watchdog_settings s;

	(void)state;
	pgkeel_watchdog_settings_default(&s, 30, 10);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_AUTOMATIC);
	assert_string_equal(s.device, "/dev/watchdog");
	assert_int_equal(s.safety_margin, 5);
	assert_int_equal(pgkeel_watchdog_timeout(&s), 25);
	assert_int_equal(pgkeel_watchdog_timing_slack(&s), 15);
	s.safety_margin = -1; /* ttl / 2 */
	assert_int_equal(pgkeel_watchdog_timeout(&s), 15);
	assert_int_equal(pgkeel_watchdog_timing_slack(&s), 5);
	s.ttl = 11; /* Python's int(11 // 2) */
	assert_int_equal(pgkeel_watchdog_timeout(&s), 5);
	s.ttl = 10;
	s.loop_wait = 2;
	s.safety_margin = 0;
	assert_int_equal(pgkeel_watchdog_timeout(&s), 10);
	s.safety_margin = 9;
	assert_int_equal(pgkeel_watchdog_timing_slack(&s), -1);
	assert_string_equal(pgkeel_watchdog_mode_name(PGKEEL_WATCHDOG_OFF), "off");
	assert_string_equal(pgkeel_watchdog_mode_name(PGKEEL_WATCHDOG_AUTOMATIC), "automatic");
	assert_string_equal(pgkeel_watchdog_mode_name(PGKEEL_WATCHDOG_REQUIRED), "required");
}

static struct pgkeel_config *load(const char *extra)
{
	struct pgkeel_config_opts opts = {0};
	struct pgkeel_config *c;
	struct pgkeel_diag d;
	char path[] = "/tmp/pgkeel-test-watchdog-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(
	    f,
	    "scope: s\nname: pg-1\nbootstrap:\n  dcs: {ttl: 40, loop_wait: 4, retry_timeout: 5}\n"
	    "restapi:\n  listen: 127.0.0.1:8008\n  connect_address: 127.0.0.1:8008\n"
	    "etcd3:\n  hosts: 127.0.0.1:2379\n"
	    "postgresql:\n  listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432\n"
	    "  data_dir: /tmp/nonexistent-pgkeel\n"
	    "  authentication:\n    superuser: {username: postgres, password: x}\n"
	    "    replication: {username: r, password: y}\n%s",
	    extra);
	fclose(f);
	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	unlink(path);
	if (c == NULL) {
		pgkeel_diag_log(&d);
		fail_msg("config did not load");
	}
	pgkeel_diag_clear(&d);
	return c;
}

static void from_config(const char *extra, struct pgkeel_watchdog_settings *s)
{
	struct pgkeel_config *c = load(extra);

	pgkeel_watchdog_settings_from_config(c, s);
	assert_int_equal(s->ttl, c->ttl);
	assert_int_equal(s->loop_wait, c->loop_wait);
	pgkeel_config_unref(c);
}

static void test_settings_from_config(void **state)
{
	struct pgkeel_watchdog_settings s;

	(void)state;
	from_config("", &s); /* no section: automatic on /dev/watchdog */
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_AUTOMATIC);
	assert_true(s.has_device);
	assert_string_equal(s.device, "/dev/watchdog");
	assert_int_equal(s.safety_margin, 5);
	assert_int_equal(s.ttl, 40);
	assert_int_equal(s.loop_wait, 4);
	assert_int_equal(pgkeel_watchdog_timeout(&s), 35);

	from_config("watchdog:\n  mode: required\n  device: /dev/watchdog1\n  safety_margin: -1\n",
	            &s);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_REQUIRED);
	assert_string_equal(s.device, "/dev/watchdog1");
	assert_int_equal(s.safety_margin, -1);
	assert_int_equal(pgkeel_watchdog_timeout(&s), 20);

	from_config("watchdog:\n  mode: off\n", &s); /* YAML's boolean false */
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_OFF);
	from_config("watchdog:\n  mode: 'off'\n", &s);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_OFF);
	from_config("watchdog:\n  mode: Require\n", &s);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_REQUIRED);
	from_config("watchdog:\n  mode: auto\n", &s);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_AUTOMATIC);
	from_config("watchdog:\n  mode: disabled\n", &s);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_OFF);
	assert_null(strstr(logged, "not recognized"));
	from_config("watchdog:\n  mode: sometimes\n", &s);
	assert_int_equal(s.mode, PGKEEL_WATCHDOG_OFF);
	assert_logged("WARNING: Watchdog mode sometimes not recognized, disabling watchdog");

	from_config("watchdog:\n  mode: required\n  driver: testing\n", &s);
	assert_false(s.has_device);
	from_config("watchdog:\n  driver: default\n", &s);
	assert_true(s.has_device);
}

/* ------------------------------------------------------------ the device protocol */

static void test_activate_keepalive_disable(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);

	(void)state;
	assert_string_equal(dev.trace, ""); /* nothing opened before activation */
	assert_false(pgkeel_watchdog_is_running(w));
	assert_true(pgkeel_watchdog_is_healthy(w));
	pgkeel_watchdog_keepalive(w); /* not active: nothing */
	assert_string_equal(dev.trace, "");

	assert_true(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support set=25 get=25");
	assert_logged("INFO: unit dev at /fake/watchdog activated with 25 second timeout, "
	              "timing slack 15 seconds");
	assert_true(pgkeel_watchdog_is_running(w));
	assert_int_equal(pgkeel_watchdog_running_timeout(w), 25);

	clear_trace();
	pgkeel_watchdog_keepalive(w);
	pgkeel_watchdog_keepalive(w);
	assert_string_equal(dev.trace, "w1 w1");

	clear_trace();
	assert_true(pgkeel_watchdog_activate(w)); /* running: no second open */
	assert_string_equal(dev.trace, "set=25 get=25");

	clear_trace();
	pgkeel_watchdog_disable(w);
	assert_string_equal(dev.trace, "wV close"); /* the magic close */
	assert_false(pgkeel_watchdog_is_running(w));
	assert_int_equal(pgkeel_watchdog_running_timeout(w), 0);
	pgkeel_watchdog_keepalive(w); /* disabled: not fed */
	pgkeel_watchdog_disable(w);   /* twice: nothing */
	assert_string_equal(dev.trace, "wV close");

	clear_trace();
	assert_true(pgkeel_watchdog_activate(w)); /* armed again */
	assert_string_equal(dev.trace, "open support set=25 get=25");
	pgkeel_watchdog_disable(w);
	pgkeel_watchdog_free(w);
	assert_false(dev.is_open);
	pgkeel_watchdog_free(NULL);
}

static void test_safety_margin_half_ttl(void **state)
{
	struct pgkeel_watchdog_settings s;
	struct pgkeel_watchdog *w;

	(void)state;
	settings(&s, PGKEEL_WATCHDOG_REQUIRED);
	s.safety_margin = -1;
	w = pgkeel_watchdog_new(&s);
	assert_true(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support set=15 get=15");
	assert_logged("activated with 15 second timeout, timing slack 5 seconds");
	pgkeel_watchdog_disable(w);
	pgkeel_watchdog_free(w);
}

/* Closing without 'V' (exit, crash) leaves the device armed. */
static void test_free_leaves_it_running(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_REQUIRED);

	(void)state;
	assert_true(pgkeel_watchdog_activate(w));
	clear_trace();
	pgkeel_watchdog_free(w);
	assert_string_equal(dev.trace, "close");
	assert_logged(
	    "WARNING: Leaving unit dev at /fake/watchdog running: it fires in 25 seconds");
}

static void test_off(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_OFF);

	(void)state;
	assert_true(pgkeel_watchdog_activate(w));
	pgkeel_watchdog_keepalive(w);
	pgkeel_watchdog_disable(w);
	assert_false(pgkeel_watchdog_is_running(w));
	assert_true(pgkeel_watchdog_is_healthy(w));
	assert_string_equal(dev.trace, "");
	assert_string_equal(logged, "");
	pgkeel_watchdog_free(w);
}

/* ------------------------------------------------------------ unusable devices */

static void test_required_missing_device(void **state)
{
	struct pgkeel_watchdog *w;

	(void)state;
	dev.exists = false;
	w = new_wd(PGKEEL_WATCHDOG_REQUIRED);
	assert_false(pgkeel_watchdog_is_healthy(w)); /* members see watchdog_failed */
	assert_false(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open");
	assert_logged("WARNING: Could not activate Linux watchdog device at /fake/watchdog: Can't "
	              "open watchdog device: [Errno 2] No such file or directory: "
	              "'/fake/watchdog'");
	assert_logged("ERROR: Configuration requires watchdog, but watchdog could not be "
	              "configured.");
	assert_false(pgkeel_watchdog_is_running(w));
	assert_false(pgkeel_watchdog_is_healthy(w));

	/* the device appears: not tried again while the settings are the same */
	dev.exists = true;
	assert_false(pgkeel_watchdog_is_healthy(w));
	clear_trace();
	assert_false(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "");
	pgkeel_watchdog_free(w);
}

static void test_required_unsupported_driver(void **state)
{
	struct pgkeel_watchdog_settings s;
	struct pgkeel_watchdog *w;

	(void)state;
	settings(&s, PGKEEL_WATCHDOG_REQUIRED);
	s.has_device = false;
	assert_null(pgkeel_watchdog_new(&s));
	assert_logged("ERROR: Configuration requires a watchdog, but watchdog is not supported on "
	              "this platform.");
	s.mode = PGKEEL_WATCHDOG_AUTOMATIC; /* runs without */
	w = pgkeel_watchdog_new(&s);
	assert_non_null(w);
	assert_true(pgkeel_watchdog_activate(w));
	assert_false(pgkeel_watchdog_is_running(w));
	assert_true(pgkeel_watchdog_is_healthy(w));
	assert_string_equal(dev.trace, "");
	pgkeel_watchdog_free(w);
}

static void test_automatic_missing_device(void **state)
{
	struct pgkeel_watchdog *w;

	(void)state;
	dev.open_errno = EACCES;
	w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	assert_true(pgkeel_watchdog_activate(w)); /* runs without one */
	assert_logged("WARNING: Could not activate Linux watchdog device at /fake/watchdog: Can't "
	              "open watchdog device: [Errno 13] Permission denied: '/fake/watchdog'");
	assert_null(strstr(logged, "ERROR"));
	assert_false(pgkeel_watchdog_is_running(w));
	assert_true(pgkeel_watchdog_is_healthy(w));
	clear_trace();
	assert_true(pgkeel_watchdog_activate(w)); /* no retry, no log spam */
	pgkeel_watchdog_keepalive(w);
	assert_string_equal(dev.trace, "");
	assert_string_equal(logged, "");
	pgkeel_watchdog_free(w);
}

/* Opened, then an ioctl fails: the device is stopped again, never left armed. */
static void test_ioctl_failure_closes(void **state)
{
	struct pgkeel_watchdog *w;

	(void)state;
	dev.support_errno = ENOTTY;
	w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	assert_true(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support wV close");
	assert_logged("WARNING: Could not activate Linux watchdog device at /fake/watchdog: Could "
	              "not get information about watchdog device: [Errno 25] Inappropriate ioctl "
	              "for device");
	assert_false(dev.is_open);
	pgkeel_watchdog_free(w);

	reset(NULL);
	dev.set_errno = EINVAL;
	w = new_wd(PGKEEL_WATCHDOG_REQUIRED);
	assert_false(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support set=25 wV close");
	assert_logged("Could not set timeout on watchdog device: [Errno 22] Invalid argument");
	assert_false(pgkeel_watchdog_is_healthy(w));
	pgkeel_watchdog_free(w);
}

/* A device that keeps its own timeout (no WDIOF_SETTIMEOUT). */
static void test_timeout_too_long(void **state)
{
	struct pgkeel_watchdog *w;

	(void)state;
	dev.options = WDIOF_MAGICCLOSE;
	w = new_wd(PGKEEL_WATCHDOG_REQUIRED);
	assert_false(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support get=60 wV close");
	assert_logged(
	    "ERROR: Configuration requires watchdog, but a safe watchdog timeout 25 could "
	    "not be configured. Watchdog timeout is 60.");
	assert_false(pgkeel_watchdog_is_running(w)); /* not promoted with it next cycle */
	assert_false(pgkeel_watchdog_is_healthy(w));
	pgkeel_watchdog_free(w);

	reset(NULL);
	dev.options = WDIOF_MAGICCLOSE;
	w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	assert_true(pgkeel_watchdog_activate(w)); /* best effort: runs with it */
	assert_logged(
	    "WARNING: Watchdog timeout 60 seconds does not ensure safe termination within "
	    "25 seconds");
	assert_true(pgkeel_watchdog_is_running(w));
	pgkeel_watchdog_disable(w);
	pgkeel_watchdog_free(w);
}

static void test_timeout_shorter_than_loop_wait(void **state)
{
	struct pgkeel_watchdog *w;

	(void)state;
	dev.options = WDIOF_MAGICCLOSE;
	dev.timeout = 5;
	w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	assert_true(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support get=5 wV close");
	assert_logged("ERROR: loop_wait of 10 seconds is too long for watchdog 5 second timeout");
	assert_logged("INFO: Disabling watchdog due to unsafe timeout.");
	assert_false(pgkeel_watchdog_is_running(w));
	pgkeel_watchdog_free(w);

	reset(NULL);
	dev.options = WDIOF_MAGICCLOSE;
	dev.timeout = 5;
	w = new_wd(PGKEEL_WATCHDOG_REQUIRED);
	assert_false(pgkeel_watchdog_activate(w));
	pgkeel_watchdog_free(w);
}

static void test_negative_slack(void **state)
{
	struct pgkeel_watchdog_settings s;
	struct pgkeel_watchdog *w;

	(void)state;
	settings(&s, PGKEEL_WATCHDOG_REQUIRED);
	s.ttl = 10; /* timeout 5 < loop_wait 10 */
	w = pgkeel_watchdog_new(&s);
	assert_false(pgkeel_watchdog_is_healthy(w));
	assert_false(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, ""); /* not even opened */
	assert_logged("WARNING: Watchdog not supported because leader TTL 10 is less than 2x "
	              "loop_wait 10");
	pgkeel_watchdog_free(w);
}

/* No magic close: fed once more on disable and left to fire. */
static void test_cannot_be_disabled(void **state)
{
	struct pgkeel_watchdog *w;

	(void)state;
	dev.options = WDIOF_SETTIMEOUT;
	w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	assert_true(pgkeel_watchdog_activate(w));
	assert_logged("WARNING: Watchdog implementation can't be disabled. Watchdog will trigger "
	              "after pgkeel loses leader key.");
	clear_trace();
	pgkeel_watchdog_disable(w);
	assert_string_equal(dev.trace, "w1 get=25 wV close");
	assert_logged(
	    "WARNING: Watchdog implementation can't be disabled. System will reboot after "
	    "25 seconds when watchdog times out.");
	pgkeel_watchdog_free(w);
}

static void test_keepalive_error(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);

	(void)state;
	assert_true(pgkeel_watchdog_activate(w));
	dev.write_errno = EIO;
	clear_trace();
	pgkeel_watchdog_keepalive(w);
	assert_logged("ERROR: Error while sending keepalive: Could not send watchdog keepalive: "
	              "[Errno 5] Input/output error");
	clear_trace();
	pgkeel_watchdog_disable(w); /* closed all the same */
	assert_string_equal(dev.trace, "wV close");
	assert_logged("ERROR: Error while disabling watchdog: Error while closing unit dev at "
	              "/fake/watchdog: [Errno 5] Input/output error");
	assert_false(dev.is_open);
	pgkeel_watchdog_free(w);
}

/* ------------------------------------------------------------ reloads */

static void test_reload_timeout_at_next_keepalive(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	struct pgkeel_watchdog_settings s;

	(void)state;
	assert_true(pgkeel_watchdog_activate(w));
	settings(&s, PGKEEL_WATCHDOG_AUTOMATIC);
	s.ttl = 40; /* a new ttl from the DCS */
	clear_trace();
	pgkeel_watchdog_reload(w, &s);
	assert_string_equal(dev.trace, ""); /* waits for a renewed lock */
	pgkeel_watchdog_keepalive(w);
	assert_string_equal(dev.trace, "w1 set=35 get=35");
	assert_logged("INFO: unit dev at /fake/watchdog updated with 35 second timeout, timing "
	              "slack 25 seconds");
	assert_int_equal(pgkeel_watchdog_running_timeout(w), 35);
	clear_trace();
	pgkeel_watchdog_keepalive(w); /* applied once */
	assert_string_equal(dev.trace, "w1");
	pgkeel_watchdog_disable(w);
	pgkeel_watchdog_free(w);
}

static void test_reload_off_and_on(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_REQUIRED);
	struct pgkeel_watchdog_settings s;

	(void)state;
	assert_true(pgkeel_watchdog_activate(w));
	settings(&s, PGKEEL_WATCHDOG_OFF);
	clear_trace();
	pgkeel_watchdog_reload(w, &s);
	assert_string_equal(dev.trace, "wV close"); /* at once */
	assert_false(pgkeel_watchdog_is_running(w));
	pgkeel_watchdog_keepalive(w);
	assert_string_equal(dev.trace, "wV close");

	settings(&s, PGKEEL_WATCHDOG_AUTOMATIC); /* back on while still the leader */
	pgkeel_watchdog_reload(w, &s);
	assert_true(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "wV close open support set=25 get=25");
	pgkeel_watchdog_disable(w);
	pgkeel_watchdog_free(w);
}

static void test_reload_device_while_active(void **state)
{
	struct pgkeel_watchdog *w = new_wd(PGKEEL_WATCHDOG_AUTOMATIC);
	struct pgkeel_watchdog_settings s;

	(void)state;
	assert_true(pgkeel_watchdog_activate(w));
	settings(&s, PGKEEL_WATCHDOG_AUTOMATIC);
	(void)pgkeel_fmt(s.device, sizeof(s.device), "/nonexistent/watchdog9");
	clear_trace();
	pgkeel_watchdog_reload(w, &s);
	assert_true(pgkeel_watchdog_is_running(w)); /* the old one until the next feed */
	pgkeel_watchdog_keepalive(w);
	assert_string_equal(dev.trace, "w1 wV close");
	assert_logged("Can't open watchdog device: [Errno 2] No such file or directory: "
	              "'/nonexistent/watchdog9'");
	assert_false(pgkeel_watchdog_is_running(w));
	pgkeel_watchdog_free(w);
}

/* A required watchdog that failed is healthy again once SIGHUP fixes the device. */
static void test_reload_fixes_failed_device(void **state)
{
	struct pgkeel_watchdog_settings s;
	struct pgkeel_watchdog *w;

	(void)state;
	settings(&s, PGKEEL_WATCHDOG_REQUIRED);
	(void)pgkeel_fmt(s.device, sizeof(s.device), "/nonexistent/watchdog9");
	w = pgkeel_watchdog_new(&s);
	assert_false(pgkeel_watchdog_activate(w));
	assert_false(pgkeel_watchdog_is_healthy(w));
	pgkeel_watchdog_reload(w, &s); /* the same settings: still failed */
	assert_false(pgkeel_watchdog_is_healthy(w));
	settings(&s, PGKEEL_WATCHDOG_REQUIRED);
	pgkeel_watchdog_reload(w, &s);
	assert_true(pgkeel_watchdog_is_healthy(w));
	clear_trace();
	assert_true(pgkeel_watchdog_activate(w));
	assert_string_equal(dev.trace, "open support set=25 get=25");
	pgkeel_watchdog_disable(w);
	pgkeel_watchdog_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_timeout_rules, reset),
	    cmocka_unit_test_setup(test_settings_from_config, reset),
	    cmocka_unit_test_setup(test_activate_keepalive_disable, reset),
	    cmocka_unit_test_setup(test_safety_margin_half_ttl, reset),
	    cmocka_unit_test_setup(test_free_leaves_it_running, reset),
	    cmocka_unit_test_setup(test_off, reset),
	    cmocka_unit_test_setup(test_required_missing_device, reset),
	    cmocka_unit_test_setup(test_required_unsupported_driver, reset),
	    cmocka_unit_test_setup(test_automatic_missing_device, reset),
	    cmocka_unit_test_setup(test_ioctl_failure_closes, reset),
	    cmocka_unit_test_setup(test_timeout_too_long, reset),
	    cmocka_unit_test_setup(test_timeout_shorter_than_loop_wait, reset),
	    cmocka_unit_test_setup(test_negative_slack, reset),
	    cmocka_unit_test_setup(test_cannot_be_disabled, reset),
	    cmocka_unit_test_setup(test_keepalive_error, reset),
	    cmocka_unit_test_setup(test_reload_timeout_at_next_keepalive, reset),
	    cmocka_unit_test_setup(test_reload_off_and_on, reset),
	    cmocka_unit_test_setup(test_reload_device_while_active, reset),
	    cmocka_unit_test_setup(test_reload_fixes_failed_device, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
