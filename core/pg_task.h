/*
 * pg_task: the insides of the tasks of pg_bootstrap.h, shared by the files
 * that implement them -- pg_bootstrap.c (bootstrap, post-bootstrap and the
 * pgkeel_pg_task_* driver), pg_replica.c (replica creation) and pg_task.c
 * (what both need: configuration lookups, user options, a task's child and
 * its output, pgpass, the removal of a data directory).  pg_rewind_run.c
 * borrows the helpers, the pgpass writer and the removal; nothing else may
 * use this header: everything here is named pgkeel_pgt_*; the public
 * interface is pg_bootstrap.h.
 */
#ifndef PGKEEL_PG_TASK_H
#define PGKEEL_PG_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <pgkeel/host.h>

#include "child.h"
#include "config.h"
#include "pg_bootstrap.h"

/* ---- the task ---- */

enum pgkeel_pgt_step {
	PGKEEL_PGT_DONE,
	PGKEEL_PGT_BOOT_RUN,       /* initdb or the custom command runs */
	PGKEEL_PGT_PB_FIRST_ROLES, /* the superuser role */
	PGKEEL_PGT_PB_SCRIPT,      /* start post_bootstrap */
	PGKEEL_PGT_PB_SCRIPT_WAIT,
	PGKEEL_PGT_PB_LATER_ROLES,  /* replication, rewind, bootstrap.users */
	PGKEEL_PGT_RC_NEXT,         /* the next replica method */
	PGKEEL_PGT_RC_CUSTOM_START, /* a custom method: start its command */
	PGKEEL_PGT_RC_CUSTOM_WAIT,
	PGKEEL_PGT_RC_BB_START, /* a pg_basebackup attempt: wipe, then spawn */
	PGKEEL_PGT_RC_BB_SPAWN,
	PGKEEL_PGT_RC_BB_WAIT,
	PGKEEL_PGT_RC_BB_SLEEP, /* between attempts */
	PGKEEL_PGT_RC_FAILED,   /* every method failed (or cancelled); the data directory is gone */
	PGKEEL_PGT_WIPE,        /* the data directory is being removed; then after_wipe */
};

struct pgkeel_pgt_role_job; /* pg_bootstrap.c */
struct pgkeel_pgt_wiper;    /* pg_task.c */

struct pgkeel_pg_task {
	enum pgkeel_pg_task_kind kind;
	enum pgkeel_pg_task_status status;
	enum pgkeel_pgt_step step;
	struct pgkeel_config *cfg;
	struct pgkeel_child_user user;
	bool have_user;
	char *data_dir;
	char *pgpass_path;
	int server_version;
	int sql_timeout_ms;
	int retry_ms;
	size_t tail_cap;

	/* the current child */
	struct pgkeel_child child;
	bool child_running;
	bool out_eof;
	int last_wstatus;
	char *what; /* "initdb", "pg_basebackup", "post_bootstrap script x"... */
	char **argv;
	char **env;
	unsigned commands;
	char *tail;
	size_t tail_len;

	const char *state;
	char *error;
	int64_t wake_at;

	/* bootstrap */
	char *pwfile;
	char *method;
	struct pgkeel_pg_bootstrap_info info;

	/* post-bootstrap */
	struct pgkeel_pg *pg;
	bool own_pg;
	struct pgkeel_pgt_role_job *jobs;
	size_t njobs;
	size_t job;
	char *script;

	/* replica */
	char **methods;
	size_t nmethods;
	size_t mi;
	int attempt;
	char *connstring;
	char **base_env; /* PGPASSFILE when a password was written */
	char **bb_argv;
	bool keep_data;
	bool cancelled;
	char *used_method;
	char *last_failure;
	struct pgkeel_pgt_wiper *wipe; /* a removal in progress */
	enum pgkeel_pgt_step after_wipe;
};

/* ---- pg_task.c: helpers ---- */

/* A growable NULL-terminated array of malloc'd strings. */
struct pgkeel_pgt_strv {
	char **v;
	size_t n;
	size_t cap;
};

void pgkeel_pgt_strv_push(struct pgkeel_pgt_strv *s, char *owned);
/* The array (never NULL: an empty one when nothing was pushed); pgkeel_argv_free() frees it. */
char **pgkeel_pgt_strv_finish(struct pgkeel_pgt_strv *s);

const char *pgkeel_pgt_jstr(json_object *v);
/* A non-empty string value, else NULL. */
const char *pgkeel_pgt_jstr_nonempty(json_object *v);
json_object *pgkeel_pgt_pg_section(const struct pgkeel_config *cfg);
/* The value of key in obj (an object), or NULL. */
json_object *pgkeel_pgt_jget(json_object *obj, const char *key);
bool pgkeel_pgt_jhas(json_object *obj, const char *key);
/* os.path.join(a, b) for two parts. */
char *pgkeel_pgt_path_join(const char *a, const char *b);
/* An absolute path (relative ones against the working directory; not normalised). */
char *pgkeel_pgt_abs_path(const char *path);
/* <bin_dir>/<bin_name.tool or tool>; without bin_dir just the name (PATH lookup). */
char *pgkeel_pgt_bin_path(const struct pgkeel_config *cfg, const char *tool);
const char *pgkeel_pgt_database_name(const struct pgkeel_config *cfg);
json_object *pgkeel_pgt_auth_section(const struct pgkeel_config *cfg, const char *who);
void pgkeel_pgt_set_err(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);
/* Python's shlex.split (pg_callbacks.h); NULL with its message in err. */
char **pgkeel_pgt_shlex_split(const char *s, char *err, size_t errlen);
/* s[0..n) without leading and trailing whitespace, malloc'd. */
char *pgkeel_pgt_trimmed(const char *s, size_t n);

