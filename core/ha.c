/*
 * The HA decision: Patroni's _run_cycle with its sub-procedures (spec
 * patroni-dcs-and-ha.md §5.2, §5.3, §5.9, §5.10) and the entry points of
 * ha.h.  The engine (memory, answers, the cluster view, upstreams) lives in
 * ha_engine.c, the leader race in ha_race.c, synchronous replication in
 * ha_sync.c.  See ha.h for the protocol and ha_internal.h for how a call
 * unwinds on a request.
 */
#include "autoconf.h"

#include "ha.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "ha_internal.h"
#include "history.h"
#include "json.h"
#include "util.h"

#define TASK_CRASH_RECOVERY "doing crash recovery in a single user mode"

/* ------------------------------------------------------------------------ */
/* rewind and crash recovery */

/* rewind_or_reinitialize_needed_and_possible(leader) */
static bool rewind_needed_and_possible(struct ha *h, const struct pgkeel_ha_upstream *u)
{
	const struct pgkeel_ha_answers *r = &h->f->r;

	if (u->kind != PGKEEL_HA_UP_NONE && u->kind != PGKEEL_HA_UP_FAILSAFE &&
	    !ha_streq(u->name, h->s->name) && ha_up_has_conn(h, u) &&
	    h->st.rewind == PGKEEL_HA_REWIND_CHECK) {
		if (h->n_rewind_checks < r->n_rewind_checks) {
			switch (r->rewind_checks[h->n_rewind_checks++]) {
			case PGKEEL_HA_CHECK_NEED:
				h->st.rewind = PGKEEL_HA_REWIND_NEED;
				break;
			case PGKEEL_HA_CHECK_NOT_NEED:
				h->st.rewind = PGKEEL_HA_REWIND_NOT_NEED;
				break;
			case PGKEEL_HA_CHECK_UNKNOWN:
				break;
			}
		} else if (r->n_rewind_checks < PGKEEL_HA_MAX_REWIND_CHECKS) {
			ha_request(h, PGKEEL_HA_REQ_REWIND_CHECK)->upstream = *u;
			return false;
		}
	}
	return u->kind != PGKEEL_HA_UP_NONE && ha_up_has_conn(h, u) &&
	       h->st.rewind == PGKEEL_HA_REWIND_NEED;
}

static const char *handle_crash_recovery(struct ha *h)
{
	if (h->st.crash_recovery_started_ms == 0 && (h->leader == NULL || h->pg->can_rewind)) {
		h->st.crash_recovery_started_ms = h->f->now_ms;
		ha_task(h, PGKEEL_HA_FX_CRASH_RECOVERY, TASK_CRASH_RECOVERY);
		return TASK_CRASH_RECOVERY;
	}
	return NULL;
}

