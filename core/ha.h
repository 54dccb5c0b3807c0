/*
 * ha: the HA decision of one Patroni cycle (spec/patroni-dcs-and-ha.md §5
 * and §6.1-6.6), as a pure function.
 *
 * pgkeel_ha_decide() does no I/O, reads no clock, logs nothing and touches no
 * global.  Everything it needs is in struct pgkeel_ha_facts; what it decides
 * is either a final *plan* (ordered effects, the cycle's message in Patroni
 * 3.0.2's words, the loop's memory for the next cycle) or a *request* for one
 * more fact whose answer only I/O can give (probe these peers' /patroni, try
 * to take the leader lock, renew it, CAS-write the sync key, reload the
 * cluster, check whether pg_rewind is needed ...).  The loop performs the
 * request, stores the answer in facts->r and calls again.  This is how a
 * Patroni cycle interleaves I/O and decisions; here the interleaving is data.
 *
 * Protocol (one cycle):
 *
 *	struct pgkeel_ha_facts f = { ...the cycle's facts..., .r = {0} };
 *	struct pgkeel_ha_decision d;
 *
 *	pgkeel_ha_decision_init(&d);
 *	for (int i = 0; i < PGKEEL_HA_MAX_CALLS; i++) {
 *		pgkeel_ha_decide(&f, &d);
 *		if (d.final)
 *			break;
 *		perform(&d.request, &f.r);   // one request: append its answer to f.r
 *	}
 *	pgkeel_ha_state_copy(&loop_state, &d.plan.state);  // adopt the memory first,
 *	execute(&d.plan);      // then the effects in order (some update loop_state),
 *	pgkeel_ha_decision_clear(&d);                       // and log d.plan.message
 *
 * Each call evaluates the cycle from the top with the facts and the answers
 * so far, so the answers must be appended (never changed) and nothing else in
 * the facts may change between the calls of one cycle (is_leader keeps its
 * value from the start of the cycle even after the lock was taken).  The
 * decision never asks the same question twice in a cycle (a reload may be
 * asked again at a later point, as Patroni reloads twice after winning the
 * race in a standby cluster), so a cycle is at most PGKEEL_HA_MAX_CALLS calls
 * (every request kind has a fixed budget, listed with the kinds below); a
 * loop that reaches the limit has a bug and ends the cycle without effects.
 * Pointers in a request or a plan point into the facts (cluster snapshots,
 * settings) or into the decision itself: valid until the next
 * pgkeel_ha_decide() or pgkeel_ha_decision_clear().
 *
 * Example: a replica of a cluster whose leader key just expired.
 *	call 1 -> PGKEEL_HA_REQ_PROBE {pg-1 http://10.0.0.1:8008/patroni,
 *	                               pg-3 http://10.0.0.3:8008/patroni}
 *	          the loop GETs both in parallel (2 s, no retry; peers.h) and appends
 *	          one pgkeel_ha_peer per target to f.r.peers
 *	call 2 -> PGKEEL_HA_REQ_ACQUIRE_LOCK           (I am the healthiest)
 *	          the loop calls attempt_to_acquire_leader: f.r.acquire_lock = OK
 *	call 3 -> PGKEEL_HA_REQ_RELOAD_CLUSTER         (Patroni reloads after winning)
 *	call 4 -> final: SET_SSN NULL (sync mode off), FAILSAFE_ACTIVE off,
 *	          PROMOTE (task "promote"), SYNC_SLOTS (no copies while promoting),
 *	          FAILSAFE_ACTIVE off, TOUCH_MEMBER; message "promoted self to
 *	          leader by acquiring session lock"
 *
 * Effects are executed after the final call, in order; requests are executed
 * when asked.  Where Patroni needs an effect to happen before an I/O whose
 * answer matters, the request carries the effect (SYNC_RESAMPLE sets
 * synchronous_standby_names itself).  A DCS error (an answer of ERROR, or a
 * failed reload) ends the normal path: the plan keeps the effects decided so
 * far and continues with §5.9 (dcs_failed is set; the member key is not
 * touched).  Messages carry Patroni's "PAUSE: " prefix while paused.
 *
 * What stays with the loop: gathering the facts (PostgreSQL state, the
 * cluster snapshot, the old one), the lock deadline (after an ACQUIRE or
 * UPDATE answered OK the lock is valid for the granted TTL; SET_LEADER_VALID
 * effects say when Patroni's is_leader changes otherwise), the async task
 * runner (effects with a `task` start one, under that name, and the loop
 * reports it in facts->task until it ends; a task's outcome that Patroni keeps
 * in its CriticalTask goes into state.task_result), and the rest of §5.1
 * (name uniqueness, config reload, watch).  Shutdown (§5.10) and the on-shutdown
 * release of demote/shutdown have their own entry points below.
 *
 * Version policy: messages, role strings ("master") and wire values are
 * Patroni 3.0.2's; safety rules follow the newest release where the spec
 * records a fix (timeline check of a running primary in the race, the
 * is-primary test of a probed peer, /sync enabled when empty and repaired
 * when inconsistent, the SSN value checked, rewind state reset after pause,
 * synchronous demotion when the DCS is lost, start as primary after a crash
 * while holding the lock, no crash recovery with backup_label, the sync
 * standby set compared case-insensitively, sync mode ignored in a standby
 * cluster).  Not implemented: quorum commit, failover_priority/sync_priority/
 * nostream tags, demote-cluster, primary_race_backoff, MPP/Citus, the
 * rewind check when the same leader's timeline moved [4.1.1], and a manual
 * failover to an asynchronous node (3.0.2 refuses it, as here).  Where the
 * protocol differs from Patroni's code on purpose: a scheduled action due
 * within loop_wait is not slept for but asked for (plan.wake_in_ms); a peer is
 * probed once per cycle, not once per check; the reload after writing a
 * missing config key is left out (nothing decided afterwards depends on it).
 */
