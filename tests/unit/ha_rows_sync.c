/*
 * Rows of synchronous replication on the primary (spec §6.1-6.6): /sync
 * enabled when empty, SSN first and /sync after confirmation when adding,
 * /sync first and SSN later when removing, repair of an inconsistent key,
 * strict mode's '*', candidate selection (nosync, running, streaming,
 * maximum_lag_on_syncnode, synchronous_node_count, nofailover last,
 * synchronous_commit), the SyncHandler's mark, and sync mode switched off.
 * The promotion side (§6.4, §6.5) is in ha_rows_race.c.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ha_test.h"
#include "util.h"

#define S(fn)   static void fn(struct world *w)
#define LEADING "no action. I am (pg-1), the leader with the lock"
#define FX      "watchdog_keepalive ensure_checkpoint sync_slots failsafe_active(off) touch_member"
#define FX_SSN(v)                                                                                  \
	"watchdog_keepalive ensure_checkpoint set_ssn('" v "') sync_slots failsafe_active(off) "   \
	"touch_member"
#define Q2 "\"pg-2\""
#define Q3 "\"pg-3\""

/* the leader in sync mode; /sync names only me; PostgreSQL's SSN is empty */
static void sync_leader(struct world *w)
{
	as_leader(w);
	w->s.synchronous_mode = true;
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":null}";
}

/* PostgreSQL has SSN = v, and the handler saw it already */
static void ssn(struct world *w, const char *v)
{
	w->pg.synchronous_standby_names = v;
	free(w->st.sync_ssn);
	w->st.sync_ssn = strdup(v);
}

static void ready(struct world *w, const char *name)
{
	w->st.sync_ready = realloc(w->st.sync_ready, (w->st.n_sync_ready + 1) * sizeof(char *));
	w->st.sync_ready[w->st.n_sync_ready++] = strdup(name);
}

S(s_enable)
{
	as_leader(w);
	w->s.synchronous_mode = true;
}

S(s_enable_fails)
{
	s_enable(w);
	w->sync_out[0] = PGKEEL_HA_FAIL;
}

S(s_enable_null_leader)
{
	s_enable(w);
	w->c.sync = "{\"leader\":null,\"sync_standby\":null}";
}

S(s_add_replica)
{
	sync_leader(w);
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-2", "sync", WAL);
}

S(s_add_replica_behind)
{
	s_add_replica(w);
	w->rs_ws[0].flush_lsn = WAL - 1;
}

S(s_add_replica_potential)
{
	s_add_replica(w);
	w->rs_ws[0].sync_state = (char *)"potential";
}

S(s_add_replica_cas_lost)
{
	s_add_replica(w);
	w->sync_out[0] = PGKEEL_HA_FAIL;
}

S(s_standby_gone)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	ssn(w, Q2);
	ready(w, "pg-2");
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-3", "sync", WAL);
}

S(s_standby_gone_cas_lost)
{
	s_standby_gone(w);
	w->sync_out[0] = PGKEEL_HA_FAIL;
}

S(s_strict_none)
{
	sync_leader(w);
	w->s.synchronous_mode_strict = true;
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	ssn(w, Q2);
}

S(s_nonstrict_none)
{
	s_strict_none(w);
	w->s.synchronous_mode_strict = false;
}

S(s_strict_star_steady)
{
	sync_leader(w);
	w->s.synchronous_mode_strict = true;
	ssn(w, "*");
}

S(s_repair)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	w->st.sync_ssn = strdup(Q2);
	w->pg.synchronous_standby_names = "";
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-2", "sync", WAL);
}

S(s_other_leader)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-9\",\"sync_standby\":\"pg-2\"}";
	ssn(w, Q2);
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
}

S(s_nosync)
{
	sync_leader(w);
	find_m(&w->c, "pg-2")->tags = "{\"nosync\":true}";
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
}

S(s_not_running)
{
	sync_leader(w);
	find_m(&w->c, "pg-2")->state = "starting";
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
}