static const char *handle_rewind_or_reinitialize(struct ha *h)
{
	struct pgkeel_ha_upstream u = ha_is_standby_cluster(h) ? ha_up_remote() : ha_up_leader(h);
	struct pgkeel_ha_effect *e;
	const char *msg;
	bool need = rewind_needed_and_possible(h, &u);

	HA_CHECK(h);
	if (!need)
		return NULL;
	if (h->pg->can_rewind) {
		if (!h->pg->running && ha_streq(h->pg->controldata_state, "in archive recovery")) {
			msg = handle_crash_recovery(h);
			if (msg != NULL)
				return msg;
		}
		msg = ha_printf(h, "running pg_rewind from %s", u.name);
		e = ha_task(h, PGKEEL_HA_FX_REWIND, msg);
		e->upstream = u;
		return msg;
	}
	if (h->s->remove_data_directory_on_diverged_timelines && !ha_is_standby_cluster(h)) {
		msg = "reinitializing due to diverged timelines";
		e = ha_task(h, PGKEEL_HA_FX_REINITIALIZE, msg);
		e->upstream = u;
		return msg;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* follow / recover / bootstrap */

static const char *follow(struct ha *h, const char *demote_reason, const char *follow_reason,
                          bool refresh, int64_t delay_ms)
{
	struct pgkeel_ha_upstream u;
	struct pgkeel_ha_effect *e;
	enum pgkeel_ha_role role;
	const char *msg;

	if (refresh && !ha_reload(h, delay_ms))
		return NULL;
	u = ha_node_to_follow(h);
	if (h->paused) {
		if (!(ha_rewind_is_needed(h) && ha_rewind_allowed(h)) || h->leader == NULL) {
			if (h->is_primary) {
				ha_set_role(h, PGKEEL_HA_ROLE_MASTER);
				return "continue to run as primary without lock";
			} else if (h->role != PGKEEL_HA_ROLE_STANDBY_LEADER) {
				ha_set_role(h, PGKEEL_HA_ROLE_REPLICA);
			}
			if (u.kind == PGKEEL_HA_UP_NONE)
				return ha_printf(h, "no action. I am (%s)", h->s->name);
		}
	} else if (h->is_primary) {
		ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE_NOLOCK, NULL);
		return demote_reason;
	}
	if (h->pg->query_failed)
		return ha_pg_error(h);
	if (ha_is_standby_cluster(h) && h->leader_timeline > 0 && h->pg->standby_history_next)
		ha_rewind_trigger(h);
	if (h->pg_state != PGKEEL_PGCTL_STARTING) {
		msg = handle_rewind_or_reinitialize(h);
		HA_CHECK(h);
		if (msg != NULL)
			return msg;
	}
	if (!h->paused)
		ha_fx(h, PGKEEL_HA_FX_HANDLE_PARAMETER_CHANGE);
	role = u.kind == PGKEEL_HA_UP_REMOTE && ha_has_lock(h) ? PGKEEL_HA_ROLE_STANDBY_LEADER
	                                                       : PGKEEL_HA_ROLE_REPLICA;
	if (ha_is_standby_cluster(h) && role == PGKEEL_HA_ROLE_REPLICA && !ha_up_has_conn(h, &u))
		return "continue following the old known standby leader";
	e = ha_fx(h, PGKEEL_HA_FX_FOLLOW);
	e->upstream = u;
	e->role = role;
	return follow_reason;
}

static bool controldata_in(const struct ha *h, const char *const *states)
{
	for (; *states != NULL; states++)
		if (ha_streq(h->pg->controldata_state, *states))
			return true;
	return false;
}

static const char *recover(struct ha *h)
{
	static const char *const was_primary[] = {"in production", "in crash recovery",
	                                          "shutting down", "shut down", NULL};
	static const char *const unclean[] = {"in production", "shutting down", "in crash recovery",
	                                      NULL};
	const struct pgkeel_ha_settings *s = h->s;
	struct pgkeel_ha_upstream u = ha_up_none();
	enum pgkeel_ha_role role = PGKEEL_HA_ROLE_REPLICA;
	struct pgkeel_ha_effect *e;
	int64_t timeout = -1;
	const char *msg;

	if (ha_has_lock(h)) {
		enum pgkeel_ha_outcome o = ha_update_lock(h, false);

		HA_CHECK(h);
		if (o == PGKEEL_HA_OK) {
			timeout = s->primary_start_timeout;
			if (timeout == 0) {
				bool possible = ha_is_failover_possible(h, 0, false);

				HA_CHECK(h);
				if (possible) {
					ha_fx(h, PGKEEL_HA_FX_WATCHDOG_DISABLE);
					ha_note(h, false, "Primary crashed. Failing over.");
					ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE, NULL);
					return "stopped PostgreSQL to fail over after a crash";
				}
			}
		}
	}
	/* [>=3.0.4] we were a primary a moment ago and still hold the lock */
	if (timeout > 0 && controldata_in(h, was_primary) && h->pg_state == PGKEEL_PGCTL_CRASHED &&
	    h->role == PGKEEL_HA_ROLE_MASTER && !h->pg->recovery_conf) {
		msg = "starting primary after failure";
		e = ha_task(h, PGKEEL_HA_FX_START, msg);
		e->role = PGKEEL_HA_ROLE_MASTER;
		e->timeout_s = timeout;
		h->st.recovering = true;
		return msg;
	}
	ha_fx(h, PGKEEL_HA_FX_WATCHDOG_DISABLE);
	if (controldata_in(h, unclean)) {
		if (h->pg->backup_label) {
			ha_note(h, false,
			        "Skipping single-user crash recovery because backup_label "
			        "exists; PostgreSQL will handle it during normal startup");
		} else {
			msg = handle_crash_recovery(h);
			if (msg != NULL)
				return msg;
		}
	}
	if (!ha_reload(h, 0))
		return NULL;
	if (ha_has_lock(h) && !ha_is_standby_cluster(h)) {
		h->st.rewind = PGKEEL_HA_REWIND_INITIAL;
		msg = "starting as readonly because i had the session lock";
	} else {
		if (!ha_rewind_executed(h))
			ha_rewind_trigger(h);
		msg = handle_rewind_or_reinitialize(h);
		HA_CHECK(h);
		if (msg != NULL)
			return msg;
		if (ha_has_lock(h)) {
			msg = "starting as a standby leader because i had the session lock";
			role = PGKEEL_HA_ROLE_STANDBY_LEADER;
			u = ha_node_to_follow(h);
		} else if (ha_is_standby_cluster(h) && h->leader == NULL) {
			msg =
			    "trying to follow a remote member because standby cluster is unhealthy";
			u = ha_up_remote();
		} else {
			msg = "starting as a secondary";
			u = ha_node_to_follow(h);
		}
		if (ha_sync_mode(h))
			ha_set_ssn(h, NULL, 0);
	}
	e = ha_task(h, PGKEEL_HA_FX_START, "restarting after failure");
	e->role = role;
	e->upstream = u;
	e->timeout_s = timeout;
	h->st.recovering = true;
	return msg;
}

/* get_clone_member(me): a running clonefrom member other than me and the leader. */
static struct pgkeel_ha_upstream clone_member(const struct ha *h, bool *is_leader)
{
	const struct pgkeel_member *cand[64];
	size_t n = 0;

	for (size_t i = 0; i < h->c->n_members && n < PGKEEL_ARRAY_LEN(cand); i++) {
		const struct pgkeel_member *m = &h->c->members[i];

		if (!pgkeel_member_tag_truthy(&m->d, "clonefrom") || m->d.conn_url == NULL ||
		    m->d.conn_url[0] == '\0' || !ha_streq(m->d.state, "running") ||
		    ha_streq(m->name, h->s->name) || ha_streq(m->name, h->leader))
			continue;
		cand[n++] = &h->c->members[i];
	}
	*is_leader = n == 0;
	if (n == 0)
		return ha_up_leader(h);
	return ha_up_member(cand[h->f->random % n]);
}

