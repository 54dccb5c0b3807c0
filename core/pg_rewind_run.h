/*
 * pg_rewind_run: the I/O half of pg_rewind as Patroni does it (spec
 * patroni-dcs-and-ha.md §5.7; Patroni's patroni/postgresql/rewind.py, read
 * at 3.3.1 for its later safety fixes).  pg_rewind.h has the pure half.
 *
 * The check, pgkeel_rewind_check(): is this node's data directory on a
 * timeline that diverged from the leader's?  (Patroni's
 * _check_timeline_and_lsn.)  Only against a leader that is not us, has a
 * conn_url, whose member role is primary/master (not checked for a
 * standby cluster's remote member) and that answers pg_is_in_recovery() =
 * false on a connection with the rewind credentials.  The local facts come
 * from pg_controldata when PostgreSQL is stopped, or from the caller when
 * it runs; the leader's timeline and history from IDENTIFY_SYSTEM and
 * TIMELINE_HISTORY on a replication connection with the replication
 * credentials (as Patroni: the rewind role needs no REPLICATION); a former
 * primary's checkpoint end from pg_waldump.  Every step is bounded by the
 * caller's deadline: the check blocks its caller at most that long.
 *
 * The job, pgkeel_rewind_job_start(): the rewind itself, as a non-blocking
 * state machine of tracked children (the pattern of pg_bootstrap.h's
 * tasks), in this order:
 *   1. PostgreSQL must be stopped (refused otherwise) and pg_controldata
 *      must show wal_log_hints or data checksums (else nothing is done);
 *   2. archive_mode, archive_command and restore_command are read with
 *      `postgres -C` (restore_command from recovery_conf before 12);
 *   3. WAL segments with a .ready status file are archived first when
 *      archive_mode is on/always and an archive_command is set
 *      (`/bin/sh -c` the command with %p/%f, .ready renamed to .done);
 *   4. a data directory not shut down cleanly ("shut down" or "shut down
 *      in recovery") gets Patroni's ensure_clean_shutdown: archive_status
 *      emptied, recovery.conf / standby.signal / recovery.signal removed,
 *      `postgres --single` with postmaster.opts' options, archive_mode=on
 *      and archive_command=false (stdin /dev/null, killed at the crash
 *      recovery deadline), then pg_controldata must say "shut down";
 *   5. the leader's post-promote checkpoint: with checkpoint_after_promote
 *      FALSE the job fails at once ("leader has not done its checkpoint
 *      yet": retry next cycle); ABSENT (a leader that does not publish it)
 *      -> CHECKPOINT on the leader through a superuser connection when the
 *      rewind credentials are the superuser's, and in any case
 *      pg_control_checkpoint() must show the leader's current timeline;
 *      TRUE -> the leader must not be in recovery;
 *   6. pg_rewind [--restore-target-wal [--config-file=...]] -D <data_dir>
 *      --source-server '<dsn without password>' with PGPASSFILE (the
 *      password written 0600 to postgresql.pgpass), LANG=C, LC_ALL=C,
 *      PGOPTIONS=-c statement_timeout=0.  Without --restore-target-wal and
 *      with a restore_command, a failure naming a missing file of pg_wal
 *      fetches it with restore_command and runs pg_rewind again (at most
 *      max_wal_fetches times);
 *   7. when pg_rewind fails: if the leader is still a healthy primary (or
 *      the data directory no longer allows a rewind) the rewind FAILED, and
 *      with remove_data_directory_on_rewind_failure or
 *      remove_data_directory_on_diverged_timelines the data directory is
 *      removed (on a thread of the job).
 * With opts.crash_recovery_only the job is Patroni's crash recovery task
 * (ha.py _handle_crash_recovery -> ensure_clean_shutdown) instead: no
 * leader; steps 1 (pg_controldata, without the rewindability check: a data
 * directory already shut down cleanly ends it at once, SUCCESS), 2, 3 and
 * 4, then SUCCESS once pg_controldata says "shut down" (logged "crash
 * recovery in a single user mode done: ...") or RETRY with the error.
 *
 * Log lines are Patroni's ("running pg_rewind from <dsn>", "pg_rewind exit
 * code=N", "Trying to archive ...", "Trying to fetch the missing wal: ...");
 * no password is ever logged or put on a command line.
 *
 *   struct pgkeel_rewind_job *j = pgkeel_rewind_job_start(&opts, err, sizeof(err));
 *   if (j == NULL)
 *           ... refused before anything ran (err says why) ...
 *   while (pgkeel_rewind_job_wait(j, pgkeel_now_monotonic_ms() + 1000) ==
 *          PGKEEL_REWIND_JOB_RUNNING)
 *           ... renew the leader lock, answer REST ...
 *   switch (pgkeel_rewind_job_result(j)) ...   (SUCCESS, RETRY, FAILED, REMOVED)
 *   pgkeel_rewind_job_free(j);
 *
 * Poll never waits for a child.  What it does inline: small file
 * operations, and the leader's SQL of step 5 and 7, each statement bounded
 * by opts.sql_timeout_ms.
 *
 * Deliberate differences from Patroni: pg_controldata is checked for a
 * rewindable data directory before anything runs (Patroni's HA loop checks
 * can_rewind before starting it); a CHECKPOINT the job ran itself is
 * verified through pg_control_checkpoint(); a crash recovery is part of
 * the job (and, with crash_recovery_only, a job of its own); the WAL fetch
 * loop is bounded;
 * pg_replslot is not emptied by hand (pg_rewind does it since 11).
 *
 * Threads: a job belongs to the thread that started it.
 */
