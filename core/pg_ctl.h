/*
 * pg_ctl: process control of the local PostgreSQL, the layer under the
 * PostgreSQL manager.  Writes the configuration files (through pg_conf),
 * starts `postgres` directly with the controlled parameters on its command
 * line (as Patroni does, spec/patroni-interfaces.md §3.11), tracks the
 * postmaster, adopts one that is already running, stops, restarts, reloads
 * and promotes.  Nothing here blocks past a deadline: calls either return at
 * once or take an absolute CLOCK_MONOTONIC deadline in milliseconds
 * (pgkeel_now_monotonic_ms(); PGKEEL_CHILD_NO_DEADLINE waits for ever).
 *
 * The postmaster.  pgkeel runs as the PostgreSQL user and starts the
 * postmaster as itself through core/child: a clean environment (no
 * PATRONI_* / PGKEEL_* variables), no inherited descriptor, an empty signal
 * mask, default dispositions, its own session, stdin from /dev/null.  Its
 * stdout and stderr go to a log file, by default <data_dir>/pgkeel-postmaster.log
 * (the data directory always belongs to the PostgreSQL user; a config_dir
 * such as /etc/postgresql/15/main may not be writable).  That file holds
 * what PostgreSQL writes before its own logging is set up (and everything,
 * without logging_collector); the reason of a failed start is read from it.
 * It is bounded: when it grows past log_max_bytes its content is copied to
 * <log>.1 and the file truncated in place (the postmaster writes with
 * O_APPEND, so it simply continues at the new end; a line written during
 * the copy may be lost).  pg_basebackup and pg_rewind copy the file along
 * with the data directory, like PostgreSQL's own log/ directory.
 *
 * Liveness.  A postmaster we started is our child: it is alive until its
 * pidfd (or waitpid) says it exited.  An adopted postmaster (found running
 * by pgkeel_pgctl_adopt) is tracked by a pidfd opened on it, so neither
 * liveness nor signals can hit a recycled pid; without pidfd support,
 * postmaster.pid is checked against the process each time (pg_data's
 * RUNNING/STALE/NOT_RUNNING).  The postmaster disappearing while the state
 * is starting or running, without a stop from us, is a crash.
 *
 * State names are Patroni's (postgresql/__init__.py): "stopped",
 * "starting", "running", "stopping", "stop failed", "crashed",
 * "start failed", "restarting", "restart failed (<state>)".
 *
 * Readiness (Patroni's pg_isready step).  A start is complete when the
 * postmaster is alive, postmaster.pid names it with status "ready"
 * (accepting connections: a primary, or a hot standby past its consistency
 * point) or "standby" (a standby past that point without hot_standby), and,
 * when the caller passes its pg_query handle, a connection succeeds (tried
 * at most once a second).  Unlike pg_isready, a connection refused by
 * authentication does not count as ready: the start then times out with the
 * connection error in the status.
 *
 * Stopping.  smart/fast/immediate send SIGTERM/SIGINT/SIGQUIT to the
 * postmaster; the stop is complete when the postmaster has exited (it
 * removes postmaster.pid itself, immediate shutdown included; it exits only
 * once its children have).  A smart shutdown waits for every client to
 * disconnect, pgkeel's own pg_query connection included: close it first.
 * At the deadline the postmaster is SIGSTOPped, its descendants listed from
 * /proc, and all of them SIGKILLed (Patroni's signal_kill), whatever the
 * mode (Patroni tries an immediate stop first for smart/fast; here the
 * caller picks the deadline of the whole stop).  A SIGKILLed postmaster
 * leaves postmaster.pid behind (status.pidfile_left); the next start copes
 * with it (see pgkeel_pgctl_start).  Patroni's CHECKPOINT before a fast
 * stop and its safepoint/shutdown callbacks belong to the caller.
 *
 * Threads: a handle belongs to one thread (the HA loop or its async task).
 */
#ifndef PGKEEL_PG_CTL_H
#define PGKEEL_PG_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pgkeel/host.h>

/* Only pointers to these cross this interface. */
struct json_object;
struct pgkeel_config;
struct pgkeel_diag;
struct pgkeel_pg;
struct pgkeel_pg_files;
struct pgkeel_pg_situation;

/* The log file's default name in the data directory and its default bound. */
#define PGKEEL_PGCTL_LOG_NAME      "pgkeel-postmaster.log"
#define PGKEEL_PGCTL_LOG_MAX_BYTES (1024 * 1024)
/* How long the SIGKILL of a stop may take beyond its deadline. */
#define PGKEEL_PGCTL_KILL_GRACE_MS 1000

