/*
 * pg_manager: the PostgreSQL manager the HA loop talks to.  One object per
 * daemon that ties the lower modules (pg_ctl, pg_query, pg_bootstrap,
 * pg_demote, pg_slots) into what a Patroni cycle needs from "the local
 * PostgreSQL": a state it can read at the start of every cycle, and actions
 * that may take long (a start, a stop, a promotion, a clone) run without
 * blocking it.
 *
 *   pgkeel_pgm_refresh()  the loop's view, once per cycle: data directory,
 *           system identifier, postmaster state (crash detection, adoption
 *           of a running instance), and, when PostgreSQL runs, the status
 *           queries on the loop's own connection, each bounded by the
 *           deadline the loop passes (a SIGSTOPped postgres costs the
 *           deadline, never a hang).
 *   pgkeel_pgm_submit()  an action; it runs on the manager's worker thread
 *           (Patroni's AsyncExecutor: one at a time), which owns the
 *           pg_ctl handle while it runs.  Refused with "<name> already in
 *           progress" while another runs.  Every step of an action is
 *           bounded by the deadlines of its request.  When it succeeds
 *           the loop is woken (host post_event); every outcome, failures
 *           included, is collected with pgkeel_pgm_take_result().
 *   the post-promote CHECKPOINT: after a promotion, or whenever the
 *           primary's timeline differs from its last checkpoint's, a
 *           CHECKPOINT runs on a thread of its own with its own connection;
 *           until it has completed state.checkpoint_pending is true and the
 *           member data says checkpoint_after_promote: false (Patroni's
 *           Rewind.ensure_checkpoint_after_promote), so that replicas do not
 *           run pg_rewind against a primary whose control file still shows
 *           the old timeline.
 *
 * Actions (request.kind), with the name Patroni gives them in its messages
 * passed by the caller (request.name):
 *   START           write the configuration for target, start, wait until
 *                   ready or ready_deadline_ms (then it ends with the state
 *                   still "starting" and result.timed_out)
 *   STOP            stop in stop_mode, SIGKILL at stop_deadline_ms
 *   RESTART         fast stop and start in the current role (or target)
 *   RELOAD          write the configuration, SIGHUP
 *   PROMOTE         postgresql.pre_promote first (pg_callbacks.h, killed
 *                   after PRE_PROMOTE_TIMEOUT_MS = 5 min, Patroni waits for
 *                   ever); when it fails, the action ends there, not ok,
 *                   with result.detail PGKEEL_PGM_PRE_PROMOTE_FAILED.  When it
 *                   passes, a partial result (result.partial, detail
 *                   PASSED) is handed to take_result at once (Patroni
 *                   completes its promote task with the script's verdict
 *                   before pg_ctl promote runs), then: cancelled meanwhile
 *                   -> "PostgreSQL promote cancelled."; else pg_ctl promote,
 *                   wait until out of recovery; then the CHECKPOINT above
 *                   starts
 *   DEMOTE          pg_demote's modes, then wait for the start as replica
 *   FOLLOW          point a running replica at target (reload on 13+)
 *   BOOTSTRAP       initdb / custom bootstrap, configuration, start as primary
 *   POST_BOOTSTRAP  roles, post_bootstrap script (PostgreSQL running)
 *   CREATE_REPLICA  create_replica_methods from target (or none), then
 *                   configuration and start as replica
 *   REINITIALIZE    immediate stop, wipe, then CREATE_REPLICA
 *   REWIND          pg_rewind_run's job against the leader of the request
 *                   (crash recovery, archiving, pg_rewind, WAL fetches);
 *                   result.detail is its enum pgkeel_rewind_result.  The
 *                   loop starts PostgreSQL afterwards.
 *   COPY_SLOTS      Patroni's copy_logical_slots: read the slots from the
 *                   leader of the request's cluster, fast stop, install
 *                   them, start again as the replica it was
 *   CRASH_RECOVERY  Patroni's ensure_clean_shutdown as a task of its own
 *                   (PostgreSQL stopped, its data directory not shut down
 *                   cleanly): pg_rewind_run's job without a leader, which
 *                   archives the .ready WAL, empties archive_status, removes
 *                   the recovery files and runs `postgres --single` until
 *                   pg_controldata says "shut down" (detail: enum
 *                   pgkeel_rewind_result, SUCCESS or RETRY).  Nothing is
 *                   started: the loop's next cycle decides (a rewind, or
 *                   the start as a replica)
 *
 * Threads: refresh, submit, take_result, cancel and free are called by the
 * HA loop's thread.  The worker and the checkpoint thread touch nothing the
 * loop reads except under the manager's mutex.
 */
