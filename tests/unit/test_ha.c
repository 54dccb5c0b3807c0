/*
 * core/ha*.c: Patroni's HA cycle as a pure decision, row by row (spec
 * patroni-dcs-and-ha.md §5, §6).  Each row of the table below is a named
 * scenario: a world built from sensible defaults (this node pg-1 is a
 * streaming replica of the leader pg-2, pg-3 is another replica) plus the
 * scenario's overrides, the answers the "loop" gives to requests, and the
 * expected requests, effects and message.  The driver runs the protocol of
 * ha.h exactly as the loop does: it answers each request from the world,
 * checks that no request is asked twice, and compares the final plan.
 *
 * Rendering: requests and effects are compared as space-separated tokens,
 * e.g. "probe(pg-2,pg-3) acquire reload" and "set_failover({}) promote
 * touch_member"; the token grammar is in render_effect()/render_request().
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "ha.h"
#include "json.h"
#include "util.h"

#include "ha_test.h"

struct mspec member(const char *name, const char *role)
{
	struct mspec m = {.name = name, .role = role, .state = "running", .timeline = 1};

	return m;
}

void world_default(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->s.name = ME;
	w->s.ttl = 30;
	w->s.loop_wait = 10;
	w->s.retry_timeout = 10;
	w->s.maximum_lag_on_failover = 1048576;
	w->s.maximum_lag_on_syncnode = -1;
	w->s.synchronous_node_count = 1;
	w->s.primary_start_timeout = 300;
	w->s.has_bootstrap_section = true;
	pgkeel_ha_state_init(&w->st);

	w->pg.running = true;
	w->pg.state = PGKEEL_PGCTL_RUNNING;
	w->pg.state_since_ms = NOW_MS - 10000;
	w->pg.role = PGKEEL_HA_ROLE_REPLICA;
	w->pg.cb_called = true;
	w->pg.timeline = 1;
	w->pg.wal_position = WAL;
	w->pg.sysid = SYSID;
	w->pg.server_version = 150004;
	w->pg.postmaster_start_time = "2026-01-01 00:00:00+00:00";
	w->pg.synchronous_commit = "on";

	w->c.leader = "pg-2";
	w->c.m[0] = member("pg-1", "replica");
	w->c.m[1] = member("pg-2", "master");
	w->c.m[2] = member("pg-3", "replica");
	w->c.n = 3;
	w->c.initialize = SYSID;
	w->c.config = "{\"ttl\":30,\"loop_wait\":10}";
	w->c.last_lsn = WAL;

	w->wd_healthy = true;
	w->now_ms = NOW_MS;
	w->now_wall_ms = NOW_WALL;
	w->peers[0] = (struct peer_spec){.name = "pg-2", .primary = true, .timeline = 1};
	w->peers[1] = (struct peer_spec){.name = "pg-3", .wal = WAL, .timeline = 1};
	w->n_peers = 2;
	w->update = w->acquire = w->init_race = w->fs_check = w->wd_activate = PGKEEL_HA_OK;
	for (size_t i = 0; i < PGKEEL_HA_MAX_SYNC_WRITES; i++)
		w->sync_out[i] = PGKEEL_HA_OK;
	for (size_t i = 0; i < PGKEEL_HA_MAX_REWIND_CHECKS; i++)
		w->rw[i] = PGKEEL_HA_CHECK_NOT_NEED;
}

struct mspec *find_m(struct cspec *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->m[i].name, name) == 0)
			return &c->m[i];
	fail_msg("no member %s", name);
	return NULL;
}

struct peer_spec *find_peer(struct world *w, const char *name)
{
	for (size_t i = 0; i < w->n_peers; i++)
		if (strcmp(w->peers[i].name, name) == 0)
			return &w->peers[i];
	fail_msg("no peer %s", name);
	return NULL;
}

/* ---- common variants ---- */

/* I hold the lock and run as the primary; pg-2 is a replica now. */
void as_leader(struct world *w)
{
	w->c.leader = ME;
	find_m(&w->c, "pg-1")->role = "master";
	find_m(&w->c, "pg-2")->role = "replica";
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->is_leader = true;
	w->wd_running = true;
	*find_peer(w, "pg-2") = (struct peer_spec){.name = "pg-2", .wal = WAL, .timeline = 1};
}

/* The leader key expired; pg-2 went away (unreachable). */
void no_leader(struct world *w)
{
	w->c.leader = NULL;
	find_peer(w, "pg-2")->unreachable = true;
}

void ws_add(struct pgkeel_pg_walsender *ws, size_t *n, const char *name, const char *sync_state,
            int64_t lsn)
{
	struct pgkeel_pg_walsender *r = &ws[(*n)++];

	memset(r, 0, sizeof(*r));
	r->pid = 100 + (int)*n;
	r->application_name = (char *)name;
	r->state = (char *)"streaming";
	r->sync_state = (char *)sync_state;
	r->write_lsn = r->flush_lsn = r->replay_lsn = lsn;
	r->sent_lsn = lsn;
}

/* ---- building snapshots ---- */

