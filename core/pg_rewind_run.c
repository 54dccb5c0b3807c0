/*
 * The rewind job (pg_rewind_run.h): a state machine of tracked children.
 * Read against Patroni's patroni/postgresql/rewind.py (execute, pg_rewind,
 * _archive_ready_wals, _fetch_missing_wal, ensure_clean_shutdown; 3.0.2 with
 * the fixes up to 3.3.1) and get_guc_value in postgresql/__init__.py.
 */
#include "autoconf.h"

#include "pg_rewind_run.h"
#include "pg_rewind_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "pg_bootstrap.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_task.h"
#include "util.h"

#define DEFAULT_SQL_TIMEOUT_MS     10000
#define DEFAULT_COMMAND_TIMEOUT_MS 60000
#define DEFAULT_CRASH_TIMEOUT_MS   3600000
#define DEFAULT_MAX_WAL_FETCHES    64

enum step {
	ST_CONTROLDATA, /* pg_controldata: first, after crash recovery, after a failure */
	ST_GUC,         /* postgres -C archive_mode / archive_command / restore_command */
	ST_ARCHIVE,     /* the .ready segments, one archive_command each */
	ST_CRASH,       /* postgres --single */
	ST_CHECKPOINT,  /* the leader's post-promote checkpoint (SQL) */
	ST_REWIND,      /* pg_rewind */
	ST_FETCH,       /* restore_command for a missing segment */
	ST_WIPE,        /* the data directory is being removed */
	ST_DONE,
};

enum cd_purpose { CD_FIRST, CD_AFTER_CRASH, CD_AFTER_FAILURE };

struct pgkeel_rewind_job {
	enum pgkeel_rewind_job_status status;
	enum pgkeel_rewind_result result;
	enum step step;
	struct pgkeel_config *cfg;
	struct pgkeel_child_user user;
	bool have_user;
	int version;
	int sql_timeout_ms, command_timeout_ms, crash_timeout_ms, rewind_timeout_ms;
	int max_fetches;
	bool no_restore_target_wal;
	char *data_dir;
	char *wal_dir;
	char *conf_path;
	bool config_in_data_dir;
	char *pgpass_path;

	/* the leader */
	char *leader_name;
	enum pgkeel_tristate checkpoint_after_promote;
	json_object *rewind_rec; /* Patroni's r: address + rewind credentials */
	json_object *super_rec;  /* address + superuser credentials */
	bool super_is_rewind;

	struct pgkeel_rw_cmd cmd;
	enum cd_purpose cd_purpose;
	bool clean; /* pg_controldata said "shut down" / "shut down in recovery" */
	size_t guc;
	char *gucs[3]; /* archive_mode, archive_command, restore_command (NULL: unset) */
	char **ready;  /* segments to archive, sorted */
	size_t nready, ready_i;
	bool ready_listed;
	char **rewind_argv;
	char **rewind_env;
	char missing[25];
	char *fail_why; /* why pg_rewind failed, for the error */

	bool crash_only; /* opts.crash_recovery_only: no leader, no rewind */
	bool crash_recovery;
	unsigned archived, fetched, rewind_runs;
	bool cancelled;
	struct pgkeel_pgt_wiper *wipe;
	char *error;
};

static void job_end(struct pgkeel_rewind_job *j, enum pgkeel_rewind_result r, const char *fmt, ...)
    PGKEEL_PRINTF(3, 4);
static void job_end(struct pgkeel_rewind_job *j, enum pgkeel_rewind_result r, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	j->result = r;
	j->step = ST_DONE;
	if (r == PGKEEL_REWIND_SUCCESS) {
		j->status = PGKEEL_REWIND_JOB_SUCCEEDED;
		return;
	}
	va_start(ap, fmt);
	(void)pgkeel_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(j->error);
	j->error = pgkeel_strdup(msg);
	j->status = PGKEEL_REWIND_JOB_FAILED;
}

static int64_t after_ms(int ms)
{
	return ms > 0 ? pgkeel_now_monotonic_ms() + ms : INT64_MAX;
}

static const struct pgkeel_child_user *job_user(const struct pgkeel_rewind_job *j)
{
	return j->have_user ? &j->user : NULL;
}

/* Start a command of the current step; on failure the job ends (RETRY). */
static bool job_spawn(struct pgkeel_rewind_job *j, char **argv, const char *const *env,
                      const char *what, int timeout_ms)
{
	char err[512];

	if (pgkeel_rw_cmd_start(&j->cmd, argv, env, job_user(j), what, after_ms(timeout_ms), err,
	                        sizeof(err)))
		return true;
	job_end(j, PGKEEL_REWIND_RETRY, "%s", err);
	return false;
}

