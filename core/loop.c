/*
 * loop: see loop.h.  Sections: start-up (§5.1), the facts of a cycle, the
 * requests ha.c asks for, the effects it decides, REST requests, publishing,
 * the cycle and the scheduling.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "dcs_client.h"
#include "dcs_loader.h"
#include "exit_codes.h"
#include "ha.h"
#include "history.h"
#include "host.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "loop_rest.h"
#include "member.h"
#include "peers.h"
#include "pg_bootstrap.h"
#include "pg_callbacks.h"
#include "pg_conf.h"
#include "pg_data.h"
#include "pg_manager.h"
#include "pg_rewind.h"
#include "pg_rewind_run.h"
#include "rest.h"
#include "sampler.h"
#include "state.h"
#include "util.h"
#include "watchdog.h"

#define MAX_PEERS        64
#define DYNAMIC_CACHE    "patroni.dynamic.json"
#define REST_POLL_MS     1000
#define START_RETRY_MS   5000
#define SHMEM_WAIT_MS    3000

/* A switchover/failover waiting for its outcome (Patroni's poll_failover_result). */
struct pending_req {
	struct pgkeel_rest_req *req;
	char *old_leader;
	char *candidate;
	int64_t until_ms;
	struct pending_req *next;
};

struct loop {
	struct pgkeel_config *cfg;
	const char *config_path;
	bool strict;
	int sigfd;
	bool stop;
	bool fatal; /* a FATAL effect ran: nothing after it */
	int exit_code;

	struct pgkeel_dcs_module backend;
	struct pgkeel_dcs *dcs_handle;
	struct pgkeel_dcsc dcs;
	struct pgkeel_pgm *pgm;
	struct pgkeel_pgm_state pg;
	struct pgkeel_callbacks cb;
	struct pgkeel_rest *rest;
	struct pgkeel_peers *peers;
	struct pgkeel_watchdog *wd;
	struct pgkeel_sampler *sampler; /* publishes the PostgreSQL sample for REST */
	char published_state[48];       /* the pg_state last published */

	struct pgkeel_cluster *cluster;     /* last loaded; NULL before the first */
	struct pgkeel_cluster *old_cluster; /* last with a leader (Patroni's old_cluster) */
	char *applied_config;               /* modify_version of the applied config */
	int64_t cluster_read_ms;            /* monotonic time of the last good read */
	int64_t dcs_last_seen;              /* epoch seconds */

	struct pgkeel_ha_state hs;
	enum pgkeel_ha_role role;
	bool failsafe_active;
	char following[320]; /* host:port/slot the recovery configuration points at */
	int64_t next_run_ms;
	int64_t wake_at_ms;  /* a scheduled action: -1 none */
	char *last_message;
	struct pending_req *pending;
	struct pgkeel_rest_req *restart_req; /* POST /restart waiting for its task */
	int64_t next_poll_ms;
	void (*notify_fn)(const char *state);
	json_object *status_slots; /* the leader's /status slots, from the last slot sync */
	bool demote_releases;      /* the running demotion releases the leader key */
	bool demoting;             /* a demotion runs: /leader and /primary answer 503 */
	bool params_dirty;         /* the configuration changed: rewrite postgresql.conf, reload */
	char state_word[48];       /* SET_STATE's word for PostgreSQL's state ("" none) */
	char state_word_over[48];  /* ... while pg_ctl's state is still this one */
	char **copy_names;         /* logical slots being copied this cycle */
	size_t n_copy_names;
};

static void json_put(json_object **o)
{
	json_object_put(*o);
	*o = NULL;
}

/* ------------------------------------------------------------ small helpers */

/* Patroni's postgres state for the member key and the REST API. */
static const char *pg_state_word(const struct loop *L)
{
	const char *ctl = L->pg.ctl.state_name[0] ? L->pg.ctl.state_name : "stopped";

	if (L->state_word[0] != '\0' && strcmp(L->state_word_over, L->pg.ctl.state_name) == 0)
		return L->state_word;
	return ctl;
}

static void notify(const struct loop *L, const char *state)
{
	if (L->notify_fn != NULL)
		L->notify_fn(state);
}

static int64_t now_ms(void)
{
	return pgkeel_now_monotonic_ms();
}

static int64_t dcs_deadline(const struct loop *L)
{
	return now_ms() + (int64_t)L->cfg->retry_timeout * 1000;
}

static void dcs_log_failure(const struct loop *L, const char *what, enum pgkeel_dcs_status st)
{
	log_warning("DCS %s failed (%s): %s", what, pgkeel_dcs_status_name(st),
	            L->dcs.err.msg[0] ? L->dcs.err.msg : "no detail");
}

static const char *leader_version(const struct loop *L)
{
	return L->cluster != NULL && L->cluster->leader != NULL ? L->cluster->leader->version
	                                                        : NULL;
}

static bool is_paused(const struct loop *L)
{
	json_object *p = pgkeel_json_path(L->cfg->effective, "pause");

	return p != NULL && json_object_get_boolean(p);
}

static void set_cluster(struct loop *L, struct pgkeel_cluster *c)
{
	pgkeel_cluster_unref(L->cluster);
	L->cluster = c;
	if (c != NULL && (!pgkeel_cluster_is_unlocked(c) || L->old_cluster == NULL)) {
		pgkeel_cluster_unref(L->old_cluster);
		L->old_cluster = pgkeel_cluster_ref(c);
	}
	L->cluster_read_ms = now_ms();
	L->dcs_last_seen = (int64_t)time(NULL);
}

/* The cached dynamic configuration in the data directory (Patroni's patroni.dynamic.json). */
static void save_dynamic_cache(const struct loop *L)
{
	char *path, *text;
	char err[256];

	if (L->cfg->dynamic == NULL || L->role == PGKEEL_HA_ROLE_UNINITIALIZED ||
	    L->pg.data_dir_empty)
		return;
	path = pgkeel_asprintf("%s/%s", L->cfg->data_dir, DYNAMIC_CACHE);
	text = pgkeel_json_spaced(L->cfg->dynamic);
	if (!pgkeel_pg_file_write(path, text, 0600, NULL, err, sizeof(err)))
		log_debug("cannot save %s: %s", path, err);
	free(text);
	free(path);
}

static json_object *load_dynamic_cache(const struct pgkeel_config *cfg)
{
	char *path = pgkeel_asprintf("%s/%s", cfg->data_dir, DYNAMIC_CACHE);
	json_object *o = NULL;
	char err[256];
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t n;

	free(path);
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!pgkeel_json_parse(buf, n, &o, err, sizeof(err)) ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* A new effective configuration from `dynamic` (the DCS config or a cache). */
static void apply_dynamic(struct loop *L, json_object *dynamic, const char *what)
{
	struct pgkeel_diag d;
	struct pgkeel_config *n;

	pgkeel_diag_init(&d);
	n = pgkeel_config_with_dynamic(L->cfg, dynamic, &d);
	pgkeel_diag_log(&d);
	pgkeel_diag_clear(&d);
	if (n == NULL) {
		log_warning("ignoring the %s: it does not give a valid configuration", what);
		return;
	}
	pgkeel_config_publish(n);
	pgkeel_config_unref(L->cfg);
	L->cfg = n;
	pgkeel_pgm_set_config(L->pgm, n);
	{
		struct pgkeel_watchdog_settings ws;

		pgkeel_watchdog_settings_from_config(n, &ws);
		pgkeel_watchdog_reload(L->wd, &ws);
	}
	if (L->sampler != NULL)
		pgkeel_sampler_set_config(L->sampler, n);
	L->params_dirty = true;
	L->dcs.ttl_s = n->ttl;
	if (L->backend.plugin->set_ttl != NULL) {
		struct pgkeel_err e = {0};

		(void)L->backend.plugin->set_ttl(L->dcs_handle, n->ttl, n->loop_wait,
		                                 n->retry_timeout, &e);
	}
}

/* §5.1 step 2 of each iteration: a changed, valid /config is applied. */
static void maybe_apply_cluster_config(struct loop *L)
{
	const struct pgkeel_cluster_config *cc = L->cluster != NULL ? L->cluster->config : NULL;

	if (cc == NULL || !cc->valid || cc->data == NULL)
		return;
	if (L->applied_config != NULL && cc->modify_version != NULL &&
	    strcmp(L->applied_config, cc->modify_version) == 0)
		return;
	if (L->applied_config != NULL)
		log_info("the dynamic configuration changed in the DCS (version %s)",
		         cc->modify_version ? cc->modify_version : "?");
	apply_dynamic(L, cc->data, "dynamic configuration from the DCS");
	free(L->applied_config);
	L->applied_config = pgkeel_strdup(cc->modify_version ? cc->modify_version : "");
}

/* ------------------------------------------------------------ the facts */

struct cycle {
	struct pgkeel_ha_facts f;
	struct pgkeel_ha_settings settings;
	struct pgkeel_ha_pg hpg;
	struct pgkeel_cluster *cluster;     /* references held for the cycle */
	struct pgkeel_cluster *old_cluster;
	struct pgkeel_ha_peer peers[MAX_PEERS];
	char *peer_names[MAX_PEERS];
	size_t n_peers;
	struct pgkeel_cluster *reloads[PGKEEL_HA_MAX_RELOADS];
	char *sync_versions[PGKEEL_HA_MAX_SYNC_WRITES];
	struct pgkeel_pg_status *resample_status;
	char *resample_ssn;
	struct pgkeel_ha_failsafe_leader fsl;
	struct pgkeel_rest_failsafe fsmsg;
	bool have_fsmsg;
	struct pgkeel_rest_restart sched; /* POST /restart {"schedule"} */
	struct pgkeel_ha_scheduled_restart sched_fact;
	char sysid[32];
	char controldata_state[64];
	char task[64];
};

static void cycle_clear(struct cycle *c)
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		free(c->peer_names[i]);
	for (i = 0; i < PGKEEL_HA_MAX_RELOADS; i++)
		pgkeel_cluster_unref(c->reloads[i]);
	for (i = 0; i < PGKEEL_HA_MAX_SYNC_WRITES; i++)
		free(c->sync_versions[i]);
	pgkeel_pg_status_free(c->resample_status);
	free(c->resample_ssn);
	if (c->have_fsmsg)
		pgkeel_rest_failsafe_clear(&c->fsmsg);
	pgkeel_rest_restart_clear(&c->sched);
	pgkeel_cluster_unref(c->cluster);
	pgkeel_cluster_unref(c->old_cluster);
	memset(c, 0, sizeof(*c));
}

static bool data_file_exists(const struct loop *L, const char *name)
{
	char *p = pgkeel_asprintf("%s/%s", L->cfg->data_dir, name);
	bool ok = access(p, F_OK) == 0;

	free(p);
	return ok;
}