static void add(struct pgkeel_cluster_builder *b, const char *key, const char *value,
                const char *version)
{
	struct pgkeel_dcs_entry e = {
	    .key = key,
	    .value = value,
	    .value_len = strlen(value),
	    .version = version,
	};

	assert_int_equal(pgkeel_cluster_builder_add(b, &e), 0);
}

static struct pgkeel_cluster *build(const struct cspec *cs)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	char key[128], val[1024], status[64];

	if (cs->leader != NULL)
		add(b, "leader", cs->leader, "L1");
	for (size_t i = 0; i < cs->n; i++) {
		const struct mspec *m = &cs->m[i];
		char conn[96] = "", api[96] = "", tags[256] = "", tl[32] = "";

		if (!m->no_conn)
			snprintf(conn, sizeof(conn),
			         "\"conn_url\":\"postgres://127.0.0.%zu:5432/postgres\",", i + 1);
		if (!m->no_api)
			snprintf(api, sizeof(api),
			         "\"api_url\":\"http://127.0.0.%zu:8008/patroni\",", i + 1);
		if (m->tags != NULL)
			snprintf(tags, sizeof(tags), ",\"tags\":%s", m->tags);
		if (m->timeline > 0)
			snprintf(tl, sizeof(tl), ",\"timeline\":%lld", (long long)m->timeline);
		snprintf(key, sizeof(key), "members/%s", m->name);
		snprintf(val, sizeof(val),
		         "{%s%s\"state\":\"%s\",\"role\":\"%s\",\"version\":\"3.0.2\"%s%s}", conn,
		         api, m->state, m->role, tags, tl);
		add(b, key, val, "M1");
	}
	if (cs->initialize != NULL)
		add(b, "initialize", cs->initialize, "I1");
	if (cs->config != NULL)
		add(b, "config", cs->config, "C1");
	if (cs->sync != NULL)
		add(b, "sync", cs->sync, "S1");
	if (cs->failover != NULL)
		add(b, "failover", cs->failover, "F1");
	if (cs->history != NULL)
		add(b, "history", cs->history, "H1");
	if (cs->failsafe != NULL)
		add(b, "failsafe", cs->failsafe, "FS1");
	if (cs->last_lsn > 0) {
		snprintf(status, sizeof(status), "{\"optime\":%lld}", (long long)cs->last_lsn);
		add(b, "status", status, "ST1");
	}
	return pgkeel_cluster_builder_finish(b);
}

/* ------------------------------------------------------------------------ */
/* rendering */

struct sbuf {
	char s[4096];
	size_t n;
};

static void put(struct sbuf *b, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
static void put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->n > 0 && b->n < sizeof(b->s) - 1 && fmt[0] != ')' && fmt[0] != ',')
		b->s[b->n++] = ' ';
	va_start(ap, fmt);
	b->n += (size_t)vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	assert_true(b->n < sizeof(b->s));
}

static const char *up_str(const struct pgkeel_ha_upstream *u, char *buf, size_t len)
{
	switch (u->kind) {
	case PGKEEL_HA_UP_NONE:
		return "-";
	case PGKEEL_HA_UP_REMOTE:
		return "remote";
	case PGKEEL_HA_UP_FAILSAFE:
		snprintf(buf, len, "fs:%s", u->name);
		return buf;
	case PGKEEL_HA_UP_MEMBER:
		snprintf(buf, len, "%s%s", u->name, u->conn_url == NULL ? "!" : "");
		return buf;
	}
	return "?";
}