enum pgkeel_pgctl_state {
	PGKEEL_PGCTL_STOPPED = 0,
	PGKEEL_PGCTL_STARTING,
	PGKEEL_PGCTL_RUNNING,
	PGKEEL_PGCTL_STOPPING,
	PGKEEL_PGCTL_STOP_FAILED,
	PGKEEL_PGCTL_CRASHED,
	PGKEEL_PGCTL_START_FAILED,
	PGKEEL_PGCTL_RESTARTING,
	PGKEEL_PGCTL_RESTART_FAILED,
};

/* Patroni's name: "start failed"; RESTART_FAILED gives "restart failed". */
const char *pgkeel_pgctl_state_name(enum pgkeel_pgctl_state s);

/* What the postmaster runs as, as far as this layer knows. */
enum pgkeel_pgctl_role {
	PGKEEL_PGCTL_ROLE_UNKNOWN = 0,
	PGKEEL_PGCTL_ROLE_PRIMARY,
	PGKEEL_PGCTL_ROLE_REPLICA,
	PGKEEL_PGCTL_ROLE_STANDBY_LEADER,
};

/* "unknown", "primary", "replica", "standby_leader". */
const char *pgkeel_pgctl_role_name(enum pgkeel_pgctl_role r);

enum pgkeel_pgctl_stop_mode {
	PGKEEL_PGCTL_SMART = 0, /* SIGTERM: wait for clients to disconnect */
	PGKEEL_PGCTL_FAST,      /* SIGINT: disconnect clients, shutdown checkpoint */
	PGKEEL_PGCTL_IMMEDIATE, /* SIGQUIT: no checkpoint, crash recovery at the next start */
};

/* "smart", "fast", "immediate". */
bool pgkeel_pgctl_stop_mode_parse(const char *s, enum pgkeel_pgctl_stop_mode *out) PGKEEL_MUSTCHECK;
const char *pgkeel_pgctl_stop_mode_name(enum pgkeel_pgctl_stop_mode m);

/* What the HA loop reads. */
struct pgkeel_pgctl_status {
	enum pgkeel_pgctl_state state;
	char state_name[48];    /* Patroni's text, e.g. "restart failed (start failed)" */
	int64_t state_since_ms; /* monotonic time of the last state change */
	enum pgkeel_pgctl_role role;
	pid_t pid;               /* the postmaster we track; 0 when none */
	int64_t start_time;      /* postmaster start, epoch seconds (postmaster.pid, else /proc) */
	bool adopted;            /* found running, not started by this handle */
	bool timed_out;          /* starting, and the start's deadline has passed */
	bool pidfile_left;       /* the last stop killed the postmaster: postmaster.pid stays */
	int exit_status;         /* waitpid status of our postmaster once reaped; -1: unknown */
	char pidfile_status[32]; /* last status line of postmaster.pid seen */
	/* start failed / crashed / stop failed: why; starting: the last readiness problem */
	char reason[512];
};

/* How to run this data directory's PostgreSQL. */
struct pgkeel_pgctl_opts {
	const char *data_dir; /* required */
	const char *bin_dir;  /* where pg_ctl is; NULL or "": found in PATH */
	const char *log_path; /* postmaster stdout/stderr; NULL: <data_dir>/PGKEEL_PGCTL_LOG_NAME */
	int64_t log_max_bytes; /* 0: PGKEEL_PGCTL_LOG_MAX_BYTES */
};

struct pgkeel_pgctl;

/* A handle tracking nothing yet (state "stopped").  Aborts on OOM. */
struct pgkeel_pgctl *pgkeel_pgctl_new(const struct pgkeel_pgctl_opts *opts);
/*
 * Forget the postmaster and release the handle.  PostgreSQL is never
 * stopped by this: it keeps running when pgkeel exits (and is adopted by the
 * next pgkeel).  NULL is fine.
 */
void pgkeel_pgctl_free(struct pgkeel_pgctl *ctl);

const struct pgkeel_pgctl_status *pgkeel_pgctl_status(const struct pgkeel_pgctl *ctl);
/* The HA loop's own notion (after a demotion, a standby_leader...). */
void pgkeel_pgctl_set_role(struct pgkeel_pgctl *ctl, enum pgkeel_pgctl_role role);
const char *pgkeel_pgctl_log_path(const struct pgkeel_pgctl *ctl);