#ifndef PGKEEL_HA_H
#define PGKEEL_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pgkeel/host.h>

#include "pg_ctl.h"
#include "pg_demote.h"
#include "pg_query.h"

struct json_object;
struct pgkeel_cluster;
struct pgkeel_config;

/* Budgets: no cycle asks more than this many times of one kind (the answers
 * arrays are this long).  Probes: at most two rounds per cycle (a failover
 * candidate, then the others), each only for members not probed yet. */
#define PGKEEL_HA_MAX_SYNC_WRITES   4
#define PGKEEL_HA_MAX_RELOADS       3
#define PGKEEL_HA_MAX_REWIND_CHECKS 2
/* 2 probe rounds + update/acquire/initialize + 4 sync writes + 3 reloads +
 * 2 rewind checks + failsafe + watchdog + resample = 17 requests, the final
 * call, and room to spare. */
#define PGKEEL_HA_MAX_CALLS 24

/* ---- vocabulary ---- */

/* The manager's role (Patroni's state_handler.role); the primary is "master". */
enum pgkeel_ha_role {
	PGKEEL_HA_ROLE_UNINITIALIZED = 0,
	PGKEEL_HA_ROLE_MASTER,
	PGKEEL_HA_ROLE_REPLICA,
	PGKEEL_HA_ROLE_STANDBY_LEADER,
	PGKEEL_HA_ROLE_PROMOTED,
	PGKEEL_HA_ROLE_DEMOTED,
};

/* "uninitialized", "master", "replica", "standby_leader", "promoted", "demoted". */
const char *pgkeel_ha_role_name(enum pgkeel_ha_role r);
/* The role a callback receives: "master" for promoted too (Patroni 3.0.2). */
const char *pgkeel_ha_role_callback_name(enum pgkeel_ha_role r);

/* Patroni's rewind state machine (rewind.py); the order matters: "executed" = > NOT_NEED. */
enum pgkeel_ha_rewind_state {
	PGKEEL_HA_REWIND_INITIAL = 0,
	PGKEEL_HA_REWIND_CHECKPOINT, /* the new primary's post-promote CHECKPOINT is done */
	PGKEEL_HA_REWIND_CHECK,      /* a check was triggered */
	PGKEEL_HA_REWIND_NEED,
	PGKEEL_HA_REWIND_NOT_NEED,
	PGKEEL_HA_REWIND_SUCCESS,
	PGKEEL_HA_REWIND_FAILED,
};

/* The answer of a DCS request. */
enum pgkeel_ha_outcome {
	PGKEEL_HA_PENDING = 0, /* not asked / not answered yet */
	PGKEEL_HA_OK,
	PGKEEL_HA_FAIL,  /* a logical failure: CAS lost, key exists, lock held (CONFLICT) */
	PGKEEL_HA_ERROR, /* the DCS is unreachable (UNAVAILABLE): §5.9 takes over */
};

