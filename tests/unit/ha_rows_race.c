/*
 * Rows of the leader race: process_unhealthy_cluster (spec §5.3.5),
 * is_healthiest_node (§5.4.2-5.4.3), manual_failover_process_no_leader
 * (§5.4.4), the race in sync mode (§6.5) and with failsafe (§5.9).  The
 * default here: the leader key expired, pg-2 (the old leader) does not
 * answer, pg-3 is a replica at my WAL position; the watchdog runs.
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

#define S(fn)    static void fn(struct world *w)
#define PROMOTED "promoted self to leader by acquiring session lock"
#define PROMOTE_FX                                                                                 \
	"set_ssn(user) failsafe_active(off) promote sync_slots(nocopy) failsafe_active(off) "      \
	"touch_member"
#define NOT_HEALTHIEST "following a different leader because i am not the healthiest node"
#define FOLLOW_NONE_FX "handle_parameter_change follow(-,replica) sync_slots(nocopy) touch_member"
#define FOLLOW_PG3_FX  "handle_parameter_change follow(pg-3,replica) sync_slots touch_member"
#define SYNC_PG1       "{\"leader\":\"pg-2\",\"sync_standby\":\"pg-1\"}"
#define SYNC_PG3       "{\"leader\":\"pg-2\",\"sync_standby\":\"pg-3\"}"

static void ck_promote_task(struct run *r)
{
	const struct pgkeel_ha_plan *p = run_plan(r);

	for (size_t i = 0; i < p->n_effects; i++)
		if (p->effects[i].kind == PGKEEL_HA_FX_PROMOTE) {
			assert_string_equal(p->effects[i].task, "promote");
			assert_int_equal(p->state.task_result, PGKEEL_HA_TASK_NONE);
			assert_int_equal(p->state.rewind, PGKEEL_HA_REWIND_INITIAL);
			return;
		}
	fail_msg("no promote");
}

static void ck_reload_delay(struct run *r)
{
	(void)r; /* the delay is in the rendered request: reload(2000) */
}

S(race)
{
	no_leader(w);
	w->wd_running = true;
}

/* pg-3 will hold the lock when we look again */
static void reload_pg3(struct world *w)
{
	w->reload = w->c;
	w->reload.leader = "pg-3";
	find_m(&w->reload, "pg-3")->role = "master";
	w->reload_custom = true;
}

S(s_race_won)
{
	race(w);
}

S(s_race_won_no_watchdog)
{
	race(w);
	w->wd_running = false;
}

S(s_race_watchdog_fails)
{
	race(w);
	w->wd_running = false;
	w->wd_activate = PGKEEL_HA_FAIL;
}

S(s_race_behind)
{
	race(w);
	find_peer(w, "pg-3")->wal = WAL + 1;
	reload_pg3(w);
}

S(s_race_primary_alive)
{
	race(w);
	*find_peer(w, "pg-2") = (struct peer_spec){.name = "pg-2", .primary = true, .timeline = 1};
}

S(s_race_nofailover_member)
{
	race(w);
	find_m(&w->c, "pg-3")->tags = "{\"nofailover\":true}";
	find_peer(w, "pg-3")->wal = WAL + 100;
}

S(s_race_nofailover_answer)
{
	race(w);
	find_peer(w, "pg-3")->wal = WAL + 100;
	find_peer(w, "pg-3")->nofailover = true;
}

S(s_race_watchdog_failed_peer)
{
	race(w);
	find_peer(w, "pg-3")->wal = WAL + 100;
	find_peer(w, "pg-3")->watchdog_failed = true;
}

S(s_race_no_api)
{
	race(w);
	find_m(&w->c, "pg-3")->no_api = true;
	w->old = w->c;
	w->old_custom = true;
}

S(s_race_lagging)
{
	race(w);
	w->c.last_lsn = WAL + 2000000;
}

S(s_race_small_lag)
{
	race(w);
	w->c.last_lsn = WAL + 1000;
}

S(s_race_timeline_behind)
{
	race(w);
	w->s.check_timeline = true;
	w->c.history = "[[1,100,\"no recovery target specified\"]]";
}

S(s_race_timeline_unknown)
{
	race(w);
	w->s.check_timeline = true;
	w->pg.timeline = 0;
}

