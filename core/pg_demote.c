/*
 * pg_demote: Patroni's demotion modes and the change of upstream of a
 * running replica (see pg_demote.h).
 */
#include "autoconf.h"

#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "log.h"
#include "pg_conf.h"
#include "pg_ctl.h"
#include "pg_demote.h"
#include "pg_query.h"
#include "util.h"

static const char *const mode_names[] = {
    [PGKEEL_DEMOTE_GRACEFUL] = "graceful",
    [PGKEEL_DEMOTE_IMMEDIATE] = "immediate",
    [PGKEEL_DEMOTE_IMMEDIATE_NOLOCK] = "immediate-nolock",
    [PGKEEL_DEMOTE_OFFLINE] = "offline",
};

const char *pgkeel_demote_mode_name(enum pgkeel_demote_mode m)
{
	if ((size_t)m < sizeof(mode_names) / sizeof(mode_names[0]))
		return mode_names[m];
	return "unknown";
}

bool pgkeel_demote_mode_parse(const char *s, enum pgkeel_demote_mode *out)
{
	if (s == NULL)
		return false;
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum pgkeel_demote_mode)i;
			return true;
		}
	}
	return false;
}

static void result_init(struct pgkeel_demote_result *res)
{
	memset(res, 0, sizeof(*res));
	res->stop = PGKEEL_PGCTL_STOP_NOT_RUNNING;
}

static bool has_upstream(const struct pgkeel_pg_upstream *u)
{
	return u != NULL && u->host != NULL && u->host[0] != '\0';
}

/* Write the replica configuration following upstream (NULL: none) into *files. */
static bool write_replica_config(const struct pgkeel_demote_opts *opts,
                                 const struct pgkeel_pg_upstream *upstream,
                                 struct pgkeel_pg_files *files, char *err, size_t errlen)
{
	struct pgkeel_pg_situation sit;
	struct pgkeel_diag d;
	bool ok;

	memset(&sit, 0, sizeof(sit));
	sit.role = PGKEEL_PG_REPLICA;
	sit.server_version = opts->server_version;
	sit.controldata = opts->controldata;
	sit.recovery = true;
	sit.hot_standby_feedback = opts->hot_standby_feedback;
	if (has_upstream(upstream))
		sit.upstream = *upstream;
	pgkeel_diag_init(&d);
	ok = pgkeel_pgctl_write_config(opts->cfg, &sit, NULL, files, &d);
	if (!ok)
		(void)pgkeel_fmt(
		    err, errlen, "writing the replica configuration: %s",
		    json_object_array_length(d.errors) > 0
		        ? json_object_get_string(json_object_array_get_idx(d.errors, 0))
		        : "failed");
	pgkeel_diag_clear(&d);
	return ok;
}

static bool checkpoint(const struct pgkeel_demote_opts *opts, struct pgkeel_demote_result *res)
{
	struct pgkeel_pg_err e;

	if (opts->pg == NULL) {
		(void)pgkeel_fmt(res->err, sizeof(res->err), "CHECKPOINT: no connection");
		return false;
	}
	if (pgkeel_pg_exec(opts->pg, "CHECKPOINT", 0, NULL, opts->checkpoint_deadline_ms, NULL,
	                   &e) != PGKEEL_PG_OK) {
		(void)pgkeel_fmt(res->err, sizeof(res->err), "CHECKPOINT: %s", e.msg);
		log_warning("Demotion: CHECKPOINT failed: %s", e.msg);
		return false;
	}
	return true;
}

bool pgkeel_demote_stop(enum pgkeel_demote_mode mode, const struct pgkeel_demote_opts *opts,
                        struct pgkeel_demote_result *res)
{
	enum pgkeel_pgctl_stop_mode stop_mode;