S(s_not_member)
{
	sync_leader(w);
	ws_add(w->ws, &w->n_ws, "pg-9", "async", WAL);
}

S(s_not_streaming)
{
	sync_leader(w);
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
	w->ws[0].state = (char *)"catchup";
}

S(s_no_flush)
{
	sync_leader(w);
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
	w->ws[0].flush_lsn = -1;
}

S(s_maxlag)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	ssn(w, Q2);
	w->s.maximum_lag_on_syncnode = 1000;
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL - 10000);
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-3", "sync", WAL);
}

S(s_maxlag_off)
{
	s_maxlag(w);
	w->s.maximum_lag_on_syncnode = -1;
}

S(s_two)
{
	sync_leader(w);
	w->s.synchronous_node_count = 2;
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-2", "sync", WAL);
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-3", "sync", WAL);
}

S(s_two_one_confirmed)
{
	s_two(w);
	w->rs_ws[1].sync_state = (char *)"potential";
}

S(s_two_on_95)
{
	s_two(w);
	w->pg.server_version = 90524;
}

S(s_nofailover_last)
{
	sync_leader(w);
	find_m(&w->c, "pg-2")->tags = "{\"nofailover\":true}";
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL + 10);
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-3", "sync", WAL);
}

S(s_remote_apply)
{
	sync_leader(w);
	w->pg.synchronous_commit = "remote_apply";
	ws_add(w->ws, &w->n_ws, "pg-2", "async", WAL);
	w->ws[0].flush_lsn = WAL + 10;
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
	w->ws[1].replay_lsn = WAL + 5;
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-3", "sync", WAL + 5);
}

S(s_sync_wins_over_lsn)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	ssn(w, Q2);
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL - 100);
	ws_add(w->ws, &w->n_ws, "pg-3", "async", WAL);
}

S(s_disable)
{
	as_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
}

S(s_ssn_changed)
{
	sync_leader(w);
	w->pg.synchronous_standby_names = Q2;
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
}

S(s_ssn_changed_behind)
{
	s_ssn_changed(w);
	w->ws[0].flush_lsn = WAL - 1;
	w->rs_mark = WAL;
}

S(s_ready_kept)
{
	sync_leader(w);
	ssn(w, Q2);
	ready(w, "pg-2");
	w->st.sync_mark = WAL + 100;
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
}

S(s_ready_dropped)
{
	sync_leader(w);
	w->st.sync_ssn = strdup(Q2);
	ready(w, "pg-2");
	w->pg.synchronous_standby_names = Q3;
	ws_add(w->ws, &w->n_ws, "pg-3", "sync", WAL - 1);
}

S(s_first_syntax)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	ssn(w, "FIRST 1 (\"pg-2\")");
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
}

S(s_unparsable)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"pg-2\"}";
	ssn(w, "pg-2");
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
	w->rs_mark = WAL;
	ws_add(w->rs_ws, &w->n_rs_ws, "pg-2", "sync", WAL);
}

S(s_case_insensitive)
{
	sync_leader(w);
	w->c.sync = "{\"leader\":\"pg-1\",\"sync_standby\":\"PG-2\"}";
	ssn(w, Q2);
	ws_add(w->ws, &w->n_ws, "pg-2", "sync", WAL);
}

S(s_standby_cluster)
{
	s_add_replica(w);
	w->s.standby_cluster = true;
	w->s.standby_cluster_has_conn = true;
	w->pg.is_primary = false;
	w->pg.role = PGKEEL_HA_ROLE_STANDBY_LEADER;
	find_m(&w->c, "pg-1")->role = "standby_leader";
}

static void ck_added(struct run *r)
{
	const struct pgkeel_ha_state *st = &run_plan(r)->state;

	assert_string_equal(st->sync_ssn, Q2);
	assert_int_equal(st->sync_mark, WAL);
	assert_int_equal(st->n_sync_ready, 1);
	assert_string_equal(st->sync_ready[0], "pg-2");
}