static char **argv_of(const char *first, ...)
{
	struct pgkeel_pgt_strv v = {0};
	const char *s;
	va_list ap;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *))
		pgkeel_pgt_strv_push(&v, pgkeel_strdup(s));
	va_end(ap);
	return pgkeel_pgt_strv_finish(&v);
}

static void start_controldata(struct pgkeel_rewind_job *j, enum cd_purpose purpose)
{
	char *bin = pgkeel_pgt_bin_path(j->cfg, "pg_controldata");

	j->cd_purpose = purpose;
	j->step = ST_CONTROLDATA;
	(void)job_spawn(j, argv_of(bin, j->data_dir, NULL), pgkeel_rw_c_env, "pg_controldata",
	                j->command_timeout_ms);
	free(bin);
}

static void start_wipe(struct pgkeel_rewind_job *j)
{
	j->wipe = pgkeel_pgt_wiper_start(j->data_dir);
	j->step = ST_WIPE;
}

/*
 * pg_rewind failed against a leader judged healthy (or the data directory
 * cannot be rewound any more): Patroni's FAILED state, and the removal of
 * the data directory when configured.
 */
static void rewind_failed(struct pgkeel_rewind_job *j)
{
	static const char *const names[] = {"remove_data_directory_on_rewind_failure",
	                                    "remove_data_directory_on_diverged_timelines"};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(names); i++) {
		if (pgkeel_rw_pg_flag(j->cfg, names[i])) {
			log_warning("%s is set. removing...", names[i]);
			start_wipe(j);
			return;
		}
	}
	job_end(j, PGKEEL_REWIND_FAILED, "Failed to rewind from %s: %s", j->leader_name,
	        j->fail_why);
}

/* After a failed pg_rewind (or WAL fetch): Patroni's checks in execute(). */
static void after_rewind_failure(struct pgkeel_rewind_job *j, const char *fmt, ...)
    PGKEEL_PRINTF(2, 3);
static void after_rewind_failure(struct pgkeel_rewind_job *j, const char *fmt, ...)
{
	char why[1024], err[512];
	va_list ap;

	va_start(ap, fmt);
	(void)pgkeel_vfmt(why, sizeof(why), fmt, ap);
	va_end(ap);
	free(j->fail_why);
	j->fail_why = pgkeel_strdup(why);
	if (pgkeel_rw_leader_not_in_recovery(j->rewind_rec, after_ms(j->sql_timeout_ms), err,
	                                     sizeof(err)) != PGKEEL_RW_LEADER_OK) {
		log_warning("Failed to rewind because primary %s become unreachable",
		            j->leader_name);
		/* the attempt may have damaged pg_control: can we still rewind? */
		start_controldata(j, CD_AFTER_FAILURE);
		return;
	}
	log_error("Failed to rewind from healty primary: %s", j->leader_name);
	rewind_failed(j);
}

static void controldata_done(struct pgkeel_rewind_job *j)
{
	json_object *cd = NULL;
	const char *state = NULL;
	char why[256], how[128];

	if (!pgkeel_rw_cmd_ok(&j->cmd) ||
	    (cd = pgkeel_controldata_parse(pgkeel_rw_text(&j->cmd.out))) == NULL ||
	    !pgkeel_controldata_str(cd, "Database cluster state", &state)) {
		char *err = pgkeel_strdup(pgkeel_rw_text(&j->cmd.err));

		pgkeel_rw_cmd_describe(&j->cmd, how, sizeof(how));
		pgkeel_rw_cmd_clear(&j->cmd);
		log_error("Error when calling pg_controldata: %s: %s", how, err);
		json_object_put(cd);
		if (j->cd_purpose == CD_AFTER_FAILURE)
			rewind_failed(j);
		else
			job_end(j, PGKEEL_REWIND_RETRY, "pg_controldata %s: %.300s", how, err);
		free(err);
		return;
	}
	pgkeel_rw_cmd_clear(&j->cmd);
	j->clean = strcmp(state, "shut down") == 0 || strcmp(state, "shut down in recovery") == 0;
	switch (j->cd_purpose) {
	case CD_FIRST:
		if (j->crash_only && j->clean) {
			log_info("no crash recovery needed: the data directory was shut down "
			         "cleanly (%s)",
			         state);
			job_end(j, PGKEEL_REWIND_SUCCESS, "%s", "");
			break;
		}
		if (!j->crash_only && !pgkeel_rewind_possible(true, cd, why, sizeof(why))) {
			job_end(j, PGKEEL_REWIND_RETRY, "cannot rewind %s: %s", j->data_dir, why);
			break;
		}
		if (!j->clean && !j->crash_only)
			log_info(
			    "the data directory was not shut down cleanly (%s): crash recovery "
			    "first",
			    state);
		j->step = ST_GUC;
		break;
	case CD_AFTER_CRASH:
		if (!j->clean) {
			job_end(j, PGKEEL_REWIND_RETRY,
			        "after crash recovery pg_controldata still says \"%s\"", state);
			break;
		}
		if (j->crash_only) {
			log_info("crash recovery in a single user mode done: pg_controldata says "
			         "\"%s\"",
			         state);
			job_end(j, PGKEEL_REWIND_SUCCESS, "%s", "");
			break;
		}
		j->step = ST_CHECKPOINT;
		break;
	case CD_AFTER_FAILURE:
		if (pgkeel_rewind_possible(true, cd, why, sizeof(why)))
			job_end(j, PGKEEL_REWIND_RETRY,
			        "pg_rewind failed and the leader %s is unreachable: %s",
			        j->leader_name, j->fail_why);
		else
			rewind_failed(j);
		break;
	}
	json_object_put(cd);
}

