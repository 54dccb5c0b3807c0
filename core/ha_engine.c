/*
 * The HA decision's engine (see ha_internal.h): the decision's own memory
 * (effects, requests, notes, strings), the loop's state that travels with
 * it, the cluster view after a load, the answers to requests (renew,
 * acquire, reload, watchdog), and the upstream a replica follows.  The
 * cycle itself is in ha.c.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "ha.h"
#include "ha_internal.h"
#include "json.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* the decision's memory */

static void *own(struct pgkeel_ha_decision *d, void *p)
{
	if (d->n_owned_ == d->cap_owned_) {
		d->cap_owned_ = d->cap_owned_ ? d->cap_owned_ * 2 : 16;
		d->owned_ = pgkeel_xreallocarray(d->owned_, d->cap_owned_, sizeof(*d->owned_));
	}
	d->owned_[d->n_owned_++] = p;
	return p;
}

void *ha_own(struct ha *h, void *p)
{
	return own(h->d, p);
}

const char *ha_strdup(struct ha *h, const char *s)
{
	return s == NULL ? NULL : own(h->d, pgkeel_strdup(s));
}

void ha_note_text(struct ha *h, bool warning, char *text)
{
	struct pgkeel_ha_decision *d = h->d;

	if (d->plan.n_notes == d->cap_notes_) {
		d->cap_notes_ = d->cap_notes_ ? d->cap_notes_ * 2 : 8;
		d->plan.notes =
		    pgkeel_xreallocarray(d->plan.notes, d->cap_notes_, sizeof(*d->plan.notes));
	}
	d->plan.notes[d->plan.n_notes].warning = warning;
	d->plan.notes[d->plan.n_notes].text = own(d, text);
	d->plan.n_notes++;
}

struct pgkeel_ha_effect *ha_fx(struct ha *h, enum pgkeel_ha_fx kind)
{
	struct pgkeel_ha_decision *d = h->d;
	struct pgkeel_ha_effect *e;

