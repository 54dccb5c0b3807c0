/*
 * pg_bootstrap: a new cluster's data directory (initdb or a custom
 * bootstrap method), the post-bootstrap roles and script, and replica
 * creation (pg_basebackup or custom replica methods), as Patroni 3.0.2's
 * patroni/postgresql/bootstrap.py does them (spec/patroni-dcs-and-ha.md
 * §7.1, §7.3).  pg_bootstrap.c has bootstrap, post-bootstrap and the task
 * driver, pg_replica.c replica creation, pg_task.c what they share
 * (pg_task.h, internal to the three).
 *
 * Each job is a task: a small state machine that runs its commands as
 * tracked children (core/child.h) and never blocks the caller past a
 * deadline the caller chooses, so the HA loop keeps renewing its lock while
 * initdb or pg_basebackup run.  The pause between pg_basebackup attempts is
 * a timer of the task, not a sleep.
 *
 *   struct pgkeel_pg_task *t = pgkeel_pg_bootstrap_start(&opts, err, sizeof(err));
 *   if (t == NULL)
 *           ... refused before anything ran (err says why) ...
 *   while (pgkeel_pg_task_wait(t, pgkeel_now_monotonic_ms() + 1000) == PGKEEL_PG_TASK_RUNNING)
 *           ... renew the leader lock, answer REST ...
 *   if (pgkeel_pg_task_status(t) == PGKEEL_PG_TASK_FAILED)
 *           log_error("%s", pgkeel_pg_task_error(t));
 *   pgkeel_pg_task_free(t);
 *
 * An event loop may instead poll() the descriptors of
 * pgkeel_pg_task_pollfds() until pgkeel_pg_task_wake_at() and then call
 * pgkeel_pg_task_poll().  Poll never waits for a child; removing a data
 * directory (a large one takes a while) runs on a thread of the task whose
 * end is one of those descriptors.  The only blocking work poll does is one
 * role's SQL statements on the post-bootstrap connection, each bounded by
 * opts.sql_timeout_ms, and small file operations.
 *
 * Children get the environment core/child.h gives them (PATRONI_* and
 * PGKEEL_* removed) plus the variables Patroni sets: PGPASSFILE for
 * pg_basebackup, replica methods and post_bootstrap (a pgpass file written
 * at postgresql.pgpass with the credentials), PGOPTIONS for post_bootstrap.
 * Their stdout and stderr are collected; the last few KiB are logged when
 * they end and quoted in the task's error when they fail.
 *
 * What this module leaves to its caller (the config and process modules):
 * writing postgresql.conf and the recovery settings (a custom bootstrap's
 * recovery_conf is handed back), restoring Patroni's configuration files
 * after a custom bootstrap or a clone, starting PostgreSQL, and after a
 * custom bootstrap the pg_hba rewrite and reload/restart of Patroni's
 * post_bootstrap.
 *
 * Deliberate differences from Patroni 3.0.2:
 *  - initdb is run directly (`initdb <options> <data_dir>`, as Patroni 4
 *    does) rather than through `pg_ctl initdb -o '<options>'` and a shell;
 *    option values that are one fully quoted word lose their quotes, as
 *    with the shell and Patroni 4's unquote().
 *  - forbidden options are refused in the map form too (Patroni only
 *    checks the list form), and `pgdata=/x` written as a plain string counts
 *    as pgdata.  initdb refuses them before running anything; pg_basebackup
 *    drops them with an error logged, as Patroni does.
 *  - PGOPTIONS for post_bootstrap is "-c synchronous_commit=local -c
 *    statement_timeout=0" (Patroni 3.0.2 sets only the first; later
 *    versions both).  The superuser password file for initdb must be
 *    non-empty to be used (Patroni >= 4.1.1).
 *  - a custom bootstrap method's extra keys are passed as --key=value
 *    (Patroni 4; 3.0.2 ignored them).
 *  - role DDL is dollar-quoted with a tag that does not occur in it (a
 *    password containing "$$" broke Patroni's DO block).
 *  - pg_basebackup's --compress=server-... is allowed on PostgreSQL 15+
 *    (Patroni >= 4.1.1).
 *
 * Threads: a task belongs to the thread that started it.
 */