static const char *const guc_names[] = {"archive_mode", "archive_command", "restore_command"};
enum { GUC_ARCHIVE_MODE, GUC_ARCHIVE_COMMAND, GUC_RESTORE_COMMAND };

/* Patroni's get_guc_value: postgres -D <data> -C <name> --config-file=<postgresql.conf>. */
static void guc_step(struct pgkeel_rewind_job *j)
{
	if (j->cmd.argv == NULL) {
		char *bin, *conf;

		if (j->guc == GUC_RESTORE_COMMAND && j->version < 120000) {
			const char *rc = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(
			    pgkeel_rw_pg_opt(j->cfg, "recovery_conf"), "restore_command"));

			j->gucs[j->guc] = rc != NULL ? pgkeel_strdup(rc) : NULL;
			j->step = ST_ARCHIVE;
			return;
		}
		bin = pgkeel_pgt_bin_path(j->cfg, "postgres");
		conf = pgkeel_asprintf("--config-file=%s", j->conf_path);
		(void)job_spawn(
		    j, argv_of(bin, "-D", j->data_dir, "-C", guc_names[j->guc], conf, NULL), NULL,
		    "postgres -C", j->command_timeout_ms);
		free(bin);
		free(conf);
		return;
	}
	if (!pgkeel_rw_cmd_finished(&j->cmd))
		return;
	if (pgkeel_rw_cmd_ok(&j->cmd)) {
		const char *t = pgkeel_rw_text(&j->cmd.out);
		char *v = pgkeel_pgt_trimmed(t, strlen(t));

		if (v[0] != '\0')
			j->gucs[j->guc] = v;
		else
			free(v);
	} else {
		char how[128];

		pgkeel_rw_cmd_describe(&j->cmd, how, sizeof(how));
		log_error("Failed to execute postgres -C %s: %s: %s", guc_names[j->guc], how,
		          pgkeel_rw_text(&j->cmd.err));
	}
	pgkeel_rw_cmd_clear(&j->cmd);
	if (++j->guc == PGKEEL_ARRAY_LEN(guc_names))
		j->step = ST_ARCHIVE;
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .ready segments of archive_status, sorted; false (logged) when unreadable. */
static bool list_ready(struct pgkeel_rewind_job *j)
{
	char *dir = pgkeel_asprintf("%s/archive_status", j->wal_dir);
	struct pgkeel_pgt_strv v = {0};
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		log_error("Unable to list %s: %s", dir, strerror(errno));
		free(dir);
		return false;
	}
	while ((de = readdir(d)) != NULL)
		if (pgkeel_rewind_is_ready_file(de->d_name))
			pgkeel_pgt_strv_push(&v,
			                     pgkeel_dup_bytes(de->d_name, strlen(de->d_name) - 6));
	closedir(d);
	free(dir);
	j->ready = pgkeel_pgt_strv_finish(&v);
	j->nready = v.n;
	qsort(j->ready, j->nready, sizeof(*j->ready), cmp_names);
	return true;
}