	result_init(res);
	log_info("Demoting self (%s)", pgkeel_demote_mode_name(mode));
	if (mode == PGKEEL_DEMOTE_GRACEFUL)
		res->checkpoint_ok = checkpoint(opts, res);
	/* our own connection would hold up a shutdown, and must not outlive it */
	if (opts->pg != NULL)
		pgkeel_pg_close(opts->pg);
	stop_mode = mode == PGKEEL_DEMOTE_GRACEFUL || mode == PGKEEL_DEMOTE_OFFLINE
	                ? PGKEEL_PGCTL_FAST
	                : PGKEEL_PGCTL_IMMEDIATE;
	res->stop = pgkeel_pgctl_stop(opts->ctl, stop_mode, opts->stop_deadline_ms);
	if (res->stop == PGKEEL_PGCTL_STOP_KILLED)
		log_warning("Demotion (%s): PostgreSQL did not stop by the deadline and was killed",
		            pgkeel_demote_mode_name(mode));
	if (res->stop == PGKEEL_PGCTL_STOP_ERROR) {
		(void)pgkeel_fmt(res->err, sizeof(res->err), "stop failed: %s",
		                 pgkeel_pgctl_status(opts->ctl)->reason);
		log_error("Demotion (%s): %s", pgkeel_demote_mode_name(mode), res->err);
		return false;
	}
	pgkeel_pgctl_set_role(opts->ctl, PGKEEL_PGCTL_ROLE_REPLICA);
	return true;
}

bool pgkeel_demote_start(enum pgkeel_demote_mode mode, const struct pgkeel_demote_opts *opts,
                         struct pgkeel_demote_result *res)
{
	const struct pgkeel_pg_upstream *up = mode == PGKEEL_DEMOTE_OFFLINE ? NULL : opts->upstream;
	struct pgkeel_pg_files files;
	bool ok;

	memset(&files, 0, sizeof(files));
	res->started = false;
	if (has_upstream(up))
		log_info("Demotion (%s): starting as a replica of %s:%s",
		         pgkeel_demote_mode_name(mode), up->host,
		         up->port != NULL ? up->port : "5432");
	else
		log_info("Demotion (%s): starting as a replica without upstream",
		         pgkeel_demote_mode_name(mode));
	ok = write_replica_config(opts, up, &files, res->err, sizeof(res->err));
	if (ok)
		ok = pgkeel_pgctl_start(opts->ctl, (const char *const *)files.argv,
		                        PGKEEL_PGCTL_ROLE_REPLICA, opts->ready_deadline_ms,
		                        res->err, sizeof(res->err));
	pgkeel_pg_files_clear(&files);
	if (!ok)
		log_error("Demotion (%s): %s", pgkeel_demote_mode_name(mode), res->err);
	res->started = ok;
	return ok;
}

bool pgkeel_demote(enum pgkeel_demote_mode mode, const struct pgkeel_demote_opts *opts,
                   struct pgkeel_demote_result *res)
{
	if (!pgkeel_demote_stop(mode, opts, res))
		return false;
	return pgkeel_demote_start(mode, opts, res);
}

bool pgkeel_demote_follow(const struct pgkeel_demote_opts *opts, struct pgkeel_demote_result *res)
{
	struct pgkeel_demote_opts o = *opts;
	struct pgkeel_pg_files files;
	struct pgkeel_pg_err e;
	bool ok;

	result_init(res);
	if (o.server_version == 0 && o.pg != NULL &&
	    pgkeel_pg_connect(o.pg, o.checkpoint_deadline_ms, &e) == PGKEEL_PG_OK)
		o.server_version = pgkeel_pg_server_version(o.pg);
	memset(&files, 0, sizeof(files));
	ok = write_replica_config(&o, o.upstream, &files, res->err, sizeof(res->err));
	if (!ok) {
		pgkeel_pg_files_clear(&files);
		log_error("Follow: %s", res->err);
		return false;
	}
	if (o.server_version >= 130000) {
		/* primary_conninfo and primary_slot_name are reloadable since 13 */
		log_info("Follow: primary_conninfo changed, reloading");
		ok = pgkeel_pgctl_reload(o.ctl, res->err, sizeof(res->err));
		res->reloaded = ok;
	} else {
		log_info("changing primary_conninfo and restarting");
		ok = pgkeel_pgctl_restart(o.ctl, (const char *const *)files.argv,
		                          PGKEEL_PGCTL_ROLE_REPLICA, o.stop_deadline_ms,
		                          o.ready_deadline_ms, res->err, sizeof(res->err));
		res->restarted = ok;
		res->started = ok;
	}
	pgkeel_pg_files_clear(&files);
	if (!ok)
		log_error("Follow: %s", res->err);
	return ok;
}