/* Patroni's CriticalTask result shared by bootstrap, post_bootstrap and promote. */
enum pgkeel_ha_task_result {
	PGKEEL_HA_TASK_NONE = 0, /* reset, not completed */
	PGKEEL_HA_TASK_TRUE,  /* post_bootstrap (or the standby clone) done; pre_promote passed */
	PGKEEL_HA_TASK_FALSE, /* post_bootstrap failed; pre_promote failed */
};

/* ---- the loop's memory across cycles (in: facts->state; out: plan.state) ---- */

struct pgkeel_ha_state {
	enum pgkeel_ha_rewind_state rewind;
	bool recovering;    /* a start/restart was issued: check it next cycle (row 8) */
	bool bootstrapping; /* this node won the initialize race */
	bool was_paused;
	bool join_aborted; /* refused to join: shutdown leaves PostgreSQL alone */
	enum pgkeel_ha_task_result task_result;
	int64_t crash_recovery_started_ms; /* monotonic; 0: not in this start */
	int64_t start_timeout_s;           /* Patroni's _start_timeout; -1: none */
	int64_t released_key_ms;           /* pre_promote failure: released at (monotonic); 0 */
	/* SyncHandler memory (§6.2): the SSN value last seen, the primary's LSN when it
	 * changed, the standbys seen catching up with that mark. */
	char *sync_ssn; /* NULL: never seen */
	int64_t sync_mark;
	char **sync_ready;
	size_t n_sync_ready;
};

void pgkeel_ha_state_init(struct pgkeel_ha_state *s);
/* Deep copy; dst is cleared first (it must be initialized). */
void pgkeel_ha_state_copy(struct pgkeel_ha_state *dst, const struct pgkeel_ha_state *src);
void pgkeel_ha_state_clear(struct pgkeel_ha_state *s);

/* ---- settings: the effective configuration, typed ---- */

struct pgkeel_ha_settings {
	const char *name;
	int64_t ttl, loop_wait, retry_timeout;
	int64_t maximum_lag_on_failover;
	int64_t maximum_lag_on_syncnode;
	int64_t max_timelines_history;
	bool check_timeline;
	bool synchronous_mode; /* Patroni's parse_bool ("quorum" is not on in 3.0.2) */
	bool synchronous_mode_strict;
	int64_t synchronous_node_count;
	bool failsafe_mode;
	bool pause;
	bool standby_cluster; /* standby_cluster has a truthy host, port or restore_command */
	bool standby_cluster_has_conn; /* ... a truthy host or port (the remote has a conn_url) */
	int64_t primary_start_timeout; /* master_start_timeout as the alias */
	int64_t primary_stop_timeout;
	bool remove_data_directory_on_rewind_failure;
	bool remove_data_directory_on_diverged_timelines;
	/* local tags (Python truth values) */
	bool nofailover;
	bool nosync;
	const char *replicatefrom;
	bool has_bootstrap_section; /* the local file has `bootstrap:` */
	/* a create_replica_method other than basebackup has no_leader/no_master */
	bool clone_without_leader;
	bool standby_clone_without_leader; /* the same for standby_cluster.create_replica_methods */
};

/*
 * Fill s from a config snapshot (effective tree, local tree for bootstrap).
 * Strings point into cfg.  Pure: no I/O.
 */
void pgkeel_ha_settings_from_config(const struct pgkeel_config *cfg, struct pgkeel_ha_settings *s);

/* ---- facts about the local PostgreSQL ---- */

struct pgkeel_ha_pg {
	bool data_dir_empty;           /* Patroni's data_directory_empty() */
	const char *data_dir_error;    /* non-NULL: not accessible (the OSError text) */
	const char *sysid;             /* pg_controldata's system identifier; NULL: unknown */
	bool running;                  /* the postmaster is alive (is_running) */
	enum pgkeel_pgctl_state state; /* Patroni's state (pg_ctl.h names) */
	int64_t state_since_ms;        /* monotonic time of the last state change */
	bool is_primary;               /* running and not in recovery (Patroni's is_leader(),
	                                  the cached role when the query failed) */
	bool query_failed;             /* the status query failed this cycle */
	enum pgkeel_ha_role role;      /* the manager's role */
	bool cb_called;                /* a callback fired since pgkeel started */
	int64_t timeline;              /* primary: its timeline; replica: the replication
	                                  timeline (IDENTIFY_SYSTEM); 0: unknown */
	int64_t wal_position;          /* primary: current LSN; replica: max(received, replayed) */
	bool pending_restart;
	int server_version; /* server_version_num, 0: unknown */
	const char *postmaster_start_time;
	const char *controldata_state; /* "Database cluster state" (PostgreSQL stopped) */
	bool backup_label;             /* restored from a backup: no single-user recovery */
	bool recovery_conf;            /* recovery is configured in the data directory */
	bool can_rewind;           /* use_pg_rewind, pg_rewind --help, wal_log_hints/checksums */
	bool standby_history_next; /* pg_wal/<leader tl + 1>.history exists (standby cluster) */
	const char *synchronous_standby_names; /* current value; NULL: "" */
	const char *synchronous_commit;
	const struct pgkeel_pg_walsender *walsenders; /* pg_stat_replication rows */
	size_t n_walsenders;
};