S(s_race_timeline_ok)
{
	s_race_timeline_behind(w);
	w->pg.timeline = 2;
}

S(s_race_lost)
{
	race(w);
	w->acquire = PGKEEL_HA_FAIL;
	reload_pg3(w);
}

S(s_race_stale_primary)
{
	race(w);
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->c.history = "[[1,100,\"no recovery target specified\"]]";
}

S(s_race_primary)
{
	race(w);
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
}

S(s_race_nofailover)
{
	race(w);
	w->s.nofailover = true;
}

S(s_race_nofailover_can_rewind)
{
	s_race_nofailover(w);
	w->pg.can_rewind = true;
}

S(s_race_nofailover_primary)
{
	s_race_primary(w);
	w->s.nofailover = true;
}

S(s_race_starting)
{
	race(w);
	w->pg.state = PGKEEL_PGCTL_STARTING;
}

S(s_race_watchdog_unusable)
{
	race(w);
	w->wd_healthy = false;
}

S(s_race_backoff)
{
	race(w);
	w->st.released_key_ms = NOW_MS - 10000;
}

S(s_race_backoff_over)
{
	race(w);
	w->st.released_key_ms = NOW_MS - 31000;
}

S(s_fo_to_me)
{
	race(w);
	w->c.failover = "{\"member\":\"pg-1\"}";
}

S(s_fo_to_other)
{
	race(w);
	w->c.failover = "{\"member\":\"pg-3\"}";
	reload_pg3(w);
}

S(s_fo_to_unhealthy)
{
	race(w);
	w->c.failover = "{\"member\":\"pg-3\"}";
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_fo_to_unknown)
{
	race(w);
	w->c.failover = "{\"member\":\"pg-9\"}";
}

S(s_switchover_from_old)
{
	race(w);
	w->c.failover = "{\"leader\":\"pg-2\"}";
}

S(s_switchover_from_old_behind)
{
	s_switchover_from_old(w);
	find_peer(w, "pg-3")->wal = WAL + 1;
}

S(s_switchover_sync_not_me)
{
	race(w);
	w->s.synchronous_mode = true;
	w->c.sync = SYNC_PG3;
	w->c.failover = "{\"leader\":\"pg-2\"}";
}

S(s_fo_was_leader_alone)
{
	race(w);
	w->c.failover = "{\"leader\":\"pg-1\",\"member\":\"pg-3\"}";
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_fo_was_leader_other_ok)
{
	s_fo_was_leader_alone(w);
	*find_peer(w, "pg-2") = (struct peer_spec){.name = "pg-2", .wal = WAL, .timeline = 1};
}

S(s_fo_sync_not_me)
{
	race(w);
	w->s.synchronous_mode = true;
	w->c.sync = SYNC_PG3;
	w->c.failover = "{\"member\":\"pg-3\"}";
	find_peer(w, "pg-3")->unreachable = true;
}

S(s_fo_scheduled_candidate)
{
	race(w);
	w->s.pause = true;
	w->c.failover = "{\"member\":\"pg-1\",\"scheduled_at\":\"2026-01-01T00:10:00+00:00\"}";
}

S(s_sync_not_standby)
{
	race(w);
	w->s.synchronous_mode = true;
	w->c.sync = SYNC_PG3;
}

S(s_sync_standby_races)
{
	race(w);
	w->s.synchronous_mode = true;
	w->c.sync = SYNC_PG1;
	find_peer(w, "pg-3")->wal = WAL + 100;
}

S(s_sync_former_leader_ahead)
{
	s_sync_standby_races(w);
	*find_peer(w, "pg-2") = (struct peer_spec){.name = "pg-2", .wal = WAL + 100, .timeline = 1};
}

S(s_sync_standby_strict)
{
	s_sync_standby_races(w);
	w->s.synchronous_mode_strict = true;
}

S(s_sync_cas_lost)
{
	s_sync_standby_races(w);
	w->sync_out[0] = PGKEEL_HA_FAIL;
}

S(s_sync_case_insensitive)
{
	s_sync_standby_races(w);
	w->c.sync = "{\"leader\":\"pg-2\",\"sync_standby\":\"PG-1\"}";
}

S(s_sync_empty_key)
{
	race(w);
	w->s.synchronous_mode = true;
	w->c.sync = "{\"leader\":null,\"sync_standby\":null}";
}

