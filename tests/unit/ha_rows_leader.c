/*
 * Rows of a cluster that has a leader: process_healthy_cluster (spec
 * §5.3.6), enforce_primary_role (§5.3.4), the history key (§5.8), follow
 * (§5.3.2) with replicatefrom and standby clusters (§7.2), scheduled
 * restarts (§5.3.7, §5.3.11) and the manual failover / switchover on the
 * leader (§5.6, §5.5).
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "ha_test.h"
#include "util.h"

#define S(fn)     static void fn(struct world *w)
#define LEADING   "no action. I am (pg-1), the leader with the lock"
#define FOLLOWING "no action. I am (pg-1), a secondary, and following a leader (pg-2)"
#define LEAD_FX                                                                                    \
	"watchdog_keepalive ensure_checkpoint set_ssn(user) sync_slots failsafe_active(off) "      \
	"touch_member"
#define FOLLOW_FX "handle_parameter_change follow(pg-2,replica) sync_slots touch_member"
#define STANDBY_FOLLOWING                                                                          \
	"no action. I am (pg-1), a secondary, and following a standby leader (pg-2)"
#define DEMOTING  "manual failover: demoting myself"
#define DEMOTE_FX "watchdog_keepalive demote(graceful,async) failsafe_active(off) touch_member"
#define CLEANED_FX                                                                                 \
	"watchdog_keepalive set_failover({},cas) ensure_checkpoint set_ssn(user) sync_slots "      \
	"failsafe_active(off) touch_member"
#define RESTART_FX                                                                                 \
	"watchdog_keepalive ensure_checkpoint set_ssn(user) restart(300) clear_scheduled_restart " \
	"failsafe_active(off) touch_member"
#define CLEARED_RESTART_FX                                                                         \
	"watchdog_keepalive ensure_checkpoint set_ssn(user) clear_scheduled_restart sync_slots "   \
	"failsafe_active(off) touch_member"

S(s_leader_only)
{
	as_leader(w);
}

S(s_update_fails)
{
	as_leader(w);
	w->update = PGKEEL_HA_FAIL;
}

S(s_update_fails_paused)
{
	s_update_fails(w);
	w->s.pause = true;
}

S(s_holder_replica)
{
	as_leader(w);
	w->pg.is_primary = false;
	w->pg.role = PGKEEL_HA_ROLE_REPLICA;
}

S(s_holder_replica_update_fails)
{
	s_holder_replica(w);
	w->update = PGKEEL_HA_FAIL;
}

S(s_holder_promoting)
{
	s_holder_replica(w);
	w->pg.role = PGKEEL_HA_ROLE_PROMOTED;
}

S(s_holder_no_watchdog_primary)
{
	as_leader(w);
	w->wd_running = false;
	w->wd_activate = PGKEEL_HA_FAIL;
}

S(s_holder_pre_promote_failed)
{
	s_holder_replica(w);
	w->st.task_result = PGKEEL_HA_TASK_FALSE;
}

S(s_paused_holder_wait_promote)
{
	s_holder_replica(w);
	w->s.pause = true;
	w->c.failover = "{\"member\":\"pg-1\"}";
}

S(s_paused_holder_not_primary)
{
	s_holder_replica(w);
	w->s.pause = true;
}

S(s_paused_leader)
{
	as_leader(w);
	w->s.pause = true;
}

S(s_history_new)
{
	as_leader(w);
	w->pg.timeline = 2;
}

S(s_history_current)
{
	s_history_new(w);
	w->c.history =
	    "[[1,100,\"no recovery target specified\",\"2026-01-01T00:00:00+00:00\",\"pg-1\"]]";
}

S(s_history_no_leader_name)
{
	s_history_new(w);
	w->c.history = "[[1,100,\"no recovery target specified\"]]";
}

S(s_history_back_to_one)
{
	as_leader(w);
	w->c.history = "[[1,100,\"no recovery target specified\"]]";
}

S(s_checkpoint_done)
{
	as_leader(w);
	w->st.rewind = PGKEEL_HA_REWIND_CHECKPOINT;
}

/* ---- standby cluster ---- */

static void standby(struct world *w)
{
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
}

S(s_standby_leader)
{
	as_leader(w);
	standby(w);
	w->pg.is_primary = false;
	w->pg.role = PGKEEL_HA_ROLE_STANDBY_LEADER;
	find_m(&w->c, "pg-1")->role = "standby_leader";
}