	if (d->plan.n_effects == d->cap_effects_) {
		d->cap_effects_ = d->cap_effects_ ? d->cap_effects_ * 2 : 16;
		d->plan.effects = pgkeel_xreallocarray(d->plan.effects, d->cap_effects_,
		                                       sizeof(*d->plan.effects));
	}
	e = &d->plan.effects[d->plan.n_effects++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->lsn = -1;
	e->timeout_s = -1;
	return e;
}

struct pgkeel_ha_request *ha_request(struct ha *h, enum pgkeel_ha_req kind)
{
	struct pgkeel_ha_request *r = &h->d->request;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	h->stop = true;
	return r;
}

void pgkeel_ha_state_init(struct pgkeel_ha_state *s)
{
	memset(s, 0, sizeof(*s));
	s->start_timeout_s = -1;
}

void pgkeel_ha_state_clear(struct pgkeel_ha_state *s)
{
	free(s->sync_ssn);
	for (size_t i = 0; i < s->n_sync_ready; i++)
		free(s->sync_ready[i]);
	free(s->sync_ready);
	pgkeel_ha_state_init(s);
}

void pgkeel_ha_state_copy(struct pgkeel_ha_state *dst, const struct pgkeel_ha_state *src)
{
	if (dst == src)
		return;
	pgkeel_ha_state_clear(dst);
	*dst = *src;
	dst->sync_ssn = src->sync_ssn != NULL ? pgkeel_strdup(src->sync_ssn) : NULL;
	dst->sync_ready = NULL;
	dst->n_sync_ready = 0;
	if (src->n_sync_ready > 0) {
		dst->sync_ready = pgkeel_xcalloc(src->n_sync_ready, sizeof(char *));
		for (size_t i = 0; i < src->n_sync_ready; i++)
			dst->sync_ready[i] = pgkeel_strdup(src->sync_ready[i]);
		dst->n_sync_ready = src->n_sync_ready;
	}
}

void pgkeel_ha_decision_init(struct pgkeel_ha_decision *d)
{
	memset(d, 0, sizeof(*d));
	pgkeel_ha_state_init(&d->plan.state);
	d->plan.wake_in_ms = -1;
}

void pgkeel_ha_decision_clear(struct pgkeel_ha_decision *d)
{
	for (size_t i = 0; i < d->n_owned_; i++)
		free(d->owned_[i]);
	free(d->owned_);
	free(d->plan.effects);
	free(d->plan.notes);
	pgkeel_ha_state_clear(&d->plan.state);
	pgkeel_ha_decision_init(d);
}

/* ------------------------------------------------------------------------ */
/* the cluster view and small predicates */

bool ha_streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* load_cluster_from_dcs: the view Patroni's self.cluster gives after a load. */
void ha_load_view(struct ha *h, const struct pgkeel_cluster *c)
{
	const struct pgkeel_member *lm;

	h->c = c;
	h->leader = NULL;
	h->leader_conn_url = NULL;
	h->leader_injected = false;
	h->leader_timeline = 0;
	if (!pgkeel_cluster_is_unlocked(c)) {
		h->leader = c->leader->name;
		lm = c->leader->member;
		if (lm != NULL) {
			h->leader_conn_url = lm->d.conn_url;
			h->leader_timeline = lm->d.timeline;
		}
	} else if (h->s->failsafe_mode && h->f->failsafe_leader != NULL &&
	           h->f->failsafe_leader->name != NULL) {
		/* Failsafe.update_cluster: the leader that pinged us stands in */
		h->leader = h->f->failsafe_leader->name;
		h->leader_conn_url = h->f->failsafe_leader->conn_url;
		h->leader_injected = true;
	}
	if (!ha_has_lock(h) && h->is_leader) {
		h->is_leader = false;
		ha_fx(h, PGKEEL_HA_FX_SET_LEADER_VALID)->on = false;
	}
}

bool ha_has_lock(const struct ha *h)
{
	return ha_streq(h->leader, h->s->name);
}

bool ha_is_standby_cluster(const struct ha *h)
{
	return h->s->standby_cluster;
}

bool ha_sync_mode(const struct ha *h)
{
	return h->s->synchronous_mode && !h->s->standby_cluster;
}

bool ha_sync_active(const struct ha *h)
{
	return ha_sync_mode(h) && h->c->sync.leader != NULL;
}

bool ha_failover_set(const struct ha *h)
{
	return h->c->failover != NULL && pgkeel_failover_is_request(h->c->failover);
}

int64_t ha_cluster_timeline(const struct ha *h)
{
	return pgkeel_cluster_timeline(h->c);
}

bool ha_is_lagging(const struct ha *h, int64_t wal)
{
	int64_t last = h->c->status.last_lsn > 0 ? h->c->status.last_lsn : 0;

	return last - wal > h->s->maximum_lag_on_failover;
}

bool ha_rewind_executed(const struct ha *h)
{
	return h->st.rewind > PGKEEL_HA_REWIND_NOT_NEED;
}

bool ha_rewind_is_needed(const struct ha *h)
{
	return h->st.rewind == PGKEEL_HA_REWIND_CHECK || h->st.rewind == PGKEEL_HA_REWIND_NEED;
}

bool ha_rewind_allowed(const struct ha *h)
{
	return h->s->remove_data_directory_on_diverged_timelines || h->pg->can_rewind;
}

void ha_rewind_trigger(struct ha *h)
{
	if (ha_rewind_allowed(h) && h->st.rewind != PGKEEL_HA_REWIND_NEED)
		h->st.rewind = PGKEEL_HA_REWIND_CHECK;
}

void ha_set_role(struct ha *h, enum pgkeel_ha_role role)
{
	if (h->role != role)
		ha_fx(h, PGKEEL_HA_FX_SET_ROLE)->role = role;
	h->role = role;
}

void ha_set_state(struct ha *h, enum pgkeel_pgctl_state state)
{
	if (h->pg_state != state)
		ha_fx(h, PGKEEL_HA_FX_SET_STATE)->state = pgkeel_pgctl_state_name(state);
	h->pg_state = state;
}

void ha_callback(struct ha *h, const char *action)
{
	struct pgkeel_ha_effect *e = ha_fx(h, PGKEEL_HA_FX_CALLBACK);

	e->action = action;
	e->role = h->role;
}

void ha_delete_leader(struct ha *h, int64_t lsn, bool touch)
{
	ha_fx(h, PGKEEL_HA_FX_DELETE_LEADER)->lsn = lsn;
	ha_fx(h, PGKEEL_HA_FX_SET_LEADER_VALID)->on = false;
	h->is_leader = false;
	if (touch)
		ha_fx(h, PGKEEL_HA_FX_TOUCH_MEMBER);
}

void ha_demote(struct ha *h, enum pgkeel_demote_mode mode, const char *task)
{
	struct pgkeel_ha_effect *e = ha_fx(h, PGKEEL_HA_FX_DEMOTE);

	e->demote_mode = mode;
	e->task = task;
	if (task != NULL) {
		h->task = task;
		return;
	}
	/* the stop is done when the next step looks; immediate modes then start
	 * PostgreSQL again in the background */
	ha_rewind_trigger(h);
	h->is_leader = false;
	h->is_primary = false;
	h->role = PGKEEL_HA_ROLE_DEMOTED;
	if (mode == PGKEEL_DEMOTE_IMMEDIATE || mode == PGKEEL_DEMOTE_IMMEDIATE_NOLOCK)
		h->task = "starting after demotion";
}

/* Start an async task (try_run_async): the effect, named. */
struct pgkeel_ha_effect *ha_task(struct ha *h, enum pgkeel_ha_fx kind, const char *name)
{
	struct pgkeel_ha_effect *e = ha_fx(h, kind);