/* Patroni's _archive_ready_wals: one segment per call. */
static void archive_step(struct pgkeel_rewind_job *j)
{
	const char *mode = j->gucs[GUC_ARCHIVE_MODE], *command = j->gucs[GUC_ARCHIVE_COMMAND];

	if (j->cmd.argv != NULL) {
		const char *wal = j->ready[j->ready_i];

		if (!pgkeel_rw_cmd_finished(&j->cmd))
			return;
		if (pgkeel_rw_cmd_ok(&j->cmd)) {
			char *from = pgkeel_asprintf("%s/archive_status/%s.ready", j->wal_dir, wal);
			char *to = pgkeel_asprintf("%s/archive_status/%s.done", j->wal_dir, wal);

			j->archived++;
			if (rename(from, to) == -1)
				log_error("Unable to rename %s to %s: %s", from, to,
				          strerror(errno));
			free(from);
			free(to);
		} else {
			log_info("Failed to archive WAL segment %s", wal);
		}
		pgkeel_rw_cmd_clear(&j->cmd);
		j->ready_i++;
	} else if (!j->ready_listed) {
		j->ready_listed = true;
		if (mode == NULL || (strcmp(mode, "on") != 0 && strcmp(mode, "always") != 0) ||
		    command == NULL || !list_ready(j)) {
			j->step = ST_CRASH;
			return;
		}
	}
	for (; j->ready_i < j->nready; j->ready_i++) {
		const char *wal = j->ready[j->ready_i];
		char *status = pgkeel_asprintf("%s/archive_status/%s.ready", j->wal_dir, wal);
		char *seg = pgkeel_asprintf("%s/%s", j->wal_dir, wal);
		bool go = is_file(status) && is_file(seg); /* it may have been archived meanwhile */

		free(status);
		free(seg);
		if (go) {
			char *cmd = pgkeel_rewind_archiver_command(command, j->wal_dir, wal);

			/* whoever wrote archive_command must not overwrite what the archive has */
			log_info("Trying to archive %s: %s", wal, cmd);
			(void)job_spawn(j, argv_of("/bin/sh", "-c", cmd, NULL), NULL,
			                "archive_command", j->command_timeout_ms);
			free(cmd);
			return;
		}
	}
	j->step = ST_CRASH;
}

/* Patroni's cleanup_archive_status: every entry of archive_status goes. */
static void cleanup_archive_status(const struct pgkeel_rewind_job *j)
{
	char *dir = pgkeel_asprintf("%s/archive_status", j->wal_dir);
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		log_error("Unable to list %s: %s", dir, strerror(errno));
		free(dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (S_ISLNK(st.st_mode) || S_ISREG(st.st_mode)) &&
		    unlinkat(dirfd(d), de->d_name, 0) == -1)
			log_error("Unable to remove %s/%s: %s", dir, de->d_name, strerror(errno));
	}
	closedir(d);
	free(dir);
}

static char *read_small_file(const char *path)
{
	struct pgkeel_sbuf b = {0};
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return NULL;
	while ((n = read(fd, buf, sizeof(buf))) > 0 && b.len < 1024 * 1024)
		pgkeel_sbuf_put(&b, buf, (size_t)n);
	close(fd);
	return pgkeel_sbuf_finish(&b);
}

/* Patroni's ensure_clean_shutdown (the archiving has been done by now). */
static void crash_step(struct pgkeel_rewind_job *j)
{
	static const char *const recovery_files[] = {"recovery.conf", "standby.signal",
	                                             "recovery.signal"};
	char how[128];

	if (j->cmd.argv == NULL) {
		char *path, *text, *bin;
		json_object *opts;

		if (j->clean) {
			j->step = ST_CHECKPOINT;
			return;
		}
		cleanup_archive_status(j);
		path = pgkeel_asprintf("%s/postmaster.opts", j->data_dir);
		text = read_small_file(path);
		if (text == NULL)
			log_error("Error when reading postmaster.opts: %s: %s", path,
			          strerror(errno));
		opts = pgkeel_rewind_postmaster_opts(text != NULL ? text : "");
		free(text);
		free(path);
		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(recovery_files); i++) {
			path = pgkeel_asprintf("%s/%s", j->data_dir, recovery_files[i]);
			if (unlink(path) == -1 && errno != ENOENT)
				log_error("Unable to remove %s: %s", path, strerror(errno));
			free(path);
		}
		bin = pgkeel_pgt_bin_path(j->cfg, "postgres");
		log_info("doing crash recovery in a single user mode");
		if (job_spawn(j, pgkeel_rewind_single_user_argv(bin, j->data_dir, opts), NULL,
		              "postgres --single", j->crash_timeout_ms))
			j->crash_recovery = true;
		free(bin);
		json_object_put(opts);
		return;
	}
	if (!pgkeel_rw_cmd_finished(&j->cmd))
		return;
	if (!pgkeel_rw_cmd_ok(&j->cmd)) {
		pgkeel_rw_cmd_describe(&j->cmd, how, sizeof(how));
		log_error("Crash recovery finished with code=%d", pgkeel_rw_cmd_exit_code(&j->cmd));
		pgkeel_rw_log_output(&j->cmd);
		job_end(j, PGKEEL_REWIND_RETRY, "crash recovery in single-user mode %s: %.500s",
		        how, pgkeel_rw_text(&j->cmd.err));
		return;
	}
	pgkeel_rw_cmd_clear(&j->cmd);
	start_controldata(j, CD_AFTER_CRASH);
}

