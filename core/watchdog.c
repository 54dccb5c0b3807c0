/*
 * watchdog: see watchdog.h.  Sections: settings, the device (Patroni's
 * LinuxWatchdogDevice and NullWatchdog), the facade (Patroni's Watchdog).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "util.h"
#include "watchdog.h"

/* NullWatchdog.get_timeout(): "a big enough number to not matter" */
#define NULL_TIMEOUT 1000000000
#define ERRLEN       512

/* ------------------------------------------------------------ settings */

const char *pgkeel_watchdog_mode_name(enum pgkeel_watchdog_mode m)
{
	switch (m) {
	case PGKEEL_WATCHDOG_AUTOMATIC:
		return "automatic";
	case PGKEEL_WATCHDOG_REQUIRED:
		return "required";
	default:
		return "off";
	}
}

/* Patroni's parse_mode (3.1's str() for values that are not strings). */
static enum pgkeel_watchdog_mode parse_mode(json_object *v)
{
	static const char *const required[] = {"require", "required"};
	static const char *const automatic[] = {"auto", "automatic"};
	static const char *const off[] = {"off", "disable", "disabled"};
	const char *s;
	size_t i;

	if (v == NULL)
		return PGKEEL_WATCHDOG_AUTOMATIC;
	if (json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v))
		return PGKEEL_WATCHDOG_OFF;
	if (json_object_is_type(v, json_type_boolean))
		s = "True";
	else if (json_object_is_type(v, json_type_string))
		s = json_object_get_string(v);
	else
		s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	for (i = 0; i < PGKEEL_ARRAY_LEN(required); i++)
		if (strcasecmp(s, required[i]) == 0)
			return PGKEEL_WATCHDOG_REQUIRED;
	for (i = 0; i < PGKEEL_ARRAY_LEN(automatic); i++)
		if (strcasecmp(s, automatic[i]) == 0)
			return PGKEEL_WATCHDOG_AUTOMATIC;
	for (i = 0; i < PGKEEL_ARRAY_LEN(off); i++)
		if (strcasecmp(s, off[i]) == 0)
			return PGKEEL_WATCHDOG_OFF;
	log_warning("Watchdog mode %s not recognized, disabling watchdog", s);
	return PGKEEL_WATCHDOG_OFF;
}

void pgkeel_watchdog_settings_default(struct pgkeel_watchdog_settings *s, int ttl, int loop_wait)
{
	memset(s, 0, sizeof(*s));
	s->mode = PGKEEL_WATCHDOG_AUTOMATIC;
	s->has_device = true;
	(void)pgkeel_fmt(s->device, sizeof(s->device), "%s", PGKEEL_WATCHDOG_DEFAULT_DEVICE);
	s->safety_margin = 5;
	s->ttl = ttl;
	s->loop_wait = loop_wait;
}

void pgkeel_watchdog_settings_from_config(const struct pgkeel_config *c,
                                          struct pgkeel_watchdog_settings *s)
{
	json_object *wd = pgkeel_json_path(c->effective, "watchdog");
	json_object *v;

	pgkeel_watchdog_settings_default(s, c->ttl, c->loop_wait);
	if (!json_object_is_type(wd, json_type_object))
		return;
	s->mode = parse_mode(json_object_object_get(wd, "mode"));
	v = json_object_object_get(wd, "device");
	if (json_object_is_type(v, json_type_string) &&
	    !pgkeel_fmt(s->device, sizeof(s->device), "%s", json_object_get_string(v))) {
		log_warning("watchdog.device is too long");
		s->device[0] = '\0';
	}
	v = json_object_object_get(wd, "safety_margin");
	if (v != NULL)
		s->safety_margin = json_object_get_int(v);
	v = json_object_object_get(wd, "driver");
	if (json_object_is_type(v, json_type_string))
		s->has_device = strcmp(json_object_get_string(v), "default") == 0;
}