/* A peer's /patroni answer (§5.4.1), from peers.h's pgkeel_peer_status;
 * unreachable: reachable false, the rest 0. */
struct pgkeel_ha_peer {
	const char *name;
	bool reachable;
	bool in_recovery;
	int64_t wal_position; /* max(received, replayed) when in recovery, else 0 */
	int64_t timeline;
	bool nofailover; /* tags.nofailover (truthy) in the answer */
	bool watchdog_failed;
};

/* The leader that pinged us through POST /failsafe within ttl (§5.9). */
struct pgkeel_ha_failsafe_leader {
	const char *name;
	const char *api_url;
	const char *conn_url;
};

/* A restart scheduled through POST /restart (Patroni's scheduled_restart). */
struct pgkeel_ha_scheduled_restart {
	const char *schedule;              /* ISO-8601 with a time zone */
	const char *postmaster_start_time; /* when it was scheduled; NULL: unknown */
	const char *role;                  /* NULL: any */
	const char *postgres_version;      /* NULL: any */
	bool restart_pending;
	int64_t timeout_s; /* -1: primary_start_timeout */
};

/* ---- answers to requests (appended by the loop) ---- */

struct pgkeel_ha_sync_write {
	enum pgkeel_ha_outcome outcome;
	const char *version; /* OK: the new CAS token of the sync key (NULL: unknown) */
};

enum pgkeel_ha_rewind_check {
	PGKEEL_HA_CHECK_UNKNOWN = 0, /* could not tell (leader not a primary, unreachable...) */
	PGKEEL_HA_CHECK_NEED,
	PGKEEL_HA_CHECK_NOT_NEED,
};

struct pgkeel_ha_resample {
	bool done;
	const char *ssn; /* synchronous_standby_names read back */
	int64_t mark;    /* the primary's LSN right after the reload */
	const struct pgkeel_pg_walsender *walsenders;
	size_t n_walsenders;
};

struct pgkeel_ha_answers {
	const struct pgkeel_ha_peer *peers; /* every peer probed this cycle */
	size_t n_peers;
	enum pgkeel_ha_outcome update_lock;
	enum pgkeel_ha_outcome acquire_lock;
	enum pgkeel_ha_outcome initialize_race;
	enum pgkeel_ha_outcome failsafe_check;    /* OK: every peer accepted */
	enum pgkeel_ha_outcome watchdog_activate; /* OK: activated or not required */
	struct pgkeel_ha_sync_write sync_writes[PGKEEL_HA_MAX_SYNC_WRITES];
	size_t n_sync_writes;
	/* reloaded snapshots in order; a NULL entry: the load failed (DCS error) */
	const struct pgkeel_cluster *reloads[PGKEEL_HA_MAX_RELOADS];
	size_t n_reloads;
	enum pgkeel_ha_rewind_check rewind_checks[PGKEEL_HA_MAX_REWIND_CHECKS];
	size_t n_rewind_checks;
	struct pgkeel_ha_resample resample;
};

/* ---- the facts of one cycle ---- */

struct pgkeel_ha_facts {
	const struct pgkeel_ha_settings *cfg;
	const struct pgkeel_ha_state *state;
	/* This cycle's snapshot; when the load failed (dcs_failed) the last one loaded
	 * (NULL if none): §5.9 reads its failsafe key. */
	const struct pgkeel_cluster *cluster;
	bool dcs_failed;
	/* Patroni's old_cluster after this load: the last snapshot with a leader,
	 * or the first one (the loop updates it as load_cluster_from_dcs does). */
	const struct pgkeel_cluster *old_cluster;
	int64_t now_ms;      /* monotonic */
	int64_t now_wall_ms; /* wall clock, only for scheduled_at */
	bool is_leader;      /* my lock is valid now (Patroni's is_leader()) */
	const struct pgkeel_ha_pg *pg;
	bool watchdog_running;
	bool watchdog_healthy; /* not required, or required and usable */
	const char *task;      /* the running async task's name; NULL: none */
	const struct pgkeel_ha_failsafe_leader *failsafe_leader; /* NULL: none within ttl */
	bool failsafe_active; /* Patroni's failsafe_is_active() */
	const struct pgkeel_ha_scheduled_restart *scheduled_restart; /* NULL: none */
	unsigned int random; /* picks the clone source among clonefrom members */
	struct pgkeel_ha_answers r;
};