#ifndef PGKEEL_PG_BOOTSTRAP_H
#define PGKEEL_PG_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <pgkeel/host.h>

#include "child.h"
#include "config.h"

struct pgkeel_pg;
struct pollfd;

/* Patroni's pause between the two pg_basebackup attempts. */
#define PGKEEL_PG_BASEBACKUP_RETRY_MS 5000
#define PGKEEL_PG_BASEBACKUP_ATTEMPTS 2
/* Descriptors pgkeel_pg_task_pollfds() may return. */
#define PGKEEL_PG_TASK_MAX_FDS 3

enum pgkeel_pg_task_kind {
	PGKEEL_PG_TASK_BOOTSTRAP,      /* initdb or the custom bootstrap method */
	PGKEEL_PG_TASK_POST_BOOTSTRAP, /* roles and the post_bootstrap script */
	PGKEEL_PG_TASK_CREATE_REPLICA, /* create_replica_methods */
};

enum pgkeel_pg_task_status {
	PGKEEL_PG_TASK_RUNNING = 0,
	PGKEEL_PG_TASK_SUCCEEDED = 1,
	PGKEEL_PG_TASK_FAILED = 2, /* pgkeel_pg_task_error() says why */
};

struct pgkeel_pg_boot_opts {
	/* The configuration: bootstrap.* from cfg->local, postgresql.* from
	 * cfg->effective.  The task keeps a reference until it is freed. */
	struct pgkeel_config *cfg;
	/* Run children as this user, and give it the temporary password file
	 * and the pgpass file (a daemon started as root).  NULL: as ourselves. */
	const struct pgkeel_child_user *user;
	/* The pgpass file to write; NULL: postgresql.pgpass as Patroni reads
	 * it (relative to the working directory; default $HOME/pgpass). */
	const char *pgpass_path;
	/* server_version_num of the binaries (150000 for 15).  0: from the
	 * server (post-bootstrap) or PG_VERSION; replica creation then assumes
	 * a version below 15 for the --compress rule. */
	int server_version;
	/* Post-bootstrap: the connection to the new primary, borrowed.  NULL:
	 * the task opens its own to Patroni's local address as the superuser. */
	struct pgkeel_pg *pg;
	int sql_timeout_ms;      /* each role's statements; 0: 10000 */
	int basebackup_retry_ms; /* 0: PGKEEL_PG_BASEBACKUP_RETRY_MS */
	int output_tail_bytes;   /* children's output kept; 0: 4096 */
};

struct pgkeel_pg_task;

/*
 * Bootstrap a new cluster's data directory: bootstrap.method (default
 * initdb) -- `initdb <bootstrap.initdb options> [--username=<superuser>]
 * [--pwfile=<temp file>] <data_dir>`, the password file 0600 (owned by
 * opts.user) and removed when initdb ends -- or the custom method's
 * `shlex(command) [--scope=<scope> --datadir=<data_dir>] [--k=v...]`,
 * after which a promote trigger file and, unless keep_existing_recovery_conf
 * or recovery_conf is given, recovery.conf / standby.signal /
 * recovery.signal are removed.  Then bootstrap.pg_hba is appended to
 * <config_dir>/pg_hba.conf unless postgresql.pg_hba (or an hba_file
 * elsewhere) is configured.
 * NULL with err when refused before anything ran: a forbidden or malformed
 * initdb option (the message names the key), a data directory that is not
 * empty, an unparsable command, a program that cannot be started.
 */
struct pgkeel_pg_task *pgkeel_pg_bootstrap_start(const struct pgkeel_pg_boot_opts *opts, char *err,
                                                 size_t errlen) PGKEEL_MUSTCHECK;