/* The leader's post-promote checkpoint, as execute() requires it. */
static void checkpoint_step(struct pgkeel_rewind_job *j)
{
	int64_t deadline = after_ms(j->sql_timeout_ms);
	const char *status = NULL;
	char err[512];

	switch (j->checkpoint_after_promote) {
	case PGKEEL_TRI_FALSE:
		log_info("Waiting for checkpoint on %s before rewind", j->leader_name);
		job_end(j, PGKEEL_REWIND_RETRY, "leader has not done its checkpoint yet");
		return;
	case PGKEEL_TRI_ABSENT:
		/* the leader does not publish it (standby cluster, older Patroni) */
		if (j->super_is_rewind)
			status = pgkeel_rw_leader_checkpoint(j->super_rec, deadline);
		if (status == NULL)
			status = pgkeel_rw_leader_has_run_checkpoint(j->rewind_rec,
			                                             after_ms(j->sql_timeout_ms));
		if (status != NULL) {
			log_warning("Can not use %s for rewind: %s", j->leader_name, status);
			job_end(j, PGKEEL_REWIND_RETRY, "Can not use %s for rewind: %s",
			        j->leader_name, status);
			return;
		}
		break;
	case PGKEEL_TRI_TRUE:
		if (pgkeel_rw_leader_not_in_recovery(j->rewind_rec, deadline, err, sizeof(err)) !=
		    PGKEEL_RW_LEADER_OK) {
			job_end(j, PGKEEL_REWIND_RETRY, "%s", err);
			return;
		}
		break;
	}
	j->step = ST_REWIND;
}

/* pg_rewind's argv and environment (Patroni's pg_rewind()), built once. */
static bool prepare_rewind(struct pgkeel_rewind_job *j)
{
	struct pgkeel_pgt_strv env = {0};
	json_object *r = json_object_new_object();
	bool config_file = false, can_restore;
	char *pgpass_env, *dsn, *bin, err[512];

	if (!pgkeel_pgt_pgpass_write_record(j->pgpass_path, job_user(j), j->rewind_rec, &pgpass_env,
	                                    err, sizeof(err))) {
		job_end(j, PGKEEL_REWIND_RETRY, "%s", err);
		json_object_put(r);
		return false;
	}
	if (pgpass_env != NULL)
		pgkeel_pgt_strv_push(&env, pgpass_env);
	pgkeel_pgt_strv_push(&env, pgkeel_strdup("LANG=C"));
	pgkeel_pgt_strv_push(&env, pgkeel_strdup("LC_ALL=C"));
	pgkeel_pgt_strv_push(&env, pgkeel_strdup("PGOPTIONS=-c statement_timeout=0"));
	j->rewind_env = pgkeel_pgt_strv_finish(&env);

	json_object_object_foreach(j->rewind_rec, k, v)
	{
		if (strcmp(k, "password") != 0)
			json_object_object_add(r, k, json_object_get(v));
	}
	dsn = pgkeel_pgt_format_dsn(r);
	json_object_put(r);
	log_info("running pg_rewind from %s", dsn);
	can_restore = !j->no_restore_target_wal &&
	              pgkeel_rewind_can_restore(j->version, j->gucs[GUC_RESTORE_COMMAND] != NULL,
	                                        j->config_in_data_dir, &config_file);
	bin = pgkeel_pgt_bin_path(j->cfg, "pg_rewind");
	j->rewind_argv = pgkeel_rewind_argv(bin, j->data_dir, dsn, can_restore,
	                                    config_file ? j->conf_path : NULL, NULL);
	free(bin);
	free(dsn);
	return true;
}

static bool rewind_restores_itself(const struct pgkeel_rewind_job *j)
{
	for (char **a = j->rewind_argv; *a != NULL; a++)
		if (strcmp(*a, "--restore-target-wal") == 0)
			return true;
	return false;
}

static void rewind_step(struct pgkeel_rewind_job *j)
{
	char how[128];

	if (j->cmd.argv == NULL) {
		struct pgkeel_pgt_strv argv = {0};

		if (j->rewind_argv == NULL && !prepare_rewind(j))
			return;
		for (char **a = j->rewind_argv; *a != NULL; a++)
			pgkeel_pgt_strv_push(&argv, pgkeel_strdup(*a));
		if (job_spawn(j, pgkeel_pgt_strv_finish(&argv), (const char *const *)j->rewind_env,
		              "pg_rewind", j->rewind_timeout_ms))
			j->rewind_runs++;
		return;
	}
	if (!pgkeel_rw_cmd_finished(&j->cmd))
		return;
	log_info("pg_rewind exit code=%d", pgkeel_rw_cmd_exit_code(&j->cmd));
	pgkeel_rw_log_output(&j->cmd);
	if (pgkeel_rw_cmd_ok(&j->cmd)) {
		pgkeel_rw_cmd_clear(&j->cmd);
		job_end(j, PGKEEL_REWIND_SUCCESS, "%s", "");
		return;
	}
	pgkeel_rw_cmd_describe(&j->cmd, how, sizeof(how));
	if (j->gucs[GUC_RESTORE_COMMAND] != NULL && !rewind_restores_itself(j)) {
		char missing[25];

		if (pgkeel_rewind_missing_wal(pgkeel_rw_text(&j->cmd.err), missing) ||
		    pgkeel_rewind_missing_wal(pgkeel_rw_text(&j->cmd.out), missing)) {
			if (strcmp(missing, j->missing) == 0) {
				log_info("pg_rewind still misses %s after fetching it", missing);
			} else if (j->fetched >= (unsigned)j->max_fetches) {
				log_info("pg_rewind misses %s: %u WAL segments fetched already",
				         missing, j->fetched);
			} else {
				memcpy(j->missing, missing, sizeof(missing));
				pgkeel_rw_cmd_clear(&j->cmd);
				j->step = ST_FETCH;
				return;
			}
		}
	}
	{
		char *why =
		    pgkeel_asprintf("pg_rewind %s: %.500s", how, pgkeel_rw_text(&j->cmd.err));

		pgkeel_rw_cmd_clear(&j->cmd);
		after_rewind_failure(j, "%s", why);
		free(why);
	}
}