#ifndef PGKEEL_PG_MANAGER_H
#define PGKEEL_PG_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <pgkeel/host.h>

#include "child.h"
#include "cluster.h"
#include "config.h"
#include "pg_conf.h"
#include "pg_ctl.h"
#include "pg_demote.h"
#include "pg_query.h"

enum pgkeel_pgm_kind {
	PGKEEL_PGM_NONE = 0,
	PGKEEL_PGM_START,
	PGKEEL_PGM_STOP,
	PGKEEL_PGM_RESTART,
	PGKEEL_PGM_RELOAD,
	PGKEEL_PGM_PROMOTE,
	PGKEEL_PGM_DEMOTE,
	PGKEEL_PGM_FOLLOW,
	PGKEEL_PGM_BOOTSTRAP,
	PGKEEL_PGM_POST_BOOTSTRAP,
	PGKEEL_PGM_CREATE_REPLICA,
	PGKEEL_PGM_REINITIALIZE,
	PGKEEL_PGM_REWIND,
	PGKEEL_PGM_COPY_SLOTS,
	PGKEEL_PGM_CRASH_RECOVERY,
};

/* "start", "stop", ... (for logs; Patroni's task names come from the caller). */
const char *pgkeel_pgm_kind_name(enum pgkeel_pgm_kind k);

/* What PostgreSQL is to run as, and whom it follows. */
struct pgkeel_pgm_target {
	enum pgkeel_pg_role role;
	bool has_upstream;       /* host/port are set */
	bool remote;             /* the upstream is another cluster's primary (standby_cluster) */
	char upstream_name[128]; /* member name, for messages ("" for a remote one) */
	char host[256];
	char port[16];
	char slot[64]; /* primary_slot_name; "" none */
};

/*
 * A replica of `member` (NULL or without a usable conn_url: a replica with
 * no upstream): host and port from its conn_url, the slot Patroni would
 * use (pgkeel_pg_wanted_slot).  server_version 0: from PG_VERSION.
 */
void pgkeel_pgm_target_follow(const struct pgkeel_config *cfg, const struct pgkeel_member *member,
                              int server_version, struct pgkeel_pgm_target *out);
/* The standby cluster's remote primary (standby_cluster host/port/slot). */
void pgkeel_pgm_target_standby_leader(const struct pgkeel_config *cfg, int server_version,
                                      struct pgkeel_pgm_target *out);

struct pgkeel_pgm_request {
	enum pgkeel_pgm_kind kind;
	const char *name; /* Patroni's task name ("restart", "promote", "starting after
	                     demotion"...); NULL: the kind's name */
	struct pgkeel_pgm_target target;
	enum pgkeel_pgctl_stop_mode stop_mode;  /* STOP */
	enum pgkeel_demote_mode demote_mode;    /* DEMOTE */
	int64_t stop_deadline_ms;  /* monotonic: SIGKILL then; 0: now + 60 s */
	int64_t ready_deadline_ms; /* monotonic: stop waiting for readiness; 0: now + 60 s */
	json_object *replica_methods; /* CREATE_REPLICA / REINITIALIZE; NULL: configured */
	bool no_wakeup; /* the caller waits for it (pgkeel_pgm_wait_idle): no post_event */
	/* COPY_SLOTS: the cluster (a reference is taken) and the slot names (copied) */
	struct pgkeel_cluster *cluster;
	char *const *slot_names;
	size_t n_slot_names;
	/* REWIND: the leader to rewind from (its member data) */
	char leader_name[128];
	char leader_conn_url[512];
	char leader_role[32];
	bool leader_remote;
	enum pgkeel_tristate leader_checkpoint_after_promote;
};