static void gather_pg(struct loop *L, struct cycle *c)
{
	const struct pgkeel_pgm_state *s = &L->pg;
	struct pgkeel_ha_pg *p = &c->hpg;
	const struct pgkeel_pg_status *st = s->queried ? s->status : NULL;

	memset(p, 0, sizeof(*p));
	p->data_dir_empty = s->data_dir_empty;
	p->data_dir_error = s->data_dir_error ? s->data_dir_errmsg : NULL;
	(void)pgkeel_fmt(c->sysid, sizeof(c->sysid), "%s", s->sysid);
	p->sysid = c->sysid[0] ? c->sysid : NULL;
	p->running = s->running;
	p->state = s->ctl.state;
	p->state_since_ms = s->ctl.state_since_ms;
	p->query_failed = s->running && !s->queried && !s->busy;
	if (st != NULL)
		p->is_primary = !st->in_recovery;
	else
		p->is_primary = s->running && (L->role == PGKEEL_HA_ROLE_MASTER ||
		                               L->role == PGKEEL_HA_ROLE_PROMOTED);
	p->role = L->role;
	p->cb_called = L->cb.called;
	if (st != NULL) {
		p->timeline = st->timeline;
		p->wal_position = st->in_recovery
		                      ? (st->receive_lsn > st->replay_lsn ? st->receive_lsn
		                                                         : st->replay_lsn)
		                      : st->wal_lsn;
		p->pending_restart = st->pending_restart;
		p->server_version = st->server_version;
		p->postmaster_start_time = st->postmaster_start_time;
		p->synchronous_standby_names = st->synchronous_standby_names;
		p->synchronous_commit = st->synchronous_commit;
		p->walsenders = st->walsenders;
		p->n_walsenders = st->n_walsenders;
	} else {
		p->server_version = s->server_version;
	}
	p->backup_label = data_file_exists(L, "backup_label");
	p->recovery_conf = data_file_exists(L, "standby.signal") ||
	                   data_file_exists(L, "recovery.signal") ||
	                   data_file_exists(L, "recovery.conf");
	if (!s->running && !s->data_dir_empty && !s->data_dir_error && !s->busy) {
		char err[256];
		const char *v;
		json_object *cd = pgkeel_pgm_controldata(L->cfg, now_ms() + 5000, err, sizeof(err));
		json_object *use = pgkeel_json_path(L->cfg->effective, "postgresql.use_pg_rewind");

		if (cd != NULL && pgkeel_controldata_str(cd, "Database cluster state", &v)) {
			(void)pgkeel_fmt(c->controldata_state, sizeof(c->controldata_state), "%s", v);
			p->controldata_state = c->controldata_state;
		}
		if (cd != NULL)
			p->can_rewind = pgkeel_rewind_possible(use != NULL && json_object_get_boolean(use),
			                                       cd, NULL, 0);
		json_object_put(cd);
	} else {
		json_object *use = pgkeel_json_path(L->cfg->effective, "postgresql.use_pg_rewind");

		/* running: wal_log_hints/checksums were checked when it was configured */
		p->can_rewind = use != NULL && json_object_get_boolean(use);
	}
}

static void gather(struct loop *L, struct cycle *c, bool dcs_failed)
{
	const char *task = pgkeel_pgm_busy(L->pgm, c->task, sizeof(c->task));
	int64_t ttl_ms = (int64_t)L->cfg->ttl * 1000;

	memset(&c->f, 0, sizeof(c->f));
	pgkeel_ha_settings_from_config(L->cfg, &c->settings);
	gather_pg(L, c);
	c->cluster = pgkeel_cluster_ref(L->cluster);
	c->old_cluster = pgkeel_cluster_ref(L->old_cluster);
	c->f.cfg = &c->settings;
	c->f.state = &L->hs;
	c->f.cluster = c->cluster;
	c->f.dcs_failed = dcs_failed;
	c->f.old_cluster = c->old_cluster;
	c->f.now_ms = now_ms();
	c->f.now_wall_ms = (int64_t)time(NULL) * 1000;
	c->f.is_leader = pgkeel_dcsc_lock_valid(&L->dcs);
	c->f.pg = &c->hpg;
	c->f.watchdog_running = pgkeel_watchdog_is_running(L->wd);
	c->f.watchdog_healthy = pgkeel_watchdog_is_healthy(L->wd);
	c->f.task = task;
	c->f.failsafe_active = L->failsafe_active;
	if (L->rest != NULL && pgkeel_rest_failsafe_last(L->rest, &c->fsmsg)) {
		c->have_fsmsg = true;
		if (c->fsmsg.received_ms + ttl_ms > c->f.now_ms) {
			c->fsl.name = c->fsmsg.name;
			c->fsl.api_url = c->fsmsg.api_url;
			c->fsl.conn_url = c->fsmsg.conn_url;
			c->f.failsafe_leader = &c->fsl;
		}
	}
	if (pgkeel_rest_scheduled_restart(L->rest, &c->sched)) {
		pgkeel_loop_rest_restart_fact(&c->sched, &c->sched_fact);
		c->f.scheduled_restart = &c->sched_fact;
	}
}

/* ------------------------------------------------------------ requests */

static enum pgkeel_ha_outcome outcome(enum pgkeel_dcs_status st)
{
	switch (st) {
	case PGKEEL_DCS_OK:
		return PGKEEL_HA_OK;
	case PGKEEL_DCS_CONFLICT:
		return PGKEEL_HA_FAIL;
	default:
		return PGKEEL_HA_ERROR;
	}
}

static void probe(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq)
{
	struct pgkeel_peer_target t[MAX_PEERS];
	struct pgkeel_peer_status st[MAX_PEERS];
	size_t n = rq->n_targets, i;

	if (n > MAX_PEERS - c->n_peers)
		n = MAX_PEERS - c->n_peers;
	for (i = 0; i < n; i++) {
		t[i].name = rq->targets[i].name;
		t[i].api_url = rq->targets[i].api_url;
	}
	memset(st, 0, sizeof(st));
	pgkeel_peers_fetch_status(L->peers, t, n, now_ms() + PGKEEL_PEERS_STATUS_TIMEOUT_MS + 500,
	                          st);
	for (i = 0; i < n; i++) {
		struct pgkeel_ha_peer *p = &c->peers[c->n_peers];

		c->peer_names[c->n_peers] = pgkeel_strdup(t[i].name);
		memset(p, 0, sizeof(*p));
		p->name = c->peer_names[c->n_peers];
		p->reachable = st[i].reachable;
		if (p->reachable) {
			p->in_recovery = st[i].in_recovery;
			p->wal_position = st[i].wal_position;
			p->timeline = st[i].timeline;
			p->nofailover = st[i].nofailover;
			p->watchdog_failed = st[i].watchdog_failed;
		} else {
			log_debug("request to %s (%s) failed: %s", t[i].name, t[i].api_url,
			          st[i].error);
		}
		pgkeel_peer_status_clear(&st[i]);
		c->n_peers++;
	}
	c->f.r.peers = c->peers;
	c->f.r.n_peers = c->n_peers;
}

/* {"optime":lsn} for the status key (slots: not yet published). */
static char *status_json(const struct loop *L)
{
	const struct pgkeel_pg_status *st = L->pg.queried ? L->pg.status : NULL;

	if (st == NULL || st->in_recovery)
		return NULL;
	return pgkeel_status_encode(st->wal_lsn, L->status_slots);
}

/* {member: api_url} of every member with one, and me (failsafe_mode). */
static char *failsafe_json(const struct loop *L)
{
	struct pgkeel_failsafe_entry e[MAX_PEERS + 1];
	char *api = pgkeel_member_api_url(L->cfg), *out;
	size_t n = 0, i;
	bool me = false;

	for (i = 0; L->cluster != NULL && i < L->cluster->n_members && n < MAX_PEERS; i++) {
		const struct pgkeel_member *m = &L->cluster->members[i];

		if (m->d.api_url == NULL)
			continue;
		e[n].name = m->name;
		e[n].api_url = strcmp(m->name, L->cfg->name) == 0 ? api : (char *)m->d.api_url;
		me = me || strcmp(m->name, L->cfg->name) == 0;
		n++;
	}
	if (!me) {
		e[n].name = (char *)L->cfg->name;
		e[n].api_url = api;
		n++;
	}
	out = pgkeel_failsafe_encode(e, n);
	free(api);
	return out;
}

static enum pgkeel_ha_outcome update_lock(struct loop *L, bool with_status, bool with_failsafe)
{
	char *sj = with_status ? status_json(L) : NULL;
	char *fj = with_failsafe ? failsafe_json(L) : NULL;
	const struct pgkeel_pg_status *st = L->pg.queried ? L->pg.status : NULL;
	enum pgkeel_dcs_status r;

	r = pgkeel_dcsc_update(&L->dcs, leader_version(L),
	                       st != NULL && !st->in_recovery ? st->wal_lsn : -1, sj, fj,
	                       dcs_deadline(L));
	if (r != PGKEEL_DCS_OK)
		dcs_log_failure(L, "update_leader", r);
	free(sj);
	free(fj);
	return outcome(r);
}