/* Patroni's _fetch_missing_wal: restore_command (shlex-split, no shell) for j->missing. */
static void fetch_step(struct pgkeel_rewind_job *j)
{
	if (j->cmd.argv == NULL) {
		char *cmd = pgkeel_rewind_archiver_command(j->gucs[GUC_RESTORE_COMMAND], j->wal_dir,
		                                           j->missing);
		char err[256];
		char **argv = pgkeel_pgt_shlex_split(cmd, err, sizeof(err));

		log_info("Trying to fetch the missing wal: %s", cmd);
		free(cmd);
		if (argv == NULL || argv[0] == NULL) {
			pgkeel_argv_free(argv);
			log_info("Failed to fetch WAL segment %s required for pg_rewind",
			         j->missing);
			after_rewind_failure(j, "restore_command for %s: %s", j->missing,
			                     argv == NULL ? err : "empty command");
			return;
		}
		(void)job_spawn(j, argv, NULL, "restore_command", j->command_timeout_ms);
		return;
	}
	if (!pgkeel_rw_cmd_finished(&j->cmd))
		return;
	if (!pgkeel_rw_cmd_ok(&j->cmd)) {
		char how[128];

		pgkeel_rw_cmd_describe(&j->cmd, how, sizeof(how));
		pgkeel_rw_cmd_clear(&j->cmd);
		log_info("Failed to fetch WAL segment %s required for pg_rewind", j->missing);
		after_rewind_failure(j, "restore_command for %s %s", j->missing, how);
		return;
	}
	pgkeel_rw_cmd_clear(&j->cmd);
	j->fetched++;
	j->step = ST_REWIND;
}

static void wipe_step(struct pgkeel_rewind_job *j)
{
	const char *err = pgkeel_pgt_wiper_error(j->wipe);

	if (err != NULL) {
		job_end(j, PGKEEL_REWIND_FAILED, "Failed to rewind from %s: %s; removing %s: %s",
		        j->leader_name, j->fail_why, j->data_dir, err);
	} else {
		job_end(j, PGKEEL_REWIND_REMOVED,
		        "Failed to rewind from %s: %s; data directory "
		        "removed",
		        j->leader_name, j->fail_why);
	}
	pgkeel_pgt_wiper_free(j->wipe);
	j->wipe = NULL;
}

enum pgkeel_rewind_job_status pgkeel_rewind_job_poll(struct pgkeel_rewind_job *j)
{
	/* each pass starts a command, handles an ended one, or moves to another step */
	for (;;) {
		if (j->status != PGKEEL_REWIND_JOB_RUNNING)
			return j->status;
		switch (j->step) {
		case ST_CONTROLDATA:
			if (pgkeel_rw_cmd_finished(&j->cmd))
				controldata_done(j);
			break;
		case ST_GUC:
			guc_step(j);
			break;
		case ST_ARCHIVE:
			archive_step(j);
			break;
		case ST_CRASH:
			crash_step(j);
			break;
		case ST_CHECKPOINT:
			checkpoint_step(j);
			break;
		case ST_REWIND:
			rewind_step(j);
			break;
		case ST_FETCH:
			fetch_step(j);
			break;
		case ST_WIPE:
			if (!pgkeel_pgt_wiper_done(j->wipe, false))
				return j->status;
			wipe_step(j);
			break;
		case ST_DONE:
			return j->status;
		}
		if (j->cmd.argv != NULL && !pgkeel_rw_cmd_finished(&j->cmd))
			return j->status; /* wait for it */
	}
}