S(s_standby_holder_replica)
{
	s_standby_leader(w);
	w->pg.role = PGKEEL_HA_ROLE_REPLICA;
}

S(s_standby_holder_primary)
{
	as_leader(w);
	standby(w);
}

S(s_standby_replica)
{
	standby(w);
	find_m(&w->c, "pg-2")->role = "standby_leader";
}

S(s_standby_primary_no_lock)
{
	s_standby_replica(w);
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
}

S(s_standby_leader_no_conn)
{
	s_standby_replica(w);
	find_m(&w->c, "pg-2")->no_conn = true;
}

S(s_standby_history_next)
{
	s_standby_replica(w);
	w->pg.standby_history_next = true;
	w->pg.can_rewind = true;
	w->rw[0] = PGKEEL_HA_CHECK_NEED;
}

S(s_standby_remote_restore_only)
{
	s_standby_leader(w);
	w->s.standby_cluster_has_conn = false;
}

/* ---- follow ---- */

S(s_replicatefrom)
{
	w->s.replicatefrom = "pg-3";
}

S(s_replicatefrom_me)
{
	w->s.replicatefrom = ME;
}

S(s_replicatefrom_unknown)
{
	w->s.replicatefrom = "pg-9";
}

S(s_standby_replicatefrom)
{
	s_standby_replica(w);
	w->s.replicatefrom = "pg-3";
}

S(s_primary_without_lock)
{
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
}

S(s_paused_primary_without_lock)
{
	s_primary_without_lock(w);
	w->s.pause = true;
}

S(s_paused_rewind_need)
{
	w->s.pause = true;
	w->st.rewind = PGKEEL_HA_REWIND_NEED;
	w->pg.can_rewind = true;
}

S(s_rewind_check_need)
{
	w->st.rewind = PGKEEL_HA_REWIND_CHECK;
	w->pg.can_rewind = true;
	w->rw[0] = PGKEEL_HA_CHECK_NEED;
}

S(s_rewind_check_not_need)
{
	s_rewind_check_need(w);
	w->rw[0] = PGKEEL_HA_CHECK_NOT_NEED;
}

S(s_rewind_check_starting)
{
	s_rewind_check_need(w);
	w->pg.state = PGKEEL_PGCTL_STARTING;
}

S(s_rewind_reinit)
{
	s_rewind_check_need(w);
	w->pg.can_rewind = false;
	w->s.remove_data_directory_on_diverged_timelines = true;
}

S(s_rewind_not_allowed)
{
	s_rewind_check_need(w);
	w->pg.can_rewind = false;
}

S(s_leader_without_member)
{
	w->c.leader = "pg-9";
}

static void ck_not_need(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_NOT_NEED);
}

static void ck_need(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_NEED);
}

static void ck_still_check(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_CHECK);
}

/* ---- scheduled restarts ---- */

static void restart_at(struct world *w, const char *when)
{
	w->have_sr = true;
	w->sr.schedule = when;
	w->sr.postmaster_start_time = w->pg.postmaster_start_time;
	w->sr.timeout_s = -1;
}

S(s_restart_now)
{
	as_leader(w);
	restart_at(w, "2026-01-01T00:00:00+00:00");
}

S(s_restart_later)
{
	as_leader(w);
	restart_at(w, "2026-01-01T00:01:00Z");
}

S(s_restart_soon)
{
	as_leader(w);
	restart_at(w, "2026-01-01T01:00:05+01:00");
}

S(s_restart_stale)
{
	as_leader(w);
	restart_at(w, "2025-12-31T23:59:40Z");
}

S(s_restart_just_late)
{
	as_leader(w);
	restart_at(w, "2025-12-31T23:59:50Z");
}

S(s_restart_bad_time)
{
	as_leader(w);
	restart_at(w, "tomorrow");
}

S(s_restart_naive_time)
{
	as_leader(w);
	restart_at(w, "2026-01-01T00:00:00");
}

S(s_restart_postmaster_changed)
{
	s_restart_now(w);
	w->sr.postmaster_start_time = "2025-12-31 00:00:00+00:00";
}

S(s_restart_role_mismatch)
{
	s_restart_now(w);
	w->sr.role = "replica";
}

S(s_restart_role_match)
{
	s_restart_now(w);
	w->sr.role = "master";
}