int pgkeel_watchdog_timeout(const struct pgkeel_watchdog_settings *s)
{
	return s->safety_margin == -1 ? s->ttl / 2 : s->ttl - s->safety_margin;
}

int pgkeel_watchdog_timing_slack(const struct pgkeel_watchdog_settings *s)
{
	return pgkeel_watchdog_timeout(s) - s->loop_wait;
}

static bool same_device(const struct pgkeel_watchdog_settings *a,
                        const struct pgkeel_watchdog_settings *b)
{
	return a->has_device == b->has_device && strcmp(a->device, b->device) == 0;
}

static bool same_settings(const struct pgkeel_watchdog_settings *a,
                          const struct pgkeel_watchdog_settings *b)
{
	return a->mode == b->mode && same_device(a, b) && a->safety_margin == b->safety_margin &&
	       a->ttl == b->ttl && a->loop_wait == b->loop_wait;
}

/* ------------------------------------------------------------ the device */

struct pgkeel_watchdog {
	pthread_mutex_t mu;
	struct pgkeel_watchdog_settings config;        /* the latest settings */
	struct pgkeel_watchdog_settings active_config; /* those last applied */
	bool active; /* activate() called and no disable() since */

	/* The implementation: the Linux device, or none (Patroni's NullWatchdog). */
	bool has_device;
	char device[PATH_MAX];
	int fd; /* -1: closed */
	bool have_info;
	struct watchdog_info info;
	int timeout; /* reported by the device at activation */
};

/* Python's OSError text: "[Errno 2] No such file or directory". */
static void set_oserror(char *err, const char *what, int e)
{
	(void)pgkeel_fmt(err, ERRLEN, "%s: [Errno %d] %s", what, e, strerror(e));
}

static bool dev_ioctl(struct pgkeel_watchdog *w, unsigned long req, void *arg, const char *what,
                      char *err)
{
	if (w->fd < 0) {
		(void)pgkeel_fmt(err, ERRLEN, "%s: Watchdog device is closed", what);
		return false;
	}
	if (ioctl(w->fd, req, arg) == -1) {
		set_oserror(err, what, errno);
		return false;
	}
	return true;
}

static bool dev_support(struct pgkeel_watchdog *w, char *err)
{
	if (w->have_info)
		return true;
	memset(&w->info, 0, sizeof(w->info));
	if (!dev_ioctl(w, WDIOC_GETSUPPORT, &w->info,
	               "Could not get information about watchdog device", err))
		return false;
	w->have_info = true;
	return true;
}

static bool can_be_disabled(const struct pgkeel_watchdog *w)
{
	return w->have_info && (w->info.options & WDIOF_MAGICCLOSE) != 0;
}

static bool is_running(const struct pgkeel_watchdog *w)
{
	return w->has_device && w->fd >= 0;
}

/* Patroni's describe(): "<identity>[ (firmware N)][ at <device>]" (from the
 * support information already read: a failed query is not repeated). */
static const char *describe(const struct pgkeel_watchdog *w, char *buf, size_t len)
{
	char fw[32] = "", at[PATH_MAX + 8] = "";
	const char *identity = "Linux watchdog device";
	char id[sizeof(w->info.identity) + 1];

	if (!w->has_device)
		return "NullWatchdog";
	if (w->fd >= 0 && w->have_info) {
		memcpy(id, w->info.identity, sizeof(w->info.identity));
		id[sizeof(w->info.identity)] = '\0';
		identity = id;
		if (w->info.firmware_version != 0)
			(void)pgkeel_fmt(fw, sizeof(fw), " (firmware %u)",
			                 (unsigned)w->info.firmware_version);
	}
	if (strcmp(w->device, PGKEEL_WATCHDOG_DEFAULT_DEVICE) != 0)
		(void)pgkeel_fmt(at, sizeof(at), " at %s", w->device);
	(void)pgkeel_fmt(buf, len, "%s%s%s", identity, fw, at);
	return buf;
}

