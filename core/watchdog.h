/*
 * watchdog: the Linux watchdog device that resets the machine when the
 * leader stops renewing its lock (spec patroni-interfaces.md §3.8; Patroni
 * 3.0.2 patroni/watchdog/base.py and linux.py).
 *
 * Settings (`watchdog:` section, local only; ttl and loop_wait from the
 * effective configuration):
 *   mode           off | automatic | required.  YAML's `off` (the boolean
 *                  false), "disable", "disabled" are off; "auto" is automatic,
 *                  "require" required; anything else: a warning and off.
 *   device         the device to open (default /dev/watchdog).
 *   safety_margin  timeout = ttl - safety_margin; -1: timeout = ttl / 2.
 *                  timing slack = timeout - loop_wait; a negative slack
 *                  makes the watchdog unusable ("Watchdog not supported
 *                  because leader TTL ...").
 *   driver         "default" is the Linux device; any other driver has no
 *                  device (Patroni's NullWatchdog), which mode required
 *                  refuses at start-up.
 *
 * The device (Linux's watchdog API): open(O_WRONLY) starts it;
 * WDIOC_GETSUPPORT tells whether it takes WDIOC_SETTIMEOUT and the magic
 * close; WDIOC_SETTIMEOUT sets the timeout, WDIOC_GETTIMEOUT reads the one
 * in force; writing '1' feeds it; writing 'V' then closing stops it (magic
 * close).  A descriptor closed without 'V' (or by the death of the process)
 * leaves it running: the machine resets when the timeout passes.
 *
 * How the HA loop answers ha.h:
 *   fact watchdog_running     pgkeel_watchdog_is_running()
 *   fact watchdog_healthy     pgkeel_watchdog_is_healthy()
 *   REQ_WATCHDOG_ACTIVATE     pgkeel_watchdog_activate() ? OK : FAIL
 *   FX_WATCHDOG_KEEPALIVE     pgkeel_watchdog_keepalive()
 *   FX_WATCHDOG_DISABLE       pgkeel_watchdog_disable()
 *   REST `watchdog_failed`    !pgkeel_watchdog_is_healthy()
 * plus pgkeel_watchdog_reload() whenever the configuration changes (SIGHUP,
 * a new DCS config: ttl and loop_wait move the timeout), a disable once a
 * demotion or the shutdown has stopped PostgreSQL (Patroni's on_safepoint),
 * and pgkeel_watchdog_free() at exit.
 *
 * Patroni's rules, kept: activate() marks the watchdog active even when it
 * fails; once activation failed the device is not tried again until the
 * watchdog settings change (a failed device is replaced by "no device",
 * which also makes a required watchdog unhealthy); keepalive() feeds only
 * an active watchdog and applies a pending new timeout (or device) after
 * the feed, so the new timeout starts with a renewed lock; mode off in a
 * reload disables at once; a device that cannot be disabled (no magic
 * close) is fed once more and left running with a warning.
 *
 * Deliberate differences from Patroni 3.0.2's code, all on the safe side:
 * - a device opened by a failed activation (an ioctl failed, the timeout is
 *   unsafe, required mode refused it) is closed with the magic character at
 *   once; Patroni dropped the descriptor still open, so it reset a node
 *   that was not the leader, or (required mode, timeout too long) promoted
 *   with that unsafe device on the next cycle because it "was running";
 * - activate() on a running watchdog re-applies the timeout on the open
 *   descriptor instead of opening the device a second time (EBUSY);
 * - the descriptor is closed even when writing 'V' fails (the device then
 *   keeps running, as it would have);
 * - a pending timeout is applied only to a running device (Patroni asked
 *   "no device" for it and logged an error at every keepalive);
 * - new settings replace a failed device ("no device") at once, active or
 *   not, so a configuration fixed by SIGHUP is healthy again and the next
 *   activation tries it (Patroni only retried an inactive watchdog whose
 *   device path changed: a required watchdog stayed failed until restart).
 *
 * Threads: every function may be called from any thread (one mutex); the
 * loop and a demotion's safepoint may race.  Nothing blocks beyond the
 * device's own system calls.
 */