#ifndef PGKEEL_PG_REWIND_RUN_H
#define PGKEEL_PG_REWIND_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

#include "child.h"
#include "cluster.h"
#include "config.h"
#include "pg_rewind.h"

struct pollfd;

/* Descriptors pgkeel_rewind_job_pollfds() may return. */
#define PGKEEL_REWIND_JOB_MAX_FDS 3

/* The leader to compare with and rewind from, as the HA loop sees it. */
struct pgkeel_rewind_leader {
	const char *name;     /* its member name (messages; not us) */
	const char *conn_url; /* postgres://host:port/dbname */
	const char *role;     /* its member role: "master"/"primary" qualify */
	bool remote;          /* a standby cluster's remote member: no role check */
	enum pgkeel_tristate checkpoint_after_promote; /* from its member data */
};

struct pgkeel_rewind_check_opts {
	const struct pgkeel_config *cfg; /* postgresql.*: data_dir, bin_dir, authentication... */
	const struct pgkeel_child_user *user; /* pg_controldata / pg_waldump as; NULL: ourselves */
	const struct pgkeel_rewind_leader *leader; /* NULL: nothing to compare with */
	int server_version;                        /* 150000 for 15; 0: from PG_VERSION */
	/*
	 * PostgreSQL runs (as a replica): the caller's facts are used instead of
	 * pg_controldata -- its timeline (IDENTIFY_SYSTEM on the local
	 * replication connection, Patroni's get_replica_timeline) and its
	 * replayed location.
	 */
	bool running;
	int64_t running_tli;
	int64_t running_lsn;
	int64_t deadline_ms; /* CLOCK_MONOTONIC, absolute: the whole check */
};

struct pgkeel_rewind_check_result {
	enum pgkeel_rewind_need need;
	char reason[512]; /* why, in a line (no password) */
	/* the facts found (0 / false when not found) */
	bool in_recovery;
	int64_t local_tli;
	int64_t local_lsn;
	int64_t leader_tli;
	int64_t switchpoint;    /* of our timeline in the leader's history */
	int64_t checkpoint_end; /* former primary: from pg_waldump */
};

/* Patroni's _check_timeline_and_lsn with I/O, by opts->deadline_ms. */
enum pgkeel_rewind_need pgkeel_rewind_check(const struct pgkeel_rewind_check_opts *opts,
                                            struct pgkeel_rewind_check_result *out);

/* ---- the job ---- */

struct pgkeel_rewind_job_opts {
	struct pgkeel_config *cfg; /* a reference is kept until the job is freed */
	/* Run children as this user and give it the pgpass file; NULL: ourselves. */
	const struct pgkeel_child_user *user;
	const char *pgpass_path; /* NULL: postgresql.pgpass (default $HOME/pgpass) */
	const struct pgkeel_rewind_leader *leader; /* required but with crash_recovery_only;
	                                              copied */
	int server_version;                        /* 0: from PG_VERSION */
	int sql_timeout_ms;                        /* each statement on the leader; 0: 10000 */
	int command_timeout_ms;                    /* pg_controldata, postgres -C, archive and
	                                              restore commands; 0: 60000 */
	int crash_recovery_timeout_ms;             /* the single-user run; 0: 3600000 */
	int rewind_timeout_ms;                     /* each pg_rewind run; 0: no limit (cancel it) */
	int max_wal_fetches;                       /* 0: 64 */
	/* Never pass --restore-target-wal (what Patroni's rule gives on 13/14
	 * with postgresql.conf outside the data directory): missing WAL is then
	 * fetched by the job.  For tests on 15+. */
	bool no_restore_target_wal;
	int output_bytes;         /* kept of each child's stdout and stderr; 0: 65536 */
	bool crash_recovery_only; /* steps 1-4 only: the single-user crash recovery */
};