/* ---- requests ---- */

enum pgkeel_ha_req {
	PGKEEL_HA_REQ_NONE = 0,
	/* GET each target's api_url (2 s, no retry, in parallel); append one
	 * pgkeel_ha_peer per target to r.peers (at most two rounds a cycle). */
	PGKEEL_HA_REQ_PROBE,
	/* update_leader: renew my lock; with_status also writes the status key
	 * (optime = current LSN, slots), with_failsafe the failsafe key (every
	 * member's api_url and mine).  Answer in r.update_lock; OK: the lock is
	 * valid again (watchdog keepalive is an effect, not part of this). */
	PGKEEL_HA_REQ_UPDATE_LOCK,
	/* attempt_to_acquire_leader.  r.acquire_lock. */
	PGKEEL_HA_REQ_ACQUIRE_LOCK,
	/* initialize(create_new=true, sysid=""): the bootstrap race.  r.initialize_race
	 * (ERROR counts as FAIL, as Patroni's backends return False on errors here). */
	PGKEEL_HA_REQ_INITIALIZE_RACE,
	/* write_sync_state(leader, standbys, CAS on version; NULL version: none).
	 * Append to r.sync_writes (ERROR counts as FAIL: the promotion is postponed).
	 * Budget PGKEEL_HA_MAX_SYNC_WRITES. */
	PGKEEL_HA_REQ_WRITE_SYNC,
	/* After delay_ms, load the cluster again (and update old_cluster); append the
	 * snapshot (or NULL on failure) to r.reloads.  Budget PGKEEL_HA_MAX_RELOADS. */
	PGKEEL_HA_REQ_RELOAD_CLUSTER,
	/* Patroni's _check_timeline_and_lsn against `upstream` (pg_rewind_run.h);
	 * append to r.rewind_checks.  Budget PGKEEL_HA_MAX_REWIND_CHECKS. */
	PGKEEL_HA_REQ_REWIND_CHECK,
	/* check_failsafe_topology: POST /failsafe to every other entry of the last
	 * known failsafe key (2 s, 1 retry, parallel).  r.failsafe_check. */
	PGKEEL_HA_REQ_FAILSAFE_CHECK,
	/* watchdog.activate().  r.watchdog_activate (OK also when the mode is off). */
	PGKEEL_HA_REQ_WATCHDOG_ACTIVATE,
	/* Set synchronous_standby_names = ssn and reload PostgreSQL; after ~100 ms
	 * read it back with the current LSN (the mark), force some WAL (a DO block
	 * with synchronous_commit=off calling txid_current()), wait 2 s, read
	 * pg_stat_replication again: r.resample. */
	PGKEEL_HA_REQ_SYNC_RESAMPLE,
};

const char *pgkeel_ha_req_name(enum pgkeel_ha_req k);

enum pgkeel_ha_upstream_kind {
	PGKEEL_HA_UP_NONE = 0,
	PGKEEL_HA_UP_MEMBER,   /* a member of the cluster (or a leader without a member key) */
	PGKEEL_HA_UP_REMOTE,   /* the standby cluster's remote primary (standby_cluster config) */
	PGKEEL_HA_UP_FAILSAFE, /* the leader known from POST /failsafe */
};

struct pgkeel_ha_upstream {
	enum pgkeel_ha_upstream_kind kind;
	const char *name;     /* MEMBER, FAILSAFE; REMOTE: "remote_member" */
	const char *conn_url; /* from the member data; NULL: none known */
};

struct pgkeel_ha_probe_target {
	const char *name;
	const char *api_url;
};

struct pgkeel_ha_request {
	enum pgkeel_ha_req kind;
	struct pgkeel_ha_probe_target *targets; /* PROBE */
	size_t n_targets;
	bool with_status;        /* UPDATE_LOCK */
	bool with_failsafe;      /* UPDATE_LOCK */
	const char *sync_leader; /* WRITE_SYNC */
	const char *const *sync_standbys;
	size_t n_sync_standbys;
	const char *sync_version;
	int64_t delay_ms;                   /* RELOAD_CLUSTER */
	struct pgkeel_ha_upstream upstream; /* REWIND_CHECK */
	const char *ssn;                    /* SYNC_RESAMPLE */
};