static const char *bootstrap(struct ha *h)
{
	const struct pgkeel_ha_settings *s = h->s;
	const char *initialize = h->c->initialize;
	struct pgkeel_ha_effect *e;
	bool standby = ha_is_standby_cluster(h);

	if (h->leader != NULL) {
		bool from_leader;
		struct pgkeel_ha_upstream u = clone_member(h, &from_leader);
		const char *what =
		    ha_printf(h, "from %s '%s'", from_leader ? "leader" : "replica", u.name);

		e = ha_task(h, PGKEEL_HA_FX_CLONE, ha_printf(h, "bootstrap %s", what));
		e->upstream = u;
		e->standby = standby;
		return ha_printf(h, "trying to bootstrap %s", what);
	}
	if (initialize == NULL && !s->nofailover && s->has_bootstrap_section) {
		enum pgkeel_ha_outcome o = h->f->r.initialize_race;

		if (o == PGKEEL_HA_PENDING) {
			ha_request(h, PGKEEL_HA_REQ_INITIALIZE_RACE);
			return NULL;
		}
		if (o != PGKEEL_HA_OK)
			return "failed to acquire initialize lock";
		h->st.bootstrapping = true;
		h->st.task_result = PGKEEL_HA_TASK_NONE;
		if (standby) {
			e = ha_task(h, PGKEEL_HA_FX_BOOTSTRAP, "bootstrap_standby_leader");
			e->standby = true;
			e->upstream = ha_up_remote();
			return "trying to bootstrap a new standby leader";
		}
		ha_task(h, PGKEEL_HA_FX_BOOTSTRAP, "bootstrap");
		return "trying to bootstrap a new cluster";
	}
	if ((standby ? s->standby_clone_without_leader : s->clone_without_leader) &&
	    !(initialize != NULL && initialize[0] == '\0')) {
		e = ha_task(h, PGKEEL_HA_FX_CLONE, "bootstrap (without leader)");
		e->standby = standby;
		return "trying to bootstrap (without leader)";
	}
	return standby ? "waiting for standby_leader to bootstrap"
	               : "waiting for leader to bootstrap";
}

static const char *cancel_initialization(struct ha *h)
{
	ha_note(h, false, "removing initialize key after failed attempt to bootstrap the cluster");
	ha_fx(h, PGKEEL_HA_FX_CANCEL_INITIALIZATION);
	return ha_fatal(h, "Failed to bootstrap cluster");
}

static const char *post_bootstrap(struct ha *h)
{
	struct pgkeel_ha_effect *e;

	if (!h->pg->running || h->st.task_result == PGKEEL_HA_TASK_FALSE)
		return cancel_initialization(h);
	if (h->st.task_result == PGKEEL_HA_TASK_NONE) {
		if (!h->is_primary)
			return "waiting for end of recovery after bootstrap";
		ha_set_role(h, PGKEEL_HA_ROLE_MASTER);
		ha_task(h, PGKEEL_HA_FX_POST_BOOTSTRAP, "post_bootstrap");
		return "running post_bootstrap";
	}
	h->st.bootstrapping = false;
	if (!ha_watchdog_activate(h)) {
		HA_CHECK(h);
		ha_note(h, true, "Cancelling bootstrap because watchdog activation failed");
		return cancel_initialization(h);
	}
	if (h->st.rewind == PGKEEL_HA_REWIND_INITIAL && h->is_primary)
		ha_fx(h, PGKEEL_HA_FX_ENSURE_CHECKPOINT);
	e = ha_fx(h, PGKEEL_HA_FX_INITIALIZE);
	e->create_new = h->c->initialize == NULL;
	e->sysid = h->pg->sysid;
	ha_fx(h, PGKEEL_HA_FX_SET_CONFIG);
	ha_fx(h, PGKEEL_HA_FX_TAKE_LEADER);
	ha_fx(h, PGKEEL_HA_FX_SET_LEADER_VALID)->on = true;
	h->is_leader = true;
	if (ha_sync_mode(h)) {
		static const char *const star[] = {"*"};

		ha_set_ssn(h, star, h->s->synchronous_mode_strict ? 1 : 0);
	}
	ha_callback(h, "on_start");
	return "initialized a new cluster";
}

/* ------------------------------------------------------------------------ */
/* the leader's side */

/* update_cluster_history: the key must end with the switch into my timeline. */
static void update_history(struct ha *h)
{
	if (h->pg->timeline > 0 && pgkeel_history_needs_update(h->c->history, h->pg->timeline))
		ha_fx(h, PGKEEL_HA_FX_SET_HISTORY)->timeline = h->pg->timeline;
}

static const char *enforce_primary_role(struct ha *h, const char *message,
                                        const char *promote_message)
{
	if (h->pg->query_failed)
		return ha_pg_error(h);
	if (!h->paused) {
		if (!h->f->watchdog_running && !ha_watchdog_activate(h)) {
			HA_CHECK(h);
			if (h->is_primary) {
				ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE, NULL);
				return "Demoting self because watchdog could not be activated";
			}
			ha_delete_leader(h, -1, true);
			return "Not promoting self because watchdog could not be activated";
		}
		if (h->st.task_result == PGKEEL_HA_TASK_FALSE) {
			ha_note(h, true,
			        "Releasing the leader key voluntarily because the "
			        "pre-promote script failed");
			h->st.released_key_ms = h->f->now_ms;
			ha_delete_leader(h, -1, true);
			h->st.task_result = PGKEEL_HA_TASK_NONE;
			return "Promotion cancelled because the pre-promote script failed";
		}
	}
	if (h->is_primary) {
		ha_set_role(h, PGKEEL_HA_ROLE_MASTER);
		ha_process_sync(h);
		HA_CHECK(h);
		update_history(h);
		return message;
	}
	if (h->role == PGKEEL_HA_ROLE_MASTER || h->role == PGKEEL_HA_ROLE_PROMOTED) {
		ha_process_sync(h);
		HA_CHECK(h);
		return message;
	}
	if (!ha_sync_prepromote(h)) {
		HA_CHECK(h);
		return "Postponing promotion because synchronous replication state was updated by "
		       "somebody else";
	}
	/* [>=3.1.1] a promotion resets the failsafe state */
	ha_fx(h, PGKEEL_HA_FX_FAILSAFE_ACTIVE)->on = false;
	h->st.rewind = PGKEEL_HA_REWIND_INITIAL;
	h->st.task_result = PGKEEL_HA_TASK_NONE;
	ha_task(h, PGKEEL_HA_FX_PROMOTE, "promote");
	return promote_message;
}

static void set_failover_clear(struct ha *h, const char *version)
{
	ha_fx(h, PGKEEL_HA_FX_SET_FAILOVER)->version = version;
}