struct pgkeel_rewind_job *pgkeel_rewind_job_start(const struct pgkeel_rewind_job_opts *o, char *err,
                                                  size_t errlen)
{
	const struct pgkeel_rewind_leader *l = o->leader;
	struct pgkeel_config *cfg = o->cfg;
	struct pgkeel_rewind_job *j;
	struct pgkeel_pg_source src;
	const char *pgpass, *cd, *base;
	char *config_dir, *data_abs;
	int version;

	if (cfg == NULL || cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
		pgkeel_rw_set_err(err, errlen, "postgresql.data_dir is not set");
		return NULL;
	}
	if (o->crash_recovery_only) {
		l = NULL; /* not used */
	} else if (l == NULL || l->name == NULL || !pgkeel_pg_source_from_url(l->conn_url, &src)) {
		pgkeel_rw_set_err(err, errlen, "no leader with a usable conn_url to rewind from");
		return NULL;
	}
	if (l != NULL && cfg->name != NULL && strcmp(l->name, cfg->name) == 0) {
		pgkeel_rw_set_err(err, errlen, "the leader is this node: nothing to rewind from");
		return NULL;
	}
	version = pgkeel_rw_server_version(cfg, o->server_version);
	if (version == 0) {
		pgkeel_rw_set_err(err, errlen, "cannot tell the PostgreSQL version of %s",
		                  cfg->data_dir);
		return NULL;
	}
	if (pgkeel_postmaster_check(cfg->data_dir, NULL) == PGKEEL_PM_RUNNING) {
		const char *what = l == NULL ? "do crash recovery" : "run pg_rewind";

		log_warning("Can not %s because postgres is still running", what);
		pgkeel_rw_set_err(err, errlen, "Can not %s because postgres is still running",
		                  what);
		return NULL;
	}

	j = pgkeel_xcalloc(1, sizeof(*j));
	j->status = PGKEEL_REWIND_JOB_RUNNING;
	j->cfg = pgkeel_config_ref(cfg);
	if (o->user != NULL) {
		j->user = *o->user;
		j->have_user = true;
	}
	j->version = version;
	j->sql_timeout_ms = o->sql_timeout_ms > 0 ? o->sql_timeout_ms : DEFAULT_SQL_TIMEOUT_MS;
	j->command_timeout_ms =
	    o->command_timeout_ms > 0 ? o->command_timeout_ms : DEFAULT_COMMAND_TIMEOUT_MS;
	j->crash_timeout_ms = o->crash_recovery_timeout_ms > 0 ? o->crash_recovery_timeout_ms
	                                                       : DEFAULT_CRASH_TIMEOUT_MS;
	j->rewind_timeout_ms = o->rewind_timeout_ms;
	j->max_fetches = o->max_wal_fetches > 0 ? o->max_wal_fetches : DEFAULT_MAX_WAL_FETCHES;
	j->no_restore_target_wal = o->no_restore_target_wal;
	pgkeel_rw_cmd_init(&j->cmd,
	                   o->output_bytes > 0 ? (size_t)o->output_bytes : PGKEEL_RW_OUTPUT_BYTES);

	/* paths as Patroni's: wal_dir, <config_dir>/<config_base_name>.conf, pgpass */
	j->data_dir = pgkeel_strdup(cfg->data_dir);
	j->wal_dir = pgkeel_pgt_path_join(j->data_dir, "pg_wal");
	cd = pgkeel_pgt_jstr_nonempty(pgkeel_rw_pg_opt(cfg, "config_dir"));
	base = pgkeel_pgt_jstr_nonempty(pgkeel_rw_pg_opt(cfg, "config_base_name"));
	config_dir = pgkeel_pgt_abs_path(cd != NULL ? cd : cfg->data_dir);
	data_abs = pgkeel_pgt_abs_path(cfg->data_dir);
	j->config_in_data_dir = strcmp(config_dir, data_abs) == 0;
	{
		char *name = pgkeel_asprintf("%s.conf", base != NULL ? base : "postgresql");

		j->conf_path = pgkeel_pgt_path_join(config_dir, name);
		free(name);
	}
	free(config_dir);
	free(data_abs);
	pgpass = o->pgpass_path != NULL ? o->pgpass_path
	                                : pgkeel_pgt_jstr_nonempty(pgkeel_rw_pg_opt(cfg, "pgpass"));
	if (pgpass != NULL) {
		j->pgpass_path = pgkeel_pgt_abs_path(pgpass);
	} else {
		const char *home = getenv("HOME");

		j->pgpass_path =
		    pgkeel_pgt_path_join(home != NULL && home[0] != '\0' ? home : "/", "pgpass");
	}

	j->crash_only = l == NULL;
	if (l != NULL) {
		j->leader_name = pgkeel_strdup(l->name);
		j->checkpoint_after_promote = l->checkpoint_after_promote;
		j->rewind_rec = pgkeel_rw_conn_record(
		    cfg, &src, pgkeel_rw_rewind_auth(cfg, version), version, true);
		j->super_rec = pgkeel_rw_conn_record(
		    cfg, &src, pgkeel_pgt_auth_section(cfg, "superuser"), version, true);
		j->super_is_rewind = json_object_equal(j->rewind_rec, j->super_rec) != 0;
	}

	start_controldata(j, CD_FIRST);
	if (j->status == PGKEEL_REWIND_JOB_FAILED) {
		pgkeel_rw_set_err(err, errlen, "%s", j->error);
		pgkeel_rewind_job_free(j);
		return NULL;
	}
	return j;
}