static void render_effect(struct sbuf *b, const struct pgkeel_ha_effect *e)
{
	const char *n = pgkeel_ha_fx_name(e->kind);
	char ub[64];

	switch (e->kind) {
	case PGKEEL_HA_FX_INITIALIZE:
		put(b, "initialize(%s,%s)", e->create_new ? "new" : "set",
		    e->sysid ? e->sysid : "-");
		break;
	case PGKEEL_HA_FX_DELETE_LEADER:
	case PGKEEL_HA_FX_WRITE_LEADER_OPTIME:
		if (e->lsn >= 0)
			put(b, "%s(%lld)", n, (long long)e->lsn);
		else
			put(b, "%s", n);
		break;
	case PGKEEL_HA_FX_SET_LEADER_VALID:
	case PGKEEL_HA_FX_FAILSAFE_ACTIVE:
		put(b, "%s(%s)", n, e->on ? "on" : "off");
		break;
	case PGKEEL_HA_FX_SET_FAILOVER:
		if (e->fo_leader == NULL && e->fo_candidate == NULL && e->fo_scheduled_at == NULL)
			put(b, "set_failover({}%s)", e->version ? ",cas" : "");
		else
			put(b, "set_failover(%s,%s,%s%s)", e->fo_leader ? e->fo_leader : "-",
			    e->fo_candidate ? e->fo_candidate : "-",
			    e->fo_scheduled_at ? e->fo_scheduled_at : "-",
			    e->version ? ",cas" : "");
		break;
	case PGKEEL_HA_FX_SET_HISTORY:
		put(b, "set_history(%lld)", (long long)e->timeline);
		break;
	case PGKEEL_HA_FX_SET_ROLE:
		put(b, "set_role(%s)", pgkeel_ha_role_name(e->role));
		break;
	case PGKEEL_HA_FX_SET_STATE:
		put(b, "set_state(%s)", e->state);
		break;
	case PGKEEL_HA_FX_CALLBACK:
		put(b, "callback(%s,%s)", e->action, pgkeel_ha_role_callback_name(e->role));
		break;
	case PGKEEL_HA_FX_STOP:
		if (e->timeout_s >= 0)
			put(b, "stop(%s,%lld%s)", pgkeel_pgctl_stop_mode_name(e->stop_mode),
			    (long long)e->timeout_s, e->while_not_sync_standby ? ",nosync" : "");
		else
			put(b, "stop(%s%s)", pgkeel_pgctl_stop_mode_name(e->stop_mode),
			    e->while_not_sync_standby ? ",nosync" : "");
		break;
	case PGKEEL_HA_FX_DEMOTE:
		put(b, "demote(%s%s)", pgkeel_demote_mode_name(e->demote_mode),
		    e->task ? ",async" : "");
		break;
	case PGKEEL_HA_FX_START:
		if (strcmp(e->task, "starting primary after failure") == 0)
			put(b, "start_primary(%lld)", (long long)e->timeout_s);
		else if (e->timeout_s >= 0)
			put(b, "start(%s,%s,%lld)", pgkeel_ha_role_name(e->role),
			    up_str(&e->upstream, ub, sizeof(ub)), (long long)e->timeout_s);
		else
			put(b, "start(%s,%s)", pgkeel_ha_role_name(e->role),
			    up_str(&e->upstream, ub, sizeof(ub)));
		assert_string_equal(e->task, strcmp(e->task, "starting primary after failure") == 0
		                                 ? e->task
		                                 : "restarting after failure");
		break;
	case PGKEEL_HA_FX_FOLLOW:
		put(b, "follow(%s,%s)", up_str(&e->upstream, ub, sizeof(ub)),
		    pgkeel_ha_role_name(e->role));
		break;
	case PGKEEL_HA_FX_REWIND:
	case PGKEEL_HA_FX_REINITIALIZE:
	case PGKEEL_HA_FX_CLONE:
		put(b, "%s(%s%s)", n, up_str(&e->upstream, ub, sizeof(ub)),
		    e->standby ? ",standby" : "");
		break;
	case PGKEEL_HA_FX_BOOTSTRAP:
		put(b, "%s%s", n, e->standby ? "(standby)" : "");
		break;
	case PGKEEL_HA_FX_RESTART:
		put(b, "restart(%lld%s)", (long long)e->timeout_s,
		    e->while_not_sync_standby ? ",nosync" : "");
		break;
	case PGKEEL_HA_FX_CANCEL_TASK:
		put(b, "cancel_task(%s)", e->task);
		break;
	case PGKEEL_HA_FX_SET_SSN:
		if (e->ssn == NULL)
			put(b, "set_ssn(user)");
		else
			put(b, "set_ssn('%s')", e->ssn);
		break;
	case PGKEEL_HA_FX_SYNC_SLOTS:
		put(b, "sync_slots%s", e->dcs_failed ? "(dcs)" : e->copy_allowed ? "" : "(nocopy)");
		break;
	case PGKEEL_HA_FX_FATAL:
		put(b, "fatal(%d)", e->exit_code);
		break;
	default:
		put(b, "%s", n);
		break;
	}
}

static void render_request(struct sbuf *b, const struct pgkeel_ha_request *r)
{
	switch (r->kind) {
	case PGKEEL_HA_REQ_PROBE:
		put(b, "probe(");
		for (size_t i = 0; i < r->n_targets; i++) {
			if (i > 0)
				put(b, ",");
			b->n += (size_t)snprintf(b->s + b->n, sizeof(b->s) - b->n, "%s",
			                         r->targets[i].name);
		}
		put(b, ")");
		break;
	case PGKEEL_HA_REQ_UPDATE_LOCK:
		put(b, "update%s%s", r->with_status ? "(status)" : "",
		    r->with_failsafe ? "(fs)" : "");
		break;
	case PGKEEL_HA_REQ_ACQUIRE_LOCK:
		put(b, "acquire");
		break;
	case PGKEEL_HA_REQ_INITIALIZE_RACE:
		put(b, "init_race");
		break;
	case PGKEEL_HA_REQ_WRITE_SYNC:
		put(b, "write_sync(%s:", r->sync_leader);
		for (size_t i = 0; i < r->n_sync_standbys; i++)
			b->n += (size_t)snprintf(b->s + b->n, sizeof(b->s) - b->n, "%s%s",
			                         i ? "," : "", r->sync_standbys[i]);
		b->n += (size_t)snprintf(b->s + b->n, sizeof(b->s) - b->n, "%s)",
		                         r->sync_version ? "" : ",nocas");
		break;
	case PGKEEL_HA_REQ_RELOAD_CLUSTER:
		if (r->delay_ms > 0)
			put(b, "reload(%lld)", (long long)r->delay_ms);
		else
			put(b, "reload");
		break;
	case PGKEEL_HA_REQ_REWIND_CHECK: {
		char ub[64];

		put(b, "rewind_check(%s)", up_str(&r->upstream, ub, sizeof(ub)));
		break;
	}
	case PGKEEL_HA_REQ_FAILSAFE_CHECK:
		put(b, "failsafe");
		break;
	case PGKEEL_HA_REQ_WATCHDOG_ACTIVATE:
		put(b, "watchdog");
		break;
	case PGKEEL_HA_REQ_SYNC_RESAMPLE:
		put(b, "resample('%s')", r->ssn);
		break;
	case PGKEEL_HA_REQ_NONE:
		fail_msg("request NONE");
	}
}