/*
 * After the bootstrap, on the running primary out of recovery, in
 * Patroni's order: the superuser role (when username and password are
 * configured), then bootstrap.post_bootstrap (or post_init) as
 * `shlex(cmd) <dsn>` with PGPASSFILE and PGOPTIONS (non-zero exit = failed,
 * the output tail in the error), then the replication role (REPLICATION
 * LOGIN), a rewind role distinct from the superuser (PostgreSQL 11+) with
 * EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file, and
 * bootstrap.users with their options.  Each role is created or altered in a
 * DO block with log_statement, log_min_duration_statement,
 * log_min_error_statement and pg_stat_statements.track_utility set so that
 * the password is not logged, then reset.
 */
struct pgkeel_pg_task *pgkeel_pg_post_bootstrap_start(const struct pgkeel_pg_boot_opts *opts,
                                                      char *err, size_t errlen) PGKEEL_MUSTCHECK;

/* Where to clone from: a member's conn_url parsed (Patroni's conn_kwargs). */
struct pgkeel_pg_source {
	char host[256];
	char port[16];
	char dbname[64]; /* "" when the URL has no path */
};

/* postgres://host:port/dbname (port default 5432, [v6] literals) -> src. */
bool pgkeel_pg_source_from_url(const char *conn_url, struct pgkeel_pg_source *out) PGKEEL_MUSTCHECK;

/*
 * Create a replica's data directory.  methods: a JSON array of method
 * names (standby_cluster.create_replica_methods, or ["basebackup"] for
 * reinitialize --from-leader); NULL: postgresql.create_replica_methods
 * (legacy create_replica_method), default [basebackup].  src NULL: no
 * member to clone from; only methods with no_leader (or no_master) run.
 * Methods are tried in order until one exits 0:
 *  - basebackup: `pg_basebackup --pgdata=<data_dir> -X stream --dbname=<dsn>
 *    <postgresql.basebackup options>`, the data directory wiped before each
 *    of two attempts 5 s apart;
 *  - any other m: postgresql.<m> = {command (default m), keep_data,
 *    no_params, no_leader, extras...}; the data directory is wiped before
 *    and after a failed attempt unless keep_data; argv is shlex(command) +
 *    --key=value for the section's other keys in order, then (unless
 *    no_params) --scope, --role=replica, --datadir and --connstring.
 * When every method fails the data directory is removed.  NULL with err
 * when there is nothing to try.
 */
struct pgkeel_pg_task *pgkeel_pg_create_replica_start(const struct pgkeel_pg_boot_opts *opts,
                                                      const struct pgkeel_pg_source *src,
                                                      json_object *methods, char *err,
                                                      size_t errlen) PGKEEL_MUSTCHECK;

/* Does some method of `methods` (NULL: as above) work without a leader? */
bool pgkeel_pg_replica_without_leader(const struct pgkeel_config *cfg, json_object *methods);

/* Make progress without waiting for a child; the current status. */
enum pgkeel_pg_task_status pgkeel_pg_task_poll(struct pgkeel_pg_task *t);

/*
 * Poll, waiting in between for the child or the retry timer, until the
 * task ends or deadline_ms (CLOCK_MONOTONIC, as pgkeel_now_monotonic_ms())
 * passes.  Returns by the deadline, plus at most one role's SQL.
 */
enum pgkeel_pg_task_status pgkeel_pg_task_wait(struct pgkeel_pg_task *t, int64_t deadline_ms);

/*
 * For an event loop: the descriptors to poll() for POLLIN (the child's
 * pidfd and output pipe, the data directory removal's pipe; at most
 * PGKEEL_PG_TASK_MAX_FDS), and the time at which
 * pgkeel_pg_task_poll() has work regardless (INT64_MAX: only when a
 * descriptor fires; <= now: at once).
 */