/* PROMOTE: result.detail, how far the promotion got. */
enum pgkeel_pgm_promote_stage {
	PGKEEL_PGM_PROMOTE_CANCELLED = 0, /* cancelled before pre_promote's verdict */
	PGKEEL_PGM_PRE_PROMOTE_FAILED,    /* the script failed: no promotion was attempted */
	PGKEEL_PGM_PRE_PROMOTE_PASSED,    /* exit 0 or none configured; pg_ctl promote not run
	                                     (yet), or it failed */
	PGKEEL_PGM_PROMOTE_SIGNALLED,     /* pg_ctl promote succeeded (Patroni's role
	                                     "promoted"), whether or not out of recovery in time */
};

struct pgkeel_pgm_result {
	enum pgkeel_pgm_kind kind;
	char name[64];
	bool ok;
	bool timed_out; /* a start ended by its ready deadline, still "starting" */
	bool cancelled;
	/* PROMOTE only: pre_promote passed and the action goes on (detail
	 * PRE_PROMOTE_PASSED); the final result follows */
	bool partial;
	int detail; /* REWIND, CRASH_RECOVERY: enum pgkeel_rewind_result;
	               PROMOTE: enum pgkeel_pgm_promote_stage */
	char err[512];
};

/* The loop's view of the local PostgreSQL. */
struct pgkeel_pgm_state {
	bool busy;        /* an action runs (the fields below are then the last known) */
	char action[64];  /* its name */
	bool data_dir_empty;
	bool data_dir_error;     /* exists but is not accessible */
	char data_dir_errmsg[256];
	char sysid[32];          /* "" unknown */
	int server_version;      /* 150004; from PG_VERSION (150000) when not running */
	struct pgkeel_pgctl_status ctl; /* postmaster state, role, pid, reason */
	bool running;            /* a live postmaster */
	bool queried;            /* status below comes from this refresh */
	char query_error[256];   /* why not, when running */
	struct pgkeel_pg_status *status; /* owned; NULL unless queried */
	bool checkpoint_pending; /* publish checkpoint_after_promote: false */
};

void pgkeel_pgm_state_clear(struct pgkeel_pgm_state *s);

struct pgkeel_pgm_opts {
	struct pgkeel_config *cfg; /* a reference is taken */
	const struct pgkeel_child_user *user; /* children's user; NULL: our own */
	const struct pgkeel_host *host;       /* post_event when an action ends; NULL: none */
};

struct pgkeel_pgm;

/* Starts the worker thread.  Aborts on OOM or when no thread can be started. */
struct pgkeel_pgm *pgkeel_pgm_new(const struct pgkeel_pgm_opts *opts);
/*
 * Cancel a running action (children SIGTERM, then SIGKILL by
 * deadline_ms), wait for the threads, release everything.  PostgreSQL is
 * never stopped by this.  NULL is fine.
 */
void pgkeel_pgm_free(struct pgkeel_pgm *m, int64_t deadline_ms);

/* A new configuration for what follows (a reference is taken). */
void pgkeel_pgm_set_config(struct pgkeel_pgm *m, struct pgkeel_config *cfg);

/* The loop's connection (never used by another thread; NULL never). */
struct pgkeel_pg *pgkeel_pgm_connection(struct pgkeel_pgm *m);
/* The pg_ctl handle, for the loop's own use while no action runs (NULL when busy). */
struct pgkeel_pgctl *pgkeel_pgm_ctl(struct pgkeel_pgm *m);

/* Fill *out (cleared first: call pgkeel_pgm_state_clear on it). */
void pgkeel_pgm_refresh(struct pgkeel_pgm *m, int64_t deadline_ms, struct pgkeel_pgm_state *out);

/*
 * A descriptor (the caller's: close it) that becomes readable when the
 * running postmaster exits, for the loop's poll: a crash is noticed at once
 * rather than at the next cycle.  -1 when an action runs, PostgreSQL is not
 * running, or pidfds are not supported.
 */
int pgkeel_pgm_postmaster_fd(struct pgkeel_pgm *m);