static bool dev_open(struct pgkeel_watchdog *w, char *err)
{
	int fd;

	if (!w->has_device || w->fd >= 0)
		return true; /* none, or already open: never a second open (EBUSY) */
	fd = open(w->device, O_WRONLY | O_CLOEXEC);
	if (fd == -1) {
		int e = errno;

		(void)pgkeel_fmt(err, ERRLEN, "Can't open watchdog device: [Errno %d] %s: '%s'", e,
		                 strerror(e), w->device);
		return false;
	}
	w->fd = fd;
	w->have_info = false;
	return true;
}

static bool dev_write(struct pgkeel_watchdog *w, char c, const char *what, char *err)
{
	ssize_t n;

	do
		n = write(w->fd, &c, 1);
	while (n == -1 && errno == EINTR);
	if (n == 1)
		return true;
	set_oserror(err, what, n == -1 ? errno : EIO);
	return false;
}

static bool dev_keepalive(struct pgkeel_watchdog *w, char *err)
{
	if (!is_running(w))
		return true;
	return dev_write(w, '1', "Could not send watchdog keepalive", err);
}

/* Magic close; the descriptor is closed even if 'V' could not be written. */
static bool dev_close(struct pgkeel_watchdog *w, char *err)
{
	char what[PATH_MAX + 64], desc[PATH_MAX + 64];
	bool ok;

	if (w->fd < 0)
		return true;
	(void)pgkeel_fmt(what, sizeof(what), "Error while closing %s",
	                 describe(w, desc, sizeof(desc)));
	ok = dev_write(w, 'V', what, err);
	if (close(w->fd) == -1 && ok) {
		set_oserror(err, what, errno);
		ok = false;
	}
	w->fd = -1;
	w->have_info = false;
	return ok;
}

static bool dev_set_timeout(struct pgkeel_watchdog *w, int timeout, char *err)
{
	if (!w->has_device) {
		(void)pgkeel_fmt(err, ERRLEN, "Setting timeout is not supported on NullWatchdog");
		return false;
	}
	if (!(0 < timeout && timeout < 0xFFFF)) {
		(void)pgkeel_fmt(err, ERRLEN,
		                 "Invalid timeout %d. Supported values are between 1 and 65535",
		                 timeout);
		return false;
	}
	return dev_ioctl(w, WDIOC_SETTIMEOUT, &timeout, "Could not set timeout on watchdog device",
	                 err);
}

static bool dev_get_timeout(struct pgkeel_watchdog *w, int *timeout, char *err)
{
	*timeout = NULL_TIMEOUT;
	if (!w->has_device)
		return true;
	return dev_ioctl(w, WDIOC_GETTIMEOUT, timeout, "Could not get timeout on watchdog device",
	                 err);
}

/* Switch to "no device"; a device left open is stopped first (see the header). */
static void use_null(struct pgkeel_watchdog *w)
{
	char err[ERRLEN];

	if (w->fd >= 0 && !dev_close(w, err))
		log_error("%s", err);
	w->has_device = false;
}

/* Patroni's get_impl(): the Linux device for driver default, else none. */
static void use_impl(struct pgkeel_watchdog *w, const struct pgkeel_watchdog_settings *s)
{
	use_null(w);
	w->has_device = s->mode != PGKEEL_WATCHDOG_OFF && s->has_device;
	(void)pgkeel_fmt(w->device, sizeof(w->device), "%s", s->device);
}

/* ------------------------------------------------------------ the facade */

/* Patroni's _set_timeout(); false: a device error (err). */
static bool set_timeout(struct pgkeel_watchdog *w, int *actual, char *err)
{
	const struct pgkeel_watchdog_settings *c = &w->config;

	*actual = NULL_TIMEOUT;
	if (!w->has_device)
		return true;
	if (!dev_support(w, err))
		return false;
	if ((w->info.options & WDIOF_SETTIMEOUT) &&
	    !dev_set_timeout(w, pgkeel_watchdog_timeout(c), err))
		return false;
	if (!dev_get_timeout(w, actual, err))
		return false;
	if (*actual < c->loop_wait) {
		log_error("loop_wait of %d seconds is too long for watchdog %d second timeout",
		          c->loop_wait, *actual);
		if (can_be_disabled(w)) {
			log_info("Disabling watchdog due to unsafe timeout.");
			use_null(w);
			*actual = NULL_TIMEOUT;
		}
	}
	return true;
}