S(s_restart_version_old)
{
	s_restart_now(w);
	w->sr.postgres_version = "15.4";
}

S(s_restart_version_new)
{
	s_restart_now(w);
	w->sr.postgres_version = "15.5";
}

S(s_restart_version_bad)
{
	s_restart_now(w);
	w->sr.postgres_version = "15";
}

S(s_restart_pending_not)
{
	s_restart_now(w);
	w->sr.restart_pending = true;
}

S(s_restart_pending_yes)
{
	s_restart_pending_not(w);
	w->pg.pending_restart = true;
}

S(s_restart_timeout)
{
	s_restart_now(w);
	w->sr.timeout_s = 60;
}

S(s_restart_sync_replica)
{
	restart_at(w, "2026-01-01T00:00:00Z");
	w->s.synchronous_mode = true;
}

S(s_restart_paused)
{
	s_restart_now(w);
	w->s.pause = true;
}

static void ck_restart_state(struct run *r)
{
	const struct pgkeel_ha_plan *p = run_plan(r);

	assert_true(p->state.recovering);
	assert_int_equal(p->state.start_timeout_s, 300);
	assert_int_equal(p->wake_in_ms, -1);
}

static void ck_wake_5s(struct run *r)
{
	assert_int_equal(run_plan(r)->wake_in_ms, 5000);
}

static void ck_no_wake(struct run *r)
{
	assert_int_equal(run_plan(r)->wake_in_ms, -1);
	assert_false(run_plan(r)->state.recovering);
}

/* ---- §5.3.11 operator requests ---- */

static void restart_req(struct world *w)
{
	w->have_sr = true;
	w->sr.timeout_s = -1;
}

S(s_rest_restart)
{
	restart_req(w);
}

S(s_rest_restart_leader)
{
	as_leader(w);
	restart_req(w);
	w->s.synchronous_mode = true;
	w->sr.timeout_s = 30;
}

S(s_rest_restart_sync_replica)
{
	restart_req(w);
	w->s.synchronous_mode = true;
}

S(s_rest_restart_role)
{
	restart_req(w);
	w->sr.role = "master";
}

S(s_rest_restart_busy)
{
	restart_req(w);
	w->task = "bootstrap from leader 'pg-2'";
}

S(s_rest_reinit_no_leader)
{
	w->c.leader = NULL;
}

S(s_rest_reinit_busy)
{
	w->task = "restart";
}

S(s_rest_reinit_clonefrom)
{
	find_m(&w->c, "pg-3")->tags = "{\"clonefrom\":true}";
}

/* ---- manual failover / switchover on the leader ---- */

S(s_switchover)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\"}";
}

S(s_switchover_to_pg3)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"member\":\"pg-3\"}";
}

S(s_failover_to_pg3)
{
	as_leader(w);
	w->c.failover = "{\"member\":\"pg-3\"}";
}

S(s_switchover_to_unhealthy)
{
	s_switchover_to_pg3(w);
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_switchover_to_me)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"member\":\"pg-1\"}";
}

S(s_switchover_other_leader)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-2\"}";
}

S(s_switchover_later)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"scheduled_at\":\"2026-01-01T00:02:00+00:00\"}";
}

S(s_switchover_now)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"scheduled_at\":\"2026-01-01T00:00:00+00:00\"}";
}

S(s_switchover_stale)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"scheduled_at\":\"2025-12-31T23:59:00+00:00\"}";
}