/* ---- effects ---- */

enum pgkeel_ha_fx {
	PGKEEL_HA_FX_TOUCH_MEMBER = 0, /* write members/<me> from the state after the effects */
	PGKEEL_HA_FX_INITIALIZE,       /* initialize key := sysid; create_new: create-if-absent */
	PGKEEL_HA_FX_CANCEL_INITIALIZATION, /* delete initialize, stop immediate (retry_timeout),
	                                      move the data directory to <dir>.failed */
	PGKEEL_HA_FX_SET_CONFIG,            /* config key := local dynamic configuration, no CAS */
	PGKEEL_HA_FX_TAKE_LEADER,           /* leader key := me, unconditionally */
	PGKEEL_HA_FX_DELETE_LEADER,       /* delete the leader key if mine; lsn >= 0: last optime */
	PGKEEL_HA_FX_WRITE_LEADER_OPTIME, /* status optime := lsn */
	PGKEEL_HA_FX_SET_LEADER_VALID,    /* on: valid until now + ttl; off: not the leader */
	PGKEEL_HA_FX_SET_FAILOVER,        /* failover key := {leader, member, scheduled_at};
	                                     all NULL: {} ; version NULL: no CAS */
	PGKEEL_HA_FX_DELETE_SYNC,         /* delete_sync_state(version) */
	PGKEEL_HA_FX_SET_HISTORY,         /* history key for my timeline (history.h's
	                                     pgkeel_history_update from pg_wal/<timeline>.history) */
	PGKEEL_HA_FX_FAILSAFE_ACTIVE,     /* on: failsafe active since now; off: inactive */
	PGKEEL_HA_FX_WATCHDOG_DISABLE,
	PGKEEL_HA_FX_WATCHDOG_KEEPALIVE,
	PGKEEL_HA_FX_SET_ROLE,  /* role */
	PGKEEL_HA_FX_SET_STATE, /* state ("crashed", "stopped", "running") */
	PGKEEL_HA_FX_CALLBACK,  /* action ("on_start", "on_role_change"), role */
	PGKEEL_HA_FX_STOP,      /* stop PostgreSQL: stop_mode, timeout_s (-1: none) */
	PGKEEL_HA_FX_DEMOTE,    /* demote(demote_mode) (§5.7): stop now (checkpoint,
	                           release, rewind check as the mode says), then start
	                           as a replica: immediate modes in the background as
	                           task "starting after demotion", offline at once;
	                           with `task` set (graceful) all of it is that task */
	PGKEEL_HA_FX_PROMOTE,   /* task "promote": pre_promote (task_result), pg_ctl
	                           promote, role promoted, on_role_change */
	PGKEEL_HA_FX_START,     /* task: start PostgreSQL as role following upstream
	                           (master: as primary), timeout_s; sets recovering */
	PGKEEL_HA_FX_FOLLOW,    /* point recovery at upstream with role: when the recovery
	                           configuration changes, restart (task "changing
	                           primary_conninfo and restarting") or reload, and set the
	                           rewind state to CHECK if rewind/reinit is allowed and it
	                           is not NEED; when nothing changes and role is
	                           standby_leader but the manager's is not: set it and fire
	                           on_role_change */
	PGKEEL_HA_FX_HANDLE_PARAMETER_CHANGE, /* apply pending PostgreSQL parameter changes */
	PGKEEL_HA_FX_CRASH_RECOVERY,          /* task: single-user crash recovery */
	PGKEEL_HA_FX_REWIND,                  /* task: pg_rewind from upstream (pg_rewind_run.h) */
	PGKEEL_HA_FX_REINITIALIZE,            /* task: stop immediate, clone again */
	PGKEEL_HA_FX_BOOTSTRAP,         /* task: initdb/custom bootstrap; standby: clone from the
	                                   remote, then task_result and role standby_leader */
	PGKEEL_HA_FX_POST_BOOTSTRAP,    /* task: post_bootstrap; sets task_result */
	PGKEEL_HA_FX_CLONE,             /* task: create a replica from upstream (NONE: a method
	                                   without a leader); standby: from the remote member */
	PGKEEL_HA_FX_RESTART,           /* task "restart", timeout_s; while_not_sync_standby */
	PGKEEL_HA_FX_CANCEL_TASK,       /* cancel the running task (a starting postmaster killed) */
	PGKEEL_HA_FX_SET_SSN,           /* synchronous_standby_names := ssn ("": empty; NULL: not
	                                   managed, the configured postgresql.parameters value);
	                                   a reload only when the value changes */
	PGKEEL_HA_FX_FORCE_WAL,         /* DO block: txid_current() with synchronous_commit off */
	PGKEEL_HA_FX_ENSURE_CHECKPOINT, /* post-promote CHECKPOINT task; when done: rewind
	                                   state CHECKPOINT (member data has
	                                   checkpoint_after_promote:false until then) */
	PGKEEL_HA_FX_SYNC_SLOTS,        /* sync replication slots (§7.4), dcs_failed: the failsafe
	                                   view; copy_allowed: missing logical slots may be copied
	                                   (task "copy_logical_slots", see
	                                   pgkeel_ha_copy_slots_message).  Skipped when an earlier
	                                   effect of the plan started a task (FOLLOW's restart) */
	PGKEEL_HA_FX_CLEAR_SCHEDULED_RESTART,
	PGKEEL_HA_FX_SANITY_CHECKS, /* schedule the PostgreSQL checks after a pause */
	PGKEEL_HA_FX_FATAL,         /* exit(exit_code) with message, after the effects before */
};