	e->task = name;
	h->task = name;
	return e;
}

const char *ha_fatal(struct ha *h, const char *message)
{
	h->fatal_message = message;
	h->fatal = true;
	h->stop = true;
	return message;
}

const char *ha_pg_error(struct ha *h)
{
	h->pg_error = true;
	h->stop = true;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* answers */

bool ha_reload(struct ha *h, int64_t delay_ms)
{
	const struct pgkeel_ha_answers *r = &h->f->r;

	if (h->n_reloads < r->n_reloads) {
		const struct pgkeel_cluster *c = r->reloads[h->n_reloads++];

		if (c == NULL) {
			h->dcs_error = true;
			h->stop = true;
			return false;
		}
		ha_load_view(h, c);
		return true;
	}
	if (r->n_reloads >= PGKEEL_HA_MAX_RELOADS)
		return true; /* budget spent (cannot happen): keep the view */
	ha_request(h, PGKEEL_HA_REQ_RELOAD_CLUSTER)->delay_ms = delay_ms;
	return false;
}

static enum pgkeel_ha_outcome lock_answer(struct ha *h, enum pgkeel_ha_outcome o)
{
	if (o == PGKEEL_HA_ERROR) {
		h->dcs_error = true;
		h->stop = true;
		return o;
	}
	h->is_leader = o == PGKEEL_HA_OK;
	return o;
}

/* ha_update_lock(): renew; OK also feeds the watchdog. */
enum pgkeel_ha_outcome ha_update_lock(struct ha *h, bool with_status)
{
	enum pgkeel_ha_outcome o = h->f->r.update_lock;
	struct pgkeel_ha_request *r;

	if (o == PGKEEL_HA_PENDING) {
		r = ha_request(h, PGKEEL_HA_REQ_UPDATE_LOCK);
		r->with_status = with_status;
		r->with_failsafe = h->s->failsafe_mode;
		return o;
	}
	o = lock_answer(h, o);
	if (o == PGKEEL_HA_OK)
		ha_fx(h, PGKEEL_HA_FX_WATCHDOG_KEEPALIVE);
	return o;
}

enum pgkeel_ha_outcome ha_acquire_lock(struct ha *h)
{
	enum pgkeel_ha_outcome o = h->f->r.acquire_lock;

	if (o == PGKEEL_HA_PENDING) {
		ha_request(h, PGKEEL_HA_REQ_ACQUIRE_LOCK);
		return o;
	}
	return lock_answer(h, o);
}

/* watchdog.activate(); only asked while the watchdog does not run. */
bool ha_watchdog_activate(struct ha *h)
{
	enum pgkeel_ha_outcome o = h->f->r.watchdog_activate;

	if (o == PGKEEL_HA_PENDING) {
		ha_request(h, PGKEEL_HA_REQ_WATCHDOG_ACTIVATE);
		return false;
	}
	return o == PGKEEL_HA_OK;
}

/* ------------------------------------------------------------------------ */
/* upstreams */

struct pgkeel_ha_upstream ha_up_none(void)
{
	struct pgkeel_ha_upstream u = {.kind = PGKEEL_HA_UP_NONE};

	return u;
}

struct pgkeel_ha_upstream ha_up_remote(void)
{
	struct pgkeel_ha_upstream u = {.kind = PGKEEL_HA_UP_REMOTE, .name = "remote_member"};

	return u;
}

struct pgkeel_ha_upstream ha_up_leader(const struct ha *h)
{
	struct pgkeel_ha_upstream u = ha_up_none();

	if (h->leader == NULL)
		return u;
	u.kind = h->leader_injected ? PGKEEL_HA_UP_FAILSAFE : PGKEEL_HA_UP_MEMBER;
	u.name = h->leader;
	u.conn_url = h->leader_conn_url;
	return u;
}

struct pgkeel_ha_upstream ha_up_member(const struct pgkeel_member *m)
{
	struct pgkeel_ha_upstream u = {.kind = PGKEEL_HA_UP_MEMBER};

	u.name = m->name;
	u.conn_url = m->d.conn_url;
	return u;
}

/* Does it have a conn_url (Patroni's leader.conn_url)? */
bool ha_up_has_conn(const struct ha *h, const struct pgkeel_ha_upstream *u)
{
	switch (u->kind) {
	case PGKEEL_HA_UP_NONE:
		return false;
	case PGKEEL_HA_UP_REMOTE:
		return h->s->standby_cluster_has_conn;
	default:
		return u->conn_url != NULL && u->conn_url[0] != '\0';
	}
}

/* _get_node_to_follow (without nostream, which 3.0.2 does not have). */
struct pgkeel_ha_upstream ha_node_to_follow(const struct ha *h)
{
	const struct pgkeel_ha_settings *s = h->s;
	struct pgkeel_ha_upstream u;

	if (ha_is_standby_cluster(h) && (ha_has_lock(h) || (h->leader == NULL && !h->paused))) {
		u = ha_up_remote();
	} else if (s->replicatefrom != NULL && s->replicatefrom[0] != '\0' &&
	           strcmp(s->replicatefrom, s->name) != 0) {
		const struct pgkeel_member *m = pgkeel_cluster_get_member(h->c, s->replicatefrom);

		u = m != NULL ? ha_up_member(m) : ha_up_leader(h);
	} else {
		u = ha_up_leader(h);
	}
	if (u.kind != PGKEEL_HA_UP_REMOTE && ha_streq(u.name, s->name))
		u = ha_up_none();
	return u;
}

void pgkeel_ha_copy_slots_message(struct pgkeel_ha_decision *d, const char *const *names, size_t n)
{
	struct pgkeel_sbuf b = {0};
	bool paused = d->plan.message != NULL && strncmp(d->plan.message, "PAUSE: ", 7) == 0;
	char *msg;

	if (paused)
		pgkeel_sbuf_puts(&b, "PAUSE: ");
	pgkeel_sbuf_puts(&b, "Copying logical slots [");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			pgkeel_sbuf_puts(&b, ", ");
		pgkeel_sbuf_putc(&b, '\'');
		pgkeel_sbuf_puts(&b, names[i]);
		pgkeel_sbuf_putc(&b, '\'');
	}
	pgkeel_sbuf_puts(&b, "] from the primary");
	msg = pgkeel_sbuf_finish(&b);
	d->plan.message = own(d, msg);
}