/*
 * Write the configuration for a start (Patroni's write_postgresql_conf,
 * replace_pg_hba/pg_ident, write_recovery_conf, write_pgpass):
 *  - params: the server parameters (pgkeel_pg_server_params); NULL: computed
 *    here from cfg and sit.  sit->server_version 0: taken from PG_VERSION.
 *  - postgresql.conf rendered by pgkeel_pg_render; before it is written the
 *    original is renamed once to <base>.base.conf (not with custom_conf);
 *  - pg_hba.conf / pg_ident.conf when postgresql.pg_hba / pg_ident manage them;
 *  - 12+: standby.signal (or recovery.signal) when sit->recovery, both
 *    removed otherwise; before 12 recovery.conf written or removed;
 *  - the pgpass file, mode 0600 (a world-writable folder is warned about).
 * Files are written through a temp file and rename, mode 0600 (0640 when
 * the data directory allows group access).  *files receives what was
 * rendered, the postgres argv included; clear it with pgkeel_pg_files_clear
 * whatever the result.  False with an error in diag.
 */
bool pgkeel_pgctl_write_config(const struct pgkeel_config *cfg,
                               const struct pgkeel_pg_situation *sit, struct json_object *params,
                               struct pgkeel_pg_files *files,
                               struct pgkeel_diag *diag) PGKEEL_MUSTCHECK;

enum pgkeel_pgctl_adopt_result {
	PGKEEL_PGCTL_ADOPT_NONE = 0, /* no postmaster.pid, or its process is gone */
	PGKEEL_PGCTL_ADOPTED,        /* tracking the running postmaster now */
	PGKEEL_PGCTL_ADOPT_STALE,    /* postmaster.pid names a live process that is not
	                                this data directory's postmaster: not adopted */
};

/*
 * Take over a PostgreSQL already running in the data directory (pgkeel was
 * restarted), without restarting it.  The state follows postmaster.pid's
 * status ("ready"/"standby": running, "starting": starting, "stopping":
 * stopping); the role is replica when recovery is configured in the data
 * directory (standby.signal, recovery.signal, recovery.conf), else primary,
 * as Patroni reads it from the data directory.  When the handle already
 * tracks a live postmaster, that one is kept (ADOPTED).
 */
enum pgkeel_pgctl_adopt_result pgkeel_pgctl_adopt(struct pgkeel_pgctl *ctl);

/*
 * Start `argv` (pgkeel_pg_files.argv: postgres -D ... --config-file=...)
 * and return at once, state "starting"; ready_deadline_ms (monotonic) is
 * when the start counts as timed out (status.timed_out; the state stays
 * "starting", as in Patroni, and the caller decides).  A postmaster.pid
 * naming a live process that is not a postmaster of this directory is
 * handed to PostgreSQL as PG_GRANDPARENT_PID, so that it overwrites the
 * file instead of refusing to start (Patroni's workaround).  When a
 * postmaster is already running it is adopted: an error is logged ("Cannot
 * start PostgreSQL because one is already running.") and the state is
 * "starting", as Patroni does.  False, state "start failed" and err set,
 * when postgres could not be executed (or the log file not opened).
 */
bool pgkeel_pgctl_start(struct pgkeel_pgctl *ctl, const char *const *argv,
                        enum pgkeel_pgctl_role role, int64_t ready_deadline_ms, char *err,
                        size_t errlen) PGKEEL_MUSTCHECK;

/*
 * Update the state without blocking (except for one connection attempt
 * bounded by deadline_ms when readiness is checked):
 *   starting: the postmaster exited -> "start failed" with the reason from
 *             the log; ready (see above, pg may be NULL) -> "running";
 *   running:  the postmaster is gone -> "crashed";
 *   stopping: the postmaster is gone -> "stopped";
 *   other states: nothing (a postmaster started behind our back is only
 *             noticed by pgkeel_pgctl_adopt).
 * Also keeps the log file under its bound.  Returns the new state.
 */
enum pgkeel_pgctl_state pgkeel_pgctl_poll(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg,
                                          int64_t deadline_ms);

/*
 * pgkeel_pgctl_poll while "starting", until another state or deadline_ms
 * (then it returns STARTING).  Wakes at once when the postmaster exits.
 */
enum pgkeel_pgctl_state pgkeel_pgctl_wait_ready(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg,
                                                int64_t deadline_ms);

/*
 * Is the tracked postmaster alive?  Never blocks.  Without a tracked one,
 * whether postmaster.pid names a running postmaster of this directory.
 */
bool pgkeel_pgctl_is_running(struct pgkeel_pgctl *ctl);

enum pgkeel_pgctl_stop_result {
	PGKEEL_PGCTL_STOP_DONE = 0,    /* the postmaster exited after the stop signal */
	PGKEEL_PGCTL_STOP_NOT_RUNNING, /* nothing was running */
	PGKEEL_PGCTL_STOP_KILLED,      /* still there at the deadline: it and its children were
	                                  SIGKILLed (postmaster.pid is left) */
	PGKEEL_PGCTL_STOP_PENDING,     /* pgkeel_pgctl_stop_begin: signalled, not gone yet */
	PGKEEL_PGCTL_STOP_ERROR,       /* could not be signalled, or survived SIGKILL */
};

