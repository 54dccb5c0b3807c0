/*
 * loop_act: the requests ha.c asks for (peers probed, the lock acquired or
 * renewed, the sync key written, a rewind checked...) and the effects it
 * decides (DCS writes, PostgreSQL actions through pg_manager, callbacks),
 * executed for core/loop.c.  See loop_internal.h.
 */
#include "autoconf.h"

#include "loop_internal.h"

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
		pgkeel_loop_dcs_log_failure(L, "update_leader", r);
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
		pgkeel_loop_set_cluster(L, pgkeel_cluster_ref(n));
		c->reloads[i] = n;
	} else {
		pgkeel_loop_dcs_log_failure(L, "load_cluster", st);
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
		if (strcmp(fs->entries[i].name, L->cfg->name) == 0 ||
		    fs->entries[i].api_url == NULL)
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

/*
 * Patroni's handle_parameter_change: PostgreSQL 14+ pauses WAL replay when
 * the primary raises a parameter a hot standby must match; a replica whose
 * replay is paused (and not starting) resumes it, every replica cycle
 * outside maintenance mode.
 */
static void resume_replay(struct loop *L)
{
	const struct pgkeel_pg_status *st = L->pg.queried ? L->pg.status : NULL;
	struct pgkeel_pg_err e;

	if (st == NULL || !st->in_recovery || !st->replay_paused || L->pg.server_version < 140000 ||
	    L->pg.ctl.state == PGKEEL_PGCTL_STARTING)
		return;
	log_info("Resuming paused WAL replay for PostgreSQL 14+");
	if (pgkeel_pg_exec(pgkeel_pgm_connection(L->pgm), "SELECT pg_catalog.pg_wal_replay_resume()",
	                   0, NULL, now_ms() + 3000, NULL, &e) != PGKEEL_PG_OK)
		log_warning("resuming WAL replay: %s", e.msg);
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

void pgkeel_loop_perform(struct loop *L, struct cycle *c, const struct pgkeel_ha_request *rq)
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
			pgkeel_loop_dcs_log_failure(L, "attempt_to_acquire_leader", st);
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
		pgkeel_loop_task_finished(L, &res);
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
	    {"on_start", PGKEEL_CB_ON_START},
	    {"on_stop", PGKEEL_CB_ON_STOP},
	    {"on_restart", PGKEEL_CB_ON_RESTART},
	    {"on_reload", PGKEEL_CB_ON_RELOAD},
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

void pgkeel_loop_touch_member(struct loop *L)
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
		state = strcmp(busy, "bootstrap") == 0 ? "initializing new cluster"
		                                       : "creating replica";
	f.state = state;
	f.role = pgkeel_ha_role_name(L->role);
	f.leader_checkpoint_pending = pgkeel_dcsc_lock_valid(&L->dcs) && L->pg.checkpoint_pending;
	f.pending_restart = st != NULL && st->pending_restart;
	f.paused = is_paused(L);
	f.scheduled_restart = pgkeel_rest_scheduled_restart_json(L->rest, true);
	if (st != NULL && (busy == NULL || strcmp(busy, "promote") == 0)) {
		f.have_wal = true;
		f.wal_position =
		    st->in_recovery
		        ? (st->receive_lsn > st->replay_lsn ? st->receive_lsn : st->replay_lsn)
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
	value = pgkeel_history_update(L->cluster != NULL ? L->cluster->history : NULL, timeline,
	                              text, (int64_t)sb.st_mtim.tv_sec,
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

/*
 * A new configuration reaches PostgreSQL (Patroni's reload_config): the
 * files are rewritten and the postmaster reloaded; what needs a restart
 * shows as pending_restart in the member data from the next sample.
 */
void pgkeel_loop_apply_parameters(struct loop *L)
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

/*
 * Patroni's set_enforce_hot_standby_feedback (reset_cluster_info_state):
 * the manager learns from the cycle's cluster whether postgresql.conf
 * forces hot_standby_feedback on; with `reload`, a running PostgreSQL whose
 * file says otherwise gets it rewritten and reloaded at once (on_reload
 * fires, as Patroni's reload()).  Nothing from a cluster the DCS did not
 * give this cycle (Patroni keeps the value then).
 */
static void enforce_hot_standby_feedback(struct loop *L, const struct cycle *c, bool reload)
{
	char err[512], task[64];

	if (c->cluster == NULL || c->f.dcs_failed ||
	    !pgkeel_pgm_set_hot_standby_feedback(L->pgm, c->cluster) || !reload || !L->pg.running ||
	    pgkeel_pgm_busy(L->pgm, task, sizeof(task)) != NULL)
		return;
	if (!pgkeel_pgm_reload_now(L->pgm, now_ms() + 5000, err, sizeof(err))) {
		log_warning("hot_standby_feedback: %s", err);
		return;
	}
	fire_callback(L, "on_reload", L->role);
}

/* §7.4 once per cycle; a replica missing logical slots copies them (Patroni's
 * copy_logical_slots task) when the decision allows it. */
static void sync_slots(struct loop *L, struct cycle *c, const struct pgkeel_ha_effect *fx)
{
	char **copy = NULL;
	size_t n_copy = 0;

	enforce_hot_standby_feedback(L, c, true);
	json_put(&L->status_slots);
	L->status_slots =
	    pgkeel_pgm_sync_slots(L->pgm, c->cluster, pg_role_of(L->role),
	                          L->pg.status->in_recovery ? -1 : L->pg.status->wal_lsn,
	                          now_ms() + 5000, &copy, &n_copy);
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

void pgkeel_loop_execute(struct loop *L, struct cycle *c, const struct pgkeel_ha_effect *fx)
{
	struct pgkeel_pgm_target t;
	struct pgkeel_pgm_request r;
	struct pgkeel_err e = {0};
	enum pgkeel_dcs_status st;
	char *json;

	log_debug("HA effect %s", pgkeel_ha_fx_name(fx->kind));
	switch (fx->kind) {
	case PGKEEL_HA_FX_TOUCH_MEMBER:
		pgkeel_loop_touch_member(L);
		break;
	case PGKEEL_HA_FX_INITIALIZE:
		st = L->backend.plugin->initialize(L->dcs_handle, fx->create_new,
		                                   fx->sysid ? fx->sysid : "", dcs_deadline(L), &e);
		if (st != PGKEEL_DCS_OK)
			log_warning("initialize failed (%s): %s", pgkeel_dcs_status_name(st),
			            e.msg);
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
			log_warning("set_config failed (%s): %s", pgkeel_dcs_status_name(st),
			            e.msg);
		free(json);
		break;
	case PGKEEL_HA_FX_TAKE_LEADER:
		st = pgkeel_dcsc_take(&L->dcs, dcs_deadline(L));
		if (st != PGKEEL_DCS_OK)
			pgkeel_loop_dcs_log_failure(L, "take_leader", st);
		break;
	case PGKEEL_HA_FX_DELETE_LEADER: {
		int64_t lsn = fx->lsn, stopped_lsn;

		/* after a stop in this plan (shutdown): its shutdown checkpoint is the optime */
		if (lsn < 0 && pgkeel_pgm_take_stopped(L->pgm, &stopped_lsn))
			lsn = stopped_lsn;
		if (lsn >= 0) {
			json = pgkeel_status_encode(lsn, NULL);
			(void)L->backend.plugin->write_status(L->dcs_handle, json, dcs_deadline(L),
			                                      &e);
			free(json);
		}
		st = pgkeel_dcsc_delete_leader(&L->dcs, leader_version(L), dcs_deadline(L));
		if (st != PGKEEL_DCS_OK && st != PGKEEL_DCS_CONFLICT)
			pgkeel_loop_dcs_log_failure(L, "delete_leader", st);
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
			L->dcs.lock_until_boot =
			    pgkeel_now_boottime_ms() + (int64_t)L->cfg->ttl * 1000;
		} else {
			pgkeel_dcsc_drop_lock(&L->dcs);
		}
		break;
	case PGKEEL_HA_FX_SET_FAILOVER:
		json = pgkeel_failover_encode(fx->fo_leader, fx->fo_candidate, fx->fo_scheduled_at);
		st = L->backend.plugin->set_failover(L->dcs_handle, json, fx->version,
		                                     dcs_deadline(L), &e);
		if (st != PGKEEL_DCS_OK)
			log_info("set_failover: %s (%s)", pgkeel_dcs_status_name(st), e.msg);
		free(json);
		break;
	case PGKEEL_HA_FX_DELETE_SYNC:
		(void)L->backend.plugin->delete_sync_state(L->dcs_handle, fx->version,
		                                           dcs_deadline(L), &e);
		break;
	case PGKEEL_HA_FX_SET_HISTORY:
		set_history(L, fx->timeline);
		break;
	case PGKEEL_HA_FX_FAILSAFE_ACTIVE:
		L->failsafe_active = fx->on;
		break;
	case PGKEEL_HA_FX_HANDLE_PARAMETER_CHANGE:
		pgkeel_loop_apply_parameters(L);
		resume_replay(L);
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
		pgkeel_loop_publish(L, false);
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
		} else if (!run_sync(L, &r, r.stop_deadline_ms + 10000)) {
			char busy[64];

			/* refused (another action runs, e.g. a crash recovery: Patroni's
			 * stop fails on a single-user postgres too): nothing ends it */
			if (pgkeel_pgm_busy(L->pgm, busy, sizeof(busy)) == NULL ||
			    strcmp(busy, r.name) != 0)
				L->demoting = false;
		}
		break;
	case PGKEEL_HA_FX_PROMOTE:
		/* pre_promote runs first (pg_manager); a failure ends the task */
		L->role = PGKEEL_HA_ROLE_PROMOTED;
		submit(L, PGKEEL_PGM_PROMOTE, fx->task ? fx->task : "promote", NULL,
		       L->cfg->loop_wait > 0 ? L->cfg->loop_wait : 10);
		break;
	case PGKEEL_HA_FX_START:
		enforce_hot_standby_feedback(L, c, false);
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
		/* Patroni's ensure_clean_shutdown as a task; the cycles after it
		 * decide what starts (a rewind first, or the start as a replica) */
		submit(L, PGKEEL_PGM_CRASH_RECOVERY,
		       fx->task ? fx->task : "doing crash recovery in a single user mode", NULL, 0);
		break;
	case PGKEEL_HA_FX_REWIND:
		start_rewind(L, fx);
		break;
	case PGKEEL_HA_FX_REINITIALIZE:
		enforce_hot_standby_feedback(L, c, false);
		target_of(L, &fx->upstream, PGKEEL_HA_ROLE_REPLICA, &t);
		submit(L, PGKEEL_PGM_REINITIALIZE, fx->task ? fx->task : "reinitialize", &t, 300);
		break;
	case PGKEEL_HA_FX_BOOTSTRAP:
		if (fx->standby) {
			pgkeel_pgm_target_standby_leader(L->cfg, L->pg.server_version, &t);
			submit(L, PGKEEL_PGM_CREATE_REPLICA, fx->task ? fx->task : "bootstrap", &t,
			       3600);
		} else {
			memset(&t, 0, sizeof(t));
			t.role = PGKEEL_PG_PRIMARY;
			submit(L, PGKEEL_PGM_BOOTSTRAP, fx->task ? fx->task : "bootstrap", &t,
			       3600);
		}
		L->cb.bootstrapping = true;
		break;
	case PGKEEL_HA_FX_POST_BOOTSTRAP:
		submit(L, PGKEEL_PGM_POST_BOOTSTRAP, fx->task ? fx->task : "post_bootstrap", NULL,
		       0);
		break;
	case PGKEEL_HA_FX_CLONE:
		enforce_hot_standby_feedback(L, c, false);
		target_of(L, &fx->upstream, PGKEEL_HA_ROLE_REPLICA, &t);
		if (fx->standby && fx->upstream.kind == PGKEEL_HA_UP_REMOTE)
			t.role = PGKEEL_PG_STANDBY_LEADER;
		if (submit(L, PGKEEL_PGM_CREATE_REPLICA, fx->task ? fx->task : "clone", &t, 3600))
			set_following(L, &t);
		break;
	case PGKEEL_HA_FX_RESTART:
		enforce_hot_standby_feedback(L, c, false);
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
void pgkeel_loop_task_finished(struct loop *L, const struct pgkeel_pgm_result *res)
{
	if (!res->ok && !res->timed_out && !res->partial)
		log_warning("%s failed: %s", res->name, res->err);
	switch (res->kind) {
	case PGKEEL_PGM_PROMOTE:
		/* Patroni's task result is the pre_promote script's verdict, known
		 * before pg_ctl promote runs (a partial result); FALSE makes the
		 * next cycle release the lock and back off.  A failed pg_ctl
		 * promote is retried by the next cycle, the lock kept. */
		if (res->detail == PGKEEL_PGM_PRE_PROMOTE_FAILED)
			L->hs.task_result = PGKEEL_HA_TASK_FALSE;
		else if (res->detail != PGKEEL_PGM_PROMOTE_CANCELLED)
			L->hs.task_result = PGKEEL_HA_TASK_TRUE;
		if (res->partial)
			break;
		if (res->detail == PGKEEL_PGM_PROMOTE_SIGNALLED) {
			/* promoted (out of recovery in time or not: Patroni's role is
			 * "promoted" and on_role_change fires once pg_ctl promote succeeded) */
			L->role = res->ok ? PGKEEL_HA_ROLE_MASTER : PGKEEL_HA_ROLE_PROMOTED;
			L->following[0] = '\0'; /* a primary follows nobody */
			fire_callback(L, "on_role_change", L->role);
		} else if (L->role == PGKEEL_HA_ROLE_PROMOTED) {
			/* nothing was promoted: Patroni's role stays replica, so the
			 * next cycle tries again (the script included) */
			L->role = PGKEEL_HA_ROLE_REPLICA;
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