static const char *process_unhealthy_cluster(struct ha *h)
{
	const struct pgkeel_failover *fo;
	int64_t delay = 0;
	bool best;

	if (h->pg->query_failed)
		return ha_pg_error(h);
	best = ha_is_healthiest_node(h);
	HA_CHECK(h);
	if (best) {
		enum pgkeel_ha_outcome o = ha_acquire_lock(h);

		HA_CHECK(h);
		if (o == PGKEEL_HA_OK) {
			if (ha_failover_set(h)) {
				fo = h->c->failover;
				if (h->paused && fo->leader != NULL && fo->candidate != NULL) {
					struct pgkeel_ha_effect *e =
					    ha_fx(h, PGKEEL_HA_FX_SET_FAILOVER);

					ha_note(
					    h, false,
					    "Updating failover key after acquiring leader lock...");
					e->fo_candidate = fo->candidate;
					e->fo_scheduled_at = fo->scheduled_at;
					e->version = fo->version;
				} else {
					ha_note(h, false,
					        "Cleaning up failover key after acquiring leader "
					        "lock...");
					set_failover_clear(h, NULL);
				}
			}
			if (!ha_reload(h, 0))
				return NULL;
			if (ha_is_standby_cluster(h))
				return follow(
				    h, "cannot be a real primary in standby cluster",
				    "promoted self to a standby leader by acquiring session lock",
				    true, 0);
			return enforce_primary_role(
			    h, "acquired session lock as a leader",
			    "promoted self to leader by acquiring session lock");
		}
		return follow(h, "demoted self after trying and failing to obtain lock",
		              "following new leader after trying and failing to obtain lock", true,
		              0);
	}
	fo = ha_failover_set(h) ? h->c->failover : NULL;
	if ((fo != NULL && fo->candidate != NULL) || (h->s->nofailover && !h->paused)) {
		ha_rewind_trigger(h);
		delay = 2000; /* give somebody time to take the leader lock */
	}
	if (h->s->nofailover)
		return follow(h, "demoting self because I am not allowed to become primary",
		              "following a different leader because I am not allowed to promote",
		              true, delay);
	return follow(h, "demoting self because i am not the healthiest node",
	              "following a different leader because i am not the healthiest node", true,
	              delay);
}

static const char *process_healthy_cluster(struct ha *h)
{
	const char *me = h->s->name;
	const char *msg;

	if (ha_has_lock(h)) {
		enum pgkeel_ha_outcome o;

		if (h->paused && !h->is_primary) {
			if (ha_failover_set(h) && ha_streq(h->c->failover->candidate, me))
				return "waiting to become primary after promote...";
			if (!ha_is_standby_cluster(h)) {
				ha_delete_leader(h, -1, false);
				return "removed leader lock because postgres is not running as "
				       "primary";
			}
		}
		o = ha_update_lock(h, true);
		HA_CHECK(h);
		if (o == PGKEEL_HA_OK) {
			msg = ha_manual_failover_from_leader(h);
			HA_CHECK(h);
			if (msg != NULL)
				return msg;
			if (h->st.rewind == PGKEEL_HA_REWIND_INITIAL && h->is_primary)
				ha_fx(h, PGKEEL_HA_FX_ENSURE_CHECKPOINT);
			if (ha_is_standby_cluster(h)) {
				msg = h->role == PGKEEL_HA_ROLE_STANDBY_LEADER
				          ? ha_printf(h,
				                      "no action. I am (%s), the standby leader "
				                      "with the lock",
				                      me)
				          : "promoted self to a standby leader because i had the "
				            "session lock";
				return follow(h, "cannot be a real primary in standby cluster", msg,
				              true, 0);
			}
			return enforce_primary_role(
			    h, ha_printf(h, "no action. I am (%s), the leader with the lock", me),
			    "promoted self to leader because I had the session lock");
		}
		ha_note(h, true, "failed to update leader lock");
		if (h->is_primary) {
			if (h->paused)
				return "continue to run as primary after failing to update leader "
				       "lock in "
				       "DCS";
			ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE_NOLOCK, NULL);
			return "demoted self because failed to update leader lock in DCS";
		}
		return "not promoting because failed to update leader lock in DCS";
	}
	if (ha_is_standby_cluster(h))
		return follow(
		    h, "cannot be a real primary in a standby cluster",
		    ha_printf(h,
		              "no action. I am (%s), a secondary, and following a standby "
		              "leader (%s)",
		              me, h->leader),
		    false, 0);
	return follow(h, "demoting self because I do not have the lock and I was a leader",
	              ha_printf(h, "no action. I am (%s), a secondary, and following a leader (%s)",
	                        me, h->leader),
	              false, 0);
}

/* ------------------------------------------------------------------------ */
/* scheduled actions */

bool ha_scheduled_due(struct ha *h, const char *action, const char *scheduled_at, bool *cleanup)
{
	int64_t t, delta, loop_wait_ms = h->s->loop_wait * 1000;

	*cleanup = false;
	if (scheduled_at == NULL || h->paused)
		return false;
	if (!pgkeel_ha_parse_time(scheduled_at, &t)) {
		ha_note(h, true, "Incorrect value of scheduled_at: %s", scheduled_at);
		*cleanup = true;
		return false;
	}
	delta = t - h->f->now_wall_ms;
	if (delta > loop_wait_ms) {
		ha_note(h, false, "Awaiting %s at %s (in %.0f seconds)", action, scheduled_at,
		        (double)delta / 1000.0);
		return false;
	}
	if (delta < -((h->s->loop_wait * 3) / 2) * 1000) {
		ha_note(h, true, "Found a stale %s value, cleaning up: %s", action, scheduled_at);
		*cleanup = true;
		return false;
	}
	if (delta > 0) {
		/* Patroni sleeps until then; we ask for the next cycle at that time */
		if (h->d->plan.wake_in_ms < 0 || delta < h->d->plan.wake_in_ms)
			h->d->plan.wake_in_ms = delta;
		return false;
	}
	ha_note(h, false, "Manual scheduled %s at %s", action, scheduled_at);
	return true;
}