/* "done", "not running", "killed", "pending", "error". */
const char *pgkeel_pgctl_stop_result_name(enum pgkeel_pgctl_stop_result r);

/*
 * Send the stop signal and return at once: PENDING (state "stopping"),
 * NOT_RUNNING / DONE (state "stopped") or ERROR ("stop failed").  A
 * postmaster running in the data directory but not tracked yet is adopted
 * first.  Poll, or pgkeel_pgctl_stop_wait, to see it gone.
 */
enum pgkeel_pgctl_stop_result pgkeel_pgctl_stop_begin(struct pgkeel_pgctl *ctl,
                                                      enum pgkeel_pgctl_stop_mode mode);
/*
 * Wait until the postmaster is gone; at kill_deadline_ms SIGKILL it and its
 * descendants (pgkeel_pgctl_kill).  Returns by kill_deadline_ms +
 * PGKEEL_PGCTL_KILL_GRACE_MS.  State "stopped", or "stop failed".
 */
enum pgkeel_pgctl_stop_result pgkeel_pgctl_stop_wait(struct pgkeel_pgctl *ctl,
                                                     int64_t kill_deadline_ms);
/* stop_begin + stop_wait. */
enum pgkeel_pgctl_stop_result pgkeel_pgctl_stop(struct pgkeel_pgctl *ctl,
                                                enum pgkeel_pgctl_stop_mode mode,
                                                int64_t kill_deadline_ms);
/*
 * SIGSTOP the postmaster, SIGKILL it and every descendant, wait up to
 * PGKEEL_PGCTL_KILL_GRACE_MS for them to go.  KILLED, NOT_RUNNING, or
 * ERROR (something survived).  State "stopped" (or "stop failed").
 */
enum pgkeel_pgctl_stop_result pgkeel_pgctl_kill(struct pgkeel_pgctl *ctl);

/*
 * Patroni's restart: state "restarting", a fast stop (SIGKILL at
 * kill_deadline_ms), then pgkeel_pgctl_start.  True when the new postmaster
 * is starting (poll or wait_ready for the rest).  On failure the state is
 * "restart failed (stop failed)" or "restart failed (start failed)".
 */
bool pgkeel_pgctl_restart(struct pgkeel_pgctl *ctl, const char *const *argv,
                          enum pgkeel_pgctl_role role, int64_t kill_deadline_ms,
                          int64_t ready_deadline_ms, char *err, size_t errlen) PGKEEL_MUSTCHECK;

/*
 * A descriptor that becomes readable (POLLIN) when the tracked postmaster
 * exits (its pidfd), or -1 (none tracked, no pidfd support).  Borrowed: valid
 * until the next call on the handle.
 */
int pgkeel_pgctl_exit_fd(const struct pgkeel_pgctl *ctl);

/* SIGHUP to the postmaster (what `pg_ctl reload` does).  False when none runs. */
bool pgkeel_pgctl_reload(struct pgkeel_pgctl *ctl, char *err, size_t errlen) PGKEEL_MUSTCHECK;

/*
 * `pg_ctl promote -W -D <data_dir>` (it writes the promote signal file and
 * sends SIGUSR1), bounded by deadline_ms.  False with pg_ctl's message
 * ("server is not in standby mode"...) or the reason it did not run.
 */
bool pgkeel_pgctl_promote(struct pgkeel_pgctl *ctl, int64_t deadline_ms, char *err,
                          size_t errlen) PGKEEL_MUSTCHECK;
/*
 * Wait until pg_is_in_recovery() is false (through pg; about every 100 ms)
 * or deadline_ms.  True: promoted, role primary.  False with the reason
 * (still in recovery, postmaster gone, the last query error).
 */
bool pgkeel_pgctl_wait_promoted(struct pgkeel_pgctl *ctl, struct pgkeel_pg *pg, int64_t deadline_ms,
                                char *err, size_t errlen) PGKEEL_MUSTCHECK;

/*
 * The reason PostgreSQL gave, from log text: its FATAL/PANIC/ERROR
 * messages and the LOG lines starting "could not" (bind errors are LOG),
 * without the line prefix, joined by "; " — only the postmaster's own lines
 * when the prefix shows pids (%p) and pid > 0; client-side noise ("the
 * database system is starting up") skipped.  Without any such line, the
 * last three non-empty lines (messages written before logging is set up
 * have no severity).  "" for an empty text.  Exposed for tests.
 */
void pgkeel_pgctl_log_reason(const char *text, pid_t pid, char *out, size_t outlen);

#endif