static void ck_marked(struct run *r)
{
	const struct pgkeel_ha_state *st = &run_plan(r)->state;

	assert_string_equal(st->sync_ssn, Q2);
	assert_int_equal(st->sync_mark, WAL);
}

static void ck_no_ready(struct run *r)
{
	assert_int_equal(run_plan(r)->state.n_sync_ready, 0);
}

static void ck_ready_kept(struct run *r)
{
	assert_int_equal(run_plan(r)->state.n_sync_ready, 1);
	assert_int_equal(run_plan(r)->state.sync_mark, WAL + 100);
}

const struct row ha_rows_sync[] = {
    {"sync: /sync is enabled when missing", s_enable, "update(status) write_sync(pg-1:,nocas)", FX,
     LEADING, NULL, NULL},
    {"sync: enabling /sync failed", s_enable_fails, "update(status) write_sync(pg-1:,nocas)", FX,
     LEADING, NULL, NULL},
    {"sync: /sync without a leader is enabled", s_enable_null_leader,
     "update(status) write_sync(pg-1:)", FX, LEADING, NULL, NULL},
    {"sync: a new standby: SSN first, /sync once confirmed", s_add_replica,
     "update(status) resample('" Q2 "') write_sync(pg-1:pg-2)", FX, LEADING, ck_added, NULL},
    {"sync: a new standby not caught up with the mark", s_add_replica_behind,
     "update(status) resample('" Q2 "')", FX, LEADING, NULL, NULL},
    {"sync: a new standby only potential", s_add_replica_potential,
     "update(status) resample('" Q2 "')", FX, LEADING, NULL, NULL},
    {"sync: adding, the /sync CAS lost", s_add_replica_cas_lost,
     "update(status) resample('" Q2 "') write_sync(pg-1:pg-2)", FX, LEADING, NULL, NULL},
    {"sync: the standby is gone: /sync first, then SSN", s_standby_gone,
     "update(status) write_sync(pg-1:) resample('" Q3 "') write_sync(pg-1:pg-3)", FX, LEADING, NULL,
     NULL},
    {"sync: removing, the /sync CAS lost: stop", s_standby_gone_cas_lost,
     "update(status) write_sync(pg-1:)", FX, LEADING, NULL, NULL},
    {"sync strict: no standby left, '*'", s_strict_none, "update(status) write_sync(pg-1:)",
     FX_SSN("*"), LEADING, NULL, NULL},
    {"sync: no standby left, asynchronous", s_nonstrict_none, "update(status) write_sync(pg-1:)",
     FX_SSN(""), LEADING, NULL, NULL},
    {"sync strict: '*' stays", s_strict_star_steady, "update(status)", FX_SSN("*"), LEADING, NULL,
     NULL},
    {"sync: /sync names a standby SSN does not list: repaired", s_repair,
     "update(status) write_sync(pg-1:) resample('" Q2 "') write_sync(pg-1:pg-2)",
     "watchdog_keepalive ensure_checkpoint force_wal sync_slots failsafe_active(off) "
     "touch_member",
     LEADING, NULL, NULL},
    {"sync: /sync names another leader: rewritten", s_other_leader,
     "update(status) write_sync(pg-1:) write_sync(pg-1:pg-2)", FX_SSN(Q2), LEADING, NULL, NULL},
    {"sync: a nosync member is never chosen", s_nosync, "update(status)", FX, LEADING, NULL, NULL},
    {"sync: a member not running is not chosen", s_not_running, "update(status)", FX, LEADING, NULL,
     NULL},
    {"sync: a walsender that is no member is ignored", s_not_member, "update(status)", FX, LEADING,
     NULL, NULL},
    {"sync: a walsender not streaming is ignored", s_not_streaming, "update(status)", FX, LEADING,
     NULL, NULL},
    {"sync: a walsender without a flush position is ignored", s_no_flush, "update(status)", FX,
     LEADING, NULL, NULL},
    {"sync: maximum_lag_on_syncnode swaps a lagging standby", s_maxlag,
     "update(status) write_sync(pg-1:) resample('" Q3 "') write_sync(pg-1:pg-3)", FX, LEADING, NULL,
     NULL},
    {"sync: without maximum_lag_on_syncnode the standby stays", s_maxlag_off, "update(status)", FX,
     LEADING, NULL, NULL},
    {"sync: synchronous_node_count 2", s_two,
     "update(status) resample('2 (" Q2 "," Q3 ")') write_sync(pg-1:pg-2,pg-3)", FX, LEADING, NULL,
     NULL},
    {"sync: two wanted, one confirmed", s_two_one_confirmed,
     "update(status) resample('2 (" Q2 "," Q3 ")') write_sync(pg-1:pg-2)", FX, LEADING, NULL, NULL},
    {"sync: before 9.6 a single standby", s_two_on_95,
     "update(status) resample('" Q2 "') write_sync(pg-1:pg-2)", FX, LEADING, NULL, NULL},
    {"sync: nofailover members are chosen last", s_nofailover_last,
     "update(status) resample('" Q3 "') write_sync(pg-1:pg-3)", FX, LEADING, NULL, NULL},
    {"sync: remote_apply compares replay positions", s_remote_apply,
     "update(status) resample('" Q3 "') write_sync(pg-1:pg-3)", FX, LEADING, NULL, NULL},
    {"sync: the current sync standby is kept over a faster one", s_sync_wins_over_lsn,
     "update(status)", FX, LEADING, NULL, NULL},
    {"sync mode off: /sync deleted, the configured SSN back", s_disable, "update(status)",
     "watchdog_keepalive ensure_checkpoint delete_sync set_ssn(user) sync_slots "
     "failsafe_active(off) touch_member",
     LEADING, NULL, NULL},
    {"sync: SSN changed behind our back: new mark, WAL forced", s_ssn_changed,
     "update(status) write_sync(pg-1:pg-2)",
     "watchdog_keepalive ensure_checkpoint force_wal set_ssn('" Q2 "') sync_slots "
     "failsafe_active(off) touch_member",
     LEADING, ck_marked, NULL},
    {"sync: SSN changed, the standby is behind the mark", s_ssn_changed_behind,
     "update(status) resample('" Q2 "')",
     "watchdog_keepalive ensure_checkpoint force_wal sync_slots failsafe_active(off) "
     "touch_member",
     LEADING, NULL, NULL},
    {"sync: a standby once ready stays ready", s_ready_kept, "update(status) write_sync(pg-1:pg-2)",
     FX_SSN(Q2), LEADING, ck_ready_kept, NULL},
    {"sync: a standby leaving SSN loses its readiness", s_ready_dropped,
     "update(status) resample('" Q3 "')",
     "watchdog_keepalive ensure_checkpoint force_wal sync_slots failsafe_active(off) "
     "touch_member",
     LEADING, ck_no_ready, NULL},
    {"sync: FIRST n (...) is understood", s_first_syntax, "update(status)", FX, LEADING, NULL,
     NULL},
    {"sync: an unparsable SSN counts as empty", s_unparsable,
     "update(status) write_sync(pg-1:) resample('" Q2 "') write_sync(pg-1:pg-2)", FX, LEADING, NULL,
     NULL},
    {"sync: /sync names compare case-insensitively", s_case_insensitive, "update(status)", FX,
     LEADING, NULL, NULL},
    {"sync: ignored in a standby cluster", s_standby_cluster, "update(status) reload",
     "watchdog_keepalive handle_parameter_change follow(remote,standby_leader) sync_slots "
     "failsafe_active(off) touch_member",
     "no action. I am (pg-1), the standby leader with the lock", NULL, NULL},
};

const size_t ha_rows_sync_n = PGKEEL_ARRAY_LEN(ha_rows_sync);