/* ------------------------------------------------------------------------ */
/* the driver: the loop's side of the protocol */

struct run {
	struct world w;
	struct pgkeel_cluster *cluster, *old, *reloaded[PGKEEL_HA_MAX_RELOADS];
	struct pgkeel_ha_peer peers[32];
	struct pgkeel_ha_facts f;
	struct pgkeel_ha_decision d;
	struct sbuf requests, effects;
	char seen[PGKEEL_HA_MAX_CALLS][4096];
	size_t n_seen;
	size_t n_resample;
	size_t n_probe_rounds;
	char rs_ssn[256];
};

static void answer(struct run *r, const struct pgkeel_ha_request *q)
{
	struct pgkeel_ha_answers *a = &r->f.r;
	struct world *w = &r->w;

	switch (q->kind) {
	case PGKEEL_HA_REQ_PROBE:
		for (size_t i = 0; i < q->n_targets; i++) {
			struct pgkeel_ha_peer *p = &r->peers[a->n_peers];
			const struct peer_spec *ps = NULL;

			assert_true(a->n_peers < PGKEEL_ARRAY_LEN(r->peers));
			for (size_t k = 0; k < w->n_peers; k++)
				if (strcmp(w->peers[k].name, q->targets[i].name) == 0)
					ps = &w->peers[k];
			assert_non_null(q->targets[i].api_url);
			memset(p, 0, sizeof(*p));
			p->name = ps != NULL ? ps->name : "?";
			if (ps != NULL && !ps->unreachable) {
				p->reachable = true;
				p->in_recovery = !ps->primary;
				p->wal_position = ps->primary ? 0 : ps->wal;
				p->timeline = ps->timeline;
				p->nofailover = ps->nofailover;
				p->watchdog_failed = ps->watchdog_failed;
			} else if (ps == NULL) {
				p->name = q->targets[i].name;
			}
			a->n_peers++;
		}
		a->peers = r->peers;
		break;
	case PGKEEL_HA_REQ_UPDATE_LOCK:
		a->update_lock = w->update;
		break;
	case PGKEEL_HA_REQ_ACQUIRE_LOCK:
		a->acquire_lock = w->acquire;
		break;
	case PGKEEL_HA_REQ_INITIALIZE_RACE:
		a->initialize_race = w->init_race;
		break;
	case PGKEEL_HA_REQ_WRITE_SYNC:
		assert_true(a->n_sync_writes < PGKEEL_HA_MAX_SYNC_WRITES);
		a->sync_writes[a->n_sync_writes].outcome = w->sync_out[a->n_sync_writes];
		a->sync_writes[a->n_sync_writes].version = "S2";
		a->n_sync_writes++;
		break;
	case PGKEEL_HA_REQ_RELOAD_CLUSTER:
		assert_true(a->n_reloads < PGKEEL_HA_MAX_RELOADS);
		if (!w->reload_fails) {
			struct cspec c = w->reload;

			/* by default the reload shows the lock this cycle took */
			if (!w->reload_custom && a->acquire_lock == PGKEEL_HA_OK)
				c.leader = ME;
			r->reloaded[a->n_reloads] = build(&c);
		}
		a->reloads[a->n_reloads] = r->reloaded[a->n_reloads];
		a->n_reloads++;
		break;
	case PGKEEL_HA_REQ_REWIND_CHECK:
		assert_true(a->n_rewind_checks < PGKEEL_HA_MAX_REWIND_CHECKS);
		a->rewind_checks[a->n_rewind_checks] = w->rw[a->n_rewind_checks];
		a->n_rewind_checks++;
		break;
	case PGKEEL_HA_REQ_FAILSAFE_CHECK:
		a->failsafe_check = w->fs_check;
		break;
	case PGKEEL_HA_REQ_WATCHDOG_ACTIVATE:
		a->watchdog_activate = w->wd_activate;
		break;
	case PGKEEL_HA_REQ_SYNC_RESAMPLE:
		a->resample.done = true;
		/* what PostgreSQL reads back: ours, the request's text dies with it */
		snprintf(r->rs_ssn, sizeof(r->rs_ssn), "%s",
		         w->rs_ssn != NULL ? w->rs_ssn : q->ssn);
		a->resample.ssn = r->rs_ssn;
		a->resample.mark = w->rs_mark;
		a->resample.walsenders = w->rs_ws;
		a->resample.n_walsenders = w->n_rs_ws;
		r->n_resample++;
		break;
	case PGKEEL_HA_REQ_NONE:
		fail_msg("request NONE");
	}
}