/* Run an action.  False with err ("<name> already in progress"...) when refused. */
bool pgkeel_pgm_submit(struct pgkeel_pgm *m, const struct pgkeel_pgm_request *r, char *err,
                       size_t errlen) PGKEEL_MUSTCHECK;
/* The running action's name into buf, or NULL when idle. */
const char *pgkeel_pgm_busy(struct pgkeel_pgm *m, char *buf, size_t len);
/*
 * The outcome of the last finished action, once (true when there was one);
 * or, while a PROMOTE goes on, its partial result (see PROMOTE above).
 */
bool pgkeel_pgm_take_result(struct pgkeel_pgm *m, struct pgkeel_pgm_result *out);
/*
 * PostgreSQL went down inside the running (or last) action -- a STOP, or
 * the stop half of a DEMOTE while the start as replica goes on -- since
 * the last call: true once, with the shutdown checkpoint's LSN (-1 when
 * the stop was not clean).  The loop releases the leader key on it without
 * waiting for the rest of the demotion (Patroni's on_shutdown).
 */
bool pgkeel_pgm_take_stopped(struct pgkeel_pgm *m, int64_t *checkpoint_lsn);
/* Ask the running action to stop (children SIGTERM, SIGKILL by deadline_ms). */
void pgkeel_pgm_cancel(struct pgkeel_pgm *m, int64_t deadline_ms);
/* Wait until no action runs or deadline_ms; true when idle. */
bool pgkeel_pgm_wait_idle(struct pgkeel_pgm *m, int64_t deadline_ms);

/*
 * The synchronous_standby_names value the configuration carries from now
 * on (with synchronous_mode; NULL: the parameter is left out).  True when
 * it differs from the value before.
 */
bool pgkeel_pgm_set_ssn(struct pgkeel_pgm *m, const char *ssn);
/*
 * Write the configuration for the current role and upstream and SIGHUP the
 * postmaster, on the loop's thread (small file writes).  False when an
 * action runs, nothing runs, or a write failed.
 */
bool pgkeel_pgm_reload_now(struct pgkeel_pgm *m, int64_t deadline_ms, char *err, size_t errlen);
/*
 * Replication slots for this cycle (pg_slots' sync on the loop's
 * connection, logical slots' readiness kept here).  Returns the leader's
 * /status "slots" object built from what was read (caller puts; NULL when
 * nothing was read or not a primary).  last_lsn: the primary's WAL position.
 * *copy / *n_copy: the logical slots a replica should copy from the
 * leader (may be NULL/0).
 */
json_object *pgkeel_pgm_sync_slots(struct pgkeel_pgm *m, const struct pgkeel_cluster *cluster,
                                   enum pgkeel_pg_role role, int64_t last_lsn,
                                   int64_t deadline_ms, char ***copy, size_t *n_copy);
/* Free what pgkeel_pgm_sync_slots returned in *copy. */
void pgkeel_pgm_names_free(char **names, size_t n);

/*
 * Patroni's set_enforce_hot_standby_feedback, with the cluster of every
 * cycle that read the DCS: from now on the configuration written forces
 * hot_standby_feedback on while pg_slots says this node needs it
 * (pgkeel_slots_need_hot_standby_feedback: permanent logical slots it
 * would have as a replica, or a cascading member that needs it).  A
 * cluster without a `config` key leaves it as it was (Patroni: only with
 * config.modify_index).  True when the postgresql.conf last written by the
 * manager differs from what is wanted now: the caller reloads
 * (pgkeel_pgm_reload_now) once PostgreSQL runs with no action in progress,
 * as Patroni writes the file and reloads at once.  A DEMOTE or FOLLOW
 * writes the configuration through pg_demote, without the setting: after
 * one, true again while it is wanted.
 */
bool pgkeel_pgm_set_hot_standby_feedback(struct pgkeel_pgm *m,
                                         const struct pgkeel_cluster *cluster);

/*
 * pg_controldata of the data directory (LANG=C), bounded by deadline_ms,
 * parsed (pgkeel_controldata_parse).  NULL with err on failure.
 */
json_object *pgkeel_pgm_controldata(const struct pgkeel_config *cfg, int64_t deadline_ms,
                                    char *err, size_t errlen);

#endif