static bool restart_matches(struct ha *h, const struct pgkeel_ha_scheduled_restart *sr)
{
	const char *reason = NULL;

	if (sr->role != NULL && sr->role[0] != '\0' &&
	    strcmp(sr->role, pgkeel_ha_role_name(h->role)) != 0)
		reason = "host role mismatch";
	if (sr->postgres_version != NULL && sr->postgres_version[0] != '\0') {
		int64_t v = pgkeel_ha_pg_version_to_int(sr->postgres_version);

		if (v < 0 || v <= h->pg->server_version)
			reason = "postgres version mismatch";
	}
	if (sr->restart_pending && !h->pg->pending_restart)
		reason = "pending restart flag is not set";
	if (reason != NULL)
		ha_note(h, false, "not proceeding with the restart: %s", reason);
	return reason == NULL;
}

/* restart(): the task, with the start timeout; a sync replica leaves the sync set first */
static const char *start_restart(struct ha *h, const struct pgkeel_ha_scheduled_restart *req)
{
	struct pgkeel_ha_effect *e = ha_task(h, PGKEEL_HA_FX_RESTART, "restart");

	h->st.recovering = true;
	h->st.start_timeout_s = req->timeout_s >= 0 ? req->timeout_s : h->s->primary_start_timeout;
	e->timeout_s = h->st.start_timeout_s;
	e->while_not_sync_standby = h->c != NULL && ha_sync_mode(h) && !ha_has_lock(h);
	return "restart initiated";
}

static const char *evaluate_scheduled_restart(struct ha *h)
{
	const struct pgkeel_ha_scheduled_restart *sr = h->f->scheduled_restart;
	const char *ret = NULL;
	bool cleanup;

	if (h->task != NULL || sr == NULL)
		return NULL;
	if (h->pg->postmaster_start_time != NULL && sr->postmaster_start_time != NULL &&
	    strcmp(h->pg->postmaster_start_time, sr->postmaster_start_time) != 0) {
		ha_note(h, false,
		        "Cancelling scheduled restart: postgres restart has already happened at %s",
		        h->pg->postmaster_start_time);
		ha_fx(h, PGKEEL_HA_FX_CLEAR_SCHEDULED_RESTART);
		return NULL;
	}
	if (!ha_scheduled_due(h, "restart", sr->schedule, &cleanup)) {
		if (cleanup)
			ha_fx(h, PGKEEL_HA_FX_CLEAR_SCHEDULED_RESTART);
		return NULL;
	}
	if (!restart_matches(h, sr))
		ha_note(h, true, "Scheduled restart: restart conditions are not satisfied");
	else
		ret = start_restart(h, sr);
	ha_fx(h, PGKEEL_HA_FX_CLEAR_SCHEDULED_RESTART);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* rows 5-8 */

static const char *handle_long_action(struct ha *h)
{
	const char *t = h->task;

	if (ha_has_lock(h)) {
		enum pgkeel_ha_outcome o = ha_update_lock(h, false);

		HA_CHECK(h);
		if (o == PGKEEL_HA_OK) {
			if (strcmp(t, TASK_CRASH_RECOVERY) == 0 &&
			    h->st.crash_recovery_started_ms > 0 &&
			    h->s->primary_start_timeout * 1000 -
			            (h->f->now_ms - h->st.crash_recovery_started_ms) <=
			        0) {
				bool possible = ha_is_failover_possible(h, 0, false);

				HA_CHECK(h);
				if (possible) {
					ha_note(h, false,
					        "Demoting self because crash recovery is taking "
					        "too long");
					ha_fx(h, PGKEEL_HA_FX_CANCEL_TASK)->task = t;
					h->task = NULL;
					ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE, NULL);
					return "terminated crash recovery because of startup "
					       "timeout";
				}
			}
			return ha_printf(h, "updated leader lock during %s", t);
		}
	}
	if (!h->st.bootstrapping && !h->paused) {
		if (strcmp(t, "promote") == 0 && h->st.task_result == PGKEEL_HA_TASK_NONE) {
			ha_fx(h, PGKEEL_HA_FX_CANCEL_TASK)->task = t;
			return "lost leader before promote";
		}
		if (h->role == PGKEEL_HA_ROLE_MASTER) {
			ha_note(h, false, "Demoting primary during %s", t);
			if (strcmp(t, "restart") == 0 ||
			    strcmp(t, "starting primary after failure") == 0)
				ha_fx(h, PGKEEL_HA_FX_CANCEL_TASK)->task = t;
			ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE_NOLOCK, NULL);
			return ha_printf(h, "lost leader lock during %s", t);
		}
	}
	if (h->leader == NULL)
		ha_note(h, false, "not healthy enough for leader race");
	return ha_printf(h, "%s in progress", t);
}

static const char *handle_starting_instance(struct ha *h)
{
	enum pgkeel_ha_outcome o;
	int64_t timeout;
	double left;
	const char *msg;

	if (h->pg_state != PGKEEL_PGCTL_STARTING || h->paused) {
		h->st.start_timeout_s = -1;
		if (h->paused)
			ha_set_state(h,
			             h->pg->running ? PGKEEL_PGCTL_RUNNING : PGKEEL_PGCTL_STOPPED);
		return NULL;
	}
	if (!ha_has_lock(h)) {
		ha_note(h, false, "Still starting up as a standby.");
		return NULL;
	}
	o = ha_update_lock(h, false);
	HA_CHECK(h);
	if (o != PGKEEL_HA_OK) {
		ha_note(h, false, "Lost lock while starting up. Demoting self.");
		ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE_NOLOCK, NULL);
		return "stopped PostgreSQL while starting up because leader key was lost";
	}
	timeout = h->st.start_timeout_s > 0 ? h->st.start_timeout_s : h->s->primary_start_timeout;
	left = (double)timeout - (double)(h->f->now_ms - h->pg->state_since_ms) / 1000.0;
	if (left <= 0) {
		bool possible = ha_is_failover_possible(h, 0, false);

		HA_CHECK(h);
		if (possible) {
			ha_note(h, false,
			        "Demoting self because primary startup is taking too long");
			ha_demote(h, PGKEEL_DEMOTE_IMMEDIATE, NULL);
			return "stopped PostgreSQL because of startup timeout";
		}
		return "primary start has timed out, but continuing to wait because failover is "
		       "not "
		       "possible";
	}
	msg = ha_manual_failover_from_leader(h);
	HA_CHECK(h);
	if (msg != NULL)
		return msg;
	return ha_printf(h, "PostgreSQL is still starting up, %.0f seconds until timeout", left);
}

