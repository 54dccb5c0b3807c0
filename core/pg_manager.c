/*
 * pg_manager: see pg_manager.h.  The worker thread runs one action at a
 * time on the pg_ctl handle; the checkpoint thread runs the post-promote
 * CHECKPOINT on a connection of its own.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "pg_bootstrap.h"
#include "pg_callbacks.h"
#include "pg_data.h"
#include "pg_manager.h"
#include "pg_rewind_run.h"
#include "pg_slots.h"
#include "pg_slots_copy.h"
#include "pg_task.h" /* the bin_path and config helpers the pg_ modules share */
#include "util.h"

#define DEFAULT_DEADLINE_MS  60000
#define TASK_SLICE_MS        200
#define CHECKPOINT_TIMEOUT_MS (15 * 60 * 1000)
#define CONTROLDATA_MAX      (64 * 1024)
#define PRE_PROMOTE_TIMEOUT_MS (5 * 60 * 1000) /* Patroni waits for ever */

struct pgkeel_pgm {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t worker;
	struct pgkeel_config *cfg; /* under mu; threads take their own reference */
	const struct pgkeel_child_user *user;
	const struct pgkeel_host *host;

	struct pgkeel_pgctl *ctl; /* the worker's while busy, else the loop's */
	struct pgkeel_pg *pg;     /* the loop's monitoring connection */
	struct pgkeel_pg *apg;    /* the worker's connection */

	/* the job (under mu) */
	bool busy;
	bool have_job;
	bool quit;
	bool cancel;
	int64_t cancel_deadline_ms;
	struct pgkeel_pgm_request req;
	char job_name[64];
	struct pgkeel_pgctl_status ctl_snap; /* the worker's last view of pg_ctl */
	bool have_result;
	struct pgkeel_pgm_result result;
	bool have_stopped;         /* a stop inside an action completed (one-shot) */
	int64_t stopped_checkpoint; /* its shutdown checkpoint LSN; -1 unknown */

	/* what the loop caches */
	char *ssn;                 /* under mu: synchronous_standby_names to write */
	bool hsf;                  /* under mu: force hot_standby_feedback on */
	bool hsf_written;          /* under mu: the last postgresql.conf written forces it */
	struct pgkeel_pgm_target current; /* under mu: what the last configuration followed */
	struct pgkeel_slots_logical logical;
	char sysid[32];
	bool adopt_tried;

	/* the checkpoint thread (under mu) */
	bool ckpt_running;
	bool ckpt_joinable;
	bool ckpt_done;      /* the primary's timeline is its checkpoint's */
	bool ckpt_requested; /* promoted: start one at the next refresh */
	pthread_t ckpt;
};

static const char *const kind_names[] = {
    "none",   "start",     "stop",           "restart",        "reload",       "promote",
    "demote", "follow",    "bootstrap",      "post_bootstrap", "create_replica",
    "reinitialize", "rewind", "copy_logical_slots", "crash_recovery",
};