S(s_sync_standby_cluster)
{
	race(w);
	w->s.synchronous_mode = true;
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
	w->c.sync = SYNC_PG3;
}

S(s_failsafe_not_me)
{
	race(w);
	w->s.failsafe_mode = true;
	w->c.failsafe = "{\"pg-2\":\"http://127.0.0.2:8008/patroni\","
	                "\"pg-3\":\"http://127.0.0.3:8008/patroni\"}";
}

S(s_failsafe_with_me)
{
	race(w);
	w->s.failsafe_mode = true;
	w->c.failsafe = "{\"pg-1\":\"http://127.0.0.1:8008/patroni\","
	                "\"pg-2\":\"http://127.0.0.2:8008/patroni\","
	                "\"pg-4\":\"http://127.0.0.4:8008/patroni\"}";
}

S(s_failsafe_empty)
{
	race(w);
	w->s.failsafe_mode = true;
	w->c.failsafe = "{}";
}

S(s_failsafe_off_key_ignored)
{
	s_failsafe_not_me(w);
	w->s.failsafe_mode = false;
}

S(s_failsafe_leader_pinged)
{
	race(w);
	w->s.failsafe_mode = true;
	w->have_fsl = true;
	w->fsl.name = "pg-2";
	w->fsl.api_url = "http://127.0.0.2:8008/patroni";
	w->fsl.conn_url = "postgres://127.0.0.2:5432/postgres";
}

S(s_failsafe_ping_ignored_without_mode)
{
	s_failsafe_leader_pinged(w);
	w->s.failsafe_mode = false;
}

S(s_old_cluster_members)
{
	race(w);
	/* pg-4 was a member when the cluster last had a leader; its key expired */
	w->old = w->c;
	w->old.m[3] = member("pg-4", "replica");
	w->old.n = 4;
	w->old.leader = "pg-2";
	w->old_custom = true;
	w->peers[w->n_peers++] = (struct peer_spec){.name = "pg-4", .wal = WAL + 5, .timeline = 1};
}

S(s_paused_replica)
{
	race(w);
	w->s.pause = true;
}

S(s_paused_fo_to_me)
{
	s_fo_to_me(w);
	w->s.pause = true;
}

S(s_paused_switchover_to_me)
{
	race(w);
	w->s.pause = true;
	w->c.failover = "{\"leader\":\"pg-2\",\"member\":\"pg-1\"}";
}

S(s_paused_fo_candidate_gone)
{
	race(w);
	w->s.pause = true;
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->c.failover = "{\"member\":\"pg-9\"}";
}

S(s_paused_fo_other)
{
	race(w);
	w->s.pause = true;
	w->c.failover = "{\"member\":\"pg-3\"}";
}

S(s_paused_fo_no_candidate)
{
	race(w);
	w->s.pause = true;
	w->c.failover = "{\"leader\":\"pg-2\"}";
}

S(s_paused_primary_other_cluster)
{
	race(w);
	w->s.pause = true;
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
	w->c.initialize = OTHER_SYSID;
}

S(s_paused_primary)
{
	race(w);
	w->s.pause = true;
	w->pg.is_primary = true;
	w->pg.role = PGKEEL_HA_ROLE_MASTER;
}

S(s_paused_nofailover_no_rewind_check)
{
	s_paused_replica(w);
	w->s.nofailover = true;
	w->pg.can_rewind = true;
}

S(s_standby_race)
{
	race(w);
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
	w->s.check_timeline = true;
	w->pg.timeline = 0;
}

S(s_race_replicatefrom)
{
	s_race_lost(w);
	w->s.replicatefrom = "pg-2";
}

S(s_race_pre_promote_failed)
{
	race(w);
	w->st.task_result = PGKEEL_HA_TASK_FALSE;
}

static void ck_backoff_started(struct run *r)
{
	assert_int_equal(run_plan(r)->state.released_key_ms, NOW_MS);
	assert_int_equal(run_plan(r)->state.task_result, PGKEEL_HA_TASK_NONE);
}

static void ck_rewind_check(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_CHECK);
}

static void ck_rewind_initial(struct run *r)
{
	assert_int_equal(run_plan(r)->state.rewind, PGKEEL_HA_REWIND_INITIAL);
}