static void reload_cluster(struct loop *L, struct cycle *c, int64_t delay_ms)
{
	struct pgkeel_cluster *n = NULL;
	size_t i = c->f.r.n_reloads;
	enum pgkeel_dcs_status st;

	if (delay_ms > 0) {
		/* Patroni sleeps here (after a lost race, before following) */
		struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	st = pgkeel_dcsc_load(&L->dcs, dcs_deadline(L), &n);
	if (st == PGKEEL_DCS_OK) {
		set_cluster(L, pgkeel_cluster_ref(n));
		c->reloads[i] = n;
	} else {
		dcs_log_failure(L, "load_cluster", st);
	}
	c->f.r.reloads[i] = c->reloads[i];
	c->f.r.n_reloads = i + 1;
}

static void write_sync(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq)
{
	size_t i = c->f.r.n_sync_writes;
	char *json = pgkeel_sync_encode(rq->sync_leader, rq->sync_standbys, rq->n_sync_standbys);
	char ver[128] = "";
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status st;

	st = L->backend.plugin->write_sync_state(L->dcs_handle, json, rq->sync_version, ver,
	                                         sizeof(ver), dcs_deadline(L), &e);
	if (st != PGKEEL_DCS_OK)
		log_info("write_sync_state: %s (%s)", pgkeel_dcs_status_name(st), e.msg);
	free(json);
	c->f.r.sync_writes[i].outcome = outcome(st);
	if (st == PGKEEL_DCS_OK && ver[0] != '\0') {
		c->sync_versions[i] = pgkeel_strdup(ver);
		c->f.r.sync_writes[i].version = c->sync_versions[i];
	}
	c->f.r.n_sync_writes = i + 1;
}

static const struct pgkeel_member *member_named(const struct pgkeel_cluster *cl, const char *n)
{
	return cl != NULL && n != NULL ? pgkeel_cluster_get_member(cl, n) : NULL;
}

/*
 * A running replica's timeline as Patroni's get_replica_timeline gives it
 * (IDENTIFY_SYSTEM on a local replication connection): the sampler asks it
 * and publishes it; the status query's receive/checkpoint timeline lags
 * behind a timeline switch and made healthy replicas look diverged.
 */
static int64_t replica_timeline(const struct pgkeel_pg_status *st)
{
	struct pgkeel_state_view v;
	int64_t tl = st->timeline;

	pgkeel_state_acquire(&v);
	if (v.pg != NULL && v.pg->status != NULL && v.pg->timeline > 0 &&
	    v.pg->valid_until_ms > pgkeel_now_boottime_ms())
		tl = v.pg->timeline;
	pgkeel_state_release(&v);
	return tl;
}

static void rewind_check(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq)
{
	const struct pgkeel_member *m = member_named(L->cluster, rq->upstream.name);
	struct pgkeel_rewind_leader leader;
	struct pgkeel_rewind_check_opts o;
	struct pgkeel_rewind_check_result res;
	const struct pgkeel_pg_status *st = L->pg.queried ? L->pg.status : NULL;
	size_t i = c->f.r.n_rewind_checks;
	enum pgkeel_ha_rewind_check out = PGKEEL_HA_CHECK_UNKNOWN;

	memset(&leader, 0, sizeof(leader));
	leader.name = rq->upstream.name;
	leader.conn_url = rq->upstream.conn_url;
	leader.role = m != NULL ? m->d.role : NULL;
	leader.remote = rq->upstream.kind == PGKEEL_HA_UP_REMOTE;
	leader.checkpoint_after_promote =
	    m != NULL ? m->d.checkpoint_after_promote : PGKEEL_TRI_ABSENT;
	memset(&o, 0, sizeof(o));
	o.cfg = L->cfg;
	o.leader = leader.conn_url != NULL ? &leader : NULL;
	o.server_version = L->pg.server_version;
	if (st != NULL && st->in_recovery) {
		o.running = true;
		o.running_tli = replica_timeline(st);
		o.running_lsn = st->replay_lsn;
	}
	o.deadline_ms = now_ms() + 10000;
	switch (pgkeel_rewind_check(&o, &res)) {
	case PGKEEL_REWIND_NEEDED:
		out = PGKEEL_HA_CHECK_NEED;
		log_info("pg_rewind is needed: %s", res.reason);
		break;
	case PGKEEL_REWIND_NOT_NEEDED:
		out = PGKEEL_HA_CHECK_NOT_NEED;
		break;
	default:
		log_info("could not check whether pg_rewind is needed: %s", res.reason);
		break;
	}
	c->f.r.rewind_checks[i] = out;
	c->f.r.n_rewind_checks = i + 1;
}

static enum pgkeel_ha_outcome failsafe_check(struct loop *L)
{
	const struct pgkeel_failsafe *fs = L->cluster != NULL ? L->cluster->failsafe : NULL;
	struct pgkeel_peer_target t[MAX_PEERS];
	struct pgkeel_peer_post_result res[MAX_PEERS];
	struct pgkeel_failsafe_msg msg;
	char *conn = pgkeel_member_conn_url(L->cfg), *api = pgkeel_member_api_url(L->cfg);
	size_t n = 0, i;
	bool ok;

	for (i = 0; fs != NULL && i < fs->n_entries && n < MAX_PEERS; i++) {
		if (strcmp(fs->entries[i].name, L->cfg->name) == 0 || fs->entries[i].api_url == NULL)
			continue;
		t[n].name = fs->entries[i].name;
		t[n].api_url = fs->entries[i].api_url;
		n++;
	}
	memset(&msg, 0, sizeof(msg));
	msg.name = L->cfg->name;
	msg.conn_url = conn;
	msg.api_url = api;
	ok = pgkeel_peers_post_failsafe(L->peers, t, n, &msg,
	                                now_ms() + 2 * PGKEEL_PEERS_FAILSAFE_TIMEOUT_MS + 500, res);
	free(conn);
	free(api);
	return ok ? PGKEEL_HA_OK : PGKEEL_HA_FAIL;
}

/* Set synchronous_standby_names through the configuration and a reload. */
static bool set_ssn(struct loop *L, const char *ssn)
{
	char err[512];

	if (!pgkeel_pgm_set_ssn(L->pgm, ssn))
		return true; /* unchanged: nothing to write */
	if (!pgkeel_pgm_reload_now(L->pgm, now_ms() + 5000, err, sizeof(err))) {
		log_warning("synchronous_standby_names: %s", err);
		return false;
	}
	return true;
}

/* Some WAL, so that standbys report a position past the mark (Patroni's DO block). */
static void force_wal(struct loop *L)
{
	struct pgkeel_pg_err e;

	if (pgkeel_pg_exec(pgkeel_pgm_connection(L->pgm),
	                   "DO $$BEGIN SET local synchronous_commit = 'off'; "
	                   "PERFORM * FROM pg_catalog.txid_current(); END;$$",
	                   0, NULL, now_ms() + 3000, NULL, &e) != PGKEEL_PG_OK)
		log_debug("forcing WAL: %s", e.msg);
}

static void sync_resample(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq)
{
	struct pgkeel_pg *pg = pgkeel_pgm_connection(L->pgm);
	struct pgkeel_pg_status *st = NULL;
	struct pgkeel_pg_err e;
	struct timespec ts = {0, 100 * 1000000L};

	(void)set_ssn(L, rq->ssn);
	nanosleep(&ts, NULL);
	if (pgkeel_pg_query_status(pg, now_ms() + 3000, &st, &e) == PGKEEL_PG_OK) {
		c->f.r.resample.ssn = c->resample_ssn = pgkeel_strdup(
		    st->synchronous_standby_names ? st->synchronous_standby_names : "");
		c->f.r.resample.mark = st->wal_lsn;
		pgkeel_pg_status_free(st);
		st = NULL;
		force_wal(L);
		ts.tv_sec = 2;
		ts.tv_nsec = 0;
		nanosleep(&ts, NULL);
		if (pgkeel_pg_query_status(pg, now_ms() + 3000, &st, &e) == PGKEEL_PG_OK) {
			c->resample_status = st;
			c->f.r.resample.walsenders = st->walsenders;
			c->f.r.resample.n_walsenders = st->n_walsenders;
		}
	}
	c->f.r.resample.done = true;
}

static void perform(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq)
{
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status st;

	log_debug("HA request %s", pgkeel_ha_req_name(rq->kind));
	switch (rq->kind) {
	case PGKEEL_HA_REQ_NONE:
		break;
	case PGKEEL_HA_REQ_PROBE:
		probe(L, c, rq);
		break;
	case PGKEEL_HA_REQ_UPDATE_LOCK:
		c->f.r.update_lock = update_lock(L, rq->with_status, rq->with_failsafe);
		break;
	case PGKEEL_HA_REQ_ACQUIRE_LOCK:
		st = pgkeel_dcsc_acquire(&L->dcs, dcs_deadline(L));
		if (st == PGKEEL_DCS_UNAVAILABLE)
			dcs_log_failure(L, "attempt_to_acquire_leader", st);
		c->f.r.acquire_lock = outcome(st);
		break;
	case PGKEEL_HA_REQ_INITIALIZE_RACE:
		st = L->backend.plugin->initialize(L->dcs_handle, true, "", dcs_deadline(L), &e);
		c->f.r.initialize_race = outcome(st);
		break;
	case PGKEEL_HA_REQ_WRITE_SYNC:
		write_sync(L, c, rq);
		break;
	case PGKEEL_HA_REQ_RELOAD_CLUSTER:
		reload_cluster(L, c, rq->delay_ms);
		break;
	case PGKEEL_HA_REQ_REWIND_CHECK:
		rewind_check(L, c, rq);
		break;
	case PGKEEL_HA_REQ_FAILSAFE_CHECK:
		c->f.r.failsafe_check = failsafe_check(L);
		break;
	case PGKEEL_HA_REQ_WATCHDOG_ACTIVATE:
		c->f.r.watchdog_activate =
		    pgkeel_watchdog_activate(L->wd) ? PGKEEL_HA_OK : PGKEEL_HA_FAIL;
		break;
	case PGKEEL_HA_REQ_SYNC_RESAMPLE:
		sync_resample(L, c, rq);
		break;
	}
}

/* ------------------------------------------------------------ effects */

static enum pgkeel_pg_role pg_role_of(enum pgkeel_ha_role r)
{
	switch (r) {
	case PGKEEL_HA_ROLE_MASTER:
	case PGKEEL_HA_ROLE_PROMOTED:
		return PGKEEL_PG_PRIMARY;
	case PGKEEL_HA_ROLE_STANDBY_LEADER:
		return PGKEEL_PG_STANDBY_LEADER;
	default:
		return PGKEEL_PG_REPLICA;
	}
}

/* Where an effect's upstream points: a target for the manager. */
static void target_of(struct loop *L, const struct pgkeel_ha_upstream *up, enum pgkeel_ha_role r,
                      struct pgkeel_pgm_target *t)
{
	struct pgkeel_member fake;
	const struct pgkeel_member *m = NULL;

	memset(t, 0, sizeof(*t));
	switch (up->kind) {
	case PGKEEL_HA_UP_NONE:
		t->role = pg_role_of(r);
		return;
	case PGKEEL_HA_UP_REMOTE:
		pgkeel_pgm_target_standby_leader(L->cfg, L->pg.server_version, t);
		if (r != PGKEEL_HA_ROLE_STANDBY_LEADER)
			t->role = PGKEEL_PG_REPLICA;
		return;
	case PGKEEL_HA_UP_MEMBER:
	case PGKEEL_HA_UP_FAILSAFE:
		m = member_named(L->cluster, up->name);
		break;
	}
	if (m == NULL || m->d.conn_url == NULL) {
		memset(&fake, 0, sizeof(fake));
		pgkeel_member_data_init(&fake.d);
		fake.name = (char *)up->name;
		fake.d.conn_url = up->conn_url;
		m = &fake;
	}
	pgkeel_pgm_target_follow(L->cfg, m, L->pg.server_version, t);
	t->role = pg_role_of(r);
	if (t->role == PGKEEL_PG_PRIMARY)
		t->has_upstream = false;
}

static bool submit(struct loop *L, enum pgkeel_pgm_kind kind, const char *task,
                   const struct pgkeel_pgm_target *t, int64_t timeout_s)
{
	struct pgkeel_pgm_request r;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	r.name = task;
	if (t != NULL)
		r.target = *t;
	if (timeout_s > 0)
		r.ready_deadline_ms = now_ms() + timeout_s * 1000;
	r.stop_deadline_ms = now_ms() + (int64_t)(L->cfg->ttl > 0 ? L->cfg->ttl : 30) * 1000;
	if (!pgkeel_pgm_submit(L->pgm, &r, err, sizeof(err))) {
		log_warning("Failed to run %s, %s", task ? task : pgkeel_pgm_kind_name(kind), err);
		return false;
	}
	return true;
}

static void task_finished(struct loop *L, const struct pgkeel_pgm_result *res);

/* Run an action and wait for it (bounded): Patroni's synchronous calls. */
static bool run_sync(struct loop *L, struct pgkeel_pgm_request *r, int64_t deadline_ms)
{
	struct pgkeel_pgm_result res;
	char err[256];

	r->no_wakeup = true;
	if (!pgkeel_pgm_submit(L->pgm, r, err, sizeof(err))) {
		log_warning("%s", err);
		return false;
	}
	if (!pgkeel_pgm_wait_idle(L->pgm, deadline_ms)) {
		log_warning("%s did not finish in time", r->name ? r->name : "action");
		return false;
	}
	if (pgkeel_pgm_take_result(L->pgm, &res)) {
		task_finished(L, &res);
		return res.ok;
	}
	return false;
}

static void fire_callback(struct loop *L, const char *action, enum pgkeel_ha_role role)
{
	static const struct {
		const char *name;
		enum pgkeel_cb_action a;
	} map[] = {
	    {"on_start", PGKEEL_CB_ON_START},     {"on_stop", PGKEEL_CB_ON_STOP},
	    {"on_restart", PGKEEL_CB_ON_RESTART}, {"on_reload", PGKEEL_CB_ON_RELOAD},
	    {"on_role_change", PGKEEL_CB_ON_ROLE_CHANGE},
	};
	size_t i;

	for (i = 0; i < PGKEEL_ARRAY_LEN(map); i++)
		if (action != NULL && strcmp(action, map[i].name) == 0) {
			(void)pgkeel_callbacks_fire_config(&L->cb, L->cfg, map[i].a,
			                                   pgkeel_ha_role_name(role));
			return;
		}
	log_warning("unknown callback %s", action ? action : "(null)");
}

static void touch_member(struct loop *L)
{
	struct pgkeel_member_facts f;
	const struct pgkeel_pg_status *st = L->pg.queried ? L->pg.status : NULL;
	char task[64], *json;
	const char *busy = pgkeel_pgm_busy(L->pgm, task, sizeof(task));
	const char *state = pg_state_word(L);
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status r;

	memset(&f, 0, sizeof(f));
	if (busy != NULL && L->pg.data_dir_empty)
		state = strcmp(busy, "bootstrap") == 0 ? "initializing new cluster" : "creating replica";
	f.state = state;
	f.role = pgkeel_ha_role_name(L->role);
	f.leader_checkpoint_pending = pgkeel_dcsc_lock_valid(&L->dcs) && L->pg.checkpoint_pending;
	f.pending_restart = st != NULL && st->pending_restart;
	f.paused = is_paused(L);
	f.scheduled_restart = pgkeel_rest_scheduled_restart_json(L->rest, true);
	if (st != NULL && (busy == NULL || strcmp(busy, "promote") == 0)) {
		f.have_wal = true;
		f.wal_position = st->in_recovery ? (st->receive_lsn > st->replay_lsn ? st->receive_lsn
		                                                                      : st->replay_lsn)
		                                 : st->wal_lsn;
		f.timeline = st->timeline;
	}
	json = pgkeel_member_value(L->cfg, &f);
	r = L->backend.plugin->touch_member(L->dcs_handle, json, dcs_deadline(L), &e);
	if (r != PGKEEL_DCS_OK)
		log_warning("touch_member failed (%s): %s", pgkeel_dcs_status_name(r), e.msg);
	json_object_put(f.scheduled_restart);
	free(json);
}

static void set_history(struct loop *L, int64_t timeline)
{
	char *path = pgkeel_asprintf("%s/pg_wal/%08llX.history", L->cfg->data_dir,
	                             (unsigned long long)timeline);
	json_object *max = pgkeel_json_path(L->cfg->effective, "max_timelines_history");
	struct stat sb;
	char *text = NULL, *value;
	FILE *f;

	if (timeline > 1 && stat(path, &sb) == 0 && (f = fopen(path, "r")) != NULL) {
		size_t cap = (size_t)sb.st_size + 1, n;

		text = pgkeel_xcalloc(1, cap);
		n = fread(text, 1, cap - 1, f);
		text[n] = '\0';
		fclose(f);
	}
	value = pgkeel_history_update(L->cluster != NULL ? L->cluster->history : NULL, timeline, text,
	                              (int64_t)sb.st_mtim.tv_sec,
	                              text != NULL ? (int64_t)sb.st_mtim.tv_nsec / 1000 : 0,
	                              L->cfg->name, max != NULL ? json_object_get_int64(max) : 0);
	if (value != NULL) {
		struct pgkeel_err e = {0};

		if (L->backend.plugin->set_history(L->dcs_handle, value, dcs_deadline(L), &e) !=
		    PGKEEL_DCS_OK)
			log_warning("set_history failed: %s", e.msg);
	}
	free(value);
	free(text);
	free(path);
}

/* Rename the data directory to <dir>.failed (Patroni's move_data_directory). */
static void move_data_directory(const struct loop *L)
{
	char *target = pgkeel_asprintf("%s.failed", L->cfg->data_dir);
	char err[256];

	if (access(target, F_OK) == 0 && !pgkeel_pg_remove_data_dir(target, err, sizeof(err)))
		log_warning("cannot remove %s: %s", target, err);
	if (rename(L->cfg->data_dir, target) != 0)
		log_error("could not rename data directory %s to %s: %s", L->cfg->data_dir, target,
		          strerror(errno));
	else
		log_info("renamed data directory %s to %s", L->cfg->data_dir, target);
	free(target);
}

/* What a configuration for t follows, as "host:port/slot" ("" host: nobody). */
static void following_text(const struct pgkeel_pgm_target *t, char *buf, size_t len)
{
	(void)pgkeel_fmt(buf, len, "%s:%s/%s", t->has_upstream ? t->host : "",
	                 t->has_upstream ? t->port : "", t->slot);
}

static void set_following(struct loop *L, const struct pgkeel_pgm_target *t)
{
	following_text(t, L->following, sizeof(L->following));
}

static void follow(struct loop *L, const struct pgkeel_ha_effect *fx)
{
	struct pgkeel_pgm_target t;
	char want[320];

	target_of(L, &fx->upstream, fx->role, &t);
	following_text(&t, want, sizeof(want));
	if (strcmp(want, L->following) != 0) {
		log_info("following %s (%s)", t.has_upstream ? t.upstream_name : "nobody", want);
		if (submit(L, PGKEEL_PGM_FOLLOW,
		           fx->task ? fx->task : "changing primary_conninfo and restarting", &t,
		           L->cfg->ttl))
			set_following(L, &t);
		if (L->hs.rewind != PGKEEL_HA_REWIND_NEED)
			L->hs.rewind = PGKEEL_HA_REWIND_CHECK;
		return;
	}
	if (fx->role == PGKEEL_HA_ROLE_STANDBY_LEADER && L->role != PGKEEL_HA_ROLE_STANDBY_LEADER) {
		L->role = PGKEEL_HA_ROLE_STANDBY_LEADER;
		fire_callback(L, "on_role_change", L->role);
	} else if (fx->role == PGKEEL_HA_ROLE_REPLICA && L->role != PGKEEL_HA_ROLE_REPLICA &&
	           L->role != PGKEEL_HA_ROLE_DEMOTED) {
		L->role = PGKEEL_HA_ROLE_REPLICA;
	}
}

static void start_rewind(struct loop *L, const struct pgkeel_ha_effect *fx)
{
	const struct pgkeel_member *m = member_named(L->cluster, fx->upstream.name);
	struct pgkeel_pgm_request r;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.kind = PGKEEL_PGM_REWIND;
	r.name = fx->task ? fx->task : "rewind";
	(void)pgkeel_fmt(r.leader_name, sizeof(r.leader_name), "%s",
	                 fx->upstream.name ? fx->upstream.name : "");
	(void)pgkeel_fmt(r.leader_conn_url, sizeof(r.leader_conn_url), "%s",
	                 fx->upstream.conn_url ? fx->upstream.conn_url : "");
	(void)pgkeel_fmt(r.leader_role, sizeof(r.leader_role), "%s",
	                 m != NULL && m->d.role != NULL ? m->d.role : "");
	r.leader_remote = fx->upstream.kind == PGKEEL_HA_UP_REMOTE;
	r.leader_checkpoint_after_promote =
	    m != NULL ? m->d.checkpoint_after_promote : PGKEEL_TRI_ABSENT;
	if (L->pg.running) {
		/* Patroni's rewind stops a running PostgreSQL first (fast, no
		 * checkpoint): e.g. a crashed primary started as a replica, then
		 * found diverged; the job itself refuses a running one */
		struct pgkeel_pgm_request s;

		memset(&s, 0, sizeof(s));
		s.kind = PGKEEL_PGM_STOP;
		s.name = "stop";
		s.stop_mode = PGKEEL_PGCTL_FAST;
		s.stop_deadline_ms = now_ms() + (int64_t)L->cfg->ttl * 1000;
		if (!run_sync(L, &s, s.stop_deadline_ms + 5000)) {
			log_warning("Can not run pg_rewind because postgres is still running");
			return;
		}
	}
	if (!pgkeel_pgm_submit(L->pgm, &r, err, sizeof(err)))
		log_warning("Failed to run %s, %s", r.name, err);
}

static void publish(struct loop *L, bool with_pg);

/*
 * A new configuration reaches PostgreSQL (Patroni's reload_config): the
 * files are rewritten and the postmaster reloaded; what needs a restart
 * shows as pending_restart in the member data from the next sample.
 */
static void apply_parameters(struct loop *L)
{
	char err[512];

	if (!L->params_dirty || !L->pg.running || L->pg.busy)
		return;
	log_info("Reloading PostgreSQL configuration.");
	if (!pgkeel_pgm_reload_now(L->pgm, now_ms() + 5000, err, sizeof(err)))
		log_warning("reloading the PostgreSQL configuration failed: %s", err);
	else
		fire_callback(L, "on_reload", L->role);
	L->params_dirty = false;
}

/* §7.4 once per cycle; a replica missing logical slots copies them (Patroni's
 * copy_logical_slots task) when the decision allows it. */
static void sync_slots(struct loop *L, struct cycle *c, const struct pgkeel_ha_effect *fx)
{
	char **copy = NULL;
	size_t n_copy = 0;

	json_put(&L->status_slots);
	L->status_slots = pgkeel_pgm_sync_slots(
	    L->pgm, c->cluster, pg_role_of(L->role),
	    L->pg.status->in_recovery ? -1 : L->pg.status->wal_lsn, now_ms() + 5000, &copy,
	    &n_copy);
	if (n_copy > 0 && fx->copy_allowed && c->cluster != NULL &&
	    !pgkeel_cluster_is_unlocked(c->cluster)) {
		struct pgkeel_pgm_request r;
		char err[256];

		memset(&r, 0, sizeof(r));
		r.kind = PGKEEL_PGM_COPY_SLOTS;
		r.name = "copy_logical_slots";
		r.target.role = pg_role_of(L->role);
		r.cluster = c->cluster;
		r.slot_names = copy;
		r.n_slot_names = n_copy;
		r.stop_deadline_ms = now_ms() + (int64_t)L->cfg->ttl * 1000;
		r.ready_deadline_ms = now_ms() + 60000;
		if (pgkeel_pgm_submit(L->pgm, &r, err, sizeof(err))) {
			L->copy_names = copy; /* for the cycle's message */
			L->n_copy_names = n_copy;
			return;
		}
		log_warning("%s", err);
	}
	pgkeel_pgm_names_free(copy, n_copy);
}

static void execute(struct loop *L, struct cycle *c, const struct pgkeel_ha_effect *fx)
{
	struct pgkeel_pgm_target t;
	struct pgkeel_pgm_request r;
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status st;
	char *json;

	log_debug("HA effect %s", pgkeel_ha_fx_name(fx->kind));
	switch (fx->kind) {
	case PGKEEL_HA_FX_TOUCH_MEMBER:
		touch_member(L);
		break;
	case PGKEEL_HA_FX_INITIALIZE:
		st = L->backend.plugin->initialize(L->dcs_handle, fx->create_new,
		                                   fx->sysid ? fx->sysid : "", dcs_deadline(L), &e);
		if (st != PGKEEL_DCS_OK)
			log_warning("initialize failed (%s): %s", pgkeel_dcs_status_name(st), e.msg);
		break;
	case PGKEEL_HA_FX_CANCEL_INITIALIZATION:
		(void)L->backend.plugin->cancel_initialization(L->dcs_handle, dcs_deadline(L), &e);
		memset(&r, 0, sizeof(r));
		r.kind = PGKEEL_PGM_STOP;
		r.stop_mode = PGKEEL_PGCTL_IMMEDIATE;
		r.stop_deadline_ms = now_ms() + (int64_t)L->cfg->retry_timeout * 1000;
		(void)run_sync(L, &r, r.stop_deadline_ms + 5000);
		move_data_directory(L);
		break;
	case PGKEEL_HA_FX_SET_CONFIG:
		json = pgkeel_json_compact(L->cfg->dynamic);
		st = L->backend.plugin->set_config(L->dcs_handle, json, NULL, dcs_deadline(L), &e);
		if (st != PGKEEL_DCS_OK)
			log_warning("set_config failed (%s): %s", pgkeel_dcs_status_name(st), e.msg);
		free(json);
		break;
	case PGKEEL_HA_FX_TAKE_LEADER:
		st = pgkeel_dcsc_take(&L->dcs, dcs_deadline(L));
		if (st != PGKEEL_DCS_OK)
			dcs_log_failure(L, "take_leader", st);
		break;
	case PGKEEL_HA_FX_DELETE_LEADER: {
		int64_t lsn = fx->lsn, stopped_lsn;

		/* after a stop in this plan (shutdown): its shutdown checkpoint is the optime */
		if (lsn < 0 && pgkeel_pgm_take_stopped(L->pgm, &stopped_lsn))
			lsn = stopped_lsn;
		if (lsn >= 0) {
			json = pgkeel_status_encode(lsn, NULL);
			(void)L->backend.plugin->write_status(L->dcs_handle, json, dcs_deadline(L), &e);
			free(json);
		}
		st = pgkeel_dcsc_delete_leader(&L->dcs, leader_version(L), dcs_deadline(L));
		if (st != PGKEEL_DCS_OK && st != PGKEEL_DCS_CONFLICT)
			dcs_log_failure(L, "delete_leader", st);
		break;
	}
	case PGKEEL_HA_FX_WRITE_LEADER_OPTIME:
		json = pgkeel_status_encode(fx->lsn, NULL);
		(void)L->backend.plugin->write_status(L->dcs_handle, json, dcs_deadline(L), &e);
		free(json);
		break;
	case PGKEEL_HA_FX_SET_LEADER_VALID:
		if (fx->on) {
			L->dcs.locked = true;
			L->dcs.lock_until_boot = pgkeel_now_boottime_ms() + (int64_t)L->cfg->ttl * 1000;
		} else {
			pgkeel_dcsc_drop_lock(&L->dcs);
		}
		break;
	case PGKEEL_HA_FX_SET_FAILOVER:
		json = pgkeel_failover_encode(fx->fo_leader, fx->fo_candidate, fx->fo_scheduled_at);
		st = L->backend.plugin->set_failover(L->dcs_handle, json, fx->version, dcs_deadline(L),
		                                     &e);
		if (st != PGKEEL_DCS_OK)
			log_info("set_failover: %s (%s)", pgkeel_dcs_status_name(st), e.msg);
		free(json);
		break;
	case PGKEEL_HA_FX_DELETE_SYNC:
		(void)L->backend.plugin->delete_sync_state(L->dcs_handle, fx->version, dcs_deadline(L),
		                                           &e);
		break;
	case PGKEEL_HA_FX_SET_HISTORY:
		set_history(L, fx->timeline);
		break;
	case PGKEEL_HA_FX_FAILSAFE_ACTIVE:
		L->failsafe_active = fx->on;
		break;
	case PGKEEL_HA_FX_HANDLE_PARAMETER_CHANGE:
		apply_parameters(L);
		break;
	case PGKEEL_HA_FX_WATCHDOG_DISABLE:
		pgkeel_watchdog_disable(L->wd);
		break;
	case PGKEEL_HA_FX_WATCHDOG_KEEPALIVE:
		pgkeel_watchdog_keepalive(L->wd);
		break;
	case PGKEEL_HA_FX_CLEAR_SCHEDULED_RESTART:
		pgkeel_rest_scheduled_restart_cancel(L->rest, c->sched.generation);
		break;
	case PGKEEL_HA_FX_SANITY_CHECKS:
		break;
	case PGKEEL_HA_FX_SET_ROLE:
		L->role = fx->role;
		break;
	case PGKEEL_HA_FX_SET_STATE:
		/* Patroni's own word for the state (a postmaster gone while paused is
		 * "stopped", not "crashed"), kept until the postmaster's state changes */
		(void)pgkeel_fmt(L->state_word, sizeof(L->state_word), "%s",
		                 fx->state != NULL ? fx->state : "");
		(void)pgkeel_fmt(L->state_word_over, sizeof(L->state_word_over), "%s",
		                 L->pg.ctl.state_name);
		break;
	case PGKEEL_HA_FX_CALLBACK:
		fire_callback(L, fx->action, fx->role);
		break;
	case PGKEEL_HA_FX_STOP:
		if (!L->pg.running && !L->pg.busy)
			break; /* nothing to stop */
		memset(&r, 0, sizeof(r));
		r.kind = PGKEEL_PGM_STOP;
		r.name = "stop";
		r.stop_mode = fx->stop_mode;
		r.stop_deadline_ms =
		    now_ms() + (fx->timeout_s > 0 ? fx->timeout_s : (int64_t)L->cfg->ttl) * 1000;
		if (run_sync(L, &r, r.stop_deadline_ms + 5000))
			pgkeel_watchdog_disable(L->wd); /* Patroni's on_safepoint */
		break;
	case PGKEEL_HA_FX_DEMOTE:
		memset(&r, 0, sizeof(r));
		r.kind = PGKEEL_PGM_DEMOTE;
		r.name = fx->task ? fx->task : "demote";
		r.demote_mode = fx->demote_mode;
		target_of(L, &fx->upstream, PGKEEL_HA_ROLE_REPLICA, &r.target);
		r.stop_deadline_ms = fx->demote_mode == PGKEEL_DEMOTE_IMMEDIATE_NOLOCK
		                         ? pgkeel_dcsc_lock_deadline_mono(&L->dcs)
		                         : now_ms() + (int64_t)L->cfg->ttl * 1000;
		if (r.stop_deadline_ms <= now_ms() || r.stop_deadline_ms == INT64_MAX)
			r.stop_deadline_ms = now_ms() + 1000;
		r.ready_deadline_ms = now_ms() + (int64_t)L->cfg->ttl * 1000;
		/* health checks stop sending writes here before PostgreSQL goes down */
		L->demoting = true;
		publish(L, false);
		L->role = PGKEEL_HA_ROLE_DEMOTED;
		pgkeel_watchdog_disable(L->wd); /* Patroni's on_safepoint (see watchdog.h) */
		L->demote_releases = fx->demote_mode == PGKEEL_DEMOTE_GRACEFUL ||
		                     fx->demote_mode == PGKEEL_DEMOTE_IMMEDIATE;
		(void)pgkeel_fmt(L->following, sizeof(L->following), "%s", "");
		if (fx->task != NULL) {
			char err[256];

			if (!pgkeel_pgm_submit(L->pgm, &r, err, sizeof(err))) {
				log_warning("%s", err);
				L->demoting = false; /* no demotion runs: nothing ends it */
			}
		} else {
			(void)run_sync(L, &r, r.stop_deadline_ms + 10000);
		}
		break;
	case PGKEEL_HA_FX_PROMOTE:
		L->role = PGKEEL_HA_ROLE_PROMOTED;
		L->following[0] = '\0'; /* a primary follows nobody */
		submit(L, PGKEEL_PGM_PROMOTE, fx->task ? fx->task : "promote", NULL,
		       L->cfg->loop_wait > 0 ? L->cfg->loop_wait : 10);
		break;
	case PGKEEL_HA_FX_START:
		target_of(L, &fx->upstream, fx->role, &t);
		if (submit(L, PGKEEL_PGM_START, fx->task ? fx->task : "starting", &t,
		           fx->timeout_s > 0 ? fx->timeout_s : 60))
			set_following(L, &t);
		if (fx->role == PGKEEL_HA_ROLE_MASTER || fx->role == PGKEEL_HA_ROLE_REPLICA ||
		    fx->role == PGKEEL_HA_ROLE_STANDBY_LEADER)
			L->role = fx->role;
		break;
	case PGKEEL_HA_FX_FOLLOW:
		follow(L, fx);
		break;
	case PGKEEL_HA_FX_CRASH_RECOVERY:
		log_warning("single-user crash recovery is not available yet: starting instead");
		target_of(L, &fx->upstream, PGKEEL_HA_ROLE_REPLICA, &t);
		/* started as a replica, so a replica (a "master" role here would be
		 * demoted during the start, and stay "demoted" once it runs) */
		if (submit(L, PGKEEL_PGM_START, fx->task ? fx->task : "doing crash recovery", &t, 60)) {
			L->role = PGKEEL_HA_ROLE_REPLICA;
			set_following(L, &t); /* the next follow compares with what was written */
		}
		break;
	case PGKEEL_HA_FX_REWIND:
		start_rewind(L, fx);
		break;
	case PGKEEL_HA_FX_REINITIALIZE:
		target_of(L, &fx->upstream, PGKEEL_HA_ROLE_REPLICA, &t);
		submit(L, PGKEEL_PGM_REINITIALIZE, fx->task ? fx->task : "reinitialize", &t, 300);
		break;
	case PGKEEL_HA_FX_BOOTSTRAP:
		if (fx->standby) {
			pgkeel_pgm_target_standby_leader(L->cfg, L->pg.server_version, &t);
			submit(L, PGKEEL_PGM_CREATE_REPLICA, fx->task ? fx->task : "bootstrap", &t, 3600);
		} else {
			memset(&t, 0, sizeof(t));
			t.role = PGKEEL_PG_PRIMARY;
			submit(L, PGKEEL_PGM_BOOTSTRAP, fx->task ? fx->task : "bootstrap", &t, 3600);
		}
		L->cb.bootstrapping = true;
		break;
	case PGKEEL_HA_FX_POST_BOOTSTRAP:
		submit(L, PGKEEL_PGM_POST_BOOTSTRAP, fx->task ? fx->task : "post_bootstrap", NULL, 0);
		break;
	case PGKEEL_HA_FX_CLONE:
		target_of(L, &fx->upstream, PGKEEL_HA_ROLE_REPLICA, &t);
		if (fx->standby && fx->upstream.kind == PGKEEL_HA_UP_REMOTE)
			t.role = PGKEEL_PG_STANDBY_LEADER;
		if (submit(L, PGKEEL_PGM_CREATE_REPLICA, fx->task ? fx->task : "clone", &t, 3600))
			set_following(L, &t);
		break;
	case PGKEEL_HA_FX_RESTART:
		memset(&t, 0, sizeof(t));
		t.role = pg_role_of(L->role);
		submit(L, PGKEEL_PGM_RESTART, fx->task ? fx->task : "restart", &t,
		       fx->timeout_s > 0 ? fx->timeout_s : 60);
		break;
	case PGKEEL_HA_FX_CANCEL_TASK:
		pgkeel_pgm_cancel(L->pgm, now_ms() + 5000);
		break;
	case PGKEEL_HA_FX_SET_SSN:
		(void)set_ssn(L, fx->ssn);
		break;
	case PGKEEL_HA_FX_FORCE_WAL:
		force_wal(L);
		break;
	case PGKEEL_HA_FX_ENSURE_CHECKPOINT:
		if (!L->pg.checkpoint_pending && L->pg.queried && L->pg.status != NULL &&
		    !L->pg.status->in_recovery)
			L->hs.rewind = PGKEEL_HA_REWIND_CHECKPOINT;
		break;
	case PGKEEL_HA_FX_SYNC_SLOTS:
		if (L->pg.queried && L->pg.status != NULL && !fx->dcs_failed)
			sync_slots(L, c, fx);
		break;
	case PGKEEL_HA_FX_FATAL:
		log_fatal("%s", fx->message ? fx->message : "fatal");
		L->stop = true;
		L->fatal = true;
		L->exit_code = fx->exit_code;
		break;
	}
}

/* An action ended: Patroni's follow-ups (role, callbacks, task results). */
static void task_finished(struct loop *L, const struct pgkeel_pgm_result *res)
{
	if (!res->ok && !res->timed_out)
		log_warning("%s failed: %s", res->name, res->err);
	switch (res->kind) {
	case PGKEEL_PGM_PROMOTE:
		/* Patroni's task result is the pre_promote script's (none here: passed);
		 * a failed pg_ctl promote is retried by the next cycle, the lock kept */
		L->hs.task_result = PGKEEL_HA_TASK_TRUE;
		if (res->ok) {
			L->role = PGKEEL_HA_ROLE_MASTER;
			fire_callback(L, "on_role_change", L->role);
		}
		break;
	case PGKEEL_PGM_DEMOTE:
		L->demoting = false;
		if (res->ok) {
			L->role = PGKEEL_HA_ROLE_REPLICA;
			fire_callback(L, "on_role_change", L->role);
		}
		break;
	case PGKEEL_PGM_POST_BOOTSTRAP:
		L->hs.task_result = res->ok ? PGKEEL_HA_TASK_TRUE : PGKEEL_HA_TASK_FALSE;
		if (res->ok)
			L->cb.bootstrapping = false;
		break;
	case PGKEEL_PGM_BOOTSTRAP:
		if (res->ok)
			L->role = PGKEEL_HA_ROLE_MASTER;
		break;
	case PGKEEL_PGM_CREATE_REPLICA:
	case PGKEEL_PGM_REINITIALIZE:
		if (res->ok && L->role != PGKEEL_HA_ROLE_STANDBY_LEADER)
			L->role = PGKEEL_HA_ROLE_REPLICA;
		if (L->hs.bootstrapping) /* a standby leader's clone */
			L->hs.task_result = res->ok ? PGKEEL_HA_TASK_TRUE : PGKEEL_HA_TASK_FALSE;
		break;
	case PGKEEL_PGM_REWIND:
		switch (res->detail) {
		case PGKEEL_REWIND_SUCCESS:
			L->hs.rewind = PGKEEL_HA_REWIND_SUCCESS;
			break;
		case PGKEEL_REWIND_FAILED:
		case PGKEEL_REWIND_REMOVED:
			L->hs.rewind = PGKEEL_HA_REWIND_FAILED;
			break;
		default:
			L->hs.rewind = PGKEEL_HA_REWIND_CHECK; /* try again next cycle */
			break;
		}
		break;
	case PGKEEL_PGM_RESTART:
		if (res->ok)
			fire_callback(L, "on_restart", L->role);
		if (L->restart_req != NULL)
			pgkeel_loop_rest_restart_done(L->restart_req, res);
		L->restart_req = NULL;
		break;
	case PGKEEL_PGM_START:
		if (res->ok && !L->cb.called)
			fire_callback(L, "on_start", L->role);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------ decide + act */

static void run_decision(struct loop *L, struct cycle *c,
                         void (*step)(const struct pgkeel_ha_facts *, struct pgkeel_ha_decision *,
                                      void *),
                         void *arg)
{
	struct pgkeel_ha_decision d;
	size_t i;
	int calls;

	pgkeel_ha_decision_init(&d);
	for (calls = 0; calls < PGKEEL_HA_MAX_CALLS; calls++) {
		step(&c->f, &d, arg);
		if (d.final)
			break;
		perform(L, c, &d.request);
	}
	if (!d.final) {
		log_error("the HA decision did not end within %d steps: no action this cycle", calls);
		pgkeel_ha_decision_clear(&d);
		return;
	}
	for (i = 0; i < d.plan.n_notes; i++) {
		if (d.plan.notes[i].warning)
			log_warning("%s", d.plan.notes[i].text);
		else
			log_info("%s", d.plan.notes[i].text);
	}
	pgkeel_ha_state_copy(&L->hs, &d.plan.state);
	for (i = 0; i < d.plan.n_effects && !L->fatal; i++)
		execute(L, c, &d.plan.effects[i]);
	if (L->n_copy_names > 0) {
		pgkeel_ha_copy_slots_message(&d, (const char *const *)L->copy_names, L->n_copy_names);
		pgkeel_pgm_names_free(L->copy_names, L->n_copy_names);
		L->copy_names = NULL;
		L->n_copy_names = 0;
	}
	if (d.plan.message != NULL) {
		log_info("%s", d.plan.message);
		free(L->last_message);
		L->last_message = pgkeel_strdup(d.plan.message);
	}
	L->wake_at_ms = d.plan.wake_in_ms >= 0 ? now_ms() + d.plan.wake_in_ms : -1;
	pgkeel_ha_decision_clear(&d);
}

static void step_decide(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d, void *arg)
{
	(void)arg;
	pgkeel_ha_decide(f, d);
}

struct on_shutdown_arg {
	bool demote;
	int64_t lsn;
};

static void step_on_shutdown(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d,
                             void *arg)
{
	const struct on_shutdown_arg *a = arg;

	pgkeel_ha_on_shutdown(f, a->demote, a->lsn, a->lsn, d);
}

static void step_shutdown(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d,
                          void *arg)
{
	(void)arg;
	pgkeel_ha_shutdown(f, d);
}

static void step_restart(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d, void *arg)
{
	pgkeel_ha_restart_request(f, arg, d);
}

static void step_reinitialize(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d,
                              void *arg)
{
	pgkeel_ha_reinitialize_request(f, *(const bool *)arg, d);
}

/* ------------------------------------------------------------ publishing */

static enum pgkeel_state_role state_role(enum pgkeel_ha_role r)
{
	switch (r) {
	case PGKEEL_HA_ROLE_MASTER:
		return PGKEEL_STATE_ROLE_MASTER;
	case PGKEEL_HA_ROLE_REPLICA:
		return PGKEEL_STATE_ROLE_REPLICA;
	case PGKEEL_HA_ROLE_STANDBY_LEADER:
		return PGKEEL_STATE_ROLE_STANDBY_LEADER;
	case PGKEEL_HA_ROLE_PROMOTED:
		return PGKEEL_STATE_ROLE_PROMOTED;
	case PGKEEL_HA_ROLE_DEMOTED:
		return PGKEEL_STATE_ROLE_DEMOTED;
	default:
		return PGKEEL_STATE_ROLE_UNINITIALIZED;
	}
}

static bool effective_bool(const struct loop *L, const char *path)
{
	json_object *v = pgkeel_json_path(L->cfg->effective, path);

	return v != NULL && json_object_get_boolean(v);
}

static void publish(struct loop *L, bool with_pg)
{
	struct pgkeel_state_loop *s = pgkeel_state_loop_new();
	struct pgkeel_state_pg *p;
	int64_t boot = pgkeel_now_boottime_ms(), mono = now_ms();

	s->name = pgkeel_strdup(L->cfg->name);
	s->scope = pgkeel_strdup(L->cfg->scope);
	s->cluster = pgkeel_cluster_ref(L->cluster);
	/* the state's times are CLOCK_BOOTTIME (the lock's clock) */
	s->cluster_valid_ms = L->cluster != NULL && L->cluster_read_ms > 0
	                          ? boot - (mono - L->cluster_read_ms) + (int64_t)L->cfg->ttl * 1000
	                          : 0;
	s->dcs_last_seen = L->dcs_last_seen;
	s->pg_state = pgkeel_strdup(pg_state_word(L));
	if (L->sampler != NULL && strcmp(s->pg_state, L->published_state) != 0) {
		/* PostgreSQL changed state: have a sample taken now, not at the next tick */
		(void)pgkeel_fmt(L->published_state, sizeof(L->published_state), "%s", s->pg_state);
		pgkeel_sampler_resume(L->sampler);
	}
	s->pg_running = L->pg.running;
	s->role = state_role(L->role);
	s->lock_deadline_ms =
	    pgkeel_dcsc_lock_valid(&L->dcs) && !L->demoting ? L->dcs.lock_until_boot : 0;
	s->next_cycle_ms = boot + (L->next_run_ms - mono);
	s->ttl = L->cfg->ttl;
	s->loop_wait = L->cfg->loop_wait;
	s->paused = is_paused(L);
	{ /* Patroni's is_standby_cluster(): a host, port or restore_command */
		struct pgkeel_ha_settings hs;

		pgkeel_ha_settings_from_config(L->cfg, &hs);
		s->standby_cluster = hs.standby_cluster;
	}
	s->synchronous_mode = effective_bool(L, "synchronous_mode");
	s->failsafe_mode = effective_bool(L, "failsafe_mode");
	s->failsafe_active = L->failsafe_active;
	s->watchdog_failed = !pgkeel_watchdog_is_healthy(L->wd);
	s->pending_restart = L->pg.queried && L->pg.status != NULL && L->pg.status->pending_restart;
	s->sysid = L->pg.sysid[0] ? pgkeel_strdup(L->pg.sysid) : NULL;
	pgkeel_state_loop_set_tags(s, pgkeel_json_path(L->cfg->local, "tags"), false);
	s->scheduled_restart = pgkeel_rest_scheduled_restart_json(L->rest, false);
	pgkeel_state_publish_loop(s);
	if (!with_pg || L->sampler != NULL) /* the sampler publishes the pg part */
		return;
	p = pgkeel_state_pg_new();
	if (L->pg.queried && L->pg.status != NULL) {
		p->status = L->pg.status;
		L->pg.status = NULL; /* handed over */
		L->pg.queried = false;
		p->timeline = p->status->timeline;
		p->valid_until_ms = boot + (int64_t)(L->cfg->loop_wait + 2) * 1000 + 2000;
	}
	pgkeel_state_publish_pg(p);
}

/* ------------------------------------------------------------ REST requests */

static void pending_free(struct pending_req *p)
{
	free(p->old_leader);
	free(p->candidate);
	free(p);
}

static void answer_failover(struct loop *L, struct pgkeel_rest_req *req)
{
	const struct pgkeel_member **probe_list = NULL;
	struct pgkeel_cluster *c = NULL;
	size_t n_probe = 0, i;
	char buf[512], *json;
	const char *refusal;
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status st = pgkeel_dcsc_load(&L->dcs, dcs_deadline(L), &c);

	if (st != PGKEEL_DCS_OK) {
		pgkeel_rest_reply(req, 503, "text/html", "DCS is not accessible");
		return;
	}
	set_cluster(L, pgkeel_cluster_ref(c));
	refusal = pgkeel_rest_failover_precheck(c, effective_bool(L, "synchronous_mode"), req->kind,
	                                        req->leader, req->candidate, buf, sizeof(buf),
	                                        &probe_list, &n_probe);
	if (refusal == NULL && n_probe > 0 && req->scheduled_at == NULL) {
		struct pgkeel_peer_target t[MAX_PEERS];
		struct pgkeel_peer_status ps[MAX_PEERS];
		bool good = false;

		if (n_probe > MAX_PEERS)
			n_probe = MAX_PEERS;
		for (i = 0; i < n_probe; i++) {
			t[i].name = probe_list[i]->name;
			t[i].api_url = probe_list[i]->d.api_url;
		}
		memset(ps, 0, sizeof(ps));
		pgkeel_peers_fetch_status(L->peers, t, n_probe,
		                          now_ms() + PGKEEL_PEERS_STATUS_TIMEOUT_MS + 500, ps);
		for (i = 0; i < n_probe; i++) {
			good = good || ps[i].limitation == PGKEEL_PEER_CAN_PROMOTE;
			pgkeel_peer_status_clear(&ps[i]);
		}
		if (!good)
			refusal = pgkeel_rest_failover_no_candidate(req->kind, buf, sizeof(buf));
	}
	free(probe_list);
	if (refusal != NULL) {
		pgkeel_rest_reply(req, 412, "text/html", refusal);
		pgkeel_cluster_unref(c);
		return;
	}
	json = pgkeel_failover_encode(req->leader, req->candidate, req->scheduled_at);
	st = L->backend.plugin->set_failover(L->dcs_handle, json, NULL, dcs_deadline(L), &e);
	free(json);
	if (st != PGKEEL_DCS_OK) {
		pgkeel_rest_reply(req, 503, "text/html", "failed to write failover key into DCS");
	} else if (req->scheduled_at != NULL) {
		pgkeel_rest_reply(req, 202, "text/html",
		                  req->kind == PGKEEL_REST_SWITCHOVER ? "Switchover scheduled"
		                                                      : "Failover scheduled");
	} else {
		struct pending_req *p = pgkeel_xcalloc(1, sizeof(*p));
		const char *old = req->leader != NULL ? req->leader : pgkeel_cluster_leader_name(c);

		p->req = req;
		p->old_leader = old != NULL ? pgkeel_strdup(old) : NULL;
		p->candidate = req->candidate != NULL ? pgkeel_strdup(req->candidate) : NULL;
		p->until_ms = now_ms() + pgkeel_rest_failover_wait_ms(L->cfg->loop_wait);
		p->next = L->pending;
		L->pending = p;
		L->next_poll_ms = now_ms() + REST_POLL_MS;
		L->next_run_ms = now_ms(); /* act on the key at once */
	}
	pgkeel_cluster_unref(c);
}

static void poll_pending(struct loop *L, bool force)
{
	struct pending_req **pp = &L->pending;
	struct pgkeel_cluster *c = NULL;

	if (L->pending == NULL || (!force && now_ms() < L->next_poll_ms))
		return;
	L->next_poll_ms = now_ms() + REST_POLL_MS;
	if (pgkeel_dcsc_load(&L->dcs, dcs_deadline(L), &c) != PGKEEL_DCS_OK)
		c = NULL;
	while (*pp != NULL) {
		struct pending_req *p = *pp;
		char buf[512];
		int status = 0;

		if (c != NULL && pgkeel_rest_failover_poll(c, p->req->kind, p->old_leader,
		                                           p->candidate, &status, buf, sizeof(buf))) {
			pgkeel_rest_reply(p->req, status, "text/html", buf);
		} else if (now_ms() >= p->until_ms) {
			pgkeel_rest_reply(p->req, 503, "text/html",
			                  pgkeel_rest_failover_unknown(p->req->kind, buf, sizeof(buf)));
		} else {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		pending_free(p);
	}
	pgkeel_cluster_unref(c);
}

static void step_restart(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d, void *arg);
static void step_reinitialize(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d,
                              void *arg);

/* POST /restart without a schedule: answered when the restart task ends. */
static void answer_restart(struct loop *L, struct pgkeel_rest_req *req)
{
	struct pgkeel_ha_scheduled_restart h;
	struct cycle c;
	char task[64];
	int64_t timeout_s;

	pgkeel_loop_rest_request_fact(req, &h);
	memset(&c, 0, sizeof(c));
	gather(L, &c, false);
	timeout_s = h.timeout_s >= 0 ? h.timeout_s : c.settings.primary_start_timeout;
	free(L->last_message);
	L->last_message = NULL;
	run_decision(L, &c, step_restart, &h);
	cycle_clear(&c);
	if (L->last_message == NULL || strcmp(L->last_message, "restart initiated") != 0) {
		pgkeel_rest_reply(req, 503, NULL,
		                  L->last_message ? L->last_message : "restart failed");
	} else if (pgkeel_pgm_busy(L->pgm, task, sizeof(task)) == NULL ||
	           strcmp(task, "restart") != 0 || L->restart_req != NULL) {
		pgkeel_rest_reply(req, 503, NULL, "restart failed"); /* not submitted */
	} else {
		L->restart_req = req;
		/* the stop (ttl at most), then the start (its timeout) */
		pgkeel_rest_req_set_deadline(req, now_ms() + (timeout_s + L->cfg->ttl + 10) * 1000);
	}
	L->next_run_ms = now_ms();
}

/* POST /reinitialize on a fresh view of the cluster. */
static void answer_reinitialize(struct loop *L, struct pgkeel_rest_req *req)
{
	struct pgkeel_cluster *fresh = NULL;
	struct cycle c;

	if (pgkeel_dcsc_load(&L->dcs, dcs_deadline(L), &fresh) != PGKEEL_DCS_OK) {
		pgkeel_rest_reply_error(req, 503);
		return;
	}
	set_cluster(L, fresh);
	memset(&c, 0, sizeof(c));
	gather(L, &c, false);
	free(L->last_message);
	L->last_message = NULL;
	run_decision(L, &c, step_reinitialize, &req->force);
	cycle_clear(&c);
	if (L->last_message != NULL && strcmp(L->last_message, "reinitialize started") == 0)
		pgkeel_rest_reply(req, 200, NULL, L->last_message);
	else
		pgkeel_rest_reply(req, 503, NULL,
		                  L->last_message ? L->last_message : "reinitialize failed");
	L->next_run_ms = now_ms();
}

static void reload_config(struct loop *L);

static void serve_rest(struct loop *L)
{
	struct pgkeel_rest_req *req;

	if (L->rest == NULL)
		return;
	if (pgkeel_rest_take_reload(L->rest))
		reload_config(L); /* POST /reload: what SIGHUP does */
	while ((req = pgkeel_rest_next_request(L->rest)) != NULL) {
		switch (req->kind) {
		case PGKEEL_REST_SWITCHOVER:
		case PGKEEL_REST_FAILOVER:
			answer_failover(L, req);
			break;
		case PGKEEL_REST_RESTART:
			answer_restart(L, req);
			break;
		case PGKEEL_REST_REINITIALIZE:
			answer_reinitialize(L, req);
			break;
		default: {
			bool changed = false;
			struct pgkeel_cluster *c =
			    pgkeel_loop_rest_dcs(&L->dcs, dcs_deadline(L), req, &changed);

			if (c != NULL)
				set_cluster(L, c);
			if (changed)
				L->next_run_ms = now_ms();
			break;
		}
		}
	}
}

/* ------------------------------------------------------------ the cycle */

static void collect_tasks(struct loop *L)
{
	struct pgkeel_pgm_result res;

	while (pgkeel_pgm_take_result(L->pgm, &res))
		task_finished(L, &res);
}

/* A stop inside a demotion completed: release the key early (§5.7 on_shutdown). */
static void maybe_on_shutdown(struct loop *L)
{
	struct on_shutdown_arg a = {.demote = true};
	struct cycle c;

	if (!pgkeel_pgm_take_stopped(L->pgm, &a.lsn))
		return;
	if (!pgkeel_dcsc_lock_valid(&L->dcs) || !L->demote_releases)
		return;
	if (a.lsn >= 0) {
		memset(&c, 0, sizeof(c));
		gather(L, &c, false);
		run_decision(L, &c, step_on_shutdown, &a);
		cycle_clear(&c);
	}
	if (pgkeel_dcsc_lock_valid(&L->dcs)) {
		/* nobody had the checkpoint yet: release after the stop all the same */
		struct pgkeel_ha_effect fx;

		memset(&fx, 0, sizeof(fx));
		fx.kind = PGKEEL_HA_FX_DELETE_LEADER;
		fx.lsn = a.lsn;
		L->role = PGKEEL_HA_ROLE_DEMOTED;
		memset(&c, 0, sizeof(c));
		execute(L, &c, &fx);
		touch_member(L);
		log_info("released the leader key after the stop (optime %lld)", (long long)a.lsn);
	}
	L->demote_releases = false;
}

static void refresh_pg(struct loop *L)
{
	int64_t budget = L->cfg->loop_wait > 0 ? (int64_t)L->cfg->loop_wait * 1000 : 2000;

	if (budget > 3000)
		budget = 3000;
	pgkeel_pgm_state_clear(&L->pg);
	pgkeel_pgm_refresh(L->pgm, now_ms() + budget, &L->pg);
}

static void run_cycle(struct loop *L)
{
	struct pgkeel_cluster *c = NULL;
	enum pgkeel_dcs_status st;
	struct cycle cy;

	collect_tasks(L);
	if (L->dcs.locked && !pgkeel_dcsc_lock_valid(&L->dcs)) {
		log_warning("the leader lock expired %lld ms ago without a renewal",
		            (long long)-pgkeel_dcsc_lock_remaining_ms(&L->dcs));
		pgkeel_dcsc_drop_lock(&L->dcs);
	}
	refresh_pg(L);
	st = pgkeel_dcsc_load(&L->dcs, dcs_deadline(L), &c);
	if (st == PGKEEL_DCS_OK) {
		set_cluster(L, c);
		if (!pgkeel_cluster_is_unlocked(L->cluster) &&
		    strcmp(pgkeel_cluster_leader_name(L->cluster), L->cfg->name) != 0)
			pgkeel_dcsc_drop_lock(&L->dcs);
		else if (pgkeel_cluster_is_unlocked(L->cluster))
			pgkeel_dcsc_drop_lock(&L->dcs);
	} else {
		dcs_log_failure(L, "load_cluster", st);
		L->cluster_read_ms = 0;
	}
	memset(&cy, 0, sizeof(cy));
	gather(L, &cy, st != PGKEEL_DCS_OK);
	run_decision(L, &cy, step_decide, NULL);
	cycle_clear(&cy);
	if (st == PGKEEL_DCS_OK)
		maybe_apply_cluster_config(L);
	if (L->role == PGKEEL_HA_ROLE_MASTER || L->role == PGKEEL_HA_ROLE_STANDBY_LEADER)
		apply_parameters(L); /* replicas do it in follow (HANDLE_PARAMETER_CHANGE) */
	save_dynamic_cache(L);
	publish(L, true);
}

/* ------------------------------------------------------------ start-up (§5.1) */

static bool backend_open(struct loop *L)
{
	struct pgkeel_config *c = L->cfg;
	struct pgkeel_dcs_params params = {
	    .struct_size = sizeof(params),
	    .namespace_ = c->namespace_,
	    .scope = c->scope,
	    .name = c->name,
	    .ttl = c->ttl,
	    .loop_wait = c->loop_wait,
	    .retry_timeout = c->retry_timeout,
	    .options_json = c->dcs_options_json ? c->dcs_options_json : "{}",
	    .user_agent = "pgkeel/" PACKAGE_VERSION,
	};
	struct pgkeel_err err = {0};
	char msg[1024];

	if (!pgkeel_dcs_load(pgkeel_dcs_backend_dir(c->backend_dir), c->dcs_type, &L->backend, msg,
	                     sizeof(msg))) {
		log_error("%s", msg);
		return false;
	}
	if (L->backend.plugin->init(pgkeel_host_get(), &params, &L->dcs_handle, &err) !=
	    PGKEEL_DCS_OK) {
		log_error("DCS backend %s: initialisation failed: %s", L->backend.path,
		          err.msg[0] ? err.msg : "no detail");
		return false;
	}
	pgkeel_dcsc_init(&L->dcs, L->backend.plugin, L->dcs_handle, c->ttl);
	log_info("pgkeel %s starting: member %s of cluster %s, DCS %s (%s), namespace %s",
	         PACKAGE_VERSION, c->name, c->scope, c->dcs_type, L->backend.path, c->namespace_);
	return true;
}

/* SIGHUP and POST /reload: the configuration file again, then the DCS config on top. */
static void reload_config(struct loop *L)
{
	struct pgkeel_config_opts opts = {.strict = L->strict, .use_environ = true};
	struct pgkeel_diag d;
	struct pgkeel_config *n;

	pgkeel_diag_init(&d);
	n = pgkeel_config_reload(L->cfg, L->config_path, &opts, &d);
	pgkeel_diag_log(&d);
	pgkeel_diag_clear(&d);
	if (n == NULL) {
		log_error("the new configuration is not valid; keeping the current one");
		return;
	}
	{
		char err[512];

		if (!pgkeel_log_reconfigure(&n->log, err, sizeof(err)))
			log_error("log: %s; keeping the current log settings", err);
	}
	pgkeel_config_unref(L->cfg);
	L->cfg = n;
	free(L->applied_config);
	L->applied_config = NULL; /* re-apply the DCS config on top */
	if (L->cluster != NULL && L->cluster->config != NULL && L->cluster->config->valid)
		maybe_apply_cluster_config(L);
	else
		apply_dynamic(L, n->dynamic, "configuration");
	if (L->rest != NULL) {
		struct pgkeel_rest_opts ro;
		const char *strs[64];

		pgkeel_rest_opts_from_config(L->cfg, &ro, strs, PGKEEL_ARRAY_LEN(strs));
		pgkeel_rest_reconfigure(L->rest, &ro);
	}
	log_info("configuration reloaded");
	L->next_run_ms = now_ms();
}

/* Drain the signalfd: SIGHUP reloads, SIGTERM/SIGINT stop. */
static void handle_signals(struct loop *L)
{
	struct signalfd_siginfo si;

	while (read(L->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("received SIGHUP, reloading the configuration from %s",
			         L->cfg->source);
			reload_config(L);
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			L->stop = true;
		}
	}
}

/*
 * A killed postmaster's children leave within moments (they watch its death
 * pipe), but until the last one has, a new postmaster refuses to start
 * ("pre-existing shared memory block is still in use"), and a leader whose
 * start failed hands its lock over.  So the cycle a postmaster's exit starts
 * first waits, SHMEM_WAIT_MS at most, until no process is attached to the
 * segment the dead postmaster's postmaster.pid names (its line 7: key, id).
 */
static void wait_shmem_released(const struct loop *L)
{
	char *path = pgkeel_asprintf("%s/postmaster.pid", L->cfg->data_dir);
	FILE *f = fopen(path, "r");
	char line[256];
	unsigned long key, id;
	int n = 0;
	bool have = false;
	int64_t deadline = now_ms() + SHMEM_WAIT_MS;

	free(path);
	if (f == NULL)
		return;
	while (!have && fgets(line, sizeof(line), f) != NULL)
		if (++n == 7)
			have = sscanf(line, "%lu %lu", &key, &id) == 2;
	fclose(f);
	while (have) {
		struct shmid_ds ds;
		struct timespec ts = {0, 20 * 1000000L};

		if (shmctl((int)id, IPC_STAT, &ds) == -1 || ds.shm_nattch == 0)
			return;
		if (now_ms() >= deadline) {
			log_warning("%lu processes of the dead postmaster still hold its shared memory",
			            (unsigned long)ds.shm_nattch);
			return;
		}
		nanosleep(&ts, NULL);
	}
}

/* Wait for fd events until deadline; returns early on a wake-up. */
static void wait_until(struct loop *L, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		struct pollfd pfd[3] = {
		    {.fd = L->sigfd, .events = POLLIN},
		    {.fd = pgkeel_host_event_fd(), .events = POLLIN},
		    {.fd = pgkeel_pgm_postmaster_fd(L->pgm), .events = POLLIN},
		};
		int r;

		if (L->pending != NULL && left > REST_POLL_MS)
			left = REST_POLL_MS;
		if (left < 0)
			left = 0;
		r = poll(pfd, 3, (int)left); /* negative fds are ignored */
		if (pfd[2].fd >= 0)
			close(pfd[2].fd);
		if (r > 0 && (pfd[2].revents & POLLIN)) {
			log_info("the postmaster exited: a cycle now");
			wait_shmem_released(L);
			return;
		}
		if (r < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return;
		}
		if (r > 0 && (pfd[0].revents & POLLIN))
			handle_signals(L);
		if (r > 0 && pfd[1].fd >= 0 && (pfd[1].revents & POLLIN)) {
			uint32_t ev = pgkeel_host_take_events();

			log_debug("woken up (events 0x%x)", (unsigned)ev);
			serve_rest(L);
			collect_tasks(L);
			maybe_on_shutdown(L);
			return; /* a wake-up: the next cycle now */
		}
		poll_pending(L, false);
		if (L->stop || now_ms() >= deadline_ms)
			return;
	}
}

/* §5.1 steps 2-4: the first cluster view, the name check, the dynamic config. */
static bool startup(struct loop *L)
{
	struct pgkeel_cluster *c = NULL;
	const struct pgkeel_member *me;
	json_object *cache;

	while (!L->stop) {
		enum pgkeel_dcs_status st = pgkeel_dcsc_load(&L->dcs, dcs_deadline(L), &c);

		if (st == PGKEEL_DCS_OK)
			break;
		dcs_log_failure(L, "load_cluster", st);
		log_info("waiting for the DCS to be accessible");
		wait_until(L, now_ms() + START_RETRY_MS);
	}
	if (L->stop)
		return false;
	set_cluster(L, c);
	me = pgkeel_cluster_get_member(L->cluster, L->cfg->name);
	if (me != NULL && me->d.api_url != NULL) {
		long code = 0;

		if (pgkeel_peers_alive(L->peers, me->d.api_url, now_ms() + 4000, &code)) {
			log_fatal("Can't start; there is already a node named '%s' running",
			          L->cfg->name);
			L->exit_code = PGKEEL_EXIT_FAILURE;
			return false;
		}
	}
	if (L->cluster->config != NULL && L->cluster->config->valid) {
		json_object *bdcs = pgkeel_json_path(L->cfg->local, "bootstrap.dcs");

		if (json_object_is_type(bdcs, json_type_object) && L->cluster->initialize != NULL &&
		    !L->cfg->dynamic_from_dcs && L->cfg->dynamic != NULL &&
		    !json_object_equal(L->cfg->dynamic, L->cluster->config->data))
			log_warning("bootstrap.dcs in %s differs from the dynamic configuration in the "
			            "DCS; the cluster is initialized, so it has no effect (change the "
			            "DCS configuration with patronictl edit-config)",
			            L->cfg->source);
		maybe_apply_cluster_config(L);
	} else if ((cache = load_dynamic_cache(L->cfg)) != NULL) {
		log_info("using the dynamic configuration cached in %s/%s", L->cfg->data_dir,
		         DYNAMIC_CACHE);
		apply_dynamic(L, cache, "cached dynamic configuration");
		json_object_put(cache);
	}
	/* the configuration at start is what PostgreSQL gets when it is started;
	 * an instance adopted running keeps its files until something changes */
	L->params_dirty = false;
	return true;
}

static void initial_role(struct loop *L)
{
	refresh_pg(L);
	if (L->pg.data_dir_empty)
		L->role = PGKEEL_HA_ROLE_UNINITIALIZED;
	else if (L->pg.queried && L->pg.status != NULL)
		L->role = L->pg.status->in_recovery ? PGKEEL_HA_ROLE_REPLICA : PGKEEL_HA_ROLE_MASTER;
	else if (data_file_exists(L, "standby.signal") || data_file_exists(L, "recovery.signal") ||
	         data_file_exists(L, "recovery.conf"))
		L->role = PGKEEL_HA_ROLE_REPLICA;
	else
		L->role = PGKEEL_HA_ROLE_MASTER;
}

static void shutdown_sequence(struct loop *L)
{
	struct cycle c;

	log_info("shutting down");
	pgkeel_pgm_cancel(L->pgm, now_ms() + 5000);
	(void)pgkeel_pgm_wait_idle(L->pgm, now_ms() + 10000);
	collect_tasks(L);
	refresh_pg(L);
	memset(&c, 0, sizeof(c));
	gather(L, &c, false);
	run_decision(L, &c, step_shutdown, NULL);
	cycle_clear(&c);
	refresh_pg(L);
	if (pgkeel_dcsc_lock_valid(&L->dcs) && !L->pg.running && !is_paused(L)) {
		/* §5.10: stopped while holding the key: hand it over now, not after ttl */
		struct pgkeel_ha_effect fx;

		memset(&fx, 0, sizeof(fx));
		fx.kind = PGKEEL_HA_FX_DELETE_LEADER;
		fx.lsn = -1;
		memset(&c, 0, sizeof(c));
		execute(L, &c, &fx);
		touch_member(L);
		log_info("released the leader key after stopping PostgreSQL");
	}
}

/* §5.1 step 5, after the name check: a restarted daemon must not find its own
 * REST API answering for the member key its predecessor left behind. */
static bool rest_start(struct loop *L)
{
	struct pgkeel_rest_opts ro;
	const char *headers[64];
	char err[512];

	pgkeel_rest_opts_from_config(L->cfg, &ro, headers, PGKEEL_ARRAY_LEN(headers));
	L->rest = pgkeel_rest_start(&ro, err, sizeof(err));
	if (L->rest != NULL)
		return true;
	log_fatal("REST API: %s", err);
	L->exit_code = PGKEEL_EXIT_FAILURE;
	L->stop = true;
	return false;
}

int pgkeel_loop_run(const struct pgkeel_loop_opts *opts)
{
	struct loop *L = pgkeel_xcalloc(1, sizeof(*L));
	struct pgkeel_pgm_opts mo;
	struct pgkeel_peers_settings ps;
	char buf[1024];
	int code;

	L->cfg = pgkeel_config_ref(opts->cfg);
	L->config_path = opts->config_path;
	L->strict = opts->strict;
	L->sigfd = opts->sigfd;
	L->notify_fn = opts->notify;
	L->exit_code = PGKEEL_EXIT_OK;
	L->wake_at_ms = -1;
	pgkeel_ha_state_init(&L->hs);
	pgkeel_callbacks_init(&L->cb);
	{
		struct pgkeel_watchdog_settings ws;

		pgkeel_watchdog_settings_from_config(L->cfg, &ws);
		L->wd = pgkeel_watchdog_new(&ws); /* NULL: required but no device driver */
	}
	if (L->wd == NULL || !backend_open(L)) {
		pgkeel_watchdog_free(L->wd);
		pgkeel_config_unref(L->cfg);
		free(L);
		return PGKEEL_EXIT_FAILURE;
	}
	pgkeel_peers_settings_from_config(L->cfg, 1, buf, sizeof(buf), &ps);
	L->peers = pgkeel_peers_new(&ps);
	memset(&mo, 0, sizeof(mo));
	mo.cfg = L->cfg;
	mo.host = pgkeel_host_get();
	L->pgm = pgkeel_pgm_new(&mo);
	{
		struct pgkeel_sampler_opts so = {.cfg = L->cfg};

		L->sampler = pgkeel_sampler_start(&so);
	}

	initial_role(L);
	publish(L, true);
	if (!L->stop && startup(L) && rest_start(L)) {
		notify(L, "READY=1"); /* REST listens, the DCS answered: not waiting for PostgreSQL */
		L->next_run_ms = now_ms();
		while (!L->stop) {
			int64_t wait_to;

			run_cycle(L);
			notify(L, "WATCHDOG=1");
			serve_rest(L);
			poll_pending(L, true);
			if (L->stop)
				break;
			L->next_run_ms += (int64_t)L->cfg->loop_wait * 1000;
			if (L->next_run_ms <= now_ms()) {
				log_warning("Loop time exceeded, rescheduling immediately.");
				L->next_run_ms = now_ms();
			} else {
				struct pgkeel_err e = {0};
				const char *lv = pgkeel_pgm_busy(L->pgm, buf, sizeof(buf)) == NULL &&
				                         !pgkeel_cluster_is_unlocked(L->cluster) &&
				                         !pgkeel_dcsc_lock_valid(&L->dcs)
				                     ? leader_version(L)
				                     : NULL;

				(void)L->backend.plugin->watch(L->dcs_handle, lv, &e);
			}
			publish(L, false);
			wait_to = L->next_run_ms;
			if (L->wake_at_ms >= 0 && L->wake_at_ms < wait_to)
				wait_to = L->wake_at_ms;
			if (pgkeel_dcsc_lock_valid(&L->dcs) &&
			    pgkeel_dcsc_lock_deadline_mono(&L->dcs) - 1000 < wait_to)
				wait_to = pgkeel_dcsc_lock_deadline_mono(&L->dcs) - 1000;
			wait_until(L, wait_to);
			if (now_ms() < L->next_run_ms)
				L->next_run_ms = now_ms();
		}
		notify(L, "STOPPING=1");
		if (L->exit_code == PGKEEL_EXIT_OK)
			shutdown_sequence(L);
	}
	while (L->pending != NULL) {
		struct pending_req *p = L->pending;

		L->pending = p->next;
		pgkeel_rest_reply(p->req, 503, "text/html", "shutting down");
		pending_free(p);
	}
	if (L->restart_req != NULL)
		pgkeel_rest_reply(L->restart_req, 503, NULL, "restart failed");
	L->restart_req = NULL;
	(void)pgkeel_sampler_stop(L->sampler);
	L->sampler = NULL;
	pgkeel_rest_stop(L->rest);
	pgkeel_callbacks_shutdown(&L->cb, now_ms() + 5000);
	pgkeel_pgm_free(L->pgm, now_ms() + 5000);
	pgkeel_pgm_state_clear(&L->pg);
	pgkeel_peers_free(L->peers);
	pgkeel_watchdog_free(L->wd); /* still running: left armed (a failed stop) */
	L->backend.plugin->fini(L->dcs_handle);
	pgkeel_cluster_unref(L->cluster);
	pgkeel_cluster_unref(L->old_cluster);
	pgkeel_ha_state_clear(&L->hs);
	json_put(&L->status_slots);
	free(L->applied_config);
	free(L->last_message);
	pgkeel_state_publish_loop(NULL);
	pgkeel_state_publish_pg(NULL);
	log_info("pgkeel stopping");
	code = L->exit_code;
	pgkeel_config_unref(L->cfg);
	free(L);
	return code;
}