/*
 * Patroni's process_user_options: `flag` -> --flag, {key: value} -> --key=value
 * (list form), {key: value, ...} -> --key=value for truthy values (map form).
 * Forbidden names are refused in both forms.  strict (initdb): the first
 * problem fails with err; otherwise (pg_basebackup) problems are logged and
 * the option is dropped, as Patroni does.
 */
struct pgkeel_pgt_opt_rules {
	const char *tool;
	const char *key;              /* configuration key, for messages */
	const char *const *forbidden; /* NULL-terminated */
	bool strict;
	bool compress_server_ok; /* pg_basebackup on 15+: --compress=server-... */
};

bool pgkeel_pgt_user_options(const struct pgkeel_pgt_opt_rules *r, json_object *opts,
                             struct pgkeel_pgt_strv *out, char *err, size_t errlen);

/* Patroni's format_dsn(params, include_dbname=True): pgkeel_pg_format_dsn(r, true). */
char *pgkeel_pgt_format_dsn(json_object *r);
/* auth's non-null entries into r, username as user (Member.conn_kwargs). */
void pgkeel_pgt_add_auth(json_object *r, json_object *auth);

/* ---- pg_task.c: the task and its child ---- */

struct pgkeel_pg_task *pgkeel_pgt_task_new(enum pgkeel_pg_task_kind kind,
                                           const struct pgkeel_pg_boot_opts *o);
/* The task ends FAILED with this error. */
void pgkeel_pgt_task_fail(struct pgkeel_pg_task *t, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
/* Start argv (taken over) with env overrides (copied; NULL: none) as `what`. */
bool pgkeel_pgt_task_spawn(struct pgkeel_pg_task *t, char **argv, char *const *env,
                           const char *what, char *err, size_t errlen);
/* Read what the child wrote so far (its last tail_cap bytes are kept). */
void pgkeel_pgt_drain_output(struct pgkeel_pg_task *t);
/* Has the child ended?  Never waits; collects its output. */
bool pgkeel_pgt_child_done(struct pgkeel_pg_task *t);
bool pgkeel_pgt_child_ok(const struct pgkeel_pg_task *t);
/* "exited with code 1: <output tail>" */
char *pgkeel_pgt_child_failure(const struct pgkeel_pg_task *t);
/* Give a file we created to the children's user. */
bool pgkeel_pgt_give_to_user(const struct pgkeel_pg_task *t, int fd, const char *path, char *err,
                             size_t errlen);
/*
 * Patroni's write_pgpass: the record's line (host default *, one line per
 * comma-separated host; an empty password as *) into the pgpass file at
 * path, then given to user (NULL: left as it is); *env_out gets
 * "PGPASSFILE=<path>".  Nothing is written without a password.
 */
bool pgkeel_pgt_pgpass_write_record(const char *path, const struct pgkeel_child_user *user,
                                    json_object *r, char **env_out, char *err, size_t errlen);
/* The same for a task: its pgpass path and user. */
bool pgkeel_pgt_write_pgpass(struct pgkeel_pg_task *t, json_object *r, char **env_out, char *err,
                             size_t errlen);

/* ---- pg_task.c: removing a data directory (also pg_rewind_run.c's) ---- */

/*
 * Removing a data directory can take long (a big database): a thread does
 * it and writes one byte into a pipe when done, which the owner polls.
 * When no thread can be started, the removal is done at once, in the
 * caller.  A failed removal is logged when it is seen over.
 */
struct pgkeel_pgt_wiper *pgkeel_pgt_wiper_start(const char *path);
/* Is the removal over?  Never waits, unless `block`.  True for NULL. */
bool pgkeel_pgt_wiper_done(struct pgkeel_pgt_wiper *w, bool block);
/* The descriptor that becomes readable when the removal is over; -1: no thread runs. */
int pgkeel_pgt_wiper_fd(const struct pgkeel_pgt_wiper *w);
/* Why a removal that is over failed; NULL when it succeeded. */
const char *pgkeel_pgt_wiper_error(const struct pgkeel_pgt_wiper *w);
/* Waits for the removal, then frees; NULL is fine. */
void pgkeel_pgt_wiper_free(struct pgkeel_pgt_wiper *w);

/* ---- pg_replica.c: what the driver needs of a replica task ---- */

void pgkeel_pgt_replica_poll(struct pgkeel_pg_task *t);
/* Start removing the data directory; the task goes on at `after` once it is gone. */
void pgkeel_pgt_replica_wipe(struct pgkeel_pg_task *t, enum pgkeel_pgt_step after);
/* Is the removal over?  Never waits, unless `block` (pgkeel_pg_task_free). */
bool pgkeel_pgt_wipe_finished(struct pgkeel_pg_task *t, bool block);
/* The descriptor that becomes readable when the removal is over; -1: none runs. */
int pgkeel_pgt_wipe_fd(const struct pgkeel_pg_task *t);

#endif