static void facts(struct run *r)
{
	struct world *w = &r->w;
	struct pgkeel_ha_facts *f = &r->f;

	memset(f, 0, sizeof(*f));
	f->cfg = &w->s;
	f->state = &w->st;
	f->pg = &w->pg;
	w->pg.walsenders = w->ws;
	w->pg.n_walsenders = w->n_ws;
	if (!w->reload_custom)
		w->reload = w->c;
	if (!w->old_custom)
		w->old = w->c;
	r->cluster = build(&w->c);
	r->old = w->no_old ? NULL : build(&w->old);
	f->cluster = r->cluster;
	f->dcs_failed = w->dcs_failed;
	f->old_cluster = r->old;
	f->now_ms = w->now_ms;
	f->now_wall_ms = w->now_wall_ms;
	f->is_leader = w->is_leader;
	f->watchdog_running = w->wd_running;
	f->watchdog_healthy = w->wd_healthy;
	f->task = w->task;
	f->failsafe_leader = w->have_fsl ? &w->fsl : NULL;
	f->failsafe_active = w->failsafe_active;
	f->scheduled_restart = w->have_sr ? &w->sr : NULL;
	f->random = w->random;
}

typedef void (*entry_fn)(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);

static void drive(struct run *r, entry_fn entry)
{
	facts(r);
	pgkeel_ha_decision_init(&r->d);
	for (int i = 0;; i++) {
		struct sbuf one = {.n = 0};

		assert_true(i < PGKEEL_HA_MAX_CALLS);
		entry(&r->f, &r->d);
		if (r->d.final)
			break;
		render_request(&one, &r->d.request);
		/* never the same question twice (Patroni may reload twice in a cycle) */
		for (size_t k = 0; k < r->n_seen; k++)
			if (strcmp(r->seen[k], one.s) == 0 &&
			    r->d.request.kind != PGKEEL_HA_REQ_RELOAD_CLUSTER)
				fail_msg("request asked twice: %s", one.s);
		snprintf(r->seen[r->n_seen++], sizeof(r->seen[0]), "%s", one.s);
		put(&r->requests, "%s", one.s);
		if (r->d.request.kind == PGKEEL_HA_REQ_PROBE)
			r->n_probe_rounds++;
		answer(r, &r->d.request);
	}
	/* the structural bounds ha.h documents */
	assert_true(r->n_probe_rounds <= 2);
	assert_true(r->f.r.n_reloads <= PGKEEL_HA_MAX_RELOADS);
	for (size_t i = 0; i < r->d.plan.n_effects; i++)
		render_effect(&r->effects, &r->d.plan.effects[i]);
}

static void run_free(struct run *r)
{
	pgkeel_ha_decision_clear(&r->d);
	pgkeel_cluster_unref(r->cluster);
	pgkeel_cluster_unref(r->old);
	for (size_t i = 0; i < PGKEEL_HA_MAX_RELOADS; i++)
		pgkeel_cluster_unref(r->reloaded[i]);
	pgkeel_ha_state_clear(&r->w.st);
}

static void decide_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_decide(f, d);
}

void shutdown_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_shutdown(f, d);
}

/* ------------------------------------------------------------------------ */
/* the table */

static void dump(const struct row *row, struct run *r)
{
	print_message("row %s\n  requests: %s\n  effects:  %s\n  message:  %s\n", row->name,
	              r->requests.s, r->effects.s, r->d.plan.message);
	for (size_t i = 0; i < r->d.plan.n_notes; i++)
		print_message("  note: %s\n", r->d.plan.notes[i].text);
}

static void run_row(const struct row *row)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	world_default(&r->w);
	if (row->setup != NULL)
		row->setup(&r->w);
	drive(r, row->entry != NULL ? row->entry : decide_entry);
	if (strcmp(r->requests.s, row->requests) != 0 || strcmp(r->effects.s, row->effects) != 0 ||
	    strcmp(r->d.plan.message, row->message) != 0) {
		dump(row, r);
		assert_string_equal(r->requests.s, row->requests);
		assert_string_equal(r->effects.s, row->effects);
		assert_string_equal(r->d.plan.message, row->message);
	}
	if (row->check != NULL)
		row->check(r);
	run_free(r);
	free(r);
}

const struct pgkeel_ha_plan *run_plan(const struct run *r)
{
	return &r->d.plan;
}

void on_shutdown_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_on_shutdown(f, false, 67108904, 67108864, d);
}

void restart_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_restart_request(f, f->scheduled_restart, d);
}

void reinit_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_reinitialize_request(f, false, d);
}

void reinit_force_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_reinitialize_request(f, true, d);
}

void on_demote_entry(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	pgkeel_ha_on_shutdown(f, true, 67108904, 67108864, d);
}

/* ------------------------------------------------------------------------ */
/* the helpers */

