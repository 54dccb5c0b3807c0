/*
 * pg_callbacks: postgresql.callbacks as Patroni 3.0.2 runs them
 * (spec/patroni-dcs-and-ha.md §7.6; Patroni's Postgresql.call_nowait and
 * CallbackExecutor).
 *
 * A callback runs asynchronously as shlex.split(command) + [action, role,
 * scope], e.g. `/etc/pgkeel/cb.sh on_role_change master batman`:
 *  - role is the node's role with "promoted" -- and pgkeel's "primary" --
 *    reported as "master", as Patroni 3.0.2 does (users' scripts test for it);
 *    other roles (replica, standby_leader, demoted, uninitialized) as given;
 *  - on_start, on_stop, on_restart and on_role_change share one slot: firing
 *    one while the previous is still running SIGKILLs the previous one's
 *    whole process group first (Patroni: "Killed [...] because it was still
 *    running"); on_reload has a slot of its own and only replaces an earlier
 *    on_reload;
 *  - nothing is fired while the bootstrapping flag is set;
 *  - the program is started through core/child: no shell, own session and
 *    process group, scrubbed environment (no PATRONI_* / PGKEEL_*), only fds
 *    0-2, stdin from /dev/null, the daemon's working directory.
 *
 * Output: by default the callback's stdout and stderr are the daemon's own
 * (what Patroni does: its Popen inherits them), so under systemd they land in
 * the journal next to the daemon's lines.  With `quiet` they go to
 * /dev/null.  They are never piped into the daemon: a chatty script would
 * block on a full pipe between two HA cycles.
 *
 * A callback that ends is reaped by pgkeel_callbacks_poll() (call it every
 * HA cycle, or when the loop sees SIGCHLD), which logs its exit status.
 * Children it left behind are not killed (Patroni kills leftovers only of a
 * callback it kills itself).
 *
 * Deviations from Patroni 3.0.2: an empty command (no words) is treated as
 * not configured (Patroni would try to execute the action name); a command
 * that is not a string, or null, likewise; the environment is scrubbed.
 *
 * Threads: the HA loop's.
 */
#ifndef PGKEEL_PG_CALLBACKS_H
#define PGKEEL_PG_CALLBACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pgkeel/host.h>

#include "child.h"

struct pgkeel_config;

/*
 * Python's shlex.split(s) (POSIX mode, no comments): words separated by
 * space, tab, CR, LF; '...' literal; "..." with \" and \\ escapes (any
 * other backslash kept); an unquoted backslash takes the next character
 * literally; '' or "" is an empty word.  On success *argv is a new
 * NULL-terminated array of *argc words (free with pgkeel_argv_free).  False
 * with Python's message ("No closing quotation", "No escaped character") in
 * err on bad input, *argv NULL.
 */
bool pgkeel_shell_split(const char *s, char ***argv, size_t *argc, char *err,
                        size_t errlen) PGKEEL_MUSTCHECK;
void pgkeel_argv_free(char **argv);

enum pgkeel_cb_action {
	PGKEEL_CB_ON_START,
	PGKEEL_CB_ON_STOP,
	PGKEEL_CB_ON_RESTART,
	PGKEEL_CB_ON_RELOAD,
	PGKEEL_CB_ON_ROLE_CHANGE,
};

/* "on_start", "on_stop", "on_restart", "on_reload", "on_role_change". */
const char *pgkeel_cb_action_name(enum pgkeel_cb_action a);

/* The role a callback is told: "master" for "primary" and "promoted", else role. */
const char *pgkeel_cb_role_name(const char *role);