const char *pgkeel_pgm_kind_name(enum pgkeel_pgm_kind k)
{
	return (size_t)k < PGKEEL_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

void pgkeel_pgm_state_clear(struct pgkeel_pgm_state *s)
{
	pgkeel_pg_status_free(s->status);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------ targets */

static int version_of(const struct pgkeel_config *cfg, int server_version)
{
	int major;

	if (server_version > 0)
		return server_version;
	major = pgkeel_pg_data_version(cfg->data_dir);
	return major > 0 ? major * 10000 : 0;
}

void pgkeel_pgm_target_follow(const struct pgkeel_config *cfg, const struct pgkeel_member *member,
                              int server_version, struct pgkeel_pgm_target *out)
{
	struct pgkeel_pg_source src;
	char slot[64];
	const char *s;

	memset(out, 0, sizeof(*out));
	out->role = PGKEEL_PG_REPLICA;
	if (member == NULL || member->d.conn_url == NULL ||
	    !pgkeel_pg_source_from_url(member->d.conn_url, &src))
		return;
	out->has_upstream = true;
	(void)pgkeel_fmt(out->upstream_name, sizeof(out->upstream_name), "%s", member->name);
	(void)pgkeel_fmt(out->host, sizeof(out->host), "%s", src.host);
	(void)pgkeel_fmt(out->port, sizeof(out->port), "%s", src.port);
	s = pgkeel_pg_wanted_slot(cfg, version_of(cfg, server_version), false, slot);
	if (s != NULL)
		(void)pgkeel_fmt(out->slot, sizeof(out->slot), "%s", s);
}

void pgkeel_pgm_target_standby_leader(const struct pgkeel_config *cfg, int server_version,
                                      struct pgkeel_pgm_target *out)
{
	json_object *sc = pgkeel_json_path(cfg->effective, "standby_cluster");
	json_object *port = pgkeel_pgt_jget(sc, "port");
	const char *host = pgkeel_pgt_jstr_nonempty(pgkeel_pgt_jget(sc, "host"));
	char slot[64], *port_text;
	const char *s;

	memset(out, 0, sizeof(*out));
	out->role = PGKEEL_PG_STANDBY_LEADER;
	out->remote = true;
	if (host == NULL)
		return; /* restore_command only */
	out->has_upstream = true;
	(void)pgkeel_fmt(out->host, sizeof(out->host), "%s", host);
	port_text = port != NULL ? pgkeel_pg_value_text(port) : NULL;
	(void)pgkeel_fmt(out->port, sizeof(out->port), "%s",
	                 port_text != NULL && port_text[0] != '\0' ? port_text : "5432");
	free(port_text);
	s = pgkeel_pg_wanted_slot(cfg, version_of(cfg, server_version), true, slot);
	if (s != NULL)
		(void)pgkeel_fmt(out->slot, sizeof(out->slot), "%s", s);
}

static void upstream_of(const struct pgkeel_pgm_target *t, struct pgkeel_pg_upstream *u)
{
	memset(u, 0, sizeof(*u));
	if (!t->has_upstream)
		return;
	u->host = t->host;
	u->port = t->port[0] != '\0' ? t->port : NULL;
	u->slot = t->slot[0] != '\0' ? t->slot : NULL;
	u->remote = t->remote;
}

/* ------------------------------------------------------------ helpers */

json_object *pgkeel_pgm_controldata(const struct pgkeel_config *cfg, int64_t deadline_ms,
                                    char *err, size_t errlen)
{
	static const char *const env[] = {"LANG=C", "LC_ALL=C", NULL};
	char *prog = pgkeel_pgt_bin_path(cfg, "pg_controldata");
	const char *argv[] = {prog, "-D", cfg->data_dir, NULL};
	struct pgkeel_child_spec spec;
	struct pgkeel_child_output out;
	json_object *cd = NULL;
	char msg[256];
	enum pgkeel_child_result r;

	memset(&spec, 0, sizeof(spec));
	spec.argv = argv;
	spec.env = env;
	r = pgkeel_child_capture(&spec, deadline_ms, CONTROLDATA_MAX, &out, msg, sizeof(msg));
	if (r == PGKEEL_CHILD_OK && WIFEXITED(out.wstatus) && WEXITSTATUS(out.wstatus) == 0)
		cd = pgkeel_controldata_parse(out.data);
	if (cd == NULL)
		pgkeel_pgt_set_err(err, errlen, "pg_controldata failed: %s",
		                   r == PGKEEL_CHILD_OK ? "no output"
		                   : r == PGKEEL_CHILD_TIMEOUT ? "timed out"
		                                               : msg);
	if (r == PGKEEL_CHILD_OK)
		pgkeel_child_output_free(&out);
	free(prog);
	return cd;
}

static struct pgkeel_config *config_get(struct pgkeel_pgm *m)
{
	struct pgkeel_config *c;

	pthread_mutex_lock(&m->mu);
	c = pgkeel_config_ref(m->cfg);
	pthread_mutex_unlock(&m->mu);
	return c;
}

/* Write the configuration for target; *files gets what was rendered. */
static bool write_config(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                         const struct pgkeel_pgm_target *t, int64_t deadline_ms,
                         struct pgkeel_pg_files *files, char *err, size_t errlen)
{
	char *ssn;
	struct pgkeel_pg_situation sit;
	struct pgkeel_pg_controldata cdv;
	json_object *cd = NULL;
	struct pgkeel_diag d;
	bool ok;

	memset(&sit, 0, sizeof(sit));
	memset(files, 0, sizeof(*files));
	sit.role = t->role;
	sit.recovery = t->role != PGKEEL_PG_PRIMARY;
	upstream_of(t, &sit.upstream);
	if (t->role != PGKEEL_PG_PRIMARY) {
		/* the replica rule: never below what the primary had (pg_controldata) */
		char why[256];

		cd = pgkeel_pgm_controldata(cfg, deadline_ms, why, sizeof(why));
		if (cd != NULL && pgkeel_pg_controldata_from(cd, &cdv))
			sit.controldata = &cdv;
	}
	pthread_mutex_lock(&m->mu);
	ssn = m->ssn != NULL ? pgkeel_strdup(m->ssn) : NULL;
	m->current = *t;
	sit.hot_standby_feedback = m->hsf;
	pthread_mutex_unlock(&m->mu);
	sit.synchronous_standby_names = ssn;
	pgkeel_diag_init(&d);
	ok = pgkeel_pgctl_write_config(cfg, &sit, NULL, files, &d);
	free(ssn);
	if (ok) {
		pthread_mutex_lock(&m->mu);
		m->hsf_written = sit.hot_standby_feedback;
		pthread_mutex_unlock(&m->mu);
	}
	if (!ok)
		pgkeel_pgt_set_err(err, errlen, "writing the configuration: %s",
		                   json_object_array_length(d.errors) > 0
		                       ? json_object_get_string(json_object_array_get_idx(d.errors, 0))
		                       : "failed");
	pgkeel_diag_clear(&d);
	json_object_put(cd);
	return ok;
}

static enum pgkeel_pgctl_role ctl_role(enum pgkeel_pg_role r)
{
	switch (r) {
	case PGKEEL_PG_PRIMARY:
		return PGKEEL_PGCTL_ROLE_PRIMARY;
	case PGKEEL_PG_STANDBY_LEADER:
		return PGKEEL_PGCTL_ROLE_STANDBY_LEADER;
	case PGKEEL_PG_REPLICA:
		break;
	}
	return PGKEEL_PGCTL_ROLE_REPLICA;
}

static void snap(struct pgkeel_pgm *m)
{
	pthread_mutex_lock(&m->mu);
	m->ctl_snap = *pgkeel_pgctl_status(m->ctl);
	pthread_mutex_unlock(&m->mu);
}

/* PostgreSQL went down inside an action: tell the loop (and its shutdown checkpoint). */
static void notify_stopped(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                           int64_t deadline_ms)
{
	char err[256];
	const char *state;
	int64_t lsn = -1;
	json_object *cd = pgkeel_pgm_controldata(cfg, deadline_ms, err, sizeof(err));

	if (cd != NULL && pgkeel_controldata_str(cd, "Database cluster state", &state) &&
	    strcmp(state, "shut down") == 0 &&
	    !pgkeel_controldata_lsn(cd, "Latest checkpoint location", &lsn))
		lsn = -1;
	json_object_put(cd);
	pthread_mutex_lock(&m->mu);
	m->have_stopped = true;
	m->stopped_checkpoint = lsn;
	m->ctl_snap = *pgkeel_pgctl_status(m->ctl);
	pthread_mutex_unlock(&m->mu);
	if (m->host != NULL && m->host->post_event != NULL)
		m->host->post_event(m->host->ctx, PGKEEL_EVENT_OTHER);
}

static bool cancelled(struct pgkeel_pgm *m)
{
	bool c;

	pthread_mutex_lock(&m->mu);
	c = m->cancel;
	pthread_mutex_unlock(&m->mu);
	return c;
}

/* Wait until the started postmaster is ready or the deadline; fills res. */
static void wait_ready(struct pgkeel_pgm *m, int64_t deadline_ms, struct pgkeel_pgm_result *res)
{
	enum pgkeel_pgctl_state st = PGKEEL_PGCTL_STARTING;

	while (st == PGKEEL_PGCTL_STARTING && !cancelled(m) &&
	       pgkeel_now_monotonic_ms() < deadline_ms) {
		int64_t slice = pgkeel_now_monotonic_ms() + TASK_SLICE_MS * 5;

		st = pgkeel_pgctl_wait_ready(m->ctl, m->apg, slice < deadline_ms ? slice : deadline_ms);
		snap(m);
	}
	if (st == PGKEEL_PGCTL_RUNNING) {
		res->ok = true;
		return;
	}
	if (st == PGKEEL_PGCTL_STARTING) {
		res->timed_out = true;
		pgkeel_pgt_set_err(res->err, sizeof(res->err), "not ready by the deadline: %s",
		                   pgkeel_pgctl_status(m->ctl)->reason);
		return;
	}
	pgkeel_pgt_set_err(res->err, sizeof(res->err), "%s: %s", pgkeel_pgctl_state_name(st),
	                   pgkeel_pgctl_status(m->ctl)->reason);
}

static void start_as(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                     const struct pgkeel_pgm_request *r, struct pgkeel_pgm_result *res)
{
	struct pgkeel_pg_files files;

	if (!write_config(m, cfg, &r->target, r->ready_deadline_ms, &files, res->err,
	                  sizeof(res->err))) {
		pgkeel_pg_files_clear(&files);
		return;
	}
	if (pgkeel_pgctl_start(m->ctl, (const char *const *)files.argv, ctl_role(r->target.role),
	                       r->ready_deadline_ms, res->err, sizeof(res->err))) {
		snap(m);
		wait_ready(m, r->ready_deadline_ms, res);
	}
	pgkeel_pg_files_clear(&files);
}

/* Run a pg_task to its end (or cancellation); true when it succeeded. */
static bool run_task(struct pgkeel_pgm *m, struct pgkeel_pg_task *t, char *err, size_t errlen)
{
	enum pgkeel_pg_task_status st = PGKEEL_PG_TASK_RUNNING;
	bool was_cancelled = false;

	while (st == PGKEEL_PG_TASK_RUNNING) {
		if (!was_cancelled && cancelled(m)) {
			int64_t dl;

			pthread_mutex_lock(&m->mu);
			dl = m->cancel_deadline_ms;
			pthread_mutex_unlock(&m->mu);
			pgkeel_pg_task_cancel(t, dl);
			was_cancelled = true;
		}
		st = pgkeel_pg_task_wait(t, pgkeel_now_monotonic_ms() + TASK_SLICE_MS);
	}
	if (st == PGKEEL_PG_TASK_FAILED)
		pgkeel_pgt_set_err(err, errlen, "%s", pgkeel_pg_task_error(t));
	return st == PGKEEL_PG_TASK_SUCCEEDED;
}

static void boot_opts(struct pgkeel_pgm *m, struct pgkeel_config *cfg,
                      struct pgkeel_pg_boot_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cfg = cfg;
	o->user = m->user;
}

static void do_create_replica(struct pgkeel_pgm *m, struct pgkeel_config *cfg,
                              const struct pgkeel_pgm_request *r, struct pgkeel_pgm_result *res)
{
	struct pgkeel_pg_boot_opts o;
	struct pgkeel_pg_source src, *srcp = NULL;
	struct pgkeel_pg_task *t;

	boot_opts(m, cfg, &o);
	if (r->target.has_upstream) {
		memset(&src, 0, sizeof(src));
		(void)pgkeel_fmt(src.host, sizeof(src.host), "%s", r->target.host);
		(void)pgkeel_fmt(src.port, sizeof(src.port), "%s", r->target.port);
		srcp = &src;
	}
	t = pgkeel_pg_create_replica_start(&o, srcp, r->replica_methods, res->err,
	                                   sizeof(res->err));
	if (t == NULL)
		return;
	if (run_task(m, t, res->err, sizeof(res->err))) {
		log_info("replica has been created using %s", pgkeel_pg_task_replica_method(t));
		pthread_mutex_lock(&m->mu);
		m->sysid[0] = '\0';
		pthread_mutex_unlock(&m->mu);
		start_as(m, cfg, r, res);
	}
	pgkeel_pg_task_free(t);
}

static void do_bootstrap(struct pgkeel_pgm *m, struct pgkeel_config *cfg,
                         const struct pgkeel_pgm_request *r, struct pgkeel_pgm_result *res)
{
	struct pgkeel_pg_boot_opts o;
	struct pgkeel_pg_task *t;
	struct pgkeel_pgm_request primary = *r;

	boot_opts(m, cfg, &o);
	t = pgkeel_pg_bootstrap_start(&o, res->err, sizeof(res->err));
	if (t == NULL)
		return;
	if (run_task(m, t, res->err, sizeof(res->err))) {
		struct pgkeel_pg_bootstrap_info info;

		pgkeel_pg_task_bootstrap_info(t, &info);
		pthread_mutex_lock(&m->mu);
		m->sysid[0] = '\0';
		pthread_mutex_unlock(&m->mu);
		/* a custom method may leave a recovery to finish: Patroni starts it as a
		 * primary either way and promotes through the trigger file it wrote */
		if (r->target.role != PGKEEL_PG_STANDBY_LEADER)
			memset(&primary.target, 0, sizeof(primary.target));
		start_as(m, cfg, &primary, res);
	}
	pgkeel_pg_task_free(t);
}

static void do_post_bootstrap(struct pgkeel_pgm *m, struct pgkeel_config *cfg,
                              struct pgkeel_pgm_result *res)
{
	struct pgkeel_pg_boot_opts o;
	struct pgkeel_pg_task *t;

	boot_opts(m, cfg, &o);
	o.pg = m->apg;
	t = pgkeel_pg_post_bootstrap_start(&o, res->err, sizeof(res->err));
	if (t == NULL)
		return;
	res->ok = run_task(m, t, res->err, sizeof(res->err));
	pgkeel_pg_task_free(t);
}

static void demote_opts(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                        const struct pgkeel_pgm_request *r, struct pgkeel_pg_upstream *up,
                        struct pgkeel_demote_opts *o)
{
	upstream_of(&r->target, up);
	memset(o, 0, sizeof(*o));
	o->cfg = cfg;
	o->ctl = m->ctl;
	o->pg = m->apg;
	o->upstream = up;
	o->checkpoint_deadline_ms = r->stop_deadline_ms;
	o->stop_deadline_ms = r->stop_deadline_ms;
	o->ready_deadline_ms = r->ready_deadline_ms;
	pthread_mutex_lock(&m->mu);
	o->hot_standby_feedback = m->hsf;
	pthread_mutex_unlock(&m->mu);
}

static bool cancelled_cb(void *arg)
{
	return cancelled(arg);
}

/* The script's verdict reaches the loop while the promotion goes on. */
static void post_partial(struct pgkeel_pgm *m, const struct pgkeel_pgm_result *res)
{
	pthread_mutex_lock(&m->mu);
	m->result = *res;
	m->result.partial = true;
	m->have_result = true;
	pthread_mutex_unlock(&m->mu);
}

static void do_promote(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                       const struct pgkeel_pgm_request *r, struct pgkeel_pgm_result *res)
{
	const char *cmd =
	    pgkeel_pgt_jstr(pgkeel_pgt_jget(pgkeel_pgt_pg_section(cfg), "pre_promote"));

	switch (pgkeel_pre_promote_run(cmd, pgkeel_now_monotonic_ms() + PRE_PROMOTE_TIMEOUT_MS,
	                               cancelled_cb, m, res->err, sizeof(res->err))) {
	case PGKEEL_PRE_PROMOTE_CANCELLED:
		return;
	case PGKEEL_PRE_PROMOTE_FAILED:
		res->detail = PGKEEL_PGM_PRE_PROMOTE_FAILED;
		return;
	case PGKEEL_PRE_PROMOTE_PASSED:
		break;
	}
	res->detail = PGKEEL_PGM_PRE_PROMOTE_PASSED;
	post_partial(m, res);
	if (cancelled(m)) {
		log_info("PostgreSQL promote cancelled.");
		pgkeel_pgt_set_err(res->err, sizeof(res->err), "promote cancelled");
		return;
	}
	if (!pgkeel_pgctl_promote(m->ctl, r->ready_deadline_ms, res->err, sizeof(res->err)))
		return;
	res->detail = PGKEEL_PGM_PROMOTE_SIGNALLED;
	if (!pgkeel_pgctl_wait_promoted(m->ctl, m->apg, r->ready_deadline_ms, res->err,
	                                sizeof(res->err)))
		return;
	res->ok = true;
	pthread_mutex_lock(&m->mu);
	memset(&m->current, 0, sizeof(m->current));
	m->current.role = PGKEEL_PG_PRIMARY;
	m->ckpt_done = false;
	m->ckpt_requested = true;
	pthread_mutex_unlock(&m->mu);
}

static struct pgkeel_pgm_target keep_target(struct pgkeel_pgm *m,
                                            const struct pgkeel_pgm_target *t);

/* This node as pg_slots sees it. */
static void slots_input(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                        const struct pgkeel_cluster *cluster, enum pgkeel_pg_role role,
                        struct pgkeel_slots_input *in)
{
	memset(in, 0, sizeof(*in));
	in->cluster = cluster;
	in->name = cfg->name;
	in->role = role;
	in->tags = pgkeel_json_path(cfg->local, "tags");
	in->config = cfg->effective;
	in->server_version = pgkeel_pg_server_version(m->pg);
	if (in->server_version == 0)
		in->server_version = version_of(cfg, 0);
}

/* Patroni's copy_logical_slots: read from the leader, stop, install, start again. */
static void do_copy_slots(struct pgkeel_pgm *m, struct pgkeel_config *cfg,
                          const struct pgkeel_pgm_request *r, struct pgkeel_pgm_result *res)
{
	struct pgkeel_slots_input in;
	struct pgkeel_slot_copies copies;
	struct pgkeel_pgm_request again = *r;
	enum pgkeel_pgctl_stop_result sr;

	memset(&copies, 0, sizeof(copies));
	slots_input(m, cfg, r->cluster, PGKEEL_PG_REPLICA, &in);
	if (!pgkeel_slots_copy_read(&in, r->slot_names, r->n_slot_names, r->ready_deadline_ms,
	                            &copies)) {
		pgkeel_pgt_set_err(res->err, sizeof(res->err), "could not read the slots to copy");
		return;
	}
	if (copies.n == 0) {
		res->ok = true;
		return;
	}
	pgkeel_pg_close(m->apg);
	sr = pgkeel_pgctl_stop(m->ctl, PGKEEL_PGCTL_FAST, r->stop_deadline_ms);
	snap(m);
	if (sr == PGKEEL_PGCTL_STOP_ERROR) {
		pgkeel_pgt_set_err(res->err, sizeof(res->err), "stop failed: %s",
		                   pgkeel_pgctl_status(m->ctl)->reason);
	} else if (pgkeel_slots_copy_install(cfg->data_dir, &copies, &m->logical, res->err,
	                                     sizeof(res->err))) {
		log_info("copied %zu logical slot(s) from the primary", copies.n);
	}
	/* start again in any case: the replica must not stay down */
	again.target = keep_target(m, &r->target);
	start_as(m, cfg, &again, res);
	pgkeel_slot_copies_clear(&copies);
}

/* What the configuration follows from now on (pg_demote writes it itself). */
static void set_current(struct pgkeel_pgm *m, const struct pgkeel_pgm_target *t,
                        enum pgkeel_pg_role role, const struct pgkeel_demote_opts *o)
{
	pthread_mutex_lock(&m->mu);
	m->current = *t;
	m->current.role = role;
	m->hsf_written = o->hot_standby_feedback; /* pg_demote writes what demote_opts() said */
	pthread_mutex_unlock(&m->mu);
}

/* RESTART/RELOAD keep following what the configuration followed, unless told otherwise. */
static struct pgkeel_pgm_target keep_target(struct pgkeel_pgm *m, const struct pgkeel_pgm_target *t)
{
	struct pgkeel_pgm_target out = *t;

	pthread_mutex_lock(&m->mu);
	if (!t->has_upstream && t->role != PGKEEL_PG_PRIMARY && m->current.has_upstream &&
	    m->current.role == t->role)
		out = m->current;
	pthread_mutex_unlock(&m->mu);
	return out;
}

/* REWIND, or without a leader (crash_only) CRASH_RECOVERY: pg_rewind_run's job. */
static void do_rewind(struct pgkeel_pgm *m, struct pgkeel_config *cfg,
                      const struct pgkeel_pgm_request *r, bool crash_only,
                      struct pgkeel_pgm_result *res)
{
	struct pgkeel_rewind_leader leader;
	struct pgkeel_rewind_job_opts o;
	struct pgkeel_rewind_job *j;
	enum pgkeel_rewind_job_status st = PGKEEL_REWIND_JOB_RUNNING;
	bool was_cancelled = false;

	memset(&leader, 0, sizeof(leader));
	leader.name = r->leader_name;
	leader.conn_url = r->leader_conn_url;
	leader.role = r->leader_role;
	leader.remote = r->leader_remote;
	leader.checkpoint_after_promote = r->leader_checkpoint_after_promote;
	memset(&o, 0, sizeof(o));
	o.cfg = cfg;
	o.user = m->user;
	o.leader = crash_only ? NULL : &leader;
	o.crash_recovery_only = crash_only;
	j = pgkeel_rewind_job_start(&o, res->err, sizeof(res->err));
	if (j == NULL) {
		res->detail = PGKEEL_REWIND_RETRY;
		return;
	}
	while (st == PGKEEL_REWIND_JOB_RUNNING) {
		if (!was_cancelled && cancelled(m)) {
			int64_t dl;

			pthread_mutex_lock(&m->mu);
			dl = m->cancel_deadline_ms;
			pthread_mutex_unlock(&m->mu);
			pgkeel_rewind_job_cancel(j, dl);
			was_cancelled = true;
		}
		st = pgkeel_rewind_job_wait(j, pgkeel_now_monotonic_ms() + TASK_SLICE_MS);
	}
	res->detail = pgkeel_rewind_job_result(j);
	res->ok = st == PGKEEL_REWIND_JOB_SUCCEEDED;
	if (!res->ok)
		pgkeel_pgt_set_err(res->err, sizeof(res->err), "%s", pgkeel_rewind_job_error(j));
	pgkeel_rewind_job_free(j);
}

static void run_job(struct pgkeel_pgm *m, const struct pgkeel_pgm_request *r,
                    struct pgkeel_pgm_result *res)
{
	struct pgkeel_pgm_target kept;
	struct pgkeel_config *cfg = config_get(m);
	struct pgkeel_pg_upstream up;
	struct pgkeel_demote_opts dopts;
	struct pgkeel_demote_result dres;
	struct pgkeel_pg_files files;
	enum pgkeel_pgctl_stop_result sr;

	switch (r->kind) {
	case PGKEEL_PGM_NONE:
		res->ok = true;
		break;
	case PGKEEL_PGM_START:
		start_as(m, cfg, r, res);
		break;
	case PGKEEL_PGM_STOP:
		pgkeel_pg_close(m->apg);
		sr = pgkeel_pgctl_stop(m->ctl, r->stop_mode, r->stop_deadline_ms);
		res->ok = sr != PGKEEL_PGCTL_STOP_ERROR;
		if (res->ok && sr != PGKEEL_PGCTL_STOP_NOT_RUNNING)
			notify_stopped(m, cfg, pgkeel_now_monotonic_ms() + 10000);
		else
			pgkeel_pgt_set_err(res->err, sizeof(res->err), "stop failed: %s",
			                   pgkeel_pgctl_status(m->ctl)->reason);
		break;
	case PGKEEL_PGM_RESTART:
		kept = keep_target(m, &r->target);
		if (!write_config(m, cfg, &kept, r->ready_deadline_ms, &files, res->err,
		                  sizeof(res->err))) {
			pgkeel_pg_files_clear(&files);
			break;
		}
		pgkeel_pg_close(m->apg);
		if (pgkeel_pgctl_restart(m->ctl, (const char *const *)files.argv,
		                         ctl_role(kept.role), r->stop_deadline_ms,
		                         r->ready_deadline_ms, res->err, sizeof(res->err)))
			wait_ready(m, r->ready_deadline_ms, res);
		pgkeel_pg_files_clear(&files);
		break;
	case PGKEEL_PGM_RELOAD:
		kept = keep_target(m, &r->target);
		if (write_config(m, cfg, &kept, r->ready_deadline_ms, &files, res->err,
		                 sizeof(res->err)))
			res->ok = pgkeel_pgctl_reload(m->ctl, res->err, sizeof(res->err));
		pgkeel_pg_files_clear(&files);
		break;
	case PGKEEL_PGM_PROMOTE:
		do_promote(m, cfg, r, res);
		break;
	case PGKEEL_PGM_DEMOTE:
		demote_opts(m, cfg, r, &up, &dopts);
		set_current(m, &r->target, PGKEEL_PG_REPLICA, &dopts);
		if (!pgkeel_demote_stop(r->demote_mode, &dopts, &dres)) {
			pgkeel_pgt_set_err(res->err, sizeof(res->err), "%s", dres.err);
			break;
		}
		notify_stopped(m, cfg, r->ready_deadline_ms);
		if (pgkeel_demote_start(r->demote_mode, &dopts, &dres))
			wait_ready(m, r->ready_deadline_ms, res);
		else
			pgkeel_pgt_set_err(res->err, sizeof(res->err), "%s", dres.err);
		break;
	case PGKEEL_PGM_FOLLOW:
		demote_opts(m, cfg, r, &up, &dopts);
		set_current(m, &r->target,
		            r->target.role == PGKEEL_PG_STANDBY_LEADER ? PGKEEL_PG_STANDBY_LEADER
		                                                       : PGKEEL_PG_REPLICA,
		            &dopts);
		if (pgkeel_demote_follow(&dopts, &dres)) {
			if (dres.restarted)
				wait_ready(m, r->ready_deadline_ms, res);
			else
				res->ok = true;
		} else {
			pgkeel_pgt_set_err(res->err, sizeof(res->err), "%s", dres.err);
		}
		break;
	case PGKEEL_PGM_BOOTSTRAP:
		do_bootstrap(m, cfg, r, res);
		break;
	case PGKEEL_PGM_POST_BOOTSTRAP:
		do_post_bootstrap(m, cfg, res);
		break;
	case PGKEEL_PGM_REINITIALIZE:
		pgkeel_pg_close(m->apg);
		sr = pgkeel_pgctl_stop(m->ctl, PGKEEL_PGCTL_IMMEDIATE, r->stop_deadline_ms);
		if (sr == PGKEEL_PGCTL_STOP_ERROR) {
			pgkeel_pgt_set_err(res->err, sizeof(res->err), "stop failed: %s",
			                   pgkeel_pgctl_status(m->ctl)->reason);
			break;
		}
		snap(m);
		if (!pgkeel_pg_remove_data_dir(cfg->data_dir, res->err, sizeof(res->err)))
			break;
		do_create_replica(m, cfg, r, res);
		break;
	case PGKEEL_PGM_CREATE_REPLICA:
		do_create_replica(m, cfg, r, res);
		break;
	case PGKEEL_PGM_REWIND:
		pgkeel_pg_close(m->apg);
		do_rewind(m, cfg, r, false, res);
		break;
	case PGKEEL_PGM_CRASH_RECOVERY:
		pgkeel_pg_close(m->apg);
		do_rewind(m, cfg, r, true, res);
		break;
	case PGKEEL_PGM_COPY_SLOTS:
		do_copy_slots(m, cfg, r, res);
		break;
	}
	pgkeel_config_unref(cfg);
}

static void *worker_main(void *arg)
{
	struct pgkeel_pgm *m = arg;

	pthread_mutex_lock(&m->mu);
	for (;;) {
		struct pgkeel_pgm_request r;
		struct pgkeel_pgm_result res;

		while (!m->have_job && !m->quit)
			pthread_cond_wait(&m->cv, &m->mu);
		if (m->quit && !m->have_job)
			break;
		r = m->req;
		m->have_job = false;
		memset(&res, 0, sizeof(res));
		res.kind = r.kind;
		(void)pgkeel_fmt(res.name, sizeof(res.name), "%s", m->job_name);
		pthread_mutex_unlock(&m->mu);

		log_debug("async action %s started", res.name);
		run_job(m, &r, &res);
		json_object_put(r.replica_methods);
		pgkeel_cluster_unref(r.cluster);
		pgkeel_pgm_names_free((char **)r.slot_names, r.n_slot_names);
		if (!res.ok && !res.timed_out)
			log_warning("%s failed: %s", res.name, res.err);

		pthread_mutex_lock(&m->mu);
		res.cancelled = m->cancel;
		m->ctl_snap = *pgkeel_pgctl_status(m->ctl);
		m->result = res;
		m->have_result = true;
		m->busy = false;
		m->cancel = false;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
		/* a success wakes the loop for the next step at once; a failure is
		 * seen at the next cycle (an action that fails at once must not turn
		 * the loop into a busy one, as Patroni never wakes up for it either) */
		if (!r.no_wakeup && res.ok && m->host != NULL && m->host->post_event != NULL)
			m->host->post_event(m->host->ctx, PGKEEL_EVENT_OTHER);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* ------------------------------------------------------------ checkpoint */

struct ckpt_arg {
	struct pgkeel_pgm *m;
	struct pgkeel_config *cfg;
};

/* The primary's timeline and its last checkpoint's, through pg; false on error. */
static bool timelines(struct pgkeel_pg *pg, int64_t deadline_ms, long *primary, long *checkpoint,
                      char *err, size_t errlen)
{
	struct pg_result *res = NULL;
	struct pgkeel_pg_err e;
	bool ok = false;

	if (pgkeel_pg_exec(pg,
	                   "SELECT ('x' || pg_catalog.substr(pg_catalog.pg_walfile_name("
	                   "pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int, "
	                   "timeline_id FROM pg_catalog.pg_control_checkpoint()",
	                   0, NULL, deadline_ms, &res, &e) != PGKEEL_PG_OK) {
		pgkeel_pgt_set_err(err, errlen, "%s", e.msg);
		return false;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) && !PQgetisnull(res, 0, 1)) {
		*primary = strtol(PQgetvalue(res, 0, 0), NULL, 10);
		*checkpoint = strtol(PQgetvalue(res, 0, 1), NULL, 10);
		ok = true;
	} else {
		pgkeel_pgt_set_err(err, errlen, "unexpected answer");
	}
	PQclear(res);
	return ok;
}

static void *ckpt_main(void *arg)
{
	struct ckpt_arg *a = arg;
	struct pgkeel_pgm *m = a->m;
	struct pgkeel_pg *pg = pgkeel_pg_local_connection(a->cfg);
	int64_t deadline = pgkeel_now_monotonic_ms() + CHECKPOINT_TIMEOUT_MS;
	struct pgkeel_pg_err e;
	long tl = 0, ctl = 0;
	char err[256] = "";
	bool done = false;

	/* a CHECKPOINT may take long: no statement timeout, only our deadline */
	if (pgkeel_pg_exec(pg, "SET statement_timeout = 0", 0, NULL, deadline, NULL, &e) ==
	        PGKEEL_PG_OK &&
	    pgkeel_pg_exec(pg, "CHECKPOINT", 0, NULL, deadline, NULL, &e) == PGKEEL_PG_OK) {
		if (timelines(pg, pgkeel_now_monotonic_ms() + 5000, &tl, &ctl, err, sizeof(err)))
			done = tl == ctl;
		if (done)
			log_info("CHECKPOINT after promote done (timeline %ld)", tl);
		else if (err[0] == '\0')
			log_warning("CHECKPOINT after promote: the checkpoint is on timeline %ld, "
			            "the primary on %ld", ctl, tl);
	} else {
		(void)pgkeel_fmt(err, sizeof(err), "%s", e.msg);
	}
	if (!done && err[0] != '\0')
		log_warning("CHECKPOINT after promote failed: %s", err);
	pgkeel_pg_free(pg);
	pgkeel_config_unref(a->cfg);
	free(a);
	pthread_mutex_lock(&m->mu);
	m->ckpt_done = done;
	m->ckpt_running = false;
	pthread_mutex_unlock(&m->mu);
	if (m->host != NULL && m->host->post_event != NULL)
		m->host->post_event(m->host->ctx, PGKEEL_EVENT_OTHER);
	return NULL;
}

/* Under mu: start the checkpoint thread unless it runs. */
static void ckpt_start_locked(struct pgkeel_pgm *m)
{
	struct ckpt_arg *a;

	if (m->ckpt_running)
		return;
	if (m->ckpt_joinable) {
		pthread_join(m->ckpt, NULL);
		m->ckpt_joinable = false;
	}
	a = pgkeel_xcalloc(1, sizeof(*a));
	a->m = m;
	a->cfg = pgkeel_config_ref(m->cfg);
	m->ckpt_requested = false;
	if (pthread_create(&m->ckpt, NULL, ckpt_main, a) != 0) {
		log_error("cannot start the CHECKPOINT thread: %s", strerror(errno));
		pgkeel_config_unref(a->cfg);
		free(a);
		return;
	}
	m->ckpt_running = true;
	m->ckpt_joinable = true;
}

/* ------------------------------------------------------------ lifetime */

struct pgkeel_pgm *pgkeel_pgm_new(const struct pgkeel_pgm_opts *opts)
{
	struct pgkeel_pgm *m = pgkeel_xcalloc(1, sizeof(*m));
	struct pgkeel_pgctl_opts copts;

	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->cfg = pgkeel_config_ref(opts->cfg);
	m->user = opts->user;
	m->host = opts->host;
	memset(&copts, 0, sizeof(copts));
	copts.data_dir = m->cfg->data_dir;
	copts.bin_dir = pgkeel_pgt_jstr_nonempty(
	    pgkeel_pgt_jget(pgkeel_pgt_pg_section(m->cfg), "bin_dir"));
	m->ctl = pgkeel_pgctl_new(&copts);
	pgkeel_slots_logical_init(&m->logical);
	m->pg = pgkeel_pg_local_connection(m->cfg);
	m->apg = pgkeel_pg_local_connection(m->cfg);
	if (pthread_create(&m->worker, NULL, worker_main, m) != 0) {
		log_fatal("cannot start the PostgreSQL manager thread");
		abort();
	}
	return m;
}

void pgkeel_pgm_free(struct pgkeel_pgm *m, int64_t deadline_ms)
{
	if (m == NULL)
		return;
	pgkeel_pgm_cancel(m, deadline_ms);
	pthread_mutex_lock(&m->mu);
	m->quit = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	pthread_join(m->worker, NULL);
	if (m->ckpt_joinable)
		pthread_join(m->ckpt, NULL); /* bounded by the CHECKPOINT's own deadline */
	pgkeel_pg_free(m->pg);
	pgkeel_pg_free(m->apg);
	pgkeel_pgctl_free(m->ctl);
	pgkeel_slots_logical_clear(&m->logical);
	free(m->ssn);
	pgkeel_config_unref(m->cfg);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void pgkeel_pgm_set_config(struct pgkeel_pgm *m, struct pgkeel_config *cfg)
{
	struct pgkeel_config *old;

	pthread_mutex_lock(&m->mu);
	old = m->cfg;
	m->cfg = pgkeel_config_ref(cfg);
	pthread_mutex_unlock(&m->mu);
	pgkeel_config_unref(old);
}

int pgkeel_pgm_postmaster_fd(struct pgkeel_pgm *m)
{
	int fd = -1;

	pthread_mutex_lock(&m->mu);
	if (!m->busy && pgkeel_pgctl_status(m->ctl)->state == PGKEEL_PGCTL_RUNNING) {
		int pfd = pgkeel_pgctl_exit_fd(m->ctl);

		if (pfd >= 0)
			fd = fcntl(pfd, F_DUPFD_CLOEXEC, 0);
	}
	pthread_mutex_unlock(&m->mu);
	return fd;
}

struct pgkeel_pg *pgkeel_pgm_connection(struct pgkeel_pgm *m)
{
	return m->pg;
}

struct pgkeel_pgctl *pgkeel_pgm_ctl(struct pgkeel_pgm *m)
{
	bool busy;

	pthread_mutex_lock(&m->mu);
	busy = m->busy;
	pthread_mutex_unlock(&m->mu);
	return busy ? NULL : m->ctl;
}

/* ------------------------------------------------------------ actions */

bool pgkeel_pgm_submit(struct pgkeel_pgm *m, const struct pgkeel_pgm_request *r, char *err,
                       size_t errlen)
{
	int64_t now = pgkeel_now_monotonic_ms();

	pthread_mutex_lock(&m->mu);
	if (m->busy) {
		pgkeel_pgt_set_err(err, errlen, "%s already in progress", m->job_name);
		pthread_mutex_unlock(&m->mu);
		return false;
	}
	m->req = *r;
	if (m->req.stop_deadline_ms <= 0)
		m->req.stop_deadline_ms = now + DEFAULT_DEADLINE_MS;
	if (m->req.ready_deadline_ms <= 0)
		m->req.ready_deadline_ms = now + DEFAULT_DEADLINE_MS;
	m->req.name = NULL;
	if (r->replica_methods != NULL)
		json_object_get(r->replica_methods);
	m->req.cluster = pgkeel_cluster_ref(r->cluster);
	if (r->n_slot_names > 0) {
		char **names = pgkeel_xcalloc(r->n_slot_names, sizeof(*names));

		for (size_t i = 0; i < r->n_slot_names; i++)
			names[i] = pgkeel_strdup(r->slot_names[i]);
		m->req.slot_names = names;
	}
	(void)pgkeel_fmt(m->job_name, sizeof(m->job_name), "%s",
	                 r->name != NULL ? r->name : pgkeel_pgm_kind_name(r->kind));
	m->ctl_snap = *pgkeel_pgctl_status(m->ctl);
	m->busy = true;
	m->have_stopped = false;
	m->have_job = true;
	m->cancel = false;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return true;
}

const char *pgkeel_pgm_busy(struct pgkeel_pgm *m, char *buf, size_t len)
{
	bool busy;

	pthread_mutex_lock(&m->mu);
	busy = m->busy;
	if (busy)
		(void)pgkeel_fmt(buf, len, "%s", m->job_name);
	pthread_mutex_unlock(&m->mu);
	return busy ? buf : NULL;
}

bool pgkeel_pgm_take_stopped(struct pgkeel_pgm *m, int64_t *checkpoint_lsn)
{
	bool have;

	pthread_mutex_lock(&m->mu);
	have = m->have_stopped;
	*checkpoint_lsn = m->stopped_checkpoint;
	m->have_stopped = false;
	pthread_mutex_unlock(&m->mu);
	return have;
}

bool pgkeel_pgm_take_result(struct pgkeel_pgm *m, struct pgkeel_pgm_result *out)
{
	bool have;

	pthread_mutex_lock(&m->mu);
	have = m->have_result;
	if (have)
		*out = m->result;
	m->have_result = false;
	pthread_mutex_unlock(&m->mu);
	return have;
}

void pgkeel_pgm_cancel(struct pgkeel_pgm *m, int64_t deadline_ms)
{
	pthread_mutex_lock(&m->mu);
	if (m->busy) {
		m->cancel = true;
		m->cancel_deadline_ms = deadline_ms;
	}
	pthread_mutex_unlock(&m->mu);
}

bool pgkeel_pgm_wait_idle(struct pgkeel_pgm *m, int64_t deadline_ms)
{
	bool idle;

	pthread_mutex_lock(&m->mu);
	while (m->busy) {
		struct timespec ts;
		int64_t now = pgkeel_now_monotonic_ms();

		if (now >= deadline_ms)
			break;
		/* the condition variable runs on CLOCK_REALTIME: wait in short slices */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&m->cv, &m->mu, &ts);
	}
	idle = !m->busy;
	pthread_mutex_unlock(&m->mu);
	return idle;
}

/* ------------------------------------------------------------ refresh */

static void check_data_dir(const struct pgkeel_config *cfg, struct pgkeel_pgm_state *s)
{
	struct stat st;

	if (stat(cfg->data_dir, &st) != 0) {
		if (errno == ENOENT) {
			s->data_dir_empty = true;
			return;
		}
		s->data_dir_error = true;
	} else if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		s->data_dir_error = true;
	} else if (access(cfg->data_dir, R_OK | W_OK | X_OK) != 0) {
		s->data_dir_error = true;
	}
	if (s->data_dir_error) {
		(void)pgkeel_fmt(s->data_dir_errmsg, sizeof(s->data_dir_errmsg), "%s: %s",
		                 cfg->data_dir, strerror(errno));
		return;
	}
	s->data_dir_empty = pgkeel_pg_data_dir_empty(cfg->data_dir);
}

static void read_sysid(struct pgkeel_pgm *m, const struct pgkeel_config *cfg,
                       int64_t deadline_ms)
{
	char err[256];
	const char *id;
	json_object *cd = pgkeel_pgm_controldata(cfg, deadline_ms, err, sizeof(err));

	if (cd == NULL) {
		log_debug("%s", err);
		return;
	}
	if (pgkeel_controldata_str(cd, "Database system identifier", &id))
		(void)pgkeel_fmt(m->sysid, sizeof(m->sysid), "%s", id);
	json_object_put(cd);
}

/* The primary's checkpoint: done, running, or to be started. */
static void check_checkpoint(struct pgkeel_pgm *m, const struct pgkeel_pgm_state *s,
                             int64_t deadline_ms)
{
	bool need_check;
	long tl, ctl;
	char err[256];

	pthread_mutex_lock(&m->mu);
	if (s->status->in_recovery) {
		m->ckpt_done = false;
		m->ckpt_requested = false;
		pthread_mutex_unlock(&m->mu);
		return;
	}
	if (m->ckpt_requested)
		ckpt_start_locked(m);
	need_check = !m->ckpt_done && !m->ckpt_running;
	pthread_mutex_unlock(&m->mu);
	if (!need_check)
		return;
	if (!timelines(m->pg, deadline_ms, &tl, &ctl, err, sizeof(err)))
		return;
	pthread_mutex_lock(&m->mu);
	if (tl == ctl)
		m->ckpt_done = true;
	else
		ckpt_start_locked(m);
	pthread_mutex_unlock(&m->mu);
}

void pgkeel_pgm_refresh(struct pgkeel_pgm *m, int64_t deadline_ms, struct pgkeel_pgm_state *s)
{
	struct pgkeel_config *cfg = config_get(m);
	struct pgkeel_pg_err e;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&m->mu);
	s->busy = m->busy;
	if (s->busy) {
		(void)pgkeel_fmt(s->action, sizeof(s->action), "%s", m->job_name);
		s->ctl = m->ctl_snap;
		s->checkpoint_pending = s->ctl.role == PGKEEL_PGCTL_ROLE_PRIMARY && !m->ckpt_done;
	}
	pthread_mutex_unlock(&m->mu);

	check_data_dir(cfg, s);
	if (s->busy) {
		/* the worker owns pg_ctl and the data directory: last known facts only */
		s->running = s->ctl.pid > 0 && (s->ctl.state == PGKEEL_PGCTL_RUNNING ||
		                                 s->ctl.state == PGKEEL_PGCTL_STARTING);
		(void)pgkeel_fmt(s->sysid, sizeof(s->sysid), "%s", m->sysid);
		s->server_version = version_of(cfg, 0);
		pgkeel_config_unref(cfg);
		return;
	}
	if (!m->adopt_tried && !s->data_dir_empty && !s->data_dir_error) {
		m->adopt_tried = true;
		if (pgkeel_pgctl_adopt(m->ctl) == PGKEEL_PGCTL_ADOPTED)
			log_info("found PostgreSQL running in %s (pid %d): adopted", cfg->data_dir,
			         (int)pgkeel_pgctl_status(m->ctl)->pid);
	}
	(void)pgkeel_pgctl_poll(m->ctl, m->pg, deadline_ms);
	s->ctl = *pgkeel_pgctl_status(m->ctl);
	s->running = pgkeel_pgctl_is_running(m->ctl);
	if (s->data_dir_empty)
		m->sysid[0] = '\0';
	else if (!s->data_dir_error && m->sysid[0] == '\0')
		read_sysid(m, cfg, deadline_ms);
	(void)pgkeel_fmt(s->sysid, sizeof(s->sysid), "%s", m->sysid);
	s->server_version = version_of(cfg, 0);
	if (s->running && s->ctl.state == PGKEEL_PGCTL_RUNNING) {
		if (pgkeel_pg_query_status(m->pg, deadline_ms, &s->status, &e) == PGKEEL_PG_OK) {
			s->queried = true;
			s->server_version = s->status->server_version;
			check_checkpoint(m, s, deadline_ms);
		} else {
			(void)pgkeel_fmt(s->query_error, sizeof(s->query_error), "%s", e.msg);
		}
	} else if (!s->running) {
		pgkeel_pg_close(m->pg);
	}
	if (s->queried && !s->status->in_recovery) {
		pthread_mutex_lock(&m->mu);
		s->checkpoint_pending = !m->ckpt_done;
		pthread_mutex_unlock(&m->mu);
	}
	pgkeel_config_unref(cfg);
}

/* ------------------------------------------------------------ loop helpers */

bool pgkeel_pgm_set_ssn(struct pgkeel_pgm *m, const char *ssn)
{
	bool changed;

	pthread_mutex_lock(&m->mu);
	changed = (ssn == NULL) != (m->ssn == NULL) ||
	          (ssn != NULL && strcmp(ssn, m->ssn) != 0);
	if (changed) {
		free(m->ssn);
		m->ssn = ssn != NULL ? pgkeel_strdup(ssn) : NULL;
	}
	pthread_mutex_unlock(&m->mu);
	return changed;
}

bool pgkeel_pgm_reload_now(struct pgkeel_pgm *m, int64_t deadline_ms, char *err, size_t errlen)
{
	struct pgkeel_config *cfg = config_get(m);
	struct pgkeel_pg_files files;
	struct pgkeel_pgm_target t;
	bool busy, ok;

	pthread_mutex_lock(&m->mu);
	busy = m->busy;
	t = m->current;
	pthread_mutex_unlock(&m->mu);
	if (busy) {
		pgkeel_pgt_set_err(err, errlen, "%s already in progress", m->job_name);
		pgkeel_config_unref(cfg);
		return false;
	}
	/* the role the postmaster runs in decides the recovery part: a reload never
	 * turns a standby into a primary (standby.signal must stay for promote) */
	switch (pgkeel_pgctl_status(m->ctl)->role) {
	case PGKEEL_PGCTL_ROLE_PRIMARY:
		memset(&t, 0, sizeof(t));
		t.role = PGKEEL_PG_PRIMARY;
		break;
	case PGKEEL_PGCTL_ROLE_REPLICA:
	case PGKEEL_PGCTL_ROLE_STANDBY_LEADER:
		if (t.role == PGKEEL_PG_PRIMARY)
			t.role = PGKEEL_PG_REPLICA;
		break;
	case PGKEEL_PGCTL_ROLE_UNKNOWN:
		break;
	}
	ok = write_config(m, cfg, &t, deadline_ms, &files, err, errlen) &&
	     pgkeel_pgctl_reload(m->ctl, err, errlen);
	pgkeel_pg_files_clear(&files);
	pgkeel_config_unref(cfg);
	return ok;
}

bool pgkeel_pgm_set_hot_standby_feedback(struct pgkeel_pgm *m, const struct pgkeel_cluster *cluster)
{
	struct pgkeel_config *cfg;
	struct pgkeel_slots_input in;
	bool want, was, due;

	if (cluster == NULL || cluster->config == NULL) {
		pthread_mutex_lock(&m->mu);
		due = m->hsf != m->hsf_written;
		pthread_mutex_unlock(&m->mu);
		return due;
	}
	cfg = config_get(m);
	slots_input(m, cfg, cluster, PGKEEL_PG_REPLICA, &in);
	want = pgkeel_slots_need_hot_standby_feedback(&in);
	pgkeel_config_unref(cfg);
	pthread_mutex_lock(&m->mu);
	was = m->hsf;
	m->hsf = want;
	due = want != m->hsf_written;
	pthread_mutex_unlock(&m->mu);
	if (want != was)
		log_info("hot_standby_feedback %s",
		         want ? "forced on: permanent logical slots here or on a member "
		                "replicating from here"
		              : "no longer forced on");
	return due;
}

void pgkeel_pgm_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

json_object *pgkeel_pgm_sync_slots(struct pgkeel_pgm *m, const struct pgkeel_cluster *cluster,
                                   enum pgkeel_pg_role role, int64_t last_lsn,
                                   int64_t deadline_ms, char ***copy, size_t *n_copy)
{
	struct pgkeel_config *cfg = config_get(m);
	struct pgkeel_slots_input in;
	struct pgkeel_slots_result res;
	struct pgkeel_pg_params params;
	json_object *status = NULL;

	*copy = NULL;
	*n_copy = 0;
	memset(&res, 0, sizeof(res));
	slots_input(m, cfg, cluster, role, &in);
	pgkeel_pg_get_params(m->pg, &params);
	if (pgkeel_slots_sync(m->pg, &params, &in, &m->logical, deadline_ms, &res) && res.read_ok &&
	    role != PGKEEL_PG_REPLICA)
		status = pgkeel_slots_status(&in, res.rows.v, res.rows.n, last_lsn);
	if (role == PGKEEL_PG_REPLICA && res.n_copy > 0) {
		*copy = res.copy; /* taken over */
		*n_copy = res.n_copy;
		res.copy = NULL;
		res.n_copy = 0;
	}
	pgkeel_slots_result_clear(&res);
	pgkeel_config_unref(cfg);
	return status;
}