size_t pgkeel_rewind_job_pollfds(const struct pgkeel_rewind_job *j, struct pollfd *fds, size_t n)
{
	size_t k = 0;

	if (j->status != PGKEEL_REWIND_JOB_RUNNING)
		return 0;
	if (pgkeel_pgt_wiper_fd(j->wipe) != -1)
		pgkeel_rw_add_fd(fds, n, &k, pgkeel_pgt_wiper_fd(j->wipe));
	pgkeel_rw_cmd_pollfds(&j->cmd, fds, n, &k);
	return k;
}

int64_t pgkeel_rewind_job_wake_at(const struct pgkeel_rewind_job *j)
{
	if (j->status != PGKEEL_REWIND_JOB_RUNNING)
		return 0;
	if (j->step == ST_WIPE)
		return INT64_MAX;
	return pgkeel_rw_cmd_wake_at(&j->cmd);
}

enum pgkeel_rewind_job_status pgkeel_rewind_job_wait(struct pgkeel_rewind_job *j,
                                                     int64_t deadline_ms)
{
	for (;;) {
		enum pgkeel_rewind_job_status st = pgkeel_rewind_job_poll(j);
		struct pollfd fds[PGKEEL_REWIND_JOB_MAX_FDS];
		int64_t now, until;

		if (st != PGKEEL_REWIND_JOB_RUNNING)
			return st;
		now = pgkeel_now_monotonic_ms();
		if (now >= deadline_ms)
			return st;
		until = pgkeel_rewind_job_wake_at(j);
		if (until <= now)
			continue;
		pgkeel_rw_wait_fds(fds, pgkeel_rewind_job_pollfds(j, fds, PGKEEL_ARRAY_LEN(fds)),
		                   until < deadline_ms ? until : deadline_ms);
	}
}

void pgkeel_rewind_job_cancel(struct pgkeel_rewind_job *j, int64_t deadline_ms)
{
	const char *what;

	if (j->status != PGKEEL_REWIND_JOB_RUNNING || j->cancelled)
		return;
	j->cancelled = true;
	if (j->step == ST_WIPE)
		return; /* the removal goes on; the job ends when it is over */
	what = j->cmd.what != NULL ? j->cmd.what : "pg_rewind";
	if (j->cmd.argv != NULL && !j->cmd.done)
		(void)pgkeel_child_stop(&j->cmd.child, SIGTERM, deadline_ms);
	job_end(j, PGKEEL_REWIND_RETRY, "%s cancelled", what);
	pgkeel_rw_cmd_clear(&j->cmd);
}

void pgkeel_rewind_job_free(struct pgkeel_rewind_job *j)
{
	if (j == NULL)
		return;
	pgkeel_rw_cmd_clear(&j->cmd);
	pgkeel_pgt_wiper_free(j->wipe);
	pgkeel_config_unref(j->cfg);
	free(j->data_dir);
	free(j->wal_dir);
	free(j->conf_path);
	free(j->pgpass_path);
	free(j->leader_name);
	json_object_put(j->rewind_rec);
	json_object_put(j->super_rec);
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(j->gucs); i++)
		free(j->gucs[i]);
	pgkeel_argv_free(j->ready);
	pgkeel_argv_free(j->rewind_argv);
	pgkeel_argv_free(j->rewind_env);
	free(j->fail_why);
	free(j->error);
	free(j);
}

enum pgkeel_rewind_job_status pgkeel_rewind_job_status(const struct pgkeel_rewind_job *j)
{
	return j->status;
}

enum pgkeel_rewind_result pgkeel_rewind_job_result(const struct pgkeel_rewind_job *j)
{
	return j->result;
}

const char *pgkeel_rewind_job_error(const struct pgkeel_rewind_job *j)
{
	return j->status == PGKEEL_REWIND_JOB_FAILED && j->error != NULL ? j->error : "";
}

void pgkeel_rewind_job_info(const struct pgkeel_rewind_job *j, struct pgkeel_rewind_job_info *out)
{
	out->crash_recovery = j->crash_recovery;
	out->archived = j->archived;
	out->wal_fetched = j->fetched;
	out->rewind_runs = j->rewind_runs;
	out->rewind_argv = (const char *const *)j->rewind_argv;
	out->rewind_env = (const char *const *)j->rewind_env;
}