static void test_sysid_valid(void **state)
{
	(void)state;
	assert_true(pgkeel_ha_sysid_valid("7000000000000000001"));
	assert_true(pgkeel_ha_sysid_valid("4294967296"));
	assert_false(pgkeel_ha_sysid_valid("429496729"));
	assert_false(pgkeel_ha_sysid_valid(""));
	assert_false(pgkeel_ha_sysid_valid(NULL));
	assert_false(pgkeel_ha_sysid_valid("70000000000000000x1"));
}

static void test_parse_time(void **state)
{
	int64_t t;

	(void)state;
	assert_true(pgkeel_ha_parse_time("2026-01-01T00:00:00+00:00", &t));
	assert_int_equal(t, NOW_WALL);
	assert_true(pgkeel_ha_parse_time("2026-01-01T00:00:00Z", &t));
	assert_int_equal(t, NOW_WALL);
	assert_true(pgkeel_ha_parse_time("2026-01-01 01:30:00.250+01:30", &t));
	assert_int_equal(t, NOW_WALL + 250);
	assert_true(pgkeel_ha_parse_time("2025-12-31T19:00:00-0500", &t));
	assert_int_equal(t, NOW_WALL);
	assert_true(pgkeel_ha_parse_time("2026-01-01T00:00:00.123456+00", &t));
	assert_int_equal(t, NOW_WALL + 123);
	assert_true(pgkeel_ha_parse_time("2000-02-29T12:00:00Z", &t));
	assert_int_equal(t, 951825600000LL);
	assert_false(pgkeel_ha_parse_time("2026-01-01T00:00:00", &t)); /* no zone */
	assert_false(pgkeel_ha_parse_time("2026-01-01", &t));
	assert_false(pgkeel_ha_parse_time("2026-13-01T00:00:00Z", &t));
	assert_false(pgkeel_ha_parse_time("2026-01-01T24:00:00Z", &t));
	/* dateutil's forms (the REST API's parser, util.h): */
	assert_true(pgkeel_ha_parse_time("2026-01-01t00:00 UTC", &t));
	assert_int_equal(t, NOW_WALL);
	assert_true(pgkeel_ha_parse_time("1969-12-31T23:59:59.9995Z", &t));
	assert_int_equal(t, -1); /* floor */
	assert_false(pgkeel_ha_parse_time("2026-02-29T00:00:00Z", &t)); /* not a leap year */
	assert_false(pgkeel_ha_parse_time("2026-01-01T00:00:60Z", &t));
	assert_false(pgkeel_ha_parse_time("2026-01-01T00:00:00Zjunk", &t));
	assert_false(pgkeel_ha_parse_time("tomorrow", &t));
	assert_false(pgkeel_ha_parse_time("", &t));
	assert_false(pgkeel_ha_parse_time(NULL, &t));
}

static void test_pg_version(void **state)
{
	(void)state;
	assert_int_equal(pgkeel_ha_pg_version_to_int("9.5.3"), 90503);
	assert_int_equal(pgkeel_ha_pg_version_to_int("9.3.13"), 90313);
	assert_int_equal(pgkeel_ha_pg_version_to_int("10.1"), 100001);
	assert_int_equal(pgkeel_ha_pg_version_to_int("15.4"), 150004);
	assert_int_equal(pgkeel_ha_pg_version_to_int("15.4.1"), 150401);
	assert_int_equal(pgkeel_ha_pg_version_to_int("10"), -1);
	assert_int_equal(pgkeel_ha_pg_version_to_int("9.6"), -1);
	assert_int_equal(pgkeel_ha_pg_version_to_int("1.2.3.4"), -1);
	assert_int_equal(pgkeel_ha_pg_version_to_int("15.x"), -1);
	assert_int_equal(pgkeel_ha_pg_version_to_int(""), -1);
	assert_int_equal(pgkeel_ha_pg_version_to_int(NULL), -1);
}

static void check_ssn(const char *const *names, size_t n, int version, const char *want)
{
	char *got = pgkeel_ha_ssn_format(names, n, version);

	if (want == NULL)
		assert_null(got);
	else
		assert_string_equal(got, want);
	free(got);
}

