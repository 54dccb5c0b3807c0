/*
 * Rows of the HA cycle (spec §5.2 rows 0-16, §5.3.1 bootstrap, §5.3.3
 * recover, §5.3.8 long actions, §5.3.9 starting, §5.3.10 post_bootstrap,
 * §5.9 DCS loss, §5.10 shutdown).  The default world: pg-1 (me) is a
 * streaming replica of the leader pg-2; see test_ha.c.
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

#define S(fn)      static void fn(struct world *w)
#define TASK_CRASH "doing crash recovery in a single user mode"
#define FOLLOWING  "no action. I am (pg-1), a secondary, and following a leader (pg-2)"
#define LEADING    "no action. I am (pg-1), the leader with the lock"
#define FOLLOW_FX  "handle_parameter_change follow(pg-2,replica) sync_slots touch_member"
#define LEAD_FX                                                                                    \
	"watchdog_keepalive ensure_checkpoint set_ssn(user) sync_slots failsafe_active(off) "      \
	"touch_member"
#define FSKEY                                                                                      \
	"{\"pg-1\":\"http://127.0.0.1:8008/patroni\",\"pg-2\":\"http://127.0.0.2:8008/patroni\","  \
	"\"pg-3\":\"http://127.0.0.3:8008/patroni\"}"

/* ---- checks on the plan ---- */

static void ck_dcs_failed(struct run *r)
{
	assert_true(run_plan(r)->dcs_failed);
}

static void ck_not_dcs_failed(struct run *r)
{
	assert_false(run_plan(r)->dcs_failed);
}

static void ck_was_paused(struct run *r)
{
	assert_true(run_plan(r)->state.was_paused);
}

static void ck_unpaused(struct run *r)
{
	assert_false(run_plan(r)->state.was_paused);
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_INITIAL);
}

static void ck_recovering(struct run *r)
{
	assert_true(run_plan(r)->state.recovering);
}

static void ck_recovered(struct run *r)
{
	const struct pgkeel_ha_state *st = &run_plan(r)->state;

	assert_false(st->recovering);
	assert_int_equal(st->crash_recovery_started_ms, 0);
	assert_int_equal(st->rewind, PGKEEL_HA_REWIND_INITIAL);
}

static void ck_rewind_failed(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_FAILED);
}

static void ck_rewind_check(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_CHECK);
}

static void ck_rewind_need(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_NEED);
}

static void ck_bootstrapping(struct run *r)
{
	assert_true(run_plan(r)->state.bootstrapping);
	assert_int_equal(run_plan(r)->state.task_result, PGKEEL_HA_TASK_NONE);
}

static void ck_bootstrapped(struct run *r)
{
	assert_false(run_plan(r)->state.bootstrapping);
}

static void ck_join_aborted(struct run *r)
{
	const struct pgkeel_ha_plan *p = run_plan(r);

	assert_true(p->state.join_aborted);
	assert_int_equal(p->effects[p->n_effects - 1].exit_code, 1);
}

static void ck_crash_started(struct run *r)
{
	assert_int_equal(run_plan(r)->state.crash_recovery_started_ms, NOW_MS);
}

static void ck_clone_task(struct run *r)
{
	const struct pgkeel_ha_plan *p = run_plan(r);

	for (size_t i = 0; i < p->n_effects; i++)
		if (p->effects[i].kind == PGKEEL_HA_FX_CLONE) {
			assert_string_equal(p->effects[i].task, "bootstrap from replica 'pg-3'");
			return;
		}
	fail_msg("no clone");
}

/* ---- the steady states ---- */

S(s_leader)
{
	as_leader(w);
}

/* ---- §5.9 DCS loss ---- */

S(s_dcs_replica)
{
	w->dcs_failed = true;
}

S(s_dcs_primary)
{
	as_leader(w);
	w->dcs_failed = true;
}

S(s_dcs_failsafe)
{
	as_leader(w);
	w->dcs_failed = true;
	w->s.failsafe_mode = true;
	w->c.failsafe = FSKEY;
}

S(s_dcs_failsafe_refused)
{
	s_dcs_failsafe(w);
	w->fs_check = PGKEEL_HA_FAIL;
}

S(s_dcs_failsafe_not_me)
{
	s_dcs_failsafe(w);
	w->c.failsafe = "{\"pg-2\":\"http://127.0.0.2:8008/patroni\"}";
}

S(s_dcs_failsafe_single)
{
	s_dcs_failsafe(w);
	w->c.failsafe = "{\"pg-1\":\"http://127.0.0.1:8008/patroni\"}";
}

S(s_dcs_failsafe_no_key)
{
	s_dcs_failsafe(w);
	w->c.failsafe = NULL;
}

S(s_dcs_paused)
{
	s_dcs_primary(w);
	w->s.pause = true;
}

S(s_dcs_stopped)
{
	s_dcs_primary(w);
	w->pg.running = false;
}

S(s_dcs_replica_failsafe)
{
	w->dcs_failed = true;
	w->s.failsafe_mode = true;
}

S(s_dcs_update_error)
{
	as_leader(w);
	w->update = PGKEEL_HA_ERROR;
}

S(s_dcs_reload_fails)
{
	no_leader(w);
	w->acquire = PGKEEL_HA_FAIL;
	w->reload_fails = true;
}

S(s_dcs_acquire_error)
{
	no_leader(w);
	w->acquire = PGKEEL_HA_ERROR;
}

/* ---- rows 1-4 ---- */

S(s_paused_replica)
{
	w->s.pause = true;
}

S(s_unpaused)
{
	w->st.was_paused = true;
	w->st.rewind = PGKEEL_HA_REWIND_NOT_NEED;
}

S(s_no_member_key)
{
	w->c.m[0] = member("pg-2", "master");
	w->c.m[1] = member("pg-3", "replica");
	w->c.n = 2;
}

S(s_leader_no_initialize)
{
	as_leader(w);
	w->c.initialize = NULL;
}

S(s_leader_initialize_empty)
{
	as_leader(w);
	w->c.initialize = "";
}