/* Patroni's _activate(). */
static bool do_activate(struct pgkeel_watchdog *w)
{
	const struct pgkeel_watchdog_settings *c = &w->config;
	int timeout = pgkeel_watchdog_timeout(c), slack = pgkeel_watchdog_timing_slack(c);
	int actual = NULL_TIMEOUT;
	char err[ERRLEN], desc[PATH_MAX + 64];

	w->active_config = w->config;
	if (slack < 0 && c->mode != PGKEEL_WATCHDOG_OFF) {
		log_warning(
		    "Watchdog not supported because leader TTL %d is less than 2x loop_wait %d",
		    c->ttl, c->loop_wait);
		use_null(w);
	}
	if (!dev_open(w, err) || !set_timeout(w, &actual, err)) {
		log_warning("Could not activate %s: %s", describe(w, desc, sizeof(desc)), err);
		use_null(w);
		actual = NULL_TIMEOUT;
	}
	if (is_running(w) && !can_be_disabled(w))
		log_warning(
		    "Watchdog implementation can't be disabled. Watchdog will trigger after "
		    "pgkeel loses leader key.");
	if (!is_running(w) || actual > timeout) {
		if (c->mode == PGKEEL_WATCHDOG_REQUIRED) {
			if (!w->has_device)
				log_error("Configuration requires watchdog, but watchdog could not "
				          "be configured.");
			else
				log_error(
				    "Configuration requires watchdog, but a safe watchdog "
				    "timeout %d could not be configured. Watchdog timeout is %d.",
				    timeout, actual);
			use_null(w);
			return false;
		}
		if (w->has_device)
			log_warning("Watchdog timeout %d seconds does not ensure safe termination "
			            "within %d seconds",
			            actual, timeout);
	}
	w->timeout = is_running(w) ? actual : 0;
	if (is_running(w))
		log_info("%s activated with %d second timeout, timing slack %d seconds",
		         describe(w, desc, sizeof(desc)), actual, slack);
	return true;
}

/* Patroni's _disable(). */
static void do_disable(struct pgkeel_watchdog *w)
{
	char err[ERRLEN];
	int t;

	if (is_running(w) && !can_be_disabled(w)) {
		if (!dev_keepalive(w, err) || !dev_get_timeout(w, &t, err)) {
			log_error("Error while disabling watchdog: %s", err);
			return;
		}
		log_warning(
		    "Watchdog implementation can't be disabled. System will reboot after %d "
		    "seconds when watchdog times out.",
		    t);
	}
	if (!dev_close(w, err))
		log_error("Error while disabling watchdog: %s", err);
	w->timeout = 0;
}

struct pgkeel_watchdog *pgkeel_watchdog_new(const struct pgkeel_watchdog_settings *s)
{
	struct pgkeel_watchdog *w;

	if (s->mode == PGKEEL_WATCHDOG_REQUIRED && !s->has_device) {
		log_error(
		    "Configuration requires a watchdog, but watchdog is not supported on this "
		    "platform.");
		return NULL;
	}
	w = pgkeel_xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	w->fd = -1;
	w->config = w->active_config = *s;
	use_impl(w, s);
	return w;
}