const struct row ha_rows_race[] = {
    {"race: the healthiest takes the lock and promotes", s_race_won,
     "probe(pg-2,pg-3) acquire reload", PROMOTE_FX, PROMOTED, ck_promote_task, NULL},
    {"race: the watchdog is activated before promoting", s_race_won_no_watchdog,
     "probe(pg-2,pg-3) acquire reload watchdog", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: the watchdog cannot be activated", s_race_watchdog_fails,
     "probe(pg-2,pg-3) acquire reload watchdog",
     "delete_leader set_leader_valid(off) touch_member sync_slots touch_member",
     "Not promoting self because watchdog could not be activated", NULL, NULL},
    {"race: a replica ahead of me", s_race_behind, "probe(pg-2,pg-3) reload", FOLLOW_PG3_FX,
     NOT_HEALTHIEST, NULL, NULL},
    {"race: the old primary is still alive", s_race_primary_alive, "probe(pg-2,pg-3) reload",
     FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"race: a nofailover member is not compared", s_race_nofailover_member,
     "probe(pg-2) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: a peer answering nofailover is not compared", s_race_nofailover_answer,
     "probe(pg-2,pg-3) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: a peer without a watchdog is not compared", s_race_watchdog_failed_peer,
     "probe(pg-2,pg-3) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: a member without api_url is not probed", s_race_no_api, "probe(pg-2) acquire reload",
     PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: too far behind the last known optime", s_race_lagging, "reload", FOLLOW_NONE_FX,
     NOT_HEALTHIEST, NULL, NULL},
    {"race: within maximum_lag_on_failover", s_race_small_lag, "probe(pg-2,pg-3) acquire reload",
     PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: check_timeline, my timeline is behind", s_race_timeline_behind, "reload",
     FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"race: check_timeline, my timeline is unknown", s_race_timeline_unknown, "reload",
     FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"race: check_timeline, on the cluster's timeline", s_race_timeline_ok,
     "probe(pg-2,pg-3) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: lost the acquire, follow the winner", s_race_lost, "probe(pg-2,pg-3) acquire reload",
     FOLLOW_PG3_FX, "following new leader after trying and failing to obtain lock", NULL, NULL},
    {"race: lost the acquire, replicatefrom wins over the leader", s_race_replicatefrom,
     "probe(pg-2,pg-3) acquire reload",
     "handle_parameter_change follow(pg-2,replica) sync_slots touch_member",
     "following new leader after trying and failing to obtain lock", NULL, NULL},
    {"race: a stale primary on an old timeline does not retake the lock", s_race_stale_primary,
     "reload", "demote(immediate-nolock) touch_member",
     "demoting self because i am not the healthiest node", NULL, NULL},
    {"race: a running primary retakes the lock", s_race_primary, "acquire reload",
     "set_ssn(user) sync_slots failsafe_active(off) touch_member",
     "acquired session lock as a leader", NULL, NULL},
    {"race: a nofailover replica waits and follows", s_race_nofailover, "reload(2000)",
     FOLLOW_NONE_FX, "following a different leader because I am not allowed to promote", NULL,
     NULL},
    {"race: a nofailover replica checks for rewind", s_race_nofailover_can_rewind, "reload(2000)",
     FOLLOW_NONE_FX, "following a different leader because I am not allowed to promote",
     ck_rewind_check, NULL},
    {"race: a nofailover primary still retakes the lock", s_race_nofailover_primary,
     "acquire reload", "set_ssn(user) sync_slots failsafe_active(off) touch_member",
     "acquired session lock as a leader", NULL, NULL},
    {"race: postgres still starting is not healthy", s_race_starting, "reload",
     "handle_parameter_change follow(-,replica) touch_member", NOT_HEALTHIEST, NULL, NULL},
    {"race: the watchdog is not usable", s_race_watchdog_unusable, "reload", FOLLOW_NONE_FX,
     NOT_HEALTHIEST, NULL, NULL},
    {"race: back off after a failed pre_promote", s_race_backoff, "reload", FOLLOW_NONE_FX,
     NOT_HEALTHIEST, NULL, NULL},
    {"race: the back-off is over after ttl", s_race_backoff_over, "probe(pg-2,pg-3) acquire reload",
     PROMOTE_FX, PROMOTED, NULL, NULL},
    {"race: pre_promote failed, the lock is released", s_race_pre_promote_failed,
     "probe(pg-2,pg-3) acquire reload",
     "delete_leader set_leader_valid(off) touch_member sync_slots touch_member",
     "Promotion cancelled because the pre-promote script failed", ck_backoff_started, NULL},
    {"race: a member known only before the key expired is compared", s_old_cluster_members,
     "probe(pg-2,pg-3,pg-4) reload", FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},

    /* §5.4.4 */
    {"failover to me", s_fo_to_me, "acquire reload", "set_failover({}) " PROMOTE_FX, PROMOTED, NULL,
     NULL},
    {"failover to a healthy other member", s_fo_to_other, "probe(pg-3) reload(2000)", FOLLOW_PG3_FX,
     NOT_HEALTHIEST, NULL, NULL},
    {"failover to an unhealthy member: the others race", s_fo_to_unhealthy,
     "probe(pg-3) probe(pg-2) acquire reload", "set_failover({}) " PROMOTE_FX, PROMOTED, NULL,
     NULL},
    {"failover to an unknown member: the others race", s_fo_to_unknown,
     "probe(pg-2,pg-3) acquire reload", "set_failover({}) " PROMOTE_FX, PROMOTED, NULL, NULL},
    {"switchover from the old leader: the best of the others", s_switchover_from_old,
     "probe(pg-3) acquire reload", "set_failover({}) " PROMOTE_FX, PROMOTED, NULL, NULL},
    {"switchover: lag is not checked, a replica ahead wins", s_switchover_from_old_behind,
     "probe(pg-3) reload", FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"switchover in sync mode: only sync standbys race", s_switchover_sync_not_me, "reload",
     FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"failover key names me as the old leader, nobody else healthy", s_fo_was_leader_alone,
     "probe(pg-3) probe(pg-2) acquire reload", "set_failover({}) " PROMOTE_FX, PROMOTED, NULL,
     NULL},
    {"failover key names me as the old leader, another is healthy", s_fo_was_leader_other_ok,
     "probe(pg-3) probe(pg-2) reload(2000)", FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"failover in sync mode: not in /sync, no action", s_fo_sync_not_me, "reload(2000)",
     FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"paused: a scheduled failover is not for the race", s_fo_scheduled_candidate, "reload(2000)",
     "watchdog_disable sync_slots(nocopy) touch_member", "PAUSE: no action. I am (pg-1)", NULL,
     NULL},

    /* §6.5 */
    {"sync mode: not a sync standby, never races", s_sync_not_standby, "reload", FOLLOW_NONE_FX,
     NOT_HEALTHIEST, NULL, NULL},
    {"sync mode: the sync standby compares with /sync members only", s_sync_standby_races,
     "probe(pg-2) acquire reload write_sync(pg-1:)",
     "set_ssn('') failsafe_active(off) promote sync_slots(nocopy) failsafe_active(off) "
     "touch_member",
     PROMOTED, NULL, NULL},
    {"sync mode: the former leader being ahead is ignored", s_sync_former_leader_ahead,
     "probe(pg-2) acquire reload write_sync(pg-1:)",
     "set_ssn('') failsafe_active(off) promote sync_slots(nocopy) failsafe_active(off) "
     "touch_member",
     PROMOTED, NULL, NULL},
    {"sync mode strict: promote with '*'", s_sync_standby_strict,
     "probe(pg-2) acquire reload write_sync(pg-1:)",
     "set_ssn('*') failsafe_active(off) promote sync_slots(nocopy) failsafe_active(off) "
     "touch_member",
     PROMOTED, NULL, NULL},
    {"sync mode: the sync key changed under us, postpone", s_sync_cas_lost,
     "probe(pg-2) acquire reload write_sync(pg-1:)", "sync_slots failsafe_active(off) touch_member",
     "Postponing promotion because synchronous replication state was updated by somebody else",
     NULL, NULL},
    {"sync mode: /sync names me in another case", s_sync_case_insensitive,
     "probe(pg-2) acquire reload write_sync(pg-1:)",
     "set_ssn('') failsafe_active(off) promote sync_slots(nocopy) failsafe_active(off) "
     "touch_member",
     PROMOTED, NULL, NULL},
    {"sync mode without a sync leader: everybody races", s_sync_empty_key,
     "probe(pg-2,pg-3) acquire reload write_sync(pg-1:)",
     "set_ssn('') failsafe_active(off) promote sync_slots(nocopy) failsafe_active(off) "
     "touch_member",
     PROMOTED, NULL, NULL},
    {"sync mode is ignored in a standby cluster", s_sync_standby_cluster,
     "probe(pg-2,pg-3) acquire reload reload",
     "handle_parameter_change follow(remote,standby_leader) sync_slots failsafe_active(off) "
     "touch_member",
     "promoted self to a standby leader by acquiring session lock", NULL, NULL},

    /* §5.9 in the race */
    {"failsafe: a node missing from the key never races", s_failsafe_not_me, "reload",
     FOLLOW_NONE_FX, NOT_HEALTHIEST, NULL, NULL},
    {"failsafe: the key's members are compared too", s_failsafe_with_me,
     "probe(pg-2,pg-3,pg-4) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"failsafe: an empty key changes nothing", s_failsafe_empty, "probe(pg-2,pg-3) acquire reload",
     PROMOTE_FX, PROMOTED, NULL, NULL},
    {"failsafe mode off: the key is ignored", s_failsafe_off_key_ignored,
     "probe(pg-2,pg-3) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},
    {"failsafe: the leader pinged us, follow it, no race", s_failsafe_leader_pinged, "",
     "handle_parameter_change follow(fs:pg-2,replica) sync_slots touch_member",
     "no action. I am (pg-1), a secondary, and following a leader (pg-2)", NULL, NULL},
    {"failsafe mode off: a ping does not count", s_failsafe_ping_ignored_without_mode,
     "probe(pg-2,pg-3) acquire reload", PROMOTE_FX, PROMOTED, NULL, NULL},

    /* pause */
    {"paused: a replica does not race", s_paused_replica, "reload",
     "watchdog_disable sync_slots(nocopy) touch_member", "PAUSE: no action. I am (pg-1)", NULL,
     NULL},
    {"paused: a nofailover replica does not wait", s_paused_nofailover_no_rewind_check, "reload",
     "watchdog_disable sync_slots(nocopy) touch_member", "PAUSE: no action. I am (pg-1)",
     ck_rewind_initial, NULL},
    {"paused: failover to me", s_paused_fo_to_me, "acquire reload",
     "watchdog_disable set_failover({}) " PROMOTE_FX, "PAUSE: " PROMOTED, NULL, NULL},
    {"paused: switchover to me keeps the candidate in the key", s_paused_switchover_to_me,
     "acquire reload", "watchdog_disable set_failover(-,pg-1,-,cas) " PROMOTE_FX,
     "PAUSE: " PROMOTED, NULL, NULL},
    {"paused: the candidate is gone, the primary clears the key", s_paused_fo_candidate_gone,
     "acquire reload",
     "watchdog_disable set_failover({},cas) set_failover({}) set_ssn(user) sync_slots "
     "failsafe_active(off) touch_member",
     "PAUSE: acquired session lock as a leader", NULL, NULL},
    {"paused: failover to another member", s_paused_fo_other, "reload(2000)",
     "watchdog_disable sync_slots(nocopy) touch_member", "PAUSE: no action. I am (pg-1)", NULL,
     NULL},
    {"paused: failover without a candidate", s_paused_fo_no_candidate, "reload",
     "watchdog_disable sync_slots(nocopy) touch_member", "PAUSE: no action. I am (pg-1)", NULL,
     NULL},
    {"paused: a primary of another cluster does not take the lock", s_paused_primary_other_cluster,
     "reload", "watchdog_disable sync_slots(nocopy) touch_member",
     "PAUSE: continue to run as primary without lock", NULL, NULL},
    {"paused: a primary retakes the lock", s_paused_primary, "acquire reload",
     "watchdog_disable set_ssn(user) sync_slots failsafe_active(off) touch_member",
     "PAUSE: acquired session lock as a leader", NULL, NULL},

    /* standby cluster */
    {"standby cluster: the healthiest becomes the standby leader", s_standby_race,
     "probe(pg-2,pg-3) acquire reload reload",
     "handle_parameter_change follow(remote,standby_leader) sync_slots failsafe_active(off) "
     "touch_member",
     "promoted self to a standby leader by acquiring session lock", ck_reload_delay, NULL},
};

const size_t ha_rows_race_n = PGKEEL_ARRAY_LEN(ha_rows_race);