const char *pgkeel_ha_fx_name(enum pgkeel_ha_fx k);

struct pgkeel_ha_effect {
	enum pgkeel_ha_fx kind;
	const char *task;      /* async effects: the task name Patroni gives it */
	bool create_new;       /* INITIALIZE */
	const char *sysid;     /* INITIALIZE */
	int64_t lsn;           /* DELETE_LEADER, WRITE_LEADER_OPTIME; -1: none */
	bool on;               /* SET_LEADER_VALID, FAILSAFE_ACTIVE */
	const char *fo_leader; /* SET_FAILOVER */
	const char *fo_candidate;
	const char *fo_scheduled_at;
	const char *version;      /* SET_FAILOVER, DELETE_SYNC: CAS token; NULL: none */
	int64_t timeline;         /* SET_HISTORY */
	enum pgkeel_ha_role role; /* SET_ROLE, CALLBACK, START, FOLLOW */
	const char *state;        /* SET_STATE */
	const char *action;       /* CALLBACK */
	enum pgkeel_pgctl_stop_mode stop_mode; /* STOP */
	int64_t timeout_s;                     /* STOP, START, RESTART; -1: none */
	enum pgkeel_demote_mode demote_mode;   /* DEMOTE */
	struct pgkeel_ha_upstream upstream;    /* START, FOLLOW, CLONE, REWIND, REINITIALIZE */
	bool standby;                          /* BOOTSTRAP, CLONE: standby cluster */
	bool while_not_sync_standby;           /* RESTART */
	const char *ssn;                       /* SET_SSN */
	bool dcs_failed;                       /* SYNC_SLOTS */
	bool copy_allowed;                     /* SYNC_SLOTS */
	int exit_code;                         /* FATAL */
	const char *message;                   /* FATAL */
};

/* A line Patroni logs while deciding; the loop logs it. */
struct pgkeel_ha_note {
	bool warning; /* else INFO */
	const char *text;
};

struct pgkeel_ha_plan {
	struct pgkeel_ha_effect *effects;
	size_t n_effects;
	const char *message;          /* the cycle's message, "PAUSE: " prefixed while paused */
	struct pgkeel_ha_state state; /* the loop's memory for the next cycle */
	bool dcs_failed;              /* §5.9 was taken: the member key is not touched */
	int64_t wake_in_ms;           /* >= 0: a scheduled action is due then; -1: none */
	struct pgkeel_ha_note *notes;
	size_t n_notes;
};

struct pgkeel_ha_decision {
	bool final;
	struct pgkeel_ha_request request; /* !final */
	struct pgkeel_ha_plan plan;       /* final */
	/* private */
	void **owned_;
	size_t n_owned_, cap_owned_;
	size_t cap_effects_, cap_notes_;
};

void pgkeel_ha_decision_init(struct pgkeel_ha_decision *d);
void pgkeel_ha_decision_clear(struct pgkeel_ha_decision *d);

/*
 * One step of the cycle (§5.2): d is cleared and filled.  Aborts only on
 * out of memory.
 */
void pgkeel_ha_decide(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);