enum pgkeel_rewind_job_status {
	PGKEEL_REWIND_JOB_RUNNING = 0,
	PGKEEL_REWIND_JOB_SUCCEEDED = 1,
	PGKEEL_REWIND_JOB_FAILED = 2, /* pgkeel_rewind_job_error() says why */
};

/* What the HA loop does next (Patroni's REWIND_STATUS after execute). */
enum pgkeel_rewind_result {
	PGKEEL_REWIND_RESULT_NONE = 0, /* still running */
	PGKEEL_REWIND_SUCCESS,         /* rewound: start as a replica */
	PGKEEL_REWIND_RETRY,           /* nothing decided (leader not ready or unreachable, a step
	                                  failed, cancelled): check and try again later */
	PGKEEL_REWIND_FAILED,          /* pg_rewind failed against a healthy leader: do not retry */
	PGKEEL_REWIND_REMOVED,         /* ...and the data directory was removed: clone again */
};

struct pgkeel_rewind_job;

/*
 * Start.  NULL with err when refused before anything ran: no data_dir, no
 * leader or an unparsable conn_url (unless crash_recovery_only), the leader
 * is this node, no server version, PostgreSQL running ("Can not run
 * pg_rewind because postgres is still running"; "Can not do crash recovery
 * because postgres is still running"), pg_controldata cannot be started.
 */
struct pgkeel_rewind_job *pgkeel_rewind_job_start(const struct pgkeel_rewind_job_opts *opts,
                                                  char *err, size_t errlen) PGKEEL_MUSTCHECK;

/* Make progress without waiting for a child; the current status. */
enum pgkeel_rewind_job_status pgkeel_rewind_job_poll(struct pgkeel_rewind_job *j);

/* Poll and wait for its descriptors until it ends or deadline_ms passes. */
enum pgkeel_rewind_job_status pgkeel_rewind_job_wait(struct pgkeel_rewind_job *j,
                                                     int64_t deadline_ms);

/*
 * For an event loop: descriptors to poll() for POLLIN (at most
 * PGKEEL_REWIND_JOB_MAX_FDS), and when poll has work regardless (INT64_MAX:
 * only when a descriptor fires; <= now: at once).
 */
size_t pgkeel_rewind_job_pollfds(const struct pgkeel_rewind_job *j, struct pollfd *fds, size_t n);
int64_t pgkeel_rewind_job_wake_at(const struct pgkeel_rewind_job *j);

/*
 * Stop: the running child's group gets SIGTERM, then SIGKILL at deadline_ms
 * (returns by then).  The job ends FAILED with RETRY ("... cancelled"); a
 * data directory removal already under way is finished first (keep polling
 * while RUNNING).
 */
void pgkeel_rewind_job_cancel(struct pgkeel_rewind_job *j, int64_t deadline_ms);

/* Kill whatever runs, wait for a removal in progress, drop the config reference. */
void pgkeel_rewind_job_free(struct pgkeel_rewind_job *j);

enum pgkeel_rewind_job_status pgkeel_rewind_job_status(const struct pgkeel_rewind_job *j);
enum pgkeel_rewind_result pgkeel_rewind_job_result(const struct pgkeel_rewind_job *j);
/* "" unless FAILED. */
const char *pgkeel_rewind_job_error(const struct pgkeel_rewind_job *j);

/* What the job did (for the HA loop's messages and the tests). */
struct pgkeel_rewind_job_info {
	bool crash_recovery;            /* the single-user run happened */
	unsigned archived;              /* .ready segments archived */
	unsigned wal_fetched;           /* missing segments fetched with restore_command */
	unsigned rewind_runs;           /* pg_rewind started */
	const char *const *rewind_argv; /* the last pg_rewind's argv, NULL if none ran */
	const char *const *rewind_env;  /* its environment overrides, NULL-terminated */
};
void pgkeel_rewind_job_info(const struct pgkeel_rewind_job *j, struct pgkeel_rewind_job_info *out);

#endif