#ifndef PGKEEL_WATCHDOG_H
#define PGKEEL_WATCHDOG_H

#include <limits.h>
#include <stdbool.h>

#include <pgkeel/host.h>

struct pgkeel_config;

#define PGKEEL_WATCHDOG_DEFAULT_DEVICE "/dev/watchdog"

enum pgkeel_watchdog_mode {
	PGKEEL_WATCHDOG_OFF = 0,
	PGKEEL_WATCHDOG_AUTOMATIC,
	PGKEEL_WATCHDOG_REQUIRED,
};

struct pgkeel_watchdog_settings {
	enum pgkeel_watchdog_mode mode;
	bool has_device;       /* driver "default": the Linux device; false: none */
	char device[PATH_MAX]; /* the device path (has_device) */
	int safety_margin;     /* seconds; -1: the timeout is ttl / 2 */
	int ttl;
	int loop_wait;
};

/* "off", "automatic", "required". */
const char *pgkeel_watchdog_mode_name(enum pgkeel_watchdog_mode m);

/*
 * The settings of a configuration snapshot: the `watchdog` section of the
 * effective tree, ttl and loop_wait.  An unknown mode is warned about
 * ("Watchdog mode X not recognized, disabling watchdog") and taken as off.
 */
void pgkeel_watchdog_settings_from_config(const struct pgkeel_config *c,
                                          struct pgkeel_watchdog_settings *s);

/* Defaults (automatic, /dev/watchdog, safety_margin 5) with this ttl and loop_wait. */
void pgkeel_watchdog_settings_default(struct pgkeel_watchdog_settings *s, int ttl, int loop_wait);

/* The timeout asked of the device: ttl - safety_margin, or ttl / 2 for -1. */
int pgkeel_watchdog_timeout(const struct pgkeel_watchdog_settings *s);
/* timeout - loop_wait: how late a cycle may feed it. */
int pgkeel_watchdog_timing_slack(const struct pgkeel_watchdog_settings *s);

struct pgkeel_watchdog;

/*
 * A watchdog, not yet active (the device is not opened until activate()).
 * NULL when mode is required but the driver has no device: logged as
 * Patroni does ("Configuration requires a watchdog, but watchdog is not
 * supported on this platform."); the daemon then exits.
 */
struct pgkeel_watchdog *pgkeel_watchdog_new(const struct pgkeel_watchdog_settings *s);

/*
 * Free; NULL is accepted.  A running device is closed WITHOUT the magic
 * character: it keeps running and resets the machine unless disabled first
 * (Patroni leaves the watchdog running when PostgreSQL could not be
 * stopped; disable before free on a clean shutdown).
 */
void pgkeel_watchdog_free(struct pgkeel_watchdog *w);

/* New settings (Patroni's reload_config); see the rules above. */
void pgkeel_watchdog_reload(struct pgkeel_watchdog *w, const struct pgkeel_watchdog_settings *s);

/*
 * Open the device and set a safe timeout.  False only when a safe watchdog
 * is required and could not be set up (mode required): the caller must not
 * become or stay the leader.  True also when mode is off, or automatic
 * without a usable device (it then runs without one).
 */
bool pgkeel_watchdog_activate(struct pgkeel_watchdog *w) PGKEEL_MUSTCHECK;

/* Feed an active watchdog (after a successful lock renewal only). */
void pgkeel_watchdog_keepalive(struct pgkeel_watchdog *w);

/* Stop it with the magic close (active no more). */
void pgkeel_watchdog_disable(struct pgkeel_watchdog *w);

/* The device is open and armed. */
bool pgkeel_watchdog_is_running(struct pgkeel_watchdog *w);

/*
 * Not required, or required and usable: a non-negative timing slack and a
 * device that exists and is writable (not one that already failed).  False
 * is what members see as "watchdog_failed": true.
 */
bool pgkeel_watchdog_is_healthy(struct pgkeel_watchdog *w);

/* The timeout the running device reported at activation (0: not running). */
int pgkeel_watchdog_running_timeout(struct pgkeel_watchdog *w);

#endif
