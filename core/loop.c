/*
 * loop: see loop.h.  Sections: small helpers, the facts of a cycle, the
 * decision driver, publishing, REST requests, the cycle, start-up (§5.1) and
 * the scheduling.  The requests and effects are in loop_act.c.
 */
#include "autoconf.h"

#include "loop_internal.h"

/* ------------------------------------------------------------ small helpers */

static void notify(const struct loop *L, const char *state)
{
	if (L->notify_fn != NULL)
		L->notify_fn(state);
}

void pgkeel_loop_dcs_log_failure(const struct loop *L, const char *what, enum pgkeel_dcs_status st)
{
	log_warning("DCS %s failed (%s): %s", what, pgkeel_dcs_status_name(st),
	            L->dcs.err.msg[0] ? L->dcs.err.msg : "no detail");
}

void pgkeel_loop_set_cluster(struct loop *L, struct pgkeel_cluster *c)
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

/*
 * pg_controldata of a stopped data directory: run once, then again only
 * when global/pg_control changed (size, inode or modification time), so a
 * node waiting with PostgreSQL stopped does not fork a program per cycle.
 * Returns a new reference or NULL (err says why).
 */
static json_object *controldata_cached(struct loop *L, char *err, size_t errlen)
{
	char *path = pgkeel_asprintf("%s/global/pg_control", L->cfg->data_dir);
	struct stat st;
	bool have = stat(path, &st) == 0;

	free(path);
	if (have && L->cd_cache != NULL && st.st_ino == L->cd_stat.st_ino &&
	    st.st_size == L->cd_stat.st_size && st.st_mtim.tv_sec == L->cd_stat.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == L->cd_stat.st_mtim.tv_nsec)
		return json_object_get(L->cd_cache);
	json_object_put(L->cd_cache);
	L->cd_cache = pgkeel_pgm_controldata(L->cfg, now_ms() + 5000, err, errlen);
	if (L->cd_cache == NULL || !have)
		return L->cd_cache == NULL ? NULL : json_object_get(L->cd_cache);
	L->cd_stat = st;
	return json_object_get(L->cd_cache);
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
		p->wal_position =
		    st->in_recovery
		        ? (st->receive_lsn > st->replay_lsn ? st->receive_lsn : st->replay_lsn)
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
		json_object *cd = controldata_cached(L, err, sizeof(err));
		json_object *use = pgkeel_json_path(L->cfg->effective, "postgresql.use_pg_rewind");

		if (cd != NULL && pgkeel_controldata_str(cd, "Database cluster state", &v)) {
			(void)pgkeel_fmt(c->controldata_state, sizeof(c->controldata_state), "%s",
			                 v);
			p->controldata_state = c->controldata_state;
		}
		if (cd != NULL)
			p->can_rewind = pgkeel_rewind_possible(
			    use != NULL && json_object_get_boolean(use), cd, NULL, 0);
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
		pgkeel_loop_perform(L, c, &d.request);
	}
	if (!d.final) {
		log_error("the HA decision did not end within %d steps: no action this cycle",
		          calls);
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
		pgkeel_loop_execute(L, c, &d.plan.effects[i]);
	if (L->n_copy_names > 0) {
		pgkeel_ha_copy_slots_message(&d, (const char *const *)L->copy_names,
		                             L->n_copy_names);
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

static void step_shutdown(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d, void *arg)
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

void pgkeel_loop_publish(struct loop *L, bool with_pg)
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
	pgkeel_loop_set_cluster(L, pgkeel_cluster_ref(c));
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

		if (c != NULL &&
		    pgkeel_rest_failover_poll(c, p->req->kind, p->old_leader, p->candidate, &status,
		                              buf, sizeof(buf))) {
			pgkeel_rest_reply(p->req, status, "text/html", buf);
		} else if (now_ms() >= p->until_ms) {
			pgkeel_rest_reply(
			    p->req, 503, "text/html",
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
	pgkeel_loop_set_cluster(L, fresh);
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
				pgkeel_loop_set_cluster(L, c);
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
		pgkeel_loop_task_finished(L, &res);
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
		pgkeel_loop_execute(L, &c, &fx);
		pgkeel_loop_touch_member(L);
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
		pgkeel_loop_set_cluster(L, c);
		if (!pgkeel_cluster_is_unlocked(L->cluster) &&
		    strcmp(pgkeel_cluster_leader_name(L->cluster), L->cfg->name) != 0)
			pgkeel_dcsc_drop_lock(&L->dcs);
		else if (pgkeel_cluster_is_unlocked(L->cluster))
			pgkeel_dcsc_drop_lock(&L->dcs);
	} else {
		pgkeel_loop_dcs_log_failure(L, "load_cluster", st);
		L->cluster_read_ms = 0;
	}
	memset(&cy, 0, sizeof(cy));
	gather(L, &cy, st != PGKEEL_DCS_OK);
	run_decision(L, &cy, step_decide, NULL);
	cycle_clear(&cy);
	if (st == PGKEEL_DCS_OK)
		maybe_apply_cluster_config(L);
	if (L->role == PGKEEL_HA_ROLE_MASTER || L->role == PGKEEL_HA_ROLE_STANDBY_LEADER)
		pgkeel_loop_apply_parameters(
		    L); /* replicas do it in follow (HANDLE_PARAMETER_CHANGE) */
	save_dynamic_cache(L);
	pgkeel_loop_publish(L, true);
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
			log_warning(
			    "%lu processes of the dead postmaster still hold its shared memory",
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
		pgkeel_loop_dcs_log_failure(L, "load_cluster", st);
		log_info("waiting for the DCS to be accessible");
		wait_until(L, now_ms() + START_RETRY_MS);
	}
	if (L->stop)
		return false;
	pgkeel_loop_set_cluster(L, c);
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
			log_warning(
			    "bootstrap.dcs in %s differs from the dynamic configuration in the "
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
		L->role =
		    L->pg.status->in_recovery ? PGKEEL_HA_ROLE_REPLICA : PGKEEL_HA_ROLE_MASTER;
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
		pgkeel_loop_execute(L, &c, &fx);
		pgkeel_loop_touch_member(L);
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
	pgkeel_loop_publish(L, true);
	if (!L->stop && startup(L) && rest_start(L)) {
		notify(L,
		       "READY=1"); /* REST listens, the DCS answered: not waiting for PostgreSQL */
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
				const char *lv =
				    pgkeel_pgm_busy(L->pgm, buf, sizeof(buf)) == NULL &&
				            !pgkeel_cluster_is_unlocked(L->cluster) &&
				            !pgkeel_dcsc_lock_valid(&L->dcs)
				        ? leader_version(L)
				        : NULL;

				(void)L->backend.plugin->watch(L->dcs_handle, lv, &e);
			}
			pgkeel_loop_publish(L, false);
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
	json_put(&L->cd_cache);
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