S(s_leader_no_config)
{
	as_leader(w);
	w->c.config = NULL;
}

S(s_leader_empty_config)
{
	as_leader(w);
	w->c.config = "{}";
}

S(s_leader_bad_config)
{
	as_leader(w);
	w->c.config = "not json";
}

/* ---- row 5: a task is running ---- */

S(s_task_leader)
{
	as_leader(w);
	w->task = "restart";
}

S(s_task_crash_timeout)
{
	as_leader(w);
	w->pg.is_primary = false;
	w->task = TASK_CRASH;
	w->st.crash_recovery_started_ms = NOW_MS - 301000;
}

S(s_task_crash_timeout_alone)
{
	s_task_crash_timeout(w);
	find_peer(w, "pg-2")->unreachable = true;
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_task_crash_within)
{
	as_leader(w);
	w->pg.is_primary = false;
	w->task = TASK_CRASH;
	w->st.crash_recovery_started_ms = NOW_MS - 100000;
}

S(s_task_promote_lost)
{
	w->task = "promote";
}

S(s_task_promote_late)
{
	w->task = "promote";
	w->st.task_result = PGKEEL_HA_TASK_TRUE;
	w->pg.role = PGKEEL_HA_ROLE_PROMOTED;
}

S(s_task_primary_no_lock)
{
	w->task = "restart";
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->pg.is_primary = true;
}

S(s_task_start_primary_no_lock)
{
	s_task_primary_no_lock(w);
	w->task = "starting primary after failure";
}

S(s_task_holder_update_fails)
{
	s_task_leader(w);
	w->update = PGKEEL_HA_FAIL;
}

S(s_task_clone)
{
	w->task = "bootstrap from leader 'pg-2'";
}

S(s_task_bootstrapping)
{
	w->task = "bootstrap";
	w->st.bootstrapping = true;
	w->c.leader = NULL;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
}

S(s_task_paused_primary)
{
	s_task_primary_no_lock(w);
	w->s.pause = true;
}

/* ---- row 6: starting ---- */

S(s_starting_replica)
{
	w->pg.state = PGKEEL_PGCTL_STARTING;
}

S(s_starting_holder_lost)
{
	as_leader(w);
	w->pg.is_primary = false;
	w->pg.state = PGKEEL_PGCTL_STARTING;
	w->update = PGKEEL_HA_FAIL;
}

S(s_starting_holder_timeout)
{
	as_leader(w);
	w->pg.is_primary = false;
	w->pg.state = PGKEEL_PGCTL_STARTING;
	w->pg.state_since_ms = NOW_MS - 301000;
}

S(s_starting_holder_timeout_alone)
{
	s_starting_holder_timeout(w);
	find_peer(w, "pg-2")->unreachable = true;
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_starting_holder)
{
	as_leader(w);
	w->pg.is_primary = false;
	w->pg.state = PGKEEL_PGCTL_STARTING;
}

S(s_starting_holder_restart_timeout)
{
	s_starting_holder(w);
	w->st.start_timeout_s = 60;
}