static void test_ssn_format(void **state)
{
	const char *one[] = {"pg_2"}, *dash[] = {"pg-2"}, *two[] = {"pg-3", "pg-2"};
	const char *kw[] = {"first", "Any", "b"}, *q[] = {"a\"b"}, *star[] = {"pg_2", "*"};
	const char *mixed[] = {"Zed", "abc"};

	(void)state;
	check_ssn(one, 0, 150000, NULL);
	check_ssn(one, 1, 150000, "pg_2");
	check_ssn(dash, 1, 150000, "\"pg-2\"");
	check_ssn(two, 2, 150000, "2 (\"pg-2\",\"pg-3\")");
	check_ssn(two, 2, 0, "2 (\"pg-2\",\"pg-3\")");
	check_ssn(two, 2, 90524, "\"pg-2\"");
	check_ssn(kw, 3, 150000, "3 (\"Any\",b,\"first\")");
	check_ssn(q, 1, 150000, "\"a\"\"b\"");
	check_ssn(star, 2, 150000, "*");
	check_ssn(mixed, 2, 150000, "2 (Zed,abc)");
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(pgkeel_ha_role_name(PGKEEL_HA_ROLE_MASTER), "master");
	assert_string_equal(pgkeel_ha_role_name(PGKEEL_HA_ROLE_STANDBY_LEADER), "standby_leader");
	assert_string_equal(pgkeel_ha_role_name(PGKEEL_HA_ROLE_UNINITIALIZED), "uninitialized");
	assert_string_equal(pgkeel_ha_role_callback_name(PGKEEL_HA_ROLE_PROMOTED), "master");
	assert_string_equal(pgkeel_ha_role_callback_name(PGKEEL_HA_ROLE_DEMOTED), "demoted");
	for (int k = PGKEEL_HA_FX_TOUCH_MEMBER; k <= PGKEEL_HA_FX_FATAL; k++)
		assert_string_not_equal(pgkeel_ha_fx_name((enum pgkeel_ha_fx)k), "unknown");
	assert_string_equal(pgkeel_ha_fx_name((enum pgkeel_ha_fx)999), "unknown");
	for (int k = PGKEEL_HA_REQ_NONE; k <= PGKEEL_HA_REQ_SYNC_RESAMPLE; k++)
		assert_string_not_equal(pgkeel_ha_req_name((enum pgkeel_ha_req)k), "unknown");
}

static void test_state_copy(void **state)
{
	struct pgkeel_ha_state a, b;

	(void)state;
	pgkeel_ha_state_init(&a);
	pgkeel_ha_state_init(&b);
	assert_int_equal(a.start_timeout_s, -1);
	a.rewind = PGKEEL_HA_REWIND_NEED;
	a.sync_ssn = strdup("x");
	a.sync_ready = calloc(2, sizeof(char *));
	a.sync_ready[0] = strdup("pg-2");
	a.sync_ready[1] = strdup("pg-3");
	a.n_sync_ready = 2;
	pgkeel_ha_state_copy(&b, &a);
	pgkeel_ha_state_copy(&b, &a); /* over a filled one: no leak */
	pgkeel_ha_state_clear(&a);
	assert_int_equal(b.rewind, PGKEEL_HA_REWIND_NEED);
	assert_string_equal(b.sync_ssn, "x");
	assert_int_equal(b.n_sync_ready, 2);
	assert_string_equal(b.sync_ready[1], "pg-3");
	pgkeel_ha_state_copy(&b, &b);
	assert_string_equal(b.sync_ssn, "x");
	pgkeel_ha_state_clear(&b);
	assert_null(b.sync_ssn);
	pgkeel_ha_state_clear(&b);
}

static void test_copy_slots_message(void **state)
{
	const char *names[] = {"ls1", "ls_2"};
	struct pgkeel_ha_decision d;

	(void)state;
	pgkeel_ha_decision_init(&d);
	d.plan.message = "PAUSE: no action. I am (pg-1)";
	pgkeel_ha_copy_slots_message(&d, names, 2);
	assert_string_equal(d.plan.message,
	                    "PAUSE: Copying logical slots ['ls1', 'ls_2'] from the primary");
	d.plan.message = "x";
	pgkeel_ha_copy_slots_message(&d, names, 1);
	assert_string_equal(d.plan.message, "Copying logical slots ['ls1'] from the primary");
	pgkeel_ha_decision_clear(&d);
	pgkeel_ha_decision_clear(&d);
}

/* A decision is reusable: each call starts clean, the last one's memory goes. */
static void test_decision_reuse(void **state)
{
	struct run *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	world_default(&r->w);
	no_leader(&r->w);
	facts(r);
	pgkeel_ha_decision_init(&r->d);
	pgkeel_ha_decide(&r->f, &r->d);
	assert_false(r->d.final);
	assert_int_equal(r->d.request.kind, PGKEEL_HA_REQ_PROBE);
	pgkeel_ha_decide(&r->f, &r->d); /* the same question again: nothing was answered */
	assert_false(r->d.final);
	assert_int_equal(r->d.request.kind, PGKEEL_HA_REQ_PROBE);
	assert_int_equal(r->d.request.n_targets, 2);
	assert_int_equal(r->d.plan.n_effects, 0);
	run_free(r);
	free(r);
}

static char tmpdir[64];