/* row 8: the start issued last cycle is over */
static const char *post_recover(struct ha *h)
{
	h->st.recovering = false;
	if (!ha_rewind_is_needed(h) && !h->pg->running) {
		ha_fx(h, PGKEEL_HA_FX_WATCHDOG_DISABLE);
		if (ha_has_lock(h)) {
			if (h->role == PGKEEL_HA_ROLE_MASTER ||
			    h->role == PGKEEL_HA_ROLE_STANDBY_LEADER) {
				ha_set_role(h, PGKEEL_HA_ROLE_DEMOTED);
				ha_callback(h, "on_role_change");
			}
			ha_delete_leader(h, -1, false);
			return "removed leader key after trying and failing to start postgres";
		}
		return "failed to start postgres";
	}
	h->st.crash_recovery_started_ms = 0;
	if (ha_rewind_executed(h) && h->st.rewind != PGKEEL_HA_REWIND_FAILED)
		h->st.rewind = PGKEEL_HA_REWIND_INITIAL;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* the cycle */

static const char *run_cycle(struct ha *h)
{
	const struct pgkeel_ha_settings *s = h->s;
	const struct pgkeel_ha_pg *pg = h->pg;
	const char *msg;
	bool promoting;

	if (h->f->dcs_failed || h->f->cluster == NULL) {
		h->dcs_error = true;
		h->stop = true;
		return NULL;
	}
	ha_load_view(h, h->f->cluster);

	if (h->paused) {
		ha_fx(h, PGKEEL_HA_FX_WATCHDOG_DISABLE);
		h->st.was_paused = true;
	} else {
		if (h->st.was_paused) {
			ha_fx(h, PGKEEL_HA_FX_SANITY_CHECKS);
			h->st.rewind = PGKEEL_HA_REWIND_INITIAL;
		}
		h->st.was_paused = false;
	}
	if (pgkeel_cluster_get_member(h->c, s->name) == NULL)
		ha_fx(h, PGKEEL_HA_FX_TOUCH_MEMBER);
	if (ha_has_lock(h) && !pgkeel_ha_sysid_valid(h->c->initialize)) {
		struct pgkeel_ha_effect *e = ha_fx(h, PGKEEL_HA_FX_INITIALIZE);

		e->create_new = h->c->initialize == NULL;
		e->sysid = pg->sysid;
	}
	if (ha_has_lock(h) && (h->c->config == NULL || h->c->config->data == NULL ||
	                       json_object_object_length(h->c->config->data) == 0))
		ha_fx(h, PGKEEL_HA_FX_SET_CONFIG);

	if (h->task != NULL)
		return handle_long_action(h);
	msg = handle_starting_instance(h);
	HA_CHECK(h);
	if (msg != NULL)
		return msg;
	if (h->st.bootstrapping)
		return post_bootstrap(h);
	if (h->st.recovering) {
		msg = post_recover(h);
		if (msg != NULL)
			return msg;
	}

	/* rows 9-12: the data directory and who it belongs to */
	if (pg->data_dir_error != NULL || pg->data_dir_empty) {
		struct pgkeel_ha_effect *e;

		ha_set_role(h, PGKEEL_HA_ROLE_UNINITIALIZED);
		e = ha_fx(h, PGKEEL_HA_FX_STOP);
		e->stop_mode = PGKEEL_PGCTL_IMMEDIATE;
		e->timeout_s = s->retry_timeout;
		ha_fx(h, PGKEEL_HA_FX_WATCHDOG_DISABLE);
		if (ha_has_lock(h)) {
			ha_delete_leader(h, -1, true);
			return ha_printf(h,
			                 "released leader key voluntarily as data dir %s and "
			                 "currently leader",
			                 pg->data_dir_error != NULL ? "not accessible" : "empty");
		}
		if (pg->data_dir_error != NULL)
			return ha_printf(h, "data directory is not accessible: %s",
			                 pg->data_dir_error);
		if (h->paused)
			return "running with empty data directory";
		return bootstrap(h);
	}
	if (!pgkeel_ha_sysid_valid(pg->sysid))
		return "data dir for the cluster is not empty, but system ID is invalid; consider "
		       "doing reinitialize";
	if (pgkeel_ha_sysid_valid(h->c->initialize)) {
		if (strcmp(h->c->initialize, pg->sysid) != 0) {
			if (h->paused) {
				ha_note(h, true,
				        "system ID has changed while in paused mode. Patroni will "
				        "exit when "
				        "resuming unless system ID is reset: %s != %s",
				        h->c->initialize, pg->sysid);
				if (ha_has_lock(h)) {
					ha_delete_leader(h, -1, true);
					return "released leader key voluntarily due to the system "
					       "ID mismatch";
				}
			} else {
				return ha_fatal(
				    h,
				    ha_printf(h,
				              "system ID mismatch, node %s belongs to a different "
				              "cluster: %s != %s",
				              s->name, h->c->initialize, pg->sysid));
			}
		}
	} else if (h->leader == NULL && !h->paused && !pg->cb_called) {
		struct pgkeel_ha_effect *e;

		if (pg->running && !h->is_primary) {
			h->st.join_aborted = true;
			ha_note(h, true,
			        "Please first start Patroni on the node running as primary");
			return ha_fatal(
			    h, "No initialize key in DCS and PostgreSQL is running as replica, "
			       "aborting start");
		}
		e = ha_fx(h, PGKEEL_HA_FX_INITIALIZE);
		e->create_new = h->c->initialize == NULL;
		e->sysid = pg->sysid;
	}

	/* row 13 */
	if (!pg->running) {
		if (h->paused) {
			ha_set_state(h, PGKEEL_PGCTL_STOPPED);
			if (ha_has_lock(h)) {
				ha_delete_leader(h, -1, false);
				return "removed leader lock because postgres is not running";
			}
			if (h->st.rewind == PGKEEL_HA_REWIND_FAILED ||
			    (!ha_rewind_executed(h) &&
			     !(ha_rewind_is_needed(h) && ha_rewind_allowed(h))))
				return "postgres is not running";
		}
		if (h->pg_state == PGKEEL_PGCTL_RUNNING || h->pg_state == PGKEEL_PGCTL_STARTING)
			ha_set_state(h, PGKEEL_PGCTL_CRASHED);
		return recover(h);
	}

	/* rows 14-15 */
	if (h->leader == NULL) {
		msg = process_unhealthy_cluster(h);
		HA_CHECK(h);
	} else {
		const char *restart;

		msg = process_healthy_cluster(h);
		HA_CHECK(h);
		restart = evaluate_scheduled_restart(h);
		if (restart != NULL)
			msg = restart;
	}

	/* row 16 */
	promoting = h->task != NULL && strcmp(h->task, "promote") == 0;
	if ((h->task == NULL || promoting) && h->pg_state != PGKEEL_PGCTL_STARTING) {
		struct pgkeel_ha_effect *e = ha_fx(h, PGKEEL_HA_FX_SYNC_SLOTS);

		e->copy_allowed = !promoting && h->leader != NULL && !h->f->failsafe_active;
		if (!pg->cb_called) {
			if (!promoting && !h->is_primary)
				ha_rewind_trigger(h);
			ha_callback(h, "on_start");
		}
	}
	return msg;
}

/* check_failsafe_topology(): true when every other member accepted our POST /failsafe. */
static bool failsafe_topology(struct ha *h)
{
	const struct pgkeel_cluster *c = h->c != NULL ? h->c : h->f->cluster;
	const struct pgkeel_failsafe *fs = c != NULL ? c->failsafe : NULL;
	enum pgkeel_ha_outcome o;

	if (fs == NULL || pgkeel_failsafe_get(fs, h->s->name) == NULL)
		return false;
	if (fs->n_entries == 1)
		return true; /* a single node cluster */
	o = h->f->r.failsafe_check;
	if (o == PGKEEL_HA_PENDING) {
		ha_request(h, PGKEEL_HA_REQ_FAILSAFE_CHECK);
		return false;
	}
	return o == PGKEEL_HA_OK;
}

/* _handle_dcs_error (§5.9, newest: the demotion is synchronous) */
static const char *handle_dcs_error(struct ha *h)
{
	struct pgkeel_ha_effect *e;

	if (!h->paused && h->pg->running) {
		if (h->is_primary) {
			if (h->s->failsafe_mode && failsafe_topology(h)) {
				ha_fx(h, PGKEEL_HA_FX_SET_LEADER_VALID)->on = true;
				h->is_leader = true;
				ha_fx(h, PGKEEL_HA_FX_FAILSAFE_ACTIVE)->on = true;
				ha_fx(h, PGKEEL_HA_FX_WATCHDOG_KEEPALIVE);
				ha_fx(h, PGKEEL_HA_FX_SYNC_SLOTS)->dcs_failed = true;
				return "continue to run as a leader because failsafe mode is "
				       "enabled and all "
				       "members are accessible";
			}
			HA_CHECK(h);
			ha_fx(h, PGKEEL_HA_FX_FAILSAFE_ACTIVE)->on = false;
			ha_note(h, false,
			        "demoting self because DCS is not accessible and I was a leader");
			ha_demote(h, PGKEEL_DEMOTE_OFFLINE, NULL);
			return "demoted self because DCS is not accessible and I was a leader";
		}
		if (h->s->failsafe_mode && !h->is_leader) {
			e = ha_fx(h, PGKEEL_HA_FX_SYNC_SLOTS);
			e->dcs_failed = true;
		}
	}
	return "DCS is not accessible";
}

static void ha_init(struct ha *h, const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	memset(h, 0, sizeof(*h));
	h->f = f;
	h->s = f->cfg;
	h->pg = f->pg;
	h->d = d;
	pgkeel_ha_state_init(&h->st);
	pgkeel_ha_state_copy(&h->st, f->state);
	h->is_leader = f->is_leader;
	h->is_primary = f->pg->is_primary;
	h->role = f->pg->role;
	h->pg_state = f->pg->state;
	h->task = f->task;
	h->paused = f->cfg->pause;
	h->c = f->cluster;
}

/* Hand the outcome over: a request, or the plan with its message. */
static void ha_finish(struct ha *h, const char *msg, bool requested)
{
	struct pgkeel_ha_decision *d = h->d;

	if (requested) {
		d->final = false;
		pgkeel_ha_state_clear(&h->st);
		return;
	}
	d->final = true;
	memset(&d->request, 0, sizeof(d->request));
	if (h->fatal) {
		struct pgkeel_ha_effect *e = ha_fx(h, PGKEEL_HA_FX_FATAL);

		e->exit_code = 1;
		e->message = h->fatal_message;
		msg = h->fatal_message;
	}
	if (msg == NULL)
		msg = "";
	d->plan.message = h->paused ? ha_printf(h, "PAUSE: %s", msg) : msg;
	pgkeel_ha_state_clear(&d->plan.state);
	d->plan.state = h->st; /* moved */
	pgkeel_ha_state_init(&h->st);
}

/* Start from an empty decision (keeping its allocations' owner). */
static void decision_reset(struct pgkeel_ha_decision *d)
{
	pgkeel_ha_decision_clear(d);
}

void pgkeel_ha_decide(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	struct ha h;
	const char *msg;

	decision_reset(d);
	ha_init(&h, f, d);
	msg = run_cycle(&h);
	if (h.stop && !h.dcs_error && !h.fatal && !h.pg_error) {
		ha_finish(&h, NULL, true);
		return;
	}
	if (h.pg_error)
		msg = "Error communicating with PostgreSQL. Will try again later";
	if (h.dcs_error) {
		h.stop = false;
		h.dcs_error = false;
		ha_note(&h, true, "Error communicating with DCS");
		msg = handle_dcs_error(&h);
		if (h.stop) {
			ha_finish(&h, NULL, true);
			return;
		}
		d->plan.dcs_failed = true;
		ha_finish(&h, msg, false);
		return;
	}
	/* finally */
	if (h.is_leader)
		ha_fx(&h, PGKEEL_HA_FX_FAILSAFE_ACTIVE)->on = false;
	ha_fx(&h, PGKEEL_HA_FX_TOUCH_MEMBER);
	ha_finish(&h, msg, false);
}

/* ------------------------------------------------------------------------ */
/* shutdown (§5.10) and the on-shutdown release (§5.7) */

void pgkeel_ha_shutdown(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d)
{
	struct ha h;
	const char *msg = NULL;

	decision_reset(d);
	ha_init(&h, f, d);
	if (h.task != NULL) /* [>=4.1] the running task is cancelled first */
		ha_fx(&h, PGKEEL_HA_FX_CANCEL_TASK)->task = h.task;
	if (h.paused) {
		ha_fx(&h, PGKEEL_HA_FX_WATCHDOG_DISABLE);
		msg = "Leader key is not deleted and Postgresql is not stopped due paused state";
	} else if (!h.st.join_aborted) {
		struct pgkeel_ha_effect *e = ha_fx(&h, PGKEEL_HA_FX_STOP);

		e->stop_mode = PGKEEL_PGCTL_FAST;
		if (h.s->primary_stop_timeout > 0 && h.c != NULL && ha_sync_mode(&h))
			e->timeout_s = h.s->primary_stop_timeout;
		e->while_not_sync_standby =
		    !h.is_leader && h.c != NULL && ha_sync_mode(&h) && !h.s->nosync;
		msg = "shutting down";
	}
	/* keep the message text Patroni logs; the plan's message is informational */
	h.paused = false;
	ha_finish(&h, msg, false);
}

void pgkeel_ha_on_shutdown(const struct pgkeel_ha_facts *f, bool demote, int64_t checkpoint_lsn,
                           int64_t prev_lsn, struct pgkeel_ha_decision *d)
{
	struct ha h;
	bool possible = false;
	const char *msg;

	decision_reset(d);
	ha_init(&h, f, d);
	h.paused = false;
	if (h.c != NULL) {
		possible = ha_is_failover_possible(&h, checkpoint_lsn, false);
		if (h.stop) {
			ha_finish(&h, NULL, true);
			return;
		}
	}
	if (demote) {
		if (possible) {
			ha_set_role(&h, PGKEEL_HA_ROLE_DEMOTED);
			ha_delete_leader(&h, prev_lsn, true);
			msg = "Leader key released";
		} else {
			msg = "no member received the shutdown checkpoint yet";
		}
	} else if (possible) {
		ha_fx(&h, PGKEEL_HA_FX_DELETE_LEADER)->lsn = prev_lsn;
		msg = "deleted the leader key at shutdown";
	} else {
		ha_fx(&h, PGKEEL_HA_FX_WRITE_LEADER_OPTIME)->lsn = prev_lsn;
		msg = "kept the leader key at shutdown, wrote the optime";
	}
	ha_finish(&h, msg, false);
}

/* ------------------------------------------------------------------------ */
/* operator requests (§5.3.11) */

/* A request's decision: the cluster view only (no lock bookkeeping), no pause prefix. */
static void request_init(struct ha *h, const struct pgkeel_ha_facts *f,
                         struct pgkeel_ha_decision *d)
{
	decision_reset(d);
	ha_init(h, f, d);
	h->paused = false;
	h->is_leader = false;
	if (h->c != NULL)
		ha_load_view(h, h->c);
}

void pgkeel_ha_restart_request(const struct pgkeel_ha_facts *f,
                               const struct pgkeel_ha_scheduled_restart *req,
                               struct pgkeel_ha_decision *d)
{
	const char *msg;
	struct ha h;

	request_init(&h, f, d);
	if (!restart_matches(&h, req))
		msg = "restart conditions are not satisfied";
	else if (h.task != NULL)
		msg = ha_printf(&h, "%s already in progress", h.task);
	else
		msg = start_restart(&h, req);
	ha_finish(&h, msg, false);
}

void pgkeel_ha_reinitialize_request(const struct pgkeel_ha_facts *f, bool force,
                                    struct pgkeel_ha_decision *d)
{
	struct pgkeel_ha_effect *e;
	const char *msg;
	struct ha h;

	request_init(&h, f, d);
	if (h.c == NULL || h.leader == NULL) {
		msg = "Cluster has no leader, can not reinitialize";
	} else if (ha_has_lock(&h)) {
		msg = "I am the leader, can not reinitialize";
	} else if (h.task != NULL && !force) {
		msg = ha_printf(&h, "%s already in progress", h.task);
	} else {
		bool from_leader;

		if (h.task != NULL)
			ha_fx(&h, PGKEEL_HA_FX_CANCEL_TASK)->task = h.task;
		e = ha_task(&h, PGKEEL_HA_FX_REINITIALIZE, "reinitialize");
		e->upstream = clone_member(&h, &from_leader);
		e->standby = ha_is_standby_cluster(&h);
		msg = "reinitialize started";
	}
	ha_finish(&h, msg, false);
}