S(s_switchover_bad_time)
{
	as_leader(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"scheduled_at\":\"soon\"}";
}

S(s_switchover_paused_no_candidate)
{
	s_switchover(w);
	w->s.pause = true;
}

S(s_switchover_paused_candidate)
{
	s_switchover_to_pg3(w);
	w->s.pause = true;
}

S(s_switchover_lagging)
{
	s_switchover_to_pg3(w);
	find_peer(w, "pg-3")->wal = 10;
}

S(s_switchover_timeline_behind)
{
	s_switchover_to_pg3(w);
	w->s.check_timeline = true;
	w->pg.timeline = 2;
	w->c.history = "[[1,100,\"no recovery target specified\",\"2026-01-01T00:00:00+00:00\","
	               "\"pg-1\"]]";
}

S(s_switchover_nofailover)
{
	s_switchover_to_pg3(w);
	find_m(&w->c, "pg-3")->tags = "{\"nofailover\":true}";
}

S(s_switchover_all_lagging)
{
	s_switchover(w);
	find_peer(w, "pg-2")->wal = 10;
	find_peer(w, "pg-3")->wal = 10;
}

/* the leader in a steady synchronous state: pg-2 is the confirmed sync standby */
static void sync_steady(struct world *w)
{
	as_leader(w);
	w->s.synchronous_mode = true;
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	w->pg.synchronous_standby_names = "\"pg-2\"";
	w->st.sync_ssn = strdup("\"pg-2\"");
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
}

S(s_sync_steady)
{
	sync_steady(w);
}

S(s_sync_switchover_async)
{
	sync_steady(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"member\":\"pg-3\"}";
}

S(s_sync_switchover_sync)
{
	sync_steady(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"member\":\"pg-2\"}";
}

S(s_sync_switchover_any)
{
	sync_steady(w);
	w->c.failover = "{\"leader\":\"pg-1\"}";
}

#define SYNC_STEADY_FX                                                                             \
	"watchdog_keepalive ensure_checkpoint sync_slots failsafe_active(off) touch_member"
#define SYNC_CLEANED_FX                                                                            \
	"watchdog_keepalive set_failover({},cas) ensure_checkpoint sync_slots "                    \
	"failsafe_active(off) "                                                                    \
	"touch_member"

const struct row ha_rows_leader[] = {
    /* §5.3.6 */
    {"leader: the lock update failed, demote", s_update_fails, "update(status)",
     "demote(immediate-nolock) touch_member",
     "demoted self because failed to update leader lock in DCS", NULL, NULL},
    {"leader: the lock update failed while paused", s_update_fails_paused, "update(status)",
     "watchdog_disable sync_slots touch_member",
     "PAUSE: continue to run as primary after failing to update leader lock in DCS", NULL, NULL},
    {"holder replica: the lock update failed", s_holder_replica_update_fails, "update(status)",
     "sync_slots touch_member", "not promoting because failed to update leader lock in DCS", NULL,
     NULL},
    {"holder replica: promote", s_holder_replica, "update(status)",
     "watchdog_keepalive set_ssn(user) failsafe_active(off) promote sync_slots(nocopy) "
     "failsafe_active(off) touch_member",
     "promoted self to leader because I had the session lock", NULL, NULL},
    {"holder: the promotion is running", s_holder_promoting, "update(status)",
     "watchdog_keepalive set_ssn(user) sync_slots failsafe_active(off) touch_member", LEADING, NULL,
     NULL},
    {"holder primary: the watchdog cannot be activated", s_holder_no_watchdog_primary,
     "update(status) watchdog",
     "watchdog_keepalive ensure_checkpoint demote(immediate) touch_member",
     "Demoting self because watchdog could not be activated", NULL, NULL},
    {"holder: pre_promote failed, release", s_holder_pre_promote_failed, "update(status)",
     "watchdog_keepalive delete_leader set_leader_valid(off) touch_member sync_slots "
     "touch_member",
     "Promotion cancelled because the pre-promote script failed", NULL, NULL},
    {"paused holder, failover to me: wait for the promotion", s_paused_holder_wait_promote, "",
     "watchdog_disable sync_slots failsafe_active(off) touch_member",
     "PAUSE: waiting to become primary after promote...", NULL, NULL},
    {"paused holder not running as primary: release", s_paused_holder_not_primary, "",
     "watchdog_disable delete_leader set_leader_valid(off) sync_slots touch_member",
     "PAUSE: removed leader lock because postgres is not running as primary", NULL, NULL},
    {"paused leader", s_paused_leader, "update(status)",
     "watchdog_disable watchdog_keepalive ensure_checkpoint set_ssn(user) sync_slots "
     "failsafe_active(off) touch_member",
     "PAUSE: " LEADING, NULL, NULL},
    {"post-promote checkpoint already done", s_checkpoint_done, "update(status)",
     "watchdog_keepalive set_ssn(user) sync_slots failsafe_active(off) touch_member", LEADING, NULL,
     NULL},

    /* §5.8 */
    {"history: a new timeline is written", s_history_new, "update(status)",
     "watchdog_keepalive ensure_checkpoint set_ssn(user) set_history(2) sync_slots "
     "failsafe_active(off) touch_member",
     LEADING, NULL, NULL},
    {"history: already current", s_history_current, "update(status)", LEAD_FX, LEADING, NULL, NULL},
    {"history: the last line lacks the new leader", s_history_no_leader_name, "update(status)",
     "watchdog_keepalive ensure_checkpoint set_ssn(user) set_history(2) sync_slots "
     "failsafe_active(off) touch_member",
     LEADING, NULL, NULL},
    {"history: back on timeline 1", s_history_back_to_one, "update(status)",
     "watchdog_keepalive ensure_checkpoint set_ssn(user) set_history(1) sync_slots "
     "failsafe_active(off) touch_member",
     LEADING, NULL, NULL},

    /* §7.2 */
    {"standby leader holds the lock", s_standby_leader, "update(status) reload",
     "watchdog_keepalive handle_parameter_change follow(remote,standby_leader) sync_slots "
     "failsafe_active(off) touch_member",
     "no action. I am (pg-1), the standby leader with the lock", NULL, NULL},
    {"standby holder as a replica becomes the standby leader", s_standby_holder_replica,
     "update(status) reload",
     "watchdog_keepalive handle_parameter_change follow(remote,standby_leader) sync_slots "
     "failsafe_active(off) touch_member",
     "promoted self to a standby leader because i had the session lock", NULL, NULL},
    {"standby cluster: a real primary with the lock is demoted", s_standby_holder_primary,
     "update(status) reload",
     "watchdog_keepalive ensure_checkpoint demote(immediate-nolock) touch_member",
     "cannot be a real primary in standby cluster", NULL, NULL},
    {"standby cluster: a replica follows the standby leader", s_standby_replica, "", FOLLOW_FX,
     STANDBY_FOLLOWING, NULL, NULL},
    {"standby cluster: a primary without the lock is demoted", s_standby_primary_no_lock, "",
     "demote(immediate-nolock) touch_member", "cannot be a real primary in a standby cluster", NULL,
     NULL},
    {"standby cluster: the leader has no conn_url", s_standby_leader_no_conn, "",
     "handle_parameter_change sync_slots touch_member",
     "continue following the old known standby leader", NULL, NULL},
    {"standby cluster: a history file for the next timeline", s_standby_history_next,
     "rewind_check(remote)", "rewind(remote) touch_member", "running pg_rewind from remote_member",
     NULL, NULL},
    {"standby cluster: a remote with restore_command only", s_standby_remote_restore_only,
     "update(status) reload",
     "watchdog_keepalive handle_parameter_change follow(remote,standby_leader) sync_slots "
     "failsafe_active(off) touch_member",
     "no action. I am (pg-1), the standby leader with the lock", NULL, NULL},

    /* §5.3.2 */
    {"replicatefrom: cascade from pg-3", s_replicatefrom, "",
     "handle_parameter_change follow(pg-3,replica) sync_slots touch_member", FOLLOWING, NULL, NULL},
    {"replicatefrom myself: follow the leader", s_replicatefrom_me, "", FOLLOW_FX, FOLLOWING, NULL,
     NULL},
    {"replicatefrom an unknown member: follow the leader", s_replicatefrom_unknown, "", FOLLOW_FX,
     FOLLOWING, NULL, NULL},
    {"standby cluster: replicatefrom pg-3", s_standby_replicatefrom, "",
     "handle_parameter_change follow(pg-3,replica) sync_slots touch_member", STANDBY_FOLLOWING,
     NULL, NULL},
    {"a primary without the lock demotes", s_primary_without_lock, "",
     "demote(immediate-nolock) touch_member",
     "demoting self because I do not have the lock and I was a leader", NULL, NULL},
    {"paused: a primary without the lock keeps running", s_paused_primary_without_lock, "",
     "watchdog_disable sync_slots touch_member", "PAUSE: continue to run as primary without lock",
     NULL, NULL},
    {"paused: a rewind that is needed runs", s_paused_rewind_need, "",
     "watchdog_disable rewind(pg-2) touch_member", "PAUSE: running pg_rewind from pg-2", NULL,
     NULL},
    {"rewind check says NEED: run pg_rewind", s_rewind_check_need, "rewind_check(pg-2)",
     "rewind(pg-2) touch_member", "running pg_rewind from pg-2", NULL, NULL},
    {"rewind check says NOT_NEED: follow", s_rewind_check_not_need, "rewind_check(pg-2)", FOLLOW_FX,
     FOLLOWING, ck_not_need, NULL},
    {"no rewind check while postgres starts", s_rewind_check_starting, "",
     "handle_parameter_change follow(pg-2,replica) touch_member", FOLLOWING, ck_still_check, NULL},
    {"diverged without pg_rewind: re-initialize", s_rewind_reinit, "rewind_check(pg-2)",
     "reinitialize(pg-2) touch_member", "reinitializing due to diverged timelines", NULL, NULL},
    {"diverged, neither rewind nor re-initialize allowed", s_rewind_not_allowed,
     "rewind_check(pg-2)", FOLLOW_FX, FOLLOWING, ck_need, NULL},
    {"the leader has no member key", s_leader_without_member, "",
     "handle_parameter_change follow(pg-9!,replica) sync_slots touch_member",
     "no action. I am (pg-1), a secondary, and following a leader (pg-9)", NULL, NULL},

    /* §5.3.7 */
    {"scheduled restart: due now", s_restart_now, "update(status)", RESTART_FX, "restart initiated",
     ck_restart_state, NULL},
    {"scheduled restart: later", s_restart_later, "update(status)", LEAD_FX, LEADING, ck_no_wake,
     NULL},
    {"scheduled restart: in 5 seconds, wake up then", s_restart_soon, "update(status)", LEAD_FX,
     LEADING, ck_wake_5s, NULL},
    {"scheduled restart: stale, dropped", s_restart_stale, "update(status)", CLEARED_RESTART_FX,
     LEADING, NULL, NULL},
    {"scheduled restart: a little late still runs", s_restart_just_late, "update(status)",
     RESTART_FX, "restart initiated", NULL, NULL},
    {"scheduled restart: a bad time, dropped", s_restart_bad_time, "update(status)",
     CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: no time zone, dropped", s_restart_naive_time, "update(status)",
     CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: postgres restarted meanwhile", s_restart_postmaster_changed,
     "update(status)", CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: role mismatch", s_restart_role_mismatch, "update(status)",
     CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: role master matches", s_restart_role_match, "update(status)", RESTART_FX,
     "restart initiated", NULL, NULL},
    {"scheduled restart: postgres version not newer", s_restart_version_old, "update(status)",
     CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: postgres version newer", s_restart_version_new, "update(status)",
     RESTART_FX, "restart initiated", NULL, NULL},
    {"scheduled restart: postgres version invalid", s_restart_version_bad, "update(status)",
     CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: pending restart asked, none pending", s_restart_pending_not,
     "update(status)", CLEARED_RESTART_FX, LEADING, NULL, NULL},
    {"scheduled restart: pending restart asked and pending", s_restart_pending_yes,
     "update(status)", RESTART_FX, "restart initiated", NULL, NULL},
    {"scheduled restart: its own timeout", s_restart_timeout, "update(status)",
     "watchdog_keepalive ensure_checkpoint set_ssn(user) restart(60) clear_scheduled_restart "
     "failsafe_active(off) touch_member",
     "restart initiated", NULL, NULL},
    {"scheduled restart: a sync replica leaves the sync set first", s_restart_sync_replica, "",
     "handle_parameter_change follow(pg-2,replica) restart(300,nosync) clear_scheduled_restart "
     "touch_member",
     "restart initiated", NULL, NULL},
    {"scheduled restart: not while paused", s_restart_paused, "update(status)",
     "watchdog_disable watchdog_keepalive ensure_checkpoint set_ssn(user) sync_slots "
     "failsafe_active(off) touch_member",
     "PAUSE: " LEADING, NULL, NULL},

    /* §5.3.11 */
    {"POST /restart on a replica", s_rest_restart, "", "restart(300)", "restart initiated", NULL,
     restart_entry},
    {"POST /restart on the sync leader with a timeout", s_rest_restart_leader, "", "restart(30)",
     "restart initiated", NULL, restart_entry},
    {"POST /restart on a sync replica leaves the sync set first", s_rest_restart_sync_replica, "",
     "restart(300,nosync)", "restart initiated", NULL, restart_entry},
    {"POST /restart for role master on a replica", s_rest_restart_role, "", "",
     "restart conditions are not satisfied", NULL, restart_entry},
    {"POST /restart while a task runs", s_rest_restart_busy, "", "",
     "bootstrap from leader 'pg-2' already in progress", NULL, restart_entry},
    {"POST /reinitialize on a replica", NULL, "", "reinitialize(pg-2)", "reinitialize started",
     NULL, reinit_entry},
    {"POST /reinitialize from a clonefrom replica", s_rest_reinit_clonefrom, "",
     "reinitialize(pg-3)", "reinitialize started", NULL, reinit_entry},
    {"POST /reinitialize without a leader", s_rest_reinit_no_leader, "", "",
     "Cluster has no leader, can not reinitialize", NULL, reinit_entry},
    {"POST /reinitialize on the leader", s_leader_only, "", "",
     "I am the leader, can not reinitialize", NULL, reinit_entry},
    {"POST /reinitialize while a task runs", s_rest_reinit_busy, "", "",
     "restart already in progress", NULL, reinit_entry},
    {"POST /reinitialize with force cancels the task", s_rest_reinit_busy, "",
     "cancel_task(restart) reinitialize(pg-2)", "reinitialize started", NULL, reinit_force_entry},

    /* §5.6 */
    {"switchover: demote gracefully", s_switchover, "update(status) probe(pg-2,pg-3)", DEMOTE_FX,
     DEMOTING, NULL, NULL},
    {"switchover to pg-3", s_switchover_to_pg3, "update(status) probe(pg-3)", DEMOTE_FX, DEMOTING,
     NULL, NULL},
    {"failover to pg-3", s_failover_to_pg3, "update(status) probe(pg-3)", DEMOTE_FX, DEMOTING, NULL,
     NULL},
    {"switchover to an unhealthy member: the key is cleaned", s_switchover_to_unhealthy,
     "update(status) probe(pg-3)", CLEANED_FX, LEADING, NULL, NULL},
    {"switchover to me: the key is cleaned", s_switchover_to_me, "update(status)", CLEANED_FX,
     LEADING, NULL, NULL},
    {"switchover from another leader: the key is cleaned", s_switchover_other_leader,
     "update(status)", CLEANED_FX, LEADING, NULL, NULL},
    {"scheduled switchover later: nothing yet", s_switchover_later, "update(status)", LEAD_FX,
     LEADING, NULL, NULL},
    {"scheduled switchover now", s_switchover_now, "update(status) probe(pg-2,pg-3)", DEMOTE_FX,
     DEMOTING, NULL, NULL},
    {"scheduled switchover stale: the key is cleaned", s_switchover_stale, "update(status)",
     CLEANED_FX, LEADING, NULL, NULL},
    {"scheduled switchover with a bad time: the key is cleaned", s_switchover_bad_time,
     "update(status)", CLEANED_FX, LEADING, NULL, NULL},
    {"paused switchover without a candidate: the key is cleaned", s_switchover_paused_no_candidate,
     "update(status)", "watchdog_disable " CLEANED_FX, "PAUSE: " LEADING, NULL, NULL},
    {"paused switchover to pg-3", s_switchover_paused_candidate, "update(status) probe(pg-3)",
     "watchdog_disable " DEMOTE_FX, "PAUSE: " DEMOTING, NULL, NULL},
    {"switchover to a lagging member: the key is cleaned", s_switchover_lagging,
     "update(status) probe(pg-3)", CLEANED_FX, LEADING, NULL, NULL},
    {"switchover, check_timeline: the candidate is behind", s_switchover_timeline_behind,
     "update(status) probe(pg-3)", CLEANED_FX, LEADING, NULL, NULL},
    {"switchover to a nofailover member: the key is cleaned", s_switchover_nofailover,
     "update(status)", CLEANED_FX, LEADING, NULL, NULL},
    {"switchover, every member lags: the key is cleaned", s_switchover_all_lagging,
     "update(status) probe(pg-2,pg-3)", CLEANED_FX, LEADING, NULL, NULL},
    {"sync mode: the steady state", s_sync_steady, "update(status)", SYNC_STEADY_FX, LEADING, NULL,
     NULL},
    {"sync mode: switchover to an async member is refused", s_sync_switchover_async,
     "update(status)", SYNC_CLEANED_FX, LEADING, NULL, NULL},
    {"sync mode: switchover to the sync standby", s_sync_switchover_sync,
     "update(status) probe(pg-2)", DEMOTE_FX, DEMOTING, NULL, NULL},
    {"sync mode: switchover only considers sync standbys", s_sync_switchover_any,
     "update(status) probe(pg-2)", DEMOTE_FX, DEMOTING, NULL, NULL},
};

const size_t ha_rows_leader_n = PGKEEL_ARRAY_LEN(ha_rows_leader);