static void test_settings_from_config(void **state)
{
	const char *yml =
	    "scope: batman\n"
	    "name: pg-1\n"
	    "restapi:\n  listen: 127.0.0.1:8008\n  connect_address: 127.0.0.1:8008\n"
	    "etcd3:\n  hosts: 127.0.0.1:2379\n"
	    "bootstrap:\n  dcs:\n    ttl: 31\n    loop_wait: 5\n    synchronous_mode: on\n"
	    "postgresql:\n  listen: 127.0.0.1:5432\n  connect_address: 127.0.0.1:5432\n"
	    "  data_dir: /tmp/pgkeel-nonexistent/data\n"
	    "  create_replica_methods: [wal_e, basebackup]\n"
	    "  wal_e: {command: /bin/true, no_leader: true}\n"
	    "  authentication:\n"
	    "    superuser: {username: postgres, password: secret}\n"
	    "    replication: {username: replicator, password: rep}\n"
	    "tags:\n  nofailover: true\n  replicatefrom: pg-3\n";
	const char *dyn = "{\"ttl\":40,\"pause\":\"on\",\"master_start_timeout\":60,"
	                  "\"synchronous_mode\":\"quorum\",\"synchronous_mode_strict\":true,"
	                  "\"synchronous_node_count\":2,\"failsafe_mode\":\"yes\","
	                  "\"check_timeline\":1,\"maximum_lag_on_failover\":\"100\","
	                  "\"standby_cluster\":{\"restore_command\":\"cp x y\"},"
	                  "\"postgresql\":{\"remove_data_directory_on_diverged_timelines\":true}}";
	struct pgkeel_config_opts opts = {.strict = false};
	struct pgkeel_config *c, *c2;
	struct pgkeel_ha_settings s;
	struct pgkeel_diag d;
	json_object *dj;
	char path[128];
	FILE *f;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_ha.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/pgkeel.yml", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(yml, f) >= 0);
	assert_int_equal(fclose(f), 0);
	pgkeel_diag_init(&d);
	c = pgkeel_config_load(path, &opts, &d);
	assert_non_null(c);
	pgkeel_ha_settings_from_config(c, &s);
	assert_string_equal(s.name, "pg-1");
	assert_int_equal(s.ttl, 31);
	assert_int_equal(s.loop_wait, 5);
	assert_int_equal(s.retry_timeout, 10);
	assert_int_equal(s.maximum_lag_on_failover, 1048576);
	assert_int_equal(s.maximum_lag_on_syncnode, -1);
	assert_true(s.synchronous_mode);
	assert_false(s.synchronous_mode_strict);
	assert_int_equal(s.synchronous_node_count, 1);
	assert_false(s.pause);
	assert_false(s.standby_cluster);
	assert_int_equal(s.primary_start_timeout, 300);
	assert_true(s.nofailover);
	assert_false(s.nosync);
	assert_string_equal(s.replicatefrom, "pg-3");
	assert_true(s.has_bootstrap_section);
	assert_true(s.clone_without_leader);
	assert_false(s.standby_clone_without_leader);

	dj = json_tokener_parse(dyn);
	assert_non_null(dj);
	c2 = pgkeel_config_with_dynamic(c, dj, &d);
	assert_non_null(c2);
	pgkeel_ha_settings_from_config(c2, &s);
	assert_int_equal(s.ttl, 40);
	assert_true(s.pause);
	assert_int_equal(s.primary_start_timeout, 60);
	assert_false(s.synchronous_mode); /* "quorum" is not on in 3.0.2 */
	assert_true(s.synchronous_mode_strict);
	assert_int_equal(s.synchronous_node_count, 2);
	assert_true(s.failsafe_mode);
	assert_true(s.check_timeline);
	assert_int_equal(s.maximum_lag_on_failover, 100);
	assert_true(s.standby_cluster);
	assert_false(s.standby_cluster_has_conn);
	assert_true(s.remove_data_directory_on_diverged_timelines);
	json_object_put(dj);
	pgkeel_config_unref(c2);
	pgkeel_config_unref(c);
	pgkeel_diag_clear(&d);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(tmpdir), 0);
}

static const struct CMUnitTest ha_misc_tests[] = {
    cmocka_unit_test(test_sysid_valid),
    cmocka_unit_test(test_parse_time),
    cmocka_unit_test(test_pg_version),
    cmocka_unit_test(test_ssn_format),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_state_copy),
    cmocka_unit_test(test_copy_slots_message),
    cmocka_unit_test(test_decision_reuse),
    cmocka_unit_test(test_settings_from_config),
};

static void test_row(void **state)
{
	run_row(*state);
}

/* One cmocka test per row, named after it, then the helpers' tests. */
int main(void)
{
	const struct row *tables[] = {ha_rows_cycle, ha_rows_race, ha_rows_leader, ha_rows_sync};
	const size_t lens[] = {ha_rows_cycle_n, ha_rows_race_n, ha_rows_leader_n, ha_rows_sync_n};
	size_t n = PGKEEL_ARRAY_LEN(ha_misc_tests), k = 0;
	struct CMUnitTest *tests;
	int rc;

	for (size_t t = 0; t < PGKEEL_ARRAY_LEN(tables); t++)
		n += lens[t];
	tests = calloc(n, sizeof(*tests));
	assert_non_null(tests);
	for (size_t t = 0; t < PGKEEL_ARRAY_LEN(tables); t++) {
		for (size_t i = 0; i < lens[t]; i++) {
			tests[k].name = tables[t][i].name;
			tests[k].test_func = test_row;
			tests[k].initial_state = (void *)&tables[t][i];
			k++;
		}
	}
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(ha_misc_tests); i++)
		tests[k++] = ha_misc_tests[i];
	rc = _cmocka_run_group_tests("ha", tests, n, NULL, NULL);
	free(tests);
	return rc;
}