S(s_starting_holder_switchover)
{
	s_starting_holder(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"member\":\"pg-3\"}";
}

S(s_starting_paused)
{
	w->s.pause = true;
	w->pg.state = PGKEEL_PGCTL_STARTING;
}

/* ---- row 7: post_bootstrap ---- */

S(s_boot_common)
{
	w->st.bootstrapping = true;
	w->c.leader = NULL;
	w->c.initialize = "";
	w->pg.role = PGKEEL_HA_ROLE_UNINITIALIZED;
}

S(s_boot_pg_died)
{
	s_boot_common(w);
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_START_FAILED;
}

S(s_boot_post_failed)
{
	s_boot_common(w);
	w->pg.is_primary = true;
	w->st.task_result = PGKEEL_HA_TASK_FALSE;
}

S(s_boot_in_recovery)
{
	s_boot_common(w);
}

S(s_boot_run_post)
{
	s_boot_common(w);
	w->pg.is_primary = true;
}

S(s_boot_done)
{
	s_boot_common(w);
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->st.task_result = PGKEEL_HA_TASK_TRUE;
}

S(s_boot_done_no_watchdog)
{
	s_boot_done(w);
	w->wd_activate = PGKEEL_HA_FAIL;
}

S(s_boot_done_strict)
{
	s_boot_done(w);
	w->s.synchronous_mode = true;
	w->s.synchronous_mode_strict = true;
}

S(s_boot_done_sync)
{
	s_boot_done(w);
	w->s.synchronous_mode = true;
}

S(s_boot_done_standby)
{
	s_boot_done(w);
	w->s.standby_cluster = true;
	w->pg.is_primary = false;
	w->pg.role = PGKEEL_HA_ROLE_STANDBY_LEADER;
	w->c.initialize = NULL;
}

/* ---- row 8: the start issued last cycle ---- */

S(s_rec_holder_failed)
{
	as_leader(w);
	w->st.recovering = true;
	w->pg.running = false;
	w->pg.is_primary = false;
	w->pg.state = PGKEEL_PGCTL_START_FAILED;
}

S(s_rec_replica_failed)
{
	w->st.recovering = true;
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_START_FAILED;
}

S(s_rec_started)
{
	w->st.recovering = true;
	w->st.rewind = PGKEEL_HA_REWIND_SUCCESS;
	w->st.crash_recovery_started_ms = NOW_MS - 5000;
}

S(s_rec_rewind_failed)
{
	w->st.recovering = true;
	w->st.rewind = PGKEEL_HA_REWIND_FAILED;
}

S(s_rec_rewind_pending)
{
	w->st.recovering = true;
	w->st.rewind = PGKEEL_HA_REWIND_CHECK;
	w->pg.can_rewind = true;
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_STOPPED;
	w->pg.controldata_state = "shut down in recovery";
	w->rw[0] = PGKEEL_HA_CHECK_NEED;
}

/* ---- rows 9-12: the data directory ---- */

S(s_empty)
{
	w->c.leader = NULL;
	w->c.initialize = NULL;
	w->pg.data_dir_empty = true;
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_STOPPED;
	w->pg.role = PGKEEL_HA_ROLE_UNINITIALIZED;
	w->pg.sysid = NULL;
}

S(s_empty_race_lost)
{
	s_empty(w);
	w->init_race = PGKEEL_HA_FAIL;
}

S(s_empty_race_error)
{
	s_empty(w);
	w->init_race = PGKEEL_HA_ERROR;
}

S(s_empty_with_leader)
{
	s_empty(w);
	w->c.leader = "pg-2";
	w->c.initialize = SYSID;
}

S(s_empty_clonefrom)
{
	s_empty_with_leader(w);
	find_m(&w->c, "pg-3")->tags = "{\"clonefrom\":true}";
}

S(s_empty_clonefrom_stopped)
{
	s_empty_clonefrom(w);
	find_m(&w->c, "pg-3")->state = "stopped";
}

S(s_empty_nofailover)
{
	s_empty(w);
	w->s.nofailover = true;
}

S(s_empty_no_bootstrap)
{
	s_empty(w);
	w->s.has_bootstrap_section = false;
}

S(s_empty_initialized)
{
	s_empty(w);
	w->c.initialize = SYSID;
}

S(s_empty_no_leader_clone)
{
	s_empty_initialized(w);
	w->s.clone_without_leader = true;
}

S(s_empty_concurrent)
{
	s_empty(w);
	w->c.initialize = "";
	w->s.clone_without_leader = true;
}

S(s_empty_standby)
{
	s_empty(w);
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
}

S(s_empty_standby_wait)
{
	s_empty_standby(w);
	w->c.initialize = SYSID;
}

S(s_empty_standby_clone)
{
	s_empty_standby(w);
	w->c.leader = "pg-2";
	w->c.initialize = SYSID;
}

S(s_empty_holder)
{
	as_leader(w);
	w->pg.data_dir_empty = true;
	w->pg.running = false;
	w->pg.is_primary = false;
}

S(s_noaccess_holder)
{
	as_leader(w);
	w->pg.data_dir_error = "[Errno 13] Permission denied: '/data'";
}

S(s_noaccess)
{
	w->pg.data_dir_error = "[Errno 13] Permission denied: '/data'";
}

S(s_empty_paused)
{
	w->s.pause = true;
	w->pg.data_dir_empty = true;
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_STOPPED;
}

S(s_empty_paused_state)
{
	s_empty_paused(w);
	w->pg.state = PGKEEL_PGCTL_RUNNING;
}

S(s_sysid_invalid)
{
	w->pg.sysid = "123";
}

S(s_sysid_mismatch)
{
	w->c.initialize = OTHER_SYSID;
}

S(s_sysid_mismatch_paused_holder)
{
	as_leader(w);
	w->s.pause = true;
	w->c.initialize = OTHER_SYSID;
}

S(s_sysid_mismatch_paused)
{
	w->s.pause = true;
	w->c.initialize = OTHER_SYSID;
}

S(s_no_init_replica_first)
{
	w->c.leader = NULL;
	w->c.initialize = NULL;
	w->pg.cb_called = false;
}

S(s_no_init_primary_first)
{
	w->c.leader = NULL;
	w->c.initialize = NULL;
	w->pg.cb_called = false;
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->reload = w->c;
	w->reload.leader = ME;
	w->reload_custom = true;
}

S(s_no_init_locked_first)
{
	w->c.initialize = NULL;
	w->pg.cb_called = false;
}

S(s_init_empty_primary_first)
{
	s_no_init_primary_first(w);
	w->c.initialize = "";
	w->reload.initialize = "";
}

S(s_no_init_later)
{
	w->c.leader = NULL;
	w->c.initialize = NULL;
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->reload = w->c;
	w->reload.leader = ME;
	w->reload_custom = true;
	w->wd_running = true;
}

/* ---- row 13 and recover ---- */

S(s_stopped_paused_holder)
{
	as_leader(w);
	w->s.pause = true;
	w->pg.running = false;
	w->pg.is_primary = false;
}

S(s_stopped_paused)
{
	w->s.pause = true;
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_STOPPED;
}

S(s_stopped_paused_rewind)
{
	s_stopped_paused(w);
	w->st.rewind = PGKEEL_HA_REWIND_NEED;
	w->pg.can_rewind = true;
	w->pg.controldata_state = "shut down";
}

S(s_stopped_paused_rewind_failed)
{
	s_stopped_paused_rewind(w);
	w->st.rewind = PGKEEL_HA_REWIND_FAILED;
}

S(s_crashed_replica)
{
	w->pg.running = false;
	w->pg.controldata_state = "shut down in recovery";
}

S(s_crashed_primary)
{
	as_leader(w);
	w->pg.running = false;
	w->pg.is_primary = false;
	w->pg.controldata_state = "in production";
}

S(s_crashed_primary_zero)
{
	s_crashed_primary(w);
	w->s.primary_start_timeout = 0;
}

S(s_crashed_primary_zero_alone)
{
	s_crashed_primary_zero(w);
	find_peer(w, "pg-2")->unreachable = true;
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_crashed_primary_recovery_conf)
{
	s_crashed_primary(w);
	w->pg.recovery_conf = true;
}

S(s_crashed_primary_update_fails)
{
	s_crashed_primary(w);
	w->update = PGKEEL_HA_FAIL;
}

S(s_crashed_primary_can_rewind)
{
	s_crashed_primary_recovery_conf(w);
	w->pg.can_rewind = true;
}

S(s_crash_recovery_replica)
{
	w->pg.running = false;
	w->pg.controldata_state = "in production";
	w->pg.can_rewind = true;
}

S(s_crash_recovery_again)
{
	s_crash_recovery_replica(w);
	w->st.crash_recovery_started_ms = NOW_MS - 1000;
}

S(s_crash_backup_label)
{
	s_crash_recovery_replica(w);
	w->pg.backup_label = true;
}

S(s_crash_unlocked)
{
	w->c.leader = NULL;
	w->pg.running = false;
	w->pg.controldata_state = "shutting down";
}

S(s_stopped_reinit)
{
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_STOPPED;
	w->pg.controldata_state = "shut down in recovery";
	w->s.remove_data_directory_on_diverged_timelines = true;
	w->rw[0] = PGKEEL_HA_CHECK_NEED;
}

S(s_stopped_rewind_archive)
{
	w->pg.running = false;
	w->pg.state = PGKEEL_PGCTL_STOPPED;
	w->pg.controldata_state = "in archive recovery";
	w->pg.can_rewind = true;
	w->rw[0] = PGKEEL_HA_CHECK_NEED;
}

S(s_stopped_rewind_unknown)
{
	s_stopped_rewind_archive(w);
	w->pg.controldata_state = "shut down in recovery";
	w->rw[0] = PGKEEL_HA_CHECK_UNKNOWN;
}

S(s_stopped_rewind_leader_no_conn)
{
	s_stopped_rewind_archive(w);
	w->pg.controldata_state = "shut down in recovery";
	find_m(&w->c, "pg-2")->no_conn = true;
}

S(s_standby_holder_crashed)
{
	as_leader(w);
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
	find_m(&w->c, "pg-1")->role = "standby_leader";
	w->pg.role = PGKEEL_HA_ROLE_STANDBY_LEADER;
	w->pg.is_primary = false;
	w->pg.running = false;
	w->pg.controldata_state = "shut down in recovery";
}

S(s_standby_unhealthy)
{
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
	w->c.leader = NULL;
	w->pg.running = false;
	w->pg.controldata_state = "shut down in recovery";
}

S(s_crashed_sync)
{
	s_crashed_replica(w);
	w->s.synchronous_mode = true;
}

/* ---- row 16 and errors ---- */

S(s_first_cycle_replica)
{
	w->pg.cb_called = false;
	w->pg.can_rewind = true;
}

S(s_failsafe_active_replica)
{
	w->failsafe_active = true;
}

S(s_query_failed)
{
	w->pg.query_failed = true;
}

S(s_query_failed_leader)
{
	as_leader(w);
	w->pg.query_failed = true;
}

/* ---- §5.10 shutdown ---- */

S(s_shutdown_paused)
{
	as_leader(w);
	w->s.pause = true;
}

S(s_shutdown_sync_replica)
{
	w->s.synchronous_mode = true;
}

S(s_shutdown_sync_replica_nosync)
{
	s_shutdown_sync_replica(w);
	w->s.nosync = true;
}

S(s_shutdown_sync_primary)
{
	as_leader(w);
	w->s.synchronous_mode = true;
	w->s.primary_stop_timeout = 20;
}

S(s_shutdown_join_aborted)
{
	w->st.join_aborted = true;
}

S(s_shutdown_task)
{
	w->task = "bootstrap from leader 'pg-2'";
}

S(s_on_shutdown_received)
{
	as_leader(w);
	find_peer(w, "pg-2")->wal = 67108904;
}

S(s_on_shutdown_behind)
{
	as_leader(w);
}

const struct row ha_rows_cycle[] = {
    {"replica follows the leader", NULL, "", FOLLOW_FX, FOLLOWING, ck_not_dcs_failed, NULL},
    {"leader renews the lock", s_leader, "update(status)", LEAD_FX, LEADING, NULL, NULL},

    /* §5.9 */
    {"dcs lost: a replica waits", s_dcs_replica, "", "", "DCS is not accessible", ck_dcs_failed,
     NULL},
    {"dcs lost: the primary demotes offline", s_dcs_primary, "",
     "failsafe_active(off) demote(offline)",
     "demoted self because DCS is not accessible and I was a leader", ck_dcs_failed, NULL},
    {"dcs lost, failsafe: every member accepted", s_dcs_failsafe, "failsafe",
     "set_leader_valid(on) failsafe_active(on) watchdog_keepalive sync_slots(dcs)",
     "continue to run as a leader because failsafe mode is enabled and all members are "
     "accessible",
     ck_dcs_failed, NULL},
    {"dcs lost, failsafe: a member refused", s_dcs_failsafe_refused, "failsafe",
     "failsafe_active(off) demote(offline)",
     "demoted self because DCS is not accessible and I was a leader", NULL, NULL},
    {"dcs lost, failsafe: the key does not name me", s_dcs_failsafe_not_me, "",
     "failsafe_active(off) demote(offline)",
     "demoted self because DCS is not accessible and I was a leader", NULL, NULL},
    {"dcs lost, failsafe: a single node", s_dcs_failsafe_single, "",
     "set_leader_valid(on) failsafe_active(on) watchdog_keepalive sync_slots(dcs)",
     "continue to run as a leader because failsafe mode is enabled and all members are "
     "accessible",
     NULL, NULL},
    {"dcs lost, failsafe: no failsafe key", s_dcs_failsafe_no_key, "",
     "failsafe_active(off) demote(offline)",
     "demoted self because DCS is not accessible and I was a leader", NULL, NULL},
    {"dcs lost while paused", s_dcs_paused, "", "", "PAUSE: DCS is not accessible", NULL, NULL},
    {"dcs lost, postgres not running", s_dcs_stopped, "", "", "DCS is not accessible", NULL, NULL},
    {"dcs lost, failsafe replica syncs slots", s_dcs_replica_failsafe, "", "sync_slots(dcs)",
     "DCS is not accessible", NULL, NULL},
    {"dcs error while renewing the lock", s_dcs_update_error, "update(status)",
     "failsafe_active(off) demote(offline)",
     "demoted self because DCS is not accessible and I was a leader", ck_dcs_failed, NULL},
    {"dcs error on a reload", s_dcs_reload_fails, "probe(pg-2,pg-3) acquire reload", "",
     "DCS is not accessible", ck_dcs_failed, NULL},
    {"dcs error while acquiring the lock", s_dcs_acquire_error, "probe(pg-2,pg-3) acquire", "",
     "DCS is not accessible", ck_dcs_failed, NULL},

    /* rows 1-4 */
    {"paused replica", s_paused_replica, "",
     "watchdog_disable follow(pg-2,replica) sync_slots touch_member", "PAUSE: " FOLLOWING,
     ck_was_paused, NULL},
    {"pause ends: sanity checks, rewind state reset", s_unpaused, "", "sanity_checks " FOLLOW_FX,
     FOLLOWING, ck_unpaused, NULL},
    {"my member key is missing", s_no_member_key, "", "touch_member " FOLLOW_FX, FOLLOWING, NULL,
     NULL},
    {"holder writes a missing initialize key", s_leader_no_initialize, "update(status)",
     "initialize(new," SYSID ") " LEAD_FX, LEADING, NULL, NULL},
    {"holder overwrites an empty initialize key", s_leader_initialize_empty, "update(status)",
     "initialize(set," SYSID ") " LEAD_FX, LEADING, NULL, NULL},
    {"holder writes a missing config", s_leader_no_config, "update(status)", "set_config " LEAD_FX,
     LEADING, NULL, NULL},
    {"holder writes an empty config", s_leader_empty_config, "update(status)",
     "set_config " LEAD_FX, LEADING, NULL, NULL},
    {"holder writes over a malformed config", s_leader_bad_config, "update(status)",
     "set_config " LEAD_FX, LEADING, NULL, NULL},

    /* row 5 */
    {"task: the holder renews during a restart", s_task_leader, "update",
     "watchdog_keepalive failsafe_active(off) touch_member", "updated leader lock during restart",
     NULL, NULL},
    {"task: crash recovery too long, fail over", s_task_crash_timeout, "update probe(pg-2,pg-3)",
     "watchdog_keepalive cancel_task(" TASK_CRASH ") demote(immediate) touch_member",
     "terminated crash recovery because of startup timeout", NULL, NULL},
    {"task: crash recovery too long, nobody to fail over to", s_task_crash_timeout_alone,
     "update probe(pg-2,pg-3)", "watchdog_keepalive failsafe_active(off) touch_member",
     "updated leader lock during " TASK_CRASH, NULL, NULL},
    {"task: crash recovery within the timeout", s_task_crash_within, "update",
     "watchdog_keepalive failsafe_active(off) touch_member",
     "updated leader lock during " TASK_CRASH, NULL, NULL},
    {"task: lost the lock before promote", s_task_promote_lost, "",
     "cancel_task(promote) touch_member", "lost leader before promote", NULL, NULL},
    {"task: promote past pre_promote", s_task_promote_late, "", "touch_member",
     "promote in progress", NULL, NULL},
    {"task: a primary without the lock during a restart", s_task_primary_no_lock, "",
     "cancel_task(restart) demote(immediate-nolock) touch_member",
     "lost leader lock during restart", NULL, NULL},
    {"task: a primary without the lock while starting as primary", s_task_start_primary_no_lock, "",
     "cancel_task(starting primary after failure) demote(immediate-nolock) touch_member",
     "lost leader lock during starting primary after failure", NULL, NULL},
    {"task: the holder fails to renew", s_task_holder_update_fails, "update",
     "cancel_task(restart) demote(immediate-nolock) touch_member",
     "lost leader lock during restart", NULL, NULL},
    {"task: a replica clones", s_task_clone, "", "touch_member",
     "bootstrap from leader 'pg-2' in progress", NULL, NULL},
    {"task: bootstrapping without the lock", s_task_bootstrapping, "", "touch_member",
     "bootstrap in progress", NULL, NULL},
    {"task: paused primary without the lock", s_task_paused_primary, "",
     "watchdog_disable touch_member", "PAUSE: restart in progress", NULL, NULL},

    /* row 6 */
    {"starting: a replica", s_starting_replica, "",
     "handle_parameter_change follow(pg-2,replica) touch_member", FOLLOWING, NULL, NULL},
    {"starting: the holder lost the lock", s_starting_holder_lost, "update",
     "demote(immediate-nolock) touch_member",
     "stopped PostgreSQL while starting up because leader key was lost", NULL, NULL},
    {"starting: the holder timed out, fail over", s_starting_holder_timeout,
     "update probe(pg-2,pg-3)", "watchdog_keepalive demote(immediate) touch_member",
     "stopped PostgreSQL because of startup timeout", NULL, NULL},
    {"starting: the holder timed out, nobody healthy", s_starting_holder_timeout_alone,
     "update probe(pg-2,pg-3)", "watchdog_keepalive failsafe_active(off) touch_member",
     "primary start has timed out, but continuing to wait because failover is not possible", NULL,
     NULL},
    {"starting: the holder within primary_start_timeout", s_starting_holder, "update",
     "watchdog_keepalive failsafe_active(off) touch_member",
     "PostgreSQL is still starting up, 290 seconds until timeout", NULL, NULL},
    {"starting: the holder within the restart's timeout", s_starting_holder_restart_timeout,
     "update", "watchdog_keepalive failsafe_active(off) touch_member",
     "PostgreSQL is still starting up, 50 seconds until timeout", NULL, NULL},
    {"starting: a switchover while the holder starts", s_starting_holder_switchover,
     "update probe(pg-3)",
     "watchdog_keepalive demote(graceful,async) failsafe_active(off) touch_member",
     "manual failover: demoting myself", NULL, NULL},
    {"starting: paused, the state is synced", s_starting_paused, "",
     "watchdog_disable set_state(running) follow(pg-2,replica) sync_slots touch_member",
     "PAUSE: " FOLLOWING, NULL, NULL},

    /* row 7 */
    {"post_bootstrap: postgres died", s_boot_pg_died, "",
     "cancel_initialization touch_member fatal(1)", "Failed to bootstrap cluster", NULL, NULL},
    {"post_bootstrap: the script failed", s_boot_post_failed, "",
     "cancel_initialization touch_member fatal(1)", "Failed to bootstrap cluster", NULL, NULL},
    {"post_bootstrap: waiting for the end of recovery", s_boot_in_recovery, "", "touch_member",
     "waiting for end of recovery after bootstrap", NULL, NULL},
    {"post_bootstrap: run it", s_boot_run_post, "", "set_role(master) post_bootstrap touch_member",
     "running post_bootstrap", NULL, NULL},
    {"post_bootstrap: done, initialized", s_boot_done, "watchdog",
     "ensure_checkpoint initialize(set," SYSID ") set_config take_leader set_leader_valid(on) "
     "callback(on_start,master) failsafe_active(off) touch_member",
     "initialized a new cluster", ck_bootstrapped, NULL},
    {"post_bootstrap: the watchdog cannot be activated", s_boot_done_no_watchdog, "watchdog",
     "cancel_initialization touch_member fatal(1)", "Failed to bootstrap cluster", NULL, NULL},
    {"post_bootstrap: strict sync mode starts with '*'", s_boot_done_strict, "watchdog",
     "ensure_checkpoint initialize(set," SYSID ") set_config take_leader set_leader_valid(on) "
     "set_ssn('*') callback(on_start,master) failsafe_active(off) touch_member",
     "initialized a new cluster", NULL, NULL},
    {"post_bootstrap: sync mode starts empty", s_boot_done_sync, "watchdog",
     "ensure_checkpoint initialize(set," SYSID ") set_config take_leader set_leader_valid(on) "
     "set_ssn('') callback(on_start,master) failsafe_active(off) touch_member",
     "initialized a new cluster", NULL, NULL},
    {"post_bootstrap: a standby leader", s_boot_done_standby, "watchdog",
     "initialize(new," SYSID ") set_config take_leader set_leader_valid(on) "
     "callback(on_start,standby_leader) failsafe_active(off) touch_member",
     "initialized a new cluster", NULL, NULL},

    /* row 8 */
    {"recovering: the holder failed to start", s_rec_holder_failed, "",
     "watchdog_disable set_role(demoted) callback(on_role_change,demoted) delete_leader "
     "set_leader_valid(off) touch_member",
     "removed leader key after trying and failing to start postgres", NULL, NULL},
    {"recovering: a replica failed to start", s_rec_replica_failed, "",
     "watchdog_disable touch_member", "failed to start postgres", NULL, NULL},
    {"recovering: started, the memory is reset", s_rec_started, "", FOLLOW_FX, FOLLOWING,
     ck_recovered, NULL},
    {"recovering: a failed rewind stays failed", s_rec_rewind_failed, "", FOLLOW_FX, FOLLOWING,
     ck_rewind_failed, NULL},
    {"recovering: a pending rewind", s_rec_rewind_pending, "reload rewind_check(pg-2)",
     "watchdog_disable rewind(pg-2) touch_member", "running pg_rewind from pg-2", ck_rewind_need,
     NULL},

    /* rows 9-12 */
    {"empty data dir: won the initialize race", s_empty, "init_race",
     "stop(immediate,10) watchdog_disable bootstrap touch_member",
     "trying to bootstrap a new cluster", ck_bootstrapping, NULL},
    {"empty data dir: lost the initialize race", s_empty_race_lost, "init_race",
     "stop(immediate,10) watchdog_disable touch_member", "failed to acquire initialize lock", NULL,
     NULL},
    {"empty data dir: the initialize race fails", s_empty_race_error, "init_race",
     "stop(immediate,10) watchdog_disable touch_member", "failed to acquire initialize lock", NULL,
     NULL},
    {"empty data dir: clone from the leader", s_empty_with_leader, "",
     "stop(immediate,10) watchdog_disable clone(pg-2) touch_member",
     "trying to bootstrap from leader 'pg-2'", NULL, NULL},
    {"empty data dir: clone from a clonefrom replica", s_empty_clonefrom, "",
     "stop(immediate,10) watchdog_disable clone(pg-3) touch_member",
     "trying to bootstrap from replica 'pg-3'", ck_clone_task, NULL},
    {"empty data dir: a stopped clonefrom replica is no source", s_empty_clonefrom_stopped, "",
     "stop(immediate,10) watchdog_disable clone(pg-2) touch_member",
     "trying to bootstrap from leader 'pg-2'", NULL, NULL},
    {"empty data dir: nofailover never races", s_empty_nofailover, "",
     "stop(immediate,10) watchdog_disable touch_member", "waiting for leader to bootstrap", NULL,
     NULL},
    {"empty data dir: no bootstrap section, no race", s_empty_no_bootstrap, "",
     "stop(immediate,10) watchdog_disable touch_member", "waiting for leader to bootstrap", NULL,
     NULL},
    {"empty data dir: never initdb when initialize is set", s_empty_initialized, "",
     "stop(immediate,10) watchdog_disable touch_member", "waiting for leader to bootstrap", NULL,
     NULL},
    {"empty data dir: a replica method without a leader", s_empty_no_leader_clone, "",
     "stop(immediate,10) watchdog_disable clone(-) touch_member",
     "trying to bootstrap (without leader)", NULL, NULL},
    {"empty data dir: no clone while another node bootstraps", s_empty_concurrent, "",
     "stop(immediate,10) watchdog_disable touch_member", "waiting for leader to bootstrap", NULL,
     NULL},
    {"empty data dir: standby cluster race", s_empty_standby, "init_race",
     "stop(immediate,10) watchdog_disable bootstrap(standby) touch_member",
     "trying to bootstrap a new standby leader", NULL, NULL},
    {"empty data dir: standby cluster waits", s_empty_standby_wait, "",
     "stop(immediate,10) watchdog_disable touch_member", "waiting for standby_leader to bootstrap",
     NULL, NULL},
    {"empty data dir: standby cluster clones its leader from the remote", s_empty_standby_clone, "",
     "stop(immediate,10) watchdog_disable clone(pg-2,standby) touch_member",
     "trying to bootstrap from leader 'pg-2'", NULL, NULL},
    {"empty data dir while holding the lock", s_empty_holder, "",
     "set_role(uninitialized) stop(immediate,10) watchdog_disable delete_leader "
     "set_leader_valid(off) touch_member touch_member",
     "released leader key voluntarily as data dir empty and currently leader", NULL, NULL},
    {"data dir not accessible while holding the lock", s_noaccess_holder, "",
     "set_role(uninitialized) stop(immediate,10) watchdog_disable delete_leader "
     "set_leader_valid(off) touch_member touch_member",
     "released leader key voluntarily as data dir not accessible and currently leader", NULL, NULL},
    {"data dir not accessible", s_noaccess, "",
     "set_role(uninitialized) stop(immediate,10) watchdog_disable touch_member",
     "data directory is not accessible: [Errno 13] Permission denied: '/data'", NULL, NULL},
    {"empty data dir while paused", s_empty_paused, "",
     "watchdog_disable set_role(uninitialized) stop(immediate,10) watchdog_disable touch_member",
     "PAUSE: running with empty data directory", NULL, NULL},
    {"paused: the state follows the postmaster", s_empty_paused_state, "",
     "watchdog_disable set_state(stopped) set_role(uninitialized) stop(immediate,10) "
     "watchdog_disable touch_member",
     "PAUSE: running with empty data directory", NULL, NULL},
    {"system ID invalid", s_sysid_invalid, "", "touch_member",
     "data dir for the cluster is not empty, but system ID is invalid; consider doing "
     "reinitialize",
     NULL, NULL},
    {"system ID mismatch: fatal", s_sysid_mismatch, "", "touch_member fatal(1)",
     "system ID mismatch, node pg-1 belongs to a different cluster: " OTHER_SYSID " != " SYSID,
     NULL, NULL},
    {"system ID mismatch, paused holder releases", s_sysid_mismatch_paused_holder, "",
     "watchdog_disable delete_leader set_leader_valid(off) touch_member touch_member",
     "PAUSE: released leader key voluntarily due to the system ID mismatch", NULL, NULL},
    {"system ID mismatch, paused replica goes on", s_sysid_mismatch_paused, "",
     "watchdog_disable follow(pg-2,replica) sync_slots touch_member", "PAUSE: " FOLLOWING, NULL,
     NULL},
    {"no initialize key, running replica, first cycle: refuse", s_no_init_replica_first, "",
     "touch_member fatal(1)",
     "No initialize key in DCS and PostgreSQL is running as replica, aborting start",
     ck_join_aborted, NULL},
    {"no initialize key, running primary: take over", s_no_init_primary_first,
     "acquire reload watchdog",
     "initialize(new," SYSID ") set_ssn(user) sync_slots callback(on_start,master) "
     "failsafe_active(off) touch_member",
     "acquired session lock as a leader", NULL, NULL},
    {"no initialize key, cluster locked: nothing to write", s_no_init_locked_first, "",
     "handle_parameter_change follow(pg-2,replica) sync_slots callback(on_start,replica) "
     "touch_member",
     FOLLOWING, NULL, NULL},
    {"empty initialize key, primary, first cycle", s_init_empty_primary_first,
     "acquire reload watchdog",
     "initialize(set," SYSID ") set_ssn(user) sync_slots callback(on_start,master) "
     "failsafe_active(off) touch_member",
     "acquired session lock as a leader", NULL, NULL},
    {"no initialize key after the first cycle: not written", s_no_init_later, "acquire reload",
     "set_ssn(user) sync_slots failsafe_active(off) touch_member",
     "acquired session lock as a leader", NULL, NULL},

    /* row 13 and §5.3.3 */
    {"postgres stopped, paused holder", s_stopped_paused_holder, "",
     "watchdog_disable set_state(stopped) delete_leader set_leader_valid(off) touch_member",
     "PAUSE: removed leader lock because postgres is not running", NULL, NULL},
    {"postgres stopped, paused replica", s_stopped_paused, "", "watchdog_disable touch_member",
     "PAUSE: postgres is not running", NULL, NULL},
    {"postgres stopped, paused, rewind pending: recover", s_stopped_paused_rewind, "reload",
     "watchdog_disable watchdog_disable rewind(pg-2) touch_member",
     "PAUSE: running pg_rewind from pg-2", NULL, NULL},
    {"postgres stopped, paused, rewind failed", s_stopped_paused_rewind_failed, "",
     "watchdog_disable touch_member", "PAUSE: postgres is not running", NULL, NULL},
    {"crashed replica starts as a secondary", s_crashed_replica, "reload",
     "set_state(crashed) watchdog_disable start(replica,pg-2) touch_member",
     "starting as a secondary", ck_recovering, NULL},
    {"crashed primary holding the lock starts as primary", s_crashed_primary, "update",
     "set_state(crashed) watchdog_keepalive start_primary(300) failsafe_active(off) touch_member",
     "starting primary after failure", ck_recovering, NULL},
    {"crashed primary, primary_start_timeout 0, fail over", s_crashed_primary_zero,
     "update probe(pg-2,pg-3)",
     "set_state(crashed) watchdog_keepalive watchdog_disable demote(immediate) touch_member",
     "stopped PostgreSQL to fail over after a crash", NULL, NULL},
    {"crashed primary, primary_start_timeout 0, nobody to fail over to",
     s_crashed_primary_zero_alone, "update probe(pg-2,pg-3) reload",
     "set_state(crashed) watchdog_keepalive watchdog_disable start(replica,-,0) "
     "failsafe_active(off) touch_member",
     "starting as readonly because i had the session lock", NULL, NULL},
    {"crashed holder with recovery configured starts read-only", s_crashed_primary_recovery_conf,
     "update reload",
     "set_state(crashed) watchdog_keepalive watchdog_disable start(replica,-,300) "
     "failsafe_active(off) touch_member",
     "starting as readonly because i had the session lock", NULL, NULL},
    {"crashed holder could not renew", s_crashed_primary_update_fails, "update reload",
     "set_state(crashed) watchdog_disable start(replica,-) touch_member",
     "starting as readonly because i had the session lock", NULL, NULL},
    {"crashed holder that can rewind recovers in single-user mode", s_crashed_primary_can_rewind,
     "update",
     "set_state(crashed) watchdog_keepalive watchdog_disable crash_recovery failsafe_active(off) "
     "touch_member",
     TASK_CRASH, ck_crash_started, NULL},
    {"crashed replica: single-user crash recovery", s_crash_recovery_replica, "",
     "set_state(crashed) watchdog_disable crash_recovery touch_member", TASK_CRASH,
     ck_crash_started, NULL},
    {"crashed replica: crash recovery ran already", s_crash_recovery_again,
     "reload rewind_check(pg-2)",
     "set_state(crashed) watchdog_disable start(replica,pg-2) touch_member",
     "starting as a secondary", NULL, NULL},
    {"crashed replica with backup_label: no single-user recovery", s_crash_backup_label,
     "reload rewind_check(pg-2)",
     "set_state(crashed) watchdog_disable start(replica,pg-2) touch_member",
     "starting as a secondary", NULL, NULL},
    {"crashed, no leader: single-user crash recovery", s_crash_unlocked, "",
     "set_state(crashed) watchdog_disable crash_recovery touch_member", TASK_CRASH, NULL, NULL},
    {"stopped replica diverged, re-initialize", s_stopped_reinit, "reload rewind_check(pg-2)",
     "watchdog_disable reinitialize(pg-2) touch_member", "reinitializing due to diverged timelines",
     NULL, NULL},
    {"stopped in archive recovery, rewind needed: crash recovery first", s_stopped_rewind_archive,
     "reload rewind_check(pg-2)", "watchdog_disable crash_recovery touch_member", TASK_CRASH, NULL,
     NULL},
    {"stopped replica, rewind check inconclusive", s_stopped_rewind_unknown,
     "reload rewind_check(pg-2)", "watchdog_disable start(replica,pg-2) touch_member",
     "starting as a secondary", ck_rewind_check, NULL},
    {"stopped replica, leader without conn_url: no check", s_stopped_rewind_leader_no_conn,
     "reload", "watchdog_disable start(replica,pg-2!) touch_member", "starting as a secondary",
     NULL, NULL},
    {"standby cluster: crashed standby leader", s_standby_holder_crashed, "update reload",
     "set_state(crashed) watchdog_keepalive watchdog_disable start(standby_leader,remote,300) "
     "failsafe_active(off) touch_member",
     "starting as a standby leader because i had the session lock", NULL, NULL},
    {"standby cluster without a leader: follow the remote", s_standby_unhealthy, "reload",
     "set_state(crashed) watchdog_disable start(replica,remote) touch_member",
     "trying to follow a remote member because standby cluster is unhealthy", NULL, NULL},
    {"sync mode: a crashed replica clears synchronous_standby_names", s_crashed_sync, "reload",
     "set_state(crashed) watchdog_disable set_ssn('') start(replica,pg-2) touch_member",
     "starting as a secondary", NULL, NULL},

    /* row 16, errors */
    {"first cycle on a replica: on_start and a rewind check", s_first_cycle_replica, "",
     "handle_parameter_change follow(pg-2,replica) sync_slots callback(on_start,replica) "
     "touch_member",
     FOLLOWING, ck_rewind_check, NULL},
    {"failsafe active: no slot copies", s_failsafe_active_replica, "",
     "handle_parameter_change follow(pg-2,replica) sync_slots(nocopy) touch_member", FOLLOWING,
     NULL, NULL},
    {"postgres query failed on a replica", s_query_failed, "", "touch_member",
     "Error communicating with PostgreSQL. Will try again later", NULL, NULL},
    {"postgres query failed on the leader: the lock is still renewed", s_query_failed_leader,
     "update(status)", "watchdog_keepalive ensure_checkpoint failsafe_active(off) touch_member",
     "Error communicating with PostgreSQL. Will try again later", NULL, NULL},

    /* §5.10 */
    {"shutdown: paused", s_shutdown_paused, "", "watchdog_disable",
     "Leader key is not deleted and Postgresql is not stopped due paused state", NULL,
     shutdown_entry},
    {"shutdown: the leader stops fast", s_leader, "", "stop(fast)", "shutting down", NULL,
     shutdown_entry},
    {"shutdown: a sync replica first leaves the sync set", s_shutdown_sync_replica, "",
     "stop(fast,nosync)", "shutting down", NULL, shutdown_entry},
    {"shutdown: a nosync replica stops at once", s_shutdown_sync_replica_nosync, "", "stop(fast)",
     "shutting down", NULL, shutdown_entry},
    {"shutdown: a sync primary with primary_stop_timeout", s_shutdown_sync_primary, "",
     "stop(fast,20)", "shutting down", NULL, shutdown_entry},
    {"shutdown: after an aborted join PostgreSQL is left alone", s_shutdown_join_aborted, "", "",
     "", NULL, shutdown_entry},
    {"shutdown: a running task is cancelled first", s_shutdown_task, "",
     "cancel_task(bootstrap from leader 'pg-2') stop(fast)", "shutting down", NULL, shutdown_entry},
    {"on shutdown: a replica has the checkpoint, release", s_on_shutdown_received,
     "probe(pg-2,pg-3)", "delete_leader(67108864)", "deleted the leader key at shutdown", NULL,
     on_shutdown_entry},
    {"on shutdown: nobody has the checkpoint, keep the key", s_on_shutdown_behind,
     "probe(pg-2,pg-3)", "write_leader_optime(67108864)",
     "kept the leader key at shutdown, wrote the optime", NULL, on_shutdown_entry},
    {"on demote: release at the checkpoint", s_on_shutdown_received, "probe(pg-2,pg-3)",
     "set_role(demoted) delete_leader(67108864) set_leader_valid(off) touch_member",
     "Leader key released", NULL, on_demote_entry},
    {"on demote: nobody has the checkpoint yet", s_on_shutdown_behind, "probe(pg-2,pg-3)", "",
     "no member received the shutdown checkpoint yet", NULL, on_demote_entry},
};

const size_t ha_rows_cycle_n = PGKEEL_ARRAY_LEN(ha_rows_cycle);