/*
 * SIGTERM (§5.10).  A running task is cancelled (CANCEL_TASK) first.
 * Paused: WATCHDOG_DISABLE, PostgreSQL and the key stay.
 * Else (unless the join was aborted): STOP fast with primary_stop_timeout
 * (sync mode only), while_not_sync_standby when a replica in sync mode
 * without nosync; a leader calls pgkeel_ha_on_shutdown() when the shutdown
 * checkpoint is seen, and after a successful stop, if still holding the key
 * and it was not released, deletes it with the previous checkpoint LSN and
 * touches the member key.  Same protocol as pgkeel_ha_decide (no requests).
 */
void pgkeel_ha_shutdown(const struct pgkeel_ha_facts *f, struct pgkeel_ha_decision *d);

/*
 * The on_shutdown hook of demote (releasing modes) and shutdown: PostgreSQL
 * wrote its shutdown checkpoint at checkpoint_lsn (the one before it at
 * prev_lsn) but is still running.  Asks to PROBE the failover candidates;
 * then, when one has received checkpoint_lsn (§5.5): demote: SET_ROLE
 * demoted, DELETE_LEADER(prev_lsn), SET_LEADER_VALID off, TOUCH_MEMBER;
 * shutdown: DELETE_LEADER(prev_lsn).  Otherwise shutdown writes the optime
 * (WRITE_LEADER_OPTIME prev_lsn) and demote does nothing.  (The optime is
 * the checkpoint before the shutdown checkpoint, as Patroni >= 3.2.1.)
 */
void pgkeel_ha_on_shutdown(const struct pgkeel_ha_facts *f, bool demote, int64_t checkpoint_lsn,
                           int64_t prev_lsn, struct pgkeel_ha_decision *d);

/*
 * POST /restart without a schedule (§5.3.11): req's role, postgres_version,
 * restart_pending and timeout_s (schedule is ignored).  Refused: no effect and
 * Patroni's text ("restart conditions are not satisfied", "<task> already in
 * progress").  Else RESTART (task "restart", timeout, while_not_sync_standby
 * for a replica in sync mode), state.recovering and start_timeout_s set, and
 * "restart initiated".  The caller waits for the task if the client wants it.
 */
void pgkeel_ha_restart_request(const struct pgkeel_ha_facts *f,
                               const struct pgkeel_ha_scheduled_restart *req,
                               struct pgkeel_ha_decision *d);

/*
 * POST /reinitialize (§5.3.11) on facts with a fresh cluster: refused without
 * effects ("Cluster has no leader, can not reinitialize", "I am the leader,
 * can not reinitialize", "<task> already in progress" unless force, which
 * cancels the running task first); else REINITIALIZE (task "reinitialize",
 * the clone source as bootstrap picks it) and "reinitialize started".
 */
void pgkeel_ha_reinitialize_request(const struct pgkeel_ha_facts *f, bool force,
                                    struct pgkeel_ha_decision *d);

/* ---- helpers for the executors (pure) ---- */

/* Patroni's sysid_valid: at least 10 characters, all digits. */
bool pgkeel_ha_sysid_valid(const char *sysid);

/*
 * ISO-8601 date-time with a time zone ("2026-11-25T21:04:36.94+01:00", "Z",
 * a space instead of T; the forms of pgkeel_time_parse, util.h) to
 * milliseconds since the epoch.  False without a zone or on junk (Patroni
 * then cleans the value up).
 */
bool pgkeel_ha_parse_time(const char *s, int64_t *ms_out) PGKEEL_MUSTCHECK;

/* postgres_version_to_int: "9.6.24" -> 90624, "15.3" -> 150003; -1 if invalid. */
int64_t pgkeel_ha_pg_version_to_int(const char *s);

/*
 * synchronous_standby_names for these names (§6.6): sorted, quoted unless a
 * plain identifier other than first/any; one name alone, several as
 * "N (a,b)" (server_version >= 90600); "*" stays "*".  NULL for none.
 * Returns malloc'd text (or NULL).
 */
char *pgkeel_ha_ssn_format(const char *const *names, size_t n, int server_version);

/*
 * Replace the plan's message with "Copying logical slots [names] from the
 * primary" (Python's list repr), keeping the PAUSE prefix: the loop calls it
 * when SYNC_SLOTS with copy_allowed found slots to copy and started the task.
 */
void pgkeel_ha_copy_slots_message(struct pgkeel_ha_decision *d, const char *const *names, size_t n);

#endif