size_t pgkeel_pg_task_pollfds(const struct pgkeel_pg_task *t, struct pollfd *fds, size_t n);
int64_t pgkeel_pg_task_wake_at(const struct pgkeel_pg_task *t);

/*
 * Stop the task: the running child's process group gets SIGTERM, then
 * SIGKILL at deadline_ms (this call returns by then).  The task ends
 * FAILED ("... cancelled"); a replica task first removes the data
 * directory it was filling, in the background: keep polling it until it
 * is no longer RUNNING.
 */
void pgkeel_pg_task_cancel(struct pgkeel_pg_task *t, int64_t deadline_ms);

/*
 * Kill whatever still runs, remove temporary files, drop the config
 * reference.  A data directory removal in progress is waited for.
 */
void pgkeel_pg_task_free(struct pgkeel_pg_task *t);

enum pgkeel_pg_task_kind pgkeel_pg_task_kind(const struct pgkeel_pg_task *t);
enum pgkeel_pg_task_status pgkeel_pg_task_status(const struct pgkeel_pg_task *t);
/* "" unless FAILED. */
const char *pgkeel_pg_task_error(const struct pgkeel_pg_task *t);
/*
 * Patroni's postgres state for the REST API: "initializing new cluster",
 * "initdb failed", "running custom bootstrap script", "custom bootstrap
 * failed", "creating replica", "stopped"; NULL when the task sets none.
 */
const char *pgkeel_pg_task_state(const struct pgkeel_pg_task *t);
/* The argv of the last command started (NULL-terminated), NULL if none. */
const char *const *pgkeel_pg_task_last_argv(const struct pgkeel_pg_task *t);
/* Its environment overrides ("NAME=value"), NULL-terminated, never NULL. */
const char *const *pgkeel_pg_task_last_env(const struct pgkeel_pg_task *t);
/* Commands started so far (pg_basebackup attempts count one each). */
unsigned pgkeel_pg_task_commands(const struct pgkeel_pg_task *t);

/* Bootstrap: was it a custom method, and what it asks for afterwards. */
struct pgkeel_pg_bootstrap_info {
	bool custom;
	const char *method; /* "initdb" or the custom method's name */
	bool keep_existing_recovery_conf;
	json_object *recovery_conf; /* borrowed from the config; NULL: none */
};
void pgkeel_pg_task_bootstrap_info(const struct pgkeel_pg_task *t,
                                   struct pgkeel_pg_bootstrap_info *out);
/* Replica: the method that created it; NULL unless SUCCEEDED. */
const char *pgkeel_pg_task_replica_method(const struct pgkeel_pg_task *t);

/* ---- pieces, exposed for the HA loop and the tests ---- */

/*
 * Patroni's data_directory_empty: false when global/pg_control exists;
 * else true when the directory is missing or holds only dot files and
 * lost+found.
 */
bool pgkeel_pg_data_dir_empty(const char *data_dir);

/*
 * Patroni's remove_data_directory: a symlink or file is unlinked; a
 * directory is removed with the targets of a symlinked pg_wal / pg_xlog
 * and of the tablespace links in pg_tblspc.  Symlinks inside are never
 * followed.  A missing directory is fine.
 */
bool pgkeel_pg_remove_data_dir(const char *data_dir, char *err, size_t errlen) PGKEEL_MUSTCHECK;

/*
 * Patroni's local connection address (use_unix_socket: the first absolute
 * unix_socket_directories entry, else TCP: "localhost" when listening
 * there or on a wildcard, else the first listen address).  *host is NULL
 * for the default socket directory.  Both malloc'd.
 */
void pgkeel_pg_local_address(const struct pgkeel_config *cfg, bool replication, char **host,
                             char **port);

/*
 * A handle (not connected yet) for Patroni's local connection: the local
 * address above, the superuser's credentials from postgresql.authentication
 * (and its extra libpq keys: sslmode...), the configured database.
 */
struct pgkeel_pg *pgkeel_pg_local_connection(const struct pgkeel_config *cfg);

#endif