struct pgkeel_callbacks {
	struct pgkeel_child_slot main;   /* on_start, on_stop, on_restart, on_role_change */
	struct pgkeel_child_slot reload; /* on_reload */
	char *main_desc;                 /* Python repr of the argv in `main`, for log lines */
	char *reload_desc;
	bool main_pending; /* started, exit not reported yet */
	bool reload_pending;
	bool bootstrapping; /* set: nothing fires */
	/*
	 * Patroni's __cb_called: an on_start/on_stop/on_restart/on_role_change
	 * was fired (configured or not, outside bootstrap).  The HA loop fires
	 * on_start on its first cycle that finds PostgreSQL running when this
	 * is still false.
	 */
	bool called;
	bool quiet; /* stdout/stderr to /dev/null instead of the daemon's */
};

enum pgkeel_cb_fire {
	PGKEEL_CB_STARTED,        /* the command runs */
	PGKEEL_CB_NOT_CONFIGURED, /* no command for that action */
	PGKEEL_CB_BOOTSTRAPPING,  /* the bootstrapping flag is set: not fired */
	PGKEEL_CB_FAILED,         /* not started: bad quoting or exec failure (logged) */
};

void pgkeel_callbacks_init(struct pgkeel_callbacks *cb);

/*
 * Fire `command` (NULL or empty: not configured) for action with Patroni's
 * argv.  role: the node's role ("primary", "promoted", "replica", ...).
 */
enum pgkeel_cb_fire pgkeel_callbacks_fire(struct pgkeel_callbacks *cb, const char *command,
                                          enum pgkeel_cb_action action, const char *role,
                                          const char *scope);

/* The same with postgresql.callbacks.<action> and scope of a configuration. */
enum pgkeel_cb_fire pgkeel_callbacks_fire_config(struct pgkeel_callbacks *cb,
                                                 const struct pgkeel_config *cfg,
                                                 enum pgkeel_cb_action action, const char *role);

/* Reap callbacks that ended and log how (INFO for exit 0, WARNING otherwise). */
void pgkeel_callbacks_poll(struct pgkeel_callbacks *cb);

/* Process (and group) id of the running callback of that slot; 0 when none. */
pid_t pgkeel_callbacks_pid(struct pgkeel_callbacks *cb, bool reload_slot);

/*
 * Shutdown: let running callbacks finish until deadline_ms, then kill what
 * is left (process groups), report, and release everything.
 */
void pgkeel_callbacks_shutdown(struct pgkeel_callbacks *cb, int64_t deadline_ms);

/*
 * postgresql.pre_promote, Patroni's _pre_promote: the fencing command run
 * after the leader lock was won and before pg_ctl promote, and waited for.
 * Its argv is shlex.split(command) alone (no action, role or scope as the
 * callbacks get); it runs as the callbacks do (core/child: no shell, own
 * session and process group, scrubbed environment, the daemon's
 * credentials and working directory, stdout/stderr the daemon's own).
 *
 * PASSED when it exits 0 or no command is configured (NULL, empty, or
 * only blanks).  FAILED, the promotion must not happen, on a non-zero exit
 * or a signal (logged as Patroni does: "pre_promote script `<command>`
 * exited with <code>", a signal as -N), when it cannot be started or its
 * quoting is bad (Patroni: the same for a failed exec; bad quoting raised
 * an exception there), and when it still runs at deadline_ms: its process
 * group is SIGKILLed then (Patroni waits for ever).  CANCELLED when
 * cancelled(arg) turned true while it ran (polled every 100 ms): the group
 * is SIGKILLed at once (Patroni's cancellable.cancel()); no verdict.  err
 * gets one line for anything but PASSED.
 *
 * Threads: any one (pg_manager's worker runs it); no shared state.
 */
enum pgkeel_pre_promote {
	PGKEEL_PRE_PROMOTE_PASSED,
	PGKEEL_PRE_PROMOTE_FAILED,
	PGKEEL_PRE_PROMOTE_CANCELLED,
};

enum pgkeel_pre_promote pgkeel_pre_promote_run(const char *command, int64_t deadline_ms,
                                               bool (*cancelled)(void *arg), void *arg, char *err,
                                               size_t errlen);

#endif