void pgkeel_watchdog_free(struct pgkeel_watchdog *w)
{
	char desc[PATH_MAX + 64];

	if (w == NULL)
		return;
	if (w->fd >= 0) {
		log_warning("Leaving %s running: it fires in %d seconds",
		            describe(w, desc, sizeof(desc)), w->timeout);
		(void)close(w->fd);
	}
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void pgkeel_watchdog_reload(struct pgkeel_watchdog *w, const struct pgkeel_watchdog_settings *s)
{
	pthread_mutex_lock(&w->mu);
	w->config = *s;
	if (s->mode == PGKEEL_WATCHDOG_OFF) {
		/* turning it off is always immediate */
		if (w->active)
			do_disable(w);
		w->active_config = *s;
		use_null(w);
	}
	/* Nothing running: apply now.  A failed device is tried again once the
	 * settings change (Patroni kept "no device" unless the watchdog was
	 * inactive and its path changed, so a fixed configuration stayed
	 * unhealthy until a restart). */
	if ((!w->active || !is_running(w)) && !same_settings(s, &w->active_config)) {
		use_impl(w, s);
		w->active_config = *s;
	}
	pthread_mutex_unlock(&w->mu);
}

bool pgkeel_watchdog_activate(struct pgkeel_watchdog *w)
{
	bool ok;

	pthread_mutex_lock(&w->mu);
	w->active = true;
	ok = do_activate(w);
	pthread_mutex_unlock(&w->mu);
	return ok;
}

/* After a feed: the changes a reload left for an active watchdog. */
static void apply_pending(struct pgkeel_watchdog *w)
{
	const struct pgkeel_watchdog_settings *c = &w->config, *a = &w->active_config;
	char err[ERRLEN], desc[PATH_MAX + 64];
	int t;

	if (c->mode != PGKEEL_WATCHDOG_OFF && a->mode == PGKEEL_WATCHDOG_OFF) {
		use_impl(w, c);
		(void)do_activate(w);
	}
	if (!same_device(c, a)) {
		do_disable(w);
		use_impl(w, c);
		(void)do_activate(w);
	}
	if (pgkeel_watchdog_timeout(c) != pgkeel_watchdog_timeout(a) && is_running(w)) {
		if (!dev_set_timeout(w, pgkeel_watchdog_timeout(c), err) ||
		    !dev_get_timeout(w, &t, err)) {
			log_error("Error while sending keepalive: %s", err);
			return; /* tried again at the next keepalive */
		}
		w->timeout = t;
		log_info("%s updated with %d second timeout, timing slack %d seconds",
		         describe(w, desc, sizeof(desc)), t, pgkeel_watchdog_timing_slack(c));
	}
	w->active_config = *c;
}

void pgkeel_watchdog_keepalive(struct pgkeel_watchdog *w)
{
	char err[ERRLEN];

	pthread_mutex_lock(&w->mu);
	if (w->active && !dev_keepalive(w, err))
		log_error("Error while sending keepalive: %s", err);
	else if (w->active && !same_settings(&w->config, &w->active_config))
		apply_pending(w);
	pthread_mutex_unlock(&w->mu);
}

void pgkeel_watchdog_disable(struct pgkeel_watchdog *w)
{
	pthread_mutex_lock(&w->mu);
	do_disable(w);
	w->active = false;
	pthread_mutex_unlock(&w->mu);
}

bool pgkeel_watchdog_is_running(struct pgkeel_watchdog *w)
{
	bool r;

	pthread_mutex_lock(&w->mu);
	r = is_running(w);
	pthread_mutex_unlock(&w->mu);
	return r;
}

bool pgkeel_watchdog_is_healthy(struct pgkeel_watchdog *w)
{
	bool r;

	pthread_mutex_lock(&w->mu);
	r = w->config.mode != PGKEEL_WATCHDOG_REQUIRED ||
	    (pgkeel_watchdog_timing_slack(&w->config) >= 0 && w->has_device &&
	     access(w->device, W_OK) == 0);
	pthread_mutex_unlock(&w->mu);
	return r;
}

int pgkeel_watchdog_running_timeout(struct pgkeel_watchdog *w)
{
	int t;

	pthread_mutex_lock(&w->mu);
	t = is_running(w) ? w->timeout : 0;
	pthread_mutex_unlock(&w->mu);
	return t;
}
